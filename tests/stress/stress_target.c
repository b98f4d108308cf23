/*
 * The stress target: threads that connect, echo, resolve names and write
 * files as fast as they can while another process (tests/test_stress.c)
 * flips fault rules in the control segment under them.
 *
 * It is linked with the shim's own sources (see CMakeLists.txt here), so
 * this executable's socket(), connect(), read()... are the shim's wrappers
 * and ASan/UBSan or TSan instrument the shim's code while it runs. Run with
 * FAULTLINE_CONTROL naming a segment; without one the shim passes through
 * and the run checks only the idle path.
 *
 * Every call is checked:
 *   - a call that succeeds must leave errno untouched (it is set to a
 *     sentinel before the call): the shim must preserve errno;
 *   - a call that fails must carry an errno that one of the stress rules
 *     can inject for that operation, never the sentinel (a lost errno);
 *   - echoed bytes and file contents must come back as written.
 * Exit status: 0 when every check passed, 1 when one failed, 2 on bad usage
 * or set-up, 3 when the workers did not stop in time.
 *
 * Usage: stress_target [--threads N] [--seconds S] [--dir DIR]
 *                      [--port-file FILE]
 * Files go to DIR/data/ (the driver aims enospc and eio there); the echo
 * server's port is written to FILE once it listens.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* No call sets errno to this: it marks "untouched". */
#define SENTINEL 0x5eed
#define MAX_THREADS 64
#define MAX_REPORTED 40 /* failed checks printed in full */

/* What the stress rules can make each operation fail with. connect: refuse
 * and limit (ECONNREFUSED, or ETIMEDOUT by err=), hang on a blocking socket
 * whose SO_SNDTIMEO ran out (EINPROGRESS, as the kernel does). */
static const int ERR_SOCKET[] = {EMFILE, 0};
static const int ERR_CONNECT[] = {ECONNREFUSED, ETIMEDOUT, EINPROGRESS, 0};
static const int ERR_SOCK_IO[] = {ECONNRESET, EPIPE, 0};
static const int ERR_OPEN[] = {ENOSPC, EIO, EMFILE, 0};
static const int ERR_FILE_IO[] = {ENOSPC, EIO, 0};
static const int ERR_NONE[] = {0};
static const int EAI_FAULTS[] = {EAI_AGAIN, EAI_NONAME, 0};

/* Errnos counted by name in the summary. */
#define COUNTED(X)                                                             \
  X(ECONNREFUSED)                                                              \
  X(ECONNRESET) X(EPIPE) X(ETIMEDOUT) X(EINPROGRESS) X(EMFILE) X(ENOSPC) X(EIO)
enum {
#define X_IDX(e) IDX_##e,
  COUNTED(X_IDX)
#undef X_IDX
      IDX_EAI_AGAIN,
  IDX_EAI_NONAME,
  IDX_COUNT
};
static const char *const idx_names[] = {
#define X_NAME(e) #e,
    COUNTED(X_NAME)
#undef X_NAME
        "EAI_AGAIN",
    "EAI_NONAME"};

struct worker {
  pthread_t tid;
  int id;
  unsigned long long rng;
  /* Results, read by main only after join. */
  unsigned long iterations, sessions, echoes, lookups, files, hung, calls;
  unsigned long faults[IDX_COUNT];
  unsigned long bad;
};

static struct sockaddr_in echo_addr;
static char port_text[16];
static char data_dir[PATH_MAX - 64];
static atomic_int stop;
static atomic_ulong reported;

static unsigned next_rand(struct worker *w) {
  w->rng ^= w->rng << 13;
  w->rng ^= w->rng >> 7;
  w->rng ^= w->rng << 17;
  return (unsigned)(w->rng >> 11);
}

__attribute__((format(printf, 2, 3))) static void bad(struct worker *w,
                                                      const char *fmt, ...) {
  w->bad++;
  if (atomic_fetch_add(&reported, 1) >= MAX_REPORTED)
    return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  fprintf(stderr, "stress: FAILED CHECK (thread %d): %s\n", w->id, line);
}

static const char *errname(int e) {
  if (e == SENTINEL)
    return "errno untouched (sentinel)";
  const char *n = strerrorname_np(e);
  return n != NULL ? n : "unknown errno";
}

