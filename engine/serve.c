/* serve.c: `luasoar serve`, the long-running engine.  Containers arrive over
 * REST (libmicrohttpd, driven by the engine's libuv loop: one thread), are
 * stored in SQLite before they are acknowledged, and start every active
 * playbook whose labels match.  The scripts folder is watched: a changed
 * playbook becomes a new generation for new runs while runs in flight finish
 * on theirs.  Every step of a run goes to the store as it happens.
 * No Lua here: the engine's C interface does the Lua side. */
#include "engine.h"
#include "json_check.h"
#include "serve.h"
#include "store.h"
#include "watchdog.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#define MAX_BODY (16u << 20)
#define INTERRUPTED_BY_RESTART "interrupted by engine restart"
#define DEBOUNCE_MS 100

typedef struct {
  char *id, *path;      /* id: the path below playbooks/ without .lua */
  lsr_gen *gen;         /* the newest good generation, or NULL */
  int generation;
  char **labels;
  int active;
  char *error;          /* the last load error, file:line: message */
  struct stat st;       /* of the file when last loaded */
  int present;
} pb_entry;

typedef struct {
  lsr_engine *eng;
  lsr_store *store;
  struct MHD_Daemon *mhd;
  uv_poll_t mhd_poll;
  uv_timer_t mhd_timer;
  char *scripts, *token;
  pb_entry *pbs;
  int npbs;
  int live_gens;        /* generations compiled and not yet freed */
  uv_fs_event_t **watch;
  int nwatch;
  uv_timer_t debounce;
  uv_signal_t sig_int, sig_term;
  uv_check_t commit;
  uv_prepare_t commit_idle;
  uint64_t cfg_sig;     /* apps' and assets' files: names, mtimes, sizes, inodes */
  int cfg_seen;
  int stopping;
} server;

/* ---- logging: one line per event ---- */

static void say(const char *fmt, ...) {
  char line[2048];
  time_t now = time(NULL);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", gmtime(&now));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  n += m < 0 ? 0 : (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
  line[n++] = '\n';
  fwrite(line, 1, n, stderr); /* one write per line */
}

/* ---- the store: what runs do ---- */

/* The run's row; written as soon as a run exists, in the transaction of
 * the request that started it. */
static void record_run(server *s, lsr_run *run, const char *pb, const char *scope, double now) {
  lsr_store_exec(s->store,
                 "INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope,"
                 " start_time, update_time, parent_run_id) VALUES(?1, ?2, ?3, ?4, 'running', '', ?5, ?6, ?6, ?7)"
                 " ON CONFLICT(id) DO UPDATE SET parent_run_id = ?7, generation = ?4",
                 "iisisdi", run->id, run->container_id, pb, (int64_t)run->gen->number, scope, now, run->parent_run_id);
}

static void on_run_start(lsr_run *run, void *ud) {
  server *s = ud;
  const char *scope = run->ud ? (const char *)run->ud : "new";
  const char *pb = run->gen->path + strlen(s->scripts) + strlen("/playbooks/");
  char *id = lsr_strndup(pb, strlen(pb) - 4);
  double now = lsr_now();
  if (run->recovered) {
    /* recovered after a restart: it goes on, on the newest generation */
    lsr_store_exec(s->store, "UPDATE playbook_runs SET generation = ?, update_time = ? WHERE id = ?", "idi",
                   (int64_t)run->gen->number, now, run->id);
    say("run %lld resumes: %s on container %lld (generation %d)", (long long)run->id, id,
        (long long)run->container_id, run->gen->number);
    free(id);
    return;
  }
  record_run(s, run, id, scope, now);
  say("run %lld start: %s on container %lld (generation %d)", (long long)run->id, id,
      (long long)run->container_id, run->gen->number);
  free(id);
}

static void free_gen_if_done(server *s, lsr_gen *g) {
  if (!g->retired || g->runs > 0) return;
  say("generation %d of %s freed", g->number, g->path);
  lsr_gen_free(s->eng, g);
  s->live_gens--;
}

static void on_run_end(lsr_run *run, void *ud) {
  server *s = ud;
  double now = lsr_now();
  lsr_store_exec(s->store, "UPDATE playbook_runs SET status = ?, message = ?, update_time = ? WHERE id = ?",
                 "ssdi", run->failed ? "failed" : "success", run->error ? run->error : "", now, run->id);
  /* what the run left unfinished ends with it */
  lsr_store_exec(s->store, "UPDATE action_runs SET status = 'cancelled', update_time = ? WHERE run_id = ?"
                 " AND status = 'running'", "di", now, run->id);
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE run_id = ? AND status = 'pending'", "i",
                 run->id);
  lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE run_id = ? AND status = 'running'", "i", run->id);
  say("run %lld end: %s%s%s", (long long)run->id, run->failed ? "failed" : "success", run->error ? ": " : "",
      run->error ? run->error : "");
  free(run->ud);
  run->ud = NULL;
  free_gen_if_done(s, run->gen);
}

static void on_log(lsr_run *run, const lsr_log_entry *e, void *ud) {
  server *s = ud;
  lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, ?, ?, ?)", "issd", run->id,
                 e->level == LSR_LOG_ERROR ? "error" : "debug", e->message, e->time);
}

static void on_action(lsr_action_run *ar, void *ud) {
  server *s = ud;
  /* parameters as one JSON list, assets as names */
  size_t n = 3;
  for (int i = 0; i < ar->nparams; i++) n += strlen(ar->params[i]) + 1;
  char *params = lsr_xalloc(n);
  strcpy(params, "[");
  for (int i = 0; i < ar->nparams; i++) {
    if (i) strcat(params, ",");
    strcat(params, ar->params[i]);
  }
  strcat(params, "]");
  size_t an = 3;
  for (int k = 0; k < ar->napp_runs; k++) an += strlen(ar->app_runs[k].asset->name) * 6 + 4; /* quoting: at most 6 per byte */
  char *assets = lsr_xalloc(an);
  strcpy(assets, "[");
  for (int k = 0; k < ar->napp_runs; k++) {
    char *q = lsr_json_quote(ar->app_runs[k].asset->name);
    if (k) strcat(assets, ",");
    strcat(assets, q);
    free(q);
  }
  strcat(assets, "]");
  double now = lsr_now();
  lsr_store_exec(s->store,
                 "INSERT INTO action_runs(id, run_id, name, action, callback, handle, parameters, assets, status,"
                 " start_time, update_time, start_after, reviewer, loop_state, released)"
                 " VALUES(?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
                 "iissssssdddssi", ar->id, ar->run->id, ar->name, ar->action, ar->callback_name, ar->handle_json, params,
                 assets, now, now, ar->start_time, ar->reviewer, ar->loop_state, (int64_t)ar->released);
  free(params);
  free(assets);
}

static void on_app_run(lsr_app_run *apr, const char *result, void *ud) {
  server *s = ud;
  if (!apr->ar->run) return;
  lsr_store_exec(s->store,
                 "INSERT OR REPLACE INTO app_runs(id, action_run_id, run_id, asset, app, status, message, result,"
                 " end_time) VALUES(?, ?, ?, ?, ?, json_extract(?, '$.status'), json_extract(?, '$.message'), ?, ?)",
                 "iiisssssd", apr->id, apr->ar->id, apr->ar->run->id, apr->asset->name, apr->asset->app->name, result,
                 result, result, lsr_now());
}

static void on_delivered(lsr_action_run *ar, void *ud) {
  server *s = ud;
  lsr_store_exec(s->store, "UPDATE action_runs SET status = ?, delivered = 1, update_time = ? WHERE id = ?", "sdi",
                 ar->success ? "success" : "failed", lsr_now(), ar->id);
}

