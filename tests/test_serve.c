/*
 * faultline serve, driven by real, unmodified clients: curl for every
 * endpoint's status codes and error bodies; the npm package
 * toxiproxy-node-client (installed by scripts/setup into tests/.npm) in
 * front of a real redis-server, with redis-cli through the proxy seeing
 * each effect; and the /shim extension switching a shim fault in a
 * `faultline exec --control` child.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#define CLIENT T_DATA "/toxiproxy_client.js"
#define NPM_CLIENT                                                             \
  FL_TEST_SOURCE_DIR "/tests/.npm/node_modules/toxiproxy-node-client"

static char tmp[256], ctl[320];
static struct t_proc server;
static struct t_redis redis;
static int api_port;

static void setup(void) {
  memset(&server, 0, sizeof(server));
  memset(&redis, 0, sizeof(redis));
  server.in_fd = server.out_fd = -1;
  cr_assert_eq(t_mkdtemp(tmp), 0);
  snprintf(ctl, sizeof(ctl), "%s/control", tmp);
}

static void teardown(void) {
  if (server.pid > 0) {
    kill(server.pid, SIGKILL);
    t_finish(&server, 5000);
  }
  t_redis_stop(&redis);
  t_rmtree(tmp);
}

TestSuite(serve, .init = setup, .fini = teardown, .timeout = 60);

static const char *fmt(const char *f, ...)
    __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...) {
  static char bufs[8][1024];
  static int next;
  char *b = bufs[next++ % 8];
  va_list ap;
  va_start(ap, f);
  vsnprintf(b, 1024, f, ap);
  va_end(ap);
  return b;
}

/* `faultline serve` on a free port, with extra options; waits until it
 * answers. */
static void serve(const char *token) {
  api_port = t_free_port();
  char *argv[] = {T_FAULTLINE,
                  "serve",
                  "--quiet",
                  "--control",
                  ctl,
                  "--listen",
                  (char *)fmt("127.0.0.1:%d", api_port),
                  token ? "--token" : NULL,
                  (char *)token,
                  NULL};
  cr_assert_eq(t_spawn(&server, argv, NULL, 1), 0);
  cr_assert_eq(t_wait_port(api_port, 10000), 0, "serve did not listen");
}

/* One request with curl; returns the status, body in `body` (static). */
static int http(const char *method, const char *path, const char *data,
                const char *auth, char **body) {
  static char out[8192];
  char *argv[16];
  int n = 0;
  argv[n++] = "curl";
  argv[n++] = "-sS";
  argv[n++] = "-w";
  argv[n++] = "\n%{http_code}";
  argv[n++] = "-X";
  argv[n++] = (char *)method;
  if (data != NULL) {
    argv[n++] = "-d";
    argv[n++] = (char *)data;
  }
  if (auth != NULL) {
    argv[n++] = "-H";
    argv[n++] = (char *)auth;
  }
  argv[n++] = (char *)fmt("http://127.0.0.1:%d%s", api_port, path);
  argv[n] = NULL;
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  cr_assert_eq(r.status, 0, "curl failed: %s", r.err);
  snprintf(out, sizeof(out), "%s", r.out);
  t_run_free(&r);
  char *nl = strrchr(out, '\n');
  cr_assert_not_null(nl, "no status from curl: %s", out);
  *nl = '\0';
  if (body != NULL)
    *body = out;
  return atoi(nl + 1);
}

#define EXPECT(method, path, data, status, want_body)                          \
  do {                                                                         \
    char *body_;                                                               \
    int st_ = http(method, path, data, NULL, &body_);                          \
    cr_expect_eq(st_, status, "%s %s: status %d, want %d (%s)", method, path,  \
                 st_, status, body_);                                          \
    cr_expect(strstr(body_, want_body) != NULL, "%s %s: body '%s' lacks '%s'", \
              method, path, body_, want_body);                                 \
  } while (0)

