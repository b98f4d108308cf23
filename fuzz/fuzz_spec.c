/* The fault-spec grammar (`faultline inject SPEC`, `exec --fault SPEC`). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>

#include "faults/faults.h"
#include "fuzz_util.h"

/* Host names in specs are resolved when parsed: keep the fuzzer off the
 * network by allowing numeric addresses only. */
int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res) {
  static int (*real)(const char *, const char *, const struct addrinfo *,
                     struct addrinfo **);
  if (real == NULL)
    real = (int (*)(const char *, const char *, const struct addrinfo *,
                    struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
  struct addrinfo h = {0};
  if (hints != NULL)
    h = *hints;
  h.ai_flags |= AI_NUMERICHOST;
  return real(node, service, &h, res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  char *spec = fuzz_cstr(data, n);
  if (spec == NULL)
    return 0;
  struct fl_rule rule;
  char err[512];
  (void)fl_spec_parse(spec, &rule, err, sizeof(err));
  free(spec);
  return 0;
}
