/* store_outbox — the intent outbox, open conflicts and the planner's
 * streaming reads, on the store's own SQLite connection so they share its
 * transactions. Statements are constant strings prepared once
 * (SQLITE_PREPARE_PERSISTENT) and cached in struct store_outbox; values are
 * only ever bound. */
#include "store/store_outbox.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_sql.h"

#define STORE_APPLICATION_ID 1164858233 /* "EnSy": the store's migration 1 */

enum ob_stmt {
	O_INTENT_ADD, O_INTENT_FINISH, O_INTENT_OPEN, O_INTENT_COUNT,
	O_CONFLICT_OPEN, O_CONFLICT_RESOLVE, O_CONFLICT_EACH, O_CONFLICT_EACH_ALL,
	O_PLAN_BATCH, O_PLAN_LINKS, O_PLAN_GROUPS, O_LINK_RESTAMP, O_LINK_COUNT,
	O__COUNT
};

#define INTENT_COLS "id, run_id, tenant_id, object_id, action, payload, state, contact_id, error, created_at, " \
	"updated_at"
#define CONFLICT_COLS "id, tenant_id, object_id, candidates, reason, opened_at, resolved_at"

static const char *const ob_sql[O__COUNT] = {
	[O_INTENT_ADD] = "INSERT INTO intents (run_id, tenant_id, object_id, action, payload, state, created_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6)",
	[O_INTENT_FINISH] = "UPDATE intents SET state = ?2, contact_id = ?3, error = ?4, updated_at = ?5 WHERE id = ?1",
	[O_INTENT_OPEN] = "SELECT " INTENT_COLS " FROM intents WHERE tenant_id = ?1 AND state IN ('pending', 'sent') "
		"ORDER BY id",
	[O_INTENT_COUNT] = "SELECT count(*) FROM intents WHERE tenant_id = ?1 AND state = ?2",
	[O_CONFLICT_OPEN] = "INSERT INTO conflicts (tenant_id, object_id, candidates, reason, opened_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant_id, object_id) WHERE resolved_at IS NULL "
		"DO UPDATE SET candidates = excluded.candidates, reason = excluded.reason",
	[O_CONFLICT_RESOLVE] = "UPDATE conflicts SET resolved_at = ?3 WHERE tenant_id = ?1 AND object_id = ?2 "
		"AND resolved_at IS NULL",
	[O_CONFLICT_EACH] = "SELECT " CONFLICT_COLS " FROM conflicts WHERE tenant_id = ?1 AND resolved_at IS NULL "
		"ORDER BY id",
	[O_CONFLICT_EACH_ALL] = "SELECT " CONFLICT_COLS " FROM conflicts WHERE resolved_at IS NULL ORDER BY id",
	/* users, their links and their groups are read side by side, all in
	 * object_id order, and merged (store_plan_batch): sequential reads, no
	 * look-up per user, and links without a user found on the way */
	[O_PLAN_BATCH] = "SELECT object_id, json, removed FROM users WHERE tenant_id = ?1 AND object_id > ?2 "
		"ORDER BY object_id LIMIT ?3",
	[O_PLAN_LINKS] = "SELECT object_id, contact_id, customer_id, fields, stamp, marked FROM links "
		"WHERE tenant_id = ?1 AND object_id > ?2 ORDER BY object_id",
	[O_PLAN_GROUPS] = "SELECT m.object_id, group_concat(coalesce(g.display_name, '') || char(31) || m.group_id, "
		"char(30)) FROM group_members m LEFT JOIN groups g ON g.tenant_id = m.tenant_id AND g.group_id = m.group_id "
		"WHERE m.tenant_id = ?1 AND m.object_id > ?2 GROUP BY m.object_id ORDER BY m.object_id",
	/* a stamp without ":k" (a user in scope, unchanged): no mark is left to take out */
	[O_LINK_RESTAMP] = "UPDATE links SET stamp = ?3, marked = CASE WHEN ?3 LIKE '%:k' THEN marked END "
		"WHERE tenant_id = ?1 AND object_id = ?2",
	[O_LINK_COUNT] = "SELECT count(*) FROM links WHERE tenant_id = ?1",
};

