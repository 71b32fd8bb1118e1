#!/usr/bin/env python3
"""Tests of the HTML timeline: connhist-query timeline --html and
process ... --html.

The page is checked twice: its embedded data (parsed here, compared with
the database read through its views by Python's own sqlite3), and the page
itself, opened in headless Chromium (tests/cdp.py) with no network: no
console error, no request but the page's own, and the counts the page's
drawing code publishes on <body> (bars drawn, open marks, gaps shaded,
lanes) equal to what the database says for the same view, also after
filtering, switching lanes and zooming. Hovering a bar shows that
lifetime. At 1,000 and 100,000 lifetimes a screenshot is taken and the
time to the first draw printed (a figure for bench/README.md, not an
assertion: the machine may be busy).

Without Chromium the browser classes are skipped with the reason printed.
Environment: CONNHIST_QUERY, CONNHIST_SCHEMA; CONNHIST_HTML_ARTIFACTS, a
directory to keep the screenshots and pages in (default: the scratch
directory, removed at the end).
"""

import base64
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import unittest

import cdp
from helpers import WRAPPER, add_lifetime, add_state_change, addr_id, code, pack_states

QUERY = os.environ.get("CONNHIST_QUERY", "connhist-query")
SCHEMA = os.environ.get("CONNHIST_SCHEMA", "schema/schema.sql")
CHROMIUM = cdp.find_chromium()
NO_CHROMIUM = "needs Chromium (Debian package chromium; scripts/install-deps.sh installs it)"
if CHROMIUM is None:
    print("skipping the browser tests of the HTML timeline: " + NO_CHROMIUM, file=sys.stderr)

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
HOSTILE = '</script><script>document.title="pwned"</script><!--'


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 1000)) + ".%03dZ" % (t % 1000)


def create_db(path):
    db = sqlite3.connect(path)
    with open(SCHEMA, encoding="utf-8") as f:
        db.executescript(f.read())
    return db


def add_run(db, start, heartbeats, host="html-host"):
    """One run of interval 1 s and its heartbeat spans [(first, last)]."""
    db.execute("INSERT INTO runs (run_id, started_at, ended_at, end_reason, mode, interval_ms, host, os, sampler,"
               " version, pid, uid) VALUES (1, ?, NULL, NULL, 'continuous', 1000, ?, 'linux', 'netlink',"
               " '0.1.0', 4242, 0)", (start, host))
    for first, last in heartbeats:
        db.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (1, ?, ?, ?)", (first, last, (last - first) // 1000 + 1))


def add_process(db, pid, start, name, cmdline=None):
    db.execute("INSERT INTO processes (pid, start_time, name, path, cmdline, uid, user, first_seen)"
               " VALUES (?, ?, ?, ?, ?, 1000, 'ann', ?)", (pid, start, name, "/usr/bin/x", cmdline, start))


