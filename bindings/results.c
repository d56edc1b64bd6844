/* results.c: from an app's output to its element of the callback's
 * `results`, and from a finished action run to its get_summary() entry.
 *
 * App output is untrusted: anything that is not {"action_results": [...]}
 * with one well-formed result per parameter set sent fails the whole app run
 * with a message that says what is wrong.  Everything here runs in protected
 * calls on the engine's main thread, never inside a playbook block. */
#include "json.h"
#include "runtime.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* [-0, +0, e] Raise "app output is not the expected JSON: ..." */
static int bad_output(lua_State *L, const char *fmt, int i, const char *extra) {
  if (i > 0) return luaL_error(L, "app output is not the expected JSON: action_results[%d]: %s%s", i, fmt, extra);
  return luaL_error(L, "app output is not the expected JSON: %s%s", fmt, extra);
}

/* [-0, +1, e] Decode the app output. */
static void decode_output(lua_State *L, const char *out, size_t len) {
  char err[256];
  if (len == 0) bad_output(L, "the app printed nothing", 0, "");
  if (lsr_json_decode(L, out, len, err, sizeof err) < 0) {
    char quote[100];
    size_t q = len < 60 ? len : 60, j = 0;
    for (size_t i = 0; i < q; i++) quote[j++] = (out[i] >= 32 && out[i] < 127) ? out[i] : '.';
    quote[j] = 0;
    luaL_error(L, "app output is not JSON (%s): '%s%s'", err, quote, len > q ? "..." : "");
  }
}

/* [-1, +1, e] Check the decoded app output on top.  Leaves its action_results. */
static void check_output(lua_State *L, int nsent) {
  if (!lua_istable(L, -1) || lsr_json_is_array(L, -1)) bad_output(L, "expected an object", 0, "");
  if (lua_getfield(L, -1, "action_results") == LUA_TNIL) bad_output(L, "no 'action_results' field", 0, "");
  if (!lsr_json_is_array(L, -1)) bad_output(L, "'action_results' is not a list", 0, "");
  int n = (int)lua_rawlen(L, -1);
  if (n != nsent)
    luaL_error(L, "app output is not the expected JSON: %d action_results for %d parameter sets", n, nsent);
  lua_remove(L, -2);
}

static int is_empty(lua_State *L, int idx) {
  lua_pushnil(L);
  if (!lua_next(L, idx < 0 ? idx - 1 : idx)) return 1;
  lua_pop(L, 2);
  return 0;
}

/* [-0, +1, e] One action result: the app's (at idx, or none) made canonical. */
static int action_result(lua_State *L, int idx, int i, lsr_action_run *ar, int pi,
                         const char *fail_msg, int own_param) {
  lua_createtable(L, 0, 5);
  int status_ok = 0;
  if (idx) {
    if (!lua_istable(L, idx) || lsr_json_is_array(L, idx)) bad_output(L, "expected an object", i, "");
    lua_getfield(L, idx, "status");
    const char *st = lua_tostring(L, -1);
    if (lua_type(L, -1) != LUA_TSTRING || (strcmp(st, "success") != 0 && strcmp(st, "failed") != 0))
      bad_output(L, "'status' must be \"success\" or \"failed\"", i, "");
    status_ok = strcmp(st, "success") == 0;
    lua_setfield(L, -2, "status");
    int t = lua_getfield(L, idx, "message");
    if (t == LUA_TNIL || (t == LUA_TLIGHTUSERDATA && !lua_touserdata(L, -1))) {
      lua_pop(L, 1);
      lua_pushliteral(L, "");
    } else if (t != LUA_TSTRING) {
      bad_output(L, "'message' must be a string", i, "");
    }
    lua_setfield(L, -2, "message");
    /* an empty table is written {} by Lua apps and lua-cjson: read it as [] */
    t = lua_getfield(L, idx, "data");
    if (t == LUA_TNIL || (t == LUA_TTABLE && !lsr_json_is_array(L, -1) && is_empty(L, -1))) {
      lua_pop(L, 1);
      lsr_json_new_array(L, 0);
    } else if (!lsr_json_is_array(L, -1)) {
      bad_output(L, "'data' must be a list", i, "");
    }
    lua_setfield(L, -2, "data");
    t = lua_getfield(L, idx, "summary");
    if (t == LUA_TNIL || (lsr_json_is_array(L, -1) && is_empty(L, -1))) {
      lua_pop(L, 1);
      lua_newtable(L);
    } else if (t != LUA_TTABLE || lsr_json_is_array(L, -1)) {
      bad_output(L, "'summary' must be an object", i, "");
    }
    lua_setfield(L, -2, "summary");
  } else {
    lua_pushliteral(L, "failed");
    lua_setfield(L, -2, "status");
    lua_pushstring(L, fail_msg);
    lua_setfield(L, -2, "message");
    lsr_json_new_array(L, 0);
    lua_setfield(L, -2, "data");
    lua_newtable(L);
    lua_setfield(L, -2, "summary");
  }
  /* a SOAR connector's parameter is what it set (set_param), as in SOAR */
  if (own_param && lua_getfield(L, idx, "parameter") == LUA_TTABLE && !lsr_json_is_array(L, -1)) {
    lua_setfield(L, -2, "parameter");
    return status_ok;
  }
  if (own_param) lua_pop(L, 1);
  lsr_act_push_param(L, ar, pi);
  lua_setfield(L, -2, "parameter");
  return status_ok;
}

