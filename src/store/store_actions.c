/* store_actions — the ticket_actions table (per-ticket state of Microsoft
 * actions taken from Syncro tickets; created by store migration 4), on the
 * store's connection and statement cache (store_sqlite, store_stmt).
 * Statements are constants, values only ever bound. See store_actions.h for the states. */
#include "store/store_actions.h"
#include "store/store_sql.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define COLS "ticket_id, customer_id, contact_id, tenant_id, object_id, label, action, state, outcome, message, " \
	"attempts, attempted_at, created_at, updated_at"

enum sa_stmt { S_CLAIM, S_GET, S_SET, S_ATTEMPT, S_OPEN, S__COUNT };

static const char *const sa_sql[S__COUNT] = {
	[S_CLAIM] = "INSERT OR IGNORE INTO ticket_actions (ticket_id, customer_id, contact_id, tenant_id, object_id, "
		"label, action, state, outcome, message, created_at, updated_at) "
		"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
	[S_GET] = "SELECT " COLS " FROM ticket_actions WHERE ticket_id = ?1",
	[S_SET] = "UPDATE ticket_actions SET state = ?2, outcome = coalesce(?3, outcome), "
		"message = coalesce(?4, message), updated_at = ?5 WHERE ticket_id = ?1",
	[S_ATTEMPT] = "UPDATE ticket_actions SET attempts = attempts + 1, attempted_at = ?2, updated_at = ?2 "
		"WHERE ticket_id = ?1",
	[S_OPEN] = "SELECT " COLS " FROM ticket_actions WHERE state <> 'done' ORDER BY created_at, ticket_id",
};

struct store_actions {
	struct store *st;
};

void store_actions_close(struct store_actions *sa)
{
	free(sa);
}

int store_actions_open(struct store *st, struct store_actions **out, struct err *err)
{
	(void)err;
	struct store_actions *sa = xcalloc(1, sizeof *sa);
	sa->st = st;
	*out = sa;
	return 0;
}

/* The cached statement of query id (reset, bindings cleared). */
static sqlite3_stmt *q(struct store_actions *sa, enum sa_stmt id, struct err *err)
{
	return store_stmt(sa->st, sa_sql[id], err);
}

static const char *col_str(sqlite3_stmt *s, int i, bool own)
{
	return own ? col_dup(s, i) : col_borrow(s, i);
}

/* Reads the current row; own = duplicate the strings (else borrow). */
static void row_read(sqlite3_stmt *s, struct store_ticket_action *a, bool own)
{
	a->ticket_id = sqlite3_column_int64(s, 0);
	a->customer_id = sqlite3_column_int64(s, 1);
	a->contact_id = sqlite3_column_int64(s, 2);
	a->tenant_id = col_str(s, 3, own);
	a->object_id = col_str(s, 4, own);
	a->label = col_str(s, 5, own);
	a->action = col_str(s, 6, own);
	a->state = col_str(s, 7, own);
	a->outcome = col_str(s, 8, own);
	a->message = col_str(s, 9, own);
	a->attempts = sqlite3_column_int64(s, 10);
	a->attempted_at = col_str(s, 11, own);
	a->created_at = col_str(s, 12, own);
	a->updated_at = col_str(s, 13, own);
}

/* Adapters for store_sql_lookup (a copy) and store_sql_rows (borrowed). */
static void row_copy(sqlite3_stmt *s, void *out)
{
	row_read(s, out, true);
}

struct each_ctx {
	int (*cb)(const struct store_ticket_action *a, void *ud);
	void *ud;
};

static int row_each(sqlite3_stmt *s, void *ctx)
{
	struct each_ctx *c = ctx;
	struct store_ticket_action a;
	row_read(s, &a, false);
	return c->cb(&a, c->ud);
}

void store_ticket_action_free(struct store_ticket_action *a)
{
	if (!a) return;
	const char *owned[] = { a->tenant_id, a->object_id, a->label, a->action, a->state, a->outcome, a->message,
	                        a->attempted_at, a->created_at, a->updated_at };
	for (size_t i = 0; i < ARRAY_LEN(owned); i++) free((void *)(uintptr_t)owned[i]);
	memset(a, 0, sizeof *a);
}

int store_ticket_action_claim(struct store_actions *sa, const struct store_ticket_action *a, bool *claimed,
                              struct err *err)
{
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = q(sa, S_CLAIM, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, a->ticket_id);
	bind_id(s, 2, a->customer_id);
	bind_id(s, 3, a->contact_id);
	bind_text(s, 4, a->tenant_id);
	bind_text(s, 5, a->object_id);
	bind_text(s, 6, a->label);
	bind_text(s, 7, a->action ? a->action : "ticket");
	bind_text(s, 8, a->state ? a->state : "intent");
	bind_text(s, 9, a->outcome);
	bind_text(s, 10, a->message);
	bind_text(s, 11, now);
	if (store_sql_run(s, err, "ticket actions: claim") != 0) return -1;
	*claimed = sqlite3_changes(store_sqlite(sa->st)) == 1;
	return 0;
}

int store_ticket_action_get(struct store_actions *sa, long long ticket_id, struct store_ticket_action *out,
                            struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = q(sa, S_GET, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	return store_sql_lookup(s, row_copy, out, err, "ticket actions: get");
}

int store_ticket_action_set(struct store_actions *sa, long long ticket_id, const char *state, const char *outcome,
                            const char *message, struct err *err)
{
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = q(sa, S_SET, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	bind_text(s, 2, state);
	bind_text(s, 3, outcome);
	bind_text(s, 4, message);
	bind_text(s, 5, now);
	return store_sql_run(s, err, "ticket actions: update");
}

int store_ticket_action_attempt(struct store_actions *sa, long long ticket_id, struct err *err)
{
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = q(sa, S_ATTEMPT, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, ticket_id);
	bind_text(s, 2, now);
	return store_sql_run(s, err, "ticket actions: attempt");
}

int store_ticket_action_each_open(struct store_actions *sa,
                                  int (*cb)(const struct store_ticket_action *a, void *ud), void *ud,
                                  struct err *err)
{
	sqlite3_stmt *s = q(sa, S_OPEN, err);
	if (!s) return -1;
	struct each_ctx c = { cb, ud };
	return store_sql_rows(s, row_each, &c, err, "ticket actions: list");
}
