/* limits.c: the limits a run cannot escape.
 *
 * Memory: the engine's Lua state uses this allocator.  While a run's code
 * executes (eng->current), what it allocates net of what is freed counts
 * against its cap; a request over the cap fails (Lua raises "not enough
 * memory" in that run only) and marks the run killed, so a pcall that catches
 * the error does not save it.  The cap is per run, counted while the run
 * executes: a run cannot allocate past it, and memory the collector reclaims
 * on its behalf counts in its favour.  Shrinking never fails, and nothing is
 * refused while no run executes, so engine code never meets a failed
 * allocation it did not ask for.
 *
 * Instructions: a count hook on every run thread (inherited by the
 * coroutines it creates) adds up instructions per block and per run.  Past a
 * budget it marks the run killed and raises; once killed it raises at every
 * instruction, so no pcall or xpcall can hold the run: each catch only moves
 * the error one frame out.  The run fails with the limit's name and where it
 * was. */
#include "runtime.h"
#include <stdlib.h>
#include <string.h>

#define LSR_HOOK_STEP 1000

void *lsr_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lsr_engine *eng = ud;
  size_t old = ptr ? osize : 0;
  lsr_run *run = eng->current;
  if (nsize == 0) {
    free(ptr);
    eng->mem_total -= old;
    if (run) run->mem_net -= (long long)old;
    return NULL;
  }
  if (nsize > old && run) {
    size_t grow = nsize - old;
    if (run->limits.memory && run->mem_net + (long long)grow > (long long)run->limits.memory) {
      if (!run->killed) run->killed = "memory limit exceeded";
      return NULL;
    }
    if (eng->mem_limit && eng->mem_total + grow > eng->mem_limit) {
      if (!run->killed) run->killed = "memory limit exceeded (the engine's)";
      return NULL;
    }
  }
  void *p = realloc(ptr, nsize);
  if (!p) return nsize <= old ? ptr : NULL; /* a shrink that fails keeps the block */
  eng->mem_total += nsize - old;
  if (run) run->mem_net += (long long)nsize - (long long)old;
  return p;
}

static void hook(lua_State *L, lua_Debug *ar) {
  lsr_engine *eng = lsr_engine_of(L);
  lsr_run *run = eng->current;
  if (ar->event == LUA_HOOKLINE) {
    if (eng->test && eng->test->on_line && lua_getinfo(L, "S", ar) && ar->source[0] == '@')
      eng->test->on_line(eng->test->ud, ar->source + 1, ar->currentline, 1);
    return;
  }
  if (!run) return;
  if (!run->killed) {
    if (!lsr_limits_charge(eng, LSR_HOOK_STEP)) return;
    /* from now on at every instruction: nothing catches it for long */
    lua_sethook(L, hook, lua_gethookmask(L) | LUA_MASKCOUNT, 1);
  }
  luaL_error(L, "%s", run->killed);
}

/* n instructions' worth of work done for the current run (by the count hook,
 * or by a C function whose time does not follow its input: bindings/strlib.c).
 * Marks the run killed past its budget; nonzero if it is killed.  Nothing
 * when no run is current. */
int lsr_limits_charge(lsr_engine *eng, long long n) {
  lsr_run *run = eng ? eng->current : NULL;
  if (!run) return 0;
  if (run->killed) return 1;
  run->instr_block += n;
  run->instr_total += n;
  if (run->limits.instructions_per_callback && run->instr_block > run->limits.instructions_per_callback)
    run->killed = "instruction limit exceeded (per callback)";
  else if (run->limits.instructions_per_run && run->instr_total > run->limits.instructions_per_run)
    run->killed = "instruction limit exceeded (per run)";
  return run->killed != NULL;
}

/* The engine behind L if L is an engine's state (its allocator is lsr_alloc),
 * else NULL: other states (Lua apps, harnesses) keep other data in their
 * extra space. */
lsr_engine *lsr_engine_if(lua_State *L) {
  void *ud;
  return lua_getallocf(L, &ud) == lsr_alloc ? ud : NULL;
}

/* Raise the current run's limit error from C, as the hook does: the hook then
 * fires at every instruction, so a pcall that catches it does not save the run. */
int lsr_limits_raise(lua_State *L) {
  lsr_engine *eng = lsr_engine_if(L);
  lsr_run *run = eng ? eng->current : NULL;
  const char *why = run && run->killed ? run->killed : "instruction limit exceeded";
  if (run) lua_sethook(L, hook, lua_gethookmask(L) | LUA_MASKCOUNT, 1);
  return luaL_error(L, "%s", why);
}

void lsr_limits_arm(lsr_engine *eng, lua_State *T) {
  int mask = LUA_MASKCOUNT;
  if (eng->test && eng->test->on_line) mask |= LUA_MASKLINE;
  lua_sethook(T, hook, mask, LSR_HOOK_STEP);
}

/* A block is about to run: its per-callback count starts again. */
void lsr_limits_block(lsr_run *run, lua_State *T) {
  run->instr_block = 0;
  if (!run->killed) lsr_limits_arm(run->eng, T);
}

