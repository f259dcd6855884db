"""Alerts in: the Alertmanager webhook, PagerDuty Events v2, Alertmanager
API v2 and generic JSON endpoints with integration keys; folding, routing
into incidents, storms, silences, heartbeats, change events, and bad input.
Driven over raw HTTP against a real klaxond (docs/api.md, Detection)."""

import base64
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
  - name: publishing
routes:
  - name: database
    match: 'alertname=~"Database.*"'
    severity: P1
    types: [OUTAGE]
    labels: {area: db}
    resolve_to_monitoring: true
  - name: per-alertname
    match: 'service="publishing"'
    group_by: [service, alertname]
  - name: quiet
    match: 'team="noise"'
    action: none
  - name: moved
    match: 'moved="yes"'
    service: moved-here
"""


def am_alert(name, status="firing", fp=None, severity="critical", summary=None, **labels):
    labels = dict(labels, alertname=name, severity=severity)
    a = {"status": status, "labels": labels,
         "annotations": {"summary": summary} if summary else {},
         "startsAt": rfc3339(utcnow()),
         "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else rfc3339(utcnow()),
         "generatorURL": "http://prometheus:9090/graph"}
    if fp is not None:
        a["fingerprint"] = fp
    return a


def am_payload(*alerts, status=None):
    return {"receiver": "klaxon", "status": status or alerts[0]["status"],
            "alerts": list(alerts), "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "http://am:9093", "version": "4",
            "groupKey": "{}:{alertname=\"x\"}", "truncatedAlerts": 0}


class AlertsTest(KlaxonTestCase):
    config = CONFIG

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.am = cls.integration("payments", "alertmanager")
        cls.pd = cls.integration("payments", "events-v2")
        cls.gen = cls.integration("publishing", "generic")

    @classmethod
    def integration(cls, service, source):
        st, _, body = cls.d.http("POST", "/v1/integrations", {"service": service, "source": source})
        assert st == 201, body
        return body

    def post_am(self, payload, key=None):
        return self.d.http("POST", "/v1/alerts/alertmanager", payload,
                           token=key or self.am["key"])

    def alert(self, alert_id):
        st, _, a = self.d.http("GET", "/v1/alerts/%d" % alert_id)
        self.assertStatus((st, None, a), 200)
        return a

    # -- keys ---------------------------------------------------------------

    def test_integration_keys(self):
        self.assertEqual(len(self.pd["key"]), 32)
        self.assertRegex(self.am["key"], r"^[a-z0-9]{32}$")
        self.assertIn("/v1/alerts/alertmanager", self.am["urls"]["webhook"])
        st, _, lst = self.d.http("GET", "/v1/integrations?service=payments")
        self.assertEqual(st, 200)
        self.assertNotIn("key", json.dumps(lst["integrations"]))  # shown once only
        # wrong key, no key, a key for another source
        for hdrs in ({"Authorization": "Bearer " + "x" * 32}, {"Authorization": None}):
            st, _, body = self.d.http("POST", "/v1/alerts/alertmanager",
                                      am_payload(am_alert("K")), token=None, headers=hdrs)
            self.assertError((st, None, body), 401)
        st, _, body = self.post_am(am_payload(am_alert("K")), key=self.pd["key"])
        self.assertError((st, None, body), 403)
        # ?key= and basic auth (password) work too
        st, _, _ = self.d.http("POST", "/v1/alerts/alertmanager?key=" + self.am["key"],
                               am_payload(am_alert("KeyQuery", severity="info")), token=None)
        self.assertEqual(st, 200)
        basic = base64.b64encode(("alertmanager:" + self.am["key"]).encode()).decode()
        st, _, _ = self.d.http("POST", "/v1/alerts/alertmanager",
                               am_payload(am_alert("KeyBasic", severity="info")), token=None,
                               headers={"Authorization": "Basic " + basic})
        self.assertEqual(st, 200)
        # revoked keys stop working
        k = self.integration("payments", "alertmanager")
        st, _, _ = self.d.http("DELETE", "/v1/integrations/" + k["id"])
        self.assertEqual(st, 200)
        st, _, body = self.post_am(am_payload(am_alert("K")), key=k["key"])
        self.assertError((st, None, body), 401)
        # creating keys needs admin
        viewer = self.d.create_token("viewer", "v")
        st, _, _ = self.d.http("POST", "/v1/integrations", {"service": "payments"}, token=viewer)
        self.assertEqual(st, 403)
        st, _, body = self.d.http("POST", "/v1/integrations", {"service": "nope"})
        self.assertError((st, None, body), 404)

    # -- Alertmanager webhook ---------------------------------------------------

    def test_alertmanager_fold_and_resolve(self):
        a1 = am_alert("DiskFull", fp="aaaa000000000001", instance="db1", summary="Disk 99% full")
        a2 = am_alert("DiskFull", fp="aaaa000000000002", instance="db2", severity="warning")
        st, _, r = self.post_am(am_payload(a1, a2))
        self.assertEqual(st, 200, r)
        res = r["results"]
        self.assertTrue(res[0]["created"] and res[1]["created"])
        inc = res[0]["incident"]
        self.assertTrue(inc and res[0]["declared"])
        self.assertEqual(res[1]["incident"], inc)  # same service group: one incident
        # the same notification again (a retry, or an HA peer): folded
        st, _, r2 = self.post_am(am_payload(a1, a2))
        self.assertEqual([x["alert"] for x in r2["results"]], [x["alert"] for x in res])
        self.assertFalse(r2["results"][0]["created"])
        a = self.alert(res[0]["alert"])
        self.assertEqual(a["count"], 2)
        self.assertEqual(a["status"], "firing")
        self.assertEqual(a["summary"], "Disk 99% full")
        self.assertEqual(a["level"], "critical")
        self.assertEqual(a["severity"], "P1")
        self.assertEqual(a["labels"]["instance"], "db1")
        self.assertEqual(a["details"]["annotations"]["summary"], "Disk 99% full")
        i = self.d.get(inc)
        self.assertEqual(i["severity"], "P1")
        self.assertEqual(i["labels"]["service"], "payments")
        self.assertEqual(i["labels"]["team"], "payments")  # the service's labels
        # resolve one: the incident hears nothing yet; resolve both: it does
        r1 = dict(a1, status="resolved", endsAt=rfc3339(utcnow()))
        self.post_am(am_payload(r1))
        self.assertEqual(self.alert(res[0]["alert"])["status"], "resolved")
        texts = [e["text"] for e in self.d.timeline(inc)]
        self.assertFalse(any("All alerts" in t for t in texts), texts)
        r2_ = dict(a2, status="resolved", endsAt=rfc3339(utcnow()))
        self.post_am(am_payload(r2_))
        texts = [e["text"] for e in self.d.timeline(inc)]
        self.assertTrue(any("All alerts of this incident have resolved" in t for t in texts), texts)
        self.assertEqual(self.d.get(inc)["status"], "investigating")  # default route: stays
        # a new firing after the resolve is a new alert
        st, _, r3 = self.post_am(am_payload(a1))
        self.assertTrue(r3["results"][0]["created"])
        self.assertNotEqual(r3["results"][0]["alert"], res[0]["alert"])
        self.post_am(am_payload(dict(a1, status="resolved", endsAt=rfc3339(utcnow()))))

    def test_resolve_for_unknown_alert_is_accepted(self):
        st, _, r = self.post_am(am_payload(am_alert("NeverFired", status="resolved",
                                                    fp="bbbb000000000001")))
        self.assertEqual(st, 200)
        self.assertEqual(r["results"][0]["alert"], 0)

    def test_route_rule_severity_types_labels_and_monitoring(self):
        a = am_alert("DatabaseDown", fp="cccc000000000001", severity="warning",
                     summary="database unreachable")
        st, _, r = self.post_am(am_payload(a))
        inc = r["results"][0]["incident"]
        i = self.d.get(inc)
        self.assertEqual(i["severity"], "P1")  # the rule's, whatever the level
        self.assertEqual(i["types"], ["OUTAGE"])
        self.assertEqual(i["labels"]["area"], "db")
        self.assertEqual(self.alert(r["results"][0]["alert"])["route"], "database")
        self.post_am(am_payload(dict(a, status="resolved", endsAt=rfc3339(utcnow()))))
        self.assertEqual(self.d.get(inc)["status"], "monitoring")

    def test_warning_stays_an_alert(self):
        st, _, r = self.post_am(am_payload(am_alert("HighLatency", fp="dddd000000000001",
                                                    severity="warning", team="other")))
        # warning -> P3, below the default open_at P2, and no open incident
        # in its group yet... unless another test opened one for payments
        a = self.alert(r["results"][0]["alert"])
        self.assertEqual(a["severity"], "P3")
        st, _, r = self.post_am(am_payload(am_alert("Chatter", fp="dddd000000000002",
                                                    team="noise")))
        self.assertIsNone(r["results"][0]["incident"])  # route action none
        self.post_am(am_payload(am_alert("Chatter", status="resolved", fp="dddd000000000002",
                                         team="noise")))

    def test_route_moves_service(self):
        st, _, r = self.post_am(am_payload(am_alert("Moved", fp="eeee000000000001",
                                                    severity="info", moved="yes")))
        a = self.alert(r["results"][0]["alert"])
        self.assertEqual(a["service"], "moved-here")
        st, _, s = self.d.http("GET", "/v1/services/moved-here")
        self.assertEqual(st, 200)

    # -- storms ------------------------------------------------------------------

    def test_storm_folds_into_one_incident(self):
        alerts = [{"summary": "publish failed for job %d" % i, "severity": "critical",
                   "dedup_key": "storm-%d" % i, "labels": {"alertname": "PublishFailed",
                                                           "job": str(i)}}
                  for i in range(300)]
        st, _, r = self.d.http("POST", "/v1/alerts", {"alerts": alerts}, token=self.gen["key"])
        self.assertEqual(st, 202, r)
        incidents = {x["incident"] for x in r["results"]}
        self.assertEqual(len(incidents), 1, incidents)
        self.assertEqual(sum(1 for x in r["results"] if x["declared"]), 1)
        # another alertname in publishing: grouped separately (group_by alertname)
        st, _, r2 = self.d.http("POST", "/v1/alerts", {"summary": "queue stuck",
                                                       "severity": "critical",
                                                       "labels": {"alertname": "QueueStuck"}},
                                token=self.gen["key"])
        self.assertNotIn(r2["results"][0]["incident"], incidents)
        st, _, lst = self.d.http("GET", "/v1/alerts?service=publishing&limit=1000")
        self.assertGreaterEqual(len(lst["alerts"]), 301)

    # -- silences ------------------------------------------------------------------

    def test_silence_mutes_but_keeps_and_resolve_is_recorded(self):
        st, _, sil = self.d.http("POST", "/v1/silences",
                                 {"matchers": 'alertname="Flappy",service="payments"',
                                  "duration": "1h", "comment": "known issue"})
        self.assertEqual(st, 201, sil)
        self.assertEqual(sil["matchers"], 'alertname="Flappy",service="payments"')
        a = am_alert("Flappy", fp="ffff000000000001")
        st, _, r = self.post_am(am_payload(a))
        out = r["results"][0]
        self.assertTrue(out["silenced"])
        self.assertIsNone(out["incident"])
        alert = self.alert(out["alert"])
        self.assertEqual(alert["silenced_by"], sil["id"])
        self.post_am(am_payload(dict(a, status="resolved", endsAt=rfc3339(utcnow()))))
        self.assertEqual(self.alert(out["alert"])["status"], "resolved")  # never swallowed
        st, _, lst = self.d.http("GET", "/v1/silences")
        self.assertIn(sil["id"], [s["id"] for s in lst["silences"]])
        st, _, ex = self.d.http("POST", "/v1/silences/%s/expire" % sil["id"])
        self.assertEqual(st, 200)
        self.assertFalse(ex["active"])
        st, _, r = self.post_am(am_payload(a))
        self.assertFalse(r["results"][0]["silenced"])
        self.post_am(am_payload(dict(a, status="resolved", endsAt=rfc3339(utcnow()))))

    def test_silence_bad_input(self):
        for body, code in (({"matchers": ""}, 400), ({"matchers": "a=~\"(\"", "duration": "1h"}, 400),
                           ({"matchers": "a=\"b\""}, 400),  # no end
                           ({"matchers": "a=\"b\"", "duration": "soon"}, 400),
                           ({"matchers": "a=\"b\"", "duration": "1h", "x": 1}, 400)):
            st, _, b = self.d.http("POST", "/v1/silences", body)
            self.assertError((st, None, b), code, msg=str(body))

    # -- PagerDuty Events v2 --------------------------------------------------------

    def test_events_v2_trigger_ack_resolve(self):
        ev = {"routing_key": self.pd["key"], "event_action": "trigger",
              "payload": {"summary": "Payment API error rate > 10%", "source": "api-1",
                          "severity": "error", "component": "api", "group": "prod",
                          "class": "errors", "custom_details": {"rate": 0.12}},
              "links": [{"href": "https://grafana/d/1", "text": "dashboard"}]}
        st, _, r = self.d.http("POST", "/v2/enqueue", ev, token=None)
        self.assertEqual(st, 202, r)
        self.assertEqual(r["status"], "success")
        self.assertEqual(r["message"], "Event processed")
        key = r["dedup_key"]
        self.assertTrue(key)
        st, _, r2 = self.d.http("POST", "/v2/enqueue", dict(ev, dedup_key=key), token=None)
        self.assertEqual(r2["dedup_key"], key)
        st, _, lst = self.d.http("GET", "/v1/alerts?service=payments&status=all&limit=1000")
        mine = [a for a in lst["alerts"] if a["dedup_key"] == key]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["count"], 2)
        self.assertEqual(mine[0]["component"], "api")
        self.assertEqual(mine[0]["source_host"], "api-1")
        self.assertEqual(mine[0]["details"]["custom_details"], {"rate": 0.12})
        st, _, _ = self.d.http("POST", "/v2/enqueue", {"routing_key": self.pd["key"],
                                                       "event_action": "acknowledge",
                                                       "dedup_key": key}, token=None)
        self.assertEqual(st, 202)
        self.assertIsNotNone(self.alert(mine[0]["id"])["acked_at"])
        st, _, _ = self.d.http("POST", "/v2/enqueue", {"routing_key": self.pd["key"],
                                                       "event_action": "resolve",
                                                       "dedup_key": key}, token=None)
        self.assertEqual(self.alert(mine[0]["id"])["status"], "resolved")

    def test_events_v2_errors_in_pagerduty_form(self):
        cases = [
            {"routing_key": "x" * 32, "event_action": "trigger",
             "payload": {"summary": "s", "source": "h", "severity": "error"}},
            {"routing_key": self.pd["key"], "event_action": "explode"},
            {"routing_key": self.pd["key"], "event_action": "trigger",
             "payload": {"summary": "s" * 1025, "source": "h", "severity": "error"}},
            {"routing_key": self.pd["key"], "event_action": "trigger",
             "payload": {"summary": "s", "source": "h", "severity": "bad"}},
            {"routing_key": self.pd["key"], "event_action": "resolve"},
        ]
        for ev in cases:
            st, _, r = self.d.http("POST", "/v2/enqueue", ev, token=None)
            self.assertEqual(st, 400, (ev, r))
            self.assertEqual(r["status"], "invalid event")
            self.assertTrue(r["errors"] and all(isinstance(e, str) for e in r["errors"]))
        st, _, r = self.d.http("POST", "/v2/enqueue", cases[0], token=None)
        self.assertIn("Invalid routing key", r["errors"])
        for raw in ('{"routing_key": ', "[]", "null", '{"routing_key": 5}'):
            st, _, r = self.d.http("POST", "/v2/enqueue", raw=raw, token=None)
            self.assertEqual(st, 400, raw)
            self.assertEqual(r["status"], "invalid event")

    def test_change_events_on_service_timeline(self):
        st, _, r = self.d.http("POST", "/v2/change/enqueue",
                               {"routing_key": self.pd["key"],
                                "payload": {"summary": "Deploy payments v2.3.1",
                                            "source": "ci",
                                            "custom_details": {"sha": "abc123"}}}, token=None)
        self.assertEqual(st, 202, r)
        st, _, svc = self.d.http("GET", "/v1/services/payments")
        self.assertEqual(st, 200)
        self.assertIn("Deploy payments v2.3.1", [c["summary"] for c in svc["changes"]])

    # -- Alertmanager API v2 ------------------------------------------------------------

    def test_am_api_v2(self):
        st, _, status = self.d.http("GET", "/api/v2/status", token=None)
        self.assertEqual(st, 200)
        self.assertIn("versionInfo", status)
        now = utcnow()
        body = [{"labels": {"alertname": "ApiV2", "severity": "critical", "instance": "x"},
                 "annotations": {"summary": "from prometheus"},
                 "startsAt": rfc3339(now), "endsAt": rfc3339(now.__class__.fromtimestamp(
                     now.timestamp() + 3, now.tzinfo)),
                 "generatorURL": "http://prom"}]
        st, _, r = self.d.http("POST", "/api/v2/alerts", body, token=self.am["key"])
        self.assertEqual(st, 200, r)
        st, _, got = self.d.http("GET", "/api/v2/alerts", token=self.am["key"])
        self.assertEqual(st, 200)
        mine = [a for a in got if a["labels"].get("alertname") == "ApiV2"]
        self.assertEqual(len(mine), 1)
        self.assertEqual(mine[0]["status"]["state"], "active")
        self.assertEqual(len(mine[0]["fingerprint"]), 16)
        # endsAt passes without a refresh: resolved, as Alertmanager does
        deadline = time.time() + 10
        while time.time() < deadline:
            st, _, got = self.d.http("GET", "/api/v2/alerts", token=self.am["key"])
            if not [a for a in got if a["labels"].get("alertname") == "ApiV2"]:
                break
            time.sleep(0.3)
        self.assertFalse([a for a in got if a["labels"].get("alertname") == "ApiV2"])
        st, _, r = self.d.http("POST", "/api/v2/alerts", raw="[{", token=self.am["key"])
        self.assertEqual(st, 400)

    # -- heartbeats ---------------------------------------------------------------------

    def test_heartbeat_miss_and_recover(self):
        st, _, hb = self.d.http("POST", "/v1/heartbeats",
                                {"name": "nightly-backup", "service": "payments",
                                 "interval": "1s", "grace": "0s", "severity": "critical"})
        self.assertEqual(st, 201, hb)
        self.assertEqual(len(hb["key"]), 32)
        self.assertIn("/v1/heartbeats/", hb["ping_url"])
        # not armed before the first ping
        time.sleep(2.2)
        st, _, lst = self.d.http("GET", "/v1/heartbeats")
        self.assertEqual([h["state"] for h in lst["heartbeats"] if h["name"] == "nightly-backup"],
                         ["waiting"])
        st, _, p = self.d.http("POST", "/v1/heartbeats/" + hb["key"], token=None)
        self.assertEqual(st, 200, p)
        deadline = time.time() + 10
        alert = None
        while time.time() < deadline and not alert:
            time.sleep(0.3)
            st, _, lst = self.d.http("GET", "/v1/alerts?service=payments&status=firing&limit=1000")
            alert = next((a for a in lst["alerts"] if a["dedup_key"] == "heartbeat:nightly-backup"),
                         None)
        self.assertIsNotNone(alert, "a missed heartbeat opens an alert")
        self.assertEqual(alert["source"], "heartbeat")
        st, _, lst = self.d.http("GET", "/v1/heartbeats")
        self.assertEqual([h["state"] for h in lst["heartbeats"] if h["name"] == "nightly-backup"],
                         ["down"])
        st, _, p = self.d.http("GET", "/v1/heartbeats/" + hb["key"], token=None)
        self.assertEqual(st, 200)
        self.assertEqual(self.alert(alert["id"])["status"], "resolved")
        st, _, _ = self.d.http("DELETE", "/v1/heartbeats/nightly-backup")
        self.assertEqual(st, 200)
        st, _, b = self.d.http("POST", "/v1/heartbeats/" + hb["key"], token=None)
        self.assertError((st, None, b), 404)

    # -- people act on alerts ----------------------------------------------------------

    def test_ack_resolve_noise_by_people(self):
        st, _, r = self.d.http("POST", "/v1/alerts", {"summary": "by hand", "severity": "info",
                                                      "dedup_key": "hand-1"},
                               token=self.gen["key"])
        aid = r["results"][0]["alert"]
        st, _, a = self.d.http("POST", "/v1/alerts/%d/acknowledge" % aid)
        self.assertEqual(st, 200)
        self.assertEqual(a["acked_by"], "admin")
        st, _, a = self.d.http("POST", "/v1/alerts/%d/noise" % aid, {})
        self.assertTrue(a["noise"])
        st, _, a = self.d.http("POST", "/v1/alerts/%d/noise" % aid, {"noise": False})
        self.assertFalse(a["noise"])
        st, _, a = self.d.http("POST", "/v1/alerts/%d/resolve" % aid)
        self.assertEqual(a["status"], "resolved")
        self.assertEqual(a["resolved_by"], "admin")
        st, _, b = self.d.http("POST", "/v1/alerts/%d/resolve" % aid)
        self.assertError((st, None, b), 409)
        st, _, b = self.d.http("GET", "/v1/alerts/999999")
        self.assertError((st, None, b), 404)
        st, _, b = self.d.http("GET", "/v1/alerts/abc")
        self.assertError((st, None, b), 404)

    # -- scope, keys PagerDuty makes, API v2 details --------------------------------

    def test_scoped_tokens(self):
        web = self.d.create_token("admin", "web-admin", labels={"team": "web"})
        st, _, b = self.d.http("POST", "/v1/silences", {"matchers": 'a="b"', "duration": "1h"},
                               token=web)
        self.assertError((st, None, b), 403)
        st, _, b = self.d.http("GET", "/v1/notifications", token=web)
        self.assertError((st, None, b), 403)
        st, _, b = self.d.http("POST", "/v1/heartbeats", {"name": "web-hb", "service": "payments"},
                               token=web)
        self.assertError((st, None, b), 404)  # payments is team=payments
        st, _, hb = self.d.http("POST", "/v1/heartbeats", {"name": "pay-hb", "service": "payments"})
        self.assertEqual(st, 201)
        st, _, lst = self.d.http("GET", "/v1/heartbeats", token=web)
        self.assertNotIn("pay-hb", [h["name"] for h in lst["heartbeats"]])
        st, _, b = self.d.http("DELETE", "/v1/heartbeats/pay-hb", token=web)
        self.assertError((st, None, b), 404)
        st, _, lst = self.d.http("GET", "/v1/alerts?status=all", token=web)
        self.assertEqual([a for a in lst["alerts"] if a["service"] == "payments"], [])
        st, _, _ = self.d.http("DELETE", "/v1/heartbeats/pay-hb")
        self.assertEqual(st, 200)

    def test_deleting_a_down_heartbeat_resolves_its_alert(self):
        st, _, hb = self.d.http("POST", "/v1/heartbeats", {"name": "gone-soon", "service": "payments",
                                                          "interval": "1s", "grace": "0s"})
        self.assertEqual(st, 201, hb)
        self.d.http("POST", "/v1/heartbeats/" + hb["key"], token=None)
        deadline, alert = time.time() + 10, None
        while time.time() < deadline and not alert:
            time.sleep(0.3)
            st, _, lst = self.d.http("GET", "/v1/alerts?service=payments&status=firing&limit=1000")
            alert = next((a for a in lst["alerts"] if a["dedup_key"] == "heartbeat:gone-soon"), None)
        self.assertIsNotNone(alert)
        st, _, _ = self.d.http("DELETE", "/v1/heartbeats/gone-soon")
        self.assertEqual(st, 200)
        self.assertEqual(self.alert(alert["id"])["status"], "resolved")

    def test_events_v2_trigger_without_key_is_a_new_alert_each_time(self):
        ev = {"routing_key": self.pd["key"], "event_action": "trigger",
              "payload": {"summary": "same words", "source": "h", "severity": "info"}}
        keys = set()
        for _ in range(2):
            st, _, r = self.d.http("POST", "/v2/enqueue", ev, token=None)
            self.assertEqual(st, 202)
            keys.add(r["dedup_key"])
        self.assertEqual(len(keys), 2)
        for k in keys:
            self.assertRegex(k, r"^[0-9a-f]{32}$")

    def test_am_api_v2_without_ends_at_and_filters(self):
        st, _, r = self.d.http("POST", "/api/v2/alerts",
                               [{"labels": {"alertname": "NoEnd", "severity": "info"}},
                                {"labels": {"alertname": "Other", "severity": "info"}}],
                               token=self.am["key"])
        self.assertEqual(st, 200, r)
        st, _, lst = self.d.http("GET", "/v1/alerts?service=payments&limit=1000")
        mine = [a for a in lst["alerts"] if a["labels"].get("alertname") == "NoEnd"]
        self.assertEqual(len(mine), 1)
        self.assertIsNotNone(mine[0]["ends_at"])  # resolve_timeout, as Alertmanager
        st, _, got = self.d.http("GET", '/api/v2/alerts?filter=alertname%3D%22NoEnd%22',
                                 token=self.am["key"])
        self.assertEqual(st, 200)
        self.assertEqual({a["labels"]["alertname"] for a in got}, {"NoEnd"})
        st, _, b = self.d.http("GET", '/api/v2/alerts?filter=alertname%3D~%22(%22',
                               token=self.am["key"])
        self.assertEqual(st, 400)

    # -- bad input ------------------------------------------------------------------------

    def test_bad_alertmanager_input_stores_nothing(self):
        st, _, before = self.d.http("GET", "/v1/alerts?status=all&limit=1000")
        n0 = len(before["alerts"])
        good = am_alert("Good", fp="9999000000000001")
        future = dict(am_alert("Future"), startsAt="2099-01-01T00:00:00Z")
        ancient = dict(am_alert("Ancient"), startsAt="2001-01-01T00:00:00Z")
        many = am_alert("Many")
        many["labels"].update({"l%d" % i: "v" for i in range(200)})
        huge = am_alert("Huge")
        huge["labels"]["big"] = "x" * 5000
        badname = am_alert("BadName")
        badname["labels"]["Not A Name"] = "v"
        cases = ['{"version":"4","alerts":[', "[]", '{"version":"4","alerts":"no"}',
                 json.dumps(am_payload(good, future)), json.dumps(am_payload(good, ancient)),
                 json.dumps(am_payload(good, many)), json.dumps(am_payload(good, huge)),
                 json.dumps(am_payload(good, badname)),
                 json.dumps(dict(am_payload(good), version="3")),
                 json.dumps(am_payload(dict(good, status="sideways")))]
        for raw in cases:
            st, _, b = self.d.http("POST", "/v1/alerts/alertmanager", raw=raw,
                                   token=self.am["key"])
            self.assertIn(st, (400, 413), (raw[:80], b))
            self.assertIn("error", b)
        st, _, after = self.d.http("GET", "/v1/alerts?status=all&limit=1000")
        self.assertEqual(len(after["alerts"]), n0, "nothing stored half-way")
        # a million labels: refused, and the daemon keeps serving
        big = '{"version":"4","alerts":[{"status":"firing","labels":{' + ",".join(
            '"l%d":"v"' % i for i in range(100000)) + '}}]}'
        st, _, b = self.d.http("POST", "/v1/alerts/alertmanager", raw=big, token=self.am["key"])
        self.assertIn(st, (400, 413))
        st, _, _ = self.d.http("GET", "/healthz", token=None)
        self.assertEqual(st, 200)

    def test_bad_generic_input(self):
        for raw in ('{"summary": 5}', '{"severity": "loud", "summary": "x"}', '{"alerts": {}}',
                    '{"summary": "x", "status": "maybe"}', '{', '{"labels": {"a": 1}, "summary": "x"}'):
            st, _, b = self.d.http("POST", "/v1/alerts", raw=raw, token=self.gen["key"])
            self.assertEqual(st, 400, (raw, b))


if __name__ == "__main__":
    main()
