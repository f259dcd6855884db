"""Detection rules over the audit stream (docs/config.md, "Detections"): a
runaway DM loop opens exactly one incident and trips a kill switch over the
offending account, whatever the loop does afterwards; other accounts are
untouched; a batch of duplicate comments fires the duplicates rule; and a
bad rule stops klaxond with FILE:LINE:COL.

Every test uses accounts of its own, so that the tests can share a daemon.
"""

import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (HOST, KLAXOND, REPO_ROOT, Daemon, KlaxonTestCase, free_port,  # noqa: E402
                     main, parse_time, utcnow)

CONFIG = """\
detections:
  - name: dm-loop
    kind: rate
    selector: action=dm
    per: account
    threshold: 5
    window: 1m
    severity: P1
    type: ENGAGE
    contain: block
    contain_for: 1h
  - name: dup-comments
    kind: duplicates
    selector: action in (comment, reply)
    threshold: 3
    window: 10m
    severity: P2
    type: ENGAGE
    title: Duplicate comments are being posted
    contain: approve
"""


def uniq(prefix):
    return "%s-%s" % (prefix, uuid.uuid4().hex[:10])


class Detections(KlaxonTestCase):
    config = CONFIG

    def append(self, events):
        st, _, js = self.d.http("POST", "/v1/audit/events", {"events": events})
        self.assertEqual(st, 201, js)
        self.assertEqual(js["appended"], len(events))

    def dms(self, account, n, client="acme"):
        return [{"actor": "bot-7", "client": client, "account": account, "platform": "instagram",
                 "lane": "browser", "action": "dm", "target": "@user%d" % i,
                 "outcome": "success"} for i in range(n)]

    def incidents(self, account):
        st, _, js = self.d.http("GET", "/v1/incidents?limit=100&label=account=" + account)
        self.assertEqual(st, 200, js)
        return js["incidents"]

    def switches(self, selector):
        st, _, js = self.d.http("GET", "/v1/switches?all=true")
        self.assertEqual(st, 200, js)
        return [s for s in js["switches"] if s["selector"] == selector]

    def gate(self, labels):
        st, _, js = self.d.http("POST", "/v1/gate/check", {"labels": labels})
        self.assertEqual(st, 200, js)
        return js["decision"]

    def test_dm_loop_one_incident_and_a_switch(self):
        a, b = uniq("@a"), uniq("@b")
        # five events one by one: at the threshold, not over it
        for ev in self.dms(a, 5):
            self.append([ev])
        self.assertEqual(self.incidents(a), [])
        self.assertEqual(self.switches("account=" + a), [])
        self.assertEqual(self.gate({"account": a, "action": "dm"}), "allow")

        # the sixth fires
        self.append(self.dms(a, 1))
        incs = self.incidents(a)
        self.assertEqual(len(incs), 1, incs)
        inc = self.d.get(incs[0]["id"])
        self.assertEqual(inc["severity"], "P1")
        self.assertEqual(inc["types"], ["ENGAGE"])
        self.assertEqual(inc["title"], "Detection 'dm-loop': 6 dm events for account '%s' in 1m" % a)
        self.assertEqual(inc["labels"], {"client": "acme", "account": a, "platform": "instagram",
                                         "lane": "browser", "detection": "dm-loop"})
        self.assertEqual(inc["created_by"], "detection:dm-loop")
        self.assertEqual(inc["status"], "investigating")

        # the evidence on the timeline, and the switch tied to the incident
        texts = [e["text"] for e in self.d.timeline(inc["id"])]
        evidence = [t for t in texts if t.startswith("Detection 'dm-loop' (rate) fired")]
        self.assertEqual(len(evidence), 1, texts)
        self.assertIn("6 events matching 'action=dm' for account '%s' within 1m" % a, evidence[0])
        self.assertIn("over the threshold of 5", evidence[0])
        self.assertRegex(evidence[0], r"First at \S+Z, last at \S+Z")
        sws = self.switches("account=" + a)
        self.assertEqual(len(sws), 1, sws)
        sw = sws[0]
        self.assertEqual((sw["mode"], sw["incident"], sw["set_by"], sw["active"]),
                         ("block", inc["id"], "detection:dm-loop", True))
        self.assertIn("dm-loop", sw["reason"])
        ttl = (parse_time(sw["expires_at"]) - utcnow()).total_seconds()
        self.assertTrue(3500 < ttl <= 3600, sw["expires_at"])
        self.assertTrue(any(sw["id"] in t for t in texts), texts)
        # in force: the gate stops @a, not @b
        self.assertEqual(self.gate({"account": a, "action": "dm"}), "deny")
        self.assertEqual(self.gate({"account": b, "action": "dm"}), "allow")

        # recorded in the audit log under the rule's name
        st, _, js = self.d.http("GET", "/v1/audit/events?action=switch.set&actor=detection:dm-loop")
        self.assertEqual(st, 200, js)
        self.assertTrue(any(e["target"] == sw["id"] for e in js["events"]), js)
        st, _, js = self.d.http("GET", "/v1/audit/events?action=incident.declare"
                                "&actor=detection:dm-loop")
        self.assertTrue(any(e["target"] == inc["id"] for e in js["events"]), js)

        # the loop goes on: still one incident, one switch
        self.append(self.dms(a, 20))
        for ev in self.dms(a, 3):
            self.append([ev])
        self.assertEqual(len(self.incidents(a)), 1)
        self.assertEqual(len(self.switches("account=" + a)), 1)

        # @b at the threshold is unaffected
        self.append(self.dms(b, 5))
        self.assertEqual(self.incidents(b), [])
        self.assertEqual(self.switches("account=" + b), [])

    def test_other_actions_do_not_count(self):
        a = uniq("@a")
        events = self.dms(a, 5)
        for i in range(10):
            events.append({"actor": "bot-7", "account": a, "action": "like",
                           "target": "p%d" % i})
        self.append(events)
        self.assertEqual(self.incidents(a), [])

    def test_batch_of_duplicates(self):
        a, client = uniq("@d"), uniq("c")
        post = "https://instagram.com/p/" + uniq("x")

        def comment(h, target=post):
            return {"actor": "bot-3", "client": client, "account": a, "platform": "instagram",
                    "action": "comment", "target": target, "content_hash": h}
        # three of one, and others that differ in content or target: no firing
        self.append([comment("sha256:1")] * 3 + [comment("sha256:2")] * 2 +
                    [comment("sha256:1", post + "/other")] * 3)
        self.assertEqual(self.incidents(a), [])
        # a batch that takes one of them over the threshold, with more after it
        self.append([comment("sha256:1")] * 5)
        incs = self.incidents(a)
        self.assertEqual(len(incs), 1, incs)
        inc = self.d.get(incs[0]["id"])
        self.assertEqual((inc["severity"], inc["types"], inc["title"]),
                         ("P2", ["ENGAGE"], "Duplicate comments are being posted"))
        self.assertEqual(inc["labels"], {"client": client, "account": a,
                                         "platform": "instagram", "detection": "dup-comments"})
        texts = "\n".join(e["text"] for e in self.d.timeline(inc["id"]))
        self.assertIn("4 events with the same action 'comment', target '%s' and content hash "
                      "'sha256:1', among events matching 'action in (comment,reply)' within 10m"
                      % post, texts)
        # contained by client and account, waiting for approval
        sel = "account=%s,client=%s" % (a, client)
        sws = self.switches(sel)
        self.assertEqual(len(sws), 1, sws)
        self.assertEqual((sws[0]["mode"], sws[0]["incident"], sws[0]["expires_at"]),
                         ("approve", inc["id"], None))
        self.assertEqual(self.gate({"client": client, "account": a, "action": "comment"}),
                         "approval_required")


