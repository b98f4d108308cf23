/*
 * HTTP/1.1 message framing, one direction of one connection at a time
 * (RFC 9112): where each request or response begins, where its head ends
 * and where its body ends (Content-Length, chunked with trailers, no body
 * for HEAD, 1xx, 204 and 304, until EOF for a response without either).
 * It never copies a body: a body's bytes are skipped by their length.
 * The proxy's http codec (http.c) and the fuzz target use it.
 */
#ifndef FL_HTTP1_H
#define FL_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#define FL_H1_LINE 8192 /* longest head line followed */

enum fl_h1_event {
  FL_H1_MORE, /* every byte given was consumed: give more */
  FL_H1_HEAD, /* the head ended with the bytes consumed */
  FL_H1_DONE, /* the message ended with the bytes consumed */
  FL_H1_BAD,  /* not HTTP/1.x as we follow it: stop following */
};

struct fl_h1 {
  uint8_t response; /* set by the caller: parses responses */
  uint8_t no_body;  /* set by the caller before a response: it answers HEAD */
  uint8_t state;
  uint8_t chunked, has_len, close, upgrade, expect;
  int status;           /* a response's */
  char method[16];      /* a request's */
  char target[128];     /* a request's, cut to fit */
  uint64_t length;      /* Content-Length */
  uint64_t left;        /* body or chunk bytes still to come */
  uint64_t body_bytes;  /* of this message's body so far, as sent */
  uint64_t body_length; /* the whole body as sent, when known, else 0 */
  size_t linelen;
  char line[FL_H1_LINE];
};

/* Ready for the first message of a connection. */
void fl_h1_init(struct fl_h1 *h, int response);

/* Consumes bytes of data[0..n) up to the next event, and returns how many
 * (may be 0: an event due without more bytes, such as the end of a message
 * with no body right after its head). Once FL_H1_BAD is returned it stays
 * returned. A response ending at EOF never gets FL_H1_DONE. */
size_t fl_h1_feed(struct fl_h1 *h, const char *data, size_t n,
                  enum fl_h1_event *ev);

/* Is the parser between messages (the next byte starts one)? */
int fl_h1_at_start(const struct fl_h1 *h);

/* Is it inside a message's body? */
int fl_h1_in_body(const struct fl_h1 *h);

#endif
