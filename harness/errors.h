/*
 * Errors: functions return 0 or a negative code: -errno for system errors,
 * or one of faultline's own codes below (all beyond errno's range).
 * Codes are appended, never renumbered.
 */
#ifndef FL_ERRORS_H
#define FL_ERRORS_H

#define FL_ERRORS(X)                                                           \
  X(EBADSPEC, "malformed fault spec")                                          \
  X(EBADCTL, "not a valid faultline control segment")                          \
  X(ERULESFULL, "no free rule slot in the control segment")                    \
  X(ENORULE, "no such rule")                                                   \
  X(EUSAGE, "bad usage")                                                       \
  X(ESTATIC, "statically linked program: the shim cannot be preloaded")        \
  X(ENOSHIM, "libfaultline-preload.so not found")                              \
  X(EBADSCENARIO, "malformed scenario or service file")                        \
  X(ESTART, "a process failed to start")

enum fl_error {
  FL_ERROR_BASE = -10000,
#define FL_X_ENUM(name, text) FL_##name,
  FL_ERRORS(FL_X_ENUM)
#undef FL_X_ENUM
};

/* Process exit statuses of the faultline command. */
enum fl_exit {
  FL_EXIT_OK = 0,     /* all passed / command succeeded */
  FL_EXIT_FAILED = 1, /* an expectation failed or was inconclusive */
  FL_EXIT_USAGE = 2,  /* bad usage, bad spec, bad scenario */
  FL_EXIT_ENV = 3,    /* the environment failed: a process would not start */
};

/* A static description of any code this project returns. */
const char *fl_strerror(int code);

#endif
