/* rest.c: the REST routes of `luasoar serve`: containers, artifacts, runs
 * asked for, prompts' answers, and what GET reads.  The router never sees
 * libmicrohttpd (http.c feeds it), so a fuzz harness can drive it
 * (lsr_serve_test_request). */
#include "internal.h"
#include "soar.h"

static int reply(http *c, unsigned status, const char *json) {
  c->status = status;
  free(c->body);
  c->body = lsr_strdup(json);
  return 1;
}

int srv_fail(http *c, unsigned status, const char *fmt, ...) {
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
  int rc = json ? reply(c, status, json) : srv_fail(c, 404, "not found");
  free(json);
  return rc;
}

/* Action runs as stored keep the parameters a playbook gave (a restart may
 * run them again); answers hide SOAR connectors' password parameters. */
static int reply_masked(server *s, http *c, char *json) {
  char *masked = json ? lsr_soar_mask_rows(s->eng->cfg, json) : NULL;
  free(json);
  return reply_owned(c, 200, masked);
}

/* The body as a JSON object; NULL after replying 400. */
static yajl_val body_object(http *c, request *rq, int *rc) {
  char why[256];
  if (lsr_json_check(rq->body ? rq->body : "", rq->len, why, sizeof why) < 0) {
    *rc = srv_fail(c, 400, "malformed JSON in the request body at %s", why);
    return NULL;
  }
  yajl_val v = yajl_tree_parse(rq->body, why, sizeof why);
  if (!v || !YAJL_IS_OBJECT(v)) {
    yajl_tree_free(v);
    *rc = srv_fail(c, 400, "the request body must be a JSON object");
    return NULL;
  }
  return v;
}

static yajl_val field(yajl_val obj, const char *key) {
  const char *path[] = {key, NULL};
  return yajl_tree_get(obj, path, yajl_t_any);
}

/* A whole number as the API takes it (ids, pages): ASCII digits only, no
 * sign, no space, nothing after, at most INT64_MAX.  0 when s is not one. */
int srv_parse_id(const char *s, size_t n, int64_t *out) {
  uint64_t v = 0;
  if (n == 0 || n > 19) return 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (uint64_t)(s[i] - '0'); /* 19 digits fit in 64 bits */
  }
  if (v > (uint64_t)INT64_MAX) return 0;
  *out = (int64_t)v;
  return 1;
}

/* A query argument that must be a whole number: 1 when given (in *v), 0
 * when absent, -1 after replying 400. */
static int num_arg(http *c, const char *name, int64_t *v, int *rc) {
  const char *a = c->arg ? c->arg(c->conn, name) : NULL;
  if (!a) return 0;
  if (srv_parse_id(a, strlen(a), v)) return 1;
  *rc = srv_fail(c, 400, "query argument '%s': expected a whole number (digits only), got '%.40s'", name, a);
  return -1;
}

/* url = prefix, then a segment up to the next '/' or the end, then *rest:
 * 1 when the segment is an id (in *id), -1 when it is not, 0 when url does
 * not start with prefix. */
static int url_id(const char *url, const char *prefix, int64_t *id, const char **rest) {
  size_t n = strlen(prefix);
  if (strncmp(url, prefix, n) != 0) return 0;
  const char *seg = url + n, *end = strchr(seg, '/');
  if (!end) end = seg + strlen(seg);
  *rest = end;
  return srv_parse_id(seg, (size_t)(end - seg), id) ? 1 : -1;
}

/* Commit what a request wrote before acknowledging it. */
static int durable(server *s, http *c, int *rc) {
  if (lsr_store_commit_ack(s->store) == 0) return 1;
  srv_say("error: refused a request, the store cannot keep it: %s", lsr_store_error(s->store));
  *rc = srv_fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  return 0;
}

static int insert_artifact(server *s, int64_t cid, const char *json, int64_t *id) {
  /* chosen before the insert so that the data carries it */
  *id = srv_new_id(LSR_ID_ARTIFACT, s);
  return lsr_store_exec(s->store, LSR_Q_ARTIFACT_INSERT, "iisd", *id, cid, json, lsr_now());
}

