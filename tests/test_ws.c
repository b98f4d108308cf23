/* WebSocket traffic against real WebSocket peers: a Python `websockets`
 * server (Debian's python3-websockets) with an echo, a broadcast to every
 * client, a path that closes with 1011, one that never answers and one
 * that refuses the upgrade. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "expect/expect.h"
#include "scenario/scenario.h"
#include "support.h"
#include "traffic/traffic.h"

/* Criterion's workers end with _exit(): LeakSanitizer's check at exit
 * never runs in them, so the ASan build checks each test's end itself. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() __lsan_do_recoverable_leak_check()
#else
#define LEAK_CHECK() 0
#endif

#define PYTHON "/usr/bin/python3"

static const char server_py[] =
    "import asyncio, http, sys, websockets\n"
    "\n"
    "def reject(path, headers):\n"
    "    if path == '/reject':\n"
    "        return http.HTTPStatus.SERVICE_UNAVAILABLE, [], b'no\\n'\n"
    "    if path == '/needtoken' and headers.get('X-Token') != 'abc':\n"
    "        return http.HTTPStatus.UNAUTHORIZED, [], b'who?\\n'\n"
    "\n"
    "clients = set()\n"
    "\n"
    "async def handler(ws):\n"
    "    p = ws.path\n"
    "    if p == '/broadcast':\n"
    "        clients.add(ws)\n"
    "        try:\n"
    "            async for m in ws:\n"
    "                websockets.broadcast(clients, m)\n"
    "        finally:\n"
    "            clients.discard(ws)\n"
    "    elif p.startswith('/echo'):\n"
    "        async for m in ws:\n"
    "            await ws.send(m)\n"
    "    elif p == '/close1011':\n"
    "        await asyncio.sleep(0.2)\n"
    "        await ws.close(1011, 'boom')\n"
    "    elif p == '/silent':\n"
    "        async for m in ws:\n"
    "            pass\n"
    "\n"
    "# A raw peer for broken handshakes, by path.\n"
    "ANSWERS = {\n"
    "    '/garbage': b'SSH-2.0-OpenSSH\\r\\n\\r\\n',\n"
    "    '/badaccept': b'HTTP/1.1 101 Switching Protocols\\r\\n'\n"
    "                  b'Upgrade: websocket\\r\\nConnection: Upgrade\\r\\n'\n"
    "                  b'Sec-WebSocket-Accept: AAAA\\r\\n\\r\\n',\n"
    "    '/endless': b'HTTP/1.1 101 Switching Protocols\\r\\nX: ' +\n"
    "                b'a' * 20000,\n"
    "}\n"
    "\n"
    "async def raw(reader, writer):\n"
    "    line = await reader.readline()\n"
    "    path = line.split()[1].decode() if len(line.split()) > 1 else ''\n"
    "    writer.write(ANSWERS.get(path, b'HTTP/1.1 404 No\\r\\n\\r\\n'))\n"
    "    await writer.drain()\n"
    "    await asyncio.sleep(30)\n"
    "\n"
    "async def main():\n"
    "    r = await asyncio.start_server(raw, '127.0.0.1', 0)\n"
    "    async with websockets.serve(handler, '127.0.0.1', 0,\n"
    "                                process_request=reject) as s:\n"
    "        port = s.sockets[0].getsockname()[1]\n"
    "        print('PORT', port, r.sockets[0].getsockname()[1], flush=True)\n"
    "        await asyncio.Future()\n"
    "\n"
    "asyncio.run(main())\n";

static struct {
  char dir[256];
  struct t_proc server;
  int port, raw_port; /* the websockets server; the raw peer */
  char base[64];
  uv_loop_t loop;
  fl_traffic_t *t;
  int stopped, freed, closed;
} S;

