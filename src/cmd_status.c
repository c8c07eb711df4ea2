/* cmd_status — `entrasync status [--tenant T] [--json]`: per tenant the
 * last pull and the last sync (when, ok / failed / held and why, counts),
 * users mirrored, contacts linked, conflicts open, writes not yet
 * confirmed; and the daemon's next scheduled run (from the store's kv,
 * trusted only while the daemon lock is held). Reads only: the database
 * is opened read-only (and not created when missing).
 * Exit status: 0 every tenant's latest outcome is ok (or it never ran),
 * 1 some tenant's latest pull or sync failed or was held, 2 usage or
 * config error, 3 the store cannot be read. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_daemon.h"
#include "commands.h"
#include "config.h"
#include "store.h"
#include "store_status.h"
#include "when.h"

/* What the daemon recorded (copies), and whether it is alive. */
struct daemon_info {
	long pid;                  /* > 0 when a daemon holds the lock now */
	char *every, *jitter, *command, *next_run_at, *state, *last_start, *last_end, *last_exit, *config_error,
		*started_at;
};

struct status_ctx {
	const struct config *cfg;
	const char *tenant_filter;
	bool json;
	double now;
	struct daemon_info d;
	cJSON *jtenants;
	bool *seen;                /* per config tenant: found in the store */
	int bad;                   /* tenants whose latest outcome is failed / held */
};

/* ---- small helpers */

static const struct config_tenant *config_tenant_find(const struct config *cfg, const char *id, size_t *index)
{
	for (size_t i = 0; i < cfg->ntenants; i++)
		if (strcmp(cfg->tenants[i].id, id) == 0) {
			if (index) *index = i;
			return &cfg->tenants[i];
		}
	return NULL;
}

/* Does the --tenant value name this tenant (id or configured name, any case)? */
static bool tenant_selected(const char *filter, const char *id, const char *name)
{
	return !filter || str_ieq(filter, id) || (name && str_ieq(filter, name));
}

/* "2026-11-26T09:30:00Z (5 min ago)" or "never". */
static void when_text(const char *iso, double now, char *out, size_t cap)
{
	double t = when_parse_iso(iso);
	if (!iso || t < 0) {
		snprintf(out, cap, "%s", iso ? iso : "never");
		return;
	}
	char rel[32];
	when_relative(t, now, rel, sizeof rel);
	snprintf(out, cap, "%s (%s)", iso, rel);
}

/* The counts JSON as "created 2, updated 1, ..." (numbers and true
 * booleans, in order; arrays as their length when not empty). Pull counts
 * keep only the user counts. */
static void counts_text(const char *json, bool pull, struct buf *out)
{
	static const char *const pull_keys[] = { "users_present", "users_written", "users_removed", "resync", NULL };
	cJSON *o = json ? cJSON_Parse(json) : NULL;
	size_t n = 0;
	for (const cJSON *m = cJSON_IsObject(o) ? o->child : NULL; m; m = m->next) {
		if (pull) {
			size_t k = 0;
			while (pull_keys[k] && strcmp(pull_keys[k], m->string) != 0) k++;
			if (!pull_keys[k]) continue;
		}
		char name[64];
		snprintf(name, sizeof name, "%s", m->string);
		for (char *p = name; *p; p++)
			if (*p == '_') *p = ' ';
		if (cJSON_IsNumber(m)) buf_printf(out, "%s%s %.0f", n++ ? ", " : "", name, m->valuedouble);
		else if (cJSON_IsTrue(m)) buf_printf(out, "%s%s", n++ ? ", " : "", name);
		else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) > 0)
			buf_printf(out, "%s%s %d", n++ ? ", " : "", name, cJSON_GetArraySize(m));
	}
	cJSON_Delete(o);
}

/* The worst of a tenant's latest outcomes: "held" / "failed" / "ok" / NULL (never ran). */
static const char *tenant_outcome(const struct store_status_tenant *t)
{
	const char *p = t->pull.status ? t->pull.status : (t->last_pull_at ? t->last_status : NULL);
	const char *s = t->sync.status;
	if ((s && strcmp(s, "failed") == 0) || (p && strcmp(p, "failed") == 0)) return "failed";
	if ((s && strcmp(s, "held") == 0) || (p && strcmp(p, "held") == 0)) return "held";
	if (s || p) return "ok";
	return NULL;
}

/* ---- the daemon */

