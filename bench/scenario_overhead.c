/*
 * fl-bench-scenario: what a scenario costs beyond its phases, for
 * a service with a managed Redis and PostgreSQL. bench/README.md explains
 * every figure.
 *
 * Each repetition runs the real `faultline run --out DIR SCENARIO` on a
 * short scenario written to a temporary folder (two phases of 2 s, traffic
 * at 25 req/s, one shim fault: reset on postgres) against
 * scenarios/services/resilient.yaml, and times it from spawn to exit. The
 * overhead is that wall time minus the sum of the phase durations; it is
 * split with result.json ("setup", "duration") and the moments the
 * runner's progress lines arrive on its stderr (a pipe, so plain lines):
 *   start-up      spawn to the scenario's start (exec, parsing);
 *   dependencies  scenario start to the last "NAME ready on" line;
 *   target        the rest of "setup": the target started and ready;
 *   drain         "duration" - "setup" - phases: traffic stopped, the
 *                 requests in flight completing;
 *   teardown      "traffic done" to the verdict line: target, proxies and
 *                 dependencies ended, temporary files removed;
 *   reports       the verdict line to exit: result.json and the reports.
 *
 * Usage: fl-bench-scenario [--runs N] [--service FILE] [--out FILE]
 *                                   [--quick]
 * Exit status: 0 when every run completed (whatever its verdict: the table
 * shows it), 2 bad usage, 3 the environment failed (faultline missing, a
 * run ending in ERROR or not at all), 130 interrupted.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "bench_util.h"

#define MAX_RUNS 51
#define PHASE_S 2
#define RUN_DEADLINE_S 180 /* a run still going by then is killed */
#define TERM_GRACE_S 20    /* after SIGTERM, before SIGKILL */

/* The figures of one run, seconds; NAN when the runner did not say. */
enum fig {
  F_WALL,
  F_OVERHEAD,
  F_STARTUP,
  F_DEPS,
  F_TARGET,
  F_DRAIN,
  F_TEARDOWN,
  F_REPORTS,
  F_SETUP, /* result.json "setup" */
  F_AFTER, /* "traffic done" to exit: teardown + reports */
  F_COUNT
};

struct opts {
  int runs;
  const char *service;
  const char *out;
  int quick;
};

static double fig[F_COUNT][MAX_RUNS];
static char verdicts[MAX_RUNS][16];

/* Everything cleanup() must undo; the signal handler touches only
 * bench_stop and bench_child. */
static struct {
  char dir[PATH_MAX]; /* our temporary folder; "" when none */
  char faultline[PATH_MAX];
  char service[PATH_MAX];
  char scenario[PATH_MAX + 16];
  char log[PATH_MAX + 16]; /* faultline's stdout and stderr, for failures */
  double phases;           /* seconds, the sum of the phase durations */
  struct bench_other other;
} g;

/* ---- cleanup, on every exit path ------------------------------------ */

static void cleanup(void) {
  fl_rm_tree(g.dir);
  g.dir[0] = '\0';
}

/* faultline run ends everything it started on SIGTERM; we wait for it.
 * A second signal kills it (what it started dies with it: PDEATHSIG). */
