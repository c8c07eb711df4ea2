/* store_billing — billing state and period usage in the store's database
 * (see store_billing.h), an extension file on the store's connection and
 * statement cache (store_sqlite, store_stmt). Statements are constant
 * strings; values are only ever bound. */
#include "store/store_billing.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/skus.h"
#include "store/store_sql.h"

enum sb_stmt {
	B_USAGE,
	B_INV_GET, B_INV_INTENT, B_INV_UPDATE, B_INV_EACH,
	B_INTENT_ADD, B_INTENT_FINISH, B_INTENT_OPEN, B_INTENT_COUNT,
	B_SCHED_KEYS, B_SCHED_PUT, B_SCHED_DELETE, B_SCHED_IDS, B_SCHED_OTHER,
	B__COUNT
};

#define INVOICE_COLS "tenant_id, period, customer_id, state, marker, invoice_id, number, plan, error, run_id, " \
	"created_at, updated_at"
#define INTENT_COLS "id, run_id, tenant_id, period, action, target, payload, state, result_id, error, created_at, " \
	"updated_at"

static const char *const sb_sql[B__COUNT] = {
	/* Per SKU over [first, last]: peaks and days, and the values of the
	 * tenant's last snapshot day in the range (0 when absent that day).
	 * Both scans use the primary key (tenant_id, day, sku_id). */
	[B_USAGE] =
		"WITH r AS (SELECT sku_id, max(sku_part_number) AS part, max(enabled) AS peak_enabled, "
		"  max(consumed) AS peak_consumed, count(*) AS days FROM license_snapshots "
		"  WHERE tenant_id = ?1 AND day BETWEEN ?2 AND ?3 GROUP BY sku_id), "
		"d AS (SELECT max(day) AS last FROM license_snapshots WHERE tenant_id = ?1 AND day BETWEEN ?2 AND ?3) "
		"SELECT r.sku_id, coalesce(s.sku_part_number, r.part), coalesce(s.enabled, 0), coalesce(s.consumed, 0), "
		"  r.peak_enabled, r.peak_consumed, r.days, d.last, coalesce(s.suspended, 0), coalesce(s.warning, 0), "
		"  coalesce(s.locked_out, 0), s.capability_status "
		"FROM r CROSS JOIN d LEFT JOIN license_snapshots s "
		"  ON s.tenant_id = ?1 AND s.day = d.last AND s.sku_id = r.sku_id ORDER BY 2, 1",
	[B_INV_GET] = "SELECT " INVOICE_COLS " FROM billing_invoices WHERE tenant_id = ?1 AND period = ?2",
	[B_INV_INTENT] = "INSERT INTO billing_invoices (tenant_id, period, customer_id, state, marker, plan, run_id, "
		"created_at, updated_at) VALUES (?1, ?2, ?3, 'pending', ?4, ?5, ?6, ?7, ?7) "
		"ON CONFLICT (tenant_id, period) DO UPDATE SET customer_id = excluded.customer_id, state = 'pending', "
		"marker = excluded.marker, plan = excluded.plan, run_id = excluded.run_id, invoice_id = NULL, "
		"number = NULL, error = NULL, created_at = excluded.created_at, updated_at = excluded.updated_at "
		"WHERE billing_invoices.state = 'failed'",
	[B_INV_UPDATE] = "UPDATE billing_invoices SET state = ?3, invoice_id = coalesce(?4, invoice_id), "
		"number = coalesce(?5, number), error = ?6, updated_at = ?7 WHERE tenant_id = ?1 AND period = ?2",
	[B_INV_EACH] = "SELECT " INVOICE_COLS " FROM billing_invoices WHERE ?1 IS NULL OR period = ?1 "
		"ORDER BY period, tenant_id",
	[B_INTENT_ADD] = "INSERT INTO billing_intents (run_id, tenant_id, period, action, target, payload, state, "
		"created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
	[B_INTENT_FINISH] = "UPDATE billing_intents SET state = ?2, result_id = ?3, error = ?4, updated_at = ?5 "
		"WHERE id = ?1",
	[B_INTENT_OPEN] = "SELECT " INTENT_COLS " FROM billing_intents WHERE state = 'pending' "
		"AND (?1 IS NULL OR tenant_id = ?1) ORDER BY id",
	[B_INTENT_COUNT] = "SELECT count(*) FROM billing_intents WHERE (?1 IS NULL OR tenant_id = ?1) "
		"AND (?2 IS NULL OR state = ?2)",
	[B_SCHED_KEYS] = "SELECT line_key FROM billing_schedule_lines WHERE tenant_id = ?1 AND schedule_id = ?2 "
		"ORDER BY line_key",
	[B_SCHED_PUT] = "INSERT OR REPLACE INTO billing_schedule_lines (tenant_id, schedule_id, line_key, line_item_id, "
		"updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
	[B_SCHED_DELETE] = "DELETE FROM billing_schedule_lines WHERE tenant_id = ?1 AND schedule_id = ?2 "
		"AND line_key = ?3",
	[B_SCHED_IDS] = "SELECT DISTINCT schedule_id FROM billing_schedule_lines WHERE tenant_id = ?1 ORDER BY schedule_id",
	[B_SCHED_OTHER] = "SELECT tenant_id FROM billing_schedule_lines WHERE schedule_id = ?1 AND tenant_id <> ?2 "
		"ORDER BY tenant_id LIMIT 1",
};

