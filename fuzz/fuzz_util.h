/* What the fuzz targets share: turning libFuzzer's bytes into the inputs
 * the parsers take (a C string, a file path). */
#ifndef FL_FUZZ_UTIL_H
#define FL_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* A NUL-terminated copy of data, exactly n + 1 bytes (so ASan sees any
 * read past the end); the caller frees it. NULL when out of memory. */
char *fuzz_cstr(const uint8_t *data, size_t n);

/* A path that reads back as exactly data[0..n): a memory file rewritten
 * on each call, named /proc/self/fd/N. NULL when it cannot be made. */
const char *fuzz_file(const uint8_t *data, size_t n);

#endif
