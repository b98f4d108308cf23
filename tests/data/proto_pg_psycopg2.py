"""A psycopg2 client for tests/test_proto_pg.c, run under `faultline exec
--proxy postgres=...` with a pg_error fault. Prints one line per call:
`error CLASS PGCODE MESSAGE` or `value V`. psycopg2 opens a transaction
block (BEGIN) before the first query, so an error there leaves it failed.

Usage: /usr/bin/python3 proto_pg_psycopg2.py PORT connect|query
"""

import sys

import psycopg2


def main(port, mode):
    try:
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres",
                                dbname="postgres")
    except psycopg2.Error as e:
        print("error", type(e).__name__, e.pgcode, str(e).strip(), flush=True)
        return
    for sql in ("select 6 * 7", "select 2"):
        try:
            cur = conn.cursor()
            cur.execute(sql)
            print("value", cur.fetchone()[0], flush=True)
        except psycopg2.Error as e:
            print("error", type(e).__name__, e.pgcode,
                  (e.pgerror or str(e)).strip().splitlines()[0], flush=True)
            if conn.closed:
                return
            conn.rollback()
    conn.close()


main(int(sys.argv[1]), sys.argv[2])
