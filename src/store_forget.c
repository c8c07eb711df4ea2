/* store_forget — a tenant forgotten (see store_forget.h). Each kind of the
 * tenant's rows is counted, then deleted: the tables that reference
 * tenants(id) go with the tenant's row (ON DELETE CASCADE: users, staging,
 * groups and their members, delta state, links, licence and Secure Score
 * snapshots); the history tables that keep no foreign key (they outlive
 * what they mention) are deleted by tenant id. Shares the store's
 * connection and statement cache (store_stmt). */
#include "store_forget.h"
#include "store_sql.h"

#include <sqlite3.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* The tenant's key/value state: exact keys and the alerts' prefix. */
#define KV_OF_TENANT "key IN ('graph.organization.' || ?1, 'graph.secure_score.backfill_pending.' || ?1, " \
	"'securescore.profiles:' || ?1, 'securescore.profiles.day:' || ?1) " \
	"OR substr(key, 1, length(?1) + 14) = 'alert.ticket:' || ?1 || ':'"

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
 * n, else a statement that returns no row. */
static int run_step(struct store *st, const char *sql, const char *tenant_id, long long *n, const char *what,
                    struct err *err)
{
	sqlite3_stmt *s = store_stmt(st, sql, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	char label[64];
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
