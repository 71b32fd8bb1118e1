"""Where the recorder reads which processes hold each socket (issue 17): as
root with BPF, one pass of a BPF iterator over every process's files; else,
or with CONNHIST_PROCS_SOURCE=proc (a switch kept for this comparison), a
readlink of every /proc/PID/fd/N. The run's notes say which. Both record the
same owners and holders: a listener and a connection shared by a process
and its child (two holders, the parent owns), a socket only the child holds.

Real binaries, real loopback sockets, one sample each (--once)."""

import json
import os
import subprocess
import sys
import unittest

from helpers import RECORD, rows, run_record, scratch_dir

SHARED = r"""
import json, os, socket, sys, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(8)
c = socket.create_connection(l.getsockname()); a, _ = l.accept()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0))
ports = {"tcp": [l.getsockname()[1], c.getsockname()[1]], "udp": u.getsockname()[1]}
time.sleep(0.05)  # a clock tick: the child is strictly younger
child = os.fork()
if child == 0:
    os.close(1)
    sys.stdin.read(); os._exit(0)
u.close()  # only the child holds it now
print(json.dumps(dict(ports, child=child)), flush=True)
sys.stdin.read()
os.waitpid(child, 0)
"""


def why_unavailable():
    """Why the iterator cannot run here, or None (then it must)."""
    if os.geteuid() != 0:
        return "needs root to load BPF programs"
    out = subprocess.run([RECORD, "--version"], capture_output=True, text=True, timeout=30).stdout
    if "BPF" not in out:
        return "connhist-record was built without BPF: " + out.strip()
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        return "the kernel has no BTF (/sys/kernel/btf/vmlinux)"
    return None


class HoldersSourceTest(unittest.TestCase):
    def setUp(self):
        self.dir = scratch_dir()
        self.holder = subprocess.Popen([sys.executable, "-c", SHARED], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.holder.stdout.readline())

    def tearDown(self):
        self.holder.stdin.close()
        self.holder.wait(timeout=60)

    def record(self, name, env_extra):
        db = os.path.join(self.dir, name)
        env = {k: v for k, v in os.environ.items() if k != "CONNHIST_PROCS_SOURCE"}
        env.update(env_extra)
        p = run_record(db, "--once", env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        # Exactly these four sockets: other tests' sockets on loopback may
        # share a port number (UDP's are apart from TCP's, and a client's
        # port is unique only with its remote end).
        (lport, cport), uport = self.info["tcp"], self.info["udp"]
        found = rows(db, """SELECT proto, local_port, remote_port, state, pid, proc_start, holders, owner_source
                            FROM v_lifetimes WHERE local_addr = '127.0.0.1'
                            AND ((proto = 'tcp' AND local_port = ?1 AND remote_port IS NULL)
                              OR (proto = 'tcp' AND local_port = ?1 AND remote_port = ?2)
                              OR (proto = 'tcp' AND local_port = ?2 AND remote_port = ?1)
                              OR (proto = 'udp' AND local_port = ?3 AND remote_port IS NULL))
                            ORDER BY proto, local_port, remote_port""", (lport, cport, uport))
        notes = rows(db, "SELECT notes FROM runs")[0]["notes"] or ""
        return found, notes

    def test_same_both_ways(self):
        by_default, notes = self.record("default.db", {})
        by_proc, proc_notes = self.record("proc.db", {"CONNHIST_PROCS_SOURCE": "proc"})
        self.assertEqual(by_default, by_proc)
        self.assertIn("socket holders read from /proc/PID/fd: no BPF iterator (CONNHIST_PROCS_SOURCE=proc)",
                      proc_notes)
        unavailable = why_unavailable()
        if unavailable:
            print(f"the iterator cannot run here ({unavailable}): /proc both times", file=sys.stderr)
            self.assertIn("socket holders read from /proc/PID/fd", notes)
        else:
            self.assertIn("socket holders read by a BPF iterator over the processes' files", notes)
        # The listener and both ends of the connection: two holders each,
        # owned by the parent; the UDP socket: the child's alone.
        self.assertEqual(len(by_default), 4, by_default)
        for row in by_default:
            udp = row["proto"] == "udp"
            self.assertEqual(row["pid"], self.info["child"] if udp else self.holder.pid, row)
            self.assertEqual(row["holders"], 1 if udp else 2, row)


if __name__ == "__main__":
    unittest.main()
