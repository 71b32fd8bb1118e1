"""Faults the recorder survives (issue 5), each one a test against the real
connhist-record, real sockets on loopback and a real SQLite file: killed at
any moment, disk full, a locked database and a long reader, netlink trouble,
wall-clock jumps, attribution races with short-lived processes, and a soak.

Each test prints its figures (kills survived, faults injected, memory) on
stderr. CONNHIST_FAULT_KILLS and CONNHIST_SOAK_SECONDS scale the longest two
(scripts/test.sh runs them in full in one build, shorter in the others);
CONNHIST_FAULT_KILL_SECONDS bounds the kill campaign's time on a slow machine.

The machine may be loaded and other tests may run beside these: waits give
up only when the recorder stops making progress, and tolerances come from
what the run measured (its heartbeat spans, the machine's socket count),
never from how fast an idle machine would be. Each test class can run as
its own process (ctest registers one test per class).
"""

import ctypes
import json
import os
import random
import re
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import unittest

from helpers import QUERY, RECORD, STALL_SECONDS, now_ms, rows, scratch_dir, wait_until

KILLS = int(os.environ.get("CONNHIST_FAULT_KILLS", "80"))
# The kill campaign stops early, after at least KILLS_MIN kills, once it has
# run this long: on a loaded machine each start takes longer (ctest allows
# the test 900 s).
KILL_SECONDS = float(os.environ.get("CONNHIST_FAULT_KILL_SECONDS", "360"))
KILLS_MIN = min(KILLS, 10)
SOAK_SECONDS = float(os.environ.get("CONNHIST_SOAK_SECONDS", "100"))
NETLINK_SHIM = os.environ.get("CONNHIST_FAULT_NETLINK_SHIM")
CLOCK_SHIM = os.environ.get("CONNHIST_FAULT_CLOCK_SHIM")
REFUSE_SHIM = os.environ.get("CONNHIST_REFUSE_NETLINK")
KILL_SHIM = os.environ.get("CONNHIST_FAULT_KILL_SHIM")


def figures(text):
    print(f"\n[faults] {text}", file=sys.stderr, flush=True)


class Recorder:
    """A running connhist-record whose log goes to a file, readable at any time."""

    def __init__(self, db, *args, env=None):
        self.db = db
        self.log_path = os.path.join(scratch_dir(), "record.log")  # not beside the db: that disk may fill
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([RECORD, "--db", db] + list(args), stdout=subprocess.DEVNULL,
                                         stderr=log, env=env)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def alive(self):
        return self.proc.poll() is None

    def samples(self):
        """Samples committed by this process's run so far."""
        try:
            return rows(self.db, "SELECT COALESCE(SUM(samples), 0) AS n FROM heartbeats WHERE run_id ="
                        " (SELECT MAX(run_id) FROM runs WHERE pid = ?)", (self.pid,))[0]["n"]
        except sqlite3.Error:
            return 0

    def wait(self, done, what, progress=None):
        """Waits for done(), as long as the recorder lives and makes
        progress: progress() changes (default: its log grows; with
        --verbose it logs every sample, written or not)."""
        def check():
            if not self.alive():
                raise AssertionError(f"recorder exited with {self.proc.returncode} while {what}: {self.log()}")
            return done()
        try:
            wait_until(check, progress or (lambda: len(self.log())), what)
        except AssertionError as e:
            raise AssertionError(f"{e}: {self.log()}") from None

    def wait_samples(self, more):
        """Waits until `more` samples beyond the current count are committed."""
        target = self.samples() + more
        self.wait(lambda: self.samples() >= target, f"committing {more} more samples", self.samples)

    def logged_samples(self):
        """Samples taken so far, written or not (needs --verbose)."""
        return self.log().count("sample:")

    def wait_logged_samples(self, more):
        """Waits until `more` samples beyond the current count were taken,
        committed or not (needs --verbose)."""
        target = self.logged_samples() + more
        self.wait(lambda: self.logged_samples() >= target, f"taking {more} more samples")

    def wait_log(self, text):
        self.wait(lambda: text in self.log(), f"waiting for '{text}' in its log")

    def stop(self, timeout=STALL_SECONDS):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=timeout)
        return self.proc.returncode

    def kill(self):
        if self.alive():
            self.proc.kill()
        self.proc.wait()


def inode(sock):
    return os.fstat(sock.fileno()).st_ino


def machine_sockets():
    """TCP and UDP sockets of this machine (of this network namespace), now."""
    n = 0
    for t in ("tcp", "tcp6", "udp", "udp6"):
        with open(f"/proc/net/{t}") as f:
            n += len(f.readlines()) - 1
    return n


def close_hard(sock):
    """Closes with a reset: no TIME_WAIT left behind to outlive the socket."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
    sock.close()


class Churn:
    """Loopback TCP connections opened and reset at random, in a thread. The
    connections alive when it stops stay open until close()."""

    def __init__(self, target=20, pause=0.01, seed=1):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        self.target, self.pause = target, pause
        self.rnd = random.Random(seed)
        self.conns = []
        self.opened = self.closed = self.refused = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def step(self):
        if self.conns and (len(self.conns) >= self.target * 2 or self.rnd.random() < 0.5):
            c, a = self.conns.pop(self.rnd.randrange(len(self.conns)))
            close_hard(c)
            a.close()
            self.closed += 1
        else:
            try:
                c = socket.create_connection(("127.0.0.1", self.port))
            except ConnectionError:
                # Reset while connecting (seen once on a loaded machine):
                # the server's end, if it was queued, is closed.
                self.refused += 1
                self.listener.setblocking(False)
                try:
                    while True:
                        close_hard(self.listener.accept()[0])
                except BlockingIOError:
                    pass
                finally:
                    self.listener.setblocking(True)
                return
            # The accepted end of c: any other queued is such a one.
            while True:
                a, peer = self.listener.accept()
                if peer == c.getsockname():
                    break
                close_hard(a)
            self.conns.append((c, a))
            self.opened += 1

    def run(self):
        while self.running:
            self.step()
            time.sleep(self.pause)

    def stop(self):
        self.running = False
        self.thread.join()

    def alive_inodes(self):
        return {inode(s) for pair in self.conns for s in pair} | {inode(self.listener)}

    def close(self):
        for c, a in self.conns:
            close_hard(c)
            a.close()
        self.listener.close()


def schema_committed(db):
    """Whether db holds a committed connhist schema. A recorder killed while
    it created the file leaves it empty, or with a -journal holding the
    schema's unfinished transaction (which only a writer may undo)."""
    if not os.path.exists(db) or os.path.exists(db + "-journal"):
        return False
    return rows(db, "PRAGMA user_version")[0]["user_version"] > 0


def assert_refused_unfinished(test, db):
    """connhist-query refuses a database whose schema was never committed
    with one line naming it and saying what to do, and changes nothing."""
    def read(path):
        with open(path, "rb") as f:
            return f.read()

    files = {f: read(f) for f in (db, db + "-journal") if os.path.exists(f)}
    p = subprocess.run([QUERY, "--db", db, "coverage"], capture_output=True, text=True, timeout=STALL_SECONDS)
    test.assertEqual((p.returncode, p.stdout), (1, ""), p.stderr)
    test.assertEqual(p.stderr.count("\n"), 1, p.stderr)
    test.assertTrue(p.stderr.startswith(f"connhist-query: {db} "), p.stderr)
    test.assertIn("connhist-record --upgrade --db", p.stderr)
    test.assertNotIn("no such table", p.stderr)
    test.assertEqual({f: read(f) for f in files}, files)
    return p.stderr


