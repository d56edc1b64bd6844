/* main.c: `luasoar serve`, the long-running engine: its start-up (the
 * store, the token, the engine over the scripts, recovery, HTTP, watchers,
 * signals) and its stop.  Containers arrive over REST (libmicrohttpd,
 * driven by the engine's libuv loop: one thread), are stored before they
 * are acknowledged, and start every active playbook whose labels match
 * (runs.c); the scripts folder is watched (playbooks.c); every step of a
 * run goes to the store as it happens (journal.c).
 * No Lua here: the engine's C interface does the Lua side. */
#include "internal.h"

/* ---- logging: one line per event ---- */

void srv_say(const char *fmt, ...) {
  char line[2048];
  time_t now = time(NULL);
  size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ ", gmtime(&now));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
  va_end(ap);
  n += m < 0 ? 0 : (size_t)m < sizeof line - n - 1 ? (size_t)m : sizeof line - n - 2;
  line[n++] = '\n';
  fwrite(line, 1, n, stderr); /* one write per line */
}

/* ---- start and stop ---- */

static char *read_or_make_token(const char *path, char *err, size_t errlen) {
  char *text;
  size_t len;
  if (access(path, F_OK) == 0) {
    if (lsr_read_file(path, &text, &len, 4096, err, errlen) < 0) return NULL;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ')) text[--len] = 0;
    if (len < 16) {
      snprintf(err, errlen, "%s: the token is too short (16 characters at least)", path);
      free(text);
      return NULL;
    }
    return text;
  }
  unsigned char raw[24];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, raw, sizeof raw) != (ssize_t)sizeof raw) {
    if (fd >= 0) close(fd);
    snprintf(err, errlen, "cannot read /dev/urandom for a token");
    return NULL;
  }
  close(fd);
  char *tok = lsr_xalloc(sizeof raw * 2 + 1);
  for (size_t i = 0; i < sizeof raw; i++) sprintf(tok + 2 * i, "%02x", raw[i]);
  fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, tok, strlen(tok)) != (ssize_t)strlen(tok) || write(fd, "\n", 1) != 1) {
    snprintf(err, errlen, "%s: cannot write the token: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    free(tok);
    return NULL;
  }
  close(fd);
  srv_say("token written to %s (mode 0600)", path);
  return tok;
}

static void on_signal(uv_signal_t *h, int sig) {
  server *s = h->data;
  if (s->stopping) return;
  s->stopping = 1;
  srv_say("signal %d: stopping (%d runs in flight stay in the store)", sig, s->eng->live_runs);
  uv_stop(s->eng->loop);
}

static const char usage_serve[] =
  "usage: luasoar serve --scripts DIR [--db FILE|URI] [--listen HOST:PORT] [--token-file FILE]\n"
  "\n"
  "Runs the engine as a service: containers arrive over REST, active playbooks\n"
  "run on them, everything is kept in the store (SQLite or PostgreSQL), and the\n"
  "scripts folder is watched (a changed playbook is a new generation; runs in\n"
  "flight keep theirs).\n"
  "\n"
  "  --scripts DIR      playbooks/, custom_functions/, apps/, assets.json, custom_lists/\n"
  "  --db FILE|URI      the store: a SQLite file (default ./luasoar.db), or a PostgreSQL\n"
  "                     database as a URI, postgresql://USER@HOST:PORT/DBNAME (libpq's;\n"
  "                     the PG* variables fill in what it leaves out)\n"
  "  --node-dir DIR     with PostgreSQL, where this server keeps its own files: the token\n"
  "                     (DIR/luasoar.token), SOAR connectors' files, the watchdog's marker\n"
  "                     (default: the current folder); with SQLite they are beside the store\n"
  "  --listen HOST:PORT (default 127.0.0.1:8420)\n"
  "  --max-db-pages N   cap the store at N pages of 4 KiB (to test a full disk)\n"
  "  --limit NAME=N     an engine limit, as for luasoar run (repeatable)\n"
  "  --token-file FILE  the API token (default: FILE.token beside the store, created\n"
  "                     on first start with a random token, mode 0600); every request\n"
  "                     needs the header ph-auth-token: TOKEN\n"
  "  --header-deadline S  seconds a request's headers may take from the connection's\n"
  "                     accept (or its last answer); later, it is closed (default 10)\n"
  "  --per-address N    open connections per client address (default 32)\n"
  "  --node NAME        with PostgreSQL, this server's name in the cluster of servers that\n"
  "                     share the database (default HOSTNAME:PORT); unique\n"
  "  --lease SECONDS    with PostgreSQL, how long this node's runs stay its own without a\n"
  "                     heartbeat before another node takes them over (default 10)\n";

