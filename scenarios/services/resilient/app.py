"""The resilient example service: every dependency call is bounded and fails
soft.

Guardrails (each one is what some scenario in scenarios/ checks):
- liveness (/health) touches no dependency, so a database outage does not get
  the process killed;
- readiness (/health/ready) pings the database with a short timeout and says
  503 while it is down;
- every database call is bounded end to end (connect, pool acquire, query,
  release) and a failure answers 503 with Retry-After and a JSON body that
  names no internals;
- a circuit breaker stops hammering a database that keeps failing, and its
  half-open trial lets the service recover by itself;
- a server that says it is going away or full (57P01 admin shutdown, 57P03
  starting up, 53300 too many clients, or a session it closed) makes the pool
  be rebuilt at once: its other sessions are as good as gone, so the next
  call reconnects instead of meeting them one by one;
- the pool is created lazily (min_size=0), so the service starts with the
  database down, and it is thrown away and rebuilt when the breaker opens, so
  a pool of dead connections cannot stay broken;
- Redis has a short timeout, no retries and a short back-off after a failure,
  and the profile cache falls back to a bounded in-process cache, saying
  so: X-Cache is hit, miss, or degraded while Redis is unreachable;
- uploads go to a temporary file renamed into place, so a full or failing
  disk never leaves a partial file; the answer is 507 (or 503) with
  Retry-After.

Run with Debian's interpreter (it sees python3-fastapi and friends):
  DATABASE_URL=... REDIS_URL=... DATA_DIR=... \
    /usr/bin/python3 -m uvicorn app:app --port 8000
"""

import asyncio
import collections
import concurrent.futures
import errno
import json
import logging
import math
import os
import time
import uuid

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel


def env_float(name, default):
    return float(os.environ.get(name, default))


DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql://faultline:faultline@127.0.0.1:5432/faultline")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATA_DIR = os.environ.get("DATA_DIR", ".")

# The bounds. A scenario's "latency bounded by the service's timeout" is
# DB_TIMEOUT plus a little; its "recovery within" is BREAKER_RESET plus one
# trial.
DB_TIMEOUT = env_float("DB_TIMEOUT", 1.0)
READY_TIMEOUT = env_float("READY_TIMEOUT", 0.5)
POOL_MAX = int(os.environ.get("POOL_MAX", "5"))
BREAKER_FAILURES = int(os.environ.get("BREAKER_FAILURES", "3"))
BREAKER_RESET = env_float("BREAKER_RESET", 2.0)
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", 0.3)
REDIS_BACKOFF = env_float("REDIS_BACKOFF", 1.0)
CACHE_TTL = env_float("CACHE_TTL", 30.0)
CACHE_MAX = 1024
UPLOAD_MAX = 10 * 1024 * 1024
# A full disk is not freed in a second: ask clients to wait a while.
UPLOAD_RETRY_AFTER = 30

# Our own handler, not basicConfig(): a root handler would print uvicorn's
# lines twice.
log = logging.getLogger("resilient")
log.setLevel(logging.INFO)
log.propagate = False
_handler = logging.StreamHandler()
_handler.setFormatter(logging.Formatter("%(asctime)s resilient %(levelname)s %(message)s"))
log.addHandler(_handler)

app = FastAPI(title="resilient")


class Unavailable(Exception):
    """A dependency failed; retry_after is the hint for the client."""

    def __init__(self, what, retry_after):
        super().__init__(what)
        self.what = what
        self.retry_after = retry_after


