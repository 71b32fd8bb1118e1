"""The one-file build (CONNHIST_STATIC_DEPS, what scripts/build.sh makes):
connhist-record and connhist-query are each one file to copy onto a machine
that has the C library and nothing else of what they were built with.

NeedsTest reads the programs' dynamic section: every library they ask the
loader for is one of the C library's. BareRootTest (root) copies both
programs into an empty directory holding only those libraries, mounts /proc
there, and runs them chrooted into it: the recorder records the test's own
listener with its owner, and the query tool reports it."""

import json
import os
import shutil
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helpers  # noqa: E402

# The shared objects of the GNU C library (Debian's libc6) a program may ask for.
GLIBC = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libresolv.so.2",
         "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1", "ld-linux-armhf.so.3", "ld-linux.so.2"}


def needed(path):
    """The DT_NEEDED entries of an ELF file, from readelf."""
    out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        if "(NEEDED)" in line:
            libs.append(line.split("[", 1)[1].rstrip("]"))
    return libs


def loaded(path):
    """The files the dynamic loader maps for the program (ldd): (name, path)."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    files = []
    for line in out.split("\n"):
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            files.append(parts[2])
        elif parts and parts[0].startswith("/"):
            files.append(parts[0])  # the loader itself
    return files


class NeedsTest(unittest.TestCase):
    def test_only_the_c_library(self):
        for prog in (helpers.RECORD, helpers.QUERY):
            libs = needed(prog)
            self.assertIn("libc.so.6", libs, prog)
            others = [lib for lib in libs if lib not in GLIBC]
            self.assertEqual(others, [], f"{prog} needs libraries beyond the C library: {others}")


@unittest.skipUnless(os.geteuid() == 0, "needs root: chroot and mounting /proc into the bare root")
class BareRootTest(unittest.TestCase):
    def setUp(self):
        if shutil.which("unshare") is None:
            self.skipTest("no unshare (util-linux)")
        self.dir = helpers.scratch_dir()
        self.root = os.path.join(self.dir, "root")
        for d in ("proc", "data", "tmp"):
            os.makedirs(os.path.join(self.root, d))
        # Only what the loader maps for the two programs, at the same paths.
        libs = set(loaded(helpers.RECORD)) | set(loaded(helpers.QUERY))
        for lib in libs:
            self.assertIn(os.path.basename(lib), GLIBC, f"the loader maps {lib}, not a file of the C library")
            dest = self.root + lib
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(os.path.realpath(lib), dest)
        for prog in (helpers.RECORD, helpers.QUERY):
            shutil.copy2(prog, os.path.join(self.root, os.path.basename(prog)))
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]

    def tearDown(self):
        self.listener.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def chrooted(self, *argv):
        """Runs argv in the bare root, /proc mounted there in a mount namespace of its own."""
        script = 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"'
        return subprocess.run(["unshare", "--mount", "--fork", "sh", "-c", script, self.root] + list(argv),
                              capture_output=True, text=True, timeout=300)

    def test_record_and_query(self):
        files = sorted(os.path.relpath(os.path.join(d, f), self.root)
                       for d, _, fs in os.walk(self.root) for f in fs)
        p = self.chrooted("/connhist-record", "--once", "--db", "/data/bare.db")
        self.assertEqual(p.returncode, 0, f"recorder in a root of {files}: {p.stderr}")
        p = self.chrooted("/connhist-query", "--db", "/data/bare.db", "listeners")
        self.assertEqual(p.returncode, 0, p.stderr)
        mine = [lt for lt in json.loads(p.stdout)["lifetimes"]
                if lt["proto"] == "tcp" and lt["local_port"] == self.port and lt["local_addr"] == "127.0.0.1"]
        self.assertEqual(len(mine), 1, f"the test's listener on port {self.port}: {mine}")
        self.assertEqual(mine[0]["state"], "LISTEN")
        self.assertIsNotNone(mine[0]["process"], "the listener has no owner: /proc was not read in the root")
        self.assertEqual(mine[0]["process"]["pid"], os.getpid())


if __name__ == "__main__":
    unittest.main()
