/* soar_runner.c: runs SOAR connectors in long-lived Python workers.
 *
 * Each SOAR app has a pool of up to app->workers worker processes
 * (python/luasoar_worker.py under Debian's python3), started on first use
 * and kept warm; each runs one app run at a time, so that many are in flight
 * at once and the rest wait in order.  Requests and answers are lines
 * `KIND ID JSON` over the worker's stdin and stdout (the protocol is written
 * at the top of luasoar_worker.py); the connector's own prints go to its
 * stderr, of which the last bytes are kept for messages.
 *
 * A worker that dies (a crash, a fatal import error) fails only the app run
 * it had, with stderr's tail (the Python traceback), and a new one is
 * started for the next; a timeout kills its process group; a line that is
 * not the protocol, or one longer than the app output limit, kills it too.
 * An idle worker does not keep the loop alive.  No Lua here: what a
 * connector asks of the engine (artifacts, container info) goes through
 * lsr_app_call (bindings/). */
#include "engine.h"
#include "json_check.h"
#include "soar.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define SOAR_LOG_MAX 8192 /* bytes of one connector log line kept */

typedef struct soar_worker {
  struct lsr_soar_pool *pool; /* NULL once the pool is gone: it dies alone */
  lsr_exec_proc *proc;
  lsr_app_run *apr;           /* in flight */
  uv_timer_t timer;           /* its deadline */
  double timeout;
  char why[600];              /* why the engine stopped it */
} soar_worker;

struct lsr_soar_pool {
  lsr_engine *eng;
  lsr_app *app;
  soar_worker **w;
  int n;
  lsr_app_run *waiting, *waiting_tail;
};

/* ---- where the Python side is ---- */

const char *lsr_soar_shim_dir(void) {
  static char dir[4096];
  if (dir[0]) return dir;
  const char *env = getenv("LUASOAR_PYTHON_DIR");
  if (env && *env) return snprintf(dir, sizeof dir, "%s", env), dir;
  /* installed: <prefix>/bin/luasoar beside <prefix>/share/luasoar/python */
  char exe[3000];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      char probe[4200];
      snprintf(probe, sizeof probe, "%s/../share/luasoar/python/luasoar_worker.py", exe);
      if (access(probe, R_OK) == 0) return snprintf(dir, sizeof dir, "%s/../share/luasoar/python", exe), dir;
    }
  }
  return snprintf(dir, sizeof dir, "%s", LSR_PYTHON_SRC_DIR), dir; /* the source tree's */
}

/* ---- a worker ---- */

static void worker_free(uv_handle_t *h) { free(h->data); }

static void pool_next(struct lsr_soar_pool *pool);

/* The app run in flight ends: ok with the output, or failed with why. */
static void finish(soar_worker *w, int ok, const char *out, size_t len, const char *why) {
  lsr_app_run *apr = w->apr;
  if (!apr) return;
  w->apr = NULL;
  apr->proc = NULL;
  uv_timer_stop(&w->timer);
  if (w->proc) lsr_exec_hold(w->proc, 0);
  lsr_engine *eng = apr->ar->eng;
  lsr_app_run_done(eng, apr, ok, out, len, why);
}

/* Stop a worker for a reason of the engine's: its process group dies and
 * its app run fails with why (worker_gone). */
static void worker_stop(soar_worker *w, const char *why) {
  if (!w->why[0]) snprintf(w->why, sizeof w->why, "%s", why);
  if (w->proc) lsr_exec_kill(w->proc);
}

static void on_timeout(uv_timer_t *t) {
  soar_worker *w = t->data;
  char why[128];
  snprintf(why, sizeof why, "timed out after %gs (the worker was killed)", w->timeout);
  worker_stop(w, why);
}

