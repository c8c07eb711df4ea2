/* store_snapshots — licence and Secure Score snapshots, and group
 * membership replacement, in the store's database. Statements are constant
 * strings prepared once and cached; values are only ever bound (as in
 * store.c).
 *
 * The connection: struct store is opaque, and store.h does not (yet) hand
 * its sqlite3 handle to extension files, so this file opens its own
 * connection to store_path(st) on first use (same pragmas: WAL, foreign
 * keys, busy timeout) and keeps it for that store until
 * store_snapshots_close. Writes here are separate transactions from the
 * store's own. When store.h gains `sqlite3 *store_sqlite(struct store *)`,
 * snap_db() returns that instead and nothing else changes. */
#include "store_snapshots.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_BUSY_TIMEOUT_MS 5000

enum snap_stmt {
	Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
	Q_LIC_DELETE_DAY, Q_LIC_INSERT, Q_LIC_LATEST,
	Q_SCORE_PUT, Q_SCORE_LATEST, Q_SCORE_COUNT,
	Q_GROUP_UPSERT, Q_MEMBERS_DELETE, Q_MEMBER_INSERT, Q_MEMBER_COUNT,
	Q__COUNT
};

static const char *const snap_sql[Q__COUNT] = {
	[Q_BEGIN] = "BEGIN IMMEDIATE",
	[Q_COMMIT] = "COMMIT",
	[Q_ROLLBACK] = "ROLLBACK",
	[Q_LIC_DELETE_DAY] = "DELETE FROM license_snapshots WHERE tenant_id = ?1 AND day = ?2",
	[Q_LIC_INSERT] = "INSERT OR REPLACE INTO license_snapshots (tenant_id, day, sku_id, sku_part_number, enabled, "
	                 "suspended, warning, locked_out, consumed, capability_status, applies_to) "
	                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
	[Q_LIC_LATEST] = "SELECT max(day) FROM license_snapshots WHERE tenant_id = ?1",
	[Q_SCORE_PUT] = "INSERT OR REPLACE INTO secure_score_snapshots (tenant_id, day, current_score, max_score, "
	                "averages, controls) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_SCORE_LATEST] = "SELECT max(day) FROM secure_score_snapshots WHERE tenant_id = ?1",
	[Q_SCORE_COUNT] = "SELECT count(*) FROM secure_score_snapshots WHERE tenant_id = ?1",
	[Q_GROUP_UPSERT] = "INSERT INTO groups (tenant_id, group_id, display_name) VALUES (?1, ?2, ?3) "
	                   "ON CONFLICT (tenant_id, group_id) DO UPDATE SET display_name = excluded.display_name",
	[Q_MEMBERS_DELETE] = "DELETE FROM group_members WHERE tenant_id = ?1 AND group_id = ?2",
	[Q_MEMBER_INSERT] = "INSERT OR IGNORE INTO group_members (tenant_id, group_id, object_id) VALUES (?1, ?2, ?3)",
	[Q_MEMBER_COUNT] = "SELECT count(*) FROM group_members WHERE tenant_id = ?1 AND group_id = ?2",
};

/* The one cached connection (the runtime uses one store at a time). */
static struct {
	const struct store *owner;
	char *path;
	sqlite3 *db;
	sqlite3_stmt *stmts[Q__COUNT];
} snap;

static int snap_fail(struct err *err, const char *what)
{
	return err_set(err, "store: %s: %s", what, snap.db ? sqlite3_errmsg(snap.db) : "no connection");
}

void store_snapshots_close(struct store *st)
{
	if (!snap.db || (st && snap.owner != st)) return;
	for (int i = 0; i < Q__COUNT; i++) sqlite3_finalize(snap.stmts[i]);
	sqlite3_close(snap.db);
	free(snap.path);
	memset(&snap, 0, sizeof snap);
}

