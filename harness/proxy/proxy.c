/*
 * The stream-fault proxy (see proxy.h): the listener, one per dependency,
 * the proxy faults aimed at the dependency as read from the control
 * segment, and the public API. toxics.c decides which of these
 * faults hit each connection and what they do to it; conn.c moves
 * the connection's bytes.
 */
#define _GNU_SOURCE
#include "proxy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "faults/faults.h"
#include "match.h"

#define TICK_MS 5 /* how often an idle proxy looks at the generation */

/* ---- the listener ------------------------------------------------ */

/* Out of descriptors: accept the waiting connection with the reserve's
 * slot and close it (libuv's own listeners do the same). 1 if one was
 * shed, 0 when there is no reserve or nothing was waiting. */
static int shed_one(fl_proxy_t *p) {
  if (p->reserve < 0)
    return 0;
  close(p->reserve);
  int fd = accept4(p->fd, NULL, NULL, SOCK_CLOEXEC);
  if (fd >= 0) {
    close(fd);
    p->shed++;
  }
  p->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return fd >= 0;
}

static void on_listen_ready(uv_poll_t *h, int status, int events) {
  fl_proxy_t *p = h->data;
  (void)events;
  if (status < 0 || p->closing || !p->listening)
    return;
  if (fl_control_generation(p->ctl) != p->gen) {
    fl_proxy_refresh(p);
    if (!p->listening)
      return;
  }
  /* A bounded batch per wake-up, so a flood cannot starve the rest. */
  for (int i = 0; i < 64; i++) {
    int fd = accept4(p->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      fl_conn_start(p, fd);
      continue;
    }
    if (errno == ECONNABORTED || errno == EINTR)
      continue;
    if ((errno == EMFILE || errno == ENFILE) && shed_one(p))
      continue;
    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
        errno == ENOMEM) {
      /* No reserve either: wait for the tick rather than spin. */
      uv_poll_stop(&p->poll);
      p->accept_paused = 1;
    }
    break;
  }
}

/* Is every connection refused (down without toxicity, after or times)?
 * Then the listener stops listening, so connects get ECONNREFUSED. */
static int down_for_all(const fl_proxy_t *p) {
  for (int s = 0; s < FL_MAX_RULES; s++) {
    const struct prule *r = &p->rules[s];
    if ((p->active & (UINT64_C(1) << s)) && r->action == FL_ACT_DOWN &&
        r->threshold >= (UINT64_C(1) << 32) && r->after == 0 && r->times == 0)
      return 1;
  }
  return 0;
}

/* Stops or resumes listening. shutdown(SHUT_RD) on a listening socket
 * takes it out of LISTEN but keeps its explicit bind, so the port stays
 * ours and listen() brings it back; connects meanwhile are refused. */
static void update_listener(fl_proxy_t *p, uint64_t newly_active) {
  int down = down_for_all(p);
  if (down && p->listening) {
    uv_poll_stop(&p->poll);
    shutdown(p->fd, SHUT_RD);
    p->listening = 0;
  } else if (!down && !p->listening) {
    if (listen(p->fd, SOMAXCONN) != 0)
      return; /* the tick tries again */
    p->listening = 1;
    p->accept_paused = 0;
    uv_poll_start(&p->poll, UV_READABLE, on_listen_ready);
  }
  /* A down rule that just appeared counts the outage once, even with no
   * connection to close. */
  for (int s = 0; down && newly_active != 0 && s < FL_MAX_RULES; s++)
    if ((newly_active & (UINT64_C(1) << s)) &&
        p->rules[s].action == FL_ACT_DOWN)
      fl_toxics_inject(p, s, ECONNREFUSED);
}

static int aimed_at_us(const fl_proxy_t *p, const struct fl_rule *r) {
  if (!FL_ACT_IS_PROXY(r->action))
    return 0;
  if (p->owns != NULL)
    return p->owns(p->owns_arg, r);
  if (r->target != FL_TGT_INET)
    return 0;
  for (int k = 0; k < r->naddrs && k < FL_MAX_ADDRS; k++)
    if (fl_addr_match(&r->addrs[k], &p->up_addr))
      return 1;
  return 0;
}

/* Re-reads the rules after the generation moved: slots whose rule
 * changed are forgotten by every connection and decided afresh. */