static void persist(lsr_run *run, const char *kind, const char *key, const char *json, void *ud) {
  server *s = ud;
  int64_t rid = run ? run->id : 0;
  double now = lsr_now();
  if (strcmp(kind, "run_data") == 0)
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO run_data(run_id, key, value) VALUES(?, ?, ?)", "iss", rid, key, json);
  else if (strcmp(kind, "container") == 0)
    lsr_store_exec(s->store,
                   "UPDATE containers SET data = ?, status = json_extract(?, '$.status'), label = json_extract(?, '$.label'),"
                   " update_time = ? WHERE id = ?", "sssdi", json, json, json, now, (int64_t)atoll(key));
  else if (strcmp(kind, "artifact") == 0)
    lsr_store_exec(s->store, "INSERT INTO artifacts(id, container_id, data, create_time)"
                   " VALUES(?, json_extract(?, '$.container'), ?, ?)", "issd", (int64_t)atoll(key), json, json, now);
  else if (strcmp(kind, "object") == 0) {
    const char *key2 = key + strlen(key) + 1; /* "container\0key" */
    if (strcmp(json, "null") == 0)
      lsr_store_exec(s->store, "DELETE FROM objects WHERE container_key = ? AND key = ?", "ss", key, key2);
    else
      lsr_store_exec(s->store, "INSERT OR REPLACE INTO objects VALUES(?, ?, ?)", "sss", key, key2, json);
  } else if (strcmp(kind, "list") == 0) {
    if (strcmp(json, "null") == 0) lsr_store_exec(s->store, "DELETE FROM custom_lists WHERE name = ?", "s", key);
    else lsr_store_exec(s->store, "INSERT OR REPLACE INTO custom_lists VALUES(?, ?)", "ss", key, json);
  } else if (strcmp(kind, "prompt") == 0) {
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO prompts(id, run_id, name, prompt, status, deadline)"
                   " VALUES(?, ?, json_extract(?, '$.name'), ?, 'pending', json_extract(?, '$.deadline'))",
                   "iisss", (int64_t)atoll(key), rid, json, json, json);
    say("prompt %s of run %lld waits for an answer (POST /rest/prompt/%s/answer)", key, (long long)rid, key);
  } else if (strcmp(kind, "prompt_done") == 0) {
    lsr_store_exec(s->store, "UPDATE prompts SET status = json_extract(?, '$.status'),"
                   " responses = json_extract(?, '$.responses') WHERE id = ?", "ssi", json, json, (int64_t)atoll(key));
  } else if (strcmp(kind, "call") == 0) { /* custom function or child playbook started */
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO calls(id, run_id, kind, call, status)"
                   " VALUES(?, ?, json_extract(?, '$.kind'), ?, 'running')", "iiss", (int64_t)atoll(key), rid, json, json);
  } else if (strcmp(kind, "call_done") == 0) {
    /* ids: custom functions' are action run ids, children's run ids */
    lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE kind = json_extract(?, '$') AND id = ?", "si",
                   json, (int64_t)atoll(key));
  } else if (strcmp(kind, "delivered") == 0) { /* a recovered action's callback ran */
    lsr_store_exec(s->store, "UPDATE action_runs SET delivered = 1, status = CASE WHEN ? = 'true' THEN 'success'"
                   " ELSE 'failed' END, update_time = ? WHERE id = ?", "sdi", json, now, (int64_t)atoll(key));
  } else if (strcmp(kind, "superseded") == 0) { /* run again after a restart */
    lsr_store_exec(s->store, "UPDATE action_runs SET delivered = 1, status = 'superseded', update_time = ?"
                   " WHERE id = ?", "di", now, (int64_t)atoll(key));
  } else if (strcmp(kind, "released") == 0) { /* an action's app runs went */
    lsr_store_exec(s->store, "UPDATE action_runs SET released = 1 WHERE id = ?", "i", (int64_t)atoll(key));
  } else if (strcmp(kind, "discontinued") == 0) {
    lsr_store_exec(s->store, "UPDATE playbook_runs SET discontinued = 1 WHERE id = ?", "i", rid);
  } else if (strcmp(kind, "started") == 0) { /* on_start returned */
    lsr_store_exec(s->store, "UPDATE playbook_runs SET started = 1 WHERE id = ?", "i", rid);
  } else if (strcmp(kind, "outputs") == 0) {
    lsr_store_exec(s->store, "UPDATE playbook_runs SET outputs = ? WHERE id = ?", "si", json, rid);
  }
}

/* Each turn of the loop ends with one commit of what it wrote (the check
 * phase), and nothing stays uncommitted while the loop waits (prepare). */
static void commit_now(server *s) {
  if (lsr_store_in_transaction(s->store) && lsr_store_commit(s->store) < 0)
    say("error: the store refused a commit: %s", lsr_store_error(s->store));
}

static void commit_turn(uv_handle_t *h) { commit_now(h->data); }

/* ---- playbooks ---- */

static int labels_match(char **labels, const char *label) {
  for (int i = 0; labels && labels[i]; i++)
    if (strcmp(labels[i], "*") == 0 || (label && strcmp(labels[i], label) == 0)) return 1;
  return 0;
}

static pb_entry *find_pb(server *s, const char *id) {
  for (int i = 0; i < s->npbs; i++) {
    pb_entry *p = &s->pbs[i];
    if (strcmp(p->id, id) == 0) return p;
    const char *slash = strchr(id, '/'); /* "repo/name" also names playbooks/name */
    if (slash && strcmp(p->id, slash + 1) == 0) return p;
  }
  return NULL;
}

static void retire(server *s, lsr_gen *g) {
  if (!g) return;
  g->retired = 1;
  free_gen_if_done(s, g);
}

/* (Re)load one playbook file if it changed. */
static void load_pb(server *s, const char *path, const struct stat *sb) {
  size_t base = strlen(s->scripts) + strlen("/playbooks/");
  char *id = lsr_strndup(path + base, strlen(path) - base - 4);
  pb_entry *p = NULL;
  for (int i = 0; i < s->npbs; i++)
    if (strcmp(s->pbs[i].id, id) == 0) p = &s->pbs[i];
  if (p) {
    free(id);
    p->present = 1;
    if (p->gen && p->st.st_mtim.tv_sec == sb->st_mtim.tv_sec && p->st.st_mtim.tv_nsec == sb->st_mtim.tv_nsec &&
        p->st.st_size == sb->st_size && p->st.st_ino == sb->st_ino)
      return;
  } else {
    s->pbs = lsr_xrealloc(s->pbs, (size_t)(s->npbs + 1) * sizeof *s->pbs);
    p = &s->pbs[s->npbs++];
    memset(p, 0, sizeof *p);
    p->id = id;
    p->path = lsr_strdup(path);
    p->present = 1;
  }
  p->st = *sb;
  char err[2048];
  char **labels;
  int active;
  lsr_gen *g = lsr_gen_load(s->eng, path, err, sizeof err);
  if (g && lsr_gen_info(s->eng, g, &labels, &active, err, sizeof err) < 0) {
    lsr_gen_free(s->eng, g);
    g = NULL;
  }
  if (!g) {
    free(p->error);
    p->error = lsr_strdup(err);
    say("reload %s failed, generation %d keeps serving: %s", p->id, p->generation, err);
    return;
  }
  s->live_gens++;
  g->number = ++p->generation;
  retire(s, p->gen);
  p->gen = g;
  lsr_strv_free(p->labels);
  p->labels = labels;
  p->active = active;
  free(p->error);
  p->error = NULL;
  say("reload %s: generation %d%s", p->id, p->generation, active ? " (active)" : "");
}

static void walk(server *s, const char *dir, void (*fn)(server *, const char *, const struct stat *)) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (stat(path, &sb) != 0) continue;
    if (S_ISDIR(sb.st_mode)) walk(s, path, fn);
    else fn(s, path, &sb);
  }
  closedir(d);
}

static void maybe_pb(server *s, const char *path, const struct stat *sb) {
  size_t n = strlen(path);
  if (n > 4 && strcmp(path + n - 4, ".lua") == 0) load_pb(s, path, sb);
}

/* One file into the signature of the apps and assets: any edit (even
 * within the second, or to an older mtime), new file or deletion changes it. */
