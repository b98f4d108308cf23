/*
 * Aiming a rule: its target as its type reads it (a connection target, a
 * host name glob, a path glob, a kind of descriptor), into the rule's
 * target, addresses or pattern, and the operation classes it gates.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

#include "base/base.h"
#include "faults_int.h"
#include "match.h"

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
    if (fl_faults_u64(slash, a->prefix, &bits) != 0)
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

/* HOST (an address, a CIDR, *, or a name) and a port, 0 for any. */
static int aim_host(const char *host, uint16_t port, struct fl_rule *r,
                    char *err, size_t errlen) {
  r->target = FL_TGT_INET;
  if (strcmp(host, "*") == 0) {
    parse_cidr("0.0.0.0/0", &r->addrs[0]);
    parse_cidr("::/0", &r->addrs[1]);
    r->naddrs = 2;
  } else if (parse_cidr(host, &r->addrs[0]) == 0) {
    r->naddrs = 1;
  } else if (strchr(host, '/') != NULL) {
    return fl_faults_fail(err, errlen,
                          "bad network '%s' (allowed: ADDRESS/PREFIX)", host);
  } else if (resolve_host(host, r) != 0) {
    return fl_faults_fail(err, errlen, "cannot resolve host '%s'", host);
  }
  for (int i = 0; i < r->naddrs; i++)
    r->addrs[i].port = port;
  return 0;
}

/* Splits [V6]:PORT or HOST:PORT into host and *port (NULL: none). */
static int split_host(const char *t, char *host, size_t size, const char **port,
                      char *err, size_t errlen) {
  *port = NULL;
  if (t[0] == '[') {
    const char *close = strchr(t, ']');
    if (close == NULL || (size_t)(close - t - 1) >= size)
      return fl_faults_fail(
          err, errlen, "target '%s' has '[' without ']' (allowed: [IPV6]:PORT)",
          t);
    memcpy(host, t + 1, (size_t)(close - t - 1));
    host[close - t - 1] = '\0';
    if (close[1] == ':')
      *port = close + 2;
    else if (close[1] != '\0')
      return fl_faults_fail(err, errlen,
                            "unexpected '%s' after ']' (allowed: ':PORT')",
                            close + 1);
    return 0;
  }
  const char *colon = strrchr(t, ':');
  if (colon != NULL && strchr(t, ':') != colon)
    return fl_faults_fail(
        err, errlen, "IPv6 address '%s' needs brackets (allowed: [IPV6]:PORT)",
        t);
  size_t n = colon ? (size_t)(colon - t) : strlen(t);
  if (n == 0 || n >= size)
    return fl_faults_fail(err, errlen,
                          "missing host in target '%s' (allowed: HOST:PORT, "
                          "CIDR[:PORT], [IPV6]:PORT, *:PORT, /unix/path)",
                          t);
  memcpy(host, t, n);
  host[n] = '\0';
  if (colon != NULL)
    *port = colon + 1;
  return 0;
}

int fl_faults_conn_target(const char *t, struct fl_rule *r, char *err,
                          size_t errlen) {
  if (t[0] == '/') {
    if (strlen(t) >= 108)
      return fl_faults_fail(
          err, errlen, "unix socket path '%s' is longer than 107 bytes", t);
    r->target = FL_TGT_UNIX;
    memcpy(r->pattern, t, strlen(t) + 1);
    return 0;
  }
  char host[256];
  const char *port;
  int rc = split_host(t, host, sizeof(host), &port, err, errlen);
  if (rc != 0)
    return rc;
  uint64_t portnum = 0;
  if (port != NULL &&
      (fl_faults_u64(port, 65535, &portnum) != 0 || portnum == 0))
    return fl_faults_fail(err, errlen, "bad port '%s' (allowed: 1-65535)",
                          port);
  return aim_host(host, (uint16_t)portnum, r, err, errlen);
}

