"""The tamper-evident chain (issue 16): a real recording of loopback
sockets, then changes made after the fact with Python's sqlite3 module (as
anyone with the sqlite3 shell could), each of which connhist-query verify
must report (exit 1, naming the rows or the link); a pruned database, a
recorder killed in the middle of a commit, a database upgraded from version
3 and a snapshot taken while recording must verify clean (exit 0); random
byte flips must make it fail cleanly (exit 1 or 2, never a crash). Also:
a whole chain recomputed after a change is caught by the anchors (and by
verify --key for a keyed chain), the key file's checks, the anchors through
glibc's syslog(3) to /dev/log, and a recording with the chain off."""

import hashlib
import json
import os
import random
import shutil
import signal
import socket
import struct
import sqlite3
import subprocess
import time
import unittest

from helpers import (QUERY, RECORD, WRAPPER, now_ms, rows, run_record, run_samples, scratch_dir, start_record,
                     stop_record, wait_for_samples, wait_until)

KILL_SHIM = os.environ.get("CONNHIST_FAULT_KILL_SHIM")
CLOCK_SHIM = os.environ.get("CONNHIST_FAULT_CLOCK_SHIM")
V3_FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "connhist-v3.db")
DAY = 86400 * 1000


def verify(db, *args, split=True):
    """Runs connhist-query verify: (exit code, parsed JSON or None, stderr).
    split: its lifetimes are read by two threads however few they are (as
    on a large database), else by one."""
    env = dict(os.environ, CONNHIST_VERIFY_SPLIT="2" if split else "1000000000")
    p = subprocess.run(WRAPPER + [QUERY, "--db", db, "verify"] + list(args), capture_output=True, timeout=600,
                       env=env)
    stdout = p.stdout.decode()  # JSON: UTF-8, or the test fails
    try:
        out = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        out = None
    # A message may quote what a damaged database holds, bytes as they are.
    return p.returncode, out, p.stderr.decode(errors="backslashreplace")


def plain_copy(db, copy):
    """A one-file copy of db (a reader the helpers left open may keep the
    recorder's last commits in db's -wal, which a file copy would miss)."""
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    dst.execute("PRAGMA journal_mode = DELETE")
    src.close()
    dst.close()
    return copy


def tampered(db, sql, params=()):
    """A copy of db changed by sql, as an intruder with the sqlite3 shell would."""
    copy = plain_copy(db, os.path.join(scratch_dir(), "tampered.db"))
    c = sqlite3.connect(copy)
    if isinstance(sql, str):
        sql = [sql]
    for s in sql:
        c.execute(s, params)
    c.commit()
    c.close()
    return copy


def contract_recompute(db):
    """The chain as schema/README.md ("The chain") defines it, recomputed
    here with hashlib alone: {table: {rowid: short digest with its
    children's}}, the multiset sum, the row count, and each link's hash."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    tables = [r[0] for r in c.execute("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE"
                                      " 'sqlite%' AND name <> 'chain_links' ORDER BY name")]
    total, count, shorts, folded = 0, 0, {}, {}
    for t in tables:
        cols = [(cid, name) for cid, name, *_ in c.execute(f"PRAGMA table_info({t})") if name != "chain_digest"]
        has_digest = any(name == "chain_digest" for _, name, *_ in c.execute(f"PRAGMA table_info({t})"))
        select = ", ".join(f'"{n}"' for _, n in cols)
        rowid = "rowid" if has_digest else "NULL"
        for row in c.execute(f"SELECT {rowid}, {select} FROM {t}"):
            body = b"connhist-row\0" + t.encode() + b"\0"
            for (cid, _), v in zip(cols, row[1:]):
                if v is None:
                    continue
                if isinstance(v, int):
                    body += bytes([cid, 1]) + (v & (2 ** 64 - 1)).to_bytes(8, "big")
                elif isinstance(v, float):
                    body += bytes([cid, 2]) + struct.pack(">d", v)
                elif isinstance(v, str):
                    e = v.encode()
                    body += bytes([cid, 3]) + len(e).to_bytes(4, "big") + e
                else:
                    body += bytes([cid, 4]) + len(v).to_bytes(4, "big") + bytes(v)
            d = hashlib.sha256(body).digest()
            total = (total + int.from_bytes(d, "big")) % 2 ** 256
            count += 1
            short = int.from_bytes(d[:8], "big")
            if t in ("state_changes", "lifetime_extras"):
                folded[row[1]] = (folded.get(row[1], 0) + short) % 2 ** 64  # lifetime_id comes first
            elif has_digest:
                shorts.setdefault(t, {})[row[0]] = short
    for lid, add in folded.items():
        shorts["lifetimes"][lid] = (shorts["lifetimes"][lid] + add) % 2 ** 64
    links, prev = [], bytes(32)
    for seq, at, kind, nrows, mset in c.execute("SELECT seq, at, kind, rows, mset FROM chain_links ORDER BY seq"):
        prev = hashlib.sha256(b"connhist-link\0" + prev + seq.to_bytes(8, "big") + at.to_bytes(8, "big") +
                              nrows.to_bytes(8, "big") + bytes([kind]) + mset).digest()
        links.append(prev)
    c.close()
    return shorts, total.to_bytes(32, "big"), count, links


def rewritten(db, sql, params=()):
    """tampered(db, sql), then the whole chain made consistent again over
    the changed rows, as an intruder who read schema/README.md would, with
    plain SHA-256: every row's short digest, the newest link's row count and
    multiset, and every link's hash. Only anchors (or a key) can tell."""
    copy = tampered(db, sql, params)
    shorts, mset, count, _ = contract_recompute(copy)
    c = sqlite3.connect(copy)
    for table, by_id in shorts.items():
        for rowid, short in by_id.items():
            signed = short - 2 ** 64 if short >= 2 ** 63 else short
            c.execute(f"UPDATE {table} SET chain_digest = ? WHERE rowid = ?", (signed, rowid))
    c.execute("UPDATE chain_links SET rows = ?, mset = ? WHERE seq = (SELECT MAX(seq) FROM chain_links)",
              (count, mset))
    prev = bytes(32)
    for seq, at, kind, nrows, m in list(c.execute("SELECT seq, at, kind, rows, mset FROM chain_links ORDER BY seq")):
        prev = hashlib.sha256(b"connhist-link\0" + prev + seq.to_bytes(8, "big") + at.to_bytes(8, "big") +
                              nrows.to_bytes(8, "big") + bytes([kind]) + m).digest()
        c.execute("UPDATE chain_links SET hash = ? WHERE seq = ?", (prev, seq))
    c.commit()
    c.close()
    return copy


