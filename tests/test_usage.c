/*
 * Usage recording, the shim's side of audit discovery: the tables alone
 * (preload/usage.c compiled into this test) under many threads and past
 * their size, and the real shim in a Python process with recording off
 * and on, pooled connections included.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control/control.h"
#include "support.h"

/* preload/usage.c, linked in by tests/CMakeLists.txt. */
void fl_usage_dest(struct fl_usage *u, const struct fl_addr *a, int connect);
void fl_usage_name(struct fl_usage *u, const char *name);
void fl_usage_path(struct fl_usage *u, const char *path, uint32_t flags);

#define THREADS 8
#define ROUNDS 50

static struct fl_usage *table;

static struct fl_addr loopback(int port) {
  struct fl_addr a = {.family = AF_INET, .port = (uint16_t)port};
  a.addr[0] = 127;
  a.addr[3] = 1;
  return a;
}

/* Every thread records the same keys, more of them than the tables hold,
 * in an order of its own, so that claims race. */
static void *hammer(void *arg) {
  int id = (int)(intptr_t)arg;
  char text[64];
  for (int r = 0; r < ROUNDS; r++)
    for (int k = 0; k < FL_USE_PATHS + 44; k++) {
      int key = (k * 7 + id * 13) % (FL_USE_PATHS + 44);
      struct fl_addr a = loopback(1000 + key);
      fl_usage_dest(table, &a, key % 2);
      snprintf(text, sizeof(text), "/data/file-%d", key);
      fl_usage_path(table, text, key % 3 == 0 ? FL_USEF_CREATE : 0);
      snprintf(text, sizeof(text), "Host-%d.Example", key % FL_USE_NAMES);
      fl_usage_name(table, text);
    }
  return NULL;
}

Test(usage_tables, threads_and_overflow, .timeout = 60) {
  table = calloc(1, sizeof(*table));
  struct fl_usage_view *v = calloc(1, sizeof(*v));
  cr_assert(table != NULL && v != NULL);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    cr_assert_eq(pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)i), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(t[i], NULL);
  fl_usage_read(table, v);
  /* Full tables, each key once, and exact counts despite the races. */
  cr_assert_eq(v->ndests, FL_USE_DESTS);
  cr_assert_eq(v->npaths, FL_USE_PATHS);
  cr_assert_eq(v->nnames, FL_USE_NAMES);
  uint64_t per_key = THREADS * ROUNDS;
  for (size_t i = 0; i < v->ndests; i++) {
    int key = v->dests[i].addr.port - 1000;
    cr_assert_eq(v->dests[i].connects, key % 2 ? per_key : 0);
    cr_assert_eq(v->dests[i].ios, key % 2 ? 0 : per_key);
    for (size_t j = 0; j < i; j++)
      cr_assert_neq(v->dests[j].addr.port, v->dests[i].addr.port);
  }
  for (size_t i = 0; i < v->npaths; i++) {
    int key = atoi(v->paths[i].text + strlen("/data/file-"));
    cr_assert_eq(v->paths[i].count, per_key, "%s", v->paths[i].text);
    cr_assert_eq(v->paths[i].flags, key % 3 == 0 ? FL_USEF_CREATE : 0u);
  }
  /* Names are lower-cased; the 300 lookups per round hit 128 names. */
  uint64_t names = 0;
  for (size_t i = 0; i < v->nnames; i++) {
    cr_assert_eq(strncmp(v->names[i].text, "host-", 5), 0);
    cr_assert(strstr(v->names[i].text, ".example") != NULL);
    names += v->names[i].count;
  }
  cr_assert_eq(names, per_key * (FL_USE_PATHS + 44));
  /* What found no slot was counted, not stored: 44 keys per table that
   * overflowed (dests and paths), every time they came. */
  cr_assert_eq(v->overflow, 2 * 44 * per_key);
  /* A delta against itself is empty; against nothing, all of it. */
  struct fl_usage_view *d = calloc(1, sizeof(*d));
  fl_usage_delta(v, v, d);
  cr_assert_eq(d->ndests + d->nnames + d->npaths, 0);
  cr_assert_eq(d->overflow, 0);
  fl_usage_delta(NULL, v, d);
  cr_assert_eq(d->ndests, FL_USE_DESTS);
  free(d);
  free(v);
  free(table);
}

/* The real shim in Python: a connection opened with recording off, then
 * used with it on (a pooled connection), a new connection, a file written
 * and a name resolved. */
