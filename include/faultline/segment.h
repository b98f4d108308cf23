/*
 * The control segment: the one contract between the faultline runner (which
 * writes fault rules) and libfaultline-preload.so (which reads them inside the
 * target and counts what it injected).
 *
 * The segment is a regular file of fixed-size records with no pointers,
 * created owner-only (0600) by the runner and named to the shim by the
 * FAULTLINE_CONTROL environment variable. It has two page-aligned regions:
 *
 *   [0, stats_offset)           struct fl_ctl_header: rules. Written only by
 *                               the runner; the shim maps it read-only.
 *   [stats_offset, total_size)  struct fl_ctl_stats: counters and the event
 *                               ring. Written by the shim (atomically), read
 *                               by the runner.
 *
 * Rules are published with a per-rule sequence lock: a writer makes seq odd,
 * writes the fields, then makes seq even again; readers take a rule only if
 * seq was even and unchanged around their read. Writers serialise among
 * themselves with flock() on the file. After every change the writer stores
 * the union of the active rules' operation classes in `ops`: an intercepted
 * call whose class is not in `ops` costs the shim one atomic load and a branch.
 *
 * Stream faults (latency, bandwidth, slicer, stall, slow_close, reset_peer,
 * limit_data, down) are rules too, with ops = 0: the shim never applies
 * them; the runner's proxy does, and counts them in the same stats region.
 */
#ifndef FAULTLINE_CONTROL_H
#define FAULTLINE_CONTROL_H

#include <stdatomic.h>
#include <stdint.h>

#define FL_CTL_ENV "FAULTLINE_CONTROL"
#define FL_CTL_MAGIC                                                           \
  UINT64_C(0x314c5443544c4621) /* "!FLTCTL1" little-endian                     \
                                */
#define FL_CTL_VERSION 5u

#define FL_MAX_RULES 64
#define FL_MAX_ADDRS 4
#define FL_PATTERN_MAX 240
#define FL_SPEC_MAX 256
#define FL_RING_SIZE 1024  /* power of two */
#define FL_LIMIT_SLOTS 256 /* most connections a limit rule can count */

/* What a rule does. Values are part of the segment format: append only.
 * Names, options and help live in one table, harness/faults/vocab.c. */
#define FL_ACTIONS(X)                                                          \
  X(REFUSE)                                                                    \
  X(RESET)                                                                     \
  X(HANG)                                                                      \
  X(DELAY)                                                                     \
  X(LIMIT)                                                                     \
  X(EXHAUST)                                                                   \
  X(DNS)                                                                       \
  X(ENOSPC)                                                                    \
  X(EIO)                                                                       \
  X(REDIRECT)                                                                  \
  X(LATENCY)                                                                   \
  X(BANDWIDTH)                                                                 \
  X(SLICER)                                                                    \
  X(STALL)                                                                     \
  X(SLOW_CLOSE)                                                                \
  X(RESET_PEER)                                                                \
  X(LIMIT_DATA)                                                                \
  X(DOWN)                                                                      \
  X(REDIS_ERROR)                                                               \
  X(PG_ERROR)                                                                  \
  X(HTTP_ERROR)                                                                \
  X(HTTP_DELAY)                                                                \
  X(HTTP_CUT)                                                                  \
  X(WS_CLOSE)                                                                  \
  X(WS_NOPONG)                                                                 \
  X(WS_DROP)

enum fl_action {
  FL_ACT_NONE = 0,
#define FL_X_ENUM(name) FL_ACT_##name,
  FL_ACTIONS(FL_X_ENUM)
#undef FL_X_ENUM
      FL_ACT_COUNT
};

/* The proxy's stream faults, applied by the runner, never by the shim:
 * every action from LATENCY on. Those from REDIS_ERROR on speak the
 * dependency's protocol (struct fl_proto). */
#define FL_ACT_IS_PROXY(a) ((a) >= FL_ACT_LATENCY && (a) < FL_ACT_COUNT)
#define FL_ACT_IS_PROTO(a) ((a) >= FL_ACT_REDIS_ERROR && (a) < FL_ACT_COUNT)

