/*
 * The RESP reader (see resp.h). One state machine for both sides: a value
 * begins with a type byte; simple types run to the end of their line;
 * blob types and aggregates have a header line with a length or a count
 * ('?': streamed); aggregates push a frame that counts their elements.
 * Lines end at '\n' (a '\r' before it is dropped): we follow the framing,
 * the server judges the rest.
 */
#define _GNU_SOURCE
#include "resp.h"

#include <ctype.h>
#include <string.h>

enum state { S_TYPE, S_LINE, S_HEAD, S_BULK, S_INLINE, S_BAD };

void fl_resp_init(struct fl_resp *r, int client) {
  memset(r, 0, sizeof(*r));
  r->client = (uint8_t)(client != 0);
}

static void keep(struct fl_resp *r, int w, const char *p, size_t n) {
  size_t room = FL_RESP_WORD - 1 - r->wlen[w];
  if (n > room)
    n = room;
  for (size_t i = 0; i < n; i++)
    r->word[w][r->wlen[w]++] = (char)toupper((unsigned char)p[i]);
  r->word[w][r->wlen[w]] = '\0';
}

static int bad(struct fl_resp *r) {
  r->state = S_BAD;
  return FL_RESP_BAD;
}

/* A value ended at the current depth: counts it in its aggregates, which
 * may end in turn. Returns FL_RESP_END when the top-level value did. */
static int value_done(struct fl_resp *r) {
  r->state = S_TYPE;
  for (;;) {
    if (r->depth == 0) {
      r->open = 0;
      return FL_RESP_END;
    }
    int d = r->depth - 1;
    if (r->client && d == 0)
      r->arg++;
    if (r->streamed & (UINT64_C(1) << d))
      return 0;
    if (--r->left[d] > 0)
      return 0;
    r->depth--;
    if (r->attr & (UINT64_C(1) << d)) {
      /* An attribute describes the value after it: not a value itself. */
      r->attr &= ~(UINT64_C(1) << d);
      return 0;
    }
  }
}

/* A header line's number: -1 and more; -2 for '?', -3 when not one. */
static int64_t head_number(const struct fl_resp *r) {
  const char *s = r->line;
  if (r->linelen == 1 && s[0] == '?')
    return -2;
  int neg = s[0] == '-';
  size_t i = (size_t)neg, len = r->linelen;
  if (i == len || len - i > 18)
    return -3;
  int64_t v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -3;
    v = v * 10 + (s[i] - '0');
  }
  if (neg)
    return v == 1 ? -1 : -3;
  return v;
}

/* Opens an aggregate of `count` elements (-2: streamed). */
static int open_aggregate(struct fl_resp *r, int64_t count, int attr) {
  if (count == 0)
    return attr ? (r->state = S_TYPE, 0) : value_done(r);
  if (r->depth == FL_RESP_DEPTH)
    return bad(r);
  int d = r->depth++;
  uint64_t bit = UINT64_C(1) << d;
  r->left[d] = count;
  r->streamed = count == -2 ? r->streamed | bit : r->streamed & ~bit;
  r->attr = attr ? r->attr | bit : r->attr & ~bit;
  r->state = S_TYPE;
  return 0;
}

/* A header line is complete: what it opens. */
static int header_done(struct fl_resp *r) {
  int64_t v = head_number(r);
  int t = r->head;
  if (t == '.') { /* the end of a streamed aggregate */
    if (r->linelen != 0 || r->depth == 0 ||
        !(r->streamed & (UINT64_C(1) << (r->depth - 1))))
      return bad(r);
    r->depth--;
    return value_done(r);
  }
  if (v == -3 || (v == -2 && (r->client || r->chunk)))
    return bad(r);
  if (t == ';') { /* a streamed string's chunk */
    if (v < 0)
      return bad(r);
    if (v == 0) {
      r->chunk = 0;
      return value_done(r);
    }
    r->bulk = v + 2;
    r->state = S_BULK;
    return 0;
  }
  if (t == '$' || t == '!' || t == '=') {
    if (v == -2 && t == '$') {
      r->chunk = 1;
      r->state = S_TYPE;
      return 0;
    }
    if (v < 0)
      return v == -1 ? value_done(r) : bad(r);
    r->bulk = v + 2;
    r->state = S_BULK;
    return 0;
  }
  /* A null array (RESP2's), or an empty command (ignored by servers). */
  if (v == -1 || (v == 0 && r->client))
    return value_done(r);
  int pairs = t == '%' || t == '|';
  return open_aggregate(r, v >= 0 && pairs ? v * 2 : v, t == '|');
}

