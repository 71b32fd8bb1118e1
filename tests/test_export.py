"""connhist-query export --format ecs, against a real recorder on loopback.

- EcsDocumentsTest: sockets of known shape (TCP over IPv4, a dual-stack
  listener accepting an IPv4 client, an open IPv6 connection, connected
  UDP), recorded by connhist-record and exported. Every field of every
  document (the machine's other sockets too) is checked against the ECS
  field definitions published in the npm package @elastic/ecs (fetched with
  npm pack into the build tree), connhist.* against the index template in
  packaging/, and the documents of the known sockets against what the test
  did: ends, direction, process, times, the Community ID (computed here
  from the specification and checked on its published vectors).
- FollowKillTest: export --follow --cursor --output killed with SIGKILL at
  random moments while the recorder records churning loopback sockets, and
  restarted: no line torn, every lifetime of the database exported, its
  latest document as closed as the database says, nothing repeated more
  than once per kill (the documented at-least-once), and a pass after a
  clean stop repeats nothing.
- DnsExportTest: in a network namespace of its own, a dnsmasq answers
  glibc's resolver while the recorder captures the answers: one document
  per DNS answer (every field checked against ECS like the lifetimes'), the
  connection's destination.domain, and a cursor that writes an answer again
  only when a response repeated it. Skipped, with the reason printed, where
  namespaces or the capture are not permitted.
- ExportArgsTest: the refusals.

Documents of DNS answers (event.dataset connhist.dns) may appear in any
export where the recorder captured the machine's own DNS traffic; the
tests about lifetimes take the connhist.lifetime documents.
"""

import base64
import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import (QUERY, SCHEMA, WRAPPER, add_lifetime, own_comm, rows, scratch_dir,  # noqa: E402
                     start_record, stop_record, wait_for_samples, wait_until)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join(REPO, "packaging", "elasticsearch", "connhist-ecs-template.json")

# The ECS field definitions the export is checked against: a pinned release
# of the npm package, so that a new ECS release cannot change the verdict
# of an old commit. Its generated/ecs_flat.js holds EcsFlat, the flat field
# list (name -> type, normalize, allowed_values ...).
ECS_PACKAGE = "@elastic/ecs@9.4.0"

KEYWORDS = {"keyword", "constant_keyword", "wildcard", "match_only_text", "text"}
INTEGERS = {"long", "integer", "short", "byte", "unsigned_long"}
FLOATS = {"float", "double", "half_float", "scaled_float"}


