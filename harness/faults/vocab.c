/*
 * The fault vocabulary: one row per action. Specs, scenarios, `faultline
 * list` and `help faults`, validation messages, the runner and result.json
 * all read these rows; adding a fault is one row here plus its effect (the
 * shim, the proxy or a dependency operation).
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "faults.h"

#define CONN_OPTS "err, p, after, times"
#define TOXIC_OPTS "dir, toxicity, after, times"
#define PROTO_OPTS "p, after, times"

/* Shim rows first, in enum fl_action order; then the proxy's, then process
 * faults. Listings keep this order. */
static const struct fl_fault_type table[] = {
    {"refuse", FL_FAULT_SHIM, FL_AIM_CONN, FL_ACT_REFUSE, .ops = FL_OPC_CONNECT,
     .options = CONN_OPTS, .usage = "@T",
     .help = "connect fails with ECONNREFUSED",
     .detail = "connect fails with ECONNREFUSED"},
    {"reset", FL_FAULT_SHIM, FL_AIM_CONN, FL_ACT_RESET, .ops = FL_OPC_SOCKIO,
     .options = CONN_OPTS, .usage = "@T",
     .help = "reads/writes on connections fail with ECONNRESET",
     .detail = "the next read/write on each connection fails"
               "\n"
               "with ECONNRESET and the connection is dropped"
               "\n"
               "(the peer gets an RST); new connections too"},
    {"hang", FL_FAULT_SHIM, FL_AIM_CONN, FL_ACT_HANG, .ops = FL_OPC_CONNECT,
     .options = "p, after, times", .usage = "@T",
     .help = "connect never completes while the rule is active",
     .detail = "connect never completes while the rule is on:"
               "\n"
               "non-blocking sockets stay in progress (never"
               "\n"
               "writable) until the caller's timeout; blocking"
               "\n"
               "ones wait (SO_SNDTIMEO honoured) and connect for"
               "\n"
               "real once the rule is cleared"},
    {"delay", FL_FAULT_SHIM, FL_AIM_CONN, FL_ACT_DELAY, .ms_min = 1,
     .ops = FL_OPC_CONNECT | FL_OPC_SOCKIO, .options = "ms, p, after, times",
     .needs = "ms=N", .example = "127.0.0.1:6379,ms=200", .usage = "@T,ms=N",
     .help = "add ms=N to connect/send/recv on blocking sockets",
     .detail = "N ms more on connect/send/recv, blocking sockets"},
    {"limit", FL_FAULT_SHIM, FL_AIM_CONN, FL_ACT_LIMIT, .ops = FL_OPC_CONNECT,
     .options = "max, err, p, after, times", .needs = "max=N",
     .example = "127.0.0.1:5432,max=5", .usage = "@T,max=N",
     .help = "at most max=N concurrent connections, then fail",
     .detail = "at most N connections open at once (across all"
               "\n"
               "processes of the target); the next fails"
               "\n"
               "(err=, default ECONNREFUSED)"},
    {"exhaust", FL_FAULT_SHIM, FL_AIM_FDS, FL_ACT_EXHAUST,
     .ops = FL_OPC_SOCKET | FL_OPC_OPEN, .options = CONN_OPTS,
     .usage = "@sockets|files|fds",
     .help = "socket/accept/open fail with EMFILE",
     .detail = "socket/accept (sockets), open (files) or"
               "\n"
               "both (fds) fail with EMFILE"},
    {"dns", FL_FAULT_SHIM, FL_AIM_NAME, FL_ACT_DNS, .ops = FL_OPC_DNS,
     .options = CONN_OPTS, .usage = "@NAME",
     .help = "name lookups fail with EAI_AGAIN",
     .detail = "lookups of NAME (glob: dns@*.internal) fail with"
               "\n"
               "EAI_AGAIN; numeric addresses are never looked up"},
    {"enospc", FL_FAULT_SHIM, FL_AIM_PATH, FL_ACT_ENOSPC,
     .ops = FL_OPC_OPEN | FL_OPC_FILEIO, .options = CONN_OPTS, .usage = "@GLOB",
     .help = "writes, opens for writing and fsync fail with ENOSPC",
     .detail = "writes, opens for writing and fsync of files"
               "\n"
               "under the absolute path GLOB fail with ENOSPC"
               "\n"
               "(* spans /)"},
    {"eio", FL_FAULT_SHIM, FL_AIM_PATH, FL_ACT_EIO,
     .ops = FL_OPC_OPEN | FL_OPC_FILEIO, .options = CONN_OPTS, .usage = "@GLOB",
     .help = "writes, opens for writing and fsync fail with EIO",
     .detail = "the same, failing with EIO"},
    {"redirect", FL_FAULT_SHIM, FL_AIM_CONN, FL_ACT_REDIRECT, .internal = 1,
     .ops = FL_OPC_CONNECT, .options = "to", .needs = "to=ADDRESS:PORT",
     .usage = "@T,to=A:P",
     .help = "connect goes to another address (proxy mode)",
     .detail = "connect to A:P instead (proxy mode)"},
    {"latency", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_LATENCY, .ms_min = 1,
     .dir = FL_DIR_DOWN, .options = "ms, jitter, " TOXIC_OPTS, .needs = "ms=N",
     .example = "127.0.0.1:6379,ms=200", .usage = "@T,ms=N",
     .help = "proxy: hold each chunk ms=N (jitter=N) longer",
     .detail = "hold each chunk N ms more (jitter=J: plus or"
               "\n"
               "minus up to J ms, uniform; order is kept);"
               "\n"
               "default dir=down: a round trip gets N ms more"},
    {"bandwidth", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_BANDWIDTH,
     .dir = FL_DIR_BOTH, .options = "rate, " TOXIC_OPTS,
     .needs = "rate=BYTES_PER_SECOND", .example = "127.0.0.1:6379,rate=64k",
     .usage = "@T,rate=R", .help = "proxy: at most rate=N bytes per second",
     .detail = "at most R bytes per second (64k = 65536, 1m)"},
    {"slicer", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_SLICER, .dir = FL_DIR_DOWN,
     .options = "size, ms, " TOXIC_OPTS, .usage = "@T",
     .help = "proxy: split data into size=N pieces, ms=N apart",
     .detail = "split data into size=N byte pieces (default 64)"
               "\n"
               "written ms=N apart (default 0); dir=down"},
    {"stall", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_STALL, .dir = FL_DIR_BOTH,
     .options = "ms, " TOXIC_OPTS, .usage = "@T",
     .help = "proxy: forward nothing (close after ms=N if given)",
     .detail = "accept and forward nothing: the connect works,"
               "\n"
               "the dependency never answers; ms=N closes the"
               "\n"
               "connection after N ms (default: never)"},
    {"slow_close", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_SLOW_CLOSE, .ms_min = 1,
     .dir = FL_DIR_BOTH, .options = "ms, " TOXIC_OPTS, .needs = "ms=N",
     .example = "127.0.0.1:6379,ms=200", .usage = "@T,ms=N",
     .help = "proxy: pass on a close ms=N late",
     .detail = "pass on a close (end of stream) N ms late"},
    {"reset_peer", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_RESET_PEER,
     .dir = FL_DIR_BOTH, .options = "bytes, ms, " TOXIC_OPTS, .usage = "@T",
     .help = "proxy: RST after bytes=N or ms=N",
     .detail = "reset the connection (the client sees"
               "\n"
               "ECONNRESET) after bytes=N have passed, or after"
               "\n"
               "ms=N; at once when neither is given"},
    {"limit_data", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_LIMIT_DATA,
     .dir = FL_DIR_BOTH, .options = "bytes, " TOXIC_OPTS, .needs = "bytes=N",
     .example = "127.0.0.1:6379,bytes=4k", .usage = "@T,bytes=N",
     .help = "proxy: close after bytes=N",
     .detail = "close the connection once N bytes have passed"},
    {"down", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_DOWN, .dir = FL_DIR_BOTH,
     .options = "toxicity, after, times", .usage = "@T",
     .help = "proxy: refuse new connections, close existing ones",
     .detail = "refuse new connections (ECONNREFUSED) and close"
               "\n"
               "existing ones, until cleared"},
    /* Protocol faults: the proxy follows the dependency's protocol and
     * answers whole messages itself (harness/proxy/codec.c). p=, after=
     * and times= count messages, not connections. */
    {"redis_error", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_REDIS_ERROR,
     .dir = FL_DIR_BOTH, .protocol = "redis",
     .options = "reply, match, " PROTO_OPTS, .needs = "reply=TEXT",
     .example = "redis,reply=LOADING", .usage = "@T,reply=TEXT",
     .help = "proxy: answer Redis commands with an error reply",
     .detail = "answer the next commands (match=GET|SET: those)"
               "\n"
               "with -TEXT, keeping the connection and the order;"
               "\n"
               "reply=LOADING, OOM, READONLY, BUSY, MASTERDOWN or"
               "\n"
               "NOAUTH: Redis's own text"},
    {"pg_error", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_PG_ERROR,
     .dir = FL_DIR_BOTH, .protocol = "postgres",
     .options = "code, reply, stage, severity, close, match, " PROTO_OPTS,
     .needs = "code=SQLSTATE", .example = "postgres,code=53300",
     .usage = "@T,code=SQLSTATE",
     .help = "proxy: answer PostgreSQL with an ErrorResponse",
     .detail = "an ErrorResponse with SQLSTATE code= at start-up"
               "\n"
               "(stage=startup, FATAL: 53300, 57P03, 28P01) or on"
               "\n"
               "the next queries (stage=query: ERROR, session kept;"
               "\n"
               "57P01 or close=yes: FATAL and closed); severity=, reply="
               "\n"
               "match=A|B: queries whose text holds A or B"},
    {"http_error", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_HTTP_ERROR,
     .dir = FL_DIR_BOTH, .protocol = "http",
     .options = "status, header, reply, match, " PROTO_OPTS,
     .needs = "status=N", .example = "api,status=503", .usage = "@T,status=N",
     .help = "proxy: answer HTTP requests with a status of ours",
     .detail = "answer requests (match=\"GET /v1/*\": those) with"
               "\n"
               "status=N, header= and reply= as the body"},
    {"http_delay", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_HTTP_DELAY, .ms_min = 1,
     .dir = FL_DIR_DOWN, .protocol = "http",
     .options = "ms, match, " PROTO_OPTS, .needs = "ms=N",
     .example = "api,ms=2000", .usage = "@T,ms=N",
     .help = "proxy: hold HTTP response heads ms=N",
     .detail = "hold each response's head N ms"},
    {"http_cut", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_HTTP_CUT,
     .dir = FL_DIR_DOWN, .protocol = "http",
     .options = "bytes, match, " PROTO_OPTS, .needs = "bytes=N",
     .example = "api,bytes=100", .usage = "@T,bytes=N",
     .help = "proxy: cut HTTP responses after bytes=N of body",
     .detail = "close the connection after N bytes of a"
               "\n"
               "response's body"},
    {"ws_close", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_WS_CLOSE,
     .dir = FL_DIR_DOWN, .protocol = "ws",
     .options = "code, reply, dir, " PROTO_OPTS, .example = "feed,code=1011",
     .usage = "@T[,code=N]",
     .help = "proxy: close WebSocket connections with a Close frame",
     .detail = "send a Close frame with code=N (default 1011;"
               "\n"
               "1001, 1012, 1013...) and reply= as its reason to"
               "\n"
               "the client (dir=down) or the server (dir=up),"
               "\n"
               "then close; p=, after=, times= count connections"},
    {"ws_nopong", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_WS_NOPONG,
     .dir = FL_DIR_DOWN, .protocol = "ws", .options = "dir, " PROTO_OPTS,
     .usage = "@T", .help = "proxy: drop WebSocket Pongs (pings unanswered)",
     .detail = "drop the Pong frames going dir= (down: the"
               "\n"
               "server's answers to the client's Pings); the"
               "\n"
               "connection stays open"},
    {"ws_drop", FL_FAULT_PROXY, FL_AIM_CONN, FL_ACT_WS_DROP, .dir = FL_DIR_BOTH,
     .protocol = "ws", .options = "dir, " PROTO_OPTS, .usage = "@T[,p=S]",
     .help = "proxy: drop WebSocket data messages",
     .detail = "drop a share p= of the data messages going dir="
               "\n"
               "(default both), whole: continuation frames too"},
    {"kill", FL_FAULT_PROCESS, FL_AIM_DEP, .proc = FL_PROC_KILL,
     .usage = ": DEP",
     .help = "SIGKILL the server; started again when the "
             "fault ends"},
    {"stop", FL_FAULT_PROCESS, FL_AIM_DEP, .proc = FL_PROC_STOP,
     .usage = ": DEP",
     .help = "stop it cleanly; started again when the fault ends"},
    {"pause", FL_FAULT_PROCESS, FL_AIM_DEP, .proc = FL_PROC_PAUSE,
     .usage = ": DEP",
     .help = "SIGSTOP (a real hang); SIGCONT when the fault ends"},
    {"restart", FL_FAULT_PROCESS, FL_AIM_DEP, .proc = FL_PROC_RESTART,
     .usage = ": DEP", .help = "stop it cleanly and start it again"},
    {"saturate", FL_FAULT_PROCESS, FL_AIM_DEP, .proc = FL_PROC_SATURATE,
     .usage = ": DEP",
     .help = "postgres: hold every connection slot; released at the end"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const struct fl_fault_type *fl_fault_at(size_t i) {
  return i < COUNT(table) ? &table[i] : NULL;
}

const struct fl_fault_type *fl_fault_find(const char *name) {
  for (size_t i = 0; i < COUNT(table); i++)
    if (strcmp(table[i].name, name) == 0)
      return &table[i];
  return NULL;
}

const struct fl_fault_type *fl_fault_of_action(int action) {
  for (size_t i = 0; i < COUNT(table); i++)
    if (table[i].kind != FL_FAULT_PROCESS && table[i].action == action)
      return &table[i];
  return NULL;
}

const char *fl_action_name(int action) {
  const struct fl_fault_type *t = fl_fault_of_action(action);
  return t != NULL ? t->name : "?";
}

const char *fl_fault_aim_name(int aim) {
  static const char *const names[] = {
      [FL_AIM_CONN] = "dependency or host:port",
      [FL_AIM_NAME] = "host name (glob)",
      [FL_AIM_PATH] = "path glob",
      [FL_AIM_FDS] = "sockets|files|fds",
      [FL_AIM_DEP] = "dependency",
  };
  return aim >= 0 && (size_t)aim < COUNT(names) ? names[aim] : "?";
}

const char *fl_fault_kind_name(int kind) {
  static const char *const names[] = {[FL_FAULT_SHIM] = "shim",
                                      [FL_FAULT_PROXY] = "proxy",
                                      [FL_FAULT_PROCESS] = "process"};
  return kind >= 0 && (size_t)kind < COUNT(names) ? names[kind] : "?";
}

static int listed(const struct fl_fault_type *t, unsigned kinds, int internal) {
  return (kinds & (1u << t->kind)) && (internal || !t->internal);
}

void fl_fault_list(char *buf, size_t size, unsigned kinds, int internal) {
  size_t at = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < COUNT(table) && at < size; i++)
    if (listed(&table[i], kinds, internal))
      at += (size_t)snprintf(buf + at, size - at, "%s%s", at ? ", " : "",
                             table[i].name);
}

/* Edit distance between a and b (each cut at 31 bytes). */
static int distance(const char *a, const char *b) {
  int la = (int)strnlen(a, 31), lb = (int)strnlen(b, 31);
  int row[32];
  for (int j = 0; j <= lb; j++)
    row[j] = j;
  for (int i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = i;
    for (int j = 1; j <= lb; j++) {
      int up = row[j];
      int best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best)
        best = up + 1;
      if (row[j - 1] + 1 < best)
        best = row[j - 1] + 1;
      row[j] = best;
      diag = up;
    }
  }
  return row[lb];
}

const struct fl_fault_type *fl_fault_nearest(const char *word, unsigned kinds) {
  const struct fl_fault_type *best = NULL;
  int best_d = 1 << 30;
  for (size_t i = 0; i < COUNT(table); i++) {
    int d = listed(&table[i], kinds, 1) ? distance(word, table[i].name) : -1;
    if (d >= 0 && d < best_d)
      best = &table[i], best_d = d;
  }
  return best;
}
