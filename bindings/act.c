/* act.c: phantom.act and the delivery of a finished action run to its
 * callback.  act validates everything at the call (so a mistake fails at the
 * playbook's line), returns the action_run_id at once and queues one app run
 * per selected asset; the callback runs later, on the run's thread, with the
 * kwargs built here in C. */
#include "json.h"
#include "json_check.h"
#include "runtime.h"
#include "soar.h"
#include "watchdog.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The Python signature's order, which positional arguments follow. */
static const char *const act_args[] = {
  "action", "parameters", "assets", "tags", "callback", "reviewer", "handle", "start_time",
  "name", "asset_type", "app", "parent_action", "loop_state", NULL,
};

static int is_callable(lua_State *L, int idx) {
  if (lua_isfunction(L, idx)) return 1;
  if (luaL_getmetafield(L, idx, "__call") == LUA_TNIL) return 0;
  lua_pop(L, 1);
  return 1;
}

/* [-0, +1, e] kw.parameters as a list of parameter tables */
static void get_parameters(lua_State *L) {
  int t = lua_getfield(L, 1, "parameters");
  if (t == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    return;
  }
  if (t != LUA_TTABLE)
    lsr_argerror(L, "phantom.act", "parameters", "expected a list of tables, got %s", luaL_typename(L, -1));
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  if (n == 0) {
    lua_pushnil(L);
    if (lua_next(L, -2)) { /* one parameter table given without a list around it */
      lua_pop(L, 2);
      lua_createtable(L, 1, 0);
      lua_insert(L, -2);
      lua_rawseti(L, -2, 1);
    }
    return;
  }
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TTABLE)
      lsr_argerror(L, "phantom.act", "parameters", "item %d: expected a table, got %s", (int)i,
                   luaL_typename(L, -1));
    lua_pop(L, 1);
  }
}

/* A list of strings, or one string, in kw[key]: the strings, NULL-terminated
 * (malloc'd array; the strings stay owned by Lua on the stack). */
static const char **string_list(lua_State *L, const char *key) {
  int t = lua_getfield(L, 1, key);
  const char **out = NULL;
  if (t == LUA_TNIL) { lua_pop(L, 1); return NULL; }
  if (t == LUA_TSTRING) {
    out = lsr_xalloc(2 * sizeof *out);
    out[0] = lua_tostring(L, -1);
    lua_pop(L, 1); /* kw keeps the string alive */
    return out;
  }
  if (t != LUA_TTABLE) lsr_argerror(L, "phantom.act", key, "expected a list of names, got %s", luaL_typename(L, -1));
  lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
  out = lsr_xalloc((n + 1) * sizeof *out);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -1, i) != LUA_TSTRING) {
      free(out);
      lsr_argerror(L, "phantom.act", key, "item %d: expected a name, got %s", (int)i, luaL_typename(L, -1));
    }
    out[i - 1] = lua_tostring(L, -1);
    lua_pop(L, 1); /* the list in kw keeps it alive */
  }
  lua_pop(L, 1);
  return out;
}

static int has_tag(const lsr_asset *a, const char **tags) {
  for (int i = 0; tags[i]; i++)
    for (int j = 0; a->tags && a->tags[j]; j++)
      if (strcmp(a->tags[j], tags[i]) == 0) return 1;
  return 0;
}

/* Can the asset run the action?  Its app declares it, or (in a test) the
 * app is not installed and a stub stands in. */
static int can_run(lsr_engine *eng, const lsr_asset *a, const char *action) {
  if (lsr_app_action(a->app, action)) return 1;
  return a->app->runner == LSR_RUNNER_STUB && eng->test && eng->test->stub_for(eng->test->ud, action, a);
}

