"""Notifications out: the outbox and its delivery engine, against a real
local HTTP receiver. Webhook headers and HMAC signature, the Slack/Mattermost
text, channel filters, retry with backoff while the receiver is down,
durability across a restart of klaxond, and no retries after a 4xx.
See docs/config.md (channels) and docs/operations.md (Notifications)."""

import hashlib
import hmac
import http.server
import json
import os
import re
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, KlaxonTestCase, free_port, main, parse_time, utcnow  # noqa: E402

# The daemon inherits our environment: never send loopback traffic to a proxy.
for _k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_k, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

SECRET = "s3cret-for-tests"
DELIVERY_RE = re.compile(r"^ntf_[0-9a-f]{16}$")
WAIT = 20.0  # seconds, the longest any wait here may take


class Sink:
    """An HTTP receiver on 127.0.0.1 that records every request and answers
    with `status` (changeable while it runs). With reserve=True the port is
    first held by a socket that is bound but not listening, so connections
    are refused until up() is called."""

    def __init__(self, status=200, reserve=False):
        self.status = status
        self.requests = []  # dicts: path, headers, body, json, status, at
        self.lock = threading.Lock()
        self.server = None
        self.thread = None
        self.reserved = None
        if reserve:
            self.reserved = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.reserved.bind((HOST, 0))
            self.port = self.reserved.getsockname()[1]
        else:
            self.port = free_port()
            self.up()

    def url(self, path):
        return "http://%s:%d%s" % (HOST, self.port, path)

    def up(self):
        if self.reserved is not None:
            self.reserved.close()
            self.reserved = None
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                status = sink.status
                try:
                    js = json.loads(body)
                except ValueError:
                    js = None
                with sink.lock:
                    sink.requests.append({"path": self.path, "headers": self.headers,
                                          "body": body, "json": js, "status": status,
                                          "at": time.monotonic()})
                reply = b"ok" if status < 300 else b"no"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        deadline = time.monotonic() + 5
        while True:
            try:
                self.server = http.server.ThreadingHTTPServer((HOST, self.port), Handler)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.reserved is not None:
            self.reserved.close()
            self.reserved = None

    def matching(self, path=None, incident=None, status=None):
        with self.lock:
            reqs = list(self.requests)
        out = []
        for r in reqs:
            if path is not None and r["path"] != path:
                continue
            if status is not None and r["status"] != status:
                continue
            if incident is not None and incident not in r["body"].decode("utf-8", "replace"):
                continue
            out.append(r)
        return out

    def wait_for(self, count, timeout=WAIT, **kw):
        """Waits until at least count requests match; returns them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.matching(**kw)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.02)


def channels_yaml(port, extra=""):
    base = "http://%s:%d" % (HOST, port)
    return """public_url: https://klaxon.example.org/
channels:
  - name: hook
    type: webhook
    url: %(base)s/hook
    secret: %(secret)s
    timeout: 3s
  - name: chat
    type: slack
    url: %(base)s/slack
  - name: switches-only
    type: webhook
    url: %(base)s/switches
    events: ["switch.*"]
  - name: other-client
    type: mattermost
    url: %(base)s/other
    selector: client=other
  - name: acme-incidents
    type: webhook
    url: %(base)s/acme
    events: ["incident.*", "switch.set"]
    selector: client=acme
%(extra)s""" % {"base": base, "secret": SECRET, "extra": extra}


def one_hook_yaml(port):
    return """channels:
  - name: hook
    type: webhook
    url: http://%s:%d/hook
    secret: %s
    timeout: 2s
