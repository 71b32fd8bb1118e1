"""The shipper configurations of packaging/ (issue 15), as far as they can
be checked without Filebeat, Vector or Elasticsearch (none is in Debian or
npm): each file parses (YAML, TOML, JSON, the systemd unit's command line),
the shippers read the file the export service writes and the README
documents, take event.id as the document id (a copy: both shippers would
remove the field they take it from) with the operation "index",
and write to the index the template's patterns cover; the template maps
every field a real export writes (a real recorder, real answers in SQLite)
with a type compatible with its value.

What stays untested: that Filebeat and Vector accept these options (their
own schema checks), that documents reach a cluster, and that the cluster
applies the template."""

import fnmatch
import json
import os
import shlex
import sqlite3
import subprocess
import sys
import tomllib
import unittest

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from helpers import QUERY, WRAPPER, scratch_dir  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGING = os.path.join(REPO, "packaging")
SCHEMA = os.path.join(REPO, "schema", "schema.sql")

# Elasticsearch field types (mapping types) a template may use.
ES_TYPES = {"keyword", "constant_keyword", "wildcard", "text", "match_only_text", "long", "integer", "short",
            "byte", "double", "float", "scaled_float", "unsigned_long", "date", "date_nanos", "boolean", "ip",
            "object", "flattened", "nested", "geo_point"}


def load(*path):
    with open(os.path.join(PACKAGING, *path), "rb") as f:
        return f.read()


def service_args():
    """The export service's connhist-query arguments (systemd's line continuations joined)."""
    text = load("linux", "connhist-export.service").decode().replace("\\\n", " ")
    line, = [l for l in text.splitlines() if l.startswith("ExecStart=")]
    return shlex.split(line[len("ExecStart="):])


def option(args, name):
    return args[args.index(name) + 1]


def template():
    return json.loads(load("elasticsearch", "connhist-ecs-template.json"))


def template_fields():
    out = {}

    def walk(props, prefix):
        for k, v in props.items():
            if "properties" in v:
                walk(v["properties"], prefix + k + ".")
            else:
                out[prefix + k] = v["type"]
    walk(template()["template"]["mappings"]["properties"], "")
    return out


