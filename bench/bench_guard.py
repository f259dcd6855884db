#!/usr/bin/env python3
"""Guardrail benchmarks: audit append throughput, audit queries over a large
log, gate check throughput and latency against nginx, and switch
propagation to SSE subscribers.

Every figure is the median of RUNS runs, with its peer measured in the same
run. Usage:
    bench/bench_guard.py BUILD_DIR [all|append|query|gate|propagation] [options]

Run `bench/bench_guard.py --help` for the options. Everything talks to
127.0.0.1 only, and every load loop is bounded in time.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_core import Daemon, PgServer, free_port, med, rss_kib  # noqa: E402


def pct(values, p):
    """The p-th percentile (nearest rank) of values."""
    if not values:
        return float("nan")
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def runs_list(values, f="{:.0f}"):
    return ", ".join(f.format(v) for v in values)


def machine_line(runs):
    return (f"Machine: {os.cpu_count()} cores, "
            f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB; "
            f"loopback, load generator on the same cores; median of {runs} runs.")


class Conn:
    """A keep-alive HTTP/1.1 connection to a daemon (http.client)."""

    def __init__(self, port, token, timeout=30):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.h = {"Authorization": "Bearer " + token}

    def req(self, method, path, body=None, ctype="application/json"):
        h = dict(self.h)
        if body is not None:
            h["Content-Type"] = ctype
            if isinstance(body, str):
                body = body.encode()
        self.c.request(method, path, body=body, headers=h)
        r = self.c.getresponse()
        data = r.read()
        return r.status, data

    def json(self, method, path, body=None):
        st, data = self.req(method, path, None if body is None else json.dumps(body))
        try:
            return st, json.loads(data) if data else None
        except ValueError:
            return st, data

    def close(self):
        self.c.close()


def start_daemon(klaxond, backend, pg, data_dir, token=None, db=None):
    extra = []
    if backend.startswith("postgres"):
        extra = ["--db", db or pg.new_db()]
    return Daemon(klaxond, data_dir, extra, token=token)


# ---- 1. audit append throughput -----------------------------------------------------

PLATFORMS = ("instagram", "x", "tiktok", "facebook", "linkedin")
ACTIONS = ("comment", "dm", "like", "publish")


def ndjson_template(client_no, batch):
    """One NDJSON body of `batch` events; '%R%' is replaced per request so
    that every idempotency key is new."""
    lines = []
    for i in range(batch):
        a = random.randrange(10000)
        lines.append(json.dumps({
            "actor": f"bench-bot-{client_no}", "client": f"c{a % 100}",
            "account": f"@acct{a:05d}", "platform": PLATFORMS[a % 5],
            "lane": "api" if i % 4 else "browser", "action": ACTIONS[i % 4],
            "target": f"post/{random.randrange(10**8)}",
            "content_hash": f"sha256:{random.getrandbits(64):016x}", "outcome": "success",
            "idempotency_key": f"k%R%-{i}"}, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode()


def append_load(daemon, clients, batch, duration):
    """`clients` threads POST NDJSON batches for `duration` s; returns
    events/s, request latency p50/p99 (ms), errors."""
    templates = [ndjson_template(c, batch) for c in range(clients)]
    results = [None] * clients
    start = time.perf_counter()
    deadline = start + duration

    def one(c):
        conn = Conn(daemon.port, daemon.token, timeout=60)
        tmpl, n, events, errors, lat = templates[c], 0, 0, 0, []
        try:
            while time.perf_counter() < deadline:
                n += 1
                body = tmpl.replace(b"%R%", f"{c}.{n}.{os.getpid()}.{start}".encode())
                t0 = time.perf_counter()
                st, data = conn.req("POST", "/v1/audit/events", body, "application/x-ndjson")
                lat.append(time.perf_counter() - t0)
                if st == 201:
                    events += json.loads(data)["appended"]
                else:
                    errors += 1
                    if errors == 1:
                        sys.stderr.write(f"append: {st} {data[:200]!r}\n")
        finally:
            conn.close()
        results[c] = (events, errors, lat, time.perf_counter())

    threads = [threading.Thread(target=one, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 120)
    end = max(r[3] for r in results)
    lat = [x for r in results for x in r[2]]
    return {"eps": sum(r[0] for r in results) / (end - start),
            "p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
            "errors": sum(r[1] for r in results), "requests": len(lat)}


def append_load_wrk(daemon, clients, batch, duration):
    """The same load from wrk (bench/append.lua), so that the client's own
    CPU (Python's, on the same two cores) does not set the figure: one
    connection per client, each POSTing NDJSON batches back to back."""
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.NamedTemporaryFile("wb", suffix=".ndjson", delete=False) as f:
        f.write(ndjson_template(0, batch))
        body = f.name
    try:
        env = dict(os.environ, KLAXON_TOKEN=daemon.token, KX_BENCH_BODY=body,
                   KX_BENCH_RUN=f"{os.getpid()}.{time.time()}")
        out = subprocess.run(["wrk", f"-t{clients}", f"-c{clients}", f"-d{duration}s", "-s",
                              os.path.join(here, "append.lua"),
                              f"http://127.0.0.1:{daemon.port}/v1/audit/events"],
                             capture_output=True, text=True, env=env, timeout=duration + 120)
    finally:
        os.unlink(body)
    m = re.search(r"RESULT requests=(\d+) duration_us=(\d+) p50_us=(\d+) p99_us=(\d+) "
                  r"errors=(\d+) non2xx=(\d+)", out.stdout)
    if not m:
        raise RuntimeError("wrk printed no result:\n" + out.stdout + out.stderr)
    req, dur, p50, p99, err, non2xx = (int(x) for x in m.groups())
    return {"eps": (req - non2xx) * batch / (dur / 1e6), "p50_ms": p50 / 1000,
            "p99_ms": p99 / 1000, "errors": err + non2xx, "requests": req}


def store_ceiling(build, url, events):
    """kx_store_audit_append in-process (bench/audit_seed), 1,000 events per
    transaction: the store's own rate without HTTP or JSON."""
    out = subprocess.run([os.path.join(build, "audit_seed"), "--db", url, "--events",
                          str(events), "--batch", "1000"], capture_output=True, text=True,
                         timeout=600)
    m = re.search(r"rate=(\d+)", out.stdout)
    if not m:
        raise RuntimeError("audit_seed failed: " + out.stderr)
    return float(m.group(1))


def bench_append(a, pg):
    klaxond = os.path.join(a.build, "klaxond")
    backends = a.backends.split(",")
    rows = {b: {} for b in backends}
    for run in range(a.runs):
        for b in backends:
            tmp = tempfile.mkdtemp(prefix="kxbench-")
            try:
                db = pg.new_db() if b == "postgres" else None
                d = start_daemon(klaxond, b, pg, tmp, db=db)
                try:
                    # warm-up: one batch
                    append_load(d, 1, a.batch, 0.01)
                    for c in sorted({1, a.clients}):
                        r = (append_load_wrk if shutil.which("wrk") else append_load)(
                            d, c, a.batch, a.duration)
                        for k, v in r.items():
                            rows[b].setdefault(f"c{c}_{k}", []).append(v)
                    rows[b].setdefault("rss_kib", []).append(rss_kib(d.proc.pid))
                finally:
                    d.stop()
                # the same store code in-process, same database kind, same run
                url = (f"sqlite:{tmp}/ceiling.db" if b == "sqlite" else pg.new_db())
                rows[b].setdefault("ceiling_eps", []).append(
                    store_ceiling(a.build, url, a.ceiling_events if b == "sqlite"
                                  else max(1000, a.ceiling_events // 4)))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(f"append {b} run {run + 1}: " + ", ".join(
                f"{k}={v[-1]:.0f}" for k, v in rows[b].items()), file=sys.stderr)
    lines = [f"**Audit append** (`POST /v1/audit/events`, NDJSON, {a.batch} events per request "
             f"from wrk (`bench/append.lua`; every idempotency key new), "
             f"{a.duration} s per load; durable: SQLite WAL synchronous=FULL, PostgreSQL fsync=on)",
             "", "| backend, clients | events/s (median) | per request p50 / p99 | runs (events/s) | "
             "store alone (audit_seed, 1,000 per txn) | HTTP ÷ store |", "|---|---|---|---|---|---|"]
    for b in backends:
        m = {k: med(v) for k, v in rows[b].items()}
        for c in sorted({1, a.clients}):
            k = f"c{c}_"
            lines.append(
                f"| {b}, {c} client{'s' if c > 1 else ''} | {m[k + 'eps']:.0f} | "
                f"{m[k + 'p50_ms']:.1f} / {m[k + 'p99_ms']:.1f} ms | {runs_list(rows[b][k + 'eps'])}"
                f"{'; errors ' + str(int(m[k + 'errors'])) if m[k + 'errors'] else ''} | "
                f"{m['ceiling_eps']:.0f} | {m[k + 'eps'] / m['ceiling_eps']:.2f} |")
    lines.append("")
    return lines


# ---- 2. audit query over a large log ------------------------------------------------

def seed_meta_path(d):
    return os.path.join(d, "seed.json")


def seed_sqlite(a, cache_dir):
    """A data dir holding a.events events (cached in cache_dir); tops up the
    last two hours when the cache is older than a minute so that `since=1h`
    always selects its share."""
    d = os.path.join(cache_dir, f"sqlite-{a.events}-{a.accounts}")
    seed = os.path.join(a.build, "audit_seed")
    meta = None
    if os.path.exists(seed_meta_path(d)) and os.path.exists(os.path.join(d, "klaxon.db")):
        with open(seed_meta_path(d)) as f:
            meta = json.load(f)
    if not meta:
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        t0 = time.time()
        print(f"query: seeding {a.events} events into {d} (cached for later runs)",
              file=sys.stderr)
        out = subprocess.run([seed, "--db", f"sqlite:{d}/klaxon.db", "--events", str(a.events),
                              "--accounts", str(a.accounts), "--days", "30", "--batch", "50000"],
                             capture_output=True, text=True, timeout=3600)
        m = re.search(r"last_at=(\d+)", out.stdout)
        if out.returncode or not m:
            raise RuntimeError("audit_seed failed: " + out.stderr)
        meta = {"events": a.events, "accounts": a.accounts, "last_at": int(m.group(1)),
                "seed_seconds": round(time.time() - t0, 1), "seed_line": out.stdout.strip()}
        with open(seed_meta_path(d), "w") as f:
            json.dump(meta, f)
    now = int(time.time() * 1000)
    if now - meta["last_at"] > 60000:
        # same density as the seed: events per ms over 30 days
        frm = max(meta["last_at"], now - 2 * 3600 * 1000)
        n = max(1, int(a.events * (now - frm) / (30 * 86400000)))
        out = subprocess.run([seed, "--db", f"sqlite:{d}/klaxon.db", "--events", str(n),
                              "--accounts", str(a.accounts), "--from-ms", str(frm), "--end-ms",
                              str(now), "--seed", str(now), "--batch", "50000"],
                             capture_output=True, text=True, timeout=600)
        if out.returncode:
            raise RuntimeError("audit_seed top-up failed: " + out.stderr)
        meta["last_at"] = now
        meta["topped_up"] = meta.get("topped_up", 0) + n
        with open(seed_meta_path(d), "w") as f:
            json.dump(meta, f)
    return d, meta


def seed_postgres(a, cache_dir):
    """A private PostgreSQL cluster (kept in cache_dir) holding a.pg_events
    events in database 'klaxon'; returns (PgServer-like, url, meta)."""
    d = os.path.join(cache_dir, f"pg-{a.pg_events}-{a.accounts}")
    script = os.path.join(HERE, "..", "scripts", "pg-test-server")
    os.makedirs(d, exist_ok=True)
    r = subprocess.run([script, "start", d], capture_output=True, text=True, timeout=120)
    if r.returncode:
        raise RuntimeError("cannot start PostgreSQL: " + r.stderr)
    url = r.stdout.strip().splitlines()[-1]
    seed = os.path.join(a.build, "audit_seed")
    meta = None
    if os.path.exists(seed_meta_path(d)):
        with open(seed_meta_path(d)) as f:
            meta = json.load(f)
    if not meta:
        print(f"query: seeding {a.pg_events} events into PostgreSQL in {d} (cached)",
              file=sys.stderr)
        t0 = time.time()
        out = subprocess.run([seed, "--db", url, "--events", str(a.pg_events), "--accounts",
                              str(a.accounts), "--days", "30", "--batch", "50000"],
                             capture_output=True, text=True, timeout=7200)
        m = re.search(r"last_at=(\d+)", out.stdout)
        if out.returncode or not m:
            raise RuntimeError("audit_seed failed: " + out.stderr)
        subprocess.run(["psql", url, "-q", "-c", "VACUUM ANALYZE audit_events"],
                       capture_output=True, timeout=3600)
        meta = {"events": a.pg_events, "accounts": a.accounts, "last_at": int(m.group(1)),
                "seed_seconds": round(time.time() - t0, 1), "seed_line": out.stdout.strip()}
        with open(seed_meta_path(d), "w") as f:
            json.dump(meta, f)
    now = int(time.time() * 1000)
    if now - meta["last_at"] > 60000:
        frm = max(meta["last_at"], now - 2 * 3600 * 1000)
        n = max(1, int(a.pg_events * (now - frm) / (30 * 86400000)))
        out = subprocess.run([seed, "--db", url, "--events", str(n), "--accounts",
                              str(a.accounts), "--from-ms", str(frm), "--end-ms", str(now),
                              "--seed", str(now), "--batch", "50000"],
                             capture_output=True, text=True, timeout=1200)
        if out.returncode:
            raise RuntimeError("audit_seed top-up failed: " + out.stderr)
        meta["last_at"] = now
        meta["topped_up"] = meta.get("topped_up", 0) + n
        with open(seed_meta_path(d), "w") as f:
            json.dump(meta, f)

    class Srv:
        def stop(self):
            subprocess.run([script, "stop", d], capture_output=True, timeout=60)
    return Srv(), url, meta


def query_paths(accounts, n, rnd):
    # what `klaxon audit list --account X --since 1h` sends (src/cli/audit.c:
    # since first, then account, each percent-escaped)
    return ["/v1/audit/events?since=1h&account=" +
            urllib.parse.quote(f"@acct{rnd.randrange(accounts):05d}", safe="")
            for _ in range(n)]


def time_queries(daemon, paths):
    conn = Conn(daemon.port, daemon.token)
    lat, rows = [], 0
    try:
        for p in paths[:20]:  # warm-up, not counted
            conn.req("GET", p)
        for p in paths:
            t0 = time.perf_counter()
            st, data = conn.req("GET", p)
            lat.append(time.perf_counter() - t0)
            if st != 200:
                raise RuntimeError(f"GET {p}: {st} {data[:200]!r}")
            rows += data.count(b'"seq"')
    finally:
        conn.close()
    return {"p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000,
            "mean_rows": rows / len(paths)}


def sqlite_peer(dbpath, paths):
    """The daemon's SQL (src/store/sqlite/sqlite.c sq_audit_query) run by
    Python's sqlite3 on the same file: the floor for the HTTP figure."""
    import sqlite3
    c = sqlite3.connect(f"file:{dbpath}?mode=ro", uri=True)
    sql = ("SELECT seq, at, actor, client, account, platform, lane, action, target, "
           "content_hash, outcome, trace_id, artifact_url, idempotency_key, labels, prev_hash, "
           "hash FROM audit_events WHERE 1=1 AND at >= ? AND account = ? ORDER BY seq DESC LIMIT ?")
    plan = " / ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN " + sql, (0, "x", 100)))
    lat = []
    for p in paths:
        acct = urllib.parse.unquote(p.rsplit("=", 1)[1])
        since = int(time.time() * 1000) - 3600 * 1000
        t0 = time.perf_counter()
        c.execute(sql, (since, acct, 100)).fetchall()
        lat.append(time.perf_counter() - t0)
    c.close()
    return {"p50_ms": pct(lat, 50) * 1000, "p99_ms": pct(lat, 99) * 1000, "plan": plan}


