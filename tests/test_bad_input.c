/*
 * Bad input, a corpus: `faultline validate` on every file of
 * tests/data/bad (one file per error message the scenario and service
 * loader can give, NAME.yaml beside NAME.expected, the exact message), and
 * on generated inputs past the loader's limits (nesting, size), made in a
 * temporary folder. Each answer: the expected one-line message on stderr,
 * exit status 2, in well under a second.
 *
 * In NAME.expected, @DIR@ stands for the absolute path of tests/data/bad
 * (a message about another file names it by its resolved path).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

#define BAD_DIR T_DATA "/bad"
/* Well under a second; an AddressSanitizer build of faultline starts
 * several times slower, so it is held to a looser bound. */
#if defined(__SANITIZE_ADDRESS__)
#define LIMIT_MS 5000
#else
#define LIMIT_MS 1000
#endif

/* Runs `faultline validate FILE` in `dir`; its stderr in r, its time. */
static long long validate(const char *dir, const char *file, struct t_run *r) {
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "cd '%s' && exec '%s' validate '%s'", dir,
           T_FAULTLINE, file);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  long long t0 = t_now_ms();
  cr_assert_eq(t_run(argv, NULL, NULL, 30000, r), 0);
  return t_now_ms() - t0;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  char *buf = NULL;
  size_t cap = 0;
  ssize_t n = getdelim(&buf, &cap, '\0', f);
  fclose(f);
  if (n < 0) {
    free(buf);
    return strdup("");
  }
  return buf;
}

/* The expected text with @DIR@ replaced by the corpus folder. */
static void expand_dir(const char *in, char *out, size_t size) {
  size_t at = 0;
  for (const char *p = in; *p != '\0' && at + 1 < size;) {
    if (strncmp(p, "@DIR@", 5) == 0) {
      at += (size_t)snprintf(out + at, size - at, "%s", BAD_DIR);
      p += 5;
    } else {
      out[at++] = *p++;
    }
  }
  out[at < size ? at : size - 1] = '\0';
}

/* Checks one corpus file; 0, or 1 after describing what was wrong. */
static int check_one(const char *name, char *why, size_t whylen) {
  char path[512], want[2048];
  snprintf(path, sizeof(path), "%s/%.*s.expected", BAD_DIR,
           (int)(strlen(name) - 5), name);
  char *expected = slurp(path);
  if (expected == NULL) {
    snprintf(why, whylen, "%s: no %s beside it", name, path);
    return 1;
  }
  expand_dir(expected, want, sizeof(want));
  free(expected);
  struct t_run r;
  long long ms = validate(BAD_DIR, name, &r);
  int bad = 1;
  if (r.status != 2)
    snprintf(why, whylen, "%s: exit status %d, expected 2 (stderr: %s)", name,
             r.status, r.err);
  else if (strcmp(r.err, want) != 0)
    snprintf(why, whylen, "%s:\n  got      %s  expected %s", name, r.err, want);
  else if (ms >= LIMIT_MS)
    snprintf(why, whylen, "%s: answered in %lld ms", name, ms);
  else
    bad = 0;
  t_run_free(&r);
  return bad;
}

Test(bad_input, corpus, .timeout = 300) {
  DIR *dir = opendir(BAD_DIR);
  cr_assert_not_null(dir);
  int files = 0, bad = 0;
  char report[8192] = "";
  for (struct dirent *e; (e = readdir(dir)) != NULL;) {
    size_t n = strlen(e->d_name);
    if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0)
      continue;
    char why[4400];
    files++;
    if (check_one(e->d_name, why, sizeof(why)) != 0 && bad++ < 8)
      snprintf(report + strlen(report), sizeof(report) - strlen(report), "\n%s",
               why);
  }
  closedir(dir);
  cr_assert_gt(files, 100, "only %d files in %s", files, BAD_DIR);
  cr_assert_eq(bad, 0, "%d of %d bad files answered wrongly:%s", bad, files,
               report);
}

