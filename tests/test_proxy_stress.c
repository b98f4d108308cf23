/*
 * The proxy under churn, through its C API (harness/proxy/proxy.h) in this very
 * process, so that the ASan/UBSan build instruments it and LSan checks it
 * at exit: a libuv loop thread runs one proxy in front of a real
 * redis-server; client threads open and close thousands of connections
 * through it in every way a client can (request and reply, idle close,
 * half-close, close with unread data, reset), while another thread flips
 * proxy faults on and off in the control segment. A second test checks
 * half-closed connections both ways against a peer of our own.
 *
 * What must hold: no crash and no sanitizer report; every reply that
 * arrives complete is exactly what was stored (order and bytes survive
 * latency, jitter, slicing and pacing); the faults were really applied;
 * once they are cleared the proxy serves again; every connection it made
 * to redis is closed; the loop ends with no handle left open; and, in the
 * ASan build, nothing is leaked.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include "control/control.h"
#include "faults/faults.h"
#include "proxy/proxy.h"
#include "support.h"

#define CLIENTS 6
#define WANT_CONNECTIONS 6000
#define MAX_SECONDS 40
#define STEP_MS 300 /* a client's patience with one connection */
#define VALUE_LEN 6000

static struct {
  struct t_redis redis;
  char dir[256], ctl_path[300];
  fl_control_t *ctl;
  uv_loop_t loop;
  uv_async_t stop;
  fl_proxy_t *proxy;
  int port;
  pthread_t loop_thread;
  atomic_int done;
  atomic_long connections, refused, complete, corrupt;
  atomic_ulong injected;
} W;

static void on_stop(uv_async_t *a) {
  fl_proxy_close(W.proxy);
  uv_close((uv_handle_t *)a, NULL);
}

static void *loop_main(void *arg) {
  (void)arg;
  uv_run(&W.loop, UV_RUN_DEFAULT);
  return NULL;
}

