#define _GNU_SOURCE
#include "base.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define SHIM_NAME "libfaultline-preload.so"

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int fl_find_beside(const char *name, char *out, size_t size) {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0)
    return -ENOENT;
  exe[n] = '\0';
  char *slash = strrchr(exe, '/');
  if (slash == NULL)
    return -ENOENT;
  *slash = '\0';
  const char *where[] = {"%s/%s", "%s/../lib/faultline/%s"};
  for (size_t i = 0; i < sizeof(where) / sizeof(where[0]); i++) {
    char cand[PATH_MAX], real[PATH_MAX];
    snprintf(cand, sizeof(cand), where[i], exe, name);
    if (is_file(cand) && realpath(cand, real) != NULL &&
        (size_t)snprintf(out, size, "%s", real) < size)
      return 0;
  }
  return -ENOENT;
}

int fl_find_shim(char *out, size_t size) {
  const char *env = getenv("FAULTLINE_PRELOAD");
  if (env != NULL && env[0] != '\0') {
    if (!is_file(env) || (size_t)snprintf(out, size, "%s", env) >= size)
      return FL_ENOSHIM;
    return 0;
  }
  return fl_find_beside(SHIM_NAME, out, size) == 0 ? 0 : FL_ENOSHIM;
}

int fl_find_program(const char *cmd, char *out, size_t size) {
  if (strchr(cmd, '/') != NULL) {
    if (access(cmd, X_OK) != 0)
      return -errno;
    return (size_t)snprintf(out, size, "%s", cmd) < size ? 0 : -ENAMETOOLONG;
  }
  const char *path = getenv("PATH");
  if (path == NULL)
    path = "/usr/local/bin:/usr/bin:/bin";
  for (const char *p = path; *p != '\0';) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if ((size_t)snprintf(out, size, "%.*s/%s", (int)len, len ? p : ".", cmd) <
            size &&
        is_file(out) && access(out, X_OK) == 0)
      return 0;
    p += len + (end != NULL);
  }
  return -ENOENT;
}

/* Reads exactly n bytes at off. */
static int pread_all(int fd, void *buf, size_t n, off_t off) {
  return pread(fd, buf, n, off) == (ssize_t)n ? 0 : -1;
}

static int has_go_section(int fd, const Elf64_Ehdr *eh) {
  if (eh->e_shoff == 0 || eh->e_shstrndx >= eh->e_shnum ||
      eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shnum > 4096)
    return 0;
  Elf64_Shdr strtab;
  if (pread_all(fd, &strtab, sizeof(strtab),
                (off_t)(eh->e_shoff + eh->e_shstrndx * sizeof(Elf64_Shdr))))
    return 0;
  for (unsigned i = 0; i < eh->e_shnum; i++) {
    Elf64_Shdr sh;
    char name[24] = "";
    if (pread_all(fd, &sh, sizeof(sh),
                  (off_t)(eh->e_shoff + i * sizeof(Elf64_Shdr))))
      return 0;
    if (pread(fd, name, sizeof(name) - 1,
              (off_t)(strtab.sh_offset + sh.sh_name)) <= 0)
      continue;
    if (strcmp(name, ".note.go.buildid") == 0 ||
        strcmp(name, ".go.buildinfo") == 0)
      return 1;
  }
  return 0;
}

int fl_check_preloadable(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return -errno;
  Elf64_Ehdr eh;
  ssize_t n = pread(fd, &eh, sizeof(eh), 0);
  int rc = FL_PRELOAD_OK;
  if (n < 4 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    close(fd); /* a script or something the kernel will refuse: not ours */
    return FL_PRELOAD_OK;
  }
  if (n != (ssize_t)sizeof(eh) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_phentsize != sizeof(Elf64_Phdr)) {
    close(fd);
    return FL_PRELOAD_OK; /* 32-bit: the loader will say what it thinks */
  }
  int interp = 0;
  for (unsigned i = 0; i < eh.e_phnum && !interp; i++) {
    Elf64_Phdr ph;
    if (pread_all(fd, &ph, sizeof(ph),
                  (off_t)(eh.e_phoff + i * sizeof(Elf64_Phdr))))
      break;
    interp = ph.p_type == PT_INTERP;
  }
  if (!interp)
    rc = FL_ESTATIC;
  else if (has_go_section(fd, &eh))
    rc = FL_PRELOAD_GO;
  close(fd);
  return rc;
}

int fl_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -errno;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  int port = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
                     getsockname(fd, (struct sockaddr *)&a, &len) == 0
                 ? ntohs(a.sin_port)
                 : -errno;
  close(fd);
  return port;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void fl_rm_tree(const char *dir) {
  if (dir[0] != '\0')
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

struct rm_job {
  uv_work_t work;
  void (*done)(void *);
  void *arg;
  char dir[];
};

static void rm_job_run(uv_work_t *w) {
  struct rm_job *j = w->data;
  fl_rm_tree(j->dir);
}

static void rm_job_done(uv_work_t *w, int status) {
  struct rm_job *j = w->data;
  if (status == UV_ECANCELED)
    fl_rm_tree(j->dir);
  if (j->done != NULL)
    j->done(j->arg);
  free(j);
}

int fl_rm_tree_async(uv_loop_t *loop, const char *dir, void (*done)(void *),
                     void *arg) {
  size_t len = strlen(dir);
  struct rm_job *j = malloc(sizeof(*j) + len + 1);
  if (j == NULL) {
    fl_rm_tree(dir);
    if (done != NULL)
      done(arg);
    return -ENOMEM;
  }
  memcpy(j->dir, dir, len + 1);
  j->done = done;
  j->arg = arg;
  j->work.data = j;
  int rc = uv_queue_work(loop, &j->work, rm_job_run, rm_job_done);
  if (rc < 0) {
    fl_rm_tree(j->dir);
    if (done != NULL)
      done(arg);
    free(j);
  }
  return rc;
}
