/* fuzz_pattern.c: the pattern matcher of bindings/strpattern.c against stock
 * Lua's, differentially.  Two plain states: one with the standard library as
 * Lua ships it, one where lsr_strlib_install has replaced find, match,
 * gmatch, gsub (and rep, table.concat ...).  Each input is one call:
 *
 *   byte 0: the operation (find, find plain, match, gmatch, gsub with a
 *           string, a table or a function as replacement, gsub with a count;
 *           and the other replaced string functions: sub, upper, lower,
 *           reverse, rep)
 *   byte 1: the init argument (signed; 0: none) or gsub's count
 *   then pattern 0xFE subject 0xFE replacement (missing fields are "")
 *
 * Both sides must give the same values (types and bytes) or both raise the
 * same message; gmatch's iterator is run to its end on both.  The stock
 * matcher cannot be interrupted, so ours runs first with a step budget
 * (lsr_strlib_free_budget): an input that needs more steps is not run on the
 * stock side (ours counts the same steps, so stock's time is bounded too). */
#include "fuzz_common.h"
#include "runtime.h"
#include <lualib.h>

extern long long lsr_strlib_free_budget;

#define FUZZ_STEP_BUDGET 200000
#define FUZZ_MAX_ITER 5000

static lua_State *Lstock, *Lours;

static const char *const setup_code =
  "repl_table = {a = 'A', b = '', ['1'] = 1, x = false, y = true, [1] = 'one', [2] = 2.5, [' '] = '_'}\n"
  "repl_fn = function(...)\n"
  "  local a = tostring((...))\n"
  "  local k = #a % 4\n"
  "  if k == 0 then return nil elseif k == 1 then return false\n"
  "  elseif k == 2 then return '<' .. table.concat({...}, ',') .. '>'\n"
  "  else return #a == 7 and {} or a:upper() end\n"
  "end\n";

static lua_State *new_state(int ours) {
  lua_State *L = luaL_newstate();
  FUZZ_CHECK(L, "luaL_newstate");
  *(void **)lua_getextraspace(L) = NULL; /* no engine: lsr_engine_of(L) is NULL */
  luaL_openlibs(L);
  if (ours) lsr_strlib_install(L);
  if (luaL_dostring(L, setup_code) != LUA_OK) fuzz_fail(__FILE__, __LINE__, "setup: %s", lua_tostring(L, -1));
  return L;
}

typedef struct {
  char *p;
  size_t n, cap;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    FUZZ_CHECK(b->p, "out of memory");
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

/* the values from index from to the top, with their types */
static void describe(lua_State *L, int from, sbuf *b) {
  char tmp[64];
  for (int i = from; i <= lua_gettop(L); i++) {
    size_t n;
    const char *s;
    switch (lua_type(L, i)) {
    case LUA_TSTRING:
      s = lua_tolstring(L, i, &n);
      snprintf(tmp, sizeof tmp, " s%zu:", n);
      puts_(b, tmp);
      put(b, s, n);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, i)) snprintf(tmp, sizeof tmp, " i%lld", (long long)lua_tointeger(L, i));
      else snprintf(tmp, sizeof tmp, " f%.17g", (double)lua_tonumber(L, i));
      puts_(b, tmp);
      break;
    default:
      snprintf(tmp, sizeof tmp, " %s", luaL_typename(L, i));
      puts_(b, tmp);
    }
  }
}

typedef struct {
  int op;
  int init;
  const char *p, *s, *r;
  size_t lp, ls, lr;
} fcase;

