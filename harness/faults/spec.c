#define _GNU_SOURCE
#include "faults.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "match.h"

static const char *const action_names[] = {
#define FL_X_NAME(name, text, help) [FL_ACT_##name] = text,
    FL_ACTIONS(FL_X_NAME)
#undef FL_X_NAME
};

static const char *const op_names[] = {
#define FL_X_NAME(name, text) [FL_OP_##name] = text,
    FL_OPS(FL_X_NAME)
#undef FL_X_NAME
};

const char *fl_action_name(int action) {
  return action > FL_ACT_NONE && action < FL_ACT_COUNT ? action_names[action]
                                                       : "?";
}

const char *fl_op_name(int op) {
  return op > FL_OP_NONE && op < FL_OP_COUNT ? op_names[op] : "?";
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

static void list_names(char *buf, size_t size, const struct code_name *t,
                       size_t n) {
  size_t at = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < n && at < size; i++)
    at +=
        (size_t)snprintf(buf + at, size - at, "%s%s", i ? ", " : "", t[i].name);
}

/* Parse state: the spec and where to write the one-sentence error. */
struct parser {
  const char *spec;
  char *err;
  size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct parser *p,
                                                      const char *fmt, ...) {
  int n = snprintf(p->err, p->errlen, "bad fault spec '%s': ", p->spec);
  if (n >= 0 && (size_t)n < p->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return FL_EBADSPEC;
}

static int parse_u64(const char *s, uint64_t max, uint64_t *out) {
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

/* "a.b.c.d", "a.b.c.d/nn", "v6", "v6/nn" (no port). */
static int parse_cidr(const char *s, struct fl_addr *a) {
  char host[INET6_ADDRSTRLEN + 8];
  if (strlen(s) >= sizeof(host))
    return -1;
  strcpy(host, s);
  char *slash = strchr(host, '/');
  if (slash != NULL)
    *slash++ = '\0';
  memset(a, 0, sizeof(*a));
  if (inet_pton(AF_INET, host, a->addr) == 1) {
    a->family = AF_INET;
    a->prefix = 32;
  } else if (inet_pton(AF_INET6, host, a->addr) == 1) {
    a->family = AF_INET6;
    a->prefix = 128;
  } else {
    return -1;
  }
  if (slash != NULL) {
    uint64_t bits;
    if (parse_u64(slash, a->prefix, &bits) != 0)
      return -1;
    a->prefix = (uint8_t)bits;
  }
  return 0;
}

/* Resolves a host name to at most FL_MAX_ADDRS addresses. */
static int resolve_host(const char *host, struct fl_rule *r) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(host, NULL, &hints, &res) != 0)
    return -1;
  r->naddrs = 0;
  for (struct addrinfo *ai = res; ai != NULL && r->naddrs < FL_MAX_ADDRS;
       ai = ai->ai_next) {
    struct fl_addr a;
    if (fl_addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &a) != 0)
      continue;
    a.port = 0;
    int dup = 0;
    for (int i = 0; i < r->naddrs; i++)
      dup |= memcmp(&r->addrs[i], &a, sizeof(a)) == 0;
    if (!dup)
      r->addrs[r->naddrs++] = a;
  }
  freeaddrinfo(res);
  return r->naddrs > 0 ? 0 : -1;
}

/* HOST[:PORT] where HOST is an address, a CIDR, [v6], [v6/nn], *, or a
 * name; or a unix socket path. */