/* {"id": N, "success": true}: what was stored, once it is on disk; a
 * container's answer adds "runs_started" (runs >= 0) */
static int reply_created(http *c, int64_t id, int runs) {
  char out[128];
  if (runs >= 0) snprintf(out, sizeof out, "{\"id\": %lld, \"success\": true, \"runs_started\": %d}", (long long)id, runs);
  else snprintf(out, sizeof out, "{\"id\": %lld, \"success\": true}", (long long)id);
  return reply(c, 200, out);
}

static int post_container(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val arts = field(v, "artifacts");
  if (arts && !YAJL_IS_ARRAY(arts)) {
    yajl_tree_free(v);
    return srv_fail(c, 400, "field 'artifacts': expected a list");
  }
  for (size_t i = 0; arts && i < arts->u.array.len; i++)
    if (!YAJL_IS_OBJECT(arts->u.array.values[i])) {
      yajl_tree_free(v);
      return srv_fail(c, 400, "artifacts[%zu]: expected an object", i + 1);
    }
  yajl_val label = field(v, "label"), status = field(v, "status");
  if ((label && !YAJL_IS_STRING(label)) || (status && !YAJL_IS_STRING(status))) {
    yajl_tree_free(v);
    return srv_fail(c, 400, "fields 'label' and 'status' must be strings");
  }
  char *lab = lsr_strdup(label ? label->u.string : "events"), *sta = lsr_strdup(status ? status->u.string : "new");
  double now = lsr_now();
  /* the id as in insert_artifact: in the data from the first write */
  int64_t cid = srv_new_id(LSR_ID_CONTAINER, s), aid;
  int ok = lsr_store_exec(s->store, LSR_Q_CONTAINER_INSERT, "isssd", cid, lab, sta, rq->body, now) == 0;
  for (size_t i = 0; ok && arts && i < arts->u.array.len; i++) {
    char *a = lsr_tree_to_json(arts->u.array.values[i]);
    ok = insert_artifact(s, cid, a, &aid) == 0;
    free(a);
  }
  size_t nart = arts ? arts->u.array.len : 0;
  yajl_tree_free(v);
  if (!ok) {
    free(lab);
    free(sta);
    lsr_store_rollback(s->store);
    srv_say("error: refused a container, the store cannot keep it: %s", lsr_store_error(s->store));
    return srv_fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  }
  int matched, runs = srv_run_active(s, cid, &matched); /* their rows go into the same commit */
  if (!durable(s, c, &rc)) {
    free(lab);
    free(sta);
    return rc;
  }
  srv_say("ingest container %lld (%s, %zu artifacts): %d run%s started", (long long)cid, lab, nart, runs,
      runs == 1 ? "" : "s");
  if (!matched && strcmp(sta, "closed") != 0)
    srv_say("container %lld: no active playbook takes label '%s' (playbook_info = {labels = {...}, active = true})",
        (long long)cid, lab);
  free(lab);
  free(sta);
  return reply_created(c, cid, runs);
}

static int post_artifact(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val cidv = field(v, "container_id");
  if (!cidv) cidv = field(v, "container");
  if (!cidv || !YAJL_IS_INTEGER(cidv)) {
    yajl_tree_free(v);
    return srv_fail(c, 400, "field 'container_id': expected the id of a container");
  }
  int64_t cid = YAJL_GET_INTEGER(cidv);
  yajl_val ra = field(v, "run_automation");
  int automation = !(ra && YAJL_IS_FALSE(ra));
  yajl_tree_free(v);
  if (!lsr_store_int(s->store, 0, LSR_Q_CONTAINER_EXISTS, "i", cid))
    return srv_fail(c, 404, "no container %lld", (long long)cid);
  int64_t aid;
  if (insert_artifact(s, cid, rq->body, &aid) < 0) {
    lsr_store_rollback(s->store);
    return srv_fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  }
  lsr_store_exec(s->store, LSR_Q_ARTIFACT_CLEAN, "i", aid);
  if (automation) srv_run_active(s, cid, NULL);
  if (!durable(s, c, &rc)) return rc;
  srv_say("ingest artifact %lld into container %lld", (long long)aid, (long long)cid);
  return reply_created(c, aid, -1);
}