/* The assets an action runs on, in the assets file's order, or an error. */
static lsr_asset **select_assets(lua_State *L, lsr_engine *eng, const char *action, int *count) {
  lsr_config *cfg = eng->cfg;
  int provided = 0;
  for (int i = 0; i < cfg->napps && !provided; i++) provided = lsr_app_action(&cfg->apps[i], action) != NULL;
  for (int i = 0; i < cfg->nassets && !provided; i++) provided = can_run(eng, &cfg->assets[i], action);
  if (!provided) lsr_error(L, "phantom.act: unknown action '%s' (no app provides it)", action);

  const char *app_name = NULL;
  int t = lua_getfield(L, 1, "app");
  if (t == LUA_TTABLE) {
    lua_getfield(L, -1, "name");
    app_name = lua_tostring(L, -1);
    lua_pop(L, 1);
  } else if (t == LUA_TSTRING) {
    app_name = lua_tostring(L, -1);
  }
  if (t != LUA_TNIL && !app_name) lsr_argerror(L, "phantom.act", "app", "expected {name = \"App name\"}");
  lua_pop(L, 1); /* kw keeps the name alive */
  if (app_name && !lsr_config_app(cfg, app_name)) lsr_argerror(L, "phantom.act", "app", "unknown app '%s'", app_name);

  const char **names = string_list(L, "assets");
  const char **tags = string_list(L, "tags");
  lsr_asset **sel = lsr_xalloc((cfg->nassets + 1) * sizeof *sel);
  int n = 0;
  char why[512] = "";
  if (names) {
    for (int i = 0; names[i] && !why[0]; i++) {
      lsr_asset *a = lsr_config_asset(cfg, names[i]);
      if (!a) snprintf(why, sizeof why, "unknown asset '%s'", names[i]);
      else if (!can_run(eng, a, action))
        snprintf(why, sizeof why, "asset '%s' (app '%s') has no action '%s'", a->name, a->app->name, action);
      else if (app_name && strcmp(a->app->name, app_name) != 0)
        snprintf(why, sizeof why, "asset '%s' is of app '%s', not '%s'", a->name, a->app->name, app_name);
      else if (tags && !has_tag(a, tags))
        continue;
      else {
        int dup = 0;
        for (int j = 0; j < n; j++) dup |= sel[j] == a;
        if (!dup) sel[n++] = a;
      }
    }
  } else {
    for (int i = 0; i < cfg->nassets; i++) {
      lsr_asset *a = &cfg->assets[i];
      if (can_run(eng, a, action) && (!app_name || strcmp(a->app->name, app_name) == 0) &&
          (!tags || has_tag(a, tags)))
        sel[n++] = a;
    }
  }
  if (!why[0] && n == 0)
    snprintf(why, sizeof why, "no asset%s%s%s%s can run action '%s'", app_name ? " of app '" : "",
             app_name ? app_name : "", app_name ? "'" : "", tags ? " with the given tags" : "", action);
  free(names);
  free(tags);
  if (why[0]) {
    free(sel);
    lsr_error(L, "phantom.act: %s", why);
  }
  *count = n;
  return sel;
}

/* [-0, +1, e] The parameter table at idx copied as its JSON would cross (the
 * action's own snapshot: a value JSON cannot hold is refused here, and what
 * the playbook changes afterwards is not seen), its context completed:
 * {guid, artifact_id, parent_action_run}. */
static void snapshot_parameter(lua_State *L, lsr_engine *eng, int idx, int i, int64_t parent) {
  idx = lua_absindex(L, idx);
  int t = lua_getfield(L, idx, "context");
  if (t != LUA_TNIL && t != LUA_TTABLE)
    lsr_argerror(L, "phantom.act", "parameters", "item %d: 'context' must be a table", i);
  lua_pop(L, 1);
  char err[256];
  if (lsr_json_copy(L, idx, L, 0, err, sizeof err) < 0) luaL_error(L, "%s", err);
  if (lsr_json_is_array(L, -1)) { /* a list given: with its context it is an object */
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    lua_createtable(L, 0, (int)n + 1);
    for (lua_Integer k = 1; k <= n; k++) {
      lua_pushfstring(L, "%I", (LUAI_UACINT)k);
      lua_rawgeti(L, -3, k);
      lua_rawset(L, -3);
    }
    lua_remove(L, -2);
  }
  if (lua_getfield(L, -1, "context") != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, "context");
  }
  char guid[37];
  lsr_guid(eng, guid);
  lua_pushstring(L, guid);
  lua_setfield(L, -2, "guid");
  if (parent) {
    lua_pushinteger(L, parent);
    lua_setfield(L, -2, "parent_action_run");
  }
  lua_pop(L, 1);
}

