/*
 * Start-up of the shim: resolve the real libc functions, map the control
 * segment named by FAULTLINE_CONTROL, and point the fast-path gate at it.
 *
 * A preloaded library's wrappers can run before its constructor (another
 * library's constructor may connect or open a file). Until then every
 * wrapper passes through: the gate reads a constant zero and the wrappers
 * fall back to raw syscalls while fl_real_* are still NULL.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/lib-names.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define FL_X_DEF(ret, name, params) FL_HIDDEN ret(*fl_real_##name) params;
FL_REAL_SYMBOLS(FL_X_DEF)
#undef FL_X_DEF

static _Atomic uint32_t zero_ops;
FL_HIDDEN _Atomic uint32_t *fl_ops_word = &zero_ops;
FL_HIDDEN _Atomic int fl_pid;

static const struct fl_ctl_header *header;
FL_HIDDEN struct fl_ctl_stats *fl_stats;

FL_HIDDEN uint32_t fl_generation(void) {
  const struct fl_ctl_header *h = header;
  return h ? atomic_load_explicit(&h->generation, memory_order_acquire) : 0;
}

FL_HIDDEN const struct fl_ctl_header *fl_header(void) { return header; }

FL_HIDDEN struct fl_usage *fl_recording(void) {
  const struct fl_ctl_header *h = header;
  if (h == NULL || !atomic_load_explicit(&h->record, memory_order_acquire))
    return NULL;
  return &fl_stats->usage;
}

/* One line on stderr, with no stdio (no allocation, no locks). */
static void say(const char *a, const char *b, const char *c, const char *d) {
  const char *parts[] = {a, b, c, d, "\n"};
  for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
    (void)!syscall(SYS_write, 2, parts[i], strlen(parts[i]));
}

static void complain(const char *path, const char *why) {
  say("faultline: ignoring control segment ", path, ": ", why);
}

static const char *check_header(const struct fl_ctl_header *h) {
  if (h->magic != FL_CTL_MAGIC)
    return "not a faultline control segment (bad magic)";
  if (h->version != FL_CTL_VERSION)
    return "made by another faultline version";
  if (h->header_size != sizeof(struct fl_ctl_header) ||
      h->stats_offset != FL_CTL_STATS_OFFSET ||
      h->total_size != FL_CTL_TOTAL_SIZE || h->max_rules != FL_MAX_RULES ||
      h->ring_size != FL_RING_SIZE)
    return "layout does not match this shim";
  return NULL;
}

static void map_segment(const char *path) {
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    complain(path, strerror(errno));
    return;
  }
  struct stat st;
  const char *why = NULL;
  if (fstat(fd, &st) != 0)
    why = strerror(errno);
  else if (!S_ISREG(st.st_mode))
    why = "not a regular file";
  else if (st.st_uid != geteuid())
    why = "owned by another user";
  else if ((st.st_mode & 077) != 0)
    why = "readable or writable by others (must be 0600)";
  else if ((size_t)st.st_size != FL_CTL_TOTAL_SIZE)
    why = "wrong size (truncated or foreign file)";
  void *ro = MAP_FAILED, *rw = MAP_FAILED;
  if (why == NULL) {
    ro = mmap(NULL, FL_CTL_STATS_OFFSET, PROT_READ, MAP_SHARED, fd, 0);
    if (ro == MAP_FAILED)
      why = strerror(errno);
    else
      why = check_header(ro);
  }
  if (why == NULL) {
    rw = mmap(NULL, FL_CTL_TOTAL_SIZE - FL_CTL_STATS_OFFSET,
              PROT_READ | PROT_WRITE, MAP_SHARED, fd, FL_CTL_STATS_OFFSET);
    if (rw == MAP_FAILED)
      why = strerror(errno);
  }
  syscall(SYS_close, fd);
  if (why != NULL) {
    complain(path, why);
    if (ro != MAP_FAILED)
      munmap(ro, FL_CTL_STATS_OFFSET);
    return;
  }
  header = ro;
  fl_stats = rw;
  /* Publish last: a wrapper that sees the gate open finds the maps ready. */
  atomic_thread_fence(memory_order_release);
  fl_ops_word = (_Atomic uint32_t *)&header->ops;
}

static void after_fork_child(void) {
  atomic_store_explicit(&fl_pid, (int)syscall(SYS_getpid),
                        memory_order_relaxed);
}

/* RTLD_NEXT finds libc's function when the shim is preloaded. When it
 * finds nothing (the shim dlopen()ed after libc, or a loader or a
 * dlsym wrapper that refuses), libc itself is asked, so the target still
 * reaches the real function as if the shim were absent. Start-up and
 * first use only: dlopen allocates. */
FL_HIDDEN void *fl_resolve(const char *name) {
  void *f = dlsym(RTLD_NEXT, name);
  if (f == NULL) {
    void *libc = dlopen(LIBC_SO, RTLD_LAZY | RTLD_NOLOAD);
    if (libc != NULL) {
      f = dlsym(libc, name);
      dlclose(libc);
    }
  }
  return f;
}

__attribute__((constructor(101))) static void fl_init(void) {
  int saved = errno;
#define FL_X_RESOLVE(ret, name, params)                                        \
  fl_real_##name = (ret(*) params)fl_resolve(#name);
  FL_REAL_SYMBOLS(FL_X_RESOLVE)
#undef FL_X_RESOLVE
  /* Not found even in libc (a libc without it, or a dlsym that refuses
   * us): its wrapper goes straight to the system call, or fails with
   * ENOSYS; said once, here. */
  const char *missing = NULL;
  int more = 0;
#define FL_X_CHECK(ret, name, params)                                          \
  if (fl_real_##name == NULL) {                                                \
    more += missing != NULL;                                                   \
    missing = missing ? missing : #name;                                       \
  }
  FL_REAL_SYMBOLS(FL_X_CHECK)
#undef FL_X_CHECK
  if (missing != NULL)
    say("faultline: cannot find libc's ", missing, more ? " and others" : "",
        ": the shim passes such calls to the kernel (names: they fail with "
        "ENOSYS)");
  after_fork_child();
  pthread_atfork(NULL, NULL, after_fork_child);
  const char *path = getenv(FL_CTL_ENV);
  if (path != NULL && path[0] != '\0')
    map_segment(path);
  errno = saved;
}

FL_HIDDEN void fl_sleep_ms(uint32_t ms) {
  int saved = errno;
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += ms / 1000;
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
    ;
  errno = saved;
}
