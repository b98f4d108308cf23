/* What the benchmark programs share: see bench_util.h. */
#define _GNU_SOURCE
#include "bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/base.h"
#include "control/control.h"

static const char *prog = "fl-bench";

volatile sig_atomic_t bench_stop;
volatile sig_atomic_t bench_child;
static int child_sig = SIGTERM, again_sig = SIGTERM;

/* ---- messages and options ------------------------------------------- */

void bench_init(const char *name) { prog = name; }

void bench_say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void bench_cmdline(int argc, char **argv, char *out, size_t size) {
  size_t len = 0;
  out[0] = '\0';
  for (int i = 0; i < argc && len < size; i++)
    len += (size_t)snprintf(out + len, size - len, "%s%s", i ? " " : "",
                            i == 0 ? prog : argv[i]);
}

int bench_getopt(int argc, char **argv, const struct option *longs,
                 void (*usage)(FILE *f), int *quick, const char **out) {
  for (;;) {
    int ch = getopt_long(argc, argv, "", longs, NULL);
    if (ch == 'q') {
      *quick = 1;
    } else if (ch == 'o') {
      *out = optarg;
    } else if (ch == 'h') {
      usage(stdout);
      exit(0);
    } else if (ch == '?' || ch == ':') {
      usage(stderr);
      return -EINVAL;
    } else if (ch != -1) {
      return ch;
    } else if (optind < argc) {
      bench_say("unexpected argument '%s'", argv[optind]);
      return -EINVAL;
    } else {
      return 0;
    }
  }
}

int bench_parse_long(const char *arg, const char *opt, long min, long max,
                     long *out) {
  char *end;
  errno = 0;
  long v = strtol(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
    bench_say("%s wants a number from %ld to %ld, not '%s'", opt, min, max,
              arg);
    return -EINVAL;
  }
  *out = v;
  return 0;
}

int bench_need_program(const char *cmd, const char *package) {
  char path[PATH_MAX];
  if (fl_find_program(cmd, path, sizeof(path)) == 0)
    return 0;
  bench_say("%s not found: install it with 'apt-get install %s'", cmd, package);
  return -ENOENT;
}

/* ---- clocks --------------------------------------------------------- */

long long bench_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

double bench_now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void bench_sleep_us(long us) {
  struct timespec t = {us / 1000000, (us % 1000000) * 1000L};
  nanosleep(&t, NULL);
}

void bench_sleep_ms(long ms) { bench_sleep_us(ms * 1000); }

static double tv_s(const struct rusage *ru) {
  return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
         (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

double bench_rusage_s(int who) {
  struct rusage ru;
  return getrusage(who, &ru) == 0 ? tv_s(&ru) : 0;
}

/* ---- signals -------------------------------------------------------- */

/* Only async-signal-safe work here: the child we wait for is stopped, and
 * the main flow notices bench_stop, unwinds and cleans up. */
static void on_signal(int sig) {
  (void)sig;
  if (bench_child > 0)
    kill((pid_t)bench_child, bench_stop ? again_sig : child_sig);
  bench_stop = 1;
}

void bench_catch_signals(int first, int again) {
  struct sigaction sa;
  child_sig = first;
  again_sig = again;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal; /* no SA_RESTART: poll() must wake up */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);
}

/* ---- child processes ------------------------------------------------ */

int bench_spawn(const struct bench_spawn *s, pid_t *pid) {
  extern char **environ;
  pid_t parent = getpid();
  pid_t p = fork();
  if (p < 0)
    return -errno;
  if (p > 0) {
    *pid = p;
    return 0;
  }
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) /* the parent died before prctl took */
    _exit(127);
  if (s->own_group)
    setpgid(0, 0);
  for (int i = 0; i < 4; i++) {
    int fd = s->fd[i];
    if (fd == BENCH_FD_NULL &&
        (fd = open("/dev/null", i == 0 ? O_RDONLY : O_WRONLY)) < 0)
      _exit(127);
    if (fd >= 0 && dup2(fd, i) < 0)
      _exit(127);
    /* dup2 onto itself keeps close-on-exec: clear it in any case. */
    if (fd >= 0)
      fcntl(i, F_SETFD, 0);
  }
  execvpe(s->argv[0], s->argv, s->envp != NULL ? s->envp : environ);
  dprintf(2, "cannot run %s: %s\n", s->argv[0], strerror(errno));
  _exit(127);
}

