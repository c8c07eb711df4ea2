/* store_status — read queries for the operator commands and the metrics
 * file, on the store's connection and statement cache (store_stmt). Each
 * query steps its statement to the end (or to a callback's stop) and
 * resets it. */
#include "store/store_status.h"
#include "store/store_sql.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

enum status_stmt {
	Q_TENANTS, Q_TENANT, Q_AUDIT, Q_AUDIT_NEWEST, Q_CONFLICTS, Q_USER_BY_ID, Q_USER_BY_NAME,
	Q_RUN_COUNTS, Q_RUN_LATEST, Q_RUN_NEWEST, Q_TENANT_RUN_COUNTS, Q_WRITE_COUNTS, Q_KV_PREFIX, Q_DB_SIZE, Q_FAILING,
	Q__COUNT
};

/* The latest run_tenants row of tenant t in runs of kind k, joined with its
 * run: the tenant's runs walked from the newest (run_tenants_by_tenant) to
 * the first of that kind, not all of them. */
#define LAST_RUN(alias, r, k) \
	"LEFT JOIN run_tenants " alias " ON " alias ".tenant_id = t.id AND " alias ".run_id = " \
	"(SELECT x.run_id FROM run_tenants x JOIN runs y ON y.id = x.run_id " \
	"WHERE x.tenant_id = t.id AND y.kind = '" k "' ORDER BY x.run_id DESC LIMIT 1) " \
	"LEFT JOIN runs " r " ON " r ".id = " alias ".run_id "
#define RUN_COLS(alias, r) alias ".run_id, " r ".started_at, " r ".finished_at, " r ".status, " alias ".status, " \
	alias ".counts, " alias ".reason"
#define AUDIT_SELECT "SELECT a.id, a.at, a.run_id, a.tenant_id, a.object_id, a.contact_id, a.action, a.before, " \
	"a.after, a.actor, a.result, coalesce(json_extract(u.json, '$.displayName'), " \
	"json_extract(u.json, '$.userPrincipalName')) FROM audit a LEFT JOIN users u " \
	"ON u.tenant_id = a.tenant_id AND u.object_id = a.object_id WHERE (?1 IS NULL OR a.tenant_id = ?1) " \
	"AND (?2 IS NULL OR a.at >= ?2) AND (?3 IS NULL OR a.contact_id = ?3) AND (?4 IS NULL OR a.object_id = ?4) " \
	"AND (?5 IS NULL OR a.run_id = ?5) "

#define TENANT_SELECT "SELECT t.id, t.name, t.default_domain, t.syncro_customer_id, t.last_pull_at, " \
	"t.last_sync_at, t.last_status, t.last_error, " \
	"t.users_present, "   /* kept by triggers (migration 8) */ \
	"(SELECT count(*) FROM users u WHERE u.tenant_id = t.id AND u.removed IS NOT NULL), " \
	"(SELECT count(*) FROM links l WHERE l.tenant_id = t.id), " \
	"(SELECT count(*) FROM conflicts c WHERE c.tenant_id = t.id AND c.resolved_at IS NULL), " \
	"(SELECT count(*) FROM intents i WHERE i.tenant_id = t.id AND i.state IN ('pending', 'sent')), " \
	RUN_COLS("p", "pr") ", " RUN_COLS("s", "sr") ", " \
	/* the newest pull or sync that reached the tenant (ok or held), walked from the newest */ \
	"(SELECT coalesce(y.finished_at, y.started_at) FROM run_tenants x JOIN runs y ON y.id = x.run_id " \
	"WHERE x.tenant_id = t.id AND y.kind IN ('pull', 'sync') AND x.status IN ('ok', 'held') " \
	"ORDER BY x.run_id DESC LIMIT 1) FROM tenants t " \
	LAST_RUN("p", "pr", "pull") LAST_RUN("s", "sr", "sync")

