/*
 * What is particular to a managed redis-server: its arguments (no
 * persistence, loopback only), readiness, a PING over TCP until it
 * answers +PONG, and a reset over the same kind of connection.
 */
#define _GNU_SOURCE
#include "deps_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/base.h"

#define PROBE_MS 1000        /* one PING attempt: a paused server accepts */
#define REDIS_START_MS 10000 /* from spawning until it answers */

/* A reset, as inline commands: the other clients go first (a previous
 * target's connections may still be closing), then every key, script and
 * function, then the counters INFO shows; the PING marks the end. */
static char reset_cmds[] = "CLIENT KILL TYPE normal SKIPME yes\r\n"
                           "CLIENT KILL TYPE pubsub\r\n"
                           "FLUSHALL\r\n"
                           "SCRIPT FLUSH\r\n"
                           "FUNCTION FLUSH\r\n"
                           "CONFIG RESETSTAT\r\n"
                           "PING\r\n";

/* The PING probe, or the reset's connection (resetting). */
struct probe {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  int open;
  int resetting;
  int reset_waits; /* for the probe's handle to close */
  uint64_t started;
  char buf[512]; /* the reset's replies, an old server's errors too */
  size_t len;
};

static struct probe *probe_of(const struct fl_dep *d) { return d->priv; }

static int find_server(struct fl_dep *d) {
  if (fl_find_program("redis-server", d->server_bin, sizeof(d->server_bin)) !=
      0) {
    fl_dep_seterr(d, "redis-server not found in PATH: install it with "
                     "'apt-get install redis-server'");
    return -ENOENT;
  }
  return 0;
}

static void url(const struct fl_dep *d, char *out, size_t size) {
  snprintf(out, size, "redis://127.0.0.1:%d/0", d->port);
}

static int spawn_server(struct fl_dep *d) {
  char port[16];
  snprintf(port, sizeof(port), "%d", d->port);
  char *argv[] = {d->server_bin, "--port",      port, "--bind",
                  "127.0.0.1",   "--save",      "",   "--appendonly",
                  "no",          "--daemonize", "no", "--dir",
                  d->dir,        NULL};
  return fl_dep_spawn(d, argv, 1);
}

/* ---- the PING probe ---- */

static void probe_start(struct fl_dep *d);

static void probe_closed(uv_handle_t *h) {
  struct fl_dep *d = h->data;
  struct probe *p = probe_of(d);
  p->open = 0;
  d->handles--;
  if (p->reset_waits && d->phase == PH_RESET) {
    p->reset_waits = 0;
    probe_start(d);
  }
}

static void probe_close(struct fl_dep *d) {
  struct probe *p = probe_of(d);
  if (p->open && !uv_is_closing((uv_handle_t *)&p->tcp))
    uv_close((uv_handle_t *)&p->tcp, probe_closed);
}

/* The reset's connection ends: rc 0 when every command said yes. */
static void reset_end(struct fl_dep *d, int rc, const char *why) {
  struct probe *p = probe_of(d);
  probe_close(d);
  if (!p->resetting)
    return;
  p->resetting = 0;
  if (d->phase != PH_RESET)
    return;
  if (rc == 0)
    fl_dep_op_done(d, 0);
  else
    fl_dep_fail(d, rc, "redis: a reset failed: %s", why);
}

/* Does the line [l, end) hold needle? */
static int line_has(const char *l, const char *end, const char *needle) {
  const char *f = strstr(l, needle);
  return f != NULL && f < end;
}

/* The reset's replies so far: done at +PONG, failed at an error reply,
 * except for a command an older server does not know (FUNCTION before
 * Redis 7: it has nothing of the kind to flush). */
static void reset_read(struct fl_dep *d) {
  struct probe *p = probe_of(d);
  for (const char *l = p->buf, *nl; (nl = strchr(l, '\n')) != NULL;
       l = nl + 1) {
    if (l[0] == '-' && !line_has(l, nl, "unknown command") &&
        !line_has(l, nl, "unknown subcommand")) {
      char why[128];
      snprintf(why, sizeof(why), "%.*s", (int)strcspn(l, "\r\n"), l);
      reset_end(d, -EIO, why);
      return;
    }
    if (strncmp(l, "+PONG", 5) == 0) {
      reset_end(d, 0, NULL);
      return;
    }
  }
  if (p->len >= sizeof(p->buf) - 1)
    reset_end(d, -EIO, "an unexpected reply");
}