Test(serve, curl_status_codes_and_errors) {
  serve(NULL);
  int up = t_free_port();
  const char *mk = fmt("{\"name\":\"db\",\"listen\":\"127.0.0.1:0\","
                       "\"upstream\":\"127.0.0.1:%d\"}",
                       up);
  EXPECT("GET", "/version", NULL, 200, "\"version\":\"2.");
  EXPECT("GET", "/proxies", NULL, 200, "{}");
  EXPECT("POST", "/proxies", mk, 201, "\"enabled\":true");
  EXPECT("POST", "/proxies", mk, 409,
         "{\"error\":\"proxy already exists\",\"status\":409}");
  EXPECT("POST", "/proxies", "{\"name\":\"x\"}", 400,
         "{\"error\":\"missing required field: upstream\",\"status\":400}");
  EXPECT("POST", "/proxies", "{\"upstream\":\"127.0.0.1:1\"}", 400,
         "missing required field: name");
  EXPECT("POST", "/proxies", "{not json", 400, "bad request body");
  EXPECT("POST", "/proxies", "{\"name\":\"y\",\"upstream\":\"nocolon\"}", 400,
         "bad upstream");
  EXPECT("GET", "/proxies/nope", NULL, 404,
         "{\"error\":\"proxy not found\",\"status\":404}");
  EXPECT("DELETE", "/proxies/nope", NULL, 404, "proxy not found");
  EXPECT("GET", "/proxies/nope/toxics", NULL, 404, "proxy not found");
  EXPECT("GET", "/proxies/db", NULL, 200, "\"toxics\":[]");
  EXPECT("GET", "/proxies/db/toxics", NULL, 200, "[]");

  const char *lat = "{\"type\":\"latency\",\"attributes\":{\"latency\":50}}";
  EXPECT("POST", "/proxies/db/toxics", lat, 200,
         "\"name\":\"latency_downstream\"");
  EXPECT("POST", "/proxies/db/toxics", lat, 409,
         "{\"error\":\"toxic already exists\",\"status\":409}");
  EXPECT("POST", "/proxies/db/toxics", "{\"type\":\"nope\"}", 400,
         "{\"error\":\"invalid toxic type\",\"status\":400}");
  EXPECT("POST", "/proxies/db/toxics",
         "{\"type\":\"latency\",\"stream\":\"sideways\"}", 400,
         "stream was invalid, can be either upstream or downstream");
  EXPECT("POST", "/proxies/db/toxics",
         "{\"type\":\"bandwidth\",\"attributes\":{\"rate\":1.5}}", 400,
         "attribute rate of bandwidth");
  EXPECT("GET", "/proxies/db/toxics/latency_downstream", NULL, 200,
         "\"latency\":50");
  EXPECT("POST", "/proxies/db/toxics/latency_downstream",
         "{\"attributes\":{\"jitter\":5},\"toxicity\":0.5}", 200,
         "\"latency\":50,\"jitter\":5");
  EXPECT("GET", "/proxies/db/toxics/nope", NULL, 404,
         "{\"error\":\"toxic not found\",\"status\":404}");
  EXPECT("DELETE", "/proxies/db/toxics/nope", NULL, 404, "toxic not found");
  EXPECT("DELETE", "/proxies/db/toxics/latency_downstream", NULL, 204, "");
  EXPECT("POST", "/proxies/db", "{\"enabled\":false}", 200,
         "\"enabled\":false");
  EXPECT("POST", "/reset", NULL, 204, "");
  EXPECT("GET", "/proxies/db", NULL, 200, "\"enabled\":true");
  EXPECT("POST", "/populate",
         fmt("[{\"name\":\"db\",\"listen\":\"127.0.0.1:0\",\"upstream\":"
             "\"127.0.0.1:%d\"},{\"name\":\"cache\",\"upstream\":"
             "\"127.0.0.1:%d\"}]",
             up, up),
         201, "\"name\":\"cache\"");
  EXPECT("POST", "/populate", "[{\"name\":\"z\"}]", 400,
         "missing required field: upstream at proxy 1");
  EXPECT("DELETE", "/proxies/cache", NULL, 204, "");
  EXPECT("GET", "/nothing", NULL, 404, "\"status\":404");
  EXPECT("PUT", "/proxies", NULL, 405, "\"status\":405");
}

