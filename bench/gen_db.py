#!/usr/bin/env python3
"""Generates a connhist database of N lifetimes for the query benchmark.

  gen_db.py PATH LIFETIMES [DAYS]

Not through the recorder's store code: the rows are made by SQLite itself
(a recursive CTE, in chunks) into the tables of schema/schema.sql, with
the indexes built afterwards. The spread imitates a busy server over DAYS
(default 30): one run with one heartbeat span covering the whole time,
2,000 processes under 40 names, 100,000 remote addresses (10% IPv6) of
which a few are far more frequent than the rest, mostly outgoing TCP to a
handful of service ports, some incoming, 8% UDP, 2% listeners; durations
from a second to about an hour; ESTABLISHED connections that went through
TIME_WAIT have a state_changes row. Lifetime ids grow with time as in a
real database. The last few minutes hold open lifetimes.
"""
import os
import sqlite3
import sys
import time

NAMES = ["nginx", "curl", "python3", "sshd", "chrome", "firefox", "postgres", "java", "node", "dockerd",
         "systemd-resolve", "chronyd", "apt", "wget", "redis-server", "mysqld", "containerd", "git", "ssh",
         "php-fpm", "ruby", "go", "kubelet", "etcd", "haproxy", "envoy", "prometheus", "grafana", "sssd",
         "cupsd", "avahi-daemon", "dnsmasq", "snapd", "thunderbird", "slack", "zoom", "code", "rsync",
         "openvpn", "tor"]
PROCESSES = 2000
REMOTES = 100000
CHUNK = 1000000

# One chunk of lifetimes: ids lo..hi-1, first_seen evenly spread over the
# span with jitter. r1..r4 are drawn once per row (MATERIALIZED).
CHUNK_SQL = """
WITH RECURSIVE seq(i) AS (SELECT :lo UNION ALL SELECT i + 1 FROM seq WHERE i + 1 < :hi),
rnd AS MATERIALIZED (
  SELECT i, abs(random()) AS r1, abs(random()) AS r2, abs(random()) AS r3, abs(random()) AS r4 FROM seq),
row AS MATERIALIZED (
  SELECT i, r1, r2, r3, r4,
         :t0 + (i * :span) / :total + r1 % 5000 AS first_seen,
         CASE WHEN r2 % 100 < 2 THEN 'listen' WHEN r2 % 100 < 10 THEN 'udp'
              WHEN r2 % 100 < 30 THEN 'in' ELSE 'out' END AS kind,
         ((r3 % 1000) * (r3 % 1000) * (r3 % 1000)) / 1000000000.0 AS skew,
         (r4 % 316) * (r4 % 316) * 36 + 1000 AS dur,
         ((r4 / 1000) % 1000) * ((r4 / 1000) % 1000) / 500 AS proc
  FROM rnd)
INSERT INTO lifetimes (lifetime_id, run_id, proto, family, local_addr, local_port, remote_addr, remote_port,
                       state, states, first_seen, last_seen, closed_at, close_reason, pid, proc_start,
                       holders, uid, inode, cookie)
SELECT i + 1, 1,
       CASE kind WHEN 'udp' THEN 'udp' ELSE 'tcp' END,
       CASE WHEN r3 % 10 = 0 THEN 6 ELSE 4 END,
       CASE WHEN r3 % 10 = 0 THEN '2001:db8::5' ELSE '10.0.0.5' END,
       CASE kind WHEN 'listen' THEN (8000 + r1 % 50) WHEN 'in' THEN (CASE r1 % 4 WHEN 0 THEN 22 WHEN 1 THEN 80
            WHEN 2 THEN 443 ELSE 8080 END) WHEN 'udp' THEN 53 ELSE 32768 + r1 % 28232 END,
       CASE WHEN kind = 'listen' OR (kind = 'udp' AND r1 % 2 = 0) THEN NULL
            WHEN r3 % 10 = 0 THEN printf('2001:db8:1::%x', CAST(skew * :remotes AS INTEGER))
            ELSE printf('192.%d.%d.%d', 168 + CAST(skew * :remotes AS INTEGER) / 65536,
                        (CAST(skew * :remotes AS INTEGER) / 256) % 256, CAST(skew * :remotes AS INTEGER) % 256) END,
       CASE WHEN kind = 'listen' OR (kind = 'udp' AND r1 % 2 = 0) THEN NULL
            WHEN kind = 'in' THEN 32768 + r2 % 28232
            WHEN kind = 'udp' THEN 53
            ELSE (CASE r2 % 10 WHEN 0 THEN 80 WHEN 1 THEN 22 WHEN 2 THEN 53 WHEN 3 THEN 5432 WHEN 4 THEN 993
                  ELSE 443 END) END,
       CASE kind WHEN 'listen' THEN 'LISTEN' WHEN 'udp' THEN (CASE WHEN r1 % 2 = 0 THEN 'UNCONN' ELSE 'ESTABLISHED' END)
            ELSE (CASE WHEN r2 % 3 = 0 THEN 'ESTABLISHED' ELSE 'TIME_WAIT' END) END,
       CASE kind WHEN 'listen' THEN 'LISTEN' WHEN 'udp' THEN (CASE WHEN r1 % 2 = 0 THEN 'UNCONN' ELSE 'ESTABLISHED' END)
            ELSE (CASE WHEN r2 % 3 = 0 THEN 'ESTABLISHED' ELSE 'ESTABLISHED,TIME_WAIT' END) END,
       first_seen,
       CASE WHEN first_seen + dur + 1000 > :t_end THEN NULL ELSE first_seen + dur END,
       CASE WHEN first_seen + dur + 1000 > :t_end THEN NULL ELSE first_seen + dur + 1000 END,
       CASE WHEN first_seen + dur + 1000 > :t_end THEN NULL ELSE 'gone' END,
       CASE WHEN kind = 'in' AND r4 % 5 = 0 THEN NULL ELSE 1000 + proc END,
       CASE WHEN kind = 'in' AND r4 % 5 = 0 THEN NULL ELSE :t0 - 86400000 + proc * 1000 END,
       CASE WHEN kind = 'in' AND r4 % 5 = 0 THEN NULL ELSE 1 END,
       1000, 100000 + i, r1
FROM row
"""


