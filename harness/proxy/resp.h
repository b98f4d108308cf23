/*
 * An incremental RESP reader (Redis's protocol, RESP2 and RESP3): it
 * follows the framing of a byte stream fed in pieces of any size and says
 * where each top-level value ends, never copying payloads (bulk strings
 * are skipped by their length). On the client side it reads commands,
 * arrays of bulk strings or inline lines, and keeps the first two words
 * (the command's name and first argument, upper-cased) so that a codec
 * can decide on a command before its arguments pass. Every reply type is
 * read: simple and blob strings and errors, numbers, doubles, booleans,
 * big numbers, verbatim strings, nulls, arrays, maps, sets, pushes,
 * attributes, and the streamed strings and aggregates of the RESP3 spec.
 * No libuv, no allocation: the fuzz target drives it alone.
 */
#ifndef FL_RESP_H
#define FL_RESP_H

#include <stddef.h>
#include <stdint.h>

#define FL_RESP_DEPTH 64 /* nesting followed; deeper is not followed */
#define FL_RESP_WORD 32  /* bytes of a command's first two words kept */

/* What fl_resp_feed stopped at (bits; 0: all bytes taken, the value goes
 * on). */
enum {
  FL_RESP_NAME = 1, /* the command's name is known (word[0]) */
  FL_RESP_END = 2,  /* a top-level value ended */
  FL_RESP_BAD = 4,  /* bytes that are not RESP: it follows no further */
};

struct fl_resp {
  uint8_t client; /* reads commands (the client's side) */
  uint8_t state;
  uint8_t open;  /* a top-level value has begun */
  uint8_t type;  /* that value's first byte ('>': a push) */
  uint8_t head;  /* the type of the header line being read */
  uint8_t chunk; /* inside a streamed string */
  uint8_t named; /* FL_RESP_NAME was reported for this command */
  uint8_t inword;
  uint8_t linelen, depth;
  uint8_t wlen[2];
  uint32_t arg;      /* the command's element (or inline word) being read */
  uint64_t attr;     /* bit d: the aggregate at depth d is an attribute */
  uint64_t streamed; /* bit d: it ends with '.', not by a count */
  int64_t bulk;      /* payload bytes left, CRLF included */
  int64_t left[FL_RESP_DEPTH];
  char line[32];
  char word[2][FL_RESP_WORD]; /* NUL-terminated */
};

/* Starts reading a stream from its first byte; client: commands. */
void fl_resp_init(struct fl_resp *r, int client);

/* Reads at most n bytes of p, stopping after the first event (bits in
 * *ev, 0 when none). Returns the bytes taken. After FL_RESP_BAD it takes
 * nothing more. */
size_t fl_resp_feed(struct fl_resp *r, const char *p, size_t n, int *ev);

/* Between two top-level values (the next byte begins one). */
static inline int fl_resp_idle(const struct fl_resp *r) { return !r->open; }

#endif