/* What a rule is aimed at. */
enum fl_target {
  FL_TGT_INET = 1, /* addrs[] (each a CIDR) and port (0 = any) */
  FL_TGT_UNIX,     /* pattern: a unix socket path (exact) */
  FL_TGT_NAME,     /* pattern: a host name glob, for dns */
  FL_TGT_PATH,     /* pattern: a file path glob, for enospc/eio */
  FL_TGT_SOCKETS,  /* exhaust: socket(), socketpair(), accept() */
  FL_TGT_FILES,    /* exhaust: open() and friends */
  FL_TGT_FDS,      /* exhaust: both */
};

/* Operation classes: the shim's fast-path gate (bits of header.ops). */
enum fl_op_class {
  FL_OPC_CONNECT = 1u << 0, /* connect() */
  FL_OPC_SOCKIO = 1u << 1,  /* I/O on tracked (connected) sockets */
  FL_OPC_SOCKET = 1u << 2,  /* socket(), socketpair(), accept*() */
  FL_OPC_OPEN = 1u << 3,    /* open*(), creat*(), fopen*() */
  FL_OPC_FILEIO = 1u << 4,  /* write/pwrite/writev/fsync on files */
  FL_OPC_DNS = 1u << 5,     /* getaddrinfo(), gethostbyname*(), getnameinfo() */
};

/* The intercepted operation, as recorded in the event ring. Append only. */
#define FL_OPS(X)                                                              \
  X(CONNECT, "connect")                                                        \
  X(SEND, "send")                                                              \
  X(RECV, "recv")                                                              \
  X(READ, "read")                                                              \
  X(WRITE, "write")                                                            \
  X(SOCKET, "socket")                                                          \
  X(ACCEPT, "accept")                                                          \
  X(OPEN, "open")                                                              \
  X(FSYNC, "fsync")                                                            \
  X(GETADDRINFO, "getaddrinfo")                                                \
  X(GETHOSTBYNAME, "gethostbyname")                                            \
  X(GETNAMEINFO, "getnameinfo")                                                \
  X(PROXY, "proxy") /* a stream fault applied by the proxy (harness) */

enum fl_op {
  FL_OP_NONE = 0,
#define FL_X_ENUM(name, text) FL_OP_##name,
  FL_OPS(FL_X_ENUM)
#undef FL_X_ENUM
      FL_OP_COUNT
};

/* An address with a prefix length; IPv4 is stored as AF_INET, never mapped. */
struct fl_addr {
  uint8_t family; /* AF_INET, AF_INET6, or 0 for none */
  uint8_t prefix; /* CIDR prefix length in bits */
  uint16_t port;  /* host byte order; 0 = any port */
  uint8_t addr[16];
};

/* Which way a proxy fault acts: bits of fl_toxic.dir. */
enum fl_dir {
  FL_DIR_UP = 1u << 0,   /* client to dependency (requests) */
  FL_DIR_DOWN = 1u << 1, /* dependency to client (replies) */
  FL_DIR_BOTH = FL_DIR_UP | FL_DIR_DOWN,
};

/* Parameters of the proxy's stream faults ("toxics": actions LATENCY to
 * DOWN). These rules have ops = 0: the shim never applies them; the proxy
 * (harness/proxy/proxy.c) applies those aimed at its dependency's address. For
 * them p_threshold is the toxicity, decided once per connection, and
 * after/times count connections. */
struct fl_toxic {
  uint64_t rate;   /* bandwidth: bytes per second */
  uint64_t bytes;  /* reset_peer, limit_data: after this many bytes; 0 none */
  uint32_t jitter; /* latency: up to this many ms more or less, uniform */
  uint32_t size;   /* slicer: bytes per piece */
  uint8_t dir;     /* enum fl_dir bits */
  uint8_t has_ms;  /* ms was given (reset_peer: ms=0 means at once) */
  uint8_t reserved[6];
};

