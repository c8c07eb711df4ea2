/* store — the SQLite database: opening (file modes, pragmas, identity and
 * version checks, migrations), transactions, and the tenants, user mirror,
 * groups, delta state, links, runs, audit and key/value tables. Every
 * statement is a constant string prepared once (SQLITE_PREPARE_PERSISTENT)
 * and cached in struct store; values are only ever bound. Iterators prepare
 * their own statement per call so they can nest and re-enter. */
#include "store/store.h"
#include "store/store_snapshots.h"
#include "store/store_sql.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STORE_APPLICATION_ID 1164858233 /* "EnSy", set by migration 1 */
#define STORE_BUSY_TIMEOUT_MS 5000

/* The cached statements. Add an id here and its SQL in stmt_sql. */
enum stmt_id {
	S_BEGIN, S_COMMIT, S_ROLLBACK, S_SAVEPOINT, S_RELEASE, S_ROLLBACK_TO,
	S_TENANT_PUT, S_TENANT_GET,
	S_USER_PUT, S_USER_SET_JSON, S_USER_REMOVE, S_USER_GET, S_USER_GET_JSON,
	S_USER_COUNT_PRESENT, S_USER_COUNT_REMOVED, S_USER_COUNT_ALL,
	S_STAGE_CLEAR, S_STAGE_OTHERS, S_STAGE_TRUNCATE, S_STAGE_PUT, S_STAGE_REMOVE, S_STAGE_COUNT,
	S_SWAP_ABSENT, S_SWAP_COUNT_NEWLY_REMOVED, S_SWAP_REMOVED, S_SWAP_PRESENT,
	S_GROUP_PUT, S_MEMBER_PUT, S_MEMBER_DELETE,
	S_DELTA_GET, S_DELTA_PUT,
	S_LINK_PUT, S_LINK_GET, S_LINK_DELETE, S_LINK_FIND_CONTACT,
	S_RUN_BEGIN, S_RUN_INTERRUPTED, S_RUN_FINISH, S_RUN_TENANT_PUT,
	S_AUDIT_APPEND,
	S_KV_GET, S_KV_PUT, S_KV_DELETE,
	S__COUNT
};

#define USER_COLS "tenant_id, object_id, json, removed, removed_at, updated_at"
#define LINK_COLS "tenant_id, object_id, contact_id, customer_id, fields, created_at, updated_at, stamp, marked"
#define TENANT_COLS "id, name, default_domain, syncro_customer_id, policy_hash, last_pull_at, " \
	"last_sync_at, last_status, last_error"

static const char *const stmt_sql[S__COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_SAVEPOINT] = "SAVEPOINT store_atomic",
	[S_RELEASE] = "RELEASE store_atomic",
	[S_ROLLBACK_TO] = "ROLLBACK TO store_atomic",

	[S_TENANT_PUT] = "INSERT INTO tenants (" TENANT_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
		"ON CONFLICT (id) DO UPDATE SET name = ?2, default_domain = ?3, syncro_customer_id = ?4, "
		"policy_hash = ?5, last_pull_at = ?6, last_sync_at = ?7, last_status = ?8, last_error = ?9",
	[S_TENANT_GET] = "SELECT " TENANT_COLS " FROM tenants WHERE id = ?1",

	/* updated_at moves only on a real change (replays are no-ops). */
	[S_USER_PUT] = "INSERT INTO users (tenant_id, object_id, json, updated_at) VALUES (?1, ?2, ?3, ?4) "
		"ON CONFLICT (tenant_id, object_id) DO UPDATE SET json = excluded.json, removed = NULL, "
		"removed_at = NULL, updated_at = excluded.updated_at "
		"WHERE json IS NOT excluded.json OR removed IS NOT NULL",
	/* a present user's new JSON: no trigger or partial index to consult
	 * (removed is left alone), nothing written when equal */
	[S_USER_SET_JSON] = "UPDATE users SET json = ?3, updated_at = ?4 WHERE tenant_id = ?1 AND object_id = ?2 "
		"AND removed IS NULL AND json IS NOT ?3",
	[S_USER_REMOVE] = "UPDATE users SET removed = ?3, removed_at = coalesce(removed_at, ?4), updated_at = ?4 "
		"WHERE tenant_id = ?1 AND object_id = ?2 AND removed IS NOT ?3",
	[S_USER_GET] = "SELECT " USER_COLS " FROM users WHERE tenant_id = ?1 AND object_id = ?2",
	[S_USER_GET_JSON] = "SELECT json, removed FROM users WHERE tenant_id = ?1 AND object_id = ?2",
	/* kept on the tenant's row by triggers (migration 8) */
	[S_USER_COUNT_PRESENT] = "SELECT coalesce((SELECT users_present FROM tenants WHERE id = ?1), 0)",
	[S_USER_COUNT_REMOVED] = "SELECT count(*) FROM users WHERE tenant_id = ?1 AND removed IS NOT NULL",
	[S_USER_COUNT_ALL] = "SELECT count(*) FROM users WHERE tenant_id = ?1",

	[S_STAGE_CLEAR] = "DELETE FROM users_staging WHERE tenant_id = ?1",
	/* Whether other tenants have staged rows (two index probes). */
	[S_STAGE_OTHERS] = "SELECT EXISTS (SELECT 1 FROM users_staging WHERE tenant_id < ?1) "
		"OR EXISTS (SELECT 1 FROM users_staging WHERE tenant_id > ?1)",
	/* Without a WHERE, SQLite drops the table's pages wholesale. */
	[S_STAGE_TRUNCATE] = "DELETE FROM users_staging",
	[S_STAGE_PUT] = "INSERT INTO users_staging (tenant_id, object_id, json, removed) VALUES (?1, ?2, ?3, NULL) "
		"ON CONFLICT (tenant_id, object_id) DO UPDATE SET json = excluded.json, removed = NULL",
	[S_STAGE_REMOVE] = "INSERT INTO users_staging (tenant_id, object_id, json, removed) VALUES (?1, ?2, NULL, ?3) "
		"ON CONFLICT (tenant_id, object_id) DO UPDATE SET json = NULL, removed = excluded.removed",
	[S_STAGE_COUNT] = "SELECT count(*) FROM users_staging WHERE tenant_id = ?1",
	[S_SWAP_ABSENT] = "UPDATE users SET removed = 'changed', removed_at = ?2, updated_at = ?2 "
		"WHERE tenant_id = ?1 AND removed IS NULL AND NOT EXISTS (SELECT 1 FROM users_staging s "
		"WHERE s.tenant_id = ?1 AND s.object_id = users.object_id)",
	[S_SWAP_COUNT_NEWLY_REMOVED] = "SELECT count(*) FROM users u JOIN users_staging s "
		"ON s.tenant_id = u.tenant_id AND s.object_id = u.object_id "
		"WHERE u.tenant_id = ?1 AND u.removed IS NULL AND s.removed IS NOT NULL",
	[S_SWAP_REMOVED] = "UPDATE users SET removed = s.removed, removed_at = coalesce(users.removed_at, ?2), "
		"updated_at = ?2 FROM users_staging s WHERE s.tenant_id = ?1 AND users.tenant_id = ?1 "
		"AND users.object_id = s.object_id AND s.removed IS NOT NULL AND users.removed IS NOT s.removed",
	[S_SWAP_PRESENT] = "INSERT INTO users (tenant_id, object_id, json, updated_at) "
		"SELECT tenant_id, object_id, json, ?2 FROM users_staging WHERE tenant_id = ?1 AND json IS NOT NULL "
		"ON CONFLICT (tenant_id, object_id) DO UPDATE SET json = excluded.json, removed = NULL, "
		"removed_at = NULL, updated_at = excluded.updated_at "
		"WHERE json IS NOT excluded.json OR removed IS NOT NULL",

	[S_GROUP_PUT] = "INSERT INTO groups (tenant_id, group_id, display_name) VALUES (?1, ?2, ?3) "
		"ON CONFLICT (tenant_id, group_id) DO UPDATE SET display_name = excluded.display_name",
	[S_MEMBER_PUT] = "INSERT OR IGNORE INTO group_members (tenant_id, group_id, object_id) VALUES (?1, ?2, ?3)",
	[S_MEMBER_DELETE] = "DELETE FROM group_members WHERE tenant_id = ?1 AND group_id = ?2 AND object_id = ?3",

	[S_DELTA_GET] = "SELECT delta_link, next_link, round_started_at, resync FROM delta_state "
		"WHERE tenant_id = ?1 AND resource = ?2",
	[S_DELTA_PUT] = "INSERT INTO delta_state (tenant_id, resource, delta_link, next_link, round_started_at, "
		"resync, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (tenant_id, resource) DO UPDATE SET "
		"delta_link = ?3, next_link = ?4, round_started_at = ?5, resync = ?6, updated_at = ?7",

	[S_LINK_PUT] = "INSERT INTO links (" LINK_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8) "
		"ON CONFLICT (tenant_id, object_id) DO UPDATE SET contact_id = ?3, customer_id = ?4, fields = ?5, "
		"updated_at = ?6, stamp = ?7, marked = ?8",
	[S_LINK_GET] = "SELECT " LINK_COLS " FROM links WHERE tenant_id = ?1 AND object_id = ?2",
	[S_LINK_DELETE] = "DELETE FROM links WHERE tenant_id = ?1 AND object_id = ?2",
	[S_LINK_FIND_CONTACT] = "SELECT " LINK_COLS " FROM links WHERE contact_id = ?2 AND (?1 = 0 OR customer_id = ?1) "
	                        "LIMIT 1",

	[S_RUN_BEGIN] = "INSERT INTO runs (kind, started_at, status) VALUES (?1, ?2, 'running')",
	[S_RUN_INTERRUPTED] = "UPDATE runs SET status = 'interrupted' WHERE status = 'running'",
	[S_RUN_FINISH] = "UPDATE runs SET finished_at = ?2, status = ?3, summary = ?4 WHERE id = ?1",
	[S_RUN_TENANT_PUT] = "INSERT INTO run_tenants (run_id, tenant_id, status, counts, reason) "
		"VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (run_id, tenant_id) DO UPDATE SET "
		"status = ?3, counts = ?4, reason = ?5",

	[S_AUDIT_APPEND] = "INSERT INTO audit (at, run_id, tenant_id, object_id, contact_id, action, before, "
		"after, actor, result) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",

	[S_KV_GET] = "SELECT value FROM kv WHERE key = ?1",
	[S_KV_PUT] = "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3) "
		"ON CONFLICT (key) DO UPDATE SET value = ?2, updated_at = ?3 WHERE value IS NOT ?2",
	[S_KV_DELETE] = "DELETE FROM kv WHERE key = ?1",
};

