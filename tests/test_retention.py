"""--retain: closed lifetimes older than the retention are pruned in small
batches while sampling goes on, open ones never are, space is given back,
and reports over the pruned past say so. DNS answers go by the same cutoff
once they stopped being in force before it."""

import os
import socket
import sqlite3
import unittest

from helpers import add_lifetime, add_state_change, addr_id, now_ms, query, read_log, rows, run_record, scratch_dir, start_record, stop_record, wait_until

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


OLD_ANSWERS = 700  # more than one batch


def add_answers(db):
    """Adds DNS answers as a capturing recorder would have written them:
    OLD_ANSWERS that stopped being in force 100 days ago (to be pruned), one
    first seen 100 days ago that is in force until tomorrow (a long TTL,
    repeated: kept), and one of an hour ago (kept). Returns the kept ones'
    names."""
    t = now_ms() - 100 * DAY
    c = sqlite3.connect(db)
    with c:
        run = c.execute("SELECT MIN(run_id) FROM runs").fetchone()[0]

        def answer(name, addr, first_seen, expires_after):
            c.execute("INSERT OR IGNORE INTO dns_names(name) VALUES (?)", (name,))
            [name_id] = c.execute("SELECT name_id FROM dns_names WHERE name = ?", (name,)).fetchone()
            c.execute("INSERT INTO dns_answers(qname_id, rname_id, type, addr_id, ttl, first_seen, last_seen_after,"
                      " expires_after, times_seen, resolver_addr_id, client_addr_id, client_port, proto, run_id)"
                      " VALUES (?, ?, 1, ?, 60, ?, 0, ?, 1, ?, ?, 40000, 17, ?)",
                      (name_id, name_id, addr_id(c, addr), first_seen, expires_after, addr_id(c, "127.0.0.53"),
                       addr_id(c, "127.0.0.1"), run))

        for i in range(OLD_ANSWERS):
            answer(f"old{i}.test", "192.0.2.7", t + i, 60000)
        answer("long.test", "192.0.2.8", t, 101 * DAY)
        answer("recent.test", "192.0.2.9", now_ms() - 3600000, 60000)
    c.close()
    return {"long.test", "recent.test"}


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
        kept_answers = add_answers(db)
        names_before = rows(db, "SELECT COUNT(*) AS n FROM dns_names")[0]["n"]

        # Recording with --retain until the old lifetimes are pruned, however
        # many samples that takes on this machine.
        started = now_ms()
        p = start_record(db, "--interval", "100ms", "--retain", "90d", "--verbose",
                         log=os.path.join(scratch_dir(), "record.log"))

        def pruned():
            try:
                return (rows(db, "SELECT COALESCE(SUM(lifetimes), 0) AS n FROM prunes")[0]["n"] >= OLD and
                        rows(db, "SELECT COUNT(*) AS n FROM dns_answers")[0]["n"] == len(kept_answers))
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
        # DNS answers: those no longer in force before the cutoff went, in
        # batches; the one in force across it and the recent one stay, and
        # so do the names (the recorder keeps their ids).
        self.assertEqual({r["name"] for r in rows(db, "SELECT name FROM dns_answers JOIN dns_names"
                                                      " ON name_id = qname_id")}, kept_answers)
        self.assertEqual(rows(db, "SELECT COUNT(*) AS n FROM dns_names")[0]["n"], names_before)
        self.assertRegex(err, r"pruned \d+ closed lifetimes and 500 DNS answers")
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
