/* args.c: the one argument normaliser.  Python keyword calls become one Lua
 * table: f{a = 1, b = 2}; a function whose first Python parameter is a scalar
 * also takes it positionally: f("x", {b = 2}).  Unknown keys are errors, so a
 * misspelt argument fails at its line instead of being ignored. */
#include "runtime.h"
#include <stdarg.h>
#include <string.h>

int lsr_argerror(lua_State *L, const char *fname, const char *arg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  luaL_where(L, 1);
  lua_pushfstring(L, "%s: argument '%s': ", fname, arg);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 3);
  return lua_error(L);
}

void lsr_args(lua_State *L, const char *fname, const char *first, const char *const *allowed) {
  int n = lua_gettop(L);
  if (n == 1 && lua_type(L, 1) == LUA_TTABLE) {
    /* f{...}: the table is the keyword arguments */
  } else if (first && n >= 1 && n <= 2 && (n == 1 || lua_isnil(L, 2) || lua_istable(L, 2))) {
    /* f(first, {...}): copy, so the caller's table is not changed */
    lua_newtable(L);
    if (n == 2 && lua_istable(L, 2)) {
      lua_pushnil(L);
      while (lua_next(L, 2)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
      }
    }
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, first);
    lua_replace(L, 1);
  } else if (n == 0) {
    lua_newtable(L);
  } else {
    luaL_error(L, "%s: expected %s{name = value, ...}%s%s%s", fname, fname,
               first ? " or " : "", first ? fname : "", first ? "(value, {name = value, ...})" : "");
  }
  lua_settop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    const char *const *a = allowed;
    while (k && *a && strcmp(*a, k) != 0) a++;
    if (!k || !*a) {
      if (k) luaL_error(L, "%s: unknown argument '%s'", fname, k);
      luaL_error(L, "%s: argument names must be strings, got a %s key", fname, luaL_typename(L, -1));
    }
  }
}
