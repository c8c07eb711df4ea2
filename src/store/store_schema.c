/* store_schema — the database schema as numbered migrations. Migration n
 * brings a database from user_version n-1 to n; store.c applies each in its
 * own transaction together with `PRAGMA user_version = n`. Never edit a
 * migration that has shipped: append a new one. Times are ISO-8601 UTC text,
 * JSON is TEXT; nothing here ever holds a secret. */
#include "store/store.h"

#include <stddef.h>

static const char *const migrations[] = {
	/* 1: tenants, the user mirror (+ staging for full resyncs), groups,
	 * delta state, links to Syncro contacts, key/value. application_id
	 * marks the file as an entrasync database ("EnSy"). */
	"PRAGMA application_id = 1164858233;\n"
	"CREATE TABLE tenants (\n"
	"  id                 TEXT PRIMARY KEY NOT NULL,\n"
	"  name               TEXT,\n"
	"  default_domain     TEXT,\n"
	"  syncro_customer_id INTEGER,\n"
	"  policy_hash        TEXT,\n"
	"  last_pull_at       TEXT,\n"
	"  last_sync_at       TEXT,\n"
	"  last_status        TEXT,\n"
	"  last_error         TEXT\n"
	");\n"
	/* The mirror. Rows are never deleted by a pull: removed users keep
	 * their last JSON with removed = Graph's @removed.reason. */
	"CREATE TABLE users (\n"
	"  tenant_id  TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,\n"
	"  object_id  TEXT NOT NULL,\n"
	"  json       TEXT NOT NULL,\n"
	"  removed    TEXT CHECK (removed IN ('changed', 'deleted')),\n"
	"  removed_at TEXT,\n"
	"  updated_at TEXT NOT NULL,\n"
	"  PRIMARY KEY (tenant_id, object_id)\n"
	");\n"
	/* A full resync round in progress: swapped into users in one
	 * transaction when the round completes (store_mirror_swap). */
	"CREATE TABLE users_staging (\n"
	"  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,\n"
	"  object_id TEXT NOT NULL,\n"
	"  json      TEXT,\n"
	"  removed   TEXT CHECK (removed IN ('changed', 'deleted')),\n"
	"  CHECK ((json IS NULL) <> (removed IS NULL)),\n"
	"  PRIMARY KEY (tenant_id, object_id)\n"
	");\n"
	"CREATE TABLE groups (\n"
	"  tenant_id    TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,\n"
	"  group_id     TEXT NOT NULL,\n"
	"  display_name TEXT,\n"
	"  PRIMARY KEY (tenant_id, group_id)\n"
	");\n"
	"CREATE TABLE group_members (\n"
	"  tenant_id TEXT NOT NULL,\n"
	"  group_id  TEXT NOT NULL,\n"
	"  object_id TEXT NOT NULL,\n"
	"  PRIMARY KEY (tenant_id, group_id, object_id),\n"
	"  FOREIGN KEY (tenant_id, group_id) REFERENCES groups(tenant_id, group_id) ON DELETE CASCADE\n"
	");\n"
	"CREATE INDEX group_members_by_user ON group_members(tenant_id, object_id);\n"
	"CREATE TABLE delta_state (\n"
	"  tenant_id        TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,\n"
	"  resource         TEXT NOT NULL,\n"
	"  delta_link       TEXT,\n"
	"  next_link        TEXT,\n"
	"  round_started_at TEXT,\n"
	"  resync           INTEGER NOT NULL DEFAULT 0,\n"
	"  updated_at       TEXT NOT NULL,\n"
	"  PRIMARY KEY (tenant_id, resource)\n"
	");\n"
	"CREATE TABLE links (\n"
	"  tenant_id   TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,\n"
	"  object_id   TEXT NOT NULL,\n"
	"  contact_id  INTEGER NOT NULL,\n"
	"  customer_id INTEGER NOT NULL,\n"
	"  fields      TEXT,\n"
	"  created_at  TEXT NOT NULL,\n"
	"  updated_at  TEXT NOT NULL,\n"
	"  PRIMARY KEY (tenant_id, object_id),\n"
	"  UNIQUE (customer_id, contact_id)\n"
	");\n"
	"CREATE INDEX links_by_contact ON links(contact_id);\n"
	"CREATE TABLE kv (\n"
	"  key        TEXT PRIMARY KEY NOT NULL,\n"
	"  value      TEXT NOT NULL,\n"
	"  updated_at TEXT NOT NULL\n"
	");\n",

	/* 2: runs, their per-tenant results, the intent outbox, audit,
	 * conflicts. Audit and intents keep no foreign keys: they are history
	 * and must outlive what they mention. */
	"CREATE TABLE runs (\n"
	"  id          INTEGER PRIMARY KEY,\n"
	"  kind        TEXT NOT NULL,\n"
	"  started_at  TEXT NOT NULL,\n"
	"  finished_at TEXT,\n"
	"  status      TEXT NOT NULL DEFAULT 'running',\n"
	"  summary     TEXT\n"
	");\n"
	"CREATE TABLE run_tenants (\n"
	"  run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,\n"
	"  tenant_id TEXT NOT NULL,\n"
	"  status    TEXT NOT NULL CHECK (status IN ('ok', 'failed', 'held')),\n"
	"  counts    TEXT,\n"
	"  reason    TEXT,\n"
	"  PRIMARY KEY (run_id, tenant_id)\n"
	");\n"
	/* Crash-safe writes to Syncro: recorded 'pending' before sending,
	 * 'sent' when the request left, 'done'/'failed' with the result. A run
	 * that finds 'pending'/'sent' rows reconciles them before planning. */
	"CREATE TABLE intents (\n"
	"  id         INTEGER PRIMARY KEY,\n"
	"  run_id     INTEGER,\n"
	"  tenant_id  TEXT NOT NULL,\n"
	"  object_id  TEXT,\n"
	"  action     TEXT NOT NULL,\n"
	"  payload    TEXT,\n"
	"  state      TEXT NOT NULL DEFAULT 'pending'\n"
	"             CHECK (state IN ('pending', 'sent', 'done', 'failed')),\n"
	"  contact_id INTEGER,\n"
	"  error      TEXT,\n"
	"  created_at TEXT NOT NULL,\n"
	"  updated_at TEXT\n"
	");\n"
	"CREATE INDEX intents_open ON intents(tenant_id, state) WHERE state IN ('pending', 'sent');\n"
	"CREATE INDEX intents_by_run ON intents(run_id);\n"
	"CREATE TABLE audit (\n"
	"  id         INTEGER PRIMARY KEY,\n"
	"  at         TEXT NOT NULL,\n"
	"  run_id     INTEGER,\n"
	"  tenant_id  TEXT,\n"
	"  object_id  TEXT,\n"
	"  contact_id INTEGER,\n"
	"  action     TEXT NOT NULL,\n"
	"  before     TEXT,\n"
	"  after      TEXT,\n"
	"  actor      TEXT,\n"
	"  result     TEXT\n"
	");\n"
	"CREATE INDEX audit_by_tenant_time ON audit(tenant_id, at);\n"
	"CREATE INDEX audit_by_run ON audit(run_id);\n"
	"CREATE INDEX audit_by_contact ON audit(contact_id) WHERE contact_id IS NOT NULL;\n"
	"CREATE TABLE conflicts (\n"
	"  id          INTEGER PRIMARY KEY,\n"
	"  tenant_id   TEXT NOT NULL,\n"
	"  object_id   TEXT NOT NULL,\n"
	"  candidates  TEXT,\n"
	"  reason      TEXT NOT NULL,\n"
	"  opened_at   TEXT NOT NULL,\n"
	"  resolved_at TEXT\n"
	");\n"
	"CREATE UNIQUE INDEX conflicts_open ON conflicts(tenant_id, object_id) WHERE resolved_at IS NULL;\n",

	/* 3: daily license and Secure Score snapshots. enabled = the purchased
	 * (prepaidUnits.enabled) seats. applies_to = "User" | "Company". */
	"CREATE TABLE license_snapshots (\n"
	"  tenant_id         TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,\n"
	"  day               TEXT NOT NULL,\n"
	"  sku_id            TEXT NOT NULL,\n"
	"  sku_part_number   TEXT,\n"
	"  enabled           INTEGER NOT NULL DEFAULT 0,\n"
	"  suspended         INTEGER NOT NULL DEFAULT 0,\n"
	"  warning           INTEGER NOT NULL DEFAULT 0,\n"
	"  locked_out        INTEGER NOT NULL DEFAULT 0,\n"
	"  consumed          INTEGER NOT NULL DEFAULT 0,\n"
	"  capability_status TEXT,\n"
	"  applies_to        TEXT,\n"
	"  PRIMARY KEY (tenant_id, day, sku_id)\n"
	");\n"
	"CREATE TABLE secure_score_snapshots (\n"
	"  tenant_id     TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,\n"
	"  day           TEXT NOT NULL,\n"
	"  current_score REAL,\n"
	"  max_score     REAL,\n"
	"  averages      TEXT,\n"
	"  controls      TEXT,\n"
	"  PRIMARY KEY (tenant_id, day)\n"
	");\n",

	/* 4: billing state (store_billing.c) and the per-ticket state of
	 * Microsoft actions (store_actions.c). Both used to be created at
	 * first use with this very SQL, so a version-3 database may already
	 * hold them: IF NOT EXISTS adopts those as they are (their SQL never
	 * changed) instead of failing the upgrade. */
	/* One invoice per tenant and period: 'pending' (intent, before the
	 * POST) -> 'created' -> 'done'; 'failed' = refused, retried. */
	"CREATE TABLE IF NOT EXISTS billing_invoices (\n"
	"  tenant_id   TEXT NOT NULL,\n"
	"  period      TEXT NOT NULL,\n"
	"  customer_id INTEGER NOT NULL,\n"
	"  state       TEXT NOT NULL CHECK (state IN ('pending', 'created', 'done', 'failed')),\n"
	"  marker      TEXT NOT NULL,\n"
	"  invoice_id  INTEGER,\n"
	"  number      TEXT,\n"
	"  plan        TEXT NOT NULL,\n"
	"  error       TEXT,\n"
	"  run_id      INTEGER,\n"
	"  created_at  TEXT NOT NULL,\n"
	"  updated_at  TEXT NOT NULL,\n"
	"  PRIMARY KEY (tenant_id, period)\n"
	");\n"
	/* Billing's other writes, apart from the sync's intents. */
	"CREATE TABLE IF NOT EXISTS billing_intents (\n"
	"  id         INTEGER PRIMARY KEY,\n"
	"  run_id     INTEGER,\n"
	"  tenant_id  TEXT NOT NULL,\n"
	"  period     TEXT,\n"
	"  action     TEXT NOT NULL,\n"
	"  target     TEXT,\n"
	"  payload    TEXT,\n"
	"  state      TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),\n"
	"  result_id  INTEGER,\n"
	"  error      TEXT,\n"
	"  created_at TEXT NOT NULL,\n"
	"  updated_at TEXT\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS billing_intents_open ON billing_intents(tenant_id) WHERE state = 'pending';\n"
	"CREATE TABLE IF NOT EXISTS billing_schedule_lines (\n"
	"  tenant_id    TEXT NOT NULL,\n"
	"  schedule_id  INTEGER NOT NULL,\n"
	"  line_key     TEXT NOT NULL,\n"
	"  line_item_id INTEGER,\n"
	"  updated_at   TEXT NOT NULL,\n"
	"  PRIMARY KEY (tenant_id, schedule_id, line_key)\n"
	");\n"
	"CREATE TABLE IF NOT EXISTS ticket_actions (\n"
	"  ticket_id    INTEGER PRIMARY KEY,\n"
	"  customer_id  INTEGER,\n"
	"  contact_id   INTEGER,\n"
	"  tenant_id    TEXT,\n"
	"  object_id    TEXT,\n"
	"  label        TEXT,\n"
	"  action       TEXT NOT NULL,\n"
	"  state        TEXT NOT NULL CHECK (state IN ('intent', 'acted', 'commenting', 'done')),\n"
	"  outcome      TEXT CHECK (outcome IN ('ok', 'refused', 'failed')),\n"
	"  message      TEXT,\n"
	"  attempts     INTEGER NOT NULL DEFAULT 0,\n"
	"  attempted_at TEXT,\n"
	"  created_at   TEXT NOT NULL,\n"
	"  updated_at   TEXT NOT NULL\n"
	");\n"
	"CREATE INDEX IF NOT EXISTS ticket_actions_open ON ticket_actions(state) WHERE state <> 'done';\n",

	/* 5: the whole secureScore object as Graph sent it (re-serialized
	 * compactly, every field kept, unknown ones included), next to the
	 * columns read out of it. NULL for days stored before this version.
	 * And the removed users of each tenant, indexed apart (a partial
	 * index: present users, the bulk a pull writes, get no entry), so
	 * counting a tenant's present users (every pull, every sync) is two
	 * index counts instead of a look-up of every user's row. */
	"ALTER TABLE secure_score_snapshots ADD COLUMN raw TEXT;\n"
	"CREATE INDEX users_removed ON users(tenant_id) WHERE removed IS NOT NULL;\n",

	/* 6: the plan stamp (engine_stream.h) gets a column of its own in
	 * links; it used to be the first member "_stamp" of the fields JSON,
	 * which is moved out here (fields keep only contact fields). */
	"ALTER TABLE links ADD COLUMN stamp TEXT;\n"
	"UPDATE links SET stamp = json_extract(fields, '$._stamp'), fields = json_remove(fields, '$._stamp')\n"
	"  WHERE json_valid(fields) AND json_type(fields, '$._stamp') = 'text';\n",

	/* 7: a group's membership digest (store_group_members_replace's
	 * shortcut: when the pulled ids hash to it, the member rows are not
	 * read) moves from kv onto the group's row, and triggers drop it on any
	 * change of the group's member rows by anyone (a cascade included), so
	 * it never vouches for rows it has not seen. Old kv digests are dropped:
	 * the next pull compares the rows once. */
	"ALTER TABLE groups ADD COLUMN members_digest TEXT;\n"
	"DELETE FROM kv WHERE key LIKE 'group\\_members.digest.%' ESCAPE '\\';\n"
	"CREATE TRIGGER group_members_in AFTER INSERT ON group_members BEGIN\n"
	"  UPDATE groups SET members_digest = NULL WHERE tenant_id = NEW.tenant_id AND group_id = NEW.group_id\n"
	"    AND members_digest IS NOT NULL;\n"
	"END;\n"
	"CREATE TRIGGER group_members_out AFTER DELETE ON group_members BEGIN\n"
	"  UPDATE groups SET members_digest = NULL WHERE tenant_id = OLD.tenant_id AND group_id = OLD.group_id\n"
	"    AND members_digest IS NOT NULL;\n"
	"END;\n"
	"CREATE TRIGGER group_members_moved AFTER UPDATE ON group_members BEGIN\n"
	"  UPDATE groups SET members_digest = NULL WHERE ((tenant_id = OLD.tenant_id AND group_id = OLD.group_id)\n"
	"    OR (tenant_id = NEW.tenant_id AND group_id = NEW.group_id)) AND members_digest IS NOT NULL;\n"
	"END;\n",

	/* 8: each tenant's count of present users (removed IS NULL), kept on
	 * its row by triggers on every write of users, so that reading it (every
	 * pull and sync, for each tenant) is one row instead of counting the
	 * tenant's index entries. Every writer of users goes through an insert,
	 * an upsert or an update (no REPLACE, whose deletes fire no trigger). */
	"ALTER TABLE tenants ADD COLUMN users_present INTEGER NOT NULL DEFAULT 0;\n"
	"UPDATE tenants SET users_present = (SELECT count(*) FROM users u WHERE u.tenant_id = tenants.id\n"
	"  AND u.removed IS NULL);\n"
	"CREATE TRIGGER users_present_in AFTER INSERT ON users WHEN NEW.removed IS NULL BEGIN\n"
	"  UPDATE tenants SET users_present = users_present + 1 WHERE id = NEW.tenant_id;\n"
	"END;\n"
	"CREATE TRIGGER users_present_out AFTER DELETE ON users WHEN OLD.removed IS NULL BEGIN\n"
	"  UPDATE tenants SET users_present = users_present - 1 WHERE id = OLD.tenant_id;\n"
	"END;\n"
	"CREATE TRIGGER users_present_moved AFTER UPDATE OF tenant_id, removed ON users\n"
	"  WHEN (OLD.removed IS NULL) IS NOT (NEW.removed IS NULL) OR OLD.tenant_id IS NOT NEW.tenant_id BEGIN\n"
	"  UPDATE tenants SET users_present = users_present - 1 WHERE id = OLD.tenant_id AND OLD.removed IS NULL;\n"
	"  UPDATE tenants SET users_present = users_present + 1 WHERE id = NEW.tenant_id AND NEW.removed IS NULL;\n"
	"END;\n",

	/* 9: the key (digest and length) of the member page(s) a group's rows
	 * were last taken from (the pull's shortcut: a group's one page that has
	 * that key is not read at all). The triggers of 7 drop it with
	 * members_digest on any change of the group's member rows. */
	"ALTER TABLE groups ADD COLUMN page_digest TEXT;\n"
	"DROP TRIGGER group_members_in;\n"
	"DROP TRIGGER group_members_out;\n"
	"DROP TRIGGER group_members_moved;\n"
	"CREATE TRIGGER group_members_in AFTER INSERT ON group_members BEGIN\n"
	"  UPDATE groups SET members_digest = NULL, page_digest = NULL WHERE tenant_id = NEW.tenant_id\n"
	"    AND group_id = NEW.group_id AND (members_digest IS NOT NULL OR page_digest IS NOT NULL);\n"
	"END;\n"
	"CREATE TRIGGER group_members_out AFTER DELETE ON group_members BEGIN\n"
	"  UPDATE groups SET members_digest = NULL, page_digest = NULL WHERE tenant_id = OLD.tenant_id\n"
	"    AND group_id = OLD.group_id AND (members_digest IS NOT NULL OR page_digest IS NOT NULL);\n"
	"END;\n"
	"CREATE TRIGGER group_members_moved AFTER UPDATE ON group_members BEGIN\n"
	"  UPDATE groups SET members_digest = NULL, page_digest = NULL WHERE ((tenant_id = OLD.tenant_id\n"
	"    AND group_id = OLD.group_id) OR (tenant_id = NEW.tenant_id AND group_id = NEW.group_id))\n"
	"    AND (members_digest IS NOT NULL OR page_digest IS NOT NULL);\n"
	"END;\n",

	/* 10: each tenant's runs, newest last (status and the metrics read a
	 * tenant's latest pull and sync: without it, a scan of every run of
	 * every tenant for each tenant, which grows with each hourly run). */
	"CREATE INDEX run_tenants_by_tenant ON run_tenants(tenant_id, run_id);\n",

	/* 11: the counts the metrics file reports after every daemon run (runs
	 * per tenant by kind and outcome, writes by action and outcome), kept by
	 * triggers instead of counted over every run_tenants and audit row each
	 * time: those tables only grow (a hundred tenants pulled and synced
	 * hourly add 1.75 M run rows a year). Rows at 0 are not reported. */
	"CREATE TABLE tenant_run_counts (\n"
	"  kind      TEXT NOT NULL,\n"
	"  tenant_id TEXT NOT NULL,\n"
	"  status    TEXT NOT NULL,\n"
	"  n         INTEGER NOT NULL,\n"
	"  PRIMARY KEY (kind, tenant_id, status)\n"
	") WITHOUT ROWID;\n"
	"INSERT INTO tenant_run_counts SELECT r.kind, t.tenant_id, t.status, count(*) FROM run_tenants t\n"
	"  JOIN runs r ON r.id = t.run_id GROUP BY 1, 2, 3;\n"
	"CREATE TRIGGER run_tenants_counted AFTER INSERT ON run_tenants BEGIN\n"
	"  INSERT INTO tenant_run_counts (kind, tenant_id, status, n) SELECT kind, NEW.tenant_id, NEW.status, 1\n"
	"    FROM runs WHERE id = NEW.run_id ON CONFLICT (kind, tenant_id, status) DO UPDATE SET n = n + 1;\n"
	"END;\n"
	/* a row deleted on its own; one deleted with its run (the cascade comes
	 * after the run's row is gone) is taken off by runs_uncounted */
	"CREATE TRIGGER run_tenants_uncounted AFTER DELETE ON run_tenants BEGIN\n"
	"  UPDATE tenant_run_counts SET n = n - 1 WHERE kind = (SELECT kind FROM runs WHERE id = OLD.run_id)\n"
	"    AND tenant_id = OLD.tenant_id AND status = OLD.status;\n"
	"END;\n"
	"CREATE TRIGGER runs_uncounted BEFORE DELETE ON runs BEGIN\n"
	"  UPDATE tenant_run_counts SET n = n - (SELECT count(*) FROM run_tenants t WHERE t.run_id = OLD.id\n"
	"      AND t.tenant_id = tenant_run_counts.tenant_id AND t.status = tenant_run_counts.status)\n"
	"    WHERE kind = OLD.kind AND EXISTS (SELECT 1 FROM run_tenants t WHERE t.run_id = OLD.id\n"
	"      AND t.tenant_id = tenant_run_counts.tenant_id AND t.status = tenant_run_counts.status);\n"
	"END;\n"
	"CREATE TRIGGER run_tenants_recounted AFTER UPDATE ON run_tenants\n"
	"  WHEN OLD.status IS NOT NEW.status OR OLD.tenant_id IS NOT NEW.tenant_id OR OLD.run_id IS NOT NEW.run_id BEGIN\n"
	"  UPDATE tenant_run_counts SET n = n - 1 WHERE kind = (SELECT kind FROM runs WHERE id = OLD.run_id)\n"
	"    AND tenant_id = OLD.tenant_id AND status = OLD.status;\n"
	"  INSERT INTO tenant_run_counts (kind, tenant_id, status, n) SELECT kind, NEW.tenant_id, NEW.status, 1\n"
	"    FROM runs WHERE id = NEW.run_id ON CONFLICT (kind, tenant_id, status) DO UPDATE SET n = n + 1;\n"
	"END;\n"
	"CREATE TABLE write_counts (\n"
	"  action  TEXT NOT NULL,\n"
	"  outcome TEXT NOT NULL,\n"
	"  n       INTEGER NOT NULL,\n"
	"  PRIMARY KEY (action, outcome)\n"
	") WITHOUT ROWID;\n"
	"INSERT INTO write_counts SELECT action, CASE WHEN result = 'ok' THEN 'ok' WHEN result = 'dry-run' THEN 'dry_run'\n"
	"  ELSE 'failed' END, count(*) FROM audit GROUP BY 1, 2;\n"
	"CREATE TRIGGER audit_counted AFTER INSERT ON audit BEGIN\n"
	"  INSERT INTO write_counts (action, outcome, n) VALUES (NEW.action, CASE WHEN NEW.result = 'ok' THEN 'ok'\n"
	"    WHEN NEW.result = 'dry-run' THEN 'dry_run' ELSE 'failed' END, 1)\n"
	"    ON CONFLICT (action, outcome) DO UPDATE SET n = n + 1;\n"
	"END;\n"
	"CREATE TRIGGER audit_uncounted AFTER DELETE ON audit BEGIN\n"
	"  UPDATE write_counts SET n = n - 1 WHERE action = OLD.action AND outcome = CASE WHEN OLD.result = 'ok'\n"
	"    THEN 'ok' WHEN OLD.result = 'dry-run' THEN 'dry_run' ELSE 'failed' END;\n"
	"END;\n"
	"CREATE TRIGGER audit_recounted AFTER UPDATE OF action, result ON audit BEGIN\n"
	"  UPDATE write_counts SET n = n - 1 WHERE action = OLD.action AND outcome = CASE WHEN OLD.result = 'ok'\n"
	"    THEN 'ok' WHEN OLD.result = 'dry-run' THEN 'dry_run' ELSE 'failed' END;\n"
	"  INSERT INTO write_counts (action, outcome, n) VALUES (NEW.action, CASE WHEN NEW.result = 'ok' THEN 'ok'\n"
	"    WHEN NEW.result = 'dry-run' THEN 'dry_run' ELSE 'failed' END, 1)\n"
	"    ON CONFLICT (action, outcome) DO UPDATE SET n = n + 1;\n"
	"END;\n",

	/* 12: the metrics' counters never go down. History is now deleted by
	 * the retention (store_retention.c): deleting a run's or a write's row
	 * no longer takes it off its count (a Prometheus counter that fell
	 * would read as a restart), and the finished runs by kind and outcome
	 * are counted too (they were counted over every run, which the
	 * retention now deletes). */
	"DROP TRIGGER run_tenants_uncounted;\n"
	"DROP TRIGGER runs_uncounted;\n"
	"DROP TRIGGER audit_uncounted;\n"
	"CREATE TABLE run_counts (\n"
	"  kind   TEXT NOT NULL,\n"
	"  status TEXT NOT NULL,\n"
	"  n      INTEGER NOT NULL,\n"
	"  PRIMARY KEY (kind, status)\n"
	") WITHOUT ROWID;\n"
	"INSERT INTO run_counts SELECT kind, status, count(*) FROM runs WHERE status <> 'running' GROUP BY 1, 2;\n"
	"CREATE TRIGGER runs_counted AFTER INSERT ON runs WHEN NEW.status <> 'running' BEGIN\n"
	"  INSERT INTO run_counts (kind, status, n) VALUES (NEW.kind, NEW.status, 1)\n"
	"    ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;\n"
	"END;\n"
	"CREATE TRIGGER runs_recounted AFTER UPDATE OF kind, status ON runs\n"
	"  WHEN OLD.kind IS NOT NEW.kind OR OLD.status IS NOT NEW.status BEGIN\n"
	"  UPDATE run_counts SET n = n - 1 WHERE OLD.status <> 'running' AND kind = OLD.kind AND status = OLD.status;\n"
	"  INSERT INTO run_counts (kind, status, n) SELECT NEW.kind, NEW.status, 1 WHERE NEW.status <> 'running'\n"
	"    ON CONFLICT (kind, status) DO UPDATE SET n = n + 1;\n"
	"END;\n",

	/* 13: Secure Score days by day, for the retention that thins out the
	 * control scores of days past it (store_retention.c): without it, a
	 * scan of every day of every tenant each run. */
	"CREATE INDEX secure_score_by_day ON secure_score_snapshots(day);\n",

	/* 14: tenant ids in lower case. The config's ids are now folded to lower
	 * case (GUIDs and domains are case-insensitive); the store's rows were
	 * keyed by the config's text, so a config whose case changed made a
	 * second tenant of the same one (a second mirror, no links: its contacts
	 * created again in Syncro). Each tenant whose id has capitals is renamed
	 * to the lower-case id in every table, unless another row already has
	 * that id (the two are then left as they are: the upper-case one is no
	 * longer configured, and `entrasync tenants forget` deletes it). The
	 * foreign keys are checked at the commit, once the children follow;
	 * the counts the triggers keep are set right after. */
	"PRAGMA defer_foreign_keys = ON;\n"
	"CREATE TEMP TABLE tenant_case AS SELECT id AS old, lower(id) AS new FROM tenants\n"
	"  WHERE id <> lower(id) AND lower(id) IN (SELECT lower(id) FROM tenants GROUP BY lower(id) HAVING count(*) = 1);\n"
	"UPDATE tenants SET id = lower(id) WHERE id IN (SELECT old FROM tenant_case);\n"
	"UPDATE users SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE users_staging SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE groups SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE group_members SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE delta_state SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE links SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE license_snapshots SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE secure_score_snapshots SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE conflicts SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE intents SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE audit SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE billing_invoices SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE billing_intents SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE billing_schedule_lines SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"UPDATE ticket_actions SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	/* run_tenants_recounted moves each row's count; what is left on the old
	 * id (results the retention deleted) is moved after it */
	"UPDATE run_tenants SET tenant_id = lower(tenant_id) WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	"INSERT INTO tenant_run_counts (kind, tenant_id, status, n) SELECT kind, lower(tenant_id), status, n\n"
	"  FROM tenant_run_counts WHERE tenant_id IN (SELECT old FROM tenant_case) AND n > 0\n"
	"  ON CONFLICT (kind, tenant_id, status) DO UPDATE SET n = n + excluded.n;\n"
	"DELETE FROM tenant_run_counts WHERE tenant_id IN (SELECT old FROM tenant_case);\n"
	/* the tenant's key/value state ("graph.organization.<id>", "alert.ticket:<id>:<kind>", ...) */
	"UPDATE OR IGNORE kv SET key = replace(key, c.old, c.new) FROM tenant_case c WHERE instr(kv.key, c.old) > 0;\n"
	/* users_present_moved added each moved user to the renamed row, which already counted it */
	"UPDATE tenants SET users_present = (SELECT count(*) FROM users u WHERE u.tenant_id = tenants.id\n"
	"  AND u.removed IS NULL) WHERE id IN (SELECT new FROM tenant_case);\n"
	"DROP TABLE tenant_case;\n",

	/* 15: what a leaver's mark (an on_leave change) replaced: the values
	 * its fields had before it (JSON, like fields), so that a user back in
	 * scope has the mark taken out again (engine_plan.c); NULL = no mark. */
	"ALTER TABLE links ADD COLUMN marked TEXT;\n",
};

int store_schema_latest(void)
{
	return (int)ARRAY_LEN(migrations);
}

const char *store_schema_migration(int n)
{
	if (n < 1 || n > store_schema_latest()) return NULL;
	return migrations[n - 1];
}
