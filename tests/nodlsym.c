/*
 * A dlsym that refuses the shim, for test_cli: preloaded beside
 * libfaultline-preload.so, it answers NULL to the shim's own lookups so
 * the shim's first-use set-up fails the way a loader that will not help
 * would. FL_TEST_NODLSYM=next refuses RTLD_NEXT lookups only (the shim
 * then asks libc directly); =all refuses every lookup the shim makes.
 * Everyone else's lookups pass through to libc's dlsym.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

static int from_shim(const void *caller) {
  Dl_info info;
  return dladdr(caller, &info) != 0 && info.dli_fname != NULL &&
         strstr(info.dli_fname, "libfaultline-preload") != NULL;
}

void *dlsym(void *handle, const char *name) {
  static void *(*real)(void *, const char *);
  if (real == NULL) /* glibc 2.34 moved dlsym into libc; older: 2.2.5 */
    real = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym",
                                                   "GLIBC_2.34");
  if (real == NULL)
    real = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym",
                                                   "GLIBC_2.2.5");
  const char *mode = getenv("FL_TEST_NODLSYM");
  if (mode != NULL && from_shim(__builtin_return_address(0)) &&
      (strcmp(mode, "all") == 0 || handle == RTLD_NEXT))
    return NULL;
  return real != NULL ? real(handle, name) : NULL;
}
