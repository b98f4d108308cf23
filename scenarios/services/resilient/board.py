"""/ws/board for the resilient example: a live board of every instrument
the service knows, pushed whole to each client ten times a second (the
snapshot is about 140 KiB: full snapshots rather than deltas, as many
dashboards start out).

Guardrails (scenarios/ws-slow-client.yaml checks them):
- each client has a sender task of its own, so no client waits on another;
- a client still busy with the last snapshot skips the next ones (latest
  wins, nothing queues up in memory);
- a send that takes longer than SEND_TIMEOUT_S drops the client with 1008:
  one client that stopped reading cannot hold the others or grow a buffer.
"""

import asyncio
import json
import logging
import random

from fastapi import WebSocket, WebSocketDisconnect

INSTRUMENTS = 1600
TICK_S = 0.1
SEND_TIMEOUT_S = 2.0
POLICY_VIOLATION = 1008

log = logging.getLogger("resilient.board")


class Board:
    def __init__(self):
        self.rows = [{"symbol": f"SYM{i:04d}", "bid": 100.0, "ask": 100.5,
                      "volume": 0, "venue": "XPAR"} for i in range(INSTRUMENTS)]
        self.seq = 0
        self.snapshot = ""
        self.changed = None
        self.task = None

    def start(self):
        if self.task is None:
            self.changed = asyncio.Condition()
            self.task = asyncio.create_task(self.tick())

    async def tick(self):
        while True:
            for row in random.sample(self.rows, 64):
                row["bid"] = round(row["bid"] * random.uniform(0.99, 1.01), 4)
                row["ask"] = round(row["bid"] + 0.5, 4)
                row["volume"] += random.randint(1, 100)
            self.seq += 1
            self.snapshot = json.dumps({"seq": self.seq, "rows": self.rows})
            async with self.changed:
                self.changed.notify_all()
            await asyncio.sleep(TICK_S)

    async def feed(self, ws: WebSocket):
        """Sends the newest snapshot whenever there is one this client has
        not had; a slow send is this client's problem alone."""
        seen = 0
        while True:
            async with self.changed:
                await self.changed.wait_for(lambda: self.seq != seen)
            seen = self.seq
            try:
                await asyncio.wait_for(ws.send_text(self.snapshot),
                                       SEND_TIMEOUT_S)
            except asyncio.TimeoutError:
                log.info("board: a client is too slow, dropped")
                try:
                    await asyncio.wait_for(ws.close(POLICY_VIOLATION), 1)
                except Exception:
                    pass
                return


board = Board()


async def endpoint(ws: WebSocket):
    board.start()
    await ws.accept()
    sender = asyncio.create_task(board.feed(ws))
    reader = asyncio.create_task(drain(ws))
    await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
    for task in (sender, reader):
        task.cancel()


async def drain(ws: WebSocket):
    """Reads (and ignores) what the client sends until it goes."""
    try:
        while True:
            await ws.receive_text()
    except (WebSocketDisconnect, RuntimeError):
        pass
