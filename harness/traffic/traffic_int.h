/*
 * libcurl's multi interface on a libuv loop, shared by the files of the
 * traffic module: glue.c (the glue), traffic.c (the scheduled
 * traffic and its records), path.c (path templates) and probe.c (one
 * readiness probe).
 * Nothing outside these files includes it.
 *
 * The glue follows the pattern of curl's multi-uv example: curl tells us
 * which sockets to watch (CURLMOPT_SOCKETFUNCTION, one uv_poll_t per
 * socket) and when to call it back (CURLMOPT_TIMERFUNCTION, one
 * uv_timer_t); we hand every event to curl_multi_socket_action() and then
 * collect finished transfers with curl_multi_info_read(). Its owner embeds
 * it as its first member and gets finished transfers through done(), and
 * closed() once every libuv handle it counts has closed.
 *
 * Lifetime rule: memory that a libuv handle lives in is freed only in the
 * handle's close callback, which libuv always runs on a later turn of the
 * loop. So an object that starts closing from inside one of its own
 * callbacks stays valid until that callback has returned.
 */
#ifndef FL_TRAFFIC_PRIV_H
#define FL_TRAFFIC_PRIV_H

#include <curl/curl.h>
#include <uv.h>

#include "traffic.h"

/* A socket curl asked us to watch (glue.c). */
struct sock;

struct glue {
  uv_loop_t *loop;
  CURLM *multi; /* NULL once cleaned up */
  uv_timer_t timer;
  struct sock *socks;
  /* libuv handles of the owner (this timer, the polls, and any the owner
   * registers) not yet closed; closed() runs when the count reaches 0. */
  int handles;
  void (*done)(struct glue *g, CURL *easy, CURLcode rc);
  void (*closed)(struct glue *g);
};

/* The glue's life: fl_glue_init() takes libcurl's global state and makes
 * the multi handle and the timer (0 or -ENOMEM, nothing left to free);
 * fl_glue_kick() runs curl at once rather than on the next turn;
 * fl_glue_close() cleans up the multi handle (every easy handle removed first)
 * and closes the libuv handles, g->closed() running when the last has (and
 * libcurl's global state let go after). fl_glue_on_handle_closed() is the close
 * callback for an owner's handle whose data is the glue: it counts it off. */
void fl_glue_on_handle_closed(uv_handle_t *h);
/* Counts off one of the owner's handles that closed (for handles whose
 * data is not the glue). */
void fl_glue_count_off(struct glue *g);
int fl_glue_init(struct glue *g, uv_loop_t *loop);
void fl_glue_kick(struct glue *g);
void fl_glue_close(struct glue *g);
/* Options every request of ours has: URL, timeout, no proxy, no body kept. */
void fl_glue_easy_common(CURL *easy, const char *url, double timeout);
/* The class of a failed transfer: enum fl_xfer_error. */
int fl_glue_error_class(CURL *easy, CURLcode rc);
/* A class as a -errno (0 for FL_XFER_OK): what a probe reports. */
int fl_glue_error_errno(int e);

/* path.c: a parsed path template (see fl_path_check()). fl_path_parse
 * gives 0 and a template to free, or -EINVAL/-ENOMEM as fl_path_check
 * does; fl_path_draw writes request k's path for the endpoint whose
 * stream fl_path_key() gives (0 or -ENAMETOOLONG); fl_path_is_fixed says
 * whether the template has no placeholder (it always draws itself). */
struct fl_path_tmpl;
int fl_path_parse(const char *path, struct fl_path_tmpl **out, int *col,
                  char *err, size_t errlen);
void fl_path_free(struct fl_path_tmpl *t);
int fl_path_is_fixed(const struct fl_path_tmpl *t);
uint64_t fl_path_key(uint64_t seed, const char *name);
int fl_path_draw(const struct fl_path_tmpl *t, uint64_t key, uint64_t k,
                 char *buf, size_t size);

#endif