/* The worker process is gone. */
static void worker_gone(void *ud, int ok, const char *out, size_t len, const char *failure) {
  soar_worker *w = ud;
  w->proc = NULL;
  if (w->apr) {
    char msg[2048];
    if (w->why[0])
      snprintf(msg, sizeof msg, "%s", w->why);
    else
      snprintf(msg, sizeof msg, "the connector's worker died during the action (%s)",
               failure ? failure : "it exited");
    finish(w, 0, NULL, 0, msg);
  }
  struct lsr_soar_pool *pool = w->pool;
  if (pool) { /* out of the pool; the next waiting run gets a new worker */
    for (int i = 0; i < pool->n; i++)
      if (pool->w[i] == w) pool->w[i] = pool->w[--pool->n];
  }
  uv_close((uv_handle_t *)&w->timer, worker_free);
  if (pool) pool_next(pool);
}

static void send_line(soar_worker *w, const char *kind, int64_t id, const char *json) {
  size_t n = strlen(json) + 64;
  char *line = lsr_xalloc(n);
  int len = snprintf(line, n, "%s %lld %s\n", kind, (long long)id, json);
  if (lsr_exec_write(w->proc, line, (size_t)len) < 0) lsr_exec_kill(w->proc); /* it is gone: its exit says why */
  free(line);
}

/* A `log` line: into the run's log at debug level, prefixed with the app. */
static void on_log(soar_worker *w, yajl_val v) {
  lsr_run *run = w->apr->ar->run;
  yajl_val level = lsr_json_field(v, "level"), msg = lsr_json_field(v, "message");
  if (!run || !YAJL_IS_STRING(msg)) return;
  const char *lv = YAJL_IS_STRING(level) ? level->u.string : "debug";
  char *line = lsr_xalloc(SOAR_LOG_MAX + 256);
  snprintf(line, SOAR_LOG_MAX + 256, "%s%s: %.*s", w->pool->app->name,
           strcmp(lv, "error") == 0 ? " error" : strcmp(lv, "progress") == 0 ? " progress" : "",
           SOAR_LOG_MAX, msg->u.string);
  lsr_run_log(run, LSR_LOG_DEBUG, line, strlen(line));
  free(line);
}

static void on_line(void *ud, char *line, size_t len) {
  soar_worker *w = ud;
  if (!w->pool) return; /* the app is unloaded: it is being stopped */
  char *sp1 = memchr(line, ' ', len);
  char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
  const char *kinds[] = {"ready", "log", "state", "call", "done", "fatal", NULL};
  int kind = -1;
  if (sp1 && sp2) {
    *sp1 = 0;
    for (int i = 0; kinds[i] && kind < 0; i++)
      if (strcmp(line, kinds[i]) == 0) kind = i;
  }
  char *end = NULL;
  long long id = sp2 ? strtoll(sp1 + 1, &end, 10) : -1;
  const char *json = sp2 ? sp2 + 1 : "";
  size_t jlen = sp2 ? len - (size_t)(json - line) : 0;
  int mine = kind == 0 || kind == 5 || (w->apr && id == w->apr->id);
  if (kind < 0 || end != sp2 || !mine) {
    char quote[80], why[200];
    size_t q = 0;
    if (sp1) *sp1 = ' ';
    for (size_t i = 0; i < len && q < 60; i++) quote[q++] = line[i] >= 32 && line[i] < 127 ? line[i] : '.';
    quote[q] = 0;
    snprintf(why, sizeof why, "the worker broke the protocol: '%s%s'", quote, len > 60 ? "..." : "");
    worker_stop(w, why);
    return;
  }
  if (kind == 4) { /* done: the output, checked by the engine like any app's */
    finish(w, 1, json, jlen, NULL);
    if (w->pool) pool_next(w->pool); /* (the app may have been unloaded meanwhile) */
    return;
  }
  if (kind == 0) return; /* ready */
  char err[200];
  yajl_val v = yajl_tree_parse(json, err, sizeof err);
  if (!YAJL_IS_OBJECT(v)) {
    yajl_tree_free(v);
    worker_stop(w, "the worker broke the protocol: a line whose payload is not a JSON object");
    return;
  }
  if (kind == 5) { /* fatal: it cannot run the connector (it exits) */
    yajl_val m = lsr_json_field(v, "message");
    snprintf(w->why, sizeof w->why, "the connector cannot start: %s (see `luasoar app check %s`)",
             YAJL_IS_STRING(m) ? m->u.string : "unknown error", w->pool->app->dir);
  } else if (kind == 1) {
    on_log(w, v);
  } else if (kind == 2) {
    yajl_val st = lsr_json_field(v, "state");
    char *text = st ? lsr_tree_to_json(st) : lsr_strdup("{}");
    lsr_app_state_save(w->pool->eng, w->apr, text);
    free(text);
  } else if (kind == 3) {
    yajl_val name = lsr_json_field(v, "call");
    yajl_val args = lsr_json_field(v, "args");
    char *atext = args ? lsr_tree_to_json(args) : lsr_strdup("{}");
    char *reply = lsr_app_call(w->pool->eng, w->apr, YAJL_IS_STRING(name) ? name->u.string : "", atext);
    send_line(w, "reply", w->apr->id, reply);
    free(reply);
    free(atext);
  }
  yajl_tree_free(v);
}

