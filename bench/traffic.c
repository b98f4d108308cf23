/*
 * fl-bench-traffic: how exactly faultline's open-loop traffic keeps its
 * rate, what latency it measures and what CPU it costs, against a private
 * nginx serving a small static file on loopback.
 *
 * Each round runs faultline's traffic (harness/traffic/traffic.c, the code the
 * runner uses) at every requested rate, in an order rotated by one per
 * round, then wrk on the same server twice: -c32 (the usual closed-loop
 * load, at saturation) and -c1 (one request at a time: the server's
 * unloaded latency). The table gives, per rate, the median over rounds and
 * the min – max of:
 *   achieved / requested  responses 200 to requests that started within
 *                         the run's first D seconds, divided by D * rate;
 *   p50, p99              latency of those responses;
 *   start lag p99         actual start minus scheduled start;
 *   CPU / 1000 req        this process's user + system time (getrusage)
 *                         per 1000 requests sent.
 *
 * Usage: fl-bench-traffic [--rounds N] [--duration S] [--rates A,B,...]
 *                         [--out FILE] [--quick]
 * Exit status: 0 when every run succeeded (the table says whether the goal
 * was met), 2 bad usage, 3 the environment failed (nginx or wrk missing or
 * not starting, a run failing), 130 interrupted.
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "bench_util.h"
#include "traffic/traffic.h"

#define NGINX "/usr/sbin/nginx"
#define MAX_RATES 8
#define MAX_ROUNDS 51
#define FILE_BYTES 1024
#define GOAL 0.02      /* issue 3: within 2 % of the requested rate */
#define GOAL_RATE 1000 /* ... at this rate */

enum { EXIT_USAGE = 2, EXIT_ENV = 3, EXIT_INTR = 130 };

/* One faultline run at one rate. */
struct run {
  double ratio, p50, p99, lag99, cpu; /* cpu: ms per 1000 requests */
  double steal;                       /* share of the machine's CPU time */
  long errors;
};

/* One wrk run. */
struct wrk_run {
  double rps, p50, p99;
  long errors;
};

/* The signal handler touches only bench_stop and bench_child (the wrk
 * running now). */
static struct {
  char dir[256];
  pid_t nginx;
  int port;
  char wrk[256];
} B;

static void stop_nginx(void) { bench_stop_child(&B.nginx, 0, 2000); }

static void cleanup(void) {
  stop_nginx();
  fl_rm_tree(B.dir);
  B.dir[0] = '\0';
}

static _Noreturn void die(int status, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fl-bench-traffic: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  cleanup();
  exit(status);
}

/* Copies B.dir/NAME to stderr: a failed tool's own words. */
static void print_file(const char *name) {
  char path[512], line[512];
  snprintf(path, sizeof(path), "%s/%s", B.dir, name);
  FILE *f = fopen(path, "r");
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    fputs(line, stderr);
  if (f != NULL)
    fclose(f);
}

/* Starts argv in a process group of its own, with stdout and stderr to
 * out_path; the child dies with us. */
static int spawn(char *const argv[], const char *out_path, pid_t *pid) {
  int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -errno;
  struct bench_spawn s = {argv, NULL, {BENCH_FD_KEEP, fd, fd}, 1};
  int rc = bench_spawn(&s, pid);
  close(fd);
  return rc;
}

/* nginx in one process (no master, no daemon) with everything it writes
 * in B.dir; keep-alive connections are never closed by request count, so
 * both clients measure reuse rather than reconnection. */
static int nginx_config(const char *conf, int port) {
  char text[4096];
  snprintf(text, sizeof(text),
           "daemon off;\n"
           "master_process off;\n"
           "worker_processes 1;\n"
           "pid %1$s/nginx.pid;\n"
           "error_log %1$s/error.log warn;\n"
           "events { worker_connections 4096; }\n"
           "http {\n"
           "  access_log off;\n"
           "  client_body_temp_path %1$s/tmp;\n"
           "  proxy_temp_path %1$s/tmp;\n"
           "  fastcgi_temp_path %1$s/tmp;\n"
           "  uwsgi_temp_path %1$s/tmp;\n"
           "  scgi_temp_path %1$s/tmp;\n"
           "  keepalive_requests 100000000;\n"
           "  keepalive_timeout 75s;\n"
           "  server {\n"
           "    listen 127.0.0.1:%2$d;\n"
           "    root %1$s/www;\n"
           "  }\n"
           "}\n",
           B.dir, port);
  return bench_write_file(conf, text);
}

