#!/usr/bin/env python3
"""Detection benchmarks: alert ingestion throughput against Prometheus
Alertmanager 0.25 in the same run, and the latency from an alert's arrival
to its incident's notification at a local webhook sink.

1. ingest: wrk (bench/detect.lua) POSTs alerts to
   - Klaxon's Alertmanager webhook endpoint /v1/alerts/alertmanager
     (payload version 4, one alert group per request, 10 and 100 alerts),
   - Klaxon's PagerDuty Events v2 /v2/enqueue (one event per request; every
     dedup_key new, and every dedup_key a repeat),
   - Klaxon's Alertmanager API v2 /api/v2/alerts (1, 10, 100 alerts), and
   - the same alerts to Alertmanager's own /api/v2/alerts,
   every server fresh for each load, the same wrk flags for all. Half the
   alerts of the batched loads are repeats of alerts already there (fold),
   half new. Klaxon routes them with `action: none`, so this measures
   ingestion, not incident creation. Klaxon answers after a durable commit
   (SQLite WAL, the log fdatasync'd before any answer, many requests
   sharing one transaction and one fsync; PostgreSQL fsync=on);
   Alertmanager holds alerts in memory and snapshots them every 15 minutes.
2. latency: one alert per request at a fixed rate through the webhook
   endpoint, each a new alertname, so each opens an incident; the
   incident.declared notification goes to a webhook channel pointing at a
   sink (a separate process) that timestamps its arrival.

Every figure is the median of RUNS runs. Usage:
    bench/bench_detect.py BUILD_DIR [all|ingest|latency] [options]
Everything talks to 127.0.0.1 only; every loop is bounded in time.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Daemon, PgServer, free_port, med, rss_kib  # noqa: E402

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

INGEST_CONFIG = """\
services:
  - name: payments
routes:
  - name: bench
    match: ''
    action: none
"""

LATENCY_CONFIG = """\
services:
  - name: payments
channels:
  - name: sink
    type: webhook
    url: http://127.0.0.1:{port}/
    events: [incident.declared]
routes:
  - name: each-ev2
    match: 'source="events-v2"'
    severity: P1
    group_by: [summary]
  - name: each
    match: ''
    severity: P1
    group_by: [alertname]
"""

AM_CONFIG = """\
route:
  receiver: 'null'
  group_by: ['alertname']
  group_wait: 1h
  group_interval: 1h
  repeat_interval: 24h
receivers:
  - name: 'null'
