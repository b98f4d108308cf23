/* The shim under the sanitizers: threads connecting, reading, resolving
 * and writing files while rules flip, under ASan/UBSan and separately
 * TSan. No crash, no sanitizer report, no lost errno, and every kind of
 * fault actually delivered.
 *
 * The binaries (tests/stress/stress_target.c compiled with the shim's
 * sources) are built by the standalone project tests/stress:
 *   cmake -S tests/stress -B build/stress-build
 *   cmake --build build/stress-build
 * A missing binary fails the test: a stress test that quietly skips proves
 * nothing.
 *
 * The rules are flipped from this process, never from the target: the shim
 * reads rule fields under a seqlock, a benign race by design that TSan would
 * report if the writer were a thread of the target. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "control/control.h"
#include "faults/faults.h"
#include "support.h"

#ifndef FL_STRESS_BUILD_DIR
#define FL_STRESS_BUILD_DIR FL_TEST_BUILD_DIR "/stress-build"
#endif
#define STRESS_SECONDS "8"
#define STRESS_THREADS "8"
#define MAX_SPECS 16
#define MAX_IDS 65536
#define MAX_PIDS 4

/* Every action the flipper uses, aimed at the target's echo server (PORT),
 * its data folder (DIR) or everything. The target accepts exactly the
 * errnos these can inject. */
static const char *const spec_templates[] = {
    "refuse@127.0.0.1:PORT",
    "refuse@127.0.0.1:PORT,err=ETIMEDOUT,p=50%",
    "refuse@127.0.0.0/8,after=3,times=5",
    "reset@127.0.0.1:PORT",
    "reset@127.0.0.1:PORT,err=EPIPE,p=30%",
    "delay@127.0.0.1:PORT,ms=1",
    "limit@127.0.0.1:PORT,max=2",
    "hang@127.0.0.1:PORT",
    "exhaust@sockets",
    "exhaust@files,p=20%",
    "dns@localhost",
    "dns@local*,err=EAI_NONAME",
    "enospc@DIR/data/*",
    "eio@DIR/data/*,p=50%",
};
#define NSPECS (int)(sizeof(spec_templates) / sizeof(spec_templates[0]))

struct stress {
  fl_control_t *ctl;
  char dir[256];
  char port_file[300];
  struct fl_rule rules[MAX_SPECS];
  atomic_int stop;
  /* Written by the flipper thread, read after it is joined. */
  int port;
  char error[512];
  unsigned long flips;
  uint64_t injected[FL_ACT_COUNT];
  uint64_t events, since;
  int pids[MAX_PIDS], npids;
  unsigned long bad_events;
  char bad_event[1024];     /* the first few, one per line */
  uint8_t id_spec[MAX_IDS]; /* rule id -> spec index + 1 */
  unsigned long long rng;
};

static unsigned next_rand(struct stress *s) {
  s->rng ^= s->rng << 13;
  s->rng ^= s->rng >> 7;
  s->rng ^= s->rng << 17;
  return (unsigned)(s->rng >> 11);
}

static void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

/* Replaces PORT and DIR in a template. */
static void expand(const char *tpl, int port, const char *dir, char *out,
                   size_t size) {
  size_t at = 0;
  out[0] = '\0';
  for (const char *p = tpl; *p != '\0' && at + 1 < size;) {
    if (strncmp(p, "PORT", 4) == 0) {
      at += (size_t)snprintf(out + at, size - at, "%d", port);
      p += 4;
    } else if (strncmp(p, "DIR", 3) == 0) {
      at += (size_t)snprintf(out + at, size - at, "%s", dir);
      p += 3;
    } else {
      out[at++] = *p++;
      out[at] = '\0';
    }
  }
}

static int default_err(int action) {
  switch (action) {
  case FL_ACT_REFUSE:
  case FL_ACT_LIMIT:
    return ECONNREFUSED;
  case FL_ACT_RESET:
    return ECONNRESET;
  case FL_ACT_EXHAUST:
    return EMFILE;
  case FL_ACT_DNS:
    return EAI_AGAIN;
  case FL_ACT_ENOSPC:
    return ENOSPC;
  case FL_ACT_EIO:
    return EIO;
  default:
    return 0; /* hang, delay */
  }
}

