"""An asyncio Redis client that meets the proxy's stream faults, for
tests/test_proxy.c.

Run under `faultline exec --proxy 127.0.0.1:PORT ... -- python3
proxy_client.py`: its connections to PORT go through the proxy, though it
only ever names the real server. It prints `ready`, then reads one command
per line on stdin and answers each with exactly one line (flushed), all on
one asyncio event loop, so faults can be switched with `faultline inject`
while its connections stay open.

Answers: `ok` with details, or the failure's name: the errno name of an
OSError (ECONNREFUSED, ECONNRESET, ...), `timeout` when our own deadline
(asyncio.wait_for) fired first, `EOF` when the server closed, or
`error:TYPE`. Times are milliseconds with one decimal, measured with
time.monotonic around the request and its reply.

Commands (PORT is the real server's port, T a deadline in seconds):
  open NAME PORT [T]     asyncio.open_connection, kept as NAME
  close NAME             closes NAME
  ping NAME [T]          PING on NAME: `ok MS`
  set NAME KEY SIZE [T]  SET KEY to SIZE bytes: `ok MS`
  get NAME KEY [T]       GET KEY: `ok BYTES MS` (BYTES: the value's size)
  dial PORT [T]          opens a new connection, PINGs, closes: `ok MS`
  bye NAME [T]           QUIT on NAME, then waits for the server's close:
                         `ok MS` (until the end of the stream), then
                         closes NAME
  quit                   answers `bye` and exits 0
"""

import asyncio
import errno
import sys
import time

conns = {}


def fail_name(e):
    if isinstance(e, asyncio.IncompleteReadError):
        return "EOF"
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, "E%d" % e.errno)
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    return "error:%s" % type(e).__name__


def ms(t0):
    return "%.1f" % ((time.monotonic() - t0) * 1000.0)


async def reply(reader):
    """Reads one RESP reply; returns the bulk value's size, or 0."""
    line = await reader.readline()
    if not line.endswith(b"\r\n"):
        raise asyncio.IncompleteReadError(line, None)
    if line[:1] == b"$":
        n = int(line[1:-2])
        if n >= 0:
            await reader.readexactly(n + 2)
        return max(n, 0)
    if line[:1] == b"-":
        raise RuntimeError(line.decode().strip())
    return 0


async def request(name, payload, timeout):
    reader, writer = conns[name]
    t0 = time.monotonic()
    writer.write(payload)
    size = await asyncio.wait_for(reply(reader), timeout)
    return size, ms(t0)


def resp(*words):
    out = b"*%d\r\n" % len(words)
    for w in words:
        w = w if isinstance(w, bytes) else str(w).encode()
        out += b"$%d\r\n%s\r\n" % (len(w), w)
    return out


async def run(cmd, args):
    if cmd == "open":
        t = float(args[2]) if len(args) > 2 else 5.0
        conns[args[0]] = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", int(args[1])), t)
        return "ok"
    if cmd == "close":
        reader, writer = conns.pop(args[0])
        writer.close()
        return "ok"
    if cmd == "ping":
        t = float(args[1]) if len(args) > 1 else 5.0
        _, took = await request(args[0], resp("PING"), t)
        return "ok " + took
    if cmd == "set":
        t = float(args[3]) if len(args) > 3 else 10.0
        value = b"x" * int(args[2])
        _, took = await request(args[0], resp("SET", args[1], value), t)
        return "ok " + took
    if cmd == "get":
        t = float(args[2]) if len(args) > 2 else 30.0
        size, took = await request(args[0], resp("GET", args[1]), t)
        return "ok %d %s" % (size, took)
    if cmd == "dial":
        t = float(args[1]) if len(args) > 1 else 5.0
        t0 = time.monotonic()
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", int(args[0])), t)
        try:
            writer.write(resp("PING"))
            await asyncio.wait_for(reply(reader), t)
        finally:
            writer.close()
        return "ok " + ms(t0)
    if cmd == "bye":
        t = float(args[1]) if len(args) > 1 else 5.0
        reader, writer = conns.pop(args[0])
        try:
            t0 = time.monotonic()
            writer.write(resp("QUIT"))
            await asyncio.wait_for(reply(reader), t)
            rest = await asyncio.wait_for(reader.read(), t)
            if rest:
                return "error:data-after-QUIT"
            return "ok " + ms(t0)
        finally:
            writer.close()
    return "usage: open close ping set get dial bye quit"


async def main():
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        words = line.split()
        if not words:
            continue
        if words[0] == "quit":
            print("bye", flush=True)
            return
        try:
            answer = await run(words[0], words[1:])
        except Exception as e:  # every failure is an answer
            answer = fail_name(e)
        print(answer, flush=True)


asyncio.run(main())
