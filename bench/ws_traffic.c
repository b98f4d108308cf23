/*
 * fl-bench-ws-traffic: how many concurrent WebSocket connections and
 * messages per second one runner's traffic sustains on this machine, and
 * what each connection costs in memory, against Node's `ws` client (the
 * baseline, in the same run) on the same Node `ws` echo server.
 *
 * Each level is N connections, each sending one small text message every
 * 1/R seconds (N × R messages per second asked), opened at 2000 per
 * second; after they are all open, D seconds are measured:
 *   achieved ÷ asked  replies received in the D seconds ÷ (N × R × D);
 *   rtt p50, p99      round trips of those replies;
 *   RSS / conn        resident memory once all are open, less before,
 *                     per connection open (kB);
 *   CPU / 1000 msg    user + system time per 1000 replies, in the window.
 * faultline's side is harness/traffic (the runner's own code) in a
 * fork of this process (a fresh heap per level); Node's is a child process with
 * the same schedule. The server is one Node process (one core); the client
 * under test has the other.
 *
 * Usage: fl-bench-ws-traffic [--rounds N] [--duration S] [--levels
 *                            N:R,...] [--out FILE] [--quick]
 * Exit status: 0 when every run succeeded, 2 bad usage, 3 the
 * environment failed (node or its ws module missing, a run failing),
 * 130 interrupted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "base/base.h"
#include "bench_util.h"
#include "traffic/traffic.h"

#define NODE "/usr/bin/node"
#define NODE_PATH "NODE_PATH=/usr/share/nodejs" /* Debian's node-ws */
#define MAX_LEVELS 8
#define MAX_ROUNDS 21
#define CONNECT_RATE 2000.0

enum { EXIT_USAGE = 2, EXIT_ENV = 3, EXIT_INTR = 130 };

struct level {
  int conns;
  double rate; /* per connection */
};

/* One client's run at one level. */
struct run {
  double ratio, p50, p99, rss_kb, cpu_ms;
  int opened;
};

static struct {
  char dir[256];
  pid_t server;
  int port;
} B;

static const char server_js[] =
    "const { WebSocketServer } = require('ws');\n"
    "const s = new WebSocketServer({ host: '127.0.0.1', port: 0,\n"
    "  perMessageDeflate: false, clientTracking: false });\n"
    "s.on('connection', (ws) => ws.on('message', (m, bin) =>\n"
    "  ws.send(m, { binary: bin })));\n"
    "s.on('listening', () => console.log('PORT ' + s.address().port));\n";

/* The baseline: the same schedule with Node's ws client; one JSON line. */
static const char client_js[] =
    "const WebSocket = require('ws');\n"
    "const [port, n, rate, dur, crate] = process.argv.slice(2).map(Number);\n"
    "const rss0 = process.memoryUsage().rss;\n"
    "const ramp = n / crate + 0.5;\n"
    "let opened = 0, t0 = performance.now(), rtts = [], rss1 = 0, cpu0;\n"
    "const now = () => (performance.now() - t0) / 1000;\n"
    "const open = () => {\n"
    "  const ws = new WebSocket('ws://127.0.0.1:' + port + '/echo',\n"
    "                           { perMessageDeflate: false });\n"
    "  const pend = [];\n"
    "  ws.on('open', () => { opened++;\n"
    "    setInterval(() => { pend.push(performance.now());\n"
    "                        ws.send('{\"op\":\"ping\"}'); }, 1000 / rate); "
    "});\n"
    "  ws.on('message', () => { const t = now(), s = pend.shift();\n"
    "    if (t >= ramp && t < ramp + dur && s !== undefined)\n"
    "      rtts.push((performance.now() - s) / 1000); });\n"
    "  ws.on('error', () => {});\n"
    "};\n"
    "for (let i = 0; i < n; i++) setTimeout(open, i * 1000 / crate);\n"
    "setTimeout(() => { rss1 = process.memoryUsage().rss;\n"
    "                   cpu0 = process.cpuUsage(); }, ramp * 1000);\n"
    "setTimeout(() => { const c = process.cpuUsage(cpu0);\n"
    "  rtts.sort((a, b) => a - b);\n"
    "  const q = (p) => rtts.length ?\n"
    "    rtts[Math.max(0, Math.ceil(p / 100 * rtts.length) - 1)] : NaN;\n"
    "  console.log(JSON.stringify({ opened, replies: rtts.length,\n"
    "    p50: q(50), p99: q(99), rss_kb: (rss1 - rss0) / 1024,\n"
    "    cpu_s: (c.user + c.system) / 1e6 }));\n"
    "  process.exit(0); }, (ramp + dur) * 1000);\n";