/* A statement of an extension file (store_stmt), keyed by its SQL's address. */
struct store_ext_stmt {
	const char *sql;
	sqlite3_stmt *stmt;
};

struct store {
	sqlite3 *db;
	char *path;
	sqlite3_stmt *stmts[S__COUNT];
	struct store_ext_stmt *ext;    /* extension files' cached statements */
	size_t n_ext, cap_ext;
	long long now_sec;             /* the second now_text was formatted for */
	char now_text[32];             /* now_iso_cached's last answer */
};

/* ------------------------------------------------------------------ helpers */

static int db_fail(struct store *st, struct err *err, const char *what)
{
	return err_set(err, "store: %s: %s", what, sqlite3_errmsg(st->db));
}

/* store_sql_now, formatted once a second: a page of 999 users written in the
 * same second would otherwise format the same text 999 times. */
static void now_iso_cached(struct store *st, char buf[32])
{
	double now = time_now();
	long long sec = (long long)now;
	if (sec != st->now_sec || !st->now_text[0]) {
		time_iso8601(now, st->now_text, sizeof st->now_text);
		st->now_sec = sec;
	}
	memcpy(buf, st->now_text, sizeof st->now_text);
}

/* The cached statement id, prepared on first use, reset and unbound. */
static sqlite3_stmt *stmt_get(struct store *st, enum stmt_id id, struct err *err)
{
	sqlite3_stmt *s = st->stmts[id];
	if (!s) {
		if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
			db_fail(st, err, "prepare");
			return NULL;
		}
		st->stmts[id] = s;
	}
	return s;
}

/* Frees a string a struct field owns behind its read-only `const char *`. */
static void free_owned(const char *p)
{
	union { const char *c; char *m; } v = { p };
	free(v.m);
}

/* Runs a cached no-argument statement. */
static int stmt_exec(struct store *st, enum stmt_id id, struct err *err, const char *what)
{
	sqlite3_stmt *s = stmt_get(st, id, err);
	if (!s) return -1;
	return store_sql_run(s, err, what);
}

/* Prepares an uncached statement for an iterator. */
static sqlite3_stmt *stmt_prepare_once(struct store *st, const char *sql, struct err *err)
{
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v3(st->db, sql, -1, 0, &s, NULL) != SQLITE_OK) {
		db_fail(st, err, "prepare");
		return NULL;
	}
	return s;
}

/* Steps an iterator statement (store_sql_rows) and finalizes it. ctx is
 * the iterator's own struct holding the caller's typed callback and ud. */
static int stmt_iterate(sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *ctx), void *ctx, struct err *err,
                        const char *what)
{
	int ret = store_sql_rows(s, row, ctx, err, what);
	sqlite3_finalize(s);
	return ret;
}