def lifetime_ids(db):
    """Every lifetime id and, for closed ones, how they closed."""
    return {r["lifetime_id"]: (r["last_seen"], r["closed_at"], r["close_reason"])
            for r in rows(db, "SELECT lifetime_id, last_seen, closed_at, close_reason FROM v_lifetimes")}


def assert_consistent(test, db):
    test.assertEqual(rows(db, "PRAGMA integrity_check")[0]["integrity_check"], "ok")
    twice = rows(db, "SELECT cookie, count(*) AS n FROM v_lifetimes WHERE closed_at IS NULL AND cookie IS NOT NULL"
                 " GROUP BY cookie HAVING n > 1")
    test.assertEqual(twice, [], "a socket has two open lifetimes")


def assert_times_ordered(test, db):
    bad = rows(db, "SELECT * FROM v_lifetimes WHERE last_seen < first_seen OR closed_at < first_seen"
               " OR closed_at <= last_seen")
    test.assertEqual(bad, [], "lifetimes with negative durations")
    bad = rows(db, "SELECT * FROM v_state_changes s JOIN v_lifetimes l USING (lifetime_id)"
               " WHERE s.at < l.first_seen OR s.at > l.closed_at")
    test.assertEqual(bad, [], "state changes outside their lifetime")
    test.assertEqual(rows(db, "SELECT * FROM heartbeats WHERE last_at < first_at"), [])


class KillTest(unittest.TestCase):
    def test_killed_at_any_moment(self):
        db = os.path.join(scratch_dir(), "killed.db")
        seed = int(os.environ.get("CONNHIST_FAULT_SEED", str(int(time.time()))))
        rnd = random.Random(seed)
        churn = Churn(target=15, pause=0.005, seed=seed)
        self.addCleanup(churn.close)
        survived = checked_rows = unfinished = kills = 0
        began = time.monotonic()
        for i in range(KILLS):
            if i >= KILLS_MIN and time.monotonic() - began > KILL_SECONDS:
                break
            kills += 1
            r = Recorder(db, "--interval", "50ms")
            # Any moment: while it starts, or a random while after 1 to 3
            # committed samples, however long those take on this machine
            # (a fixed delay alone could kill a slow start every time).
            after = rnd.randint(0, 3)
            if after:
                r.wait(lambda: r.samples() >= after, f"committing {after} samples", r.samples)
            time.sleep(rnd.uniform(0.0, 0.2) if after else rnd.uniform(0.02, 0.4))
            before = lifetime_ids(db) if schema_committed(db) else {}
            r.kill()
            self.assertEqual(r.proc.returncode, -signal.SIGKILL,
                             f"kill {i} (seed {seed}): the recorder had exited by itself: {r.log()}")
            if not os.path.exists(db):
                continue
            if not schema_committed(db):
                # Killed before its schema was committed (likely on a loaded
                # machine): refused by the query tool; the next start completes it.
                with self.subTest(kill=i, seed=seed):
                    assert_refused_unfinished(self, db)
                unfinished += 1
                continue
            with self.subTest(kill=i, seed=seed):
                assert_consistent(self, db)
                after = lifetime_ids(db)
                lost = [k for k in before if k not in after]
                self.assertEqual(lost, [], "committed lifetimes vanished")
                changed = [k for k, v in before.items() if v[1] is not None and after[k] != v]
                self.assertEqual(changed, [], "closed lifetimes changed")
                checked_rows += len(before)
            survived += 1
        churn.stop()
        # A last, clean run: what is alive is there exactly once and open, nothing else is.
        r = Recorder(db, "--interval", "50ms")
        r.wait_samples(3)
        self.assertEqual(r.stop(), 0, r.log())
        assert_consistent(self, db)
        alive = churn.alive_inodes()
        for ino in alive:
            found = rows(db, "SELECT closed_at FROM v_lifetimes WHERE inode = ?", (ino,))
            self.assertEqual(len(found), 1, f"socket inode {ino} alive at the end: {found}")
            self.assertIsNone(found[0]["closed_at"])
        # The churn's sockets: TCP on 127.0.0.1 to or from its listener's port
        # (another process may use the same number elsewhere).
        port, churn_rows = churn.port, ("proto = 'tcp' AND family = 4 AND ((local_addr = '127.0.0.1' AND"
                                        " local_port = ?1) OR (remote_addr = '127.0.0.1' AND remote_port = ?1))")
        still_open = rows(db, "SELECT inode FROM v_lifetimes WHERE closed_at IS NULL AND " + churn_rows, (port,))
        self.assertEqual(sorted(r["inode"] for r in still_open), sorted(alive), "closed sockets left open")
        assert_times_ordered(self, db)
        runs = rows(db, "SELECT count(*) AS n, sum(end_reason = 'died') AS died FROM runs")[0]
        total = rows(db, "SELECT count(*) AS n, count(closed_at) AS closed FROM v_lifetimes WHERE " + churn_rows,
                     (port,))[0]
        self.assertGreater(total["closed"], kills, "the churn should have closed many lifetimes")
        figures(f"kill campaign (seed {seed}): {survived}/{kills} SIGKILLs survived on one database "
                f"({KILLS} asked, {time.monotonic() - began:.0f} s; at most {KILL_SECONDS:.0f} s once {KILLS_MIN} done), "
                f"({unfinished} before its schema was committed), "
                f"{runs['n']} runs ({runs['died']} marked died), {churn.opened} connections opened and "
                f"{churn.closed} reset meanwhile, {total['n']} lifetimes on the churn port "
                f"({total['closed']} closed), {checked_rows} committed rows re-checked after kills")