/* [-0, +1, e] stack: the parameter list, item, parent. */
static int snapshot_protected(lua_State *L) {
  lsr_engine *eng = lsr_engine_of(L);
  int i = (int)lua_tointeger(L, 2);
  lua_rawgeti(L, 1, i);
  snapshot_parameter(L, eng, -1, i, lua_tointeger(L, 3));
  return 1;
}

/* The JSON of parameter set i (from 0) of ar, encoded the first time it is
 * asked for (by the store, an exec app, a SOAR worker, the test kit). */
static int encode_param(lua_State *L) {
  lsr_action_run *ar = lua_touserdata(L, 1);
  lsr_getref(L, ar->param_ref);
  lua_rawgeti(L, -1, (lua_Integer)lua_tointeger(L, 2) + 1);
  lsr_json_encode(L, -1, 1); /* lenient: never refuses (the snapshot was checked) */
  return 1;
}

const char *lsr_act_param_json(lsr_action_run *ar, int i) {
  if (!ar->params[i]) {
    /* protected: the engine's state may be out of memory here, where no
     * Lua call would catch the error (then {} stands in for the set) */
    lua_State *L = ar->eng->L;
    lua_pushcfunction(L, encode_param);
    lua_pushlightuserdata(L, ar);
    lua_pushinteger(L, i);
    int ok = lua_pcall(L, 2, 1, 0) == LUA_OK;
    ar->params[i] = lsr_strdup(ok ? lua_tostring(L, -1) : "{}");
    lua_pop(L, 1);
  }
  return ar->params[i];
}

/* [-0, +1, e] A fresh copy of parameter set i (from 0) of ar, pushed on L (any
 * state). */
void lsr_act_push_param(lua_State *L, lsr_action_run *ar, int i) {
  lua_State *E = ar->eng->L;
  char err[256];
  lsr_getref(E, ar->param_ref);
  lua_rawgeti(E, -1, i + 1);
  int rc = lsr_json_copy(E, -1, L, 0, err, sizeof err);
  if (rc == 0 && E == L) lua_replace(L, -3); /* the copy, above the list and the set */
  lua_pop(E, rc == 0 && E == L ? 1 : 2);
  if (rc < 0) luaL_error(L, "parameter set %d: %s", i + 1, err);
}

static const char *missing_required(lua_State *L, int param_idx, const lsr_action_def *def) {
  for (int k = 0; def->required && def->required[k]; k++) {
    lua_getfield(L, param_idx, def->required[k]);
    int absent = lua_isnil(L, -1) || (lua_islightuserdata(L, -1) && !lua_touserdata(L, -1)) ||
                 (lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) == 0);
    lua_pop(L, 1);
    if (absent) return def->required[k];
  }
  return NULL;
}

/* The name of the run's global that holds the callback at idx, if any: what
 * a run resumed after a restart would call. */
char *lsr_global_name(lua_State *L, lsr_run *run, int idx) {
  if (lua_isnil(L, idx)) return NULL;
  char *name = NULL;
  lsr_getref(L, run->env_ref);
  lua_pushnil(L);
  while (!name && lua_next(L, -2)) {
    if (lua_type(L, -2) == LUA_TSTRING && lua_rawequal(L, -1, idx)) name = lsr_strdup(lua_tostring(L, -2));
    lua_pop(L, 1);
  }
  lua_settop(L, lua_gettop(L) - (name ? 2 : 1));
  return name;
}