struct store_outbox {
	struct store *st;
	sqlite3 *db;
	sqlite3_stmt *stmts[O__COUNT];
};

/* The store's connection (store_sqlite), checked to be the entrasync
 * database at the store's path. */
static int store_connection(struct store *st, sqlite3 **out, struct err *err)
{
	sqlite3 *db = store_sqlite(st);
	sqlite3_stmt *s = NULL;
	long long app = 0;
	if (!db || !sqlite3_db_filename(db, "main")) return err_set(err, "store: no open connection");
	if (sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		app = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	if (app != STORE_APPLICATION_ID) return err_set(err, "store: %s is not an entrasync database", store_path(st));
	*out = db;
	return 0;
}

int store_outbox_open(struct store *st, struct store_outbox **out, struct err *err)
{
	*out = NULL;
	struct store_outbox *ob = xcalloc(1, sizeof *ob);
	ob->st = st;
	if (store_connection(st, &ob->db, err) != 0) goto fail;
	for (int i = 0; i < O__COUNT; i++) {
		if (sqlite3_prepare_v3(ob->db, ob_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &ob->stmts[i], NULL) != SQLITE_OK) {
			err_set(err, "store: preparing the outbox statements: %s", sqlite3_errmsg(ob->db));
			goto fail;
		}
	}
	*out = ob;
	return 0;
fail:
	store_outbox_close(ob);
	return -1;
}

void store_outbox_close(struct store_outbox *ob)
{
	if (!ob) return;
	for (int i = 0; i < O__COUNT; i++) sqlite3_finalize(ob->stmts[i]);
	free(ob);
}

/* ------------------------------------------------------------------ helpers */

/* The statement id, released from its last use. */
static sqlite3_stmt *stmt(struct store_outbox *ob, enum ob_stmt id)
{
	sqlite3_stmt *s = ob->stmts[id];
	store_sql_release(s);
	return s;
}

/* ------------------------------------------------------------------ intents */

int store_intent_add(struct store_outbox *ob, long long run_id, const char *tenant_id, const char *object_id,
                     const char *action, const char *payload, long long *id, struct err *err)
{
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt(ob, O_INTENT_ADD);
	bind_id(s, 1, run_id);
	bind_text(s, 2, tenant_id);
	bind_text(s, 3, object_id);
	bind_text(s, 4, action);
	bind_text(s, 5, payload);
	bind_text(s, 6, now);
	if (store_sql_run(s, err, "recording an intent") != 0) return -1;
	if (id) *id = sqlite3_last_insert_rowid(ob->db);
	return 0;
}

int store_intent_finish(struct store_outbox *ob, long long id, const char *state, long long contact_id,
                        const char *error, struct err *err)
{
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt(ob, O_INTENT_FINISH);
	sqlite3_bind_int64(s, 1, id);
	bind_text(s, 2, state);
	bind_id(s, 3, contact_id);
	bind_text(s, 4, error);
	bind_text(s, 5, now);
	return store_sql_run(s, err, "closing an intent");
}

struct each_ctx {
	int (*intent_cb)(const struct store_intent *in, void *ud);
	int (*conflict_cb)(const struct store_conflict *c, void *ud);
	void *ud;
};

static int intent_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_intent in = {
		.id = sqlite3_column_int64(s, 0), .run_id = sqlite3_column_int64(s, 1), .tenant_id = col_borrow(s, 2),
		.object_id = col_borrow(s, 3), .action = col_borrow(s, 4), .payload = col_borrow(s, 5),
		.state = col_borrow(s, 6), .contact_id = sqlite3_column_int64(s, 7), .error = col_borrow(s, 8),
		.created_at = col_borrow(s, 9), .updated_at = col_borrow(s, 10),
	};
	return c->intent_cb(&in, c->ud);
}

