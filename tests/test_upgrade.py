#!/usr/bin/env python3
"""Schema upgrades (issue 5): a database written by an older schema version
is upgraded in place, in one transaction, by connhist-record.

tests/data/connhist-vN.db is a small real database recorded by the released
programs of schema version N (loopback TCP and UDP connections, a listener
of each family, a connection that went to TIME_WAIT, a --once run). For
each one older than schema/schema.sql, on a copy:

- connhist-query refuses it (it never writes) with one line that says how
  to upgrade;
- connhist-record --upgrade upgrades it and says so; a second --upgrade
  finds nothing to do;
- the result passes integrity_check, has the current user_version, and
  every row of the fixture is still there with the same values in the
  columns both versions have (lifetimes and state changes as the views of
  version 3 show them: names, addresses and absolute times; their ids are
  given again in first_seen order, which the comparison checks);
- the reports read it, and a normal recorder run goes on writing it.

An upgrade that cannot be done (the file is read-only, another process holds
the write lock, the tables are not what the steps expect) exits 1 with one
line naming the file and leaves it byte for byte as it was. A fixture of
the current version is simply read.

Environment: CONNHIST_RECORD, CONNHIST_QUERY, CONNHIST_SCHEMA, and
optionally CONNHIST_WRAPPER (see helpers.py).
"""

import glob
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import unittest

from helpers import QUERY, RECORD, SCHEMA, WRAPPER, query, rows, run_record

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
TABLES = ("runs", "heartbeats", "processes", "prunes", "port_ranges")

# A lifetime and a state change as version 3 shows them, in the column names
# and forms of versions 1 and 2 (which stored them so).
V3_LIFETIMES = """SELECT v.lifetime_id, v.run_id, v.proto, v.family, v.local_addr, v.local_port, v.remote_addr,
    v.remote_port, v.state, v.states, v.first_seen, l.first_seen + l.last_seen_after AS last_seen, v.closed_at,
    v.close_reason, v.pid, v.proc_start, v.holders, l.uid, v.inode, v.cookie, v.local_scope, v.remote_scope,
    v.created_at, v.offload_state, v.owner_module, v.owner_module_path, v.bytes_sent, v.bytes_received,
    v.opened_after, v.seen_by FROM v_lifetimes v JOIN lifetimes l USING (lifetime_id)"""
V3_STATE_CHANGES = "SELECT lifetime_id, at, state FROM v_state_changes"


def current_version():
    with open(SCHEMA, encoding="utf-8") as f:
        return int(re.search(r"PRAGMA user_version = (\d+)", f.read()).group(1))


