/* run.c: a playbook run's lifecycle.  Each run has its own thread and its own
 * _ENV over the read-only base; every block of the run (top level, on_start,
 * callbacks, on_finish) executes on that thread through lsr_run_resume, the
 * only caller of lua_resume.  A run that raises fails alone: its error, with
 * file:line and traceback, goes to its log, and the engine goes on. */
#include "json.h"
#include "runtime.h"
#include "watchdog.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LSR_MAX_CONTAINER_BYTES (64u << 20)
#define LSR_MAX_LOG_MESSAGE (64u << 10)

lua_State *lsr_run_thread(lsr_run *run) {
  lua_State *L = run->eng->L;
  lsr_getref(L, run->thread_ref);
  lua_State *T = lua_tothread(L, -1);
  lua_pop(L, 1); /* the registry keeps it alive */
  return T;
}

lsr_run *lsr_run_check(lua_State *L, const char *fname) {
  lsr_run *run = lsr_engine_of(L)->current;
  if (!run) luaL_error(L, "%s: called outside a playbook run", fname);
  return run;
}

static void log_append(lsr_run *run, lsr_log_level level, const char *msg, size_t len) {
  if (run->nlog == run->caplog) {
    run->caplog = run->caplog ? run->caplog * 2 : 16;
    run->log = lsr_xrealloc(run->log, run->caplog * sizeof *run->log);
  }
  lsr_log_entry *e = &run->log[run->nlog++];
  e->level = level;
  e->time = lsr_clock(run->eng);
  e->message = lsr_strndup(msg, len);
  run->log_kept += len;
  run->mem_net += (long long)len; /* a run's log is its memory too */
  if (run->eng->obs.on_log) run->eng->obs.on_log(run, e, run->eng->obs.ud);
}

/* A line of the run's log.  Lines over 64 KiB are cut; once a line would
 * pass the run's log limits (lines, bytes) or its memory cap, it and every
 * later line are dropped, counted, and reported by one line at the end. */
void lsr_run_log(lsr_run *run, lsr_log_level level, const char *msg, size_t len) {
  static const char cut[] = "... (truncated)";
  const lsr_limits *l = &run->limits;
  size_t keep = len > LSR_MAX_LOG_MESSAGE ? LSR_MAX_LOG_MESSAGE + sizeof cut - 1 : len;
  if (run->log_dropped || (l->log_entries && run->nlog >= l->log_entries) ||
      (l->log_bytes && run->log_kept + keep > l->log_bytes) ||
      (l->memory && run->mem_net + (long long)keep > (long long)l->memory)) {
    run->log_dropped++;
    run->log_dropped_bytes += keep;
    return;
  }
  if (keep == len) {
    log_append(run, level, msg, len);
    return;
  }
  char *line = lsr_xalloc(keep + 1);
  memcpy(line, msg, LSR_MAX_LOG_MESSAGE);
  memcpy(line + LSR_MAX_LOG_MESSAGE, cut, sizeof cut);
  log_append(run, level, line, keep);
  free(line);
}

/* At the run's end: one line for what its limits dropped, past them. */
static void log_truncation(lsr_run *run) {
  if (!run->log_dropped) return;
  char msg[256];
  int n = snprintf(msg, sizeof msg,
                   "log truncated: %zu later lines (%zu bytes) dropped; a run keeps %zu lines and %zu bytes of log",
                   run->log_dropped, run->log_dropped_bytes, run->limits.log_entries, run->limits.log_bytes);
  log_append(run, LSR_LOG_ERROR, msg, (size_t)n);
}

void lsr_run_fail(lsr_run *run, const char *msg) {
  if (run->failed) return; /* the first failure is the reason */
  run->failed = 1;
  run->error = lsr_strdup(msg);
}

/* ---- errors: message, position, traceback ---- */