static void count_fault(struct worker *w, int e) {
  switch (e) {
#define X_CASE(name)                                                           \
  case name:                                                                   \
    w->faults[IDX_##name]++;                                                   \
    break;
    COUNTED(X_CASE)
#undef X_CASE
  default:
    break;
  }
}

/* Checks one call: r < 0 is a failure with errno e. Returns 1 when it
 * succeeded, 0 when it failed as a rule may make it fail, -1 otherwise. */
static int check(struct worker *w, const char *what, long r, int e,
                 const int *allowed) {
  w->calls++;
  if (r >= 0) {
    if (e != SENTINEL) {
      bad(w, "%s succeeded but changed errno to %s", what, errname(e));
      return -1;
    }
    return 1;
  }
  for (const int *a = allowed; *a != 0; a++)
    if (*a == e) {
      count_fault(w, e);
      return 0;
    }
  bad(w, "%s failed with %s, which no active rule can inject", what,
      errname(e));
  return -1;
}

static int wait_fd(int fd, short events, int ms) {
  struct pollfd p = {.fd = fd, .events = events};
  int n;
  do
    n = poll(&p, 1, ms);
  while (n < 0 && errno == EINTR);
  return n;
}

static void set_timeouts(int fd, long snd_ms, long rcv_ms) {
  struct timeval snd = {snd_ms / 1000, (snd_ms % 1000) * 1000};
  struct timeval rcv = {rcv_ms / 1000, (rcv_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &rcv, sizeof(rcv));
}

/* Resolves "localhost" to the echo server's address, by getaddrinfo or
 * gethostbyname_r. A fault leaves *to at 127.0.0.1 all the same. */
static void lookup(struct worker *w, struct sockaddr_in *to) {
  *to = echo_addr;
  w->lookups++;
  w->calls++;
  if (next_rand(w) % 4 == 0) {
    struct hostent he, *res = NULL;
    char buf[2048];
    int herr = 0;
    int rc = gethostbyname_r("localhost", &he, buf, sizeof(buf), &res, &herr);
    if (rc == 0 && res != NULL) {
      if (res->h_addrtype != AF_INET || res->h_addr_list[0] == NULL ||
          memcmp(res->h_addr_list[0], &echo_addr.sin_addr, 4) != 0)
        bad(w, "gethostbyname_r(localhost) gave another address");
    } else if (rc == EAGAIN && herr == TRY_AGAIN) {
      w->faults[IDX_EAI_AGAIN]++;
    } else if (rc == ENOENT && herr == HOST_NOT_FOUND) {
      w->faults[IDX_EAI_NONAME]++;
    } else {
      bad(w, "gethostbyname_r(localhost) returned %d, h_errno %d", rc, herr);
    }
    return;
  }
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
  struct addrinfo *res = NULL;
  int rc = getaddrinfo("localhost", port_text, &hints, &res);
  if (rc == 0) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)res->ai_addr;
    if (res->ai_family != AF_INET || in->sin_port != echo_addr.sin_port ||
        in->sin_addr.s_addr != echo_addr.sin_addr.s_addr)
      bad(w, "getaddrinfo(localhost) gave another address");
    freeaddrinfo(res);
    return;
  }
  for (const int *a = EAI_FAULTS; *a != 0; a++)
    if (*a == rc) {
      w->faults[rc == EAI_AGAIN ? IDX_EAI_AGAIN : IDX_EAI_NONAME]++;
      return;
    }
  bad(w, "getaddrinfo(localhost) failed with %d (%s)", rc, gai_strerror(rc));
}

/* Sends all of msg, by send() or write(). 1 sent, 0 faulted, -1 bad. */
static int send_all(struct worker *w, int fd, int nonblock, const char *msg,
                    size_t len) {
  size_t done = 0;
  while (done < len) {
    if (nonblock && wait_fd(fd, POLLOUT, 5000) <= 0) {
      bad(w, "socket not writable within 5 s");
      return -1;
    }
    int use_write = next_rand(w) % 2;
    errno = SENTINEL;
    ssize_t n = use_write ? write(fd, msg + done, len - done)
                          : send(fd, msg + done, len - done, MSG_NOSIGNAL);
    int e = errno;
    if (n < 0 && nonblock && e == EAGAIN)
      continue;
    int c = check(w, use_write ? "write(socket)" : "send", n, e, ERR_SOCK_IO);
    if (c <= 0)
      return c;
    done += (size_t)n;
  }
  return 1;
}

