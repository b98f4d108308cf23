"""A probe that meets faults from the program's side, for the shim tests.

Run under `faultline exec ... -- /usr/bin/python3 probe.py`. It prints
`ready` once, then reads one command per line on stdin and answers each with
exactly one line on stdout (flushed), so a test can switch faults with
`faultline inject/clear --control` while this same process keeps running.

A result is one word, sometimes followed by details separated by spaces:
`ok` on success, otherwise the failure's name: the errno name of an OSError
(`ECONNREFUSED`, `ECONNRESET`, `EMFILE`, `ENOSPC`, ...), the EAI_* name of a
socket.gaierror (`EAI_AGAIN`, `EAI_NONAME`, ...), `timeout` for a timeout
without an errno (socket timeouts, asyncio.wait_for), `EOF` when a peer
closed, or `error:TYPE` for anything else. Unknown commands answer
`usage:...`.

Commands (HOST is numeric or a name, T a timeout in seconds):
  connect HOST PORT [T]   socket.create_connection, then close. Without T
                          the socket is blocking (no timeout at all).
  aconnect HOST PORT T    asyncio.open_connection under asyncio.wait_for.
  open NAME HOST PORT [T] like connect, but keeps the connection as NAME.
  close NAME              closes connection NAME (`ok`, or `unknown`).
  ping NAME               sends a redis PING on NAME, expects +PONG.
  clients NAME            asks redis on NAME how many clients it has
                          (CLIENT LIST): `ok N`.
  listen                  a listening socket on a free 127.0.0.1 port
                          (kept, never accepted): `ok PORT`.
  ulisten PATH            a listening unix socket at PATH (kept).
  uconnect PATH           connects to the unix socket PATH, then closes.
  resolve NAME            socket.getaddrinfo(NAME, None).
  aresolve NAME           loop.getaddrinfo (runs in an executor thread).
  write PATH              os.open(O_WRONLY|O_CREAT|O_TRUNC), os.write,
                          os.fsync, close: `ok`, or `ERRNO STAGE` with STAGE
                          one of open, write, fsync.
  socket                  creates and closes a TCP socket.
  spawn CMD...            runs `python3 probe.py --once CMD...` as a child
                          process (fork+exec, inheriting the environment)
                          and answers with the child's answer.
  repeat N CMD...         runs CMD N times: the N answers' first words,
                          space separated, on one line.
  timed CMD...            runs CMD: its answer's first word and the time it
                          took in whole milliseconds, `ok 312`.
  quit                    answers `bye` and exits 0.

`python3 probe.py --once CMD... [+ CMD...]...` runs the commands given as
arguments (separated by `+` words), printing each answer, and exits. There
the command `exit` ends the process at once with status 0 (os._exit: no
cleanup, sockets left for the kernel to close), printing nothing.
"""

import asyncio
import errno
import inspect
import os
import socket
import subprocess
import sys
import time

EAI_NAMES = {
    getattr(socket, n): n for n in dir(socket) if n.startswith("EAI_")
}
conns = {}
listeners = []


def fail_name(e):
    if isinstance(e, socket.gaierror):
        return EAI_NAMES.get(e.errno, "EAI_%s" % e.errno)
    if isinstance(e, OSError) and e.errno is not None:
        return errno.errorcode.get(e.errno, "E%d" % e.errno)
    if isinstance(e, (TimeoutError, asyncio.TimeoutError)):
        return "timeout"
    return "error:%s" % type(e).__name__


def dial(host, port, timeout):
    # create_connection(timeout=None) leaves the socket blocking: the
    # default timeout is never set in this probe.
    t = None if timeout is None else float(timeout)
    return socket.create_connection((host, int(port)), timeout=t)


def c_connect(host, port, timeout=None):
    dial(host, port, timeout).close()
    return "ok"