int store_intent_each_open(struct store_outbox *ob, const char *tenant_id,
                           int (*cb)(const struct store_intent *in, void *ud), void *ud, struct err *err)
{
	sqlite3_stmt *s = stmt(ob, O_INTENT_OPEN);
	bind_text(s, 1, tenant_id);
	struct each_ctx c = { .intent_cb = cb, .ud = ud };
	return store_sql_rows(s, intent_row, &c, err, "reading open intents");
}

int store_intent_count(struct store_outbox *ob, const char *tenant_id, const char *state, long long *n,
                       struct err *err)
{
	sqlite3_stmt *s = stmt(ob, O_INTENT_COUNT);
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, state);
	return store_sql_count(s, n, err, "counting intents");
}

/* ------------------------------------------------------------------ conflicts */

int store_conflict_open(struct store_outbox *ob, const char *tenant_id, const char *object_id,
                        const char *candidates_json, const char *reason, struct err *err)
{
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt(ob, O_CONFLICT_OPEN);
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	bind_text(s, 3, candidates_json);
	bind_text(s, 4, reason ? reason : "conflict");
	bind_text(s, 5, now);
	return store_sql_run(s, err, "recording a conflict");
}

int store_conflict_resolve(struct store_outbox *ob, const char *tenant_id, const char *object_id,
                           struct err *err)
{
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt(ob, O_CONFLICT_RESOLVE);
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	bind_text(s, 3, now);
	return store_sql_run(s, err, "resolving a conflict");
}

static int conflict_row(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_conflict cf = {
		.id = sqlite3_column_int64(s, 0), .tenant_id = col_borrow(s, 1), .object_id = col_borrow(s, 2),
		.candidates = col_borrow(s, 3), .reason = col_borrow(s, 4), .opened_at = col_borrow(s, 5),
		.resolved_at = col_borrow(s, 6),
	};
	return c->conflict_cb(&cf, c->ud);
}

int store_conflict_each_open(struct store_outbox *ob, const char *tenant_id,
                             int (*cb)(const struct store_conflict *c, void *ud), void *ud, struct err *err)
{
	sqlite3_stmt *s = stmt(ob, tenant_id ? O_CONFLICT_EACH : O_CONFLICT_EACH_ALL);
	if (tenant_id) bind_text(s, 1, tenant_id);
	struct each_ctx c = { .conflict_cb = cb, .ud = ud };
	return store_sql_rows(s, conflict_row, &c, err, "reading conflicts");
}

/* ------------------------------------------------------------------ planning reads */

/* A cursor of the merge: a statement in object_id order and its last step
 * (SQLITE_ROW while it has a row). */
struct cursor {
	sqlite3_stmt *s;
	int rc;
};

static void cursor_next(struct cursor *c)
{
	c->rc = sqlite3_step(c->s);
}

/* The cursor's object_id, or NULL when it has no row. */
static const char *cursor_id(const struct cursor *c)
{
	return c->rc == SQLITE_ROW ? col_borrow(c->s, 0) : NULL;
}

/* The groups of user oid, advancing the groups cursor up to there (both go
 * in object_id order; BINARY collation = strcmp). "" when none. */
static const char *merged_groups(struct cursor *g, const char *oid)
{
	for (const char *gid; (gid = cursor_id(g)); cursor_next(g)) {
		int cmp = strcmp(gid, oid);
		if (cmp == 0) return col_borrow(g->s, 1) ? col_borrow(g->s, 1) : "";
		if (cmp > 0) break;
	}
	return "";
}