static void start_nginx(void) {
  char path[512], conf[512], log[512];
  snprintf(path, sizeof(path), "%s/www", B.dir);
  mkdir(path, 0755);
  snprintf(path, sizeof(path), "%s/tmp", B.dir);
  mkdir(path, 0700);
  char body[FILE_BYTES + 1];
  memset(body, 'x', FILE_BYTES);
  body[FILE_BYTES - 1] = '\n';
  body[FILE_BYTES] = '\0';
  snprintf(path, sizeof(path), "%s/www/index.html", B.dir);
  int rc = bench_write_file(path, body);
  if (rc != 0)
    die(EXIT_ENV, "%s: %s", path, strerror(-rc));
  snprintf(conf, sizeof(conf), "%s/nginx.conf", B.dir);
  snprintf(log, sizeof(log), "%s/error.log", B.dir);
  snprintf(path, sizeof(path), "%s/nginx.out", B.dir);
  /* A free port can be taken between our look and nginx's bind: retry. */
  for (int attempt = 0; attempt < 5; attempt++) {
    B.port = fl_free_port();
    if (B.port < 0 || nginx_config(conf, B.port) != 0)
      die(EXIT_ENV, "cannot prepare nginx's configuration in %s", B.dir);
    char *argv[] = {NGINX, "-p", B.dir, "-c", conf, "-e", log, NULL};
    if ((rc = spawn(argv, path, &B.nginx)) != 0)
      die(EXIT_ENV, "fork: %s", strerror(-rc));
    for (int i = 0; i < 500; i++) {
      int fd = bench_connect_loopback(B.port);
      if (fd >= 0) {
        close(fd);
        return;
      }
      if (waitpid(B.nginx, NULL, WNOHANG) == B.nginx) {
        B.nginx = 0;
        break;
      }
      bench_sleep_ms(10);
    }
    stop_nginx();
  }
  print_file("error.log");
  print_file("nginx.out");
  die(EXIT_ENV, "nginx did not start");
}

/* ---- one faultline run ---- */

struct ctx {
  fl_traffic_t *t;
  uv_timer_t stop_timer, watch;
  int stopped, freed;
};

static void on_stopped(void *arg) { ((struct ctx *)arg)->stopped = 1; }
static void on_freed(void *arg) { ((struct ctx *)arg)->freed = 1; }

static void on_stop_timer(uv_timer_t *h) {
  struct ctx *c = h->data;
  uv_timer_stop(&c->watch);
  fl_traffic_stop(c->t, on_stopped, c);
}

/* Ends the run early on SIGINT/SIGTERM. */
static void on_watch(uv_timer_t *h) {
  if (bench_stop)
    on_stop_timer(h);
}

/* The share of all CPU time the hypervisor took between two marks. */
static double steal_share(const struct bench_load *a,
                          const struct bench_load *b) {
  return b->total > a->total
             ? (double)(b->steal - a->steal) / (double)(b->total - a->total)
             : NAN;
}

/* Summarises the records of a run of `duration` seconds at `rate`. */
static int summarise(const struct fl_request *r, size_t n, double rate,
                     double duration, double cpu, struct run *out) {
  double *lat = malloc((n + 1) * sizeof(double));
  double *lag = malloc((n + 1) * sizeof(double));
  if (lat == NULL || lag == NULL) {
    free(lat);
    free(lag);
    return -ENOMEM;
  }
  size_t ok = 0;
  out->errors = 0;
  for (size_t k = 0; k < n; k++) {
    lag[k] = r[k].start - r[k].sched;
    if (r[k].status != 200) {
      out->errors++;
      continue;
    }
    if (r[k].start < duration)
      lat[ok++] = r[k].latency;
  }
  bench_sort(lat, ok);
  bench_sort(lag, n);
  out->ratio = (double)ok / (duration * rate);
  out->p50 = fl_percentile(lat, ok, 50);
  out->p99 = fl_percentile(lat, ok, 99);
  out->lag99 = fl_percentile(lag, n, 99);
  out->cpu = n > 0 ? cpu / (double)n * 1e6 : NAN;
  free(lat);
  free(lag);
  return 0;
}

