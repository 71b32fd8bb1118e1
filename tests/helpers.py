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