static int tostring_safe(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* The error object of T as a message that always says where: "file:line:
 * message".  [-0, +2, -] on L: message, traceback.  A __tostring is the
 * playbook's code: it runs as the run, under its limits, on a thread of its
 * own. */
static void describe_error(lua_State *L, lua_State *T, lsr_run *run) {
  lua_xmove(T, L, 1); /* the error object */
  int t = lua_type(L, -1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_pushstring(L, lua_tostring(L, -1));
  } else {
    int base = lua_gettop(L), ok = 0;
    if (!run->killed && luaL_getmetafield(L, base, "__tostring") != LUA_TNIL) {
      lua_pop(L, 1);
      lua_State *S = lua_newthread(L);
      lsr_limits_arm(run->eng, S);
      lua_pushcfunction(S, tostring_safe);
      lua_pushvalue(L, base);
      lua_xmove(L, S, 1);
      lsr_run *outer = run->eng->current;
      run->instr_block = 0;
      run->eng->current = run;
      int nres;
      ok = lua_resume(S, L, 1, &nres) == LUA_OK && !run->killed && lua_type(S, -1) == LUA_TSTRING;
      run->eng->current = outer;
      if (ok) {
        lua_xmove(S, L, 1);
        lua_remove(L, base + 1); /* the thread */
      } else {
        lua_settop(L, base);
      }
    }
    if (!ok) lua_pushfstring(L, "(error object is a %s value)", lua_typename(L, t));
  }
  lua_remove(L, -2); /* stack: msg */
  /* the innermost playbook frame says where, if the message does not */
  lua_Debug ar;
  for (int level = 0; lua_getstack(T, level, &ar); level++) {
    lua_getinfo(T, "Sl", &ar);
    if (ar.currentline <= 0 || ar.source[0] != '@') continue;
    size_t sl = strlen(ar.short_src);
    const char *m = lua_tostring(L, -1);
    if (strncmp(m, ar.short_src, sl) != 0 || m[sl] != ':') {
      lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, m);
      lua_remove(L, -2);
    }
    break;
  }
  luaL_traceback(L, T, lua_tostring(L, -1), 0);
}

/* The limit a killed run hit, with its value: the error it fails with. */
static void push_killed(lua_State *T, lsr_run *run) {
  const lsr_limits *l = &run->limits;
  if (strstr(run->killed, "engine"))
    lua_pushfstring(T, "memory limit exceeded (the engine's %d MiB for every run)", (int)(run->eng->mem_limit >> 20));
  else if (run->killed[0] == 'm')
    lua_pushfstring(T, "%s (%d MiB per run)", run->killed, (int)(l->memory >> 20));
  else if (strstr(run->killed, "per callback"))
    lua_pushfstring(T, "instruction limit exceeded (%I instructions per callback)", (lua_Integer)l->instructions_per_callback);
  else
    lua_pushfstring(T, "instruction limit exceeded (%I instructions per run)", (lua_Integer)l->instructions_per_run);
}

lsr_exec lsr_run_resume(lsr_run *run, int nargs) {
  lsr_engine *eng = run->eng;
  lua_State *T = lsr_run_thread(run);
  lsr_run *outer = eng->current;
  lsr_limits_block(run, T);
  eng->current = run;
  lsr_step_enter(run); /* the watchdog times every step (engine/watchdog.h) */
  int nres = 0;
  int st = lua_resume(T, eng->L, nargs, &nres);
  eng->current = outer;
  if (st == LUA_OK && !run->killed) {
    lua_settop(T, 0);
    lsr_step_leave(outer);
    return LSR_EXEC_OK;
  }
  lua_State *L = eng->L;
  int top = lua_gettop(L);
  if (st == LUA_YIELD || st == LUA_OK) {
    lua_settop(T, 0);
    if (st == LUA_YIELD) lua_pushliteral(T, "a playbook block yielded outside a coroutine of its own");
    else push_killed(T, run); /* it caught the limit's error and returned */
  } else if (run->killed) {
    lua_pop(T, 1); /* the limit names the error, whatever was raised */
    push_killed(T, run);
  }
  describe_error(L, T, run);
  /* stack: msg, traceback */
  lsr_run_fail(run, lua_tostring(L, -2));
  size_t len;
  const char *tb = lua_tolstring(L, -1, &len);
  lsr_run_log(run, LSR_LOG_ERROR, tb, len);
  lua_settop(L, top);
  /* Resetting runs the block's pending __close handlers: the playbook's
   * code, so as the run, under what is left of its budgets.  Their errors
   * are dropped: the run has failed.  A thread killed by a limit is never
   * reset: its hooks are off (limits.c); it is discarded. */
  if (!run->killed) {
    lsr_limits_arm(eng, T);
    eng->current = run;
    lua_resetthread(T);
    eng->current = outer;
  }
  lsr_step_leave(outer);
  return st == LUA_YIELD ? LSR_EXEC_YIELD : LSR_EXEC_ERR;
}