class Traffic:
    """Loopback sockets that live across samples: a listener, connections
    that close (the client first, so its side goes through FIN_WAIT and
    TIME_WAIT and the server's to CLOSE_WAIT: state changes), and a UDP
    socket."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.pairs = []

    def connect(self, n):
        for _ in range(n):
            c = socket.create_connection(("127.0.0.1", self.port))
            s, _ = self.listener.accept()
            self.pairs.append((c, s))

    def half_close(self):
        """Clients close; servers keep their end (CLOSE_WAIT)."""
        for c, _ in self.pairs:
            c.close()

    def close(self):
        for c, s in self.pairs:
            c.close()
            s.close()
        self.pairs = []
        self.listener.close()
        self.udp.close()


def record_with_traffic(db, anchors=None, env_extra=None):
    """Records loopback traffic in two steps (open, then half-closed),
    then stops the recorder: lifetimes open, closed and with state changes."""
    env = dict(os.environ, **(env_extra or {}))
    if anchors:
        # An anchor every second: each closes its link, so the recording has several.
        env.update(CONNHIST_CHAIN_ANCHORS=anchors, CONNHIST_CHAIN_ANCHOR_EVERY="1s")
    t = Traffic()
    try:
        p = start_record(db, "--interval", "100ms", env=env, log=os.path.join(scratch_dir(), "rec.log"))
        t.connect(4)
        wait_for_samples(db, 3, p)
        t.half_close()
        wait_for_samples(db, 6, p)
        for _, s in t.pairs:
            s.close()
        wait_for_samples(db, 9, p)
        if anchors:  # several links: each periodic anchor closes one
            def anchored():
                with open(anchors) as f:
                    return len(f.readlines()) >= 3
            wait_until(anchored, lambda: run_samples(db, p.pid), "two periodic anchors")
        rc, _, err = stop_record(p)
        assert rc == 0, err
    finally:
        t.close()
    return t.port


class TamperTest(unittest.TestCase):
    """Each change after the fact is found; the untouched recording is intact."""

    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir()
        cls.db = os.path.join(cls.dir, "chain.db")
        cls.anchors = os.path.join(cls.dir, "anchors.log")
        cls.port = record_with_traffic(cls.db, cls.anchors)

    def assert_broken(self, db, *args, rows_named=None):
        rc, out, err = verify(db, *args)
        self.assertEqual(rc, 1, (out, err))
        # One thread finds the same as two (which name the rows in another order).
        rc1, out1, err1 = verify(db, *args, split=False)
        failure = lambda o: (o["first_failure"]["link"], o["first_failure"]["reason"],  # noqa: E731
                             sorted(json.dumps(r, sort_keys=True) for r in o["first_failure"].get("rows", [])))
        self.assertEqual((rc1, failure(out1)), (rc, failure(out)), err1)
        self.assertFalse(out["intact"])
        self.assertIsNotNone(out["first_failure"])
        if rows_named is not None:
            named = [(r["table"], r.get("rowid", r.get("lifetime_id"))) for r in out["first_failure"].get("rows", [])]
            for want in rows_named:
                self.assertIn(want, named, out["first_failure"])
        return out

    def closed_connection(self):
        """A closed lifetime of the test's own traffic with a remote end."""
        found = rows(self.db, "SELECT lifetime_id FROM v_lifetimes WHERE closed_at IS NOT NULL AND proto = 'tcp'"
                     " AND remote_addr = '127.0.0.1' AND (local_port = ?1 OR remote_port = ?1)", (self.port,))
        self.assertTrue(found, "the recording should have closed connections")
        return found[0]["lifetime_id"]

    def test_untouched_is_intact(self):
        rc, out, err = verify(self.db, "--anchors", self.anchors)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(verify(self.db, "--anchors", self.anchors, split=False), (rc, out, err),
                         "one thread or two: the same report")
        self.assertTrue(out["intact"])
        self.assertEqual(out["failures"], [])
        links = rows(self.db, "SELECT COUNT(*) AS n, MAX(seq) AS head FROM chain_links")[0]
        self.assertEqual(out["links"]["count"], links["n"])
        self.assertEqual(out["links"]["head"]["seq"], links["head"])
        total = sum(rows(self.db, f"SELECT COUNT(*) AS n FROM {t}")[0]["n"] for t in out["rows"]["tables"])
        self.assertEqual(out["rows"]["total"], total)
        self.assertEqual(out["links"]["head"]["rows"], total)
        self.assertIsNone(out["unchained"])
        self.assertTrue(all(a["reached"] for a in out["anchors"]))
        # A link per anchor period at most (a link is closed by its anchor),
        # and one more per run: several here.
        self.assertGreaterEqual(links["n"], 3)
        with open(self.anchors) as f:
            self.assertGreaterEqual(links["n"], len(f.readlines()) - 1)
        self.assertGreater(rows(self.db, "SELECT COUNT(*) AS n FROM state_changes")[0]["n"], 0)

    def test_contract_recomputed_in_python(self):
        """What the recorder wrote is what schema/README.md says, to the byte."""
        shorts, mset, count, links = contract_recompute(self.db)
        for table, by_id in shorts.items():
            stored = {r["rid"]: r["chain_digest"] % 2 ** 64
                      for r in rows(self.db, f"SELECT rowid AS rid, chain_digest FROM {table}")}
            self.assertEqual(stored, by_id, table)
        [head] = rows(self.db, "SELECT rows, mset FROM chain_links ORDER BY seq DESC LIMIT 1")
        self.assertEqual((head["rows"], head["mset"]), (count, mset))
        self.assertEqual([r["hash"] for r in rows(self.db, "SELECT hash FROM chain_links ORDER BY seq")], links)

    def test_closed_lifetime_remote_changed(self):
        lid = self.closed_connection()
        db = tampered(self.db, ["INSERT OR IGNORE INTO addrs(addr) VALUES ('203.0.113.9')",
                                "UPDATE lifetimes SET remote_addr_id = (SELECT addr_id FROM addrs"
                                " WHERE addr = '203.0.113.9') WHERE lifetime_id = %d" % lid])
        self.assert_broken(db, rows_named=[("lifetimes", lid)])

    def test_lifetime_deleted(self):
        lid = self.closed_connection()
        db = tampered(self.db, ["DELETE FROM state_changes WHERE lifetime_id = %d" % lid,
                                "DELETE FROM lifetime_extras WHERE lifetime_id = %d" % lid,
                                "DELETE FROM lifetimes WHERE lifetime_id = %d" % lid])
        out = self.assert_broken(db)
        self.assertIn("deleted", out["first_failure"]["reason"])

    def test_state_change_deleted(self):
        [sc] = rows(self.db, "SELECT lifetime_id, at FROM state_changes LIMIT 1")
        db = tampered(self.db, "DELETE FROM state_changes WHERE lifetime_id = ? AND at = ?",
                      (sc["lifetime_id"], sc["at"]))
        self.assert_broken(db, rows_named=[("lifetimes", sc["lifetime_id"])])

    def test_forged_lifetime_inserted(self):
        db = tampered(self.db, "INSERT INTO lifetimes(run_id, proto, family, local_addr_id, local_port, state, states,"
                      " first_seen, last_seen_after, closed_after, close_reason)"
                      " SELECT run_id, 6, 4, local_addr_id, 4444, 1, 1, first_seen, 10, 20, 1 FROM lifetimes LIMIT 1")
        forged = rows(db, "SELECT MAX(lifetime_id) AS id FROM lifetimes")[0]["id"]
        out = self.assert_broken(db, rows_named=[("lifetimes", forged)])
        self.assertIn("added", out["first_failure"]["reason"])

    def test_process_path_changed(self):
        [p] = rows(self.db, "SELECT proc_id FROM processes LIMIT 1")
        db = tampered(self.db, "UPDATE processes SET path = '/usr/bin/innocent' WHERE proc_id = ?", (p["proc_id"],))
        self.assert_broken(db, rows_named=[("processes", p["proc_id"])])

    def test_run_truncated(self):
        """The run made to end earlier, its last samples and lifetimes gone."""
        [r] = rows(self.db, "SELECT run_id, started_at, ended_at FROM runs ORDER BY run_id DESC LIMIT 1")
        cut = (r["started_at"] + r["ended_at"]) // 2
        db = tampered(self.db, [
            "DELETE FROM state_changes WHERE lifetime_id IN (SELECT lifetime_id FROM lifetimes WHERE first_seen > %d)" % cut,
            "DELETE FROM lifetimes WHERE first_seen > %d" % cut,
            "UPDATE heartbeats SET last_at = %d WHERE run_id = %d" % (cut, r["run_id"]),
            "UPDATE runs SET ended_at = %d WHERE run_id = %d" % (cut, r["run_id"])])
        self.assert_broken(db, rows_named=[("runs", r["run_id"])])

    def test_links_and_rows_rolled_back_caught_by_anchor(self):
        """The last links deleted with everything they wrote, the chain left
        consistent (the state of an earlier snapshot): verify alone cannot
        tell, the anchors the recorder logged can."""
        d = scratch_dir()
        db = os.path.join(d, "rolled.db")
        anchors = os.path.join(d, "anchors.log")
        env = dict(os.environ, CONNHIST_CHAIN_ANCHORS=anchors, CONNHIST_CHAIN_ANCHOR_EVERY="1s")
        early = os.path.join(d, "early.db")
        t = Traffic()
        try:
            p = start_record(db, "--interval", "100ms", env=env, log=os.path.join(d, "rec.log"))
            t.connect(2)
            wait_for_samples(db, 3, p)
            snap = subprocess.run(WRAPPER + [QUERY, "--db", db, "snapshot", early], capture_output=True, text=True)
            self.assertEqual(snap.returncode, 0, snap.stderr)
            # Two anchors logged after the copy: the second is of a link
            # committed after it (see SyslogAnchorTest), however many samples
            # a loaded machine had taken before the copy.
            before = logged_lines(anchors)
            t.half_close()
            wait_until(lambda: logged_lines(anchors) >= before + 2, lambda: run_samples(db, p.pid),
                       "two anchors logged after the copy")
            rc, _, err = stop_record(p)
            self.assertEqual(rc, 0, err)
        finally:
            t.close()
        early_head = rows(early, "SELECT MAX(seq) AS s FROM chain_links")[0]["s"]
        head = rows(db, "SELECT MAX(seq) AS s FROM chain_links")[0]["s"]
        self.assertGreater(head, early_head)
        # Without anchors the rolled-back copy is a consistent chain ...
        rc, out, err = verify(early)
        self.assertEqual(rc, 0, (out, err))
        # ... with the anchors logged since, it is caught.
        with open(anchors) as f:
            logged = [json.dumps(line) for line in f]
        self.assertGreaterEqual(len(logged), 2, logged)
        out = self.assert_broken(early, "--anchors", anchors)
        # (The copy's newest link was still open: the anchor that closed it has another hash.)
        self.assertGreaterEqual(out["first_failure"]["link"], early_head)
        self.assertTrue(any(not a["reached"] for a in out["anchors"]))
        # Deleting links (and nothing else) breaks the head even without anchors.
        cut = tampered(db, "DELETE FROM chain_links WHERE seq > ?", (head - 3,))
        self.assert_broken(cut)
        # And one anchor given on the command line: the full recording reaches it.
        [last] = rows(db, "SELECT seq, hex(hash) AS h FROM chain_links WHERE seq = ?", (head,))
        rc, out, err = verify(db, "--anchor", f"{last['seq']}:{last['h'].lower()}")
        self.assertEqual(rc, 0, (out, err))
        out = self.assert_broken(cut, "--anchor", f"{last['seq']}:{last['h'].lower()}")
        self.assertEqual(out["first_failure"]["link"], head - 3)  # its rows are newer than its new head
        self.assertEqual([a["reached"] for a in out["anchors"]], [False])

    def test_whole_chain_rewritten_caught_by_anchors(self):
        """A row changed and every digest and link recomputed to match: the
        chain alone holds (the threat model's limit without a key), the
        anchors the recorder logged do not."""
        lid = self.closed_connection()
        db = rewritten(self.db, "UPDATE lifetimes SET remote_port = remote_port + 1 WHERE lifetime_id = ?", (lid,))
        self.assertNotEqual(rows(db, "SELECT remote_port FROM lifetimes WHERE lifetime_id = ?", (lid,)),
                            rows(self.db, "SELECT remote_port FROM lifetimes WHERE lifetime_id = ?", (lid,)))
        rc, out, err = verify(db)
        self.assertEqual(rc, 0, (out, err))
        out = self.assert_broken(db, "--anchors", self.anchors)
        # The rewrite changed the newest link: the run's last anchor, its
        # head, is there with another hash (anchors of links before it are reached).
        self.assertEqual([(a["reached"], a["rewritten"]) for a in out["anchors"]],
                         [(True, False)] * (len(out["anchors"]) - 1) + [(False, True)], out["anchors"])
        self.assertIn("rewritten", out["first_failure"]["reason"])

    def test_link_rewritten(self):
        """A link's time moved: its hash no longer matches; the link is named."""
        db = tampered(self.db, "UPDATE chain_links SET at = at - 1000 WHERE seq = 3")
        out = self.assert_broken(db)
        self.assertEqual(out["first_failure"]["link"], 3)

    def test_bad_input(self):
        for args, what in [(["--anchor", "12"], "--anchor"), (["--anchor", "x:" + "0" * 64], "--anchor"),
                           (["--anchor", "3:" + "0" * 63], "--anchor"), (["--anchors", "/nonexistent"], "--anchors"),
                           (["--frobnicate"], "--frobnicate"), (["--key", "/nonexistent"], "--key")]:
            rc, out, err = verify(self.db, *args)
            self.assertEqual(rc, 2, (args, out, err))
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertIn(what, err)
        empty = os.path.join(scratch_dir(), "none.log")
        with open(empty, "w") as f:
            f.write("nothing here\n")
        rc, _, err = verify(self.db, "--anchors", empty)
        self.assertEqual(rc, 2, err)