def ecs_definitions():
    """EcsFlat of ECS_PACKAGE, fetched once into $CONNHIST_NPM_CACHE, by
    default the user's cache ($XDG_CACHE_HOME or ~/.cache, connhist/npm):
    a pinned release, the same for every build and every run."""
    cache = os.environ.get("CONNHIST_NPM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "connhist", "npm")
    name = ECS_PACKAGE.replace("@", "").replace("/", "-") + ".json"
    path = os.path.join(cache, name)
    os.makedirs(cache, exist_ok=True)
    # Test classes run at once (ctest -j): one fetches, the others wait for
    # it (two npm runs filling one npm cache at once have failed here).
    with open(os.path.join(cache, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(path):
            fetch_ecs_definitions(cache, name, path)
    with open(path) as f:
        return json.load(f)


def fetch_ecs_definitions(cache, name, path):
    """npm pack ECS_PACKAGE (three tries: the registry is on the network)
    and EcsFlat of its generated/ecs_flat.js written to PATH as JSON."""
    work = tempfile.mkdtemp(dir=cache)
    for attempt in range(3):
        p = subprocess.run(["npm", "pack", "--loglevel=error", ECS_PACKAGE], cwd=work, capture_output=True,
                           text=True, timeout=600)
        if p.returncode == 0:
            break
        time.sleep(2 * (attempt + 1))
    else:
        raise AssertionError(f"npm pack {ECS_PACKAGE} failed 3 times (exit {p.returncode}): "
                             f"{p.stderr.strip() or p.stdout.strip()} (the npm registry must be reachable once: "
                             f"scripts/test.sh fetches it into {cache} before its tests, which cannot reach it)")
    tgz = os.path.join(work, p.stdout.strip().splitlines()[-1])
    with tarfile.open(tgz) as t:
        t.extract("package/generated/ecs_flat.js", work)
    js = os.path.join(work, "package", "generated", "ecs_flat.js")
    dump = subprocess.run(["node", "-e", "process.stdout.write(JSON.stringify(require(process.argv[1]).EcsFlat))",
                           js], capture_output=True, text=True, timeout=120, check=True).stdout
    with open(os.path.join(work, name), "w") as f:
        f.write(dump)
    os.replace(os.path.join(work, name), path)
    shutil.rmtree(work, ignore_errors=True)


def template_fields():
    """The index template's mappings, flattened: 'source.ip' -> 'ip'."""
    with open(TEMPLATE) as f:
        mappings = json.load(f)["template"]["mappings"]
    out = {}

    def walk(props, prefix):
        for k, v in props.items():
            if "properties" in v:
                walk(v["properties"], prefix + k + ".")
            else:
                out[prefix + k] = v["type"]
    walk(mappings["properties"], "")
    return out


def flatten(doc, prefix=""):
    """Leaf fields of a document: 'source.ip' -> value (lists are values)."""
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def field_names(doc):
    """The leaf field names of doc, the members of an array of objects
    (dns.answers) under the array's name: 'dns.answers.data'."""
    names = set()
    for k, v in flatten(doc).items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            for x in v:
                names.update(k + "." + m for m in flatten(x))
        else:
            names.add(k)
    return names


def type_error(ftype, v):
    """Why v is not a value of the ECS/Elasticsearch type ftype, or None."""
    if ftype in KEYWORDS:
        return None if isinstance(v, str) and v != "" else "not a non-empty string"
    if ftype in INTEGERS:
        return None if isinstance(v, int) and not isinstance(v, bool) else "not an integer"
    if ftype in FLOATS:
        return None if isinstance(v, (int, float)) and not isinstance(v, bool) else "not a number"
    if ftype == "boolean":
        return None if isinstance(v, bool) else "not a boolean"
    if ftype == "ip":
        try:
            ipaddress.ip_address(v)
            return None
        except (ValueError, TypeError):
            return "not an IP address"
    if ftype == "date":
        try:
            datetime.datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%fZ")
            return None
        except (ValueError, TypeError):
            return "not an RFC 3339 UTC time"
    return f"type {ftype} is not expected in an export"


def community_id(proto, a, a_port, b, b_port, seed=0):
    """Community ID v1 as the specification defines it."""
    ab, bb = ipaddress.ip_address(a).packed, ipaddress.ip_address(b).packed
    if not (ab < bb or (ab == bb and a_port < b_port)):
        ab, bb, a_port, b_port = bb, ab, b_port, a_port
    data = struct.pack("!H", seed) + ab + bb + struct.pack("!BBHH", proto, 0, a_port, b_port)
    return "1:" + base64.b64encode(hashlib.sha1(data).digest()).decode()


def unmapped(addr):
    """An address as ECS gets it: an IPv4-mapped IPv6 address as the IPv4 address it is."""
    ip = ipaddress.ip_address(addr)
    return str(ip.ipv4_mapped) if ip.version == 6 and ip.ipv4_mapped else str(ip)


def lifetimes_of(docs):
    """The documents of lifetimes (not of DNS answers)."""
    return [d for d in docs if d["event"]["dataset"] == "connhist.lifetime"]


def check_ecs_fields(test, docs, ecs, template):
    """Every field of docs is an ECS field of its ECS type (allowed values
    included) or, under connhist.*, one of the index template's."""
    for d in docs:
        for name, v in flatten(d).items():
            where = f"{name} = {v!r} in {d['event']['id']}"
            if name.startswith("connhist."):
                test.assertIn(name, template, f"{where}: not in {TEMPLATE}")
                ftype, normalize = template[name], ["array"]
            else:
                test.assertIn(name, ecs, f"{where}: not an ECS field")
                ftype, normalize = ecs[name]["type"], ecs[name].get("normalize", [])
            values = v if isinstance(v, list) else [v]
            if isinstance(v, list):
                test.assertIn("array", normalize, f"{where}: ECS does not take an array here")
                test.assertGreater(len(v), 0, where)
            for x in values:
                if isinstance(x, dict):  # an array of objects (dns.answers): each member checked
                    check_ecs_fields_of(test, x, name, ecs, where)
                    continue
                test.assertIsNone(type_error(ftype, x), f"{where}: {type_error(ftype, x)}")
                if not name.startswith("connhist."):
                    allowed = [a["name"] for a in ecs[name].get("allowed_values", [])]
                    expected = ecs[name].get("expected_values") or []
                    if allowed:
                        test.assertIn(x, allowed, where)
                    if expected:
                        test.assertIn(x, expected, where)


def check_ecs_fields_of(test, obj, prefix, ecs, where):
    """The members of one object of an ECS array of objects (type nested or object)."""
    test.assertIn(ecs[prefix]["type"], ("object", "nested"), where)
    for k, x in flatten(obj, prefix + ".").items():
        test.assertIn(k, ecs, f"{where}: {k} is not an ECS field")
        test.assertIsNone(type_error(ecs[k]["type"], x), f"{where}: {k} = {x!r}: {type_error(ecs[k]['type'], x)}")


def export(db, *args, check=True):
    """Runs export --format ecs; returns (CompletedProcess, parsed documents)."""
    cmd = WRAPPER + [QUERY, "--db", db, "export", "--format", "ecs"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"{cmd} exited {p.returncode}: {p.stderr}")
    return p, [json.loads(line) for line in p.stdout.splitlines()]


class EcsDocumentsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir()
        cls.db = os.path.join(cls.dir, "connhist.db")
        rec = start_record(cls.db, "--interval", "100ms", "--events", "off", log=os.path.join(cls.dir, "rec.log"))
        try:
            wait_for_samples(cls.db, 2, rec)
            cls.make_sockets()
            wait_for_samples(cls.db, 5, rec)
            for s in cls.closing:
                s.close()
            cls.base = rows(cls.db, "SELECT COALESCE(SUM(samples), 0) AS n FROM heartbeats")[0]["n"]
            wait_for_samples(cls.db, cls.base + 5, rec)
        finally:
            stop_record(rec)
        cls.proc, cls.all_docs = export(cls.db)
        cls.docs = lifetimes_of(cls.all_docs)  # the machine's DNS answers may be captured too
        cls.ecs = ecs_definitions()
        cls.template = template_fields()

    @classmethod
    def make_sockets(cls):
        # TCP over IPv4: a listener and a connection, both closed later (client first).
        cls.l4 = socket.socket()
        cls.l4.bind(("127.0.0.1", 0))
        cls.l4.listen()
        cls.c4 = socket.create_connection(cls.l4.getsockname())
        cls.s4, _ = cls.l4.accept()
        cls.c4.sendall(b"x" * 1000)
        cls.s4.recv(1000)
        # A dual-stack listener accepting an IPv4 client: its end is ::ffff:127.0.0.1.
        cls.l6 = socket.socket(socket.AF_INET6)
        cls.l6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        cls.l6.bind(("::", 0))
        cls.l6.listen()
        cls.cd = socket.create_connection(("127.0.0.1", cls.l6.getsockname()[1]))
        cls.sd, _ = cls.l6.accept()
        # An IPv6 connection left open.
        cls.lo6 = socket.socket(socket.AF_INET6)
        cls.lo6.bind(("::1", 0))
        cls.lo6.listen()
        cls.co6 = socket.create_connection(("::1", cls.lo6.getsockname()[1]))
        cls.so6, _ = cls.lo6.accept()
        # Connected UDP.
        cls.us = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cls.us.bind(("127.0.0.1", 0))
        cls.uc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cls.uc.connect(cls.us.getsockname())
        cls.closing = [cls.c4, cls.s4, cls.l4, cls.cd, cls.sd, cls.l6, cls.uc, cls.us]
        cls.c4_port, cls.l4_port = cls.c4.getsockname()[1], cls.l4.getsockname()[1]
        cls.l6_port, cls.lo6_port, cls.us_port = (s.getsockname()[1] for s in (cls.l6, cls.lo6, cls.us))

    @classmethod
    def tearDownClass(cls):
        for s in [cls.co6, cls.so6, cls.lo6]:
            s.close()

    def docs_where(self, **ends):
        """The documents whose source/destination ip and port are as given."""
        found = []
        for d in self.docs:
            f = flatten(d)
            if all(f.get(k.replace("__", ".")) == v for k, v in ends.items()):
                found.append(d)
        return found

    def one(self, **ends):
        found = self.docs_where(**ends)
        self.assertEqual(len(found), 1, f"documents with {ends}: {found}")
        return flatten(found[0])

    def test_exits_cleanly_with_documents_only(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertEqual(self.proc.stderr, "")
        ids = [d["connhist"]["lifetime_id"] for d in self.docs]
        db_ids = [r["lifetime_id"] for r in rows(self.db, "SELECT lifetime_id FROM lifetimes ORDER BY lifetime_id")]
        self.assertEqual(ids, db_ids)  # one document per lifetime, oldest first

    def test_ends_are_the_databases(self):
        addr = {r["addr_id"]: r["addr"] for r in rows(self.db, "SELECT addr_id, addr FROM addrs")}
        ends = {r["lifetime_id"]: r for r in rows(self.db, "SELECT lifetime_id, local_addr_id, local_port,"
                                                           " remote_addr_id, remote_port FROM lifetimes")}
        for d in self.docs:
            r = ends[d["connhist"]["lifetime_id"]]
            want = {(unmapped(addr[r["local_addr_id"]]), r["local_port"])}
            if r["remote_addr_id"] is not None:
                want.add((unmapped(addr[r["remote_addr_id"]]), r["remote_port"]))
            got = {(d[k]["ip"], d[k].get("port")) for k in ("source", "destination") if k in d}
            self.assertEqual(got, want, d)

    def test_every_field_is_ecs_or_in_the_template(self):
        self.assertGreater(len(self.docs), 5)
        check_ecs_fields(self, self.all_docs, self.ecs, self.template)

    def test_template_maps_ecs_fields_as_ecs_types(self):
        exported = set()
        for d in self.all_docs:
            exported.update(field_names(d))
        for name, ftype in self.template.items():
            if not name.startswith("connhist."):
                self.assertIn(name, self.ecs, f"{name} is in the template but is no ECS field")
                self.assertEqual(ftype, self.ecs[name]["type"], name)
        self.assertEqual(sorted(exported - set(self.template)), [])

    def test_tcp_connection_both_ends(self):
        cport, lport = self.c4_port, self.l4_port
        # Both ends of the connection, the client's and the accepted one, say
        # the client is the source: its end is egress, the accepted one ingress.
        docs = [flatten(d) for d in self.docs_where(source__port=cport, destination__port=lport)
                if d.get("process", {}).get("pid") == os.getpid()]  # not an earlier socket's TIME_WAIT
        self.assertEqual(sorted(d["network.direction"] for d in docs), ["egress", "ingress"], docs)
        client = [d for d in docs if d["network.direction"] == "egress"][0]
        server = [d for d in docs if d["network.direction"] == "ingress"][0]
        self.assertNotEqual(client["connhist.lifetime_id"], server["connhist.lifetime_id"])
        for d in docs:
            self.assertEqual(d["source.ip"], "127.0.0.1")
            self.assertEqual(d["destination.ip"], "127.0.0.1")
            self.assertEqual(d["network.transport"], "tcp")
            self.assertEqual(d["network.type"], "ipv4")
            self.assertEqual(d["network.iana_number"], "6")
            closed = rows(self.db, "SELECT closed_after IS NOT NULL AS c FROM lifetimes WHERE lifetime_id = ?",
                          (d["connhist.lifetime_id"],))[0]["c"]
            self.assertEqual(d["event.type"], ["connection", "end" if closed else "start"])
            self.assertEqual(d["event.category"], ["network"])
            self.assertEqual(d["process.pid"], os.getpid())
            self.assertEqual(d["process.name"], own_comm())
            self.assertEqual(d["user.id"], str(os.getuid()))
            self.assertEqual(d["network.community_id"], community_id(6, "127.0.0.1", cport, "127.0.0.1", lport))
            # bytes: what each end sent, from the kernel's counters of that end's socket
            r = rows(self.db, "SELECT bytes_sent, bytes_received FROM lifetimes WHERE lifetime_id = ?",
                     (d["connhist.lifetime_id"],))[0]
            sent, received = ("bytes_sent", "bytes_received") if d is client else ("bytes_received", "bytes_sent")
            self.assertEqual((d.get("source.bytes"), d.get("destination.bytes")), (r[sent], r[received]))
        # the client sent 1000 (the kernel's counters may count its SYN and FIN too), where known
        for d in docs:
            if d.get("source.bytes") is not None:
                self.assertIn(d["source.bytes"], (1000, 1001, 1002))
        # times: the database's, in ECS's units; the accepted end closed (the
        # client's lingers in TIME_WAIT, still open)
        self.assertEqual(server["event.type"], ["connection", "end"])
        r = rows(self.db, "SELECT first_seen, first_seen + closed_after AS closed FROM lifetimes WHERE lifetime_id = ?",
                 (server["connhist.lifetime_id"],))[0]
        self.assertEqual(server["event.duration"], (r["closed"] - r["first_seen"]) * 1000000)
        self.assertGreater(server["event.duration"], 0)
        self.assertEqual(server["@timestamp"], server["event.start"])
        self.assertLess(server["event.start"], server["event.end"])
        host = rows(self.db, "SELECT host, started_at FROM runs ORDER BY run_id LIMIT 1")[0]
        self.assertEqual(client["event.id"], f"{host['host']}:{host['started_at']}:{client['connhist.lifetime_id']}")
        self.assertEqual(client["host.name"], socket.gethostname())
        self.assertEqual(client["host.os.type"], "linux")
        self.assertEqual(client["host.os.kernel"], os.uname().release)

    def test_dual_stack_peer_is_ipv4(self):
        port = self.l6_port
        ends = [flatten(d) for d in self.docs if flatten(d).get("destination.port") == port
                and "source.ip" in flatten(d) and flatten(d).get("process.pid") == os.getpid()]
        self.assertEqual(sorted(d["network.direction"] for d in ends), ["egress", "ingress"], ends)
        accepted = [d for d in ends if d["network.direction"] == "ingress"][0]
        client = [d for d in ends if d["network.direction"] == "egress"][0]
        self.assertEqual(accepted["connhist.socket_family"], 6)  # a dual-stack socket ...
        self.assertEqual(client["connhist.socket_family"], 4)
        for d in ends:  # ... whose peer is written as the IPv4 address it is, not ::ffff:127.0.0.1
            self.assertEqual(d["source.ip"], "127.0.0.1")
            self.assertEqual(d["destination.ip"], "127.0.0.1")
            self.assertEqual(d["network.type"], "ipv4")
            self.assertEqual(d["related.ip"], ["127.0.0.1"])
        cid = community_id(6, "127.0.0.1", client["source.port"], "127.0.0.1", port)
        self.assertEqual((client["network.community_id"], accepted["network.community_id"]), (cid, cid))
        listener = [flatten(d) for d in self.docs if flatten(d).get("destination.port") == port
                    and "source.ip" not in flatten(d) and flatten(d).get("process.pid") == os.getpid()]
        self.assertEqual(len(listener), 1, listener)
        self.assertEqual(listener[0]["destination.ip"], "::")
        self.assertEqual(listener[0]["connhist.state"], "LISTEN")
        self.assertNotIn("network.direction", listener[0])
        self.assertNotIn("network.community_id", listener[0])

    def test_open_lifetime_has_no_end(self):
        port = self.lo6_port
        docs = [flatten(d) for d in self.docs if flatten(d).get("destination.port") == port
                and flatten(d).get("source.ip") == "::1" and flatten(d).get("process.pid") == os.getpid()]
        self.assertEqual(len(docs), 2, docs)  # the client's end and the accepted one
        for d in docs:
            self.assertEqual(d["event.type"], ["connection", "start"])
            for absent in ["event.end", "event.duration", "connhist.last_seen", "connhist.close_reason"]:
                self.assertNotIn(absent, d)
            self.assertEqual(d["network.type"], "ipv6")

    def test_connected_udp(self):
        port = self.us_port
        docs = [flatten(d) for d in self.docs if flatten(d).get("destination.port") == port
                and flatten(d).get("network.transport") == "udp" and flatten(d).get("process.pid") == os.getpid()]
        self.assertEqual(len(docs), 1, docs)
        d = docs[0]
        self.assertEqual(d["network.iana_number"], "17")
        self.assertNotIn("network.direction", d)  # UDP: no evidence of who began
        self.assertEqual(d["network.community_id"], community_id(17, "127.0.0.1", d["source.port"], "127.0.0.1",
                                                                 port))
        self.assertNotIn("source.bytes", d)  # UDP has no byte counters: absent, not 0

    def test_python_community_id_matches_the_published_vectors(self):
        # baseline_deflt.json and baseline_seed1.json of corelight/community-id-spec
        # (commit c4ec2bc40d65ddbcbdd642582bf5609797a80772): the reference this test computes with.
        self.assertEqual(community_id(6, "128.232.110.120", 34855, "66.35.250.204", 80),
                         "1:LQU9qZlK+B5F3KDmev6m5PMibrg=")
        self.assertEqual(community_id(17, "8.8.8.8", 53, "192.168.1.52", 54585), "1:d/FP5EW3wiY1vCndhwleRRKHowQ=")
        self.assertEqual(community_id(6, "2001:470:e5bf:dead:4957:2174:e82c:4887", 63943,
                                      "2607:f8b0:400c:c03::1a", 25, seed=1), "1:eJYTW6AOzFLlSUoESovMjnu7rMw=")


class Churn:
    """Loopback connections opening and closing until stopped, in a thread."""

    def __init__(self):
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        rnd = random.Random(15)
        held = []
        while not self.stop.is_set():
            c = socket.create_connection(self.listener.getsockname())
            s, _ = self.listener.accept()
            held.append((c, s))
            if len(held) > 20 or rnd.random() < 0.5:
                for x in held.pop(rnd.randrange(len(held))):
                    x.close()
            time.sleep(rnd.uniform(0, 0.05))
        for pair in held:
            for x in pair:
                x.close()
        self.listener.close()

    def finish(self):
        self.stop.set()
        self.thread.join()


class FollowKillTest(unittest.TestCase):
    KILLS = 8

    def test_kill_restart_loses_and_repeats_nothing_beyond_at_least_once(self):
        d = scratch_dir()
        db, out, cur = os.path.join(d, "connhist.db"), os.path.join(d, "out.ndjson"), os.path.join(d, "cursor")
        rec = start_record(db, "--interval", "100ms", "--events", "off", log=os.path.join(d, "rec.log"))
        churn = None
        # One connection held open until an export has written its start,
        # then closed: followed from its open to its close, however slowly
        # the killed exports start on this machine.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        held = [socket.create_connection(listener.getsockname())]
        held.append(listener.accept()[0])
        listener.close()
        ports = (held[1].getsockname()[1], held[0].getsockname()[1])

        def held_id():
            """The server end's lifetime (closed second: no TIME_WAIT to wait out)."""
            found = rows(db, "SELECT lifetime_id FROM v_lifetimes WHERE proto = 'tcp' AND local_port = ?"
                             " AND remote_port = ?", ports)
            return found[0]["lifetime_id"] if found else None

        def held_started(lid):
            if lid is None or not os.path.exists(out):
                return False
            with open(out) as f:
                for line in f:
                    if line.endswith("\n") and f'"lifetime_id":{lid},' in line.replace(" ", ""):
                        return True
            return False
        try:
            wait_for_samples(db, 2, rec)
            churn = Churn()
            rnd = random.Random()
            cmd = WRAPPER + [QUERY, "--db", db, "export", "--format", "ecs", "--follow", "--cursor", cur,
                             "--output", out]
            for i in range(self.KILLS):
                p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
                if i == self.KILLS - 1 and held:  # the last one runs until it wrote the held start
                    wait_until(lambda: held_started(held_id()) or p.poll() is not None,
                               lambda: os.path.getsize(out) if os.path.exists(out) else 0,
                               "export --follow writing the held connection's start")
                time.sleep(rnd.uniform(0.2, 2.0))
                p.send_signal(signal.SIGKILL)
                _, err = p.communicate(timeout=60)
                self.assertEqual(err, "")
                if held and held_started(held_id()):
                    held_lid = held_id()
                    for x in held:
                        x.close()
                    held.clear()
            self.assertEqual(held, [], "no export wrote the held connection's start")
            churn.finish()
            churn = None
            # a clean stop: SIGTERM ends the pass in progress and keeps its cursor. The
            # signal is sent once the first pass wrote the cursor (a new file: a new inode).
            def cursor_inode():
                return os.stat(cur).st_ino if os.path.exists(cur) else None
            before = cursor_inode()
            p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
            wait_until(lambda: cursor_inode() not in (None, before) or p.poll() is not None, lambda: None,
                       "the first pass of export --follow")
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=120)
            self.assertEqual((p.returncode, err), (0, ""))
        finally:
            if churn is not None:
                churn.finish()
            stop_record(rec)
        # the recorder is stopped: one last pass takes the database as it is ...
        lines_before_last = sum(1 for _ in open(out))
        p = subprocess.run([c for c in cmd if c != "--follow"], capture_output=True, text=True, timeout=600)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        lines_after_last = sum(1 for _ in open(out))
        # ... and a pass over a database that did not change writes nothing
        p = subprocess.run([c for c in cmd if c != "--follow"], capture_output=True, text=True, timeout=600)
        self.assertEqual((p.returncode, p.stderr), (0, ""))
        self.assertEqual(sum(1 for _ in open(out)), lines_after_last)
        self.assertGreaterEqual(lines_after_last, lines_before_last)

        with open(out) as f:
            text = f.read()
        self.assertTrue(text.endswith("\n"))
        docs = lifetimes_of(json.loads(line) for line in text.splitlines())  # no torn line: each parses
        lifetimes = {r["lifetime_id"]: r for r in rows(db, "SELECT lifetime_id, closed_after FROM lifetimes")}
        seen = {}
        for i, doc in enumerate(docs):
            lid = doc["connhist"]["lifetime_id"]
            self.assertIn(lid, lifetimes, f"line {i + 1}: lifetime {lid} is not in the database")
            seen.setdefault(lid, []).append(doc["event"]["type"][1])
        missing = sorted(set(lifetimes) - set(seen))
        self.assertEqual(missing, [], "lifetimes never exported")
        churned = 0
        for lid, kinds in seen.items():
            closed = lifetimes[lid]["closed_after"] is not None
            self.assertEqual(kinds[-1], "end" if closed else "start", f"lifetime {lid}: {kinds}")
            self.assertLessEqual(kinds.count("start"), 1 + self.KILLS, f"lifetime {lid}: {kinds}")
            self.assertLessEqual(kinds.count("end"), 1 + self.KILLS, f"lifetime {lid}: {kinds}")
            self.assertNotIn("start", kinds[kinds.index("end"):] if "end" in kinds else [], f"lifetime {lid}")
            churned += kinds == ["start", "end"]
        self.assertIn("start", seen[held_lid], "the held connection's start, written while it was open")
        self.assertEqual(seen[held_lid][-1], "end", "the held connection's end, written once it closed")
        ids = {doc["event"]["id"].rsplit(":", 1)[1] for doc in docs}
        self.assertEqual(ids, {str(lid) for lid in seen})  # event.id: one stable id per lifetime
        repeats = len(docs) - sum(len(set(k)) for k in seen.values())
        print(f"{len(docs)} documents of {len(lifetimes)} lifetimes after {self.KILLS} kills; {repeats} repeated; "
              f"{churned} followed from open to close with no repeat",
              file=sys.stderr)


class FollowRotateTest(unittest.TestCase):
    def test_output_moved_away_is_created_again(self):
        d = scratch_dir()
        db, out, cur = os.path.join(d, "connhist.db"), os.path.join(d, "out.ndjson"), os.path.join(d, "cursor")
        rec = start_record(db, "--interval", "100ms", "--events", "off", log=os.path.join(d, "rec.log"))
        exp = None
        try:
            wait_for_samples(db, 2, rec)
            exp = subprocess.Popen(WRAPPER + [QUERY, "--db", db, "export", "--format", "ecs", "--follow", "--cursor",
                                              cur, "--output", out], stderr=subprocess.PIPE, text=True)
            wait_until(lambda: os.path.exists(cur) or exp.poll() is not None, lambda: None, "the first pass")
            os.rename(out, out + ".1")  # as logrotate does
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            port = listener.getsockname()[1]

            def exported():
                if not os.path.exists(out):
                    return False
                with open(out) as f:  # whole lines only: the export may be writing the last one
                    return any(json.loads(line).get("destination", {}).get("port") == port
                               for line in f if line.endswith("\n"))
            wait_until(lambda: exported() or exp.poll() is not None, lambda: None,
                       "the listener in the new output file")
            listener.close()
            exp.send_signal(signal.SIGTERM)
            _, err = exp.communicate(timeout=120)
            self.assertEqual((exp.returncode, err), (0, ""))
        finally:
            if exp is not None and exp.poll() is None:
                exp.kill()
            stop_record(rec)
        docs = []
        for path in (out + ".1", out):
            with open(path) as f:
                docs += lifetimes_of(json.loads(line) for line in f)
        versions = [(doc["event"]["id"], doc["event"]["type"][1]) for doc in docs]
        self.assertEqual(len(versions), len(set(versions)))  # nothing written twice across the move


class FixtureTest(unittest.TestCase):
    """A database written by hand, for what a short recording does not show."""

    def test_ends_whose_addresses_share_a_cache_slot(self):
        # addr_ids 1, 65537 and 131073 fall into one slot of export's address
        # cache: the local end must not be overwritten by the remote's lookup
        db = os.path.join(scratch_dir(), "fixture.db")
        c = sqlite3.connect(db)
        with open(SCHEMA) as f:
            c.executescript(f.read())
        c.execute("INSERT INTO runs(run_id, started_at, mode, interval_ms, host, os, sampler, version, pid)"
                  " VALUES (1, 1700000000000, 'continuous', 1000, 'fixture', 'Linux 6.1.0-18-amd64', 'netlink',"
                  " '0.1.0', 1)")
        c.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (1, 1700000000000, 1700000010000, 11)")
        c.execute("INSERT INTO addrs(addr_id, addr) VALUES (1, '10.0.0.5'), (65537, '192.0.2.7'),"
                  " (131073, '::ffff:198.51.100.9'), (2, '::ffff:10.0.0.5')")
        add_lifetime(c, 1, 1700000001000, local_addr="10.0.0.5", local_port=40000, remote_addr="192.0.2.7",
                     remote_port=443, states="SYN_SENT,ESTABLISHED", state="ESTABLISHED", closed_at=1700000002500,
                     last_seen=1700000002000, close_reason="gone")
        add_lifetime(c, 2, 1700000003000, family=6, local_addr="::ffff:10.0.0.5", local_port=40001,
                     remote_addr="::ffff:198.51.100.9", remote_port=53, proto="udp", state="UNCONN")
        c.commit()
        c.close()
        _, docs = export(db)
        self.assertEqual(len(docs), 2)
        tcp, udp = (flatten(d) for d in docs)
        self.assertEqual((tcp["source.ip"], tcp["source.port"], tcp["destination.ip"], tcp["destination.port"]),
                         ("10.0.0.5", 40000, "192.0.2.7", 443))
        self.assertEqual(tcp["network.direction"], "egress")  # first seen in SYN_SENT
        self.assertEqual(tcp["event.duration"], 1500 * 1000000)
        self.assertEqual(tcp["connhist.last_seen"], "2023-11-14T22:13:22.000Z")
        self.assertEqual(tcp["event.id"], "fixture:1700000000000:1")
        self.assertEqual(tcp["host.os.kernel"], "6.1.0-18-amd64")
        self.assertEqual(tcp["network.community_id"], community_id(6, "10.0.0.5", 40000, "192.0.2.7", 443))
        self.assertEqual((udp["source.ip"], udp["destination.ip"], udp["network.type"]),
                         ("10.0.0.5", "198.51.100.9", "ipv4"))
        self.assertEqual(udp["related.ip"], ["10.0.0.5", "198.51.100.9"])
        for absent in ("process.pid", "user.id", "event.end", "network.direction"):
            self.assertNotIn(absent, udp)


class DnsExportTest(unittest.TestCase):
    """Answers captured from a dnsmasq in a namespace of this test's own."""

    def setUp(self):
        from test_names import why_skip  # the same conditions as the names tests'
        why = why_skip()
        if why:
            print(f"skipped: {why}", file=sys.stderr)
            self.skipTest(why)
        from names_fixture import Resolver
        self.resolver = Resolver("--host-record=web.test,127.0.0.7", "--host-record=two.test,127.0.0.8",
                                 "--host-record=peer.test,127.0.0.9", ttl=600)
        self.addCleanup(self.resolver.stop)
        self.dir = scratch_dir()
        self.db = os.path.join(self.dir, "connhist.db")
        self.server = socket.socket()
        self.server.bind(("0.0.0.0", 0))
        self.server.listen(16)
        self.addCleanup(self.server.close)
        self.port = self.server.getsockname()[1]
        self.rec = start_record(self.db, "--interval", "100ms", "--events", "off", "--names", "on",
                                log=os.path.join(self.dir, "rec.log"))
        self.addCleanup(lambda: self.rec.poll() is not None or stop_record(self.rec))
        wait_for_samples(self.db, 2, self.rec)

    def samples(self):
        return rows(self.db, "SELECT COALESCE(SUM(samples), 0) AS n FROM heartbeats")[0]["n"]

    def answers(self, name):
        """(answer_id, times_seen) of name's answers, as committed."""
        return [(r["answer_id"], r["times_seen"]) for r in
                rows(self.db, "SELECT answer_id, times_seen FROM v_dns_answers WHERE qname = ?", (name,))]

    def resolve_and_wait(self, name, times_seen):
        """Resolves name (glibc's resolver, this process) and waits until its
        answer is committed having been seen times_seen times in all."""
        from names_fixture import resolve
        addr = resolve(name)
        wait_until(lambda: sum(t for _, t in self.answers(name)) >= times_seen, self.samples,
                   f"the answer for {name} seen {times_seen} times")
        return addr

    def ask_and_wait(self, name, times_seen):
        """Asks name's A record from one UDP socket of this test's, held open
        and sampled with its owner before it asks: every answer it gets has
        the same known asker (glibc's resolver asks from a new socket each
        time, whose owner only a sample that caught it knows, and an answer
        repeated for another asker is another row). Waits as
        resolve_and_wait does."""
        from names_fixture import dns_query
        if getattr(self, "asker", None) is None:
            self.asker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.addCleanup(self.asker.close)
            self.asker.connect(("127.0.0.1", 53))
            sql = "SELECT count(*) AS n FROM v_lifetimes WHERE proto = 'udp' AND local_port = ? AND pid = ?"
            port = self.asker.getsockname()[1]
            wait_until(lambda: rows(self.db, sql, (port, os.getpid()))[0]["n"] > 0, self.samples,
                       "a sample of the asking socket")
        self.asker.send(dns_query(name))
        self.asker.recv(512)
        wait_until(lambda: sum(t for _, t in self.answers(name)) >= times_seen, self.samples,
                   f"the answer for {name} seen {times_seen} times")

    def connect_and_wait(self, addr, source=None):
        c = socket.create_connection((addr, self.port), source_address=source)
        self.addCleanup(c.close)
        local = c.getsockname()[1]
        wait_until(lambda: rows(self.db, "SELECT count(*) AS n FROM lifetimes WHERE local_port = ? AND remote_port = ?",
                                (local, self.port))[0]["n"] > 0, self.samples, "a sample of the connection")
        return local

    def answer_docs(self, docs, name):
        return [flatten(d) for d in docs if d["event"]["dataset"] == "connhist.dns"
                and d["dns"]["question"]["name"] == name]

    def test_answer_documents_and_the_connections_domain(self):
        addr = self.resolve_and_wait("web.test", 1)
        self.assertEqual(addr, "127.0.0.7")
        local = self.connect_and_wait(addr)
        _, docs = export(self.db)
        check_ecs_fields(self, docs, ecs_definitions(), template_fields())
        web = self.answer_docs(docs, "web.test")
        self.assertEqual(len(web), 1, web)
        a = web[0]
        (answer_id, _), = self.answers("web.test")
        host = rows(self.db, "SELECT host, started_at FROM runs ORDER BY run_id LIMIT 1")[0]
        self.assertEqual(a["event.id"], f"{host['host']}:{host['started_at']}:dns:{answer_id}")
        self.assertEqual((a["event.kind"], a["event.category"], a["event.type"], a["dns.type"]),
                         ("event", ["network"], ["protocol"], "answer"))
        self.assertEqual(a["dns.answers"], [{"name": "web.test", "type": "A", "class": "IN", "data": "127.0.0.7",
                                             "ttl": 600}])
        self.assertEqual(a["dns.resolved_ip"], ["127.0.0.7"])
        self.assertEqual(a["dns.question.type"], "A")  # the question's type, recorded beside the record's
        self.assertEqual((a["server.ip"], a["server.port"], a["client.ip"]), ("127.0.0.1", 53, "127.0.0.1"))
        self.assertEqual(a["network.transport"], "udp")
        self.assertEqual(a["network.protocol"], "dns")
        self.assertEqual(a["@timestamp"], a["event.start"])
        self.assertLessEqual(a["event.start"], a["event.end"])
        self.assertEqual(sorted(a["related.ip"]), ["127.0.0.1", "127.0.0.7"])
        if "process.pid" in a:  # the asking socket is seen only when a sample caught it
            self.assertEqual(a["process.pid"], os.getpid())
        # the connection: the client's end names its destination; the accepted
        # end's remote (the client, 127.0.0.1) was never resolved
        ends = [flatten(d) for d in lifetimes_of(docs) if flatten(d).get("destination.port") == self.port
                and flatten(d).get("source.port") == local]
        self.assertEqual(sorted(d["network.direction"] for d in ends), ["egress", "ingress"], ends)
        for d in ends:
            if d["network.direction"] == "egress":
                self.assertEqual(d["destination.domain"], "web.test")
            else:
                self.assertNotIn("destination.domain", d)
            self.assertNotIn("source.domain", d)
        # a client whose address has a name: the accepted end (ingress) names its source
        peer = self.resolve_and_wait("peer.test", 1)
        local = self.connect_and_wait(self.resolve_and_wait("web.test", 1), source=(peer, 0))
        _, docs = export(self.db)
        ends = {flatten(d)["network.direction"]: flatten(d) for d in lifetimes_of(docs)
                if flatten(d).get("destination.port") == self.port and flatten(d).get("source.port") == local}
        self.assertEqual(sorted(ends), ["egress", "ingress"], ends)
        self.assertEqual((ends["ingress"]["source.domain"], ends["ingress"]["source.ip"]), ("peer.test", peer))
        self.assertNotIn("destination.domain", ends["ingress"])
        self.assertEqual(ends["egress"]["destination.domain"], "web.test")
        self.assertNotIn("source.domain", ends["egress"])

    def test_cursor_writes_an_answer_again_only_when_repeated(self):
        self.ask_and_wait("web.test", 1)
        cur = os.path.join(self.dir, "cursor")
        _, first = export(self.db, "--cursor", cur)
        self.assertEqual(len(self.answer_docs(first, "web.test")), 1)
        with open(cur) as f:
            saved = json.load(f)
        self.assertGreater(saved["next_answer_id"], 0)
        # a new name: only its answer, not web.test's again
        self.resolve_and_wait("two.test", 1)
        _, second = export(self.db, "--cursor", cur)
        self.assertEqual(len(self.answer_docs(second, "two.test")), 1, second)
        self.assertEqual(self.answer_docs(second, "web.test"), [])
        # a response that repeats web.test moves its last_seen: the same event.id again, seen twice
        before = self.answer_docs(first, "web.test")[0]
        self.ask_and_wait("web.test", 2)
        _, third = export(self.db, "--cursor", cur)
        again = self.answer_docs(third, "web.test")
        self.assertEqual(len(again), 1, third)
        self.assertEqual(again[0]["event.id"], before["event.id"])
        self.assertEqual(again[0]["connhist.times_seen"], 2)
        self.assertGreater(again[0]["event.end"], before["event.end"])
        self.assertEqual(self.answer_docs(third, "two.test"), [])
        # stopped recorder: one more pass repeats no answer
        stop_record(self.rec)
        export(self.db, "--cursor", cur)
        _, last = export(self.db, "--cursor", cur)
        self.assertEqual([d for d in last if d["event"]["dataset"] == "connhist.dns"], [])
        # a cursor written before answers were exported (no answers part) still loads: every answer once
        with open(cur) as f:
            old = json.load(f)
        del old["next_answer_id"], old["answers_last_seen"]
        with open(cur, "w") as f:
            json.dump(old, f)
        _, docs = export(self.db, "--cursor", cur)
        self.assertEqual(lifetimes_of(docs), [])
        got = sorted(d["dns"]["question"]["name"] for d in docs if d["event"]["dataset"] == "connhist.dns")
        want = sorted(r["qname"] for r in rows(self.db, "SELECT qname FROM v_dns_answers"))
        self.assertEqual(got, want)


class ExportArgsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = scratch_dir()
        cls.db = os.path.join(cls.dir, "connhist.db")
        rec = start_record(cls.db, "--interval", "100ms", "--events", "off")
        try:
            wait_for_samples(cls.db, 2, rec)
        finally:
            stop_record(rec)

    def refused(self, *args, code=2):
        p, _ = export(self.db, *args, check=False)
        self.assertEqual(p.returncode, code, p.stderr)
        self.assertEqual(p.stdout, "")
        self.assertEqual(len(p.stderr.splitlines()), 1, p.stderr)
        return p.stderr

    def test_unknown_format(self):
        p = subprocess.run(WRAPPER + [QUERY, "--db", self.db, "export", "--format", "csv"], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 2)
        self.assertIn("'csv' is not an export format (expected ecs)", p.stderr)

    def test_follow_refuses_what_a_cursor_cannot_keep(self):
        for opt in (["--until", "now"], ["--limit", "3"], ["--open"], ["--state", "LISTEN"]):
            self.assertIn(f"{opt[0]}: not with --follow", self.refused("--follow", *opt))
            self.assertIn(f"{opt[0]}: not with --cursor", self.refused("--cursor", os.path.join(self.dir, "c"), *opt))

    def test_cursor_of_another_database(self):
        cur = os.path.join(self.dir, "other-cursor")
        with open(cur, "w") as f:
            json.dump({"connhist_export_cursor": 1, "database": "elsewhere:1", "next_id": 5, "open": []}, f)
        self.assertIn("belongs to the database 'elsewhere:1'", self.refused("--cursor", cur, code=1))

    def test_damaged_cursor(self):
        cur = os.path.join(self.dir, "bad-cursor")
        with open(cur, "w") as f:
            f.write("{\"connhist_export_cursor\": 1, \"next")
        self.assertIn("not a cursor file", self.refused("--cursor", cur, code=1))

    def test_torn_last_line_is_cut(self):
        out, cur = os.path.join(self.dir, "torn.ndjson"), os.path.join(self.dir, "torn-cursor")
        with open(out, "w") as f:
            f.write('{"whole": 1}\n{"torn": ')
        p, _ = export(self.db, "--cursor", cur, "--output", out)
        with open(out) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], '{"whole": 1}')
        docs = lifetimes_of(json.loads(line) for line in lines[1:])
        self.assertEqual(len(docs), rows(self.db, "SELECT COUNT(*) AS n FROM lifetimes")[0]["n"])


if __name__ == "__main__":
    unittest.main()