static void start_app_runs(void *ud) {
  lsr_action_run *ar = ud;
  ar->released = 1; /* from here a crash may leave app runs half done */
  if (ar->run && ar->eng->obs.persist) {
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)ar->id);
    ar->eng->obs.persist(ar->run, "released", id, "true", ar->eng->obs.ud);
  }
  for (int k = 0; k < ar->napp_runs; k++) lsr_engine_push(ar->eng, &ar->app_runs[k].task);
  if (ar->napp_runs == 0) lsr_results_action_done(ar->eng, ar);
}

/* The app runs go: now, or at start_time. */
void lsr_act_release(lsr_engine *eng, lsr_action_run *ar) {
  ar->awaiting_approval = 0;
  if (ar->start_time > lsr_clock(eng)) lsr_timer_at(eng, ar->start_time, start_app_runs, ar);
  else start_app_runs(ar);
}

/* internal.approve(action_run_id, ok, message): the reviewer's answer. */
static int l_approve(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "internal.approve");
  lua_Integer id = luaL_checkinteger(L, 1);
  int ok = lua_toboolean(L, 2);
  const char *msg = luaL_optstring(L, 3, "denied by the reviewer");
  for (lsr_action_run *ar = run->actions; ar; ar = ar->next) {
    if (ar->id != id || !ar->awaiting_approval) continue;
    if (ok) {
      lsr_act_release(run->eng, ar);
    } else { /* the app runs end unrun, from the queue */
      ar->denied = lsr_strdup(msg);
      ar->start_time = 0;
      lsr_act_release(run->eng, ar);
    }
    return 0;
  }
  return 0;
}

