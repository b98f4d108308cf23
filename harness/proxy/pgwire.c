/*
 * The PostgreSQL wire protocol (version 3) for the proxy's codec hook
 * (struct fl_codec in proxy_int.h): the framing followed from the first
 * byte both ways, and pg_error answered as a server would.
 *
 * Start-up: the client's first messages have no type byte (length, code):
 * SSLRequest and GSSENCRequest get a one-byte answer ('S'/'G': the stream
 * turns encrypted and we only pass it on; 'N': go on), CancelRequest
 * connections pass through, a StartupMessage is held whole (it is small)
 * so that stage=startup can refuse it with a FATAL ErrorResponse, and the
 * server never sees it. Then typed messages (type, length) both ways.
 *
 * Queries: a Query, or the first extended-protocol message after a Sync,
 * is one message for p=/after=/times=; match= looks at the text of a
 * Query or Parse whole in one read (a split one is not matched: bytes are
 * not held back to wait for the rest). A hit is not forwarded: the client
 * gets ErrorResponse, then ReadyForQuery ('E' inside a transaction block,
 * 'I' outside, from the server's last ReadyForQuery) or, for FATAL, the
 * end of the connection. Extended messages up to Sync are swallowed and
 * ReadyForQuery answers the Sync, as a server does after an error. Our
 * answers wait behind the replies still owed to the client (pipelining):
 * each Query/Sync forwarded owes one ReadyForQuery.
 *
 * Bytes we cannot follow (a length out of range) end the following: the
 * connection passes bytes on untouched from there, never guessed at.
 */
#define _GNU_SOURCE
#include "pgwire.h"
#include "proxy_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PG_SSL_REQUEST 80877103u
#define PG_GSSENC_REQUEST 80877104u
#define PG_CANCEL_REQUEST 80877102u
#define PG_MAX_STARTUP 10000u /* the server's own limit */
#define PG_MAX_MESSAGE 0x40000000u

/* One direction's framing. */
struct reader {
  uint32_t left;  /* body bytes of the current message still to come */
  uint8_t hdr[5]; /* a header split across reads */
  uint8_t have;   /* its bytes so far */
  char type;      /* the current message's type */
  uint8_t drop;   /* the current message is swallowed */
};

/* One of our answers, waiting until the server has answered every
 * Query/Sync forwarded before it. */
enum item_kind { IT_BYTES, IT_READY, IT_CLOSE };
struct item {
  struct item *next;
  uint64_t due; /* goes once `answered` reaches it */
  enum item_kind kind;
  size_t len;
  char data[];
};

struct pg {
  uint8_t pass;        /* not followed (TLS, cancel, lost): bytes pass */
  uint8_t typed;       /* UP: the start-up phase is over */
  uint8_t ssl_answer;  /* DOWN: a one-byte answer to SSL/GSSENC is owed */
  uint8_t established; /* the first ReadyForQuery came */
  uint8_t batch;       /* extended messages forwarded since the last Sync */
  uint8_t swallow;     /* extended messages dropped until Sync */
  uint8_t ending;      /* a FATAL of ours is on its way: the client's bytes
                        * are dropped */
  char txn;            /* the server's last transaction status */
  uint64_t forwarded;  /* Query/Sync/StartupMessage forwarded */
  uint64_t answered;   /* ReadyForQuery from the server */
  uint64_t queries;    /* queries seen: numbers p= draws */
  struct reader rd[2];
  char *held; /* UP: the start-up message being gathered */
  uint32_t held_len, held_have;
  struct item *head, *tail;
};

static uint32_t be32(const uint8_t *b) {
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 |
         b[3];
}

static void put_be32(char *b, uint32_t v) {
  b[0] = (char)(v >> 24), b[1] = (char)(v >> 16), b[2] = (char)(v >> 8),
  b[3] = (char)v;
}

/* ---- what a server would say --------------------------------------- */

static const struct {
  const char *code, *text;
} texts[] = {
    {"53300", "sorry, too many clients already"},
    {"57P03", "the database system is starting up"},
    {"28P01", "password authentication failed for user \"%s\""},
    {"28000", "role \"%s\" does not exist"},
    {"3D000", "database \"%s\" does not exist"},
    {"57P01", "terminating connection due to administrator command"},
    {"57P02", "terminating connection because of crash of another server "
              "process"},
    {"40001", "could not serialize access due to concurrent update"},
    {"40P01", "deadlock detected"},
    {"08006", "connection failure"},
    {"53100", "could not extend file: No space left on device"},
    {"53200", "out of memory"},
    {"57014", "canceling statement due to statement timeout"},
};

