/* exec_runner.c: runs one exec app run as a child process under libuv.
 *
 * The child gets the request on stdin and must print its results on stdout.
 * It runs in its own session (so its own process group): a timeout or an
 * oversized output kills the whole tree with one signal.  It gets only the
 * environment variables its manifest names.  stderr is kept as a short tail
 * for messages.  No Lua here: the output goes back as text.
 *
 * When it ends.  An app run ends when the app has exited and both its pipes
 * are closed, or at its deadline, whichever comes first: the deadline holds
 * until the pipes are closed, not only until the app exits.  When the app
 * exits, its process group is killed at once (a grandchild that kept the
 * group dies with it), and with the subreaper on (exec_runner.h) every
 * orphan it left behind (a `setsid cmd &` daemon has left the group) is
 * killed too, so the pipes close.  If they are still open LSR_EXEC_GRACE
 * seconds after the exit (a process the engine cannot kill holds them, or
 * the reaper is off), the app run ends with what was read: judged as if
 * the pipes had closed then (exit status, then the output), so a complete
 * JSON answer still succeeds.
 *
 * The reaper.  libuv reaps only its own children, each with waitpid(pid) on
 * the pid of a uv_process_t (libuv 1.x: uv__wait_children); it never calls
 * waitpid(-1).  Orphans reparented to us are not uv_process_t handles: no
 * one would reap them, and a waitpid(-1) here would steal libuv's children
 * (their exit callbacks would never run).  So the reaper lists this
 * process's children (/proc/self/task/TID/children; all of /proc where the
 * kernel lacks those files), checks each one's parent in /proc/PID/stat, skips the live apps (libuv's; a
 * pid stays in the live list until libuv has reaped it and called
 * on_child_exit), skips the members of a live app's process group (they die
 * with the group when that app exits), SIGKILLs the rest and reaps the
 * zombies among them with waitpid on their own pid.  It runs when an app
 * exits and on every SIGCHLD (a uv_signal_t beside libuv's own watcher: a
 * killed orphan's death, and the death of an orphan's children, which are
 * then reparented to us, bring the next scan).  No pid race: a process whose
 * parent is us stays a zombie until we reap it, so the pid read from /proc
 * cannot name another process when kill() is sent. */
#include "engine.h"
#include "exec_runner.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define LSR_STDERR_TAIL 1024

struct lsr_exec_proc {
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;     /* the deadline */
  uv_timer_t grace;     /* from the app's exit: how long its pipes may stay open */
  uv_write_t wreq;
  char *input;
  char *buf;             /* stdout */
  size_t len, cap, max;
  char tail[LSR_STDERR_TAIL];
  size_t tail_len;
  double timeout;
  int exited, out_eof, err_eof, timed_out, too_big, killed, reported;
  int spawned;          /* in the live list (started, not yet reaped by libuv) */
  int64_t exit_status;
  int term_signal;
  int open_handles;
  lsr_exec_done done;
  void *ud;
  lsr_exec_line on_line; /* streaming (a long-lived worker): stdout line by line */
  struct lsr_exec_proc *live_next, *live_prev;
};

/* ---- the reaper (see the top of the file) ---- */

static struct {
  int on;
  uv_loop_t *loop;      /* of the SIGCHLD watcher, once started */
  uv_signal_t sigchld;
  lsr_exec_proc *live;  /* apps started and not yet reaped by libuv */
  long killed, reaped;
} reaper;

static void live_add(lsr_exec_proc *p) {
  p->spawned = 1;
  p->live_prev = NULL;
  p->live_next = reaper.live;
  if (reaper.live) reaper.live->live_prev = p;
  reaper.live = p;
}

static void live_remove(lsr_exec_proc *p) {
  if (!p->spawned) return;
  p->spawned = 0;
  if (p->live_prev) p->live_prev->live_next = p->live_next;
  else reaper.live = p->live_next;
  if (p->live_next) p->live_next->live_prev = p->live_prev;
}

