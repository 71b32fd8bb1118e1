"""Port ranges over time: the ephemeral range and reserved ports are
recorded, changes open and close rows, and `connhist-query port N` says
which ranges N lay in."""

import fcntl
import os
import unittest

from helpers import query, rows, run_record, scratch_dir

RESERVED = "/proc/sys/net/ipv4/ip_local_reserved_ports"


def ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        first, last = f.read().split()
    return int(first), int(last)


class PortRangeTest(unittest.TestCase):
    def test_ephemeral_range_is_recorded_once(self):
        db = os.path.join(scratch_dir(), "ports.db")
        for _ in range(3):
            p = run_record(db, "--once")
            self.assertEqual(p.returncode, 0, p.stderr)
        first, last = ephemeral_range()
        eph = rows(db, "SELECT * FROM port_ranges WHERE kind = 'ephemeral' ORDER BY proto")
        self.assertEqual([(r["proto"], r["first_port"], r["last_port"], r["closed_at"]) for r in eph],
                         [("tcp", first, last, None), ("udp", first, last, None)])
        inside = query(db, "port", str(first + 1))
        self.assertEqual(sorted((r["proto"], r["kind"]) for r in inside["ranges"]),
                         [("tcp", "ephemeral"), ("udp", "ephemeral")])
        self.assertIsNone(inside["ranges"][0]["token"])
        outside = query(db, "port", str(first - 1), "--proto", "tcp")
        self.assertEqual([r for r in outside["ranges"] if r["kind"] == "ephemeral"], [])

    @unittest.skipUnless(os.geteuid() == 0 and os.access(RESERVED, os.W_OK), "needs root to reserve ports")
    def test_reserved_ports_open_and_close(self):
        db = os.path.join(scratch_dir(), "reserved.db")
        # The setting is the machine's: another run of this test (another
        # build's suite, another user) must not save our value as its own.
        lock = open("/run/lock/connhist-test-reserved-ports", "w")
        self.addCleanup(lock.close)
        fcntl.flock(lock, fcntl.LOCK_EX)
        with open(RESERVED) as f:
            saved = f.read().strip()
        try:
            with open(RESERVED, "w") as f:
                f.write(",".join(x for x in (saved, "47613-47615") if x))
            self.assertEqual(run_record(db, "--once").returncode, 0)
            [tcp] = rows(db, "SELECT * FROM port_ranges WHERE kind = 'reserved' AND proto = 'tcp'"
                             " AND first_port = 47613")
            self.assertEqual((tcp["last_port"], tcp["closed_at"]), (47615, None))
        finally:
            with open(RESERVED, "w") as f:
                f.write(saved if saved else "\n")
        self.assertEqual(run_record(db, "--once").returncode, 0)
        [tcp] = rows(db, "SELECT * FROM port_ranges WHERE kind = 'reserved' AND proto = 'tcp' AND first_port = 47613")
        self.assertIsNotNone(tcp["closed_at"])
        self.assertGreater(tcp["closed_at"], tcp["first_seen"])
        out = query(db, "port", "47614", "--proto", "tcp")
        reserved = [r for r in out["ranges"] if r["kind"] == "reserved"]
        self.assertEqual(len(reserved), 1)
        self.assertIsNotNone(reserved[0]["closed_at"])
        # The ephemeral range did not change: still one open row per protocol.
        self.assertEqual(len(rows(db, "SELECT * FROM port_ranges WHERE kind = 'ephemeral'")), 2)

    def test_bad_reservation(self):
        db = os.path.join(scratch_dir(), "bad.db")
        for bad in ("tcp:0:5", "tcp:65535:2", "icmp:1:1", "tcp:5000", "tcp:5000:0", "", "tcp:5000:20x"):
            with self.subTest(value=bad):
                p = run_record(db, "--once", "--reservation", bad)
                self.assertEqual(p.returncode, 2)
                self.assertIn("--reservation", p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1)
        self.assertFalse(os.path.exists(db))


if __name__ == "__main__":
    unittest.main()