/* Codes whose natural moment is the start of a session. */
static int startup_code(const char *code) {
  return strcmp(code, "53300") == 0 || strcmp(code, "57P03") == 0 ||
         strncmp(code, "28", 2) == 0 || strcmp(code, "3D000") == 0;
}

int fl_pg_stage(const struct fl_proto *pr) {
  if (pr->stage != FL_STAGE_ANY)
    return pr->stage;
  return startup_code(pr->code) ? FL_STAGE_STARTUP : FL_STAGE_QUERY;
}

int fl_pg_severity(const struct fl_proto *pr, int stage) {
  if (pr->severity != 0)
    return pr->severity;
  if (stage == FL_STAGE_STARTUP || pr->close == 1)
    return FL_PG_FATAL;
  if (pr->close == 2)
    return FL_PG_ERROR;
  /* Shutdowns end the session; other errors leave it. */
  return strncmp(pr->code, "57P0", 4) == 0 ? FL_PG_FATAL : FL_PG_ERROR;
}

/* Appends one field (type, text, NUL) to b at *at, within cap. */
static void field(char *b, size_t cap, size_t *at, char type, const char *v) {
  size_t n = strlen(v);
  if (*at + n + 2 > cap)
    n = *at + 2 < cap ? cap - *at - 2 : 0;
  if (*at + 2 > cap)
    return;
  b[(*at)++] = type;
  memcpy(b + *at, v, n);
  *at += n;
  b[(*at)++] = '\0';
}

size_t fl_pg_error_response(const struct fl_proto *pr, int severity,
                            const char *user, const char *database, char *out,
                            size_t cap) {
  static const char *const sev[] = {"ERROR", "ERROR", "FATAL", "PANIC"};
  const char *s = sev[severity >= 1 && severity <= 3 ? severity : 1];
  const char *code = pr->code[0] != '\0' ? pr->code : "XX000";
  char msg[600];
  if (pr->reply[0] != '\0') {
    snprintf(msg, sizeof(msg), "%s", pr->reply);
  } else {
    const char *t = "injected by faultline";
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
      if (strcmp(texts[i].code, code) == 0)
        t = texts[i].text;
    const char *arg = strcmp(code, "3D000") == 0 ? database : user;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(msg, sizeof(msg), t, arg != NULL ? arg : "");
#pragma GCC diagnostic pop
  }
  if (cap < 6)
    return 0;
  size_t at = 5;
  /* The fields a server sends first: localized and plain severity, the
   * code, the message (file, line and routine are optional). */
  field(out, cap - 1, &at, 'S', s);
  field(out, cap - 1, &at, 'V', s);
  field(out, cap - 1, &at, 'C', code);
  field(out, cap - 1, &at, 'M', msg);
  out[at++] = '\0';
  out[0] = 'E';
  put_be32(out + 1, (uint32_t)(at - 1));
  return at;
}

/* ---- our answers, in order ---------------------------------------- */

static int queue(struct pg *s, enum item_kind kind, const char *data,
                 size_t len) {
  struct item *it = malloc(sizeof(*it) + len);
  if (it == NULL)
    return -ENOMEM;
  it->next = NULL;
  it->due = s->forwarded;
  it->kind = kind;
  it->len = len;
  if (len > 0)
    memcpy(it->data, data, len);
  if (s->tail != NULL)
    s->tail->next = it;
  else
    s->head = it;
  s->tail = it;
  return 0;
}

/* Sends the answers whose turn has come, when the client's stream is
 * between two of the server's messages. */
static void emit_due(struct conn *c, struct pg *s) {
  const struct reader *down = &s->rd[DOWN];
  if (down->left > 0 || down->have > 0 || s->ssl_answer)
    return;
  while (s->head != NULL && s->head->due <= s->answered && !c->closing) {
    struct item *it = s->head;
    s->head = it->next;
    if (s->head == NULL)
      s->tail = NULL;
    if (it->kind == IT_BYTES) {
      fl_conn_send(c, DOWN, it->data, it->len);
    } else if (it->kind == IT_READY) {
      char z[6] = {'Z', 0, 0, 0, 5, s->txn == 'I' ? 'I' : 'E'};
      fl_conn_send(c, DOWN, z, sizeof(z));
    } else {
      fl_conn_end(c, END_CLOSE);
    }
    free(it);
  }
}