static const char *const status_sql[Q__COUNT] = {
	[Q_TENANTS] = TENANT_SELECT "ORDER BY t.id",
	/* one tenant by its key (a "?1 IS NULL OR" would read every tenant) */
	[Q_TENANT] = TENANT_SELECT "WHERE t.id = ?1",
	[Q_AUDIT] = AUDIT_SELECT "ORDER BY a.id ASC LIMIT ?6",
	[Q_AUDIT_NEWEST] = AUDIT_SELECT "ORDER BY a.id DESC LIMIT ?6",
	[Q_CONFLICTS] = "SELECT c.id, c.tenant_id, c.object_id, c.candidates, c.reason, c.opened_at, "
		"json_extract(u.json, '$.displayName'), json_extract(u.json, '$.mail'), "
		"json_extract(u.json, '$.userPrincipalName'), l.contact_id, l.customer_id FROM conflicts c "
		"LEFT JOIN users u ON u.tenant_id = c.tenant_id AND u.object_id = c.object_id "
		"LEFT JOIN links l ON l.tenant_id = c.tenant_id AND l.object_id = c.object_id "
		"WHERE c.resolved_at IS NULL AND (?1 IS NULL OR c.tenant_id = ?1) ORDER BY c.id",
	[Q_USER_BY_ID] = "SELECT object_id FROM users WHERE tenant_id = ?1 AND object_id = ?2",
	[Q_USER_BY_NAME] = "SELECT object_id, json_extract(json, '$.userPrincipalName') FROM users "
		"WHERE tenant_id = ?1 AND (lower(json_extract(json, '$.userPrincipalName')) = lower(?2) "
		"OR lower(json_extract(json, '$.mail')) = lower(?2)) ORDER BY removed IS NOT NULL, object_id LIMIT 6",
	[Q_RUN_COUNTS] = "SELECT kind, status, n FROM run_counts WHERE n > 0 ORDER BY kind, status",
	[Q_RUN_NEWEST] = "SELECT id, kind, started_at, status FROM runs ORDER BY id DESC LIMIT 1",
	[Q_RUN_LATEST] = "SELECT r.kind, r.started_at, r.finished_at, r.status, "
		"(SELECT max(o.finished_at) FROM runs o WHERE o.kind = r.kind AND o.status = 'ok'), "
		"(SELECT max(o.finished_at) FROM runs o WHERE o.kind = r.kind AND o.status IN ('ok', 'partial')) "
		"FROM runs r WHERE r.id = (SELECT max(z.id) FROM runs z WHERE z.kind = r.kind AND z.finished_at IS NOT NULL) "
		"ORDER BY r.kind",
	/* kept by triggers (migration 11) */
	[Q_TENANT_RUN_COUNTS] = "SELECT kind, tenant_id, status, n FROM tenant_run_counts WHERE n > 0 ORDER BY 1, 2, 3",
	[Q_WRITE_COUNTS] = "SELECT action, outcome, n FROM write_counts WHERE n > 0 ORDER BY 1, 2",
	[Q_KV_PREFIX] = "SELECT key, value FROM kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
	[Q_DB_SIZE] = "SELECT c.page_count * s.page_size, f.freelist_count * s.page_size "
		"FROM pragma_page_count() c, pragma_freelist_count() f, pragma_page_size() s",
	/* the tenant's pull and sync results, newest first (run_tenants_by_tenant) */
	[Q_FAILING] = "SELECT t.status, r.started_at, t.reason, coalesce(r.finished_at, r.started_at) "
		"FROM run_tenants t JOIN runs r ON r.id = t.run_id "
		"WHERE t.tenant_id = ?1 AND r.kind IN ('pull', 'sync') ORDER BY t.run_id DESC",
};

/* The cached statement id. */
static sqlite3_stmt *q_get(struct store *st, enum status_stmt id, struct err *err)
{
	return store_stmt(st, status_sql[id], err);
}

/* ---------------------------------------------------------------- tenants */

struct tenant_iter {
	int (*cb)(const struct store_status_tenant *t, void *ud);
	void *ud;
	long long rows;
};

static void run_read(sqlite3_stmt *s, int c, struct store_status_run *r)
{
	r->run_id = sqlite3_column_int64(s, c);
	r->started_at = col_borrow(s, c + 1);
	r->finished_at = col_borrow(s, c + 2);
	r->run_status = col_borrow(s, c + 3);
	r->status = col_borrow(s, c + 4);
	r->counts = col_borrow(s, c + 5);
	r->reason = col_borrow(s, c + 6);
}