/* The connection for st, opened on first use. */
static sqlite3 *snap_db(struct store *st, struct err *err)
{
	const char *path = store_path(st);
	if (snap.db && snap.owner == st && !strcmp(snap.path, path)) return snap.db;
	if (snap.db) store_snapshots_close(NULL);
	if (store_in_transaction(st)) {
		err_set(err, "store: snapshot functions called inside a store transaction");
		return NULL;
	}
	if (sqlite3_open_v2(path, &snap.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snap_fail(err, "open");
		store_snapshots_close(NULL);
		return NULL;
	}
	sqlite3_busy_timeout(snap.db, SNAP_BUSY_TIMEOUT_MS);
	if (sqlite3_exec(snap.db, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", NULL, NULL, NULL) !=
	    SQLITE_OK) {
		snap_fail(err, "pragmas");
		store_snapshots_close(NULL);
		return NULL;
	}
	snap.owner = st;
	snap.path = xstrdup(path);
	return snap.db;
}

static sqlite3_stmt *q_get(struct store *st, enum snap_stmt id, struct err *err)
{
	if (!snap_db(st, err)) return NULL;
	sqlite3_stmt *s = snap.stmts[id];
	if (!s) {
		if (sqlite3_prepare_v3(snap.db, snap_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
			snap_fail(err, "prepare");
			return NULL;
		}
		snap.stmts[id] = s;
	}
	return s;
}

static void q_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

static void bind_text(sqlite3_stmt *s, int i, const char *v)
{
	if (v) sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC);
	else sqlite3_bind_null(s, i);
}

/* Steps a statement with no rows wanted, then releases it. */
static int q_run(sqlite3_stmt *s, struct err *err, const char *what)
{
	int rc = sqlite3_step(s);
	int ret = 0;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		if (sqlite3_extended_errcode(snap.db) == SQLITE_CONSTRAINT_FOREIGNKEY)
			ret = err_set(err, "store: %s: the tenant is not in the store (store_tenant_put it first)", what);
		else
			ret = snap_fail(err, what);
	}
	q_done(s);
	return ret;
}

static int q_exec(struct store *st, enum snap_stmt id, struct err *err, const char *what)
{
	sqlite3_stmt *s = q_get(st, id, err);
	return s ? q_run(s, err, what) : -1;
}

static void q_rollback(struct store *st)
{
	struct err ignored;
	if (snap.db && !sqlite3_get_autocommit(snap.db)) q_exec(st, Q_ROLLBACK, &ignored, "rollback");
}

/* A "SELECT max(day)" for tenant_id: *day new string or STORE_NOTFOUND. */
static int q_latest(struct store *st, enum snap_stmt id, const char *tenant_id, char **day, struct err *err)
{
	*day = NULL;
	sqlite3_stmt *s = q_get(st, id, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	int ret = STORE_NOTFOUND;
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(s, 0);
		if (v) {
			*day = xstrdup((const char *)v);
			ret = 0;
		}
	} else {
		ret = snap_fail(err, "latest day");
	}
	q_done(s);
	return ret;
}

static int q_count(struct store *st, enum snap_stmt id, const char *a, const char *b, long long *n,
                   struct err *err)
{
	*n = 0;
	sqlite3_stmt *s = q_get(st, id, err);
	if (!s) return -1;
	bind_text(s, 1, a);
	if (b) bind_text(s, 2, b);
	int ret = 0;
	if (sqlite3_step(s) == SQLITE_ROW) *n = sqlite3_column_int64(s, 0);
	else ret = snap_fail(err, "count");
	q_done(s);
	return ret;
}

/* ---- licences ------------------------------------------------------------ */

int store_license_snapshot_put(struct store *st, const char *tenant_id, const char *day,
                               const struct store_license *rows, size_t n, struct err *err)
{
	if (q_exec(st, Q_BEGIN, err, "begin") != 0) return -1;
	sqlite3_stmt *s = q_get(st, Q_LIC_DELETE_DAY, err);
	if (!s) goto fail;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, day);
	if (q_run(s, err, "license snapshot") != 0) goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct store_license *l = &rows[i];
		if (!l->sku_id) {
			err_set(err, "store: license snapshot: a SKU without sku_id");
			goto fail;
		}
		s = q_get(st, Q_LIC_INSERT, err);
		if (!s) goto fail;
		bind_text(s, 1, tenant_id);
		bind_text(s, 2, day);
		bind_text(s, 3, l->sku_id);
		bind_text(s, 4, l->sku_part_number);
		sqlite3_bind_int64(s, 5, l->enabled);
		sqlite3_bind_int64(s, 6, l->suspended);
		sqlite3_bind_int64(s, 7, l->warning);
		sqlite3_bind_int64(s, 8, l->locked_out);
		sqlite3_bind_int64(s, 9, l->consumed);
		bind_text(s, 10, l->capability_status);
		bind_text(s, 11, l->applies_to);
		if (q_run(s, err, "license snapshot") != 0) goto fail;
	}
	if (q_exec(st, Q_COMMIT, err, "commit") != 0) goto fail;
	return 0;
fail:
	q_rollback(st);
	return -1;
}

int store_license_latest_day(struct store *st, const char *tenant_id, char **day, struct err *err)
{
	return q_latest(st, Q_LIC_LATEST, tenant_id, day, err);
}

