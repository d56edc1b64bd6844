/* postgres.c: the store on PostgreSQL (libpq), chosen by a --db that is a
 * postgresql:// URI; libpq reads the URI and the PG* variables.  The schema
 * is made in an empty database on first start, under an advisory lock
 * (4208111: two servers may start at once); a database that holds other
 * tables, or a luasoar store of another version, is refused untouched.
 * Servers that share the database are the nodes of a cluster
 * (lsr_store_join; the rules are in serve/cluster.c).  Statements are
 * prepared once per connection (their SQL is in postgres_sql.c) and sent
 * with text arguments.
 *
 * The turn's transaction is a pipeline (libpq's pipeline mode): its writes
 * are sent without waiting for their answers, which are read at the
 * commit, or before a read of the turn (whose answer is needed now).  A
 * statement that fails ends the transaction (PostgreSQL refuses everything
 * after it until the rollback): the turn fails as a whole (store.c), and
 * nothing is acknowledged before its commit's answer. */
#include "backend.h"
#include "engine.h"
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* the SQLSTATE of luasoar_hold's refusal */
#define LSR_PG_FENCED "LS001"

/* what an answer of the pipeline is to */
typedef enum { SENT_BEGIN, SENT_HOLD, SENT_PREPARE, SENT_EXEC, SENT_COMMIT, SENT_SYNC } sent_kind;

typedef struct {
  lsr_store base;
  PGconn *conn;
  char prepared[LSR_Q_COUNT];
  char preparing[LSR_Q_COUNT]; /* sent in the pipeline, not answered yet */
  int changes;
  int piping;                  /* the turn's transaction is a pipeline */
  struct { sent_kind kind; lsr_q q; } *sent; /* answers to read, in order */
  size_t nsent, capsent, first;
  int failed;                  /* an answer of this pipeline was an error */
  char *node, *listen;         /* the node this server is in the cluster (lsr_store_join) */
  double lease, hold_limit;
  atomic_int fenced;           /* its runs went to another node: it must stop */
  unsigned connections;        /* connections made (the socket changes with each) */
  double tried;                /* when a lost connection was last tried again */
  char *uri;
  /* the heartbeat: a thread with its own connection, so that a long step
   * of the loop does not cost the node its lease */
  pthread_t beat;
  int beating;
  pthread_mutex_t beat_mu;
  pthread_cond_t beat_cv;
  int beat_stop;
} pg_store;

