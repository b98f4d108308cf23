"""redis-py against faultline's proxy (tests/test_proto_redis.c).

Usage: proto_redis.py PORT MODE
  get       GET k; prints "ok VALUE" or "CLASS MESSAGE"
  set       SET k v; the same
  pipeline  one pipeline of 100 (INCR n, GET k) pairs; prints one line per
            reply ("ok VALUE" / "err CLASS MESSAGE"), then the client id
            seen before and after on the same connection
  multi     MULTI, SET x 1, GET x, EXEC; then EXISTS x
  many      200 GET k, one at a time; prints how many failed, and how
"""
import sys

import redis

port, mode = int(sys.argv[1]), sys.argv[2]
r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


def show(f):
    try:
        print("ok", f())
    except redis.RedisError as e:
        print(type(e).__name__, e)


if mode == "get":
    show(lambda: r.get("k"))
elif mode == "set":
    show(lambda: r.set("k", "v"))
elif mode == "pipeline":
    before = r.client_id()
    p = r.pipeline(transaction=False)
    for _ in range(100):
        p.incr("n")
        p.get("k")
    for x in p.execute(raise_on_error=False):
        if isinstance(x, Exception):
            print("err", type(x).__name__, x)
        else:
            print("ok", x)
    print("ids", before, r.client_id())
elif mode == "multi":
    p = r.pipeline(transaction=True)
    p.set("x", "1")
    p.get("x")
    show(p.execute)
    show(lambda: r.exists("x"))
elif mode == "many":
    failed = 0
    for _ in range(200):
        try:
            r.get("k")
        except redis.ResponseError:
            failed += 1
    print("failed", failed)