static void env_add(char **env, size_t *j, const char *name) {
  const char *v = getenv(name);
  if (!v) return;
  size_t l = strlen(name) + strlen(v) + 2;
  env[*j] = lsr_xalloc(l);
  snprintf(env[(*j)++], l, "%s=%s", name, v);
}

/* What a worker sees: a few fixed variables, the usual ones a connector
 * needs (proxies, CA bundle), and those the app's app.json names. */
static char **worker_env(const lsr_app *app) {
  static const char *const pass[] = {"PATH", "HOME", "TMPDIR", "TZ", "http_proxy", "https_proxy", "no_proxy",
                                     "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", NULL};
  size_t n = 0, j = 0;
  while (app->env && app->env[n]) n++;
  char **env = lsr_xalloc((n + 16) * sizeof *env);
  env[j++] = lsr_strdup("LANG=C.UTF-8");
  env[j++] = lsr_strdup("PYTHONDONTWRITEBYTECODE=1");
  env[j++] = lsr_strdup("PYTHONIOENCODING=utf-8");
  for (size_t i = 0; pass[i]; i++) env_add(env, &j, pass[i]);
  for (size_t i = 0; i < n; i++) env_add(env, &j, app->env[i]);
  return env;
}

static soar_worker *worker_start(struct lsr_soar_pool *pool) {
  lsr_app *app = pool->app;
  soar_worker *w = lsr_xalloc(sizeof *w);
  w->pool = pool;
  uv_timer_init(pool->eng->loop, &w->timer);
  w->timer.data = w;
  char script[4200];
  snprintf(script, sizeof script, "%s/luasoar_worker.py", lsr_soar_shim_dir());
  char *argv[] = {app->python, "-u", script, app->dir, app->soar_file, NULL};
  lsr_exec_req req = {0};
  req.argv = argv;
  req.env = worker_env(app);
  req.cwd = app->dir;
  req.input = "";
  req.max_output = pool->eng->max_app_output + 65536;
  req.done = worker_gone;
  req.on_line = on_line;
  req.ud = w;
  pool->w = lsr_xrealloc(pool->w, (size_t)(pool->n + 1) * sizeof *pool->w);
  pool->w[pool->n++] = w;
  w->proc = lsr_exec_start(pool->eng->loop, &req);
  lsr_strv_free(req.env);
  return w;
}

