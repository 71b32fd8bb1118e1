#!/usr/bin/env python3
"""What the tamper-evident chain (issue 16) costs, against the same tree
without it (see bench/README.md, "The chain"). Run through bench/chain.sh,
which builds both.

  tick    the recorder's steady tick at N sockets with 1% churn per second
          (bench.py's loopback load): CPU per tick of the baseline and of
          the chained recorder, alternated over the same load, round after
          round, on fresh databases
  store   connhist-genstore (the recorder's tracker and store over a
          simulated busy server) with and without the chain: CPU per
          lifetime written and database bytes per lifetime
  verify  connhist-query verify on the chained generated database:
          lifetimes checked per second

A benchmark: it asserts nothing. Targets: chain <= 5% of the steady tick's
CPU, <= 16 bytes per lifetime, verify >= 1,000,000 lifetimes/s.
"""
import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import Load, Recorder, log  # noqa: E402


def steady_cpu_ms(rec, first=3):
    """Mean CPU per tick over ticks first..last (bench.py's steady ticks)."""
    t = rec.ticks
    n = len(t) - 1 - (first - 1)
    return (t[-1][4] - t[first - 1][4]) / n, statistics.median(x[2] for x in t[first:])


def tick_phase(a):
    load = Load(a.sockets, a.sockets * a.churn_pct / 100.0)
    others = [tuple(x.split("=", 1)) for x in a.also]
    results = {name: [] for name in ["base", "chain"] + [n for n, _ in others]}
    try:
        time.sleep(2)
        for r in range(a.rounds):
            if a.together:  # every recorder over the same sockets at once: the same changes per tick
                recs = {name: Recorder(exe, os.path.join(a.out, f"tick-{name}.db"), "1s")
                        for name, exe in [("base", a.base_record), ("chain", a.record)] + others}
                for name, rec in recs.items():
                    rec.wait_ticks(a.ticks)
                for name, rec in recs.items():
                    rec.stop()
                    cpu, changes = steady_cpu_ms(rec)
                    log(f"round {r + 1} {name}: {cpu:.1f} ms CPU per steady tick, {changes} changes per tick")
                    results[name].append((cpu, changes))
                continue
            for name, exe in [("base", a.base_record), ("chain", a.record)] + others:
                rec = Recorder(exe, os.path.join(a.out, f"tick-{name}.db"), "1s")
                rec.wait_ticks(a.ticks)
                rec.stop()
                cpu, changes = steady_cpu_ms(rec)
                log(f"round {r + 1} {name}: {cpu:.1f} ms CPU per steady tick, {changes} changes per tick")
                results[name].append((cpu, changes))
    finally:
        load.stop()
    base = statistics.mean(c for c, _ in results["base"])
    chain = statistics.mean(c for c, _ in results["chain"])
    for name in results:
        log(f"{name}: mean {statistics.mean(c for c, _ in results[name]):.1f} ms per steady tick,"
            f" {(statistics.mean(c for c, _ in results[name]) - base) / base * 100:.1f}% over base")
    return {"base_ms": base, "chain_ms": chain, "share": (chain - base) / base,
            "changes": statistics.median(ch for _, ch in results["chain"]), "rounds": results}


