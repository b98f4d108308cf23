/*
 * The HTTP side of the control server: libmicrohttpd on the libuv loop.
 *
 * MHD runs without a thread of its own (external mode, MHD_USE_EPOLL):
 * its one epoll descriptor is watched by a uv_poll and its timeouts by a
 * uv_timer, and MHD_run is called from their callbacks. So every request
 * is handled on the loop's thread, the thread that owns the proxies: the
 * handlers change proxies and rules directly, with no lock and no hand-off
 * (a thread of MHD's own would need a uv_async and a wait per request).
 * The handlers are short (no blocking call but a getaddrinfo of a name the
 * client gave), so the proxies' traffic does not wait on them noticeably.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "serve_int.h"

#define BODY_MAX (1u << 20) /* a Toxiproxy request is a few hundred bytes */
#define IDLE_S 60           /* an idle keep-alive connection is closed */

/* A request's body as it arrives. */
struct upload {
  char *data;
  size_t len;
  int too_big;
};

void fl_reply_error(struct reply *r, int status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  json_decref(r->body);
  r->status = status;
  r->body = json_pack("{s:s, s:i}", "error", msg, "status", status);
}

const char *fl_request_arg(const struct request *q, const char *key) {
  return MHD_lookup_connection_value(q->conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct reply *r) {
  char *text = NULL;
  size_t len = 0;
  if (r->body != NULL) {
    /* Toxiproxy's bodies end with a newline; some clients log them. */
    char *dumped = json_dumps(r->body, JSON_COMPACT | JSON_REAL_PRECISION(6));
    if (dumped != NULL && asprintf(&text, "%s\n", dumped) > 0)
      len = strlen(text);
    free(dumped);
    json_decref(r->body);
    r->body = NULL;
  }
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
  if (resp == NULL) {
    free(text);
    return MHD_NO;
  }
  if (len > 0)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            "application/json");
  enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ok;
}

/* Is the request allowed? Toxiproxy refuses browsers (a page must not
 * drive a local chaos server); with a token, it must be presented. */
static int allowed(fl_serve_t *s, struct MHD_Connection *c, struct reply *r) {
  const char *ua = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_USER_AGENT);
  if (ua != NULL && strncmp(ua, "Mozilla/", 8) == 0) {
    fl_reply_error(r, 403, "User agent not allowed");
    return 0;
  }
  if (s->token == NULL)
    return 1;
  const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_AUTHORIZATION);
  size_t tl = strlen(s->token);
  /* Compared without an early exit, so timing says nothing of the token. */
  unsigned diff = auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
                  strlen(auth + 7) != tl;
  for (size_t i = 0; !diff && i < tl; i++)
    diff |= (unsigned)(auth[7 + i] ^ s->token[i]);
  if (diff == 0)
    return 1;
  fl_reply_error(r, 401, "missing or wrong token (Authorization: Bearer)");
  return 0;
}

static void handle(fl_serve_t *s, struct MHD_Connection *c, const char *url,
                   const char *method, struct upload *up, struct reply *r) {
  if (!allowed(s, c, r))
    return;
  if (up->too_big) {
    fl_reply_error(r, 413, "request body over %u bytes", BODY_MAX);
    return;
  }
  struct request q = {.method = method, .path = url, .conn = c};
  json_error_t jerr;
  if (up->len > 0) {
    q.body = json_loadb(up->data, up->len, JSON_DECODE_ANY, &jerr);
    if (q.body == NULL)
      q.body_error = jerr.text;
  }
  fl_serve_route(s, &q, r);
  json_decref(q.body);
}

