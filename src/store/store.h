/* store — the one SQLite database of entrasync: schema migrations, the
 * mirror of Entra users per tenant, delta state, links to Syncro contacts,
 * runs, audit, key/value state; and the run lock. Knows no Lua, no HTTP.
 *
 * Conventions of this API
 * - Every fallible function returns 0 on success, negative on failure
 *   (filling *err), and look-ups return STORE_NOTFOUND (positive) when there
 *   is no such row, leaving *out zeroed.
 * - JSON blobs go in and out as plain `const char *` text; the store never
 *   parses them (it treats them as opaque). Timestamps are ISO-8601 UTC text
 *   ("2026-11-26T09:30:00Z") set by the store from the wall clock.
 * - Struct string fields are `const char *` so callers can fill input
 *   structs with literals. Structs returned by *_get own their strings (the
 *   const is only a read-only view); free them with the matching *_free
 *   (which also zeroes the struct, and is a no-op on a zeroed struct).
 *   Structs handed to callbacks of *_each are borrowed: valid only during the
 *   callback, copy what you keep.
 * - A callback returns 0 to go on and non-zero to stop; *_each then returns
 *   that value (so a callback may pass a negative error code through; *err is
 *   then left untouched, so report the callback's error through ud).
 *   Callbacks may call other store functions, including writes; iterators use
 *   their own statement, so nesting iterators is fine.
 * - Units of work: store_begin / store_commit / store_rollback. Functions
 *   called outside a transaction run in autocommit (each its own
 *   transaction). Functions that need several statements to be atomic
 *   (store_mirror_swap, migrations) are atomic on their own, inside or outside
 *   a caller's transaction.
 * - Secrets never go in here: callers pass no tokens, keys or passwords.
 * - One struct store is one SQLite connection; use it from one thread, and
 *   never across fork() (a child opens its own).
 * - The schema (src/store/store_schema.c) already holds tables with no API yet:
 *   intents (the outbox), conflicts, license and secure score snapshots,
 *   per-tenant run results. Later work adds functions for them following the
 *   patterns here (cached prepared statements, _get/_free pairs, _each iterators).
 */
#ifndef ENTRASYNC_STORE_H
#define ENTRASYNC_STORE_H

#include <stdbool.h>
#include "util/util.h"

#define STORE_NOTFOUND 1

struct store;  /* opaque: the connection and its cached prepared statements */

/* ---------------------------------------------------------------- open/close */

/* Opens (creating if missing) the database at path and brings its schema to
 * the latest version. The parent directory is created (0700) if missing; the
 * file (and its -wal/-shm) get mode 0600 whatever the umask. WAL journal,
 * synchronous=NORMAL, foreign keys on, busy timeout 5 s.
 * Refused with a message naming the file: not a SQLite file; a SQLite file
 * that is not an entrasync database; a schema newer than this binary
 * ("database X is schema version 7, this entrasync knows up to 3: upgrade
 * entrasync"). On success *out is the new store (free with store_close). */
int store_open(const char *path, struct store **out, struct err *err);
/* Closes; rolls back a transaction left open. NULL is a no-op. */
void store_close(struct store *st);
/* Whether this connection's commits checkpoint the WAL into the database
 * once it holds 1,000 pages (SQLite's default, on) or never (off: another
 * connection does it, see store_checkpoint_passive, or the last close). */
int store_autocheckpoint(struct store *st, bool on, struct err *err);
/* Copies what it can of the WAL into the database without waiting for
 * (or blocking) other connections' readers and writers; *frames (may be
 * NULL) gets the WAL's frames not yet copied. */
int store_checkpoint_passive(struct store *st, int *frames, struct err *err);
/* The path given to store_open (owned by the store). */
const char *store_path(const struct store *st);

/* PRAGMA user_version of the open database, and the latest this binary
 * knows (the number of migrations in src/store/store_schema.c). */
int store_schema_version(struct store *st);
int store_schema_latest(void);
/* The SQL of migration n (1..latest), or NULL. For store.c and tests. */
const char *store_schema_migration(int n);

/* ---------------------------------------------------------------- extension files */

/* For the store's extension files (src/store/store_<area>.c: snapshots, outbox,
 * billing, …), which keep their own tables' SQL next to their functions
 * but share this connection, its transactions (store_begin) and its
 * statement cache. Nothing outside src/store/ includes sqlite3.h.
 * store_stmt: the prepared statement for sql, which must be a string
 * constant (the cache is keyed on its address); prepared once per store,
 * handed out reset with bindings cleared, finalized by store_close. NULL
 * with err set when the SQL does not prepare. */
struct sqlite3;
struct sqlite3_stmt;
struct sqlite3 *store_sqlite(struct store *st);
struct sqlite3_stmt *store_stmt(struct store *st, const char *sql, struct err *err);

