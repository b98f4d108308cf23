/* Open-loop traffic against real servers: a small Python HTTP server
 * (chosen statuses per path, 503 with Retry-After, a slow path, an echo)
 * plus listeners that reset or close connections, and a closed port. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

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

/* Prints "PORTS HTTP RST FIN": the HTTP server (/id/... answers with the
 * path it was asked in X-Path; /hold/SECONDS waits that long and says in
 * X-Inflight how many requests for that path it held at once, its own
 * arrival included, counted down before it answers); a listener that reads the
 * request and resets the connection (SO_LINGER 0); one that closes a
 * connection as soon as it accepts it. Every response says which client
 * port it came in on (X-Conn), so a test can count connections. Responses
 * go out in one write with Nagle off: written in pieces, each would wait
 * for the client's delayed ACK (40 ms). */
static const char server_py[] =
    "import socket, struct, sys, threading, time\n"
    "from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler\n"
    "\n"
    "lock, busy = threading.Lock(), {}\n"
    "\n"
    "class H(BaseHTTPRequestHandler):\n"
    "    protocol_version = 'HTTP/1.1'\n"
    "    disable_nagle_algorithm = True\n"
    "    wbufsize = 65536\n"
    "    def log_message(self, *a):\n"
    "        pass\n"
    "    def reply(self, code, headers=(), body=b'ok\\n'):\n"
    "        self.send_response(code)\n"
    "        for k, v in headers:\n"
    "            self.send_header(k, v)\n"
    "        self.send_header('Content-Length', str(len(body)))\n"
    "        self.send_header('X-Conn', str(self.client_address[1]))\n"
    "        self.end_headers()\n"
    "        self.wfile.write(body)\n"
    "    def any(self):\n"
    "        n = int(self.headers.get('Content-Length') or 0)\n"
    "        body = self.rfile.read(n) if n else b''\n"
    "        p = self.path\n"
    "        if p == '/ok':\n"
    "            self.reply(200)\n"
    "        elif p.startswith('/status/'):\n"
    "            self.reply(int(p[8:]))\n"
    "        elif p == '/busy':\n"
    "            self.reply(503, [('Retry-After', '  7 ')])\n"
    "        elif p == '/busy-upper':\n"
    "            self.reply(503, [('RETRY-AFTER',\n"
    "                              'Wed, 21 Oct 2015 07:28:00 GMT'),\n"
    "                             ('x-custom', '\\t a b ')])\n"
    "        elif p == '/slow':\n"
    "            time.sleep(1.0)\n"
    "            self.reply(200)\n"
    "        elif p.startswith('/id/'):\n"
    "            self.reply(200, [('X-Path', p)])\n"
    "        elif p.startswith('/hold/'):\n"
    "            with lock:\n"
    "                busy[p] = busy.get(p, 0) + 1\n"
    "                now = busy[p]\n"
    "            time.sleep(float(p[6:]))\n"
    "            with lock:\n"
    "                busy[p] -= 1\n"
    "            self.reply(200, [('X-Inflight', str(now))])\n"
    "        elif p == '/echo':\n"
    "            short = body.decode()[:64]\n"
    "            self.reply(200, [('X-Echo-Method', self.command),\n"
    "                             ('X-Echo-Body', short),\n"
    "                             ('X-Echo-Len', str(len(body))),\n"
    "                             ('X-Echo-Token',\n"
    "                              self.headers.get('X-Token', '-'))])\n"
    "        else:\n"
    "            self.reply(404)\n"
    "    do_GET = do_POST = do_PUT = do_DELETE = any\n"
    "\n"
    "class S(ThreadingHTTPServer):\n"
    "    daemon_threads = True\n"
    "    request_queue_size = 128\n"
    "\n"
    "def drop(s, reset):\n"
    "    while True:\n"
    "        c, _ = s.accept()\n"
    "        if reset:\n"
    "            c.settimeout(2)\n"
    "            try:\n"
    "                c.recv(65536)\n"
    "            except OSError:\n"
    "                pass\n"
    "            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,\n"
    "                         struct.pack('ii', 1, 0))\n"
    "        c.close()\n"
    "\n"
    "def listener():\n"
    "    s = socket.socket()\n"
    "    s.bind(('127.0.0.1', 0))\n"
    "    s.listen(128)\n"
    "    return s\n"
    "\n"
    "srv = S(('127.0.0.1', 0), H)\n"
    "rst, fin = listener(), listener()\n"
    "for s, reset in ((rst, True), (fin, False)):\n"
    "    threading.Thread(target=drop, args=(s, reset), daemon=True).start()\n"
    "print('PORTS', srv.server_address[1], rst.getsockname()[1],\n"
    "      fin.getsockname()[1], flush=True)\n"
    "srv.serve_forever()\n";

