/* coverage.c: line coverage of playbooks for `luasoar test --coverage`.
 * Every engine of the process adds to one table; it is written in lcov's
 * format (for genhtml) when the process exits.  Only playbook files are
 * counted: apps run in states of their own, the engine has no Lua source. */
#include "engine.h"
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  char *file;
  int *count;            /* per line: -1 not executable, else hits */
  int nlines;
} cov_file;

static cov_file *files;
static int nfiles;
static char *out_path;

static cov_file *file_of(const char *name) {
  for (int i = 0; i < nfiles; i++)
    if (strcmp(files[i].file, name) == 0) return &files[i];
  files = lsr_xrealloc(files, (nfiles + 1) * sizeof *files);
  cov_file *f = &files[nfiles++];
  f->file = lsr_strdup(name);
  f->count = NULL;
  f->nlines = 0;
  return f;
}

void lsr_coverage_line(void *ud, const char *file, int line, int hit) {
  if (line <= 0) return;
  cov_file *f = file_of(file);
  if (line >= f->nlines) {
    int n = line * 2 + 16;
    f->count = lsr_xrealloc(f->count, n * sizeof *f->count);
    for (int i = f->nlines; i < n; i++) f->count[i] = -1;
    f->nlines = n;
  }
  if (f->count[line] < 0) f->count[line] = 0;
  f->count[line] += hit;
}

static void write_lcov(void) {
  FILE *out = fopen(out_path, "w");
  if (!out) {
    fprintf(stderr, "luasoar: cannot write coverage to %s\n", out_path);
    return;
  }
  for (int i = 0; i < nfiles; i++) {
    cov_file *f = &files[i];
    char abs[PATH_MAX];
    fprintf(out, "TN:\nSF:%s\n", realpath(f->file, abs) ? abs : f->file);
    int found = 0, hit = 0;
    for (int l = 1; l < f->nlines; l++) {
      if (f->count[l] < 0) continue;
      fprintf(out, "DA:%d,%d\n", l, f->count[l]);
      found++;
      hit += f->count[l] > 0;
    }
    fprintf(out, "LF:%d\nLH:%d\nend_of_record\n", found, hit);
  }
  fclose(out);
}

/* Is coverage on (LUASOAR_COVERAGE names the lcov file)?  The first call
 * arranges for the file to be written at exit. */
int lsr_coverage_enabled(void) {
  if (out_path) return 1;
  const char *p = getenv("LUASOAR_COVERAGE");
  if (!p || !*p) return 0;
  out_path = lsr_strdup(p);
  atexit(write_lcov);
  return 1;
}
