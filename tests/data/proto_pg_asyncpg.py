"""An asyncpg client for tests/test_proto_pg.c, run under `faultline exec
--proxy postgres=...` with a pg_error fault. Prints one line per call:
`error CLASS SQLSTATE` or `value V`.

Usage: /usr/bin/python3 proto_pg_asyncpg.py PORT connect|query|txn
"""

import asyncio
import sys

import asyncpg


def error(e):
    print("error", type(e).__name__, getattr(e, "sqlstate", None), flush=True)


async def connect(port):
    return await asyncpg.connect(host="127.0.0.1", port=port,
                                 user="postgres", database="postgres")


async def value(conn, sql):
    try:
        print("value", await conn.fetchval(sql), flush=True)
    except asyncpg.PostgresError as e:
        error(e)
    except (ConnectionError, asyncpg.InterfaceError) as e:
        print("lost", type(e).__name__, flush=True)


async def main(port, mode):
    try:
        conn = await connect(port)
    except asyncpg.PostgresError as e:
        error(e)
        return
    if mode == "query":
        # Extended protocol: the error answers Parse..Sync; then the
        # session must still serve.
        await value(conn, "select 6 * 7")
        await value(conn, "select 2")
    elif mode == "txn":
        try:
            async with conn.transaction():
                await conn.fetchval("select 1")
                await conn.fetchval("select 6 * 7")
        except asyncpg.PostgresError as e:
            error(e)
        await value(conn, "select 3")
    if not conn.is_closed():
        await conn.close()


asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
