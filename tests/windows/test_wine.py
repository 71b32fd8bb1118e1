#!/usr/bin/env python3
"""Integration test of the Windows programs under Wine (run by scripts/windows-cross.sh).

Opens TCP and UDP sockets on loopback (IPv4 and IPv6) on the host, runs
connhist-record.exe --once under Wine, and checks that the database's open
lifetimes hold them as the host's own tables (ss) list them, that
connhist-query.exe reports them as JSON, that a second run adds no rows, and
that the recorder survived what Wine 8 lacks (GetOwnerModuleFrom*Entry,
GetPerTcp*ConnectionEStats, pids and creation times of 0) and said so in
the run row.
"""
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import unittest

WINE = os.environ.get("CONNHIST_WINE", "wine64")
WIN_DIR = os.environ["CONNHIST_WIN_DIR"]
ENV = dict(os.environ, WINEDEBUG="-all", WINEDLLOVERRIDES="mscoree,mshtml=")


def run_exe(name, *args):
    return subprocess.run([WINE, os.path.join(WIN_DIR, name), *args], env=ENV, capture_output=True,
                          timeout=300)


def wine_path(path):
    """Wine maps the host's / to drive Z:."""
    return "Z:" + path.replace("/", "\\")


def ss_ports():
    """(proto, local port) of every socket the host's own tables list."""
    out = subprocess.run(["ss", "-Htuan"], capture_output=True, text=True, check=True).stdout
    ports = set()
    for line in out.splitlines():
        f = line.split()
        ports.add((f[0], int(f[4].rsplit(":", 1)[1])))
    return ports


class WineRecordTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.socks = []
        cls.expect = []  # (proto, family, local_addr, local_port)
        for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            fam = 4 if family == socket.AF_INET else 6
            t = socket.socket(family, socket.SOCK_STREAM)
            t.bind((addr, 0))
            t.listen()
            u = socket.socket(family, socket.SOCK_DGRAM)
            u.bind((addr, 0))
            cls.socks += [t, u]
            cls.expect += [("tcp", fam, addr, t.getsockname()[1]), ("udp", fam, addr, u.getsockname()[1])]
        # An established connection that moved data: byte counters would apply to it.
        cls.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cls.server.bind(("127.0.0.1", 0))
        cls.server.listen()
        client = socket.create_connection(cls.server.getsockname())
        accepted, _ = cls.server.accept()
        client.sendall(b"x" * 10000)
        got = 0
        while got < 10000:
            got += len(accepted.recv(65536))
        cls.socks += [cls.server, client, accepted]
        cls.dir = tempfile.TemporaryDirectory()
        cls.db = os.path.join(cls.dir.name, "sub", "connhist.db")
        cls.first = run_exe("connhist-record.exe", "--once", "--db", wine_path(cls.db))
        cls.second = run_exe("connhist-record.exe", "--once", "--db", wine_path(cls.db),
                             "--reservation", "tcp:5000:20", "--reservation", "udp:6000:4")

    @classmethod
    def tearDownClass(cls):
        for s in cls.socks:
            s.close()
        cls.dir.cleanup()

    def rows(self, sql):
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql)]
        finally:
            con.close()

    def test_runs_survive_wine(self):
        for p in (self.first, self.second):
            self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        runs = self.rows("SELECT * FROM runs ORDER BY run_id")
        self.assertEqual(len(runs), 2)
        for r in runs:
            self.assertEqual(r["sampler"], "iphlpapi")
            self.assertEqual(r["end_reason"], "once")
            self.assertTrue(r["os"].startswith("Windows"))
            self.assertIsNone(r["uid"])
        # Wine 8 lacks GetOwnerModuleFrom*Entry: said once per run, in the log and the run row.
        self.assertIn("GetOwnerModuleFromTcpEntry", runs[0]["notes"] or "")
        self.assertEqual(self.first.stderr.decode().count("GetOwnerModuleFromTcpEntry"), 1)

    def test_reservations_without_lookup_functions(self):
        # Wine 8 exports no LookupPersistent*PortReservation: noted once, nothing
        # made up; the ephemeral range has no documented call and stays unknown.
        self.assertEqual(self.second.returncode, 0, self.second.stderr.decode(errors="replace"))
        runs = self.rows("SELECT * FROM runs ORDER BY run_id")
        self.assertIn("LookupPersistent*PortReservation is not available", runs[1]["notes"] or "")
        self.assertEqual(self.second.stderr.decode().count("LookupPersistent"), 1)
        self.assertEqual(self.rows("SELECT * FROM port_ranges"), [])

    def test_byte_counters_unknown_under_wine(self):
        # Wine 8 lacks GetPerTcp*ConnectionEStats: TCP counters are unknown
        # (NULL, never 0), the run still works, and its notes say why.
        for p in (self.first, self.second):
            self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace"))
        port = self.server.getsockname()[1]
        conns = self.rows("SELECT * FROM v_lifetimes WHERE proto = 'tcp' AND remote_addr IS NOT NULL"
                          f" AND (local_port = {port} OR remote_port = {port})")
        self.assertTrue(any(r["state"] == "ESTABLISHED" for r in conns), conns)
        tcp = self.rows("SELECT bytes_sent, bytes_received FROM v_lifetimes WHERE proto = 'tcp'")
        self.assertTrue(tcp)
        for r in tcp:
            self.assertIsNone(r["bytes_sent"])
            self.assertIsNone(r["bytes_received"])
        for run in self.rows("SELECT notes FROM runs ORDER BY run_id"):
            notes = (run["notes"] or "").split("; ")
            said = [n for n in notes if re.search(r"[GS]etPerTcp6?ConnectionEStats", n)]
            self.assertEqual(len(said), 1, run["notes"])

    def test_open_lifetimes_match_host_tables(self):
        host = ss_ports()
        open_rows = self.rows("SELECT * FROM v_lifetimes WHERE closed_at IS NULL")
        seen = {(r["proto"], r["family"], r["local_addr"], r["local_port"]): r for r in open_rows}
        for e in self.expect:
            self.assertIn((e[0], e[3]), host, f"ss does not list {e}")
            self.assertIn(e, seen, f"{e} not among open lifetimes")
            r = seen[e]
            self.assertEqual(r["state"], "LISTEN" if e[0] == "tcp" else "UNCONN")
            self.assertIsNone(r["remote_addr"])
            # Wine reports pid and creation time 0: no owner and no time, never a guessed one.
            if r["pid"] is None:
                self.assertIsNone(r["holders"])
            self.assertIsNone(r["owner_module"])

    def test_second_run_adds_no_rows(self):
        # Our sockets only: another process may hold two sockets with the
        # same addresses (SO_REUSEPORT), or the same port on another address.
        ports = ",".join(str(e[3]) for e in self.expect)
        per_socket = self.rows("SELECT proto, family, local_addr, local_port, remote_addr, remote_port, count(*) AS n"
                               f" FROM v_lifetimes WHERE closed_at IS NULL AND local_port IN ({ports})"
                               " GROUP BY 1, 2, 3, 4, 5, 6 HAVING n > 1")
        self.assertEqual(per_socket, [])
        for e in self.expect:
            n = self.rows(f"SELECT count(*) AS n FROM v_lifetimes WHERE proto = '{e[0]}' AND local_port = {e[3]}"
                          f" AND local_addr = '{e[2]}'")
            self.assertEqual(n[0]["n"], 1, e)

    def test_chain_verifies(self):
        """The chain BCrypt wrote verifies under Wine, and its link hashes
        are plain SHA-256 as documented (recomputed here with hashlib)."""
        q = run_exe("connhist-query.exe", "--db", wine_path(self.db), "verify")
        self.assertEqual(q.returncode, 0, q.stdout.decode(errors="replace") + q.stderr.decode(errors="replace"))
        doc = json.loads(q.stdout.decode("utf-8"))
        self.assertTrue(doc["intact"])
        links = self.rows("SELECT seq, at, kind, rows, mset, hash FROM chain_links ORDER BY seq")
        self.assertEqual(doc["links"]["head"]["seq"], links[-1]["seq"])
        prev = bytes(32)
        for link in links:
            body = (b"connhist-link\0" + prev + link["seq"].to_bytes(8, "big") + link["at"].to_bytes(8, "big") +
                    link["rows"].to_bytes(8, "big") + bytes([link["kind"]]) + link["mset"])
            self.assertEqual(hashlib.sha256(body).digest(), link["hash"], link["seq"])
            prev = link["hash"]
        copy = os.path.join(self.dir.name, "tampered.db")
        shutil.copy(self.db, copy)
        con = sqlite3.connect(copy)
        con.execute("UPDATE lifetimes SET local_port = local_port + 1 WHERE lifetime_id = 1")
        con.commit()
        con.close()
        q = run_exe("connhist-query.exe", "--db", wine_path(copy), "verify")
        self.assertEqual(q.returncode, 1, q.stderr.decode(errors="replace"))
        doc = json.loads(q.stdout.decode("utf-8"))
        self.assertEqual([(r["table"], r["rowid"]) for r in doc["first_failure"]["rows"]], [("lifetimes", 1)])

    def test_anchors_in_the_event_log(self):
        """The anchors go to the Application event log (RegisterEventSourceW,
        ReportEventW). Wine 8's ReportEventW writes no log: it traces each
        string on its eventlog debug channel, so the anchors are read from
        that trace here; the run's last names the head, which verify reaches."""
        db = os.path.join(self.dir.name, "anchored.db")
        p = subprocess.run([WINE, os.path.join(WIN_DIR, "connhist-record.exe"), "--once", "--db", wine_path(db)],
                           env=dict(ENV, WINEDEBUG="-all,trace+eventlog"), capture_output=True, timeout=300)
        err = p.stderr.decode(errors="replace")
        self.assertEqual(p.returncode, 0, err)
        heads = re.findall(r'trace:eventlog:ReportEventW L"connhist chain head seq=(\d+) hash=([0-9a-f]{64}) at=', err)
        self.assertTrue(heads, err[-2000:])
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        seq, h = con.execute("SELECT seq, lower(hex(hash)) FROM chain_links ORDER BY seq DESC LIMIT 1").fetchone()
        con.close()
        self.assertEqual(heads[-1], (str(seq), h), "the run's end anchors its head")
        q = run_exe("connhist-query.exe", "--db", wine_path(db), "verify", "--anchor", f"{seq}:{h}")
        self.assertEqual(q.returncode, 0, q.stdout.decode(errors="replace") + q.stderr.decode(errors="replace"))
        self.assertTrue(json.loads(q.stdout.decode("utf-8"))["anchors"][0]["reached"])

    def test_query_reports_json(self):
        q = run_exe("connhist-query.exe", "--db", wine_path(self.db), "listeners")
        self.assertEqual(q.returncode, 0, q.stderr.decode(errors="replace"))
        doc = json.loads(q.stdout.decode("utf-8"))
        got = {(l["proto"], l["family"], l["local_addr"], l["local_port"]) for l in doc["lifetimes"]}
        for e in self.expect:
            self.assertIn(e, got)
        self.assertEqual(doc["header"]["report"], "listeners")

    def test_query_several_databases(self):
        """A directory of databases: listed by name, a hard link to one of them read once."""
        d = os.path.join(self.dir.name, "fleet")
        os.makedirs(os.path.join(d, "sub"))
        for name in ("a.db", "b.db"):
            shutil.copy(self.db, os.path.join(d, name))
        os.link(os.path.join(d, "a.db"), os.path.join(d, "c.db"))
        q = run_exe("connhist-query.exe", "--db", wine_path(d), "listeners")
        self.assertEqual(q.returncode, 0, q.stderr.decode(errors="replace"))
        doc = json.loads(q.stdout.decode("utf-8"))
        names = [wine_path(os.path.join(d, n)) for n in ("a.db", "b.db", "c.db")]
        self.assertEqual([x["database"] for x in doc["header"]["databases"]], names[:2])
        self.assertEqual(doc["header"]["duplicates"], [{"database": names[2], "same_as": names[0]}])
        for section in doc["databases"]:
            got = {(l["proto"], l["family"], l["local_addr"], l["local_port"]) for l in section["lifetimes"]}
            self.assertTrue(set(self.expect) <= got, section["database"])
            self.assertTrue(all(l["host"] == section["host"] for l in section["lifetimes"]))


if __name__ == "__main__":
    unittest.main(verbosity=2)