/* pid's parent and process group from /proc/pid/stat; 0 or -1 (gone) */
static int proc_stat(pid_t pid, char *state, pid_t *ppid, pid_t *pgrp) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "re");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *rp = strrchr(buf, ')'); /* the command name may hold spaces and ')' */
  int pp, pg;
  if (!rp || sscanf(rp + 1, " %c %d %d", state, &pp, &pg) != 3) return -1;
  *ppid = pp;
  *pgrp = pg;
  return 0;
}

/* Our children's pids, from /proc/self/task/TID/children (only ours: cheap;
 * a child appears in the file of the thread that forked it, an orphan in
 * the one the kernel picked); -1 if the kernel has no such files, when the
 * caller scans all of /proc instead (about 20 us a process).  The files may
 * miss a child forked or reparented while they are read: the next scan
 * (each app exit, each SIGCHLD) finds it. */
static int list_children(pid_t **out, size_t *n, size_t *cap) {
  DIR *d = opendir("/proc/self/task");
  if (!d) return -1;
  int found = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!isdigit((unsigned char)e->d_name[0])) continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
    FILE *f = fopen(path, "re");
    if (!f) continue;
    found = 1;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) {
      if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *out = lsr_xrealloc(*out, *cap * sizeof **out);
      }
      (*out)[(*n)++] = pid;
    }
    fclose(f);
  }
  closedir(d);
  return found ? 0 : -1;
}

/* One scan: kill every child of ours that is not a live app (nor, unless
 * final, in a live app's group), reap the dead ones.  How many are left
 * alive (killed, not yet reaped). */
static int sweep(int final) {
  pid_t self = getpid();
  pid_t *pids = NULL;
  size_t n = 0, cap = 0;
  if (list_children(&pids, &n, &cap) < 0) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
      if (!isdigit((unsigned char)e->d_name[0])) continue;
      if (n == cap) {
        cap = cap ? cap * 2 : 256;
        pids = lsr_xrealloc(pids, cap * sizeof *pids);
      }
      pids[n++] = (pid_t)atoi(e->d_name);
    }
    if (d) closedir(d);
  }
  int left = 0;
  for (size_t i = 0; i < n; i++) {
    pid_t pid = pids[i], ppid, pgrp;
    char state;
    if (pid == self || proc_stat(pid, &state, &ppid, &pgrp) < 0 || ppid != self) continue;
    int app = 0;
    for (lsr_exec_proc *p = reaper.live; p && !app; p = p->live_next)
      app = p->proc.pid == pid || (!final && p->proc.pid == pgrp);
    if (app) continue;
    if (state != 'Z' && kill(pid, SIGKILL) == 0) reaper.killed++;
    if (waitpid(pid, NULL, WNOHANG) == pid) reaper.reaped++;
    else left++;
  }
  free(pids);
  return left;
}

static void on_sigchld(uv_signal_t *h, int sig) { sweep(0); }

int lsr_exec_subreaper(void) {
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) return -1;
  reaper.on = 1;
  return 0;
}

static void reaper_watch(uv_loop_t *loop) {
  if (!reaper.on || reaper.loop) return;
  reaper.loop = loop;
  uv_signal_init(loop, &reaper.sigchld);
  uv_signal_start(&reaper.sigchld, on_sigchld, SIGCHLD);
  uv_unref((uv_handle_t *)&reaper.sigchld); /* it never keeps the loop alive */
}

void lsr_exec_reaper_close(uv_loop_t *loop) {
  if (!reaper.on) return;
  /* apps still running are not waited for: the engine goes (their runs
   * stay in the store, and recovery decides what runs again) */
  for (lsr_exec_proc *p = reaper.live; p; p = p->live_next) kill(-p->proc.pid, SIGKILL);
  /* what is left is killed, and reaped before we go: 2 s at most */
  for (int i = 0; i < 200 && sweep(1) > 0; i++) usleep(10000);
  if (reaper.loop == loop) {
    uv_close((uv_handle_t *)&reaper.sigchld, NULL);
    reaper.loop = NULL;
  }
}

void lsr_exec_reaper_stats(long *killed, long *reaped) {
  *killed = reaper.killed;
  *reaped = reaper.reaped;
}

/* ---- one app run ---- */