@unittest.skipUnless(KILL_SHIM, "needs the fault_kill shim")
class KilledBeforeSchemaTest(unittest.TestCase):
    """A recorder killed while it creates a new database, at an exact write
    (tests/fault_kill.c): before the first write of its schema (the file is
    empty, a -journal beside it), and part-way through (pages of the schema
    written, the -journal holding the transaction to undo). connhist-query
    refuses either with one line saying what to do, never 'no such table';
    connhist-record completes either, by a normal start or by --upgrade."""

    def killed_at_write(self, nth):
        db = os.path.join(os.path.realpath(scratch_dir()), "new.db")
        env = dict(os.environ, LD_PRELOAD=KILL_SHIM, CONNHIST_KILL_AT_WRITE=db,
                   CONNHIST_KILL_AT_WRITE_COUNT=str(nth))
        p = subprocess.run([RECORD, "--db", db, "--once"], env=env, capture_output=True, text=True,
                           timeout=STALL_SECONDS)
        self.assertEqual(p.returncode, -signal.SIGKILL, p.stderr)
        self.assertTrue(os.path.exists(db + "-journal"), os.listdir(os.path.dirname(db)))
        self.assertFalse(schema_committed(db))
        return db

    def assert_complete(self, db):
        self.assertFalse(os.path.exists(db + "-journal"))
        self.assertTrue(schema_committed(db))
        self.assertEqual(rows(db, "PRAGMA integrity_check")[0]["integrity_check"], "ok")
        p = subprocess.run([QUERY, "--db", db, "coverage"], capture_output=True, text=True, timeout=STALL_SECONDS)
        self.assertEqual(p.returncode, 0, p.stderr)
        return json.loads(p.stdout)["header"]["coverage"]["runs"]

    def test_killed_before_the_schema_is_written(self):
        db = self.killed_at_write(1)
        self.assertEqual(os.path.getsize(db), 0)
        self.assertIn("is an empty database", assert_refused_unfinished(self, db))
        p = subprocess.run([RECORD, "--db", db, "--upgrade"], capture_output=True, text=True, timeout=STALL_SECONDS)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertIn("was empty, now a new database", p.stdout)
        self.assertEqual(self.assert_complete(db), 0)

    def test_killed_while_writing_the_schema(self):
        for nth, complete in ((3, "--once"), (5, "--upgrade")):
            with self.subTest(write=nth, then=complete):
                db = self.killed_at_write(nth)
                self.assertGreater(os.path.getsize(db), 0)  # some of the schema's pages are there
                self.assertIn("was left half-written", assert_refused_unfinished(self, db))
                p = subprocess.run([RECORD, "--db", db, complete], capture_output=True, text=True,
                                   timeout=STALL_SECONDS)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(self.assert_complete(db), 1 if complete == "--once" else 0)


@unittest.skipUnless(os.geteuid() == 0, "needs root to mount a small tmpfs")
class DiskFullTest(unittest.TestCase):
    def test_disk_full_loses_nothing(self):
        mnt = scratch_dir()
        # Room for a first sample of every socket on this (shared, busy)
        # machine, and for many more opened meanwhile by others; once the
        # recorder has written, the disk shrinks to what it used and a bit.
        size_k = 2048 + 2 * machine_sockets() + 64 * 1024
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_k}k", "tmpfs", mnt],
                           capture_output=True, text=True)
        if p.returncode != 0:
            self.skipTest(f"cannot mount a tmpfs: {p.stderr.strip()}")
        self.addCleanup(subprocess.run, ["umount", "-l", mnt])
        db = os.path.join(mnt, "full.db")
        kept = socket.socket()
        kept.bind(("127.0.0.1", 0))
        kept.listen()
        self.addCleanup(kept.close)
        r = Recorder(db, "--interval", "100ms", "--verbose")
        self.addCleanup(r.kill)
        r.wait_samples(3)
        # A reader keeps the WAL from being started over, so new samples need new space.
        reader = sqlite3.connect(db)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM heartbeats").fetchone()
        st = os.statvfs(mnt)
        full_k = size_k = (st.f_blocks - st.f_bfree) * st.f_frsize // 1024 + 1024
        subprocess.run(["mount", "-o", f"remount,size={size_k}k", mnt], check=True)
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        # Fresh sockets make the recorder need new pages: more than its WAL has room for.
        burst = []
        for _ in range(500):
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            u.bind(("127.0.0.1", 0))
            burst.append(u)
        self.addCleanup(lambda: [u.close() for u in burst])
        r.wait_log("disk is full")  # SQLITE_FULL: "database or disk is full"
        # A socket that lives and dies entirely while the disk is full: two
        # samples see it open, two more find it closed.
        brief = socket.socket()
        brief.bind(("127.0.0.1", 0))
        brief.listen()
        brief_inode, brief_open = inode(brief), now_ms()
        r.wait_logged_samples(2)
        brief_closed = now_ms()
        brief.close()
        r.wait_logged_samples(2)
        self.assertTrue(r.alive(), r.log())
        self.assertEqual(r.log().count("works again"), 0, "the disk was to stay full meanwhile")
        reader.rollback()
        reader.close()
        # Space again, and room for whatever other processes opened meanwhile.
        size_k += 2 * machine_sockets() + 64 * 1024
        subprocess.run(["mount", "-o", f"remount,size={size_k}k", mnt], check=True)
        os.remove(filler)
        r.wait_log("works again")
        r.wait_samples(2)
        self.assertEqual(r.stop(), 0, r.log())
        log = r.log()
        self.assertEqual(log.count("cannot write"), 1, log)
        [b] = rows(db, "SELECT * FROM v_lifetimes WHERE inode = ?", (brief_inode,))
        self.assertGreaterEqual(b["first_seen"], brief_open - 5)
        self.assertLessEqual(b["first_seen"], brief_closed + 5)
        self.assertGreaterEqual(b["closed_at"], brief_closed - 5)
        self.assertEqual(b["close_reason"], "gone")
        burst_rows = rows(db, "SELECT count(*) AS n, count(closed_at) AS closed FROM v_lifetimes WHERE proto = 'udp'"
                          " AND inode IN (%s)" % ",".join(str(inode(u)) for u in burst))[0]
        self.assertEqual((burst_rows["n"], burst_rows["closed"]), (len(burst), 0))
        [k] = rows(db, "SELECT * FROM v_lifetimes WHERE inode = ?", (inode(kept),))
        self.assertIsNone(k["closed_at"])
        assert_consistent(self, db)
        # The samples taken while the disk was full still count as coverage:
        # every sample taken is in the heartbeats (a starved tick may have
        # split them into spans), the one that first saw brief among them.
        self.assertEqual(rows(db, "SELECT SUM(samples) AS n FROM heartbeats")[0]["n"], r.logged_samples())
        covered = rows(db, "SELECT count(*) AS n FROM heartbeats WHERE first_at <= ?1 AND last_at >= ?1",
                       (b["first_seen"],))[0]["n"]
        self.assertEqual(covered, 1)
        figures(f"disk full: {full_k} KiB tmpfs filled; recorder logged it once, kept {len(burst) + 1} lifetimes "
                f"seen while full, wrote them when space came back")