static void catch_signals(void) {
  bench_catch_signals(SIGTERM, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
}

/* ---- set-up --------------------------------------------------------- */

/* The example service: --service, else the source tree this program was
 * built from (its path is in __FILE__), else ../scenarios from the build
 * folder. */
static int find_service(const char *given) {
  static const char rel[] = "scenarios/services/resilient.yaml";
  char cand[PATH_MAX];
  if (given != NULL) {
    if (realpath(given, g.service) == NULL) {
      bench_say("%s: %s", given, strerror(errno));
      return -1;
    }
    return 0;
  }
  snprintf(cand, sizeof(cand), "%s", __FILE__);
  char *bench = strstr(cand, "bench/scenario_overhead.c");
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
  bench_say("%s not found from %s or beside this program: give --service FILE",
            rel, __FILE__);
  return -1;
}

static int check_tools(const struct opts *o) {
  int rc = find_service(o->service);
  if (bench_beside_self("faultline", g.faultline, sizeof(g.faultline)) != 0 ||
      access(g.faultline, X_OK) != 0) {
    bench_say(
        "faultline not found beside this program: build it (cmake --build)");
    rc = -1;
  }
  return rc;
}

static int setup(void) {
  int rc = bench_tmpdir(g.dir, sizeof(g.dir), "fl-bench-scenario");
  if (rc != 0) {
    bench_say("cannot make a temporary folder %s: %s", g.dir, strerror(-rc));
    g.dir[0] = '\0';
    return -1;
  }
  snprintf(g.scenario, sizeof(g.scenario), "%s/overhead.yaml", g.dir);
  snprintf(g.log, sizeof(g.log), "%s/run.log", g.dir);
  FILE *f = fopen(g.scenario, "w");
  if (f == NULL) {
    bench_say("cannot write %s: %s", g.scenario, strerror(errno));
    return -1;
  }
  fprintf(f,
          "scenario: overhead\n"
          "description: >\n"
          "  fl-bench-scenario: two short phases and one shim\n"
          "  fault, to time what a scenario costs beyond its phases.\n"
          "service: %s\n"
          "traffic:\n"
          "  items: { request: GET /api/items, rate: 20, timeout: 2s }\n"
          "  live:  { request: GET /health,    rate: 5,  timeout: 2s }\n"
          "timeline:\n"
          "  - phase: steady\n"
          "    duration: %ds\n"
          "  - phase: outage\n"
          "    duration: %ds\n"
          "    faults:\n"
          "      - { reset: postgres }\n"
          "expect:\n"
          "  always:\n"
          "    - alive\n",
          g.service, PHASE_S, PHASE_S);
  if (fclose(f) != 0) {
    bench_say("cannot write %s: %s", g.scenario, strerror(errno));
    return -1;
  }
  g.phases = 2 * PHASE_S;
  return 0;
}

/* ---- one run -------------------------------------------------------- */

/* When the runner's progress lines arrived, seconds after the spawn. */
struct marks {
  double deps_ready; /* the last "NAME ready on ADDR" */
  double done;       /* "traffic done" */
  double verdict;    /* "[scenario] PASS" (or FAIL, ...) */
};

/* Notes the moment of one line of the runner's stderr. */
static void mark_line(const char *line, double t, struct marks *m) {
  static const char *const verdict_words[] = {"PASS", "FAIL", "INCONCLUSIVE",
                                              "ERROR"};
  if (strncmp(line, "[overhead] ", 11) != 0)
    return;
  const char *msg = line + 11;
  if (strstr(msg, " ready on ") != NULL)
    m->deps_ready = t;
  else if (strcmp(msg, "traffic done") == 0)
    m->done = t;
  for (size_t i = 0; i < sizeof(verdict_words) / sizeof(*verdict_words); i++)
    if (strcmp(msg, verdict_words[i]) == 0 && isnan(m->verdict))
      m->verdict = t;
}

/* Reads the runner's stderr line by line until it closes, copying it to
 * the log and timing the lines; kills the run at the deadline. */
static void follow(pid_t pid, int fd, int log, double t0, struct marks *m) {
  char buf[8192];
  size_t len = 0;
  int termed = 0, killed = 0;
  for (;;) {
    double now = bench_now_s();
    if (!termed && now - t0 > RUN_DEADLINE_S) {
      bench_say("faultline run still going after %d s: stopping it",
                RUN_DEADLINE_S);
      kill(pid, SIGTERM);
      termed = 1;
    }
    if (termed && !killed && now - t0 > RUN_DEADLINE_S + TERM_GRACE_S) {
      kill(pid, SIGKILL);
      killed = 1;
    }
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 500) <= 0)
      continue; /* a slice, or a signal (forwarded by on_signal) */
    double t = bench_now_s() - t0;
    ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
      break;
    if (n < 0)
      continue;
    if (write(log, buf + len, (size_t)n) != n) {
      /* the log is for failure reports only: carry on without it */
    }
    len += (size_t)n;
    buf[len] = '\0';
    char *start = buf;
    for (char *nl; (nl = strchr(start, '\n')) != NULL; start = nl + 1) {
      *nl = '\0';
      mark_line(start, t, m);
    }
    len -= (size_t)(start - buf);
    memmove(buf, start, len);
    if (len == sizeof(buf) - 1)
      len = 0; /* a runaway line: not one of the runner's */
  }
}

