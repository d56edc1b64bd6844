/* postgres_sql.c: the SQL of every statement of the store, for PostgreSQL
 * (the same statements as sqlite_sql.c, argument for argument: $N is the
 * Nth argument).  JSON is kept as text, as on SQLite; the REST answers are
 * built with json_build_object and json_agg (json_agg of no rows is NULL:
 * hence the coalesce). */
#include "backend.h"

/* a time column (seconds since the epoch) as ISO 8601 text */
#define ISO(col) "to_char(to_timestamp(" col ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
/* the JSON list of what agg gives, [] for no rows */
#define LIST(agg) "coalesce(" agg ", '[]'::json)"

/* a run as REST shows it */
#define RUN_JSON \
  "json_build_object('id', id, 'playbook', playbook, 'container', container_id, 'generation', generation," \
  " 'status', status, 'message', message, 'misc', json_build_object('scope', scope)," \
  " 'start_time', " ISO("start_time") ", 'update_time', " ISO("update_time") "," \
  " 'parent_playbook_run', parent_run_id, 'outputs', coalesce(outputs, '{}')::json)"

/* what recovery needs of a run that was in flight, as one JSON object */
#define RECOVERY_JSON \
  "SELECT json_build_object('started', started, 'discontinued', discontinued," \
  " 'run_data', coalesce((SELECT json_object_agg(key, value::json) FROM run_data WHERE run_id = r.id), '{}'::json)," \
  " 'actions', " LIST("(SELECT json_agg(json_build_object('id', a.id, 'name', a.name, 'action', a.action," \
  "   'callback', a.callback, 'handle', coalesce(a.handle, 'null')::json, 'parameters', a.parameters::json," \
  "   'assets', coalesce(a.assets, '[]')::json, 'delivered', a.delivered, 'start_after', a.start_after," \
  "   'reviewer', a.reviewer, 'loop_state', a.loop_state, 'released', a.released," \
  "   'results', " LIST("(SELECT json_agg(json_build_object('asset', p.asset, 'result', p.result::json) ORDER BY p.id)" \
  "                    FROM app_runs p WHERE p.action_run_id = a.id)") ") ORDER BY a.id)" \
  "   FROM action_runs a WHERE a.run_id = r.id AND NOT (a.delivered = 1 AND a.status = 'superseded'))") "," \
  " 'prompts', " LIST("(SELECT json_agg(prompt::json ORDER BY id) FROM prompts WHERE run_id = r.id AND status = 'pending')") "," \
  " 'calls', " LIST("(SELECT json_agg((c.call::jsonb || jsonb_build_object('id', c.id, 'child_status', ch.status," \
  "   'child_outputs', CASE WHEN ch.id IS NULL THEN NULL ELSE coalesce(ch.outputs, '{}')::jsonb END," \
  "   'child_message', ch.message)) ORDER BY c.id)" \
  "   FROM calls c LEFT JOIN playbook_runs ch ON ch.id = CASE WHEN jsonb_typeof(c.call::jsonb -> 'child_run_id') = 'number'" \
  "     THEN (c.call::jsonb ->> 'child_run_id')::numeric END" \
  "   WHERE c.run_id = r.id AND c.status = 'running')") ")::text" \
  " FROM playbook_runs r WHERE id = $1"

/* the id in a list of pins or notes (a number, else none) */
#define PINNED_ID "CASE WHEN jsonb_typeof(p -> 'id') = 'number' THEN (p ->> 'id')::numeric END"
/* the items of the list at key of a container's data (none if it is not a list) */
#define PINNED(key) \
  "jsonb_array_elements(CASE WHEN jsonb_typeof(c.data::jsonb -> " key ") = 'array'" \
  " THEN c.data::jsonb -> " key " ELSE '[]'::jsonb END) p"

/* this server's name in the cluster (lsr_store_join), and the database's
 * clock: leases are judged by one clock, not each node's */
#define NODE "current_setting('luasoar.node', true)"
/* a change of what runs share (custom lists, objects, saved data), said to
 * the other nodes at the commit: ["list", NODE, name] or ["object", NODE,
 * container_key, key]; too long for a notification (8,000 bytes), ["all",
 * NODE]: everything is read again */