/* ---- a client's blocking helpers, each bounded by a deadline ---- */

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in in = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0)
    return -errno;
  if (connect(fd, (struct sockaddr *)&in, sizeof(in)) != 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

static int wait_fd(int fd, short ev, long long deadline) {
  long long left = deadline - t_now_ms();
  if (left <= 0)
    return -1;
  struct pollfd p = {fd, ev, 0};
  return poll(&p, 1, (int)left) > 0 ? 0 : -1;
}

static int send_all(int fd, const char *b, size_t n, long long deadline) {
  while (n > 0) {
    if (wait_fd(fd, POLLOUT, deadline) != 0)
      return -1;
    ssize_t w = send(fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && errno != EAGAIN && errno != EINTR)
      return -1;
    if (w > 0)
      b += w, n -= (size_t)w;
  }
  return 0;
}

/* Reads up to n bytes; returns how many came before EOF, an error or the
 * deadline. */
static size_t read_upto(int fd, char *b, size_t n, long long deadline) {
  size_t got = 0;
  while (got < n && wait_fd(fd, POLLIN, deadline) == 0) {
    ssize_t r = recv(fd, b + got, n - got, MSG_DONTWAIT);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
      break;
    if (r > 0)
      got += (size_t)r;
  }
  return got;
}

static void hard_close(int fd) {
  struct linger l = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

/* One connection used in one of six ways. Values read back must be
 * exactly the ones stored, whatever the faults did to their timing; each
 * client thread (id, 0 to 9) has a key of its own. */
static void one_connection(int id, unsigned *seed, char *value, char *reply) {
  int fd = dial(W.port);
  if (fd < 0) {
    /* Refused (down): wait a little, as a client's retry would. */
    atomic_fetch_add(&W.refused, 1);
    struct timespec ts = {0, 2 * 1000000L};
    nanosleep(&ts, NULL);
    return;
  }
  atomic_fetch_add(&W.connections, 1);
  long long deadline = t_now_ms() + STEP_MS;
  char cmd[128];
  int kind = (int)(rand_r(seed) % 6);
  if (kind == 0) { /* SET then GET a value of our own: must match */
    for (int i = 0; i < VALUE_LEN; i++)
      value[i] = (char)('a' + rand_r(seed) % 26);
    int n =
        snprintf(cmd, sizeof(cmd), "*3\r\n$3\r\nSET\r\n$2\r\nk%d\r\n$%d\r\n",
                 id % 10, VALUE_LEN);
    if (send_all(fd, cmd, (size_t)n, deadline) == 0 &&
        send_all(fd, value, VALUE_LEN, deadline) == 0 &&
        send_all(fd, "\r\n", 2, deadline) == 0 &&
        read_upto(fd, reply, 5, deadline) == 5 &&
        memcmp(reply, "+OK\r\n", 5) == 0) {
      n = snprintf(cmd, sizeof(cmd), "*2\r\n$3\r\nGET\r\n$2\r\nk%d\r\n", id);
      char head[16];
      int hl = snprintf(head, sizeof(head), "$%d\r\n", VALUE_LEN);
      size_t want = (size_t)hl + VALUE_LEN + 2;
      if (send_all(fd, cmd, (size_t)n, deadline) == 0 &&
          read_upto(fd, reply, want, deadline) == want) {
        atomic_fetch_add(&W.complete, 1);
        if (memcmp(reply, head, (size_t)hl) != 0 ||
            memcmp(reply + hl, value, VALUE_LEN) != 0)
          atomic_fetch_add(&W.corrupt, 1);
      }
    }
    close(fd);
  } else if (kind == 1) { /* PING, reply */
    if (send_all(fd, "PING\r\n", 6, deadline) == 0 &&
        read_upto(fd, reply, 7, deadline) == 7) {
      atomic_fetch_add(&W.complete, 1);
      if (memcmp(reply, "+PONG\r\n", 7) != 0)
        atomic_fetch_add(&W.corrupt, 1);
    }
    close(fd);
  } else if (kind == 2) { /* idle close */
    close(fd);
  } else if (kind == 3) { /* half-close: the reply still comes, then EOF */
    if (send_all(fd, "PING\r\n", 6, deadline) == 0) {
      shutdown(fd, SHUT_WR);
      size_t got = read_upto(fd, reply, 64, deadline);
      if (got == 7)
        atomic_fetch_add(&W.complete, 1);
      if (got > 0 && memcmp(reply, "+PONG\r\n", got < 7 ? got : 7) != 0)
        atomic_fetch_add(&W.corrupt, 1);
    }
    close(fd);
  } else if (kind == 4) { /* request, then close with the reply unread */
    send_all(fd, "PING\r\nPING\r\n", 12, deadline);
    close(fd);
  } else { /* reset */
    send_all(fd, "PING\r\n", 6, deadline);
    hard_close(fd);
  }
}

static void *client_main(void *arg) {
  int id = (int)(intptr_t)arg;
  unsigned seed = (unsigned)id * 7919u + 1;
  char *value = malloc(VALUE_LEN), *reply = malloc(VALUE_LEN + 64);
  while (!atomic_load(&W.done))
    one_connection(id, &seed, value, reply);
  free(value);
  free(reply);
  return NULL;
}

/* ---- the fault flipper ------------------------------------------- */

static const char *const toxics[] = {
    "latency@127.0.0.1:%d,ms=3",
    "latency@127.0.0.1:%d,ms=20,jitter=15,dir=both",
    "latency@127.0.0.1:%d,ms=5,toxicity=30%%",
    "bandwidth@127.0.0.1:%d,rate=512k",
    "slicer@127.0.0.1:%d,size=7",
    "slicer@127.0.0.1:%d,size=100,ms=1",
    "stall@127.0.0.1:%d,ms=50",
    "stall@127.0.0.1:%d,dir=down,toxicity=20%%",
    "slow_close@127.0.0.1:%d,ms=10",
    "reset_peer@127.0.0.1:%d,bytes=1000",
    "reset_peer@127.0.0.1:%d,ms=5,toxicity=50%%",
    "limit_data@127.0.0.1:%d,bytes=3000,dir=down",
    "down@127.0.0.1:%d",
    "down@127.0.0.1:%d,toxicity=50%%",
    "down@127.0.0.1:%d,after=3,times=5",
};
#define NTOXICS (sizeof(toxics) / sizeof(toxics[0]))

static void add_toxic(const char *f, uint32_t *id) {
  char spec[128], err[256];
  struct fl_rule r;
  snprintf(spec, sizeof(spec), f, W.redis.port);
  cr_assert_eq(fl_spec_parse(spec, &r, err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(fl_control_add(W.ctl, &r, id), 0);
}

static void remove_toxic(uint32_t id) {
  struct fl_rule_view v;
  if (fl_control_rule(W.ctl, id, &v) == 0)
    atomic_fetch_add(&W.injected, v.injected);
  fl_control_clear(W.ctl, id);
}

/* Up to 5 faults at once, one added or removed every 1-4 ms. */
static void flip_until_done(void) {
  uint32_t on[5] = {0};
  unsigned seed = 12345;
  long long end = t_now_ms() + MAX_SECONDS * 1000LL;
  while (atomic_load(&W.connections) < WANT_CONNECTIONS && t_now_ms() < end) {
    int k = (int)(rand_r(&seed) % 5);
    if (on[k] != 0) {
      remove_toxic(on[k]);
      on[k] = 0;
    } else {
      add_toxic(toxics[rand_r(&seed) % NTOXICS], &on[k]);
    }
    struct timespec ts = {0, (long)(1 + rand_r(&seed) % 4) * 1000000L};
    nanosleep(&ts, NULL);
  }
  for (int k = 0; k < 5; k++)
    if (on[k] != 0)
      remove_toxic(on[k]);
}

/* ---- checks after the storm -------------------------------------- */

/* INFO clients' connected_clients, asked directly (not proxied). */
static int redis_clients(void) {
  int fd = dial(W.redis.port);
  if (fd < 0)
    return -1;
  char buf[4096];
  long long deadline = t_now_ms() + 2000;
  const char *q = "*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n";
  int n = -1;
  if (send_all(fd, q, strlen(q), deadline) == 0) {
    size_t got = read_upto(fd, buf, sizeof(buf) - 1, t_now_ms() + 200);
    buf[got] = '\0';
    const char *at = strstr(buf, "connected_clients:");
    if (at != NULL)
      n = atoi(at + 18);
  }
  close(fd);
  return n;
}

static int ping_through_proxy(void) {
  int fd = dial(W.port);
  if (fd < 0)
    return -1;
  char reply[8];
  long long deadline = t_now_ms() + 500;
  int ok = send_all(fd, "PING\r\n", 6, deadline) == 0 &&
           read_upto(fd, reply, 7, deadline) == 7 &&
           memcmp(reply, "+PONG\r\n", 7) == 0;
  close(fd);
  return ok ? 0 : -1;
}

/* A proxy to 127.0.0.1:port on a loop thread, with a fresh segment. */
static void world_start(int port) {
  cr_assert_eq(t_mkdtemp(W.dir), 0);
  snprintf(W.ctl_path, sizeof(W.ctl_path), "%s/ctl", W.dir);
  cr_assert_eq(fl_control_create(W.ctl_path, 99, &W.ctl), 0);
  cr_assert_eq(uv_loop_init(&W.loop), 0);
  struct sockaddr_in up = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(fl_proxy_start(&W.loop, W.ctl, (struct sockaddr *)&up, &W.proxy),
               0);
  W.port = fl_proxy_port(W.proxy);
  cr_assert_eq(uv_async_init(&W.loop, &W.stop, on_stop), 0);
  cr_assert_eq(pthread_create(&W.loop_thread, NULL, loop_main, NULL), 0);
}

/* Closes the proxy from its own loop and checks nothing stays open. */
static void world_stop(void) {
  uv_async_send(&W.stop);
  pthread_join(W.loop_thread, NULL);
  cr_expect_eq(uv_loop_close(&W.loop), 0, "handles left open on the loop");
  fl_control_remove(W.ctl);
  t_rmtree(W.dir);
}

Test(proxy_stress, churn_while_faults_flip, .timeout = 180) {
  cr_assert_eq(t_redis_start(&W.redis), 0);
  world_start(W.redis.port);

  pthread_t clients[CLIENTS];
  for (int i = 0; i < CLIENTS; i++)
    cr_assert_eq(
        pthread_create(&clients[i], NULL, client_main, (void *)(intptr_t)i), 0);
  flip_until_done();
  atomic_store(&W.done, 1);
  for (int i = 0; i < CLIENTS; i++)
    pthread_join(clients[i], NULL);

  long conns = atomic_load(&W.connections);
  cr_log_info(
      "%ld connections accepted, %ld refused, %ld complete replies, %lu "
      "faults injected",
      conns, atomic_load(&W.refused), atomic_load(&W.complete),
      (unsigned long)atomic_load(&W.injected));
  cr_expect_geq(conns, WANT_CONNECTIONS / 2, "only %ld connections", conns);
  cr_expect_eq(atomic_load(&W.corrupt), 0,
               "%ld replies differ from what was stored",
               atomic_load(&W.corrupt));
  cr_expect_gt(atomic_load(&W.complete), conns / 10);
  cr_expect_gt(atomic_load(&W.injected), 100, "faults hardly ever applied");

  /* Faults all cleared: the proxy serves again, within its tick. */
  long long t0 = t_now_ms();
  while (ping_through_proxy() != 0 && t_now_ms() - t0 < 3000)
    ;
  cr_expect_eq(ping_through_proxy(), 0, "no PONG through the proxy after");
  /* Every connection the proxy made to redis is closed again: only our
   * own question remains. */
  int n;
  t0 = t_now_ms();
  while ((n = redis_clients()) != 1 && t_now_ms() - t0 < 5000) {
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
  cr_expect_eq(n, 1, "redis still has %d clients", n);

  world_stop();
  t_redis_stop(&W.redis);
#if defined(__SANITIZE_ADDRESS__)
  /* Criterion's workers end without LSan's exit-time check: ask for it
   * here (a no-op unless ASAN_OPTIONS has detect_leaks=1, as scripts/test
   * sets it). */
  cr_expect_eq(__lsan_do_recoverable_leak_check(), 0,
               "LeakSanitizer found leaks (reported above)");
#endif
}

/* ---- half-close, both ways ---------------------------------------- */

/* A peer that half-closes: for the first connection it reads to EOF,
 * then answers "bye:" and what it read, then closes; for the second it
 * says "first" and half-closes, then reads to EOF and reports what came
 * after its own end of stream. */
static struct {
  int listen_fd, port;
  char late[64];
  pthread_t thread;
} P;

static void *peer_main(void *arg) {
  (void)arg;
  char buf[64];
  int fd = accept(P.listen_fd, NULL, NULL);
  size_t n = read_upto(fd, buf, sizeof(buf) - 1, t_now_ms() + 5000);
  char reply[96];
  int len = snprintf(reply, sizeof(reply), "bye:%.*s", (int)n, buf);
  send_all(fd, reply, (size_t)len, t_now_ms() + 5000);
  close(fd);
  fd = accept(P.listen_fd, NULL, NULL);
  send_all(fd, "first", 5, t_now_ms() + 5000);
  shutdown(fd, SHUT_WR);
  n = read_upto(fd, P.late, sizeof(P.late) - 1, t_now_ms() + 5000);
  P.late[n] = '\0';
  close(fd);
  return NULL;
}

Test(proxy_stress, half_close_both_ways, .timeout = 60) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  P.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_eq(bind(P.listen_fd, (struct sockaddr *)&a, len), 0);
  cr_assert_eq(listen(P.listen_fd, 4), 0);
  cr_assert_eq(getsockname(P.listen_fd, (struct sockaddr *)&a, &len), 0);
  P.port = ntohs(a.sin_port);
  cr_assert_eq(pthread_create(&P.thread, NULL, peer_main, NULL), 0);
  world_start(P.port);

  /* The client ends its side first: its bytes and its EOF reach the
   * peer, whose answer still comes back, then the peer's close. */
  int fd = dial(W.port);
  cr_assert_geq(fd, 0);
  cr_assert_eq(send_all(fd, "hello", 5, t_now_ms() + 5000), 0);
  cr_assert_eq(shutdown(fd, SHUT_WR), 0);
  char buf[64];
  size_t n = read_upto(fd, buf, sizeof(buf) - 1, t_now_ms() + 5000);
  buf[n] = '\0';
  cr_expect_str_eq(buf, "bye:hello", "after our EOF the peer said '%s'", buf);
  close(fd);

  /* The peer ends its side first: the client reads its bytes and EOF,
   * and may still send; the peer gets that. */
  fd = dial(W.port);
  cr_assert_geq(fd, 0);
  n = read_upto(fd, buf, sizeof(buf) - 1, t_now_ms() + 5000);
  buf[n] = '\0';
  cr_expect_str_eq(buf, "first", "before its EOF the peer said '%s'", buf);
  cr_assert_eq(send_all(fd, "late", 4, t_now_ms() + 5000), 0);
  shutdown(fd, SHUT_WR);
  pthread_join(P.thread, NULL);
  cr_expect_str_eq(P.late, "late", "after its own EOF the peer got '%s'",
                   P.late);
  close(fd);
  close(P.listen_fd);
  world_stop();
}