static int parse_conn_target(struct parser *p, const char *t,
                             struct fl_rule *r) {
  if (t[0] == '/') {
    if (strlen(t) >= 108)
      return fail(p, "unix socket path '%s' is longer than 107 bytes", t);
    r->target = FL_TGT_UNIX;
    memcpy(r->pattern, t, strlen(t) + 1);
    return 0;
  }
  char host[256];
  const char *port = NULL;
  if (t[0] == '[') {
    const char *close = strchr(t, ']');
    if (close == NULL || (size_t)(close - t - 1) >= sizeof(host))
      return fail(p, "target '%s' has '[' without ']' (allowed: [IPV6]:PORT)",
                  t);
    memcpy(host, t + 1, (size_t)(close - t - 1));
    host[close - t - 1] = '\0';
    if (close[1] == ':')
      port = close + 2;
    else if (close[1] != '\0')
      return fail(p, "unexpected '%s' after ']' (allowed: ':PORT')", close + 1);
  } else {
    const char *colon = strrchr(t, ':');
    if (colon != NULL && strchr(t, ':') != colon)
      return fail(p, "IPv6 address '%s' needs brackets (allowed: [IPV6]:PORT)",
                  t);
    size_t n = colon ? (size_t)(colon - t) : strlen(t);
    if (n == 0 || n >= sizeof(host))
      return fail(p,
                  "missing host in target '%s' (allowed: HOST:PORT, "
                  "CIDR[:PORT], [IPV6]:PORT, *:PORT, /unix/path)",
                  t);
    memcpy(host, t, n);
    host[n] = '\0';
    if (colon != NULL)
      port = colon + 1;
  }
  uint64_t portnum = 0;
  if (port != NULL && parse_u64(port, 65535, &portnum) != 0)
    return fail(p, "bad port '%s' (allowed: 1-65535)", port);
  if (port != NULL && portnum == 0)
    return fail(p, "bad port '0' (allowed: 1-65535)");
  r->target = FL_TGT_INET;
  if (strcmp(host, "*") == 0) {
    parse_cidr("0.0.0.0/0", &r->addrs[0]);
    parse_cidr("::/0", &r->addrs[1]);
    r->naddrs = 2;
  } else if (parse_cidr(host, &r->addrs[0]) == 0) {
    r->naddrs = 1;
  } else if (strchr(host, '/') != NULL) {
    return fail(p, "bad network '%s' (allowed: ADDRESS/PREFIX)", host);
  } else if (resolve_host(host, r) != 0) {
    return fail(p, "cannot resolve host '%s'", host);
  }
  for (int i = 0; i < r->naddrs; i++)
    r->addrs[i].port = (uint16_t)portnum;
  return 0;
}

static int parse_target(struct parser *p, const char *t, struct fl_rule *r) {
  if (t[0] == '\0')
    return fail(p, "missing target after '@'");
  switch (r->action) {
  case FL_ACT_DNS:
    if (strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789.-_*?[]!") != strlen(t))
      return fail(p,
                  "bad host name pattern '%s' (allowed: a host name, "
                  "with * and ? as wildcards)",
                  t);
    if (strlen(t) >= FL_PATTERN_MAX)
      return fail(p, "host name pattern is longer than %d bytes",
                  FL_PATTERN_MAX - 1);
    r->target = FL_TGT_NAME;
    memcpy(r->pattern, t, strlen(t) + 1);
    return 0;
  case FL_ACT_EXHAUST:
    if (strcmp(t, "sockets") == 0)
      r->target = FL_TGT_SOCKETS;
    else if (strcmp(t, "files") == 0)
      r->target = FL_TGT_FILES;
    else if (strcmp(t, "fds") == 0)
      r->target = FL_TGT_FDS;
    else
      return fail(p,
                  "unknown exhaust target '%s' (allowed: sockets, files, "
                  "fds)",
                  t);
    return 0;
  case FL_ACT_ENOSPC:
  case FL_ACT_EIO:
    if (t[0] != '/')
      return fail(p, "path glob '%s' must be absolute (e.g. /tmp/uploads/*)",
                  t);
    if (strlen(t) >= FL_PATTERN_MAX)
      return fail(p, "path glob is longer than %d bytes", FL_PATTERN_MAX - 1);
    r->target = FL_TGT_PATH;
    memcpy(r->pattern, t, strlen(t) + 1);
    return 0;
  default:
    if (FL_ACT_IS_PROXY(r->action) && t[0] == '/')
      return fail(p,
                  "%s is a proxy fault, aimed at a TCP dependency: its "
                  "target is HOST:PORT, not a unix socket path",
                  fl_action_name(r->action));
    return parse_conn_target(p, t, r);
  }
}

static uint32_t ops_for(const struct fl_rule *r) {
  if (FL_ACT_IS_PROXY(r->action))
    return 0; /* the proxy applies them; the shim never sees them */
  switch (r->action) {
  case FL_ACT_RESET:
    return FL_OPC_SOCKIO;
  case FL_ACT_DELAY:
    return FL_OPC_CONNECT | FL_OPC_SOCKIO;
  case FL_ACT_EXHAUST:
    return (r->target != FL_TGT_FILES ? FL_OPC_SOCKET : 0) |
           (r->target != FL_TGT_SOCKETS ? FL_OPC_OPEN : 0);
  case FL_ACT_DNS:
    return FL_OPC_DNS;
  case FL_ACT_ENOSPC:
  case FL_ACT_EIO:
    return FL_OPC_OPEN | FL_OPC_FILEIO;
  default:
    return FL_OPC_CONNECT;
  }
}

static const char *allowed_keys(int action) {
  switch (action) {
  case FL_ACT_DELAY:
    return "ms, p, after, times";
  case FL_ACT_LIMIT:
    return "max, err, p, after, times";
  case FL_ACT_REDIRECT:
    return "to";
  case FL_ACT_HANG:
    return "p, after, times";
  case FL_ACT_LATENCY:
    return "ms, jitter, dir, toxicity, after, times";
  case FL_ACT_BANDWIDTH:
    return "rate, dir, toxicity, after, times";
  case FL_ACT_SLICER:
    return "size, ms, dir, toxicity, after, times";
  case FL_ACT_STALL:
  case FL_ACT_SLOW_CLOSE:
    return "ms, dir, toxicity, after, times";
  case FL_ACT_RESET_PEER:
    return "bytes, ms, dir, toxicity, after, times";
  case FL_ACT_LIMIT_DATA:
    return "bytes, dir, toxicity, after, times";
  case FL_ACT_DOWN:
    return "toxicity, after, times";
  default:
    return "err, p, after, times";
  }
}

static int parse_err(struct parser *p, const char *v, struct fl_rule *r) {
  int dns = r->action == FL_ACT_DNS;
  const struct code_name *t = dns ? eai_table : errno_table;
  size_t n = dns ? COUNT(eai_table) : COUNT(errno_table);
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, v) == 0) {
      r->err = t[i].code;
      return 0;
    }
  char names[512];
  list_names(names, sizeof(names), t, n);
  return fail(p, "unknown err '%s' (allowed: %s)", v, names);
}

