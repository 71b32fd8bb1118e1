"""The BPF socket iterator sampler (issue 17, the steady tick): as root,
samples read the kernel's TCP and UDP tables through BPF iterators instead
of sock_diag dumps, and must give the very rows a dump gives. In a network
namespace of its own, a driver makes a socket of every kind a table holds:
listeners, connections both ends, a TIME_WAIT entry, a FIN_WAIT2 entry and
the CLOSE_WAIT end across from it, a SYN_RECV request (its listener defers
accepting until data comes), UDP bound and connected, over IPv4 and IPv6,
and a link-local IPv6 socket bound to a veth end (its scope). Then a recorder
for a second twice on the same sockets: through the iterators, and with
CONNHIST_SOCKS_SOURCE=netlink through sock_diag. And with --once, which
takes the iterators only where the socket holders' iterator loads with them
(one read of the kernel's BTF for both, recorder/linux/iters.h): by default,
and with CONNHIST_PROCS_SOURCE=proc, which reads the holders from /proc and
so dumps. Real binaries, real sockets, the rows read back from the databases."""

import json
import os
import socket
import subprocess
import sys
import unittest

from helpers import RECORD, WRAPPER, rows, scratch_dir, start_record, stop_record, wait_for_samples

from test_faults import assert_one_open_lifetime_each, sockets_fixture
from test_owners_events import UNAVAILABLE

BPF_SHIM = os.environ.get("CONNHIST_FAULT_BPF_SHIM")

DRIVER = r"""
import json, os, socket, subprocess, sys, time
record, d, wrapper = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
keep = []
l4 = socket.socket(); l4.bind(("127.0.0.1", 0)); l4.listen(16)
l6 = socket.socket(socket.AF_INET6); l6.bind(("::1", 0)); l6.listen(16)
keep += [l4, l6]
for l, fam in ((l4, socket.AF_INET), (l6, socket.AF_INET6)):
    c = socket.socket(fam); c.connect(l.getsockname()); a, _ = l.accept(); keep += [c, a]
    c2 = socket.socket(fam); c2.connect(l.getsockname()); a2, _ = l.accept()
    c2.close(); time.sleep(0.05); a2.close()  # the client first: its end waits in TIME_WAIT
    c3 = socket.socket(fam); c3.connect(l.getsockname()); a3, _ = l.accept()
    c3.close(); keep.append(a3)  # the server keeps its end: FIN_WAIT2 across from CLOSE_WAIT
u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u4.bind(("127.0.0.1", 0))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.bind(("::1", 0)); u6.connect(("::1", 9))
keep += [u4, u6]
# Half-open: the listener defers the accept until data comes (TCP_DEFER_ACCEPT),
# so the client's last ACK of the handshake is ignored and the request stays.
half = socket.socket(); half.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 30)
half.bind(("127.0.0.1", 0)); half.listen(16); keep.append(half)
hc = socket.socket(); hc.connect(half.getsockname()); keep.append(hc)
# Link-local: a veth end's fe80:: address, a UDP socket bound to it.
def ip(*args):
    subprocess.run(["ip"] + list(args), check=True)
ip("link", "add", "ch0", "type", "veth", "peer", "name", "ch1")
ip("link", "set", "ch0", "up")
ip("link", "set", "ch1", "up")
ip("-6", "addr", "add", "fe80::c0:1/64", "dev", "ch0", "nodad")
ll = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
ll.bind(("fe80::c0:1", 0, 0, socket.if_nametoindex("ch0"))); keep.append(ll)
time.sleep(0.3)
out = {}
for name, extra in (("iter", {}), ("netlink", {"CONNHIST_SOCKS_SOURCE": "netlink"})):
    db = os.path.join(d, name + ".db")
    p = subprocess.run(wrapper + [record, "--db", db, "--interval", "200ms", "--duration", "1s"],
                       env=dict(os.environ, **extra),
                       capture_output=True, text=True)
    out[name] = {"db": db, "status": p.returncode, "stderr": p.stderr}
for name, extra in (("once", {}), ("once_proc", {"CONNHIST_PROCS_SOURCE": "proc"})):
    db = os.path.join(d, name + ".db")
    p = subprocess.run(wrapper + [record, "--db", db, "--once"], env=dict(os.environ, **extra),
                       capture_output=True, text=True)
    out[name] = {"db": db, "status": p.returncode, "stderr": p.stderr}
print(json.dumps(out))
"""

