/*
 * The Redis codec (row "redis" of codec.c): follows RESP (resp.c) both
 * ways on every connection and, while a redis_error fault acts on the
 * connection, answers commands with an error reply of ours instead of
 * forwarding them.
 *
 * Order. Replies must reach the client in command order, pipelining
 * included, so a reply of ours waits behind the replies the server still
 * owes for earlier commands: a FIFO of our replies, each with the number
 * of server replies to let through before it (`wait`), and `owed`, the
 * server replies owed after the last of ours. It is placed only between
 * two whole server replies. RESP3 pushes ('>') are out of band: passed on,
 * never counted.
 *
 * Idle cost. With no redis_error on the connection a command is read
 * (framing, its name) and handed on as it came, chunk by chunk. With one,
 * a command is held from its first byte until its name is known (a few
 * dozen bytes), then forwarded or dropped.
 *
 * What is never answered by us, and why:
 * - MULTI, DISCARD, and the commands queued inside MULTI: a real server
 *   refusing a queued command (LOADING, OOM...) makes EXEC fail with
 *   EXECABORT, so the transaction as a whole is what fails. We hit EXEC
 *   instead (when any queued command or EXEC matches): EXEC is replaced by
 *   DISCARD on the way up, so the server drops the transaction, and the
 *   server's +OK to it by our error. The client sees its +QUEUED replies
 *   and then the error for EXEC, as from a server that refused at EXEC.
 * - SUBSCRIBE & co, MONITOR, SYNC/PSYNC, RESET and CLIENT REPLY: past them
 *   the server sends replies no command asked for (or none for some), so
 *   replies can no longer be counted: the connection is left alone from
 *   then on ("blind"), never guessed at.
 * - AUTH, HELLO, CLIENT, QUIT (the connection's handshake, which a server
 *   loading or out of memory still serves): only when `match` names them.
 * HELLO 3 (RESP3) needs nothing: both versions are read, and an error
 * reply is the same in both.
 *
 * Bytes that are not RESP: from the client, passed on untouched and no
 * more commands are answered (the server answers them with its protocol
 * error); from the server, the same unless a reply of ours still waits
 * for its place, which is then lost: the connection is reset.
 */
#define _GNU_SOURCE
#include "proxy_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "resp.h"

#define HOLD_MAX 256

/* A reply of ours, waiting for its place. */
struct synth {
  struct synth *next;
  uint64_t wait; /* server replies to let through before it */
  int swallow;   /* it replaces the server reply after those (EXEC) */
  size_t len;
  char data[];
};

struct rstate {
  struct fl_resp up, down;
  uint64_t cmds;     /* commands read: numbers them for p= */
  uint64_t owed;     /* server replies owed after the last synth */
  uint64_t tx_match; /* slots of rules a command queued in MULTI matched */
  struct synth *head, *tail;
  unsigned hold : 1, drop : 1, multi : 1, blind : 1, lost_up : 1, lost_down : 1,
      swallowing : 1, push : 1;
  size_t nheld;
  char held[HOLD_MAX];
};

/* The texts real Redis sends (server.c's shared error objects). */
static const struct {
  const char *name, *text;
} presets[] = {
    {"LOADING", "LOADING Redis is loading the dataset in memory"},
    {"OOM", "OOM command not allowed when used memory > 'maxmemory'."},
    {"READONLY", "READONLY You can't write against a read only replica."},
    {"BUSY", "BUSY Redis is busy running a script. You can only call "
             "SCRIPT KILL or SHUTDOWN NOSAVE."},
    {"MASTERDOWN", "MASTERDOWN Link with MASTER is down and "
                   "replica-serve-stale-data is set to 'no'."},
    {"NOAUTH", "NOAUTH Authentication required."},
};

static const char *const blinding[] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE",
                                       "MONITOR",   "SYNC",       "PSYNC",
                                       "RESET",     NULL};
static const char *const handshake[] = {"AUTH", "HELLO", "CLIENT", "QUIT",
                                        NULL};

static int among(const char *const *list, const char *name) {
  for (; *list != NULL; list++)
    if (strcmp(*list, name) == 0)
      return 1;
  return 0;
}

/* Is name one of the words of list (separated by ',', '|' or spaces)? */
static int listed(const char *list, const char *name) {
  size_t len = strlen(name);
  const char *p = list;
  while (*p != '\0') {
    size_t w = strcspn(p, ",| ");
    if (w == len && strncasecmp(p, name, len) == 0)
      return 1;
    p += w;
    p += strspn(p, ",| ");
  }
  return 0;
}

/* ---- our replies, in their place ------------------------------- */

