/*
 * fl-bench-switch-latency: how long after a fault is switched on a running
 * target sees it. bench/README.md explains every figure.
 *
 * A real process runs under the shim (LD_PRELOAD of libfaultline-preload.so,
 * FAULTLINE_CONTROL naming a segment made with fl_control_create, exactly as
 * `faultline exec` makes it) and connects in a tight loop to a loopback
 * listener it inherited; each connection is accepted and dropped. When a
 * connect fails with ECONNREFUSED after one that succeeded, the target
 * writes the time (CLOCK_MONOTONIC, one clock for every process) to a pipe;
 * when one succeeds again after a refusal, likewise.
 *
 * One switch: note the time, add refuse@127.0.0.1:PORT, read the target's
 * first refusal, clear the rule, read its first success again, pause a
 * random 0.5–2.5 ms (so that switches fall anywhere in the target's loop).
 * The rule is added either in this process with fl_control_add (what the
 * runner's timeline does) or by running `faultline inject` (what a person
 * rehearsing a failure does: the time then starts before the command is
 * spawned). The two alternate, switch by switch, against the same target;
 * targets are a C loop (this program re-executed) and Debian's python3.
 *
 * Usage: fl-bench-switch-latency [--switches N] [--out FILE] [--quick]
 * Exit status: 0 when every switch was seen (the table says whether the
 * goal was met), 2 bad usage, 3 the environment failed (a tool missing, a
 * target not starting or never seeing a fault), 130 interrupted.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "bench_util.h"
#include "control/control.h"
#include "faults/faults.h"

#define PYTHON "/usr/bin/python3"
#define MAX_SWITCHES 5000
#define WARMUP 4
#define GOAL_MS 1.0
/* A switch the target has not seen by then is a failure. */
#define EVENT_WAIT_MS 3000
#define START_WAIT_MS 10000
#define LISTEN_FD 3 /* where targets find their listener */

enum target { TGT_C, TGT_PY, TGT_COUNT };
static const char *const tgt_names[TGT_COUNT] = {"C loop", "Python 3 loop"};
enum how { HOW_API, HOW_INJECT, HOW_COUNT };
static const char *const how_names[HOW_COUNT] = {
    "`fl_control_add` (the runner's timeline)", "`faultline inject`"};

/* The Python target: the same loop as target_child() below. */
static const char py_target[] =
    "import os, socket, struct, time\n"
    "lst = socket.socket(fileno=3)\n"
    "addr = lst.getsockname()\n"
    "linger = struct.pack('ii', 1, 0)\n"
    "mono, M = time.clock_gettime_ns, time.CLOCK_MONOTONIC\n"
    "os.write(1, b'R %d\\n' % mono(M))\n"
    "refused, n = False, 0\n"
    "while True:\n"
    "    c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\n"
    "    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)\n"
    "    n += 1\n"
    "    try:\n"
    "        c.connect(addr)\n"
    "    except ConnectionRefusedError:\n"
    "        t = mono(M)\n"
    "        c.close()\n"
    "        if not refused:\n"
    "            refused = True\n"
    "            os.write(1, b'E %d %d\\n' % (t, n))\n"
    "        continue\n"
    "    a, _ = lst.accept()\n"
    "    c.close()\n"
    "    a.close()\n"
    "    if refused:\n"
    "        refused = False\n"
    "        os.write(1, b'O %d %d\\n' % (mono(M), n))\n";

struct opts {
  int switches; /* per target and way of switching */
  const char *out;
  int quick;
};

/* Milliseconds, [target][how][switch]. */
static double lat[TGT_COUNT][HOW_COUNT][MAX_SWITCHES];
static double inject_ms[TGT_COUNT][MAX_SWITCHES]; /* spawn to exit */
static double true_ms[TGT_COUNT][MAX_SWITCHES];   /* /bin/true, the same */

/* Everything cleanup() must undo. The signal handler touches only
 * bench_stop and bench_child. */
