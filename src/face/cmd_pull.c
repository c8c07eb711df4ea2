/* cmd_pull — `entrasync pull [--tenant T]`: Graph → the local store for
 * every configured tenant (or the ones named), concurrently, touching
 * nothing in Syncro. Holds the run lock, records the run and each tenant's
 * outcome in the store, prints one line per tenant. Exit 0 when every
 * tenant pulled, 1 when some failed (the others are still pulled) or Graph
 * was found not answering (the pull stopped: the tenants not done failed),
 * 2 for usage or config errors, 3 when the run could not start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "face/cmd_ops.h"
#include "face/commands.h"
#include "util/config.h"
#include "graph/graph.h"
#include "http/http.h"
#include "util/log.h"
#include "util/shutdown.h"
#include "report/metrics.h"
#include "script/script.h"
#include "store/store.h"
#include "store/store_snapshots.h"

/* The policy groups of one tenant (names or ids), owned copies. */
struct tenant_groups {
	char **v;
	size_t n;
};

static void groups_free(struct tenant_groups *g)
{
	for (size_t i = 0; i < g->n; i++) free(g->v[i]);
	free(g->v);
	memset(g, 0, sizeof *g);
}

/* Reads the groups the tenant's policy declares (`groups = { ... }`). */
static int policy_groups(const struct config *cfg, const char *policy, struct tenant_groups *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	if (!policy) return 0;
	struct script *s = NULL;
	struct script_limits lim = { .instructions = cfg->limits.instructions, .seconds = cfg->limits.seconds, .memory_bytes = cfg->limits.memory_bytes };
	int rc = -1;
	if (script_new(&lim, &s, err) != 0) goto out;
	if (script_policy_load(s, policy, err) != 0) goto out;
	const struct policy_info *pi = script_policy_info(s);
	if (pi && pi->ngroups) {
		out->v = xcalloc(pi->ngroups, sizeof *out->v);
		for (size_t i = 0; i < pi->ngroups; i++) out->v[out->n++] = xstrdup(pi->groups[i]);
	}
	rc = 0;
out:
	script_free(s);
	return rc;
}

static void print_result(const struct graph_pull_spec *spec, const struct graph_pull_result *r)
{
	const char *label = spec->name ? spec->name : spec->tenant_id;
	if (r->ok)
		printf("%s: ok: %lld users (%lld written, %lld removed%s), %ld groups (%lld members), %ld SKUs, "
		       "%ld score days; %ld Graph requests\n", label, r->users_present, r->users_upserted,
		       r->users_removed, r->resync ? ", full resync" : "", r->groups, r->group_members, r->skus, r->scores,
		       r->counters.requests);
	else
		printf("%s: FAILED: %s\n", label, r->error);
	if (r->ok && r->warning[0]) printf("  warning: %s\n", r->warning);
}

