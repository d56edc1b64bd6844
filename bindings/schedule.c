/* schedule.c: steps of a run that happen later, for the asynchronous parts
 * of the API written in Lua (custom functions, prompts, child playbooks,
 * delayed work).  A scheduled step keeps its run open (it counts as pending)
 * until it has run on the run's thread, or is cancelled; a hold keeps the run
 * open until C releases it (a child playbook's end).
 *
 *   internal.schedule(delay or nil, fn, ...) -> id   run fn(...) later
 *   internal.cancel(id) -> bool                       drop it if not yet run
 *   internal.hold() -> id                             keep the run open
 */
#include "json.h"
#include "runtime.h"
#include <stdlib.h>
#include <string.h>

typedef struct lsr_sched {
  lsr_task task;
  lsr_engine *eng;
  int64_t run_id;
  int id;
  int call_ref;         /* {fn, args...}, or LUA_NOREF for a hold */
  int queued;
  lsr_timer *timer;
  struct lsr_sched *next;
} lsr_sched;

static lsr_run *find_run(lsr_engine *eng, int64_t id) {
  for (lsr_run *r = eng->runs; r; r = r->next)
    if (r->id == id) return r;
  return NULL;
}

static void unlink_sched(lsr_run *run, lsr_sched *s) {
  for (lsr_sched **p = &run->scheds; *p; p = &(*p)->next)
    if (*p == s) { *p = s->next; return; }
}

static void sched_free(lsr_engine *eng, lsr_sched *s) {
  lsr_unref(eng->L, &s->call_ref);
  if (s->timer) lsr_timer_cancel(eng, s->timer);
  free(s);
}

static void due(void *ud) {
  lsr_sched *s = ud;
  s->timer = NULL;
  s->queued = 1;
  lsr_engine_push(s->eng, &s->task);
}

static lsr_sched *sched_new(lua_State *L, lsr_run *run) {
  lsr_engine *eng = run->eng;
  lsr_sched *s = lsr_xalloc(sizeof *s);
  s->task.kind = LSR_TASK_SCHEDULED;
  s->eng = eng;
  s->run_id = run->id;
  s->id = ++eng->next_sched_id;
  s->call_ref = LUA_NOREF;
  s->next = run->scheds;
  run->scheds = s;
  run->pending++;
  return s;
}

static int l_schedule(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "internal.schedule");
  double delay = luaL_optnumber(L, 1, -1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  int n = lua_gettop(L) - 1;
  lua_createtable(L, n, 1);
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "n");
  for (int i = 1; i <= n; i++) {
    lua_pushvalue(L, i + 1);
    lua_rawseti(L, -2, i);
  }
  int ref = lsr_ref(L);
  lsr_sched *s = sched_new(L, run);
  s->call_ref = ref;
  if (delay < 0) due(s);
  else s->timer = lsr_timer_at(run->eng, lsr_clock(run->eng) + delay, due, s);
  lua_pushinteger(L, s->id);
  return 1;
}

static int l_cancel(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "internal.cancel");
  int id = (int)luaL_checkinteger(L, 1);
  for (lsr_sched *s = run->scheds; s; s = s->next) {
    if (s->id != id || s->queued) continue;
    unlink_sched(run, s);
    run->pending--;
    sched_free(run->eng, s);
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushboolean(L, 0);
  return 1;
}

static int l_hold(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "internal.hold");
  lua_pushinteger(L, sched_new(L, run)->id);
  return 1;
}

/* Release a hold: fn and its n args on top of eng->L run on the run's
 * thread on the next turn.  [-(n+1), +0, m] */
void lsr_sched_release(lsr_engine *eng, int64_t run_id, int token, int n) {
  lua_State *L = eng->L;
  lsr_run *run = find_run(eng, run_id);
  lsr_sched *s = NULL;
  for (lsr_sched *x = run ? run->scheds : NULL; x; x = x->next)
    if (x->id == token) s = x;
  if (!s || run->state == LSR_RUN_ENDED) {
    lua_pop(L, n + 1);
    return;
  }
  int total = n + 1; /* fn and its args */
  lua_createtable(L, total, 1);
  lua_insert(L, -(total + 1));
  for (int i = total; i >= 1; i--) lua_rawseti(L, -(i + 1), i);
  lua_pushinteger(L, total);
  lua_setfield(L, -2, "n");
  s->call_ref = lsr_ref(L);
  due(s);
}

/* Call hooks[hook](args...) on a run's thread on the next turn; args is a
 * JSON list.  0, or -1 when there is no such run (or the JSON is bad). */
int lsr_sched_call(lsr_engine *eng, int64_t run_id, const char *hook, const char *args_json) {
  lua_State *L = eng->L;
  lsr_run *run = find_run(eng, run_id);
  char err[128];
  if (!run || run->state == LSR_RUN_ENDED) return -1;
  if (lsr_json_decode(L, args_json, strlen(args_json), err, sizeof err) < 0 || !lua_istable(L, -1)) {
    lua_settop(L, lua_gettop(L) - (lua_istable(L, -1) ? 1 : 0));
    return -1;
  }
  /* {fn, args...} from hooks[hook] and the list */
  int n = (int)lua_rawlen(L, -1);
  lua_createtable(L, n + 1, 1);
  lsr_getref(L, eng->hooks_ref);
  lua_getfield(L, -1, hook);
  lua_remove(L, -2);
  lua_rawseti(L, -2, 1);
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -2, i);
    lua_rawseti(L, -2, i + 1);
  }
  lua_pushinteger(L, n + 1);
  lua_setfield(L, -2, "n");
  lua_remove(L, -2);
  lsr_sched *s = sched_new(L, run);
  s->call_ref = lsr_ref(L);
  due(s);
  return 0;
}

/* on the run's thread: {fn, args...} */
static int sched_block(lua_State *T) {
  lua_Integer n;
  lua_getfield(T, 1, "n");
  n = lua_tointeger(T, -1);
  lua_pop(T, 1);
  luaL_checkstack(T, (int)n + 2, "scheduled step");
  for (lua_Integer i = 1; i <= n; i++) lua_rawgeti(T, 1, i);
  lua_call(T, (int)n - 1, 0);
  return 0;
}

void lsr_sched_run(lsr_engine *eng, lsr_task *t) {
  lsr_sched *s = (lsr_sched *)t;
  lsr_run *run = find_run(eng, s->run_id);
  if (!run) { /* its run ended: it was unlinked and is freed here */
    sched_free(eng, s);
    return;
  }
  unlink_sched(run, s);
  if (!run->failed && s->call_ref != LUA_NOREF) {
    lua_State *T = lsr_run_thread(run);
    lua_pushcfunction(T, sched_block);
    lsr_getref(T, s->call_ref);
    lsr_run_resume(run, 1);
  }
  run->pending--;
  sched_free(eng, s);
  lsr_run_settle(run);
}

/* A run ends: its steps not yet queued go; queued ones find no run. */
void lsr_sched_drop(lsr_run *run) {
  for (lsr_sched *s = run->scheds, *next; s; s = next) {
    next = s->next;
    if (s->queued) s->run_id = 0; /* lsr_sched_run frees it */
    else sched_free(run->eng, s);
  }
  run->scheds = NULL;
}

void lsr_schedule_register(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"schedule", l_schedule}, {"cancel", l_cancel}, {"hold", l_hold}, {NULL, NULL},
  };
  luaL_setfuncs(L, fns, 0);
}