def compatible(es_type, value):
    """Whether a JSON value can be indexed under es_type (arrays: each element)."""
    if isinstance(value, list):
        return all(compatible(es_type, v) for v in value)
    if es_type in ("keyword", "constant_keyword", "wildcard", "text", "match_only_text", "ip", "date"):
        return isinstance(value, str)
    if es_type in ("long", "integer", "short", "byte", "unsigned_long"):
        return isinstance(value, int) and not isinstance(value, bool)
    if es_type in ("double", "float", "scaled_float"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if es_type == "boolean":
        return isinstance(value, bool)
    return es_type in ("flattened", "object", "nested")


def leaves(doc, prefix=""):
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(leaves(v, prefix + k + "."))
        elif isinstance(v, list) and v and all(isinstance(e, dict) for e in v):
            for e in v:  # an array of objects (dns.answers): its fields, each element's
                for kk, vv in leaves(e, prefix + k + ".").items():
                    out.setdefault(kk, []).append(vv)
        else:
            out[prefix + k] = v
    return out


class ConfigsTest(unittest.TestCase):
    def test_the_service_writes_where_the_shippers_read(self):
        args = service_args()
        self.assertEqual(args[1:4], ["export", "--format", "ecs"])
        self.assertIn("--follow", args)
        out = option(args, "--output")
        self.assertEqual(out, "/var/log/connhist/ecs.ndjson")
        with open(os.path.join(REPO, "README.md")) as f:
            readme = f.read()
        self.assertIn(option(args, "--cursor"), readme)

        fb = yaml.safe_load(load("filebeat", "connhist.yml"))
        inp, = fb["filebeat.inputs"]
        self.assertEqual(inp["type"], "filestream")
        self.assertTrue(any(fnmatch.fnmatch(out, p) for p in inp["paths"]), inp["paths"])
        nd, = [p["ndjson"] for p in inp["parsers"] if "ndjson" in p]
        self.assertEqual(nd["target"], "")  # the document's fields at the top level, where event.id is looked up
        # Not the parser's document_id: Filebeat's reader finds a dotted key
        # (mapstr GetValue) but deletes it from the indexed document
        # (libbeat/reader/readjson/json.go); the id goes to @metadata._id,
        # which the Elasticsearch output sends as _id, by a copy.
        self.assertNotIn("document_id", nd)
        copies = [f for p in inp["processors"] if "copy_fields" in p for f in p["copy_fields"]["fields"]]
        self.assertEqual(copies, [{"from": "event.id", "to": "@metadata._id"}])
        # The output sends "create" for a document with an id unless
        # @metadata.op_type is "index": a close would then be refused as a conflict.
        ops = [p["add_fields"]["fields"]["op_type"] for p in inp["processors"]
               if "add_fields" in p and p["add_fields"]["target"] == "@metadata"]
        self.assertEqual(ops, ["index"])
        self.assertFalse(any("event" in str(p.get("drop_fields", {}).get("fields")) for p in inp["processors"]))

        vec = tomllib.loads(load("vector", "connhist.toml").decode())
        src, = vec["sources"].values()
        self.assertEqual(src["type"], "file")
        self.assertTrue(any(fnmatch.fnmatch(out, p) for p in src["include"]), src["include"])
        sink, = vec["sinks"].values()
        # Vector's sink removes the id_key field from the document it sends:
        # the id is a copy of event.id made by the transform, not event.id.
        self.assertEqual((sink["type"], sink["bulk"]["action"]), ("elasticsearch", "index"))
        self.assertNotEqual(sink["id_key"], "event.id")
        transform, = vec["transforms"].items()
        remap = [l.strip() for l in transform[1]["source"].splitlines() if l.strip()]
        self.assertIn(f".{sink['id_key']} = string!(.event.id)", remap)
        self.assertLess(remap.index(". = parse_json!(string!(.message))"),
                        remap.index(f".{sink['id_key']} = string!(.event.id)"))
        # The sink reads what the transform makes of what the source reads.
        self.assertEqual(transform[1]["inputs"], list(vec["sources"]))
        self.assertEqual(sink["inputs"], [transform[0]])

        # Both write to one index the template covers, and the README names.
        patterns = template()["index_patterns"]
        for index in (fb["output.elasticsearch"]["index"], sink["bulk"]["index"]):
            self.assertEqual(index, "connhist-lifetimes")
            self.assertTrue(any(fnmatch.fnmatch(index, p) for p in patterns), (index, patterns))
            self.assertIn(f"`{index}`", readme)

    def test_template_types_are_elasticsearch_types(self):
        t = template()
        self.assertIs(t["template"]["mappings"]["date_detection"], False)
        for field, es_type in template_fields().items():
            self.assertIn(es_type, ES_TYPES, field)


class ExportAgainstTemplateTest(unittest.TestCase):
    """Every field of a real export (lifetimes of a database the schema made,
    and DNS answers with their question type) has a mapping of a type its
    values fit."""

    def test_every_exported_field_is_mapped(self):
        d = scratch_dir()
        db = os.path.join(d, "connhist.db")
        c = sqlite3.connect(db)
        with open(SCHEMA) as f:
            c.executescript(f.read())
        now = 1796000000000
        c.execute("INSERT INTO runs(run_id, started_at, mode, interval_ms, host, os, sampler, version, pid, uid)"
                  " VALUES (1, ?, 'continuous', 1000, 'pkg-host', 'Linux 6.1.0', 'sock_diag', 'test', 1, 0)", (now,))
        c.execute("INSERT INTO heartbeats(run_id, first_at, last_at, samples) VALUES (1, ?, ?, 10)", (now, now + 10000))
        c.execute("INSERT INTO processes(proc_id, pid, start_time, name, path, cmdline, uid, user, first_seen)"
                  " VALUES (1, 4242, ?, 'curl', '/usr/bin/curl', 'curl https://web.test/', 1000, 'alice', ?)",
                  (now - 1000, now))
        for a in ("10.0.0.5", "192.0.2.7", "127.0.0.53"):
            c.execute("INSERT INTO addrs(addr) VALUES (?)", (a,))
        ids = {a: i for i, a in c.execute("SELECT addr_id, addr FROM addrs")}
        c.execute("INSERT INTO dns_names(name_id, name) VALUES (1, 'web.test')")
        c.execute("INSERT INTO dns_answers(qname_id, rname_id, type, qtype, addr_id, ttl, first_seen, last_seen_after,"
                  " expires_after, times_seen, resolver_addr_id, client_addr_id, client_port, proto, proc_id, run_id)"
                  " VALUES (1, 1, 1, 1, ?, 60, ?, 0, 60000, 1, ?, ?, 40000, 17, 1, 1)",
                  (ids["192.0.2.7"], now + 500, ids["127.0.0.53"], ids["10.0.0.5"]))
        # Closed and open, TCP with bytes and UDP without.
        c.execute("INSERT INTO lifetimes(run_id, proto, family, local_addr_id, local_port, remote_addr_id, remote_port,"
                  " state, states, first_seen, last_seen_after, closed_after, close_reason, proc_id, holders,"
                  " owner_source, uid, bytes_sent, bytes_received)"
                  " VALUES (1, 6, 4, ?, 50000, ?, 443, 1, 1, ?, 2000, 3000, 1, 1, 1, 1, 1000, 512, 4096)",
                  (ids["10.0.0.5"], ids["192.0.2.7"], now + 1000))
        c.execute("INSERT INTO lifetimes(run_id, proto, family, local_addr_id, local_port, remote_addr_id, remote_port,"
                  " state, states, first_seen, last_seen_after, proc_id, holders, uid)"
                  " VALUES (1, 17, 4, ?, 50001, ?, 53, 7, 7, ?, 1000, 1, 1, 1000)",
                  (ids["10.0.0.5"], ids["127.0.0.53"], now + 2000))
        c.commit()
        c.close()
        p = subprocess.run(WRAPPER + [QUERY, "--db", db, "export", "--format", "ecs", "--since", str(now // 1000 - 60)],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout
        docs = [json.loads(line) for line in out.splitlines()]
        kinds = sorted(d["event"]["dataset"] for d in docs)
        self.assertEqual(kinds, ["connhist.dns", "connhist.lifetime", "connhist.lifetime"])
        mapped = template_fields()
        seen = set()
        for doc in docs:
            for field, value in leaves(doc).items():
                seen.add(field)
                self.assertIn(field, mapped, f"{field} is exported but the template does not map it")
                self.assertTrue(compatible(mapped[field], value), (field, mapped[field], value))
        # The fields the issue names are among them (a template that maps nothing would pass the loop).
        # The document id must be a string: Filebeat's output takes
        # @metadata._id only as one, Vector's sink only bytes.
        for doc in docs:
            self.assertIsInstance(doc["event"]["id"], str)
        self.assertEqual(len({d["event"]["id"] for d in docs}), len(docs))
        for field in ("destination.domain", "dns.question.type", "network.community_id", "process.entity_id",
                      "event.duration", "source.bytes", "host.os.kernel"):
            self.assertIn(field, seen)


if __name__ == "__main__":
    unittest.main()