def run_cpu(cmd):
    """Runs cmd; returns the CPU (user + sys) seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def db_bytes(path):
    return sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))


def store_phase(a):
    out = {}
    for name, exe in (("base", a.base_genstore), ("chain", a.genstore)):
        path = os.path.join(a.out, f"gen-{name}.db")
        for s in ("", "-wal", "-shm"):
            if os.path.exists(path + s):
                os.remove(path + s)
        cpu = run_cpu([exe, "--out", path, "--lifetimes", str(a.lifetimes), "--seed", "1"])
        c = sqlite3.connect(path)
        n = c.execute("SELECT COUNT(*) FROM lifetimes").fetchone()[0]
        links = c.execute("SELECT COUNT(*) FROM chain_links").fetchone()[0] if name == "chain" else 0
        c.close()
        out[name] = {"cpu_s": cpu, "bytes": db_bytes(path), "lifetimes": n, "links": links, "path": path}
        log(f"genstore {name}: {n:,} lifetimes, {cpu:.1f} s CPU, {out[name]['bytes']:,} bytes")
    return out


def verify_phase(a, path):
    times = []
    for _ in range(3):
        t0 = time.monotonic()
        p = subprocess.run([a.query, "--db", path, "verify"], capture_output=True, text=True)
        times.append(time.monotonic() - t0)
        if p.returncode != 0:
            raise RuntimeError(f"verify exited {p.returncode}: {p.stdout[:500]} {p.stderr}")
    c = sqlite3.connect(path)
    n = c.execute("SELECT COUNT(*) FROM lifetimes").fetchone()[0]
    rows = c.execute("SELECT rows FROM chain_links ORDER BY seq DESC LIMIT 1").fetchone()[0]
    c.close()
    best = min(times)
    return {"lifetimes": n, "rows": rows, "seconds": statistics.median(times), "best": best,
            "per_s": n / statistics.median(times)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--record", required=True)
    ap.add_argument("--base-record", required=True, help="connhist-record of the tree without the chain")
    ap.add_argument("--query", required=True)
    ap.add_argument("--genstore", required=True)
    ap.add_argument("--base-genstore", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--sockets", type=int, default=100000)
    ap.add_argument("--churn-pct", type=float, default=1.0)
    ap.add_argument("--ticks", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--lifetimes", type=int, default=1000000)
    ap.add_argument("--also", action="append", default=[], metavar="NAME=EXE",
                    help="another recorder in the tick phase's rounds (e.g. an earlier chained build)")
    ap.add_argument("--together", action="store_true",
                    help="tick: run the recorders at the same time over the same load (the same changes per tick)"
                         " rather than one after the other")
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: tick,store,verify")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    os.makedirs(a.out, exist_ok=True)
    print(f"Machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")
    if "tick" not in skip:
        t = tick_phase(a)
        print(f"\nSteady tick at {a.sockets:,} sockets, {a.churn_pct}% churn/s ({t['changes']} changes per tick),"
              f" {a.ticks} ticks x {a.rounds} rounds each, alternated:")
        print("| recorder | CPU per steady tick, each round (ms) | mean |")
        print("|---|---|---|")
        for name in ("base", "chain"):
            each = ", ".join(f"{c:.1f}" for c, _ in t["rounds"][name])
            print(f"| {name} | {each} | {t[name + '_ms']:.1f} |")
        print(f"\nchain cost: {t['chain_ms'] - t['base_ms']:.1f} ms per tick = {100 * t['share']:.1f}% of the steady"
              f" tick (target <= 5%)")
    s = None
    if "store" not in skip:
        s = store_phase(a)
        b, c = s["base"], s["chain"]
        per = (c["bytes"] - b["bytes"]) / c["lifetimes"]
        cpu_us = (c["cpu_s"] - b["cpu_s"]) / c["lifetimes"] * 1e6
        print(f"\nGenerated database, {c['lifetimes']:,} lifetimes, {c['links']:,} links:")
        print("| store | CPU s | bytes | bytes per lifetime |")
        print("|---|---|---|---|")
        for name in ("base", "chain"):
            x = s[name]
            print(f"| {name} | {x['cpu_s']:.1f} | {x['bytes']:,} | {x['bytes'] / x['lifetimes']:.1f} |")
        print(f"\nchain: {per:.1f} bytes per lifetime (target <= 16), {cpu_us:.2f} us CPU per lifetime written")
    if "verify" not in skip:
        path = s["chain"]["path"] if s else os.path.join(a.out, "gen-chain.db")
        v = verify_phase(a, path)
        print(f"\nverify: {v['lifetimes']:,} lifetimes ({v['rows']:,} chained rows) in {v['seconds']:.2f} s"
              f" (median of 3, best {v['best']:.2f} s) = {v['per_s']:,.0f} lifetimes/s (target >= 1,000,000)")


if __name__ == "__main__":
    main()