static int traffic_run(double rate, double duration, struct run *out) {
  uv_loop_t loop;
  struct ctx c = {0};
  char base[64];
  snprintf(base, sizeof(base), "http://127.0.0.1:%d", B.port);
  if (uv_loop_init(&loop) != 0)
    return -ENOMEM;
  int rc = fl_traffic_new(&loop, base, &c.t);
  if (rc != 0) {
    uv_loop_close(&loop);
    return rc;
  }
  struct fl_endpoint_spec e = {
      .name = "index", .path = "/index.html", .rate = rate, .timeout = 2};
  rc = fl_traffic_add(c.t, &e);
  if (rc >= 0) {
    uv_timer_init(&loop, &c.stop_timer);
    uv_timer_init(&loop, &c.watch);
    c.stop_timer.data = c.watch.data = &c;
    struct bench_load m0, m1;
    bench_load_mark(&m0, 0);
    double cpu0 = bench_rusage_s(RUSAGE_SELF);
    fl_traffic_start(c.t);
    uv_update_time(&loop);
    /* A little past the end: requests that start before `duration` are
     * counted, and the last of them must have had their chance. */
    uv_timer_start(&c.stop_timer, on_stop_timer,
                   (uint64_t)(duration * 1000) + 50, 0);
    uv_timer_start(&c.watch, on_watch, 100, 100);
    while (!c.stopped)
      uv_run(&loop, UV_RUN_ONCE);
    double cpu = bench_rusage_s(RUSAGE_SELF) - cpu0;
    bench_load_mark(&m1, 0);
    const struct fl_request *r;
    size_t n = fl_traffic_records(c.t, 0, &r);
    rc = summarise(r, n, rate, duration, cpu, out);
    out->steal = steal_share(&m0, &m1);
    uv_close((uv_handle_t *)&c.stop_timer, NULL);
    uv_close((uv_handle_t *)&c.watch, NULL);
  }
  fl_traffic_free(c.t, on_freed, &c);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0 && rc >= 0)
    rc = -EBUSY; /* a handle left open: a bug worth failing on */
  return rc < 0 ? rc : 0;
}

/* ---- wrk ---- */

/* "1.23ms" -> seconds. */
static double wrk_time(const char *s) {
  char *end;
  double v = strtod(s, &end);
  if (strncmp(end, "us", 2) == 0)
    return v / 1e6;
  if (strncmp(end, "ms", 2) == 0)
    return v / 1e3;
  if (strncmp(end, "s", 1) == 0)
    return v;
  if (strncmp(end, "m", 1) == 0)
    return v * 60;
  return NAN;
}

static int wrk_run(int conns, double duration, struct wrk_run *out) {
  char c[16], d[16], url[64], path[512];
  snprintf(c, sizeof(c), "-c%d", conns);
  snprintf(d, sizeof(d), "-d%ds", (int)ceil(duration));
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/index.html", B.port);
  snprintf(path, sizeof(path), "%s/wrk.out", B.dir);
  char *argv[] = {B.wrk, "-t1", c, d, "--latency", url, NULL};
  pid_t pid;
  int st, rc = spawn(argv, path, &pid);
  if (rc != 0)
    return rc;
  bench_child = pid;
  double end = bench_now_s() + duration + 30;
  while (waitpid(pid, &st, WNOHANG) == 0) {
    if (bench_now_s() > end)
      kill(pid, SIGKILL);
    bench_sleep_ms(20);
  }
  bench_child = 0;
  if (bench_stop)
    return -EINTR;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    return -EIO;
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -errno;
  char line[256], v[64];
  memset(out, 0, sizeof(*out));
  out->p50 = out->p99 = out->rps = NAN;
  long a, b, x, y;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (sscanf(line, " 50%% %63s", v) == 1)
      out->p50 = wrk_time(v);
    else if (sscanf(line, " 99%% %63s", v) == 1)
      out->p99 = wrk_time(v);
    else if (sscanf(line, "Requests/sec: %lf", &out->rps) == 1)
      ;
    else if (sscanf(line,
                    " Socket errors: connect %ld, read %ld, write %ld, "
                    "timeout %ld",
                    &a, &b, &x, &y) == 4)
      out->errors += a + b + x + y;
    else if (sscanf(line, " Non-2xx or 3xx responses: %ld", &a) == 1)
      out->errors += a;
  }
  fclose(f);
  return isnan(out->p50) || isnan(out->p99) || isnan(out->rps) ? -EIO : 0;
}

/* ---- report ---- */

static void emit(FILE *f, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
}

/* What else the machine did while we measured. */
struct load {
  double steal; /* share of all CPU time taken by the hypervisor */
  double other; /* cores busy on average with work not ours */
};