COLUMNS = ("proto, family, state, local_addr, local_port, remote_addr, remote_port, local_scope, remote_scope,"
           " cookie, inode, socket_uid")


@unittest.skipIf(UNAVAILABLE, UNAVAILABLE or "")
class SameRowsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        p = subprocess.run(["unshare", "-n", sys.executable, "-c", DRIVER, RECORD, scratch_dir(), json.dumps(WRAPPER)],
                           capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise AssertionError(f"driver failed ({p.returncode}): {p.stderr}")
        cls.facts = json.loads(p.stdout)

    def rows_of(self, name):
        run = self.facts[name]
        self.assertEqual(run["status"], 0, run["stderr"])
        return [tuple(r.values()) for r in rows(run["db"], f"SELECT {COLUMNS} FROM v_lifetimes ORDER BY cookie")]

    def run_of(self, name):
        return rows(self.facts[name]["db"], "SELECT sampler, notes FROM runs")[0]

    def test_samplers(self):
        self.assertEqual(self.run_of("iter")["sampler"], "bpf_iter")
        self.assertEqual(self.run_of("netlink")["sampler"], "netlink")
        # One sample: the iterators came with the holders' (whose link the
        # holder pass took), not without.
        once = self.run_of("once")
        self.assertEqual(once["sampler"], "bpf_iter")
        self.assertIn("socket holders read by a BPF iterator over the processes' files", once["notes"])
        once_proc = self.run_of("once_proc")
        self.assertEqual(once_proc["sampler"], "netlink")
        self.assertIn("socket holders read from /proc/PID/fd: no BPF iterator (CONNHIST_PROCS_SOURCE=proc)",
                      once_proc["notes"])

    def test_same_rows_as_a_dump(self):
        by_iter, by_dump = self.rows_of("iter"), self.rows_of("netlink")
        self.assertEqual(by_iter, by_dump)
        self.assertEqual(self.rows_of("once"), by_dump)
        self.assertEqual(self.rows_of("once_proc"), by_dump)
        kinds = {(r[0], r[1], r[2]) for r in by_iter}
        expected = {("tcp", 4, s) for s in ("LISTEN", "ESTABLISHED", "TIME_WAIT", "FIN_WAIT2", "CLOSE_WAIT")}
        expected |= {("tcp", 6, s) for s in ("LISTEN", "ESTABLISHED", "TIME_WAIT", "FIN_WAIT2", "CLOSE_WAIT")}
        expected |= {("udp", 4, "UNCONN"), ("udp", 6, "ESTABLISHED")}
        expected |= {("tcp", 4, "SYN_RECV"), ("udp", 6, "UNCONN")}  # the request, the link-local socket
        scoped = [r for r in by_iter if r[3] == "fe80::c0:1"]
        self.assertEqual(len(scoped), 1, by_iter)
        self.assertGreater(scoped[0][7], 0, scoped)
        self.assertEqual(kinds, expected)
        # Every full socket has its inode and every row its cookie, through either.
        for r in by_iter:
            self.assertIsNotNone(r[9], r)
            if r[2] not in ("TIME_WAIT", "FIN_WAIT2", "SYN_RECV"):
                self.assertIsNotNone(r[10], r)


@unittest.skipIf(UNAVAILABLE, UNAVAILABLE or "")
@unittest.skipUnless(BPF_SHIM, "needs the fault_bpf shim")
class FallBackTest(unittest.TestCase):
    """The kernel refuses the iterators from the third sample on (the
    fault_bpf shim fails BPF_ITER_CREATE): the recorder dumps through
    sock_diag from then on, says so once in the run's notes, and loses
    nothing: the sockets open throughout keep one open lifetime each, and
    a socket opened after the change is found."""

    def test_refused_iterators_fall_back_to_dumps(self):
        d = scratch_dir()
        db, faults = os.path.join(d, "fallback.db"), os.path.join(d, "faults")
        steady = sockets_fixture(self)
        # The socket holders through /proc: no other iterator is created.
        env = dict(os.environ, LD_PRELOAD=BPF_SHIM, CONNHIST_FAULT_ITER_CREATE="5", CONNHIST_FAULT_LOG=faults,
                   CONNHIST_PROCS_SOURCE="proc")
        proc = start_record(db, "--interval", "100ms", env=env, log=os.path.join(d, "record.log"))
        try:
            wait_for_samples(db, 6, proc)
            late = socket.socket()
            late.bind(("127.0.0.1", 0))
            late.listen()
            self.addCleanup(late.close)
            wait_for_samples(db, 12, proc)
        finally:
            code, _, err = stop_record(proc)
        self.assertEqual(code, 0, err)
        with open(faults) as f:
            refusals = [line for line in f.read().split() if line != "kernel_btf"]
        self.assertEqual(refusals, ["iter_create"], "one refusal, then no iterator asked for again")
        [run] = rows(db, "SELECT sampler, notes FROM runs")
        self.assertEqual(run["sampler"], "bpf_iter")
        self.assertEqual(run["notes"].count("BPF socket iterators failed"), 1, run["notes"])
        self.assertIn("dumped through sock_diag", run["notes"])
        assert_one_open_lifetime_each(self, db, steady + [late])


@unittest.skipIf(UNAVAILABLE, UNAVAILABLE or "")
@unittest.skipUnless(BPF_SHIM, "needs the fault_bpf shim")
class OneBtfReadTest(unittest.TestCase):
    """The socket iterators and the holders' are one object, loaded by one
    child: the kernel's BTF (which libbpf reads whole for every object it
    loads) is read once for them all. The fault_bpf shim counts the opens
    of the kernel's BTF by the recorder and its children."""

    def btf_reads(self, *args, env=None):
        d = scratch_dir()
        log = os.path.join(d, "opens")
        env = dict(os.environ, LD_PRELOAD=BPF_SHIM, CONNHIST_FAULT_LOG=log, **(env or {}))
        p = subprocess.run(WRAPPER + [RECORD, "--db", os.path.join(d, "db")] + list(args), env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        [run] = rows(os.path.join(d, "db"), "SELECT sampler, notes FROM runs")
        lines = open(log).read().splitlines() if os.path.exists(log) else []
        self.lines = [line for line in lines if line != "kernel_btf"]
        self.db = os.path.join(d, "db")
        return len(lines) - len(self.lines), run

    def test_one_read_for_all_iterators(self):
        sockets_fixture(self)
        holders = "socket holders read by a BPF iterator over the processes' files"
        for args in (["--once"], ["--interval", "100ms", "--duration", "500ms", "--events", "off"]):
            with self.subTest(args=args):
                reads, run = self.btf_reads(*args)
                self.assertEqual(run["sampler"], "bpf_iter")
                self.assertIn(holders, run["notes"])
                self.assertEqual(reads, 1)
        # Holders from /proc: one sample dumps (no read at all), samples
        # over time read it for the socket iterators alone.
        reads, run = self.btf_reads("--once", env={"CONNHIST_PROCS_SOURCE": "proc"})
        self.assertEqual((reads, run["sampler"]), (0, "netlink"))
        reads, run = self.btf_reads("--interval", "100ms", "--duration", "500ms", "--events", "off",
                                    env={"CONNHIST_PROCS_SOURCE": "proc"})
        self.assertEqual((reads, run["sampler"]), (1, "bpf_iter"))

    def test_refused_holders_program_leaves_the_socket_iterators(self):
        """The kernel refuses the holders' program: the object's load fails
        whole, the socket iterators are loaded again without it, and the
        holder pass tries its own, fails and says why."""
        steady = sockets_fixture(self)
        reads, run = self.btf_reads("--interval", "100ms", "--duration", "500ms", "--events", "off",
                                    env={"CONNHIST_FAULT_PROG_LOAD": "socket_files"})
        self.assertIn("prog_load socket_files", self.lines)
        self.assertEqual(reads, 3)
        self.assertEqual(run["sampler"], "bpf_iter")
        self.assertIn("socket holders read from /proc/PID/fd: no BPF iterator (the kernel refused the BPF iterator:",
                      run["notes"])
        assert_one_open_lifetime_each(self, self.db, steady)
        owners = rows(self.db, "SELECT DISTINCT pid FROM v_lifetimes WHERE inode IN (%s)" % ",".join(
            str(os.fstat(s.fileno()).st_ino) for s in steady))
        self.assertEqual(owners, [{"pid": os.getpid()}], "the holders, from /proc")


if __name__ == "__main__":
    unittest.main()
