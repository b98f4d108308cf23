/*
 * Expectations: a hand-written recursive-descent parser over the grammar
 * in expect.h, and the evaluation of each kind over a window of recorded
 * requests or over facts about the target. Every observed string says
 * enough to act on: counts, the first offending time, the value seen.
 */
#define _GNU_SOURCE
#include "expect.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "errors.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const op_text[] = {
    [FL_CMP_LT] = "<",  [FL_CMP_LE] = "<=", [FL_CMP_GT] = ">",
    [FL_CMP_GE] = ">=", [FL_CMP_EQ] = "==", [FL_CMP_NE] = "!="};

#define KINDS_ALLOWED                                                          \
  "rate, header, p, max, within, requests, recovers, no restart, no crash, "   \
  "alive, fds, rss, fault"
#define OPS_ALLOWED "a comparison (<, <=, >, >=, ==, !=)"

struct name_code {
  const char *name;
  int code;
};

static const struct name_code xfer_classes[] = {
    {"error", 0},
    {"refused", FL_XFER_REFUSED},
    {"reset", FL_XFER_RESET},
    {"timeout", FL_XFER_TIMEOUT},
    {"dns", FL_XFER_DNS},
    {"other", FL_XFER_OTHER},
};

/* A value is number * mul / div: dividing keeps 990ms exactly the double
 * nearest 0.99, as a recorded latency of 0.99 s is. */
struct unit {
  const char *name;
  double mul, div;
};
static const struct unit duration_units[] = {
    {"ms", 1, 1000}, {"s", 1, 1}, {"m", 60, 1}};
static const struct unit size_units[] = {
    {"B", 1, 1},           {"kB", 1024, 1},       {"KB", 1024, 1},
    {"KiB", 1024, 1},      {"MB", 1048576, 1},    {"MiB", 1048576, 1},
    {"GB", 1073741824, 1}, {"GiB", 1073741824, 1}};

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

/* A decimal number at the start of s: digits, optionally '.' and digits.
 * Returns how many characters it took, 0 if there is none. */
static size_t scan_number(const char *s, size_t len, double *v) {
  size_t i = 0;
  while (i < len && isdigit((unsigned char)s[i]))
    i++;
  if (i == 0)
    return 0;
  if (i < len && s[i] == '.') {
    size_t j = i + 1;
    while (j < len && isdigit((unsigned char)s[j]))
      j++;
    if (j == i + 1)
      return 0;
    i = j;
  }
  char buf[64];
  if (i >= sizeof(buf))
    return 0;
  memcpy(buf, s, i);
  buf[i] = '\0';
  *v = strtod(buf, NULL);
  return i;
}

/* A bare number followed, after spaces, by what looks like its unit
 * ("95 %", "3 s"): the length of both for the message, else 0. */
static size_t spaced_unit(const struct parser *p) {
  struct parser q = *p;
  advance(&q);
  if (q.tok != T_WORD || !(isalpha((unsigned char)q.at[0]) || q.at[0] == '%'))
    return 0;
  if (p->at + p->len == q.at)
    return 0;
  return (size_t)(q.at + q.len - p->at);
}

static int suffix_is(const struct parser *p, size_t n, const char *unit) {
  return p->len - n == strlen(unit) && memcmp(p->at + n, unit, p->len - n) == 0;
}

static int parse_op(struct parser *p, int *op) {
  if (p->tok == T_OP)
    for (size_t i = 0; i < COUNT(op_text); i++)
      if (p->len == strlen(op_text[i]) &&
          memcmp(p->at, op_text[i], p->len) == 0) {
        *op = (int)i;
        advance(p);
        return 0;
      }
  return fail_expected(p, OPS_ALLOWED);
}

static int parse_percent(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a percentage");
  double v = 0;
  size_t n = scan_number(p->at, p->len, &v);
  if (n > 0 && n == p->len && spaced_unit(p) > 0)
    return fail(p,
                "bad percentage '%.*s' (allowed: 0-100%% with no space before "
                "the %%)",
                (int)spaced_unit(p), p->at);
  if (n > 0 && n == p->len)
    return fail(p,
                "bad percentage '%.*s' (allowed: 0-100%% with the %% sign, "
                "e.g. 95%%)",
                (int)p->len, p->at);
  if (n == 0 || !suffix_is(p, n, "%") || v > 100)
    return fail(p, "bad percentage '%.*s' (allowed: 0-100%%)", (int)p->len,
                p->at);
  *out = v;
  advance(p);
  return 0;
}

