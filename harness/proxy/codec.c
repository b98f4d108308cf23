/*
 * The protocols the proxy follows, one row each (struct fl_codec in
 * proxy_int.h); each protocol's framing and faults live in a file of
 * their own. A dependency whose protocol is here can take protocol
 * faults (redis_error, pg_error, http_*, ws_*).
 */
#define _GNU_SOURCE
#include "pgwire.h"
#include "proxy_int.h"

#include <stdio.h>
#include <string.h>

extern const struct fl_codec fl_codec_redis; /* redis.c */
extern const struct fl_codec fl_codec_http;  /* http.c */
extern const struct fl_codec fl_codec_ws;    /* ws.c */

static const struct fl_codec *const codecs[] = {
    &fl_codec_redis,
    &fl_codec_postgres,
    &fl_codec_http,
    &fl_codec_ws,
    NULL, /* the end */
};

const struct fl_codec *fl_codec_find(const char *name) {
  for (size_t i = 0; codecs[i] != NULL; i++)
    if (strcmp(codecs[i]->name, name) == 0)
      return codecs[i];
  return NULL;
}

void fl_codec_names(char *buf, size_t size) {
  size_t at = 0;
  buf[0] = '\0';
  for (size_t i = 0; codecs[i] != NULL && at < size; i++)
    at += (size_t)snprintf(buf + at, size - at, "%s%s", at ? ", " : "",
                           codecs[i]->name);
}