class LockTest(unittest.TestCase):
    WAL_BOUND = 1024 * 1024 + 512 * 1024  # the recorder's WAL limit plus a sample's worth
    CHANGE_BYTES = 1024  # at most, per change a sample writes (the soak checks the same bound)

    def wal_size(self, db):
        try:
            return os.path.getsize(db + "-wal")
        except OSError:
            return 0

    def test_long_reader_and_writer_lock(self):
        db = os.path.join(scratch_dir(), "locked.db")
        r = Recorder(db, "--interval", "100ms", "--verbose")
        self.addCleanup(r.kill)
        r.wait_samples(3)
        stop = threading.Event()

        def churn_udp():
            while not stop.is_set():
                socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(60)]
                for s in socks:
                    s.bind(("127.0.0.1", 0))
                time.sleep(0.12)
                for s in socks:
                    s.close()
                time.sleep(0.12)

        churner = threading.Thread(target=churn_udp, daemon=True)
        churner.start()
        self.addCleanup(stop.set)
        # A reader holding one snapshot: checkpoints cannot get past it, the WAL grows.
        reader = sqlite3.connect(db)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM v_lifetimes").fetchone()
        time.sleep(3)
        # Another process takes the write lock for several seconds.
        # A socket lives and dies meanwhile: samples see it open, then gone
        # (at least 2 s each way, and at least two samples).
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        during = socket.socket()
        during.bind(("127.0.0.1", 0))
        during.listen()
        during_inode = inode(during)

        def sample_for_two_seconds():
            mark = r.logged_samples()
            time.sleep(2)
            r.wait(lambda: r.logged_samples() >= mark + 2, "sampling while the database is locked")

        sample_for_two_seconds()
        during.close()
        sample_for_two_seconds()
        self.assertTrue(r.alive(), r.log())
        writer.execute("ROLLBACK")
        writer.close()
        r.wait_log("works again")
        r.wait(lambda: self.wal_size(db) > self.WAL_BOUND, "growing the WAL past the held reader", r.samples)
        peak = self.wal_size(db)
        reader.execute("COMMIT")
        reader.close()
        # Readers gone: the WAL is checkpointed and cut back, and stays
        # bounded under churn. Bounded by the limit, plus what the samples
        # since the previous look wrote (a late sample on a loaded machine,
        # or another process's thousands of new sockets, write more at once).
        r.wait_samples(3)
        sizes, allowed = [], []
        for _ in range(25):
            mark = len(r.log())
            r.wait_logged_samples(1)
            changes = sum(int(n) for n in re.findall(r"sample: \d+ sockets, (\d+) changes", r.log()[mark:]))
            sizes.append(self.wal_size(db))
            allowed.append(self.WAL_BOUND + changes * self.CHANGE_BYTES)
        stop.set()
        churner.join()
        over = [(size, bound) for size, bound in zip(sizes, allowed) if size > bound]
        self.assertEqual(over, [], f"WAL sizes after the readers let go: {sizes}")
        self.assertTrue(r.alive(), r.log())
        self.assertEqual(r.stop(), 0, r.log())
        log = r.log()
        self.assertEqual(log.count("cannot write"), 1, log)
        [d] = rows(db, "SELECT * FROM v_lifetimes WHERE inode = ?", (during_inode,))
        self.assertIsNotNone(d["closed_at"])
        # Ours, or nobody's: the churn thread makes the recorder read this
        # process whole often, and a socket opened between a sample's dump
        # and that read is missed for good (a known attribution race on a
        # loaded machine); never another process's.
        self.assertIn(d["pid"], (None, os.getpid()))
        assert_consistent(self, db)
        figures(f"locks: a write lock of 4 s or more and a reader of 10 s or more survived; WAL peaked at {peak // 1024} KiB while "
                f"the reader held, then stayed at most {max(sizes) // 1024} KiB")


def sockets_fixture(test):
    """A listener, two connections, a bound UDP socket: sockets that stay open."""
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen()
    socks = [l]
    for _ in range(2):
        c = socket.create_connection(l.getsockname())
        a, _ = l.accept()
        socks += [c, a]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    socks.append(u)
    test.addCleanup(lambda: [s.close() for s in socks])
    return socks


def assert_one_open_lifetime_each(test, db, socks, misses_allowed=False):
    """Each socket of socks has one lifetime, open. misses_allowed (the
    procfs sampler): /proc/net/tcp is read in pages, and a socket may be
    missed by a read while other sockets come and go (schema/README.md):
    then closed rows of it may come before its one open row."""
    for s in socks:
        found = rows(db, "SELECT closed_at, states FROM v_lifetimes WHERE inode = ? ORDER BY lifetime_id",
                     (inode(s),))
        if misses_allowed and len(found) > 1:
            figures(f"procfs: {s.getsockname()} missed by {len(found) - 1} reads")
            found = found[-1:]
        test.assertEqual(len(found), 1, f"{s}: {found}")
        test.assertIsNone(found[0]["closed_at"])
        test.assertNotIn(",", found[0]["states"])


class DumpStallTest(unittest.TestCase):
    """A socket destroyed while a dump runs, before the dump reached it, is
    announced only after the dump: it opened before that sample began, and
    its lifetime says it opened after the sample before began."""

    @unittest.skipUnless(NETLINK_SHIM, "needs the fault_netlink shim")
    def test_destroyed_while_a_dump_ran(self):
        d = scratch_dir()
        db, faults = os.path.join(d, "stall.db"), os.path.join(d, "faults")
        # Dumps through sock_diag, which the shim holds (not the BPF socket iterators).
        env = dict(os.environ, LD_PRELOAD=NETLINK_SHIM, CONNHIST_FAULT_NETLINK="stall_tcp=300",
                   CONNHIST_FAULT_LOG=faults, CONNHIST_SOCKS_SOURCE="netlink")
        r = Recorder(db, "--interval", "1s", env=env)
        self.addCleanup(r.kill)
        r.wait_samples(2)
        listener = socket.socket()
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        lport = listener.getsockname()[1]

        def stalls():
            with open(faults) as f:
                return f.read().split().count("stall")
        made = []
        for _ in range(10):
            # Between two samples: the last one committed, the next not begun.
            r.wait_samples(1)
            client = socket.create_connection(("127.0.0.1", lport))
            server, _ = listener.accept()
            opened, port = now_ms(), client.getsockname()[1]
            # The next sample began after the connection opened, and holds
            # its TCP dump: the connection closes before the dump is sent.
            held = stalls()
            r.wait(lambda: stalls() > held, "holding a TCP dump")
            client.close()  # first: its end waits in TIME_WAIT, the server's is destroyed
            server.close()
            closed = now_ms()
            made.append((port, opened, closed))
            r.wait_samples(2)
            [row] = rows(db, "SELECT * FROM v_lifetimes WHERE proto = 'tcp' AND local_port = ? AND remote_port = ?",
                         (lport, port))
            if row["seen_by"] == "destroy_event_only":
                break  # else a slow machine let the last dump see it: again
        else:
            self.skipTest(f"no connection of {len(made)} closed unseen by a dump")
        figures(f"a connection closed while a dump was held: opened {opened}, opened_after {row['opened_after']}, "
                f"closed {closed}, closed_at {row['closed_at']} (attempt {len(made)})")
        self.assertLessEqual(row["opened_after"], opened + 5, row)  # the clocks: milliseconds apart
        self.assertGreaterEqual(row["closed_at"], opened - 5, row)
        self.assertEqual(r.stop(), 0, r.log())


