/* The proxy faults' grammar: good specs give the rule they say, with the
 * documented defaults; every malformed spec in data/proxy_bad_specs.txt
 * gives exactly its message; and a proxy fault in the control segment
 * leaves the shim's gate closed. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/base.h"
#include "control/control.h"
#include "faults/faults.h"
#include "support.h"

static struct fl_rule parse_ok(const char *spec) {
  struct fl_rule r;
  char err[512] = "";
  int rc = fl_spec_parse(spec, &r, err, sizeof(err));
  cr_assert_eq(rc, 0, "'%s' was refused: %s", spec, err);
  cr_assert_str_eq(r.spec, spec);
  cr_assert_eq(r.ops, 0, "%s: a proxy fault must not open the shim's gate",
               spec);
  cr_assert(FL_ACT_IS_PROXY(r.action));
  return r;
}

Test(proxy_spec, latency, .timeout = 10) {
  struct fl_rule r = parse_ok("latency@127.0.0.1:6379,ms=200");
  cr_assert_eq(r.action, FL_ACT_LATENCY);
  cr_assert_eq(r.target, FL_TGT_INET);
  cr_assert_eq(r.addrs[0].port, 6379);
  cr_assert_eq(r.ms, 200);
  cr_assert_eq(r.toxic.jitter, 0);
  cr_assert_eq(r.toxic.dir, FL_DIR_DOWN, "latency acts on replies by default");
  cr_assert_eq(r.p_threshold, UINT64_C(1) << 32, "toxicity 100%% by default");
  r = parse_ok("latency@[::1]:5432,ms=5,jitter=3,dir=both,toxicity=25%,"
               "after=2,times=9");
  cr_assert_eq(r.addrs[0].family, AF_INET6);
  cr_assert_eq(r.toxic.jitter, 3);
  cr_assert_eq(r.toxic.dir, FL_DIR_BOTH);
  cr_assert_eq(r.p_threshold, UINT64_C(1) << 30);
  cr_assert_eq(r.after, 2);
  cr_assert_eq(r.times, 9);
  r = parse_ok("latency@127.0.0.1:6379,ms=1,dir=up,dir=down");
  cr_assert_eq(r.toxic.dir, FL_DIR_DOWN, "the last dir= wins");
  r = parse_ok("latency@*:6379,ms=1");
  cr_assert_eq(r.naddrs, 2);
}

Test(proxy_spec, bandwidth_sizes, .timeout = 10) {
  struct fl_rule r = parse_ok("bandwidth@127.0.0.1:6379,rate=65536");
  cr_assert_eq(r.toxic.rate, 65536);
  cr_assert_eq(r.toxic.dir, FL_DIR_BOTH);
  cr_assert_eq(parse_ok("bandwidth@127.0.0.1:1,rate=64k").toxic.rate, 65536);
  cr_assert_eq(parse_ok("bandwidth@127.0.0.1:1,rate=64K").toxic.rate, 65536);
  cr_assert_eq(parse_ok("bandwidth@127.0.0.1:1,rate=2m").toxic.rate,
               2 * 1048576);
  cr_assert_eq(parse_ok("bandwidth@127.0.0.1:1,rate=1g").toxic.rate, UINT64_C(1)
                                                                         << 30);
  cr_assert_eq(parse_ok("bandwidth@127.0.0.1:1,rate=1,dir=up").toxic.dir,
               FL_DIR_UP);
}

Test(proxy_spec, the_others, .timeout = 10) {
  struct fl_rule r = parse_ok("slicer@127.0.0.1:6379");
  cr_assert_eq(r.toxic.size, 64, "slicer pieces are 64 bytes by default");
  cr_assert_eq(r.ms, 0);
  cr_assert_eq(r.toxic.dir, FL_DIR_DOWN);
  r = parse_ok("slicer@127.0.0.1:6379,size=1,ms=3");
  cr_assert_eq(r.toxic.size, 1);
  cr_assert_eq(r.ms, 3);
  r = parse_ok("stall@127.0.0.1:6379");
  cr_assert_eq(r.ms, 0, "a stall never closes by default");
  cr_assert_eq(r.toxic.dir, FL_DIR_BOTH);
  cr_assert_eq(parse_ok("stall@127.0.0.1:6379,ms=5000").ms, 5000);
  cr_assert_eq(parse_ok("slow_close@127.0.0.1:6379,ms=300").ms, 300);
  r = parse_ok("reset_peer@127.0.0.1:6379");
  cr_assert_eq(r.toxic.has_ms, 0);
  cr_assert_eq(r.toxic.bytes, 0);
  r = parse_ok("reset_peer@127.0.0.1:6379,ms=0");
  cr_assert_eq(r.toxic.has_ms, 1, "ms=0 is given: reset at once");
  r = parse_ok("reset_peer@127.0.0.1:6379,bytes=1k,ms=250");
  cr_assert_eq(r.toxic.bytes, 1024);
  cr_assert_eq(r.ms, 250);
  r = parse_ok("limit_data@127.0.0.1:6379,bytes=4096,dir=down");
  cr_assert_eq(r.toxic.bytes, 4096);
  cr_assert_eq(r.toxic.dir, FL_DIR_DOWN);
  r = parse_ok("down@127.0.0.1:5432");
  cr_assert_eq(r.action, FL_ACT_DOWN);
  r = parse_ok("down@10.0.0.0/8:5432,toxicity=0.5");
  cr_assert_eq(r.addrs[0].prefix, 8);
  cr_assert_eq(r.p_threshold, UINT64_C(1) << 31);
}

Test(proxy_spec, names, .timeout = 10) {
  static const char *const names[] = {"latency",    "bandwidth",  "slicer",
                                      "stall",      "slow_close", "reset_peer",
                                      "limit_data", "down"};
  for (int a = FL_ACT_LATENCY; a <= FL_ACT_DOWN; a++)
    cr_assert_str_eq(fl_action_name(a), names[a - FL_ACT_LATENCY]);
  cr_assert_str_eq(fl_op_name(FL_OP_PROXY), "proxy");
}

Test(proxy_spec, bad_spec_corpus, .timeout = 30) {
  FILE *f = fopen(T_DATA "/proxy_bad_specs.txt", "r");
  cr_assert_not_null(f);
  char line[1024];
  int checked = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    line[strcspn(line, "\n")] = '\0';
    if (line[0] == '#' || line[0] == '\0')
      continue;
    char *tab = strchr(line, '\t');
    cr_assert_not_null(tab, "corpus line without a tab: %s", line);
    *tab = '\0';
    struct fl_rule r;
    char err[1024] = "";
    int rc = fl_spec_parse(line, &r, err, sizeof(err));
    cr_expect_eq(rc, FL_EBADSPEC, "'%s' was accepted", line);
    cr_expect_str_eq(err, tab + 1, "for '%s'", line);
    checked++;
  }
  fclose(f);
  cr_assert_geq(checked, 40);
}

/* In the segment: the gate word stays 0 (an idle shim pays nothing for a
 * proxy fault), the counters start at 0, and clear works as for any rule. */
