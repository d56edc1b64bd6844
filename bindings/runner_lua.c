/* runner_lua.c: apps of runner "lua".  Each app has a Lua state of its own,
 * never a playbook's; its main file returns a table of action functions,
 * each called as fn(param, asset) once per parameter set.  Results cross
 * to the playbook state as JSON, through the same checks as exec output.
 *
 * An app run starts on the loop's thread, in a coroutine of the app's
 * state, for a slice (LSR_LUA_SLICE): most end within it, with no thread
 * hop.  One that runs longer (the count hook yields at the end of the
 * slice) or calls what may block (os.execute, io.popen, io.open, io.read,
 * io.lines, io.input yield first) goes on from where it is on libuv's
 * thread pool (uv_queue_work), so an app that blocks (os.execute("sleep
 * 1")) delays no other run and no REST request.  The rules:
 * - a state is used by one thread at a time: the app runs of one app wait
 *   in order (lsr_lua_app.head) while one runs; different apps run at once;
 * - a worker touches only its job (copies of the request: action, asset
 *   name/id/config, the main file's path, made before queueing; the
 *   parameter sets, copied into its state on the loop's thread before it
 *   starts: lsr_json_copy, as their JSON would cross) and the job's state (lsr_lua_state: its memory count and
 *   instruction count are the state's, not the app's).  lsr_json_* keep no
 *   process-wide mutable state, and in an app state lsr_engine_if is NULL,
 *   so nothing there reaches an engine;
 * - the app's timeout (the action's, or the app's) is a real-clock timer on
 *   the loop: past it the app run fails "timed out after Ns", the state is
 *   abandoned (its hook raises at the next count; freed when its thread
 *   returns) and a fresh state serves the next app runs;
 * - closing an app (config reload) while its state is on a thread defers the
 *   close to the after-work callback; engine teardown (lsr_lua_apps_stop)
 *   waits for every job still on a thread.
 * UV_THREADPOOL_SIZE: LSR_LUA_THREADS unless the environment sets it. */
#include "json.h"
#include "runtime.h"
#include <lualib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACTIONS_KEY "luasoar.app.actions"
#define DRIVER_KEY "luasoar.app.driver"
#define CO_KEY "luasoar.app.coroutine"
#define APP_MEMORY (256u << 20)           /* per app state */
#define APP_INSTRUCTIONS 100000000LL     /* per app run */
#define APP_HOOK_STEP 1000
#define LSR_LUA_THREADS "8"              /* libuv's pool, when UV_THREADPOOL_SIZE is unset */
#define LSR_LUA_SLICE 0.002              /* seconds an app run may take on the loop's thread */

typedef struct lsr_lua_job lsr_lua_job;

/* One Lua state of an app, and what it counts: used by one thread at a time
 * (the worker of its job while it runs, else the loop's). */
typedef struct {
  lua_State *AL;
  size_t mem;           /* its Lua memory */
  long long instr;      /* instructions of the app run in progress */
  lsr_lua_job *job;     /* the job it runs (set by its worker) */
  double inline_until;  /* on the loop's thread: yield at this time (0: on a worker) */
} lsr_lua_state;

/* An app's runner side (loop thread only). */
typedef struct lsr_lua_app {
  lsr_engine *eng;
  lsr_lua_state *idle;  /* its state when no job holds it (NULL: none yet) */
  lsr_lua_job *running; /* the job on a thread, or NULL */
  lsr_lua_job *head, *tail; /* app runs waiting their turn, in order */
} lsr_lua_app;

/* Per engine: the jobs on threads, for teardown. */
typedef struct lsr_lua_pool {
  lsr_lua_job *jobs;    /* started and not yet freed (running or abandoned) */
  int stopping;
} lsr_lua_pool;

