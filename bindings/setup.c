/* setup.c: the engine's Lua state, the read-only base environment every run
 * sees, counted refs, and loading playbooks as generations.
 *
 * The main state opens every standard library for the engine's own use; a
 * playbook only ever sees the base environment built here. */
#include "json.h"
#include "runtime.h"
#include <dirent.h>
#include <sys/stat.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LSR_MAX_PLAYBOOK_BYTES (4u << 20)

/* The sandbox, in one place.  Globals a playbook may use, from the
 * standard library, each with why it is safe; everything not listed is
 * invisible.  Left out on purpose: io, os (but the clock), package, debug
 * (reaches other runs' locals and metatables), collectgarbage (a run could
 * stop the collector for all), loadfile / dofile (the file system),
 * string.dump (bytecode, which load would refuse anyway). */
static const char *const base_allow[] = {
  "assert", "error", "ipairs", "next", "pairs", "pcall",          /* pure control flow */
  "rawequal", "rawget", "rawlen", "select",                        /* plain table access */
  "tonumber", "tostring", "type", "_VERSION", "getmetatable",      /* value conversion */
  NULL,
};
/* Replaced by versions of this file: rawset (not on shared tables), load
 * (text only, the run's globals), setmetatable (no __gc: finalizers run with
 * hooks off, beyond every limit), xpcall (the handler runs after the error
 * unwinds, with hooks on: Lua runs handlers with hooks off otherwise). */
/* Libraries a playbook sees read-only (a proxy per library, shared by every
 * run): pure functions. */
static const char *const libs_allow[] = {"string", "table", "utf8", NULL};
/* os functions that only read the clock; time and date read the engine's
 * clock (virtual in tests) when no time is given. */
static const char *const os_allow[] = {"clock", "difftime", NULL};

int lsr_ref(lua_State *L) {
  int r = luaL_ref(L, LUA_REGISTRYINDEX);
  if (r != LUA_REFNIL && r != LUA_NOREF) lsr_engine_of(L)->live_refs++;
  return r;
}

void lsr_unref(lua_State *L, int *ref) {
  if (*ref != LUA_REFNIL && *ref != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    lsr_engine_of(L)->live_refs--;
  }
  *ref = LUA_NOREF;
}

void lsr_getref(lua_State *L, int ref) { lua_rawgeti(L, LUA_REGISTRYINDEX, ref); }

/* __index of a run's environment: the base, or an error for a name nothing
 * defines, so a typo fails loudly at its line.  rawget(_ENV, name) tests an
 * optional global. */
static int strict_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "undefined global '%s'", lua_tostring(L, 2));
  return luaL_error(L, "undefined global of type %s", luaL_typename(L, 2));
}

/* os.time() and os.date(fmt): the engine's clock.  upvalue: the real one */
static int l_os_time(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_pushinteger(L, (lua_Integer)lsr_clock(lsr_engine_of(L)));
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int l_os_date(lua_State *L) {
  if (lua_gettop(L) < 1) lua_pushliteral(L, "%c");
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    lua_pushinteger(L, (lua_Integer)lsr_clock(lsr_engine_of(L)));
  }
  lua_settop(L, 2);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 2, 1);
  return 1;
}

/* require: the engine's modules only. */
static int l_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  if (lua_getfield(L, lua_upvalueindex(1), name) != LUA_TNIL) return 1;
  return luaL_error(L, "require: module '%s' is not available to playbooks (available: phantom, json)", name);
}

/* print(...) goes to the run log like phantom.debug, arguments joined by tabs. */
static int l_print(lua_State *L) {
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; i++) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
  }
  luaL_pushresult(&b);
  lsr_run *run = lsr_run_check(L, "print");
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  lsr_run_log(run, LSR_LOG_DEBUG, s, len);
  return 0;
}

#define FROZEN "luasoar.frozen"