static void sign(server *s, const char *path, const struct stat *sb) {
  uint64_t h = 1469598103934665603u; /* FNV-1a over the name, then the stat */
  for (const char *p = path; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211u;
  uint64_t st[] = {(uint64_t)sb->st_mtim.tv_sec, (uint64_t)sb->st_mtim.tv_nsec, (uint64_t)sb->st_size,
                   (uint64_t)sb->st_ino};
  for (int i = 0; i < 4; i++) h = (h ^ st[i]) * 1099511628211u;
  s->cfg_sig += h; /* a sum: the order files are listed in does not matter */
}

static void scan(server *s) {
  char dir[4096];
  for (int i = 0; i < s->npbs; i++) s->pbs[i].present = 0;
  snprintf(dir, sizeof dir, "%s/playbooks", s->scripts);
  walk(s, dir, maybe_pb);
  for (int i = 0; i < s->npbs; i++) { /* a deleted file stops new runs */
    pb_entry *p = &s->pbs[i];
    if (p->present || !p->gen) continue;
    say("playbook %s deleted: no new runs", p->id);
    retire(s, p->gen);
    p->gen = NULL;
    p->active = 0;
  }
  /* custom functions: dropped from the cache, compiled again on next use */
  for (int i = 0; i < s->eng->ngens; i++) {
    struct stat sb;
    lsr_gen *g = s->eng->gens[i];
    if (stat(g->path, &sb) == 0 && (double)sb.st_mtim.tv_sec + sb.st_mtim.tv_nsec / 1e9 == g->mtime) continue;
    say("custom function %s changed", g->path);
    s->eng->gens[i--] = s->eng->gens[--s->eng->ngens];
    s->live_gens++; /* child runs may still be on it: freed after the last */
    retire(s, g);
  }
  /* apps and assets: a new configuration for new actions */
  uint64_t before = s->cfg_sig;
  s->cfg_sig = 0;
  snprintf(dir, sizeof dir, "%s/apps", s->scripts);
  walk(s, dir, sign);
  struct stat sb;
  snprintf(dir, sizeof dir, "%s/assets.json", s->scripts);
  if (stat(dir, &sb) == 0) sign(s, dir, &sb);
  int first = !s->cfg_seen;
  s->cfg_seen = 1;
  if (!first && s->cfg_sig != before) {
    char err[2048], apps[4096];
    snprintf(apps, sizeof apps, "%s/apps", s->scripts);
    lsr_config *cfg = lsr_xalloc(sizeof *cfg);
    if (lsr_config_load(cfg, apps, dir, 0, err, sizeof err) < 0) {
      say("reload of apps and assets failed, the previous ones keep serving: %s", err);
      lsr_config_free(cfg);
      free(cfg);
    } else {
      lsr_config *old = s->eng->cfg;
      s->eng->cfg = cfg;
      old->refs++;
      lsr_config_release(s->eng, old);
      say("reload apps and assets: %d apps, %d assets", cfg->napps, cfg->nassets);
    }
  }
}

/* ---- watching the scripts folder ---- */

static void watch_dir(server *s, const char *dir);
static void unwatch(server *s);

static void rescan(uv_timer_t *t) {
  server *s = t->data;
  scan(s);
  unwatch(s); /* new folders get watched too */
  watch_dir(s, s->scripts);
}

static void on_fs(uv_fs_event_t *h, const char *name, int events, int status) {
  server *s = h->data;
  uv_timer_start(&s->debounce, rescan, DEBOUNCE_MS, 0); /* editors write in several steps */
}

static void watch_dir(server *s, const char *dir) {
  uv_fs_event_t *w = lsr_xalloc(sizeof *w);
  uv_fs_event_init(s->eng->loop, w);
  w->data = s;
  if (uv_fs_event_start(w, on_fs, dir, 0) != 0) {
    uv_close((uv_handle_t *)w, (uv_close_cb)free);
    return;
  }
  s->watch = lsr_xrealloc(s->watch, (size_t)(s->nwatch + 1) * sizeof *s->watch);
  s->watch[s->nwatch++] = w;
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    char path[4096];
    struct stat sb;
    if (de->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) watch_dir(s, path);
  }
  if (d) closedir(d);
}

static void unwatch(server *s) {
  for (int i = 0; i < s->nwatch; i++) uv_close((uv_handle_t *)s->watch[i], (uv_close_cb)free);
  free(s->watch);
  s->watch = NULL;
  s->nwatch = 0;
}

/* ---- starting runs ---- */

/* The container as runs see it: its data with its artifacts, by id. */
static char *container_json(server *s, int64_t id) {
  return lsr_store_text(s->store,
                        "SELECT json_set(data, '$.id', id, '$.artifacts', json((SELECT json_group_array(json(data))"
                        " FROM (SELECT data FROM artifacts WHERE container_id = ?1 ORDER BY id))))"
                        " FROM containers WHERE id = ?1", "i", id);
}

/* Start a run of p on a stored container.  scope: "new", "all" or a JSON
 * list of artifact ids.  The run's id, or 0 with err set. */
static int64_t start_run(server *s, pb_entry *p, int64_t cid, const char *scope, char *err, size_t errlen) {
  char *json = container_json(s, cid);
  if (!json) {
    snprintf(err, errlen, "no container %lld", (long long)cid);
    return 0;
  }
  if (strcmp(scope, "new") != 0 && strcmp(scope, "all") != 0 &&
      !lsr_store_int(s->store, 0, "SELECT json_valid(?1) AND json_type(?1) = 'array' AND NOT EXISTS"
                     " (SELECT 1 FROM json_each(?1) WHERE type != 'integer')", "s", scope)) {
    free(json);
    snprintf(err, errlen, "field 'scope': expected \"new\", \"all\" or a list of artifact ids");
    return 0;
  }
  lsr_run *run = lsr_run_json(s->eng, p->gen, json, strlen(json), "container", err, errlen);
  free(json);
  if (!run) return 0;
  record_run(s, run, p->id, scope, lsr_now());
  /* scope "new": the artifacts this playbook has not seen on this container */
  int64_t seen = lsr_store_int(s->store, 0, "SELECT last_artifact_id FROM seen WHERE playbook = ? AND container_id = ?",
                               "si", p->id, cid);
  int64_t last = lsr_store_int(s->store, 0, "SELECT max(id) FROM artifacts WHERE container_id = ?", "i", cid);
  char *list = NULL;
  if (strcmp(scope, "new") == 0)
    list = lsr_store_text(s->store, "SELECT json_group_array(id) FROM (SELECT id FROM artifacts"
                                    " WHERE container_id = ? AND id > ? ORDER BY id)", "ii", cid, seen);
  else if (strcmp(scope, "all") != 0)
    list = lsr_strdup(scope);
  if (list) lsr_run_state_set(run, "scope_list", list);
  free(list);
  lsr_store_exec(s->store, "INSERT OR REPLACE INTO seen VALUES(?, ?, max(?, coalesce((SELECT last_artifact_id"
                 " FROM seen WHERE playbook = ? AND container_id = ?), 0)))", "siisi", p->id, cid, last, p->id, cid);
  run->ud = lsr_strdup(scope);
  return run->id;
}

/* Every active playbook whose labels match an open container. */
static void run_active(server *s, int64_t cid) {
  char *label = lsr_store_text(s->store, "SELECT label FROM containers WHERE id = ?", "i", cid);
  char *status = lsr_store_text(s->store, "SELECT status FROM containers WHERE id = ?", "i", cid);
  char err[1024];
  if (!status || strcmp(status, "closed") != 0) {
    for (int i = 0; i < s->npbs; i++) {
      pb_entry *p = &s->pbs[i];
      if (p->gen && p->active && labels_match(p->labels, label) && !start_run(s, p, cid, "new", err, sizeof err))
        say("error: cannot start %s on container %lld: %s", p->id, (long long)cid, err);
    }
  }
  free(label);
  free(status);
}

/* ---- recovery after a restart ---- */