static void probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct fl_dep *d = h->data;
  struct probe *p = probe_of(d);
  (void)hint;
  size_t room = sizeof(p->buf) - 1 - p->len;
  *buf = uv_buf_init(p->buf + p->len, (unsigned)room);
}

static void probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct fl_dep *d = s->data;
  struct probe *p = probe_of(d);
  (void)buf;
  if (n < 0) {
    reset_end(d, -ECONNRESET, "the connection closed");
    probe_close(d);
    return;
  }
  p->len += (size_t)n;
  p->buf[p->len] = '\0';
  if (p->resetting) {
    reset_read(d);
    return;
  }
  if (strchr(p->buf, '\n') == NULL && p->len < sizeof(p->buf) - 1)
    return;
  /* Anything but +PONG (-LOADING while it loads) means: not yet. */
  int pong = strncmp(p->buf, "+PONG", 5) == 0;
  probe_close(d);
  if (pong && d->phase == PH_BOOT && d->server != NULL)
    fl_dep_boot_ready(d);
}

static void probe_written(uv_write_t *w, int status) {
  struct fl_dep *d = w->data;
  if (status < 0) {
    reset_end(d, status, uv_strerror(status));
    probe_close(d);
  }
}

static void probe_connected(uv_connect_t *req, int status) {
  struct fl_dep *d = req->data;
  if (status < 0) {
    reset_end(d, status, uv_strerror(status));
    probe_close(d);
    return;
  }
  struct probe *p = probe_of(d);
  static char ping[] = "PING\r\n";
  uv_buf_t b = p->resetting ? uv_buf_init(reset_cmds, sizeof(reset_cmds) - 1)
                            : uv_buf_init(ping, sizeof(ping) - 1);
  p->wreq.data = d;
  if (uv_write(&p->wreq, (uv_stream_t *)&p->tcp, &b, 1, probe_written) != 0 ||
      uv_read_start((uv_stream_t *)&p->tcp, probe_alloc, probe_read) != 0)
    probe_close(d);
}

static void probe_start(struct fl_dep *d) {
  struct probe *p = probe_of(d);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", d->port, &addr);
  if (uv_tcp_init(d->loop, &p->tcp) != 0) {
    reset_end(d, -ENOMEM, "cannot open a connection");
    return;
  }
  p->tcp.data = d;
  p->creq.data = d;
  p->open = 1;
  p->len = 0;
  p->started = uv_now(d->loop);
  d->handles++;
  int rc = uv_tcp_connect(&p->creq, &p->tcp, (const struct sockaddr *)&addr,
                          probe_connected);
  if (rc != 0) {
    reset_end(d, rc, uv_strerror(rc));
    probe_close(d);
  }
}

static void reset(struct fl_dep *d) {
  struct probe *p = probe_of(d);
  p->resetting = 1;
  if (p->open) { /* a probe of the boot: the reset waits until it closed */
    p->reset_waits = 1;
    probe_close(d);
    return;
  }
  probe_start(d);
}

static void poll_ready(struct fl_dep *d, uint64_t now) {
  struct probe *p = probe_of(d);
  if (!p->open)
    probe_start(d);
  else if (now - p->started > PROBE_MS)
    probe_close(d);
}

/* The server is ending or being freed: no reset goes on. */
static void halt(struct fl_dep *d) {
  struct probe *p = probe_of(d);
  p->resetting = 0;
  p->reset_waits = 0;
  probe_close(d);
}

const struct fl_dep_kind fl_dep_redis_kind = {
    .name = "redis",
    .faults = ALL_FAULTS &
              ~(FAULT_BIT(FL_DEP_SATURATE) | FAULT_BIT(FL_DEP_UNSATURATE)),
    .start_ms = REDIS_START_MS,
    .stop_signal = SIGTERM,
    .ready_what = "answer PING",
    .priv_size = sizeof(struct probe),
    .find_programs = find_server,
    .spawn_server = spawn_server,
    .url = url,
    .poll_ready = poll_ready,
    .halt = halt,
    .reset = reset,
};
