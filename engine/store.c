/* store.c: SQLite, in WAL mode, with the schema of luasoar serve.  A file
 * that is not ours is refused at open and never written.  No Lua here. */
#include "store.h"
#include "engine.h"
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SCHEMA_VERSION "luasoar store 2"

#define STMT_CACHE 64

struct lsr_store {
  sqlite3 *db;
  int in_tx;
  char error[512];
  /* prepared statements, by the address of their SQL text: every caller
   * passes a literal, so compiling once is enough */
  struct { const char *sql; sqlite3_stmt *q; } cache[STMT_CACHE];
};

static const char schema[] =
  "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT);"
  "CREATE TABLE containers(id INTEGER PRIMARY KEY, label TEXT, status TEXT, data TEXT NOT NULL,"
  " create_time REAL, update_time REAL);"
  "CREATE TABLE artifacts(id INTEGER PRIMARY KEY, container_id INTEGER NOT NULL, data TEXT NOT NULL,"
  " create_time REAL);"
  "CREATE INDEX artifacts_container ON artifacts(container_id);"
  "CREATE TABLE playbook_runs(id INTEGER PRIMARY KEY, container_id INTEGER, playbook TEXT,"
  " generation INTEGER, status TEXT, message TEXT, scope TEXT, start_time REAL, update_time REAL,"
  " parent_run_id INTEGER, inputs TEXT, outputs TEXT, started INTEGER DEFAULT 0, discontinued INTEGER DEFAULT 0);"
  "CREATE INDEX runs_container ON playbook_runs(container_id);"
  "CREATE INDEX runs_status ON playbook_runs(status);"
  "CREATE TABLE run_log(id INTEGER PRIMARY KEY, run_id INTEGER, level TEXT, message TEXT, time REAL);"
  "CREATE INDEX log_run ON run_log(run_id);"
  "CREATE TABLE action_runs(id INTEGER PRIMARY KEY, run_id INTEGER, name TEXT, action TEXT,"
  " callback TEXT, handle TEXT, parameters TEXT, assets TEXT, status TEXT, start_time REAL,"
  " update_time REAL, delivered INTEGER DEFAULT 0, start_after REAL, reviewer TEXT, loop_state TEXT,"
  " released INTEGER DEFAULT 0);"
  "CREATE INDEX action_runs_run ON action_runs(run_id);"
  "CREATE TABLE app_runs(id INTEGER PRIMARY KEY, action_run_id INTEGER, run_id INTEGER, asset TEXT,"
  " app TEXT, status TEXT, message TEXT, result TEXT, start_time REAL, end_time REAL);"
  "CREATE INDEX app_runs_action ON app_runs(action_run_id);"
  "CREATE TABLE run_data(run_id INTEGER, key TEXT, value TEXT, PRIMARY KEY(run_id, key));"
  "CREATE TABLE prompts(id INTEGER PRIMARY KEY, run_id INTEGER, name TEXT, prompt TEXT, status TEXT,"
  " deadline REAL, responses TEXT);"
  "CREATE TABLE calls(id INTEGER, run_id INTEGER, kind TEXT, call TEXT, status TEXT, PRIMARY KEY(kind, id));"
  "CREATE INDEX calls_run ON calls(run_id);"
  "CREATE TABLE objects(container_key TEXT, key TEXT, value TEXT, PRIMARY KEY(container_key, key));"
  "CREATE TABLE custom_lists(name TEXT PRIMARY KEY, rows TEXT);"
  "CREATE TABLE seen(playbook TEXT, container_id INTEGER, last_artifact_id INTEGER,"
  " PRIMARY KEY(playbook, container_id));"
  "INSERT INTO meta VALUES('schema', '" SCHEMA_VERSION "');";

static void set_error(lsr_store *st, const char *what) {
  snprintf(st->error, sizeof st->error, "%s: %s", what, sqlite3_errmsg(st->db));
}

const char *lsr_store_error(lsr_store *st) { return st->error; }

lsr_store *lsr_store_open(const char *path, char *err, size_t errlen) {
  struct stat sb;
  int existed = stat(path, &sb) == 0 && sb.st_size > 0;
  lsr_store *st = lsr_xalloc(sizeof *st);
  if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: cannot open the store: %s", path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
    lsr_store_close(st);
    return NULL;
  }
  sqlite3_busy_timeout(st->db, 5000);
  if (existed) {
    /* ours, and of this version, or refused untouched */
    sqlite3_stmt *q;
    int rc = sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &q, NULL);
    if (rc != SQLITE_OK) {
      const char *why = sqlite3_errmsg(st->db);
      if (strstr(why, "no such table"))
        snprintf(err, errlen, "%s: a database, but not a luasoar store (no meta table); it is left untouched", path);
      else
        snprintf(err, errlen, "%s: not a luasoar store (%s); it is left untouched", path, why);
      lsr_store_close(st);
      return NULL;
    }
    rc = sqlite3_step(q);
    int ok = rc == SQLITE_ROW && sqlite3_column_text(q, 0) &&
             strcmp((const char *)sqlite3_column_text(q, 0), SCHEMA_VERSION) == 0;
    if (!ok) {
      snprintf(err, errlen, "%s: %s; it is left untouched", path,
               rc == SQLITE_ROW ? "a luasoar store of another version" : "not a luasoar store (no schema version)");
      sqlite3_finalize(q);
      lsr_store_close(st);
      return NULL;
    }
    sqlite3_finalize(q);
  }
  char *msg = NULL;
  if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK ||
      (!existed && sqlite3_exec(st->db, schema, NULL, NULL, &msg) != SQLITE_OK)) {
    snprintf(err, errlen, "%s: cannot set up the store: %s", path, msg ? msg : sqlite3_errmsg(st->db));
    sqlite3_free(msg);
    lsr_store_close(st);
    return NULL;
  }
  return st;
}