/* Reads len bytes back, by recv() or read(), and compares. */
static int recv_all(struct worker *w, int fd, int nonblock, const char *msg,
                    size_t len) {
  char buf[128];
  size_t got = 0;
  while (got < len) {
    if (nonblock && wait_fd(fd, POLLIN, 5000) <= 0) {
      bad(w, "no echo within 5 s");
      return -1;
    }
    int use_read = next_rand(w) % 2;
    errno = SENTINEL;
    ssize_t n =
        use_read ? read(fd, buf + got, len - got)
                 : recv(fd, buf + got, len - got, nonblock ? MSG_DONTWAIT : 0);
    int e = errno;
    if (n < 0 && nonblock && e == EAGAIN)
      continue;
    if (n < 0 && !nonblock && e == EAGAIN) {
      bad(w, "no echo within 5 s (SO_RCVTIMEO)");
      return -1;
    }
    int c = check(w, use_read ? "read(socket)" : "recv", n, e, ERR_SOCK_IO);
    if (c <= 0)
      return c;
    if (n == 0) {
      bad(w, "echo server closed the connection unasked");
      return -1;
    }
    got += (size_t)n;
  }
  if (memcmp(buf, msg, len) != 0) {
    bad(w, "echo came back different");
    return -1;
  }
  return 1;
}

/* Connects a blocking or non-blocking socket. 1 connected, 0 faulted (or
 * left pending by hang), -1 bad. */
static int connect_to(struct worker *w, int fd, int nonblock,
                      const struct sockaddr_in *to) {
  errno = SENTINEL;
  int r = connect(fd, (const struct sockaddr *)to, sizeof(*to));
  int e = errno;
  if (!nonblock)
    return check(w, "connect", r, e, ERR_CONNECT);
  if (r != 0 && e != EINPROGRESS)
    return check(w, "connect(nonblocking)", r, e, ERR_CONNECT);
  if (r == 0)
    return check(w, "connect(nonblocking)", r, e, ERR_NONE);
  /* In progress: a hang rule leaves it so, in a blackhole. */
  int n = wait_fd(fd, POLLOUT, 300);
  if (n == 0) {
    w->hung++;
    return 0;
  }
  int err = 0;
  socklen_t len = sizeof(err);
  if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    bad(w, "poll/getsockopt on a connecting socket failed: %s", errname(errno));
    return -1;
  }
  if (err != 0) {
    bad(w, "nonblocking connect completed with %s", errname(err));
    return -1;
  }
  return 1;
}

/* One connection: socket, connect, a few echoes, close. */
static void session(struct worker *w) {
  struct sockaddr_in to;
  lookup(w, &to);
  int nonblock = next_rand(w) % 2;
  errno = SENTINEL;
  int fd = socket(
      AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
  if (check(w, "socket", fd, errno, ERR_SOCKET) <= 0)
    return;
  w->sessions++;
  /* SO_SNDTIMEO bounds a blocking connect under hang (EINPROGRESS). */
  if (!nonblock)
    set_timeouts(fd, 250, 5000);
  if (connect_to(w, fd, nonblock, &to) == 1) {
    int rounds = 1 + (int)(next_rand(w) % 3);
    for (int k = 0; k < rounds; k++) {
      char msg[64];
      int len = snprintf(msg, sizeof(msg), "t%d-%lu-%d-%u\n", w->id,
                         w->iterations, k, next_rand(w));
      if (send_all(w, fd, nonblock, msg, (size_t)len) <= 0 ||
          recv_all(w, fd, nonblock, msg, (size_t)len) <= 0)
        break;
      w->echoes++;
    }
  }
  errno = SENTINEL;
  int r = close(fd);
  check(w, "close(socket)", r, errno, ERR_NONE);
}

/* Writes a file (open, write or pwrite, maybe fsync), and when every call
 * passed reads it back. Disk faults may fail any of the writing calls. */
static void file_round(struct worker *w) {
  char path[PATH_MAX], text[96];
  snprintf(path, sizeof(path), "%s/w%d", data_dir, w->id);
  int len = snprintf(text, sizeof(text), "thread %d iteration %lu %u\n", w->id,
                     w->iterations, next_rand(w));
  w->files++;
  if (next_rand(w) % 8 == 0) { /* stdio: fopen is wrapped, fwrite is not */
    errno = SENTINEL;
    FILE *f = fopen(path, "w");
    int e = errno;
    if (f == NULL) {
      check(w, "fopen(w)", -1, e, ERR_OPEN);
      return;
    }
    fputs(text, f);
    if (fclose(f) != 0)
      bad(w, "fclose failed: %s", errname(errno));
    return;
  }
  errno = SENTINEL;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (check(w, "open(write)", fd, errno, ERR_OPEN) <= 0)
    return;
  errno = SENTINEL;
  ssize_t n = next_rand(w) % 2 ? write(fd, text, (size_t)len)
                               : pwrite(fd, text, (size_t)len, 0);
  int c = check(w, "write(file)", n, errno, ERR_FILE_IO);
  if (c == 1 && n != len) {
    bad(w, "short write to a file: %zd of %d", n, len);
    c = -1;
  }
  int clean = c == 1;
  if (clean && next_rand(w) % 2 == 0) {
    errno = SENTINEL;
    int r = next_rand(w) % 2 ? fsync(fd) : fdatasync(fd);
    clean = check(w, "fsync", r, errno, ERR_FILE_IO) == 1;
  }
  errno = SENTINEL;
  int r = close(fd);
  check(w, "close(file)", r, errno, ERR_NONE);
  if (!clean)
    return;
  errno = SENTINEL;
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (check(w, "open(read)", fd, errno, ERR_OPEN) <= 0)
    return; /* exhaust@files */
  char back[96];
  errno = SENTINEL;
  n = read(fd, back, sizeof(back));
  if (check(w, "read(file)", n, errno, ERR_NONE) == 1 &&
      (n != len || memcmp(back, text, (size_t)len) != 0))
    bad(w, "file %s read back differently", path);
  errno = SENTINEL;
  r = close(fd);
  check(w, "close(file)", r, errno, ERR_NONE);
}

static void *work(void *arg) {
  struct worker *w = arg;
  while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
    session(w);
    if (w->iterations % 3 == 0)
      file_round(w);
    w->iterations++;
  }
  return NULL;
}

