#define _GNU_SOURCE
#include "support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long t_now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int t_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in in = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(in);
  if (fd < 0 || bind(fd, (struct sockaddr *)&in, len) != 0 ||
      getsockname(fd, (struct sockaddr *)&in, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  close(fd);
  return ntohs(in.sin_port);
}

int t_wait_port(int port, int timeout_ms) {
  long long end = t_now_ms() + timeout_ms;
  while (t_now_ms() < end) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in in = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = connect(fd, (struct sockaddr *)&in, sizeof(in)) == 0;
    close(fd);
    if (ok)
      return 0;
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

int t_mkdtemp(char *out) {
  const char *tmp = getenv("TMPDIR");
  snprintf(out, 256, "%s/fltest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
  return mkdtemp(out) != NULL ? 0 : -1;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void t_rmtree(const char *dir) {
  if (dir != NULL && dir[0] != '\0')
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void put_env(char *const env[]) {
  for (size_t i = 0; env != NULL && env[i] != NULL; i++)
    putenv(env[i]);
}

static int status_of(int ws) {
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
}

/* Waits for pid until deadline; kills it (and its group) after. */
static int wait_deadline(pid_t pid, long long end) {
  int ws;
  for (;;) {
    pid_t r = waitpid(pid, &ws, WNOHANG);
    if (r == pid)
      return status_of(ws);
    if (r < 0)
      return -1;
    if (t_now_ms() >= end) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      waitpid(pid, &ws, 0);
      return -1;
    }
    struct timespec ts = {0, 5 * 1000000};
    nanosleep(&ts, NULL);
  }
}

static void append(char **buf, size_t *len, const char *data, size_t n) {
  char *nb = realloc(*buf, *len + n + 1);
  if (nb == NULL)
    return;
  memcpy(nb + *len, data, n);
  *len += n;
  nb[*len] = '\0';
  *buf = nb;
}

int t_run(char *const argv[], char *const env[], const char *input,
          int timeout_ms, struct t_run *r) {
  int in[2], out[2], err[2];
  memset(r, 0, sizeof(*r));
  r->out = strdup("");
  r->err = strdup("");
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    put_env(env);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (input != NULL)
    (void)!write(in[1], input, strlen(input));
  close(in[1]);
  long long end = t_now_ms() + timeout_ms;
  size_t olen = 0, elen = 0;
  int open_fds = 2;
  while (open_fds > 0 && t_now_ms() < end) {
    struct pollfd p[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    if (poll(p, 2, 50) <= 0)
      continue;
    for (int i = 0; i < 2; i++) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP)))
        continue;
      char chunk[4096];
      ssize_t n = read(p[i].fd, chunk, sizeof(chunk));
      if (n <= 0) {
        close(i == 0 ? out[0] : err[0]);
        if (i == 0)
          out[0] = -1;
        else
          err[0] = -1;
        open_fds--;
      } else if (i == 0) {
        append(&r->out, &olen, chunk, (size_t)n);
      } else {
        append(&r->err, &elen, chunk, (size_t)n);
      }
    }
  }
  if (out[0] >= 0)
    close(out[0]);
  if (err[0] >= 0)
    close(err[0]);
  r->status = wait_deadline(pid, end);
  return 0;
}

void t_run_free(struct t_run *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

int t_spawn(struct t_proc *p, char *const argv[], char *const env[],
            int merge_err) {
  int in[2], out[2];
  memset(p, 0, sizeof(*p));
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC))
    return -1;
  p->pid = fork();
  if (p->pid == 0) {
    setpgid(0, 0);
    dup2(in[0], 0);
    dup2(out[1], 1);
    if (merge_err)
      dup2(out[1], 2);
    put_env(env);
    execvp(argv[0], argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  p->in_fd = in[1];
  p->out_fd = out[0];
  return p->pid > 0 ? 0 : -1;
}

int t_send(struct t_proc *p, const char *line) {
  size_t n = strlen(line);
  if (write(p->in_fd, line, n) != (ssize_t)n || write(p->in_fd, "\n", 1) != 1)
    return -1;
  return 0;
}

int t_line(struct t_proc *p, char *out, size_t size, int timeout_ms) {
  long long end = t_now_ms() + timeout_ms;
  for (;;) {
    char *nl = memchr(p->buf, '\n', p->len);
    if (nl != NULL) {
      size_t n = (size_t)(nl - p->buf);
      size_t c = n < size - 1 ? n : size - 1;
      memcpy(out, p->buf, c);
      out[c] = '\0';
      memmove(p->buf, nl + 1, p->len - n - 1);
      p->len -= n + 1;
      return 0;
    }
    long long left = end - t_now_ms();
    if (left <= 0 || p->len == sizeof(p->buf))
      return -1;
    struct pollfd pfd = {p->out_fd, POLLIN, 0};
    if (poll(&pfd, 1, (int)left) <= 0)
      continue;
    ssize_t n = read(p->out_fd, p->buf + p->len, sizeof(p->buf) - p->len);
    if (n <= 0)
      return -1;
    p->len += (size_t)n;
  }
}

int t_expect(struct t_proc *p, const char *needle, char *out, size_t size,
             int timeout_ms) {
  long long end = t_now_ms() + timeout_ms;
  char line[1024];
  while (t_now_ms() < end) {
    if (t_line(p, line, sizeof(line), (int)(end - t_now_ms())) != 0)
      return -1;
    if (strstr(line, needle) != NULL) {
      if (out != NULL)
        snprintf(out, size, "%s", line);
      return 0;
    }
  }
  return -1;
}

int t_finish(struct t_proc *p, int timeout_ms) {
  if (p->in_fd >= 0)
    close(p->in_fd);
  p->in_fd = -1;
  int st = p->pid > 0 ? wait_deadline(p->pid, t_now_ms() + timeout_ms) : -1;
  if (p->out_fd >= 0)
    close(p->out_fd);
  p->out_fd = -1;
  p->pid = 0;
  return st;
}

static int faultline_cmd(const char *verb, const char *control,
                         const char *arg) {
  char *argv[] = {T_FAULTLINE,     (char *)verb, "--control",
                  (char *)control, (char *)arg,  NULL};
  struct t_run r;
  if (t_run(argv, NULL, NULL, 10000, &r) != 0)
    return -1;
  int st = r.status;
  if (st != 0)
    fprintf(stderr, "faultline %s %s: %s", verb, arg ? arg : "", r.err);
  t_run_free(&r);
  return st;
}

int t_inject(const char *control, const char *spec) {
  return faultline_cmd("inject", control, spec);
}

int t_clear(const char *control, const char *rule) {
  return faultline_cmd("clear", control, rule);
}

int t_redis_start(struct t_redis *r) {
  memset(r, 0, sizeof(*r));
  if (t_mkdtemp(r->dir) != 0)
    return -1;
  for (int attempt = 0; attempt < 5; attempt++) {
    r->port = t_free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", r->port);
    r->pid = fork();
    if (r->pid == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      execlp("redis-server", "redis-server", "--port", port, "--bind",
             "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r->dir,
             "--daemonize", "no", (char *)NULL);
      _exit(127);
    }
    if (t_wait_port(r->port, 10000) == 0)
      return 0;
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0); /* port taken meanwhile: try another */
  }
  return -1;
}

void t_redis_stop(struct t_redis *r) {
  if (r->pid > 0) {
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
  }
  r->pid = 0;
  t_rmtree(r->dir);
}

/* Runs argv as the postgres user when we are root (initdb refuses root). */
static pid_t spawn_pg(char *const argv[], int quiet) {
  pid_t pid = fork();
  if (pid == 0) {
    if (quiet) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
    }
    if (geteuid() == 0) {
      struct passwd *pw = getpwnam("postgres");
      if (pw == NULL || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0)
        _exit(126);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  return pid;
}

#define PG_BIN "/usr/lib/postgresql/15/bin/"

/* The port opens before the server accepts sessions ("the database system
 * is starting up"): wait until pg_isready says it accepts them. */
static int pg_accepting(int port) {
  char p[16];
  snprintf(p, sizeof(p), "%d", port);
  char *argv[] = {"pg_isready", "-q", "-h", "127.0.0.1", "-p", p, NULL};
  long long end = t_now_ms() + 15000;
  while (t_now_ms() < end) {
    struct t_run r;
    int rc = t_run(argv, NULL, NULL, 5000, &r);
    int ok = rc == 0 && r.status == 0;
    t_run_free(&r);
    if (ok)
      return 0;
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  return -1;
}

int t_pg_start(struct t_pg *pg) {
  memset(pg, 0, sizeof(*pg));
  if (t_mkdtemp(pg->dir) != 0)
    return -1;
  if (geteuid() == 0) {
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL || chown(pg->dir, pw->pw_uid, pw->pw_gid) != 0)
      return -1;
  }
  char data[300];
  snprintf(data, sizeof(data), "%s/data", pg->dir);
  char *initdb[] = {PG_BIN "initdb", "-D",        data, "-A", "trust", "-U",
                    "postgres",      "--no-sync", NULL};
  int ws;
  pid_t pid = spawn_pg(initdb, 1);
  if (pid < 0 || waitpid(pid, &ws, 0) != pid || !WIFEXITED(ws) ||
      WEXITSTATUS(ws) != 0)
    return -1;
  for (int attempt = 0; attempt < 5; attempt++) {
    pg->port = t_free_port();
    char port[16];
    snprintf(port, sizeof(port), "%d", pg->port);
    char *postgres[] = {PG_BIN "postgres", "-D", data, "-p", port, "-k",
                        pg->dir, "-c", "listen_addresses=127.0.0.1", "-c",
                        "fsync=off",
                        /* Dynamic segments as files in the cluster's own
                         * folder: a SIGKILLed server leaves nothing in
                         * /dev/shm (as harness/deps/postgres.c does). */
                        "-c", "dynamic_shared_memory_type=mmap", NULL};
    pg->pid = spawn_pg(postgres, 1);
    if (t_wait_port(pg->port, 15000) == 0 && pg_accepting(pg->port) == 0)
      return 0;
    kill(pg->pid, SIGKILL);
    waitpid(pg->pid, NULL, 0);
  }
  return -1;
}

void t_pg_stop(struct t_pg *pg) {
  if (pg->pid > 0) {
    kill(pg->pid, SIGQUIT); /* immediate shutdown */
    if (wait_deadline(pg->pid, t_now_ms() + 10000) < 0)
      kill(pg->pid, SIGKILL);
  }
  pg->pid = 0;
  t_rmtree(pg->dir);
}
