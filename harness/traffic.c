/*
 * Open-loop HTTP traffic: libcurl's multi interface driven by a libuv loop.
 *
 * The first half is the glue (the pattern of curl's multi-uv example):
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION, one
 * uv_poll_t per socket) and when to call it back (CURLMOPT_TIMERFUNCTION,
 * one uv_timer_t); we hand every event to curl_multi_socket_action() and
 * then collect finished transfers with curl_multi_info_read(). The second
 * half is the traffic itself: a scheduler timer, pooled easy handles and
 * the records; and fl_http_probe(), a single transfer on its own glue.
 *
 * Lifetime rule: memory that a libuv handle lives in is freed only in the
 * handle's close callback, which libuv always runs on a later turn of the
 * loop. So an object that starts closing from inside one of its own
 * callbacks stays valid until that callback has returned.
 */
#define _GNU_SOURCE
#include "traffic.h"

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- libcurl on a libuv loop ---------------------------------------- */

struct glue;

/* A socket curl asked us to watch. */
struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct glue *g;
  int events;               /* UV_READABLE | UV_WRITABLE, as curl last asked */
  int closing;              /* uv_close() called: curl is done with it */
  struct sock *prev, *next; /* g->socks: the ones not closing yet */
};

struct glue {
  uv_loop_t *loop;
  CURLM *multi; /* NULL once cleaned up */
  uv_timer_t timer;
  struct sock *socks;
  /* libuv handles of the owner (this timer, the polls, and any the owner
   * registers) not yet closed; closed() runs when the count reaches 0. */
  int handles;
  void (*done)(struct glue *g, CURL *easy, CURLcode rc);
  void (*closed)(struct glue *g);
};

static void on_handle_closed(uv_handle_t *h) {
  struct glue *g = h->data;
  if (--g->handles == 0)
    g->closed(g);
}

static void on_sock_closed(uv_handle_t *h) {
  struct sock *s = h->data;
  struct glue *g = s->g;
  free(s);
  if (--g->handles == 0)
    g->closed(g);
}

static void sock_close(struct sock *s) {
  s->closing = 1;
  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    s->g->socks = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* Hands every finished transfer to g->done(). done() may close the glue,
 * which ends the loop: the message belongs to the multi. */
static void glue_drain(struct glue *g) {
  CURLMsg *msg;
  int left;
  while (g->multi != NULL &&
         (msg = curl_multi_info_read(g->multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE)
      continue;
    /* msg does not survive curl_multi_remove_handle(). */
    CURL *easy = msg->easy_handle;
    CURLcode rc = msg->data.result;
    curl_multi_remove_handle(g->multi, easy);
    g->done(g, easy, rc);
  }
}

/* libuv reports POLLERR (a reset, say) as status UV_EBADF and stops the
 * handle. Telling curl CURL_CSELECT_ERR would make it fail the transfer
 * as "select/poll returned error", without the cause; instead it is told
 * the socket is ready, so its own recv() or send() meets the real error
 * (ECONNRESET...). The handle is started again in case curl goes on. */
static void on_poll(uv_poll_t *h, int status, int events) {
  struct sock *s = h->data;
  struct glue *g = s->g;
  int flags = 0;
  int running;
  if (status < 0)
    flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(g->multi, s->fd, flags, &running);
  if (status < 0 && !s->closing && g->multi != NULL)
    uv_poll_start(&s->poll, s->events, on_poll);
  glue_drain(g);
}

static void on_glue_timer(uv_timer_t *h) {
  struct glue *g = h->data;
  int running;
  curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  glue_drain(g);
}

/* CURLMOPT_TIMERFUNCTION: -1 cancels, 0 means "as soon as possible" (curl
 * forbids calling socket_action from inside this callback). */
static int on_curl_timer(CURLM *multi, long ms, void *userp) {
  struct glue *g = userp;
  (void)multi;
  if (ms < 0)
    uv_timer_stop(&g->timer);
  else
    uv_timer_start(&g->timer, on_glue_timer, (uint64_t)ms, 0);
  return 0;
}

/* CURLMOPT_SOCKETFUNCTION: curl calls it with CURL_POLL_REMOVE before it
 * closes a socket, so the poll handle never watches a closed (or reused)
 * descriptor. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
                          void *socketp) {
  struct glue *g = userp;
  struct sock *s = socketp;
  (void)easy;
  if (what == CURL_POLL_REMOVE) {
    if (s != NULL) {
      sock_close(s);
      curl_multi_assign(g->multi, fd, NULL);
    }
    return 0;
  }
  if (s == NULL) {
    s = calloc(1, sizeof(*s));
    if (s == NULL)
      return -1; /* curl fails the transfers on this socket */
    if (uv_poll_init_socket(g->loop, &s->poll, fd) != 0) {
      free(s);
      return -1;
    }
    s->fd = fd;
    s->g = g;
    s->poll.data = s;
    s->next = g->socks;
    if (g->socks != NULL)
      g->socks->prev = s;
    g->socks = s;
    g->handles++;
    curl_multi_assign(g->multi, fd, s);
  }
  int events = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
    events |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
    events |= UV_WRITABLE;
  s->events = events;
  uv_poll_start(&s->poll, events, on_poll);
  return 0;
}

