/* store_snapshots — licence and Secure Score snapshots, and group
 * membership replacement, in the store's database. Statements are constant
 * strings prepared once and cached; values are only ever bound (as in
 * store.c).
 *
 * It shares the store's connection, statement cache (store_stmt) and
 * transactions: a write is its own unit of work, or part of the caller's
 * when one is open. */
#include "store/store_snapshots.h"
#include "store/store_sql.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum snap_stmt {
	Q_LIC_SKUS_OF_DAY, Q_LIC_DELETE_SKU, Q_LIC_PUT, Q_LIC_LATEST,
	Q_SCORE_PUT, Q_SCORE_LATEST, Q_SCORE_COUNT,
	Q_GROUP_UPSERT, Q_MEMBERS_LIST, Q_MEMBER_DELETE, Q_MEMBER_INSERT, Q_MEMBER_COUNT, Q_GROUP_DIGEST_GET,
	Q_GROUP_DIGEST_SET, Q_GROUP_ID_BY_NAME, Q_GROUPS_OF_TENANT, Q_GROUP_DELETE, Q_GROUP_PAGE_GET, Q_GROUP_PAGE_SET,
	Q_GROUP_PAGE_SAME,
	Q__COUNT
};

static const char *const snap_sql[Q__COUNT] = {
	/* A day's snapshot is put again every hour: only what changed is
	 * written (an unchanged row is not rewritten, a SKU gone is deleted). */
	[Q_LIC_SKUS_OF_DAY] = "SELECT sku_id FROM license_snapshots WHERE tenant_id = ?1 AND day = ?2",
	[Q_LIC_DELETE_SKU] = "DELETE FROM license_snapshots WHERE tenant_id = ?1 AND day = ?2 AND sku_id = ?3",
	[Q_LIC_PUT] = "INSERT INTO license_snapshots (tenant_id, day, sku_id, sku_part_number, enabled, "
	              "suspended, warning, locked_out, consumed, capability_status, applies_to) "
	              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
	              "ON CONFLICT (tenant_id, day, sku_id) DO UPDATE SET sku_part_number = excluded.sku_part_number, "
	              "enabled = excluded.enabled, suspended = excluded.suspended, warning = excluded.warning, "
	              "locked_out = excluded.locked_out, consumed = excluded.consumed, "
	              "capability_status = excluded.capability_status, applies_to = excluded.applies_to "
	              "WHERE sku_part_number IS NOT excluded.sku_part_number OR enabled IS NOT excluded.enabled "
	              "OR suspended IS NOT excluded.suspended OR warning IS NOT excluded.warning "
	              "OR locked_out IS NOT excluded.locked_out OR consumed IS NOT excluded.consumed "
	              "OR capability_status IS NOT excluded.capability_status OR applies_to IS NOT excluded.applies_to",
	[Q_LIC_LATEST] = "SELECT max(day) FROM license_snapshots WHERE tenant_id = ?1",
	/* a day already stored as received is not written again (hourly pulls
	 * see the same newest day many times) */
	[Q_SCORE_PUT] = "INSERT INTO secure_score_snapshots (tenant_id, day, current_score, max_score, "
	                "averages, controls, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
	                "ON CONFLICT (tenant_id, day) DO UPDATE SET current_score = excluded.current_score, "
	                "max_score = excluded.max_score, averages = excluded.averages, controls = excluded.controls, "
	                "raw = excluded.raw WHERE raw IS NOT excluded.raw OR current_score IS NOT excluded.current_score "
	                "OR max_score IS NOT excluded.max_score OR averages IS NOT excluded.averages "
	                "OR controls IS NOT excluded.controls",
	[Q_SCORE_LATEST] = "SELECT max(day) FROM secure_score_snapshots WHERE tenant_id = ?1",
	[Q_SCORE_COUNT] = "SELECT count(*) FROM secure_score_snapshots WHERE tenant_id = ?1",
	[Q_GROUP_UPSERT] = "INSERT INTO groups (tenant_id, group_id, display_name) VALUES (?1, ?2, ?3) "
	                   "ON CONFLICT (tenant_id, group_id) DO UPDATE SET display_name = excluded.display_name "
	                   "WHERE display_name IS NOT excluded.display_name",
	[Q_MEMBERS_LIST] = "SELECT object_id FROM group_members WHERE tenant_id = ?1 AND group_id = ?2",
	[Q_MEMBER_DELETE] = "DELETE FROM group_members WHERE tenant_id = ?1 AND group_id = ?2 AND object_id = ?3",
	[Q_MEMBER_INSERT] = "INSERT OR IGNORE INTO group_members (tenant_id, group_id, object_id) VALUES (?1, ?2, ?3)",
	[Q_MEMBER_COUNT] = "SELECT count(*) FROM group_members WHERE tenant_id = ?1 AND group_id = ?2",
	[Q_GROUP_DIGEST_GET] = "SELECT members_digest FROM groups WHERE tenant_id = ?1 AND group_id = ?2",
	[Q_GROUP_DIGEST_SET] = "UPDATE groups SET members_digest = ?3 WHERE tenant_id = ?1 AND group_id = ?2",
	[Q_GROUP_ID_BY_NAME] = "SELECT group_id FROM groups WHERE tenant_id = ?1 AND display_name = ?2 COLLATE NOCASE "
	                       "LIMIT 2",
	[Q_GROUPS_OF_TENANT] = "SELECT group_id FROM groups WHERE tenant_id = ?1",
	/* its member rows go with it (ON DELETE CASCADE) */
	[Q_GROUP_DELETE] = "DELETE FROM groups WHERE tenant_id = ?1 AND group_id = ?2",
	[Q_GROUP_PAGE_GET] = "SELECT page_digest, members_digest FROM groups WHERE tenant_id = ?1 AND group_id = ?2",
	[Q_GROUP_PAGE_SET] = "UPDATE groups SET page_digest = ?3 WHERE tenant_id = ?1 AND group_id = ?2 "
	                     "AND page_digest IS NOT ?3",
	[Q_GROUP_PAGE_SAME] = "SELECT 1 FROM groups WHERE tenant_id = ?1 AND group_id = ?2 AND page_digest = ?3",
};

