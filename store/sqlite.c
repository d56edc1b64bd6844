/* sqlite.c: the store on SQLite (the default backend), in WAL mode, with
 * the schema of luasoar serve (the statements' SQL is in sqlite_sql.c).  A
 * file that is not ours is refused at open and never written; one the
 * engine cannot write is refused at open, with the reason.  On a full disk
 * or an I/O error SQLite may roll back the whole transaction
 * (sqlite3_get_autocommit turns true again) or only the statement; either
 * way what is left of it is rolled back (the turn fails as a whole:
 * store.c). */
#include "backend.h"
#include "engine.h"
#include <errno.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  lsr_store base;
  sqlite3 *db;
  /* prepared statements, compiled once (NULL while one is taken: a
   * nested use of the same statement prepares its own) */
  sqlite3_stmt *cache[LSR_Q_COUNT];
  sqlite3_stmt *begin_q, *commit_q; /* BEGIN IMMEDIATE, COMMIT: once per turn */
  int lock_fd;          /* holds the file's flock: one server per store */
} sqlite_store;

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
  "INSERT INTO meta VALUES('schema', '" LSR_STORE_SCHEMA "');";

/* tables added after the version's first schema (made when missing) */
static const char schema_added[] =
  "CREATE TABLE IF NOT EXISTS shared_owners(kind TEXT, container_key TEXT, key TEXT,"
  " playbook TEXT, PRIMARY KEY(kind, container_key, key));"
  "CREATE TABLE IF NOT EXISTS app_state(asset TEXT PRIMARY KEY, state TEXT);";

static void set_error(sqlite_store *st, const char *what) {
  lsr_store_errorf(&st->base, "%s: %s", what, sqlite3_errmsg(st->db));
}

/* Why path cannot be written, as far as the file system says ("" if it
 * does not say: then SQLite's message is the reason). */
static void why_unwritable(const char *path, char *why, size_t n) {
  char dir[4096], side[4200];
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  why[0] = 0;
  if (access(path, F_OK) == 0 && access(path, W_OK) != 0) {
    snprintf(why, n, "the file is not writable (%s)", strerror(errno));
    return;
  }
  static const char *const sides[] = {"-wal", "-shm", "-journal"};
  for (int i = 0; i < 3; i++) {
    snprintf(side, sizeof side, "%s%s", path, sides[i]);
    if (access(side, F_OK) == 0 && access(side, W_OK) != 0) {
      snprintf(why, n, "%s beside it is not writable (%s)", side, strerror(errno));
      return;
    }
  }
  if (access(dir, W_OK) != 0)
    snprintf(why, n, "its folder %s is not writable (%s): SQLite creates %s-wal and %s-shm there", dir,
             strerror(errno), path, path);
}

/* A store the engine cannot write is refused now, not at the first run. */
static int refuse_unwritable(const char *path, const char *sqlite_why, char *err, size_t errlen) {
  char why[4600];
  why_unwritable(path, why, sizeof why);
  snprintf(err, errlen, "%s: the store cannot be written: %s", path,
           why[0] ? why : sqlite_why ? sqlite_why : "read-only");
  return -1;
}

/* 0 if the open store is ours and of this version; else -1 with why in err
 * (the file is left untouched). */
static int check_schema(sqlite_store *st, const char *path, char *err, size_t errlen) {
  sqlite3_stmt *q;
  int rc = sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'schema'", -1, &q, NULL);
  if (rc != SQLITE_OK) {
    const char *why = sqlite3_errmsg(st->db);
    if (strstr(why, "no such table"))
      snprintf(err, errlen, "%s: a database, but not a luasoar store (no meta table); it is left untouched", path);
    else
      snprintf(err, errlen, "%s: not a luasoar store (%s); it is left untouched", path, why);
    return -1;
  }
  rc = sqlite3_step(q);
  int ok = rc == SQLITE_ROW && sqlite3_column_text(q, 0) &&
           strcmp((const char *)sqlite3_column_text(q, 0), LSR_STORE_SCHEMA) == 0;
  if (!ok) {
    snprintf(err, errlen, "%s: %s; it is left untouched", path,
             rc == SQLITE_ROW ? "a luasoar store of another version" : "not a luasoar store (no schema version)");
    sqlite3_finalize(q);
    return -1;
  }
  sqlite3_finalize(q);
  return 0;
}