/* Every .expected has its .yaml: a renamed case does not go unchecked. */
Test(bad_input, no_orphan_expected, .timeout = 30) {
  DIR *dir = opendir(BAD_DIR);
  cr_assert_not_null(dir);
  for (struct dirent *e; (e = readdir(dir)) != NULL;) {
    size_t n = strlen(e->d_name);
    if (n < 10 || strcmp(e->d_name + n - 9, ".expected") != 0)
      continue;
    char yaml[512];
    struct stat st;
    snprintf(yaml, sizeof(yaml), "%s/%.*s.yaml", BAD_DIR, (int)(n - 9),
             e->d_name);
    cr_expect_eq(stat(yaml, &st), 0, "%s has no .yaml", e->d_name);
  }
  closedir(dir);
}

/* ---- generated inputs past the limits ---- */

static char tmp[256];

static void setup(void) { cr_assert_eq(t_mkdtemp(tmp), 0); }
static void teardown(void) { t_rmtree(tmp); }

/* Writes head, then `open` n times, then `close` n times, then tail. */
static void write_nested(const char *name, const char *head, const char *open,
                         const char *close, long n, const char *tail) {
  char path[400];
  snprintf(path, sizeof(path), "%s/%s", tmp, name);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs(head, f);
  for (long i = 0; i < n; i++)
    fputs(open, f);
  for (long i = 0; i < n; i++)
    fputs(close, f);
  fputs(tail, f);
  cr_assert_eq(fclose(f), 0);
}

/* Validates tmp/name: status 2, exactly `want` on stderr, in time. */
static void assert_refused(const char *name, const char *want) {
  struct t_run r;
  long long ms = validate(tmp, name, &r);
  cr_expect_eq(r.status, 2, "%s: exit status %d", name, r.status);
  cr_expect_str_eq(r.err, want, "%s", name);
  cr_expect_lt(ms, LIMIT_MS, "%s: answered in %lld ms", name, ms);
  t_run_free(&r);
}

TestSuite(bad_limits, .init = setup, .fini = teardown, .timeout = 120);

Test(bad_limits, deep_flow_lists) {
  write_nested("deep.yaml", "scenario: s\ntraffic: ", "[", "]", 100000, "\n");
  assert_refused("deep.yaml", "deep.yaml:2:73: nested too deeply (more than "
                              "64 levels of lists and mappings)\n");
}

Test(bad_limits, deep_flow_mappings) {
  write_nested("deep.yaml", "scenario: s\ntraffic: ", "{a: ", "}", 100000,
               "\n");
  assert_refused("deep.yaml", "deep.yaml:2:262: nested too deeply (more than "
                              "64 levels of lists and mappings)\n");
}

Test(bad_limits, deep_block_lists) {
  write_nested("deep.yaml", "scenario: s\ntraffic:\n", "- ", "", 100000, "x\n");
  assert_refused("deep.yaml", "deep.yaml:3:127: nested too deeply (more than "
                              "64 levels of lists and mappings)\n");
}

/* At the limit is fine: 64 levels load, and are judged on their content. */
Test(bad_limits, nesting_at_the_limit) {
  write_nested("ok.yaml", "scenario: s\ncolour: ", "[", "]", 63, "\n");
  /* Read whole: its every error is reported, the way a compiler does. */
  assert_refused("ok.yaml", "ok.yaml:2:1: unknown key 'colour' in a "
                            "scenario file (allowed: scenario, description, "
                            "service, seed, traffic, timeline, expect)\n"
                            "ok.yaml:1:1: scenario 's' needs traffic "
                            "(endpoints to request)\n"
                            "ok.yaml:1:1: scenario 's' needs a timeline (a "
                            "list of phases)\n");
}