class NetlinkTroubleTest(unittest.TestCase):
    @unittest.skipUnless(NETLINK_SHIM, "needs the fault_netlink shim")
    def test_interrupted_dumps_eintr_and_overruns(self):
        d = scratch_dir()
        db, faults = os.path.join(d, "netlink.db"), os.path.join(d, "faults")
        steady = sockets_fixture(self)
        env = dict(os.environ, LD_PRELOAD=NETLINK_SHIM, CONNHIST_FAULT_NETLINK="eintr=5,intr=7,enobufs=11",
                   CONNHIST_FAULT_LOG=faults, CONNHIST_SOCKS_SOURCE="netlink")
        r = Recorder(db, "--interval", "50ms", env=env)
        self.addCleanup(r.kill)
        r.wait_samples(20)
        late = socket.socket()
        late.bind(("127.0.0.1", 0))
        late.listen()
        r.wait_samples(10)
        late_inode = inode(late)
        late.close()
        r.wait_samples(20)
        self.assertEqual(r.stop(), 0, r.log())
        with open(faults) as f:
            injected = f.read().split()
        counts = {k: injected.count(k) for k in ("eintr", "intr", "enobufs")}
        for kind, n in counts.items():
            self.assertGreaterEqual(n, 3, f"too few {kind} faults injected: {counts}")
        [run] = rows(db, "SELECT * FROM runs")
        self.assertEqual(run["sampler"], "netlink", "faults must not push the recorder off netlink")
        self.assertIn("interrupted", run["notes"] or "")
        self.assertIn("overrun", run["notes"] or "")
        self.assertIn("overrun", r.log())
        # No spurious close and reopen of any socket on the machine: one row
        # per cookie that samples saw. (A socket reset by its peer leaves the
        # tables at once and is announced only when its process closes it,
        # possibly samples later: a second row from the announcement alone,
        # seen_by not NULL; another process's sockets may do that here.)
        again = rows(db, "SELECT cookie, count(*) AS n FROM v_lifetimes WHERE cookie IS NOT NULL AND seen_by IS NULL"
                     " GROUP BY cookie HAVING n > 1")
        self.assertEqual(again, [], "sockets closed and reopened by a failed dump")
        assert_one_open_lifetime_each(self, db, steady)
        [l] = rows(db, "SELECT * FROM v_lifetimes WHERE inode = ?", (late_inode,))
        self.assertEqual(l["close_reason"], "gone")
        assert_consistent(self, db)
        figures(f"netlink trouble: injected {counts} over {rows(db, 'SELECT SUM(samples) AS n FROM heartbeats')[0]['n']}"
                f" samples; no spurious close or reopen; notes: {run['notes']}")

    @unittest.skipUnless(REFUSE_SHIM, "needs the refuse_netlink shim")
    def test_refused_netlink_falls_back_to_procfs(self):
        db = os.path.join(scratch_dir(), "refused.db")
        steady = sockets_fixture(self)
        r = Recorder(db, "--interval", "50ms", env=dict(os.environ, LD_PRELOAD=REFUSE_SHIM))
        self.addCleanup(r.kill)
        r.wait_samples(10)
        self.assertEqual(r.stop(), 0, r.log())
        [run] = rows(db, "SELECT * FROM runs")
        self.assertEqual(run["sampler"], "procfs")
        self.assertIn("netlink", run["notes"])
        assert_one_open_lifetime_each(self, db, steady, misses_allowed=True)

    @unittest.skipUnless(REFUSE_SHIM, "needs the refuse_netlink shim")
    def test_refused_one_tcp_dump_asks_family_by_family(self):
        d = scratch_dir()
        db, refused = os.path.join(d, "by-family.db"), os.path.join(d, "refused")
        steady = sockets_fixture(self)
        l6 = socket.socket(socket.AF_INET6)
        l6.bind(("::1", 0))
        l6.listen()
        c6 = socket.create_connection(l6.getsockname()[:2])
        a6, _ = l6.accept()
        steady += [l6, c6, a6]
        self.addCleanup(lambda: [s.close() for s in (l6, c6, a6)])
        env = dict(os.environ, LD_PRELOAD=REFUSE_SHIM, CONNHIST_REFUSE_TCPDIAG=refused, CONNHIST_SOCKS_SOURCE="netlink")
        r = Recorder(db, "--interval", "50ms", env=env)
        self.addCleanup(r.kill)
        r.wait_samples(10)
        self.assertEqual(r.stop(), 0, r.log())
        with open(refused) as f:
            self.assertGreaterEqual(len(f.read().split()), 1, "the one TCP dump was never asked for")
        [run] = rows(db, "SELECT * FROM runs")
        self.assertEqual(run["sampler"], "netlink", "a refused TCPDIAG_GETSOCK must not push the recorder off netlink")
        assert_one_open_lifetime_each(self, db, steady)


@unittest.skipUnless(CLOCK_SHIM, "needs the fault_clock shim")
class ClockJumpTest(unittest.TestCase):
    HOUR = 3600 * 1000

    def test_wall_clock_jumps(self):
        d = scratch_dir()
        db, offset = os.path.join(d, "clock.db"), os.path.join(d, "offset")

        def set_offset(ms):
            with open(offset + ".new", "w") as f:
                f.write(str(ms))
            os.replace(offset + ".new", offset)

        set_offset(0)
        env = dict(os.environ, LD_PRELOAD=CLOCK_SHIM, CONNHIST_CLOCK_OFFSET_FILE=offset)
        steady = sockets_fixture(self)

        def listener():
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            return s

        r = Recorder(db, "--interval", "100ms", env=env)
        self.addCleanup(r.kill)
        r.wait_samples(4)
        a = listener()
        ia = inode(a)
        r.wait_samples(4)
        set_offset(-self.HOUR)              # one hour back, with a socket open across it
        r.wait_samples(4)
        a.close()
        b = listener()
        ib = inode(b)
        r.wait_samples(4)
        set_offset(self.HOUR)               # two hours forward
        r.wait_samples(4)
        b.close()
        c = listener()
        ic = inode(c)
        r.wait_samples(4)
        self.assertEqual(r.stop(), 0, r.log())
        # Restarted with the clock three hours behind the last sample; c closes meanwhile.
        c.close()
        set_offset(-2 * self.HOUR)
        r = Recorder(db, "--interval", "100ms", env=env)
        self.addCleanup(r.kill)
        r.wait_samples(4)
        e = listener()
        ie = inode(e)
        r.wait_samples(4)
        e.close()
        r.wait_samples(4)
        self.assertEqual(r.stop(), 0, r.log())
        assert_times_ordered(self, db)
        for ino, reason in ((ia, "gone"), (ib, "gone"), (ic, "gone_while_stopped"), (ie, "gone")):
            found = rows(db, "SELECT * FROM v_lifetimes WHERE inode = ?", (ino,))
            self.assertEqual(len(found), 1, found)
            self.assertEqual(found[0]["close_reason"], reason, found)
        assert_one_open_lifetime_each(self, db, steady)
        notes = " ".join(n["notes"] or "" for n in rows(db, "SELECT notes FROM runs ORDER BY run_id"))
        self.assertIn("stepped back", notes)
        self.assertIn("stepped forward", notes)
        self.assertIn("behind the previous run", notes)
        runs = rows(db, "SELECT * FROM runs WHERE ended_at < started_at")
        self.assertEqual(runs, [])
        figures(f"clock: jumps of -1 h, +2 h and a restart 3 h behind; no negative durations; notes: {notes}")


def boot_ms():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("btime "):
                return int(line.split()[1]) * 1000
    raise AssertionError("no btime in /proc/stat")


def start_ticks(pid="self"):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[19])


