/*
 * Open-loop HTTP traffic (see traffic.h): a scheduler timer sends each
 * endpoint's requests when they fall due, on pooled easy handles, and
 * every request is recorded. The transfers run on the glue in
 * glue.c; paths are drawn from their templates by path.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "traffic_int.h"
#include "ws_int.h"

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
  char *name, *url, *method, *body, *path;
  struct fl_path_tmpl *tmpl; /* NULL when the path has no placeholder */
  uint64_t key;              /* the paths' stream (fl_path_key) */
  struct curl_slist *headers;
  char **capture; /* names of captured headers; capture[0]: Retry-After */
  int ncapture;
  /* The schedule: rates[i] requests per second from starts[i] seconds;
   * `piece` is the piece of request `sent`, `before` the running count of
   * requests at its start (a real number: pieces need not hold whole
   * ones). */
  double *rates, *starts;
  size_t nrates, piece;
  double before;
  double due; /* seconds: when request `sent` falls due */
  double timeout;
  int concurrency, in_flight; /* the cap (0: none); requests in flight */
  uint64_t sent;              /* requests sent: the next one is number `sent` */
  struct fl_request *recs;
  size_t nrecs, cap;
  struct xfer *all, *idle;
  struct ws_ep *ws; /* a WebSocket endpoint (ws.c); NULL for HTTP */
};

struct fl_traffic {
  struct glue g; /* first: the glue's callbacks find the traffic */
  char *base;
  struct endpoint **eps;
  int neps;
  uv_timer_t sched;      /* the next due request */
  uv_timer_t done_timer; /* stop's done, from the loop */
  uint64_t t0, stop_ns;  /* stop_ns: the stop's instant; requests due by
                            then are still sent (capped ones as slots free) */
  int started, stopping, in_flight;
  long nxfers;
  void (*stop_cb)(void *arg);
  void *stop_arg;
  void (*free_cb)(void *arg);
  void *free_arg;
};

/* Forgets the captured headers of r (a new response starts). */
static void headers_clear(struct fl_request *r) {
  for (int i = 0; i < r->nheaders; i++) {
    free(r->headers[i]);
    r->headers[i] = NULL;
  }
}

/* Keeps value v[0..len) of captured header `slot` in r, trimmed of
 * surrounding blanks and the line end. 0 or -ENOMEM. */
static int header_keep(const struct endpoint *ep, struct fl_request *r,
                       int slot, const char *v, size_t len) {
  const char *end = v + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && strchr(" \t\r\n", end[-1]) != NULL)
    end--;
  if (r->headers == NULL) {
    if ((r->headers = calloc((size_t)ep->ncapture, sizeof(char *))) == NULL)
      return -ENOMEM;
    r->nheaders = ep->ncapture;
  }
  char *copy = strndup(v, (size_t)(end - v));
  if (copy == NULL)
    return -ENOMEM;
  free(r->headers[slot]);
  r->headers[slot] = copy;
  return 0;
}