#define RECOVERY_JSON \
  "SELECT json_object('started', started, 'discontinued', discontinued," \
  " 'run_data', json((SELECT json_group_object(key, json(value)) FROM run_data WHERE run_id = r.id))," \
  " 'actions', json((SELECT json_group_array(json_object('id', a.id, 'name', a.name, 'action', a.action," \
  "   'callback', a.callback, 'handle', json(coalesce(a.handle, 'null')), 'parameters', json(a.parameters)," \
  "   'assets', json(coalesce(a.assets, '[]')), 'delivered', a.delivered, 'start_after', a.start_after," \
  "   'reviewer', a.reviewer, 'loop_state', a.loop_state, 'released', a.released," \
  "   'results', json((SELECT json_group_array(json_object('asset', p.asset, 'result', json(p.result)))" \
  "                    FROM app_runs p WHERE p.action_run_id = a.id))))" \
  "   FROM (SELECT * FROM action_runs WHERE run_id = r.id AND NOT (delivered = 1 AND status = 'superseded')" \
  "         ORDER BY id) a))," \
  " 'prompts', json((SELECT json_group_array(json(prompt)) FROM prompts WHERE run_id = r.id AND status = 'pending'))," \
  " 'calls', json((SELECT json_group_array(json_set(call, '$.id', c.id," \
  "   '$.child_status', (SELECT status FROM playbook_runs WHERE id = json_extract(c.call, '$.child_run_id'))," \
  "   '$.child_outputs', json((SELECT coalesce(outputs, '{}') FROM playbook_runs" \
  "                            WHERE id = json_extract(c.call, '$.child_run_id')))," \
  "   '$.child_message', (SELECT message FROM playbook_runs WHERE id = json_extract(c.call, '$.child_run_id'))))" \
  "   FROM calls c WHERE run_id = r.id AND status = 'running')))" \
  " FROM playbook_runs r WHERE id = ?"

/* A run that was in flight, as its row says. */
typedef struct {
  int64_t id, cid, parent;
  char *pb, *scope;
} in_flight;
typedef struct { in_flight *runs; int n; } in_flight_list;

static void collect_run(void *ud, int ncols, const char **cols) {
  in_flight_list *l = ud;
  (void)ncols;
  l->runs = lsr_xrealloc(l->runs, (size_t)(l->n + 1) * sizeof *l->runs);
  l->runs[l->n++] = (in_flight){atoll(cols[0]), cols[1] ? atoll(cols[1]) : 0, cols[2] ? atoll(cols[2]) : 0,
                                cols[3] ? lsr_strdup(cols[3]) : NULL, lsr_strdup(cols[4] ? cols[4] : "new")};
}

static void fail_recovery(server *s, int64_t id, const char *why) {
  lsr_store_exec(s->store, "UPDATE playbook_runs SET status = 'failed', message = ?, update_time = ? WHERE id = ?",
                 "sdi", why, lsr_now(), id);
  lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, 'error', ?, ?)", "isd",
                 id, why, lsr_now());
  say("recover run %lld: failed: %s", (long long)id, why);
}

static int64_t max_id(const char *kind, void *ud) {
  server *s = ud;
  if (strcmp(kind, "artifact") != 0) return 0;
  return lsr_store_int(s->store, 0, "SELECT max(id) FROM artifacts", "");
}

/* A custom list or object the store kept, back into the engine (a row
 * that does not load is said and skipped: the rest still loads). */
static void restore_row(void *ud, int ncols, const char **cols) {
  server *s = ud;
  char err[1024];
  if (lsr_hook_strings(s->eng, cols[0], ncols - 1, cols + 1, err, sizeof err) < 0)
    say("store: %s '%s' does not load: %s", cols[0], cols[1], err);
}

/* ---- the watchdog's marker (engine/watchdog.h) ---- */

#define IN_STEP_NOTE "the engine stopped while this run was inside a step"

/* A run the engine died inside fails, and what it left unfinished ends
 * with it, as at a run's end. */
static void fail_killed(server *s, int64_t id, const char *why) {
  fail_recovery(s, id, why);
  lsr_store_exec(s->store, "UPDATE action_runs SET status = 'cancelled', update_time = ? WHERE run_id = ?"
                 " AND status = 'running'", "di", lsr_now(), id);
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE run_id = ? AND status = 'pending'", "i", id);
  lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE run_id = ? AND status = 'running'", "i", id);
}

/* What the marker says of the engine's last death.  The run the watchdog
 * killed fails with its verdict.  A run that was inside a step when the
 * engine died (kill -9, a crash) resumes once, with a line in its log that
 * counts it; found inside a step a second time, it fails: a run that takes
 * the engine down is never resumed into it again. */
static void step_death(server *s) {
  const lsr_step_death *d = lsr_watchdog_death();
  char why[512];
  if (!d) return;
  int64_t id = d->killed_run ? d->killed_run : d->in_step_run;
  if (!id || !lsr_store_int(s->store, 0, "SELECT count(*) FROM playbook_runs WHERE id = ? AND status = 'running'",
                            "i", id))
    return;
  if (d->killed_run) {
    say("watchdog: run %lld on container %lld was killed when the engine last ran", (long long)id,
        (long long)d->killed_container);
    fail_killed(s, id, d->reason);
  } else if (lsr_store_int(s->store, 0, "SELECT count(*) FROM run_log WHERE run_id = ? AND substr(message, 1, ?) = ?",
                           "iis", id, (int64_t)strlen(IN_STEP_NOTE), IN_STEP_NOTE) > 0) {
    snprintf(why, sizeof why, "killed: the engine stopped twice while this run was inside a step (%g s into it"
             " this time)", d->in_step_seconds);
    fail_killed(s, id, why);
  } else {
    snprintf(why, sizeof why, IN_STEP_NOTE " (%g s into it): it resumes once; if the engine stops inside one of its"
             " steps again, it fails", d->in_step_seconds);
    lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, 'error', ?, ?)", "isd", id,
                   why, lsr_now());
    say("recover run %lld: %s", (long long)id, why);
  }
}

/* Every run that was in flight goes on, or ends with a reason.  Returns how
 * many went on. */
static int recover(server *s) {
  step_death(s); /* before the runs in flight are read: a killed run is not one */
  in_flight_list l = {0};
  lsr_store_each(s->store, collect_run, &l, "SELECT id, container_id, parent_run_id, playbook, scope"
                 " FROM playbook_runs WHERE status = 'running' ORDER BY id", "");
  int resumed = 0, failed = 0;
  char err[1024];
  for (int i = 0; i < l.n; i++) {
    int64_t id = l.runs[i].id, cid = l.runs[i].cid;
    char *pbid = l.runs[i].pb;
    pb_entry *p = pbid ? find_pb(s, pbid) : NULL;
    char *json = container_json(s, cid);
    char *rec = lsr_store_text(s->store, RECOVERY_JSON, "i", id);
    lsr_run *run = NULL;
    if (!p || !p->gen) {
      snprintf(err, sizeof err, "%s: playbook '%s' is gone or does not load", INTERRUPTED_BY_RESTART, pbid ? pbid : "?");
    } else if (!json || !rec) {
      snprintf(err, sizeof err, "%s: its container %lld is not in the store", INTERRUPTED_BY_RESTART, (long long)cid);
    } else {
      s->eng->forced_run_id = id;
      run = lsr_run_json(s->eng, p->gen, json, strlen(json), "container", err, sizeof err);
      s->eng->forced_run_id = 0;
      if (run) {
        run->recovered = 1;
        if (lsr_run_state_set(run, "recovery", rec) < 0) /* it ends at its start, with why */
          lsr_run_fail(run, INTERRUPTED_BY_RESTART ": its recovery record does not load");
        run->parent_run_id = l.runs[i].parent;
        run->ud = l.runs[i].scope; /* the run owns it now */
        l.runs[i].scope = NULL;
      }
    }
    if (run) {
      resumed++;
      say("recover run %lld: resumed (%s on container %lld)", (long long)id, p->id, (long long)cid);
    } else {
      failed++;
      fail_recovery(s, id, err);
    }
    free(pbid);
    free(l.runs[i].scope);
    free(json);
    free(rec);
  }
  free(l.runs);
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'timed out' WHERE status = 'pending' AND run_id IN"
                 " (SELECT id FROM playbook_runs WHERE status != 'running')", "");
  /* an approval is asked again when its action starts again */
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE status = 'pending'"
                 " AND json_extract(prompt, '$.type') = 'approval'", "");
  lsr_store_commit(s->store);
  say("recovery: %d runs were in flight: %d resumed, %d failed", l.n, resumed, failed);
  return resumed;
}

/* ---- HTTP ---- */

