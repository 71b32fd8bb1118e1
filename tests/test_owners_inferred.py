"""Owners known otherwise than at the open (issue 13): an accepted
connection no process was seen holding, without kernel events, gets the
owner of its listener marked as inferred ("listener"), never one seen; a
lifetime opened without an owner gets it when a later sample or event names
it; and a socket freed into TIME_WAIT gives its descriptor back to the
attribution cache, so a new socket that takes that descriptor number is
found in its process.

Real binaries, real loopback sockets (IPv4 and IPv6), JSON of the query tool
parsed. --once runs make the order of sample and action certain."""

import json
import os
import socket
import subprocess
import sys
import unittest

from helpers import RECORD, WRAPPER, query, rows, run_record, scratch_dir, stop_record, wait_for_samples, \
    wait_until
from test_owners_events import SERVER, UNAVAILABLE, Recorder, ends

# A server process that listens and, for each command it reads, acts:
#   accept: accepts one connection and keeps it;
#   recv: reads a byte from each connection it accepted;
#   close: closes the connections it accepted, first (their ends go to TIME_WAIT).
# It prints its listening port first.
HOLDER = r"""
import json, socket, sys
host = sys.argv[1]
l = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
l.bind((host, 0))
l.listen(16)
print(json.dumps({"lport": l.getsockname()[1]}), flush=True)
held = []
for line in sys.stdin:
    if line.strip() == "accept":
        a, peer = l.accept()
        held.append(a)
        print(json.dumps({"peer_port": peer[1]}), flush=True)
    elif line.strip() == "recv":
        print(json.dumps({"read": [len(a.recv(1)) for a in held]}), flush=True)
    elif line.strip() == "close":
        for a in held:
            a.close()
        held = []
        print("{}", flush=True)
"""

# A client process: connects to a port and keeps the connection; on
# "swap", closes it first (it goes to TIME_WAIT) and at once connects again,
# which takes the same descriptor number; prints the descriptor and port.
SWAPPER = r"""
import json, socket, sys
host, port = sys.argv[1], int(sys.argv[2])
c = socket.create_connection((host, port))
print(json.dumps({"fd": c.fileno(), "port": c.getsockname()[1]}), flush=True)
for line in sys.stdin:
    c.close()
    c = socket.create_connection((host, port))
    print(json.dumps({"fd": c.fileno(), "port": c.getsockname()[1]}), flush=True)
"""

HOSTS = ("127.0.0.1", "::1")


