/*
 * What is particular to a managed redis-server: its arguments (no
 * persistence, loopback only) and readiness, a PING over TCP until it
 * answers +PONG.
 */
#define _GNU_SOURCE
#include "deps_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

#define PROBE_MS 1000 /* one PING attempt: a paused server accepts */

int fl_redis_find_server(struct fl_dep *d) {
  if (fl_find_program("redis-server", d->server_bin, sizeof(d->server_bin)) !=
      0) {
    fl_dep_seterr(d, "redis-server not found in PATH: install it with "
                     "'apt-get install redis-server'");
    return -ENOENT;
  }
  return 0;
}

int fl_redis_spawn_server(struct fl_dep *d) {
  char port[16];
  snprintf(port, sizeof(port), "%d", d->port);
  snprintf(d->url, sizeof(d->url), "redis://127.0.0.1:%d/0", d->port);
  char *argv[] = {d->server_bin, "--port",      port, "--bind",
                  "127.0.0.1",   "--save",      "",   "--appendonly",
                  "no",          "--daemonize", "no", "--dir",
                  d->dir,        NULL};
  return fl_dep_spawn(d, argv, 1);
}

/* ---- the PING probe ---- */

static void probe_closed(uv_handle_t *h) {
  struct fl_dep *d = h->data;
  d->probe.open = 0;
  d->handles--;
}

void fl_redis_probe_close(struct fl_dep *d) {
  if (d->probe.open && !uv_is_closing((uv_handle_t *)&d->probe.tcp))
    uv_close((uv_handle_t *)&d->probe.tcp, probe_closed);
}

static void probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct fl_dep *d = h->data;
  (void)hint;
  size_t room = sizeof(d->probe.buf) - 1 - d->probe.len;
  *buf = uv_buf_init(d->probe.buf + d->probe.len, (unsigned)room);
}

static void probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct fl_dep *d = s->data;
  (void)buf;
  if (n < 0) {
    fl_redis_probe_close(d);
    return;
  }
  d->probe.len += (size_t)n;
  d->probe.buf[d->probe.len] = '\0';
  if (strchr(d->probe.buf, '\n') == NULL &&
      d->probe.len < sizeof(d->probe.buf) - 1)
    return;
  /* Anything but +PONG (-LOADING while it loads) means: not yet. */
  int pong = strncmp(d->probe.buf, "+PONG", 5) == 0;
  fl_redis_probe_close(d);
  if (pong && d->phase == PH_BOOT && d->server != NULL)
    fl_dep_boot_ready(d);
}

static void probe_written(uv_write_t *w, int status) {
  struct fl_dep *d = w->data;
  if (status < 0)
    fl_redis_probe_close(d);
}

static void probe_connected(uv_connect_t *req, int status) {
  struct fl_dep *d = req->data;
  if (status < 0) {
    fl_redis_probe_close(d);
    return;
  }
  static char ping[] = "PING\r\n";
  uv_buf_t b = uv_buf_init(ping, sizeof(ping) - 1);
  d->probe.wreq.data = d;
  if (uv_write(&d->probe.wreq, (uv_stream_t *)&d->probe.tcp, &b, 1,
               probe_written) != 0 ||
      uv_read_start((uv_stream_t *)&d->probe.tcp, probe_alloc, probe_read) != 0)
    fl_redis_probe_close(d);
}

static void probe_start(struct fl_dep *d) {
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", d->port, &addr);
  if (uv_tcp_init(d->loop, &d->probe.tcp) != 0)
    return;
  d->probe.tcp.data = d;
  d->probe.creq.data = d;
  d->probe.open = 1;
  d->probe.len = 0;
  d->probe.started = uv_now(d->loop);
  d->handles++;
  if (uv_tcp_connect(&d->probe.creq, &d->probe.tcp,
                     (const struct sockaddr *)&addr, probe_connected) != 0)
    fl_redis_probe_close(d);
}

void fl_redis_poll_ready(struct fl_dep *d, uint64_t now) {
  if (!d->probe.open)
    probe_start(d);
  else if (now - d->probe.started > PROBE_MS)
    fl_redis_probe_close(d);
}