class Hook:
    """A webhook receiver on 127.0.0.1 that records the JSON bodies."""

    def __init__(self):
        self.bodies = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                hook.bodies.append(json.loads(self.rfile.read(n)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class DetectionEvent(KlaxonTestCase):
    """A firing is also the outbox event "detection.fired"."""

    @classmethod
    def setUpClass(cls):
        for k in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
            os.environ.pop(k, None)
        os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"
        cls.hook = Hook()
        cls.config = CONFIG + ("channels:\n  - name: hook\n    type: webhook\n"
                               "    url: http://%s:%d/hook\n    events: [detection.fired]\n"
                               % (HOST, cls.hook.port))
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.hook.close()

    def test_webhook_gets_detection_fired(self):
        a = uniq("@w")
        st, _, js = self.d.http("POST", "/v1/audit/events", {"events": [
            {"actor": "bot", "client": "acme", "account": a, "action": "dm"}] * 6})
        self.assertEqual(st, 201, js)
        deadline = time.monotonic() + 20
        while not self.hook.bodies and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(self.hook.bodies), 1, self.hook.bodies)
        body = self.hook.bodies[0]
        self.assertEqual(body["event"], "detection.fired")
        self.assertEqual(body["labels"], {"client": "acme", "account": a,
                                          "detection": "dm-loop"})
        data = body["data"]
        st, _, js = self.d.http("GET", "/v1/incidents?label=account=" + a)
        self.assertEqual([i["id"] for i in js["incidents"]], [data["incident"]])
        self.assertEqual((data["rule"], data["kind"], data["count"], data["threshold"],
                          data["window"], data["selector"], data["group"]),
                         ("dm-loop", "rate", 6, 5, "1m", "account=" + a, "account '%s'" % a))
        self.assertRegex(data["switch"], r"^sw_[0-9a-f]{16}$")


class ExampleRules(KlaxonTestCase):
    """The commented-out rules in examples/klaxon.yaml parse and run."""

    @classmethod
    def setUpClass(cls):
        cls.daemons = []
        cls.d = None

    def test_example_rules(self):
        with open(os.path.join(REPO_ROOT, "examples", "klaxon.yaml")) as f:
            text = f.read()
        m = re.search(r"^# detections:\n(?:#   .*\n)+", text, re.M)
        self.assertIsNotNone(m, "examples/klaxon.yaml has no commented-out detections block")
        block = "".join(re.sub(r"^# ?", "", line) + "\n"
                        for line in m.group(0).splitlines()
                        if not line.startswith("# #") and line.strip() != "#")
        self.assertIn("dm-loop", block)
        d = self.new_daemon(config=text + "\n" + block)
        acc = uniq("@e")
        st, _, js = d.http("POST", "/v1/audit/events", {"events": [
            {"actor": "bot", "client": "acme", "account": acc, "action": "dm",
             "target": "@u%d" % i} for i in range(60)]})
        self.assertEqual(st, 201, js)
        st, _, js = d.http("GET", "/v1/incidents?label=account=" + acc)
        self.assertEqual(len(js["incidents"]), 1, js)


class BadRules(KlaxonTestCase):
    """A bad detection stops klaxond (exit 1) with FILE:LINE:COL."""

    @classmethod
    def setUpClass(cls):
        cls.daemons = []
        cls.d = None

    RULE = ("detections:\n"
            "  - name: dm-loop\n"
            "    kind: rate\n"
            "    selector: %s\n"
            "    threshold: %s\n"
            "    window: %s\n"
            "    severity: %s\n")

    def start_with(self, text):
        root = tempfile.mkdtemp(prefix="klaxon-itest-det-")
        self.addCleanup(shutil.rmtree, root, True)
        path = os.path.join(root, "klaxon.yaml")
        with open(path, "w") as f:
            f.write(text)
        data = os.path.join(root, "data")
        os.mkdir(data)
        try:
            p = subprocess.run([KLAXOND, "--listen", "%s:%d" % (HOST, free_port()),
                                "--data-dir", data, "--config", path],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
        except subprocess.TimeoutExpired:
            self.fail("klaxond kept running with a bad config:\n" + text)
        return p.returncode, p.stderr.decode("utf-8", "replace"), path

    def assertConfigError(self, text, line, words):
        rc, err, path = self.start_with(text)
        self.assertEqual(rc, 1, "klaxond: exit %s with\n%s\nstderr: %s" % (rc, text, err))
        m = re.search(re.escape(path) + r":(\d+):(\d+): (.+)", err)
        self.assertIsNotNone(m, "stderr lacks %s:LINE:COL: message\n%s" % (path, err))
        self.assertEqual(int(m.group(1)), line, m.group(0))
        self.assertGreaterEqual(int(m.group(2)), 1)
        for w in words:
            self.assertIn(w, m.group(3), m.group(0))

    def test_bad_rules(self):
        self.assertConfigError(self.RULE % ("action=dm", "5", "1m", "P9"), 1,
                               ("dm-loop", "unknown severity", "P9"))
        self.assertConfigError(self.RULE % ("action=dm", "0", "1m", "P1"), 5, ("threshold",))
        self.assertConfigError(self.RULE % ("action=dm", "5", "0s", "P1"), 6, ("window",))
        self.assertConfigError(self.RULE % ("'action=dm platform=x'", "5", "1m", "P1"), 4,
                               ("selector",))
        self.assertConfigError(self.RULE % ("'platform in (a'", "5", "1m", "P1"), 4,
                               ("selector",))
        self.assertConfigError(self.RULE % ("action=dm", "5", "1m", "P1") +
                               "    type: NOPE\n", 1, ("unknown type", "NOPE"))
        self.assertConfigError(self.RULE % ("action=dm", "5", "1m", "P1") +
                               "    contain: stop\n", 8, ("contain",))

    def test_a_good_rule_starts(self):
        d = Daemon(config=self.RULE % ("action=dm", "5", "1m", "P1"))
        self.addCleanup(d.cleanup)
        self.assertEqual(d.http("GET", "/v1/types")[0], 200)


if __name__ == "__main__":
    main()
