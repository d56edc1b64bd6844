/* runner_lua.c: apps of runner "lua".  Each app has a Lua state of its own,
 * never a playbook's; its main file returns a table of action functions,
 * each called as fn(param, asset) once per parameter set.  Results cross
 * to the playbook state as JSON, through the same checks as exec output. */
#include "json.h"
#include "runtime.h"
#include "watchdog.h"
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACTIONS_KEY "luasoar.app.actions"
#define APP_MEMORY (256u << 20)           /* per app state */
#define APP_INSTRUCTIONS 100000000LL     /* per app run */
#define APP_HOOK_STEP 1000

/* An app is code too: its state has a memory cap, and an app run an
 * instruction budget, so a looping app fails its app run, not the engine. */
static void *app_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lsr_app *app = ud;
  size_t old = ptr ? osize : 0;
  if (nsize == 0) {
    free(ptr);
    app->mem -= old;
    return NULL;
  }
  if (nsize > old && app->mem + (nsize - old) > APP_MEMORY) return NULL;
  void *p = realloc(ptr, nsize);
  if (!p) return nsize <= old ? ptr : NULL;
  app->mem += nsize - old;
  return p;
}

static void app_hook(lua_State *L, lua_Debug *ar) {
  lsr_app *app = *(lsr_app **)lua_getextraspace(L);
  app->instr += APP_HOOK_STEP;
  if (app->instr > APP_INSTRUCTIONS) {
    lua_sethook(L, app_hook, LUA_MASKCOUNT, 1); /* no pcall holds it for long */
    luaL_error(L, "instruction limit exceeded (%d instructions per app run)", (int)APP_INSTRUCTIONS);
  }
}

/* stack in: app (light userdata).  Loads the app's main file once. */
static int load_app(lua_State *AL) {
  lsr_app *app = lua_touserdata(AL, 1);
  if (lua_getfield(AL, LUA_REGISTRYINDEX, ACTIONS_KEY) == LUA_TTABLE) return 0;
  size_t n = strlen(app->dir) + strlen(app->main) + 3;
  char *path = lsr_xalloc(n);
  snprintf(path, n, "%s/%s", app->dir, app->main);
  lua_pushstring(AL, path);
  free(path);
  /* chunk name "@path", text only */
  if (luaL_loadfilex(AL, lua_tostring(AL, -1), "t") != LUA_OK) return lua_error(AL);
  lua_call(AL, 0, 1);
  if (!lua_istable(AL, -1))
    return luaL_error(AL, "%s must return a table of action functions, returned %s",
                      lua_tostring(AL, -2), luaL_typename(AL, -1));
  lua_setfield(AL, LUA_REGISTRYINDEX, ACTIONS_KEY);
  return 0;
}

/* What is wrong with the result table at idx an action function returned
 * (said of the app, not of "output": a Lua app prints nothing), or NULL. */
static const char *bad_result(lua_State *AL, int idx, char *buf, size_t n) {
  int t = lua_getfield(AL, idx, "status");
  const char *st = t == LUA_TSTRING ? lua_tostring(AL, -1) : NULL;
  if (!st)
    snprintf(buf, n, "the app returned %s status, expected \"success\" or \"failed\"",
             t == LUA_TNIL ? "no" : luaL_typename(AL, -1));
  else if (strcmp(st, "success") != 0 && strcmp(st, "failed") != 0)
    snprintf(buf, n, "the app returned status \"%.60s\", expected \"success\" or \"failed\"", st);
  lua_pop(AL, 1);
  if (!st || (strcmp(st, "success") != 0 && strcmp(st, "failed") != 0)) return buf;
  static const char *const fields[] = {"message", "data", "summary"};
  static const int types[] = {LUA_TSTRING, LUA_TTABLE, LUA_TTABLE};
  for (int i = 0; i < 3; i++) {
    t = lua_getfield(AL, idx, fields[i]);
    lua_pop(AL, 1);
    if (t != LUA_TNIL && t != types[i]) {
      snprintf(buf, n, "the app returned a %s '%s', expected %s", lua_typename(AL, t), fields[i],
               i == 0 ? "a string" : i == 1 ? "a list" : "a table");
      return buf;
    }
  }
  return NULL;
}