/* The request: what SOAR gives _handle_action, and what the worker needs. */
static char *request(struct lsr_soar_pool *pool, lsr_app_run *apr) {
  lsr_action_run *ar = apr->ar;
  const lsr_action_def *def = lsr_app_action(pool->app, ar->action);
  const lsr_asset *as = apr->asset;
  char *q_ident = lsr_json_quote(def ? def->identifier : ar->action), *q_action = lsr_json_quote(ar->action);
  char *q_asset = lsr_json_quote(as->name), *q_app = lsr_json_quote(pool->app->name);
  char *q_dir = lsr_json_quote(pool->app->dir), *q_vault = lsr_json_quote(lsr_app_vault_dir(pool->eng));
  char *q_main = lsr_json_quote(lsr_soar_manifest_str(pool->app, "main_module"));
  char *q_version = lsr_json_quote(lsr_soar_manifest_str(pool->app, "app_version"));
  char *state = lsr_app_state_load(pool->eng, as->name);
  size_t cl = strlen(as->config_json);
  size_t n = cl + strlen(state) + 1024 + strlen(q_ident) * 2 + strlen(q_action) + strlen(q_asset) +
             strlen(q_app) + strlen(q_dir) * 2 + strlen(q_vault) + strlen(q_main) + strlen(q_version);
  for (int i = 0; i < apr->nsent; i++) n += strlen(lsr_act_param_json(ar, apr->sent[i])) + 1;
  char *buf = lsr_xalloc(n);
  /* config: the asset's keys, then what SOAR adds */
  size_t o = (size_t)snprintf(buf, n, "{\"in\":{\"action\":%s,\"identifier\":%s,\"action_name\":%s,"
                              "\"asset_id\":\"%lld\",\"config\":%.*s%s\"app_version\":%s,\"directory\":%s,"
                              "\"main_module\":%s},\"parameters\":[",
                              q_ident, q_ident, q_action, (long long)as->id, (int)(cl - 1), as->config_json,
                              cl > 2 ? "," : "", q_version, q_dir, q_main);
  for (int i = 0; i < apr->nsent; i++)
    o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? "," : "", lsr_act_param_json(ar, apr->sent[i]));
  int64_t cid = ar->run ? ar->run->container_id : 0;
  snprintf(buf + o, n - o, "],\"container_id\":%lld,\"environment_variables\":{},\"user_session_token\":\"\","
           "\"dec_key\":\"\",\"action_run_id\":%lld,\"connector_run_id\":%lld,\"app_run_id\":%lld},"
           "\"state\":%s,\"asset\":%s,\"vault_dir\":%s,\"key\":\"%s\",\"app_name\":%s}",
           (long long)cid, (long long)ar->id, (long long)apr->id, (long long)apr->id, state, q_asset, q_vault,
           lsr_app_key(pool->eng), q_app);
  free(q_ident); free(q_action); free(q_asset); free(q_app); free(q_dir); free(q_vault); free(q_main);
  free(q_version); free(state);
  return buf;
}

static void send_run(soar_worker *w, lsr_app_run *apr) {
  struct lsr_soar_pool *pool = w->pool;
  const lsr_action_def *def = lsr_app_action(pool->app, apr->ar->action);
  w->apr = apr;
  w->timeout = def && def->timeout > 0 ? def->timeout : pool->app->timeout;
  apr->proc = w->proc;
  lsr_exec_hold(w->proc, 1);
  uv_timer_start(&w->timer, on_timeout, (uint64_t)(w->timeout * 1000), 0);
  char *req = request(pool, apr);
  send_line(w, "run", apr->id, req);
  free(req);
}

/* Give the oldest waiting app run to an idle worker, or a new one. */
static void pool_next(struct lsr_soar_pool *pool) {
  while (pool->waiting) {
    soar_worker *idle = NULL;
    for (int i = 0; i < pool->n && !idle; i++)
      if (!pool->w[i]->apr && pool->w[i]->proc && !pool->w[i]->why[0]) idle = pool->w[i];
    if (!idle && pool->n >= pool->app->workers) return;
    if (!idle) idle = worker_start(pool);
    lsr_app_run *apr = pool->waiting;
    pool->waiting = apr->waiting_next;
    if (!pool->waiting) pool->waiting_tail = NULL;
    apr->waiting_next = NULL;
    if (!apr->ar->run || apr->ar->run->failed) { /* nobody waits for it any more */
      lsr_app_run_done(pool->eng, apr, 0, NULL, 0, "cancelled: the playbook run ended");
      continue;
    }
    send_run(idle, apr);
  }
}

void lsr_soar_start(lsr_engine *eng, lsr_app_run *apr) {
  lsr_app *app = apr->asset->app;
  if (!app->pool) {
    app->pool = lsr_xalloc(sizeof *app->pool);
    app->pool->eng = eng;
    app->pool->app = app;
  }
  struct lsr_soar_pool *pool = app->pool;
  if (pool->waiting_tail) pool->waiting_tail->waiting_next = apr;
  else pool->waiting = apr;
  pool->waiting_tail = apr;
  pool_next(pool);
}

