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
  if (cb != NULL)
    cb(result, arg);
}

static void probe_done(struct glue *g, CURL *easy, CURLcode rc) {
  struct probe *p = (struct probe *)g;
  int class = fl_glue_error_class(easy, rc);
  long status = 0;
  if (class == FL_XFER_OK)
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  p->result = class == FL_XFER_OK ? (int)status : fl_glue_error_errno(class);
  curl_easy_cleanup(p->easy);
  p->easy = NULL;
  fl_glue_close(&p->g);
}

int fl_http_probe(uv_loop_t *loop, const char *url, double timeout,
                  void (*cb)(int status, void *arg), void *arg) {
  if (loop == NULL || url == NULL || cb == NULL || !(timeout > 0))
    return -EINVAL;
  struct probe *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  if (fl_glue_init(&p->g, loop) != 0) {
    free(p);
    return -ENOMEM;
  }
  p->g.done = probe_done;
  p->g.closed = probe_closed;
  if ((p->easy = curl_easy_init()) != NULL)
    fl_glue_easy_common(p->easy, url, timeout);
  if (p->easy == NULL ||
      curl_multi_add_handle(p->g.multi, p->easy) != CURLM_OK) {
    /* The timer is initialised: close it; cb stays NULL, never called. */
    curl_easy_cleanup(p->easy);
    fl_glue_close(&p->g);
    return -ENOMEM;
  }
  p->cb = cb;
  p->arg = arg;
  return 0;
}
