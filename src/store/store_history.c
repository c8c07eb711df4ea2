/* store_history — history reads for reports (see store_history.h): one
 * read-only SQLite connection per handle, constant SQL with bound values;
 * every-tenant scans in storage order (a plain table scan: the primary key
 * order would cost a b-tree look-up per row), one tenant's through its
 * primary key; and the report/alert key/value state through store_kv_*. */
#include "store/store_history.h"
#include "store/store_sql.h"

#include <cJSON.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_BUSY_TIMEOUT_MS 5000

struct store_history {
	sqlite3 *db;
	sqlite3_stmt *score_get;   /* cached: one per tenant in a report */
	sqlite3_stmt *score_newest;
	sqlite3_stmt *licenses_day;
};

/* Frees a string a struct field owns behind its read-only `const char *`. */
static void free_owned(const char *p)
{
	union { const char *c; char *m; } v = { p };
	free(v.m);
}

static int hist_fail(struct store_history *h, struct err *err, const char *what)
{
	return err_set(err, "store: %s: %s", what, h && h->db ? sqlite3_errmsg(h->db) : "no connection");
}

int store_history_open(struct store *st, struct store_history **out, struct err *err)
{
	*out = NULL;
	struct store_history *h = xcalloc(1, sizeof *h);
	if (sqlite3_open_v2(store_path(st), &h->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		hist_fail(h, err, "open for reading");
		store_history_close(h);
		return -1;
	}
	sqlite3_busy_timeout(h->db, HISTORY_BUSY_TIMEOUT_MS);
	/* one read transaction for the handle's life: every read sees the same
	 * snapshot (a report's scans and per-tenant reads agree) */
	if (sqlite3_exec(h->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		hist_fail(h, err, "begin");
		store_history_close(h);
		return -1;
	}
	*out = h;
	return 0;
}

void store_history_close(struct store_history *h)
{
	if (!h) return;
	sqlite3_finalize(h->score_get);
	sqlite3_finalize(h->score_newest);
	sqlite3_finalize(h->licenses_day);
	if (h->db && !sqlite3_get_autocommit(h->db)) sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(h->db);
	free(h);
}

/* What the row adapters for store_sql_rows hand rows to. */
struct each_ctx {
	int (*seats_cb)(const struct store_license_seats *l, void *ud);
	int (*score_cb)(const struct store_secure_score *s, void *ud);
	int (*license_cb)(const struct store_license *l, void *ud);
	void *ud;
};

/* Prepares sql and binds ?1 = tenant_id, ?2 = since (either may be NULL:
 * the SQL treats NULL as "any"). */
static sqlite3_stmt *prepare_scan(struct store_history *h, const char *sql, const char *tenant_id,
                                  const char *since, struct err *err)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v2(h->db, sql, -1, &s, NULL) != SQLITE_OK) {
		hist_fail(h, err, "prepare");
		return NULL;
	}
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, since);
	return s;
}

static int seats_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_license_seats l = {
		.tenant_id = col_borrow(s, 0),
		.day = col_borrow(s, 1),
		.sku_id = col_borrow(s, 2),
		.enabled = sqlite3_column_int64(s, 3),
		.consumed = sqlite3_column_int64(s, 4),
	};
	return c->seats_cb(&l, c->ud);
}

int store_history_license_seats_each(struct store_history *h, const char *tenant_id,
                                     int (*cb)(const struct store_license_seats *l, void *ud), void *ud,
                                     struct err *err)
{
	static const char *const sql[2] = {
		"SELECT tenant_id, day, sku_id, enabled, consumed FROM license_snapshots NOT INDEXED "
		"WHERE ?1 IS NULL AND ?2 IS NULL",
		"SELECT tenant_id, day, sku_id, enabled, consumed FROM license_snapshots "
		"WHERE tenant_id = ?1 AND ?2 IS NULL ORDER BY tenant_id, day, sku_id",
	};
	sqlite3_stmt *s = prepare_scan(h, sql[tenant_id != NULL], tenant_id, NULL, err);
	if (!s) return -1;
	struct each_ctx c = { .seats_cb = cb, .ud = ud };
	int ret = store_sql_rows(s, seats_row, &c, err, "license history");
	sqlite3_finalize(s);
	return ret;
}

/* A row of (tenant_id, day, current_score, max_score, averages, controls),
 * borrowed from the statement. */
static void score_read(sqlite3_stmt *s, struct store_secure_score *sc)
{
	*sc = (struct store_secure_score){
		.tenant_id = col_borrow(s, 0),
		.day = col_borrow(s, 1),
		.current_score = sqlite3_column_double(s, 2),
		.max_score = sqlite3_column_double(s, 3),
		.averages = col_borrow(s, 4),
		.controls = col_borrow(s, 5),
	};
}

