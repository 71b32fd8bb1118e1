#!/usr/bin/env python3
"""What the tamper-evident chain (issue 16) costs, against the same build
with the chain off ($CONNHIST_CHAIN_OFF=1, for benchmarks only) or another
tree without it (--base-record, --base-genstore); see bench/README.md, "The
chain". Run it in its own network namespace (100,000 sockets).

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
import re
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


def recorders(a):
    """(name, exe, env) of the tick phase: the baseline first. Without
    --base-record the baseline is the same build with $CONNHIST_CHAIN_OFF=1
    (the store's statements without the digests): one tree, one run."""
    if a.base_record:
        base = ("base", a.base_record, None)
    else:
        base = ("base", a.record, dict(os.environ, CONNHIST_CHAIN_OFF="1"))
    return [base, ("chain", a.record, None)] + [(n, exe, None) for n, exe in (x.split("=", 1) for x in a.also)]


# Two-sided 95% quantiles of Student's t for 1..12 degrees of freedom (then ~2).
T95 = [12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18]


def paired(results, name):
    """Per round, name's CPU per tick over the baseline's of the same round,
    minus 1: (mean, standard deviation, half-width of the 95% interval)."""
    d = [c / b - 1 for (c, _), (b, _) in zip(results[name], results["base"])]
    if len(d) < 2:
        return d[0] if d else float("nan"), float("nan"), float("nan")
    sd = statistics.stdev(d)
    return statistics.mean(d), sd, T95[min(len(d) - 2, len(T95) - 1)] * sd / len(d) ** 0.5


def adjusted(results, name):
    """The chain's share with the rounds' changes per tick accounted for: a
    least-squares fit of CPU per tick = a + b * changes + d * (recorder is
    name), over the baseline's rounds and name's; returns d over the
    baseline's mean (a recorder that fell behind does more work a tick)."""
    pts = [(ch, 0.0, c) for c, ch in results["base"]] + [(ch, 1.0, c) for c, ch in results[name]]
    n = len(pts)
    if n < 4:
        return float("nan")
    # Normal equations of the 3-parameter fit, solved by Cramer's rule.
    sx = [[sum(p[i] * p[j] for p in pts) if i < 2 and j < 2 else 0 for j in range(2)] for i in range(2)]
    m = [[n, sum(p[0] for p in pts), sum(p[1] for p in pts)],
         [sum(p[0] for p in pts), sx[0][0], sum(p[0] * p[1] for p in pts)],
         [sum(p[1] for p in pts), sum(p[0] * p[1] for p in pts), sx[1][1]]]
    y = [sum(p[2] for p in pts), sum(p[0] * p[2] for p in pts), sum(p[1] * p[2] for p in pts)]

    def det(a):
        return (a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
                + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]))
    dm = det(m)
    if dm == 0:
        return float("nan")
    d = det([[m[r][0], m[r][1], y[r]] for r in range(3)]) / dm
    return d / statistics.mean(c for c, _ in results["base"])


def tick_phase(a):
    load = Load(a.sockets, a.sockets * a.churn_pct / 100.0)
    recs = recorders(a)
    results = {name: [] for name, _, _ in recs}
    try:
        time.sleep(2)
        for r in range(a.rounds):
            if a.together:  # every recorder over the same sockets at once: the same changes per tick
                running = {name: Recorder(exe, os.path.join(a.out, f"tick-{name}.db"), "1s", env)
                           for name, exe, env in recs}
                for name, rec in running.items():
                    rec.wait_ticks(a.ticks)
                for name, rec in running.items():
                    rec.stop()
                    cpu, changes = steady_cpu_ms(rec)
                    log(f"round {r + 1} {name}: {cpu:.1f} ms CPU per steady tick, {changes} changes per tick")
                    results[name].append((cpu, changes))
                continue
            # ABBA: every other round the chained recorder goes first, so a
            # load that drifts during the run favours neither.
            order = recs[:2] if r % 2 == 0 else recs[1::-1]
            for name, exe, env in order + recs[2:]:
                rec = Recorder(exe, os.path.join(a.out, f"tick-{name}.db"), "1s", env)
                rec.wait_ticks(a.ticks)
                rec.stop()
                cpu, changes = steady_cpu_ms(rec)
                log(f"round {r + 1} {name}: {cpu:.1f} ms CPU per steady tick, {changes} changes per tick,"
                    f" load {os.getloadavg()[0]:.1f}")
                results[name].append((cpu, changes))
    finally:
        load.stop()
    base = statistics.mean(c for c, _ in results["base"])
    chain = statistics.mean(c for c, _ in results["chain"])
    for name in results:
        log(f"{name}: mean {statistics.mean(c for c, _ in results[name]):.1f} ms per steady tick,"
            f" {(statistics.mean(c for c, _ in results[name]) - base) / base * 100:.1f}% over base")
    return {"base_ms": base, "chain_ms": chain, "share": (chain - base) / base,
            "paired": {name: paired(results, name) for name in results if name != "base"},
            "adjusted": {name: adjusted(results, name) for name in results if name != "base"},
            "changes": statistics.median(ch for _, ch in results["chain"]), "rounds": results}


