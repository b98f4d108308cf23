/*
 * fl-bench-proxy: what the stream-fault proxy (harness/proxy/proxy.c) costs a
 * real client when no fault is on, next to the baseline a user would reach
 * for. bench/README.md explains every figure.
 *
 * Configurations, always the same redis-benchmark against the same
 * private redis-server:
 *   direct   to the server: the reference;
 *   proxy    through fl_proxy on a libuv loop in a thread of this program,
 *            with an empty control segment, as faultline runs it;
 *   socat    through `socat TCP-LISTEN:...,fork TCP:...` (a process per
 *            connection), the ready-made TCP relay of Debian;
 *   relay    through a bare epoll loop in a thread of this program that
 *            only reads and writes: the floor for any single-threaded
 *            user-space relay here, so that the proxy's own cost shows
 *            apart from the cost of one more loopback hop;
 *   codec    the proxy again, following RESP with its redis codec (no
 *            protocol fault armed): what reading the framing costs;
 *   armed    the codec with a redis_error armed that matches none of the
 *            benchmark's commands (its own control segment): what a
 *            protocol fault costs the connections it does not touch.
 *
 * Each round runs every configuration, unpipelined then with -P 16, in an
 * order rotated by one per round so that drifts of machine load fall on
 * all alike. Ratios are taken within a round (paired) and the report gives
 * their median over rounds, with the added p50 and p99 latency.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "base/base.h"
#include "bench_util.h"
#include "control/control.h"
#include "faults/faults.h"
#include "proxy/proxy.h"

enum cfg {
  CFG_DIRECT,
  CFG_PROXY,
  CFG_SOCAT,
  CFG_RELAY,
  CFG_CODEC,
  CFG_ARMED,
  CFG_COUNT
};
static const char *const cfg_names[CFG_COUNT] = {
    "direct",
    "proxy",
    "socat",
    "bare relay",
    "proxy, redis codec",
    "codec, redis_error armed elsewhere"};
enum { MODE_P1, MODE_P16, MODE_COUNT };
static const int mode_pipeline[MODE_COUNT] = {1, 16};
enum { TEST_SET, TEST_GET, TEST_COUNT };
static const char *const test_names[TEST_COUNT] = {"SET", "GET"};
enum { FIG_RPS, FIG_P50, FIG_P99, FIG_COUNT };

#define MAX_ROUNDS 51
#define CLIENTS "50"
#define PIPELINED_SCALE 4
static const double goal[MODE_COUNT] = {0.6, 0.5};

struct opts {
  int rounds;
  long requests;
  const char *out;
  int quick;
};

/* [mode][test][cfg][figure][round] */
static double samples[MODE_COUNT][TEST_COUNT][CFG_COUNT][FIG_COUNT][MAX_ROUNDS];

/* Everything cleanup() undoes; the signal handler touches only
 * bench_stop and bench_child. */
static struct {
  char dir[PATH_MAX];
  fl_control_t *ctl;
  char **env;
  pid_t redis, socat;
  int port[CFG_COUNT];
  uv_loop_t loop;
  uv_async_t stop;
  fl_proxy_t *proxy;
  fl_proxy_t *codec; /* the same, following RESP (no fault armed) */
  fl_control_t *armed_ctl;
  fl_proxy_t *armed; /* the codec with a rule armed that touches nothing */
  pthread_t thread;
  int thread_running;
  int relay_listen, relay_epoll, relay_wake;
  pthread_t relay_thread;
  int relay_inited, relay_running;
  char version[128];
} g = {.relay_listen = -1, .relay_epoll = -1, .relay_wake = -1};

/* ---- the proxy, on a loop thread of ours ------------------------- */

static void on_stop(uv_async_t *a) {
  fl_proxy_close(g.proxy);
  if (g.codec != NULL)
    fl_proxy_close(g.codec);
  if (g.armed != NULL)
    fl_proxy_close(g.armed);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  (void)arg;
  uv_run(&g.loop, UV_RUN_DEFAULT);
  return NULL;
}

/* A redis_error for a command redis-benchmark never sends, in a control
 * segment of its own (the other proxies' stays empty). */
