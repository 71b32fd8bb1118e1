"""A resolver of one's own for the DNS names tests and benchmark: this
process moves into new network and mount namespaces (loopback up, and
/etc/resolv.conf bind-mounted to point at 127.0.0.1, so that glibc's own
resolver is the client), where a dnsmasq with no upstream servers
(--no-resolv) answers on 127.0.0.1:53 only the names it is given."""

import ctypes
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

from helpers import scratch_dir, wait_until

CLONE_NEWNS, CLONE_NEWNET = 0x00020000, 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18

_entered = None  # None: not tried; "": inside; else why not


def enter_namespace():
    """Moves this process into new network and mount namespaces with
    loopback up and resolv.conf pointing at 127.0.0.1. Returns "" or why not."""
    global _entered
    if _entered is not None:
        return _entered
    libc = ctypes.CDLL(None, use_errno=True)
    conf = os.path.join(scratch_dir("connhist-names-"), "resolv.conf")
    with open(conf, "w") as f:
        f.write("nameserver 127.0.0.1\noptions attempts:2 timeout:5\n")
    if libc.unshare(CLONE_NEWNET | CLONE_NEWNS) != 0:
        _entered = f"cannot create a network namespace: {os.strerror(ctypes.get_errno())}"
    elif libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0 or \
            libc.mount(conf.encode(), b"/etc/resolv.conf", None, MS_BIND, None) != 0:
        _entered = f"cannot bind-mount a resolv.conf: {os.strerror(ctypes.get_errno())}"
    else:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        _entered = ""
    return _entered


class Resolver:
    """dnsmasq on 127.0.0.1:53 of this namespace, answering only what it is told."""

    def __init__(self, *records, ttl=600):
        if shutil.which("dnsmasq") is None:
            raise AssertionError("dnsmasq is missing: scripts/install-deps.sh installs dnsmasq-base")
        self.log = os.path.join(scratch_dir("connhist-dnsmasq-"), "dnsmasq.log")
        cmd = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null",
               "--port=53", "--listen-address=127.0.0.1", "--bind-interfaces", "--pid-file=", "--user=root",
               f"--local-ttl={ttl}", f"--auth-ttl={ttl}", "--log-facility=" + self.log] + list(records)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # Ready when it answers (a name it has: the first record's).
        wait_until(self.ready, lambda: time.monotonic() // 1, "dnsmasq answering", stall=60)

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"dnsmasq exited: {self.proc.stderr.read()}")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(("127.0.0.1", 53))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def resolve(name):
    """The IPv4 address glibc's resolver gets for name (an A query)."""
    return socket.getaddrinfo(name, 0, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]


def resolve_in_child(name):
    """resolve(name), asked by a child process of its own (in this
    process's namespaces), so that the answer is never this process's."""
    code = ("import socket, sys; "
            "print(socket.getaddrinfo(sys.argv[1], 0, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])")
    out = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip()


def dns_query(name, qid=0x1234):
    """A DNS query for name's A record (the test's own client socket)."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + struct.pack(">HH", 1, 1)