static void setup(void) {
  memset(&S, 0, sizeof(S));
  cr_assert_eq(uv_loop_init(&S.loop), 0);
  cr_assert_eq(t_mkdtemp(S.dir), 0);
  char script[300];
  snprintf(script, sizeof(script), "%s/server.py", S.dir);
  FILE *f = fopen(script, "w");
  cr_assert_not_null(f);
  fputs(server_py, f);
  fclose(f);
  char *argv[] = {PYTHON, script, NULL};
  cr_assert_eq(t_spawn(&S.server, argv, NULL, 1), 0);
  char line[256];
  cr_assert_eq(t_expect(&S.server, "PORT", line, sizeof(line), 15000), 0,
               "the WebSocket server did not start");
  cr_assert_eq(sscanf(line, "PORT %d %d", &S.port, &S.raw_port), 2);
  snprintf(S.base, sizeof(S.base), "http://127.0.0.1:%d", S.port);
}

static void on_freed(void *arg) { *(int *)arg = 1; }

static void teardown(void) {
  if (S.t != NULL && !S.freed) {
    fl_traffic_free(S.t, on_freed, &S.freed);
    for (int i = 0; i < 1000 && !S.freed; i++)
      uv_run(&S.loop, UV_RUN_ONCE);
  }
  if (!S.closed) {
    uv_run(&S.loop, UV_RUN_DEFAULT);
    uv_loop_close(&S.loop);
  }
  if (S.server.pid > 0)
    t_finish(&S.server, 0);
  t_rmtree(S.dir);
}

TestSuite(ws, .init = setup, .fini = teardown, .timeout = 60);

static void on_tick(uv_timer_t *h) { (void)h; }

/* Runs the loop until *flag is set or `seconds` pass. */
static int run_until(int *flag, double seconds) {
  uv_timer_t tick;
  uv_timer_init(&S.loop, &tick);
  uv_timer_start(&tick, on_tick, 5, 5);
  long long end = t_now_ms() + (long long)(seconds * 1000);
  while ((flag == NULL || !*flag) && t_now_ms() < end)
    uv_run(&S.loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&S.loop, UV_RUN_NOWAIT);
  return flag != NULL ? *flag : 1;
}

/* Frees the traffic and checks the loop holds nothing of it. */
static void finish(void) {
  fl_traffic_free(S.t, on_freed, &S.freed);
  cr_assert(run_until(&S.freed, 5), "free's done was not called");
  cr_assert_eq(uv_run(&S.loop, UV_RUN_NOWAIT), 0, "a libuv handle is active");
  cr_assert_eq(uv_loop_close(&S.loop), 0, "a libuv handle was left open");
  S.closed = 1;
  cr_assert_eq(LEAK_CHECK(), 0, "memory leaked (LeakSanitizer's report above)");
}

static void on_stopped(void *arg) {
  (void)arg;
  S.stopped = 1;
}

/* One WebSocket endpoint at path with spec ws. */
static void ws_traffic(const char *path, const struct fl_ws_spec *ws) {
  struct fl_endpoint_spec e = {
      .name = "live", .path = path, .timeout = 2, .seed = 1, .ws = ws};
  cr_assert_eq(fl_traffic_new(&S.loop, S.base, &S.t), 0);
  cr_assert_eq(fl_traffic_add(S.t, &e), 0);
  cr_assert_eq(fl_traffic_start(S.t), 0);
}

/* Runs the loop until cond() holds over the records (or the deadline),
 * then stops the traffic. */
static void run_while(int (*cond)(const struct fl_ws_records *), double max) {
  long long end = t_now_ms() + (long long)(max * 1000);
  struct fl_ws_records r;
  for (;;) {
    run_until(NULL, 0.05);
    cr_assert_eq(fl_traffic_ws_records(S.t, 0, &r), 0);
    if (cond(&r) || t_now_ms() > end)
      break;
  }
  fl_traffic_stop(S.t, on_stopped, NULL);
  cr_assert(run_until(&S.stopped, 5), "stop's done was not called");
}

static struct fl_ws_records recs(void) {
  struct fl_ws_records r;
  cr_assert_eq(fl_traffic_ws_records(S.t, 0, &r), 0);
  return r;
}

static int echoes_40(const struct fl_ws_records *r) {
  size_t rtts = 0;
  for (size_t i = 0; i < r->nmsgs; i++)
    rtts += r->msgs[i].rtt >= 0;
  return rtts >= 40;
}

