/* backend.h: what a backend of the store provides (sqlite.c, postgres.c),
 * and the part of the store every backend shares (store.c): the turn's
 * transaction, the runs written in it, the last error.  A backend's own
 * struct begins with an lsr_store. */
#ifndef LSR_STORE_BACKEND_H
#define LSR_STORE_BACKEND_H
#include "store.h"
#include <stdarg.h>

/* the schema's version, in the meta table: another is refused */
#define LSR_STORE_SCHEMA "luasoar store 2"

/* each backend's SQL of every statement (sqlite_sql.c, postgres_sql.c) */
extern const char *const lsr_sqlite_sql[LSR_Q_COUNT];
extern const char *const lsr_pg_sql[LSR_Q_COUNT];

typedef void (*lsr_store_row)(void *ud, int ncols, const char **cols);

typedef struct {
  /* BEGIN and COMMIT of the turn's transaction: 0, or -1 with the error set */
  int (*begin)(lsr_store *st);
  int (*commit)(lsr_store *st);
  /* what is left of an open transaction is rolled back (after a failed
   * write or commit the backend may have done it already) */
  void (*rollback)(lsr_store *st);
  /* statement q with its arguments; each row (if any) to row, when given:
   * 0, or -1 with the error set */
  int (*run)(lsr_store *st, lsr_q q, const char *fmt, va_list ap, lsr_store_row row, void *ud);
  int (*changes)(lsr_store *st);
  int (*is_write)(lsr_q q);
  int read_fails_turn;  /* a failed read ends the transaction (PostgreSQL) */
  int (*cap_pages)(lsr_store *st, long long pages); /* -1 where there is no such cap */
  void (*close)(lsr_store *st);                     /* the backend's own part, then free */
  /* the cluster (NULL where there is none: SQLite) */
  int (*join)(lsr_store *st, const char *node, const char *listen, double lease, double hold_limit);
  int (*fenced)(lsr_store *st);
  int (*socket)(lsr_store *st, unsigned *connection);
  int (*notified)(lsr_store *st, void (*each)(void *ud, const char *payload), void *ud);
  /* a backend whose turns are kept while the database is away (PostgreSQL):
   * a statement with its arguments as text (NULL: null), and whether the
   * connection is lost (not a statement's fault) */
  int (*run_values)(lsr_store *st, lsr_q q, int n, const char *const *values, lsr_store_row row, void *ud);
  int (*lost)(lsr_store *st);
} lsr_store_ops;

/* A write, kept to be sent again (its statement and arguments as text). */
typedef struct {
  lsr_q q;
  int n;
  char **values;
} lsr_store_write;

typedef struct {
  lsr_store_write *w;
  size_t n, cap, bytes;
} lsr_store_writes;

struct lsr_store {
  const lsr_store_ops *ops;
  int in_tx;
  int failed;           /* the turn's transaction was lost: writes refused until it ends */
  char error[512];
  lsr_store_run *touched, *lost; /* runs written in this turn; in failed turns */
  size_t ntouched, captouched, nlost, caplost;
  /* the database away (run_values backends): the turn's writes, and the
   * turns kept until it is back, with the runs that wrote in them */
  lsr_store_writes turn, pending;
  lsr_store_run *held;
  size_t nheld, capheld;
  int away;             /* this turn found the database away: its writes are kept, not sent */
  int try_now;          /* a lost connection is tried again now, not after its pause */
};

/* store.c, for the backends */
void lsr_store_errorf(lsr_store *st, const char *fmt, ...);
/* the turn's runs are lost with it (a failed BEGIN) */
void lsr_store_lose_turn(lsr_store *st);

/* the backends' openers */
lsr_store *lsr_sqlite_open(const char *path, int read_only, char *err, size_t errlen);
lsr_store *lsr_pg_open(const char *uri, int read_only, char *err, size_t errlen);

#endif