def bench_query(a, pg_unused):
    klaxond = os.path.join(a.build, "klaxond")
    cache = a.cache or os.path.join(HERE, "results", "audit-db")
    os.makedirs(cache, exist_ok=True)
    backends = a.backends.split(",")
    lines = []
    for b in backends:
        rows = {}
        srv = None
        if b == "sqlite":
            d, meta = seed_sqlite(a, cache)
            extra_args = {}
        else:
            srv, url, meta = seed_postgres(a, cache)
            d = os.path.join(cache, f"pg-{a.pg_events}-{a.accounts}", "daemon")
            os.makedirs(d, exist_ok=True)
            extra_args = {"db": url}
        try:
            rnd = random.Random(7)
            for run in range(a.runs):
                dmn = start_daemon(klaxond, b, None, d, **extra_args)
                try:
                    paths = query_paths(a.accounts, a.queries, rnd)
                    r = time_queries(dmn, paths)
                    # two neighbours: the last hour of every account, and one
                    # account over the whole 30 days (newest 100 of each)
                    r2 = time_queries(dmn, ["/v1/audit/events?since=1h"] * a.queries)
                    r3 = time_queries(dmn, [p.replace("since=1h&", "") for p in
                                            query_paths(a.accounts, a.queries, rnd)])
                finally:
                    dmn.stop()
                for k, v in r.items():
                    rows.setdefault(k, []).append(v)
                for pre, rr in (("all_", r2), ("acct_", r3)):
                    for k, v in rr.items():
                        rows.setdefault(pre + k, []).append(v)
                if b == "sqlite":
                    p = sqlite_peer(os.path.join(d, "klaxon.db"), paths)
                    rows.setdefault("peer_p50_ms", []).append(p["p50_ms"])
                    rows.setdefault("peer_p99_ms", []).append(p["p99_ms"])
                    rows["plan"] = [p["plan"]]
                print(f"query {b} run {run + 1}: p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms "
                      f"rows {r['mean_rows']:.1f}", file=sys.stderr)
        finally:
            if srv:
                srv.stop()
        m = {k: med(v) for k, v in rows.items() if k != "plan"}
        n_events = meta["events"] + meta.get("topped_up", 0)
        lines += [f"**Audit query, {b}**: `GET /v1/audit/events?since=1h&account=%40acctNNNNN` "
                  f"(what `klaxon audit list --account X --since 1h` sends), {a.queries} queries "
                  f"on one keep-alive connection, random accounts; {n_events:,} events over "
                  f"30 days and {a.accounts:,} accounts (seeded by `bench/audit_seed` in "
                  f"{meta['seed_seconds']:.0f} s, cached), page cache warm.", "",
                  "| measure | median | runs |", "|---|---|---|",
                  f"| HTTP query p50 | {m['p50_ms']:.2f} ms | {runs_list(rows['p50_ms'], '{:.2f}')} |",
                  f"| HTTP query p99 | {m['p99_ms']:.2f} ms | {runs_list(rows['p99_ms'], '{:.2f}')} |",
                  f"| events per answer (mean) | {m['mean_rows']:.1f} | "
                  f"{runs_list(rows['mean_rows'], '{:.1f}')} |",
                  f"| `?since=1h` (every account; {m['all_mean_rows']:.0f} events per answer, "
                  f"the default limit) p50 / p99 | {m['all_p50_ms']:.2f} / {m['all_p99_ms']:.2f} ms | "
                  f"{runs_list(rows['all_p99_ms'], '{:.2f}')} (p99) |",
                  f"| `?account=X` (30 days; {m['acct_mean_rows']:.0f} events per answer) p50 / p99 | "
                  f"{m['acct_p50_ms']:.2f} / {m['acct_p99_ms']:.2f} ms | "
                  f"{runs_list(rows['acct_p99_ms'], '{:.2f}')} (p99) |"]
        if b == "sqlite":
            lines += [f"| same SQL in Python's sqlite3, p50 | {m['peer_p50_ms']:.3f} ms | "
                      f"{runs_list(rows['peer_p50_ms'], '{:.3f}')} |",
                      f"| same SQL in Python's sqlite3, p99 | {m['peer_p99_ms']:.3f} ms | "
                      f"{runs_list(rows['peer_p99_ms'], '{:.3f}')} |",
                      "", f"SQLite's plan: `{rows['plan'][0]}`."]
        lines.append("")
    return lines


