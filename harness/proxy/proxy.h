/*
 * The stream-fault proxy: a TCP proxy on the caller's libuv loop, one per
 * dependency, through which the shim's `redirect` rule sends the target's
 * connections. It applies the proxy faults ("toxics": latency, bandwidth,
 * slicer, stall, slow_close, reset_peer, limit_data, down) found in the
 * control segment and aimed at its dependency's address, re-reading them
 * whenever the segment's generation moves, so `faultline inject` and the
 * runner's timeline switch them live, on established connections too.
 *
 * It never buffers without bound: a side is not read while what waits for
 * the other side (our queue and libuv's write queue) is over a bound. Ends
 * of stream are passed on with shutdown(), so half-closed connections work
 * both ways. An error on one connection closes that connection only.
 */
#ifndef FL_PROXY_H
#define FL_PROXY_H

#include <sys/socket.h>
#include <uv.h>

#include "control/control.h"

typedef struct fl_proxy fl_proxy_t;

/* Starts a proxy to `upstream` (AF_INET or AF_INET6) listening on a free
 * port of the loopback address of the same family (127.0.0.1 or ::1).
 * `ctl` must outlive the proxy. SIGPIPE is ignored from then on unless
 * the process has a handler for it (a reset peer must not end the
 * process). Returns 0 with *out set, or a negative errno; on error
 * nothing is left open and no callback will run. */
int fl_proxy_start(uv_loop_t *loop, fl_control_t *ctl,
                   const struct sockaddr *upstream, fl_proxy_t **out);

/* What fl_proxy_start_with may choose beyond fl_proxy_start. */
struct fl_proxy_opts {
  /* The address to listen on (AF_INET or AF_INET6, port 0: a free one);
   * NULL: the loopback address of the upstream's family, a free port. */
  const struct sockaddr *listen;
  /* Which proxy faults are this proxy's (nonzero: ours); NULL: those aimed
   * at the upstream's address. Lets two proxies in front of one upstream
   * keep their faults apart. Called on the loop when the rules change. */
  int (*owns)(void *arg, const struct fl_rule *rule);
  void *arg;
  /* The protocol its connections speak ("redis", "postgres", "http"), for
   * protocol faults (redis_error...); NULL: bytes only. EPROTONOSUPPORT
   * for a name fl_proxy_speaks does not know. */
  const char *protocol;
};

/* Can a proxy follow this protocol (a dependency kind's name, or a
 * service file's `protocol:`)? */
int fl_proxy_speaks(const char *protocol);

/* The protocols a proxy can follow, ", "-separated, into buf. */
void fl_codec_names(char *buf, size_t size);

/* fl_proxy_start with options (opts may be NULL). EADDRINUSE when the
 * listen address is taken. */
int fl_proxy_start_with(uv_loop_t *loop, fl_control_t *ctl,
                        const struct sockaddr *upstream,
                        const struct fl_proxy_opts *opts, fl_proxy_t **out);

/* Re-reads the rules now rather than at the next tick (a few ms): for a
 * caller on the same loop that has just changed them and answers as if
 * they were in force. */
void fl_proxy_refresh(fl_proxy_t *p);

/* The port the proxy listens on (host byte order). */
int fl_proxy_port(const fl_proxy_t *p);

/* Fills *rule with `redirect@TARGET,to=LOOPBACK:PORT` (for a proxy on the
 * default listen address): the shim rule that
 * sends the target's connections for TARGET (the dependency as the user
 * names it, HOST:PORT or [IPV6]:PORT) to this proxy. Install it with
 * fl_control_add for as long as the proxy runs. Returns 0, or
 * FL_EBADSPEC with the parser's sentence in err. */
int fl_proxy_redirect_rule(const fl_proxy_t *p, const char *target,
                           struct fl_rule *rule, char *err, size_t errlen);

/* Closes the listener and every connection (without resets); the proxy
 * is freed once libuv has closed its handles, so the caller keeps running
 * the loop. Safe from any callback of the loop (a signal handler's too)
 * and more than once; the proxy must not be used afterwards. */
void fl_proxy_close(fl_proxy_t *p);

#endif