static int arm_elsewhere(const struct sockaddr_in *up,
                         const struct fl_proxy_opts *redis) {
  char path[PATH_MAX + 16], spec[96], err[256];
  snprintf(path, sizeof(path), "%s/control-armed", g.dir);
  snprintf(spec, sizeof(spec),
           "redis_error@127.0.0.1:%d,reply=LOADING,match=FLUSHALL",
           g.port[CFG_DIRECT]);
  struct fl_rule rule;
  uint32_t id;
  int rc = fl_control_create(path, 1, &g.armed_ctl);
  if (rc == 0 && (rc = fl_spec_parse(spec, &rule, err, sizeof(err))) != 0)
    bench_say("%s: %s", spec, err);
  if (rc == 0)
    rc = fl_control_add(g.armed_ctl, &rule, &id);
  if (rc == 0)
    rc = fl_proxy_start_with(&g.loop, g.armed_ctl, (const struct sockaddr *)up,
                             redis, &g.armed);
  if (rc != 0) {
    bench_say("cannot start the proxy with a fault armed: %s", fl_strerror(rc));
    return -1;
  }
  g.port[CFG_ARMED] = fl_proxy_port(g.armed);
  return 0;
}

static int start_proxy(void) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/control", g.dir);
  int rc = fl_control_create(path, 1, &g.ctl);
  if (rc != 0) {
    bench_say("cannot create control segment %s: %s", path, fl_strerror(rc));
    return -1;
  }
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)g.port[CFG_DIRECT]),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if ((rc = uv_loop_init(&g.loop)) != 0 ||
      (rc = fl_proxy_start(&g.loop, g.ctl, (struct sockaddr *)&up, &g.proxy)) !=
          0 ||
      (rc = uv_async_init(&g.loop, &g.stop, on_stop)) != 0) {
    bench_say("cannot start the proxy: %s", uv_strerror(rc));
    return -1;
  }
  g.port[CFG_PROXY] = fl_proxy_port(g.proxy);
  struct fl_proxy_opts redis = {.protocol = "redis"};
  if ((rc = fl_proxy_start_with(&g.loop, g.ctl, (struct sockaddr *)&up, &redis,
                                &g.codec)) != 0) {
    bench_say("cannot start the proxy with the redis codec: %s",
              uv_strerror(rc));
    return -1;
  }
  g.port[CFG_CODEC] = fl_proxy_port(g.codec);
  if (arm_elsewhere(&up, &redis) != 0)
    return -1;
  if (pthread_create(&g.thread, NULL, loop_main, NULL) != 0) {
    bench_say("cannot start the proxy's thread");
    return -1;
  }
  g.thread_running = 1;
  return 0;
}

static void stop_proxy(void) {
  if (g.thread_running) {
    uv_async_send(&g.stop);
    pthread_join(g.thread, NULL);
    uv_loop_close(&g.loop);
    g.thread_running = 0;
  }
}

/* ---- the bare relay: read, write, nothing else -------------------- */

#define RELAY_FDS 65536
static int relay_peer[RELAY_FDS];

static void relay_close(int fd) {
  int other = relay_peer[fd];
  close(fd);
  if (other >= 0) {
    relay_peer[other] = -1;
    close(other);
  }
  relay_peer[fd] = -1;
}