# ---- 3. gate check vs nginx ------------------------------------------------------------

GATE_BODY = ('{"labels":{"client":"acme","account":"@a{m}","platform":"instagram","lane":"api",'
             '"action":"comment","target":"post/{n}"},"idempotency_key":"lg%s-{n}"}')


class Nginx:
    """nginx-light answering every request with a fixed small JSON, as in
    /work/shared/BENCHMARKING.md: private prefix, config, pid and temp paths."""

    def __init__(self, workers):
        self.dir = tempfile.mkdtemp(prefix="kxbench-nginx-")
        self.port = free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        t = self.dir
        with open(conf, "w") as f:
            f.write(f"""worker_processes {workers};
daemon off;
pid {t}/nginx.pid;
error_log {t}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path {t}/body;
  proxy_temp_path {t}/proxy;
  fastcgi_temp_path {t}/fastcgi;
  uwsgi_temp_path {t}/uwsgi;
  scgi_temp_path {t}/scgi;
  server {{
    listen 127.0.0.1:{self.port};
    location / {{ default_type application/json; return 200 '{{"decision":"allow"}}'; }}
  }}
}}
""")
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.05).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("nginx did not start")
                time.sleep(0.01)
        self.token = "none"

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def wrk_gate(target, conns, duration, run_id):
    e = dict(os.environ, KLAXON_TOKEN=target.token, KX_BENCH_RUN=str(run_id))
    out = subprocess.run(["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{duration}s", "-s",
                          os.path.join(HERE, "gate.lua"), target.url()], env=e,
                         capture_output=True, text=True, timeout=duration + 60).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    raise RuntimeError("wrk printed no result:\n" + out)


