/* store.c: the store's shared part, over a backend (backend.h): which
 * backend a --db names, the turn's transaction and the runs written in it,
 * statements run by name.  No Lua here.
 *
 * A turn fails as a whole.  Once a write fails (a full disk, an I/O error,
 * a lost connection, anything), the turn's transaction is rolled back and
 * every later write of the turn is refused until it ends (lsr_store_commit
 * or lsr_store_rollback: -1, with the first error).  Without that, the
 * statements after a rollback would auto-commit one by one: a run stored
 * `success` with 11 of its 10,001 log lines.  The runs whose writes were in
 * a failed turn are handed to the caller (lsr_store_take_lost), which fails
 * them. */
#include "backend.h"
#include "engine.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int lsr_store_is_postgres(const char *db) {
  return strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0;
}

lsr_store *lsr_store_open(const char *db, char *err, size_t errlen) {
  return lsr_store_is_postgres(db) ? lsr_pg_open(db, 0, err, errlen) : lsr_sqlite_open(db, 0, err, errlen);
}

lsr_store *lsr_store_open_read(const char *db, char *err, size_t errlen) {
  return lsr_store_is_postgres(db) ? lsr_pg_open(db, 1, err, errlen) : lsr_sqlite_open(db, 1, err, errlen);
}

void lsr_store_close(lsr_store *st) {
  if (!st) return;
  if (st->in_tx) lsr_store_commit(st);
  free(st->touched);
  free(st->lost);
  st->ops->close(st);
}

void lsr_store_errorf(lsr_store *st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->error, sizeof st->error, fmt, ap);
  va_end(ap);
}

const char *lsr_store_error(lsr_store *st) { return st->error; }

/* ---- the turn ---- */

static void push_run(lsr_store_run **v, size_t *n, size_t *cap, lsr_store_run r) {
  if (*n && (*v)[*n - 1].run_id == r.run_id) return; /* the common case: the same run again */
  if (*n == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    *v = lsr_xrealloc(*v, *cap * sizeof **v);
  }
  (*v)[(*n)++] = r;
}

void lsr_store_touch(lsr_store *st, int64_t run_id, int64_t container_id) {
  if (run_id > 0) push_run(&st->touched, &st->ntouched, &st->captouched, (lsr_store_run){run_id, container_id});
}

void lsr_store_lose_turn(lsr_store *st) {
  for (size_t i = 0; i < st->ntouched; i++) push_run(&st->lost, &st->nlost, &st->caplost, st->touched[i]);
  st->ntouched = 0;
}

lsr_store_run *lsr_store_take_lost(lsr_store *st, size_t *n) {
  *n = st->nlost;
  if (!st->nlost) return NULL;
  lsr_store_run *v = st->lost;
  st->lost = NULL;
  st->nlost = st->caplost = 0;
  return v;
}

/* A statement of the turn failed: the whole turn fails. */
static void fail_turn(lsr_store *st) {
  if (st->in_tx) st->ops->rollback(st);
  st->in_tx = 0;
  st->failed = 1;
  lsr_store_lose_turn(st);
}

int lsr_store_begin(lsr_store *st) {
  if (st->failed) return -1; /* the turn is lost: nothing more of it is written */
  if (st->in_tx) return 0;
  if (st->ops->begin(st) < 0) {
    st->failed = 1;
    lsr_store_lose_turn(st);
    return -1;
  }
  st->in_tx = 1;
  return 0;
}

int lsr_store_commit(lsr_store *st) {
  if (st->failed) { /* the turn is over; its error stays in st->error */
    st->failed = 0;
    lsr_store_lose_turn(st); /* runs whose writes were refused after the failure too */
    return -1;
  }
  if (!st->in_tx) return 0;
  if (st->ops->commit(st) < 0) {
    st->ops->rollback(st);
    st->in_tx = 0;
    lsr_store_lose_turn(st);
    return -1;
  }
  st->in_tx = 0;
  st->ntouched = 0;
  return 0;
}

void lsr_store_rollback(lsr_store *st) {
  if (st->in_tx) st->ops->rollback(st);
  st->in_tx = 0;
  st->failed = 0;
  lsr_store_lose_turn(st);
}

int lsr_store_in_transaction(lsr_store *st) { return st->in_tx || st->failed; }

int lsr_store_changes(lsr_store *st) { return st->ops->changes(st); }

int lsr_store_cap_pages(lsr_store *st, long long pages) { return st->ops->cap_pages(st, pages); }

/* ---- statements ---- */

/* q run; a write goes into the turn's transaction, and a failure inside
 * the transaction fails the turn (on PostgreSQL any failed statement ends
 * the transaction, a read too). */
static int run(lsr_store *st, lsr_q q, const char *fmt, va_list ap, lsr_store_row row, void *ud) {
  int write = st->ops->is_write(q);
  if (write && lsr_store_begin(st) < 0) return -1;
  int rc = st->ops->run(st, q, fmt, ap, row, ud);
  if (rc < 0 && st->in_tx && (write || st->ops->read_fails_turn)) fail_turn(st);
  return rc;
}

int lsr_store_exec(lsr_store *st, lsr_q q, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = run(st, q, fmt, ap, NULL, NULL);
  va_end(ap);
  return rc;
}

typedef struct {
  int rows;
  char *text;
} first_cell;

static void take_first(void *ud, int ncols, const char **cols) {
  first_cell *f = ud;
  if (f->rows++ == 0 && ncols > 0 && cols[0]) f->text = lsr_strdup(cols[0]);
}

char *lsr_store_text(lsr_store *st, lsr_q q, const char *fmt, ...) {
  first_cell f = {0, NULL};
  va_list ap;
  va_start(ap, fmt);
  run(st, q, fmt, ap, take_first, &f);
  va_end(ap);
  return f.text;
}

int64_t lsr_store_int(lsr_store *st, int64_t dflt, lsr_q q, const char *fmt, ...) {
  first_cell f = {0, NULL};
  va_list ap;
  va_start(ap, fmt);
  run(st, q, fmt, ap, take_first, &f);
  va_end(ap);
  int64_t v = f.text ? (int64_t)strtoll(f.text, NULL, 10) : dflt;
  free(f.text);
  return v;
}

int lsr_store_each(lsr_store *st, lsr_store_row row, void *ud, lsr_q q, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = run(st, q, fmt, ap, row, ud);
  va_end(ap);
  return rc;
}

/* ---- the cluster ---- */

int lsr_store_join(lsr_store *st, const char *node, const char *listen, double lease, double hold_limit) {
  return st->ops->join ? st->ops->join(st, node, listen, lease, hold_limit) : 0;
}

int lsr_store_clustered(lsr_store *st) { return st->ops->join != NULL; }

int lsr_store_fenced(lsr_store *st) { return st->ops->fenced ? st->ops->fenced(st) : 0; }

int lsr_store_socket(lsr_store *st, unsigned *connection) {
  *connection = 0;
  return st->ops->socket ? st->ops->socket(st, connection) : -1;
}

int lsr_store_notified(lsr_store *st, void (*each)(void *ud, const char *payload), void *ud) {
  return st->ops->notified && !st->in_tx && !st->failed ? st->ops->notified(st, each, ud) : 0;
}