def logged_lines(path):
    """The lines in the anchor file at path so far (0 before it exists)."""
    try:
        with open(path) as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def received(rx):
    """The datagrams waiting at the syslog socket rx, as text lines."""
    got = []
    while True:
        try:
            got.append(rx.recv(4096).decode())
        except BlockingIOError:
            return got


class SyslogAnchorTest(unittest.TestCase):
    """The anchors as the system log receives them, end to end: the
    recorder sends them to a syslog socket (here the test's own receiver,
    through $CONNHIST_CHAIN_SYSLOG: no syslog daemon or journald runs in CI;
    the default /dev/log is glibc's syslog(3), the same format), and the
    lines received, as they are, are verify's --anchors and --anchor."""

    def test_anchors_from_the_log_catch_the_last_links_deleted(self):
        d = scratch_dir()
        db, early, log = (os.path.join(d, n) for n in ("chain.db", "early.db", "syslog.txt"))
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(os.path.join(d, "log.sock"))
        rx.setblocking(False)
        self.addCleanup(rx.close)
        env = dict(os.environ, CONNHIST_CHAIN_SYSLOG=os.path.join(d, "log.sock"), CONNHIST_CHAIN_ANCHOR_EVERY="1s")
        t = Traffic()
        lines = []
        try:
            p = start_record(db, "--interval", "100ms", env=env, log=os.path.join(d, "rec.log"))
            t.connect(2)
            wait_for_samples(db, 3, p)
            snap = subprocess.run(WRAPPER + [QUERY, "--db", db, "snapshot", early], capture_output=True, text=True)
            self.assertEqual(snap.returncode, 0, snap.stderr)
            # The anchors sent so far may be of links the copy has (on a
            # loaded machine the three samples took more than the anchors'
            # second). Each anchor is sent after its link is committed, so of
            # two anchors sent after the copy was taken the second is of a
            # link committed after it: the copy is links behind.
            lines.extend(received(rx))
            before = len(lines)
            t.half_close()
            def two_more_anchors():
                lines.extend(received(rx))
                return len(lines) >= max(3, before + 2)
            wait_until(two_more_anchors, lambda: run_samples(db, p.pid), "anchors at the syslog socket")
            rc, _, err = stop_record(p)
            self.assertEqual(rc, 0, err)
        finally:
            t.close()
        lines.extend(received(rx))  # and the one of the run's end
        for line in lines:
            self.assertRegex(line, r"^<29>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d connhist-record\[%d\]: connhist chain"
                                   r" head seq=\d+ hash=[0-9a-f]{64} at=\S+ db=%s$" % (p.pid, db))
        with open(log, "w") as f:
            f.write("\n".join(lines) + "\n")
        head = rows(db, "SELECT seq, hex(hash) AS h FROM chain_links ORDER BY seq DESC LIMIT 1")[0]
        self.assertIn(f"seq={head['seq']} hash={head['h'].lower()}", lines[-1], "the run's end anchors its head")
        rc, out, err = verify(db, "--anchors", log)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(len(out["anchors"]), len(lines))
        self.assertTrue(all(a["reached"] for a in out["anchors"]))
        # The copy taken earlier is the recording with its last links deleted
        # together with every row they wrote: a consistent chain on its own ...
        self.assertLess(rows(early, "SELECT MAX(seq) AS s FROM chain_links")[0]["s"], head["seq"])
        rc, out, err = verify(early)
        self.assertEqual(rc, 0, (out, err))
        # ... which the anchors from the log catch, the last one alone too.
        for args in (["--anchors", log], ["--anchor", lines[-1].split("seq=")[1].split()[0] + ":" +
                                          lines[-1].split("hash=")[1].split()[0]]):
            rc, out, err = verify(early, *args)
            self.assertEqual(rc, 1, (args, out, err))
            self.assertFalse(out["intact"])
            self.assertFalse(out["anchors"][-1]["reached"])