/* Parameters of the protocol faults (REDIS_ERROR and after), which the
 * proxy applies to whole messages of a protocol it follows on every
 * connection (harness/proxy/codec.c). For them p_threshold is the share of
 * messages hit, after/times count messages, and what each field means is
 * the action's (its row in harness/faults/vocab.c says). */
struct fl_proto {
  uint32_t status;  /* http: the status answered; a close code */
  uint8_t stage;    /* postgres: at start-up or on a query (enum fl_stage) */
  uint8_t close;    /* end the session after the reply: 1 yes, 2 no, 0 the
                     * action's default */
  uint8_t severity; /* postgres: enum fl_pg_severity, 0 the default */
  uint8_t reserved;
  char code[8];      /* postgres: the SQLSTATE */
  char match[120];   /* which messages: command names, "METHOD PATH-GLOB" */
  char reply[512];   /* the error text or body answered */
  char headers[256]; /* http: "Name: value" lines, \r\n-separated */
};

enum fl_pg_severity {
  FL_PG_ERROR = 1, /* the statement fails, the session stays */
  FL_PG_FATAL = 2, /* the session ends */
  FL_PG_PANIC = 3,
};

enum fl_stage {
  FL_STAGE_ANY = 0,
  FL_STAGE_STARTUP = 1, /* the session's start (postgres: refused) */
  FL_STAGE_QUERY = 2,   /* established sessions' next messages */
};

/* A rule the runner keeps for the whole run (its redirects to the proxy):
 * clearing all rules leaves it; only its own id removes it. */
#define FL_RULE_PINNED 1u

struct fl_rule {
  _Atomic uint32_t seq; /* odd while being written; see the file comment */
  uint32_t active;      /* 0 = free slot */
  uint32_t id;          /* user-visible number, unique for the segment */
  uint8_t action;       /* enum fl_action */
  uint8_t target;       /* enum fl_target */
  uint8_t naddrs;       /* used entries of addrs[] */
  uint8_t flags;        /* FL_RULE_* */
  uint32_t ops;         /* enum fl_op_class bits this rule applies to */
  int32_t err;          /* errno (EAI_* for dns) to inject; 0 = default */
  uint32_t ms;          /* delay; the proxy actions' ms= */
  uint32_t max;         /* limit: concurrent connections allowed */
  uint32_t reserved2;   /* keeps the 64-bit fields aligned */
  uint64_t p_threshold; /* inject when hash32 < threshold; 1<<32 = always */
  uint64_t after;       /* pass the first `after` matching calls */
  uint64_t times;       /* inject at most this many times; 0 = no bound */
  struct fl_addr addrs[FL_MAX_ADDRS];
  struct fl_addr redirect; /* REDIRECT: where connect goes instead */
  struct fl_toxic toxic;   /* proxy actions only */
  struct fl_proto proto;   /* protocol actions only */
  char pattern[FL_PATTERN_MAX];
  char spec[FL_SPEC_MAX]; /* the rule as the user wrote it */
};

struct fl_ctl_header {
  uint64_t magic;
  uint32_t version;
  uint32_t header_size; /* sizeof(struct fl_ctl_header) */
  uint32_t stats_offset;
  uint32_t total_size;
  uint32_t max_rules;
  uint32_t ring_size;
  _Atomic uint32_t ops;        /* union of active rules' op classes */
  _Atomic uint32_t generation; /* bumped after every change of the rules */
  uint64_t seed;               /* for p=: reproducible decisions */
  uint32_t next_id;            /* writers only */
  uint32_t owner_pid;          /* the process that created the segment */
  /* Listeners whose accept queue is full: a connect to them never
   * completes. Used by `hang`; family 0 when the creator made none. */
  struct fl_addr blackhole4;
  struct fl_addr blackhole6;
  struct fl_rule rules[FL_MAX_RULES];
  /* Usage recording (audit discovery): while set, the runner also keeps
   * FL_OPC_RECORD's classes in `ops`, and the shim's slow paths fill
   * struct fl_usage. Off, it costs nothing more than the usual gate. */
  _Atomic uint32_t record;
  uint32_t reserved_record;
};