static int tenant_row(sqlite3_stmt *s, void *ud)
{
	struct tenant_iter *it = ud;
	struct store_status_tenant t = {
		.id = col_borrow(s, 0), .name = col_borrow(s, 1), .default_domain = col_borrow(s, 2),
		.syncro_customer_id = sqlite3_column_int64(s, 3), .last_pull_at = col_borrow(s, 4), .last_sync_at = col_borrow(s, 5),
		.last_status = col_borrow(s, 6), .last_error = col_borrow(s, 7), .users_present = sqlite3_column_int64(s, 8),
		.users_removed = sqlite3_column_int64(s, 9), .links = sqlite3_column_int64(s, 10),
		.conflicts_open = sqlite3_column_int64(s, 11), .intents_open = sqlite3_column_int64(s, 12),
	};
	run_read(s, 13, &t.pull);
	run_read(s, 20, &t.sync);
	t.last_reached_at = col_borrow(s, 27);
	it->rows++;
	return it->cb(&t, it->ud);
}

int store_status_tenant_each(struct store *st, const char *tenant_id,
                             int (*cb)(const struct store_status_tenant *t, void *ud), void *ud, struct err *err)
{
	struct tenant_iter it = { cb, ud, 0 };
	sqlite3_stmt *s = q_get(st, tenant_id ? Q_TENANT : Q_TENANTS, err);
	if (!s) return -1;
	if (tenant_id) bind_text(s, 1, tenant_id);
	int rc = store_sql_rows(s, tenant_row, &it, err, "tenant status");
	if (rc == 0 && tenant_id && it.rows == 0) return STORE_NOTFOUND;
	return rc;
}

int store_status_failing_get(struct store *st, const char *tenant_id, struct store_status_failing *out,
                             struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = q_get(st, Q_FAILING, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *status = col_borrow(s, 0);
		if (!status || strcmp(status, "failed") != 0) {
			/* ok or held: the last time the tenant was reached, before the failures */
			if (out->runs && status) out->last_reached = col_dup(s, 3);
			break;
		}
		if (out->runs++ == 0) out->reason = col_dup(s, 2);
		free(out->since);
		out->since = col_dup(s, 1);
	}
	int ret = 0;
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		ret = store_sql_fail(s, err, "reading the tenant's failed runs");
		store_status_failing_free(out);
	}
	store_sql_release(s);
	return ret;
}

void store_status_failing_free(struct store_status_failing *f)
{
	if (!f) return;
	free(f->since);
	free(f->reason);
	free(f->last_reached);
	memset(f, 0, sizeof *f);
}

/* ---------------------------------------------------------------- audit */

struct audit_iter {
	int (*cb)(const struct store_audit *a, const char *user_name, void *ud);
	void *ud;
};

static int audit_row(sqlite3_stmt *s, void *ud)
{
	struct audit_iter *it = ud;
	struct store_audit a = {
		.id = sqlite3_column_int64(s, 0), .at = col_borrow(s, 1), .run_id = sqlite3_column_int64(s, 2),
		.tenant_id = col_borrow(s, 3), .object_id = col_borrow(s, 4), .contact_id = sqlite3_column_int64(s, 5),
		.action = col_borrow(s, 6), .before = col_borrow(s, 7), .after = col_borrow(s, 8), .actor = col_borrow(s, 9), .result = col_borrow(s, 10),
	};
	return it->cb(&a, col_borrow(s, 11), it->ud);
}

int store_status_audit_each(struct store *st, const struct store_status_audit_filter *f,
                            int (*cb)(const struct store_audit *a, const char *user_name, void *ud), void *ud,
                            struct err *err)
{
	static const struct store_status_audit_filter all = { 0 };
	if (!f) f = &all;
	struct audit_iter it = { cb, ud };
	sqlite3_stmt *s = q_get(st, f->newest_first ? Q_AUDIT_NEWEST : Q_AUDIT, err);
	if (!s) return -1;
	bind_text(s, 1, f->tenant_id);
	bind_text(s, 2, f->since);
	bind_id(s, 3, f->contact_id);
	bind_text(s, 4, f->object_id);
	bind_id(s, 5, f->run_id);
	sqlite3_bind_int64(s, 6, f->limit > 0 ? f->limit : -1);
	return store_sql_rows(s, audit_row, &it, err, "audit");
}

/* ---------------------------------------------------------------- conflicts */

