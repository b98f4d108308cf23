/*
 * What the benchmark programs in bench/ share: their messages and common
 * options, clocks, signal handling, child processes, temporary files,
 * reading redis-benchmark's figures, the machine-load figure and the
 * median (min – max) summaries of their tables.
 *
 * It is not part of faultline's API (hence bench_, not fl_): only the
 * fl-bench-* programs link it. Functions that return int return 0 or a
 * negative errno unless they say otherwise; only bench_getopt() exits (on
 * --help).
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* ---- messages and options ------------------------------------------- */

/* Names the program in bench_say() and bench_cmdline(): "fl-bench-X".
 * The string must outlive the program (a literal). */
void bench_init(const char *name);

/* "NAME: message\n" on stderr. */
void bench_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The command line as the report shows it: the program's name, then its
 * arguments (argv[0] is left out: the build folder is not of interest). */
void bench_cmdline(int argc, char **argv, char *out, size_t size);

/* getopt_long() over the options in longs, doing what every benchmark's
 * options share: 'q' (--quick) sets *quick, 'o' (--out FILE) sets *out,
 * 'h' (--help) prints usage to stdout and exits 0, an unknown option or a
 * missing argument prints usage to stderr, an operand is refused. Returns
 * the caller's next option (its val, > 0), 0 at the end, or -EINVAL. */
int bench_getopt(int argc, char **argv, const struct option *longs,
                 void (*usage)(FILE *f), int *quick, const char **out);

/* A whole decimal number from min to max in *out; otherwise says
 * "OPT wants a number from MIN to MAX, not 'ARG'" and returns -EINVAL. */
int bench_parse_long(const char *arg, const char *opt, long min, long max,
                     long *out);

/* Is cmd on PATH? Otherwise says how to install it (Debian package) and
 * returns -ENOENT. */
int bench_need_program(const char *cmd, const char *package);

/* ---- clocks --------------------------------------------------------- */

/* CLOCK_MONOTONIC: one clock for every process of the machine. */
long long bench_now_ns(void);
double bench_now_s(void);
void bench_sleep_ms(long ms);
void bench_sleep_us(long us);

/* User + system CPU seconds of RUSAGE_SELF or RUSAGE_CHILDREN. */
double bench_rusage_s(int who);

/* ---- signals -------------------------------------------------------- */

/* Set by SIGINT, SIGTERM or SIGHUP: the main flow unwinds, cleans up and
 * exits 130. */
extern volatile sig_atomic_t bench_stop;
/* The child being waited for, or 0: the handler passes the signal on, so
 * that a blocking wait ends. */
extern volatile sig_atomic_t bench_child;

/* Catches SIGINT, SIGTERM and SIGHUP, without SA_RESTART so that poll()
 * and waitpid() wake up. The first signal sends child_sig to bench_child,
 * any later one again_sig (SIGKILL: a second Ctrl-C does not wait for a
 * child's own clean-up). SIGPIPE is left as it is: children inherit an
 * ignored one. */
void bench_catch_signals(int child_sig, int again_sig);

/* ---- child processes ------------------------------------------------ */

#define BENCH_FD_KEEP (-1) /* the child inherits ours */
#define BENCH_FD_NULL (-2) /* /dev/null */

struct bench_spawn {
  char *const *argv; /* argv[0] is looked up in PATH unless it has a '/' */
  char *const *envp; /* NULL: our environment */
  /* What becomes the child's fd 0, 1, 2 and 3: an fd of ours (dup2 also
   * clears its close-on-exec), BENCH_FD_KEEP or BENCH_FD_NULL. */
  int fd[4];
  int own_group; /* its own process group: stop it with its children */
};

/* Starts a child that dies with us (PR_SET_PDEATHSIG), so an interrupted
 * or killed benchmark leaves no client or server behind. One that cannot
 * exec says so on its fd 2 and exits 127. */
int bench_spawn(const struct bench_spawn *s, pid_t *pid);

/* Reaps pid, retrying on EINTR. *status: the exit status, or 128 + the
 * signal that ended it. With cpu_s, the user + system CPU seconds it used
 * (wait4: with paravirt steal accounting, blind to the host's steal). */
int bench_wait(pid_t pid, int *status, double *cpu_s);

/* Stops and reaps *pid (its process group with group), then sets it to 0;
 * nothing when it is <= 0. grace_ms > 0: SIGTERM first, SIGKILL if it is
 * still there after grace_ms (a wedged server must not hold us up);
 * grace_ms == 0: SIGKILL at once. */
void bench_stop_child(pid_t *pid, int group, int grace_ms);

/* Reads fd to end of file into out (NUL-terminated; what does not fit is
 * read and dropped, so the writer never blocks) before deadline_ns.
 * -ETIMEDOUT at the deadline, -EINTR once bench_stop is set. */
int bench_read_all(int fd, char *out, size_t size, long long deadline_ns);

