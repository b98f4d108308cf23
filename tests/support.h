/*
 * Test support: real processes and real servers, each waited on with a
 * deadline. Nothing here mocks what faultline is tested against.
 */
#ifndef FL_TEST_SUPPORT_H
#define FL_TEST_SUPPORT_H

#include <stddef.h>
#include <sys/types.h>

/* Paths of the built faultline binary and shim (set by CMake). */
#define T_FAULTLINE FL_TEST_BUILD_DIR "/faultline"
#define T_SHIM FL_TEST_BUILD_DIR "/libfaultline-preload.so"
#define T_DATA FL_TEST_SOURCE_DIR "/tests/data"

/* A free loopback TCP port (bound, read, released). */
int t_free_port(void);
/* Polls until 127.0.0.1:port accepts a connection; 0 or -1 on deadline. */
int t_wait_port(int port, int timeout_ms);
/* Milliseconds on the monotonic clock. */
long long t_now_ms(void);
/* A fresh temporary folder under $TMPDIR; out must hold 256 bytes. */
int t_mkdtemp(char *out);
/* rm -rf */
void t_rmtree(const char *dir);

/* A finished command: exit status (128+N after signal N, -1 on timeout,
 * when it was killed) and everything it wrote. */
struct t_run {
  int status;
  char *out;
  char *err;
};
/* Runs argv with extra "K=V" entries added to the environment (may be NULL)
 * and `input` on stdin (NULL: empty), killing it after timeout_ms. */
int t_run(char *const argv[], char *const env[], const char *input,
          int timeout_ms, struct t_run *r);
void t_run_free(struct t_run *r);

/* A running command with its stdin and stdout piped to us (stderr too,
 * merged into stdout when merge_err is set). */
struct t_proc {
  pid_t pid;
  int in_fd;
  int out_fd;
  char buf[8192];
  size_t len;
};
int t_spawn(struct t_proc *p, char *const argv[], char *const env[],
            int merge_err);
/* Writes one line (a newline is added). */
int t_send(struct t_proc *p, const char *line);
/* Reads one line (without the newline) within timeout_ms; 0, or -1 on
 * deadline or end of output. */
int t_line(struct t_proc *p, char *out, size_t size, int timeout_ms);
/* Reads lines until one contains `needle`; 0 or -1. The line is copied to
 * out when out is not NULL. */
int t_expect(struct t_proc *p, const char *needle, char *out, size_t size,
             int timeout_ms);
/* Closes stdin, waits for exit (killing after timeout_ms); the status. */
int t_finish(struct t_proc *p, int timeout_ms);

/* faultline inject/clear with --control; 0 on success. */
int t_inject(const char *control, const char *spec);
int t_clear(const char *control, const char *rule);

/* A real redis-server on a free loopback port, no persistence. */
struct t_redis {
  pid_t pid;
  int port;
  char dir[256];
};
int t_redis_start(struct t_redis *r);
void t_redis_stop(struct t_redis *r);

/* A throwaway PostgreSQL cluster (initdb, trust auth, user postgres) on a
 * free loopback port; run as user postgres when we are root. */
struct t_pg {
  pid_t pid;
  int port;
  char dir[256];
};
int t_pg_start(struct t_pg *pg);
void t_pg_stop(struct t_pg *pg);

#endif
