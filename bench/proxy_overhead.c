/*
 * fl-bench-proxy: what the stream-fault proxy (harness/proxy.c) costs a
 * real client when no fault is on, next to the baseline a user would reach
 * for. bench/README.md explains every figure.
 *
 * Configurations, always the same redis-benchmark against the same
 * private redis-server:
 *   direct   to the server: the reference;
 *   proxy    through fl_proxy on a libuv loop in a thread of this program,
 *            with an empty control segment, as faultline runs it;
 *   socat    through `socat TCP-LISTEN:...,fork TCP:...` (a process per
 *            connection), the ready-made TCP relay of Debian.
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
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "control.h"
#include "errors.h"
#include "paths.h"
#include "proxy.h"

enum cfg { CFG_DIRECT, CFG_PROXY, CFG_SOCAT, CFG_COUNT };
static const char *const cfg_names[CFG_COUNT] = {"direct", "proxy", "socat"};
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

/* Everything cleanup() undoes; the signal handler touches only the
 * sig_atomic_t fields. */
static struct {
  char dir[PATH_MAX];
  fl_control_t *ctl;
  char **env;
  pid_t redis, socat;
  int port[CFG_COUNT];
  uv_loop_t loop;
  uv_async_t stop;
  fl_proxy_t *proxy;
  pthread_t thread;
  int thread_running;
  char version[128];
} g;
static volatile sig_atomic_t g_stop;
static volatile sig_atomic_t g_child;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fl-bench-proxy: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* ---- the proxy, on a loop thread of ours ------------------------- */

static void on_stop(uv_async_t *a) {
  fl_proxy_close(g.proxy);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  (void)arg;
  uv_run(&g.loop, UV_RUN_DEFAULT);
  return NULL;
}

