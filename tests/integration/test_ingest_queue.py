"""The ingestion queue under load: the ingestion endpoints (the Alertmanager
webhook, Alertmanager API v2, PagerDuty Events v2 and generic JSON) park
their requests and hand them to one writer that ingests many requests in
one transaction. Many concurrent keep-alive senders lose nothing and double
nothing, bad requests mixed in get their own 4xx and do not disturb good
ones, a revoked integration key is refused at once despite the key cache
(also on another daemon of the same PostgreSQL), SIGTERM under load answers
every parked request with 2xx or 503 and exits 0 with every 2xx stored, and
ordinary API requests stay fast while ingestion runs (docs/api.md,
Detection)."""

import collections
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BACKEND, HOST, KlaxonTestCase, main  # noqa: E402
from test_alerts import am_alert, am_payload  # noqa: E402

CONFIG = """
services:
  - name: load-a
    labels: {team: load}
  - name: load-b
  - name: mixed-a
  - name: mixed-b
  - name: keys-a
  - name: lat-a
  - name: stop-a
"""

SEND_TIMEOUT = 10.0   # seconds a sender waits for one answer
JOIN_TIMEOUT = 60.0   # seconds for one whole burst of senders
MAX_PAGES = 50


def fp(tag, i, j, slot):
    """A 16-hex-digit Alertmanager fingerprint, unique per (tag, i, j, slot)."""
    return "%02x%04x%06x%04x" % (tag, i, j, slot)


class Sender:
    """One keep-alive HTTP/1.1 connection to the daemon (http.client
    reopens it by itself after a Connection: close)."""

    def __init__(self, port, timeout=SEND_TIMEOUT):
        self.conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
        self.connects = 0  # TCP connections opened


    def send(self, method, path, body=None, raw=None, key=None):
        hdrs = {}
        data = None
        if key is not None:
            hdrs["Authorization"] = "Bearer " + key
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        if self.conn.sock is None:
            self.connects += 1
        try:
            self.conn.request(method, path, body=data, headers=hdrs)
            resp = self.conn.getresponse()
            payload = resp.read()
        except BaseException:
            self.conn.close()
            raise
        text = payload.decode("utf-8", "replace")
        parsed = text
        if text[:1] in ("{", "["):
            try:
                parsed = json.loads(text)
            except ValueError:
                pass
        return resp.status, parsed

    def close(self):
        self.conn.close()


def run_threads(test, n, fn, timeout=JOIN_TIMEOUT):
    """fn(i) in n threads released together; their results in thread order.
    Fails on a thread's exception or when one outlives the timeout."""
    barrier = threading.Barrier(n, timeout=10)
    results = [None] * n
    errors = []

    def worker(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as e:  # reported below
            errors.append("thread %d: %r" % (i, e))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    end = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, end - time.monotonic()))
    alive = [t for t in threads if t.is_alive()]
    if alive:
        test.fail("%d sender threads still running after %.0fs" % (len(alive), timeout))
    if errors:
        test.fail("%d sender threads failed:\n%s" % (len(errors), "\n".join(errors[:10])))
    return results