/* ---------------------------------------------------------------- transactions */

/* BEGIN IMMEDIATE (takes the write lock now, waiting up to the busy timeout).
 * Fails if a transaction is already open on this store (no nesting). */
int store_begin(struct store *st, struct err *err);
int store_commit(struct store *st, struct err *err);
/* Rolls back the open transaction; a no-op when none is open. */
int store_rollback(struct store *st, struct err *err);
bool store_in_transaction(struct store *st);
/* A group of statements made atomic whoever opened the transaction: its
 * own transaction (BEGIN IMMEDIATE) when none is open, else a savepoint in
 * the caller's; *own says which. store_atomic_end ends it with ret, the
 * group's result: ret == 0 commits (or releases the savepoint), anything
 * else undoes the group only (rollback, or rollback to the savepoint).
 * Returns ret, or the commit's failure. Groups nest (inner ones are savepoints). */
int store_atomic_begin(struct store *st, bool *own, struct err *err);
int store_atomic_end(struct store *st, bool own, int ret, struct err *err);

/* ---------------------------------------------------------------- tenants */

struct store_tenant {
	const char *id;            /* Microsoft tenant id or the configured id */
	const char *name;
	const char *default_domain;
	long long syncro_customer_id;  /* 0 = unknown */
	const char *policy_hash;   /* hash of the policy last used, or NULL */
	const char *last_pull_at;
	const char *last_sync_at;
	const char *last_status;   /* "ok" | "failed" | "held" | ... */
	const char *last_error;
};
/* Inserts or replaces every column of the tenant row t->id (NULL strings
 * store NULL). Users, links etc. reference tenants: put the tenant first. */
int store_tenant_put(struct store *st, const struct store_tenant *t, struct err *err);
int store_tenant_get(struct store *st, const char *id, struct store_tenant *out, struct err *err);
void store_tenant_free(struct store_tenant *t);
int store_tenant_each(struct store *st, int (*cb)(const struct store_tenant *t, void *ud), void *ud,
                      struct err *err);

/* ---------------------------------------------------------------- user mirror */

struct store_user {
	const char *tenant_id;
	const char *object_id;
	const char *json;          /* the Graph properties, as received */
	const char *removed;       /* NULL, "changed" (soft-deleted) or "deleted" */
	const char *removed_at;    /* when removed was set, or NULL */
	const char *updated_at;
};

/* Which users an iteration or count covers. */
enum store_user_filter {
	STORE_USERS_PRESENT,       /* removed IS NULL */
	STORE_USERS_REMOVED,       /* removed IS NOT NULL */
	STORE_USERS_ALL,
};

/* Inserts or replaces the mirror row (tenant_id, object_id) with json;
 * clears removed (a user that comes back is present again). updated_at
 * moves only when the JSON or the removed state actually changes, so
 * replayed delta pages leave rows as they were. The tenant must exist. */
int store_user_put(struct store *st, const char *tenant_id, const char *object_id, const char *json,
                   struct err *err);
/* store_user_put with json given as len bytes (not NUL-terminated: a
 * slice of a page's text, stored as is; it must be a JSON object). */
int store_user_put_n(struct store *st, const char *tenant_id, const char *object_id, const char *json, size_t len,
                     struct err *err);
/* A user known present (read just before, in the same unit of work, not
 * removed) gets new JSON: store_user_put's effect in that case, without
 * the upsert's conflict path and the removed column's trigger and index;
 * nothing is written when the JSON is the same. */
int store_user_set_json_n(struct store *st, const char *tenant_id, const char *object_id, const char *json,
                          size_t len, struct err *err);
/* Marks the user removed with reason "changed" or "deleted" (Graph's
 * @removed.reason), keeping its last JSON. A user not in the mirror is left
 * absent (nothing to remove). Re-marking keeps the first removed_at. */
int store_user_mark_removed(struct store *st, const char *tenant_id, const char *object_id,
                            const char *reason, struct err *err);
int store_user_get(struct store *st, const char *tenant_id, const char *object_id, struct store_user *out,
                   struct err *err);
/* store_user_get of only json and removed (the rest NULL): what a delta
 * merge reads. */
int store_user_get_json(struct store *st, const char *tenant_id, const char *object_id, struct store_user *out,
                        struct err *err);
void store_user_free(struct store_user *u);
/* Calls cb for each user of the tenant matching filter, in object_id order. */
int store_user_each(struct store *st, const char *tenant_id, enum store_user_filter filter,
                    int (*cb)(const struct store_user *u, void *ud), void *ud, struct err *err);
int store_user_count(struct store *st, const char *tenant_id, enum store_user_filter filter, long long *n,
                     struct err *err);

