/*
 * libcurl's multi interface driven by a libuv loop (see traffic_priv.h),
 * the options every request of ours has, and the classes of failures.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "traffic_int.h"

/* A socket curl asked us to watch. */
struct sock {
  uv_poll_t poll;
  curl_socket_t fd;
  struct glue *g;
  int events;               /* UV_READABLE | UV_WRITABLE, as curl last asked */
  int closing;              /* uv_close() called: curl is done with it */
  struct sock *prev, *next; /* g->socks: the ones not closing yet */
};

/* Counts off one handle; after the last, the owner (which may free g) and
 * then libcurl's global state, taken by fl_glue_init, are let go. */
static void handle_closed(struct glue *g) {
  if (--g->handles > 0)
    return;
  g->closed(g);
  curl_global_cleanup();
}

void fl_glue_on_handle_closed(uv_handle_t *h) { handle_closed(h->data); }

void fl_glue_count_off(struct glue *g) { handle_closed(g); }

static void on_sock_closed(uv_handle_t *h) {
  struct sock *s = h->data;
  struct glue *g = s->g;
  free(s);
  handle_closed(g);
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

/* Takes libcurl's global state (reference-counted by curl) and makes the
 * multi handle and the timer; returns 0 or -ENOMEM with nothing left to
 * free. */
int fl_glue_init(struct glue *g, uv_loop_t *loop) {
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return -ENOMEM;
  g->loop = loop;
  g->multi = curl_multi_init();
  if (g->multi == NULL) {
    curl_global_cleanup();
    return -ENOMEM;
  }
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
void fl_glue_kick(struct glue *g) {
  int running;
  curl_multi_socket_action(g->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  glue_drain(g);
}

/* Cleans up the multi handle (every easy handle must have been removed)
 * and closes every libuv handle; g->closed() runs when the last is. */
void fl_glue_close(struct glue *g) {
  curl_multi_cleanup(g->multi); /* may close sockets: CURL_POLL_REMOVE */
  g->multi = NULL;
  while (g->socks != NULL)
    sock_close(g->socks);
  uv_close((uv_handle_t *)&g->timer, fl_glue_on_handle_closed);
}

static size_t discard(char *buf, size_t size, size_t n, void *userp) {
  (void)buf;
  (void)userp;
  return size * n;
}

/* Options every request of ours has. */
void fl_glue_easy_common(CURL *easy, const char *url, double timeout) {
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
int fl_glue_error_class(CURL *easy, CURLcode rc) {
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

/* One row per class: its name in records and reports, and the errno a
 * readiness probe reports it as. */
static const struct {
  const char *name;
  int err;
} xfer_errors[] = {
    [FL_XFER_OK] = {"ok", 0},
    [FL_XFER_REFUSED] = {"refused", ECONNREFUSED},
    [FL_XFER_RESET] = {"reset", ECONNRESET},
    [FL_XFER_TIMEOUT] = {"timeout", ETIMEDOUT},
    [FL_XFER_DNS] = {"dns", EHOSTUNREACH},
    [FL_XFER_OTHER] = {"other", EIO},
};

static int known_class(int e) {
  return e >= 0 && (size_t)e < sizeof(xfer_errors) / sizeof(xfer_errors[0]);
}

const char *fl_xfer_error_name(int e) {
  return known_class(e) ? xfer_errors[e].name : "unknown";
}

int fl_glue_error_errno(int e) {
  return known_class(e) ? -xfer_errors[e].err : -EIO;
}
