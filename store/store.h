/* store.h: the store of `luasoar serve`: containers, artifacts, playbook
 * runs, action runs, app runs with their results, run data, run logs,
 * prompts.  Writes are grouped into one transaction per turn of the loop
 * (lsr_store_commit), and an acknowledgement to a client waits for its
 * commit.  Statements are named (queries.h); each backend has their SQL in
 * one place.  The backends: SQLite (sqlite.c, WAL mode, the default) and
 * PostgreSQL (postgres.c).  No Lua here. */
#ifndef LSR_STORE_H
#define LSR_STORE_H
#include "queries.h"
#include <stddef.h>
#include <stdint.h>

typedef struct lsr_store lsr_store;

/* Open or create the store db names: a PostgreSQL URI (postgresql://...
 * or postgres://..., libpq's; PG* variables fill in what it leaves out),
 * else a SQLite file.  A file or database that is not a luasoar store is
 * refused, never changed; one that cannot be written (a read-only file, a
 * folder where the -wal and -shm files cannot be made, a full disk) is
 * refused with the reason.  NULL with the reason in err, which names the
 * store (never a password). */
lsr_store *lsr_store_open(const char *db, char *err, size_t errlen);
/* The same store, to read only (luasoar runs): never created nor written;
 * refused if it is not a luasoar store of this version. */
lsr_store *lsr_store_open_read(const char *db, char *err, size_t errlen);
/* db names a PostgreSQL database. */
int lsr_store_is_postgres(const char *db);
/* db as messages show it: a URI's password hidden. */
void lsr_store_name(const char *db, char *out, size_t n);
void lsr_store_close(lsr_store *st);
/* The last error, for messages ("database or disk is full" ...). */
const char *lsr_store_error(lsr_store *st);

/* Transactions: writes open one; commit makes them durable.  -1 on error
 * (the transaction is rolled back: the caller must not acknowledge).
 * A turn fails as a whole: once a write fails (SQLITE_FULL, an I/O error,
 * anything), the transaction is rolled back and every later write is
 * refused (-1) until commit or rollback ends the turn; commit then returns
 * -1 with the first error in lsr_store_error. */
int lsr_store_begin(lsr_store *st);
int lsr_store_commit(lsr_store *st);
void lsr_store_rollback(lsr_store *st);
/* On PostgreSQL, a turn that finds the database away (a lost connection,
 * not a statement's fault) is kept, with its runs, and written first by
 * the next turn that reaches it: lsr_store_commit returns -1 meanwhile and
 * lsr_store_kept says how many writes wait.  A turn an acknowledgement
 * waits for is committed with lsr_store_commit_ack: away, it is not kept
 * (its runs are lost), and the client is told it was not stored. */
int lsr_store_commit_ack(lsr_store *st);
size_t lsr_store_kept(lsr_store *st);
/* A lost connection is tried again once a second; the next statement tries
 * at once (a client's write waits for the answer). */
void lsr_store_try_now(lsr_store *st);
/* A transaction is open, a failed turn has not been ended yet, or writes
 * are kept for the database's return. */
int lsr_store_in_transaction(lsr_store *st);

/* The runs whose writes were in a turn that was lost: the caller notes
 * each run it writes for (touch), and takes the lost ones after a failed
 * commit (a malloc'd array of n, or NULL; the list is emptied). */
typedef struct { int64_t run_id, container_id; } lsr_store_run;
void lsr_store_touch(lsr_store *st, int64_t run_id, int64_t container_id);
lsr_store_run *lsr_store_take_lost(lsr_store *st, size_t *n);
/* Rows changed by the last write. */
int lsr_store_changes(lsr_store *st);

/* Run statement q with text/integer/real/null arguments given by a format:
 * 's' string, 'i' int64, 'd' double, 'n' null.  -1 on error. */
int lsr_store_exec(lsr_store *st, lsr_q q, const char *fmt, ...);
/* The first column of the first row as a malloc'd string (NULL: no row or
 * NULL value), same arguments. */
char *lsr_store_text(lsr_store *st, lsr_q q, const char *fmt, ...);
/* The first column of the first row as an integer (dflt when none). */
int64_t lsr_store_int(lsr_store *st, int64_t dflt, lsr_q q, const char *fmt, ...);
/* Rows, one callback per row with its columns as text (NULL for null). */
int lsr_store_each(lsr_store *st, void (*row)(void *ud, int ncols, const char **cols), void *ud,
                   lsr_q q, const char *fmt, ...);
/* Cap the store at pages of 4 KiB (to test a full disk; SQLite only: -1
 * elsewhere). */
int lsr_store_cap_pages(lsr_store *st, long long pages);

/* The cluster: servers that share a PostgreSQL database are its nodes.
 * join: this server is node (its name, unique: another server of the same
 * name is refused), reachable at listen, its lease lease seconds, renewed
 * by a thread of the store; from now on each turn first checks that the
 * node still holds its runs (a node whose lease ran out may have lost them
 * to another), and a transaction left open longer than hold_limit seconds
 * (a node paused inside a turn) is ended by the database.  0, or -1 with
 * the error.  SQLite: nothing to join (0), one server per store. */
int lsr_store_join(lsr_store *st, const char *node, const char *listen, double lease, double hold_limit);
int lsr_store_clustered(lsr_store *st);
/* The node lost its runs to another (a turn was refused): it must stop
 * without writing more. */
int lsr_store_fenced(lsr_store *st);
/* The connection's socket, to wait on for notifications (-1: none), and
 * a count of connections made (it changes when the socket does). */
int lsr_store_socket(lsr_store *st, unsigned *connection);
/* The notifications that arrived (between turns; none inside one): each
 * payload to each; how many. */
int lsr_store_notified(lsr_store *st, void (*each)(void *ud, const char *payload), void *ud);

#endif