static const char schema[] =
  "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
  "CREATE TABLE containers(id BIGINT PRIMARY KEY, label TEXT, status TEXT, data TEXT NOT NULL,"
  " create_time DOUBLE PRECISION, update_time DOUBLE PRECISION);"
  "CREATE TABLE artifacts(id BIGINT PRIMARY KEY, container_id BIGINT NOT NULL, data TEXT NOT NULL,"
  " create_time DOUBLE PRECISION);"
  "CREATE INDEX artifacts_container ON artifacts(container_id);"
  "CREATE TABLE playbook_runs(id BIGINT PRIMARY KEY, container_id BIGINT, playbook TEXT,"
  " generation BIGINT, status TEXT, message TEXT, scope TEXT, start_time DOUBLE PRECISION,"
  " update_time DOUBLE PRECISION, parent_run_id BIGINT, inputs TEXT, outputs TEXT, started INTEGER DEFAULT 0,"
  " discontinued INTEGER DEFAULT 0, node TEXT, recovering INTEGER DEFAULT 0);"
  "CREATE INDEX runs_container ON playbook_runs(container_id);"
  "CREATE INDEX runs_running_node ON playbook_runs(node) WHERE status = 'running';"
  "CREATE INDEX runs_status ON playbook_runs(status);"
  "CREATE TABLE run_log(id BIGSERIAL PRIMARY KEY, run_id BIGINT, level TEXT, message TEXT, time DOUBLE PRECISION);"
  "CREATE INDEX log_run ON run_log(run_id);"
  "CREATE TABLE action_runs(id BIGINT PRIMARY KEY, run_id BIGINT, name TEXT, action TEXT,"
  " callback TEXT, handle TEXT, parameters TEXT, assets TEXT, status TEXT, start_time DOUBLE PRECISION,"
  " update_time DOUBLE PRECISION, delivered INTEGER DEFAULT 0, start_after DOUBLE PRECISION, reviewer TEXT,"
  " loop_state TEXT, released INTEGER DEFAULT 0);"
  "CREATE INDEX action_runs_run ON action_runs(run_id);"
  "CREATE TABLE app_runs(id BIGINT PRIMARY KEY, action_run_id BIGINT, run_id BIGINT, asset TEXT,"
  " app TEXT, status TEXT, message TEXT, result TEXT, start_time DOUBLE PRECISION, end_time DOUBLE PRECISION);"
  "CREATE INDEX app_runs_action ON app_runs(action_run_id);"
  "CREATE TABLE run_data(run_id BIGINT, key TEXT, value TEXT, PRIMARY KEY(run_id, key));"
  "CREATE TABLE prompts(id BIGINT PRIMARY KEY, run_id BIGINT, name TEXT, prompt TEXT, status TEXT,"
  " deadline DOUBLE PRECISION, responses TEXT, answer TEXT);"
  "CREATE TABLE calls(id BIGINT, run_id BIGINT, kind TEXT, call TEXT, status TEXT, PRIMARY KEY(kind, id));"
  "CREATE INDEX calls_run ON calls(run_id);"
  "CREATE TABLE objects(container_key TEXT, key TEXT, value TEXT, PRIMARY KEY(container_key, key));"
  "CREATE TABLE custom_lists(name TEXT PRIMARY KEY, rows TEXT);"
  "CREATE TABLE seen(playbook TEXT, container_id BIGINT, last_artifact_id BIGINT,"
  " PRIMARY KEY(playbook, container_id));"
  "CREATE TABLE shared_owners(kind TEXT, container_key TEXT, key TEXT,"
  " playbook TEXT, PRIMARY KEY(kind, container_key, key));"
  "CREATE TABLE app_state(asset TEXT PRIMARY KEY, state TEXT);"
  /* the cluster: its nodes, their leases (seconds on the database's clock) */
  "CREATE TABLE nodes(id TEXT PRIMARY KEY, listen TEXT, started DOUBLE PRECISION, heartbeat DOUBLE PRECISION,"
  " lease_until DOUBLE PRECISION, playbooks TEXT);"
  /* ids: each node takes blocks (the increment) of these */
  "CREATE SEQUENCE luasoar_run_ids INCREMENT 100; CREATE SEQUENCE luasoar_action_ids INCREMENT 100;"
  "CREATE SEQUENCE luasoar_app_run_ids INCREMENT 100; CREATE SEQUENCE luasoar_artifact_ids INCREMENT 100;"
  "CREATE SEQUENCE luasoar_container_ids; CREATE SEQUENCE luasoar_pin_ids; CREATE SEQUENCE luasoar_note_ids;"
  "CREATE SEQUENCE luasoar_data_ids;"
  /* the first statement of every turn of a node: its row must be there
   * (another node deletes it when it takes the node's runs over), and it
   * stays until the turn commits (FOR SHARE: the taker waits) */
  "CREATE FUNCTION luasoar_hold() RETURNS void LANGUAGE plpgsql AS $$ BEGIN"
  " PERFORM 1 FROM nodes WHERE id = current_setting('luasoar.node') FOR SHARE;"
  " IF NOT FOUND THEN RAISE EXCEPTION 'node % lost its runs to another node (its lease ran out)',"
  "  current_setting('luasoar.node') USING ERRCODE = '" LSR_PG_FENCED "'; END IF; END $$;"
  "INSERT INTO meta VALUES('schema', '" LSR_STORE_SCHEMA "');";

/* The URI for messages: its password, if any, hidden. */
void lsr_store_name(const char *uri, char *out, size_t n) {
  const char *auth = strstr(uri, "://");
  const char *at = auth ? strchr(auth + 3, '@') : NULL;
  const char *colon = auth ? memchr(auth + 3, ':', at ? (size_t)(at - auth - 3) : 0) : NULL;
  if (colon) snprintf(out, n, "%.*s:***%s", (int)(colon - uri), uri, at);
  else snprintf(out, n, "%s", uri);
}