/* The benchmark's smoke test saturates both cores for seconds; the tests
 * here that check timing hold this lock shared, the benchmark holds it
 * exclusively, so the two never overlap (Criterion runs tests in
 * parallel). Load from outside this program can still delay the loop:
 * see check_on_time(). */
static int machine_lock(int op) {
  int fd = open(FL_TEST_BUILD_DIR "/test_traffic.lock",
                O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  cr_assert(fd >= 0);
  cr_assert_eq(flock(fd, op), 0);
  return fd;
}

static struct {
  int lock;
  char dir[256];
  struct t_proc server;
  int port, rst_port, fin_port;
  char base[64];
  uv_loop_t loop;
  fl_traffic_t *t;
  int stopped, freed, closed;
  double stop_at;    /* fl_traffic_now() when the test called stop */
  double stopped_at; /* fl_traffic_now() when stop's done ran */
} S;

static void setup(void) {
  memset(&S, 0, sizeof(S));
  S.lock = machine_lock(LOCK_SH);
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
  cr_assert_eq(t_expect(&S.server, "PORTS", line, sizeof(line), 10000), 0,
               "the test server did not start");
  cr_assert_eq(
      sscanf(line, "PORTS %d %d %d", &S.port, &S.rst_port, &S.fin_port), 3);
  snprintf(S.base, sizeof(S.base), "http://127.0.0.1:%d", S.port);
}

static void on_freed(void *arg) { *(int *)arg = 1; }

/* Frees what a failed test left behind; a passing one has called
 * finish(). */
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
  close(S.lock);
}

TestSuite(traffic, .init = setup, .fini = teardown, .timeout = 60);

/* A ticking timer keeps UV_RUN_ONCE from blocking past the deadline. */
static void on_tick(uv_timer_t *h) { (void)h; }

/* Runs the loop until *flag is set or `seconds` pass; returns *flag. A
 * NULL flag just runs the loop for that long. */
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

/* The end of every test: frees the traffic object, then checks that the
 * loop holds nothing (every handle closed) and, in the ASan build, that
 * nothing leaked. Criterion ignores failures in .fini, hence here. */
static void finish(void) {
  if (S.t != NULL && !S.freed) {
    fl_traffic_free(S.t, on_freed, &S.freed);
    cr_assert(run_until(&S.freed, 5), "free's done was not called");
  }
  cr_assert_eq(uv_run(&S.loop, UV_RUN_NOWAIT), 0, "a libuv handle is active");
  cr_assert_eq(uv_loop_close(&S.loop), 0, "a libuv handle was left open");
  S.closed = 1;
  cr_assert_eq(LEAK_CHECK(), 0, "memory leaked (LeakSanitizer's report above)");
}

static void on_stopped(void *arg) {
  (void)arg;
  S.stopped = 1;
  S.stopped_at = fl_traffic_now(S.t);
}

/* New traffic on `base` with one endpoint per spec; returns nothing, the
 * endpoints are 0..n-1. */
static void traffic(const char *base, const struct fl_endpoint_spec *specs,
                    int n) {
  cr_assert_eq(fl_traffic_new(&S.loop, base, &S.t), 0);
  for (int i = 0; i < n; i++)
    cr_assert_eq(fl_traffic_add(S.t, &specs[i]), i);
}

/* Runs the schedule for `seconds`, then stops and waits (bounded) for
 * the requests in flight. */
static void run_for(double seconds, double drain) {
  cr_assert_eq(fl_traffic_start(S.t), 0);
  run_until(NULL, seconds);
  S.stop_at = fl_traffic_now(S.t);
  fl_traffic_stop(S.t, on_stopped, NULL);
  cr_assert(run_until(&S.stopped, drain), "stop's done was not called");
  cr_assert_eq(fl_traffic_in_flight(S.t), 0);
}