/* Run the case on L; what it gave, in b.  Returns 0 if it ran out of the step budget. */
static int run_case(lua_State *L, const fcase *c, sbuf *b) {
  lua_settop(L, 0);
  lua_getglobal(L, "string");
  static const char *const fname[] = {"find", "find", "match", "gmatch", "gsub", "gsub", "gsub", "gsub",
                                      "sub", "upper", "lower", "reverse", "rep"};
  lua_getfield(L, 1, fname[c->op]);
  lua_pushlstring(L, c->s, c->ls);
  lua_pushlstring(L, c->p, c->lp);
  int nargs = 2;
  switch (c->op) {
  case 0: case 2: case 3:
    if (c->init) { lua_pushinteger(L, c->init); nargs++; }
    break;
  case 1:
    if (c->init) lua_pushinteger(L, c->init);
    else lua_pushnil(L);
    lua_pushboolean(L, 1);
    nargs += 2;
    break;
  case 4: lua_pushlstring(L, c->r, c->lr); nargs++; break;
  case 5: lua_getglobal(L, "repl_table"); nargs++; break;
  case 6: lua_getglobal(L, "repl_fn"); nargs++; break;
  case 7: lua_pushlstring(L, c->r, c->lr); lua_pushinteger(L, c->init); nargs += 2; break;
  case 8: /* sub(subject, init, j): j from the replacement's first byte, if any */
    lua_pushinteger(L, c->init);
    nargs++;
    if (c->lr) { lua_pushinteger(L, (int8_t)c->r[0]); nargs++; }
    break;
  case 9: case 10: case 11: lua_settop(L, 3); nargs = 1; break; /* the subject only */
  case 12: /* rep(subject, init, separator) */
    lua_settop(L, 3);
    lua_pushinteger(L, c->init);
    lua_pushlstring(L, c->r, c->lr);
    nargs = 3;
    break;
  }
  int st = lua_pcall(L, nargs, LUA_MULTRET, 0);
  if (st != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (msg && strstr(msg, "pattern step budget exceeded")) return 0;
    puts_(b, "error: ");
    puts_(b, msg ? msg : "(not a string)");
    return 1;
  }
  if (c->op != 3) {
    describe(L, 2, b);
    return 1;
  }
  /* gmatch: the iterator to its end */
  FUZZ_CHECK(lua_gettop(L) == 2 && lua_isfunction(L, 2), "gmatch returned no function");
  for (int k = 0; k < FUZZ_MAX_ITER; k++) {
    lua_settop(L, 2);
    lua_pushvalue(L, 2);
    if (lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
      const char *msg = lua_tostring(L, -1);
      if (msg && strstr(msg, "pattern step budget exceeded")) return 0;
      puts_(b, " | error: ");
      puts_(b, msg ? msg : "(not a string)");
      return 1;
    }
    if (lua_gettop(L) == 2) return 1; /* the end */
    puts_(b, " |");
    describe(L, 3, b);
  }
  return 1;
}

/* the next field: up to the next 0xFE, or the end */
static const char *field(const uint8_t **at, const uint8_t *end, size_t *n) {
  const uint8_t *start = *at;
  const uint8_t *sep = memchr(start, 0xFE, (size_t)(end - start));
  if (!sep) sep = end;
  *n = (size_t)(sep - start);
  *at = sep < end ? sep + 1 : end;
  return (const char *)start;
}

static void cleanup(void) {}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2) return 0;
  FUZZ_BEGIN(data, size, cleanup());
  if (!Lstock) {
    Lstock = new_state(0);
    Lours = new_state(1);
  }
  fcase c;
  c.op = data[0] % 13;
  c.init = (int)(int8_t)data[1];
  const uint8_t *at = data + 2, *end = data + size;
  /* copies: a pattern read past its end would be a bug ASan must see */
  size_t lp, ls, lr;
  const char *p = field(&at, end, &lp);
  const char *s = field(&at, end, &ls);
  const char *r = field(&at, end, &lr);
  char *pc = malloc(lp + 1), *sc = malloc(ls + 1), *rc = malloc(lr + 1);
  memcpy(pc, p, lp);
  memcpy(sc, s, ls);
  memcpy(rc, r, lr);
  c.p = pc; c.lp = lp;
  c.s = sc; c.ls = ls;
  c.r = rc; c.lr = lr;
  sbuf ours = {0}, stock = {0};
  puts_(&ours, "");
  puts_(&stock, "");
  lsr_strlib_free_budget = FUZZ_STEP_BUDGET;
  int ran = run_case(Lours, &c, &ours);
  lsr_strlib_free_budget = 0;
  if (ran) {
    run_case(Lstock, &c, &stock);
    if (ours.n != stock.n || memcmp(ours.p, stock.p, ours.n) != 0)
      fuzz_fail(__FILE__, __LINE__, "string.%s differs (op %d, init %d)\npattern: %.*s\nsubject: %.*s\nrepl: %.*s\nstock: %.*s\nours:  %.*s",
                c.op == 3 ? "gmatch" : c.op < 2 ? "find" : c.op == 2 ? "match" : c.op < 8 ? "gsub" : "sub...rep", c.op, c.init,
                (int)lp, pc, (int)(ls > 300 ? 300 : ls), sc, (int)lr, rc,
                (int)(stock.n > 1500 ? 1500 : stock.n), stock.p, (int)(ours.n > 1500 ? 1500 : ours.n), ours.p);
  }
  lua_settop(Lstock, 0);
  lua_settop(Lours, 0);
  /* the garbage of big gsub results: collect now and then */
  static int count;
  if (++count % 256 == 0) {
    lua_gc(Lstock, LUA_GCCOLLECT);
    lua_gc(Lours, LUA_GCCOLLECT);
  }
  free(pc);
  free(sc);
  free(rc);
  free(ours.p);
  free(stock.p);
  FUZZ_END();
  return 0;
}