/* MHD's access handler: called once when the headers are in, again for
 * each piece of the body, then once more to answer. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **con_cls) {
  (void)version;
  struct upload *up = *con_cls;
  if (up == NULL) {
    if ((up = calloc(1, sizeof(*up))) == NULL)
      return MHD_NO;
    *con_cls = up;
    return MHD_YES;
  }
  if (*size > 0) {
    if (!up->too_big && up->len + *size <= BODY_MAX) {
      char *grown = realloc(up->data, up->len + *size);
      if (grown == NULL)
        return MHD_NO;
      memcpy(grown + up->len, data, *size);
      up->data = grown;
      up->len += *size;
    } else {
      up->too_big = 1;
    }
    *size = 0;
    return MHD_YES;
  }
  struct reply r = {.status = 500};
  handle(cls, c, url, method, up, &r);
  return send_reply(c, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why) {
  (void)cls, (void)c, (void)why;
  struct upload *up = *con_cls;
  if (up != NULL) {
    free(up->data);
    free(up);
    *con_cls = NULL;
  }
}

/* ---- MHD on the loop --------------------------------------------- */

static void run_mhd(fl_serve_t *s);

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)status, (void)events;
  run_mhd(h->data);
}

static void on_timer(uv_timer_t *t) { run_mhd(t->data); }

/* Lets MHD do what is ready, then arms the timer for its next timeout. */
static void run_mhd(fl_serve_t *s) {
  if (s->closing)
    return;
  MHD_run(s->mhd);
  MHD_UNSIGNED_LONG_LONG ms;
  if (!s->closing && MHD_get_timeout(s->mhd, &ms) == MHD_YES)
    uv_timer_start(&s->timer, on_timer, ms, 0);
  else if (!s->closing)
    uv_timer_stop(&s->timer);
}

static struct MHD_Daemon *start_mhd(fl_serve_t *s, const struct sockaddr *sa) {
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
  if (sa->sa_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                          MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_NOTIFY_COMPLETED,
                          on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
                          (unsigned)IDLE_S, MHD_OPTION_LISTENING_ADDRESS_REUSE,
                          1u, MHD_OPTION_END);
}

int fl_serve_start(uv_loop_t *loop, fl_control_t *ctl,
                   const struct fl_serve_opts *opts, fl_serve_t **out,
                   char *err, size_t errlen) {
  char where[ADDR_MAX_LEN];
  fl_addr_text(opts->listen, where, sizeof(where));
  if (opts->token == NULL && !fl_serve_is_loopback(opts->listen)) {
    snprintf(err, errlen,
             "listening on %s (not loopback) needs --token: anyone who can "
             "reach it could switch faults",
             where);
    return FL_EUSAGE;
  }
  fl_serve_t *s = calloc(1, sizeof(*s));
  if (s == NULL || (opts->token && !(s->token = strdup(opts->token)))) {
    free(s);
    snprintf(err, errlen, "out of memory");
    return -ENOMEM;
  }
  s->loop = loop;
  s->ctl = ctl;
  s->mhd = start_mhd(s, opts->listen);
  const union MHD_DaemonInfo *fd, *port;
  if (s->mhd == NULL ||
      (fd = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD)) == NULL ||
      (port = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT)) == NULL ||
      uv_poll_init(loop, &s->poll, fd->epoll_fd) != 0) {
    int e = errno ? errno : EADDRINUSE;
    snprintf(err, errlen, "cannot listen on %s: %s", where, strerror(e));
    if (s->mhd != NULL)
      MHD_stop_daemon(s->mhd);
    free(s->token);
    free(s);
    return -e;
  }
  s->port = port->port;
  uv_timer_init(loop, &s->timer);
  s->poll.data = s->timer.data = s;
  s->handles = 2;
  uv_poll_start(&s->poll, UV_READABLE, on_poll);
  run_mhd(s);
  *out = s;
  return 0;
}

int fl_serve_port(const fl_serve_t *s) { return s->port; }

static void on_closed(uv_handle_t *h) {
  fl_serve_t *s = h->data;
  if (--s->handles == 0) {
    free(s->token);
    free(s);
  }
}

void fl_serve_close(fl_serve_t *s) {
  if (s == NULL || s->closing)
    return;
  s->closing = 1;
  /* The poll goes before MHD closes the epoll descriptor it watches. */
  uv_close((uv_handle_t *)&s->poll, on_closed);
  uv_close((uv_handle_t *)&s->timer, on_closed);
  MHD_stop_daemon(s->mhd);
  s->mhd = NULL;
  fl_sproxies_close_all(s);
}
