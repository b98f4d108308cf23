/*
 * Path templates: "/api/profile/{1..50}", "/api/{items,orders}". Each
 * placeholder is drawn uniformly per request from a counter-based
 * generator (splitmix64 of the seed, the endpoint and the request
 * number), so request k of an endpoint gets the same path in every run
 * with the same seed, whatever the timing.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "traffic_int.h"

/* A bound that keeps a typo ({1..1000000000000000000000}) from parsing
 * as something else; far above any id space a test needs. */
#define RANGE_MAX 1000000000000000ull

struct part {
  char *lit;       /* text before the placeholder (may be "") */
  int kind;        /* 0: none (the last part), 1: range, 2: list */
  uint64_t lo, hi; /* range */
  int width;       /* range: zero-padded to this many digits, or 0 */
  char **items;    /* list */
  size_t nitems;
};

struct fl_path_tmpl {
  struct part *parts;
  size_t nparts;
};

static int fail(int *col, int at, char *err, size_t errlen, const char *fmt,
                ...) __attribute__((format(printf, 5, 6)));
static int fail(int *col, int at, char *err, size_t errlen, const char *fmt,
                ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err != NULL)
    vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  if (col != NULL)
    *col = at + 1;
  return -EINVAL;
}

static const char allowed[] =
    "(allowed: {A..B} with whole numbers A <= B, or {x,y,...} with two or "
    "more non-empty items)";

/* A whole number of s[0..len), digits only; 0 or -EINVAL. */
static int whole(const char *s, size_t len, uint64_t *out) {
  if (len == 0 || len > 16)
    return -EINVAL;
  uint64_t v = 0;
  for (size_t i = 0; i < len; i++) {
    if (!isdigit((unsigned char)s[i]))
      return -EINVAL;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if (v > RANGE_MAX)
    return -EINVAL;
  *out = v;
  return 0;
}

/* {A..B}: 1 if s[0..len) is one (p filled), 0 if it is not a range, or
 * -EINVAL for one with A > B. */
static int parse_range(const char *s, size_t len, struct part *p) {
  const char *dots = memmem(s, len, "..", 2);
  if (dots == NULL)
    return 0;
  size_t alen = (size_t)(dots - s), blen = len - alen - 2;
  if (whole(s, alen, &p->lo) != 0 || whole(dots + 2, blen, &p->hi) != 0)
    return 0;
  if (p->lo > p->hi)
    return -EINVAL;
  p->kind = 1;
  /* {001..050}: zero-padded, as a shell would. */
  p->width = alen > 1 && s[0] == '0' ? (int)alen : 0;
  return 1;
}

/* {x,y,...}: 1 if s[0..len) is a list of two or more non-empty items
 * (p filled), 0 if not, -ENOMEM. */
static int parse_list(const char *s, size_t len, struct part *p) {
  size_t n = 1;
  for (size_t i = 0; i < len; i++)
    n += s[i] == ',';
  if (n < 2)
    return 0;
  if ((p->items = calloc(n, sizeof(char *))) == NULL)
    return -ENOMEM;
  const char *end = s + len;
  for (const char *at = s; p->nitems < n; p->nitems++) {
    const char *comma = memchr(at, ',', (size_t)(end - at));
    const char *stop = comma != NULL ? comma : end;
    if (stop == at) /* an empty item: "{a,,b}", "{a,}" */
      return 0;
    if ((p->items[p->nitems] = strndup(at, (size_t)(stop - at))) == NULL)
      return -ENOMEM;
    at = stop + 1;
  }
  p->kind = 2;
  return 1;
}

static void parts_free(struct part *parts, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(parts[i].lit);
    for (size_t k = 0; k < parts[i].nitems; k++)
      free(parts[i].items[k]);
    free(parts[i].items);
  }
  free(parts);
}

void fl_path_free(struct fl_path_tmpl *t) {
  if (t == NULL)
    return;
  parts_free(t->parts, t->nparts);
  free(t);
}

