/* What both of the CLI's programs share. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "cli.h"

void fl_say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("faultline: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

int fl_opt_seed(const char *arg, uint64_t *seed) {
  char *end;
  errno = 0;
  *seed = strtoull(arg, &end, 0);
  if (errno != 0 || *end != '\0' || arg[0] == '-') {
    fl_say("bad --seed '%s' (allowed: a whole number)", arg);
    return FL_EXIT_USAGE;
  }
  return 0;
}

int fl_opt_bad(const char *cmd, int c, const char *arg) {
  if (c == ':')
    fl_say("%s: %s needs a value (see faultline %s --help)", cmd, arg, cmd);
  else
    fl_say("%s: unknown option '%s' (see faultline %s --help)", cmd, arg, cmd);
  return FL_EXIT_USAGE;
}
