/*
 * Pure matching helpers shared by the shim and the runner: no allocation, no
 * locks, no errno changes, safe in a vfork child and before libc is ready.
 */
#ifndef FAULTLINE_MATCH_H
#define FAULTLINE_MATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "faultline/segment.h"

/* Fills `out` from a sockaddr (AF_INET, AF_INET6; v4-mapped IPv6 becomes
 * AF_INET). Returns 0, or -1 for another family or a short length. */
int fl_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len,
                          struct fl_addr *out);

/* Does `a` (a concrete address and port) fall in `net` (CIDR, port 0 = any)? */
int fl_addr_match(const struct fl_addr *net, const struct fl_addr *a);

/* Glob match: `*` any run (including '/'), `?` one byte, `[...]` a set with
 * ranges and leading '!' or '^'; `\` escapes. Case-insensitive when icase. */
int fl_glob_match(const char *pat, const char *s, int icase);

/* 64-bit FNV-1a of a byte string: names unix socket paths in the fd table. */
uint64_t fl_hash_bytes(const void *p, size_t n, uint64_t h);
#define FL_HASH_SEED UINT64_C(0xcbf29ce484222325)

/* splitmix64: the decision hash for p= (seed, rule, call number). */
uint64_t fl_mix64(uint64_t x);

/* Is `s` a numeric IPv4 or IPv6 literal (a lookup that never needs DNS)? */
int fl_is_numeric_host(const char *s);

/* Writes v in decimal to out (no terminator; at most 10 characters) and
 * returns the length. For code that must not call printf. */
size_t fl_utoa(uint32_t v, char *out);

#endif
