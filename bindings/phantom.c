/* phantom.c: the `phantom` module table: logging, the run summary, and the
 * registration of every API surface (act.c, ...).  Pure-Lua helpers come
 * from prelude.lua. */
#include "json.h"
#include "runtime.h"
#include <string.h>

extern const char lsr_prelude_lua[];
extern const size_t lsr_prelude_lua_len;

/* A debug of a string is that string; of anything else, its JSON. */
static void log_value(lua_State *L, lsr_log_level level, const char *fname) {
  lsr_run *run = lsr_run_check(L, fname);
  size_t len;
  const char *s;
  if (lua_type(L, 1) == LUA_TSTRING) {
    s = lua_tolstring(L, 1, &len);
  } else {
    lsr_json_encode(L, 1, 1);
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
  /* the prelude adds its functions to the table */
  if (luaL_loadbufferx(L, lsr_prelude_lua, lsr_prelude_lua_len, "=[luasoar prelude]", "t") != LUA_OK)
    lua_error(L);
  lua_pushvalue(L, -2);
  lsr_json_push_array_mt(L);
  lua_setfield(L, -2, "__array_mt");
  lua_call(L, 1, 0);
}
