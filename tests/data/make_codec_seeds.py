#!/usr/bin/env python3
"""Writes the seeds of the proxy codec fuzz targets ws, redis and http
(fuzz/fuzz_ws.c, fuzz_redis.c, fuzz_http.c): small realistic exchanges in
their input format, into tests/data/ws/, redis/ and http/.

Each is a target's header bytes (which faults, which messages they hit,
their options: three, four for http), then steps (fuzz/fuzz_proxy.h): chunks read from the
client (UP) or the server (DOWN), rules cleared or set again, cuts.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def up(data, size=127):
    return chunks(0x00, data, size)


def down(data, size=127):
    return chunks(0x80, data, size)


def chunks(tag, data, size):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += bytes([tag | len(part)]) + part
    return out


def toggle(k):
    """The rule k (mod the rules made) cleared, or set again."""
    return bytes([0x00, k])


def cut(kind, arg=0):
    """0: ends close at once, 1: the next send fails, 2: ends after arg
    more bytes, 3: ends now."""
    return bytes([0x80, kind | arg << 2])


def write(folder, name, header, steps):
    os.makedirs(os.path.join(HERE, folder), exist_ok=True)
    with open(os.path.join(HERE, folder, name), "wb") as f:
        f.write(bytes(header) + steps)


# ---- WebSocket --------------------------------------------------------

KEY = b"\x37\xfa\x21\x3d"


def frame(op, payload=b"", fin=True, masked=False, key=KEY, force_len=None):
    """An RFC 6455 frame; a client's is masked. force_len: a length field
    that says something else than the payload's (huge lengths)."""
    n = len(payload) if force_len is None else force_len
    b0 = (0x80 if fin else 0) | op
    mask = 0x80 if masked else 0
    if n < 126:
        head = bytes([b0, mask | n])
    elif n < 1 << 16:
        head = bytes([b0, mask | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mask | 127]) + struct.pack(">Q", n)
    if masked:
        head += key
        payload = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return head + payload


def cframe(op, payload=b"", fin=True):
    return frame(op, payload, fin, masked=True)


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
           b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Sec-WebSocket-Version: 13\r\n\r\n")
SWITCHING = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             b"Connection: Upgrade\r\n"
             b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")


def ws_seeds():
    # An echo: text, ping/pong both ways, a clean close. No fault.
    write("ws", "echo.bin", [0x00, 0x00, 0x00],
          up(UPGRADE) + down(SWITCHING) + up(cframe(1, b"hello")) +
          down(frame(1, b"hello")) + up(cframe(9, b"p1")) +
          down(frame(10, b"p1")) + down(frame(9)) + up(cframe(10)) +
          up(cframe(8, close_payload(1000))) +
          down(frame(8, close_payload(1000))))
    # A fragmented message with a ping between its frames, a 126-length
    # binary frame cut into small chunks; ws_drop both ways, ws_nopong
    # down, some messages hit.
    big = bytes(range(256)) * 2
    write("ws", "fragmented.bin", [0x3a, 0x96, 0x00],
          up(UPGRADE) + down(SWITCHING + frame(1, b"hi")) +
          up(cframe(1, b"hel", fin=False) + cframe(9, b"x") +
             cframe(0, b"l", fin=False) + cframe(0, b"o")) +
          down(frame(10, b"x")) + up(cframe(2, big), 13) +
          down(frame(2, big[:300]), 7) + up(cframe(1, b"after")) +
          down(frame(1, b"after")))
    # ws_close towards the client, with a long reason, set mid-message:
    # it waits for the frame's end.
    write("ws", "close-mid-frame.bin", [0x42, 0xff, 0x8a],
          up(UPGRADE) + toggle(0) + down(SWITCHING) +
          down(frame(1, b"x" * 200)[:60]) + toggle(0) +
          down(frame(1, b"x" * 200)[60:]) + up(cframe(1, b"too late")))
    # ws_close both ways, code=1013; headers cut one byte a chunk.
    write("ws", "close-both.bin", [0x03, 0x09, 0x05],
          up(UPGRADE) + down(SWITCHING) + up(cframe(1, b"abc"), 1) +
          down(frame(2, b"\x00" * 130), 1) + up(cframe(1, b"def")))
    # A 64-bit length (more than anything sends); then a cut.
    write("ws", "huge-length.bin", [0x30, 0xff, 0x00],
          up(UPGRADE) + down(SWITCHING) +
          down(frame(2, b"data", force_len=1 << 63)) +
          up(cframe(2, b"data", fin=False)[:6]) + cut(2, 5) +
          up(cframe(2, b"data")))
    # Refused: a 403 leaves the connection alone (plain HTTP).
    write("ws", "refused.bin", [0x2a, 0xff, 0x00],
          up(UPGRADE) +
          down(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\n"
               b"forbidden") + up(cframe(1, b"no")) +
          down(frame(10, b"no")))
    # The 101 in pieces, frames in the same chunk as its end.
    sw = SWITCHING + frame(1, b"first") + frame(9)
    write("ws", "split-answer.bin", [0x0e, 0xaa, 0x03],
          up(UPGRADE, 40) + down(sw, 29) + up(cframe(10)) + cut(1) +
          up(cframe(1, b"lost")))


