#!/usr/bin/env python3
"""How many closed TCP sockets name their owner, the right one, with the
kernel's final byte counts (issue 13), against the kernel's own record of
the same sockets (bench/tcp_truth.bt, bpftrace on the sock:inet_sock_set_state
tracepoint); and what the recorder with its event source costs a workload
of short connections. Root only (BPF). See bench/README.md, "Owners".

    sh bench/run.sh --owners [--events off] [--skip accuracy|cost]
    python3 bench/owners.py --record connhist-record --churn connhist-churn [--seconds 10] [--rate 300]

Workers (run by the driver itself):
    owners.py serve HOST              accept; read the header and as many bytes as it asks,
                                      send as many back; close first when it says so
    owners.py client RATE SECONDS LOG HOST:PORT...
                                      RATE connections a second (0: as fast as it can),
                                      over IPv4 and IPv6 in turn, known sizes
"""
import argparse
import os
import signal
import socket
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def serve(host):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    l = socket.socket(fam)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind((host, 0))
    l.listen(4096)
    print(l.getsockname()[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        a, _ = l.accept()
        head = recv_exactly(a, 9)
        if len(head) < 9:
            a.close()
            continue
        n, m, server_first = struct.unpack("!IIB", head)
        recv_exactly(a, n)
        a.sendall(b"s" * m)
        if not server_first:
            recv_exactly(a, 1)  # the client's close (EOF)
        a.close()


def recv_exactly(s, n):
    got = bytearray()
    while len(got) < n:
        chunk = s.recv(min(65536, n - len(got)))
        if not chunk:
            break
        got += chunk
    return bytes(got)


def client(rate, seconds, log, targets):
    """Connections at rate a second (0: back to back) for seconds, in turn to
    each target; the i-th sends n_i bytes and asks for m_i back, and every
    other one lets the server close first. One log line per connection."""
    ends = []
    for t in targets:
        host, port = t.rsplit(":", 1)
        ends.append((host.strip("[]"), int(port)))
    out = open(log, "w")
    start = time.monotonic()
    i = 0
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        if rate > 0:
            due = start + i / rate
            if due > now:
                time.sleep(due - now)
        host, port = ends[i % len(ends)]
        n, m = (i * 7919) % 65536, (i * 104729) % 16384
        if rate == 0:
            n, m = 1, 1
        server_first = i % 2
        c = socket.create_connection((host, port))
        c.sendall(struct.pack("!IIB", n, m, server_first) + b"c" * n)
        recv_exactly(c, m)
        if server_first:
            c.recv(1)  # its FIN
        cport = c.getsockname()[1]
        c.close()
        out.write(f"{host} {cport} {port} {n} {m} {server_first}\n")
        i += 1
    out.close()
    print(i, flush=True)


# ---- the driver -------------------------------------------------------------


def log(msg):
    print(f"owners: {msg}", file=sys.stderr, flush=True)


def mount_tracefs():
    if not os.path.exists("/sys/kernel/tracing/events"):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=False)
    return os.path.exists("/sys/kernel/tracing/events/sock/inet_sock_set_state")


def samples(db, pid):
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("SELECT COALESCE(SUM(samples), 0) FROM heartbeats WHERE run_id ="
                             " (SELECT MAX(run_id) FROM runs WHERE pid = ?)", (pid,)).fetchone()[0]
    except sqlite3.Error:
        return 0


def wait_samples(db, proc, n, timeout=120):
    deadline = time.monotonic() + timeout
    while samples(db, proc.pid) < n:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"owners: the recorder did not take {n} samples: {proc.stderr.read()}")
        time.sleep(0.05)


def start_recorder(a, db, events):
    p = subprocess.Popen([a.record, "--db", db, "--interval", "1s", "--events", events],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_samples(db, p, 2)
    return p


def written(db):
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
        return c.execute("SELECT COUNT(*), COUNT(bytes_sent), COUNT(closed_after) FROM lifetimes").fetchone()


def stop_recorder(db, p, settle=60):
    """Stops the recorder once two samples in a row wrote nothing new (the
    last announcements are in; a loaded machine delays them), at most
    settle seconds after the workload. Returns its peak RSS, KiB."""
    wait_samples(db, p, samples(db, p.pid) + 2)
    deadline, last, quiet = time.monotonic() + settle, written(db), 0
    while quiet < 2 and time.monotonic() < deadline:
        wait_samples(db, p, samples(db, p.pid) + 1)
        now = written(db)
        quiet = quiet + 1 if now == last else 0
        last = now
    with open(f"/proc/{p.pid}/status") as f:
        hwm = next(int(x.split()[1]) for x in f if x.startswith("VmHWM:"))
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=120)
    return hwm


