"""The fragile example service: the same API as resilient/, written the
naive way, as a service often looks before its first incident.

What is missing on purpose (each one is what some scenario should catch):
- liveness (/health) queries the database, so a database outage makes the
  process look dead, and readiness is the same check;
- no timeout anywhere: a hung connect or a slow query holds the request for
  as long as the dependency does;
- every dependency error is an unhandled exception, which FastAPI turns into
  a bare 500 with no Retry-After;
- the pool is created once at start-up: with the database down the process
  does not start, and nothing ever rebuilds the pool (with
  FRAGILE_CHECK_DB_AT_IMPORT=1, fragile-strict.yaml, it even exits 3 at
  import, before the web server starts);
- Redis is required: its errors are 500s, even though the database has the
  data;
- after a Redis error, a "self-healing" reconnect: each failed call makes a
  fresh client that keeps trying in the background and takes over once
  Redis answers; every one of them is kept to be closed at shutdown and
  never before, so each failed call leaks a connection once Redis is back;
- uploads are written in place, so a full disk leaves a partial file behind.

Run with Debian's interpreter (it sees python3-fastapi and friends):
  DATABASE_URL=... REDIS_URL=... DATA_DIR=... \
    /usr/bin/python3 -m uvicorn app:app --port 8000
"""

import asyncio
import json
import os
import uuid

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

DATABASE_URL = os.environ.get(
    "DATABASE_URL", "postgresql://faultline:faultline@127.0.0.1:5432/faultline")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATA_DIR = os.environ.get("DATA_DIR", ".")

# fragile-strict.yaml sets this: the check many services make at import,
# before the web server even starts: no database, no process (exit 3).
if os.environ.get("FRAGILE_CHECK_DB_AT_IMPORT") == "1":
    import asyncio
    import sys
    import threading

    def _check(failed):
        # uvicorn imports us inside its running loop: the check gets its own
        # loop, in its own thread.
        async def connect():
            conn = await asyncpg.connect(DATABASE_URL, timeout=5)
            await conn.close()
        try:
            asyncio.run(connect())
        except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as e:
            failed.append(e)

    failed = []
    checker = threading.Thread(target=_check, args=(failed,))
    checker.start()
    checker.join()
    if failed:
        print(f"fatal: cannot connect to the database: {failed[0]!r}",
              file=sys.stderr, flush=True)
        sys.exit(3)

app = FastAPI(title="fragile")


@app.on_event("startup")
async def startup():
    # If this raises, uvicorn reports "Application startup failed" and exits.
    app.state.pool = await asyncpg.create_pool(DATABASE_URL)
    await app.state.pool.execute(
        "CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, name text NOT NULL)")
    app.state.redis = aioredis.from_url(REDIS_URL, decode_responses=True)
    app.state.redis_clients = [app.state.redis]


@app.on_event("shutdown")
async def shutdown():
    for client in app.state.redis_clients:
        await client.close()


async def take_over(client):
    """Pings until Redis answers, then serves as the client."""
    while True:
        try:
            await client.ping()
        except (aioredis.RedisError, OSError):
            await asyncio.sleep(0.5)
            continue
        app.state.redis = client
        return


async def redis_call(op):
    """op(client), and after a failure a fresh client to take over: one per
    failed call, each holding a connection until shutdown (the leak)."""
    try:
        return await op(app.state.redis)
    except aioredis.RedisError:
        client = aioredis.from_url(REDIS_URL, decode_responses=True)
        app.state.redis_clients.append(client)
        asyncio.get_running_loop().create_task(take_over(client))
        raise


@app.get("/health")
async def health():
    await app.state.pool.fetchval("SELECT 1")
    return {"status": "ok"}


@app.get("/health/ready")
async def ready():
    await app.state.pool.fetchval("SELECT 1")
    return {"status": "ready"}


@app.get("/api/static")
async def static():
    return {"message": "static content, no dependency"}


class NewItem(BaseModel):
    name: str


@app.get("/api/items")
async def list_items():
    rows = await app.state.pool.fetch(
        "SELECT id, name FROM items ORDER BY id DESC LIMIT 100")
    return [dict(r) for r in rows]


@app.post("/api/items", status_code=201)
async def create_item(item: NewItem):
    row = await app.state.pool.fetchrow(
        "INSERT INTO items (name) VALUES ($1) RETURNING id, name", item.name)
    return dict(row)


@app.get("/api/profile/{profile_id}")
async def profile(profile_id: int):
    key = f"profile:{profile_id}"
    cached = await redis_call(lambda r: r.get(key))
    if cached is not None:
        return JSONResponse(json.loads(cached), headers={"X-Cache": "hit"})
    row = await app.state.pool.fetchrow(
        "SELECT $1::int AS id, (SELECT name FROM items WHERE id = $1) AS name",
        profile_id)
    body = {"id": row["id"], "name": row["name"]}
    await redis_call(lambda r: r.set(key, json.dumps(body), ex=30))
    return JSONResponse(body, headers={"X-Cache": "miss"})


@app.post("/api/upload", status_code=201)
async def upload(request: Request):
    body = await request.body()
    folder = os.path.join(DATA_DIR, "uploads")
    os.makedirs(folder, exist_ok=True)
    name = uuid.uuid4().hex
    with open(os.path.join(folder, name), "wb") as f:
        f.write(body)
    return {"name": name, "size": len(body)}


# ---- payments: an HTTP upstream, called with no timeout, inline ----------
PAYMENTS_URL = os.environ.get("PAYMENTS_URL", "http://127.0.0.1:9")


@app.post("/api/checkout", status_code=201)
async def checkout():
    import requests
    # No timeout, on the event loop; any error or non-2xx becomes a 500.
    r = requests.post(PAYMENTS_URL + "/v1/charges",
                      json={"amount": 42, "currency": "eur"})
    r.raise_for_status()
    return {"order": "ok", "payment": r.json()}


# /ws: relays to the WebSocket feed and broadcasts it (wsrelay.py).
import wsrelay  # noqa: E402

app.add_api_websocket_route("/ws", wsrelay.endpoint)
app.add_event_handler("startup", wsrelay.startup)

# /ws/board: a live board pushed to every client (board.py).
import board  # noqa: E402

app.add_api_websocket_route("/ws/board", board.endpoint)