# What perf's symbols belong to: the chain's code (recorder/chain.c, its
# codec and the digest wrapper), the hash library, SQLite, the kernel.
CHAIN_SYMS = re.compile(r"^(ch_chain_|ch_digest_|fn_(new|put|upd|row|change|fold|link|last)$|row_digest|fast_begin"
                        r"|table_arg|begin_txn|on_commit|put_u64|put_value|mset_)")


def perf_profile(a, name, exe, env):
    """perf record of one recorder's steady ticks: {category: share of samples}."""
    data = os.path.join(a.out, f"perf-{name}.data")
    rec = Recorder(exe, os.path.join(a.out, f"perf-{name}.db"), "1s", env)
    try:
        rec.wait_ticks(4)
        subprocess.run(["perf", "record", "-q", "-F", "499", "-p", str(rec.proc.pid), "-o", data, "--", "sleep",
                        str(a.perf)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        rec.stop()
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "dso,sym", "--stdio",
                          "--percent-limit", "0"], capture_output=True, text=True, check=True).stdout
    shares = {"chain code": 0.0, "libcrypto (SHA-256)": 0.0, "SQLite": 0.0, "kernel": 0.0, "other": 0.0}
    top = []
    for line in rep.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[(.)\]\s+(.*\S)", line)
        if not m:
            continue
        pct, dso, sym = float(m[1]), m[2], m[4]
        if m[3] == "k" or dso.startswith("[kernel"):
            cat = "kernel"
        elif "libcrypto" in dso:
            cat = "libcrypto (SHA-256)"
        elif "sqlite" in dso:
            cat = "SQLite"
        elif CHAIN_SYMS.search(sym):
            cat = "chain code"
        else:
            cat = "other"
        shares[cat] += pct
        top.append((pct, dso, sym))
    return shares, sorted(top, reverse=True)[:12]


def perf_phase(a):
    out = {}
    load = Load(a.sockets, a.sockets * a.churn_pct / 100.0)
    try:
        time.sleep(2)
        for name, exe, env in recorders(a)[:2]:
            out[name] = perf_profile(a, name, exe, env)
    finally:
        load.stop()
    return out


def run_cpu(cmd, env=None):
    """Runs cmd; returns the CPU (user + sys) seconds it used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def db_bytes(path):
    return sum(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))


def store_phase(a):
    out = {}
    off = dict(os.environ, CONNHIST_CHAIN_OFF="1")
    for name, exe, env in (("base", a.base_genstore or a.genstore, None if a.base_genstore else off),
                           ("chain", a.genstore, None)):
        path = os.path.join(a.out, f"gen-{name}.db")
        for s in ("", "-wal", "-shm"):
            if os.path.exists(path + s):
                os.remove(path + s)
        cpu = run_cpu([exe, "--out", path, "--lifetimes", str(a.lifetimes), "--seed", "1"], env)
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
    ap.add_argument("--base-record", help="connhist-record of a tree without the chain (default: --record with"
                    " $CONNHIST_CHAIN_OFF=1, the same build without its chain)")
    ap.add_argument("--query", required=True)
    ap.add_argument("--genstore", required=True)
    ap.add_argument("--base-genstore", help="connhist-genstore of a tree without the chain (default: --genstore"
                    " with $CONNHIST_CHAIN_OFF=1)")
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
    ap.add_argument("--perf", type=int, default=0, metavar="SECONDS",
                    help="also profile each recorder's steady ticks with perf for SECONDS (the chain's own share)")
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: tick,store,verify")
    a = ap.parse_args()
    skip = set(filter(None, a.skip.split(",")))
    os.makedirs(a.out, exist_ok=True)
    print(f"Machine: {os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")
    if "tick" not in skip:
        t = tick_phase(a)
        print(f"\nSteady tick at {a.sockets:,} sockets, {a.churn_pct}% churn/s ({t['changes']} changes per tick),"
              f" {a.ticks} ticks x {a.rounds} rounds each, {'together' if a.together else 'alternated'}:")
        print("| recorder | CPU per steady tick @ changes per tick, each round (ms) | mean |")
        print("|---|---|---|")
        for name in ("base", "chain"):
            each = ", ".join(f"{c:.1f} @ {ch}" for c, ch in t["rounds"][name])
            print(f"| {name} | {each} | {t[name + '_ms']:.1f} |")
        print(f"\nchain cost: {t['chain_ms'] - t['base_ms']:.1f} ms per tick = {100 * t['share']:.1f}% of the steady"
              f" tick (target <= 5%)")
        for name, (mean, sd, half) in t["paired"].items():
            verdict = ("met" if mean + half <= 0.05 else "missed" if mean - half > 0.05
                       else "not decided within the noise")
            print(f"{name} over base, round by round: mean {100 * mean:+.1f}%, sd {100 * sd:.1f}%, 95% interval"
                  f" {100 * (mean - half):+.1f}% to {100 * (mean + half):+.1f}% ({len(t['rounds'][name])} rounds):"
                  f" {verdict}")
            print(f"{name} over base at equal changes per tick (fit over all rounds): {100 * t['adjusted'][name]:+.1f}%")
    if a.perf:
        for name, (shares, top) in perf_phase(a).items():
            print(f"\nperf, {name} recorder, {a.perf} s of steady ticks: "
                  + ", ".join(f"{k} {v:.1f}%" for k, v in shares.items()))
            for pct, dso, sym in top:
                print(f"    {pct:5.2f}%  {dso}  {sym}")
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
