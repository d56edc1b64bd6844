/* runs.c: starting runs in `luasoar serve`: a container's runs (the active
 * playbooks whose labels match), a run asked for over REST, and what the
 * engine reads back from the store (containers, objects). */
#include "internal.h"

static int labels_match(char **labels, const char *label) {
  for (int i = 0; labels && labels[i]; i++)
    if (strcmp(labels[i], "*") == 0 || (label && strcmp(labels[i], label) == 0)) return 1;
  return 0;
}

/* The container as runs see it: its data with its artifacts, by id. */
char *srv_container_json(server *s, int64_t id) {
  return lsr_store_text(s->store,
                        LSR_Q_CONTAINER_WITH_ARTIFACTS, "i", id);
}

/* What a call needs that is no longer in memory (serve keeps only what live
 * runs use): a container by id, with its artifacts; the id of the container
 * that holds a pin. */
char *srv_load_stored(const char *kind, const char *key, void *ud) {
  server *s = ud;
  if (strcmp(kind, "container") == 0) return srv_container_json(s, (int64_t)atoll(key));
  if (strcmp(kind, "pin") == 0)
    return lsr_store_text(s->store, LSR_Q_CONTAINER_BY_PIN, "i", (int64_t)atoll(key));
  if (strcmp(kind, "app_state") == 0) return lsr_store_text(s->store, LSR_Q_APP_STATE_GET, "s", key);
  if (strcmp(kind, "app_key") == 0) return lsr_store_text(s->store, LSR_Q_APP_KEY_GET, "");
  return NULL;
}

/* text is a JSON list of integers */
static int is_id_list(const char *text) {
  yajl_val v = yajl_tree_parse(text, NULL, 0);
  int ok = v && YAJL_IS_ARRAY(v);
  for (size_t i = 0; ok && i < v->u.array.len; i++) ok = YAJL_IS_INTEGER(v->u.array.values[i]);
  yajl_tree_free(v);
  return ok;
}

/* Start a run of p on a stored container.  scope: "new", "all" or a JSON
 * list of artifact ids.  The run's id, or 0 with err set. */
int64_t srv_start_run(server *s, pb_entry *p, int64_t cid, const char *scope, char *err, size_t errlen) {
  char *json = srv_container_json(s, cid);
  if (!json) {
    snprintf(err, errlen, "no container %lld", (long long)cid);
    return 0;
  }
  if (strcmp(scope, "new") != 0 && strcmp(scope, "all") != 0 && !is_id_list(scope)) {
    free(json);
    snprintf(err, errlen, "field 'scope': expected \"new\", \"all\" or a list of artifact ids");
    return 0;
  }
  lsr_run *run = lsr_run_json(s->eng, p->gen, json, strlen(json), "container", err, errlen);
  free(json);
  if (!run) return 0;
  srv_record_run(s, run, p->id, scope, lsr_now());
  /* scope "new": the artifacts this playbook has not seen on this container */
  int64_t seen = lsr_store_int(s->store, 0, LSR_Q_SEEN_GET, "si", p->id, cid);
  int64_t last = lsr_store_int(s->store, 0, LSR_Q_ARTIFACT_MAX_IN_CONTAINER, "i", cid);
  char *list = NULL;
  if (strcmp(scope, "new") == 0)
    list = lsr_store_text(s->store, LSR_Q_ARTIFACTS_AFTER, "ii", cid, seen);
  else if (strcmp(scope, "all") != 0)
    list = lsr_strdup(scope);
  if (list) lsr_run_state_set(run, "scope_list", list);
  free(list);
  if (last > seen) /* seen was read above, in this turn: nothing wrote it since */
    lsr_store_exec(s->store, LSR_Q_SEEN_PUT, "sii", p->id, cid, last);
  run->ud = lsr_strdup(scope);
  return run->id;
}

/* Every active playbook whose labels match an open container; how many
 * runs started, and in *matched how many playbooks matched (NULL: not asked). */
int srv_run_active(server *s, int64_t cid, int *matched) {
  char *label = lsr_store_text(s->store, LSR_Q_CONTAINER_LABEL, "i", cid);
  char *status = lsr_store_text(s->store, LSR_Q_CONTAINER_STATUS, "i", cid);
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