/* Makes the multi handle and the timer; returns 0 or -ENOMEM with nothing
 * left to free. */
static int glue_init(struct glue *g, uv_loop_t *loop) {
  g->loop = loop;
  g->multi = curl_multi_init();
  if (g->multi == NULL)
    return -ENOMEM;
  curl_multi_setopt(g->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
  curl_multi_setopt(g->multi, CURLMOPT_SOCKETDATA, g);
  curl_multi_setopt(g->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
  curl_multi_setopt(g->multi, CURLMOPT_TIMERDATA, g);
  uv_timer_init(loop, &g->timer); /* cannot fail on Unix */
  g->timer.data = g;
  g->handles = 1;
  return 0;
}

/* Runs an event through curl right away (not on the next turn). */
static void glue_kick(struct glue *g) {
  int running;
  curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  glue_drain(g);
}

/* Cleans up the multi handle (every easy handle must have been removed)
 * and closes every libuv handle; g->closed() runs when the last is. */
static void glue_close(struct glue *g) {
  curl_multi_cleanup(g->multi); /* may close sockets: CURL_POLL_REMOVE */
  g->multi = NULL;
  while (g->socks != NULL)
    sock_close(g->socks);
  uv_close((uv_handle_t *)&g->timer, on_handle_closed);
}

static size_t discard(char *buf, size_t size, size_t n, void *userp) {
  (void)buf;
  (void)userp;
  return size * n;
}

/* Options every request of ours has. */
static void easy_common(CURL *easy, const char *url, double timeout) {
  curl_easy_setopt(easy, CURLOPT_URL, url);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_PROXY, ""); /* never from the environment */
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000 + 0.5));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "faultline/" FL_VERSION);
}

/* The class of a failed transfer. A reset shows up as a receive or send
 * error with ECONNRESET/EPIPE, or as the connection closing before (or in
 * the middle of) a response. */
static int error_class(CURL *easy, CURLcode rc) {
  long os = 0;
  curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os);
  switch (rc) {
  case CURLE_OK:
    return FL_XFER_OK;
  case CURLE_COULDNT_CONNECT:
    return os == ECONNREFUSED ? FL_XFER_REFUSED : FL_XFER_OTHER;
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
    return os == ECONNRESET || os == EPIPE || os == ECONNABORTED
               ? FL_XFER_RESET
               : FL_XFER_OTHER;
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
    return FL_XFER_RESET;
  case CURLE_OPERATION_TIMEDOUT:
    return FL_XFER_TIMEOUT;
  case CURLE_COULDNT_RESOLVE_HOST:
    return FL_XFER_DNS;
  default:
    return FL_XFER_OTHER;
  }
}