/* ---- blocks run on the run's thread ---- */

/* [-0, +1, e] a function of the run's environment, or nil */
static int env_function(lua_State *T, lsr_run *run, const char *name) {
  lsr_getref(T, run->env_ref);
  lua_pushstring(T, name);
  int t = lua_rawget(T, -2);
  lua_remove(T, -2);
  if (t == LUA_TNIL) return 0;
  if (t != LUA_TFUNCTION && luaL_getmetafield(T, -1, "__call") == LUA_TNIL)
    luaL_error(T, "%s: '%s' is a %s, not a function", run->gen->path, name, luaL_typename(T, -1));
  if (t != LUA_TFUNCTION) lua_pop(T, 1);
  return 1;
}

/* A recorded block: report the call (name, arguments as JSON) to the test
 * hooks, then call the playbook's function.  upvalues: name, function */
static int recorded_block(lua_State *T) {
  lsr_engine *eng = lsr_engine_of(T);
  int n = lua_gettop(T);
  if (eng->current && eng->test) {
    lua_createtable(T, n, 0);
    lsr_json_push_array_mt(T);
    lua_setmetatable(T, -2);
    for (int i = 1; i <= n; i++) {
      lua_pushvalue(T, i);
      lua_rawseti(T, -2, i);
    }
    lsr_json_encode(T, -1, 1);
    size_t len;
    const char *args = lua_tolstring(T, -1, &len);
    eng->test->on_block(eng->test->ud, eng->current, lua_tostring(T, lua_upvalueindex(1)), args, len);
    lua_pop(T, 2);
  }
  lua_pushvalue(T, lua_upvalueindex(2));
  lua_insert(T, 1);
  lua_call(T, n, LUA_MULTRET);
  return lua_gettop(T);
}

/* ---- coverage (tests only) ---- */

/* Report the executable lines of the function at idx. */
static void report_lines(lua_State *T, int idx) {
  lsr_engine *eng = lsr_engine_of(T);
  lua_Debug ar;
  lua_pushvalue(T, idx);
  lua_getinfo(T, ">SL", &ar); /* pushes the activelines table */
  if (ar.source[0] == '@' && lua_istable(T, -1)) {
    lua_pushnil(T);
    while (lua_next(T, -2)) {
      lua_pop(T, 1);
      if (lua_isinteger(T, -1))
        eng->test->on_line(eng->test->ud, ar.source + 1, (int)lua_tointeger(T, -1), 0);
    }
  }
  lua_pop(T, 1);
}

/* Tests record every call of a playbook global function: wrap them. */
static void record_blocks(lua_State *T, lsr_run *run) {
  lsr_getref(T, run->env_ref);
  int env = lua_gettop(T);
  lua_newtable(T); /* name -> wrapper, set after the walk */
  lua_pushnil(T);
  while (lua_next(T, env)) {
    if (lua_type(T, -2) == LUA_TSTRING && lua_type(T, -1) == LUA_TFUNCTION) {
      if (run->eng->test->on_line && !lua_iscfunction(T, -1)) report_lines(T, -1);
      lua_pushvalue(T, -2);
      lua_insert(T, -2);
      lua_pushcclosure(T, recorded_block, 2);
      lua_pushvalue(T, -2);
      lua_insert(T, -2);
      lua_rawset(T, env + 1);
    } else {
      lua_pop(T, 1);
    }
  }
  lua_pushnil(T);
  while (lua_next(T, env + 1)) {
    lua_pushvalue(T, -2);
    lua_insert(T, -2);
    lua_rawset(T, env);
  }
  lua_settop(T, env - 1);
}

