"""Samples without the TCP tables (issue 17, idle cost): as root, with the
kernel events on, a sample leaves out the dump of the TCP tables while the
events counted no move of them since their last dump; nothing recorded may
come later for it. In a network namespace of its own (no other test's
sockets move its tables), with a 0.2 s interval:
- an idle recorder leaves them out, and its run's notes say so;
- a connection made while it does is found by the very next sample;
- a TIME_WAIT entry (here a FIN_WAIT2 one, whose timer the namespace's
  tcp_fin_timeout sets to 3 s) ends with no event: the sample after its end
  dumps the tables, dated by the timer the dump reported.
Without the events (--events off) every sample dumps them.

Real binaries and loopback sockets; the recorder's own log (--verbose) says
which samples left the tables out and when each began."""

import json
import os
import re
import subprocess
import sys
import unittest
from datetime import datetime

from helpers import RECORD, WRAPPER, query, rows, scratch_dir

from test_owners_events import UNAVAILABLE

INTERVAL = "0.2s"

# Runs in the new namespace: a listener, the recorder, then a connection
# whose client closes first while the server keeps its end (CLOSE_WAIT), so
# the client's end becomes a FIN_WAIT2 entry that its timer ends. Prints
# what it did, as JSON, with wall-clock times in ms.
DRIVER = r"""
import json, socket, subprocess, sys, time
record, db, log, events = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
wrapper = json.loads(sys.argv[5])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
with open("/proc/sys/net/ipv4/tcp_fin_timeout", "w") as f:
    f.write("3")
now = lambda: int(time.time() * 1000)
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(8)
port = l.getsockname()[1]
with open(log, "w") as f:
    rec = subprocess.Popen(wrapper + [record, "--db", db, "--interval", "0.2s", "--verbose", "--events", events],
                           stderr=f)

def samples():
    with open(log) as f:
        return [line for line in f if " sample: " in line]

def wait_samples(n, what):
    # a hang guard: the recorder must go on sampling, however slowly
    last, since = len(samples()), time.monotonic()
    while len(samples()) < n:
        if rec.poll() is not None:
            sys.exit(f"recorder exited with {rec.returncode} while {what}")
        if len(samples()) != last:
            last, since = len(samples()), time.monotonic()
        elif time.monotonic() - since > 120:
            sys.exit(f"recorder took no sample in 120 s while {what}")
        time.sleep(0.02)

def in_tcp_table(cport):
    hexport = ":%04X" % cport
    with open("/proc/net/tcp") as f:
        return any(line.split()[1].endswith(hexport) for line in f.readlines()[1:])

wait_samples(8, "idle")
c = socket.create_connection(("127.0.0.1", port))
connected = now()
a, _ = l.accept()
cport = c.getsockname()[1]
wait_samples(len(samples()) + 8, "holding a connection")
c.close()
closed = now()
# present: the start of the last look that found the entry (it ended
# after); gone: the end of the first that did not (it ended before). A
# starved driver may look long after the end: gone bounds it from above only.
present = closed
while True:
    looked = now()
    if not in_tcp_table(cport):
        break
    present = looked
    if looked - closed > 120000:
        sys.exit("the FIN_WAIT2 entry did not end in 120 s")
    time.sleep(0.01)
gone = now()
wait_samples(len(samples()) + 8, "after the entry ended")
rec.terminate()
rec.wait(timeout=120)
a.close()
l.close()
print(json.dumps({"cport": cport, "connected": connected, "closed": closed, "present": present, "gone": gone,
                  "status": rec.returncode}))
"""

SAMPLE_LINE = re.compile(r"^\S+: (\S+) sample: .*?, (\d+) ms \(dump .*\)(, TCP unmoved)?$")


def parse_samples(log):
    """(began, unmoved) of each sample the log shows, began in wall-clock
    ms: the line's time less the tick's own length (a line is written as
    the tick ends)."""
    out = []
    for line in log.splitlines():
        m = SAMPLE_LINE.match(line)
        if m:
            t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%fZ")
            ended = int((t - datetime(1970, 1, 1)).total_seconds() * 1000)
            out.append((ended - int(m.group(2)), m.group(3) is not None))
    return out