/* The store, the token, the engine over the scripts, the playbooks, and
 * the runs recovered; everything but HTTP, watchers and signals. */
/* The path this server's own files begin with: beside a SQLite store,
 * DIR/luasoar in the node's folder with PostgreSQL. */
static void local_base(const char *db, const char *node_dir, char *out, size_t n) {
  if (lsr_store_is_postgres(db)) snprintf(out, n, "%s/luasoar", node_dir ? node_dir : ".");
  else snprintf(out, n, "%s", db);
}

/* A node of a cluster: its name, where it listens, its lease. */
typedef struct {
  const char *name, *listen;
  double lease;
} node_opts;

static int server_open(server *sp, const char *scripts, const char *db, const char *local, const char *max_pages,
                       const char *token_file, int with_token, const char **limits, int nlimits,
                       const node_opts *node, char *err, size_t errlen) {
  server s;
  char path[4096];
  memset(&s, 0, sizeof s);
  s.store = lsr_store_open(db, err, errlen);
  if (!s.store) return -1;
  if (max_pages) lsr_store_cap_pages(s.store, atoll(max_pages)); /* a store that fills up (tests of a full disk) */
  s.eng = lsr_engine_new(NULL, err, errlen);
  if (!s.eng) {
    lsr_store_close(s.store);
    return -1;
  }
  lsr_engine *eng = s.eng;
  snprintf(path, sizeof path, "%s.vault", local); /* SOAR connectors' files */
  eng->vault_dir = lsr_strdup(path);
  int ok = 1;
  for (int i = 0; ok && i < nlimits; i++) /* before recovery: recovered runs get them too */
    ok = lsr_limit_set(eng, limits[i], err, errlen) == 0;
  ok = ok && !(node && srv_cluster_join(&s, node->name, node->listen, node->lease, err, errlen) < 0);
  snprintf(path, sizeof path, "%s.token", local);
  if (ok) s.token = with_token ? read_or_make_token(token_file ? token_file : path, err, errlen) : lsr_strdup("");
  if (!ok || !s.token) { /* refused before anything ran */
    lsr_store_close(s.store);
    lsr_engine_free(eng);
    free(s.node);
    return -1;
  }
  s.scripts = lsr_strdup(scripts);
  eng->scripts_dir = lsr_strdup(scripts);
  char apps[4096], assets[4096], lists[4096];
  snprintf(apps, sizeof apps, "%s/apps", scripts);
  snprintf(assets, sizeof assets, "%s/assets.json", scripts);
  snprintf(lists, sizeof lists, "%s/custom_lists", scripts);
  if (lsr_config_load(eng->cfg, apps, assets, 0, err, errlen) < 0 || lsr_lists_load(eng, lists, err, errlen) < 0)
    return -1;
  /* the store's lists and objects are newer than the files'; each with the
   * playbook that answers for it (quotas) */
  lsr_store_each(s.store, srv_restore_row, &s, LSR_Q_LISTS_RESTORE, "");
  lsr_store_each(s.store, srv_restore_row, &s, LSR_Q_OBJECTS_RESTORE, "");
  *sp = s;
  srv_journal_attach(sp); /* the observers point at the caller's struct */
  srv_scan(sp);
  srv_recover(sp, 1);
  return 0;
}

/* For the fuzz harness of request bodies: a server with no HTTP; requests
 * go straight to the router, and the engine runs what they start. */
void *lsr_serve_test_open(const char *scripts, const char *db, char *err, size_t errlen) {
  server *s = lsr_xalloc(sizeof *s);
  char local[4096];
  local_base(db, NULL, local, sizeof local);
  if (server_open(s, scripts, db, local, NULL, NULL, 0, NULL, 0, NULL, err, errlen) < 0) {
    free(s);
    return NULL;
  }
  return s;
}


