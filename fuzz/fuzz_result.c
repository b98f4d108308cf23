/* The result.json loader of `faultline report`, and the renderers on
 * whatever it accepts. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>

#include "fuzz_util.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  const char *path = fuzz_file(data, n);
  if (path == NULL)
    return 0;
  json_t *result = NULL;
  char err[512];
  if (fl_report_load(path, &result, err, sizeof(err)) != 0)
    return 0;
  FILE *sink = fopen("/dev/null", "w");
  if (sink != NULL) {
    (void)fl_report_html(result, sink);
    (void)fl_report_markdown(result, sink);
    (void)fl_report_junit(result, sink);
    (void)fl_report_summary(result, sink, 1);
    fclose(sink);
  }
  json_decref(result);
  return 0;
}