static bool removed_reason_valid(const char *reason)
{
	return reason && (strcmp(reason, "changed") == 0 || strcmp(reason, "deleted") == 0);
}

/* A constraint failure explained for a user of the API. */
static int write_fail(struct store *st, struct err *err, const char *what, const char *tenant_id)
{
	if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
		return err_set(err, "store: %s: tenant '%s' is not in the store (store_tenant_put it first)", what,
		               tenant_id ? tenant_id : "");
	return db_fail(st, err, what);
}

/* Like store_sql_run, with write_fail's messages. */
static int stmt_write(struct store *st, sqlite3_stmt *s, struct err *err, const char *what, const char *tenant_id)
{
	int rc = sqlite3_step(s);
	int ret = 0;
	if (rc != SQLITE_DONE) ret = write_fail(st, err, what, tenant_id);
	store_sql_release(s);
	return ret;
}

/* mkdir -p of the folder holding path, new folders 0700. */
static int make_parent_dirs(const char *path, struct err *err)
{
	char *dir = xstrdup(path);
	int ret = 0;
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir) goto out;
	*slash = '\0';
	for (char *p = dir + 1; ; p++) {
		if (*p != '/' && *p != '\0') continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(dir, 0700) == 0) {
			/* umask-independent, like the database file */
			if (chmod(dir, 0700) != 0) {
				ret = err_set(err, "cannot set mode 0700 on %s: %s", dir, strerror(errno));
				goto out;
			}
		} else if (errno != EEXIST) {
			ret = err_set(err, "cannot create directory %s: %s", dir, strerror(errno));
			goto out;
		}
		*p = saved;
		if (!saved) break;
	}
out:
	free(dir);
	return ret;
}

/* chmod 0600 of path when it exists and has another mode. */
static int fix_mode(const char *path, struct err *err)
{
	struct stat sb;
	if (stat(path, &sb) != 0) {
		if (errno == ENOENT) return 0;
		return err_set(err, "cannot stat %s: %s", path, strerror(errno));
	}
	if ((sb.st_mode & 07777) != 0600 && chmod(path, 0600) != 0)
		return err_set(err, "cannot set mode 0600 on %s: %s", path, strerror(errno));
	return 0;
}

/* Fixes the modes of the database and its -wal and -shm. */
static int fix_modes(const char *path, struct err *err)
{
	static const char *const suffixes[] = { "", "-wal", "-shm" };
	for (size_t i = 0; i < ARRAY_LEN(suffixes); i++) {
		char *p = xasprintf("%s%s", path, suffixes[i]);
		int rc = fix_mode(p, err);
		free(p);
		if (rc) return rc;
	}
	return 0;
}

/* Creates the database file 0600 (umask-independent) if it is missing. We
 * never open an existing database file ourselves: closing any fd on it
 * would drop the POSIX locks SQLite holds through other connections. */
static int create_db_file(const char *path, struct err *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (errno == EEXIST) return 0;
		return err_set(err, "cannot create database %s: %s", path, strerror(errno));
	}
	int ret = 0;
	if (fchmod(fd, 0600) != 0) ret = err_set(err, "cannot set mode 0600 on %s: %s", path, strerror(errno));
	close(fd);
	return ret;
}

/* The integer result of a constant pragma query. */
static int pragma_int(struct store *st, const char *sql, long long *v, struct err *err)
{
	sqlite3_stmt *s = NULL;
	int ret = 0;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK || sqlite3_step(s) != SQLITE_ROW)
		ret = -1;
	else
		*v = sqlite3_column_int64(s, 0);
	if (ret) {
		int code = sqlite3_errcode(st->db) & 0xff;
		if (code == SQLITE_NOTADB)
			err_set(err, "%s is not a SQLite database (%s)", st->path, sqlite3_errmsg(st->db));
		else
			err_set(err, "cannot read database %s: %s", st->path, sqlite3_errmsg(st->db));
	}
	sqlite3_finalize(s);
	return ret;
}

/* Checks the file is an entrasync database this binary can use. A fresh
 * (empty) database passes with version 0. */
static int check_identity(struct store *st, long long *version, struct err *err)
{
	long long app_id = 0, objects = 0;
	if (pragma_int(st, "PRAGMA application_id", &app_id, err)) return -1;
	if (pragma_int(st, "PRAGMA user_version", version, err)) return -1;
	if (pragma_int(st, "SELECT count(*) FROM sqlite_schema", &objects, err)) return -1;
	if (app_id != STORE_APPLICATION_ID && (app_id != 0 || objects > 0 || *version != 0))
		return err_set(err, "%s is a SQLite database but not an entrasync one (application_id %lld)",
		               st->path, app_id);
	if (*version > store_schema_latest())
		return err_set(err, "database %s is schema version %lld, this entrasync knows up to %d: upgrade entrasync",
		               st->path, *version, store_schema_latest());
	return 0;
}

/* Applies migrations from the current version up to the latest, each in
 * its own transaction with its user_version bump. The version is re-read
 * inside the transaction: another process may have migrated meanwhile. */