def run_driver(events):
    d = scratch_dir()
    db, log = os.path.join(d, "unmoved.db"), os.path.join(d, "record.log")
    p = subprocess.run(["unshare", "-n", sys.executable, "-c", DRIVER, RECORD, db, log, events,
                        json.dumps(WRAPPER)], capture_output=True, text=True, timeout=900)
    with open(log) as f:
        text = f.read()
    if p.returncode != 0:
        raise AssertionError(f"driver failed ({p.returncode}): {p.stderr}\nrecorder log:\n{text}")
    return json.loads(p.stdout), db, text


# Slack for the ms the log's times are rounded to.
ROUNDING_MS = 3


@unittest.skipIf(UNAVAILABLE, UNAVAILABLE or "")
class UnmovedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.run_facts, cls.db, cls.log = run_driver("auto")
        cls.samples = parse_samples(cls.log)

    def unmoved_between(self, start, end):
        """Samples that left the TCP tables out and began after start
        (wall ms) and before end."""
        return [b for b, unmoved in self.samples if unmoved and start + ROUNDING_MS < b < end - ROUNDING_MS]

    def client(self):
        got = rows(self.db, "SELECT first_seen, closed_at, state FROM v_lifetimes"
                            " WHERE proto = 'tcp' AND local_port = ?", (self.run_facts["cport"],))
        self.assertEqual(len(got), 1, f"one lifetime of the client's end: {got}\n{self.log}")
        return got[0]["first_seen"], got[0]["closed_at"], got[0]["state"]

    def test_idle_samples_leave_the_tcp_tables_out(self):
        self.assertEqual(self.run_facts["status"], 0, self.log)
        unmoved = [b for b, u in self.samples if u]
        self.assertGreaterEqual(len(unmoved), 4, f"idle samples without the TCP dump:\n{self.log}")
        # One note, as every report's coverage lists it.
        notes = query(self.db, "coverage")["header"]["coverage"]["notes"]
        said = [n for n in notes if n.startswith("TCP tables dumped only after kernel events counted a move")]
        self.assertEqual(len(said), 1, notes)
        self.assertTrue(said[0].endswith("as it left them"), notes)

    def test_a_connection_is_found_by_the_next_sample(self):
        first_seen, _, _ = self.client()
        connected = self.run_facts["connected"]
        self.assertGreater(first_seen, connected - 1000, self.log)
        late = self.unmoved_between(connected, first_seen)
        self.assertEqual(late, [], f"samples left the tables out after the connection was made "
                                   f"({connected}) and before it was found ({first_seen}):\n{self.log}")

    def test_an_entry_ended_by_its_timer_is_found_gone_by_the_next_sample(self):
        _, closed_at, state = self.client()
        self.assertEqual(state, "FIN_WAIT2", self.log)
        gone, closed = self.run_facts["gone"], self.run_facts["closed"]
        self.assertIsNotNone(closed_at, f"the entry's end was recorded:\n{self.log}")
        self.assertGreater(closed_at, closed, self.log)
        # The schedule was needed: samples left the tables out while the
        # entry waited for its timer.
        self.assertNotEqual(self.unmoved_between(closed, gone), [], f"no sample skipped the dump while the "
                                                                     f"entry waited:\n{self.log}")
        late = self.unmoved_between(gone, closed_at)
        self.assertEqual(late, [], f"samples left the tables out after the entry ended ({gone}) and before "
                                   f"its end was recorded ({closed_at}):\n{self.log}")


@unittest.skipIf(UNAVAILABLE, UNAVAILABLE or "")
class EventsOffTest(unittest.TestCase):
    def test_every_sample_dumps_the_tcp_tables(self):
        facts, db, log = run_driver("off")
        samples = parse_samples(log)
        self.assertGreaterEqual(len(samples), 24, log)
        self.assertEqual([b for b, u in samples if u], [], log)
        ends = rows(db, "SELECT closed_at FROM v_lifetimes WHERE local_port = ?", (facts["cport"],))
        self.assertEqual(len(ends), 1, log)
        # Found gone by a sample whose dump began after the entry ended.
        self.assertGreater(ends[0]["closed_at"], facts["present"], log)


if __name__ == "__main__":
    unittest.main()
