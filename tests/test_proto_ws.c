/*
 * WebSocket protocol faults (ws_close, ws_nopong, ws_drop) through the
 * real proxy as `faultline exec --proxy ws=HOST:PORT` starts it, in front
 * of a real WebSocket upstream (tests/data/ws_upstream.py, an echo on
 * python3-websockets), seen by real clients other than ours: Python's
 * websockets and Node's ws (Debian's node-ws), with their own close codes
 * and exceptions asserted.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support.h"

#define PY "/usr/bin/python3"
#define NODE "/usr/bin/node"

static struct t_proc up;
static char up_addr[64], proxy_arg[80], up_url[80];

static void start_upstream(void) {
  int port = t_free_port();
  char ps[16];
  snprintf(ps, sizeof(ps), "%d", port);
  char *argv[] = {PY, T_DATA "/ws_upstream.py", ps, NULL};
  cr_assert_eq(t_spawn(&up, argv, NULL, 1), 0);
  cr_assert_eq(t_wait_port(port, 10000), 0, "the upstream did not start");
  snprintf(up_addr, sizeof(up_addr), "127.0.0.1:%d", port);
  snprintf(proxy_arg, sizeof(proxy_arg), "ws=%s", up_addr);
  snprintf(up_url, sizeof(up_url), "ws://%s/", up_addr);
}

static void stop_upstream(void) {
  if (up.pid > 0) {
    kill(up.pid, SIGKILL);
    t_finish(&up, 5000);
  }
}

TestSuite(proto_ws, .init = start_upstream, .fini = stop_upstream,
          .timeout = 60);

/* `faultline exec --proxy ws=UP [--fault F@UP,OPTS] -- PROG -e|-c SCRIPT
 * URL`: the script gets the upstream's URL as its last argument. */
static void run_client(const char *fault, const char *prog, const char *script,
                       struct t_run *r) {
  char spec[512];
  char *argv[16];
  int n = 0;
  argv[n++] = T_FAULTLINE;
  argv[n++] = "exec";
  argv[n++] = "--quiet";
  argv[n++] = "--proxy";
  argv[n++] = proxy_arg;
  if (fault != NULL) {
    const char *comma = strchr(fault, ',');
    snprintf(spec, sizeof(spec), "%.*s@%s%s",
             (int)(comma ? comma - fault : (long)strlen(fault)), fault, up_addr,
             comma ? comma : "");
    argv[n++] = "--fault";
    argv[n++] = spec;
  }
  argv[n++] = "--";
  argv[n++] = (char *)prog;
  argv[n++] = strcmp(prog, NODE) == 0 ? "-e" : "-c";
  argv[n++] = (char *)script;
  argv[n++] = up_url;
  argv[n] = NULL;
  cr_assert_eq(t_run(argv, NULL, NULL, 30000, r), 0);
}

#define PY_HEAD                                                                \
  "import asyncio, sys, websockets\n"                                          \
  "async def main():\n"

#define PY_TAIL "asyncio.run(main())\n"

/* Node's ws, from Debian's node-ws (outside NODE_PATH's defaults). */
#define NODE_HEAD                                                              \
  "const WebSocket = require('/usr/share/nodejs/ws');\n"                       \
  "const url = process.argv[process.argv.length - 1];\n"

