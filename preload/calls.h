/*
 * Calling through to libc. Before the constructor resolved fl_real_*, a
 * wrapper falls back to the raw syscall, so calls made by other libraries'
 * constructors work (and pass through unfaulted).
 */
#ifndef FL_CALLS_H
#define FL_CALLS_H

#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

#define FL_CALL(name, fallback, ...)                                           \
  (fl_real_##name != NULL ? fl_real_##name(__VA_ARGS__) : (fallback))

#endif
