"""A small client of the Chrome DevTools Protocol, Python's standard library
only, for tests that open a page in headless Chromium (tests/test_html.py).

Chromium is started with --remote-debugging-pipe: it reads commands from
its file descriptor 3 and writes replies and events to its descriptor 4,
each a JSON message ended by a NUL byte. No port is opened and no websocket
is needed, so Chromium can run with no network at all.

    with Browser() as b:
        page = b.new_page(1400, 900)
        page.navigate("file:///tmp/x.html")
        page.evaluate("document.title")
        page.screenshot("/tmp/x.png")
        page.console_errors, page.requests
"""

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time


def find_chromium():
    """The Chromium binary, or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def netns_prefix():
    """A command prefix that runs Chromium in a network namespace of its
    own (no interface but a down loopback: nothing can be reached), or []
    where namespaces cannot be made (not root, a restricted container)."""
    unshare = shutil.which("unshare")
    if unshare is None or os.geteuid() != 0:
        return []
    ok = subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0
    return [unshare, "--net"] if ok else []


class CdpError(Exception):
    pass


class Browser:
    """Headless Chromium driven over the pipe. Network access is refused
    three ways: its own network namespace where possible, a proxy that
    does not exist, and a host resolver that resolves nothing."""

    def __init__(self, binary=None, timeout=120):
        self.binary = binary or find_chromium()
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="connhist-chromium-")
        self.isolated = False
        self.next_id = 0
        self.buffer = b""
        self.events = []

    def __enter__(self):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Moved above 3 and 4 first, so that putting them there in the child
        # cannot overwrite one with the other.
        high_r, high_w = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10), fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        prefix = netns_prefix()
        self.isolated = bool(prefix)
        args = prefix + [
            self.binary, "--headless", "--remote-debugging-pipe", "--user-data-dir=" + self.profile,
            "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--hide-scrollbars", "--mute-audio", "about:blank"]
        if os.geteuid() == 0:
            args.insert(len(prefix) + 1, "--no-sandbox")  # Chromium's sandbox refuses to run as root

        def child_fds():
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     pass_fds=(3, 4), preexec_fn=child_fds)
        os.close(high_r)
        os.close(high_w)
        self.out = os.fdopen(to_chrome_w, "wb", buffering=0)
        self.inp = from_chrome_r
        return self

    def __exit__(self, *exc):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.out.close()
        os.close(self.inp)
        shutil.rmtree(self.profile, ignore_errors=True)
        return False

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            if time.monotonic() > deadline:
                raise CdpError("no answer from Chromium in %d s; its log:\n%s" % (self.timeout, self.stderr()[-3000:]))
            ready, _, _ = select.select([self.inp], [], [], 1.0)
            if not ready:
                if self.proc.poll() is not None:
                    raise CdpError("Chromium exited %s:\n%s" % (self.proc.returncode, self.stderr()[-3000:]))
                continue
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                raise CdpError("Chromium closed the pipe:\n%s" % self.stderr()[-3000:])
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None):
        """Sends a command and returns its result; events that arrive in the
        meantime are kept in self.events."""
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session is not None:
            msg["sessionId"] = session
        self.out.write(json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise CdpError("%s: %s" % (method, reply["error"]))
                return reply.get("result", {})
            self.events.append(reply)

    def pump(self, seconds):
        """Reads events for a while."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.inp], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(self.inp, 1 << 20)
            if not chunk:
                break
            self.buffer += chunk
            while b"\0" in self.buffer:
                message, self.buffer = self.buffer.split(b"\0", 1)
                self.events.append(json.loads(message))

    def new_page(self, width, height):
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        for domain in ("Page", "Runtime", "Log", "Network"):
            page.send(domain + ".enable")
        page.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
        return page


class Page:
    def __init__(self, browser, session):
        self.browser = browser
        self.session = session

    def send(self, method, params=None):
        return self.browser.send(method, params, self.session)

    def _events(self, method=None):
        return [e for e in self.browser.events
                if e.get("sessionId") == self.session and (method is None or e.get("method") == method)]

    def navigate(self, url):
        """Loads url and waits for its load event."""
        start = len(self.browser.events)
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError("navigating to %s: %s" % (url, result["errorText"]))
        deadline = time.monotonic() + self.browser.timeout
        while not any(e.get("method") == "Page.loadEventFired" and e.get("sessionId") == self.session
                      for e in self.browser.events[start:]):
            if time.monotonic() > deadline:
                raise CdpError("no load event for %s" % url)
            self.browser.pump(0.5)

    def evaluate(self, expression):
        """The value of a JavaScript expression (awaited when a promise)."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise CdpError("%s threw: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def mouse(self, kind, x, y, **extra):
        params = {"type": kind, "x": x, "y": y}
        params.update(extra)
        self.send("Input.dispatchMouseEvent", params)

    def cpu_seconds(self):
        """CPU time of the page's renderer so far: its main thread and the
        whole process (Performance.getMetrics in thread ticks; counts the
        work done, not the waiting for a busy machine's cores)."""
        self.send("Performance.enable", {"timeDomain": "threadTicks"})
        m = {x["name"]: x["value"] for x in self.send("Performance.getMetrics")["metrics"]}
        return m.get("ThreadTime"), m.get("ProcessTime")

    def screenshot(self, path):
        png = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(png))

    @property
    def console_errors(self):
        """Console errors, uncaught exceptions and error log entries so far."""
        self.browser.pump(0.2)
        out = []
        for e in self._events("Runtime.consoleAPICalled"):
            p = e["params"]
            if p["type"] in ("error", "assert"):
                out.append("console.%s: %s" % (p["type"], [a.get("value", a.get("description")) for a in p["args"]]))
        for e in self._events("Runtime.exceptionThrown"):
            out.append("exception: %s" % e["params"]["exceptionDetails"])
        for e in self._events("Log.entryAdded"):
            entry = e["params"]["entry"]
            if entry["level"] == "error":
                out.append("log: %s (%s)" % (entry.get("text"), entry.get("url")))
        return out

    @property
    def requests(self):
        """The URLs the page requested, its own included."""
        self.browser.pump(0.2)
        return [e["params"]["request"]["url"] for e in self._events("Network.requestWillBeSent")]