/* libpq's message, on one line */
static const char *pg_message(const char *m) {
  static char line[400];
  snprintf(line, sizeof line, "%s", m && *m ? m : "unknown error");
  for (char *p = line; *p; p++)
    if (*p == '\n') *p = (p[1] ? ' ' : '\0');
  return line;
}

static void set_error(pg_store *st, const char *what, const PGresult *r) {
  lsr_store_errorf(&st->base, "%s: %s", what,
                   pg_message(r && PQresultErrorMessage(r)[0] ? PQresultErrorMessage(r) : PQerrorMessage(st->conn)));
}

/* A command with no arguments and no rows: 0, or -1 with the error set. */
static int command(pg_store *st, const char *what, const char *sql) {
  PGresult *r = PQexec(st->conn, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok) set_error(st, what, r);
  PQclear(r);
  return ok ? 0 : -1;
}

/* The first column of the first row of sql (malloc'd), or NULL. */
static char *scalar(pg_store *st, const char *sql) {
  PGresult *r = PQexec(st->conn, sql);
  char *v = NULL;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
    v = lsr_strdup(PQgetvalue(r, 0, 0));
  else if (PQresultStatus(r) != PGRES_TUPLES_OK)
    set_error(st, "read", r);
  PQclear(r);
  return v;
}

static int pg_is_write(lsr_q q) { return strncmp(lsr_pg_sql[q], "SELECT", 6) != 0; }

/* A connection that broke (the server restarted, the network): one try to
 * get it back before the next statement, which is prepared again. */
static int rejoin(pg_store *st);

static void reconnect(pg_store *st) {
  if (PQstatus(st->conn) == CONNECTION_OK) return;
  double now = lsr_now(); /* a database away is tried again once a second, not on every turn */
  if (now - st->tried < 1 && !st->base.try_now) return;
  st->tried = now;
  st->base.try_now = 0;
  PQreset(st->conn);
  memset(st->prepared, 0, sizeof st->prepared);
  if (PQstatus(st->conn) != CONNECTION_OK) return;
  st->connections++;
  if (st->node) rejoin(st);
}

/* ---- the turn's pipeline ---- */

static void sent(pg_store *st, sent_kind kind, lsr_q q) {
  if (st->nsent == st->capsent) {
    st->capsent = st->capsent ? st->capsent * 2 : 64;
    st->sent = lsr_xrealloc(st->sent, st->capsent * sizeof *st->sent);
  }
  st->sent[st->nsent].kind = kind;
  st->sent[st->nsent++].q = q;
}

/* Read every answer sent for: the first error is kept (later answers of
 * the pipeline are "aborted"); prepared statements are marked; the last
 * EXEC's rows go to row.  0, or -1 if some answer was an error. */
static int drain(pg_store *st, lsr_store_row row, void *ud) {
  if (st->first == st->nsent) return st->failed ? -1 : 0;
  if (st->sent[st->nsent - 1].kind != SENT_SYNC) PQsendFlushRequest(st->conn);
  PQflush(st->conn);
  for (; st->first < st->nsent; st->first++) {
    sent_kind kind = st->sent[st->first].kind;
    lsr_q q = st->sent[st->first].q;
    PGresult *r = PQgetResult(st->conn);
    ExecStatusType rs = PQresultStatus(r);
    int ok = rs == PGRES_COMMAND_OK || rs == PGRES_TUPLES_OK || rs == PGRES_PIPELINE_SYNC;
    if (!r) ok = 0; /* the connection broke */
    if (kind == SENT_PREPARE) {
      st->preparing[q] = 0;
      st->prepared[q] = ok;
    }
    if (ok && kind == SENT_EXEC) {
      st->changes = atoi(PQcmdTuples(r));
      if (row && st->first + 1 == st->nsent && rs == PGRES_TUPLES_OK) {
        int ncols = PQnfields(r) < 32 ? PQnfields(r) : 32;
        const char *cols[32];
        for (int t = 0; t < PQntuples(r); t++) {
          for (int c = 0; c < ncols; c++) cols[c] = PQgetisnull(r, t, c) ? NULL : PQgetvalue(r, t, c);
          row(ud, ncols, cols);
        }
      }
    }
    if (!ok && !st->failed) { /* the first error (the answers after it are "aborted") */
      set_error(st, kind == SENT_PREPARE ? "prepare" : kind == SENT_EXEC ? (pg_is_write(q) ? "write" : "read")
                  : kind == SENT_COMMIT ? "commit" : kind == SENT_HOLD ? "this node's hold" : "begin", r);
      const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
      if (state && strcmp(state, LSR_PG_FENCED) == 0) st->fenced = 1;
      st->failed = 1;
    }
    PQclear(r);
    if (!r) break;
    if (kind != SENT_SYNC) { /* each query's answers end with a NULL */
      PGresult *end;
      while ((end = PQgetResult(st->conn)) != NULL) PQclear(end);
    }
  }
  if (st->first < st->nsent) { /* broken off: the rest will never come */
    for (; st->first < st->nsent; st->first++)
      if (st->sent[st->first].kind == SENT_PREPARE) st->preparing[st->sent[st->first].q] = 0;
  }
  return st->failed ? -1 : 0;
}