static int parse_duration(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a duration");
  double v = 0;
  size_t n = scan_number(p->at, p->len, &v);
  for (size_t i = 0; n > 0 && i < COUNT(duration_units); i++)
    if (suffix_is(p, n, duration_units[i].name)) {
      *out = v * duration_units[i].mul / duration_units[i].div;
      advance(p);
      return 0;
    }
  if (n > 0 && n == p->len && spaced_unit(p) > 0)
    return fail(p,
                "bad duration '%.*s' (allowed: a number with ms, s or m and no "
                "space, e.g. 250ms, 2s)",
                (int)spaced_unit(p), p->at);
  return fail(p,
              "bad duration '%.*s' (allowed: a number with ms, s or m, e.g. "
              "250ms, 2s)",
              (int)p->len, p->at);
}

static int parse_size(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a size");
  double v = 0;
  size_t n = scan_number(p->at, p->len, &v);
  for (size_t i = 0; n > 0 && i < COUNT(size_units); i++)
    if (suffix_is(p, n, size_units[i].name)) {
      *out = v * size_units[i].mul / size_units[i].div;
      advance(p);
      return 0;
    }
  if (n > 0 && n == p->len && spaced_unit(p) > 0)
    return fail(
        p,
        "bad size '%.*s' (allowed: a number with B, kB, MB or GB and no "
        "space, e.g. 512kB, 50MB)",
        (int)spaced_unit(p), p->at);
  return fail(p,
              "bad size '%.*s' (allowed: a number with B, kB, MB or GB, e.g. "
              "512kB, 50MB)",
              (int)p->len, p->at);
}

