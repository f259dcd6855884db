"""Every notification arrives exactly once at the receiver, by its
idempotency key: a burst of alerts (Alertmanager webhook and PagerDuty
Events v2) opens incidents, people change them, all while the receiver is
down; it comes back and each notification is there once. Also across a
restart of klaxond with deliveries pending, and a restart in the middle
of a burst being delivered (at least once: a repeat may come, but only
with the same Idempotency-Key).

A real local HTTP receiver (test_outbox.Sink), two webhook channels.
See docs/config.md (Channels, Routing) and docs/operations.md
(Notifications)."""

import collections
import hashlib
import hmac
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, KlaxonTestCase, main, rfc3339, utcnow  # noqa: E402
from test_outbox import Sink  # noqa: E402  (also clears the proxy variables)

WAIT = 20.0   # seconds, the longest any wait here may take
SECRET = "exactly-once-secret"
CHANNELS = {"/a": "hook-a", "/b": "hook-b"}


def config(port):
    return """
services:
  - name: payments
    labels: {team: payments}
routes:
  - name: per-kind                     # one incident per alertname / component
    group_by: [service, alertname, component]
channels:
  - name: hook-a
    type: webhook
    url: http://%(host)s:%(port)d/a
    secret: %(secret)s
    timeout: 3s
  - name: hook-b
    type: webhook
    url: http://%(host)s:%(port)d/b
    timeout: 3s
""" % {"host": HOST, "port": port, "secret": SECRET}


def am_alert(name, status="firing", **labels):
    now = rfc3339(utcnow())
    return {"status": status, "labels": dict(labels, alertname=name, severity="critical"),
            "annotations": {"summary": "%s is broken" % name}, "startsAt": now,
            "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else now,
            "generatorURL": "", "fingerprint": hashlib.sha256(name.encode()).hexdigest()[:16]}


def am_payload(alerts):
    return {"receiver": "klaxon", "status": "firing", "alerts": alerts, "groupLabels": {},
            "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am:9093",
            "version": "4", "groupKey": "{}:{}", "truncatedAlerts": 0}