/* The pipeline ends: what is left is read, and the connection is back to
 * one statement at a time. */
static void end_pipeline(pg_store *st) {
  if (!st->piping) return;
  /* after an error the server ignores all until a sync, read or not */
  if (st->nsent && st->sent[st->nsent - 1].kind != SENT_SYNC && PQpipelineSync(st->conn) == 1)
    sent(st, SENT_SYNC, 0);
  drain(st, NULL, NULL);
  if (PQexitPipelineMode(st->conn) != 1) { /* still busy: start again on a fresh connection */
    PQreset(st->conn);
    memset(st->prepared, 0, sizeof st->prepared);
    memset(st->preparing, 0, sizeof st->preparing);
  }
  st->piping = 0;
  st->nsent = st->first = 0;
  st->failed = 0;
}

static int pg_begin(lsr_store *base) {
  pg_store *st = (pg_store *)base;
  reconnect(st);
  if (PQenterPipelineMode(st->conn) != 1) return command(st, "begin", "BEGIN");
  st->piping = 1;
  if (PQsendQueryParams(st->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0) != 1) {
    set_error(st, "begin", NULL);
    end_pipeline(st);
    return -1;
  }
  sent(st, SENT_BEGIN, 0);
  /* a node's turn holds its row: the turn of a node whose runs another
   * took fails as a whole, and the taker waits for a turn in progress */
  if (st->node && !st->fenced && PQsendQueryParams(st->conn, "SELECT luasoar_hold()", 0, NULL, NULL, NULL, NULL, 0) == 1)
    sent(st, SENT_HOLD, 0);
  return 0;
}

static int pg_commit(lsr_store *base) {
  pg_store *st = (pg_store *)base;
  if (!st->piping) return command(st, "commit", "COMMIT");
  int ok = PQsendQueryParams(st->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) == 1;
  if (ok) sent(st, SENT_COMMIT, 0);
  else set_error(st, "commit", NULL);
  if (PQpipelineSync(st->conn) == 1) sent(st, SENT_SYNC, 0);
  ok = drain(st, NULL, NULL) == 0 && ok;
  end_pipeline(st);
  return ok ? 0 : -1;
}

static void pg_rollback(lsr_store *base) {
  pg_store *st = (pg_store *)base;
  end_pipeline(st);
  if (PQtransactionStatus(st->conn) != PQTRANS_IDLE) PQclear(PQexec(st->conn, "ROLLBACK"));
}