static void free_items(struct pg *s) {
  while (s->head != NULL) {
    struct item *it = s->head;
    s->head = it->next;
    free(it);
  }
  s->tail = NULL;
}

/* ---- deciding ------------------------------------------------------ */

/* What a rule must accept: the stage, and for match= the query's text
 * (NULL when not whole in this read, or not in this message). */
struct pick {
  int stage;
  const char *sql;
  size_t len;
};

/* Does text (len bytes) hold needle (nlen bytes), ignoring case? */
static int holds(const char *text, size_t len, const char *needle,
                 size_t nlen) {
  for (size_t i = 0; nlen > 0 && i + nlen <= len; i++)
    if (strncasecmp(text + i, needle, nlen) == 0)
      return 1;
  return 0;
}

/* match=A|B: queries whose text holds A or B (any case). */
static int matches(const char *match, const char *sql, size_t len) {
  for (const char *at = match; *at != '\0';) {
    size_t n = strcspn(at, "|");
    if (holds(sql, len, at, n))
      return 1;
    at += n + (at[n] == '|');
  }
  return 0;
}

static int pick_filter(const struct prule *r, void *arg) {
  const struct pick *k = arg;
  if (fl_pg_stage(&r->proto) != k->stage)
    return 0;
  return r->proto.match[0] == '\0' ||
         (k->sql != NULL && matches(r->proto.match, k->sql, k->len));
}

/* The pg_error rule hitting this message at this stage, or NULL. */
static const struct prule *hit(struct conn *c, struct pg *s, int stage,
                               const char *sql, size_t len) {
  if (c->nhits == 0)
    return NULL;
  struct pick k = {stage, sql, len};
  return fl_toxics_proto_hit(c, UINT64_C(1) << FL_ACT_PG_ERROR, s->queries++,
                             pick_filter, &k);
}

/* The SQL of a Query or Parse whose body (len bytes) is whole in this
 * read, else NULL. */
static const char *query_text(char type, const char *body, size_t len,
                              size_t avail, size_t *n) {
  if (avail < len || (type != 'Q' && type != 'P'))
    return NULL;
  if (type == 'P') { /* the statement's name first */
    size_t name = strnlen(body, len);
    if (name >= len)
      return NULL;
    body += name + 1;
    len -= name + 1;
  }
  *n = strnlen(body, len);
  return body;
}

/* Queues the error for a query the rule hit: ErrorResponse, then the end
 * of the session (FATAL) or, with `ready`, a ReadyForQuery. */
static int answer_query(struct conn *c, struct pg *s, const struct prule *r,
                        int ready) {
  char b[1024];
  int sev = fl_pg_severity(&r->proto, FL_STAGE_QUERY);
  size_t n = fl_pg_error_response(&r->proto, sev, NULL, NULL, b, sizeof(b));
  int rc = queue(s, IT_BYTES, b, n);
  if (rc == 0 && (sev >= FL_PG_FATAL || r->proto.close == 1)) {
    s->ending = 1;
    rc = queue(s, IT_CLOSE, NULL, 0);
  } else if (rc == 0 && ready) {
    rc = queue(s, IT_READY, NULL, 0);
  }
  if (rc == 0)
    emit_due(c, s);
  return rc;
}

/* The value of parameter `name` in a StartupMessage's body, or NULL. */
static const char *startup_param(const char *m, uint32_t len,
                                 const char *name) {
  uint32_t at = 8;
  while (at < len && m[at] != '\0') {
    const char *k = m + at;
    size_t kl = strnlen(k, len - at);
    if (at + kl + 1 >= len)
      return NULL;
    const char *v = k + kl + 1;
    size_t vl = strnlen(v, len - (at + kl + 1));
    if (at + kl + 1 + vl >= len)
      return NULL;
    if (strcmp(k, name) == 0)
      return v;
    at += (uint32_t)(kl + vl + 2);
  }
  return NULL;
}

/* A whole start-up phase message from the client: forward it, or refuse
 * the session as a server would. */
