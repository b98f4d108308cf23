/* Scenario and service files (YAML), and ${VAR} expansion. The first byte
 * chooses which loader reads the rest. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "scenario/scenario.h"

static const char *lookup(const char *name, void *arg) {
  (void)arg;
  return strcmp(name, "PORT") == 0 ? "8080" : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  if (n == 0)
    return 0;
  const char *path = fuzz_file(data + 1, n - 1);
  char err[1024];
  if (path == NULL)
    return 0;
  if (data[0] & 1) {
    struct fl_service *sv = NULL;
    if (fl_service_load(path, &sv, err, sizeof(err)) == 0)
      fl_service_free(sv);
  } else {
    struct fl_scenario *sc = NULL;
    if (fl_scenario_load(path, &sc, err, sizeof(err)) == 0)
      fl_scenario_free(sc);
  }
  if (data[0] & 2) {
    char *text = fuzz_cstr(data + 1, n - 1);
    char *out = text ? fl_expand(text, lookup, NULL, err, sizeof(err)) : NULL;
    free(out);
    free(text);
  }
  return 0;
}
