"""/ws for the fragile example, written the naive way: one upstream
connection to the feed (FEED_URL) shared by every client, each message
relayed and its reply awaited under a lock, with no deadline; broadcasts
sent to the clients one after the other with no timeout (one slow client
holds everyone's); the upstream reconnected in a tight loop, no backoff, no
breaker, no keepalive."""

import asyncio
import json
import os

import websockets
from fastapi import WebSocket

FEED_URL = os.environ.get("FEED_URL", "")


class Relay:
    def __init__(self):
        self.clients = []
        self.up = None
        self.lock = asyncio.Lock()
        self.replies = asyncio.Queue()
        self.task = None

    def start(self):
        if FEED_URL and self.task is None:
            self.task = asyncio.create_task(self.keep())

    async def keep(self):
        while True:
            try:
                self.up = await websockets.connect(FEED_URL, ping_interval=None)
                async for msg in self.up:
                    if "broadcast" in msg:
                        for client in self.clients:
                            await client.send_text(msg)
                    else:
                        await self.replies.put(msg)
            except Exception:
                pass  # and straight back in

    async def call(self, text):
        async with self.lock:
            await self.up.send(json.dumps({"data": text}))
            return json.loads(await self.replies.get())["data"]


relay = Relay()


async def endpoint(ws: WebSocket):
    relay.start()
    await ws.accept()
    relay.clients.append(ws)
    try:
        while True:
            text = await ws.receive_text()
            await ws.send_text(await relay.call(text))
    finally:
        relay.clients.remove(ws)


async def startup():
    relay.start()
