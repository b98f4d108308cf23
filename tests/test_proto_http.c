/*
 * HTTP/1.1 protocol faults (http_error, http_delay, http_cut) through the
 * real proxy as `faultline exec --proxy http=HOST:PORT` starts it, in
 * front of a real HTTP/1.1 upstream (tests/data/http_upstream.py), seen by
 * real clients: curl, and Python's requests (Debian's python3-requests),
 * with their own errors asserted.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "support.h"

#define PY "/usr/bin/python3"

static struct t_proc up;
static int up_port;
static char up_addr[64], proxy_arg[80];

static void start_upstream(void) {
  up_port = t_free_port();
  char port[16];
  snprintf(port, sizeof(port), "%d", up_port);
  char *argv[] = {PY, T_DATA "/http_upstream.py", port, NULL};
  cr_assert_eq(t_spawn(&up, argv, NULL, 1), 0);
  cr_assert_eq(t_wait_port(up_port, 10000), 0, "the upstream did not start");
  snprintf(up_addr, sizeof(up_addr), "127.0.0.1:%d", up_port);
  snprintf(proxy_arg, sizeof(proxy_arg), "http=%s", up_addr);
}

static void stop_upstream(void) {
  if (up.pid > 0) {
    kill(up.pid, SIGKILL);
    t_finish(&up, 5000);
  }
}

TestSuite(proto_http, .init = start_upstream, .fini = stop_upstream,
          .timeout = 60);

/* `faultline exec --proxy http=UP [--fault F@UP,OPTS] -- argv...` */
static void run_exec(const char *fault, char *const cmd[], struct t_run *r) {
  char spec[512];
  char *argv[32];
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
  for (int i = 0; cmd[i] != NULL && n < 31; i++)
    argv[n++] = cmd[i];
  argv[n] = NULL;
  cr_assert_eq(t_run(argv, NULL, NULL, 30000, r), 0);
}

static char *url(const char *path) {
  char *u;
  cr_assert(asprintf(&u, "http://%s%s", up_addr, path) > 0);
  return u;
}

/* Python with requests: the script gets the base URL as argv[1]. */
static void run_py(const char *fault, const char *script, struct t_run *r) {
  char *base = url("");
  char *cmd[] = {PY, "-c", (char *)script, base, NULL};
  run_exec(fault, cmd, r);
  free(base);
}

Test(proto_http, passes_bodies_untouched_with_no_fault) {
  struct t_run r;
  char *u1 = url("/json"), *u2 = url("/chunked"), *u3 = url("/nocontent");
  char *cmd[] = {"curl", "-sS", u1, u2, u3, "-w", "|%{http_code}", NULL};
  run_exec(NULL, cmd, &r);
  cr_assert_eq(r.status, 0, "curl: %s", r.err);
  /* One keep-alive connection: a JSON body, a chunked one with a
   * trailer, and a 204 with none. */
  cr_assert(strstr(r.out, "{\"ok\": true}|200") != NULL, "%s", r.out);
  cr_assert(strstr(r.out, "alpha-beta-beta-") != NULL);
  cr_assert(strstr(r.out, "gamma|200|204") != NULL, "%s", r.out);
  t_run_free(&r);
  free(u1), free(u2), free(u3);
}

Test(proto_http, error_answers_with_status_headers_and_body) {
  struct t_run r;
  char *u = url("/json");
  char *cmd[] = {"curl", "-sS", "-i", u, NULL};
  run_exec("http_error,status=503,header=Retry-After: 5|X-Chaos: yes,"
           "reply={\"error\":\"busy\"}",
           cmd, &r);
  cr_assert_eq(r.status, 0, "curl: %s", r.err);
  cr_assert(strstr(r.out, "HTTP/1.1 503 Service Unavailable\r\n") != NULL, "%s",
            r.out);
  cr_assert(strstr(r.out, "\r\nRetry-After: 5\r\n") != NULL, "%s", r.out);
  cr_assert(strstr(r.out, "\r\nX-Chaos: yes\r\n") != NULL, "%s", r.out);
  cr_assert(strstr(r.out, "application/json") != NULL, "%s", r.out);
  cr_assert(strstr(r.out, "\r\n\r\n{\"error\":\"busy\"}") != NULL, "%s", r.out);
  t_run_free(&r);
  free(u);
}

