/* watchdog.c: a thread that ends the process when the loop has spent longer
 * than the hard limit in one step of a run (see watchdog.h).  It never
 * touches Lua, the store or stdio: the loop thread may hold any of their
 * locks when it is stuck.  It reads the step marker, and its verdict goes
 * into the marker (msync'd), onto stderr and stdout with write(2), then
 * _exit. */
#include "watchdog.h"
#include "json_check.h"
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "luasoar step 1\n"
#define MARKER_BYTES 4096

static lsr_step_marker process_marker;
lsr_step_marker *lsr_step = &process_marker;

static struct {
  int mapped;
  lsr_step_death death;
  pthread_t thread;
  int running;
  pthread_mutex_t lock;
  pthread_cond_t wake;
  int stop;             /* under lock */
  double seconds;
  lsr_watchdog_mode mode;
  int json;
  int64_t top_run, top_container; /* run: the run the last line is about */
  char *playbook_json;  /* its playbook's path, JSON-quoted (run --json) */
} wd;

void lsr_watchdog_reason(double seconds, char *out, size_t len) {
  snprintf(out, len, "killed: %g s in one step", seconds);
}

int lsr_watchdog_open(const char *path, char *err, size_t errlen) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    snprintf(err, errlen, "%s: cannot open the watchdog's step marker: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  if (st.st_size < MARKER_BYTES && ftruncate(fd, MARKER_BYTES) != 0) {
    snprintf(err, errlen, "%s: cannot size the watchdog's step marker: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  lsr_step_marker *m = mmap(NULL, MARKER_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd); /* the mapping stays */
  if (m == MAP_FAILED) {
    snprintf(err, errlen, "%s: cannot map the watchdog's step marker: %s", path, strerror(errno));
    return -1;
  }
  memset(&wd.death, 0, sizeof wd.death);
  if (memcmp(m->magic, MAGIC, sizeof MAGIC) == 0) {
    lsr_step_death *d = &wd.death;
    d->in_step_run = atomic_load(&m->run_id);
    d->in_step_container = atomic_load(&m->container_id);
    d->in_step_seconds = (double)atomic_load(&m->elapsed_ms) / 1000.0;
    d->killed_run = atomic_load(&m->killed_run);
    d->killed_container = atomic_load(&m->killed_container);
    memcpy(d->reason, m->reason, sizeof d->reason);
    d->reason[sizeof d->reason - 1] = 0;
    if (d->killed_run && !d->reason[0]) lsr_watchdog_reason(LSR_STEP_SECONDS_DEFAULT, d->reason, sizeof d->reason);
  } else { /* new, or not ours: it holds nothing we can use */
    memset(m, 0, MARKER_BYTES);
    memcpy(m->magic, MAGIC, sizeof MAGIC);
  }
  lsr_step = m;
  wd.mapped = 1;
  return 0;
}

const lsr_step_death *lsr_watchdog_death(void) { return wd.mapped ? &wd.death : NULL; }

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_all(int fd, const char *s, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, s, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    s += w;
    n -= (size_t)w;
  }
}

