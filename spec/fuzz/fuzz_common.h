/* fuzz_common.h: what the libFuzzer harnesses of spec/fuzz/ share: a check
 * that aborts (so libFuzzer records the input), temp playbook files, and an
 * engine on a virtual clock.  Header-only: each harness is one .c file. */
#ifndef LSR_FUZZ_COMMON_H
#define LSR_FUZZ_COMMON_H
#define _GNU_SOURCE /* memmem */
#include "engine.h"
#include "json.h"
#include <lua.h>
#include <lauxlib.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exploring past a known finding (never in the default runs):
 *   FUZZ_IGNORE="text|text"  a failed check whose message contains one of
 *                            these ends the input quietly instead of aborting
 *   FUZZ_SKIP="bytes|bytes"  inputs containing one of these are not run
 * (sanitizer reports in engine code cannot be ignored this way). */
static jmp_buf fuzz_jmp;
static int fuzz_jmp_armed;

static __attribute__((unused)) int fuzz_matches(const char *var, const void *hay, size_t n) {
  const char *list = getenv(var);
  if (!list || !*list) return 0;
  for (const char *p = list; *p;) {
    const char *bar = strchr(p, '|');
    size_t len = bar ? (size_t)(bar - p) : strlen(p);
    if (len && memmem(hay, n, p, len)) return 1;
    p += len + (bar ? 1 : 0);
  }
  return 0;
}

/* A broken invariant: say which and abort, so libFuzzer saves the input. */
static __attribute__((unused, noreturn)) void fuzz_fail(const char *file, int line, const char *fmt, ...) {
  char msg[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (fuzz_jmp_armed && fuzz_matches("FUZZ_IGNORE", msg, strlen(msg))) longjmp(fuzz_jmp, 1);
  fprintf(stderr, "\nFUZZ CHECK FAILED at %s:%d: %s\n", file, line, msg);
  abort();
}
#define FUZZ_CHECK(cond, ...) do { if (!(cond)) fuzz_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)

/* At the top of LLVMFuzzerTestOneInput: skip FUZZ_SKIP inputs; an ignored
 * check comes back here, runs cleanup and ends the input.  FUZZ_END before
 * returning normally. */
#define FUZZ_BEGIN(data, size, cleanup) do { \
    if (fuzz_matches("FUZZ_SKIP", (data), (size))) return 0; \
    if (setjmp(fuzz_jmp)) { fuzz_jmp_armed = 0; cleanup; return 0; } \
    fuzz_jmp_armed = 1; \
  } while (0)
#define FUZZ_END() (fuzz_jmp_armed = 0)

/* Are the values at a and b (one state) the same JSON value: same types,
 * integers and floats apart, arrays marked alike? */
static __attribute__((unused)) int fuzz_same(lua_State *L, int a, int b, int depth) {
  a = lua_absindex(L, a);
  b = lua_absindex(L, b);
  int t = lua_type(L, a);
  if (t != lua_type(L, b)) return 0;
  switch (t) {
  case LUA_TNUMBER:
    if (lua_isinteger(L, a) != lua_isinteger(L, b)) return 0;
    return lua_rawequal(L, a, b);
  case LUA_TSTRING: case LUA_TBOOLEAN: case LUA_TLIGHTUSERDATA:
    return lua_rawequal(L, a, b);
  case LUA_TTABLE: {
    if (depth > 200) return 0;
    if (lsr_json_is_array(L, a) != lsr_json_is_array(L, b)) return 0;
    luaL_checkstack(L, 8, "same");
    /* every key of a is in b with the same value, and b has no other key */
    lua_Integer na = 0, nb = 0;
    lua_pushnil(L);
    while (lua_next(L, a)) {
      na++;
      lua_pushvalue(L, -2);
      lua_rawget(L, b);
      int eq = fuzz_same(L, -1, -2, depth + 1);
      lua_pop(L, 2);
      if (!eq) { lua_pop(L, 1); return 0; }
    }
    lua_pushnil(L);
    while (lua_next(L, b)) { nb++; lua_pop(L, 1); }
    return na == nb;
  }
  default: return 0;
  }
}

/* Temp files written once per process, removed once used (or at exit). */
static char *fuzz_tmp_paths[8];
static int fuzz_ntmp;

static __attribute__((unused)) void fuzz_tmp_cleanup(void) {
  for (int i = 0; i < fuzz_ntmp; i++) {
    unlink(fuzz_tmp_paths[i]);
    free(fuzz_tmp_paths[i]);
  }
  fuzz_ntmp = 0;
}