Test(serve, token_is_required_off_loopback_and_checked) {
  char *argv[] = {T_FAULTLINE, "serve", "--listen", "0.0.0.0:0", NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  cr_expect_eq(r.status, 2, "exit %d: %s", r.status, r.err);
  cr_expect(strstr(r.err, "needs --token") != NULL, "said: %s", r.err);
  t_run_free(&r);

  serve("s3cret");
  char *body;
  cr_expect_eq(http("GET", "/proxies", NULL, NULL, &body), 401, "%s", body);
  cr_expect(strstr(body, "\"status\":401") != NULL, "%s", body);
  cr_expect_eq(
      http("GET", "/proxies", NULL, "Authorization: Bearer wrong", &body), 401);
  cr_expect_eq(
      http("GET", "/proxies", NULL, "Authorization: Bearer s3cret", &body), 200,
      "%s", body);
}

/* A step of the node client; its one JSON line (static), or fails. */
static const char *client(const char *step, const char *a, const char *b,
                          const char *c) {
  static char line[2048];
  char *argv[] = {
      "node",       CLIENT,    (char *)fmt("http://127.0.0.1:%d", api_port),
      (char *)step, (char *)a, (char *)b,
      (char *)c,    NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 20000, &r), 0);
  snprintf(line, sizeof(line), "%s", r.out);
  int status = r.status;
  t_run_free(&r);
  cr_assert_eq(status, 0, "client step %s failed: %s", step, line);
  return line;
}

/* redis-cli PING through the proxy: its time in ms, or -1 when it fails. */
static long long ping(int port) {
  char *argv[] = {"redis-cli", "-p", (char *)fmt("%d", port), "PING", NULL};
  struct t_run r;
  long long t0 = t_now_ms();
  cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
  long long ms = t_now_ms() - t0;
  int ok = r.status == 0 && strstr(r.out, "PONG") != NULL;
  t_run_free(&r);
  return ok ? ms : -1;
}

Test(serve, toxiproxy_node_client_in_front_of_redis) {
  struct stat st;
  cr_assert_eq(stat(NPM_CLIENT "/package.json", &st), 0,
               "toxiproxy-node-client missing: run scripts/setup");
  cr_assert_eq(t_redis_start(&redis), 0);
  serve(NULL);
  int port = t_free_port();
  const char *made = client("create", "redis", fmt("127.0.0.1:%d", port),
                            fmt("127.0.0.1:%d", redis.port));
  cr_assert(strstr(made, fmt("\"listen\":\"127.0.0.1:%d\"", port)), "%s", made);
  cr_assert_geq(ping(port), 0, "PING through the proxy failed");

  client("latency", "redis", "300", NULL);
  long long ms = ping(port);
  cr_expect_geq(ms, 300, "PING took %lld ms with 300 ms of latency", ms);
  char *body;
  cr_expect_eq(http("GET", "/proxies/redis", NULL, NULL, &body), 200);
  const char *counted = strstr(body, "\"faultline\":{\"delivered\":");
  cr_expect(counted != NULL && atoi(counted + 25) >= 1,
            "no delivered latency counted: %s", body);

  client("remove", "redis", "latency_downstream", NULL);
  ms = ping(port);
  cr_expect(ms >= 0 && ms < 150, "PING took %lld ms after removal", ms);

  const char *off = client("disable", "redis", NULL, NULL);
  cr_expect(strstr(off, "\"enabled\":false"), "%s", off);
  cr_expect_eq(ping(port), -1, "redis-cli reached a disabled proxy");
  client("enable", "redis", NULL, NULL);
  cr_expect_geq(ping(port), 0, "PING failed after enabling again");
}

Test(serve, two_proxies_to_one_upstream_keep_their_toxics) {
  cr_assert_eq(t_redis_start(&redis), 0);
  serve(NULL);
  int pa = t_free_port(), pb = t_free_port();
  EXPECT("POST", "/proxies",
         fmt("{\"name\":\"a\",\"listen\":\"127.0.0.1:%d\",\"upstream\":"
             "\"127.0.0.1:%d\"}",
             pa, redis.port),
         201, "");
  EXPECT("POST", "/proxies",
         fmt("{\"name\":\"b\",\"listen\":\"127.0.0.1:%d\",\"upstream\":"
             "\"127.0.0.1:%d\"}",
             pb, redis.port),
         201, "");
  EXPECT("POST", "/proxies/a/toxics",
         "{\"type\":\"latency\",\"attributes\":{\"latency\":300}}", 200, "");
  long long a = ping(pa), b = ping(pb);
  cr_expect_geq(a, 300, "a: %lld ms", a);
  cr_expect(b >= 0 && b < 150, "b: %lld ms (a's toxic leaked?)", b);
}

