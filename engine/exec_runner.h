/* exec_runner.h: what the exec runner adds to engine.h's lsr_exec_start /
 * lsr_exec_kill: the subreaper that catches what apps leave behind.
 *
 * An app runs in its own session (so its own process group).  When it
 * exits, its group is killed; a process that left the group (setsid, a
 * daemon) is caught by the subreaper: with PR_SET_CHILD_SUBREAPER set, an
 * orphan of an app is reparented to the engine instead of init, and the
 * engine kills and reaps it.  Only a process that starts no children of
 * its own besides exec apps may turn it on (luasoar run, luasoar serve): the
 * reaper kills every child of the process that is not a live app.  No Lua
 * here. */
#ifndef LSR_EXEC_RUNNER_H
#define LSR_EXEC_RUNNER_H
#include <uv.h>

/* Seconds an app's pipes may stay open after it exited before its run ends
 * with what was read. */
#define LSR_EXEC_GRACE 1.0

/* Make this process a child subreaper and turn the reaper on.  0, or -1
 * with errno (the runner then still kills each app's group and ends its
 * run LSR_EXEC_GRACE after the app exits, but orphans that left the group
 * live on). */
int lsr_exec_subreaper(void);
/* The engine goes: kill the apps still running (their groups) and
 * everything apps left behind, reap what is not libuv's, and stop watching
 * SIGCHLD on loop (before the loop is closed).  Does nothing when the
 * reaper is off. */
void lsr_exec_reaper_close(uv_loop_t *loop);
/* Counters for tests: orphans killed, and reaped, since the start. */
void lsr_exec_reaper_stats(long *killed, long *reaped);
#endif
