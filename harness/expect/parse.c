/*
 * Expectations, parsed: a hand-written recursive-descent parser over the
 * grammar in expect.h. A failure names what it found and what is allowed,
 * with the column of the token where parsing stopped.
 */
#define _GNU_SOURCE
#include "expect_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/base.h"

const char *const fl_expect_op_text[FL_CMP_NE + 1] = {
    [FL_CMP_LT] = "<",  [FL_CMP_LE] = "<=", [FL_CMP_GT] = ">",
    [FL_CMP_GE] = ">=", [FL_CMP_EQ] = "==", [FL_CMP_NE] = "!="};

#define KINDS_ALLOWED                                                          \
  "rate, header, p, max, within, requests, recovers, no restart, no crash, "   \
  "alive, starts, fds, conns, inbound, files, rss, settles, fault, "           \
  "connect, rtt, closes, messages"
#define COUNTS_ALLOWED "fds, conns(NAME), inbound, files or rss"
#define OPS_ALLOWED "a comparison (<, <=, >, >=, ==, !=)"

/* ---- Tokens ---------------------------------------------------------- */

/* A word is an identifier, a number with its unit or %, a class (2xx) or
 * a name (Retry-After, postgres): one token, interpreted by where it
 * stands, so that a bad duration is reported as the whole '3x'. */
enum { T_END, T_WORD, T_OP, T_PUNCT };

struct parser {
  const char *text;
  const char *at; /* the current token */
  size_t len;
  int tok;
  char *err;
  size_t errlen;
  int *errcol;
  int nested; /* inside settles(...) */
};

static int word_char(char c) {
  return c != '\0' &&
         (isalnum((unsigned char)c) || strchr("_.%:@-", c) != NULL);
}

static int op_char(char c) { return c != '\0' && strchr("<>=!", c) != NULL; }

static void advance(struct parser *p) {
  const char *s = p->at + p->len;
  while (isspace((unsigned char)*s))
    s++;
  size_t n = 0;
  if (*s == '\0') {
    p->tok = T_END;
  } else if (word_char(*s)) {
    p->tok = T_WORD;
    while (word_char(s[n]))
      n++;
  } else if (op_char(*s)) {
    p->tok = T_OP;
    while (op_char(s[n]))
      n++;
  } else {
    /* One character, with the continuation bytes of a UTF-8 sequence. */
    p->tok = T_PUNCT;
    n = 1;
    while ((s[n] & 0xC0) == 0x80)
      n++;
  }
  p->at = s;
  p->len = n;
}

static int is_word(const struct parser *p, const char *w) {
  return p->tok == T_WORD && p->len == strlen(w) &&
         memcmp(p->at, w, p->len) == 0;
}

static int is_punct(const struct parser *p, char c) {
  return p->tok == T_PUNCT && p->at[0] == c;
}

__attribute__((format(printf, 2, 3))) static int fail(struct parser *p,
                                                      const char *fmt, ...) {
  if (p->errcol != NULL)
    *p->errcol = (int)(p->at - p->text) + 1;
  if (p->err != NULL && p->errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->errlen, fmt, ap);
    va_end(ap);
  }
  return FL_EBADSPEC;
}

/* "expected WHAT after 'TEXT SO FAR', found 'TOKEN'" */
static int fail_expected(struct parser *p, const char *what) {
  int n = (int)(p->at - p->text);
  while (n > 0 && isspace((unsigned char)p->text[n - 1]))
    n--;
  if (p->tok == T_END)
    return fail(p, "expected %s after '%.*s', found nothing", what, n, p->text);
  return fail(p, "expected %s after '%.*s', found '%.*s'", what, n, p->text,
              (int)p->len, p->at);
}

static int expect_punct(struct parser *p, char c) {
  if (!is_punct(p, c)) {
    char what[8];
    snprintf(what, sizeof(what), "'%c'", c);
    return fail_expected(p, what);
  }
  advance(p);
  return 0;
}

static int expect_word(struct parser *p, const char *w) {
  if (!is_word(p, w)) {
    char what[32];
    snprintf(what, sizeof(what), "'%s'", w);
    return fail_expected(p, what);
  }
  advance(p);
  return 0;
}

