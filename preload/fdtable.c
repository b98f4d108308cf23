/*
 * What each connected socket is connected to, so that rules aimed at a
 * destination reach connections made before the rule was switched on.
 *
 * A fixed table indexed by fd (no allocation). Every field is atomic: an fd
 * number can be closed in one thread and reused by connect() in another, an
 * ordering that only the kernel sees.
 *
 * Entries can go stale without our close() seeing it (dup2 over a socket,
 * close_range, an fd closed in a forked child), so before a fault is
 * delivered on an established connection fl_fd_verify() checks the peer.
 *
 * vfork: a vfork child (Python's subprocess, posix_spawn) shares our memory
 * and closes fds it inherited; clearing our entries there would blind the
 * parent. So an entry is cleared only by the process that made it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "shim.h"

#define FD_SLOTS 65536

struct slot {
  _Atomic uint32_t state; /* 0 free, 1 tracked */
  _Atomic int32_t pid;
  _Atomic uint64_t dest[3]; /* struct fl_addr, packed */
  _Atomic uint64_t unix_hash;
  _Atomic uint64_t peer_hash; /* of the address actually connected to */
  _Atomic int32_t limit_rule; /* -1: not counted by a limit rule */
  _Atomic uint32_t limit_seq;
  _Atomic int32_t limit_slot;
  _Atomic uint64_t ino;   /* the socket's inode when known, else 0 */
  _Atomic uint32_t quiet; /* generation + 1 when no rule covers it; 0 */
};

_Static_assert(sizeof(struct fl_addr) <= 3 * sizeof(uint64_t),
               "fl_addr must pack into three words");

static struct slot slots[FD_SLOTS];
extern FL_HIDDEN struct fl_ctl_stats *fl_stats;

static uint64_t peer_hash(const struct sockaddr *sa, socklen_t len) {
  struct fl_addr a;
  if (fl_addr_from_sockaddr(sa, len, &a) == 0)
    return fl_hash_bytes(&a, sizeof(a), FL_HASH_SEED) | 1u;
  if (sa != NULL && sa->sa_family == AF_UNIX &&
      len > (socklen_t)offsetof(struct sockaddr_un, sun_path)) {
    const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
    size_t n = strnlen(un->sun_path, sizeof(un->sun_path));
    return fl_hash_bytes(un->sun_path, n, FL_HASH_SEED) | 1u;
  }
  return 0;
}

FL_HIDDEN void fl_fd_track(int fd, const struct fl_dest *d,
                           const struct sockaddr *peer, socklen_t peerlen,
                           struct fl_limit_hold hold) {
  if (fd < 0 || fd >= FD_SLOTS) {
    /* A limit place taken here stays until the reaper sees the socket
     * gone: close() cannot find it without a table entry. */
    if (fl_stats != NULL)
      atomic_fetch_add_explicit(&fl_stats->untracked, 1, memory_order_relaxed);
    return;
  }
  struct slot *s = &slots[fd];
  uint64_t w[3] = {0, 0, 0};
  memcpy(w, &d->inet, sizeof(d->inet));
  atomic_store_explicit(&s->state, 0, memory_order_relaxed);
  atomic_store_explicit(&s->pid, atomic_load(&fl_pid), memory_order_relaxed);
  for (int i = 0; i < 3; i++)
    atomic_store_explicit(&s->dest[i], w[i], memory_order_relaxed);
  atomic_store_explicit(&s->unix_hash, d->unix_hash, memory_order_relaxed);
  atomic_store_explicit(&s->peer_hash, peer_hash(peer, peerlen),
                        memory_order_relaxed);
  atomic_store_explicit(&s->limit_rule, hold.rule, memory_order_relaxed);
  atomic_store_explicit(&s->limit_seq, hold.seq, memory_order_relaxed);
  atomic_store_explicit(&s->limit_slot, hold.slot, memory_order_relaxed);
  atomic_store_explicit(&s->ino, 0, memory_order_relaxed);
  atomic_store_explicit(&s->quiet, 0, memory_order_relaxed);
  atomic_store_explicit(&s->state, 1, memory_order_release);
}