static int pg_run_values(lsr_store *base, lsr_q q, int n, const char *const *values, lsr_store_row row, void *ud) {
  pg_store *st = (pg_store *)base;
  const char *what = pg_is_write(q) ? "write" : "read";
  char name[16];
  snprintf(name, sizeof name, "q%d", (int)q);
  if (!st->piping) {
    PGTransactionStatusType ts = PQtransactionStatus(st->conn);
    if (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR) reconnect(st); /* (in a transaction it would lose it) */
  }
  if (!st->prepared[q] && !st->piping) {
    PGresult *r = PQprepare(st->conn, name, lsr_pg_sql[q], 0, NULL);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) set_error(st, "prepare", r);
    PQclear(r);
    if (!ok) return -1;
    st->prepared[q] = 1;
  }
  if (st->piping) { /* in the turn's pipeline: a write's answer is read later, a read's now */
    if (st->failed) return -1;
    if (!st->prepared[q] && !st->preparing[q]) {
      if (PQsendPrepare(st->conn, name, lsr_pg_sql[q], 0, NULL) != 1) {
        set_error(st, "prepare", NULL);
        return -1;
      }
      sent(st, SENT_PREPARE, q);
      st->preparing[q] = 1;
    }
    if (PQsendQueryPrepared(st->conn, name, n, values, NULL, NULL, 0) != 1) {
      set_error(st, what, NULL);
      return -1;
    }
    sent(st, SENT_EXEC, q);
    if (pg_is_write(q) && !row) return 0;
    return drain(st, row, ud);
  }
  PGresult *r = PQexecPrepared(st->conn, name, n, values, NULL, NULL, 0);
  ExecStatusType rs = PQresultStatus(r);
  if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
    set_error(st, what, r);
    PQclear(r);
    if (PQstatus(st->conn) != CONNECTION_OK) memset(st->prepared, 0, sizeof st->prepared);
    return -1;
  }
  st->changes = atoi(PQcmdTuples(r));
  if (row && rs == PGRES_TUPLES_OK) {
    int ncols = PQnfields(r) < 32 ? PQnfields(r) : 32;
    const char *cols[32];
    for (int t = 0; t < PQntuples(r); t++) {
      for (int c = 0; c < ncols; c++) cols[c] = PQgetisnull(r, t, c) ? NULL : PQgetvalue(r, t, c);
      row(ud, ncols, cols);
    }
  }
  PQclear(r);
  return 0;
}

static int pg_lost(lsr_store *base) { return PQstatus(((pg_store *)base)->conn) != CONNECTION_OK; }

static int pg_changes(lsr_store *base) {
  pg_store *st = (pg_store *)base;
  if (st->piping) drain(st, NULL, NULL); /* the last write's answer */
  return st->changes;
}

/* ---- the cluster ---- */

/* Again on each connection: the node's name for the SQL (luasoar.node),
 * its advisory lock (one server per node name: the lock goes with the
 * connection, so with a dead server), and LISTEN. */
static int rejoin(pg_store *st) {
  const char *v[1] = {st->node};
  PGresult *r = PQexecParams(st->conn,
      "SELECT set_config('luasoar.node', $1, false), pg_try_advisory_lock(4208112, hashtext($1))", 1, NULL, v,
      NULL, NULL, 0);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (!ok) set_error(st, "join", r);
  else if (strcmp(PQgetvalue(r, 0, 1), "t") != 0) {
    lsr_store_errorf(&st->base, "another luasoar serve runs as node '%s' on this database", st->node);
    ok = 0;
    st->fenced = 1;
  }
  PQclear(r);
  /* a node paused inside a turn holds its row, and so delays the claim of
   * its runs: not longer than this */
  char limit[96];
  snprintf(limit, sizeof limit, "SET idle_in_transaction_session_timeout = %lld", (long long)(st->hold_limit * 1000));
  return ok && command(st, "limit", limit) == 0 && command(st, "listen", "LISTEN luasoar") == 0 ? 0 : -1;
}

/* Every third of the lease, the lease renewed, on the thread's own
 * connection (made again when it breaks).  No row to renew: another node
 * took this one's runs over, and the node must stop (fenced). */