def unavailable(what, retry_after, status=503):
    return JSONResponse({"error": what}, status_code=status,
                        headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


@app.exception_handler(Unavailable)
async def on_unavailable(request: Request, exc: Unavailable):
    return unavailable(exc.what, exc.retry_after)


class Breaker:
    """Closed, then open after BREAKER_FAILURES consecutive failures; after
    BREAKER_RESET seconds one trial call is let through (half-open), and its
    success closes the breaker while its failure opens it again."""

    def __init__(self, failures, reset):
        self.threshold = failures
        self.reset = reset
        self.failures = 0
        self.opened_at = None
        self.trial = False

    def retry_after(self):
        if self.opened_at is None:
            return self.reset
        return max(1.0, self.opened_at + self.reset - time.monotonic())

    def admit(self):
        """None if the call must not go through, else its ticket: "closed"
        for an ordinary call, "trial" for the one call let through while
        half-open. The ticket goes back to success/failure/abandon, so a
        late failure of a call admitted before the breaker opened cannot be
        taken for the trial's."""
        if self.opened_at is None:
            return "closed"
        if self.trial or time.monotonic() < self.opened_at + self.reset:
            return None
        self.trial = True
        return "trial"

    def success(self, ticket):
        if self.opened_at is not None:
            log.info("breaker closed")
        self.failures = 0
        self.opened_at = None
        self.trial = False

    def abandon(self, ticket):
        """The call was cancelled or hit a bug: neither verdict, but a
        half-open trial must not stay claimed for ever."""
        if ticket == "trial":
            self.trial = False

    def failure(self, ticket):
        """Record a failure; True when this one (re)opens the breaker."""
        self.failures += 1
        reopen = ticket == "trial" or (self.opened_at is None
                                       and self.failures >= self.threshold)
        if ticket == "trial":
            self.trial = False
        if reopen:
            self.opened_at = time.monotonic()
            log.warning("breaker open for %.1fs after %d failures",
                        self.reset, self.failures)
        return reopen


class Database:
    """A lazily created asyncpg pool behind a breaker. run() is the only
    way in, so every call gets the same bound and the same failure mapping."""

    def __init__(self):
        self.pool = None
        self.schema_ready = False
        self.schema_lock = asyncio.Lock()
        self.lock = asyncio.Lock()
        self.breaker = Breaker(BREAKER_FAILURES, BREAKER_RESET)

    async def _get_pool(self):
        async with self.lock:
            if self.pool is None:
                # min_size=0: creating the pool connects nothing, so this
                # cannot fail or block while the database is down. The host
                # is handed to asyncpg as written; it resolves it itself.
                self.pool = await asyncpg.create_pool(
                    DATABASE_URL, min_size=0, max_size=POOL_MAX,
                    timeout=DB_TIMEOUT, command_timeout=DB_TIMEOUT,
                    max_inactive_connection_lifetime=60)
                self.schema_ready = False
            return self.pool

    def _discard_pool(self):
        # terminate() is synchronous: it closes every socket at once without
        # talking to a server that may be hung, and the next call builds a
        # new pool. Calls still running on the old one fail and count as
        # ordinary failures.
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None
            log.warning("database pool discarded")

    async def _ensure_schema(self, conn):
        # Once, by one request at a time: PostgreSQL's CREATE TABLE IF NOT
        # EXISTS is not safe against itself (two at once can both find no
        # table, and one then fails on the catalog's unique index), and the
        # first requests all arrive while the first connection is opening.
        if self.schema_ready:
            return
        async with self.schema_lock:
            if self.schema_ready:
                return
            try:
                await conn.execute("CREATE TABLE IF NOT EXISTS items ("
                                   "id serial PRIMARY KEY, name text NOT NULL)")
            except (asyncpg.UniqueViolationError, asyncpg.DuplicateTableError):
                pass  # made meanwhile by another process: it is there
            self.schema_ready = True

    async def _call(self, fn):
        pool = await self._get_pool()
        conn = await pool.acquire(timeout=DB_TIMEOUT)
        try:
            await self._ensure_schema(conn)
            return await fn(conn)
        except BaseException:
            # A timeout, cancel or reset can leave the connection in the
            # middle of the protocol: close it so release() is immediate and
            # the pool opens a fresh one next time. A connection that the
            # server already dropped has been handed back to the pool by
            # asyncpg, and terminate() says so with an InterfaceError.
            try:
                conn.terminate()
            except asyncpg.InterfaceError:
                pass
            raise
        finally:
            await pool.release(conn)

    async def run(self, fn, timeout=DB_TIMEOUT):
        """Run fn(conn) under the breaker, bounded by timeout as a whole.
        asyncpg bounds each step on its own (acquire with its connect,
        the schema statement, the query, the reset on release) and those
        bounds add up; wait_for bounds the sum, and covers a connect or a
        name look-up that hangs too. Raises Unavailable on any database
        failure."""
        ticket = self.breaker.admit()
        if ticket is None:
            raise Unavailable("database unavailable", self.breaker.retry_after())
        try:
            result = await asyncio.wait_for(self._call(fn), timeout)
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as exc:
            log.warning("database call failed: %s: %s",
                        type(exc).__name__, exc or "timed out")
            if self.breaker.failure(ticket) or isinstance(exc, SERVER_GONE):
                self._discard_pool()
            raise Unavailable("database unavailable",
                              self.breaker.retry_after()) from None
        except BaseException:
            self.breaker.abandon(ticket)
            raise
        self.breaker.success(ticket)
        return result


# Errors after which no pooled session is worth trying again.
SERVER_GONE = (asyncpg.AdminShutdownError, asyncpg.CannotConnectNowError,
               asyncpg.TooManyConnectionsError,
               asyncpg.ConnectionDoesNotExistError)


class LocalCache:
    """A bounded LRU dict whose entries expire after ttl seconds."""

    def __init__(self, size, ttl):
        self.size = size
        self.ttl = ttl
        self.items = collections.OrderedDict()

    def get(self, key):
        hit = self.items.get(key)
        if hit is None or hit[0] < time.monotonic():
            self.items.pop(key, None)
            return None
        self.items.move_to_end(key)
        return hit[1]

    def put(self, key, value):
        self.items[key] = (time.monotonic() + self.ttl, value)
        self.items.move_to_end(key)
        while len(self.items) > self.size:
            self.items.popitem(last=False)


class Cache:
    """Redis with a short timeout, no retry, and a back-off: after a failure
    Redis is skipped for REDIS_BACKOFF seconds so an outage costs each request
    nothing, rather than one timeout each (no retry storm)."""

    def __init__(self):
        # One client for the process: its pool reuses a few connections
        # and closes a broken one, so an outage leaves none behind.
        self.redis = aioredis.from_url(
            REDIS_URL, socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT, retry_on_timeout=False,
            decode_responses=True)
        self.skip_until = 0.0
        self.local = LocalCache(CACHE_MAX, CACHE_TTL)

    async def _redis(self, op):
        """(reached, value): reached is False when Redis was skipped or
        failed, so the caller knows it answered without it."""
        if time.monotonic() < self.skip_until:
            return False, None
        try:
            return True, await op(self.redis)
        except (aioredis.RedisError, OSError, asyncio.TimeoutError) as exc:
            log.warning("redis failed, using the local cache: %s: %s",
                        type(exc).__name__, exc)
            self.skip_until = time.monotonic() + REDIS_BACKOFF
            return False, None

    async def get(self, key):
        """(value, how): how is the X-Cache answer: "hit" from Redis,
        "miss" when Redis has no such key, "degraded" when Redis is
        unreachable and the in-process cache answered (or nothing did and
        the caller falls back to the database)."""
        reached, value = await self._redis(lambda r: r.get(key))
        if value is not None:
            return value, "hit"
        if reached:
            return None, "miss"
        return self.local.get(key), "degraded"

    async def put(self, key, value):
        self.local.put(key, value)
        await self._redis(lambda r: r.set(key, value, ex=int(CACHE_TTL)))


db = Database()
cache = Cache()
# Disk writes run on their own threads so a slow disk blocks neither the
# event loop nor the default executor (which asyncpg uses for DNS look-ups).
disk = concurrent.futures.ThreadPoolExecutor(max_workers=4,
                                             thread_name_prefix="disk")


@app.on_event("startup")
async def startup():
    try:
        os.makedirs(os.path.join(DATA_DIR, "uploads"), exist_ok=True)
    except OSError as exc:
        # Uploads will answer 507/503 until the disk is back; the rest works.
        log.warning("cannot create the uploads folder: %s", exc)

    async def warm():
        try:
            await db.run(lambda c: c.fetchval("SELECT 1"))
            log.info("database reachable at start-up")
        except Unavailable:
            log.warning("database unreachable at start-up; serving anyway")

    # Not awaited: start-up must not wait for, or fail on, the database.
    app.state.warm = asyncio.create_task(warm())


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.get("/health/ready")
async def ready():
    try:
        await db.run(lambda c: c.fetchval("SELECT 1"), timeout=READY_TIMEOUT)
    except Unavailable as exc:
        return JSONResponse({"status": "not ready", "error": exc.what},
                            status_code=503,
                            headers={"Retry-After":
                                     str(max(1, math.ceil(exc.retry_after)))})
    return {"status": "ready"}


@app.get("/api/static")
async def static():
    return {"message": "static content, no dependency"}


class NewItem(BaseModel):
    name: str


@app.get("/api/items")
async def list_items():
    rows = await db.run(lambda c: c.fetch(
        "SELECT id, name FROM items ORDER BY id DESC LIMIT 100"))
    return [dict(r) for r in rows]


@app.post("/api/items", status_code=201)
async def create_item(item: NewItem):
    row = await db.run(lambda c: c.fetchrow(
        "INSERT INTO items (name) VALUES ($1) RETURNING id, name", item.name))
    return dict(row)


@app.get("/api/profile/{profile_id}")
async def profile(profile_id: int):
    key = f"profile:{profile_id}"
    cached, how = await cache.get(key)
    if cached is not None:
        return JSONResponse(json.loads(cached), headers={"X-Cache": how})
    row = await db.run(lambda c: c.fetchrow(
        "SELECT $1::int AS id, (SELECT name FROM items WHERE id = $1) AS name",
        profile_id))
    body = {"id": row["id"], "name": row["name"]}
    await cache.put(key, json.dumps(body))
    return JSONResponse(body, headers={"X-Cache": how})


def write_upload(body):
    """Write body to a temporary file, fsync it and rename it into place:
    the final name appears only for a complete file, and a failure removes
    the temporary one, so earlier uploads and the folder stay intact."""
    folder = os.path.join(DATA_DIR, "uploads")
    os.makedirs(folder, exist_ok=True)
    name = uuid.uuid4().hex
    tmp = os.path.join(folder, f".{name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(body)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, os.path.join(folder, name))
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return name


STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO}


@app.post("/api/upload", status_code=201)
async def upload(request: Request):
    body = await request.body()
    if len(body) > UPLOAD_MAX:
        return JSONResponse({"error": "upload too large"}, status_code=413)
    loop = asyncio.get_running_loop()
    try:
        name = await loop.run_in_executor(disk, write_upload, body)
    except OSError as exc:
        log.warning("upload failed: %s", exc)
        if exc.errno in STORAGE_ERRNOS:
            return unavailable("insufficient storage", UPLOAD_RETRY_AFTER,
                               status=507)
        return unavailable("storage unavailable", UPLOAD_RETRY_AFTER)
    return {"name": name, "size": len(body)}


# ---- payments: an HTTP upstream (the `payments` stub of resilient.yaml) ----
# Every call bounded by PAY_TIMEOUT and behind its own breaker; an upstream
# 429/503 is passed on with its Retry-After, anything else that goes wrong
# (timeout, reset, a cut or garbled body) is our 503 with Retry-After.
PAYMENTS_URL = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:9")
PAY_TIMEOUT = env_float("PAY_TIMEOUT", 1.0)
pay_breaker = Breaker(BREAKER_FAILURES, BREAKER_RESET)
pay_pool = concurrent.futures.ThreadPoolExecutor(max_workers=8,
                                                 thread_name_prefix="pay")


def pay_call(body):
    import requests  # Debian's python3-requests
    r = requests.post(PAYMENTS_URL + "/v1/charges", json=body,
                      timeout=PAY_TIMEOUT)
    return r.status_code, r.headers.get("Retry-After"), r.json()


@app.post("/api/checkout")
async def checkout(request: Request):
    body = {"amount": 42, "currency": "eur"}
    ticket = pay_breaker.admit()
    if ticket is None:
        return unavailable("payments unavailable", pay_breaker.retry_after())
    loop = asyncio.get_running_loop()
    try:
        status, retry, answer = await asyncio.wait_for(
            loop.run_in_executor(pay_pool, pay_call, body), PAY_TIMEOUT + 0.2)
    except Exception as exc:  # timeout, connection, cut body, bad JSON
        log.warning("payments failed: %s", type(exc).__name__)
        pay_breaker.failure(ticket)
        return unavailable("payments unavailable", pay_breaker.retry_after())
    if status in (429, 503):
        pay_breaker.failure(ticket)
        hint = float(retry) if retry and retry.isdigit() else \
            pay_breaker.retry_after()
        return unavailable("payments busy", hint, status=status)
    if status >= 500:
        pay_breaker.failure(ticket)
        return unavailable("payments failed", pay_breaker.retry_after())
    pay_breaker.success(ticket)
    return JSONResponse({"order": "ok", "payment": answer}, status_code=201)


# /ws: relays to the WebSocket feed and broadcasts it (wsrelay.py).
import wsrelay  # noqa: E402

app.add_api_websocket_route("/ws", wsrelay.endpoint)
app.add_event_handler("startup", wsrelay.startup)

# /ws/board: a live board pushed to every client (board.py).
import board  # noqa: E402

app.add_api_websocket_route("/ws/board", board.endpoint)