class Child:
    """A Python child process run with a script, driven line by line."""

    def __init__(self, test, script, *args):
        self.p = subprocess.Popen([sys.executable, "-c", script] + list(args), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        test.addCleanup(self.stop)
        self.first = json.loads(self.p.stdout.readline())

    def say(self, line):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def stop(self):
        if self.p.poll() is None:
            self.p.stdin.close()
            self.p.wait(10)
        self.p.stdout.close()


def once(db, *args):
    p = run_record(db, "--once", "--events", "off", *args)
    if p.returncode != 0:
        raise AssertionError(p.stderr)


def lifetime_json(db, lport, remote_port, host="127.0.0.1"):
    """The lifetime on host's local port lport with that remote port, as the
    query tool prints it (the port report). Tests run side by side: another
    one may have a socket with the same port number on another address."""
    out = query(db, "port", str(lport), "--proto", "tcp")
    found = [x for x in out["lifetimes"] if x["local_addr"] == host and x["remote_port"] == remote_port]
    if len(found) != 1:
        raise AssertionError(f"{len(found)} lifetimes on port {lport} from {remote_port}: {out['lifetimes']}")
    return found[0]


class ListenerInferenceTest(unittest.TestCase):
    def setUp(self):
        self.db = os.path.join(scratch_dir(), "connhist.db")

    def test_time_wait_entry_inferred(self):
        """The server end of a connection it closed first, found by the
        sample only as its TIME_WAIT entry (no descriptor, no event): the
        listener's process, marked "listener"; the listener itself
        "socket"."""
        for host in HOSTS:
            with self.subTest(host=host):
                self.db = os.path.join(scratch_dir(), "connhist.db")
                srv = Child(self, HOLDER, host)
                lport = srv.first["lport"]
                c = socket.create_connection((host, lport))
                cport = c.getsockname()[1]
                srv.say("accept")
                srv.say("close")  # the server end closes first: its TIME_WAIT entry
                c.recv(1)  # the FIN
                c.close()
                once(self.db)
                listener = [x for x in query(self.db, "port", str(lport), "--proto", "tcp")["lifetimes"]
                            if x["state"] == "LISTEN" and x["local_addr"] == host]
                self.assertEqual(len(listener), 1, listener)
                self.assertEqual(listener[0]["owner_source"], "socket")
                self.assertEqual(listener[0]["process"]["pid"], srv.p.pid)
                accepted = lifetime_json(self.db, lport, cport, host)
                self.assertEqual(accepted["state"], "TIME_WAIT")
                self.assertEqual(accepted["owner_source"], "listener", accepted)
                self.assertEqual(accepted["process"], listener[0]["process"])
                [r] = rows(self.db, "SELECT owner_source, holders FROM v_lifetimes WHERE lifetime_id = ?",
                           (accepted["id"],))
                self.assertEqual((r["owner_source"], r["holders"]), ("listener", 1))
                srv.stop()

    def test_listener_of_an_earlier_run(self):
        """A listener recorded by an earlier run of the recorder still gives
        its owner to the connections it accepts (a restarted recorder)."""
        srv = Child(self, HOLDER, "127.0.0.1")
        lport = srv.first["lport"]
        once(self.db)  # the listener, and nothing else of it
        c = socket.create_connection(("127.0.0.1", lport))
        cport = c.getsockname()[1]
        srv.say("accept")
        srv.say("close")
        c.recv(1)
        c.close()
        once(self.db)  # the listener's row goes on; the entry is new
        [listener] = rows(self.db, "SELECT * FROM v_lifetimes WHERE local_addr = '127.0.0.1' AND local_port = ?"
                                   " AND state = 'LISTEN'", (lport,))
        self.assertEqual(listener["run_id"], 1)
        accepted = lifetime_json(self.db, lport, cport)
        self.assertEqual(accepted["state"], "TIME_WAIT")
        self.assertEqual(accepted["owner_source"], "listener", accepted)
        self.assertEqual(accepted["process"]["pid"], srv.p.pid)

    def test_between_samples_inferred_client_not(self):
        """Without events, a connection that opened and closed between two
        samples: its server end, on the listener's port, has the listener's
        owner, inferred; its client end (an ephemeral port, no listener)
        none, never a guess."""
        srv = subprocess.Popen([sys.executable, "-c", SERVER, "127.0.0.1"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (srv.stdin.close(), srv.wait(10), srv.stdout.close()))
        lport = json.loads(srv.stdout.readline())["lport"]

        def short():
            srv.stdin.write("go\n")
            srv.stdin.flush()
            return json.loads(srv.stdout.readline())

        rec = Recorder(self.db, "--events", "off")
        made = [rec.between_samples(short) for _ in range(3)]
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        unseen = 0
        for m in made:
            client, server = ends(self.db, "127.0.0.1", lport, m["cport"])
            if not server or not client:
                # Its announcement not read yet when the recorder stopped (the
                # kernel sends them from a work queue, late on a loaded
                # machine): capture is test_events' matter, not this one's.
                print(f"connection from port {m['cport']}: an end not recorded yet", file=sys.stderr)
                continue
            self.assertEqual(len(server), 1, server)
            self.assertEqual(len(client), 1, client)
            self.assertEqual(server[0]["pid"], srv.pid, server[0])
            if server[0]["seen_by"] != "destroy_event_only" or client[0]["seen_by"] is None:
                # A sample that began while it ran and committed after (a
                # loaded machine) saw it held: seen, not inferred.
                self.assertEqual(server[0]["owner_source"], "socket", server[0])
                continue
            unseen += 1
            self.assertEqual(server[0]["owner_source"], "listener", server[0])
            self.assertIsNone(client[0]["pid"], client[0])
            self.assertIsNone(client[0]["owner_source"])
            # The port report shows the same.
            j = lifetime_json(self.db, lport, m["cport"])
            self.assertEqual((j["owner_source"], j["process"]["pid"]), ("listener", srv.pid))
        self.assertGreater(unseen, 0, "no connection fell between two samples")


class LateOwnerTest(unittest.TestCase):
    def setUp(self):
        self.db = os.path.join(scratch_dir(), "connhist.db")

    def test_backlog_then_accepted(self):
        """A connection a sample found in the listener's backlog (no
        descriptor yet: inferred from the listener) and a later sample found
        accepted: the row names the process seen holding it, "socket"."""
        for host in HOSTS:
            with self.subTest(host=host):
                self.db = os.path.join(scratch_dir(), "connhist.db")
                srv = Child(self, HOLDER, host)
                lport = srv.first["lport"]
                c = socket.create_connection((host, lport))
                cport = c.getsockname()[1]
                once(self.db)
                first = lifetime_json(self.db, lport, cport, host)
                self.assertEqual(first["owner_source"], "listener", first)
                srv.say("accept")
                once(self.db)
                later = lifetime_json(self.db, lport, cport, host)
                self.assertEqual(later["id"], first["id"])  # the same lifetime
                self.assertEqual(later["owner_source"], "socket", later)
                self.assertEqual(later["process"]["pid"], srv.p.pid)
                c.close()
                srv.stop()

    def test_event_after_backlog(self):
        """With kernel events: a connection a sample found in the backlog
        (no owner: no inference with events) that the process then accepted
        and read, and closed before a sample saw it accepted, is named by
        the event, "event"."""
        if UNAVAILABLE:
            self.skipTest(UNAVAILABLE)
        srv = Child(self, HOLDER, "127.0.0.1")
        lport = srv.first["lport"]
        rec = Recorder(self.db)
        c = socket.create_connection(("127.0.0.1", lport))
        cport = c.getsockname()[1]
        rec.wait_next()
        rec.wait_next()  # a sample surely saw it in the backlog
        [r] = rows(self.db, "SELECT pid FROM v_lifetimes WHERE local_port = ? AND remote_port = ?", (lport, cport))
        self.assertIsNone(r["pid"])
        srv.say("accept")
        c.sendall(b"x")
        self.assertEqual(srv.say("recv"), {"read": [1]})  # its first act on the socket: an event
        srv.say("close")
        c.close()
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        j = lifetime_json(self.db, lport, cport)
        self.assertEqual(j["owner_source"], "event", j)
        self.assertEqual(j["process"]["pid"], srv.p.pid)


class ReusedDescriptorTest(unittest.TestCase):
    def test_descriptor_of_time_wait_socket(self):
        """A process closes a connection first (it goes to TIME_WAIT) and
        at once opens another, which takes the same descriptor number, its
        descriptor count unchanged: the new one still names its process."""
        db = os.path.join(scratch_dir(), "connhist.db")
        l = socket.socket()
        l.bind(("127.0.0.1", 0))
        l.listen(16)
        self.addCleanup(l.close)
        lport = l.getsockname()[1]
        cli = Child(self, SWAPPER, "127.0.0.1", str(lport))
        a, _ = l.accept()
        rec = Recorder(db, "--events", "off")

        def owner_of(port):
            r = rows(db, "SELECT pid, owner_source FROM v_lifetimes WHERE local_port = ? AND remote_port = ?",
                     (port, lport))
            return r[0] if r else None

        wait_until(lambda: owner_of(cli.first["port"]) is not None, rec.samples, "the first connection recorded")
        self.assertEqual(owner_of(cli.first["port"])["pid"], cli.p.pid)
        swapped = cli.say("swap")
        self.assertEqual(swapped["fd"], cli.first["fd"])
        b, _ = l.accept()
        self.addCleanup(b.close)
        a.close()
        wait_until(lambda: owner_of(swapped["port"]) is not None, rec.samples, "the second connection recorded")
        code, err = rec.stop()
        self.assertEqual(code, 0, err)
        self.assertEqual(rows(db, "SELECT state FROM v_lifetimes WHERE local_port = ? AND remote_port = ?",
                              (cli.first["port"], lport))[0]["state"], "TIME_WAIT")
        self.assertEqual(owner_of(swapped["port"]), {"pid": cli.p.pid, "owner_source": "socket"})


if __name__ == "__main__":
    unittest.main()
