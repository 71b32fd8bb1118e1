"""Final byte counts of every closed TCP connection (issue 13): both ends,
the one that went through TIME_WAIT included, with or without a sample
having seen them, carry the kernel's final counters (tcpi_bytes_acked and
tcpi_bytes_received, which count the SYN and FIN too: within 2 of what was
sent and received), never the last sample's nor none. Known transfer sizes
over IPv4 and IPv6 loopback, the real recorder at its default events (as
root with BPF: owner events, which give every connection its cookie early,
so its TIME_WAIT entry keeps it)."""

import os
import socket
import struct
import sys
import time
import unittest

from helpers import rows, scratch_dir, stop_record
from test_owners_events import UNAVAILABLE, Recorder, notes

HOSTS = ("127.0.0.1", "::1")


def recv_exactly(s, n):
    got = 0
    while got < n:
        chunk = s.recv(min(65536, n - got))
        if not chunk:
            break
        got += len(chunk)
    return got


class FinalBytesTest(unittest.TestCase):
    def test_known_sizes(self):
        db = os.path.join(scratch_dir(), "connhist.db")
        listeners = {}
        for host in HOSTS:
            l = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            l.bind((host, 0))
            l.listen(64)
            self.addCleanup(l.close)
            listeners[host] = l
        rec = Recorder(db)
        made = []
        for i in range(40):
            host = HOSTS[i % 2]
            l = listeners[host]
            n, m = 1000 * i + 7, 333 * i + 1
            c = socket.create_connection(l.getsockname()[:2])
            a, _ = l.accept()
            c.sendall(b"c" * n)
            self.assertEqual(recv_exactly(a, n), n)
            a.sendall(b"s" * m)
            self.assertEqual(recv_exactly(c, m), m)
            first, second = (c, a) if i % 4 < 2 else (a, c)  # either end goes to TIME_WAIT
            first.close()
            second.recv(1)  # the FIN
            second.close()
            made.append((host, n, m))
            time.sleep(0.1)  # 4 s: some close just before a sample, some just after
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        missing = []
        # Both ends of every connection to our listeners, by the listeners' ports.
        for host in HOSTS:
            lport = listeners[host].getsockname()[1]
            ends = rows(db, "SELECT * FROM v_lifetimes WHERE proto = 'tcp' AND local_addr = ?"
                            " AND (local_port = ? OR remote_port = ?) AND remote_port IS NOT NULL",
                        (host, lport, lport))
            sizes = {(n, m) for h, n, m in made if h == host}
            clients = [e for e in ends if e["remote_port"] == lport]
            servers = [e for e in ends if e["local_port"] == lport]
            self.assertEqual(len(clients), 20, clients)
            self.assertEqual(len(servers), 20, servers)
            for e in clients + servers:
                sent, received = e["bytes_sent"], e["bytes_received"]
                if sent is None or received is None:
                    missing.append(e)
                    continue
                if e in servers:
                    sent, received = received, sent
                # The client's sent n and received m, each within 2 (SYN, FIN).
                match = [(n, m) for n, m in sizes if n <= sent <= n + 2 and m <= received <= m + 2]
                self.assertEqual(len(match), 1, (e, sorted(sizes)))
        states = sorted(e["state"] for e in missing)
        self.assertEqual(missing, [], f"{len(missing)} ends without final counters ({states})")


def cookie_of(s):
    return struct.unpack("Q", s.getsockopt(socket.SOL_SOCKET, 57, 8))[0]  # SO_COOKIE


def lifetimes_of(db, cookie):
    return rows(db, "SELECT * FROM v_lifetimes WHERE cookie = ?", (cookie,))