static int l_act(lua_State *L) {
  lsr_run *run = lsr_run_check(L, "phantom.act");
  lsr_engine *eng = run->eng;
  lsr_args(L, "phantom.act", act_args, act_args);
  /* stack: kw */
  if (lua_getfield(L, 1, "action") != LUA_TSTRING)
    lsr_argerror(L, "phantom.act", "action", "expected an action name, got %s", luaL_typename(L, -1));
  const char *action = lua_tostring(L, -1); /* 2 */
  int t = lua_getfield(L, 1, "name");       /* 3 */
  if (t != LUA_TNIL && t != LUA_TSTRING)
    lsr_argerror(L, "phantom.act", "name", "expected a string, got %s", luaL_typename(L, -1));
  const char *name = t == LUA_TSTRING ? lua_tostring(L, -1) : action;
  t = lua_getfield(L, 1, "callback");       /* 4 */
  if (t != LUA_TNIL && !is_callable(L, -1))
    lsr_argerror(L, "phantom.act", "callback", "expected a function, got %s", luaL_typename(L, -1));
  if (lua_getfield(L, 1, "asset_type") != LUA_TNIL)
    lsr_argerror(L, "phantom.act", "asset_type", "is not supported by this version of luasoar");
  lua_pop(L, 1);
  double start_time = 0;
  t = lua_getfield(L, 1, "start_time");
  if (t == LUA_TNUMBER) start_time = lua_tonumber(L, -1);
  else if (t != LUA_TNIL)
    lsr_argerror(L, "phantom.act", "start_time", "expected a time in seconds since the epoch (os.time() + delay), got %s",
                 luaL_typename(L, -1));
  lua_pop(L, 1);
  const char *reviewer = NULL;
  t = lua_getfield(L, 1, "reviewer");
  if (t == LUA_TSTRING && lua_rawlen(L, -1) > 0) reviewer = lua_tostring(L, -1); /* kw keeps it */
  else if (t != LUA_TNIL && t != LUA_TSTRING)
    lsr_argerror(L, "phantom.act", "reviewer", "expected a user or role name, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
  const char *loop_state = NULL;
  t = lua_getfield(L, 1, "loop_state");
  if (t == LUA_TSTRING) {
    /* a loop's later iterations wait delay_time seconds (reference §5.1.12) */
    char err[128];
    size_t n;
    loop_state = lua_tolstring(L, -1, &n);
    if (lsr_json_decode(L, loop_state, n, err, sizeof err) < 0 || !lua_istable(L, -1))
      lsr_argerror(L, "phantom.act", "loop_state", "not the JSON of a LoopState: %s", err);
    lua_getfield(L, -1, "current_iteration");
    lua_getfield(L, -2, "delay_time");
    if (lua_tonumber(L, -2) > 1 && lua_tonumber(L, -1) > 0 && start_time == 0)
      start_time = lsr_clock(eng) + lua_tonumber(L, -1);
    lua_pop(L, 3);
  } else if (t != LUA_TNIL) {
    lsr_argerror(L, "phantom.act", "loop_state", "expected the JSON string of a LoopState (loop_state:to_json())");
  }
  lua_pop(L, 1);
  int64_t parent = 0;
  t = lua_getfield(L, 1, "parent_action");
  if (t == LUA_TTABLE) {
    lua_getfield(L, -1, "action_run_id");
    parent = lua_tointeger(L, -1);
    lua_pop(L, 1);
  } else if (t != LUA_TNIL) {
    lsr_argerror(L, "phantom.act", "parent_action", "expected the action table of a callback");
  }
  lua_pop(L, 1);
  get_parameters(L);                        /* 5 */
  int nparams = (int)lua_rawlen(L, 5);
  int nassets;
  lsr_asset **assets = select_assets(L, eng, action, &nassets);
  /* snapshot every parameter set; a value JSON cannot hold is an error here */
  lua_createtable(L, nparams, 0);            /* 6 */
  for (int i = 1; i <= nparams; i++) {
    lua_pushcfunction(L, snapshot_protected);
    lua_pushvalue(L, 5);
    lua_pushinteger(L, i);
    lua_pushinteger(L, parent);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
      free(assets);
      const char *e = lua_tostring(L, -1);
      if (e && strncmp(e, "phantom.act", 11) == 0) lua_error(L);
      lsr_argerror(L, "phantom.act", "parameters", "item %d: %s", i, e ? e : "cannot encode");
    }
    lua_rawseti(L, 6, i);
  }

  /* what the store keeps of the handle */
  char *handle_json = NULL;
  if (eng->obs.on_action) {
    lua_getfield(L, 1, "handle");
    lsr_json_encode(L, -1, 1);
    handle_json = lsr_strdup(lua_tostring(L, -1));
    lua_pop(L, 2);
  }
  /* set_action_limit and discontinue may refuse it (the hook logs why) */
  lsr_push_state(L, run);
  lua_pushstring(L, name);
  lsr_hook(L, "act_allowed", 2, 1);
  if (!lua_toboolean(L, -1)) {
    free(assets);
    free(handle_json);
    lua_pushnil(L);
    return 1;
  }
  lua_pop(L, 1);

  /* all checked: nothing below raises */
  lsr_action_run *ar = lsr_xalloc(sizeof *ar);
  ar->task.kind = LSR_TASK_CALLBACK;
  ar->eng = eng;
  ar->cfg = eng->cfg;
  eng->cfg->refs++;
  ar->id = lsr_new_id(eng, LSR_ID_ACTION);
  ar->run = run;
  ar->action = lsr_strdup(action);
  ar->name = lsr_strdup(name);
  ar->parent_id = parent;
  ar->start_time = start_time;
  ar->awaiting_approval = reviewer != NULL;
  ar->loop_state = lsr_strdup(loop_state);
  ar->handle_json = handle_json;
  ar->reviewer = lsr_strdup(reviewer);
  ar->nparams = nparams;
  ar->params = lsr_xalloc((nparams + 1) * sizeof *ar->params); /* JSON made when asked for */
  lua_pushvalue(L, 6);
  ar->param_ref = lsr_ref(L);
  lua_settop(L, 5);
  ar->napp_runs = nparams ? nassets : 0;
  ar->app_runs = lsr_xalloc((ar->napp_runs + 1) * sizeof *ar->app_runs);
  for (int k = 0; k < ar->napp_runs; k++) {
    lsr_app_run *apr = &ar->app_runs[k];
    apr->task.kind = LSR_TASK_APP_RUN;
    apr->id = lsr_new_id(eng, LSR_ID_APP_RUN);
    apr->ar = ar;
    apr->asset = assets[k];
    apr->result_ref = LUA_NOREF;
    apr->sent = lsr_xalloc(nparams * sizeof *apr->sent);
    apr->missing = lsr_xalloc(nparams * sizeof *apr->missing);
    const lsr_action_def *def = lsr_app_action(assets[k]->app, action);
    for (int i = 0; i < nparams; i++) {
      lua_rawgeti(L, 5, i + 1);
      apr->missing[i] = def ? missing_required(L, -1, def) : NULL;
      lua_pop(L, 1);
      if (!apr->missing[i]) apr->sent[apr->nsent++] = i;
    }
  }
  free(assets);
  lua_getfield(L, 1, "handle");
  ar->handle_ref = lsr_ref(L);
  lua_pushvalue(L, 4);
  ar->callback_ref = lua_isnil(L, -1) ? (lua_pop(L, 1), LUA_NOREF) : lsr_ref(L);
  ar->callback_name = lsr_global_name(L, run, 4);
  if (!ar->callback_name && ar->callback_ref != LUA_NOREF && eng->obs.on_action)
    ar->callback_name = lsr_strdup("(anonymous)"); /* cannot be resumed after a restart */
  ar->next = run->actions;
  run->actions = ar;
  run->pending++;
  if (eng->obs.on_action_start) eng->obs.on_action_start(ar, eng->obs.ud); /* before a reviewer is asked */
  if (ar->awaiting_approval) {
    /* the app runs wait for the reviewer (the prelude asks, then calls
     * internal.approve) */
    lsr_push_state(L, run);
    lua_pushinteger(L, ar->id);
    lua_pushstring(L, ar->name);
    lua_pushstring(L, ar->action);
    lua_pushstring(L, reviewer);
    lsr_hook(L, "act_approval", 5, 0);
  } else {
    lsr_act_release(eng, ar);
  }
  if (eng->test && eng->test->on_action) eng->test->on_action(eng->test->ud, ar);
  if (eng->obs.on_action) eng->obs.on_action(ar, eng->obs.ud);
  lsr_push_state(L, run);
  lua_pushstring(L, ar->name);
  lua_pushinteger(L, ar->id);
  lsr_hook(L, "act_started", 3, 0);
  lua_pushinteger(L, ar->id);
  return 1;
}

