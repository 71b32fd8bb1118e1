#!/usr/bin/env python3
"""connhist-query over several databases: --db A --db B ... and --db DIR.

TestTwoRecorders runs two real recorders, each in a UTS namespace of its
own with its own host name (unshare --uts) and its own database, while the
test holds a real TCP connection on loopback, then asks one summary and one
connections report across both. TestEveryReport checks, report by report
and in every output mode, that each database's section is exactly what
that database alone gives, its rows tagged with its host. TestRefusals
covers the hostile cases: the same file twice, a file that is not connhist,
a newer and an older schema version, an unreadable file, an empty
directory, --partial.

Environment: CONNHIST_RECORD, CONNHIST_QUERY, CONNHIST_SCHEMA.
"""

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import unittest

from helpers import QUERY, RECORD, WRAPPER, now_ms, rows, run_samples, wait_until
from test_query import build_fixture, create_schema, iso, s


def schema_version():
    """The schema version this build reads: what schema.sql sets."""
    with open(os.environ.get("CONNHIST_SCHEMA", "schema/schema.sql"), encoding="utf-8") as f:
        return int(re.search(r"^PRAGMA user_version\s*=\s*(\d+)", f.read(), re.M).group(1))


def run(*args, user=None):
    """Runs connhist-query: (exit code, stdout, stderr). user: a uid to run as (via setpriv)."""
    prefix = [] if user is None else ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups"]
    p = subprocess.run(prefix + WRAPPER + [QUERY] + list(args), capture_output=True, timeout=300)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def ok(*args):
    rc, out, err = run(*args)
    if rc != 0:
        raise AssertionError(f"{args} exited {rc}: {err}")
    return out, err


def first_keys(lines):
    """The first key of every JSON object in the text, in order (top-level lines)."""
    return [next(iter(json.loads(l, object_pairs_hook=dict))) for l in lines]


def without_host(row):
    """A multi-database row as one database would print it: the same, less its leading "host"."""
    keys = list(row)
    assert keys[0] == "host", keys
    return {k: row[k] for k in keys[1:]}


def set_host(path, host):
    c = sqlite3.connect(path)
    c.execute("UPDATE runs SET host = ?", (host,))
    c.commit()
    c.close()