Test(ws, echo_handshake_and_rtt) {
  struct fl_ws_spec ws = {.connections = 4,
                          .connect_rate = 100,
                          .message = "{\"op\":\"ping\",\"id\":{{1..9}}}",
                          .message_rate = 20};
  ws_traffic("/echo", &ws);
  run_while(echoes_40, 10);
  struct fl_ws_records r = recs();
  cr_assert_eq(r.nconns, 4, "one record per connection, got %zu", r.nconns);
  for (size_t i = 0; i < r.nconns; i++) {
    cr_assert_eq(r.conns[i].status, 101);
    cr_assert(r.conns[i].handshake >= 0 && r.conns[i].handshake < 2);
    cr_assert_eq(r.conns[i].error, 0);
    cr_assert_eq(r.conns[i].close_code, 0, "closed by us: not unexpected");
    cr_assert_gt(r.conns[i].received, 0);
    cr_assert_geq(r.conns[i].sent, r.conns[i].received);
  }
  cr_assert_geq(r.nmsgs, 40);
  for (size_t i = 0; i < r.nmsgs; i++) {
    cr_assert(r.msgs[i].rtt >= 0 && r.msgs[i].rtt < 1,
              "an echo's round trip: %g", r.msgs[i].rtt);
    cr_assert_lt(r.msgs[i].conn, r.nconns);
  }
  cr_assert_eq(fl_traffic_records(S.t, 0, &(const struct fl_request *){0}), 0);
  finish();
}

static int broadcast_60(const struct fl_ws_records *r) {
  for (size_t i = 0; i < r->nconns; i++)
    if (r->conns[i].received < 60)
      return 0;
  return r->nconns == 3;
}

Test(ws, broadcast_reaches_every_connection) {
  struct fl_ws_spec ws = {.connections = 3,
                          .connect_rate = 100,
                          .message = "news {{a,b,c}}",
                          .message_rate = 10};
  ws_traffic("/broadcast", &ws);
  run_while(broadcast_60, 15);
  struct fl_ws_records r = recs();
  cr_assert_eq(r.nconns, 3);
  uint64_t sent = 0;
  for (size_t i = 0; i < r.nconns; i++)
    sent += r.conns[i].sent;
  /* Each connection hears every connection's messages: about three
   * times what it sent itself. */
  for (size_t i = 0; i < r.nconns; i++)
    cr_assert_gt(r.conns[i].received, 2 * r.conns[i].sent,
                 "connection %zu sent %llu, received %llu", i,
                 (unsigned long long)r.conns[i].sent,
                 (unsigned long long)r.conns[i].received);
  cr_assert_leq(r.conns[0].received, sent);
  finish();
}

static int all_closed(const struct fl_ws_records *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->nconns; i++)
    n += r->conns[i].closed >= 0;
  return r->nconns >= 3 && n == r->nconns;
}

Test(ws, close_code_recorded_without_reconnect) {
  struct fl_ws_spec ws = {.connections = 3, .connect_rate = 100};
  ws_traffic("/close1011", &ws);
  run_while(all_closed, 10);
  struct fl_ws_records r = recs();
  cr_assert_eq(r.nconns, 3, "no reconnect asked: %zu records", r.nconns);
  for (size_t i = 0; i < r.nconns; i++) {
    cr_assert_eq(r.conns[i].status, 101);
    cr_assert_eq(r.conns[i].close_code, 1011, "close code %d",
                 r.conns[i].close_code);
    cr_assert_geq(r.conns[i].closed - r.conns[i].start, 0.15);
  }
  finish();
}

static int reconnected_thrice(const struct fl_ws_records *r) {
  int best = 0;
  for (size_t i = 0; i < r->nconns; i++)
    best = r->conns[i].attempt > best ? r->conns[i].attempt : best;
  return best >= 3;
}