/* The placeholder that starts at s[open] ('{'), into p. */
static int parse_placeholder(const char *s, size_t open, struct part *p,
                             size_t *close, int *col, char *err,
                             size_t errlen) {
  const char *body = s + open + 1;
  size_t len = strcspn(body, "{}");
  if (body[len] == '{')
    return fail(col, (int)(open + 1 + len), err, errlen,
                "'{' inside a placeholder in path '%s' %s", s, allowed);
  if (body[len] != '}')
    return fail(col, (int)open, err, errlen, "unclosed '{' in path '%s' %s", s,
                allowed);
  *close = open + 1 + len;
  int rc = parse_range(body, len, p);
  if (rc == 0)
    rc = parse_list(body, len, p);
  if (rc == -ENOMEM)
    return fail(col, (int)open, err, errlen, "out of memory");
  if (rc == -EINVAL)
    return fail(col, (int)open, err, errlen,
                "empty range '{%.*s}' in path '%s': its start is above its "
                "end %s",
                (int)len, body, s, allowed);
  if (rc == 0)
    return fail(col, (int)open, err, errlen,
                "bad placeholder '{%.*s}' in path '%s' %s", (int)len, body, s,
                allowed);
  return 0;
}

int fl_path_parse(const char *path, struct fl_path_tmpl **out, int *col,
                  char *err, size_t errlen) {
  size_t n = 1;
  for (const char *c = path; *c; c++)
    n += *c == '{';
  struct fl_path_tmpl *t = calloc(1, sizeof(*t));
  if (t == NULL || (t->parts = calloc(n, sizeof(*t->parts))) == NULL) {
    free(t);
    return fail(col, 0, err, errlen, "out of memory");
  }
  size_t at = 0;
  for (;;) {
    struct part *p = &t->parts[t->nparts++];
    size_t lit = strcspn(path + at, "{}");
    if ((p->lit = strndup(path + at, lit)) == NULL) {
      fl_path_free(t);
      return fail(col, 0, err, errlen, "out of memory");
    }
    at += lit;
    if (path[at] == '\0')
      break;
    int rc = path[at] == '}'
                 ? fail(col, (int)at, err, errlen,
                        "'}' without '{' in path '%s' %s", path, allowed)
                 : parse_placeholder(path, at, p, &at, col, err, errlen);
    if (rc != 0) {
      fl_path_free(t);
      return rc;
    }
    at++; /* past '}' */
  }
  *out = t;
  return 0;
}

int fl_path_check(const char *path, int *col, char *err, size_t errlen) {
  struct fl_path_tmpl *t = NULL;
  int rc = fl_path_parse(path, &t, col, err, errlen);
  fl_path_free(rc == 0 ? t : NULL);
  return rc;
}

int fl_path_is_fixed(const struct fl_path_tmpl *t) { return t->nparts == 1; }

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* Uniform in [0, n) without modulo bias worth the name (Lemire's
 * multiply-shift). */
static uint64_t below(uint64_t r, uint64_t n) {
  return (uint64_t)(((unsigned __int128)r * n) >> 64);
}

/* Appends to buf[*used..size); 0 or -ENAMETOOLONG. */
static int append(char *buf, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t size, size_t *used, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf + *used, size - *used, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= size - *used)
    return -ENAMETOOLONG;
  *used += (size_t)w;
  return 0;
}

int fl_path_draw(const struct fl_path_tmpl *t, uint64_t key, uint64_t k,
                 char *buf, size_t size) {
  size_t used = 0;
  uint64_t state = splitmix64(key ^ splitmix64(k));
  for (size_t i = 0; i < t->nparts; i++) {
    const struct part *p = &t->parts[i];
    uint64_t r = splitmix64(state + i);
    int rc = append(buf, size, &used, "%s", p->lit);
    if (rc == 0 && p->kind == 1)
      rc = append(buf, size, &used, "%0*llu", p->width,
                  (unsigned long long)(p->lo + below(r, p->hi - p->lo + 1)));
    else if (rc == 0 && p->kind == 2)
      rc = append(buf, size, &used, "%s", p->items[below(r, p->nitems)]);
    if (rc != 0)
      return rc;
  }
  return 0;
}

uint64_t fl_path_key(uint64_t seed, const char *name) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a: the endpoint's own stream */
  for (const unsigned char *c = (const unsigned char *)name; *c; c++)
    h = (h ^ *c) * 1099511628211ull;
  return splitmix64(seed) ^ h;
}
