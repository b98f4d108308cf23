#!/usr/bin/env python3
"""Writes the sample results the report tests render: resilient.json (every
scenario passes) and fragile.json (FAIL, INCONCLUSIVE and ERROR scenarios),
both following docs/result.md, plus truncated.json and foreign.json.

The figures are what the example services (scenarios/services/) do under
each fault, shaped per second; they are fixed by a seeded generator so the
files only change when this script does. Run from anywhere:
    python3 tests/data/results/make_samples.py
"""
import json
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
PHASES = [
    {"name": "steady", "start": 0.0, "end": 3.0},
    {"name": "outage", "start": 3.0, "end": 8.0},
    {"name": "recovery", "start": 8.0, "end": 13.0},
]
SECONDS = 13


def phase_of(t):
    return "steady" if t < 3 else "outage" if t < 8 else "recovery"


def second(rng, t, rate, shape):
    """One series entry: shape(t) gives the mix and the latency band."""
    mix, lat = shape(t)
    counts = {"2xx": 0, "3xx": 0, "4xx": 0, "5xx": 0, "error": 0}
    left = rate
    for cls, share in mix.items():
        n = min(left, round(rate * share))
        counts[cls] += n
        left -= n
    counts[list(mix)[0]] += left
    e = {"t": t, "requests": rate}
    e.update(counts)
    if lat is None:
        e.update({"p50": None, "p95": None, "p99": None, "max": None})
    else:
        base = lat * (0.9 + 0.2 * rng.random())
        e.update({"p50": round(base, 4), "p95": round(base * 1.8, 4),
                  "p99": round(base * 2.6, 4), "max": round(base * 3.1, 4)})
    return e


def endpoint(rng, name, method, path, rate, shape, timeout=2.0):
    series = [second(rng, t, rate, shape) for t in range(SECONDS)]
    return {"name": name, "method": method, "path": path, "rate": rate,
            "timeout": timeout, "requests": rate * SECONDS, "series": series}


def target_series(rng, fds, rss, leak=0):
    out = []
    for t in range(SECONDS):
        grow = leak * max(0, t - 3) if leak else 0
        out.append({"t": t, "fds": fds + grow + rng.randint(0, 1),
                    "rss_kb": rss + 37 * t + 900 * bool(leak) * max(0, t - 3)})
    return out


def exp(phase, ep, text, expected, observed, verdict):
    return {"phase": phase, "endpoint": ep, "text": text,
            "expected": expected, "observed": observed, "verdict": verdict}


def fault(name, kind, spec, dep, on, off, matched, delivered):
    return {"name": name, "kind": kind, "spec": spec, "dependency": dep,
            "phase": "outage", "on": on, "off": off,
            "matched": matched, "delivered": delivered}


def static_ok(t):
    return {"2xx": 1.0}, 0.0012


def scenario(name, svc, verdict, reason, started, duration, setup, desc,
             faults, endpoints, expectations, target, injections,
             phases=PHASES):
    return {
        "name": name,
        "file": "scenarios/%s.yaml" % name,
        "description": desc,
        "service": {"name": svc,
                    "file": "scenarios/services/%s.yaml" % svc},
        "verdict": verdict, "reason": reason, "started": started,
        "duration": duration, "setup": setup, "seed": 1,
        "phases": phases, "faults": faults, "endpoints": endpoints,
        "expectations": expectations, "target": target,
        "injections": injections,
    }


def target(pid, series, log_tail, exit_=None, restarts=0, name="x"):
    return {"command": "/usr/bin/python3 -m uvicorn app:app --host "
                       "127.0.0.1 --port 40111 --no-access-log",
            "pid": pid, "exit": exit_, "restarts": restarts,
            "series": series, "log": "out/%s/target.log" % name,
            "log_tail": log_tail}


def injections(t0, pid, op, err, n, step):
    return [{"t": round(t0 + i * step, 3), "pid": pid, "op": op, "rule": 1,
             "error": err} for i in range(n)]


