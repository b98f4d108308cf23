/* The expectation grammar (a scenario's `expect:` lines). */
#define _GNU_SOURCE
#include <stdlib.h>

#include "expect/expect.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  char *text = fuzz_cstr(data, n);
  if (text == NULL)
    return 0;
  struct fl_expect e;
  int col = 0;
  char err[512];
  (void)fl_expect_parse(text, &e, &col, err, sizeof(err));
  free(text);
  return 0;
}