# In a mount namespace of its own, /dev becomes a small tmpfs with the
# devices a program needs and, as /dev/log, the test's receiver socket
# ($D/log.sock): the recorder's syslog(3) reaches it as it would journald
# or rsyslogd. Mounts made there end with the namespace (private mounts).
DEV_LOG_SCRIPT = """set -e
mount --bind /dev "$D/dev0"
mount -t tmpfs -o mode=755,size=64k connhist-test-dev /dev
for n in null zero random urandom; do : > /dev/$n; mount --bind "$D/dev0/$n" /dev/$n; done
: > /dev/log
mount --bind "$D/log.sock" /dev/log
exec "$@"
"""


def mount_namespace_refused():
    """Why this process cannot make a mount namespace with /dev replaced, or None."""
    if shutil.which("unshare") is None:
        return "no unshare(1)"
    p = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=4k connhist-test-probe /mnt"],
                       capture_output=True, text=True)
    return None if p.returncode == 0 else "unshare -m with a tmpfs mount refused: " + p.stderr.strip()


class SystemLogTest(unittest.TestCase):
    """The default path of the anchors on Linux: glibc's syslog(3) to
    /dev/log (no CONNHIST_CHAIN_SYSLOG), received by the test's own socket
    mounted as /dev/log in a mount namespace of the recorder's own."""

    def test_anchors_through_syslog3(self):
        why = mount_namespace_refused()
        if why:
            self.skipTest(why)
        d = scratch_dir()
        db, log = os.path.join(d, "chain.db"), os.path.join(d, "syslog.txt")
        os.mkdir(os.path.join(d, "dev0"))
        rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        rx.bind(os.path.join(d, "log.sock"))
        rx.setblocking(False)
        self.addCleanup(rx.close)
        env = {k: v for k, v in os.environ.items() if k != "CONNHIST_CHAIN_SYSLOG"}
        env.update(D=d, CONNHIST_CHAIN_ANCHOR_EVERY="1s")
        with open(os.path.join(d, "rec.log"), "w") as f:
            p = subprocess.Popen(["unshare", "-m", "sh", "-c", DEV_LOG_SCRIPT, "sh"] + WRAPPER +
                                 [RECORD, "--db", db, "--interval", "100ms"], stdout=subprocess.PIPE, stderr=f,
                                 text=True, env=env)
        p.log_path = os.path.join(d, "rec.log")
        lines = []
        try:
            wait_for_samples(db, 3, p)

            def two_anchors():
                lines.extend(received(rx))
                # An anchor a second, 10 samples a second: 100 samples without
                # two means they go elsewhere.
                if len(lines) < 2 and run_samples(db, p.pid) > 100:
                    raise AssertionError(f"{len(lines)} anchors at /dev/log after 100 samples: {lines}")
                return len(lines) >= 2
            wait_until(two_anchors, lambda: run_samples(db, p.pid), "anchors at /dev/log")
        finally:
            rc, _, err = stop_record(p)
        self.assertEqual(rc, 0, err)
        lines.extend(received(rx))  # and the one of the run's end
        # glibc's format: "<PRI>Mmm dd hh:mm:ss TAG[PID]: MESSAGE", facility
        # daemon, level notice (29), the recorder's own pid.
        for line in lines:
            self.assertRegex(line, r"^<29>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d connhist-record\[%d\]: connhist chain"
                                   r" head seq=\d+ hash=[0-9a-f]{64} at=\S+ db=%s$" % (p.pid, db))
        head = rows(db, "SELECT seq, hex(hash) AS h FROM chain_links ORDER BY seq DESC LIMIT 1")[0]
        self.assertIn(f"seq={head['seq']} hash={head['h'].lower()}", lines[-1], "the run's end anchors its head")
        with open(log, "w") as f:
            f.write("\n".join(lines) + "\n")
        rc, out, err = verify(db, "--anchors", log)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(len(out["anchors"]), len(lines))
        self.assertTrue(all(a["reached"] for a in out["anchors"]))


