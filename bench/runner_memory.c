/*
 * fl-bench-runner-memory: the runner's peak resident memory with many
 * requests in flight at once. bench/README.md explains every figure.
 *
 * A server in this program (a libuv loop in a thread) accepts connections
 * on loopback, reads each request and never answers, so every request
 * stays in flight. Each measurement is a fresh copy of this program (the
 * "runner"): it drives faultline's traffic (harness/traffic/traffic.c, libcurl
 * on libuv, the code `faultline run` uses) at that server at 250 req/s until N
 * requests are sent, then stops scheduling. Once the server holds all N
 * requests the runner reads its VmHWM (peak RSS, /proc/self/status); its
 * baseline is the same figure in the same process just before the traffic
 * started (libraries loaded, loop and traffic object made). Two levels,
 * N = --conns and N / 10, alternate run by run, so the growth per
 * connection can also be taken between them, paired within a repetition.
 *
 * Usage: fl-bench-runner-memory [--conns N] [--runs N] [--out FILE]
 *                               [--quick]
 * Exit status: 0 when every run held its N requests (the table gives the
 * figures), 2 bad usage, 3 the environment failed (a run not reaching N,
 * the server not seeing them), 130 interrupted.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "bench_util.h"
#include "traffic/traffic.h"

#define MAX_RUNS 51
/* Requests per second while filling: slow enough that a late loop still
 * stops before request N is due (2 ms of margin). */
#define RATE 250.0
#define REQ_TIMEOUT 120.0 /* seconds: never reached */
#define FILL_WAIT_S 60    /* the server must hold all N by then */
#define DRAIN_WAIT_S 15   /* after a run, every connection closed by then */
#define LEVELS 2

enum { V_EXEC, V_BASE, V_HWM, V_RSS, V_INFLIGHT, V_SOCKETS, V_HELD, V_COUNT };

struct opts {
  int conns, runs;
  const char *out;
  int quick;
};

/* [level][figure][run]; sizes in kB. */
static double res[LEVELS][V_COUNT][MAX_RUNS];

/* ---- the server: holds every request, answers none ------------------- */

struct server {
  uv_loop_t loop;
  uv_tcp_t listener;
  uv_async_t stop;
  pthread_t thread;
  int port, running;
  atomic_int open; /* connections accepted and not yet closed */
  atomic_int held; /* of those, with a complete request header read */
};

struct conn {
  uv_tcp_t tcp;
  struct server *s;
  char tail[4]; /* the last bytes read: for a header split across reads */
  int counted;
};

static struct {
  char self[PATH_MAX];
  struct server srv;
  pid_t child;
  struct bench_other other;
} g = {.child = 0};

static void on_conn_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  atomic_fetch_sub(&c->s->open, 1);
  if (c->counted)
    atomic_fetch_sub(&c->s->held, 1);
  free(c);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  (void)size;
  static char scratch[65536]; /* the data is discarded: one buffer will do */
  *buf = uv_buf_init(scratch, sizeof(scratch));
}

/* Counts the connection once its request header is complete. */
static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  struct conn *c = st->data;
  if (n < 0) {
    uv_close((uv_handle_t *)st, on_conn_closed);
    return;
  }
  if (c->counted || n == 0)
    return;
  char look[sizeof(c->tail) + 64];
  size_t keep = sizeof(c->tail);
  size_t take = (size_t)n < 64 ? (size_t)n : 64;
  /* The end of the header is within the read's last 64 bytes, or split
   * between this read and the last one. */
  memcpy(look, c->tail, keep);
  memcpy(look + keep, buf->base + (size_t)n - take, take);
  if (memmem(look, keep + take, "\r\n\r\n", 4) != NULL) {
    c->counted = 1;
    atomic_fetch_add(&c->s->held, 1);
  }
  memcpy(c->tail, look + take, keep);
}

static void on_connection(uv_stream_t *l, int status) {
  struct server *s = l->data;
  if (status < 0)
    return;
  struct conn *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return;
  c->s = s;
  uv_tcp_init(&s->loop, &c->tcp);
  c->tcp.data = c;
  atomic_fetch_add(&s->open, 1);
  if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void close_one(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, h->type == UV_TCP && h->data != NULL &&
                        h != (uv_handle_t *)&g.srv.listener
                    ? on_conn_closed
                    : NULL);
}

static void on_stop(uv_async_t *a) { uv_walk(a->loop, close_one, NULL); }

static void *server_main(void *arg) {
  struct server *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
  return NULL;
}