int bench_wait(pid_t pid, int *status, double *cpu_s) {
  int ws;
  struct rusage ru;
  while (wait4(pid, &ws, 0, &ru) < 0)
    if (errno != EINTR)
      return -errno;
  if (cpu_s != NULL)
    *cpu_s = tv_s(&ru);
  *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
  return 0;
}

void bench_stop_child(pid_t *pid, int group, int grace_ms) {
  if (*pid <= 0)
    return;
  pid_t to = group ? -*pid : *pid;
  kill(to, grace_ms > 0 ? SIGTERM : SIGKILL);
  for (int i = 0; i < grace_ms / 10; i++) {
    if (waitpid(*pid, NULL, WNOHANG) == *pid) {
      *pid = 0;
      return;
    }
    bench_sleep_ms(10);
  }
  if (grace_ms > 0)
    kill(to, SIGKILL);
  while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
    ;
  *pid = 0;
}

int bench_read_all(int fd, char *out, size_t size, long long deadline_ns) {
  size_t len = 0;
  for (;;) {
    long long left_ms = (deadline_ns - bench_now_ns()) / 1000000;
    if (bench_stop) {
      out[len] = '\0';
      return -EINTR;
    }
    if (left_ms <= 0) {
      out[len] = '\0';
      return -ETIMEDOUT;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, left_ms > 1000 ? 1000 : (int)left_ms) <= 0)
      continue; /* timeout slice or EINTR: re-check the deadline */
    char scratch[512];
    char *to = len + 1 < size ? out + len : scratch;
    size_t room = len + 1 < size ? size - 1 - len : sizeof(scratch);
    ssize_t n = read(fd, to, room);
    if (n == 0)
      break;
    if (n < 0 && errno != EINTR && errno != EAGAIN) {
      int rc = -errno;
      out[len] = '\0';
      return rc;
    }
    if (n > 0 && to != scratch)
      len += (size_t)n;
  }
  out[len] = '\0';
  return 0;
}

int bench_capture(const struct bench_spawn *s, char *out, size_t size,
                  int timeout_s, int *status, double *cpu_s) {
  struct bench_spawn c = *s;
  int p[2];
  pid_t pid;
  out[0] = '\0';
  if (pipe2(p, O_CLOEXEC) != 0)
    return -errno;
  c.fd[1] = p[1];
  int rc = bench_spawn(&c, &pid);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    return rc;
  }
  bench_child = pid;
  rc = bench_read_all(p[0], out, size,
                      bench_now_ns() + timeout_s * 1000000000LL);
  close(p[0]);
  if (rc != 0)
    kill(c.own_group ? -pid : pid, SIGKILL);
  int wrc = bench_wait(pid, status, cpu_s);
  bench_child = 0;
  if (bench_stop)
    return -EINTR;
  return rc != 0 ? rc : wrc;
}

int bench_next_line(struct bench_lines *l, char *out, size_t size,
                    long long deadline_ns) {
  for (;;) {
    char *nl = memchr(l->buf, '\n', l->len);
    if (nl != NULL) {
      size_t n = (size_t)(nl - l->buf);
      snprintf(out, size, "%.*s", (int)n, l->buf);
      l->len -= n + 1;
      memmove(l->buf, nl + 1, l->len);
      return 0;
    }
    if (bench_stop)
      return -EINTR;
    long long left = (deadline_ns - bench_now_ns()) / 1000000;
    if (left <= 0)
      return -ETIMEDOUT;
    struct pollfd p = {.fd = l->fd, .events = POLLIN};
    if (poll(&p, 1, left > 1000 ? 1000 : (int)left) <= 0)
      continue; /* a slice of the wait, or EINTR: look again */
    if (l->len == sizeof(l->buf))
      l->len = 0; /* a runaway line: never from our children */
    ssize_t n = read(l->fd, l->buf + l->len, sizeof(l->buf) - l->len);
    if (n == 0)
      return -EPIPE;
    if (n < 0 && errno != EINTR && errno != EAGAIN)
      return -errno;
    if (n > 0)
      l->len += (size_t)n;
  }
}

