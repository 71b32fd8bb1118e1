#!/usr/bin/env python3
"""Integration tests of connhist-query.

Builds a real connhist database from schema/schema.sql with known runs,
heartbeats, processes, lifetimes and state changes, runs the real binary on
it and checks the JSON exactly. Every expected number below is worked out
by hand from the fixture, not by running the tool.

Environment: CONNHIST_QUERY (the binary), CONNHIST_SCHEMA (schema.sql).
"""

import datetime
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import unittest

from helpers import WRAPPER, add_lifetime, add_state_change

QUERY = os.environ.get("CONNHIST_QUERY", "")
SCHEMA = os.environ.get("CONNHIST_SCHEMA", "")

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z


def ms(seconds):
    """T0 plus some seconds, in ms."""
    return T0 + int(round(seconds * 1000))


def iso(t):
    """RFC 3339 UTC with milliseconds, as the tool prints times."""
    d = datetime.datetime.fromtimestamp(t // 1000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % (t % 1000)


def s(seconds):
    """The text of T0 plus some seconds, for the command line."""
    return iso(ms(seconds))


# Runs: five, the last one still "running" (ended_at NULL) on host beta.
RUNS = [
    # run_id, started, ended, reason, mode, interval_ms, host, notes
    (1, 0, 100, "signal", "continuous", 1000, "alpha", None),
    (2, 200, 200, "once", "once", 10000, "alpha", None),
    (3, 215, 215, "once", "once", 10000, "alpha", None),
    (4, 250, 250, "once", "once", 10000, "alpha", "no netlink: used procfs"),
    (5, 300, None, None, "continuous", 1000, "beta", None),
]

# Heartbeat spans (run_id, first, last, samples). Merged coverage pieces:
# [0,40] [60,100] (20 s apart > 2 s), [200,215] (15 s <= 2 * 10 s),
# [250,250] (35 s > 20 s), [300,400]. The newest sample is T0+400 s.
HEARTBEATS = [
    (1, 0, 40, 41), (1, 60, 100, 41), (2, 200, 200, 1), (3, 215, 215, 1),
    (4, 250, 250, 1), (5, 300, 400, 101),
]

# Processes: pid 200 is reused (two start times); odd names on purpose.
PROCESSES = [
    # pid, start, name, path, cmdline, uid, user
    (100, -1000, "nginx", "/usr/sbin/nginx", "nginx: master process", 0, "root"),
    (200, -500, 'curl "quoted"', None, None, 1000, None),
    (200, 150, "\u00dfrowser-\u00fc", "/opt/b", "\u00dfrowser --x", 1000, "ann"),
    (300, 0, "dnsmasq", "/usr/sbin/dnsmasq", b"dns\xffmasq", 0, "root"),
]

# Lifetimes: id, proto, family, local, lport, remote, rport, state, states,
# first, last, closed, reason, (pid, start) or None, holders.
LIFETIMES = [
    (1, "tcp", 4, "0.0.0.0", 80, None, None, "LISTEN", "LISTEN", 0, None, None, None, (100, -1000), 1),
    (2, "tcp", 4, "10.0.0.5", 80, "192.168.1.10", 51000, "TIME_WAIT",
     "SYN_RECV,ESTABLISHED,TIME_WAIT", 10, 30, 31, "gone", (100, -1000), 1),
    (3, "tcp", 6, "2001:db8::1", 443, "2001:db8:1::7", 40000, "ESTABLISHED", "ESTABLISHED",
     20, 90, 91, "gone", (200, -500), 2),
    (4, "tcp", 6, "::ffff:10.0.0.5", 8080, "::ffff:10.1.2.3", 50000, "ESTABLISHED", "ESTABLISHED",
     60, 100, 200, "gone_while_stopped", (200, -500), 1),
    (5, "udp", 4, "0.0.0.0", 53, None, None, "UNCONN", "UNCONN", 0, None, None, None, (300, 0), 1),
    (6, "udp", 6, "::", 53, None, None, "UNCONN", "UNCONN", 300, None, None, None, None, None),
    (7, "tcp", 4, "10.0.0.5", 45000, "10.1.9.9", 443, "ESTABLISHED", "SYN_SENT,ESTABLISHED",
     300, None, None, None, (200, 150), 1),
    (8, "tcp", 4, "10.0.0.5", 80, "192.168.1.10", 51001, "ESTABLISHED", "NEW_SYN_RECV,ESTABLISHED",
     305, 320, 321, "gone", (100, -1000), 1),
    (9, "udp", 4, "10.0.0.5", 5353, "8.8.8.8", 53, "ESTABLISHED", "ESTABLISHED",
     350, 350, 351, "gone", None, None),
    (10, "tcp", 6, "::", 8080, None, None, "LISTEN", "LISTEN", 250, 300, 301, "gone", (200, 150), 1),
]

STATE_CHANGES = [(2, 12, "ESTABLISHED"), (2, 25, "TIME_WAIT"), (7, 301, "ESTABLISHED")]

LAST_SAMPLE = ms(400)


def create_schema(path, user_version=None):
    db = sqlite3.connect(path)
    with open(SCHEMA, encoding="utf-8") as f:
        db.executescript(f.read())
    if user_version is not None:
        db.execute("PRAGMA user_version = %d" % user_version)
    db.commit()
    return db


def build_fixture(path):
    db = create_schema(path)
    db.execute("PRAGMA journal_mode=WAL")  # as the recorder leaves it
    for r in RUNS:
        db.execute(
            "INSERT INTO runs (run_id, started_at, ended_at, end_reason, mode, interval_ms, host, os,"
            " sampler, version, pid, uid, notes) VALUES (?,?,?,?,?,?,?,'linux','netlink','0.1.0',?,0,?)",
            (r[0], ms(r[1]), None if r[2] is None else ms(r[2]), r[3], r[4], r[5], r[6], 1000 + r[0], r[7]))
    for h in HEARTBEATS:
        db.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (?,?,?,?)", (h[0], ms(h[1]), ms(h[2]), h[3]))
    for p in PROCESSES:
        cmd = p[4]
        db.execute(
            "INSERT INTO processes (pid, start_time, name, path, cmdline, uid, user, first_seen)"
            " VALUES (?,?,?,?,CAST(? AS TEXT),?,?,?)",
            (p[0], ms(p[1]), p[2], p[3], cmd, p[5], p[6], ms(p[1])))
    for l in LIFETIMES:
        owner = l[13] or (None, None)
        add_lifetime(db, l[0], ms(l[9]), proto=l[1], family=l[2], local_addr=l[3], local_port=l[4],
                     remote_addr=l[5], remote_port=l[6], state=l[7], states=l[8],
                     last_seen=None if l[10] is None else ms(l[10]), closed_at=None if l[11] is None else ms(l[11]),
                     close_reason=l[12], pid=owner[0], proc_start=None if owner[1] is None else ms(owner[1]),
                     holders=l[14], uid=0)
    for c in STATE_CHANGES:
        add_state_change(db, c[0], ms(c[1]), c[2])
    db.commit()
    db.close()


def run(*args, env=None):
    p = subprocess.run(WRAPPER + [QUERY] + list(args), capture_output=True, env=env, timeout=120)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Fixture(unittest.TestCase):
    """A test case with a fixture database (made by build) in a temporary directory."""

    build = staticmethod(build_fixture)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        cls.db = os.path.join(cls.tmp.name, "connhist.db")
        cls.build(cls.db)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def query(self, *args):
        rc, out, err = run("--db", self.db, *args)
        self.assertEqual((rc, err), (0, ""), args)
        self.assertTrue(out.endswith("\n") and out.count("\n") == 1, out)
        return json.loads(out)

    def ids(self, *args):
        return [l["id"] for l in self.query(*args)["lifetimes"]]


class TestLifetimeFilters(Fixture):
    def test_all_lifetimes_in_recording_order(self):
        # By id: the order the recorder first saw them, which is first_seen
        # order but where the wall clock stepped back (10 and 5 here).
        self.assertEqual(self.ids("connections"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])

    def test_window_overlap(self):
        self.assertEqual(self.ids("connections", "--since", s(95), "--until", s(260)), [1, 4, 5, 10])

    def test_window_boundaries_are_inclusive(self):
        # lifetime 3 closed at T0+91 s exactly; lifetime 10 opened at T0+250 s exactly
        self.assertIn(3, self.ids("connections", "--since", s(91), "--until", s(92)))
        self.assertNotIn(3, self.ids("connections", "--since", s(91.001), "--until", s(92)))
        self.assertIn(10, self.ids("connections", "--since", s(240), "--until", s(250)))
        self.assertNotIn(10, self.ids("connections", "--since", s(240), "--until", s(249.999)))

    def test_epoch_seconds_accepted(self):
        self.assertEqual(self.ids("connections", "--since", str(ms(95) // 1000), "--until",
                                  str(ms(260) // 1000)), [1, 4, 5, 10])

    def test_remote_ipv4_prefix_matches_mapped(self):
        self.assertEqual(self.ids("connections", "--remote", "10.0.0.0/8"), [4, 7])

    def test_remote_exact_ipv4_matches_mapped_spelling(self):
        self.assertEqual(self.ids("connections", "--remote", "10.1.2.3"), [4])

    def test_remote_exact_mapped_matches_ipv4_spelling(self):
        self.assertEqual(self.ids("connections", "--remote", "::ffff:10.1.9.9"), [7])

    def test_remote_ipv6_prefix_and_canonical_form(self):
        self.assertEqual(self.ids("connections", "--remote", "2001:db8::/32"), [3])
        r = self.query("connections", "--remote", "2001:DB8:1:0::7")
        self.assertEqual([l["id"] for l in r["lifetimes"]], [3])
        self.assertEqual(r["header"]["filters"], {"remote": "2001:db8:1::7"})

    def test_remote_prefix_excludes_others(self):
        self.assertEqual(self.ids("connections", "--remote", "192.168.1.0/24"), [2, 8])
        self.assertEqual(self.ids("connections", "--remote", "192.168.2.0/24"), [])

    def test_ports(self):
        self.assertEqual(self.ids("connections", "--remote-port", "53"), [9])
        self.assertEqual(self.ids("connections", "--local-port", "53"), [5, 6])
        self.assertEqual(self.ids("connections", "--port", "53"), [5, 6, 9])
        self.assertEqual(self.ids("connections", "--port", "80"), [1, 2, 8])

    def test_proto_family_pid(self):
        self.assertEqual(self.ids("connections", "--proto", "udp"), [5, 6, 9])
        self.assertEqual(self.ids("connections", "--proto", "TCP", "--family", "6"), [3, 4, 10])
        self.assertEqual(self.ids("connections", "--family", "6"), [3, 4, 6, 10])
        self.assertEqual(self.ids("connections", "--pid", "200"), [3, 4, 7, 10])

    def test_process_glob(self):
        self.assertEqual(self.ids("connections", "--process", "ngin*"), [1, 2, 8])
        self.assertEqual(self.ids("connections", "--process", 'curl "quoted"'), [3, 4])
        self.assertEqual(self.ids("connections", "--process", "\u00dfrowser-?"), [7, 10])
        self.assertEqual(self.ids("connections", "--process", "x' OR '1'='1"), [])

    def test_state_whole_names_case_insensitive(self):
        self.assertEqual(self.ids("connections", "--state", "established"), [2, 3, 4, 7, 8, 9])
        self.assertEqual(self.ids("connections", "--state", "SYN_RECV"), [2])
        self.assertEqual(self.ids("connections", "--state", "new_syn_recv"), [8])
        self.assertEqual(self.ids("connections", "--state", "TIME_WAIT"), [2])

    def test_open_and_limit(self):
        self.assertEqual(self.ids("connections", "--open"), [1, 5, 6, 7])
        self.assertEqual(self.ids("connections", "--limit", "2"), [1, 2])
        self.assertEqual(self.ids("connections", "--limit", "0"), [])

    def test_filters_in_header_only_when_given(self):
        h = self.query("connections", "--port", "80", "--proto", "tcp", "--state", "listen",
                       "--open", "--limit", "5", "--remote", "10.0.0.0/8", "--pid", "7",
                       "--process", "a*", "--family", "4", "--remote-port", "1",
                       "--local-port", "2")["header"]
        self.assertEqual(h["filters"], {
            "remote": "10.0.0.0/8", "remote_port": 1, "local_port": 2, "port": 80, "proto": "tcp",
            "family": 4, "pid": 7, "process": "a*", "state": "LISTEN", "open": True, "limit": 5})
        self.assertEqual(self.query("connections")["header"]["filters"], {})


class TestLifetimeJson(Fixture):
    def lifetime(self, lid):
        return [l for l in self.query("connections")["lifetimes"] if l["id"] == lid][0]

    def test_closed_connection_with_null_process_fields(self):
        self.assertEqual(self.lifetime(3), {
            "id": 3, "proto": "tcp", "family": 6, "local_addr": "2001:db8::1", "local_port": 443,
            "remote_addr": "2001:db8:1::7", "remote_port": 40000, "state": "ESTABLISHED",
            "states": ["ESTABLISHED"], "first_seen": s(20), "last_seen": s(90), "closed_at": s(91),
            "close_reason": "gone", "holders": 2,
            "bytes_sent": None, "bytes_received": None, "seen_by": None, "opened_after": None,
            "owner_source": "socket",
            "process": {"pid": 200, "name": 'curl "quoted"', "path": None, "cmdline": None,
                        "user": None, "uid": 1000, "start_time": s(-500)},
            "remote_names": None})

    def test_open_unattributed_listener(self):
        self.assertEqual(self.lifetime(6), {
            "id": 6, "proto": "udp", "family": 6, "local_addr": "::", "local_port": 53,
            "remote_addr": None, "remote_port": None, "state": "UNCONN", "states": ["UNCONN"],
            "first_seen": s(300), "last_seen": iso(LAST_SAMPLE), "closed_at": None,
            "close_reason": None, "holders": None, "bytes_sent": None, "bytes_received": None,
            "seen_by": None, "opened_after": None, "owner_source": None, "process": None, "remote_names": None})

    def test_states_list_and_unicode(self):
        self.assertEqual(self.lifetime(2)["states"], ["SYN_RECV", "ESTABLISHED", "TIME_WAIT"])
        p = self.lifetime(7)["process"]
        self.assertEqual((p["name"], p["user"], p["start_time"]), ("\u00dfrowser-\u00fc", "ann", s(150)))

    def test_invalid_utf8_is_repaired(self):
        self.assertEqual(self.lifetime(5)["process"]["cmdline"], "dns\ufffdmasq")


class TestReports(Fixture):
    def test_listeners(self):
        self.assertEqual(self.ids("listeners"), [1, 5, 6, 10])
        self.assertEqual(self.ids("listeners", "--proto", "udp"), [5, 6])
        self.assertEqual(self.ids("listeners", "--since", s(302)), [1, 5, 6])

    def test_at(self):
        self.assertEqual(self.ids("at", s(0)), [1, 5])
        self.assertEqual(self.ids("at", s(30)), [1, 2, 3, 5])
        self.assertEqual(self.ids("at", s(31)), [1, 3, 5])  # closed_at is already gone
        self.assertEqual(self.ids("at", s(250)), [1, 5, 10])
        self.assertEqual(self.ids("at", s(30), "--proto", "tcp"), [1, 2, 3])

    def test_at_newest_sample_and_beyond(self):
        r = self.query("at", s(400))
        self.assertEqual([l["id"] for l in r["lifetimes"]], [1, 5, 6, 7])
        self.assertIsNone(r["header"]["note"])
        self.assertEqual(r["header"]["window"], {"since": s(400), "until": s(400)})
        self.assertEqual(r["header"]["filters"], {"at": s(400)})
        r = self.query("at", s(400.001))
        self.assertEqual(r["lifetimes"], [])
        self.assertIn("newest sample", r["header"]["note"])

    def test_at_coverage_of_an_instant(self):
        self.assertEqual(self.query("at", s(30))["header"]["coverage"]["fraction"], 1)
        cov = self.query("at", s(50))["header"]["coverage"]
        self.assertEqual((cov["fraction"], cov["window_ms"], cov["gaps"]), (0, 0, []))

    def test_port(self):
        r = self.query("port", "80")
        self.assertEqual([l["id"] for l in r["lifetimes"]], [1, 2, 8])
        self.assertEqual(r["header"]["filters"], {"local_port": 80})
        self.assertEqual(self.ids("port", "8080"), [4, 10])
        self.assertEqual(self.ids("port", "8080", "--since", s(201)), [10])
        self.assertEqual(self.ids("port", "9"), [])

    def test_process_by_pid_reports_each_reused_pid(self):
        procs = self.query("process", "200")["processes"]
        self.assertEqual([(p["process"]["name"], p["process"]["start_time"]) for p in procs],
                         [('curl "quoted"', s(-500)), ("\u00dfrowser-\u00fc", s(150))])
        first, second = procs
        self.assertEqual(list(first), ["process", "first_activity", "last_activity", "listeners",
                                       "connections", "remotes"])
        self.assertEqual((first["first_activity"], first["last_activity"]), (s(20), s(100)))
        self.assertEqual(first["listeners"], [])
        self.assertEqual([l["id"] for l in first["connections"]], [3, 4])
        self.assertEqual(first["remotes"], [
            {"addr": "2001:db8:1::7", "port": 40000, "proto": "tcp", "count": 1,
             "first_seen": s(20), "last_seen": s(90)},
            {"addr": "::ffff:10.1.2.3", "port": 50000, "proto": "tcp", "count": 1,
             "first_seen": s(60), "last_seen": s(100)}])
        self.assertEqual((second["first_activity"], second["last_activity"]), (s(250), iso(LAST_SAMPLE)))
        self.assertEqual([l["id"] for l in second["listeners"]], [10])
        self.assertEqual([l["id"] for l in second["connections"]], [7])

    def test_process_by_name_and_window(self):
        r = self.query("process", "ngin?")
        self.assertEqual(r["header"]["filters"], {"process": "ngin?"})
        (p,) = r["processes"]
        self.assertEqual(p["process"], {"pid": 100, "name": "nginx", "path": "/usr/sbin/nginx",
                                        "cmdline": "nginx: master process", "user": "root",
                                        "uid": 0, "start_time": s(-1000)})
        self.assertEqual([l["id"] for l in p["listeners"]], [1])
        self.assertEqual([l["id"] for l in p["connections"]], [2, 8])
        self.assertEqual([(x["port"], x["count"]) for x in p["remotes"]], [(51000, 1), (51001, 1)])
        procs = self.query("process", "200", "--since", s(260))["processes"]
        self.assertEqual([p["process"]["start_time"] for p in procs], [s(150)])
        self.assertEqual(self.query("process", "999")["processes"], [])

    def test_summary(self):
        r = self.query("summary")
        self.assertEqual(list(r), ["header", "counts", "top_remote_addrs", "top_remote_ports",
                                   "top_processes", "new_listeners", "first_contacted_remotes"])
        self.assertEqual(r["counts"], {"lifetimes": 10, "tcp": 7, "udp": 3, "listeners": 4,
                                       "connections": 6, "open": 4, "processes": 4, "unattributed": 2})
        self.assertEqual(r["top_remote_addrs"], [  # no DNS answers in this database: names null
            {"addr": "192.168.1.10", "count": 2, "names": None}, {"addr": "10.1.9.9", "count": 1, "names": None},
            {"addr": "2001:db8:1::7", "count": 1, "names": None}, {"addr": "8.8.8.8", "count": 1, "names": None},
            {"addr": "::ffff:10.1.2.3", "count": 1, "names": None}])
        self.assertEqual([p["port"] for p in r["top_remote_ports"]], [53, 443, 40000, 50000, 51000, 51001])
        self.assertEqual([(p["process"]["pid"], p["process"]["start_time"], p["count"])
                          for p in r["top_processes"]],
                         [(100, s(-1000), 3), (200, s(-500), 2), (200, s(150), 2), (300, s(0), 1)])
        self.assertEqual([l["id"] for l in r["new_listeners"]], [1, 5, 6, 10])
        self.assertEqual([(x["addr"], x["first_seen"]) for x in r["first_contacted_remotes"]], [
            ("192.168.1.10", s(10)), ("2001:db8:1::7", s(20)), ("::ffff:10.1.2.3", s(60)),
            ("10.1.9.9", s(300)), ("8.8.8.8", s(350))])

    def test_summary_window_and_top(self):
        r = self.query("summary", "--since", s(200), "--until", s(400), "--top", "2")
        self.assertEqual(r["counts"]["lifetimes"], 8)
        self.assertEqual(r["header"]["filters"], {"top": 2})
        self.assertEqual(len(r["top_remote_addrs"]), 2)
        self.assertEqual([l["id"] for l in r["new_listeners"]], [6, 10])
        # 192.168.1.10 was contacted again at 305 s, but first at 10 s: not new
        self.assertEqual(r["first_contacted_remotes"], [
            {"addr": "10.1.9.9", "first_seen": s(300)}, {"addr": "8.8.8.8", "first_seen": s(350)}])

    def test_timeline(self):
        r = self.query("timeline", "--since", s(295), "--until", s(305))
        got = [(e["at"], e["event"], e["state"], e["lifetime"]["id"]) for e in r["events"]]
        self.assertEqual(got, [
            (s(300), "open", "UNCONN", 6), (s(300), "open", "SYN_SENT", 7),
            (s(301), "state", "ESTABLISHED", 7), (s(301), "close", None, 10),
            (s(305), "open", "NEW_SYN_RECV", 8)])
        self.assertEqual(r["events"][3]["lifetime"]["closed_at"], s(301))

    def test_timeline_whole_and_filtered(self):
        events = self.query("timeline")["events"]
        self.assertEqual(len(events), 10 + 3 + 6)  # opens, state changes, closes
        self.assertEqual([e["at"] for e in events], sorted(e["at"] for e in events))
        got = [(e["event"], e["state"]) for e in self.query("timeline", "--pid", "100", "--state",
                                                               "time_wait")["events"]]
        self.assertEqual(got, [("open", "SYN_RECV"), ("state", "ESTABLISHED"),
                               ("state", "TIME_WAIT"), ("close", None)])
        self.assertEqual(len(self.query("timeline", "--limit", "3")["events"]), 3)


class TestCoverage(Fixture):
    def test_gaps_and_fraction(self):
        cov = self.query("connections", "--since", s(0), "--until", s(500))["header"]["coverage"]
        self.assertEqual(cov, {
            "covered_ms": 195000, "window_ms": 500000, "fraction": 0.39, "runs": 5,
            "gaps": [{"from": s(40), "to": s(60), "ms": 20000},
                     {"from": s(100), "to": s(200), "ms": 100000},
                     {"from": s(215), "to": s(250), "ms": 35000},
                     {"from": s(250), "to": s(300), "ms": 50000},
                     {"from": s(400), "to": s(500), "ms": 100000}],
            "recording_now": False, "last_sample": iso(LAST_SAMPLE),
            "pruned_before": None, "pruned": False,
            # runs written without the names columns (a recorder before version 4): not known
            "names": {"recorded": None, "runs_without": 0, "dropped": None, "why_not": []},
            # the distinct notes of the runs overlapping the window (run 4)
            "notes": ["no netlink: used procfs"]})

    def test_notes_of_the_window(self):
        self.assertEqual(self.query("connections", "--since", s(0), "--until", s(240))["header"]["coverage"]["notes"],
                         [])  # run 4, the only one with a note, began after the window
        self.assertEqual(self.query("summary", "--since", s(245), "--until", s(255))["header"]["coverage"]["notes"],
                         ["no netlink: used procfs"])  # run 4 lies in this one

    def test_clipped_window(self):
        cov = self.query("summary", "--since", s(150), "--until", s(260))["header"]["coverage"]
        self.assertEqual((cov["covered_ms"], cov["window_ms"], cov["runs"]), (15000, 110000, 3))
        self.assertAlmostEqual(cov["fraction"], 15000 / 110000)
        self.assertEqual([(g["from"], g["ms"]) for g in cov["gaps"]],
                         [(s(150), 50000), (s(215), 35000), (s(250), 10000)])

    def test_gap_before_first_sample(self):
        cov = self.query("coverage", "--since", s(-50), "--until", s(20))["header"]["coverage"]
        self.assertEqual(cov["gaps"], [{"from": s(-50), "to": s(0), "ms": 50000}])
        self.assertEqual((cov["covered_ms"], cov["runs"]), (20000, 1))

    def test_no_since_starts_at_first_sample(self):
        h = self.query("coverage", "--until", s(500))["header"]
        self.assertEqual(h["window"], {"since": None, "until": s(500)})
        cov = h["coverage"]
        self.assertEqual((cov["covered_ms"], cov["window_ms"], cov["fraction"]), (195000, None, None))
        self.assertEqual(cov["gaps"][0]["from"], s(40))
        self.assertEqual(len(cov["gaps"]), 5)

    def test_coverage_report_runs(self):
        r = self.query("coverage", "--since", s(150), "--until", s(260))
        self.assertEqual([x["run_id"] for x in r["runs"]], [2, 3, 4])
        self.assertEqual(r["runs"][2], {
            "run_id": 4, "started_at": s(250), "ended_at": s(250), "end_reason": "once", "mode": "once",
            "interval_ms": 10000, "host": "alpha", "os": "linux", "sampler": "netlink",
            "version": "0.1.0", "pid": 1004, "samples": 1, "last_sample": s(250),
            "notes": "no netlink: used procfs"})
        run5 = self.query("coverage")["runs"][4]
        self.assertEqual((run5["ended_at"], run5["end_reason"], run5["samples"]), (None, None, 101))

    def test_header(self):
        h = self.query("coverage")["header"]
        self.assertEqual(list(h), ["report", "host", "database", "generated_at", "window", "filters",
                                   "coverage"])
        self.assertEqual((h["report"], h["host"], h["database"]), ("coverage", "beta", self.db))
        self.assertTrue(h["generated_at"].endswith("Z"))
        self.assertEqual(h["generated_at"], h["window"]["until"])

    def test_recording_now(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "live.db")
            db = create_schema(path)
            now = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
            db.execute("INSERT INTO runs (run_id, started_at, mode, interval_ms, host, os, sampler,"
                       " version, pid) VALUES (1, ?, 'continuous', 5000, 'h', 'linux', 'procfs', '0.1.0', 9)",
                       (now - 60000,))
            db.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (1, ?, ?, 12)", (now - 60000, now - 1000))
            db.commit()
            db.close()
            rc, out, err = run("--db", path, "coverage", "--since", iso(now - 120000))
            self.assertEqual(rc, 0, err)
            header = json.loads(out)["header"]
            cov = header["coverage"]
            # Recent: within two intervals of the tool's own now (a slow
            # start on a loaded machine may pass that; then it is not).
            seen_at = datetime.datetime.fromisoformat(header["generated_at"].replace("Z", "+00:00"))
            late = int(seen_at.timestamp() * 1000) - (now - 1000)
            self.assertEqual(cov["recording_now"], late <= 2 * 5000, f"heartbeat {late} ms before generated_at")
            self.assertEqual(cov["runs"], 1)
            self.assertEqual(cov["gaps"][0]["ms"], 60000)  # the first minute of the two


class TestOutputModes(Fixture):
    def test_ndjson_lines(self):
        rc, out, err = run("--db", self.db, "connections", "--ndjson")
        self.assertEqual((rc, err), (0, ""))
        lines = out.splitlines()
        self.assertEqual(len(lines), 1 + 10)
        first = json.loads(lines[0])
        self.assertEqual(list(first), ["header"])
        self.assertEqual(first["header"]["report"], "connections")
        self.assertEqual([json.loads(x)["id"] for x in lines[1:]], list(range(1, 11)))

    def test_ndjson_other_reports(self):
        _, out, _ = run("--db", self.db, "--ndjson", "process", "200")
        lines = [json.loads(x) for x in out.splitlines()]
        self.assertEqual([len(lines)] + [x["process"]["pid"] for x in lines[1:]], [3, 200, 200])
        _, out, _ = run("--db", self.db, "--ndjson", "summary")
        keys = [list(json.loads(x))[0] for x in out.splitlines()]
        self.assertEqual(keys, ["header", "counts", "top_remote_addrs", "top_remote_ports",
                                "top_processes", "new_listeners", "first_contacted_remotes"])
        _, out, _ = run("--db", self.db, "timeline", "--ndjson")
        self.assertEqual(len(out.splitlines()), 1 + 19)
        _, out, _ = run("--db", self.db, "at", s(401), "--ndjson")
        self.assertEqual(len(out.splitlines()), 1)

    def test_pretty_is_the_same_document(self):
        until = ["--until", s(500)]  # nothing but generated_at may depend on the clock
        for report in (["summary"] + until, ["process", "200"] + until, ["connections"] + until,
                       ["coverage"] + until, ["at", s(30)]):
            rc, out, _ = run("--db", self.db, "--pretty", *report)
            self.assertEqual(rc, 0)
            self.assertIn("\n\t", out)
            pretty = json.loads(out)
            compact = self.query(*report)
            pretty["header"].pop("generated_at")
            compact["header"].pop("generated_at")
            self.assertEqual(pretty, compact)

    def test_global_options_after_report_and_env_db(self):
        rc, out, _ = run("listeners", "--proto=udp", "--db", self.db)
        self.assertEqual([l["id"] for l in json.loads(out)["lifetimes"]], [5, 6])
        env = dict(os.environ, CONNHIST_DB=self.db)
        rc, out, _ = run("port", "53", env=env)
        self.assertEqual((rc, [l["id"] for l in json.loads(out)["lifetimes"]]), (0, [5, 6]))

    def test_help_and_version(self):
        rc, out, err = run("--help")
        self.assertEqual((rc, err), (0, ""))
        self.assertIn("usage: connhist-query", out)
        self.assertEqual(run("--version"), (0, "connhist-query 0.1.0\n", ""))


class TestBadInput(Fixture):
    def bad(self, *args, needle):
        rc, out, err = run("--db", self.db, *args)
        self.assertEqual(rc, 2, (args, err))
        self.assertEqual(out, "")
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith("connhist-query: "), err)
        self.assertIn(needle, err)
        return err

    def test_exact_port_message(self):
        err = self.bad("connections", "--remote-port", "70000", needle="70000")
        self.assertEqual(err, "connhist-query: --remote-port: '70000' is not a port (expected 0-65535)\n")

    def test_each_bad_value_is_named(self):
        cases = [
            (["nosuch"], "'nosuch'"),
            ([], "missing report"),
            (["connections", "--bogus"], "--bogus"),
            (["connections", "--since"], "--since"),
            (["connections", "--since", "yesterday"], "'yesterday'"),
            (["connections", "--until", "2023-13-01"], "'2023-13-01'"),
            (["connections", "--remote", "10.0.0.0/33"], "'10.0.0.0/33'"),
            (["connections", "--remote", "example.com"], "'example.com'"),
            (["connections", "--local-port", "-1"], "'-1'"),
            (["connections", "--port", "8o"], "'8o'"),
            (["connections", "--pid", "12ab"], "'12ab'"),
            (["connections", "--limit", "-5"], "'-5'"),
            (["summary", "--top", "many"], "'many'"),
            (["connections", "--state", "BOGUS"], "'BOGUS'"),
            (["connections", "--proto", "sctp"], "'sctp'"),
            (["connections", "--family", "5"], "'5'"),
            (["connections", "--process", ""], "''"),
            (["connections", "--open=yes"], "--open"),
            (["at", "noon"], "'noon'"),
            (["at"], "TIME"),
            (["port", "70000"], "'70000'"),
            (["port"], "port"),
            (["process"], "PID|NAME"),
            (["listeners", "--remote", "10.0.0.1"], "--remote"),
            (["coverage", "--pid", "1"], "--pid"),
            (["connections", "extra"], "'extra'"),
            (["connections", "--since", s(10), "--until", s(5)], "--since"),
        ]
        for args, needle in cases:
            with self.subTest(args=args):
                self.bad(*args, needle=needle)


class TestDatabases(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def unusable(self, path, needle):
        rc, out, err = run("--db", path, "summary")
        self.assertEqual((rc, out), (1, ""), err)
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(needle, err)

    def test_missing_database_is_not_created(self):
        path = self.path("sub/none.db")
        self.unusable(path, "no database at " + path)
        self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(os.path.dirname(path)))
        self.unusable(self.path("none.db"), "no database")
        self.assertEqual(os.listdir(self.tmp.name), [])

    def test_not_sqlite(self):
        with open(self.path("text.db"), "w") as f:
            f.write("this is not a database, just some text\n" * 100)
        self.unusable(self.path("text.db"), "not a SQLite database")

    def test_empty_sqlite(self):
        sqlite3.connect(self.path("empty.db")).close()
        self.unusable(self.path("empty.db"), "empty database")

    def test_other_tables(self):
        db = sqlite3.connect(self.path("other.db"))
        db.execute("CREATE TABLE customers (id INTEGER)")
        db.commit()
        db.close()
        self.unusable(self.path("other.db"), "not a connhist database")

    def test_newer_schema(self):
        create_schema(self.path("v99.db"), user_version=99).close()
        self.unusable(self.path("v99.db"), "version 99")

    def test_directory(self):
        self.unusable(self.tmp.name, "directory")

    def test_empty_connhist_database(self):
        create_schema(self.path("new.db")).close()
        rc, out, err = run("--db", self.path("new.db"), "summary", "--since", "-1h")
        self.assertEqual((rc, err), (0, ""))
        r = json.loads(out)
        self.assertIsNone(r["header"]["host"])
        cov = r["header"]["coverage"]
        self.assertEqual((cov["covered_ms"], cov["window_ms"], cov["runs"], cov["last_sample"]),
                         (0, 3600000, 0, None))
        self.assertEqual([g["ms"] for g in cov["gaps"]], [3600000])
        self.assertEqual(r["counts"]["lifetimes"], 0)
        rc, out, _ = run("--db", self.path("new.db"), "at", "now")
        self.assertEqual((rc, json.loads(out)["lifetimes"]), (0, []))


class TestReadOnly(Fixture):
    def test_every_report_leaves_the_file_unchanged(self):
        before = sha256(self.db)
        for args in (["connections"], ["listeners"], ["at", s(30)], ["port", "80"],
                     ["process", "200"], ["summary"], ["timeline"], ["coverage"],
                     ["connections", "--remote", "10.0.0.0/8", "--ndjson"]):
            rc, _, err = run("--db", self.db, *args)
            self.assertEqual(rc, 0, err)
        self.assertEqual(sha256(self.db), before)

    ALL_REPORTS = (["connections"], ["listeners"], ["at", "now"], ["port", "80"], ["process", "200"],
                   ["process", "nginx"], ["summary"], ["timeline"], ["coverage"])

    def test_wal_database_gets_no_wal_or_shm_files(self):
        # The recorder's databases are in WAL mode; stopped cleanly, they have no -wal/-shm.
        c = sqlite3.connect(self.db)
        self.assertEqual(c.execute("PRAGMA journal_mode=WAL").fetchone()[0], "wal")
        c.close()
        self.assertFalse(os.path.exists(self.db + "-wal"))
        before = sha256(self.db)
        for args in self.ALL_REPORTS:
            rc, _, err = run("--db", self.db, *args)
            self.assertEqual(rc, 0, err)
            self.assertFalse(os.path.exists(self.db + "-wal"), args)
            self.assertFalse(os.path.exists(self.db + "-shm"), args)
        self.assertEqual(sha256(self.db), before)

    INJECTIONS = ["' OR 1=1 --", "x'; DROP TABLE lifetimes; --", "nginx\" OR \"1\"=\"1", "*') OR ('a'='a",
                  "1; DELETE FROM processes", "%", "_", "[a-z]*' UNION SELECT * FROM runs --"]

    def test_sql_injection_matches_nothing_and_changes_nothing(self):
        before = sha256(self.db)
        # Under valgrind (3 s a run) a quote, a LIKE wildcard and a glob take the paths all eight do.
        for bad in [self.INJECTIONS[i] for i in (0, 5, 7)] if WRAPPER else self.INJECTIONS:
            with self.subTest(value=bad):
                out = json.loads(run("--db", self.db, "connections", "--process", bad)[1])
                self.assertEqual(out["lifetimes"], [])
                out = json.loads(run("--db", self.db, "process", bad)[1])
                self.assertEqual(out["processes"], [])
                out = json.loads(run("--db", self.db, "summary", "--process", bad)[1])
                self.assertEqual(out["counts"]["lifetimes"], 0)
                # Filters with a fixed form refuse such values outright.
                for opt in ("--remote", "--state", "--proto", "--port", "--pid", "--since"):
                    rc, out_text, err = run("--db", self.db, "connections", opt, bad)
                    self.assertEqual((rc, out_text), (2, ""), (opt, err))
        self.assertEqual(sha256(self.db), before)
        c = sqlite3.connect(self.db)
        self.assertEqual(c.execute("SELECT count(*) FROM lifetimes").fetchone()[0], len(LIFETIMES))
        c.close()


# A long history, for the windowed plan (query/filter.c): a window that
# starts more than an hour after the oldest lifetime is answered from
# first_seen ranges plus the lifetimes that are open or longer than an hour.
# The expected rows are computed here from the definition of overlap, not by
# the tool; the durations straddle that hour on purpose.
HOUR = 3_600_000
LONG_DAYS = 5


DAY = 24 * HOUR
LONG_WINDOWS = [(T0 + 2 * DAY, T0 + 2 * DAY + HOUR), (T0 + 3 * DAY + 17, T0 + 3 * DAY + 17),
                (T0 + DAY + 5, T0 + 4 * DAY), (T0 + HOUR + 1, T0 + HOUR + 2)]


def long_history():
    """(lifetimes, state changes) spread over LONG_DAYS days, deterministic:
    random ones, and at the edge of each window lifetimes that end exactly at
    its start after exactly an hour (short: found by the first_seen range),
    after an hour and a millisecond (long: found in lifetimes_long), and one
    that ends a millisecond before it."""
    import random
    rnd = random.Random(7)
    rows, changes = [], []
    for n, (since, _) in enumerate(LONG_WINDOWS):
        for k, (first, closed) in enumerate(((since - HOUR, since), (since - HOUR - 1, since),
                                             (since - HOUR - 1, since - 1))):
            rows.append((5000 + 3 * n + k, first, closed, 11, "192.0.2.2", 443))
    durations = [1_000, 59_000, HOUR - 1, HOUR, HOUR + 1, 3 * HOUR, 2 * 24 * HOUR]
    for i in range(1, 2501):
        first = T0 + rnd.randrange(LONG_DAYS * 24 * HOUR)
        dur = rnd.choice(durations) if rnd.random() < 0.5 else rnd.randrange(1_000, 2 * HOUR)
        closed = None if rnd.random() < 0.05 or first + dur > T0 + LONG_DAYS * 24 * HOUR else first + dur
        pid = rnd.choice([11, 12, 13, None])
        remote = rnd.choice(["192.0.2.1", "192.0.2.2", "2001:db8::9"])
        port = rnd.choice([443, 22, 8080])
        rows.append((i, first, closed, pid, remote, port))
        if closed is not None and i % 3 == 0:
            changes.append((i, first + (closed - first) // 2, "TIME_WAIT"))
    return rows, changes


def build_long_fixture(path):
    db = create_schema(path)
    db.execute("INSERT INTO runs (run_id, started_at, mode, interval_ms, host, os, sampler, version, pid)"
               " VALUES (1, ?, 'continuous', 1000, 'gamma', 'linux', 'netlink', '0', 1)", (T0,))
    end = T0 + LONG_DAYS * 24 * HOUR
    db.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (1, ?, ?, ?)", (T0, end, LONG_DAYS * 86400))
    for pid, name in ((11, "curl"), (12, "sshd"), (13, "curl")):
        db.execute("INSERT INTO processes (pid, start_time, name, first_seen) VALUES (?, ?, ?, ?)",
                   (pid, T0 - 1000, name, T0))
    rows, changes = long_history()
    for i, first, closed, pid, remote, port in rows:
        add_lifetime(db, i, first, family=6 if ":" in remote else 4, local_addr="10.0.0.5", local_port=40000,
                     remote_addr=remote, remote_port=port, last_seen=None if closed is None else closed - 1000,
                     closed_at=closed, close_reason=None if closed is None else "gone", pid=pid,
                     proc_start=None if pid is None else T0 - 1000, holders=None if pid is None else 1)
    for lifetime_id, at, state in changes:
        add_state_change(db, lifetime_id, at, state)
    db.commit()
    db.close()


class TestLongHistory(Fixture):
    build = staticmethod(build_long_fixture)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.rows, cls.changes = long_history()

    def overlapping(self, since, until, keep=lambda r: True):
        return [r for r in sorted(self.rows, key=lambda r: r[0])
                if r[1] <= until and (r[2] is None or r[2] >= since) and keep(r)]

    def windows(self):
        # Under valgrind (3 s a run) two of the four: an instant and a window of days.
        for since, until in LONG_WINDOWS[1:3] if WRAPPER else LONG_WINDOWS:
            yield since, until, ["--since", iso(since), "--until", iso(until)]

    def test_connections_in_windows(self):
        for since, until, w in self.windows():
            with self.subTest(since=iso(since), until=iso(until)):
                want = [r[0] for r in self.overlapping(since, until)]
                self.assertTrue(want)
                got = [l["id"] for l in self.query("connections", *w)["lifetimes"]]
                self.assertEqual(got, want)
                want = [r[0] for r in self.overlapping(since, until, lambda r: r[4] == "192.0.2.2")]
                got = [l["id"] for l in self.query("connections", "--remote", "192.0.2.2", *w)["lifetimes"]]
                self.assertEqual(got, want)
                want = [r[0] for r in self.overlapping(since, until, lambda r: r[5] == 443)]
                got = [l["id"] for l in self.query("connections", "--port", "443", *w)["lifetimes"]]
                self.assertEqual(got, want)
                want = [r[0] for r in self.overlapping(since, until, lambda r: r[3] in (11, 13))]
                got = [l["id"] for l in self.query("connections", "--process", "curl", *w)["lifetimes"]]
                self.assertEqual(got, want)

    def test_at_an_instant(self):
        for t in (T0 + 2 * DAY + 123, T0 + 4 * DAY, LONG_WINDOWS[0][0] - 1):
            want = [r[0] for r in sorted(self.rows, key=lambda r: r[0])
                    if r[1] <= t and (r[2] is None or r[2] > t)]
            got = [l["id"] for l in self.query("at", iso(t))["lifetimes"]]
            self.assertEqual(got, want)

    def test_timeline_summary_and_process(self):
        for since, until, w in self.windows():
            with self.subTest(since=iso(since), until=iso(until)):
                inside = lambda t: since <= t <= until
                want = sorted([(r[1], 0, r[0]) for r in self.rows if inside(r[1])] +
                              [(c[1], 1, c[0]) for c in self.changes if inside(c[1])] +
                              [(r[2], 2, r[0]) for r in self.rows if r[2] is not None and inside(r[2])])
                events = self.query("timeline", *w)["events"]
                kinds = {"open": 0, "state": 1, "close": 2}
                got = [(e["lifetime"]["first_seen"], kinds[e["event"]], e["lifetime"]["id"]) for e in events]
                self.assertEqual([(k, i) for _, k, i in got], [(k, i) for _, k, i in want])
                counts = self.query("summary", *w)["counts"]
                self.assertEqual(counts["lifetimes"], len(self.overlapping(since, until)))
                v4 = lambda r: r[4].startswith("192.0.2.")  # a prefix: a SQL function, registered first
                counts = self.query("summary", "--remote", "192.0.2.0/24", *w)["counts"]
                self.assertEqual(counts["lifetimes"], len(self.overlapping(since, until, v4)))
                procs = self.query("process", "curl", "--remote", "192.0.2.0/24", *w)["processes"]
                self.assertEqual(sum(len(p["connections"]) for p in procs),
                                 len(self.overlapping(since, until, lambda r: v4(r) and r[3] in (11, 13))))
                procs = self.query("process", "curl", *w)["processes"]
                for p in procs:
                    pid = p["process"]["pid"]
                    want = [r[0] for r in self.overlapping(since, until, lambda r: r[3] == pid)]
                    self.assertEqual([l["id"] for l in p["connections"]], want)
                self.assertEqual(sorted(p["process"]["pid"] for p in procs),
                                 sorted({r[3] for r in self.overlapping(since, until)} & {11, 13}))


# A UDP socket connected and disconnected 8 times: 17 states, more than the
# states column keeps (15); state_changes has them all.
MANY_STATES = ["UNCONN", "ESTABLISHED"] * 8 + ["CLOSE"]


def build_many_states(path):
    db = create_schema(path)
    db.execute("INSERT INTO runs (run_id, started_at, mode, interval_ms, host, os, sampler, version, pid)"
               " VALUES (1, ?, 'continuous', 1000, 'delta', 'linux', 'netlink', '0', 1)", (T0,))
    db.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (1, ?, ?, 100)", (T0, T0 + 100_000))
    add_lifetime(db, 1, T0, proto="udp", local_port=5353, state=MANY_STATES[-1], states=MANY_STATES,
                 last_seen=T0 + 90_000, closed_at=T0 + 91_000, close_reason="gone")
    for i, state in enumerate(MANY_STATES[1:], 1):
        add_state_change(db, 1, T0 + i * 1000, state)
    db.commit()
    db.close()


class TestManyStates(Fixture):
    build = staticmethod(build_many_states)

    def test_every_state_in_order(self):
        [l] = self.query("connections")["lifetimes"]
        self.assertEqual(l["states"], MANY_STATES)
        self.assertEqual(l["state"], "CLOSE")
        c = sqlite3.connect(self.db)
        self.assertEqual(c.execute("SELECT states FROM v_lifetimes").fetchone()[0], ",".join(MANY_STATES[:15]))
        c.close()

    def test_state_filter_past_the_column(self):
        self.assertEqual(self.ids("connections", "--state", "CLOSE"), [1])  # only in state_changes
        self.assertEqual(self.ids("connections", "--state", "UNCONN"), [1])
        self.assertEqual(self.ids("connections", "--state", "LISTEN"), [])
        events = [e["state"] for e in self.query("timeline")["events"] if e["event"] != "close"]
        self.assertEqual(events, MANY_STATES)


class TestPlans(Fixture):
    """Every index of lifetimes earns its place: some report's plan searches
    it (CONNHIST_EXPLAIN prints the plans), and no windowed report scans the
    whole table."""
    build = staticmethod(build_long_fixture)

    WINDOW = ["--since", str((T0 + 2 * DAY) // 1000), "--until", str((T0 + 2 * DAY + HOUR) // 1000)]
    CASES = [
        (["connections", "--remote", "192.0.2.2"], "lifetimes_remote (remote_addr_id=? AND rowid>? AND rowid<?)"),
        (["connections", "--local-port", "40000"], "lifetimes_local_port (local_port=? AND rowid>? AND rowid<?)"),
        (["connections", "--remote-port", "22"], "lifetimes_remote_port (remote_port=? AND rowid>? AND rowid<?)"),
        (["connections", "--pid", "11"], "lifetimes_process (proc_id=? AND rowid>? AND rowid<?)"),
        (["process", "curl"], "lifetimes_process (proc_id=? AND rowid>? AND rowid<?)"),
        (["connections"], "l USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
        (["timeline", "--port", "443"], "lifetimes_local_port (local_port=? AND rowid>? AND rowid<?)"),
        (["summary", "--remote", "2001:db8::9"], "lifetimes_remote (remote_addr_id=? AND rowid>? AND rowid<?)"),
    ]

    def plans(self, args):
        env = dict(os.environ, CONNHIST_EXPLAIN="1")
        rc, out, err = run("--db", self.db, *args, env=env)
        self.assertEqual(rc, 0, err)
        json.loads(out)
        lines = [l[len("connhist-query: plan: "):] for l in err.splitlines()]
        self.assertTrue(lines and all(l for l in lines), err)
        return lines

    def test_each_index_is_searched_and_nothing_scans_lifetimes(self):
        used = set()
        for args, expected in self.CASES:
            with self.subTest(args=args):
                plan = self.plans(args + self.WINDOW)
                self.assertTrue(any(expected in l for l in plan), "\n".join(plan))
                self.assertTrue(any("lifetimes_long" in l for l in plan), "\n".join(plan))
                full = [l for l in plan if l.startswith("SCAN l") or l.startswith("SCAN lifetimes")]
                self.assertEqual(full, [], "\n".join(plan))
                used |= {w for l in plan for w in l.split() if w.startswith("lifetimes_")}
        c = sqlite3.connect(self.db)
        indexes = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index'"
                                           " AND tbl_name = 'lifetimes' AND sql IS NOT NULL")}
        c.close()
        self.assertEqual(indexes, used)

    def test_window_from_the_oldest_ends_at_until(self):
        """A window that reaches back to the oldest lifetime is a scan in id
        order, which stops at the last block of ids begun by --until (ids
        follow first_seen) instead of reading the rest of history."""
        since, until = T0 - HOUR, T0 + 2 * DAY
        args = ["connections", "--since", str(since // 1000), "--until", str(until // 1000)]
        plan = self.plans(args)
        self.assertTrue(any("l USING INTEGER PRIMARY KEY (rowid<?)" in l for l in plan), "\n".join(plan))
        self.assertEqual([l for l in plan if l.startswith("SCAN l")], [], "\n".join(plan))
        rc, out, err = run("--db", self.db, *args)
        self.assertEqual(rc, 0, err)
        got = [lt["id"] for lt in json.loads(out)["lifetimes"]]
        c = sqlite3.connect(self.db)
        want = [r[0] for r in c.execute("SELECT lifetime_id FROM lifetimes WHERE first_seen <= ?"
                                        " AND (closed_after IS NULL OR first_seen + closed_after >= ?)"
                                        " ORDER BY lifetime_id", (until, since))]
        later = c.execute("SELECT COUNT(*) FROM lifetimes WHERE first_seen > ?", (until,)).fetchone()[0]
        c.close()
        self.assertEqual(got, want)
        self.assertTrue(want and later > 0, (len(want), later))  # the window ends before history does

    def test_explain_changes_no_output(self):
        env = dict(os.environ, CONNHIST_EXPLAIN="1")
        for args, _ in self.CASES:
            with self.subTest(args=args):
                rc, out, _ = run("--db", self.db, *(args + self.WINDOW), env=env)
                plain = run("--db", self.db, *(args + self.WINDOW))[1]
                strip = lambda d: {k: v for k, v in d.items() if k != "header"}  # noqa: E731 (generated_at)
                self.assertEqual(strip(json.loads(out)), strip(json.loads(plain)))


CACHE_PROCS = 5000  # proc_ids 1..5000: i and i + 4096 share a slot of the process cache (query/proc_cache.c)
CACHE_LIFETIMES = 6000
LONG_ADDR = "x" * 60  # a hand-edited dictionary's text, longer than any address: never cached


def cache_rows(host):
    """The lifetimes of build_cache_fixture for host: (id, proc_id or None, remote text or None). Owners
    alternate between processes that share a cache slot; the remotes are 3,000 distinct addresses, more
    than the address cache looks up one by one before it reads the whole dictionary."""
    flip = host == "two"  # the second database: the same ids, other processes and addresses
    rows = []
    for i in range(1, CACHE_LIFETIMES + 1):
        proc = None if i % 11 == 0 else (5 if i % 2 else 4101) if i < 200 else (i * 7919) % CACHE_PROCS + 1
        remote = None if i % 13 == 0 else LONG_ADDR if i == 77 else "198.51.%d.%d" % (((i * 31) % 3000) // 250, (i * 31) % 250 + (3 if flip else 1))
        rows.append((i, proc, remote))
    return rows


def build_cache_fixture(path, host="one"):
    db = create_schema(path)
    db.execute("INSERT INTO runs (run_id, started_at, mode, interval_ms, host, os, sampler, version, pid)"
               " VALUES (1, ?, 'continuous', 1000, ?, 'linux', 'netlink', '0', 1)", (T0, host))
    db.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (1, ?, ?, 2)", (T0, T0 + HOUR))
    for i in range(1, CACHE_PROCS + 1):
        n = CACHE_PROCS + 1 - i if host == "two" else i
        db.execute("INSERT INTO processes (proc_id, pid, start_time, name, path, cmdline, uid, user, first_seen)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (i, 1000 + n, T0 - n, "p%d" % n, None if n % 5 == 0 else "/bin/p%d" % n, "p%d --%s" % (n, host),
                    None if n % 7 == 0 else n % 3, None if n % 7 == 0 else "u%d" % (n % 3), T0))
    for lifetime_id, proc, remote in cache_rows(host):
        c = db.execute("SELECT pid, start_time FROM processes WHERE proc_id = ?", (proc,)).fetchone() if proc else None
        add_lifetime(db, lifetime_id, T0 + lifetime_id, local_addr="10.0.0.5", local_port=40000,
                     remote_addr=remote, remote_port=None if remote is None else 443,
                     pid=None if c is None else c[0], proc_start=None if c is None else c[1])
    db.commit()
    db.close()


class TestCachedColumns(Fixture):
    """Lifetimes carry their process and remote address from caches by id (query/proc_cache.c,
    query/addr_text.c), not from a join: every row must still be the database's own, through slot
    collisions, the switch to reading the whole address dictionary, text too long for a slot, and a
    second database whose ids mean other processes and addresses."""
    build = staticmethod(build_cache_fixture)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db2 = os.path.join(cls.tmp.name, "two.db")
        build_cache_fixture(cls.db2, "two")

    def expected(self, path):
        """id -> (process as the tool writes it, remote_addr), from the database by SQL."""
        c = sqlite3.connect(path)
        out = {}
        for row in c.execute("SELECT l.lifetime_id, p.pid, p.name, p.path, p.cmdline, p.user, p.uid, p.start_time, ra.addr"
                             " FROM lifetimes l LEFT JOIN processes p ON p.proc_id = l.proc_id"
                             " LEFT JOIN addrs ra ON ra.addr_id = l.remote_addr_id"):
            proc = None if row[1] is None else {"pid": row[1], "name": row[2], "path": row[3], "cmdline": row[4],
                                                 "user": row[5], "uid": row[6], "start_time": iso(row[7])}
            out[row[0]] = (proc, row[8])
        c.close()
        return out

    def check(self, lifetimes, path):
        want = self.expected(path)
        self.assertEqual(len(lifetimes), CACHE_LIFETIMES)
        for l in lifetimes:
            self.assertEqual((l["process"], l["remote_addr"]), want[l["id"]], l["id"])
        self.assertEqual({l["remote_addr"] for l in lifetimes if l["id"] == 77}, {LONG_ADDR})

    def test_connections(self):
        self.check(self.query("connections")["lifetimes"], self.db)

    def test_ndjson_and_timeline(self):
        rc, out, err = run("--db", self.db, "--ndjson", "connections")
        self.assertEqual((rc, err), (0, ""))
        self.check([json.loads(l) for l in out.splitlines()[1:]], self.db)
        events = self.query("timeline")["events"]
        self.check([e["lifetime"] for e in events if e["event"] == "open"], self.db)

    def test_two_databases(self):
        rc, out, err = run("--db", self.db, "--db", self.db2, "--ndjson", "connections")
        self.assertEqual((rc, err), (0, ""))
        rows = [json.loads(l) for l in out.splitlines()]
        by_host = {"one": [], "two": []}
        for r in rows:
            if "id" in r:
                by_host[r.pop("host")].append(r)
        self.check(by_host["one"], self.db)
        self.check(by_host["two"], self.db2)


if __name__ == "__main__":
    if not QUERY or not SCHEMA:
        sys.exit("set CONNHIST_QUERY and CONNHIST_SCHEMA")
    sys.exit(not unittest.main(exit=False).result.wasSuccessful())