class PeerResetTest(unittest.TestCase):
    """A connection reset by its peer leaves the kernel's tables at once (a
    sample finds it gone) but is destroyed, and announced, only when its
    process closes it, samples later. That announcement is the same socket:
    it joins the lifetime the samples closed (by cookie) and gives it the
    kernel's final counters, never a second lifetime."""

    def test_reset_then_closed_later(self):
        db = os.path.join(scratch_dir(), "reset.db")
        l = socket.socket()
        l.bind(("127.0.0.1", 0))
        l.listen(8)
        self.addCleanup(l.close)
        rec = Recorder(db)
        if "no announcements of closed sockets" in notes(db):
            self.skipTest(f"the recorder has no announcements of closed sockets here: {notes(db)}")
        c = socket.create_connection(l.getsockname())
        a, _ = l.accept()
        n, m = 5000, 700
        c.sendall(b"c" * n)
        self.assertEqual(recv_exactly(a, n), n)
        a.sendall(b"s" * m)
        self.assertEqual(recv_exactly(c, m), m)
        cookie = cookie_of(c)
        rec.wait_next()
        rec.wait_next()  # a sample saw the connection: its lifetime has the cookie
        self.assertEqual(len(lifetimes_of(db, cookie)), 1)
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        a.close()  # a reset: c leaves the tables, still held by this process
        for _ in range(3):  # found gone, and that sample is no longer the last
            rec.wait_next()
        [gone] = lifetimes_of(db, cookie)
        self.assertIsNotNone(gone["closed_at"], gone)
        c.close()  # destroyed now: announced
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        found = lifetimes_of(db, cookie)
        self.assertEqual(len(found), 1, f"one socket, {len(found)} lifetimes: {found}")
        [life] = found
        self.assertEqual(life["close_reason"], "gone", life)
        self.assertIsNotNone(life["bytes_sent"], f"no final counters: {life}")
        # The kernel's final counters, from the announcement (the SYN counts).
        self.assertTrue(n <= life["bytes_sent"] <= n + 2, life)
        self.assertTrue(m <= life["bytes_received"] <= m + 2, life)


class ResetHeldTest(unittest.TestCase):
    """With the owner events, a reset connection still held by its process
    when the recorder stops (never announced) has the kernel's final
    counters all the same: the event source reports them as the connection
    enters CLOSE."""

    def attempt(self, l, n, m):
        """One run: the lifetime of the reset connection, or None when it has
        no counters and the run lost kernel events (a machine busier than
        the ring buffer: its record may be among them)."""
        db = os.path.join(scratch_dir(), f"reset-held-{time.monotonic_ns()}.db")
        rec = Recorder(db, "--events", "bpf")
        c = socket.create_connection(l.getsockname()[:2])
        self.addCleanup(c.close)
        a, _ = l.accept()
        c.sendall(b"c" * n)
        self.assertEqual(recv_exactly(a, n), n)
        a.sendall(b"s" * m)
        self.assertEqual(recv_exactly(c, m), m)
        cookie = cookie_of(c)
        rec.wait_next()
        rec.wait_next()  # a sample saw it
        a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        a.close()
        code, err = rec.stop()  # two samples: c is found gone, never announced
        self.assertEqual(code, 0, err)
        [run] = rows(db, "SELECT event_overruns, notes FROM runs")
        [life] = lifetimes_of(db, cookie)
        if life["bytes_sent"] is None and run["event_overruns"]:
            print(f"a run lost events (perhaps this one's), again: {run['notes']}", file=sys.stderr)
            return None
        return life

    def test_reset_still_held_at_stop(self):
        if UNAVAILABLE:
            self.skipTest(UNAVAILABLE)
        l = socket.socket(socket.AF_INET6)
        l.bind(("::1", 0))
        l.listen(8)
        self.addCleanup(l.close)
        n, m = 9000, 1234
        for _ in range(3):
            life = self.attempt(l, n, m)
            if life is not None:
                break
        else:
            # Nothing to conclude: the record may have been among those lost
            # (counted and noted by each run, as it must be).
            self.skipTest("each of 3 runs lost kernel events, this connection's perhaps among them:"
                          " the machine makes more than the ring buffer holds")
        self.assertIsNotNone(life["closed_at"], life)
        self.assertIsNone(life["seen_by"], life)  # closed by a sample: no announcement came
        self.assertIsNotNone(life["bytes_sent"], f"no final counters without the announcement: {life}")
        self.assertTrue(n <= life["bytes_sent"] <= n + 2 and m <= life["bytes_received"] <= m + 2, life)


