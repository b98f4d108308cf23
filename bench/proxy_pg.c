/*
 * fl-bench-proxy-pg: what following the PostgreSQL protocol (the proxy's
 * postgres codec, harness/proxy/pgwire.c) costs when no protocol fault is
 * on, next to the same proxy passing bytes only. bench/README.md explains
 * the figures.
 *
 * Against one running PostgreSQL (--port, trust authentication for user
 * postgres on 127.0.0.1), three configurations:
 *   direct  to the server;
 *   bytes   through fl_proxy with no protocol (the proxy of today);
 *   codec   through fl_proxy speaking "postgres", no fault armed.
 * Two loads: `pgbench -S` (select-only, 4 clients, many small messages)
 * and a big result set (psql reading 1000000 rows of 100 bytes). Each round
 * runs every configuration in an order rotated by one per round; ratios
 * codec ÷ bytes are taken within a round and the median is reported.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/base.h"
#include "bench_util.h"
#include "control/control.h"
#include "proxy/proxy.h"

enum cfg { CFG_DIRECT, CFG_BYTES, CFG_CODEC, CFG_COUNT };
static const char *const cfg_names[CFG_COUNT] = {"direct", "bytes", "codec"};
#define MAX_ROUNDS 21

static struct {
  char dir[256];
  fl_control_t *ctl;
  uv_loop_t loop;
  uv_async_t stop;
  fl_proxy_t *proxy[CFG_COUNT];
  int port[CFG_COUNT];
  pthread_t thread;
  clockid_t cpu; /* the loop thread's CPU clock */
  int running;
  long seconds, rounds;
} g;

static void close_proxies(uv_async_t *a) {
  for (int i = CFG_BYTES; i < CFG_COUNT; i++)
    fl_proxy_close(g.proxy[i]);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  (void)arg;
  uv_run(&g.loop, UV_RUN_DEFAULT);
  return NULL;
}

static int start_proxies(void) {
  char path[300];
  snprintf(path, sizeof(path), "%s/control", g.dir);
  int rc = fl_control_create(path, 1, &g.ctl);
  if (rc != 0) {
    bench_say("cannot create %s: %s", path, fl_strerror(rc));
    return -1;
  }
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)g.port[CFG_DIRECT]),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if ((rc = uv_loop_init(&g.loop)) != 0)
    return -1;
  for (int i = CFG_BYTES; i < CFG_COUNT; i++) {
    struct fl_proxy_opts o = {.protocol = i == CFG_CODEC ? "postgres" : NULL};
    if ((rc = fl_proxy_start_with(&g.loop, g.ctl, (struct sockaddr *)&up, &o,
                                  &g.proxy[i])) != 0) {
      bench_say("cannot start the proxy: %s", fl_strerror(rc));
      return -1;
    }
    g.port[i] = fl_proxy_port(g.proxy[i]);
  }
  if (uv_async_init(&g.loop, &g.stop, close_proxies) != 0 ||
      pthread_create(&g.thread, NULL, loop_main, NULL) != 0 ||
      pthread_getcpuclockid(g.thread, &g.cpu) != 0)
    return -1;
  g.running = 1;
  return 0;
}

static void stop_proxies(void) {
  if (!g.running)
    return;
  uv_async_send(&g.stop);
  pthread_join(g.thread, NULL);
  uv_loop_close(&g.loop);
  g.running = 0;
}