static void relay_accept(void) {
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)g.port[CFG_DIRECT]),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int c;
  while ((c = accept4(g.relay_listen, NULL, NULL,
                      SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (c >= RELAY_FDS || s < 0 || s >= RELAY_FDS ||
        connect(s, (struct sockaddr *)&up, sizeof(up)) != 0 ||
        fcntl(s, F_SETFL, O_NONBLOCK) != 0) {
      close(c);
      if (s >= 0)
        close(s);
      continue;
    }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    relay_peer[c] = s;
    relay_peer[s] = c;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
    epoll_ctl(g.relay_epoll, EPOLL_CTL_ADD, c, &ev);
    ev.data.fd = s;
    epoll_ctl(g.relay_epoll, EPOLL_CTL_ADD, s, &ev);
  }
}

/* Everything read is written before the next read: a full socket buffer
 * blocks the relay in poll, which is the simplest backpressure and costs
 * nothing while the client keeps up. The wake fd ends the wait too. */
static void relay_pass(int fd) {
  static char buf[64 * 1024];
  ssize_t n = read(fd, buf, sizeof(buf));
  if (n <= 0) {
    if (n == 0 || errno != EAGAIN)
      relay_close(fd);
    return;
  }
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(relay_peer[fd], buf + off, (size_t)(n - off));
    if (w > 0) {
      off += w;
    } else if (w < 0 && errno == EAGAIN) {
      struct pollfd p[2] = {{.fd = relay_peer[fd], .events = POLLOUT},
                            {.fd = g.relay_wake, .events = POLLIN}};
      if (poll(p, 2, 1000) > 0 && p[1].revents != 0)
        return; /* stopping */
    } else {
      relay_close(fd);
      return;
    }
  }
}

static void *relay_main(void *arg) {
  (void)arg;
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(g.relay_epoll, evs, 256, -1);
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == g.relay_wake)
        return NULL;
      if (fd == g.relay_listen)
        relay_accept();
      else if (relay_peer[fd] >= 0)
        relay_pass(fd);
    }
  }
}

static int start_relay(void) {
  for (int i = 0; i < RELAY_FDS; i++)
    relay_peer[i] = -1;
  g.relay_inited = 1;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  g.relay_listen =
      socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  g.relay_epoll = epoll_create1(EPOLL_CLOEXEC);
  g.relay_wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (g.relay_listen < 0 || g.relay_epoll < 0 || g.relay_wake < 0 ||
      bind(g.relay_listen, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(g.relay_listen, 512) != 0 ||
      getsockname(g.relay_listen, (struct sockaddr *)&a, &len) != 0) {
    bench_say("cannot start the bare relay: %s", strerror(errno));
    return -1;
  }
  g.port[CFG_RELAY] = ntohs(a.sin_port);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = g.relay_listen};
  epoll_ctl(g.relay_epoll, EPOLL_CTL_ADD, g.relay_listen, &ev);
  ev.data.fd = g.relay_wake;
  epoll_ctl(g.relay_epoll, EPOLL_CTL_ADD, g.relay_wake, &ev);
  /* Signals are this program's main thread's business, not the relay's:
   * a handler run here would cut a blocking connect short. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  int rc = pthread_create(&g.relay_thread, NULL, relay_main, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    bench_say("cannot start the bare relay's thread");
    return -1;
  }
  g.relay_running = 1;
  return 0;
}

static void stop_relay(void) {
  if (g.relay_running) {
    uint64_t one = 1;
    if (write(g.relay_wake, &one, sizeof(one)) != sizeof(one))
      bench_say("cannot wake the bare relay: %s", strerror(errno));
    pthread_join(g.relay_thread, NULL);
    g.relay_running = 0;
  }
  for (int i = 0; g.relay_inited && i < RELAY_FDS; i++)
    if (relay_peer[i] > i) /* each pair once */
      relay_close(i);
  int *fds[] = {&g.relay_listen, &g.relay_epoll, &g.relay_wake};
  for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
    if (*fds[i] >= 0) {
      close(*fds[i]);
      *fds[i] = -1;
    }
}

/* ---- cleanup, on every exit path ---------------------------------- */

/* Stops a server (and its process group: socat's per-connection
 * children), waiting at most 3 s before SIGKILL. */
static void stop_server(pid_t *pid) { bench_stop_child(pid, 1, 3000); }

static void cleanup(void) {
  stop_server(&g.socat);
  stop_proxy();
  stop_relay();
  stop_server(&g.redis);
  if (g.ctl != NULL)
    fl_control_remove(g.ctl);
  g.ctl = NULL;
  if (g.armed_ctl != NULL)
    fl_control_remove(g.armed_ctl);
  g.armed_ctl = NULL;
  bench_env_free(g.env);
  g.env = NULL;
  fl_rm_tree(g.dir);
  g.dir[0] = '\0';
}