/* A SOAR connector's password parameters, in the result on top: the worker
 * hides them in what it returns, this in the results the engine builds
 * (a crash, a timeout, a missing parameter). */
static void mask_secrets(lua_State *L, const lsr_app_run *apr) {
  const lsr_action_def *def = lsr_app_action(apr->asset->app, apr->ar->action);
  if (apr->asset->app->runner != LSR_RUNNER_SOAR || !def || !def->secrets || !def->secrets[0]) return;
  lua_getfield(L, -1, "parameter");
  for (int k = 0; lua_istable(L, -1) && def->secrets[k]; k++) {
    if (lua_getfield(L, -1, def->secrets[k]) == LUA_TSTRING && lua_rawlen(L, -1) > 0) {
      lua_pushliteral(L, "********");
      lua_setfield(L, -3, def->secrets[k]);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* Build the element of `results` for one app run.
 * in: apr (light userdata), ok (boolean), output or failure (string) */
static int build_element(lua_State *L) {
  lsr_app_run *apr = lua_touserdata(L, 1);
  lsr_action_run *ar = apr->ar;
  int ok = lua_toboolean(L, 2);
  size_t len = 0;
  const char *text = lua_type(L, 3) == LUA_TSTRING ? lua_tolstring(L, 3, &len) : NULL;
  const char *failure = ok ? NULL : text;
  char msg[160];
  luaL_checkstack(L, 10, "results");
  lua_settop(L, 3);
  lua_pushnil(L);                     /* 4: the app's action_results */
  if (ok && apr->nsent > 0) {
    if (text) decode_output(L, text, len);
    else lua_pushvalue(L, 3);         /* a Lua app's output, copied as its JSON decodes */
    check_output(L, apr->nsent);
    lua_replace(L, 4);
  }
  lua_createtable(L, 0, 12);          /* 5: the element */
  lsr_json_new_array(L, ar->nparams); /* 6: action_results */
  int successes = 0, j = 0;
  for (int i = 0; i < ar->nparams; i++) {
    if (apr->missing[i]) {
      snprintf(msg, sizeof msg, "missing required parameter '%s'", apr->missing[i]);
      action_result(L, 0, i + 1, ar, i, msg, 0);
    } else if (failure) {
      action_result(L, 0, i + 1, ar, i, failure, 0);
    } else {
      lua_rawgeti(L, 4, ++j);
      successes += action_result(L, lua_gettop(L), j, ar, i, NULL,
                                 apr->asset->app->runner == LSR_RUNNER_SOAR);
      lua_remove(L, -2);
    }
    mask_secrets(L, apr);
    lua_rawseti(L, 6, i + 1);
  }
  lua_setfield(L, 5, "action_results");
  lua_pushstring(L, ar->action);
  lua_setfield(L, 5, "action");
  lua_pushstring(L, apr->asset->app->name);
  lua_setfield(L, 5, "app");
  if (apr->asset->app->app_uid) lua_pushstring(L, apr->asset->app->app_uid); /* a SOAR appid */
  else lua_pushinteger(L, apr->asset->app->app_id);
  lua_setfield(L, 5, "app_id");
  lua_pushstring(L, apr->asset->name);
  lua_setfield(L, 5, "asset");
  lua_pushinteger(L, apr->asset->id);
  lua_setfield(L, 5, "asset_id");
  lua_pushstring(L, ar->name);
  lua_setfield(L, 5, "name");
  lua_pushinteger(L, apr->id);
  lua_setfield(L, 5, "app_run_id");
  lua_pushinteger(L, ar->id);
  lua_setfield(L, 5, "action_run_id");
  lua_pushstring(L, successes ? "success" : "failed");
  lua_setfield(L, 5, "status");
  if (failure) {
    lua_pushstring(L, failure);
  } else if (ar->nparams == 1) {
    lua_getfield(L, 5, "action_results");
    lua_rawgeti(L, -1, 1);
    lua_getfield(L, -1, "message");
    lua_replace(L, -3);
    lua_pop(L, 1);
  } else {
    lua_pushfstring(L, "%d of %d actions succeeded", successes, ar->nparams);
  }
  lua_setfield(L, 5, "message");
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, ar->nparams);
  lua_setfield(L, -2, "total_objects");
  lua_pushinteger(L, successes);
  lua_setfield(L, -2, "total_objects_successful");
  lua_setfield(L, 5, "summary");
  apr->successes = successes;
  apr->failed_whole = failure != NULL;
  lua_pushvalue(L, 5);
  apr->result_ref = lsr_ref(L);
  return 0;
}

static int encode_top(lua_State *L) {
  lsr_json_encode(L, 1, 1);
  return 1;
}

static void app_run_done(lsr_engine *eng, lsr_app_run *apr, int ok, const char *out,
                         size_t len, const char *failure, int out_ref);

void lsr_app_run_done(lsr_engine *eng, lsr_app_run *apr, int ok, const char *out,
                              size_t len, const char *failure) {
  app_run_done(eng, apr, ok, out, len, failure, LUA_NOREF);
}

void lsr_app_run_done_ref(lsr_engine *eng, lsr_app_run *apr, int ref) {
  app_run_done(eng, apr, 1, NULL, 0, NULL, ref);
}

/* The end of an app run: its output as text (out, len), or as a value of
 * the engine's state (out_ref), or why it failed. */
static void app_run_done(lsr_engine *eng, lsr_app_run *apr, int ok, const char *out,
                         size_t len, const char *failure, int out_ref) {
  lsr_action_run *ar = apr->ar;
  lua_State *L = eng->L;
  apr->done = 1;
  apr->proc = NULL;
  if (ar->run && !ar->run->failed) {
    lua_pushcfunction(L, build_element);
    lua_pushlightuserdata(L, apr);
    lua_pushboolean(L, ok);
    if (out_ref != LUA_NOREF) lsr_getref(L, out_ref);
    else if (ok) lua_pushlstring(L, out, len);
    else lua_pushstring(L, failure);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
      /* the output was malformed: the app run fails with the reason */
      char *why = lsr_strdup(lua_tostring(L, -1));
      lua_pop(L, 1);
      lua_pushcfunction(L, build_element);
      lua_pushlightuserdata(L, apr);
      lua_pushboolean(L, 0);
      lua_pushstring(L, why);
      free(why);
      if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        lsr_run_fail(ar->run, lua_tostring(L, -1));
        lua_pop(L, 1);
      }
    }
  }
  if (eng->obs.on_app_run && apr->result_ref != LUA_NOREF) {
    lsr_getref(L, apr->result_ref);
    lua_pushcfunction(L, encode_top);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) eng->obs.on_app_run(apr, lua_tostring(L, -1), eng->obs.ud);
    lua_pop(L, 1);
  }
  if (out_ref != LUA_NOREF) lsr_unref(L, &out_ref);
  if (++ar->ndone == ar->napp_runs) lsr_results_action_done(eng, ar);
}

