#!/usr/bin/env python3
"""Times the HTML timeline of connhist-query in headless Chromium.

    python3 bench/html_timeline.py PAGE.html [RUNS]

Opens the page RUNS times (default 5), each in a fresh tab of one headless
Chromium with no network (tests/cdp.py), and prints what the page itself
measured (data-* attributes of <body>, set by query/html/timeline.js):
the time from the start of the navigation to the end of the first draw,
and of that the script's phases (JSON.parse of the data, decoding, layout,
drawing), the page's navigation timing (file read, HTML parsed), the time
of a redraw after a zoom, and the CPU time the renderer spent up to the
load event (its main thread, and all its threads: the work, whatever the
wait for a busy machine's cores), and the main thread's CPU time up to the
first draw, from a trace (`cpuToFirstDrawMs`: the thread time of the
renderer's main thread from the navigation's start to the end of the page's
script, which draws before it returns; the work deferred after the first
draw is not counted); then the median of each. Make the page with
connhist-query timeline --html -o PAGE.html (on a database from
connhist-genstore, or tests/test_html.py's build_large). A benchmark:
asserts nothing. The numbers move with the machine's load; the load
average is printed with them.
"""

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import cdp  # noqa: E402

FIGURES = ["firstDrawMs", "responseEnd", "scriptStart", "parseMs", "decodeMs", "layoutMs", "drawMs", "redrawMs",
           "cpuToFirstDrawMs", "mainThreadCpuMs", "rendererCpuMs"]


def trace_events(browser):
    """Ends the trace started in one_run and returns its events."""
    browser.send("Tracing.end")
    events, done = [], False
    while not done:
        for e in browser.events:
            if e.get("method") == "Tracing.dataCollected":
                events.extend(e["params"]["value"])
            done = done or e.get("method") == "Tracing.tracingComplete"
        browser.events = [e for e in browser.events if e.get("method") not in ("Tracing.dataCollected",
                                                                                 "Tracing.tracingComplete")]
        if not done:
            browser.pump(0.5)
    return events


def cpu_to_first_draw(events):
    """The CPU time (ms) of the renderer's main thread from the page's
    navigation start to the end of the page's script, which draws the
    first frame before it returns (any version of timeline.js: the figure
    compares pages): the thread times (tts) of the trace's events. None
    when the trace lacks them."""
    scripts = [e for e in events if e.get("name") == "EvaluateScript" and "tts" in e]
    if not scripts:
        return None
    script = max(scripts, key=lambda e: e["ts"])
    pid, tid = script["pid"], script["tid"]
    starts = [e["ts"] for e in events if e.get("name") == "navigationStart" and e["pid"] == pid]
    since = min(starts) if starts else script["ts"]
    before = [e for e in events if (e["pid"], e["tid"]) == (pid, tid) and "tts" in e and e["ts"] <= since]
    if not before:
        return None
    base = max(before, key=lambda e: e["ts"])["tts"]
    return (script["tts"] + script.get("tdur", 0) - base) / 1000


def one_run(browser, path):
    page = browser.new_page(1400, 900)
    thread0, process0 = page.cpu_seconds()
    browser.send("Tracing.start", {"categories": "toplevel,blink.user_timing,devtools.timeline", "transferMode": "ReportEvents"})
    page.navigate("file://" + os.path.abspath(path))
    thread1, process1 = page.cpu_seconds()
    to_draw = cpu_to_first_draw(trace_events(browser))
    body = {k: float(v) for k, v in page.evaluate("Object.assign({}, document.body.dataset)").items()}
    nav = json.loads(page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])"))
    body["responseEnd"] = nav["responseEnd"]
    body["scriptStart"] = body["firstDrawMs"] - body["scriptMs"]
    body["mainThreadCpuMs"] = (thread1 - thread0) * 1000
    body["rendererCpuMs"] = (process1 - process0) * 1000
    body["cpuToFirstDrawMs"] = float("nan") if to_draw is None else to_draw
    mid = (body["viewFrom"] + body["viewTo"]) / 2
    body["redrawMs"] = page.evaluate("(() => { const t = performance.now(); chqTimeline.setView(%f, %f);"
                                     " return performance.now() - t; })()" % (body["viewFrom"], mid))
    errors = page.console_errors
    if errors:
        print("console errors: %s" % errors, file=sys.stderr)
    page.send("Page.close")
    return body


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    path, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
    if cdp.find_chromium() is None:
        print("no chromium: apt-get install chromium", file=sys.stderr)
        return 1
    results = []
    with cdp.Browser() as b:
        for i in range(runs):
            r = one_run(b, path)
            results.append(r)
            print("run %d: %d lifetimes, %d bars drawn; " % (i + 1, r["lifetimes"], r["barsDrawn"]) +
                  ", ".join("%s %.0f ms" % (k, r[k]) for k in FIGURES))
    print("median of %d: " % runs + ", ".join("%s %.0f ms" % (k, statistics.median(r[k] for r in results))
                                              for k in FIGURES))
    print("page %.1f MB; load average %s" % (os.path.getsize(path) / 1e6, " ".join(
        open("/proc/loadavg").read().split()[:3]) if os.path.exists("/proc/loadavg") else "?"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
