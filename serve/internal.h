/* internal.h: what the files of `luasoar serve` share: the server, its
 * playbook entries, and the calls between them: main.c (start-up and stop),
 * journal.c (the run journal: the store observers and the commit of each
 * turn), runs.c (starting runs), playbooks.c (the registry and reload),
 * recover.c (recovery after a restart), cluster.c (a node of a cluster on
 * PostgreSQL), rest.c (the REST routes) and http.c (libmicrohttpd:
 * connections, the token, the header deadline). */
#ifndef LSR_SERVE_INTERNAL_H
#define LSR_SERVE_INTERNAL_H
#include "engine.h"
#include "exec_runner.h"
#include "json_check.h"
#include "serve.h"
#include "store.h"
#include "watchdog.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>


#define MAX_BODY (16u << 20)
#define FORM_MAX (64u << 10)  /* a web view form's body: read before its sender is known */
#define INTERRUPTED_BY_RESTART "interrupted by engine restart"
#define DEBOUNCE_MS 100
#define HEADER_DEADLINE 10    /* seconds a request's headers may take (--header-deadline) */
#define CONN_PER_ADDRESS 32   /* open connections per client address (--per-address) */
#define CONN_LIMIT 1000       /* open connections in all, fewer if the fd limit is low */
#define NODE_LEASE 10         /* seconds a node's runs stay its own without a heartbeat (--lease) */

typedef struct {
  char *id, *path;      /* id: the path below playbooks/ without .lua */
  lsr_gen *gen;         /* the newest good generation, or NULL */
  int generation;
  char **labels;
  int active;
  char *error;          /* the last load error, file:line: message */
  struct stat st;       /* of the file when last loaded */
  int present;
} pb_entry;

/* A block of ids the store gave (next up to limit), its size, and the
 * next block taken ahead (spare[1]: its size, 0 for none). */
typedef struct {
  int64_t next, limit, size, spare[2];
} srv_ids;

typedef struct {
  lsr_engine *eng;
  lsr_store *store;
  struct MHD_Daemon *mhd;
  uv_poll_t mhd_poll;
  uv_timer_t mhd_timer;
  char *scripts, *token;
  pb_entry *pbs;
  int npbs;
  int live_gens;        /* generations compiled and not yet freed */
  uv_fs_event_t **watch;
  int nwatch;
  uv_timer_t debounce;
  uv_signal_t sig_int, sig_term;
  uv_check_t commit;
  uv_prepare_t commit_idle;
  uint64_t cfg_sig;     /* apps' and assets' files: names, mtimes, sizes, inodes */
  int cfg_seen;
  int stopping;
  struct conn *conns;   /* open HTTP connections (the header deadline's sweep) */
  uv_timer_t sweep;
  double header_deadline; /* seconds a request's headers may take, from accept or the last answer */
  unsigned mhd_dropped; /* libmicrohttpd's messages not logged (rate limit) */
  double mhd_log_since;
  unsigned mhd_logged;
  srv_ids ids[LSR_ID_KINDS]; /* blocks of ids from the store */
  int64_t bad_ids;      /* ids given when the store could not give a block */
  int cluster;          /* a node of a cluster (PostgreSQL): cluster.c */
  char *node;
  double lease;
  uv_timer_t beat;
  uv_poll_t *wake;      /* the store's socket, for notifications */
  unsigned wake_conn;
  int ticking, woken;   /* the tick's timer runs; a notification asks for it */
} server;

/* main.c */
void srv_say(const char *fmt, ...);
/* journal.c */
void srv_journal_attach(server *s);
/* the run's row, in the transaction of the request that started it */
void srv_record_run(server *s, lsr_run *run, const char *pb, const char *scope, double now);
void srv_commit_now(server *s);
void srv_commit_turn(uv_handle_t *h);
int64_t srv_new_id(lsr_id_kind kind, void *ud);
void srv_end_open_rows(server *s, int64_t run_id, double now);
void srv_free_gen_if_done(server *s, lsr_gen *g);
/* runs.c */
int64_t srv_start_run(server *s, pb_entry *p, int64_t cid, const char *scope, char *err, size_t errlen);
int srv_run_active(server *s, int64_t cid, int *matched);
char *srv_container_json(server *s, int64_t id);
char *srv_load_stored(const char *kind, const char *key, void *ud);
/* playbooks.c: the registry, loaded and reloaded */
pb_entry *srv_find_pb(server *s, const char *id);
void srv_scan(server *s);
void srv_watch_dir(server *s, const char *dir);
/* recover.c, for start-up */
void srv_restore_row(void *ud, int ncols, const char **cols);
/* the runs this server takes over (at_start: its own too), recovered */
int srv_recover(server *s, int at_start);
/* cluster.c */
int srv_cluster_join(server *s, const char *node, const char *listen, double lease, char *err, size_t errlen);
void srv_cluster_start(server *s);
void srv_cluster_playbooks(server *s);
void srv_cluster_leave(server *s);
void srv_cluster_notes(server *s);
int srv_answer_elsewhere(server *s, int64_t prompt, const char *responses);
void srv_fenced_stop(server *s);

/* A request's body, as it arrives. */
typedef struct {
  char *body;
  size_t len, cap;
  size_t max;           /* what is kept of it (a web form's is small: FORM_MAX) */
  int too_big;
} request;

/* A request's answer, filled by the router; the HTTP side sends it.  The
 * router never sees libmicrohttpd, so a fuzz harness can drive it. */
typedef struct {
  void *conn;
  const char *(*arg)(void *conn, const char *name); /* query arguments */
  unsigned status;
  char *body;
  const char *allow;
  const char *type, *location, *cookie, *cache; /* the web view's: NULL for JSON, none, none, no-store */
} http;

/* rest.c */
int srv_parse_id(const char *s, size_t n, int64_t *out);
int srv_fail(http *c, unsigned status, const char *fmt, ...);
/* 400, 404, 405 on the request line alone (1: answered) */
int srv_refuse(http *c, const char *url, const char *method);
/* every request after its token was checked */
int srv_route(server *s, http *c, const char *url, const char *method, request *rq);
/* the answer to prompt id of run, to the run here or kept for the node
 * that holds it, committed: 1, or 0 (no such pending prompt) */
int srv_answer(server *s, int64_t id, int64_t run, const char *responses);
/* web.c: the web view, every path outside /rest/ */
int srv_web_path(const char *url);
int srv_web_refuse(http *c, const char *url, const char *method, uint64_t body_len);
int srv_web_route(server *s, http *c, const char *url, const char *method, request *rq);
/* http.c, for start-up */
int srv_http_start(server *s, struct sockaddr *addr, unsigned conn_limit, unsigned per_ip);
void srv_mhd_run(server *s);

#endif