static void cleanup(void) {
  bench_stop_child(&B.server, 0, 1000);
  if (B.dir[0] != '\0')
    fl_rm_tree(B.dir);
  B.dir[0] = '\0';
}

__attribute__((noreturn, format(printf, 2, 3))) static void
die(int code, const char *fmt, ...);
static void die(int code, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  bench_say("%s", msg);
  cleanup();
  exit(code);
}

static void start_server(void) {
  char path[512];
  snprintf(path, sizeof(path), "%s/server.js", B.dir);
  if (bench_write_file(path, server_js) != 0)
    die(EXIT_ENV, "cannot write %s", path);
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0)
    die(EXIT_ENV, "pipe: %s", strerror(errno));
  char *argv[] = {NODE, path, NULL};
  char *envp[] = {NODE_PATH, "PATH=/usr/bin:/bin", NULL};
  struct bench_spawn s = {argv, envp, {BENCH_FD_NULL, pipefd[1], 2}, 1};
  int rc = bench_spawn(&s, &B.server);
  close(pipefd[1]);
  if (rc != 0)
    die(EXIT_ENV, "cannot start node: %s", strerror(-rc));
  /* Its first line; the pipe stays open (the server keeps it). */
  static struct bench_lines lines;
  char out[256] = "";
  lines.fd = pipefd[0];
  bench_next_line(&lines, out, sizeof(out), bench_now_ns() + 10000000000ll);
  close(pipefd[0]);
  if (sscanf(out, "PORT %d", &B.port) != 1)
    die(EXIT_ENV,
        "the Node ws server did not start (install node-ws: 'apt-get "
        "install node-ws'): %s",
        out);
}

/* VmRSS of this process, kB. */
static double rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  double kb = NAN;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %lf", &kb) == 1)
      break;
  if (f != NULL)
    fclose(f);
  return kb;
}

static void on_freed(void *arg) { *(int *)arg = 1; }
static void on_tick(uv_timer_t *t) { (void)t; }

/* Runs the loop for `seconds`. */
static void run_for(uv_loop_t *loop, double seconds) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, on_tick, 10, 10);
  double end = bench_now_s() + seconds;
  while (bench_now_s() < end && !bench_stop)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* faultline's traffic at level l for d seconds after the ramp. */
static int run_faultline(const struct level *l, double d, struct run *out) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", B.port);
  struct fl_ws_spec ws = {.connections = l->conns,
                          .connect_rate = CONNECT_RATE,
                          .message = "{\"op\":\"ping\"}",
                          .message_rate = l->rate};
  struct fl_endpoint_spec e = {
      .name = "bench", .path = "/echo", .timeout = 10, .seed = 1, .ws = &ws};
  fl_traffic_t *t;
  if (fl_traffic_new(&loop, base, &t) != 0 || fl_traffic_add(t, &e) != 0)
    return -ENOMEM;
  double rss0 = rss_kb(), ramp = l->conns / CONNECT_RATE + 0.5;
  fl_traffic_start(t);
  run_for(&loop, ramp);
  double rss1 = rss_kb(), cpu0 = bench_rusage_s(RUSAGE_SELF);
  run_for(&loop, d);
  double cpu1 = bench_rusage_s(RUSAGE_SELF);
  struct fl_ws_records r;
  fl_traffic_ws_records(t, 0, &r);
  double *rtt = malloc((r.nmsgs + 1) * sizeof(double));
  size_t n = 0;
  out->opened = 0;
  for (size_t i = 0; i < r.nconns; i++)
    out->opened += r.conns[i].opened;
  for (size_t i = 0; rtt != NULL && i < r.nmsgs; i++)
    if (r.msgs[i].t >= ramp && r.msgs[i].t < ramp + d && r.msgs[i].rtt >= 0)
      rtt[n++] = r.msgs[i].rtt;
  if (rtt != NULL)
    qsort(rtt, n, sizeof(double), cmp_double);
  out->ratio = n / (l->conns * l->rate * d);
  out->p50 = n ? fl_percentile(rtt, n, 50) : NAN;
  out->p99 = n ? fl_percentile(rtt, n, 99) : NAN;
  out->rss_kb = out->opened ? (rss1 - rss0) / out->opened : NAN;
  out->cpu_ms = n ? (cpu1 - cpu0) * 1000 / (n / 1000.0) : NAN;
  free(rtt);
  int freed = 0;
  fl_traffic_free(t, on_freed, &freed);
  for (int i = 0; i < 10000 && !freed; i++)
    uv_run(&loop, UV_RUN_ONCE);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return out->opened == l->conns ? 0 : -EIO;
}