typedef struct {
  char *body;
  size_t len, cap;
  int too_big;
} request;

/* A request's answer, filled by the router; the HTTP side sends it.  The
 * router never sees libmicrohttpd, so a fuzz harness can drive it. */
typedef struct {
  void *conn;
  const char *(*arg)(void *conn, const char *name); /* query arguments */
  unsigned status;
  char *body;
  const char *allow;
} http;

static int reply(http *c, unsigned status, const char *json) {
  c->status = status;
  free(c->body);
  c->body = lsr_strdup(json);
  return 1;
}

static int fail(http *c, unsigned status, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  char *q = lsr_json_quote(msg);
  char *body = lsr_xalloc(strlen(q) + 64);
  sprintf(body, "{\"failed\": true, \"message\": %s}", q);
  int rc = reply(c, status, body);
  free(q);
  free(body);
  return rc;
}

static int reply_owned(http *c, unsigned status, char *json) {
  int rc = json ? reply(c, status, json) : fail(c, 404, "not found");
  free(json);
  return rc;
}

/* The body as a JSON object; NULL after replying 400. */
static yajl_val body_object(http *c, request *rq, int *rc) {
  char why[256];
  if (lsr_json_check(rq->body ? rq->body : "", rq->len, why, sizeof why) < 0) {
    *rc = fail(c, 400, "malformed JSON in the request body at %s", why);
    return NULL;
  }
  yajl_val v = yajl_tree_parse(rq->body, why, sizeof why);
  if (!v || !YAJL_IS_OBJECT(v)) {
    yajl_tree_free(v);
    *rc = fail(c, 400, "the request body must be a JSON object");
    return NULL;
  }
  return v;
}

static yajl_val field(yajl_val obj, const char *key) {
  const char *path[] = {key, NULL};
  return yajl_tree_get(obj, path, yajl_t_any);
}

static int64_t int_arg(http *c, const char *name, int *given) {
  const char *v = c->arg ? c->arg(c->conn, name) : NULL;
  *given = v != NULL;
  return v ? atoll(v) : 0;
}

/* Commit what a request wrote before acknowledging it. */
static int durable(server *s, http *c, int *rc) {
  if (lsr_store_commit(s->store) == 0) return 1;
  say("error: refused a request, the store cannot keep it: %s", lsr_store_error(s->store));
  *rc = fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  return 0;
}

static int insert_artifact(server *s, int64_t cid, const char *json, int64_t *id) {
  double now = lsr_now();
  if (lsr_store_exec(s->store, "INSERT INTO artifacts(container_id, data, create_time)"
                     " VALUES(?, json_set(json_remove(?, '$.id'), '$.container', ?), ?)", "isid", cid, json, cid, now) < 0)
    return -1;
  *id = lsr_store_last_id(s->store);
  return lsr_store_exec(s->store, "UPDATE artifacts SET data = json_set(data, '$.id', id) WHERE id = ?", "i", *id);
}

/* {"id": N, "success": true}: what was stored, once it is on disk */
static int reply_created(http *c, int64_t id) {
  char out[96];
  snprintf(out, sizeof out, "{\"id\": %lld, \"success\": true}", (long long)id);
  return reply(c, 200, out);
}

static int post_container(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val arts = field(v, "artifacts");
  if (arts && !YAJL_IS_ARRAY(arts)) {
    yajl_tree_free(v);
    return fail(c, 400, "field 'artifacts': expected a list");
  }
  for (size_t i = 0; arts && i < arts->u.array.len; i++)
    if (!YAJL_IS_OBJECT(arts->u.array.values[i])) {
      yajl_tree_free(v);
      return fail(c, 400, "artifacts[%zu]: expected an object", i + 1);
    }
  yajl_val label = field(v, "label"), status = field(v, "status");
  if ((label && !YAJL_IS_STRING(label)) || (status && !YAJL_IS_STRING(status))) {
    yajl_tree_free(v);
    return fail(c, 400, "fields 'label' and 'status' must be strings");
  }
  char *lab = lsr_strdup(label ? label->u.string : "events"), *sta = lsr_strdup(status ? status->u.string : "new");
  double now = lsr_now();
  int ok = lsr_store_exec(s->store, "INSERT INTO containers(label, status, data, create_time, update_time)"
                          " VALUES(?, ?, json_set(json_remove(?, '$.artifacts', '$.id'), '$.label', ?, '$.status', ?),"
                          " ?, ?)", "sssssdd", lab, sta, rq->body, lab, sta, now, now) == 0;
  int64_t cid = lsr_store_last_id(s->store);
  ok = ok && lsr_store_exec(s->store, "UPDATE containers SET data = json_set(data, '$.id', id) WHERE id = ?", "i", cid) == 0;
  for (size_t i = 0; ok && arts && i < arts->u.array.len; i++) {
    char *a = lsr_tree_to_json(arts->u.array.values[i]);
    int64_t aid;
    ok = insert_artifact(s, cid, a, &aid) == 0;
    free(a);
  }
  size_t nart = arts ? arts->u.array.len : 0;
  yajl_tree_free(v);
  free(sta);
  if (!ok) {
    free(lab);
    lsr_store_rollback(s->store);
    say("error: refused a container, the store cannot keep it: %s", lsr_store_error(s->store));
    return fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  }
  run_active(s, cid); /* their rows go into the same commit */
  if (!durable(s, c, &rc)) {
    free(lab);
    return rc;
  }
  say("ingest container %lld (%s, %zu artifacts)", (long long)cid, lab, nart);
  free(lab);
  return reply_created(c, cid);
}

static int post_artifact(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val cidv = field(v, "container_id");
  if (!cidv) cidv = field(v, "container");
  if (!cidv || !YAJL_IS_INTEGER(cidv)) {
    yajl_tree_free(v);
    return fail(c, 400, "field 'container_id': expected the id of a container");
  }
  int64_t cid = YAJL_GET_INTEGER(cidv);
  yajl_val ra = field(v, "run_automation");
  int automation = !(ra && YAJL_IS_FALSE(ra));
  yajl_tree_free(v);
  if (!lsr_store_int(s->store, 0, "SELECT count(*) FROM containers WHERE id = ?", "i", cid))
    return fail(c, 404, "no container %lld", (long long)cid);
  int64_t aid;
  if (insert_artifact(s, cid, rq->body, &aid) < 0) {
    lsr_store_rollback(s->store);
    return fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  }
  lsr_store_exec(s->store, "UPDATE artifacts SET data = json_remove(data, '$.container_id', '$.run_automation')"
                 " WHERE id = ?", "i", aid);
  if (automation) run_active(s, cid);
  if (!durable(s, c, &rc)) return rc;
  say("ingest artifact %lld into container %lld", (long long)aid, (long long)cid);
  return reply_created(c, aid);
}

static int post_playbook_run(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val cidv = field(v, "container_id"), pbv = field(v, "playbook_id"), scv = field(v, "scope");
  char err[1024], out[128];
  if (!cidv || !YAJL_IS_INTEGER(cidv) || !pbv || !YAJL_IS_STRING(pbv)) {
    yajl_tree_free(v);
    return fail(c, 400, "expected {\"container_id\": N, \"playbook_id\": \"repo/name\", \"scope\": \"new\"}");
  }
  char *scope = scv ? (YAJL_IS_STRING(scv) ? lsr_strdup(scv->u.string) : lsr_tree_to_json(scv)) : lsr_strdup("new");
  pb_entry *p = find_pb(s, pbv->u.string);
  int64_t cid = YAJL_GET_INTEGER(cidv);
  if (!p || !p->gen) {
    rc = fail(c, 404, "no playbook '%s'%s%s", pbv->u.string, p && p->error ? ": " : "", p && p->error ? p->error : "");
  } else if (scv && !YAJL_IS_STRING(scv) && !YAJL_IS_ARRAY(scv)) {
    rc = fail(c, 400, "field 'scope': expected \"new\", \"all\" or a list of artifact ids");
  } else {
    int64_t id = start_run(s, p, cid, scope, err, sizeof err);
    if (!id) rc = fail(c, strstr(err, "no container") ? 404 : 400, "%s", err);
    else if (durable(s, c, &rc)) {
      snprintf(out, sizeof out, "{\"playbook_run_id\": %lld, \"received\": true}", (long long)id);
      rc = reply(c, 200, out);
    }
  }
  free(scope);
  yajl_tree_free(v);
  return rc;
}