def child_with_socket(report, hold):
    """Forks a process that binds a socket, reports (pid, start ticks, inode)
    on the pipe `report`, holds the socket `hold` seconds and exits."""
    pid = os.fork()
    if pid == 0:
        try:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            s.listen()
            os.write(report, f"{os.getpid()} {start_ticks()} {inode(s)}\n".encode())
            time.sleep(hold)
        finally:
            os._exit(0)
    return pid


class AttributionRaceTest(unittest.TestCase):
    def test_exiting_and_reused_processes_are_never_misattributed(self):
        db = os.path.join(scratch_dir(), "owners.db")
        rnd = random.Random(7)
        self.unattributed_holds = 0
        r = Recorder(db, "--interval", "50ms")
        self.addCleanup(r.kill)
        r.wait_samples(2)
        rd, wr = os.pipe()
        children = []
        # Short-lived processes, some exiting while the recorder scans them.
        end = time.time() + 8
        while time.time() < end:
            children.append(child_with_socket(wr, rnd.uniform(0.0, 0.15)))
            if len(children) > 6:
                os.waitpid(children.pop(0), 0)
            time.sleep(rnd.uniform(0.0, 0.02))
        for c in children:
            os.waitpid(c, 0)
        reused = self.reuse_pids(r, wr)
        r.wait_samples(3)
        self.assertEqual(r.stop(), 0, r.log())
        os.close(wr)
        with os.fdopen(rd) as f:
            truth = {int(ino): (int(pid), int(ticks)) for pid, ticks, ino in (l.split() for l in f)}
        hz, boot = os.sysconf("SC_CLK_TCK"), boot_ms()
        attributed = unattributed = 0
        for ino, (pid, ticks) in truth.items():
            for row in rows(db, "SELECT pid, proc_start FROM v_lifetimes WHERE inode = ?", (ino,)):
                if row["pid"] is None:
                    unattributed += 1
                    continue
                attributed += 1
                self.assertEqual((row["pid"], row["proc_start"]), (pid, boot + ticks * 1000 // hz),
                                 f"socket inode {ino} recorded with the wrong owner")
        # Most children live shorter than a busy machine's tick: how many of
        # them can be attributed depends on the load (13 of 40 under ASan at
        # load 25). The children held until attributed (both ends of each
        # reused pid) must be, and one more: the check above is not vacuous.
        self.assertGreaterEqual(attributed, 1 + 2 * reused, f"too few attributed: {attributed} of {len(truth)}")
        figures(f"attribution: {len(truth)} sockets of short-lived processes, {attributed} attributed (all to "
                f"the right pid and start time), {unattributed} without owner, {reused} pids reused, "
                f"{self.unattributed_holds} held children not attributed")

    def hold_until_attributed(self, r, wr):
        """A child holding a socket until the recorder has seen it and had
        three more samples to attribute it; it is then killed. Returns its
        pid, or None when it was not attributed: the recorder reads a process
        again only when its /proc entry or descriptor count changed, and a
        reused pid can look unchanged (a sibling of the same parent, while
        the old entry is still cached); it then records no owner, never a
        wrong one (checked by the caller)."""
        rd, mine = os.pipe()
        child = child_with_socket(mine, 600)
        os.close(mine)
        with os.fdopen(rd) as f:
            report = f.readline()
        os.write(wr, report.encode())
        ino = int(report.split()[2])
        seen = lambda: rows(r.db, "SELECT pid FROM v_lifetimes WHERE inode = ?", (ino,))  # noqa: E731
        r.wait(seen, f"sampling the socket of pid {child}", r.samples)
        then = r.samples()
        r.wait(lambda: seen()[0]["pid"] is not None or r.samples() >= then + 3, f"attributing pid {child}",
               r.samples)
        attributed = seen()[0]["pid"] is not None
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
        if not attributed:
            self.unattributed_holds += 1
        return child if attributed else None

    def reuse_pids(self, r, wr, tries=5):
        """Makes the next process get the pid of one that just exited, while the
        recorder watches (needs root and a writable ns_last_pid). Returns how
        many times the pid was reused."""
        reused = 0
        for _ in range(tries):
            first = self.hold_until_attributed(r, wr)
            if first is None:
                continue
            try:
                with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                    f.write(str(first - 1))
            except OSError:
                return reused
            second = self.hold_until_attributed(r, wr)
            reused += second == first
        return reused


def status_kib(pid, field):
    """A field of a process's status in KiB (VmRSS, VmHWM, RssAnon)."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def rss_kib(pid):
    """VmRSS of a process, in KiB."""
    return status_kib(pid, "VmRSS")


def anon_kib(pid):
    """RssAnon of a process (its resident memory but its files), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))


CLONE_NEWNET = 0x40000000  # <sched.h>


