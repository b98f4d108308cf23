/* The fault spec parser: good specs give the rule they say; every
 * malformed spec in data/bad_specs.txt gives exactly its message. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/base.h"
#include "faults/faults.h"
#include "support.h"

static struct fl_rule parse_ok(const char *spec) {
  struct fl_rule r;
  char err[512] = "";
  int rc = fl_spec_parse(spec, &r, err, sizeof(err));
  cr_assert_eq(rc, 0, "'%s' was refused: %s", spec, err);
  cr_assert_str_eq(r.spec, spec);
  return r;
}

Test(faultspec, refuse_host_port, .timeout = 10) {
  struct fl_rule r = parse_ok("refuse@127.0.0.1:6379");
  cr_assert_eq(r.action, FL_ACT_REFUSE);
  cr_assert_eq(r.target, FL_TGT_INET);
  cr_assert_eq(r.naddrs, 1);
  cr_assert_eq(r.addrs[0].family, AF_INET);
  cr_assert_eq(r.addrs[0].prefix, 32);
  cr_assert_eq(r.addrs[0].port, 6379);
  cr_assert_eq(r.ops, FL_OPC_CONNECT);
  cr_assert_eq(r.p_threshold, UINT64_C(1) << 32);
}

Test(faultspec, options, .timeout = 10) {
  struct fl_rule r =
      parse_ok("reset@10.1.0.0/16:5432,after=3,times=2,p=25%,err=EPIPE");
  cr_assert_eq(r.action, FL_ACT_RESET);
  cr_assert_eq(r.addrs[0].prefix, 16);
  cr_assert_eq(r.after, 3);
  cr_assert_eq(r.times, 2);
  cr_assert_eq(r.p_threshold, UINT64_C(1) << 30);
  cr_assert_eq(r.err, EPIPE);
  cr_assert_eq(r.ops, FL_OPC_SOCKIO);
}

Test(faultspec, ipv6_and_any, .timeout = 10) {
  struct fl_rule r = parse_ok("hang@[::1]:5432");
  cr_assert_eq(r.addrs[0].family, AF_INET6);
  cr_assert_eq(r.addrs[0].port, 5432);
  r = parse_ok("refuse@*:6379");
  cr_assert_eq(r.naddrs, 2);
  cr_assert_eq(r.addrs[0].prefix, 0);
  cr_assert_eq(r.addrs[1].prefix, 0);
  r = parse_ok("refuse@127.0.0.1");
  cr_assert_eq(r.addrs[0].port, 0, "no port means every port");
}

Test(faultspec, names_resolve, .timeout = 10) {
  struct fl_rule r = parse_ok("refuse@localhost:6379");
  cr_assert_geq(r.naddrs, 1);
  cr_assert_eq(r.addrs[0].port, 6379);
}

Test(faultspec, other_targets, .timeout = 10) {
  struct fl_rule r = parse_ok("delay@127.0.0.1:6379,ms=200");
  cr_assert_eq(r.ms, 200);
  cr_assert_eq(r.ops, FL_OPC_CONNECT | FL_OPC_SOCKIO);
  r = parse_ok("limit@127.0.0.1:5432,max=5");
  cr_assert_eq(r.max, 5);
  r = parse_ok("dns@*.internal,err=EAI_NONAME");
  cr_assert_eq(r.target, FL_TGT_NAME);
  cr_assert_eq(r.err, EAI_NONAME);
  cr_assert_str_eq(r.pattern, "*.internal");
  r = parse_ok("exhaust@sockets");
  cr_assert_eq(r.ops, FL_OPC_SOCKET);
  r = parse_ok("exhaust@fds");
  cr_assert_eq(r.ops, FL_OPC_SOCKET | FL_OPC_OPEN);
  r = parse_ok("enospc@/tmp/uploads/*");
  cr_assert_eq(r.target, FL_TGT_PATH);
  cr_assert_eq(r.ops, FL_OPC_OPEN | FL_OPC_FILEIO);
  r = parse_ok("refuse@/var/run/postgresql/.s.PGSQL.5432");
  cr_assert_eq(r.target, FL_TGT_UNIX);
  r = parse_ok("redirect@127.0.0.1:6379,to=127.0.0.1:7000");
  cr_assert_eq(r.redirect.port, 7000);
}

Test(faultspec, bad_spec_corpus, .timeout = 30) {
  FILE *f = fopen(T_DATA "/bad_specs.txt", "r");
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
  cr_assert_geq(checked, 20);
}

/* Durations and sizes read with their units; bare numbers as before. */
Test(faultspec, units, .timeout = 10) {
  struct fl_rule r = parse_ok("delay@127.0.0.1:6379,ms=2s");
  cr_assert_eq(r.ms, 2000);
  r = parse_ok("delay@127.0.0.1:6379,ms=250ms,p=0.5");
  cr_assert_eq(r.ms, 250);
  cr_assert_eq(r.p_threshold, UINT64_C(1) << 31);
  r = parse_ok("bandwidth@127.0.0.1:6379,rate=64kB");
  cr_assert_eq(r.toxic.rate, 65536);
  r = parse_ok("slicer@127.0.0.1:6379,size=1k");
  cr_assert_eq(r.toxic.size, 1024);
}

/* Every rule action has one row, every row one name. */
Test(faultspec, vocabulary, .timeout = 10) {
  for (int a = FL_ACT_NONE + 1; a < FL_ACT_COUNT; a++) {
    const struct fl_fault_type *t = fl_fault_of_action(a);
    cr_assert_not_null(t, "action %d has no row", a);
    cr_assert_eq(fl_fault_find(t->name), t, "%s", t->name);
    cr_assert_not_null(t->help, "%s has no help", t->name);
  }
  const struct fl_fault_type *t;
  for (size_t i = 0; (t = fl_fault_at(i)) != NULL; i++)
    cr_assert_eq(fl_fault_find(t->name), t, "%s is not unique", t->name);
  cr_assert_eq(fl_fault_find("kill")->kind, FL_FAULT_PROCESS);
  cr_assert_eq(fl_fault_find("kill")->proc, FL_PROC_KILL);
}

/* A scenario's way in: a draft from keys, aimed afterwards. */
Test(faultspec, draft, .timeout = 10) {
  struct fl_rule_draft d;
  char err[256] = "";
  fl_draft_init(&d, fl_fault_find("limit"));
  cr_assert_eq(fl_draft_finish(&d, err, sizeof(err)), FL_EBADSPEC);
  cr_assert_str_eq(err, "limit needs max=N (e.g. limit@127.0.0.1:5432,max=5)");
  cr_assert_eq(fl_draft_option(&d, "max", "0", err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(fl_draft_finish(&d, err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(fl_rule_aim_host(&d.rule, "127.0.0.1", 5432, err, sizeof(err)),
               0, "%s", err);
  cr_assert_eq(d.rule.addrs[0].port, 5432);
  cr_assert_eq(d.rule.ops, FL_OPC_CONNECT);
}
