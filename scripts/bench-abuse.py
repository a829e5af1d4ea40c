#!/usr/bin/env python3
"""Abuse bench: does a flood of hostile requests grow the server or slow it for others?

Starts `lariat serve` on loopback over a fresh data dir holding the sample corpus, measures its
RSS and search latency, then sends 10,000 sign-in attempts with distinct large e-mail addresses
and 1,000 sign-ups from one address, and measures again. Prints a JSON report; exits 1 when RSS
grew by more than --max-growth-mb or search p50 more than doubled.

    python3 scripts/bench-abuse.py [--lariat target/debug/lariat] [--signins 10000] [--signups 1000]
"""

import argparse
import concurrent.futures
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def call(base, method, path, body=None, token=None, timeout=30, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def rss_mb(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def search_latency(base, token, n=40):
    queries = ["how long is a heel rope", "bull riding score", "barrel pattern penalty",
               "arena safety rules", "steer wrestling time"]
    times = []
    for i in range(n):
        q = urllib.request.quote(queries[i % len(queries)])
        started = time.perf_counter()
        status, _ = call(base, "GET", f"/api/search?q={q}&k=5", token=token)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return {"p50_ms": round(statistics.median(times), 2),
            "p95_ms": round(sorted(times)[int(len(times) * 0.95) - 1], 2)}


def flood(base, requests, workers=16):
    statuses = {}
    lock = threading.Lock()

    def one(args):
        path, body, headers = args
        status, _ = call(base, "POST", path, body, headers=headers)
        with lock:
            statuses[status] = statuses.get(status, 0) + 1

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, requests))
    return {"seconds": round(time.perf_counter() - started, 1),
            "statuses": {str(k): v for k, v in sorted(statuses.items())}}


def main():
    ap = argparse.ArgumentParser()
    default_bin = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug" / "lariat"
    ap.add_argument("--lariat", default=str(default_bin))
    ap.add_argument("--signins", type=int, default=10_000)
    ap.add_argument("--signups", type=int, default=1_000)
    ap.add_argument("--key-bytes", type=int, default=8_000, help="length of each e-mail address")
    ap.add_argument("--max-growth-mb", type=float, default=50.0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = pathlib.Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LARIAT_") or k == "LARIAT_ASSETS_DIR"}
        run = lambda *a, **kw: subprocess.run([args.lariat, "--data-dir", str(data), *a], env=env,
                                             check=True, capture_output=True, **kw)
        run("ingest", str(ROOT / "deploy/domains/rodeo/corpus"), "--collection", "rodeo")
        run("admin", "create", "admin@example.com", input=(PASSWORD + "\n").encode())
        server = subprocess.Popen([args.lariat, "--data-dir", str(data), "serve", "--addr", "127.0.0.1:0"],
                                  env={**env, "LARIAT_PLANS__TEAM__REQUESTS_PER_MINUTE": "100000",
                                       "LARIAT_SERVER__TRUSTED_PROXIES": '["127.0.0.1"]'},
                                  stderr=subprocess.PIPE, text=True)
        try:
            base = None
            for line in server.stderr:
                if "listening on " in line:
                    base = line.split("listening on ")[1].strip()
                    break
            threading.Thread(target=lambda: [None for _ in server.stderr], daemon=True).start()
            status, body = call(base, "POST", "/api/auth/signin",
                                {"email": "admin@example.com", "password": PASSWORD})
            token = json.loads(body)["access_token"]
            # a plan whose rate limit does not get in the way of the latency probe
            me = json.loads(call(base, "GET", "/api/auth/me", token=token)[1])["user"]["id"]
            call(base, "PATCH", f"/api/admin/users/{me}", {"plan": "team"}, token=token)
            search_latency(base, token, 10)  # warm up
            before = {"rss_mb": round(rss_mb(server.pid), 1), **search_latency(base, token)}

            # each sign-in from its own address (a trusted proxy forwards them), so both the
            # per-address and the per-account limits meet a key they have never seen
            pad = "a" * max(1, args.key_bytes - 40)
            signins = flood(base, [("/api/auth/signin",
                                    {"email": f"{i}-{pad}@example.com", "password": "not the password"},
                                    {"x-forwarded-for": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"})
                                   for i in range(args.signins)])
            signups = flood(base, [("/api/auth/signup",
                                    {"email": f"flood{i}@example.com", "password": PASSWORD}, None)
                                   for i in range(args.signups)])
            after = {"rss_mb": round(rss_mb(server.pid), 1), **search_latency(base, token)}
        finally:
            server.terminate()
            server.wait(timeout=30)

    growth = round(after["rss_mb"] - before["rss_mb"], 1)
    report = {"before": before, "after": after, "rss_growth_mb": growth,
              "signins": {"attempts": args.signins, "key_bytes": args.key_bytes, **signins},
              "signups": {"attempts": args.signups, **signups}}
    print(json.dumps(report, indent=2))
    ok = growth <= args.max_growth_mb and after["p50_ms"] <= 2 * before["p50_ms"] + 5
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