def hold_pairs(n, ready, go):
    """In a child process: n loopback connections (both ends held), a byte
    written to ready once they are, then on a byte from go (or its end)
    every one closed with a reset, and the child exits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    l = socket.socket()
    l.bind(("127.0.0.1", 0))
    l.listen(4096)
    pairs = []
    for _ in range(n):
        c = socket.create_connection(l.getsockname())
        pairs.append((c, l.accept()[0]))
    os.write(ready, b"r")
    os.read(go, 1)
    for c, a in pairs:
        close_hard(c)
        a.close()
    l.close()


# For a socket recorded twice: how its first lifetime closed and its second
# came (seen_by, 0 for samples), and how long after that close, in 100 ms.
TWICE_HOW = ("SELECT coalesce(a.seen_by, 0) AS first_by, coalesce(b.seen_by, 0) AS second_by,"
             " (b.first_seen - (a.first_seen + a.closed_after)) / 100 * 100 AS late_ms, count(*) AS n"
             " FROM lifetimes a JOIN lifetimes b ON a.cookie = b.cookie AND a.lifetime_id < b.lifetime_id"
             " GROUP BY 1, 2, 3 ORDER BY n DESC LIMIT 6")


class MemoryBackTest(unittest.TestCase):
    """A mass close: once 100,000 sockets are gone, the recorder gives back
    most of the memory it took for them (issue 17, item 4); and so it does
    once it has taken the announcements of a burst of short connections
    (whose lists grew while a loaded machine kept it from taking them). It runs in a
    network namespace of its own (as root), so that no other test's
    recorder sees them and no other test's sockets count here; the sockets
    are held by child processes, each within its own descriptor limit."""
    PAIRS = 5000  # connections a child holds: 10,000 descriptors
    CHILDREN = 10  # 100,000 sockets in all

    def hold(self):
        """Starts the children; returns the pipe whose end makes them close."""
        ready_r, ready_w = os.pipe()
        go_r, go_w = os.pipe()
        for _ in range(self.CHILDREN):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    os.close(ready_r)
                    os.close(go_w)
                    hold_pairs(self.PAIRS, ready_w, go_r)
                    code = 0
                finally:
                    os._exit(code)
        os.close(ready_w)
        os.close(go_r)
        for _ in range(self.CHILDREN):
            if os.read(ready_r, 1) != b"r":
                raise AssertionError("a child could not hold its connections")
        os.close(ready_r)
        return go_w

    def measure(self):
        """In the namespace: the recorder's anonymous memory and the
        namespace's sockets before, with and after the connections."""
        r = Recorder(os.path.join(scratch_dir(), "back.db"), "--interval", "500ms")
        try:
            r.wait_samples(3)
            got = {"base": anon_kib(r.pid), "base_sockets": machine_sockets()}
            go = self.hold()
            try:
                r.wait_samples(3)
                got.update(held=anon_kib(r.pid), held_sockets=machine_sockets())
            finally:
                os.close(go)  # the children close theirs and exit
                for _ in range(self.CHILDREN):
                    os.wait()
            r.wait_samples(5)
            got.update(after=anon_kib(r.pid), after_sockets=machine_sockets())
            if r.stop() != 0:
                raise AssertionError(f"the recorder failed: {r.log()}")
        finally:
            r.kill()
        # Each socket once, whatever announcements the close overran.
        def one(sql):
            return rows(r.db, sql)[0]["n"]
        got["twice"] = one("SELECT count(*) - count(DISTINCT cookie) AS n FROM lifetimes WHERE cookie IS NOT NULL")
        got["still_open"] = one("SELECT count(*) AS n FROM lifetimes WHERE closed_after IS NULL"
                                " AND remote_addr_id IS NOT NULL")
        got["overruns"] = one("SELECT event_overruns AS n FROM runs")
        if got["twice"]:
            got["twice_how"] = rows(r.db, TWICE_HOW)
        return got

    BURST = 20000  # connections opened and closed between two samples: 40,000 sockets

    def measure_burst(self):
        """In the namespace: a recorder stopped while BURST connections open
        and close, so that it reads all their announcements before its next
        sample (its queue in the kernel made big enough for them); its
        resident memory before (KiB), its peak taking them and after."""
        env = dict(os.environ, CONNHIST_EVENT_RCVBUF=str(256 << 20))
        r = Recorder(os.path.join(scratch_dir(), "burst.db"), "--interval", "500ms", env=env)
        try:
            r.wait_samples(3)
            got = {"base": rss_kib(r.pid)}
            l = socket.socket()
            l.bind(("127.0.0.1", 0))
            l.listen(64)
            os.kill(r.pid, signal.SIGSTOP)
            try:
                with open(f"/proc/{r.pid}/clear_refs", "w") as f:
                    f.write("5")  # the peak from here on
                for _ in range(self.BURST):
                    c = socket.create_connection(l.getsockname())
                    a = l.accept()[0]
                    close_hard(c)
                    a.close()
            finally:
                os.kill(r.pid, signal.SIGCONT)
            port = l.getsockname()[1]
            l.close()
            # Connected TCP sockets closed: the burst's both ends (the kernel
            # announces a client's reset with its remote port cleared).
            count = ("SELECT count(*) AS n FROM lifetimes WHERE proto = 6 AND closed_after IS NOT NULL"
                     " AND remote_addr_id IS NOT NULL")
            r.wait(lambda: rows(r.db, count)[0]["n"] >= 2 * self.BURST, "writing the burst's lifetimes",
                   lambda: rows(r.db, count)[0]["n"])
            got["lifetimes"] = rows(r.db, count)[0]["n"]
            r.wait_samples(3)
            got.update(peak=status_kib(r.pid, "VmHWM"), after=rss_kib(r.pid))
            if r.stop() != 0:
                raise AssertionError(f"the recorder failed: {r.log()}")
        finally:
            r.kill()
        return got

    def in_namespace(self, measure):
        """measure() in a child process in a new network namespace; its
        result, or {"skip": why}."""
        out_r, out_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.close(out_r)
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.unshare(CLONE_NEWNET) != 0:
                    got = {"skip": f"no network namespace of its own: {os.strerror(ctypes.get_errno())}"}
                else:
                    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
                    got = measure()
                os.write(out_w, json.dumps(got).encode())
                code = 0
            except BaseException as e:  # reported by the parent
                os.write(out_w, json.dumps({"error": repr(e)}).encode())
            finally:
                os._exit(code)
        os.close(out_w)
        chunks = []
        while chunk := os.read(out_r, 65536):
            chunks.append(chunk)
        os.close(out_r)
        os.waitpid(pid, 0)
        return json.loads(b"".join(chunks) or b'{"error": "the measuring child said nothing"}')

    def measured(self, measure, why=None):
        """What measure() returned in a network namespace of its own; the
        test skipped with the reason why where it cannot run."""
        if os.environ.get("CONNHIST_SANITIZER") == "asan":
            why = "AddressSanitizer keeps freed memory in quarantine: resident size says nothing"
        got = {"skip": why} if why else self.in_namespace(measure)
        if "skip" in got:
            print(f"MemoryBackTest skipped: {got['skip']}", file=sys.stderr)
            self.skipTest(got["skip"])
        self.assertNotIn("error", got, got.get("error"))
        return got

    def test_memory_given_back(self):
        why = None
        if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2 * self.PAIRS + 64:
            why = f"{2 * self.PAIRS + 64} descriptors a process not permitted"
        got = self.measured(self.measure, why)
        took = got["held"] - got["base"]
        note = (f"anonymous memory {got['base']} KiB with {got['base_sockets']} sockets, {got['held']} with"
                f" {got['held_sockets']}, {got['after']} with {got['after_sockets']} after the close")
        figures(f"memory given back: {note}")
        self.assertGreater(got["held_sockets"] - got["base_sockets"], 2 * self.PAIRS * self.CHILDREN * 0.99, note)
        self.assertGreater(took, 4096, f"the sockets cost the recorder no memory: {note}")
        # Kept: what is bounded whatever the load (SQLite's page cache, the maps of owner
        # events and of closes waiting for their announcement) and the heap's leftovers;
        # the room of the sockets themselves is given back.
        self.assertLess(got["after"] - got["base"], took / 2, f"not given back: {note}")
        # A mass close came back as sockets recorded twice (the sample
        # found more gone than the recorder kept for their announcements,
        # which came after it): 4 to 5% of them when the announcements
        # overran their queue, up to 35% when a loaded machine delayed them
        # (three of these tests at once beside two CPU hogs). The recorder
        # now keeps such sockets while their announcements come (none twice
        # in 21 such runs); one whose announcement comes later still may come back.
        # Bounded at 0.1%, zero is the aim.
        figures(f"mass close: {got['overruns']} events lost, {got['twice']} sockets recorded twice"
                f" {got.get('twice_how', '')}")
        sockets = 2 * self.PAIRS * self.CHILDREN
        self.assertLessEqual(got["twice"], sockets // 1000, f"sockets recorded twice after the mass close: {note}")
        self.assertEqual(got["still_open"], 0, f"connections left open after the mass close: {note}")

    def test_burst_given_back(self):
        """The announcements of a burst of short connections, read before
        the sample that takes them: their room is given back once taken."""
        got = self.measured(self.measure_burst)
        took = got["peak"] - got["base"]
        note = (f"resident {got['base']} KiB before a burst of {self.BURST} connections, {got['peak']} at"
                f" the peak taking it, {got['after']} after ({got['lifetimes']} lifetimes)")
        figures(f"burst given back: {note}")
        self.assertEqual(got["lifetimes"], 2 * self.BURST, f"one lifetime a socket: {note}")
        self.assertGreater(took, 4096, f"the burst cost the recorder no memory: {note}")
        # Kept: SQLite's page cache (bounded) and the heap's leftovers, 1.2 MiB
        # of the 13 taken here; the announcements' lists are given back.
        self.assertLess(got["after"] - got["base"], took / 5, f"not given back: {note}")


class SoakTest(unittest.TestCase):
    def rss_kib(self, pid):
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def db_pages(self, db):
        return rows(db, "PRAGMA page_count")[0]["page_count"]

    def spans(self, db, pid):
        return rows(db, "SELECT first_at, last_at, interval_ms FROM heartbeats JOIN runs USING (run_id)"
                    " WHERE pid = ? ORDER BY first_at", (pid,))

    def test_soak_thousands_of_sockets(self):
        db = os.path.join(scratch_dir(), "soak.db")
        rnd = random.Random(3)
        l = socket.socket()
        l.bind(("127.0.0.1", 0))
        l.listen(1024)
        conns = []

        def connect():
            c = socket.create_connection(l.getsockname())
            a, _ = l.accept()
            conns.append((c, a))

        def reset(i):
            c, a = conns.pop(i)
            close_hard(c)
            a.close()

        self.addCleanup(lambda: [reset(0) for _ in range(len(conns))] and None)
        self.addCleanup(l.close)
        for _ in range(2500):  # 5000 sockets
            connect()
        r = Recorder(db, "--interval", "200ms")
        self.addCleanup(r.kill)
        r.wait_samples(5)
        # Quiet: thousands open, nothing changes; the database must not grow.
        count = "SELECT (SELECT count(*) FROM lifetimes) + (SELECT count(*) FROM state_changes) AS n"
        quiet_start, quiet_events = self.db_pages(db), rows(db, count)[0]["n"]
        ownerless = {row["lifetime_id"] for row in rows(db, "SELECT lifetime_id FROM lifetimes WHERE proc_id IS NULL")}
        spans_before = len(self.spans(db, r.pid))
        r.wait_samples(25)
        quiet_growth = self.db_pages(db) - quiet_start
        # Allowed for, as the run measured them: rows for the sockets other
        # processes opened meanwhile, owners found late, and heartbeat spans begun after a
        # starved tick (a sample more than two intervals after the previous
        # one starts a new row: its table and two indexes may each take a page).
        spans = self.spans(db, r.pid)
        new_spans = len(spans) - spans_before
        for a, b in zip(spans[spans_before - 1:], spans[spans_before:]):
            self.assertGreater(b["first_at"] - a["last_at"], 2 * b["interval_ms"], f"a span without a gap: {spans}")
        # Owners found late, for other processes' sockets whose look-up was
        # rationed away under load (an UPDATE, and an entry in the owners'
        # index): a page each at the most.
        late_owners = sum(1 for row in rows(db, "SELECT lifetime_id FROM lifetimes WHERE proc_id IS NOT NULL")
                          if row["lifetime_id"] in ownerless)
        quiet_allowed = 2 + (rows(db, count)[0]["n"] - quiet_events) * 1024 // 4096 + 3 * new_spans + late_owners
        # Churn: 20 connections reset and 20 opened every 100 ms. Resident
        # memory is read every 2 s, with the machine's socket count (the
        # recorder's memory follows it: other processes' sockets count too).
        rss, machine, churned, start = [], [], 0, time.time()
        pages_start, lifetimes_start = self.db_pages(db), rows(db, "SELECT count(*) AS n FROM v_lifetimes")[0]["n"]
        next_rss = start
        while time.time() - start < SOAK_SECONDS:
            for _ in range(20):
                reset(rnd.randrange(len(conns)))
                connect()
            churned += 20
            if time.time() >= next_rss:
                self.assertTrue(r.alive(), r.log())
                rss.append(self.rss_kib(r.pid))
                machine.append(machine_sockets())
                next_rss += 2
            time.sleep(0.1)
        r.wait_samples(3)
        pages = self.db_pages(db) - pages_start
        lifetimes = rows(db, "SELECT count(*) AS n FROM v_lifetimes")[0]["n"] - lifetimes_start
        self.assertEqual(r.stop(), 0, r.log())
        self.assertLessEqual(quiet_growth, quiet_allowed, "the database grew while nothing changed")
        [run] = rows(db, "SELECT event_overruns, notes FROM runs WHERE pid = ?", (r.pid,))
        # runs.event_overruns also counts owner events lost (which lose an
        # owner, never a lifetime); a run that lost any notes the breakdown.
        split = re.search(r"event_overruns: (\d+) announcement overruns", run["notes"] or "")
        announcements = int(split.group(1)) if split else run["event_overruns"]
        if announcements == 0:  # else announcements were lost (a burst elsewhere), and said so
            self.assertGreaterEqual(lifetimes, churned * 2 * 0.9)  # both ends of each new connection
        else:
            self.assertIn("overran", run["notes"])
        per_lifetime = pages * 4096 / max(lifetimes, 1)
        self.assertLess(per_lifetime, 1024, "the database grows faster than the churn")
        # Memory: after warm-up (the page cache fills), flat to within 2 MiB,
        # plus what the machine's extra sockets cost at most (the whole
        # resident size per socket at warm-up, an overestimate).
        third = len(rss) // 3
        settled, settled_machine = rss[third:], machine[third:]
        n = len(settled) // 3
        warm, late = max(settled[:n]), max(settled[-n:])
        per_socket = settled[0] / settled_machine[0]
        grown_sockets = max(0, max(settled_machine[-n:]) - min(settled_machine[:n]))
        allowed_kib = 2048 + grown_sockets * per_socket
        # (AddressSanitizer holds freed memory in quarantine: resident size
        # says nothing there. A short soak ends before the page cache settles.)
        if os.environ.get("CONNHIST_SANITIZER") == "asan" or SOAK_SECONDS < 60:
            print(f"resident memory not checked: sanitizer {os.environ.get('CONNHIST_SANITIZER')}, "
                  f"soak of {SOAK_SECONDS:.0f} s", file=sys.stderr)
        else:
            self.assertLess(late - warm, allowed_kib, f"resident memory grew: {rss} KiB, sockets {machine}")
        own = ("proto = 'tcp' AND family = 4 AND ((local_addr = '127.0.0.1' AND local_port = ?1)"
               " OR (remote_addr = '127.0.0.1' AND remote_port = ?1))")
        open_now = rows(db, "SELECT count(*) AS n FROM v_lifetimes WHERE closed_at IS NULL AND " + own,
                        (l.getsockname()[1],))[0]["n"]
        self.assertEqual(open_now, len(conns) * 2 + 1)
        figures(f"soak: {SOAK_SECONDS:.0f} s, {len(conns) * 2 + 1} sockets open, {churned} connections churned, "
                f"{lifetimes} new lifetimes, {pages * 4096 // max(lifetimes, 1)} B of database each, "
                f"{quiet_growth} pages grown in {25} quiet samples ({new_spans} new heartbeat spans); "
                f"VmRSS KiB every 2 s: {rss}; machine's sockets: {machine}")


if __name__ == "__main__":
    unittest.main()
