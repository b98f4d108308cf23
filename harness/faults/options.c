/*
 * Options of rules: one row per key (what it is called in messages, how
 * its value is read, its range or allowed values, its default and where it
 * goes in struct fl_rule). A fault row lists the keys it takes; a draft
 * reads them into the rule and checks the required one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "base/base.h"
#include "faults_int.h"

int fl_faults_fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return FL_EBADSPEC;
}

int fl_faults_u64(const char *s, uint64_t max, uint64_t *out) {
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return -1;
  *out = v;
  return 0;
}

/* The error codes a rule may inject: the ones real failures give. One a
 * line, unformatted: clang-format 14 never settles on this macro. */
// clang-format off
#define FL_ERRNO_NAMES(X) \
  X(ECONNREFUSED) \
  X(ECONNRESET) \
  X(ECONNABORTED) \
  X(ETIMEDOUT) \
  X(EHOSTUNREACH) \
  X(ENETUNREACH) \
  X(ENETDOWN) \
  X(EPIPE) \
  X(EAGAIN) \
  X(EINTR) \
  X(EADDRNOTAVAIL) \
  X(EMFILE) \
  X(ENFILE) \
  X(ENOBUFS) \
  X(ENOMEM) \
  X(ENOSPC) \
  X(EDQUOT) \
  X(EIO) \
  X(EROFS) \
  X(EACCES) \
  X(EPERM) \
  X(EFBIG)
// clang-format on
#define FL_EAI_NAMES(X)                                                        \
  X(EAI_AGAIN) X(EAI_NONAME) X(EAI_FAIL) X(EAI_NODATA) X(EAI_MEMORY)

struct code_name {
  int code;
  const char *name;
};
static const struct code_name errno_table[] = {
#define FL_X_ROW(c) {c, #c},
    FL_ERRNO_NAMES(FL_X_ROW)};
static const struct code_name eai_table[] = {FL_EAI_NAMES(FL_X_ROW)};
#undef FL_X_ROW

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *fl_errcode_name(int code) {
  const struct code_name *t = code < 0 ? eai_table : errno_table;
  size_t n = code < 0 ? COUNT(eai_table) : COUNT(errno_table);
  for (size_t i = 0; i < n; i++)
    if (t[i].code == code)
      return t[i].name;
  return NULL;
}

static const char *const op_names[] = {
#define FL_X_NAME(name, text) [FL_OP_##name] = text,
    FL_OPS(FL_X_NAME)
#undef FL_X_NAME
};

const char *fl_op_name(int op) {
  return op > FL_OP_NONE && op < FL_OP_COUNT ? op_names[op] : "?";
}

struct option;
/* Reads v into d's rule: 0; -1 for the option's usual "bad LABEL 'v'
 * (allowed: ...)"; or FL_EBADSPEC with its own message in err. */
typedef int read_fn(const struct option *o, const char *v,
                    struct fl_rule_draft *d, char *err, size_t errlen);

struct option {
  const char *key;
  const char *label;   /* in messages: bad LABEL 'value' (to: the fault) */
  read_fn *read;       /* by unit: count, duration, size, share... */
  uint64_t min, max;   /* the range of counts, durations (ms), sizes */
  uint64_t def;        /* the value when not given; 0: none */
  const char *unit;    /* after the range in messages: " ms", " bytes" */
  const char *allowed; /* the allowed values, instead of the range */
  size_t off;          /* where it goes in struct fl_rule */
  uint16_t width;      /* its size there: 1, 4 or 8 bytes; text: its room */
};

#define AT(field)                                                              \
  .off = offsetof(struct fl_rule, field),                                      \
  .width = sizeof(((struct fl_rule *)0)->field)

static void put(struct fl_rule_draft *d, const struct option *o, uint64_t v) {
  char *at = (char *)&d->rule + o->off;
  uint8_t v8 = (uint8_t)v;
  uint32_t v32 = (uint32_t)v;
  if (o->width == 1)
    memcpy(at, &v8, 1);
  else if (o->width == 4)
    memcpy(at, &v32, 4);
  else
    memcpy(at, &v, 8);
}

static int in_range(const struct option *o, uint64_t min, double x,
                    struct fl_rule_draft *d) {
  if (!(x >= (double)min && x <= (double)o->max) || x != floor(x))
    return -1;
  put(d, o, (uint64_t)x);
  return 0;
}

