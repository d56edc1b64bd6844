/* engine.c: the loop and the ready queue.  Work that must not happen inside
 * the call that caused it (a callback is never called from inside its own
 * phantom.act) goes on the queue and runs on the next turn of the loop.
 * No Lua here: the queue hands tasks to bindings/. */
#include "engine.h"
#include "soar.h"
#include "exec_runner.h"
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LSR_DEFAULT_MAX_APP_OUTPUT (16u << 20)

static void run_tasks(uv_idle_t *h) {
  lsr_engine *eng = h->data;
  /* take the current batch: tasks queued while it runs wait for the next turn */
  lsr_task *t = eng->ready_head;
  eng->ready_head = eng->ready_tail = NULL;
  uv_idle_stop(&eng->idle);
  while (t) {
    lsr_task *next = t->next;
    t->next = NULL;
    switch (t->kind) {
    case LSR_TASK_RUN_START: lsr_run_start((lsr_run *)t); break;
    case LSR_TASK_APP_RUN: lsr_act_start_app_run(eng, (lsr_app_run *)t); break;
    case LSR_TASK_CALLBACK: lsr_act_dispatch((lsr_action_run *)t); break;
    case LSR_TASK_SCHEDULED: lsr_sched_run(eng, t); break;
    case LSR_TASK_CHILD_START: lsr_child_start(eng, t); break;
    }
    t = next;
  }
}

void lsr_engine_push(lsr_engine *eng, lsr_task *t) {
  t->next = NULL;
  if (eng->ready_tail) eng->ready_tail->next = t;
  else eng->ready_head = t;
  eng->ready_tail = t;
  if (!uv_is_active((uv_handle_t *)&eng->idle)) uv_idle_start(&eng->idle, run_tasks);
}

static uint64_t random64(void) {
  uint64_t v = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    if (read(fd, &v, sizeof v) != sizeof v) v = 0;
    close(fd);
  }
  if (!v) v = (uint64_t)uv_hrtime() ^ ((uint64_t)getpid() << 32);
  return v;
}

int64_t lsr_new_id(lsr_engine *eng, lsr_id_kind kind) {
  if (eng->obs.new_id) return eng->obs.new_id(kind, eng->obs.ud);
  return kind <= LSR_ID_APP_RUN ? eng->next_id[kind]++ : 0;
}

lsr_engine *lsr_engine_new(uv_loop_t *loop, char *err, size_t errlen) {
  signal(SIGPIPE, SIG_IGN); /* a child that exits early must not kill us */
  lsr_engine *eng = lsr_xalloc(sizeof *eng);
  if (!loop) {
    loop = lsr_xalloc(sizeof *loop);
    uv_loop_init(loop);
    eng->own_loop = 1;
  }
  eng->loop = loop;
  eng->cfg = lsr_xalloc(sizeof *eng->cfg);
  uv_idle_init(loop, &eng->idle);
  eng->idle.data = eng;
  for (int k = 0; k < LSR_ID_KINDS; k++) eng->next_id[k] = 1;
  eng->guid_seed = random64();
  eng->max_app_output = LSR_DEFAULT_MAX_APP_OUTPUT;
  eng->exec_max = 256;
  eng->vnow = 1704067200.0; /* a virtual clock starts at 2024-01-01T00:00:00Z */
  if (lsr_lua_setup(eng, err, errlen) < 0) {
    lsr_engine_free(eng);
    return NULL;
  }
  return eng;
}

struct lsr_timer {
  double at;
  uint64_t seq;
  lsr_timer_cb cb;
  void *ud;
  lsr_engine *eng;
  uv_timer_t uv;        /* real clock only */
  lsr_timer *next;      /* virtual clock only */
};

double lsr_clock(lsr_engine *eng) { return eng->virtual_clock ? eng->vnow : lsr_now(); }

static void real_timer_closed(uv_handle_t *h) { free(h->data); }

static void real_timer_fired(uv_timer_t *h) {
  lsr_timer *t = h->data;
  t->cb(t->ud);
  uv_close((uv_handle_t *)h, real_timer_closed);
}

lsr_timer *lsr_timer_at(lsr_engine *eng, double at, lsr_timer_cb cb, void *ud) {
  lsr_timer *t = lsr_xalloc(sizeof *t);
  t->at = at;
  t->seq = ++eng->timer_seq;
  t->cb = cb;
  t->ud = ud;
  t->eng = eng;
  if (eng->virtual_clock) { /* sorted by time, then by creation */
    lsr_timer **p = &eng->vtimers;
    while (*p && (*p)->at <= at) p = &(*p)->next;
    t->next = *p;
    *p = t;
  } else {
    double delay = at - lsr_now();
    uv_timer_init(eng->loop, &t->uv);
    t->uv.data = t;
    uv_timer_start(&t->uv, real_timer_fired, delay > 0 ? (uint64_t)(delay * 1000 + 0.5) : 0, 0);
  }
  return t;
}

