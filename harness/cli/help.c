#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "cli.h"
#include "faults/faults.h"

static const char general[] =
    "usage: faultline COMMAND [OPTIONS]\n"
    "\n"
    "Scenarios (scenarios/README.md):\n"
    "  run      run scenarios against their service and judge them\n"
    "  validate check scenario and service files without running anything\n"
    "  report   render a run's result.json as HTML, Markdown or JUnit XML\n"
    "  audit    a service's failure-propagation matrix, measured\n"
    "\n"
    "Local failure rehearsal:\n"
    "  exec     run a command under the shim, with faults\n"
    "  inject   add faults to a running exec\n"
    "  clear    remove faults from a running exec\n"
    "  status   show faults, their counters and recent injections\n"
    "  list     every fault and expectation form, one line each\n"
    "  help     this text; 'faultline help faults' for the fault grammar,\n"
    "           'faultline help scenario' for the file format\n"
    "\n"
    "From your tests and CI:\n"
    "  serve    a Toxiproxy-compatible control API over faultline's proxies\n"
    "\n"
    "Exit status: 0 success, 1 failed expectation, 2 bad usage or input,\n"
    "3 the environment failed (a process would not start); exec exits with\n"
    "the command's own status (128+N when killed by signal N).\n";

static const char run_usage[] =
    "usage: faultline run [--service FILE] [--out DIR] [--json FILE]\n"
    "                     [--junit FILE] [--jobs N] [--seed N] [--quiet]\n"
    "                     [--shard I/N] [--reuse-deps]\n"
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
    "  --seed N        seed for p= decisions and drawn paths (default: the\n"
    "                  scenario's)\n"
    "  --quiet         no progress lines, only the summary\n"
    "  --shard I/N     run only shard I of N: a deterministic share of the\n"
    "                  files, balanced by timeline length (CI matrices;\n"
    "                  join the results with 'faultline report merge')\n"
    "  --reuse-deps    keep PostgreSQL and Redis servers from one scenario\n"
    "                  to the next, reset in between (a new database, Redis\n"
    "                  flushed); a scenario with a process fault on one\n"
    "                  still gets its own\n";

static const char audit_usage[] =
    "usage: faultline audit [--endpoints FILE | --openapi PATH] [--out DIR]\n"
    "                       [--jobs N] [--only GLOBS] [--discover-only]\n"
    "                       [--fresh-deps] [--quiet] SERVICE.yaml\n"
    "\n"
    "Finds which endpoint uses which dependency: the service runs under the\n"
    "shim with its dependencies, each endpoint is exercised alone, and what\n"
    "it used beyond the idle service is recorded (dependencies reached by\n"
    "new or pooled connections, other HOST:PORTs, names resolved, paths\n"
    "written); liveness and readiness are named or found under common\n"
    "paths. Endpoints come from --endpoints FILE (a YAML list of method,\n"
    "path, body, headers, name) or from the served OpenAPI document. Then\n"
    "it runs a battery of\n"
    "cases against the service: for each dependency down, blackhole, slow\n"
    "(above the endpoints' p99, and just past a 2 s client timeout) and\n"
    "flapping (PostgreSQL: its connection slots held too), fd exhaustion,\n"
    "DNS failure per resolved name, ENOSPC and EIO per written path. Each\n"
    "endpoint gets one cell per case: graceful 503, fallback 2xx,\n"
    "unaffected, or a finding: 500, hang, no Retry-After, cascade, no\n"
    "recovery, readiness stays up, leak, crash; inconclusive when the\n"
    "fault was never delivered. Writes DIR/matrix.html (a heat map),\n"
    "matrix.md, matrix.json, every case as a scenario file under\n"
    "DIR/scenarios/ (run them again with 'faultline run --service\n"
    "SERVICE.yaml DIR/scenarios/*.yaml') and the run's reports under\n"
    "DIR/run/. Exits 0 when every cell is graceful; 1 for findings or\n"
    "inconclusive cells; 2 for bad files or flags; 3 when something could\n"
    "not start; 130 when interrupted.\n"
    "\n"
    "  --endpoints FILE  the endpoints (method, path, body, headers)\n"
    "  --openapi PATH    read them from the service's OpenAPI document\n"
    "                    (default /openapi.json, without --endpoints)\n"
    "  --out DIR         where the matrix and the cases go (default: audit)\n"
    "  --jobs N          cases run at once (default 1)\n"
    "  --only GLOBS      only the cases named so, comma-separated\n"
    "                    (postgres-*,process-fds)\n"
    "  --discover-only   stop after discovery and print what each endpoint\n"
    "                    uses, with its usual status, p50 and p99\n"
    "  --fresh-deps      start new dependencies for every case instead of\n"
    "                    reusing one PostgreSQL and Redis per job, reset\n"
    "                    between cases (the slower way, for comparison)\n"
    "  --quiet           no progress lines, only the summary\n";