static void report(FILE *f, const double *rates, int nrates, int rounds,
                   double duration, struct run (*runs)[MAX_ROUNDS],
                   struct wrk_run (*wrk)[MAX_ROUNDS], const struct load *l) {
  double v[MAX_ROUNDS];
  char c[6][128];
  emit(f, "## Traffic accuracy and cost (fl-bench-traffic)\n\n");
  emit(f,
       "nginx (one process, access log off) serving a %d-byte file on "
       "127.0.0.1, %ld CPUs. %d round%s; in each, faultline's traffic runs "
       "%.0f s at every rate (order rotated per round), then wrk "
       "`-t1 -c32` and `-t1 -c1` for %.0f s each. Median (min – max) over "
       "rounds. Goal (issue 3): achieved within %.0f %% of requested at "
       "%d req/s.\n\n",
       FILE_BYTES, sysconf(_SC_NPROCESSORS_ONLN), rounds, rounds > 1 ? "s" : "",
       duration, ceil(duration), GOAL * 100, GOAL_RATE);
  emit(f,
       "The machine meanwhile: the hypervisor's steal time took %.1f %% of "
       "CPU time; other work (not this program, its nginx or wrk) kept "
       "%.2f cores busy on average. Both delay the loop's wake-ups: see "
       "start lag.\n\n",
       l->steal * 100, l->other);
  emit(f, "| requested (req/s) | achieved ÷ requested | p50 | p99 | "
          "start lag p99 | CPU per 1000 req | steal | errors |\n");
  emit(f, "|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < nrates; i++) {
    long errors = 0;
    for (int r = 0; r < rounds; r++)
      errors += runs[i][r].errors;
#define COL(k, field, scale, fmt)                                              \
  do {                                                                         \
    for (int r = 0; r < rounds; r++)                                           \
      v[r] = runs[i][r].field;                                                 \
    bench_cell(c[k], sizeof(c[k]), v, (size_t)rounds, scale, fmt);             \
  } while (0)
    COL(0, ratio, 1, "%.4f");
    COL(1, p50, 1e3, "%.3f ms");
    COL(2, p99, 1e3, "%.3f ms");
    COL(3, lag99, 1e3, "%.2f ms");
    COL(4, cpu, 1, "%.0f ms");
    COL(5, steal, 100, "%.0f %%");
#undef COL
    emit(f, "| %.0f | %s | %s | %s | %s | %s | %s | %ld |\n", rates[i], c[0],
         c[1], c[2], c[3], c[4], c[5], errors);
  }
  static const char *const wrk_name[2] = {"-c32", "-c1"};
  for (int w = 0; w < 2; w++) {
    long errors = 0;
    char rps[128];
    for (int r = 0; r < rounds; r++) {
      errors += wrk[w][r].errors;
      v[r] = wrk[w][r].rps;
    }
    bench_cell(rps, sizeof(rps), v, (size_t)rounds, 1, "%.0f");
    for (int r = 0; r < rounds; r++)
      v[r] = wrk[w][r].p50;
    bench_cell(c[1], sizeof(c[1]), v, (size_t)rounds, 1e3, "%.3f ms");
    for (int r = 0; r < rounds; r++)
      v[r] = wrk[w][r].p99;
    bench_cell(c[2], sizeof(c[2]), v, (size_t)rounds, 1e3, "%.3f ms");
    emit(f,
         "| wrk %s (closed loop: %s req/s) | — | %s | %s | — | — | — | %ld "
         "|\n",
         wrk_name[w], rps, c[1], c[2], errors);
  }
  for (int i = 0; i < nrates; i++) {
    if (rates[i] != GOAL_RATE)
      continue;
    for (int r = 0; r < rounds; r++)
      v[r] = runs[i][r].ratio;
    struct bench_summary s;
    bench_summarize(v, (size_t)rounds, &s);
    double m = s.median;
    emit(f, "\nGoal at %d req/s: achieved ÷ requested %.4f — %s.\n", GOAL_RATE,
         m, fabs(m - 1) <= GOAL ? "met" : "NOT met");
  }
}

/* ---- main ---- */

static void usage(FILE *f) {
  fputs("usage: fl-bench-traffic [--rounds N] [--duration S] "
        "[--rates A,B,...] [--out FILE] [--quick]\n",
        f);
}

static int find_wrk(void) {
  const char *path = getenv("PATH");
  char *copy = strdup(path != NULL ? path : "/usr/bin:/bin");
  int found = 0;
  for (char *save = NULL, *d = strtok_r(copy, ":", &save); d != NULL && !found;
       d = strtok_r(NULL, ":", &save)) {
    snprintf(B.wrk, sizeof(B.wrk), "%s/wrk", d);
    found = access(B.wrk, X_OK) == 0;
  }
  free(copy);
  return found;
}