def build_small(path):
    """A dozen lifetimes of known shape: three processes (one with a name
    that would end a <script> element), an unattributed UDP socket, open
    and closed lifetimes, a listener, IPv6, and two gaps in recording."""
    db = create_db(path)
    s = 1000
    add_run(db, T0, [(T0, T0 + 100 * s), (T0 + 160 * s, T0 + 300 * s), (T0 + 400 * s, T0 + 600 * s)])
    add_process(db, 10, T0 - 50 * s, "nginx", "nginx: master")
    add_process(db, 20, T0 - 20 * s, HOSTILE, HOSTILE + " --flag")
    add_process(db, 30, T0, "curl", "curl https://example.invalid/")
    spec = [
        # id, proto, local, lport, remote, rport, states, first, closed, pid
        (1, "tcp", "0.0.0.0", 80, None, None, "LISTEN", 0, None, 10),
        (2, "tcp", "10.0.0.5", 80, "192.168.1.10", 51000, "SYN_RECV,ESTABLISHED", 10, 50, 10),
        (3, "tcp", "10.0.0.5", 80, "192.168.1.11", 51001, "ESTABLISHED", 20, 30, 10),
        (4, "tcp", "10.0.0.5", 80, "192.168.1.10", 51002, "ESTABLISHED", 25, 200, 10),
        (5, "tcp", "2001:db8::1", 443, "2001:db8:1::7", 40000, "ESTABLISHED", 60, None, 20),
        (6, "tcp", "10.0.0.5", 45000, "10.1.9.9", 443, "SYN_SENT,ESTABLISHED", 170, 180, 30),
        (7, "tcp", "10.0.0.5", 45001, "10.1.9.9", 443, "ESTABLISHED", 175, 260, 30),
        (8, "udp", "10.0.0.5", 5353, "8.8.8.8", 53, "ESTABLISHED", 200, 201, None),
        (9, "udp", "0.0.0.0", 53, None, None, "UNCONN", 0, None, None),
        (10, "tcp", "10.0.0.5", 45002, "192.168.1.10", 22, "ESTABLISHED", 420, 590, 20),
        (11, "tcp", "10.0.0.5", 45003, "10.1.9.9", 80, "ESTABLISHED", 450, None, 30),
        (12, "tcp", "10.0.0.5", 45004, "10.1.9.9", 443, "ESTABLISHED", 500, 550, 30),
    ]
    starts = {10: T0 - 50 * s, 20: T0 - 20 * s, 30: T0}
    # The columns at the end of the page's rows, set in part: left out when null.
    extras = {2: dict(holders=1, bytes_sent=1200, bytes_received=3400, seen_by="destroy_event"),
              3: dict(holders=2), 8: dict(bytes_received=99),
              12: dict(holders=1, seen_by="destroy_event_only", opened_after=T0 + 499 * s)}
    for lid, proto, la, lp, ra, rp, states, first, closed, pid in spec:
        add_lifetime(db, lid, T0 + first * s, proto=proto, family=6 if ":" in la else 4, local_addr=la,
                     local_port=lp, remote_addr=ra, remote_port=rp, state=states.split(",")[-1], states=states,
                     last_seen=None if closed is None else T0 + (closed - 1) * s,
                     closed_at=None if closed is None else T0 + closed * s, close_reason=None if closed is None else "gone",
                     pid=pid, proc_start=starts.get(pid), **extras.get(lid, {}))
    add_state_change(db, 2, T0 + 11 * s, "ESTABLISHED")
    add_state_change(db, 6, T0 + 171 * s, "ESTABLISHED")
    db.commit()
    db.close()
    return T0 + 600 * s  # the newest sample