def servers():
    procs, targets = [], []
    for host in ("127.0.0.1", "::1"):
        p = subprocess.Popen([sys.executable, __file__, "serve", host], stdout=subprocess.PIPE, text=True)
        port = int(p.stdout.readline())
        procs.append(p)
        targets.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return procs, targets


def run_client(rate, seconds, targets, logfile):
    p = subprocess.Popen([sys.executable, __file__, "client", str(rate), str(seconds), logfile] + targets,
                         stdout=subprocess.PIPE, text=True)
    n = int(p.stdout.readline())
    p.wait()
    return p.pid, n


def truth_lines(path, ports):
    """The kernel's lines of the workload's sockets: (family, local, lport, remote, rport) -> list."""
    out = {}
    with open(path) as f:
        for line in f:
            w = line.split()
            if len(w) != 10 or w[0] != "T":
                continue
            fam, sport, dport = int(w[3]), int(w[5]), int(w[7])
            if sport not in ports and dport not in ports:
                continue
            key = (fam, w[4], sport, w[6], dport)
            out.setdefault(key, []).append({"pid": int(w[2]), "acked": int(w[8]), "received": int(w[9])})
    return out


def recorded(db, ports):
    q = ",".join(str(p) for p in ports)
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    c.row_factory = sqlite3.Row
    rows = c.execute(f"SELECT family, local_addr, local_port, remote_addr, remote_port, pid, owner_source,"
                     f" bytes_sent, bytes_received, closed_at FROM v_lifetimes WHERE proto = 'tcp'"
                     f" AND remote_port IS NOT NULL AND (local_port IN ({q}) OR remote_port IN ({q}))"
                     f" ORDER BY lifetime_id").fetchall()
    run = c.execute("SELECT event_overruns, notes FROM runs ORDER BY run_id DESC LIMIT 1").fetchone()
    c.close()
    out = {}
    for r in rows:
        key = (r["family"], r["local_addr"], r["local_port"], r["remote_addr"], r["remote_port"])
        out.setdefault(key, []).append(dict(r))
    return out, dict(run)


def within(a, b, d=2):
    return a is not None and abs(a - b) <= d


def compare(truth, rec, pids):
    """Rates over the workload's closed sockets (both ends of each connection)."""
    n = in_rec = named = right = bytes_ok = 0
    misses = []
    sources = {}
    for key, kernel in truth.items():
        mine = rec.get(key, [])
        for i, k in enumerate(kernel):
            if k["pid"] not in pids:
                continue  # not the workload's (another process on a recycled port)
            n += 1
            r = mine[i] if i < len(mine) else None
            if r is None:
                continue
            in_rec += 1
            sources[r["owner_source"]] = sources.get(r["owner_source"], 0) + 1
            if r["pid"] is not None:
                named += 1
                right += r["pid"] == k["pid"]
            ok = within(r["bytes_sent"], k["acked"]) and within(r["bytes_received"], k["received"])
            bytes_ok += ok
            if not ok and len(misses) < 20:
                misses.append((key, k, r))
    return {"sockets": n, "in_record": in_rec, "named": named, "right": right, "bytes_ok": bytes_ok,
            "sources": sources, "misses": misses}


def pct(x, y):
    return f"{100.0 * x / y:.2f}%" if y else "n/a"


def accuracy(a, out):
    if not mount_tracefs():
        log("no tracefs with the sock tracepoints: no ground truth")
        return None
    truth_path = os.path.join(out, "truth.txt")
    tf = open(truth_path, "w")
    # The map of owners holds every socket of the machine being read, not only ours.
    env = dict(os.environ, BPFTRACE_MAP_KEYS_MAX="1000000")
    bt = subprocess.Popen(["bpftrace", os.path.join(HERE, "tcp_truth.bt")], stdout=tf, stderr=subprocess.PIPE,
                          text=True, env=env)
    # bpftrace says "Attaching N probes..." once attached
    time.sleep(4)
    db = os.path.join(out, "owners.db")
    for f in (db, db + "-wal", db + "-shm"):
        if os.path.exists(f):
            os.remove(f)
    rec = start_recorder(a, db, a.events)
    srv, targets = servers()
    cpid, made = run_client(a.rate, a.seconds, targets, os.path.join(out, "client.log"))
    hwm = stop_recorder(db, rec)
    time.sleep(1)
    bt.send_signal(signal.SIGINT)
    bt.wait(60)
    tf.close()
    for p in srv:
        p.terminate()
        p.wait()
    ports = {int(t.rsplit(":", 1)[1]) for t in targets}
    truth = truth_lines(truth_path, ports)
    rec_rows, run = recorded(db, ports)
    res = compare(truth, rec_rows, {cpid} | {p.pid for p in srv})
    res.update({"made": made, "hwm_kib": hwm, "overruns": run["event_overruns"], "notes": run["notes"]})
    return res