/* The echo server, in a child process. It uses raw syscalls so that the
 * rules (which this process sees too, through the inherited mapping) never
 * touch it: it stands for a healthy remote peer. */
static void echo_server(int lfd) {
  enum { MAX_CONN = 1000 };
  static struct pollfd fds[MAX_CONN + 1];
  int n = 1;
  fcntl(lfd, F_SETFL, O_NONBLOCK);
  fds[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
  for (;;) {
    if (poll(fds, (nfds_t)n, -1) < 0)
      continue;
    if (fds[0].revents & POLLIN) {
      for (;;) {
        int c = (int)syscall(SYS_accept4, lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
          break;
        if (n > MAX_CONN) {
          syscall(SYS_close, c);
          continue;
        }
        struct timeval tv = {1, 0};
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        fds[n++] = (struct pollfd){.fd = c, .events = POLLIN};
      }
    }
    for (int i = 1; i < n; i++) {
      if (fds[i].revents == 0)
        continue;
      char buf[4096];
      long r = syscall(SYS_read, fds[i].fd, buf, sizeof(buf));
      for (long off = 0; r > 0 && off < r;) {
        long k = syscall(SYS_write, fds[i].fd, buf + off, (size_t)(r - off));
        if (k <= 0)
          break;
        off += k;
      }
      if (r <= 0) { /* EOF, or the reset a rule made */
        syscall(SYS_close, fds[i].fd);
        fds[i--] = fds[--n];
      }
    }
  }
}

static pid_t start_echo_server(void) {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  socklen_t len = sizeof(echo_addr);
  echo_addr.sin_family = AF_INET;
  echo_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (lfd < 0 ||
      setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(lfd, (struct sockaddr *)&echo_addr, sizeof(echo_addr)) != 0 ||
      listen(lfd, SOMAXCONN) != 0 ||
      getsockname(lfd, (struct sockaddr *)&echo_addr, &len) != 0) {
    perror("stress: echo server");
    return -1;
  }
  snprintf(port_text, sizeof(port_text), "%d", ntohs(echo_addr.sin_port));
  pid_t parent = getpid();
  pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
      _exit(0);
    echo_server(lfd);
    _exit(0);
  }
  close(lfd);
  return pid;
}

static int write_port_file(const char *path) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (f == NULL || fprintf(f, "%s\n", port_text) < 0 || fclose(f) != 0 ||
      rename(tmp, path) != 0) {
    perror("stress: port file");
    return -1;
  }
  return 0;
}

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "stress: workers did not stop in time\n";
  (void)!syscall(SYS_write, 2, msg, sizeof(msg) - 1);
  _exit(3);
}

