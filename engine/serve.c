/* serve.c: `luasoar serve`, the long-running engine.  Containers arrive over
 * REST (libmicrohttpd, driven by the engine's libuv loop: one thread), are
 * stored in SQLite before they are acknowledged, and start every active
 * playbook whose labels match.  The scripts folder is watched: a changed
 * playbook becomes a new generation for new runs while runs in flight finish
 * on theirs.  Every step of a run goes to the store as it happens.
 * No Lua here: the engine's C interface does the Lua side. */
#include "engine.h"
#include "exec_runner.h"
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "serve_internal.h"

/* ---- logging: one line per event ---- */

void srv_say(const char *fmt, ...) {
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
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  lsr_store_exec(s->store,
                 "INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope,"
                 " start_time, update_time, parent_run_id) VALUES(?1, ?2, ?3, ?4, 'running', '', ?5, ?6, ?6, ?7)"
                 " ON CONFLICT(id) DO UPDATE SET parent_run_id = ?7, generation = ?4",
                 "iisisdi", run->id, run->container_id, pb, (int64_t)run->gen->number, scope, now, run->parent_run_id);
}

static void on_run_start(lsr_run *run, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  const char *scope = run->ud ? (const char *)run->ud : "new";
  const char *pb = run->gen->path + strlen(s->scripts) + strlen("/playbooks/");
  char *id = lsr_strndup(pb, strlen(pb) - 4);
  double now = lsr_now();
  if (run->recovered) {
    /* recovered after a restart: it goes on, on the newest generation */
    lsr_store_exec(s->store, "UPDATE playbook_runs SET generation = ?, update_time = ? WHERE id = ?", "idi",
                   (int64_t)run->gen->number, now, run->id);
    srv_say("run %lld resumes: %s on container %lld (generation %d)", (long long)run->id, id,
        (long long)run->container_id, run->gen->number);
    free(id);
    return;
  }
  /* started by srv_start_run (run->ud is its scope): its row was written
   * then, with these values, in the transaction of the request or turn that
   * started it; a run whose turn was lost fails before it starts and is
   * written here */
  if (!run->ud || run->failed) record_run(s, run, id, scope, now);
  srv_say("run %lld start: %s on container %lld (generation %d)", (long long)run->id, id,
      (long long)run->container_id, run->gen->number);
  free(id);
}

void srv_free_gen_if_done(server *s, lsr_gen *g) {
  if (!g->retired || g->runs > 0) return;
  srv_say("generation %d of %s freed", g->number, g->path);
  lsr_gen_free(s->eng, g);
  s->live_gens--;
}

static void on_run_end(lsr_run *run, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  double now = lsr_now();
  lsr_store_exec(s->store, "UPDATE playbook_runs SET status = ?, message = ?, update_time = ? WHERE id = ?",
                 "ssdi", run->failed ? "failed" : "success", run->error ? run->error : "", now, run->id);
  /* what the run left unfinished ends with it */
  lsr_store_exec(s->store, "UPDATE action_runs SET status = 'cancelled', update_time = ? WHERE run_id = ?"
                 " AND status = 'running'", "di", now, run->id);
  lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE run_id = ? AND status = 'pending'", "i",
                 run->id);
  lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE run_id = ? AND status = 'running'", "i", run->id);
  srv_say("run %lld end: %s%s%s", (long long)run->id, run->failed ? "failed" : "success", run->error ? ": " : "",
      run->error ? run->error : "");
  free(run->ud);
  run->ud = NULL;
  srv_free_gen_if_done(s, run->gen);
}

static void on_log(lsr_run *run, const lsr_log_entry *e, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, ?, ?, ?)", "issd", run->id,
                 e->level == LSR_LOG_ERROR ? "error" : "debug", e->message, e->time);
}