static int startup_message(struct conn *c, struct pg *s) {
  const char *m = s->held;
  uint32_t len = s->held_len;
  uint32_t code = be32((const uint8_t *)m + 4);
  if (code == PG_SSL_REQUEST || code == PG_GSSENC_REQUEST) {
    s->ssl_answer = 1;
    fl_conn_send(c, UP, m, len);
    return 0;
  }
  if (code >> 16 != 3) { /* CancelRequest, or a protocol we do not know */
    s->pass = 1;
    fl_conn_send(c, UP, m, len);
    return 0;
  }
  s->typed = 1;
  const struct prule *r = hit(c, s, FL_STAGE_STARTUP, NULL, 0);
  if (r == NULL) {
    s->forwarded++; /* its ReadyForQuery ends the start-up */
    fl_conn_send(c, UP, m, len);
    return 0;
  }
  /* The server, never told, sees a connection that closes at once. */
  char b[1024];
  size_t n = fl_pg_error_response(
      &r->proto, fl_pg_severity(&r->proto, FL_STAGE_STARTUP),
      startup_param(m, len, "user"), startup_param(m, len, "database"), b,
      sizeof(b));
  s->ending = 1;
  fl_conn_send(c, DOWN, b, n);
  fl_conn_end(c, END_CLOSE);
  return 0;
}

/* ---- following ----------------------------------------------------- */

/* What to do with a client message whose header just came: forward
 * (0) or drop (1); a negative errno on failure. */
static int client_message(struct conn *c, struct pg *s, char type,
                          const char *body, size_t len, size_t avail) {
  if (s->ending)
    return 1;
  if (!s->established)
    return 0;
  size_t n = 0;
  const char *sql = query_text(type, body, len, avail, &n);
  switch (type) {
  case 'Q': {
    const struct prule *r = hit(c, s, FL_STAGE_QUERY, sql, n);
    if (r == NULL) {
      s->forwarded++;
      return 0;
    }
    int rc = answer_query(c, s, r, 1);
    return rc < 0 ? rc : 1;
  }
  case 'P':
  case 'B':
  case 'D':
  case 'E':
  case 'C':
    if (s->swallow)
      return 1;
    if (!s->batch) {
      const struct prule *r = hit(c, s, FL_STAGE_QUERY, sql, n);
      if (r != NULL) {
        s->swallow = 1;
        int rc = answer_query(c, s, r, 0);
        return rc < 0 ? rc : 1;
      }
    }
    s->batch = 1;
    return 0;
  case 'H':
    return s->swallow;
  case 'S':
    s->batch = 0;
    if (s->swallow) {
      s->swallow = 0;
      int rc = queue(s, IT_READY, NULL, 0);
      if (rc == 0)
        emit_due(c, s);
      return rc < 0 ? rc : 1;
    }
    s->forwarded++;
    return 0;
  case 'F':
    s->forwarded++;
    return 0;
  default:
    return 0;
  }
}

/* Bytes we cannot follow: from here they pass as they come, unless an
 * answer of ours is still owed (the client would wait for it forever). */
static int lose_track(struct conn *c, struct pg *s, int d, const char *data,
                      size_t n) {
  if (s->head != NULL || s->swallow || s->ending)
    return -EPROTO;
  s->pass = 1;
  struct reader *r = &s->rd[d];
  if (r->have > 0)
    fl_conn_send(c, d, (const char *)r->hdr, r->have);
  r->have = 0;
  fl_conn_send(c, d, data, n);
  return 0;
}

/* Gathers the start-up phase message (length first) from the client. */
static int feed_startup(struct conn *c, struct pg *s, const char *data,
                        size_t n, size_t *used) {
  size_t i = 0;
  if (s->held == NULL) {
    struct reader *r = &s->rd[UP];
    while (r->have < 4 && i < n)
      r->hdr[r->have++] = (uint8_t)data[i++];
    *used = i;
    if (r->have < 4)
      return 0;
    uint32_t len = be32(r->hdr);
    if (len < 8 || len > PG_MAX_STARTUP) { /* direct TLS, or not ours */
      *used = n;
      return lose_track(c, s, UP, data + i, n - i);
    }
    if ((s->held = malloc(len)) == NULL)
      return -ENOMEM;
    memcpy(s->held, r->hdr, 4);
    s->held_len = len;
    s->held_have = 4;
    r->have = 0;
  }
  size_t k = s->held_len - s->held_have;
  if (k > n - i)
    k = n - i;
  memcpy(s->held + s->held_have, data + i, k);
  s->held_have += (uint32_t)k;
  *used = i + k;
  if (s->held_have < s->held_len)
    return 0;
  int rc = startup_message(c, s);
  free(s->held);
  s->held = NULL;
  return rc;
}