static size_t on_header(char *buf, size_t size, size_t n, void *userp) {
  struct xfer *x = userp;
  struct endpoint *ep = x->ep;
  struct fl_request *r = &ep->recs[x->rec];
  size_t len = size * n;
  /* A status line starts a response: an interim one's (100 Continue)
   * headers are not the final response's. */
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    r->received = (double)now.tv_sec + (double)now.tv_nsec / 1e9;
    headers_clear(r);
    return len;
  }
  const char *colon = memchr(buf, ':', len);
  if (colon == NULL)
    return len;
  size_t nlen = (size_t)(colon - buf);
  for (int i = 0; i < ep->ncapture; i++)
    if (strlen(ep->capture[i]) == nlen &&
        strncasecmp(buf, ep->capture[i], nlen) == 0) {
      if (header_keep(ep, r, i, colon + 1, len - nlen - 1) != 0)
        return 0; /* fails the transfer (CURLE_WRITE_ERROR) */
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
  fl_glue_easy_common(e, ep->url, ep->timeout);
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

/* When request ep->sent falls due: the piece it falls in is the first
 * whose running count passes it. */
static double due_of_next(struct endpoint *ep) {
  double k = (double)ep->sent;
  while (ep->piece + 1 < ep->nrates) {
    double end =
        ep->before + ep->rates[ep->piece] *
                         (ep->starts[ep->piece + 1] - ep->starts[ep->piece]);
    /* A boundary count off by rounding (29.999999999999996 for 30) must
     * not put request 30 in the earlier piece. */
    if (k < end - 1e-6)
      break;
    ep->before = end;
    ep->piece++;
  }
  return ep->starts[ep->piece] + (k - ep->before) / ep->rates[ep->piece];
}

/* The path of request ep->sent: the template's, or one drawn (owned by
 * the record); NULL when out of memory or too long. */
static const char *path_of_next(const struct endpoint *ep) {
  if (ep->tmpl == NULL)
    return ep->path;
  char buf[4096];
  if (fl_path_draw(ep->tmpl, ep->key, ep->sent, buf, sizeof(buf)) != 0)
    return NULL;
  return strdup(buf);
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
  r->sched = ep->due;
  r->latency = -1;
  r->path = path_of_next(ep);
  return r;
}

/* Prepares x for record r: its URL when drawn, its timeout when capped
 * (what is left of it after the wait). 0, or -1 when nothing is to be
 * sent (r then says why). */
static int xfer_aim(struct endpoint *ep, struct xfer *x, struct fl_request *r) {
  if (r->path == NULL) {
    r->latency = 0;
    r->error = FL_XFER_OTHER;
    return -1;
  }
  if (ep->tmpl != NULL) {
    char url[4096 + 256];
    snprintf(url, sizeof(url), "%s%s", ep->t->base, r->path);
    curl_easy_setopt(x->easy, CURLOPT_URL, url); /* curl copies it */
  }
  if (ep->concurrency > 0) {
    double left = r->sched + ep->timeout - r->start;
    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, (long)(left * 1000 + 0.5));
  }
  return 0;
}

/* Sends request number ep->sent now. */
static void send_one(struct endpoint *ep) {
  struct fl_traffic *t = ep->t;
  uint64_t now = uv_hrtime();
  struct fl_request *r = record_new(ep);
  ep->sent++;
  ep->due = due_of_next(ep);
  if (r == NULL)
    return; /* out of memory: nothing to record it in */
  r->start = (double)(now - t->t0) / 1e9;
  /* Capped: one that waited out its timeout for a slot is given up, as
   * its user would have. */
  if (ep->concurrency > 0 && r->sched + ep->timeout - r->start < 0.001) {
    r->latency = ep->timeout;
    r->error = FL_XFER_TIMEOUT;
    return;
  }
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
  /* Capped: latency counts from the scheduled time, wait included. */
  x->start_ns = ep->concurrency > 0 ? t->t0 + (uint64_t)(r->sched * 1e9) : now;
  if (xfer_aim(ep, x, r) != 0 ||
      curl_multi_add_handle(t->g.multi, x->easy) != CURLM_OK) {
    if (r->error == FL_XFER_OK) {
      r->latency = 0;
      r->error = FL_XFER_OTHER;
    }
    x->next_idle = ep->idle;
    ep->idle = x;
    return;
  }
  x->busy = 1;
  ep->in_flight++;
  t->in_flight++;
}

static void on_stop_done(uv_timer_t *h) {
  struct fl_traffic *t = h->data;
  void (*cb)(void *) = t->stop_cb;
  t->stop_cb = NULL;
  if (cb != NULL)
    cb(t->stop_arg);
}

static uint64_t due_ns(const struct fl_traffic *t, const struct endpoint *ep) {
  return t->t0 + (uint64_t)(ep->due * 1e9);
}

static void sched_arm(struct fl_traffic *t);

/* A capped endpoint's request ended: the requests that fell due while it
 * was full go out now (those that waited out their timeout are given
 * up), and the scheduler is aimed again, as its earliest request may be
 * this endpoint's. Not kicked: this runs inside the glue's drain, and
 * curl starts the added transfers on the next turn. */
static void slot_freed(struct fl_traffic *t, struct endpoint *ep) {
  uint64_t limit = t->stopping ? t->stop_ns : uv_hrtime();
  if (!t->started)
    return;
  while (ep->in_flight < ep->concurrency && due_ns(t, ep) <= limit)
    send_one(ep);
  if (!t->stopping)
    sched_arm(t);
}

