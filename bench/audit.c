/*
 * fl-bench-audit: what `faultline audit` costs, with its dependencies
 * shared between cases (the default: one PostgreSQL and one Redis per job,
 * reset between cases) against fresh ones per case (--fresh-deps), both
 * measured in the same run, in turns. bench/README.md explains every
 * figure.
 *
 * Each round runs the real `faultline audit --jobs N --out DIR SERVICE`
 * twice, shared and fresh (the order alternates between rounds, so that
 * neither always runs on a warm cache), and times each from spawn to exit.
 * From DIR/run/result.json: the cases' run ("duration") and each case's
 * "setup" (its dependencies and the target started, to its traffic); from
 * the progress lines: the leases that reused a server. The two matrices
 * are compared cell by cell: sharing must not change a verdict.
 *
 * Usage: fl-bench-audit [--rounds N] [--jobs N] [--only GLOBS]
 *                       [--service FILE] [--out FILE] [--quick]
 * Exit status: 0 when every audit completed (whatever its verdict), 2 bad
 * usage, 3 the environment failed, 130 interrupted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/base.h"
#include "bench_util.h"

#define MAX_ROUNDS 9
#define AUDIT_DEADLINE_S 1200 /* an audit still going by then is stopped */
#define TERM_GRACE_S 30
#define QUICK_ONLY "postgres-down,redis-down"

enum mode { SHARED, FRESH, NMODES };
static const char *const mode_name[NMODES] = {"shared", "fresh"};

/* One audit's figures; NAN when it did not say. */
struct figs {
  double wall, run, discovery;
  double setup_median, setup_mean, setup_sum;
  int cases, reused;
};

struct opts {
  int rounds, jobs, quick;
  const char *only, *service, *out;
};

static struct figs figs[NMODES][MAX_ROUNDS];
static int differ[MAX_ROUNDS]; /* cells that differ between the modes */
static int ncells[MAX_ROUNDS];

static struct {
  char dir[PATH_MAX]; /* our temporary folder; "" when none */
  char faultline[PATH_MAX];
  char service[PATH_MAX];
  char verdict[NMODES][16];
  char cmdline[1024];
  struct bench_other other;
} g;

static void cleanup(void) {
  fl_rm_tree(g.dir);
  g.dir[0] = '\0';
}

/* The resilient example: --service, else beside the sources this program
 * was built from, else ../scenarios from the build folder. */
static int find_service(const char *given) {
  static const char rel[] = "scenarios/services/resilient.yaml";
  char cand[PATH_MAX];
  if (given != NULL) {
    if (realpath(given, g.service) != NULL)
      return 0;
    bench_say("%s: %s", given, strerror(errno));
    return -1;
  }
  snprintf(cand, sizeof(cand), "%s", __FILE__);
  char *bench = strstr(cand, "bench/audit.c");
  if (cand[0] == '/' && bench != NULL) {
    snprintf(bench, sizeof(cand) - (size_t)(bench - cand), "%s", rel);
    if (realpath(cand, g.service) != NULL)
      return 0;
  }
  if (bench_beside_self("../", cand, sizeof(cand)) == 0 &&
      strlen(cand) + sizeof(rel) < sizeof(cand)) {
    strcat(cand, rel);
    if (realpath(cand, g.service) != NULL)
      return 0;
  }
  bench_say("%s not found: give --service FILE", rel);
  return -1;
}

/* ---- one audit ------------------------------------------------------ */

/* Waits for pid until the deadline (then SIGTERM, later SIGKILL). */
static int wait_deadline(pid_t pid, int *status) {
  double t0 = bench_now_s();
  int termed = 0, killed = 0;
  for (;;) {
    int st;
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) {
      *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return 0;
    }
    if (w < 0 && errno != EINTR)
      return -errno;
    double t = bench_now_s() - t0;
    if (!termed && t > AUDIT_DEADLINE_S) {
      bench_say("the audit is still going after %d s: stopping it",
                AUDIT_DEADLINE_S);
      kill(pid, SIGTERM);
      termed = 1;
    }
    if (!killed && t > AUDIT_DEADLINE_S + TERM_GRACE_S) {
      kill(pid, SIGKILL);
      killed = 1;
    }
    bench_sleep_ms(100);
  }
}

