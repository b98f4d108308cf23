/*
 * Internals of libfaultline-preload.so. Nothing here is exported: the
 * version script exports only the interposed libc names.
 */
#ifndef FL_SHIM_H
#define FL_SHIM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "faultline/segment.h"
#include "match.h"

#define FL_HIDDEN __attribute__((visibility("hidden")))
#define FL_UNLIKELY(x) __builtin_expect(!!(x), 0)

struct addrinfo;
struct hostent;
struct mmsghdr;

/* Every libc function the shim calls through to: (return, name, params). */
#define FL_REAL_SYMBOLS(X)                                                     \
  X(int, socket, (int, int, int))                                              \
  X(int, socketpair, (int, int, int, int *))                                   \
  X(int, connect, (int, const struct sockaddr *, socklen_t))                   \
  X(int, accept, (int, struct sockaddr *, socklen_t *))                        \
  X(int, accept4, (int, struct sockaddr *, socklen_t *, int))                  \
  X(int, close, (int))                                                         \
  X(ssize_t, send, (int, const void *, size_t, int))                           \
  X(ssize_t, sendto,                                                           \
    (int, const void *, size_t, int, const struct sockaddr *, socklen_t))      \
  X(ssize_t, sendmsg, (int, const struct msghdr *, int))                       \
  X(int, sendmmsg, (int, struct mmsghdr *, unsigned int, int))                 \
  X(ssize_t, recv, (int, void *, size_t, int))                                 \
  X(ssize_t, recvfrom,                                                         \
    (int, void *, size_t, int, struct sockaddr *, socklen_t *))                \
  X(ssize_t, recvmsg, (int, struct msghdr *, int))                             \
  X(int, recvmmsg,                                                             \
    (int, struct mmsghdr *, unsigned int, int, struct timespec *))             \
  X(ssize_t, __recv_chk, (int, void *, size_t, size_t, int))                   \
  X(ssize_t, __recvfrom_chk,                                                   \
    (int, void *, size_t, size_t, int, struct sockaddr *, socklen_t *))        \
  X(ssize_t, read, (int, void *, size_t))                                      \
  X(ssize_t, __read_chk, (int, void *, size_t, size_t))                        \
  X(ssize_t, readv, (int, const struct iovec *, int))                          \
  X(ssize_t, write, (int, const void *, size_t))                               \
  X(ssize_t, writev, (int, const struct iovec *, int))                         \
  X(ssize_t, pwrite, (int, const void *, size_t, off_t))                       \
  X(ssize_t, pwrite64, (int, const void *, size_t, off_t))                     \
  X(ssize_t, pwritev, (int, const struct iovec *, int, off_t))                 \
  X(ssize_t, pwritev64, (int, const struct iovec *, int, off_t))               \
  X(int, fsync, (int))                                                         \
  X(int, fdatasync, (int))                                                     \
  X(int, open, (const char *, int, ...))                                       \
  X(int, open64, (const char *, int, ...))                                     \
  X(int, __open_2, (const char *, int))                                        \
  X(int, __open64_2, (const char *, int))                                      \
  X(int, openat, (int, const char *, int, ...))                                \
  X(int, openat64, (int, const char *, int, ...))                              \
  X(int, __openat_2, (int, const char *, int))                                 \
  X(int, __openat64_2, (int, const char *, int))                               \
  X(int, creat, (const char *, mode_t))                                        \
  X(int, creat64, (const char *, mode_t))                                      \
  X(FILE *, fopen, (const char *, const char *))                               \
  X(FILE *, fopen64, (const char *, const char *))                             \
  X(int, getaddrinfo,                                                          \
    (const char *, const char *, const struct addrinfo *, struct addrinfo **)) \
  X(int, getnameinfo,                                                          \
    (const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, \
     int))                                                                     \
  X(struct hostent *, gethostbyname, (const char *))                           \
  X(struct hostent *, gethostbyname2, (const char *, int))                     \
  X(int, gethostbyname_r,                                                      \
    (const char *, struct hostent *, char *, size_t, struct hostent **,        \
     int *))                                                                   \
  X(int, gethostbyname2_r,                                                     \
    (const char *, int, struct hostent *, char *, size_t, struct hostent **,   \
     int *))