/* Runs s to completion with its stdout (s->fd[1] is replaced) in out,
 * within timeout_s: SIGKILL then (its group with s->own_group). *status
 * and *cpu_s as in bench_wait(); cpu_s may be NULL. bench_child names it
 * meanwhile. -ETIMEDOUT, -EINTR when bench_stop is set, or -errno; a
 * child that ran and failed is 0 with *status != 0. */
int bench_capture(const struct bench_spawn *s, char *out, size_t size,
                  int timeout_s, int *status, double *cpu_s);

/* Lines from a child's pipe, buffered. */
struct bench_lines {
  int fd;
  size_t len;
  char buf[4096];
};

/* The next line (without its '\n') before deadline_ns. -ETIMEDOUT,
 * -EPIPE at end of output, -EINTR once bench_stop is set, or -errno. */
int bench_next_line(struct bench_lines *l, char *out, size_t size,
                    long long deadline_ns);

/* Prints the end of a log (under max bytes, at most 4 KiB) to stderr
 * under "--- LOG ---", for a failure report. */
void bench_show_tail(const char *log, size_t max);

/* Our environment without any preload of its own (LD_PRELOAD,
 * FAULTLINE_CONTROL, libfiu's variables), so no configuration is faulted
 * by accident; with ctl, plus LD_PRELOAD=shim and FAULTLINE_CONTROL=ctl.
 * NULL when out of memory. Free it with bench_env_free(). */
char **bench_env(const char *shim, const char *ctl);
void bench_env_free(char **env);

/* ---- files ---------------------------------------------------------- */

/* Makes $TMPDIR/PREFIX-XXXXXX (/tmp without TMPDIR) into dir. On failure
 * dir still names the template, for the message; the caller clears it. */
int bench_tmpdir(char *dir, size_t size, const char *prefix);

/* Copies src to a new file dst with mode. */
int bench_copy_file(const char *src, const char *dst, mode_t mode);

/* Writes text to path, replacing it. */
int bench_write_file(const char *path, const char *text);

/* This program's path (/proc/self/exe), and name in its folder. */
int bench_self(char *out, size_t size);
int bench_beside_self(const char *name, char *out, size_t size);

/* ---- loopback ------------------------------------------------------- */

/* A socket connected to 127.0.0.1:port, or -errno. */
int bench_connect_loopback(int port);

/* 1 when a Redis server at 127.0.0.1:port (through whatever relays it)
 * answers PING, else 0. */
int bench_redis_pong(int port);

/* One test's figures in redis-benchmark --csv output:
 * "TEST","rps","avg","min","p50","p95","p99","max" (ms). */
struct bench_redis_fig {
  double rps, p50, p99;
};

/* Fills fig[i] from the line of test names[i] ("SET", "GET"), for each of
 * the n; with latency, only a line with the percentiles counts (else they
 * are NAN: redis-benchmark before 6.2 printed only req/s). 0, or -ENOENT
 * after saying that the output lacked one. */
int bench_redis_csv(const char *out, const char *const names[], int n,
                    int latency, struct bench_redis_fig fig[]);

/* ---- what else the machine was doing -------------------------------- */

/* CPU seconds since boot, all cores: busy (user, nice, system, irq,
 * softirq), stolen by the hypervisor, and in all (idle and iowait too);
 * own: this program, its reaped children and one running child `also`. */
struct bench_load {
  double wall, busy, steal, total, own;
  int ok; /* 0 when /proc/stat did not tell */
};

/* Other work on the machine between two marks, in cores busy on
 * average; both -1 when /proc did not tell. */
struct bench_other {
  double cores, steal;
};

/* also: a child not yet reaped (a server) whose CPU is ours, or 0. */
void bench_load_mark(struct bench_load *m, pid_t also);
struct bench_other bench_load_between(const struct bench_load *a,
                                      const struct bench_load *b);

/* "Other work on the machine WHEN: C of N cores busy on average outside
 * this benchmark[ASIDE], S stolen by the hypervisor.[TAIL]\n\n", or
 * nothing when the figure is unknown. */
void bench_print_other(FILE *f, const struct bench_other *o, const char *when,
                       const char *aside, const char *tail);

/* ---- summaries and reports ------------------------------------------ */

struct bench_summary {
  double median, min, max;
};

/* Sorts v ascending in place. */
void bench_sort(double *v, size_t n);

/* Median (the mean of the middle two for even n), min and max of v, which
 * is left as it is. -EINVAL for n == 0, -ENOMEM; *s is NAN then. */
int bench_summarize(const double *v, size_t n, struct bench_summary *s);

/* "MEDIAN (MIN – MAX)", each of v times scale printed with fmt (one
 * double), or the median alone for n == 1. */
int bench_cell(char *out, size_t size, const double *v, size_t n, double scale,
               const char *fmt);

/* "`CMDLINE` — DATE, SYSTEM RELEASE, N CPUs", the start of each report's
 * first line; the caller ends it. */
void bench_print_context(FILE *f, const char *cmdline);

/* Writes the report to stdout and, with path, to that file too; says why
 * the file could not be written. */
int bench_emit(const char *path, void (*report)(FILE *f, const void *arg),
               const void *arg);

#endif