def fixtures():
    """(version, path) of every tests/data/connhist-vN.db, oldest first."""
    found = []
    for path in glob.glob(os.path.join(DATA, "connhist-v*.db")):
        m = re.fullmatch(r"connhist-v(\d+)\.db", os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    return sorted(found)


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def user_version(db):
    return rows(db, "PRAGMA user_version")[0]["user_version"]


def table_rows(db):
    """{table: (columns, rows)} of the connhist tables in db; lifetimes and
    state_changes in the form of versions 1 and 2."""
    out = {}
    for t in TABLES:
        cols = [r["name"] for r in rows(db, f"PRAGMA table_info({t})")]
        if cols:
            out[t] = (cols, rows(db, f"SELECT * FROM {t}"))
    v3 = user_version(db) >= 3
    for t, sql in (("lifetimes", V3_LIFETIMES), ("state_changes", V3_STATE_CHANGES)):
        got = rows(db, sql if v3 else f"SELECT * FROM {t}")
        out[t] = (list(got[0]) if got else [], got)
    return out


def renumbered(before):
    """The ids version 3 gives the lifetimes of an older database: 1, 2, ... in
    (first_seen, old id) order."""
    order = sorted(before["lifetimes"][1], key=lambda r: (r["first_seen"], r["lifetime_id"]))
    return {r["lifetime_id"]: n for n, r in enumerate(order, 1)}


def run(program, *args, timeout=120):
    p = subprocess.run(WRAPPER + [program] + list(args), capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


class UpgradeTest(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="connhist-upgrade-")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name
        self.version = current_version()

    def copy(self, fixture, name="copy.db"):
        path = os.path.join(self.tmp, name)
        shutil.copy(fixture, path)
        os.chmod(path, 0o600)
        return path

    def older(self):
        return [(v, p) for v, p in fixtures() if v < self.version]

    def one_line_error(self, rc, out, err, *needles):
        self.assertEqual((rc, out), (1, ""), err)
        self.assertTrue(err.endswith("\n") and err.count("\n") == 1, err)
        for n in needles:
            self.assertIn(n, err)

    def test_fixtures_exist(self):
        self.assertTrue(fixtures(), f"no connhist-vN.db in {DATA}")
        for v, path in fixtures():
            self.assertLessEqual(v, self.version, path)
            self.assertEqual(user_version(self.copy(path)), v, path)  # never open the kept file itself

    def test_current_version_is_read(self):
        for v, fixture in fixtures():
            if v != self.version:
                continue
            with self.subTest(fixture=os.path.basename(fixture)):
                db = self.copy(fixture)
                doc = query(db, "connections")
                self.assertEqual({l["id"] for l in doc["lifetimes"]},
                                 {r["lifetime_id"] for r in rows(db, "SELECT lifetime_id FROM v_lifetimes")})
                rc, out, err = run(RECORD, "--db", db, "--upgrade")
                self.assertEqual((rc, out, err), (0, f"{db}: already at version {v}\n", ""))

    def test_upgrade(self):
        for v, fixture in self.older():
            with self.subTest(fixture=os.path.basename(fixture)):
                self.check_upgrade(v, fixture)

    def check_upgrade(self, old, fixture):
        db = self.copy(fixture)
        before = table_rows(db)
        self.assertTrue(before["lifetimes"][1] and before["runs"][1] and before["processes"][1], fixture)
        original = read_bytes(db)
        files = sorted(os.listdir(self.tmp))

        # The query tool refuses it, says how to upgrade, and writes nothing.
        for report in ("connections", "summary"):
            rc, out, err = run(QUERY, "--db", db, report)
            self.one_line_error(rc, out, err, db, f"version {old}", f"version {self.version}", "--upgrade")
        self.assertEqual(read_bytes(db), original)
        self.assertEqual(sorted(os.listdir(self.tmp)), files)

        rc, out, err = run(RECORD, "--db", db, "--upgrade")
        self.assertEqual((rc, out, err), (0, f"{db}: schema version {old} -> {self.version}\n", ""))
        rc, out, err = run(RECORD, "--db", db, "--upgrade")
        self.assertEqual((rc, out, err), (0, f"{db}: already at version {self.version}\n", ""))
        self.assertEqual(user_version(db), self.version)
        self.assertEqual(rows(db, "PRAGMA integrity_check"), [{"integrity_check": "ok"}])
        self.assertEqual(rows(db, "PRAGMA foreign_key_check"), [])

        # Every row is still there, the same in every column both versions have,
        # lifetimes under their new ids.
        after = table_rows(db)
        new_id = renumbered(before)
        if old < 3:
            for r in before["lifetimes"][1] + before["state_changes"][1]:
                r["lifetime_id"] = new_id[r["lifetime_id"]]
        for table, (cols, old_rows) in before.items():
            self.assertIn(table, after)
            both = [c for c in cols if c in after[table][0]]
            key = lambda r: tuple((r[c] is None, r[c]) for c in both)  # noqa: E731
            self.assertEqual(sorted(({c: r[c] for c in both} for r in old_rows), key=key),
                             sorted(({c: r[c] for c in both} for r in after[table][1]), key=key), table)

        # Version 3's own tables: the codes are those of a new database, every
        # address is in the dictionary once, the blocks bound the ids.
        fresh = os.path.join(self.tmp, "fresh.db")
        c = sqlite3.connect(fresh)
        with open(SCHEMA, encoding="utf-8") as f:
            c.executescript(f.read())
        c.close()
        self.assertEqual(rows(db, "SELECT * FROM codes ORDER BY field, code"),
                         rows(fresh, "SELECT * FROM codes ORDER BY field, code"))
        self.assertEqual(rows(db, "SELECT count(*) AS n FROM lifetimes l WHERE first_seen < (SELECT min_first_seen"
                                  " FROM lifetime_blocks WHERE block = l.lifetime_id >> 12) OR first_seen >"
                                  " (SELECT max_first_seen FROM lifetime_blocks WHERE block = l.lifetime_id >> 12)"
                                  " OR NOT EXISTS (SELECT 1 FROM lifetime_blocks WHERE block = l.lifetime_id >> 12)"),
                         [{"n": 0}])

        # The reports read it and show the fixture's sockets.
        ids = {r["lifetime_id"] for r in before["lifetimes"][1]}
        bound = {r["lifetime_id"] for r in before["lifetimes"][1] if r["remote_addr"] is None}
        doc = query(db, "connections")
        self.assertEqual({l["id"] for l in doc["lifetimes"]}, ids)
        self.assertEqual(doc["header"]["coverage"]["runs"], len(before["runs"][1]))
        states = {l["id"]: l["states"] for l in doc["lifetimes"]}
        for r in before["lifetimes"][1]:
            self.assertEqual(",".join(states[r["lifetime_id"]]), r["states"])
        self.assertEqual({l["id"] for l in query(db, "listeners")["lifetimes"]}, bound)
        summary = query(db, "summary")
        self.assertEqual(summary["counts"]["lifetimes"], len(ids))

        # And the recorder goes on: a --once run on the upgraded file.
        p = run_record(db, "--once", timeout=300)
        self.assertEqual(p.returncode, 0, p.stderr)
        runs = rows(db, "SELECT run_id, end_reason FROM runs ORDER BY run_id")
        self.assertEqual(len(runs), len(before["runs"][1]) + 1)
        self.assertEqual(runs[-1]["end_reason"], "once")
        self.assertEqual(user_version(db), self.version)
        # The fixture's sockets are long gone: what it left open is closed now.
        still_open = rows(db, "SELECT count(*) AS n FROM v_lifetimes WHERE closed_at IS NULL AND lifetime_id <= ?",
                          (max(ids),))
        self.assertEqual(still_open[0]["n"], 0)
        self.assertEqual(query(db, "coverage")["header"]["coverage"]["runs"], len(runs))

    def failed_upgrade(self, old, db, *needles, program=None, prefix=()):
        """--upgrade on db fails with one line naming it, and leaves it as it was."""
        original = read_bytes(db)
        p = subprocess.run(list(prefix) + WRAPPER + [program or RECORD, "--db", db, "--upgrade"],
                           capture_output=True, text=True, timeout=120)
        self.one_line_error(p.returncode, p.stdout, p.stderr, "connhist-record: ", db, *needles)
        self.assertEqual(read_bytes(db), original)
        self.assertEqual(user_version(db), old)
        return p.stderr

    def test_broken_tables(self):
        # user_version says so, but the tables are not the old version's:
        # the steps fail part-way, and everything they did is rolled back.
        for old, fixture in self.older():
            with self.subTest(fixture=os.path.basename(fixture)):
                db = self.copy(fixture)
                c = sqlite3.connect(db)
                for t in ("runs", "heartbeats", "processes", "lifetimes", "state_changes"):
                    c.execute(f"DROP TABLE {t}")
                    c.execute(f"CREATE TABLE {t} (broken)")
                c.commit()
                c.close()
                err = self.failed_upgrade(old, db, f"schema version {old} to {old + 1}", f"upgrade_{old}.sql",
                                          f"left at version {old}")
                self.assertRegex(err, r"no such (column|table)|error in")

    def test_locked(self):
        # Another process holds the write lock for longer than the busy timeout.
        for old, fixture in self.older()[:1]:
            db = self.copy(fixture)
            holder = sqlite3.connect(db, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")
            try:
                self.failed_upgrade(old, db, "locked", f"schema version {old} to {self.version}")
            finally:
                holder.execute("ROLLBACK")
                holder.close()

    @unittest.skipUnless(os.geteuid() != 0 or shutil.which("setpriv"), "root without setpriv")
    def test_read_only(self):
        for old, fixture in self.older()[:1]:
            db = self.copy(fixture)
            if os.geteuid() != 0:
                os.chmod(db, 0o400)
                self.failed_upgrade(old, db, "read-only")
                return
            # Root may write anything: as nobody, on a file nobody may only read.
            import pwd
            pw = pwd.getpwnam("nobody")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
            os.chown(db, pw.pw_uid, pw.pw_gid)
            os.chmod(db, 0o400)
            record = os.path.join(self.tmp, "connhist-record")
            shutil.copy(RECORD, record)
            self.failed_upgrade(old, db, "read-only", program=record,
                                prefix=["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"])

    def test_missing_database(self):
        db = os.path.join(self.tmp, "none.db")
        rc, out, err = run(RECORD, "--db", db, "--upgrade")
        self.one_line_error(rc, out, err, db, "nothing to upgrade")
        self.assertFalse(os.path.exists(db))

    def test_upgrade_takes_no_recording_options(self):
        rc, out, err = run(RECORD, "--db", os.path.join(self.tmp, "x.db"), "--upgrade", "--once")
        self.assertEqual((rc, out), (2, ""), err)
        self.assertIn("--upgrade", err)
        self.assertEqual(os.listdir(self.tmp), [])


if __name__ == "__main__":
    if not (os.path.exists(RECORD) and os.path.exists(QUERY) and os.path.exists(SCHEMA)):
        sys.exit("set CONNHIST_RECORD, CONNHIST_QUERY and CONNHIST_SCHEMA")
    sys.exit(not unittest.main(exit=False).result.wasSuccessful())