/* Which options a spec gave, for the checks of required ones. */
struct seen {
  int ms, max, to, rate, bytes;
};

/* A fraction: "0.3" or "30%". Returns 0 and the p_threshold, or -1. */
static int parse_share(const char *v, uint64_t *threshold) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno == 0 && end != v && *end == '%' && end[1] == '\0')
    x /= 100.0, end++;
  if (errno != 0 || end == v || *end != '\0' || !(x >= 0.0 && x <= 1.0))
    return -1;
  *threshold = (uint64_t)(x * 4294967296.0);
  return 0;
}

/* A byte count with an optional binary suffix: 4096, 64k, 1m, 1g. */
static int parse_size(const char *v, uint64_t *out) {
  char num[32];
  size_t n = strlen(v);
  if (n == 0 || n >= sizeof(num))
    return -1;
  memcpy(num, v, n + 1);
  uint64_t mult = 1;
  switch (num[n - 1]) {
  case 'k':
  case 'K':
    mult = UINT64_C(1) << 10;
    break;
  case 'm':
  case 'M':
    mult = UINT64_C(1) << 20;
    break;
  case 'g':
  case 'G':
    mult = UINT64_C(1) << 30;
    break;
  }
  if (mult != 1)
    num[n - 1] = '\0';
  uint64_t x;
  if (parse_u64(num, (UINT64_C(1) << 50) / mult, &x) != 0 || x == 0)
    return -1;
  *out = x * mult;
  return 0;
}

/* The options only proxy faults take. Returns 1 when k is not one of
 * them; otherwise 0 with *rc set to 0 or FL_EBADSPEC. */
static int parse_toxic_option(struct parser *p, const char *k, const char *v,
                              struct fl_rule *r, struct seen *seen, int *rc) {
  struct fl_toxic *t = &r->toxic;
  uint64_t n = 0;
  *rc = 0;
  if (strcmp(k, "ms") == 0) {
    /* latency and slow_close need a real delay; for the others 0 means
     * "at once" (reset_peer), "never" (stall) or "no pause" (slicer). */
    int min = r->action == FL_ACT_LATENCY || r->action == FL_ACT_SLOW_CLOSE;
    if (parse_u64(v, 3600000, &n) != 0 || n < (uint64_t)min)
      *rc = fail(p, "bad ms '%s' (allowed: %d-3600000)", v, min);
    r->ms = (uint32_t)n;
    t->has_ms = 1;
    seen->ms = 1;
  } else if (strcmp(k, "jitter") == 0) {
    if (parse_u64(v, 3600000, &n) != 0)
      *rc = fail(p, "bad jitter '%s' (allowed: 0-3600000 ms)", v);
    t->jitter = (uint32_t)n;
  } else if (strcmp(k, "rate") == 0) {
    if (parse_size(v, &t->rate) != 0)
      *rc = fail(p,
                 "bad rate '%s' (allowed: bytes per second, 1 or more, "
                 "e.g. 65536, 64k or 1m)",
                 v);
    seen->rate = 1;
  } else if (strcmp(k, "size") == 0) {
    if (parse_u64(v, 1 << 20, &n) != 0 || n == 0)
      *rc = fail(p, "bad size '%s' (allowed: 1-1048576 bytes)", v);
    t->size = (uint32_t)n;
  } else if (strcmp(k, "bytes") == 0) {
    if (parse_size(v, &t->bytes) != 0)
      *rc = fail(p, "bad bytes '%s' (allowed: 1 or more, e.g. 4096, 4k or 1m)",
                 v);
    seen->bytes = 1;
  } else if (strcmp(k, "dir") == 0) {
    static const char *const names[] = {"up", "down", "both"};
    static const uint8_t bits[] = {FL_DIR_UP, FL_DIR_DOWN, FL_DIR_BOTH};
    t->dir = 0; /* the last dir= given wins, as for every option */
    for (size_t i = 0; i < 3 && t->dir == 0; i++)
      if (strcmp(v, names[i]) == 0)
        t->dir = bits[i];
    if (t->dir == 0)
      *rc = fail(p, "bad dir '%s' (allowed: up, down, both)", v);
  } else if (strcmp(k, "toxicity") == 0) {
    if (parse_share(v, &r->p_threshold) != 0)
      *rc = fail(p, "bad toxicity '%s' (allowed: 0..1 or 0%%..100%%)", v);
  } else {
    return 1;
  }
  return 0;
}

