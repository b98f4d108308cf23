/* The control segment's writer side, and what a real program under the
 * shim writes back into it (counters, the event ring). */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "control/control.h"
#include "faults/faults.h"
#include "support.h"

static char dir[256], path[300];

static void setup(void) {
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(path, sizeof(path), "%s/ctl", dir);
}

static void teardown(void) { t_rmtree(dir); }

static struct fl_rule rule(const char *spec) {
  struct fl_rule r;
  char err[512];
  cr_assert_eq(fl_spec_parse(spec, &r, err, sizeof(err)), 0, "%s", err);
  return r;
}

/* The shim's gate word, read the way the shim reads it. */
static uint32_t gate(void) {
  int fd = open(path, O_RDONLY);
  cr_assert_geq(fd, 0);
  const struct fl_ctl_header *h =
      mmap(NULL, FL_CTL_STATS_OFFSET, PROT_READ, MAP_SHARED, fd, 0);
  cr_assert_neq(h, MAP_FAILED);
  uint32_t ops = atomic_load(&h->ops);
  munmap((void *)h, FL_CTL_STATS_OFFSET);
  close(fd);
  return ops;
}

Test(control, create_is_private_and_exclusive, .init = setup, .fini = teardown,
     .timeout = 10) {
  fl_control_t *c, *again;
  cr_assert_eq(fl_control_create(path, 42, &c), 0);
  struct stat st;
  cr_assert_eq(stat(path, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0600);
  cr_assert_eq((size_t)st.st_size, FL_CTL_TOTAL_SIZE);
  cr_assert_eq(fl_control_create(path, 1, &again), -EEXIST);
  cr_assert_eq(fl_control_open(path, &again), 0);
  cr_assert_eq(fl_control_seed(again), 42);
  fl_control_close(again);
  fl_control_remove(c);
  cr_assert_neq(access(path, F_OK), 0, "remove deletes the file");
}

Test(control, foreign_file_is_refused, .init = setup, .fini = teardown,
     .timeout = 10) {
  FILE *f = fopen(path, "w");
  fputs("not a control segment\n", f);
  fclose(f);
  fl_control_t *c = NULL;
  cr_assert_eq(fl_control_open(path, &c), FL_EBADCTL);
  cr_assert_null(c);
  cr_assert_eq(truncate(path, FL_CTL_TOTAL_SIZE), 0);
  cr_assert_eq(fl_control_open(path, &c), FL_EBADCTL, "zeroes: bad magic");
}

Test(control, rules_slots_ids_and_gate, .init = setup, .fini = teardown,
     .timeout = 10) {
  fl_control_t *c;
  cr_assert_eq(fl_control_create(path, 1, &c), 0);
  cr_assert_eq(gate(), 0);
  struct fl_rule dns = rule("dns@db.internal");
  uint32_t id, first = 0;
  for (int i = 0; i < FL_MAX_RULES; i++) {
    cr_assert_eq(fl_control_add(c, &dns, &id), 0);
    if (i == 0)
      first = id;
    else
      cr_assert_gt(id, first);
  }
  cr_assert_eq(fl_control_add(c, &dns, &id), FL_ERULESFULL);
  cr_assert_eq(gate(), FL_OPC_DNS);
  cr_assert_eq(fl_control_clear(c, first), 0);
  cr_assert_eq(fl_control_clear(c, first), FL_ENORULE);
  struct fl_rule refuse = rule("refuse@127.0.0.1:6379");
  cr_assert_eq(fl_control_add(c, &refuse, &id), 0);
  cr_assert_eq(gate(), FL_OPC_DNS | FL_OPC_CONNECT);
  struct fl_rule_view v[FL_MAX_RULES];
  cr_assert_eq(fl_control_rules(c, v, FL_MAX_RULES), FL_MAX_RULES);
  cr_assert_eq(fl_control_clear(c, 0), 0);
  cr_assert_eq(fl_control_rules(c, v, FL_MAX_RULES), 0);
  cr_assert_eq(gate(), 0, "no rule: the shim's gate is closed");
  fl_control_remove(c);
}

/* The runner's redirects to its proxy are pinned: clearing all rules (as
 * `faultline clear` does) leaves them; their own id removes them. */
Test(control, pinned_rules_survive_clear_all, .init = setup, .fini = teardown,
     .timeout = 10) {
  fl_control_t *c;
  cr_assert_eq(fl_control_create(path, 1, &c), 0);
  struct fl_rule redirect = rule("redirect@127.0.0.1:5432,to=127.0.0.1:6000");
  redirect.flags |= FL_RULE_PINNED;
  struct fl_rule refuse = rule("refuse@127.0.0.1:6379");
  uint32_t pinned, plain;
  cr_assert_eq(fl_control_add(c, &redirect, &pinned), 0);
  cr_assert_eq(fl_control_add(c, &refuse, &plain), 0);
  cr_assert_eq(fl_control_clear(c, 0), 0);
  struct fl_rule_view v[FL_MAX_RULES];
  cr_assert_eq(fl_control_rules(c, v, FL_MAX_RULES), 1);
  cr_assert_eq(v[0].rule.id, pinned);
  cr_assert_eq(fl_control_clear(c, pinned), 0);
  cr_assert_eq(fl_control_rules(c, v, FL_MAX_RULES), 0);
  fl_control_remove(c);
}

/* A real python3 connects under the shim: the counters and the event ring
 * say what it experienced. */
Test(control, counters_and_events_from_a_real_program, .init = setup,
     .fini = teardown, .timeout = 30) {
  fl_control_t *c;
  cr_assert_eq(fl_control_create(path, 7, &c), 0);
  int port = t_free_port();
  char spec[64];
  snprintf(spec, sizeof(spec), "refuse@127.0.0.1:%d,after=1", port);
  struct fl_rule r = rule(spec);
  uint32_t id;
  cr_assert_eq(fl_control_add(c, &r, &id), 0);
  char script[256];
  snprintf(script, sizeof(script),
           "import socket\n"
           "for i in range(3):\n"
           "  try: socket.create_connection(('127.0.0.1', %d))\n"
           "  except OSError as e: print(e.errno)\n",
           port);
  char pre[300], ctl[320];
  snprintf(pre, sizeof(pre), "LD_PRELOAD=%s", T_SHIM);
  snprintf(ctl, sizeof(ctl), "FAULTLINE_CONTROL=%s", path);
  char *env[] = {pre, ctl, NULL};
  char *argv[] = {"/usr/bin/python3", "-c", script, NULL};
  struct t_run run;
  cr_assert_eq(t_run(argv, env, NULL, 20000, &run), 0);
  cr_assert_eq(run.status, 0, "%s", run.err);
  /* Nothing listens on the port: the first connect is really refused by
   * the kernel (after=1 lets it through), the next two by the shim. */
  char want[32];
  snprintf(want, sizeof(want), "%d\n%d\n%d\n", ECONNREFUSED, ECONNREFUSED,
           ECONNREFUSED);
  cr_assert_str_eq(run.out, want);
  t_run_free(&run);
  struct fl_rule_view v;
  cr_assert_eq(fl_control_rule(c, id, &v), 0);
  cr_assert_eq(v.matched, 3);
  cr_assert_eq(v.injected, 2);
  struct fl_event_view ev[8];
  uint64_t since = 0;
  cr_assert_eq(fl_control_events(c, &since, ev, 8), 2);
  cr_assert_eq(since, 2);
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(ev[i].rule_id, id);
    cr_assert_eq(ev[i].op, FL_OP_CONNECT);
    cr_assert_eq(ev[i].err, ECONNREFUSED);
    cr_assert_gt(ev[i].pid, 0);
    cr_assert_neq(ev[i].pid, getpid());
  }
  cr_assert_eq(fl_control_events(c, &since, ev, 8), 0, "nothing new");
  fl_control_remove(c);
}

/* fl_control_setup publishes a blackhole the handle owns: a connect to it
 * hangs while the handle lives, and the listener goes with the handle. */
Test(control, setup_publishes_blackholes, .init = setup, .fini = teardown,
     .timeout = 10) {
  fl_control_t *c, *again;
  char err[256];
  cr_assert_eq(fl_control_setup(path, 5, &c, err, sizeof(err)), 0, "%s", err);
  int fd = open(path, O_RDONLY);
  cr_assert_geq(fd, 0);
  const struct fl_ctl_header *h =
      mmap(NULL, FL_CTL_STATS_OFFSET, PROT_READ, MAP_SHARED, fd, 0);
  cr_assert_neq(h, MAP_FAILED);
  cr_assert_eq(h->blackhole4.family, AF_INET);
  cr_assert_neq(h->blackhole4.port, 0);
  munmap((void *)h, FL_CTL_STATS_OFFSET);
  close(fd);
  cr_assert_eq(fl_control_setup(path, 5, &again, err, sizeof(err)), -EEXIST);
  cr_assert(strstr(err, "cannot create control segment") != NULL, "%s", err);
  fl_control_remove(c);
  cr_assert_neq(access(path, F_OK), 0, "remove deletes the file");
}
