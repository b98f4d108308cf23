/* faultline-run: the scenario commands, exec'd by faultline as
 * `faultline-run COMMAND ARGS...` (see main.c for why they are apart). */
#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli.h"

static const struct {
  const char *name;
  int (*run)(int argc, char **argv);
} commands[] = {
    {"run", fl_cmd_run},       {"validate", fl_cmd_validate},
    {"report", fl_cmd_report}, {"serve", fl_cmd_serve},
    {"stub", fl_cmd_stub},     {"wsstub", fl_cmd_wsstub},
    {"audit", fl_cmd_audit},
};

int main(int argc, char **argv) {
  if (argc >= 2)
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
      if (strcmp(argv[1], commands[i].name) == 0)
        return commands[i].run(argc - 1, argv + 1);
  fl_say("faultline-run is started by faultline; use 'faultline run', "
         "'faultline validate', 'faultline report' or 'faultline serve'");
  return FL_EXIT_USAGE;
}
