"""The emergency stop as the on-call engineer uses it: `klaxon stop` is one
command and one switch, in force at once, written to the audit log, noted
on the incident's timeline, and sent through the outbox to the channels
(a real local webhook receiver and a Slack-style one); `klaxon resume
--ramp` and `klaxon switch clear` are announced the same way."""

import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, KlaxonTestCase, main  # noqa: E402
from test_outbox import Sink  # noqa: E402

WAIT = 20.0
SW_RE = re.compile(r"\bsw_[0-9a-f]{16}\b")


class EmergencyStop(KlaxonTestCase):
    @classmethod
    def setUpClass(cls):
        cls.sink = Sink()
        cls.config = """channels:
  - name: hook
    type: webhook
    url: http://%(h)s:%(p)d/hook
    events: ["switch.*"]
  - name: chat
    type: slack
    url: http://%(h)s:%(p)d/chat
    events: ["switch.*"]
""" % {"h": HOST, "p": cls.sink.port}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.sink.close()

    def events(self, path, sw):
        return [r["json"] for r in self.sink.matching(path=path)
                if r["json"] and sw in json.dumps(r["json"])]

    def wait_event(self, path, sw, event):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            got = [e for e in self.events(path, sw) if e.get("event") == event or
                   (path == "/chat" and e.get("text"))]
            if got:
                return got
            time.sleep(0.02)
        self.fail("no %s for %s at %s within %ss" % (event, sw, path, WAIT))

    def test_stop_then_resume_then_clear(self):
        inc = self.d.declare(title="Duplicate comments sent", severity="P1",
                             labels={"client": "acme", "platform": "instagram"})
        iid = inc["id"]
        rc, out, err = self.d.cli("stop", "--client", "acme", "--platform", "instagram",
                                  "--reason", "duplicate comments", "--incident", iid)
        self.assertEqual(rc, 0, err)
        sw = SW_RE.search(out).group(0)

        # in force at once: the very next check is denied
        st, _, js = self.d.http("POST", "/v1/gate/check",
                                {"labels": {"client": "acme", "platform": "instagram",
                                            "action": "comment"}})
        self.assertEqual((st, js["decision"], js["id"]), (200, "deny", sw))

        # the webhook gets switch.set with the switch as the API shows it
        ev = self.wait_event("/hook", sw, "switch.set")[0]
        self.assertEqual(ev["event"], "switch.set")
        self.assertEqual(ev["data"]["selector"], "client=acme,platform=instagram")
        self.assertEqual(ev["data"]["mode"], "block")
        self.assertEqual(ev["data"]["incident"], iid)
        self.assertEqual(ev["labels"], {"client": "acme", "platform": "instagram"})
        # the chat channel gets a line a person can read
        text = self.wait_event("/chat", sw, "switch.set")[0]["text"]
        self.assertIn("Emergency stop", text)
        self.assertIn(sw, text)
        self.assertIn("duplicate comments", text)

        # the incident's timeline says so
        st, _, tl = self.d.http("GET", "/v1/incidents/%s/timeline" % iid)
        kinds = [(e["kind"], e["text"]) for e in tl["timeline"]]
        self.assertTrue(any(k == "switch" and sw in t and "duplicate comments" in t
                            for k, t in kinds), kinds)

        # the audit log has it, with who did it
        st, _, js = self.d.http("GET", "/v1/audit/events?action=switch.set&target=" + sw)
        self.assertEqual(st, 200)
        self.assertEqual(len(js["events"]), 1, js)
        self.assertEqual(js["events"][0]["actor"], "admin")
        self.assertEqual(js["events"][0]["client"], "acme")

        # resume gradually: announced, ramp visible
        rc, out, err = self.d.cli("resume", sw, "--ramp", "10m", "--reason", "query fixed")
        self.assertEqual(rc, 0, err)
        ev = self.wait_event("/hook", sw, "switch.resumed")
        self.assertTrue(any(e["event"] == "switch.resumed" and e["data"]["ramp"] for e in ev))
        st, _, js = self.d.http("GET", "/v1/switches/" + sw)
        self.assertIsNotNone(js["switch"]["ramp"])
        self.assertTrue(js["switch"]["active"])

        # and lift it for good
        rc, out, err = self.d.cli("switch", "clear", sw, "--reason", "all clear")
        self.assertEqual(rc, 0, err)
        self.wait_event("/hook", sw, "switch.cleared")
        st, _, js = self.d.http("POST", "/v1/gate/check",
                                {"labels": {"client": "acme", "platform": "instagram",
                                            "action": "comment"}})
        self.assertEqual(js["decision"], "allow")
        for action in ("switch.resume", "switch.clear"):
            st, _, js = self.d.http("GET", "/v1/audit/events?action=%s&target=%s" % (action, sw))
            self.assertEqual(len(js["events"]), 1, (action, js))
        # one delivery per event and channel: set, resumed, cleared
        time.sleep(0.5)
        hook = [e["event"] for e in self.events("/hook", sw)]
        self.assertEqual(sorted(hook), ["switch.cleared", "switch.resumed", "switch.set"], hook)


if __name__ == "__main__":
    main()