def loadgen(build, target, rate, conns, duration, run_id, body=GATE_BODY, match='"deny"'):
    cmd = [os.path.join(build, "loadgen"), "--port", str(target.port), "--path",
           "/v1/gate/check", "--body", body % run_id, "--header",
           "Authorization: Bearer " + target.token, "--header", "Content-Type: application/json",
           "--connections", str(conns), "--rate", str(int(rate)), "--duration", str(duration),
           "--warmup", "1", "--mod", "1000", "--match", match]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    for line in out.stdout.splitlines():
        if line.startswith("RESULT "):
            return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    raise RuntimeError("loadgen printed no result:\n" + out.stdout + out.stderr)


def wait_for_gate(klaxond, timeout):
    """Polls a throw-away daemon until POST /v1/gate/check answers (the
    endpoint was being written when this benchmark was)."""
    deadline = time.time() + timeout
    while True:
        tmp = tempfile.mkdtemp(prefix="kxbench-")
        try:
            d = Daemon(klaxond, tmp)
            try:
                c = Conn(d.port, d.token)
                st, _ = c.json("POST", "/v1/gate/check",
                               {"labels": {"client": "acme", "action": "comment"}})
                c.close()
            finally:
                d.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        if st == 200:
            return True
        if time.time() > deadline:
            return False
        time.sleep(30)


