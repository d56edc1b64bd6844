/* serve_rest.c: the REST routes of `luasoar serve` and the libmicrohttpd
 * side that feeds them (token on the headers, header deadline, per-address
 * caps).  The engine side is serve.c. */
#include "serve_internal.h"
#include "soar.h"

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
  *rc = fail(c, 400, "query argument '%s': expected a whole number (digits only), got '%.40s'", name, a);
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
  if (lsr_store_commit(s->store) == 0) return 1;
  srv_say("error: refused a request, the store cannot keep it: %s", lsr_store_error(s->store));
  *rc = fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  return 0;
}

static int insert_artifact(server *s, int64_t cid, const char *json, int64_t *id) {
  double now = lsr_now();
  /* the id SQLite would give (the largest plus one), chosen before the
   * insert so that the data carries it without a second write of the row;
   * the caller may pass the next one (*id > 0: nothing else writes between) */
  if (*id <= 0) *id = lsr_store_int(s->store, 0, "SELECT max(id) FROM artifacts", "") + 1;
  return lsr_store_exec(s->store, "INSERT INTO artifacts(id, container_id, data, create_time)"
                        " VALUES(?1, ?2, json_set(json_remove(?3, '$.id'), '$.container', ?2, '$.id', ?1), ?4)",
                        "iisd", *id, cid, json, now);
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
  /* the id as in insert_artifact: in the data from the first write */
  int64_t cid = lsr_store_int(s->store, 0, "SELECT max(id) FROM containers", "") + 1;
  int ok = lsr_store_exec(s->store, "INSERT INTO containers(id, label, status, data, create_time, update_time)"
                          " VALUES(?1, ?2, ?3, json_set(json_remove(?4, '$.artifacts', '$.id'), '$.label', ?2,"
                          " '$.status', ?3, '$.id', ?1), ?5, ?5)", "isssd", cid, lab, sta, rq->body, now) == 0;
  int64_t aid = 0; /* the artifacts' ids: the first from the store, then one by one */
  for (size_t i = 0; ok && arts && i < arts->u.array.len; i++) {
    char *a = lsr_tree_to_json(arts->u.array.values[i]);
    if (aid) aid++;
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
    return fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
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
    return fail(c, 400, "field 'container_id': expected the id of a container");
  }
  int64_t cid = YAJL_GET_INTEGER(cidv);
  yajl_val ra = field(v, "run_automation");
  int automation = !(ra && YAJL_IS_FALSE(ra));
  yajl_tree_free(v);
  if (!lsr_store_int(s->store, 0, "SELECT count(*) FROM containers WHERE id = ?", "i", cid))
    return fail(c, 404, "no container %lld", (long long)cid);
  int64_t aid = 0;
  if (insert_artifact(s, cid, rq->body, &aid) < 0) {
    lsr_store_rollback(s->store);
    return fail(c, 503, "the store cannot keep this: %s", lsr_store_error(s->store));
  }
  lsr_store_exec(s->store, "UPDATE artifacts SET data = json_remove(data, '$.container_id', '$.run_automation')"
                 " WHERE id = ?", "i", aid);
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
    return fail(c, 400, "expected {\"container_id\": N, \"playbook_id\": \"repo/name\", \"scope\": \"new\"}");
  }
  char *scope = scv ? (YAJL_IS_STRING(scv) ? lsr_strdup(scv->u.string) : lsr_tree_to_json(scv)) : lsr_strdup("new");
  pb_entry *p = srv_find_pb(s, pbv->u.string);
  int64_t cid = YAJL_GET_INTEGER(cidv);
  if (!p || !p->gen) {
    rc = fail(c, 404, "no playbook '%s'%s%s", pbv->u.string, p && p->error ? ": " : "", p && p->error ? p->error : "");
  } else if (scv && !YAJL_IS_STRING(scv) && !YAJL_IS_ARRAY(scv)) {
    rc = fail(c, 400, "field 'scope': expected \"new\", \"all\" or a list of artifact ids");
  } else {
    int64_t id = srv_start_run(s, p, cid, scope, err, sizeof err);
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
  if (!lsr_store_int(s->store, 0, "SELECT count(*) FROM playbook_runs WHERE id = ?", "i", id))
    return fail(c, 404, "no playbook run %lld", (long long)id);
  int64_t count = lsr_store_int(s->store, 0, "SELECT count(*) FROM run_log WHERE run_id = ?", "i", id);
  int64_t pages = (count + size - 1) / size;
  log_page p = {.budget = LOG_PAGE_BYTES};
  char head[160];
  int n = snprintf(head, sizeof head, "{\"count\": %lld, \"num_pages\": %lld, \"page\": %lld, \"page_size\": %lld,"
                   " \"data\": [", (long long)count, (long long)pages, (long long)page, (long long)size);
  page_put(&p, head, (size_t)n);
  if (page < pages) /* so page * size does not overflow */
    lsr_store_each(s->store, log_row, &p, "SELECT level, strftime('%Y-%m-%dT%H:%M:%fZ', time, 'unixepoch'), message"
                   " FROM run_log WHERE run_id = ? ORDER BY id LIMIT ? OFFSET ?", "iii", id, size, page * size);
  page_put(&p, "]}", 2);
  return reply_owned(c, 200, p.out);
}

