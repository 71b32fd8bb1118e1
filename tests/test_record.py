"""Integration tests of connhist-record against the real kernel: real
sockets on loopback (IPv4 and IPv6, TCP and UDP), the real binary, a real
SQLite file, and the real connhist-query JSON, parsed."""

import json
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import time
import unittest

from helpers import (QUERY, RECORD, WRAPPER, now_ms, query, rows, run_record, sample_pace, scratch_dir,
                     start_record, stop_record, wait_for_samples, own_comm)

INTERVAL_MS = 200


def free_port(family=socket.AF_INET, kind=socket.SOCK_STREAM):
    s = socket.socket(family, kind)
    s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Scenario:
    """Opens known sockets, records them with a running recorder, closes some."""

    def __init__(self, sampler):
        self.dir = scratch_dir()
        self.db = os.path.join(self.dir, "sub", "connhist.db")
        self.sampler = sampler
        self.truth = {}

    def listen(self, name, family, port=0):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", port))
        s.listen(16)
        self.truth[name] = {"sock": s, "port": s.getsockname()[1], "opened": now_ms()}
        return s

    def udp(self, name, family):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        self.truth[name] = {"sock": s, "port": s.getsockname()[1], "opened": now_ms()}
        return s

    def connect(self, name, listener):
        lst = self.truth[listener]
        fam = lst["sock"].family
        c = socket.socket(fam, socket.SOCK_STREAM)
        opened = now_ms()
        c.connect(("::1" if fam == socket.AF_INET6 else "127.0.0.1", lst["port"]))
        a, _ = lst["sock"].accept()
        self.truth[name] = {"sock": c, "peer": a, "port": c.getsockname()[1], "opened": opened}

    def close(self, name, peer_too=True):
        """Closes a socket: it closed between `closed` and `closed_after`."""
        t = self.truth[name]
        t["closed"] = now_ms()
        t["sock"].close()
        if peer_too and "peer" in t:
            t["peer"].close()
        t["closed_after"] = now_ms()

    def run(self):
        # A listener shared with a forked child: two holders, the parent is the oldest.
        self.listen("shared", socket.AF_INET)
        shared_fd = self.truth["shared"]["sock"].fileno()
        parent = os.getpid()
        self.child = os.fork()
        if self.child == 0:
            os.closerange(3, shared_fd)
            os.closerange(shared_fd + 1, 4096)
            # Held until cleanup() kills it (or the test process is gone):
            # under valgrind on a loaded machine the recorder's first sample
            # came more than 30 s after the fork, when a child that slept
            # 30 s had already exited with the second holder.
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(0)
        self.listen("l4", socket.AF_INET)
        self.listen("l6", socket.AF_INET6)
        self.udp("u4", socket.AF_INET)
        self.udp("u6", socket.AF_INET6)
        self.connect("c4", "l4")
        self.connect("c4_kept", "l4")
        self.recorder = start_record(self.db, "--interval", f"{INTERVAL_MS}ms", "--sampler", self.sampler,
                                     "--verbose")
        wait_for_samples(self.db, 3, self.recorder)
        self.connect("c6", "l6")       # opened while recording
        wait_for_samples(self.db, 6, self.recorder)
        self.close("c4")               # active close by the client: TIME_WAIT on its side
        self.close("u6")
        self.close("c6")
        wait_for_samples(self.db, 10, self.recorder)
        self.stopping = now_ms()
        self.rc, self.out, self.err = stop_record(self.recorder)
        # How late a sample could come after an event, by this run's own
        # pace: the next sample is at most `gap` after the previous one, and
        # is dated up to `dump` after its dump began.
        self.gap, self.dump = sample_pace(self.db, self.err)
        self.late = self.gap + self.dump

    def cleanup(self):
        os.kill(self.child, 9)
        os.waitpid(self.child, 0)
        for t in self.truth.values():
            t["sock"].close()
            if "peer" in t:
                t["peer"].close()