FL_HIDDEN int fl_fd_same_dest(int fd, const struct fl_dest *d) {
  if (fd < 0 || fd >= FD_SLOTS)
    return 0;
  struct slot *s = &slots[fd];
  if (atomic_load_explicit(&s->state, memory_order_acquire) == 0 ||
      atomic_load_explicit(&s->pid, memory_order_relaxed) !=
          atomic_load(&fl_pid))
    return 0;
  uint64_t w[3] = {0, 0, 0};
  memcpy(w, &d->inet, sizeof(d->inet));
  for (int i = 0; i < 3; i++)
    if (atomic_load_explicit(&s->dest[i], memory_order_relaxed) != w[i])
      return 0;
  if (atomic_load_explicit(&s->unix_hash, memory_order_relaxed) != d->unix_hash)
    return 0;
  /* The entry may be stale: libuv (Node) closes fds with syscall(), which
   * we do not see, and the number is reused for a new socket. Only the
   * same socket (inode) is the same connection. */
  uint64_t ino = atomic_load_explicit(&s->ino, memory_order_relaxed);
  int saved = errno;
  struct stat st;
  int same = ino != 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_ino == ino;
  errno = saved;
  return same;
}

FL_HIDDEN int fl_fd_quiet(int fd, uint32_t gen) {
  return fd >= 0 && fd < FD_SLOTS &&
         atomic_load_explicit(&slots[fd].quiet, memory_order_relaxed) ==
             gen + 1;
}

FL_HIDDEN void fl_fd_mark_quiet(int fd, uint32_t gen) {
  if (fd >= 0 && fd < FD_SLOTS)
    atomic_store_explicit(&slots[fd].quiet, gen + 1, memory_order_relaxed);
}

FL_HIDDEN void fl_fd_note_inode(int fd) {
  if (fd < 0 || fd >= FD_SLOTS)
    return;
  int saved = errno;
  struct stat st;
  if (fstat(fd, &st) == 0)
    atomic_store_explicit(&slots[fd].ino, (uint64_t)st.st_ino,
                          memory_order_relaxed);
  errno = saved;
}

FL_HIDDEN void fl_fd_forget(int fd) {
  if (fd < 0 || fd >= FD_SLOTS)
    return;
  struct slot *s = &slots[fd];
  if (atomic_load_explicit(&s->state, memory_order_acquire) == 0)
    return;
  int saved = errno;
  int owner = atomic_load_explicit(&s->pid, memory_order_relaxed);
  if (owner == atomic_load(&fl_pid) && owner == (int)syscall(SYS_getpid)) {
    int rule =
        atomic_exchange_explicit(&s->limit_rule, -1, memory_order_relaxed);
    if (rule >= 0) {
      struct fl_limit_hold hold = {
          .rule = rule,
          .seq = atomic_load_explicit(&s->limit_seq, memory_order_relaxed),
          .slot = atomic_load_explicit(&s->limit_slot, memory_order_relaxed)};
      fl_limit_release(&hold);
    }
    atomic_store_explicit(&s->state, 0, memory_order_release);
  }
  errno = saved;
}

FL_HIDDEN int fl_fd_lookup(int fd, struct fl_dest *d) {
  if (fd < 0 || fd >= FD_SLOTS)
    return 0;
  struct slot *s = &slots[fd];
  if (atomic_load_explicit(&s->state, memory_order_acquire) == 0)
    return 0;
  uint64_t w[3];
  for (int i = 0; i < 3; i++)
    w[i] = atomic_load_explicit(&s->dest[i], memory_order_relaxed);
  memcpy(&d->inet, w, sizeof(d->inet));
  d->unix_hash = atomic_load_explicit(&s->unix_hash, memory_order_relaxed);
  d->fd = -1;
  d->msg_flags = 0;
  return 1;
}

FL_HIDDEN int fl_fd_verify(int fd) {
  if (fd < 0 || fd >= FD_SLOTS)
    return 0;
  int saved = errno;
  struct sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  int ok = getpeername(fd, (struct sockaddr *)&ss, &len) == 0 &&
           peer_hash((struct sockaddr *)&ss, len) ==
               atomic_load_explicit(&slots[fd].peer_hash, memory_order_relaxed);
  errno = saved;
  return ok;
}

FL_HIDDEN int fl_fd_blocking(int fd, int msg_flags) {
  if ((msg_flags & MSG_DONTWAIT) != 0)
    return 0;
  int saved = errno;
  int fl = fcntl(fd, F_GETFL);
  errno = saved;
  return fl >= 0 && (fl & O_NONBLOCK) == 0;
}