static int migrate(struct store *st, struct err *err)
{
	for (;;) {
		long long version = 0;
		char *msg = NULL;
		if (store_begin(st, err)) return err_prefix(err, "migrating %s", st->path);
		if (check_identity(st, &version, err)) goto fail;
		if (version >= store_schema_latest()) return store_commit(st, err);
		int next = (int)version + 1;
		/* The version is our own integer, not a value from outside. */
		char bump[64];
		snprintf(bump, sizeof bump, "PRAGMA user_version = %d", next);
		if (sqlite3_exec(st->db, store_schema_migration(next), NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(st->db, bump, NULL, NULL, &msg) != SQLITE_OK) {
			err_set(err, "migrating %s to schema version %d: %s", st->path, next, msg ? msg : "?");
			sqlite3_free(msg);
			goto fail;
		}
		if (store_commit(st, err)) goto fail;
	}
fail:
	store_rollback(st, NULL);
	return -1;
}

/* ------------------------------------------------------------------ open/close */

#define BUSY_SHORT_TRIES 100   /* 25 us each: the first ~2.5 ms, a short transaction's length many times over */

long store_busy_step_us(int count)
{
	long long waited_us = 0, step = 25;
	for (int i = 0; i < count; i++) {
		waited_us += step;
		if (waited_us >= STORE_BUSY_TIMEOUT_MS * 1000LL) return 0;
		if (i + 1 >= BUSY_SHORT_TRIES) step = step * 2 > 10000 ? 10000 : step * 2;
	}
	return (long)step;
}

/* SQLite's busy handler: sleeps store_busy_step_us, or gives up (0). */
static int store_busy_wait(void *ud, int count)
{
	(void)ud;
	long us = store_busy_step_us(count);
	if (us == 0) return 0;
	struct timespec ts = { .tv_sec = 0, .tv_nsec = us * 1000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
	return 1;
}

int store_open(const char *path, struct store **out, struct err *err)
{
	struct store *st = xcalloc(1, sizeof *st);
	long long version = 0;
	char *msg = NULL;
	*out = NULL;
	st->path = xstrdup(path);
	if (make_parent_dirs(path, err) || create_db_file(path, err)) goto fail;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	if (sqlite3_open_v2(path, &st->db, flags, NULL) != SQLITE_OK) {
		err_set(err, "cannot open database %s: %s", path, st->db ? sqlite3_errmsg(st->db) : "out of memory");
		goto fail;
	}
	sqlite3_busy_handler(st->db, store_busy_wait, NULL);
	if (check_identity(st, &version, err)) goto fail;
	long long fk = 0;
	if (sqlite3_exec(st->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON",
	                 NULL, NULL, &msg) != SQLITE_OK) {
		err_set(err, "cannot set up database %s: %s", path, msg ? msg : "?");
		goto fail;
	}
	if (pragma_int(st, "PRAGMA foreign_keys", &fk, err)) goto fail;
	if (fk != 1) {
		err_set(err, "database %s: foreign keys could not be enabled", path);
		goto fail;
	}
	/* Only a database behind takes the write lock: readers opening during
	 * another process's long write transaction must not wait for it. */
	if (version < store_schema_latest() && migrate(st, err)) goto fail;
	if (fix_modes(path, err)) goto fail;
	*out = st;
	return 0;
fail:
	sqlite3_free(msg);
	store_close(st);
	return -1;
}

void store_close(struct store *st)
{
	if (!st) return;
	if (st->db && !sqlite3_get_autocommit(st->db)) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	for (int i = 0; i < S__COUNT; i++) sqlite3_finalize(st->stmts[i]);
	for (size_t i = 0; i < st->n_ext; i++) sqlite3_finalize(st->ext[i].stmt);
	free(st->ext);
	sqlite3_close_v2(st->db);
	free(st->path);
	free(st);
}

int store_autocheckpoint(struct store *st, bool on, struct err *err)
{
	if (sqlite3_wal_autocheckpoint(st->db, on ? 1000 : 0) != SQLITE_OK)
		return err_set(err, "store: cannot set the WAL checkpoint: %s", sqlite3_errmsg(st->db));
	return 0;
}

int store_checkpoint_passive(struct store *st, int *frames, struct err *err)
{
	int log = 0, done = 0;
	int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return err_set(err, "store: checkpoint: %s", sqlite3_errmsg(st->db));
	if (frames) *frames = log > done ? log - done : 0;
	return 0;
}

const char *store_path(const struct store *st)
{
	return st->path;
}

sqlite3 *store_sqlite(struct store *st)
{
	return st->db;
}

sqlite3_stmt *store_stmt(struct store *st, const char *sql, struct err *err)
{
	for (size_t i = 0; i < st->n_ext; i++) {
		if (st->ext[i].sql == sql) {
			sqlite3_reset(st->ext[i].stmt);
			sqlite3_clear_bindings(st->ext[i].stmt);
			return st->ext[i].stmt;
		}
	}
	sqlite3_stmt *s = NULL;
	if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
		db_fail(st, err, "prepare");
		return NULL;
	}
	if (st->n_ext == st->cap_ext) {
		st->cap_ext = st->cap_ext ? st->cap_ext * 2 : 32;
		st->ext = xrealloc(st->ext, st->cap_ext * sizeof *st->ext);
	}
	st->ext[st->n_ext++] = (struct store_ext_stmt){ sql, s };
	return s;
}

int store_schema_version(struct store *st)
{
	long long v = -1;
	if (pragma_int(st, "PRAGMA user_version", &v, NULL)) return -1;
	return (int)v;
}

/* ------------------------------------------------------------------ transactions */

int store_begin(struct store *st, struct err *err)
{
	if (!sqlite3_get_autocommit(st->db)) return err_set(err, "store: begin: a transaction is already open");
	return stmt_exec(st, S_BEGIN, err, "begin");
}

int store_commit(struct store *st, struct err *err)
{
	if (sqlite3_get_autocommit(st->db)) return err_set(err, "store: commit: no transaction is open");
	return stmt_exec(st, S_COMMIT, err, "commit");
}

int store_rollback(struct store *st, struct err *err)
{
	if (sqlite3_get_autocommit(st->db)) return 0;
	return stmt_exec(st, S_ROLLBACK, err, "rollback");
}

bool store_in_transaction(struct store *st)
{
	return !sqlite3_get_autocommit(st->db);
}

int store_atomic_begin(struct store *st, bool *own, struct err *err)
{
	*own = sqlite3_get_autocommit(st->db);
	return *own ? store_begin(st, err) : stmt_exec(st, S_SAVEPOINT, err, "savepoint");
}

int store_atomic_end(struct store *st, bool own, int ret, struct err *err)
{
	if (ret == 0) {
		ret = own ? store_commit(st, err) : stmt_exec(st, S_RELEASE, err, "release");
		if (ret == 0) return 0;
	}
	if (own) {
		store_rollback(st, NULL);
	} else {
		stmt_exec(st, S_ROLLBACK_TO, NULL, "rollback to");
		stmt_exec(st, S_RELEASE, NULL, "release");
	}
	return ret;
}

/* ------------------------------------------------------------------ tenants */

int store_tenant_put(struct store *st, const struct store_tenant *t, struct err *err)
{
	if (!t->id || !*t->id) return err_set(err, "store: tenant put: no tenant id");
	sqlite3_stmt *s = stmt_get(st, S_TENANT_PUT, err);
	if (!s) return -1;
	bind_text(s, 1, t->id);
	bind_text(s, 2, t->name);
	bind_text(s, 3, t->default_domain);
	bind_id(s, 4, t->syncro_customer_id);
	bind_text(s, 5, t->policy_hash);
	bind_text(s, 6, t->last_pull_at);
	bind_text(s, 7, t->last_sync_at);
	bind_text(s, 8, t->last_status);
	bind_text(s, 9, t->last_error);
	return store_sql_run(s, err, "tenant put");
}

static void tenant_read(sqlite3_stmt *s, void *out)
{
	struct store_tenant *t = out;
	t->id = col_dup(s, 0);
	t->name = col_dup(s, 1);
	t->default_domain = col_dup(s, 2);
	t->syncro_customer_id = sqlite3_column_int64(s, 3);
	t->policy_hash = col_dup(s, 4);
	t->last_pull_at = col_dup(s, 5);
	t->last_sync_at = col_dup(s, 6);
	t->last_status = col_dup(s, 7);
	t->last_error = col_dup(s, 8);
}

int store_tenant_get(struct store *st, const char *id, struct store_tenant *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = stmt_get(st, S_TENANT_GET, err);
	if (!s) return -1;
	bind_text(s, 1, id);
	return store_sql_lookup(s, tenant_read, out, err, "tenant get");
}

void store_tenant_free(struct store_tenant *t)
{
	free_owned(t->id);
	free_owned(t->name);
	free_owned(t->default_domain);
	free_owned(t->policy_hash);
	free_owned(t->last_pull_at);
	free_owned(t->last_sync_at);
	free_owned(t->last_status);
	free_owned(t->last_error);
	memset(t, 0, sizeof *t);
}

struct tenant_iter {
	int (*cb)(const struct store_tenant *t, void *ud);
	void *ud;
};

static int tenant_row(sqlite3_stmt *s, void *ctx)
{
	struct tenant_iter *it = ctx;
	struct store_tenant t;
	tenant_read(s, &t);
	int ret = it->cb(&t, it->ud);
	store_tenant_free(&t);
	return ret;
}

int store_tenant_each(struct store *st, int (*cb)(const struct store_tenant *t, void *ud), void *ud,
                      struct err *err)
{
	struct tenant_iter it = { cb, ud };
	sqlite3_stmt *s = stmt_prepare_once(st, "SELECT " TENANT_COLS " FROM tenants ORDER BY id", err);
	if (!s) return -1;
	return stmt_iterate(s, tenant_row, &it, err, "tenant each");
}

/* ------------------------------------------------------------------ user mirror */

int store_user_put(struct store *st, const char *tenant_id, const char *object_id, const char *json,
                   struct err *err)
{
	return store_user_put_n(st, tenant_id, object_id, json, json ? strlen(json) : 0, err);
}

/* Binds json (len bytes, not copied: the statement runs before return). */
static int bind_json(struct store *st, sqlite3_stmt *s, int i, const char *json, size_t len, struct err *err)
{
	if (len > (size_t)INT_MAX) {
		store_sql_release(s);
		return err_set(err, "store: a user's JSON of %zu bytes is too big", len);
	}
	if (sqlite3_bind_text(s, i, json, (int)len, SQLITE_STATIC) != SQLITE_OK) {
		int rc = db_fail(st, err, "bind");
		store_sql_release(s);
		return rc;
	}
	return 0;
}

/* Runs statement id (S_USER_PUT or S_USER_SET_JSON) for the user's JSON. */
static int user_json_write(struct store *st, enum stmt_id id, const char *tenant_id, const char *object_id, const char *json,
                           size_t len, struct err *err, const char *what)
{
	if (!object_id || !*object_id || !json) return err_set(err, "store: %s: no object id or JSON", what);
	char now[32];
	now_iso_cached(st, now);
	sqlite3_stmt *s = stmt_get(st, id, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	if (bind_json(st, s, 3, json, len, err)) return -1;
	bind_text(s, 4, now);
	return stmt_write(st, s, err, what, tenant_id);
}

int store_user_put_n(struct store *st, const char *tenant_id, const char *object_id, const char *json, size_t len,
                     struct err *err)
{
	return user_json_write(st, S_USER_PUT, tenant_id, object_id, json, len, err, "user put");
}

int store_user_set_json_n(struct store *st, const char *tenant_id, const char *object_id, const char *json,
                          size_t len, struct err *err)
{
	return user_json_write(st, S_USER_SET_JSON, tenant_id, object_id, json, len, err, "user set");
}

int store_user_mark_removed(struct store *st, const char *tenant_id, const char *object_id,
                            const char *reason, struct err *err)
{
	if (!removed_reason_valid(reason))
		return err_set(err, "store: user mark removed: reason must be 'changed' or 'deleted', not '%s'",
		               reason ? reason : "(null)");
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt_get(st, S_USER_REMOVE, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	bind_text(s, 3, reason);
	bind_text(s, 4, now);
	return store_sql_run(s, err, "user mark removed");
}

static void user_read(sqlite3_stmt *s, void *out)
{
	struct store_user *u = out;
	u->tenant_id = col_dup(s, 0);
	u->object_id = col_dup(s, 1);
	u->json = col_dup(s, 2);
	u->removed = col_dup(s, 3);
	u->removed_at = col_dup(s, 4);
	u->updated_at = col_dup(s, 5);
}

/* Statement id (S_USER_GET or S_USER_GET_JSON) for one user, read by read. */
static int user_lookup(struct store *st, enum stmt_id id, void (*read)(sqlite3_stmt *s, void *out), const char *tenant_id,
                       const char *object_id, struct store_user *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = stmt_get(st, id, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	return store_sql_lookup(s, read, out, err, "user get");
}

int store_user_get(struct store *st, const char *tenant_id, const char *object_id, struct store_user *out,
                   struct err *err)
{
	return user_lookup(st, S_USER_GET, user_read, tenant_id, object_id, out, err);
}

static void user_json_read(sqlite3_stmt *s, void *out)
{
	struct store_user *u = out;
	u->json = col_dup(s, 0);
	u->removed = col_dup(s, 1);
}

int store_user_get_json(struct store *st, const char *tenant_id, const char *object_id, struct store_user *out,
                        struct err *err)
{
	return user_lookup(st, S_USER_GET_JSON, user_json_read, tenant_id, object_id, out, err);
}

void store_user_free(struct store_user *u)
{
	free_owned(u->tenant_id);
	free_owned(u->object_id);
	free_owned(u->json);
	free_owned(u->removed);
	free_owned(u->removed_at);
	free_owned(u->updated_at);
	memset(u, 0, sizeof *u);
}

struct user_iter {
	int (*cb)(const struct store_user *u, void *ud);
	void *ud;
};

/* Hands the row to the callback without copying (borrowed strings). */
static int user_row(sqlite3_stmt *s, void *ctx)
{
	struct user_iter *it = ctx;
	struct store_user u = {
		.tenant_id = col_borrow(s, 0),
		.object_id = col_borrow(s, 1),
		.json = col_borrow(s, 2),
		.removed = col_borrow(s, 3),
		.removed_at = col_borrow(s, 4),
		.updated_at = col_borrow(s, 5),
	};
	return it->cb(&u, it->ud);
}

int store_user_each(struct store *st, const char *tenant_id, enum store_user_filter filter,
                    int (*cb)(const struct store_user *u, void *ud), void *ud, struct err *err)
{
	static const char *const sql[] = {
		[STORE_USERS_PRESENT] = "SELECT " USER_COLS " FROM users WHERE tenant_id = ?1 AND removed IS NULL "
			"ORDER BY object_id",
		[STORE_USERS_REMOVED] = "SELECT " USER_COLS " FROM users WHERE tenant_id = ?1 AND removed IS NOT NULL "
			"ORDER BY object_id",
		[STORE_USERS_ALL] = "SELECT " USER_COLS " FROM users WHERE tenant_id = ?1 ORDER BY object_id",
	};
	if ((unsigned)filter >= ARRAY_LEN(sql)) return err_set(err, "store: user each: bad filter %d", (int)filter);
	struct user_iter it = { cb, ud };
	sqlite3_stmt *s = stmt_prepare_once(st, sql[filter], err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	return stmt_iterate(s, user_row, &it, err, "user each");
}

int store_user_count(struct store *st, const char *tenant_id, enum store_user_filter filter, long long *n,
                     struct err *err)
{
	static const enum stmt_id ids[] = {
		[STORE_USERS_PRESENT] = S_USER_COUNT_PRESENT,
		[STORE_USERS_REMOVED] = S_USER_COUNT_REMOVED,
		[STORE_USERS_ALL] = S_USER_COUNT_ALL,
	};
	*n = 0;
	if ((unsigned)filter >= ARRAY_LEN(ids)) return err_set(err, "store: user count: bad filter %d", (int)filter);
	sqlite3_stmt *s = stmt_get(st, ids[filter], err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	return store_sql_count(s, n, err, "user count");
}

/* ------------------------------------------------------------------ mirror resync */

int store_mirror_stage_clear(struct store *st, const char *tenant_id, struct err *err)
{
	long long others = 1;
	sqlite3_stmt *s = stmt_get(st, S_STAGE_OTHERS, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	if (store_sql_count(s, &others, err, "mirror stage clear")) return -1;
	if (!others) return stmt_exec(st, S_STAGE_TRUNCATE, err, "mirror stage clear");
	s = stmt_get(st, S_STAGE_CLEAR, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	return store_sql_run(s, err, "mirror stage clear");
}

int store_mirror_stage_put(struct store *st, const char *tenant_id, const char *object_id, const char *json,
                           struct err *err)
{
	return store_mirror_stage_put_n(st, tenant_id, object_id, json, json ? strlen(json) : 0, err);
}

int store_mirror_stage_put_n(struct store *st, const char *tenant_id, const char *object_id, const char *json,
                             size_t len, struct err *err)
{
	if (!object_id || !*object_id || !json) return err_set(err, "store: mirror stage put: no object id or JSON");
	sqlite3_stmt *s = stmt_get(st, S_STAGE_PUT, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	if (bind_json(st, s, 3, json, len, err)) return -1;
	return stmt_write(st, s, err, "mirror stage put", tenant_id);
}

int store_mirror_stage_remove(struct store *st, const char *tenant_id, const char *object_id,
                              const char *reason, struct err *err)
{
	if (!removed_reason_valid(reason))
		return err_set(err, "store: mirror stage remove: reason must be 'changed' or 'deleted', not '%s'",
		               reason ? reason : "(null)");
	sqlite3_stmt *s = stmt_get(st, S_STAGE_REMOVE, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	bind_text(s, 3, reason);
	return stmt_write(st, s, err, "mirror stage remove", tenant_id);
}

int store_mirror_stage_count(struct store *st, const char *tenant_id, long long *n, struct err *err)
{
	*n = 0;
	sqlite3_stmt *s = stmt_get(st, S_STAGE_COUNT, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	return store_sql_count(s, n, err, "mirror stage count");
}

/* Runs one swap step bound to (tenant_id, now); *changes (optional) gets
 * the rows it changed. */
static int swap_step(struct store *st, enum stmt_id id, const char *tenant_id, const char *now,
                     long long *changes, struct err *err)
{
	sqlite3_stmt *s = stmt_get(st, id, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, now);
	if (store_sql_run(s, err, "mirror swap")) return -1;
	if (changes) *changes = sqlite3_changes64(st->db);
	return 0;
}

int store_mirror_swap(struct store *st, const char *tenant_id, long long *n_removed, struct err *err)
{
	char now[32];
	long long absent = 0, newly = 0;
	bool own;
	store_sql_now(now);
	if (store_atomic_begin(st, &own, err)) return -1;
	int ret = swap_step(st, S_SWAP_ABSENT, tenant_id, now, &absent, err);
	if (!ret) {
		sqlite3_stmt *s = stmt_get(st, S_SWAP_COUNT_NEWLY_REMOVED, err);
		ret = s ? 0 : -1;
		if (s) {
			bind_text(s, 1, tenant_id);
			ret = store_sql_count(s, &newly, err, "mirror swap");
		}
	}
	if (!ret) ret = swap_step(st, S_SWAP_REMOVED, tenant_id, now, NULL, err);
	if (!ret) ret = swap_step(st, S_SWAP_PRESENT, tenant_id, now, NULL, err);
	if (!ret) ret = store_mirror_stage_clear(st, tenant_id, err);
	ret = store_atomic_end(st, own, ret, err);
	if (!ret && n_removed) *n_removed = absent + newly;
	return ret;
}

/* ------------------------------------------------------------------ groups */

int store_group_put(struct store *st, const char *tenant_id, const char *group_id, const char *display_name,
                    struct err *err)
{
	sqlite3_stmt *s = stmt_get(st, S_GROUP_PUT, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, display_name);
	return stmt_write(st, s, err, "group put", tenant_id);
}

int store_group_member_put(struct store *st, const char *tenant_id, const char *group_id,
                           const char *object_id, struct err *err)
{
	sqlite3_stmt *s = stmt_get(st, S_MEMBER_PUT, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, object_id);
	int rc = sqlite3_step(s);
	int ret = 0;
	if (rc != SQLITE_DONE) {
		if (sqlite3_extended_errcode(st->db) == SQLITE_CONSTRAINT_FOREIGNKEY)
			ret = err_set(err, "store: group member put: group '%s' of tenant '%s' is not in the store "
			              "(store_group_put it first)", group_id, tenant_id);
		else
			ret = db_fail(st, err, "group member put");
	}
	store_sql_release(s);
	return ret;
}

int store_group_member_delete(struct store *st, const char *tenant_id, const char *group_id,
                              const char *object_id, struct err *err)
{
	sqlite3_stmt *s = stmt_get(st, S_MEMBER_DELETE, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, group_id);
	bind_text(s, 3, object_id);
	return store_sql_run(s, err, "group member delete");
}

struct group_iter {
	int (*cb)(const char *group_id, const char *display_name, void *ud);
	void *ud;
};

static int group_row(sqlite3_stmt *s, void *ctx)
{
	struct group_iter *it = ctx;
	return it->cb((const char *)sqlite3_column_text(s, 0), (const char *)sqlite3_column_text(s, 1), it->ud);
}

int store_user_groups_each(struct store *st, const char *tenant_id, const char *object_id,
                           int (*cb)(const char *group_id, const char *display_name, void *ud), void *ud,
                           struct err *err)
{
	struct group_iter it = { cb, ud };
	sqlite3_stmt *s = stmt_prepare_once(st,
		"SELECT m.group_id, g.display_name FROM group_members m JOIN groups g "
		"ON g.tenant_id = m.tenant_id AND g.group_id = m.group_id "
		"WHERE m.tenant_id = ?1 AND m.object_id = ?2 ORDER BY m.group_id", err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	return stmt_iterate(s, group_row, &it, err, "user groups each");
}

/* ------------------------------------------------------------------ delta state */

static void delta_read(sqlite3_stmt *s, void *out)
{
	struct store_delta *d = out;
	d->delta_link = col_dup(s, 0);
	d->next_link = col_dup(s, 1);
	d->round_started_at = col_dup(s, 2);
	d->resync = sqlite3_column_int(s, 3) != 0;
}

int store_delta_get(struct store *st, const char *tenant_id, const char *resource, struct store_delta *out,
                    struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = stmt_get(st, S_DELTA_GET, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, resource);
	return store_sql_lookup(s, delta_read, out, err, "delta get");
}

int store_delta_put(struct store *st, const char *tenant_id, const char *resource,
                    const struct store_delta *d, struct err *err)
{
	if (!resource || !*resource) return err_set(err, "store: delta put: no resource");
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt_get(st, S_DELTA_PUT, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, resource);
	bind_text(s, 3, d->delta_link);
	bind_text(s, 4, d->next_link);
	bind_text(s, 5, d->round_started_at);
	sqlite3_bind_int(s, 6, d->resync ? 1 : 0);
	bind_text(s, 7, now);
	return stmt_write(st, s, err, "delta put", tenant_id);
}

void store_delta_free(struct store_delta *d)
{
	free_owned(d->delta_link);
	free_owned(d->next_link);
	free_owned(d->round_started_at);
	memset(d, 0, sizeof *d);
}

/* ------------------------------------------------------------------ links */

static void link_read(sqlite3_stmt *s, void *out)
{
	struct store_link *l = out;
	l->tenant_id = col_dup(s, 0);
	l->object_id = col_dup(s, 1);
	l->contact_id = sqlite3_column_int64(s, 2);
	l->customer_id = sqlite3_column_int64(s, 3);
	l->fields = col_dup(s, 4);
	l->created_at = col_dup(s, 5);
	l->updated_at = col_dup(s, 6);
	l->stamp = col_dup(s, 7);
	l->marked = col_dup(s, 8);
}

int store_link_put(struct store *st, const struct store_link *l, struct err *err)
{
	if (!l->object_id || !*l->object_id || l->contact_id <= 0)
		return err_set(err, "store: link put: needs an object id and a contact id");
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt_get(st, S_LINK_PUT, err);
	if (!s) return -1;
	bind_text(s, 1, l->tenant_id);
	bind_text(s, 2, l->object_id);
	sqlite3_bind_int64(s, 3, l->contact_id);
	sqlite3_bind_int64(s, 4, l->customer_id);
	bind_text(s, 5, l->fields);
	bind_text(s, 6, now);
	bind_text(s, 7, l->stamp);
	bind_text(s, 8, l->marked);
	if (sqlite3_step(s) == SQLITE_DONE) {
		store_sql_release(s);
		return 0;
	}
	int code = sqlite3_extended_errcode(st->db);
	store_sql_release(s);
	if (code != SQLITE_CONSTRAINT_UNIQUE) return write_fail(st, err, "link put", l->tenant_id);
	struct store_link owner;
	if (store_link_find_contact(st, l->customer_id, l->contact_id, &owner, NULL) != 0)
		return db_fail(st, err, "link put");
	err_set(err, "store: link put: contact %lld of customer %lld is already linked to user %s of tenant %s",
	        l->contact_id, l->customer_id, owner.object_id, owner.tenant_id);
	store_link_free(&owner);
	return -1;
}

int store_link_get(struct store *st, const char *tenant_id, const char *object_id, struct store_link *out,
                   struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = stmt_get(st, S_LINK_GET, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	return store_sql_lookup(s, link_read, out, err, "link get");
}

int store_link_delete(struct store *st, const char *tenant_id, const char *object_id, struct err *err)
{
	sqlite3_stmt *s = stmt_get(st, S_LINK_DELETE, err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	bind_text(s, 2, object_id);
	return store_sql_run(s, err, "link delete");
}

int store_link_find_contact(struct store *st, long long customer_id, long long contact_id,
                            struct store_link *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = stmt_get(st, S_LINK_FIND_CONTACT, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, customer_id);
	sqlite3_bind_int64(s, 2, contact_id);
	return store_sql_lookup(s, link_read, out, err, "link find contact");
}

void store_link_free(struct store_link *l)
{
	free_owned(l->tenant_id);
	free_owned(l->object_id);
	free_owned(l->fields);
	free_owned(l->stamp);
	free_owned(l->marked);
	free_owned(l->created_at);
	free_owned(l->updated_at);
	memset(l, 0, sizeof *l);
}

struct link_iter {
	int (*cb)(const struct store_link *l, void *ud);
	void *ud;
};

static int link_row(sqlite3_stmt *s, void *ctx)
{
	struct link_iter *it = ctx;
	struct store_link l;
	link_read(s, &l);
	int ret = it->cb(&l, it->ud);
	store_link_free(&l);
	return ret;
}

int store_link_each(struct store *st, const char *tenant_id, int (*cb)(const struct store_link *l, void *ud),
                    void *ud, struct err *err)
{
	struct link_iter it = { cb, ud };
	sqlite3_stmt *s = stmt_prepare_once(st, "SELECT " LINK_COLS " FROM links WHERE tenant_id = ?1 "
	                                        "ORDER BY object_id", err);
	if (!s) return -1;
	bind_text(s, 1, tenant_id);
	return stmt_iterate(s, link_row, &it, err, "link each");
}

/* ------------------------------------------------------------------ runs */

int store_run_begin(struct store *st, const char *kind, long long *run_id, struct err *err)
{
	if (!kind || !*kind) return err_set(err, "store: run begin: no kind");
	char now[32];
	store_sql_now(now);
	/* the caller holds the run lock: a run still "running" was killed */
	sqlite3_stmt *s = stmt_get(st, S_RUN_INTERRUPTED, err);
	if (!s || store_sql_run(s, err, "run begin: marking interrupted runs")) return -1;
	s = stmt_get(st, S_RUN_BEGIN, err);
	if (!s) return -1;
	bind_text(s, 1, kind);
	bind_text(s, 2, now);
	if (store_sql_run(s, err, "run begin")) return -1;
	*run_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_run_finish(struct store *st, long long run_id, const char *status, const char *summary_json,
                     struct err *err)
{
	if (!status || !*status) return err_set(err, "store: run finish: no status");
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt_get(st, S_RUN_FINISH, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, run_id);
	bind_text(s, 2, now);
	bind_text(s, 3, status);
	bind_text(s, 4, summary_json);
	if (store_sql_run(s, err, "run finish")) return -1;
	if (sqlite3_changes64(st->db) == 0) return err_set(err, "store: run finish: no run %lld", run_id);
	return 0;
}

int store_run_tenant_put(struct store *st, long long run_id, const char *tenant_id, const char *status,
                         const char *counts_json, const char *reason, struct err *err)
{
	sqlite3_stmt *s = stmt_get(st, S_RUN_TENANT_PUT, err);
	if (!s) return -1;
	sqlite3_bind_int64(s, 1, run_id);
	bind_text(s, 2, tenant_id);
	bind_text(s, 3, status);
	bind_text(s, 4, counts_json);
	bind_text(s, 5, reason);
	return store_sql_run(s, err, "run tenant put");
}

/* ------------------------------------------------------------------ audit */

int store_audit_append(struct store *st, const struct store_audit *a, long long *id, struct err *err)
{
	if (!a->action || !*a->action) return err_set(err, "store: audit append: no action");
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt_get(st, S_AUDIT_APPEND, err);
	if (!s) return -1;
	bind_text(s, 1, now);
	bind_id(s, 2, a->run_id);
	bind_text(s, 3, a->tenant_id);
	bind_text(s, 4, a->object_id);
	bind_id(s, 5, a->contact_id);
	bind_text(s, 6, a->action);
	bind_text(s, 7, a->before);
	bind_text(s, 8, a->after);
	bind_text(s, 9, a->actor);
	bind_text(s, 10, a->result);
	if (store_sql_run(s, err, "audit append")) return -1;
	if (id) *id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

struct audit_iter {
	int (*cb)(const struct store_audit *a, void *ud);
	void *ud;
};

static int audit_row(sqlite3_stmt *s, void *ctx)
{
	struct audit_iter *it = ctx;
	struct store_audit a = {
		.id = sqlite3_column_int64(s, 0),
		.at = col_borrow(s, 1),
		.run_id = sqlite3_column_int64(s, 2),
		.tenant_id = col_borrow(s, 3),
		.object_id = col_borrow(s, 4),
		.contact_id = sqlite3_column_int64(s, 5),
		.action = col_borrow(s, 6),
		.before = col_borrow(s, 7),
		.after = col_borrow(s, 8),
		.actor = col_borrow(s, 9),
		.result = col_borrow(s, 10),
	};
	return it->cb(&a, it->ud);
}

int store_audit_each(struct store *st, const struct store_audit_filter *f,
                     int (*cb)(const struct store_audit *a, void *ud), void *ud, struct err *err)
{
#define AUDIT_SELECT "SELECT id, at, run_id, tenant_id, object_id, contact_id, action, before, after, actor, " \
	"result FROM audit WHERE (?1 IS NULL OR tenant_id = ?1) AND (?2 IS NULL OR run_id = ?2) " \
	"AND (?3 IS NULL OR at >= ?3) "
	static const char *const sql[] = {
		AUDIT_SELECT "ORDER BY id ASC LIMIT ?4",
		AUDIT_SELECT "ORDER BY id DESC LIMIT ?4",
	};
#undef AUDIT_SELECT
	static const struct store_audit_filter all = {0};
	if (!f) f = &all;
	struct audit_iter it = { cb, ud };
	sqlite3_stmt *s = stmt_prepare_once(st, sql[f->newest_first ? 1 : 0], err);
	if (!s) return -1;
	bind_text(s, 1, f->tenant_id);
	bind_id(s, 2, f->run_id);
	bind_text(s, 3, f->since);
	sqlite3_bind_int64(s, 4, f->limit > 0 ? f->limit : -1);
	return stmt_iterate(s, audit_row, &it, err, "audit each");
}

/* ------------------------------------------------------------------ key/value */

static void kv_read(sqlite3_stmt *s, void *out)
{
	*(char **)out = col_dup(s, 0);
}

int store_kv_get(struct store *st, const char *key, char **value, struct err *err)
{
	*value = NULL;
	sqlite3_stmt *s = stmt_get(st, S_KV_GET, err);
	if (!s) return -1;
	bind_text(s, 1, key);
	return store_sql_lookup(s, kv_read, value, err, "kv get");
}

int store_kv_put(struct store *st, const char *key, const char *value, struct err *err)
{
	if (!key || !*key) return err_set(err, "store: kv put: no key");
	char now[32];
	store_sql_now(now);
	sqlite3_stmt *s = stmt_get(st, value ? S_KV_PUT : S_KV_DELETE, err);
	if (!s) return -1;
	bind_text(s, 1, key);
	if (value) {
		bind_text(s, 2, value);
		bind_text(s, 3, now);
	}
	return store_sql_run(s, err, "kv put");
}

/* ------------------------------------------------------------------ run lock */

/* The pid recorded in an open lock file, or 0 when unreadable. */
static long lock_holder_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n <= 0) return 0;
	buf[n] = '\0';
	char *end;
	long pid = strtol(buf, &end, 10);
	return (end != buf && pid > 0) ? pid : 0;
}

int store_lock_acquire(const char *db_path, struct store_lock *lock, struct err *err)
{
	char *path = xasprintf("%s.lock", db_path);
	int fd = -1;
	lock->path = NULL;
	lock->fd = -1;
	lock->pid = 0;
	if (make_parent_dirs(path, err)) goto fail;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		err_set(err, "cannot open lock file %s: %s", path, strerror(errno));
		goto fail;
	}
	if (fchmod(fd, 0600) != 0) {
		err_set(err, "cannot set mode 0600 on %s: %s", path, strerror(errno));
		goto fail;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			err_set(err, "cannot lock %s: %s", path, strerror(errno));
			goto fail;
		}
		long holder = lock_holder_pid(fd);
		if (holder)
			err_set(err, "another entrasync run (pid %ld) holds the lock on %s", holder, path);
		else
			err_set(err, "another entrasync run (pid unknown) holds the lock on %s", path);
		goto fail;
	}
	char pid[32];
	int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		err_set(err, "cannot write lock file %s: %s", path, strerror(errno));
		goto fail;
	}
	lock->fd = fd;
	lock->path = path;
	lock->pid = (long)getpid();
	return 0;
fail:
	if (fd >= 0) close(fd);
	free(path);
	return -1;
}

void store_lock_release(struct store_lock *lock)
{
	if (!lock->path) return;
	if (lock->pid == (long)getpid()) {
		/* Empty the pid while still holding the lock; the file stays. */
		if (ftruncate(lock->fd, 0) != 0) { /* a stale pid is only cosmetic */ }
		flock(lock->fd, LOCK_UN);
	}
	close(lock->fd);
	free(lock->path);
	lock->path = NULL;
	lock->fd = -1;
	lock->pid = 0;
}