/* Full resync: replacing a tenant's mirror atomically.
 * A resync round spans many pages and many commits, so it is written into a
 * staging area (per tenant) that leaves the live mirror untouched; only
 * store_mirror_swap changes the live mirror, in one atomic step. An
 * interrupted resync (crash, error, rollback) therefore loses nothing and
 * reports no user as removed; the staged rows survive for a resume (commit
 * them together with the delta next_link), or are dropped by
 * store_mirror_stage_clear when starting over.
 *   stage_clear  — drop the tenant's staged rows (start of a fresh resync).
 *   stage_put    — stage a user present in the full round (replaces).
 *   stage_remove — stage a user returned with @removed (reason as above).
 *   stage_count  — staged rows of the tenant (present + removed).
 *   swap         — in one transaction: staged users become the live mirror
 *                  (present, JSON replaced); staged removals mark live users
 *                  removed; live users absent from the round that are not yet
 *                  removed are marked removed "changed" (gone from the
 *                  directory, maybe restorable); the staging is emptied.
 *                  *n_removed (optional) gets the number of users this newly
 *                  marked removed. Never deletes a mirror row. Staged
 *                  removals of users the mirror lacks are ignored. Rows are
 *                  rewritten only when their JSON changed. Swap only after a
 *                  complete round (the page with the deltaLink): with
 *                  nothing staged, every user would be marked removed.
 *                  Inside a caller's transaction it uses a savepoint and
 *                  commits or rolls back with the caller. */
int store_mirror_stage_clear(struct store *st, const char *tenant_id, struct err *err);
int store_mirror_stage_put(struct store *st, const char *tenant_id, const char *object_id, const char *json,
                           struct err *err);
/* store_mirror_stage_put with json given as len bytes (see store_user_put_n). */
int store_mirror_stage_put_n(struct store *st, const char *tenant_id, const char *object_id, const char *json,
                             size_t len, struct err *err);
int store_mirror_stage_remove(struct store *st, const char *tenant_id, const char *object_id,
                              const char *reason, struct err *err);
int store_mirror_stage_count(struct store *st, const char *tenant_id, long long *n, struct err *err);
int store_mirror_swap(struct store *st, const char *tenant_id, long long *n_removed, struct err *err);

/* ---------------------------------------------------------------- groups */

/* Declared groups (the groups policies refer to) and their memberships. */
int store_group_put(struct store *st, const char *tenant_id, const char *group_id, const char *display_name,
                    struct err *err);
int store_group_member_put(struct store *st, const char *tenant_id, const char *group_id,
                           const char *object_id, struct err *err);
int store_group_member_delete(struct store *st, const char *tenant_id, const char *group_id,
                              const char *object_id, struct err *err);
/* Calls cb(group_id, display_name or NULL, ud) for each group the user is a
 * member of, in group_id order. */
int store_user_groups_each(struct store *st, const char *tenant_id, const char *object_id,
                           int (*cb)(const char *group_id, const char *display_name, void *ud), void *ud,
                           struct err *err);

/* ---------------------------------------------------------------- delta state */

/* Per tenant and resource ("users", "groups"): where the next round starts
 * (delta_link) and, mid-round, where it resumes (next_link). */
struct store_delta {
	const char *delta_link;    /* NULL before the first complete round */
	const char *next_link;     /* NULL when no round is in progress */
	const char *round_started_at;    /* NULL when no round is in progress */
	bool resync;               /* the round in progress is a full resync (staging in use) */
};
int store_delta_get(struct store *st, const char *tenant_id, const char *resource, struct store_delta *out,
                    struct err *err);
/* Inserts or replaces the state (NULL strings store NULL). */
int store_delta_put(struct store *st, const char *tenant_id, const char *resource,
                    const struct store_delta *d, struct err *err);
void store_delta_free(struct store_delta *d);

/* ---------------------------------------------------------------- links */

/* An Entra user linked to a Syncro contact. A contact id is linked at most
 * once per customer. */
struct store_link {
	const char *tenant_id;
	const char *object_id;
	long long contact_id;
	long long customer_id;
	const char *fields;        /* JSON of the contact fields last written */
	const char *stamp;         /* the plan stamp of the inputs last planned (engine_stream.h), or NULL */
	/* JSON of the values the fields a leaver's mark (an on_leave change)
	 * wrote had before it, or NULL: no mark to take out when the user is
	 * back in scope (engine_plan.c) */
	const char *marked;
	const char *created_at;    /* set by the store */
	const char *updated_at;    /* set by the store */
};
/* Inserts or updates the link of (tenant_id, object_id); created_at is kept
 * on update, stamp and marked replaced (a NULL stamp: the next plan
 * evaluates the user). Fails with a clear message when the contact is already linked
 * to another user of the same customer. */