static int snap_fail(struct store *st, struct err *err, const char *what)
{
	return err_set(err, "store: %s: %s", what, sqlite3_errmsg(store_sqlite(st)));
}

/* The cached statement for id (reset, bindings cleared), or NULL + err. */
static sqlite3_stmt *q_get(struct store *st, enum snap_stmt id, struct err *err)
{
	return store_stmt(st, snap_sql[id], err);
}

/* A unit of work of its own, or part of the caller's when one is open:
 * *owned says whether tx_end must commit or roll back. */
static int tx_begin(struct store *st, bool *owned, struct err *err)
{
	*owned = !store_in_transaction(st);
	return *owned ? store_begin(st, err) : 0;
}

static int tx_end(struct store *st, bool owned, bool ok, struct err *err)
{
	if (!owned) return ok ? 0 : -1;
	if (ok) return store_commit(st, err);
	struct err ignored;
	store_rollback(st, &ignored);
	return -1;
}

static void q_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Steps a statement with no rows wanted, then releases it. */
static int q_run(struct store *st, sqlite3_stmt *s, struct err *err, const char *what)
{
	int rc = sqlite3_step(s);
	int ret = 0;
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		if (sqlite3_extended_errcode(store_sqlite(st)) == SQLITE_CONSTRAINT_FOREIGNKEY)
			ret = err_set(err, "store: %s: the tenant is not in the store (store_tenant_put it first)", what);
		else
			ret = snap_fail(st, err, what);
	}
	q_done(s);
	return ret;
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
		ret = snap_fail(st, err, "latest day");
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
	else ret = snap_fail(st, err, "count");
	q_done(s);
	return ret;
}

/* ---- licences ------------------------------------------------------------ */

/* Whether id is one of ids[0..n). */
static bool ids_have(const char *const *ids, size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] && strcmp(ids[i], id) == 0) return true;
	return false;
}