static int frozen_newindex(lua_State *L) {
  lua_getfield(L, lua_upvalueindex(1), "__name");
  return luaL_error(L, "cannot change the shared table '%s'", lua_tostring(L, -1));
}

static int frozen_next(lua_State *L) { /* __pairs: the real table's entries */
  lua_settop(L, 2);
  return lua_next(L, 1) ? 2 : (lua_pushnil(L), 1);
}

static int frozen_pairs(lua_State *L) {
  lua_pushcfunction(L, frozen_next);
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  lua_remove(L, -2);
  lua_pushnil(L);
  return 3;
}

static int frozen_len(lua_State *L) {
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__index");
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, -1));
  return 1;
}

/* [-1, +1, m] a read-only view of the table on top, named name */
void lsr_freeze(lua_State *L, const char *name) {
  lua_newtable(L);           /* the proxy */
  lua_newtable(L);           /* its metatable */
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, name);
  lua_setfield(L, -2, "__name");
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, frozen_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, frozen_pairs);
  lua_setfield(L, -2, "__pairs");
  lua_pushcfunction(L, frozen_len);
  lua_setfield(L, -2, "__len");
  lua_pushboolean(L, 0);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_getfield(L, LUA_REGISTRYINDEX, FROZEN);
  lua_pushvalue(L, -2);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_remove(L, -2);
}

/* rawset, except on the shared read-only tables */
static int l_rawset(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, LUA_REGISTRYINDEX, FROZEN);
  lua_pushvalue(L, 1);
  if (lua_rawget(L, -2) != LUA_TNIL) return luaL_error(L, "rawset: the shared tables are read-only");
  lua_settop(L, 3);
  luaL_checkany(L, 3);
  lua_rawset(L, 1);
  lua_settop(L, 1);
  return 1;
}

static int l_setmetatable(lua_State *L) {
  if (lua_istable(L, 2) && lua_getfield(L, 2, "__gc") != LUA_TNIL)
    return luaL_error(L, "setmetatable: __gc is not allowed in playbooks (finalizers run outside every limit)");
  lua_settop(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, lua_isnoneornil(L, 2) || lua_istable(L, 2), 2, "nil or table");
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL) return luaL_error(L, "cannot change a protected metatable");
  lua_setmetatable(L, 1);
  return 1;
}

/* xpcall(f, handler, ...): pcall, then the handler on the error */
static int l_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushboolean(L, 1); /* n + 1: the status, for success */
  lua_pushvalue(L, 1);
  for (int i = 3; i <= n; i++) lua_pushvalue(L, i);
  if (lua_pcall(L, n - 2, LUA_MULTRET, 0) == LUA_OK) return lua_gettop(L) - n;
  lua_pushvalue(L, 2);
  lua_insert(L, -2);
  lua_pcall(L, 1, 1, 0); /* the handler's error, if it fails, is the result */
  lua_pushboolean(L, 0);
  lua_insert(L, -2);
  return 2;
}

/* load(chunk [, name [, mode [, env]]]): text only; the env defaults to the
 * calling run's globals */
