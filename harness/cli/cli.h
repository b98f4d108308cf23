/* The faultline command's subcommands; each returns an enum fl_exit. */
#ifndef FL_CLI_H
#define FL_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

int fl_cmd_exec(int argc, char **argv);
int fl_cmd_inject(int argc, char **argv);
int fl_cmd_clear(int argc, char **argv);
int fl_cmd_status(int argc, char **argv);
int fl_cmd_list(int argc, char **argv);
int fl_cmd_run(int argc, char **argv);
int fl_cmd_validate(int argc, char **argv);
int fl_cmd_report(int argc, char **argv);
int fl_cmd_serve(int argc, char **argv);
/* The stub upstream of an http dependency (hidden: deps/http.c runs it). */
int fl_cmd_stub(int argc, char **argv);
/* The stub upstream of a ws dependency (hidden: deps/http.c runs it). */
int fl_cmd_wsstub(int argc, char **argv);
int fl_cmd_audit(int argc, char **argv);

/* Prints a subcommand's usage to stdout (the general one for NULL or an
 * unknown name). */
void fl_usage(const char *cmd);
/* Prints help topic `topic` (a command, faults, scenario): 0, or -1 when
 * there is none; the topics' names, ", "-separated, into buf. */
int fl_usage_topic(const char *topic);
void fl_usage_topics(char *buf, size_t size);

/* "faultline: " + message + newline on stderr. */
__attribute__((format(printf, 1, 2))) void fl_say(const char *fmt, ...);

/* Option values both programs read. Each returns 0, or FL_EXIT_USAGE after
 * saying what is wrong. */
/* --seed: a whole number (decimal, 0x hex or 0 octal). */
int fl_opt_seed(const char *arg, uint64_t *seed);
/* A subcommand's options: getopt_long's, plus what to do with each. */
struct fl_opts {
  const char *cmd;       /* "run": for fl_usage and messages */
  const char *shortopts; /* getopt_long's; 'h' is --help */
  const struct option *longs;
  /* Takes option c (its value, or NULL); 0 or an exit status. */
  int (*take)(int c, const char *val, void *arg);
  const char *missing; /* said when no positional argument follows */
};
/* Reads the options of argv, leaving the positional arguments (at least
 * one) at argv[optind..]. Returns 0, -1 after --help, or an exit status
 * after saying what is wrong. */
int fl_opt_parse(const struct fl_opts *spec, int argc, char **argv, void *arg);
/* What getopt_long returned for an option it did not take (':' for a
 * missing value, else unknown); `arg` is argv[optind - 1]. */
int fl_opt_bad(const char *cmd, int c, const char *arg);

/* outputs.c: the output folder. Each says why on failure and returns -1. */
typedef struct json_t json_t;
/* Renders result into path with render (fl_dump_json or a fl_report_*). */
int fl_write_file(const char *path, json_t *result,
                  int (*render)(const json_t *, FILE *));
int fl_dump_json(const json_t *result, FILE *f);
/* DIR/result.json, report.html, report.md and junit.xml (DIR is made). */
int fl_write_outputs(const char *out_dir, json_t *result);

#endif
