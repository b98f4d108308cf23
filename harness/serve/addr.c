/*
 * Addresses as Toxiproxy clients write them: HOST:PORT, [V6]:PORT, or
 * :PORT for loopback. Names are resolved here, once, when a proxy is
 * created (Toxiproxy resolves the upstream on each connection).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_int.h"

/* Splits text into host (without brackets) and port; 0 or -1. */
static int split(const char *text, char *host, size_t hsize, long *port) {
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon[1] == '\0')
    return -1;
  const char *h = text;
  size_t hl = (size_t)(colon - text);
  if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
    h++;
    hl -= 2;
  } else if (memchr(h, ':', hl) != NULL) {
    return -1; /* an IPv6 address needs its brackets */
  }
  if (hl >= hsize)
    return -1;
  memcpy(host, h, hl);
  host[hl] = '\0';
  char *end;
  errno = 0;
  *port = strtol(colon + 1, &end, 10);
  if (errno != 0 || *end != '\0' || *port < 0 || *port > 65535)
    return -1;
  return 0;
}

int fl_serve_parse_addr(const char *text, struct sockaddr_storage *out,
                        char *err, size_t errlen) {
  char host[256];
  long port;
  if (split(text, host, sizeof(host), &port) != 0) {
    snprintf(err, errlen,
             "bad address '%s' (allowed: HOST:PORT, [IPV6]:PORT, :PORT)", text);
    return -EINVAL;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  int rc = getaddrinfo(host[0] ? host : "127.0.0.1", NULL, &hints, &res);
  if (rc != 0 || res == NULL) {
    snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
    return -EINVAL;
  }
  memset(out, 0, sizeof(*out));
  memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  if (out->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
  else
    ((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
  return 0;
}

int fl_serve_is_loopback(const struct sockaddr *sa) {
  if (sa->sa_family == AF_INET)
    return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) ==
           127;
  if (sa->sa_family == AF_INET6)
    return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
  return 0;
}

void fl_addr_text(const struct sockaddr *sa, char *out, size_t size) {
  char ip[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    port = ntohs(in6->sin6_port);
    snprintf(out, size, "[%s]:%d", ip, port);
    return;
  }
  const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
  inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
  snprintf(out, size, "%s:%d", ip, ntohs(in->sin_port));
}