static int start_block(lua_State *T) {
  lsr_run *run = lua_touserdata(T, 1);
  lsr_engine *eng = run->eng;
  /* the chunk's _ENV becomes this run's environment */
  lsr_getref(T, run->gen->fn_ref);
  lsr_getref(T, eng->factory_ref);
  lsr_getref(T, run->env_ref);
  lua_call(T, 1, 1);
  lua_upvaluejoin(T, -2, 1, -1, 1);
  lua_pop(T, 1);
  lsr_push_state(T, run);
  lsr_getref(T, run->container_ref);
  lsr_hook(T, "run_started", 2, 0);
  if (eng->test && eng->test->on_line) report_lines(T, -1);
  lua_call(T, 0, 0); /* the playbook's top level */
  lsr_limits_from_playbook(run, T);
  if (eng->test && eng->test->on_block) record_blocks(T, run);
  /* a run recovered after a restart goes on where it was */
  lsr_push_state(T, run);
  if (lua_getfield(T, -1, "recovery") != LUA_TNIL) {
    lua_pop(T, 1);
    lsr_hook(T, "run_recover", 1, 0);
    return 0;
  }
  lua_pop(T, 2);
  if (!env_function(T, run, "on_start"))
    return luaL_error(T, "%s: the playbook defines no on_start(container)", run->gen->path);
  lsr_getref(T, run->container_ref);
  lua_call(T, 1, 0);
  return 0;
}

static int finish_block(lua_State *T) {
  lsr_run *run = lua_touserdata(T, 1);
  if (!env_function(T, run, "on_finish")) return 0;
  lsr_getref(T, run->container_ref);
  lsr_getref(T, run->summary_ref);
  lsr_json_encode(T, -1, 0);
  lua_remove(T, -2); /* stack: on_finish, container, summary JSON */
  lua_call(T, 2, 0);
  return 0;
}

static void run_block(lsr_run *run, lua_CFunction block) {
  lua_State *T = lsr_run_thread(run);
  lua_pushcfunction(T, block);
  lua_pushlightuserdata(T, run);
  lsr_run_resume(run, 1);
}

static void deadline_passed(void *ud) {
  lsr_run *run = ud;
  run->deadline_timer = NULL;
  char msg[128];
  snprintf(msg, sizeof msg, "deadline exceeded: the run took longer than %gs", run->limits.deadline);
  lsr_run_log(run, LSR_LOG_ERROR, msg, strlen(msg));
  lsr_run_fail(run, msg);
  lsr_run_settle(run);
}

void lsr_run_start(lsr_run *run) {
  run->state = LSR_RUN_RUNNING;
  if (run->eng->obs.on_run_start) run->eng->obs.on_run_start(run, run->eng->obs.ud);
  double started = lsr_clock(run->eng);
  if (!run->failed) run_block(run, start_block); /* failed before it started: recovery */
  run->on_start_done = 1;
  if (!run->failed && run->eng->obs.persist) run->eng->obs.persist(run, "started", "", "true", run->eng->obs.ud);
  if (!run->failed && run->limits.deadline > 0)
    run->deadline_timer = lsr_timer_at(run->eng, started + run->limits.deadline, deadline_passed, run);
  lsr_run_settle(run);
}

/* ---- the end of a run ---- */

static void run_end(lsr_run *run) {
  lsr_engine *eng = run->eng;
  lua_State *L = eng->L;
  run->state = LSR_RUN_ENDED;
  if (run->deadline_timer) lsr_timer_cancel(eng, run->deadline_timer);
  log_truncation(run);
  /* action runs still in flight finish on their own and are then freed */
  for (lsr_action_run *ar = run->actions, *next; ar; ar = next) {
    next = ar->next;
    ar->run = NULL;
    ar->next = NULL;
    for (int i = 0; i < ar->napp_runs; i++)
      if (!ar->app_runs[i].done && ar->app_runs[i].proc) lsr_exec_kill(ar->app_runs[i].proc);
    /* one still waiting for its reviewer goes now: its app runs end cancelled */
    if (ar->awaiting_approval) lsr_act_release(eng, ar);
  }
  run->actions = NULL;
  lsr_sched_drop(run);
  if (run->parent_run_id) lsr_child_ended(run);
  run->gen->runs--; /* before on_run_end, which may free a retired generation */
  if (run->prev) run->prev->next = run->next;
  else eng->runs = run->next;
  if (run->next) run->next->prev = run->prev;
  eng->live_runs--;
  if (eng->obs.on_run_end) eng->obs.on_run_end(run, eng->obs.ud);
  lsr_unref(L, &run->thread_ref);
  lsr_unref(L, &run->env_ref);
  lsr_unref(L, &run->container_ref);
  lsr_unref(L, &run->summary_ref);
  lsr_unref(L, &run->state_ref);
  for (size_t i = 0; i < run->nlog; i++) free(run->log[i].message);
  free(run->log);
  free(run->error);
  free(run);
}