Test(ws, reconnect_with_backoff) {
  struct fl_ws_spec ws = {.connections = 1,
                          .connect_rate = 10,
                          .reconnect = 0.1,
                          .reconnect_max = 0.4};
  ws_traffic("/close1011", &ws);
  run_while(reconnected_thrice, 10);
  struct fl_ws_records r = recs();
  cr_assert_geq(r.nconns, 4, "reconnects: %zu attempts", r.nconns);
  for (size_t i = 0; i + 1 < r.nconns; i++) {
    cr_assert_eq(r.conns[i].attempt, (int)i);
    cr_assert_eq(r.conns[i].close_code, 1011);
    /* The backoff: at least 0.1 s after the close (the handshake resets
     * it, so each wait is the first one). */
    cr_assert_geq(r.conns[i + 1].start - r.conns[i].closed, 0.09,
                  "reconnected %.3fs after the close",
                  r.conns[i + 1].start - r.conns[i].closed);
  }
  finish();
}

static int three_failed(const struct fl_ws_records *r) {
  return r->nconns >= 3;
}

Test(ws, refused_upgrade_and_closed_port) {
  struct fl_ws_spec ws = {.connections = 3, .connect_rate = 100};
  ws_traffic("/reject", &ws);
  run_while(all_closed, 10);
  struct fl_ws_records r = recs();
  cr_assert_eq(r.nconns, 3);
  for (size_t i = 0; i < r.nconns; i++) {
    cr_assert_eq(r.conns[i].status, 503);
    cr_assert_eq(r.conns[i].received, 0);
  }
  finish();

  /* A closed port: refused, no status. */
  cr_assert_eq(uv_loop_init(&S.loop), 0);
  S.closed = S.freed = S.stopped = 0;
  snprintf(S.base, sizeof(S.base), "http://127.0.0.1:%d", t_free_port());
  ws_traffic("/echo", &ws);
  run_while(three_failed, 10);
  r = recs();
  for (size_t i = 0; i < r.nconns; i++) {
    cr_assert_eq(r.conns[i].status, 0);
    cr_assert_eq(r.conns[i].error, FL_XFER_REFUSED, "error %d",
                 r.conns[i].error);
  }
  finish();
}

static int one_opened(const struct fl_ws_records *r) {
  return r->nconns >= 1 && r->conns[0].handshake >= 0;
}

static int one_ended(const struct fl_ws_records *r) {
  return r->nconns >= 1 && r->conns[0].closed >= 0;
}

/* Answers that are no WebSocket handshake end the attempt, unopened. */
Test(ws, broken_handshakes) {
  static const struct {
    const char *path;
    int status;
  } cases[] = {{"/garbage", 0}, {"/badaccept", 101}, {"/endless", 101}};
  snprintf(S.base, sizeof(S.base), "http://127.0.0.1:%d", S.raw_port);
  for (size_t k = 0; k < 3; k++) {
    if (k > 0) {
      cr_assert_eq(uv_loop_init(&S.loop), 0);
      S.closed = S.freed = S.stopped = 0;
    }
    struct fl_ws_spec ws = {.connections = 1, .connect_rate = 10};
    ws_traffic(cases[k].path, &ws);
    run_while(one_ended, 10);
    struct fl_ws_records r = recs();
    cr_assert_geq(r.nconns, 1);
    cr_assert_eq(r.conns[0].opened, 0, "%s opened", cases[k].path);
    cr_assert_eq(r.conns[0].error, FL_XFER_OTHER, "%s: error %d", cases[k].path,
                 r.conns[0].error);
    cr_assert_geq(r.conns[0].closed, 0, "%s: not ended", cases[k].path);
    /* The endless header is refused before it ends: no status read. */
    if (k < 2)
      cr_assert_eq(r.conns[0].status, cases[k].status, "%s: status %d",
                   cases[k].path, r.conns[0].status);
    finish();
  }
}