class RecordTest(unittest.TestCase):
    sampler = "netlink"

    @classmethod
    def setUpClass(cls):
        cls.s = Scenario(cls.sampler)
        cls.s.run()
        cls.db = cls.s.db

    @classmethod
    def tearDownClass(cls):
        cls.s.cleanup()

    def lifetimes(self, where, params=()):
        return rows(self.db, "SELECT l.*, p.name, p.uid FROM v_lifetimes l LEFT JOIN processes p"
                    " ON p.pid = l.pid AND p.start_time = l.proc_start WHERE " + where, params)

    def one(self, where, params=()):
        # Only this process's sockets: tests running beside it may reuse the port numbers.
        found = self.lifetimes(f"({where}) AND l.pid = {os.getpid()}", params)
        self.assertEqual(len(found), 1, f"expected one lifetime for {where} {params}, got {found}")
        return found[0]

    def test_recorder_stopped_cleanly(self):
        self.assertEqual(self.s.rc, 0, self.s.err)
        run = rows(self.db, "SELECT * FROM runs")[-1]
        self.assertEqual(run["end_reason"], "signal")
        self.assertIsNotNone(run["ended_at"])
        self.assertEqual(run["sampler"], self.sampler)
        self.assertEqual(run["interval_ms"], INTERVAL_MS)
        self.assertEqual(run["host"], socket.gethostname())

    def test_database_is_private(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.db).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.dirname(self.db)).st_mode), 0o700)
        self.assertEqual(rows(self.db, "PRAGMA journal_mode")[0]["journal_mode"], "wal")

    def test_listeners_with_owner(self):
        for name, fam, addr in (("l4", 4, "127.0.0.1"), ("l6", 6, "::1")):
            r = self.one("l.proto = 'tcp' AND l.local_port = ? AND l.state = 'LISTEN'", (self.s.truth[name]["port"],))
            self.assertEqual(r["family"], fam)
            self.assertEqual(r["local_addr"], addr)
            self.assertIsNone(r["remote_addr"])
            self.assertIsNone(r["remote_port"])
            self.assertEqual(r["pid"], os.getpid())
            self.assertEqual(r["name"], own_comm())
            self.assertEqual(r["holders"], 1)
            self.assertIsNone(r["closed_at"])
            self.assertIn(os.path.basename(sys.argv[0]), r["cmdline"])
            self.assertEqual(r["uid"], os.getuid())
            self.assertIsNone(r["offload_state"])  # a Windows notion: unknown here, not "in_host"

    def test_shared_listener_has_two_holders_and_oldest_owner(self):
        r = self.one("l.local_port = ? AND l.state = 'LISTEN'", (self.s.truth["shared"]["port"],))
        self.assertEqual(r["holders"], 2)
        self.assertEqual(r["pid"], os.getpid())

    def test_udp_bound_and_closed(self):
        u4 = self.one("l.proto = 'udp' AND l.local_port = ?", (self.s.truth["u4"]["port"],))
        self.assertEqual(u4["state"], "UNCONN")
        self.assertIsNone(u4["remote_addr"])
        self.assertIsNone(u4["closed_at"])
        u6 = self.one("l.proto = 'udp' AND l.local_port = ?", (self.s.truth["u6"]["port"],))
        self.assertEqual(u6["family"], 6)
        self.assertEqual(u6["pid"], os.getpid())
        self.assert_closed_within_interval(u6, self.s.truth["u6"])

    def assert_closed_within_interval(self, r, t):
        # Within a tick of the close, as long as this run's ticks were.
        self.assertIsNotNone(r["closed_at"])
        self.assertLessEqual(r["last_seen"], t["closed_after"] + self.s.dump)  # its dump began before the close
        self.assertGreaterEqual(r["closed_at"], t["closed"] - 5)
        self.assertLessEqual(r["closed_at"] - t["closed_after"], self.s.late)
        self.assertEqual(r["close_reason"], "gone")

    def test_connection_opened_while_recording(self):
        t = self.s.truth["c6"]
        r = self.one("l.proto = 'tcp' AND l.local_port = ?", (t["port"],))
        self.assertEqual(r["remote_addr"], "::1")
        self.assertEqual(r["remote_port"], self.s.truth["l6"]["port"])
        self.assertGreaterEqual(r["first_seen"], t["opened"] - 5)
        self.assertLessEqual(r["first_seen"] - t["opened"], self.s.late)
        self.assertEqual(r["pid"], os.getpid())
        self.assertTrue(r["states"].startswith("ESTABLISHED"))

    def test_time_wait_stays_one_lifetime(self):
        t = self.s.truth["c4"]
        r = self.one("l.proto = 'tcp' AND l.local_port = ? AND l.remote_port = ?",
                     (t["port"], self.s.truth["l4"]["port"]))
        states = r["states"].split(",")
        self.assertEqual(states[0], "ESTABLISHED")
        self.assertEqual(states[-1], "TIME_WAIT")
        self.assertEqual(r["state"], "TIME_WAIT")
        self.assertIsNone(r["closed_at"])  # TIME_WAIT lasts 60 s
        self.assertEqual(r["pid"], os.getpid())  # the owner found while it was open
        changes = rows(self.db, "SELECT state, at FROM v_state_changes WHERE lifetime_id = ? ORDER BY at",
                       (r["lifetime_id"],))
        self.assertEqual([c["state"] for c in changes], states[1:])
        self.assertLessEqual(changes[-1]["at"] - t["closed_after"], self.s.late)
        # The server side of the same connection closed passively and is gone.
        server = self.one("l.local_port = ? AND l.remote_port = ?", (self.s.truth["l4"]["port"], t["port"]))
        self.assertIsNotNone(server["closed_at"])

    def test_open_rows_are_not_rewritten(self):
        # Dedup: a socket open all run long has exactly its open row and no state changes.
        r = self.one("l.local_port = ? AND l.remote_port IS NOT NULL", (self.s.truth["c4_kept"]["port"],))
        [raw] = rows(self.db, "SELECT last_seen_after, closed_after FROM lifetimes WHERE lifetime_id = ?",
                     (r["lifetime_id"],))
        self.assertEqual(raw, {"last_seen_after": None, "closed_after": None})
        self.assertEqual(rows(self.db, "SELECT count(*) AS n FROM state_changes WHERE lifetime_id = ?",
                              (r["lifetime_id"],))[0]["n"], 0)
        v = rows(self.db, "SELECT * FROM v_lifetimes WHERE lifetime_id = ?", (r["lifetime_id"],))[0]
        beat = rows(self.db, "SELECT MAX(last_at) AS t FROM heartbeats")[0]["t"]
        self.assertEqual(v["last_seen"], beat)  # the view takes it from the heartbeat
        # The heartbeat was kept up to the stop: nothing samples found is
        # newer. Closes the OS announced are read once more at the stop, so
        # those may be newer, up to the run's end.
        newest = rows(self.db, "SELECT MAX(MAX(first_seen, COALESCE(closed_at, 0))) AS t FROM v_lifetimes"
                               " WHERE seen_by IS NULL")[0]["t"]
        newest = max(newest, rows(self.db, "SELECT COALESCE(MAX(at), 0) AS t FROM state_changes")[0]["t"])
        self.assertGreaterEqual(beat, newest)
        [run] = rows(self.db, "SELECT ended_at FROM runs ORDER BY run_id DESC LIMIT 1")
        announced = rows(self.db, "SELECT MAX(closed_at) AS t FROM v_lifetimes WHERE seen_by IS NOT NULL")[0]["t"]
        self.assertLessEqual(announced or 0, run["ended_at"])
        # No sample after the stop: a sample whose dump began before the
        # signal is dated up to one dump later (this run's own pace; seen
        # 125 ms late under valgrind), none later than that.
        self.assertLessEqual(beat, self.s.stopping + self.s.dump)

    def test_query_json_matches(self):
        port = self.s.truth["l6"]["port"]
        out = query(self.db, "connections", "--port", str(port), "--pid", str(os.getpid()))
        got = sorted((l["local_port"], l["remote_port"] or 0) for l in out["lifetimes"])
        c6 = self.s.truth["c6"]["port"]
        self.assertEqual(got, sorted([(port, 0), (c6, port), (port, c6)]))
        for l in out["lifetimes"]:
            self.assertEqual(l["proto"], "tcp")
            self.assertEqual(l["family"], 6)
            self.assertEqual(l["process"]["pid"], os.getpid())
            self.assertEqual(l["process"]["name"], own_comm())
            self.assertRegex(l["first_seen"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        client = [l for l in out["lifetimes"] if l["local_port"] == c6][0]
        self.assertEqual(client["remote_addr"], "::1")
        self.assertEqual(client["state"], "TIME_WAIT")  # it closed first
        self.assertIsNone(client["closed_at"])
        server = [l for l in out["lifetimes"] if l["remote_port"] == c6][0]
        self.assertIsNotNone(server["closed_at"])
        self.assertEqual(server["close_reason"], "gone")
        listener = [l for l in out["lifetimes"] if l["remote_port"] is None][0]
        self.assertIsNone(listener["closed_at"])
        self.assertEqual(listener["state"], "LISTEN")
        self.assertEqual(listener["states"], ["LISTEN"])
        self.assertEqual(out["header"]["report"], "connections")

    def test_query_port_report(self):
        port = self.s.truth["u4"]["port"]
        out = query(self.db, "port", str(port))
        # Other processes may use the same number, for TCP or on another address.
        ours = [l for l in out["lifetimes"] if l["proto"] == "udp" and (l["process"] or {}).get("pid") == os.getpid()]
        self.assertEqual([l["local_port"] for l in ours], [port])
        self.assertEqual(ours[0]["process"]["pid"], os.getpid())


class RecordProcfsTest(RecordTest):
    """The same scenario through the /proc/net fallback."""
    sampler = "procfs"


# Runs in a network namespace of its own: a veth pair whose end ch0 has a
# link-local and a global address (no duplicate detection), a listener and
# a connection on each address once both have their host routes, then the
# recorder's one sample. Prints the interface's index and the ports, as JSON.
LINK_LOCAL_DRIVER = r"""
import json, socket, subprocess, sys, time
record, db, wrapper = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def ip(*args):
    subprocess.run(["ip"] + list(args), check=True)
ip("link", "set", "lo", "up")
ip("link", "add", "ch0", "type", "veth", "peer", "name", "ch1")
ip("link", "set", "ch0", "up")
ip("link", "set", "ch1", "up")
ip("addr", "add", "fe80::1/64", "dev", "ch0", "nodad")
ip("addr", "add", "2001:db8::1/64", "dev", "ch0", "nodad")
# An address's host route is added by the kernel's address work, after the
# address: until then a connection to it is sent out of ch0 and fails with
# "No route to host" once neighbour discovery gives up (CI, a loaded machine).
deadline = time.monotonic() + 60
while True:
    out = subprocess.run(["ip", "-j", "-6", "route", "show", "table", "local", "type", "local", "dev", "ch0"],
                         check=True, capture_output=True, text=True).stdout
    if {"fe80::1", "2001:db8::1"} <= {r["dst"] for r in json.loads(out or "[]")}:
        break
    if time.monotonic() > deadline:
        sys.exit(f"the addresses of ch0 got no host routes in 60 s: {out}")
    time.sleep(0.01)
index = socket.if_nametoindex("ch0")
held, ports = [], {}
for name, addr, scope in (("link", "fe80::1", index), ("global", "2001:db8::1", 0)):
    l = socket.socket(socket.AF_INET6)
    l.bind((addr, 0, 0, scope))
    l.listen(4)
    c = socket.socket(socket.AF_INET6)
    c.connect((addr, l.getsockname()[1], 0, scope))
    a, _ = l.accept()
    held += [l, c, a]
    ports[name] = l.getsockname()[1]
p = subprocess.run(wrapper + [record, "--once", "--db", db], capture_output=True, text=True)
if p.returncode != 0:
    sys.exit(f"connhist-record --once exited {p.returncode}: {p.stderr}")
print(json.dumps({"index": index, "ports": ports}))
"""


def why_no_namespace():
    """Why a network namespace with a veth pair cannot be made here, or None."""
    p = subprocess.run(["unshare", "-n", "ip", "link", "add", "ch0", "type", "veth", "peer", "name", "ch1"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        return f"no network namespace with a veth pair here (needs root): {p.stderr.strip()}"
    return None


class LinkLocalTest(unittest.TestCase):
    """A link-local IPv6 address names a host on one link only: its
    lifetimes carry the interface as the address's scope id
    (lifetime_extras.local_scope and remote_scope, as Windows reports
    them); a global address on the same interface has none."""

    def test_scope_of_link_local_addresses(self):
        why = why_no_namespace()
        if why:
            self.skipTest(why)
        db = os.path.join(scratch_dir(), "scope.db")
        p = subprocess.run(["unshare", "-n", sys.executable, "-c", LINK_LOCAL_DRIVER, RECORD, db, json.dumps(WRAPPER)],
                           capture_output=True, text=True, timeout=600)
        self.assertEqual(p.returncode, 0, p.stderr)
        facts = json.loads(p.stdout)
        index, ports = facts["index"], facts["ports"]
        got = rows(db, "SELECT local_addr, local_port, remote_addr, remote_port, state, local_scope, remote_scope"
                       " FROM v_lifetimes WHERE proto = 'tcp' AND local_addr IN ('fe80::1', '2001:db8::1')")
        link = [r for r in got if r["local_addr"] == "fe80::1"]
        glob = [r for r in got if r["local_addr"] == "2001:db8::1"]
        self.assertEqual(sorted(r["state"] for r in link), ["ESTABLISHED", "ESTABLISHED", "LISTEN"], got)
        self.assertEqual(sorted(r["state"] for r in glob), ["ESTABLISHED", "ESTABLISHED", "LISTEN"], got)
        for r in link:
            self.assertEqual(r["local_scope"], index, r)
            self.assertEqual(r["remote_scope"], None if r["state"] == "LISTEN" else index, r)
            self.assertIn(ports["link"], (r["local_port"], r["remote_port"]), r)
        for r in glob:
            self.assertIsNone(r["local_scope"], r)
            self.assertIsNone(r["remote_scope"], r)


if __name__ == "__main__":
    unittest.main()
