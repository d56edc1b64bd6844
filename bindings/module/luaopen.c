/* luaopen.c: `require "luasoar"` from busted.  The engine runs in a Lua state
 * of its own (the same code as `luasoar run`); what comes back to the caller
 * is the run's JSON report decoded into the caller's state. */
#include "json.h"
#include "runtime.h"
#include <stdlib.h>
#include <string.h>

#define ENGINE_MT "luasoar.engine"

typedef struct {
  lsr_engine *eng;
  lsr_gen **gens;
  int ngens;
  char **reports;       /* reports of runs that ended, not yet collected */
  int nreports;
} mod_engine;

static void on_run_end(lsr_run *run, void *ud) {
  mod_engine *m = ud;
  m->reports = lsr_xrealloc(m->reports, (m->nreports + 1) * sizeof *m->reports);
  m->reports[m->nreports++] = lsr_run_report_json(run);
}

static mod_engine *check_engine(lua_State *L) {
  mod_engine *m = luaL_checkudata(L, 1, ENGINE_MT);
  if (!m->eng) luaL_error(L, "luasoar: engine is closed");
  return m;
}

static const char *opt_field(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  const char *s = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the options table keeps it alive */
  return s;
}

/* luasoar.engine{apps = DIR, assets = FILE, seed = N} */
static int l_engine(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *apps = opt_field(L, 1, "apps"), *assets = opt_field(L, 1, "assets");
  mod_engine *m = lua_newuserdatauv(L, sizeof *m, 0);
  memset(m, 0, sizeof *m);
  luaL_setmetatable(L, ENGINE_MT);
  char err[2048];
  m->eng = lsr_engine_new(NULL, err, sizeof err);
  if (!m->eng) return luaL_error(L, "luasoar.engine: %s", err);
  m->eng->obs = (lsr_observer){NULL, on_run_end, m};
  if (lua_getfield(L, 1, "seed") != LUA_TNIL) {
    m->eng->guid_seed = (uint64_t)luaL_checkinteger(L, -1);
  }
  lua_pop(L, 1);
  if (lsr_config_load(&m->eng->cfg, apps, assets, assets != NULL, err, sizeof err) < 0)
    return luaL_error(L, "luasoar.engine: %s", err);
  return 1;
}

/* eng:start(playbook_path, container) -> run_id; container is a table or a
 * JSON file name */
static int l_start(lua_State *L) {
  mod_engine *m = check_engine(L);
  const char *path = luaL_checkstring(L, 2);
  char err[2048];
  lsr_gen *gen = NULL;
  for (int i = 0; i < m->ngens; i++)
    if (strcmp(m->gens[i]->path, path) == 0) gen = m->gens[i];
  if (!gen) {
    gen = lsr_gen_load(m->eng, path, err, sizeof err);
    if (!gen) return luaL_error(L, "%s", err);
    m->gens = lsr_xrealloc(m->gens, (m->ngens + 1) * sizeof *m->gens);
    m->gens[m->ngens++] = gen;
  }
  lsr_run *run;
  if (lua_type(L, 3) == LUA_TSTRING) {
    run = lsr_run_file(m->eng, gen, lua_tostring(L, 3), err, sizeof err);
  } else {
    luaL_checktype(L, 3, LUA_TTABLE);
    lsr_json_encode(L, 3, 0);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    run = lsr_run_json(m->eng, gen, s, n, "container", err, sizeof err);
  }
  if (!run) return luaL_error(L, "%s", err);
  lua_pushinteger(L, run->id);
  return 1;
}

/* eng:wait() -> the reports of the runs that ended, in the order they ended */
static int l_wait(lua_State *L) {
  mod_engine *m = check_engine(L);
  lsr_engine_drain(m->eng);
  lua_createtable(L, m->nreports, 0);
  char err[256];
  for (int i = 0; i < m->nreports; i++) {
    if (lsr_json_decode(L, m->reports[i], strlen(m->reports[i]), err, sizeof err) < 0)
      return luaL_error(L, "luasoar: bad report: %s", err);
    lua_rawseti(L, -2, i + 1);
    free(m->reports[i]);
  }
  m->nreports = 0;
  return 1;
}

/* eng:run(playbook_path, container) -> the report of that run */
static int l_run(lua_State *L) {
  lua_settop(L, 3);
  l_start(L);
  lua_Integer id = lua_tointeger(L, -1);
  l_wait(L);
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "run_id");
    if (lua_tointeger(L, -1) == id) { lua_pop(L, 1); return 1; }
    lua_pop(L, 2);
  }
  return luaL_error(L, "luasoar: run %d did not end", (int)id);
}

/* eng:stats() -> {live_refs, live_runs, memory} for leak checks; live_refs
 * counts the refs held for runs, not the engine's own or the playbooks' */
static int l_stats(lua_State *L) {
  mod_engine *m = check_engine(L);
  lua_gc(m->eng->L, LUA_GCCOLLECT);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, m->eng->live_refs - m->eng->setup_refs - m->ngens);
  lua_setfield(L, -2, "live_refs");
  lua_pushinteger(L, m->eng->live_runs);
  lua_setfield(L, -2, "live_runs");
  lua_pushinteger(L, (lua_Integer)lua_gc(m->eng->L, LUA_GCCOUNT) * 1024 + lua_gc(m->eng->L, LUA_GCCOUNTB));
  lua_setfield(L, -2, "memory");
  return 1;
}

static int l_close(lua_State *L) {
  mod_engine *m = luaL_checkudata(L, 1, ENGINE_MT);
  if (!m->eng) return 0;
  for (int i = 0; i < m->ngens; i++) lsr_gen_free(m->eng, m->gens[i]);
  free(m->gens);
  for (int i = 0; i < m->nreports; i++) free(m->reports[i]);
  free(m->reports);
  lsr_engine_free(m->eng);
  m->eng = NULL;
  return 0;
}

static int l_json_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char err[256];
  if (lsr_json_decode(L, s, n, err, sizeof err) < 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  return 1;
}

static int l_json_encode(lua_State *L) {
  luaL_checkany(L, 1);
  lsr_json_encode(L, 1, 0);
  return 1;
}

int luaopen_luasoar(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"start", l_start}, {"wait", l_wait}, {"run", l_run}, {"stats", l_stats},
    {"close", l_close}, {NULL, NULL},
  };
  static const luaL_Reg fns[] = {
    {"engine", l_engine}, {"json_decode", l_json_decode}, {"json_encode", l_json_encode},
    {NULL, NULL},
  };
  lsr_json_init(L);
  if (luaL_newmetatable(L, ENGINE_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fns);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  return 1;
}
