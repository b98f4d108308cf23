/* Durations, sizes, percentages, rates, and HTTP-dates (Retry-After). */
#define _GNU_SOURCE
#include <stdlib.h>

#include "base/base.h"
#include "expect/expect.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n == 0)
    return 0;
  unsigned flags = data[0] & 7u;
  /* An exact-size copy without a NUL: the parsers take a length and must
   * never read past it. */
  char *s = malloc(n - 1 ? n - 1 : 1);
  if (s == NULL)
    return 0;
  for (size_t i = 1; i < n; i++)
    s[i - 1] = (char)data[i];
  double v;
  (void)fl_parse_duration(s, n - 1, flags, &v);
  (void)fl_parse_size(s, n - 1, flags, &v);
  (void)fl_parse_percent(s, n - 1, flags, &v);
  (void)fl_parse_rate(s, n - 1, &v);
  free(s);
  char *text = fuzz_cstr(data + 1, n - 1);
  long long when;
  if (text != NULL)
    (void)fl_http_date_parse(text, &when);
  free(text);
  return 0;
}