static int post_playbook_run(server *s, http *c, request *rq) {
  int rc;
  yajl_val v = body_object(c, rq, &rc);
  if (!v) return rc;
  yajl_val cidv = field(v, "container_id"), pbv = field(v, "playbook_id"), scv = field(v, "scope");
  char err[1024], out[128];
  if (!cidv || !YAJL_IS_INTEGER(cidv) || !pbv || !YAJL_IS_STRING(pbv)) {
    yajl_tree_free(v);
    return srv_fail(c, 400, "expected {\"container_id\": N, \"playbook_id\": \"repo/name\", \"scope\": \"new\"}");
  }
  char *scope = scv ? (YAJL_IS_STRING(scv) ? lsr_strdup(scv->u.string) : lsr_tree_to_json(scv)) : lsr_strdup("new");
  pb_entry *p = srv_find_pb(s, pbv->u.string);
  int64_t cid = YAJL_GET_INTEGER(cidv);
  if (!p || !p->gen) {
    rc = srv_fail(c, 404, "no playbook '%s'%s%s", pbv->u.string, p && p->error ? ": " : "", p && p->error ? p->error : "");
  } else if (scv && !YAJL_IS_STRING(scv) && !YAJL_IS_ARRAY(scv)) {
    rc = srv_fail(c, 400, "field 'scope': expected \"new\", \"all\" or a list of artifact ids");
  } else {
    int64_t id = srv_start_run(s, p, cid, scope, err, sizeof err);
    if (!id) rc = srv_fail(c, strstr(err, "no container") ? 404 : 400, "%s", err);
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
    return srv_fail(c, 400, "expected {\"responses\": [...]}");
  }
  char *responses = lsr_tree_to_json(r);
  yajl_tree_free(v);
  int64_t run = lsr_store_int(s->store, 0, LSR_Q_PROMPT_PENDING_RUN, "i", id);
  rc = srv_answer(s, id, run, responses) ? reply(c, 200, "{\"success\": true}")
                                         : srv_fail(c, 404, "no pending prompt %lld", (long long)id);
  free(responses);
  return rc;
}

int srv_answer(server *s, int64_t id, int64_t run, const char *responses) {
  char *args = lsr_xalloc(strlen(responses) + 64);
  sprintf(args, "[%lld, %s]", (long long)id, responses);
  int ok = 0;
  if (run && lsr_sched_call(s->eng, run, "prompt_answer", args) == 0) {
    /* the first answer wins: the prompt is no longer pending */
    lsr_store_exec(s->store, LSR_Q_PROMPT_ANSWERED, "i", id);
    ok = 1;
  } else {
    ok = run && srv_answer_elsewhere(s, id, responses); /* its run is on another node */
  }
  free(args);
  return ok && lsr_store_commit_ack(s->store) == 0;
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
  /* in a cluster, what each node serves: {"node": {"playbook": generation}} */
  char *nodes = s->cluster ? lsr_store_text(s->store, LSR_Q_NODES_PLAYBOOKS, "") : NULL;
  out = lsr_xrealloc(out, n + (nodes ? strlen(nodes) : 0) + 16);
  sprintf(out + n, "]%s%s}", nodes ? ", \"nodes\": " : "", nodes ? nodes : "");
  free(nodes);
  return out;
}


/* ---- the run log, a page at a time ---- */

#define LOG_PAGE_SIZE 100         /* lines per page when page_size is not given */
#define LOG_PAGE_MAX 1000         /* lines per page at most (page_size=0 asks for that) */
#define LOG_PAGE_BYTES (4u << 20) /* message text per answer, as JSON */
#define LOG_PREVIEW 256           /* what a line past that budget still shows, as JSON */

typedef struct {
  char *out;
  size_t len, cap;
  size_t budget; /* of LOG_PAGE_BYTES, what is left */
  int rows;
} log_page;

