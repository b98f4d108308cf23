/*
 * An http dependency: a stub upstream answering per method and path with
 * the service file's status, headers, body and latency. faultline serves
 * it itself (`faultline-run stub FILE`, libmicrohttpd), as a child process
 * like any server, so kill and pause apply; its proxy follows HTTP, so the
 * http_* faults apply too. Ready when it accepts a connection.
 *
 * A ws dependency is its WebSocket sibling (`faultline-run wsstub FILE`):
 * an echo, with a broadcast every broadcast_ms if the file says so; its
 * proxy follows WebSocket frames, so the ws_* faults apply.
 */
#define _GNU_SOURCE
#include "deps_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

#define PROBE_MS 1000
#define STUB_START_MS 10000

struct probe {
  uv_tcp_t tcp;
  uv_connect_t creq;
  int open;
  uint64_t started;
  char config[PATH_MAX];
};

static struct probe *probe_of(const struct fl_dep *d) { return d->priv; }

static int find_stub(struct fl_dep *d) {
  if (fl_find_beside("faultline-run", d->server_bin, sizeof(d->server_bin)) !=
      0) {
    fl_dep_seterr(d, "faultline-run not found beside faultline: it serves "
                     "http dependencies");
    return -ENOENT;
  }
  return 0;
}

/* The routes, where the stub reads them. */
static int write_config(struct fl_dep *d) {
  struct probe *p = probe_of(d);
  const char *json = d->config != NULL ? d->config : "{\"routes\":[]}";
  if ((size_t)snprintf(p->config, sizeof(p->config), "%s/%s.json", d->dir,
                       d->kind->name) >= sizeof(p->config)) {
    fl_dep_seterr(d, "%s: path too long", d->dir);
    return -ENAMETOOLONG;
  }
  int fd = open(p->config, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fl_dep_seterr(d, "cannot write %s: %s", p->config, strerror(errno));
    return -errno;
  }
  size_t n = strlen(json);
  ssize_t w = write(fd, json, n);
  int rc = w == (ssize_t)n ? 0 : -EIO;
  close(fd);
  if (rc != 0)
    fl_dep_seterr(d, "cannot write %s", p->config);
  return rc;
}

static void url(const struct fl_dep *d, char *out, size_t size) {
  snprintf(out, size, "http://127.0.0.1:%d", d->port);
}

static void ws_url(const struct fl_dep *d, char *out, size_t size) {
  snprintf(out, size, "ws://127.0.0.1:%d/", d->port);
}

static int spawn_server(struct fl_dep *d) {
  char port[16];
  snprintf(port, sizeof(port), "%d", d->port);
  char *cmd = strcmp(d->kind->name, "ws") == 0 ? "wsstub" : "stub";
  char *argv[] = {d->server_bin,       cmd, "--port", port,
                  probe_of(d)->config, NULL};
  return fl_dep_spawn(d, argv, 1);
}

/* ---- readiness: a connection is accepted ---- */

static void probe_closed(uv_handle_t *h) {
  struct fl_dep *d = h->data;
  probe_of(d)->open = 0;
  d->handles--;
}

static void probe_close(struct fl_dep *d) {
  struct probe *p = probe_of(d);
  if (p->open && !uv_is_closing((uv_handle_t *)&p->tcp))
    uv_close((uv_handle_t *)&p->tcp, probe_closed);
}

static void probe_connected(uv_connect_t *req, int status) {
  struct fl_dep *d = req->data;
  probe_close(d);
  if (status == 0 && d->phase == PH_BOOT && d->server != NULL)
    fl_dep_boot_ready(d);
}

static void poll_ready(struct fl_dep *d, uint64_t now) {
  struct probe *p = probe_of(d);
  if (p->open) {
    if (now - p->started > PROBE_MS)
      probe_close(d);
    return;
  }
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", d->port, &addr);
  if (uv_tcp_init(d->loop, &p->tcp) != 0)
    return;
  p->tcp.data = d;
  p->creq.data = d;
  p->open = 1;
  p->started = now;
  d->handles++;
  if (uv_tcp_connect(&p->creq, &p->tcp, (const struct sockaddr *)&addr,
                     probe_connected) != 0)
    probe_close(d);
}

const struct fl_dep_kind fl_dep_http_kind = {
    .name = "http",
    .faults = ALL_FAULTS &
              ~(FAULT_BIT(FL_DEP_SATURATE) | FAULT_BIT(FL_DEP_UNSATURATE)),
    .start_ms = STUB_START_MS,
    .stop_signal = SIGTERM,
    .ready_what = "accept a connection",
    .priv_size = sizeof(struct probe),
    .find_programs = find_stub,
    .prepare = write_config,
    .spawn_server = spawn_server,
    .url = url,
    .poll_ready = poll_ready,
    .halt = probe_close,
};

const struct fl_dep_kind fl_dep_ws_kind = {
    .name = "ws",
    .faults = ALL_FAULTS &
              ~(FAULT_BIT(FL_DEP_SATURATE) | FAULT_BIT(FL_DEP_UNSATURATE)),
    .start_ms = STUB_START_MS,
    .stop_signal = SIGTERM,
    .ready_what = "accept a connection",
    .priv_size = sizeof(struct probe),
    .find_programs = find_stub,
    .prepare = write_config,
    .spawn_server = spawn_server,
    .url = ws_url,
    .poll_ready = poll_ready,
    .halt = probe_close,
};