"""

# (name, server, kind, path, batch, repeat percent), in table order
LOADS = [
    ("klaxon-webhook-10", "klaxon", "webhook", "/v1/alerts/alertmanager", 10, 50),
    ("klaxon-webhook-100", "klaxon", "webhook", "/v1/alerts/alertmanager", 100, 50),
    ("klaxon-ev2-new", "klaxon", "ev2", "/v2/enqueue", 1, 0),
    ("klaxon-ev2-repeat", "klaxon", "ev2", "/v2/enqueue", 1, 100),
    ("klaxon-v2-1", "klaxon", "v2", "/api/v2/alerts", 1, 50),
    ("klaxon-v2-10", "klaxon", "v2", "/api/v2/alerts", 10, 50),
    ("klaxon-v2-100", "klaxon", "v2", "/api/v2/alerts", 100, 50),
    ("am-v2-1", "alertmanager", "v2", "/api/v2/alerts", 1, 50),
    ("am-v2-10", "alertmanager", "v2", "/api/v2/alerts", 10, 50),
    ("am-v2-100", "alertmanager", "v2", "/api/v2/alerts", 100, 50),
]
# the order they run in: each Klaxon load next to the Alertmanager load it
# is compared with (the machine's noise drifts), reversed every other run
RUN_ORDER = ["klaxon-v2-1", "am-v2-1", "klaxon-ev2-new", "klaxon-ev2-repeat", "klaxon-v2-10",
             "am-v2-10", "klaxon-webhook-10", "klaxon-v2-100", "am-v2-100", "klaxon-webhook-100"]


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def mem_gib():
    return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# ---- servers ------------------------------------------------------------------------

class Klaxon:
    """klaxond with a config file, an Alertmanager and an Events v2
    integration key on service payments."""

    def __init__(self, klaxond, config_text, db=None):
        self.tmp = tempfile.mkdtemp(prefix="kxbench-detect-")
        cfg = os.path.join(self.tmp, "klaxon.yaml")
        with open(cfg, "w") as f:
            f.write(config_text)
        extra = ["--config", cfg] + (["--db", db] if db else [])
        self.d = Daemon(klaxond, os.path.join(self.tmp, "data"), extra)
        self.port, self.pid, self.db = self.d.port, self.d.proc.pid, db
        self.am_key = self.d.post("/v1/integrations",
                                  {"service": "payments", "source": "alertmanager"})["key"]
        self.ev2_key = self.d.post("/v1/integrations",
                                   {"service": "payments", "source": "events-v2"})["key"]

    def counts(self):
        """(distinct alerts, sum of their counts) in the store; SQLite only,
        read after stop()."""
        if self.db:
            r = subprocess.run(["psql", self.db, "-Atc", "SELECT count(*), sum(count) FROM alerts"],
                               capture_output=True, text=True, timeout=60)
            a, b = r.stdout.strip().split("|")
            return int(a), int(b or 0)
        c = sqlite3.connect(f"file:{self.tmp}/data/klaxon.db?mode=ro", uri=True)
        try:
            a, b = c.execute("SELECT count(*), sum(count) FROM alerts").fetchone()
            return a, b or 0
        finally:
            c.close()

    def stop(self):
        self.d.stop()

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class Alertmanager:
    """Debian's prometheus-alertmanager on 127.0.0.1, clustering off, a null
    receiver, a temporary --storage.path."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="kxbench-am-")
        cfg = os.path.join(self.tmp, "alertmanager.yml")
        with open(cfg, "w") as f:
            f.write(AM_CONFIG)
        self.port = free_port()
        self.log = open(os.path.join(self.tmp, "log"), "w")
        self.proc = subprocess.Popen(
            [ALERTMANAGER, f"--config.file={cfg}", f"--storage.path={self.tmp}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             "--log.level=warn"], stdout=self.log, stderr=self.log)
        self.pid = self.proc.pid
        deadline = time.time() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("alertmanager did not start: " + open(self.log.name).read())
            time.sleep(0.02)

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for m in re.finditer(r'^(alertmanager_alerts(?:_received_total)?)\{([^}]*)\} (\S+)$', text,
                             re.M):
            out[m.group(1) + "{" + m.group(2) + "}"] = float(m.group(3))
        held = sum(v for k, v in out.items() if k.startswith("alertmanager_alerts{"))
        received = sum(v for k, v in out.items() if k.startswith("alertmanager_alerts_received"))
        return int(held), int(received)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- load ---------------------------------------------------------------------------

class SyncCounter:
    """fsync + fdatasync calls of one process while it runs (perf stat on
    the syscall tracepoints); None when perf cannot do it."""

    def __init__(self, pid, seconds):
        self.p = None
        if not shutil.which("perf"):
            return
        try:
            self.p = subprocess.Popen(
                ["perf", "stat", "-x,", "-e", "syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync",
                 "-p", str(pid), "--", "sleep", str(seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        except OSError:
            self.p = None

    def result(self):
        if not self.p:
            return None
        try:
            _, err = self.p.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.p.kill()
            return None
        n, seen = 0, False
        for line in err.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[2].startswith("syscalls:") and f[0].strip().isdigit():
                n += int(f[0])
                seen = True
        return n if seen else None


def cpu_s(pid):
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """{tid: CPU seconds} of every thread of the process."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[t] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return out


def wrk(port, kind, path, batch, repeat, key, conns, threads, duration):
    now = datetime.now(timezone.utc)
    env = dict(os.environ, KX_DETECT_KIND=kind, KX_DETECT_BATCH=str(batch),
               KX_DETECT_REPEAT=str(repeat), KX_DETECT_KEY=key or "", KX_DETECT_PATH=path,
               KX_DETECT_STARTS=rfc3339(now), KX_DETECT_ENDS=rfc3339(now + timedelta(hours=2)),
               KX_BENCH_RUN=f"{os.getpid()}{int(time.time()) % 100000}")
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "10s",
                          "-s", os.path.join(HERE, "detect.lua"), f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, env=env, timeout=duration + 60)
    m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
                  r"errors=(\d+) non2xx=(\d+)", out.stdout)
    if not m:
        raise RuntimeError("wrk printed no result:\n" + out.stdout + out.stderr)
    req, dur, p50, p99, err, non2xx = (int(x) for x in m.groups())
    secs = dur / 1e6
    ok = req - non2xx
    return {"requests": req, "ok_requests": ok, "seconds": secs, "rps": ok / secs,
            "alerts_per_s": ok * batch / secs, "p50_ms": p50 / 1000, "p99_ms": p99 / 1000,
            "errors": err + non2xx, "alerts_sent_ok": ok * batch}


def one_load(a, load, backend, pg):
    name, server, kind, path, batch, repeat = load
    klaxond = os.path.join(a.build, "klaxond")
    if server == "klaxon":
        s = Klaxon(klaxond, INGEST_CONFIG, pg.new_db() if backend == "postgres" else None)
        key = s.ev2_key if kind == "ev2" else s.am_key
    else:
        s = Alertmanager()
        key = None
    try:
        time.sleep(0.2)
        sync = SyncCounter(s.pid, a.duration)
        prof = None
        if a.perf and server == "klaxon":
            os.makedirs(a.perf, exist_ok=True)
            prof = subprocess.Popen(["perf", "record", "--call-graph=dwarf,32768", "-F", "999", "-o", os.path.join(a.perf, name + ".data"),
                                     "-p", str(s.pid), "--", "sleep", str(a.duration)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0, th0 = cpu_s(s.pid), thread_cpu(s.pid)
        r = wrk(s.port, kind, path, batch, repeat, key, a.conns, a.threads, a.duration)
        r["cpu_cores"] = (cpu_s(s.pid) - cpu0) / r["seconds"]
        th1 = thread_cpu(s.pid)
        r["busiest_thread"] = max((th1[t] - th0.get(t, 0) for t in th1), default=0) / r["seconds"]
        syncs = sync.result()
        if prof:
            prof.wait(60)
        r["syncs_per_s"] = None if syncs is None else syncs / r["seconds"]
        if server == "klaxon" and backend == "postgres":
            r["syncs_per_s"] = None  # the fsyncs are PostgreSQL's, in other processes
        r["rss_mib"] = rss_kib(s.pid) / 1024
        if server == "alertmanager":
            r["held"], r["stored_count"] = s.metrics()
            s.stop()
        else:
            s.stop()
            r["held"], r["stored_count"] = s.counts()
    finally:
        try:
            s.stop()
        except Exception:
            pass
        s.cleanup()
    return r


def bench_ingest(a, pg):
    backends = a.backends.split(",")
    by_name = {ld[0]: ld for ld in LOADS}
    plan = []
    only = set(a.loads.split(",")) if a.loads else None
    for name in RUN_ORDER:
        ld = by_name[name]
        if only is not None and name not in only:
            continue
        if ld[1] != "klaxon":
            plan.append((ld, None))
            continue
        plan += [(ld, b) for b in backends]
    res = {}
    for run in range(a.runs):
        for ld, b in (plan if run % 2 == 0 else plan[::-1]):
            key = ld[0] if ld[1] != "klaxon" else f"{ld[0]}@{b}"
            r = one_load(a, ld, b, pg)
            res.setdefault(key, []).append(r)
            print(f"ingest run {run + 1} {key}: {r['alerts_per_s']:.0f} alerts/s, {r['rps']:.0f} req/s, "
                  f"p99 {r['p99_ms']:.1f} ms, errors {r['errors']}, syncs/s {r['syncs_per_s']}, "
                  f"held {r['held']}, server CPU {r['cpu_cores']:.2f} cores "
                  f"(busiest thread {r['busiest_thread']:.2f})", file=sys.stderr)
    return res


def ingest_report(a, res):
    def m(key, field):
        vals = [r[field] for r in res.get(key, []) if r[field] is not None]
        return med(vals) if vals else None

    def runs(key, field="alerts_per_s"):
        return ", ".join(f"{r[field]:.0f}" for r in res.get(key, []))

    def fmt(v, f="{:.0f}"):
        return "—" if v is None else f.format(v)

    lines = [f"**Alert ingestion** (wrk -t{a.threads} -c{a.conns}, {a.duration} s per load, a fresh "
             f"server for each load, `bench/detect.lua`; the batched loads are half repeats "
             f"(fold into an alert already there) and half new alerts, spread evenly; Klaxon "
             f"commits every request durably before answering — "
             + " / ".join(d for b, d in (("sqlite", "SQLite WAL, the log fdatasync'd before "
                                          "any answer, requests sharing transactions and fsyncs"), ("postgres", "PostgreSQL fsync=on"))
                          if b in a.backends.split(","))
             + f" — while Alertmanager keeps alerts in memory, snapshot to disk every 15 min; "
             f"fsync/s: fsync + fdatasync calls of the server process, from `perf stat`):", "",
             "| load | alerts/s (median) | requests/s (each answered once durable) | fsync/s | "
             "per request p50 / p99 | runs (alerts/s) | errors | distinct alerts after (alerts taken) | "
             "RSS after |", "|---|---|---|---|---|---|---|---|---|"]
    labels = {
        "klaxon-webhook-10": "Klaxon webhook (v4), 10 alerts per group, 50% repeats",
        "klaxon-webhook-100": "Klaxon webhook (v4), 100 alerts per group, 50% repeats",
        "klaxon-ev2-new": "Klaxon Events v2, 1 event per request, every dedup_key new",
        "klaxon-ev2-repeat": "Klaxon Events v2, 1 event per request, every dedup_key a repeat",
        "klaxon-v2-1": "Klaxon API v2, 1 alert per request, 50% repeats",
        "klaxon-v2-10": "Klaxon API v2, 10 alerts per request, 50% repeats",
        "klaxon-v2-100": "Klaxon API v2, 100 alerts per request, 50% repeats",
        "am-v2-1": "**Alertmanager** API v2, 1 alert per request, 50% repeats",
        "am-v2-10": "**Alertmanager** API v2, 10 alerts per request, 50% repeats",
        "am-v2-100": "**Alertmanager** API v2, 100 alerts per request, 50% repeats",
    }
    keys = [k for k in res]
    order = sorted(keys, key=lambda k: ([ld[0] for ld in LOADS].index(k.split("@")[0]),
                                        k.endswith("@postgres")))
    for k in order:
        base, _, b = k.partition("@")
        label = labels[base] + (f" ({b})" if b else "")
        held = m(k, "held")
        stored = m(k, "stored_count")
        lines.append(
            f"| {label} | {fmt(m(k, 'alerts_per_s'))} | {fmt(m(k, 'rps'))} | "
            f"{fmt(m(k, 'syncs_per_s'))} | {fmt(m(k, 'p50_ms'), '{:.1f}')} / "
            f"{fmt(m(k, 'p99_ms'), '{:.1f}')} ms | {runs(k)} | {fmt(m(k, 'errors'))} | "
            f"{fmt(held)} ({fmt(stored)}) | {fmt(m(k, 'rss_mib'), '{:.0f}')} MiB |")
    lines += ["", "Klaxon ÷ Alertmanager, the same alerts in the same runs (medians; per run in "
              "brackets):", "", "| Klaxon load | Alertmanager load | ratio | per run |",
              "|---|---|---|---|"]
    pairs = [("klaxon-v2-1", "am-v2-1"), ("klaxon-v2-10", "am-v2-10"),
             ("klaxon-v2-100", "am-v2-100"), ("klaxon-webhook-10", "am-v2-10"),
             ("klaxon-webhook-100", "am-v2-100"), ("klaxon-ev2-new", "am-v2-1"),
             ("klaxon-ev2-repeat", "am-v2-1")]
    ratios = {}
    for kb, peer in pairs:
        for b in ("sqlite", "postgres"):
            k = f"{kb}@{b}"
            if k not in res or peer not in res:
                continue
            per = [x["alerts_per_s"] / y["alerts_per_s"] for x, y in zip(res[k], res[peer])]
            ratio = m(k, "alerts_per_s") / m(peer, "alerts_per_s")
            ratios[k + "/" + peer] = ratio
            lines.append(f"| {labels[kb]} ({b}) | {peer} | **{ratio:.2f}** | "
                         f"{', '.join(f'{p:.2f}' for p in per)} |")
    lines.append("")
    return lines, ratios


# ---- latency: alert → notification at a sink ----------------------------------------

SINK = r"""
import http.server, json, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        t = time.perf_counter()
        try:
            title = json.loads(body)["data"]["title"]
        except Exception:
            title = "?"
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
        sys.stdout.write("%.9f %s\n" % (t, json.dumps(title)))
        sys.stdout.flush()
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
s.daemon_threads = True
print("ready", flush=True)
deadline = time.time() + float(sys.argv[2])
s.timeout = 0.2
while time.time() < deadline:
    s.handle_request()
"""


class Sink:
    def __init__(self, lifetime):
        self.port = free_port()
        self.p = subprocess.Popen([sys.executable, "-c", SINK, str(self.port), str(lifetime)],
                                  stdout=subprocess.PIPE, text=True)
        if self.p.stdout.readline().strip() != "ready":
            raise RuntimeError("sink did not start")
        self.got = {}
        self.lines = 0
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stdout:
            t, title = line.split(" ", 1)
            title = json.loads(title)
            self.lines += 1
            m = re.search(r"bench-latency (\d+)", title)
            if m:
                self.got.setdefault(int(m.group(1)), float(t))

    def stop(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        self.t.join(5)


def webhook_one(seq, now):
    name = f"LatencyRule{seq}"
    return json.dumps({
        "receiver": "klaxon", "status": "firing",
        "alerts": [{"status": "firing",
                    "labels": {"alertname": name, "instance": "db1", "job": "node",
                               "severity": "critical"},
                    "annotations": {"summary": f"bench-latency {seq}"},
                    "startsAt": rfc3339(now), "endsAt": "0001-01-01T00:00:00Z",
                    "generatorURL": "", "fingerprint": f"3{seq:015x}"}],
        "groupLabels": {"alertname": name}, "commonLabels": {"alertname": name},
        "commonAnnotations": {}, "externalURL": "http://alertmanager.local:9093", "version": "4",
        "groupKey": '{}:{alertname="%s"}' % name, "truncatedAlerts": 0}) + "\n"


def ev2_one(seq, key):
    return json.dumps({"routing_key": key, "event_action": "trigger",
                       "dedup_key": f"latency-{seq}",
                       "payload": {"summary": f"bench-latency {seq}", "source": "db1",
                                   "severity": "critical"}})


def latency_run(a, kind, backend, pg):
    klaxond = os.path.join(a.build, "klaxond")
    n = int(a.rate * a.latency_seconds)
    sink = Sink(a.latency_seconds + 60)
    k = Klaxon(klaxond, LATENCY_CONFIG.format(port=sink.port),
               pg.new_db() if backend == "postgres" else None)
    sent, resp_ms, bad = {}, [], 0
    try:
        c = http.client.HTTPConnection("127.0.0.1", k.port, timeout=10)
        h = {"Content-Type": "application/json"}
        if kind == "webhook":
            h["Authorization"] = "Bearer " + k.am_key
        start = time.perf_counter() + 0.2
        for seq in range(n):
            due = start + seq / a.rate
            while True:
                d = due - time.perf_counter()
                if d <= 0:
                    break
                time.sleep(min(d, 0.01))
            if kind == "webhook":
                body, path = webhook_one(seq, datetime.now(timezone.utc)), "/v1/alerts/alertmanager"
            else:
                body, path = ev2_one(seq, k.ev2_key), "/v2/enqueue"
            t0 = time.perf_counter()
            c.request("POST", path, body=body.encode(), headers=h)
            r = c.getresponse()
            data = r.read()
            resp_ms.append((time.perf_counter() - t0) * 1000)
            sent[seq] = t0
            if r.status // 100 != 2:
                bad += 1
                if bad == 1:
                    sys.stderr.write(f"latency: {r.status} {data[:200]!r}\n")
        c.close()
        send_secs = time.perf_counter() - start
        deadline = time.perf_counter() + 10
        while len(sink.got) < n and time.perf_counter() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # duplicates, if any
    finally:
        k.stop()
        sink.stop()
        k.cleanup()
    lat = [(sink.got[s] - t) * 1000 for s, t in sent.items() if s in sink.got]
    return {"kind": kind, "backend": backend, "sent": n, "received": len(lat),
            "deliveries": sink.lines, "rate": n / send_secs, "bad_answers": bad,
            "p50_ms": pct(lat, 50), "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
            "max_ms": max(lat) if lat else float("nan"), "min_ms": min(lat) if lat else float("nan"),
            "answer_p50_ms": pct(resp_ms, 50), "answer_p99_ms": pct(resp_ms, 99)}


def bench_latency(a, pg):
    out = []
    for b in a.backends.split(","):
        for kind in a.latency_kinds.split(","):
            r = latency_run(a, kind, b, pg)
            out.append(r)
            print(f"latency {kind}@{b}: p50 {r['p50_ms']:.1f} p99 {r['p99_ms']:.1f} max "
                  f"{r['max_ms']:.1f} ms, {r['received']}/{r['sent']}", file=sys.stderr)
    return out


def latency_report(a, res):
    names = {"webhook": "Alertmanager webhook, 1 alert per request",
             "ev2": "Events v2, 1 event per request"}
    lines = [f"**Alert → notification** ({a.rate:g} alerts/s for {a.latency_seconds:g} s, one "
             "request at a time on one keep-alive connection; every alert a new alertname "
             "(Events v2: a new summary), routed `severity: P1, group_by: [alertname]` "
             "(`[summary]`), so each opens an incident; the "
             "`incident.declared` webhook goes to a sink in another process that timestamps "
             "the end of each request; time from just before the alert's request is sent):", "",
             "| source, backend | notifications / alerts | p50 | p90 | p99 | max | ingest answer "
             "p50 / p99 | achieved rate |", "|---|---|---|---|---|---|---|---|"]
    for r in res:
        lines.append(
            f"| {names[r['kind']]}, {r['backend']} | {r['received']} / {r['sent']}"
            f"{' (' + str(r['deliveries'] - r['received']) + ' more deliveries)' if r['deliveries'] > r['received'] else ''}"
            f"{'; ' + str(r['bad_answers']) + ' non-2xx' if r['bad_answers'] else ''} | "
            f"{r['p50_ms']:.1f} ms | {r['p90_ms']:.1f} ms | **{r['p99_ms']:.1f} ms** | "
            f"{r['max_ms']:.1f} ms | {r['answer_p50_ms']:.1f} / {r['answer_p99_ms']:.1f} ms | "
            f"{r['rate']:.1f}/s |")
    lines.append("")
    return lines


# ---- main ---------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description="Klaxon detection benchmarks: alert ingestion against Alertmanager 0.25 "
                    "(same run), alert → notification latency. Prints a Markdown report.")
    ap.add_argument("build", help="build directory holding klaxond")
    ap.add_argument("what", nargs="?", default="all", choices=["all", "ingest", "latency"])
    ap.add_argument("--runs", type=int, default=3, help="ingest: runs (median reported)")
    ap.add_argument("--duration", type=int, default=5, help="ingest: seconds per load")
    ap.add_argument("--conns", type=int, default=16, help="ingest: wrk connections (all servers)")
    ap.add_argument("--threads", type=int, default=2, help="ingest: wrk threads")
    ap.add_argument("--backends", default="sqlite", help="comma list: sqlite,postgres")
    ap.add_argument("--rate", type=float, default=20, help="latency: alerts per second")
    ap.add_argument("--latency-seconds", type=float, default=30, help="latency: seconds of sending")
    ap.add_argument("--latency-kinds", default="webhook,ev2", help="latency: comma list of webhook, ev2")
    ap.add_argument("--loads", help="ingest: comma list of load names to run (default: all)")
    ap.add_argument("--perf", help="ingest: record a perf profile of each Klaxon load into DIR")
    ap.add_argument("--out", help="also write the Markdown report to this file")
    ap.add_argument("--json", help="write every run's figures to this JSON file")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.build, "klaxond")):
        sys.exit(f"bench_detect: no klaxond in {a.build}")
    if not shutil.which("wrk"):
        sys.exit("bench_detect: wrk is not installed (run scripts/setup)")
    if a.what in ("all", "ingest") and not os.path.exists(ALERTMANAGER):
        sys.exit("bench_detect: prometheus-alertmanager is not installed (run scripts/setup)")
    a.duration = max(1, min(a.duration, 60))
    a.latency_seconds = max(1.0, min(a.latency_seconds, 120.0))
    a.rate = max(0.1, min(a.rate, 1000.0))
    t0 = time.time()
    pg = PgServer() if "postgres" in a.backends.split(",") else None
    lines = [f"Machine: {os.cpu_count()} cores (nproc), {mem_gib()} GiB RAM; loopback, load "
             f"generator on the same cores; {time.strftime('%Y-%m-%d %H:%M %Z')}; "
             f"load average before: {os.getloadavg()[0]:.1f}.", ""]
    report = {"machine": {"nproc": os.cpu_count(), "ram_gib": mem_gib(),
                          "loadavg_before": os.getloadavg()}, "args": vars(a)}
    try:
        if a.what in ("all", "ingest"):
            res = bench_ingest(a, pg)
            ls, ratios = ingest_report(a, res)
            lines += ls
            report["ingest"], report["ratios"] = res, ratios
        if a.what in ("all", "latency"):
            res = bench_latency(a, pg)
            lines += latency_report(a, res)
            report["latency"] = res
    finally:
        if pg:
            pg.stop()
    report["seconds"] = round(time.time() - t0, 1)
    lines.append(f"(bench_detect.py took {report['seconds']:.0f} s.)")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(report, f, indent=1, default=str)


if __name__ == "__main__":
    main()