/* CPU seconds the proxies' loop thread has used. */
static double loop_cpu_s(void) {
  struct timespec ts;
  if (clock_gettime(g.cpu, &ts) != 0)
    return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* pgbench -S through port: its tps, or -1; *tx the transactions. */
static double pgbench(int port, double *tx) {
  char p[16], t[16], out[8192];
  snprintf(p, sizeof(p), "%d", port);
  snprintf(t, sizeof(t), "%ld", g.seconds);
  char *argv[] = {"pgbench", "-n", "-S",       "-c",       "4",         "-j",
                  "2",       "-T", t,          "-h",       "127.0.0.1", "-p",
                  p,         "-U", "postgres", "postgres", NULL};
  struct bench_spawn s = {
      .argv = argv, .fd = {BENCH_FD_NULL, 0, BENCH_FD_NULL, BENCH_FD_KEEP}};
  int status;
  if (bench_capture(&s, out, sizeof(out), (int)g.seconds + 60, &status, NULL) !=
          0 ||
      status != 0)
    return -1;
  const char *done = strstr(out, "transactions actually processed: ");
  *tx = done != NULL ? strtod(done + 33, NULL) : 0;
  const char *at = strstr(out, "tps = ");
  return at != NULL && *tx > 0 ? strtod(at + 6, NULL) : -1;
}

/* psql reading a big result through port: MB/s, or -1. */
static double bigread(int port) {
  char p[16], out[64];
  snprintf(p, sizeof(p), "%d", port);
  char *argv[] = {
      "psql", "-X",
      "-q",   "-At",
      "-h",   "127.0.0.1",
      "-p",   p,
      "-U",   "postgres",
      "-d",   "postgres",
      "-o",   "/dev/null",
      "-c",   "select repeat('x', 100) from generate_series(1, 1000000)",
      NULL};
  struct bench_spawn s = {
      .argv = argv, .fd = {BENCH_FD_NULL, 0, BENCH_FD_NULL, BENCH_FD_KEEP}};
  int status;
  double t0 = bench_now_s();
  if (bench_capture(&s, out, sizeof(out), 120, &status, NULL) != 0 ||
      status != 0)
    return -1;
  /* DataRow: 5 + 2 + 4 + 100 bytes a row. */
  return 1000000.0 * 111 / 1e6 / (bench_now_s() - t0);
}

static double v[2][CFG_COUNT][MAX_ROUNDS];
static double ratio[2][MAX_ROUNDS];
/* The proxy thread's CPU: µs per transaction, ms per MB. */
static double cpu[2][CFG_COUNT][MAX_ROUNDS];
static double cpu_ratio[2][MAX_ROUNDS];

static void report(FILE *f, const void *arg) {
  const char *cmdline = arg;
  static const char *const loads[2] = {"pgbench -S, 4 clients (tps)",
                                       "1000000 rows of 100 B via psql (MB/s)"};
  bench_print_context(f, cmdline);
  fprintf(f, "; %ld rounds\n\n", g.rounds);
  fprintf(f, "| load | direct | bytes (proxy) | codec (proxy+postgres) | "
             "codec ÷ bytes |\n|---|---|---|---|---|\n");
  for (int l = 0; l < 2; l++) {
    char c[CFG_COUNT][64], r[64];
    for (int i = 0; i < CFG_COUNT; i++)
      bench_cell(c[i], sizeof(c[i]), v[l][i], (size_t)g.rounds, 1,
                 l == 0 ? "%.0f" : "%.1f");
    bench_cell(r, sizeof(r), ratio[l], (size_t)g.rounds, 1, "%.3f");
    fprintf(f, "| %s | %s | %s | %s | %s |\n", loads[l], c[0], c[1], c[2], r);
  }
  static const char *const units[2] = {"µs per transaction",
                                       "ms per MB of result"};
  fprintf(f, "\nThe proxies' loop thread's CPU time (less sensitive to "
             "other load on the machine than throughput):\n\n"
             "| load | bytes | codec | codec ÷ bytes |\n|---|---|---|---|\n");
  for (int l = 0; l < 2; l++) {
    char b[64], c[64], r[64];
    bench_cell(b, sizeof(b), cpu[l][CFG_BYTES], (size_t)g.rounds, 1, "%.1f");
    bench_cell(c, sizeof(c), cpu[l][CFG_CODEC], (size_t)g.rounds, 1, "%.1f");
    bench_cell(r, sizeof(r), cpu_ratio[l], (size_t)g.rounds, 1, "%.3f");
    fprintf(f, "| %s | %s | %s | %s |\n", units[l], b, c, r);
  }
}

static void usage(FILE *f) {
  fprintf(f, "usage: fl-bench-proxy-pg --port PORT [--rounds N] "
             "[--seconds N] [--out FILE]\n"
             "  PORT: a running PostgreSQL on 127.0.0.1 (trust, user "
             "postgres) with pgbench's tables (pgbench -i)\n");
}

int main(int argc, char **argv) {
  static const struct option longs[] = {
      {"quick", no_argument, NULL, 'q'},
      {"port", required_argument, NULL, 'p'},
      {"rounds", required_argument, NULL, 'r'},
      {"seconds", required_argument, NULL, 's'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  bench_init("fl-bench-proxy-pg");
  int quick = 0, opt;
  const char *out = NULL;
  long port = 0;
  g.rounds = 5;
  g.seconds = 5;
  char cmdline[512];
  bench_cmdline(argc, argv, cmdline, sizeof(cmdline));
  while ((opt = bench_getopt(argc, argv, longs, usage, &quick, &out)) > 0) {
    if ((opt == 'p' && bench_parse_long(optarg, "--port", 1, 65535, &port)) ||
        (opt == 'r' &&
         bench_parse_long(optarg, "--rounds", 1, MAX_ROUNDS, &g.rounds)) ||
        (opt == 's' &&
         bench_parse_long(optarg, "--seconds", 1, 600, &g.seconds)))
      return 2;
  }
  if (opt < 0)
    return 2;
  if (quick)
    g.rounds = 1, g.seconds = 1;
  if (port == 0) {
    usage(stderr);
    return 2;
  }
  if (bench_need_program("pgbench", "postgresql-contrib") != 0 ||
      bench_need_program("psql", "postgresql-client") != 0 ||
      bench_tmpdir(g.dir, sizeof(g.dir), "fl-bench-proxy-pg") != 0)
    return 1;
  g.port[CFG_DIRECT] = (int)port;
  bench_catch_signals(SIGTERM, SIGKILL);
  int rc = start_proxies();
  for (long r = 0; rc == 0 && r < g.rounds && !bench_stop; r++)
    for (int k = 0; k < CFG_COUNT && rc == 0; k++) {
      int i = (int)((k + r) % CFG_COUNT);
      double tx = 0, c0 = loop_cpu_s();
      v[0][i][r] = pgbench(g.port[i], &tx);
      double c1 = loop_cpu_s();
      v[1][i][r] = bigread(g.port[i]);
      cpu[0][i][r] = tx > 0 ? (c1 - c0) * 1e6 / tx : 0;
      cpu[1][i][r] = (loop_cpu_s() - c1) * 1e3 / 111.0;
      if (v[0][i][r] < 0 || v[1][i][r] < 0) {
        bench_say("%s: pgbench or psql failed (pgbench -i done?)",
                  cfg_names[i]);
        rc = -1;
      }
    }
  stop_proxies();
  if (g.ctl != NULL)
    fl_control_remove(g.ctl);
  char rm[300];
  snprintf(rm, sizeof(rm), "rm -rf '%s'", g.dir);
  if (system(rm) != 0)
    bench_say("could not remove %s", g.dir);
  if (rc != 0 || bench_stop)
    return 1;
  for (int l = 0; l < 2; l++)
    for (long r = 0; r < g.rounds; r++)
      ratio[l][r] = v[l][CFG_CODEC][r] / v[l][CFG_BYTES][r],
      cpu_ratio[l][r] = cpu[l][CFG_CODEC][r] / cpu[l][CFG_BYTES][r];
  return bench_emit(out, report, cmdline) == 0 ? 0 : 1;
}
