/* report.c: the JSON report of an ended run, the `--json` contract of
 * `luasoar run`: {"status", "run_id", "container_id", "playbook", "log":
 * [{"level", "message", "time" (luasoar run only)}], "summary", "error",
 * "container"}.  No Lua here. */
#include "engine.h"
#include "json_check.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct { char *s; size_t n, cap; } buf_t;

static void put(buf_t *b, const char *s) {
  size_t l = strlen(s);
  if (b->n + l + 1 > b->cap) {
    while (b->n + l + 1 > b->cap) b->cap = b->cap ? b->cap * 2 : 1024;
    b->s = lsr_xrealloc(b->s, b->cap);
  }
  memcpy(b->s + b->n, s, l + 1);
  b->n += l;
}

static void put_quoted(buf_t *b, const char *s) {
  char *q = lsr_json_quote(s);
  put(b, q);
  free(q);
}

char *lsr_run_report_json(lsr_run *run) {
  buf_t b = {0};
  char num[64];
  put(&b, "{\"status\":");
  put(&b, run->failed ? "\"failed\"" : "\"success\"");
  snprintf(num, sizeof num, ",\"run_id\":%lld,\"container_id\":%lld,\"playbook\":",
           (long long)run->id, (long long)run->container_id);
  put(&b, num);
  put_quoted(&b, run->gen->path);
  put(&b, ",\"log\":[");
  for (size_t i = 0; i < run->nlog; i++) {
    put(&b, i ? ",{\"level\":" : "{\"level\":");
    put(&b, run->log[i].level == LSR_LOG_ERROR ? "\"error\"" : "\"debug\"");
    put(&b, ",\"message\":");
    put_quoted(&b, run->log[i].message);
    if (run->eng->report_times) { /* ISO 8601 UTC with milliseconds, as REST and `luasoar runs` */
      char iso[40];
      double t = run->log[i].time;
      time_t sec = (time_t)t;
      int ms = (int)((t - (double)sec) * 1000);
      struct tm tm;
      gmtime_r(&sec, &tm);
      size_t n = strftime(iso, sizeof iso, ",\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
      snprintf(iso + n, sizeof iso - n, ".%03dZ\"", ms < 0 ? 0 : ms > 999 ? 999 : ms);
      put(&b, iso);
    }
    put(&b, "}");
  }
  put(&b, "],\"summary\":");
  char *summary = lsr_run_summary_json(run);
  put(&b, summary);
  free(summary);
  put(&b, ",\"error\":");
  if (run->error) put_quoted(&b, run->error);
  else put(&b, "null");
  put(&b, ",\"container\":");
  char *container = lsr_run_container_json(run);
  put(&b, container);
  free(container);
  put(&b, "}");
  return b.s;
}
