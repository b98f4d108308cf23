/* faultline from other people's builds: `cmake --install` to a prefix,
 * then examples/cmake (find_package(faultline) and
 * faultline_add_scenario()) configured against it and run by ctest, with
 * real services: a scenario that passes, one that fails, and one whose
 * service cannot start (an ERROR, which ctest reports as skipped, with
 * faultline's reason in its JUnit output). And pkg-config's view of the
 * same prefix. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support.h"

static char dir[256];

static void setup(void) { cr_assert_eq(t_mkdtemp(dir), 0); }
static void teardown(void) { t_rmtree(dir); }

TestSuite(package, .init = setup, .fini = teardown, .timeout = 300);

static struct t_run run(int timeout_ms, const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  char *argv[] = {"/bin/sh", "-c", cmd, NULL};
  struct t_run r;
  cr_assert_eq(t_run(argv, NULL, NULL, timeout_ms, &r), 0, "cannot run %s",
               cmd);
  return r;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  cr_assert_not_null(f, "%s is missing", path);
  static char buf[1 << 16];
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* The <testcase> element of `name` in ctest's JUnit output. */
static const char *testcase(const char *junit, const char *name) {
  char needle[128];
  snprintf(needle, sizeof(needle), "<testcase name=\"%s\"", name);
  const char *at = strstr(junit, needle);
  cr_assert_not_null(at, "no test %s in ctest's JUnit output", name);
  return at;
}

static void install_prefix(void) {
  struct t_run r = run(120000, "cmake --install '%s' --prefix '%s/prefix'",
                       FL_TEST_BUILD_DIR, dir);
  cr_assert_eq(r.status, 0, "cmake --install failed: %s", r.err);
  t_run_free(&r);
}

Test(package, pkg_config_names_the_installed_files) {
  install_prefix();
  struct t_run r = run(10000,
                       "PKG_CONFIG_PATH='%s/prefix/lib/pkgconfig' pkg-config "
                       "--variable=shim faultline",
                       dir);
  cr_assert_eq(r.status, 0, "pkg-config: %s", r.err);
  r.out[strcspn(r.out, "\n")] = '\0';
  struct stat st;
  cr_assert_eq(stat(r.out, &st), 0, "pkg-config's shim %s does not exist",
               r.out);
  t_run_free(&r);
  r = run(10000,
          "export PKG_CONFIG_PATH='%s/prefix/lib/pkgconfig'; "
          "\"$(pkg-config --variable=faultline faultline)\" list",
          dir);
  cr_assert_eq(r.status, 0, "the faultline that pkg-config names does not run");
  cr_assert(strstr(r.out, "refuse") != NULL);
  t_run_free(&r);
}

Test(package, cmake_project_registers_scenarios_as_ctest_tests) {
  install_prefix();
  struct t_run r = run(120000,
                       "cmake -S '%s/examples/cmake' -B '%s/example' "
                       "-DCMAKE_PREFIX_PATH='%s/prefix'",
                       FL_TEST_SOURCE_DIR, dir, dir);
  cr_assert_eq(r.status, 0, "configuring examples/cmake failed: %s", r.err);
  t_run_free(&r);
  r = run(280000, "cd '%s/example' && ctest -j2 --output-junit ctest.xml", dir);
  /* One test failed, so ctest exits non-zero. */
  cr_assert_neq(r.status, 0, "ctest passed with a failing scenario: %s", r.out);
  t_run_free(&r);

  char path[512];
  snprintf(path, sizeof(path), "%s/example/ctest.xml", dir);
  const char *junit = slurp(path);
  const char *resilient = testcase(junit, "db-down-resilient");
  cr_assert(strncmp(strstr(resilient, "status="), "status=\"run\"", 12) == 0,
            "the resilient scenario did not pass");
  const char *fragile = testcase(junit, "db-down-fragile");
  cr_assert(strncmp(strstr(fragile, "status="), "status=\"fail\"", 13) == 0,
            "the fragile scenario did not fail");
  const char *missing = testcase(junit, "db-down-missing");
  cr_assert(strncmp(strstr(missing, "status="), "status=\"notrun\"", 15) == 0,
            "the scenario whose service cannot start was not skipped");
  cr_assert(strstr(missing, "exited with status 127 while starting") != NULL,
            "the skip does not carry faultline's reason");
  /* Each run's own folder holds its reports. */
  snprintf(path, sizeof(path),
           "%s/example/faultline/db-down-resilient/junit.xml", dir);
  cr_assert(strstr(slurp(path), "<testsuite") != NULL);
}
