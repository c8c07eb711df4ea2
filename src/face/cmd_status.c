/* cmd_status — `entrasync status [--tenant T] [--json]`: per tenant the
 * last pull and the last sync (when, ok / failed / held and why, counts),
 * users mirrored, contacts linked, conflicts open, writes not yet
 * confirmed; and the daemon's next scheduled run (from the store's kv,
 * trusted only while the daemon lock is held). Only reads the database
 * (and does not create it when missing).
 * Exit status: 0 every tenant's latest outcome is ok (or it never ran),
 * 1 some tenant's latest pull or sync failed or was held, 2 usage or
 * config error, 3 the store cannot be read. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "face/cmd_daemon.h"
#include "face/commands.h"
#include "face/cmd_ops.h"
#include "graph/graph.h"
#include "util/log.h"
#include "util/config.h"
#include "store/store.h"
#include "store/store_status.h"
#include "util/when.h"

/* What the daemon recorded (copies), and whether it is alive. */
struct daemon_info {
	long pid;                  /* > 0 when a daemon holds the lock now */
	char *every, *jitter, *command, *next_run_at, *state, *last_start, *last_end, *last_exit, *config_error,
		*started_at, *verify_every, *last_verify;
};

struct status_ctx {
	const struct config *cfg;
	struct str_index by_id;    /* cfg's tenants: id -> index, for config_tenant_find */
	const char *tenant_filter;
	bool json;
	double now;
	struct daemon_info d;
	cJSON *jtenants;
	bool only_unconfigured;    /* the pass over tenants only the store knows */
	const struct config_tenant *row_of; /* the configured tenant the row shown stands for, when the
	                                     * config names it another way (renamed at the next pull) */
	struct store *st;          /* for each failing tenant's run of failures */
	int bad;                   /* tenants whose latest outcome is failed / held */
};

/* ---- small helpers */

/* c->by_id: each store row is looked up in the config (thousands of
 * tenants, twice). */
static void config_tenants_index(struct status_ctx *c)
{
	for (size_t i = 0; i < c->cfg->ntenants; i++)
		if (c->cfg->tenants[i].id) str_index_put(&c->by_id, c->cfg->tenants[i].id, i);
}

static const struct config_tenant *config_tenant_find(const struct status_ctx *c, const char *id)
{
	size_t i = str_index_get(&c->by_id, id);
	return i == STR_INDEX_NONE ? NULL : &c->cfg->tenants[i];
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
 * booleans, in order, zeros left out; arrays as their length when not
 * empty; "no changes" when all are zero). Pull counts keep only the user
 * counts. */
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
		if (cJSON_IsNumber(m) && m->valuedouble != 0) buf_printf(out, "%s%s %.0f", n++ ? ", " : "", name, m->valuedouble);
		else if (cJSON_IsTrue(m)) buf_printf(out, "%s%s", n++ ? ", " : "", name);
		else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) > 0)
			buf_printf(out, "%s%s %d", n++ ? ", " : "", name, cJSON_GetArraySize(m));
	}
	if (!n && cJSON_IsObject(o) && !pull) buf_adds(out, "no changes");
	cJSON_Delete(o);
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
		{ DAEMON_KV_VERIFY_EVERY, offsetof(struct daemon_info, verify_every) },
		{ DAEMON_KV_LAST_VERIFY, offsetof(struct daemon_info, last_verify) },
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
	               &d->last_exit, &d->config_error, &d->started_at, &d->verify_every, &d->last_verify };
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
	if (d->verify_every) printf(", with --verify every %s", d->verify_every);
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
	if (d->verify_every) {
		if (d->last_verify) when_text(d->last_verify, c->now, when, sizeof when);
		printf("  last run with --verify: %s\n", d->last_verify ? when : "none yet");
	}
	if (d->config_error) printf("  the last reload failed (the previous config is kept): %s\n", d->config_error);
}

/* "for ever" or "N days" for a retention of days. */
static const char *days_text(int days, char *buf, size_t cap)
{
	if (days <= 0) return "for ever";
	snprintf(buf, cap, "%d day%s", days, days == 1 ? "" : "s");
	return buf;
}

/* The database's size and what the retention keeps (docs/operations.md,
 * Retention): a line of text, or members of the JSON root. */
