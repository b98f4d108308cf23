/* faultline(1) and faultline-scenario(5) are written from the program's own
 * help at build time: each page is valid roff (groff warns of nothing),
 * holds every help topic's text, and is installed by cmake --install. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support.h"

#define MAN FL_TEST_BUILD_DIR "/man"

TestSuite(manpages, .timeout = 60);

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s is missing", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static struct t_run run(char *const argv[]) {
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, 20000, &r), 0, "cannot run %s", argv[0]);
  return r;
}

/* Each line of `faultline help TOPIC` (roff-escaped as the generator does
 * for backslashes) stands in the page. */
static void holds_topic(const char *page, const char *topic) {
  char *argv[] = {T_FAULTLINE, "help", (char *)topic, NULL};
  struct t_run r = run(argv);
  cr_assert_eq(r.status, 0, "faultline help %s: %s", topic, r.err);
  for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
    if (strchr(line, '\\') != NULL || line[0] == '.' || line[0] == '\'')
      continue; /* escaped in roff */
    cr_assert(strstr(page, line) != NULL,
              "the page lacks this line of 'faultline help %s': %s", topic,
              line);
  }
  t_run_free(&r);
}

Test(manpages, faultline_1_holds_every_command_and_the_faults) {
  char *page = slurp(MAN "/faultline.1");
  cr_assert(strncmp(page, ".TH FAULTLINE 1 ", 16) == 0);
  const char *topics[] = {"run",    "validate", "exec",   "inject", "clear",
                          "status", "list",     "faults", "report", "audit"};
  for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
    holds_topic(page, topics[i]);
  free(page);
}

Test(manpages, faultline_scenario_5_holds_the_file_format) {
  char *page = slurp(MAN "/faultline-scenario.5");
  cr_assert(strncmp(page, ".TH FAULTLINE-SCENARIO 5 ", 25) == 0);
  holds_topic(page, "scenario");
  free(page);
}

Test(manpages, pages_are_valid_roff) {
  char *argv[] = {"groff",
                  "-man",
                  "-ww",
                  "-z",
                  MAN "/faultline.1",
                  MAN "/faultline-scenario.5",
                  NULL};
  struct t_run r = run(argv);
  cr_assert_eq(r.status, 0, "groff: %s", r.err);
  cr_assert_eq(r.err[0], '\0', "groff warns: %s", r.err);
  t_run_free(&r);
}

Test(manpages, installed_with_the_program) {
  char dir[256];
  cr_assert_eq(t_mkdtemp(dir), 0);
  char prefix[300];
  snprintf(prefix, sizeof(prefix), "%s/p", dir);
  char *argv[] = {"cmake",    "--install", FL_TEST_BUILD_DIR,
                  "--prefix", prefix,      NULL};
  struct t_run r = run(argv);
  cr_assert_eq(r.status, 0, "cmake --install: %s", r.err);
  t_run_free(&r);
  char path[400];
  struct stat st;
  snprintf(path, sizeof(path), "%s/share/man/man1/faultline.1", prefix);
  cr_assert_eq(stat(path, &st), 0, "%s not installed", path);
  snprintf(path, sizeof(path), "%s/share/man/man5/faultline-scenario.5",
           prefix);
  cr_assert_eq(stat(path, &st), 0, "%s not installed", path);
  t_rmtree(dir);
}
