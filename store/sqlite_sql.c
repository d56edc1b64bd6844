/* sqlite_sql.c: the SQL of every statement of the store, for SQLite (JSON1
 * builds the REST answers).  Writes are the statements that do not begin
 * with SELECT: they go into the turn's transaction. */
#include "backend.h"

/* a time column (seconds since the epoch) as ISO 8601 text */
#define ISO(col) "strftime('%Y-%m-%dT%H:%M:%fZ', " col ", 'unixepoch')"

/* a run as REST shows it */
#define RUN_JSON \
  "json_object('id', id, 'playbook', playbook, 'container', container_id, 'generation', generation," \
  " 'status', status, 'message', message, 'misc', json_object('scope', scope)," \
  " 'start_time', " ISO("start_time") ", 'update_time', " ISO("update_time") "," \
  " 'parent_playbook_run', parent_run_id, 'outputs', json(coalesce(outputs, '{}')))"

/* what recovery needs of a run that was in flight, as one JSON object */
#define RECOVERY_JSON \
  "SELECT json_object('started', started, 'discontinued', discontinued," \
  " 'run_data', json((SELECT json_group_object(key, json(value)) FROM run_data WHERE run_id = r.id))," \
  " 'actions', json((SELECT json_group_array(json_object('id', a.id, 'name', a.name, 'action', a.action," \
  "   'callback', a.callback, 'handle', json(coalesce(a.handle, 'null')), 'parameters', json(a.parameters)," \
  "   'assets', json(coalesce(a.assets, '[]')), 'delivered', a.delivered, 'start_after', a.start_after," \
  "   'reviewer', a.reviewer, 'loop_state', a.loop_state, 'released', a.released," \
  "   'results', json((SELECT json_group_array(json_object('asset', p.asset, 'result', json(p.result)))" \
  "                    FROM app_runs p WHERE p.action_run_id = a.id))))" \
  "   FROM (SELECT * FROM action_runs WHERE run_id = r.id AND NOT (delivered = 1 AND status = 'superseded')" \
  "         ORDER BY id) a))," \
  " 'prompts', json((SELECT json_group_array(json(prompt)) FROM prompts WHERE run_id = r.id AND status = 'pending'))," \
  " 'calls', json((SELECT json_group_array(json_set(call, '$.id', c.id," \
  "   '$.child_status', (SELECT status FROM playbook_runs WHERE id = json_extract(c.call, '$.child_run_id'))," \
  "   '$.child_outputs', json((SELECT coalesce(outputs, '{}') FROM playbook_runs" \
  "                            WHERE id = json_extract(c.call, '$.child_run_id')))," \
  "   '$.child_message', (SELECT message FROM playbook_runs WHERE id = json_extract(c.call, '$.child_run_id'))))" \
  "   FROM calls c WHERE run_id = r.id AND status = 'running')))" \
  " FROM playbook_runs r WHERE id = ?"

/* a statement of the cluster, which SQLite has not: a write that changes
 * nothing (the server does not send them to SQLite) */
#define NO_CLUSTER "UPDATE meta SET value = value WHERE 0"