/* Could a rule of this action record an event for this operation? */
static int op_fits(int action, int op) {
  switch (action) {
  case FL_ACT_REFUSE:
  case FL_ACT_LIMIT:
  case FL_ACT_HANG:
    return op == FL_OP_CONNECT;
  case FL_ACT_RESET:
    return op == FL_OP_SEND || op == FL_OP_RECV || op == FL_OP_READ ||
           op == FL_OP_WRITE;
  case FL_ACT_DELAY:
    return op == FL_OP_CONNECT || op == FL_OP_SEND || op == FL_OP_RECV ||
           op == FL_OP_READ || op == FL_OP_WRITE;
  case FL_ACT_EXHAUST:
    return op == FL_OP_SOCKET || op == FL_OP_ACCEPT || op == FL_OP_OPEN;
  case FL_ACT_DNS:
    return op == FL_OP_GETADDRINFO || op == FL_OP_GETHOSTBYNAME;
  case FL_ACT_ENOSPC:
  case FL_ACT_EIO:
    return op == FL_OP_OPEN || op == FL_OP_WRITE || op == FL_OP_FSYNC;
  default:
    return 0;
  }
}

/* Reads new events from the ring and checks each against its rule. */
static void drain_events(struct stress *s) {
  struct fl_event_view ev[256];
  int n;
  while ((n = fl_control_events(s->ctl, &s->since, ev, 256)) > 0) {
    for (int i = 0; i < n; i++) {
      s->events++;
      int known = 0;
      for (int k = 0; k < s->npids; k++)
        known |= s->pids[k] == ev[i].pid;
      if (!known && s->npids < MAX_PIDS)
        s->pids[s->npids++] = ev[i].pid;
      uint32_t id = ev[i].rule_id;
      int spec = id < MAX_IDS ? s->id_spec[id] - 1 : -1;
      const struct fl_rule *r = spec >= 0 ? &s->rules[spec] : NULL;
      int want = r == NULL ? 0 : r->err != 0 ? r->err : default_err(r->action);
      if (r != NULL && ev[i].err == want && op_fits(r->action, ev[i].op))
        continue;
      size_t at = strlen(s->bad_event);
      if (s->bad_events++ < 4)
        snprintf(s->bad_event + at, sizeof(s->bad_event) - at,
                 "\n  event %llu: rule %u '%s' (installed after '%s'), "
                 "op %s, err %d (expected err %d)",
                 (unsigned long long)ev[i].index, id,
                 r != NULL ? r->spec : "never installed",
                 id >= 2 && id - 1 < MAX_IDS && s->id_spec[id - 1] != 0
                     ? s->rules[s->id_spec[id - 1] - 1].spec
                     : "-",
                 fl_op_name(ev[i].op), ev[i].err, want);
    }
  }
}

/* Adds the counters of installed rule `id` to the totals; just before it
 * is cleared (clearing loses them). */
static void harvest(struct stress *s, uint32_t id) {
  struct fl_rule_view v;
  if (fl_control_rule(s->ctl, id, &v) == 0 && v.rule.action < FL_ACT_COUNT)
    s->injected[v.rule.action] += v.injected;
}

static int wait_port(struct stress *s) {
  while (!atomic_load(&s->stop)) {
    FILE *f = fopen(s->port_file, "r");
    if (f != NULL) {
      int ok = fscanf(f, "%d", &s->port) == 1;
      fclose(f);
      if (ok)
        return 0;
    }
    sleep_ms(5);
  }
  return -1;
}

/* The flipper: round-robin through the specs, one to three rules at a
 * time, each set on for 2-15 ms, then off for 0-4 ms. */