class PruneTest(unittest.TestCase):
    @unittest.skipUnless(CLOCK_SHIM, "needs the fault_clock shim (CONNHIST_FAULT_CLOCK_SHIM)")
    def test_pruned_database_verifies(self):
        """Lifetimes recorded with the clock two days back, then pruned by a
        run with --retain 1d: the deletions are in the chain."""
        d = scratch_dir()
        db = os.path.join(d, "pruned.db")
        offset = os.path.join(d, "offset")
        with open(offset, "w") as f:
            f.write(str(-2 * DAY))
        env = dict(os.environ, LD_PRELOAD=CLOCK_SHIM, CONNHIST_CLOCK_OFFSET_FILE=offset)
        anchors = os.path.join(d, "anchors.log")  # and several links, each closed by an anchor
        record_with_traffic(db, anchors, env_extra={k: env[k] for k in ("LD_PRELOAD", "CONNHIST_CLOCK_OFFSET_FILE")})
        old_links = rows(db, "SELECT MAX(seq) AS n FROM chain_links")[0]["n"]
        self.assertGreaterEqual(old_links, 4)
        old = rows(db, "SELECT COUNT(*) AS n FROM lifetimes WHERE closed_after IS NOT NULL")[0]["n"]
        self.assertGreater(old, 0)
        self.assertEqual(verify(db)[0], 0)
        p = start_record(db, "--interval", "100ms", "--retain", "1d", log=os.path.join(d, "rec.log"))
        wait_for_samples(db, 3, p)
        deadline = time.monotonic() + 120
        while rows(db, "SELECT COALESCE(SUM(lifetimes), 0) AS n FROM prunes")[0]["n"] < old:
            self.assertIsNone(p.poll())
            self.assertLess(time.monotonic(), deadline, "pruning did not happen")
            time.sleep(0.1)
        rc, _, err = stop_record(p)
        self.assertEqual(rc, 0, err)
        rc, out, err = verify(db)
        self.assertEqual(rc, 0, (out, err))
        self.assertTrue(out["intact"])
        self.assertGreaterEqual(rows(db, "SELECT lifetimes FROM prunes")[0]["lifetimes"], old)
        # The old links went too, but the first and the one the chain goes on from.
        [pr] = rows(db, "SELECT links_before, links_prev FROM prunes")
        self.assertEqual(pr["links_before"], old_links, "the last link of the old run is where the chain goes on")
        seqs = [r["seq"] for r in rows(db, "SELECT seq FROM chain_links ORDER BY seq")]
        self.assertEqual(seqs[:2], [1, old_links])
        self.assertEqual(seqs[1:], list(range(old_links, old_links + len(seqs) - 1)))
        self.assertEqual(out["links"]["pruned"], {"from": 2, "to": old_links - 1})
        # The old run's anchors: those of pruned links are said to be, the one before the kept link is checked.
        rc, out, err = verify(db, "--anchors", anchors)
        self.assertEqual(rc, 0, (out, err))
        by_seq = {a["seq"]: a for a in out["anchors"]}
        self.assertTrue(all(a["pruned"] and not a["reached"] for s, a in by_seq.items() if 1 < s < old_links - 1))
        self.assertTrue(all(a["reached"] and not a["pruned"] for s, a in by_seq.items()
                            if s == 1 or s >= old_links - 1))
        self.assertTrue(any(1 < s < old_links - 1 for s in by_seq), by_seq)
        # The pruning is vouched for: a link more deleted, or the record of it changed, is caught.
        rc, out, _ = verify(tampered(db, "DELETE FROM chain_links WHERE seq = ?", (old_links,)))
        self.assertEqual(rc, 1)
        self.assertEqual(out["first_failure"]["link"], 2)
        rc, out, _ = verify(tampered(db, "UPDATE prunes SET links_before = links_before + 1"))
        self.assertEqual(rc, 1)
        self.assertIn("prunes", [r["table"] for r in out["first_failure"].get("rows", [])] +
                      [r["table"] for f in out["failures"] for r in f.get("rows", [])])


