#!/usr/bin/env python3
"""The DNS names benchmark (issue 14), as root on Linux:

  python3 bench/names.py --record build-bench/recorder/connhist-record --query build-bench/query/connhist-query

In network and mount namespaces of its own (tests/names_fixture.py: dnsmasq
on 127.0.0.1:53 with no upstream servers, glibc's resolver as the client)
it measures, against the targets of the issue:

1. name carried: N names, each answered with an address of its own; a
   client resolves each (getaddrinfo) and connects to the answer; the share
   of those connections whose remote_names starts with the name asked
   (target: at least 99.9%);
2. bytes per repeated answer: the same names asked again R times each from
   one UDP socket (no new sockets to record); growth of the database's
   used pages divided by the repeats (target: at most 40 bytes);
3. flood: 20,000 DNS responses per second sent from port 53 to a local
   port for --flood-seconds; the recorder's CPU (utime + stime from /proc)
   against the same time without the flood, its peak memory, and what it
   dropped (target: at most 10% of one core).

Prints one table; asserts nothing."""

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
os.environ.setdefault("CONNHIST_RECORD", "connhist-record")

import names_fixture  # noqa: E402


def args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--record", required=True)
    p.add_argument("--query", required=True)
    p.add_argument("--names", type=int, default=2000, help="names resolved and connected to (default 2000)")
    p.add_argument("--repeats", type=int, default=5, help="times each name is asked again (default 5)")
    p.add_argument("--flood-rate", type=int, default=20000, help="responses per second (default 20000)")
    p.add_argument("--flood-seconds", type=float, default=10.0)
    p.add_argument("--interval", default="1s", help="the recorder's --interval (default 1s)")
    return p.parse_args()


def used_bytes(db):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        pages, free, size = (c.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_count", "freelist_count",
                                                                                  "page_size"))
        return (pages - free) * size
    finally:
        c.close()


def samples(db):
    try:
        c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return 0  # not created yet
    try:
        return c.execute("SELECT COALESCE(SUM(samples), 0) FROM heartbeats").fetchone()[0]
    except sqlite3.Error:
        return 0
    finally:
        c.close()


def settle(db, n=3):
    """Waits for n more committed samples."""
    start = samples(db)
    while samples(db) < start + n:
        time.sleep(0.05)


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def addr_of(i):
    return f"127.1.{i // 250}.{i % 250 + 1}"


def carried(a, db, n):
    """Resolves and connects to n names; the share carrying the name asked."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", 0))
    server.listen(4096)
    port = server.getsockname()[1]
    clients, socks = {}, []
    for i in range(n):
        addr = names_fixture.resolve(f"n{i}.bench.test")
        c = socket.create_connection((addr, port))
        clients[(c.getsockname()[1], addr)] = f"n{i}.bench.test"
        socks.append(c)
        try:
            server.accept()[0].close()
        except OSError:
            pass
    settle(db)
    out = subprocess.run([a.query, "--db", db, "--ndjson", "connections", "--remote-port", str(port)],
                         capture_output=True, text=True, check=True).stdout
    ok = seen = 0
    for line in out.splitlines()[1:]:
        lt = json.loads(line)
        name = clients.get((lt["local_port"], lt["remote_addr"]))
        if name is None:
            continue
        seen += 1
        ok += bool(lt["remote_names"]) and lt["remote_names"][0] == name
    for c in socks:
        c.close()
    server.close()
    return ok, seen, len(clients)


def repeats(a, db, n, r):
    """Bytes of database per repeated answer."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", 53))
    s.settimeout(5)
    for i in range(n):  # the first answers to this socket (its process is another key): new rows
        s.send(names_fixture.dns_query(f"n{i}.bench.test", qid=i & 0xffff))
        s.recv(512)
    settle(db)
    before = used_bytes(db)
    for _ in range(r):
        for i in range(n):
            s.send(names_fixture.dns_query(f"n{i}.bench.test", qid=i & 0xffff))
            s.recv(512)
    settle(db)
    after = used_bytes(db)
    s.close()
    return (after - before) / (n * r), after - before


def flood(a, rec, db, rate, seconds):
    """The recorder's CPU with and without a flood of responses."""
    hz = os.sysconf("SC_CLK_TCK")
    # Real responses of the resolver, replayed from another address's port 53.
    q = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    q.connect(("127.0.0.1", 53))
    msgs = []
    for i in range(200):
        q.send(names_fixture.dns_query(f"n{i}.bench.test", qid=i))
        msgs.append(q.recv(512))
    q.close()
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 12)  # never read: the kernel drops
    src = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    src.bind(("127.0.0.2", 53))
    dst = sink.getsockname()

    def window(send):
        t0, c0 = time.monotonic(), cpu_ticks(rec.pid)
        sent, batch = 0, max(1, rate // 200)
        while time.monotonic() - t0 < seconds:
            if send:
                due = int((time.monotonic() - t0) * rate)
                while sent < due:
                    for _ in range(batch):
                        src.sendto(msgs[sent % len(msgs)], dst)
                        sent += 1
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        return (cpu_ticks(rec.pid) - c0) / hz / elapsed, sent / elapsed

    quiet, _ = window(False)
    loud, sent_rate = window(True)
    settle(db)
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    dropped = c.execute("SELECT names_dropped FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()[0]
    c.close()
    return quiet, loud, sent_rate, dropped, peak_kib(rec.pid)


def main():
    a = args()
    os.environ["CONNHIST_RECORD"] = a.record
    why = names_fixture.enter_namespace()
    if why:
        sys.exit(f"names benchmark: {why}")
    d = tempfile.mkdtemp(prefix="connhist-names-bench-")
    hosts = os.path.join(d, "hosts")
    with open(hosts, "w") as f:
        for i in range(a.names):
            f.write(f"{addr_of(i)} n{i}.bench.test\n")
    resolver = names_fixture.Resolver(f"--addn-hosts={hosts}", ttl=600)
    db = os.path.join(d, "connhist.db")
    rec = subprocess.Popen([a.record, "--db", db, "--interval", a.interval, "--names", "on", "--events", "off"],
                           stderr=subprocess.DEVNULL)
    try:
        while samples(db) < 2:
            time.sleep(0.05)
        ok, seen, asked = carried(a, db, a.names)
        per, grew = repeats(a, db, a.names, a.repeats)
        quiet, loud, sent, dropped, peak = flood(a, rec, db, a.flood_rate, a.flood_seconds)
    finally:
        rec.terminate()
        rec.wait()
        resolver.stop()
    rate = 100.0 * ok / asked if asked else 0.0
    print("| measure | value | target |")
    print("| --- | --- | --- |")
    print(f"| connections carrying the name asked | {ok} of {asked} ({rate:.2f}%; {seen} recorded) | >= 99.9% "
          f"{'met' if rate >= 99.9 else 'MISSED'} |")
    print(f"| database bytes per repeated answer | {per:.2f} ({grew} bytes for {a.names * a.repeats} repeats) | <= 40 "
          f"{'met' if per <= 40 else 'MISSED'} |")
    cost = 100.0 * (loud - quiet)
    print(f"| recorder CPU, {sent:,.0f} responses/s | {100 * loud:.1f}% of a core ({100 * quiet:.1f}% without: "
          f"+{cost:.1f}%) | <= 10% {'met' if cost <= 10 else 'MISSED'} |")
    print(f"| answers dropped in the flood | {dropped} | counted (runs.names_dropped) |")
    print(f"| recorder peak memory (VmHWM) | {peak / 1024:.1f} MiB | bounded |")


if __name__ == "__main__":
    main()