class StopTest(unittest.TestCase):
    """At its stop the recorder reads once more what the kernel announced
    and reported since the last sample, before its last commit: a
    connection a sample saw and one no sample saw, both closed just before
    the stop, are closed in the record at their announced times with their
    final counters, and (with the owner events) name this process."""

    def exchange(self, l, n, m):
        c = socket.create_connection(l.getsockname())
        a, _ = l.accept()
        c.sendall(b"c" * n)
        self.assertEqual(recv_exactly(a, n), n)
        a.sendall(b"s" * m)
        self.assertEqual(recv_exactly(c, m), m)
        return c, a

    def attempt(self, l):
        """One run: returns (db, cookies of the connection seen and of the one
        unseen, the time of the stop), or None when a sample came between
        the closes and the stop (a loaded machine)."""
        db = os.path.join(scratch_dir(), f"stop-{time.monotonic_ns()}.db")
        rec = Recorder(db, "--interval", "5s")
        if "no announcements of closed sockets" in notes(db):
            self.skipTest(f"the recorder has no announcements of closed sockets here: {notes(db)}")
        seen = self.exchange(l, 3000, 400)
        rec.wait_next()  # a sample saw it
        before = rec.samples()
        unseen = self.exchange(l, 6000, 800)
        cookies = cookie_of(seen[0]), cookie_of(unseen[0])
        for c, a in (seen, unseen):
            c.close()
            a.recv(1)  # the FIN
            a.close()
        time.sleep(0.05)  # announced
        after = rec.samples()
        stopping = int(time.time() * 1000)
        code, _, err = stop_record_now(rec)
        self.assertEqual(code, 0, err)
        # A void run: a sample came between the closes and the stop, or the
        # kernel's queue of announcements overran (a loaded machine).
        [run] = rows(db, "SELECT event_overruns FROM runs")
        clean = before == after == samples_of_run(db) and not run["event_overruns"]
        return (db, cookies, stopping) if clean else None

    def test_closed_just_before_stop(self):
        l = socket.socket()
        l.bind(("127.0.0.1", 0))
        l.listen(8)
        self.addCleanup(l.close)
        for _ in range(3):
            got = self.attempt(l)
            if got is not None:
                break
        else:
            # Nothing to conclude: what the stop reads was read by a sample,
            # or lost (counted and noted by each run, as it must be).
            self.skipTest("a sample or an overrun came between the closes and the stop in each of 3 runs"
                          " (a machine whose samples take most of the interval)")
        db, (seen, unseen), stopping = got
        beat = rows(db, "SELECT MAX(last_at) AS t FROM heartbeats")[0]["t"]
        for cookie, n, m, how in ((seen, 3000, 400, "destroy_event"), (unseen, 6000, 800, "destroy_event_only")):
            [life] = lifetimes_of(db, cookie)
            self.assertIsNotNone(life["closed_at"], f"not closed at the stop: {life}")
            self.assertEqual(life["seen_by"], how, life)
            self.assertTrue(beat < life["closed_at"] <= stopping + 1000, (beat, stopping, life))
            self.assertTrue(n <= life["bytes_sent"] <= n + 2 and m <= life["bytes_received"] <= m + 2, life)
            if cookie == seen:  # a sample saw its descriptor
                self.assertEqual((life["pid"], life["owner_source"]), (os.getpid(), "socket"), life)
            elif UNAVAILABLE is None:
                self.assertEqual((life["pid"], life["owner_source"]), (os.getpid(), "event"), life)
            else:
                self.assertIsNone(life["pid"], life)  # no event: nobody is named
        print(f"closed at the stop: {len(rows(db, 'SELECT 1 FROM v_lifetimes WHERE closed_at > ?', (beat,)))}"
              f" lifetimes after the last sample", file=sys.stderr)


def samples_of_run(db):
    return rows(db, "SELECT COALESCE(SUM(samples), 0) AS n FROM heartbeats")[0]["n"]


def stop_record_now(rec):
    """Stops the recorder at once, unlike Recorder.stop (which waits for two
    more samples)."""
    return stop_record(rec.proc, timeout=60)


if __name__ == "__main__":
    unittest.main()
