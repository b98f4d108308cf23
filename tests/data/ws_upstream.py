"""An echo WebSocket upstream for tests/test_proto_ws.c (python3-websockets):
every text or binary message is sent back as it came. It never pings, so
that the pings a test sees are its client's. Usage: ws_upstream.py PORT"""
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]),
                                ping_interval=None, max_size=None):
        await asyncio.Future()


asyncio.run(main())