class Workload:
    """The good requests of one load run and what they must leave stored.

    Keys of `expected`: (service, dedup_key) for the endpoints where the
    sender names the key, (service, "v2", labels...) for API v2 alerts,
    whose key the daemon derives from the labels. Values: how many events
    folded into that one alert."""

    def __init__(self, svc_am, svc_ev, keys, tag):
        self.svc_am, self.svc_ev, self.keys, self.tag = svc_am, svc_ev, keys, tag
        self.expected = collections.Counter()
        self.lock = threading.Lock()

    def expect(self, k):
        with self.lock:
            self.expected[k] += 1

    def request(self, i, j, kind):
        """(name, method, path, body, key, keys, check) for the j-th request
        of thread i: check(status, body) returns what is wrong with the
        answer, or None; then each of keys is expect()ed."""
        tag = self.tag
        if kind == 0:  # Alertmanager webhook: several alerts, some folding
            alerts = [am_alert("LoadUniq", fp=fp(tag, i, j, 1), severity="warning",
                               summary="uniq %d/%d" % (i, j), thread=str(i)),
                      am_alert("LoadUniq2", fp=fp(tag, i, j, 2), severity="info", thread=str(i)),
                      am_alert("LoadShared", fp=fp(tag, 0xffff, (i + j) % 5, 0),
                               severity="critical", summary="shared %d" % ((i + j) % 5))]
            if j % 5 == 0:  # the same alert twice in one notification
                alerts.append(dict(alerts[0]))
            keys = [(self.svc_am, a["fingerprint"]) for a in alerts]

            def check(st, b, alerts=alerts):
                if st != 200 or not isinstance(b, dict):
                    return "webhook: %s %r" % (st, b)
                if b.get("status") != "success" or b.get("alerts") != len(alerts):
                    return "webhook body: %r" % (b,)
                res = b.get("results")
                if not isinstance(res, list) or len(res) != len(alerts):
                    return "webhook results: %r" % (b,)
                for a, r in zip(alerts, res):
                    if r.get("dedup_key") != a["fingerprint"] or not r.get("alert"):
                        return "webhook result %r for %s" % (r, a["fingerprint"])
                return None
            return ("webhook", "POST", "/v1/alerts/alertmanager", am_payload(*alerts),
                    self.keys["am"], keys, check)
        if kind == 1:  # Alertmanager API v2
            body = [{"labels": {"alertname": "V2Uniq", "t": str(i), "r": str(j),
                                "severity": "info"},
                     "annotations": {"summary": "v2 %d/%d" % (i, j)}},
                    {"labels": {"alertname": "V2Shared", "k": str((i * 7 + j) % 6),
                                "severity": "warning"}}]
            keys = [(self.svc_am, "v2", "V2Uniq", str(i), str(j)),
                    (self.svc_am, "v2", "V2Shared", str((i * 7 + j) % 6))]

            def check(st, b):
                return None if (st, b) == (200, "") else "api v2: %s %r" % (st, b)
            return ("api-v2", "POST", "/api/v2/alerts", body, self.keys["am"], keys, check)
        if kind == 2:  # Events v2 trigger with a dedup key
            dk = ("ev-%d-%d" % (i, j)) if (j // 4) % 2 == 0 else "ev-shared-%d" % (j % 3)
            body = {"routing_key": self.keys["ev"], "event_action": "trigger", "dedup_key": dk,
                    "payload": {"summary": "event %s" % dk, "source": "host-%d" % i,
                                "severity": "critical" if dk.startswith("ev-shared") else "info",
                                "component": "load"}}
            keys = [(self.svc_ev, dk)]

            def check(st, b, dk=dk):
                want = {"status": "success", "message": "Event processed", "dedup_key": dk}
                return None if st == 202 and b == want else "events v2: %s %r" % (st, b)
            return ("events-v2", "POST", "/v2/enqueue", body, None, keys, check)
        # generic JSON, two alerts
        alerts = [{"summary": "generic %d/%d" % (i, j), "severity": "info",
                   "dedup_key": "gen-%d-%d" % (i, j), "labels": {"thread": str(i)}},
                  {"summary": "generic shared", "severity": "warning",
                   "dedup_key": "gen-shared-%d" % ((i + 3 * j) % 4)}]
        keys = [(self.svc_ev, a["dedup_key"]) for a in alerts]

        def check(st, b, alerts=alerts):
            if st != 202 or not isinstance(b, dict) or b.get("status") != "success" \
                    or b.get("alerts") != 2 or len(b.get("results") or []) != 2:
                return "generic: %s %r" % (st, b)
            if [r.get("dedup_key") for r in b["results"]] != [a["dedup_key"] for a in alerts]:
                return "generic results: %r" % (b,)
            return None
        return ("generic", "POST", "/v1/alerts", {"alerts": alerts}, self.keys["gen"], keys, check)


class IngestQueue(KlaxonTestCase):
    config = CONFIG

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.k = {}
        for svc in ("load-a", "load-b", "mixed-a", "mixed-b", "lat-a"):
            cls.k[svc] = {src: cls.integration(cls.d, svc, src)
                          for src in ("alertmanager", "events-v2", "generic")}

    @staticmethod
    def integration(d, service, source):
        st, _, body = d.http("POST", "/v1/integrations", {"service": service, "source": source})
        assert st == 201, (st, body)
        return body

    def keys_for(self, svc_am, svc_ev):
        return {"am": self.k[svc_am]["alertmanager"]["key"],
                "ev": self.k[svc_ev]["events-v2"]["key"],
                "gen": self.k[svc_ev]["generic"]["key"]}

    # -- reading back --------------------------------------------------------

    def all_alerts(self, d, service, page=200):
        """Every alert of a service through GET /v1/alerts, paged with
        before= (newest first)."""
        out, before = [], None
        for _ in range(MAX_PAGES):
            q = "/v1/alerts?service=%s&status=all&limit=%d" % (service, page)
            if before is not None:
                q += "&before=%d" % before
            st, _, js = d.http("GET", q)
            self.assertEqual(st, 200, js)
            got = js["alerts"]
            ids = [a["id"] for a in got]
            self.assertEqual(ids, sorted(ids, reverse=True), "newest first")
            if before is not None:
                self.assertTrue(all(x < before for x in ids), "before= pages to older ones")
            out += got
            if len(got) < page:
                return out
            before = ids[-1]
        self.fail("more than %d pages of alerts for %s" % (MAX_PAGES, service))

    @staticmethod
    def key_of(a):
        lab = a["labels"]
        if lab.get("alertname") == "V2Uniq":
            return (a["service"], "v2", "V2Uniq", lab.get("t"), lab.get("r"))
        if lab.get("alertname") == "V2Shared":
            return (a["service"], "v2", "V2Shared", lab.get("k"))
        return (a["service"], a["dedup_key"])

    def assertStored(self, d, services, expected):
        """The stored alerts of services are exactly expected: one alert per
        key, firing, with count = the events that folded into it."""
        stored = []
        for s in services:
            stored += self.all_alerts(d, s)
        ids = [a["id"] for a in stored]
        self.assertEqual(len(ids), len(set(ids)), "paging shows an alert twice")
        by_key = collections.defaultdict(list)
        for a in stored:
            by_key[self.key_of(a)].append(a)
        problems = []
        doubled = {k: [a["id"] for a in v] for k, v in by_key.items() if len(v) > 1}
        if doubled:
            problems.append("%d alerts stored more than once, e.g. %r"
                            % (len(doubled), list(doubled.items())[:5]))
        lost = sorted(set(expected) - set(by_key))
        if lost:
            problems.append("%d alerts answered 2xx but lost, e.g. %r" % (len(lost), lost[:5]))
        extra = sorted(set(by_key) - set(expected))
        if extra:
            problems.append("%d unexpected alerts, e.g. %r" % (len(extra), extra[:5]))
        wrong = [(k, by_key[k][0]["count"], n) for k, n in expected.items()
                 if k in by_key and by_key[k][0]["count"] != n]
        if wrong:
            problems.append("%d wrong fold counts (key, stored, sent), e.g. %r"
                            % (len(wrong), wrong[:5]))
        if problems:
            self.fail("\n".join(problems))
        self.assertEqual({a["status"] for a in stored}, {"firing"})
        return by_key

    # -- the load ------------------------------------------------------------

    def run_load(self, d, wl, threads, per, bad=None, stop=None, progress=None):
        """Runs `threads` keep-alive senders of `per` requests each (fewer
        when the event stop is set). A request is good (Workload.request,
        kind (i + j) % 4) or, when bad(i, j) returns one, bad. progress, a
        list, gets one element per answer. Returns (good answers, bad
        answers): lists of (name, status, body, problem); and how many TCP
        connections the senders opened in all."""
        def sender(i):
            s = Sender(d.port)
            good, bads = [], []
            try:
                for j in range(per):
                    if stop is not None and stop.is_set():
                        break
                    b = bad(i, j) if bad else None
                    if b is not None:
                        name, method, path, body, raw, key, check = b
                        st, js = s.send(method, path, body=body, raw=raw, key=key)
                        bads.append((name, st, js, check(st, js)))
                        continue
                    name, method, path, body, key, keys, check = wl.request(i, j, (i + j) % 4)
                    st, js = s.send(method, path, body=body, key=key)
                    if progress is not None:
                        progress.append(1)
                    problem = check(st, js)
                    if problem is None:
                        for k in keys:
                            wl.expect(k)
                    good.append((name, st, js, problem))
            finally:
                s.close()
            return good, bads, s.connects

        results = run_threads(self, threads, sender)
        good = [r for g, _, _ in results for r in g]
        bads = [r for _, b, _ in results for r in b]
        return good, bads, sum(c for _, _, c in results)

    def assertAnswers(self, answers, what):
        problems = [p for _, _, _, p in answers if p]
        if problems:
            self.fail("%d of %d %s answers wrong, e.g.:\n%s"
                      % (len(problems), len(answers), what, "\n".join(problems[:5])))

    @staticmethod
    def incidents_in(answers, names):
        """The incidents named in the results of the answers of the named
        kinds, and how many results said they declared theirs."""
        incidents, declared = set(), 0
        for name, _, body, _ in answers:
            if name in names and isinstance(body, dict):
                for r in body.get("results", []):
                    if r.get("incident"):
                        incidents.add(r["incident"])
                    declared += bool(r.get("declared"))
        return incidents, declared

    # -- 1. many concurrent senders ------------------------------------------

    def test_1_concurrent_senders_lose_nothing_and_double_nothing(self):
        wl = Workload("load-a", "load-b", self.keys_for("load-a", "load-b"), tag=1)
        t0 = time.monotonic()
        good, _, connects = self.run_load(self.d, wl, threads=16, per=60)
        took = time.monotonic() - t0
        self.assertEqual(len(good), 16 * 60)
        self.assertAnswers(good, "ingestion")
        self.assertEqual(connects, 16, "each sender kept its one connection alive")
        print("\n960 ingestion requests from 16 keep-alive senders in %.1f s" % took)
        by_key = self.assertStored(self.d, ("load-a", "load-b"), wl.expected)
        # every answer named the alert that is stored under its key
        for name, _, body, _ in good:
            if name in ("webhook", "generic"):
                svc = "load-a" if name == "webhook" else "load-b"
                for r in body["results"]:
                    self.assertEqual(r["alert"], by_key[(svc, r["dedup_key"])][0]["id"], r)
        # the workload did fold: alerts sent twice in one notification,
        # and alerts that all 16 senders sent
        self.assertIn(2, wl.expected.values())
        self.assertGreater(max(wl.expected.values()), 16)
        # the critical alerts of one service group share one incident,
        # declared once although the requests raced
        for svc, name in (("load-a", "webhook"), ("load-b", "generic")):
            incs = {a["incident"] for k, v in by_key.items() if k[0] == svc
                    for a in v if a["incident"]}
            self.assertEqual(len(incs), 1, (svc, incs))
        incs, declared = self.incidents_in(good, ("webhook",))
        self.assertEqual(len(incs), 1, incs)
        self.assertEqual(declared, 1, "one request declared the incident")
        # the CLI shows the same alerts
        rc, out, err = self.d.cli("--json", "alert", "list", "--service", "load-a",
                                  "--status", "all", "--limit", "1000")
        self.assertEqual(rc, 0, err)
        cli = json.loads(out)["alerts"]
        self.assertEqual(sorted(a["id"] for a in cli),
                         sorted(a["id"] for v in by_key.values() for a in v
                                if a["service"] == "load-a"))
        self.assertEqual({a["id"]: a["count"] for a in cli},
                         {a["id"]: a["count"] for v in by_key.values() for a in v
                          if a["service"] == "load-a"})

    # -- 2. bad requests mixed in ----------------------------------------------

    def test_2_bad_requests_mixed_in_get_their_4xx(self):
        keys = self.keys_for("mixed-a", "mixed-b")
        wl = Workload("mixed-a", "mixed-b", keys, tag=2)
        bad_keys = set()  # dedup keys that must not be stored

        def invalid_event(want_error):
            def check(st, b):
                if st != 400 or not isinstance(b, dict) or b.get("status") != "invalid event" \
                        or b.get("message") != "Event object is invalid" \
                        or not isinstance(b.get("errors"), list) or not b["errors"]:
                    return "events v2 bad: %s %r" % (st, b)
                if want_error not in b["errors"]:
                    return "events v2 bad: %r lacks %r" % (b, want_error)
                return None
            return check

        def klaxon_error(status, code=None):
            def check(st, b):
                if st != status or not isinstance(b, dict) or not isinstance(b.get("error"), dict) \
                        or not b["error"].get("message"):
                    return "want %s: %s %r" % (status, st, b)
                if code and b["error"].get("code") != code:
                    return "want code %s: %r" % (code, b)
                return None
            return check

        def bad(i, j):
            k = (i * 5 + j) % 12
            if k < 4:
                return None  # a good one (kind (i + j) % 4)
            tagk = "bad-%d-%d" % (i, j)
            if k == 4:
                return ("bad-json", "POST", "/v1/alerts/alertmanager", None,
                        '{"version":"4","alerts":[', keys["am"], klaxon_error(400, "invalid_json"))
            if k == 5:
                a = am_alert("WrongKey", fp=fp(2, i, j, 9))
                bad_keys.add(a["fingerprint"])
                return ("wrong-key", "POST", "/v1/alerts/alertmanager", am_payload(a), None,
                        "x" * 32, klaxon_error(401, "unauthorized"))
            if k == 6:
                bad_keys.add(tagk)
                return ("ev2-oversize", "POST", "/v2/enqueue",
                        {"routing_key": keys["ev"], "event_action": "trigger", "dedup_key": tagk,
                         "payload": {"summary": "s" * 1025, "source": "h", "severity": "error"}},
                        None, None,
                        invalid_event("'payload.summary' is too long (1025 > 1024 characters)"))
            if k == 7:
                bad_keys.add(tagk)
                return ("ev2-wrong-key", "POST", "/v2/enqueue",
                        {"routing_key": "y" * 32, "event_action": "trigger", "dedup_key": tagk,
                         "payload": {"summary": "s", "source": "h", "severity": "error"}},
                        None, None, invalid_event("Invalid routing key"))
            if k == 8:
                good_one = am_alert("HalfGood", fp=fp(2, i, j, 8))
                future = dict(am_alert("Future", fp=fp(2, i, j, 7)), startsAt="2099-01-01T00:00:00Z")
                bad_keys.update((good_one["fingerprint"], future["fingerprint"]))
                return ("webhook-one-bad", "POST", "/v1/alerts/alertmanager",
                        am_payload(good_one, future), None, keys["am"], klaxon_error(400))
            if k == 9:
                return ("v2-bad-json", "POST", "/api/v2/alerts", None, "[{", keys["am"],
                        klaxon_error(400))
            if k == 10:
                bad_keys.add(tagk)
                return ("generic-bad", "POST", "/v1/alerts",
                        {"summary": "x", "severity": "loud", "dedup_key": tagk}, None,
                        keys["gen"], klaxon_error(400, "invalid"))
            bad_keys.add(tagk)
            return ("other-source", "POST", "/v1/alerts",
                    {"summary": "x", "dedup_key": tagk}, None, keys["ev"],
                    klaxon_error(403, "forbidden"))

        good, bads, _ = self.run_load(self.d, wl, threads=8, per=48, bad=bad)
        self.assertGreater(len(good), 100)
        self.assertGreater(len(bads), 200)
        self.assertEqual(len({n for n, _, _, _ in bads}), 8, "every kind of bad request was sent")
        self.assertAnswers(bads, "bad-request")
        self.assertAnswers(good, "good concurrent")
        by_key = self.assertStored(self.d, ("mixed-a", "mixed-b"), wl.expected)
        stored = {k[1] for k in by_key if len(k) == 2}
        if stored & bad_keys:
            self.fail("refused requests stored %d alerts, e.g. %r"
                      % (len(stored & bad_keys), sorted(stored & bad_keys)[:5]))

    # -- 3. the key cache ------------------------------------------------------

    def test_3_revoked_key_is_refused_at_once(self):
        d = self.d
        am = self.integration(d, "keys-a", "alertmanager")
        ev = self.integration(d, "keys-a", "events-v2")
        gen = self.integration(d, "keys-a", "generic")
        other = self.integration(d, "keys-a", "alertmanager")
        s = Sender(d.port)
        self.addCleanup(s.close)

        def webhook(key, n):
            return s.send("POST", "/v1/alerts/alertmanager",
                          am_payload(am_alert("Cached", fp=fp(3, 0, n, 0), severity="info")),
                          key=key)

        def event(key, n):
            return s.send("POST", "/v2/enqueue",
                          {"routing_key": key, "event_action": "trigger", "dedup_key": "k-%d" % n,
                           "payload": {"summary": "cached", "source": "h", "severity": "info"}})

        def generic(key, n):
            return s.send("POST", "/v1/alerts?key=" + key,
                          {"summary": "cached", "severity": "info", "dedup_key": "g-%d" % n})

        for n in range(3):  # used, so cached
            self.assertEqual(webhook(am["key"], n)[0], 200)
            self.assertEqual(event(ev["key"], n)[0], 202)
            self.assertEqual(generic(gen["key"], n)[0], 202)
            self.assertEqual(webhook(other["key"], 100 + n)[0], 200)
        for integ in (am, ev, gen):
            st, _, js = d.http("DELETE", "/v1/integrations/" + integ["id"])
            self.assertEqual((st, js), (200, {"id": integ["id"], "revoked": True}))
        st, js = webhook(am["key"], 10)
        self.assertEqual(st, 401, js)
        self.assertEqual(js["error"]["code"], "unauthorized")
        st, js = event(ev["key"], 10)
        self.assertEqual(st, 400, js)
        self.assertEqual(js["status"], "invalid event")
        self.assertEqual(js["errors"], ["Invalid routing key"])
        st, js = generic(gen["key"], 10)
        self.assertEqual(st, 401, js)
        # the key that was not revoked still works, and nothing refused was stored
        self.assertEqual(webhook(other["key"], 110)[0], 200)
        keys = {a["dedup_key"] for a in self.all_alerts(d, "keys-a")}
        self.assertFalse({fp(3, 0, 10, 0), "k-10", "g-10"} & keys)
        self.assertIn(fp(3, 0, 110, 0), keys)

    def test_3b_revoke_during_load_refuses_every_later_request(self):
        d = self.d
        am = self.integration(d, "keys-a", "alertmanager")
        revoked_at = [None]
        stop = threading.Event()
        answers = []  # (sent at, status)

        def hammer(i):
            s = Sender(d.port)
            try:
                for j in range(2000):
                    if stop.is_set():
                        break
                    t = time.monotonic()
                    st, _ = s.send("POST", "/v1/alerts/alertmanager",
                                   am_payload(am_alert("Hammer", fp=fp(4, i, j, 0),
                                                       severity="info")), key=am["key"])
                    answers.append((t, st, fp(4, i, j, 0)))
            finally:
                s.close()

        def revoker(i):
            if i < 4:
                return hammer(i)
            deadline = time.monotonic() + 10
            while sum(1 for _, st, _ in answers if st == 200) < 40 and time.monotonic() < deadline:
                time.sleep(0.01)
            st, _, js = d.http("DELETE", "/v1/integrations/" + am["id"])
            revoked_at[0] = time.monotonic()
            assert st == 200, (st, js)
            time.sleep(0.5)
            stop.set()

        run_threads(self, 5, revoker)
        self.assertIsNotNone(revoked_at[0])
        before = [a for a in answers if a[0] < revoked_at[0]]
        after = [a for a in answers if a[0] > revoked_at[0]]
        self.assertGreater(sum(1 for a in before if a[1] == 200), 10, "the key was used first")
        self.assertGreater(len(after), 4, "requests were sent after the revoke")
        self.assertEqual({st for _, st, _ in after}, {401},
                         "requests sent after the revoke was answered must be refused")
        self.assertTrue({st for _, st, _ in before} <= {200, 401})
        stored = {a["dedup_key"] for a in self.all_alerts(d, "keys-a")}
        self.assertFalse({k for _, _, k in after} & stored, "a refused request stored its alert")
        self.assertTrue({k for _, st, k in answers if st == 200} <= stored)

    @unittest.skipUnless(BACKEND == "postgres", "two daemons on one database need postgres")
    def test_3c_revoke_on_one_daemon_refused_by_the_other(self):
        e = self.new_daemon(extra_args=["--db", self.d.db_url], start=False)
        e.start(read_token=False)
        e.admin_token = self.d.admin_token
        try:
            am = self.integration(self.d, "keys-a", "alertmanager")
            ev = self.integration(self.d, "keys-a", "events-v2")
            sa, sb = Sender(self.d.port), Sender(e.port)
            self.addCleanup(sa.close)
            self.addCleanup(sb.close)

            def webhook(s, n):
                return s.send("POST", "/v1/alerts/alertmanager",
                              am_payload(am_alert("Multi", fp=fp(5, 0, n, 0), severity="info")),
                              key=am["key"])[0]

            def event(s, n):
                return s.send("POST", "/v2/enqueue",
                              {"routing_key": ev["key"], "event_action": "trigger",
                               "dedup_key": "multi-%d" % n,
                               "payload": {"summary": "m", "source": "h", "severity": "info"}})

            for n in range(3):  # cached on both daemons
                self.assertEqual(webhook(sa, n), 200)
                self.assertEqual(webhook(sb, 10 + n), 200)
                self.assertEqual(event(sa, n)[0], 202)
                self.assertEqual(event(sb, 10 + n)[0], 202)
            for integ in (am, ev):
                self.assertEqual(self.d.http("DELETE", "/v1/integrations/" + integ["id"])[0], 200)
            t0 = time.monotonic()
            deadline = t0 + 2.0
            n = 100
            while True:
                n += 1
                st_w = webhook(sb, n)
                st_e, js_e = event(sb, n)
                if (st_w == 401 and st_e == 400) or time.monotonic() > deadline:
                    break
                time.sleep(0.005)
            took = time.monotonic() - t0
            print("\nrevocation reached the other daemon's key cache in %.0f ms" % (took * 1000))
            self.assertEqual(st_w, 401, "daemon B still accepts a key revoked on A after 2 s")
            self.assertEqual((st_e, js_e.get("errors")), (400, ["Invalid routing key"]))
            self.assertEqual(webhook(sa, 500), 401)
        finally:
            e.stop()

    # -- 4. SIGTERM under load ----------------------------------------------------

    def test_4_sigterm_under_load_answers_and_loses_nothing(self):
        d = self.new_daemon()
        am = self.integration(d, "stop-a", "alertmanager")
        ev = self.integration(d, "stop-a", "events-v2")
        signalled = threading.Event()
        lock = threading.Lock()
        answers = []   # (status, [dedup keys], body)
        failures = []  # no answer: (thread, request, exception, signalled)

        def sender(i):
            s = Sender(d.port, timeout=SEND_TIMEOUT)
            try:
                for j in range(5000):
                    if j % 2:
                        dk = ["stop-ev-%d-%d" % (i, j)]
                        args = ("POST", "/v2/enqueue",
                                {"routing_key": ev["key"], "event_action": "trigger",
                                 "dedup_key": dk[0], "payload": {"summary": "stop",
                                                                  "source": "h",
                                                                  "severity": "warning"}}, None)
                    else:
                        alerts = [am_alert("Stop", fp=fp(6, i, j, n), severity="warning")
                                  for n in range(2)]
                        dk = [a["fingerprint"] for a in alerts]
                        args = ("POST", "/v1/alerts/alertmanager", am_payload(*alerts), am["key"])
                    was = signalled.is_set()
                    t = time.monotonic()
                    try:
                        st, js = s.send(args[0], args[1], body=args[2], key=args[3])
                    except (OSError, http.client.HTTPException) as e:
                        with lock:
                            failures.append((i, j, e, was or signalled.is_set(),
                                             time.monotonic() - t))
                        if signalled.is_set():
                            return
                        continue
                    with lock:
                        answers.append((st, dk, js))
            finally:
                s.close()

        threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with lock:
                if sum(1 for a in answers if 200 <= a[0] < 300) >= 150:
                    break
            time.sleep(0.01)
        self.assertGreaterEqual(len(answers), 150, "the load got going")
        t_sig = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        signalled.set()
        try:
            rc = d.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        exit_s = time.monotonic() - t_sig
        for t in threads:
            t.join(max(0.0, t_sig + 25 - time.monotonic()))
        self.assertFalse([t for t in threads if t.is_alive()], "a sender hung")
        d.stop()  # reaps it (SIGKILL if it did not exit)
        with lock:
            answers_, failures_ = list(answers), list(failures)
        print("\nSIGTERM under load: %d answers (%s), %d without an answer, exit %s after %.2f s"
              % (len(answers_), dict(collections.Counter(a[0] for a in answers_)),
                 len(failures_), rc, exit_s))
        problems = []
        early = [f for f in failures_ if not f[3]]
        if early:
            problems.append("requests failed before SIGTERM: %r" % early[:3])
        hung = [f for f in failures_ if isinstance(f[2], socket.timeout) or f[4] >= SEND_TIMEOUT]
        if hung:
            problems.append("connections hung for %.0f s without an answer: %r"
                            % (SEND_TIMEOUT, hung[:3]))
        bad = [(st, js) for st, _, js in answers_ if not (200 <= st < 300 or st == 503)]
        if bad:
            problems.append("answers other than 2xx or 503: %r" % bad[:5])
        if rc is None:
            problems.append("klaxond did not exit within 10 s of SIGTERM")
        elif rc != 0:
            problems.append("klaxond exited with %s%s after SIGTERM under load, not 0 "
                            "(%.2f s after the signal)"
                            % (rc, " (SIGABRT)" if rc == -signal.SIGABRT else "", exit_s))
        # every request answered 2xx is stored
        d.start()
        stored = {a["dedup_key"] for a in self.all_alerts(d, "stop-a", page=1000)}
        acked = [k for st, ks, _ in answers_ if 200 <= st < 300 for k in ks]
        missing = sorted(set(acked) - stored)
        if missing:
            problems.append("%d alerts answered 2xx but not stored after the restart, e.g. %r"
                            % (len(missing), missing[:5]))
        if problems:
            self.fail("\n".join(problems))

    # -- 5. ordinary requests stay fast --------------------------------------------

    def test_5_api_stays_responsive_during_ingestion(self):
        wl = Workload("lat-a", "lat-a", self.keys_for("lat-a", "lat-a"), tag=7)
        stop = threading.Event()
        progress = []   # one element per ingestion answer
        latencies = []  # (seconds, status, ingestion answers so far)
        polls = 30

        def poller():
            deadline = time.monotonic() + 20
            while len(progress) < 50 and time.monotonic() < deadline:
                time.sleep(0.005)  # the load is under way
            try:
                for _ in range(polls):
                    if time.monotonic() > deadline:
                        break
                    t = time.monotonic()
                    try:
                        st, _, js = self.d.http("GET", "/v1/incidents?limit=20", timeout=10)
                    except (OSError, http.client.HTTPException):
                        st = None
                    latencies.append((time.monotonic() - t, st, len(progress)))
                    time.sleep(0.02)
            finally:
                stop.set()

        p = threading.Thread(target=poller, daemon=True)
        p.start()
        try:
            good, _, _ = self.run_load(self.d, wl, threads=12, per=1000, stop=stop,
                                       progress=progress)
        finally:
            stop.set()
            p.join(15)
        self.assertFalse(p.is_alive())
        self.assertAnswers(good, "ingestion")
        self.assertEqual(len(latencies), polls)
        self.assertLess(len(good), 12 * 1000, "the load ran until the polls were done")
        self.assertGreater(latencies[-1][2] - latencies[0][2], 100,
                           "ingestion went on while the API was polled")
        self.assertEqual({st for _, st, _ in latencies}, {200}, latencies[:5])
        worst = max(t for t, _, _ in latencies)
        print("\nGET /v1/incidents during %d ingestion requests: %d polls, worst %.0f ms"
              % (len(good), len(latencies), worst * 1000))
        self.assertLess(worst, 2.0, "GET /v1/incidents took %.2f s during ingestion" % worst)
        self.assertStored(self.d, ("lat-a",), wl.expected)


if __name__ == "__main__":
    main()
