/* app_calls.c: what a SOAR connector asks of the engine while its app run is
 * in flight (engine/soar_runner.c passes the requests on): its container's
 * info, artifacts and containers to save.  The prelude's hooks.app_call
 * does the work as the run would (the same checks, ids and store writes as
 * phantom.add_artifact); the answer goes back to the worker as JSON. */
#include "json.h"
#include "runtime.h"
#include "soar.h"
#include "json_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* in: name, args JSON, container id; out: the reply as JSON */
static int app_call(lua_State *L) {
  char err[256];
  size_t len;
  const char *args = lua_tolstring(L, 2, &len);
  lsr_getref(L, lsr_engine_of(L)->hooks_ref);
  lua_getfield(L, -1, "app_call");
  lua_pushvalue(L, 1);
  if (lsr_json_decode(L, args, len, err, sizeof err) < 0) luaL_error(L, "arguments are not JSON: %s", err);
  lua_pushvalue(L, 3);
  lua_call(L, 3, 1);
  lsr_json_encode(L, -1, 1);
  return 1;
}

char *lsr_app_call(lsr_engine *eng, lsr_app_run *apr, const char *call, const char *args_json) {
  lsr_run *run = apr->ar->run;
  if (!run || run->state == LSR_RUN_ENDED) return lsr_strdup("{\"ok\":false,\"message\":\"the playbook run has ended\"}");
  lua_State *L = eng->L;
  lsr_run *outer = eng->current;
  eng->current = run; /* what it does is the run's: its store writes, its memory */
  lua_pushcfunction(L, app_call);
  lua_pushstring(L, call);
  lua_pushstring(L, args_json);
  lua_pushinteger(L, run->container_id);
  char *reply;
  if (lua_pcall(L, 3, 1, 0) == LUA_OK) {
    reply = lsr_strdup(lua_tostring(L, -1));
  } else {
    char *q = lsr_json_quote(lua_tostring(L, -1));
    size_t n = strlen(q) + 64;
    reply = lsr_xalloc(n);
    snprintf(reply, n, "{\"ok\":false,\"message\":%s}", q);
    free(q);
  }
  lua_pop(L, 1);
  eng->current = outer;
  return reply;
}