void lsr_act_register(lua_State *L) {
  lua_pushcfunction(L, l_act);
  lua_setfield(L, -2, "act");
}

void lsr_act_register_internal(lua_State *L) {
  lua_pushcfunction(L, l_approve);
  lua_setfield(L, -2, "approve");
}

/* ---- starting app runs ---- */

static void exec_done(void *ud, int ok, const char *out, size_t len, const char *failure) {
  lsr_app_run *apr = ud;
  lsr_engine *eng = apr->ar->eng;
  apr->proc = NULL;
  eng->exec_running--;
  lsr_app_run_done(eng, apr, ok, out, len, failure);
  /* a slot is free: the oldest waiting app run goes (through the queue) */
  lsr_app_run *next = eng->exec_waiting;
  if (next) {
    eng->exec_waiting = next->waiting_next;
    if (!eng->exec_waiting) eng->exec_waiting_tail = NULL;
    next->waiting_next = NULL;
    lsr_engine_push(eng, &next->task);
  }
}

static char *exec_request(lsr_app_run *apr, size_t *len) {
  lsr_action_run *ar = apr->ar;
  char *action = lsr_json_quote(ar->action), *asset = lsr_json_quote(apr->asset->name);
  size_t n = strlen(action) + strlen(asset) + strlen(apr->asset->config_json) + 256;
  for (int i = 0; i < apr->nsent; i++) n += strlen(lsr_act_param_json(ar, apr->sent[i])) + 1;
  char *buf = lsr_xalloc(n);
  size_t o = (size_t)snprintf(buf, n, "{\"action\":%s,\"asset\":{\"name\":%s,\"id\":%lld,\"config\":%s},\"parameters\":[",
                              action, asset, (long long)apr->asset->id, apr->asset->config_json);
  for (int i = 0; i < apr->nsent; i++)
    o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? "," : "", lsr_act_param_json(ar, apr->sent[i]));
  o += (size_t)snprintf(buf + o, n - o, "],\"action_run_id\":%lld,\"app_run_id\":%lld}\n",
                        (long long)ar->id, (long long)apr->id);
  free(action);
  free(asset);
  *len = o;
  return buf;
}