static int post_answer(server *s, http *c, request *rq, int64_t id) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val r = field(v, "responses");
  if (!r) r = field(v, "response");
  if (!r) {
    yajl_tree_free(v);
    return fail(c, 400, "expected {\"responses\": [...]}");
  }
  char *responses = lsr_tree_to_json(r);
  yajl_tree_free(v);
  int64_t run = lsr_store_int(s->store, 0, "SELECT run_id FROM prompts WHERE id = ? AND status = 'pending'", "i", id);
  char *args = lsr_xalloc(strlen(responses) + 64);
  sprintf(args, "[%lld, %s]", (long long)id, responses);
  free(responses);
  if (!run || lsr_sched_call(s->eng, run, "prompt_answer", args) < 0) {
    rc = fail(c, 404, "no pending prompt %lld", (long long)id);
  } else { /* the first answer wins: the prompt is no longer pending */
    lsr_store_exec(s->store, "UPDATE prompts SET status = 'answered' WHERE id = ?", "i", id);
    rc = reply(c, 200, "{\"success\": true}");
  }
  free(args);
  return rc;
}

static char *playbooks_json(server *s) {
  size_t cap = 256, n = 0;
  char *out = lsr_xalloc(cap);
  int count = 0;
  for (int i = 0; i < s->npbs; i++) count += s->pbs[i].gen != NULL || s->pbs[i].error != NULL;
  n = (size_t)snprintf(out, cap, "{\"count\": %d, \"live_generations\": %d, \"data\": [", count, s->live_gens);
  int first = 1;
  for (int i = 0; i < s->npbs; i++) {
    pb_entry *p = &s->pbs[i];
    if (!p->gen && !p->error) continue;
    char *id = lsr_json_quote(p->id), *path = lsr_json_quote(p->path);
    char *err = p->error ? lsr_json_quote(p->error) : lsr_strdup("null");
    /* the labels, quoted, joined: sized from what quoting made of them */
    size_t llen = 0;
    char *labels = lsr_strdup("");
    for (int k = 0; p->labels && p->labels[k]; k++) {
      char *l = lsr_json_quote(p->labels[k]);
      labels = lsr_xrealloc(labels, llen + strlen(l) + 3);
      llen += (size_t)sprintf(labels + llen, "%s%s", k ? ", " : "", l);
      free(l);
    }
    size_t need = 2 * strlen(id) + strlen(path) + strlen(err) + llen + 256;
    if (n + need >= cap) out = lsr_xrealloc(out, cap = (n + need) * 2);
    n += (size_t)sprintf(out + n, "%s{\"id\": %s, \"name\": %s, \"path\": %s, \"generation\": %d, \"active\": %s,"
                         " \"loaded\": %s, \"labels\": [%s", first ? "" : ", ", id, id, path, p->generation,
                         p->active ? "true" : "false", p->gen ? "true" : "false", labels);
    free(labels);
    n += (size_t)sprintf(out + n, "], \"error\": %s}", err);
    first = 0;
    free(id);
    free(path);
    free(err);
  }
  if (n + 4 >= cap) out = lsr_xrealloc(out, cap + 4);
  strcpy(out + n, "]}");
  return out;
}

#define RUN_JSON \
  "json_object('id', id, 'playbook', playbook, 'container', container_id, 'generation', generation," \
  " 'status', status, 'message', message, 'misc', json_object('scope', scope)," \
  " 'start_time', strftime('%Y-%m-%dT%H:%M:%fZ', start_time, 'unixepoch')," \
  " 'update_time', strftime('%Y-%m-%dT%H:%M:%fZ', update_time, 'unixepoch')," \
  " 'parent_playbook_run', parent_run_id, 'outputs', json(coalesce(outputs, '{}')))"

static int get(server *s, http *c, const char *url) {
  long long id = 0;
  int n = 0, given;
  char tail[64] = "";
  if (sscanf(url, "/rest/container/%lld%n", &id, &n) == 1 && url[n] == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_set(data, '$.id', id, '$.artifact_count', (SELECT count(*) FROM artifacts WHERE container_id = c.id))"
        " FROM containers c WHERE id = ?", "i", (int64_t)id));
  if (strcmp(url, "/rest/container") == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(data)))"
        " FROM (SELECT json_set(data, '$.id', id) AS data FROM containers ORDER BY id)", ""));
  if (strcmp(url, "/rest/artifact") == 0) {
    int64_t cid = int_arg(c, "_filter_container", &given);
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(data)))"
        " FROM (SELECT data FROM artifacts WHERE ?1 = 0 OR container_id = ?2 ORDER BY id)", "ii", (int64_t)given, cid));
  }
  if (sscanf(url, "/rest/artifact/%lld%n", &id, &n) == 1 && url[n] == 0)
    return reply_owned(c, 200, lsr_store_text(s->store, "SELECT data FROM artifacts WHERE id = ?", "i", (int64_t)id));
  if (sscanf(url, "/rest/playbook_run/%lld%n", &id, &n) == 1) {
    if (url[n] == 0)
      return reply_owned(c, 200, lsr_store_text(s->store, "SELECT " RUN_JSON " FROM playbook_runs WHERE id = ?", "i",
                                                (int64_t)id));
    if (strcmp(url + n, "/log") == 0) {
      if (!lsr_store_int(s->store, 0, "SELECT count(*) FROM playbook_runs WHERE id = ?", "i", (int64_t)id))
        return fail(c, 404, "no playbook run %lld", id);
      return reply_owned(c, 200, lsr_store_text(s->store,
          "SELECT json_object('count', count(*), 'data', json_group_array(json_object('message', message,"
          " 'message_type', level, 'time', strftime('%Y-%m-%dT%H:%M:%fZ', time, 'unixepoch'))))"
          " FROM (SELECT * FROM run_log WHERE run_id = ? ORDER BY id)", "i", (int64_t)id));
    }
  }
  if (strcmp(url, "/rest/playbook_run") == 0) {
    int64_t cid = int_arg(c, "_filter_container", &given);
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(r)))"
        " FROM (SELECT " RUN_JSON " AS r FROM playbook_runs WHERE ?1 = 0 OR container_id = ?2 ORDER BY id)", "ii",
        (int64_t)given, cid));
  }
  if (strcmp(url, "/rest/action_run") == 0) {
    int64_t rid = int_arg(c, "_filter_playbook_run", &given);
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(r))) FROM (SELECT json_object('id', id,"
        " 'playbook_run', run_id, 'name', name, 'action', action, 'status', status, 'callback', callback,"
        " 'parameters', json(coalesce(parameters, '[]')), 'app_runs', (SELECT json_group_array(id) FROM app_runs"
        " WHERE action_run_id = a.id), 'start_time', strftime('%Y-%m-%dT%H:%M:%fZ', start_time, 'unixepoch'),"
        " 'update_time', strftime('%Y-%m-%dT%H:%M:%fZ', update_time, 'unixepoch')) AS r FROM action_runs a"
        " WHERE ?1 = 0 OR run_id = ?2 ORDER BY id)", "ii", (int64_t)given, rid));
  }
  if (sscanf(url, "/rest/app_run/%lld%n", &id, &n) == 1 && url[n] == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('id', id, 'action_run', action_run_id, 'playbook_run', run_id, 'asset', asset,"
        " 'app_name', app, 'status', status, 'message', message, 'result_data', json(result),"
        " 'end_time', strftime('%Y-%m-%dT%H:%M:%fZ', end_time, 'unixepoch')) FROM app_runs WHERE id = ?", "i", (int64_t)id));
  if (strcmp(url, "/rest/prompt") == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json_object('id', id, 'playbook_run', run_id,"
        " 'name', name, 'status', status, 'prompt', json(prompt), 'responses', json(responses)))) FROM prompts", ""));
  if (strcmp(url, "/rest/playbook") == 0) return reply_owned(c, 200, playbooks_json(s));
  (void)tail;
  return fail(c, 404, "no such resource: %s", url);
}

