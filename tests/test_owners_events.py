"""The kernel event source of socket owners (issue 13): as root, a socket
that opens and closes between two samples, which /proc never showed in any
process, still names its process: pid and the very start time the /proc
scan records for it (the same processes row), or, for a process gone by the
next sample, the name the event gave. Accepted sockets belong to the process
that accepted them, a connection left in a listener's backlog to nobody.
Without the event source (--events off, not root, a load the kernel refuses)
the recorder records as before and says why in the run's notes.

Real binaries, real loopback sockets, a 2 s interval so that what a test does
right after a sample surely falls before the next one (checked: a round
during which a sample was taken is done again)."""

import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

from helpers import QUERY, RECORD, WRAPPER, rows, scratch_dir, stop_record, wait_for_samples

INTERVAL = "2s"
HZ = os.sysconf("SC_CLK_TCK")


def build_info():
    try:
        p = subprocess.run([RECORD, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as e:  # not built yet: CMake lists the classes (tests/cases.py) before it builds
        return f"cannot run {RECORD}: {e}"
    return p.stdout


def why_unavailable():
    """Why this machine cannot run the event source, or None. A machine that
    could and does not is a failure, not a skip."""
    if os.geteuid() != 0:
        return "needs root to load BPF programs"
    if "BPF" not in build_info():
        return "connhist-record was built without the BPF owner events: " + build_info().strip()
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    try:
        with open("/sys/kernel/security/lockdown") as f:
            if "[confidentiality]" in f.read():
                return "the kernel is locked down"
    except OSError:
        pass
    return None


UNAVAILABLE = why_unavailable()
if UNAVAILABLE:
    print(f"skipping the owner event tests: {UNAVAILABLE}", file=sys.stderr)


def start_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


# A process that holds a listener (so a sample sees it and the /proc scan
# makes its processes row) and, for each line it reads, makes one short
# connection to it: connect, accept, one byte each way, client closes first.
SERVER = r"""
import json, socket, sys, time
host = sys.argv[1]
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
l = socket.socket(fam)
l.bind((host, 0))
l.listen(64)
print(json.dumps({"lport": l.getsockname()[1]}), flush=True)
for line in sys.stdin:
    t0 = time.monotonic()
    c = socket.create_connection((host, l.getsockname()[1]))
    a, _ = l.accept()
    c.sendall(b"x")
    a.recv(1)
    a.sendall(b"y")
    c.recv(1)
    cport = c.getsockname()[1]
    c.close()
    a.close()
    print(json.dumps({"cport": cport, "ms": (time.monotonic() - t0) * 1000}), flush=True)
"""

# A process that names itself, does one thing in a thread of another name
# and exits at once (the owner is the process, thread group id and leader's
# name, whatever thread acted):
#   tcp HOST PORT: connect to a listener, send a byte, close;
#   udp: send one datagram from a new socket to a closed port, close.
# It starts, says it is ready, and acts when it reads a line (so that a
# test can start it before a sample and make it act right after the next:
# starting Python takes seconds on a loaded machine). It prints its pid,
# its start in clock ticks, the port it used and its socket's cookie (the
# identity sock_diag reports: the port number alone may be another
# process's a moment later).
ONE_SHOT = r"""
import ctypes, json, os, socket, struct, sys, threading
prctl = ctypes.CDLL(None).prctl
prctl(15, b"connhist-owned", 0, 0, 0)  # PR_SET_NAME: the comm of this, the leader
with open("/proc/self/stat") as f:
    ticks = int(f.read().rsplit(")", 1)[1].split()[19])
used = {}
print("ready", flush=True)
sys.stdin.readline()

def act():
    prctl(15, b"connhist-thread", 0, 0, 0)
    if sys.argv[1] == "tcp":
        c = socket.create_connection((sys.argv[2], int(sys.argv[3])))
        used["port"] = c.getsockname()[1]
        c.sendall(b"x")
    else:
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.sendto(b"x", ("127.0.0.1", 9))
        used["port"] = c.getsockname()[1]
    used["cookie"] = struct.unpack("Q", c.getsockopt(socket.SOL_SOCKET, 57, 8))[0]  # SO_COOKIE
    c.close()

t = threading.Thread(target=act)
t.start()
t.join()
print(json.dumps({"pid": os.getpid(), "ticks": ticks, **used}), flush=True)
"""


class Recorder:
    """connhist-record at a 2 s interval (run through prefix, a copy record),
    and the samples it has taken."""

    def __init__(self, db, *args, prefix=(), record=RECORD, env=None):
        self.db = db
        cmd = list(prefix) + WRAPPER + [record, "--db", db, "--interval", INTERVAL] + list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        wait_for_samples(db, 2, self.proc)

    def samples(self):
        r = rows(self.db, "SELECT COALESCE(SUM(samples), 0) AS n FROM heartbeats"
                          " WHERE run_id = (SELECT MAX(run_id) FROM runs WHERE pid = ?)", (self.proc.pid,))
        return r[0]["n"]

    def wait_next(self):
        wait_for_samples(self.db, self.samples() + 1, self.proc)

    def lost(self):
        """Events this run lost so far (runs.event_overruns, written as it
        counts them): a burst of another process on this machine can fill
        the kernel's buffer, and what act() did may be among what was lost."""
        r = rows(self.db, "SELECT COALESCE(MAX(event_overruns), 0) AS n FROM runs WHERE pid = ?", (self.proc.pid,))
        return r[0]["n"]

    def between_samples(self, act, unseen=None, prepare=None, tries=5):
        """Runs act() right after a sample (act(prepare()) where prepare is
        given, prepared before that sample); again if a sample was taken
        meanwhile. A sample taken while act() ran may commit only after it (a
        loaded machine): where unseen(result) is given, the rows of act()'s
        sockets are read once the samples after it are in, and act() is done
        again if any of them was seen by a sample, or if the run lost events
        meanwhile (another process's burst: see lost())."""
        lossy = 0
        for _ in range(tries):
            ready = prepare() if prepare else None
            self.wait_next()
            before, lost = self.samples(), self.lost()
            result = act(ready) if prepare else act()
            if self.samples() != before:
                continue
            if unseen is not None:
                self.wait_next()
                self.wait_next()
                if not unseen(result):
                    continue
                if self.lost() != lost:
                    print(f"the run lost {self.lost() - lost} events meanwhile: again", file=sys.stderr)
                    lossy += 1
                    continue
            return result
        raise AssertionError(f"none of {tries} tries fell between two samples"
                             f"{f' ({lossy} lost events meanwhile)' if lossy else ''}")

    def stop(self):
        self.wait_next()
        self.wait_next()  # the TIME_WAIT entries and announcements are in
        code, _, err = stop_record(self.proc, timeout=60)
        return code, err


def notes(db):
    return rows(db, "SELECT notes FROM runs ORDER BY run_id DESC LIMIT 1")[0]["notes"] or ""


def ends(db, host, lport, cport):
    """The client and the server end of one connection, by their ports."""
    client = rows(db, "SELECT * FROM v_lifetimes WHERE proto = 'tcp' AND local_port = ? AND remote_port = ?"
                      " AND local_addr = ?", (cport, lport, host))
    server = rows(db, "SELECT * FROM v_lifetimes WHERE proto = 'tcp' AND local_port = ? AND remote_port = ?"
                      " AND local_addr = ?", (lport, cport, host))
    return client, server


def losses(db):
    """What the runs said they lost, for a failure's message: an owner
    missing beside a loss is not the same bug as one missing without."""
    return [(r["notes"], r["event_overruns"]) for r in rows(db, "SELECT notes, event_overruns FROM runs")]


def only_events(found):
    """True when rows were found and no sample saw any of them."""
    return bool(found) and all(r["seen_by"] is not None for r in found)


def udp_unseen(db):
    return lambda shot: only_events(rows(db, "SELECT seen_by FROM v_lifetimes WHERE proto = 'udp' AND cookie = ?",
                                         (shot["cookie"],)))


SO_COOKIE = 57  # <asm-generic/socket.h>: the socket's cookie, as sock_diag gives it


def listener():
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(1024)
    return l, l.getsockname()[1]


class Shot:
    """A one-shot process, started and ready; go() makes it act and exit."""

    def __init__(self, *args):
        self.p = subprocess.Popen([sys.executable, "-c", ONE_SHOT] + list(args), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self.p.stdout.readline().strip() != "ready":
            raise AssertionError(self.p.communicate(timeout=30)[1])

    def go(self):
        out, err = self.p.communicate("go\n", timeout=60)
        if self.p.returncode != 0:
            raise AssertionError(err)
        return json.loads(out)


def expected_start(db, ticks):
    """The start time the recorder gives a process that started `ticks`
    clock ticks after boot: the run's boot time plus the ticks."""
    boot = rows(db, "SELECT boot_time FROM runs ORDER BY run_id DESC LIMIT 1")[0]["boot_time"]
    return boot + ticks * 1000 // HZ


class ShortConnectionsTest(unittest.TestCase):
    def setUp(self):
        if UNAVAILABLE:
            self.skipTest(UNAVAILABLE)
        self.db = os.path.join(scratch_dir(), "connhist.db")

    def server(self, host):
        p = subprocess.Popen([sys.executable, "-c", SERVER, host], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True)
        def stop():
            p.stdin.close()
            p.wait(10)
            p.stdout.close()

        self.addCleanup(stop)
        return p, json.loads(p.stdout.readline())["lport"]

    @staticmethod
    def short_connection(p):
        p.stdin.write("go\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    def test_owner_alive_is_the_scanned_process(self):
        """Both ends of a connection that opened and closed between two
        samples name the process that made them, with the start time and the
        processes row the /proc scan gave the same process for its listener."""
        for host in ("127.0.0.1", "::1"):
            with self.subTest(host=host):
                self.db = os.path.join(scratch_dir(), "connhist.db")
                srv, lport = self.server(host)
                rec = Recorder(self.db)
                made = rec.between_samples(lambda: self.short_connection(srv),
                                           lambda m: only_events(sum(ends(self.db, host, lport, m["cport"]), [])))
                code, err = rec.stop()
                self.assertEqual(code, 0, err)
                print(f"{host}: a connection of {made['ms']:.1f} ms between two samples", file=sys.stderr)
                ticks = start_ticks(srv.pid)
                start = expected_start(self.db, ticks)
                client, server = ends(self.db, host, lport, made["cport"])
                self.assertEqual(len(client), 1, client)
                self.assertEqual(len(server), 1, server)
                self.assertEqual(server[0]["seen_by"], "destroy_event_only")
                self.assertEqual(client[0]["seen_by"], "destroy_event_time_wait")
                [listener] = rows(self.db, "SELECT * FROM v_lifetimes WHERE proto = 'tcp' AND local_port = ?"
                                           " AND local_addr = ? AND state = 'LISTEN'", (lport, host))
                for r in (client[0], server[0], listener):
                    self.assertEqual((r["pid"], r["proc_start"]), (srv.pid, start), (r, losses(self.db)))
                    self.assertEqual(r["holders"], 1)
                # How each owner is known: the listener's fd was seen, the others only by events.
                self.assertEqual([r["owner_source"] for r in (client[0], server[0], listener)],
                                 ["event", "event", "socket"])
                procs = rows(self.db, "SELECT * FROM processes WHERE pid = ?", (srv.pid,))
                self.assertEqual(len(procs), 1, procs)
                self.assertEqual(procs[0]["start_time"], start)
                self.assertIsNotNone(procs[0]["path"])  # alive: read from /proc
                self.assertIn(SERVER.strip().splitlines()[0], procs[0]["cmdline"])
                srv.stdin.close()
                srv.wait(10)

    def test_owner_gone_by_the_next_sample(self):
        """A process that connects, closes and exits between two samples:
        its pid, its start time and the name it gave itself, from the event
        (its path and command line could not be read any more: NULL). A
        thread of it acted: the owner is the process and its leader's name."""
        l, lport = listener()
        rec = Recorder(self.db)

        def act(ready):
            shot = ready.go()
            a, _ = l.accept()
            a.recv(1)
            a.close()
            return shot

        shot = rec.between_samples(act, lambda shot: only_events(ends(self.db, "127.0.0.1", lport, shot["port"])[0]),
                                   lambda: Shot("tcp", "127.0.0.1", str(lport)))
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        l.close()
        client, server = ends(self.db, "127.0.0.1", lport, shot["port"])
        self.assertEqual(len(client), 1, client)
        self.assertIn(client[0]["seen_by"], ("destroy_event_only", "destroy_event_time_wait"))  # no sample saw it
        self.assertEqual((client[0]["pid"], client[0]["proc_start"]),
                         (shot["pid"], expected_start(self.db, shot["ticks"])), (client[0], losses(self.db)))
        [p] = rows(self.db, "SELECT * FROM processes WHERE pid = ? AND start_time = ?",
                   (shot["pid"], client[0]["proc_start"]))
        self.assertEqual(p["name"], "connhist-owned")
        self.assertIsNone(p["path"])
        self.assertIsNone(p["cmdline"])
        self.assertEqual(p["uid"], 0)
        # The server end was read by this process, which accepted it.
        self.assertEqual(len(server), 1, server)
        self.assertEqual(server[0]["pid"], os.getpid())

    def test_accepted_by_the_accepting_process(self):
        """The server end of a connection belongs to the process that
        accepted it, the client end to the one that connected; a connection
        left in the backlog, accepted by nobody, to nobody."""
        rec = Recorder(self.db)

        def prepare():  # a new listener each try: the last one is closed
            l, lport = listener()
            return l, lport, Shot("tcp", "127.0.0.1", str(lport)), Shot("tcp", "127.0.0.1", str(lport))

        def act(ready):
            l, lport, accepted, never = ready
            shot = accepted.go()
            a, _ = l.accept()
            a.recv(1)
            a.sendall(b"y")
            a.close()
            lost = never.go()  # never accepted
            l.close()  # frees the backlog
            return lport, shot, lost

        def unseen(done):
            lport, shot, lost = done
            return only_events(ends(self.db, "127.0.0.1", lport, shot["port"])[0] +
                               ends(self.db, "127.0.0.1", lport, lost["port"])[0])

        lport, shot, lost = rec.between_samples(act, unseen, prepare)
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        client, server = ends(self.db, "127.0.0.1", lport, shot["port"])
        self.assertEqual([r["pid"] for r in client], [shot["pid"]])
        self.assertEqual([r["pid"] for r in server], [os.getpid()])
        self.assertEqual(server[0]["proc_start"], expected_start(self.db, start_ticks(os.getpid())))
        client, _ = ends(self.db, "127.0.0.1", lport, lost["port"])
        self.assertEqual([r["pid"] for r in client], [lost["pid"]])
        # Reset as the listener closed, the kernel announces it without its peer's port
        # and its local address: the kernel event gave them.
        server = rows(self.db, "SELECT * FROM v_lifetimes WHERE proto = 'tcp' AND local_port = ?"
                               " AND remote_addr = '127.0.0.1' AND (remote_port IS NULL OR remote_port IN (0, ?))",
                      (lport, lost["port"]))
        self.assertEqual([(r["local_addr"], r["remote_port"]) for r in server], [("127.0.0.1", lost["port"])])
        self.assertEqual(len(server), 1, server)
        self.assertEqual(server[0]["seen_by"], "destroy_event_only")
        self.assertIsNone(server[0]["pid"], server[0])  # never a guess (the listener's process)
        self.assertIsNone(server[0]["proc_start"])

    @staticmethod
    def reset_connection(host, l):
        """A connection to listener l that both ends close with a reset
        (SO_LINGER 0 s); the client's port and both ends' cookies (the
        sockets of other tests may have the same ports), client first."""
        c = socket.create_connection(l.getsockname()[:2])
        a, _ = l.accept()
        cport = c.getsockname()[1]
        cookies = [struct.unpack("Q", end.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8))[0] for end in (c, a)]
        for end in (c, a):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            end.close()
        return cport, cookies

    def reset_between_samples(self, host, env=None):
        """The listener's and the client's ports of a connection reset by its
        process between two samples, and the two ends' lifetimes, client
        first."""
        self.db = os.path.join(scratch_dir(), f"reset-{host}.db")
        l = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        l.bind((host, 0))
        l.listen(16)
        self.addCleanup(l.close)
        lport = l.getsockname()[1]
        rec = Recorder(self.db, env=env)
        def ends(made):
            _, (client, server) = made
            return rows(self.db, "SELECT * FROM v_lifetimes WHERE proto = 'tcp' AND cookie IN (?, ?)"
                                 " ORDER BY cookie = ?", (client, server, server))

        made = rec.between_samples(lambda: self.reset_connection(host, l), lambda m: only_events(ends(m)))
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        return lport, made[0], ends(made)

    def test_reset_by_its_process(self):
        """Both ends of a connection that opened between two samples and was
        closed with a reset by its process (SO_LINGER 0 s), which the kernel
        announces with its remote port and local address cleared: their rows
        have the addresses the kernel event gave."""
        for host in ("127.0.0.1", "::1"):
            with self.subTest(host=host):
                lport, cport, found = self.reset_between_samples(host)
                self.assertEqual(len(found), 2, found)
                client, server = found
                self.assertEqual([r["seen_by"] for r in found], ["destroy_event_only"] * 2, found)
                self.assertEqual((client["local_addr"], client["local_port"], client["remote_addr"],
                                  client["remote_port"]), (host, cport, host, lport), (client, losses(self.db)))
                self.assertEqual((server["local_addr"], server["local_port"], server["remote_addr"],
                                  server["remote_port"]), (host, lport, host, cport), (server, losses(self.db)))
                self.assertEqual(client["pid"], os.getpid(), client)

    def test_reset_by_its_process_events_off(self):
        """The same connection without the owner events: the client end's
        remote port, which the kernel cleared, is not known (NULL, not 0);
        its remote address and local port are the connection's."""
        lport, cport, found = self.reset_between_samples("127.0.0.1", dict(os.environ, CONNHIST_EVENTS="off"))
        self.assertEqual(len(found), 2, found)
        client, server = found
        self.assertEqual([r["seen_by"] for r in found], ["destroy_event_only"] * 2, found)
        self.assertEqual((client["local_addr"], client["local_port"], client["remote_addr"], client["remote_port"]),
                         ("0.0.0.0", cport, "127.0.0.1", None), client)
        # The client's reset reached the server end first: closed by the kernel, not by its
        # process, it kept its addresses.
        self.assertEqual((server["local_addr"], server["local_port"], server["remote_addr"], server["remote_port"]),
                         ("127.0.0.1", lport, "127.0.0.1", cport), server)
        self.assertEqual(rows(self.db, "SELECT count(*) AS n FROM lifetimes WHERE proto = 6 AND remote_port = 0"),
                         [{"n": 0}])

    def test_udp_sent_once(self):
        """A UDP socket that sends one datagram and closes names its owner."""
        rec = Recorder(self.db)
        shot = rec.between_samples(Shot.go, udp_unseen(self.db), lambda: Shot("udp"))
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        [r] = rows(self.db, "SELECT * FROM v_lifetimes WHERE proto = 'udp' AND cookie = ?", (shot["cookie"],))
        self.assertEqual(r["seen_by"], "destroy_event_only")
        self.assertEqual((r["pid"], r["proc_start"]), (shot["pid"], expected_start(self.db, shot["ticks"])))
        self.assertNotIn("socket owner events off", notes(self.db))

    def test_events_off(self):
        """--events off (here from CONNHIST_EVENTS, its default): the same
        socket is recorded without an owner, and the run says why."""
        rec = Recorder(self.db, env=dict(os.environ, CONNHIST_EVENTS="off"))
        shot = rec.between_samples(Shot.go, udp_unseen(self.db), lambda: Shot("udp"))
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        [r] = rows(self.db, "SELECT * FROM v_lifetimes WHERE proto = 'udp' AND cookie = ?", (shot["cookie"],))
        self.assertEqual(r["seen_by"], "destroy_event_only")
        self.assertIsNone(r["pid"])
        self.assertIn("socket owner events off: --events off,", notes(self.db))


class LossTest(unittest.TestCase):
    """Owner events lost are never silent: counted in runs.event_overruns,
    noted once each in runs.notes, and told apart at the end of the run."""

    def setUp(self):
        if UNAVAILABLE:
            self.skipTest(UNAVAILABLE)
        self.db = os.path.join(scratch_dir(), "connhist.db")
        self.l, _ = listener()
        self.addCleanup(self.l.close)

    def connections(self, n):
        for _ in range(n):
            c = socket.create_connection(self.l.getsockname())
            a, _ = self.l.accept()
            c.sendall(b"x")
            a.recv(1)
            c.close()
            a.close()

    def breakdown(self):
        [line] = [n for n in notes(self.db).split("; ") if n.startswith("event_overruns: ")]
        print(f"note: {line}", file=sys.stderr)
        words = line.split()
        return {"overruns": int(words[1]), "lost": int(words[4]), "evicted": int(words[8])}

    def test_ring_buffer_full(self):
        """The recorder stopped (SIGSTOP) while 4,000 connections are made: the
        kernel's buffer holds about 5,000 of their 8,000 events, and drops
        the rest, counted in the BPF program."""
        rec = Recorder(self.db)
        rec.wait_next()
        os.kill(rec.proc.pid, signal.SIGSTOP)
        try:
            self.connections(4000)
        finally:
            os.kill(rec.proc.pid, signal.SIGCONT)
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        lost = self.breakdown()
        self.assertGreater(lost["lost"], 0)
        self.assertIn("socket owner events were lost", notes(self.db))
        [run] = rows(self.db, "SELECT event_overruns FROM runs")
        self.assertEqual(run["event_overruns"], lost["overruns"] + lost["lost"] + lost["evicted"])

    def test_map_full(self):
        """With room for 8 facts, 50 connections between two samples: all but
        8 of their 100 facts at least are evicted and counted (other
        processes' sockets may evict the rest), and at most 8 ends keep an
        owner."""
        env = dict(os.environ, CONNHIST_OWNER_MAP_CAP="8")
        rec = Recorder(self.db, env=env)
        rec.between_samples(lambda: self.connections(50))
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        lost = self.breakdown()
        self.assertGreaterEqual(lost["evicted"], 92)
        self.assertIn("socket owner events were evicted unused", notes(self.db))
        lport = self.l.getsockname()[1]
        owned = rows(self.db, "SELECT COUNT(*) AS n FROM v_lifetimes WHERE proto = 'tcp' AND seen_by IS NOT NULL"
                              " AND (local_port = ?1 OR remote_port = ?1) AND pid IS NOT NULL", (lport,))[0]["n"]
        self.assertLessEqual(owned, 8)
        [run] = rows(self.db, "SELECT event_overruns FROM runs")
        self.assertEqual(run["event_overruns"], lost["overruns"] + lost["lost"] + lost["evicted"])


class UnavailableTest(unittest.TestCase):
    """Where the kernel refuses the event source, recording goes on without
    it, and the run's notes say why in one line; --events bpf refuses to
    start instead."""

    def setUp(self):
        if UNAVAILABLE:
            self.skipTest(UNAVAILABLE)
        if not shutil.which("setpriv"):
            self.skipTest("needs setpriv (util-linux)")
        self.tmp = scratch_dir()
        self.db = os.path.join(self.tmp, "connhist.db")

    def check_off(self, prefix, reason, **how):
        rec = Recorder(self.db, prefix=prefix, **how)
        shot = rec.between_samples(Shot.go, udp_unseen(self.db), lambda: Shot("udp"))
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        [r] = rows(self.db, "SELECT * FROM v_lifetimes WHERE proto = 'udp' AND cookie = ?", (shot["cookie"],))
        self.assertEqual(r["seen_by"], "destroy_event_only")  # still recorded
        self.assertIsNone(r["pid"])
        [line] = [n for n in notes(self.db).split("; ") if n.startswith("socket owner events off")]
        self.assertIn(reason, line)
        print(f"note: {line}", file=sys.stderr)
        # Every report's coverage says so too.
        p = subprocess.run(WRAPPER + [QUERY, "--db", self.db, "connections"], capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(line, json.loads(p.stdout)["header"]["coverage"]["notes"])

    def test_without_capabilities(self):
        """As root but without CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN, the
        kernel refuses to load the program: a real load failure."""
        drop = ["setpriv", "--bounding-set=-bpf,-perfmon,-sys_admin", "--"]
        self.check_off(drop, "running without CAP_BPF and CAP_PERFMON")
        p = subprocess.run(drop + [RECORD, "--db", os.path.join(self.tmp, "bpf.db"), "--once", "--events", "bpf"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("--events bpf", lines[0])
        self.assertIn("CAP_BPF", lines[0])
        self.assertEqual(rows(os.path.join(self.tmp, "bpf.db"), "SELECT * FROM runs"), [])  # no run begun

    def test_not_root(self):
        """As nobody: no owner for it, and the note says it is not root."""
        pw = pwd.getpwnam("nobody")
        os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        record = os.path.join(self.tmp, "connhist-record")  # a copy nobody may run
        shutil.copy(RECORD, record)
        nobody = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp}
        self.check_off(nobody, "not running as root", record=record, env=env)


class OptionsTest(unittest.TestCase):
    def test_version_says_whether_built_in(self):
        p = subprocess.run([RECORD, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        lines = p.stdout.splitlines()
        self.assertRegex(lines[0], r"^connhist-record \d+\.\d+\.\d+$")
        self.assertRegex(lines[1], r"^socket owner events: (BPF \(libbpf \d+\.\d+\)|not built in \(.+\))$")

    def test_bad_events_value(self):
        d = scratch_dir()
        p = subprocess.run([RECORD, "--db", os.path.join(d, "x.db"), "--once", "--events", "ebpf"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2)
        lines = p.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, p.stderr)
        self.assertIn("'ebpf'", lines[0])
        self.assertIn("auto, bpf or off", lines[0])
        self.assertFalse(os.path.exists(os.path.join(d, "x.db")))
        # CONNHIST_EVENTS gives the default; a bad one is named as such.
        p = subprocess.run([RECORD, "--db", os.path.join(d, "x.db"), "--once"], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, CONNHIST_EVENTS="sometimes"))
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.strip().splitlines(), [
            "connhist-record: CONNHIST_EVENTS: 'sometimes' is not valid (expected auto, bpf or off)"])


if __name__ == "__main__":
    unittest.main()
