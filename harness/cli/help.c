#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli.h"
#include "faultline/segment.h"

static const char general[] =
    "usage: faultline COMMAND [OPTIONS]\n"
    "\n"
    "Scenarios (scenarios/README.md):\n"
    "  run      run scenarios against their service and judge them\n"
    "  validate check scenario and service files without running anything\n"
    "  report   render a run's result.json as HTML, Markdown or JUnit XML\n"
    "\n"
    "Local failure rehearsal:\n"
    "  exec     run a command under the shim, with faults\n"
    "  inject   add faults to a running exec\n"
    "  clear    remove faults from a running exec\n"
    "  status   show faults, their counters and recent injections\n"
    "  list     every fault and expectation form, one line each\n"
    "  help     this text; 'faultline help faults' for the fault grammar\n"
    "\n"
    "Exit status: 0 success, 1 failed expectation, 2 bad usage or input,\n"
    "3 the environment failed (a process would not start); exec exits with\n"
    "the command's own status (128+N when killed by signal N).\n";

static const char run_usage[] =
    "usage: faultline run [--service FILE] [--out DIR] [--json FILE]\n"
    "                     [--junit FILE] [--jobs N] [--seed N] [--quiet]\n"
    "                     SCENARIO.yaml...\n"
    "\n"
    "Starts each scenario's dependencies (a throwaway PostgreSQL, a Redis)\n"
    "and its target under the shim, sends the scenario's traffic through its\n"
    "timeline of faults, judges its expectations and tears everything down.\n"
    "Writes DIR/result.json, report.html, report.md and junit.xml, and the\n"
    "target's log under DIR/SCENARIO/. Exits 0 only when every scenario\n"
    "passed; 1 when one failed or was inconclusive; 2 for bad files or\n"
    "flags; 3 when something could not start; 130 when interrupted.\n"
    "\n"
    "  --service FILE  run every scenario against this service file\n"
    "  --out DIR       where results go (default: out)\n"
    "  --json FILE     also write the result (result.json) to FILE\n"
    "  --junit FILE    also write the JUnit XML (junit.xml) to FILE\n"
    "  --jobs N        scenarios run at once (default 1)\n"
    "  --seed N        seed for p= decisions (default: each scenario's own)\n"
    "  --quiet         no progress lines, only the summary\n";

static const char validate_usage[] =
    "usage: faultline validate [--service FILE] FILE...\n"
    "\n"
    "Checks scenario and service files: every mistake is reported as\n"
    "FILE:LINE:COL with what was found and what is allowed. Scenarios are\n"
    "also checked against their service (or --service FILE). Runs nothing.\n";

static const char exec_usage[] =
    "usage: faultline exec [--control PATH] [--fault SPEC]... [--seed N]\n"
    "                      [--proxy HOST:PORT]... [--quiet] -- COMMAND "
    "[ARG]...\n"
    "\n"
    "Runs COMMAND with libfaultline-preload.so and the given faults active\n"
    "from its first instruction; exits with its status. Children of COMMAND\n"
    "inherit the shim and the faults.\n"
    "\n"
    "  --control PATH  create the control segment here (default: a temporary\n"
    "                  file, printed on stderr); it is removed at exit\n"
    "  --fault SPEC    a fault to start with (repeatable); see\n"
    "                  'faultline help faults'\n"
    "  --proxy HOST:PORT  pass COMMAND's connections to this dependency\n"
    "                  through a stream-fault proxy (repeatable): a redirect\n"
    "                  rule sends them to it for the whole run, and proxy\n"
    "                  faults (latency@HOST:PORT,ms=200...) then act on them\n"
    "                  ('faultline clear' keeps those redirects)\n"
    "  --seed N        seed for p= and toxicity= decisions (printed when not\n"
    "                  given)\n"
    "  --quiet         print nothing of our own\n";

static const char inject_usage[] =
    "usage: faultline inject [--control PATH] SPEC...\n"
    "\n"
    "Adds faults to a running 'faultline exec'; the target sees them on its\n"
    "next intercepted call. Prints each rule's number. PATH defaults to\n"
    "$FAULTLINE_CONTROL. All SPECs are checked before any is added.\n";

static const char clear_usage[] =
    "usage: faultline clear [--control PATH] [RULE... | all]\n"
    "\n"
    "Removes the numbered rules (see status), or all rules.\n";

static const char status_usage[] =
    "usage: faultline status [--control PATH] [--events N]\n"
    "\n"
    "Shows each active rule with how many calls matched it and how many\n"
    "faults it injected, then the last N injections (default 10).\n";

static const char list_usage[] =
    "usage: faultline list\n"
    "\n"
    "Prints every fault (what it is aimed at and what it does) and every\n"
    "expectation form a scenario can use, one line each.\n";