static void print_database(const struct config *cfg, struct store *st, cJSON *root)
{
	const struct config_retention *r = &cfg->retention;
	long long bytes = 0, free_bytes = 0;
	struct err err;
	bool sized = st && store_status_db_size(st, &bytes, &free_bytes, &err) == 0;
	if (root) {
		if (sized) {
			cJSON_AddNumberToObject(root, "database_bytes", (double)bytes);
			cJSON_AddNumberToObject(root, "database_free_bytes", (double)free_bytes);
		}
		cJSON *j = cJSON_AddObjectToObject(root, "retention");
		cJSON_AddNumberToObject(j, "runs_days", r->runs_days);
		cJSON_AddNumberToObject(j, "audit_days", r->audit_days);
		cJSON_AddNumberToObject(j, "score_detail_days", r->score_detail_days);
		return;
	}
	char a[32], b[32], c[32];
	if (sized) printf("Database: %s, %.1f MB (%.1f MB free)\n", cfg->database, (double)bytes / 1e6,
	                  (double)free_bytes / 1e6);
	printf("History kept: runs %s, audit %s, Secure Score control scores %s\n", days_text(r->runs_days, a, sizeof a),
	       days_text(r->audit_days, b, sizeof b), days_text(r->score_detail_days, c, sizeof c));
}

/* How the app signs in to Graph: a client secret, or a certificate read as a
 * pull would, with its expiry (a warning from 30 days before it) or what is
 * wrong with it. A line of text, or "graph_credential" in the JSON root. */
static void print_credential(const struct config *cfg, double now, cJSON *root)
{
	const char *cert = cfg->graph.certificate && *cfg->graph.certificate ? cfg->graph.certificate : NULL;
	double not_after = -1;
	struct err err = { 0 };
	bool ok = !cert || graph_credentials_check(&cfg->graph, 0, &not_after, &err) == 0;
	char day[16] = "";
	if (not_after > 0) time_day(not_after, day, sizeof day);
	if (!ok) log_redact_err(&err);
	if (root) {
		cJSON *j = cJSON_AddObjectToObject(root, "graph_credential");
		cJSON_AddStringToObject(j, "kind", cert ? "certificate" : "client_secret");
		if (!cert) return;
		cJSON_AddStringToObject(j, "certificate", cert);
		if (not_after > 0) {
			char iso[32];
			time_iso8601(not_after, iso, sizeof iso);
			cJSON_AddStringToObject(j, "expires_at", iso);
		}
		if (ok) cJSON_AddNullToObject(j, "error");
		else cJSON_AddStringToObject(j, "error", err.msg);
		return;
	}
	if (!cert) {
		printf("Graph sign-in: client secret (its expiry is in the app registration)\n");
	} else if (!ok) {
		printf("Graph sign-in: certificate, NOT USABLE: %s\n", err.msg);
	} else if (not_after > 0) {
		double days = (not_after - now) / 86400.0;
		printf("Graph sign-in: certificate %s, expires %s (in %.0f days)%s\n", cert, day, days,
		       days < GRAPH_CERT_WARN_DAYS ? ": upload its successor to the app registration" : "");
	} else {
		printf("Graph sign-in: certificate %s\n", cert);
	}
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
	add_str(o, "verify_every", d->verify_every);
	add_str(o, "last_verify_at", d->last_verify);
	return o;
}

/* ---- tenants */

/* A tenant's latest pull or sync, from its run row or the tenants row. */
struct outcome {
	const char *at;            /* NULL = never */
	const char *status;        /* NULL = not known on its own (a pull inside a sync) */
	const char *reason;
	const char *counts;        /* JSON or NULL */
	long long run_id;
	bool running;
	bool in_sync;              /* the pull was the first step of the latest sync */
};

static struct outcome outcome_of_run(const struct store_status_run *r)
{
	bool running = !r->finished_at && r->run_status && strcmp(r->run_status, "running") == 0;
	return (struct outcome){ .at = r->finished_at ? r->finished_at : r->started_at, .status = r->status,
	                         .reason = r->reason, .counts = r->counts, .run_id = r->run_id, .running = running };
}

/* Is ISO time a at or after b (both the store's fixed format)? */
static bool iso_at_or_after(const char *a, const char *b)
{
	return a && b && strcmp(a, b) >= 0;
}

static struct outcome pull_outcome(const struct store_status_tenant *t)
{
	if (t->pull.run_id && (!t->last_pull_at || iso_at_or_after(t->pull.started_at, t->last_pull_at) ||
	                       iso_at_or_after(t->pull.finished_at, t->last_pull_at)))
		return outcome_of_run(&t->pull);
	if (!t->last_pull_at) return (struct outcome){ 0 };
	struct outcome o = { .at = t->last_pull_at };
	if (t->sync.run_id && iso_at_or_after(t->last_pull_at, t->sync.started_at) &&
	    (!t->sync.finished_at || iso_at_or_after(t->sync.finished_at, t->last_pull_at)))
		o.in_sync = true;
	else if (!iso_at_or_after(t->last_sync_at, t->last_pull_at)) o.status = t->last_status, o.reason = t->last_error;
	return o;
}

