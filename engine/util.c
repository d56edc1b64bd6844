/* util.c: allocation, strings, file reading and text positions shared by the
 * engine.  No Lua here. */
#include "engine.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void *lsr_xalloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) { fprintf(stderr, "luasoar: out of memory\n"); abort(); }
  return p;
}

void *lsr_xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) { fprintf(stderr, "luasoar: out of memory\n"); abort(); }
  return p;
}

char *lsr_strndup(const char *s, size_t n) {
  char *d = lsr_xalloc(n + 1);
  memcpy(d, s, n);
  return d;
}

char *lsr_strdup(const char *s) { return s ? lsr_strndup(s, strlen(s)) : NULL; }

char **lsr_strv_dup(char **v) {
  size_t n = 0;
  while (v && v[n]) n++;
  char **d = lsr_xalloc((n + 1) * sizeof *d);
  for (size_t i = 0; i < n; i++) d[i] = lsr_strdup(v[i]);
  return d;
}

void lsr_strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

int lsr_read_file(const char *path, char **data, size_t *len, size_t max,
                  char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    return -1;
  }
  struct stat st;
  if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
    fclose(f);
    snprintf(err, errlen, "%s: is a directory", path);
    return -1;
  }
  size_t cap = 4096, n = 0;
  char *buf = lsr_xalloc(cap);
  for (;;) {
    if (n + 1 >= cap) buf = lsr_xrealloc(buf, cap *= 2);
    size_t got = fread(buf + n, 1, cap - n - 1, f);
    n += got;
    if (n > max) {
      fclose(f); free(buf);
      snprintf(err, errlen, "%s: larger than the limit of %zu bytes", path, max);
      return -1;
    }
    if (got == 0) break;
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    snprintf(err, errlen, "%s: read error", path);
    return -1;
  }
  buf[n] = 0;
  *data = buf;
  *len = n;
  return 0;
}

void lsr_offset_to_linecol(const char *text, size_t len, size_t off,
                           int *line, int *col) {
  int l = 1, c = 1;
  if (off > len) off = len;
  for (size_t i = 0; i < off; i++) {
    if (text[i] == '\n') { l++; c = 1; } else c++;
  }
  *line = l;
  *col = c;
}

double lsr_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int lsr_errf(char *err, size_t n, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, n, fmt, ap);
  va_end(ap);
  return -1;
}
