/* A suite spread over CI jobs: `faultline run --shard I/N` splits the
 * files the same way in every job, whatever their order, with every file
 * in exactly one shard and the shards' timelines balanced; `faultline
 * report merge` joins the shards' results into the suite's; and the
 * GitHub Actions workflow in docs/ is valid YAML whose faultline commands
 * use flags that exist. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <glob.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scenario/scenario.h"
#include "support.h"

#define LIBRARY FL_TEST_SOURCE_DIR "/scenarios/*.yaml"
#define RESULTS T_DATA "/results"

static char dir[256];

static void setup(void) { cr_assert_eq(t_mkdtemp(dir), 0); }
static void teardown(void) { t_rmtree(dir); }

TestSuite(shard, .init = setup, .fini = teardown, .timeout = 60);

static double timeline_seconds(const char *file) {
  struct fl_scenario *sc;
  char err[FL_ERRLEN];
  cr_assert_eq(fl_scenario_load(file, &sc, err, sizeof(err)), 0, "%s", err);
  double t = 0;
  for (size_t i = 0; i < sc->nphases; i++)
    t += sc->phases[i].duration;
  fl_scenario_free(sc);
  return t;
}

/* shard_of[i] for the library's files, listed as in `files`. */
static void split(char **files, int n, int shards, int *shard_of) {
  char err[FL_ERRLEN];
  int *keep = calloc((size_t)n, sizeof(*keep));
  for (int i = 0; i < n; i++)
    shard_of[i] = 0;
  for (int s = 1; s <= shards; s++) {
    cr_assert_eq(fl_shard_select(files, n, s, shards, keep, err, sizeof(err)),
                 0, "%s", err);
    for (int i = 0; i < n; i++)
      if (keep[i]) {
        cr_assert_eq(shard_of[i], 0, "%s is in shards %d and %d", files[i],
                     shard_of[i], s);
        shard_of[i] = s;
      }
  }
  for (int i = 0; i < n; i++)
    cr_assert_neq(shard_of[i], 0, "%s is in no shard", files[i]);
  free(keep);
}

Test(shard, every_file_once_balanced_and_order_independent) {
  glob_t g;
  cr_assert_eq(glob(LIBRARY, 0, NULL, &g), 0);
  int n = (int)g.gl_pathc;
  cr_assert_geq(n, 8, "the scenario library is too small to shard");
  int a[64], b[64];
  cr_assert_leq(n, 64);
  split(g.gl_pathv, n, 3, a);

  /* The same files, listed backwards: the same split. */
  char *rev[64];
  for (int i = 0; i < n; i++)
    rev[i] = g.gl_pathv[n - 1 - i];
  split(rev, n, 3, b);
  for (int i = 0; i < n; i++)
    cr_assert_eq(a[i], b[n - 1 - i], "%s moved shard when listed backwards",
                 g.gl_pathv[i]);

  /* Balanced: no shard holds more than the lightest plus the longest file. */
  double load[4] = {0}, longest = 0;
  for (int i = 0; i < n; i++) {
    double t = timeline_seconds(g.gl_pathv[i]);
    load[a[i]] += t;
    longest = t > longest ? t : longest;
  }
  double lo = load[1], hi = load[1];
  for (int s = 2; s <= 3; s++) {
    lo = load[s] < lo ? load[s] : lo;
    hi = load[s] > hi ? load[s] : hi;
  }
  cr_assert_leq(hi - lo, longest, "shards of %.0f s and %.0f s", lo, hi);
  globfree(&g);
}

Test(shard, bad_shard_is_a_usage_error_that_runs_nothing) {
  const char *bad[] = {"0/3", "4/3", "1/0", "x", "1/2/3", "2"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *argv[] = {T_FAULTLINE,
                    "run",
                    "--shard",
                    (char *)bad[i],
                    "--out",
                    dir,
                    FL_TEST_SOURCE_DIR "/scenarios/db-down.yaml",
                    NULL};
    struct t_run r;
    cr_assert_eq(t_run(argv, NULL, NULL, 10000, &r), 0);
    cr_assert_eq(r.status, 2, "--shard %s: exit %d", bad[i], r.status);
    cr_assert(strstr(r.err, "bad --shard") != NULL, "--shard %s: %s", bad[i],
              r.err);
    t_run_free(&r);
  }
}

