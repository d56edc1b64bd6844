/* prelude.h: the Lua files of bindings/lua/, embedded at build time. */
#ifndef LSR_PRELUDE_H
#define LSR_PRELUDE_H
#include <stddef.h>
typedef struct {
  const char *name, *text;
  size_t len;
} lsr_prelude_file;
extern const lsr_prelude_file lsr_prelude[];
#endif