""" % (HOST, port, SECRET)


class Delivery(KlaxonTestCase):
    """One daemon with five channels pointed at one receiver."""

    @classmethod
    def setUpClass(cls):
        cls.sink = Sink()
        cls.config = channels_yaml(cls.sink.port)
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.sink.close()

    def test_webhook_is_signed_and_carries_the_event(self):
        t0 = time.monotonic()
        inc = self.d.declare(title="Duplicate comments sent", severity="P1",
                             labels={"client": "acme", "platform": "instagram"})
        declared = time.monotonic()
        iid = inc["id"]
        got = self.sink.wait_for(1, path="/hook", incident=iid)
        self.assertEqual(len(got), 1, "no webhook for %s within %ss" % (iid, WAIT))
        latency_ms = (got[0]["at"] - declared) * 1000
        sys.stderr.write("\n[outbox] declare -> webhook: %.1f ms (request %.1f ms)\n"
                         % (latency_ms, (declared - t0) * 1000))
        time.sleep(1.0)  # a second one would have arrived by now
        got = self.sink.matching(path="/hook", incident=iid)
        self.assertEqual(len(got), 1, "exactly one POST per event and channel")
        r = got[0]
        h = r["headers"]
        self.assertEqual(h["Content-Type"], "application/json")
        self.assertEqual(h["User-Agent"], "klaxon/0.1")
        self.assertEqual(h["X-Klaxon-Event"], "incident.declared")
        delivery = h["X-Klaxon-Delivery"]
        self.assertRegex(delivery, DELIVERY_RE)
        self.assertEqual(h["Idempotency-Key"], delivery)
        sig = h["X-Klaxon-Signature"]
        self.assertTrue(sig.startswith("sha256="), sig)
        want = hmac.new(SECRET.encode(), r["body"], hashlib.sha256).hexdigest()
        self.assertTrue(hmac.compare_digest(sig[len("sha256="):], want),
                        "signature %s does not match the body (want sha256=%s)" % (sig, want))

        body = r["json"]
        self.assertEqual(set(body), {"delivery", "event", "at", "labels", "data"}, body)
        self.assertEqual(body["delivery"], delivery)
        self.assertEqual(body["event"], "incident.declared")
        self.assertRecent(body["at"], msg="'at'")
        self.assertEqual(body["labels"], {"client": "acme", "platform": "instagram"})
        data = body["data"]
        self.assertEqual(data["id"], iid)
        self.assertEqual(data["title"], "Duplicate comments sent")
        self.assertEqual(data["severity"], "P1")
        self.assertEqual(data["status"], "investigating")
        self.assertEqual(data["labels"], {"client": "acme", "platform": "instagram"})
        self.assertEqual(parse_time(data["declared_at"]), parse_time(inc["declared_at"]))

    def test_unsigned_channel_sends_no_signature(self):
        inc = self.d.declare(title="Unsigned", labels={"client": "acme"})
        got = self.sink.wait_for(1, path="/acme", incident=inc["id"])
        self.assertEqual(len(got), 1, "no delivery to the acme channel")
        self.assertNotIn("X-Klaxon-Signature", got[0]["headers"])
        self.assertEqual(got[0]["headers"]["X-Klaxon-Event"], "incident.declared")

    def test_slack_channel_gets_text(self):
        inc = self.d.declare(title="Login <!channel> & errors", severity="P1",
                             labels={"client": "acme"})
        iid = inc["id"]
        got = self.sink.wait_for(1, path="/slack", incident=iid)
        self.assertEqual(len(got), 1, "no Slack message for %s" % iid)
        body = got[0]["json"]
        self.assertEqual(set(body), {"text"}, body)
        text = body["text"]
        self.assertIn(iid, text)
        self.assertIn("P1", text)
        self.assertIn("declared", text)
        self.assertIn("Login &lt;!channel&gt; &amp; errors", text,
                      "user text is escaped, so it cannot mention @channel")
        self.assertNotIn("<!channel>", text)
        self.assertIn("<https://klaxon.example.org/incidents/%s|" % iid, text,
                      "links to the incident under public_url")
        self.assertLessEqual(len(text.splitlines()), 2, text)

    def test_events_and_selector_filter_channels(self):
        plain = self.d.declare(title="No client label")
        acme = self.d.declare(title="Acme only", labels={"client": "acme"})
        # the unfiltered channels show that both were delivered ...
        for iid in (plain["id"], acme["id"]):
            self.assertEqual(len(self.sink.wait_for(1, path="/hook", incident=iid)), 1)
            self.assertEqual(len(self.sink.wait_for(1, path="/slack", incident=iid)), 1)
        self.assertEqual(len(self.sink.wait_for(1, path="/acme", incident=acme["id"])), 1)
        time.sleep(1.0)
        # ... and the filtered ones took only what matches
        self.assertEqual(self.sink.matching(path="/switches"), [],
                         "events: [switch.*] must not get incident.declared")
        self.assertEqual(self.sink.matching(path="/other"), [],
                         "selector client=other must not get other clients' incidents")
        self.assertEqual(self.sink.matching(path="/acme", incident=plain["id"]), [],
                         "selector client=acme must not get an incident without that label")
        self.assertEqual(len(self.sink.matching(path="/acme", incident=acme["id"])), 1)

    def test_other_client_channel_gets_its_own(self):
        inc = self.d.declare(title="Other's trouble", labels={"client": "other"})
        got = self.sink.wait_for(1, path="/other", incident=inc["id"])
        self.assertEqual(len(got), 1, "the mattermost channel with selector client=other")
        self.assertIn(inc["id"], got[0]["json"]["text"])
        self.assertEqual(self.sink.matching(path="/acme", incident=inc["id"]), [])


class Durability(KlaxonTestCase):
    """Each test starts its own receiver and daemon."""

    fresh_daemon_per_test = True

    def setUp(self):
        self.sink = None  # each test makes its own daemon (and sink)

    def tearDown(self):
        super().tearDown()
        if self.sink is not None:
            self.sink.close()

    def start(self, sink):
        self.sink = sink
        type(self).d = self.new_daemon(config=one_hook_yaml(sink.port))
        return self.d

    def delivered(self, ids, timeout=WAIT):
        """Waits until every incident in ids was answered 200; returns the
        successful requests."""
        deadline = time.monotonic() + timeout
        while True:
            ok = self.sink.matching(path="/hook", status=200)
            seen = {r["json"]["data"]["id"] for r in ok}
            if set(ids) <= seen or time.monotonic() > deadline:
                return ok
            time.sleep(0.05)

    def assertEachOnce(self, ok, ids):
        by_key = {}
        for r in ok:
            by_key.setdefault(r["headers"]["X-Klaxon-Delivery"], []).append(r)
        dups = {k: len(v) for k, v in by_key.items() if len(v) > 1}
        self.assertEqual(dups, {}, "deliveries that arrived more than once")
        # the receiver's view: dedupe by key, then one per incident
        incidents = sorted(v[0]["json"]["data"]["id"] for v in by_key.values())
        self.assertEqual(incidents, sorted(ids))
        self.assertEqual(len(by_key), len(ids))

    def test_retries_until_the_receiver_is_back(self):
        d = self.start(Sink(status=503))
        ids = [d.declare(title="while down %d" % i)["id"] for i in range(5)]
        time.sleep(3.0)
        failed = self.sink.matching(path="/hook", status=503)
        keys = {r["headers"]["X-Klaxon-Delivery"] for r in failed}
        self.assertEqual(len(keys), 5, "every notification was tried while the receiver said 503")
        self.assertGreater(len(failed), 5, "and retried (backoff from 1s)")
        # the same delivery id on every attempt
        per_key = {}
        for r in failed:
            per_key.setdefault(r["headers"]["X-Klaxon-Delivery"], set()).add(r["json"]["data"]["id"])
        self.assertTrue(all(len(v) == 1 for v in per_key.values()), per_key)
        self.sink.status = 200
        t_up = time.monotonic()
        ok = self.delivered(ids)
        sys.stderr.write("\n[outbox] receiver back -> all 5 delivered: %.1f s\n"
                         % (time.monotonic() - t_up))
        time.sleep(1.0)
        ok = self.sink.matching(path="/hook", status=200)
        self.assertEachOnce(ok, ids)
        self.assertEqual({r["headers"]["X-Klaxon-Delivery"] for r in ok}, keys,
                         "retries keep their delivery id (the idempotency key)")
        self.assertIn("HTTP 503", d.log_tail(), "failures are logged")

    def test_survives_a_restart_while_the_receiver_is_down(self):
        d = self.start(Sink(reserve=True))  # connections refused
        ids = [d.declare(title="before restart %d" % i)["id"] for i in range(3)]
        time.sleep(1.5)
        self.assertIn("failed", d.log_tail(), "delivery attempts failed while nobody listened")
        rc, killed = d.stop()
        self.assertEqual((rc, killed), (0, False), "klaxond stops promptly on SIGTERM")
        d.start()
        self.sink.up()
        ok = self.delivered(ids)
        time.sleep(1.0)
        ok = self.sink.matching(path="/hook", status=200)
        self.assertEachOnce(ok, ids)

    def test_client_error_is_not_retried(self):
        d = self.start(Sink(status=400))
        iid = d.declare(title="rejected")["id"]
        got = self.sink.wait_for(1, path="/hook", incident=iid)
        self.assertEqual(len(got), 1, "the first attempt arrives")
        self.sink.status = 200
        time.sleep(4.0)  # retries at 1s and 3s would have come by now
        got = self.sink.matching(path="/hook", incident=iid)
        self.assertEqual([r["status"] for r in got], [400], "one attempt, then dropped")
        self.assertIn("dropped", d.log_tail())

    def test_stop_is_prompt_with_a_slow_receiver(self):
        # a receiver that accepts and never answers: the delivery is in
        # flight when klaxond is told to stop
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.bind((HOST, 0))
        lst.listen(16)
        try:
            type(self).d = d = self.new_daemon(config=one_hook_yaml(lst.getsockname()[1]))
            d.declare(title="slow")
            time.sleep(0.5)
            t0 = time.monotonic()
            rc, killed = d.stop()
            self.assertEqual((rc, killed), (0, False))
            self.assertLess(time.monotonic() - t0, 3.0, "stop waits for no delivery")
        finally:
            lst.close()


if __name__ == "__main__":
    main()