struct conflict_iter {
	int (*cb)(const struct store_status_conflict *c, void *ud);
	void *ud;
};

static int conflict_row(sqlite3_stmt *s, void *ud)
{
	struct conflict_iter *it = ud;
	struct store_status_conflict c = {
		.id = sqlite3_column_int64(s, 0), .tenant_id = col_borrow(s, 1), .object_id = col_borrow(s, 2),
		.candidates = col_borrow(s, 3), .reason = col_borrow(s, 4), .opened_at = col_borrow(s, 5), .display_name = col_borrow(s, 6),
		.mail = col_borrow(s, 7), .upn = col_borrow(s, 8), .linked_contact = sqlite3_column_int64(s, 9),
		.linked_customer = sqlite3_column_int64(s, 10),
	};
	return it->cb(&c, it->ud);
}

int store_status_conflict_each(struct store *st, const char *tenant_id,
                               int (*cb)(const struct store_status_conflict *c, void *ud), void *ud,
                               struct err *err)
{
	struct conflict_iter it = { cb, ud };
	sqlite3_stmt *s = q_get(st, Q_CONFLICTS, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	return store_sql_rows(s, conflict_row, &it, err, "conflicts");
}

/* ---------------------------------------------------------------- users */

struct user_matches {
	char *ids[6];
	char *names[6];
	size_t n;
};

static int user_match_row(sqlite3_stmt *s, void *ud)
{
	struct user_matches *m = ud;
	if (m->n < ARRAY_LEN(m->ids)) {
		const char *upn = sqlite3_column_count(s) > 1 ? col_borrow(s, 1) : NULL;
		m->ids[m->n] = xstrdup(col_borrow(s, 0));
		m->names[m->n] = upn ? xstrdup(upn) : NULL;
		m->n++;
	}
	return 0;
}

static void user_matches_free(struct user_matches *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->ids[i]);
		free(m->names[i]);
	}
	m->n = 0;
}

int store_status_user_find(struct store *st, const char *tenant_id, const char *who, char **object_id,
                           struct err *err)
{
	struct user_matches m = { 0 };
	int rc;
	*object_id = NULL;
	for (int pass = 0; pass < 2 && m.n == 0; pass++) {
		sqlite3_stmt *s = q_get(st, pass == 0 ? Q_USER_BY_ID : Q_USER_BY_NAME, err);
		if (!s) return -1;
		bind_text(s, 1, tenant_id);
		bind_text(s, 2, who);
		rc = store_sql_rows(s, user_match_row, &m, err, "user find");
		if (rc) goto out;
	}
	if (m.n == 0) {
		rc = STORE_NOTFOUND;
	} else if (m.n == 1) {
		*object_id = m.ids[0];
		m.ids[0] = NULL;
		rc = 0;
	} else {
		struct buf b = { 0 };
		for (size_t i = 0; i < m.n; i++)
			buf_printf(&b, "%s%s%s%s%s", i ? ", " : "", m.ids[i], m.names[i] ? " (" : "",
			           m.names[i] ? m.names[i] : "", m.names[i] ? ")" : "");
		rc = err_set(err, "'%s' matches several users of tenant %s: %s; give the object id", who, tenant_id,
		             b.data);
		buf_free(&b);
	}
out:
	user_matches_free(&m);
	return rc;
}

/* ---------------------------------------------------------------- metrics */

struct count_iter {
	int (*cb2)(const char *a, const char *b, long long n, void *ud);
	int (*cb3)(const char *a, const char *b, const char *c, long long n, void *ud);
	void *ud;
};

static int count2_row(sqlite3_stmt *s, void *ud)
{
	struct count_iter *it = ud;
	return it->cb2(col_borrow(s, 0), col_borrow(s, 1), sqlite3_column_int64(s, 2), it->ud);
}

static int count3_row(sqlite3_stmt *s, void *ud)
{
	struct count_iter *it = ud;
	return it->cb3(col_borrow(s, 0), col_borrow(s, 1), col_borrow(s, 2), sqlite3_column_int64(s, 3), it->ud);
}

/* Runs statement id (no parameters) through count2_row or count3_row. */
static int q_counts(struct store *st, enum status_stmt id, struct count_iter *it, struct err *err,
                    const char *what)
{
	sqlite3_stmt *s = q_get(st, id, err);
	if (!s) return -1;
	return store_sql_rows(s, it->cb2 ? count2_row : count3_row, it, err, what);
}

