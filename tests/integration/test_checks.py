"""Health checks from the config against a local HTTP server this test
controls: a failing check fires an alert (source "check", dedup key
"check:NAME") after fail_after failures, the routing rule opens an
incident, and the alert resolves after resolve_after successes. A wrong
status, a body without expect_body, and a server that takes the request
and never answers (timeout) are failures. Probes run concurrently and
never block the API; a restart while a check is failing keeps one alert.
See docs/config.md (Health checks, Routing)."""

import collections
import http.server
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, KlaxonTestCase, free_port, main  # noqa: E402

# The daemon inherits our environment: never send loopback traffic to a proxy.
for _k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_k, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

WAIT = 20.0       # seconds, the longest any wait here may take
HANG_MAX = 12.0   # seconds a hanging answer is held at most (every thread ends)
OK_BODY = b'{"status":"ok"}'


class Target:
    """The service being checked: an HTTP server on 127.0.0.1 whose answer
    per path is set by the test: "ok" (200 {"status":"ok"}), "fail" (503),
    "badbody" (200 without "status":"ok") or "hang" (the request is read and
    no answer comes for as long as the mode stays "hang", at most HANG_MAX)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.modes = collections.defaultdict(lambda: "ok")
        self.hits = collections.Counter()
        self.hanging = collections.Counter()  # requests being held right now
        self.scripts = collections.defaultdict(list)  # answers for the next requests
        self.closing = False
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                with target.lock:
                    target.hits[self.path] += 1
                    script = target.scripts[self.path]
                    mode = script.pop(0) if script else target.modes[self.path]
                if mode == "hang":
                    with target.lock:
                        target.hanging[self.path] += 1
                    deadline = time.monotonic() + HANG_MAX
                    try:
                        while (target.mode(self.path) == "hang" and not target.closing
                               and time.monotonic() < deadline):
                            time.sleep(0.02)
                    finally:
                        with target.lock:
                            target.hanging[self.path] -= 1
                    mode = "fail"  # the prober is long gone
                status, body = {"ok": (200, OK_BODY), "fail": (503, b"unavailable"),
                                "badbody": (200, b'{"status":"degraded"}')}[mode]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        deadline = time.monotonic() + 5
        while True:
            self.port = free_port()
            try:
                self.server = http.server.ThreadingHTTPServer((HOST, self.port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
        self.server.daemon_threads = True
        # a prober that gave up closes its connection: no traceback for that
        self.server.handle_error = lambda request, client_address: None
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.port, path)

    def mode(self, path):
        with self.lock:
            return self.modes[path]

    def set(self, path, mode):
        with self.lock:
            self.modes[path] = mode

    def script(self, path, answers, then):
        """The next len(answers) requests get these answers, then `then`."""
        with self.lock:
            self.modes[path] = then
            self.scripts[path] = list(answers)

    def scripted(self, path):
        with self.lock:
            return len(self.scripts[path])

    def count(self, path):
        with self.lock:
            return self.hits[path]

    def held(self, path):
        with self.lock:
            return self.hanging[path]

    def close(self):
        self.closing = True
        self.server.shutdown()
        self.server.server_close()


def config(t):
    return """
services:
  - name: web-flap
  - name: web-body
  - name: web-hang
  - name: web-stuck
  - name: web-persist
  - name: web-streak
routes:
  - name: health                      # "all health checks failing -> P1"
    match: 'source="check"'
    severity: {critical: P1, error: P2}
    group_by: [service]
checks:
  - name: flap
    service: web-flap
    url: %(flap)s
    interval: 200ms
    timeout: 200ms
    expect_status: 200
    fail_after: 2
    resolve_after: 2
  - name: body
    service: web-body
    url: %(body)s
    interval: 200ms
    timeout: 200ms
    expect_body: '"status":"ok"'
    fail_after: 2
    resolve_after: 2
    severity: error
  - name: hang
    service: web-hang
    url: %(hang)s
    interval: 500ms
    timeout: 300ms
    fail_after: 2
    resolve_after: 2
  - name: stuck                       # a probe that stays in flight for 10 s
    service: web-stuck
    url: %(stuck)s
    interval: 10s
    timeout: 10s
    fail_after: 100
  - name: persist
    service: web-persist
    url: %(persist)s
    interval: 200ms
    timeout: 200ms
    fail_after: 2
    resolve_after: 2
  - name: streak                      # slower: one stalled probe must not count
    service: web-streak
    url: %(streak)s
    interval: 500ms
    timeout: 500ms
    fail_after: 2
    resolve_after: 2