/* Append the action run's entry to the run's summary.result. */
static int summary_entry(lua_State *L) {
  lsr_action_run *ar = lua_touserdata(L, 1);
  lsr_getref(L, ar->run->summary_ref);
  lua_getfield(L, -1, "result");                 /* 3 */
  lua_createtable(L, 0, 6);                      /* 4 */
  lua_pushinteger(L, ar->id);
  lua_setfield(L, 4, "action_run_id");
  lua_pushstring(L, ar->name);
  lua_setfield(L, 4, "name");
  lua_pushstring(L, ar->action);
  lua_setfield(L, 4, "action");
  lua_pushstring(L, ar->success ? "success" : "failed");
  lua_setfield(L, 4, "status");
  int ok_runs = 0;
  lsr_json_new_array(L, ar->napp_runs);          /* 5 */
  for (int k = 0; k < ar->napp_runs; k++) {
    lsr_app_run *apr = &ar->app_runs[k];
    ok_runs += apr->successes > 0;
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, apr->id);
    lua_setfield(L, -2, "app_run_id");
    lua_pushstring(L, apr->asset->app->name);
    lua_setfield(L, -2, "app");
    lua_pushstring(L, apr->asset->name);
    lua_setfield(L, -2, "asset");
    lsr_getref(L, apr->result_ref);              /* the element */
    static const char *const copied[] = {"status", "message", "summary", NULL};
    for (const char *const *f = copied; *f; f++) {
      lua_getfield(L, -1, *f);
      lua_setfield(L, -3, *f);
    }
    lua_getfield(L, -1, "action_results");       /* parameter: the first set's */
    lua_rawgeti(L, -1, 1);
    lua_getfield(L, -1, "parameter");
    lua_setfield(L, -5, "parameter");
    lua_pop(L, 3);
    lua_rawseti(L, 5, k + 1);
  }
  lua_setfield(L, 4, "app_runs");
  if (ar->nparams == 0)
    lua_pushliteral(L, "no parameters: nothing to run");
  else
    lua_pushfstring(L, "%d of %d app runs succeeded", ok_runs, ar->napp_runs);
  lua_setfield(L, 4, "message");
  lua_rawseti(L, 3, (lua_Integer)lua_rawlen(L, 3) + 1);
  return 0;
}

