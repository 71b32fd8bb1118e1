"""The cost of connhist-query export --format ecs (issue 15's targets): a
benchmark, not a test; it asserts nothing and is not in ctest.

1. Rate: a plain export of a connhist-genstore database (the recorder's own
   store code, 1,000,000 lifetimes by default) to a file, best of --runs.
   Reports lifetimes per second of wall-clock time and of CPU time (user +
   system of the export process), and the bytes written.
2. Follow: connhist-record at its default 1 s interval on a fresh database
   and export --follow --cursor --output on it, both for --follow-seconds;
   reports the CPU share of the export (utime + stime from /proc/PID/stat
   over the wall-clock span) next to the recorder's. With --idle (root) the
   recorder watches a network namespace of its own where nothing happens:
   the cost of following an idle machine, whatever else the host is doing.

    python3 bench/export_bench.py --build build-gcc [--lifetimes N] [--out DIR]

Read the figures with the machine's load in mind (uptime is printed): on a
busy shared machine the wall-clock rate is what the export got, not what it
needs; the CPU-time rate is closer to that.
"""

import argparse
import os
import resource
import subprocess
import sys
import time


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(args, db):
    out = os.path.join(args.out, "export.ndjson")
    best = None
    for _ in range(args.runs):
        if os.path.exists(out):
            os.remove(out)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        subprocess.run([args.query, "--db", db, "export", "--format", "ecs", "--output", out], check=True)
        wall = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if best is None or wall < best[0]:
            best = (wall, cpu, os.path.getsize(out))
    with open(out, "rb") as f:
        lines = sum(1 for _ in f)
    wall, cpu, size = best
    print(f"export: {lines} lifetimes, {size / 1e6:.0f} MB, best of {args.runs}: {wall:.2f} s wall "
          f"({lines / wall:,.0f} lifetimes/s), {cpu:.2f} s CPU ({lines / cpu:,.0f} lifetimes/s of CPU)")


def follow(args):
    db = os.path.join(args.out, "follow.db")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    cursor, out = os.path.join(args.out, "follow.cursor"), os.path.join(args.out, "follow.ndjson")
    for p in (cursor, out):
        if os.path.exists(p):
            os.remove(p)
    # --idle: the recorder in a network namespace of its own (root), where
    # nothing opens or closes: what following costs when nothing happens.
    wrap = ["unshare", "--net"] if args.idle else []
    rec = subprocess.Popen(wrap + [args.record, "--db", db, "--events", "off"], stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(db):
            time.sleep(0.1)
        time.sleep(2)
        exp = subprocess.Popen([args.query, "--db", db, "export", "--format", "ecs", "--follow", "--cursor", cursor,
                                "--output", out])
        time.sleep(3)  # past the first pass (all that was recorded so far)
        t0, e0, r0 = time.monotonic(), cpu_seconds(exp.pid), cpu_seconds(rec.pid)
        time.sleep(args.follow_seconds)
        t1, e1, r1 = time.monotonic(), cpu_seconds(exp.pid), cpu_seconds(rec.pid)
        exp.terminate()
        exp.wait()
    finally:
        rec.terminate()
        rec.wait()
    span = t1 - t0
    with open(out, "rb") as f:
        docs = sum(1 for _ in f)
    where = "an empty network namespace" if args.idle else "this machine"
    print(f"follow ({where}, {docs} documents): {span:.0f} s at the recorder's 1 s interval: export --follow {100 * (e1 - e0) / span:.2f}% "
          f"of a CPU ({e1 - e0:.2f} s), recorder {100 * (r1 - r0) / span:.2f}% ({r1 - r0:.2f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="the CMake build directory (default: build)")
    ap.add_argument("--lifetimes", type=int, default=1000000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--follow-seconds", type=int, default=60)
    ap.add_argument("--out", default="/tmp/connhist-export-bench")
    ap.add_argument("--skip", choices=["rate", "follow"], action="append", default=[])
    ap.add_argument("--idle", action="store_true", help="record an empty network namespace (needs root)")
    args = ap.parse_args()
    args.query = os.path.join(args.build, "query", "connhist-query")
    args.record = os.path.join(args.build, "recorder", "connhist-record")
    os.makedirs(args.out, exist_ok=True)
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), file=sys.stderr)
    if "rate" not in args.skip:
        db = os.path.join(args.out, f"genstore-{args.lifetimes}.db")
        if not os.path.exists(db):
            subprocess.run([os.path.join(args.build, "bench", "connhist-genstore"), "--out", db, "--lifetimes",
                            str(args.lifetimes)], check=True, stdout=subprocess.DEVNULL)
        rate(args, db)
    if "follow" not in args.skip:
        follow(args)


if __name__ == "__main__":
    main()
