/* Finding the shim and the programs we run under it. */
#ifndef FL_PATHS_H
#define FL_PATHS_H

#include <stddef.h>

struct uv_loop_s;

/* The shim: $FAULTLINE_PRELOAD, else beside the faultline binary, else in
 * ../lib/faultline/ from it. 0, or FL_ENOSHIM. */
int fl_find_shim(char *out, size_t size);

/* A file of ours installed with the faultline binary: beside the running
 * executable, else in ../lib/faultline/ from it. 0, or -ENOENT. */
int fl_find_beside(const char *name, char *out, size_t size);

/* `cmd` as execvp would find it. 0, or -ENOENT. */
int fl_find_program(const char *cmd, char *out, size_t size);

enum fl_preloadable {
  FL_PRELOAD_OK = 0,
  FL_PRELOAD_GO = 1, /* dynamically linked Go: raw syscalls bypass the shim */
};
/* Can LD_PRELOAD reach this program? FL_PRELOAD_OK/GO, FL_ESTATIC for a
 * statically linked ELF, or -errno. Scripts (#!) are taken as preloadable:
 * their interpreter is what runs. */
int fl_check_preloadable(const char *path);

/* A free TCP port on 127.0.0.1 (bound, read, released), or -errno. */
int fl_free_port(void);

/* Removes dir and everything under it, without following links; "" is a
 * no-op. Errors are ignored: it is cleanup. */
void fl_rm_tree(const char *dir);

/* fl_rm_tree on libuv's thread pool, so removing a PostgreSQL cluster (a
 * thousand files) never stalls the loop that times another scenario's
 * requests. done(arg), if set, runs on the loop afterwards; the loop stays
 * alive until then. If the work cannot be queued the tree is removed at
 * once and done runs before this returns. 0, or -errno. */
int fl_rm_tree_async(struct uv_loop_s *loop, const char *dir,
                     void (*done)(void *), void *arg);

#endif
