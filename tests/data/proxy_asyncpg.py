"""An asyncpg client for tests/test_proxy_pg.c: one connection, a few
kinds of query, each printed as `NAME VALUE... MS` (MS: the call's time in
milliseconds), then `done`. Run it directly and under `faultline exec
--proxy`: the values must be the same, the times longer by the latency.

Usage: /usr/bin/python3 proxy_asyncpg.py PORT  (asyncpg is a Debian
package of the system Python, not of a pyenv one).
"""

import asyncio
import sys
import time

import asyncpg


def show(name, t0, *values):
    took = (time.monotonic() - t0) * 1000.0
    print(name, *values, "%.1f" % took, flush=True)


async def main(port):
    t0 = time.monotonic()
    conn = await asyncpg.connect(host="127.0.0.1", port=port,
                                 user="postgres", database="postgres")
    show("connect", t0, "ok")
    t0 = time.monotonic()
    show("fetchval", t0, await conn.fetchval("select 6 * 7"))
    t0 = time.monotonic()
    rows = await conn.fetch(
        "select x, md5(x::text) as h from generate_series(1, 5000) x")
    show("fetch", t0, len(rows), rows[-1]["x"], rows[-1]["h"])
    t0 = time.monotonic()
    show("param", t0, await conn.fetchval("select $1::text || $2::text",
                                          "fault", "line"))
    t0 = time.monotonic()
    big = await conn.fetchval("select repeat('ab', 100000)")
    show("big", t0, len(big), big[:4])
    t0 = time.monotonic()
    async with conn.transaction():
        await conn.execute("create temp table t (a int)")
        await conn.executemany("insert into t values ($1)",
                               [(i,) for i in range(100)])
        total = await conn.fetchval("select sum(a) from t")
    show("transaction", t0, total)
    await conn.close()
    print("done", flush=True)


asyncio.run(main(int(sys.argv[1])))
