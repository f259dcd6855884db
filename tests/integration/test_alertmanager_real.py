"""The real Prometheus Alertmanager (Debian's prometheus-alertmanager 0.25)
in front of Klaxon, and the real amtool against both.

An Alertmanager on 127.0.0.1 (clustering off, its own storage directory)
has one webhook_configs receiver pointed at this test's klaxond
(/v1/alerts/alertmanager, the integration key as the bearer credential,
send_resolved: true, group_wait and group_interval of 1s). Alerts posted to
Alertmanager's own API (POST /api/v2/alerts, and `amtool alert add`) must
arrive in Klaxon, fold into one Klaxon alert per fingerprint, open or
attach to incidents as the routing rules say, and resolve when
Alertmanager sends the resolve. Then amtool is pointed at Klaxon's own
Alertmanager API v2 (--http.config.file holding the key): `alert add`
creates an alert and `alert query` lists it.

See issue 4, WIRE-FORMATS.md section 1, docs/config.md (Routing) and
docs/api.md (Detection)."""

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import HOST, KlaxonTestCase, free_port, main, rfc3339, utcnow  # noqa: E402

AM_BIN = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
WAIT = 20.0          # seconds: the longest any wait for a delivery may take
AM_START = 20.0      # seconds for Alertmanager to answer /-/ready
FP_RE = re.compile(r"^[0-9a-f]{16}$")