/* Steps s (bound, a one-column SELECT of ids) and collects into *out
 * (*nout; the caller frees each and the array) the ids not in keep[0..n).
 * Releases s. 0, or -1 with err. */
static int q_ids_not_in(struct store *st, sqlite3_stmt *s, const char *const *keep, size_t n, char ***out,
                        size_t *nout, struct err *err, const char *what)
{
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(s, 0);
		if (!id || ids_have(keep, n, id)) continue;
		*out = xrealloc(*out, (*nout + 1) * sizeof **out);
		(*out)[(*nout)++] = xstrdup(id);
	}
	int ret = rc == SQLITE_DONE ? 0 : snap_fail(st, err, what);
	q_done(s);
	return ret;
}

/* Deletes the day's rows whose SKU is not in rows (a SKU no longer
 * subscribed): its SKUs are read first, then deleted one by one. */
static int license_day_prune(struct store *st, const char *tenant_id, const char *day,
                             const struct store_license *rows, size_t n, struct err *err)
{
	char **gone = NULL;
	size_t ngone = 0;
	int ret = -1;
	const char **skus = xcalloc(n + 1, sizeof *skus);
	for (size_t i = 0; i < n; i++) skus[i] = rows[i].sku_id;
	sqlite3_stmt *s = q_get(st, Q_LIC_SKUS_OF_DAY, err);
	if (!s) goto out;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, day);
	if (q_ids_not_in(st, s, skus, n, &gone, &ngone, err, "license snapshot") != 0) goto out;
	for (size_t i = 0; i < ngone; i++) {
		s = q_get(st, Q_LIC_DELETE_SKU, err);
		if (!s) goto out;
		bind_text(s, 1, tenant_id);
		bind_text(s, 2, day);
		bind_text(s, 3, gone[i]);
		if (q_run(st, s, err, "license snapshot") != 0) goto out;
	}
	ret = 0;
out:
	for (size_t i = 0; i < ngone; i++) free(gone[i]);
	free(gone);
	free(skus);
	return ret;
}

int store_license_snapshot_put(struct store *st, const char *tenant_id, const char *day,
                               const struct store_license *rows, size_t n, struct err *err)
{
	bool owned;
	if (tx_begin(st, &owned, err) != 0) return -1;
	for (size_t i = 0; i < n; i++)
		if (!rows[i].sku_id) {
			err_set(err, "store: license snapshot: a SKU without sku_id");
			goto fail;
		}
	if (license_day_prune(st, tenant_id, day, rows, n, err) != 0) goto fail;
	for (size_t i = 0; i < n; i++) {
		const struct store_license *l = &rows[i];
		sqlite3_stmt *s = q_get(st, Q_LIC_PUT, err);
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
		if (q_run(st, s, err, "license snapshot") != 0) goto fail;
	}
	return tx_end(st, owned, true, err);
fail:
	return tx_end(st, owned, false, err);
}

int store_license_latest_day(struct store *st, const char *tenant_id, char **day, struct err *err)
{
	return q_latest(st, Q_LIC_LATEST, tenant_id, day, err);
}

