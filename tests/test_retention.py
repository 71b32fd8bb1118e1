"""--retain: closed lifetimes older than the retention are pruned in small
batches while sampling goes on, open ones never are, space is given back,
and reports over the pruned past say so."""

import os
import socket
import sqlite3
import unittest

from helpers import add_lifetime, add_state_change, now_ms, query, read_log, rows, run_record, scratch_dir, start_record, stop_record, wait_until

DAY = 86400000
OLD = 3000  # old closed lifetimes: several batches


def age_database(db):
    """Adds OLD closed lifetimes from 100 days ago, owned by a process seen
    only then, as a recorder would have written them."""
    t = now_ms() - 100 * DAY
    c = sqlite3.connect(db)
    with c:
        run = c.execute("SELECT MIN(run_id) FROM runs").fetchone()[0]
        c.execute("INSERT INTO processes(pid, start_time, name, first_seen) VALUES (4242, ?, 'oldproc', ?)", (t, t))
        next_id = c.execute("SELECT MAX(lifetime_id) + 1 FROM lifetimes").fetchone()[0]
        # Ids after the recorder's own, times 100 days before them: as after a wall-clock step back.
        for i in range(OLD):
            add_lifetime(c, next_id + i, t + i, run_id=run, local_addr="10.0.0.1", local_port=1024 + i,
                         remote_addr="192.0.2.7", remote_port=443, states="SYN_SENT,ESTABLISHED",
                         last_seen=t + i + 1000, closed_at=t + i + 2000, close_reason="gone", pid=4242,
                         proc_start=t, holders=1)
            add_state_change(c, next_id + i, t + i + 10, "ESTABLISHED")
    c.close()  # the last connection checkpoints: the rows are in the file now


class RetentionTest(unittest.TestCase):
    def test_prunes_old_closed_only_and_reports_say_pruned(self):
        db = os.path.join(scratch_dir(), "retain.db")
        open_sock = socket.socket()
        open_sock.bind(("127.0.0.1", 0))
        open_sock.listen()
        recent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        recent.bind(("127.0.0.1", 0))
        recent_inode = os.fstat(recent.fileno()).st_ino
        self.assertEqual(run_record(db, "--once").returncode, 0)
        recent.close()
        self.assertEqual(run_record(db, "--once").returncode, 0)
        real = {r["lifetime_id"] for r in rows(db, "SELECT lifetime_id FROM v_lifetimes")}
        age_database(db)

        # Recording with --retain until the old lifetimes are pruned, however
        # many samples that takes on this machine.
        started = now_ms()
        p = start_record(db, "--interval", "100ms", "--retain", "90d", "--verbose",
                         log=os.path.join(scratch_dir(), "record.log"))

        def pruned():
            try:
                return rows(db, "SELECT COALESCE(SUM(lifetimes), 0) AS n FROM prunes")[0]["n"] >= OLD
            except sqlite3.Error:
                return False

        wait_until(pruned, lambda: len(read_log(p)), "pruning the old lifetimes")
        rc, _, err = stop_record(p)
        stopped = now_ms()
        self.assertEqual(rc, 0, err)
        self.assertIn("pruned 500 closed lifetimes", err)

        self.assertEqual(rows(db, "SELECT count(*) AS n FROM v_lifetimes WHERE closed_at < ?",
                              (now_ms() - 90 * DAY,))[0]["n"], 0)
        # The aged rows (to 192.0.2.7, a documentation address no real socket has).
        self.assertEqual(rows(db, "SELECT count(*) AS n FROM v_lifetimes WHERE remote_addr = '192.0.2.7'")[0]["n"], 0)
        kept = {r["lifetime_id"] for r in rows(db, "SELECT lifetime_id FROM v_lifetimes")}
        self.assertEqual(real - kept, set())  # what the recorder wrote itself is all still there
        self.assertEqual(rows(db, "SELECT count(*) AS n FROM state_changes WHERE lifetime_id NOT IN"
                              " (SELECT lifetime_id FROM lifetimes)")[0]["n"], 0)
        self.assertEqual(rows(db, "SELECT count(*) AS n FROM processes WHERE pid = 4242")[0]["n"], 0)
        # The recent closed lifetime and the open listener are kept (found
        # by inode: another process may have used either port number since).
        self.assertEqual(len(rows(db, "SELECT * FROM v_lifetimes WHERE inode = ? AND closed_at IS NOT NULL",
                                  (recent_inode,))), 1)
        self.assertEqual(len(rows(db, "SELECT * FROM v_lifetimes WHERE inode = ? AND closed_at IS NULL",
                                  (os.fstat(open_sock.fileno()).st_ino,))), 1)
        # Pruning is recorded, and sampling went on while it pruned.
        [prune] = rows(db, "SELECT * FROM prunes")
        self.assertEqual(prune["lifetimes"], OLD)
        self.assertTrue(started - 90 * DAY <= prune["cutoff"] <= stopped - 90 * DAY, (started, prune, stopped))
        last_run = rows(db, "SELECT MAX(run_id) AS r FROM runs")[0]["r"]
        samples = rows(db, "SELECT SUM(samples) AS n FROM heartbeats WHERE run_id = ?", (last_run,))[0]["n"]
        batches = err.count("pruned ")
        self.assertGreaterEqual(batches, OLD // 500)
        self.assertGreaterEqual(samples, batches)  # one batch at most after each sample
        self.assertGreater(prune["last_at"] - prune["first_at"], 300)  # in several batches, between samples
        # Space is given back to the file system: the freed pages are not
        # left on the free list (the file itself may have grown meanwhile
        # with other tests' sockets).
        c = sqlite3.connect(db)
        self.assertEqual(c.execute("PRAGMA auto_vacuum").fetchone()[0], 2)
        self.assertLess(c.execute("PRAGMA freelist_count").fetchone()[0], 20)
        self.assertEqual(c.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        c.close()

        old = query(db, "connections", "--since", "-120d")
        self.assertTrue(old["header"]["coverage"]["pruned"])
        self.assertIsNotNone(old["header"]["coverage"]["pruned_before"])
        self.assertFalse(query(db, "connections", "--since", "-1h")["header"]["coverage"]["pruned"])
        open_sock.close()

    def test_bad_retain(self):
        db = os.path.join(scratch_dir(), "bad.db")
        for bad in ("0", "10s", "forever", ""):
            p = run_record(db, "--retain", bad)
            self.assertEqual(p.returncode, 2)
            self.assertIn("--retain", p.stderr)
        self.assertFalse(os.path.exists(db))


if __name__ == "__main__":
    unittest.main()
