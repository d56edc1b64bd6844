/* fuzz_app_output.c: the app-output decoder and the kwargs builder,
 * lsr_app_run_done (bindings/results.c), fed what an app printed.
 *
 * The engine has one asset "a" of an app that is not installed (a stub-only
 * app); the test hooks stand in for it and hand the fuzz input back as the
 * app's output, synchronously.  The playbook acts on two parameter sets; its
 * callback checks the shape the decoder promises (whatever the app printed:
 * one canonical action result per parameter set, statuses and counts that
 * agree) and walks kw.results deeply, through datapaths and the results
 * helpers.  Each input must end in exactly one run end, the run succeeding
 * (the playbook's checks passed), with no live run or leaked ref left. */
#include "fuzz_common.h"

static const char playbook[] =
  "done = false\n"
  "local function walk(v, depth, seen)\n"
  "  if type(v) ~= 'table' or seen[v] then return 0 end\n"
  "  seen[v] = true\n"
  "  assert(depth < 200, 'results nest too deep')\n"
  "  local n = 1\n"
  "  for k, x in pairs(v) do n = n + walk(k, depth + 1, seen) + walk(x, depth + 1, seen) end\n"
  "  return n\n"
  "end\n"
  "local function shape(kw)\n"
  "  local rs = kw.results\n"
  "  assert(type(rs) == 'table' and #rs == 1, 'one app run')\n"
  "  local r = rs[1]\n"
  "  for _, f in ipairs({'action', 'app', 'asset', 'name', 'status', 'message'}) do\n"
  "    assert(type(r[f]) == 'string', 'results[1].' .. f .. ' is a ' .. type(r[f]))\n"
  "  end\n"
  "  for _, f in ipairs({'app_id', 'asset_id', 'app_run_id', 'action_run_id'}) do\n"
  "    assert(math.type(r[f]) == 'integer', 'results[1].' .. f .. ' is not an integer')\n"
  "  end\n"
  "  assert(r.action == 'x' and r.asset == 'a' and r.app == 'X', 'names')\n"
  "  local ars = r.action_results\n"
  "  assert(type(ars) == 'table' and #ars == 2, 'two action results')\n"
  "  local ok = 0\n"
  "  for i, ar in ipairs(ars) do\n"
  "    assert(ar.status == 'success' or ar.status == 'failed', 'status ' .. tostring(ar.status))\n"
  "    assert(type(ar.message) == 'string', 'message is a ' .. type(ar.message))\n"
  "    assert(type(ar.data) == 'table', 'data is a ' .. type(ar.data))\n"
  "    assert(type(ar.summary) == 'table', 'summary is a ' .. type(ar.summary))\n"
  "    assert(type(ar.parameter) == 'table' and ar.parameter.p == i, 'parameter.p')\n"
  "    assert(type(ar.parameter.context) == 'table' and type(ar.parameter.context.guid) == 'string', 'context.guid')\n"
  "    for j = 1, #ar.data do local _ = ar.data[j] end\n"
  "    if ar.status == 'success' then ok = ok + 1 end\n"
  "  end\n"
  "  assert(r.summary.total_objects == 2, 'total_objects')\n"
  "  assert(r.summary.total_objects_successful == ok, 'total_objects_successful')\n"
  "  assert((r.status == 'success') == (ok > 0), 'app run status ' .. r.status .. ' with ' .. ok .. ' successes')\n"
  "  assert(kw.success == (ok > 0), 'kw.success')\n"
  "  return ok\n"
  "end\n"
  "function cb(kw)\n"
  "  local ok = shape(kw)\n"
  "  walk(kw.results, 0, {})\n"
  "  assert(#phantom.parse_success(kw.results) >= 0)\n"
  "  assert(#phantom.parse_errors(kw.results) == 2 - ok, 'parse_errors')\n"
  "  phantom.get_successful_action_results_v2(kw.results)\n"
  "  local rows = phantom.collect2(kw.container, {'x:action_result.parameter.p', 'x:action_result.status',\n"
  "                                               'x:action_result.summary', 'x:action_result.message'})\n"
  "  assert(#rows == 2, 'collect2 rows: ' .. #rows)\n"
  "  phantom.collect2(kw.container, {'x:action_result.data.*', 'x:action_result.data.*.ip'})\n"
  "  phantom.collect2(kw.container, {'x:action_result.data.*.*.*', 'x:action_result.summary.*'})\n"
  "  phantom.collect(kw.container, 'x:action_result.data')\n"
  "  phantom.get_action_results{action_name = 'x'}\n"
  "  phantom.debug(kw.results)\n"
  "  local s = phantom.get_summary()\n"
  "  assert(#s.result == 1 and s.result[1].app_runs[1].status == kw.results[1].status, 'summary')\n"
  "  done = true\n"
  "end\n"
  "function on_start(c)\n"
  "  phantom.act('x', {parameters = {{p = 1}, {p = 2}}, assets = {'a'}, callback = cb})\n"
  "end\n"
  "function on_finish(c, summary)\n"
  "  assert(done, 'the callback did not complete')\n"
  "end\n";

static lsr_engine *eng;
static lsr_gen *gen;
static fuzz_run_result res;
static long base_refs;
static const uint8_t *fuzz_data;
static size_t fuzz_size;
static int stub_calls;

static int stub_for(void *ud, const char *action, const lsr_asset *asset) {
  return strcmp(action, "x") == 0;
}

static void run_stub(void *ud, lsr_app_run *apr, int stub) {
  stub_calls++;
  FUZZ_CHECK(apr->nsent == 2, "%d parameter sets sent", apr->nsent);
  lsr_app_run_done(eng, apr, 1, (const char *)fuzz_data, fuzz_size, NULL);
}

static lsr_test_hooks hooks = {.stub_for = stub_for, .run_stub = run_stub};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  eng = fuzz_engine(NULL, NULL, &res);
  eng->test = &hooks;
  char err[1024];
  static const char assets[] = "{\"a\": {\"app\": \"X\"}}";
  FUZZ_CHECK(lsr_config_add_assets(eng->cfg, assets, strlen(assets), "assets", 1, err, sizeof err) == 0,
             "assets: %s", err);
  const char *path = fuzz_write_tmp(playbook, ".lua");
  gen = lsr_gen_cached(eng, path, err, sizeof err);
  FUZZ_CHECK(gen, "playbook: %s", err);
  fuzz_tmp_cleanup();
  base_refs = eng->live_refs;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char container[] = "{\"id\": 7, \"artifacts\": [{\"id\": 1, \"cef\": {\"ip\": \"1.2.3.4\"}}]}";
  FUZZ_BEGIN(data, size, fuzz_settle(eng, &base_refs));
  char err[1024];
  memset(&res, 0, sizeof res);
  fuzz_data = data;
  fuzz_size = size;
  stub_calls = 0;
  lsr_run *run = lsr_run_json(eng, gen, container, strlen(container), "container", err, sizeof err);
  FUZZ_CHECK(run, "container: %s", err);
  lsr_engine_drain(eng);
  FUZZ_CHECK(stub_calls == 1, "the stub ran %d times", stub_calls);
  FUZZ_CHECK(res.ended == 1, "the run ended %d times", res.ended);
  FUZZ_CHECK(!res.failed, "the run failed: %s", res.error);
  fuzz_check_idle(eng, base_refs);
  fuzz_reset_store(eng);
  FUZZ_END();
  return 0;
}