static int read_count(const struct option *o, const char *v,
                      struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  uint64_t n;
  if (fl_faults_u64(v, o->max, &n) != 0 || n < o->min)
    return -1;
  put(d, o, n);
  return 0;
}

/* Whole milliseconds: a bare number, or a duration with its unit (2s). */
static int read_ms_from(const struct option *o, uint64_t min, const char *v,
                        struct fl_rule_draft *d) {
  uint64_t n;
  double s;
  if (fl_faults_u64(v, o->max, &n) == 0)
    return n >= min ? (put(d, o, n), 0) : -1;
  if (fl_parse_duration(v, strlen(v), 0, &s) != 0)
    return -1;
  return in_range(o, min, round(s * 1e6) / 1e3, d);
}

static int read_duration(const struct option *o, const char *v,
                         struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  return read_ms_from(o, o->min, v, d);
}

/* ms: its least value is the fault's (0 means "at once" for some). */
static int read_ms(const struct option *o, const char *v,
                   struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  return read_ms_from(o, d->type->ms_min, v, d);
}

/* Bytes: 4096, 64k, 1m, 1g (and the units module's 64kB, 1MiB). */
static int read_size(const struct option *o, const char *v,
                     struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  double x;
  if (fl_parse_size(v, strlen(v), FL_UNITS_BARE | FL_UNITS_SHORT, &x) != 0)
    return -1;
  return in_range(o, o->min, x, d);
}

/* A share: "0.3" or "30%", as the threshold of a 32-bit hash. */
static int read_share(const struct option *o, const char *v,
                      struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  double x;
  size_t len = strlen(v), n = fl_scan_number(v, len, &x);
  if (n > 0 && n + 1 == len && v[n] == '%')
    x /= 100.0;
  else if (n == 0 || n != len)
    return -1;
  if (!(x >= 0.0 && x <= 1.0))
    return -1;
  put(d, o, (uint64_t)(x * 4294967296.0));
  return 0;
}

static int read_dir(const struct option *o, const char *v,
                    struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  static const char *const names[] = {"up", "down", "both"};
  static const uint8_t bits[] = {FL_DIR_UP, FL_DIR_DOWN, FL_DIR_BOTH};
  for (size_t i = 0; i < COUNT(names); i++)
    if (strcmp(v, names[i]) == 0)
      return put(d, o, bits[i]), 0;
  return -1;
}

static int read_err(const struct option *o, const char *v,
                    struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)o;
  int dns = d->rule.action == FL_ACT_DNS;
  const struct code_name *t = dns ? eai_table : errno_table;
  size_t n = dns ? COUNT(eai_table) : COUNT(errno_table);
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, v) == 0) {
      d->rule.err = t[i].code;
      return 0;
    }
  char names[512];
  size_t at = 0;
  names[0] = '\0';
  for (size_t i = 0; i < n && at < sizeof(names); i++)
    at += (size_t)snprintf(names + at, sizeof(names) - at, "%s%s",
                           i ? ", " : "", t[i].name);
  return fl_faults_fail(err, errlen, "unknown err '%s' (allowed: %s)", v,
                        names);
}

/* Text, as given, into a char field of the rule. */
static int read_text(const struct option *o, const char *v,
                     struct fl_rule_draft *d, char *err, size_t errlen) {
  if (strlen(v) >= o->width || v[0] == '\0')
    return fl_faults_fail(err, errlen, "bad %s '%s' (allowed: %s)", o->label, v,
                          o->allowed);
  memcpy((char *)&d->rule + o->off, v, strlen(v) + 1);
  return 0;
}

static int read_stage(const struct option *o, const char *v,
                      struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  if (strcmp(v, "startup") == 0)
    return put(d, o, FL_STAGE_STARTUP), 0;
  if (strcmp(v, "query") == 0)
    return put(d, o, FL_STAGE_QUERY), 0;
  return -1;
}

