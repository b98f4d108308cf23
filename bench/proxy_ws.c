/*
 * fl-bench-proxy-ws: what the proxy's WebSocket codec (harness/proxy/ws.c)
 * costs pass-through traffic when no ws fault is on. A Node ws client
 * (Debian's node-ws; 20 connections, 16 messages in flight on each) sends
 * messages to `faultline-run wsstub`, which echoes them:
 *   direct   to the stub;
 *   bytes    through fl_proxy with no protocol (bytes only);
 *   ws       through fl_proxy following WebSocket frames (protocol "ws").
 * Both proxies run on one libuv loop in a thread of this program, with an
 * empty control segment. Each round runs the three in an order rotated by
 * one, for 64-byte and 16 KiB messages; the report gives the median over
 * rounds of ws/bytes and bytes/direct echoes per second, paired within a
 * round. Usage: fl-bench-proxy-ws [--rounds N] [--seconds S]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "bench_util.h"
#include "control/control.h"
#include "proxy/proxy.h"

enum { DIRECT, BYTES, WS, NCFG };
static const char *const names[NCFG] = {"direct", "bytes", "ws"};
static const int sizes[2] = {64, 16384};
#define MAX_ROUNDS 21

static struct {
  char dir[PATH_MAX];
  pid_t stub;
  int port[NCFG];
  uv_loop_t loop;
  uv_async_t stop;
  fl_control_t *ctl;
  fl_proxy_t *proxy[NCFG];
  pthread_t thread;
} g;

/* The load: echoes per second over `seconds`, printed as "RATE N". */
static const char client_js[] =
    "const WebSocket = require('/usr/share/nodejs/ws');\n"
    "const [url, size, secs] = process.argv.slice(-3);\n"
    "const msg = Buffer.alloc(Number(size), 120);\n"
    "let n = 0, open = 0, t0 = 0, done = false;\n"
    "for (let i = 0; i < 20; i++) {\n"
    "  const ws = new WebSocket(url);\n"
    "  ws.on('open', () => {\n"
    "    if (++open == 20) { t0 = Date.now(); setTimeout(() => {\n"
    "      done = true; console.log('RATE', n * 1000 / (Date.now() - t0));\n"
    "      process.exit(0); }, Number(secs) * 1000); }\n"
    "    for (let k = 0; k < 16; k++) ws.send(msg);\n"
    "  });\n"
    "  ws.on('message', () => { if (t0) n++; if (!done) ws.send(msg); });\n"
    "  ws.on('error', e => { console.log('ERROR', e.message);"
    " process.exit(1); });\n"
    "}\n";

static int start_stub(void) {
  char exe[PATH_MAX], conf[PATH_MAX + 16], port[16];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 32);
  if (n <= 0)
    return -1;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  snprintf(slash + 1, sizeof(exe) - (size_t)(slash + 1 - exe), "faultline-run");
  snprintf(conf, sizeof(conf), "%s/ws.json", g.dir);
  FILE *f = fopen(conf, "w");
  if (f == NULL || fputs("{}", f) < 0 || fclose(f) != 0)
    return -1;
  g.port[DIRECT] = fl_free_port();
  snprintf(port, sizeof(port), "%d", g.port[DIRECT]);
  g.stub = fork();
  if (g.stub == 0) {
    execl(exe, exe, "wsstub", "--port", port, conf, (char *)NULL);
    _exit(127);
  }
  for (int i = 0; i < 100; i++) {
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "curl -s -o /dev/null http://127.0.0.1:%d/",
             g.port[DIRECT]);
    if (system(cmd) == 0)
      return 0;
    bench_sleep_ms(50);
  }
  return -1;
}

static void on_stop(uv_async_t *a) {
  for (int i = BYTES; i < NCFG; i++)
    fl_proxy_close(g.proxy[i]);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  (void)arg;
  uv_run(&g.loop, UV_RUN_DEFAULT);
  return NULL;
}

static int start_proxies(void) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/control", g.dir);
  if (fl_control_create(path, 1, &g.ctl) != 0 || uv_loop_init(&g.loop) != 0)
    return -1;
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)g.port[DIRECT]),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  for (int i = BYTES; i < NCFG; i++) {
    struct fl_proxy_opts o = {.protocol = i == WS ? "ws" : NULL};
    if (fl_proxy_start_with(&g.loop, g.ctl, (struct sockaddr *)&up, &o,
                            &g.proxy[i]) != 0)
      return -1;
    g.port[i] = fl_proxy_port(g.proxy[i]);
  }
  if (uv_async_init(&g.loop, &g.stop, on_stop) != 0 ||
      pthread_create(&g.thread, NULL, loop_main, NULL) != 0)
    return -1;
  return 0;
}