static int l_load(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  const char *name = luaL_optstring(L, 2, "=(load)");
  const char *mode = luaL_optstring(L, 3, "t");
  if (strchr(mode, 'b')) return luaL_error(L, "load: binary chunks are not allowed");
  /* compiling is linear in the text: one instruction per byte, about its time (strlib.c) */
  if (lsr_limits_charge(lsr_engine_if(L), (long long)n)) lsr_limits_raise(L);
  if (luaL_loadbufferx(L, s, n, name, "t") != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lsr_run *run = lsr_engine_of(L)->current;
  if (!run) return luaL_error(L, "load: only inside a run"); /* never the engine's own globals */
  if (lua_gettop(L) >= 5 && !lua_isnone(L, 4)) lua_pushvalue(L, 4);
  else lsr_getref(L, run->env_ref);
  lua_setupvalue(L, -2, 1);
  return 1;
}

static int build_base(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  lua_newtable(L);
  lua_setfield(L, LUA_REGISTRYINDEX, FROZEN);
  /* the string metatable stays out of reach; string.dump is gone */
  lua_getglobal(L, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  /* string.find/match/gmatch/gsub/rep and table.move/concat/insert/remove/sort
   * charged to the run's instruction budget (strlib.c): replaced in the
   * libraries themselves, so the proxies below and the string metatable's
   * __index (the same table) both lead to them */
  lsr_strlib_install(L);
  lua_pushliteral(L, "");
  lua_getmetatable(L, -1);
  lua_pushliteral(L, "string");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
  lua_newtable(L); /* base */
  int base = lua_gettop(L);
  for (const char *const *n = base_allow; *n; n++) {
    lua_getglobal(L, *n);
    lua_setfield(L, base, *n);
  }
  for (const char *const *n = libs_allow; *n; n++) {
    lua_getglobal(L, *n);
    lsr_freeze(L, *n);
    lua_setfield(L, base, *n);
  }
  /* math.randomseed would reseed the one generator every run draws from:
   * a run could make another's random numbers known.  Playbooks see a copy
   * of math without it. */
  lua_newtable(L);
  lua_getglobal(L, "math");
  for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
    if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "randomseed") == 0) continue;
    lua_pushvalue(L, -2);
    lua_pushvalue(L, -2);
    lua_rawset(L, -6);
  }
  lua_pop(L, 1);
  lsr_freeze(L, "math");
  lua_setfield(L, base, "math");
  lsr_limits_coroutine_lib(L);
  lsr_freeze(L, "coroutine");
  lua_setfield(L, base, "coroutine");
  lua_pushcfunction(L, l_rawset);
  lua_setfield(L, base, "rawset");
  lua_pushcfunction(L, l_setmetatable);
  lua_setfield(L, base, "setmetatable");
  lua_pushcfunction(L, l_xpcall);
  lua_setfield(L, base, "xpcall");
  lua_pushcfunction(L, l_load);
  lua_setfield(L, base, "load");
  lua_newtable(L);
  lua_getglobal(L, "os");
  for (const char *const *n = os_allow; *n; n++) {
    lua_getfield(L, -1, *n);
    lua_setfield(L, -3, *n);
  }
  lua_getfield(L, -1, "time");
  lua_pushcclosure(L, l_os_time, 1);
  lua_setfield(L, -3, "time");
  lua_getfield(L, -1, "date");
  lua_pushcclosure(L, l_os_date, 1);
  lua_setfield(L, -3, "date");
  lua_pop(L, 1);
  lsr_freeze(L, "os");
  lua_setfield(L, base, "os");
  lua_newtable(L); /* modules for require */
  lsr_phantom_open(L);
  lsr_freeze(L, "phantom");
  lua_pushvalue(L, -1);
  lua_setfield(L, base, "phantom");
  lua_setfield(L, -2, "phantom");
  lsr_json_open(L);
  lsr_freeze(L, "json");
  lua_pushvalue(L, -1);
  lua_setfield(L, base, "json");
  lua_setfield(L, -2, "json");
  lua_pushcclosure(L, l_require, 1);
  lua_setfield(L, base, "require");
  lua_pushcfunction(L, l_print);
  lua_setfield(L, base, "print");
  lua_pushvalue(L, base);
  eng->base_ref = lsr_ref(L);
  /* metatable of every run environment */
  lua_newtable(L);
  lua_pushvalue(L, base);
  lua_pushcclosure(L, strict_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "luasoar run environment");
  lua_setfield(L, -2, "__metatable");
  eng->envmeta_ref = lsr_ref(L);
  /* factory(env) returns a fresh closure whose only upvalue holds env; its
   * upvalue is joined to a chunk's _ENV to give each run its own globals */
  if (luaL_loadstring(L, "return function(env) return function() return env end end") != LUA_OK)
    return lua_error(L);
  lua_call(L, 0, 1);
  eng->factory_ref = lsr_ref(L);
  return 0;
}