# ---- Redis ------------------------------------------------------------


def cmd(*words):
    out = b"*%d\r\n" % len(words)
    for w in words:
        out += b"$%d\r\n%s\r\n" % (len(w), w)
    return out


def redis_seeds():
    # Pipelined commands, replies in one chunk; every command hit.
    write("redis", "pipeline.bin", [0x00, 0xff, 0x00],
          up(cmd(b"SET", b"k", b"hello") + cmd(b"GET", b"k") +
             cmd(b"INCR", b"n")) +
          down(b"+OK\r\n$5\r\nhello\r\n:1\r\n"))
    # A transaction: EXEC is hit for the INCR queued in it.
    write("redis", "multi.bin", [0x02 | 0x04 << 2, 0x55, 0x07],
          up(cmd(b"MULTI")) + down(b"+OK\r\n") +
          up(cmd(b"SET", b"a", b"1") + cmd(b"INCR", b"a")) +
          down(b"+QUEUED\r\n+QUEUED\r\n") + up(cmd(b"EXEC")) +
          down(b"*2\r\n+OK\r\n:2\r\n") + up(cmd(b"GET", b"a")) +
          down(b"$1\r\n2\r\n"))
    # RESP3: HELLO 3, a map reply, a push between replies, then
    # SUBSCRIBE (the connection is left alone after it).
    write("redis", "resp3.bin", [0x03 | 0x20 | 0x40, 0x0f, 0x3e],
          up(cmd(b"HELLO", b"3") + cmd(b"CLIENT", b"SETNAME", b"app")) +
          down(b"%2\r\n+server\r\n+redis\r\n+proto\r\n:3\r\n+OK\r\n") +
          up(cmd(b"GET", b"k")) +
          down(b">3\r\n+message\r\n+ch\r\n+x\r\n_\r\n") +
          up(cmd(b"SUBSCRIBE", b"ch")) +
          down(b">3\r\n+subscribe\r\n+ch\r\n:1\r\n"))
    # Inline commands in small chunks, the rule cleared and set again.
    write("redis", "inline.bin", [0x00, 0xf0, 0x00],
          up(b"PING\r\nSET k v\r\n", 3) + toggle(0) + down(b"+PONG\r\n", 2) +
          toggle(0) + up(b"GET k\r\n") + down(b"+OK\r\n$1\r\nv\r\n") +
          cut(1) + up(cmd(b"GET", b"k")))
    # A big bulk string, held past HOLD_MAX before its command's end.
    write("redis", "big-value.bin", [0x01, 0xff, 0x00],
          up(cmd(b"SET", b"k", b"v" * 600)) + down(b"+OK\r\n") +
          up(cmd(b"CLIENT", b"REPLY", b"OFF")) + up(cmd(b"SET", b"a", b"b")))


# ---- HTTP -------------------------------------------------------------


def http_seeds():
    # GET, HEAD, POST with a chunked answer; http_error on every other.
    write("http", "get-head-post.bin", [0x01, 0x55, 0x00, 17],
          up(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n") +
          down(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello") +
          up(b"HEAD /a HTTP/1.1\r\nHost: x\r\n\r\n") +
          down(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n") +
          up(b"POST /v1/pay HTTP/1.1\r\nHost: x\r\nContent-Length: 4"
             b"\r\n\r\nbody") +
          down(b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n"))
    # Pipelined requests (the last one's path longer than we keep);
    # responses cut at odd places; http_cut and http_delay on all.
    reqs = b"".join(b"GET /a%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                    for i in range(3))
    reqs += b"GET /a/" + b"p" * 150 + b"?q=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    resps = b"".join(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
                     b"0123456789" for _ in range(3))
    write("http", "pipelined.bin", [0x06 | 0x08, 0xff, 0x04, 0],
          up(reqs) + down(resps, 23))
    # Expect: 100-continue, answered by us: the connection ends after.
    write("http", "expect.bin", [0x01 | 0x10 | 0x20 | 0x40, 0xff, 0x00, 14],
          up(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
             b"Expect: 100-continue\r\n\r\n") +
          down(b"HTTP/1.1 100 Continue\r\n\r\n") + up(b"abc") +
          down(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
    # An Upgrade (then frames: not followed), and a CONNECT tunnel.
    write("http", "upgrade.bin", [0x07, 0xff, 0x02, 2],
          up(UPGRADE) + down(SWITCHING + b"\x81\x02hi") + up(b"\x81\x82abcd"))
    write("http", "connect.bin", [0x05 | 0x80, 0xff, 0x00, 2],
          up(b"CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n") +
          down(b"HTTP/1.1 200 Connection Established\r\n\r\nraw") +
          up(b"raw bytes"))
    # HTTP/1.0: the body runs to the close; the rules set mid-stream.
    write("http", "until-close.bin", [0x07 | 0x08, 0x33, 0x10, 9],
          up(b"GET /a HTTP/1.0\r\n\r\n") + toggle(1) +
          down(b"HTTP/1.0 200 OK\r\n\r\nuntil the end", 5) + cut(3) +
          down(b" more"))


if __name__ == "__main__":
    ws_seeds()
    redis_seeds()
    http_seeds()