static struct {
  char dir[PATH_MAX]; /* our temporary folder; "" when none */
  char self[PATH_MAX];
  char shim_src[PATH_MAX];
  char shim[PATH_MAX + 32]; /* the private copy targets preload */
  char faultline[PATH_MAX];
  char log[PATH_MAX + 16];  /* the target's stderr */
  char ilog[PATH_MAX + 16]; /* faultline inject's stderr */
  char py[PATH_MAX + 16];
  fl_control_t *ctl;
  struct fl_rule rule;
  char spec[64];
  char **env_shim, **env_plain;
  int listen_fd, port;
  pid_t target;
  struct bench_lines out;    /* the target's stdout */
  long long last_t, last_n;  /* the last refusal: time, loop count */
  double iter_us[TGT_COUNT]; /* the target's mean loop iteration */
  struct bench_other other;
} g = {.listen_fd = -1, .out.fd = -1};

/* ---- the target (this program re-executed under the shim) ---------- */

/* Is the shim mapped into this process? A target without it would only
 * ever time out, so it says so at once. */
static int shim_mapped(void) {
  char line[PATH_MAX + 128];
  int found = 0;
  FILE *f = fopen("/proc/self/maps", "r");
  while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
    found = strstr(line, "libfaultline-preload.so") != NULL;
  if (f != NULL)
    fclose(f);
  return found;
}

/* The C target: connect to the inherited listener, accept, drop both (the
 * client with SO_LINGER 0: a reset, so no TIME_WAIT piles up), forever.
 * Writes "R t", "E t n" at the first refusal and "O t n" at the first
 * success after one. Ends when its pipe is gone (SIGPIPE) or killed. */
static int target_child(void) {
  struct sockaddr_in a;
  socklen_t alen = sizeof(a);
  if (!shim_mapped()) {
    fprintf(stderr, "target: libfaultline-preload.so is not mapped\n");
    return FL_EXIT_ENV;
  }
  if (getsockname(LISTEN_FD, (struct sockaddr *)&a, &alen) != 0) {
    fprintf(stderr, "target: no listener on fd %d: %s\n", LISTEN_FD,
            strerror(errno));
    return FL_EXIT_ENV;
  }
  struct linger lg = {1, 0};
  char line[64];
  int refused = 0;
  long long n = 0;
  dprintf(1, "R %lld\n", bench_now_ns());
  for (;;) {
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c < 0) {
      fprintf(stderr, "target: socket: %s\n", strerror(errno));
      return FL_EXIT_ENV;
    }
    setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    n++;
    if (connect(c, (struct sockaddr *)&a, alen) == 0) {
      int s = accept4(LISTEN_FD, NULL, NULL, SOCK_CLOEXEC);
      close(c);
      if (s >= 0)
        close(s);
      if (refused) {
        refused = 0;
        int len =
            snprintf(line, sizeof(line), "O %lld %lld\n", bench_now_ns(), n);
        if (write(1, line, (size_t)len) != len)
          return 0;
      }
    } else if (errno == ECONNREFUSED) {
      long long t = bench_now_ns();
      close(c);
      if (!refused) {
        refused = 1;
        int len = snprintf(line, sizeof(line), "E %lld %lld\n", t, n);
        if (write(1, line, (size_t)len) != len)
          return 0;
      }
    } else {
      fprintf(stderr, "target: connect: %s\n", strerror(errno));
      return FL_EXIT_ENV;
    }
  }
}

/* ---- cleanup, on every exit path ------------------------------------ */

/* Kills and reaps the running target; its CPU time goes to our
 * RUSAGE_CHILDREN, where the machine-load figure finds it. */
static void stop_target(void) {
  if (g.out.fd >= 0)
    close(g.out.fd);
  g.out.fd = -1;
  g.out.len = 0;
  bench_stop_child(&g.target, 0, 0);
}

static void cleanup(void) {
  stop_target();
  if (g.ctl != NULL)
    fl_control_remove(g.ctl);
  g.ctl = NULL;
  if (g.listen_fd >= 0)
    close(g.listen_fd);
  g.listen_fd = -1;
  bench_env_free(g.env_shim);
  bench_env_free(g.env_plain);
  g.env_shim = g.env_plain = NULL;
  fl_rm_tree(g.dir);
  g.dir[0] = '\0';
}