static void usage(void) {
  fprintf(stderr, "usage: stress_target [--threads N] [--seconds S] "
                  "[--dir DIR] [--port-file FILE]\n");
  exit(2);
}

int main(int argc, char **argv) {
  int threads = 8, seconds = 8;
  const char *dir = NULL, *port_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc)
      usage();
    if (strcmp(argv[i], "--threads") == 0)
      threads = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0)
      seconds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--dir") == 0)
      dir = argv[++i];
    else if (strcmp(argv[i], "--port-file") == 0)
      port_file = argv[++i];
    else
      usage();
  }
  if (threads < 1 || threads > MAX_THREADS || seconds < 1 || seconds > 3600)
    usage();
  signal(SIGPIPE, SIG_IGN);

  char own_dir[] = "/tmp/fl-stress-XXXXXX";
  if (dir == NULL && (dir = mkdtemp(own_dir)) == NULL) {
    perror("stress: mkdtemp");
    return 2;
  }
  snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
  if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
    perror("stress: mkdir data");
    return 2;
  }
  pid_t server = start_echo_server();
  if (server < 0)
    return 2;
  if (port_file != NULL && write_port_file(port_file) != 0) {
    kill(server, SIGKILL);
    return 2;
  }
  printf("stress: pid=%d port=%s threads=%d seconds=%d control=%s\n",
         (int)getpid(), port_text, threads, seconds,
         getenv("FAULTLINE_CONTROL") ? getenv("FAULTLINE_CONTROL") : "(none)");
  fflush(stdout);

  static struct worker w[MAX_THREADS];
  for (int i = 0; i < threads; i++) {
    w[i].id = i;
    w[i].rng = 0x9e3779b97f4a7c15ull * (unsigned long long)(i + 1) ^
               (unsigned long long)time(NULL);
    if (pthread_create(&w[i].tid, NULL, work, &w[i]) != 0) {
      fprintf(stderr, "stress: pthread_create failed\n");
      kill(server, SIGKILL);
      return 2;
    }
  }
  struct timespec run = {seconds, 0};
  while (nanosleep(&run, &run) != 0 && errno == EINTR)
    ;
  atomic_store(&stop, 1);
  signal(SIGALRM, watchdog);
  alarm(30); /* a worker stuck in the shim would hang the join */
  for (int i = 0; i < threads; i++)
    pthread_join(w[i].tid, NULL);
  alarm(0);
  kill(server, SIGKILL);
  waitpid(server, NULL, 0);

  struct worker sum = {0};
  int idle = 0;
  for (int i = 0; i < threads; i++) {
    sum.iterations += w[i].iterations;
    sum.sessions += w[i].sessions;
    sum.echoes += w[i].echoes;
    sum.lookups += w[i].lookups;
    sum.files += w[i].files;
    sum.hung += w[i].hung;
    sum.calls += w[i].calls;
    sum.bad += w[i].bad;
    for (int k = 0; k < IDX_COUNT; k++)
      sum.faults[k] += w[i].faults[k];
    idle += w[i].iterations == 0;
  }
  unsigned long faults = sum.hung;
  printf("stress: iterations=%lu calls=%lu sessions=%lu echoes=%lu "
         "lookups=%lu files=%lu hung=%lu\n",
         sum.iterations, sum.calls, sum.sessions, sum.echoes, sum.lookups,
         sum.files, sum.hung);
  printf("stress: faults seen:");
  for (int k = 0; k < IDX_COUNT; k++) {
    printf(" %s=%lu", idx_names[k], sum.faults[k]);
    faults += sum.faults[k];
  }
  printf("\nstress: faults_seen=%lu failed_checks=%lu\n", faults, sum.bad);
  if (idle > 0 || sum.echoes == 0) {
    printf("stress: FAIL: %d thread(s) did no iteration, %lu echoes\n", idle,
           sum.echoes);
    return 1;
  }
  printf("stress: %s\n", sum.bad == 0 ? "PASS" : "FAIL");
  if (dir == own_dir) {
    char path[PATH_MAX];
    for (int i = 0; i < threads; i++) {
      snprintf(path, sizeof(path), "%s/w%d", data_dir, i);
      unlink(path);
    }
    rmdir(data_dir);
    rmdir(dir);
  }
  return sum.bad == 0 ? 0 : 1;
}
