/* store_tenants — a tenant's rows as a whole (see store_tenants.h).
 * Forgotten: each kind of the tenant's rows is counted, then deleted: the
 * tables that reference tenants(id) go with the tenant's row (ON DELETE
 * CASCADE: users, staging, groups and their members, delta state, links,
 * licence and Secure Score snapshots); the history tables that keep no
 * foreign key (they outlive what they mention) are deleted by tenant id.
 * Renamed: every table's rows moved to the new id, the foreign keys checked
 * at the commit. Shares the store's connection and statement cache
 * (store_stmt). */
#include "store/store_tenants.h"
#include "store/store_sql.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The tenant ?1's key/value state: keys that end with its id (written by
 * graph_pull.c and store_history.c), and its alerts' tickets
 * ("alert.ticket:<id>:<kind>"). */
#define KV_KEYS_ENDING_IN_ID "key IN ('graph.organization.' || ?1, 'graph.secure_score.backfill_pending.' || ?1, " \
	"'securescore.profiles:' || ?1, 'securescore.profiles.day:' || ?1)"
#define KV_ALERT_KEYS "substr(key, 1, length(?1) + 14) = 'alert.ticket:' || ?1 || ':'"
#define KV_OF_TENANT KV_KEYS_ENDING_IN_ID " OR " KV_ALERT_KEYS

/* One kind of the tenant's rows: its count (?1 = the tenant id) into the
 * field at offset field (added to it), and its delete, NULL for the rows
 * the tenant's own row takes with it (cascade). */
struct forget_step {
	const char *count;
	const char *del;
	size_t field;
	const char *what;
};

static const char SQL_TENANT_DELETE[] = "DELETE FROM tenants WHERE id = ?1";
static const char SQL_TENANT_EXISTS[] = "SELECT count(*) FROM tenants WHERE id = ?1";

static const struct forget_step steps[] = {
	{ "SELECT count(*) FROM users WHERE tenant_id = ?1", NULL, offsetof(struct store_forgotten, users), "users" },
	{ "SELECT count(*) FROM groups WHERE tenant_id = ?1", NULL, offsetof(struct store_forgotten, groups), "groups" },
	{ "SELECT count(*) FROM group_members WHERE tenant_id = ?1", NULL, offsetof(struct store_forgotten, memberships),
	  "group members" },
	{ "SELECT count(*) FROM links WHERE tenant_id = ?1", NULL, offsetof(struct store_forgotten, links), "links" },
	{ "SELECT count(DISTINCT day) FROM license_snapshots WHERE tenant_id = ?1", NULL,
	  offsetof(struct store_forgotten, license_days), "licence days" },
	{ "SELECT count(*) FROM license_snapshots WHERE tenant_id = ?1", NULL,
	  offsetof(struct store_forgotten, license_rows), "licence rows" },
	{ "SELECT count(*) FROM secure_score_snapshots WHERE tenant_id = ?1", NULL,
	  offsetof(struct store_forgotten, score_days), "Secure Score days" },
	{ "SELECT count(*) FROM conflicts WHERE tenant_id = ?1", "DELETE FROM conflicts WHERE tenant_id = ?1",
	  offsetof(struct store_forgotten, conflicts), "conflicts" },
	{ "SELECT count(*) FROM intents WHERE tenant_id = ?1 AND state IN ('pending', 'sent')", NULL,
	  offsetof(struct store_forgotten, intents_open), "unfinished intents" },
	{ "SELECT count(*) FROM intents WHERE tenant_id = ?1", "DELETE FROM intents WHERE tenant_id = ?1",
	  offsetof(struct store_forgotten, intents), "intents" },
	{ "SELECT count(*) FROM run_tenants WHERE tenant_id = ?1", "DELETE FROM run_tenants WHERE tenant_id = ?1",
	  offsetof(struct store_forgotten, run_results), "run results" },
	{ NULL, "DELETE FROM tenant_run_counts WHERE tenant_id = ?1", 0, "run counters" },
	{ "SELECT count(*) FROM billing_invoices WHERE tenant_id = ?1", "DELETE FROM billing_invoices WHERE tenant_id = ?1",
	  offsetof(struct store_forgotten, billing), "billing invoices" },
	{ "SELECT count(*) FROM billing_intents WHERE tenant_id = ?1", "DELETE FROM billing_intents WHERE tenant_id = ?1",
	  offsetof(struct store_forgotten, billing), "billing intents" },
	{ "SELECT count(*) FROM billing_schedule_lines WHERE tenant_id = ?1",
	  "DELETE FROM billing_schedule_lines WHERE tenant_id = ?1", offsetof(struct store_forgotten, billing),
	  "recurring-invoice lines" },
	{ "SELECT count(*) FROM ticket_actions WHERE tenant_id = ?1", "DELETE FROM ticket_actions WHERE tenant_id = ?1",
	  offsetof(struct store_forgotten, ticket_actions), "ticket actions" },
	{ "SELECT count(*) FROM kv WHERE " KV_OF_TENANT, "DELETE FROM kv WHERE " KV_OF_TENANT,
	  offsetof(struct store_forgotten, state_keys), "state keys" },
};