/* The step of run rid has lasted the limit: record, say, end the process. */
static void verdict(int64_t rid, int64_t cid) {
  lsr_step_marker *m = lsr_step;
  char reason[LSR_STEP_REASON_MAX], line[1024];
  lsr_watchdog_reason(wd.seconds, reason, sizeof reason);
  memcpy(m->reason, reason, sizeof reason);
  atomic_store(&m->killed_container, cid);
  atomic_store(&m->killed_run, rid);
  if (wd.mapped) msync(m, MARKER_BYTES, MS_SYNC);
  if (wd.mode == LSR_WATCHDOG_SERVE) {
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    int n = snprintf(line, sizeof line,
                     "%s watchdog: run %lld on container %lld: %s: the engine exits (status %d) for its"
                     " supervisor to restart it; the run is recorded failed at the next start\n",
                     stamp, (long long)rid, (long long)cid, reason, LSR_WATCHDOG_EXIT);
    put_all(2, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
    _exit(LSR_WATCHDOG_EXIT);
  }
  /* the step may be a child playbook's: the last line is the run's */
  char child[64] = "";
  if (wd.top_run && rid != wd.top_run) snprintf(child, sizeof child, " (in its child playbook run %lld)", (long long)rid);
  if (wd.top_run) rid = wd.top_run, cid = wd.top_container;
  int n = snprintf(line, sizeof line, "luasoar run: watchdog: run %lld on container %lld: %s%s\n", (long long)rid,
                   (long long)cid, reason, child);
  put_all(2, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
  if (wd.json) /* the log lines went with the process: the report has the verdict only (the
               * container's state is in the Lua state this thread must not touch) */
    n = snprintf(line, sizeof line,
                 "{\"status\":\"failed\",\"run_id\":%lld,\"container_id\":%lld,\"playbook\":%s,"
                 "\"log\":[{\"level\":\"error\",\"message\":\"%s%s\"}],\"summary\":null,\"error\":\"%s\",\"container\":null}\n",
                 (long long)rid, (long long)cid, wd.playbook_json ? wd.playbook_json : "null", reason, child, reason);
  else
    n = snprintf(line, sizeof line, "ERROR: %s%s\nrun %lld on container %lld: failed: %s\n", reason, child,
                 (long long)rid, (long long)cid, reason);
  put_all(1, line, n < (int)sizeof line ? (size_t)n : sizeof line - 1);
  _exit(1);
}

/* Poll the marker.  A step is timed from the first poll that sees it, so a
 * verdict comes between the limit and the limit plus one interval after the
 * step began, never before the limit. */
static void *watch(void *arg) {
  (void)arg;
  lsr_step_marker *m = lsr_step;
  int64_t limit_ms = (int64_t)(wd.seconds * 1000.0 + 0.5);
  int64_t interval = limit_ms / 20;
  if (interval < 5) interval = 5;
  if (interval > 250) interval = 250;
  uint64_t seen_seq = 0;
  int64_t seen_at = 0;
  int timing = 0;
  struct timespec next;
  clock_gettime(CLOCK_MONOTONIC, &next);
  for (;;) {
    next.tv_nsec += (long)(interval % 1000) * 1000000L;
    next.tv_sec += (time_t)(interval / 1000) + next.tv_nsec / 1000000000L;
    next.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&wd.lock);
    while (!wd.stop && pthread_cond_timedwait(&wd.wake, &wd.lock, &next) != ETIMEDOUT) {}
    int stop = wd.stop;
    pthread_mutex_unlock(&wd.lock);
    if (stop) break;
    uint64_t seq = atomic_load_explicit(&m->seq, memory_order_acquire);
    int64_t rid = atomic_load_explicit(&m->run_id, memory_order_relaxed);
    int64_t cid = atomic_load_explicit(&m->container_id, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    uint64_t again = atomic_load_explicit(&m->seq, memory_order_relaxed);
    int64_t now = mono_ms();
    if (rid == 0 || seq != again) { /* between steps, or moving */
      timing = 0;
      atomic_store_explicit(&m->elapsed_ms, 0, memory_order_relaxed);
      continue;
    }
    if (!timing || seq != seen_seq) {
      timing = 1;
      seen_seq = seq;
      seen_at = now;
      continue;
    }
    int64_t elapsed = now - seen_at;
    atomic_store_explicit(&m->elapsed_ms, elapsed, memory_order_relaxed);
    /* the same step still, and the same run (a step that left and a nested
     * one that came back would have moved seq) */
    if (elapsed >= limit_ms && atomic_load(&m->seq) == seq && atomic_load(&m->run_id) == rid) verdict(rid, cid);
  }
  return NULL;
}

int lsr_watchdog_start(double seconds, lsr_watchdog_mode mode, const lsr_run *top, int json, char *err,
                       size_t errlen) {
  if (wd.running) return 0;
  lsr_step_marker *m = lsr_step;
  /* the last death has been dealt with: a clean marker, durably */
  atomic_store(&m->run_id, 0);
  atomic_store(&m->container_id, 0);
  atomic_store(&m->elapsed_ms, 0);
  atomic_store(&m->killed_run, 0);
  atomic_store(&m->killed_container, 0);
  memset(m->reason, 0, sizeof m->reason);
  if (wd.mapped) msync(m, MARKER_BYTES, MS_SYNC);
  wd.seconds = seconds > 0 ? seconds : LSR_STEP_SECONDS_DEFAULT;
  wd.mode = mode;
  wd.json = json;
  free(wd.playbook_json);
  wd.top_run = top ? top->id : 0;
  wd.top_container = top ? top->container_id : 0;
  wd.playbook_json = top ? lsr_json_quote(top->gen->path) : NULL;
  wd.stop = 0;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_mutex_init(&wd.lock, NULL);
  pthread_cond_init(&wd.wake, &ca);
  pthread_condattr_destroy(&ca);
  /* signals go to the loop thread, never to this one */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int rc = pthread_create(&wd.thread, NULL, watch, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (rc != 0) {
    snprintf(err, errlen, "cannot start the watchdog thread: %s", strerror(rc));
    return -1;
  }
  wd.running = 1;
  return 0;
}

void lsr_watchdog_stop(void) {
  if (!wd.running) return;
  pthread_mutex_lock(&wd.lock);
  wd.stop = 1;
  pthread_cond_signal(&wd.wake);
  pthread_mutex_unlock(&wd.lock);
  pthread_join(wd.thread, NULL);
  pthread_cond_destroy(&wd.wake);
  pthread_mutex_destroy(&wd.lock);
  wd.running = 0;
  free(wd.playbook_json);
  wd.playbook_json = NULL;
}
