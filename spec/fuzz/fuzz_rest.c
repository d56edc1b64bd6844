/* fuzz_rest.c: the bodies of the REST API's POST requests (serve/rest.c),
 * through the server's router with no HTTP in front (lsr_serve_test_open):
 * the first byte picks the endpoint, the rest is the body (or, first byte
 * 4-7 mod 8, the rest is a path below /rest/ for a GET).  Whatever the
 * input, the answer is a status the API documents with a JSON body (errors
 * say "failed"), and the engine drains every run it started. */
#include "fuzz_common.h"
#include "serve.h"
#include "store.h"
#include <sys/stat.h>

static void *srv;
static char dir[256];

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) abort();
  fputs(text, f);
  fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  char err[1024], path[512];
  snprintf(dir, sizeof dir, "/tmp/luasoar-fuzz-rest.XXXXXX");
  if (!mkdtemp(dir)) abort();
  snprintf(path, sizeof path, "%s/playbooks", dir);
  mkdir(path, 0700);
  snprintf(path, sizeof path, "%s/playbooks/p.lua", dir);
  write_file(path, "playbook_info = {labels = {\"*\"}, active = true}\n"
                   "function on_start(c)\n"
                   "  for _, row in ipairs(phantom.collect2{container = c, datapath = {\"artifact:*.cef\", \"artifact:*.id\"}}) do\n"
                   "    phantom.debug(row)\n"
                   "  end\n"
                   "  phantom.save_run_data{key = 'seen', value = c}\n"
                   "end\n");
  snprintf(path, sizeof path, "%s/store.db", dir);
  srv = lsr_serve_test_open(dir, path, err, sizeof err);
  if (!srv) {
    fprintf(stderr, "fuzz_rest: %s\n", err);
    abort();
  }
  return 0;
}

static const char *const urls[] = {"/rest/container", "/rest/artifact", "/rest/playbook_run",
                                   "/rest/prompt/1/answer"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!srv) LLVMFuzzerInitialize(NULL, NULL);
  if (size < 1) return 0;
  FUZZ_BEGIN(data, size, (void)0);
  char *out = NULL;
  if (data[0] % 8 >= 4) { /* a path: GET /rest/<the rest>, ids parsed strictly */
    char *url = lsr_xalloc(size + 8);
    memcpy(url, "/rest/", 6);
    memcpy(url + 6, data + 1, size - 1);
    unsigned status = lsr_serve_test_request(srv, "GET", url, "", 0, &out);
    FUZZ_CHECK(status == 200 || status == 400 || status == 404 || status == 405, "GET %s answered %u: %s", url,
               status, out);
    FUZZ_CHECK(out[0] == '{', "GET %s answered %u with a body that is no JSON object: %s", url, status, out);
    if (status != 200) FUZZ_CHECK(strstr(out, "\"failed\": true"), "an error without failed: %s", out);
    free(url);
    free(out);
    FUZZ_END();
    return 0;
  }
  const char *url = urls[data[0] % 4];
  unsigned status = lsr_serve_test_request(srv, "POST", url, (const char *)data + 1, size - 1, &out);
  FUZZ_CHECK(status == 200 || status == 400 || status == 404 || status == 503,
             "POST %s answered %u: %s", url, status, out);
  FUZZ_CHECK(out[0] == '{', "POST %s answered %u with a body that is no JSON object: %s", url, status, out);
  if (status != 200) FUZZ_CHECK(strstr(out, "\"failed\": true"), "an error without failed: %s", out);
  free(out);
  FUZZ_END();
  return 0;
}
