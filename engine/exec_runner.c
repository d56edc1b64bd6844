/* exec_runner.c: runs one exec app run as a child process under libuv.
 *
 * The child gets the request on stdin and must print its results on stdout.
 * It runs in its own session (so its own process group): a timeout or an
 * oversized output kills the whole tree with one signal.  It gets only the
 * environment variables its manifest names.  stderr is kept as a short tail
 * for messages.  No Lua here: the output goes back as text. */
#include "engine.h"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LSR_STDERR_TAIL 1024

struct lsr_exec_proc {
  uv_process_t proc;
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  uv_write_t wreq;
  char *input;
  char *buf;             /* stdout */
  size_t len, cap, max;
  char tail[LSR_STDERR_TAIL];
  size_t tail_len;
  double timeout;
  int exited, out_eof, err_eof, timed_out, too_big, killed, reported;
  int64_t exit_status;
  int term_signal;
  int open_handles;
  lsr_exec_done done;
  void *ud;
};

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
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  close_handle((uv_handle_t *)&p->in);
  close_handle((uv_handle_t *)&p->proc);
}

static void on_child_exit(uv_process_t *h, int64_t status, int sig) {
  lsr_exec_proc *p = h->data;
  p->exited = 1;
  p->exit_status = status;
  p->term_signal = sig;
  /* the child may leave grandchildren holding the pipes: they die with it */
  kill(-h->pid, SIGKILL);
  uv_timer_stop(&p->timer);
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

static void on_out(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  lsr_exec_proc *p = s->data;
  if (n > 0) {
    p->len += (size_t)n;
    p->buf[p->len] = 0;
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
  close_handle((uv_handle_t *)&p->in); /* EOF for the child */
}

static void on_timeout(uv_timer_t *t) {
  lsr_exec_proc *p = t->data;
  p->timed_out = 1;
  kill_group(p);
}

/* Failure to start: reported from the loop like any other end. */
static void on_start_failed(uv_timer_t *t) {
  lsr_exec_proc *p = t->data;
  p->done(p->ud, 0, NULL, 0, p->buf);
  close_handle((uv_handle_t *)&p->timer);
  close_handle((uv_handle_t *)&p->out);
  close_handle((uv_handle_t *)&p->err);
  close_handle((uv_handle_t *)&p->in);
  close_handle((uv_handle_t *)&p->proc); /* libuv wants it closed even after a failed spawn */
}

lsr_exec_proc *lsr_exec_start(uv_loop_t *loop, const lsr_exec_req *req) {
  lsr_exec_proc *p = lsr_xalloc(sizeof *p);
  p->done = req->done;
  p->ud = req->ud;
  p->max = req->max_output;
  p->timeout = req->timeout;
  p->input = lsr_strndup(req->input, req->input_len);
  uv_pipe_init(loop, &p->in, 0);
  uv_pipe_init(loop, &p->out, 0);
  uv_pipe_init(loop, &p->err, 0);
  uv_timer_init(loop, &p->timer);
  p->open_handles = 4;
  p->in.data = p->out.data = p->err.data = p->timer.data = p->proc.data = p;

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
  uv_read_start((uv_stream_t *)&p->out, on_alloc, on_out);
  uv_read_start((uv_stream_t *)&p->err, on_alloc, on_err);
  uv_buf_t b = uv_buf_init(p->input, (unsigned)req->input_len);
  p->wreq.data = p;
  if (uv_write(&p->wreq, (uv_stream_t *)&p->in, &b, 1, on_written) != 0)
    close_handle((uv_handle_t *)&p->in);
  uint64_t ms = req->timeout > 0 ? (uint64_t)(req->timeout * 1000) : 0;
  if (ms) uv_timer_start(&p->timer, on_timeout, ms, 0);
  return p;
}

void lsr_exec_kill(lsr_exec_proc *p) {
  if (p->reported) return;
  p->killed = 1;
  kill_group(p);
}
