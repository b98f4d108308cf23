#include "match.h"

#include <netinet/in.h>
#include <string.h>

int fl_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len,
                          struct fl_addr *out) {
  memset(out, 0, sizeof(*out));
  if (sa == NULL)
    return -1;
  if (sa->sa_family == AF_INET &&
      len >= (socklen_t)sizeof(struct sockaddr_in)) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
    out->family = AF_INET;
    out->prefix = 32;
    out->port = ntohs(in->sin_port);
    memcpy(out->addr, &in->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6 &&
      len >= (socklen_t)sizeof(struct sockaddr_in6)) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    out->port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      out->family = AF_INET;
      out->prefix = 32;
      memcpy(out->addr, &in6->sin6_addr.s6_addr[12], 4);
    } else {
      out->family = AF_INET6;
      out->prefix = 128;
      memcpy(out->addr, &in6->sin6_addr, 16);
    }
    return 0;
  }
  return -1;
}

int fl_addr_match(const struct fl_addr *net, const struct fl_addr *a) {
  if (net->family != a->family)
    return 0;
  if (net->port != 0 && net->port != a->port)
    return 0;
  unsigned bits = net->prefix;
  unsigned whole = bits / 8, rest = bits % 8;
  if (memcmp(net->addr, a->addr, whole) != 0)
    return 0;
  if (rest != 0) {
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    if ((net->addr[whole] & mask) != (a->addr[whole] & mask))
      return 0;
  }
  return 1;
}

static int fold(int c, int icase) {
  return (icase && c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

/* Matches one bracket set at `*pp` against c; advances *pp past it. Returns
 * 1 match, 0 no match, -1 malformed (then '[' is taken literally). */
static int match_set(const char **pp, int c, int icase) {
  const char *p = *pp + 1;
  int negate = 0, hit = 0;
  if (*p == '!' || *p == '^') {
    negate = 1;
    p++;
  }
  int first = 1;
  while (*p != '\0' && (*p != ']' || first)) {
    int lo = fold((unsigned char)*p, icase), hi = lo;
    if (p[1] == '-' && p[2] != '\0' && p[2] != ']') {
      hi = fold((unsigned char)p[2], icase);
      p += 2;
    }
    if (c >= lo && c <= hi)
      hit = 1;
    p++;
    first = 0;
  }
  if (*p != ']')
    return -1;
  *pp = p + 1;
  return hit != negate;
}

int fl_glob_match(const char *pat, const char *s, int icase) {
  /* Iterative with one backtrack point: linear for the patterns people
   * write, and no recursion on the target's stack. */
  const char *star_p = NULL, *star_s = NULL;
  while (*s != '\0') {
    int c = fold((unsigned char)*s, icase);
    if (*pat == '*') {
      star_p = ++pat;
      star_s = s;
      continue;
    }
    if (*pat == '[') {
      const char *p = pat;
      int r = match_set(&p, c, icase);
      if (r == 1) {
        pat = p;
        s++;
        continue;
      }
      if (r == 0)
        goto backtrack;
      /* Malformed set: fall through and compare '[' literally. */
    }
    if (*pat == '?' && pat[0] != '\0') {
      pat++;
      s++;
      continue;
    }
    {
      const char *lit = pat;
      if (*lit == '\\' && lit[1] != '\0')
        lit++;
      if (*lit != '\0' && fold((unsigned char)*lit, icase) == c) {
        pat = lit + 1;
        s++;
        continue;
      }
    }
  backtrack:
    if (star_p == NULL)
      return 0;
    pat = star_p;
    s = ++star_s;
  }
  while (*pat == '*')
    pat++;
  return *pat == '\0';
}

uint64_t fl_hash_bytes(const void *p, size_t n, uint64_t h) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= UINT64_C(0x100000001b3);
  }
  return h;
}

uint64_t fl_mix64(uint64_t x) {
  x += UINT64_C(0x9e3779b97f4a7c15);
  x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
  return x ^ (x >> 31);
}

int fl_is_numeric_host(const char *s) {
  /* IPv6 literals contain ':'; IPv4 dotted quads only digits and dots. */
  int digits = 0, dots = 0;
  for (const char *p = s; *p != '\0'; p++) {
    if (*p == ':')
      return 1;
    if (*p == '.')
      dots++;
    else if (*p >= '0' && *p <= '9')
      digits++;
    else
      return 0;
  }
  return digits > 0 && dots <= 3;
}

size_t fl_utoa(uint32_t v, char *out) {
  char digits[10];
  size_t n = 0;
  do
    digits[n++] = (char)('0' + v % 10);
  while ((v /= 10) != 0);
  for (size_t i = 0; i < n; i++)
    out[i] = digits[n - 1 - i];
  return n;
}