int lsr_lua_setup(lsr_engine *eng, char *err, size_t errlen) {
  lsr_limits_defaults(eng);
  lua_State *L = lua_newstate(lsr_alloc, eng);
  if (!L) {
    snprintf(err, errlen, "cannot create a Lua state (out of memory)");
    return -1;
  }
  eng->L = L;
  *(lsr_engine **)lua_getextraspace(L) = eng;
  luaL_openlibs(L);
  lsr_json_init(L);
  lua_pushcfunction(L, build_base);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
    snprintf(err, errlen, "cannot set up the playbook environment: %s", lua_tostring(L, -1));
    return -1;
  }
  eng->setup_refs = eng->live_refs;
  return 0;
}

void lsr_lua_teardown(lsr_engine *eng) {
  for (int i = 0; i < eng->ngens; i++) lsr_gen_free(eng, eng->gens[i]);
  free(eng->gens);
  eng->gens = NULL;
  eng->ngens = 0;
  for (int i = 0; eng->cfg && i < eng->cfg->napps; i++) lsr_lua_app_close(&eng->cfg->apps[i]);
  if (eng->L) lua_close(eng->L);
  eng->L = NULL;
}

/* Custom lists from <dir>/<name>.json (a missing folder: none). */
static int seed_lists(lua_State *L) {
  const char *dir = lua_tostring(L, 1);
  char *err = lua_touserdata(L, 2);
  size_t errlen = (size_t)lua_tointeger(L, 3);
  DIR *d = opendir(dir);
  if (!d) return 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t n = strlen(de->d_name);
    if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0) continue;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    char *text;
    size_t len;
    if (lsr_read_file(path, &text, &len, 64u << 20, err, errlen) < 0) {
      closedir(d);
      return luaL_error(L, "%s", err);
    }
    lsr_getref(L, lsr_engine_of(L)->hooks_ref);
    lua_getfield(L, -1, "seed_list");
    lua_remove(L, -2);
    lua_pushlstring(L, de->d_name, n - 5);
    lua_pushlstring(L, text, len);
    free(text);
    if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
      closedir(d);
      return luaL_error(L, "%s: %s", path, lua_tostring(L, -1));
    }
  }
  closedir(d);
  return 0;
}