/* One client run; its echoes per second, or -1. */
static double load(int cfg, int size, int seconds) {
  char cmd[PATH_MAX + 128], line[512];
  snprintf(cmd, sizeof(cmd), "node %s/client.js ws://127.0.0.1:%d/ %d %d 2>&1",
           g.dir, g.port[cfg], size, seconds);
  FILE *p = popen(cmd, "r");
  double rate = -1;
  while (p != NULL && fgets(line, sizeof(line), p) != NULL)
    if (strncmp(line, "RATE ", 5) == 0)
      rate = strtod(line + 5, NULL);
  if (p != NULL && pclose(p) != 0)
    rate = -1;
  return rate;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  long rounds = 5, seconds = 3;
  bench_init("fl-bench-proxy-ws");
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--rounds") == 0)
      bench_parse_long(argv[i + 1], "--rounds", 1, MAX_ROUNDS, &rounds);
    else if (strcmp(argv[i], "--seconds") == 0)
      bench_parse_long(argv[i + 1], "--seconds", 1, 60, &seconds);
  }
  if (bench_need_program("node", "nodejs") != 0)
    return FL_EXIT_ENV;
  snprintf(g.dir, sizeof(g.dir), "/tmp/fl-bench-ws-XXXXXX");
  int status = FL_EXIT_ENV;
  char js[PATH_MAX + 16];
  if (mkdtemp(g.dir) == NULL ||
      (snprintf(js, sizeof(js), "%s/client.js", g.dir), 0) != 0)
    goto out;
  FILE *f = fopen(js, "w");
  if (f == NULL || fputs(client_js, f) < 0 || fclose(f) != 0 ||
      start_stub() != 0 || start_proxies() != 0) {
    bench_say("cannot start the stub or the proxies");
    goto out;
  }
  double rps[2][NCFG][MAX_ROUNDS], codec[2][MAX_ROUNDS], hop[2][MAX_ROUNDS];
  for (int r = 0; r < rounds; r++)
    for (int s = 0; s < 2; s++)
      for (int k = 0; k < NCFG; k++) {
        int c = (k + r) % NCFG;
        if ((rps[s][c][r] = load(c, sizes[s], (int)seconds)) <= 0) {
          bench_say("the client failed (%s, %d bytes)", names[c], sizes[s]);
          goto out;
        }
      }
  printf("fl-bench-proxy-ws: node ws, 20 connections x 16 in flight, %lds, "
         "%ld rounds, echo stub on loopback\n",
         seconds, rounds);
  printf("%-7s %12s %12s %12s %12s %14s\n", "message", "direct /s", "bytes /s",
         "ws /s", "ws/bytes", "bytes/direct");
  for (int s = 0; s < 2; s++) {
    double m[NCFG];
    for (int r = 0; r < rounds; r++) {
      codec[s][r] = rps[s][WS][r] / rps[s][BYTES][r];
      hop[s][r] = rps[s][BYTES][r] / rps[s][DIRECT][r];
    }
    for (int c = 0; c < NCFG; c++)
      m[c] = median(rps[s][c], (int)rounds);
    printf("%-7d %12.0f %12.0f %12.0f %12.3f %14.3f\n", sizes[s], m[DIRECT],
           m[BYTES], m[WS], median(codec[s], (int)rounds),
           median(hop[s], (int)rounds));
  }
  status = FL_EXIT_OK;
out:
  if (g.thread) {
    uv_async_send(&g.stop);
    pthread_join(g.thread, NULL);
    uv_loop_close(&g.loop);
  }
  if (g.stub > 0) {
    kill(g.stub, SIGTERM);
    waitpid(g.stub, NULL, 0);
  }
  if (g.ctl != NULL)
    fl_control_remove(g.ctl);
  char rm[PATH_MAX + 16];
  snprintf(rm, sizeof(rm), "rm -rf %s", g.dir);
  if (g.dir[0] == '/' && system(rm) != 0)
    bench_say("could not remove %s", g.dir);
  return status;
}