/* ---- processes ---------------------------------------------------- */

/* Runs argv to completion with its stdout in out, within timeout_s; in a
 * process group of its own, so its children can be stopped with it. */
static int run_capture(const char *const argv[], char *out, size_t size,
                       int timeout_s) {
  char log[PATH_MAX + 16];
  snprintf(log, sizeof(log), "%s/client.log", g.dir);
  int err = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (err < 0)
    return -1;
  struct bench_spawn s = {
      (char *const *)argv, g.env, {BENCH_FD_NULL, BENCH_FD_KEEP, err}, 1};
  int status = 0;
  int rc = bench_capture(&s, out, size, timeout_s, &status, NULL);
  close(err);
  if (bench_stop)
    return -1;
  if (rc != 0 || status != 0) {
    bench_say("%s %s", argv[0],
              rc == -ETIMEDOUT ? "did not finish in time" : "failed");
    bench_show_tail(log, 2048);
    return -1;
  }
  return 0;
}

/* Starts a server process on a free port until one answers PING. */
static int start_server(pid_t *pid, int *port, const char *what,
                        int (*argv_for)(int, char *, const char **)) {
  char log[PATH_MAX + 32], buf[256];
  snprintf(log, sizeof(log), "%s/%s.log", g.dir, what);
  int err = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  for (int attempt = 0; err >= 0 && attempt < 3 && !bench_stop; attempt++) {
    const char *argv[24];
    *port = fl_free_port();
    argv_for(*port, buf, argv);
    struct bench_spawn s = {
        (char *const *)argv, g.env, {BENCH_FD_NULL, err, err}, 1};
    if (bench_spawn(&s, pid) != 0) {
      *pid = 0;
      close(err);
      return -1;
    }
    for (double end = bench_now_s() + 5; bench_now_s() < end && !bench_stop;) {
      if (waitpid(*pid, NULL, WNOHANG) == *pid) {
        *pid = 0;
        break;
      }
      if (bench_redis_pong(*port)) {
        close(err);
        return 0;
      }
      bench_sleep_ms(20);
    }
    stop_server(pid);
  }
  if (err >= 0)
    close(err);
  bench_say("%s would not start on 127.0.0.1", what);
  bench_show_tail(log, 2048);
  return -1;
}

static int redis_argv(int port, char *buf, const char **argv) {
  snprintf(buf, 256, "%d", port);
  // clang-format off
  const char *a[] = {"redis-server", "--port", buf, "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--dir", g.dir,
                     "--logfile", "", "--daemonize", "no", NULL};
  // clang-format on
  memcpy(argv, a, sizeof(a));
  return 0;
}

/* socat as a user would run it: one process per connection (fork), the
 * listening socket reusable. Its default backlog of 5 drops the SYNs of
 * redis-benchmark's 50 simultaneous connections (retransmitted seconds
 * later, or reset): a baseline that stalls measures nothing, so 128. */
static int socat_argv(int port, char *buf, const char **argv) {
  int n =
      snprintf(buf, 256,
               "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork,backlog=128", port);
  snprintf(buf + n + 1, (size_t)(256 - n - 1), "TCP:127.0.0.1:%d",
           g.port[CFG_DIRECT]);
  const char *a[] = {"socat", buf, buf + n + 1, NULL};
  memcpy(argv, a, sizeof(a));
  return 0;
}

/* ---- the workload ------------------------------------------------- */

static int bench_run(enum cfg c, int mode, long requests, int round) {
  char port[16], n[32], pipeline[8], out[4096];
  snprintf(port, sizeof(port), "%d", g.port[c]);
  snprintf(n, sizeof(n), "%ld", requests);
  snprintf(pipeline, sizeof(pipeline), "%d", mode_pipeline[mode]);
  // clang-format off
  const char *argv[] = {"redis-benchmark", "-h", "127.0.0.1", "-p", port,
                        "-t", "set,get", "-n", n, "-c", CLIENTS,
                        "-P", pipeline, "--csv", NULL};
  // clang-format on
  struct bench_redis_fig fig[TEST_COUNT];
  int timeout = 60 + (int)(TEST_COUNT * requests / 2000);
  if (run_capture(argv, out, sizeof(out), timeout) != 0 ||
      bench_redis_csv(out, test_names, TEST_COUNT, 1, fig) != 0)
    return -1;
  for (int t = 0; t < TEST_COUNT; t++) {
    samples[mode][t][c][FIG_RPS][round] = fig[t].rps;
    samples[mode][t][c][FIG_P50][round] = fig[t].p50;
    samples[mode][t][c][FIG_P99][round] = fig[t].p99;
  }
  return 0;
}

