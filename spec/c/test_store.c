/* test_store.c: a turn whose transaction is lost fails as a whole
 * (store/sqlite.c).  The store is capped with max_page_count, so writes
 * fail with SQLITE_FULL exactly as on a full disk: after the first failed
 * write nothing more of the turn is written (no auto-commit one by one),
 * commit says why, the runs that wrote in the turn are handed back, and the
 * next turn works. */
#include "store.h"
#include "engine.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define CHECK(cond, ...) do { if (!(cond)) { failures++; fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
  fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

static int64_t rows(lsr_store *st, int64_t run) {
  return lsr_store_int(st, -1, LSR_Q_LOG_COUNT, "i", run);
}

int main(void) {
  char dir[] = "/tmp/lsr-test-store.XXXXXX", path[256], err[1024];
  if (!mkdtemp(dir)) return 2;
  snprintf(path, sizeof path, "%s/store.db", dir);
  lsr_store *st = lsr_store_open(path, err, sizeof err);
  CHECK(st != NULL, "open: %s", err);
  if (!st) return 1;
  int64_t pages = lsr_store_int(st, 0, LSR_Q_PAGE_COUNT, "");
  CHECK(lsr_store_cap_pages(st, (long long)pages + 4) == 0, "cap: %s", lsr_store_error(st));

  /* a turn that fits */
  lsr_store_touch(st, 1, 10);
  CHECK(lsr_store_exec(st, LSR_Q_LOG_INSERT, "issd", (int64_t)1, "debug", "fits", 0.0) == 0,
        "small write: %s", lsr_store_error(st));
  CHECK(lsr_store_commit(st) == 0, "commit: %s", lsr_store_error(st));
  size_t n;
  CHECK(lsr_store_take_lost(st, &n) == NULL && n == 0, "a committed turn lost %zu runs", n);

  /* a turn that does not: 100 rows of 8 KiB in 4 free pages */
  char *big = malloc(8193);
  memset(big, 'x', 8192);
  big[8192] = 0;
  lsr_store_touch(st, 2, 20);
  int i, rc = 0;
  for (i = 0; i < 100 && rc == 0; i++)
    rc = lsr_store_exec(st, LSR_Q_LOG_INSERT, "issd", (int64_t)2, "debug", big, 0.0);
  CHECK(rc < 0 && i > 0, "the capped store took 100 rows");
  CHECK(strstr(lsr_store_error(st), "database or disk is full") != NULL, "error: %s", lsr_store_error(st));
  /* the turn is lost: later writes of it are refused, small or not, even
   * for another run; they would have auto-committed one by one */
  lsr_store_touch(st, 3, 30);
  CHECK(lsr_store_exec(st, LSR_Q_LOG_INSERT, "issd", (int64_t)2, "debug", "small", 0.0) < 0,
        "a write after the lost one was taken");
  CHECK(lsr_store_exec(st, LSR_Q_RUN_STATUS, "ssdi", "success", "", 0.0, (int64_t)2) < 0,
        "an update after the lost one was taken");
  CHECK(lsr_store_in_transaction(st), "a lost turn must still be ended");
  CHECK(rows(st, 2) == 0, "reads see %lld rows of the lost turn", (long long)rows(st, 2));
  CHECK(lsr_store_commit(st) < 0, "the lost turn committed");
  CHECK(strstr(lsr_store_error(st), "write: database or disk is full") != NULL, "commit error: %s",
        lsr_store_error(st));
  lsr_store_run *lost = lsr_store_take_lost(st, &n);
  CHECK(n == 2 && lost && lost[0].run_id == 2 && lost[0].container_id == 20 && lost[1].run_id == 3,
        "lost runs: %zu", n);
  free(lost);
  CHECK(!lsr_store_in_transaction(st), "the turn did not end");

  /* the next turn works, and nothing of the lost one is there */
  lsr_store_touch(st, 1, 10);
  CHECK(lsr_store_exec(st, LSR_Q_LOG_INSERT, "issd", (int64_t)1, "debug", "again", 0.0) == 0,
        "the next turn: %s", lsr_store_error(st));
  CHECK(lsr_store_commit(st) == 0, "the next commit: %s", lsr_store_error(st));
  CHECK(rows(st, 1) == 2 && rows(st, 2) == 0, "rows: run 1 %lld, run 2 %lld", (long long)rows(st, 1),
        (long long)rows(st, 2));

  /* a rollback by the caller loses the turn's runs too */
  lsr_store_touch(st, 4, 40);
  CHECK(lsr_store_exec(st, LSR_Q_LOG_INSERT, "issd", (int64_t)4, "debug", "x", 0.0) == 0, "write");
  lsr_store_rollback(st);
  lost = lsr_store_take_lost(st, &n);
  CHECK(n == 1 && lost[0].run_id == 4, "rollback: %zu lost", n);
  free(lost);
  CHECK(rows(st, 4) == 0, "rolled back rows kept");
  free(big);
  lsr_store_close(st);

  /* a foreign file is still refused untouched; a good store reopens */
  st = lsr_store_open(path, err, sizeof err);
  CHECK(st != NULL, "reopen: %s", err);
  lsr_store_close(st);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
  printf("%s\n", failures ? "store: FAILED" : "store: all checks passed");
  return failures != 0;
}