static int score_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_secure_score sc;
	score_read(s, &sc);
	return c->score_cb(&sc, c->ud);
}

int store_history_scores_each(struct store_history *h, const char *tenant_id, const char *since, bool with_json,
                              int (*cb)(const struct store_secure_score *s, void *ud), void *ud,
                              struct err *err)
{
	static const char *const sql[2][2] = {
		{ "SELECT tenant_id, day, current_score, max_score, NULL, NULL FROM secure_score_snapshots NOT INDEXED "
		  "WHERE ?1 IS NULL AND day >= coalesce(?2, '')",
		  "SELECT tenant_id, day, current_score, max_score, averages, " SCORE_CONTROLS " FROM secure_score_snapshots "
		  "NOT INDEXED WHERE ?1 IS NULL AND day >= coalesce(?2, '')" },
		{ "SELECT tenant_id, day, current_score, max_score, NULL, NULL FROM secure_score_snapshots "
		  "WHERE tenant_id = ?1 AND day >= coalesce(?2, '') ORDER BY tenant_id, day",
		  "SELECT tenant_id, day, current_score, max_score, averages, " SCORE_CONTROLS " FROM secure_score_snapshots "
		  "WHERE tenant_id = ?1 AND day >= coalesce(?2, '') ORDER BY tenant_id, day" },
	};
	sqlite3_stmt *s = prepare_scan(h, sql[tenant_id != NULL][with_json], tenant_id, since, err);
	if (!s) return -1;
	struct each_ctx c = { .score_cb = cb, .ud = ud };
	int ret = store_sql_rows(s, score_row, &c, err, "secure score history");
	sqlite3_finalize(s);
	return ret;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

/* A cached statement (prepared on first use), reset and bound to ?1, ?2. */
static sqlite3_stmt *cached(struct store_history *h, sqlite3_stmt **slot, const char *sql, const char *a,
                            const char *b, struct err *err)
{
	if (!*slot && sqlite3_prepare_v3(h->db, sql, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
		hist_fail(h, err, "prepare");
		return NULL;
	}
	sqlite3_reset(*slot);
	sqlite3_clear_bindings(*slot);
	bind_text(*slot, 1, a);
	bind_text(*slot, 2, b);
	return *slot;
}

int store_history_scores_newest(struct store_history *h, const char *tenant_id, size_t n,
                                struct store_secure_score *out, char (*day_buf)[11], size_t *got, struct err *err)
{
	*got = 0;
	sqlite3_stmt *s = cached(h, &h->score_newest, "SELECT day, current_score, max_score FROM secure_score_snapshots "
	                         "WHERE tenant_id = ?1 ORDER BY day DESC LIMIT 8", tenant_id, NULL, err);
	if (!s) return -1;
	int rc = SQLITE_DONE;
	while (*got < n && *got < 8 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *d = col_borrow(s, 0);
		snprintf(day_buf[*got], 11, "%s", d ? d : "");
		out[*got] = (struct store_secure_score){ .day = day_buf[*got], .current_score = sqlite3_column_double(s, 1),
		                                         .max_score = sqlite3_column_double(s, 2) };
		(*got)++;
	}
	int ret = 0;
	if (*got < n && *got < 8 && rc != SQLITE_DONE) ret = hist_fail(h, err, "secure score");
	sqlite3_reset(s);
	return ret;
}

static int license_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_license l = {
		.tenant_id = col_borrow(s, 0),
		.day = col_borrow(s, 1),
		.sku_id = col_borrow(s, 2),
		.sku_part_number = col_borrow(s, 3),
		.enabled = sqlite3_column_int64(s, 4),
		.suspended = sqlite3_column_int64(s, 5),
		.warning = sqlite3_column_int64(s, 6),
		.locked_out = sqlite3_column_int64(s, 7),
		.consumed = sqlite3_column_int64(s, 8),
		.capability_status = col_borrow(s, 9),
		.applies_to = col_borrow(s, 10),
	};
	return c->license_cb(&l, c->ud);
}

int store_history_licenses_day_each(struct store_history *h, const char *tenant_id, const char *day,
                                    int (*cb)(const struct store_license *l, void *ud), void *ud,
                                    struct err *err)
{
	sqlite3_stmt *s = cached(h, &h->licenses_day,
		"SELECT tenant_id, day, sku_id, sku_part_number, enabled, suspended, warning, locked_out, consumed, "
		"capability_status, applies_to FROM license_snapshots WHERE tenant_id = ?1 AND day = ?2 "
		"ORDER BY sku_id DESC", tenant_id, day, err);
	if (!s) return -1;
	struct each_ctx c = { .license_cb = cb, .ud = ud };
	return store_sql_rows(s, license_row, &c, err, "license snapshot");
}

/* A score row, copied (for store_sql_lookup). */
static void score_copy(sqlite3_stmt *s, void *out)
{
	struct store_secure_score r, *o = out;
	score_read(s, &r);
	*o = r;
	o->tenant_id = dup_or_null(r.tenant_id);
	o->day = dup_or_null(r.day);
	o->averages = dup_or_null(r.averages);
	o->controls = dup_or_null(r.controls);
}

int store_history_score_get(struct store_history *h, const char *tenant_id, const char *day,
                            struct store_secure_score *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = cached(h, &h->score_get,
		"SELECT tenant_id, day, current_score, max_score, averages, " SCORE_CONTROLS " FROM secure_score_snapshots "
		"WHERE tenant_id = ?1 AND day = coalesce(?2, (SELECT max(day) FROM secure_score_snapshots "
		"WHERE tenant_id = ?1))", tenant_id, day, err);
	if (!s) return -1;
	return store_sql_lookup(s, score_copy, out, err, "secure score");
}

void store_history_score_free(struct store_secure_score *s)
{
	if (!s) return;
	free_owned(s->tenant_id);
	free_owned(s->day);
	free_owned(s->averages);
	free_owned(s->controls);
	memset(s, 0, sizeof *s);
}

/* ---- key/value state -------------------------------------------------------- */

int store_history_profiles_put(struct store *st, const char *tenant_id, const char *json, struct err *err)
{
	char *key = xasprintf("securescore.profiles:%s", tenant_id);
	int rc = store_kv_put(st, key, json, err);
	free(key);
	return rc;
}

int store_history_profiles_get(struct store *st, const char *tenant_id, char **json, struct err *err)
{
	char *key = xasprintf("securescore.profiles:%s", tenant_id);
	int rc = store_kv_get(st, key, json, err);
	free(key);
	return rc;
}

int store_history_profiles_day_get(struct store *st, const char *tenant_id, char day[11], struct err *err)
{
	char *key = xasprintf("securescore.profiles.day:%s", tenant_id);
	char *v = NULL;
	int rc = store_kv_get(st, key, &v, err);
	free(key);
	if (rc != 0) return rc;
	snprintf(day, 11, "%s", v);
	free(v);
	return 0;
}

int store_history_profiles_day_put(struct store *st, const char *tenant_id, const char *day, struct err *err)
{
	char *key = xasprintf("securescore.profiles.day:%s", tenant_id);
	int rc = store_kv_put(st, key, day, err);
	free(key);
	return rc;
}

static char *alert_key(const char *tenant_id, const char *kind)
{
	return xasprintf("alert.ticket:%s:%s", tenant_id, kind);
}

int store_history_alert_get(struct store *st, const char *tenant_id, const char *kind,
                            struct store_alert_ticket *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	char *key = alert_key(tenant_id, kind), *value = NULL;
	int rc = store_kv_get(st, key, &value, err);
	free(key);
	if (rc != 0) return rc;
	cJSON *j = cJSON_Parse(value);
	free(value);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "ticket_id");
	if (!cJSON_IsNumber(id) || id->valuedouble <= 0) {
		cJSON_Delete(j);
		return STORE_NOTFOUND;
	}
	out->ticket_id = (long long)id->valuedouble;
	const cJSON *n = cJSON_GetObjectItemCaseSensitive(j, "occurrences");
	out->occurrences = cJSON_IsNumber(n) ? (long long)n->valuedouble : 1;
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "opened_at");
	const cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "last_at");
	if (cJSON_IsString(o)) snprintf(out->opened_at, sizeof out->opened_at, "%s", o->valuestring);
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "digest");
	if (cJSON_IsString(l)) snprintf(out->last_at, sizeof out->last_at, "%s", l->valuestring);
	if (cJSON_IsString(d)) snprintf(out->digest, sizeof out->digest, "%s", d->valuestring);
	cJSON_Delete(j);
	return 0;
}

int store_history_alert_put(struct store *st, const char *tenant_id, const char *kind,
                            const struct store_alert_ticket *t, struct err *err)
{
	char *key = alert_key(tenant_id, kind), *value = NULL;
	if (t && t->ticket_id > 0)
		value = xasprintf("{\"ticket_id\":%lld,\"occurrences\":%lld,\"opened_at\":\"%s\",\"last_at\":\"%s\","
		                  "\"digest\":\"%s\"}", t->ticket_id, t->occurrences, t->opened_at, t->last_at, t->digest);
	int rc = store_kv_put(st, key, value, err);
	free(key);
	free(value);
	return rc;
}
