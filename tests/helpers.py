"""Shared helpers for the integration tests: the programs under test, a
scratch directory, running the recorder and the query tool, and reading the
database with Python's own sqlite3 module (a second, independent reader)."""

import json
import os
import shlex
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


def now_ms():
    return int(time.time() * 1000)


def scratch_dir():
    return tempfile.mkdtemp(prefix="connhist-test-")


def run_record(db, *args, env=None, timeout=60):
    """Runs connhist-record to completion; returns the CompletedProcess."""
    cmd = WRAPPER + [RECORD] + (["--db", db] if db else []) + list(args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def start_record(db, *args, env=None):
    cmd = WRAPPER + [RECORD, "--db", db] + list(args)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def stop_record(proc, timeout=20):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for_samples(db, count, proc, timeout=20):
    """Waits until the run of the recorder process proc has taken count samples."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
                row = c.execute("SELECT COALESCE(SUM(samples), 0) FROM heartbeats"
                                " WHERE run_id = (SELECT MAX(run_id) FROM runs WHERE pid = ?)",
                                (proc.pid,)).fetchone()
                if row[0] >= count:
                    return
        except sqlite3.Error:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"recorder exited with {proc.returncode}: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"recorder did not take {count} samples in {timeout}s")


def query(db, *args, check=True):
    """Runs connhist-query and returns its parsed JSON."""
    cmd = WRAPPER + [QUERY] + (["--db", db] if db else []) + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
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