void bench_show_tail(const char *log, size_t max) {
  char buf[4096];
  size_t room = max < sizeof(buf) ? max : sizeof(buf);
  int fd = open(log, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  off_t size = lseek(fd, 0, SEEK_END);
  off_t from = size > (off_t)room - 1 ? size - (off_t)room + 1 : 0;
  ssize_t n = pread(fd, buf, room - 1, from);
  close(fd);
  if (n > 0) {
    buf[n] = '\0';
    fprintf(stderr, "--- %s ---\n%s%s", log, buf,
            buf[n - 1] == '\n' ? "" : "\n");
  }
}

static int is_preload_var(const char *entry) {
  static const char *const drop[] = {"LD_PRELOAD=", FL_CTL_ENV "=",
                                     "FIU_ENABLE=", "FIU_CTRL_FIFO="};
  for (size_t i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
    if (strncmp(entry, drop[i], strlen(drop[i])) == 0)
      return 1;
  return 0;
}

char **bench_env(const char *shim, const char *ctl) {
  extern char **environ;
  size_t n = 0, k = 0;
  while (environ[n] != NULL)
    n++;
  char **env = calloc(n + 3, sizeof(*env));
  if (env == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++)
    if (!is_preload_var(environ[i]) && (env[k++] = strdup(environ[i])) == NULL)
      goto fail;
  if (ctl != NULL && (asprintf(&env[k++], "LD_PRELOAD=%s", shim) < 0 ||
                      asprintf(&env[k++], "%s=%s", FL_CTL_ENV, ctl) < 0)) {
    env[--k] = NULL; /* asprintf leaves it undefined on failure */
    goto fail;
  }
  return env;
fail:
  bench_env_free(env);
  return NULL;
}

void bench_env_free(char **env) {
  for (size_t i = 0; env != NULL && env[i] != NULL; i++)
    free(env[i]);
  free(env);
}

/* ---- files ---------------------------------------------------------- */

int bench_tmpdir(char *dir, size_t size, const char *prefix) {
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, size, "%s/%s-XXXXXX",
           tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp", prefix);
  return mkdtemp(dir) != NULL ? 0 : -errno;
}

int bench_copy_file(const char *src, const char *dst, mode_t mode) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  int rc = in < 0 || out < 0 ? -errno : 0;
  char buf[65536];
  for (ssize_t n; rc == 0 && (n = read(in, buf, sizeof(buf))) != 0;) {
    ssize_t w = n > 0 ? write(out, buf, (size_t)n) : -1;
    if (w != n)
      rc = w < 0 ? -errno : -EIO; /* a read error leaves w at -1 too */
  }
  if (in >= 0)
    close(in);
  if (out >= 0 && close(out) != 0 && rc == 0)
    rc = -errno;
  return rc;
}

int bench_write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0)
    return -errno;
  size_t len = strlen(text);
  int rc = write(fd, text, len) == (ssize_t)len ? 0 : -EIO;
  if (close(fd) != 0 && rc == 0)
    rc = -errno;
  return rc;
}

int bench_self(char *out, size_t size) {
  ssize_t n = readlink("/proc/self/exe", out, size - 1);
  if (n <= 0)
    return n < 0 ? -errno : -ENOENT;
  out[n] = '\0';
  return 0;
}

int bench_beside_self(const char *name, char *out, size_t size) {
  char exe[PATH_MAX];
  int rc = bench_self(exe, sizeof(exe));
  if (rc != 0)
    return rc;
  char *slash = strrchr(exe, '/');
  if (slash == NULL)
    return -ENOENT;
  *slash = '\0';
  return (size_t)snprintf(out, size, "%s/%s", exe, name) < size ? 0
                                                                : -ENAMETOOLONG;
}

/* ---- loopback ------------------------------------------------------- */

int bench_connect_loopback(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    int rc = -errno;
    close(fd);
    return rc;
  }
  return fd;
}