/* "-TEXT\r\n" from the rule's reply= (a preset's name, or the text). */
static struct synth *synth_new(const char *reply, int swallow) {
  const char *text = reply;
  for (size_t i = 0; i < sizeof(presets) / sizeof(presets[0]); i++)
    if (strcasecmp(reply, presets[i].name) == 0)
      text = presets[i].text;
  if (text[0] == '-')
    text++;
  if (text[0] == '\0')
    text = "ERR injected by faultline";
  size_t n = strlen(text);
  struct synth *s = calloc(1, sizeof(*s) + n + 3);
  if (s == NULL)
    return NULL;
  s->swallow = swallow;
  s->data[0] = '-';
  for (size_t i = 0; i < n; i++) /* a line break would end the reply */
    s->data[1 + i] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
  memcpy(s->data + 1 + n, "\r\n", 2);
  s->len = n + 3;
  return s;
}

static void pop(struct rstate *st) {
  struct synth *s = st->head;
  st->head = s->next;
  if (st->head == NULL)
    st->tail = NULL;
  free(s);
}

/* Sends our replies whose turn has come; the server's side is between
 * two replies. */
static void emit_ready(struct conn *c, struct rstate *st) {
  while (st->head != NULL && st->head->wait == 0 && !st->head->swallow &&
         !c->closing) {
    fl_conn_send(c, DOWN, st->head->data, st->head->len);
    pop(st);
  }
}

/* A whole server reply went by (or, swallowing, was replaced): counts
 * it; sending what became due is the caller's. */
static void reply_done(struct rstate *st) {
  if (st->swallowing) {
    st->swallowing = 0;
    st->head->swallow = 0; /* now sent as a reply of ours */
  } else if (st->head != NULL) {
    st->head->wait--;
  } else if (st->owed > 0) {
    st->owed--;
  }
}

/* Is a reply of ours due at this boundary? */
static int due(const struct rstate *st) {
  return st->head != NULL && st->head->wait == 0;
}

static void queue(struct conn *c, struct rstate *st, struct synth *s) {
  s->wait = st->owed;
  st->owed = 0;
  if (st->tail != NULL)
    st->tail->next = s;
  else
    st->head = s;
  st->tail = s;
  if (fl_resp_idle(&st->down) && !st->swallowing)
    emit_ready(c, st);
}

/* ---- the client's side ----------------------------------------- */

struct pick {
  struct conn *c;
  struct rstate *st;
  const char *name;
};

static int matches(const struct prule *r, void *arg) {
  const struct pick *k = arg;
  int slot = (int)(r - k->c->p->rules);
  if (k->st->multi && (k->st->tx_match & (UINT64_C(1) << slot)))
    return 1; /* EXEC, for a queued command */
  if (r->proto.match[0] == '\0')
    return !among(handshake, k->name);
  return listed(r->proto.match, k->name);
}

/* Notes which rules a command queued in MULTI matches: EXEC answers. */
static void note_queued(struct conn *c, struct rstate *st, const char *name) {
  struct pick k = {c, st, name};
  for (int i = 0; i < c->nhits; i++) {
    const struct prule *r = &c->p->rules[c->hits[i].slot];
    if (r->action == FL_ACT_REDIS_ERROR && matches(r, &k))
      st->tx_match |= UINT64_C(1) << c->hits[i].slot;
  }
}

/* The rule that answers this command, or NULL: forward it. */
static const struct prule *pick(struct conn *c, struct rstate *st,
                                const char *name) {
  int exec = strcmp(name, "EXEC") == 0;
  if (st->multi && !exec && strcmp(name, "DISCARD") != 0) {
    note_queued(c, st, name);
    return NULL;
  }
  if (among(blinding, name) || strcmp(name, "MULTI") == 0 ||
      strcmp(name, "DISCARD") == 0)
    return NULL;
  struct pick k = {c, st, name};
  return fl_toxics_proto_hit(c, UINT64_C(1) << FL_ACT_REDIS_ERROR, st->cmds,
                             matches, &k);
}

static int armed(const struct conn *c) {
  for (int i = 0; i < c->nhits; i++)
    if (c->p->rules[c->hits[i].slot].action == FL_ACT_REDIS_ERROR)
      return 1;
  return 0;
}

static void send_held(struct conn *c, struct rstate *st) {
  fl_conn_send(c, UP, st->held, st->nheld);
  st->nheld = 0;
  st->hold = 0;
}

/* The command's name is known: forward it or answer it. [*from, start)
 * are bytes of this chunk decided as forwarded and not yet handed on
 * (they go together, at the chunk's end or before a reply of ours: one
 * write, not one per command); the command began at start. */
static int on_name(struct conn *c, struct rstate *st, const char *data,
                   size_t *from, size_t start, size_t at) {
  const char *name = st->up.word[0];
  const struct prule *r = st->hold ? pick(c, st, name) : NULL;
  int exec = strcmp(name, "EXEC") == 0;
  st->cmds++;
  if (r != NULL) {
    struct synth *s = synth_new(r->proto.reply, st->multi && exec);
    if (s == NULL)
      return -ENOMEM;
    fl_conn_send(c, UP, data + *from, start - *from);
    st->nheld = 0;
    st->hold = 0;
    st->drop = 1;
    *from = at;
    if (s->swallow) {
      static const char discard[] = "*1\r\n$7\r\nDISCARD\r\n";
      fl_conn_send(c, UP, discard, sizeof(discard) - 1);
    }
    queue(c, st, s);
  } else {
    if (st->hold) /* its start, held from an earlier chunk, goes first */
      send_held(c, st);
    st->owed++;
  }
  if (strcmp(name, "MULTI") == 0) {
    st->multi = 1;
    st->tx_match = 0;
  } else if (exec || strcmp(name, "DISCARD") == 0) {
    st->multi = 0;
  } else if (among(blinding, name)) {
    st->blind = 1;
  }
  return 0;
}

