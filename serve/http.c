/* http.c: the libmicrohttpd side of `luasoar serve`: its daemon driven by
 * the engine's loop, the token on the headers, the header deadline, the
 * per-address caps and the log of its messages.  The routes are rest.c's. */
#include "internal.h"

static const char *mhd_arg(void *conn, const char *name) {
  return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

static int token_ok(server *s, struct MHD_Connection *c) {
  const char *t = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "ph-auth-token");
  if (!t) return 0;
  size_t a = strlen(t), b = strlen(s->token);
  unsigned diff = (unsigned)(a ^ b);
  for (size_t i = 0; i < a && i < b; i++) diff |= (unsigned char)t[i] ^ (unsigned char)s->token[i];
  return diff == 0; /* the same time whatever the first difference */
}

/* An open connection, for the header deadline: since when it waits for a
 * request's headers (its accept, or the end of its last request). */
struct conn {
  struct conn *prev, *next;
  double since;
  int fd;
  int in_request; /* the headers are in: the deadline no longer applies */
  int cut;        /* shut down by the sweep; libmicrohttpd closes it */
};

static double mono_now(void) { return (double)uv_hrtime() / 1e9; }

static struct conn *conn_of(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i ? i->socket_context : NULL;
}


/* Connections whose headers are not in by their deadline are shut down
 * (libmicrohttpd then reads the end and closes them).  A trickle of header
 * lines does not extend it: the deadline counts from the accept, not from
 * the last byte (libmicrohttpd's own timeout is an idle one). */
static void sweep_headers(uv_timer_t *t) {
  server *s = t->data;
  double now = mono_now();
  int cut = 0, late = 0;
  for (struct conn *k = s->conns; k && !late; k = k->next)
    late = !k->in_request && !k->cut && now - k->since > s->header_deadline;
  /* headers that came while the loop was busy (a long step) are read
   * first: only those still incomplete are late */
  if (late) srv_mhd_run(s);
  for (struct conn *k = s->conns; k; k = k->next)
    if (!k->in_request && !k->cut && now - k->since > s->header_deadline && k->fd >= 0) {
      shutdown(k->fd, SHUT_RDWR);
      k->cut = 1;
      cut++;
    }
  if (cut) {
    srv_say("http: closed %d connection%s whose request headers took more than %g s", cut, cut == 1 ? "" : "s",
        s->header_deadline);
    srv_mhd_run(s);
  }
  if (!s->conns) uv_timer_stop(t);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **ctx, enum MHD_ConnectionNotificationCode what) {
  server *s = cls;
  struct conn *k = *ctx;
  if (what == MHD_CONNECTION_NOTIFY_STARTED) {
    const union MHD_ConnectionInfo *i = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    k = lsr_xalloc(sizeof *k);
    k->fd = i ? (int)i->connect_fd : -1;
    k->since = mono_now();
    k->next = s->conns;
    if (s->conns) s->conns->prev = k;
    s->conns = k;
    *ctx = k;
    if (!uv_is_active((uv_handle_t *)&s->sweep)) uv_timer_start(&s->sweep, sweep_headers, 250, 250);
  } else if (k) { /* closed: the fd is closed right after, never shut down again */
    if (k->prev) k->prev->next = k->next;
    else s->conns = k->next;
    if (k->next) k->next->prev = k->prev;
    free(k);
    *ctx = NULL;
  }
}

/* The answer, queued; an answer given on the headers closes the connection
 * (the body, if any, is never read). */
static enum MHD_Result send_answer(struct MHD_Connection *c, http *h, int close) {
  const char *body = h->body ? h->body : "";
  struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, "Content-Type", h->type ? h->type : "application/json");
  MHD_add_response_header(r, "Cache-Control", h->cache ? h->cache : "no-store");
  /* the web view's own files only, no framing, no sniffing */
  MHD_add_response_header(r, "Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self';"
                          " img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none';"
                          " base-uri 'none'");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  if (h->location) MHD_add_response_header(r, "Location", h->location);
  if (h->cookie) MHD_add_response_header(r, "Set-Cookie", h->cookie);
  if (h->allow) MHD_add_response_header(r, "Allow", h->allow);
  if (close) MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
  enum MHD_Result rc = MHD_queue_response(c, h->status, r);
  MHD_destroy_response(r);
  free(h->body);
  return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con) {
  server *s = cls;
  request *rq = *con;
  if (!rq) { /* the headers are in; no byte of the body was read */
    struct conn *k = conn_of(c);
    if (k) k->in_request = 1;
    http h = {.conn = c, .arg = mhd_arg};
    const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t n = 0;
    if (srv_web_path(url)) { /* the web view: its own sign-in (a session cookie) */
      if (s->stopping) srv_fail(&h, 503, "shutting down");
      else if (len && !srv_parse_id(len, strlen(len), &n)) srv_fail(&h, 400, "a malformed Content-Length");
      else if (!srv_web_refuse(&h, url, method, (uint64_t)n)) {
        *con = rq = lsr_xalloc(sizeof *rq);
        rq->max = FORM_MAX;
        return MHD_YES;
      }
      return send_answer(c, &h, 1);
    }
    if (!token_ok(s, c)) srv_fail(&h, 401, "a valid ph-auth-token header is required");
    else if (s->stopping) srv_fail(&h, 503, "shutting down");
    else if (len && (!srv_parse_id(len, strlen(len), &n) || n > (int64_t)MAX_BODY))
      srv_fail(&h, 413, "the request body is larger than %u bytes", MAX_BODY);
    else if (!srv_refuse(&h, url, method)) { /* 400, 404, 405 on the request line alone */
      *con = rq = lsr_xalloc(sizeof *rq);
      rq->max = MAX_BODY;
      return MHD_YES; /* now the body, if any */
    }
    return send_answer(c, &h, 1);
  }
  if (*upload_size) {
    if (rq->len + *upload_size > rq->max) rq->too_big = 1;
    /* a web form, maybe from nobody yet, that grows past its cap without
     * having said its length: the connection is closed, nothing more read
     * (libmicrohttpd answers nothing in the middle of an upload) */
    if (rq->too_big && rq->max == FORM_MAX) return MHD_NO;
    else {
      if (rq->len + *upload_size + 1 > rq->cap) rq->body = lsr_xrealloc(rq->body, rq->cap = (rq->len + *upload_size) * 2 + 1);
      memcpy(rq->body + rq->len, upload, *upload_size);
      rq->len += *upload_size;
      rq->body[rq->len] = 0;
    }
    *upload_size = 0;
    return MHD_YES;
  }
  http h = {.conn = c, .arg = mhd_arg};
  if (srv_web_path(url)) srv_web_route(s, &h, url, method, rq);
  else srv_route(s, &h, url, method, rq);
  return send_answer(c, &h, 0);
}