void fl_proxy_refresh(fl_proxy_t *p) {
  if (p->closing)
    return;
  p->gen = fl_control_generation(p->ctl); /* before reading: no change lost */
  uint64_t changed = 0, active = 0;
  for (int s = 0; s < FL_MAX_RULES; s++) {
    struct fl_rule_view v;
    struct prule *pr = &p->rules[s];
    uint32_t id = 0;
    if (fl_control_slot(p->ctl, s, &v) && aimed_at_us(p, &v.rule))
      id = v.rule.id;
    if (id != 0)
      active |= UINT64_C(1) << s;
    if (id == pr->id)
      continue;
    changed |= UINT64_C(1) << s;
    memset(pr, 0, sizeof(*pr));
    if (id == 0)
      continue;
    const struct fl_rule *r = &v.rule;
    *pr = (struct prule){.id = id,
                         .action = r->action,
                         .dir = r->toxic.dir ? r->toxic.dir : FL_DIR_BOTH,
                         .has_ms = r->toxic.has_ms,
                         .ms = r->ms,
                         .jitter = r->toxic.jitter,
                         .size = r->toxic.size,
                         .rate = r->toxic.rate,
                         .bytes = r->toxic.bytes,
                         .threshold = r->p_threshold,
                         .after = r->after,
                         .times = r->times,
                         .proto = r->proto};
  }
  p->active = active;
  if (changed == 0)
    return;
  update_listener(p, changed & active);
  uint64_t now = now_ns();
  for (struct conn *c = p->conns, *next; c != NULL; c = next) {
    next = c->next;
    if (c->closing)
      continue;
    fl_toxics_forget(c, changed);
    fl_toxics_apply(c, now);
  }
}

static void on_tick(uv_timer_t *t) {
  fl_proxy_t *p = t->data;
  if (fl_control_generation(p->ctl) != p->gen)
    fl_proxy_refresh(p);
  if (!p->listening && !down_for_all(p))
    update_listener(p, 0); /* listen() failed before: again */
  if (p->accept_paused && p->listening) {
    p->accept_paused = 0;
    uv_poll_start(&p->poll, UV_READABLE, on_listen_ready);
  }
}

/* The loopback address of `family`, port 0. */
static socklen_t loopback(int family, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    in6->sin6_family = AF_INET6;
    in6->sin6_addr = in6addr_loopback;
    return sizeof(*in6);
  }
  struct sockaddr_in *in = (struct sockaddr_in *)ss;
  in->sin_family = AF_INET;
  in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sizeof(*in);
}

/* A listening socket bound to `ss` (port 0: one of its own choosing),
 * with the bind made explicit: only an explicitly bound port survives the
 * shutdown(SHUT_RD) that `down` uses. Two sockets with SO_REUSEADDR may
 * share a port while neither listens: the first one picks it, the second
 * binds it by number, then the first goes. */
static int bind_listener(struct sockaddr_storage *ss, socklen_t len,
                         int *port) {
  int family = ss->ss_family, one = 1, rc = 0, fd = -1;
  int picker = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (picker < 0)
    return -errno;
  if (setsockopt(picker, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(picker, (struct sockaddr *)ss, len) != 0 ||
      getsockname(picker, (struct sockaddr *)ss, &len) != 0)
    rc = -errno;
  if (rc == 0) {
    fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)ss, len) != 0)
      rc = -errno;
  }
  close(picker);
  if (rc == 0 && listen(fd, SOMAXCONN) != 0)
    rc = -errno;
  if (rc != 0) {
    if (fd >= 0)
      close(fd);
    return rc;
  }
  *port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *)ss)->sin6_port
                                   : ((struct sockaddr_in *)ss)->sin_port);
  return fd;
}

/* The listener opts ask for, or the upstream family's loopback. */
static int open_listener(const struct fl_proxy_opts *opts, int family,
                         int *port) {
  struct sockaddr_storage ss;
  socklen_t len = loopback(family, &ss);
  if (opts != NULL && opts->listen != NULL) {
    family = opts->listen->sa_family;
    if (family != AF_INET && family != AF_INET6)
      return -EAFNOSUPPORT;
    len = family == AF_INET6 ? sizeof(struct sockaddr_in6)
                             : sizeof(struct sockaddr_in);
    memcpy(&ss, opts->listen, len);
  }
  return bind_listener(&ss, len, port);
}

