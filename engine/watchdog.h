/* watchdog.h: the last line against a step that never ends (engine/watchdog.c).
 *
 * Every step of a run (a block through lsr_run_resume; lua app runs are on
 * worker threads, not steps: bindings/runner_lua.c) is
 * bracketed by lsr_step_enter / lsr_step_leave: plain atomic stores into a
 * small marker, no syscall.  A watchdog thread (luasoar run and serve) reads
 * the marker; when one step has lasted the hard limit (--limit
 * step_seconds=N, default 30) it records the verdict in the marker, says so
 * on stderr and ends the process: `run` prints the run's failed last line
 * and exits 1, `serve` exits with LSR_WATCHDOG_EXIT for its supervisor to
 * restart it.  Under serve the marker is a MAP_SHARED file beside the store
 * (STORE-step), so it outlives the process, kill -9 included: recovery reads
 * which run was inside a step when the engine died and whether the watchdog
 * killed it.  No Lua here. */
#ifndef LSR_WATCHDOG_H
#define LSR_WATCHDOG_H
#include "engine.h"
#include <stdatomic.h>
#include <stdint.h>

#define LSR_STEP_SECONDS_DEFAULT 30.0
#define LSR_WATCHDOG_EXIT 124 /* serve: the watchdog ended the process (as timeout(1) does) */
#define LSR_STEP_REASON_MAX 160

typedef struct {
  char magic[16];
  _Atomic uint64_t seq;            /* steps entered; written by the loop thread only */
  _Atomic int64_t run_id;          /* the run inside a step now, 0: none */
  _Atomic int64_t container_id;
  _Atomic int64_t elapsed_ms;      /* watchdog: the current step has lasted at least this */
  _Atomic int64_t killed_run;      /* the watchdog's verdict: the run it killed */
  _Atomic int64_t killed_container;
  char reason[LSR_STEP_REASON_MAX]; /* "killed: N s in one step" */
} lsr_step_marker;

/* The marker steps write to: process memory, or the mapped file under serve. */
extern lsr_step_marker *lsr_step;

/* A step of run begins (the loop thread only). */
static inline void lsr_step_enter(const lsr_run *run) {
  lsr_step_marker *m = lsr_step;
  atomic_store_explicit(&m->run_id, run->id, memory_order_relaxed);
  atomic_store_explicit(&m->container_id, run->container_id, memory_order_relaxed);
  atomic_store_explicit(&m->seq, atomic_load_explicit(&m->seq, memory_order_relaxed) + 1, memory_order_release);
}

/* The step is over; outer: the run whose step goes on (nested), or NULL. */
static inline void lsr_step_leave(const lsr_run *outer) {
  lsr_step_marker *m = lsr_step;
  atomic_store_explicit(&m->run_id, outer ? outer->id : 0, memory_order_relaxed);
  if (outer) atomic_store_explicit(&m->container_id, outer->container_id, memory_order_relaxed);
}

/* What the marker file said at start: the engine's last death. */
typedef struct {
  int64_t in_step_run, in_step_container; /* inside a step when it died (0: none) */
  double in_step_seconds;                 /* how long that step had lasted, as last seen */
  int64_t killed_run, killed_container;   /* the watchdog killed it (0: no) */
  char reason[LSR_STEP_REASON_MAX];
} lsr_step_death;

/* serve: map the marker file (created if missing) and read the last death;
 * steps write to it from now on.  -1 with why in err. */
int lsr_watchdog_open(const char *path, char *err, size_t errlen);
/* The last death read by lsr_watchdog_open, or NULL (no file opened). */
const lsr_step_death *lsr_watchdog_death(void);

typedef enum { LSR_WATCHDOG_RUN, LSR_WATCHDOG_SERVE } lsr_watchdog_mode;
/* Clear the marker (recovery has dealt with the last death) and start the
 * thread.  run mode: top is the run `luasoar run` reports on (its last line,
 * or with json its --json report), even when the step is a child's. */
int lsr_watchdog_start(double seconds, lsr_watchdog_mode mode, const lsr_run *top, int json,
                       char *err, size_t errlen);
void lsr_watchdog_stop(void);
/* The reason a run fails with when the watchdog kills it. */
void lsr_watchdog_reason(double seconds, char *out, size_t len);

#endif