/* ---- set-up --------------------------------------------------------- */

/* Names the Debian package of whatever is missing, in one sentence each. */
static int check_tools(void) {
  int rc = 0;
  if (access(PYTHON, X_OK) != 0) {
    bench_say("%s not found: install it with 'apt-get install python3'",
              PYTHON);
    rc = -1;
  }
  if (fl_find_shim(g.shim_src, sizeof(g.shim_src)) != 0) {
    bench_say(
        "libfaultline-preload.so not found beside this program; build it, "
        "or set FAULTLINE_PRELOAD to its path");
    rc = -1;
  }
  int err = bench_self(g.self, sizeof(g.self));
  if (err != 0) {
    bench_say("cannot find this program in /proc/self/exe: %s", strerror(-err));
    return -1;
  }
  if (bench_beside_self("faultline", g.faultline, sizeof(g.faultline)) != 0 ||
      access(g.faultline, X_OK) != 0) {
    bench_say("%s not found: build the faultline target beside this program",
              g.faultline);
    rc = -1;
  }
  return rc;
}

/* A loopback listener with a deep queue, inherited by each target. */
static int make_listener(void) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  g.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (g.listen_fd < 0 || bind(g.listen_fd, (struct sockaddr *)&a, len) != 0 ||
      listen(g.listen_fd, 4096) != 0 ||
      getsockname(g.listen_fd, (struct sockaddr *)&a, &len) != 0) {
    bench_say("cannot listen on 127.0.0.1: %s", strerror(errno));
    return -1;
  }
  g.port = ntohs(a.sin_port);
  return 0;
}

static int setup(void) {
  int rc = bench_tmpdir(g.dir, sizeof(g.dir), "fl-bench-switch");
  if (rc != 0) {
    bench_say("cannot make a temporary folder %s: %s", g.dir, strerror(-rc));
    g.dir[0] = '\0';
    return -1;
  }
  snprintf(g.shim, sizeof(g.shim), "%s/libfaultline-preload.so", g.dir);
  snprintf(g.log, sizeof(g.log), "%s/target.log", g.dir);
  snprintf(g.ilog, sizeof(g.ilog), "%s/inject.log", g.dir);
  snprintf(g.py, sizeof(g.py), "%s/target.py", g.dir);
  /* A private copy: a rebuild during the run cannot swap the shim. */
  if ((rc = bench_copy_file(g.shim_src, g.shim, 0700)) != 0) {
    bench_say("cannot copy %s to %s: %s", g.shim_src, g.shim, strerror(-rc));
    return -1;
  }
  if ((rc = bench_write_file(g.py, py_target)) != 0) {
    bench_say("cannot write %s: %s", g.py, strerror(-rc));
    return -1;
  }
  char path[PATH_MAX + 16], err[256];
  snprintf(path, sizeof(path), "%s/control", g.dir);
  rc = fl_control_create(path, 1, &g.ctl);
  if (rc != 0) {
    bench_say("cannot create control segment %s: %s", path, fl_strerror(rc));
    return -1;
  }
  if (make_listener() != 0)
    return -1;
  snprintf(g.spec, sizeof(g.spec), "refuse@127.0.0.1:%d", g.port);
  if (fl_spec_parse(g.spec, &g.rule, err, sizeof(err)) != 0) {
    bench_say("%s: %s", g.spec, err);
    return -1;
  }
  g.env_shim = bench_env(g.shim, path);
  g.env_plain = bench_env(NULL, NULL);
  if (g.env_shim == NULL || g.env_plain == NULL) {
    bench_say("out of memory");
    return -1;
  }
  return 0;
}

/* ---- talking to the target ------------------------------------------ */

/* Waits for the target's line of kind k ('R', 'E' or 'O'): its time and
 * loop count. 0, or a negative code after saying what went wrong. */