int store_license_each(struct store *st, const char *tenant_id, const char *day,
                       int (*cb)(const struct store_license *l, void *ud), void *ud, struct err *err)
{
	char *latest = NULL;
	if (!day) {
		int rc = store_license_latest_day(st, tenant_id, &latest, err);
		if (rc != 0) return rc == STORE_NOTFOUND ? 0 : rc;
		day = latest;
	}
	sqlite3_stmt *s = NULL;
	int ret = 0, rc;
	if (sqlite3_prepare_v2(store_sqlite(st),
	                       "SELECT tenant_id, day, sku_id, sku_part_number, enabled, suspended, warning, "
	                       "locked_out, consumed, capability_status, applies_to FROM license_snapshots "
	                       "WHERE tenant_id = ?1 AND day = ?2 ORDER BY sku_part_number, sku_id",
	                       -1, &s, NULL) != SQLITE_OK) {
		ret = snap_fail(st, err, "prepare");
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
	if (!ret && rc != SQLITE_DONE) ret = snap_fail(st, err, "license each");
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
	/* A day's control scores are in its raw object: stored once there (a
	 * day is ~20 KB of them, every tenant, every day), and read back from it
	 * (SCORE_CONTROLS); the column holds only those of a day without raw. */
	bind_text(s, 6, sc->raw ? NULL : sc->controls);
	bind_text(s, 7, sc->raw);
	return q_run(st, s, err, "secure score");
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
	sqlite3_stmt *s = NULL;
	int ret = 0, rc;
	if (sqlite3_prepare_v2(store_sqlite(st),
	                       "SELECT tenant_id, day, current_score, max_score, averages, " SCORE_CONTROLS ", raw "
	                       "FROM secure_score_snapshots WHERE tenant_id = ?1 ORDER BY day",
	                       -1, &s, NULL) != SQLITE_OK)
		return snap_fail(st, err, "prepare");
	bind_text(s, 1, tenant_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_secure_score sc = {
			.tenant_id = (const char *)sqlite3_column_text(s, 0),
			.day = (const char *)sqlite3_column_text(s, 1),
			.current_score = sqlite3_column_double(s, 2),
			.max_score = sqlite3_column_double(s, 3),
			.averages = (const char *)sqlite3_column_text(s, 4),
			.controls = (const char *)sqlite3_column_text(s, 5),
			.raw = (const char *)sqlite3_column_text(s, 6),
		};
		ret = cb(&sc, ud);
		if (ret) break;
	}
	if (!ret && rc != SQLITE_DONE) ret = snap_fail(st, err, "secure score each");
	sqlite3_finalize(s);
	return ret;
}

/* ---- groups --------------------------------------------------------------- */

/* Adds (insert) or removes (delete) one member. */
static int member_write(struct store *st, enum snap_stmt id, const char *tenant_id, const char *group_id,
                        const char *object_id, struct err *err)
{
	sqlite3_stmt *s = q_get(st, id, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, object_id);
	return q_run(st, s, err, "group member");
}

/* The wanted ids as an open-addressing hash set, each slot the index of
 * an id in ids + 1 (0 = empty), with a "stored already" mark per id and
 * each id's hash (computed once: the set and the digest both use it). */
struct id_set {
	const char *const *ids;
	size_t *slot;
	size_t mask;
	bool *seen;
	uint64_t *hash;
};

/* A multiplicative hash eight bytes at a time (ids are GUIDs: 36 bytes). */
static size_t id_hash(const char *s)
{
	size_t n = strlen(s);
	uint64_t h = 0x9e3779b97f4a7c15u ^ n;
	for (; n >= 8; s += 8, n -= 8) {
		uint64_t w;
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdu;
		h ^= h >> 32;
	}
	for (; n; s++, n--) h = (h ^ (unsigned char)*s) * 0x100000001b3u;
	h ^= h >> 29;
	return (size_t)h;
}

/* The index of id (whose id_hash is hash) in the set, or (size_t)-1. With
 * add, puts it there first when missing (as index k). */
static size_t id_set_find(struct id_set *set, const char *id, uint64_t hash, bool add, size_t k)
{
	for (size_t h = (size_t)hash & set->mask;; h = (h + 1) & set->mask) {
		if (!set->slot[h]) {
			if (!add) return (size_t)-1;
			set->slot[h] = k + 1;
			return k;
		}
		if (!strcmp(set->ids[set->slot[h] - 1], id)) return set->slot[h] - 1;
	}
}

/* An order-independent digest of the distinct ids of set (those not
 * marked seen, i.e. not duplicates): their count and two sums of 64-bit
 * hashes mixed differently, as text. out holds 64 bytes. */
static void members_digest(const struct id_set *set, size_t n, char out[64])
{
	uint64_t a = 0, b = 0;
	size_t distinct = 0;
	for (size_t k = 0; k < n; k++) {
		if (set->seen[k]) continue;
		uint64_t h = set->hash[k];
		a += h;
		h ^= h >> 31;
		h *= 0xbf58476d1ce4e5b9u;
		b += h ^ (h >> 27);
		distinct++;
	}
	snprintf(out, 64, "%zu:%016llx%016llx", distinct, (unsigned long long)a, (unsigned long long)b);
}

/* Writes only the difference between the stored membership and ids, in one
 * pass over the stored rows against a hash set of ids, so a pull where
 * nothing changed writes nothing (the group row only when renamed). Before
 * that, the digest of ids is compared with the one stored after the last
 * replace (on the group's row): when it matches, the rows are not read at
 * all. Triggers drop the digest on any change of the group's member rows
 * (migration 7), so it never vouches for rows it has not seen. */
int store_group_members_replace(struct store *st, const char *tenant_id, const char *group_id,
                                const char *display_name, const char *const *ids, size_t n, struct err *err)
{
	struct id_set set = { .ids = ids };
	size_t cap = 16;
	while (cap < 2 * n) cap *= 2;
	set.slot = xcalloc(cap, sizeof *set.slot);
	set.mask = cap - 1;
	set.seen = xcalloc(n + 1, sizeof *set.seen);
	set.hash = xmalloc((n + 1) * sizeof *set.hash);
	char **gone = NULL;
	size_t ngone = 0, capgone = 0;
	char *stored = NULL;
	char digest[64];
	int rc = -1;
	/* duplicates in ids: the first one stands for them all */
	for (size_t k = 0; k < n; k++) {
		set.hash[k] = id_hash(ids[k]);
		if (id_set_find(&set, ids[k], set.hash[k], true, k) != k) set.seen[k] = true;
	}
	members_digest(&set, n, digest);
	bool owned;
	if (tx_begin(st, &owned, err) != 0) goto out;
	sqlite3_stmt *s = q_get(st, Q_GROUP_UPSERT, err);
	if (!s) goto fail;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, display_name);
	if (q_run(st, s, err, "group put") != 0) goto fail;
	s = q_get(st, Q_GROUP_DIGEST_GET, err);
	if (!s) goto fail;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	int step = sqlite3_step(s);
	if (step == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_TEXT)
		stored = xstrdup((const char *)sqlite3_column_text(s, 0));
	q_done(s);
	if (step != SQLITE_ROW && step != SQLITE_DONE) {
		snap_fail(st, err, "group digest");
		goto fail;
	}
	if (stored && !strcmp(stored, digest)) {
		rc = tx_end(st, owned, true, err);
		goto out;
	}
	s = q_get(st, Q_MEMBERS_LIST, err);
	if (!s) goto fail;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	while ((step = sqlite3_step(s)) == SQLITE_ROW) {
		const char *have = (const char *)sqlite3_column_text(s, 0);
		size_t k = have ? id_set_find(&set, have, id_hash(have), false, 0) : (size_t)-1;
		if (k != (size_t)-1) {
			set.seen[k] = true;
			continue;
		}
		if (ngone == capgone) {
			capgone = capgone ? capgone * 2 : 16;
			gone = xrealloc(gone, capgone * sizeof *gone);
		}
		gone[ngone++] = xstrdup(have ? have : "");
	}
	q_done(s);
	if (step != SQLITE_DONE) {
		snap_fail(st, err, "group members");
		goto fail;
	}
	for (size_t i = 0; i < ngone; i++)
		if (member_write(st, Q_MEMBER_DELETE, tenant_id, group_id, gone[i], err) != 0) goto fail;
	for (size_t k = 0; k < n; k++)
		if (!set.seen[k] && member_write(st, Q_MEMBER_INSERT, tenant_id, group_id, ids[k], err) != 0) goto fail;
	s = q_get(st, Q_GROUP_DIGEST_SET, err);
	if (!s) goto fail;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, digest);
	if (q_run(st, s, err, "group digest put") != 0) goto fail;
	rc = tx_end(st, owned, true, err);
	goto out;