static int daemon_kv(const char *key, const char *value, void *ud)
{
	struct daemon_info *d = ud;
	static const struct { const char *key; size_t off; } map[] = {
		{ DAEMON_KV_EVERY, offsetof(struct daemon_info, every) },
		{ DAEMON_KV_JITTER, offsetof(struct daemon_info, jitter) },
		{ DAEMON_KV_COMMAND, offsetof(struct daemon_info, command) },
		{ DAEMON_KV_NEXT_RUN_AT, offsetof(struct daemon_info, next_run_at) },
		{ DAEMON_KV_STATE, offsetof(struct daemon_info, state) },
		{ DAEMON_KV_LAST_START, offsetof(struct daemon_info, last_start) },
		{ DAEMON_KV_LAST_END, offsetof(struct daemon_info, last_end) },
		{ DAEMON_KV_LAST_EXIT, offsetof(struct daemon_info, last_exit) },
		{ DAEMON_KV_CONFIG_ERROR, offsetof(struct daemon_info, config_error) },
		{ DAEMON_KV_STARTED_AT, offsetof(struct daemon_info, started_at) },
	};
	for (size_t i = 0; i < ARRAY_LEN(map); i++) {
		if (strcmp(map[i].key, key) != 0) continue;
		char **slot = (char **)(void *)((char *)d + map[i].off);
		free(*slot);
		*slot = xstrdup(value);
	}
	return 0;
}

static void daemon_info_free(struct daemon_info *d)
{
	char **v[] = { &d->every, &d->jitter, &d->command, &d->next_run_at, &d->state, &d->last_start, &d->last_end,
	               &d->last_exit, &d->config_error, &d->started_at };
	for (size_t i = 0; i < ARRAY_LEN(v); i++) free(*v[i]);
	memset(d, 0, sizeof *d);
}

static void print_daemon(const struct status_ctx *c)
{
	const struct daemon_info *d = &c->d;
	char when[80];
	if (d->pid == 0) {
		printf("Daemon: not running");
		if (d->last_end) {
			when_text(d->last_end, c->now, when, sizeof when);
			printf(" (its last run finished %s, exit %s)", when, d->last_exit ? d->last_exit : "?");
		}
		printf("\n");
		return;
	}
	printf("Daemon: running (pid %ld), %s every %s", d->pid, d->command ? d->command : "sync",
	       d->every ? d->every : "?");
	if (d->jitter && strcmp(d->jitter, "0s") != 0) printf(" (+ up to %s jitter)", d->jitter);
	printf("\n");
	if (d->state && strcmp(d->state, "running") == 0) {
		when_text(d->last_start, c->now, when, sizeof when);
		printf("  a run is going now, started %s\n", when);
	}
	when_text(d->next_run_at, c->now, when, sizeof when);
	printf("  next scheduled run: %s\n", when);
	if (d->last_end) {
		when_text(d->last_end, c->now, when, sizeof when);
		printf("  last run finished %s, exit %s\n", when, d->last_exit ? d->last_exit : "?");
	}
	if (d->config_error) printf("  the last reload failed (the previous config is kept): %s\n", d->config_error);
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v) cJSON_AddStringToObject(o, k, v);
	else cJSON_AddNullToObject(o, k);
}

static cJSON *daemon_json(const struct daemon_info *d)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "running", d->pid != 0);
	if (d->pid > 0) cJSON_AddNumberToObject(o, "pid", (double)d->pid);
	else cJSON_AddNullToObject(o, "pid");
	add_str(o, "command", d->command);
	add_str(o, "every", d->every);
	add_str(o, "jitter", d->jitter);
	add_str(o, "state", d->pid ? d->state : "stopped");
	add_str(o, "next_run_at", d->pid ? d->next_run_at : NULL);
	add_str(o, "last_run_started_at", d->last_start);
	add_str(o, "last_run_finished_at", d->last_end);
	add_str(o, "last_run_exit", d->last_exit);
	add_str(o, "config_error", d->config_error);
	return o;
}

/* ---- tenants */

static cJSON *run_json(const struct store_status_run *r, const char *fallback_at, const char *fallback_status,
                       const char *fallback_error)
{
	cJSON *o = cJSON_CreateObject();
	const char *at = r->run_id ? (r->finished_at ? r->finished_at : r->started_at) : fallback_at;
	add_str(o, "at", at);
	add_str(o, "status", r->run_id ? r->status : (fallback_at ? fallback_status : NULL));
	add_str(o, "reason", r->run_id ? r->reason : (fallback_at ? fallback_error : NULL));
	if (r->run_id) cJSON_AddNumberToObject(o, "run_id", (double)r->run_id);
	else cJSON_AddNullToObject(o, "run_id");
	cJSON *counts = r->counts ? cJSON_Parse(r->counts) : NULL;
	if (counts) cJSON_AddItemToObject(o, "counts", counts);
	else cJSON_AddNullToObject(o, "counts");
	cJSON_AddBoolToObject(o, "running", r->run_id && !r->finished_at && r->run_status &&
	                                    strcmp(r->run_status, "running") == 0);
	return o;
}

