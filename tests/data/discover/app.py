"""A service for test_discover: each endpoint uses one thing, and a
background task keeps using PostgreSQL and a file while idle, which
discovery must not pin on any endpoint.

The PostgreSQL pool holds one connection opened at start-up and never
another (the log says how many were opened), so discovery can only see
/db's use of it as reads and writes on a pooled connection. Redis too is
connected at start-up."""
import asyncio
import os
import socket
import uuid

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

DATA_DIR = os.environ["DATA_DIR"]
app = FastAPI()
opened = 0


async def on_connect(conn):
    global opened
    opened += 1


@app.on_event("startup")
async def startup():
    app.state.pool = await asyncpg.create_pool(
        os.environ["PG_URL"], min_size=1, max_size=1, init=on_connect)
    app.state.redis = aioredis.Redis(
        host="127.0.0.1", port=int(os.environ["REDIS_PORT"]),
        single_connection_client=True)
    await app.state.redis.ping()
    app.state.idle = asyncio.create_task(idle())


async def idle():
    """What the service does with no request: a query now and then, and a
    heartbeat file."""
    n = 0
    while True:
        await asyncio.sleep(0.1)
        with open(os.path.join(DATA_DIR, "heartbeat"), "w") as f:
            f.write(str(n))
        if n % 10 == 0:
            await app.state.pool.fetchval("SELECT 1")
        n += 1


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.get("/health/ready")
async def ready():
    await app.state.pool.fetchval("SELECT 1")
    return {"status": "ready"}


@app.get("/static")
async def static():
    return {"static": True}


@app.get("/db/{item_id}")
async def db(item_id: int):
    total = 0
    for _ in range(5):
        total += await app.state.pool.fetchval("SELECT $1::int", item_id)
    print(f"pg connections opened so far: {opened}", flush=True)
    return {"total": total}


@app.get("/cache")
async def cache():
    await app.state.redis.set("k", "v")
    return {"v": (await app.state.redis.get("k")).decode()}


class Note(BaseModel):
    text: str


@app.post("/write", status_code=201)
async def write(note: Note):
    folder = os.path.join(DATA_DIR, "out")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, uuid.uuid4().hex), "w") as f:
        f.write(note.text)
    return {"ok": True}


@app.get("/resolve")
async def resolve():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, socket.getaddrinfo, "localhost", 80)
    return {"ok": True}


@app.get("/missing-example")
async def missing():
    return JSONResponse({"error": "gone"}, status_code=410)