static void page_put(log_page *p, const char *text, size_t n) {
  if (p->len + n + 1 > p->cap) p->out = lsr_xrealloc(p->out, p->cap = (p->len + n + 1) * 2);
  memcpy(p->out + p->len, text, n);
  p->len += n;
  p->out[p->len] = 0;
}

/* text as a JSON string of at most max bytes, quotes included, cut (if it
 * must be) at a character's start; how many bytes of text it holds. */
static size_t page_put_string(log_page *p, const char *text, size_t max) {
  static const char hex[] = "0123456789abcdef";
  size_t used = 2, i = 0;
  for (; text[i]; i++) {
    unsigned char ch = (unsigned char)text[i];
    size_t w = ch == '"' || ch == '\\' || ch == '\n' || ch == '\r' || ch == '\t' ? 2 : ch < 0x20 ? 6 : 1;
    if (used + w > max) break;
    used += w;
  }
  if (text[i])
    while (i > 0 && ((unsigned char)text[i] & 0xC0) == 0x80) i--;
  if (p->len + used + 1 > p->cap) p->out = lsr_xrealloc(p->out, p->cap = (p->len + used + 1) * 2);
  char *o = p->out + p->len;
  *o++ = '"';
  for (size_t k = 0; k < i; k++) {
    unsigned char ch = (unsigned char)text[k];
    if (ch == '"' || ch == '\\') { *o++ = '\\'; *o++ = (char)ch; }
    else if (ch == '\n') { *o++ = '\\'; *o++ = 'n'; }
    else if (ch == '\r') { *o++ = '\\'; *o++ = 'r'; }
    else if (ch == '\t') { *o++ = '\\'; *o++ = 't'; }
    else if (ch < 0x20) { memcpy(o, "\\u00", 4); o[4] = hex[ch >> 4]; o[5] = hex[ch & 15]; o += 6; }
    else *o++ = (char)ch;
  }
  *o++ = '"';
  p->len = (size_t)(o - p->out);
  p->out[p->len] = 0;
  return i;
}

/* One line: level, time, message.  Its message comes whole while the
 * answer's budget lasts; past it, cut to LOG_PREVIEW, marked truncated. */
static void log_row(void *ud, int ncols, const char **cols) {
  log_page *p = ud;
  const char *msg = ncols > 2 && cols[2] ? cols[2] : "";
  size_t before, took, used, whole = strlen(msg);
  const char *open = p->rows++ ? ", {\"message\": " : "{\"message\": ";
  page_put(p, open, strlen(open));
  before = p->len;
  took = page_put_string(p, msg, p->budget > LOG_PREVIEW ? p->budget : LOG_PREVIEW);
  used = p->len - before;
  p->budget = used < p->budget ? p->budget - used : 0;
  page_put(p, ", \"message_type\": ", strlen(", \"message_type\": "));
  page_put_string(p, cols[0] ? cols[0] : "", 64);
  page_put(p, ", \"time\": ", strlen(", \"time\": "));
  page_put_string(p, cols[1] ? cols[1] : "", 64);
  if (took < whole) {
    char more[80];
    int n = snprintf(more, sizeof more, ", \"truncated\": true, \"message_bytes\": %zu", whole);
    page_put(p, more, (size_t)n);
  }
  page_put(p, "}", 1);
}

/* GET /rest/playbook_run/N/log?page=P&page_size=S: as SOAR's REST pages,
 * {"count": lines in all, "num_pages": n, "page": P, "page_size": S,
 * "data": [the lines of page P, from line P*S on]}.  At most LOG_PAGE_MAX
 * lines and about LOG_PAGE_BYTES of text whatever the log holds. */