def suite(scenarios, started):
    counts = {"PASS": 0, "FAIL": 0, "INCONCLUSIVE": 0, "ERROR": 0}
    for s in scenarios:
        counts[s["verdict"]] += 1
    order = ["ERROR", "FAIL", "INCONCLUSIVE", "PASS"]
    verdict = next(v for v in order if counts[v] > 0)
    return {"format": "faultline-result", "version": 1,
            "faultline": "0.1.0", "started": started,
            "duration": round(sum(s["duration"] + s["setup"]
                                  for s in scenarios), 1),
            "verdict": verdict, "counts": counts, "scenarios": scenarios}


DB_DOWN = ("PostgreSQL resets every connection for five seconds. "
           "Guardrail: database calls bounded, 503 with Retry-After, "
           "recovery within 3 s.")
REDIS = ("Redis stops answering (a proxy blackholes it). Guardrail: Redis "
         "bounded to 0.3 s and skipped after a failure; profiles fall back "
         "to the local cache and the database.")
DISK = ("Uploads hit ENOSPC. Guardrail: 507 with Retry-After, no partial "
        "file, earlier uploads intact.")
START = ("The service starts while PostgreSQL refuses connections. "
         "Guardrail: lazy pool; liveness 200, readiness 503 until the "
         "database is back.")


def resilient():
    rng = random.Random(1)
    pg = "127.0.0.1:40123"

    def items(t):
        if phase_of(t) == "outage":
            return ({"5xx": 1.0}, 0.0021) if t > 3 else \
                ({"5xx": 0.85, "2xx": 0.15}, 0.41)
        return {"2xx": 1.0}, 0.0042
    db = scenario(
        "db-down", "resilient", "PASS", "all 6 expectations held",
        "2026-11-23T10:00:00Z", 13.2, 3.9, DB_DOWN,
        [fault("reset postgres", "shim", "reset@%s" % pg, "postgres",
               3.001, 8.002, 184, 181)],
        [endpoint(rng, "items", "GET", "/api/items", 20, items),
         endpoint(rng, "static", "GET", "/api/static", 10, static_ok)],
        [exp("steady", "items", "rate(2xx) >= 99%", ">= 99%",
             "100% (60 of 60)", "PASS"),
         exp("outage", "items", "rate(503) >= 95%", ">= 95%",
             "97.0% (97 of 100)", "PASS"),
         exp("outage", "items", "header(Retry-After) on 503",
             "a valid Retry-After on every 503", "present on 97 of 97",
             "PASS"),
         exp("outage", "items", "p99 <= 1.2s", "<= 1.2 s", "1.07 s",
             "PASS"),
         exp("recovery", "items", "rate(2xx) >= 99% within 3s",
             ">= 99% from t=11s", "100% from t=9s", "PASS"),
         exp("always", "static", "rate(2xx) == 100%", "100%",
             "100% (130 of 130)", "PASS")],
        target(24101, target_series(rng, 23, 41234),
               "INFO:     Started server process [24101]\n"
               "INFO:     Application startup complete.\n", name="db-down"),
        injections(3.004, 24101, "recv", "ECONNRESET", 6, 0.8))

    def profile(t):
        return {"2xx": 1.0}, (0.31 if t == 3 else 0.0031 if 3 < t < 8
                              else 0.0018)
    redis = scenario(
        "redis-stall", "resilient", "PASS", "all 4 expectations held",
        "2026-11-23T10:00:21Z", 13.1, 2.2, REDIS,
        [fault("blackhole redis", "proxy",
               "blackhole 127.0.0.1:40201 -> 127.0.0.1:6379", "redis",
               3.0, 8.001, 14, 14)],
        [endpoint(rng, "profile", "GET", "/api/profile/1", 20, profile)],
        [exp("outage", "profile", "rate(2xx) >= 99%", ">= 99%",
             "100% (100 of 100)", "PASS"),
         exp("outage", "profile", "p99 <= 500ms", "<= 500 ms", "312 ms",
             "PASS"),
         exp("always", None, "no restart", "0 restarts", "0 restarts",
             "PASS"),
         exp("always", None, "fds <= 64", "<= 64", "at most 27", "PASS")],
        target(24388, target_series(rng, 25, 43010),
               "INFO:     Application startup complete.\n",
               name="redis-stall"), [])

    def upload(t):
        if phase_of(t) == "outage":
            return {"5xx": 1.0}, 0.0051
        return {"2xx": 1.0}, 0.0062
    disk = scenario(
        "disk-full", "resilient", "PASS", "all 3 expectations held",
        "2026-11-23T10:00:38Z", 13.0, 2.1, DISK,
        [fault("disk full", "shim", "enospc@/tmp/fl-data-*/uploads/*",
               None, 3.0, 8.0, 50, 50)],
        [endpoint(rng, "upload", "POST", "/api/upload", 10, upload)],
        [exp("outage", "upload", "rate(507) == 100%", "100%",
             "100% (50 of 50)", "PASS"),
         exp("outage", "upload", "header(Retry-After) on 507",
             "a valid Retry-After on every 507", "present on 50 of 50",
             "PASS"),
         exp("always", None, "no partial files", "0 partial files",
             "0 partial files", "PASS")],
        target(24521, target_series(rng, 22, 40112),
               "INFO:     Application startup complete.\n",
               name="disk-full"),
        injections(3.01, 24521, "write", "ENOSPC", 8, 0.6))
    return suite([db, redis, disk], "2026-11-23T10:00:00Z")