struct store_billing {
	struct store *st;
	bool in_group;             /* between store_billing_begin and its commit/rollback */
	bool own;                  /* that group is its own transaction (else a savepoint) */
};

void store_billing_close(struct store_billing *sb)
{
	free(sb);
}

int store_billing_open(struct store *st, struct store_billing **out, struct err *err)
{
	(void)err;
	struct store_billing *sb = xcalloc(1, sizeof *sb);
	sb->st = st;
	*out = sb;
	return 0;
}

/* The cached statement of query id (reset, bindings cleared), or NULL + err. */
static sqlite3_stmt *q_get(struct store_billing *sb, enum sb_stmt id, struct err *err)
{
	return store_stmt(sb->st, sb_sql[id], err);
}

int store_billing_begin(struct store_billing *sb, struct err *err)
{
	if (sb->in_group) return err_set(err, "store: billing: a unit of work is already open on this handle");
	if (store_atomic_begin(sb->st, &sb->own, err) != 0) return -1;
	sb->in_group = true;
	return 0;
}

int store_billing_commit(struct store_billing *sb, struct err *err)
{
	if (!sb->in_group) return err_set(err, "store: billing: commit without a unit of work");
	sb->in_group = false;
	return store_atomic_end(sb->st, sb->own, 0, err);
}

void store_billing_rollback(struct store_billing *sb)
{
	if (!sb->in_group) return;
	sb->in_group = false;
	store_atomic_end(sb->st, sb->own, -1, NULL);
}

/* An intent must be on disk before its request leaves: refused inside a
 * transaction (it would commit, if ever, only after the request). */
static int intent_autocommit(struct store_billing *sb, const char *what, struct err *err)
{
	if (!store_in_transaction(sb->st)) return 0;
	return err_set(err, "store: %s inside a transaction: a billing intent must be committed before its "
	               "request is sent", what);
}

/* What the row adapters for store_sql_rows hand rows to: one callback set. */
struct each_ctx {
	int (*usage_cb)(const struct billing_usage *u, void *ud);
	int (*invoice_cb)(const struct store_billing_invoice *inv, void *ud);
	int (*intent_cb)(const struct store_billing_intent *in, void *ud);
	void *ud;
	char *last_day;            /* usage: the last snapshot day seen, or NULL */
};

/* ---------------------------------------------------------------- usage */