static void on_close(uv_handle_t *h) {
  lsr_exec_proc *p = h->data;
  if (--p->open_handles == 0) {
    free(p->input);
    free(p->buf);
    free(p);
  }
}

static void close_handle(uv_handle_t *h) {
  if (!uv_is_closing(h)) uv_close(h, on_close);
}

static void kill_group(lsr_exec_proc *p) {
  if (!p->exited && p->proc.pid > 0) {
    kill(-p->proc.pid, SIGKILL);  /* the child leads its own group */
    uv_process_kill(&p->proc, SIGKILL);
  }
}

static void maybe_finish(lsr_exec_proc *p);
static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b);
static void on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *b);
static void on_err(uv_stream_t *s, ssize_t n, const uv_buf_t *b);

/* What the pipe holds now, read without waiting (libuv's pipes are
 * non-blocking): all the app wrote before it exited is there, even if the
 * loop was too busy to read it before the grace ran out. */
static void drain(lsr_exec_proc *p, uv_pipe_t *pipe, uv_read_cb cb) {
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)pipe, &fd) != 0) return;
  for (int i = 0; i < 1024 && !p->too_big; i++) { /* 64 MiB at most: past max_output anyway */
    uv_buf_t b;
    on_alloc((uv_handle_t *)pipe, 65536, &b);
    ssize_t n = read(fd, b.base, b.len);
    if (n <= 0) break; /* EOF, nothing more now, or an error: the pipe is done with */
    cb((uv_stream_t *)pipe, n, &b);
  }
}

/* The app has exited but its pipes are still open: end with what was read. */
static void stop_reading(lsr_exec_proc *p) {
  if (!p->out_eof) {
    uv_read_stop((uv_stream_t *)&p->out);
    drain(p, &p->out, on_out);
  }
  if (!p->err_eof) {
    uv_read_stop((uv_stream_t *)&p->err);
    drain(p, &p->err, on_err);
  }
  p->out_eof = p->err_eof = 1;
  maybe_finish(p);
}