/* stack in: apr (light userdata).  Out: the JSON output. */
static int run_app(lua_State *AL) {
  lsr_app_run *apr = lua_touserdata(AL, 1);
  lsr_action_run *ar = apr->ar;
  const lsr_asset *asset = apr->asset;
  char err[256];
  lua_getfield(AL, LUA_REGISTRYINDEX, ACTIONS_KEY);
  if (lua_getfield(AL, -1, ar->action) != LUA_TFUNCTION)
    return luaL_error(AL, "app '%s' has no function for action '%s'", asset->app->name, ar->action);
  int fn = lua_gettop(AL);
  lua_createtable(AL, 0, 3); /* the asset */
  lua_pushstring(AL, asset->name);
  lua_setfield(AL, -2, "name");
  lua_pushinteger(AL, asset->id);
  lua_setfield(AL, -2, "id");
  if (lsr_json_decode(AL, asset->config_json, strlen(asset->config_json), err, sizeof err) < 0)
    return luaL_error(AL, "asset config: %s", err);
  lua_setfield(AL, -2, "config");
  int asset_idx = lua_gettop(AL);
  lua_createtable(AL, 0, 1);
  int wrapper = lua_gettop(AL);
  lsr_json_new_array(AL, apr->nsent);
  int list = lua_gettop(AL);
  for (int i = 0; i < apr->nsent; i++) {
    const char *pj = ar->params[apr->sent[i]];
    lua_pushvalue(AL, fn);
    if (lsr_json_decode(AL, pj, strlen(pj), err, sizeof err) < 0)
      return luaL_error(AL, "parameter: %s", err);
    lua_pushvalue(AL, asset_idx);
    int rc = lua_pcall(AL, 2, 1, 0);
    char why[256];
    const char *bad = rc == LUA_OK && lua_istable(AL, -1) ? bad_result(AL, lua_gettop(AL), why, sizeof why) : NULL;
    if (rc != LUA_OK || !lua_istable(AL, -1) || bad) {
      /* an error, a non-table or a bad result: that parameter set failed, with the reason */
      if (bad)
        lua_pushstring(AL, bad);
      else if (rc != LUA_OK && lua_type(AL, -1) == LUA_TSTRING)
        lua_pushvalue(AL, -1);
      else if (rc != LUA_OK)
        lua_pushfstring(AL, "the app raised a %s error", luaL_typename(AL, -1));
      else
        lua_pushfstring(AL, "the app returned %s, expected a result table", luaL_typename(AL, -1));
      lua_createtable(AL, 0, 2);
      lua_pushliteral(AL, "failed");
      lua_setfield(AL, -2, "status");
      lua_insert(AL, -2);
      lua_setfield(AL, -2, "message");
      lua_replace(AL, -2); /* drop the error or bad value */
    }
    lua_rawseti(AL, list, i + 1);
  }
  lua_setfield(AL, wrapper, "action_results");
  lsr_json_encode(AL, wrapper, 0);
  return 1;
}

int lsr_lua_app_run(lsr_engine *eng, lsr_app_run *apr, char **out, size_t *len, char **failure) {
  lsr_app *app = apr->asset->app;
  if (!app->AL) {
    app->AL = lua_newstate(app_alloc, app);
    if (!app->AL) {
      *failure = lsr_strdup("cannot create the app's Lua state (out of memory)");
      return -1;
    }
    *(lsr_app **)lua_getextraspace(app->AL) = app;
    luaL_openlibs(app->AL);
    lsr_json_init(app->AL);
    lua_State *AL = app->AL;
    lua_getglobal(AL, "package");
    lua_getfield(AL, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lsr_json_open(AL);
    lua_setfield(AL, -2, "json");
    lua_pop(AL, 2);
  }
  lua_State *AL = app->AL;
  int top = lua_gettop(AL);
  app->instr = 0;
  lua_sethook(AL, app_hook, LUA_MASKCOUNT, APP_HOOK_STEP);
  lua_pushcfunction(AL, load_app);
  lua_pushlightuserdata(AL, app);
  int rc = lua_pcall(AL, 1, 0, 0);
  if (rc == LUA_OK) {
    lua_pushcfunction(AL, run_app);
    lua_pushlightuserdata(AL, apr);
    rc = lua_pcall(AL, 1, 1, 0);
  }
  if (rc != LUA_OK) {
    const char *e = lua_tostring(AL, -1);
    *failure = lsr_strdup(e ? e : "the app raised a non-string error");
    lua_settop(AL, top);
    return -1;
  }
  size_t n;
  const char *s = lua_tolstring(AL, -1, &n);
  *out = lsr_strndup(s, n);
  *len = n;
  lua_settop(AL, top);
  return 0;
}

void lsr_lua_app_close(lsr_app *app) {
  if (app->AL) lua_close(app->AL);
  app->AL = NULL;
}

void lsr_lua_app_start(lsr_engine *eng, lsr_app_run *apr) {
  char *out = NULL, *failure = NULL;
  size_t len = 0;
  lsr_step_enter(apr->ar->run); /* an app run in-process is a step of its run, for the watchdog */
  lsr_lua_app_run(eng, apr, &out, &len, &failure);
  lsr_step_leave(eng->current);
  lsr_app_run_done(eng, apr, failure == NULL, out, len, failure);
  free(out);
  free(failure);
}