static int expect_line(char k, long long *t, long long *n) {
  char line[128];
  int rc = bench_next_line(
      &g.out, line, sizeof(line),
      bench_now_ns() + (k == 'R' ? START_WAIT_MS : EVENT_WAIT_MS) * 1000000LL);
  if (rc == 0) {
    char kind = 0;
    *n = 0;
    int got = sscanf(line, "%c %lld %lld", &kind, t, n);
    if (kind == k && got >= 2)
      return 0;
    bench_say("the target wrote '%s' where '%c' was due", line, k);
    return -EPROTO;
  }
  if (rc == -EINTR)
    return rc;
  bench_say("%s", rc == -ETIMEDOUT
                      ? (k == 'E'   ? "the target saw no refusal within "
                                      "3 s of the switch"
                         : k == 'O' ? "the target was still refused 3 "
                                      "s after the clear"
                                    : "the target did not start")
                      : "the target ended");
  bench_show_tail(g.log, 2048);
  return rc;
}

static int start_target(enum target t, long long *t_ready) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    bench_say("pipe: %s", strerror(errno));
    return -1;
  }
  char *const c_argv[] = {g.self, "--target-child", NULL};
  char *const py_argv[] = {PYTHON, "-I", g.py, NULL};
  int err = open(g.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  /* The listener becomes the target's fd 3 (LISTEN_FD). */
  struct bench_spawn s = {t == TGT_C ? c_argv : py_argv,
                          g.env_shim,
                          {BENCH_FD_NULL, p[1], err, g.listen_fd},
                          0};
  pid_t pid;
  int rc = err < 0 ? -errno : bench_spawn(&s, &pid);
  close(p[1]);
  if (err >= 0)
    close(err);
  if (rc != 0) {
    close(p[0]);
    bench_say("cannot start the target: %s", strerror(-rc));
    return -1;
  }
  g.target = pid;
  g.out.fd = p[0];
  g.out.len = 0;
  long long n;
  return expect_line('R', t_ready, &n) == 0 ? 0 : -1;
}

/* Starts argv (no preload), its stdout to /dev/null and stderr to log; the
 * time from just before the spawn to its exit in *ms. Exit status, or -1. */
static int run_quick(char *const argv[], const char *log, long long t0,
                     double *ms) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND,
                                   0600);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, g.env_plain);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    bench_say("cannot run %s: %s", argv[0], strerror(rc));
    return -1;
  }
  bench_child = pid;
  int ws;
  while (waitpid(pid, &ws, 0) < 0)
    if (errno != EINTR) {
      bench_child = 0;
      return -1;
    }
  *ms = (double)(bench_now_ns() - t0) / 1e6;
  bench_child = 0;
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* One switch on and off: switch i's latency (switch → first refusal) in
 * lat[t][h][i]; i < 0 for a switch that is not measured. */
static int one_switch(enum target t, enum how h, int i) {
  double unused_ms = 0;
  double *spawn_ms = i >= 0 ? &inject_ms[t][i] : &unused_ms;
  long long when, n, t0 = bench_now_ns();
  if (h == HOW_API) {
    struct fl_rule rule = g.rule;
    uint32_t id;
    int rc = fl_control_add(g.ctl, &rule, &id);
    if (rc != 0) {
      bench_say("fl_control_add: %s", fl_strerror(rc));
      return -1;
    }
  } else {
    char *const argv[] = {g.faultline, "inject",
                          "--control", (char *)fl_control_path(g.ctl),
                          g.spec,      NULL};
    int st = run_quick(argv, g.ilog, t0, spawn_ms);
    if (st != 0) {
      if (!bench_stop) {
        bench_say("faultline inject exited with status %d", st);
        bench_show_tail(g.ilog, 2048);
      }
      return -1;
    }
  }
  if (expect_line('E', &when, &n) != 0)
    return -1;
  if (when < t0) {
    bench_say("the target saw a refusal before the switch: not ours");
    return -1;
  }
  if (i >= 0)
    lat[t][h][i] = (double)(when - t0) / 1e6;
  g.last_t = when;
  g.last_n = n;
  int rc = fl_control_clear(g.ctl, 0);
  if (rc != 0) {
    bench_say("fl_control_clear: %s", fl_strerror(rc));
    return -1;
  }
  return expect_line('O', &when, &n) == 0 ? 0 : -1;
}

