/* serve_internal.h: what the files of `luasoar serve` share: the server,
 * its playbook entries, and the calls between them: serve.c (the run
 * journal's store observers, starting runs, start-up), serve_playbooks.c
 * (the registry and reload), serve_recover.c (recovery after a restart) and
 * serve_rest.c (REST routes and libmicrohttpd). */
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>


#define MAX_BODY (16u << 20)
#define INTERRUPTED_BY_RESTART "interrupted by engine restart"
#define DEBOUNCE_MS 100
#define HEADER_DEADLINE 10    /* seconds a request's headers may take (--header-deadline) */
#define CONN_PER_ADDRESS 32   /* open connections per client address (--per-address) */
#define CONN_LIMIT 1000       /* open connections in all, fewer if the fd limit is low */

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
} server;


/* serve.c, for the HTTP side */
void srv_say(const char *fmt, ...);
void srv_commit_now(server *s);
pb_entry *srv_find_pb(server *s, const char *id);
int64_t srv_start_run(server *s, pb_entry *p, int64_t cid, const char *scope, char *err, size_t errlen);
int srv_run_active(server *s, int64_t cid, int *matched);
char *srv_container_json(server *s, int64_t id);
void srv_free_gen_if_done(server *s, lsr_gen *g);
/* serve_playbooks.c: the registry, loaded and reloaded */
void srv_scan(server *s);
void srv_watch_dir(server *s, const char *dir);
/* serve_recover.c, for start-up */
int64_t srv_max_id(const char *kind, void *ud);
void srv_restore_row(void *ud, int ncols, const char **cols);
int srv_recover(server *s);
/* serve_rest.c, for start-up */
int srv_parse_id(const char *s, size_t n, int64_t *out);
int srv_http_start(server *s, struct sockaddr *addr, unsigned conn_limit, unsigned per_ip);
void srv_mhd_run(server *s);

#endif
