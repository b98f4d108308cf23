/*
 * faultline-run wsstub --port N CONFIG.json: the stub upstream of a ws
 * dependency (harness/deps/ws.c starts it; hidden from help). Any path
 * upgrades to WebSocket (libmicrohttpd's upgrade, framing by wslay): every
 * text or binary message is echoed, Pings answered, and with
 * "broadcast_ms" every connection is sent {"seq":N,"broadcast":MESSAGE}
 * that often. A thread per connection: a slow reader holds only its own.
 * Runs until SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <wslay/wslay.h>

#include "base/base.h"
#include "cli.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

struct wsstub {
  long broadcast_ms; /* 0: echo only */
  char message[256];
};

struct peer {
  int fd;
  const char *extra; /* bytes MHD read past the request head */
  size_t nextra;
};

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *arg) {
  struct peer *p = arg;
  (void)flags;
  if (p->nextra > 0) {
    size_t n = len < p->nextra ? len : p->nextra;
    memcpy(buf, p->extra, n);
    p->extra += n;
    p->nextra -= n;
    return (ssize_t)n;
  }
  ssize_t n = recv(p->fd, buf, len, MSG_DONTWAIT);
  if (n > 0)
    return n;
  wslay_event_set_error(ctx, n < 0 && (errno == EAGAIN || errno == EINTR)
                                 ? WSLAY_ERR_WOULDBLOCK
                                 : WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *arg) {
  struct peer *p = arg;
  (void)flags;
  ssize_t n = send(p->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  if (n >= 0)
    return n;
  wslay_event_set_error(ctx, errno == EAGAIN || errno == EINTR
                                 ? WSLAY_ERR_WOULDBLOCK
                                 : WSLAY_ERR_CALLBACK_FAILURE);
  return -1;
}

/* Echoes data messages; wslay answers Pings and Closes itself. */
static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *m, void *arg) {
  (void)arg;
  if (wslay_is_ctrl_frame(m->opcode))
    return;
  struct wslay_event_msg out = {m->opcode, m->msg, m->msg_length};
  wslay_event_queue_msg(ctx, &out);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void broadcast(wslay_event_context_ptr ctx, const struct wsstub *s,
                      uint64_t seq) {
  char text[320];
  int n = snprintf(text, sizeof(text), "{\"seq\":%llu,\"broadcast\":\"%s\"}",
                   (unsigned long long)seq, s->message);
  struct wslay_event_msg out = {WSLAY_TEXT_FRAME, (const uint8_t *)text,
                                (size_t)n};
  wslay_event_queue_msg(ctx, &out);
}

/* The connection's life, on MHD's thread for it. */
static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
                        const char *extra, size_t nextra, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh) {
  const struct wsstub *s = cls;
  (void)conn, (void)con_cls;
  struct peer p = {sock, extra, nextra};
  struct wslay_event_callbacks cbs = {on_recv, on_send, NULL,  NULL,
                                      NULL,    NULL,    on_msg};
  wslay_event_context_ptr ctx;
  if (wslay_event_context_server_init(&ctx, &cbs, &p) != 0) {
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    return;
  }
  uint64_t next = now_ms() + (uint64_t)s->broadcast_ms, seq = 0;
  while (wslay_event_want_read(ctx) || wslay_event_want_write(ctx)) {
    int wait = -1;
    if (s->broadcast_ms > 0) {
      uint64_t now = now_ms();
      if (now >= next) {
        broadcast(ctx, s, seq++);
        next = now + (uint64_t)s->broadcast_ms;
      }
      wait = (int)(next - now > 0 ? next - now : 0);
    }
    struct pollfd pfd = {sock, 0, 0};
    if (wslay_event_want_read(ctx))
      pfd.events |= POLLIN;
    if (wslay_event_want_write(ctx))
      pfd.events |= POLLOUT;
    if (p.nextra == 0 && poll(&pfd, 1, wait) < 0 && errno != EINTR)
      break;
    if ((p.nextra > 0 || (pfd.revents & (POLLIN | POLLHUP | POLLERR))) &&
        wslay_event_recv(ctx) != 0)
      break;
    if ((pfd.revents & POLLOUT) && wslay_event_send(ctx) != 0)
      break;
  }
  wslay_event_context_free(ctx);
  MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* Sec-WebSocket-Accept: base64(SHA-1(key + the RFC's GUID)). */
static void accept_key(const char *key,
                       char out[BASE64_ENCODE_RAW_LENGTH(20) + 1]) {
  static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  struct sha1_ctx h;
  uint8_t digest[SHA1_DIGEST_SIZE];
  sha1_init(&h);
  sha1_update(&h, strlen(key), (const uint8_t *)key);
  sha1_update(&h, sizeof(guid) - 1, (const uint8_t *)guid);
  sha1_digest(&h, sizeof(digest), digest);
  base64_encode_raw((char *)out, sizeof(digest), digest);
  out[BASE64_ENCODE_RAW_LENGTH(20)] = '\0';
}

static MHD_RESULT plain(struct MHD_Connection *conn, unsigned status,
                        const char *text) {
  struct MHD_Response *r = MHD_create_response_from_buffer(
      strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
  if (r == NULL)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "text/plain");
  MHD_RESULT rc = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return rc;
}

static MHD_RESULT on_request(void *cls, struct MHD_Connection *conn,
                             const char *url, const char *method,
                             const char *version, const char *upload,
                             size_t *upload_size, void **con_cls) {
  (void)url, (void)version, (void)upload, (void)upload_size;
  if (*con_cls == NULL) {
    *con_cls = (void *)1;
    return MHD_YES;
  }
  const char *up =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Upgrade");
  const char *key =
      MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
  if (strcmp(method, "GET") != 0 || up == NULL ||
      strcasecmp(up, "websocket") != 0 || key == NULL)
    return plain(conn, 426, "a WebSocket endpoint: upgrade to websocket\n");
  char acc[BASE64_ENCODE_RAW_LENGTH(20) + 1];
  accept_key(key, acc);
  struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgraded, cls);
  if (r == NULL)
    return MHD_NO;
  MHD_add_response_header(r, "Upgrade", "websocket");
  MHD_add_response_header(r, "Sec-WebSocket-Accept", acc);
  MHD_RESULT rc = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
  MHD_destroy_response(r);
  return rc;
}

static int load(const char *file, struct wsstub *s) {
  json_error_t e;
  json_t *root = json_load_file(file, 0, &e);
  if (!json_is_object(root)) {
    fl_say("wsstub: %s: %s", file, root ? "not an object" : e.text);
    json_decref(root);
    return -1;
  }
  s->broadcast_ms =
      (long)json_number_value(json_object_get(root, "broadcast_ms"));
  const char *m = json_string_value(json_object_get(root, "message"));
  snprintf(s->message, sizeof(s->message), "%s", m ? m : "tick");
  json_decref(root);
  return 0;
}

int fl_cmd_wsstub(int argc, char **argv) {
  if (argc != 4 || strcmp(argv[1], "--port") != 0 || atoi(argv[2]) <= 0) {
    fl_say("usage: faultline-run wsstub --port N CONFIG.json");
    return FL_EXIT_USAGE;
  }
  struct wsstub s = {0};
  if (load(argv[3], &s) != 0)
    return FL_EXIT_USAGE;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD's threads inherit it */
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(argv[2]))};
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *mhd =
      MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION |
                           MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_UPGRADE,
                       0, NULL, NULL, on_request, &s, MHD_OPTION_SOCK_ADDR, &sa,
                       MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
  if (mhd == NULL) {
    fl_say("wsstub: cannot listen on 127.0.0.1:%s", argv[2]);
    return FL_EXIT_ENV;
  }
  int sig;
  sigwait(&set, &sig);
  /* Upgraded connections are threads in their own loops: the process
   * ends with them, as a server that is stopped drops its clients. */
  return FL_EXIT_OK;
}
