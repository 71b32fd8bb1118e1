"""Shared helpers for the integration tests: the programs under test, a
scratch directory, running the recorder and the query tool, and reading the
database with Python's own sqlite3 module (a second, independent reader).

The machine these tests run on is shared and may be loaded: samples come
late, ticks are skipped, a dump takes long. So waits fail only when nothing
moves any more (a hang, see STALL_SECONDS), never because something was
slow, and bounds on times come from what the run itself measured
(sample_pace), not from what an idle machine would do."""

import atexit
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

RECORD = os.environ.get("CONNHIST_RECORD", "connhist-record")
QUERY = os.environ.get("CONNHIST_QUERY", "connhist-query")
SCHEMA = os.environ.get("CONNHIST_SCHEMA", "schema/schema.sql")
# A command put in front of both programs, e.g. "valgrind --error-exitcode=99"
# (scripts/ci-sanitize.sh); empty to run them directly.
WRAPPER = shlex.split(os.environ.get("CONNHIST_WRAPPER", ""))

# A wait fails when what it waits on has made no progress for this long: a
# hang guard, not a speed limit.
STALL_SECONDS = 120


def now_ms():
    return int(time.time() * 1000)


_scratch_dirs = []


def scratch_dir(prefix="connhist-test-"):
    """A new directory for a test's files, removed when the test program
    ends, unless CONNHIST_KEEP_SCRATCH is set (to look at them after a
    failure)."""
    path = tempfile.mkdtemp(prefix=prefix)
    _scratch_dirs.append(path)
    return path


@atexit.register
def _remove_scratch_dirs():
    if os.environ.get("CONNHIST_KEEP_SCRATCH"):
        return
    for path in _scratch_dirs:
        shutil.rmtree(path, ignore_errors=True)


def run_record(db, *args, env=None, timeout=600):
    """Runs connhist-record to completion; returns the CompletedProcess."""
    cmd = WRAPPER + [RECORD] + (["--db", db] if db else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def start_record(db, *args, env=None, log=None):
    """Starts connhist-record; its stderr goes to the file log when given
    (readable while it runs, see read_log), else to a pipe read at the stop."""
    cmd = WRAPPER + [RECORD, "--db", db] + list(args)
    if log is None:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    else:
        with open(log, "w") as f:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=f, text=True, env=env)
    proc.log_path = log
    return proc


def read_log(proc):
    with open(proc.log_path) as f:
        return f.read()


def stop_record(proc, timeout=STALL_SECONDS):
    """SIGTERM, then (exit code, stdout, stderr)."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, read_log(proc) if getattr(proc, "log_path", None) else err


def wait_until(done, progress, what, stall=STALL_SECONDS):
    """Polls done() until it is true. Fails when progress() (a value that
    changes while the awaited thing is alive, such as a count of committed
    samples) has not changed for stall seconds."""
    last, since = progress(), time.monotonic()
    while not done():
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            raise AssertionError(f"{what}: no progress in {stall:.0f} s (stuck at {last!r})")
        time.sleep(0.05)


def run_samples(db, pid):
    """Samples committed so far by the run of the recorder process pid (0
    before its run row and schema exist)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as c:
            return c.execute("SELECT COALESCE(SUM(samples), 0) FROM heartbeats"
                             " WHERE run_id = (SELECT MAX(run_id) FROM runs WHERE pid = ?)", (pid,)).fetchone()[0]
    except sqlite3.Error:
        return 0


def wait_for_samples(db, count, proc, stall=STALL_SECONDS):
    """Waits until the run of the recorder process proc has taken count
    samples, however slowly; fails if it exits or stops committing."""
    def done():
        if proc.poll() is not None:
            err = read_log(proc) if getattr(proc, "log_path", None) else proc.stderr.read()
            raise AssertionError(f"recorder exited with {proc.returncode}: {err}")
        return run_samples(db, proc.pid) >= count
    wait_until(done, lambda: run_samples(db, proc.pid), f"recorder pid {proc.pid} taking {count} samples", stall)


def sample_pace(db, log="", run_id=None):
    """What a run measured of its own pace, in ms, to bound times with:
    (gap, dump). gap: the longest wait between two consecutive committed
    samples. Within a heartbeat span samples are at most two intervals
    apart (a longer wait starts a new span), so it is the larger of that
    and the longest wait between two spans. dump: the longest a sample took
    from the start of its dump until it was dated (+5 ms of clock
    granularity), from the 'sample: ... (dump D' lines of a --verbose log;
    a sample is dated when its dump is complete, so a socket it saw may
    have closed up to that long before. Without a log, 5."""
    where = "" if run_id is None else f" WHERE h.run_id = {int(run_id)}"
    spans = rows(db, "SELECT h.run_id, h.first_at, h.last_at, r.interval_ms FROM heartbeats h"
                 " JOIN runs r ON r.run_id = h.run_id" + where + " ORDER BY h.run_id, h.first_at")
    gap = max([2 * s["interval_ms"] for s in spans] or [0])
    for a, b in zip(spans, spans[1:]):
        if a["run_id"] == b["run_id"]:
            gap = max(gap, b["first_at"] - a["last_at"])
    dumps = [int(d) for d in re.findall(r"sample: .*\(dump (\d+)", log)]
    return gap, max(dumps, default=0) + 5


