/* journal.c: the run journal of `luasoar serve`: every step of a run goes
 * to the store as it happens (the engine's observers), and each turn of the
 * loop ends with one commit of what it wrote; a turn the store lost fails
 * the runs that wrote in it. */
#include "internal.h"

/* bindings/runtime.h (which includes Lua) declares them */
void lsr_run_log(lsr_run *run, lsr_log_level level, const char *msg, size_t len);
void lsr_run_settle(lsr_run *run);

/* The run's row; written as soon as a run exists, in the transaction of
 * the request that started it. */
void srv_record_run(server *s, lsr_run *run, const char *pb, const char *scope, double now) {
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  lsr_store_exec(s->store,
                 LSR_Q_RUN_INSERT,
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
    lsr_store_exec(s->store, LSR_Q_RUN_GENERATION, "idi",
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
  if (!run->ud || run->failed) srv_record_run(s, run, id, scope, now);
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

/* What an ended run left unfinished ends with it: its action runs still
 * running are cancelled, its prompts too, its calls are done. */
void srv_end_open_rows(server *s, int64_t run_id, double now) {
  lsr_store_exec(s->store, LSR_Q_RUN_CANCEL_ACTIONS, "di", now, run_id);
  lsr_store_exec(s->store, LSR_Q_RUN_CANCEL_PROMPTS, "i", run_id);
  lsr_store_exec(s->store, LSR_Q_RUN_CLOSE_CALLS, "i", run_id);
}

static void on_run_end(lsr_run *run, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  double now = lsr_now();
  lsr_store_exec(s->store, LSR_Q_RUN_STATUS,
                 "ssdi", run->failed ? "failed" : "success", run->error ? run->error : "", now, run->id);
  srv_end_open_rows(s, run->id, now);
  srv_say("run %lld end: %s%s%s", (long long)run->id, run->failed ? "failed" : "success", run->error ? ": " : "",
      run->error ? run->error : "");
  free(run->ud);
  run->ud = NULL;
  srv_free_gen_if_done(s, run->gen);
}

static void on_log(lsr_run *run, const lsr_log_entry *e, void *ud) {
  server *s = ud;
  lsr_store_touch(s->store, run->id, run->container_id); /* a lost turn fails it */
  lsr_store_exec(s->store, LSR_Q_LOG_INSERT, "issd", run->id,
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
                 LSR_Q_ACTION_INSERT,
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
                 LSR_Q_APP_RUN_PUT,
                 "iiisssssd", apr->id, apr->ar->id, apr->ar->run->id, apr->asset->name, apr->asset->app->name, result,
                 result, result, lsr_now());
}

static void on_delivered(lsr_action_run *ar, void *ud) {
  server *s = ud;
  if (ar->run) lsr_store_touch(s->store, ar->run->id, ar->run->container_id);
  lsr_store_exec(s->store, LSR_Q_ACTION_DELIVERED, "sdi",
                 ar->success ? "success" : "failed", lsr_now(), ar->id);
}

static void persist(lsr_run *run, const char *kind, const char *key, const char *json, void *ud) {
  server *s = ud;
  int64_t rid = run ? run->id : 0;
  double now = lsr_now();
  if (run) lsr_store_touch(s->store, rid, run->container_id);
  if (strcmp(kind, "run_data") == 0)
    lsr_store_exec(s->store, LSR_Q_RUN_DATA_PUT, "iss", rid, key, json);
  else if (strcmp(kind, "container") == 0)
    lsr_store_exec(s->store,
                   LSR_Q_CONTAINER_UPDATE, "sssdi", json, json, json, now, (int64_t)atoll(key));
  else if (strcmp(kind, "artifact") == 0)
    lsr_store_exec(s->store, LSR_Q_ARTIFACT_ADDED, "issd", (int64_t)atoll(key), json, json, now);
  else if (strcmp(kind, "object") == 0) {
    const char *key2 = key + strlen(key) + 1; /* "container\0key" */
    if (strcmp(json, "null") == 0)
      lsr_store_exec(s->store, LSR_Q_OBJECT_DELETE, "ss", key, key2);
    else
      lsr_store_exec(s->store, LSR_Q_OBJECT_PUT, "sss", key, key2, json);
  } else if (strcmp(kind, "owner") == 0) { /* quotas: the playbook that answers for "object\0container\0key"
                                              or "list\0name" */
    const char *a = key + strlen(key) + 1, *b = a;
    if (strcmp(key, "object") == 0) b = a + strlen(a) + 1;
    else a = "";
    if (strcmp(json, "null") == 0)
      lsr_store_exec(s->store, LSR_Q_OWNER_DELETE, "sss",
                     key, a, b);
    else
      lsr_store_exec(s->store, LSR_Q_OWNER_PUT, "ssss",
                     key, a, b, json);
  } else if (strcmp(kind, "list") == 0) {
    if (strcmp(json, "null") == 0) lsr_store_exec(s->store, LSR_Q_LIST_DELETE, "s", key);
    else lsr_store_exec(s->store, LSR_Q_LIST_PUT, "ss", key, json);
  } else if (strcmp(kind, "prompt") == 0) {
    lsr_store_exec(s->store, LSR_Q_PROMPT_PUT, "iisss", (int64_t)atoll(key), rid, json, json, json);
    srv_say("prompt %s of run %lld waits for an answer (POST /rest/prompt/%s/answer)", key, (long long)rid, key);
  } else if (strcmp(kind, "prompt_done") == 0) {
    lsr_store_exec(s->store, LSR_Q_PROMPT_ANSWERED_BY_RUN, "ssi", json, json, (int64_t)atoll(key));
  } else if (strcmp(kind, "call") == 0) { /* custom function or child playbook started */
    lsr_store_exec(s->store, LSR_Q_CALL_PUT, "iiss", (int64_t)atoll(key), rid, json, json);
  } else if (strcmp(kind, "call_done") == 0) {
    /* ids: custom functions' are action run ids, children's run ids */
    lsr_store_exec(s->store, LSR_Q_CALL_DONE, "si",
                   json, (int64_t)atoll(key));
  } else if (strcmp(kind, "delivered") == 0) { /* a recovered action's callback ran */
    lsr_store_exec(s->store, LSR_Q_ACTION_RECOVERED_DELIVERED, "sdi", json, now, (int64_t)atoll(key));
  } else if (strcmp(kind, "superseded") == 0) { /* run again after a restart */
    lsr_store_exec(s->store, LSR_Q_ACTION_SUPERSEDED, "di", now, (int64_t)atoll(key));
  } else if (strcmp(kind, "released") == 0) { /* an action's app runs went */
    lsr_store_exec(s->store, LSR_Q_ACTION_RELEASED, "i", (int64_t)atoll(key));
  } else if (strcmp(kind, "discontinued") == 0) {
    lsr_store_exec(s->store, LSR_Q_RUN_DISCONTINUED, "i", rid);
  } else if (strcmp(kind, "started") == 0) { /* on_start returned */
    lsr_store_exec(s->store, LSR_Q_RUN_STARTED, "i", rid);
  } else if (strcmp(kind, "app_state") == 0) { /* a SOAR connector's save_state, per asset */
    lsr_store_exec(s->store, LSR_Q_APP_STATE_PUT, "ss", key, json);
  } else if (strcmp(kind, "app_key") == 0) { /* encryption_helper's, for good */
    lsr_store_exec(s->store, LSR_Q_APP_KEY_PUT, "s", json);
  } else if (strcmp(kind, "outputs") == 0) {
    lsr_store_exec(s->store, LSR_Q_RUN_OUTPUTS, "si", json, rid);
  }
}

/* Each turn of the loop ends with one commit of what it wrote (the check
 * phase), and nothing stays uncommitted while the loop waits (prepare). */
void srv_commit_now(server *s) {
  if (!lsr_store_in_transaction(s->store)) return;
  size_t before = lsr_store_kept(s->store), kept;
  if (lsr_store_commit(s->store) == 0) {
    if (before) srv_say("the database is back: %zu writes kept while it was away are written", before);
  } else if (!(kept = lsr_store_kept(s->store))) {
    srv_say("error: the store refused a commit: %s", lsr_store_error(s->store));
  } else if (!before) {
    srv_say("the database is away (%s): runs go on, their writes are kept until it is back",
            lsr_store_error(s->store));
  }
}


/* A turn SQLite rolled back (full disk, I/O error) fails as a whole
 * (store/sqlite.c), and so does every run that wrote in it: nothing half-written
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
    if (lsr_store_exec(s->store, LSR_Q_RUN_FAILED, "sdi", msg, now, id) == 0 && lsr_store_changes(s->store) == 0)
      lsr_store_exec(s->store, LSR_Q_RUN_INSERT_FAILED, "iisdd", id, lost[i].container_id, msg, now, now);
    lsr_store_exec(s->store, LSR_Q_LOG_ERROR, "isd",
                   id, msg, now);
    srv_end_open_rows(s, id, now);
    srv_say("run %lld failed: %s", (long long)id, msg);
  }
  free(lost);
  if (lsr_store_in_transaction(s->store)) lsr_store_commit(s->store); /* lost again: retried next turn */
}

void srv_commit_turn(uv_handle_t *h) {
  server *s = h->data;
  srv_commit_now(s);
  if (lsr_store_fenced(s->store)) srv_fenced_stop(s); /* its runs are another node's now */
  fail_lost_runs(s);
  srv_cluster_notes(s); /* what other nodes said, read with this turn's answers */
}

/* ---- ids ---- */

static void take_block(void *ud, int ncols, const char **cols) {
  int64_t *b = ud;
  if (ncols < 2 || !cols[0]) return;
  b[0] = strtoll(cols[0], NULL, 10);
  b[1] = cols[1] ? strtoll(cols[1], NULL, 10) : 1;
}

/* A new id of kind, from the block the store gave this server (on
 * PostgreSQL a sequence's block, unique across the servers that share the
 * database; on SQLite one block with no end, from the largest id stored).
 * If the store cannot give one, the id is negative: it names no row of
 * another server. */
int64_t srv_new_id(lsr_id_kind kind, void *ud) {
  static const char *const names[] = LSR_ID_NAMES;
  server *s = ud;
  srv_ids *ids = &s->ids[kind];
  if (ids->next >= ids->limit && ids->spare[1]) { /* the block taken ahead */
    ids->next = ids->spare[0];
    ids->limit = ids->spare[0] + ids->spare[1];
    ids->spare[1] = 0;
  }
  if (ids->next >= ids->limit) {
    int64_t block[2] = {0, 0};
    if (lsr_store_begin(s->store) < 0 ||
        lsr_store_each(s->store, take_block, block, LSR_Q_ID_NEXT, "s", names[kind]) < 0 || block[0] < 1) {
      srv_say("store: cannot take new %s ids: %s", names[kind], lsr_store_error(s->store));
      return -(++s->bad_ids);
    }
    ids->next = block[0];
    ids->limit = block[1] > 0 ? block[0] + block[1] : INT64_MAX;
    ids->size = block[1];
  }
  /* half a block used: the next one is taken ahead, so that a database
   * away for a while rarely leaves the engine without ids */
  if (ids->size > 1 && !ids->spare[1] && ids->limit - ids->next <= ids->size / 2 &&
      lsr_store_each(s->store, take_block, ids->spare, LSR_Q_ID_NEXT, "s", names[kind]) < 0)
    ids->spare[1] = 0;
  return ids->next++;
}

/* The engine's observers write to s's store. */
void srv_journal_attach(server *s) {
  s->eng->obs = (lsr_observer){.on_log = on_log, .on_run_end = on_run_end, .on_run_start = on_run_start,
                               .on_action = on_action, .on_app_run = on_app_run, .on_delivered = on_delivered,
                               .persist = persist, .new_id = srv_new_id, .load = srv_load_stored, .ud = s};
}