fail:
	tx_end(st, owned, false, err);
out:
	free(stored);
	for (size_t i = 0; i < ngone; i++) free(gone[i]);
	free(gone);
	free(set.slot);
	free(set.seen);
	free(set.hash);
	return rc;
}

int store_group_member_count(struct store *st, const char *tenant_id, const char *group_id, long long *n,
                             struct err *err)
{
	return q_count(st, Q_MEMBER_COUNT, tenant_id, group_id, n, err);
}

int store_group_page_get(struct store *st, const char *tenant_id, const char *group_id, char **key,
                         long long *members, struct err *err)
{
	*key = NULL;
	*members = -1;
	sqlite3_stmt *s = q_get(st, Q_GROUP_PAGE_GET, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	int rc = sqlite3_step(s), ret = 0;
	if (rc == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_TEXT) {
		*key = xstrdup((const char *)sqlite3_column_text(s, 0));
		/* members_digest starts with the count of distinct ids (members_digest()) */
		const char *md = (const char *)sqlite3_column_text(s, 1);
		char *end = NULL;
		long long count = md ? strtoll(md, &end, 10) : -1;
		if (md && end != md && *end == ':' && count >= 0) *members = count;
	} else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		ret = snap_fail(st, err, "group page key");
	}
	q_done(s);
	return ret;
}

