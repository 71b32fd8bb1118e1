#!/usr/bin/env python3
"""Bad input for both programs (issue 5): a table of malformed values for
every option, broken and hostile databases, and hostile text in the tables.

Every malformed value must give exit code 2 and exactly one line on stderr
that names the value (or the option, when the value is missing); every
unusable database a clear one-line message and exit code 1; every report
over hostile rows valid JSON in valid UTF-8. Nothing may crash or trip a
sanitizer. Arguments go to the programs as bytes, so values that are not
UTF-8 reach them unchanged.

test_query.py and test_restart.py already cover the common cases (a bad
port, a file that is not SQLite, another application's database); this file
adds what they do not.

Environment: CONNHIST_RECORD, CONNHIST_QUERY, CONNHIST_SCHEMA, and
optionally CONNHIST_WRAPPER (see helpers.py).
"""

import calendar
import json
import os
import pwd
import re
import shutil
import socket
import sqlite3
import stat
import statistics
import subprocess
import sys
import tempfile
import unittest

from helpers import QUERY, RECORD, SCHEMA, WRAPPER, add_lifetime, code, rows

T0 = 1_700_000_000_000  # 2023-11-14T22:13:20.000Z
CRASH_SIGNS = (b"Sanitizer", b"runtime error:", b"Segmentation fault", b"core dumped", b"Aborted",
               b"==ERROR", b"Invalid read", b"Invalid write")

# Values no option takes: empty, blanks, controls, format directives, bytes
# that are not UTF-8, numbers far out of any range, and a 70 KB argument.
GENERIC = [b"", b" ", b"\t", b"\n", b"a\nb", b"\x1b[31mred", b"%s%n%x", b"\xff\xfe", b"\xc3\x28",
           b"9" * 40, b"-9" * 20, b"1e3", b"0x10", b"NaN", b"\xef\xbc\x91\xef\xbc\x92", b"x" * 70000]

TIMES = GENERIC + [b"yesterday", b"2026-02-30", b"2026-11-24T24:00:00Z", b"2026-11-24T10:60Z",
                   b"2026-11-24T10:00:00+24:00", b"2026-11-24T10:00:00.Z", b"10000-01-01", b"26-11-24",
                   b"253402300800", b"@-1", b"@", b"-", b"--2h", b"-99999999w", b"99999999999w", b"now+1h",
                   b"NOW ", b"1h-", b"0000-01-01T00:00:00+00:01", b"2026-11-24T10:00:00Z ",
                   # one duration syntax (issue 17): nothing finer than a millisecond, a digit on
                   # each side of the point, a unit for a time ago, units largest first
                   b"1764140000.0001", b"1764140000.", b".5", b"@.5", b"1764140000,250", b"-5", b"-1.5",
                   b"-0.0001s", b"2026-11-24T10:00:00.2501Z", b"1e3s", b"30m1h", b"1h1h", b"0.5h30m", b"inf",
                   b"30m ago"]
PORTS = GENERIC + [b"-1", b"65536", b"4294967376", b"8080/tcp", b"http", b" 80", b"80 ", b"8o"]
PIDS = GENERIC + [b"-1", b"2147483648", b"1.5", b"12ab", b"9223372036854775808"]
COUNTS = GENERIC + [b"-1", b"1000000001", b"ten", b"5 "]
REMOTES = GENERIC + [b"10.0.0.0/33", b"::/129", b"10.0.0.1/", b"10.0.0.1/-1", b"10.0.0.1/ 8", b"/8",
                     b"10.0.0", b"1.2.3.4.5", b"256.1.1.1", b"[::1]", b"fe80::1%eth0", b"::ffff:1.2.3.4/200",
                     b"10.0.0.0/8/8", b"1:2:3:4:5:6:7:8:9", b"1" * 63 + b"/8", b"example.com"]
PROTOS = GENERIC + [b"tcp6", b"TCP ", b"sctp", b"t"]
FAMILIES = GENERIC + [b"46", b"04", b"IPv4", b"inet6"]
STATES = GENERIC + [b"LISTENING", b"listen,", b"ESTABLISHED,LISTEN", b"UNKNOWN"]
DURATIONS = GENERIC + [b"0", b"0s", b"-5s", b"1x", b"s", b"1h 30m", b"99999999999999999999s",
                       b"9223372036854775807ms", b"2562047788015216w", b"0.0001", b"0.0009", b"1.5ms", b"1.",
                       b".5", b"1.5.5", b"1,5", b"+1s", b"-0.5", b"1e-3", b"inf", b"Infinity", b"1h1h",
                       b"30m1h", b"0.5h30m", b"1h30", b"1.s", b"1sms", b"1S", b"1us"]