static int merge(struct t_run *r, const char *a, const char *b) {
  char out[300];
  snprintf(out, sizeof(out), "%s/merged", dir);
  char *argv[] = {T_FAULTLINE, "report", "merge", (char *)a,
                  (char *)b,   "--out",  out,     NULL};
  cr_assert_eq(t_run(argv, NULL, NULL, 20000, r), 0);
  return r->status;
}

Test(shard, merge_joins_results_and_recounts) {
  struct t_run r;
  int status = merge(&r, RESULTS "/resilient.json", RESULTS "/fragile.json");
  /* fragile.json holds an ERROR: the merged suite is an ERROR too. */
  cr_assert_eq(status, 3, "exit %d: %s", status, r.err);
  t_run_free(&r);
  char path[300];
  snprintf(path, sizeof(path), "%s/merged/result.json", dir);
  json_error_t je;
  json_t *m = json_load_file(path, 0, &je);
  json_t *a = json_load_file(RESULTS "/resilient.json", 0, &je);
  json_t *b = json_load_file(RESULTS "/fragile.json", 0, &je);
  cr_assert(m && a && b);
  size_t na = json_array_size(json_object_get(a, "scenarios"));
  size_t nb = json_array_size(json_object_get(b, "scenarios"));
  cr_assert_eq(json_array_size(json_object_get(m, "scenarios")), na + nb);
  cr_assert_str_eq(json_string_value(json_object_get(m, "verdict")), "ERROR");
  json_t *counts = json_object_get(m, "counts");
  json_int_t total = 0;
  const char *k;
  json_t *v;
  json_object_foreach(counts, k, v) total += json_integer_value(v);
  cr_assert_eq(total, (json_int_t)(na + nb));
  cr_assert_eq(json_integer_value(json_object_get(counts, "PASS")),
               json_integer_value(
                   json_object_get(json_object_get(a, "counts"), "PASS")) +
                   json_integer_value(
                       json_object_get(json_object_get(b, "counts"), "PASS")));
  snprintf(path, sizeof(path), "%s/merged/report.html", dir);
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "no merged report.html");
  fclose(f);
  json_decref(m);
  json_decref(a);
  json_decref(b);
}

Test(shard, merge_refuses_overlapping_shards) {
  struct t_run r;
  int status = merge(&r, RESULTS "/resilient.json", RESULTS "/resilient.json");
  cr_assert_eq(status, 2);
  cr_assert(strstr(r.err, "already in another result") != NULL, "%s", r.err);
  t_run_free(&r);
}

/* Every `faultline ...` command line of the workflow, its flags checked
 * against the command's own help. */
Test(shard, github_workflow_is_valid_and_uses_real_flags) {
  char *argv[] = {
      "python3", "-c",
      "import sys,yaml,re\n"
      "w=yaml.safe_load(open(sys.argv[1]))\n"
      "assert 'jobs' in w and w['jobs'], 'no jobs'\n"
      "runs=[s['run'] for j in w['jobs'].values() for s in j['steps'] if "
      "'run' in s]\n"
      "text=' '.join(r.replace('\\\\\\n',' ') for r in runs)\n"
      "for m in re.finditer(r'faultline (run|report merge)([^\\n|;&]*)', "
      "text):\n"
      "  print(m.group(1), ' '.join(re.findall(r'--[a-z-]+', m.group(2))))\n",
      FL_TEST_SOURCE_DIR "/docs/ci/github-actions.yml", NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 20000, &r), 0);
  cr_assert_eq(r.status, 0, "the workflow is not valid YAML: %s", r.err);
  cr_assert(strstr(r.out, "run ") != NULL, "no faultline run: %s", r.out);
  cr_assert(strstr(r.out, "report merge") != NULL, "no merge: %s", r.out);
  struct t_run run_help, report_help;
  char *rh[] = {T_FAULTLINE, "help", "run", NULL};
  char *ph[] = {T_FAULTLINE, "report", "--help", NULL};
  cr_assert_eq(t_run(rh, NULL, NULL, 10000, &run_help), 0);
  cr_assert_eq(t_run(ph, NULL, NULL, 10000, &report_help), 0);
  for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
    const char *help =
        strncmp(line, "run", 3) == 0 ? run_help.out : report_help.out;
    char *flags = strstr(line, "--");
    for (char *f = flags ? strtok_r(flags, " ", &flags) : NULL; f;
         f = strtok_r(NULL, " ", &flags))
      cr_assert(strstr(help, f) != NULL,
                "the workflow's '%s' uses %s, which "
                "its help does not name",
                line, f);
  }
  t_run_free(&r);
  t_run_free(&run_help);
  t_run_free(&report_help);
}