static int parse_count(struct parser *p, double *out) {
  if (p->tok != T_WORD)
    return fail_expected(p, "a count");
  double v = 0;
  size_t n = scan_number(p->at, p->len, &v);
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
  size_t n = scan_number(p->at, p->len, &v);
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
    for (size_t i = 0; i < COUNT(xfer_classes); i++)
      if (n == strlen(xfer_classes[i].name) &&
          memcmp(s, xfer_classes[i].name, n) == 0) {
        c->xfer = xfer_classes[i].code;
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

/* NAME inside header(...) or fault(...). */
static int parse_name(struct parser *p, char *out, size_t size,
                      int for_header) {
  const char *what = for_header ? "header name" : "fault name";
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
  if (p->tok == T_END)
    return 0;
  if (!is_punct(p, '+'))
    return fail_expected(p, size ? "'+ SIZE' or nothing" : "'+ N' or nothing");
  advance(p);
  return size ? parse_size(p, &e->value) : parse_count(p, &e->value);
}

static int parse_header(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_HEADER;
  if ((rc = expect_punct(p, '(')) != 0 ||
      (rc = parse_name(p, e->name, sizeof(e->name), 1)) != 0 ||
      (rc = expect_punct(p, ')')) != 0 || (rc = expect_word(p, "on")) != 0)
    return rc;
  e->header = strcasecmp(e->name, "Retry-After") == 0 ? 0 : -1;
  return parse_class(p, &e->cls, 1);
}

static int parse_recovers(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_RECOVERS;
  if ((rc = expect_punct(p, '(')) != 0 || (rc = expect_word(p, "rate")) != 0 ||
      (rc = parse_rate_tail(p, e)) != 0 || (rc = expect_punct(p, ')')) != 0 ||
      (rc = expect_word(p, "within")) != 0)
    return rc;
  return parse_duration(p, &e->within);
}

static int parse_fault(struct parser *p, struct fl_expect *e) {
  int rc;
  e->kind = FL_EXP_FAULT_HIT;
  if ((rc = expect_punct(p, '(')) != 0 ||
      (rc = parse_name(p, e->name, sizeof(e->name), 0)) != 0 ||
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

static int parse_body(struct parser *p, struct fl_expect *e) {
  int rc;
  if (p->tok == T_END) {
    p->at = p->text;
    return fail(p, "empty expectation (allowed: " KINDS_ALLOWED ")");
  }
  if (is_word(p, "rate")) {
    e->kind = FL_EXP_RATE;
    advance(p);
    return parse_rate_tail(p, e);
  }
  if (is_word(p, "header")) {
    advance(p);
    return parse_header(p, e);
  }
  if (is_word(p, "p")) {
    e->kind = FL_EXP_PERCENTILE;
    advance(p);
    if ((rc = expect_punct(p, '(')) != 0 ||
        (rc = parse_percentile(p, &e->percentile)) != 0 ||
        (rc = expect_punct(p, ')')) != 0 || (rc = parse_op(p, &e->op)) != 0)
      return rc;
    return parse_duration(p, &e->value);
  }
  if (is_word(p, "max")) {
    e->kind = FL_EXP_MAX;
    advance(p);
    if ((rc = parse_op(p, &e->op)) != 0)
      return rc;
    return parse_duration(p, &e->value);
  }
  if (is_word(p, "within")) {
    e->kind = FL_EXP_WITHIN_TIMEOUT;
    advance(p);
    return expect_word(p, "timeout");
  }
  if (is_word(p, "requests")) {
    e->kind = FL_EXP_REQUESTS;
    advance(p);
    if ((rc = parse_op(p, &e->op)) != 0)
      return rc;
    return parse_count(p, &e->value);
  }
  if (is_word(p, "recovers")) {
    advance(p);
    return parse_recovers(p, e);
  }
  if (is_word(p, "no")) {
    advance(p);
    if (is_word(p, "restart"))
      e->kind = FL_EXP_NO_RESTART;
    else if (is_word(p, "crash"))
      e->kind = FL_EXP_NO_CRASH;
    else
      return fail_expected(p, "'restart' or 'crash'");
    advance(p);
    return 0;
  }
  if (is_word(p, "alive")) {
    e->kind = FL_EXP_ALIVE;
    advance(p);
    return 0;
  }
  if (is_word(p, "fds") || is_word(p, "rss")) {
    int rss = p->at[0] == 'r';
    e->kind = rss ? FL_EXP_RSS : FL_EXP_FDS;
    advance(p);
    return parse_baseline_tail(p, e, rss);
  }
  if (is_word(p, "fault")) {
    advance(p);
    return parse_fault(p, e);
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

int fl_expect_is_endpoint(const struct fl_expect *e) {
  return e->kind >= FL_EXP_RATE && e->kind < FL_EXP_NO_RESTART;
}

/* ---- HTTP-date (RFC 9110 5.6.7) --------------------------------------- */

static const char *const day_short[7] = {"Mon", "Tue", "Wed", "Thu",
                                         "Fri", "Sat", "Sun"};
static const char *const day_long[7] = {"Monday",   "Tuesday", "Wednesday",
                                        "Thursday", "Friday",  "Saturday",
                                        "Sunday"};
static const char *const months[12] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};

/* Exactly n digits at *s; advances past them. */
static int digits(const char **s, int n, int *v) {
  *v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*s)[i]))
      return -1;
    *v = *v * 10 + ((*s)[i] - '0');
  }
  *s += n;
  return 0;
}

static int lit(const char **s, const char *w) {
  size_t n = strlen(w);
  if (strncmp(*s, w, n) != 0)
    return -1;
  *s += n;
  return 0;
}

static int month_name(const char **s, int *m) {
  for (int i = 0; i < 12; i++)
    if (lit(s, months[i]) == 0) {
      *m = i + 1;
      return 0;
    }
  return -1;
}

/* "HH:MM:SS" with a leap second allowed, as the RFC does. */
static int time_of_day(const char **s, int *h, int *mi, int *sec) {
  if (digits(s, 2, h) || lit(s, ":") || digits(s, 2, mi) || lit(s, ":") ||
      digits(s, 2, sec))
    return -1;
  return *h < 24 && *mi < 60 && *sec <= 60 ? 0 : -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static long long days_from_civil(long long y, int m, int d) {
  y -= m <= 2;
  long long era = (y >= 0 ? y : y - 399) / 400;
  long long yoe = y - era * 400;
  long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : n[m - 1];
}

/* RFC 850's two-digit year: the most recent year with those digits that
 * is not more than 50 years in the future. */
static int full_year(int yy) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  int cur = tm.tm_year + 1900;
  int y = cur / 100 * 100 + yy;
  return y > cur + 50 ? y - 100 : y;
}

int fl_http_date_parse(const char *s, long long *out) {
  int wd = -1, y = 0, m = 1, d = 0, h = 0, mi = 0, sec = 0, rc;
  size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");
  for (int i = 0; i < 7; i++)
    if ((n == 3 && strncmp(s, day_short[i], 3) == 0) ||
        (n == strlen(day_long[i]) && strncmp(s, day_long[i], n) == 0))
      wd = i;
  if (wd < 0)
    return -EINVAL;
  const char *p = s + n;
  if (n == 3 && p[0] == ',') { /* Sun, 06 Nov 1994 08:49:37 GMT */
    rc = lit(&p, ", ") || digits(&p, 2, &d) || lit(&p, " ") ||
         month_name(&p, &m) || lit(&p, " ") || digits(&p, 4, &y) ||
         lit(&p, " ") || time_of_day(&p, &h, &mi, &sec) || lit(&p, " GMT");
  } else if (n > 3) { /* Sunday, 06-Nov-94 08:49:37 GMT */
    rc = lit(&p, ", ") || digits(&p, 2, &d) || lit(&p, "-") ||
         month_name(&p, &m) || lit(&p, "-") || digits(&p, 2, &y) ||
         lit(&p, " ") || time_of_day(&p, &h, &mi, &sec) || lit(&p, " GMT");
    if (rc == 0)
      y = full_year(y);
  } else { /* Sun Nov  6 08:49:37 1994 */
    rc = lit(&p, " ") || month_name(&p, &m) || lit(&p, " ");
    if (rc == 0 && p[0] == ' ') {
      p++;
      rc = digits(&p, 1, &d);
    } else if (rc == 0) {
      rc = digits(&p, 2, &d);
    }
    rc = rc || lit(&p, " ") || time_of_day(&p, &h, &mi, &sec) || lit(&p, " ") ||
         digits(&p, 4, &y);
  }
  if (rc != 0 || *p != '\0' || d < 1 || d > days_in_month(y, m))
    return -EINVAL;
  long long days = days_from_civil(y, m, d);
  /* 1970-01-01 was a Thursday: index 3 from Monday. */
  if (((days % 7 + 7 + 3) % 7) != wd)
    return -EINVAL;
  *out = days * 86400 + h * 3600 + mi * 60 + sec;
  return 0;
}

/* ---- Evaluation helpers ---------------------------------------------- */

__attribute__((format(printf, 3, 4))) static void put(char *buf, size_t len,
                                                      const char *fmt, ...) {
  if (buf == NULL || len == 0)
    return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

static int cmp(double a, int op, double b) {
  switch (op) {
  case FL_CMP_LT:
    return a < b;
  case FL_CMP_LE:
    return a <= b;
  case FL_CMP_GT:
    return a > b;
  case FL_CMP_GE:
    return a >= b;
  case FL_CMP_EQ:
    return a == b;
  case FL_CMP_NE:
    return a != b;
  }
  return 0;
}

static const char *op_str(int op) {
  return op >= 0 && op < (int)COUNT(op_text) ? op_text[op] : "?";
}

/* v with the fewest decimals (at least min) that keep its comparison with
 * the limit as it really is: an observed "95.0%" never fails ">= 95%". */
static void fmt_fixed(char *buf, size_t len, double v, int min, int op,
                      double limit) {
  int want = cmp(v, op, limit);
  for (int d = min; d <= 6; d++) {
    snprintf(buf, len, "%.*f", d, v);
    if (cmp(strtod(buf, NULL), op, limit) == want)
      return;
  }
}

/* An observed latency: "812ms", "2.31s" (see fmt_fixed for op, limit). */
static void fmt_latency(char *buf, size_t len, double s, int op, double limit) {
  char num[40];
  if (s < 1) {
    fmt_fixed(num, sizeof(num), s * 1000, s < 0.01 ? 1 : 0, op, limit * 1000);
    snprintf(buf, len, "%sms", num);
  } else {
    fmt_fixed(num, sizeof(num), s, 2, op, limit);
    snprintf(buf, len, "%ss", num);
  }
}

/* A duration as one would write it: "250ms", "3s", "1.5s". */
static void fmt_duration(char *buf, size_t len, double s) {
  if (s > 0 && s < 1)
    snprintf(buf, len, "%gms", s * 1000);
  else
    snprintf(buf, len, "%gs", s);
}

/* Bytes in powers of 1024, named as /proc does: "50MB", "+62.1MB". */
static void fmt_size(char *buf, size_t len, double bytes, int sign) {
  static const char *const units[] = {"B", "kB", "MB", "GB", "TB"};
  double a = fabs(bytes);
  size_t u = 0;
  while (u + 1 < COUNT(units) && a >= 1024) {
    a /= 1024;
    u++;
  }
  const char *s = bytes < 0 ? "-" : sign ? "+" : "";
  if (a == floor(a))
    snprintf(buf, len, "%s%.0f%s", s, a, units[u]);
  else
    snprintf(buf, len, "%s%.1f%s", s, a, units[u]);
}

static const char *plural(size_t n, const char *one, const char *many) {
  return n == 1 ? one : many;
}

/* A header value fit to print: at most 40 bytes, control bytes as '?'. */
static void fmt_value(char *buf, size_t len, const char *v) {
  size_t i = 0;
  for (; v[i] != '\0' && i < 40 && i + 1 < len; i++)
    buf[i] = iscntrl((unsigned char)v[i]) ? '?' : v[i];
  buf[i] = '\0';
}

static int class_match(const struct fl_status_class *c,
                       const struct fl_request *r) {
  if (c->xfer >= 0)
    return c->xfer == 0 ? r->error != FL_XFER_OK : r->error == c->xfer;
  return r->error == FL_XFER_OK && r->status >= c->lo && r->status <= c->hi;
}

/* The first record scheduled at or after t. */
static size_t lower_bound(const struct fl_request *r, size_t n, double t) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (r[mid].sched < t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* Output buffers of one evaluation. */
struct out {
  char *exp;
  size_t elen;
  char *obs;
  size_t olen;
};

/* ---- Endpoint expectations ------------------------------------------ */

static int eval_rate(const struct fl_expect *e, const struct fl_request *w,
                     size_t n, struct out *o) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += class_match(&e->cls, &w[i]);
  double pct = 100.0 * (double)k / (double)n;
  char num[48];
  fmt_fixed(num, sizeof(num), pct, 1, e->op, e->value);
  put(o->exp, o->elen, "%s %g%%", op_str(e->op), e->value);
  put(o->obs, o->olen, "%s%% (%zu of %zu)", num, k, n);
  return cmp(pct, e->op, e->value);
}

/* Retry-After: delta-seconds (digits) or an HTTP-date; any other header:
 * not empty. Surrounding spaces are allowed (OWS). */
static int header_valid(const struct fl_expect *e, const char *v) {
  while (*v == ' ' || *v == '\t')
    v++;
  size_t n = strlen(v);
  while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  if (n == 0)
    return 0;
  if (strcasecmp(e->name, "Retry-After") != 0)
    return 1;
  size_t d = 0;
  while (d < n && isdigit((unsigned char)v[d]))
    d++;
  if (d == n)
    return 1;
  char buf[64];
  long long t;
  if (n >= sizeof(buf))
    return 0;
  memcpy(buf, v, n);
  buf[n] = '\0';
  return fl_http_date_parse(buf, &t) == 0;
}

static int eval_header(const struct fl_expect *e, const struct fl_request *w,
                       size_t n, struct out *o) {
  int retry = strcasecmp(e->name, "Retry-After") == 0;
  put(o->exp, o->elen, "%s on every %s response (%s)", e->name, e->cls.text,
      retry ? "delta-seconds or HTTP-date" : "not empty");
  if (e->header < 0 || e->header >= (int)COUNT(w->headers)) {
    put(o->obs, o->olen, "header %s was not recorded", e->name);
    return 0;
  }
  size_t total = 0, missing = 0, invalid = 0;
  const struct fl_request *first = NULL;
  for (size_t i = 0; i < n; i++) {
    if (w[i].error != FL_XFER_OK || !class_match(&e->cls, &w[i]))
      continue;
    total++;
    const char *v = w[i].headers[e->header];
    int bad = v == NULL || !header_valid(e, v);
    missing += v == NULL;
    invalid += v != NULL && bad;
    if (bad && first == NULL)
      first = &w[i];
  }
  if (total == 0) {
    put(o->obs, o->olen, "no %s responses", e->cls.text);
    return 0;
  }
  if (first == NULL) {
    put(o->obs, o->olen, "valid on %zu of %zu", total, total);
    return 1;
  }
  char what[96], val[64] = "";
  if (missing > 0 && invalid > 0)
    snprintf(what, sizeof(what), "missing on %zu and invalid on %zu", missing,
             invalid);
  else if (missing > 0)
    snprintf(what, sizeof(what), "missing on %zu", missing);
  else
    snprintf(what, sizeof(what), "invalid on %zu", invalid);
  const char *fv = first->headers[e->header];
  if (fv != NULL) {
    char clean[48];
    fmt_value(clean, sizeof(clean), fv);
    snprintf(val, sizeof(val), ": '%s'", clean);
  } else if (invalid > 0) {
    snprintf(val, sizeof(val), ": missing");
  }
  put(o->obs, o->olen, "%s of %zu (first at t=%.2fs%s)", what, total,
      first->sched, val);
  return 0;
}

static int by_value(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int eval_percentile(const struct fl_expect *e,
                           const struct fl_request *w, size_t n,
                           struct out *o) {
  char lim[32], got[48];
  fmt_duration(lim, sizeof(lim), e->value);
  put(o->exp, o->elen, "%s %s", op_str(e->op), lim);
  double *lat = malloc(n * sizeof(*lat));
  if (lat == NULL) {
    put(o->obs, o->olen, "out of memory");
    return 0;
  }
  for (size_t i = 0; i < n; i++)
    lat[i] = w[i].latency;
  qsort(lat, n, sizeof(*lat), by_value);
  /* Nearest rank: the smallest value with at least N% of the samples at
   * or below it. The epsilon keeps 99 * 100 / 100 from becoming 100. */
  double rank = ceil(e->percentile * (double)n / 100 - 1e-9);
  size_t r = rank < 1 ? 1 : rank > (double)n ? n : (size_t)rank;
  double v = lat[r - 1];
  free(lat);
  fmt_latency(got, sizeof(got), v, e->op, e->value);
  put(o->obs, o->olen, "p(%g) = %s (%zu %s)", e->percentile, got, n,
      plural(n, "request", "requests"));
  return cmp(v, e->op, e->value);
}

static int eval_max(const struct fl_expect *e, const struct fl_request *w,
                    size_t n, struct out *o) {
  char lim[32], got[48];
  fmt_duration(lim, sizeof(lim), e->value);
  put(o->exp, o->elen, "%s %s", op_str(e->op), lim);
  size_t worst = 0;
  for (size_t i = 1; i < n; i++)
    if (w[i].latency > w[worst].latency)
      worst = i;
  fmt_latency(got, sizeof(got), w[worst].latency, e->op, e->value);
  put(o->obs, o->olen, "max = %s at t=%.2fs (%zu %s)", got, w[worst].sched, n,
      plural(n, "request", "requests"));
  return cmp(w[worst].latency, e->op, e->value);
}

static int eval_within(const struct fl_request *w, size_t n, double timeout,
                       struct out *o) {
  if (!(timeout > 0)) {
    put(o->exp, o->elen, "every request within the endpoint's timeout");
    put(o->obs, o->olen, "the endpoint has no timeout");
    return 0;
  }
  double limit = timeout + 0.5;
  char lim[32], to[32], got[48];
  fmt_duration(lim, sizeof(lim), limit);
  fmt_duration(to, sizeof(to), timeout);
  put(o->exp, o->elen, "every latency <= %s (timeout %s + 0.5s)", lim, to);
  size_t over = 0, worst = 0;
  const struct fl_request *first = NULL;
  for (size_t i = 0; i < n; i++) {
    if (w[i].latency > w[worst].latency)
      worst = i;
    if (w[i].latency > limit) {
      over++;
      if (first == NULL)
        first = &w[i];
    }
  }
  if (first == NULL) {
    fmt_latency(got, sizeof(got), w[worst].latency, FL_CMP_LE, limit);
    put(o->obs, o->olen, "all %zu within %s (slowest %s)", n, lim, got);
    return 1;
  }
  fmt_latency(got, sizeof(got), first->latency, FL_CMP_LE, limit);
  put(o->obs, o->olen, "%zu of %zu over %s (first at t=%.2fs: %s)", over, n,
      lim, first->sched, got);
  return 0;
}

static int eval_requests(const struct fl_expect *e, size_t n, struct out *o) {
  put(o->exp, o->elen, "%s %g", op_str(e->op), e->value);
  put(o->obs, o->olen, "%zu", n);
  return cmp((double)n, e->op, e->value);
}

/* Per-second buckets from the window's start. Recovery is at the start of
 * the bucket after the last one that fails the rate condition; a final
 * bucket cut short by the window's end with fewer than 3 requests says
 * too little and is left out, and empty seconds neither hold nor fail. */
#define RECOVER_MIN_LAST 3

static int eval_recovers(const struct fl_expect *e, const struct fl_request *w,
                         size_t n, double from, double to, struct out *o) {
  char lim[32];
  fmt_duration(lim, sizeof(lim), e->within);
  put(o->exp, o->elen,
      "rate(%s) %s %g%% in every second from at most %s after t=%.2fs",
      e->cls.text, op_str(e->op), e->value, lim, from);
  size_t nb = (size_t)ceil(to - from - 1e-9);
  if (nb == 0)
    nb = 1;
  size_t *tot = calloc(2 * nb, sizeof(*tot));
  if (tot == NULL) {
    put(o->obs, o->olen, "out of memory");
    return 0;
  }
  size_t *hit = tot + nb;
  for (size_t i = 0; i < n; i++) {
    double off = floor(w[i].sched - from);
    size_t b = off < 0 ? 0 : off >= (double)nb ? nb - 1 : (size_t)off;
    tot[b]++;
    hit[b] += class_match(&e->cls, &w[i]);
  }
  size_t used = nb;
  if (from + (double)nb > to + 1e-9 && tot[nb - 1] < RECOVER_MIN_LAST)
    used = nb - 1;
  size_t k = 0, seen_after = 0;
  int failed = 0;
  for (size_t b = 0; b < used; b++) {
    if (tot[b] == 0)
      continue;
    if (!cmp(100.0 * (double)hit[b] / (double)tot[b], e->op, e->value)) {
      k = b + 1;
      failed = 1;
      seen_after = 0;
    } else {
      seen_after++;
    }
  }
  char last[96] = "", num[48];
  if (failed) {
    size_t f = k - 1;
    double pct = 100.0 * (double)hit[f] / (double)tot[f];
    fmt_fixed(num, sizeof(num), pct, 1, e->op, e->value);
    snprintf(last, sizeof(last),
             "last failing second at t=%.2fs: %s%%, %zu of %zu",
             from + (double)f, num, hit[f], tot[f]);
  }
  free(tot);
  if (seen_after == 0 && !failed) {
    put(o->obs, o->olen, "no full second of requests");
    return 0;
  }
  if (seen_after == 0) {
    put(o->obs, o->olen, "not recovered by the end (%s)", last);
    return 0;
  }
  put(o->obs, o->olen, "recovered after %.1fs (%s)", (double)k,
      failed ? last : "every second held");
  return (double)k <= e->within + 1e-9;
}

static int eval_window(const struct fl_expect *e, const struct fl_request *w,
                       size_t n, double from, double to, double timeout,
                       struct out *o) {
  switch ((enum fl_expect_kind)e->kind) {
  case FL_EXP_RATE:
    return eval_rate(e, w, n, o);
  case FL_EXP_HEADER:
    return eval_header(e, w, n, o);
  case FL_EXP_PERCENTILE:
    return eval_percentile(e, w, n, o);
  case FL_EXP_MAX:
    return eval_max(e, w, n, o);
  case FL_EXP_WITHIN_TIMEOUT:
    return eval_within(w, n, timeout, o);
  case FL_EXP_RECOVERS:
    return eval_recovers(e, w, n, from, to, o);
  default:
    return 0;
  }
}

int fl_expect_eval_endpoint(const struct fl_expect *e,
                            const struct fl_request *reqs, size_t n,
                            double from, double to, double timeout,
                            char *expected, size_t elen, char *observed,
                            size_t olen) {
  struct out o = {expected, elen, observed, olen};
  put(expected, elen, "%s", e->text);
  put(observed, olen, "%s", "");
  if (!fl_expect_is_endpoint(e)) {
    put(observed, olen, "not an endpoint expectation");
    return 0;
  }
  size_t lo = lower_bound(reqs, n, from), hi = lower_bound(reqs, n, to);
  size_t m = hi > lo ? hi - lo : 0;
  const struct fl_request *w = m > 0 ? reqs + lo : reqs;
  if (e->kind == FL_EXP_REQUESTS)
    return eval_requests(e, m, &o);
  /* A request still in flight has no outcome yet: it is left out of
   * everything but the count of requests sent. */
  size_t done = 0;
  for (size_t i = 0; i < m; i++)
    done += !(w[i].latency < 0);
  struct fl_request *copy = NULL;
  if (done > 0 && done < m) {
    if ((copy = malloc(done * sizeof(*copy))) == NULL) {
      put(observed, olen, "out of memory");
      return 0;
    }
    for (size_t i = 0, j = 0; i < m; i++)
      if (!(w[i].latency < 0))
        copy[j++] = w[i];
    w = copy;
  }
  if (done == 0) {
    put(observed, olen, m > 0 ? "no completed requests" : "no requests");
    return 0;
  }
  int pass = eval_window(e, w, done, from, to, timeout, &o);
  free(copy);
  return pass;
}

/* ---- Target expectations --------------------------------------------- */

static int eval_fds(const struct fl_expect *e, const struct fl_target_facts *f,
                    struct out *o) {
  double limit = f->fds_baseline + e->value;
  if (f->fds_baseline < 0 || f->fds_max < 0) {
    put(o->exp, o->elen, "%s baseline + %g", op_str(e->op), e->value);
    put(o->obs, o->olen, "no fd samples");
    return 0;
  }
  put(o->exp, o->elen, "%s baseline + %g (%.1f)", op_str(e->op), e->value,
      limit);
  put(o->obs, o->olen, "max %.0f (baseline %.1f, %+.1f)", f->fds_max,
      f->fds_baseline, f->fds_max - f->fds_baseline);
  return cmp(f->fds_max, e->op, limit);
}

static int eval_rss(const struct fl_expect *e, const struct fl_target_facts *f,
                    struct out *o) {
  char add[32], lim[32], max[32], base[32], grew[32];
  fmt_size(add, sizeof(add), e->value, 0);
  if (f->rss_baseline_kb < 0 || f->rss_max_kb < 0) {
    put(o->exp, o->elen, "%s baseline + %s", op_str(e->op), add);
    put(o->obs, o->olen, "no memory samples");
    return 0;
  }
  double b = f->rss_baseline_kb * 1024, m = f->rss_max_kb * 1024;
  fmt_size(lim, sizeof(lim), b + e->value, 0);
  fmt_size(max, sizeof(max), m, 0);
  fmt_size(base, sizeof(base), b, 0);
  fmt_size(grew, sizeof(grew), m - b, 1);
  put(o->exp, o->elen, "%s baseline + %s (%s)", op_str(e->op), add, lim);
  put(o->obs, o->olen, "max %s (baseline %s, %s)", max, base, grew);
  return cmp(m, e->op, b + e->value);
}

static int eval_fault(const struct fl_expect *e,
                      const struct fl_target_facts *f, struct out *o) {
  put(o->exp, o->elen, "hit %s %g", op_str(e->op), e->value);
  if (f->fault_delivered == NULL) {
    put(o->obs, o->olen, "deliveries of faults were not counted");
    return 0;
  }
  long c = f->fault_delivered(e->name, f->arg);
  if (c < 0) {
    put(o->obs, o->olen, "no fault named '%s' in the scenario", e->name);
    return 0;
  }
  put(o->obs, o->olen, "delivered %ld %s", c,
      plural((size_t)c, "time", "times"));
  return cmp((double)c, e->op, e->value);
}

int fl_expect_eval_target(const struct fl_expect *e,
                          const struct fl_target_facts *f, char *expected,
                          size_t elen, char *observed, size_t olen) {
  struct out o = {expected, elen, observed, olen};
  put(expected, elen, "%s", e->text);
  put(observed, olen, "%s", "");
  switch ((enum fl_expect_kind)e->kind) {
  case FL_EXP_NO_RESTART:
    put(expected, elen, "no restart");
    if (f->restarts == 0)
      put(observed, olen, "no restart");
    else
      put(observed, olen, "restarted %d %s", f->restarts,
          plural((size_t)f->restarts, "time", "times"));
    return f->restarts == 0;
  case FL_EXP_NO_CRASH:
    put(expected, elen, "no crash");
    put(observed, olen, "%s",
        f->crashed ? "crashed (ended by a signal)" : "no crash");
    return !f->crashed;
  case FL_EXP_ALIVE:
    put(expected, elen, "alive to the end");
    put(observed, olen, "%s",
        f->crashed  ? "crashed (ended by a signal)"
        : f->exited ? "exited before the end"
                    : "alive");
    return !f->crashed && !f->exited;
  case FL_EXP_FDS:
    return eval_fds(e, f, &o);
  case FL_EXP_RSS:
    return eval_rss(e, f, &o);
  case FL_EXP_FAULT_HIT:
    return eval_fault(e, f, &o);
  default:
    put(observed, olen, "not a target expectation");
    return 0;
  }
}