static int run_rounds(const struct opts *o) {
  for (int r = 0; r < o->rounds; r++) {
    for (int m = 0; m < MODE_COUNT; m++) {
      long n = o->requests * (m == MODE_P16 ? PIPELINED_SCALE : 1);
      for (int k = 0; k < CFG_COUNT; k++) {
        enum cfg c = (enum cfg)((k + r) % CFG_COUNT);
        bench_say("round %d/%d, -P %d, %s", r + 1, o->rounds, mode_pipeline[m],
                  cfg_names[c]);
        if (bench_run(c, m, n, r) == 0)
          continue;
        /* A loaded machine can stall one run (socat's, most often): one
         * more try before the whole benchmark gives up. */
        if (bench_stop)
          return -1;
        bench_say("round %d/%d, %s failed once: running it again", r + 1,
                  o->rounds, cfg_names[c]);
        if (bench_run(c, m, n, r) != 0)
          return -1;
      }
    }
  }
  return 0;
}

/* ---- the report --------------------------------------------------- */

static double median(const double *v, int n) {
  struct bench_summary s;
  bench_summarize(v, (size_t)n, &s);
  return s.median;
}

struct tally {
  int met, checked;
  double worst;
};

struct report_args {
  const struct opts *o;
  const char *cmdline;
};