/* The run's own limits: the engine's defaults, then playbook_info.limits
 * from the playbook's top level.  [-0, +0, e] on T after the top level. */
void lsr_limits_from_playbook(lsr_run *run, lua_State *T) {
  lsr_getref(T, run->env_ref);
  lua_pushliteral(T, "playbook_info"); /* rawget: the environment is strict */
  if (lua_rawget(T, -2) == LUA_TTABLE && lua_getfield(T, -1, "limits") == LUA_TTABLE) {
    static const char *const names[] = {"instructions_per_callback", "instructions_per_run", "memory_mb",
                                        "deadline_seconds", NULL};
    /* a playbook may lower its limits; the engine's are the ceiling */
    const lsr_limits *max = &run->eng->limits;
    for (int i = 0; names[i]; i++) {
      if (lua_getfield(T, -1, names[i]) == LUA_TNIL) { lua_pop(T, 1); continue; }
      double v = lua_tonumber(T, -1);
      double least = i == 3 ? 0.001 : 1; /* a deadline may be short; the others at least 1 */
      if (!lua_isnumber(T, -1) || v < least || v != v)
        luaL_error(T, "playbook_info.limits.%s: expected a number >= %s", names[i], i == 3 ? "0.001" : "1");
      lua_pop(T, 1);
      switch (i) {
      case 0: if (v < (double)max->instructions_per_callback) run->limits.instructions_per_callback = (long long)v; break;
      case 1: if (v < (double)max->instructions_per_run) run->limits.instructions_per_run = (long long)v; break;
      case 2: if (v * 1048576.0 < (double)max->memory) run->limits.memory = (size_t)(v * 1048576.0); break;
      case 3: if (v < max->deadline) run->limits.deadline = v; break;
      }
    }
  }
  lua_settop(T, 0);
}

/* coroutine.create / coroutine.wrap, counted per run.  upvalue: the real one */
static int counted(lua_State *L) {
  lsr_run *run = lsr_engine_of(L)->current;
  if (run && run->limits.coroutines && ++run->coroutines > run->limits.coroutines)
    return luaL_error(L, "coroutine limit exceeded (%d per run)", run->limits.coroutines);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* A thread that died of a limit's error (raised from the hook) has its hooks
 * off until reset, and resetting runs its pending __close handlers: they
 * would run unbounded.  Once a run is killed, its threads are never reset
 * (the collector frees them; their handlers are not called). */
static int killed_error(lua_State *L) {
  lsr_run *run = lsr_engine_of(L)->current;
  if (run && run->killed) return luaL_error(L, "%s", run->killed);
  return 0;
}

/* coroutine.close(co), unless the run is killed */
static int co_close(lua_State *L) {
  killed_error(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* The function coroutine.wrap returns (as Lua's own): resume, and on an
 * error reset the thread and raise it with where it was, unless the run is
 * killed.  upvalue: the thread */
static int co_wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int n = lua_gettop(L), nres;
  if (!lua_checkstack(co, n)) return luaL_error(L, "too many arguments to resume");
  lua_xmove(L, co, n);
  int st = lua_resume(co, L, n, &nres);
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) return luaL_error(L, "too many results to resume");
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1); /* the error */
  killed_error(L);
  if (lua_status(co) != LUA_OK && lua_status(co) != LUA_YIELD) {
    lua_resetthread(co); /* its __close handlers run here, hooks on */
    lua_xmove(co, L, 1);
    lua_settop(co, 0);
  }
  if (lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

/* coroutine.wrap(f), counted */
static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_pushvalue(L, lua_upvalueindex(1)); /* the counted create */
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  lua_pushcclosure(L, co_wrapped, 1);
  return 1;
}

/* [-0, +1, m] a copy of the coroutine library with counted create and wrap,
 * and close and wrap that never reset a killed run's threads */
void lsr_limits_coroutine_lib(lua_State *L) {
  lua_newtable(L);
  lua_getglobal(L, "coroutine");
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    const char *k = lua_tostring(L, -2);
    if (strcmp(k, "create") == 0) lua_pushcclosure(L, counted, 1);
    else if (strcmp(k, "close") == 0) lua_pushcclosure(L, co_close, 1);
    if (strcmp(k, "wrap") != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, -5);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "create");
  lua_pushcclosure(L, co_wrap, 1);
  lua_setfield(L, -2, "wrap");
}

void lsr_limits_defaults(lsr_engine *eng) {
  eng->limits.instructions_per_callback = 100000000LL; /* about a second of CPU */
  eng->limits.instructions_per_run = 1000000000LL;
  eng->limits.memory = 64u << 20;
  eng->limits.deadline = 86400;
  eng->limits.log_entries = 10000;
  eng->limits.log_bytes = 1u << 20;
  eng->limits.coroutines = 10000;
  eng->mem_limit = (size_t)1 << 30;
  eng->shared_bytes = 16u << 20; /* per playbook */
}