static size_t records(int ep, const struct fl_request **r) {
  return fl_traffic_records(S.t, ep, r);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Requests start on schedule: never early, the median within 25 ms of its
 * due time, none later than 1 s. The schedule's own error is under 2 ms
 * (a millisecond timer; the benchmark measures it); the rest is room for
 * this 2-core VM, where other work and the hypervisor's steal time have
 * been seen to delay a bare libuv timer by 180 ms. A closed loop waiting
 * on a 1 s response is seconds late by the third request. */
static void check_on_time(const struct fl_request *r, size_t n) {
  double *lag = malloc(n * sizeof(double));
  cr_assert_not_null(lag);
  for (size_t k = 0; k < n; k++) {
    lag[k] = r[k].start - r[k].sched;
    cr_assert(lag[k] >= -1e-6, "#%zu sent %.3f ms early", k, -lag[k] * 1e3);
  }
  qsort(lag, n, sizeof(double), cmp_double);
  double p50 = lag[n / 2], max = lag[n - 1];
  free(lag);
  cr_assert(p50 < 0.025 && max < 1.0,
            "start - sched: median %.1f ms, max %.1f ms", p50 * 1e3, max * 1e3);
}

Test(traffic, schedule_is_exact_and_connections_reused) {
  struct fl_endpoint_spec e = {.path = "/ok",
                               .rate = 200,
                               .timeout = 2,
                               .capture = (const char *[]){"X-Conn", NULL}};
  traffic(S.base, &e, 1);
  run_for(1.0, 5);
  const struct fl_request *r;
  size_t n = records(0, &r);
  /* Exactly the requests due before the stop: none skipped. */
  size_t want = (size_t)floor(S.stop_at * 200) + 1;
  cr_assert(n >= want && n <= want + 1, "%zu requests in %.3f s at 200/s", n,
            S.stop_at);
  static char conns[256][16];
  int nconns = 0;
  check_on_time(r, n);
  for (size_t k = 0; k < n; k++) {
    cr_assert_float_eq(r[k].sched, (double)k / 200, 1e-9, "sched of #%zu", k);
    cr_assert_eq(r[k].status, 200, "#%zu: status %d (%s)", k, r[k].status,
                 fl_xfer_error_name(r[k].error));
    cr_assert_eq(r[k].error, FL_XFER_OK);
    cr_assert(r[k].latency >= 0 && r[k].latency < 2);
    cr_assert_null(fl_request_header(&r[k], 0));
    cr_assert_not_null(fl_request_header(&r[k], 1));
    int seen = 0;
    for (int c = 0; c < nconns && !seen; c++)
      seen = strcmp(conns[c], fl_request_header(&r[k], 1)) == 0;
    if (!seen && nconns < 256)
      snprintf(conns[nconns++], sizeof(conns[0]), "%s",
               fl_request_header(&r[k], 1));
  }
  /* One connection does it at this pace; a few more when a stalled loop
   * sends a backlog at once. Without reuse: one per request. */
  cr_assert(nconns <= (int)n / 8, "%d connections for %zu requests", nconns, n);
  finish();
}

/* A 1 s endpoint at 20/s for 2 s: a closed loop would send 2 requests, an
 * open one sends 40, each on time. */
Test(traffic, schedule_is_open_loop) {
  struct fl_endpoint_spec e = {.path = "/slow", .rate = 20, .timeout = 5};
  traffic(S.base, &e, 1);
  cr_assert_eq(fl_traffic_start(S.t), 0);
  run_until(NULL, 2.0);
  int in_flight = fl_traffic_in_flight(S.t);
  S.stop_at = fl_traffic_now(S.t);
  fl_traffic_stop(S.t, on_stopped, NULL);
  cr_assert(run_until(&S.stopped, 10), "stop's done was not called");
  cr_assert(in_flight >= 15, "%d requests in flight at once", in_flight);
  const struct fl_request *r;
  size_t n = records(0, &r);
  size_t want = (size_t)floor(S.stop_at * 20) + 1;
  cr_assert(n >= want && n <= want + 1 && n >= 39,
            "%zu requests sent in %.3f s at 20/s", n, S.stop_at);
  check_on_time(r, n);
  for (size_t k = 0; k < n; k++) {
    cr_assert_eq(r[k].status, 200, "#%zu: status %d (%s)", k, r[k].status,
                 fl_xfer_error_name(r[k].error));
    cr_assert(r[k].latency >= 0.95 && r[k].latency < 3, "#%zu: %.3f s", k,
              r[k].latency);
  }
  finish();
}

Test(traffic, statuses_and_retry_after) {
  struct fl_endpoint_spec e[] = {
      {.path = "/ok", .rate = 20, .timeout = 2},
      {.path = "/status/404", .rate = 20, .timeout = 2},
      {.path = "/busy", .rate = 20, .timeout = 2},
      {.path = "/busy-upper",
       .rate = 20,
       .timeout = 2,
       .capture =
           /* More than a few, and a name twice: no fixed limit. */
       (const char *[]){"X-Absent-1", "X-Absent-2", "X-Absent-3", "X-Custom",
                        "retry-after", "X-Absent", "X-CUSTOM", NULL}},
  };
  traffic(S.base, e, 4);
  cr_assert_eq(fl_traffic_header_slot(S.t, 3, "retry-AFTER"), 0);
  cr_assert_eq(fl_traffic_header_slot(S.t, 3, "x-absent-3"), 3);
  cr_assert_eq(fl_traffic_header_slot(S.t, 3, "x-custom"), 4);
  cr_assert_eq(fl_traffic_header_slot(S.t, 3, "X-Absent"), 5);
  cr_assert_eq(fl_traffic_header_slot(S.t, 3, "X-Conn"), -ENOENT);
  cr_assert_eq(fl_traffic_header_slot(S.t, 0, "Retry-After"), 0);
  run_for(0.5, 5);
  static const int want[] = {200, 404, 503, 503};
  for (int ep = 0; ep < 4; ep++) {
    const struct fl_request *r;
    size_t n = records(ep, &r);
    cr_assert(n >= 9 && n <= 11, "endpoint %d: %zu requests", ep, n);
    for (size_t k = 0; k < n; k++) {
      cr_assert_eq(r[k].status, want[ep], "endpoint %d #%zu: %d", ep, k,
                   r[k].status);
      cr_assert_eq(r[k].error, FL_XFER_OK);
      cr_assert(fabs(r[k].received - (double)time(NULL)) < 30,
                "received %.3f, not now", r[k].received);
      if (ep < 2) {
        cr_assert_null(fl_request_header(&r[k], 0));
      } else if (ep == 2) {
        cr_assert_str_eq(fl_request_header(&r[k], 0), "7");
      } else {
        cr_assert_str_eq(fl_request_header(&r[k], 0),
                         "Wed, 21 Oct 2015 07:28:00 GMT");
        cr_assert_str_eq(fl_request_header(&r[k], 4), "a b");
        cr_assert_null(fl_request_header(&r[k], 2));
        cr_assert_null(fl_request_header(&r[k], 5));
        cr_assert_null(fl_request_header(&r[k], 6), "one slot per name");
      }
    }
  }
  finish();
}

Test(traffic, timeout_class) {
  struct fl_endpoint_spec e = {.path = "/slow", .rate = 10, .timeout = 0.2};
  traffic(S.base, &e, 1);
  run_for(0.3, 5);
  const struct fl_request *r;
  size_t n = records(0, &r);
  cr_assert(n >= 3 && n <= 4, "%zu requests", n);
  for (size_t k = 0; k < n; k++) {
    cr_assert_eq(r[k].error, FL_XFER_TIMEOUT, "#%zu: %s", k,
                 fl_xfer_error_name(r[k].error));
    cr_assert_eq(r[k].status, 0);
    cr_assert(r[k].latency >= 0.19 && r[k].latency < 0.5, "#%zu: %.3f s", k,
              r[k].latency);
  }
  finish();
}

/* Every request of endpoint 0 failed with error class `want`. */
static void all_failed(int want) {
  const struct fl_request *r;
  size_t n = records(0, &r);
  cr_assert(n >= 4, "%zu requests", n);
  for (size_t k = 0; k < n; k++) {
    cr_assert_eq(r[k].error, want, "#%zu: %s, not %s", k,
                 fl_xfer_error_name(r[k].error), fl_xfer_error_name(want));
    cr_assert_eq(r[k].status, 0);
    cr_assert(r[k].latency >= 0 && r[k].latency < 1.9);
  }
}

Test(traffic, refused_class) {
  char base[64];
  int port = t_free_port();
  cr_assert(port > 0);
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
  struct fl_endpoint_spec e = {.path = "/ok", .rate = 20, .timeout = 2};
  traffic(base, &e, 1);
  run_for(0.3, 5);
  all_failed(FL_XFER_REFUSED);
  finish();
}

Test(traffic, reset_class) {
  char rst[64], fin[64];
  snprintf(rst, sizeof(rst), "http://127.0.0.1:%d", S.rst_port);
  snprintf(fin, sizeof(fin), "http://127.0.0.1:%d", S.fin_port);
  struct fl_endpoint_spec e = {.path = "/ok", .rate = 20, .timeout = 2};
  traffic(rst, &e, 1);
  run_for(0.3, 5);
  all_failed(FL_XFER_RESET);
  fl_traffic_free(S.t, on_freed, &S.freed);
  cr_assert(run_until(&S.freed, 5));
  /* Closed before a response, without a reset. */
  S.freed = S.stopped = 0;
  traffic(fin, &e, 1);
  run_for(0.3, 5);
  all_failed(FL_XFER_RESET);
  finish();
}

Test(traffic, dns_class) {
  struct fl_endpoint_spec e = {.path = "/ok", .rate = 20, .timeout = 2};
  traffic("http://faultline-no-such-host.invalid", &e, 1);
  run_for(0.2, 5);
  all_failed(FL_XFER_DNS);
  finish();
}

Test(traffic, method_body_and_headers_reach_the_server) {
  static char big[100001];
  memset(big, 'x', sizeof(big) - 1);
  const char *capture[] = {"X-Echo-Method", "X-Echo-Body", "X-Echo-Token",
                           NULL};
  const char *capture_len[] = {"X-Echo-Method", "X-Echo-Len", NULL};
  const char *headers[] = {"X-Token: abc 123",
                           "Content-Type: application/x-www-form-urlencoded",
                           NULL};
  struct fl_endpoint_spec e[] = {
      {.method = "POST",
       .path = "/echo",
       .body = "hello=world",
       .headers = headers,
       .rate = 10,
       .timeout = 2,
       .capture = capture},
      {.method = "PUT",
       .path = "/echo",
       .body = "put-body",
       .rate = 10,
       .timeout = 2,
       .capture = capture},
      {.method = "DELETE",
       .path = "/echo",
       .rate = 10,
       .timeout = 2,
       .capture = capture},
      {.method = "POST",
       .path = "/echo",
       .body = big,
       .rate = 10,
       .timeout = 2,
       .capture = capture_len},
  };
  traffic(S.base, e, 4);
  run_for(0.25, 5);
  static const char *const method[] = {"POST", "PUT", "DELETE", "POST"};
  static const char *const body[] = {"hello=world", "put-body", "", NULL};
  for (int ep = 0; ep < 4; ep++) {
    const struct fl_request *r;
    size_t n = records(ep, &r);
    cr_assert(n >= 2, "endpoint %d: %zu requests", ep, n);
    for (size_t k = 0; k < n; k++) {
      cr_assert_eq(r[k].status, 200, "endpoint %d #%zu: %d (%s)", ep, k,
                   r[k].status, fl_xfer_error_name(r[k].error));
      cr_assert_str_eq(fl_request_header(&r[k], 1), method[ep]);
      if (body[ep] != NULL)
        cr_assert_str_eq(fl_request_header(&r[k], 2), body[ep]);
      else
        cr_assert_str_eq(fl_request_header(&r[k], 2), "100000");
      if (ep == 0)
        cr_assert_str_eq(fl_request_header(&r[k], 3), "abc 123");
      else if (ep < 3)
        cr_assert_str_eq(fl_request_header(&r[k], 3), "-");
    }
  }
  finish();
}

/* Stop lets the requests in flight finish: done comes after the last
 * one, and every record is complete by then. */
Test(traffic, stop_waits_for_requests_in_flight) {
  struct fl_endpoint_spec e = {.path = "/slow", .rate = 10, .timeout = 5};
  traffic(S.base, &e, 1);
  cr_assert_eq(fl_traffic_start(S.t), 0);
  run_until(NULL, 0.35);
  cr_assert(fl_traffic_in_flight(S.t) >= 3);
  double stop = fl_traffic_now(S.t);
  fl_traffic_stop(S.t, on_stopped, NULL);
  cr_assert_eq(fl_traffic_start(S.t), -EBUSY);
  cr_assert(run_until(&S.stopped, 5), "stop's done was not called");
  const struct fl_request *r;
  size_t n = records(0, &r);
  cr_assert(n >= 4 && r[n - 1].sched <= stop,
            "%zu requests before stop at "
            "%.2f s",
            n, stop);
  cr_assert(S.stopped_at >= r[n - 1].start + 0.95,
            "done at %.3f s, before the last request (sent at %.3f s) "
            "completed",
            S.stopped_at, r[n - 1].start);
  for (size_t k = 0; k < n; k++)
    cr_assert(r[k].status == 200 && r[k].latency >= 0.95);
  /* Nothing more is sent after stop. */
  run_until(NULL, 0.3);
  cr_assert_eq(records(0, &r), n);
  finish();
}

Test(traffic, stop_before_start_calls_done) {
  struct fl_endpoint_spec e = {.path = "/ok", .rate = 10, .timeout = 1};
  traffic(S.base, &e, 1);
  fl_traffic_stop(S.t, on_stopped, NULL);
  cr_assert_eq(S.stopped, 0, "done called from inside stop");
  cr_assert(run_until(&S.stopped, 2));
  const struct fl_request *r;
  cr_assert_eq(records(0, &r), 0);
  finish();
}

/* Free with requests in flight: they are cancelled, every handle closes,
 * done is called, and (in the ASan build) nothing leaks. */
Test(traffic, free_mid_flight) {
  struct fl_endpoint_spec e[] = {
      {.path = "/slow", .rate = 20, .timeout = 5},
      {.path = "/busy", .rate = 50, .timeout = 5},
  };
  traffic(S.base, e, 2);
  cr_assert_eq(fl_traffic_start(S.t), 0);
  run_until(NULL, 0.5);
  cr_assert(fl_traffic_in_flight(S.t) >= 8);
  long long t0 = t_now_ms();
  fl_traffic_free(S.t, on_freed, &S.freed);
  cr_assert_eq(S.freed, 0, "done called from inside free");
  cr_assert(run_until(&S.freed, 2), "free's done was not called");
  cr_assert(t_now_ms() - t0 < 500, "free waited for the transfers");
  finish();
}

Test(traffic, free_unstarted) {
  cr_assert_eq(fl_traffic_new(&S.loop, S.base, &S.t), 0);
  fl_traffic_free(S.t, on_freed, &S.freed);
  cr_assert(run_until(&S.freed, 2));
  finish();
}

Test(traffic, bad_specs) {
  cr_assert_eq(fl_traffic_new(&S.loop, S.base, &S.t), 0);
  struct fl_endpoint_spec e = {.path = "/ok", .rate = 10, .timeout = 1};
  struct fl_endpoint_spec bad = e;
  bad.rate = 0;
  cr_assert_eq(fl_traffic_add(S.t, &bad), -EINVAL);
  bad = e;
  bad.timeout = -1;
  cr_assert_eq(fl_traffic_add(S.t, &bad), -EINVAL);
  bad = e;
  bad.path = NULL;
  cr_assert_eq(fl_traffic_add(S.t, &bad), -EINVAL);
  bad = e;
  bad.path = "/id/{5..1}";
  cr_assert_eq(fl_traffic_add(S.t, &bad), -EINVAL);
  bad = e;
  bad.concurrency = -1;
  cr_assert_eq(fl_traffic_add(S.t, &bad), -EINVAL);
  bad = e;
  bad.nrates = 2; /* from 0, increasing, each above 0 */
  bad.rates = (const double[]){10, 0};
  bad.starts = (const double[]){0, 1};
  cr_assert_eq(fl_traffic_add(S.t, &bad), -EINVAL);
  bad.rates = (const double[]){10, 5};
  bad.starts = (const double[]){0.5, 1};
  cr_assert_eq(fl_traffic_add(S.t, &bad), -EINVAL);
  bad.starts = (const double[]){0, 0};
  cr_assert_eq(fl_traffic_add(S.t, &bad), -EINVAL);
  bad = e;
  /* Any number of captured headers. */
  bad.capture = (const char *[]){"A", "B", "Retry-After", "C", "D", NULL};
  cr_assert_eq(fl_traffic_add(S.t, &bad), 0);
  cr_assert_eq(fl_traffic_start(S.t), 0);
  cr_assert_eq(fl_traffic_add(S.t, &e), -EBUSY);
  cr_assert_eq(fl_traffic_start(S.t), -EBUSY);
  const struct fl_request *r;
  cr_assert_eq(fl_traffic_records(S.t, 5, &r), 0);
  cr_assert_null(r);
  cr_assert_str_eq(fl_xfer_error_name(FL_XFER_REFUSED), "refused");
  cr_assert_str_eq(fl_xfer_error_name(FL_XFER_RESET), "reset");
  cr_assert_str_eq(fl_xfer_error_name(FL_XFER_TIMEOUT), "timeout");
  finish();
}

/* Paths are drawn per request from the template, cover its range and
 * list, and depend only on the seed, the endpoint's name and the request's
 * number: two endpoints of the same name and seed draw the same paths, one
 * with another seed others. The server saw each recorded path. */
Test(traffic, paths_drawn_cover_and_repeat) {
  const char *capture[] = {"X-Path", NULL};
  struct fl_endpoint_spec e[3];
  for (int i = 0; i < 3; i++)
    e[i] = (struct fl_endpoint_spec){.name = "p",
                                     .path = "/id/{1..20}/{a,bb}",
                                     .rate = 300,
                                     .timeout = 2,
                                     .seed = i < 2 ? 7 : 8,
                                     .capture = capture};
  traffic(S.base, e, 3);
  run_for(1.0, 5);
  const struct fl_request *r[3];
  size_t n[3];
  for (int i = 0; i < 3; i++)
    n[i] = records(i, &r[i]);
  size_t both = n[0] < n[1] ? n[0] : n[1], differ = 0;
  cr_assert(both >= 200 && n[2] >= both, "%zu, %zu requests", n[0], n[1]);
  int seen[21][2] = {{0}};
  size_t answered = 0;
  for (size_t k = 0; k < both; k++) {
    int id = 0, len = 0;
    char which[4] = "";
    /* A request lost to a loaded machine (a timeout) still drew its
     * path; one that was answered was answered for that path. */
    if (r[0][k].status != 0) {
      cr_assert_eq(r[0][k].status, 200, "#%zu: %d", k, r[0][k].status);
      cr_assert_str_eq(fl_request_header(&r[0][k], 1), r[0][k].path);
      answered++;
    } else {
      cr_assert_neq(r[0][k].error, FL_XFER_OK, "#%zu: no status, no error", k);
    }
    cr_assert_eq(sscanf(r[0][k].path, "/id/%d/%3[ab]%n", &id, which, &len), 2,
                 "drawn path %s", r[0][k].path);
    cr_assert(id >= 1 && id <= 20 && r[0][k].path[len] == '\0' &&
                  (strcmp(which, "a") == 0 || strcmp(which, "bb") == 0),
              "drawn path %s", r[0][k].path);
    seen[id][which[0] == 'b']++;
    cr_assert_str_eq(r[0][k].path, r[1][k].path, "#%zu with the same seed", k);
    differ += strcmp(r[0][k].path, r[2][k].path) != 0;
  }
  cr_assert(answered >= both * 95 / 100, "%zu of %zu answered", answered, both);
  int items[2] = {0, 0};
  for (int id = 1; id <= 20; id++) {
    cr_assert(seen[id][0] + seen[id][1] > 0, "id %d never drawn", id);
    items[0] += seen[id][0];
    items[1] += seen[id][1];
  }
  cr_assert(items[0] > 0 && items[1] > 0, "a: %d, bb: %d", items[0], items[1]);
  /* 40 paths: another seed agrees on about 1 request in 40. */
  cr_assert(differ > both * 8 / 10, "another seed drew %zu of %zu the same",
            both - differ, both);
  finish();
}

/* How many of the n records started in [from, to). */
static size_t started_in(const struct fl_request *r, size_t n, double from,
                         double to) {
  size_t c = 0;
  for (size_t k = 0; k < n; k++)
    c += r[k].start >= from && r[k].start < to;
  return c;
}

/* 20/s for a second, then 100/s: the schedule switches exactly at the
 * boundary (request 20 is due at 1.0 s, then every 10 ms), and the
 * requests sent per second follow. */
Test(traffic, rate_changes_at_the_boundary) {
  struct fl_endpoint_spec e = {.path = "/ok",
                               .rates = (const double[]){20, 100},
                               .starts = (const double[]){0, 1.0},
                               .nrates = 2,
                               .timeout = 2};
  traffic(S.base, &e, 1);
  run_for(2.0, 5);
  const struct fl_request *r;
  size_t n = records(0, &r);
  size_t want = 20 + (size_t)floor((S.stop_at - 1.0) * 100) + 1;
  cr_assert(n >= want && n <= want + 1, "%zu requests in %.3f s", n, S.stop_at);
  for (size_t k = 0; k < n; k++) {
    double due = k < 20 ? (double)k / 20 : 1.0 + (double)(k - 20) / 100;
    cr_assert_float_eq(r[k].sched, due, 1e-9, "sched of #%zu", k);
    cr_assert_eq(r[k].status, 200, "#%zu: %d", k, r[k].status);
  }
  check_on_time(r, n);
  size_t first = started_in(r, n, 0, 1), second = started_in(r, n, 1, 2);
  cr_assert(first >= 17 && first <= 23, "%zu requests in the first second",
            first);
  cr_assert(second >= 85 && second <= 103, "%zu requests in the second",
            second);
  finish();
}

/* At 20/s on a path that takes 0.3 s, a cap of 3 keeps at most 3 requests
 * at the server (it counts them), the others wait for a slot and their
 * wait shows in their latency; every request due before the stop is
 * still sent. */
Test(traffic, concurrency_cap_holds_and_wait_is_latency) {
  struct fl_endpoint_spec e = {.path = "/hold/0.3",
                               .rate = 20,
                               .concurrency = 3,
                               .timeout = 8,
                               .capture = (const char *[]){"X-Inflight", NULL}};
  traffic(S.base, &e, 1);
  cr_assert_eq(fl_traffic_start(S.t), 0);
  int most = 0;
  long long end = t_now_ms() + 1500;
  while (t_now_ms() < end) {
    run_until(NULL, 0.02);
    int now = fl_traffic_in_flight(S.t);
    most = now > most ? now : most;
  }
  S.stop_at = fl_traffic_now(S.t);
  fl_traffic_stop(S.t, on_stopped, NULL);
  cr_assert(run_until(&S.stopped, 10), "stop's done was not called");
  cr_assert(most <= 3, "%d requests in flight", most);
  const struct fl_request *r;
  size_t n = records(0, &r);
  size_t want = (size_t)floor(S.stop_at * 20) + 1;
  cr_assert(n >= want && n <= want + 1, "%zu requests in %.3f s", n, S.stop_at);
  int held = 0;
  for (size_t k = 0; k < n; k++) {
    cr_assert_eq(r[k].status, 200, "#%zu: %d (%s)", k, r[k].status,
                 fl_xfer_error_name(r[k].error));
    int at = atoi(fl_request_header(&r[k], 1));
    cr_assert(at >= 1 && at <= 3, "#%zu: %d at the server at once", k, at);
    held = at > held ? at : held;
    double wait = r[k].start - r[k].sched;
    cr_assert(r[k].latency >= wait + 0.29, "#%zu: latency %.3f, waited %.3f", k,
              r[k].latency, wait);
  }
  cr_assert_eq(held, 3);
  /* 10 served a second for 20 due: the last waited about a second. */
  cr_assert(r[n - 1].start - r[n - 1].sched > 0.8 && r[n - 1].latency > 1.1,
            "the last waited %.3f s, latency %.3f s",
            r[n - 1].start - r[n - 1].sched, r[n - 1].latency);
  finish();
}

/* Capped, the timeout counts from the scheduled time: a request sent
 * after a wait has only what is left of it (one that waits it all out for
 * a slot is not sent: a timeout of its timeout's length). So no latency
 * outlives the timeout, though most requests here waited long. */
/* How late the loop may be to end a request at its timeout: an
 * AddressSanitizer build, with other tests running beside it, is slower. */
#if defined(__SANITIZE_ADDRESS__)
#define LOOP_SLACK 0.3
#else
#define LOOP_SLACK 0.05
#endif

Test(traffic, concurrency_cap_gives_up_at_the_timeout) {
  struct fl_endpoint_spec e = {
      .path = "/hold/0.2", .rate = 20, .concurrency = 1, .timeout = 0.5};
  traffic(S.base, &e, 1);
  run_for(1.0, 5);
  const struct fl_request *r;
  size_t n = records(0, &r);
  size_t ok = 0, late = 0, waited = 0;
  for (size_t k = 0; k < n; k++) {
    cr_assert(r[k].latency >= 0 && r[k].latency <= 0.5 + LOOP_SLACK,
              "#%zu: latency %.3f", k, r[k].latency);
    ok += r[k].status == 200;
    late += r[k].error == FL_XFER_TIMEOUT;
    waited += r[k].start - r[k].sched >= 0.1;
  }
  cr_assert_eq(ok + late, n);
  cr_assert(ok >= 1 && waited >= n / 2, "%zu ok, %zu waited of %zu", ok, waited,
            n);
  finish();
}

struct probe_result {
  int done, status;
};

static void on_probe(int status, void *arg) {
  struct probe_result *p = arg;
  p->status = status;
  p->done++;
}

static int probe(const char *url, double timeout) {
  struct probe_result p = {0, 0};
  cr_assert_eq(fl_http_probe(&S.loop, url, timeout, on_probe, &p), 0);
  cr_assert(run_until(&p.done, timeout + 3), "probe of %s never answered", url);
  /* The callback comes after the probe's handles closed: the loop is
   * empty again. */
  cr_assert_eq(uv_run(&S.loop, UV_RUN_NOWAIT), 0);
  cr_assert_eq(p.done, 1);
  return p.status;
}

Test(traffic, probe) {
  char url[128];
  snprintf(url, sizeof(url), "%s/ok", S.base);
  cr_assert_eq(probe(url, 2), 200);
  snprintf(url, sizeof(url), "%s/status/503", S.base);
  cr_assert_eq(probe(url, 2), 503);
  snprintf(url, sizeof(url), "%s/slow", S.base);
  cr_assert_eq(probe(url, 0.2), -ETIMEDOUT);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/", S.rst_port);
  cr_assert_eq(probe(url, 2), -ECONNRESET);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/", t_free_port());
  cr_assert_eq(probe(url, 2), -ECONNREFUSED);
  cr_assert_eq(fl_http_probe(&S.loop, url, 0, on_probe, NULL), -EINVAL);
  finish();
}

/* Bad templates: where (column in the path), what was found, what is
 * allowed. */
Test(path, check_says_where_and_what) {
  static const struct {
    const char *path;
    int col;
    const char *says;
  } cases[] = {
      {"/a/{5..1}", 4, "empty range '{5..1}'"},
      {"/a/{}", 4, "bad placeholder '{}'"},
      {"/a/{x}/b", 4, "bad placeholder '{x}'"},
      {"/a/{x,,y}", 4, "bad placeholder '{x,,y}'"},
      {"/a/{1..x}", 4, "bad placeholder '{1..x}'"},
      {"/a/{1..3", 4, "unclosed '{'"},
      {"/a/{1{2}", 6, "'{' inside a placeholder"},
      {"/a}", 3, "'}' without '{'"},
      {"/ok/{1..2}/{x,y}{", 17, "unclosed '{'"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char err[512] = "";
    int col = 0;
    cr_assert_eq(fl_path_check(cases[i].path, &col, err, sizeof(err)), -EINVAL,
                 "%s", cases[i].path);
    cr_expect_eq(col, cases[i].col, "%s: column %d", cases[i].path, col);
    cr_expect(strstr(err, cases[i].says) != NULL &&
                  strstr(err, "(allowed: {A..B}") != NULL,
              "%s: %s", cases[i].path, err);
  }
  const char *good[] = {"/", "/a/b", "/p/{1..50}", "/{items,orders}/{0..0}",
                        "/z/{007..120}"};
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    cr_expect_eq(fl_path_check(good[i], NULL, NULL, 0), 0, "%s", good[i]);
}

/* The benchmark's smoke mode runs and prints its table. */
Test(traffic_bench, quick, .timeout = 120) {
  int lock = machine_lock(LOCK_EX);
  struct t_run run;
  char *argv[] = {FL_TEST_BUILD_DIR "/fl-bench-traffic", "--quick", NULL};
  cr_assert_eq(t_run(argv, NULL, NULL, 100000, &run), 0);
  cr_assert_eq(run.status, 0, "fl-bench-traffic --quick: %d\n%s", run.status,
               run.err);
  cr_assert_not_null(strstr(run.out, "| requested"), "no table:\n%s", run.out);
  cr_assert_not_null(strstr(run.out, "| 5000 "), "no 5000 req/s row:\n%s",
                     run.out);
  t_run_free(&run);
  close(lock);
}