static int aim_pattern(struct fl_rule *r, int target, const char *t) {
  r->target = (uint8_t)target;
  memcpy(r->pattern, t, strlen(t) + 1);
  return 0;
}

static int aim_name(struct fl_rule *r, const char *t, char *err,
                    size_t errlen) {
  if (strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "0123456789.-_*?[]!") != strlen(t))
    return fl_faults_fail(err, errlen,
                          "bad host name pattern '%s' (allowed: a host name, "
                          "with * and ? as wildcards)",
                          t);
  if (strlen(t) >= FL_PATTERN_MAX)
    return fl_faults_fail(err, errlen,
                          "host name pattern is longer than %d bytes",
                          FL_PATTERN_MAX - 1);
  return aim_pattern(r, FL_TGT_NAME, t);
}

static int aim_path(struct fl_rule *r, const char *t, char *err,
                    size_t errlen) {
  if (t[0] != '/')
    return fl_faults_fail(
        err, errlen, "path glob '%s' must be absolute (e.g. /tmp/uploads/*)",
        t);
  if (strlen(t) >= FL_PATTERN_MAX)
    return fl_faults_fail(err, errlen, "path glob is longer than %d bytes",
                          FL_PATTERN_MAX - 1);
  return aim_pattern(r, FL_TGT_PATH, t);
}

static int aim_fds(struct fl_rule *r, const char *t, char *err, size_t errlen) {
  static const struct {
    const char *name;
    uint8_t target;
    uint32_t ops;
  } kinds[] = {
      {"sockets", FL_TGT_SOCKETS, FL_OPC_SOCKET},
      {"files", FL_TGT_FILES, FL_OPC_OPEN},
      {"fds", FL_TGT_FDS, FL_OPC_SOCKET | FL_OPC_OPEN},
  };
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strcmp(t, kinds[i].name) == 0) {
      r->target = kinds[i].target;
      r->ops &= kinds[i].ops;
      return 0;
    }
  return fl_faults_fail(err, errlen,
                        "unknown %s target '%s' (allowed: sockets, files, fds)",
                        fl_action_name(r->action), t);
}

/* A connection target; the proxy's faults act on TCP streams only. */
static int aim_conn(struct fl_rule *r, const char *t, char *err,
                    size_t errlen) {
  if (FL_ACT_IS_PROXY(r->action) && t[0] == '/')
    return fl_faults_fail(err, errlen,
                          "%s is a proxy fault, aimed at a TCP dependency: "
                          "its target is HOST:PORT, not a unix socket path",
                          fl_action_name(r->action));
  return fl_faults_conn_target(t, r, err, errlen);
}

typedef int aim_fn(struct fl_rule *r, const char *t, char *err, size_t errlen);
static aim_fn *const aims[] = {
    [FL_AIM_CONN] = aim_conn, [FL_AIM_NAME] = aim_name,
    [FL_AIM_PATH] = aim_path, [FL_AIM_FDS] = aim_fds,
    [FL_AIM_DEP] = aim_conn,
};

int fl_rule_aim(struct fl_rule *r, const char *t, char *err, size_t errlen) {
  const struct fl_fault_type *type = fl_fault_of_action(r->action);
  if (type == NULL || type->aim >= sizeof(aims) / sizeof(aims[0]))
    return fl_faults_fail(err, errlen, "no action to aim");
  if (t[0] == '\0')
    return fl_faults_fail(err, errlen, "missing target after '@'");
  r->ops = type->ops;
  return aims[type->aim](r, t, err, errlen);
}

int fl_rule_aim_host(struct fl_rule *r, const char *host, int port, char *err,
                     size_t errlen) {
  const struct fl_fault_type *type = fl_fault_of_action(r->action);
  if (type == NULL || type->aim != FL_AIM_CONN || port < 0 || port > 65535)
    return fl_faults_fail(err, errlen, "cannot aim %s at %s:%d",
                          fl_action_name(r->action), host, port);
  r->ops = type->ops;
  return aim_host(host, (uint16_t)port, r, err, errlen);
}
