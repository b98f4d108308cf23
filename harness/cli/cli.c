/* What both of the CLI's programs share. */
#include <errno.h>
#include <getopt.h>
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

int fl_opt_parse(const struct fl_opts *spec, int argc, char **argv, void *arg) {
  opterr = 0;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, spec->shortopts, spec->longs, NULL)) !=
         -1) {
    if (c == 'h') {
      fl_usage(spec->cmd);
      return -1;
    }
    if (c == '?' || c == ':')
      return fl_opt_bad(spec->cmd, c, argv[optind - 1]);
    int status = spec->take(c, optarg, arg);
    if (status != 0)
      return status;
  }
  if (optind >= argc) {
    fl_say("%s: %s", spec->cmd, spec->missing);
    return FL_EXIT_USAGE;
  }
  return 0;
}