/* Write text to a new file named /tmp/luasoar-fuzz-XXXXXX<suffix>; its path. */
static __attribute__((unused)) const char *fuzz_write_tmp(const char *text, const char *suffix) {
  char path[256];
  snprintf(path, sizeof path, "%s/luasoar-fuzz-XXXXXX%s",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", suffix);
  int fd = mkstemps(path, (int)strlen(suffix));
  FUZZ_CHECK(fd >= 0, "cannot create %s", path);
  size_t n = strlen(text);
  FUZZ_CHECK(write(fd, text, n) == (ssize_t)n, "cannot write %s", path);
  close(fd);
  if (fuzz_ntmp == 0) atexit(fuzz_tmp_cleanup);
  FUZZ_CHECK(fuzz_ntmp < 8, "too many temp files");
  fuzz_tmp_paths[fuzz_ntmp++] = strdup(path);
  return fuzz_tmp_paths[fuzz_ntmp - 1];
}

/* How the last run of the engine ended (observer on_run_end). */
typedef struct {
  int ended;            /* runs that ended since the last reset */
  int failed;
  char error[4096];     /* the last failed run's error */
} fuzz_run_result;

static __attribute__((unused)) void fuzz_on_run_end(lsr_run *run, void *ud) {
  fuzz_run_result *r = ud;
  r->ended++;
  r->failed = run->failed;
  snprintf(r->error, sizeof r->error, "%s", run->error ? run->error : "");
}

/* An engine on its own loop, a virtual clock and fixed guids, with the
 * playbook `source` compiled once. */
static __attribute__((unused)) lsr_engine *fuzz_engine(const char *source, lsr_gen **gen, fuzz_run_result *res) {
  char err[1024];
  lsr_engine *eng = lsr_engine_new(NULL, err, sizeof err);
  FUZZ_CHECK(eng, "lsr_engine_new: %s", err);
  eng->virtual_clock = 1;
  eng->guid_seed = 0;
  eng->obs.on_run_end = fuzz_on_run_end;
  eng->obs.ud = res;
  if (source) {
    const char *path = fuzz_write_tmp(source, ".lua");
    *gen = lsr_gen_cached(eng, path, err, sizeof err); /* the engine frees it */
    FUZZ_CHECK(*gen, "lsr_gen_cached: %s", err);
    fuzz_tmp_cleanup(); /* compiled: the file is not read again (and a crash skips atexit) */
  }
  return eng;
}

/* Empty the engine's store (containers, lists, objects) so no input depends
 * on the ones before it. */
static __attribute__((unused)) void fuzz_reset_store(lsr_engine *eng) {
  lua_State *L = eng->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, eng->store_ref);
  for (;;) {
    lua_pushnil(L);
    if (!lua_next(L, -2)) break;
    lua_pop(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
  }
  lua_pop(L, 1);
}

/* After an ignored check (FUZZ_IGNORE): the engine back to idle, the store
 * empty, and the references left counted as the new baseline. */
static __attribute__((unused)) void fuzz_settle(lsr_engine *eng, long *base_refs) {
  lua_settop(eng->L, 0);
  lsr_engine_drain(eng);
  fuzz_reset_store(eng);
  *base_refs = eng->live_refs;
}

/* After a drain: no run, no queued task, no timer, no leaked ref, a clean
 * stack. */
static __attribute__((unused)) void fuzz_check_idle(lsr_engine *eng, long refs) {
  FUZZ_CHECK(eng->live_runs == 0, "%d live runs after drain", eng->live_runs);
  FUZZ_CHECK(eng->runs == NULL, "a run is still listed after drain");
  FUZZ_CHECK(eng->ready_head == NULL, "tasks queued after drain");
  FUZZ_CHECK(eng->vtimers == NULL, "timers pending after drain");
  FUZZ_CHECK(eng->current == NULL, "a current run after drain");
  FUZZ_CHECK(eng->live_refs == refs, "registry refs leaked: %ld held, %ld before the input",
             eng->live_refs, refs);
  FUZZ_CHECK(eng->cfg->refs == 0, "the config still has %d refs after drain", eng->cfg->refs);
  FUZZ_CHECK(lua_gettop(eng->L) == 0, "%d values left on the engine's Lua stack", lua_gettop(eng->L));
  for (int i = 0; i < eng->ngens; i++)
    FUZZ_CHECK(eng->gens[i]->runs == 0, "generation %s still counts %d runs", eng->gens[i]->path,
               eng->gens[i]->runs);
}

#endif