static const char SQL_AUDIT_COUNT[] = "SELECT count(*) FROM audit WHERE tenant_id = ?1";
static const char SQL_AUDIT_DELETE[] = "DELETE FROM audit WHERE tenant_id = ?1";

/* Steps sql (a string constant) with ?1 = tenant_id: a count into *n when
 * n, else a statement that returns no row. Failures read "store: forget:
 * counting WHAT: ..." (or deleting). */
static int run_step(struct store *st, const char *sql, const char *tenant_id, long long *n, const char *what,
                    struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, sql, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	char label[80];
	snprintf(label, sizeof label, "forget: %s %s", n ? "counting" : "deleting", what);
	return n ? store_sql_count(s, n, err, label) : store_sql_run(s, err, label);
}

int store_tenant_forget(struct store *st, const char *tenant_id, bool with_audit, bool dry_run,
                        struct store_forgotten *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	if (store_begin(st, err) != 0) return -1;
	int rc = -1;
	long long exists = 0;
	if (run_step(st, SQL_TENANT_EXISTS, tenant_id, &exists, "the tenant", err) != 0) goto out;
	if (!exists) {
		rc = STORE_NOTFOUND;
		goto out;
	}
	for (size_t i = 0; i < ARRAY_LEN(steps); i++) {
		const struct forget_step *f = &steps[i];
		if (f->count) {
			long long n = 0;
			if (run_step(st, f->count, tenant_id, &n, f->what, err) != 0) goto out;
			*(long long *)((char *)out + f->field) += n;
		}
		if (f->del && run_step(st, f->del, tenant_id, NULL, f->what, err) != 0) goto out;
	}
	if (run_step(st, SQL_AUDIT_COUNT, tenant_id, &out->audit, "audit rows", err) != 0) goto out;
	if (with_audit && run_step(st, SQL_AUDIT_DELETE, tenant_id, NULL, "audit rows", err) != 0) goto out;
	if (run_step(st, SQL_TENANT_DELETE, tenant_id, NULL, "the tenant", err) != 0) goto out;
	rc = 0;
out:;
	struct err ignored;
	if (rc != 0 || dry_run) {
		if (store_rollback(st, rc < 0 ? &ignored : err) != 0 && rc >= 0) rc = -1;
	} else if (store_commit(st, err) != 0) {
		rc = -1;
	}
	if (rc < 0) memset(out, 0, sizeof *out);
	return rc;
}

/* ---- the same tenant under another id -------------------------------------- */

/* The other tenant rows whose stored organization is ?1's (by id or by a
 * verified domain), the one synced (else pulled) last first. */
static const char SQL_SAME_AS[] =
	"SELECT t.id FROM tenants t JOIN kv ON kv.key = 'graph.organization.' || t.id "
	"WHERE t.id <> ?1 AND json_valid(kv.value) AND (lower(json_extract(kv.value, '$.id')) = ?1 "
	"OR EXISTS (SELECT 1 FROM json_each(kv.value, '$.verifiedDomains') d "
	"WHERE lower(json_extract(d.value, '$.name')) = ?1)) "
	"ORDER BY coalesce(t.last_sync_at, t.last_pull_at) DESC, t.last_pull_at DESC, t.id";

int store_tenant_same_as(struct store *st, const char *id, char **other, int *more, struct err *err)
{
	*other = NULL;
	*more = 0;
	sqlite3_stmt *s = store_stmt(st, SQL_SAME_AS, err);
	if (!s) return -1;
	bind_text(s, 1, id);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (!*other) *other = col_dup(s, 0);
		else ++*more;
	}
	int ret = 0;
	if (rc != SQLITE_DONE) {
		ret = store_sql_fail(s, err, "finding the tenant under another id");
		free(*other);
		*other = NULL;
	}
	store_sql_release(s);
	return ret != 0 ? ret : *other ? 0 : STORE_NOTFOUND;
}

/* Each table's rows moved from ?1 to ?2 (run_tenants_recounted moves each
 * result's count, users_present_moved counts each user again: both set
 * right after). */