/* 100 MB is refused from its size, without being read. */
Test(bad_limits, huge_file) {
  char path[400];
  snprintf(path, sizeof(path), "%s/huge.yaml", tmp);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  static char line[1 << 16];
  memset(line, '#', sizeof(line) - 1);
  line[sizeof(line) - 1] = '\n';
  for (int i = 0; i < 1600; i++)
    cr_assert_eq(fwrite(line, 1, sizeof(line), f), sizeof(line));
  cr_assert_eq(fclose(f), 0);
  assert_refused("huge.yaml", "huge.yaml: too large (more than 4 MB; a "
                              "scenario or service file is a few kilobytes)\n");
}

/* A pipe has no size to look at: it is read up to the limit, no further. */
Test(bad_limits, huge_pipe) {
  char cmd[1200];
  snprintf(cmd, sizeof(cmd),
           "head -c 100000000 /dev/zero | tr '\\0' '#' | '%s' validate "
           "/dev/stdin",
           T_FAULTLINE);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  struct t_run r;
  long long t0 = t_now_ms();
  cr_assert_eq(t_run(argv, NULL, NULL, 30000, &r), 0);
  cr_expect_eq(r.status, 2);
  cr_expect_str_eq(r.err, "/dev/stdin: too large (more than 4 MB; a scenario "
                          "or service file is a few kilobytes)\n");
  cr_expect_lt(t_now_ms() - t0, LIMIT_MS);
  t_run_free(&r);
}

/* Under the size limit, a wide file (a million values) is refused at the
 * 50 001st value, before libyaml builds a tree of it (1.8 s and 170 MB). */
Test(bad_limits, wide_file_under_the_size_limit) {
  char path[400];
  snprintf(path, sizeof(path), "%s/wide.yaml", tmp);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("scenario: s\ncolour: [", f);
  for (int i = 0; i < 1000000; i++)
    fputs("1,", f);
  fputs("1]\n", f);
  cr_assert_eq(fclose(f), 0);
  assert_refused("wide.yaml", "wide.yaml:2:100000: too many values (more "
                              "than 50000, counting what aliases repeat)\n");
}

/* Aliases of aliases ("a billion laughs"): each alias weighs what it
 * repeats, as the code reading the tree would walk it. */
Test(bad_limits, aliases_of_aliases) {
  char path[400];
  snprintf(path, sizeof(path), "%s/laughs.yaml", tmp);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("scenario: s\nl0: &l0 [x, x, x, x, x, x, x, x, x, x]\n", f);
  for (int i = 1; i <= 9; i++) {
    fprintf(f, "l%d: &l%d [", i, i);
    for (int k = 0; k < 10; k++)
      fprintf(f, "%s*l%d", k ? ", " : "", i - 1);
    fputs("]\n", f);
  }
  cr_assert_eq(fclose(f), 0);
  assert_refused("laughs.yaml", "laughs.yaml:6:25: too many values (more "
                                "than 50000, counting what aliases repeat)\n");
}

/* A few aliases, as a person would use them, load as usual. */
Test(bad_limits, aliases_in_moderation) {
  char path[400];
  snprintf(path, sizeof(path), "%s/anchors.yaml", tmp);
  FILE *f = fopen(path, "w");
  cr_assert_not_null(f);
  fputs("scenario: s\ntraffic:\n  a: &ep { request: GET /x, rate: 5 }\n"
        "  b: *ep\ntimeline:\n  - { phase: p, duration: 1s }\n"
        "  - { phase: q, duration: 1s }\nexpect:\n  p: &ex [alive]\n"
        "  q: *ex\n",
        f);
  cr_assert_eq(fclose(f), 0);
  struct t_run r;
  validate(tmp, "anchors.yaml", &r);
  cr_expect_eq(r.status, 0, "%s", r.err);
  cr_expect_str_eq(r.out, "anchors.yaml: ok (scenario s)\n");
  t_run_free(&r);
}

Test(bad_limits, directory) {
  assert_refused(".", ".: cannot read: Is a directory\n");
}