static void on_xfer_done(struct glue *g, CURL *easy, CURLcode rc) {
  struct fl_traffic *t = (struct fl_traffic *)g;
  char *priv = NULL;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
  struct xfer *x = (struct xfer *)priv;
  struct endpoint *ep = x->ep;
  struct fl_request *r = &ep->recs[x->rec];
  r->latency = (double)(uv_hrtime() - x->start_ns) / 1e9;
  r->error = fl_glue_error_class(easy, rc);
  if (rc == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    r->status = (int)status;
  }
  x->busy = 0;
  x->next_idle = ep->idle;
  ep->idle = x;
  ep->in_flight--;
  t->in_flight--;
  if (ep->concurrency > 0)
    slot_freed(t, ep);
  if (t->in_flight == 0 && t->stopping)
    uv_timer_start(&t->done_timer, on_stop_done, 0, 0);
}

/* The endpoint whose next request is due first, and when; one at its cap
 * waits for a slot (slot_freed). */
static struct endpoint *next_due(const struct fl_traffic *t, uint64_t *due) {
  struct endpoint *first = NULL;
  *due = UINT64_MAX;
  for (int i = 0; i < t->neps; i++) {
    const struct endpoint *ep = t->eps[i];
    if (ep->ws != NULL ||
        (ep->concurrency > 0 && ep->in_flight >= ep->concurrency))
      continue;
    uint64_t d = due_ns(t, ep);
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
    fl_glue_kick(&t->g);
  return sent;
}

static void on_sched(uv_timer_t *h) {
  struct fl_traffic *t = h->data;
  send_due(t, uv_hrtime(), SCHED_SLICE);
  sched_arm(t);
}

static void endpoint_free(struct endpoint *ep) {
  fl_ws_ep_release(ep->ws);
  for (size_t k = 0; k < ep->nrecs; k++) {
    headers_clear(&ep->recs[k]);
    free(ep->recs[k].headers);
    if (ep->tmpl != NULL)
      free((char *)ep->recs[k].path);
  }
  free(ep->recs);
  fl_path_free(ep->tmpl);
  free(ep->path);
  free(ep->rates);
  free(ep->starts);
  for (int j = 0; j < ep->ncapture; j++)
    free(ep->capture[j]);
  free(ep->capture);
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
  if (cb != NULL)
    cb(arg);
}

int fl_traffic_new(uv_loop_t *loop, const char *base_url, fl_traffic_t **out) {
  if (loop == NULL || base_url == NULL || out == NULL)
    return -EINVAL;
  struct fl_traffic *t = calloc(1, sizeof(*t));
  if (t == NULL || (t->base = strdup(base_url)) == NULL ||
      fl_glue_init(&t->g, loop) != 0) {
    if (t != NULL)
      free(t->base);
    free(t);
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

/* The names of the headers to capture: Retry-After, then those of
 * `names` in order, each once. 0 or -ENOMEM. */
static int capture_copy(struct endpoint *ep, const char *const *names) {
  size_t n = 1;
  while (names != NULL && names[n - 1] != NULL)
    n++;
  if ((ep->capture = calloc(n, sizeof(char *))) == NULL ||
      (ep->capture[0] = strdup("Retry-After")) == NULL)
    return -ENOMEM;
  ep->ncapture = 1;
  for (size_t i = 0; i + 1 < n; i++) {
    int seen = 0;
    for (int j = 0; j < ep->ncapture; j++)
      seen |= strcasecmp(names[i], ep->capture[j]) == 0;
    if (seen)
      continue;
    if ((ep->capture[ep->ncapture] = strdup(names[i])) == NULL)
      return -ENOMEM;
    ep->ncapture++;
  }
  return 0;
}

/* Copies the spec's strings into ep; 0 or -ENOMEM. */
static int endpoint_copy(struct endpoint *ep, const char *base,
                         const struct fl_endpoint_spec *e) {
  ep->name = strdup(e->name != NULL ? e->name : e->path);
  ep->method = strdup(e->method != NULL ? e->method : "GET");
  ep->path = strdup(e->path);
  if (ep->name == NULL || ep->method == NULL || ep->path == NULL ||
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
  return capture_copy(ep, e->capture);
}

/* Is the spec's schedule right: a rate, or pieces from 0 on, increasing,
 * each rate above 0? */
static int schedule_ok(const struct fl_endpoint_spec *e) {
  if (e->nrates == 0)
    return e->rate > 0;
  if (e->rates == NULL || e->starts == NULL || e->starts[0] != 0)
    return 0;
  for (size_t i = 0; i < e->nrates; i++)
    if (!(e->rates[i] > 0) || (i > 0 && !(e->starts[i] > e->starts[i - 1])))
      return 0;
  return 1;
}

/* The schedule's pieces (one for a constant rate), the path's template
 * and stream, the cap, and when request 0 is due; 0 or a negative code. */
static int endpoint_schedule(struct endpoint *ep,
                             const struct fl_endpoint_spec *e) {
  size_t n = e->nrates > 0 ? e->nrates : 1;
  if ((ep->rates = calloc(n, sizeof(double))) == NULL ||
      (ep->starts = calloc(n, sizeof(double))) == NULL)
    return -ENOMEM;
  ep->nrates = n;
  if (e->nrates > 0) {
    memcpy(ep->rates, e->rates, n * sizeof(double));
    memcpy(ep->starts, e->starts, n * sizeof(double));
  } else {
    ep->rates[0] = e->rate;
  }
  ep->due = due_of_next(ep);
  ep->concurrency = e->concurrency;
  ep->key = fl_path_key(e->seed, ep->name);
  int rc = fl_path_parse(e->path, &ep->tmpl, NULL, NULL, 0);
  if (rc == 0 && fl_path_is_fixed(ep->tmpl)) {
    fl_path_free(ep->tmpl);
    ep->tmpl = NULL;
  }
  return rc;
}

/* A WebSocket endpoint: its connections are ws.c's. */
static int endpoint_ws(struct fl_traffic *t, struct endpoint *ep,
                       const struct fl_endpoint_spec *e) {
  if ((ep->name = strdup(e->name != NULL ? e->name : e->path)) == NULL)
    return -ENOMEM;
  return fl_ws_ep_new(&t->g, t->base, e, &ep->ws);
}

int fl_traffic_add(fl_traffic_t *t, const struct fl_endpoint_spec *e) {
  if (t == NULL || e == NULL || e->path == NULL ||
      (e->ws == NULL && !schedule_ok(e)) || !(e->timeout > 0) ||
      e->concurrency < 0)
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
  ep->timeout = e->timeout;
  int rc =
      e->ws != NULL ? endpoint_ws(t, ep, e) : endpoint_copy(ep, t->base, e);
  if (rc == 0 && e->ws == NULL)
    rc = endpoint_schedule(ep, e);
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
  for (int i = 0; i < t->neps; i++)
    if (t->eps[i]->ws != NULL)
      fl_ws_ep_start(t->eps[i]->ws, t->t0);
  sched_arm(t); /* request 0 of every endpoint is due now */
  return 0;
}

void fl_traffic_stop(fl_traffic_t *t, void (*done)(void *arg), void *arg) {
  /* Every request due before the stop is sent, even by a late loop: the
   * records hold exactly the schedule up to now. */
  if (t->started && !t->stopping) {
    t->stop_ns = uv_hrtime();
    send_due(t, t->stop_ns, INT_MAX);
  }
  t->stopping = 1;
  uv_timer_stop(&t->sched);
  for (int i = 0; i < t->neps; i++)
    if (t->eps[i]->ws != NULL)
      fl_ws_ep_stop(t->eps[i]->ws);
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

int fl_traffic_ws_records(const fl_traffic_t *t, int endpoint,
                          struct fl_ws_records *out) {
  if (endpoint < 0 || endpoint >= t->neps || t->eps[endpoint]->ws == NULL)
    return -ENOENT;
  fl_ws_ep_records(t->eps[endpoint]->ws, out);
  return 0;
}

int fl_traffic_in_flight(const fl_traffic_t *t) { return t->in_flight; }

void fl_traffic_free(fl_traffic_t *t, void (*done)(void *arg), void *arg) {
  t->free_cb = done;
  t->free_arg = arg;
  t->stop_cb = NULL;
  /* Their close callback counts them off the glue (t's first member). */
  t->sched.data = t->done_timer.data = &t->g;
  uv_close((uv_handle_t *)&t->sched, fl_glue_on_handle_closed);
  uv_close((uv_handle_t *)&t->done_timer, fl_glue_on_handle_closed);
  /* Transfers in flight are removed (their connections closed), then
   * every easy handle goes before the multi handle, as curl asks. */
  for (int i = 0; i < t->neps; i++) {
    if (t->eps[i]->ws != NULL)
      fl_ws_ep_close(t->eps[i]->ws);
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
  fl_glue_close(&t->g);
}