/* The link cursor's row as a user gone from the mirror. */
static int orphan_row(struct cursor *l, int (*cb)(const struct store_plan_row *r, void *ud), void *ud)
{
	struct store_plan_row r = {
		.object_id = col_borrow(l->s, 0), .removed = "deleted", .linked = true,
		.contact_id = sqlite3_column_int64(l->s, 1), .customer_id = sqlite3_column_int64(l->s, 2),
		.fields = col_borrow(l->s, 3), .stamp = col_borrow(l->s, 4), .marked = col_borrow(l->s, 5), .groups = "",
	};
	return cb(&r, ud);
}

int store_plan_batch(struct store_outbox *ob, const char *tenant_id, const char *after, long long limit,
                     int (*cb)(const struct store_plan_row *r, void *ud), void *ud, char **next,
                     struct err *err)
{
	struct cursor u = { stmt(ob, O_PLAN_BATCH), 0 }, l = { stmt(ob, O_PLAN_LINKS), 0 },
	              g = { stmt(ob, O_PLAN_GROUPS), 0 };
	struct cursor *all[] = { &u, &l, &g };
	char *last_user = NULL;
	long long users = 0;
	int rc = 0;
	if (next) *next = NULL;
	for (size_t i = 0; i < ARRAY_LEN(all); i++) {
		bind_text(all[i]->s, 1, tenant_id);
		bind_text(all[i]->s, 2, after ? after : "");
	}
	sqlite3_bind_int64(u.s, 3, limit);
	for (size_t i = 0; i < ARRAY_LEN(all); i++) cursor_next(all[i]);
	for (;;) {
		const char *uid = cursor_id(&u), *lid;
		if (u.rc != SQLITE_ROW && u.rc != SQLITE_DONE) break;
		/* links before this user have no user: gone from the mirror (after
		 * the last user, only once no batch follows) */
		while (!rc && (lid = cursor_id(&l)) && (uid ? strcmp(lid, uid) < 0 : users < limit)) {
			rc = orphan_row(&l, cb, ud);
			cursor_next(&l);
		}
		if (rc || !uid) break;
		bool linked = (lid = cursor_id(&l)) && strcmp(lid, uid) == 0;
		struct store_plan_row r = {
			.object_id = uid, .json = col_borrow(u.s, 1), .removed = col_borrow(u.s, 2), .linked = linked,
			.contact_id = linked ? sqlite3_column_int64(l.s, 1) : 0,
			.customer_id = linked ? sqlite3_column_int64(l.s, 2) : 0,
			.fields = linked ? col_borrow(l.s, 3) : NULL, .stamp = linked ? col_borrow(l.s, 4) : NULL,
			.marked = linked ? col_borrow(l.s, 5) : NULL,
			.groups = merged_groups(&g, uid),
		};
		users++;
		if (users == limit) {
			free(last_user);
			last_user = xstrdup(uid);
		}
		if ((rc = cb(&r, ud))) break;
		if (linked) cursor_next(&l);
		cursor_next(&u);
	}
	for (size_t i = 0; i < ARRAY_LEN(all) && !rc; i++)
		if (all[i]->rc != SQLITE_ROW && all[i]->rc != SQLITE_DONE)
			rc = store_sql_fail(all[i]->s, err, "reading users to plan");
	for (size_t i = 0; i < ARRAY_LEN(all); i++) store_sql_release(all[i]->s);
	if (!rc && next && users == limit) *next = last_user;
	else free(last_user);
	return rc;
}

int store_link_restamp(struct store_outbox *ob, const char *tenant_id, const char *object_id, const char *stamp,
                       struct err *err)
{
	sqlite3_stmt *s = stmt(ob, O_LINK_RESTAMP);
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	bind_text(s, 3, stamp && *stamp ? stamp : NULL);
	return store_sql_run(s, err, "restamping a link");
}

int store_link_count(struct store_outbox *ob, const char *tenant_id, long long *n, struct err *err)
{
	sqlite3_stmt *s = stmt(ob, O_LINK_COUNT);
	bind_text(s, 1, tenant_id);
	return store_sql_count(s, n, err, "counting links");
}