void lsr_store_close(lsr_store *st) {
  if (!st) return;
  if (st->in_tx) lsr_store_commit(st);
  for (int i = 0; i < STMT_CACHE; i++)
    if (st->cache[i].q) sqlite3_finalize(st->cache[i].q);
  sqlite3_close_v2(st->db);
  free(st);
}

int lsr_store_begin(lsr_store *st) {
  if (st->in_tx) return 0;
  if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
    set_error(st, "begin");
    return -1;
  }
  st->in_tx = 1;
  return 0;
}

int lsr_store_commit(lsr_store *st) {
  if (!st->in_tx) return 0;
  if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
    set_error(st, "commit");
    lsr_store_rollback(st);
    return -1;
  }
  st->in_tx = 0;
  return 0;
}

void lsr_store_rollback(lsr_store *st) {
  if (st->in_tx) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
  st->in_tx = 0;
}

int lsr_store_in_transaction(lsr_store *st) { return st->in_tx; }

/* A prepared statement for sql with its arguments bound; give it back with
 * done(). */
static sqlite3_stmt *prepare(lsr_store *st, const char *sql, const char *fmt, va_list ap) {
  sqlite3_stmt *q = NULL;
  size_t slot = ((uintptr_t)sql >> 3) % STMT_CACHE;
  if (st->cache[slot].sql == sql && strcmp(sqlite3_sql(st->cache[slot].q), sql) == 0) {
    q = st->cache[slot].q;
    st->cache[slot].sql = NULL; /* taken: a nested use prepares its own */
    st->cache[slot].q = NULL;
  } else if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK) {
    set_error(st, "prepare");
    return NULL;
  }
  for (int i = 0; fmt && fmt[i]; i++) {
    int rc = SQLITE_OK;
    switch (fmt[i]) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      rc = s ? sqlite3_bind_text(q, i + 1, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(q, i + 1);
      break;
    }
    case 'i': rc = sqlite3_bind_int64(q, i + 1, va_arg(ap, int64_t)); break;
    case 'd': rc = sqlite3_bind_double(q, i + 1, va_arg(ap, double)); break;
    case 'n': rc = sqlite3_bind_null(q, i + 1); break;
    }
    if (rc != SQLITE_OK) {
      set_error(st, "bind");
      sqlite3_finalize(q);
      return NULL;
    }
  }
  return q;
}

/* Back to the cache (reset, bindings cleared), or finalized. */
static void done(lsr_store *st, const char *sql, sqlite3_stmt *q) {
  size_t slot = ((uintptr_t)sql >> 3) % STMT_CACHE;
  sqlite3_reset(q);
  sqlite3_clear_bindings(q);
  if (st->cache[slot].q) sqlite3_finalize(st->cache[slot].q);
  st->cache[slot].sql = sql;
  st->cache[slot].q = q;
}

int lsr_store_exec(lsr_store *st, const char *sql, const char *fmt, ...) {
  /* writes go into the turn's transaction */
  if (strncmp(sql, "SELECT", 6) != 0 && lsr_store_begin(st) < 0) return -1;
  va_list ap;
  va_start(ap, fmt);
  sqlite3_stmt *q = prepare(st, sql, fmt, ap);
  va_end(ap);
  if (!q) return -1;
  int rc = sqlite3_step(q);
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) set_error(st, "write");
  done(st, sql, q);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : -1;
}

char *lsr_store_text(lsr_store *st, const char *sql, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_stmt *q = prepare(st, sql, fmt, ap);
  va_end(ap);
  if (!q) return NULL;
  char *out = NULL;
  if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
    out = lsr_strdup((const char *)sqlite3_column_text(q, 0));
  done(st, sql, q);
  return out;
}

int64_t lsr_store_int(lsr_store *st, int64_t dflt, const char *sql, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_stmt *q = prepare(st, sql, fmt, ap);
  va_end(ap);
  if (!q) return dflt;
  int64_t v = dflt;
  if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) v = sqlite3_column_int64(q, 0);
  done(st, sql, q);
  return v;
}

int lsr_store_each(lsr_store *st, void (*row)(void *ud, int ncols, const char **cols), void *ud,
                   const char *sql, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  sqlite3_stmt *q = prepare(st, sql, fmt, ap);
  va_end(ap);
  if (!q) return -1;
  int n = sqlite3_column_count(q), rc;
  const char *cols[32];
  if (n > 32) n = 32;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    for (int i = 0; i < n; i++) cols[i] = (const char *)sqlite3_column_text(q, i);
    row(ud, n, cols);
  }
  if (rc != SQLITE_DONE) set_error(st, "read");
  done(st, sql, q);
  return rc == SQLITE_DONE ? 0 : -1;
}

int64_t lsr_store_last_id(lsr_store *st) { return sqlite3_last_insert_rowid(st->db); }
