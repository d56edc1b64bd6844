/* cluster.c: `luasoar serve` as one node of a cluster: servers that share
 * a PostgreSQL database (SQLite has one server per store: none of this
 * runs there).
 *
 * Each run executes on one node, the one that started it.  A node holds a
 * lease (its row in `nodes`, --lease seconds on the database's clock) that
 * a thread of the store renews (store/postgres.c).  Every third of the
 * lease, and when another node says so (LISTEN/NOTIFY), a node claims runs
 * nobody holds: those of nodes whose lease ran out (their rows deleted in
 * the same statement), and those a stopping node handed back.  One node
 * claims at a time (a transaction's advisory lock), so a parent run and its
 * children go to the same node.  The claim is committed before the runs are
 * recovered, by the rules of a restart (recover.c), so a run is taken over
 * once.  Every turn of a node first holds its own row (luasoar_hold in
 * store/postgres.c): a node whose row was deleted, because it was paused
 * or cut off longer than its lease, finds its next turn refused, writes
 * nothing more, and stops (exit 75) — its runs go on elsewhere.
 *
 * The answer to a prompt of a run on another node is kept in the database
 * for that node, which is woken to deliver it. */
#include "internal.h"

#define FENCED_EXIT 75 /* EX_TEMPFAIL: a supervisor starts the node again */

/* The node lost its runs to another: it stops at once, without writing
 * (its apps die with it). */
void srv_fenced_stop(server *s) {
  srv_say("node '%s' lost its runs to another node (its lease ran out while it was paused or cut off): they go on"
          " there; stopping without writing more (exit %d)", s->node, FENCED_EXIT);
  lsr_exec_reaper_close(s->eng->loop);
  fflush(stderr);
  _exit(FENCED_EXIT);
}

/* ---- answers to prompts, across nodes ---- */

/* The answers kept for this node's runs. */
typedef struct {
  struct { int64_t id, run; char *responses; } *v;
  int n;
} answers;

static void collect_answer(void *ud, int ncols, const char **cols) {
  answers *a = ud;
  if (ncols < 3 || !cols[0] || !cols[1] || !cols[2]) return;
  a->v = lsr_xrealloc(a->v, (size_t)(a->n + 1) * sizeof *a->v);
  a->v[a->n].id = strtoll(cols[0], NULL, 10);
  a->v[a->n].run = strtoll(cols[1], NULL, 10);
  a->v[a->n++].responses = lsr_strdup(cols[2]);
}

/* Each goes to its run, as a REST answer on this node would. */
static void deliver_answers(server *s) {
  answers a = {NULL, 0};
  lsr_store_each(s->store, collect_answer, &a, LSR_Q_PROMPT_ANSWERS_MINE, "");
  for (int i = 0; i < a.n; i++) {
    char *args = lsr_xalloc(strlen(a.v[i].responses) + 32);
    sprintf(args, "[%lld, %s]", (long long)a.v[i].id, a.v[i].responses);
    if (lsr_sched_call(s->eng, a.v[i].run, "prompt_answer", args) == 0) {
      lsr_store_exec(s->store, LSR_Q_PROMPT_ANSWERED, "i", a.v[i].id);
      srv_say("prompt %lld of run %lld: answered on another node", (long long)a.v[i].id, (long long)a.v[i].run);
    }
    free(args);
    free(a.v[i].responses);
  }
  free(a.v);
}

/* An answer for a run this node does not hold: kept for the node that
 * does (1), or nothing took it (0: no such pending prompt). */
int srv_answer_elsewhere(server *s, int64_t prompt, const char *responses) {
  return s->cluster && lsr_store_int(s->store, 0, LSR_Q_PROMPT_ANSWER_ELSEWHERE, "is", prompt, responses) > 0;
}

static void on_beat(uv_timer_t *t);

/* ---- what runs share, changed on another node ---- */

typedef struct {
  server *s;
  int rows;
} reload;

static void reload_row(void *ud, int ncols, const char **cols) {
  reload *r = ud;
  srv_restore_row(r->s, ncols, cols);
  r->rows++;
}

/* One entry read again from the store, through the hooks that load it at
 * start; gone from the store, it goes ("null"). */
static void reload_shared(server *s, const char *kind, const char *a, const char *b) {
  char err[1024];
  reload ctx = {s, 0};
  if (strcmp(kind, "list") == 0 && a) {
    if (lsr_store_each(s->store, reload_row, &ctx, LSR_Q_LIST_GET, "s", a) == 0 && ctx.rows == 0) {
      const char *gone[3] = {a, "null", ""};
      if (lsr_hook_strings(s->eng, "seed_list", 3, gone, err, sizeof err) < 0) srv_say("store: list '%s': %s", a, err);
    }
  } else if (strcmp(kind, "object") == 0 && a && b) {
    if (lsr_store_each(s->store, reload_row, &ctx, LSR_Q_OBJECT_GET, "ss", a, b) == 0 && ctx.rows == 0) {
      const char *gone[4] = {a, b, "null", ""};
      if (lsr_hook_strings(s->eng, "restore_object", 4, gone, err, sizeof err) < 0) srv_say("store: object: %s", err);
    }
  } else { /* "all": too long to name */
    lsr_store_each(s->store, srv_restore_row, s, LSR_Q_LISTS_RESTORE, "");
    lsr_store_each(s->store, srv_restore_row, s, LSR_Q_OBJECTS_RESTORE, "");
  }
}

/* A notification: ["shared", NODE, kind, ...] from a node that changed
 * what runs share (its own are skipped), else a wake-up for the tick
 * (runs handed back, an answer). */
