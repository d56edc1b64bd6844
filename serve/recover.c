/* recover.c: what `luasoar serve` does at start for the runs that were
 * in flight when it stopped or died (the rules are in the README's
 * "Durability"), the watchdog's marker among them. */
#include "internal.h"

/* ---- recovery after a restart ---- */


/* A run that was in flight, as its row says. */
typedef struct {
  int64_t id, cid, parent;
  char *pb, *scope;
} in_flight;
typedef struct { in_flight *runs; int n; } in_flight_list;

static void collect_run(void *ud, int ncols, const char **cols) {
  in_flight_list *l = ud;
  (void)ncols;
  l->runs = lsr_xrealloc(l->runs, (size_t)(l->n + 1) * sizeof *l->runs);
  l->runs[l->n++] = (in_flight){atoll(cols[0]), cols[1] ? atoll(cols[1]) : 0, cols[2] ? atoll(cols[2]) : 0,
                                cols[3] ? lsr_strdup(cols[3]) : NULL, lsr_strdup(cols[4] ? cols[4] : "new")};
}

static void fail_recovery(server *s, int64_t id, const char *why) {
  lsr_store_exec(s->store, LSR_Q_RUN_FAILED, "sdi", why, lsr_now(), id);
  lsr_store_exec(s->store, LSR_Q_LOG_ERROR, "isd",
                 id, why, lsr_now());
  srv_say("recover run %lld: failed: %s", (long long)id, why);
}

/* A custom list or object the store kept, back into the engine (a row
 * that does not load is said and skipped: the rest still loads). */
void srv_restore_row(void *ud, int ncols, const char **cols) {
  server *s = ud;
  char err[1024];
  if (lsr_hook_strings(s->eng, cols[0], ncols - 1, cols + 1, err, sizeof err) < 0)
    srv_say("store: %s '%s' does not load: %s", cols[0], cols[1], err);
}

/* ---- the watchdog's marker (engine/watchdog.h) ---- */

#define IN_STEP_NOTE "the engine stopped while this run was inside a step"

/* A run the engine died inside fails, and what it left unfinished ends
 * with it, as at a run's end. */
static void fail_killed(server *s, int64_t id, const char *why) {
  fail_recovery(s, id, why);
  srv_end_open_rows(s, id, lsr_now());
}

/* What the marker says of the engine's last death.  The run the watchdog
 * killed fails with its verdict.  A run that was inside a step when the
 * engine died (kill -9, a crash) resumes once, with a line in its log that
 * counts it; found inside a step a second time, it fails: a run that takes
 * the engine down is never resumed into it again.  A child playbook run
 * that died in its first turn has no row yet (its parent would start it
 * again): failing, it gets one from its parent's call, so the parent sees
 * it ended. */
static int claimed(const in_flight_list *l, int64_t id) {
  for (int i = 0; i < l->n; i++)
    if (l->runs[i].id == id) return 1;
  return 0;
}

/* Returns the id of the run it failed (not to be resumed), or 0.  In a
 * cluster, only a run this node took back is its business. */
static int64_t step_death(server *s, const in_flight_list *l) {
  const lsr_step_death *d = lsr_watchdog_death();
  char why[512];
  if (!d) return 0;
  int64_t id = d->killed_run ? d->killed_run : d->in_step_run;
  if (!id || (s->cluster && !claimed(l, id))) return 0;
  int stored = lsr_store_int(s->store, 0, LSR_Q_RUN_EXISTS, "i", id) > 0;
  if (stored && !lsr_store_int(s->store, 0, LSR_Q_RUN_IS_RUNNING, "i", id))
    return 0; /* it had ended */
  if (!stored && !lsr_store_int(s->store, 0, LSR_Q_CHILD_CALL_RUNNING, "i", id))
    return 0; /* nothing the store knows */
  int again = lsr_store_int(s->store, 0, LSR_Q_LOG_STARTS_WITH,
                            "iis", id, (int64_t)strlen(IN_STEP_NOTE), IN_STEP_NOTE) > 0;
  if (!d->killed_run && !again) {
    snprintf(why, sizeof why, IN_STEP_NOTE " (%g s into it): it resumes once; if the engine stops inside one of its"
             " steps again, it fails", d->in_step_seconds);
    lsr_store_exec(s->store, LSR_Q_LOG_ERROR, "isd", id,
                   why, lsr_now());
    srv_say("recover run %lld: %s", (long long)id, why);
    return 0;
  }
  if (d->killed_run) {
    snprintf(why, sizeof why, "%s", d->reason);
    srv_say("watchdog: run %lld on container %lld was killed when the engine last ran", (long long)id,
        (long long)d->killed_container);
  } else {
    snprintf(why, sizeof why, "killed: the engine stopped twice while this run was inside a step (%g s into it"
             " this time)", d->in_step_seconds);
  }
  if (!stored)
    lsr_store_exec(s->store, LSR_Q_RUN_INSERT_RECOVERED, "id", id, lsr_now());
  fail_killed(s, id, why);
  return id;
}

