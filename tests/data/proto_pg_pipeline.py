"""A raw protocol-3 client for tests/test_proto_pg.c: pipelines three
queries in one write and prints what comes back, in order: `row V`,
`error SQLSTATE`, `ready STATUS`. Modes: simple (three Query messages),
extended (three Parse/Bind/Execute/Sync), txn (BEGIN, then a Query in
the transaction block, then ROLLBACK, one at a time).

Usage: python3 proto_pg_pipeline.py PORT simple|extended|txn
"""

import socket
import struct
import sys


def msg(t, body):
    return t + struct.pack("!I", len(body) + 4) + body


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        more = s.recv(n - len(b))
        if not more:
            raise EOFError
        b += more
    return b


def read(s):
    t = recv_exact(s, 1)
    n = struct.unpack("!I", recv_exact(s, 4))[0]
    return t, recv_exact(s, n - 4)


def until_ready(s, out):
    while True:
        t, body = read(s)
        if t == b"D":
            n = struct.unpack("!I", body[2:6])[0]
            out.append("row " + body[6:6 + n].decode())
        elif t == b"E":
            fields = dict((f[:1], f[1:]) for f in body.split(b"\0") if f)
            out.append("error " + fields[b"C"].decode())
        elif t == b"Z":
            out.append("ready " + body.decode())
            return


def query(sql):
    return msg(b"Q", sql.encode() + b"\0")


def extended(sql):
    return (msg(b"P", b"\0" + sql.encode() + b"\0\0\0") +
            msg(b"B", b"\0\0\0\0\0\0\0\0") +
            msg(b"E", b"\0\0\0\0\0") + msg(b"S", b""))


def main(port, mode):
    s = socket.create_connection(("127.0.0.1", port))
    params = b"user\0postgres\0database\0postgres\0\0"
    s.sendall(struct.pack("!II", len(params) + 8, 196608) + params)
    until_ready(s, [])
    out = []
    if mode == "txn":
        for sql in ("begin", "select 1", "rollback", "select 2"):
            s.sendall(query(sql))
            until_ready(s, out)
    else:
        make = query if mode == "simple" else extended
        s.sendall(b"".join(make("select %d" % i) for i in (1, 2, 3)))
        for _ in range(3):
            until_ready(s, out)
    s.sendall(msg(b"X", b""))
    print(" | ".join(out), flush=True)


main(int(sys.argv[1]), sys.argv[2])