int lsr_lists_load(lsr_engine *eng, const char *dir, char *err, size_t errlen) {
  lua_State *L = eng->L;
  lua_pushcfunction(L, seed_lists);
  lua_pushstring(L, dir);
  lua_pushlightuserdata(L, err);
  lua_pushinteger(L, (lua_Integer)errlen);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

static int call_hook(lua_State *L) {
  int n = lua_gettop(L);
  lsr_getref(L, lsr_engine_of(L)->hooks_ref);
  lua_getfield(L, -1, lua_tostring(L, 1));
  lua_replace(L, 1);
  lua_pop(L, 1);
  lua_call(L, n - 1, 0);
  return 0;
}

int lsr_hook_strings(lsr_engine *eng, const char *hook, int nargs, const char **args, char *err, size_t errlen) {
  lua_State *L = eng->L;
  lua_pushcfunction(L, call_hook);
  lua_pushstring(L, hook);
  for (int i = 0; i < nargs; i++) lua_pushstring(L, args[i]);
  if (lua_pcall(L, nargs + 1, 0, 0) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* Compile a playbook file as text into a new generation. */
lsr_gen *lsr_gen_load(lsr_engine *eng, const char *path, char *err, size_t errlen) {
  char *text;
  size_t len;
  if (lsr_read_file(path, &text, &len, LSR_MAX_PLAYBOOK_BYTES, err, errlen) < 0) return NULL;
  lua_State *L = eng->L;
  size_t cl = strlen(path) + 2;
  char *chunk = lsr_xalloc(cl);
  snprintf(chunk, cl, "@%s", path);
  int rc = luaL_loadbufferx(L, text, len, chunk, "t");
  free(chunk);
  free(text);
  if (rc != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return NULL;
  }
  lsr_gen *g = lsr_xalloc(sizeof *g);
  struct stat sb;
  if (stat(path, &sb) == 0) g->mtime = (double)sb.st_mtim.tv_sec + sb.st_mtim.tv_nsec / 1e9;
  g->path = lsr_strdup(path);
  g->fn_ref = lsr_ref(L);
  return g;
}

lsr_gen *lsr_gen_cached(lsr_engine *eng, const char *path, char *err, size_t errlen) {
  for (int i = 0; i < eng->ngens; i++)
    if (strcmp(eng->gens[i]->path, path) == 0) return eng->gens[i];
  lsr_gen *g = lsr_gen_load(eng, path, err, errlen);
  if (!g) return NULL;
  eng->gens = lsr_xrealloc(eng->gens, (eng->ngens + 1) * sizeof *eng->gens);
  eng->gens[eng->ngens++] = g;
  return g;
}

void lsr_gen_free(lsr_engine *eng, lsr_gen *g) {
  if (!g) return;
  lsr_unref(eng->L, &g->fn_ref);
  free(g->path);
  free(g);
}

/* On a throwaway thread: the chunk's top level in a fresh environment; the
 * environment is left in the registry slot given. */
static int info_block(lua_State *T) {
  lsr_engine *eng = lsr_engine_of(T);
  lsr_gen *g = lua_touserdata(T, 1);
  lsr_getref(T, g->fn_ref);
  lsr_getref(T, eng->factory_ref);
  lua_pushvalue(T, 2); /* the env */
  lua_call(T, 1, 1);
  lua_upvaluejoin(T, -2, 1, -1, 1);
  lua_pop(T, 1);
  lua_call(T, 0, 0);
  return 0;
}

int lsr_gen_info(lsr_engine *eng, lsr_gen *gen, char ***labels, int *active, char *err, size_t errlen) {
  lua_State *L = eng->L;
  int top = lua_gettop(L);
  *labels = lsr_xalloc(sizeof **labels);
  *active = 0;
  /* the top level runs under limits, as a run would: a dummy run holds them */
  lsr_run dummy;
  memset(&dummy, 0, sizeof dummy);
  dummy.eng = eng;
  dummy.limits = eng->limits;
  lua_State *T = lua_newthread(L);
  lsr_limits_arm(eng, T);
  lua_newtable(L); /* the env */
  lsr_getref(L, eng->envmeta_ref);
  lua_setmetatable(L, -2);
  int env = lua_gettop(L);
  lua_pushcfunction(T, info_block);
  lua_pushlightuserdata(T, gen);
  lua_pushvalue(L, env);
  lua_xmove(L, T, 1);
  lsr_run *outer = eng->current;
  eng->current = &dummy;
  int nres, st = lua_resume(T, L, 2, &nres);
  eng->current = outer;
  if (st != LUA_OK || dummy.killed) {
    const char *msg = dummy.killed ? dummy.killed : lua_tostring(T, -1);
    snprintf(err, errlen, "%s", msg ? msg : "the top level failed");
    lua_settop(L, top);
    return -1;
  }
  lua_pushliteral(L, "playbook_info");
  if (lua_rawget(L, env) == LUA_TTABLE) {
    lua_getfield(L, -1, "active");
    *active = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "labels") == LUA_TTABLE) {
      int n = (int)lua_rawlen(L, -1);
      *labels = lsr_xrealloc(*labels, (size_t)(n + 1) * sizeof **labels);
      int k = 0;
      for (int i = 1; i <= n; i++) {
        if (lua_rawgeti(L, -1, i) == LUA_TSTRING) (*labels)[k++] = lsr_strdup(lua_tostring(L, -1));
        lua_pop(L, 1);
      }
      (*labels)[k] = NULL;
    }
  }
  lua_settop(L, top);
  return 0;
}