/* Leases that reused a server, counted in the audit's progress lines. */
static int count_reused(const char *log) {
  FILE *f = fopen(log, "re");
  char line[2048];
  int n = 0;
  while (f != NULL && fgets(line, sizeof(line), f) != NULL)
    n += strstr(line, ": reusing the server on port ") != NULL;
  if (f != NULL)
    fclose(f);
  return n;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The cases' run and setups from DIR/run/result.json. */
static int read_result(const char *dir, struct figs *fg) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/run/result.json", dir);
  json_error_t e;
  json_t *root = json_load_file(path, 0, &e);
  json_t *scs = json_object_get(root, "scenarios");
  if (root == NULL || json_array_size(scs) == 0) {
    bench_say("%s: %s", path, root == NULL ? e.text : "no case in it");
    json_decref(root);
    return -1;
  }
  size_t n = json_array_size(scs), i;
  double *setups = calloc(n, sizeof(double));
  if (setups == NULL) {
    json_decref(root);
    return -1;
  }
  json_t *sc;
  fg->setup_sum = 0;
  json_array_foreach(scs, i, sc) {
    json_t *s = json_object_get(sc, "setup");
    setups[i] = json_is_number(s) ? json_number_value(s) : NAN;
    fg->setup_sum += setups[i];
  }
  qsort(setups, n, sizeof(double), cmp_double);
  fg->cases = (int)n;
  fg->setup_median =
      n % 2 ? setups[n / 2] : (setups[n / 2 - 1] + setups[n / 2]) / 2;
  fg->setup_mean = fg->setup_sum / (double)n;
  json_t *d = json_object_get(root, "duration");
  fg->run = json_is_number(d) ? json_number_value(d) : NAN;
  fg->discovery = fg->wall - fg->run;
  free(setups);
  json_decref(root);
  return 0;
}

static int one_audit(const struct opts *o, int round, enum mode m) {
  char dir[PATH_MAX + 32], log[PATH_MAX + 48], jobs[16];
  snprintf(dir, sizeof(dir), "%s/%s-%d", g.dir, mode_name[m], round + 1);
  snprintf(log, sizeof(log), "%s.log", dir);
  snprintf(jobs, sizeof(jobs), "%d", o->jobs);
  char *argv[12] = {g.faultline, "audit", "--jobs", jobs, "--out", dir};
  int a = 6;
  if (o->only != NULL) {
    argv[a++] = "--only";
    argv[a++] = (char *)o->only;
  }
  if (m == FRESH)
    argv[a++] = "--fresh-deps";
  argv[a++] = g.service;
  argv[a] = NULL;
  int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    bench_say("cannot write %s: %s", log, strerror(errno));
    return -1;
  }
  struct bench_spawn s = {argv, NULL, {BENCH_FD_NULL, fd, fd}, 1};
  double t0 = bench_now_s();
  pid_t pid;
  int rc = bench_spawn(&s, &pid);
  close(fd);
  if (rc != 0) {
    bench_say("cannot run faultline: %s", strerror(-rc));
    return -1;
  }
  bench_child = pid;
  if (bench_stop)
    kill(pid, SIGTERM);
  int status = 0;
  rc = wait_deadline(pid, &status);
  bench_child = 0;
  struct figs *fg = &figs[m][round];
  fg->wall = bench_now_s() - t0;
  if (bench_stop || rc != 0)
    return -1;
  if (status != FL_EXIT_OK && status != FL_EXIT_FAILED) {
    bench_say("faultline audit (%s) exited with status %d", mode_name[m],
              status);
    bench_show_tail(log, 4096);
    return -1;
  }
  fg->reused = count_reused(log);
  return read_result(dir, fg);
}