/* The context row: process creation alone, timed like an inject. */
static int spawn_true(enum target t, int i) {
  char *const argv[] = {"/bin/true", NULL};
  double ms;
  int st = run_quick(argv, g.ilog, bench_now_ns(), &ms);
  if (i >= 0)
    true_ms[t][i] = ms;
  return st == 0 ? 0 : -1;
}

static unsigned long long rng = 0x9e3779b97f4a7c15ULL;
static long pause_us(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return 500 + (long)(rng % 2000);
}

/* Every switch against one target: a few unmeasured ones first, then the
 * two ways alternately. */
static int run_target(enum target t, const struct opts *o) {
  long long t_ready;
  bench_say("%s: starting the target under the shim", tgt_names[t]);
  if (start_target(t, &t_ready) != 0)
    return -1;
  for (int w = 0; w < WARMUP; w++)
    if (one_switch(t, (enum how)(w % HOW_COUNT), -1) != 0)
      return -1;
  bench_say("%s: %d switches each way", tgt_names[t], o->switches);
  for (int i = 0; i < o->switches; i++)
    for (int k = 0; k < HOW_COUNT; k++) {
      /* Both orders, in turns, so neither always follows the other. */
      enum how h = (enum how)((k + i) % HOW_COUNT);
      bench_sleep_us(pause_us());
      if (bench_stop || one_switch(t, h, i) != 0)
        return -1;
      if (h == HOW_INJECT && spawn_true(t, i) != 0)
        return -1;
    }
  /* The last refusal's loop count gives the target's mean iteration. */
  g.iter_us[t] =
      g.last_n > 0 ? (double)(g.last_t - t_ready) / 1e3 / (double)g.last_n : -1;
  stop_target();
  return 0;
}

/* ---- what else the machine was doing -------------------------------- */

/* ---- the report ----------------------------------------------------- */

struct summary {
  double median, p90, p99, min, max;
};

/* p90 and p99 are the values at rank round(p * (n - 1)). */
static struct summary summarize(const double *v, int n) {
  static double s[MAX_SWITCHES];
  memcpy(s, v, (size_t)n * sizeof(*v));
  bench_sort(s, (size_t)n);
  struct summary r = {n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2,
                      s[(int)(0.90 * (n - 1) + 0.5)],
                      s[(int)(0.99 * (n - 1) + 0.5)], s[0], s[n - 1]};
  return r;
}

struct report_args {
  const struct opts *o;
  const char *cmdline;
};