int lsr_serve_main(int argc, char **argv) {
  const char *scripts = NULL, *db = "luasoar.db", *listen = "127.0.0.1:8420", *token_file = NULL, *max_pages = NULL,
             *node_dir = NULL;
  const char *deadline = NULL, *per_address = NULL, *node_name = NULL, *lease_s = NULL;
  const char *limits[16];
  int nlimits = 0;
  for (int i = 0; i < argc; i++) {
    const char **dst = NULL;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) { fputs(usage_serve, stdout); return 0; }
    if (strcmp(argv[i], "--scripts") == 0) dst = &scripts;
    else if (strcmp(argv[i], "--db") == 0) dst = &db;
    else if (strcmp(argv[i], "--node-dir") == 0) dst = &node_dir;
    else if (strcmp(argv[i], "--listen") == 0) dst = &listen;
    else if (strcmp(argv[i], "--token-file") == 0) dst = &token_file;
    else if (strcmp(argv[i], "--max-db-pages") == 0) dst = &max_pages;
    else if (strcmp(argv[i], "--header-deadline") == 0) dst = &deadline;
    else if (strcmp(argv[i], "--per-address") == 0) dst = &per_address;
    else if (strcmp(argv[i], "--node") == 0) dst = &node_name;
    else if (strcmp(argv[i], "--lease") == 0) dst = &lease_s;
    else if (strcmp(argv[i], "--limit") == 0 && nlimits < 16) dst = &limits[nlimits++];
    else {
      fprintf(stderr, "luasoar serve: unknown argument '%s' (see 'luasoar serve --help')\n", argv[i]);
      return 2;
    }
    if (i + 1 >= argc) {
      fprintf(stderr, "luasoar serve: option '%s' needs a value\n", argv[i]);
      return 2;
    }
    *dst = argv[++i];
  }
  if (!scripts) { fprintf(stderr, "luasoar serve: --scripts DIR is required\n"); return 2; }
  struct stat sb;
  if (stat(scripts, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
    fprintf(stderr, "luasoar serve: %s: not a folder\n", scripts);
    return 2;
  }
  char *end = NULL;
  double header_deadline = deadline ? strtod(deadline, &end) : HEADER_DEADLINE;
  int64_t per_ip = CONN_PER_ADDRESS;
  if ((end && (end == deadline || *end)) || !(header_deadline > 0 && header_deadline <= 3600)) {
    fprintf(stderr, "luasoar serve: --header-deadline %s: expected seconds, more than 0 and at most 3600\n", deadline);
    return 2;
  }
  double lease = lease_s ? strtod(lease_s, &end) : NODE_LEASE;
  if ((lease_s && (end == lease_s || *end)) || !(lease >= 1 && lease <= 3600)) {
    fprintf(stderr, "luasoar serve: --lease %s: expected seconds, from 1 to 3600\n", lease_s);
    return 2;
  }
  if ((node_name || lease_s) && !lsr_store_is_postgres(db)) {
    fprintf(stderr, "luasoar serve: %s needs a PostgreSQL store (--db postgresql://...): a SQLite store has one"
            " server\n", node_name ? "--node" : "--lease");
    return 2;
  }
  if (node_name && (!*node_name || strlen(node_name) > 200 || strpbrk(node_name, "\"\\\n\r\t"))) {
    fprintf(stderr, "luasoar serve: --node: expected a name of 1 to 200 characters, without quotes,"
            " backslashes or control characters\n");
    return 2;
  }
  if (per_address && (!srv_parse_id(per_address, strlen(per_address), &per_ip) || per_ip < 1 || per_ip > 100000)) {
    fprintf(stderr, "luasoar serve: --per-address %s: expected a number from 1 to 100000\n", per_address);
    return 2;
  }
  char host[256];
  int port;
  const char *colon = strrchr(listen, ':');
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  if (!colon || colon - listen >= (long)sizeof host || (port = atoi(colon + 1)) <= 0 || port > 65535) {
    fprintf(stderr, "luasoar serve: --listen %s: expected HOST:PORT\n", listen);
    return 2;
  }
  snprintf(host, sizeof host, "%.*s", (int)(colon - listen), listen);
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, &addr.sin_addr) != 1) {
    fprintf(stderr, "luasoar serve: --listen %s: not an IPv4 address\n", listen);
    return 2;
  }

  char err[2048], marker[4200], marker_err[2048] = "", local[4096], shown[512];
  server s;
  if (node_dir && (stat(node_dir, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
    fprintf(stderr, "luasoar serve: --node-dir %s: not a folder\n", node_dir);
    return 2;
  }
  local_base(db, node_dir, local, sizeof local);
  lsr_store_name(db, shown, sizeof shown);
  /* the watchdog's step marker, among the server's own files: recovery reads
   * the last death from it (its error is said after the store's own checks) */
  snprintf(marker, sizeof marker, "%s-step", local);
  lsr_watchdog_open(marker, marker_err, sizeof marker_err);
  /* its name in a cluster: this machine's and the port, unless given */
  char default_node[300], hostname[256] = "localhost";
  gethostname(hostname, sizeof hostname - 1);
  snprintf(default_node, sizeof default_node, "%s:%d", hostname, port);
  node_opts node = {node_name ? node_name : default_node, listen, lease};
  if (server_open(&s, scripts, db, local, max_pages, token_file, 1, limits, nlimits, &node, err, sizeof err) < 0) {
    fprintf(stderr, "luasoar serve: %s\n", err);
    return 2;
  }
  if (marker_err[0]) {
    fprintf(stderr, "luasoar serve: %s\n", marker_err);
    return 2;
  }
  lsr_engine *eng = s.eng;
  s.header_deadline = header_deadline;
  /* connections take file descriptors: as many as the hard limit allows,
   * and room kept for the store, apps' pipes and the watchers */
  struct rlimit nofile;
  unsigned conn_limit = CONN_LIMIT;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < 4096 && nofile.rlim_max > nofile.rlim_cur) {
      nofile.rlim_cur = nofile.rlim_max == RLIM_INFINITY || nofile.rlim_max > 4096 ? 4096 : nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
      getrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (nofile.rlim_cur != RLIM_INFINITY && nofile.rlim_cur < CONN_LIMIT * 2)
      conn_limit = nofile.rlim_cur > 512 ? (unsigned)nofile.rlim_cur / 2 : 128;
  }
  if (srv_http_start(&s, (struct sockaddr *)&addr, conn_limit, (unsigned)per_ip) < 0) {
    fprintf(stderr, "luasoar serve: cannot listen on %s: %s\n", listen, strerror(errno));
    return 2;
  }
  uv_timer_init(eng->loop, &s.sweep);
  s.sweep.data = &s;
  uv_timer_init(eng->loop, &s.debounce);
  s.debounce.data = &s;
  srv_watch_dir(&s, scripts);
  uv_check_init(eng->loop, &s.commit);
  s.commit.data = &s;
  uv_check_start(&s.commit, (uv_check_cb)srv_commit_turn);
  uv_prepare_init(eng->loop, &s.commit_idle);
  s.commit_idle.data = &s;
  uv_prepare_start(&s.commit_idle, (uv_prepare_cb)srv_commit_turn);
  uv_signal_init(eng->loop, &s.sig_int);
  uv_signal_init(eng->loop, &s.sig_term);
  s.sig_int.data = s.sig_term.data = &s;
  uv_signal_start(&s.sig_int, on_signal, SIGINT);
  uv_signal_start(&s.sig_term, on_signal, SIGTERM);
  srv_say("listening on %s:%d, store %s, scripts %s, %d playbooks", host, port, shown, scripts, s.npbs);
  /* recovery is committed: the marker starts clean and the watchdog watches */
  if (lsr_watchdog_start(eng->step_seconds, LSR_WATCHDOG_SERVE, NULL, 0, err, sizeof err) < 0) {
    fprintf(stderr, "luasoar serve: %s\n", err);
    return 2;
  }
  srv_cluster_start(&s);
  srv_mhd_run(&s);
  uv_run(eng->loop, UV_RUN_DEFAULT);

  /* stopping: what was done is committed, the runs in flight are handed
   * back (a cluster), the store is closed */
  MHD_stop_daemon(s.mhd);
  srv_commit_turn((uv_handle_t *)&s.commit);
  srv_cluster_leave(&s);
  lsr_store_close(s.store);
  lsr_exec_reaper_close(eng->loop); /* apps in flight and what they left behind die with us */
  srv_say("stopped");
  fflush(stderr);
  _exit(0); /* runs in flight are in the store; nothing else to tear down */
}