struct lsr_lua_job {
  uv_work_t work;
  uv_timer_t timer;     /* the app's timeout (real clock) */
  lsr_engine *eng;
  lsr_lua_app *la;      /* NULL once detached: timed out, or its app closed */
  lsr_app_run *apr;     /* NULL once it no longer reports (timed out, teardown) */
  lsr_lua_state *st;    /* the state it runs in (made on the loop's thread: job_load) */
  atomic_int cancel;    /* the loop gave up on it: the hook raises */
  int on_thread, timer_open;
  double timeout;
  /* copies of the request, made on the loop's thread */
  char *path, *app_name, *action, *asset_name, *config_json;
  int64_t asset_id;
  int nparams;
  int params_ref;       /* the list of its parameter sets (the state's registry) */
  int co_ref;           /* the coroutine the action functions run in (the state's registry) */
  int wrap_ref;         /* its output, done (the state's registry) */
  int out_ref;          /* the output copied into the engine's state (its registry) */
  /* the worker's answer: its output (wrap_ref, out_ref), or why it failed */
  char *failure;
  lsr_lua_job *next;             /* the app's waiting list */
  lsr_lua_job *pnext, *pprev;    /* the pool's list */
};

/* An app is code too: its state has a memory cap, and an app run an
 * instruction budget, so a looping app fails its app run, not the engine. */
static void *app_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  lsr_lua_state *app = ud;
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
  lsr_lua_state *app = *(lsr_lua_state **)lua_getextraspace(L);
  app->instr += APP_HOOK_STEP;
  if (atomic_load_explicit(&app->job->cancel, memory_order_relaxed)) {
    lua_sethook(L, app_hook, LUA_MASKCOUNT, 1);
    luaL_error(L, "abandoned: the app run timed out");
  }
  if (app->instr > APP_INSTRUCTIONS) {
    lua_sethook(L, app_hook, LUA_MASKCOUNT, 1); /* no pcall holds it for long */
    luaL_error(L, "instruction limit exceeded (%d instructions per app run)", (int)APP_INSTRUCTIONS);
  }
  if (app->inline_until > 0 && lsr_now() > app->inline_until && lua_isyieldable(L))
    lua_yield(L, 0); /* its slice of the loop is over: a worker thread goes on */
}

/* os.execute, io.popen ... may block: called on the loop's thread, they
 * first yield, so that the rest of the app run goes on a worker thread. */
static int blocking_k(lua_State *L, int status, lua_KContext ctx) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static int blocking(lua_State *L) {
  lsr_lua_state *app = *(lsr_lua_state **)lua_getextraspace(L);
  if (app->inline_until > 0 && lua_isyieldable(L)) return lua_yieldk(L, 0, 0, blocking_k);
  return blocking_k(L, LUA_OK, 0);
}

static void wrap_blocking(lua_State *AL, const char *lib, const char *const *names) {
  lua_getglobal(AL, lib);
  for (int i = 0; names[i]; i++) {
    if (lua_getfield(AL, -1, names[i]) != LUA_TFUNCTION) { lua_pop(AL, 1); continue; }
    lua_pushcclosure(AL, blocking, 1);
    lua_setfield(AL, -2, names[i]);
  }
  lua_pop(AL, 1);
}

/* The driver's get_fn (upvalue: the job): the action's function; or, the
 * first time, nil and the app's main chunk, which the driver runs (its top
 * level may block: it runs in the coroutine, so it can move to a worker),
 * and gives back its result to be checked and kept. */
