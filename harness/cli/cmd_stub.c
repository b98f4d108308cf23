/*
 * faultline-run stub --port N ROUTES.json: the stub upstream of an http
 * dependency (harness/deps/http.c starts it; hidden from help). Each
 * request is answered by the first route whose "METHOD /path-glob"
 * matches: its status, headers, body (a JSON string is sent as text,
 * anything else as JSON) after its latency; no route: 404. A thread per
 * connection, so one route's latency holds only its own requests. Runs
 * until SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/base.h"
#include "cli.h"
#include "match.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

struct route {
  char method[16];
  const char *path;
  unsigned status;
  long latency_ms;
  json_t *headers; /* object, or NULL */
  char *body;
  int json;
};

struct stub {
  struct route *routes;
  size_t n;
};

static int load(const char *file, json_t **root, struct stub *s) {
  json_error_t e;
  *root = json_load_file(file, 0, &e);
  json_t *arr = *root ? json_object_get(*root, "routes") : NULL;
  if (!json_is_array(arr)) {
    fl_say("stub: %s: %s", file, *root ? "no routes array" : e.text);
    return -1;
  }
  s->n = json_array_size(arr);
  s->routes = calloc(s->n + 1, sizeof(*s->routes));
  if (s->routes == NULL)
    return -1;
  for (size_t i = 0; i < s->n; i++) {
    json_t *r = json_array_get(arr, i);
    struct route *rt = &s->routes[i];
    const char *m = json_string_value(json_object_get(r, "match"));
    const char *sp = m ? strchr(m, ' ') : NULL;
    if (sp == NULL || (size_t)(sp - m) >= sizeof(rt->method)) {
      fl_say("stub: %s: route %zu has no \"METHOD /path\"", file, i);
      return -1;
    }
    memcpy(rt->method, m, (size_t)(sp - m));
    rt->path = sp + 1;
    rt->status = (unsigned)json_integer_value(json_object_get(r, "status"));
    if (rt->status == 0)
      rt->status = 200;
    rt->latency_ms = (long)json_number_value(json_object_get(r, "latency_ms"));
    rt->headers = json_object_get(r, "headers");
    json_t *b = json_object_get(r, "body");
    if (json_is_string(b)) {
      rt->body = strdup(json_string_value(b));
    } else if (b != NULL) {
      rt->body = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
      rt->json = 1;
    } else {
      rt->body = strdup("");
    }
    if (rt->body == NULL)
      return -1;
  }
  return 0;
}

static const struct route *find(const struct stub *s, const char *method,
                                const char *url) {
  char path[1024];
  snprintf(path, sizeof(path), "%.*s", (int)strcspn(url, "?#"), url);
  for (size_t i = 0; i < s->n; i++) {
    const struct route *r = &s->routes[i];
    if ((strcmp(r->method, "*") == 0 || strcasecmp(r->method, method) == 0) &&
        fl_glob_match(r->path, path, 0))
      return r;
  }
  return NULL;
}

static MHD_RESULT answer(struct MHD_Connection *conn, const struct route *r,
                         const char *method, const char *url) {
  char *nf = NULL;
  const char *body = r ? r->body : NULL;
  if (r == NULL) {
    json_t *j = json_pack("{s:s,s:s,s:s}", "error", "no stub route", "method",
                          method, "path", url);
    nf = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    body = nf ? nf : "";
  }
  struct MHD_Response *resp = MHD_create_response_from_buffer(
      strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  free(nf);
  if (resp == NULL)
    return MHD_NO;
  int ctype = 0;
  const char *k;
  json_t *v;
  if (r != NULL && json_is_object(r->headers))
    json_object_foreach(r->headers, k, v) {
      char num[32];
      const char *s = json_string_value(v);
      if (s == NULL && json_is_number(v)) {
        snprintf(num, sizeof(num), "%.15g", json_number_value(v));
        s = num;
      }
      if (s != NULL)
        MHD_add_response_header(resp, k, s);
      ctype |= strcasecmp(k, "Content-Type") == 0;
    }
  if (!ctype)
    MHD_add_response_header(resp, "Content-Type",
                            r == NULL || r->json ? "application/json"
                                                 : "text/plain");
  MHD_RESULT rc = MHD_queue_response(conn, r ? r->status : 404, resp);
  MHD_destroy_response(resp);
  return rc;
}

static MHD_RESULT on_request(void *cls, struct MHD_Connection *conn,
                             const char *url, const char *method,
                             const char *version, const char *upload,
                             size_t *upload_size, void **con_cls) {
  const struct stub *s = cls;
  (void)version, (void)upload;
  if (*con_cls == NULL) { /* the head: the body, if any, comes next */
    *con_cls = (void *)1;
    return MHD_YES;
  }
  if (*upload_size > 0) { /* a request body: read and dropped */
    *upload_size = 0;
    return MHD_YES;
  }
  const struct route *r = find(s, method, url);
  if (r != NULL && r->latency_ms > 0) {
    struct timespec ts = {r->latency_ms / 1000,
                          (r->latency_ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
      ;
  }
  return answer(conn, r, method, url);
}

int fl_cmd_stub(int argc, char **argv) {
  if (argc != 4 || strcmp(argv[1], "--port") != 0 || atoi(argv[2]) <= 0) {
    fl_say("usage: faultline-run stub --port N ROUTES.json");
    return FL_EXIT_USAGE;
  }
  json_t *root = NULL;
  struct stub s = {0};
  if (load(argv[3], &root, &s) != 0)
    return FL_EXIT_USAGE;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit it */
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(argv[2]))};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *mhd = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL,
      NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, &sa,
      MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
  int status = FL_EXIT_OK, sig;
  if (mhd == NULL) {
    fl_say("stub: cannot listen on 127.0.0.1:%s", argv[2]);
    status = FL_EXIT_ENV;
  } else {
    sigwait(&set, &sig);
    MHD_stop_daemon(mhd);
  }
  for (size_t i = 0; i < s.n; i++)
    free(s.routes[i].body);
  free(s.routes);
  json_decref(root);
  return status;
}
