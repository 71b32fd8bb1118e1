#!/usr/bin/env python3
"""Loopback load for the connhist benchmark: one worker process per call.

  load.py hold ADDR PORT CONNS CHURN   hold CONNS established TCP connections
                                       (both ends in this process: 2*CONNS fds)
                                       to ADDR:PORT, replacing CHURN of them per
                                       second (oldest first, graceful close).
  load.py burst-server ADDR... PORT    accept, read, close, forever.
  load.py burst-client RATE SECONDS LOG ADDR... PORT
                                       open, send one byte, close, RATE times a
                                       second for SECONDS; writes the ground
                                       truth (one line per connection) to LOG.

A worker prints "ready" on stdout once its load is in place. SIGTERM ends a
hold worker with SO_LINGER 0 closes (RST), so no TIME_WAIT is left behind to
inflate the next measurement.
"""
import collections
import resource
import selectors
import signal
import socket
import struct
import sys
import time

stop = False


def on_term(_sig, _frame):
    global stop
    stop = True


def raise_fd_limit():
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def listener(addr, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(4096)
    return s


def open_pairs(srv, addr, port, count, pairs):
    """Opens count connections to srv, pairing each client with its accepted end."""
    while count > 0:
        batch = min(count, 512)
        clients = {}
        for _ in range(batch):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.connect((addr, port))
            clients[c.getsockname()[1]] = c
        for _ in range(batch):
            s, peer = srv.accept()
            pairs.append((clients.pop(peer[1]), s))
        count -= batch


def hold(addr, port, conns, churn):
    raise_fd_limit()
    srv = listener(addr, port)
    pairs = collections.deque()
    open_pairs(srv, addr, port, conns, pairs)
    print("ready", flush=True)
    slices = 10  # churn is spread over tenths of a second
    owed = 0.0
    next_at = time.monotonic()
    while not stop:
        next_at += 1.0 / slices
        owed += churn / slices
        k = int(owed)
        owed -= k
        for _ in range(min(k, len(pairs))):
            c, s = pairs.popleft()
            c.close()  # the client closes first: it goes through TIME_WAIT
            s.close()
        if k:
            open_pairs(srv, addr, port, k, pairs)
        time.sleep(max(0.0, next_at - time.monotonic()))
    linger = struct.pack("ii", 1, 0)
    for c, s in pairs:
        for x in (c, s):
            x.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            x.close()
    srv.close()


def burst_server(addrs, port):
    raise_fd_limit()
    sel = selectors.DefaultSelector()
    for a in addrs:
        sel.register(listener(a, port), selectors.EVENT_READ, "listen")
    print("ready", flush=True)
    while not stop:
        for key, _ in sel.select(0.2):
            if key.data == "listen":
                try:
                    s, _ = key.fileobj.accept()
                except OSError:
                    continue
                sel.register(s, selectors.EVENT_READ, "conn")
            else:
                try:
                    data = key.fileobj.recv(64)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()


def burst_client(rate, seconds, log, addrs, port):
    raise_fd_limit()
    print("ready", flush=True)
    lines = []
    start = time.monotonic()
    n = 0
    while not stop and time.monotonic() - start < seconds:
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        dst = addrs[n % len(addrs)]
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t_open = time.time()
        try:
            c.connect((dst, port))
            local = c.getsockname()
            c.send(b"x")
        except OSError as e:
            print(f"burst-client: connect to {dst}:{port} failed: {e}", file=sys.stderr)
            c.close()
            n += 1
            continue
        c.close()
        t_close = time.time()
        lines.append(f"{int(t_open * 1000)},{int(t_close * 1000)},{local[0]},{local[1]},{dst},{port}\n")
        n += 1
    with open(log, "w") as f:
        f.write("t_open_ms,t_close_ms,local_addr,local_port,remote_addr,remote_port\n")
        f.writelines(lines)


def main(argv):
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    mode = argv[1]
    if mode == "hold":
        hold(argv[2], int(argv[3]), int(argv[4]), float(argv[5]))
    elif mode == "burst-server":
        burst_server(argv[2:-1], int(argv[-1]))
    elif mode == "burst-client":
        burst_client(float(argv[2]), float(argv[3]), argv[4], argv[5:-1], int(argv[-1]))
    else:
        sys.exit(f"load.py: unknown mode '{mode}' (expected hold, burst-server or burst-client)")


if __name__ == "__main__":
    main(sys.argv)