/* The endpoint's headers go with the Upgrade request. */
Test(ws, headers_on_the_upgrade) {
  static const char *const token[] = {"X-Token: abc", NULL};
  static const char *const wrong[] = {"X-Token: xyz", NULL};
  for (int k = 0; k < 2; k++) {
    if (k > 0) {
      cr_assert_eq(uv_loop_init(&S.loop), 0);
      S.closed = S.freed = S.stopped = 0;
    }
    struct fl_ws_spec ws = {.connections = 1, .connect_rate = 10};
    struct fl_endpoint_spec e = {.name = "live",
                                 .path = "/needtoken",
                                 .timeout = 2,
                                 .headers = k == 0 ? token : wrong,
                                 .ws = &ws};
    cr_assert_eq(fl_traffic_new(&S.loop, S.base, &S.t), 0);
    cr_assert_eq(fl_traffic_add(S.t, &e), 0);
    cr_assert_eq(fl_traffic_start(S.t), 0);
    run_while(k == 0 ? one_opened : one_ended, 10);
    struct fl_ws_records r = recs();
    cr_assert_geq(r.nconns, 1);
    cr_assert_eq(r.conns[0].status, k == 0 ? 101 : 401, "status %d",
                 r.conns[0].status);
    cr_assert_eq(r.conns[0].opened, k == 0);
    finish();
  }
  /* A header with a line break would smuggle another: refused. */
  static const char *const smuggle[] = {"X-A: 1\r\nX-B: 2", NULL};
  cr_assert_eq(uv_loop_init(&S.loop), 0);
  S.closed = S.freed = 0;
  struct fl_ws_spec ws = {.connections = 1, .connect_rate = 10};
  struct fl_endpoint_spec e = {
      .path = "/echo", .timeout = 2, .headers = smuggle, .ws = &ws};
  cr_assert_eq(fl_traffic_new(&S.loop, S.base, &S.t), 0);
  cr_assert_eq(fl_traffic_add(S.t, &e), -EINVAL);
  finish();
}

Test(ws, silent_peer_has_no_rtt) {
  struct fl_ws_spec ws = {.connections = 2,
                          .connect_rate = 100,
                          .message = "hello",
                          .message_rate = 20};
  ws_traffic("/silent", &ws);
  run_until(NULL, 1.0);
  fl_traffic_stop(S.t, on_stopped, NULL);
  cr_assert(run_until(&S.stopped, 5));
  struct fl_ws_records r = recs();
  cr_assert_eq(r.nconns, 2);
  cr_assert_eq(r.nmsgs, 0);
  for (size_t i = 0; i < r.nconns; i++) {
    cr_assert_eq(r.conns[i].status, 101);
    cr_assert_gt(r.conns[i].sent, 5, "it kept sending: %llu",
                 (unsigned long long)r.conns[i].sent);
  }
  finish();
}

static double slow_end;
static int past_slow(const struct fl_ws_records *r) {
  for (size_t i = 0; i < r->nmsgs; i++)
    if (r->conns[r->msgs[i].conn].slow && r->msgs[i].t > slow_end)
      return 1;
  return 0;
}

Test(ws, slow_reader_does_not_block_the_others) {
  struct fl_ws_spec ws = {.connections = 4,
                          .connect_rate = 200,
                          .message = "tick {{1..1000}}",
                          .message_rate = 50,
                          .slow_count = 1,
                          .slow_for = 1.0};
  ws_traffic("/echo", &ws);
  slow_end = 1.2;
  run_while(past_slow, 10);
  struct fl_ws_records r = recs();
  cr_assert_eq(r.nconns, 4);
  int slow = -1;
  for (size_t i = 0; i < r.nconns; i++)
    if (r.conns[i].slow) {
      cr_assert_eq(slow, -1, "one slow reader asked, two found");
      slow = (int)i;
    }
  cr_assert_geq(slow, 0);
  double open = r.conns[slow].start + r.conns[slow].handshake;
  size_t slow_in = 0, others_in = 0, slow_after = 0;
  for (size_t i = 0; i < r.nmsgs; i++) {
    int in = r.msgs[i].t > open && r.msgs[i].t < open + 0.95;
    if ((int)r.msgs[i].conn == slow) {
      slow_in += in;
      slow_after += r.msgs[i].t >= open + 1.0;
    } else {
      others_in += in;
    }
  }
  cr_assert_eq(slow_in, 0, "the slow reader read %zu messages", slow_in);
  /* Three others at 50/s for about a second: most of 150. */
  cr_assert_geq(others_in, 75, "the others read %zu meanwhile", others_in);
  cr_assert_gt(slow_after, 0, "the slow reader read again afterwards");
  finish();
}