# Neither klaxond, Alertmanager nor amtool may send loopback traffic to a proxy.
for _k in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
    os.environ.pop(_k, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

CONFIG = """
services:
  - name: payments
    labels: {team: payments}
routes:
  - name: database                    # "database unreachable -> P1"
    match: 'alertname=~"Database.*"'
    severity: P1
    types: [OUTAGE]
    labels: {area: db}
    resolve_to_monitoring: true
  - name: per-alertname               # one incident per alertname
    group_by: [service, alertname]
"""

AM_CONFIG = """global:
  resolve_timeout: 5m
route:
  receiver: klaxon
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: klaxon
    webhook_configs:
      - url: '%(url)s/v1/alerts/alertmanager'
        send_resolved: true
        max_alerts: 0
        http_config:
          authorization:
            type: Bearer
            credentials: '%(key)s'
"""


def zulu(dt):
    """RFC 3339 with milliseconds, as amtool and Prometheus write it."""
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Alertmanager:
    """One prometheus-alertmanager process on 127.0.0.1 with its own
    directory (config, storage, log); clustering disabled."""

    def __init__(self, klaxon_url, key):
        self.root = tempfile.mkdtemp(prefix="klaxon-am-")
        self.config_path = os.path.join(self.root, "alertmanager.yml")
        with open(self.config_path, "w") as f:
            f.write(AM_CONFIG % {"url": klaxon_url, "key": key})
        self.log_path = os.path.join(self.root, "alertmanager.log")
        self.proc = None
        self.port = None

    @property
    def url(self):
        return "http://%s:%d" % (HOST, self.port)

    def check_config(self):
        return subprocess.run([AMTOOL, "check-config", self.config_path], capture_output=True,
                              text=True, timeout=30, env=self.env())

    def env(self):
        e = dict(os.environ)
        e["HOME"] = self.root  # no ~/.config/amtool/config.yml of the user's
        return e

    def start(self, attempts=3):
        for attempt in range(attempts):
            self.port = free_port()
            log = open(self.log_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    [AM_BIN, "--config.file=" + self.config_path,
                     "--storage.path=" + os.path.join(self.root, "data"),
                     "--web.listen-address=%s:%d" % (HOST, self.port),
                     "--cluster.listen-address=", "--log.level=debug"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root,
                    env=self.env())
            finally:
                log.close()
            deadline = time.monotonic() + AM_START
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                        if r.status == 200:
                            return self
                except (OSError, urllib.error.URLError):
                    pass
                time.sleep(0.1)
            self.stop()
            if attempt == attempts - 1:
                raise RuntimeError("Alertmanager did not start:\n" + self.log_tail())
        return self

    def request(self, method, path, body=None, timeout=10):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                text = r.read().decode()
                return r.status, json.loads(text) if text.strip() else None
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def post_alerts(self, alerts):
        st, body = self.request("POST", "/api/v2/alerts", alerts)
        if st != 200:
            raise AssertionError("Alertmanager POST /api/v2/alerts -> %s %r" % (st, body))

    def alerts(self):
        st, body = self.request("GET", "/api/v2/alerts")
        if st != 200:
            raise AssertionError("Alertmanager GET /api/v2/alerts -> %s %r" % (st, body))
        return body

    def amtool(self, *args, url=None, timeout=30):
        return subprocess.run([AMTOOL, "--alertmanager.url=" + (url or self.url)] + list(args),
                              capture_output=True, text=True, timeout=timeout, env=self.env())

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
            self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, limit=12000):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"
        return text[-limit:]


def am_alert(name, start, end=None, summary=None, **labels):
    """An alert for Alertmanager's POST /api/v2/alerts."""
    a = {"labels": dict(labels, alertname=name), "startsAt": zulu(start),
         "generatorURL": "http://prometheus.example/graph"}
    if summary:
        a["annotations"] = {"summary": summary}
    if end is not None:
        a["endsAt"] = zulu(end)
    return a


@unittest.skipUnless(os.access(AM_BIN, os.X_OK) and os.access(AMTOOL, os.X_OK),
                     "the real Alertmanager is not installed (%s, %s: Debian package "
                     "prometheus-alertmanager, installed by scripts/setup)" % (AM_BIN, AMTOOL))
class RealAlertmanager(KlaxonTestCase):
    config = CONFIG

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        st, _, body = cls.d.http("POST", "/v1/integrations",
                                 {"service": "payments", "source": "alertmanager"})
        assert st == 201, (st, body)
        cls.key = body["key"]

    def setUp(self):
        super().setUp()
        self.am = Alertmanager(self.d.url, self.key)
        r = self.am.check_config()
        self.assertEqual(r.returncode, 0, "amtool check-config:\n" + r.stdout + r.stderr)
        self.am.start()

    def tearDown(self):
        if self.am is not None:
            self.am.stop()  # the directory goes in run(), after any log is printed
        super().tearDown()

    def run(self, result=None):
        if result is None:
            return super().run(result)
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        am = getattr(self, "am", None)
        if am is not None:
            if len(result.failures) + len(result.errors) > before:
                sys.stderr.write("\n----- alertmanager log (%s) -----\n%s\n----- end of log -----\n"
                                 % (self.id(), am.log_tail()))
            am.cleanup()
        return out

    # -- helpers ---------------------------------------------------------------

    def klaxon_alerts(self, alertname, status="all"):
        st, _, body = self.d.http("GET", "/v1/alerts?service=payments&status=%s&limit=1000"
                                  % status)
        self.assertEqual(st, 200, body)
        return [a for a in body["alerts"] if a["labels"].get("alertname") == alertname]

    def wait_for(self, what, fn, timeout=WAIT):
        """Polls fn() until it returns something true; fails naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            got = fn()
            if got:
                return got
            if time.monotonic() > deadline:
                self.fail("within %.0fs: %s (last: %r)" % (timeout, what, got))
            time.sleep(0.1)

    def wait_alerts(self, alertname, n, status="firing", timeout=WAIT):
        return self.wait_for("%d %s Klaxon alert(s) %s" % (n, status, alertname),
                             lambda: (lambda l: l if len(l) >= n else None)(
                                 self.klaxon_alerts(alertname, status)), timeout)

    def am_fingerprints(self, alertname):
        return {a["labels"]["instance"]: a["fingerprint"] for a in self.am.alerts()
                if a["labels"].get("alertname") == alertname}

    def timeline_texts(self, incident):
        return [e["text"] for e in self.d.timeline(incident)]

    # -- through Alertmanager ------------------------------------------------------

    def test_alerts_arrive_fold_and_resolve(self):
        start = utcnow()
        a1 = am_alert("DiskFullAM", start, summary="Disk 99% full on db1", instance="db1",
                      severity="critical")
        self.am.post_alerts([a1])
        got = self.wait_alerts("DiskFullAM", 1)
        self.assertEqual(len(got), 1, got)
        k1 = got[0]
        fps = self.am_fingerprints("DiskFullAM")
        self.assertRegex(fps["db1"], FP_RE)
        self.assertEqual(k1["dedup_key"], fps["db1"], "the key is Alertmanager's fingerprint")
        self.assertEqual(k1["source"], "alertmanager")
        self.assertEqual(k1["status"], "firing")
        self.assertEqual(k1["summary"], "Disk 99% full on db1")
        self.assertEqual(k1["labels"], {"alertname": "DiskFullAM", "instance": "db1",
                                        "severity": "critical"})
        self.assertEqual(k1["level"], "critical")
        self.assertEqual(k1["severity"], "P1")
        self.assertEqual(k1["route"], "per-alertname")
        self.assertEqual(k1["details"]["annotations"], {"summary": "Disk 99% full on db1"})
        inc = k1["incident"]
        self.assertTrue(inc, "a critical alert opens an incident (P1 >= open_at P2)")
        i = self.d.get(inc)
        self.assertEqual(i["severity"], "P1")
        self.assertEqual(i["status"], "investigating")
        self.assertEqual(i["labels"]["service"], "payments")
        self.assertEqual(i["labels"]["team"], "payments")

        # the same alert posted again: Alertmanager merges it, and whatever
        # it sends, Klaxon still has one alert for that fingerprint
        self.am.post_alerts([a1])
        time.sleep(2.5)  # past group_interval: a re-send would have come
        same = self.klaxon_alerts("DiskFullAM")
        self.assertEqual(len(same), 1, same)
        self.assertEqual(same[0]["id"], k1["id"])
        self.assertGreaterEqual(same[0]["count"], 1)

        # a second alert in the group: Alertmanager sends the whole group
        # again, db1 included (folded: its count grows), and db2 attaches
        # to the same incident
        a2 = am_alert("DiskFullAM", start, summary="Disk 97% full on db2", instance="db2",
                      severity="critical")
        self.am.post_alerts([a2])
        both = self.wait_alerts("DiskFullAM", 2)
        self.assertEqual(len(both), 2, both)
        by_inst = {a["labels"]["instance"]: a for a in both}
        self.assertEqual(by_inst["db1"]["id"], k1["id"], "db1 folded, not a second alert")
        self.assertGreaterEqual(by_inst["db1"]["count"], 2,
                                "the group's second notification carried db1 again")
        self.assertEqual(by_inst["db2"]["count"], 1)
        self.assertEqual(by_inst["db2"]["dedup_key"], self.am_fingerprints("DiskFullAM")["db2"])
        self.assertEqual(by_inst["db2"]["incident"], inc, "same group: the same incident")
        self.assertEqual(len(self.klaxon_alerts("DiskFullAM", "all")), 2)
        attached = [t for t in self.timeline_texts(inc) if t.startswith("Alert attached")]
        self.assertEqual(len(attached), 2, attached)

        # resolve db1: Klaxon's alert resolves, the incident still has db2
        now = utcnow()
        self.am.post_alerts([am_alert("DiskFullAM", start, end=now, summary="Disk 99% full on db1",
                                      instance="db1", severity="critical")])
        self.wait_for("db1 resolved in Klaxon",
                      lambda: self.d.http("GET", "/v1/alerts/%d" % k1["id"])[2]["status"]
                      == "resolved")
        self.assertFalse(any("All alerts" in t for t in self.timeline_texts(inc)),
                         "db2 is still firing")
        self.assertEqual(self.d.http("GET", "/v1/alerts/%d" % by_inst["db2"]["id"])[2]["status"],
                         "firing")
        # resolve db2: the last one, and the timeline says so
        self.am.post_alerts([am_alert("DiskFullAM", start, end=utcnow(),
                                      summary="Disk 97% full on db2", instance="db2",
                                      severity="critical")])
        self.wait_alerts("DiskFullAM", 2, status="resolved")
        self.assertEqual(self.klaxon_alerts("DiskFullAM", "firing"), [])
        r1 = self.d.http("GET", "/v1/alerts/%d" % k1["id"])[2]
        self.assertRecent(r1["resolved_at"], msg="resolved_at")
        texts = self.wait_for("the timeline says all alerts resolved",
                              lambda: (lambda t: t if any(
                                  "All alerts of this incident have resolved" in x for x in t)
                                  else None)(self.timeline_texts(inc)))
        self.assertEqual(sum("All alerts of this incident have resolved" in t for t in texts), 1,
                         texts)
        self.assertEqual(self.d.get(inc)["status"], "investigating",
                         "the per-alertname route has no resolve_to_monitoring")
        self.assertEqual(len(self.klaxon_alerts("DiskFullAM", "all")), 2,
                         "resolves fold into the alerts they resolve")

    def test_routing_rules_and_amtool_add(self):
        start = utcnow()
        # amtool against Alertmanager: "database unreachable -> P1" whatever
        # the level, and resolve_to_monitoring
        r = self.am.amtool("alert", "add", "DatabaseDownAM", "instance=pg-1", "severity=warning",
                           "--annotation=summary=payments-db unreachable",
                           "--generator-url=http://prometheus.example/graph",
                           "--start=" + rfc3339(start))
        self.assertEqual(r.returncode, 0, "amtool alert add:\n" + r.stdout + r.stderr)
        # a warning with no route of its own: P3, below open_at, no incident
        self.am.post_alerts([am_alert("LatencyWarnAM", start, summary="p99 at 2s",
                                      instance="api-1", severity="warning")])

        db = self.wait_alerts("DatabaseDownAM", 1)[0]
        self.assertEqual(db["summary"], "payments-db unreachable")
        self.assertEqual(db["level"], "warning")
        self.assertEqual(db["severity"], "P1", "the rule's severity, whatever the level")
        self.assertEqual(db["route"], "database")
        self.assertEqual(db["details"].get("generatorURL"), "http://prometheus.example/graph")
        inc = self.d.get(db["incident"])
        self.assertEqual(inc["severity"], "P1")
        self.assertEqual(inc["types"], ["OUTAGE"])
        self.assertEqual(inc["labels"]["area"], "db")
        self.assertEqual(inc["labels"]["service"], "payments")

        warn = self.wait_alerts("LatencyWarnAM", 1)[0]
        self.assertEqual(warn["severity"], "P3")
        self.assertEqual(warn["route"], "per-alertname")
        self.assertIsNone(warn["incident"], "P3 is below open_at: it stays an alert")

        # resolve both with amtool (--end in the past): the database one
        # moves its incident to monitoring
        end = "--end=" + rfc3339(utcnow() - datetime.timedelta(seconds=1))
        r = self.am.amtool("alert", "add", "DatabaseDownAM", "instance=pg-1", "severity=warning",
                           "--annotation=summary=payments-db unreachable",
                           "--start=" + rfc3339(start), end)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.am.amtool("alert", "add", "LatencyWarnAM", "instance=api-1", "severity=warning",
                           "--start=" + rfc3339(start), end)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_alerts("DatabaseDownAM", 1, status="resolved")
        self.wait_alerts("LatencyWarnAM", 1, status="resolved")
        self.wait_for("the database incident in monitoring",
                      lambda: self.d.get(inc["id"])["status"] == "monitoring")
        texts = self.timeline_texts(inc["id"])
        self.assertTrue(any("All alerts of this incident have resolved; moving it to monitoring"
                            in t for t in texts), texts)
        self.assertEqual(len(self.klaxon_alerts("DatabaseDownAM", "all")), 1)

    # -- amtool against Klaxon's Alertmanager API v2 -------------------------------

    def test_amtool_against_klaxon(self):
        cfg = os.path.join(self.am.root, "klaxon-http.yml")
        with open(cfg, "w") as f:
            f.write("authorization:\n  credentials: '%s'\n" % self.key)
        flags = ["--http.config.file=" + cfg]

        r = self.am.amtool(*flags, "alert", "add", "AmtoolDirect", "instance=i1",
                           "severity=critical", "--annotation=summary=straight from amtool",
                           url=self.d.url)
        self.assertEqual(r.returncode, 0,
                         "amtool alert add against Klaxon:\n" + r.stdout + r.stderr)
        got = self.klaxon_alerts("AmtoolDirect", "firing")
        self.assertEqual(len(got), 1, "committed before the 200: %r" % got)
        a = got[0]
        self.assertEqual(a["source"], "alertmanager")
        self.assertEqual(a["summary"], "straight from amtool")
        self.assertEqual(a["severity"], "P1")
        self.assertTrue(a["incident"], "critical opens an incident")
        self.assertRegex(a["dedup_key"], FP_RE)

        # again: folded
        r = self.am.amtool(*flags, "alert", "add", "AmtoolDirect", "instance=i1",
                           "severity=critical", "--annotation=summary=straight from amtool",
                           url=self.d.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = self.klaxon_alerts("AmtoolDirect", "all")
        self.assertEqual([(x["id"], x["count"]) for x in got], [(a["id"], 2)])

        # amtool alert query lists it (JSON, and the default table)
        r = self.am.amtool(*flags, "-o", "json", "alert", "query", url=self.d.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        listed = [x for x in json.loads(r.stdout) if x["labels"].get("alertname") == "AmtoolDirect"]
        self.assertEqual(len(listed), 1, r.stdout)
        self.assertEqual(listed[0]["labels"], {"alertname": "AmtoolDirect", "instance": "i1",
                                               "severity": "critical"})
        self.assertEqual(listed[0]["fingerprint"], a["dedup_key"])
        self.assertEqual(listed[0]["status"]["state"], "active")
        self.assertEqual(listed[0]["annotations"], {"summary": "straight from amtool"})
        r = self.am.amtool(*flags, "alert", "query", "alertname=AmtoolDirect", url=self.d.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("AmtoolDirect", r.stdout)
        self.assertIn("straight from amtool", r.stdout)

        # without the key: refused, and amtool says it failed
        r = self.am.amtool("alert", "add", "AmtoolNoKey", "severity=critical", url=self.d.url)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(self.klaxon_alerts("AmtoolNoKey", "all"), [])

        # resolved with an --end in the past
        end = rfc3339(utcnow() - datetime.timedelta(seconds=1))
        r = self.am.amtool(*flags, "alert", "add", "AmtoolDirect", "instance=i1",
                           "severity=critical", "--end=" + end, url=self.d.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        got = self.klaxon_alerts("AmtoolDirect", "all")
        self.assertEqual([(x["id"], x["status"]) for x in got], [(a["id"], "resolved")])
        r = self.am.amtool(*flags, "-o", "json", "alert", "query", url=self.d.url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual([x for x in json.loads(r.stdout)
                          if x["labels"].get("alertname") == "AmtoolDirect"], [])
        texts = self.timeline_texts(a["incident"])
        self.assertTrue(any("All alerts of this incident have resolved" in t for t in texts), texts)


if __name__ == "__main__":
    main()