static void report(FILE *f, const void *arg) {
  const struct opts *o = ((const struct report_args *)arg)->o;
  int rounds = o->rounds;
  fprintf(f, "## faultline proxy overhead\n\n");
  bench_print_context(f, ((const struct report_args *)arg)->cmdline);
  fprintf(f, "\n\n");
  fprintf(f,
          "%s against a private redis-server on 127.0.0.1: `-t set,get -c "
          "%s`, `-n %ld` unpipelined and `-n %ld` with `-P 16`; directly, "
          "through the faultline proxy with no fault on, through "
          "socat (fork per connection), and through a bare epoll relay "
          "(read, write, nothing else: the floor for one more hop through "
          "any single-threaded relay). %d round%s, configurations "
          "interleaved in rotating order. Ratios are paired within a "
          "round, then the median over rounds; added latency is the "
          "median of (configuration − direct) over rounds.\n\n",
          g.version, CLIENTS, o->requests, o->requests * PIPELINED_SCALE,
          rounds, rounds == 1 ? "" : "s");
  fprintf(f, "| workload | configuration | median req/s | ÷ direct (min – max) "
             "| p50 ms | added p50 ms | p99 ms | added p99 ms | goal |\n"
             "|---|---|--:|--:|--:|--:|--:|--:|---|\n");
  struct tally tally[MODE_COUNT] = {{0, 0, 1e9}, {0, 0, 1e9}};
  struct tally socat = {0, 0, 1e9};
  double vs_relay_lo = 1e9, vs_relay_hi = 0;
  for (int m = 0; m < MODE_COUNT; m++)
    for (int t = 0; t < TEST_COUNT; t++) {
      double(*s)[FIG_COUNT][MAX_ROUNDS] = samples[m][t];
      for (int c = 0; c < CFG_COUNT; c++) {
        double ratio[MAX_ROUNDS], d50[MAX_ROUNDS], d99[MAX_ROUNDS];
        double lo = 1e9, hi = 0;
        for (int r = 0; r < rounds; r++) {
          ratio[r] = s[c][FIG_RPS][r] / s[CFG_DIRECT][FIG_RPS][r];
          d50[r] = s[c][FIG_P50][r] - s[CFG_DIRECT][FIG_P50][r];
          d99[r] = s[c][FIG_P99][r] - s[CFG_DIRECT][FIG_P99][r];
          lo = ratio[r] < lo ? ratio[r] : lo;
          hi = ratio[r] > hi ? ratio[r] : hi;
        }
        double mr = median(ratio, rounds);
        fprintf(f, "| %s -P %d | %s | %.0f | ", test_names[t], mode_pipeline[m],
                cfg_names[c], median(s[c][FIG_RPS], rounds));
        if (c == CFG_DIRECT)
          fprintf(f, "1 | %.3f | – | %.3f | – | |\n",
                  median(s[c][FIG_P50], rounds), median(s[c][FIG_P99], rounds));
        else
          fprintf(f, "%.2f (%.2f – %.2f) | %.3f | %+.3f | %.3f | %+.3f | ", mr,
                  lo, hi, median(s[c][FIG_P50], rounds), median(d50, rounds),
                  median(s[c][FIG_P99], rounds), median(d99, rounds));
        if (c == CFG_PROXY) {
          int met = mr >= goal[m];
          tally[m].met += met;
          tally[m].checked++;
          tally[m].worst = mr < tally[m].worst ? mr : tally[m].worst;
          fprintf(f, "%s ≥ %.1f |\n", met ? "met" : "**missed**", goal[m]);
        } else if (c == CFG_SOCAT) {
          double pr = 0, sr = mr;
          double pv[MAX_ROUNDS];
          for (int r = 0; r < rounds; r++)
            pv[r] = s[CFG_PROXY][FIG_RPS][r] / s[CFG_DIRECT][FIG_RPS][r];
          pr = median(pv, rounds);
          socat.met += pr > sr;
          socat.checked++;
          socat.worst = pr - sr < socat.worst ? pr - sr : socat.worst;
          fprintf(f, "proxy ahead by %+.2f |\n", pr - sr);
        } else if (c == CFG_RELAY) {
          double pv[MAX_ROUNDS];
          for (int r = 0; r < rounds; r++)
            pv[r] = s[CFG_PROXY][FIG_RPS][r] / s[CFG_RELAY][FIG_RPS][r];
          double pr = median(pv, rounds);
          vs_relay_lo = pr < vs_relay_lo ? pr : vs_relay_lo;
          vs_relay_hi = pr > vs_relay_hi ? pr : vs_relay_hi;
          fprintf(f, "proxy ÷ relay %.2f |\n", pr);
        } else if (c == CFG_CODEC) {
          double pv[MAX_ROUNDS];
          for (int r = 0; r < rounds; r++)
            pv[r] = s[CFG_CODEC][FIG_RPS][r] / s[CFG_PROXY][FIG_RPS][r];
          fprintf(f, "codec ÷ proxy %.2f |\n", median(pv, rounds));
        } else if (c == CFG_ARMED) {
          double pv[MAX_ROUNDS];
          for (int r = 0; r < rounds; r++)
            pv[r] = s[CFG_ARMED][FIG_RPS][r] / s[CFG_CODEC][FIG_RPS][r];
          fprintf(f, "armed ÷ codec %.2f |\n", median(pv, rounds));
        }
      }
    }
  fprintf(f, "\n### Goals\n\n");
  for (int m = 0; m < MODE_COUNT; m++)
    fprintf(f, "- proxy ≥ %.1f × direct %s: met in %d of %d (worst %.2f)\n",
            goal[m], m == MODE_P1 ? "unpipelined" : "pipelined (-P 16)",
            tally[m].met, tally[m].checked, tally[m].worst);
  fprintf(f,
          "- proxy ahead of socat: in %d of %d (smallest margin %+.2f × "
          "direct)\n",
          socat.met, socat.checked, socat.worst);
  fprintf(f,
          "- proxy ÷ bare epoll relay: %.2f – %.2f over the workloads (1 = "
          "the proxy costs nothing beyond the hop itself)\n",
          vs_relay_lo, vs_relay_hi);
}