static int get(server *s, http *c, const char *url) {
  int64_t id = 0, cid = 0;
  const char *rest;
  int rc, given;
  /* route() checked the path with allowed_methods: its id parses */
  if (url_id(url, "/rest/container/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_set(data, '$.id', id, '$.artifact_count', (SELECT count(*) FROM artifacts WHERE container_id = c.id))"
        " FROM containers c WHERE id = ?", "i", id));
  if (strcmp(url, "/rest/container") == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(data)))"
        " FROM (SELECT json_set(data, '$.id', id) AS data FROM containers ORDER BY id)", ""));
  if (strcmp(url, "/rest/artifact") == 0) {
    if ((given = num_arg(c, "_filter_container", &cid, &rc)) < 0) return rc;
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(data)))"
        " FROM (SELECT data FROM artifacts WHERE ?1 = 0 OR container_id = ?2 ORDER BY id)", "ii", (int64_t)given, cid));
  }
  if (url_id(url, "/rest/artifact/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store, "SELECT data FROM artifacts WHERE id = ?", "i", id));
  if (url_id(url, "/rest/playbook_run/", &id, &rest) == 1) {
    if (!*rest)
      return reply_owned(c, 200, lsr_store_text(s->store, "SELECT " RUN_JSON " FROM playbook_runs WHERE id = ?", "i", id));
    if (strcmp(rest, "/log") == 0) return get_log(s, c, id);
  }
  if (strcmp(url, "/rest/playbook_run") == 0) {
    if ((given = num_arg(c, "_filter_container", &cid, &rc)) < 0) return rc;
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(r)))"
        " FROM (SELECT " RUN_JSON " AS r FROM playbook_runs WHERE ?1 = 0 OR container_id = ?2 ORDER BY id)", "ii",
        (int64_t)given, cid));
  }
  if (strcmp(url, "/rest/action_run") == 0) {
    int64_t rid = 0;
    if ((given = num_arg(c, "_filter_playbook_run", &rid, &rc)) < 0) return rc;
    return reply_masked(s, c, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json(r))) FROM (SELECT json_object('id', id,"
        " 'playbook_run', run_id, 'name', name, 'action', action, 'status', status, 'callback', callback,"
        " 'parameters', json(coalesce(parameters, '[]')), 'app_runs', (SELECT json_group_array(id) FROM app_runs"
        " WHERE action_run_id = a.id), 'start_time', strftime('%Y-%m-%dT%H:%M:%fZ', start_time, 'unixepoch'),"
        " 'update_time', strftime('%Y-%m-%dT%H:%M:%fZ', update_time, 'unixepoch')) AS r FROM action_runs a"
        " WHERE ?1 = 0 OR run_id = ?2 ORDER BY id)", "ii", (int64_t)given, rid));
  }
  if (url_id(url, "/rest/app_run/", &id, &rest) == 1 && !*rest)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('id', id, 'action_run', action_run_id, 'playbook_run', run_id, 'asset', asset,"
        " 'app_name', app, 'status', status, 'message', message, 'result_data', json(result),"
        " 'end_time', strftime('%Y-%m-%dT%H:%M:%fZ', end_time, 'unixepoch')) FROM app_runs WHERE id = ?", "i", id));
  if (strcmp(url, "/rest/prompt") == 0)
    return reply_owned(c, 200, lsr_store_text(s->store,
        "SELECT json_object('count', count(*), 'data', json_group_array(json_object('id', id, 'playbook_run', run_id,"
        " 'name', name, 'status', status, 'prompt', json(prompt), 'responses', json(responses)))) FROM prompts", ""));
  if (strcmp(url, "/rest/playbook") == 0) return reply_owned(c, 200, playbooks_json(s));
  return fail(c, 404, "no such resource: %s", url);
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
  if (strcmp(url, "/rest/action_run") == 0 || strcmp(url, "/rest/playbook") == 0 || strcmp(url, "/rest/prompt") == 0)
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
static int refuse(http *c, const char *url, const char *method) {
  int bad;
  const char *allowed = allowed_methods(url, &bad);
  if (!allowed && bad) return fail(c, 400, "malformed id in %s: an id is digits only", url);
  if (!allowed) return fail(c, 404, "no such resource: %s", url);
  if (!method_in(allowed, method)) {
    c->allow = allowed;
    return fail(c, 405, "method %s not allowed on %s (allowed: %s)", method, url, allowed);
  }
  return 0;
}

