#include "base.h"

#include <string.h>

const char *fl_strerror(int code) {
  switch ((enum fl_error)code) {
#define FL_X_CASE(name, text)                                                  \
  case FL_##name:                                                              \
    return text;
    FL_ERRORS(FL_X_CASE)
#undef FL_X_CASE
  case FL_ERROR_BASE:
    break;
  }
  return code < 0 ? strerror(-code) : "success";
}