/* stderr's last bytes, on one line, for a failure message */
static void tail_text(lsr_exec_proc *p, char *out, size_t n) {
  size_t j = 0;
  size_t start = 0;
  while (start < p->tail_len && (p->tail[start] == '\n' || p->tail[start] == ' ')) start++;
  for (size_t i = start; i < p->tail_len && j + 1 < n; i++) {
    char c = p->tail[i];
    out[j++] = (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  }
  while (j && out[j - 1] == ' ') j--;
  out[j] = 0;
}

static void maybe_finish(lsr_exec_proc *p) {
  if (p->reported || !p->exited || !p->out_eof || !p->err_eof) return;
  p->reported = 1;
  char why[256] = "", tail[LSR_STDERR_TAIL + 1], msg[LSR_STDERR_TAIL + 400];
  if (p->killed)
    snprintf(why, sizeof why, "cancelled");
  else if (p->timed_out)
    snprintf(why, sizeof why, "timed out after %gs", p->timeout);
  else if (p->too_big)
    snprintf(why, sizeof why, "output exceeds the limit of %zu bytes", p->max);
  else if (p->term_signal)
    snprintf(why, sizeof why, "crashed: killed by signal %d (%s)", p->term_signal,
             strsignal(p->term_signal));
  else if (p->exit_status != 0)
    snprintf(why, sizeof why, "exited with status %lld", (long long)p->exit_status);
  if (why[0]) {
    tail_text(p, tail, sizeof tail);
    snprintf(msg, sizeof msg, "%s%s%s", why, tail[0] ? "; stderr: " : "", tail);
    p->done(p->ud, 0, NULL, 0, msg);
  } else {
    p->done(p->ud, 1, p->buf ? p->buf : "", p->len, NULL);
  }
  close_handle((uv_handle_t *)&p->timer);
  close_handle((uv_handle_t *)&p->grace);
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  close_handle((uv_handle_t *)&p->in);
  close_handle((uv_handle_t *)&p->proc);
}

static void on_grace(uv_timer_t *t) { stop_reading(t->data); }

static void on_child_exit(uv_process_t *h, int64_t status, int sig) {
  lsr_exec_proc *p = h->data;
  p->exited = 1;
  p->exit_status = status;
  p->term_signal = sig;
  live_remove(p);
  /* the child may leave grandchildren holding the pipes: they die with it,
   * and the orphans that left its group with the reaper */
  kill(-h->pid, SIGKILL);
  if (reaper.on) sweep(0);
  /* the deadline still holds; the pipes get a short grace */
  if (!p->out_eof || !p->err_eof) uv_timer_start(&p->grace, on_grace, (uint64_t)(LSR_EXEC_GRACE * 1000), 0);
  maybe_finish(p);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b) {
  lsr_exec_proc *p = h->data;
  if (h == (uv_handle_t *)&p->err) {
    static char scratch[4096]; /* one loop thread: safe to share */
    *b = uv_buf_init(scratch, sizeof scratch);
    return;
  }
  if (p->cap - p->len < 65536) {
    p->cap = p->cap ? p->cap * 2 : 65536 * 2;
    p->buf = lsr_xrealloc(p->buf, p->cap + 1);
  }
  *b = uv_buf_init(p->buf + p->len, (unsigned)(p->cap - p->len));
}

/* Streaming: hand over each complete line; keep the partial one.  A line
 * longer than max kills the child. */
static void deliver_lines(lsr_exec_proc *p) {
  size_t start = 0;
  char *nl;
  while (!p->too_big && !p->killed && (nl = memchr(p->buf + start, '\n', p->len - start))) {
    *nl = 0;
    p->on_line(p->ud, p->buf + start, (size_t)(nl - (p->buf + start)));
    start = (size_t)(nl - p->buf) + 1;
  }
  if (p->too_big || p->killed) start = p->len; /* the rest is of no use */
  memmove(p->buf, p->buf + start, p->len - start);
  p->len -= start;
  p->buf[p->len] = 0;
}

static void on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  lsr_exec_proc *p = s->data;
  if (n > 0) {
    p->len += (size_t)n;
    p->buf[p->len] = 0;
    if (p->on_line) deliver_lines(p);
    if (p->len > p->max && !p->too_big) {
      p->too_big = 1;
      kill_group(p);
    }
    return;
  }
  if (n < 0) {
    uv_read_stop(s);
    p->out_eof = 1;
    maybe_finish(p);
  }
}

static void on_err(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  lsr_exec_proc *p = s->data;
  if (n > 0) {
    /* keep the last LSR_STDERR_TAIL bytes */
    if ((size_t)n >= LSR_STDERR_TAIL) {
      memcpy(p->tail, b->base + n - LSR_STDERR_TAIL, LSR_STDERR_TAIL);
      p->tail_len = LSR_STDERR_TAIL;
    } else {
      size_t keep = p->tail_len + (size_t)n > LSR_STDERR_TAIL ? LSR_STDERR_TAIL - (size_t)n : p->tail_len;
      memmove(p->tail, p->tail + p->tail_len - keep, keep);
      memcpy(p->tail + keep, b->base, (size_t)n);
      p->tail_len = keep + (size_t)n;
    }
    return;
  }
  if (n < 0) {
    uv_read_stop(s);
    p->err_eof = 1;
    maybe_finish(p);
  }
}

static void on_written(uv_write_t *w, int status) {
  lsr_exec_proc *p = w->data;
  if (!p->on_line) close_handle((uv_handle_t *)&p->in); /* EOF for the child */
}

/* A later write to a streaming child: the data is copied, the write
 * request freed when done. */
static void on_streamed(uv_write_t *w, int status) {
  free(w->data);
  free(w);
}

int lsr_exec_write(lsr_exec_proc *p, const char *data, size_t len) {
  if (p->reported || p->exited || uv_is_closing((uv_handle_t *)&p->in)) return -1;
  uv_write_t *w = lsr_xalloc(sizeof *w);
  char *copy = lsr_xalloc(len + 1);
  memcpy(copy, data, len);
  w->data = copy;
  uv_buf_t b = uv_buf_init(copy, (unsigned)len);
  if (uv_write(w, (uv_stream_t *)&p->in, &b, 1, on_streamed) != 0) {
    free(copy);
    free(w);
    return -1;
  }
  return 0;
}