/* run_faultline in a child process of its own, so that its RSS is not
 * what an earlier level left in this one's heap. */
static int run_faultline_fresh(const struct level *l, double d,
                               struct run *out) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0)
    return -errno;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -errno;
  }
  if (pid == 0) {
    close(fds[0]);
    struct run r = {0};
    int rc = run_faultline(l, d, &r);
    ssize_t n = write(fds[1], &r, sizeof(r));
    _exit(rc == 0 && n == (ssize_t)sizeof(r) ? 0 : 1);
  }
  close(fds[1]);
  bench_child = pid;
  ssize_t n = read(fds[0], out, sizeof(*out));
  close(fds[0]);
  int status = 0;
  bench_wait(pid, &status, NULL);
  bench_child = 0;
  return n == (ssize_t)sizeof(*out) && status == 0 ? 0 : -EIO;
}

/* Node's ws client at level l. */
static int run_node(const struct level *l, double d, struct run *out) {
  char path[512], a[5][32];
  snprintf(path, sizeof(path), "%s/client.js", B.dir);
  if (bench_write_file(path, client_js) != 0)
    return -EIO;
  snprintf(a[0], 32, "%d", B.port);
  snprintf(a[1], 32, "%d", l->conns);
  snprintf(a[2], 32, "%g", l->rate);
  snprintf(a[3], 32, "%g", d);
  snprintf(a[4], 32, "%g", CONNECT_RATE);
  char *argv[] = {NODE, path, a[0], a[1], a[2], a[3], a[4], NULL};
  char *envp[] = {NODE_PATH, "PATH=/usr/bin:/bin", NULL};
  struct bench_spawn s = {argv, envp, {BENCH_FD_NULL, 0, 2}, 1};
  char json[1024] = "";
  int timeout = (int)(l->conns / CONNECT_RATE + d + 30), status = 0;
  int rc = bench_capture(&s, json, sizeof(json), timeout, &status, NULL);
  int replies = 0;
  double cpu_s = 0;
  if (rc != 0 || status != 0 ||
      sscanf(json,
             "{\"opened\":%d,\"replies\":%d,\"p50\":%lf,\"p99\":%lf,"
             "\"rss_kb\":%lf,\"cpu_s\":%lf}",
             &out->opened, &replies, &out->p50, &out->p99, &out->rss_kb,
             &cpu_s) != 6)
    return -EIO;
  out->ratio = replies / (l->conns * l->rate * d);
  out->rss_kb = out->opened ? out->rss_kb / out->opened : NAN;
  out->cpu_ms = replies ? cpu_s * 1000 / (replies / 1000.0) : NAN;
  return out->opened == l->conns ? 0 : -EIO;
}

/* ---- The report ---- */

struct results {
  const char *cmdline;
  const struct level *levels;
  int nlevels, rounds;
  double duration;
  struct run (*ours)[MAX_ROUNDS], (*node)[MAX_ROUNDS];
};