/* ---- Values ---------------------------------------------------------- */

static int suffix_is(const struct parser *p, size_t n, const char *unit) {
  return p->len - n == strlen(unit) && memcmp(p->at + n, unit, p->len - n) == 0;
}

static int parse_op(struct parser *p, int *op) {
  if (p->tok == T_OP)
    for (size_t i = 0; i < COUNT(fl_expect_op_text); i++)
      if (p->len == strlen(fl_expect_op_text[i]) &&
          memcmp(p->at, fl_expect_op_text[i], p->len) == 0) {
        *op = (int)i;
        advance(p);
        return 0;
      }
  return fail_expected(p, OPS_ALLOWED);
}

/* A bare number followed, after spaces, by what looks like its unit
 * ("95 %", "3 s"): the length of both for the message, else 0. */
static size_t bare_then_spaced(const struct parser *p) {
  double v = 0;
  if (fl_scan_number(p->at, p->len, &v) != p->len)
    return 0;
  struct parser q = *p;
  advance(&q);
  if (q.tok != T_WORD || !(isalpha((unsigned char)q.at[0]) || q.at[0] == '%'))
    return 0;
  if (p->at + p->len == q.at)
    return 0;
  return (size_t)(q.at + q.len - p->at);
}

static int parse_percent(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a percentage");
  double v = 0;
  if (bare_then_spaced(p) > 0)
    return fail(p,
                "bad percentage '%.*s' (allowed: 0-100%% with no space before "
                "the %%)",
                (int)bare_then_spaced(p), p->at);
  if (fl_scan_number(p->at, p->len, &v) == p->len)
    return fail(p,
                "bad percentage '%.*s' (allowed: 0-100%% with the %% sign, "
                "e.g. 95%%)",
                (int)p->len, p->at);
  if (fl_parse_percent(p->at, p->len, 0, out) != 0)
    return fail(p, "bad percentage '%.*s' (allowed: 0-100%%)", (int)p->len,
                p->at);
  advance(p);
  return 0;
}

static int parse_duration(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a duration");
  if (fl_parse_duration(p->at, p->len, 0, out) == 0) {
    advance(p);
    return 0;
  }
  if (bare_then_spaced(p) > 0)
    return fail(p,
                "bad duration '%.*s' (allowed: a number with ms, s or m and no "
                "space, e.g. 250ms, 2s)",
                (int)bare_then_spaced(p), p->at);
  return fail(p,
              "bad duration '%.*s' (allowed: a number with ms, s or m, e.g. "
              "250ms, 2s)",
              (int)p->len, p->at);
}

static int parse_size(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a size");
  if (fl_parse_size(p->at, p->len, 0, out) == 0) {
    advance(p);
    return 0;
  }
  if (bare_then_spaced(p) > 0)
    return fail(
        p,
        "bad size '%.*s' (allowed: a number with B, kB, MB or GB and no "
        "space, e.g. 512kB, 50MB)",
        (int)bare_then_spaced(p), p->at);
  return fail(p,
              "bad size '%.*s' (allowed: a number with B, kB, MB or GB, e.g. "
              "512kB, 50MB)",
              (int)p->len, p->at);
}

static int parse_count(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a count");
  double v = 0;
  size_t n = fl_scan_number(p->at, p->len, &v);
  if (n == 0 || n != p->len || memchr(p->at, '.', n) != NULL || v > 1e15)
    return fail(p, "bad count '%.*s' (allowed: a whole number)", (int)p->len,
                p->at);
  *out = v;
  advance(p);
  return 0;
}

static int parse_percentile(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a percentile");
  double v = 0;
  size_t n = fl_scan_number(p->at, p->len, &v);
  if (n == 0 || (n != p->len && !suffix_is(p, n, "%")) || v <= 0 || v > 100)
    return fail(p,
                "bad percentile '%.*s' (allowed: above 0 and up to 100, e.g. "
                "50, 99, 99.9)",
                (int)p->len, p->at);
  *out = v;
  advance(p);
  return 0;
}

/* A status (503), a status class (5xx) or, except for header checks, a
 * transport failure class. */