static void on_note(void *ud, const char *payload) {
  server *s = ud;
  yajl_val v = payload[0] == '[' ? yajl_tree_parse(payload, NULL, 0) : NULL;
  if (!v || !YAJL_IS_ARRAY(v) || v->u.array.len < 3) {
    s->woken = 1;
  } else {
    const char *p[5] = {0};
    for (size_t i = 0; i < v->u.array.len && i < 5; i++)
      p[i] = YAJL_IS_STRING(v->u.array.values[i]) ? v->u.array.values[i]->u.string : NULL;
    if (p[0] && strcmp(p[0], "shared") == 0 && p[1] && strcmp(p[1], s->node) != 0 && p[2])
      reload_shared(s, p[2], p[3], p[4]);
  }
  yajl_tree_free(v);
}

/* Notifications read (after each turn's commit, and when the socket has
 * some): shared data reloaded now, a wake-up on the next tick, at once. */
void srv_cluster_notes(server *s) {
  if (!s->cluster || lsr_store_notified(s->store, on_note, s) == 0) return;
  srv_commit_now(s);
  if (s->woken && s->ticking) {
    s->woken = 0;
    uint64_t every = (uint64_t)(s->lease * 1000 / 3);
    uv_timer_start(&s->beat, on_beat, 0, every);
  }
}

/* ---- the tick: claims, answers ---- */

static void wake_watch(server *s);

static void tick(server *s) {
  srv_commit_now(s);
  if (lsr_store_fenced(s->store)) srv_fenced_stop(s);
  srv_recover(s, 0);
  deliver_answers(s);
  srv_commit_now(s);
  if (lsr_store_fenced(s->store)) srv_fenced_stop(s);
  wake_watch(s);
}

static void on_beat(uv_timer_t *t) {
  server *s = t->data;
  if (!s->stopping) tick(s);
}

static void on_wake(uv_poll_t *p, int status, int events) {
  server *s = p->data;
  (void)status;
  (void)events;
  if (!s->stopping) srv_cluster_notes(s);
}

static void free_poll(uv_handle_t *h) { free(h); }

/* The connection's socket is watched; a new connection has a new one. */
static void wake_watch(server *s) {
  unsigned conn;
  int fd = lsr_store_socket(s->store, &conn);
  if (s->wake && s->wake_conn == conn) return;
  if (s->wake) uv_close((uv_handle_t *)s->wake, free_poll);
  s->wake = NULL;
  if (fd < 0) return;
  s->wake = lsr_xalloc(sizeof *s->wake);
  s->wake_conn = conn;
  if (uv_poll_init(s->eng->loop, s->wake, fd) != 0) {
    free(s->wake);
    s->wake = NULL;
    return;
  }
  s->wake->data = s;
  uv_poll_start(s->wake, UV_READABLE, on_wake);
}

/* This server joins the cluster of its database as node, reachable at
 * listen.  0, or -1 with why in err. */
int srv_cluster_join(server *s, const char *node, const char *listen, double lease, char *err, size_t errlen) {
  if (!lsr_store_clustered(s->store)) return 0;
  /* a turn is held open at most for a step (the watchdog's limit) */
  if (lsr_store_join(s->store, node, listen, lease, (s->eng->step_seconds > 0 ? s->eng->step_seconds : LSR_STEP_SECONDS_DEFAULT) + lease) < 0) {
    snprintf(err, errlen, "cannot join the cluster as node '%s': %s", node, lsr_store_error(s->store));
    return -1;
  }
  s->cluster = 1;
  s->node = lsr_strdup(node);
  s->lease = lease;
  return 0;
}

/* The heartbeat (three per lease) and the wake-up on notifications. */
void srv_cluster_start(server *s) {
  if (!s->cluster) return;
  uv_timer_init(s->eng->loop, &s->beat);
  s->beat.data = s;
  uint64_t every = (uint64_t)(s->lease * 1000 / 3);
  uv_timer_start(&s->beat, on_beat, every, every);
  s->ticking = 1;
  wake_watch(s);
}

/* The playbooks this node serves and their generations, for the others'
 * GET /rest/playbook. */
void srv_cluster_playbooks(server *s) {
  if (!s->cluster) return;
  size_t cap = 64, n = 1;
  char *out = lsr_xalloc(cap);
  out[0] = '{';
  for (int i = 0; i < s->npbs; i++) {
    if (!s->pbs[i].gen) continue;
    char *id = lsr_json_quote(s->pbs[i].id);
    size_t need = strlen(id) + 32;
    if (n + need >= cap) out = lsr_xrealloc(out, cap = (n + need) * 2);
    n += (size_t)sprintf(out + n, "%s%s: %d", n > 1 ? ", " : "", id, s->pbs[i].generation);
    free(id);
  }
  out[n++] = '}';
  out[n] = 0;
  lsr_store_exec(s->store, LSR_Q_NODE_PLAYBOOKS, "s", out);
  free(out);
}

/* Stopping (SIGTERM): the node's runs are handed back at once, for another
 * node to claim, rather than when its lease runs out. */
void srv_cluster_leave(server *s) {
  if (!s->cluster || lsr_store_fenced(s->store)) return;
  int64_t n = lsr_store_int(s->store, -1, LSR_Q_NODE_LEAVE, "");
  if (lsr_store_commit(s->store) < 0 || n < 0)
    srv_say("node '%s': could not hand its runs back (they go to another node when its lease runs out): %s",
            s->node, lsr_store_error(s->store));
  else
    srv_say("node '%s': left the cluster, %lld runs handed back", s->node, (long long)n);
}