def query(db, *args, check=True):
    """Runs connhist-query and returns its parsed JSON."""
    cmd = WRAPPER + [QUERY] + (["--db", db] if db else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}: {p.stderr}")
    return json.loads(p.stdout)


def rows(db, sql, params=()):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        c.row_factory = sqlite3.Row
        return [dict(r) for r in c.execute(sql, params)]
    finally:
        c.close()  # a lingering reader would keep the recorder from checkpointing


def own_comm():
    with open("/proc/self/comm") as f:
        return f.read().strip()


# Writing lifetimes the way the recorder stores them (schema version 3), for
# tests that build a database by hand: addresses go through the addrs
# dictionary, names through the codes table of the database itself, times
# after first_seen become offsets, and lifetime_blocks bounds each block of
# ids. The arguments are what the views show (text names, absolute times).

def code(c, field, name):
    """The code of name in the codes table; an int is taken as a code already."""
    if name is None or isinstance(name, int):
        return name
    row = c.execute("SELECT code FROM codes WHERE field = ? AND name = ?", (field, name)).fetchone()
    if row is None:
        raise ValueError(f"no {field} named {name!r} in the codes table")
    return row[0]


def addr_id(c, addr):
    if addr is None:
        return None
    c.execute("INSERT OR IGNORE INTO addrs(addr) VALUES (?)", (addr,))
    return c.execute("SELECT addr_id FROM addrs WHERE addr = ?", (addr,)).fetchone()[0]


def pack_states(c, states):
    """'SYN_SENT,ESTABLISHED' (or a list of names or codes) as the states column."""
    names = states.split(",") if isinstance(states, str) else states
    packed = 0
    for n in names[:15]:
        packed = packed * 16 + code(c, "state", n)
    return packed


def add_lifetime(c, lifetime_id, first_seen, proto="tcp", family=4, local_addr="127.0.0.1", local_port=0,
                 remote_addr=None, remote_port=None, state="ESTABLISHED", states=None, last_seen=None,
                 closed_at=None, close_reason=None, pid=None, proc_start=None, holders=None, run_id=1, uid=None,
                 inode=None, cookie=None, seen_by=None, opened_after=None, bytes_sent=None, bytes_received=None,
                 owner_source=None):
    """Inserts one lifetime on connection c (not committed)."""
    proc_id = None
    if pid is not None:  # the owner: a processes row added before
        proc_id = c.execute("SELECT proc_id FROM processes WHERE pid = ? AND start_time = ?",
                            (pid, proc_start)).fetchone()[0]
        owner_source = owner_source or "socket"
    c.execute(
        "INSERT INTO lifetimes(lifetime_id, run_id, proto, family, local_addr_id, local_port, remote_addr_id,"
        " remote_port, state, states, first_seen, last_seen_after, closed_after, close_reason, proc_id,"
        " holders, owner_source, uid, inode, cookie, seen_by, opened_after, bytes_sent, bytes_received)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (lifetime_id, run_id, code(c, "proto", proto), family, addr_id(c, local_addr), local_port,
         addr_id(c, remote_addr), remote_port, code(c, "state", state),
         pack_states(c, states if states is not None else state), first_seen,
         None if last_seen is None else last_seen - first_seen,
         None if closed_at is None else closed_at - first_seen, code(c, "close_reason", close_reason), proc_id,
         holders, code(c, "owner_source", owner_source), uid, inode, cookie, code(c, "seen_by", seen_by),
         opened_after, bytes_sent, bytes_received))
    c.execute("INSERT INTO lifetime_blocks(block, min_first_seen, max_first_seen) VALUES (?, ?, ?)"
              " ON CONFLICT(block) DO UPDATE SET min_first_seen = min(min_first_seen, excluded.min_first_seen),"
              " max_first_seen = max(max_first_seen, excluded.max_first_seen)",
              (lifetime_id >> 12, first_seen, first_seen))


def add_state_change(c, lifetime_id, at, state):
    """Inserts a state change at absolute time at (ms) of a lifetime already added."""
    c.execute("INSERT INTO state_changes(lifetime_id, at, state)"
              " SELECT lifetime_id, ? - first_seen, ? FROM lifetimes WHERE lifetime_id = ?",
              (at, code(c, "state", state), lifetime_id))
