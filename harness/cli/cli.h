/* The faultline command's subcommands; each returns an enum fl_exit. */
#ifndef FL_CLI_H
#define FL_CLI_H

int fl_cmd_exec(int argc, char **argv);
int fl_cmd_inject(int argc, char **argv);
int fl_cmd_clear(int argc, char **argv);
int fl_cmd_status(int argc, char **argv);
int fl_cmd_list(int argc, char **argv);
int fl_cmd_run(int argc, char **argv);
int fl_cmd_validate(int argc, char **argv);
int fl_cmd_report(int argc, char **argv);

/* Prints a subcommand's usage to stdout. */
void fl_usage(const char *cmd);

/* "faultline: " + message + newline on stderr. */
__attribute__((format(printf, 1, 2))) void fl_say(const char *fmt, ...);

#endif