static void *flip(void *arg) {
  struct stress *s = arg;
  if (wait_port(s) != 0)
    return NULL; /* the target never listened: its output says why */
  for (int i = 0; i < NSPECS; i++) {
    char spec[FL_SPEC_MAX], err[512];
    expand(spec_templates[i], s->port, s->dir, spec, sizeof(spec));
    if (fl_spec_parse(spec, &s->rules[i], err, sizeof(err)) != 0) {
      snprintf(s->error, sizeof(s->error), "%s", err);
      return NULL;
    }
  }
  int next = 0;
  while (!atomic_load(&s->stop)) {
    uint32_t ids[3];
    int k = 1 + (int)(next_rand(s) % 3);
    for (int j = 0; j < k; j++) {
      int spec = next++ % NSPECS;
      int rc = fl_control_add(s->ctl, &s->rules[spec], &ids[j]);
      if (rc != 0) {
        snprintf(s->error, sizeof(s->error), "fl_control_add('%s'): %d",
                 s->rules[spec].spec, rc);
        return NULL;
      }
      if (ids[j] < MAX_IDS)
        s->id_spec[ids[j]] = (uint8_t)(spec + 1);
      s->flips++;
    }
    sleep_ms(2 + next_rand(s) % 14);
    for (int j = 0; j < k; j++)
      harvest(s, ids[j]);
    if (next_rand(s) % 8 == 0) {
      fl_control_clear(s->ctl, 0);
    } else {
      for (int j = 0; j < k; j++)
        fl_control_clear(s->ctl, ids[j]);
    }
    s->flips += (unsigned long)k;
    drain_events(s);
    sleep_ms(next_rand(s) % 5);
  }
  return NULL;
}

/* Runs the target once while the flipper works on it. */
static void run_target(struct stress *s, char *const argv[], struct t_run *r) {
  char env_ctl[PATH_MAX + 32];
  snprintf(env_ctl, sizeof(env_ctl), FL_CTL_ENV "=%s", fl_control_path(s->ctl));
  char *env[] = {
      env_ctl,
      "ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0:"
      "check_initialization_order=1:strict_string_checks=1",
      "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1",
      "TSAN_OPTIONS=halt_on_error=0:exitcode=66:second_deadlock_stack=1", NULL};
  unlink(s->port_file);
  atomic_store(&s->stop, 0);
  pthread_t tid;
  cr_assert_eq(pthread_create(&tid, NULL, flip, s), 0);
  int rc = t_run(argv, env, NULL, 90000, r);
  atomic_store(&s->stop, 1);
  pthread_join(tid, NULL);
  cr_assert_eq(rc, 0, "cannot run %s", argv[0]);
}

static int contains(const struct t_run *r, const char *needle) {
  return strstr(r->out, needle) != NULL || strstr(r->err, needle) != NULL;
}