static void *heartbeat(void *arg) {
  pg_store *st = arg;
  PGconn *conn = NULL;
  char lease_s[32];
  snprintf(lease_s, sizeof lease_s, "%.17g", st->lease);
  const char *v[2] = {st->node, lease_s};
  pthread_mutex_lock(&st->beat_mu);
  while (!st->beat_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    double at = until.tv_sec + until.tv_nsec / 1e9 + st->lease / 3;
    until.tv_sec = (time_t)at;
    until.tv_nsec = (long)((at - (double)until.tv_sec) * 1e9);
    pthread_cond_timedwait(&st->beat_cv, &st->beat_mu, &until);
    if (st->beat_stop) break;
    pthread_mutex_unlock(&st->beat_mu);
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
      PQfinish(conn);
      conn = PQconnectdb(st->uri);
    }
    if (PQstatus(conn) == CONNECTION_OK) {
      PGresult *r = PQexecParams(conn, "UPDATE nodes SET heartbeat = extract(epoch from clock_timestamp()),"
          " lease_until = extract(epoch from clock_timestamp()) + $2::float8 WHERE id = $1", 2, NULL, v, NULL, NULL, 0);
      if (PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "0") == 0) st->fenced = 1;
      PQclear(r);
    }
    pthread_mutex_lock(&st->beat_mu);
  }
  pthread_mutex_unlock(&st->beat_mu);
  PQfinish(conn);
  return NULL;
}

static int pg_join(lsr_store *base, const char *node, const char *listen, double lease, double hold_limit) {
  pg_store *st = (pg_store *)base;
  st->node = lsr_strdup(node);
  st->listen = lsr_strdup(listen);
  st->lease = lease;
  st->hold_limit = hold_limit;
  if (rejoin(st) < 0) return -1;
  char lease_s[32];
  snprintf(lease_s, sizeof lease_s, "%.17g", lease);
  const char *v[3] = {node, listen, lease_s};
  /* the row, new or again (a restarted node takes its own runs back) */
  PGresult *r = PQexecParams(st->conn,
      "INSERT INTO nodes(id, listen, started, heartbeat, lease_until) VALUES($1, $2,"
      " extract(epoch from clock_timestamp()), extract(epoch from clock_timestamp()),"
      " extract(epoch from clock_timestamp()) + $3::float8) ON CONFLICT(id) DO UPDATE SET listen = EXCLUDED.listen,"
      " started = EXCLUDED.started, heartbeat = EXCLUDED.heartbeat, lease_until = EXCLUDED.lease_until",
      3, NULL, v, NULL, NULL, 0);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) set_error(st, "join", r);
  PQclear(r);
  if (ok && pthread_create(&st->beat, NULL, heartbeat, st) != 0) {
    lsr_store_errorf(base, "join: cannot start the heartbeat's thread");
    ok = 0;
  }
  st->beating = ok;
  return ok ? 0 : -1;
}

static int pg_fenced(lsr_store *base) { return ((pg_store *)base)->fenced; }

static int pg_socket(lsr_store *base, unsigned *connection) {
  pg_store *st = (pg_store *)base;
  *connection = st->connections;
  return PQsocket(st->conn);
}

/* Notifications that arrived (between turns), each payload to each. */
static int pg_notified(lsr_store *base, void (*each)(void *ud, const char *payload), void *ud) {
  pg_store *st = (pg_store *)base;
  if (st->piping || PQstatus(st->conn) != CONNECTION_OK) return 0;
  PQconsumeInput(st->conn);
  int n = 0;
  PGnotify *note;
  while ((note = PQnotifies(st->conn)) != NULL) {
    n++;
    each(ud, note->extra);
    PQfreemem(note);
  }
  return n;
}

static int pg_cap_pages(lsr_store *base, long long pages) {
  lsr_store_errorf(base, "a page cap exists on SQLite only");
  return -1;
}

static void pg_close(lsr_store *base) {
  pg_store *st = (pg_store *)base;
  if (st->beating) {
    pthread_mutex_lock(&st->beat_mu);
    st->beat_stop = 1;
    pthread_cond_signal(&st->beat_cv);
    pthread_mutex_unlock(&st->beat_mu);
    pthread_join(st->beat, NULL);
  }
  pthread_mutex_destroy(&st->beat_mu);
  pthread_cond_destroy(&st->beat_cv);
  free(st->uri);
  if (st->conn && PQstatus(st->conn) == CONNECTION_OK) end_pipeline(st);
  free(st->sent);
  free(st->node);
  free(st->listen);
  PQfinish(st->conn);
  free(st);
}