void lsr_timer_cancel(lsr_engine *eng, lsr_timer *t) {
  if (!eng->virtual_clock) {
    uv_timer_stop(&t->uv);
    uv_close((uv_handle_t *)&t->uv, real_timer_closed);
    return;
  }
  for (lsr_timer **p = &eng->vtimers; *p; p = &(*p)->next)
    if (*p == t) { *p = t->next; free(t); return; }
}

/* Run until nothing is left.  On a virtual clock, time jumps to the next
 * timer only when the loop has nothing else to do (real child processes
 * included), so delays pass at once and in order. */
void lsr_engine_drain(lsr_engine *eng) {
  for (;;) {
    uv_run(eng->loop, UV_RUN_DEFAULT);
    lsr_timer *t = eng->vtimers;
    if (!t) break;
    eng->vtimers = t->next;
    if (t->at > eng->vnow) eng->vnow = t->at;
    t->cb(t->ud);
    free(t);
  }
}

void lsr_engine_free(lsr_engine *eng) {
  if (!eng) return;
  lsr_lua_apps_stop(eng); /* no worker thread may still use an app's state */
  lsr_lua_teardown(eng);
  while (eng->vtimers) {
    lsr_timer *t = eng->vtimers;
    eng->vtimers = t->next;
    free(t);
  }
  lsr_config_free(eng->cfg);
  free(eng->cfg);
  lsr_soar_keep_free(eng);
  free(eng->scripts_dir);
  lsr_exec_reaper_close(eng->loop); /* what apps left behind dies with the engine */
  uv_close((uv_handle_t *)&eng->idle, NULL);
  if (eng->own_loop) {
    uv_run(eng->loop, UV_RUN_DEFAULT); /* let closing handles finish */
    uv_loop_close(eng->loop);
    free(eng->loop);
  } else {
    uv_run(eng->loop, UV_RUN_NOWAIT);
  }
  free(eng);
}

/* A version-4-shaped UUID: a random engine seed mixed with a counter, so
 * guids never repeat within an engine and differ between engines.  A seed of
 * 0 (set by tests) gives the same guids on every run. */
void lsr_guid(lsr_engine *eng, char out[37]) {
  uint64_t x = eng->guid_seed + (++eng->guid_counter) * 0x9E3779B97F4A7C15ull;
  /* splitmix64, twice */
  uint64_t a = x, b;
  a = (a ^ (a >> 30)) * 0xBF58476D1CE4E5B9ull; a = (a ^ (a >> 27)) * 0x94D049BB133111EBull; a ^= a >> 31;
  b = a + 0x9E3779B97F4A7C15ull;
  b = (b ^ (b >> 30)) * 0xBF58476D1CE4E5B9ull; b = (b ^ (b >> 27)) * 0x94D049BB133111EBull; b ^= b >> 31;
  snprintf(out, 37, "%08x-%04x-4%03x-%04x-%012llx", (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff,
           (unsigned)a & 0xfff, (unsigned)(0x8000 | ((b >> 48) & 0x3fff)),
           (unsigned long long)(b & 0xffffffffffffull));
}

/* "name=value" from a command line into the engine's limits (the names of
 * playbook_info.limits). */
int lsr_limit_set(lsr_engine *eng, const char *spec, char *err, size_t errlen) {
  const char *eq = strchr(spec, '=');
  char *end;
  double v = eq ? strtod(eq + 1, &end) : 0;
  if (!eq || *end || v <= 0) {
    snprintf(err, errlen, "--limit %s: expected NAME=NUMBER with a positive number", spec);
    return -1;
  }
  size_t n = (size_t)(eq - spec);
  lsr_limits *l = &eng->limits;
  if (n == 25 && strncmp(spec, "instructions_per_callback", n) == 0) l->instructions_per_callback = (long long)v;
  else if (n == 20 && strncmp(spec, "instructions_per_run", n) == 0) l->instructions_per_run = (long long)v;
  else if (n == 9 && strncmp(spec, "memory_mb", n) == 0) l->memory = (size_t)(v * 1048576.0);
  else if (n == 16 && strncmp(spec, "deadline_seconds", n) == 0) l->deadline = v;
  else if (n == 16 && strncmp(spec, "engine_memory_mb", n) == 0) eng->mem_limit = (size_t)(v * 1048576.0);
  else if (n == 10 && strncmp(spec, "exec_slots", n) == 0) eng->exec_max = (int)v;
  else if (n == 12 && strncmp(spec, "step_seconds", n) == 0) eng->step_seconds = v; /* the watchdog's */
  else if (n == 9 && strncmp(spec, "log_bytes", n) == 0) l->log_bytes = (size_t)v;
  else if (n == 12 && strncmp(spec, "shared_bytes", n) == 0) eng->shared_bytes = (size_t)v;
  else {
    snprintf(err, errlen, "--limit %.*s: unknown limit (instructions_per_callback, instructions_per_run, memory_mb,"
             " deadline_seconds, engine_memory_mb, exec_slots, log_bytes, shared_bytes, step_seconds)", (int)n, spec);
    return -1;
  }
  return 0;
}