Test(proto_ws, passes_frames_untouched_with_no_fault) {
  struct t_run r;
  /* Text, a 200 kB binary message (16- and 64-bit lengths, many chunks)
   * and a ping: all come back as they went. */
  run_client(NULL, PY,
             PY_HEAD
             "    async with websockets.connect(sys.argv[-1], max_size=None) "
             "as ws:\n"
             "        await ws.send('hello')\n"
             "        a = await ws.recv()\n"
             "        big = bytes(range(256)) * 800\n"
             "        await ws.send(big)\n"
             "        b = await ws.recv()\n"
             "        await asyncio.wait_for(await ws.ping(), 5)\n"
             "        print(a, b == big)\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "hello True\n");
  t_run_free(&r);
}

Test(proto_ws, close_reaches_python_as_its_code_and_reason) {
  struct t_run r;
  run_client("ws_close,code=1011", PY,
             PY_HEAD "    async with websockets.connect(sys.argv[-1]) as ws:\n"
                     "        try:\n"
                     "            await ws.send('x')\n"
                     "            print(await asyncio.wait_for(ws.recv(), 5))\n"
                     "        except websockets.ConnectionClosedError as e:\n"
                     "            print(type(e).__name__, e.rcvd.code, "
                     "e.rcvd.reason)\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "ConnectionClosedError 1011 internal error\n");
  t_run_free(&r);
}

Test(proto_ws, close_reaches_node_with_a_chosen_code_and_reason) {
  struct t_run r;
  run_client("ws_close,code=1013,reply=come back later", NODE,
             NODE_HEAD
             "const ws = new WebSocket(url);\n"
             "ws.on('message', m => console.log('message', String(m)));\n"
             "ws.on('error', e => console.log('error', e.message));\n"
             "ws.on('close', (code, why) => console.log(code, String(why)));\n",
             &r);
  cr_assert_eq(r.status, 0, "node: %s", r.err);
  cr_assert_str_eq(r.out, "1013 come back later\n");
  t_run_free(&r);
}

Test(proto_ws, close_to_the_server_leaves_the_client_without_a_close_frame) {
  struct t_run r;
  run_client("ws_close,code=1001,dir=up", PY,
             PY_HEAD "    async with websockets.connect(sys.argv[-1]) as ws:\n"
                     "        try:\n"
                     "            print(await asyncio.wait_for(ws.recv(), 5))\n"
                     "        except websockets.ConnectionClosedError as e:\n"
                     "            print(type(e).__name__, e.rcvd)\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  /* The server got our 1001 and the connection ended: the client saw
   * no Close frame (1006, abnormal closure). */
  cr_assert_str_eq(r.out, "ConnectionClosedError None\n");
  t_run_free(&r);
}

Test(proto_ws, nopong_makes_python_time_out_its_keepalive) {
  struct t_run r;
  run_client("ws_nopong", PY,
             PY_HEAD "    async with websockets.connect(sys.argv[-1], "
                     "ping_interval=0.3, ping_timeout=0.6) as ws:\n"
                     "        await ws.send('still open')\n"
                     "        print(await ws.recv())\n"
                     "        try:\n"
                     "            await asyncio.wait_for(ws.recv(), 10)\n"
                     "        except websockets.ConnectionClosedError as e:\n"
                     "            print(type(e).__name__, e.sent.code, "
                     "e.sent.reason)\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  /* Messages still pass; the pongs do not, and the client gives up. */
  cr_assert_str_eq(r.out, "still open\nConnectionClosedError 1011 "
                          "keepalive ping timeout\n");
  t_run_free(&r);
}

Test(proto_ws, nopong_leaves_node_open_with_pings_unanswered) {
  struct t_run r;
  run_client("ws_nopong", NODE,
             NODE_HEAD
             "const ws = new WebSocket(url);\n"
             "let pongs = 0;\n"
             "ws.on('pong', () => pongs++);\n"
             "ws.on('open', () => { ws.ping(); ws.ping(); ws.send('one'); });\n"
             "ws.on('message', m => {\n"
             "  setTimeout(() => { console.log(String(m), 'pongs', pongs,\n"
             "    'state', ws.readyState); ws.terminate(); }, 500);\n"
             "});\n",
             &r);
  cr_assert_eq(r.status, 0, "node: %s", r.err);
  cr_assert_str_eq(r.out, "one pongs 0 state 1\n");
  t_run_free(&r);
}

Test(proto_ws, drop_loses_whole_messages_and_keeps_the_rest) {
  struct t_run r;
  /* times=1: the first message up is dropped; a fragmented one (three
   * frames) and a ping pass after it. Uncompressed: a compressed one is
   * never dropped (drop_leaves_compressed_messages_with_context_alone). */
  run_client("ws_drop,dir=up,times=1", NODE,
             NODE_HEAD
             "const ws = new WebSocket(url, {perMessageDeflate: false});\n"
             "ws.on('open', () => {\n"
             "  ws.send('lost');\n"
             "  ws.send('fra', {fin: false});\n"
             "  ws.send('gme', {fin: false});\n"
             "  ws.send('nted', {fin: true});\n"
             "  ws.send('last');\n"
             "});\n"
             "const got = [];\n"
             "ws.on('message', m => {\n"
             "  got.push(String(m));\n"
             "  if (got.length == 2) { console.log(got.join(' '));"
             " ws.close(); }\n"
             "});\n",
             &r);
  cr_assert_eq(r.status, 0, "node: %s", r.err);
  cr_assert_str_eq(r.out, "fragmented last\n");
  t_run_free(&r);
}

Test(proto_ws, drop_of_a_fragmented_message_drops_its_continuations) {
  struct t_run r;
  run_client(
      "ws_drop,dir=down,times=1", NODE,
      NODE_HEAD
      "const ws = new WebSocket(url, {perMessageDeflate: false});\n"
      "ws.on('open', () => {\n"
      "  ws.send('a'.repeat(100000));\n"
      "  ws.send('kept');\n"
      "});\n"
      "ws.on('message', m => { console.log(String(m)); ws.close(); });\n",
      &r);
  cr_assert_eq(r.status, 0, "node: %s", r.err);
  cr_assert_str_eq(r.out, "kept\n");
  t_run_free(&r);
}

Test(proto_ws, a_fault_costs_only_the_connections_it_touches) {
  struct t_run r;
  /* times=1: the first connection is closed, the second one echoes. */
  run_client("ws_close,code=1012,times=1", PY,
             PY_HEAD
             "    a = await websockets.connect(sys.argv[-1])\n"
             "    try:\n"
             "        await asyncio.wait_for(a.recv(), 5)\n"
             "    except websockets.ConnectionClosedError as e:\n"
             "        print('first', e.rcvd.code)\n"
             "    async with websockets.connect(sys.argv[-1]) as b:\n"
             "        await b.send('second echoes')\n"
             "        print(await asyncio.wait_for(b.recv(), 5))\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "first 1012\nsecond echoes\n");
  t_run_free(&r);
}

/* p=0.5: about half of 200 messages up are lost, each whole, and those
 * that pass keep their order. No compression: see the next test. */
#define PY_COUNT_ECHOES(connect_opts)                                          \
  PY_HEAD                                                                      \
  "    async with websockets.connect(sys.argv[-1]" connect_opts ") as ws:\n"   \
  "        for i in range(200):\n"                                             \
  "            await ws.send('m%d' % i)\n"                                     \
  "        got = []\n"                                                         \
  "        try:\n"                                                             \
  "            while True:\n"                                                  \
  "                got.append(await asyncio.wait_for(ws.recv(), 1.5))\n"       \
  "        except asyncio.TimeoutError:\n"                                     \
  "            pass\n"                                                         \
  "        ids = [int(m[1:]) for m in got]\n"                                  \
  "        print(len(got), ids == sorted(ids))\n" PY_TAIL

Test(proto_ws, drop_a_share_loses_about_that_share) {
  struct t_run r;
  run_client("ws_drop,dir=up,p=0.5", PY, PY_COUNT_ECHOES(", compression=None"),
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  int n = -1;
  char ordered[8] = "";
  cr_assert_eq(sscanf(r.out, "%d %7s", &n, ordered), 2, "%s", r.out);
  cr_expect(n >= 40 && n <= 160, "%d of 200 came back (p=0.5)", n);
  cr_expect_str_eq(ordered, "True");
  t_run_free(&r);
}

/* Python's client and server agree on permessage-deflate keeping its
 * context: a compressed message dropped would leave the server's
 * inflater without its dictionary (it fails the connection, 1002). Such
 * messages pass: every echo comes back, nothing is corrupted. */
Test(proto_ws, drop_leaves_compressed_messages_with_context_alone) {
  struct t_run r;
  run_client("ws_drop,dir=up", PY, PY_COUNT_ECHOES(""), &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "200 True\n");
  t_run_free(&r);
}

/* The stream faults below the codec apply unchanged: reset_peer ends the
 * connection with no Close frame (the client's abnormal closure), stall
 * holds even the handshake back. */
Test(proto_ws, reset_peer_ends_the_stream_without_a_close_frame) {
  struct t_run r;
  run_client("reset_peer,ms=500", PY,
             PY_HEAD "    async with websockets.connect(sys.argv[-1]) as ws:\n"
                     "        await ws.send('before')\n"
                     "        print(await ws.recv())\n"
                     "        try:\n"
                     "            await asyncio.wait_for(ws.recv(), 10)\n"
                     "        except websockets.ConnectionClosedError as e:\n"
                     "            print(type(e).__name__, e.rcvd)\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "before\nConnectionClosedError None\n");
  t_run_free(&r);
}

Test(proto_ws, stall_holds_the_handshake_back) {
  struct t_run r;
  run_client("stall", PY,
             PY_HEAD "    t = asyncio.get_running_loop().time()\n"
                     "    try:\n"
                     "        await websockets.connect(sys.argv[-1], "
                     "open_timeout=1)\n"
                     "        print('opened')\n"
                     "    except asyncio.TimeoutError:\n"
                     "        print('timed out', "
                     "asyncio.get_running_loop().time() - t >= 1)\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "timed out True\n");
  t_run_free(&r);
}

/* The stream toxics apply to a WebSocket stream unchanged: latency holds
 * each message back (a round trip gets at least the injected 300 ms), the
 * slicer cuts frames into 7-byte pieces (the codec and the client put
 * them back together), and a close fault still finds the frame boundary
 * behind them. */
Test(proto_ws, latency_and_slicer_keep_messages_whole) {
  struct t_run r;
  run_client("latency,ms=300", PY,
             PY_HEAD "    async with websockets.connect(sys.argv[-1]) as ws:\n"
                     "        loop = asyncio.get_running_loop()\n"
                     "        t = loop.time()\n"
                     "        await ws.send('x' * 1000)\n"
                     "        m = await ws.recv()\n"
                     "        print(len(m), loop.time() - t >= 0.3)\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "1000 True\n");
  t_run_free(&r);

  run_client("slicer,size=7", NODE,
             NODE_HEAD "const ws = new WebSocket(url, {perMessageDeflate: "
                       "false});\n"
                       "const big = 'y'.repeat(70000);\n"
                       "ws.on('open', () => { ws.send('one'); ws.send(big); "
                       "});\n"
                       "const got = [];\n"
                       "ws.on('message', m => {\n"
                       "  got.push(String(m).length);\n"
                       "  if (got.length == 2) { console.log(got.join(' '));"
                       " ws.close(); }\n"
                       "});\n",
             &r);
  cr_assert_eq(r.status, 0, "node: %s", r.err);
  cr_assert_str_eq(r.out, "3 70000\n");
  t_run_free(&r);
}

/* bandwidth (both ways by default): a 96 KiB echo, 192 KiB on the wire,
 * at 64 KiB/s takes about three seconds and still arrives whole. Random
 * bytes and no permessage-deflate, or the wire would carry far less. */
Test(proto_ws, bandwidth_paces_a_large_message) {
  struct t_run r;
  run_client("bandwidth,rate=64k", PY,
             PY_HEAD
             "    async with websockets.connect(sys.argv[-1], max_size=None, "
             "compression=None) as ws:\n"
             "        loop = asyncio.get_running_loop()\n"
             "        big = __import__('os').urandom(96 * 1024)\n"
             "        t = loop.time()\n"
             "        await ws.send(big)\n"
             "        m = await asyncio.wait_for(ws.recv(), 20)\n"
             "        took = loop.time() - t\n"
             "        print(m == big, took >= 2.5, took)\n" PY_TAIL,
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert(strncmp(r.out, "True True ", 10) == 0, "%s", r.out);
  t_run_free(&r);
}

Test(proto_ws, plain_http_on_the_port_is_left_alone) {
  struct t_run r;
  /* No upgrade: the server's 426 passes and the codec stands aside. */
  run_client("ws_close", PY,
             "import sys, urllib.request, urllib.error\n"
             "u = sys.argv[-1].replace('ws://', 'http://')\n"
             "try:\n"
             "    urllib.request.urlopen(u, timeout=5)\n"
             "except urllib.error.HTTPError as e:\n"
             "    print(e.code)\n",
             &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "426\n");
  t_run_free(&r);
}

Test(proto_ws, the_stub_kind_echoes_and_broadcasts) {
  char dir[256], conf[300], ps[16];
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(conf, sizeof(conf), "%s/ws.json", dir);
  FILE *f = fopen(conf, "w");
  cr_assert_not_null(f);
  fputs("{\"broadcast_ms\":100,\"message\":\"tick\"}", f);
  fclose(f);
  int port = t_free_port();
  snprintf(ps, sizeof(ps), "%d", port);
  char run[300];
  snprintf(run, sizeof(run), "%s-run", T_FAULTLINE);
  char *argv[] = {run, "wsstub", "--port", ps, conf, NULL};
  struct t_proc stub;
  cr_assert_eq(t_spawn(&stub, argv, NULL, 1), 0);
  cr_assert_eq(t_wait_port(port, 10000), 0, "the stub did not start");
  char url[64];
  snprintf(url, sizeof(url), "ws://127.0.0.1:%d/any", port);
  char *cmd[] = {PY, "-c",
                 "import asyncio, sys, json, websockets\n"
                 "async def main():\n"
                 "    async with websockets.connect(sys.argv[1]) as ws:\n"
                 "        await ws.send('echo me')\n"
                 "        got = [await ws.recv() for _ in range(3)]\n"
                 "        print('echo me' in got,"
                 " sum('\"broadcast\":\"tick\"' in g for g in got) >= 2)\n"
                 "asyncio.run(main())\n",
                 url, NULL};
  struct t_run r;
  cr_assert_eq(t_run(cmd, NULL, NULL, 20000, &r), 0);
  kill(stub.pid, SIGTERM);
  cr_assert_eq(t_finish(&stub, 5000), 0, "the stub did not stop on SIGTERM");
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "True True\n");
  t_run_free(&r);
  t_rmtree(dir);
}
