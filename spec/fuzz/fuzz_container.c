/* fuzz_container.c: the container loader, lsr_run_json (bindings/run.c).
 *
 * The input is a container file.  One engine serves every input: the input
 * either is refused with a message, or starts a run of a small playbook that
 * walks the container, reads it through datapaths and logs it as JSON.  After
 * each input the engine is drained; then no run may be live, no registry ref
 * leaked, nothing queued, and a refused input must not have started a run. */
#include "fuzz_common.h"

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

static void cleanup(void) { /* after an ignored check (FUZZ_IGNORE) */
  lua_settop(eng->L, 0);
  lsr_engine_drain(eng);
  fuzz_reset_store(eng);
  base_refs = eng->live_refs;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  eng = fuzz_engine(playbook, &gen, &res);
  base_refs = eng->live_refs;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  FUZZ_BEGIN(data, size, cleanup());
  char err[1024] = "";
  memset(&res, 0, sizeof res);
  int64_t next_id = eng->next_run_id;
  lsr_run *run = lsr_run_json(eng, gen, (const char *)data, size, "fuzz.json", err, sizeof err);
  if (!run) {
    FUZZ_CHECK(err[0], "refused without a message");
    FUZZ_CHECK(strncmp(err, "fuzz.json: ", 11) == 0, "message does not name the input: %s", err);
    FUZZ_CHECK(eng->live_runs == 0 && eng->next_run_id == next_id, "refused, yet a run was created");
    FUZZ_CHECK(lua_gettop(eng->L) == 0, "refused input left %d values on the stack", lua_gettop(eng->L));
  } else {
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