static struct outcome sync_outcome(const struct store_status_tenant *t)
{
	if (t->sync.run_id) return outcome_of_run(&t->sync);
	if (!t->last_sync_at) return (struct outcome){ 0 };
	return (struct outcome){ .at = t->last_sync_at, .status = t->last_status, .reason = t->last_error };
}

static cJSON *outcome_json(const struct outcome *o)
{
	if (!o->at) return cJSON_CreateNull();
	cJSON *j = cJSON_CreateObject();
	add_str(j, "at", o->at);
	add_str(j, "status", o->status);
	add_str(j, "reason", o->reason);
	if (o->run_id) cJSON_AddNumberToObject(j, "run_id", (double)o->run_id);
	else cJSON_AddNullToObject(j, "run_id");
	cJSON *counts = o->counts ? cJSON_Parse(o->counts) : NULL;
	cJSON_AddItemToObject(j, "counts", counts ? counts : cJSON_CreateNull());
	cJSON_AddBoolToObject(j, "running", o->running);
	cJSON_AddBoolToObject(j, "part_of_sync", o->in_sync);
	return j;
}

static void print_outcome(const char *label, const struct outcome *o, bool pull, double now)
{
	char when[80];
	when_text(o->at, now, when, sizeof when);
	printf("  %-10s %s%s", label, o->running ? "started " : "", when);
	if (o->in_sync) printf(", as the first step of the sync below");
	if (o->status) printf(": %s", o->status);
	if (o->running) printf(", still going");
	if (o->status && o->reason) {
		char *reason = str_term_message(o->reason);
		printf(strcmp(o->status, "ok") != 0 ? ": %s" : ", with a warning: %s", reason);
		free(reason);
	}
	struct buf counts = { 0 };
	counts_text(o->counts, pull, &counts);
	if (counts.len) printf("\n  %-10s %s", "", counts.data);
	buf_free(&counts);
	printf("\n");
}

/* The worst of a tenant's latest outcomes: "failed" / "held" / "ok", NULL
 * when it never ran. */
static const char *tenant_outcome(const struct outcome *pull, const struct outcome *sync)
{
	const char *v[] = { pull->status, sync->status };
	const char *worst = pull->at || sync->at ? "ok" : NULL;
	for (size_t i = 0; i < ARRAY_LEN(v); i++) {
		if (!v[i]) continue;
		if (strcmp(v[i], "failed") == 0) return "failed";
		if (strcmp(v[i], "ok") != 0) worst = v[i];
	}
	return worst;
}