/* A value's first byte. Returns the event bits. */
static int type_byte(struct fl_resp *r, char t) {
  if (r->chunk && t != ';')
    return bad(r);
  if (r->client && r->depth > 0 && t != '$')
    return bad(r); /* a command's elements are bulk strings */
  switch (t) {
  case '+':
  case '-':
  case ':':
  case '_':
  case ',':
  case '#':
  case '(':
    if (r->client)
      return bad(r);
    r->state = S_LINE;
    return 0;
  case '$':
  case '!':
  case '=':
  case '*':
  case '%':
  case '~':
  case '>':
  case '|':
  case '.':
  case ';':
    if (r->client && t != '$' && t != '*')
      return bad(r);
    r->head = (uint8_t)t;
    r->linelen = 0;
    r->state = S_HEAD;
    return 0;
  default:
    return bad(r);
  }
}

/* Reads a header line; returns the bytes taken, events in *ev. */
static size_t read_head(struct fl_resp *r, const char *p, size_t n, int *ev) {
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    if (ch == '\n') {
      *ev = header_done(r);
      return i + 1;
    }
    if (ch == '\r')
      continue;
    if (r->linelen == sizeof(r->line) - 1) {
      *ev = bad(r);
      return i;
    }
    r->line[r->linelen++] = ch;
  }
  return n;
}

/* Skips a bulk payload, keeping a command's first two words. The name is
 * reported where it ends (or where we stop keeping it), wherever the
 * stream was cut. */
static size_t read_bulk(struct fl_resp *r, const char *p, size_t n, int *ev) {
  size_t m = (uint64_t)r->bulk < n ? (size_t)r->bulk : n;
  int w = (int)r->arg;
  if (r->client && !r->chunk && r->depth == 1 && w < 2) {
    size_t payload = r->bulk > 2 ? (size_t)(r->bulk - 2) : 0;
    if (w == 0 && !r->named) {
      size_t room = FL_RESP_WORD - 1 - r->wlen[0];
      size_t stop = payload < room ? payload : room;
      if (m >= stop) {
        m = stop;
        r->named = 1;
        *ev |= FL_RESP_NAME;
      }
    }
    keep(r, w, p, m < payload ? m : payload);
  }
  r->bulk -= (int64_t)m;
  if (r->bulk == 0) {
    if (r->chunk)
      r->state = S_TYPE;
    else
      *ev |= value_done(r);
  }
  return m;
}

/* An inline command: words up to the end of the line. */
static size_t read_inline(struct fl_resp *r, const char *p, size_t n, int *ev) {
  for (size_t i = 0; i < n; i++) {
    char ch = p[i];
    int space = ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
    if (!space && !r->inword) {
      r->inword = 1;
    } else if (space && r->inword) {
      r->inword = 0;
      if (r->arg++ == 0 && !r->named) {
        r->named = 1;
        *ev |= FL_RESP_NAME;
      }
    }
    if (r->inword && r->arg < 2)
      keep(r, (int)r->arg, &ch, 1);
    if (ch == '\n') {
      r->state = S_TYPE;
      r->open = 0;
      *ev |= FL_RESP_END;
    }
    if (*ev)
      return i + 1;
  }
  return n;
}

size_t fl_resp_feed(struct fl_resp *r, const char *p, size_t n, int *ev) {
  size_t i = 0;
  *ev = 0;
  while (i < n && *ev == 0) {
    switch (r->state) {
    case S_TYPE:
      if (!r->open) {
        r->open = 1;
        r->type = (uint8_t)p[i];
        r->arg = r->named = r->inword = 0;
        r->wlen[0] = r->wlen[1] = 0;
        r->word[0][0] = r->word[1][0] = '\0';
        if (r->client && p[i] != '*') {
          r->state = S_INLINE;
          break;
        }
      }
      *ev = type_byte(r, p[i]);
      if (!(*ev & FL_RESP_BAD))
        i++;
      break;
    case S_LINE: {
      const char *nl = memchr(p + i, '\n', n - i);
      if (nl == NULL)
        return n;
      i = (size_t)(nl - p) + 1;
      *ev = value_done(r);
      break;
    }
    case S_HEAD:
      i += read_head(r, p + i, n - i, ev);
      break;
    case S_BULK:
      i += read_bulk(r, p + i, n - i, ev);
      break;
    case S_INLINE:
      i += read_inline(r, p + i, n - i, ev);
      break;
    default:
      *ev = FL_RESP_BAD;
      return i;
    }
  }
  return i;
}