#include <stdio.h>
#define FL_X_DECL(ret, name, params)                                           \
  extern FL_HIDDEN ret(*fl_real_##name) params;
FL_REAL_SYMBOLS(FL_X_DECL)
#undef FL_X_DECL

/* The fast-path gate: points at header.ops once a segment is mapped, at a
 * constant zero before that and when there is none. */
extern FL_HIDDEN _Atomic uint32_t *fl_ops_word;

static inline uint32_t fl_ops(void) {
  return atomic_load_explicit(fl_ops_word, memory_order_relaxed);
}

/* A place taken in a limit rule's table; rule -1 for none. */
struct fl_limit_hold {
  int rule;
  uint32_t seq; /* the rule's seq when taken: a replaced rule starts afresh */
  int slot;
};
#define FL_NO_HOLD ((struct fl_limit_hold){.rule = -1, .seq = 0, .slot = -1})

/* What the shim decided for one call. */
struct fl_verdict {
  int action;   /* enum fl_action; FL_ACT_NONE = pass through */
  int err;      /* errno (or EAI_*) to report */
  uint32_t ms;  /* DELAY */
  int rule;     /* rule slot index */
  uint32_t seq; /* that rule's seq when decided */
  uint32_t rule_id;
  struct fl_addr to;         /* REDIRECT: where to connect instead */
  struct fl_limit_hold hold; /* the limit rule counting this connect */
};

/* The destination of a connection, as rules see it. */
struct fl_dest {
  struct fl_addr inet; /* family 0 when not inet */
  uint64_t unix_hash;  /* 0 when not a unix socket path */
  /* The socket and the call's MSG_* flags, or fd -1. With an fd, a delay
   * applies only to a blocking call and a reset only to a socket whose
   * peer is still the tracked one. */
  int fd;
  int msg_flags;
  /* Set by the rule loop when some rule's address covered this
   * destination, whatever it then decided: otherwise the socket can be
   * marked quiet until the rules change. */
  int addr_seen;
};

/* Rule evaluation (rules.c). Each returns 1 and fills *v when a fault is to
 * be injected, 0 to pass through. They preserve errno. */
FL_HIDDEN int fl_decide_dest(uint32_t opc, const struct fl_dest *d,
                             struct fl_verdict *v);
FL_HIDDEN int fl_decide_name(const char *name, struct fl_verdict *v);
FL_HIDDEN int fl_decide_path(uint32_t opc, const char *path,
                             struct fl_verdict *v);
FL_HIDDEN int fl_decide_exhaust(uint32_t opc, struct fl_verdict *v);
/* Is the rule behind `v` still installed unchanged and active? */
FL_HIDDEN int fl_rule_still_active(const struct fl_verdict *v);
/* Counts an injection and records it in the ring. */
FL_HIDDEN void fl_record(const struct fl_verdict *v, int op);
/* limit: give back a place taken by fl_decide_dest(). */
FL_HIDDEN void fl_limit_release(struct fl_limit_hold *hold);
FL_HIDDEN const struct fl_ctl_header *fl_header(void);
/* libc's function of that name (init.c), or NULL. */
FL_HIDDEN void *fl_resolve(const char *name);

/* The fd table (fdtable.c): what each connected socket is connected to. */
FL_HIDDEN void fl_fd_track(int fd, const struct fl_dest *d,
                           const struct sockaddr *peer, socklen_t peerlen,
                           struct fl_limit_hold hold);
FL_HIDDEN void fl_fd_forget(int fd);
/* Is fd already tracked, by this process, as connecting to d? A second
 * connect() on a non-blocking socket only collects the first one's result
 * (hiredis does this); it is the same connection, not a new one. */
FL_HIDDEN int fl_fd_same_dest(int fd, const struct fl_dest *d);
/* Remembers the socket's inode for fl_fd_same_dest (slow path only). */
FL_HIDDEN void fl_fd_note_inode(int fd);
/* Fills *d for a tracked socket; returns 0 if fd is not one. */
FL_HIDDEN int fl_fd_lookup(int fd, struct fl_dest *d);
/* The quiet mark: no rule's address covered this socket at rule
 * generation `gen`, so its calls skip the rule loop until it changes. */
FL_HIDDEN int fl_fd_quiet(int fd, uint32_t gen);
FL_HIDDEN void fl_fd_mark_quiet(int fd, uint32_t gen);
/* The rules' generation (header.generation; 0 with no segment). */
FL_HIDDEN uint32_t fl_generation(void);
/* Is fd still the socket we tracked (its peer unchanged)? Costs a syscall. */
FL_HIDDEN int fl_fd_verify(int fd);
/* Would a call on fd with these MSG_* flags block? Costs a syscall. */
FL_HIDDEN int fl_fd_blocking(int fd, int msg_flags);

/* Process identity, refreshed after fork(); see fdtable.c for vfork. */
extern FL_HIDDEN _Atomic int fl_pid;

/* Usage recording (usage.c): the segment's tables while the runner has
 * recording on, else NULL (init.c). Slow paths only. */
FL_HIDDEN struct fl_usage *fl_recording(void);
FL_HIDDEN void fl_usage_dest(struct fl_usage *u, const struct fl_addr *a,
                             int connect);
FL_HIDDEN void fl_usage_name(struct fl_usage *u, const char *name);
FL_HIDDEN void fl_usage_path(struct fl_usage *u, const char *path,
                             uint32_t flags);

/* Sleeps ms milliseconds, resuming after signals. */
FL_HIDDEN void fl_sleep_ms(uint32_t ms);

#endif