static void run_variant(const char *name) {
  char exe[PATH_MAX];
  snprintf(exe, sizeof(exe), "%s/%s", FL_STRESS_BUILD_DIR, name);
  cr_assert(access(exe, X_OK) == 0,
            "%s is missing: build the sanitizer stress binaries with\n"
            "  cmake -S " FL_TEST_SOURCE_DIR
            "/tests/stress -B " FL_STRESS_BUILD_DIR
            "\n  cmake --build " FL_STRESS_BUILD_DIR,
            exe);

  static struct stress s; /* large: id_spec */
  memset(&s, 0, sizeof(s));
  char tmp[256], real[PATH_MAX];
  cr_assert_eq(t_mkdtemp(tmp), 0);
  /* The shim matches disk-fault globs against resolved paths. */
  cr_assert_not_null(realpath(tmp, real));
  cr_assert_lt(strlen(real), sizeof(s.dir), "temporary folder path too long");
  memcpy(s.dir, real, strlen(real) + 1);
  snprintf(s.port_file, sizeof(s.port_file), "%s/port", s.dir);
  char ctlpath[300];
  snprintf(ctlpath, sizeof(ctlpath), "%s/control", s.dir);
  s.rng = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32);
  s.rng |= 1;
  uint64_t seed = s.rng;
  cr_log_info("%s: seed %llu, folder %s", name, (unsigned long long)seed,
              s.dir);
  char err[512];
  cr_assert_eq(fl_control_setup(ctlpath, seed, &s.ctl, err, sizeof(err)), 0,
               "%s", err);

  char *argv[] = {"setarch",   NULL,           "-R",          exe,
                  "--threads", STRESS_THREADS, "--seconds",   STRESS_SECONDS,
                  "--dir",     s.dir,          "--port-file", s.port_file,
                  NULL};
  struct t_run r;
  run_target(&s, argv + 3, &r);
  /* TSan maps its shadow at fixed addresses; on kernels with many ASLR bits
   * (vm.mmap_rnd_bits > 28) it dies at start with "unexpected memory
   * mapping". Run it again with randomisation off. */
  if (r.status != 0 && contains(&r, "unexpected memory mapping")) {
    struct utsname u;
    cr_assert_eq(uname(&u), 0);
    argv[1] = u.machine;
    cr_log_warn("%s: retrying under setarch %s -R", name, u.machine);
    t_run_free(&r);
    run_target(&s, argv, &r);
  }

  /* Final counters: what is still installed, then clear everything. */
  struct fl_rule_view views[FL_MAX_RULES];
  int n = fl_control_rules(s.ctl, views, FL_MAX_RULES);
  for (int i = 0; i < n; i++)
    s.injected[views[i].rule.action] += views[i].injected;
  fl_control_clear(s.ctl, 0);
  drain_events(&s);

  char summary[1024];
  int at = snprintf(summary, sizeof(summary),
                    "%s: exit %d, %lu flips, %llu events; injected:", name,
                    r.status, s.flips, (unsigned long long)s.events);
  for (int a = FL_ACT_NONE + 1; a < FL_ACT_COUNT && at < (int)sizeof(summary);
       a++)
    at += snprintf(summary + at, sizeof(summary) - (size_t)at, " %s=%llu",
                   fl_action_name(a), (unsigned long long)s.injected[a]);
  cr_log_info("%s", summary);

  int sanitizer = contains(&r, "ERROR: AddressSanitizer") ||
                  contains(&r, "ERROR: LeakSanitizer") ||
                  contains(&r, "runtime error:") ||
                  contains(&r, "WARNING: ThreadSanitizer") ||
                  contains(&r, "ThreadSanitizer:") ||
                  contains(&r, "Sanitizer CHECK failed");
  if (r.status != 0 || sanitizer || s.error[0] != '\0')
    fprintf(stderr, "---- %s stdout ----\n%s---- %s stderr ----\n%s----\n",
            name, r.out, name, r.err);
  cr_expect_eq(s.error[0], '\0', "%s: the flipper failed: %s", name, s.error);
  cr_expect_not(sanitizer, "%s: sanitizer report (output above)", name);
  cr_expect_eq(r.status, 0, "%s: exit status %d, expected 0 (output above)",
               name, r.status);
  cr_expect(strstr(r.out, "stress: PASS") != NULL, "%s: no PASS line", name);
  cr_expect_eq(s.bad_events, 0,
               "%s: %lu event(s) disagree with the rule they name:%s", name,
               s.bad_events, s.bad_event);

  /* The faults must have landed, every kind of them. */
  cr_expect_gt(s.flips, 200, "%s: only %lu rule flips", name, s.flips);
  for (int i = 0; i < NSPECS; i++) {
    int a = s.rules[i].action;
    cr_expect_gt(s.injected[a], 0, "%s: no %s fault was injected", name,
                 fl_action_name(a));
  }
  const char *seen = strstr(r.out, "faults_seen=");
  cr_expect(seen != NULL && strtoul(seen + 12, NULL, 10) > 0,
            "%s: the target saw no fault", name);
  cr_expect_gt(s.events, 0, "%s: no event in the ring", name);
  int pid = 0;
  const char *p = strstr(r.out, "stress: pid=");
  if (p != NULL)
    pid = atoi(p + 12);
  for (int i = 0; i < s.npids; i++)
    cr_expect_eq(s.pids[i], pid,
                 "%s: an event was recorded by pid %d, not the target %d", name,
                 s.pids[i], pid);

  t_run_free(&r);
  fl_control_remove(s.ctl);
  t_rmtree(s.dir);
}

Test(stress, asan_ubsan, .timeout = 180) { run_variant("stress-asan"); }

Test(stress, tsan, .timeout = 180) { run_variant("stress-tsan"); }