static void report(FILE *f, const void *arg) {
  const struct opts *o = ((const struct report_args *)arg)->o;
  fprintf(f, "## Fault switch latency (fl-bench-switch-latency)\n\n");
  bench_print_context(f, ((const struct report_args *)arg)->cmdline);
  fprintf(f, "; shim %s\n\n", g.shim_src);
  fprintf(f,
          "A target under the shim connects in a tight loop to a loopback "
          "listener (each connection accepted and dropped). Each switch "
          "adds `refuse@127.0.0.1:PORT` and ends when the target reports "
          "its first `ECONNREFUSED` (its own CLOCK_MONOTONIC time); the "
          "rule is then cleared and the target seen connecting again. "
          "Latency: from just before the switch (the `fl_control_add` "
          "call, or the spawn of `faultline inject`) to the refusal. %d "
          "switches each way per target, the two ways alternating, 0.5–2.5 "
          "ms apart at random. Goal (issue 7): median under %.0f ms.\n\n",
          o->switches, GOAL_MS);
  bench_print_other(f, &g.other, "meanwhile", " (its targets busy-loop on one)",
                    "");
  fprintf(f, "| target | switched by | median | p90 | p99 | max | min | "
             "goal: median < 1 ms |\n"
             "|---|---|--:|--:|--:|--:|--:|---|\n");
  int met = 0, checked = 0;
  for (int t = 0; t < TGT_COUNT; t++)
    for (int h = 0; h < HOW_COUNT; h++) {
      struct summary s = summarize(lat[t][h], o->switches);
      int ok = s.median < GOAL_MS;
      met += ok;
      checked++;
      fprintf(f,
              "| %s (%.1f µs per connect) | %s | %.3f ms | %.3f ms | %.3f ms | "
              "%.3f ms | %.3f ms | %s |\n",
              tgt_names[t], g.iter_us[t], how_names[h], s.median, s.p90, s.p99,
              s.max, s.min, ok ? "met" : "**MISSED**");
    }
  fprintf(f, "\nWhere the `faultline inject` time goes: the command's own "
             "life, spawn to exit, beside a process that does nothing "
             "(`/bin/true`, spawned the same way right after).\n\n");
  fprintf(f, "| while the target was | process | median | min | max |\n"
             "|---|---|--:|--:|--:|\n");
  for (int t = 0; t < TGT_COUNT; t++) {
    struct summary a = summarize(inject_ms[t], o->switches);
    struct summary b = summarize(true_ms[t], o->switches);
    fprintf(f, "| %s | `faultline inject` | %.3f ms | %.3f ms | %.3f ms |\n",
            tgt_names[t], a.median, a.min, a.max);
    fprintf(f, "| %s | `/bin/true` | %.3f ms | %.3f ms | %.3f ms |\n",
            tgt_names[t], b.median, b.min, b.max);
  }
  fprintf(f, "\nGoal (median under %.0f ms): met in %d of %d rows.\n", GOAL_MS,
          met, checked);
}

/* ---- options and main ----------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "usage: fl-bench-switch-latency [--quick] [--switches N] "
             "[--out FILE]\n"
             "Measures the time from a fault switch (fl_control_add, or\n"
             "faultline inject) to the first injected ECONNREFUSED seen by a\n"
             "running target under the shim (a C loop, a Python loop); prints\n"
             "a Markdown table.\n"
             "  --quick       20 switches each way: a smoke test\n"
             "  --switches N  switches per target and way (default 200)\n"
             "  --out FILE    also write the table to FILE\n");
}

static int parse_opts(int argc, char **argv, struct opts *o) {
  static const struct option longs[] = {
      {"quick", no_argument, NULL, 'q'},
      {"switches", required_argument, NULL, 's'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  long switches = -1;
  int ch;
  memset(o, 0, sizeof(*o));
  while ((ch = bench_getopt(argc, argv, longs, usage, &o->quick, &o->out)) > 0)
    if (bench_parse_long(optarg, "--switches", 1, MAX_SWITCHES, &switches))
      return -1;
  if (ch < 0)
    return -1;
  o->switches = (int)(switches > 0 ? switches : o->quick ? 20 : 200);
  return 0;
}

int main(int argc, char **argv) {
  bench_init("fl-bench-switch-latency");
  if (argc == 2 && strcmp(argv[1], "--target-child") == 0)
    return target_child();
  struct opts o;
  if (parse_opts(argc, argv, &o) != 0)
    return FL_EXIT_USAGE;
  if (check_tools() != 0)
    return FL_EXIT_ENV;
  char cmdline[1024];
  bench_cmdline(argc, argv, cmdline, sizeof(cmdline));
  atexit(cleanup);
  bench_catch_signals(SIGKILL, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  if (setup() != 0)
    return bench_stop ? 130 : FL_EXIT_ENV;
  struct bench_load start, end;
  bench_load_mark(&start, 0);
  for (int t = 0; t < TGT_COUNT; t++)
    if (run_target((enum target)t, &o) != 0) {
      if (bench_stop)
        bench_say("interrupted; cleaned up");
      return bench_stop ? 130 : FL_EXIT_ENV;
    }
  bench_load_mark(&end, 0);
  g.other = bench_load_between(&start, &end);
  struct report_args ra = {&o, cmdline};
  return bench_emit(o.out, report, &ra) == 0 ? FL_EXIT_OK : FL_EXIT_ENV;
}