static void completed(void *cls, struct MHD_Connection *c, void **con, enum MHD_RequestTerminationCode why) {
  request *rq = *con;
  struct conn *k = conn_of(c);
  if (k) { /* the next request's headers have their own deadline */
    k->in_request = 0;
    k->since = mono_now();
  }
  if (rq) free(rq->body);
  free(rq);
  *con = NULL;
}

/* libmicrohttpd's messages, through srv_say() and at most 20 per 10 s (a flood
 * of bad connections must not flood the log). */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
  server *s = cls;
  double now = mono_now();
  if (now - s->mhd_log_since >= 10) {
    if (s->mhd_dropped) srv_say("http: %u more messages of libmicrohttpd not logged", s->mhd_dropped);
    s->mhd_log_since = now;
    s->mhd_logged = s->mhd_dropped = 0;
  }
  if (s->mhd_logged++ >= 20) {
    s->mhd_dropped++;
    return;
  }
  char msg[512];
  vsnprintf(msg, sizeof msg, fmt, ap);
  size_t n = strlen(msg);
  while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
  srv_say("http: %s", msg);
}

static int hex_digit(char ch) {
  return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* %HH in paths and query arguments, decoded; but %00 stays as it is: a NUL
 * would cut the text short ("/rest/container/1%00x" read as container 1). */
static size_t unescape(void *cls, struct MHD_Connection *c, char *text) {
  char *w = text;
  for (const char *r = text; *r;) {
    int hi, lo;
    if (r[0] == '%' && (hi = hex_digit(r[1])) >= 0 && (lo = hex_digit(r[2])) >= 0 && (hi | lo)) {
      *w++ = (char)(hi * 16 + lo);
      r += 3;
    } else
      *w++ = *r++;
  }
  *w = 0;
  return (size_t)(w - text);
}

/* MHD runs on our loop: its epoll fd is polled, its timeouts are timers. */
static void mhd_timeout(uv_timer_t *t) { srv_mhd_run(t->data); }

static void mhd_ready(uv_poll_t *p, int status, int events) { srv_mhd_run(p->data); }

void srv_mhd_run(server *s) {
  MHD_run(s->mhd);
  MHD_UNSIGNED_LONG_LONG ms;
  if (MHD_get_timeout(s->mhd, &ms) == MHD_YES) uv_timer_start(&s->mhd_timer, mhd_timeout, ms, 0);
  else uv_timer_stop(&s->mhd_timer);
  /* what the requests wrote is committed before the next turn */
}

/* Listen on addr: libmicrohttpd's daemon, its epoll descriptor polled by the
 * loop, its timer.  -1 (errno set) if it cannot. */
int srv_http_start(server *s, struct sockaddr *addr, unsigned conn_limit, unsigned per_ip) {
  s->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle, s,
                           MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, /* first: it logs what the others say */
                           MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_NOTIFY_COMPLETED, completed, s,
                           MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                           MHD_OPTION_UNESCAPE_CALLBACK, unescape, s,
                           MHD_OPTION_CONNECTION_LIMIT, conn_limit,
                           MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
                           MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
  if (!s->mhd) return -1;
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);
  uv_poll_init(s->eng->loop, &s->mhd_poll, info->epoll_fd);
  s->mhd_poll.data = s;
  uv_poll_start(&s->mhd_poll, UV_READABLE, mhd_ready);
  uv_timer_init(s->eng->loop, &s->mhd_timer);
  s->mhd_timer.data = s;
  return 0;
}