static void on_action(lsr_action_run *ar, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, ar->run->id, ar->run->container_id); /* a lost turn fails it */
  /* parameters as one JSON list, assets as names */
  size_t n = 3;
  for (int i = 0; i < ar->nparams; i++) n += strlen(lsr_act_param_json(ar, i)) + 1;
  char *params = lsr_xalloc(n);
  strcpy(params, "[");
  for (int i = 0; i < ar->nparams; i++) {
    if (i) strcat(params, ",");
    strcat(params, lsr_act_param_json(ar, i));
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
  lsr_store_touch(s->store, apr->ar->run->id, apr->ar->run->container_id); /* a lost turn fails it */
  lsr_store_exec(s->store,
                 "INSERT OR REPLACE INTO app_runs(id, action_run_id, run_id, asset, app, status, message, result,"
                 " end_time) VALUES(?, ?, ?, ?, ?, json_extract(?, '$.status'), json_extract(?, '$.message'), ?, ?)",
                 "iiisssssd", apr->id, apr->ar->id, apr->ar->run->id, apr->asset->name, apr->asset->app->name, result,
                 result, result, lsr_now());
}

static void on_delivered(lsr_action_run *ar, void *ud) {
  server *s = ud;
  if (ar->run) lsr_store_touch(s->store, ar->run->id, ar->run->container_id);
  lsr_store_exec(s->store, "UPDATE action_runs SET status = ?, delivered = 1, update_time = ? WHERE id = ?", "sdi",
                 ar->success ? "success" : "failed", lsr_now(), ar->id);
}

static void persist(lsr_run *run, const char *kind, const char *key, const char *json, void *ud) {
  server *s = ud;
  int64_t rid = run ? run->id : 0;
  double now = lsr_now();
  if (run) lsr_store_touch(s->store, rid, run->container_id);
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
  } else if (strcmp(kind, "owner") == 0) { /* quotas: the playbook that answers for "object\0container\0key"
                                              or "list\0name" */
    const char *a = key + strlen(key) + 1, *b = a;
    if (strcmp(key, "object") == 0) b = a + strlen(a) + 1;
    else a = "";
    if (strcmp(json, "null") == 0)
      lsr_store_exec(s->store, "DELETE FROM shared_owners WHERE kind = ? AND container_key = ? AND key = ?", "sss",
                     key, a, b);
    else
      lsr_store_exec(s->store, "INSERT OR REPLACE INTO shared_owners VALUES(?, ?, ?, json_extract(?, '$'))", "ssss",
                     key, a, b, json);
  } else if (strcmp(kind, "list") == 0) {
    if (strcmp(json, "null") == 0) lsr_store_exec(s->store, "DELETE FROM custom_lists WHERE name = ?", "s", key);
    else lsr_store_exec(s->store, "INSERT OR REPLACE INTO custom_lists VALUES(?, ?)", "ss", key, json);
  } else if (strcmp(kind, "prompt") == 0) {
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO prompts(id, run_id, name, prompt, status, deadline)"
                   " VALUES(?, ?, json_extract(?, '$.name'), ?, 'pending', json_extract(?, '$.deadline'))",
                   "iisss", (int64_t)atoll(key), rid, json, json, json);
    srv_say("prompt %s of run %lld waits for an answer (POST /rest/prompt/%s/answer)", key, (long long)rid, key);
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
  } else if (strcmp(kind, "app_state") == 0) { /* a SOAR connector's save_state, per asset */
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO app_state VALUES(?, ?)", "ss", key, json);
  } else if (strcmp(kind, "app_key") == 0) { /* encryption_helper's, for good */
    lsr_store_exec(s->store, "INSERT OR IGNORE INTO meta VALUES('app_key', ?)", "s", json);
  } else if (strcmp(kind, "outputs") == 0) {
    lsr_store_exec(s->store, "UPDATE playbook_runs SET outputs = ? WHERE id = ?", "si", json, rid);
  }
}

/* Each turn of the loop ends with one commit of what it wrote (the check
 * phase), and nothing stays uncommitted while the loop waits (prepare). */
void srv_commit_now(server *s) {
  if (lsr_store_in_transaction(s->store) && lsr_store_commit(s->store) < 0)
    srv_say("error: the store refused a commit: %s", lsr_store_error(s->store));
}