def build_large(path, n, processes=24, seed=7):
    """n lifetimes over a day from `processes` processes (and a few
    unattributed), written in bulk the way add_lifetime writes one: ids in
    first_seen order, lifetime_blocks bounding each block of 4096 ids; those
    that outlast the last sample are open; two gaps in recording. Returns
    the newest sample."""
    rnd = random.Random(seed)
    db = create_db(path)
    day = 86_400_000
    add_run(db, T0, [(T0, T0 + day * 2 // 5), (T0 + day // 2, T0 + day * 4 // 5), (T0 + day * 17 // 20, T0 + day)])
    procs = []
    for k in range(processes):
        add_process(db, 1000 + k, T0 - 1000, "svc-%02d" % k, "/usr/bin/svc-%02d --serve" % k)
        procs.append(db.execute("SELECT proc_id FROM processes WHERE pid = ?", (1000 + k,)).fetchone()[0])
    tcp, udp = code(db, "proto", "tcp"), code(db, "proto", "udp")
    est = code(db, "state", "ESTABLISHED")
    states = pack_states(db, "ESTABLISHED")
    gone = code(db, "close_reason", "gone")
    socket = code(db, "owner_source", "socket")
    local = addr_id(db, "10.0.0.5")
    remotes = [addr_id(db, "10.%d.%d.%d" % (k // 250, k % 250, 1 + k % 7)) for k in range(400)]
    rows, blocks = [], {}
    for i in range(1, n + 1):
        first = T0 + (i - 1) * day // n
        proc = procs[i % processes] if i % 50 else None
        length = int(rnd.expovariate(1 / 120_000)) + 500
        closed = None if first + length > T0 + day else length  # open: still open at the last sample
        rows.append((i, tcp if i % 10 else udp, 4, local, 30000 + i % 30000, rnd.choice(remotes), 443, est, states,
                     first, None if closed is None else max(0, closed - 500), closed,
                     None if closed is None else gone, proc, None if proc is None else socket))
        lo, hi = blocks.get(i >> 12, (first, first))
        blocks[i >> 12] = (min(lo, first), max(hi, first))
    db.executemany("INSERT INTO lifetimes (lifetime_id, run_id, proto, family, local_addr_id, local_port,"
                   " remote_addr_id, remote_port, state, states, first_seen, last_seen_after, closed_after,"
                   " close_reason, proc_id, owner_source) VALUES (?,1,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO lifetime_blocks (block, min_first_seen, max_first_seen) VALUES (?,?,?)",
                   [(b, lo, hi) for b, (lo, hi) in blocks.items()])
    db.commit()
    db.close()
    return T0 + day


def run_query(*args):
    return subprocess.run(WRAPPER + [QUERY] + list(args), capture_output=True, timeout=600)


def page_data(html):
    """The JSON the page embeds, parsed."""
    m = re.search(rb'<script type="application/json" id="chq-data">(.*?)</script>', html, re.S)
    if m is None:
        raise AssertionError("no data element in the page")
    return json.loads(m.group(1))


# The columns of a lifetime row as the page reads them (query/html_data.c).
ID, PROTO, FAMILY, LADDR, LPORT, RADDR, RPORT, STATE, STATES, FIRST, LAST, CLOSED, REASON, PROC, OWNER_SOURCE, \
    HOLDERS, SENT, RECV, SEEN_BY, OPENED_AFTER = range(20)


def code_of(data, field, name):
    """The code of a name in the page's "codes"."""
    return next(c for f, c, n in data["codes"] if (f, n) == (field, name))


def unpack_column(text, count):
    """A packed column of the page (query/html_data.c) as a list of count
    values, None for null; written here from the format's description, not
    from the page's decoder."""
    if text is None:
        return [None] * count
    raw = base64.b64decode(text, validate=True)
    pos = 0

    def varint():
        nonlocal pos
        u = shift = 0
        while True:
            byte = raw[pos]
            pos += 1
            u |= (byte & 127) << shift
            shift += 7
            if byte < 128:
                return u

    differences = varint() == 1
    out, prev, entry = [], 0, None
    while len(out) < count:
        u = varint()
        if u % 2 == 0:
            code = u // 2
            entry = None if code == 0 else ((code - 1) // 2 if (code - 1) % 2 == 0 else -(code // 2))
            times = 1
        else:
            if not out:
                raise AssertionError("a packed column starts with a run")
            times = (u - 1) // 2 + 1
        for _ in range(times):
            if entry is None:
                out.append(None)
            elif differences:
                prev += entry
                out.append(prev)
            else:
                out.append(entry)
    if len(out) != count or pos != len(raw):
        raise AssertionError("a packed column of %d values (%d of %d bytes read) for %d lifetimes"
                             % (len(out), pos, len(raw), count))
    return out


def lifetimes(data):
    """The page's lifetime rows spelled out, as the page does it: the
    packed columns unpacked, a row's states its state unless its number in
    the states column names one of "state_lists", closed_at counted from first_seen and last_seen back from closed_at
    (on from first_seen when open), names for codes and addr_ids."""
    names = {(f, c): n for f, c, n in data["codes"]}
    addrs = dict((i, a) for i, a in data["addrs"])
    name = lambda field, c: None if c is None else names[(field, c)]
    lt = data["lifetimes"]
    n = lt["count"]
    cols = [unpack_column(c, n) for c in lt["columns"]]
    lists = lt["state_lists"]
    out = []
    for i in range(n):
        r = [c[i] for c in cols]
        k = r[STATES] or 0  # 0 (or none): the one state; else the k-th list
        if not 0 <= k <= len(lists):
            raise AssertionError("lifetime %d: no list of states %d" % (r[ID], k))
        r[STATES] = lists[k - 1] if k else [r[STATE]]
        if r[CLOSED] is not None:
            r[CLOSED] += r[FIRST]
        if r[LAST] is not None:
            r[LAST] = r[CLOSED] - r[LAST] if r[CLOSED] is not None else r[FIRST] + r[LAST]
        for col, field in ((PROTO, "proto"), (STATE, "state"), (REASON, "close_reason"), (SEEN_BY, "seen_by"),
                           (OWNER_SOURCE, "owner_source")):
            r[col] = name(field, r[col])
        r[LADDR], r[RADDR] = addrs.get(r[LADDR]), addrs.get(r[RADDR])
        r[STATES] = [name("state", c) for c in r[STATES]]
        out.append(r)
    return out


def db_rows(path, sql, params=()):
    c = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute(sql, params)]
    finally:
        c.close()


class Scratch(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="connhist-html-")
        cls.keep = os.environ.get("CONNHIST_HTML_ARTIFACTS")
        if cls.keep:
            os.makedirs(cls.keep, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def artifact(self, name):
        return os.path.join(self.keep or self.dir, name)

    def page(self, db, *args):
        """Writes the page with -o and returns (path, its bytes)."""
        out = self.artifact("%s-%d.html" % (self.id().split(".")[-1], len(os.listdir(self.keep or self.dir))))
        p = run_query("--db", db, *args, "--html", "-o", out)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(p.stdout, b"", "with -o nothing goes to standard output")
        with open(out, "rb") as f:
            return out, f.read()


class TestHtmlOutput(Scratch):
    """The page as a file: its data against the database, the command line."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = os.path.join(cls.dir, "small.db")
        cls.last_sample = build_small(cls.db)

    def test_data_is_every_lifetime_of_the_window(self):
        until = iso(T0 + 600_000)
        path, html = self.page(self.db, "timeline", "--since", iso(T0 + 100_000), "--until", until)
        data = page_data(html)
        expect = db_rows(self.db, "SELECT * FROM v_lifetimes WHERE first_seen <= ? AND (closed_at IS NULL OR"
                         " closed_at >= ?) ORDER BY lifetime_id", (T0 + 600_000, T0 + 100_000))
        rows = lifetimes(data)
        self.assertEqual([r[0] for r in rows], [r["lifetime_id"] for r in expect])
        for row, want in zip(rows, expect):
            self.assertEqual(row[PROTO], want["proto"])
            self.assertEqual((row[LADDR], row[LPORT]), (want["local_addr"], want["local_port"]))
            self.assertEqual((row[RADDR], row[RPORT]), (want["remote_addr"], want["remote_port"]))
            self.assertEqual(",".join(row[STATES]), want["states"])
            self.assertEqual((row[FIRST], row[LAST], row[CLOSED]),
                             (want["first_seen"], want["last_seen"], want["closed_at"]))
            self.assertEqual(row[PROC], want["proc_id"])
            self.assertEqual((row[REASON], row[OWNER_SOURCE]), (want["close_reason"], want["owner_source"]))
            self.assertEqual((row[HOLDERS], row[SENT], row[RECV], row[SEEN_BY], row[OPENED_AFTER]),
                             (want["holders"], want["bytes_sent"], want["bytes_received"], want["seen_by"],
                              want["opened_after"]))
        procs = {p[0]: p for p in data["processes"]}
        self.assertEqual(sorted(procs), sorted({r["proc_id"] for r in expect if r["proc_id"] is not None}))
        for r in expect:
            if r["proc_id"] is not None:
                self.assertEqual((procs[r["proc_id"]][1], procs[r["proc_id"]][2]), (r["pid"], r["process"]))
        self.assertEqual(data["header"]["report"], "timeline")
        self.assertEqual(data["lanes"], "process")
        self.assertEqual([(g["from"], g["to"]) for g in data["header"]["coverage"]["gaps"]],
                         [(iso(T0 + 100_000), iso(T0 + 160_000)), (iso(T0 + 300_000), iso(T0 + 400_000))])

    def test_packed_columns_hold_edge_values(self):
        """Byte counts at and beyond 2^53 (beyond: null, the page could not
        hold them exactly), ids and ports going down as well as up, runs of
        one value and of one difference, and a column with no value at all."""
        db_path = os.path.join(self.dir, "edges.db")
        db = create_db(db_path)
        add_run(db, T0, [(T0, T0 + 100_000)])
        sent = {1: 2 ** 53, 2: 2 ** 53 + 1, 3: -(2 ** 53), 4: 2 ** 62, 5: 0}
        ids = [1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 40, 41]
        for k, lid in enumerate(ids):
            first = T0 + (3 - k % 4) * 1000 if k < 4 else T0 + k * 1000  # first_seen falls, then climbs
            add_lifetime(db, lid, first, local_port=60000 - 7 * k if k < 6 else 30000 + k % 2,
                         remote_addr="10.0.0.%d" % (k % 3) if k % 5 else None, remote_port=443,
                         last_seen=first + 900 if k % 3 else None, closed_at=first + 1000 if k % 2 else None,
                         close_reason="gone" if k % 2 else None, bytes_sent=sent.get(lid),
                         states="SYN_SENT,ESTABLISHED" if k % 4 == 1 else None)
        db.commit()
        db.close()
        path, html = self.page(db_path, "timeline", "--until", iso(T0 + 100_000))
        data = page_data(html)
        self.assertIsNone(data["lifetimes"]["columns"][SEEN_BY], "a column without a value is one null")
        rows = {r[ID]: r for r in lifetimes(data)}
        self.assertEqual(sorted(rows), ids)
        want = {r["lifetime_id"]: r for r in db_rows(db_path, "SELECT * FROM v_lifetimes")}
        for lid, r in rows.items():
            w = want[lid]
            self.assertEqual((r[LPORT], r[RADDR], r[RPORT]), (w["local_port"], w["remote_addr"], w["remote_port"]))
            self.assertEqual((r[FIRST], r[LAST], r[CLOSED]), (w["first_seen"], w["last_seen"], w["closed_at"]))
            self.assertEqual(r[REASON], w["close_reason"])
            self.assertEqual(",".join(r[STATES]), w["states"])
        # The list shared by three lifetimes is written once.
        self.assertEqual(data["lifetimes"]["state_lists"], [[code_of(data, "state", "SYN_SENT"),
                                                              code_of(data, "state", "ESTABLISHED")]])
        self.assertEqual([rows[i][SENT] for i in (1, 2, 3, 4, 5, 9)], [2 ** 53, None, -(2 ** 53), None, 0, None])

    def test_script_end_in_a_name_stays_data(self):
        path, html = self.page(self.db, "timeline")
        # The template's two </script> tags and no third from the data.
        self.assertEqual(html.count(b"</script"), 2)
        self.assertNotIn(b"<!--</script", html)
        names = {p[2] for p in page_data(html)["processes"]}
        self.assertIn(HOSTILE, names)

    def test_nothing_is_fetched(self):
        path, html = self.page(self.db, "timeline")
        text = html.decode("utf-8")
        self.assertIn("default-src 'none'", text)
        page_without_data = re.sub(r'<script type="application/json" id="chq-data">.*?</script>', "", text,
                                   flags=re.S)
        for pattern in (r"\bsrc\s*=", r"\bhref\s*=", r"https?:", r"@import", r"url\(", r"fetch\(", r"XMLHttpRequest",
                        r"WebSocket", r"import\("):
            self.assertIsNone(re.search(pattern, page_without_data), pattern)

    def test_stdout_and_output_file_hold_the_same_page(self):
        args = ["--db", self.db, "timeline", "--until", iso(T0 + 600_000), "--html"]
        p = run_query(*args)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        path, html = self.page(self.db, "timeline", "--until", iso(T0 + 600_000))
        strip = lambda b: re.sub(rb'"generated_at":"[^"]*"', b"", b)
        self.assertEqual(strip(p.stdout), strip(html))
        long = os.path.join(self.dir, "long.html")
        p = run_query(*args, "--output", long)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        with open(long, "rb") as f:
            self.assertEqual(strip(f.read()), strip(html))

    def test_process_page_holds_that_process_only(self):
        path, html = self.page(self.db, "process", "curl")
        data = page_data(html)
        want = [r["lifetime_id"] for r in db_rows(self.db, "SELECT lifetime_id FROM v_lifetimes"
                                                  " WHERE process = 'curl' ORDER BY lifetime_id")]
        self.assertEqual([r[0] for r in lifetimes(data)], want)
        self.assertEqual(data["lanes"], "remote")
        self.assertEqual(data["header"]["filters"], {"process": "curl"})

    def test_output_without_html_is_the_json_report(self):
        out = os.path.join(self.dir, "report.json")
        p = run_query("--db", self.db, "connections", "-o", out)
        self.assertEqual((p.returncode, p.stdout), (0, b""), p.stderr.decode())
        with open(out, encoding="utf-8") as f:
            self.assertEqual(len(json.load(f)["lifetimes"]), 12)

    def test_bad_command_lines(self):
        cases = [
            (["summary", "--html"], 2, "--html: the 'summary' report has no page (expected timeline or process)"),
            (["timeline", "--html", "--ndjson"], 2, "--html: a page has no --ndjson form"),
            (["timeline", "--html", "--pretty"], 2, "--html: a page has no --pretty form"),
            (["timeline", "--html", "-o"], 2, "-o: missing value"),
            (["timeline", "--html", "--output="], 2, "--output: '' is not a path (expected the file to write)"),
            (["timeline", "--html=yes"], 2, "--html: takes no value, got 'yes'"),
        ]
        for args, rc, message in cases:
            p = run_query("--db", self.db, *args)
            self.assertEqual(p.returncode, rc, args)
            self.assertEqual(p.stdout, b"", args)
            err = p.stderr.decode()
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn(message, err, args)

    def test_unwritable_output_is_refused_and_nothing_left(self):
        missing = os.path.join(self.dir, "no-such-dir", "page.html")
        p = run_query("--db", self.db, "timeline", "--html", "-o", missing)
        self.assertEqual(p.returncode, 1)
        self.assertIn("--output %s: cannot create the file" % missing, p.stderr.decode())
        # A missing database creates no output file either.
        out = os.path.join(self.dir, "never.html")
        p = run_query("--db", os.path.join(self.dir, "none.db"), "timeline", "--html", "-o", out)
        self.assertEqual(p.returncode, 1)
        self.assertFalse(os.path.exists(out))


def overlapping(lifetimes, since, until, t0, t1):
    """The lifetimes (page rows) whose bar meets [t0, t1], bars of open
    lifetimes running to the window's end."""
    out = []
    for r in lifetimes:
        end = r[CLOSED] if r[CLOSED] is not None else max(until, r[FIRST])
        if end >= t0 and r[FIRST] <= t1:
            out.append(r)
    return out


@unittest.skipUnless(CHROMIUM, NO_CHROMIUM)
class TestHtmlInBrowser(Scratch):
    """The small page in Chromium: what it draws, hover, filter, lanes, zoom."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.db = os.path.join(cls.dir, "small.db")
        build_small(cls.db)

    def open(self, b, path):
        page = b.new_page(1400, 900)
        page.navigate("file://" + path)
        return page

    def stats(self, page):
        return {k: float(v) for k, v in page.evaluate("Object.assign({}, document.body.dataset)").items()}

    def check_clean(self, page, path):
        self.assertEqual(page.console_errors, [])
        self.assertEqual(page.requests, ["file://" + path], "the page fetched something")

    def test_draws_every_lifetime_and_gap(self):
        until = T0 + 600_000
        path, html = self.page(self.db, "timeline", "--since", iso(T0), "--until", iso(until))
        rows = lifetimes(page_data(html))
        with cdp.Browser() as b:
            page = self.open(b, path)
            st = self.stats(page)
            n = len(rows)
            self.assertEqual(n, 12)
            self.assertEqual((st["lifetimes"], st["shown"], st["barsDrawn"]), (n, n, n))
            self.assertEqual(st["openDrawn"], sum(1 for r in rows if r[CLOSED] is None))
            self.assertEqual(st["gapsDrawn"], 2)
            self.assertEqual(st["lanes"], 4)  # nginx, the hostile name, curl, no process
            self.assertEqual(page.evaluate("document.title"), "html-host: 12 of 12 lifetimes drawn - connhist timeline")
            self.check_clean(page, path)
            if not b.isolated:  # the proxy, resolver and page policy still refuse, and requests are checked
                print("Chromium ran without a network namespace of its own (not root, or unshare refused)",
                      file=sys.stderr)

    def test_page_reads_every_lifetime_as_written(self):
        """The page's decoder (timeline.js) against this file's reading of
        the format: every column of every lifetime."""
        path, html = self.page(self.db, "timeline", "--until", iso(T0 + 600_000))
        rows = lifetimes(page_data(html))
        with cdp.Browser() as b:
            page = self.open(b, path)
            for r in rows:
                self.assertEqual(page.evaluate("chqTimeline.lifetime(%d)" % r[ID]), r, r[ID])
            self.assertIsNone(page.evaluate("chqTimeline.lifetime(999)"))
            self.check_clean(page, path)

    def test_process_page_draws_lanes_by_remote_address(self):
        path, html = self.page(self.db, "process", "curl", "--until", iso(T0 + 600_000))
        rows = lifetimes(page_data(html))
        with cdp.Browser() as b:
            page = self.open(b, path)
            st = self.stats(page)
            self.assertEqual(len(rows), 4)
            self.assertEqual((st["lifetimes"], st["barsDrawn"]), (4, 4))
            self.assertEqual(st["lanes"], len({r[RADDR] for r in rows}))
            self.assertEqual(page.evaluate("document.getElementById('lanes').value"), "remote")
            self.check_clean(page, path)

    def test_hover_shows_the_lifetime_under_the_pointer(self):
        path, html = self.page(self.db, "timeline", "--until", iso(T0 + 600_000))
        with cdp.Browser() as b:
            page = self.open(b, path)
            # The hostile process's; a short one with the columns at the end of its row set; one with
            # some of them set.
            shown = {5: [], 12: ["seen bydestroy_event_only", "opened after" + iso(T0 + 499_000), "holders1"],
                     2: ["bytes sent1200", "bytes received3400", "holders1", "seen bydestroy_event",
                         "statesSYN_RECV \u2192 ESTABLISHED"]}
            for lid, parts in shown.items():
                where = page.evaluate("chqTimeline.where(%d)" % lid)
                self.assertIsNotNone(where, lid)
                page.mouse("mouseMoved", where["x"], where["y"])
                page.evaluate("new Promise(r => requestAnimationFrame(() => r(1)))")
                self.assertEqual(page.evaluate("document.getElementById('tip').dataset.lifetime"), str(lid))
                text = page.evaluate("document.getElementById('tip').textContent")
                self.assertIn("#%d tcp" % lid, text)
                for part in parts:
                    self.assertIn(part, text, lid)
                if lid == 5:
                    self.assertNotIn("bytes", text)  # unknown: left out, not shown as 0
            self.assertIn(HOSTILE, self.hover_text(page, 5))  # shown as text, not run
            self.assertEqual(page.evaluate("document.querySelectorAll('script').length"), 2)
            self.check_clean(page, path)

    def hover_text(self, page, lid):
        where = page.evaluate("chqTimeline.where(%d)" % lid)
        page.mouse("mouseMoved", where["x"], where["y"])
        return page.evaluate("document.getElementById('tip').textContent")

    def test_filter_lanes_and_zoom(self):
        until = T0 + 600_000
        path, html = self.page(self.db, "timeline", "--since", iso(T0), "--until", iso(until))
        rows = lifetimes(page_data(html))
        with cdp.Browser() as b:
            page = self.open(b, path)
            # The filter box: every word must occur in the lifetime's text.
            page.evaluate("(() => { const f = document.getElementById('filter'); f.value = '10.1.9.9 443';"
                          " f.dispatchEvent(new Event('input')); })()")
            page.evaluate("new Promise(r => setTimeout(() => r(1), 400))")
            st = self.stats(page)
            want = [r for r in rows if r[RADDR] == "10.1.9.9" and r[RPORT] == 443]
            self.assertEqual((st["shown"], st["barsDrawn"]), (len(want), len(want)))
            self.assertEqual(st["lanes"], 1)  # curl only
            # Lanes per remote address, no filter.
            page.evaluate("(() => { const f = document.getElementById('filter'); f.value = '';"
                          " f.dispatchEvent(new Event('input'));"
                          " const s = document.getElementById('lanes'); s.value = 'remote';"
                          " s.dispatchEvent(new Event('change')); })()")
            page.evaluate("new Promise(r => setTimeout(() => r(1), 400))")
            st = self.stats(page)
            self.assertEqual(st["barsDrawn"], len(rows))
            self.assertEqual(st["lanes"], len({r[RADDR] for r in rows}))  # None: the lane of no remote end
            # Zoom into [T0+150 s, T0+190 s]: only the bars meeting it are drawn.
            t0, t1 = T0 + 150_000, T0 + 190_000
            page.evaluate("chqTimeline.setView(%d, %d)" % (t0, t1))
            st = self.stats(page)
            want = overlapping(rows, T0, until, t0, t1)
            self.assertEqual(st["barsDrawn"], len(want))
            self.assertEqual(st["gapsDrawn"], 1)
            # The wheel zooms around the pointer: the view shrinks, the bars in it are redrawn.
            page.evaluate("chqTimeline.setView(%d, %d)" % (T0, until))
            where = page.evaluate("chqTimeline.where(7)")
            page.mouse("mouseWheel", where["x"], where["y"], deltaX=0, deltaY=-600)
            page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(1))))")
            st = self.stats(page)
            self.assertLess(st["viewTo"] - st["viewFrom"], until - T0)
            self.assertEqual(st["barsDrawn"], len(overlapping(rows, T0, until, st["viewFrom"], st["viewTo"])))
            self.check_clean(page, path)


@unittest.skipUnless(CHROMIUM, NO_CHROMIUM)
class TestHtmlLarge(Scratch):
    """1,000 and 100,000 lifetimes: every bar drawn, a screenshot, and the
    time to the first draw (printed, for bench/README.md)."""

    def measure(self, n):
        db = os.path.join(self.dir, "large-%d.db" % n)
        build_large(db, n)
        t = time.monotonic()
        path, html = self.page(db, "timeline")
        write_s = time.monotonic() - t
        with cdp.Browser() as b:
            page = b.new_page(1400, 900)
            thread0, process0 = page.cpu_seconds()
            t = time.monotonic()
            page.navigate("file://" + path)
            load_s = time.monotonic() - t
            thread1, process1 = page.cpu_seconds()
            st = {k: float(v) for k, v in page.evaluate("Object.assign({}, document.body.dataset)").items()}
            self.assertEqual((st["lifetimes"], st["barsDrawn"]), (n, n))
            self.assertEqual(st["openDrawn"], len(db_rows(db, "SELECT 1 FROM v_lifetimes WHERE open")))
            shot = self.artifact("timeline-%d.png" % n)
            page.screenshot(shot)
            with open(shot, "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
            # A redraw after a zoom, timed by the page itself.
            redraw_ms = page.evaluate("(() => { const t = performance.now(); chqTimeline.setView(%d, %d);"
                                      " return performance.now() - t; })()" % (T0, T0 + 43_200_000))
            # The first draw decoded only the columns it reads; the rest follow in idle moments.
            self.assertLess(st["columnsAtFirstDraw"], 10)
            page.evaluate("new Promise(r => { const t = setInterval(() => { if (document.body.dataset"
                          ".columnsDecodedMs) { clearInterval(t); r(1); } }, 50); })")
            rows = lifetimes(page_data(html))
            for r in rows[::max(1, n // 50)] + rows[-1:]:
                self.assertEqual(page.evaluate("chqTimeline.lifetime(%d)" % r[ID]), r, r[ID])
            self.assertEqual(page.console_errors, [])
            self.assertEqual(page.requests, ["file://" + path])
        print("html timeline, %d lifetimes: page %.1f MB written in %.2f s; first draw %.0f ms after the"
              " navigation started (script %.0f ms: parse %.0f, decode %.0f, layout %.0f, draw %.0f), load event"
              " after %.2f s; CPU to the load event: renderer main thread %.2f s, renderer %.2f s; redraw %.0f ms;"
              " load average %s; screenshot %s"
              % (n, len(html) / 1e6, write_s, st["firstDrawMs"], st["scriptMs"], st["parseMs"], st["decodeMs"],
                 st["layoutMs"], st["drawMs"], load_s, thread1 - thread0, process1 - process0, redraw_ms,
                 " ".join(open("/proc/loadavg").read().split()[:3]),
                 shot if self.keep else "taken (CONNHIST_HTML_ARTIFACTS=DIR keeps it)"), file=sys.stderr)

    def test_1000(self):
        self.measure(1000)

    def test_100000(self):
        self.measure(100_000)


if __name__ == "__main__":
    unittest.main()
