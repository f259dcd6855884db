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
    def __init__(self, klaxond, data_dir, extra=()):
        self.port = free_port()
        self.data_dir = data_dir
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            [klaxond, "--listen", f"127.0.0.1:{self.port}", "--data-dir", data_dir, "--quiet",
             *extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--out")
    a = ap.parse_args()
    klaxond = os.path.join(a.build, "klaxond")
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (run scripts/setup)")

    rows = {}

    def add(name, value):
        rows.setdefault(name, []).append(value)

    for run in range(a.runs):
        tmp = tempfile.mkdtemp(prefix="kxbench-")
        try:
            d = Daemon(klaxond, tmp)  # cold: creates the database and the admin token
            add("startup_cold_ms", d.startup_ms)
            time.sleep(0.5)
            add("idle_rss_kib", rss_kib(d.proc.pid))
            d.stop()
            d = Daemon(klaxond, tmp)  # warm: existing database
            add("startup_warm_ms", d.startup_ms)
            add("idle_rss_warm_kib", rss_kib(d.proc.pid))

            r = wrk(d, "declare.lua", 1, max(3, a.duration // 2))
            add("declare_c1_rps", r["rps"]); add("declare_c1_p50_us", r["p50_us"])
            add("declare_c1_p99_us", r["p99_us"]); add("declare_c1_errors", r["errors"])
            r = wrk(d, "declare.lua", 16, a.duration)
            add("declare_c16_rps", r["rps"]); add("declare_c16_p50_us", r["p50_us"])
            add("declare_c16_p99_us", r["p99_us"]); add("declare_c16_errors", r["errors"])

            ids = [d.post("/v1/incidents", {"title": f"update target {i}", "severity": "P2"})["id"]
                   for i in range(100)]
            env = {"KX_BENCH_IDS": ",".join(ids)}
            r = wrk(d, "update.lua", 1, max(3, a.duration // 2), env)
            add("update_c1_rps", r["rps"]); add("update_c1_p50_us", r["p50_us"])
            add("update_c1_p99_us", r["p99_us"]); add("update_c1_errors", r["errors"])
            r = wrk(d, "update.lua", 16, a.duration, env)
            add("update_c16_rps", r["rps"]); add("update_c16_p50_us", r["p50_us"])
            add("update_c16_p99_us", r["p99_us"]); add("update_c16_errors", r["errors"])
            add("rss_after_load_kib", rss_kib(d.proc.pid))
            d.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    m = {k: med(v) for k, v in rows.items()}
    lines = [
        f"Machine: {os.cpu_count()} cores, {round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB; "
        f"loopback, wrk -t2 on the same cores; median of {a.runs} runs; SQLite store, synchronous=FULL.",
        "",
        "| measure | median | runs |",
        "|---|---|---|",
        f"| start-up, empty data dir (exec → port accepts) | {m['startup_cold_ms']:.1f} ms | {', '.join(f'{v:.1f}' for v in rows['startup_cold_ms'])} |",
        f"| start-up, existing database | {m['startup_warm_ms']:.1f} ms | {', '.join(f'{v:.1f}' for v in rows['startup_warm_ms'])} |",
        f"| idle RSS after start | {m['idle_rss_kib'] / 1024:.1f} MiB | {', '.join(f'{v / 1024:.1f}' for v in rows['idle_rss_kib'])} |",
        f"| RSS after the load below | {m['rss_after_load_kib'] / 1024:.1f} MiB | {', '.join(f'{v / 1024:.1f}' for v in rows['rss_after_load_kib'])} |",
    ]
    for kind, label in (("declare", "declare (POST /v1/incidents)"),
                        ("update", "update (note / impact on 100 incidents)")):
        for c in (1, 16):
            k = f"{kind}_c{c}"
            lines.append(
                f"| {label}, {c} connection{'s' if c > 1 else ''} | {m[k + '_rps']:.0f} req/s, "
                f"p50 {m[k + '_p50_us'] / 1000:.2f} ms, p99 {m[k + '_p99_us'] / 1000:.2f} ms, "
                f"errors {m[k + '_errors']:.0f} | "
                f"{', '.join(f'{v:.0f}' for v in rows[k + '_rps'])} req/s; p99 "
                f"{', '.join(f'{v / 1000:.2f}' for v in rows[k + '_p99_us'])} ms |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
