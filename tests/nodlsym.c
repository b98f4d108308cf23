/*
 * A dlsym and an mmap that refuse the shim, for test_cli: preloaded after
 * libfaultline-preload.so, they fail the shim's own calls so its
 * first-use set-up fails the way a loader or a kernel that will not help
 * would. FL_TEST_NODLSYM=next refuses RTLD_NEXT lookups only (the shim
 * then asks libc directly); =all refuses every lookup the shim makes.
 * FL_TEST_NOMMAP=1 fails the shim's mmap calls with ENOMEM (its control
 * segment cannot be mapped). Everyone else's calls pass through.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

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

/* The system call itself for everyone else: asking libc for its mmap
 * would need dlsym, which may allocate, which may mmap. */
void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  const char *mode = getenv("FL_TEST_NOMMAP");
  if (mode != NULL && mode[0] == '1' &&
      from_shim(__builtin_return_address(0))) {
    errno = ENOMEM;
    return MAP_FAILED;
  }
  return (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}