def setup_guardrails(d, switches, caps):
    """`switches` block switches and `caps` caps that the gate traffic
    (client acme) does not match, plus one switch that blocks one account
    of the 1,000 (0.1% deny) and one cap that counts all of it but never
    fills up. Returns the number of objects made."""
    c = Conn(d.port, d.token)
    try:
        for i in range(switches - 1):
            st, r = c.json("POST", "/v1/switches", {"selector": f"client=c{i},platform=x",
                                                    "mode": "block", "reason": "bench"})
            if st not in (200, 201):
                raise RuntimeError(f"POST /v1/switches: {st} {r}")
        st, r = c.json("POST", "/v1/switches", {"selector": "client=acme,account=@a999",
                                                "mode": "block", "reason": "bench: 0.1%"})
        if st not in (200, 201):
            raise RuntimeError(f"POST /v1/switches: {st} {r}")
        for i in range(caps - 1):
            st, r = c.json("PUT", f"/v1/caps/bench-{i}", {"spec": f"client=c{i},action=comment: 200/1d"})
            if st not in (200, 201):
                raise RuntimeError(f"PUT /v1/caps/bench-{i}: {st} {r}")
        st, r = c.json("PUT", "/v1/caps/bench-acme",
                       {"spec": "client=acme,action=comment: 1000000/1s"})
        if st not in (200, 201):
            raise RuntimeError(f"PUT /v1/caps/bench-acme: {st} {r}")
    finally:
        c.close()


def gate_sample(d, n=2000):
    """Decisions of n requests like the load's: {decision: count}."""
    c = Conn(d.port, d.token)
    out = {}
    try:
        for i in range(n):
            st, r = c.json("POST", "/v1/gate/check", {
                "labels": {"client": "acme", "account": f"@a{i % 1000}", "platform": "instagram",
                           "lane": "api", "action": "comment", "target": f"post/{i}"},
                "idempotency_key": f"sample-{time.time()}-{i}"})
            k = r.get("decision") if st == 200 and isinstance(r, dict) else f"http {st}"
            out[k] = out.get(k, 0) + 1
    finally:
        c.close()
    return out


def bench_gate(a):
    klaxond = os.path.join(a.build, "klaxond")
    if not shutil.which("wrk") or not shutil.which("nginx"):
        sys.exit("bench: wrk and nginx (nginx-light) are needed (run scripts/setup)")
    if not wait_for_gate(klaxond, a.wait_endpoints):
        return ["**Gate check**: not measured, `POST /v1/gate/check` is not served by this build.", ""]
    rows = {}
    add = lambda k, v: rows.setdefault(k, []).append(v)  # noqa: E731
    sample = rss = None
    run_id = int(time.time())
    for run in range(a.runs):
        tmp = tempfile.mkdtemp(prefix="kxbench-")
        servers = {}
        try:
            d = Daemon(klaxond, tmp)
            t0 = time.perf_counter()
            setup_guardrails(d, a.switches, a.caps)
            add("setup_s", time.perf_counter() - t0)
            servers = {"klaxon": d, "nginx-1": Nginx(1), "nginx-auto": Nginx("auto")}
            if run == 0:
                sample = gate_sample(d)
            # closed loop: wrk, the guide's two loads, the three servers in turn
            for conns in (64, 16):
                for name, srv in servers.items():
                    run_id += 1
                    r = wrk_gate(srv, conns, a.duration, run_id)
                    for k in ("rps", "p50_us", "p99_us", "errors"):
                        add(f"{name}_c{conns}_{k}", r[k])
            # open loop at half of Klaxon's maximum in this run, Klaxon and nginx-1
            half = rows["klaxon_c64_rps"][-1] / 2
            add("half_rate", half)
            for name in ("klaxon", "nginx-1"):
                run_id += 1
                r = loadgen(a.build, servers[name], half, 16, a.duration, run_id)
                for k in ("rps", "p50_us", "p99_us", "p999_us", "errors", "matched", "unsent",
                          "non2xx"):
                    add(f"{name}_half_{k}", r[k])
            add("rss_kib", rss_kib(d.proc.pid))
            print(f"gate run {run + 1}: " + ", ".join(f"{k}={v[-1]:.0f}" for k, v in rows.items()),
                  file=sys.stderr)
        finally:
            for s in servers.values():
                s.stop()
            if "klaxon" not in servers:
                try:
                    d.stop()
                except Exception:
                    pass
            shutil.rmtree(tmp, ignore_errors=True)
    m = {k: med(v) for k, v in rows.items()}
    lines = [f"**Gate check** (`POST /v1/gate/check`, one action per request, keep-alive, bearer "
             f"token; {a.switches} switches and {a.caps} caps of which one switch (0.1% of the "
             f"traffic: deny) and one cap (all of it, 1,000,000/1s: never full) match; sample of 2,000: "
             f"{', '.join(f'{k} {v}' for k, v in sorted(sample.items()))}). nginx answers the "
             f"same bytes with a fixed `{{\"decision\":\"allow\"}}`. wrk -t2, {a.duration} s per load.",
             "", "| server, load | req/s (median) | p50 / p99 | Klaxon ÷ this | runs (req/s) |",
             "|---|---|---|---|---|"]
    for conns in (64, 16):
        for name in ("klaxon", "nginx-1", "nginx-auto"):
            k = f"{name}_c{conns}_"
            ratio = m[f"klaxon_c{conns}_rps"] / m[k + "rps"]
            lines.append(f"| {name} (worker_processes {'1' if name == 'nginx-1' else 'auto'}), "
                         f"wrk -c{conns} | {m[k + 'rps']:.0f} | {m[k + 'p50_us'] / 1000:.2f} / "
                         f"{m[k + 'p99_us'] / 1000:.2f} ms | {'' if name == 'klaxon' else f'{ratio:.2f}'} | "
                         f"{runs_list(rows[k + 'rps'])} |"
                         if name != "klaxon" else
                         f"| Klaxon, wrk -c{conns} | {m[k + 'rps']:.0f} | {m[k + 'p50_us'] / 1000:.2f} / "
                         f"{m[k + 'p99_us'] / 1000:.2f} ms | — | {runs_list(rows[k + 'rps'])}"
                         f"{'; errors ' + str(int(m[k + 'errors'])) if m[k + 'errors'] else ''} |")
    lines += ["", f"**Gate at half load**: `bench/loadgen`, open loop at half of Klaxon's wrk -c64 "
                  f"rate in the same run (median {m['half_rate']:.0f} req/s), 16 connections, "
                  f"latency from each request's scheduled send time.", "",
              "| server | achieved req/s | p50 / p99 / p99.9 | runs (p99 ms) | deny answers |",
              "|---|---|---|---|---|"]
    for name in ("klaxon", "nginx-1"):
        k = f"{name}_half_"
        lines.append(f"| {name} | {m[k + 'rps']:.0f} | {m[k + 'p50_us'] / 1000:.3f} / "
                     f"{m[k + 'p99_us'] / 1000:.3f} / {m[k + 'p999_us'] / 1000:.3f} ms | "
                     f"{runs_list([v / 1000 for v in rows[k + 'p99_us']], '{:.3f}')} | "
                     f"{m[k + 'matched'] / max(1, m[k + 'rps'] * a.duration) * 100:.2f}%"
                     f"{'; errors ' + str(int(m[k + 'errors'])) if m[k + 'errors'] else ''}"
                     f"{'; unsent ' + str(int(m[k + 'unsent'])) if m[k + 'unsent'] else ''} |")
    lines += ["", f"Setting up the {a.switches} switches and {a.caps} caps one request at a time: "
                  f"{m['setup_s']:.1f} s; klaxond RSS after the runs {m['rss_kib'] / 1024:.1f} MiB.",
              ""]
    return lines