static int server_start(struct server *s) {
  struct sockaddr_in a;
  int len = sizeof(a);
  uv_ip4_addr("127.0.0.1", 0, &a);
  int rc = uv_loop_init(&s->loop);
  if (rc != 0)
    return rc;
  uv_tcp_init(&s->loop, &s->listener);
  uv_async_init(&s->loop, &s->stop, on_stop);
  s->listener.data = s;
  if ((rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0)) != 0 ||
      (rc = uv_listen((uv_stream_t *)&s->listener, 4096, on_connection)) != 0 ||
      (rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&a, &len)) !=
          0) {
    uv_walk(&s->loop, close_one, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    return rc;
  }
  s->port = ntohs(a.sin_port);
  if ((rc = pthread_create(&s->thread, NULL, server_main, s)) != 0) {
    uv_walk(&s->loop, close_one, NULL);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    return -rc;
  }
  s->running = 1;
  return 0;
}

static void server_stop(struct server *s) {
  if (!s->running)
    return;
  uv_async_send(&s->stop);
  pthread_join(s->thread, NULL);
  uv_loop_close(&s->loop);
  s->running = 0;
}

/* ---- the measured runner (this program re-executed) ----------------- */

/* "VmHWM:" or "VmRSS:" of /proc/self/status, kB; -1 when absent. */
static long status_kb(const char *key) {
  char line[256];
  long kb = -1;
  size_t klen = strlen(key);
  FILE *f = fopen("/proc/self/status", "r");
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, key, klen) == 0) {
      kb = strtol(line + klen, NULL, 10);
      break;
    }
  if (f != NULL)
    fclose(f);
  return kb;
}

/* Open sockets of this process. */
static int count_sockets(void) {
  DIR *d = opendir("/proc/self/fd");
  int n = 0;
  struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL) {
    char path[300], target[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
    ssize_t len = readlink(path, target, sizeof(target) - 1);
    if (len > 0 && strncmp(target, "socket:", 7) == 0)
      n++;
  }
  if (d != NULL)
    closedir(d);
  return n;
}

static void raise_nofile(int need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)need) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)need ? rl.rlim_max : (rlim_t)need;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

struct runner {
  fl_traffic_t *t;
  uv_timer_t stop_timer, check;
  uv_poll_t in;
  int n, sent, freed, failed;
  long exec_kb, base_kb;
};

static void noop(void *arg) { (void)arg; }
static void on_freed(void *arg) { ((struct runner *)arg)->freed = 1; }

static void runner_end(struct runner *r) {
  uv_timer_stop(&r->stop_timer);
  uv_timer_stop(&r->check);
  if (!uv_is_closing((uv_handle_t *)&r->in))
    uv_close((uv_handle_t *)&r->in, NULL);
  if (!uv_is_closing((uv_handle_t *)&r->stop_timer)) {
    uv_close((uv_handle_t *)&r->stop_timer, NULL);
    uv_close((uv_handle_t *)&r->check, NULL);
  }
  if (r->t != NULL)
    fl_traffic_free(r->t, on_freed, r);
  r->t = NULL;
}

/* Every request due is sent: no more. */
static void on_stop_timer(uv_timer_t *h) {
  struct runner *r = h->data;
  fl_traffic_stop(r->t, noop, NULL);
}

/* Tells the parent how many are in flight once the schedule is done. */
static void on_check(uv_timer_t *h) {
  struct runner *r = h->data;
  if (r->sent || uv_is_active((uv_handle_t *)&r->stop_timer))
    return;
  r->sent = 1;
  printf("sent %d\n", fl_traffic_in_flight(r->t));
  fflush(stdout);
}

/* "go" from the parent: the server holds them all; measure, report, end. */
static void on_stdin(uv_poll_t *p, int status, int events) {
  struct runner *r = p->data;
  (void)events;
  char buf[64];
  ssize_t n = status < 0 ? -1 : read(0, buf, sizeof(buf));
  if (n > 0 && r->sent) {
    printf("result %ld %ld %ld %ld %d %d\n", r->exec_kb, r->base_kb,
           status_kb("VmHWM:"), status_kb("VmRSS:"), fl_traffic_in_flight(r->t),
           count_sockets());
    fflush(stdout);
  } else {
    r->failed = 1;
  }
  runner_end(r);
}

