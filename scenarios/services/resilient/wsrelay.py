"""/ws for the resilient example: clients talk to a WebSocket upstream (the
feed, FEED_URL) through us, and get the feed's broadcasts.

Guardrails (each one is what a ws scenario in scenarios/ checks):
- a bounded pool of upstream connections (POOL_SIZE), each kept by a task
  that reconnects with exponential backoff and full jitter, so that 500
  clients never mean 500 upstream connections, and an upstream that drops
  every connection is not hammered;
- keepalive pings with a timeout on every upstream connection: an upstream
  that stops answering is noticed in about two seconds and dropped;
- a circuit breaker over the upstream (open after BREAKER_FAILURES failures
  in a row, a half-open trial after BREAKER_OPEN_S); while it is open, or
  no upstream connection is up, clients are closed with 1013 (try again
  later) instead of being left to hang;
- every relayed message has a deadline (CALL_TIMEOUT_S): past it the client
  gets an error reply, never silence;
- broadcasts go to every client at once, each with its own send timeout: a
  slow client is dropped (1008), the others keep going.
"""

import asyncio
import itertools
import json
import logging
import os
import random

import websockets
from fastapi import WebSocket, WebSocketDisconnect

FEED_URL = os.environ.get("FEED_URL", "")
POOL_SIZE = 4
CALL_TIMEOUT_S = 1.0
SEND_TIMEOUT_S = 0.5
BACKOFF_BASE_S, BACKOFF_MAX_S = 0.1, 2.0
BREAKER_FAILURES, BREAKER_OPEN_S = 3, 2.0
TRY_AGAIN_LATER = 1013

log = logging.getLogger("resilient.ws")


class Breaker:
    def __init__(self):
        self.failures = 0
        self.opened_at = None

    def state(self):
        loop = asyncio.get_running_loop()
        if self.opened_at is None:
            return "closed"
        if loop.time() - self.opened_at >= BREAKER_OPEN_S:
            return "half-open"
        return "open"

    def success(self):
        self.failures = 0
        self.opened_at = None

    def failure(self):
        self.failures += 1
        if self.failures >= BREAKER_FAILURES or self.opened_at is not None:
            self.opened_at = asyncio.get_running_loop().time()


class Relay:
    def __init__(self):
        self.clients = set()
        self.up = []  # live upstream connections
        self.pending = {}
        self.ids = itertools.count()
        self.breaker = Breaker()
        self.tasks = []
        self.rr = 0

    def start(self):
        if FEED_URL and not self.tasks:
            self.tasks = [asyncio.create_task(self.keep(i))
                          for i in range(POOL_SIZE)]

    def available(self):
        return bool(self.up) and self.breaker.state() != "open"

    async def keep(self, i):
        """Keeps one upstream connection up, with backoff and the breaker."""
        attempt = 0
        while True:
            if self.breaker.state() == "open":
                await asyncio.sleep(0.1)
                continue
            connected = False
            try:
                async with websockets.connect(
                        FEED_URL, open_timeout=2, ping_interval=1,
                        ping_timeout=1, close_timeout=1) as ws:
                    connected = True
                    self.up.append(ws)
                    async for msg in ws:
                        self.breaker.success()
                        attempt = 0
                        self.dispatch(msg)
            except (OSError, asyncio.TimeoutError,
                    websockets.WebSocketException) as exc:
                log.info("upstream %d: %s", i, exc)
            finally:
                if connected:
                    self.up.remove(ws)
            self.breaker.failure()
            if not self.available():
                await self.shed()
            delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** attempt)
            attempt += 1
            await asyncio.sleep(random.uniform(0, delay))

    def dispatch(self, text):
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if isinstance(msg, dict) and msg.get("id") in self.pending:
            fut = self.pending.pop(msg["id"])
            if not fut.done():
                fut.set_result(msg.get("data"))
        elif isinstance(msg, dict) and "broadcast" in msg:
            self.broadcast(text)

    def broadcast(self, text):
        for client in list(self.clients):
            asyncio.create_task(self.send_or_drop(client, text))

    async def send_or_drop(self, client, text):
        try:
            await asyncio.wait_for(client.send_text(text), SEND_TIMEOUT_S)
        except asyncio.TimeoutError:
            # A client that cannot keep up is dropped, not waited for.
            self.clients.discard(client)
            asyncio.create_task(self.close(client, 1008))
        except Exception:  # gone already
            self.clients.discard(client)

    async def close(self, client, code):
        try:
            await asyncio.wait_for(client.close(code), SEND_TIMEOUT_S)
        except Exception:
            pass

    async def shed(self):
        """No upstream: clients are told to come back later."""
        clients, self.clients = self.clients, set()
        await asyncio.gather(*(self.close(c, TRY_AGAIN_LATER) for c in clients))

    async def call(self, text):
        ws = self.up[self.rr % len(self.up)]
        self.rr += 1
        mid = next(self.ids)
        fut = asyncio.get_running_loop().create_future()
        self.pending[mid] = fut
        try:
            await asyncio.wait_for(
                ws.send(json.dumps({"id": mid, "data": text})), CALL_TIMEOUT_S)
            return await asyncio.wait_for(fut, CALL_TIMEOUT_S)
        finally:
            self.pending.pop(mid, None)


relay = Relay()


async def endpoint(ws: WebSocket):
    relay.start()
    await ws.accept()
    if not relay.available():
        await ws.close(TRY_AGAIN_LATER)
        return
    relay.clients.add(ws)
    try:
        while True:
            text = await ws.receive_text()
            if not relay.available():
                break
            try:
                reply = await relay.call(text)
            except (asyncio.TimeoutError, websockets.WebSocketException,
                    IndexError, ZeroDivisionError):
                reply = json.dumps({"error": "upstream unavailable",
                                    "retry_after": 1})
            await asyncio.wait_for(ws.send_text(reply), SEND_TIMEOUT_S)
        relay.clients.discard(ws)
        await relay.close(ws, TRY_AGAIN_LATER)
    except (WebSocketDisconnect, asyncio.TimeoutError, RuntimeError):
        pass
    finally:
        relay.clients.discard(ws)


async def startup():
    relay.start()