# ---- 4. switch propagation --------------------------------------------------------------

class SSEClients:
    """n subscribers on GET /v1/switches/stream, read by one thread with a
    selector that only timestamps and keeps what arrives (so that Python's
    parsing does not delay the reading of the other 99); the events are
    parsed afterwards (first_with)."""

    def __init__(self, port, token, n):
        import selectors
        self.sel = selectors.DefaultSelector()
        self.subs = []
        self.lock = threading.Lock()
        self.last_rx = time.perf_counter()
        for i in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall((f"GET /v1/switches/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                       f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n").encode())
            self.subs.append({"i": i, "sock": s, "chunks": [], "nbytes": 0})
        for sub in self.subs:
            sub["sock"].setblocking(False)
            self.sel.register(sub["sock"], selectors.EVENT_READ, sub)
        self.stop_flag = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stop_flag:
            for key, _ in self.sel.select(0.05):
                sub = key.data
                try:
                    b = sub["sock"].recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    b = b""
                t = time.perf_counter()
                if not b:
                    self.sel.unregister(sub["sock"])
                    sub["closed"] = True
                    continue
                sub["chunks"].append((t, b))
                sub["nbytes"] += len(b)
                self.last_rx = t

    def counts(self):
        return [s["nbytes"] for s in self.subs]

    def wait_quiet(self, before, timeout, quiet=0.05):
        """Until every subscriber got bytes since `before` (counts()) and
        nothing arrived for `quiet` s, or timeout; True if all got some."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            now = time.perf_counter()
            if all(s["nbytes"] > b for s, b in zip(self.subs, before)) and \
                    now - self.last_rx > quiet:
                return True
            time.sleep(0.002)
        return False

    def wait_initial(self, timeout):
        if not self.wait_quiet([0] * len(self.subs), timeout):
            bad = [s for s in self.subs if not s["nbytes"]]
            raise RuntimeError(f"{len(bad)} subscribers got nothing from /v1/switches/stream")

    @staticmethod
    def _events(sub):
        """(time the event was complete, data bytes) for every event so far."""
        raw, head, chunked, text, out = b"", None, False, b"", []
        for t, b in sub["chunks"]:
            raw += b
            if head is None:
                end = raw.find(b"\r\n\r\n")
                if end < 0:
                    continue
                head = raw[:end].decode("latin-1").lower()
                if not head.startswith("http/1.1 200"):
                    raise RuntimeError("stream answered: " + head.splitlines()[0])
                chunked = "transfer-encoding: chunked" in head
                raw = raw[end + 4:]
            if chunked:
                while True:
                    nl = raw.find(b"\r\n")
                    if nl < 0:
                        break
                    size = int(raw[:nl].split(b";")[0], 16)
                    if len(raw) < nl + 2 + size + 2:
                        break
                    text += raw[nl + 2:nl + 2 + size]
                    raw = raw[nl + 2 + size + 2:]
            else:
                text += raw
                raw = b""
            text = text.replace(b"\r\n", b"\n")
            while b"\n\n" in text:
                block, text = text.split(b"\n\n", 1)
                data = [ln[5:].lstrip() for ln in block.split(b"\n") if ln.startswith(b"data:")]
                if data:
                    out.append((t, b"\n".join(data)))
        return out

    def first_with(self, marker, after):
        """For each subscriber, the time of the first event after `after`
        (perf_counter) whose data has marker; None if none."""
        res = []
        for sub in self.subs:
            hit = None
            for t, d in self._events(sub):
                if t >= after and marker in d:
                    hit = t
                    break
            res.append(hit)
        return res

    def close(self):
        self.stop_flag = True
        self.t.join(5)
        for s in self.subs:
            s["sock"].close()


POLLER = r"""
import http.client, json, sys, time
port, token, labels = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
h = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
deadline = time.perf_counter() + 15
n = 0
while time.perf_counter() < deadline:
    n += 1
    c.request("POST", "/v1/gate/check", json.dumps({"labels": labels, "idempotency_key": "p%d-%f" % (n, time.time())}), h)
    d = c.getresponse().read()
    t = time.perf_counter()
    if n == 1:
        print("ready", flush=True)
    if b'"deny"' in d:
        print("deny %.9f %d" % (t, n), flush=True)
        break
