/* fuzz_container.c: the container loader, lsr_run_json (bindings/run.c).
 *
 * The input is a container file.  One engine serves every input: the input
 * either is refused with a message, or starts a run of a small playbook that
 * walks the container, reads it through datapaths and logs it as JSON.  After
 * each input the engine is drained; then no run may be live, no registry ref
 * leaked, nothing queued, and a refused input must not have started a run.
 *
 * Each verdict is checked against the document decoded apart (in a state of
 * its own): a refusal must be true of the document (an id said not to be an
 * integer is not one ...), and an accepted container's artifacts must be
 * objects. */
#include "fuzz_common.h"
#include "json.h"

static const char playbook[] =
  "function on_start(c)\n"
  "  assert(math.type(c.id) == 'integer', 'container id is not an integer')\n"
  "  local n = 0\n"
  "  for i, a in ipairs(c.artifacts) do\n"
  "    assert(math.type(a.id) == 'integer', 'artifact id is not an integer')\n"
  "    assert(a.container == c.id, 'artifact.container is not the container id')\n"
  "    n = i\n"
  "  end\n"
  "  assert(n == #c.artifacts)\n"
  "  phantom.collect2(c, {'artifact:*.id', 'artifact:*.cef.sourceAddress', 'artifact:*.name'})\n"
  "  phantom.collect(c, 'artifact:*.cef')\n"
  "  phantom.collect2(c, {'container:name'})\n"
  "  local copy = phantom.get_container(c.id)\n"
  "  assert(type(copy) == 'table' and copy.id == c.id, 'get_container')\n"
  "  phantom.debug(c)\n"
  "end\n";

static lsr_engine *eng;
static lsr_gen *gen;
static fuzz_run_result res;
static long base_refs;

static lua_State *V; /* decodes the input apart */

/* [-0, +1] t[key] where t is the table at idx (nil when idx is not an object) */
static int field_of(lua_State *L, int idx, const char *key) {
  if (!lua_istable(L, idx) || lsr_json_is_array(L, idx)) { lua_pushnil(L); return LUA_TNIL; }
  return lua_getfield(L, idx, key);
}

/* The verdict on the input (accepted, or err) agrees with the document. */
static void check_verdict(const uint8_t *data, size_t size, int accepted, const char *err) {
  char why[256];
  lua_settop(V, 0);
  if (lsr_json_decode(V, (const char *)data, size, why, sizeof why) < 0) {
    FUZZ_CHECK(!accepted, "accepted a document that does not decode: %s", why);
    FUZZ_CHECK(strstr(err, "invalid JSON at "), "invalid JSON refused as: %s", err);
    return;
  }
  int obj = lua_istable(V, 1) && !lsr_json_is_array(V, 1);
  int idt = field_of(V, 1, "id");                              /* 2 */
  int id_ok = idt == LUA_TNIL || lua_isinteger(V, 2);
  int art = field_of(V, 1, "artifacts");                       /* 3 */
  int list = lsr_json_is_array(V, 3);
  int empty_obj = 0;
  if (art == LUA_TTABLE && !list) {
    lua_pushnil(V);
    empty_obj = !lua_next(V, 3);
    lua_settop(V, 3);
  }
  int arts_ok = art == LUA_TNIL || list || empty_obj;
  int n = list ? (int)lua_rawlen(V, 3) : 0, bad_item = 0, bad_id = 0;
  for (int i = 1; i <= n && !bad_item && !bad_id; i++) {
    lua_rawgeti(V, 3, i);
    if (!lua_istable(V, -1) || lsr_json_is_array(V, -1)) bad_item = i;
    else if (field_of(V, -1, "id") != LUA_TNIL && (!lua_isinteger(V, -1) || lua_tointeger(V, -1) < 1)) bad_id = i;
    lua_settop(V, 3);
  }
  char expect[200];
  if (!obj) snprintf(expect, sizeof expect, "a container must be a JSON object");
  else if (!id_ok) snprintf(expect, sizeof expect, "field 'id': expected an integer");
  else if (!arts_ok) snprintf(expect, sizeof expect, "field 'artifacts': expected a list");
  else if (bad_item) snprintf(expect, sizeof expect, "artifacts[%d]: expected an object", bad_item);
  else if (bad_id) snprintf(expect, sizeof expect, "artifacts[%d].id: expected a positive integer", bad_id);
  else expect[0] = 0;
  if (accepted)
    FUZZ_CHECK(!expect[0], "accepted, yet %s", expect);
  else
    FUZZ_CHECK(expect[0] && strstr(err, expect), "refused as '%s'; %s%s", err,
               expect[0] ? "the document calls for: " : "nothing is wrong with the document", expect);
  lua_settop(V, 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  eng = fuzz_engine(playbook, &gen, &res);
  V = luaL_newstate();
  lsr_json_init(V);
  base_refs = eng->live_refs;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FUZZ_BEGIN(data, size, fuzz_settle(eng, &base_refs));
  char err[1024] = "";
  memset(&res, 0, sizeof res);
  int64_t next_id = eng->next_id[LSR_ID_RUN];
  lsr_run *run = lsr_run_json(eng, gen, (const char *)data, size, "fuzz.json", err, sizeof err);
  if (!run) {
    FUZZ_CHECK(err[0], "refused without a message");
    FUZZ_CHECK(strncmp(err, "fuzz.json: ", 11) == 0, "message does not name the input: %s", err);
    FUZZ_CHECK(eng->live_runs == 0 && eng->next_id[LSR_ID_RUN] == next_id, "refused, yet a run was created");
    FUZZ_CHECK(lua_gettop(eng->L) == 0, "refused input left %d values on the stack", lua_gettop(eng->L));
    check_verdict(data, size, 0, err);
  } else {
    check_verdict(data, size, 1, NULL);
    FUZZ_CHECK(eng->live_runs == 1, "%d live runs after lsr_run_json", eng->live_runs);
  }
  lsr_engine_drain(eng);
  if (run) {
    FUZZ_CHECK(res.ended == 1, "the run ended %d times", res.ended);
    /* the container was accepted: the playbook's own checks must hold */
    FUZZ_CHECK(!res.failed, "an accepted container failed the run: %s", res.error);
  }
  fuzz_check_idle(eng, base_refs);
  fuzz_reset_store(eng);
  FUZZ_END();
  return 0;
}