/* The end of a command. */
static void on_end(struct conn *c, struct rstate *st, size_t *from, size_t at) {
  if (st->drop) {
    st->drop = 0;
    *from = at;
  }
  if (st->hold) /* no name (an empty command): nothing to answer */
    send_held(c, st);
  if (strcmp(st->up.word[0], "CLIENT") == 0 &&
      strcmp(st->up.word[1], "REPLY") == 0)
    st->blind = 1; /* OFF and SKIP: replies the server never sends */
}

/* The rest of a chunk: handed on, and the undecided command from start
 * held (or, too long to hold, forwarded unanswered); nothing of a
 * command being dropped. */
static void up_tail(struct conn *c, struct rstate *st, const char *data,
                    size_t from, size_t start, size_t n) {
  if (st->drop)
    return;
  if (st->hold && n - start <= HOLD_MAX - st->nheld) {
    fl_conn_send(c, UP, data + from, start - from);
    memcpy(st->held + st->nheld, data + start, n - start);
    st->nheld += n - start;
    return;
  }
  if (st->hold)
    send_held(c, st);
  fl_conn_send(c, UP, data + from, n - from);
}

static int feed_up(struct conn *c, struct rstate *st, const char *data,
                   size_t n) {
  /* A command held from an earlier chunk began, for this one, at 0. */
  size_t i = 0, from = 0, start = 0;
  while (i < n && !st->lost_up && !c->closing) {
    if (fl_resp_idle(&st->up) && !st->blind && armed(c)) {
      st->hold = 1;
      start = i;
    }
    int ev;
    i += fl_resp_feed(&st->up, data + i, n - i, &ev);
    if (ev & FL_RESP_BAD) {
      st->lost_up = 1;
      if (st->drop)
        from = i;
      st->drop = 0;
      if (st->hold)
        send_held(c, st);
      break;
    }
    if ((ev & FL_RESP_NAME) && on_name(c, st, data, &from, start, i) != 0)
      return -ENOMEM;
    if (ev & FL_RESP_END)
      on_end(c, st, &from, i);
  }
  if (!c->closing)
    up_tail(c, st, data, from, start, n);
  return 0;
}

/* ---- the server's side ----------------------------------------- */

/* Server replies are handed on a chunk at a time, as they came, cut
 * only where a reply of ours goes in or one of theirs is replaced. */
static int feed_down(struct conn *c, struct rstate *st, const char *data,
                     size_t n) {
  size_t i = 0, from = 0;
  while (i < n && !st->lost_down && !c->closing) {
    if (fl_resp_idle(&st->down)) {
      st->push = data[i] == '>';
      if (due(st)) {
        fl_conn_send(c, DOWN, data + from, i - from);
        from = i;
        emit_ready(c, st);
        if (!st->push && due(st) && st->head->swallow)
          st->swallowing = 1;
      }
    }
    int ev;
    i += fl_resp_feed(&st->down, data + i, n - i, &ev);
    if (st->swallowing)
      from = i;
    if (ev & FL_RESP_BAD) {
      if (st->head != NULL || st->swallowing)
        return -EPROTO; /* our replies can no longer be placed */
      st->lost_down = 1;
      st->blind = 1;
    } else if ((ev & FL_RESP_END) && !st->push) {
      reply_done(st);
      if (due(st) && !st->head->swallow) {
        fl_conn_send(c, DOWN, data + from, i - from);
        from = i;
        emit_ready(c, st);
      }
    }
  }
  if (!st->swallowing)
    fl_conn_send(c, DOWN, data + from, n - from);
  if (fl_resp_idle(&st->down))
    emit_ready(c, st);
  return 0;
}

/* ---- the codec --------------------------------------------------- */

static int redis_feed(struct conn *c, void *state, int d, const char *data,
                      size_t n) {
  struct rstate *st = state;
  if (!st->up.client) { /* the state is zeroed: first bytes */
    fl_resp_init(&st->up, 1);
    fl_resp_init(&st->down, 0);
  }
  if (d == UP)
    return st->lost_up ? (fl_conn_send(c, UP, data, n), 0)
                       : feed_up(c, st, data, n);
  return st->lost_down ? (fl_conn_send(c, DOWN, data, n), 0)
                       : feed_down(c, st, data, n);
}

static void redis_fini(void *state) {
  struct rstate *st = state;
  while (st->head != NULL)
    pop(st);
}

const struct fl_codec fl_codec_redis = {
    .name = "redis",
    .state_size = sizeof(struct rstate),
    .feed = redis_feed,
    .fini = redis_fini,
};