static const char faults_help[] =
    "Fault specs: ACTION@TARGET[,KEY=VALUE]...\n"
    "\n"
    "Connection faults, TARGET is HOST[:PORT], CIDR[:PORT], [IPV6][:PORT],\n"
    "*:PORT or a unix socket path; a host name is resolved when the rule is\n"
    "added, and no port means every port:\n"
    "  refuse@T              connect fails with ECONNREFUSED\n"
    "  reset@T               the next read/write on each connection fails\n"
    "                        with ECONNRESET and the connection is dropped\n"
    "                        (the peer gets an RST); new connections too\n"
    "  hang@T                connect never completes while the rule is on:\n"
    "                        non-blocking sockets stay in progress (never\n"
    "                        writable) until the caller's timeout; blocking\n"
    "                        ones wait (SO_SNDTIMEO honoured) and connect for\n"
    "                        real once the rule is cleared\n"
    "  delay@T,ms=N          N ms more on connect/send/recv, blocking sockets\n"
    "  limit@T,max=N         at most N connections open at once (across all\n"
    "                        processes of the target); the next fails\n"
    "                        (err=, default ECONNREFUSED)\n"
    "  redirect@T,to=A:P     connect to A:P instead (proxy mode)\n"
    "Stream faults, applied by the proxy to connections to the dependency at\n"
    "TARGET (HOST:PORT or CIDR[:PORT]) that 'exec --proxy HOST:PORT' (or the\n"
    "runner) redirects through it; they reach established connections too:\n"
    "  latency@T,ms=N        hold each chunk N ms more (jitter=J: plus or\n"
    "                        minus up to J ms, uniform; order is kept);\n"
    "                        default dir=down: a round trip gets N ms more\n"
    "  bandwidth@T,rate=R    at most R bytes per second (64k = 65536, 1m)\n"
    "  slicer@T              split data into size=N byte pieces (default 64)\n"
    "                        written ms=N apart (default 0); dir=down\n"
    "  stall@T               accept and forward nothing: the connect works,\n"
    "                        the dependency never answers; ms=N closes the\n"
    "                        connection after N ms (default: never)\n"
    "  slow_close@T,ms=N     pass on a close (end of stream) N ms late\n"
    "  reset_peer@T          reset the connection (the client sees\n"
    "                        ECONNRESET) after bytes=N have passed, or after\n"
    "                        ms=N; at once when neither is given\n"
    "  limit_data@T,bytes=N  close the connection once N bytes have passed\n"
    "  down@T                refuse new connections (ECONNREFUSED) and close\n"
    "                        existing ones, until cleared\n"
    "  Their options: dir=up|down|both (up: client to dependency; default\n"
    "  both unless said above), toxicity=0.3 or 30% (share of connections\n"
    "  affected, decided per connection from the seed: reproducible),\n"
    "  after=N (spare the first N connections), times=N (at most N\n"
    "  connections). Counters: matched = connections seen, injected =\n"
    "  connections affected (reset_peer, limit_data: connections cut; down:\n"
    "  connections refused or closed, and once when the listener stops);\n"
    "  bytes held back by latency, bandwidth and slicer are counted too.\n"
    "Other faults:\n"
    "  exhaust@sockets|files|fds   socket/accept (sockets), open (files) or\n"
    "                        both fail with EMFILE\n"
    "  dns@NAME              lookups of NAME (glob: dns@*.internal) fail with\n"
    "                        EAI_AGAIN; numeric addresses are never looked up\n"
    "  enospc@GLOB           writes, opens for writing and fsync of files\n"
    "  eio@GLOB              under the absolute path GLOB fail (* spans /)\n"
    "\n"
    "Options (the faults above the stream faults):\n"
    "  p=0.3 or p=30%        inject with this probability, decided from the\n"
    "                        seed and the call's number: reproducible\n"
    "  after=N               let the first N matching calls through\n"
    "  times=N               inject at most N times\n"
    "  err=NAME              the error to inject instead of the default:\n"
    "                        ECONNREFUSED ECONNRESET ECONNABORTED ETIMEDOUT\n"
    "                        EHOSTUNREACH ENETUNREACH ENETDOWN EPIPE EAGAIN\n"
    "                        EINTR EADDRNOTAVAIL EMFILE ENFILE ENOBUFS ENOMEM\n"
    "                        ENOSPC EDQUOT EIO EROFS EACCES EPERM EFBIG; for\n"
    "                        dns: EAI_AGAIN EAI_NONAME EAI_FAIL EAI_NODATA\n"
    "                        EAI_MEMORY\n"
    "\n"
    "Examples:\n"
    "  refuse@127.0.0.1:6379      reset@127.0.0.1:5432,after=3\n"
    "  hang@127.0.0.1:5432        delay@127.0.0.1:6379,ms=200\n"
    "  limit@127.0.0.1:5432,max=5 dns@db.internal\n"
    "  exhaust@sockets            enospc@/tmp/uploads/*\n"
    "  refuse@127.0.0.1:6379,p=0.3\n"
    "  latency@127.0.0.1:6379,ms=200,jitter=20   bandwidth@127.0.0.1:5432,"
    "rate=64k\n"
    "  stall@127.0.0.1:6379,ms=5000              reset_peer@127.0.0.1:6379,"
    "bytes=1k\n"
    "  down@127.0.0.1:5432,toxicity=50%\n";