/* A connection counted by a limit rule. Holders are named by pid, fd and
 * socket inode so that a holder that died or exec'd without close() can be
 * recognised and its place reclaimed: its socket is gone from /proc. */
struct fl_limit_slot {
  _Atomic uint64_t owner; /* pid << 32 | (fd + 1); 0 = free */
  _Atomic uint64_t ino;   /* the socket's inode; 0 while being claimed */
};

struct fl_rule_stats {
  _Atomic uint64_t matched;  /* calls that matched the rule's target */
  _Atomic uint64_t injected; /* faults delivered */
  _Atomic uint64_t bytes;    /* proxy: bytes held back (latency, bandwidth,
                                slicer) */
  struct fl_limit_slot held[FL_LIMIT_SLOTS];
};

/* One injected fault. seq is index+1 once the entry is complete. */
struct fl_event {
  _Atomic uint64_t seq;
  _Atomic uint64_t time_ns; /* CLOCK_REALTIME */
  _Atomic int32_t pid;
  _Atomic uint32_t rule_id;
  _Atomic uint16_t op; /* enum fl_op */
  _Atomic uint16_t reserved;
  _Atomic int32_t err;
};

/*
 * What the target used, recorded while header.record is set: per
 * destination, connects and I/O calls on connected sockets (pooled
 * connections opened earlier count too); names resolved; paths opened for
 * writing. Fixed-size open-addressing tables: a writer claims a slot by a
 * CAS of its key (a hash of what it records, never 0) from 0, writes the
 * slot's text or address, then sets `ready`; readers take ready slots
 * only. A key that finds no slot is counted in `overflow`, never stored.
 */
#define FL_USE_DESTS 256
#define FL_USE_NAMES 128
#define FL_USE_PATHS 256
#define FL_USE_TEXT 240

/* The op classes whose slow paths record: set in header.ops by the runner
 * while header.record is on. */
#define FL_OPC_RECORD                                                          \
  (FL_OPC_CONNECT | FL_OPC_SOCKIO | FL_OPC_OPEN | FL_OPC_DNS)

struct fl_use_dest {
  _Atomic uint64_t key; /* 0: free */
  _Atomic uint32_t ready;
  uint32_t reserved;
  struct fl_addr addr; /* family, addr and port; prefix unused */
  _Atomic uint64_t connects;
  _Atomic uint64_t ios; /* reads and writes on connected sockets */
};

/* Bits of fl_use_text.flags. */
enum fl_use_flag {
  FL_USEF_CREATE = 1u << 0, /* opened with O_CREAT: a file it may create */
};

struct fl_use_text {
  _Atomic uint64_t key; /* 0: free */
  _Atomic uint32_t ready;
  _Atomic uint32_t flags; /* enum fl_use_flag bits */
  _Atomic uint64_t count;
  char text[FL_USE_TEXT]; /* NUL-terminated, truncated when longer */
};

struct fl_usage {
  _Atomic uint64_t overflow_dests, overflow_names, overflow_paths;
  struct fl_use_dest dests[FL_USE_DESTS];
  struct fl_use_text names[FL_USE_NAMES];
  struct fl_use_text paths[FL_USE_PATHS];
};

struct fl_ctl_stats {
  _Atomic uint64_t ring_head; /* events ever recorded */
  _Atomic uint64_t untracked; /* connected fds too high to track */
  struct fl_rule_stats rules[FL_MAX_RULES];
  struct fl_event ring[FL_RING_SIZE];
  struct fl_usage usage;
};

#define FL_CTL_PAGE 4096u
#define FL_CTL_ALIGN(n) (((n) + FL_CTL_PAGE - 1) / FL_CTL_PAGE * FL_CTL_PAGE)
#define FL_CTL_STATS_OFFSET FL_CTL_ALIGN(sizeof(struct fl_ctl_header))
#define FL_CTL_TOTAL_SIZE                                                      \
  (FL_CTL_STATS_OFFSET + FL_CTL_ALIGN(sizeof(struct fl_ctl_stats)))

#endif
