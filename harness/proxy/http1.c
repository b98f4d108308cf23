/*
 * HTTP/1.1 framing (see http1.h): head lines are collected one at a time
 * (only the line being read is kept), bodies are skipped by their length.
 * Anything it does not follow exactly is FL_H1_BAD, so that the codec stops
 * rewriting rather than guess where a message ends.
 */
#define _GNU_SOURCE
#include "http1.h"

#include <string.h>
#include <strings.h>

enum {
  S_START,      /* the start line (or empty lines before it) */
  S_HEADER,     /* header lines */
  S_HEAD_END,   /* the head ended: the body, if any, is next */
  S_BODY_LEN,   /* Content-Length bytes */
  S_CHUNK_SIZE, /* a chunk-size line */
  S_CHUNK_DATA, /* chunk-data bytes */
  S_CHUNK_CRLF, /* the CRLF after chunk-data */
  S_TRAILER,    /* trailer lines, to the empty one */
  S_BODY_EOF,   /* everything to the end of the stream */
  S_BAD,
};

void fl_h1_init(struct fl_h1 *h, int response) {
  memset(h, 0, sizeof(*h));
  h->response = (uint8_t)(response != 0);
  h->state = S_START;
}

int fl_h1_at_start(const struct fl_h1 *h) {
  return h->state == S_START && h->linelen == 0;
}

int fl_h1_in_body(const struct fl_h1 *h) {
  return h->state >= S_BODY_LEN && h->state <= S_BODY_EOF;
}

static int is_tchar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

static int version_ok(const char *v, size_t n) {
  return n == 8 && memcmp(v, "HTTP/1.", 7) == 0 && (v[7] == '0' || v[7] == '1');
}

/* METHOD SP TARGET SP HTTP/1.x */
static int request_line(struct fl_h1 *h, char *l, size_t n) {
  char *sp1 = memchr(l, ' ', n);
  if (sp1 == NULL || sp1 == l || (size_t)(sp1 - l) >= sizeof(h->method))
    return -1;
  for (char *c = l; c < sp1; c++)
    if (!is_tchar(*c))
      return -1;
  char *t = sp1 + 1, *sp2 = memchr(t, ' ', n - (size_t)(t - l));
  if (sp2 == NULL || sp2 == t ||
      !version_ok(sp2 + 1, n - (size_t)(sp2 + 1 - l)))
    return -1;
  memcpy(h->method, l, (size_t)(sp1 - l));
  h->method[sp1 - l] = '\0';
  size_t tl = (size_t)(sp2 - t);
  if (tl >= sizeof(h->target))
    tl = sizeof(h->target) - 1;
  memcpy(h->target, t, tl);
  h->target[tl] = '\0';
  h->close = sp2[8] == '0'; /* HTTP/1.0 closes unless told otherwise */
  return 0;
}

/* HTTP/1.x SP 3DIGIT [SP reason] */
static int status_line(struct fl_h1 *h, const char *l, size_t n) {
  if (n < 12 || !version_ok(l, 8) || l[8] != ' ' || (n > 12 && l[12] != ' '))
    return -1;
  for (int i = 9; i < 12; i++)
    if (l[i] < '0' || l[i] > '9')
      return -1;
  h->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
  return h->status >= 100 ? 0 : -1;
}

/* Does the comma-separated list v hold token tok (any case)? */
static int has_token(const char *v, const char *tok) {
  size_t tl = strlen(tok);
  for (const char *p = v; *p != '\0';) {
    p += strspn(p, " \t,");
    size_t len = strcspn(p, ",");
    size_t k = len;
    while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t'))
      k--;
    if (k == tl && strncasecmp(p, tok, tl) == 0)
      return 1;
    p += len;
  }
  return 0;
}

/* Is tok the last of the comma-separated list v? */
static int last_token(const char *v, const char *tok) {
  const char *comma = strrchr(v, ',');
  const char *p = comma ? comma + 1 : v;
  p += strspn(p, " \t");
  size_t k = strlen(p);
  while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t'))
    k--;
  return k == strlen(tok) && strncasecmp(p, tok, k) == 0;
}

static int header_line(struct fl_h1 *h, char *l, size_t n) {
  if (l[0] == ' ' || l[0] == '\t')
    return -1; /* obsolete line folding */
  char *colon = memchr(l, ':', n);
  if (colon == NULL || colon == l)
    return -1;
  for (char *c = l; c < colon; c++)
    if (!is_tchar(*c))
      return -1;
  size_t nl = (size_t)(colon - l);
  char *v = colon + 1;
  v += strspn(v, " \t");
  if (nl == 14 && strncasecmp(l, "content-length", nl) == 0) {
    uint64_t x = 0;
    size_t k = 0;
    for (; v[k] >= '0' && v[k] <= '9'; k++) {
      if (x > (UINT64_MAX - 9) / 10)
        return -1;
      x = x * 10 + (uint64_t)(v[k] - '0');
    }
    if (k == 0 || v[k + strspn(v + k, " \t")] != '\0')
      return -1;
    if (h->has_len && x != h->length)
      return -1;
    h->has_len = 1;
    h->length = x;
  } else if (nl == 17 && strncasecmp(l, "transfer-encoding", nl) == 0) {
    /* Only chunked last frames a body; other codings: until EOF. */
    h->chunked = last_token(v, "chunked") ? 1 : 2;
  } else if (nl == 10 && strncasecmp(l, "connection", nl) == 0) {
    if (has_token(v, "close"))
      h->close = 1;
    else if (has_token(v, "keep-alive"))
      h->close = 0;
  } else if (nl == 6 && strncasecmp(l, "expect", nl) == 0) {
    h->expect = has_token(v, "100-continue");
  } else if (nl == 7 && strncasecmp(l, "upgrade", nl) == 0) {
    h->upgrade = 1;
  }
  return 0;
}

