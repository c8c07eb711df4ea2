/* store_outbox — the sync engine's tables in the store (the schema in
 * src/store/store_schema.c has them; store.c has no API for them): the intent
 * outbox (one row per Syncro write, recorded before it is sent), open
 * conflicts, and the streaming reads the planner needs (mirrored users with
 * their link and declared groups in one pass, in batches).
 *
 * A struct store_outbox holds cached prepared statements on the store's own
 * SQLite connection, so its writes join the store's transactions
 * (store_begin/store_commit): the result of a write, its link and its audit
 * row commit together. Conventions as in store.h: 0 / negative with *err,
 * strings handed to callbacks are borrowed for the callback's duration,
 * a callback returns non-zero to stop (and that value is returned).
 * Close the outbox before store_close. */
#ifndef ENTRASYNC_STORE_OUTBOX_H
#define ENTRASYNC_STORE_OUTBOX_H

#include <stdbool.h>
#include "store/store.h"
#include "util/util.h"

struct store_outbox;

/* Prepares the statements on st's connection. *out: store_outbox_close. */
int store_outbox_open(struct store *st, struct store_outbox **out, struct err *err);
void store_outbox_close(struct store_outbox *ob);

/* ---------------------------------------------------------------- intents */

struct store_intent {
	long long id;
	long long run_id;          /* 0 = none */
	const char *tenant_id;
	const char *object_id;     /* may be NULL */
	const char *action;        /* "create", "update", "delete", ... */
	const char *payload;       /* JSON: what is sent, and what recovery needs */
	const char *state;         /* "pending" | "sent" | "done" | "failed" */
	long long contact_id;      /* 0 = none (yet) */
	const char *error;
	const char *created_at;
	const char *updated_at;
};

/* Records an intent in state "pending"; *id gets its id. Outside a
 * transaction it is committed when this returns (autocommit): call it that
 * way before sending, so a crash after the send finds it. */
int store_intent_add(struct store_outbox *ob, long long run_id, const char *tenant_id, const char *object_id,
                     const char *action, const char *payload, long long *id, struct err *err);
/* Closes an intent: state "done" or "failed", the contact id (0 = NULL) and
 * an error message (or NULL). */
int store_intent_finish(struct store_outbox *ob, long long id, const char *state, long long contact_id,
                        const char *error, struct err *err);
/* Calls cb for each open ("pending" or "sent") intent of the tenant, oldest
 * first. The callback must not write intents (copy them, then finish them
 * after this returns). */
int store_intent_each_open(struct store_outbox *ob, const char *tenant_id,
                           int (*cb)(const struct store_intent *in, void *ud), void *ud, struct err *err);
/* Counts a tenant's intents in a state (tests, reports). */
int store_intent_count(struct store_outbox *ob, const char *tenant_id, const char *state, long long *n,
                       struct err *err);

/* ---------------------------------------------------------------- conflicts */

struct store_conflict {
	long long id;
	const char *tenant_id;
	const char *object_id;
	const char *candidates;    /* JSON array of contact ids */
	const char *reason;
	const char *opened_at;
	const char *resolved_at;   /* NULL while open */
};

/* Opens (or refreshes the candidates and reason of) the user's open conflict. */
int store_conflict_open(struct store_outbox *ob, const char *tenant_id, const char *object_id,
                        const char *candidates_json, const char *reason, struct err *err);
/* Resolves the user's open conflict, if any (resolved_at = now). */
int store_conflict_resolve(struct store_outbox *ob, const char *tenant_id, const char *object_id,
                           struct err *err);
/* Open conflicts of a tenant (NULL = every tenant), oldest first. */
int store_conflict_each_open(struct store_outbox *ob, const char *tenant_id,
                             int (*cb)(const struct store_conflict *c, void *ud), void *ud, struct err *err);

/* ---------------------------------------------------------------- planning reads */

/* One mirrored user with what planning needs. */
struct store_plan_row {
	const char *object_id;
	const char *json;          /* Graph properties; NULL for a link without a mirror row */
	const char *removed;       /* NULL, "changed" or "deleted" (a link without a user: "deleted") */
	bool linked;
	long long contact_id;      /* when linked */
	long long customer_id;
	const char *fields;        /* the link's fields JSON, or NULL */
	const char *stamp;         /* the link's plan stamp, or NULL */
	const char *marked;        /* the link's marked values (store_link), or NULL */
	/* The declared groups the user is a member of, as
	 * "display_name\x1Fgroup_id" records separated by "\x1E" ("" = none). */
	const char *groups;
};

/* Calls cb for up to limit users of the tenant with object_id > after (""
 * = from the start), in object_id order, each with its link and groups,
 * and for the tenant's links whose user is not in the mirror at all (json
 * NULL, removed "deleted") in their place in that order. Users, links and
 * groups are read side by side in object_id order (no look-up per user).
 * *next (optional, caller frees) gets where the next batch starts (its
 * after), NULL when this batch was the last (fewer than limit users).
 * The callback must not write (copy the rows); the statements are reset
 * before returning, so the caller may write between batches. */
int store_plan_batch(struct store_outbox *ob, const char *tenant_id, const char *after, long long limit,
                     int (*cb)(const struct store_plan_row *r, void *ud), void *ud, char **next,
                     struct err *err);
/* Sets the plan stamp of an existing link (NULL clears it): an unchanged
 * user whose inputs changed. A stamp of a user in scope (no ":k") also
 * clears the link's marked values: planned unchanged, no mark is left to
 * take out. No link: nothing, not an error. */
int store_link_restamp(struct store_outbox *ob, const char *tenant_id, const char *object_id, const char *stamp,
                       struct err *err);
/* The tenant's links. */
int store_link_count(struct store_outbox *ob, const char *tenant_id, long long *n, struct err *err);

#endif