/* Cells that differ between the two audits of a round. */
static void compare(int round) {
  char path[NMODES][PATH_MAX + 64];
  json_t *m[NMODES];
  for (int k = 0; k < NMODES; k++) {
    snprintf(path[k], sizeof(path[k]), "%s/%s-%d/matrix.json", g.dir,
             mode_name[k], round + 1);
    m[k] = json_load_file(path[k], 0, NULL);
    const char *v = json_string_value(json_object_get(m[k], "verdict"));
    snprintf(g.verdict[k], sizeof(g.verdict[k]), "%s", v ? v : "?");
  }
  size_t i;
  json_t *c;
  json_array_foreach(json_object_get(m[SHARED], "cases"), i, c) {
    const char *name = json_string_value(json_object_get(c, "name"));
    json_t *other = NULL, *x;
    size_t j;
    json_array_foreach(json_object_get(m[FRESH], "cases"), j, x) {
      const char *n = json_string_value(json_object_get(x, "name"));
      if (name != NULL && n != NULL && strcmp(name, n) == 0)
        other = x;
    }
    const char *ep;
    json_t *cell;
    json_object_foreach(json_object_get(c, "cells"), ep, cell) {
      const char *a = json_string_value(json_object_get(cell, "cell"));
      const char *b = json_string_value(json_object_get(
          json_object_get(json_object_get(other, "cells"), ep), "cell"));
      ncells[round]++;
      if (a == NULL || b == NULL || strcmp(a, b) != 0) {
        differ[round]++;
        bench_say("round %d: %s / %s: %s shared, %s fresh", round + 1,
                  name ? name : "?", ep, a ? a : "-", b ? b : "-");
      }
    }
  }
  json_decref(m[SHARED]);
  json_decref(m[FRESH]);
}

/* ---- the report ----------------------------------------------------- */

/* The median over rounds of one figure (an offset into struct figs). */
static double median_of(enum mode m, size_t off, int rounds) {
  double v[MAX_ROUNDS];
  for (int r = 0; r < rounds; r++)
    v[r] = *(const double *)((const char *)&figs[m][r] + off);
  struct bench_summary s;
  return bench_summarize(v, (size_t)rounds, &s) == 0 ? s.median : NAN;
}

static void report(FILE *f, const void *arg) {
  const struct opts *o = arg;
  static const struct {
    size_t off;
    const char *name, *what;
  } rows[] = {
      {offsetof(struct figs, wall), "**audit wall time**",
       "`faultline audit`, spawn to exit"},
      {offsetof(struct figs, discovery), "discovery and reports",
       "wall time − the cases' run"},
      {offsetof(struct figs, run), "the cases' run",
       "result.json duration, --jobs at once"},
      {offsetof(struct figs, setup_median), "**setup per case**, median",
       "dependencies and target started, to traffic"},
      {offsetof(struct figs, setup_mean), "setup per case, mean", ""},
      {offsetof(struct figs, setup_sum), "setup, all cases", "summed"},
  };
  const struct figs *s0 = &figs[SHARED][0];
  fprintf(f, "## The audit's cost (fl-bench-audit)\n\n");
  bench_print_context(f, g.cmdline);
  fprintf(f, "; %s\n\n", g.faultline);
  fprintf(f,
          "`faultline audit --jobs %d%s%s` of `%s` (%d cases), %d round%s; "
          "each round runs it with its dependencies shared between cases "
          "(one PostgreSQL and one Redis per job, reset between cases; "
          "cases with a process fault on one get their own) and with "
          "`--fresh-deps`, in turns. Median over rounds. Matrices: %s "
          "shared, %s fresh; cells that differ: ",
          o->jobs, o->only ? " --only " : "", o->only ? o->only : "", g.service,
          s0->cases, o->rounds, o->rounds == 1 ? "" : "s", g.verdict[SHARED],
          g.verdict[FRESH]);
  for (int r = 0; r < o->rounds; r++)
    fprintf(f, "%s%d of %d", r ? ", " : "", differ[r], ncells[r]);
  fprintf(f, ".\n\n");
  bench_print_other(f, &g.other, "meanwhile", "", "");
  fprintf(f, "| figure | what | shared | fresh | shared ÷ fresh |\n"
             "|---|---|--:|--:|--:|\n");
  for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
    double a = median_of(SHARED, rows[i].off, o->rounds);
    double b = median_of(FRESH, rows[i].off, o->rounds);
    fprintf(f, "| %s | %s | %.2f s | %.2f s | %.2f |\n", rows[i].name,
            rows[i].what, a, b, a / b);
  }
  fprintf(f, "| servers reused | leases of a kept server | %d | %d | |\n\n",
          s0->reused, figs[FRESH][0].reused);
}

