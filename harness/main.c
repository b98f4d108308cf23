#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "errors.h"

void fl_say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("faultline: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"exec", fl_cmd_exec},     {"inject", fl_cmd_inject},
    {"clear", fl_cmd_clear},   {"status", fl_cmd_status},
    {"run", fl_cmd_run},       {"validate", fl_cmd_validate},
    {"report", fl_cmd_report}, {"help", fl_cmd_help},
};

int main(int argc, char **argv) {
  if (argc < 2) {
    fl_usage(NULL);
    return FL_EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
    return fl_cmd_help(argc - 1, argv + 1);
  if (strcmp(cmd, "--version") == 0) {
    puts("faultline " FL_VERSION);
    return FL_EXIT_OK;
  }
  for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if (strcmp(cmd, commands[i].name) == 0)
      return commands[i].run(argc - 1, argv + 1);
  fl_say("unknown command '%s' (allowed: run, validate, report, exec, inject, "
         "clear, "
         "status, help)",
         cmd);
  return FL_EXIT_USAGE;
}
