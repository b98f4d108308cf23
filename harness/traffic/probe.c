/*
 * fl_http_probe(): a single GET for readiness probes, on its own glue (and
 * so its own connection).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "traffic_int.h"

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
  switch (fl_glue_error_class(easy, rc)) {
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
  fl_glue_close(&p->g);
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
  if (fl_glue_init(&p->g, loop) != 0) {
    curl_easy_cleanup(p->easy);
    free(p);
    curl_global_cleanup();
    return -ENOMEM;
  }
  p->g.done = probe_done;
  p->g.closed = probe_closed;
  fl_glue_easy_common(p->easy, url, timeout);
  if (curl_multi_add_handle(p->g.multi, p->easy) != CURLM_OK) {
    /* The timer is initialised: close it; cb stays NULL, never called. */
    curl_easy_cleanup(p->easy);
    fl_glue_close(&p->g);
    return -ENOMEM;
  }
  p->cb = cb;
  p->arg = arg;
  return 0;
}