static int runner_child(const char *n_arg, const char *port_arg) {
  struct runner r = {.n = atoi(n_arg)};
  raise_nofile(r.n + 256);
  r.exec_kb = status_kb("VmHWM:");
  uv_loop_t loop;
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", atoi(port_arg));
  if (r.n < 1 || uv_loop_init(&loop) != 0)
    return FL_EXIT_ENV;
  int rc = fl_traffic_new(&loop, base, &r.t);
  struct fl_endpoint_spec e = {
      .name = "hold", .path = "/hold", .rate = RATE, .timeout = REQ_TIMEOUT};
  if (rc == 0 && (rc = fl_traffic_add(r.t, &e)) >= 0)
    rc = 0;
  if (rc != 0) {
    fprintf(stderr, "runner: cannot set up traffic: %s\n", fl_strerror(rc));
    if (r.t != NULL)
      fl_traffic_free(r.t, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return FL_EXIT_ENV;
  }
  uv_timer_init(&loop, &r.stop_timer);
  uv_timer_init(&loop, &r.check);
  r.stop_timer.data = r.check.data = r.in.data = &r;
  if ((rc = uv_poll_init(&loop, &r.in, 0)) != 0) {
    /* stdin is not the parent's pipe: nobody would say "go" */
    fprintf(stderr, "runner: cannot watch stdin: %s\n", uv_strerror(rc));
    uv_close((uv_handle_t *)&r.stop_timer, NULL);
    uv_close((uv_handle_t *)&r.check, NULL);
    fl_traffic_free(r.t, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return FL_EXIT_ENV;
  }
  r.base_kb = status_kb("VmHWM:");
  fl_traffic_start(r.t);
  uv_update_time(&loop);
  /* Request k is due at k / RATE: stopping half a period before request
   * n is due sends requests 0 .. n-1. */
  uv_timer_start(&r.stop_timer, on_stop_timer,
                 (uint64_t)(((double)r.n - 0.5) / RATE * 1000), 0);
  uv_timer_start(&r.check, on_check, 10, 10);
  uv_poll_start(&r.in, UV_READABLE, on_stdin);
  uv_run(&loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(&loop);
  return r.failed || rc != 0 ? FL_EXIT_ENV : FL_EXIT_OK;
}

/* ---- the parent: one run --------------------------------------------- */

static void reap_child(void) {
  bench_stop_child(&g.child, 0, 0);
  bench_child = 0;
}

static void cleanup(void) {
  reap_child();
  server_stop(&g.srv);
}

/* Waits until the server's count `what` reaches (or, down, falls to) v. */
static int wait_count(atomic_int *what, int v, int down, long long deadline) {
  while (!bench_stop && bench_now_ns() < deadline) {
    int now = atomic_load(what);
    if (down ? now <= v : now >= v)
      return 0;
    struct timespec ts = {0, 5000000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

static int one_run(int n, int level, int run) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0) {
    bench_say("pipe: %s", strerror(errno));
    return -1;
  }
  if (pipe2(out, O_CLOEXEC) != 0) {
    bench_say("pipe: %s", strerror(errno));
    close(in[0]);
    close(in[1]);
    return -1;
  }
  char n_arg[16], port_arg[16];
  snprintf(n_arg, sizeof(n_arg), "%d", n);
  snprintf(port_arg, sizeof(port_arg), "%d", g.srv.port);
  char *const argv[] = {g.self, "--runner-child", n_arg, port_arg, NULL};
  struct bench_spawn s = {argv, NULL, {in[0], out[1], BENCH_FD_KEEP}, 0};
  pid_t pid;
  int rc = bench_spawn(&s, &pid);
  close(in[0]);
  close(out[1]);
  if (rc != 0) {
    bench_say("fork: %s", strerror(-rc));
    close(in[1]);
    close(out[0]);
    return -1;
  }
  g.child = pid;
  bench_child = pid;
  static struct bench_lines lines;
  lines.fd = out[0];
  lines.len = 0;
  char line[256];
  int sent = 0;
  long v[4];
  int inflight, sockets;
  long long deadline = bench_now_ns() + FILL_WAIT_S * 1000000000LL;
  rc = -1;
  if (bench_next_line(&lines, line, sizeof(line), deadline) != 0 ||
      sscanf(line, "sent %d", &sent) != 1) {
    if (!bench_stop)
      bench_say("the runner did not finish sending %d requests", n);
  } else if (wait_count(&g.srv.held, sent, 0, deadline) != 0) {
    if (!bench_stop)
      bench_say("the server holds %d of the %d requests sent",
                atomic_load(&g.srv.held), sent);
  } else {
    int held = atomic_load(&g.srv.held);
    if (write(in[1], "go\n", 3) != 3 ||
        bench_next_line(&lines, line, sizeof(line),
                        bench_now_ns() + 10000000000LL) != 0 ||
        sscanf(line, "result %ld %ld %ld %ld %d %d", &v[0], &v[1], &v[2], &v[3],
               &inflight, &sockets) != 6) {
      if (!bench_stop)
        bench_say("the runner did not report its memory");
    } else {
      double *r[V_COUNT];
      for (int k = 0; k < V_COUNT; k++)
        r[k] = &res[level][k][run];
      *r[V_EXEC] = (double)v[0];
      *r[V_BASE] = (double)v[1];
      *r[V_HWM] = (double)v[2];
      *r[V_RSS] = (double)v[3];
      *r[V_INFLIGHT] = inflight;
      *r[V_SOCKETS] = sockets;
      *r[V_HELD] = held;
      rc = 0;
    }
  }
  close(in[1]);
  close(out[0]);
  int status = 0;
  int wrc = bench_wait(pid, &status, NULL);
  g.child = 0;
  bench_child = 0;
  if (rc == 0 && (wrc != 0 || status != 0)) {
    bench_say("the runner ended with status %d", status);
    rc = -1;
  }
  /* The next run starts with the server empty. */
  if (rc == 0 &&
      wait_count(&g.srv.open, 0, 1,
                 bench_now_ns() + DRAIN_WAIT_S * 1000000000LL) != 0 &&
      !bench_stop) {
    bench_say("%d connections still open at the server after the runner ended",
              atomic_load(&g.srv.open));
    rc = -1;
  }
  return rc;
}

/* ---- what else the machine was doing -------------------------------- */

/* ---- the report ----------------------------------------------------- */

struct report_args {
  const struct opts *o;
  const int *n; /* [LEVELS] */
  const char *cmdline;
};

/* "median (min – max)" of the runs with fmt, or the median alone. */
static void cell(char *out, size_t size, const double *v, size_t runs,
                 const char *fmt) {
  bench_cell(out, size, v, runs, 1, fmt);
}

static void report(FILE *f, const void *arg) {
  const struct report_args *a = arg;
  const struct opts *o = a->o;
  const int *n = a->n;
  char c[8][96];
  double v[MAX_RUNS];
  fprintf(f, "## Runner memory (fl-bench-runner-memory)\n\n");
  bench_print_context(f, a->cmdline);
  fprintf(f, "; libcurl %s, libuv %s\n\n",
          curl_version_info(CURLVERSION_NOW)->version, uv_version_string());
  fprintf(f,
          "A runner process drives faultline's traffic (libcurl on libuv, "
          "as `faultline run` does) at %.0f req/s at a loopback server "
          "that reads each request and never answers, until N are sent, "
          "each on its own connection; once the server holds all N, the "
          "runner reads its peak RSS (VmHWM). Baseline: the same process "
          "just before the traffic started (libraries loaded, loop and "
          "traffic object made). N = %d and %d alternate, %d run%s each, "
          "each run a fresh process; median (min – max) over runs. "
          "Marginal: (peak at %d − peak at %d) ÷ %d, paired within each "
          "repetition.\n\n",
          RATE, n[1], n[0], o->runs, o->runs == 1 ? "" : "s", n[1], n[0],
          n[1] - n[0]);
  bench_print_other(f, &g.other, "meanwhile", "", "");
  fprintf(f, "| in flight | held by the server | sockets open | baseline "
             "VmHWM | peak VmHWM | growth | per connection |\n"
             "|--:|--:|--:|--:|--:|--:|--:|\n");
  for (int l = LEVELS - 1; l >= 0; l--) {
    cell(c[0], sizeof(c[0]), res[l][V_INFLIGHT], (size_t)o->runs, "%.0f");
    cell(c[1], sizeof(c[1]), res[l][V_HELD], (size_t)o->runs, "%.0f");
    cell(c[2], sizeof(c[2]), res[l][V_SOCKETS], (size_t)o->runs, "%.0f");
    cell(c[3], sizeof(c[3]), res[l][V_BASE], (size_t)o->runs, "%.0f kB");
    cell(c[4], sizeof(c[4]), res[l][V_HWM], (size_t)o->runs, "%.0f kB");
    for (int r = 0; r < o->runs; r++)
      v[r] = res[l][V_HWM][r] - res[l][V_BASE][r];
    cell(c[5], sizeof(c[5]), v, (size_t)o->runs, "%.0f kB");
    for (int r = 0; r < o->runs; r++)
      v[r] = (res[l][V_HWM][r] - res[l][V_BASE][r]) / res[l][V_INFLIGHT][r];
    cell(c[6], sizeof(c[6]), v, (size_t)o->runs, "%.1f kB");
    fprintf(f, "| %s | %s | %s | %s | %s | %s | %s |\n", c[0], c[1], c[2], c[3],
            c[4], c[5], c[6]);
  }
  for (int r = 0; r < o->runs; r++)
    v[r] = (res[1][V_HWM][r] - res[0][V_HWM][r]) /
           (res[1][V_INFLIGHT][r] - res[0][V_INFLIGHT][r]);
  cell(c[0], sizeof(c[0]), v, (size_t)o->runs, "%.1f kB");
  fprintf(f, "| marginal, %d vs %d | | | | | | %s |\n", n[1], n[0], c[0]);
  cell(c[0], sizeof(c[0]), res[1][V_EXEC], (size_t)o->runs, "%.0f kB");
  fprintf(f,
          "\nThe runner at exec, before making its loop: VmHWM %s. Peak "
          "RSS with %d in flight, all told: ",
          c[0], n[1]);
  cell(c[0], sizeof(c[0]), res[1][V_HWM], (size_t)o->runs, "%.0f kB");
  fprintf(f, "%s.\n", c[0]);
}

/* ---- options and main ----------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "usage: fl-bench-runner-memory [--quick] [--conns N] [--runs N] "
             "[--out FILE]\n"
             "Measures the peak RSS of a runner with N requests in flight\n"
             "(faultline's traffic against a server that never answers), vs\n"
             "the same process before the traffic; prints a Markdown table.\n"
             "  --quick     1 run at each level: a smoke test\n"
             "  --conns N   requests in flight (default 1000; N/10 beside it)\n"
             "  --runs N    runs at each level (default 5)\n"
             "  --out FILE  also write the table to FILE\n");
}

static int parse_opts(int argc, char **argv, struct opts *o) {
  static const struct option longs[] = {{"quick", no_argument, NULL, 'q'},
                                        {"conns", required_argument, NULL, 'c'},
                                        {"runs", required_argument, NULL, 'r'},
                                        {"out", required_argument, NULL, 'o'},
                                        {"help", no_argument, NULL, 'h'},
                                        {NULL, 0, NULL, 0}};
  long runs = -1, conns = 1000;
  int ch;
  memset(o, 0, sizeof(*o));
  while ((ch = bench_getopt(argc, argv, longs, usage, &o->quick, &o->out)) >
         0) {
    int rc = ch == 'c' ? bench_parse_long(optarg, "--conns", 20, 10000, &conns)
                       : bench_parse_long(optarg, "--runs", 1, MAX_RUNS, &runs);
    if (rc != 0)
      return -1;
  }
  if (ch < 0)
    return -1;
  o->conns = (int)conns;
  o->runs = (int)(runs > 0 ? runs : o->quick ? 1 : 5);
  return 0;
}

int main(int argc, char **argv) {
  bench_init("fl-bench-runner-memory");
  if (argc == 4 && strcmp(argv[1], "--runner-child") == 0)
    return runner_child(argv[2], argv[3]);
  struct opts o;
  if (parse_opts(argc, argv, &o) != 0)
    return FL_EXIT_USAGE;
  int rc = bench_self(g.self, sizeof(g.self));
  if (rc != 0) {
    bench_say("cannot find this program in /proc/self/exe: %s", strerror(-rc));
    return FL_EXIT_ENV;
  }
  char cmdline[1024];
  bench_cmdline(argc, argv, cmdline, sizeof(cmdline));
  /* The server holds every connection: room for all of them. */
  raise_nofile(2 * o.conns + 256);
  bench_catch_signals(SIGKILL, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  atexit(cleanup);
  rc = server_start(&g.srv);
  if (rc != 0) {
    bench_say("cannot start the server: %s", uv_strerror(rc));
    return FL_EXIT_ENV;
  }
  int n[LEVELS] = {o.conns / 10, o.conns};
  struct bench_load start, end;
  bench_load_mark(&start, 0);
  for (int r = 0; r < o.runs; r++)
    for (int k = 0; k < LEVELS; k++) {
      int l = (k + r) % LEVELS; /* alternate which level goes first */
      bench_say("run %d/%d: %d requests in flight", r + 1, o.runs, n[l]);
      if (bench_stop || one_run(n[l], l, r) != 0) {
        if (bench_stop)
          bench_say("interrupted; cleaned up");
        return bench_stop ? 130 : FL_EXIT_ENV;
      }
    }
  bench_load_mark(&end, 0);
  g.other = bench_load_between(&start, &end);
  struct report_args ra = {&o, n, cmdline};
  return bench_emit(o.out, report, &ra) == 0 ? FL_EXIT_OK : FL_EXIT_ENV;
}