Test(serve, shim_fault_in_an_exec_child) {
  serve(NULL);
  /* A Python client under the shim: connects to the port it reads and
   * says what happened. The API's own port is a live listener. */
  const char *py =
      "import socket,sys\n"
      "print('ready',flush=True)\n"
      "for l in sys.stdin:\n"
      "  s=socket.socket()\n"
      "  try:\n"
      "    s.connect(('127.0.0.1',int(l))); print('ok',flush=True)\n"
      "  except OSError as e: print('errno',e.errno,flush=True)\n"
      "  s.close()\n";
  char child_ctl[400];
  snprintf(child_ctl, sizeof(child_ctl), "%s/child.ctl", tmp);
  char *argv[] = {T_FAULTLINE, "exec",    "--quiet", "--control", child_ctl,
                  "--",        "python3", "-c",      (char *)py,  NULL};
  struct t_proc child = {.in_fd = -1, .out_fd = -1};
  cr_assert_eq(t_spawn(&child, argv, NULL, 1), 0);
  char line[256];
  cr_assert_eq(t_expect(&child, "ready", NULL, 0, 10000), 0);
  t_send(&child, fmt("%d", api_port));
  cr_assert_eq(t_line(&child, line, sizeof(line), 5000), 0);
  cr_expect_str_eq(line, "ok");

  char *body;
  int st = http("POST", "/shim",
                fmt("{\"control\":\"%s\",\"fault\":\"refuse@127.0.0.1:%d\"}",
                    child_ctl, api_port),
                NULL, &body);
  cr_assert_eq(st, 201, "%s", body);
  int id = 0;
  cr_assert(sscanf(strstr(body, "\"id\":"), "\"id\":%d", &id) == 1, "%s", body);
  t_send(&child, fmt("%d", api_port));
  cr_assert_eq(t_line(&child, line, sizeof(line), 5000), 0);
  cr_expect_str_eq(line, "errno 111", "connect under refuse: %s", line);
  cr_expect_eq(
      http("GET", fmt("/shim?control=%s", child_ctl), NULL, NULL, &body), 200);
  cr_expect(strstr(body, "\"delivered\":1") != NULL, "%s", body);

  EXPECT("DELETE", fmt("/shim/%d?control=%s", id, child_ctl), NULL, 204, "");
  EXPECT("DELETE", fmt("/shim/%d?control=%s", id, child_ctl), NULL, 404,
         "rule not found");
  t_send(&child, fmt("%d", api_port));
  cr_assert_eq(t_line(&child, line, sizeof(line), 5000), 0);
  cr_expect_str_eq(line, "ok");

  EXPECT("POST", "/shim",
         fmt("{\"control\":\"%s\",\"fault\":\"latency@127.0.0.1:1,ms=5\"}",
             child_ctl),
         400, "not a shim fault");
  EXPECT("POST", "/shim",
         fmt("{\"control\":\"%s/none\",\"fault\":\"refuse@127.0.0.1:1\"}", tmp),
         404, "control segment not found");
  EXPECT("POST", "/shim", "{\"control\":\"x\",\"fault\":\"nope@x\"}", 400,
         "bad fault spec");
  cr_expect_eq(t_finish(&child, 10000), 0);
}

Test(serve, sigterm_closes_proxies_and_removes_the_segment) {
  serve(NULL);
  int port = t_free_port();
  EXPECT("POST", "/proxies",
         fmt("{\"name\":\"p\",\"listen\":\"127.0.0.1:%d\",\"upstream\":"
             "\"127.0.0.1:1\"}",
             port),
         201, "");
  cr_assert_eq(access(ctl, F_OK), 0, "no control segment at %s", ctl);
  kill(server.pid, SIGTERM);
  int status = t_finish(&server, 10000);
  server.pid = 0;
  cr_expect_eq(status, 0, "serve exited %d after SIGTERM", status);
  cr_expect_neq(access(ctl, F_OK), 0, "the control segment stayed");
  cr_expect_neq(t_wait_port(port, 200), 0, "the proxy still listens");
}