static int get_log(server *s, http *c, int64_t id) {
  int64_t page = 0, size = LOG_PAGE_SIZE;
  int rc;
  if (num_arg(c, "page", &page, &rc) < 0 || num_arg(c, "page_size", &size, &rc) < 0) return rc;
  if (size == 0 || size > LOG_PAGE_MAX) size = LOG_PAGE_MAX;
  if (!lsr_store_int(s->store, 0, LSR_Q_RUN_EXISTS, "i", id))
    return srv_fail(c, 404, "no playbook run %lld", (long long)id);
  int64_t count = lsr_store_int(s->store, 0, LSR_Q_LOG_COUNT, "i", id);
  int64_t pages = (count + size - 1) / size;
  log_page p = {.budget = LOG_PAGE_BYTES};
  char head[160];
  int n = snprintf(head, sizeof head, "{\"count\": %lld, \"num_pages\": %lld, \"page\": %lld, \"page_size\": %lld,"
                   " \"data\": [", (long long)count, (long long)pages, (long long)page, (long long)size);
  page_put(&p, head, (size_t)n);
  if (page < pages) /* so page * size does not overflow */
    lsr_store_each(s->store, log_row, &p, LSR_Q_LOG_PAGE, "iii", id, size, page * size);
  page_put(&p, "]}", 2);
  return reply_owned(c, 200, p.out);
}

/* The nodes that share the store: on SQLite, this server alone. */
static char *cluster_json(server *s) {
  if (s->cluster) return lsr_store_text(s->store, LSR_Q_CLUSTER_NODES, "");
  char out[256];
  snprintf(out, sizeof out, "{\"count\": 1, \"data\": [{\"node\": null, \"self\": true, \"runs\": %d}],"
           " \"unclaimed_runs\": 0}", s->eng->live_runs);
  return lsr_strdup(out);
}

static int get(server *s, http *c, const char *url) {
  int64_t id = 0, cid = 0;
  const char *rest;
  int rc, given;
  /* route() checked the path with allowed_methods: its id parses */
  if (url_id(url, "/rest/container/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store,
        LSR_Q_CONTAINER_GET, "i", id));
  if (strcmp(url, "/rest/container") == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        LSR_Q_CONTAINERS_LIST, ""));
  if (strcmp(url, "/rest/artifact") == 0) {
    if ((given = num_arg(c, "_filter_container", &cid, &rc)) < 0) return rc;
    return reply_owned(c, 200, lsr_store_text(s->store,
        LSR_Q_ARTIFACTS_LIST, "ii", (int64_t)given, cid));
  }
  if (url_id(url, "/rest/artifact/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store, LSR_Q_ARTIFACT_GET, "i", id));
  if (url_id(url, "/rest/playbook_run/", &id, &rest) == 1) {
    if (!*rest)
      return reply_owned(c, 200, lsr_store_text(s->store, LSR_Q_RUN_GET, "i", id));
    if (strcmp(rest, "/log") == 0) return get_log(s, c, id);
  }
  if (strcmp(url, "/rest/playbook_run") == 0) {
    if ((given = num_arg(c, "_filter_container", &cid, &rc)) < 0) return rc;
    return reply_owned(c, 200, lsr_store_text(s->store,
        LSR_Q_RUNS_LIST, "ii",
        (int64_t)given, cid));
  }
  if (strcmp(url, "/rest/action_run") == 0) {
    int64_t rid = 0;
    if ((given = num_arg(c, "_filter_playbook_run", &rid, &rc)) < 0) return rc;
    return reply_masked(s, c, lsr_store_text(s->store,
        LSR_Q_ACTION_RUNS_LIST, "ii", (int64_t)given, rid));
  }
  if (url_id(url, "/rest/app_run/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store,
        LSR_Q_APP_RUN_GET, "i", id));
  if (strcmp(url, "/rest/prompt") == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        LSR_Q_PROMPTS_LIST, ""));
  if (strcmp(url, "/rest/playbook") == 0) return reply_owned(c, 200, playbooks_json(s));
  if (strcmp(url, "/rest/cluster") == 0) {
    char *json = cluster_json(s);
    if (!json) return srv_fail(c, 503, "the store cannot say: %s", lsr_store_error(s->store));
    return reply_owned(c, 200, json);
  }
  return srv_fail(c, 404, "no such resource: %s", url);
}

/* The paths with an id, and what follows the id. */
static const struct {
  const char *prefix, *rest, *methods;
} id_paths[] = {
  {"/rest/container/", "", "GET"},    {"/rest/artifact/", "", "GET"},         {"/rest/app_run/", "", "GET"},
  {"/rest/playbook_run/", "", "GET"}, {"/rest/playbook_run/", "/log", "GET"}, {"/rest/prompt/", "/answer", "POST"},
};

