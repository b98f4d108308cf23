/* faultline: the command users type. It links only libc and libuv, so
 * `faultline inject` starts in well under a millisecond and a fault is
 * switched on about as fast as a timeline switches it. Scenario commands
 * (run, validate, report) need libcurl, libpq, libyaml and jansson, whose
 * loading alone costs several milliseconds; they live in faultline-run,
 * installed beside this program, which is exec'd with the same arguments. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"
#include "cli.h"

#define RUNNER_NAME "faultline-run"

static int exec_runner(char **argv) {
  char path[PATH_MAX];
  if (fl_find_beside(RUNNER_NAME, path, sizeof(path)) != 0) {
    fl_say("cannot find %s beside the faultline program or in "
           "../lib/faultline/ (is the installation complete?)",
           RUNNER_NAME);
    return FL_EXIT_ENV;
  }
  argv[0] = path;
  execv(path, argv);
  fl_say("cannot start %s: %s", path, strerror(errno));
  return FL_EXIT_ENV;
}

static int help(int argc, char **argv) {
  if (argc < 2) {
    fl_usage(NULL);
    return FL_EXIT_OK;
  }
  if (strcmp(argv[1], "report") == 0) {
    char *args[] = {"faultline", "report", "--help", NULL};
    return exec_runner(args);
  }
  if (fl_usage_topic(argv[1]) == 0)
    return FL_EXIT_OK;
  char list[256];
  fl_usage_topics(list, sizeof(list));
  fl_say("help: unknown topic '%s' (allowed: report, %s)", argv[1], list);
  return FL_EXIT_USAGE;
}

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"exec", fl_cmd_exec},   {"inject", fl_cmd_inject},
    {"clear", fl_cmd_clear}, {"status", fl_cmd_status},
    {"list", fl_cmd_list},   {"help", help},
};

static const char *const runner_commands[] = {"run", "validate", "report",
                                              "serve", "audit"};

int main(int argc, char **argv) {
  if (argc < 2) {
    fl_usage(NULL);
    return FL_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
    return help(argc - 1, argv + 1);
  if (strcmp(cmd, "--version") == 0) {
    puts("faultline " FL_VERSION);
    return FL_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(cmd, commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  for (size_t i = 0; i < sizeof(runner_commands) / sizeof(runner_commands[0]);
       i++)
    if (strcmp(cmd, runner_commands[i]) == 0)
      return exec_runner(argv);
  fl_say("unknown command '%s' (allowed: run, validate, report, audit, exec, "
         "inject, clear, status, list, serve, help)",
         cmd);
  return FL_EXIT_USAGE;
}