/* Every run that was in flight goes on, or ends with a reason: at start,
 * the runs this server had; in a cluster also, at any time, those it
 * claims (cluster.c).  Returns how many went on. */
int srv_recover(server *s, int at_start) {
  in_flight_list l = {0};
  lsr_store_each(s->store, collect_run, &l, LSR_Q_RUNS_CLAIM, "i", (int64_t)at_start);
  /* a claim is committed before its runs go on: they are this node's */
  if (s->cluster && lsr_store_commit(s->store) < 0) {
    static char said[512]; /* once per reason, not every tick while the database is away */
    if (strcmp(said, lsr_store_error(s->store)) != 0)
      srv_say("error: could not claim runs: %s", lsr_store_error(s->store));
    snprintf(said, sizeof said, "%s", lsr_store_error(s->store));
    for (int i = 0; i < l.n; i++) {
      free(l.runs[i].pb);
      free(l.runs[i].scope);
    }
    l.n = 0;
  }
  if (!at_start && !l.n) {
    free(l.runs);
    return 0;
  }
  int64_t killed = at_start ? step_death(s, &l) : 0; /* a killed run is not resumed */
  int resumed = 0, failed = 0, n = 0;
  char err[1024];
  for (int i = 0; i < l.n; i++) {
    int64_t id = l.runs[i].id, cid = l.runs[i].cid;
    char *pbid = l.runs[i].pb;
    if (id == killed) {
      free(pbid);
      free(l.runs[i].scope);
      continue;
    }
    n++;
    pb_entry *p = pbid ? srv_find_pb(s, pbid) : NULL;
    char *json = srv_container_json(s, cid);
    char *rec = lsr_store_text(s->store, LSR_Q_RUN_RECOVERY, "i", id);
    lsr_run *run = NULL;
    if (!p || !p->gen) {
      snprintf(err, sizeof err, "%s: playbook '%s' is gone or does not load", INTERRUPTED_BY_RESTART, pbid ? pbid : "?");
    } else if (!json || !rec) {
      snprintf(err, sizeof err, "%s: its container %lld is not in the store", INTERRUPTED_BY_RESTART, (long long)cid);
    } else {
      s->eng->forced_run_id = id;
      run = lsr_run_json(s->eng, p->gen, json, strlen(json), "container", err, sizeof err);
      s->eng->forced_run_id = 0;
      if (run) {
        run->recovered = 1;
        if (lsr_run_state_set(run, "recovery", rec) < 0) /* it ends at its start, with why */
          lsr_run_fail(run, INTERRUPTED_BY_RESTART ": its recovery record does not load");
        run->parent_run_id = l.runs[i].parent;
        run->ud = l.runs[i].scope; /* the run owns it now */
        l.runs[i].scope = NULL;
      }
    }
    if (run) {
      resumed++;
      srv_say("recover run %lld: resumed (%s on container %lld)", (long long)id, p->id, (long long)cid);
    } else {
      failed++;
      fail_recovery(s, id, err);
    }
    free(pbid);
    free(l.runs[i].scope);
    free(json);
    free(rec);
  }
  free(l.runs);
  lsr_store_exec(s->store, LSR_Q_PROMPTS_TIME_OUT, "");
  /* an approval is asked again when its action starts again */
  lsr_store_exec(s->store, LSR_Q_APPROVALS_CANCEL, "");
  if (s->cluster) lsr_store_exec(s->store, LSR_Q_RUNS_RECOVERED, "");
  lsr_store_commit(s->store);
  if (at_start) srv_say("recovery: %d runs were in flight: %d resumed, %d failed", n, resumed, failed);
  else srv_say("took over %d runs from other nodes: %d resumed, %d failed", n, resumed, failed);
  return resumed;
}