/* Which methods a path takes, for 405 (NULL: unknown path; *bad: a path
 * with an id whose id is not one, such as "+1", " 1" or "1x"). */
static const char *allowed_methods(const char *url, int *bad) {
  *bad = 0;
  if (strcmp(url, "/rest/container") == 0 || strcmp(url, "/rest/artifact") == 0 ||
      strcmp(url, "/rest/playbook_run") == 0)
    return "GET, POST";
  if (strcmp(url, "/rest/action_run") == 0 || strcmp(url, "/rest/playbook") == 0 || strcmp(url, "/rest/prompt") == 0 ||
      strcmp(url, "/rest/cluster") == 0)
    return "GET";
  for (size_t i = 0; i < sizeof id_paths / sizeof *id_paths; i++) {
    int64_t id;
    const char *rest;
    int k = url_id(url, id_paths[i].prefix, &id, &rest);
    if (k < 0) *bad = 1;
    if (k > 0 && strcmp(rest, id_paths[i].rest) == 0) return id_paths[i].methods;
  }
  return NULL;
}

/* method is one of the comma-separated methods in allowed, exactly. */
static int method_in(const char *allowed, const char *method) {
  size_t m = strlen(method);
  for (const char *p = allowed; *p;) {
    size_t n = strcspn(p, ",");
    if (n == m && strncmp(p, method, m) == 0) return 1;
    p += n;
    while (*p == ',' || *p == ' ') p++;
  }
  return 0;
}

/* What the request line alone refuses: 400 (a malformed id), 404, 405.
 * 1 after replying. */
int srv_refuse(http *c, const char *url, const char *method) {
  int bad;
  const char *allowed = allowed_methods(url, &bad);
  if (!allowed && bad) return srv_fail(c, 400, "malformed id in %s: an id is digits only", url);
  if (!allowed) return srv_fail(c, 404, "no such resource: %s", url);
  if (!method_in(allowed, method)) {
    c->allow = allowed;
    return srv_fail(c, 405, "method %s not allowed on %s (allowed: %s)", method, url, allowed);
  }
  return 0;
}

/* Every request after its token was checked. */
int srv_route(server *s, http *c, const char *url, const char *method, request *rq) {
  if (s->stopping) return srv_fail(c, 503, "shutting down");
  if (strcmp(method, "POST") == 0) lsr_store_try_now(s->store); /* a database that was away may be back */
  srv_commit_now(s); /* what a request sees is on disk: a crash after it keeps it */
  if (srv_refuse(c, url, method)) return 1;
  if (strcmp(method, "POST") == 0) {
    if (rq->too_big) return srv_fail(c, 413, "the request body is larger than %u bytes", MAX_BODY);
    int64_t id;
    const char *rest;
    if (strcmp(url, "/rest/container") == 0) return post_container(s, c, rq);
    if (strcmp(url, "/rest/artifact") == 0) return post_artifact(s, c, rq);
    if (strcmp(url, "/rest/playbook_run") == 0) return post_playbook_run(s, c, rq);
    if (url_id(url, "/rest/prompt/", &id, &rest) == 1) return post_answer(s, c, rq, id);
  }
  return get(s, c, url);
}

/* For the fuzz harness of request bodies (lsr_serve_test_open): a request
 * straight to the router; the engine runs what it starts. */
unsigned lsr_serve_test_request(void *srv, const char *method, const char *url, const char *body, size_t len,
                                char **out) {
  server *s = srv;
  request rq = {0};
  rq.body = lsr_strndup(body, len);
  rq.len = len;
  rq.too_big = len > MAX_BODY;
  http h = {0};
  srv_route(s, &h, url, method, &rq);
  lsr_engine_drain(s->eng);
  if (lsr_store_in_transaction(s->store)) lsr_store_commit(s->store);
  free(rq.body);
  *out = h.body ? h.body : lsr_strdup("");
  return h.status;
}
