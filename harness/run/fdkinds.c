/*
 * What the target's descriptors are: inbound connections (accepted on its
 * port), outbound connections per dependency, files, and the rest, counted
 * over every process of its session (uvicorn's workers too).
 *
 * Read from /proc, not asked of the shim: the shim sees each accept() and
 * connect(), but keeping a table there would put bookkeeping on its hot
 * path. /proc/PID/fd gives each descriptor's link (socket:[INODE], a path,
 * pipe:...) and the kernel's TCP tables (/proc/PID/net/tcp, tcp6) give each
 * socket inode's local and remote port: a local port that is the target's
 * is an inbound connection, a remote port that is a dependency's (or its
 * proxy's) an outbound connection to it.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run_int.h"

/* TCP state 0A: listening (include/net/tcp_states.h). */
#define TCP_LISTEN_STATE 0x0A

struct tcp_sock {
  unsigned long inode;
  int lport, rport, listen;
};

struct tcp_table {
  struct tcp_sock *v;
  size_t n, cap;
};

/* The ports a sample tells apart. */
struct ports {
  int target;
  int dep[FL_RESULT_CONNS][2]; /* a dependency's port, its proxy's */
  size_t ndeps;
};

static int add_sock(struct tcp_table *t, const struct tcp_sock *s) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct tcp_sock *v = realloc(t->v, cap * sizeof(*v));
    if (v == NULL)
      return -ENOMEM;
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n++] = *s;
  return 0;
}

/* The sockets of one of /proc/PID/net/tcp{,6}: "sl local rem st queues tr
 * retrnsmt uid timeout inode ...", addresses as HEX:PORT. */
static int read_tcp(const char *path, struct tcp_table *t) {
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  char line[512];
  int rc = 0;
  while (rc == 0 && fgets(line, sizeof(line), f) != NULL) {
    unsigned lport, rport, st;
    unsigned long inode;
    if (sscanf(line,
               " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%x %x %*s %*s %*s "
               "%*u %*u %lu",
               &lport, &rport, &st, &inode) != 4 ||
        inode == 0)
      continue;
    struct tcp_sock s = {inode, (int)lport, (int)rport, st == TCP_LISTEN_STATE};
    rc = add_sock(t, &s);
  }
  fclose(f);
  return rc;
}

static int by_inode(const void *a, const void *b) {
  unsigned long x = ((const struct tcp_sock *)a)->inode;
  unsigned long y = ((const struct tcp_sock *)b)->inode;
  return x < y ? -1 : x > y;
}

/* Whether `pid` leads process `p`'s session: the target runs detached
 * (setsid), so its workers and their children are in its session. */
static int in_session(int p, int pid) {
  char path[64], buf[512];
  snprintf(path, sizeof(path), "/proc/%d/stat", p);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  /* The name in parentheses may hold anything: fields follow the last ')'. */
  char *end = strrchr(buf, ')');
  int session = 0;
  if (end == NULL || sscanf(end + 1, " %*c %*d %*d %d", &session) != 1)
    return 0;
  return session == pid;
}

/* Which kind a socket inode is, into s. */
static void count_socket(unsigned long inode, const struct tcp_table *t,
                         const struct ports *pt, struct fl_result_sample *s) {
  struct tcp_sock key = {.inode = inode};
  const struct tcp_sock *k = bsearch(&key, t->v, t->n, sizeof(*t->v), by_inode);
  if (k == NULL || k->listen) {
    s->other++; /* unix, udp, listening: the service's own */
    return;
  }
  if (k->lport == pt->target) {
    s->inbound++;
    return;
  }
  for (size_t i = 0; i < pt->ndeps; i++)
    if (k->rport == pt->dep[i][0] || k->rport == pt->dep[i][1]) {
      s->conns[i]++;
      return;
    }
  s->conns_other++;
}

/* 0, or -1 when process pid's descriptors cannot be read. */
static int count_fds(int pid, const struct tcp_table *t, const struct ports *pt,
                     struct fl_result_sample *s) {
  char path[64], link[256];
  snprintf(path, sizeof(path), "/proc/%d/fd", pid);
  DIR *d = opendir(path);
  if (d == NULL)
    return -1;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (e->d_name[0] == '.')
      continue;
    s->fds++;
    ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
    if (n <= 0)
      continue; /* closed meanwhile */
    link[n] = '\0';
    unsigned long inode;
    if (sscanf(link, "socket:[%lu]", &inode) == 1)
      count_socket(inode, t, pt, s);
    else if (link[0] == '/')
      s->files++;
    else
      s->other++;
  }
  closedir(d);
  return 0;
}

static long rss_kb(int pid) {
  char path[64];
  long pages = 0, rss = 0;
  snprintf(path, sizeof(path), "/proc/%d/statm", pid);
  FILE *f = fopen(path, "re");
  if (f == NULL)
    return 0;
  if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
    rss = 0;
  fclose(f);
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void get_ports(const struct srun *r, struct ports *pt) {
  pt->target = r->port;
  pt->ndeps = r->ndeps < FL_RESULT_CONNS ? r->ndeps : FL_RESULT_CONNS;
  for (size_t i = 0; i < pt->ndeps; i++) {
    pt->dep[i][0] = r->deps[i] ? fl_dep_port(r->deps[i]) : -1;
    pt->dep[i][1] =
        r->proxies && r->proxies[i] ? fl_proxy_port(r->proxies[i]) : -1;
  }
}

int fl_target_count_fds(const struct srun *r, struct fl_result_sample *s) {
  int pid = r->target.pid;
  char path[64];
  struct tcp_table t = {0};
  struct ports pt;
  get_ports(r, &pt);
  int rc = 0, found = 0;
  for (int v6 = 0; v6 < 2 && rc == 0; v6++) {
    snprintf(path, sizeof(path), "/proc/%d/net/tcp%s", pid, v6 ? "6" : "");
    rc = read_tcp(path, &t);
  }
  DIR *d = opendir("/proc");
  if (rc != 0 || d == NULL) {
    free(t.v);
    if (d != NULL)
      closedir(d);
    return rc ? rc : -errno;
  }
  qsort(t.v, t.n, sizeof(*t.v), by_inode);
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    int p = isdigit((unsigned char)e->d_name[0]) ? atoi(e->d_name) : 0;
    if (p <= 0 || (p != pid && !in_session(p, pid)))
      continue;
    if (count_fds(p, &t, &pt, s) != 0)
      continue;
    s->rss_kb += rss_kb(p);
    found += p == pid;
  }
  closedir(d);
  free(t.v);
  return found ? 0 : -ESRCH; /* the target itself is gone */
}
