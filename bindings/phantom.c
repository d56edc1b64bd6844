/* phantom.c: the `phantom` module table: logging, the run summary, and the
 * registration of every API surface (act.c, ...).  The parts written in Lua
 * come from bindings/lua/, embedded at build time. */
#include "json.h"
#include "runtime.h"
#include <stdlib.h>
#include <string.h>

#include "prelude.h"

static int encode_lenient(lua_State *L) {
  lsr_json_encode(L, 1, 1);
  return 1;
}

/* A debug of a string is that string; of anything else, its JSON (a value
 * JSON cannot hold, like a table that contains itself, is logged as what it
 * is, with why). */
static void log_value(lua_State *L, lsr_log_level level, const char *fname) {
  lsr_run *run = lsr_run_check(L, fname);
  size_t len;
  const char *s;
  if (lua_type(L, 1) == LUA_TSTRING) {
    s = lua_tolstring(L, 1, &len);
  } else {
    lua_pushcfunction(L, encode_lenient);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      if (lsr_engine_of(L)->current && lsr_engine_of(L)->current->killed) lua_error(L); /* a limit, not JSON */
      lua_pushfstring(L, "<%s: %s>", luaL_typename(L, 1), lua_tostring(L, -1));
    }
    s = lua_tolstring(L, -1, &len);
  }
  lsr_run_log(run, level, s, len);
}

static int l_debug(lua_State *L) {
  lua_settop(L, 1);
  log_value(L, LSR_LOG_DEBUG, "phantom.debug");
  return 0;
}

static int l_error(lua_State *L) {
  lua_settop(L, 1);
  log_value(L, LSR_LOG_ERROR, "phantom.error");
  return 0;
}

/* A copy, so a playbook cannot change what the engine reports. */
static int l_get_summary(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "phantom.get_summary");
  char err[128];
  lsr_getref(L, run->summary_ref);
  lsr_json_encode(L, -1, 1);
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  if (lsr_json_decode(L, s, n, err, sizeof err) < 0) return luaL_error(L, "phantom.get_summary: %s", err);
  return 1;
}

void lsr_hook(lua_State *L, const char *name, int n, int r) {
  lsr_getref(L, lsr_engine_of(L)->hooks_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_insert(L, -n - 1);
  lua_call(L, n, r);
}

void lsr_push_state(lua_State *L, lsr_run *run) { lsr_getref(L, run->state_ref); }

/* internal.state(fname) -> the current run's state table */
static int l_state(lua_State *L) {
  lsr_push_state(L, lsr_run_check(L, luaL_optstring(L, 1, "phantom")));
  return 1;
}

/* internal.store() -> the engine's store */
static int l_store(lua_State *L) {
  lsr_getref(L, lsr_engine_of(L)->store_ref);
  return 1;
}

/* internal.log(level, message) */
static int l_log(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "phantom");
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  lsr_run_log(run, strcmp(luaL_checkstring(L, 1), "error") == 0 ? LSR_LOG_ERROR : LSR_LOG_DEBUG, s, n);
  return 0;
}

/* internal.persist(kind, key, value): what the store must keep (serve) */
static int l_persist(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  if (!eng->obs.persist) return 0;
  const char *kind = luaL_checkstring(L, 1), *key = luaL_checkstring(L, 2);
  lsr_json_encode(L, 3, 1);
  eng->obs.persist(eng->current, kind, key, lua_tostring(L, -1), eng->obs.ud);
  return 0;
}

/* internal.persisting() -> whether anything listens (skip the work if not) */
static int l_persisting(lua_State *L) {
  lua_pushboolean(L, lsr_engine_of(L)->obs.persist != NULL);
  return 1;
}

/* internal.new_stored_id(kind) -> a new id of kind (artifact, pin, note,
 * data) from the store, unique across the servers that share it; nil when
 * nothing is stored (luasoar run: the Lua side numbers them) */