const char *fl_xfer_error_name(int e) {
  switch ((enum fl_xfer_error)e) {
  case FL_XFER_OK:
    return "ok";
  case FL_XFER_REFUSED:
    return "refused";
  case FL_XFER_RESET:
    return "reset";
  case FL_XFER_TIMEOUT:
    return "timeout";
  case FL_XFER_DNS:
    return "dns";
  case FL_XFER_OTHER:
    return "other";
  }
  return "unknown";
}

/* ---- traffic ---------------------------------------------------------- */

struct endpoint;

/* One pooled easy handle; its options are the endpoint's, set once. */
struct xfer {
  CURL *easy;
  struct endpoint *ep;
  size_t rec;        /* its record's index in ep->recs while busy */
  uint64_t start_ns; /* uv_hrtime() when it was sent */
  int busy;
  struct xfer *next;      /* ep->all */
  struct xfer *next_idle; /* ep->idle */
};

struct endpoint {
  struct fl_traffic *t;
  char *name, *url, *method, *body;
  struct curl_slist *headers;
  char *capture[FL_TRAFFIC_HEADERS]; /* capture[0]: Retry-After */
  int ncapture;
  double rate;
  double timeout;
  uint64_t sent; /* requests sent: the next one is number `sent` */
  struct fl_request *recs;
  size_t nrecs, cap;
  struct xfer *all, *idle;
};

struct fl_traffic {
  struct glue g; /* first: the glue's callbacks find the traffic */
  char *base;
  struct endpoint **eps;
  int neps;
  uv_timer_t sched;      /* the next due request */
  uv_timer_t done_timer; /* stop's done, from the loop */
  uint64_t t0;
  int started, stopping, in_flight;
  long nxfers;
  void (*stop_cb)(void *arg);
  void *stop_arg;
  void (*free_cb)(void *arg);
  void *free_arg;
};

static size_t on_header(char *buf, size_t size, size_t n, void *userp) {
  struct xfer *x = userp;
  struct endpoint *ep = x->ep;
  struct fl_request *r = &ep->recs[x->rec];
  size_t len = size * n;
  /* A status line starts a response: an interim one's (100 Continue)
   * headers are not the final response's. */
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    for (int i = 0; i < FL_TRAFFIC_HEADERS; i++) {
      free(r->headers[i]);
      r->headers[i] = NULL;
    }
    return len;
  }
  const char *colon = memchr(buf, ':', len);
  if (colon == NULL)
    return len;
  size_t nlen = (size_t)(colon - buf);
  for (int i = 0; i < ep->ncapture; i++) {
    if (strlen(ep->capture[i]) != nlen ||
        strncasecmp(buf, ep->capture[i], nlen) != 0)
      continue;
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                       end[-1] == '\n'))
      end--;
    char *copy = strndup(v, (size_t)(end - v));
    if (copy == NULL)
      return 0; /* fails the transfer (CURLE_WRITE_ERROR) */
    free(r->headers[i]);
    r->headers[i] = copy;
    break;
  }
  return len;
}

static struct xfer *xfer_new(struct endpoint *ep) {
  struct xfer *x = calloc(1, sizeof(*x));
  if (x == NULL)
    return NULL;
  x->easy = curl_easy_init();
  if (x->easy == NULL) {
    free(x);
    return NULL;
  }
  x->ep = ep;
  CURL *e = x->easy;
  easy_common(e, ep->url, ep->timeout);
  curl_easy_setopt(e, CURLOPT_PRIVATE, x);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, ep->headers);
  if (ep->body != NULL) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(ep->body));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, ep->body);
    if (strcmp(ep->method, "POST") != 0)
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, ep->method);
  } else if (strcmp(ep->method, "GET") == 0) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (strcmp(ep->method, "HEAD") == 0) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (strcmp(ep->method, "POST") == 0) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, ep->method);
  }
  x->next = ep->all;
  ep->all = x;
  /* curl's connection cache holds at most MAXCONNECTS connections (by
   * default 4 per easy handle added at the moment, so it shrinks as
   * transfers end). Allow one per handle we ever needed at once, so a
   * burst's connections are kept for the next burst rather than closed
   * and opened again. */
  curl_multi_setopt(ep->t->g.multi, CURLMOPT_MAXCONNECTS, ++ep->t->nxfers);
  return x;
}