/* Every request after its token was checked. */
static int route(server *s, http *c, const char *url, const char *method, request *rq) {
  if (s->stopping) return fail(c, 503, "shutting down");
  srv_commit_now(s); /* what a request sees is on disk: a crash after it keeps it */
  if (refuse(c, url, method)) return 1;
  if (strcmp(method, "POST") == 0) {
    if (rq->too_big) return fail(c, 413, "the request body is larger than %u bytes", MAX_BODY);
    int64_t id;
    const char *rest;
    if (strcmp(url, "/rest/container") == 0) return post_container(s, c, rq);
    if (strcmp(url, "/rest/artifact") == 0) return post_artifact(s, c, rq);
    if (strcmp(url, "/rest/playbook_run") == 0) return post_playbook_run(s, c, rq);
    if (url_id(url, "/rest/prompt/", &id, &rest) == 1) return post_answer(s, c, rq, id);
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

/* An open connection, for the header deadline: since when it waits for a
 * request's headers (its accept, or the end of its last request). */
struct conn {
  struct conn *prev, *next;
  double since;
  int fd;
  int in_request; /* the headers are in: the deadline no longer applies */
  int cut;        /* shut down by the sweep; libmicrohttpd closes it */
};

static double mono_now(void) { return (double)uv_hrtime() / 1e9; }

static struct conn *conn_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i ? i->socket_context : NULL;
}


/* Connections whose headers are not in by their deadline are shut down
 * (libmicrohttpd then reads the end and closes them).  A trickle of header
 * lines does not extend it: the deadline counts from the accept, not from
 * the last byte (libmicrohttpd's own timeout is an idle one). */
static void sweep_headers(uv_timer_t *t) {
  server *s = t->data;
  double now = mono_now();
  int cut = 0, late = 0;
  for (struct conn *k = s->conns; k && !late; k = k->next)
    late = !k->in_request && !k->cut && now - k->since > s->header_deadline;
  /* headers that came while the loop was busy (a long step) are read
   * first: only those still incomplete are late */
  if (late) srv_mhd_run(s);
  for (struct conn *k = s->conns; k; k = k->next)
    if (!k->in_request && !k->cut && now - k->since > s->header_deadline && k->fd >= 0) {
      shutdown(k->fd, SHUT_RDWR);
      k->cut = 1;
      cut++;
    }
  if (cut) {
    srv_say("http: closed %d connection%s whose request headers took more than %g s", cut, cut == 1 ? "" : "s",
        s->header_deadline);
    srv_mhd_run(s);
  }
  if (!s->conns) uv_timer_stop(t);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_ConnectionNotificationCode what) {
  server *s = cls;
  struct conn *k = *ctx;
  if (what == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k = lsr_xalloc(sizeof *k);
    k->fd = i ? (int)i->connect_fd : -1;
    k->since = mono_now();
    k->next = s->conns;
    if (s->conns) s->conns->prev = k;
    s->conns = k;
    *ctx = k;
    if (!uv_is_active((uv_handle_t *)&s->sweep)) uv_timer_start(&s->sweep, sweep_headers, 250, 250);
  } else if (k) { /* closed: the fd is closed right after, never shut down again */
    if (k->prev) k->prev->next = k->next;
    else s->conns = k->next;
    if (k->next) k->next->prev = k->prev;
    free(k);
    *ctx = NULL;
  }
}

/* The answer, queued; an answer given on the headers closes the connection
 * (the body, if any, is never read). */
static enum MHD_Result send_answer(struct MHD_Connection *c, http *h, int close) {
  const char *body = h->body ? h->body : "";
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", "application/json");
  if (h->allow) MHD_add_response_header(r, "Allow", h->allow);
  if (close) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result rc = MHD_queue_response(c, h->status, r);
  MHD_destroy_response(r);
  free(h->body);
  return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con) {
  server *s = cls;
  request *rq = *con;
  if (!rq) { /* the headers are in; no byte of the body was read */
    struct conn *k = conn_of(c);
    if (k) k->in_request = 1;
    http h = {.conn = c, .arg = mhd_arg};
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t n = 0;
    if (!token_ok(s, c)) fail(&h, 401, "a valid ph-auth-token header is required");
    else if (s->stopping) fail(&h, 503, "shutting down");
    else if (len && (!srv_parse_id(len, strlen(len), &n) || n > (int64_t)MAX_BODY))
      fail(&h, 413, "the request body is larger than %u bytes", MAX_BODY);
    else if (!refuse(&h, url, method)) { /* 400, 404, 405 on the request line alone */
      *con = lsr_xalloc(sizeof *rq);
      return MHD_YES; /* now the body, if any */
    }
    return send_answer(c, &h, 1);
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
  route(s, &h, url, method, rq);
  return send_answer(c, &h, 0);
}

static void completed(void *cls, struct MHD_Connection *c, void **con, enum MHD_RequestTerminationCode why) {
  request *rq = *con;
  struct conn *k = conn_of(c);
  if (k) { /* the next request's headers have their own deadline */
    k->in_request = 0;
    k->since = mono_now();
  }
  if (rq) free(rq->body);
  free(rq);
  *con = NULL;
}

/* libmicrohttpd's messages, through srv_say() and at most 20 per 10 s (a flood
 * of bad connections must not flood the log). */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  server *s = cls;
  double now = mono_now();
  if (now - s->mhd_log_since >= 10) {
    if (s->mhd_dropped) srv_say("http: %u more messages of libmicrohttpd not logged", s->mhd_dropped);
    s->mhd_log_since = now;
    s->mhd_logged = s->mhd_dropped = 0;
  }
  if (s->mhd_logged++ >= 20) {
    s->mhd_dropped++;
    return;
  }
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
  srv_say("http: %s", msg);
}

static int hex_digit(char ch) {
  return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* %HH in paths and query arguments, decoded; but %00 stays as it is: a NUL
 * would cut the text short ("/rest/container/1%00x" read as container 1). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *text) {
  char *w = text;
  for (const char *r = text; *r;) {
    int hi, lo;
    if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0 && (hi | lo)) {
      *w++ = (char)(hi * 16 + lo);
      r += 3;
    } else
      *w++ = *r++;
  }
  *w = 0;
  return (size_t)(w - text);
}