class KillTest(unittest.TestCase):
    @unittest.skipUnless(KILL_SHIM, "needs the fault_kill shim (CONNHIST_FAULT_KILL_SHIM)")
    def test_killed_during_commit(self):
        """SIGKILL at a write into the WAL (in the middle of a commit) or
        at a random moment: the chain verifies after every kill and after
        the restart that follows."""
        d = scratch_dir()
        db = os.path.join(d, "killed.db")
        wal = os.path.realpath(db) + "-wal"
        rnd = random.Random(int(os.environ.get("CONNHIST_FAULT_SEED", str(int(time.time())))))
        t = Traffic()
        self.addCleanup(t.close)
        self.assertEqual(run_record(db, "--once").returncode, 0)
        kills = 0
        for i in range(8):
            t.connect(1)
            env = dict(os.environ, LD_PRELOAD=KILL_SHIM, CONNHIST_KILL_AT_WRITE=wal,
                       CONNHIST_KILL_AT_WRITE_COUNT=str(rnd.randint(1, 40)))
            p = start_record(db, "--interval", "50ms", env=env, log=os.path.join(d, f"rec{i}.log"))
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.returncode == -signal.SIGKILL:
                kills += 1
            rc, out, err = verify(db)
            self.assertEqual(rc, 0, (i, out, err))
        self.assertGreater(kills, 0)
        p = start_record(db, "--interval", "50ms", log=os.path.join(d, "last.log"))
        wait_for_samples(db, 3, p)
        self.assertEqual(stop_record(p)[0], 0)
        rc, out, err = verify(db)
        self.assertEqual(rc, 0, (out, err))
        self.assertGreaterEqual(rows(db, "SELECT COUNT(*) AS n FROM runs WHERE end_reason = 'died'")[0]["n"], 1)


class FlipTest(unittest.TestCase):
    def test_random_byte_flips_fail_cleanly(self):
        d = scratch_dir()
        db = os.path.join(d, "flip.db")
        record_with_traffic(db)
        self.assertEqual(verify(db)[0], 0)
        with open(plain_copy(db, os.path.join(d, "plain.db")), "rb") as f:
            data = bytearray(f.read())
        seed = int(os.environ.get("CONNHIST_FAULT_SEED", str(int(time.time()))))
        rnd = random.Random(seed)
        outcomes = {}
        for i in range(40):
            copy = bytearray(data)
            for _ in range(rnd.choice([1, 1, 2, 8])):
                pos = rnd.randrange(100, len(copy))  # past the header: SQLite must open it
                copy[pos] ^= 1 << rnd.randrange(8)
            path = os.path.join(d, f"flip{i}.db")
            with open(path, "wb") as f:
                f.write(copy)
            rc, out, err = verify(path)
            with self.subTest(i=i, seed=seed):
                self.assertIn(rc, (0, 1, 2), err)  # never a crash (a signal) or a sanitizer's exit code
                if rc == 0:
                    # Only a flip in a free or unused byte may leave it intact.
                    self.assertTrue(out["intact"])
                else:
                    self.assertTrue(out is None and err.strip() or not out["intact"], (out, err))
            outcomes[rc] = outcomes.get(rc, 0) + 1
        # Flips in free space, in unused parts of pages or in indexes (which
        # the chain does not cover: they are derived from the rows) change
        # nothing verify reads; many others are found.
        self.assertGreater(outcomes.get(1, 0), 0, outcomes)


class UpgradeTest(unittest.TestCase):
    def test_version_3_database_says_what_is_unchained(self):
        db = os.path.join(scratch_dir(), "v3.db")
        shutil.copy(V3_FIXTURE, db)
        before = rows(db, "SELECT COUNT(*) AS n, MIN(first_seen) AS f FROM lifetimes")[0]
        p = run_record(db, "--once")
        self.assertEqual(p.returncode, 0, p.stderr)
        rc, out, err = verify(db)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(out["unchained"]["lifetimes"], before["n"])
        self.assertEqual(out["unchained"]["runs"], rows(db, "SELECT COUNT(*) AS n FROM runs")[0]["n"] - 1)
        # The rows recorded before the chain are in it from its first link on.
        lid = rows(db, "SELECT MIN(lifetime_id) AS id FROM lifetimes")[0]["id"]
        changed = tampered(db, "UPDATE lifetimes SET local_port = local_port + 1 WHERE lifetime_id = ?", (lid,))
        rc, out, _ = verify(changed)
        self.assertEqual(rc, 1)


