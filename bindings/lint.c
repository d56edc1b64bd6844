/* lint.c: `luasoar check` findings for one compiled playbook, from the
 * prelude's linter (bindings/lua/50_lint.lua), printed as file:line: message. */
#include "runtime.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const char lsr_lls_lua[];
extern const size_t lsr_lls_lua_len;

/* lua: (text, file, out) -> how many errors.  out NULL: print every finding
 * as file:line: message; else put the errors (not the warnings) in out,
 * separated by "; ". */
typedef struct {
  char *buf;
  size_t len, used;
} lint_out;

static int lint(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  const char *file = lua_tostring(L, 2);
  lint_out *out = lua_touserdata(L, 3);
  lsr_getref(L, eng->hooks_ref);
  lua_getfield(L, -1, "lint");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  /* serving (out set): the apps and assets reload on their own, so the
   * playbook is not held to the ones of the moment */
  if (eng->cfg->napps > 0 && !out) { /* the actions the apps folder provides: true, or the
                                        data paths a SOAR manifest declares (of every app that has it) */
    lua_newtable(L);
    for (int i = 0; i < eng->cfg->napps; i++)
      for (int j = 0; j < eng->cfg->apps[i].nactions; j++) {
        const lsr_action_def *a = &eng->cfg->apps[i].actions[j];
        int t = lua_getfield(L, -1, a->name);
        lua_pop(L, 1);
        if (!a->outputs || !a->outputs[0] || t == LUA_TBOOLEAN) { /* one app without: no check */
          lua_pushboolean(L, 1);
          lua_setfield(L, -2, a->name);
          continue;
        }
        if (t != LUA_TTABLE) {
          lua_newtable(L);
          lua_setfield(L, -2, a->name);
        }
        lua_getfield(L, -1, a->name);
        for (int k = 0; a->outputs[k]; k++) {
          lua_pushstring(L, a->outputs[k]);
          lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
        }
        lua_pop(L, 1);
      }
  } else {
    lua_pushnil(L);
  }
  if (eng->cfg->nassets > 0 && !out) { /* the assets the assets file names */
    lua_newtable(L);
    for (int i = 0; i < eng->cfg->nassets; i++) { /* name -> {app, actions = {name = true}} */
      const lsr_app *app = eng->cfg->assets[i].app;
      lua_createtable(L, 0, 2);
      if (app) {
        lua_pushstring(L, app->name);
        lua_setfield(L, -2, "app");
        lua_createtable(L, 0, app->nactions);
        for (int j = 0; j < app->nactions; j++) {
          lua_pushboolean(L, 1);
          lua_setfield(L, -2, app->actions[j].name);
        }
        lua_setfield(L, -2, "actions");
      }
      lua_setfield(L, -2, eng->cfg->assets[i].name);
    }
  } else {
    lua_pushnil(L);
  }
  lua_pushlstring(L, lsr_lls_lua, lsr_lls_lua_len);
  lua_pushboolean(L, out != NULL);
  lua_call(L, 6, 1);
  int n = (int)lua_rawlen(L, -1), errors = 0;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "line");
    lua_getfield(L, -2, "message");
    lua_getfield(L, -3, "warning");
    int warning = lua_toboolean(L, -1);
    if (!warning) errors++;
    if (!out) {
      printf("%s:%d: %s\n", file, (int)lua_tointeger(L, -3), lua_tostring(L, -2));
    } else if (!warning && out->used + 1 < out->len) {
      int w = snprintf(out->buf + out->used, out->len - out->used, "%s%s:%d: %s", out->used ? "; " : "", file,
                       (int)lua_tointeger(L, -3), lua_tostring(L, -2));
      if (w > 0) out->used += (size_t)w < out->len - out->used ? (size_t)w : out->len - out->used - 1;
    }
    lua_pop(L, 4);
  }
  lua_pushinteger(L, errors);
  return 1;
}

static int run_lint(lsr_engine *eng, const char *file, const char *text, size_t len, lint_out *out) {
  lua_State *L = eng->L;
  lua_pushcfunction(L, lint);
  lua_pushlstring(L, text, len);
  lua_pushstring(L, file);
  lua_pushlightuserdata(L, out);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
    if (out) snprintf(out->buf, out->len, "%s: lint failed: %s", file, lua_tostring(L, -1));
    else printf("%s: lint failed: %s\n", file, lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}

int lsr_lint(lsr_engine *eng, const char *file, const char *text, size_t len) {
  return run_lint(eng, file, text, len, NULL);
}

int lsr_lint_errors(lsr_engine *eng, const char *file, char *err, size_t errlen) {
  char *text;
  size_t len;
  if (errlen) err[0] = 0;
  if (lsr_read_file(file, &text, &len, 4u << 20, err, errlen) != 0) return 0; /* the load reads it too */
  lint_out out = {err, errlen, 0};
  int n = run_lint(eng, file, text, len, &out);
  free(text);
  return n;
}