/* ---- options and main -------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "usage: fl-bench-proxy [--quick] [--rounds N] [--requests N] "
             "[--out FILE]\n"
             "Measures redis-benchmark directly, through the faultline "
             "proxy with no fault on,\n"
             "and through socat; prints a Markdown table of throughput "
             "ratios and added latency.\n"
             "  --quick         1 round, 10000 requests: a smoke test\n"
             "  --rounds N      rounds of all configurations (default 5)\n"
             "  --requests N    requests per unpipelined run (default "
             "100000; -P 16 runs do 4 times as many)\n"
             "  --out FILE      also write the table to FILE\n");
}

static int parse_opts(int argc, char **argv, struct opts *o) {
  static const struct option longs[] = {
      {"quick", no_argument, NULL, 'q'},
      {"rounds", required_argument, NULL, 'r'},
      {"requests", required_argument, NULL, 'n'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  long rounds = -1, requests = -1;
  int ch;
  memset(o, 0, sizeof(*o));
  while ((ch = bench_getopt(argc, argv, longs, usage, &o->quick, &o->out)) >
         0) {
    int rc = ch == 'r'
                 ? bench_parse_long(optarg, "--rounds", 1, MAX_ROUNDS, &rounds)
                 : bench_parse_long(optarg, "--requests", 1000, 100000000,
                                    &requests);
    if (rc != 0)
      return -1;
  }
  if (ch < 0)
    return -1;
  o->rounds = (int)(rounds > 0 ? rounds : o->quick ? 1 : 5);
  o->requests = requests > 0 ? requests : o->quick ? 10000 : 100000;
  return 0;
}

static int check_tools(void) {
  int rc = bench_need_program("redis-server", "redis-server");
  rc |= bench_need_program("redis-benchmark", "redis-tools");
  return rc | bench_need_program("socat", "socat");
}

static int setup(void) {
  int rc = bench_tmpdir(g.dir, sizeof(g.dir), "fl-bench");
  if (rc != 0) {
    bench_say("cannot make a temporary folder %s: %s", g.dir, strerror(-rc));
    g.dir[0] = '\0';
    return -1;
  }
  /* No preload in any configuration: the proxy is what is measured. */
  if ((g.env = bench_env(NULL, NULL)) == NULL) {
    bench_say("out of memory");
    return -1;
  }
  if (start_server(&g.redis, &g.port[CFG_DIRECT], "redis-server", redis_argv) !=
          0 ||
      start_proxy() != 0 || start_relay() != 0 ||
      start_server(&g.socat, &g.port[CFG_SOCAT], "socat", socat_argv) != 0)
    return -1;
  if (!bench_redis_pong(g.port[CFG_PROXY]) ||
      !bench_redis_pong(g.port[CFG_ARMED])) {
    bench_say("no PONG through the proxy");
    return -1;
  }
  const char *argv[] = {"redis-benchmark", "--version", NULL};
  char out[128];
  snprintf(g.version, sizeof(g.version), "redis-benchmark");
  if (run_capture(argv, out, sizeof(out), 10) == 0) {
    out[strcspn(out, "\n")] = '\0';
    snprintf(g.version, sizeof(g.version), "%s", out);
  }
  return 0;
}

int main(int argc, char **argv) {
  bench_init("fl-bench-proxy");
  struct opts o;
  if (parse_opts(argc, argv, &o) != 0)
    return FL_EXIT_USAGE;
  if (check_tools() != 0)
    return FL_EXIT_ENV;
  char cmdline[1024];
  bench_cmdline(argc, argv, cmdline, sizeof(cmdline));
  atexit(cleanup);
  bench_catch_signals(SIGTERM, SIGTERM);
  signal(SIGPIPE, SIG_IGN); /* a relay writing to a closed peer */
  if (setup() != 0 || run_rounds(&o) != 0) {
    if (bench_stop)
      bench_say("interrupted; cleaned up");
    return bench_stop ? 130 : FL_EXIT_ENV;
  }
  struct report_args ra = {&o, cmdline};
  return bench_emit(o.out, report, &ra) == 0 ? FL_EXIT_OK : FL_EXIT_ENV;
}