/* "median (min – max)" of field f of runs[0..rounds). */
#define CELL(buf, runs, f, scale, fmt)                                         \
  do {                                                                         \
    double v_[MAX_ROUNDS];                                                     \
    for (int r_ = 0; r_ < res->rounds; r_++)                                   \
      v_[r_] = (runs)[r_].f;                                                   \
    bench_cell(buf, sizeof(buf), v_, (size_t)res->rounds, scale, fmt);         \
  } while (0)

static void report(FILE *f, const void *arg) {
  const struct results *res = arg;
  fputs("## WebSocket traffic: connections, messages, memory "
        "(fl-bench-ws-traffic)\n\n",
        f);
  bench_print_context(f, res->cmdline);
  fprintf(f,
          ".\n\nOne Node `ws` echo server on 127.0.0.1 (one process). Per "
          "level, N connections opened at %.0f/s, each sending a 13-byte "
          "text message R times a second; measured for %.0f s once all are "
          "open. faultline: harness/traffic in a fresh fork of this process; "
          "baseline: "
          "Node's `ws` client, same schedule, in the same run. Median (min "
          "– max) over %d round%s.\n\n",
          CONNECT_RATE, res->duration, res->rounds, res->rounds > 1 ? "s" : "");
  fputs("| N × R (msg/s asked) | client | achieved ÷ asked | rtt p50 | "
        "rtt p99 | RSS per connection | CPU per 1000 msg |\n"
        "|---|---|---|---|---|---|---|\n",
        f);
  for (int i = 0; i < res->nlevels; i++) {
    const struct level *l = &res->levels[i];
    for (int who = 0; who < 2; who++) {
      const struct run *runs = who == 0 ? res->ours[i] : res->node[i];
      char c[5][96];
      CELL(c[0], runs, ratio, 1, "%.3f");
      CELL(c[1], runs, p50, 1e3, "%.2f ms");
      CELL(c[2], runs, p99, 1e3, "%.2f ms");
      CELL(c[3], runs, rss_kb, 1, "%.1f kB");
      CELL(c[4], runs, cpu_ms, 1, "%.0f ms");
      fprintf(f, "| %d × %g (%.0f) | %s | %s | %s | %s | %s | %s |\n", l->conns,
              l->rate, l->conns * l->rate, who == 0 ? "faultline" : "node ws",
              c[0], c[1], c[2], c[3], c[4]);
    }
  }
  fputs("\nRatios, faultline ÷ node ws (median over rounds): achieved, "
        "RSS per connection, CPU per message.\n\n",
        f);
  for (int i = 0; i < res->nlevels; i++) {
    double a[MAX_ROUNDS], m[MAX_ROUNDS], c[MAX_ROUNDS];
    for (int r = 0; r < res->rounds; r++) {
      a[r] = res->ours[i][r].ratio / res->node[i][r].ratio;
      m[r] = res->ours[i][r].rss_kb / res->node[i][r].rss_kb;
      c[r] = res->ours[i][r].cpu_ms / res->node[i][r].cpu_ms;
    }
    struct bench_summary sa, sm, sc;
    bench_summarize(a, (size_t)res->rounds, &sa);
    bench_summarize(m, (size_t)res->rounds, &sm);
    bench_summarize(c, (size_t)res->rounds, &sc);
    fprintf(f, "- %d × %g: achieved %.3f, memory %.2f, CPU %.2f\n",
            res->levels[i].conns, res->levels[i].rate, sa.median, sm.median,
            sc.median);
  }
}

/* ---- main ---- */

static void usage(FILE *f) {
  fputs("usage: fl-bench-ws-traffic [--rounds N] [--duration S] "
        "[--levels N:R,...] [--out FILE] [--quick]\n",
        f);
}

/* "1000:1,100:50": connections and rate per connection. */
static int parse_levels(const char *s, struct level *out) {
  int n = 0;
  char *copy = strdup(s), *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
       tok = strtok_r(NULL, ",", &save)) {
    if (n == MAX_LEVELS ||
        sscanf(tok, "%d:%lf", &out[n].conns, &out[n].rate) != 2 ||
        out[n].conns < 1 || out[n].conns > 15000 || !(out[n].rate > 0)) {
      free(copy);
      return -1;
    }
    n++;
  }
  free(copy);
  return n;
}

