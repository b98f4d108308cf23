"""/ws/board for the fragile example, written the naive way: one loop
builds the board snapshot (about 140 KiB) ten times a second and sends it
to the clients one after the other, each send awaited, with no timeout.
A client that stops reading fills its socket buffers, its send stops
returning, and every other client waits with it."""

import asyncio
import json
import random

from fastapi import WebSocket, WebSocketDisconnect

INSTRUMENTS = 1600
TICK_S = 0.1
clients = []
rows = [{"symbol": f"SYM{i:04d}", "bid": 100.0, "ask": 100.5, "volume": 0,
         "venue": "XPAR"} for i in range(INSTRUMENTS)]
task = None


async def tick():
    seq = 0
    while True:
        for row in random.sample(rows, 64):
            row["bid"] = round(row["bid"] * random.uniform(0.99, 1.01), 4)
            row["ask"] = round(row["bid"] + 0.5, 4)
            row["volume"] += random.randint(1, 100)
        seq += 1
        snapshot = json.dumps({"seq": seq, "rows": rows})
        for client in list(clients):
            try:
                await client.send_text(snapshot)
            except Exception:
                clients.remove(client)
        await asyncio.sleep(TICK_S)


async def endpoint(ws: WebSocket):
    global task
    if task is None:
        task = asyncio.create_task(tick())
    await ws.accept()
    clients.append(ws)
    try:
        while True:
            await ws.receive_text()
    except WebSocketDisconnect:
        pass
    finally:
        if ws in clients:
            clients.remove(ws)
