/* lint.c: `luasoar check` findings for one compiled playbook, from the
 * prelude's linter (bindings/lua/50_lint.lua), printed as file:line: message. */
#include "runtime.h"
#include <stdio.h>
#include <string.h>

static int lint(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  const char *file = lua_tostring(L, 2);
  lsr_getref(L, eng->hooks_ref);
  lua_getfield(L, -1, "lint");
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  if (eng->cfg->napps > 0) { /* the actions the apps folder provides */
    lua_newtable(L);
    for (int i = 0; i < eng->cfg->napps; i++)
      for (int j = 0; j < eng->cfg->apps[i].nactions; j++) {
        lua_pushboolean(L, 1);
        lua_setfield(L, -2, eng->cfg->apps[i].actions[j].name);
      }
  } else {
    lua_pushnil(L);
  }
  lua_call(L, 3, 1);
  int n = (int)lua_rawlen(L, -1);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    lua_getfield(L, -1, "line");
    lua_getfield(L, -2, "message");
    printf("%s:%d: %s\n", file, (int)lua_tointeger(L, -2), lua_tostring(L, -1));
    lua_pop(L, 3);
  }
  lua_pushinteger(L, n);
  return 1;
}

int lsr_lint(lsr_engine *eng, const char *file, const char *text, size_t len) {
  lua_State *L = eng->L;
  lua_pushcfunction(L, lint);
  lua_pushlstring(L, text, len);
  lua_pushstring(L, file);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    printf("%s: lint failed: %s\n", file, lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  int n = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  return n;
}