Test(proto_http, requests_sees_the_status_and_retry_after) {
  struct t_run r;
  run_py("http_error,status=429,header=Retry-After: 7,times=1",
         "import sys, requests\n"
         "s = requests.Session()\n"
         "a = s.get(sys.argv[1] + '/json', timeout=10)\n"
         "b = s.get(sys.argv[1] + '/json', timeout=10)\n"
         "print(a.status_code, a.headers.get('Retry-After'), b.status_code,"
         " b.json()['ok'])\n",
         &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  /* times=1: the first answered by us, the next passes on the same
   * keep-alive connection. */
  cr_assert_str_eq(r.out, "429 7 200 True\n");
  t_run_free(&r);
}

Test(proto_http, match_picks_method_and_path_glob) {
  struct t_run r;
  char *a = url("/v1/pay"), *b = url("/v2/pay");
  char *cmd[] = {"curl",      "-sS", "-w", "%{http_code} ", "-X", "POST", "-o",
                 "/dev/null", a,     "-o", "/dev/null",     b,    NULL};
  run_exec("http_error,status=502,match=POST /v1/*", cmd, &r);
  cr_assert_eq(r.status, 0, "curl: %s", r.err);
  cr_assert_str_eq(r.out, "502 200 ");
  t_run_free(&r);
  char *cmd2[] = {"curl", "-sS",          "-o", "/dev/null",
                  "-w",   "%{http_code}", a,    NULL};
  run_exec("http_error,status=502,match=POST /v1/*", cmd2, &r);
  cr_assert_str_eq(r.out, "200", "a GET is not matched: %s", r.out);
  t_run_free(&r);
  free(a), free(b);
}

Test(proto_http, cut_is_curls_transfer_closed) {
  struct t_run r;
  char *u = url("/big");
  char *cmd[] = {"curl", "-sS", "-o", "/dev/null", u, NULL};
  run_exec("http_cut,bytes=1000", cmd, &r);
  cr_assert_eq(r.status, 18, "curl exit %d: %s", r.status, r.err);
  cr_assert(strstr(r.err, "transfer closed with 99000 bytes remaining") != NULL,
            "%s", r.err);
  t_run_free(&r);
  free(u);
}

/* requests raises ChunkedEncodingError for a cut chunked body; for a cut
 * Content-Length body (urllib3 1.x does not check the length) Python's
 * http.client raises IncompleteRead. */
Test(proto_http, cut_is_pythons_own_errors) {
  struct t_run r;
  run_py("http_cut,bytes=100",
         "import sys, requests, http.client\n"
         "try:\n"
         "    requests.get(sys.argv[1] + '/chunked', timeout=10)\n"
         "    print('whole')\n"
         "except requests.exceptions.ChunkedEncodingError as e:\n"
         "    print(type(e).__name__)\n"
         "c = http.client.HTTPConnection(sys.argv[1][7:], timeout=10)\n"
         "c.request('GET', '/big')\n"
         "try:\n"
         "    c.getresponse().read()\n"
         "    print('whole')\n"
         "except http.client.IncompleteRead as e:\n"
         "    print(type(e).__name__, len(e.partial))\n",
         &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "ChunkedEncodingError\nIncompleteRead 100\n");
  t_run_free(&r);
}

Test(proto_http, delay_holds_the_response_head) {
  struct t_run r;
  run_py("http_delay,ms=800,times=1",
         "import sys, time, requests\n"
         "s = requests.Session()\n"
         "t = time.monotonic(); s.get(sys.argv[1] + '/json', timeout=10)\n"
         "a = time.monotonic() - t\n"
         "t = time.monotonic(); s.get(sys.argv[1] + '/json', timeout=10)\n"
         "b = time.monotonic() - t\n"
         "print('slow' if a >= 0.75 else 'fast', 'then',"
         " 'fast' if b < a - 0.3 else 'slow')\n",
         &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "slow then fast\n");
  t_run_free(&r);
}

Test(proto_http, delay_times_out_requests) {
  struct t_run r;
  run_py("http_delay,ms=3000",
         "import sys, requests\n"
         "try:\n"
         "    requests.get(sys.argv[1] + '/json', timeout=0.5)\n"
         "    print('answered')\n"
         "except requests.exceptions.ReadTimeout as e:\n"
         "    print(type(e).__name__)\n",
         &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "ReadTimeout\n");
  t_run_free(&r);
}

/* Three requests in one write on one connection, the middle one answered
 * by us: the answers come back in request order. */
Test(proto_http, pipelined_order_is_kept) {
  struct t_run r;
  run_py(
      "http_error,status=503,reply=ours,match=GET /b",
      "import sys, socket\n"
      "host, port = sys.argv[1][7:].split(':')\n"
      "s = socket.create_connection((host, int(port)), timeout=10)\n"
      "s.sendall(b''.join(b'GET /%s HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n' % p"
      " for p in (b'a', b'b', b'c')))\n"
      "got = b''\n"
      "while got.count(b'HTTP/1.1 ') < 3 or not got.endswith(b'GET /c 0'):\n"
      "    d = s.recv(65536)\n"
      "    if not d: break\n"
      "    got += d\n"
      "import re\n"
      "print(re.findall(rb'HTTP/1.1 (\\d+)', got), got.endswith(b'GET /c 0'),"
      " got.index(b'GET /a 0') < got.index(b'ours') < got.index(b'GET /c'))\n",
      &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "[b'200', b'503', b'200'] True True\n");
  t_run_free(&r);
}

Test(proto_http, unknown_protocol_is_refused) {
  char arg[80];
  snprintf(arg, sizeof(arg), "gopher=%s", up_addr);
  char *argv[] = {T_FAULTLINE, "exec", "--proxy", arg, "--", "true", NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  cr_assert_eq(r.status, 2, "%s", r.err);
  cr_assert(strstr(r.err, "unknown protocol 'gopher' (allowed: ") != NULL, "%s",
            r.err);
  cr_assert(strstr(r.err, "http") != NULL, "%s", r.err);
  t_run_free(&r);
}

/* ---- the http dependency kind, through `faultline run` ---------------- */

static const char service_yaml[] =
    "service: caller\n"
    "command: [" PY ", " T_DATA "/http_caller.py, \"${PORT}\"]\n"
    "env:\n"
    "  PAY_URL: ${PAY_URL}\n"
    "ready:\n"
    "  http: /health\n"
    "dependencies:\n"
    "  pay:\n"
    "    type: http\n"
    "    routes:\n"
    "      \"POST /v1/*\": { status: 201, body: { id: ch_1 } }\n";

/* Runs a two-phase scenario (steady, then outage with `fault`, expecting
 * `outage`) against the caller of a stub; returns faultline's status. */
static int run_stub_scenario(const char *fault, const char *outage,
                             struct t_run *r) {
  char dir[256], svc[300], sc[300], out[300];
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(svc, sizeof(svc), "%s/svc.yaml", dir);
  snprintf(sc, sizeof(sc), "%s/sc.yaml", dir);
  snprintf(out, sizeof(out), "%s/out", dir);
  FILE *f = fopen(svc, "w");
  cr_assert_not_null(f);
  fputs(service_yaml, f);
  fclose(f);
  f = fopen(sc, "w");
  cr_assert_not_null(f);
  fprintf(f,
          "scenario: stub\n"
          "service: svc.yaml\n"
          "traffic:\n"
          "  call: { request: GET /call, rate: 10, timeout: 5s }\n"
          "timeline:\n"
          "  - phase: steady\n"
          "    duration: 2s\n"
          "  - phase: outage\n"
          "    duration: 2s\n"
          "    faults:\n"
          "      - %s\n"
          "expect:\n"
          "  steady:\n"
          "    call: [ \"rate(201) == 100%%\" ]\n"
          "  outage:\n"
          "    call: [ %s ]\n"
          "  always:\n"
          "    - fault(http_error) hit >= 1\n",
          fault, outage);
  fclose(f);
  char *argv[] = {T_FAULTLINE, "run", "--out", out, sc, NULL};
  cr_assert_eq(t_run(argv, NULL, NULL, 60000, r), 0);
  t_rmtree(dir);
  return r->status;
}

Test(proto_http, stub_dependency_answers_and_takes_http_error, .timeout = 120) {
  struct t_run r;
  int st = run_stub_scenario(
      "{ http_error: pay, status: 503, header: \"Retry-After: 5\" }",
      "\"rate(503) >= 90%\", \"header(Retry-After) on 503\"", &r);
  cr_assert_eq(st, 0, "faultline run: %d\n%s%s", st, r.out, r.err);
  cr_assert(strstr(r.err, "pay ready on 127.0.0.1:") != NULL, "%s", r.err);
  t_run_free(&r);
}

/* A fault whose match never meets a request is not delivered: the
 * scenario is inconclusive, never green. */
Test(proto_http, undelivered_http_error_is_inconclusive, .timeout = 120) {
  struct t_run r;
  int st = run_stub_scenario(
      "{ http_error: pay, status: 503, match: \"GET /never/*\" }",
      "\"rate(201) >= 90%\"", &r);
  cr_assert_eq(st, 1, "faultline run: %d\n%s%s", st, r.out, r.err);
  cr_assert(strstr(r.out, "INCONCLUSIVE") != NULL ||
                strstr(r.err, "INCONCLUSIVE") != NULL,
            "%s%s", r.out, r.err);
  t_run_free(&r);
}

/* HEAD (a Content-Length but no body) and 100 Continue (an interim
 * response) on one keep-alive connection, then a request we answer: our
 * answer comes only if both were framed right. */
Test(proto_http, head_and_continue_are_framed) {
  struct t_run r;
  run_py("http_error,status=503,reply=ours,match=GET /last",
         "import sys, socket\n"
         "host, port = sys.argv[1][7:].split(':')\n"
         "s = socket.create_connection((host, int(port)), timeout=10)\n"
         "f = s.makefile('rb')\n"
         "def head():\n"
         "    lines = []\n"
         "    while True:\n"
         "        l = f.readline()\n"
         "        if l in (b'\\r\\n', b''): return lines\n"
         "        lines.append(l.strip())\n"
         "def length(h):\n"
         "    return int([l for l in h if l.lower().startswith("
         "b'content-length')][0].split(b':')[1])\n"
         "s.sendall(b'HEAD /json HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
         "h1 = head()\n"
         "s.sendall(b'POST /echo HTTP/1.1\\r\\nHost: x\\r\\n"
         "Content-Length: 5\\r\\nExpect: 100-continue\\r\\n\\r\\n')\n"
         "h2 = head()\n"
         "s.sendall(b'hello')\n"
         "h3 = head(); b3 = f.read(length(h3))\n"
         "s.sendall(b'GET /last HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
         "h4 = head(); b4 = f.read(length(h4))\n"
         "print(h1[0], h2[0], h3[0], b3, h4[0], b4)\n",
         &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "b'HTTP/1.1 200 OK' b'HTTP/1.1 100 Continue' "
                          "b'HTTP/1.1 200 OK' b'POST /echo 5' "
                          "b'HTTP/1.1 503 Service Unavailable' b'ours'\n");
  t_run_free(&r);
}

/* After an Upgrade request the connection is another protocol's: the
 * proxy stops following it, so a later matching request is not ours. */
Test(proto_http, upgrade_stops_following) {
  struct t_run r;
  run_py("http_error,status=503,reply=ours,match=GET /last",
         "import sys, socket, time\n"
         "host, port = sys.argv[1][7:].split(':')\n"
         "s = socket.create_connection((host, int(port)), timeout=10)\n"
         "s.sendall(b'GET /ws HTTP/1.1\\r\\nHost: x\\r\\nConnection: "
         "Upgrade\\r\\nUpgrade: websocket\\r\\n\\r\\n')\n"
         "got = b''\n"
         "while not got.endswith(b'GET /ws 0'): got += s.recv(4096)\n"
         "s.sendall(b'GET /last HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
         "got = b''\n"
         "while not got.endswith(b'0') and b'ours' not in got:\n"
         "    got += s.recv(4096)\n"
         "print(got.split(b'\\r\\n')[0], got.endswith(b'GET /last 0'))\n",
         &r);
  cr_assert_eq(r.status, 0, "python: %s", r.err);
  cr_assert_str_eq(r.out, "b'HTTP/1.1 200 OK' True\n");
  t_run_free(&r);
}

/* `faultline inject` switches http_error on for a running exec: the
 * client's keep-alive connection, open before, gets our answer next. */
Test(proto_http, inject_switches_it_live) {
  char dir[256], ctl[300], spec[160];
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(ctl, sizeof(ctl), "%s/control", dir);
  char *base = url("");
  char *argv[] = {T_FAULTLINE,
                  "exec",
                  "--quiet",
                  "--control",
                  ctl,
                  "--proxy",
                  proxy_arg,
                  "--",
                  PY,
                  "-c",
                  "import sys, time, requests\n"
                  "s = requests.Session()\n"
                  "print(s.get(sys.argv[1] + '/json').status_code, "
                  "flush=True)\n"
                  "t = time.monotonic() + 20\n"
                  "while time.monotonic() < t:\n"
                  "    r = s.get(sys.argv[1] + '/json', timeout=5)\n"
                  "    if r.status_code != 200: break\n"
                  "    time.sleep(0.02)\n"
                  "print(r.status_code, r.headers.get('Retry-After'), "
                  "flush=True)\n",
                  base,
                  NULL};
  struct t_proc p;
  cr_assert_eq(t_spawn(&p, argv, NULL, 1), 0);
  char line[256];
  cr_assert_eq(t_expect(&p, "200", line, sizeof(line), 15000), 0);
  snprintf(spec, sizeof(spec), "http_error@%s,status=429,header=Retry-After: 3",
           up_addr);
  cr_assert_eq(t_inject(ctl, spec), 0);
  cr_assert_eq(t_expect(&p, "429", line, sizeof(line), 15000), 0, "no 429");
  cr_assert_str_eq(line, "429 3");
  cr_assert_eq(t_finish(&p, 10000), 0);
  free(base);
  t_rmtree(dir);
}
