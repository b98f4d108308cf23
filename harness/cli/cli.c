/* What both of the CLI's programs share. */
#include <stdarg.h>
#include <stdio.h>

#include "cli.h"

void fl_say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("faultline: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}