def fragile():
    rng = random.Random(2)
    pg = "127.0.0.1:40123"

    def items(t):
        if t < 3:
            return {"2xx": 1.0}, 0.0051
        return {"5xx": 1.0}, (0.012 if t < 8 else 0.0094)
    log = ("INFO:     Started server process [31337]\n"
           "ERROR:    Exception in ASGI application\n"
           "Traceback (most recent call last):\n"
           '  File "/srv/fragile/app.py", line 73, in list_items\n'
           '    rows = await pool.fetch("SELECT id, name FROM items '
           'WHERE name <> \'\' & id > 0")\n'
           "asyncpg.exceptions.ConnectionDoesNotExistError: connection was "
           "closed in the middle of operation\n"
           "\u001b[31mERROR\u001b[0m:    <script>alert('x')</script> "
           "]]> \"quoted\" & done\n")
    db = scenario(
        "db-down", "fragile", "FAIL", "3 of 6 expectations failed",
        "2026-11-23T11:00:00Z", 13.3, 4.2, DB_DOWN,
        [fault("reset postgres", "shim", "reset@%s" % pg, "postgres",
               3.002, 8.001, 212, 10)],
        [endpoint(rng, "items", "GET", "/api/items", 20, items),
         endpoint(rng, "static", "GET", "/api/static", 10, static_ok)],
        [exp("steady", "items", "rate(2xx) >= 99%", ">= 99%",
             "100% (60 of 60)", "PASS"),
         exp("outage", "items", "rate(503) >= 95%", ">= 95%",
             "0.0% (0 of 100): 100 answered 500", "FAIL"),
         exp("outage", "items", "header(Retry-After) on 503",
             "a valid Retry-After on every 503",
             "no 503 to check (100 answered 500)", "PASS"),
         exp("outage", "items", "body !~ /Traceback|asyncpg|<html>/",
             "no exception text | host | SQL",
             "matched 'asyncpg' in 100 of 100 bodies", "FAIL"),
         exp("recovery", "items", "rate(2xx) >= 99% within 3s",
             ">= 99% from t=11s", "0.0% (0 of 100): still 500 at t=12s",
             "FAIL"),
         exp("always", "static", "rate(2xx) == 100%", "100%",
             "100% (130 of 130)", "PASS")],
        target(31337, target_series(rng, 31, 52011, leak=2), log,
               name="db-down"),
        injections(3.006, 31337, "recv", "ECONNRESET", 10, 0.4))

    def profile(t):
        if 3 <= t < 8:
            return ({"error": 1.0}, None) if t > 3 else \
                ({"error": 0.8, "2xx": 0.2}, 1.95)
        return {"2xx": 1.0}, 0.0019
    redis = scenario(
        "redis-stall", "fragile", "FAIL", "2 of 4 expectations failed",
        "2026-11-23T11:00:22Z", 15.1, 2.3, REDIS,
        [fault("blackhole redis", "proxy",
               "blackhole 127.0.0.1:40201 -> 127.0.0.1:6379", "redis",
               3.0, 8.0, 96, 96)],
        [endpoint(rng, "profile", "GET", "/api/profile/1", 20, profile)],
        [exp("outage", "profile", "rate(2xx) >= 99%", ">= 99%",
             "3.0% (3 of 100): 97 timed out after 2.0 s", "FAIL"),
         exp("outage", "profile", "p99 <= 500ms", "<= 500 ms",
             "2.0 s (client timeout)", "FAIL"),
         exp("always", None, "no restart", "0 restarts", "0 restarts",
             "PASS"),
         exp("always", None, "fds <= 64", "<= 64", "at most 58", "PASS")],
        target(31502, target_series(rng, 26, 44800, leak=5),
               "INFO:     Application startup complete.\n"
               "redis.exceptions.TimeoutError: Timeout reading from "
               "127.0.0.1:40201\n", name="redis-stall"), [])

    def upload(t):
        return {"2xx": 1.0}, 0.0071
    disk = scenario(
        "disk-full", "fragile", "INCONCLUSIVE",
        "fault 'disk full' was never delivered: nothing was proven",
        "2026-11-23T11:00:40Z", 13.0, 2.0, DISK,
        [fault("disk full", "shim", "enospc@/var/tmp/uploads/*", None,
               3.0, 8.0, 0, 0)],
        [endpoint(rng, "upload", "POST", "/api/upload", 10, upload)],
        [exp("outage", "upload", "rate(507) == 100%", "100%",
             "0.0% (0 of 50): 50 answered 201", "FAIL"),
         exp("always", None, "no partial files", "0 partial files",
             "0 partial files", "PASS")],
        target(31650, target_series(rng, 22, 40990),
               "INFO:     Application startup complete.\n",
               name="disk-full"), [])
    start = scenario(
        "db-down-at-start", "fragile", "ERROR",
        "the target exited with status 3 before it was ready "
        "(see out/db-down-at-start/target.log)",
        "2026-11-23T11:00:55Z", 1.4, 1.4, START,
        [fault("refuse postgres", "shim", "refuse@%s" % pg, "postgres",
               0.0, None, 1, 1)],
        [], [],
        target(31777, [],
               "INFO:     Waiting for application startup.\n"
               "ERROR:    Traceback (most recent call last):\n"
               "ConnectionRefusedError: [Errno 111] Connect call failed "
               "('127.0.0.1', 40123)\n"
               "ERROR:    Application startup failed. Exiting.\n",
               exit_={"code": 3}, name="db-down-at-start"),
        injections(0.05, 31777, "connect", "ECONNREFUSED", 1, 0),
        phases=[])
    return suite([db, redis, disk, start], "2026-11-23T11:00:00Z")


def write(name, doc):
    with open(os.path.join(HERE, name), "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")


write("resilient.json", resilient())
write("fragile.json", fragile())
# A run cut short while writing, and somebody else's JSON.
with open(os.path.join(HERE, "fragile.json")) as f:
    text = f.read()
with open(os.path.join(HERE, "truncated.json"), "w") as f:
    f.write(text[: len(text) * 2 // 5])
write("foreign.json", {"name": "faultline", "version": "1.0.0",
                       "dependencies": {"left-pad": "^1.3.0"}})
