"""The cost of connhist-query export --format ecs (issue 15's targets): a
benchmark, not a test; it asserts nothing and is not in ctest.

1. Rate: a plain export of a connhist-genstore database (the recorder's own
   store code, 1,000,000 lifetimes by default) to a file, best of --runs.
   Reports lifetimes per second of wall-clock time and of CPU time (user +
   system of the export process), and the bytes written. Then the same on a
   copy of the database with DNS answers added (add_answers: each
   connection resolved just before it opened, a fifth through a CNAME, half
   by its own process), where every lifetime's destination.domain is
   looked up; and `--ndjson connections` over both (its remote_names use
   the same join). The answer documents of the export are counted apart.
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
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import time


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def add_answers(src, dst):
    """A copy of the genstore database src at dst with DNS answers: before
    each lifetime with a remote address, an answer for that address 500 ms
    earlier (TTL 300 s), deduplicated as the recorder does (a repeat while
    in force extends the row). Address k is answered for host-k.example.com,
    or for one address in five for www-k.example.com, a CNAME to
    edge-k.cdn.example.net; the asking process is the lifetime's for every
    other address, unknown otherwise."""
    if os.path.exists(dst):
        return
    tmp = dst + ".tmp"
    shutil.copyfile(src, tmp)
    db = sqlite3.connect(tmp)
    c = db.cursor()
    c.execute("INSERT OR IGNORE INTO addrs(addr) VALUES ('127.0.0.53'), ('127.0.0.1')")
    resolver, client = (c.execute("SELECT addr_id FROM addrs WHERE addr = ?", (a,)).fetchone()[0]
                        for a in ("127.0.0.53", "127.0.0.1"))
    run_id = c.execute("SELECT MIN(run_id) FROM runs").fetchone()[0]
    names = {}

    def name_id(name):
        if name not in names:
            c.execute("INSERT INTO dns_names(name) VALUES (?)", (name,))
            names[name] = c.lastrowid
        return names[name]

    live = {}  # addr_id -> [row, first_seen, expires]
    rows = []
    for addr, at, proc in db.execute("SELECT remote_addr_id, first_seen, proc_id FROM lifetimes"
                                     " WHERE remote_addr_id IS NOT NULL ORDER BY first_seen").fetchall():
        t = at - 500
        cur = live.get(addr)
        if cur is not None and cur[2] >= t:
            row = rows[cur[0]]
            row["last"] = t - row["first"]
            row["expires"] = t + 300000 - row["first"]
            row["times"] += 1
            cur[2] = t + 300000
            continue
        cname = addr % 5 == 0
        q = name_id(f"www-{addr}.example.com" if cname else f"host-{addr}.example.com")
        r = name_id(f"edge-{addr}.cdn.example.net") if cname else q
        row = {"q": q, "r": r, "addr": addr, "first": t, "last": 0, "expires": 300000, "times": 1,
               "proc": proc if addr % 2 == 0 else None}
        live[addr] = [len(rows), t, t + 300000]
        rows.append(row)
    for row in rows:
        common = (row["first"], row["last"], row["expires"], row["times"], resolver, client, row["proc"], run_id)
        if row["q"] != row["r"]:
            c.execute("INSERT INTO dns_answers(qname_id, rname_id, type, qtype, addr_id, target_id, ttl, first_seen,"
                      " last_seen_after, expires_after, times_seen, resolver_addr_id, client_addr_id, client_port,"
                      " proto, proc_id, run_id) VALUES (?, ?, 5, 1, NULL, ?, 300, ?, ?, ?, ?, ?, ?, 40000, 17, ?, ?)",
                      (row["q"], row["q"], row["r"]) + common)
        c.execute("INSERT INTO dns_answers(qname_id, rname_id, type, qtype, addr_id, target_id, ttl, first_seen,"
                  " last_seen_after, expires_after, times_seen, resolver_addr_id, client_addr_id, client_port,"
                  " proto, proc_id, run_id) VALUES (?, ?, 1, 1, ?, NULL, 300, ?, ?, ?, ?, ?, ?, 40000, 17, ?, ?)",
                  (row["q"], row["r"], row["addr"]) + common)
    db.commit()
    db.close()
    os.rename(tmp, dst)


def timed(cmd):
    """(wall s, CPU s) of one run of cmd."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run(cmd, check=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def rate(args, db, what):
    out = os.path.join(args.out, "export.ndjson")
    best = None
    for _ in range(args.runs):
        if os.path.exists(out):
            os.remove(out)
        wall, cpu = timed([args.query, "--db", db, "export", "--format", "ecs", "--output", out])
        if best is None or cpu < best[1]:
            best = (wall, cpu, os.path.getsize(out))
    lines = domains = answers = 0
    with open(out, "rb") as f:
        for line in f:
            doc = json.loads(line)
            if doc["event"]["dataset"] == "connhist.dns":
                answers += 1
                continue
            lines += 1
            domains += any("domain" in doc.get(end, {}) for end in ("source", "destination"))
    wall, cpu, size = best
    print(f"export ({what}): {lines} lifetimes ({domains} with a domain) and {answers} answers, {size / 1e6:.0f} MB,"
          f" least CPU of {args.runs}: {cpu:.2f} s CPU ({lines / cpu:,.0f} lifetimes/s of CPU), {wall:.2f} s wall"
          f" ({lines / wall:,.0f} lifetimes/s)")


def ndjson_rate(args, db, what):
    out = os.path.join(args.out, "connections.ndjson")
    best = None
    for _ in range(args.runs):
        with open(out, "wb") as f:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.monotonic()
            subprocess.run([args.query, "--db", db, "--ndjson", "connections", "--since", "0"], check=True, stdout=f)
            wall = time.monotonic() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if best is None or cpu < best[1]:
            best = (wall, cpu)
    lines = named = 0
    with open(out, "rb") as f:
        for line in f:
            doc = json.loads(line)
            if "lifetime" in doc or "remote_names" in doc:
                lt = doc.get("lifetime", doc)
                lines += 1
                named += bool(lt.get("remote_names"))
    wall, cpu = best
    print(f"--ndjson connections ({what}): {lines} lifetimes ({named} with remote_names), least CPU of {args.runs}:"
          f" {cpu:.2f} s CPU ({lines / cpu:,.0f} lifetimes/s of CPU), {wall:.2f} s wall ({lines / wall:,.0f}/s)")


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
    ap.add_argument("--skip", choices=["rate", "ndjson", "follow"], action="append", default=[])
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
        named = os.path.join(args.out, f"genstore-{args.lifetimes}-names.db")
        add_answers(db, named)
        rate(args, db, "no DNS answers")
        rate(args, named, "DNS answers")
    if "ndjson" not in args.skip:
        db = os.path.join(args.out, f"genstore-{args.lifetimes}.db")
        ndjson_rate(args, db, "no DNS answers")
        ndjson_rate(args, os.path.join(args.out, f"genstore-{args.lifetimes}-names.db"), "DNS answers")
    if "follow" not in args.skip:
        follow(args)


if __name__ == "__main__":
    main()