static int parse_rates(const char *s, double *rates) {
  int n = 0;
  char *copy = strdup(s);
  for (char *save = NULL, *p = strtok_r(copy, ",", &save); p != NULL;
       p = strtok_r(NULL, ",", &save)) {
    char *end;
    double r = strtod(p, &end);
    if (n == MAX_RATES || *end != '\0' || !(r > 0)) {
      free(copy);
      return -1;
    }
    rates[n++] = r;
  }
  free(copy);
  return n;
}

int main(int argc, char **argv) {
  bench_init("fl-bench-traffic");
  int rounds = 5, quick = 0;
  double duration = 4, rates[MAX_RATES] = {500, 1000, 2000, 5000};
  int nrates = 4, set_rounds = 0, set_duration = 0;
  const char *out_path = NULL;
  static const struct option opts[] = {
      {"rounds", required_argument, NULL, 'r'},
      {"duration", required_argument, NULL, 'd'},
      {"rates", required_argument, NULL, 'R'},
      {"out", required_argument, NULL, 'o'},
      {"quick", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    char *end = NULL;
    switch (o) {
    case 'r':
      rounds = (int)strtol(optarg, &end, 10);
      set_rounds = 1;
      if (*end != '\0' || rounds < 1 || rounds > MAX_ROUNDS)
        return usage(stderr), EXIT_USAGE;
      break;
    case 'd':
      duration = strtod(optarg, &end);
      set_duration = 1;
      if (*end != '\0' || !(duration >= 0.5) || duration > 600)
        return usage(stderr), EXIT_USAGE;
      break;
    case 'R':
      nrates = parse_rates(optarg, rates);
      if (nrates <= 0)
        return usage(stderr), EXIT_USAGE;
      break;
    case 'o':
      out_path = optarg;
      break;
    case 'q':
      quick = 1;
      break;
    case 'h':
      usage(stdout);
      return 0;
    default:
      usage(stderr);
      return EXIT_USAGE;
    }
  }
  if (optind != argc)
    return usage(stderr), EXIT_USAGE;
  if (quick) {
    rounds = set_rounds ? rounds : 1;
    duration = set_duration ? duration : 1;
  }
  if (access(NGINX, X_OK) != 0)
    die(EXIT_ENV, NGINX " not found: install it with 'apt-get install "
                        "nginx-light' (or nginx)");
  if (!find_wrk())
    die(EXIT_ENV, "wrk not found: install it with 'apt-get install wrk'");

  bench_catch_signals(SIGKILL, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  int rc = bench_tmpdir(B.dir, sizeof(B.dir), "fl-bench-traffic");
  if (rc != 0) {
    B.dir[0] = '\0';
    die(EXIT_ENV, "mkdtemp: %s", strerror(-rc));
  }
  start_nginx();

  static struct run runs[MAX_RATES][MAX_ROUNDS];
  static struct wrk_run wrk[2][MAX_ROUNDS];
  /* Our nginx's CPU is ours too, not other work. */
  struct bench_load m0, m1;
  bench_load_mark(&m0, B.nginx);
  for (int r = 0; r < rounds && !bench_stop; r++) {
    for (int j = 0; j < nrates && !bench_stop; j++) {
      int i = (j + r) % nrates;
      fprintf(stderr, "round %d/%d: faultline at %.0f req/s for %.0f s\n",
              r + 1, rounds, rates[i], duration);
      rc = traffic_run(rates[i], duration, &runs[i][r]);
      if (rc != 0 && !bench_stop)
        die(EXIT_ENV, "traffic run at %.0f req/s: %s", rates[i], strerror(-rc));
    }
    for (int w = 0; w < 2 && !bench_stop; w++) {
      int conns = w == 0 ? 32 : 1;
      fprintf(stderr, "round %d/%d: wrk -c%d for %.0f s\n", r + 1, rounds,
              conns, ceil(duration));
      rc = wrk_run(conns, duration, &wrk[w][r]);
      if (rc != 0 && !bench_stop) {
        print_file("wrk.out");
        die(EXIT_ENV, "wrk -c%d failed: %s", conns, strerror(-rc));
      }
    }
  }
  if (bench_stop)
    die(EXIT_INTR, "interrupted");
  bench_load_mark(&m1, B.nginx);
  struct load load = {.steal = steal_share(&m0, &m1),
                      .other = fmax(0, bench_load_between(&m0, &m1).cores)};
  report(stdout, rates, nrates, rounds, duration, runs, wrk, &load);
  if (out_path != NULL) {
    FILE *f = fopen(out_path, "w");
    if (f == NULL)
      die(EXIT_ENV, "%s: %s", out_path, strerror(errno));
    report(f, rates, nrates, rounds, duration, runs, wrk, &load);
    fclose(f);
  }
  cleanup();
  return 0;
}