static int parse_class(struct parser *p, struct fl_status_class *c,
                       int for_header) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a status class");
  const char *s = p->at;
  size_t n = p->len;
  int found = 0;
  c->lo = c->hi = 0;
  c->xfer = -1;
  if (n == 3 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
      isdigit((unsigned char)s[2])) {
    int v = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (v >= 100 && v <= 599) {
      c->lo = c->hi = v;
      found = 1;
    }
  } else if (n == 3 && s[0] >= '1' && s[0] <= '5' &&
             (s[1] == 'x' || s[1] == 'X') && (s[2] == 'x' || s[2] == 'X')) {
    c->lo = (s[0] - '0') * 100;
    c->hi = c->lo + 99;
    found = 1;
  } else if (!for_header) {
    /* "error" is any transport failure; the others are the traffic's
     * own names of its failure classes. */
    if (n == 5 && memcmp(s, "error", 5) == 0) {
      c->xfer = 0;
      found = 1;
    }
    for (int e = FL_XFER_REFUSED; e <= FL_XFER_OTHER && !found; e++)
      if (n == strlen(fl_xfer_error_name(e)) &&
          memcmp(s, fl_xfer_error_name(e), n) == 0) {
        c->xfer = e;
        found = 1;
      }
  }
  if (!found && for_header)
    return fail(p,
                "bad status class '%.*s' for a header check (allowed: a "
                "status 100-599 or 1xx-5xx)",
                (int)n, s);
  if (!found)
    return fail(p,
                "bad status class '%.*s' (allowed: a status 100-599, 1xx-5xx, "
                "error, refused, reset, timeout, dns, other)",
                (int)n, s);
  memcpy(c->text, s, n);
  c->text[n] = '\0';
  advance(p);
  return 0;
}

