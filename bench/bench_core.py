#!/usr/bin/env python3
"""Core benchmark: klaxond start-up time, idle RSS, and declare/update
throughput and latency through the HTTP API (wrk on loopback).

Every figure is the median of RUNS runs. Usage:
    bench/bench_core.py BUILD_DIR [--runs 3] [--duration 10] [--out FILE]
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
THREADS = ["--threads", os.environ["KX_BENCH_THREADS"]] if os.environ.get("KX_BENCH_THREADS") else []


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


class Daemon:
    def __init__(self, klaxond, data_dir, extra=(), token=None):
        self.port = free_port()
        self.data_dir = data_dir
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [klaxond, "--listen", f"127.0.0.1:{self.port}", "--data-dir", data_dir, "--quiet", *THREADS,
             *extra],
            stdout=subprocess.DEVNULL,
            stderr=open(os.environ["KX_BENCH_LOG"], "a") if os.environ.get("KX_BENCH_LOG")
            else subprocess.DEVNULL)
        deadline = t0 + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.05).close()
                break
            except OSError:
                if time.perf_counter() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("klaxond did not start")
                time.sleep(0.0005)
        self.startup_ms = (time.perf_counter() - t0) * 1000
        if token:
            self.token = token
        else:
            with open(os.path.join(data_dir, "admin.token")) as f:
                self.token = f.read().strip()

    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def post(self, path, body):
        req = urllib.request.Request(self.url() + path, data=json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + self.token})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wrk(daemon, script, conns, duration, env=None):
    e = dict(os.environ, KLAXON_TOKEN=daemon.token, **(env or {}))
    out = subprocess.run(
        ["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{duration}s", "-s", os.path.join(HERE, script),
         daemon.url()], env=e, capture_output=True, text=True, timeout=duration + 60).stdout
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
    raise RuntimeError("wrk printed no result:\n" + out)


def med(values):
    return statistics.median(values)


def wrk_many(daemons, script, conns, duration, env=None):
    """One wrk per daemon, run together; the rates add up, latency is the
    worst daemon's."""
    import threading
    results = [None] * len(daemons)

    def one(i):
        results[i] = wrk(daemons[i], script, max(1, conns // len(daemons)), duration, env)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(daemons))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"rps": sum(r["rps"] for r in results),
            "p50_us": max(r["p50_us"] for r in results),
            "p99_us": max(r["p99_us"] for r in results),
            "errors": sum(r["errors"] for r in results)}


class PgServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="kxbench-pg-")
        script = os.path.join(HERE, "..", "scripts", "pg-test-server")
        r = subprocess.run([script, "start", self.dir], capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            raise RuntimeError("cannot start PostgreSQL: " + r.stderr)
        self.script = script
        self.url = r.stdout.strip().splitlines()[-1]

    def new_db(self):
        import uuid
        name = "kxb_" + uuid.uuid4().hex[:12]
        subprocess.run(["psql", self.url, "-q", "-c", "CREATE DATABASE " + name], check=True,
                       capture_output=True, timeout=60)
        head = self.url.rsplit("/", 1)[0]
        return head + "/" + name

    def stop(self):
        subprocess.run([self.script, "stop", self.dir], capture_output=True, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def load_rows(add, daemons, duration):
    """Declare and update load against daemons (a list sharing one store)."""
    r = wrk_many(daemons, "declare.lua", len(daemons), max(3, duration // 2))
    for k in ("rps", "p50_us", "p99_us", "errors"):
        add("declare_c1_" + k, r[k])
    r = wrk_many(daemons, "declare.lua", 16, duration)
    for k in ("rps", "p50_us", "p99_us", "errors"):
        add("declare_c16_" + k, r[k])
    ids = [daemons[0].post("/v1/incidents", {"title": f"update target {i}", "severity": "P2"})["id"]
           for i in range(100)]
    env = {"KX_BENCH_IDS": ",".join(ids)}
    r = wrk_many(daemons, "update.lua", len(daemons), max(3, duration // 2), env)
    for k in ("rps", "p50_us", "p99_us", "errors"):
        add("update_c1_" + k, r[k])
    r = wrk_many(daemons, "update.lua", 16, duration, env)
    for k in ("rps", "p50_us", "p99_us", "errors"):
        add("update_c16_" + k, r[k])


def load_table(title, rows, ndaemons):
    m = {k: med(v) for k, v in rows.items()}
    lines = [f"**{title}**", "", "| load | median | runs (req/s; p99 ms) |", "|---|---|---|"]
    for kind, label in (("declare", "declare (POST /v1/incidents)"),
                        ("update", "update (note / impact on 100 incidents)")):
        for c in (1, 16):
            k = f"{kind}_c{c}"
            conns = max(c, ndaemons) if c == 1 else c
            lines.append(
                f"| {label}, {conns} connection{'s' if conns > 1 else ''} | "
                f"{m[k + '_rps']:.0f} req/s, p50 {m[k + '_p50_us'] / 1000:.2f} ms, "
                f"p99 {m[k + '_p99_us'] / 1000:.2f} ms, errors {m[k + '_errors']:.0f} | "
                f"{', '.join(f'{v:.0f}' for v in rows[k + '_rps'])}; "
                f"{', '.join(f'{v / 1000:.2f}' for v in rows[k + '_p99_us'])} |")
    return lines


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--backends", default="sqlite,postgres,postgres-2",
                    help="comma list of sqlite, postgres, postgres-2 (two daemons)")
    ap.add_argument("--out")
    a = ap.parse_args()
    klaxond = os.path.join(a.build, "klaxond")
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (run scripts/setup)")
    backends = a.backends.split(",")

    start_rows, load = {}, {b: {} for b in backends}

    def adder(table):
        return lambda name, value: table.setdefault(name, []).append(value)

    add_start = adder(start_rows)
    pg = PgServer() if any(b.startswith("postgres") for b in backends) else None
    try:
        for run in range(a.runs):
            for b in backends:
                tmp = tempfile.mkdtemp(prefix="kxbench-")
                tmp2 = tempfile.mkdtemp(prefix="kxbench-")
                daemons = []
                try:
                    extra = [] if b == "sqlite" else ["--db", pg.new_db()]
                    d = Daemon(klaxond, tmp, extra)
                    if b == "sqlite":
                        add_start("startup_cold_ms", d.startup_ms)
                        time.sleep(0.5)
                        add_start("idle_rss_kib", rss_kib(d.proc.pid))
                        d.stop()
                        d = Daemon(klaxond, tmp, extra)
                        add_start("startup_warm_ms", d.startup_ms)
                    daemons.append(d)
                    if b == "postgres-2":
                        daemons.append(Daemon(klaxond, tmp2, extra, token=d.token))
                    load_rows(adder(load[b]), daemons, a.duration)
                    if b == "sqlite":
                        add_start("rss_after_load_kib", rss_kib(d.proc.pid))
                finally:
                    for d in daemons:
                        d.stop()
                    shutil.rmtree(tmp, ignore_errors=True)
                    shutil.rmtree(tmp2, ignore_errors=True)
    finally:
        if pg:
            pg.stop()

    lines = [
        f"Machine: {os.cpu_count()} cores, "
        f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB; "
        f"loopback, wrk on the same cores; median of {a.runs} runs; durable commits "
        f"(SQLite synchronous=FULL, PostgreSQL fsync=on).", ""]
    if "startup_cold_ms" in start_rows:
        m = {k: med(v) for k, v in start_rows.items()}
        lines += [
            "| measure (SQLite) | median | runs |", "|---|---|---|",
            f"| start-up, empty data dir (exec → port accepts) | {m['startup_cold_ms']:.1f} ms | "
            f"{', '.join(f'{v:.1f}' for v in start_rows['startup_cold_ms'])} |",
            f"| start-up, existing database | {m['startup_warm_ms']:.1f} ms | "
            f"{', '.join(f'{v:.1f}' for v in start_rows['startup_warm_ms'])} |",
            f"| idle RSS after start | {m['idle_rss_kib'] / 1024:.1f} MiB | "
            f"{', '.join(f'{v / 1024:.1f}' for v in start_rows['idle_rss_kib'])} |",
            f"| RSS after the load below | {m['rss_after_load_kib'] / 1024:.1f} MiB | "
            f"{', '.join(f'{v / 1024:.1f}' for v in start_rows['rss_after_load_kib'])} |", ""]
    titles = {"sqlite": "SQLite, one daemon", "postgres": "PostgreSQL, one daemon",
              "postgres-2": "PostgreSQL, two daemons (load split evenly, rates summed)"}
    for b in backends:
        lines += load_table(titles[b], load[b], 2 if b == "postgres-2" else 1) + [""]
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