static const lsr_store_ops sqlite_ops;

static void sqlite_close(lsr_store *base) {
  sqlite_store *st = (sqlite_store *)base;
  for (int i = 0; i < LSR_Q_COUNT; i++) sqlite3_finalize(st->cache[i]);
  sqlite3_finalize(st->begin_q);
  sqlite3_finalize(st->commit_q);
  sqlite3_close_v2(st->db);
  if (st->lock_fd >= 0) close(st->lock_fd);
  free(st);
}

/* The store, to read only: never created nor written; refused if it is not
 * a luasoar store of this version. */
static lsr_store *open_read(sqlite_store *st, const char *path, char *err, size_t errlen) {
  if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    snprintf(err, errlen, "%s: cannot open the store: %s", path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
    lsr_store_close(&st->base);
    return NULL;
  }
  sqlite3_busy_timeout(st->db, 5000);
  if (check_schema(st, path, err, errlen) != 0) {
    lsr_store_close(&st->base);
    return NULL;
  }
  return &st->base;
}

lsr_store *lsr_sqlite_open(const char *path, int read_only, char *err, size_t errlen) {
  sqlite_store *st = lsr_xalloc(sizeof *st);
  st->base.ops = &sqlite_ops;
  st->lock_fd = -1;
  if (read_only) return open_read(st, path, err, errlen);
  struct stat sb;
  int existed = stat(path, &sb) == 0 && sb.st_size > 0;
  if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
    char why[4600] = "";
    if (st->db) why_unwritable(path, why, sizeof why);
    snprintf(err, errlen, "%s: cannot open the store: %s", path,
             why[0] ? why : st->db ? sqlite3_errmsg(st->db) : "out of memory");
    lsr_store_close(&st->base);
    return NULL;
  }
  sqlite3_busy_timeout(st->db, 5000);
  /* SQLite opens a file it cannot write read-only, silently */
  if (sqlite3_db_readonly(st->db, "main") == 1) {
    refuse_unwritable(path, "SQLite opened it read-only", err, errlen);
    lsr_store_close(&st->base);
    return NULL;
  }
  if (existed) {
    char why[4600];
    why_unwritable(path, why, sizeof why); /* before a read: WAL mode fails it without saying why */
    if (why[0]) {
      snprintf(err, errlen, "%s: the store cannot be written: %s", path, why);
      lsr_store_close(&st->base);
      return NULL;
    }
    if (check_schema(st, path, err, errlen) != 0) {
      lsr_store_close(&st->base);
      return NULL;
    }
  }
  char *msg = NULL;
  if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &msg) != SQLITE_OK ||
      (!existed && sqlite3_exec(st->db, schema, NULL, NULL, &msg) != SQLITE_OK) ||
      sqlite3_exec(st->db, schema_added, NULL, NULL, &msg) != SQLITE_OK) {
    snprintf(err, errlen, "%s: cannot set up the store: %s", path, msg ? msg : sqlite3_errmsg(st->db));
    sqlite3_free(msg);
    lsr_store_close(&st->base);
    return NULL;
  }
  /* one real write, committed: the WAL and its index are created and
   * written, so a store that cannot be written (or a full disk) is refused
   * now, with the reason */
  if (sqlite3_exec(st->db, "INSERT OR REPLACE INTO meta VALUES('opened', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                   NULL, NULL, &msg) != SQLITE_OK) {
    char sqlite_why[600];
    snprintf(sqlite_why, sizeof sqlite_why, "%s", msg ? msg : sqlite3_errmsg(st->db));
    sqlite3_free(msg);
    refuse_unwritable(path, sqlite_why, err, errlen);
    lsr_store_close(&st->base);
    return NULL;
  }
  /* one server per store: its recovery takes every running run as its own.
   * flock, not SQLite's fcntl locks, on a descriptor apps do not inherit
   * (O_CLOEXEC: one left behind by a killed server must not hold it) */
  st->lock_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (st->lock_fd < 0 || flock(st->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    snprintf(err, errlen, "%s: %s", path,
             st->lock_fd >= 0 && errno == EWOULDBLOCK ? "another luasoar serve uses this store" : strerror(errno));
    lsr_store_close(&st->base);
    return NULL;
  }
  return &st->base;
}

/* BEGIN and COMMIT, prepared once: SQLITE_OK or the error (the statement
 * is reset, so that a ROLLBACK after a failed COMMIT can run). */
static int run_once(sqlite_store *st, sqlite3_stmt **q, const char *sql) {
  if (!*q && sqlite3_prepare_v2(st->db, sql, -1, q, NULL) != SQLITE_OK) return SQLITE_ERROR;
  int rc = sqlite3_step(*q);
  sqlite3_reset(*q);
  return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int sqlite_begin(lsr_store *base) {
  sqlite_store *st = (sqlite_store *)base;
  if (run_once(st, &st->begin_q, "BEGIN IMMEDIATE") == SQLITE_OK) return 0;
  set_error(st, "begin");
  return -1;
}

static int sqlite_commit(lsr_store *base) {
  sqlite_store *st = (sqlite_store *)base;
  if (run_once(st, &st->commit_q, "COMMIT") == SQLITE_OK) return 0;
  set_error(st, "commit");
  return -1;
}

/* SQLite may already have rolled the transaction back (disk full, I/O
 * error: autocommit is on again) */
static void sqlite_rollback(lsr_store *base) {
  sqlite_store *st = (sqlite_store *)base;
  if (!sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Writes: the statements that are not a SELECT. */
static int sqlite_is_write(lsr_q q) { return strncmp(lsr_sqlite_sql[q], "SELECT", 6) != 0; }

/* A prepared statement q with its arguments bound; give it back with
 * done(). */
static sqlite3_stmt *prepare(sqlite_store *st, lsr_q q, const char *fmt, va_list ap) {
  sqlite3_stmt *stmt = st->cache[q];
  st->cache[q] = NULL;
  if (!stmt && sqlite3_prepare_v2(st->db, lsr_sqlite_sql[q], -1, &stmt, NULL) != SQLITE_OK) {
    set_error(st, "prepare");
    return NULL;
  }
  for (int i = 0; fmt && fmt[i]; i++) {
    int rc = SQLITE_OK;
    switch (fmt[i]) {
    case 's': {
      const char *s = va_arg(ap, const char *);
      rc = s ? sqlite3_bind_text(stmt, i + 1, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(stmt, i + 1);
      break;
    }
    case 'i': rc = sqlite3_bind_int64(stmt, i + 1, va_arg(ap, int64_t)); break;
    case 'd': rc = sqlite3_bind_double(stmt, i + 1, va_arg(ap, double)); break;
    case 'n': rc = sqlite3_bind_null(stmt, i + 1); break;
    }
    if (rc != SQLITE_OK) {
      set_error(st, "bind");
      sqlite3_finalize(stmt);
      return NULL;
    }
  }
  return stmt;
}

/* Back to the cache (reset, bindings cleared), or finalized. */
static void done(sqlite_store *st, lsr_q q, sqlite3_stmt *stmt) {
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  if (st->cache[q]) sqlite3_finalize(stmt);
  else st->cache[q] = stmt;
}

static int sqlite_run(lsr_store *base, lsr_q q, const char *fmt, va_list ap, lsr_store_row row, void *ud) {
  sqlite_store *st = (sqlite_store *)base;
  sqlite3_stmt *stmt = prepare(st, q, fmt, ap);
  if (!stmt) return -1;
  int n = sqlite3_column_count(stmt), rc;
  const char *cols[32];
  if (n > 32) n = 32;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (!row) continue;
    for (int i = 0; i < n; i++) cols[i] = (const char *)sqlite3_column_text(stmt, i);
    row(ud, n, cols);
  }
  if (rc != SQLITE_DONE) set_error(st, sqlite_is_write(q) ? "write" : "read");
  done(st, q, stmt);
  return rc == SQLITE_DONE ? 0 : -1;
}

static int sqlite_changes(lsr_store *base) { return sqlite3_changes(((sqlite_store *)base)->db); }

static int sqlite_cap_pages(lsr_store *base, long long pages) {
  char pragma[64];
  snprintf(pragma, sizeof pragma, "PRAGMA max_page_count = %lld", pages);
  return sqlite3_exec(((sqlite_store *)base)->db, pragma, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static const lsr_store_ops sqlite_ops = {
  .begin = sqlite_begin, .commit = sqlite_commit, .rollback = sqlite_rollback, .run = sqlite_run,
  .changes = sqlite_changes, .is_write = sqlite_is_write, .cap_pages = sqlite_cap_pages, .close = sqlite_close,
};