class KeyTest(unittest.TestCase):
    """A keyed chain (HMAC-SHA-256 with a key file readable by its owner
    only): the key file's checks, verify with and without the key, and a
    rewrite by someone without the key."""

    def key_file(self, d, name="key", size=32, mode=0o600):
        key = os.path.join(d, name)
        with open(key, "wb") as f:
            f.write(os.urandom(size))
        os.chmod(key, mode)
        return key

    def assert_refused(self, db, key, *expected):
        p = run_record(db, "--once", env=dict(os.environ, CONNHIST_CHAIN_KEY=key))
        self.assertNotEqual(p.returncode, 0, (key, p.stderr))
        for e in (key,) + expected:
            self.assertIn(e, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_key_file_refused(self):
        d = scratch_dir()
        db = os.path.join(d, "refused.db")
        # Readable or writable by the group or others: refused, the mode named.
        for mode in (0o644, 0o640, 0o604, 0o620, 0o602, 0o660):
            self.assert_refused(db, self.key_file(d, mode=mode), "%03o" % mode, "chmod 600")
        self.assert_refused(db, self.key_file(d, size=8), "8 bytes")
        self.assert_refused(db, self.key_file(d, size=1025), "1025 bytes")
        self.assert_refused(db, d, "not a regular file")
        self.assert_refused(db, os.path.join(d, "missing"), "cannot be read")
        if os.geteuid() == 0:  # a key of another user (root may give it away)
            other = self.key_file(d, name="others")
            os.chown(other, 12345, -1)
            self.assert_refused(db, other, "owned by uid 12345")
        # Nothing was chained by the refused starts.
        self.assertFalse(os.path.exists(db) and rows(db, "SELECT COUNT(*) AS n FROM chain_links")[0]["n"], db)
        # 0400 is private too.
        p = run_record(db, "--once", env=dict(os.environ, CONNHIST_CHAIN_KEY=self.key_file(d, mode=0o400)))
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_keyed_chain(self):
        d = scratch_dir()
        db = os.path.join(d, "keyed.db")
        key = self.key_file(d)
        anchors = os.path.join(d, "anchors.log")
        port = record_with_traffic(db, anchors, env_extra={"CONNHIST_CHAIN_KEY": key})
        self.assertEqual(rows(db, "SELECT kind FROM chain_links WHERE seq = 1")[0]["kind"], 2)
        self.assertIsNotNone(rows(db, "SELECT key_id FROM chain_links WHERE seq = 1")[0]["key_id"])
        # Without its key verify cannot check it: a usage error, not "intact".
        rc, out, err = verify(db)
        self.assertEqual(rc, 2, (out, err))
        self.assertIn("--key", err)
        rc, out, err = verify(db, "--key", key, "--anchors", anchors)
        self.assertEqual(rc, 0, (out, err))
        self.assertTrue(out["links"]["keyed"])
        self.assertTrue(all(a["reached"] for a in out["anchors"]))
        # Another key is refused, as a key for an unkeyed chain is.
        rc, _, err = verify(db, "--key", self.key_file(d, name="other"))
        self.assertEqual(rc, 2, err)
        plain = os.path.join(d, "plain.db")
        self.assertEqual(run_record(plain, "--once").returncode, 0)
        rc, _, err = verify(plain, "--key", key)
        self.assertEqual(rc, 2, err)
        # A row changed, then every digest and link recomputed as the
        # contract says but without the key: the key finds it, without anchors.
        [lid] = [r["lifetime_id"] for r in rows(
            db, "SELECT lifetime_id FROM v_lifetimes WHERE closed_at IS NOT NULL AND proto = 'tcp'"
                " AND (local_port = ?1 OR remote_port = ?1) LIMIT 1", (port,))]
        for changed in (tampered, rewritten):
            copy = changed(db, "UPDATE lifetimes SET remote_port = remote_port + 1 WHERE lifetime_id = ?", (lid,))
            rc, out, err = verify(copy, "--key", key)
            self.assertEqual(rc, 1, (changed.__name__, out, err))
            self.assertFalse(out["intact"])
        # Without the key nobody can go on: a start without it, or with
        # another, is refused.
        p = run_record(db, "--once")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("CONNHIST_CHAIN_KEY", p.stderr)
        p = run_record(db, "--once", env=dict(os.environ, CONNHIST_CHAIN_KEY=self.key_file(d, name="third")))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("another key", p.stderr)


class ChainOffTest(unittest.TestCase):
    """$CONNHIST_CHAIN_OFF=1 (for benchmarks): the same statements without
    the chain. Its database says so and never verifies as intact; a chain
    begun on it later reports those rows as unchained; a database that has a
    chain is refused (a chain cannot be paused)."""

    def test_chain_off_is_marked_and_unchained(self):
        d = scratch_dir()
        db = os.path.join(d, "off.db")
        record_with_traffic(db, env_extra={"CONNHIST_CHAIN_OFF": "1"})
        [run] = rows(db, "SELECT run_id, notes FROM runs")
        self.assertIn("chain off", run["notes"])
        self.assertEqual(rows(db, "SELECT COUNT(*) AS n FROM chain_links")[0]["n"], 0)
        counts = rows(db, "SELECT (SELECT COUNT(*) FROM lifetimes) AS n, (SELECT COUNT(*) FROM lifetimes"
                          " WHERE closed_after IS NOT NULL) AS closed, (SELECT COUNT(*) FROM state_changes) AS changes,"
                          " (SELECT COUNT(*) FROM lifetimes WHERE chain_digest IS NOT NULL) AS digests")[0]
        # The store's statements did their work without the digests.
        self.assertGreater(counts["closed"], 0, counts)
        self.assertGreater(counts["changes"], 0, counts)
        self.assertEqual(counts["digests"], 0, counts)
        rc, out, err = verify(db)
        self.assertEqual(rc, 1, (out, err))
        self.assertFalse(out["intact"])
        self.assertIn("no chain", out["first_failure"]["reason"])
        # The chain cannot be switched off on a chained database ...
        chained = os.path.join(d, "chained.db")
        self.assertEqual(run_record(chained, "--once").returncode, 0)
        p = run_record(chained, "--once", env=dict(os.environ, CONNHIST_CHAIN_OFF="1"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(chained, p.stderr)
        self.assertIn("cannot be paused", p.stderr)
        self.assertEqual(rows(chained, "SELECT COUNT(*) AS n FROM runs")[0]["n"], 1)
        p = run_record(chained, "--once", env=dict(os.environ, CONNHIST_CHAIN_OFF="yes"))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("'yes'", p.stderr)
        # ... and a chain begun after it vouches for the rows from then on:
        # what the chainless run wrote is reported as unchained.
        p = run_record(db, "--once")
        self.assertEqual(p.returncode, 0, p.stderr)
        rc, out, err = verify(db)
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(out["unchained"]["runs"], 1)
        self.assertEqual(out["unchained"]["lifetimes"], counts["n"])


class ProvidersTest(unittest.TestCase):
    """An unkeyed chain hashes with libcrypto's SHA-256 functions alone and
    never initialises OpenSSL's providers (1.4 MiB of the recorder's peak at
    its first tick, bench/README.md, branch mem5): a configuration that makes every
    provider fetch fail (OPENSSL_CONF naming a provider module that is not
    there, with config_diagnostics) stops a keyed start, which needs EVP's
    HMAC, but not an unkeyed one, whose digests are still the contract's
    (recomputed with hashlib) and verify clean."""

    def test_unkeyed_chain_without_providers(self):
        d = scratch_dir()
        conf = os.path.join(d, "openssl.cnf")
        with open(conf, "w") as f:
            f.write("config_diagnostics = 1\nopenssl_conf = init\n[init]\nproviders = provs\n"
                    "[provs]\nmissing = missing_sect\n[missing_sect]\n"
                    f"module = {os.path.join(d, 'missing.so')}\nactivate = 1\n")
        env = dict(os.environ, OPENSSL_CONF=conf)
        key = os.path.join(d, "key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        p = run_record(os.path.join(d, "keyed.db"), "--once", env=dict(env, CONNHIST_CHAIN_KEY=key))
        self.assertNotEqual(p.returncode, 0, "the configuration should stop EVP")
        self.assertIn("refused", p.stderr)
        db = os.path.join(d, "plain.db")
        with socket.create_server(("127.0.0.1", 0)) as srv:
            c = socket.create_connection(srv.getsockname())
            a, _ = srv.accept()
            p = run_record(db, "--once", env=env)
            port = srv.getsockname()[1]
            c.close()
            a.close()
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(rows(db, "SELECT lifetime_id FROM v_lifetimes WHERE local_addr = '127.0.0.1'"
                                      " AND (local_port = ?1 OR remote_port = ?1)", (port,))), 3)
        shorts, mset, count, links = contract_recompute(db)
        [head] = rows(db, "SELECT rows, mset FROM chain_links ORDER BY seq DESC LIMIT 1")
        self.assertEqual((head["rows"], head["mset"]), (count, mset))
        self.assertEqual([r["hash"] for r in rows(db, "SELECT hash FROM chain_links ORDER BY seq")], links)
        rc, out, err = verify(db)
        self.assertEqual(rc, 0, (out, err))
        self.assertTrue(out["intact"])


class SnapshotTest(unittest.TestCase):
    def test_snapshot_while_recording(self):
        d = scratch_dir()
        db = os.path.join(d, "live.db")
        out = os.path.join(d, "copy.db")
        t = Traffic()
        self.addCleanup(t.close)
        p = start_record(db, "--interval", "50ms", log=os.path.join(d, "rec.log"))
        try:
            t.connect(3)
            wait_for_samples(db, 3, p)
            snap = subprocess.run(WRAPPER + [QUERY, "--db", db, "snapshot", out], capture_output=True, text=True,
                                  timeout=600)
            self.assertEqual(snap.returncode, 0, snap.stderr)
            wait_for_samples(db, 6, p)  # it kept recording
        finally:
            rc, _, err = stop_record(p)
        self.assertEqual(rc, 0, err)
        manifest = json.loads(snap.stdout)
        with open(out + ".manifest.json") as f:
            self.assertEqual(json.load(f), manifest)
        with open(out, "rb") as f:
            blob = f.read()
        self.assertEqual(manifest["sha256"], hashlib.sha256(blob).hexdigest())
        self.assertEqual(manifest["bytes"], len(blob))
        self.assertFalse(os.path.exists(out + "-wal"))
        self.assertEqual(manifest["host"], socket.gethostname())
        self.assertIsNotNone(manifest["span"]["from"])
        self.assertIsNotNone(manifest["span"]["to"])
        self.assertTrue(manifest["versions"]["connhist-query"])
        self.assertEqual(manifest["versions"]["connhist-record"],
                         [r["version"] for r in rows(db, "SELECT DISTINCT version FROM runs")])
        rc, v, err = verify(out)
        self.assertEqual(rc, 0, (v, err))
        self.assertEqual(v["links"]["head"]["seq"], manifest["chain_head"]["seq"])
        self.assertEqual(v["links"]["head"]["hash"], manifest["chain_head"]["hash"])
        # The live database went on past the copy's head (a newer link, or
        # the same one extended), and still verifies; the copy's newest
        # closed link is an anchor the live chain reaches.
        [live] = rows(db, "SELECT seq, hex(hash) AS h FROM chain_links ORDER BY seq DESC LIMIT 1")
        self.assertNotEqual((live["seq"], live["h"].lower()),
                            (manifest["chain_head"]["seq"], manifest["chain_head"]["hash"]))
        closed = manifest["chain_closed"]
        self.assertLessEqual(closed["seq"], manifest["chain_head"]["seq"])
        rc, v, err = verify(db, "--anchor", f"{closed['seq']}:{closed['hash']}")
        self.assertEqual(rc, 0, (v, err))
        # A copy over an existing file is refused.
        again = subprocess.run(WRAPPER + [QUERY, "--db", db, "snapshot", out], capture_output=True, text=True)
        self.assertEqual(again.returncode, 2)
        self.assertIn(out, again.stderr)


if __name__ == "__main__":
    unittest.main()