/* Appends a record for request number ep->sent; NULL when out of memory. */
static struct fl_request *record_new(struct endpoint *ep) {
  if (ep->nrecs == ep->cap) {
    size_t cap = ep->cap != 0 ? ep->cap * 2 : 256;
    struct fl_request *recs = realloc(ep->recs, cap * sizeof(*recs));
    if (recs == NULL)
      return NULL;
    ep->recs = recs;
    ep->cap = cap;
  }
  struct fl_request *r = &ep->recs[ep->nrecs++];
  memset(r, 0, sizeof(*r));
  r->sched = (double)ep->sent / ep->rate;
  r->latency = -1;
  return r;
}

/* Sends request number ep->sent now. */
static void send_one(struct endpoint *ep) {
  struct fl_traffic *t = ep->t;
  uint64_t now = uv_hrtime();
  struct fl_request *r = record_new(ep);
  ep->sent++;
  if (r == NULL)
    return; /* out of memory: nothing to record it in */
  r->start = (double)(now - t->t0) / 1e9;
  struct xfer *x = ep->idle;
  if (x != NULL)
    ep->idle = x->next_idle;
  else
    x = xfer_new(ep);
  if (x == NULL) {
    r->latency = 0;
    r->error = FL_XFER_OTHER;
    return;
  }
  x->rec = (size_t)(r - ep->recs);
  x->start_ns = now;
  if (curl_multi_add_handle(t->g.multi, x->easy) != CURLM_OK) {
    r->latency = 0;
    r->error = FL_XFER_OTHER;
    x->next_idle = ep->idle;
    ep->idle = x;
    return;
  }
  x->busy = 1;
  t->in_flight++;
}

static void on_stop_done(uv_timer_t *h) {
  struct fl_traffic *t = h->data;
  void (*cb)(void *) = t->stop_cb;
  t->stop_cb = NULL;
  if (cb != NULL)
    cb(t->stop_arg);
}

static void on_xfer_done(struct glue *g, CURL *easy, CURLcode rc) {
  struct fl_traffic *t = (struct fl_traffic *)g;
  char *priv = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
  struct xfer *x = (struct xfer *)priv;
  struct endpoint *ep = x->ep;
  struct fl_request *r = &ep->recs[x->rec];
  r->latency = (double)(uv_hrtime() - x->start_ns) / 1e9;
  r->error = error_class(easy, rc);
  if (rc == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = (int)status;
  }
  x->busy = 0;
  x->next_idle = ep->idle;
  ep->idle = x;
  if (--t->in_flight == 0 && t->stopping)
    uv_timer_start(&t->done_timer, on_stop_done, 0, 0);
}

static uint64_t due_ns(const struct fl_traffic *t, const struct endpoint *ep) {
  return t->t0 + (uint64_t)((double)ep->sent / ep->rate * 1e9);
}

/* The endpoint whose next request is due first, and when. */
static struct endpoint *next_due(const struct fl_traffic *t, uint64_t *due) {
  struct endpoint *first = NULL;
  *due = UINT64_MAX;
  for (int i = 0; i < t->neps; i++) {
    uint64_t d = due_ns(t, t->eps[i]);
    if (d < *due) {
      *due = d;
      first = t->eps[i];
    }
  }
  return first;
}

static void on_sched(uv_timer_t *h);

