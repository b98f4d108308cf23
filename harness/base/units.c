/*
 * Units: one reading of durations, sizes, percentages and rates for every
 * grammar that takes them (scenario files, fault specs, expectations).
 * Each function reads one whole token of `len` characters (not
 * NUL-terminated, so a tokenizer can pass a slice) and returns 0, or
 * -EINVAL when the token is not one; callers word their own messages.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base.h"

/* A value is number * mul / div: dividing keeps 990ms exactly the double
 * nearest 0.99, as a recorded latency of 0.99 s is. */
struct unit {
  const char *name;
  double mul, div;
  unsigned flags; /* FL_UNITS_* that must be set for this spelling */
};

static const struct unit duration_units[] = {
    {"ms", 1, 1000, 0}, {"s", 1, 1, 0}, {"m", 60, 1, 0}, {"min", 60, 1, 0}};

/* Powers of 1024, as in /proc. The one-letter spellings are the fault
 * specs' (64k, 1m); elsewhere m would read as minutes or metres. */
static const struct unit size_units[] = {
    {"B", 1, 1, 0},
    {"kB", 1024, 1, 0},
    {"KB", 1024, 1, 0},
    {"KiB", 1024, 1, 0},
    {"MB", 1048576, 1, 0},
    {"MiB", 1048576, 1, 0},
    {"GB", 1073741824, 1, 0},
    {"GiB", 1073741824, 1, 0},
    {"k", 1024, 1, FL_UNITS_SHORT},
    {"K", 1024, 1, FL_UNITS_SHORT},
    {"m", 1048576, 1, FL_UNITS_SHORT},
    {"M", 1048576, 1, FL_UNITS_SHORT},
    {"g", 1073741824, 1, FL_UNITS_SHORT},
    {"G", 1073741824, 1, FL_UNITS_SHORT},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

size_t fl_scan_number(const char *s, size_t len, double *v) {
  size_t i = 0;
  while (i < len && isdigit((unsigned char)s[i]))
    i++;
  if (i == 0)
    return 0;
  if (i < len && s[i] == '.') {
    size_t j = i + 1;
    while (j < len && isdigit((unsigned char)s[j]))
      j++;
    if (j == i + 1)
      return 0;
    i = j;
  }
  char buf[64];
  if (i >= sizeof(buf))
    return 0;
  memcpy(buf, s, i);
  buf[i] = '\0';
  *v = strtod(buf, NULL);
  return isfinite(*v) ? i : 0;
}

static int with_unit(const char *s, size_t len, unsigned flags,
                     const struct unit *units, size_t nunits, double *out) {
  double v = 0;
  size_t n = fl_scan_number(s, len, &v);
  if (n == 0)
    return -EINVAL;
  if (n == len) {
    if (!(flags & FL_UNITS_BARE))
      return -EINVAL;
    *out = v;
    return 0;
  }
  for (size_t i = 0; i < nunits; i++) {
    const struct unit *u = &units[i];
    if ((u->flags & flags) == u->flags && len - n == strlen(u->name) &&
        memcmp(s + n, u->name, len - n) == 0) {
      *out = v * u->mul / u->div;
      return 0;
    }
  }
  return -EINVAL;
}

int fl_parse_duration(const char *s, size_t len, unsigned flags,
                      double *seconds) {
  return with_unit(s, len, flags, duration_units, COUNT(duration_units),
                   seconds);
}

int fl_parse_size(const char *s, size_t len, unsigned flags, double *bytes) {
  return with_unit(s, len, flags, size_units, COUNT(size_units), bytes);
}

int fl_parse_percent(const char *s, size_t len, unsigned flags, double *pct) {
  double v = 0;
  size_t n = fl_scan_number(s, len, &v);
  if (n == 0)
    return -EINVAL;
  if (n == len && (flags & FL_UNITS_FRACTION))
    v *= 100.0;
  else if (n + 1 != len || s[n] != '%')
    return -EINVAL;
  if (v > 100.0)
    return -EINVAL;
  *pct = v;
  return 0;
}

int fl_parse_rate(const char *s, size_t len, double *per_second) {
  double v = 0;
  size_t n = fl_scan_number(s, len, &v);
  if (n == 0)
    return -EINVAL;
  if (n == len || (len - n == 2 && memcmp(s + n, "/s", 2) == 0))
    *per_second = v;
  else if (len - n == 2 && memcmp(s + n, "/m", 2) == 0)
    *per_second = v / 60.0;
  else
    return -EINVAL;
  return 0;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

void fl_sort_values(double *v, size_t n) { qsort(v, n, sizeof(*v), by_value); }

double fl_percentile(const double *sorted, size_t n, double p) {
  if (n == 0)
    return NAN;
  /* The epsilon keeps 99 * 100 / 100 from becoming 100. */
  double rank = ceil(p * (double)n / 100.0 - 1e-9);
  size_t r = rank < 1 ? 1 : rank > (double)n ? n : (size_t)rank;
  return sorted[r - 1];
}