def uts_refused():
    """Why a UTS namespace with its own host name cannot be made here, or None."""
    if shutil.which("unshare") is None or shutil.which("hostname") is None:
        return "unshare or hostname is not installed"
    p = subprocess.run(["unshare", "--uts", "sh", "-c", "hostname chq-fleet-probe && hostname"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0 or p.stdout.strip() != "chq-fleet-probe":
        return f"unshare --uts is not permitted here: {p.stderr.strip() or p.stdout.strip()}"
    return None


class TestTwoRecorders(unittest.TestCase):
    """Two hosts, two databases, one report."""

    @classmethod
    def setUpClass(cls):
        reason = uts_refused()
        if reason is not None:
            raise unittest.SkipTest(reason)
        cls.tmp = tempfile.TemporaryDirectory(prefix="connhist-fleet-")
        tag = os.getpid()
        cls.hosts = [f"chq-alpha-{tag}", f"chq-beta-{tag}"]
        cls.dbs = [os.path.join(cls.tmp.name, h + ".db") for h in cls.hosts]
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        cls.server_port = listener.getsockname()[1]
        procs = [cls.start(h, db) for h, db in zip(cls.hosts, cls.dbs)]
        try:
            cls.wait_samples(procs, 2)  # both recording before the connection opens
            cls.live_files = os.listdir(cls.tmp.name)
            cls.live = run("--db", cls.tmp.name, "coverage")  # their directory, -wal and -shm beside each
            client = socket.create_connection(("127.0.0.1", cls.server_port))
            server, _ = listener.accept()
            cls.client_port = client.getsockname()[1]
            client.sendall(b"hello fleet")
            server.recv(64)
            cls.wait_samples(procs, 3)  # both saw it open
            server.close()  # the server end lingers in TIME_WAIT, the client end is gone at once
            client.recv(64)
            client.close()
            cls.wait_samples(procs, 3)  # both saw the client end gone
        finally:
            listener.close()
            for p in procs:
                p.terminate()
            cls.results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
            for p in procs:
                p.stderr.close()
        cls.until = iso(now_ms())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    @classmethod
    def start(cls, host, db):
        script = 'hostname "$1" && shift && exec "$@"'
        cmd = ["unshare", "--uts", "sh", "-c", script, "sh", host] + WRAPPER + [
            RECORD, "--db", db, "--interval", "100ms", "--events", "off"]
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    @classmethod
    def wait_samples(cls, procs, more):
        """Waits until each recorder (same pid as its unshare) has committed `more` further samples."""
        def count(p):
            if p.poll() is not None:
                raise AssertionError(f"recorder exited with {p.returncode}: {p.stderr.read()}")
            return run_samples(db_of[p.pid], p.pid)
        db_of = {p.pid: db for p, db in zip(procs, cls.dbs)}
        goal = {p.pid: count(p) + more for p in procs}
        wait_until(lambda: all(count(p) >= goal[p.pid] for p in procs),
                   lambda: tuple(count(p) for p in procs), f"two recorders taking {more} samples")

    def test_recorders_stopped_cleanly(self):
        for rc, err in self.results:
            self.assertEqual(rc, 0, err)

    def test_directory_of_live_databases(self):
        self.assertEqual(sorted(f for f in self.live_files if f.endswith(("-wal", "-shm"))),
                         sorted(os.path.basename(db) + x for db in self.dbs for x in ("-shm", "-wal")))
        rc, out, err = self.live
        self.assertEqual((rc, err), (0, ""))
        h = json.loads(out)["header"]
        self.assertEqual([(d["host"], d["database"]) for d in h["databases"]], list(zip(self.hosts, self.dbs)))
        self.assertEqual((h["refused"], h["duplicates"]), ([], []))

    def test_summary_across_both(self):
        out, err = ok("--db", self.dbs[0], "--db", self.dbs[1], "summary", "--until", self.until)
        self.assertEqual(err, "")
        r = json.loads(out)
        h = r["header"]
        self.assertEqual(h["report"], "summary")
        self.assertEqual([(d["host"], d["database"]) for d in h["databases"]], list(zip(self.hosts, self.dbs)))
        self.assertEqual((h["refused"], h["duplicates"]), ([], []))
        for d, db in zip(h["databases"], self.dbs):  # the coverage header per host: its one run, its samples
            cov = d["coverage"]
            newest = rows(db, "SELECT MAX(last_at) AS t FROM heartbeats")[0]["t"]
            self.assertEqual((cov["runs"], cov["last_sample"]), (1, iso(newest)), d)
        self.assertEqual([x["host"] for x in r["databases"]], self.hosts)
        for section, db in zip(r["databases"], self.dbs):
            alone = json.loads(ok("--db", db, "summary", "--until", self.until)[0])
            self.assertEqual(without_host(section), {"database": db, **{k: v for k, v in alone.items()
                                                                         if k != "header"}})
            # Each host saw the listener and both ends of the connection (3 lifetimes at least),
            # and the test's own process among the owners.
            self.assertGreaterEqual(section["counts"]["lifetimes"], 3)
            self.assertGreaterEqual(section["counts"]["tcp"], 3)

    def our_lifetimes(self, rows):
        return [l for l in rows if l["proto"] == "tcp" and l["remote_port"] == self.server_port
                and l["local_port"] == self.client_port]

    def test_connections_across_both(self):
        args = ["connections", "--remote", "127.0.0.1", "--port", str(self.server_port), "--until", self.until]
        r = json.loads(ok("--db", self.dbs[0], "--db", self.dbs[1], *args)[0])
        self.assertEqual([x["host"] for x in r["databases"]], self.hosts)
        for section, host in zip(r["databases"], self.hosts):
            mine = self.our_lifetimes(section["lifetimes"])
            self.assertEqual(len(mine), 1, section)  # each host recorded the client end once
            self.assertEqual(mine[0]["host"], host)
            self.assertEqual(mine[0]["remote_addr"], "127.0.0.1")
            self.assertIsNotNone(mine[0]["closed_at"], mine[0])
            self.assertTrue(all(l["host"] == host for l in section["lifetimes"]))
        # --ndjson: every line after the header carries its host, the hosts in the order given.
        out, _ = ok("--db", self.dbs[0], "--db", self.dbs[1], *args, "--ndjson")
        lines = out.splitlines()
        self.assertEqual(first_keys(lines), ["header"] + ["host"] * (len(lines) - 1))
        rows = [json.loads(l) for l in lines[1:]]
        self.assertEqual([l["host"] for l in rows], sorted((l["host"] for l in rows), key=self.hosts.index))
        for host in self.hosts:
            self.assertEqual(len(self.our_lifetimes([l for l in rows if l["host"] == host])), 1, host)


def build_other(path):
    """A second fixture, unlike the first: other host, some lifetimes gone, one process renamed."""
    build_fixture(path)
    c = sqlite3.connect(path)
    c.execute("UPDATE runs SET host = 'gamma'")
    c.execute("DELETE FROM state_changes WHERE lifetime_id IN (2, 3)")
    c.execute("DELETE FROM lifetimes WHERE lifetime_id IN (2, 3)")
    c.execute("UPDATE processes SET name = 'nginx-b' WHERE name = 'nginx'")
    c.commit()
    c.close()


# Every report, as a few command lines (the fixtures' times are fixed: --until is given).
REPORTS = [
    ["connections", "--until", s(500)],
    ["connections", "--since", s(250), "--until", s(500), "--remote", "10.0.0.0/8"],
    ["listeners", "--until", s(500)],
    ["at", s(30)],
    ["at", s(600)],
    ["port", "80", "--until", s(500)],
    ["process", "200", "--until", s(500)],
    ["process", "ngin*", "--since", s(0), "--until", s(500)],
    ["summary", "--until", s(500), "--top", "2"],
    ["summary", "--since", s(250), "--until", s(500)],
    ["timeline", "--until", s(500)],
    ["timeline", "--since", s(10), "--until", s(500), "--limit", "3"],
    ["coverage", "--since", s(100), "--until", s(500)],
]


class TestEveryReport(unittest.TestCase):
    """Each database's section is that database's own report, its rows tagged with its host."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="connhist-fleet-")
        cls.a = os.path.join(cls.tmp.name, "a.db")
        cls.b = os.path.join(cls.tmp.name, "b.db")
        build_fixture(cls.a)  # host beta (its newest run)
        build_other(cls.b)  # host gamma

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_sections_are_each_database_alone(self):
        for args in REPORTS:
            with self.subTest(args=args):
                multi = json.loads(ok("--db", self.a, "--db", self.b, *args)[0])
                self.assertEqual([d["host"] for d in multi["header"]["databases"]], ["beta", "gamma"])
                self.assertEqual([d["host"] for d in multi["databases"]], ["beta", "gamma"])
                for db, section, entry in zip((self.a, self.b), multi["databases"], multi["header"]["databases"]):
                    alone = json.loads(ok("--db", db, *args)[0])
                    header = alone.pop("header")
                    for key in ("report", "window", "filters"):
                        self.assertEqual(multi["header"][key], header[key])
                    own = {k: header[k] for k in ("host", "database", "coverage", "note") if k in header}
                    self.assertEqual(entry, own)
                    main = next(k for k in ("lifetimes", "processes", "events", "runs") if k in alone) \
                        if args[0] != "summary" else None
                    if main == "runs":  # a run names its own host (runs.host): not tagged again
                        self.assertEqual([r["host"] for r in section["runs"]], [r["host"] for r in alone["runs"]])
                    elif main is not None:
                        self.assertTrue(all(next(iter(x)) == "host" and x["host"] == entry["host"]
                                            for x in section[main]), section[main])
                        section = dict(section, **{main: [without_host(x) for x in section[main]]})
                    self.assertEqual(list(section)[:2], ["host", "database"])
                    self.assertEqual(section, {"host": entry["host"], "database": db, **alone})

    def test_ndjson_lines_are_each_database_alone_with_host(self):
        for args in REPORTS:
            with self.subTest(args=args):
                out, _ = ok("--db", self.a, "--db", self.b, *args, "--ndjson")
                lines = out.splitlines()
                tagged = args[0] != "coverage"  # a run names its own host
                if tagged:
                    self.assertEqual(first_keys(lines), ["header"] + ["host"] * (len(lines) - 1))
                expect = []
                for db, host in ((self.a, "beta"), (self.b, "gamma")):
                    alone = ok("--db", db, *args, "--ndjson")[0].splitlines()[1:]
                    expect += [{"host": host, **json.loads(l)} if tagged else json.loads(l) for l in alone]
                self.assertEqual([json.loads(l) for l in lines[1:]], expect)

    def test_same_plans_as_each_database_alone(self):
        """Every statement is planned as on one database: the plans (CONNHIST_EXPLAIN) of a report
        over both are those of each alone, together."""
        env = dict(os.environ, CONNHIST_EXPLAIN="1")

        def plans(*args):
            p = subprocess.run(WRAPPER + [QUERY, *args], capture_output=True, text=True, env=env, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            return sorted(l for l in p.stderr.splitlines() if l.startswith("connhist-query: plan: "))

        for args in REPORTS:
            with self.subTest(args=args):
                both = plans("--db", self.a, "--db", self.b, *args)
                self.assertTrue(both)
                self.assertEqual(both, sorted(plans("--db", self.a, *args) + plans("--db", self.b, *args)))

    def test_pretty_is_the_same_document(self):
        for args in REPORTS[:1] + REPORTS[5:6] + REPORTS[8:9] + REPORTS[-1:]:
            compact = json.loads(ok("--db", self.a, "--db", self.b, *args)[0])
            pretty = json.loads(ok("--db", self.a, "--db", self.b, *args, "--pretty")[0])
            for r in (compact, pretty):
                del r["header"]["generated_at"]
            self.assertEqual(pretty, compact)

    def test_directory_in_name_order(self):
        d = os.path.join(self.tmp.name, "dir")
        os.makedirs(os.path.join(d, "sub"), exist_ok=True)
        shutil.copy(self.b, os.path.join(d, "1-first.db"))
        shutil.copy(self.a, os.path.join(d, "2-second"))
        for ignored in (".hidden.db", "3-gone.db-wal", "3-gone.db-shm", "3-gone.db-journal"):
            with open(os.path.join(d, ignored), "w") as f:
                f.write("not a database\n")
        build_fixture(os.path.join(d, "sub", "deeper.db"))  # subdirectories are not searched
        r = json.loads(ok("--db", d, "connections", "--until", s(500))[0])
        self.assertEqual([(x["host"], x["database"]) for x in r["header"]["databases"]],
                         [("gamma", os.path.join(d, "1-first.db")), ("beta", os.path.join(d, "2-second"))])
        self.assertEqual([len(x["lifetimes"]) for x in r["databases"]], [8, 10])

    def test_single_database_output_unchanged(self):
        """One --db FILE is the single-database document: no sections, no host on rows."""
        r = json.loads(ok("--db", self.a, "connections", "--until", s(500))[0])
        self.assertEqual(list(r), ["header", "lifetimes"])
        self.assertEqual(list(r["lifetimes"][0])[0], "id")
        self.assertEqual(r["header"]["host"], "beta")


class TestRefusals(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="connhist-fleet-")
        self.addCleanup(self.tmp.cleanup)
        self.good = self.path("good.db")
        build_fixture(self.good)

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def refused(self, bad, needle, *extra):
        """bad is refused by name: alone exit 1; with a good database, exit 1 and nothing
        printed; with --partial the good one is reported and bad listed. Returns that report."""
        rc, out, err = run("--db", self.good, "--db", bad, *extra, "summary")
        self.assertEqual((rc, out), (1, ""), err)
        lines = err.splitlines()
        self.assertEqual(len(lines), 2, err)
        self.assertIn(bad, lines[0])
        self.assertIn(needle, lines[0])
        self.assertIn("--partial", lines[1])
        rc, out, err = run("--db", self.good, "--db", bad, "--partial", "summary")
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        r = json.loads(out)
        self.assertEqual([d["database"] for d in r["header"]["databases"]], [self.good])
        self.assertEqual([x["database"] for x in r["header"]["refused"]], [bad])
        self.assertIn(needle, r["header"]["refused"][0]["reason"])
        self.assertEqual([x["host"] for x in r["databases"]], ["beta"])
        self.assertEqual(r["databases"][0]["counts"]["lifetimes"], 10)
        return r

    def test_not_connhist(self):
        with open(self.path("notes.txt"), "w") as f:
            f.write("not a database at all\n" * 50)
        self.refused(self.path("notes.txt"), "not a SQLite database")
        other = sqlite3.connect(self.path("other.db"))
        other.execute("CREATE TABLE customers (id INTEGER)")
        other.commit()
        other.close()
        self.refused(self.path("other.db"), "not a connhist database")

    def test_fifo_is_not_waited_on(self):
        """A FIFO among the files: opening it for reading would wait for a writer forever."""
        os.mkfifo(self.path("pipe.db"))
        self.refused(self.path("pipe.db"), "is not a regular file")

    def test_newer_version(self):
        VERSION = schema_version()
        create_schema(self.path("newer.db"), user_version=VERSION + 1).close()
        self.refused(self.path("newer.db"), f"schema version {VERSION + 1}, newer than this program's {VERSION}")

    def test_older_version(self):
        VERSION = schema_version()
        create_schema(self.path("older.db"), user_version=VERSION - 1).close()
        self.refused(self.path("older.db"), f"schema version {VERSION - 1}, older than the version {VERSION}")

    def test_missing(self):
        self.refused(self.path("none.db"), "no database at")
        self.assertFalse(os.path.exists(self.path("none.db")))

    def test_unreadable(self):
        bad = self.path("locked.db")
        build_fixture(bad)
        os.chmod(bad, 0)
        if os.geteuid() != 0:
            self.refused(bad, "cannot read database")
            return
        # root reads anything: ask as nobody, who may read the directory and good.db only.
        os.chmod(self.tmp.name, 0o755)
        os.chmod(self.good, 0o644)
        nobody = 65534
        rc, out, err = run("--db", self.good, "summary", user=nobody)
        if rc != 0:
            self.skipTest(f"cannot run the query tool as uid {nobody}: {err.strip()}")
        rc, out, err = run("--db", self.good, "--db", bad, "--partial", "summary", user=nobody)
        self.assertEqual(rc, 0, err)
        r = json.loads(out)
        self.assertEqual([x["database"] for x in r["header"]["refused"]], [bad])
        self.assertIn("cannot read database " + bad, r["header"]["refused"][0]["reason"])
        self.assertEqual([x["host"] for x in r["databases"]], ["beta"])
        rc, out, err = run("--db", self.good, "--db", bad, "summary", user=nobody)
        self.assertEqual((rc, out), (1, ""), err)
        self.assertIn("cannot read database " + bad, err)

    def test_same_file_twice_is_read_once(self):
        os.symlink(self.good, self.path("link.db"))
        os.link(self.good, self.path("hard.db"))
        names = [self.good, self.path("link.db"), self.good, self.path("hard.db"),
                 os.path.join(self.tmp.name, ".", "good.db")]
        args = [a for n in names for a in ("--db", n)]
        rc, out, err = run(*args, "summary")
        self.assertEqual((rc, err), (0, ""), err)
        r = json.loads(out)
        self.assertEqual([d["database"] for d in r["header"]["databases"]], [self.good])
        self.assertEqual(r["header"]["duplicates"], [{"database": n, "same_as": self.good} for n in names[1:]])
        self.assertEqual(len(r["databases"]), 1)
        self.assertEqual(r["databases"][0]["counts"]["lifetimes"], 10)  # counted once
        # A directory holding a file also named on its own: the file is read once.
        rc, out, err = run("--db", self.good, "--db", self.tmp.name, "coverage")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual([d["database"] for d in json.loads(out)["header"]["databases"]], [self.good])

    def test_empty_directory(self):
        empty = self.path("empty")
        os.mkdir(empty)
        rc, out, err = run("--db", empty, "summary")
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err.count("\n"), 1, err)
        self.assertIn(f"database directory {empty} holds no files", err)
        self.refused(empty, "holds no files")

    def test_everything_refused(self):
        create_schema(self.path("newer.db"), user_version=schema_version() + 1).close()
        rc, out, err = run("--db", self.path("newer.db"), "--db", self.path("none.db"), "--partial", "summary")
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(len(err.splitlines()), 2, err)

    def test_partial_needs_several_databases(self):
        rc, out, err = run("--db", self.good, "--partial", "summary")
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(err, "connhist-query: --partial: only with several databases"
                              " (--db A --db B ..., or --db DIR)\n")

    def test_page_and_output_one_database_at_a_time(self):
        """--html, --output and export write one database's report: refused with several."""
        out_file = self.path("out.json")
        for extra, name in ((("--html", "timeline"), "--html"), (("-o", out_file, "summary"), "--output"),
                            (("export", "--format", "ecs"), "export")):
            rc, out, err = run("--db", self.good, "--db", self.good, *extra)
            self.assertEqual((rc, out), (2, ""), err)
            self.assertEqual(err, f"connhist-query: {name}: one database at a time"
                                  " (the page, --output and export are written per database)\n")
        self.assertFalse(os.path.exists(out_file))


if __name__ == "__main__":
    unittest.main()