int store_status_run_counts(struct store *st,
                            int (*cb)(const char *kind, const char *status, long long n, void *ud), void *ud,
                            struct err *err)
{
	struct count_iter it = { .cb2 = cb, .ud = ud };
	return q_counts(st, Q_RUN_COUNTS, &it, err, "run counts");
}

int store_status_tenant_run_counts(struct store *st,
                                   int (*cb)(const char *kind, const char *tenant_id, const char *status,
                                             long long n, void *ud),
                                   void *ud, struct err *err)
{
	struct count_iter it = { .cb3 = cb, .ud = ud };
	return q_counts(st, Q_TENANT_RUN_COUNTS, &it, err, "tenant run counts");
}

int store_status_write_counts(struct store *st,
                              int (*cb)(const char *action, const char *outcome, long long n, void *ud), void *ud,
                              struct err *err)
{
	struct count_iter it = { .cb2 = cb, .ud = ud };
	return q_counts(st, Q_WRITE_COUNTS, &it, err, "write counts");
}

struct latest_iter {
	int (*cb)(const char *kind, const char *started_at, const char *finished_at, const char *status,
	          const char *last_ok_finished_at, const char *last_complete_finished_at, void *ud);
	void *ud;
};

static int latest_row(sqlite3_stmt *s, void *ud)
{
	struct latest_iter *it = ud;
	return it->cb(col_borrow(s, 0), col_borrow(s, 1), col_borrow(s, 2), col_borrow(s, 3), col_borrow(s, 4),
	              col_borrow(s, 5), it->ud);
}

static void newest_read(sqlite3_stmt *s, void *out)
{
	struct store_status_newest *n = out;
	n->run_id = sqlite3_column_int64(s, 0);
	n->kind = col_dup(s, 1);
	n->started_at = col_dup(s, 2);
	n->status = col_dup(s, 3);
}

int store_status_run_newest(struct store *st, struct store_status_newest *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = q_get(st, Q_RUN_NEWEST, err);
	if (!s) return -1;
	return store_sql_lookup(s, newest_read, out, err, "newest run");
}

void store_status_newest_free(struct store_status_newest *n)
{
	free(n->kind);
	free(n->started_at);
	free(n->status);
	memset(n, 0, sizeof *n);
}

int store_status_run_latest(struct store *st,
                            int (*cb)(const char *kind, const char *started_at, const char *finished_at,
                                      const char *status, const char *last_ok_finished_at,
                                      const char *last_complete_finished_at, void *ud),
                            void *ud, struct err *err)
{
	struct latest_iter it = { cb, ud };
	sqlite3_stmt *s = q_get(st, Q_RUN_LATEST, err);
	if (!s) return -1;
	return store_sql_rows(s, latest_row, &it, err, "latest runs");
}

struct kv_iter {
	int (*cb)(const char *key, const char *value, void *ud);
	void *ud;
};

static int kv_row(sqlite3_stmt *s, void *ud)
{
	struct kv_iter *it = ud;
	return it->cb(col_borrow(s, 0), col_borrow(s, 1), it->ud);
}

int store_status_kv_each(struct store *st, const char *prefix,
                         int (*cb)(const char *key, const char *value, void *ud), void *ud, struct err *err)
{
	struct kv_iter it = { cb, ud };
	sqlite3_stmt *s = q_get(st, Q_KV_PREFIX, err);
	if (!s) return -1;
	bind_text(s, 1, prefix ? prefix : "");
	return store_sql_rows(s, kv_row, &it, err, "kv");
}

static void db_size_read(sqlite3_stmt *s, void *out)
{
	long long *v = out;
	v[0] = sqlite3_column_int64(s, 0);
	v[1] = sqlite3_column_int64(s, 1);
}

int store_status_db_size(struct store *st, long long *bytes, long long *free_bytes, struct err *err)
{
	long long v[2] = { 0, 0 };
	sqlite3_stmt *s = q_get(st, Q_DB_SIZE, err);
	if (!s) return -1;
	int rc = store_sql_lookup(s, db_size_read, v, err, "database size");
	*bytes = v[0];
	*free_bytes = v[1];
	return rc < 0 ? -1 : 0;
}