/* "NAME=value" for each variable the manifest passes through */
static char **exec_env(const lsr_app *app) {
  size_t n = 0;
  while (app->env && app->env[n]) n++;
  char **env = lsr_xalloc((n + 1) * sizeof *env);
  for (size_t i = 0, j = 0; i < n; i++) {
    const char *v = getenv(app->env[i]);
    if (!v) continue;
    size_t l = strlen(app->env[i]) + strlen(v) + 2;
    env[j] = lsr_xalloc(l);
    snprintf(env[j++], l, "%s=%s", app->env[i], v);
  }
  return env;
}

void lsr_act_start_app_run(lsr_engine *eng, lsr_app_run *apr) {
  lsr_action_run *ar = apr->ar;
  const lsr_app *app = apr->asset->app;
  if (!ar->run || ar->run->failed) {
    lsr_app_run_done(eng, apr, 0, NULL, 0, "cancelled: the playbook run ended");
    return;
  }
  if (ar->denied) {
    lsr_app_run_done(eng, apr, 0, NULL, 0, ar->denied);
    return;
  }
  if (eng->test) {
    int stub = eng->test->stub_for(eng->test->ud, ar->action, apr->asset);
    if (stub) {
      eng->test->run_stub(eng->test->ud, apr, stub);
      return;
    }
  }
  if (app->runner == LSR_RUNNER_STUB) {
    char msg[512];
    snprintf(msg, sizeof msg, "no stub for action '%s' on asset '%s' (app '%s' is not installed)",
             ar->action, apr->asset->name, app->name);
    lsr_app_run_done(eng, apr, 0, NULL, 0, msg);
    return;
  }
  if (apr->nsent == 0) { /* every parameter set lacks a required parameter */
    lsr_app_run_done(eng, apr, 1, "{\"action_results\":[]}", 21, NULL);
    return;
  }
  if (app->runner == LSR_RUNNER_LUA) {
    lsr_lua_app_start(eng, apr);
    return;
  }
  if (app->runner == LSR_RUNNER_SOAR) { /* its own pool of warm workers */
    lsr_soar_start(eng, apr);
    return;
  }
  /* child processes are capped: each holds descriptors, and fork slows as
   * they add up; the others wait their turn in order */
  if (eng->exec_max && eng->exec_running >= eng->exec_max) {
    if (eng->exec_waiting_tail) eng->exec_waiting_tail->waiting_next = apr;
    else eng->exec_waiting = apr;
    eng->exec_waiting_tail = apr;
    return;
  }
  eng->exec_running++;
  const lsr_action_def *def = lsr_app_action(app, ar->action);
  lsr_exec_req req = {0};
  req.argv = app->command;
  req.env = exec_env(app);
  req.cwd = app->dir;
  char *input = exec_request(apr, &req.input_len);
  req.input = input;
  req.timeout = def && def->timeout > 0 ? def->timeout : app->timeout;
  req.max_output = eng->max_app_output;
  req.done = exec_done;
  req.ud = apr;
  apr->proc = lsr_exec_start(eng->loop, &req);
  free(input);
  lsr_strv_free(req.env);
}

/* ---- delivering a finished action run ---- */

/* On the run's thread: build kwargs and call the callback.
 * stack in: ar (light userdata) */