void lsr_run_settle(lsr_run *run) {
  if (run->state == LSR_RUN_ENDED) return;
  if (!run->failed && run->on_start_done && run->pending == 0 && run->state == LSR_RUN_RUNNING) {
    run->state = LSR_RUN_FINISHING;
    run_block(run, finish_block);
  }
  if (run->failed || (run->state == LSR_RUN_FINISHING && run->pending == 0)) run_end(run);
}

/* ---- creating runs ---- */

/* [-1, +0, -] Start a run of gen on the container table on top of eng->L. */
static lsr_run *run_new(lsr_engine *eng, lsr_gen *gen) {
  lua_State *L = eng->L;
  lsr_run *run = lsr_xalloc(sizeof *run);
  run->task.kind = LSR_TASK_RUN_START;
  run->eng = eng;
  run->gen = gen;
  gen->runs++;
  run->id = eng->forced_run_id ? eng->forced_run_id : lsr_new_id(eng, LSR_ID_RUN);
  lua_getfield(L, -1, "id");
  run->container_id = lua_tointeger(L, -1);
  lua_pop(L, 1);
  run->container_ref = lsr_ref(L);
  lua_State *T = lua_newthread(L);
  run->limits = eng->limits;
  lsr_limits_arm(eng, T);
  run->thread_ref = lsr_ref(L);
  lua_newtable(L); /* the run's globals */
  lua_pushvalue(L, -1);
  lua_setfield(L, -2, "_G");
  lsr_getref(L, eng->envmeta_ref);
  lua_setmetatable(L, -2);
  run->env_ref = lsr_ref(L);
  lua_createtable(L, 0, 8); /* the data API's state of the run */
  lua_pushinteger(L, run->id);
  lua_setfield(L, -2, "run_id");
  lua_pushinteger(L, run->container_id);
  lua_setfield(L, -2, "container_id");
  lua_pushstring(L, gen->path);
  lua_setfield(L, -2, "playbook");
  run->state_ref = lsr_ref(L);
  lua_createtable(L, 0, 1); /* get_summary() */
  lsr_json_new_array(L, 0);
  lua_setfield(L, -2, "result");
  run->summary_ref = lsr_ref(L);
  run->next = eng->runs;
  if (eng->runs) eng->runs->prev = run;
  eng->runs = run;
  eng->live_runs++;
  lsr_engine_push(eng, &run->task);
  return run;
}

/* Check the shape of a container: an object with an integer id and a list
 * of artifact objects, each with an integer id (given ones missing).
 * [-0, +0, e] on the table at idx. */
static int check_container(lua_State *L) {
  const char *file = lua_tostring(L, 2);
  if (!lua_istable(L, 1) || lsr_json_is_array(L, 1))
    return luaL_error(L, "%s: a container must be a JSON object", file);
  int t = lua_getfield(L, 1, "id");
  if (t == LUA_TNIL) {
    lua_pushinteger(L, 1);
    lua_setfield(L, 1, "id");
  } else if (!lua_isinteger(L, -1)) {
    return luaL_error(L, "%s: field 'id': expected an integer, got %s", file, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  t = lua_getfield(L, 1, "artifacts");
  if (t == LUA_TNIL) {
    lsr_json_new_array(L, 0);
    lua_setfield(L, 1, "artifacts");
    return 0;
  }
  if (!lsr_json_is_array(L, -1)) {
    lua_pushnil(L); /* {} from a Lua table: no artifacts */
    if (t != LUA_TTABLE || lua_next(L, -2)) return luaL_error(L, "%s: field 'artifacts': expected a list", file);
    lsr_json_new_array(L, 0);
    lua_setfield(L, 1, "artifacts");
    return 0;
  }
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1), max_id = 0, missing = 0;
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    if (!lua_istable(L, -1) || lsr_json_is_array(L, -1))
      return luaL_error(L, "%s: artifacts[%d]: expected an object", file, (int)i);
    lua_getfield(L, -1, "id");
    if (lua_isnil(L, -1)) missing++;
    else if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      return luaL_error(L, "%s: artifacts[%d].id: expected a positive integer", file, (int)i);
    else if (lua_tointeger(L, -1) > max_id) max_id = lua_tointeger(L, -1);
    lua_pop(L, 2);
  }
  if (missing && max_id > LUA_MAXINTEGER - missing)
    return luaL_error(L, "%s: artifact ids are too large to number the artifacts without one", file);
  lua_Integer next_id = max_id + 1;
  for (lua_Integer i = 1; i <= n; i++) { /* number the artifacts that have no id */
    lua_rawgeti(L, -1, i);
    if (lua_getfield(L, -1, "id") == LUA_TNIL) {
      lua_pushinteger(L, next_id++);
      lua_setfield(L, -3, "id");
    }
    lua_getfield(L, 1, "id");
    lua_setfield(L, -3, "container");
    lua_pop(L, 2);
  }
  return 0;
}