static void flush(struct conn *c, int d, const char *data, size_t *run,
                  size_t to) {
  if (to > *run)
    fl_conn_send(c, d, data + *run, to - *run);
  *run = to;
}

/* The end of a server message. */
static void server_message_end(struct conn *c, struct pg *s, const char *data,
                               size_t *run, size_t at) {
  if (s->rd[DOWN].type != 'Z' || s->head == NULL)
    return;
  flush(c, DOWN, data, run, at);
  emit_due(c, s);
}

/* Typed messages from data[i] on (run: the first byte not handed on). */
static int follow(struct conn *c, struct pg *s, int d, const char *data,
                  size_t n, size_t i, size_t run) {
  struct reader *r = &s->rd[d];
  while (i < n) {
    if (r->left > 0) {
      size_t k = r->left < n - i ? r->left : n - i;
      if (r->drop) {
        flush(c, d, data, &run, i);
        run = i + k;
      } else if (d == DOWN && r->type == 'Z') {
        s->txn = data[i];
      }
      i += k;
      r->left -= (uint32_t)k;
      if (r->left == 0 && d == DOWN) {
        s->answered += r->type == 'Z';
        s->established |= r->type == 'Z';
        server_message_end(c, s, data, &run, i);
        if (c->closing || c->ending != END_NONE)
          return 0; /* a FATAL of ours went: nothing after it */
      }
      continue;
    }
    /* A header: type and length, maybe split across reads. */
    size_t start = i, split = r->have;
    uint8_t h[5];
    if (split == 0 && n - i >= 5) {
      memcpy(h, data + i, 5);
      i += 5;
    } else {
      while (r->have < 5 && i < n)
        r->hdr[r->have++] = (uint8_t)data[i++];
      if (r->have < 5) {
        flush(c, d, data, &run, start);
        run = n; /* held in r->hdr until the rest comes */
        break;
      }
      memcpy(h, r->hdr, 5);
      r->have = 0;
    }
    uint32_t len = be32(h + 1);
    if (len < 4 || len > PG_MAX_MESSAGE || (h[0] == 'Z' && len != 5)) {
      flush(c, d, data, &run, start);
      memcpy(r->hdr, h, split);
      r->have = (uint8_t)split;
      return lose_track(c, s, d, data + start, n - start);
    }
    r->type = (char)h[0];
    r->left = len - 4;
    r->drop = 0;
    if (d == UP) {
      int rc = client_message(c, s, r->type, data + i, r->left, n - i);
      if (rc < 0)
        return rc;
      r->drop = (uint8_t)rc;
    }
    if (r->drop) {
      flush(c, d, data, &run, start);
      run = i;
    } else if (split > 0) {
      fl_conn_send(c, d, (const char *)h, split);
    }
    if (c->closing)
      return 0;
    if (r->left == 0 && d == DOWN) {
      s->answered += r->type == 'Z';
      server_message_end(c, s, data, &run, i);
    }
  }
  flush(c, d, data, &run, n);
  if (d == UP && s->head != NULL)
    emit_due(c, s);
  return 0;
}

static int feed(struct conn *c, void *state, int d, const char *data,
                size_t n) {
  struct pg *s = state;
  size_t i = 0, run = 0;
  if (s->pass) {
    fl_conn_send(c, d, data, n);
    return 0;
  }
  if (d == UP && !s->typed) {
    while (i < n && !s->typed && !s->pass && !c->closing) {
      size_t used;
      int rc = feed_startup(c, s, data + i, n - i, &used);
      if (rc != 0)
        return rc;
      i += used;
    }
    if (s->pass && i < n)
      fl_conn_send(c, d, data + i, n - i);
    if (i >= n || s->pass || c->closing)
      return 0;
    run = i;
  }
  if (d == DOWN && s->ssl_answer) {
    s->ssl_answer = 0;
    if (data[0] != 'N') { /* 'S'/'G': encrypted from here; 'E': old server */
      s->pass = 1;
      fl_conn_send(c, d, data, n);
      return 0;
    }
    i = 1;
  }
  return follow(c, s, d, data, n, i, run);
}

static void fini(void *state) {
  struct pg *s = state;
  free_items(s);
  free(s->held);
}

const struct fl_codec fl_codec_postgres = {
    .name = "postgres",
    .state_size = sizeof(struct pg),
    .feed = feed,
    .fini = fini,
};
