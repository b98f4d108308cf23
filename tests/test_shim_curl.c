/* The shim in a real C client: /usr/bin/curl, run one-shot under
 * `faultline exec --fault ...` against a local HTTP server, fails the way
 * curl fails for real (its exit code and its message). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "support.h"

#define CURL "/usr/bin/curl"
#define PYTHON "/usr/bin/python3"
#define BODY "faultline curl probe\n"

static struct {
  char dir[256];
  struct t_proc server;
  int port;
  struct t_run run;
  long long ms; /* how long the last curl run took */
} S;

/* python3 -m http.server serving BODY as /index.html on a free port. */
static void setup(void) {
  memset(&S, 0, sizeof(S));
  cr_assert_eq(t_mkdtemp(S.dir), 0);
  char index[300];
  snprintf(index, sizeof(index), "%s/index.html", S.dir);
  FILE *f = fopen(index, "w");
  cr_assert_not_null(f);
  fputs(BODY, f);
  fclose(f);
  for (int attempt = 0; attempt < 5; attempt++) {
    char port[16];
    S.port = t_free_port();
    snprintf(port, sizeof(port), "%d", S.port);
    char *argv[] = {PYTHON,      "-m",          "http.server", port, "--bind",
                    "127.0.0.1", "--directory", S.dir,         NULL};
    /* Its request log goes to our pipe, which nobody reads: a few lines. */
    cr_assert_eq(t_spawn(&S.server, argv, NULL, 1), 0);
    if (t_wait_port(S.port, 10000) == 0)
      return;
    t_finish(&S.server, 0); /* the port was taken meanwhile: another */
  }
  cr_assert_fail("the HTTP server did not start");
}

static void teardown(void) {
  if (S.server.pid > 0)
    t_finish(&S.server, 0);
  t_run_free(&S.run);
  t_rmtree(S.dir);
}

TestSuite(shim_curl, .init = setup, .fini = teardown);

/* Runs curl under faultline exec with one fault (or none) on `url`:
 * curl -sS -v URL -w '%{http_code}'. Returns curl's exit status. */
static int curl_under(const char *fault, const char *url, const char *extra) {
  char *argv[16];
  int n = 0;
  argv[n++] = T_FAULTLINE;
  argv[n++] = "exec";
  argv[n++] = "--quiet";
  if (fault != NULL) {
    argv[n++] = "--fault";
    argv[n++] = (char *)fault;
  }
  argv[n++] = "--";
  argv[n++] = CURL;
  argv[n++] = "-sS";
  argv[n++] = "-v";
  if (extra != NULL) {
    argv[n++] = (char *)extra;
    argv[n++] = "1";
  }
  argv[n++] = "-w";
  argv[n++] = "%{http_code}";
  argv[n++] = (char *)url;
  argv[n] = NULL;
  t_run_free(&S.run);
  long long start = t_now_ms();
  cr_assert_eq(t_run(argv, NULL, NULL, 20000, &S.run), 0);
  S.ms = t_now_ms() - start;
  return S.run.status;
}

static const char *url(const char *host) {
  static char u[300];
  snprintf(u, sizeof(u), "http://%s:%d/index.html", host, S.port);
  return u;
}

static const char *spec(const char *fmt, ...) {
  static char s[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s, sizeof(s), fmt, ap);
  va_end(ap);
  return s;
}

#define ASSERT_CURL(want_status, needle)                                       \
  do {                                                                         \
    cr_assert_eq(S.run.status, want_status,                                    \
                 "curl exited %d, expected %d; stderr:\n%s", S.run.status,     \
                 want_status, S.run.err);                                      \
    cr_assert(strstr(S.run.err, needle) != NULL,                               \
              "curl's stderr lacks '%s':\n%s", needle, S.run.err);             \
  } while (0)

static void assert_served(void) {
  cr_assert_eq(S.run.status, 0, "curl exited %d:\n%s", S.run.status, S.run.err);
  cr_assert_str_eq(S.run.out, BODY "200");
}

Test(shim_curl, no_fault_is_200, .timeout = 30) {
  curl_under(NULL, url("127.0.0.1"), NULL);
  assert_served();
}

Test(shim_curl, refuse, .timeout = 30) {
  curl_under(spec("refuse@127.0.0.1:%d", S.port), url("127.0.0.1"), NULL);
  ASSERT_CURL(7, "Connection refused");
  cr_assert(strstr(S.run.err, "Failed to connect") != NULL, "%s", S.run.err);
}

Test(shim_curl, hang_times_out, .timeout = 30) {
  curl_under(spec("hang@127.0.0.1:%d", S.port), url("127.0.0.1"),
             "--connect-timeout");
  ASSERT_CURL(28, "Timeout was reached");
  cr_assert_geq(S.ms, 1000, "curl gave up after %lld ms, before its 1 s", S.ms);
  cr_assert_lt(S.ms, 10000, "curl's 1 s connect timeout took %lld ms", S.ms);
}

/* curl resolves "localhost" itself, never asking getaddrinfo (RFC 6761), so
 * a name lookup fault is shown with this machine's own name, which the
 * hosts file maps to a loopback address. */
Test(shim_curl, dns, .timeout = 30) {
  char host[256];
  cr_assert_eq(gethostname(host, sizeof(host)), 0);
  curl_under(NULL, url(host), NULL);
  if (S.run.status != 0 || strstr(S.run.out, "200") == NULL)
    cr_skip_test("this host's name '%s' does not reach 127.0.0.1 (curl "
                 "exited %d): no local name to fault",
                 host, S.run.status);
  curl_under(spec("dns@%s", host), url(host), NULL);
  ASSERT_CURL(6, "Could not resolve host");
  /* A numeric URL is never looked up. */
  curl_under(spec("dns@%s", host), url("127.0.0.1"), NULL);
  assert_served();
}

Test(shim_curl, reset, .timeout = 30) {
  curl_under(spec("reset@127.0.0.1:%d", S.port), url("127.0.0.1"), NULL);
  /* The request is the first I/O on the connection: the send fails. */
  ASSERT_CURL(55, "Connection reset by peer");
}

Test(shim_curl, fault_elsewhere_leaves_curl_working, .timeout = 30) {
  int other = S.port == 65535 ? S.port - 1 : S.port + 1;
  curl_under(spec("refuse@127.0.0.1:%d", other), url("127.0.0.1"), NULL);
  assert_served();
  curl_under(spec("hang@127.0.0.2:%d", S.port), url("127.0.0.1"), NULL);
  assert_served();
  curl_under(spec("reset@127.0.0.1:%d", other), url("127.0.0.1"), NULL);
  assert_served();
}