Test(proxy_spec, in_the_segment, .timeout = 10) {
  char dir[256], path[300];
  cr_assert_eq(t_mkdtemp(dir), 0);
  snprintf(path, sizeof(path), "%s/ctl", dir);
  fl_control_t *c;
  cr_assert_eq(fl_control_create(path, 1, &c), 0);
  struct fl_rule r;
  char err[256];
  cr_assert_eq(fl_spec_parse("latency@127.0.0.1:6379,ms=5", &r, err, 256), 0);
  uint32_t id;
  cr_assert_eq(fl_control_add(c, &r, &id), 0);
  int fd = open(path, O_RDONLY);
  const struct fl_ctl_header *h =
      mmap(NULL, FL_CTL_STATS_OFFSET, PROT_READ, MAP_SHARED, fd, 0);
  cr_assert_neq(h, MAP_FAILED);
  cr_assert_eq(atomic_load(&h->ops), 0, "a proxy fault opened the gate");
  munmap((void *)h, FL_CTL_STATS_OFFSET);
  close(fd);
  struct fl_rule_view v;
  cr_assert_eq(fl_control_rule(c, id, &v), 0);
  cr_assert_eq(v.matched + v.injected + v.bytes, 0);
  cr_assert_eq(v.rule.toxic.dir, FL_DIR_DOWN);
  /* The proxy's counting: by slot and id, and never for a replaced rule. */
  int slot = -1;
  for (int s = 0; s < FL_MAX_RULES && slot < 0; s++)
    if (fl_control_slot(c, s, &v) && v.rule.id == id)
      slot = s;
  cr_assert_geq(slot, 0);
  cr_assert_eq(fl_control_count(c, slot, id, FL_COUNT_BYTES, 10), 0);
  cr_assert_eq(fl_control_take(c, slot, id, 1), 1);
  cr_assert_eq(fl_control_take(c, slot, id, 1), 0, "times=1 ran out");
  fl_control_record(c, id, FL_OP_PROXY, 0);
  cr_assert_eq(fl_control_rule(c, id, &v), 0);
  cr_assert_eq(v.bytes, 10);
  cr_assert_eq(v.injected, 1);
  struct fl_event_view ev[4];
  uint64_t since = 0;
  cr_assert_eq(fl_control_events(c, &since, ev, 4), 1);
  cr_assert_eq(ev[0].op, FL_OP_PROXY);
  cr_assert_eq(ev[0].pid, getpid());
  cr_assert_eq(fl_control_clear(c, id), 0);
  cr_assert_eq(fl_control_count(c, slot, id, FL_COUNT_BYTES, 10), 0);
  cr_assert_eq(fl_control_take(c, slot, id, 0), 0, "the rule is gone");
  fl_control_remove(c);
  t_rmtree(dir);
}