/* Arms the scheduler for the earliest due request. libuv's timers count
 * whole milliseconds on the loop's clock (uv_hrtime's monotonic clock
 * truncated, or its coarse copy, never ahead of it): aiming at the
 * millisecond after the due time means the timer never fires before it,
 * and, on an idle machine, within about a millisecond after. */
static void sched_arm(struct fl_traffic *t) {
  uint64_t next;
  if (next_due(t, &next) == NULL)
    return;
  uv_update_time(t->g.loop);
  uint64_t target = (next + 999999) / 1000000, loop_ms = uv_now(t->g.loop);
  uv_timer_start(&t->sched, on_sched, target > loop_ms ? target - loop_ms : 0,
                 0);
}

/* Sends the requests due by now in due order, across endpoints. A late
 * loop catches up in slices of SCHED_SLICE with a turn of the loop in
 * between (a 0 ms timer): responses that arrived meanwhile are taken, so
 * their connections are free for the next slice. Sending a whole backlog
 * at once would open a connection for nearly every request of it, and
 * each one costs more than a reused one: a loop that fell behind once
 * would fall further behind. */
#define SCHED_SLICE 32

/* Sends up to `max` requests due by `now`, in due order; how many. */
static int send_due(struct fl_traffic *t, uint64_t now, int max) {
  uint64_t due;
  struct endpoint *ep;
  int sent = 0;
  while (sent < max && (ep = next_due(t, &due)) != NULL && due <= now) {
    send_one(ep);
    sent++;
  }
  if (sent > 0)
    glue_kick(&t->g);
  return sent;
}

static void on_sched(uv_timer_t *h) {
  struct fl_traffic *t = h->data;
  send_due(t, uv_hrtime(), SCHED_SLICE);
  sched_arm(t);
}

static void endpoint_free(struct endpoint *ep) {
  for (size_t k = 0; k < ep->nrecs; k++)
    for (int j = 0; j < FL_TRAFFIC_HEADERS; j++)
      free(ep->recs[k].headers[j]);
  free(ep->recs);
  for (int j = 0; j < ep->ncapture; j++)
    free(ep->capture[j]);
  curl_slist_free_all(ep->headers);
  free(ep->name);
  free(ep->url);
  free(ep->method);
  free(ep->body);
  free(ep);
}

static void traffic_closed(struct glue *g) {
  struct fl_traffic *t = (struct fl_traffic *)g;
  void (*cb)(void *) = t->free_cb;
  void *arg = t->free_arg;
  for (int i = 0; i < t->neps; i++)
    endpoint_free(t->eps[i]);
  free(t->eps);
  free(t->base);
  free(t);
  curl_global_cleanup();
  if (cb != NULL)
    cb(arg);
}