/* ws_close's code=: a close code an endpoint may send (RFC 6455 7.4). */
static int read_close_code(const char *v, struct fl_rule_draft *d, char *err,
                           size_t errlen) {
  uint64_t n;
  if (fl_faults_u64(v, 4999, &n) != 0 || n < 1000 || n == 1004 || n == 1005 ||
      n == 1006 || n == 1015)
    return fl_faults_fail(err, errlen,
                          "bad code '%s' (allowed: a WebSocket close code, "
                          "1000-4999 but 1004-1006 and 1015, e.g. 1011)",
                          v);
  d->rule.proto.status = (uint32_t)n;
  return 0;
}

/* code=SQLSTATE: five digits or upper-case letters, as PostgreSQL's. */
static int read_sqlstate(const struct option *o, const char *v,
                         struct fl_rule_draft *d, char *err, size_t errlen) {
  if (d->rule.action == FL_ACT_WS_CLOSE)
    return read_close_code(v, d, err, errlen);
  if (strlen(v) != 5 || strspn(v, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 5)
    return -1;
  memcpy((char *)&d->rule + o->off, v, 6);
  return 0;
}

static int read_severity(const struct option *o, const char *v,
                         struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  static const char *const names[] = {"ERROR", "FATAL", "PANIC"};
  for (size_t i = 0; i < COUNT(names); i++)
    if (strcasecmp(v, names[i]) == 0)
      return put(d, o, FL_PG_ERROR + i), 0;
  return -1;
}

static int read_yesno(const struct option *o, const char *v,
                      struct fl_rule_draft *d, char *err, size_t errlen) {
  (void)err, (void)errlen;
  if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
    return put(d, o, 1), 0;
  if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
    return put(d, o, 2), 0;
  return -1;
}

/* to=ADDRESS:PORT: where a redirect sends connections. */
static int read_to(const struct option *o, const char *v,
                   struct fl_rule_draft *d, char *err, size_t errlen) {
  struct fl_rule tmp;
  memset(&tmp, 0, sizeof(tmp));
  int rc = fl_faults_conn_target(v, &tmp, err, errlen);
  if (rc != 0)
    return rc;
  if (tmp.target != FL_TGT_INET || tmp.addrs[0].port == 0 ||
      tmp.addrs[0].prefix != (tmp.addrs[0].family == AF_INET ? 32 : 128))
    return fl_faults_fail(err, errlen, "bad %s '%s' (allowed: %s)",
                          d->type->name, v, o->allowed);
  d->rule.redirect = tmp.addrs[0];
  return 0;
}

#define SHARE "0..1 or 0%..100%"
#define MAX_BYTES (UINT64_C(1) << 50)
#define MAX_MS 3600000

static const struct option options[] = {
    {"p", "probability", read_share, .allowed = SHARE, AT(p_threshold)},
    {"toxicity", "toxicity", read_share, .allowed = SHARE, AT(p_threshold)},
    {"after", "after", read_count, 0, UINT64_MAX / 2,
     .allowed = "a whole number", AT(after)},
    {"times", "times", read_count, 1, UINT64_MAX / 2,
     .allowed = "1 or more; omit for no bound", AT(times)},
    {"ms", "ms", read_ms, 1, MAX_MS, AT(ms)},
    {"jitter", "jitter", read_duration, 0, MAX_MS, .unit = " ms",
     AT(toxic.jitter)},
    {"max", "max", read_count, 0, FL_LIMIT_SLOTS, AT(max)},
    {"err", "err", read_err, AT(err)},
    {"to", NULL, read_to, .allowed = "ADDRESS:PORT", AT(redirect)},
    {"rate", "rate", read_size, 1, MAX_BYTES,
     .allowed = "bytes per second, 1 or more, e.g. 65536, 64k or 1m",
     AT(toxic.rate)},
    {"size", "size", read_size, 1, 1 << 20, 64, " bytes", AT(toxic.size)},
    {"bytes", "bytes", read_size, 1, MAX_BYTES,
     .allowed = "1 or more, e.g. 4096, 4k or 1m", AT(toxic.bytes)},
    {"dir", "dir", read_dir, .allowed = "up, down, both", AT(toxic.dir)},
    {"reply", "reply", read_text, .allowed = "text of at most 511 bytes",
     AT(proto.reply)},
    {"match", "match", read_text, .allowed = "text of at most 119 bytes",
     AT(proto.match)},
    {"code", "code", read_sqlstate,
     .allowed = "a SQLSTATE: 5 digits or capital letters, e.g. 53300",
     AT(proto.code)},
    {"status", "status", read_count, 100, 599, AT(proto.status)},
    {"header", "header", read_text,
     .allowed = "'Name: value' of at most 255 bytes", AT(proto.headers)},
    {"stage", "stage", read_stage, .allowed = "startup, query",
     AT(proto.stage)},
    {"severity", "severity", read_severity, .allowed = "ERROR, FATAL, PANIC",
     AT(proto.severity)},
    {"close", "close", read_yesno, .allowed = "yes, no", AT(proto.close)},
};

int fl_fault_is_option(const char *key) {
  for (size_t i = 0; i < COUNT(options); i++)
    if (strcmp(options[i].key, key) == 0)
      return 1;
  return 0;
}

/* Is key one of the comma-separated words of list? */
static int takes(const char *list, const char *key) {
  size_t kl = strlen(key);
  for (const char *at = strstr(list, key); at != NULL; at = strstr(at + 1, key))
    if ((at == list || at[-1] == ' ') && (at[kl] == ',' || at[kl] == '\0'))
      return 1;
  return 0;
}

static const struct option *find_option(const char *key) {
  for (size_t i = 0; i < COUNT(options); i++)
    if (strcmp(options[i].key, key) == 0)
      return &options[i];
  return NULL;
}

void fl_draft_init(struct fl_rule_draft *d, const struct fl_fault_type *t) {
  memset(d, 0, sizeof(*d));
  d->type = t;
  d->rule.action = t->action;
  d->rule.p_threshold = UINT64_C(1) << 32; /* always */
}

int fl_draft_option(struct fl_rule_draft *d, const char *key, const char *value,
                    char *err, size_t errlen) {
  const struct option *o = find_option(key);
  if (o == NULL || !takes(d->type->options, key))
    return fl_faults_fail(err, errlen,
                          "unknown option '%s' for %s (allowed: %s)", key,
                          d->type->name, d->type->options);
  int rc = o->read(o, value, d, err, errlen);
  if (rc == 0) {
    d->seen |= 1u << (o - options);
    return 0;
  }
  if (rc != -1)
    return rc;
  uint64_t min = o->read == read_ms ? d->type->ms_min : o->min;
  if (o->allowed != NULL)
    return fl_faults_fail(err, errlen, "bad %s '%s' (allowed: %s)", o->label,
                          value, o->allowed);
  return fl_faults_fail(err, errlen, "bad %s '%s' (allowed: %llu-%llu%s)",
                        o->label, value, (unsigned long long)min,
                        (unsigned long long)o->max, o->unit ? o->unit : "");
}

static int seen(const struct fl_rule_draft *d, const char *key, size_t len) {
  for (size_t i = 0; i < COUNT(options); i++)
    if (strlen(options[i].key) == len && memcmp(options[i].key, key, len) == 0)
      return (d->seen >> i) & 1;
  return 0;
}

void fl_draft_redirect(struct fl_rule_draft *d, const struct fl_addr *to) {
  d->rule.redirect = *to;
  for (size_t i = 0; i < COUNT(options); i++)
    if (strcmp(options[i].key, "to") == 0)
      d->seen |= UINT32_C(1) << i;
}

int fl_draft_finish(struct fl_rule_draft *d, char *err, size_t errlen) {
  const struct fl_fault_type *t = d->type;
  if (t->needs != NULL && !seen(d, t->needs, strcspn(t->needs, "="))) {
    if (t->example == NULL)
      return fl_faults_fail(err, errlen, "%s needs %s", t->name, t->needs);
    return fl_faults_fail(err, errlen, "%s needs %s (e.g. %s@%s)", t->name,
                          t->needs, t->name, t->example);
  }
  for (size_t i = 0; i < COUNT(options); i++)
    if (options[i].def != 0 && !((d->seen >> i) & 1) &&
        takes(t->options, options[i].key))
      put(d, &options[i], options[i].def);
  if (t->kind == FL_FAULT_PROXY) {
    /* A reply delayed once is what "slower by ms" means to a client making
     * request/reply round trips; so latency defaults to dir=down. */
    if (d->rule.toxic.dir == 0)
      d->rule.toxic.dir = t->dir;
    d->rule.toxic.has_ms = (uint8_t)seen(d, "ms", 2);
  }
  return 0;
}