static const char validate_usage[] =
    "usage: faultline validate [--service FILE] FILE...\n"
    "\n"
    "Checks scenario and service files: every mistake is reported as\n"
    "FILE:LINE:COL with what was found and what is allowed. Scenarios are\n"
    "also checked against their service (or --service FILE). Runs nothing.\n";

static const char exec_usage[] =
    "usage: faultline exec [--control PATH] [--fault SPEC]... [--seed N]\n"
    "                      [--proxy [PROTO=]HOST:PORT]... [--quiet]\n"
    "                      -- COMMAND [ARG]...\n"
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
    "                  ('faultline clear' keeps those redirects); with\n"
    "                  PROTO= (http...) the proxy follows that protocol, and\n"
    "                  its protocol faults (http_error@HOST:PORT...) act too\n"
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

static const char serve_usage[] =
    "usage: faultline serve [--listen HOST:PORT] [--token TOKEN]\n"
    "                       [--control PATH] [--seed N] [--quiet]\n"
    "\n"
    "Serves Toxiproxy 2.x's HTTP API, so Toxiproxy clients (any language,\n"
    "Testcontainers) drive faultline's proxies unchanged: /proxies,\n"
    "/proxies/NAME, /proxies/NAME/toxics[/TOXIC], /populate, /reset,\n"
    "/version; toxics latency, bandwidth, slow_close, timeout, reset_peer,\n"
    "slicer, limit_data, with stream and toxicity. Beyond Toxiproxy:\n"
    "  POST /shim {\"control\": PATH, \"fault\": SPEC}   a shim fault in a\n"
    "       'faultline exec --control PATH' (refuse, hang, dns, exhaust...)\n"
    "  GET /shim?control=PATH, DELETE /shim/ID?control=PATH\n"
    "  GET /proxies/NAME: \"faultline\": the faults each toxic delivered\n"
    "Runs until SIGINT or SIGTERM, then closes every proxy.\n"
    "\n"
    "  --listen HOST:PORT  where the API listens (default 127.0.0.1:8474);\n"
    "                  an address other than loopback needs --token\n"
    "  --token TOKEN   requests must carry Authorization: Bearer TOKEN\n"
    "                  (default: $FAULTLINE_TOKEN; 401 without it)\n"
    "  --control PATH  the proxies' control segment (default: a temporary\n"
    "                  file); 'faultline status --control PATH' shows it\n"
    "  --seed N        seed for toxicity decisions\n"
    "  --quiet         print nothing of our own\n";

/* `help faults`: the sections below frame the table's rows (vocab.c). */
static const char faults_conn[] =
    "Fault specs: ACTION@TARGET[,KEY=VALUE]...\n"
    "\n"
    "Connection faults, TARGET is HOST[:PORT], CIDR[:PORT], [IPV6][:PORT],\n"
    "*:PORT or a unix socket path; a host name is resolved when the rule is\n"
    "added, and no port means every port:\n";

static const char faults_stream[] =
    "Stream faults, applied by the proxy to connections to the dependency at\n"
    "TARGET (HOST:PORT or CIDR[:PORT]) that 'exec --proxy HOST:PORT' (or the\n"
    "runner) redirects through it; they reach established connections too:\n";

static const char faults_stream_opts[] =
    "  Their options: dir=up|down|both (up: client to dependency; default\n"
    "  both unless said above), toxicity=0.3 or 30% (share of connections\n"
    "  affected, decided per connection from the seed: reproducible),\n"
    "  after=N (spare the first N connections), times=N (at most N\n"
    "  connections). Counters: matched = connections seen, injected =\n"
    "  connections affected (reset_peer, limit_data: connections cut; down:\n"
    "  connections refused or closed, and once when the listener stops);\n"
    "  bytes held back by latency, bandwidth and slicer are counted too.\n"
    "  Protocol faults (redis_error, pg_error, http_*) need a proxy that\n"
    "  follows the protocol ('exec --proxy http=HOST:PORT', a dependency of\n"
    "  that type, or protocol: in the service file); p=, after= and times=\n"
    "  count messages, and each message rewritten counts as injected.\n"
    "Other faults:\n";

static const char faults_process[] =
    "Process faults, in a scenario only ('{ ACTION: DEP }'), on a managed\n"
    "dependency DEP; the fault ends when its time is up:\n";

static const char faults_tail[] =
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
    "  Durations (ms=, jitter=) are milliseconds, or take a unit: 2s, 250ms;\n"
    "  sizes (rate=, size=, bytes=) are bytes, or 64k, 1m, 1g.\n"
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

static int in_section(const struct fl_fault_type *t, int kind, int conn) {
  return t->kind == kind &&
         (kind != FL_FAULT_SHIM || (t->aim == FL_AIM_CONN) == conn);
}