Test(ws, message_templates_checked) {
  int col = 0;
  char err[256];
  cr_assert_eq(fl_ws_message_check("{\"a\":1}", &col, err, sizeof(err)), 0);
  cr_assert_eq(
      fl_ws_message_check("id {{1..5}} {{a,b}}", &col, err, sizeof(err)), 0);
  cr_assert_neq(fl_ws_message_check("x {{1..5", &col, err, sizeof(err)), 0);
  cr_assert_eq(col, 3);
  cr_assert_neq(fl_ws_message_check("x {{5..1}}", &col, err, sizeof(err)), 0);
  cr_assert_neq(fl_ws_message_check("x {{a}}", &col, err, sizeof(err)), 0);
}

/* ---- Expectations over WebSocket records ------------------------------ */

/* Judges text over r in [from, to): 1 pass, 0 fail; observed in obs. */
static int judge(const char *text, const struct fl_ws_records *r, double from,
                 double to, char *obs) {
  struct fl_expect e;
  char err[256], exp[256];
  int col;
  cr_assert_eq(fl_expect_parse(text, &e, &col, err, sizeof(err)), 0, "'%s': %s",
               text, err);
  cr_assert(fl_expect_is_endpoint(&e) && fl_expect_is_ws(&e));
  return fl_expect_eval_ws(&e, r, from, to, exp, sizeof(exp), obs, 256);
}

/* Ten seconds: 10 attempts a second; seconds 3 and 4 every other one gets
 * a 503; connection 0 closes with 1011 at t=5.5, connection 1 drops
 * (1006) at t=6.5; replies to connections 0-2 with rtt 10 ms, one of
 * 400 ms. */
static struct fl_ws_conn cs[100];
static struct fl_ws_msg ms[300];
static struct fl_ws_records synthetic(void) {
  for (int i = 0; i < 100; i++) {
    int bad = (i / 10 == 3 || i / 10 == 4) && i % 2 == 0;
    cs[i] = (struct fl_ws_conn){.slot = i,
                                .start = i * 0.1,
                                .handshake = 0.005,
                                .status = bad ? 503 : 101,
                                .opened = !bad,
                                .closed = bad ? i * 0.1 + 0.005 : -1};
  }
  cs[0].close_code = 1011;
  cs[0].closed = 5.5;
  cs[1].close_code = 1006;
  cs[1].closed = 6.5;
  for (int k = 0; k < 300; k++)
    ms[k] = (struct fl_ws_msg){
        .t = 0.5 + k * 0.03, .rtt = 0.01f, .conn = (uint32_t)(k % 3)};
  ms[150].rtt = 0.4f;
  return (struct fl_ws_records){cs, 100, ms, 300};
}

Test(ws_expect, judged_pass_and_fail) {
  struct fl_ws_records r = synthetic();
  char obs[256];
  cr_assert(judge("connect rate(101) >= 99%", &r, 0, 3, obs), "%s", obs);
  cr_assert_not(judge("connect rate(101) >= 99%", &r, 3, 5, obs), "%s", obs);
  cr_assert(strstr(obs, "50.0% (10 of 20") != NULL, "%s", obs);
  cr_assert(judge("connect rate(503) == 50%", &r, 3, 5, obs), "%s", obs);
  cr_assert(judge("rtt p(50) < 20ms", &r, 0, 10, obs), "%s", obs);
  cr_assert_not(judge("rtt p(100) < 200ms", &r, 0, 10, obs), "%s", obs);
  cr_assert_not(judge("rtt p(99) < 1s", &r, 9.5, 10, obs), "no replies");
  cr_assert(strstr(obs, "no replies") != NULL, "%s", obs);
  cr_assert(judge("closes(1011) == 1", &r, 5, 6, obs), "%s", obs);
  cr_assert_not(judge("closes(1011) == 0", &r, 0, 10, obs), "%s", obs);
  cr_assert(strstr(obs, "t=5.50s, code 1011") != NULL, "%s", obs);
  cr_assert(judge("closes(1011) == 0", &r, 6, 10, obs), "%s", obs);
  cr_assert(judge("closes(any) <= 2", &r, 0, 10, obs), "%s", obs);
  cr_assert_not(judge("closes(any) <= 1", &r, 0, 10, obs), "%s", obs);
  /* Connections 0-2 get 100 each over the run; in [1, 2) connections 0-9
   * are open, and 3-9 got nothing. */
  cr_assert_not(judge("messages >= 1 per connection", &r, 1, 2, obs), "%s",
                obs);
  cr_assert(strstr(obs, "fewest 0") != NULL, "%s", obs);
  struct fl_ws_records three = {cs, 3, ms, 300};
  cr_assert(judge("messages >= 30 per connection", &three, 0, 5, obs), "%s",
            obs);
  cr_assert(
      judge("recovers(connect rate(101) >= 99%) within 5s", &r, 0, 10, obs),
      "%s", obs);
  cr_assert(strstr(obs, "recovered after 5.0s") != NULL, "%s", obs);
  cr_assert_not(
      judge("recovers(connect rate(101) >= 99%) within 4s", &r, 0, 10, obs),
      "%s", obs);
  struct fl_ws_records none = {0};
  cr_assert_not(judge("connect rate(101) >= 99%", &none, 0, 10, obs));
  cr_assert_str_eq(obs, "no connections");
}