static int get_fn(lua_State *AL) {
  lsr_lua_job *job = lua_touserdata(AL, lua_upvalueindex(1));
  if (lua_gettop(AL) > 0) { /* the main chunk's result */
    if (!lua_istable(AL, 1))
      return luaL_error(AL, "%s must return a table of action functions, returned %s", job->path,
                        luaL_typename(AL, 1));
    lua_pushvalue(AL, 1);
    lua_setfield(AL, LUA_REGISTRYINDEX, ACTIONS_KEY);
  } else if (lua_getfield(AL, LUA_REGISTRYINDEX, ACTIONS_KEY) != LUA_TTABLE) {
    lua_pushnil(AL);
    /* chunk name "@path", text only */
    if (luaL_loadfilex(AL, job->path, "t") != LUA_OK) return lua_error(AL);
    return 2;
  }
  lua_getfield(AL, LUA_REGISTRYINDEX, ACTIONS_KEY);
  if (lua_getfield(AL, -1, job->action) != LUA_TFUNCTION)
    return luaL_error(AL, "app '%s' has no function for action '%s'", job->app_name, job->action);
  return 1;
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

/* The app run's driver, in the app's state: the app's main file run the
 * first time, then each parameter set through the action function, in a
 * coroutine (so it can move to a worker thread at any instruction);
 * returns ok, value pairs for run_finish. */
static const char DRIVER[] =
  "local get_fn, asset, params = ...\n"
  "local fn, main = get_fn()\n"
  "if not fn then fn = get_fn(main()) end\n"
  "local out = {}\n"
  "for i = 1, #params do\n"
  "  out[2 * i - 1], out[2 * i] = pcall(fn, params[i], asset)\n"
  "end\n"
  "return out\n";

/* stack in: job (light userdata).  Makes the coroutine of the app run, its
 * arguments pushed: driver, function, asset, parameter list. */
static int run_prepare(lua_State *AL) {
  lsr_lua_job *job = lua_touserdata(AL, 1);
  char err[256];
  lua_pushlightuserdata(AL, job);
  lua_pushcclosure(AL, get_fn, 1);
  int fn = lua_gettop(AL);
  /* the coroutine: the state's, reused while each app run ends cleanly */
  lua_State *co = NULL;
  if (lua_getfield(AL, LUA_REGISTRYINDEX, CO_KEY) == LUA_TTHREAD) co = lua_tothread(AL, -1);
  if (!co || lua_status(co) != LUA_OK || lua_gettop(co) != 0) {
    lua_pop(AL, 1);
    co = lua_newthread(AL);
    lua_pushvalue(AL, -1);
    lua_setfield(AL, LUA_REGISTRYINDEX, CO_KEY);
  }
  if (lua_getfield(AL, LUA_REGISTRYINDEX, DRIVER_KEY) != LUA_TFUNCTION) { /* compiled once per state */
    lua_pop(AL, 1);
    if (luaL_loadbufferx(AL, DRIVER, sizeof DRIVER - 1, "=luasoar app driver", "t") != LUA_OK)
      return lua_error(AL);
    lua_pushvalue(AL, -1);
    lua_setfield(AL, LUA_REGISTRYINDEX, DRIVER_KEY);
  }
  lua_xmove(AL, co, 1);
  lua_pushvalue(AL, fn);
  lua_createtable(AL, 0, 3); /* the asset */
  lua_pushstring(AL, job->asset_name);
  lua_setfield(AL, -2, "name");
  lua_pushinteger(AL, job->asset_id);
  lua_setfield(AL, -2, "id");
  if (lsr_json_decode(AL, job->config_json, strlen(job->config_json), err, sizeof err) < 0)
    return luaL_error(AL, "asset config: %s", err);
  lua_setfield(AL, -2, "config");
  lua_rawgeti(AL, LUA_REGISTRYINDEX, job->params_ref);
  lua_xmove(AL, co, 3);
  lua_pushvalue(AL, fn + 1); /* the coroutine, kept in the registry while it runs */
  job->co_ref = luaL_ref(AL, LUA_REGISTRYINDEX);
  return 0;
}

/* stack in: job, the driver's list.  Out: the output {action_results},
 * each set's result checked (an error, a non-table or a bad result: that set failed,
 * with the reason). */
static int run_finish(lua_State *AL) {
  lsr_lua_job *job = lua_touserdata(AL, 1);
  int res = 2;
  lua_createtable(AL, 0, 1);
  int wrapper = lua_gettop(AL);
  lsr_json_new_array(AL, job->nparams);
  int list = lua_gettop(AL);
  for (int i = 0; i < job->nparams; i++) {
    lua_rawgeti(AL, res, 2 * i + 1);
    int ok = lua_toboolean(AL, -1);
    lua_pop(AL, 1);
    lua_rawgeti(AL, res, 2 * i + 2);
    char why[256];
    const char *bad = ok && lua_istable(AL, -1) ? bad_result(AL, lua_gettop(AL), why, sizeof why) : NULL;
    if (!ok || !lua_istable(AL, -1) || bad) {
      if (bad)
        lua_pushstring(AL, bad);
      else if (!ok && lua_type(AL, -1) == LUA_TSTRING)
        lua_pushvalue(AL, -1);
      else if (!ok)
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
  lua_pushvalue(AL, wrapper);
  return 1;
}

/* ---- on a worker thread: only the job and its state ---- */

static lsr_lua_state *state_new(void) {
  lsr_lua_state *st = lsr_xalloc(sizeof *st);
  st->AL = lua_newstate(app_alloc, st);
  if (!st->AL) {
    free(st);
    return NULL;
  }
  lua_State *AL = st->AL;
  *(lsr_lua_state **)lua_getextraspace(AL) = st;
  luaL_openlibs(AL);
  lsr_json_init(AL);
  lua_getglobal(AL, "package");
  lua_getfield(AL, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lsr_json_open(AL);
  lua_setfield(AL, -2, "json");
  lua_pop(AL, 2);
  static const char *const os_blocking[] = {"execute", NULL};
  static const char *const io_blocking[] = {"popen", "read", "lines", "open", "input", NULL};
  wrap_blocking(AL, "os", os_blocking);
  wrap_blocking(AL, "io", io_blocking);
  return st;
}

static void state_free(lsr_lua_state *st) {
  if (!st) return;
  lua_close(st->AL);
  free(st);
}

/* The job's app run from where it is (started or not) to its end, or, with
 * until > 0 (inline on the loop's thread), to its first yield (its slice is
 * over, or it calls something that may block).  1 when it ended: its output
 * kept in the state's registry (job->wrap_ref), or why it failed in
 * job->failure. */
static int app_run_go(lsr_lua_job *job, double until) {
  if (job->failure) return 1; /* job_load failed */
  lsr_lua_state *st = job->st;
  lua_State *AL = st->AL;
  st->job = job;
  st->inline_until = until;
  int top = lua_gettop(AL);
  int rc = LUA_OK;
  if (job->co_ref == LUA_NOREF) { /* its start: the coroutine made */
    st->instr = 0;
    lua_sethook(AL, app_hook, LUA_MASKCOUNT, APP_HOOK_STEP);
    lua_pushcfunction(AL, run_prepare);
    lua_pushlightuserdata(AL, job);
    rc = lua_pcall(AL, 1, 0, 0);
  }
  int done = 1;
  if (rc == LUA_OK) {
    lua_rawgeti(AL, LUA_REGISTRYINDEX, job->co_ref);
    lua_State *co = lua_tothread(AL, -1); /* (its hook, the state's, is set once: resetting it would reset its count) */
    int nres = 0;
    rc = lua_resume(co, AL, lua_status(co) == LUA_YIELD ? 0 : 3, &nres);
    if (rc == LUA_YIELD) {
      lua_pop(co, nres);
      done = 0;
    } else if (rc == LUA_OK) {
      lua_pushcfunction(AL, run_finish);
      lua_pushlightuserdata(AL, job);
      lua_xmove(co, AL, 1);
      rc = lua_pcall(AL, 2, 1, 0);
    } else {
      lua_xmove(co, AL, 1); /* the error */
    }
  }
  st->inline_until = 0;
  if (done) {
    if (rc != LUA_OK) {
      const char *e = lua_tostring(AL, -1);
      job->failure = lsr_strdup(e ? e : "the app raised a non-string error");
    } else {
      job->wrap_ref = luaL_ref(AL, LUA_REGISTRYINDEX); /* copied by the loop's thread (take_output) */
    }
    if (job->co_ref != LUA_NOREF) luaL_unref(AL, LUA_REGISTRYINDEX, job->co_ref);
    job->co_ref = LUA_NOREF;
    luaL_unref(AL, LUA_REGISTRYINDEX, job->params_ref);
    job->params_ref = LUA_NOREF;
  }
  lua_settop(AL, top);
  return done;
}

/* On a worker: to the end.  (An app that yields by itself is resumed again:
 * its instruction budget and the timeout still end it.) */
static void work_run(uv_work_t *w) {
  while (!app_run_go(w->data, 0)) {}
}

/* ---- on the loop's thread ---- */

static lsr_lua_pool *pool_of(lsr_engine *eng) {
  if (!eng->lua_pool) {
    eng->lua_pool = lsr_xalloc(sizeof *eng->lua_pool);
    /* libuv sizes its pool once, at the first uv_queue_work of the process */
    static int sized;
    if (!sized) {
      sized = 1;
      setenv("UV_THREADPOOL_SIZE", LSR_LUA_THREADS, 0);
    }
  }
  return eng->lua_pool;
}

static void job_free(lsr_lua_job *job) {
  free(job->path);
  free(job->app_name);
  free(job->action);
  free(job->asset_name);
  free(job->config_json);
  free(job->failure);
  lsr_unref(job->eng->L, &job->out_ref); /* (a job dropped unreported) */
  free(job);
}

/* Off the pool's list and freed once its thread has returned and its timer
 * is closed. */
static void job_release(lsr_lua_job *job) {
  if (job->on_thread || job->timer_open) return;
  job_free(job);
}

static void timer_closed(uv_handle_t *h) {
  lsr_lua_job *job = h->data;
  job->timer_open = 0;
  job_release(job);
}

static void timer_stop(lsr_lua_job *job) {
  if (job->timer_open && !uv_is_closing((uv_handle_t *)&job->timer))
    uv_close((uv_handle_t *)&job->timer, timer_closed);
}

static lsr_lua_job *job_new(lsr_engine *eng, lsr_app_run *apr) {
  const lsr_app *app = apr->asset->app;
  const lsr_asset *asset = apr->asset;
  const lsr_action_run *ar = apr->ar;
  lsr_lua_job *job = lsr_xalloc(sizeof *job);
  job->eng = eng;
  job->apr = apr;
  size_t n = strlen(app->dir) + strlen(app->main) + 2;
  job->path = lsr_xalloc(n);
  snprintf(job->path, n, "%s/%s", app->dir, app->main);
  job->app_name = lsr_strdup(app->name);
  job->action = lsr_strdup(ar->action);
  job->asset_name = lsr_strdup(asset->name);
  job->asset_id = asset->id;
  job->config_json = lsr_strdup(asset->config_json);
  job->nparams = apr->nsent;
  const lsr_action_def *def = lsr_app_action(app, ar->action);
  job->timeout = def && def->timeout > 0 ? def->timeout : app->timeout;
  job->co_ref = job->wrap_ref = job->out_ref = job->params_ref = LUA_NOREF;
  return job;
}

/* stack in: job.  Its parameter sets copied from the engine's state into the
 * list job->params_ref of its state. */
static int load_params(lua_State *AL) {
  lsr_lua_job *job = lua_touserdata(AL, 1);
  lsr_app_run *apr = job->apr;
  lua_createtable(AL, apr->nsent, 0);
  for (int i = 0; i < apr->nsent; i++) {
    lsr_act_push_param(AL, apr->ar, apr->sent[i]);
    lua_rawseti(AL, -2, i + 1);
  }
  job->params_ref = luaL_ref(AL, LUA_REGISTRYINDEX);
  return 0;
}

/* On the loop's thread, before the job first runs: its state (the app's
 * idle one, or a new one) and its parameter sets in it; or why not in
 * job->failure. */
static void job_load(lsr_lua_job *job) {
  if (job->params_ref != LUA_NOREF || job->failure) return;
  if (!job->st) job->st = state_new();
  if (!job->st) {
    job->failure = lsr_strdup("cannot create the app's Lua state (out of memory)");
    return;
  }
  lua_State *AL = job->st->AL;
  lua_pushcfunction(AL, load_params);
  lua_pushlightuserdata(AL, job);
  if (lua_pcall(AL, 1, 0, 0) != LUA_OK) {
    const char *e = lua_tostring(AL, -1);
    job->failure = lsr_strdup(e ? e : "cannot copy the parameters into the app's state");
    lua_pop(AL, 1);
  }
}

/* Its output crosses from the app's state to the engine's as its JSON would
 * decode (lsr_json_copy: the same values, the same refusals), on the loop's
 * thread, while the job still holds the state. */
static void take_output(lsr_lua_job *job) {
  if (job->wrap_ref == LUA_NOREF || !job->st) return;
  lua_State *AL = job->st->AL, *E = job->eng->L;
  static const char key = 0; /* a thread of the engine's state to copy onto */
  if (lua_rawgetp(E, LUA_REGISTRYINDEX, &key) != LUA_TTHREAD) {
    lua_pop(E, 1);
    lua_newthread(E);
    lua_pushvalue(E, -1);
    lua_rawsetp(E, LUA_REGISTRYINDEX, &key);
  }
  lua_State *T = lua_tothread(E, -1);
  lua_pop(E, 1);
  char err[256];
  lua_rawgeti(AL, LUA_REGISTRYINDEX, job->wrap_ref);
  if (lsr_json_copy(AL, -1, T, 0, err, sizeof err) == 0) job->out_ref = lsr_ref(T);
  else job->failure = lsr_strdup(err);
  lua_pop(AL, 1);
  luaL_unref(AL, LUA_REGISTRYINDEX, job->wrap_ref);
  job->wrap_ref = LUA_NOREF;
}

static void job_release(lsr_lua_job *job);

/* Report the job's end, the job released first (reporting may close the
 * app: call it last). */
static void report(lsr_engine *eng, lsr_app_run *apr, lsr_lua_job *job) {
  char *failure = job->failure;
  int ref = job->out_ref;
  job->failure = NULL;
  job->out_ref = LUA_NOREF;
  job_release(job);
  if (ref != LUA_NOREF) lsr_app_run_done_ref(eng, apr, ref);
  else lsr_app_run_done(eng, apr, 0, NULL, 0, failure ? failure : "the app returned nothing");
  free(failure);
}

static void dispatch(lsr_lua_app *la, lsr_lua_job *job);

/* The app's next waiting app run goes, if any (call it before reporting the
 * one that ended: reporting may close the app).  Those whose run ended while
 * they waited are reported cancelled, last. */
static void next_job(lsr_lua_app *la) {
  lsr_lua_job *cancelled = NULL;
  if (la->eng->lua_pool->stopping) return;
  while (!la->running && la->head) {
    lsr_lua_job *job = la->head;
    la->head = job->next;
    if (!la->head) la->tail = NULL;
    job->next = NULL;
    lsr_action_run *ar = job->apr->ar;
    if (!ar->run || ar->run->failed) {
      job->next = cancelled;
      cancelled = job;
      continue;
    }
    dispatch(la, job);
  }
  lsr_engine *eng = la->eng; /* la may go from here on */
  while (cancelled) {
    lsr_lua_job *job = cancelled;
    cancelled = job->next;
    lsr_app_run *apr = job->apr;
    job_free(job);
    lsr_app_run_done(eng, apr, 0, NULL, 0, "cancelled: the playbook run ended");
  }
}

static void work_done(uv_work_t *w, int status) {
  lsr_lua_job *job = w->data;
  lsr_engine *eng = job->eng;
  lsr_lua_pool *pool = eng->lua_pool;
  job->on_thread = 0;
  if (job->pnext) job->pnext->pprev = job->pprev;
  if (job->pprev) job->pprev->pnext = job->pnext;
  else pool->jobs = job->pnext;
  timer_stop(job);
  lsr_lua_app *la = job->la;
  lsr_app_run *apr = job->apr;
  if (apr) take_output(job); /* before the state goes to the next app run */
  if (la) { /* its state goes back to the app, and the next app run may go */
    la->running = NULL;
    la->idle = job->st;
    next_job(la);
  } else {
    state_free(job->st); /* abandoned, or its app was closed meanwhile */
  }
  job->st = NULL;
  if (apr) {
    report(eng, apr, job);
    return;
  }
  job_release(job);
}

static void timed_out(uv_timer_t *t) {
  lsr_lua_job *job = t->data;
  lsr_lua_app *la = job->la;
  lsr_app_run *apr = job->apr;
  char why[96];
  snprintf(why, sizeof why, "timed out after %gs", job->timeout);
  /* abandon its state: never used again, freed when its thread returns */
  atomic_store_explicit(&job->cancel, 1, memory_order_relaxed);
  job->la = NULL;
  job->apr = NULL;
  timer_stop(job);
  if (la) {
    la->running = NULL; /* la->idle is NULL: the next app run makes a fresh state */
    next_job(la);
  }
  if (apr) lsr_app_run_done(job->eng, apr, 0, NULL, 0, why);
}

static void dispatch(lsr_lua_app *la, lsr_lua_job *job) {
  lsr_engine *eng = la->eng;
  lsr_lua_pool *pool = pool_of(eng);
  job->la = la;
  if (!job->st) job->st = la->idle;
  la->idle = NULL;
  job_load(job);
  la->running = job;
  job->work.data = job;
  job->on_thread = 1;
  job->pnext = pool->jobs;
  if (pool->jobs) pool->jobs->pprev = job;
  pool->jobs = job;
  uv_timer_init(eng->loop, &job->timer);
  job->timer.data = job;
  job->timer_open = 1;
  uv_timer_start(&job->timer, timed_out, (uint64_t)(job->timeout * 1000 + 0.5), 0);
  uv_queue_work(eng->loop, &job->work, work_run, work_done);
}

void lsr_lua_app_start(lsr_engine *eng, lsr_app_run *apr) {
  lsr_app *app = apr->asset->app;
  if (!app->lua) {
    app->lua = lsr_xalloc(sizeof *app->lua);
    app->lua->eng = eng;
  }
  lsr_lua_app *la = app->lua;
  lsr_lua_job *job = job_new(eng, apr);
  if (la->running) { /* its state is busy: wait in order */
    if (la->tail) la->tail->next = job;
    else la->head = job;
    la->tail = job;
    return;
  }
  /* first on the loop's thread, for a slice: most app runs end within it,
   * with no thread hop; one that runs longer, or calls what may block,
   * goes on on a worker thread from where it is */
  job->st = la->idle;
  la->idle = NULL;
  job_load(job);
  if (!app_run_go(job, lsr_now() + LSR_LUA_SLICE)) {
    la->idle = job->st;
    dispatch(la, job);
    return;
  }
  take_output(job);
  la->idle = job->st;
  job->st = NULL;
  report(eng, apr, job);
}

/* The app goes (config reload or teardown).  A state on a thread is freed
 * when its thread returns (work_done); app runs still waiting hold their
 * action run, hence the config: only teardown leaves any, unreported. */
void lsr_lua_app_close(lsr_app *app) {
  lsr_lua_app *la = app->lua;
  if (!la) return;
  app->lua = NULL;
  if (la->running) la->running->la = NULL;
  state_free(la->idle);
  for (lsr_lua_job *job = la->head, *next; job; job = next) {
    next = job->next;
    job_free(job);
  }
  free(la);
}

void lsr_lua_apps_stop(lsr_engine *eng) {
  lsr_lua_pool *pool = eng->lua_pool;
  if (!pool) return;
  pool->stopping = 1;
  for (lsr_lua_job *job = pool->jobs; job; job = job->pnext) {
    job->apr = NULL; /* nothing is reported any more */
    atomic_store_explicit(&job->cancel, 1, memory_order_relaxed);
  }
  while (pool->jobs) uv_run(eng->loop, UV_RUN_ONCE);
  eng->lua_pool = NULL;
  free(pool);
}