int fl_traffic_new(uv_loop_t *loop, const char *base_url, fl_traffic_t **out) {
  if (loop == NULL || base_url == NULL || out == NULL)
    return -EINVAL;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return -ENOMEM;
  struct fl_traffic *t = calloc(1, sizeof(*t));
  if (t == NULL || (t->base = strdup(base_url)) == NULL) {
    free(t);
    curl_global_cleanup();
    return -ENOMEM;
  }
  if (glue_init(&t->g, loop) != 0) {
    free(t->base);
    free(t);
    curl_global_cleanup();
    return -ENOMEM;
  }
  t->g.done = on_xfer_done;
  t->g.closed = traffic_closed;
  /* Unlimited connections per host: a request never waits for another to
   * finish (0 is curl's default; said here because it is the point). */
  curl_multi_setopt(t->g.multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  curl_multi_setopt(t->g.multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, 0L);
  uv_timer_init(loop, &t->sched);
  uv_timer_init(loop, &t->done_timer);
  t->sched.data = t->done_timer.data = t;
  t->g.handles += 2;
  *out = t;
  return 0;
}

/* Copies the spec's strings into ep; 0 or -ENOMEM. */
static int endpoint_copy(struct endpoint *ep, const char *base,
                         const struct fl_endpoint_spec *e) {
  ep->name = strdup(e->name != NULL ? e->name : e->path);
  ep->method = strdup(e->method != NULL ? e->method : "GET");
  if (ep->name == NULL || ep->method == NULL ||
      asprintf(&ep->url, "%s%s", base, e->path) < 0 ||
      (e->body != NULL && (ep->body = strdup(e->body)) == NULL))
    return -ENOMEM;
  int expect = 0;
  for (size_t i = 0; e->headers != NULL && e->headers[i] != NULL; i++) {
    struct curl_slist *l = curl_slist_append(ep->headers, e->headers[i]);
    if (l == NULL)
      return -ENOMEM;
    ep->headers = l;
    expect |= strncasecmp(e->headers[i], "Expect:", 7) == 0;
  }
  /* curl waits up to a second for "100 Continue" before sending a large
   * body; a load generator must not. */
  if (!expect) {
    struct curl_slist *l = curl_slist_append(ep->headers, "Expect:");
    if (l == NULL)
      return -ENOMEM;
    ep->headers = l;
  }
  if ((ep->capture[0] = strdup("Retry-After")) == NULL)
    return -ENOMEM;
  ep->ncapture = 1;
  for (size_t i = 0; e->capture != NULL && e->capture[i] != NULL; i++) {
    if (strcasecmp(e->capture[i], "Retry-After") == 0)
      continue;
    if (ep->ncapture == FL_TRAFFIC_HEADERS)
      return -EINVAL;
    if ((ep->capture[ep->ncapture] = strdup(e->capture[i])) == NULL)
      return -ENOMEM;
    ep->ncapture++;
  }
  return 0;
}

int fl_traffic_add(fl_traffic_t *t, const struct fl_endpoint_spec *e) {
  if (t == NULL || e == NULL || e->path == NULL || !(e->rate > 0) ||
      !(e->timeout > 0))
    return -EINVAL;
  if (t->started || t->stopping)
    return -EBUSY;
  struct endpoint **eps = realloc(t->eps, (size_t)(t->neps + 1) * sizeof(*eps));
  if (eps == NULL)
    return -ENOMEM;
  t->eps = eps;
  struct endpoint *ep = calloc(1, sizeof(*ep));
  if (ep == NULL)
    return -ENOMEM;
  ep->t = t;
  ep->rate = e->rate;
  ep->timeout = e->timeout;
  int rc = endpoint_copy(ep, t->base, e);
  if (rc != 0) {
    endpoint_free(ep);
    return rc;
  }
  t->eps[t->neps] = ep;
  return t->neps++;
}

int fl_traffic_start(fl_traffic_t *t) {
  if (t->started || t->stopping)
    return -EBUSY;
  t->started = 1;
  t->t0 = uv_hrtime();
  sched_arm(t); /* request 0 of every endpoint is due now */
  return 0;
}

void fl_traffic_stop(fl_traffic_t *t, void (*done)(void *arg), void *arg) {
  /* Every request due before the stop is sent, even by a late loop: the
   * records hold exactly the schedule up to now. */
  if (t->started && !t->stopping)
    send_due(t, uv_hrtime(), INT_MAX);
  t->stopping = 1;
  uv_timer_stop(&t->sched);
  t->stop_cb = done;
  t->stop_arg = arg;
  if (t->in_flight == 0)
    uv_timer_start(&t->done_timer, on_stop_done, 0, 0);
}

double fl_traffic_now(const fl_traffic_t *t) {
  return t->started ? (double)(uv_hrtime() - t->t0) / 1e9 : 0;
}

size_t fl_traffic_records(const fl_traffic_t *t, int endpoint,
                          const struct fl_request **out) {
  if (endpoint < 0 || endpoint >= t->neps) {
    *out = NULL;
    return 0;
  }
  *out = t->eps[endpoint]->recs;
  return t->eps[endpoint]->nrecs;
}

int fl_traffic_header_slot(const fl_traffic_t *t, int endpoint,
                           const char *name) {
  if (endpoint < 0 || endpoint >= t->neps)
    return -ENOENT;
  const struct endpoint *ep = t->eps[endpoint];
  for (int i = 0; i < ep->ncapture; i++)
    if (strcasecmp(ep->capture[i], name) == 0)
      return i;
  return -ENOENT;
}

int fl_traffic_in_flight(const fl_traffic_t *t) { return t->in_flight; }

void fl_traffic_free(fl_traffic_t *t, void (*done)(void *arg), void *arg) {
  t->free_cb = done;
  t->free_arg = arg;
  t->stop_cb = NULL;
  /* Their close callback counts them off the glue (t's first member). */
  t->sched.data = t->done_timer.data = &t->g;
  uv_close((uv_handle_t *)&t->sched, on_handle_closed);
  uv_close((uv_handle_t *)&t->done_timer, on_handle_closed);
  /* Transfers in flight are removed (their connections closed), then
   * every easy handle goes before the multi handle, as curl asks. */
  for (int i = 0; i < t->neps; i++) {
    struct xfer *x = t->eps[i]->all;
    while (x != NULL) {
      struct xfer *next = x->next;
      if (x->busy)
        curl_multi_remove_handle(t->g.multi, x->easy);
      curl_easy_cleanup(x->easy);
      free(x);
      x = next;
    }
    t->eps[i]->all = t->eps[i]->idle = NULL;
  }
  t->in_flight = 0;
  glue_close(&t->g);
}

/* ---- readiness probe -------------------------------------------------- */

struct probe {
  struct glue g; /* first */
  CURL *easy;
  int result;
  void (*cb)(int status, void *arg); /* NULL: never started */
  void *arg;
};

static void probe_closed(struct glue *g) {
  struct probe *p = (struct probe *)g;
  void (*cb)(int, void *) = p->cb;
  void *arg = p->arg;
  int result = p->result;
  free(p);
  curl_global_cleanup();
  if (cb != NULL)
    cb(result, arg);
}

static void probe_done(struct glue *g, CURL *easy, CURLcode rc) {
  struct probe *p = (struct probe *)g;
  long status = 0;
  switch (error_class(easy, rc)) {
  case FL_XFER_OK:
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    p->result = (int)status;
    break;
  case FL_XFER_REFUSED:
    p->result = -ECONNREFUSED;
    break;
  case FL_XFER_RESET:
    p->result = -ECONNRESET;
    break;
  case FL_XFER_TIMEOUT:
    p->result = -ETIMEDOUT;
    break;
  case FL_XFER_DNS:
    p->result = -EHOSTUNREACH;
    break;
  case FL_XFER_OTHER:
    p->result = -EIO;
    break;
  }
  curl_easy_cleanup(p->easy);
  p->easy = NULL;
  glue_close(&p->g);
}

int fl_http_probe(uv_loop_t *loop, const char *url, double timeout,
                  void (*cb)(int status, void *arg), void *arg) {
  if (loop == NULL || url == NULL || cb == NULL || !(timeout > 0))
    return -EINVAL;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return -ENOMEM;
  struct probe *p = calloc(1, sizeof(*p));
  if (p == NULL || (p->easy = curl_easy_init()) == NULL) {
    free(p);
    curl_global_cleanup();
    return -ENOMEM;
  }
  if (glue_init(&p->g, loop) != 0) {
    curl_easy_cleanup(p->easy);
    free(p);
    curl_global_cleanup();
    return -ENOMEM;
  }
  p->g.done = probe_done;
  p->g.closed = probe_closed;
  easy_common(p->easy, url, timeout);
  if (curl_multi_add_handle(p->g.multi, p->easy) != CURLM_OK) {
    /* The timer is initialised: close it; cb stays NULL, never called. */
    curl_easy_cleanup(p->easy);
    glue_close(&p->g);
    return -ENOMEM;
  }
  p->cb = cb;
  p->arg = arg;
  return 0;
}