def c_aconnect(host, port, timeout):
    async def go():
        r, w = await asyncio.wait_for(
            asyncio.open_connection(host, int(port)), float(timeout))
        w.close()
        try:
            await w.wait_closed()
        except OSError:
            pass

    asyncio.run(go())
    return "ok"


def c_open(name, host, port, timeout=None):
    old = conns.pop(name, None)
    if old is not None:
        old.close()
    conns[name] = dial(host, port, timeout)
    return "ok"


def c_close(name):
    s = conns.pop(name, None)
    if s is None:
        return "unknown"
    s.close()
    return "ok"


def c_ping(name):
    s = conns.get(name)
    if s is None:
        return "unknown"
    s.sendall(b"PING\r\n")
    got = b""
    while not got.endswith(b"\r\n"):
        chunk = s.recv(64)
        if not chunk:
            return "EOF"
        got += chunk
    return "ok" if got == b"+PONG\r\n" else "bad-reply"


def c_clients(name):
    s = conns.get(name)
    if s is None:
        return "unknown"
    s.sendall(b"CLIENT LIST\r\n")
    got = b""
    while b"\r\n" not in got:
        chunk = s.recv(4096)
        if not chunk:
            return "EOF"
        got += chunk
    head, _, body = got.partition(b"\r\n")
    if not head.startswith(b"$"):
        return "bad-reply"
    size = int(head[1:])
    while len(body) < size + 2:
        chunk = s.recv(4096)
        if not chunk:
            return "EOF"
        body += chunk
    return "ok %d" % len(body[:size].splitlines())


def c_listen():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    listeners.append(s)
    return "ok %d" % s.getsockname()[1]


def c_ulisten(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(128)
    listeners.append(s)
    return "ok"


def c_uconnect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    finally:
        s.close()
    return "ok"


def c_resolve(name):
    socket.getaddrinfo(name, None)
    return "ok"


def c_aresolve(name):
    async def go():
        await asyncio.get_running_loop().getaddrinfo(name, None)

    asyncio.run(go())
    return "ok"


def c_write(path):
    stage = "open"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            stage = "write"
            os.write(fd, b"faultline probe\n")
            stage = "fsync"
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        return "%s %s" % (fail_name(e), stage)
    return "ok"


def c_socket():
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    return "ok"


def c_spawn(*args):
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--once"]
                       + list(args), stdout=subprocess.PIPE, timeout=30)
    lines = r.stdout.decode(errors="replace").splitlines()
    if r.returncode != 0 or not lines:
        return "spawn-failed %d" % r.returncode
    return lines[-1]


def c_repeat(n, *args):
    return " ".join(run(list(args)).split()[0] for _ in range(int(n)))


def c_timed(*args):
    start = time.monotonic()
    answer = run(list(args))
    ms = int((time.monotonic() - start) * 1000)
    return "%s %d" % (answer.split()[0], ms)


COMMANDS = {
    "connect": c_connect,
    "aconnect": c_aconnect,
    "open": c_open,
    "close": c_close,
    "ping": c_ping,
    "clients": c_clients,
    "listen": c_listen,
    "ulisten": c_ulisten,
    "uconnect": c_uconnect,
    "resolve": c_resolve,
    "aresolve": c_aresolve,
    "write": c_write,
    "socket": c_socket,
    "spawn": c_spawn,
    "repeat": c_repeat,
    "timed": c_timed,
}


def run(words):
    if not words:
        return "usage:empty"
    fn = COMMANDS.get(words[0])
    if fn is None:
        return "usage:unknown-command"
    try:
        inspect.signature(fn).bind(*words[1:])
    except TypeError:
        return "usage:arguments"
    try:
        return fn(*words[1:])
    except Exception as e:  # the failure is the answer
        return fail_name(e)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--once":
        words = []
        for w in sys.argv[2:] + ["+"]:
            if w != "+":
                words.append(w)
                continue
            if words == ["exit"]:
                os._exit(0)
            print(run(words), flush=True)
            words = []
        return 0
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            print("bye", flush=True)
            return 0
        print(run(words), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