/* A number of a JSON object, NAN when absent. */
static double jnum(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

/* Reads result.json of run r into the figures. 0, or -1 after saying why. */
static int read_result(const char *out_dir, int r, double wall,
                       const struct marks *m) {
  char path[PATH_MAX + 64];
  snprintf(path, sizeof(path), "%s/result.json", out_dir);
  json_error_t jerr;
  json_t *root = json_load_file(path, 0, &jerr);
  json_t *sc = json_array_get(json_object_get(root, "scenarios"), 0);
  const char *verdict = json_string_value(json_object_get(sc, "verdict"));
  if (root == NULL || sc == NULL || verdict == NULL) {
    bench_say("%s: %s", path, root == NULL ? jerr.text : "no scenario in it");
    json_decref(root);
    return -1;
  }
  snprintf(verdicts[r], sizeof(verdicts[r]), "%s", verdict);
  if (strcmp(verdict, "ERROR") == 0) {
    const char *why = json_string_value(json_object_get(sc, "reason"));
    bench_say("the scenario ended in ERROR: %s", why != NULL ? why : "?");
    json_decref(root);
    return -1;
  }
  double setup = jnum(sc, "setup"), duration = jnum(sc, "duration");
  json_decref(root);
  if (isnan(setup) || isnan(duration)) {
    bench_say("%s: no setup or duration", path);
    return -1;
  }
  /* The runner's duration runs from the scenario's start to "traffic
   * done": that line places the start on our clock. */
  double begin = m->done - duration;
  fig[F_WALL][r] = wall;
  fig[F_OVERHEAD][r] = wall - g.phases;
  fig[F_SETUP][r] = setup;
  fig[F_DRAIN][r] = duration - setup - g.phases;
  fig[F_STARTUP][r] = begin;
  fig[F_DEPS][r] = m->deps_ready - begin;
  fig[F_TARGET][r] = setup - (m->deps_ready - begin);
  fig[F_TEARDOWN][r] = m->verdict - m->done;
  fig[F_REPORTS][r] = wall - m->verdict;
  fig[F_AFTER][r] = wall - m->done;
  return 0;
}

static int one_run(int r) {
  char out_dir[PATH_MAX + 32];
  snprintf(out_dir, sizeof(out_dir), "%s/out-%d", g.dir, r + 1);
  int log = open(g.log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int p[2];
  if (log < 0 || pipe2(p, O_CLOEXEC) != 0) {
    bench_say("cannot set up the run's output: %s", strerror(errno));
    if (log >= 0)
      close(log);
    return -1;
  }
  char *const argv[] = {g.faultline, "run", "--out", out_dir, g.scenario, NULL};
  /* A group of its own: a terminal's Ctrl-C reaches it through us, once. */
  struct bench_spawn s = {argv, NULL, {BENCH_FD_NULL, log, p[1]}, 1};
  double t0 = bench_now_s();
  pid_t pid;
  int rc = bench_spawn(&s, &pid);
  close(p[1]);
  if (rc != 0) {
    bench_say("fork: %s", strerror(-rc));
    close(p[0]);
    close(log);
    return -1;
  }
  bench_child = pid;
  if (bench_stop) /* a signal between fork and here */
    kill(pid, SIGTERM);
  struct marks m = {NAN, NAN, NAN};
  follow(pid, p[0], log, t0, &m);
  close(p[0]);
  close(log);
  int status = 0;
  rc = bench_wait(pid, &status, NULL);
  double wall = bench_now_s() - t0;
  bench_child = 0;
  if (bench_stop || rc != 0)
    return -1;
  if (status != FL_EXIT_OK && status != FL_EXIT_FAILED) {
    bench_say("faultline run exited with status %d", status);
    bench_show_tail(g.log, 4096);
    return -1;
  }
  if (read_result(out_dir, r, wall, &m) != 0) {
    bench_show_tail(g.log, 4096);
    return -1;
  }
  return 0;
}

/* ---- what else the machine was doing -------------------------------- */

/* ---- the report ----------------------------------------------------- */

/* "median (min – max)" in seconds over the runs, "—" when a run lacked
 * the figure; the median alone for one run. Returns the median. */
static double cell(char *out, size_t size, const double *v, int n) {
  struct bench_summary s;
  for (int i = 0; i < n; i++)
    if (isnan(v[i])) {
      snprintf(out, size, "—");
      return NAN;
    }
  bench_summarize(v, (size_t)n, &s);
  if (n == 1)
    snprintf(out, size, "%.3f s", s.median);
  else
    snprintf(out, size, "%.3f s (%.3f – %.3f)", s.median, s.min, s.max);
  return s.median;
}

struct report_args {
  const struct opts *o;
  const char *cmdline;
};

static void report(FILE *f, const void *arg) {
  const struct opts *o = ((const struct report_args *)arg)->o;
  static const struct {
    enum fig fig;
    const char *name, *what;
  } rows[] = {
      {F_WALL, "wall time", "`faultline run`, spawn to exit"},
      {F_OVERHEAD, "**overhead**", "wall time − phases"},
      {F_STARTUP, "start-up", "exec, parsing, to the scenario's start"},
      {F_SETUP, "setup (result.json)", "dependencies and target, to traffic"},
      {F_DEPS, "  dependencies", "Redis and PostgreSQL started and ready"},
      {F_TARGET, "  target", "the service started and answering /health"},
      {F_DRAIN, "drain", "requests in flight at the end completing"},
      {F_AFTER, "after the traffic", "teardown and reports, to exit"},
      {F_TEARDOWN, "  teardown", "target and servers ended, files removed"},
      {F_REPORTS, "  reports", "result.json, HTML, Markdown, JUnit; exit"},
  };
  char c[128], name[64];
  fprintf(f, "## Scenario overhead (fl-bench-scenario)\n\n");
  bench_print_context(f, ((const struct report_args *)arg)->cmdline);
  fprintf(f, "; %s\n\n", g.faultline);
  fprintf(f,
          "`faultline run` on a scenario of two %d s phases (traffic 25 "
          "req/s on two endpoints; `reset` on postgres in the second) "
          "against `%s`: a managed Redis and PostgreSQL and the Python "
          "service under the shim. %d run%s in sequence; median "
          "(min – max) over runs. The parts come from result.json and from "
          "when the runner's progress lines arrived (see bench/README.md); "
          "they add up to the wall time. Verdicts: ",
          PHASE_S, g.service, o->runs, o->runs == 1 ? "" : "s");
  for (int r = 0; r < o->runs; r++)
    fprintf(f, "%s%s", r ? ", " : "", verdicts[r]);
  fprintf(f, ".\n\n");
  bench_print_other(f, &g.other, "meanwhile", "", "");
  fprintf(f, "| part | what | time |\n|---|---|--:|\n");
  fprintf(f, "| phases | the timeline, %d × %d s | %.3f s |\n", 2, PHASE_S,
          g.phases);
  for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
    cell(c, sizeof(c), fig[rows[i].fig], o->runs);
    /* Markdown drops leading blanks: indent the sub-parts visibly. */
    snprintf(name, sizeof(name), "%s", rows[i].name);
    if (name[0] == ' ')
      snprintf(name, sizeof(name), "↳ %s", rows[i].name + 2);
    fprintf(f, "| %s | %s | %s |\n", name, rows[i].what, c);
  }
}

/* ---- options and main ----------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f,
          "usage: fl-bench-scenario [--quick] [--runs N] "
          "[--service FILE] [--out FILE]\n"
          "Times `faultline run` on a 2 x %d s scenario with a managed Redis\n"
          "and PostgreSQL and reports what it costs beyond its phases\n"
          "(start-up, readiness, drain, teardown); prints a Markdown table.\n"
          "  --quick         1 run: a smoke test\n"
          "  --runs N        runs (default 5)\n"
          "  --service FILE  the service (default "
          "scenarios/services/resilient.yaml)\n"
          "  --out FILE      also write the table to FILE\n",
          PHASE_S);
}

static int parse_opts(int argc, char **argv, struct opts *o) {
  static const struct option longs[] = {
      {"quick", no_argument, NULL, 'q'},
      {"runs", required_argument, NULL, 'r'},
      {"service", required_argument, NULL, 's'},
      {"out", required_argument, NULL, 'o'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  long runs = -1;
  int ch;
  memset(o, 0, sizeof(*o));
  while ((ch = bench_getopt(argc, argv, longs, usage, &o->quick, &o->out)) >
         0) {
    if (ch == 's')
      o->service = optarg;
    else if (bench_parse_long(optarg, "--runs", 1, MAX_RUNS, &runs) != 0)
      return -1;
  }
  if (ch < 0)
    return -1;
  o->runs = (int)(runs > 0 ? runs : o->quick ? 1 : 5);
  return 0;
}

int main(int argc, char **argv) {
  bench_init("fl-bench-scenario");
  struct opts o;
  if (parse_opts(argc, argv, &o) != 0)
    return FL_EXIT_USAGE;
  if (check_tools(&o) != 0)
    return FL_EXIT_ENV;
  char cmdline[1024];
  bench_cmdline(argc, argv, cmdline, sizeof(cmdline));
  atexit(cleanup);
  catch_signals();
  if (setup() != 0)
    return bench_stop ? 130 : FL_EXIT_ENV;
  struct bench_load start, end;
  bench_load_mark(&start, 0);
  for (int r = 0; r < o.runs; r++) {
    bench_say("run %d/%d: faultline run (%d s of phases)", r + 1, o.runs,
              (int)g.phases);
    if (bench_stop || one_run(r) != 0) {
      if (bench_stop)
        bench_say("interrupted; cleaned up");
      return bench_stop ? 130 : FL_EXIT_ENV;
    }
  }
  bench_load_mark(&end, 0);
  g.other = bench_load_between(&start, &end);
  struct report_args ra = {&o, cmdline};
  return bench_emit(o.out, report, &ra) == 0 ? FL_EXIT_OK : FL_EXIT_ENV;
}