static int l_new_stored_id(lua_State *L) {
  static const char *const names[] = {"artifact", "pin", "note", "data", NULL};
  static const lsr_id_kind kinds[] = {LSR_ID_ARTIFACT, LSR_ID_PIN, LSR_ID_NOTE, LSR_ID_DATA};
  lsr_engine *eng = lsr_engine_of(L);
  lsr_id_kind kind = kinds[luaL_checkoption(L, 1, NULL, names)];
  int64_t id = eng->obs.new_id ? eng->obs.new_id(kind, eng->obs.ud) : 0;
  if (id > 0) lua_pushinteger(L, id);
  else lua_pushnil(L);
  return 1;
}

/* internal.load_stored(kind, key) -> what the store holds (decoded JSON), or
 * nil: serve keeps in memory only what live runs use */
static int l_load_stored(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  const char *kind = luaL_checkstring(L, 1), *key = luaL_checkstring(L, 2);
  char *json = eng->obs.load ? eng->obs.load(kind, key, eng->obs.ud) : NULL;
  if (!json) return 0;
  char err[128];
  int rc = lsr_json_decode(L, json, strlen(json), err, sizeof err);
  free(json);
  if (rc < 0) return luaL_error(L, "the store's %s %s does not load: %s", kind, key, err);
  return 1;
}

/* internal.shared_quota() -> the bytes of shared data a playbook may keep (0: no quota) */
static int l_shared_quota(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lsr_engine_of(L)->shared_bytes);
  return 1;
}

/* internal.where() -> "file:line: " of the playbook's call */
static int l_where(lua_State *L) {
  lsr_where(L);
  return 1;
}

/* internal.now() -> the engine's clock */
static int l_now(lua_State *L) {
  lua_pushnumber(L, lsr_clock(lsr_engine_of(L)));
  return 1;
}

/* internal.is_array(t), internal.array(t) marks t as a JSON array */
static int l_is_array(lua_State *L) {
  lua_pushboolean(L, lsr_json_is_array(L, 1));
  return 1;
}

static int l_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  lua_settop(L, 1);
  lsr_json_push_array_mt(L);
  lua_setmetatable(L, 1);
  return 1;
}

/* internal.freeze(t, name) -> a read-only view of t: what the prelude shares
 * with every run (class tables) */
static int l_freeze(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *name = luaL_checkstring(L, 2);
  lua_settop(L, 1);
  lsr_freeze(L, name);
  return 1;
}

void lsr_phantom_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"debug", l_debug},
    {"error", l_error},
    {"get_summary", l_get_summary},
    {NULL, NULL},
  };
  luaL_newlib(L, fns);
  lsr_act_register(L);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  /* the prelude adds its functions to the table; it gets the internal
   * functions no playbook sees, and returns the hooks the C side calls */
  static const luaL_Reg internal[] = {
    {"args", lsr_args_lua}, {"state", l_state}, {"store", l_store}, {"log", l_log},
    {"where", l_where}, {"now", l_now}, {"is_array", l_is_array}, {"array", l_array},
    {"persist", l_persist}, {"persisting", l_persisting}, {"new_stored_id", l_new_stored_id},
    {"load_stored", l_load_stored}, {"shared_quota", l_shared_quota},
    {"freeze", l_freeze}, {NULL, NULL},
  };
  int phantom = lua_gettop(L);
  luaL_newlib(L, internal);
  lsr_schedule_register(L);
  lsr_act_register_internal(L);
  lsr_flow_register(L);
  lsr_json_open(L);
  lua_setfield(L, -2, "json");
  lua_newtable(L);
  lua_setfield(L, -2, "hooks");
  int in = lua_gettop(L);
  for (const lsr_prelude_file *f = lsr_prelude; f->name; f++) {
    lua_pushfstring(L, "=[luasoar %s]", f->name);
    if (luaL_loadbufferx(L, f->text, f->len, lua_tostring(L, -1), "t") != LUA_OK) lua_error(L);
    lua_remove(L, -2);
    lua_pushvalue(L, phantom);
    lua_pushvalue(L, in);
    lua_call(L, 2, 0);
  }
  lsr_engine *eng = lsr_engine_of(L);
  lua_getfield(L, in, "hooks");
  eng->hooks_ref = lsr_ref(L);
  lua_pop(L, 1);
  lua_newtable(L);
  eng->store_ref = lsr_ref(L);
}