const char *const lsr_sqlite_sql[LSR_Q_COUNT] = {
  [LSR_Q_RUN_INSERT] =
    "INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope,"
    " start_time, update_time, parent_run_id) VALUES(?1, ?2, ?3, ?4, 'running', '', ?5, ?6, ?6, ?7)"
    " ON CONFLICT(id) DO UPDATE SET parent_run_id = ?7, generation = ?4",
  [LSR_Q_RUN_GENERATION] =
    "UPDATE playbook_runs SET generation = ?, update_time = ? WHERE id = ?",
  [LSR_Q_RUN_STATUS] =
    "UPDATE playbook_runs SET status = ?, message = ?, update_time = ? WHERE id = ?",
  [LSR_Q_RUN_CANCEL_ACTIONS] =
    "UPDATE action_runs SET status = 'cancelled', update_time = ? WHERE run_id = ?"
    " AND status = 'running'",
  [LSR_Q_RUN_CANCEL_PROMPTS] =
    "UPDATE prompts SET status = 'cancelled' WHERE run_id = ? AND status = 'pending'",
  [LSR_Q_RUN_CLOSE_CALLS] =
    "UPDATE calls SET status = 'done' WHERE run_id = ? AND status = 'running'",
  [LSR_Q_LOG_INSERT] =
    "INSERT INTO run_log(run_id, level, message, time) VALUES(?, ?, ?, ?)",
  [LSR_Q_ACTION_INSERT] =
    "INSERT INTO action_runs(id, run_id, name, action, callback, handle, parameters, assets, status,"
    " start_time, update_time, start_after, reviewer, loop_state, released)"
    " VALUES(?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?)",
  [LSR_Q_APP_RUN_PUT] =
    "INSERT OR REPLACE INTO app_runs(id, action_run_id, run_id, asset, app, status, message, result,"
    " end_time) VALUES(?, ?, ?, ?, ?, json_extract(?, '$.status'), json_extract(?, '$.message'), ?, ?)",
  [LSR_Q_ACTION_DELIVERED] =
    "UPDATE action_runs SET status = ?, delivered = 1, update_time = ? WHERE id = ?",
  [LSR_Q_RUN_DATA_PUT] =
    "INSERT OR REPLACE INTO run_data(run_id, key, value) VALUES(?, ?, ?)",
  [LSR_Q_CONTAINER_UPDATE] =
    "UPDATE containers SET data = ?, status = json_extract(?, '$.status'), label = json_extract(?, '$.label'),"
    " update_time = ? WHERE id = ?",
  [LSR_Q_ARTIFACT_ADDED] =
    "INSERT INTO artifacts(id, container_id, data, create_time)"
    " VALUES(?, json_extract(?, '$.container'), ?, ?)",
  [LSR_Q_OBJECT_DELETE] =
    "DELETE FROM objects WHERE container_key = ? AND key = ?",
  [LSR_Q_OBJECT_PUT] =
    "INSERT OR REPLACE INTO objects VALUES(?, ?, ?)",
  [LSR_Q_OWNER_DELETE] =
    "DELETE FROM shared_owners WHERE kind = ? AND container_key = ? AND key = ?",
  [LSR_Q_OWNER_PUT] =
    "INSERT OR REPLACE INTO shared_owners VALUES(?, ?, ?, json_extract(?, '$'))",
  [LSR_Q_LIST_DELETE] =
    "DELETE FROM custom_lists WHERE name = ?",
  [LSR_Q_LIST_PUT] =
    "INSERT OR REPLACE INTO custom_lists VALUES(?, ?)",
  [LSR_Q_PROMPT_PUT] =
    "INSERT OR REPLACE INTO prompts(id, run_id, name, prompt, status, deadline)"
    " VALUES(?, ?, json_extract(?, '$.name'), ?, 'pending', json_extract(?, '$.deadline'))",
  [LSR_Q_PROMPT_ANSWERED_BY_RUN] =
    "UPDATE prompts SET status = json_extract(?, '$.status'),"
    " responses = json_extract(?, '$.responses') WHERE id = ?",
  [LSR_Q_CALL_PUT] =
    "INSERT OR REPLACE INTO calls(id, run_id, kind, call, status)"
    " VALUES(?, ?, json_extract(?, '$.kind'), ?, 'running')",
  [LSR_Q_CALL_DONE] =
    "UPDATE calls SET status = 'done' WHERE kind = json_extract(?, '$') AND id = ?",
  [LSR_Q_ACTION_RECOVERED_DELIVERED] =
    "UPDATE action_runs SET delivered = 1, status = CASE WHEN ? = 'true' THEN 'success'"
    " ELSE 'failed' END, update_time = ? WHERE id = ?",
  [LSR_Q_ACTION_SUPERSEDED] =
    "UPDATE action_runs SET delivered = 1, status = 'superseded', update_time = ?"
    " WHERE id = ?",
  [LSR_Q_ACTION_RELEASED] =
    "UPDATE action_runs SET released = 1 WHERE id = ?",
  [LSR_Q_RUN_DISCONTINUED] =
    "UPDATE playbook_runs SET discontinued = 1 WHERE id = ?",
  [LSR_Q_RUN_STARTED] =
    "UPDATE playbook_runs SET started = 1 WHERE id = ?",
  [LSR_Q_APP_STATE_PUT] =
    "INSERT OR REPLACE INTO app_state VALUES(?, ?)",
  [LSR_Q_APP_KEY_PUT] =
    "INSERT OR IGNORE INTO meta VALUES('app_key', ?)",
  [LSR_Q_RUN_OUTPUTS] =
    "UPDATE playbook_runs SET outputs = ? WHERE id = ?",
  [LSR_Q_RUN_FAILED] =
    "UPDATE playbook_runs SET status = 'failed', message = ?, update_time = ?"
    " WHERE id = ?",
  [LSR_Q_RUN_INSERT_FAILED] =
    "INSERT INTO playbook_runs(id, container_id, status, message, start_time, update_time,"
    " started) VALUES(?, ?, 'failed', ?, ?, ?, 1)",
  [LSR_Q_LOG_ERROR] =
    "INSERT INTO run_log(run_id, level, message, time) VALUES(?, 'error', ?, ?)",
  [LSR_Q_CONTAINER_WITH_ARTIFACTS] =
    "SELECT json_set(data, '$.id', id, '$.artifacts', json((SELECT json_group_array(json(data))"
    " FROM (SELECT data FROM artifacts WHERE container_id = ?1 ORDER BY id))))"
    " FROM containers WHERE id = ?1",
  [LSR_Q_CONTAINER_BY_PIN] =
    "SELECT c.id FROM containers c, json_each(c.data, '$.pins') p"
    " WHERE instr(c.data, '\"pins\"') AND json_extract(p.value, '$.id') = ? LIMIT 1",
  [LSR_Q_APP_STATE_GET] =
    "SELECT state FROM app_state WHERE asset = ?",
  [LSR_Q_APP_KEY_GET] =
    "SELECT value FROM meta WHERE key = 'app_key'",
  [LSR_Q_SEEN_GET] =
    "SELECT last_artifact_id FROM seen WHERE playbook = ? AND container_id = ?",
  [LSR_Q_ARTIFACT_MAX_IN_CONTAINER] =
    "SELECT max(id) FROM artifacts WHERE container_id = ?",
  [LSR_Q_ARTIFACTS_AFTER] =
    "SELECT json_group_array(id) FROM (SELECT id FROM artifacts"
    " WHERE container_id = ? AND id > ? ORDER BY id)",
  [LSR_Q_SEEN_PUT] =
    "INSERT OR REPLACE INTO seen VALUES(?, ?, ?)",
  [LSR_Q_CONTAINER_LABEL] =
    "SELECT label FROM containers WHERE id = ?",
  [LSR_Q_CONTAINER_STATUS] =
    "SELECT status FROM containers WHERE id = ?",
  [LSR_Q_LISTS_RESTORE] =
    "SELECT 'seed_list', l.name, l.rows, (SELECT w.playbook FROM shared_owners w"
    " WHERE w.kind = 'list' AND w.container_key = '' AND w.key = l.name) FROM custom_lists l",
  [LSR_Q_OBJECTS_RESTORE] =
    "SELECT 'restore_object', o.container_key, o.key, o.value, (SELECT"
    " w.playbook FROM shared_owners w WHERE w.kind = 'object' AND w.container_key = o.container_key"
    " AND w.key = o.key) FROM objects o",
  /* a new id of a kind (lsr_id_kind's names): the first of a block and
   * its size, 0 for no end (one server writes a SQLite store) */
  [LSR_Q_ID_NEXT] =
    "SELECT coalesce(CASE ?1 WHEN 'run' THEN (SELECT max(id) FROM playbook_runs)"
    " WHEN 'action' THEN max(coalesce((SELECT max(id) FROM action_runs), 0),"
    "   coalesce((SELECT max(id) FROM prompts), 0),"
    "   coalesce((SELECT max(id) FROM calls WHERE kind = 'custom_function'), 0))"
    " WHEN 'app_run' THEN (SELECT max(id) FROM app_runs)"
    " WHEN 'artifact' THEN (SELECT max(id) FROM artifacts)"
    " WHEN 'container' THEN (SELECT max(id) FROM containers)"
    " WHEN 'pin' THEN (SELECT max(json_extract(p.value, '$.id')) FROM containers c,"
    "   json_each(c.data, '$.pins') p WHERE instr(c.data, '\"pins\"'))"
    " WHEN 'note' THEN (SELECT max(json_extract(p.value, '$.id')) FROM containers c,"
    "   json_each(c.data, '$.notes') p WHERE instr(c.data, '\"notes\"'))"
    " END, 0) + 1, 0",
  [LSR_Q_RUN_EXISTS] =
    "SELECT count(*) FROM playbook_runs WHERE id = ?",
  [LSR_Q_RUN_IS_RUNNING] =
    "SELECT count(*) FROM playbook_runs WHERE id = ? AND status = 'running'",
  [LSR_Q_CHILD_CALL_RUNNING] =
    "SELECT count(*) FROM calls WHERE kind = 'playbook'"
    " AND status = 'running' AND json_extract(call, '$.child_run_id') = ?",
  [LSR_Q_LOG_STARTS_WITH] =
    "SELECT count(*) FROM run_log WHERE run_id = ? AND substr(message, 1, ?) = ?",
  [LSR_Q_RUN_INSERT_RECOVERED] =
    "INSERT INTO playbook_runs(id, container_id, playbook, generation, status, message, scope,"
    " start_time, update_time, parent_run_id) SELECT ?1, json_extract(call, '$.container_id'),"
    " json_extract(call, '$.ref'), 0, 'running', '', 'new', ?2, ?2, run_id FROM calls"
    " WHERE kind = 'playbook' AND status = 'running' AND json_extract(call, '$.child_run_id') = ?1"
    " LIMIT 1",
  /* the runs this server takes over (at its start: 1): on SQLite, at
   * start, every running run (one server per store) */
  [LSR_Q_RUNS_CLAIM] =
    "SELECT id, container_id, parent_run_id, playbook, scope"
    " FROM playbook_runs WHERE status = 'running' AND ?1 = 1 ORDER BY id",
  [LSR_Q_RUNS_RECOVERED] = NO_CLUSTER,
  [LSR_Q_RUN_RECOVERY] =
    RECOVERY_JSON,
  [LSR_Q_PROMPTS_TIME_OUT] =
    "UPDATE prompts SET status = 'timed out' WHERE status = 'pending' AND run_id IN"
    " (SELECT id FROM playbook_runs WHERE status != 'running')",
  [LSR_Q_APPROVALS_CANCEL] =
    "UPDATE prompts SET status = 'cancelled' WHERE status = 'pending'"
    " AND json_extract(prompt, '$.type') = 'approval'",
  [LSR_Q_ARTIFACT_INSERT] =
    "INSERT INTO artifacts(id, container_id, data, create_time)"
    " VALUES(?1, ?2, json_set(json_remove(?3, '$.id'), '$.container', ?2, '$.id', ?1), ?4)",
  [LSR_Q_CONTAINER_INSERT] =
    "INSERT INTO containers(id, label, status, data, create_time, update_time)"
    " VALUES(?1, ?2, ?3, json_set(json_remove(?4, '$.artifacts', '$.id'), '$.label', ?2,"
    " '$.status', ?3, '$.id', ?1), ?5, ?5)",
  [LSR_Q_CONTAINER_EXISTS] =
    "SELECT count(*) FROM containers WHERE id = ?",
  [LSR_Q_ARTIFACT_CLEAN] =
    "UPDATE artifacts SET data = json_remove(data, '$.container_id', '$.run_automation')"
    " WHERE id = ?",
  [LSR_Q_PROMPT_PENDING_RUN] =
    "SELECT run_id FROM prompts WHERE id = ? AND status = 'pending'",
  [LSR_Q_PROMPT_ANSWERED] =
    "UPDATE prompts SET status = 'answered' WHERE id = ?",
  [LSR_Q_LOG_COUNT] =
    "SELECT count(*) FROM run_log WHERE run_id = ?",
  [LSR_Q_LOG_PAGE] =
    "SELECT level, " ISO("time") ", message"
    " FROM run_log WHERE run_id = ? ORDER BY id LIMIT ? OFFSET ?",
  [LSR_Q_CONTAINER_GET] =
    "SELECT json_set(data, '$.id', id, '$.artifact_count', (SELECT count(*) FROM artifacts WHERE container_id = c.id),"
    " '$.create_time', " ISO("create_time") ") FROM containers c WHERE id = ?",
  [LSR_Q_CONTAINERS_LIST] =
    "SELECT json_object('count', count(*), 'data', json_group_array(json(data)))"
    " FROM (SELECT json_set(data, '$.id', id, '$.artifact_count', (SELECT count(*) FROM artifacts a"
    "   WHERE a.container_id = c.id), '$.create_time', " ISO("create_time") ") AS data FROM containers c ORDER BY id)",
  [LSR_Q_ARTIFACTS_LIST] =
    "SELECT json_object('count', count(*), 'data', json_group_array(json(data)))"
    " FROM (SELECT data FROM artifacts WHERE ?1 = 0 OR container_id = ?2 ORDER BY id)",
  [LSR_Q_ARTIFACT_GET] =
    "SELECT data FROM artifacts WHERE id = ?",
  [LSR_Q_RUN_GET] =
    "SELECT " RUN_JSON " FROM playbook_runs WHERE id = ?",
  [LSR_Q_RUNS_LIST] =
    "SELECT json_object('count', count(*), 'data', json_group_array(json(r)))"
    " FROM (SELECT " RUN_JSON " AS r FROM playbook_runs WHERE ?1 = 0 OR container_id = ?2 ORDER BY id)",
  [LSR_Q_ACTION_RUNS_LIST] =
    "SELECT json_object('count', count(*), 'data', json_group_array(json(r))) FROM (SELECT json_object('id', id,"
    " 'playbook_run', run_id, 'name', name, 'action', action, 'status', status, 'callback', callback,"
    " 'parameters', json(coalesce(parameters, '[]')), 'app_runs', (SELECT json_group_array(id) FROM app_runs"
    " WHERE action_run_id = a.id), 'start_time', " ISO("start_time") ","
    " 'update_time', " ISO("update_time") ") AS r FROM action_runs a"
    " WHERE ?1 = 0 OR run_id = ?2 ORDER BY id)",
  [LSR_Q_APP_RUN_GET] =
    "SELECT json_object('id', id, 'action_run', action_run_id, 'playbook_run', run_id, 'asset', asset,"
    " 'app_name', app, 'status', status, 'message', message, 'result_data', json(result),"
    " 'end_time', " ISO("end_time") ") FROM app_runs WHERE id = ?",
  [LSR_Q_PROMPTS_LIST] =
    "SELECT json_object('count', count(*), 'data', json_group_array(json_object('id', id, 'playbook_run', run_id,"
    " 'name', name, 'status', status, 'prompt', json(prompt), 'responses', json(responses)))) FROM prompts",
  [LSR_Q_CLI_RUN] =
    "SELECT json_object('run', json_object('id', id, 'container', container_id, 'playbook', playbook, 'generation',"
    " generation, 'status', status, 'message', message, 'start_time', " ISO("start_time") ", 'update_time', "
    ISO("update_time") "), 'log', (SELECT json_group_array(json_object('level', level, 'message', message, 'time', "
    ISO("time") "))"
    " FROM (SELECT * FROM run_log WHERE run_id = r.id ORDER BY id))) FROM playbook_runs r WHERE id = ?",
  [LSR_Q_CLI_RUNS] =
    "SELECT json_group_array(json_object('id', id, 'container', container_id, 'playbook',"
    " playbook, 'generation', generation, 'status', status, 'message', message, 'start_time', " ISO("start_time") ","
    " 'update_time', " ISO("update_time") ")) FROM (SELECT * FROM playbook_runs WHERE ?1 = 0 OR container_id = ?1 ORDER BY id)",
  [LSR_Q_CLI_RUN_ROWS] =
    "SELECT id, container_id, status, playbook, generation,"
    " strftime('%Y-%m-%d %H:%M:%S', start_time, 'unixepoch'), message FROM playbook_runs"
    " WHERE (?1 = 0 OR id = ?1) AND (?2 = 0 OR container_id = ?2) ORDER BY id",
  [LSR_Q_CLI_LOG_ROWS] =
    "SELECT strftime('%H:%M:%f', time, 'unixepoch'), level, message"
    " FROM run_log WHERE run_id = ? ORDER BY id",
  [LSR_Q_PAGE_COUNT] =
    "SELECT page_count FROM pragma_page_count()",
  /* a cluster is PostgreSQL's (postgres_sql.c) */
  [LSR_Q_NODE_LEAVE] = NO_CLUSTER,
  [LSR_Q_NODE_PLAYBOOKS] = NO_CLUSTER,
  [LSR_Q_CLUSTER_NODES] = NO_CLUSTER,
  [LSR_Q_NODES_PLAYBOOKS] = NO_CLUSTER,
  [LSR_Q_LIST_GET] = NO_CLUSTER,
  [LSR_Q_OBJECT_GET] = NO_CLUSTER,
  [LSR_Q_PROMPT_ANSWER_ELSEWHERE] = NO_CLUSTER,
  [LSR_Q_PROMPT_ANSWERS_MINE] = NO_CLUSTER,
};