void lsr_exec_close_input(lsr_exec_proc *p) {
  close_handle((uv_handle_t *)&p->in);
}

void lsr_exec_hold(lsr_exec_proc *p, int busy) {
  uv_handle_t *hs[] = {(uv_handle_t *)&p->proc, (uv_handle_t *)&p->in, (uv_handle_t *)&p->out,
                       (uv_handle_t *)&p->err};
  for (size_t i = 0; i < sizeof hs / sizeof *hs; i++) {
    if (uv_is_closing(hs[i])) continue;
    if (busy) uv_ref(hs[i]);
    else uv_unref(hs[i]);
  }
}

static void on_timeout(uv_timer_t *t) {
  lsr_exec_proc *p = t->data;
  p->timed_out = 1;
  if (p->exited) stop_reading(p); /* exited, but its pipes are held open */
  else kill_group(p);
}

/* Failure to start: reported from the loop like any other end. */
static void on_start_failed(uv_timer_t *t) {
  lsr_exec_proc *p = t->data;
  p->done(p->ud, 0, NULL, 0, p->buf);
  close_handle((uv_handle_t *)&p->timer);
  close_handle((uv_handle_t *)&p->grace);
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  close_handle((uv_handle_t *)&p->in);
  close_handle((uv_handle_t *)&p->proc); /* libuv wants it closed even after a failed spawn */
}

lsr_exec_proc *lsr_exec_start(uv_loop_t *loop, const lsr_exec_req *req) {
  lsr_exec_proc *p = lsr_xalloc(sizeof *p);
  p->done = req->done;
  p->ud = req->ud;
  p->on_line = req->on_line;
  p->max = req->max_output;
  p->timeout = req->timeout;
  p->input = lsr_strndup(req->input, req->input_len);
  uv_pipe_init(loop, &p->in, 0);
  uv_pipe_init(loop, &p->out, 0);
  uv_pipe_init(loop, &p->err, 0);
  uv_timer_init(loop, &p->timer);
  uv_timer_init(loop, &p->grace);
  p->open_handles = 5;
  p->in.data = p->out.data = p->err.data = p->timer.data = p->grace.data = p->proc.data = p;
  reaper_watch(loop);

  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&p->in;
  stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[1].data.stream = (uv_stream_t *)&p->out;
  stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
  stdio[2].data.stream = (uv_stream_t *)&p->err;

  uv_process_options_t o;
  memset(&o, 0, sizeof o);
  o.file = req->argv[0];
  o.args = req->argv;
  o.env = req->env;
  o.cwd = req->cwd;
  o.flags = UV_PROCESS_DETACHED; /* setsid(): its own process group */
  o.stdio_count = 3;
  o.stdio = stdio;
  o.exit_cb = on_child_exit;
  int rc = uv_spawn(loop, &p->proc, &o);
  p->open_handles++;
  if (rc != 0) {
    size_t n = 512;
    p->buf = lsr_xalloc(n);
    snprintf(p->buf, n, "cannot start '%s': %s", req->argv[0], uv_strerror(rc));
    p->reported = 1;
    uv_timer_start(&p->timer, on_start_failed, 0, 0);
    return p;
  }
  live_add(p);
  uv_read_start((uv_stream_t *)&p->out, on_alloc, on_out);
  uv_read_start((uv_stream_t *)&p->err, on_alloc, on_err);
  uv_buf_t b = uv_buf_init(p->input, (unsigned)req->input_len);
  p->wreq.data = p;
  if (uv_write(&p->wreq, (uv_stream_t *)&p->in, &b, 1, on_written) != 0 && !p->on_line)
    close_handle((uv_handle_t *)&p->in);
  uint64_t ms = req->timeout > 0 ? (uint64_t)(req->timeout * 1000) : 0;
  if (ms) uv_timer_start(&p->timer, on_timeout, ms, 0);
  return p;
}

void lsr_exec_kill(lsr_exec_proc *p) {
  if (p->reported) return;
  p->killed = 1;
  if (p->exited) stop_reading(p);
  else kill_group(p);
}