/* bindings/runtime.h (which includes Lua) declares them */
void lsr_run_log(lsr_run *run, lsr_log_level level, const char *msg, size_t len);
void lsr_run_settle(lsr_run *run);

/* A turn SQLite rolled back (full disk, I/O error) fails as a whole
 * (store.c), and so does every run that wrote in it: nothing half-written
 * may be marked done.  A live run fails now, with the reason in its log; a
 * run that had already ended (its end was in the lost turn) gets its row
 * marked failed.  Those writes are a turn of their own: if it is lost too,
 * the runs come back on the next commit. */
static void fail_lost_runs(server *s) {
  size_t n;
  lsr_store_run *lost = lsr_store_take_lost(s->store, &n);
  if (!lost) return;
  char msg[700];
  snprintf(msg, sizeof msg, "the store lost a turn of this run (its writes were rolled back): %s",
           lsr_store_error(s->store));
  double now = lsr_now();
  for (size_t i = 0; i < n; i++) {
    int64_t id = lost[i].run_id;
    int seen = 0;
    for (size_t j = 0; j < i && !seen; j++) seen = lost[j].run_id == id;
    if (seen) continue;
    lsr_run *run = s->eng->runs;
    while (run && run->id != id) run = run->next;
    if (run && run->state != LSR_RUN_ENDED) {
      if (run->state != LSR_RUN_NEW) lsr_run_log(run, LSR_LOG_ERROR, msg, strlen(msg));
      lsr_run_fail(run, msg);
      if (run->state != LSR_RUN_NEW) lsr_run_settle(run); /* not started: it ends at its start */
      continue;
    }
    lsr_store_touch(s->store, id, lost[i].container_id);
    if (lsr_store_exec(s->store, "UPDATE playbook_runs SET status = 'failed', message = ?, update_time = ?"
                       " WHERE id = ?", "sdi", msg, now, id) == 0 && lsr_store_changes(s->store) == 0)
      lsr_store_exec(s->store, "INSERT INTO playbook_runs(id, container_id, status, message, start_time, update_time,"
                     " started) VALUES(?, ?, 'failed', ?, ?, ?, 1)", "iisdd", id, lost[i].container_id, msg, now, now);
    lsr_store_exec(s->store, "INSERT INTO run_log(run_id, level, message, time) VALUES(?, 'error', ?, ?)", "isd",
                   id, msg, now);
    lsr_store_exec(s->store, "UPDATE action_runs SET status = 'cancelled', update_time = ? WHERE run_id = ?"
                   " AND status = 'running'", "di", now, id);
    lsr_store_exec(s->store, "UPDATE prompts SET status = 'cancelled' WHERE run_id = ? AND status = 'pending'", "i", id);
    lsr_store_exec(s->store, "UPDATE calls SET status = 'done' WHERE run_id = ? AND status = 'running'", "i", id);
    srv_say("run %lld failed: %s", (long long)id, msg);
  }
  free(lost);
  if (lsr_store_in_transaction(s->store)) lsr_store_commit(s->store); /* lost again: retried next turn */
}

static void commit_turn(uv_handle_t *h) {
  srv_commit_now(h->data);
  fail_lost_runs(h->data);
}

/* ---- starting runs ---- */

static int labels_match(char **labels, const char *label) {
  for (int i = 0; labels && labels[i]; i++)
    if (strcmp(labels[i], "*") == 0 || (label && strcmp(labels[i], label) == 0)) return 1;
  return 0;
}

/* The container as runs see it: its data with its artifacts, by id. */
char *srv_container_json(server *s, int64_t id) {
  return lsr_store_text(s->store,
                        "SELECT json_set(data, '$.id', id, '$.artifacts', json((SELECT json_group_array(json(data))"
                        " FROM (SELECT data FROM artifacts WHERE container_id = ?1 ORDER BY id))))"
                        " FROM containers WHERE id = ?1", "i", id);
}