/* Which methods a path takes, for 405 (NULL: unknown path). */
static const char *allowed_methods(const char *url) {
  long long id;
  int n = 0;
  if (strcmp(url, "/rest/container") == 0 || strcmp(url, "/rest/artifact") == 0 ||
      strcmp(url, "/rest/playbook_run") == 0)
    return "GET, POST";
  if (strcmp(url, "/rest/action_run") == 0 || strcmp(url, "/rest/playbook") == 0 || strcmp(url, "/rest/prompt") == 0)
    return "GET";
  if (sscanf(url, "/rest/prompt/%lld%n", &id, &n) == 1 && strcmp(url + n, "/answer") == 0) return "POST";
  if ((sscanf(url, "/rest/container/%lld%n", &id, &n) == 1 || sscanf(url, "/rest/artifact/%lld%n", &id, &n) == 1 ||
       sscanf(url, "/rest/app_run/%lld%n", &id, &n) == 1) && url[n] == 0)
    return "GET";
  if (sscanf(url, "/rest/playbook_run/%lld%n", &id, &n) == 1 && (url[n] == 0 || strcmp(url + n, "/log") == 0))
    return "GET";
  return NULL;
}

/* Every request after its token was checked. */
static int route(server *s, http *c, const char *url, const char *method, request *rq) {
  if (s->stopping) return fail(c, 503, "shutting down");
  commit_now(s); /* what a request sees is on disk: a crash after it keeps it */
  const char *allowed = allowed_methods(url);
  if (!allowed) return fail(c, 404, "no such resource: %s", url);
  if (!strstr(allowed, method)) {
    c->allow = allowed;
    return reply(c, 405, "");
  }
  if (strcmp(method, "POST") == 0) {
    if (rq->too_big) return fail(c, 413, "the request body is larger than %u bytes", MAX_BODY);
    long long id;
    if (strcmp(url, "/rest/container") == 0) return post_container(s, c, rq);
    if (strcmp(url, "/rest/artifact") == 0) return post_artifact(s, c, rq);
    if (strcmp(url, "/rest/playbook_run") == 0) return post_playbook_run(s, c, rq);
    if (sscanf(url, "/rest/prompt/%lld/answer", &id) == 1) return post_answer(s, c, rq, id);
  }
  return get(s, c, url);
}

static const char *mhd_arg(void *conn, const char *name) {
  return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

static int token_ok(server *s, struct MHD_Connection *c) {
  const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "ph-auth-token");
  if (!t) return 0;
  size_t a = strlen(t), b = strlen(s->token);
  unsigned diff = (unsigned)(a ^ b);
  for (size_t i = 0; i < a && i < b; i++) diff |= (unsigned char)t[i] ^ (unsigned char)s->token[i];
  return diff == 0; /* the same time whatever the first difference */
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con) {
  server *s = cls;
  request *rq = *con;
  if (!rq) {
    *con = lsr_xalloc(sizeof *rq);
    return MHD_YES;
  }
  if (*upload_size) {
    if (rq->len + *upload_size > MAX_BODY) rq->too_big = 1;
    else {
      if (rq->len + *upload_size + 1 > rq->cap) rq->body = lsr_xrealloc(rq->body, rq->cap = (rq->len + *upload_size) * 2 + 1);
      memcpy(rq->body + rq->len, upload, *upload_size);
      rq->len += *upload_size;
      rq->body[rq->len] = 0;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  http h = {.conn = c, .arg = mhd_arg};
  if (!token_ok(s, c)) reply(&h, 401, "");
  else route(s, &h, url, method, rq);
  const char *body = h.body ? h.body : "";
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "application/json");
  if (h.allow) MHD_add_response_header(r, "Allow", h.allow);
  enum MHD_Result rc = MHD_queue_response(c, h.status, r);
  MHD_destroy_response(r);
  free(h.body);
  return rc;
}

static void completed(void *cls, struct MHD_Connection *c, void **con, enum MHD_RequestTerminationCode why) {
  request *rq = *con;
  if (rq) free(rq->body);
  free(rq);
  *con = NULL;
}

/* MHD runs on our loop: its epoll fd is polled, its timeouts are timers. */
static void mhd_run(server *s);

static void mhd_timeout(uv_timer_t *t) { mhd_run(t->data); }

static void mhd_ready(uv_poll_t *p, int status, int events) { mhd_run(p->data); }

static void mhd_run(server *s) {
  MHD_run(s->mhd);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(s->mhd, &ms) == MHD_YES) uv_timer_start(&s->mhd_timer, mhd_timeout, ms, 0);
  else uv_timer_stop(&s->mhd_timer);
  /* what the requests wrote is committed before the next turn */
}

/* ---- start and stop ---- */

static char *read_or_make_token(const char *path, char *err, size_t errlen) {
  char *text;
  size_t len;
  if (access(path, F_OK) == 0) {
    if (lsr_read_file(path, &text, &len, 4096, err, errlen) < 0) return NULL;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) text[--len] = 0;
    if (len < 16) {
      snprintf(err, errlen, "%s: the token is too short (16 characters at least)", path);
      free(text);
      return NULL;
    }
    return text;
  }
  unsigned char raw[24];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) {
    if (fd >= 0) close(fd);
    snprintf(err, errlen, "cannot read /dev/urandom for a token");
    return NULL;
  }
  close(fd);
  char *tok = lsr_xalloc(sizeof raw * 2 + 1);
  for (size_t i = 0; i < sizeof raw; i++) sprintf(tok + 2 * i, "%02x", raw[i]);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, tok, strlen(tok)) != (ssize_t)strlen(tok) || write(fd, "\n", 1) != 1) {
    snprintf(err, errlen, "%s: cannot write the token: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    free(tok);
    return NULL;
  }
  close(fd);
  say("token written to %s (mode 0600)", path);
  return tok;
}

static void on_signal(uv_signal_t *h, int sig) {
  server *s = h->data;
  if (s->stopping) return;
  s->stopping = 1;
  say("signal %d: stopping (%d runs in flight stay in the store)", sig, s->eng->live_runs);
  uv_stop(s->eng->loop);
}

static const char usage_serve[] =
  "usage: luasoar serve --scripts DIR [--db FILE] [--listen HOST:PORT] [--token-file FILE]\n"
  "\n"
  "Runs the engine as a service: containers arrive over REST, active playbooks\n"
  "run on them, everything is kept in SQLite, and the scripts folder is watched\n"
  "(a changed playbook is a new generation; runs in flight keep theirs).\n"
  "\n"
  "  --scripts DIR      playbooks/, custom_functions/, apps/, assets.json, custom_lists/\n"
  "  --db FILE          the store (default ./luasoar.db)\n"
  "  --listen HOST:PORT (default 127.0.0.1:8420)\n"
  "  --max-db-pages N   cap the store at N pages of 4 KiB (to test a full disk)\n"
  "  --limit NAME=N     an engine limit, as for luasoar run (repeatable)\n"
  "  --token-file FILE  the API token (default: FILE.token beside the store, created\n"
  "                     on first start with a random token, mode 0600); every request\n"
  "                     needs the header ph-auth-token: TOKEN\n";

/* The store, the token, the engine over the scripts, the playbooks, and
 * the runs recovered; everything but HTTP, watchers and signals. */