# Every filter of connhist-query with the values it must refuse, and a
# report that takes it.
QUERY_VALUES = [
    (b"--since", TIMES, b"connections"), (b"--until", TIMES, b"connections"),
    (b"--remote", REMOTES, b"connections"), (b"--remote-port", PORTS, b"connections"),
    (b"--local-port", PORTS, b"connections"), (b"--port", PORTS, b"connections"),
    (b"--proto", PROTOS, b"connections"), (b"--family", FAMILIES, b"connections"),
    (b"--pid", PIDS, b"connections"), (b"--state", STATES, b"connections"),
    (b"--limit", COUNTS, b"connections"), (b"--top", COUNTS, b"summary"),
    (b"--process", [b""], b"connections"), (b"--db", [b""], b"connections"),
]


def as_named(value):
    """How a value appears in a one-line message: controls escaped (message.c)."""
    out = bytearray()
    for c in value:
        if c == 0x0A:
            out += b"\\n"
        elif c == 0x0D:
            out += b"\\r"
        elif c == 0x09:
            out += b"\\t"
        elif c < 0x20 or c == 0x7F:
            out += b"\\x%02x" % c
        else:
            out.append(c)
    return bytes(out)


def run(program, *args, cwd=None, timeout=60):
    """Runs a program (with CONNHIST_WRAPPER in front) on byte arguments."""
    p = subprocess.run(WRAPPER + [program] + list(args), capture_output=True, cwd=cwd, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


# Instrumented programs (ASan) start six times slower: each value is tried
# in one spelling there, which the plain build's run tries both of.
SLOW_START = bool(WRAPPER) or os.environ.get("CONNHIST_SANITIZER") == "asan"


def sampled(values):
    """All values; every third under a slow wrapper (valgrind), so it ends in minutes."""
    return values[::3] if WRAPPER else values


def spellings(opt, value):
    """"--opt value" and "--opt=value"; one of them, by turns, where programs are slow to start."""
    both = [[opt, value], [opt + b"=" + value]]
    return both[len(value) % 2:][:1] if SLOW_START else both


def encode(arg):
    return arg if isinstance(arg, bytes) else os.fsencode(arg)


class Checks(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="connhist-bad-")
        self.addCleanup(tmp.cleanup)
        self.tmp = tmp.name

    def path(self, name):
        return os.path.join(self.tmp, name)

    def no_crash(self, rc, err, what):
        self.assertGreaterEqual(rc, 0, (what, "killed by a signal", err[-2000:]))
        for sign in CRASH_SIGNS:
            self.assertNotIn(sign, err, what)
        self.assertFalse([f for f in os.listdir(self.tmp) if f.startswith(("core", "vgcore"))], what)

    def one_line(self, program, args, rc_expected, needle, prefix):
        args = [encode(a) for a in args]
        rc, out, err = run(program, *args, cwd=self.tmp)
        what = (os.path.basename(program), [a[:80] for a in args], err[:300])
        self.no_crash(rc, err, what)
        self.assertEqual(rc, rc_expected, what)
        self.assertEqual(out, b"", what)
        self.assertTrue(err.endswith(b"\n") and err.count(b"\n") == 1, what)
        self.assertTrue(err.startswith(prefix), what)
        self.assertIn(needle, err, what)
        return err


class QueryOptionTest(Checks):
    """Every option and report argument of connhist-query, malformed."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="connhist-bad-")
        cls.db = os.path.join(cls.dir.name, "ok.db")
        make_db(cls.db)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def bad(self, *args, needle):
        return self.one_line(QUERY, [b"--db", self.db] + list(args), 2, needle, b"connhist-query: ")

    def test_every_filter_value(self):
        tried = 0
        for opt, values, report in QUERY_VALUES:
            for v in sampled(values):
                for args in spellings(opt, v):
                    with self.subTest(args=[a[:40] for a in args]):
                        self.bad(report, *args, needle=b"'" + as_named(v) + b"'")
                        tried += 1
        self.assertGreater(tried, 60 if WRAPPER else 300 if SLOW_START else 600)

    def test_missing_values_name_the_option(self):
        for opt, _, report in QUERY_VALUES:
            with self.subTest(opt=opt):
                self.bad(report, opt, needle=opt)

    def test_report_arguments(self):
        cases = [(b"at", v) for v in sampled(TIMES)] + [(b"port", v) for v in sampled(PORTS)] + [(b"process", b"")]
        for report, v in cases:
            with self.subTest(report=report, value=v[:40]):
                self.bad(report, v, needle=b"'" + as_named(v) + b"'")

    def test_unknown_reports(self):
        for name in [b"", b"Connections", b"connection", b"\xff\xfe", b"-x", b"a\nb", b"x" * 70000,
                     b"%n%n%n", b"conn\x01"]:
            with self.subTest(name=name[:40]):
                self.bad(name, needle=b"'" + as_named(name) + b"'")

    def test_unknown_options(self):
        for opt in [b"--bogus", b"---", b"--since-x", b"--=x", b"--\xff", b"--a\nb", b"--" + b"o" * 70000]:
            with self.subTest(opt=opt[:40]):
                self.bad(b"connections", opt, needle=as_named(opt.split(b"=")[0]))
        for flag in [b"--pretty=1", b"--ndjson=", b"--open=yes", b"--open=\xff"]:
            with self.subTest(flag=flag):
                self.bad(b"connections", flag, needle=flag.split(b"=")[0])

    def test_extra_arguments_and_wrong_reports(self):
        self.bad(b"connections", b"\xff", needle=b"'\xff'")
        self.bad(b"at", b"now", b"now", needle=b"'now'")
        self.bad(b"coverage", b"--state", b"LISTEN", needle=b"--state")
        self.bad(b"listeners", b"--top", b"3", needle=b"--top")
        self.bad(b"connections", b"--since", b"now", b"--until", b"-1h", needle=b"--since")

    def test_bad_input_never_opens_the_database(self):
        # Checked before the database: even a missing one is not mentioned.
        missing = self.path("none.db")
        err = self.one_line(QUERY, ["--db", missing, "connections", "--port", "x"], 2, b"'x'", b"connhist-query: ")
        self.assertNotIn(b"none.db", err)


class RecordOptionTest(Checks):
    """Every option of connhist-record, malformed. No database is created."""

    def bad(self, *args, needle):
        db = self.path("never.db")
        err = self.one_line(RECORD, [b"--db", encode(db)] + list(args), 2, needle, b"connhist-record: ")
        self.assertFalse(os.path.exists(db))
        return err

    def options(self):
        opts = [(b"--interval", DURATIONS + [b"10ms", b"49ms", b"0.049", b"24h1ms", b"86400.001", b"25h", b"2d"]),
                (b"--duration", DURATIONS),
                (b"--sampler", GENERIC + [b"pcap", b"NETLINK", b"procfs "])]
        _, out, _ = run(RECORD, b"--help")
        if b"--retain" in out:  # retention, where this build has it
            opts.append((b"--retain", DURATIONS + [b"10ms", b"59s", b"59.999"]))
        return opts

    def test_every_option_value(self):
        tried = 0
        for opt, values in self.options():
            for v in sampled(values):
                for args in spellings(opt, v):
                    with self.subTest(args=[a[:40] for a in args]):
                        self.bad(*args, needle=b"'" + as_named(v) + b"'")
                        tried += 1
        self.assertGreater(tried, 20 if WRAPPER else 50)

    def test_missing_values_and_empty_db(self):
        for opt, _ in self.options():
            with self.subTest(opt=opt):
                self.bad(opt, needle=opt)
        rc, out, err = run(RECORD, b"--once", b"--db", b"")
        self.assertEqual((rc, out, err.count(b"\n")), (2, b"", 1), err)
        self.assertIn(b"--db", err)

    def test_unknown_options_and_arguments(self):
        for arg in [b"--bogus", b"-", b"--", b"extra", b"\xff\xfe", b"--once=yes", b"--verbose=1", b"-x",
                    b"a\nb", b"%s%s%s%n", b"--" + b"z" * 70000, b"--interva", b"--DB"]:
            with self.subTest(arg=arg[:40]):
                self.bad(arg, needle=b"'" + as_named(arg) + b"'")

    def test_once_with_duration(self):
        self.bad(b"--once", b"--duration", b"5s", needle=b"--duration")


# One duration syntax (issue 17): what each program says about a value it
# refuses, and why. The rest of the line is what was expected, with examples.
RECORD_REASONS = [
    (b"--interval", b"0.0001", b"is finer than a millisecond", b"50ms to 24h"),
    (b"--interval", b"1.5ms", b"is finer than a millisecond", b"50ms to 24h"),
    (b"--interval", b"1e3", b"is not a duration", b"50ms to 24h"),
    (b"--interval", b".5", b"is not a duration", b"50ms to 24h"),
    (b"--interval", b"0.049", b"is less than 50ms", b"50ms to 24h"),
    (b"--interval", b"86400.001", b"is more than 24h", b"50ms to 24h"),
    (b"--interval", b"99999999999999999999", b"is too large", b"50ms to 24h"),
    (b"--duration", b"0", b"is less than 1ms", b"at least 1ms"),
    (b"--duration", b"0.0005", b"is finer than a millisecond", b"at least 1ms"),
    (b"--duration", b"0.5h30m", b"is not a duration", b"at least 1ms"),
    (b"--retain", b"59.999", b"is less than 1m", b"at least 1m"),
    (b"--retain", b"1.", b"is not a duration", b"at least 1m"),
]
QUERY_REASONS = [
    (b"--since", b"1764140000.0001", b"is finer than a millisecond"),
    (b"--until", b"2026-11-24T10:00:00.2501Z", b"is finer than a millisecond"),
    (b"--since", b"-0.0001s", b"is finer than a millisecond"),
    (b"--since", b"253402300800", b"is outside the years 0000-9999"),
    (b"--until", b"-99999999w", b"is outside the years 0000-9999"),
    (b"--since", b"1e3", b"is not a time"),
    (b"--since", b"-5", b"is not a time"),
    (b"at", b"1764140000.", b"is not a time"),
]
# Spellings of one amount, and its milliseconds: a bare number is seconds.
SPELLINGS = [(b"0.2", 200), (b"1.5", 1500), (b"0.05", 50), (b"0.25", 250), (b"1.0000", 1000), (b"86400", 86400000),
             (b"250ms", 250), (b"1.5s", 1500), (b"2.5m", 150000), (b"0.5h", 1800000), (b"1h0.5m", 3630000),
             (b"0.001d", 86400)]


def ms_of(text):
    """Milliseconds since the epoch of the programs' RFC 3339 text (2026-11-24T10:00:00.250Z)."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z", text)
    assert m, text
    y, mo, d, h, mi, s, frac = (int(g) for g in m.groups())
    return calendar.timegm((y, mo, d, h, mi, s)) * 1000 + frac


def epoch_text(ms):
    """ms as decimal epoch seconds: 1764140000250 -> '1764140000.250'."""
    return "%d.%03d" % divmod(ms, 1000)


class DurationSyntaxTest(Checks):
    """One syntax for every duration and time, in both programs (issue 17)."""

    def test_record_says_why(self):
        db = self.path("never.db")
        for opt, value, why, range_ in RECORD_REASONS:
            with self.subTest(opt=opt, value=value):
                err = self.one_line(RECORD, [b"--db", encode(db), opt, value], 2, b"'" + value + b"'",
                                    b"connhist-record: ")
                self.assertTrue(err.startswith(b"connhist-record: %s: '%s' %s (expected a duration of %s: seconds"
                                               b" like 0.2 or 1.5, or a number with a unit ms, s, m, h, d or w like"
                                               % (opt, value, why, range_)), err)
                self.assertTrue(err.endswith(b" 1.5s, 2.5m or 1h30m)\n"), err)
        self.assertFalse(os.path.exists(db))

    def test_query_says_why(self):
        for opt, value, why in QUERY_REASONS:
            args = [opt, value] if opt != b"at" else [b"at", value]
            report = [b"connections"] if opt != b"at" else []
            with self.subTest(opt=opt, value=value):
                err = self.one_line(QUERY, [b"--db", encode(self.path("none.db"))] + report + args, 2,
                                    b"'" + value + b"'", b"connhist-query: ")
                self.assertTrue(err.startswith(b"connhist-query: %s: '%s' %s (expected a time: RFC 3339 like"
                                               % (opt, value, why)), err)
                self.assertIn(b"epoch seconds like 1764140000 or 1764140000.250", err)
                self.assertTrue(err.endswith(b", or now)\n"), err)

    def test_record_reads_every_spelling_to_the_millisecond(self):
        # --once records --interval as the schedule's period: the run's row
        # says what the recorder understood, without waiting for it.
        db = encode(self.path("spellings.db"))
        for value, _ in SPELLINGS:
            rc, _, err = run(RECORD, b"--db", db, b"--once", b"--interval", value, cwd=self.tmp)
            self.assertEqual(rc, 0, (value, err))
            # Nothing but notes on what a --once run leaves out (the owner events).
            self.assertEqual([l for l in err.splitlines() if b" note: " not in l], [], value)
        got = [r["interval_ms"] for r in rows(os.fsdecode(db), "SELECT interval_ms FROM runs ORDER BY run_id")]
        self.assertEqual(got, [ms for _, ms in SPELLINGS])

    def window(self, *args):
        rc, out, err = run(QUERY, b"--db", encode(self.db), b"connections", b"--limit", b"0", *args, cwd=self.tmp)
        self.assertEqual((rc, err), (0, b""), args)
        return json.loads(out)["header"]["window"]

    def test_query_reads_the_same_spellings(self):
        self.db = self.path("query.db")
        make_db(self.db)
        for value, ms in SPELLINGS:
            with self.subTest(value=value):
                if value[-1:].isdigit():  # a bare number: epoch seconds
                    self.assertEqual(ms_of(self.window(b"--since", value)["since"]), ms)
                    self.assertEqual(ms_of(self.window(b"--until", b"@" + value)["until"]), ms)
                else:  # with a unit: that long ago, with or without the minus
                    for ago in (value, b"-" + value):
                        w = self.window(b"--since", ago)
                        self.assertEqual(ms_of(w["until"]) - ms_of(w["since"]), ms, ago)

    def test_decimal_epoch_seconds_filter_to_the_millisecond(self):
        # A real lifetime: a loopback listener seen by one sample, gone at the next.
        db = self.path("window.db")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = str(listener.getsockname()[1]).encode()
        try:
            rc, _, err = run(RECORD, b"--db", encode(db), b"--once", cwd=self.tmp)
            self.assertEqual(rc, 0, err)
        finally:
            listener.close()
        rc, _, err = run(RECORD, b"--db", encode(db), b"--once", cwd=self.tmp)
        self.assertEqual(rc, 0, err)
        self.db = db

        def found(*args, report=(b"connections",)):
            rc, out, err = run(QUERY, b"--db", encode(db), *report, b"--local-port", port, b"--proto", b"tcp",
                               b"--state", b"LISTEN", *args)
            self.assertEqual((rc, err), (0, b""), args)
            return json.loads(out)

        [life] = found()["lifetimes"]
        first, closed = ms_of(life["first_seen"]), ms_of(life["closed_at"])
        self.assertLess(first, closed)
        # The window's ends are inclusive: one millisecond decides.
        for since, n in ((closed, 1), (closed + 1, 0)):
            doc = found(b"--since", epoch_text(since).encode())
            self.assertEqual(len(doc["lifetimes"]), n, since)
            self.assertEqual(ms_of(doc["header"]["window"]["since"]), since)
        for until, n in ((first, 1), (first - 1, 0)):
            doc = found(b"--until", b"@" + epoch_text(until).encode())
            self.assertEqual(len(doc["lifetimes"]), n, until)
            self.assertEqual(ms_of(doc["header"]["window"]["until"]), until)
        # "at": open from first_seen until just before closed_at.
        for at, n in ((first - 1, 0), (first, 1), (closed - 1, 1), (closed, 0)):
            doc = found(report=(b"at", epoch_text(at).encode()))
            self.assertEqual(len(doc["lifetimes"]), n, at)

    def test_interval_in_decimal_seconds_samples_that_often(self):
        # --interval 0.2 is 200 ms: the run says so, and its samples come no
        # faster than that, but far more often than once a second.
        db = self.path("fast.db")
        rc, _, err = run(RECORD, b"--db", encode(db), b"--interval", b"0.2", b"--duration", b"4", b"--verbose",
                         cwd=self.tmp, timeout=180)
        self.assertEqual(rc, 0, err)
        [r] = rows(db, "SELECT run_id, interval_ms, mode, end_reason, event_overruns FROM runs")
        self.assertEqual((r["interval_ms"], r["mode"], r["end_reason"]), (200, "continuous", "duration"))
        beats = rows(db, "SELECT first_at, last_at, samples FROM heartbeats WHERE run_id = ?", (r["run_id"],))
        n = sum(b["samples"] for b in beats)
        span = max(b["last_at"] for b in beats) - min(b["first_at"] for b in beats)
        ticks = [(int(m.group(1)), int(m.group(2))) for m in
                 re.finditer(rb"sample: .*?, (\d+) ms \(dump (\d+),", err)]
        self.assertEqual(len(ticks), n, err[-2000:])
        # No faster than 200 ms: the samples' slots are 200 ms apart on the
        # monotonic clock and a missed slot is skipped, never made up, so 4 s
        # hold at most 21 samples however busy the machine, plus one full
        # sample per overrun of the announcements (a resync). Their dates
        # are when each dump completed, a slot plus however late the tick
        # began and its dump took: the gap between two dates is no bound.
        self.assertLessEqual(n, 4000 // 200 + 1 + (r["event_overruns"] or 0), (n, span, ticks))
        # A 1 s schedule would take at most 5 samples in 4 s (ticks at 0, 1,
        # 2, 3 and 4 s). 200 ms has 21 slots; a slot is lost only when the
        # tick before it overran it, so a run whose ticks were slow cannot tell.
        median = statistics.median(total for total, _ in ticks)
        if median >= 100:
            self.skipTest(f"the machine is too slow to tell: the median tick took {median} ms")
        self.assertGreater(n, 5, (n, span, ticks))


def make_db(path, with_rows=True):
    """A connhist database from schema/schema.sql, with one run and a few rows."""
    db = sqlite3.connect(path)
    with open(SCHEMA, encoding="utf-8") as f:
        db.executescript(f.read())
    if with_rows:
        db.execute("INSERT INTO runs (run_id, started_at, ended_at, end_reason, mode, interval_ms, host, os,"
                   " sampler, version, pid, uid) VALUES (1, ?, ?, 'signal', 'continuous', 1000, 'h', 'linux',"
                   " 'netlink', '0.1.0', 1, 0)", (T0, T0 + 100_000))
        db.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (1, ?, ?, 101)", (T0, T0 + 100_000))
    db.commit()
    db.close()


def make_big_db(path, rows=20000):
    """A real connhist database of a few MB (many lifetimes), in rollback mode."""
    make_db(path)
    db = sqlite3.connect(path)
    for i in range(rows):
        add_lifetime(db, i + 1, T0 + i, local_addr="10.0.0.1", local_port=1024 + i % 60000, remote_addr="10.0.0.2",
                     remote_port=443, last_seen=T0 + i + 5, closed_at=T0 + i + 6, close_reason="gone", holders=1)
    db.commit()
    db.close()


def read_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def as_nobody():
    pw = pwd.getpwnam("nobody")
    return ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups"], pw


class DatabaseTest(Checks):
    """Databases that cannot be used: one clear line, exit code 1, for both programs."""

    def query_fails(self, db, needle):
        return self.one_line(QUERY, ["--db", db, "summary"], 1, encode(needle), b"connhist-query: ")

    def record_fails(self, db, needle):
        return self.one_line(RECORD, ["--db", db, "--once"], 1, encode(needle), b"connhist-record: ")

    def test_empty_file(self):
        open(self.path("empty.db"), "wb").close()
        self.query_fails(self.path("empty.db"), "empty database")
        # For the recorder an empty file is a new database, as SQLite sees it.
        rc, _, err = run(RECORD, b"--db", encode(self.path("empty.db")), b"--once")
        self.assertEqual(rc, 0, err)
        rc, out, err = run(QUERY, b"--db", encode(self.path("empty.db")), b"coverage")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["header"]["coverage"]["runs"], 1)

    def test_truncated(self):
        big = self.path("big.db")
        make_big_db(big)
        size = os.path.getsize(big)
        self.assertGreater(size, 1 << 20)
        for name, cut in (("half.db", size // 2), ("header.db", 100), ("page.db", 4096)):
            path = self.path(name)
            shutil.copy(big, path)
            os.truncate(path, cut)
            with self.subTest(name=name):
                for report in ("summary", "connections", "timeline", "coverage"):
                    self.one_line(QUERY, ["--db", path, report], 1, encode(path), b"connhist-query: ")
                err = self.record_fails(path, path)
                self.assertRegex(err, rb"corrupt|malformed|not a SQLite")
        # The intact one works: the failures above are the truncation's.
        rc, out, err = run(QUERY, b"--db", encode(big), b"summary")
        self.assertEqual((rc, err), (0, b""))

    def test_sqlite_header_then_garbage(self):
        path = self.path("garbage.db")
        with open(path, "wb") as f:
            f.write(b"SQLite format 3\x00" + bytes(range(256)) * 64)
        self.query_fails(path, path)
        self.record_fails(path, path)

    def test_newer_schema_for_the_recorder(self):
        path = self.path("v99.db")
        make_db(path)
        with sqlite3.connect(path) as c:
            c.execute("PRAGMA user_version = 99")
        before = read_bytes(path)
        err = self.record_fails(path, "version 99")
        self.assertIn(b"newer", err)
        self.assertEqual(read_bytes(path), before)

    def test_missing(self):
        # The query tool never creates one; the recorder creates it, but not
        # under a path whose directory part is a file.
        self.query_fails(self.path("none.db"), "no database at")
        open(self.path("file"), "w").close()
        self.query_fails(self.path("file/x.db"), self.path("file/x.db"))
        self.record_fails(self.path("file/sub/x.db"), self.path("file"))

    def test_symlinks(self):
        real = self.path("real.db")
        make_db(real)
        link = self.path("link.db")
        os.symlink(real, link)
        rc, out, err = run(QUERY, b"--db", encode(link), b"coverage")
        self.assertEqual((rc, err), (0, b""))
        self.assertEqual(json.loads(out)["header"]["database"], link)
        os.symlink(self.path("loop-b"), self.path("loop-a"))
        os.symlink(self.path("loop-a"), self.path("loop-b"))
        for prog in (self.query_fails, self.record_fails):
            with self.subTest(prog=prog.__name__):
                prog(self.path("loop-a"), self.path("loop-a"))
        os.symlink(self.path("gone.db"), self.path("dangling.db"))
        self.query_fails(self.path("dangling.db"), "no database at")

    def test_directory_for_the_recorder_through_a_symlink(self):
        os.mkdir(self.path("d"))
        os.symlink(self.path("d"), self.path("d-link"))
        self.record_fails(self.path("d-link"), "directory")
        self.query_fails(self.path("d-link"), "directory")


@unittest.skipUnless(os.geteuid() == 0 and shutil.which("setpriv"), "needs root and setpriv to run as nobody")
class PermissionTest(Checks):
    """Files this user may not write or read, as nobody (root may do anything)."""

    def setUp(self):
        super().setUp()
        self.nobody, pw = as_nobody()
        os.chown(self.tmp, pw.pw_uid, pw.pw_gid)
        # Copies the nobody user can run, wherever the build tree lives.
        self.record = self.path("connhist-record")
        self.query = self.path("connhist-query")
        shutil.copy(RECORD, self.record)
        shutil.copy(QUERY, self.query)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid

    def run_as_nobody(self, program, *args):
        p = subprocess.run(self.nobody + [program] + list(args), capture_output=True, cwd=self.tmp, timeout=120,
                           env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.tmp})
        self.no_crash(p.returncode, p.stderr, args)
        return p.returncode, p.stdout, p.stderr

    def owned_db(self, name, mode):
        path = self.path(name)
        make_db(path)
        os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)
        return path

    def test_read_only_file(self):
        path = self.owned_db("ro.db", 0o400)
        before = read_bytes(path)
        rc, out, err = self.run_as_nobody(self.record, "--db", path, "--once")
        self.assertEqual((rc, out, err.count(b"\n")), (1, b"", 1), err)
        self.assertIn(b"read-only", err)
        self.assertIn(encode(path), err)
        self.assertEqual(read_bytes(path), before)
        rc, out, err = self.run_as_nobody(self.query, "--db", path, "coverage")
        self.assertEqual((rc, err), (0, b""))
        self.assertEqual(json.loads(out)["header"]["coverage"]["runs"], 1)

    def test_unreadable_file(self):
        path = self.owned_db("none.db", 0o000)
        for program, args in ((self.query, ["summary"]), (self.record, ["--once"])):
            with self.subTest(program=program):
                rc, out, err = self.run_as_nobody(program, "--db", path, *args)
                self.assertEqual((rc, out, err.count(b"\n")), (1, b"", 1), err)
                self.assertIn(encode(path), err)
                self.assertIn(b"Permission denied", err)

    def test_unwritable_directory(self):
        os.mkdir(self.path("locked"), 0o555)
        path = self.path("locked/new.db")
        rc, out, err = self.run_as_nobody(self.record, "--db", path, "--once")
        self.assertEqual((rc, out, err.count(b"\n")), (1, b"", 1), err)
        self.assertIn(encode(path), err)
        self.assertIn(b"cannot create database", err)
        self.assertIn(b"directory", err)
        self.assertEqual(os.listdir(self.path("locked")), [])


# Text nobody should put in a process name, yet anyone with the sqlite3 shell
# can: quotes, backslashes, every control character, JSON and JavaScript
# line separators, bytes that are not UTF-8 (overlong, surrogate, beyond
# U+10FFFF, cut short, stray continuation), a NUL, and 64 KiB of each kind.
HOSTILE = [
    'quote " apostrophe \' backslash \\ slash / \\u0000 \\n',
    "".join(chr(c) for c in range(1, 32)) + "\x7f",
    "line\u2028sep\u2029 \ufeffbom \U0001f600",
    b"\xff\xfe invalid",
    b"overlong \xc0\xaf \xe0\x80\xaf",
    b"surrogate \xed\xa0\x80 beyond \xf4\x90\x80\x80",
    b"cut short \xe2\x82",
    b"stray \x80\xbf continuation",
    b"before\x00after",
    "A" * 65536,
    ('"\\\x01\u00e9\u2028' * 20000)[:65536],
    (b"\xff\x01\"\\" * 16384),
]

REPORTS = [["connections"], ["listeners"], ["at", "1700000050"], ["port", "80"], ["process", "4242"],
           ["process", "*"], ["summary"], ["timeline"], ["coverage"],
           ["connections", "--process", "*\"*"], ["connections", "--state", "ESTABLISHED"]]


def hostile_db(path):
    """A real database whose text columns hold HOSTILE, one value per row."""
    make_db(path, with_rows=False)
    db = sqlite3.connect(path)

    def text(v):
        return sqlite3.Binary(v) if isinstance(v, bytes) else v

    n = len(HOSTILE)
    db.execute("INSERT INTO addrs(addr_id, addr) VALUES (1, '10.0.0.9')")
    for i, v in enumerate(HOSTILE):
        run_id = i + 1
        t = T0 + i * 10_000
        db.execute("INSERT INTO runs (run_id, started_at, ended_at, end_reason, mode, interval_ms, host, os,"
                   " sampler, version, pid, uid, notes) VALUES (?, ?, ?, CAST(? AS TEXT), 'continuous', 1000,"
                   " CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), ?, 0, CAST(? AS TEXT))",
                   (run_id, t, t + 5000, text(v), text(v), text(v), text(v), text(v), 100 + i, text(v)))
        db.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (?, ?, ?, 6)", (run_id, t, t + 5000))
        db.execute("INSERT INTO processes (pid, start_time, name, path, cmdline, uid, user, first_seen)"
                   " VALUES (4242, ?, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), 0, CAST(? AS TEXT), ?)",
                   (t, text(v), text(v), text(v), text(v), t))
        # Hostile text in the dictionaries too: an address, and the name of a code.
        db.execute("INSERT INTO codes(field, code, name) VALUES ('close_reason', ?, CAST(? AS TEXT))", (100 + i, text(v)))
        db.execute("INSERT INTO addrs(addr_id, addr) VALUES (?, CAST(? AS TEXT))", (1000 + i, text(v)))
        for j, (state, rport) in enumerate((("ESTABLISHED", 443), ("LISTEN", None))):
            lid = 2 * i + j + 1
            # states: unknown codes (14, 0) around a real one; a state change to an unknown code
            db.execute(
                "INSERT INTO lifetimes (lifetime_id, run_id, proto, family, local_addr_id, local_port,"
                " remote_addr_id, remote_port, state, states, first_seen, last_seen_after, closed_after,"
                " close_reason, proc_id, holders) VALUES (?, ?, 6, 4, ?, 80, ?, ?, ?, ?, ?, 4000, 5000,"
                " ?, (SELECT proc_id FROM processes WHERE pid = 4242 AND start_time = ?), 1)",
                (lid, run_id, 1000 + i, 1 if rport else None, rport, code(db, "state", state),
                 (14 * 16 + code(db, "state", state)) * 16 + 14, t, 100 + i, t))
            db.execute("INSERT INTO lifetime_blocks(block, min_first_seen, max_first_seen) VALUES (?, ?, ?) ON CONFLICT(block) DO UPDATE SET"
                       " min_first_seen = min(min_first_seen, excluded.min_first_seen),"
                       " max_first_seen = max(max_first_seen, excluded.max_first_seen)", (lid >> 12, t, t))
            db.execute("INSERT INTO state_changes VALUES (?, 10, 14)", (lid,))
    db.commit()
    db.close()
    return n


class HostileDataTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="connhist-hostile-")
        cls.db = os.path.join(cls.dir.name, "hostile.db")
        hostile_db(cls.db)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def report(self, mode, args):
        rc, out, err = run(QUERY, b"--db", encode(self.db), *[encode(a) for a in mode + args])
        self.assertEqual((rc, err), (0, b""), (mode, args))
        text = out.decode("utf-8", errors="strict")  # raises on any invalid byte

        def no_constants(name):
            raise ValueError("not JSON: " + name)

        if mode == ["--ndjson"]:
            docs = [json.loads(line, parse_constant=no_constants) for line in text.split("\n")[:-1]]
            self.assertTrue(text.endswith("\n"))
            self.assertIn("header", docs[0])
        else:
            docs = [json.loads(text, parse_constant=no_constants)]
        return text, docs

    def test_every_report_every_mode(self):
        outputs = 0
        for args in REPORTS:
            for mode in ([], ["--pretty"], ["--ndjson"]):
                with self.subTest(args=args, mode=mode):
                    self.report(mode, args)
                    outputs += 1
        self.assertEqual(outputs, len(REPORTS) * 3)

    def test_valid_text_comes_back_exactly(self):
        _, [doc] = self.report([], ["process", "4242"])
        names = [p["process"]["name"] for p in doc["processes"]] if "processes" in doc else None
        self.assertIsNotNone(names, list(doc))
        for v in HOSTILE:
            if isinstance(v, str):
                self.assertIn(v, names)
        # Invalid bytes become U+FFFD, the valid text around them stays.
        joined = "\n".join(names)
        self.assertIn("\ufffd invalid", joined)
        self.assertIn("before", joined)
        self.assertTrue(any(len(n) == 65536 and set(n) == {"A"} for n in names))

    def test_unknown_codes_are_null_and_names_valid_utf8(self):
        _, [doc] = self.report([], ["connections"])
        self.assertEqual(len(doc["lifetimes"]), 2 * len(HOSTILE))
        for l in doc["lifetimes"]:
            # code 14 is in no codes table: null, never a guessed name
            self.assertEqual(l["states"], [None, l["state"], None])
            self.assertIn(l["state"], ("ESTABLISHED", "LISTEN"))
            l["close_reason"].encode("utf-8", errors="strict")
            l["local_addr"].encode("utf-8", errors="strict")
        _, [doc] = self.report([], ["timeline"])
        changes = [e for e in doc["events"] if e["event"] == "state"]
        self.assertEqual(len(changes), 2 * len(HOSTILE))
        self.assertTrue(all(e["state"] is None for e in changes))


if __name__ == "__main__":
    if not (os.path.exists(RECORD) and os.path.exists(QUERY) and os.path.exists(SCHEMA)):
        sys.exit("set CONNHIST_RECORD, CONNHIST_QUERY and CONNHIST_SCHEMA")
    sys.exit(not unittest.main(exit=False).result.wasSuccessful())