static int start_proxy(void) {
  char path[PATH_MAX + 16];
  snprintf(path, sizeof(path), "%s/control", g.dir);
  int rc = fl_control_create(path, 1, &g.ctl);
  if (rc != 0) {
    say("cannot create control segment %s: %s", path, fl_strerror(rc));
    return -1;
  }
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)g.port[CFG_DIRECT]),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if ((rc = uv_loop_init(&g.loop)) != 0 ||
      (rc = fl_proxy_start(&g.loop, g.ctl, (struct sockaddr *)&up, &g.proxy)) !=
          0 ||
      (rc = uv_async_init(&g.loop, &g.stop, on_stop)) != 0) {
    say("cannot start the proxy: %s", uv_strerror(rc));
    return -1;
  }
  g.port[CFG_PROXY] = fl_proxy_port(g.proxy);
  if (pthread_create(&g.thread, NULL, loop_main, NULL) != 0) {
    say("cannot start the proxy's thread");
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

/* ---- cleanup, on every exit path ---------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (flag == FTW_DP)
    rmdir(path);
  else
    unlink(path);
  return 0;
}

/* Stops a child (and its process group: socat's per-connection
 * children), waiting at most 3 s before SIGKILL. */
static void stop_child(pid_t *pid) {
  if (*pid <= 0)
    return;
  kill(-*pid, SIGTERM);
  for (int i = 0; i < 300; i++) {
    if (waitpid(*pid, NULL, WNOHANG) == *pid) {
      *pid = 0;
      return;
    }
    sleep_ms(10);
  }
  kill(-*pid, SIGKILL);
  waitpid(*pid, NULL, 0);
  *pid = 0;
}

static void cleanup(void) {
  stop_child(&g.socat);
  stop_proxy();
  stop_child(&g.redis);
  if (g.ctl != NULL)
    fl_control_remove(g.ctl);
  g.ctl = NULL;
  for (size_t i = 0; g.env != NULL && g.env[i] != NULL; i++)
    free(g.env[i]);
  free(g.env);
  g.env = NULL;
  if (g.dir[0] != '\0')
    nftw(g.dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
  g.dir[0] = '\0';
}

static void on_signal(int sig) {
  (void)sig;
  g_stop = 1;
  if (g_child > 0)
    kill((pid_t)g_child, SIGTERM);
}

static void install_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal; /* no SA_RESTART: poll() must wake up */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

/* ---- processes ---------------------------------------------------- */

/* Our environment without any preload: no configuration is faulted. */
static char **make_env(void) {
  extern char **environ;
  size_t n = 0, k = 0;
  while (environ[n] != NULL)
    n++;
  char **env = calloc(n + 1, sizeof(*env));
  for (size_t i = 0; env != NULL && i < n; i++) {
    if (strncmp(environ[i], "LD_PRELOAD=", 11) == 0 ||
        strncmp(environ[i], FL_CTL_ENV "=", sizeof(FL_CTL_ENV)) == 0)
      continue;
    if ((env[k++] = strdup(environ[i])) == NULL) {
      for (size_t j = 0; j < k; j++)
        free(env[j]);
      free(env);
      return NULL;
    }
  }
  return env;
}

/* Starts argv in a process group of its own (so its children can be
 * stopped with it), stdout to out_fd (-1: the log), stderr to log. It
 * dies with us. */
static pid_t spawn(const char *const argv[], int out_fd, const char *log) {
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent)
    _exit(127);
  int in = open("/dev/null", O_RDONLY);
  int err = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (in < 0 || err < 0)
    _exit(127);
  dup2(in, 0);
  dup2(out_fd >= 0 ? out_fd : err, 1);
  dup2(err, 2);
  execvpe(argv[0], (char *const *)argv, g.env);
  dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

static void show_log(const char *log) {
  char buf[2048];
  int fd = open(log, O_RDONLY);
  if (fd < 0)
    return;
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from =
      size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
  close(fd);
  if (n > 0) {
    buf[n] = '\0';
    fprintf(stderr, "--- %s ---\n%s", log, buf);
  }
}

/* Runs argv to completion with its stdout in out, within timeout_s. */
static int run_capture(const char *const argv[], char *out, size_t size,
                       int timeout_s) {
  char log[PATH_MAX + 16];
  snprintf(log, sizeof(log), "%s/client.log", g.dir);
  unlink(log);
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0)
    return -1;
  pid_t pid = spawn(argv, p[1], log);
  close(p[1]);
  if (pid < 0) {
    close(p[0]);
    return -1;
  }
  g_child = pid;
  size_t len = 0;
  long long end = now_ms() + timeout_s * 1000LL;
  int eof = 0;
  while (!eof && !g_stop && now_ms() < end) {
    struct pollfd pf = {p[0], POLLIN, 0};
    if (poll(&pf, 1, 200) <= 0)
      continue;
    char scratch[512];
    int keep = len + 1 < size;
    ssize_t n = read(p[0], keep ? out + len : scratch,
                     keep ? size - 1 - len : sizeof(scratch));
    if (n == 0 || (n < 0 && errno != EINTR))
      eof = 1;
    else if (n > 0 && keep)
      len += (size_t)n;
  }
  out[len] = '\0';
  close(p[0]);
  if (!eof)
    kill(-pid, SIGKILL);
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
    ;
  g_child = 0;
  if (g_stop)
    return -1;
  if (!eof || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
    say("%s %s", argv[0], eof ? "failed" : "did not finish in time");
    show_log(log);
    return -1;
  }
  return 0;
}

static int free_port(void) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0)
    close(fd);
  return port;
}