static int parse_option(struct parser *p, char *kv, struct fl_rule *r,
                        struct seen *seen) {
  char *eq = strchr(kv, '=');
  if (eq == NULL || eq == kv)
    return fail(p, "option '%s' is not key=value", kv);
  *eq = '\0';
  const char *k = kv, *v = eq + 1;
  const char *allowed = allowed_keys(r->action);
  /* Is k one of the comma-separated words of `allowed`? */
  size_t kl = strlen(k);
  const char *at = strstr(allowed, k);
  while (at != NULL && !((at == allowed || at[-1] == ' ') &&
                         (at[kl] == ',' || at[kl] == '\0')))
    at = strstr(at + 1, k);
  if (at == NULL)
    return fail(p, "unknown option '%s' for %s (allowed: %s)", k,
                fl_action_name(r->action), allowed);
  uint64_t n;
  int rc;
  if (FL_ACT_IS_PROXY(r->action) && !parse_toxic_option(p, k, v, r, seen, &rc))
    return rc;
  if (strcmp(k, "p") == 0) {
    if (parse_share(v, &r->p_threshold) != 0)
      return fail(p, "bad probability '%s' (allowed: 0..1 or 0%%..100%%)", v);
  } else if (strcmp(k, "after") == 0 || strcmp(k, "times") == 0) {
    if (parse_u64(v, UINT64_MAX / 2, &n) != 0)
      return fail(p, "bad %s '%s' (allowed: a whole number)", k, v);
    if (k[0] == 'a')
      r->after = n;
    else if (n == 0)
      return fail(p, "bad times '0' (allowed: 1 or more; omit for no bound)");
    else
      r->times = n;
  } else if (strcmp(k, "ms") == 0) {
    if (parse_u64(v, 3600000, &n) != 0 || n == 0)
      return fail(p, "bad ms '%s' (allowed: 1-3600000)", v);
    r->ms = (uint32_t)n;
    seen->ms = 1;
  } else if (strcmp(k, "max") == 0) {
    if (parse_u64(v, FL_LIMIT_SLOTS, &n) != 0)
      return fail(p, "bad max '%s' (allowed: 0-%d)", v, FL_LIMIT_SLOTS);
    r->max = (uint32_t)n;
    seen->max = 1;
  } else if (strcmp(k, "to") == 0) {
    struct fl_rule tmp;
    memset(&tmp, 0, sizeof(tmp));
    tmp.action = FL_ACT_REDIRECT;
    rc = parse_conn_target(p, v, &tmp);
    if (rc != 0)
      return rc;
    if (tmp.target != FL_TGT_INET || tmp.addrs[0].port == 0 ||
        tmp.addrs[0].prefix != (tmp.addrs[0].family == AF_INET ? 32 : 128))
      return fail(p, "bad redirect '%s' (allowed: ADDRESS:PORT)", v);
    r->redirect = tmp.addrs[0];
    seen->to = 1;
  } else {
    return parse_err(p, v, r);
  }
  return 0;
}