int main(int argc, char **argv) {
  bench_init("fl-bench-ws-traffic");
  int rounds = 3, quick = 0, set_rounds = 0, set_duration = 0;
  double duration = 5;
  struct level levels[MAX_LEVELS] = {
      {1000, 1}, {5000, 1}, {100, 50}, {200, 100}};
  int nlevels = 4, set_levels = 0;
  const char *out_path = NULL;
  static const struct option opts[] = {
      {"rounds", required_argument, NULL, 'r'},
      {"duration", required_argument, NULL, 'd'},
      {"levels", required_argument, NULL, 'L'},
      {"out", required_argument, NULL, 'o'},
      {"quick", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  for (int o;
       (o = bench_getopt(argc, argv, opts, usage, &quick, &out_path)) != 0;) {
    char *end = NULL;
    if (o < 0)
      return EXIT_USAGE;
    if (o == 'r') {
      rounds = (int)strtol(optarg, &end, 10);
      set_rounds = 1;
      if (*end != '\0' || rounds < 1 || rounds > MAX_ROUNDS)
        return usage(stderr), EXIT_USAGE;
    } else if (o == 'd') {
      duration = strtod(optarg, &end);
      set_duration = 1;
      if (*end != '\0' || !(duration >= 0.5) || duration > 600)
        return usage(stderr), EXIT_USAGE;
    } else if (o == 'L') {
      nlevels = parse_levels(optarg, levels);
      set_levels = 1;
      if (nlevels <= 0)
        return usage(stderr), EXIT_USAGE;
    }
  }
  if (quick) {
    rounds = set_rounds ? rounds : 1;
    duration = set_duration ? duration : 1;
    if (!set_levels) {
      levels[0] = (struct level){200, 2};
      levels[1] = (struct level){20, 50};
      nlevels = 2;
    }
  }
  if (access(NODE, X_OK) != 0)
    die(EXIT_ENV, NODE " not found: install it with 'apt-get install nodejs'");
  bench_catch_signals(SIGKILL, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  int rc = bench_tmpdir(B.dir, sizeof(B.dir), "fl-bench-ws");
  if (rc != 0) {
    B.dir[0] = '\0';
    die(EXIT_ENV, "mkdtemp: %s", strerror(-rc));
  }
  start_server();
  static struct run ours[MAX_LEVELS][MAX_ROUNDS], node[MAX_LEVELS][MAX_ROUNDS];
  for (int r = 0; r < rounds && !bench_stop; r++)
    for (int i = 0; i < nlevels && !bench_stop; i++) {
      const struct level *l = &levels[i];
      fprintf(stderr, "round %d/%d: %d × %g msg/s, faultline then node\n",
              r + 1, rounds, l->conns, l->rate);
      if ((rc = run_faultline_fresh(l, duration, &ours[i][r])) != 0 &&
          !bench_stop)
        die(EXIT_ENV, "faultline at %d × %g: %d of %d opened", l->conns,
            l->rate, ours[i][r].opened, l->conns);
      /* The baseline failing at a level is a finding, not the end: its
       * row says so. */
      if ((rc = run_node(l, duration, &node[i][r])) != 0 && !bench_stop) {
        bench_say("node ws client at %d × %g: %d of %d opened, no figures",
                  l->conns, l->rate, node[i][r].opened, l->conns);
        node[i][r] = (struct run){NAN, NAN, NAN, NAN, NAN, node[i][r].opened};
      }
    }
  if (bench_stop)
    die(EXIT_INTR, "interrupted");
  char cmdline[512];
  bench_cmdline(argc, argv, cmdline, sizeof(cmdline));
  struct results res = {cmdline, levels, nlevels, rounds, duration, ours, node};
  rc = bench_emit(out_path, report, &res);
  cleanup();
  return rc != 0 ? EXIT_ENV : 0;
}