/* MHD runs on our loop: its epoll fd is polled, its timeouts are timers. */
static void mhd_timeout(uv_timer_t *t) { srv_mhd_run(t->data); }

static void mhd_ready(uv_poll_t *p, int status, int events) { srv_mhd_run(p->data); }

void srv_mhd_run(server *s) {
  MHD_run(s->mhd);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(s->mhd, &ms) == MHD_YES) uv_timer_start(&s->mhd_timer, mhd_timeout, ms, 0);
  else uv_timer_stop(&s->mhd_timer);
  /* what the requests wrote is committed before the next turn */
}

/* Listen on addr: libmicrohttpd's daemon, its epoll descriptor polled by the
 * loop, its timer.  -1 (errno set) if it cannot. */
int srv_http_start(server *s, struct sockaddr *addr, unsigned conn_limit, unsigned per_ip) {
  s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, s,
                           MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first: it logs what the others say */
                           MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                           MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                           MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
                           MHD_OPTION_CONNECTION_LIMIT, conn_limit,
                           MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
  if (!s->mhd) return -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  uv_poll_init(s->eng->loop, &s->mhd_poll, info->epoll_fd);
  s->mhd_poll.data = s;
  uv_poll_start(&s->mhd_poll, UV_READABLE, mhd_ready);
  uv_timer_init(s->eng->loop, &s->mhd_timer);
  s->mhd_timer.data = s;
  return 0;
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
  route(s, &h, url, method, &rq);
  lsr_engine_drain(s->eng);
  if (lsr_store_in_transaction(s->store)) lsr_store_commit(s->store);
  free(rq.body);
  *out = h.body ? h.body : lsr_strdup("");
  return h.status;
}