static int on_tenant(const struct store_status_tenant *t, void *ud)
{
	struct status_ctx *c = ud;
	const struct config_tenant *ct = c->row_of ? c->row_of : config_tenant_find(c, t->id);
	const char *name = ct && ct->name ? ct->name : t->name;
	if (!tenant_selected(c->tenant_filter, t->id, name) && !(ct && tenant_selected(c->tenant_filter, ct->id, name)))
		return 0;
	if (c->only_unconfigured && (ct || ops_tenant_row_configured(c->cfg, c->st, t->id))) return 0;
	const struct outcome pull = pull_outcome(t), sync = sync_outcome(t);
	const char *outcome = tenant_outcome(&pull, &sync);
	/* a tenant out of the config no longer runs: its last failure is history, not a problem now */
	if (ct && outcome && strcmp(outcome, "ok") != 0) c->bad++;
	/* a configured tenant that failed: since when, in how many runs */
	struct store_status_failing sf = { 0 };
	struct err e;
	if (ct && outcome && strcmp(outcome, "failed") == 0 && store_status_failing_get(c->st, t->id, &sf, &e) != 0)
		fprintf(stderr, "entrasync status: %s\n", e.msg);
	if (c->json) {
		cJSON *o = cJSON_CreateObject();
		add_str(o, "id", t->id);
		add_str(o, "name", name);
		cJSON_AddBoolToObject(o, "in_config", ct != NULL);
		add_str(o, "status", outcome ? outcome : "never");
		cJSON_AddItemToObject(o, "last_pull", outcome_json(&pull));
		cJSON_AddItemToObject(o, "last_sync", outcome_json(&sync));
		cJSON_AddNumberToObject(o, "users_mirrored", (double)t->users_present);
		cJSON_AddNumberToObject(o, "users_removed", (double)t->users_removed);
		cJSON_AddNumberToObject(o, "contacts_linked", (double)t->links);
		cJSON_AddNumberToObject(o, "conflicts_open", (double)t->conflicts_open);
		cJSON_AddNumberToObject(o, "writes_unconfirmed", (double)t->intents_open);
		if (sf.runs) {
			add_str(o, "failing_since", sf.since);
			cJSON_AddNumberToObject(o, "failing_runs", (double)sf.runs);
		}
		add_str(o, "next_run_at", c->d.pid ? c->d.next_run_at : NULL);
		cJSON_AddItemToArray(c->jtenants, o);
		store_status_failing_free(&sf);
		return 0;
	}
	char *safe_name = str_term_safe(name);   /* Microsoft's organization name: the customer's text */
	if (name) printf("%s (%s)%s\n", safe_name, t->id, ct ? "" : "  [not in the config any more]");
	else printf("%s%s\n", t->id, ct ? "" : "  [not in the config any more]");
	free(safe_name);
	if (c->row_of)
		printf("  the config names it %s: the next pull or sync renames its rows to that\n", c->row_of->id);
	print_outcome("last pull", &pull, true, c->now);
	print_outcome("last sync", &sync, false, c->now);
	printf("  users mirrored %lld", t->users_present);
	if (t->users_removed) printf(" (+%lld removed)", t->users_removed);
	printf(", contacts linked %lld, conflicts open %lld", t->links, t->conflicts_open);
	if (t->intents_open) printf(", writes unconfirmed %lld", t->intents_open);
	printf("\n");
	if (sf.runs > 1) {
		char since[80];
		when_text(sf.since, c->now, since, sizeof since);
		printf("  failing since %s, %lld runs in a row\n", since, sf.runs);
	}
	store_status_failing_free(&sf);
	if (t->conflicts_open && ct) printf("  see: entrasync conflicts --tenant %s\n", t->id);
	if (!ct) printf("  'entrasync tenants forget %s' deletes what the database keeps of it\n", t->id);
	printf("\n");
	return 0;
}

/* A configured tenant the store has never seen. */
static void never_seen(struct status_ctx *c, const struct config_tenant *t)
{
	if (!tenant_selected(c->tenant_filter, t->id, t->name)) return;
	if (!c->json) {
		if (t->name) printf("%s (%s)\n", t->name, t->id);
		else printf("%s\n", t->id);
		printf("  never pulled or synced\n\n");
		return;
	}
	cJSON *o = cJSON_CreateObject();
	add_str(o, "id", t->id);
	add_str(o, "name", t->name);
	cJSON_AddBoolToObject(o, "in_config", true);
	add_str(o, "status", "never");
	cJSON_AddNullToObject(o, "last_pull");
	cJSON_AddNullToObject(o, "last_sync");
	static const char *const zero[] = { "users_mirrored", "users_removed", "contacts_linked", "conflicts_open",
	                                    "writes_unconfirmed" };
	for (size_t i = 0; i < ARRAY_LEN(zero); i++) cJSON_AddNumberToObject(o, zero[i], 0);
	add_str(o, "next_run_at", c->d.pid ? c->d.next_run_at : NULL);
	cJSON_AddItemToArray(c->jtenants, o);
}

/* The newest run when it has not finished: going on now (the run lock is
 * held, by pid), or killed or crashed (no one holds the lock; the next run
 * marks it "interrupted" and picks up what it left). A run that is not
 * going on counts as bad: status exits 1. Prints it (text), or adds "run"
 * to root (JSON: null when the newest run finished). */
static void print_run(struct status_ctx *c, const struct config *cfg, cJSON *root)
{
	struct store_status_newest n = { 0 };
	struct err err;
	bool open = false;
	if (c->st) {
		int r = store_status_run_newest(c->st, &n, &err);
		if (r < 0) fprintf(stderr, "entrasync status: %s\n", err.msg);
		open = r == 0 && n.status && strcmp(n.status, "running") == 0;
	}
	long pid = 0;
	if (open) {
		char *lock_path = xasprintf("%s.lock", cfg->database);
		pid = daemon_lock_holder(lock_path);
		free(lock_path);
		if (!pid) c->bad++;
	}
	if (root) {
		if (!open) {
			cJSON_AddNullToObject(root, "run");
		} else {
			cJSON *o = cJSON_AddObjectToObject(root, "run");
			cJSON_AddNumberToObject(o, "id", (double)n.run_id);
			add_str(o, "kind", n.kind);
			add_str(o, "started_at", n.started_at);
			add_str(o, "state", pid ? "running" : "interrupted");
			if (pid > 0) cJSON_AddNumberToObject(o, "pid", (double)pid);
			else cJSON_AddNullToObject(o, "pid");
		}
	} else if (open) {
		char when[80], who[32] = "";
		when_text(n.started_at, c->now, when, sizeof when);
		if (pid > 0) snprintf(who, sizeof who, " (pid %ld)", pid);
		if (pid)
			printf("Run: %s #%lld started %s, still going%s; the tenants below show their last finished runs\n",
			       n.kind, n.run_id, when, who);
		else
			printf("Run: %s #%lld started %s did not finish (killed, or the machine stopped): the next run "
			       "resumes it; the tenants below show their last finished runs\n", n.kind, n.run_id, when);
	}
	store_status_newest_free(&n);
}

