/*
 * The runner's base: error codes and exit statuses, and the few system
 * helpers every room needs (finding programs, free ports, removing trees).
 * Nothing here knows about scenarios, faults or dependencies.
 */
#ifndef FL_BASE_H
#define FL_BASE_H

#include <stddef.h>

#define FL_ERRORS_H

#define FL_ERRORS(X)                                                           \
  X(EBADSPEC, "malformed fault spec")                                          \
  X(EBADCTL, "not a valid faultline control segment")                          \
  X(ERULESFULL, "no free rule slot in the control segment")                    \
  X(ENORULE, "no such rule")                                                   \
  X(EUSAGE, "bad usage")                                                       \
  X(ESTATIC, "statically linked program: the shim cannot be preloaded")        \
  X(ENOSHIM, "libfaultline-preload.so not found")                              \
  X(EBADSCENARIO, "malformed scenario or service file")                        \
  X(ESTART, "a process failed to start")

enum fl_error {
  FL_ERROR_BASE = -10000,
#define FL_X_ENUM(name, text) FL_##name,
  FL_ERRORS(FL_X_ENUM)
#undef FL_X_ENUM
};

/* Process exit statuses of the faultline command. */
enum fl_exit {
  FL_EXIT_OK = 0,     /* all passed / command succeeded */
  FL_EXIT_FAILED = 1, /* an expectation failed or was inconclusive */
  FL_EXIT_USAGE = 2,  /* bad usage, bad spec, bad scenario */
  FL_EXIT_ENV = 3,    /* the environment failed: a process would not start */
};

/* A static description of any code this project returns. */
const char *fl_strerror(int code);

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

/* ---- Leftovers of a killed run (reap.c) -------------------------------
 * Temporary folders are named $TMPDIR/faultline-KIND-PID-START-XXXXXX
 * after their owner (its pid and start time, so that a reused pid is not
 * taken for it), and every process a run starts carries FL_OWNER_ENV=TAG
 * (PID-START) in its environment. Whatever names an owner that is gone is
 * stale. */
#define FL_OWNER_ENV "FAULTLINE_RUN"

/* This process's tag, "PID-START". 0 or -errno. */
int fl_owner_tag(char *out, size_t size);

/* A process's /proc/PID/stat: state letter, parent, group, start time
 * (clock ticks since boot). 0, or -ESRCH when it is gone. */
struct fl_proc_stat {
  char state;
  int ppid, pgrp;
  unsigned long long start;
};
int fl_proc_stat(int pid, struct fl_proc_stat *out);
/* 1 when the owner `tag` names is running, 0 when it is gone, -EINVAL
 * when tag is not one. */
int fl_owner_alive(const char *tag);
/* mkdtemp of $TMPDIR/faultline-KIND-TAG-XXXXXX (/tmp without TMPDIR).
 * 0 or -errno (out then ""). */
int fl_make_tmpdir(const char *kind, char *out, size_t size);
/* Removes the folders of dead owners in $TMPDIR (of `kind`, or of every
 * kind when NULL), calling before(dir) first when set (to release what the
 * file system does not hold, like a System V segment). Returns how many. */
int fl_reap_folders(const char *kind, void (*before)(const char *dir));
/* SIGKILLs every process whose environment holds NAME=VALUE with
 * stale(VALUE, arg) true, and their descendants, and waits (3 s at most)
 * until none is left. Never ourselves nor a program named faultline*.
 * Returns how many it found. */
int fl_reap_marked(const char *name, int (*stale)(const char *value, void *),
                   void *arg);
/* fl_reap_marked of FL_OWNER_ENV tags whose owner is gone. */
int fl_reap_orphans(void);

/* ---- Units (units.c) ---------------------------------------------------
 * One reading of numbers with units for every grammar. Each call reads one
 * whole token s[0..len) and returns 0, or -EINVAL when it is not one. */
enum fl_units_flags {
  FL_UNITS_BARE = 1u << 0,     /* a bare number is allowed (seconds, bytes) */
  FL_UNITS_SHORT = 1u << 1,    /* sizes: k, m, g as well (fault specs) */
  FL_UNITS_FRACTION = 1u << 2, /* percent: a bare 0..1 is a fraction */
};

/* A decimal number at the start of s (digits, optionally '.' and digits);
 * returns how many characters it took, 0 if there is none. */
size_t fl_scan_number(const char *s, size_t len, double *v);
/* 250ms, 2s, 1.5s, 1m, 1min -> seconds. */
int fl_parse_duration(const char *s, size_t len, unsigned flags,
                      double *seconds);
/* 512B, 64kB, 50MB, 1GiB (powers of 1024) -> bytes. */
int fl_parse_size(const char *s, size_t len, unsigned flags, double *bytes);
/* 95%, 99.5% (0..100) -> percent. */
int fl_parse_percent(const char *s, size_t len, unsigned flags, double *pct);
/* 50, 50/s, 600/m -> per second. */
int fl_parse_rate(const char *s, size_t len, double *per_second);

/* Sorts ascending; the nearest-rank percentile p (0..100] of sorted v. */
void fl_sort_values(double *v, size_t n);
double fl_percentile(const double *sorted, size_t n, double p);

#endif