/* The rows of one section: NAME+USAGE, then the detail, its later lines
 * indented under the first. */
static void print_faults(int kind, int conn) {
  const struct fl_fault_type *t;
  for (size_t i = 0; (t = fl_fault_at(i)) != NULL; i++) {
    if (!in_section(t, kind, conn))
      continue;
    char head[64];
    snprintf(head, sizeof(head), "%s%s", t->name, t->usage);
    printf("  %-21s ", head);
    for (const char *p = t->detail ? t->detail : t->help; *p != '\0'; p++)
      if (*p == '\n')
        printf("\n%24s", "");
      else
        putchar(*p);
    putchar('\n');
  }
}

static void faults_help(void) {
  fputs(faults_conn, stdout);
  print_faults(FL_FAULT_SHIM, 1);
  fputs(faults_stream, stdout);
  print_faults(FL_FAULT_PROXY, 1);
  fputs(faults_stream_opts, stdout);
  print_faults(FL_FAULT_SHIM, 0);
  fputs(faults_process, stdout);
  print_faults(FL_FAULT_PROCESS, 1);
  fputs(faults_tail, stdout);
}

static const char scenario_help[] =
    "Scenario and service files (YAML; scenarios/README.md has examples)\n"
    "\n"
    "A service file says how to start the program under test:\n"
    "  service: NAME             a name for reports\n"
    "  command: [PROG, ARG...]   run directly (a string: sh -c)\n"
    "  dir: PATH                 working directory, relative to the file\n"
    "  env: { KEY: VALUE }       added to the environment\n"
    "  ready: { http: /health, timeout: 20s }   or { tcp: true }\n"
    "  dependencies:\n"
    "    NAME: { type: postgres | redis }       started and removed by us\n"
    "    NAME: { type: external, address: HOST:PORT }\n"
    "Variables: ${PORT} (the target's port), ${DATA_DIR} (an empty\n"
    "folder), per dependency ${NAME_HOST}, ${NAME_PORT}, ${NAME_ADDR},\n"
    "${NAME_URL}; any other ${VAR} from the environment; $$ is a $.\n"
    "\n"
    "A scenario file says what traffic, which faults when, what must hold:\n"
    "  scenario: NAME\n"
    "  description: TEXT         the guardrail, in words\n"
    "  service: FILE             relative to this file (--service overrides)\n"
    "  seed: N                   for p= decisions, drawn paths (default 1)\n"
    "  traffic:\n"
    "    ENDPOINT: { request: METHOD /path, rate: N, timeout: 2s,\n"
    "                body: TEXT, headers: { K: V }, concurrency: N }\n"
    "      path placeholders, drawn per request (seeded): {1..50} {a,b}\n"
    "      (quote the request inside { }: \"GET /api/{items,orders}\")\n"
    "      rate per phase: { PHASE: N, ..., default: N }\n"
    "  timeline:                 phases, in order\n"
    "    - phase: NAME\n"
    "      duration: 5s\n"
    "      faults:               on for the whole phase unless timed\n"
    "        - { ACTION: TARGET, OPTION: VALUE, at: 1s, until: 4s,\n"
    "            every: 2s }     every: on and off in turns (flapping)\n"
    "        - { ACTION: TARGET, at: start }   on before the target starts\n"
    "  expect:\n"
    "    PHASE | always:\n"
    "      ENDPOINT: [ \"EXPECTATION\", ... ]\n"
    "      - TARGET-EXPECTATION\n"
    "\n"
    "Open-loop traffic: request k of an endpoint starts at k/rate seconds\n"
    "whether or not earlier ones finished; with concurrency: N, at most N\n"
    "are in flight and a request's wait for a slot counts in its latency\n"
    "(and its timeout). A fault that is never delivered\n"
    "makes the scenario INCONCLUSIVE. Every mistake in a file is reported\n"
    "as FILE:LINE:COL, what was found and what is allowed ('faultline\n"
    "validate'). The faults (ACTION, TARGET, options) and the expectation\n"
    "forms are listed by 'faultline list'.\n";

/* `faultline help TOPIC`: each topic once, read by fl_usage and by the
 * list of topics a bad one is answered with. */
static const struct {
  const char *name;
  const char *text;
  void (*print)(void);
} topics[] = {
    {"run", run_usage, NULL},          {"validate", validate_usage, NULL},
    {"exec", exec_usage, NULL},        {"inject", inject_usage, NULL},
    {"clear", clear_usage, NULL},      {"status", status_usage, NULL},
    {"list", list_usage, NULL},        {"serve", serve_usage, NULL},
    {"audit", audit_usage, NULL},      {"faults", NULL, faults_help},
    {"scenario", scenario_help, NULL},
};