static const char *const SQL_REKEY[] = {
	"UPDATE tenants SET id = ?2 WHERE id = ?1",
	"UPDATE users SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE users_staging SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE groups SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE group_members SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE delta_state SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE links SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE license_snapshots SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE secure_score_snapshots SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE conflicts SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE intents SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE audit SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE billing_invoices SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE billing_intents SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE billing_schedule_lines SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE ticket_actions SET tenant_id = ?2 WHERE tenant_id = ?1",
	"UPDATE run_tenants SET tenant_id = ?2 WHERE tenant_id = ?1",
	/* what is left on the old id: results the retention deleted */
	"INSERT INTO tenant_run_counts (kind, tenant_id, status, n) SELECT kind, ?2, status, n FROM tenant_run_counts "
	"WHERE tenant_id = ?1 AND n > 0 ON CONFLICT (kind, tenant_id, status) DO UPDATE SET n = n + excluded.n",
	"DELETE FROM tenant_run_counts WHERE tenant_id = ?1",
	/* the key/value state: "<prefix><id>" and "alert.ticket:<id>:<kind>" */
	"UPDATE OR REPLACE kv SET key = substr(key, 1, length(key) - length(?1)) || ?2 WHERE " KV_KEYS_ENDING_IN_ID,
	"UPDATE OR REPLACE kv SET key = 'alert.ticket:' || ?2 || substr(key, length(?1) + 14) WHERE " KV_ALERT_KEYS,
	"UPDATE tenants SET users_present = (SELECT count(*) FROM users u WHERE u.tenant_id = ?2 AND u.removed IS NULL) "
	"WHERE id = ?2",
};

int store_tenant_rekey(struct store *st, const char *from, const char *to, struct err *err)
{
	if (store_begin(st, err) != 0) return -1;
	int rc = -1;
	long long taken = 0;
	sqlite3_stmt *q = store_stmt(st, SQL_TENANT_EXISTS, err);
	if (!q) goto out;
	bind_text(q, 1, to);
	if (store_sql_count(q, &taken, err, "renaming a tenant: reading the new id") != 0) goto out;
	if (taken) {
		err_set(err, "store: renaming tenant %s to %s: %s is a tenant already", from, to, to);
		goto out;
	}
	/* the tenant row and its children move in turn: the keys are checked at the commit */
	if (sqlite3_exec(store_sqlite(st), "PRAGMA defer_foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK) {
		err_set(err, "store: renaming tenant %s: %s", from, sqlite3_errmsg(store_sqlite(st)));
		goto out;
	}
	for (size_t i = 0; i < ARRAY_LEN(SQL_REKEY); i++) {
		sqlite3_stmt *s = store_stmt(st, SQL_REKEY[i], err);
		if (!s) goto out;
		bind_text(s, 1, from);
		bind_text(s, 2, to);
		if (store_sql_run(s, err, "renaming a tenant") != 0) goto out;
	}
	rc = store_commit(st, err);   /* the deferred foreign keys are checked here */
out:
	if (rc != 0) {
		struct err ignored;
		store_rollback(st, &ignored);   /* a failed COMMIT can leave the transaction open */
	}
	return rc;
}

static const char SQL_ORG_ID[] =
	"SELECT lower(json_extract(value, '$.id')) FROM kv WHERE key = 'graph.organization.' || ?1 AND json_valid(value) "
	"AND json_type(value, '$.id') = 'text'";

static void org_read(sqlite3_stmt *s, void *out)
{
	*(char **)out = col_dup(s, 0);
}

int store_tenant_org_id(struct store *st, const char *tenant_id, char **org, struct err *err)
{
	*org = NULL;
	sqlite3_stmt *s = store_stmt(st, SQL_ORG_ID, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	return store_sql_lookup(s, org_read, org, err, "reading the tenant's organization");
}

int store_tenant_twins(struct store *st, const struct config_tenant *tenants, size_t n, size_t *twin,
                       struct err *err)
{
	int rc = -1;
	char **orgs = xcalloc(n + 1, sizeof *orgs);
	for (size_t i = 0; i < n; i++)
		if (store_tenant_org_id(st, tenants[i].id, &orgs[i], err) < 0) goto out;
	for (size_t i = 0; i < n; i++) {
		twin[i] = n;
		for (size_t j = 0; j < n && orgs[i] && twin[i] == n; j++)
			if (j != i && orgs[j] && strcmp(orgs[i], orgs[j]) == 0) twin[i] = j;
	}
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) free(orgs[i]);
	free(orgs);
	return rc;
}