lsr_run *lsr_run_json(lsr_engine *eng, lsr_gen *gen, const char *json, size_t len,
                      const char *label, char *err, size_t errlen) {
  char why[256];
  if (lsr_json_decode(eng->L, json, len, why, sizeof why) < 0) {
    snprintf(err, errlen, "%s: invalid JSON at %s", label, why);
    return NULL;
  }
  return lsr_run_table(eng, gen, label, err, errlen);
}

lsr_run *lsr_run_table(lsr_engine *eng, lsr_gen *gen, const char *label, char *err, size_t errlen) {
  lua_State *L = eng->L;
  lua_pushcfunction(L, check_container);
  lua_pushvalue(L, -2);
  lua_pushstring(L, label);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    snprintf(err, errlen, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    return NULL;
  }
  return run_new(eng, gen);
}

lsr_run *lsr_run_file(lsr_engine *eng, lsr_gen *gen, const char *file, char *err, size_t errlen) {
  char *text;
  size_t len;
  if (lsr_read_file(file, &text, &len, LSR_MAX_CONTAINER_BYTES, err, errlen) < 0) return NULL;
  lsr_run *run = lsr_run_json(eng, gen, text, len, file, err, errlen);
  free(text);
  return run;
}

static int encode_summary(lua_State *L) {
  lsr_run *run = lua_touserdata(L, 1);
  lsr_getref(L, run->summary_ref);
  lsr_json_encode(L, -1, 1);
  return 1;
}

/* The JSON that encoder(run) leaves on the stack (malloc'd), or fallback
 * if it fails (a value JSON cannot hold, out of memory). */
static char *run_json(lsr_run *run, lua_CFunction encoder, const char *fallback) {
  lua_State *L = run->eng->L;
  lua_pushcfunction(L, encoder);
  lua_pushlightuserdata(L, run);
  int ok = lua_pcall(L, 1, 1, 0) == LUA_OK;
  char *s = lsr_strdup(ok ? lua_tostring(L, -1) : fallback);
  lua_pop(L, 1);
  return s;
}

char *lsr_run_summary_json(lsr_run *run) { return run_json(run, encode_summary, "{}"); }

/* the engine's current state of the run's container (the store's copy, which
 * every phantom.set_*, add_tags, add_note, add_artifact changes), or else the
 * run's own */
void lsr_run_push_container(lua_State *L, lsr_run *run) {
  lsr_getref(L, run->eng->store_ref);
  if (lua_getfield(L, -1, "containers") == LUA_TTABLE) lua_rawgeti(L, -1, run->container_id);
  else lua_pushnil(L);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lsr_getref(L, run->container_ref);
  }
  lua_replace(L, -3);
  lua_pop(L, 1);
}

static int encode_container(lua_State *L) {
  lsr_run_push_container(L, lua_touserdata(L, 1));
  lsr_json_encode(L, -1, 1);
  return 1;
}

char *lsr_run_container_json(lsr_run *run) { return run_json(run, encode_container, "null"); }

static int set_state_field(lua_State *L) {
  lsr_run *run = lua_touserdata(L, 1);
  char err[128];
  size_t n;
  const char *json = lua_tolstring(L, 3, &n);
  lsr_push_state(L, run);
  if (lsr_json_decode(L, json, n, err, sizeof err) < 0) return luaL_error(L, "%s", err);
  lua_setfield(L, -2, lua_tostring(L, 2));
  return 0;
}

int lsr_run_state_set(lsr_run *run, const char *key, const char *json) {
  lua_State *L = run->eng->L;
  lua_pushcfunction(L, set_state_field);
  lua_pushlightuserdata(L, run);
  lua_pushstring(L, key);
  lua_pushstring(L, json);
  if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}