"""


def first_deny(port, token, labels, issue):
    """A separate process (no shared GIL) polls the gate for labels in a
    tight loop; issue() sets the switch and returns its start time. Returns
    the time (perf_counter, CLOCK_MONOTONIC) of the first deny, or None."""
    p = subprocess.Popen([sys.executable, "-c", POLLER, str(port), token, json.dumps(labels)],
                         stdout=subprocess.PIPE, text=True)
    try:
        if p.stdout.readline().strip() != "ready":
            raise RuntimeError("gate poller did not start")
        time.sleep(0.02)
        t0 = issue()
        line = p.stdout.readline().split()
        p.wait(20)
        return t0, (float(line[1]) if line and line[0] == "deny" else None)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def set_switch(conn, selector, reason):
    st, r = conn.json("POST", "/v1/switches", {"selector": selector, "mode": "block", "reason": reason})
    if st not in (200, 201):
        raise RuntimeError(f"POST /v1/switches: {st} {r}")
    return r["switch"]["id"]


def clear_switch(conn, sid):
    st, r = conn.json("POST", f"/v1/switches/{sid}/clear", {"reason": "bench: next repetition"})
    if st not in (200, 201):
        raise RuntimeError(f"POST /v1/switches/{sid}/clear: {st} {r}")


def propagation_setup(a, b, klaxond, pg, tmps):
    """Daemon A (where the stop is issued) and B (subscribers, poller)."""
    if b == "sqlite":
        A = Daemon(klaxond, tmps[0])
        return A, A, [A]
    url = pg.new_db()
    A = Daemon(klaxond, tmps[0], ["--db", url])
    B = Daemon(klaxond, tmps[1], ["--db", url], token=A.token)
    return A, B, [A, B]


def bench_propagation(a, pg):
    klaxond = os.path.join(a.build, "klaxond")
    klaxon = os.path.join(a.build, "klaxon")
    if not wait_for_gate(klaxond, a.wait_endpoints):
        return ["**Switch propagation**: not measured, the gate is not served by this build.", ""]
    backends = a.backends.split(",")
    res = {}
    for b in backends:
        r = res[b] = {"api_ms": [], "sub_ms": [], "rep_p50": [], "rep_p99": [], "rep_max": [],
                      "deny_ms": [], "cli_wall_ms": [], "cli_sub_ms": [], "missed": 0}
        tmps = [tempfile.mkdtemp(prefix="kxbench-") for _ in range(2)]
        daemons = []
        try:
            A, B, daemons = propagation_setup(a, b, klaxond, pg, tmps)
            # the gate benchmark's 100 switches and 1,000 caps are there too
            setup_guardrails(A, a.switches, a.caps)
            subs = SSEClients(B.port, B.token, a.subscribers)
            subs.wait_initial(10)
            ca = Conn(A.port, A.token)

            def deliveries(marker, t0):
                seen = subs.first_with(marker.encode(), t0)
                got = [(t - t0) * 1000 for t in seen if t is not None]
                r["missed"] += len(seen) - len(got)
                return got

            # (a) every subscriber sees the new switch
            for rep in range(a.reps):
                marker = f"bench-prop-{rep}-{time.time()}"
                before = subs.counts()
                t0 = time.perf_counter()
                sid = set_switch(ca, f"client=prop{rep}", marker)
                r["api_ms"].append((time.perf_counter() - t0) * 1000)
                subs.wait_quiet(before, 5)
                lat = deliveries(marker, t0)
                r["sub_ms"] += lat
                if lat:
                    r["rep_p50"].append(pct(lat, 50))
                    r["rep_p99"].append(pct(lat, 99))
                    r["rep_max"].append(max(lat))
                before = subs.counts()
                clear_switch(ca, sid)
                subs.wait_quiet(before, 5)
            # (b) the first deny seen by a client polling daemon B (another process)
            for rep in range(a.reps):
                marker = f"bench-deny-{rep}-{time.time()}"
                labels = {"client": f"deny{rep}", "account": "@brand", "platform": "instagram",
                          "lane": "api", "action": "comment", "target": "post/1"}
                box = {}

                def issue():
                    box["before"] = subs.counts()
                    t = time.perf_counter()
                    box["sid"] = set_switch(ca, f"client=deny{rep}", marker)
                    return t
                t0, t_deny = first_deny(B.port, B.token, labels, issue)
                if t_deny is None:
                    r["missed"] += 1
                else:
                    r["deny_ms"].append((t_deny - t0) * 1000)
                subs.wait_quiet(box["before"], 5)
                before = subs.counts()
                clear_switch(ca, box["sid"])
                subs.wait_quiet(before, 5)
            # the CLI: `klaxon stop --client X --reason R` on A, process start-up included
            env = dict(os.environ, KLAXON_URL=A.url(), KLAXON_TOKEN=A.token)
            for rep in range(min(a.reps, 10)):
                marker = f"bench-cli-{rep}-{time.time()}"
                before = subs.counts()
                t0 = time.perf_counter()
                p = subprocess.run([klaxon, "--json", "stop", "--client", f"cli{rep}", "--reason",
                                    marker], env=env, capture_output=True, text=True, timeout=30)
                r["cli_wall_ms"].append((time.perf_counter() - t0) * 1000)
                if p.returncode:
                    raise RuntimeError(f"klaxon stop: {p.returncode} {p.stderr}")
                subs.wait_quiet(before, 5)
                r["cli_sub_ms"] += deliveries(marker, t0)
                ans = json.loads(p.stdout)
                sid = ans["switch"]["id"] if "switch" in ans else ans["id"]
                before = subs.counts()
                clear_switch(ca, sid)
                subs.wait_quiet(before, 5)
            ca.close()
            subs.close()
        finally:
            for d in daemons:
                d.stop()
            for t in tmps:
                shutil.rmtree(t, ignore_errors=True)
        print(f"propagation {b}: api p50 {pct(r['api_ms'], 50):.2f} subs p99 "
              f"{pct(r['sub_ms'], 99):.2f} deny p99 {pct(r['deny_ms'], 99):.2f} ms", file=sys.stderr)
    lines = [f"**Switch propagation**: {a.subscribers} SSE subscribers on `GET /v1/switches/stream`; "
             f"a block switch set with `POST /v1/switches`, {a.reps} repetitions (cleared between "
             f"them); {a.switches} switches and {a.caps} caps in place. Times from just before the "
             f"request is sent. `klaxon stop`: {min(a.reps, 10)} repetitions, the CLI's start-up "
             f"included.", "",
             "| setup | POST /v1/switches p50 / p99 | every subscriber has it: p50 / p99 / max "
             "(all deliveries) | per-repetition p99: median / worst | first deny to a polling "
             "client: p50 / p99 / max | `klaxon stop`: wall p50; subscribers p50 / p99 | missed |",
             "|---|---|---|---|---|---|---|"]
    names = {"sqlite": "SQLite, one daemon", "postgres-2":
             "PostgreSQL, two daemons: stop on A, subscribers and poller on B"}
    for b in backends:
        r = res[b]
        lines.append(
            f"| {names.get(b, b)} | {pct(r['api_ms'], 50):.2f} / {pct(r['api_ms'], 99):.2f} ms | "
            f"{pct(r['sub_ms'], 50):.2f} / {pct(r['sub_ms'], 99):.2f} / {max(r['sub_ms'] or [0]):.2f} ms | "
            f"{med(r['rep_p99']) if r['rep_p99'] else float('nan'):.2f} / "
            f"{max(r['rep_p99'] or [0]):.2f} ms | "
            f"{pct(r['deny_ms'], 50):.2f} / {pct(r['deny_ms'], 99):.2f} / {max(r['deny_ms'] or [0]):.2f} ms | "
            f"{pct(r['cli_wall_ms'], 50):.1f} ms; {pct(r['cli_sub_ms'], 50):.2f} / "
            f"{pct(r['cli_sub_ms'], 99):.2f} ms | {r['missed']} |")
    lines.append("")
    return lines


# ---- main ------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(
        description="Klaxon guardrail benchmarks (audit append, audit query, gate vs nginx, "
                    "switch propagation). Prints a Markdown report.")
    ap.add_argument("build", help="build directory holding klaxond, audit_seed, loadgen")
    ap.add_argument("what", nargs="?", default="all",
                    choices=["all", "append", "query", "gate", "propagation"])
    ap.add_argument("--runs", type=int, default=3, help="runs per figure (median reported)")
    ap.add_argument("--duration", type=int, default=8, help="seconds per load (append, gate)")
    ap.add_argument("--backends", default=None,
                    help="comma list: sqlite,postgres (append default both; query default sqlite)")
    ap.add_argument("--clients", type=int, default=4, help="append: concurrent clients")
    ap.add_argument("--batch", type=int, default=1000, help="append: events per request")
    ap.add_argument("--ceiling-events", type=int, default=200000,
                    help="append: events for the in-process store ceiling (audit_seed)")
    ap.add_argument("--events", type=int, default=10000000, help="query: events in the log")
    ap.add_argument("--pg-events", type=int, default=10000000,
                    help="query: events in the PostgreSQL log")
    ap.add_argument("--accounts", type=int, default=10000, help="query: distinct accounts")
    ap.add_argument("--queries", type=int, default=200, help="query: queries per run")
    ap.add_argument("--cache", help="query: where seeded databases are kept "
                                    "(default bench/results/audit-db)")
    ap.add_argument("--switches", type=int, default=100, help="gate: switches in place")
    ap.add_argument("--caps", type=int, default=1000, help="gate: caps in place")
    ap.add_argument("--subscribers", type=int, default=100, help="propagation: SSE subscribers")
    ap.add_argument("--reps", type=int, default=30, help="propagation: repetitions")
    ap.add_argument("--wait-endpoints", type=int, default=0,
                    help="gate, propagation: seconds to keep polling for the gate endpoints")
    ap.add_argument("--out", help="also write the report to this file")
    a = ap.parse_args()
    if not os.path.exists(os.path.join(a.build, "klaxond")):
        sys.exit(f"bench_guard: no klaxond in {a.build}")
    what = ["append", "query", "gate", "propagation"] if a.what == "all" else [a.what]
    lines = [machine_line(a.runs), ""]
    backends_arg = a.backends
    pg = None
    try:
        for w in what:
            if w == "append":
                a.backends = backends_arg or "sqlite,postgres"
                if "postgres" in a.backends and not pg:
                    pg = PgServer()
                lines += bench_append(a, pg)
            elif w == "query":
                a.backends = backends_arg or "sqlite"
                lines += bench_query(a, pg)
            elif w == "gate":
                lines += bench_gate(a)
            elif w == "propagation":
                a.backends = backends_arg or "sqlite,postgres-2"
                if "postgres" in a.backends and not pg:
                    pg = PgServer()
                lines += bench_propagation(a, pg)
    finally:
        if pg:
            pg.stop()
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