int fl_proxy_start_with(uv_loop_t *loop, fl_control_t *ctl,
                        const struct sockaddr *upstream,
                        const struct fl_proxy_opts *opts, fl_proxy_t **out) {
  socklen_t len = upstream->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                  : sizeof(struct sockaddr_in);
  if (upstream->sa_family != AF_INET && upstream->sa_family != AF_INET6)
    return -EAFNOSUPPORT;
  /* libuv writes with write(): a peer that reset would raise SIGPIPE,
   * whose default action ends the process. A handler of the caller's own
   * is left alone; uv_spawn resets dispositions in children. */
  struct sigaction old;
  if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
    signal(SIGPIPE, SIG_IGN);
  fl_proxy_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return -ENOMEM;
  p->loop = loop;
  p->ctl = ctl;
  p->seed = fl_control_seed(ctl);
  memcpy(&p->upstream, upstream, len);
  fl_addr_from_sockaddr(upstream, len, &p->up_addr);
  if (opts != NULL) {
    p->owns = opts->owns;
    p->owns_arg = opts->arg;
    if (opts->protocol != NULL &&
        (p->codec = fl_codec_find(opts->protocol)) == NULL) {
      free(p);
      return -EPROTONOSUPPORT;
    }
  }
  p->fd = open_listener(opts, upstream->sa_family, &p->port);
  if (p->fd < 0) {
    int rc = p->fd;
    free(p);
    return rc;
  }
  p->reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int rc = uv_poll_init(loop, &p->poll, p->fd);
  if (rc != 0) {
    close(p->fd);
    if (p->reserve >= 0)
      close(p->reserve);
    free(p);
    return rc;
  }
  uv_timer_init(loop, &p->tick);
  p->poll.data = p->tick.data = p;
  p->handles = 2;
  p->listening = 1;
  p->gen = fl_control_generation(ctl) - 1; /* read the rules now */
  fl_proxy_refresh(p);
  if (p->listening)
    uv_poll_start(&p->poll, UV_READABLE, on_listen_ready);
  uv_timer_start(&p->tick, on_tick, TICK_MS, TICK_MS);
  *out = p;
  return 0;
}

int fl_proxy_start(uv_loop_t *loop, fl_control_t *ctl,
                   const struct sockaddr *upstream, fl_proxy_t **out) {
  return fl_proxy_start_with(loop, ctl, upstream, NULL, out);
}

int fl_proxy_port(const fl_proxy_t *p) { return p->port; }

int fl_proxy_speaks(const char *protocol) {
  return protocol != NULL && fl_codec_find(protocol) != NULL;
}

int fl_proxy_redirect_rule(const fl_proxy_t *p, const char *target,
                           struct fl_rule *rule, char *err, size_t errlen) {
  struct fl_rule_draft d;
  fl_draft_init(&d, fl_fault_of_action(FL_ACT_REDIRECT));
  /* The proxy's own listener, on the loopback of its upstream's family. */
  struct fl_addr to = {.port = (uint16_t)p->port};
  if (p->upstream.ss_family == AF_INET6) {
    to.family = AF_INET6;
    to.prefix = 128;
    to.addr[15] = 1;
  } else {
    to.family = AF_INET;
    to.prefix = 32;
    memcpy(to.addr, "\x7f\x00\x00\x01", 4);
  }
  fl_draft_redirect(&d, &to);
  int rc = fl_rule_aim(&d.rule, target, err, errlen);
  if (rc == 0)
    rc = fl_draft_finish(&d, err, errlen);
  if (rc != 0)
    return rc;
  *rule = d.rule;
  rule->flags |= FL_RULE_PINNED; /* `faultline clear` must not drop it */
  /* For `faultline status`: what the rule says, in spec words. */
  snprintf(rule->spec, sizeof(rule->spec), "redirect@%s,to=%s:%d", target,
           to.family == AF_INET6 ? "[::1]" : "127.0.0.1", p->port);
  return 0;
}

void fl_proxy_maybe_free(fl_proxy_t *p) {
  if (p->closing && p->handles == 0 && p->conns == NULL)
    free(p);
}

static void on_proxy_handle_closed(uv_handle_t *h) {
  fl_proxy_t *p = h->data;
  p->handles--;
  fl_proxy_maybe_free(p);
}

void fl_proxy_close(fl_proxy_t *p) {
  if (p == NULL || p->closing)
    return;
  p->closing = 1;
  /* Closing the poll handle stops watching the fd at once. */
  uv_close((uv_handle_t *)&p->poll, on_proxy_handle_closed);
  uv_close((uv_handle_t *)&p->tick, on_proxy_handle_closed);
  close(p->fd);
  p->fd = -1;
  if (p->reserve >= 0)
    close(p->reserve);
  p->reserve = -1;
  for (struct conn *c = p->conns; c != NULL; c = c->next)
    fl_conn_close(c, END_CLOSE);
}