#define SHARED(what) \
  "pg_notify('luasoar', CASE WHEN octet_length(json_build_array(" what ", " NODE ")::text) < 7000" \
  " THEN json_build_array('shared', " NODE ", " what ")::text ELSE json_build_array('shared', " NODE ", 'all')::text END)"
#define DB_NOW "extract(epoch from clock_timestamp())"

const char *const lsr_pg_sql[LSR_Q_COUNT] = {
  [LSR_Q_RUN_INSERT] =
    "INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope,"
    " start_time, update_time, parent_run_id, node) VALUES($1, $2, $3, $4, 'running', '', $5, $6, $6, $7, " NODE ")"
    " ON CONFLICT(id) DO UPDATE SET parent_run_id = $7, generation = $4",
  [LSR_Q_RUN_GENERATION] =
    "UPDATE playbook_runs SET generation = $1, update_time = $2 WHERE id = $3",
  [LSR_Q_RUN_STATUS] =
    "UPDATE playbook_runs SET status = $1, message = $2, update_time = $3 WHERE id = $4",
  [LSR_Q_RUN_CANCEL_ACTIONS] =
    "UPDATE action_runs SET status = 'cancelled', update_time = $1 WHERE run_id = $2 AND status = 'running'",
  [LSR_Q_RUN_CANCEL_PROMPTS] =
    "UPDATE prompts SET status = 'cancelled' WHERE run_id = $1 AND status = 'pending'",
  [LSR_Q_RUN_CLOSE_CALLS] =
    "UPDATE calls SET status = 'done' WHERE run_id = $1 AND status = 'running'",
  [LSR_Q_LOG_INSERT] =
    "INSERT INTO run_log(run_id, level, message, time) VALUES($1, $2, $3, $4)",
  [LSR_Q_ACTION_INSERT] =
    "INSERT INTO action_runs(id, run_id, name, action, callback, handle, parameters, assets, status,"
    " start_time, update_time, start_after, reviewer, loop_state, released)"
    " VALUES($1, $2, $3, $4, $5, $6, $7, $8, 'running', $9, $10, $11, $12, $13, $14)",
  [LSR_Q_APP_RUN_PUT] =
    "INSERT INTO app_runs(id, action_run_id, run_id, asset, app, status, message, result, end_time)"
    " VALUES($1, $2, $3, $4, $5, $6::json ->> 'status', $7::json ->> 'message', $8, $9)"
    " ON CONFLICT(id) DO UPDATE SET action_run_id = EXCLUDED.action_run_id, run_id = EXCLUDED.run_id,"
    " asset = EXCLUDED.asset, app = EXCLUDED.app, status = EXCLUDED.status, message = EXCLUDED.message,"
    " result = EXCLUDED.result, end_time = EXCLUDED.end_time",
  [LSR_Q_ACTION_DELIVERED] =
    "UPDATE action_runs SET status = $1, delivered = 1, update_time = $2 WHERE id = $3",
  [LSR_Q_RUN_DATA_PUT] =
    "INSERT INTO run_data(run_id, key, value) VALUES($1, $2, $3)"
    " ON CONFLICT(run_id, key) DO UPDATE SET value = EXCLUDED.value",
  [LSR_Q_CONTAINER_UPDATE] =
    "UPDATE containers SET data = $1, status = $2::json ->> 'status', label = $3::json ->> 'label',"
    " update_time = $4 WHERE id = $5",
  [LSR_Q_ARTIFACT_ADDED] =
    "INSERT INTO artifacts(id, container_id, data, create_time)"
    " VALUES($1, ($2::json ->> 'container')::bigint, $3, $4)",
  [LSR_Q_OBJECT_DELETE] =
    "WITH w AS (DELETE FROM objects WHERE container_key = $1 AND key = $2) SELECT " SHARED("'object', $1::text, $2::text"),
  [LSR_Q_OBJECT_PUT] =
    "WITH w AS (INSERT INTO objects VALUES($1, $2, $3) ON CONFLICT(container_key, key) DO UPDATE SET value = EXCLUDED.value)"
    " SELECT " SHARED("'object', $1::text, $2::text"),
  [LSR_Q_OWNER_DELETE] =
    "DELETE FROM shared_owners WHERE kind = $1 AND container_key = $2 AND key = $3",
  [LSR_Q_OWNER_PUT] =
    "INSERT INTO shared_owners VALUES($1, $2, $3, $4::json #>> '{}')"
    " ON CONFLICT(kind, container_key, key) DO UPDATE SET playbook = EXCLUDED.playbook",
  [LSR_Q_LIST_DELETE] =
    "WITH w AS (DELETE FROM custom_lists WHERE name = $1) SELECT " SHARED("'list', $1::text"),
  [LSR_Q_LIST_PUT] =
    "WITH w AS (INSERT INTO custom_lists VALUES($1, $2) ON CONFLICT(name) DO UPDATE SET rows = EXCLUDED.rows)"
    " SELECT " SHARED("'list', $1::text"),
  [LSR_Q_PROMPT_PUT] =
    "INSERT INTO prompts(id, run_id, name, prompt, status, deadline)"
    " VALUES($1, $2, $3::json ->> 'name', $4, 'pending', ($5::json ->> 'deadline')::float8)"
    " ON CONFLICT(id) DO UPDATE SET run_id = EXCLUDED.run_id, name = EXCLUDED.name, prompt = EXCLUDED.prompt,"
    " status = EXCLUDED.status, deadline = EXCLUDED.deadline, responses = NULL",
  [LSR_Q_PROMPT_ANSWERED_BY_RUN] =
    "UPDATE prompts SET status = $1::json ->> 'status', responses = ($2::json -> 'responses')::text WHERE id = $3",
  [LSR_Q_CALL_PUT] =
    "INSERT INTO calls(id, run_id, kind, call, status) VALUES($1, $2, $3::json ->> 'kind', $4, 'running')"
    " ON CONFLICT(kind, id) DO UPDATE SET run_id = EXCLUDED.run_id, call = EXCLUDED.call, status = EXCLUDED.status",
  [LSR_Q_CALL_DONE] =
    "UPDATE calls SET status = 'done' WHERE kind = $1::json #>> '{}' AND id = $2",
  [LSR_Q_ACTION_RECOVERED_DELIVERED] =
    "UPDATE action_runs SET delivered = 1, status = CASE WHEN $1::text = 'true' THEN 'success'"
    " ELSE 'failed' END, update_time = $2 WHERE id = $3",
  [LSR_Q_ACTION_SUPERSEDED] =
    "UPDATE action_runs SET delivered = 1, status = 'superseded', update_time = $1 WHERE id = $2",
  [LSR_Q_ACTION_RELEASED] =
    "UPDATE action_runs SET released = 1 WHERE id = $1",
  [LSR_Q_RUN_DISCONTINUED] =
    "UPDATE playbook_runs SET discontinued = 1 WHERE id = $1",
  [LSR_Q_RUN_STARTED] =
    "UPDATE playbook_runs SET started = 1 WHERE id = $1",
  [LSR_Q_APP_STATE_PUT] =
    "INSERT INTO app_state VALUES($1, $2) ON CONFLICT(asset) DO UPDATE SET state = EXCLUDED.state",
  [LSR_Q_APP_KEY_PUT] =
    "INSERT INTO meta VALUES('app_key', $1) ON CONFLICT(key) DO NOTHING",
  [LSR_Q_RUN_OUTPUTS] =
    "UPDATE playbook_runs SET outputs = $1 WHERE id = $2",
  [LSR_Q_RUN_FAILED] =
    "UPDATE playbook_runs SET status = 'failed', message = $1, update_time = $2 WHERE id = $3",
  [LSR_Q_RUN_INSERT_FAILED] =
    "INSERT INTO playbook_runs(id, container_id, status, message, start_time, update_time,"
    " started) VALUES($1, $2, 'failed', $3, $4, $5, 1)",
  [LSR_Q_LOG_ERROR] =
    "INSERT INTO run_log(run_id, level, message, time) VALUES($1, 'error', $2, $3)",
  [LSR_Q_CONTAINER_WITH_ARTIFACTS] =
    "SELECT (data::jsonb || jsonb_build_object('id', id, 'artifacts', coalesce((SELECT jsonb_agg(a.data::jsonb"
    " ORDER BY a.id) FROM artifacts a WHERE a.container_id = $1), '[]'::jsonb)))::text"
    " FROM containers WHERE id = $1",
  [LSR_Q_CONTAINER_BY_PIN] =
    "SELECT c.id FROM containers c, " PINNED("'pins'")
    " WHERE strpos(c.data, '\"pins\"') > 0 AND " PINNED_ID " = $1 LIMIT 1",
  [LSR_Q_APP_STATE_GET] =
    "SELECT state FROM app_state WHERE asset = $1",
  [LSR_Q_APP_KEY_GET] =
    "SELECT value FROM meta WHERE key = 'app_key'",
  [LSR_Q_SEEN_GET] =
    "SELECT last_artifact_id FROM seen WHERE playbook = $1 AND container_id = $2",
  [LSR_Q_ARTIFACT_MAX_IN_CONTAINER] =
    "SELECT max(id) FROM artifacts WHERE container_id = $1",
  [LSR_Q_ARTIFACTS_AFTER] =
    "SELECT " LIST("json_agg(id ORDER BY id)") "::text FROM artifacts WHERE container_id = $1 AND id > $2",
  [LSR_Q_SEEN_PUT] =
    "INSERT INTO seen VALUES($1, $2, $3)"
    " ON CONFLICT(playbook, container_id) DO UPDATE SET last_artifact_id = EXCLUDED.last_artifact_id",
  [LSR_Q_CONTAINER_LABEL] =
    "SELECT label FROM containers WHERE id = $1",
  [LSR_Q_CONTAINER_STATUS] =
    "SELECT status FROM containers WHERE id = $1",
  [LSR_Q_LISTS_RESTORE] =
    "SELECT 'seed_list', l.name, l.rows, (SELECT w.playbook FROM shared_owners w"
    " WHERE w.kind = 'list' AND w.container_key = '' AND w.key = l.name) FROM custom_lists l",
  [LSR_Q_LIST_GET] =
    "SELECT 'seed_list', l.name, l.rows, (SELECT w.playbook FROM shared_owners w"
    " WHERE w.kind = 'list' AND w.container_key = '' AND w.key = l.name) FROM custom_lists l WHERE l.name = $1",
  [LSR_Q_OBJECT_GET] =
    "SELECT 'restore_object', o.container_key, o.key, o.value, (SELECT"
    " w.playbook FROM shared_owners w WHERE w.kind = 'object' AND w.container_key = o.container_key"
    " AND w.key = o.key) FROM objects o WHERE o.container_key = $1 AND o.key = $2",
  [LSR_Q_OBJECTS_RESTORE] =
    "SELECT 'restore_object', o.container_key, o.key, o.value, (SELECT"
    " w.playbook FROM shared_owners w WHERE w.kind = 'object' AND w.container_key = o.container_key"
    " AND w.key = o.key) FROM objects o",
  /* a new id of a kind: the first of a block of its sequence's increment
   * (the servers that share the database each take their own blocks) */
  [LSR_Q_ID_NEXT] =
    "SELECT nextval(('luasoar_' || $1::text || '_ids')::regclass),"
    " (SELECT increment_by FROM pg_sequences WHERE schemaname = current_schema()"
    "  AND sequencename = 'luasoar_' || $1::text || '_ids')",
  [LSR_Q_RUN_EXISTS] =
    "SELECT count(*) FROM playbook_runs WHERE id = $1",
  [LSR_Q_RUN_IS_RUNNING] =
    "SELECT count(*) FROM playbook_runs WHERE id = $1 AND status = 'running'",
  [LSR_Q_CHILD_CALL_RUNNING] =
    "SELECT count(*) FROM calls WHERE kind = 'playbook'"
    " AND status = 'running' AND call::json ->> 'child_run_id' = $1::bigint::text",
  [LSR_Q_LOG_STARTS_WITH] =
    "SELECT count(*) FROM run_log WHERE run_id = $1 AND substr(message, 1, $2) = $3",
  [LSR_Q_RUN_INSERT_RECOVERED] =
    "INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope,"
    " start_time, update_time, parent_run_id, node) SELECT $1::bigint, (call::json ->> 'container_id')::bigint,"
    " call::json ->> 'ref', 0, 'running', '', 'new', $2, $2, run_id, " NODE " FROM calls"
    " WHERE kind = 'playbook' AND status = 'running' AND call::json ->> 'child_run_id' = $1::bigint::text"
    " LIMIT 1",
  /* The runs this node takes over: those of nodes whose lease ran out
   * (their rows deleted here: a node without a row holds nothing, and its
   * next turn fails, see luasoar_hold), those handed back (no node), and at
   * its start ($1 = 1) its own from before.  One claim at a time (the
   * advisory lock, till the commit), and a former node's runs all together
   * (SKIP LOCKED: rows the dead node's last transaction still locks are not
   * waited for, and its runs are left for a later claim), so that a run's
   * children go with it.  A run is taken in the claim's commit. */
  [LSR_Q_RUNS_CLAIM] =
    "WITH one AS (SELECT pg_advisory_xact_lock(4208113))," /* one claimer at a time */
    " dead AS (DELETE FROM nodes WHERE lease_until < " DB_NOW " AND id <> " NODE
    "   AND EXISTS (SELECT 1 FROM one) RETURNING id),"
    " cand AS (SELECT id, coalesce(node, '') AS owner FROM playbook_runs p WHERE EXISTS (SELECT 1 FROM one)"
    "   AND status = 'running' AND (node IS NULL OR node IN (SELECT id FROM dead) OR ($1 = 1 AND node = " NODE ")"
    "   OR NOT EXISTS (SELECT 1 FROM nodes n WHERE n.id = p.node)) FOR UPDATE SKIP LOCKED),"
    /* a node's runs all at once, or none yet (some still locked by its last turn) */
    " whole AS (SELECT owner FROM cand c GROUP BY owner HAVING owner = " NODE " OR count(*) ="
    "   (SELECT count(*) FROM playbook_runs q WHERE q.status = 'running' AND coalesce(q.node, '') = c.owner)),"
    " taken AS (UPDATE playbook_runs r SET node = " NODE ", recovering = 1 FROM cand c"
    "   WHERE r.id = c.id AND c.owner IN (SELECT owner FROM whole)"
    "  RETURNING r.id, r.container_id, r.parent_run_id, r.playbook, r.scope)"
    " SELECT * FROM taken ORDER BY id",
  [LSR_Q_RUNS_RECOVERED] =
    "UPDATE playbook_runs SET recovering = 0 WHERE node = " NODE " AND recovering = 1",
  [LSR_Q_RUN_RECOVERY] =
    RECOVERY_JSON,
  [LSR_Q_PROMPTS_TIME_OUT] =
    "UPDATE prompts SET status = 'timed out' WHERE status = 'pending' AND run_id IN"
    " (SELECT id FROM playbook_runs WHERE status != 'running')",
  [LSR_Q_APPROVALS_CANCEL] =
    "UPDATE prompts SET status = 'cancelled' WHERE status = 'pending' AND prompt::json ->> 'type' = 'approval'"
    " AND run_id IN (SELECT id FROM playbook_runs WHERE node = " NODE " AND recovering = 1)",
  [LSR_Q_ARTIFACT_INSERT] =
    "INSERT INTO artifacts(id, container_id, data, create_time)"
    " VALUES($1, $2, (($3::jsonb - 'id') || jsonb_build_object('container', $2::bigint, 'id', $1::bigint))::text, $4)",
  [LSR_Q_CONTAINER_INSERT] =
    "INSERT INTO containers(id, label, status, data, create_time, update_time)"
    " VALUES($1, $2, $3, (($4::jsonb - 'artifacts' - 'id') || jsonb_build_object('label', $2::text,"
    " 'status', $3::text, 'id', $1::bigint))::text, $5, $5)",
  [LSR_Q_CONTAINER_EXISTS] =
    "SELECT count(*) FROM containers WHERE id = $1",
  [LSR_Q_ARTIFACT_CLEAN] =
    "UPDATE artifacts SET data = (data::jsonb - 'container_id' - 'run_automation')::text WHERE id = $1",
  [LSR_Q_PROMPT_PENDING_RUN] =
    "SELECT run_id FROM prompts WHERE id = $1 AND status = 'pending'",
  [LSR_Q_PROMPT_ANSWERED] =
    "UPDATE prompts SET status = 'answered' WHERE id = $1",
  [LSR_Q_LOG_COUNT] =
    "SELECT count(*) FROM run_log WHERE run_id = $1",
  [LSR_Q_LOG_PAGE] =
    "SELECT level, " ISO("time") ", message FROM run_log WHERE run_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
  [LSR_Q_CONTAINER_GET] =
    "SELECT (data::jsonb || jsonb_build_object('id', id, 'artifact_count',"
    " (SELECT count(*) FROM artifacts WHERE container_id = c.id), 'create_time', " ISO("create_time") "))::text"
    " FROM containers c WHERE id = $1",
  [LSR_Q_CONTAINERS_LIST] =
    "SELECT json_build_object('count', count(*), 'data',"
    " " LIST("json_agg((data::jsonb || jsonb_build_object('id', id, 'artifact_count', (SELECT count(*) FROM artifacts a"
    "   WHERE a.container_id = c.id), 'create_time', " ISO("c.create_time") ")) ORDER BY id)") ")::text FROM containers c",
  [LSR_Q_ARTIFACTS_LIST] =
    "SELECT json_build_object('count', count(*), 'data', " LIST("json_agg(data::json ORDER BY id)") ")::text"
    " FROM artifacts WHERE $1 = 0 OR container_id = $2",
  [LSR_Q_ARTIFACT_GET] =
    "SELECT data FROM artifacts WHERE id = $1",
  [LSR_Q_RUN_GET] =
    "SELECT " RUN_JSON "::text FROM playbook_runs WHERE id = $1",
  [LSR_Q_RUNS_LIST] =
    "SELECT json_build_object('count', count(*), 'data', " LIST("json_agg(" RUN_JSON " ORDER BY id)") ")::text"
    " FROM playbook_runs WHERE $1 = 0 OR container_id = $2",
  [LSR_Q_ACTION_RUNS_LIST] =
    "SELECT json_build_object('count', count(*), 'data', " LIST("json_agg(json_build_object('id', id,"
    " 'playbook_run', run_id, 'name', name, 'action', action, 'status', status, 'callback', callback,"
    " 'parameters', coalesce(parameters, '[]')::json, 'app_runs', " LIST("(SELECT json_agg(p.id ORDER BY p.id)"
    " FROM app_runs p WHERE p.action_run_id = a.id)") ", 'start_time', " ISO("start_time") ","
    " 'update_time', " ISO("update_time") ") ORDER BY id)") ")::text FROM action_runs a"
    " WHERE $1 = 0 OR run_id = $2",
  [LSR_Q_APP_RUN_GET] =
    "SELECT json_build_object('id', id, 'action_run', action_run_id, 'playbook_run', run_id, 'asset', asset,"
    " 'app_name', app, 'status', status, 'message', message, 'result_data', result::json,"
    " 'end_time', " ISO("end_time") ")::text FROM app_runs WHERE id = $1",
  [LSR_Q_PROMPTS_LIST] =
    "SELECT json_build_object('count', count(*), 'data', " LIST("json_agg(json_build_object('id', id,"
    " 'playbook_run', run_id, 'name', name, 'status', status, 'prompt', prompt::json,"
    " 'responses', responses::json) ORDER BY id)") ")::text FROM prompts",
  [LSR_Q_CLI_RUN] =
    "SELECT json_build_object('run', json_build_object('id', id, 'container', container_id, 'playbook', playbook,"
    " 'generation', generation, 'status', status, 'message', message, 'start_time', " ISO("start_time") ","
    " 'update_time', " ISO("update_time") "), 'log', " LIST("(SELECT json_agg(json_build_object('level', level,"
    " 'message', message, 'time', " ISO("time") ") ORDER BY id) FROM run_log WHERE run_id = r.id)") ")::text"
    " FROM playbook_runs r WHERE id = $1",
  [LSR_Q_CLI_RUNS] =
    "SELECT " LIST("json_agg(json_build_object('id', id, 'container', container_id, 'playbook', playbook,"
    " 'generation', generation, 'status', status, 'message', message, 'start_time', " ISO("start_time") ","
    " 'update_time', " ISO("update_time") ") ORDER BY id)") "::text"
    " FROM playbook_runs WHERE $1 = 0 OR container_id = $1",
  [LSR_Q_CLI_RUN_ROWS] =
    "SELECT id, container_id, status, playbook, generation,"
    " to_char(to_timestamp(start_time) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), message FROM playbook_runs"
    " WHERE ($1 = 0 OR id = $1) AND ($2 = 0 OR container_id = $2) ORDER BY id",
  [LSR_Q_CLI_LOG_ROWS] =
    "SELECT to_char(to_timestamp(time) AT TIME ZONE 'UTC', 'HH24:MI:SS.MS'), level, message"
    " FROM run_log WHERE run_id = $1 ORDER BY id",
  [LSR_Q_PAGE_COUNT] =
    "SELECT 0",
  /* the node stops: its runs handed back, to whichever node claims them */
  [LSR_Q_NODE_LEAVE] =
    "WITH gone AS (DELETE FROM nodes WHERE id = " NODE "),"
    " freed AS (UPDATE playbook_runs SET node = NULL WHERE node = " NODE " AND status = 'running' RETURNING id)"
    " SELECT count(*), pg_notify('luasoar', 'runs') FROM freed",
  /* the playbooks this node serves, {"id": generation, ...} */
  [LSR_Q_NODE_PLAYBOOKS] =
    "UPDATE nodes SET playbooks = $1 WHERE id = " NODE,
  /* GET /rest/cluster */
  [LSR_Q_CLUSTER_NODES] =
    "SELECT json_build_object('count', count(*), 'data', " LIST("json_agg(json_build_object('node', n.id,"
    " 'listen', n.listen, 'self', n.id = " NODE ", 'started', " ISO("n.started") ", 'heartbeat', " ISO("n.heartbeat") ","
    " 'lease_until', " ISO("n.lease_until") ", 'lease_left', round((n.lease_until - " DB_NOW ")::numeric, 3),"
    " 'runs', (SELECT count(*) FROM playbook_runs r WHERE r.node = n.id AND r.status = 'running'),"
    " 'playbooks', coalesce(n.playbooks, '{}')::json) ORDER BY n.id)") ","
    " 'unclaimed_runs', (SELECT count(*) FROM playbook_runs r WHERE r.status = 'running'"
    "   AND NOT EXISTS (SELECT 1 FROM nodes m WHERE m.id = r.node)))::text FROM nodes n",
  /* GET /rest/playbook: what each node serves */
  [LSR_Q_NODES_PLAYBOOKS] =
    "SELECT coalesce(json_object_agg(id, coalesce(playbooks, '{}')::json ORDER BY id), '{}')::text FROM nodes",
  /* an answer to a prompt of a run on another node: kept for it (the first
   * answer wins), and that node woken; how many prompts took it */
  [LSR_Q_PROMPT_ANSWER_ELSEWHERE] =
    "WITH a AS (UPDATE prompts SET answer = $2 WHERE id = $1 AND status = 'pending' AND answer IS NULL"
    " RETURNING run_id) SELECT count(*), pg_notify('luasoar', 'answer') FROM a",
  /* answers kept for this node's runs */
  [LSR_Q_PROMPT_ANSWERS_MINE] =
    "SELECT p.id, p.run_id, p.answer FROM prompts p JOIN playbook_runs r ON r.id = p.run_id"
    " WHERE p.status = 'pending' AND p.answer IS NOT NULL AND r.node = " NODE " ORDER BY p.id",
};