/* Edit distance between a and b (each cut at 31 bytes). */
static int distance(const char *a, const char *b) {
  int la = (int)strnlen(a, 31), lb = (int)strnlen(b, 31);
  int row[32];
  for (int j = 0; j <= lb; j++)
    row[j] = j;
  for (int i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = i;
    for (int j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

/* Is the action name nearest to `word` a proxy fault? Decides which list
 * an unknown action's message leads with. */
static int nearest_is_proxy(const char *word) {
  int best = 1 << 30, proxy = 0;
  for (int a = FL_ACT_NONE + 1; a < FL_ACT_COUNT; a++) {
    int d = distance(word, action_names[a]);
    if (d < best)
      best = d, proxy = FL_ACT_IS_PROXY(a);
  }
  return proxy;
}

/* Required options and defaults of the proxy faults. */
static int toxic_finish(struct parser *p, struct fl_rule *r,
                        const struct seen *seen) {
  const char *name = fl_action_name(r->action);
  if ((r->action == FL_ACT_LATENCY || r->action == FL_ACT_SLOW_CLOSE) &&
      !seen->ms)
    return fail(p, "%s needs ms=N (e.g. %s@127.0.0.1:6379,ms=200)", name, name);
  if (r->action == FL_ACT_BANDWIDTH && !seen->rate)
    return fail(p, "bandwidth needs rate=BYTES_PER_SECOND (e.g. "
                   "bandwidth@127.0.0.1:6379,rate=64k)");
  if (r->action == FL_ACT_LIMIT_DATA && !seen->bytes)
    return fail(p, "limit_data needs bytes=N (e.g. "
                   "limit_data@127.0.0.1:6379,bytes=4k)");
  if (r->action == FL_ACT_SLICER && r->toxic.size == 0)
    r->toxic.size = 64;
  /* A reply delayed once is what "slower by ms" means to a client making
   * request/reply round trips; both ways would double it. */
  if (r->toxic.dir == 0)
    r->toxic.dir = r->action == FL_ACT_LATENCY || r->action == FL_ACT_SLICER
                       ? FL_DIR_DOWN
                       : FL_DIR_BOTH;
  return 0;
}

int fl_spec_parse(const char *spec, struct fl_rule *r, char *err,
                  size_t errlen) {
  struct parser p = {spec, err, errlen};
  memset(r, 0, sizeof(*r));
  r->p_threshold = UINT64_C(1) << 32;
  if (strlen(spec) >= FL_SPEC_MAX)
    return fail(&p, "longer than %d bytes", FL_SPEC_MAX - 1);
  char buf[FL_SPEC_MAX];
  strcpy(buf, spec);
  char *at = strchr(buf, '@');
  if (at == NULL)
    return fail(&p, "missing '@' (expected ACTION@TARGET[,key=value]...)");
  *at = '\0';
  for (int a = FL_ACT_NONE + 1; a < FL_ACT_COUNT; a++)
    if (strcmp(buf, action_names[a]) == 0)
      r->action = (uint8_t)a;
  if (r->action == FL_ACT_NONE && nearest_is_proxy(buf))
    return fail(&p,
                "unknown action '%s' (proxy faults: latency, bandwidth, "
                "slicer, stall, slow_close, reset_peer, limit_data, down; "
                "shim faults: refuse, reset, hang, delay, limit, exhaust, "
                "dns, enospc, eio, redirect)",
                buf);
  if (r->action == FL_ACT_NONE)
    return fail(&p,
                "unknown action '%s' (allowed: refuse, reset, hang, "
                "delay, limit, exhaust, dns, enospc, eio, redirect)",
                buf);
  char *target = at + 1, *opts = strchr(target, ',');
  if (opts != NULL)
    *opts++ = '\0';
  int rc = parse_target(&p, target, r);
  if (rc != 0)
    return rc;
  struct seen seen = {0};
  while (opts != NULL) {
    char *next = strchr(opts, ',');
    if (next != NULL)
      *next++ = '\0';
    rc = parse_option(&p, opts, r, &seen);
    if (rc != 0)
      return rc;
    opts = next;
  }
  if (r->action == FL_ACT_DELAY && !seen.ms)
    return fail(&p, "delay needs ms=N (e.g. delay@127.0.0.1:6379,ms=200)");
  if (r->action == FL_ACT_LIMIT && !seen.max)
    return fail(&p, "limit needs max=N (e.g. limit@127.0.0.1:5432,max=5)");
  if (r->action == FL_ACT_REDIRECT && !seen.to)
    return fail(&p, "redirect needs to=ADDRESS:PORT");
  if (FL_ACT_IS_PROXY(r->action) && (rc = toxic_finish(&p, r, &seen)) != 0)
    return rc;
  r->ops = ops_for(r);
  snprintf(r->spec, sizeof(r->spec), "%s", spec);
  return 0;
}
