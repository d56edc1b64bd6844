/* args.c: the one argument normaliser, and errors at the playbook's line.
 *
 * Python keyword calls become one Lua table: f{a = 1, b = 2}.  Positional
 * arguments follow the Python signature's order, and a last table whose keys
 * are all argument names holds the rest: f("geolocate ip", {parameters = p})
 * or f(container, "high").  Unknown names are errors, so a misspelt argument
 * fails at its line instead of being ignored.  The same code serves the C
 * functions and (through internal.args) the Lua prelude. */
#include "json.h"
#include "runtime.h"
#include <stdarg.h>
#include <string.h>

/* [-0, +1, m] "file:line: " of the innermost playbook frame (a chunk named
 * after a file), so errors raised in the engine's own Lua or C say where the
 * playbook called. */
void lsr_where(lua_State *L) {
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.source[0] == '@' && ar.currentline > 0) {
      lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
      return;
    }
  }
  lua_pushliteral(L, "");
}

int lsr_error(lua_State *L, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lsr_where(L);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 2);
  return lua_error(L);
}

int lsr_argerror(lua_State *L, const char *fname, const char *arg, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lsr_where(L);
  lua_pushfstring(L, "%s: argument '%s': ", fname, arg);
  lua_pushvfstring(L, fmt, ap);
  va_end(ap);
  lua_concat(L, 3);
  return lua_error(L);
}

static int allowed_name(const char *k, const char *const *allowed) {
  for (; *allowed; allowed++)
    if (strcmp(*allowed, k) == 0) return 1;
  return 0;
}

/* Is the table at idx keyword arguments?  1: only names of `allowed` as
 * keys.  0: a value (a list, a parameter table, a container).  A table with
 * some argument names and some unknown string keys is a misspelt keyword
 * table: an error naming the unknown key, unless it has an "id" (a
 * container or an artifact passed as a value). */
static int is_kwargs(lua_State *L, int idx, const char *fname, const char *const *allowed) {
  if (!lua_istable(L, idx)) return 0;
  if (lua_getmetatable(L, idx)) { /* arrays, objects: values, not keyword tables */
    lua_pop(L, 1);
    return 0;
  }
  int known = 0, other = 0;
  const char *unknown = NULL;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TSTRING && allowed_name(lua_tostring(L, -1), allowed)) known++;
    else if (other++ == 0 && lua_type(L, -1) == LUA_TSTRING) unknown = lua_tostring(L, -1);
  }
  if (!other) return 1;
  if (known && unknown && !allowed_name("id", allowed)) {
    lua_getfield(L, idx, "id");
    int has_id = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!has_id) lsr_error(L, "%s: unknown argument '%s'", fname, unknown);
  }
  return 0;
}

void lsr_args(lua_State *L, const char *fname, const char *const *positional,
              const char *const *allowed) {
  int n = lua_gettop(L);
  int npos = 0;
  while (positional && positional[npos]) npos++;
  if (n == 1 && lua_istable(L, 1) && is_kwargs(L, 1, fname, allowed)) return;
  int last_kw = n >= 1 && is_kwargs(L, n, fname, allowed);
  int nplain = n - last_kw;
  if (nplain > npos) lsr_error(L, "%s: too many arguments (%d given, at most %d before the keyword table)",
                               fname, n, npos);
  lua_createtable(L, 0, n + 4); /* the normalised kwargs */
  int kw = lua_gettop(L);
  if (last_kw) {
    lua_pushnil(L);
    while (lua_next(L, n)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, kw);
    }
  } else if (n >= 1 && lua_istable(L, n) && nplain == 0) {
    /* a single table that is not all argument names: say which is not */
    lua_pushnil(L);
    while (lua_next(L, n)) {
      lua_pop(L, 1);
      if (lua_type(L, -1) != LUA_TSTRING)
        lsr_error(L, "%s: argument names must be strings, got a %s key", fname, luaL_typename(L, -1));
      if (!allowed_name(lua_tostring(L, -1), allowed))
        lsr_error(L, "%s: unknown argument '%s'", fname, lua_tostring(L, -1));
    }
  }
  for (int i = 1; i <= nplain; i++) {
    if (lua_getfield(L, kw, positional[i - 1]) != LUA_TNIL)
      lsr_error(L, "%s: argument '%s' given twice", fname, positional[i - 1]);
    lua_pop(L, 1);
    lua_pushvalue(L, i);
    lua_setfield(L, kw, positional[i - 1]);
  }
  if (kw != 1) lua_replace(L, 1);
  lua_settop(L, 1);
}

/* internal.args(fname, positional, allowed, ...) -> kwargs: the normaliser
 * for the Lua prelude; positional and allowed are lists of names held by the
 * prelude for the engine's life (so their strings outlive this call). */
#define LSR_MAX_ARG_NAMES 40
static void names(lua_State *L, int idx, const char **v) {
  int n = (int)lua_rawlen(L, idx);
  if (n > LSR_MAX_ARG_NAMES) luaL_error(L, "internal.args: too many names");
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, idx, i + 1);
    v[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  v[n] = NULL;
}

int lsr_args_lua(lua_State *L) {
  const char *pos[LSR_MAX_ARG_NAMES + 1], *allowed[LSR_MAX_ARG_NAMES + 1];
  const char *fname = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  luaL_checktype(L, 3, LUA_TTABLE);
  names(L, 2, pos);
  names(L, 3, allowed);
  lua_rotate(L, 1, -3); /* the three specs go on top, then away */
  lua_pop(L, 3);
  lsr_args(L, fname, pos, allowed);
  return 1;
}