def generate(path, total, days):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "schema", "schema.sql")) as f:
        schema = f.read()
    t_end = int(time.time() * 1000) - 60000
    span = days * 86400000
    t0 = t_end - span
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(schema)
    db.executescript("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;")
    indexes = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                                        "AND tbl_name IN ('lifetimes', 'state_changes')")]
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
                              "AND tbl_name IN ('lifetimes', 'state_changes')").fetchall():
        db.execute(f"DROP INDEX {name}")
    db.execute("BEGIN")
    db.execute("INSERT INTO runs (run_id, started_at, ended_at, end_reason, mode, interval_ms, host, os, boot_id,"
               " boot_time, sampler, version, pid, uid) VALUES (1, ?, ?, 'signal', 'continuous', 1000, 'benchhost',"
               " 'Linux (generated)', 'bench-boot', ?, 'netlink', 'bench', 1, 0)", (t0 - 1000, t_end, t0 - 600000))
    db.execute("INSERT INTO heartbeats VALUES (1, ?, ?, ?)", (t0, t_end, span // 1000))
    db.executemany("INSERT INTO processes VALUES (?, ?, ?, ?, ?, 1000, 'bench', ?)",
                   [(1000 + k, t0 - 86400000 + k * 1000, NAMES[k % len(NAMES)], f"/usr/bin/{NAMES[k % len(NAMES)]}",
                     f"{NAMES[k % len(NAMES)]} --worker {k}", t0) for k in range(PROCESSES)])
    params = {"t0": t0, "span": span, "total": total, "remotes": REMOTES, "t_end": t_end}
    for lo in range(0, total, CHUNK):
        db.execute(CHUNK_SQL, dict(params, lo=lo, hi=min(total, lo + CHUNK)))
    db.execute("INSERT INTO state_changes SELECT lifetime_id, last_seen - 500, 'TIME_WAIT' FROM lifetimes"
               " WHERE states = 'ESTABLISHED,TIME_WAIT' AND last_seen IS NOT NULL")
    db.execute("COMMIT")
    for sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return t0, t_end


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: gen_db.py PATH LIFETIMES [DAYS]")
    start = time.monotonic()
    t0, t_end = generate(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 30)
    print(f"t0 {t0} t_end {t_end} seconds {time.monotonic() - start:.1f}")