static void print_run(const char *label, const struct store_status_run *r, const char *fallback_at,
                      const char *fallback_status, const char *fallback_error, bool pull, double now)
{
	char when[80];
	if (!r->run_id) {
		when_text(fallback_at, now, when, sizeof when);
		printf("  %-10s %s", label, when);
		if (fallback_at && fallback_status) printf(": %s", fallback_status);
		if (fallback_at && fallback_error && fallback_status && strcmp(fallback_status, "ok") != 0)
			printf(": %s", fallback_error);
		printf("\n");
		return;
	}
	bool going = !r->finished_at && r->run_status && strcmp(r->run_status, "running") == 0;
	when_text(r->finished_at ? r->finished_at : r->started_at, now, when, sizeof when);
	printf("  %-10s %s%s: %s", label, going ? "started " : "", when, r->status ? r->status : "?");
	if (r->reason && r->status && strcmp(r->status, "ok") != 0) printf(": %s", r->reason);
	struct buf counts = { 0 };
	counts_text(r->counts, pull, &counts);
	if (counts.len) printf("\n  %-10s %s", "", counts.data);
	buf_free(&counts);
	printf("\n");
}

static int on_tenant(const struct store_status_tenant *t, void *ud)
{
	struct status_ctx *c = ud;
	size_t idx = 0;
	const struct config_tenant *ct = config_tenant_find(c->cfg, t->id, &idx);
	const char *name = ct && ct->name ? ct->name : t->name;
	if (!tenant_selected(c->tenant_filter, t->id, name)) return 0;
	if (ct) c->seen[idx] = true;
	const char *outcome = tenant_outcome(t);
	if (outcome && strcmp(outcome, "ok") != 0) c->bad++;
	if (c->json) {
		cJSON *o = cJSON_CreateObject();
		add_str(o, "id", t->id);
		add_str(o, "name", name);
		cJSON_AddBoolToObject(o, "in_config", ct != NULL);
		add_str(o, "status", outcome ? outcome : "never");
		cJSON_AddItemToObject(o, "last_pull", run_json(&t->pull, t->last_pull_at, t->last_status, t->last_error));
		cJSON_AddItemToObject(o, "last_sync", run_json(&t->sync, t->last_sync_at, t->last_status, t->last_error));
		cJSON_AddNumberToObject(o, "users_mirrored", (double)t->users_present);
		cJSON_AddNumberToObject(o, "users_removed", (double)t->users_removed);
		cJSON_AddNumberToObject(o, "contacts_linked", (double)t->links);
		cJSON_AddNumberToObject(o, "conflicts_open", (double)t->conflicts_open);
		cJSON_AddNumberToObject(o, "writes_unconfirmed", (double)t->intents_open);
		add_str(o, "next_run_at", c->d.pid ? c->d.next_run_at : NULL);
		cJSON_AddItemToArray(c->jtenants, o);
		return 0;
	}
	if (name) printf("%s (%s)%s\n", name, t->id, ct ? "" : "  [not in the config any more]");
	else printf("%s%s\n", t->id, ct ? "" : "  [not in the config any more]");
	print_run("last pull", &t->pull, t->last_pull_at, t->last_status, t->last_error, true, c->now);
	print_run("last sync", &t->sync, t->last_sync_at, t->last_status, t->last_error, false, c->now);
	printf("  users mirrored %lld", t->users_present);
	if (t->users_removed) printf(" (+%lld removed)", t->users_removed);
	printf(", contacts linked %lld, conflicts open %lld", t->links, t->conflicts_open);
	if (t->intents_open) printf(", writes unconfirmed %lld", t->intents_open);
	printf("\n");
	if (t->conflicts_open) printf("  see: entrasync conflicts --tenant %s\n", t->id);
	printf("\n");
	return 0;
}