/* What a call needs that is no longer in memory (serve keeps only what live
 * runs use): a container by id, with its artifacts; the id of the container
 * that holds a pin. */
static char *load_stored(const char *kind, const char *key, void *ud) {
  server *s = ud;
  if (strcmp(kind, "container") == 0) return srv_container_json(s, (int64_t)atoll(key));
  if (strcmp(kind, "pin") == 0)
    return lsr_store_text(s->store, "SELECT c.id FROM containers c, json_each(c.data, '$.pins') p"
                          " WHERE instr(c.data, '\"pins\"') AND json_extract(p.value, '$.id') = ? LIMIT 1", "i",
                          (int64_t)atoll(key));
  if (strcmp(kind, "app_state") == 0) return lsr_store_text(s->store, "SELECT state FROM app_state WHERE asset = ?", "s", key);
  if (strcmp(kind, "app_key") == 0) return lsr_store_text(s->store, "SELECT value FROM meta WHERE key = 'app_key'", "");
  return NULL;
}

/* Start a run of p on a stored container.  scope: "new", "all" or a JSON
 * list of artifact ids.  The run's id, or 0 with err set. */
int64_t srv_start_run(server *s, pb_entry *p, int64_t cid, const char *scope, char *err, size_t errlen) {
  char *json = srv_container_json(s, cid);
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
  if (last > seen) /* seen was read above, in this turn: nothing wrote it since */
    lsr_store_exec(s->store, "INSERT OR REPLACE INTO seen VALUES(?, ?, ?)", "sii", p->id, cid, last);
  run->ud = lsr_strdup(scope);
  return run->id;
}

/* Every active playbook whose labels match an open container; how many
 * runs started, and in *matched how many playbooks matched (NULL: not asked). */
int srv_run_active(server *s, int64_t cid, int *matched) {
  char *label = lsr_store_text(s->store, "SELECT label FROM containers WHERE id = ?", "i", cid);
  char *status = lsr_store_text(s->store, "SELECT status FROM containers WHERE id = ?", "i", cid);
  char err[1024];
  int started = 0, match = 0;
  if (!status || strcmp(status, "closed") != 0) {
    for (int i = 0; i < s->npbs; i++) {
      pb_entry *p = &s->pbs[i];
      if (!p->gen || !p->active || !labels_match(p->labels, label)) continue;
      match++;
      if (srv_start_run(s, p, cid, "new", err, sizeof err)) started++;
      else srv_say("error: cannot start %s on container %lld: %s", p->id, (long long)cid, err);
    }
  }
  free(label);
  free(status);
  if (matched) *matched = match;
  return started;
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
  srv_say("token written to %s (mode 0600)", path);
  return tok;
}

static void on_signal(uv_signal_t *h, int sig) {
  server *s = h->data;
  if (s->stopping) return;
  s->stopping = 1;
  srv_say("signal %d: stopping (%d runs in flight stay in the store)", sig, s->eng->live_runs);
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
  "                     needs the header ph-auth-token: TOKEN\n"
  "  --header-deadline S  seconds a request's headers may take from the connection's\n"
  "                     accept (or its last answer); later, it is closed (default 10)\n"
  "  --per-address N    open connections per client address (default 32)\n";

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
  snprintf(path, sizeof path, "%s.vault", db); /* SOAR connectors' files, beside the store */
  eng->vault_dir = lsr_strdup(path);
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
  /* the store's lists and objects are newer than the files'; each with the
   * playbook that answers for it (quotas) */
  lsr_store_exec(s.store, "CREATE TABLE IF NOT EXISTS shared_owners(kind TEXT, container_key TEXT, key TEXT,"
                 " playbook TEXT, PRIMARY KEY(kind, container_key, key))", "");
  lsr_store_exec(s.store, "CREATE TABLE IF NOT EXISTS app_state(asset TEXT PRIMARY KEY, state TEXT)", "");
  lsr_store_commit(s.store);
  lsr_store_each(s.store, srv_restore_row, &s, "SELECT 'seed_list', l.name, l.rows, (SELECT w.playbook FROM shared_owners w"
                 " WHERE w.kind = 'list' AND w.container_key = '' AND w.key = l.name) FROM custom_lists l", "");
  lsr_store_each(s.store, srv_restore_row, &s, "SELECT 'restore_object', o.container_key, o.key, o.value, (SELECT"
                 " w.playbook FROM shared_owners w WHERE w.kind = 'object' AND w.container_key = o.container_key"
                 " AND w.key = o.key) FROM objects o", "");
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
                            .persist = persist, .max_id = srv_max_id, .load = load_stored, .ud = sp};
  srv_scan(sp);
  srv_recover(sp);
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