int store_license_each(struct store *st, const char *tenant_id, const char *day,
                       int (*cb)(const struct store_license *l, void *ud), void *ud, struct err *err)
{
	char *latest = NULL;
	if (!snap_db(st, err)) return -1;
	if (!day) {
		int rc = store_license_latest_day(st, tenant_id, &latest, err);
		if (rc != 0) return rc == STORE_NOTFOUND ? 0 : rc;
		day = latest;
	}
	sqlite3_stmt *s = NULL;
	int ret = 0, rc;
	if (sqlite3_prepare_v2(snap.db,
	                       "SELECT tenant_id, day, sku_id, sku_part_number, enabled, suspended, warning, "
	                       "locked_out, consumed, capability_status, applies_to FROM license_snapshots "
	                       "WHERE tenant_id = ?1 AND day = ?2 ORDER BY sku_part_number, sku_id",
	                       -1, &s, NULL) != SQLITE_OK) {
		ret = snap_fail(err, "prepare");
		goto out;
	}
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, day);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_license l = {
			.tenant_id = (const char *)sqlite3_column_text(s, 0),
			.day = (const char *)sqlite3_column_text(s, 1),
			.sku_id = (const char *)sqlite3_column_text(s, 2),
			.sku_part_number = (const char *)sqlite3_column_text(s, 3),
			.enabled = sqlite3_column_int64(s, 4),
			.suspended = sqlite3_column_int64(s, 5),
			.warning = sqlite3_column_int64(s, 6),
			.locked_out = sqlite3_column_int64(s, 7),
			.consumed = sqlite3_column_int64(s, 8),
			.capability_status = (const char *)sqlite3_column_text(s, 9),
			.applies_to = (const char *)sqlite3_column_text(s, 10),
		};
		ret = cb(&l, ud);
		if (ret) break;
	}
	if (!ret && rc != SQLITE_DONE) ret = snap_fail(err, "license each");
out:
	sqlite3_finalize(s);
	free(latest);
	return ret;
}

/* ---- secure score -------------------------------------------------------- */

int store_secure_score_put(struct store *st, const struct store_secure_score *sc, struct err *err)
{
	if (!sc->tenant_id || !sc->day) return err_set(err, "store: secure score: tenant_id and day are required");
	sqlite3_stmt *s = q_get(st, Q_SCORE_PUT, err);
	if (!s) return -1;
	bind_text(s, 1, sc->tenant_id);
	bind_text(s, 2, sc->day);
	sqlite3_bind_double(s, 3, sc->current_score);
	sqlite3_bind_double(s, 4, sc->max_score);
	bind_text(s, 5, sc->averages);
	bind_text(s, 6, sc->controls);
	return q_run(s, err, "secure score");
}

int store_secure_score_latest_day(struct store *st, const char *tenant_id, char **day, struct err *err)
{
	return q_latest(st, Q_SCORE_LATEST, tenant_id, day, err);
}

int store_secure_score_count(struct store *st, const char *tenant_id, long long *n, struct err *err)
{
	return q_count(st, Q_SCORE_COUNT, tenant_id, NULL, n, err);
}

int store_secure_score_each(struct store *st, const char *tenant_id,
                            int (*cb)(const struct store_secure_score *s, void *ud), void *ud, struct err *err)
{
	if (!snap_db(st, err)) return -1;
	sqlite3_stmt *s = NULL;
	int ret = 0, rc;
	if (sqlite3_prepare_v2(snap.db,
	                       "SELECT tenant_id, day, current_score, max_score, averages, controls "
	                       "FROM secure_score_snapshots WHERE tenant_id = ?1 ORDER BY day",
	                       -1, &s, NULL) != SQLITE_OK)
		return snap_fail(err, "prepare");
	bind_text(s, 1, tenant_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_secure_score sc = {
			.tenant_id = (const char *)sqlite3_column_text(s, 0),
			.day = (const char *)sqlite3_column_text(s, 1),
			.current_score = sqlite3_column_double(s, 2),
			.max_score = sqlite3_column_double(s, 3),
			.averages = (const char *)sqlite3_column_text(s, 4),
			.controls = (const char *)sqlite3_column_text(s, 5),
		};
		ret = cb(&sc, ud);
		if (ret) break;
	}
	if (!ret && rc != SQLITE_DONE) ret = snap_fail(err, "secure score each");
	sqlite3_finalize(s);
	return ret;
}

/* ---- groups --------------------------------------------------------------- */

int store_group_members_replace(struct store *st, const char *tenant_id, const char *group_id,
                                const char *display_name, const char *const *ids, size_t n, struct err *err)
{
	if (q_exec(st, Q_BEGIN, err, "begin") != 0) return -1;
	sqlite3_stmt *s = q_get(st, Q_GROUP_UPSERT, err);
	if (!s) goto fail;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, display_name);
	if (q_run(s, err, "group put") != 0) goto fail;
	s = q_get(st, Q_MEMBERS_DELETE, err);
	if (!s) goto fail;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	if (q_run(s, err, "group members") != 0) goto fail;
	for (size_t i = 0; i < n; i++) {
		s = q_get(st, Q_MEMBER_INSERT, err);
		if (!s) goto fail;
		bind_text(s, 1, tenant_id);
		bind_text(s, 2, group_id);
		bind_text(s, 3, ids[i]);
		if (q_run(s, err, "group member") != 0) goto fail;
	}
	if (q_exec(st, Q_COMMIT, err, "commit") != 0) goto fail;
	return 0;
fail:
	q_rollback(st);
	return -1;
}

int store_group_member_count(struct store *st, const char *tenant_id, const char *group_id, long long *n,
                             struct err *err)
{
	return q_count(st, Q_MEMBER_COUNT, tenant_id, group_id, n, err);
}