static int usage_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	const char *sku_id = col_borrow(s, 0), *part = col_borrow(s, 1);
	struct billing_usage u = {
		.sku_id = sku_id, .part = part, .name = skus_friendly_name(sku_id, part),
		.purchased = sqlite3_column_int64(s, 2), .assigned = sqlite3_column_int64(s, 3),
		.peak_purchased = sqlite3_column_int64(s, 4), .peak_assigned = sqlite3_column_int64(s, 5),
		.days = sqlite3_column_int64(s, 6), .suspended = sqlite3_column_int64(s, 8),
		.warning = sqlite3_column_int64(s, 9), .locked_out = sqlite3_column_int64(s, 10),
		.capability_status = col_borrow(s, 11),
	};
	if (c->last_day && col_borrow(s, 7)) snprintf(c->last_day, 16, "%s", col_borrow(s, 7));
	return c->usage_cb(&u, c->ud);
}

int store_billing_usage_each(struct store_billing *sb, const char *tenant_id, const char *first, const char *last,
                             int (*cb)(const struct billing_usage *u, void *ud), void *ud, char *last_day,
                             struct err *err)
{
	if (last_day) last_day[0] = '\0';
	sqlite3_stmt *s = q_get(sb, B_USAGE, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, first);
	bind_text(s, 3, last);
	struct each_ctx c = { .usage_cb = cb, .ud = ud, .last_day = last_day };
	return store_sql_rows(s, usage_row, &c, err, "reading the licence snapshots");
}

/* ---------------------------------------------------------------- invoices */

/* A row of INVOICE_COLS, borrowed from the statement. */
static void invoice_row(sqlite3_stmt *s, struct store_billing_invoice *r)
{
	*r = (struct store_billing_invoice){
		.tenant_id = col_borrow(s, 0), .period = col_borrow(s, 1), .customer_id = sqlite3_column_int64(s, 2),
		.state = col_borrow(s, 3), .marker = col_borrow(s, 4), .invoice_id = sqlite3_column_int64(s, 5),
		.number = col_borrow(s, 6), .plan = col_borrow(s, 7), .error = col_borrow(s, 8),
		.run_id = sqlite3_column_int64(s, 9), .created_at = col_borrow(s, 10), .updated_at = col_borrow(s, 11),
	};
}

static const char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* A row of INVOICE_COLS, copied (for store_sql_lookup). */
static void invoice_copy(sqlite3_stmt *s, void *out)
{
	struct store_billing_invoice r, *o = out;
	invoice_row(s, &r);
	*o = r;
	o->tenant_id = dup_or_null(r.tenant_id);
	o->period = dup_or_null(r.period);
	o->state = dup_or_null(r.state);
	o->marker = dup_or_null(r.marker);
	o->number = dup_or_null(r.number);
	o->plan = dup_or_null(r.plan);
	o->error = dup_or_null(r.error);
	o->created_at = dup_or_null(r.created_at);
	o->updated_at = dup_or_null(r.updated_at);
}

static int invoice_each_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_billing_invoice r;
	invoice_row(s, &r);
	return c->invoice_cb(&r, c->ud);
}

int store_billing_invoice_get(struct store_billing *sb, const char *tenant_id, const char *period,
                              struct store_billing_invoice *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = q_get(sb, B_INV_GET, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, period);
	return store_sql_lookup(s, invoice_copy, out, err, "reading a billing invoice");
}

void store_billing_invoice_free(struct store_billing_invoice *inv)
{
	if (!inv) return;
	const char *const strs[] = { inv->tenant_id, inv->period, inv->state, inv->marker, inv->number, inv->plan,
	                             inv->error, inv->created_at, inv->updated_at };
	for (size_t i = 0; i < ARRAY_LEN(strs); i++) free((void *)(uintptr_t)strs[i]);
	memset(inv, 0, sizeof *inv);
}

int store_billing_invoice_intent(struct store_billing *sb, const struct store_billing_invoice *in, struct err *err)
{
	if (intent_autocommit(sb, "recording an invoice intent", err) != 0) return -1;
	sqlite3_stmt *s = q_get(sb, B_INV_INTENT, err);
	if (!s) return -1;
	char now[32];
	store_sql_now(now);
	bind_text(s, 1, in->tenant_id);
	bind_text(s, 2, in->period);
	sqlite3_bind_int64(s, 3, in->customer_id);
	bind_text(s, 4, in->marker);
	bind_text(s, 5, in->plan);
	bind_id(s, 6, in->run_id);
	bind_text(s, 7, now);
	if (store_sql_run(s, err, "recording an invoice intent") != 0) return -1;
	if (sqlite3_changes(store_sqlite(sb->st)) == 0)
		return err_set(err, "store: tenant %s already has an invoice for %s: a tenant is invoiced at most once "
		               "per period", in->tenant_id, in->period);
	return 0;
}

