"""The detection commands of the real klaxon binary against a real klaxond:
service, integration, alert, silence, heartbeat and notification, their
tables, --json, --help and usage errors (docs/cli.md, Detection)."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import KlaxonTestCase, main, rfc3339, utcnow  # noqa: E402

CONFIG = """
services:
  - name: payments
    labels: {team: payments}
"""


class AlertsCliTest(KlaxonTestCase):
    config = CONFIG

    def ok(self, *args, **kw):
        rc, out, err = self.d.cli(*args, **kw)
        self.assertEqual(rc, 0, (args, out, err))
        return out

    def js(self, *args, **kw):
        return json.loads(self.ok("--json", *args, **kw))

    def integration(self, source):
        return self.js("integration", "create", "--service", "payments", "--source", source)

    def fire(self, key, name, status="firing", fp=None):
        alert = {"status": status, "labels": {"alertname": name, "severity": "critical"},
                 "annotations": {"summary": name + " is broken"},
                 "startsAt": rfc3339(utcnow()),
                 "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else rfc3339(utcnow()),
                 "fingerprint": fp or ("%016x" % abs(hash(name)))[:16]}
        st, _, body = self.d.http("POST", "/v1/alerts/alertmanager",
                                  {"version": "4", "status": status, "alerts": [alert]},
                                  token=key)
        self.assertEqual(st, 200, body)
        return body["results"][0]

    def test_service_commands(self):
        out = self.ok("service", "create", "checkout", "--label", "team=shop",
                      "--description", "the basket")
        self.assertIn("checkout", out)
        out = self.ok("service", "list")
        self.assertIn("payments", out)
        self.assertIn("checkout", out)
        out = self.ok("service", "show", "checkout")
        self.assertIn("the basket", out)
        rc, out, err = self.d.cli("service", "create", "checkout")
        self.assertOneLineError(rc, out, err)
        rc, out, err = self.d.cli("service", "create", "Bad Name")
        self.assertNotEqual(rc, 0)

    def test_integration_create_prints_key_and_snippet(self):
        rc, out, err = self.d.cli("integration", "create", "--service", "payments",
                                  "--source", "alertmanager", "--name", "prom")
        self.assertEqual(rc, 0, err)
        self.assertIn("webhook_configs", out)
        self.assertIn("send_resolved: true", out)
        self.assertIn("/v1/alerts/alertmanager", out)
        self.assertNotIn(":0/", out)  # the real port, not the listen flag's 0
        j = self.integration("events-v2")
        self.assertEqual(len(j["key"]), 32)
        out = self.ok("integration", "list", "--service", "payments")
        self.assertIn(j["id"], out)
        self.ok("integration", "revoke", j["id"])
        rc, out, err = self.d.cli("integration", "revoke", j["id"])
        self.assertOneLineError(rc, out, err)
        rc, out, err = self.d.cli("integration", "create", "--service", "payments",
                                  "--source", "carrier-pigeon")
        self.assertEqual(rc, 2, (out, err))

    def test_alert_list_show_ack_resolve_noise(self):
        key = self.integration("alertmanager")["key"]
        r = self.fire(key, "CliDiskFull")
        aid = str(r["alert"])
        out = self.ok("alert", "list")
        self.assertIn("CliDiskFull is broken", out)
        self.assertIn(r["incident"], out)
        out = self.ok("alert", "show", aid)
        self.assertIn("alertname=CliDiskFull", out)
        self.assertIn("critical", out)
        self.ok("alert", "ack", aid)
        self.assertIsNotNone(self.js("alert", "show", aid)["acked_at"])
        self.ok("alert", "noise", aid)
        self.assertTrue(self.js("alert", "show", aid)["noise"])
        self.ok("alert", "noise", aid, "--undo")
        self.assertFalse(self.js("alert", "show", aid)["noise"])
        self.ok("alert", "resolve", aid)
        self.assertEqual(self.js("alert", "show", aid)["status"], "resolved")
        out = self.ok("alert", "list", "--status", "resolved", "--service", "payments")
        self.assertIn("CliDiskFull", out)
        rc, out, err = self.d.cli("alert", "resolve", aid)
        self.assertOneLineError(rc, out, err)
        rc, out, err = self.d.cli("alert", "show", "nope")
        self.assertEqual(rc, 2)
        rc, out, err = self.d.cli("alert", "list", "--status", "sideways")
        self.assertEqual(rc, 2)

    def test_silence_commands(self):
        key = self.integration("alertmanager")["key"]
        out = self.ok("alert", "silence", "--match", 'alertname="CliFlappy"', "--for", "1h",
                      "--comment", "known")
        self.assertIn("sil_", out)
        sid = [w for w in out.replace(":", " ").split() if w.startswith("sil_")][0]
        r = self.fire(key, "CliFlappy")
        self.assertTrue(r["silenced"])
        out = self.ok("silence", "list")
        self.assertIn(sid, out)
        # a window planned for later is listed too
        later = self.js("silence", "create", "--match", 'service="payments"', "--maintenance",
                        "--starts", rfc3339(utcnow().__class__.fromtimestamp(
                            time.time() + 3600, utcnow().tzinfo)), "--for", "1h")
        self.assertIn(later["id"], self.ok("silence", "list"))
        self.ok("silence", "expire", sid)
        self.assertNotIn(sid, self.ok("silence", "list"))
        self.assertIn(sid, self.ok("silence", "list", "--all"))
        rc, out, err = self.d.cli("alert", "silence", "--match", 'a="b"')
        self.assertEqual(rc, 2, "a silence needs an end")
        rc, out, err = self.d.cli("alert", "silence", "--match", 'a=~"("', "--for", "1h")
        self.assertOneLineError(rc, out, err)

    def test_heartbeat_commands(self):
        out = self.ok("heartbeat", "create", "cli-cron", "--service", "payments",
                      "--interval", "1m", "--grace", "30s")
        self.assertIn("curl", out)
        hb = [h for h in self.js("heartbeat", "list")["heartbeats"] if h["name"] == "cli-cron"][0]
        self.assertEqual(hb["state"], "waiting")
        j = self.js("heartbeat", "create", "cli-cron2", "--service", "payments")
        self.ok("heartbeat", "ping", j["key"], token=None)
        out = self.ok("heartbeat", "list")
        self.assertIn("cli-cron2", out)
        self.assertIn("up", out)
        self.ok("heartbeat", "delete", "cli-cron")
        rc, out, err = self.d.cli("heartbeat", "ping", "x" * 32, token=None)
        self.assertOneLineError(rc, out, err)

    def test_notification_commands_without_channels(self):
        out = self.ok("notification", "list")
        self.assertTrue(out.strip())
        rc, out, err = self.d.cli("notification", "show", "ntf_0000000000000000")
        self.assertOneLineError(rc, out, err)
        rc, out, err = self.d.cli("notification", "list", "--status", "lost")
        self.assertEqual(rc, 2)

    def test_help_everywhere(self):
        for fam, cmds in (("alert", ["list", "show", "ack", "resolve", "noise", "silence"]),
                          ("silence", ["list", "create", "expire"]),
                          ("service", ["create", "list", "show"]),
                          ("integration", ["create", "list", "revoke"]),
                          ("heartbeat", ["create", "list", "delete", "ping"]),
                          ("notification", ["list", "show"])):
            out = self.ok(fam, "--help")
            for c in cmds:
                self.assertIn(c, out)
                h = self.ok(fam, c, "--help")
                self.assertIn("usage: klaxon %s %s" % (fam, c), h)
                self.assertIn("example", h.lower())


if __name__ == "__main__":
    main()