/* The empty line ended the head: how its body is framed. */
static void head_end(struct fl_h1 *h) {
  h->state = S_HEAD_END;
  h->body_length = 0;
  if (!h->response) {
    if (strcmp(h->method, "CONNECT") == 0)
      h->upgrade = 1;
    if (h->chunked == 2)
      h->state = S_BAD; /* a request's body cannot end at EOF */
    return;
  }
  if (h->status != 101)
    h->upgrade = 0;
}

static int start_body(struct fl_h1 *h) {
  int none = h->response && (h->no_body || h->status < 200 ||
                             h->status == 204 || h->status == 304);
  h->no_body = 0;
  h->body_bytes = 0;
  if (none)
    return 0;
  if (h->chunked == 1) {
    h->state = S_CHUNK_SIZE;
    return 1;
  }
  if (h->chunked == 2 && h->response) {
    h->state = S_BODY_EOF;
    return 1;
  }
  if (h->has_len) {
    h->body_length = h->length;
    h->left = h->length;
    h->state = S_BODY_LEN;
    return h->left > 0;
  }
  if (h->response) {
    h->state = S_BODY_EOF;
    return 1;
  }
  return 0;
}

static int chunk_size(struct fl_h1 *h, const char *l, size_t n) {
  uint64_t x = 0;
  size_t k = 0;
  for (; k < n; k++) {
    char c = l[k];
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      break;
    if (k >= 15)
      return -1;
    x = x * 16 + (uint64_t)d;
  }
  if (k == 0 || (k < n && l[k] != ';' && l[k] != ' ' && l[k] != '\t'))
    return -1;
  h->left = x;
  h->state = x > 0 ? S_CHUNK_DATA : S_TRAILER;
  return 0;
}

/* A whole line (CRLF or LF removed) in the state it ends; the event it
 * makes, FL_H1_MORE for none. */
static enum fl_h1_event on_line(struct fl_h1 *h, char *l, size_t n) {
  int rc = 0;
  switch (h->state) {
  case S_START:
    if (n == 0)
      return FL_H1_MORE; /* empty lines before a message are ignored */
    h->status = 0;
    h->method[0] = h->target[0] = '\0';
    h->chunked = h->has_len = h->close = h->upgrade = h->expect = 0;
    h->length = 0;
    rc = h->response ? status_line(h, l, n) : request_line(h, l, n);
    h->state = S_HEADER;
    break;
  case S_HEADER:
    if (n == 0) {
      head_end(h);
      return h->state == S_BAD ? FL_H1_BAD : FL_H1_HEAD;
    }
    rc = header_line(h, l, n);
    break;
  case S_CHUNK_SIZE:
    rc = chunk_size(h, l, n);
    break;
  case S_CHUNK_CRLF:
    rc = n == 0 ? 0 : -1;
    h->state = S_CHUNK_SIZE;
    break;
  case S_TRAILER:
    if (n == 0) {
      h->state = S_START;
      return FL_H1_DONE;
    }
    break;
  }
  if (rc != 0) {
    h->state = S_BAD;
    return FL_H1_BAD;
  }
  return FL_H1_MORE;
}

/* Skips up to h->left bytes of a length-framed part. */
static size_t skip(struct fl_h1 *h, size_t avail) {
  size_t take = h->left < avail ? (size_t)h->left : avail;
  h->left -= take;
  h->body_bytes += take;
  return take;
}

size_t fl_h1_feed(struct fl_h1 *h, const char *data, size_t n,
                  enum fl_h1_event *ev) {
  size_t off = 0;
  for (;;) {
    switch (h->state) {
    case S_BAD:
      *ev = FL_H1_BAD;
      return off;
    case S_HEAD_END:
      if (!start_body(h)) {
        h->state = S_START;
        *ev = FL_H1_DONE;
        return off;
      }
      continue;
    case S_BODY_LEN:
      off += skip(h, n - off);
      if (h->left == 0) {
        h->state = S_START;
        *ev = FL_H1_DONE;
        return off;
      }
      *ev = FL_H1_MORE;
      return off;
    case S_CHUNK_DATA:
      off += skip(h, n - off);
      if (h->left > 0) {
        *ev = FL_H1_MORE;
        return off;
      }
      h->state = S_CHUNK_CRLF;
      continue;
    case S_BODY_EOF:
      h->body_bytes += n - off;
      *ev = FL_H1_MORE;
      return n;
    default:
      break;
    }
    /* A line-framed state: collect up to the LF. */
    if (off == n) {
      *ev = FL_H1_MORE;
      return off;
    }
    const char *nl = memchr(data + off, '\n', n - off);
    size_t len = nl ? (size_t)(nl - (data + off)) + 1 : n - off;
    if (h->linelen + len > sizeof(h->line) - 1) {
      h->state = S_BAD;
      continue;
    }
    memcpy(h->line + h->linelen, data + off, len);
    h->linelen += len;
    if (fl_h1_in_body(h))
      h->body_bytes += len;
    off += len;
    if (nl == NULL)
      continue;
    size_t ll = h->linelen - 1; /* without the LF */
    if (ll > 0 && h->line[ll - 1] == '\r')
      ll--;
    h->line[ll] = '\0';
    h->linelen = 0;
    if (memchr(h->line, '\0', ll) != NULL || memchr(h->line, '\r', ll)) {
      h->state = S_BAD;
      continue;
    }
    enum fl_h1_event e = on_line(h, h->line, ll);
    if (e != FL_H1_MORE) {
      *ev = e;
      return off;
    }
  }
}