class ExactlyOnce(KlaxonTestCase):
    fresh_daemon_per_test = True

    def setUp(self):
        self.sink = None  # each test starts its own receiver, then its daemon

    def tearDown(self):
        super().tearDown()
        if self.sink is not None:
            self.sink.close()

    @staticmethod
    def quiet(sink):
        """A receiver whose client went away mid-answer (klaxond stopping)
        is expected here: no traceback on stderr for it."""
        if sink.server is not None:
            sink.server.handle_error = lambda request, client_address: None
        return sink

    def sink_up(self):
        self.sink.up()
        self.quiet(self.sink)

    def start(self, sink):
        self.sink = self.quiet(sink)
        type(self).d = d = self.new_daemon(config=config(sink.port))
        self.am = self.integration("alertmanager")
        self.ev2 = self.integration("events-v2")
        return d

    def integration(self, source):
        st, _, body = self.d.http("POST", "/v1/integrations",
                                  {"service": "payments", "source": source})
        self.assertEqual(st, 201, body)
        return body["key"]

    # -- ingesting and changing ----------------------------------------------

    def ingest_am(self, names):
        """One Alertmanager webhook request with one alert per name, each
        opening an incident; then the same request again (a retry), which
        folds. Returns the incident IDs in order."""
        payload = am_payload([am_alert(n) for n in names])
        st, _, r = self.d.http("POST", "/v1/alerts/alertmanager", payload, token=self.am)
        self.assertEqual(st, 200, r)
        res = r["results"]
        self.assertTrue(all(x["created"] and x["declared"] for x in res), res)
        st, _, r2 = self.d.http("POST", "/v1/alerts/alertmanager", payload, token=self.am)
        self.assertEqual(st, 200, r2)
        self.assertFalse(any(x["created"] or x["declared"] for x in r2["results"]), r2)
        self.assertEqual([x["incident"] for x in r2["results"]], [x["incident"] for x in res])
        return [x["incident"] for x in res]

    def ingest_ev2(self, components):
        """One Events v2 trigger per component (a new incident each), each
        sent twice (folded). Returns the incident IDs in order."""
        ids = []
        for comp in components:
            ev = {"routing_key": self.ev2, "event_action": "trigger", "dedup_key": "ev2-" + comp,
                  "payload": {"summary": "%s error rate > 10%%" % comp, "source": "api-1",
                              "severity": "critical", "component": comp}}
            for _ in range(2):
                st, _, r = self.d.http("POST", "/v2/enqueue", ev, token=None)
                self.assertEqual(st, 202, r)
                self.assertEqual(r["dedup_key"], "ev2-" + comp)
            st, _, lst = self.d.http("GET", "/v1/alerts?service=payments&limit=1000")
            mine = [a for a in lst["alerts"] if a["dedup_key"] == "ev2-" + comp]
            self.assertEqual(len(mine), 1, mine)
            self.assertEqual(mine[0]["count"], 2)
            self.assertTrue(mine[0]["incident"])
            ids.append(mine[0]["incident"])
        return ids

    def change(self, iid, what, body):
        st, _, r = self.d.http("POST", "/v1/incidents/%s/%s" % (iid, what), body)
        self.assertEqual(st, 200, (iid, what, r))
        return r

    # -- the delivery log and the receiver ----------------------------------

    def rows(self, status=None):
        q = "/v1/notifications?limit=1000" + ("&status=" + status if status else "")
        st, _, body = self.d.http("GET", q)
        self.assertEqual(st, 200, body)
        return body["notifications"]

    def wait_rows(self, pred, what, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while True:
            rows = self.rows()
            if pred(rows):
                return rows
            if time.monotonic() > deadline:
                counts = collections.Counter((r["status"], r["attempts"]) for r in rows)
                self.fail("within %.0fs: %s (status, attempts: %r)" % (timeout, what, counts))
            time.sleep(0.1)

    def received(self):
        """Successful requests at the receiver, grouped by Idempotency-Key."""
        by_key = collections.defaultdict(list)
        for r in self.sink.matching(status=200):
            by_key[r["headers"]["Idempotency-Key"]].append(r)
        return by_key

    def wait_received(self, n, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while len(self.received()) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received()

    def assertExactlyOnce(self, expected):
        """expected: Counter of (channel, event, incident) that must have
        arrived, each once by key. Waits for them, then checks the
        receiver against the delivery log."""
        n = sum(expected.values())
        self.wait_received(n)
        rows = self.wait_rows(lambda rs: len(rs) >= n and all(r["status"] == "delivered"
                                                             for r in rs),
                              "all %d notifications delivered in the log" % n)
        time.sleep(1.5)  # any repeat or stray notification would have come by now
        by_key = self.received()
        rows = self.rows()
        delivered = self.rows("delivered")
        self.assertEqual(len(by_key), n, "unique Idempotency-Keys at the receiver")
        self.assertEqual(len(rows), n, "rows in the delivery log")
        self.assertEqual(len(delivered), n, "rows delivered")
        self.assertEqual(set(by_key), {r["id"] for r in rows},
                         "the receiver's keys are the delivery log's IDs")
        repeats = {k: len(v) for k, v in by_key.items() if len(v) > 1}
        if repeats:
            sys.stderr.write("\n[exactly-once] repeated keys (allowed, deduped): %r\n" % repeats)
        got = collections.Counter()
        row_by_id = {r["id"]: r for r in rows}
        for key, reqs in by_key.items():
            first = reqs[0]
            for r in reqs:
                # a repeat is the same notification: same key, same body
                self.assertEqual(r["body"], first["body"], key)
                self.assertEqual(r["headers"]["X-Klaxon-Delivery"], key)
                self.assertEqual(r["json"]["delivery"], key)
            channel = CHANNELS[first["path"]]
            event = first["json"]["event"]
            self.assertEqual(first["headers"]["X-Klaxon-Event"], event)
            iid = first["json"]["data"]["id"]
            got[(channel, event, iid)] += 1
            row = row_by_id[key]
            self.assertEqual((row["channel"], row["event"], row["subject"]), (channel, event, iid))
            self.assertEqual(row["last_code"], 200, row)
            if channel == "hook-a":
                want = "sha256=" + hmac.new(SECRET.encode(), first["body"],
                                            hashlib.sha256).hexdigest()
                self.assertTrue(hmac.compare_digest(first["headers"]["X-Klaxon-Signature"], want))
            else:
                self.assertNotIn("X-Klaxon-Signature", first["headers"])
        self.assertEqual(got, expected)
        return rows, by_key

    @staticmethod
    def expect(events):
        """Counter over both channels from a list of (event, incident)."""
        c = collections.Counter()
        for ev, iid in events:
            for ch in CHANNELS.values():
                c[(ch, ev, iid)] += 1
        return c

    # -- tests ---------------------------------------------------------------

    def test_burst_while_the_receiver_is_down(self):
        d = self.start(Sink(reserve=True))  # connections refused
        am_ids = self.ingest_am(["BurstA%d" % i for i in range(6)])
        ev2_ids = self.ingest_ev2(["comp%d" % i for i in range(4)])
        ids = am_ids + ev2_ids
        self.assertEqual(len(set(ids)), 10, "one incident per alertname / component")
        for iid in ids:
            self.assertEqual(d.get(iid)["severity"], "P1")
        events = [("incident.declared", iid) for iid in ids]

        self.change(ids[0], "status", {"status": "identified", "note": "bad deploy"})
        events.append(("incident.status_changed", ids[0]))
        self.change(ids[1], "severity", {"severity": "P2", "note": "one region only"})
        events.append(("incident.severity_changed", ids[1]))
        self.change(ids[2], "resolve", {"resolution": "rolled back"})
        events.append(("incident.resolved", ids[2]))
        self.change(ids[6], "status", {"status": "monitoring"})
        events.append(("incident.status_changed", ids[6]))
        self.change(ids[6], "resolve", {"resolution": "fixed"})
        events.append(("incident.resolved", ids[6]))
        # a change refused (it changes nothing) sends nothing
        st, _, r = d.http("POST", "/v1/incidents/%s/severity" % ids[3], {"severity": "P1"})
        self.assertEqual(st, 409, r)
        expected = self.expect(events)
        n = sum(expected.values())
        self.assertEqual(n, 30)

        # each one queued with its event, and tried a few times while down
        rows = self.wait_rows(lambda rs: len(rs) == n and all(r["attempts"] >= 3 for r in rs),
                              "three failed attempts for each of %d notifications" % n)
        self.assertTrue(all(r["status"] == "retrying" for r in rows), rows)
        self.assertEqual(self.sink.requests, [])
        self.sink_up()
        rows, by_key = self.assertExactlyOnce(expected)
        self.assertTrue(all(r["attempts"] > 3 for r in rows))
        kinds = {k[1] for k in expected}
        self.assertEqual(kinds, {"incident.declared", "incident.status_changed",
                                 "incident.severity_changed", "incident.resolved"})
        # what the change events carry
        for reqs in by_key.values():
            js = reqs[0]["json"]
            if js["event"] == "incident.severity_changed":
                self.assertEqual((js["data"]["previous_severity"], js["data"]["severity"]),
                                 ("P1", "P2"))
            if js["event"] == "incident.resolved":
                self.assertEqual(js["data"]["status"], "resolved")
            self.assertEqual(js["labels"].get("service"), "payments")

    def test_restart_with_deliveries_pending(self):
        d = self.start(Sink(reserve=True))
        ids = self.ingest_am(["RestartA%d" % i for i in range(3)])
        ids += self.ingest_ev2(["rcomp%d" % i for i in range(2)])
        self.change(ids[0], "status", {"status": "identified"})
        events = [("incident.declared", i) for i in ids] + [("incident.status_changed", ids[0])]
        n = 2 * len(events)
        self.wait_rows(lambda rs: len(rs) == n and all(r["attempts"] >= 1 for r in rs),
                       "every notification tried once")
        rc, killed = d.restart()
        self.assertEqual((rc, killed), (0, False), "klaxond stops promptly on SIGTERM")
        rows = self.rows()
        self.assertEqual(len(rows), n, "the delivery log survives the restart")
        self.assertFalse([r for r in rows if r["status"] == "delivered"], rows)
        # the queue is still there: more after the restart, then the receiver
        self.am = self.integration("alertmanager")
        ids2 = self.ingest_am(["AfterRestart"])
        self.change(ids[1], "severity", {"severity": "P3"})
        self.change(ids[3], "resolve", {"resolution": "done"})
        events += [("incident.declared", ids2[0]), ("incident.severity_changed", ids[1]),
                   ("incident.resolved", ids[3])]
        self.sink_up()
        self.assertExactlyOnce(self.expect(events))

    def test_restart_in_the_middle_of_a_burst(self):
        # the receiver is up; klaxond is stopped while the burst is being
        # delivered: what was in flight goes back to the queue, and arrives
        # (at least once) after the start, every one under its own key
        d = self.start(Sink())
        ids = self.ingest_am(["Mid%02d" % i for i in range(20)])
        ids += self.ingest_ev2(["mcomp%d" % i for i in range(5)])
        rc, killed = d.restart()
        self.assertEqual((rc, killed), (0, False))
        self.assertExactlyOnce(self.expect([("incident.declared", i) for i in ids]))


if __name__ == "__main__":
    main()