/* NAME inside header(...), fault(...) or conns(...); `what` names it. */
static int parse_name(struct parser *p, char *out, size_t size,
                      const char *what) {
  int for_header = strcmp(what, "header name") == 0;
  if (p->tok != T_WORD) {
    char buf[32];
    snprintf(buf, sizeof(buf), "a %s", what);
    return fail_expected(p, buf);
  }
  if (for_header &&
      strspn(p->at, "abcdefghijklmnopqrstuvwxyz"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") < p->len)
    return fail(p,
                "bad header name '%.*s' (allowed: letters, digits, '-', '_' "
                "and '.')",
                (int)p->len, p->at);
  if (p->len >= size)
    return fail(p, "%s '%.*s' is longer than %zu characters", what, (int)p->len,
                p->at, size - 1);
  memcpy(out, p->at, p->len);
  out[p->len] = '\0';
  advance(p);
  return 0;
}

/* ---- Expectations ---------------------------------------------------- */

/* (CLASS) OP N%, after "rate". */
static int parse_rate_tail(struct parser *p, struct fl_expect *e) {
  int rc;
  if ((rc = expect_punct(p, '(')) != 0 ||
      (rc = parse_class(p, &e->cls, 0)) != 0 ||
      (rc = expect_punct(p, ')')) != 0 || (rc = parse_op(p, &e->op)) != 0)
    return rc;
  return parse_percent(p, &e->value);
}

/* OP baseline [+ N], after "fds" or "rss". */
static int parse_baseline_tail(struct parser *p, struct fl_expect *e,
                               int size) {
  int rc;
  if ((rc = parse_op(p, &e->op)) != 0 || (rc = expect_word(p, "baseline")) != 0)
    return rc;
  e->value = 0;
  if (p->tok == T_END || (p->nested && is_punct(p, ')')))
    return 0;
  if (!is_punct(p, '+')) {
    char what[32];
    snprintf(what, sizeof(what), "'+ %s' or %s", size ? "SIZE" : "N",
             p->nested ? "')'" : "nothing");
    return fail_expected(p, what);
  }
  advance(p);
  return size ? parse_size(p, &e->value) : parse_count(p, &e->value);
}

/* A "string" at p (a '"' token): unescaped into out. The token is
 * stretched to the closing quote so that advance() goes past it. */
static int parse_string(struct parser *p, char *out, size_t size) {
  const char *s = p->at + 1;
  size_t n = 0;
  for (; *s != '"'; s++) {
    if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
      s++;
    if (*s == '\0')
      return fail(p, "unterminated string %s (a string ends with '\"')", p->at);
    if (n + 1 < size)
      out[n] = *s;
    n++;
  }
  p->len = (size_t)(s + 1 - p->at);
  if (n >= size)
    return fail(p, "string %.*s is longer than %zu characters", (int)p->len,
                p->at, size - 1);
  out[n] = '\0';
  advance(p);
  return 0;
}

/* OP VALUE of a header check, after "header(NAME)": a number, or a
 * string compared only for (in)equality. */
static int parse_header_check(struct parser *p, struct fl_expect *e) {
  struct parser at_op = *p;
  int rc;
  if ((rc = parse_op(p, &e->op)) != 0)
    return rc;
  if (is_punct(p, '"')) {
    e->check = FL_HDR_STRING;
    if (e->op != FL_CMP_EQ && e->op != FL_CMP_NE)
      return fail(&at_op,
                  "bad comparison '%s' for a string (allowed: == or !=)",
                  fl_expect_op_text[e->op]);
    return parse_string(p, e->str, sizeof(e->str));
  }
  if (p->tok != T_WORD)
    return fail_expected(p, "a number or a \"string\"");
  if (fl_scan_number(p->at, p->len, &e->value) != p->len)
    return fail(p,
                "bad value '%.*s' (allowed: a number, or a string in double "
                "quotes)",
                (int)p->len, p->at);
  e->check = FL_HDR_NUMBER;
  advance(p);
  return 0;
}

static int parse_header(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_HEADER;
  if ((rc = expect_punct(p, '(')) != 0 ||
      (rc = parse_name(p, e->name, sizeof(e->name), "header name")) != 0 ||
      (rc = expect_punct(p, ')')) != 0)
    return rc;
  if (p->tok == T_OP && (rc = parse_header_check(p, e)) != 0)
    return rc;
  if (!is_word(p, "on"))
    return fail_expected(p, e->check == FL_HDR_PRESENT ? "'on' or a comparison"
                                                       : "'on'");
  advance(p);
  e->header = strcasecmp(e->name, "Retry-After") == 0 ? 0 : -1;
  if ((rc = parse_class(p, &e->cls, 1)) != 0 || !is_word(p, "if"))
    return rc;
  /* "if any": no response in CLASS passes (a fallback that never said
   * 503 has no 503 to hold to the header). */
  advance(p);
  e->if_any = 1;
  return expect_word(p, "any");
}

static int parse_recovers(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_RECOVERS;
  if ((rc = expect_punct(p, '(')) != 0)
    return rc;
  /* recovers(connect rate(101) >= 99%): a WebSocket endpoint's. */
  if (is_word(p, "connect")) {
    advance(p);
    e->kind = FL_EXP_WS_RECOVERS;
  }
  if ((rc = expect_word(p, "rate")) != 0 || (rc = parse_rate_tail(p, e)) != 0 ||
      (rc = expect_punct(p, ')')) != 0 || (rc = expect_word(p, "within")) != 0)
    return rc;
  return parse_duration(p, &e->within);
}

static int parse_fault(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_FAULT_HIT;
  if ((rc = expect_punct(p, '(')) != 0 ||
      (rc = parse_name(p, e->name, sizeof(e->name), "fault name")) != 0 ||
      (rc = expect_punct(p, ')')) != 0 || (rc = expect_word(p, "hit")) != 0)
    return rc;
  if (p->tok == T_END) {
    e->op = FL_CMP_GE;
    e->value = 1;
    return 0;
  }
  if (p->tok != T_OP)
    return fail_expected(p, "a comparison (<, <=, >, >=, ==, !=) or nothing");
  if ((rc = parse_op(p, &e->op)) != 0)
    return rc;
  return parse_count(p, &e->value);
}

static int parse_rate(struct parser *p, struct fl_expect *e) {
  e->kind = FL_EXP_RATE;
  return parse_rate_tail(p, e);
}

static int parse_p(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_PERCENTILE;
  if ((rc = expect_punct(p, '(')) != 0 ||
      (rc = parse_percentile(p, &e->percentile)) != 0 ||
      (rc = expect_punct(p, ')')) != 0 || (rc = parse_op(p, &e->op)) != 0)
    return rc;
  return parse_duration(p, &e->value);
}

static int parse_max(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_MAX;
  if ((rc = parse_op(p, &e->op)) != 0)
    return rc;
  return parse_duration(p, &e->value);
}

static int parse_within(struct parser *p, struct fl_expect *e) {
  e->kind = FL_EXP_WITHIN_TIMEOUT;
  return expect_word(p, "timeout");
}

static int parse_requests(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_REQUESTS;
  if ((rc = parse_op(p, &e->op)) != 0)
    return rc;
  return parse_count(p, &e->value);
}

static int parse_no(struct parser *p, struct fl_expect *e) {
  if (is_word(p, "restart"))
    e->kind = FL_EXP_NO_RESTART;
  else if (is_word(p, "crash"))
    e->kind = FL_EXP_NO_CRASH;
  else
    return fail_expected(p, "'restart' or 'crash'");
  advance(p);
  return 0;
}

static int parse_alive(struct parser *p, struct fl_expect *e) {
  (void)p;
  e->kind = FL_EXP_ALIVE;
  return 0;
}

static int parse_starts(struct parser *p, struct fl_expect *e) {
  (void)p;
  e->kind = FL_EXP_STARTS;
  return 0;
}

/* The counts of descriptors: each is `COUNT OP baseline [+ N]`. */
static int parse_fd_count(struct parser *p, struct fl_expect *e, int count) {
  e->kind = FL_EXP_FDS;
  e->count = count;
  return parse_baseline_tail(p, e, 0);
}

static int parse_fds(struct parser *p, struct fl_expect *e) {
  return parse_fd_count(p, e, FL_COUNT_FDS);
}

static int parse_inbound(struct parser *p, struct fl_expect *e) {
  return parse_fd_count(p, e, FL_COUNT_INBOUND);
}

static int parse_files(struct parser *p, struct fl_expect *e) {
  return parse_fd_count(p, e, FL_COUNT_FILES);
}

static int parse_conns(struct parser *p, struct fl_expect *e) {
  int rc;
  if ((rc = expect_punct(p, '(')) != 0 ||
      (rc = parse_name(p, e->name, sizeof(e->name), "dependency name")) != 0 ||
      (rc = expect_punct(p, ')')) != 0)
    return rc;
  return parse_fd_count(p, e, FL_COUNT_CONNS);
}

static int parse_rss(struct parser *p, struct fl_expect *e) {
  e->kind = FL_EXP_RSS;
  e->count = FL_COUNT_RSS;
  return parse_baseline_tail(p, e, 1);
}

/* connect rate(CLASS) OP N%: handshakes of a WebSocket endpoint. */
static int parse_connect(struct parser *p, struct fl_expect *e) {
  int rc;
  if ((rc = expect_word(p, "rate")) != 0 || (rc = parse_rate_tail(p, e)) != 0)
    return rc;
  e->kind = FL_EXP_WS_CONNECT;
  return 0;
}

/* rtt p(N) OP DURATION: a WebSocket endpoint's round trips. */
static int parse_rtt(struct parser *p, struct fl_expect *e) {
  int rc;
  if ((rc = expect_word(p, "p")) != 0 || (rc = parse_p(p, e)) != 0)
    return rc;
  e->kind = FL_EXP_WS_RTT;
  return 0;
}

/* closes(CODE|any) OP N: a WebSocket endpoint's unexpected closes. */
static int parse_closes(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_WS_CLOSES;
  if ((rc = expect_punct(p, '(')) != 0)
    return rc;
  double code = 0;
  if (is_word(p, "any")) {
    e->cls.lo = e->cls.hi = 0;
  } else if (p->tok == T_WORD &&
             fl_scan_number(p->at, p->len, &code) == p->len && code >= 1000 &&
             code <= 4999 && code == (int)code) {
    e->cls.lo = e->cls.hi = (int)code;
  } else if (p->tok == T_WORD) {
    return fail(p,
                "bad close code '%.*s' (allowed: a code 1000-4999, e.g. "
                "1011, or any)",
                (int)p->len, p->at);
  } else {
    return fail_expected(p, "a close code (1000-4999) or any");
  }
  snprintf(e->cls.text, sizeof(e->cls.text), "%.*s", (int)p->len, p->at);
  advance(p);
  if ((rc = expect_punct(p, ')')) != 0 || (rc = parse_op(p, &e->op)) != 0)
    return rc;
  return parse_count(p, &e->value);
}

/* messages OP N per connection: what each WebSocket connection read. */
static int parse_messages(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_WS_MESSAGES;
  if ((rc = parse_op(p, &e->op)) != 0 ||
      (rc = parse_count(p, &e->value)) != 0 ||
      (rc = expect_word(p, "per")) != 0)
    return rc;
  return expect_word(p, "connection");
}

/* What settles(...) may hold. */
static const struct {
  const char *word;
  int (*parse)(struct parser *p, struct fl_expect *e);
} counts[] = {
    {"fds", parse_fds},     {"conns", parse_conns}, {"inbound", parse_inbound},
    {"files", parse_files}, {"rss", parse_rss},
};

static int parse_settles(struct parser *p, struct fl_expect *e) {
  int rc;
  if ((rc = expect_punct(p, '(')) != 0)
    return rc;
  size_t i = 0;
  while (i < COUNT(counts) && !is_word(p, counts[i].word))
    i++;
  if (i == COUNT(counts))
    return fail_expected(p, COUNTS_ALLOWED);
  advance(p);
  p->nested = 1;
  rc = counts[i].parse(p, e);
  p->nested = 0;
  if (rc != 0 || (rc = expect_punct(p, ')')) != 0 ||
      (rc = expect_word(p, "within")) != 0)
    return rc;
  e->kind = FL_EXP_SETTLES;
  return parse_duration(p, &e->within);
}

/* The first word of an expectation, and what parses the rest. */
static const struct {
  const char *word;
  int (*parse)(struct parser *p, struct fl_expect *e);
} kinds[] = {
    {"rate", parse_rate},
    {"header", parse_header},
    {"p", parse_p},
    {"max", parse_max},
    {"within", parse_within},
    {"requests", parse_requests},
    {"recovers", parse_recovers},
    {"no", parse_no},
    {"alive", parse_alive},
    {"starts", parse_starts},
    {"fds", parse_fds},
    {"conns", parse_conns},
    {"inbound", parse_inbound},
    {"files", parse_files},
    {"rss", parse_rss},
    {"settles", parse_settles},
    {"fault", parse_fault},
    {"connect", parse_connect},
    {"rtt", parse_rtt},
    {"closes", parse_closes},
    {"messages", parse_messages},
};

static int parse_body(struct parser *p, struct fl_expect *e) {
  if (p->tok == T_END) {
    p->at = p->text;
    return fail(p, "empty expectation (allowed: " KINDS_ALLOWED ")");
  }
  for (size_t i = 0; i < COUNT(kinds); i++)
    if (is_word(p, kinds[i].word)) {
      advance(p);
      return kinds[i].parse(p, e);
    }
  return fail(p, "unknown expectation '%.*s' (allowed: " KINDS_ALLOWED ")",
              (int)p->len, p->at);
}

int fl_expect_parse(const char *text, struct fl_expect *out, int *errcol,
                    char *err, size_t errlen) {
  memset(out, 0, sizeof(*out));
  out->cls.xfer = -1;
  out->header = -1;
  if (errcol != NULL)
    *errcol = 0;
  if (err != NULL && errlen > 0)
    err[0] = '\0';
  struct parser p = {.text = text,
                     .at = text,
                     .len = 0,
                     .err = err,
                     .errlen = errlen,
                     .errcol = errcol};
  size_t n = strlen(text);
  if (n >= sizeof(out->text)) {
    p.at = text + sizeof(out->text) - 1;
    return fail(&p, "expectation is longer than %zu characters",
                sizeof(out->text) - 1);
  }
  /* Kept as written, without the spaces around it. */
  const char *s = text;
  while (isspace((unsigned char)*s))
    s++;
  size_t len = strlen(s);
  while (len > 0 && isspace((unsigned char)s[len - 1]))
    len--;
  memcpy(out->text, s, len);
  out->text[len] = '\0';

  advance(&p);
  int rc = parse_body(&p, out);
  if (rc == 0 && p.tok != T_END)
    rc = fail_expected(&p, "nothing");
  return rc;
}