int cmd_pull(int argc, char **argv, const struct global_opts *g)
{
	const char *unused = NULL, *workers_opt = NULL;
	const struct opt opts[] = { { "--tenant", "ID", &unused, NULL },   /* taken out before (repeatable) */
	                            { "--workers", "N", &workers_opt, NULL }, { NULL, NULL, NULL, NULL } };
	struct opt_list names = { 0 };
	bool *sel = NULL;
	struct config cfg;
	struct err err;
	int npos, rc = EXIT_USAGE;
	struct store *st = NULL;
	struct store_lock lock = { 0 };
	struct http_engine *engine = NULL;
	struct graph_client *gc = NULL;
	struct graph_pull_spec *specs = NULL;
	struct graph_pull_result *results = NULL;
	struct tenant_groups *groups = NULL;
	struct str_index loaded = { 0 };   /* policy path -> the spec whose groups its next tenants copy */
	size_t n = 0;
	long long run_id = 0;
	memset(&cfg, 0, sizeof cfg);
	int left = opts_take_list(argc, argv, "--tenant", "ID", &names, &err);
	if (left < 0 || opts_parse(left, argv, opts, argv, &npos, &err) != 0) {
		rc = usage_fail("pull", "%s", err.msg);
		goto out;
	}
	if (npos > 0) {
		rc = usage_fail("pull", "unexpected argument '%s'", argv[0]);
		goto out;
	}
	int workers = 0;
	if (workers_opt) {
		char *end;
		long w = strtol(workers_opt, &end, 10);
		if (*workers_opt == '\0' || *end || w < 1 || w > CONFIG_PULL_WORKERS_MAX) {
			rc = usage_fail("pull", "--workers '%s' must be a number from 1 to %d", workers_opt,
			                CONFIG_PULL_WORKERS_MAX);
			goto out;
		}
		workers = (int)w;
	}
	if (config_load(config_locate(g->config_path), &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	rc = EXIT_NOSTART;
	if (store_lock_acquire(cfg.database, &lock, &err) != 0 || store_open(cfg.database, &st, &err) != 0 ||
	    ops_tenants_rekey(&cfg, st, &err) != 0) {
		fprintf(stderr, "entrasync pull: %s\n", err.msg);
		goto out;
	}
	/* the tenants named, by id, name, GUID or verified domain (the store knows the last two) */
	sel = xcalloc(cfg.ntenants + 1, sizeof *sel);
	if ((rc = ops_tenants_select("pull", &cfg, st, &names, sel)) != 0) goto out;
	specs = xcalloc(cfg.ntenants + 1, sizeof *specs);
	results = xcalloc(cfg.ntenants + 1, sizeof *results);
	groups = xcalloc(cfg.ntenants + 1, sizeof *groups);
	bool policy_failed = false;
	for (size_t i = 0; i < cfg.ntenants; i++) {
		const struct config_tenant *t = &cfg.tenants[i];
		if (!sel[i]) continue;
		/* tenants sharing a policy share its groups: load each policy once */
		const char *policy = t->policy ? t->policy : "";
		size_t same = str_index_get(&loaded, policy);
		if (same != STR_INDEX_NONE) {
			groups[n].v = xcalloc(groups[same].n + 1, sizeof *groups[n].v);
			for (size_t k = 0; k < groups[same].n; k++) groups[n].v[groups[n].n++] = xstrdup(groups[same].v[k]);
		} else if (policy_groups(&cfg, t->policy, &groups[n], &err) != 0) {
			log_redact_err(&err);
			fprintf(stderr, "%s: its policy does not load, so its groups are unknown: %s\n", t->id, err.msg);
			policy_failed = true;
			continue;
		} else {
			str_index_put(&loaded, policy, n);
		}
		specs[n] = (struct graph_pull_spec){ .tenant_id = t->id, .name = t->name,
		                                     .groups = (const char *const *)groups[n].v, .n_groups = groups[n].n };
		n++;
	}

	rc = EXIT_NOSTART;
	engine = http_engine_new(NULL, &err);
	if (!engine) {
		fprintf(stderr, "entrasync pull: %s\n", err.msg);
		goto out;
	}
	if (graph_client_new(&(struct graph_client_opts){ .cfg = &cfg.graph, .engine = engine }, &gc, &err) != 0) {
		fprintf(stderr, "entrasync pull: %s\n", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	ops_cert_warn(&cfg);
	/* SIGTERM / SIGINT: the requests in flight end, the tenants not done fail
	 * ("stopped by a signal"), the run is recorded; a second signal kills */
	shutdown_install();
	if (store_run_begin(st, "pull", &run_id, &err) != 0) {
		fprintf(stderr, "entrasync pull: %s\n", err.msg);
		goto out;
	}
	if (!workers) workers = cfg.graph.pull_workers;
	struct graph_pull_http http = { 0 };
	if (graph_pull_workers(&(struct graph_pull_workers_opts){ .cfg = &cfg.graph, .database = cfg.database,
	                                                          .st = st, .gc = gc, .workers = workers,
	                                                          .http = &http },
	                       specs, n, results, &err) != 0) {
		fprintf(stderr, "entrasync pull: %s\n", err.msg);
		store_run_finish(st, run_id, "failed", NULL, &err);
		goto out;
	}
	size_t failed = 0, unavailable = 0;
	/* the run's record: one unit of work (autocommit when it cannot begin) */
	bool tx = store_begin(st, &err) == 0;
	for (size_t i = 0; i < n; i++) {
		const struct graph_pull_result *r = &results[i];
		print_result(&specs[i], r);
		char *counts = xasprintf("{\"users_present\":%lld,\"users_written\":%lld,\"users_removed\":%lld,"
		                         "\"resync\":%s,\"pages\":%ld,\"groups\":%ld,\"skus\":%ld,\"score_days\":%ld,"
		                         "\"requests\":%ld,\"attempts\":%ld,\"throttled\":%ld,\"store_seconds\":%.6f}",
		                         r->users_present, r->users_upserted, r->users_removed, r->resync ? "true" : "false",
		                         r->pages, r->groups, r->skus, r->scores, r->counters.requests,
		                         r->counters.attempts, r->counters.throttled, r->store_seconds);
		if (store_run_tenant_put(st, run_id, specs[i].tenant_id, r->ok ? "ok" : "failed", counts,
		                         r->ok ? (r->warning[0] ? r->warning : NULL) : r->error, &err) != 0)
			log_error("pull", "%s", err.msg);
		free(counts);
		if (!r->ok) failed++;
		if (r->unavailable) unavailable++;
	}
	if (unavailable)
		fprintf(stderr, "entrasync pull: Microsoft Graph was found not answering (graph.outage_seconds): the pull "
		        "stopped, %zu of %zu tenants not pulled (each says why); the next run goes on from here\n",
		        unavailable, n);
	char *summary = xasprintf("{\"tenants\":%zu,\"failed\":%zu}", n, failed);
	if (store_run_finish(st, run_id, failed || policy_failed ? (failed == n ? "failed" : "partial") : "ok", summary,
	                     &err) != 0)
		log_error("pull", "%s", err.msg);
	if (tx && store_commit(st, &err) != 0) {
		log_error("pull", "%s", err.msg);
		struct err ignored;
		store_rollback(st, &ignored);
	}
	free(summary);
	rc = failed || policy_failed ? EXIT_PARTIAL : EXIT_OK;
	/* the run's HTTP counters, this process's and its workers', for the metrics */
	struct http_service *svc[] = { graph_client_service(gc), graph_client_login_service(gc) };
	const struct http_counters *more[] = { &http.graph, &http.login };
	for (size_t i = 0; i < ARRAY_LEN(svc); i++)
		if (metrics_record_service(st, svc[i], more[i], &err) != 0)
			log_warn("pull", "the HTTP counters were not recorded for the metrics: %s", err.msg);
	struct store_pruned pruned;
	struct buf said = {0};
	if (ops_retention(&cfg, st, &pruned, &said, &err) != 0) {
		fprintf(stderr, "entrasync pull: retention: %s\n", err.msg);
		rc = EXIT_PARTIAL;
	} else if (said.len) {
		printf("retention: deleted %s\n", said.data);
	}
	buf_free(&said);
out:
	graph_client_free(gc);
	http_engine_free(engine);
	store_close(st);
	store_lock_release(&lock);
	for (size_t i = 0; groups && i < cfg.ntenants; i++) groups_free(&groups[i]);
	free(groups);
	free(specs);
	free(results);
	str_index_free(&loaded);
	free(sel);
	opt_list_free(&names);
	config_free(&cfg);
	return rc;
}