/* ---- The runner: a scenario with WebSocket endpoints ------------------- */

/* The same server as a service: PORT from the environment, /health for
 * readiness. */
static const char service_py[] =
    "import asyncio, http, os, websockets\n"
    "async def handler(ws):\n"
    "    if ws.path == '/close1011':\n"
    "        await asyncio.sleep(0.2)\n"
    "        await ws.close(1011, 'boom')\n"
    "        return\n"
    "    async for m in ws:\n"
    "        await ws.send(m)\n"
    "def health(path, headers):\n"
    "    if path == '/health':\n"
    "        return http.HTTPStatus.OK, [], b'ok\\n'\n"
    "async def main():\n"
    "    async with websockets.serve(handler, '127.0.0.1',\n"
    "                                int(os.environ['PORT']),\n"
    "                                process_request=health):\n"
    "        await asyncio.Future()\n"
    "asyncio.run(main())\n";

static const char service_yaml[] = "service: wsecho\n"
                                   "command: [/usr/bin/python3, service.py]\n"
                                   "env: { PORT: \"${PORT}\" }\n"
                                   "ready: { http: /health, timeout: 20s }\n";

static const char scenario_yaml[] =
    "scenario: ws-run\n"
    "service: service.yaml\n"
    "traffic:\n"
    "  live:\n"
    "    request: WS /echo\n"
    "    connections: 5\n"
    "    connect_rate: 50/s\n"
    "    message: '{\"n\": {{1..9}}}'\n"
    "    message_rate: 10/s\n"
    "  drops:\n"
    "    request: WS /close1011\n"
    "    connections: 2\n"
    "    reconnect: 100ms\n"
    "timeline:\n"
    "  - phase: steady\n"
    "    duration: 2s\n"
    "expect:\n"
    "  steady:\n"
    "    live: [ \"connect rate(101) >= 99%\", \"rtt p(50) < 1s\",\n"
    "            \"closes(any) == 0\", \"messages >= 5 per connection\" ]\n"
    "    drops: [ \"closes(1011) == 0\", \"closes(1011) >= 2\" ]\n";

