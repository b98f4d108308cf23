/* The shim's reading of the control segment: a corrupt or hostile segment
 * (rules with any bytes at all behind a valid header) must never crash the
 * target. Links the shim's rule and fd-table code; this driver stands in
 * for init.c, which maps a real segment. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

#define FL_X_DEFINE(ret, name, params) FL_HIDDEN ret(*fl_real_##name) params;
FL_REAL_SYMBOLS(FL_X_DEFINE)
#undef FL_X_DEFINE

static _Atomic uint32_t all_ops = ~0u;
FL_HIDDEN _Atomic uint32_t *fl_ops_word = &all_ops;
FL_HIDDEN _Atomic int fl_pid;
FL_HIDDEN struct fl_ctl_stats *fl_stats;
static struct fl_ctl_header *header;

FL_HIDDEN const struct fl_ctl_header *fl_header(void) { return header; }
FL_HIDDEN uint32_t fl_generation(void) { return header->generation; }
FL_HIDDEN void fl_sleep_ms(uint32_t ms) { (void)ms; }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
#define FL_X_RESOLVE(ret, name, params)                                        \
  fl_real_##name = (ret(*) params)dlsym(RTLD_NEXT, #name);
  FL_REAL_SYMBOLS(FL_X_RESOLVE)
#undef FL_X_RESOLVE
  header = calloc(1, sizeof(*header));
  fl_stats = calloc(1, sizeof(*fl_stats));
  fl_pid = (int)getpid();
  return header && fl_stats ? 0 : -1;
}

static void apply(struct fl_verdict *v, int op) {
  fl_record(v, op);
  (void)fl_rule_still_active(v);
  fl_limit_release(&v->hold);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
  memset(header, 0, sizeof(*header));
  memset(fl_stats, 0, sizeof(*fl_stats));
  header->magic = FL_CTL_MAGIC;
  header->version = FL_CTL_VERSION;
  header->ops = ~0u;
  memcpy(header->rules, data,
         n < sizeof(header->rules) ? n : sizeof(header->rules));

  struct fl_verdict v;
  struct fl_dest d = {.fd = -1, .unix_hash = 0};
  d.inet.family = AF_INET;
  d.inet.prefix = 32;
  d.inet.port = 5432;
  memcpy(d.inet.addr, "\x7f\x00\x00\x01", 4);
  if (fl_decide_dest(FL_OPC_CONNECT, &d, &v))
    apply(&v, FL_OP_CONNECT);
  struct fl_dest u = {.fd = -1, .unix_hash = 0x9e3779b97f4a7c15u};
  if (fl_decide_dest(FL_OPC_CONNECT | FL_OPC_SOCKIO, &u, &v))
    apply(&v, FL_OP_SEND);
  if (fl_decide_name("db.internal.example", &v))
    apply(&v, FL_OP_GETADDRINFO);
  if (fl_decide_path(FL_OPC_OPEN | FL_OPC_FILEIO, "/var/lib/app/data.db", &v))
    apply(&v, FL_OP_OPEN);
  if (fl_decide_exhaust(FL_OPC_SOCKET | FL_OPC_OPEN, &v))
    apply(&v, FL_OP_SOCKET);
  return 0;
}