/* Configured tenants the store has never seen. */
static void never_seen(struct status_ctx *c)
{
	for (size_t i = 0; i < c->cfg->ntenants; i++) {
		const struct config_tenant *t = &c->cfg->tenants[i];
		if (c->seen[i] || !tenant_selected(c->tenant_filter, t->id, t->name)) continue;
		if (c->json) {
			cJSON *o = cJSON_CreateObject();
			add_str(o, "id", t->id);
			add_str(o, "name", t->name);
			cJSON_AddBoolToObject(o, "in_config", true);
			add_str(o, "status", "never");
			cJSON_AddNullToObject(o, "last_pull");
			cJSON_AddNullToObject(o, "last_sync");
			cJSON_AddNumberToObject(o, "users_mirrored", 0);
			cJSON_AddNumberToObject(o, "users_removed", 0);
			cJSON_AddNumberToObject(o, "contacts_linked", 0);
			cJSON_AddNumberToObject(o, "conflicts_open", 0);
			cJSON_AddNumberToObject(o, "writes_unconfirmed", 0);
			add_str(o, "next_run_at", c->d.pid ? c->d.next_run_at : NULL);
			cJSON_AddItemToArray(c->jtenants, o);
		} else {
			if (t->name) printf("%s (%s)\n", t->name, t->id);
			else printf("%s\n", t->id);
			printf("  never pulled or synced\n\n");
		}
	}
}

static int count_only(const struct store_status_tenant *t, void *ud)
{
	(void)t;
	(void)ud;
	return 0;
}

static int tenant_filter_known(const struct config *cfg, struct store_status *ss, const char *filter)
{
	for (size_t i = 0; i < cfg->ntenants; i++)
		if (tenant_selected(filter, cfg->tenants[i].id, cfg->tenants[i].name)) return 1;
	struct err err;
	return ss && store_status_tenant_each(ss, filter, count_only, NULL, &err) == 0 ? 1 : 0;
}

int cmd_status(int argc, char **argv, const struct global_opts *g)
{
	const char *tenant = NULL;
	int json = 0, npos, rc = EXIT_USAGE;
	const struct opt opts[] = {
		{ "--tenant", "ID", &tenant, NULL },
		{ "--json", NULL, NULL, &json },
		{ NULL, NULL, NULL, NULL },
	};
	struct config cfg;
	struct err err;
	struct store *st = NULL;
	struct store_status *ss = NULL;
	struct status_ctx c;
	memset(&cfg, 0, sizeof cfg);
	memset(&c, 0, sizeof c);
	if (command_args("status", argc, argv, opts, 0, &npos) != 0) return EXIT_USAGE;
	if (config_load_opts(config_locate(g->config_path), CONFIG_SKIP_POLICY_FILES, &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	c.cfg = &cfg;
	c.tenant_filter = tenant;
	c.json = json;
	c.now = time_now();
	c.seen = xcalloc(cfg.ntenants + 1, sizeof *c.seen);
	bool have_db = access(cfg.database, F_OK) == 0;
	if (have_db && (store_open(cfg.database, &st, &err) != 0 || store_status_open(st, &ss, &err) != 0)) {
		fprintf(stderr, "entrasync status: %s\n", err.msg);
		rc = EXIT_NOSTART;
		goto out;
	}
	if (tenant) {
		if (!tenant_filter_known(&cfg, ss, tenant)) {
			rc = usage_fail("status", "no tenant '%s' in the config or the store", tenant);
			goto out;
		}
	}
	if (ss && store_status_kv_each(ss, DAEMON_KV_PREFIX, daemon_kv, &c.d, &err) != 0) {
		fprintf(stderr, "entrasync status: %s\n", err.msg);
		rc = EXIT_NOSTART;
		goto out;
	}
	char *lock_path = xasprintf("%s.daemon.lock", cfg.database);
	c.d.pid = daemon_lock_holder(lock_path);
	free(lock_path);
	cJSON *root = NULL;
	if (json) {
		root = cJSON_CreateObject();
		add_str(root, "database", cfg.database);
		char now[32];
		time_iso8601(c.now, now, sizeof now);
		add_str(root, "generated_at", now);
		cJSON_AddItemToObject(root, "daemon", daemon_json(&c.d));
		c.jtenants = cJSON_AddArrayToObject(root, "tenants");
	} else {
		if (!have_db) printf("No database yet at %s: nothing has been pulled or synced.\n", cfg.database);
		print_daemon(&c);
		printf("\n");
	}
	int r = ss ? store_status_tenant_each(ss, NULL, on_tenant, &c, &err) : 0;
	if (r < 0) {
		fprintf(stderr, "entrasync status: %s\n", err.msg);
		cJSON_Delete(root);
		rc = EXIT_NOSTART;
		goto out;
	}
	never_seen(&c);
	if (root) {
		char *text = cJSON_Print(root);
		printf("%s\n", text);
		free(text);
		cJSON_Delete(root);
	}
	rc = c.bad ? EXIT_PARTIAL : EXIT_OK;
out:
	daemon_info_free(&c.d);
	free(c.seen);
	store_status_close(ss);
	store_close(st);
	config_free(&cfg);
	return rc;
}