/* Does a server at port answer PING (through whatever relays it)? */
static int pong(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  char buf[16] = "";
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
           write(fd, "PING\r\n", 6) == 6 && read(fd, buf, 7) > 0 &&
           strncmp(buf, "+PONG", 5) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

/* Starts a server process on a free port until one answers PING. */
static int start_server(pid_t *pid, int *port, const char *what,
                        int (*argv_for)(int, char *, const char **)) {
  char log[PATH_MAX + 32], buf[256];
  snprintf(log, sizeof(log), "%s/%s.log", g.dir, what);
  for (int attempt = 0; attempt < 3 && !g_stop; attempt++) {
    const char *argv[24];
    *port = free_port();
    argv_for(*port, buf, argv);
    *pid = spawn(argv, -1, log);
    if (*pid < 0) {
      *pid = 0;
      return -1;
    }
    for (long long end = now_ms() + 5000; now_ms() < end && !g_stop;) {
      if (waitpid(*pid, NULL, WNOHANG) == *pid) {
        *pid = 0;
        break;
      }
      if (pong(*port))
        return 0;
      sleep_ms(20);
    }
    stop_child(pid);
  }
  say("%s would not start on 127.0.0.1", what);
  show_log(log);
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

/* "SET","rps","avg","min","p50","p95","p99","max" lines of --csv. */
static int parse_csv(const char *out, double fig[TEST_COUNT][FIG_COUNT]) {
  int found = 0;
  for (const char *line = out; line != NULL && *line != '\0';) {
    char name[16];
    double rps, avg, min, p50, p95, p99;
    if (sscanf(line,
               "\"%15[^\"]\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\"",
               name, &rps, &avg, &min, &p50, &p95, &p99) == 7 &&
        rps > 0)
      for (int t = 0; t < TEST_COUNT; t++)
        if (strcmp(name, test_names[t]) == 0) {
          fig[t][FIG_RPS] = rps;
          fig[t][FIG_P50] = p50;
          fig[t][FIG_P99] = p99;
          found |= 1 << t;
        }
    line = strchr(line, '\n');
    line = line != NULL ? line + 1 : NULL;
  }
  if (found != (1 << TEST_COUNT) - 1) {
    say("redis-benchmark printed no SET and GET figures:\n%s", out);
    return -1;
  }
  return 0;
}

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
  double fig[TEST_COUNT][FIG_COUNT];
  int timeout = 60 + (int)(TEST_COUNT * requests / 2000);
  if (run_capture(argv, out, sizeof(out), timeout) != 0 ||
      parse_csv(out, fig) != 0)
    return -1;
  for (int t = 0; t < TEST_COUNT; t++)
    for (int f = 0; f < FIG_COUNT; f++)
      samples[mode][t][c][f][round] = fig[t][f];
  return 0;
}

static int run_rounds(const struct opts *o) {
  for (int r = 0; r < o->rounds; r++) {
    for (int m = 0; m < MODE_COUNT; m++) {
      long n = o->requests * (m == MODE_P16 ? PIPELINED_SCALE : 1);
      for (int k = 0; k < CFG_COUNT; k++) {
        enum cfg c = (enum cfg)((k + r) % CFG_COUNT);
        say("round %d/%d, -P %d, %s", r + 1, o->rounds, mode_pipeline[m],
            cfg_names[c]);
        if (bench_run(c, m, n, r) == 0)
          continue;
        /* A loaded machine can stall one run (socat's, most often): one
         * more try before the whole benchmark gives up. */
        if (g_stop)
          return -1;
        say("round %d/%d, %s failed once: running it again", r + 1, o->rounds,
            cfg_names[c]);
        if (bench_run(c, m, n, r) != 0)
          return -1;
      }
    }
  }
  return 0;
}

/* ---- the report --------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(const double *v, int n) {
  double s[MAX_ROUNDS];
  memcpy(s, v, (size_t)n * sizeof(double));
  qsort(s, (size_t)n, sizeof(double), cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

struct tally {
  int met, checked;
  double worst;
};

static void report(FILE *f, const struct opts *o, const char *cmdline) {
  struct utsname u;
  char when[64];
  time_t now = time(NULL);
  strftime(when, sizeof(when), "%Y-%m-%d %H:%M %Z", localtime(&now));
  uname(&u);
  int rounds = o->rounds;
  fprintf(f, "## faultline proxy overhead\n\n");
  fprintf(f, "`%s` — %s, %s %s, %ld CPUs\n\n", cmdline, when, u.sysname,
          u.release, sysconf(_SC_NPROCESSORS_ONLN));
  fprintf(f,
          "%s against a private redis-server on 127.0.0.1: `-t set,get -c "
          "%s`, `-n %ld` unpipelined and `-n %ld` with `-P 16`; directly, "
          "through the faultline proxy with no fault on, and through "
          "socat (fork per connection). %d round%s, configurations "
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
}

static int emit_report(const struct opts *o, const char *cmdline) {
  report(stdout, o, cmdline);
  fflush(stdout);
  if (o->out == NULL)
    return 0;
  FILE *f = fopen(o->out, "w");
  if (f == NULL) {
    say("cannot write %s: %s", o->out, strerror(errno));
    return -1;
  }
  report(f, o, cmdline);
  if (fclose(f) != 0) {
    say("cannot write %s: %s", o->out, strerror(errno));
    return -1;
  }
  return 0;
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

static int parse_long(const char *arg, const char *opt, long min, long max,
                      long *out) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
    say("%s wants a number from %ld to %ld, not '%s'", opt, min, max, arg);
    return -1;
  }
  *out = v;
  return 0;
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
  while ((ch = getopt_long(argc, argv, "", longs, NULL)) != -1) {
    int rc = 0;
    if (ch == 'q')
      o->quick = 1;
    else if (ch == 'r')
      rc = parse_long(optarg, "--rounds", 1, MAX_ROUNDS, &rounds);
    else if (ch == 'n')
      rc = parse_long(optarg, "--requests", 1000, 100000000, &requests);
    else if (ch == 'o')
      o->out = optarg;
    else if (ch == 'h') {
      usage(stdout);
      exit(0);
    } else {
      usage(stderr);
      return -1;
    }
    if (rc != 0)
      return -1;
  }
  if (optind < argc) {
    say("unexpected argument '%s'", argv[optind]);
    return -1;
  }
  o->rounds = (int)(rounds > 0 ? rounds : o->quick ? 1 : 5);
  o->requests = requests > 0 ? requests : o->quick ? 10000 : 100000;
  return 0;
}

static int check_tools(void) {
  static const char *const need[][2] = {{"redis-server", "redis-server"},
                                        {"redis-benchmark", "redis-tools"},
                                        {"socat", "socat"}};
  char path[PATH_MAX];
  int rc = 0;
  for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
    if (fl_find_program(need[i][0], path, sizeof(path)) != 0) {
      say("%s not found: install it with 'apt-get install %s'", need[i][0],
          need[i][1]);
      rc = -1;
    }
  return rc;
}

static int setup(void) {
  const char *tmp = getenv("TMPDIR");
  snprintf(g.dir, sizeof(g.dir), "%s/fl-bench-XXXXXX",
           tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
  if (mkdtemp(g.dir) == NULL) {
    say("cannot make a temporary folder %s: %s", g.dir, strerror(errno));
    g.dir[0] = '\0';
    return -1;
  }
  if ((g.env = make_env()) == NULL) {
    say("out of memory");
    return -1;
  }
  if (start_server(&g.redis, &g.port[CFG_DIRECT], "redis-server", redis_argv) !=
          0 ||
      start_proxy() != 0 ||
      start_server(&g.socat, &g.port[CFG_SOCAT], "socat", socat_argv) != 0)
    return -1;
  if (!pong(g.port[CFG_PROXY])) {
    say("no PONG through the proxy");
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
  struct opts o;
  if (parse_opts(argc, argv, &o) != 0)
    return FL_EXIT_USAGE;
  if (check_tools() != 0)
    return FL_EXIT_ENV;
  char cmdline[1024] = "fl-bench-proxy";
  for (int i = 1, len = 14; i < argc && len < (int)sizeof(cmdline); i++)
    len +=
        snprintf(cmdline + len, sizeof(cmdline) - (size_t)len, " %s", argv[i]);
  atexit(cleanup);
  install_signals();
  if (setup() != 0 || run_rounds(&o) != 0) {
    if (g_stop)
      say("interrupted; cleaned up");
    return g_stop ? 130 : FL_EXIT_ENV;
  }
  return emit_report(&o, cmdline) == 0 ? FL_EXIT_OK : FL_EXIT_ENV;
}