def cpu_s(pid):
    """utime + stime of a process so far, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        w = f.read().rsplit(")", 1)[1].split()
    return (int(w[11]) + int(w[12])) / os.sysconf("SC_CLK_TCK")


def throughput(a, out):
    """connhist-churn at a.cost_rate connections a second (as many as it can
    when the machine cannot), in phases without and with the recorder and
    its event source, alternating, so both see the same machine."""
    rates = {"off": [], "on": []}
    cpu = []  # the recorder's CPU per connection, microseconds
    rates["cpu_us"] = cpu
    for i in range(a.phases):
        for mode in ("off", "on"):
            rec = None
            db = os.path.join(out, f"cost-{i}.db")
            for f in (db, db + "-wal", db + "-shm"):
                if os.path.exists(f):
                    os.remove(f)
            if mode == "on":
                rec = start_recorder(a, db, a.events)
            p = subprocess.run([a.churn, str(a.cost_rate), str(a.phase_seconds)], capture_output=True, text=True,
                               check=True)
            made, took, _ = p.stdout.split()
            if rec is not None:
                cpu.append(cpu_s(rec.pid) / int(made) * 1e6)
                rec.send_signal(signal.SIGTERM)
                rec.communicate(timeout=120)
            rates[mode].append(int(made) / float(took))
            log(f"phase {i} {mode}: {rates[mode][-1]:.0f} connections/s")
            time.sleep(2)  # the phase's TIME_WAIT entries thin out
    return rates


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        return serve(sys.argv[2])
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        return client(float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5:])
    ap = argparse.ArgumentParser(description="owners and final bytes against the kernel's record")
    ap.add_argument("--record", required=True)
    ap.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "connhist-bench-owners"))
    ap.add_argument("--rate", type=float, default=300.0, help="connections a second of the accuracy workload")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--events", default="bpf", help="--events of the recorder (bpf, off)")
    ap.add_argument("--churn", help="connhist-churn (bench/churn.c), for the cost phase")
    ap.add_argument("--cost-rate", type=float, default=10000.0, help="connections a second of the cost phase")
    ap.add_argument("--phases", type=int, default=3, help="throughput phases, each without then with the recorder")
    ap.add_argument("--phase-seconds", type=float, default=4.0)
    ap.add_argument("--skip", default="", help="accuracy,cost")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    print(f"| run | events | closed sockets | in record | owner named | owner right (of named) | final bytes within 2 | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    if "accuracy" not in a.skip:
        r = accuracy(a, a.out)
        if r:
            print(f"| {a.rate:.0f}/s x {a.seconds:.0f} s ({r['made']} connections) | {a.events} | {r['sockets']} |"
                  f" {pct(r['in_record'], r['sockets'])} | {pct(r['named'], r['in_record'])} |"
                  f" {pct(r['right'], r['named'])} | {pct(r['bytes_ok'], r['in_record'])} |"
                  f" {r['hwm_kib'] / 1024:.1f} MiB |")
            print(f"\nowner_source: {r['sources']}; event_overruns {r['overruns']}; notes: {r['notes']}")
            for m in r["misses"]:
                log(f"final bytes differ: {m}")
    if "cost" not in a.skip and a.churn:
        rates = throughput(a, a.out)
        off, on = statistics.mean(rates["off"]), statistics.mean(rates["on"])
        print(f"\nthroughput of connhist-churn at {a.cost_rate:.0f}/s asked, {a.phases} x {a.phase_seconds:.0f} s"
              f" each way: without the recorder {', '.join(f'{x:.0f}' for x in rates['off'])}/s,"
              f" with it (--events {a.events}) {', '.join(f'{x:.0f}' for x in rates['on'])}/s:"
              f" {100.0 * (off - on) / off:.1f}% drop (means); the recorder's CPU"
              f" {', '.join(f'{x:.0f}' for x in rates['cpu_us'])} us a connection")


if __name__ == "__main__":
    main()