int bench_redis_pong(int port) {
  int fd = bench_connect_loopback(port);
  char buf[16] = "";
  int ok = fd >= 0 && write(fd, "PING\r\n", 6) == 6 && read(fd, buf, 7) > 0 &&
           strncmp(buf, "+PONG", 5) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

int bench_redis_csv(const char *out, const char *const names[], int n,
                    int latency, struct bench_redis_fig fig[]) {
  unsigned found = 0;
  for (const char *line = out; line != NULL && *line != '\0';) {
    char name[16];
    double rps, avg, min, p50 = NAN, p95, p99 = NAN;
    int got = sscanf(
        line, "\"%15[^\"]\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\",\"%lf\"",
        name, &rps, &avg, &min, &p50, &p95, &p99);
    if (got >= (latency ? 7 : 2) && rps > 0)
      for (int t = 0; t < n; t++)
        if (strcmp(name, names[t]) == 0) {
          fig[t].rps = rps;
          fig[t].p50 = got == 7 ? p50 : NAN;
          fig[t].p99 = got == 7 ? p99 : NAN;
          found |= 1u << t;
        }
    line = strchr(line, '\n');
    line = line != NULL ? line + 1 : NULL;
  }
  if (found != (1u << n) - 1) {
    bench_say("redis-benchmark printed no SET and GET figures:\n%s", out);
    return -ENOENT;
  }
  return 0;
}

/* ---- what else the machine was doing -------------------------------- */

/* CPU seconds of a running process (utime + stime), 0 when unknown. */
static double proc_cpu(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* Fields 14 and 15 (utime, stime) follow the ")" that ends comm. */
  const char *p = strrchr(buf, ')');
  unsigned long long ut, st;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

void bench_load_mark(struct bench_load *m, pid_t also) {
  unsigned long long v[8];
  memset(m, 0, sizeof(*m));
  m->wall = bench_now_s();
  FILE *f = fopen("/proc/stat", "r");
  int n = f != NULL
              ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                       &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7])
              : 0;
  if (f != NULL)
    fclose(f);
  if (n == 8) {
    double tck = (double)sysconf(_SC_CLK_TCK);
    /* user nice system idle iowait irq softirq steal */
    m->busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / tck;
    m->steal = (double)v[7] / tck;
    m->total =
        (double)(v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7]) / tck;
    m->ok = 1;
  }
  m->own = bench_rusage_s(RUSAGE_SELF) + bench_rusage_s(RUSAGE_CHILDREN) +
           (also > 0 ? proc_cpu(also) : 0);
}

struct bench_other bench_load_between(const struct bench_load *a,
                                      const struct bench_load *b) {
  struct bench_other o = {-1, -1};
  double wall = b->wall - a->wall;
  if (!a->ok || !b->ok || wall <= 0)
    return o;
  double foreign = (b->busy - a->busy) - (b->own - a->own);
  o.cores = foreign > 0 ? foreign / wall : 0;
  o.steal = (b->steal - a->steal) / wall;
  return o;
}

void bench_print_other(FILE *f, const struct bench_other *o, const char *when,
                       const char *aside, const char *tail) {
  if (o->cores < 0)
    return;
  fprintf(f,
          "Other work on the machine %s: %.2f of %ld cores busy on average "
          "outside this benchmark%s, %.2f stolen by the hypervisor.%s\n\n",
          when, o->cores, sysconf(_SC_NPROCESSORS_ONLN), aside, o->steal, tail);
}

/* ---- summaries and reports ------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n) { qsort(v, n, sizeof(*v), cmp_double); }

int bench_summarize(const double *v, size_t n, struct bench_summary *s) {
  s->median = s->min = s->max = NAN;
  if (n == 0)
    return -EINVAL;
  double *c = malloc(n * sizeof(*c));
  if (c == NULL)
    return -ENOMEM;
  memcpy(c, v, n * sizeof(*c));
  bench_sort(c, n);
  s->median = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
  s->min = c[0];
  s->max = c[n - 1];
  free(c);
  return 0;
}

int bench_cell(char *out, size_t size, const double *v, size_t n, double scale,
               const char *fmt) {
  struct bench_summary s;
  int rc = bench_summarize(v, n, &s);
  char a[32], lo[32], hi[32];
  snprintf(a, sizeof(a), fmt, s.median * scale);
  if (n == 1) {
    snprintf(out, size, "%s", a);
    return rc;
  }
  snprintf(lo, sizeof(lo), fmt, s.min * scale);
  snprintf(hi, sizeof(hi), fmt, s.max * scale);
  snprintf(out, size, "%s (%s – %s)", a, lo, hi);
  return rc;
}

void bench_print_context(FILE *f, const char *cmdline) {
  struct utsname u;
  char when[64];
  time_t now = time(NULL);
  strftime(when, sizeof(when), "%Y-%m-%d %H:%M %Z", localtime(&now));
  uname(&u);
  fprintf(f, "`%s` — %s, %s %s, %ld CPUs", cmdline, when, u.sysname, u.release,
          sysconf(_SC_NPROCESSORS_ONLN));
}

int bench_emit(const char *path, void (*report)(FILE *f, const void *arg),
               const void *arg) {
  report(stdout, arg);
  fflush(stdout);
  if (path == NULL)
    return 0;
  FILE *f = fopen(path, "w");
  if (f == NULL) {
    int rc = -errno;
    bench_say("cannot write %s: %s", path, strerror(-rc));
    return rc;
  }
  report(f, arg);
  if (fclose(f) != 0) {
    int rc = -errno;
    bench_say("cannot write %s: %s", path, strerror(-rc));
    return rc;
  }
  return 0;
}