/* ---- options and main ----------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "usage: fl-bench-audit [--quick] [--rounds N] [--jobs N] "
             "[--only GLOBS] [--service FILE] [--out FILE]\n"
             "Times `faultline audit` of the resilient example with its\n"
             "dependencies shared between cases and fresh per case; prints\n"
             "a Markdown table.\n"
             "  --quick         only " QUICK_ONLY ", --jobs 1: a smoke "
             "test\n"
             "  --rounds N      rounds, each both ways (default 1)\n"
             "  --jobs N        cases at once (default 2)\n"
             "  --only GLOBS    only these cases (default: all)\n"
             "  --service FILE  the service (default "
             "scenarios/services/resilient.yaml)\n"
             "  --out FILE      also write the table to FILE\n");
}

static int parse_opts(int argc, char **argv, struct opts *o) {
  static const struct option longs[] = {
      {"quick", no_argument, NULL, 'q'},
      {"rounds", required_argument, NULL, 'r'},
      {"jobs", required_argument, NULL, 'j'},
      {"only", required_argument, NULL, 'n'},
      {"service", required_argument, NULL, 's'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  long rounds = 1, jobs = -1;
  int ch;
  memset(o, 0, sizeof(*o));
  while ((ch = bench_getopt(argc, argv, longs, usage, &o->quick, &o->out)) >
         0) {
    if (ch == 's')
      o->service = optarg;
    else if (ch == 'n')
      o->only = optarg;
    else if (ch == 'j' && bench_parse_long(optarg, "--jobs", 1, 8, &jobs) != 0)
      return -1;
    else if (ch == 'r' &&
             bench_parse_long(optarg, "--rounds", 1, MAX_ROUNDS, &rounds) != 0)
      return -1;
  }
  if (ch < 0)
    return -1;
  o->rounds = (int)rounds;
  o->jobs = (int)(jobs > 0 ? jobs : o->quick ? 1 : 2);
  if (o->quick && o->only == NULL)
    o->only = QUICK_ONLY;
  return 0;
}

int main(int argc, char **argv) {
  bench_init("fl-bench-audit");
  struct opts o;
  if (parse_opts(argc, argv, &o) != 0)
    return FL_EXIT_USAGE;
  if (find_service(o.service) != 0)
    return FL_EXIT_ENV;
  if (bench_beside_self("faultline", g.faultline, sizeof(g.faultline)) != 0 ||
      access(g.faultline, X_OK) != 0) {
    bench_say("faultline not found beside this program: build it");
    return FL_EXIT_ENV;
  }
  bench_cmdline(argc, argv, g.cmdline, sizeof(g.cmdline));
  atexit(cleanup);
  bench_catch_signals(SIGTERM, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  int rc = bench_tmpdir(g.dir, sizeof(g.dir), "fl-bench-audit");
  if (rc != 0) {
    bench_say("cannot make a temporary folder %s: %s", g.dir, strerror(-rc));
    g.dir[0] = '\0';
    return FL_EXIT_ENV;
  }
  struct bench_load start, end;
  bench_load_mark(&start, 0);
  for (int r = 0; r < o.rounds; r++)
    for (int k = 0; k < NMODES; k++) {
      enum mode m = (enum mode)((r + k) % NMODES); /* turns */
      bench_say("round %d/%d: faultline audit, dependencies %s", r + 1,
                o.rounds, mode_name[m]);
      if (bench_stop || one_audit(&o, r, m) != 0) {
        if (bench_stop)
          bench_say("interrupted; cleaned up");
        return bench_stop ? 130 : FL_EXIT_ENV;
      }
      bench_say("  %.1f s, %d cases, setup per case %.2f s (median), %d "
                "reused",
                figs[m][r].wall, figs[m][r].cases, figs[m][r].setup_median,
                figs[m][r].reused);
    }
  bench_load_mark(&end, 0);
  g.other = bench_load_between(&start, &end);
  for (int r = 0; r < o.rounds; r++)
    compare(r);
  return bench_emit(o.out, report, &o) == 0 ? FL_EXIT_OK : FL_EXIT_ENV;
}