static int callback_block(lua_State *T) {
  lsr_action_run *ar = lua_touserdata(T, 1);
  lsr_run *run = ar->run;
  luaL_checkstack(T, 8, "callback");
  lsr_json_new_array(T, ar->napp_runs); /* results */
  for (int k = 0; k < ar->napp_runs; k++) {
    lsr_getref(T, ar->app_runs[k].result_ref);
    lua_rawseti(T, -2, k + 1);
  }
  int results = lua_gettop(T);
  /* the data API learns the results (datapaths by name, completed()); it
   * says whether to deliver them (not after discontinue()) */
  lsr_push_state(T, run);
  lua_pushstring(T, ar->name);
  lua_pushinteger(T, ar->id);
  lua_pushvalue(T, results);
  lsr_hook(T, "act_done", 4, 1);
  int deliver = lua_toboolean(T, -1);
  lua_pop(T, 1);
  if (!deliver || ar->callback_ref == LUA_NOREF) return 0;
  lsr_getref(T, ar->callback_ref);
  lua_createtable(T, 0, 5); /* stack: callback, kwargs */
  lua_createtable(T, 0, 4);
  lua_pushinteger(T, ar->id);
  lua_setfield(T, -2, "action_run_id");
  lua_pushstring(T, ar->action);
  lua_setfield(T, -2, "action_name");
  lua_pushstring(T, ar->action);
  lua_setfield(T, -2, "action");
  lua_pushstring(T, ar->name);
  lua_setfield(T, -2, "name");
  lua_setfield(T, -2, "action");
  lua_pushboolean(T, ar->success);
  lua_setfield(T, -2, "success");
  lsr_getref(T, run->container_ref);
  lua_setfield(T, -2, "container");
  lua_pushvalue(T, results);
  lua_setfield(T, -2, "results");
  lsr_getref(T, ar->handle_ref);
  lua_setfield(T, -2, "handle");
  if (ar->loop_state) {
    lua_pushstring(T, ar->loop_state);
    lua_setfield(T, -2, "loop_state_json");
  }
  lua_call(T, 1, 0);
  return 0;
}

void lsr_act_free(lsr_engine *eng, lsr_action_run *ar) {
  lua_State *L = eng->L;
  for (int k = 0; k < ar->napp_runs; k++) {
    lsr_unref(L, &ar->app_runs[k].result_ref);
    free(ar->app_runs[k].sent);
    free(ar->app_runs[k].missing);
  }
  free(ar->app_runs);
  lsr_unref(L, &ar->callback_ref);
  lsr_unref(L, &ar->handle_ref);
  lsr_unref(L, &ar->param_ref);
  for (int i = 0; i < ar->nparams; i++) free(ar->params[i]);
  free(ar->params);
  free(ar->name);
  free(ar->action);
  free(ar->callback_name);
  free(ar->loop_state);
  free(ar->denied);
  free(ar->handle_json);
  free(ar->reviewer);
  lsr_config_release(eng, ar->cfg);
  free(ar);
}

void lsr_act_dispatch(lsr_action_run *ar) {
  lsr_run *run = ar->run;
  lsr_engine *eng = ar->eng;
  if (!run) { /* its run ended while it was in flight */
    lsr_act_free(eng, ar);
    return;
  }
  for (lsr_action_run **p = &run->actions; *p; p = &(*p)->next)
    if (*p == ar) { *p = ar->next; break; }
  if (!run->failed) lsr_results_summarize(eng, ar);
  if (!run->failed && eng->obs.on_action_end) eng->obs.on_action_end(ar, eng->obs.ud);
  if (!run->failed) {
    lua_State *T = lsr_run_thread(run);
    lua_pushcfunction(T, callback_block);
    lua_pushlightuserdata(T, ar);
    lsr_run_resume(run, 1);
  }
  if (!run->failed && eng->obs.on_delivered) eng->obs.on_delivered(ar, eng->obs.ud);
  run->pending--;
  lsr_act_free(eng, ar);
  lsr_run_settle(run);
}