static int server_open(server *sp, const char *scripts, const char *db, const char *max_pages,
                       const char *token_file, int with_token, const char **limits, int nlimits,
                       char *err, size_t errlen) {
  server s;
  char path[4096];
  memset(&s, 0, sizeof s);
  s.store = lsr_store_open(db, err, errlen);
  if (!s.store) return -1;
  if (max_pages) { /* a store that fills up (tests of a full disk) */
    char pragma[64];
    snprintf(pragma, sizeof pragma, "PRAGMA max_page_count = %lld", atoll(max_pages));
    lsr_store_exec(s.store, pragma, "");
    lsr_store_commit(s.store);
  }
  snprintf(path, sizeof path, "%s.token", db);
  s.token = with_token ? read_or_make_token(token_file ? token_file : path, err, errlen) : lsr_strdup("");
  if (!s.token) { lsr_store_close(s.store); return -1; }
  s.eng = lsr_engine_new(NULL, err, errlen);
  if (!s.eng) return -1;
  lsr_engine *eng = s.eng;
  for (int i = 0; i < nlimits; i++) /* before recovery: recovered runs get them too */
    if (lsr_limit_set(eng, limits[i], err, errlen) < 0) return -1;
  s.scripts = lsr_strdup(scripts);
  eng->scripts_dir = lsr_strdup(scripts);
  char apps[4096], assets[4096], lists[4096];
  snprintf(apps, sizeof apps, "%s/apps", scripts);
  snprintf(assets, sizeof assets, "%s/assets.json", scripts);
  snprintf(lists, sizeof lists, "%s/custom_lists", scripts);
  if (lsr_config_load(eng->cfg, apps, assets, 0, err, errlen) < 0 || lsr_lists_load(eng, lists, err, errlen) < 0)
    return -1;
  /* the store's lists and objects are newer than the files' */
  lsr_store_each(s.store, restore_row, &s, "SELECT 'seed_list', name, rows FROM custom_lists", "");
  lsr_store_each(s.store, restore_row, &s, "SELECT 'restore_object', container_key, key, value FROM objects", "");
  /* ids go on from the store's */
  eng->next_run_id = lsr_store_int(s.store, 0, "SELECT max(id) FROM playbook_runs", "") + 1;
  eng->next_action_run_id = lsr_store_int(s.store, 0, "SELECT max(coalesce((SELECT max(id) FROM action_runs), 0),"
                                          " coalesce((SELECT max(id) FROM prompts), 0),"
                                          " coalesce((SELECT max(id) FROM calls WHERE kind = 'custom_function'), 0))",
                                          "") + 1;
  eng->next_app_run_id = lsr_store_int(s.store, 0, "SELECT max(id) FROM app_runs", "") + 1;
  *sp = s;
  /* the observers point at the caller's struct */
  eng->obs = (lsr_observer){.on_log = on_log, .on_run_end = on_run_end, .on_run_start = on_run_start,
                            .on_action = on_action, .on_app_run = on_app_run, .on_delivered = on_delivered,
                            .persist = persist, .max_id = max_id, .ud = sp};
  scan(sp);
  recover(sp);
  return 0;
}

/* For the fuzz harness of request bodies: a server with no HTTP; requests
 * go straight to the router, and the engine runs what they start. */
void *lsr_serve_test_open(const char *scripts, const char *db, char *err, size_t errlen) {
  server *s = lsr_xalloc(sizeof *s);
  if (server_open(s, scripts, db, NULL, NULL, 0, NULL, 0, err, errlen) < 0) {
    free(s);
    return NULL;
  }
  return s;
}

unsigned lsr_serve_test_request(void *srv, const char *method, const char *url, const char *body, size_t len,
                                char **out) {
  server *s = srv;
  request rq = {0};
  rq.body = lsr_strndup(body, len);
  rq.len = len;
  rq.too_big = len > MAX_BODY;
  http h = {0};
  route(s, &h, url, method, &rq);
  lsr_engine_drain(s->eng);
  if (lsr_store_in_transaction(s->store)) lsr_store_commit(s->store);
  free(rq.body);
  *out = h.body ? h.body : lsr_strdup("");
  return h.status;
}

int lsr_serve_main(int argc, char **argv) {
  const char *scripts = NULL, *db = "luasoar.db", *listen = "127.0.0.1:8420", *token_file = NULL, *max_pages = NULL;
  const char *limits[16];
  int nlimits = 0;
  for (int i = 0; i < argc; i++) {
    const char **dst = NULL;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { fputs(usage_serve, stdout); return 0; }
    if (strcmp(argv[i], "--scripts") == 0) dst = &scripts;
    else if (strcmp(argv[i], "--db") == 0) dst = &db;
    else if (strcmp(argv[i], "--listen") == 0) dst = &listen;
    else if (strcmp(argv[i], "--token-file") == 0) dst = &token_file;
    else if (strcmp(argv[i], "--max-db-pages") == 0) dst = &max_pages;
    else if (strcmp(argv[i], "--limit") == 0 && nlimits < 16) dst = &limits[nlimits++];
    else {
      fprintf(stderr, "luasoar serve: unknown argument '%s' (see 'luasoar serve --help')\n", argv[i]);
      return 2;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "luasoar serve: option '%s' needs a value\n", argv[i]);
      return 2;
    }
    *dst = argv[++i];
  }
  if (!scripts) { fprintf(stderr, "luasoar serve: --scripts DIR is required\n"); return 2; }
  struct stat sb;
  if (stat(scripts, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "luasoar serve: %s: not a folder\n", scripts);
    return 2;
  }
  char host[256];
  int port;
  const char *colon = strrchr(listen, ':');
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  if (!colon || colon - listen >= (long)sizeof host || (port = atoi(colon + 1)) <= 0 || port > 65535) {
    fprintf(stderr, "luasoar serve: --listen %s: expected HOST:PORT\n", listen);
    return 2;
  }
  snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &addr.sin_addr) != 1) {
    fprintf(stderr, "luasoar serve: --listen %s: not an IPv4 address\n", listen);
    return 2;
  }

  char err[2048], marker[4096], marker_err[2048] = "";
  server s;
  /* the watchdog's step marker, beside the store: recovery reads the last
   * death from it (its error is said after the store's own checks) */
  snprintf(marker, sizeof marker, "%s-step", db);
  lsr_watchdog_open(marker, marker_err, sizeof marker_err);
  if (server_open(&s, scripts, db, max_pages, token_file, 1, limits, nlimits, err, sizeof err) < 0) {
    fprintf(stderr, "luasoar serve: %s\n", err);
    return 2;
  }
  if (marker_err[0]) {
    fprintf(stderr, "luasoar serve: %s\n", marker_err);
    return 2;
  }
  lsr_engine *eng = s.eng;
  s.mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle, &s,
                           MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_NOTIFY_COMPLETED, completed, &s,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
  if (!s.mhd) {
    fprintf(stderr, "luasoar serve: cannot listen on %s: %s\n", listen, strerror(errno));
    return 2;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s.mhd, MHD_DAEMON_INFO_EPOLL_FD);
  uv_poll_init(eng->loop, &s.mhd_poll, info->epoll_fd);
  s.mhd_poll.data = &s;
  uv_poll_start(&s.mhd_poll, UV_READABLE, mhd_ready);
  uv_timer_init(eng->loop, &s.mhd_timer);
  s.mhd_timer.data = &s;
  uv_timer_init(eng->loop, &s.debounce);
  s.debounce.data = &s;
  watch_dir(&s, scripts);
  uv_check_init(eng->loop, &s.commit);
  s.commit.data = &s;
  uv_check_start(&s.commit, (uv_check_cb)commit_turn);
  uv_prepare_init(eng->loop, &s.commit_idle);
  s.commit_idle.data = &s;
  uv_prepare_start(&s.commit_idle, (uv_prepare_cb)commit_turn);
  uv_signal_init(eng->loop, &s.sig_int);
  uv_signal_init(eng->loop, &s.sig_term);
  s.sig_int.data = s.sig_term.data = &s;
  uv_signal_start(&s.sig_int, on_signal, SIGINT);
  uv_signal_start(&s.sig_term, on_signal, SIGTERM);
  say("listening on %s:%d, store %s, scripts %s, %d playbooks", host, port, db, scripts, s.npbs);
  /* recovery is committed: the marker starts clean and the watchdog watches */
  if (lsr_watchdog_start(eng->step_seconds, LSR_WATCHDOG_SERVE, 0, NULL, err, sizeof err) < 0) {
    fprintf(stderr, "luasoar serve: %s\n", err);
    return 2;
  }
  mhd_run(&s);
  uv_run(eng->loop, UV_RUN_DEFAULT);

  /* stopping: what was done is committed, the store is closed */
  MHD_stop_daemon(s.mhd);
  commit_turn((uv_handle_t *)&s.commit);
  lsr_store_close(s.store);
  say("stopped");
  fflush(stderr);
  _exit(0); /* runs in flight are in the store; nothing else to tear down */
}