static void put_file(const char *name, const char *text) {
  char path[400];
  snprintf(path, sizeof(path), "%s/%s", S.dir, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(text, f);
  fclose(f);
}

static json_t *expectation(json_t *sc, const char *endpoint, const char *text) {
  size_t i;
  json_t *x;
  json_array_foreach(json_object_get(sc, "expectations"), i, x) {
    if (strcmp(json_string_value(json_object_get(x, "text")), text) == 0 &&
        strcmp(json_string_value(json_object_get(x, "endpoint")), endpoint) ==
            0)
      return x;
  }
  cr_assert_fail("no expectation '%s' for %s", text, endpoint);
  return NULL;
}

static const char *verdict(json_t *x) {
  return json_string_value(json_object_get(x, "verdict"));
}

Test(ws, runner_judges_and_writes_websocket) {
  put_file("service.py", service_py);
  put_file("service.yaml", service_yaml);
  put_file("scenario.yaml", scenario_yaml);
  char sc[400], out[400];
  snprintf(sc, sizeof(sc), "%s/scenario.yaml", S.dir);
  snprintf(out, sizeof(out), "%s/out", S.dir);
  char *argv[] = {T_FAULTLINE, "run", "--out", out, sc, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 60000, &r), 0);
  /* One expectation fails on purpose: the run is FAIL (exit 1). */
  cr_assert_eq(r.status, 1, "exit %d: %s%s", r.status, r.out, r.err);
  t_run_free(&r);
  char path[500];
  snprintf(path, sizeof(path), "%s/result.json", out);
  json_error_t jerr;
  json_t *doc = json_load_file(path, 0, &jerr);
  cr_assert_not_null(doc, "%s", jerr.text);
  json_t *scn = json_array_get(json_object_get(doc, "scenarios"), 0);
  cr_assert_str_eq(verdict(scn), "FAIL");
  static const char *const pass[] = {"connect rate(101) >= 99%",
                                     "rtt p(50) < 1s", "closes(any) == 0",
                                     "messages >= 5 per connection"};
  for (size_t i = 0; i < 4; i++) {
    json_t *x = expectation(scn, "live", pass[i]);
    cr_expect_str_eq(verdict(x), "PASS", "%s: %s", pass[i],
                     json_string_value(json_object_get(x, "observed")));
  }
  cr_expect_str_eq(verdict(expectation(scn, "drops", "closes(1011) == 0")),
                   "FAIL");
  cr_expect_str_eq(verdict(expectation(scn, "drops", "closes(1011) >= 2")),
                   "PASS");
  json_t *eps = json_object_get(scn, "endpoints");
  json_t *live = json_object_get(json_array_get(eps, 0), "websocket");
  json_t *drops = json_object_get(json_array_get(eps, 1), "websocket");
  cr_assert(json_is_object(live) && json_is_object(drops));
  cr_expect_eq(json_integer_value(json_object_get(live, "connections")), 5);
  cr_expect_eq(json_integer_value(json_object_get(live, "opened")), 5);
  json_t *msgs = json_object_get(live, "messages");
  cr_expect_gt(json_integer_value(json_object_get(msgs, "received")), 25);
  cr_expect(
      json_is_number(json_object_get(json_object_get(live, "rtt"), "p99")));
  cr_expect_gt(json_integer_value(json_object_get(drops, "reconnects")), 0);
  /* A second each: by the end of the first, all five are open. */
  json_t *series = json_object_get(live, "series");
  cr_assert_eq(json_array_size(series), 2);
  cr_expect_eq(
      json_integer_value(json_object_get(json_array_get(series, 0), "open")),
      5);
  cr_expect_gt(
      json_integer_value(json_object_get(json_array_get(series, 1), "replies")),
      25);
  cr_expect_geq(json_integer_value(json_object_get(
                    json_object_get(drops, "close_codes"), "1011")),
                2);
  json_decref(doc);
}

/* message: a YAML mapping is sent as its JSON text. */
Test(ws, json_message_from_yaml) {
  put_file("json.yaml",
           "scenario: j\n"
           "traffic:\n"
           "  live:\n"
           "    request: WS /ws\n"
           "    connections: 1\n"
           "    message: { op: ping, id: \"{{1..9}}\", n: 3, ok: true,\n"
           "               tags: [a, \"b\\\"c\"], more: { x: 1.5, y: null } }\n"
           "timeline:\n"
           "  - phase: p\n"
           "    duration: 1s\n");
  char path[400], err[FL_ERRLEN];
  snprintf(path, sizeof(path), "%s/json.yaml", S.dir);
  struct fl_scenario *sc = NULL;
  cr_assert_eq(fl_scenario_load(path, &sc, err, sizeof(err)), 0, "%s", err);
  cr_assert(sc->endpoints[0].ws);
  cr_assert_str_eq(
      sc->endpoints[0].message,
      "{\"op\":\"ping\",\"id\":\"{{1..9}}\",\"n\":3,\"ok\":true,"
      "\"tags\":[\"a\",\"b\\\"c\"],\"more\":{\"x\":1.5,\"y\":null}}");
  cr_assert_eq(sc->endpoints[0].wspec.connections, 1);
  fl_scenario_free(sc);
}