int store_group_page_put(struct store *st, const char *tenant_id, const char *group_id, const char *key,
                         struct err *err)
{
	sqlite3_stmt *s = q_get(st, Q_GROUP_PAGE_SET, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, key);
	return q_run(st, s, err, "group page key put");
}

int store_group_page_same(struct store *st, const char *tenant_id, const char *group_id, const char *display_name,
                          const char *key, bool *still, struct err *err)
{
	*still = false;
	sqlite3_stmt *s = q_get(st, Q_GROUP_PAGE_SAME, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, key);
	int rc = sqlite3_step(s);
	q_done(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) return snap_fail(st, err, "group page key");
	if (rc == SQLITE_DONE) return 0;
	*still = true;
	/* a rename only (the upsert writes nothing when the name is the same) */
	s = q_get(st, Q_GROUP_UPSERT, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, display_name);
	return q_run(st, s, err, "group put");
}

int store_group_id_by_name(struct store *st, const char *tenant_id, const char *name, char **id, struct err *err)
{
	*id = NULL;
	sqlite3_stmt *s = q_get(st, Q_GROUP_ID_BY_NAME, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, name);
	int ret = STORE_NOTFOUND, rc;
	char *first = NULL;
	size_t rows = 0;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(s, 0);
		if (rows++ == 0 && v) first = xstrdup(v);
	}
	if (rc != SQLITE_DONE) {
		ret = snap_fail(st, err, "group by name");
	} else if (rows == 1 && first) {
		*id = first;
		first = NULL;
		ret = 0;
	}
	free(first);
	q_done(s);
	return ret;
}

int store_groups_keep_only(struct store *st, const char *tenant_id, const char *const *group_ids, size_t n,
                           long long *dropped, struct err *err)
{
	char **gone = NULL;
	size_t ngone = 0;
	bool owned = false;
	int ret = -1;
	if (dropped) *dropped = 0;
	if (tx_begin(st, &owned, err) != 0) return -1;
	sqlite3_stmt *s = q_get(st, Q_GROUPS_OF_TENANT, err);
	if (!s) goto out;
	bind_text(s, 1, tenant_id);
	if (q_ids_not_in(st, s, group_ids, n, &gone, &ngone, err, "groups") != 0) goto out;
	for (size_t i = 0; i < ngone; i++) {
		s = q_get(st, Q_GROUP_DELETE, err);
		if (!s) goto out;
		bind_text(s, 1, tenant_id);
		bind_text(s, 2, gone[i]);
		if (q_run(st, s, err, "groups") != 0) goto out;
	}
	if (dropped) *dropped = (long long)ngone;
	ret = 0;
out:
	for (size_t i = 0; i < ngone; i++) free(gone[i]);
	free(gone);
	return tx_end(st, owned, ret == 0, err);   /* -1 when ret was */
}