int store_billing_invoice_update(struct store_billing *sb, const char *tenant_id, const char *period,
                                 const char *state, long long invoice_id, const char *number, const char *error,
                                 struct err *err)
{
	sqlite3_stmt *s = q_get(sb, B_INV_UPDATE, err);
	if (!s) return -1;
	char now[32];
	store_sql_now(now);
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, period);
	bind_text(s, 3, state);
	bind_id(s, 4, invoice_id);
	bind_text(s, 5, number);
	bind_text(s, 6, error);
	bind_text(s, 7, now);
	if (store_sql_run(s, err, "updating a billing invoice") != 0) return -1;
	if (sqlite3_changes(store_sqlite(sb->st)) == 0)
		return err_set(err, "store: no billing invoice for %s in %s", tenant_id, period);
	return 0;
}

int store_billing_invoice_each(struct store_billing *sb, const char *period,
                               int (*cb)(const struct store_billing_invoice *inv, void *ud), void *ud,
                               struct err *err)
{
	sqlite3_stmt *s = q_get(sb, B_INV_EACH, err);
	if (!s) return -1;
	bind_text(s, 1, period);
	struct each_ctx c = { .invoice_cb = cb, .ud = ud };
	return store_sql_rows(s, invoice_each_row, &c, err, "reading billing invoices");
}

/* ---------------------------------------------------------------- intents */

int store_billing_intent_add(struct store_billing *sb, long long run_id, const char *tenant_id, const char *period,
                             const char *action, const char *target, const char *payload, long long *id,
                             struct err *err)
{
	if (intent_autocommit(sb, "recording a billing intent", err) != 0) return -1;
	sqlite3_stmt *s = q_get(sb, B_INTENT_ADD, err);
	if (!s) return -1;
	char now[32];
	store_sql_now(now);
	bind_id(s, 1, run_id);
	bind_text(s, 2, tenant_id);
	bind_text(s, 3, period);
	bind_text(s, 4, action);
	bind_text(s, 5, target);
	bind_text(s, 6, payload);
	bind_text(s, 7, now);
	if (store_sql_run(s, err, "recording a billing intent") != 0) return -1;
	if (id) *id = sqlite3_last_insert_rowid(store_sqlite(sb->st));
	return 0;
}

int store_billing_intent_finish(struct store_billing *sb, long long id, const char *state, long long result_id,
                                const char *error, struct err *err)
{
	sqlite3_stmt *s = q_get(sb, B_INTENT_FINISH, err);
	if (!s) return -1;
	char now[32];
	store_sql_now(now);
	sqlite3_bind_int64(s, 1, id);
	bind_text(s, 2, state);
	bind_id(s, 3, result_id);
	bind_text(s, 4, error);
	bind_text(s, 5, now);
	return store_sql_run(s, err, "closing a billing intent");
}

static int intent_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_billing_intent in = {
		.id = sqlite3_column_int64(s, 0), .run_id = sqlite3_column_int64(s, 1), .tenant_id = col_borrow(s, 2),
		.period = col_borrow(s, 3), .action = col_borrow(s, 4), .target = col_borrow(s, 5),
		.payload = col_borrow(s, 6), .state = col_borrow(s, 7), .result_id = sqlite3_column_int64(s, 8),
		.error = col_borrow(s, 9), .created_at = col_borrow(s, 10), .updated_at = col_borrow(s, 11),
	};
	return c->intent_cb(&in, c->ud);
}