void lsr_results_action_done(lsr_engine *eng, lsr_action_run *ar) {
  if (!ar->run) { /* nobody waits for it any more */
    lsr_act_free(eng, ar);
    return;
  }
  ar->success = 0;
  for (int k = 0; k < ar->napp_runs; k++) ar->success |= ar->app_runs[k].successes > 0;
  lsr_engine_push(eng, &ar->task);
}

void lsr_results_summarize(lsr_engine *eng, lsr_action_run *ar) {
  lua_State *L = eng->L;
  lua_pushcfunction(L, summary_entry);
  lua_pushlightuserdata(L, ar);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lsr_run_fail(ar->run, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
}

/* lsr_action_failures in protected mode: the text, built on the stack at 2 */
static int failures_text(lua_State *L) {
  lsr_action_run *ar = lua_touserdata(L, 1);
  lua_settop(L, 1);
  lua_pushliteral(L, "");
  for (int k = 0; k < ar->napp_runs; k++) {
    lsr_app_run *apr = &ar->app_runs[k];
    if (apr->result_ref == LUA_NOREF) continue;
    lsr_getref(L, apr->result_ref); /* 3: the element */
    if (apr->failed_whole) {
      lua_getfield(L, 3, "message");
      const char *m = lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) ? luaL_gsub(L, lua_tostring(L, -1), "\n", " ")
                                                                            : "failed";
      lua_pushfstring(L, "%s%s: %s\n", lua_tostring(L, 2), apr->asset->name, m);
      lua_replace(L, 2);
    } else {
      lua_getfield(L, 3, "action_results"); /* 4 */
      for (int i = 1; i <= (int)lua_rawlen(L, 4); i++) {
        lua_rawgeti(L, 4, i);
        lua_getfield(L, -1, "status");
        if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "success") != 0) {
          lua_getfield(L, -2, "message");
          const char *m = lua_type(L, -1) == LUA_TSTRING && lua_rawlen(L, -1) ? luaL_gsub(L, lua_tostring(L, -1), "\n", " ")
                                                                                : "failed"; /* one line each */
          lua_pushfstring(L, "%s%s, parameter set %d: %s\n", lua_tostring(L, 2), apr->asset->name, i, m);
          lua_replace(L, 2);
        }
        lua_settop(L, 4);
      }
    }
    lua_settop(L, 2);
  }
  return 1;
}

char *lsr_action_failures(lsr_action_run *ar) {
  lua_State *L = ar->eng->L;
  lua_pushcfunction(L, failures_text);
  lua_pushlightuserdata(L, ar);
  char *s = lsr_strdup(lua_pcall(L, 1, 1, 0) == LUA_OK ? lua_tostring(L, -1) : "");
  lua_pop(L, 1);
  return s;
}