int cmd_status(int argc, char **argv, const struct global_opts *g)
{
	const char *tenant = NULL;
	int json = 0, npos, rc = EXIT_USAGE;
	const struct opt opts[] = {
		{ "--tenant", "ID|NAME", &tenant, NULL },
		{ "--json", NULL, NULL, &json },
		{ NULL, NULL, NULL, NULL },
	};
	struct config cfg;
	struct err err;
	struct store *st = NULL;
	struct status_ctx c;
	memset(&cfg, 0, sizeof cfg);
	memset(&c, 0, sizeof c);
	if (command_args("status", argc, argv, opts, 0, &npos) != 0) return EXIT_USAGE;
	if (config_load_opts(config_locate(g->config_path), CONFIG_SKIP_POLICY_FILES, &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	c.cfg = &cfg;
	config_tenants_index(&c);
	c.tenant_filter = tenant;
	c.json = json;
	c.now = time_now();
	bool have_db = access(cfg.database, F_OK) == 0;
	if (have_db && store_open(cfg.database, &st, &err) != 0) {
		fprintf(stderr, "entrasync status: %s\n", err.msg);
		rc = EXIT_NOSTART;
		goto out;
	}
	c.st = st;
	if (tenant) {
		if (!ops_tenant_known(&cfg, st, tenant)) {
			rc = ops_tenant_unknown("status", &cfg, tenant);
			goto out;
		}
		c.tenant_filter = ops_tenant_id_in(&cfg, st, tenant);   /* its GUID or a verified domain names it too */
	}
	if (st && store_status_kv_each(st, DAEMON_KV_PREFIX, daemon_kv, &c.d, &err) != 0) {
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
		print_run(&c, &cfg, root);
		print_database(&cfg, st, root);
		print_credential(&cfg, c.now, root);
		c.jtenants = cJSON_AddArrayToObject(root, "tenants");
	} else {
		if (!have_db) printf("No database yet at %s: nothing has been pulled or synced.\n", cfg.database);
		print_daemon(&c);
		print_run(&c, &cfg, NULL);
		print_database(&cfg, st, NULL);
		print_credential(&cfg, c.now, NULL);
		printf("\n");
	}
	/* the configured tenants in config order, then those only the store knows */
	int r = 0;
	for (size_t i = 0; r >= 0 && i < cfg.ntenants; i++) {
		r = st ? store_status_tenant_each(st, cfg.tenants[i].id, on_tenant, &c, &err) : STORE_NOTFOUND;
		char *row = r == STORE_NOTFOUND && st ? ops_tenant_row_of(&cfg, st, &cfg.tenants[i]) : NULL;
		if (row) {   /* named another way than the store's row: that row's, until renamed */
			c.row_of = &cfg.tenants[i];
			r = store_status_tenant_each(st, row, on_tenant, &c, &err);
			c.row_of = NULL;
			free(row);
		}
		if (r == STORE_NOTFOUND) never_seen(&c, &cfg.tenants[i]);
	}
	c.only_unconfigured = true;
	if (st && r >= 0) r = store_status_tenant_each(st, NULL, on_tenant, &c, &err);
	if (r < 0) {
		fprintf(stderr, "entrasync status: %s\n", err.msg);
		cJSON_Delete(root);
		rc = EXIT_NOSTART;
		goto out;
	}
	if (root) {
		char *text = cJSON_Print(root);
		printf("%s\n", text);
		free(text);
		cJSON_Delete(root);
	}
	rc = c.bad ? EXIT_PARTIAL : EXIT_OK;
out:
	str_index_free(&c.by_id);
	daemon_info_free(&c.d);
	store_close(st);
	config_free(&cfg);
	return rc;
}