void fl_usage(const char *cmd) {
  const char *text = general;
  if (cmd == NULL)
    text = general;
  else if (strcmp(cmd, "exec") == 0)
    text = exec_usage;
  else if (strcmp(cmd, "run") == 0)
    text = run_usage;
  else if (strcmp(cmd, "validate") == 0)
    text = validate_usage;
  else if (strcmp(cmd, "inject") == 0)
    text = inject_usage;
  else if (strcmp(cmd, "clear") == 0)
    text = clear_usage;
  else if (strcmp(cmd, "status") == 0)
    text = status_usage;
  else if (strcmp(cmd, "list") == 0)
    text = list_usage;
  else if (strcmp(cmd, "faults") == 0)
    text = faults_help;
  fputs(text, stdout);
}

/* What each shim and proxy action is aimed at, for `faultline list`. */
static const char *target_kind(const char *action) {
  static const struct {
    const char *action, *target;
  } kinds[] = {
      {"dns", "host name (glob)"}, {"exhaust", "sockets|files|fds"},
      {"enospc", "path glob"},     {"eio", "path glob"},
      {"redirect", NULL}, /* the runner's own plumbing, not a fault */
  };
  for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
    if (strcmp(action, kinds[i].action) == 0)
      return kinds[i].target;
  return "dependency or host:port";
}

int fl_cmd_list(int argc, char **argv) {
  if (argc == 2 &&
      (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    fl_usage("list");
    return FL_EXIT_OK;
  }
  if (argc > 1) {
    fl_say("list takes no arguments (see faultline list --help)");
    return FL_EXIT_USAGE;
  }
  static const struct {
    const char *name, *text;
  } actions[] = {
#define FL_X_LIST(name, text, help) {text, help},
      FL_ACTIONS(FL_X_LIST)
#undef FL_X_LIST
  };
  puts("Faults: in a scenario '{ ACTION: TARGET, option: value }'; with "
       "'faultline inject' ACTION@TARGET,option=value ('faultline help "
       "faults')");
  for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
    const char *kind = target_kind(actions[i].name);
    if (kind != NULL)
      printf("  %-11s %-24s %s\n", actions[i].name, kind, actions[i].text);
  }
  puts("Process faults: in a scenario only, on a managed dependency");
  static const char *const process[][2] = {
      {"kill", "SIGKILL the server; started again when the fault ends"},
      {"stop", "stop it cleanly; started again when the fault ends"},
      {"pause", "SIGSTOP (a real hang); SIGCONT when the fault ends"},
      {"restart", "stop it cleanly and start it again"},
      {"saturate", "postgres: hold every connection slot; released at the end"},
  };
  for (size_t i = 0; i < sizeof(process) / sizeof(process[0]); i++)
    printf("  %-11s %-24s %s\n", process[i][0], "dependency", process[i][1]);
  puts("Fault timing: at: DURATION|start, until: DURATION, every: DURATION");
  puts("");
  puts("Expectations: under a phase name or 'always' (scenarios/README.md)");
  puts("  per endpoint:");
  static const char *const endpoint[][2] = {
      {"rate(CLASS) OP N%", "share of the requests in CLASS"},
      {"header(NAME) on CLASS", "every CLASS response has a valid NAME"},
      {"header(NAME) OP N on CLASS", "and its value compares so (a number)"},
      {"header(NAME) == \"TEXT\" on CLASS", "or is TEXT exactly (or !=)"},
      {"p(N) OP DURATION", "latency percentile (nearest rank)"},
      {"max OP DURATION", "the slowest request"},
      {"within timeout", "no request outlived its timeout"},
      {"requests OP N", "how many were sent"},
      {"recovers(rate(CLASS) OP N%) within DURATION",
       "the rate holds every second from then on"},
  };
  for (size_t i = 0; i < sizeof(endpoint) / sizeof(endpoint[0]); i++)
    printf("    %-45s %s\n", endpoint[i][0], endpoint[i][1]);
  puts("  for the target:");
  static const char *const target[][2] = {
      {"alive", "running to the end"},
      {"no crash", "not killed by a signal"},
      {"no restart", "the same process throughout"},
      {"fds <= baseline + N", "open fds against the first phase's mean"},
      {"rss <= baseline + NMB", "resident memory, likewise"},
      {"fault(NAME) hit >= N", "a fault delivered (NAME: action, target or "
                               "both)"},
  };
  for (size_t i = 0; i < sizeof(target) / sizeof(target[0]); i++)
    printf("    %-45s %s\n", target[i][0], target[i][1]);
  puts("  CLASS: 503, 2xx, 5xx, error, refused, reset, timeout; "
       "OP: < <= > >= == !=");
  return FL_EXIT_OK;
}