int store_link_put(struct store *st, const struct store_link *l, struct err *err);
int store_link_get(struct store *st, const char *tenant_id, const char *object_id, struct store_link *out,
                   struct err *err);
/* Deleting a link that does not exist is not an error. */
int store_link_delete(struct store *st, const char *tenant_id, const char *object_id, struct err *err);
/* The link to contact_id as a contact of customer_id, or of any customer
 * when customer_id is 0 (Syncro's contact ids are global: a contact is
 * one person's whatever customer a link names). STORE_NOTFOUND if none. */
int store_link_find_contact(struct store *st, long long customer_id, long long contact_id,
                            struct store_link *out, struct err *err);
void store_link_free(struct store_link *l);
int store_link_each(struct store *st, const char *tenant_id, int (*cb)(const struct store_link *l, void *ud),
                    void *ud, struct err *err);

/* ---------------------------------------------------------------- runs */

/* Starts a run of kind ("pull", "sync", "licenses", ...): status "running",
 * started_at now. *run_id gets its id. The caller holds the run lock
 * (store_lock_acquire), so a run left "running" was killed or crashed: it
 * is marked "interrupted" first (finished_at stays NULL). */
int store_run_begin(struct store *st, const char *kind, long long *run_id, struct err *err);
/* Sets finished_at now, status ("ok", "partial", "failed", ...) and an
 * optional summary JSON. */
int store_run_finish(struct store *st, long long run_id, const char *status, const char *summary_json,
                     struct err *err);
/* Records (replacing) the outcome of one tenant in a run: status "ok" |
 * "failed" | "held", counts JSON (optional), reason (optional). */
int store_run_tenant_put(struct store *st, long long run_id, const char *tenant_id, const char *status,
                         const char *counts_json, const char *reason, struct err *err);

/* ---------------------------------------------------------------- audit */

struct store_audit {
	long long id;              /* set by the store */
	const char *at;            /* set by the store on append */
	long long run_id;          /* 0 = none */
	const char *tenant_id;
	const char *object_id;
	long long contact_id;      /* 0 = none */
	const char *action;        /* "create", "update", "archive", ... (required) */
	const char *before;        /* JSON or NULL */
	const char *after;         /* JSON or NULL */
	const char *actor;         /* "entrasync", "operator:<name>", ... */
	const char *result;        /* "ok", "failed: ...", "dry-run" ... */
};
/* Appends a row; a's id and at are ignored. *id (optional) gets the new id. */
int store_audit_append(struct store *st, const struct store_audit *a, long long *id, struct err *err);

struct store_audit_filter {
	const char *tenant_id;     /* NULL = every tenant */
	long long run_id;          /* 0 = every run */
	const char *since;   /* ISO-8601, at >= since; NULL = from the start */
	long long limit;           /* 0 = no limit */
	bool newest_first;         /* default oldest first (id order) */
};
/* f may be NULL (everything, oldest first). */
int store_audit_each(struct store *st, const struct store_audit_filter *f,
                     int (*cb)(const struct store_audit *a, void *ud), void *ud, struct err *err);

/* ---------------------------------------------------------------- key/value */

/* Small misc state (never secrets). get: *value is a new string (free()) or
 * STORE_NOTFOUND. put with value NULL deletes the key; putting the value a
 * key already holds writes nothing (updated_at: when the value last
 * changed). */
int store_kv_get(struct store *st, const char *key, char **value, struct err *err);
int store_kv_put(struct store *st, const char *key, const char *value, struct err *err);

/* ---------------------------------------------------------------- run lock */

/* One entrasync run at a time per database: an flock()ed file "<db>.lock"
 * beside the database (mode 0600, the holder's pid written into it).
 * Non-blocking: when another open file holds it (another process, or another
 * acquisition in this one) it fails with "another entrasync run (pid N)
 * holds the lock on <db>.lock". Released by store_lock_release, and by the
 * kernel when the process dies. The fd is close-on-exec; a forked child
 * shares the holder's lock while it lives and never releases it for the
 * parent (its store_lock_release just closes its copy). The lock file is never unlinked
 * (unlinking flock files races). */
struct store_lock {
	int fd;                    /* the locked file; meaningful while path != NULL */
	char *path;                /* "<db>.lock", owned; NULL when not held */
	long pid;                  /* the acquiring process: a forked child's
	                            * release only closes its copy of fd */
};
int store_lock_acquire(const char *db_path, struct store_lock *lock, struct err *err);
/* Releases (empties the pid, unlocks, closes, frees path). Safe on a zeroed
 * or already released lock. */
void store_lock_release(struct store_lock *lock);

#endif
