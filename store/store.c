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

static void writes_clear(lsr_store_writes *ws);

void lsr_store_close(lsr_store *st) {
  if (!st) return;
  if (st->in_tx) lsr_store_commit(st);
  writes_clear(&st->turn);
  writes_clear(&st->pending);
  free(st->turn.w);
  free(st->pending.w);
  free(st->held);
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

/* ---- the database away ----
 *
 * A backend that can say its connection is lost (PostgreSQL) keeps the
 * turns it could not write: a turn that finds the database away sends
 * nothing more, its writes are kept in order with the earlier kept turns,
 * and its runs go on (they are not lost).  The next turn first writes what
 * was kept, in its own transaction: once that commits, nothing is missing.
 * A turn that an acknowledgement waits for (lsr_store_commit_ack) is not
 * kept: the client is told it was not stored.  What the database refuses
 * when it is back (another error than a lost connection: a node that lost
 * its runs, say) is given up: the runs that wrote it are lost. */

#define KEPT_MAX (64u << 20) /* bytes of kept writes; past them, given up */

static void writes_clear(lsr_store_writes *ws) {
  for (size_t i = 0; i < ws->n; i++) {
    for (int k = 0; k < ws->w[i].n; k++) free(ws->w[i].values[k]);
    free(ws->w[i].values);
  }
  ws->n = ws->bytes = 0;
}

static void writes_push(lsr_store_writes *ws, lsr_store_write w, size_t bytes) {
  if (ws->n == ws->cap) {
    ws->cap = ws->cap ? ws->cap * 2 : 64;
    ws->w = lsr_xrealloc(ws->w, ws->cap * sizeof *ws->w);
  }
  ws->w[ws->n++] = w;
  ws->bytes += bytes;
}

static void writes_add(lsr_store_writes *ws, lsr_q q, int n, const char *const *values) {
  lsr_store_write w = {q, n, lsr_xalloc((size_t)(n ? n : 1) * sizeof *w.values)};
  size_t bytes = sizeof w;
  for (int k = 0; k < n; k++) {
    w.values[k] = values[k] ? lsr_strdup(values[k]) : NULL;
    bytes += values[k] ? strlen(values[k]) + 1 : 0;
  }
  writes_push(ws, w, bytes);
}

static int keeps(lsr_store *st) { return st->ops->run_values != NULL; }

/* What was kept will not be written: its runs are lost. */
static void give_up(lsr_store *st) {
  writes_clear(&st->pending);
  for (size_t i = 0; i < st->nheld; i++) push_run(&st->lost, &st->nlost, &st->caplost, st->held[i]);
  st->nheld = 0;
}

/* The turn found the database away: its writes join the kept ones, its
 * runs are held, not lost. */
static void keep_turn(lsr_store *st) {
  for (size_t i = 0; i < st->turn.n; i++) writes_push(&st->pending, st->turn.w[i], 0);
  st->pending.bytes += st->turn.bytes;
  st->turn.n = st->turn.bytes = 0;
  for (size_t i = 0; i < st->ntouched; i++) push_run(&st->held, &st->nheld, &st->capheld, st->touched[i]);
  st->ntouched = 0;
  if (st->pending.bytes > KEPT_MAX) {
    lsr_store_errorf(st, "the database was away for more than %u MiB of writes: they were given up", KEPT_MAX >> 20);
    give_up(st);
  }
}

/* A failure was the connection's: the turn goes on away (1). */
static int away_now(lsr_store *st) {
  if (!keeps(st) || !st->ops->lost(st)) return 0;
  if (st->in_tx) st->ops->rollback(st);
  st->in_tx = 0;
  st->away = 1;
  return 1;
}

size_t lsr_store_kept(lsr_store *st) { return st->pending.n; }

void lsr_store_try_now(lsr_store *st) { st->try_now = 1; }

/* A statement of the turn failed: the whole turn fails (and what was kept
 * and sent again in it is given up). */
static void fail_turn(lsr_store *st) {
  if (st->in_tx) st->ops->rollback(st);
  st->in_tx = 0;
  st->failed = 1;
  lsr_store_lose_turn(st);
  writes_clear(&st->turn);
  give_up(st);
}

int lsr_store_begin(lsr_store *st) {
  if (st->failed) return -1; /* the turn is lost: nothing more of it is written */
  if (st->in_tx || st->away) return 0;
  if (st->ops->begin(st) < 0) {
    if (away_now(st)) return 0;
    st->failed = 1;
    lsr_store_lose_turn(st);
    return -1;
  }
  st->in_tx = 1;
  for (size_t i = 0; i < st->pending.n; i++) { /* what was kept goes first */
    lsr_store_write *w = &st->pending.w[i];
    if (st->ops->run_values(st, w->q, w->n, (const char *const *)w->values, NULL, NULL) < 0) {
      if (away_now(st)) return 0;
      fail_turn(st);
      return -1;
    }
  }
  return 0;
}

static int commit(lsr_store *st, int keep) {
  if (st->failed) { /* the turn is over; its error stays in st->error */
    st->failed = 0;
    lsr_store_lose_turn(st); /* runs whose writes were refused after the failure too */
    writes_clear(&st->turn);
    return -1;
  }
  if (!st->in_tx && !st->away) {
    if (!st->pending.n) return 0;
    if (lsr_store_begin(st) < 0) return commit(st, keep); /* what was kept goes now, alone */
  }
  if (!st->away && st->ops->commit(st) < 0) {
    st->ops->rollback(st);
    st->in_tx = 0;
    if (!away_now(st)) {
      lsr_store_lose_turn(st);
      writes_clear(&st->turn);
      give_up(st);
      return -1;
    }
  }
  if (st->away) {
    st->away = 0;
    if (keep) {
      keep_turn(st);
    } else {
      lsr_store_lose_turn(st);
      writes_clear(&st->turn);
    }
    return -1;
  }
  st->in_tx = 0;
  st->ntouched = 0;
  writes_clear(&st->turn);
  writes_clear(&st->pending);
  st->nheld = 0;
  return 0;
}

int lsr_store_commit(lsr_store *st) { return commit(st, 1); }

int lsr_store_commit_ack(lsr_store *st) { return commit(st, 0); }

void lsr_store_rollback(lsr_store *st) {
  if (st->in_tx) st->ops->rollback(st);
  st->in_tx = 0;
  st->failed = 0;
  st->away = 0;
  lsr_store_lose_turn(st);
  writes_clear(&st->turn);
}

int lsr_store_in_transaction(lsr_store *st) { return st->in_tx || st->failed || st->away || st->pending.n; }

int lsr_store_changes(lsr_store *st) { return st->ops->changes(st); }

int lsr_store_cap_pages(lsr_store *st, long long pages) { return st->ops->cap_pages(st, pages); }

/* ---- statements ---- */

/* The arguments as text, as the statement's format says ('s' string, 'i'
 * int64, 'd' double, 'n' null): how many, or -1 (more than 16). */
static int as_text(const char *fmt, va_list ap, const char **values, char nums[][32]) {
  int n = fmt ? (int)strlen(fmt) : 0;
  if (n > 16) return -1;
  for (int i = 0; i < n; i++) {
    switch (fmt[i]) {
    case 's': values[i] = va_arg(ap, const char *); break;
    case 'i': snprintf(nums[i], 32, "%lld", (long long)va_arg(ap, int64_t)); values[i] = nums[i]; break;
    case 'd': snprintf(nums[i], 32, "%.17g", va_arg(ap, double)); values[i] = nums[i]; break;
    default: values[i] = NULL; break;
    }
  }
  return n;
}

/* q run; a write goes into the turn's transaction, and a failure inside
 * the transaction fails the turn (on PostgreSQL any failed statement ends
 * the transaction, a read too).  With the database away, a write (one
 * that reads no rows) is kept for when it is back. */
static int run(lsr_store *st, lsr_q q, const char *fmt, va_list ap, lsr_store_row row, void *ud) {
  int write = st->ops->is_write(q);
  if (!keeps(st)) {
    if (write && lsr_store_begin(st) < 0) return -1;
    int rc = st->ops->run(st, q, fmt, ap, row, ud);
    if (rc < 0 && st->in_tx && (write || st->ops->read_fails_turn)) fail_turn(st);
    return rc;
  }
  const char *values[16];
  char nums[16][32];
  int n = as_text(fmt, ap, values, nums);
  if (n < 0) {
    lsr_store_errorf(st, "more than 16 arguments");
    return -1;
  }
  if (write && lsr_store_begin(st) < 0) return -1;
  int kept = write && !row; /* a statement whose rows are needed now is never kept */
  if (kept) writes_add(&st->turn, q, n, values);
  if (st->away) {
    if (kept) return 0;
    lsr_store_errorf(st, "the database is away");
    return -1;
  }
  int rc = st->ops->run_values(st, q, n, values, row, ud);
  if (rc < 0 && st->in_tx) {
    if (away_now(st)) return kept ? 0 : -1;
    if (write || st->ops->read_fails_turn) fail_turn(st);
  }
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
