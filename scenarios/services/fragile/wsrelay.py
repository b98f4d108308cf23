"""/ws for the fragile example, written the naive way:
- each client gets an upstream connection of its own to the feed
  (FEED_URL), opened when it connects: 500 clients are 500 upstream
  connections, and a reconnect storm is an upstream storm;
- each message is relayed and its reply awaited with no deadline;
- the feed's broadcasts come in on one shared connection, reconnected in a
  tight loop (no backoff, no breaker, no keepalive), and are sent to the
  clients one after the other with no timeout: one slow client holds
  everyone's."""

import asyncio
import os

import websockets
from fastapi import WebSocket

FEED_URL = os.environ.get("FEED_URL", "")
clients = []
feed_task = None


async def feed():
    while True:
        try:
            async with websockets.connect(FEED_URL, ping_interval=None) as up:
                async for msg in up:
                    for client in clients:
                        await client.send_text(msg)
        except Exception:
            pass  # and straight back in


async def startup():
    global feed_task
    if FEED_URL:
        feed_task = asyncio.create_task(feed())


async def endpoint(ws: WebSocket):
    await ws.accept()
    clients.append(ws)
    try:
        async with websockets.connect(FEED_URL, ping_interval=None) as up:
            while True:
                await up.send(await ws.receive_text())
                reply = await up.recv()
                while "broadcast" in reply:  # the feed's, not our answer
                    reply = await up.recv()
                await ws.send_text(reply)
    finally:
        clients.remove(ws)