int fl_usage_topic(const char *topic) {
  for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
    if (strcmp(topic, topics[i].name) == 0) {
      if (topics[i].print != NULL)
        topics[i].print();
      else
        fputs(topics[i].text, stdout);
      return 0;
    }
  return -1;
}

void fl_usage_topics(char *buf, size_t size) {
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++)
    snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? ", " : "",
             topics[i].name);
}

void fl_usage(const char *cmd) {
  if (cmd == NULL || fl_usage_topic(cmd) != 0)
    fputs(general, stdout);
}

/* `faultline list`: one line per fault of these kinds (bits 1 << kind). */
static void list_faults(unsigned kinds) {
  const struct fl_fault_type *t;
  for (size_t i = 0; (t = fl_fault_at(i)) != NULL; i++)
    if ((kinds & (1u << t->kind)) && !t->internal)
      printf("  %-11s %-24s %s\n", t->name, fl_fault_aim_name(t->aim), t->help);
}

/* `faultline list`: the expectation forms, per endpoint and for the
 * target. */
static void list_expectations(void) {
  puts("Expectations: under a phase name or 'always' (scenarios/README.md)");
  puts("  per endpoint:");
  static const char *const endpoint[][2] = {
      {"rate(CLASS) OP N%", "share of the requests in CLASS"},
      {"header(NAME) on CLASS", "every CLASS response has a valid NAME"},
      {"header(NAME) OP N on CLASS", "and its value compares so (a number)"},
      {"header(NAME) == \"TEXT\" on CLASS", "or is TEXT exactly (or !=)"},
      {"header(NAME) on CLASS if any", "likewise; no CLASS response passes"},
      {"p(N) OP DURATION", "latency percentile (nearest rank)"},
      {"max OP DURATION", "the slowest request"},
      {"within timeout", "no request outlived its timeout"},
      {"requests OP N", "how many were sent"},
      {"recovers(rate(CLASS) OP N%) within DURATION",
       "the rate holds every second from then on"},
  };
  for (size_t i = 0; i < sizeof(endpoint) / sizeof(endpoint[0]); i++)
    printf("    %-45s %s\n", endpoint[i][0], endpoint[i][1]);
  puts("  per WebSocket endpoint (request: WS /path):");
  static const char *const ws[][2] = {
      {"connect rate(CLASS) OP N%", "handshakes in CLASS (101: opened)"},
      {"rtt p(N) OP DURATION", "round trip of the replies"},
      {"closes(CODE) OP N", "unexpected closes with CODE (or any)"},
      {"messages OP N per connection", "the fewest a connection received"},
      {"recovers(connect rate(CLASS) OP N%) within DURATION",
       "the connect rate holds every second from then on"},
  };
  /* Two spaces at least between a form and its meaning, as everywhere. */
  for (size_t i = 0; i < sizeof(ws) / sizeof(ws[0]); i++)
    printf("    %-45s %s%s\n", ws[i][0], strlen(ws[i][0]) >= 45 ? " " : "",
           ws[i][1]);
  puts("  for the target:");
  static const char *const target[][2] = {
      {"alive", "running to the end"},
      {"no crash", "not killed by a signal"},
      {"no restart", "the same process throughout"},
      {"starts", "started under the start faults (else FAIL, the rest not "
                 "judged)"},
      {"fds <= baseline + N",
       "the service's own fds (not inbound connections) against the first "
       "phase's mean"},
      {"conns(NAME) <= baseline + N",
       "connections out to dependency NAME (other: elsewhere), likewise"},
      {"inbound <= baseline + N", "connections accepted from clients"},
      {"files <= baseline + N", "fds open on files"},
      {"rss <= baseline + NMB", "resident memory"},
      {"settles(fds <= baseline + N) within DURATION",
       "holds from at most DURATION into the phase to its end (any count)"},
      {"fault(NAME) hit >= N", "a fault delivered (NAME: action, target or "
                               "both)"},
  };
  for (size_t i = 0; i < sizeof(target) / sizeof(target[0]); i++)
    printf("    %-45s %s\n", target[i][0], target[i][1]);
  puts("  CLASS: 503, 2xx, 5xx, error, refused, reset, timeout; "
       "OP: < <= > >= == !=");
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
  puts("Faults: in a scenario '{ ACTION: TARGET, option: value }'; with "
       "'faultline inject' ACTION@TARGET,option=value ('faultline help "
       "faults')");
  list_faults(1u << FL_FAULT_SHIM | 1u << FL_FAULT_PROXY);
  puts("Process faults: in a scenario only, on a managed dependency");
  list_faults(1u << FL_FAULT_PROCESS);
  puts("Fault timing: at: DURATION|start, until: DURATION, every: DURATION");
  puts("");
  list_expectations();
  return FL_EXIT_OK;
}