int store_billing_intent_each_open(struct store_billing *sb, const char *tenant_id,
                                   int (*cb)(const struct store_billing_intent *in, void *ud), void *ud,
                                   struct err *err)
{
	sqlite3_stmt *s = q_get(sb, B_INTENT_OPEN, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	struct each_ctx c = { .intent_cb = cb, .ud = ud };
	return store_sql_rows(s, intent_row, &c, err, "reading billing intents");
}

int store_billing_intent_count(struct store_billing *sb, const char *tenant_id, const char *state, long long *n,
                               struct err *err)
{
	*n = 0;
	sqlite3_stmt *s = q_get(sb, B_INTENT_COUNT, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, state);
	return store_sql_count(s, n, err, "counting billing intents");
}

/* ---------------------------------------------------------------- schedule lines */

/* The keys read so far (store_billing_sched_keys' outputs). */
struct key_list {
	char ***keys;
	size_t *n;
};

static int key_row(sqlite3_stmt *s, void *ctx)
{
	struct key_list *l = ctx;
	*l->keys = xrealloc(*l->keys, (*l->n + 1) * sizeof **l->keys);
	(*l->keys)[(*l->n)++] = xstrdup(col_borrow(s, 0) ? col_borrow(s, 0) : "");
	return 0;
}

int store_billing_sched_keys(struct store_billing *sb, const char *tenant_id, long long schedule_id, char ***keys,
                             size_t *n, struct err *err)
{
	*keys = NULL;
	*n = 0;
	sqlite3_stmt *s = q_get(sb, B_SCHED_KEYS, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	sqlite3_bind_int64(s, 2, schedule_id);
	struct key_list l = { keys, n };
	return store_sql_rows(s, key_row, &l, err, "reading managed schedule lines");
}

int store_billing_sched_put(struct store_billing *sb, const char *tenant_id, long long schedule_id,
                            const char *key, long long line_item_id, struct err *err)
{
	sqlite3_stmt *s = q_get(sb, B_SCHED_PUT, err);
	if (!s) return -1;
	char now[32];
	store_sql_now(now);
	bind_text(s, 1, tenant_id);
	sqlite3_bind_int64(s, 2, schedule_id);
	bind_text(s, 3, key);
	bind_id(s, 4, line_item_id);
	bind_text(s, 5, now);
	return store_sql_run(s, err, "recording a managed schedule line");
}

int store_billing_sched_delete(struct store_billing *sb, const char *tenant_id, long long schedule_id,
                               const char *key, struct err *err)
{
	sqlite3_stmt *s = q_get(sb, B_SCHED_DELETE, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	sqlite3_bind_int64(s, 2, schedule_id);
	bind_text(s, 3, key);
	return store_sql_run(s, err, "forgetting a managed schedule line");
}

/* The ids read so far (store_billing_sched_ids' outputs). */
struct id_list {
	long long **ids;
	size_t *n;
};

static int id_row(sqlite3_stmt *s, void *ctx)
{
	struct id_list *l = ctx;
	*l->ids = xrealloc(*l->ids, (*l->n + 1) * sizeof **l->ids);
	(*l->ids)[(*l->n)++] = sqlite3_column_int64(s, 0);
	return 0;
}

int store_billing_sched_ids(struct store_billing *sb, const char *tenant_id, long long **ids, size_t *n,
                            struct err *err)
{
	*ids = NULL;
	*n = 0;
	sqlite3_stmt *s = q_get(sb, B_SCHED_IDS, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	struct id_list l = { ids, n };
	return store_sql_rows(s, id_row, &l, err, "reading managed schedules");
}

int store_billing_sched_other(struct store_billing *sb, long long schedule_id, const char *tenant_id, char **other,
                              struct err *err)
{
	*other = NULL;
	sqlite3_stmt *s = q_get(sb, B_SCHED_OTHER, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, schedule_id);
	bind_text(s, 2, tenant_id);
	char **keys = NULL;
	size_t n = 0;
	struct key_list l = { &keys, &n };
	int rc = store_sql_rows(s, key_row, &l, err, "reading managed schedule lines");
	if (n) *other = keys[0];
	free(keys);
	return rc;
}

/* ---------------------------------------------------------------- audit */

int store_billing_audit(struct store_billing *sb, const struct store_audit *a, struct err *err)
{
	return store_audit_append(sb->st, a, NULL, err);
}