""" % {"streak": t.url("/streak"), "flap": t.url("/health"), "body": t.url("/health/ready"),
       "hang": t.url("/health/live"),
       "stuck": t.url("/stuck"), "persist": t.url("/persist")}


class Checks(KlaxonTestCase):

    @classmethod
    def setUpClass(cls):
        cls.target = Target()
        cls.target.set("/stuck", "hang")
        cls.config = config(cls.target)
        try:
            super().setUpClass()
        except BaseException:
            cls.target.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.target.close()

    # -- helpers -------------------------------------------------------------

    def check_alerts(self, name, status="all"):
        st, _, body = self.d.http("GET", "/v1/alerts?status=%s&limit=1000" % status)
        self.assertEqual(st, 200, body)
        return [a for a in body["alerts"] if a["dedup_key"] == "check:" + name]

    def alert(self, aid):
        st, _, a = self.d.http("GET", "/v1/alerts/%d" % aid)
        self.assertEqual(st, 200, a)
        return a

    def wait_for(self, what, fn, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                self.fail("within %.0fs: %s (last: %r)" % (timeout, what, got))
            time.sleep(0.05)

    def wait_firing(self, name, not_id=None):
        return self.wait_for("check %s firing" % name, lambda: next(
            (a for a in self.check_alerts(name, "firing") if a["id"] != not_id), None))

    def wait_resolved(self, aid):
        return self.wait_for("alert %d resolved" % aid,
                             lambda: (lambda a: a if a["status"] == "resolved" else None)(
                                 self.alert(aid)))

    def wait_probes(self, path, n):
        """Waits until the target saw n more probes on path."""
        start = self.target.count(path)
        self.wait_for("%d probes of %s" % (n, path), lambda: self.target.count(path) >= start + n)

    def assertHealthyQuiet(self, name, path):
        """A passing check raises nothing: after several probes, no alert
        (one that a machine stall made time out is reported, not failed)."""
        self.wait_probes(path, 4)
        alerts = self.check_alerts(name)
        stray = [a for a in alerts if not a["details"]["reason"].startswith("timeout")]
        self.assertEqual(stray, [], "a healthy check fired")
        if alerts:
            sys.stderr.write("\n[checks] %s timed out while healthy (a stalled machine?): %r\n"
                             % (name, [a["details"] for a in alerts]))

    def all_resolved_said(self, incident):
        return any("All alerts of this incident have resolved" in e["text"]
                   for e in self.d.timeline(incident))

    # -- tests ---------------------------------------------------------------

    def test_failing_check_fires_opens_an_incident_and_resolves(self):
        self.assertHealthyQuiet("flap", "/health")
        self.target.set("/health", "fail")
        a = self.wait_firing("flap")
        self.assertEqual(a["source"], "check")
        self.assertEqual(a["service"], "web-flap")
        self.assertEqual(a["level"], "critical")
        self.assertEqual(a["severity"], "P1")
        self.assertEqual(a["route"], "health")
        self.assertEqual(a["summary"], "Health check flap is failing: HTTP 503 (expected 200)")
        self.assertEqual(a["details"]["reason"], "HTTP 503 (expected 200)")
        self.assertEqual(a["details"]["status"], 503)
        self.assertEqual(a["details"]["url"], self.target.url("/health"))
        self.assertEqual(a["details"]["failures"], 2, "fires on the fail_after-th failure")
        self.assertRecent(a["starts_at"], msg="starts_at")
        inc = a["incident"]
        self.assertTrue(inc, "P1 opens an incident")
        i = self.d.get(inc)
        self.assertEqual(i["severity"], "P1")
        self.assertEqual(i["labels"]["service"], "web-flap")
        self.assertEqual(i["status"], "investigating")

        # it keeps failing: still one alert, fired once per failing streak
        self.wait_probes("/health", 4)
        alerts = self.check_alerts("flap", "firing")
        self.assertEqual([x["id"] for x in alerts], [a["id"]])
        self.assertEqual(alerts[0]["count"], 1)

        self.target.set("/health", "ok")
        r = self.wait_resolved(a["id"])
        self.assertRecent(r["resolved_at"], msg="resolved_at")
        self.assertEqual(r["resolved_by"], "check:flap")
        self.wait_for("the timeline says all alerts resolved", lambda: self.all_resolved_said(inc))
        self.assertEqual(self.d.get(inc)["status"], "investigating", "no resolve_to_monitoring")
        self.assertEqual(self.check_alerts("flap", "firing"), [])

        # failing again: a new alert, attached to the incident still open
        self.target.set("/health", "fail")
        b = self.wait_firing("flap", not_id=a["id"])
        self.assertNotEqual(b["id"], a["id"])
        self.assertEqual(b["incident"], inc, "same group, incident still open: attached")
        self.target.set("/health", "ok")
        self.wait_resolved(b["id"])
        self.assertEqual(len(self.check_alerts("flap")), 2)

    def test_body_mismatch_is_a_failure(self):
        self.assertHealthyQuiet("body", "/health/ready")
        self.target.set("/health/ready", "badbody")
        a = self.wait_firing("body")
        self.assertEqual(a["details"]["reason"], "body does not contain '\"status\":\"ok\"'")
        self.assertEqual(a["details"]["status"], 200, "the status was fine")
        self.assertEqual(a["level"], "error")
        self.assertEqual(a["severity"], "P2", "error -> P2 by the route's map")
        self.assertTrue(a["incident"], "P2 is at open_at: it opens an incident")
        self.assertEqual(self.d.get(a["incident"])["severity"], "P2")
        self.target.set("/health/ready", "ok")
        self.wait_resolved(a["id"])
        self.wait_for("the timeline says all alerts resolved",
                      lambda: self.all_resolved_said(a["incident"]))

    def test_timeout_is_a_failure_and_the_api_stays_responsive(self):
        self.target.set("/health/live", "hang")
        # the stuck check's probe is in flight (10 s timeout) the whole time
        self.wait_for("a stuck probe in flight", lambda: self.target.held("/stuck") >= 1)
        worst = 0.0
        deadline = time.monotonic() + WAIT
        a = None
        while a is None and time.monotonic() < deadline:
            t0 = time.monotonic()
            st, _, _ = self.d.http("GET", "/healthz", token=None, timeout=5)
            worst = max(worst, time.monotonic() - t0)
            self.assertEqual(st, 200)
            a = next(iter(self.check_alerts("hang", "firing")), None)
            time.sleep(0.05)
        self.assertIsNotNone(a, "check hang did not fire within %ss" % WAIT)
        self.assertLess(worst, 2.0, "GET /healthz took %.2fs during hanging probes" % worst)
        self.assertEqual(a["details"]["reason"], "timeout after 300 ms")
        self.assertIsNone(a["details"]["status"])
        self.assertEqual(a["summary"], "Health check hang is failing: timeout after 300 ms")
        self.assertTrue(a["incident"])

        # probes run concurrently: with one held for 10 s, the 200 ms checks go on
        self.assertGreaterEqual(self.target.held("/stuck"), 1)
        self.wait_probes("/health", 4)
        self.assertEqual(self.check_alerts("stuck"), [], "its probe is still waiting")

        self.target.set("/health/live", "ok")
        self.wait_resolved(a["id"])

    def test_fail_after_and_resolve_after_count_consecutive_probes(self):
        path = "/streak"
        self.assertHealthyQuiet("streak", path)
        # one failure between successes: below fail_after 2, nothing fires
        self.target.script(path, ["fail"], then="ok")
        self.wait_for("the scripted failure answered", lambda: self.target.scripted(path) == 0)
        self.wait_probes(path, 3)
        self.assertEqual(self.check_alerts("streak"), [], "one failure must not fire")
        # failing for good: fires
        self.target.set(path, "fail")
        a = self.wait_firing("streak")
        self.assertEqual(a["details"]["failures"], 2)
        # one success between failures: below resolve_after 2, still firing,
        # and the failures after it do not fire it a second time
        self.target.script(path, ["ok"], then="fail")
        self.wait_for("the scripted success answered", lambda: self.target.scripted(path) == 0)
        self.wait_probes(path, 3)
        got = self.alert(a["id"])
        self.assertEqual((got["status"], got["count"]), ("firing", 1),
                         "one success must not resolve; the streak goes on")
        self.assertEqual([x["id"] for x in self.check_alerts("streak")], [a["id"]])
        self.target.set(path, "ok")
        self.wait_resolved(a["id"])

    def test_restart_while_failing_keeps_one_alert(self):
        self.target.set("/persist", "fail")
        a = self.wait_firing("persist")
        rc, killed = self.d.restart()
        self.assertEqual((rc, killed), (0, False), "klaxond stops promptly with probes in flight")
        # probing starts over after the start and fires again: folded
        self.wait_for("the trigger after the restart folded into the alert",
                      lambda: self.alert(a["id"])["count"] >= 2)
        self.assertEqual([x["id"] for x in self.check_alerts("persist")], [a["id"]])
        self.assertEqual(self.alert(a["id"])["status"], "firing")
        self.target.set("/persist", "ok")
        self.wait_resolved(a["id"])
        # passing after a start resolves what was left firing, and nothing
        # new fires
        self.wait_probes("/persist", 4)
        self.assertEqual(self.check_alerts("persist", "firing"), [])


if __name__ == "__main__":
    main()