static const char *script =
    "import os, socket, sys\n"
    "port, d = int(sys.argv[1]), sys.argv[2]\n"
    "pool = socket.create_connection(('127.0.0.1', port))\n"
    "print('ready', flush=True)\n"
    "for line in sys.stdin:\n"
    "    if line.startswith('use'):\n"
    "        pool.sendall(b'x')\n"
    "        s = socket.create_connection(('127.0.0.1', port)); s.close()\n"
    "        open(os.path.join(d, 'out.txt'), 'w').write('x')\n"
    "        socket.getaddrinfo('localhost', 80)\n"
    "    print('done', flush=True)\n";

static const struct fl_usage_dest_view *find_dest(const struct fl_usage_view *v,
                                                  int port) {
  for (size_t i = 0; i < v->ndests; i++)
    if (v->dests[i].addr.port == port)
      return &v->dests[i];
  return NULL;
}

Test(usage_shim, records_only_when_on, .timeout = 60) {
  char tmp[256], ctlpath[320], err[256], portarg[16], env_ld[400], env_ctl[400],
      line[128];
  cr_assert_eq(t_mkdtemp(tmp), 0);
  snprintf(ctlpath, sizeof(ctlpath), "%s/control", tmp);
  fl_control_t *c = NULL;
  cr_assert_eq(fl_control_setup(ctlpath, 1, &c, err, sizeof(err)), 0, "%s",
               err);
  int lfd = socket(AF_INET, SOCK_STREAM, 0), port = t_free_port();
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)port),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  cr_assert_eq(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  cr_assert_eq(listen(lfd, 16), 0);
  snprintf(portarg, sizeof(portarg), "%d", port);
  snprintf(env_ld, sizeof(env_ld), "LD_PRELOAD=%s", T_SHIM);
  snprintf(env_ctl, sizeof(env_ctl), "%s=%s", FL_CTL_ENV, ctlpath);
  char *const argv[] = {"python3", "-c", (char *)script, portarg, tmp, NULL};
  char *const env[] = {env_ld, env_ctl, "PATH=/usr/bin:/bin", NULL};
  struct t_proc p;
  cr_assert_eq(t_spawn(&p, argv, env, 0), 0);
  cr_assert_eq(t_expect(&p, "ready", NULL, 0, 20000), 0);

  struct fl_usage_view *v = calloc(1, sizeof(*v));
  t_send(&p, "use");
  cr_assert_eq(t_expect(&p, "done", line, sizeof(line), 20000), 0);
  fl_control_usage(c, v);
  cr_assert_eq(v->ndests + v->nnames + v->npaths, 0, "recorded while off");

  cr_assert_eq(fl_control_set_recording(c, 1), 0);
  t_send(&p, "use");
  cr_assert_eq(t_expect(&p, "done", line, sizeof(line), 20000), 0);
  fl_control_usage(c, v);
  const struct fl_usage_dest_view *d = find_dest(v, port);
  cr_assert(d != NULL, "the destination was not recorded");
  cr_assert_eq(d->connects, 1, "one new connection");
  cr_assert_geq(d->ios, 1, "the pooled connection's send");
  char want[300];
  snprintf(want, sizeof(want), "%s/out.txt", tmp);
  int found = 0;
  for (size_t i = 0; i < v->npaths; i++)
    if (strcmp(v->paths[i].text, want) == 0)
      found = (v->paths[i].flags & FL_USEF_CREATE) != 0;
  cr_assert(found, "the written file was not recorded as created");
  found = 0;
  for (size_t i = 0; i < v->nnames; i++)
    found |= strcmp(v->names[i].text, "localhost") == 0;
  cr_assert(found, "the resolved name was not recorded");

  /* Off again: nothing more. */
  cr_assert_eq(fl_control_set_recording(c, 0), 0);
  struct fl_usage_view *after = calloc(1, sizeof(*after)),
                       *delta = calloc(1, sizeof(*delta));
  t_send(&p, "use");
  cr_assert_eq(t_expect(&p, "done", line, sizeof(line), 20000), 0);
  fl_control_usage(c, after);
  fl_usage_delta(v, after, delta);
  cr_assert_eq(delta->ndests + delta->nnames + delta->npaths, 0);
  t_finish(&p, 5000);
  close(lfd);
  free(v);
  free(after);
  free(delta);
  fl_control_remove(c);
  t_rmtree(tmp);
}
