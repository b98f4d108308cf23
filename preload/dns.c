/*
 * Name lookups. glibc's resolver talks to DNS through internal calls that
 * bypass every wrapper, so DNS faults are injected at the public entry
 * points: getaddrinfo, gethostbyname*, gethostbyname*_r, getnameinfo.
 *
 * Numeric literals never reach DNS, so no rule applies to them; a rule's
 * glob is matched case-insensitively against the name as asked.
 *
 * A rule's err is an EAI_* code (negative). A positive err is an errno,
 * reported the way glibc reports system errors: EAI_SYSTEM with errno set.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include "calls.h"

/* Finds libc's function on first use; when there is none (a libc without
 * it), the call fails with `fail` and errno ENOSYS rather than crash. */
#define RESOLVE(name, fail)                                                    \
  do {                                                                         \
    if (fl_real_##name == NULL)                                                \
      fl_real_##name = (__typeof__(fl_real_##name))fl_resolve(#name);          \
    if (fl_real_##name == NULL) {                                              \
      errno = ENOSYS;                                                          \
      fail;                                                                    \
    }                                                                          \
  } while (0)

/* Returns the EAI_* code to fail with, 0 to pass through. */
static int lookup_fault(const char *name, int op, int *sys_errno) {
  if (!FL_UNLIKELY(fl_ops() & FL_OPC_DNS) || name == NULL ||
      fl_is_numeric_host(name))
    return 0;
  struct fl_usage *u = fl_recording();
  if (u != NULL)
    fl_usage_name(u, name);
  struct fl_verdict v;
  if (!fl_decide_name(name, &v))
    return 0;
  fl_record(&v, op);
  if (v.err > 0) {
    *sys_errno = v.err;
    return EAI_SYSTEM;
  }
  return v.err;
}

/* The h_errno that a failed lookup gives for an EAI_* code. */
static int h_errno_for(int eai) {
  switch (eai) {
  case EAI_AGAIN:
  case EAI_SYSTEM:
    return TRY_AGAIN;
  case EAI_FAIL:
    return NO_RECOVERY;
  case EAI_NODATA:
    return NO_DATA;
  default:
    return HOST_NOT_FOUND;
  }
}

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res) {
  int sys = 0, eai = lookup_fault(node, FL_OP_GETADDRINFO, &sys);
  if (eai != 0) {
    if (sys != 0)
      errno = sys;
    return eai;
  }
  RESOLVE(getaddrinfo, return EAI_SYSTEM);
  return fl_real_getaddrinfo(node, service, hints, res);
}

struct hostent *gethostbyname(const char *name) {
  int sys = 0, eai = lookup_fault(name, FL_OP_GETHOSTBYNAME, &sys);
  if (eai != 0) {
    h_errno = h_errno_for(eai);
    return NULL;
  }
  RESOLVE(gethostbyname, h_errno = NO_RECOVERY; return NULL);
  return fl_real_gethostbyname(name);
}

struct hostent *gethostbyname2(const char *name, int af) {
  int sys = 0, eai = lookup_fault(name, FL_OP_GETHOSTBYNAME, &sys);
  if (eai != 0) {
    h_errno = h_errno_for(eai);
    return NULL;
  }
  RESOLVE(gethostbyname2, h_errno = NO_RECOVERY; return NULL);
  return fl_real_gethostbyname2(name, af);
}

/* The _r forms report through *h_errnop and return an errno value. */
static int fail_r(int eai, struct hostent **result, int *h_errnop) {
  *result = NULL;
  *h_errnop = h_errno_for(eai);
  return *h_errnop == TRY_AGAIN ? EAGAIN : ENOENT;
}

int gethostbyname_r(const char *name, struct hostent *ret, char *buf,
                    size_t buflen, struct hostent **result, int *h_errnop) {
  int sys = 0, eai = lookup_fault(name, FL_OP_GETHOSTBYNAME, &sys);
  if (eai != 0)
    return fail_r(eai, result, h_errnop);
  RESOLVE(gethostbyname_r, return fail_r(EAI_FAIL, result, h_errnop));
  return fl_real_gethostbyname_r(name, ret, buf, buflen, result, h_errnop);
}

int gethostbyname2_r(const char *name, int af, struct hostent *ret, char *buf,
                     size_t buflen, struct hostent **result, int *h_errnop) {
  int sys = 0, eai = lookup_fault(name, FL_OP_GETHOSTBYNAME, &sys);
  if (eai != 0)
    return fail_r(eai, result, h_errnop);
  RESOLVE(gethostbyname2_r, return fail_r(EAI_FAIL, result, h_errnop));
  return fl_real_gethostbyname2_r(name, af, ret, buf, buflen, result, h_errnop);
}

/* Reverse lookups: the rule's glob is matched against the address as text
 * ("*" covers all). A failed reverse lookup yields the numeric form unless
 * the caller demanded a name (NI_NAMEREQD). */
int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host,
                socklen_t hostlen, char *serv, socklen_t servlen, int flags) {
  RESOLVE(getnameinfo, return EAI_SYSTEM);
  if (FL_UNLIKELY(fl_ops() & FL_OPC_DNS) && host != NULL && hostlen > 0 &&
      (flags & NI_NUMERICHOST) == 0) {
    char text[INET6_ADDRSTRLEN] = "";
    struct fl_addr a;
    int saved = errno;
    if (fl_addr_from_sockaddr(sa, salen, &a) == 0)
      inet_ntop(a.family, a.addr, text, sizeof(text));
    struct fl_verdict v;
    if (text[0] != '\0' && fl_decide_name(text, &v)) {
      fl_record(&v, FL_OP_GETNAMEINFO);
      errno = saved;
      if ((flags & NI_NAMEREQD) != 0)
        return v.err < 0 ? v.err : EAI_AGAIN;
      flags |= NI_NUMERICHOST;
    }
    errno = saved;
  }
  return fl_real_getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
}
