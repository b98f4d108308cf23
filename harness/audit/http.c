/*
 * One request to the service under discovery, blocking (the discovery
 * driver has a thread of its own): libcurl's easy interface.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit_int.h"

struct buf {
  char *data;
  size_t len;
  int oom;
};

static size_t on_data(char *p, size_t size, size_t n, void *arg) {
  struct buf *b = arg;
  size_t add = size * n;
  if (b == NULL)
    return add; /* not kept */
  char *bigger = realloc(b->data, b->len + add + 1);
  if (bigger == NULL) {
    b->oom = 1;
    return 0;
  }
  memcpy(bigger + b->len, p, add);
  b->len += add;
  bigger[b->len] = '\0';
  b->data = bigger;
  return add;
}

static int has_header(char **headers, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; headers != NULL && headers[i] != NULL; i++)
    if (strncasecmp(headers[i], name, n) == 0 && headers[i][n] == ':')
      return 1;
  return 0;
}

/* The request's headers: the endpoint's, and a JSON content type for a
 * body unless it names one. NULL (no list) is valid for curl. */
static struct curl_slist *header_list(const struct fl_audit_endpoint *e,
                                      int *oom) {
  struct curl_slist *h = NULL, *t;
  for (size_t i = 0; e->headers != NULL && e->headers[i] != NULL; i++) {
    if ((t = curl_slist_append(h, e->headers[i])) == NULL)
      goto fail;
    h = t;
  }
  if (e->body != NULL && !has_header(e->headers, "Content-Type")) {
    if ((t = curl_slist_append(h, "Content-Type: application/json")) == NULL)
      goto fail;
    h = t;
  }
  return h;
fail:
  curl_slist_free_all(h);
  *oom = 1;
  return NULL;
}

int fl_audit_http(const char *base_url, const struct fl_audit_endpoint *e,
                  double timeout, int *status, double *secs, char **body_out) {
  *status = 0;
  *secs = 0;
  if (body_out != NULL)
    *body_out = NULL;
  char *url = NULL;
  if (asprintf(&url, "%s%s", base_url, e->path) < 0)
    return -ENOMEM;
  CURL *c = curl_easy_init();
  int oom = 0;
  struct curl_slist *h = c != NULL ? header_list(e, &oom) : NULL;
  if (c == NULL || oom) {
    curl_easy_cleanup(c);
    free(url);
    return -ENOMEM;
  }
  struct buf b = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, e->method);
  if (strcasecmp(e->method, "HEAD") == 0)
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  if (e->body != NULL)
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, e->body);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, body_out != NULL ? &b : NULL);
  CURLcode rc = curl_easy_perform(c);
  long code = 0;
  double t = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo(c, CURLINFO_TOTAL_TIME, &t);
  *status = rc == CURLE_OK ? (int)code : 0;
  *secs = t;
  if (body_out != NULL && rc == CURLE_OK && !b.oom)
    *body_out = b.data;
  else
    free(b.data);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  free(url);
  return b.oom ? -ENOMEM : 0;
}