int lsr_serve_main(int argc, char **argv) {
  const char *scripts = NULL, *db = "luasoar.db", *listen = "127.0.0.1:8420", *token_file = NULL, *max_pages = NULL;
  const char *deadline = NULL, *per_address = NULL;
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
    else if (strcmp(argv[i], "--header-deadline") == 0) dst = &deadline;
    else if (strcmp(argv[i], "--per-address") == 0) dst = &per_address;
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
  char *end = NULL;
  double header_deadline = deadline ? strtod(deadline, &end) : HEADER_DEADLINE;
  int64_t per_ip = CONN_PER_ADDRESS;
  if ((end && (end == deadline || *end)) || !(header_deadline > 0 && header_deadline <= 3600)) {
    fprintf(stderr, "luasoar serve: --header-deadline %s: expected seconds, more than 0 and at most 3600\n", deadline);
    return 2;
  }
  if (per_address && (!srv_parse_id(per_address, strlen(per_address), &per_ip) || per_ip < 1 || per_ip > 100000)) {
    fprintf(stderr, "luasoar serve: --per-address %s: expected a number from 1 to 100000\n", per_address);
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
  s.header_deadline = header_deadline;
  /* connections take file descriptors: as many as the hard limit allows,
   * and room kept for the store, apps' pipes and the watchers */
  struct rlimit nofile;
  unsigned conn_limit = CONN_LIMIT;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < 4096 && nofile.rlim_max > nofile.rlim_cur) {
      nofile.rlim_cur = nofile.rlim_max == RLIM_INFINITY || nofile.rlim_max > 4096 ? 4096 : nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
      getrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < CONN_LIMIT * 2)
      conn_limit = nofile.rlim_cur > 512 ? (unsigned)nofile.rlim_cur / 2 : 128;
  }
  if (srv_http_start(&s, (struct sockaddr *)&addr, conn_limit, (unsigned)per_ip) < 0) {
    fprintf(stderr, "luasoar serve: cannot listen on %s: %s\n", listen, strerror(errno));
    return 2;
  }
  uv_timer_init(eng->loop, &s.sweep);
  s.sweep.data = &s;
  uv_timer_init(eng->loop, &s.debounce);
  s.debounce.data = &s;
  srv_watch_dir(&s, scripts);
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
  srv_say("listening on %s:%d, store %s, scripts %s, %d playbooks", host, port, db, scripts, s.npbs);
  /* recovery is committed: the marker starts clean and the watchdog watches */
  if (lsr_watchdog_start(eng->step_seconds, LSR_WATCHDOG_SERVE, NULL, 0, err, sizeof err) < 0) {
    fprintf(stderr, "luasoar serve: %s\n", err);
    return 2;
  }
  srv_mhd_run(&s);
  uv_run(eng->loop, UV_RUN_DEFAULT);

  /* stopping: what was done is committed, the store is closed */
  MHD_stop_daemon(s.mhd);
  commit_turn((uv_handle_t *)&s.commit);
  lsr_store_close(s.store);
  lsr_exec_reaper_close(eng->loop); /* apps in flight and what they left behind die with us */
  srv_say("stopped");
  fflush(stderr);
  _exit(0); /* runs in flight are in the store; nothing else to tear down */
}