static const lsr_store_ops pg_ops = {
  .begin = pg_begin, .commit = pg_commit, .rollback = pg_rollback, .run_values = pg_run_values, .lost = pg_lost,
  .changes = pg_changes,
  .is_write = pg_is_write, .read_fails_turn = 1, .cap_pages = pg_cap_pages, .close = pg_close,
  .join = pg_join, .fenced = pg_fenced, .socket = pg_socket, .notified = pg_notified,
};

static void quiet(void *arg, const char *message) {} /* NOTICEs (IF NOT EXISTS ...) are not errors */

/* The schema: made in an empty database, checked in any other.  0, or -1
 * with why in err (the database left untouched). */
static int check_schema(pg_store *st, const char *shown, int read_only, char *err, size_t errlen) {
  if (!read_only && (command(st, "schema", "BEGIN") < 0 ||
                     command(st, "schema", "SELECT pg_advisory_xact_lock(4208111)") < 0)) {
    snprintf(err, errlen, "%s: cannot check the store's schema: %s", shown, st->base.error);
    return -1;
  }
  char *has_meta = scalar(st, "SELECT to_regclass('meta') IS NOT NULL");
  char *tables = scalar(st, "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()");
  char *version = has_meta && strcmp(has_meta, "t") == 0 ? scalar(st, "SELECT value FROM meta WHERE key = 'schema'") : NULL;
  int rc = 0;
  if (!has_meta || !tables) {
    snprintf(err, errlen, "%s: cannot read the database's tables: %s", shown, st->base.error);
    rc = -1;
  } else if (version) {
    if (strcmp(version, LSR_STORE_SCHEMA) != 0) {
      snprintf(err, errlen, "%s: a luasoar store of another version (%s); it is left untouched", shown, version);
      rc = -1;
    }
  } else if (strcmp(tables, "0") != 0 || read_only) {
    snprintf(err, errlen, "%s: %s, but not a luasoar store (no schema version); it is left untouched", shown,
             strcmp(tables, "0") != 0 ? "a database with tables" : "an empty database");
    rc = -1;
  } else if (command(st, "schema", schema) < 0) {
    snprintf(err, errlen, "%s: cannot make the store's schema: %s", shown, st->base.error);
    rc = -1;
  }
  free(has_meta);
  free(tables);
  free(version);
  if (!read_only) {
    if (rc == 0 && command(st, "schema", "COMMIT") < 0) {
      snprintf(err, errlen, "%s: cannot make the store's schema: %s", shown, st->base.error);
      rc = -1;
    }
    if (rc < 0) pg_rollback(&st->base);
  }
  return rc;
}

lsr_store *lsr_pg_open(const char *uri, int read_only, char *err, size_t errlen) {
  char shown[512];
  lsr_store_name(uri, shown, sizeof shown);
  pg_store *st = lsr_xalloc(sizeof *st);
  st->base.ops = &pg_ops;
  st->uri = lsr_strdup(uri);
  /* a database host that does not answer at all is given up after 5 s a
   * try, not libpq's default of waiting for ever (the loop waits on it);
   * connect_timeout in the URI, or PGCONNECT_TIMEOUT, says otherwise */
  setenv("PGCONNECT_TIMEOUT", "5", 0);
  pthread_mutex_init(&st->beat_mu, NULL);
  pthread_cond_init(&st->beat_cv, NULL);
  st->conn = PQconnectdb(uri);
  if (!st->conn || PQstatus(st->conn) != CONNECTION_OK) {
    snprintf(err, errlen, "%s: cannot connect to PostgreSQL: %s", shown,
             st->conn ? pg_message(PQerrorMessage(st->conn)) : "out of memory");
    lsr_store_close(&st->base);
    return NULL;
  }
  PQsetNoticeProcessor(st->conn, quiet, NULL);
  if (check_schema(st, shown, read_only, err, errlen) < 0) {
    lsr_store_close(&st->base);
    return NULL;
  }
  if (read_only && command(st, "open", "SET default_transaction_read_only = on") < 0) {
    snprintf(err, errlen, "%s: %s", shown, st->base.error);
    lsr_store_close(&st->base);
    return NULL;
  }
  st->base.error[0] = 0;
  return &st->base;
}
