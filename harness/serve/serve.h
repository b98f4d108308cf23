/*
 * faultline serve: a long-running control server whose HTTP API is a
 * compatible superset of Toxiproxy 2.x's (docs: README, "From your tests
 * and CI"). Toxiproxy clients create proxies and toxics; the proxies are
 * faultline's own (proxy/), each toxic one proxy rule in the server's
 * control segment. Beyond Toxiproxy: /shim switches shim faults in
 * processes started with `faultline exec --control PATH`, and each proxy
 * reports the faults it delivered.
 *
 * Everything runs on the caller's libuv loop, the HTTP server too.
 */
#ifndef FL_SERVE_H
#define FL_SERVE_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "control/control.h"

typedef struct fl_serve fl_serve_t;

struct fl_serve_opts {
  const struct sockaddr *listen; /* AF_INET or AF_INET6; port 0: a free one */
  const char *token; /* Authorization: Bearer TOKEN; NULL: none (loopback) */
};

/* Starts the server. A listen address other than loopback needs a token.
 * `ctl` must outlive the server. Returns 0 with *out set, or a negative
 * errno (FL_EUSAGE for a missing token) with one sentence in err; on
 * error nothing is left open. */
int fl_serve_start(uv_loop_t *loop, fl_control_t *ctl,
                   const struct fl_serve_opts *opts, fl_serve_t **out,
                   char *err, size_t errlen);

/* The port the HTTP server listens on. */
int fl_serve_port(const fl_serve_t *s);

/* Stops answering, closes every proxy (their connections too) and clears
 * their rules; freed once libuv has closed the handles, so the caller
 * keeps running the loop. Safe from a signal callback, and more than once. */
void fl_serve_close(fl_serve_t *s);

/* Parses HOST:PORT ([V6]:PORT; HOST may be a name, resolved here; an
 * empty HOST is loopback) into *out. Returns 0, or -EINVAL with one
 * sentence in err. */
int fl_serve_parse_addr(const char *text, struct sockaddr_storage *out,
                        char *err, size_t errlen);

/* Is the address 127.0.0.0/8 or ::1? */
int fl_serve_is_loopback(const struct sockaddr *sa);

#endif