/* The app's configuration is freed: after a reload once no action run uses
 * it (so none of its app runs is waiting or in flight), or with the engine.
 * Its idle workers get EOF and exit, and the loop waits for that; a busy
 * one (only when the engine goes) is killed, its app run abandoned with
 * the engine. */
void lsr_soar_close(lsr_app *app) {
  struct lsr_soar_pool *pool = app->pool;
  if (!pool) return;
  for (int i = 0; i < pool->n; i++) {
    soar_worker *w = pool->w[i];
    w->pool = NULL;
    if (!w->proc) continue;
    if (w->apr) {
      w->apr = NULL;
      lsr_exec_kill(w->proc);
    } else {
      lsr_exec_close_input(w->proc);
      lsr_exec_hold(w->proc, 1);
    }
  }
  free(pool->w);
  free(pool);
  app->pool = NULL;
}

/* ---- what the engine keeps for connectors: state per asset, the vault,
 * the key of encryption_helper ---- */

typedef struct soar_state {
  char *asset, *json;
  struct soar_state *next;
} soar_state;

struct lsr_soar_keep {
  soar_state *states;
  char key[65];
};

static struct lsr_soar_keep *keep(lsr_engine *eng) {
  if (eng->soar) return eng->soar;
  eng->soar = lsr_xalloc(sizeof *eng->soar);
  /* serving, the store keeps one key for good: encrypted state stays readable */
  char *stored = eng->obs.load ? eng->obs.load("app_key", "", eng->obs.ud) : NULL;
  if (stored && strlen(stored) == 64) {
    memcpy(eng->soar->key, stored, 65);
  } else {
    unsigned char raw[32];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(raw, 1, sizeof raw, f) != sizeof raw) abort(); /* no randomness: no safe key */
    fclose(f);
    for (int i = 0; i < 32; i++) snprintf(eng->soar->key + 2 * i, 3, "%02x", raw[i]);
    if (eng->obs.persist) eng->obs.persist(NULL, "app_key", "", eng->soar->key, eng->obs.ud);
  }
  free(stored);
  return eng->soar;
}

const char *lsr_app_key(lsr_engine *eng) { return keep(eng)->key; }

char *lsr_app_state_load(lsr_engine *eng, const char *asset) {
  for (soar_state *s = keep(eng)->states; s; s = s->next)
    if (strcmp(s->asset, asset) == 0) return lsr_strdup(s->json);
  char *stored = eng->obs.load ? eng->obs.load("app_state", asset, eng->obs.ud) : NULL;
  return stored ? stored : lsr_strdup("null");
}

void lsr_app_state_save(lsr_engine *eng, lsr_app_run *apr, const char *json) {
  struct lsr_soar_keep *k = keep(eng);
  soar_state *s = k->states;
  while (s && strcmp(s->asset, apr->asset->name) != 0) s = s->next;
  if (!s) {
    s = lsr_xalloc(sizeof *s);
    s->asset = lsr_strdup(apr->asset->name);
    s->next = k->states;
    k->states = s;
  }
  free(s->json);
  s->json = lsr_strdup(json);
  if (eng->obs.persist) eng->obs.persist(apr->ar->run, "app_state", apr->asset->name, json, eng->obs.ud);
}

const char *lsr_app_vault_dir(lsr_engine *eng) {
  if (!eng->vault_dir) {
    char dir[4096];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/luasoar-vault-%d", tmp && *tmp ? tmp : "/tmp", (int)getuid());
    eng->vault_dir = lsr_strdup(dir);
  }
  return eng->vault_dir;
}

void lsr_soar_keep_free(lsr_engine *eng) {
  free(eng->vault_dir);
  eng->vault_dir = NULL;
  if (!eng->soar) return;
  for (soar_state *s = eng->soar->states, *next; s; s = next) {
    next = s->next;
    free(s->asset);
    free(s->json);
    free(s);
  }
  free(eng->soar);
  eng->soar = NULL;
}
