/* cmd_sync — `entrasync sync [--tenant T]... [--dry-run] [--json]
 * [--allow-removals] [--verify] [--metrics FILE]`: takes the run lock, opens the
 * store, makes the Graph and Syncro clients on one HTTP engine, runs the
 * engine (engine_sync.c) and prints the plan/result per tenant (text, or
 * JSON). Then the steps other features own, each only when configured and
 * each with one line (text) or a member of "steps" (JSON):
 *   tickets    actions.ticket_problem_type: the ticket actions (actions.h);
 *              skipped when the pull found Graph not answering (their Graph
 *              calls would end unsent: they wait for the next run);
 *   schedules  billing.schedules_on_sync: the recurring invoices of the
 *              selected tenants kept in step for the current period;
 *   alerts     alerts.enabled: the findings as Syncro tickets (alerts.h);
 *   retention  not in a dry run: the history older than the config's
 *              retention deleted (store_retention.h); a line only when
 *              something went;
 *   metrics    always: the run's HTTP counters added to the store; with
 *              --metrics FILE the Prometheus file written.
 * --dry-run goes for every step. A failing step makes the exit code 1 and
 * the others still run. SIGTERM/SIGINT (shutdown.h): the write in flight
 * finishes, nothing more is sent, the steps are skipped.
 * Exit 0 all ok, 1 a tenant failed or was held (or the run stopped on a
 * Syncro 401, or a step failed), 2 usage or config error, 3 could not start
 * (lock held, store unreadable).
 *
 * Test hooks (environment, for the crash tests only):
 *   ENTRASYNC_TEST_KILL_BEFORE_SEND=N / ENTRASYNC_TEST_KILL_AFTER_SEND=N:
 *   the process SIGKILLs itself right before / right after its Nth Syncro
 *   write (after the intent is committed / before the result is). */
#include "face/cmd_ops.h"
#include "face/commands.h"

#include <cjson/cJSON.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions/actions.h"
#include "report/alerts.h"
#include "billing/billing_run.h"
#include "util/config.h"
#include "engine/engine.h"
#include "graph/graph.h"
#include "http/http.h"
#include "util/log.h"
#include "report/metrics.h"
#include "util/progress.h"
#include "report/report.h"
#include "script/script.h"
#include "util/shutdown.h"
#include "store/store.h"
#include "store/store_billing.h"
#include "syncro/syncro.h"
#include "syncro/syncro_billing.h"

static long kill_before, kill_after, sends_before, sends_after;

/* The HTTP engine with both clients. */
struct clients {
	struct http_engine *e;
	struct graph_client *gc;
	struct syncro_client *sc;
};

/* Requests so far over the run's services. */
static long long clients_requests(const struct clients *c)
{
	struct http_service *svc[] = { c->gc ? graph_client_service(c->gc) : NULL,
	                               c->gc ? graph_client_login_service(c->gc) : NULL,
	                               c->sc ? syncro_client_service(c->sc) : NULL };
	long long n = 0;
	for (size_t i = 0; i < ARRAY_LEN(svc); i++) {
		if (!svc[i]) continue;
		struct http_counters hc;
		http_service_counters(svc[i], &hc);
		n += (long long)hc.submitted;
	}
	return n;
}

/* What the send hooks see (hook_ud). */
struct send_watch {
	const struct clients *cl;
	struct progress *progress;         /* NULL: no display */
	long long writes;
	long long tenants_done;            /* tenants ended so far (on_tenant_done) */
};

static void hook_before(void *ud, const struct engine_action *a)
{
	if (kill_before && ++sends_before == kill_before) raise(SIGKILL);
}

/* After each Syncro write: the crash hook, then the progress line. */
static void hook_after(void *ud, const struct engine_action *a)
{
	struct send_watch *w = ud;
	if (kill_after && ++sends_after == kill_after) raise(SIGKILL);
	w->writes++;
	progress_update(w->progress, w->tenants_done, clients_requests(w->cl), w->writes);
}

/* As each tenant ends (ok, failed or held): the progress line's count. */
static void tenant_done(void *ud, size_t done, size_t total, const struct engine_tenant_report *r)
{
	struct send_watch *w = ud;
	(void)total;
	(void)r;
	w->tenants_done = (long long)done;
	progress_update(w->progress, w->tenants_done, clients_requests(w->cl), w->writes);
}

static long env_long(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : 0;
}

static int clients_new(const struct config *cfg, struct clients *c, struct err *err)
{
	memset(c, 0, sizeof *c);
	if (!(c->e = http_engine_new(NULL, err))) return -1;
	struct syncro_opts so;
	syncro_opts_from_config(&cfg->syncro, &so);
	if (!(c->sc = syncro_client_new(c->e, &so, err))) return err_prefix(err, "syncro");
	struct graph_client_opts go = { .cfg = &cfg->graph, .engine = c->e };
	if (graph_client_new(&go, &c->gc, err) != 0) return err_prefix(err, "graph");
	ops_cert_warn(cfg);
	return 0;
}

static void clients_free(struct clients *c)
{
	graph_client_free(c->gc);
	http_engine_free(c->e);
	syncro_client_free(c->sc);
	memset(c, 0, sizeof *c);
}

/* ---- the steps after the sync */

/* What the steps share. */
struct steps {
	const struct config *cfg;
	struct store *st;
	const struct clients *cl;
	const bool *sel;                   /* the selected tenants (cfg->ntenants) */
	const struct graph_pull_http *pull_http; /* the requests of the pull's worker processes */
	long long run_id;                  /* the sync's run (0 in a dry run) */
	bool dry, json;
	FILE *out;                         /* the step lines: stdout, or stderr with --json */
	cJSON *js;                         /* --json: the "steps" object, else NULL */
	int rc;                            /* EXIT_OK, or EXIT_PARTIAL once a step failed */
};

/* A step's outcome: its line and (with --json) its member. */
static void step_done(struct steps *s, const char *name, bool ok, cJSON *j, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static void step_done(struct steps *s, const char *name, bool ok, cJSON *j, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	fprintf(s->out, "%s: %s%s\n", name, b.data ? b.data : "", s->dry ? " (dry run: nothing changed)" : "");
	if (!ok) s->rc = EXIT_PARTIAL;
	if (s->js) {
		if (!j) j = cJSON_CreateObject();
		cJSON_AddBoolToObject(j, "ok", ok);
		cJSON_AddStringToObject(j, "summary", b.data ? b.data : "");
		cJSON_AddItemToObject(s->js, name, j);
	} else {
		cJSON_Delete(j);
	}
	buf_free(&b);
}

static void step_tickets(struct steps *s)
{
	struct err err;
	const struct config_actions *ca = &s->cfg->actions;
	struct actions_env env = { .cfg = s->cfg, .st = s->st, .engine = s->cl->e, .gc = s->cl->gc, .sc = s->cl->sc,
	                           .actor = actions_actor(), .out = s->json ? NULL : stdout };
	/* sync --tenant: that tenant's tickets only (the others' wait for their run) */
	bool every = true;
	for (size_t i = 0; i < s->cfg->ntenants; i++) every = every && s->sel[i];
	struct actions_ticket_opts o = { .problem_type = ca->ticket_problem_type, .status_done = ca->ticket_status_done,
	                                 .status_failed = ca->ticket_status_failed, .dry_run = s->dry,
	                                 .tenants = every ? NULL : s->sel };
	struct actions_ticket_report r = {0};
	if (actions_process_tickets(&env, &o, &r, &err) != 0) {
		log_redact_err(&err);
		step_done(s, "tickets", false, NULL, "FAILED: %s", err.msg);
		return;
	}
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "problem_type", o.problem_type);
	const char *names[] = { "seen", "done", "refused", "failed", "pending", "resumed", "already" };
	const int vals[] = { r.seen, r.done, r.refused, r.failed, r.pending, r.resumed, r.already };
	for (size_t i = 0; i < ARRAY_LEN(names); i++) cJSON_AddNumberToObject(j, names[i], vals[i]);
	step_done(s, "tickets", r.failed + r.pending == 0, j,
	          "problem type '%s': %d open, %d done, %d refused, %d failed, %d pending, %d resumed, %d handled before",
	          o.problem_type, r.seen, r.done, r.refused, r.failed, r.pending, r.resumed, r.already);
}

static void step_schedules(struct steps *s)
{
	struct err err;
	struct billing_tenants tl = {0};
	struct billing_period period;
	struct script_limits lim = { .instructions = s->cfg->limits.instructions, .seconds = s->cfg->limits.seconds,
	                             .memory_bytes = s->cfg->limits.memory_bytes };
	struct billing_ctx ctx = {
		.limits = &lim, .dry_run = s->dry, .run_id = s->run_id,
		.sched = { .remove = s->cfg->billing.remove, .max_decrease_count = s->cfg->billing.max_decrease_count,
		           .max_decrease_percent = s->cfg->billing.max_decrease_percent },
	};
	billing_period_of(time_now(), &period);
	if (store_billing_open(s->st, &ctx.sb, &err) != 0 ||
	    !(ctx.sy = syncro_resource_new(s->cl->sc, SYNCRO_BILLING_PERMISSIONS, &err)) ||
	    billing_tenants_build(s->cfg, s->st, s->cl->sc, s->sel, NULL, &tl, &err) != 0) {
		log_redact_err(&err);
		step_done(s, "schedules", false, NULL, "FAILED: %s", err.msg);
		goto out;
	}
	size_t bad = 0, changed = 0;
	cJSON *j = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(j, "tenants");
	cJSON_AddStringToObject(j, "period", period.id);
	for (size_t i = 0; i < tl.n; i++) {
		const struct billing_tenant *t = &tl.v[i];
		struct billing_schedule_result res;
		int fatal = billing_schedule_tenant(&ctx, t, &period, &res);
		bool ok = res.status <= BILLING_SCHED_CHANGED || res.status == BILLING_SCHED_INVOICED;
		bad += !ok;
		changed += res.status == BILLING_SCHED_CHANGED;
		const char *why = res.status == BILLING_SCHED_HELD ? res.changes.reason : res.error;
		fprintf(s->out, "schedule %s: %s", t->name ? t->name : t->id, billing_sched_status_name(res.status));
		if (res.schedule_id) fprintf(s->out, " (schedule %lld '%s')", res.schedule_id, res.schedule_name);
		if (res.planned_from[0]) fprintf(s->out, " (from the licences of %s: none pulled for the month yet)",
		                                 res.planned_from);
		fprintf(s->out, ": %zu change%s, %lld applied, %lld failed%s%s\n", res.changes.n,
		        res.changes.n == 1 ? "" : "s", res.applied, res.failed, why && *why ? ": " : "", why ? why : "");
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "tenant_id", t->id);
		cJSON_AddStringToObject(o, "status", billing_sched_status_name(res.status));
		if (res.schedule_id) cJSON_AddNumberToObject(o, "schedule_id", (double)res.schedule_id);
		cJSON_AddNumberToObject(o, "changes", (double)res.changes.n);
		cJSON_AddNumberToObject(o, "applied", (double)res.applied);
		if (why && *why) cJSON_AddStringToObject(o, "error", why);
		cJSON_AddItemToArray(list, o);
		billing_schedule_result_free(&res);
		if (fatal != 0) {
			bad += tl.n - i - 1;
			break;
		}
	}
	step_done(s, "schedules", bad == 0, j, "period %s: %zu tenant%s, %zu changed, %zu not ok", period.id, tl.n,
	          tl.n == 1 ? "" : "s", changed, bad);
out:
	billing_tenants_free(&tl);
	billing_ctx_release(&ctx);
	syncro_resource_free(ctx.sy);
	store_billing_close(ctx.sb);
}

static void step_alerts(struct steps *s)
{
	struct err err;
	struct report *r = NULL;
	struct report_lua *rl = report_lua_new(s->cfg);
	struct report_hooks hooks;
	report_lua_hooks(rl, &hooks);
	const char **ids = xcalloc(s->cfg->ntenants + 1, sizeof *ids);
	size_t n = 0;
	for (size_t i = 0; i < s->cfg->ntenants; i++)
		if (s->sel[i]) ids[n++] = s->cfg->tenants[i].id;
	struct report_opts o = { .kind = REPORT_FINDINGS, .tenants = ids, .ntenants = n,
	                         .days = s->cfg->alerts.unused_days, .failing_hours = s->cfg->alerts.failing_hours };
	struct alerts_opts ao = { .dry_run = s->dry, .problem_type = s->cfg->alerts.problem_type,
	                          .subject_prefix = s->cfg->alerts.subject_prefix };
	struct alerts_result ar = {0};
	if (report_build(s->st, &o, &hooks, &r, &err) != 0 || alerts_run(s->cfg, s->st, r, &ao, s->out, &ar, &err) != 0) {
		log_redact_err(&err);
		step_done(s, "alerts", false, NULL, "FAILED: %s", err.msg);
		goto out;
	}
	cJSON *j = cJSON_CreateObject();
	const char *names[] = { "created", "updated", "unchanged", "cleared", "skipped", "failed" };
	const int vals[] = { ar.created, ar.updated, ar.unchanged, ar.cleared, ar.skipped, ar.failed };
	for (size_t i = 0; i < ARRAY_LEN(names); i++) cJSON_AddNumberToObject(j, names[i], vals[i]);
	step_done(s, "alerts", ar.failed == 0, j, "%d created, %d updated, %d unchanged, %d cleared, %d skipped, %d failed",
	          ar.created, ar.updated, ar.unchanged, ar.cleared, ar.skipped, ar.failed);
out:
	report_free(r);
	report_lua_free(rl);
	free(ids);
}

/* The history older than the retention, after a run that wrote: a line
 * only when something went (or on failure). */
static void step_retention(struct steps *s)
{
	struct err err;
	struct store_pruned p;
	struct buf said = {0};
	if (ops_retention(s->cfg, s->st, &p, &said, &err) != 0) {
		step_done(s, "retention", false, NULL, "FAILED: %s", err.msg);
	} else if (said.len) {
		cJSON *j = cJSON_CreateObject();
		const char *names[] = { "runs", "run_tenants", "intents", "audit", "score_days" };
		const long long vals[] = { p.runs, p.run_tenants, p.intents, p.audit, p.score_days };
		for (size_t i = 0; i < ARRAY_LEN(names); i++) cJSON_AddNumberToObject(j, names[i], (double)vals[i]);
		cJSON_AddBoolToObject(j, "more", p.more);
		step_done(s, "retention", true, j, "deleted %s", said.data);
	}
	buf_free(&said);
}

/* The run's HTTP counters into the store (always), then the metrics file. */
static void step_metrics(struct steps *s, const char *path)
{
	struct err err;
	struct http_service *svc[] = { s->cl->gc ? graph_client_service(s->cl->gc) : NULL,
	                               s->cl->gc ? graph_client_login_service(s->cl->gc) : NULL,
	                               s->cl->sc ? syncro_client_service(s->cl->sc) : NULL };
	const struct http_counters *more[] = { &s->pull_http->graph, &s->pull_http->login, NULL };
	for (size_t i = 0; i < ARRAY_LEN(svc); i++) {
		if (svc[i] && metrics_record_service(s->st, svc[i], more[i], &err) != 0) {
			step_done(s, "metrics", false, NULL, "FAILED: HTTP counters not recorded: %s", err.msg);
			return;
		}
	}
	if (!path) return;
	if (metrics_write_file(s->st, path, NULL, &err) != 0) {
		step_done(s, "metrics", false, NULL, "FAILED: %s", err.msg);
		return;
	}
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "file", path);
	step_done(s, "metrics", true, j, "written to %s", path);
}

/* Prints the engine report as JSON with the "steps" object added. */
static void print_json(const struct engine_report *rep, cJSON *steps)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	cJSON *doc = NULL;
	if (mem) {
		engine_report_print_json(mem, rep);
		fclose(mem);
		doc = cJSON_Parse(text);
	}
	if (!doc) {                        /* cannot happen short of memory: the report alone */
		engine_report_print_json(stdout, rep);
		free(text);
		return;
	}
	cJSON_AddItemToObject(doc, "steps", cJSON_Duplicate(steps, true));
	char *out = cJSON_Print(doc);
	printf("%s\n", out);
	free(out);
	cJSON_Delete(doc);
	free(text);
}

int cmd_sync(int argc, char **argv, const struct global_opts *g)
{
	const char *unused = NULL, *metrics_path = NULL, **ids = NULL;
	struct opt_list names = { 0 };
	size_t nids = 0;
	int dry = 0, json = 0, allow = 0, verify = 0, npos = 0, rc = EXIT_NOSTART;
	struct err err;
	double started = time_now();
	const struct opt opts[] = {
		{ "--dry-run", NULL, NULL, &dry },
		{ "--json", NULL, NULL, &json },
		{ "--allow-removals", NULL, NULL, &allow },
		{ "--verify", NULL, NULL, &verify },
		{ "--metrics", "FILE", &metrics_path, NULL },
		{ "--tenant", "ID|NAME", &unused, NULL },   /* taken out before (repeatable); here for "did you mean" */
		{ NULL, NULL, NULL, NULL },
	};
	int left = opts_take_list(argc, argv, "--tenant", "ID|NAME", &names, &err);
	if (left < 0 || opts_parse(left, argv, opts, argv, &npos, &err) != 0) {
		opt_list_free(&names);
		return usage_fail("sync", "%s", err.msg);
	}
	if (npos > 0) {
		opt_list_free(&names);
		return usage_fail("sync", "unexpected argument '%s'", argv[0]);
	}

	struct config cfg;
	struct store_lock lock = {0};
	struct store *st = NULL;
	struct clients cl = {0};
	struct engine_report rep = {0};
	struct send_watch watch = { .cl = &cl };
	cJSON *steps_js = NULL;
	bool *sel = NULL;
	memset(&cfg, 0, sizeof cfg);
	const char *path = config_locate(g->config_path);
	if (config_load(path, &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	if (store_lock_acquire(cfg.database, &lock, &err) != 0) {
		fprintf(stderr, "entrasync sync: %s\n", err.msg);
		goto out;
	}
	if (store_open(cfg.database, &st, &err) != 0 || ops_tenants_rekey(&cfg, st, &err) != 0) {
		fprintf(stderr, "entrasync sync: %s\n", err.msg);
		goto out;
	}
	/* the tenants named, by id, name, GUID or verified domain; given to the engine by their config id */
	sel = xcalloc(cfg.ntenants + 1, sizeof *sel);
	if ((rc = ops_tenants_select("sync", &cfg, st, &names, sel)) != 0) goto out;
	rc = EXIT_NOSTART;
	ids = xcalloc(cfg.ntenants + 1, sizeof *ids);
	for (size_t i = 0; names.n && i < cfg.ntenants; i++)
		if (sel[i]) ids[nids++] = cfg.tenants[i].id;
	if (clients_new(&cfg, &cl, &err) != 0) {
		log_redact_err(&err);
		fprintf(stderr, "entrasync sync: %s\n", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	kill_before = env_long("ENTRASYNC_TEST_KILL_BEFORE_SEND");
	kill_after = env_long("ENTRASYNC_TEST_KILL_AFTER_SEND");
	size_t nsel = 0;
	for (size_t i = 0; i < cfg.ntenants; i++) nsel += sel[i];
	watch.progress = progress_new("sync", (long long)nsel);
	struct engine_sync_opts o = {
		.tenants = ids, .ntenants = nids, .dry_run = dry, .allow_removals = allow, .verify = verify,
		.record_plan = true,
		.before_send = kill_before ? hook_before : NULL, .after_send = hook_after, .hook_ud = &watch,
		.on_tenant_done = tenant_done, .tenant_done_ud = &watch,
	};
	struct engine_env env = { .cfg = &cfg, .st = st, .gc = cl.gc, .sc = cl.sc };
	/* SIGTERM/SIGINT: the write in flight finishes, the next is not sent */
	shutdown_install();
	int synced = engine_sync(&env, &o, &rep, &err);
	progress_update(watch.progress, (long long)nsel, clients_requests(&cl), watch.writes);
	progress_finish(watch.progress);
	watch.progress = NULL;
	if (synced != 0) {
		log_redact_err(&err);
		fprintf(stderr, "entrasync sync: %s\n", err.msg);
		goto out;
	}
	if (verify && !dry && !rep.fatal && !rep.graph_unavailable && !shutdown_requested()) {
		/* the verify ran to its end (its tenants' own failures aside): a
		 * daemon's --verify-every counts it (SYNC_KV_VERIFIED_AT) */
		char at[32];
		time_iso8601(started, at, sizeof at);
		if (store_kv_put(st, SYNC_KV_VERIFIED_AT, at, &err) != 0) log_warn("sync", "%s", err.msg);
	}
	if (!json) engine_report_print_text(stdout, &rep);
	if (rep.graph_msg[0]) fprintf(stderr, "entrasync sync: %s\n", rep.graph_msg);
	if (rep.fatal) fprintf(stderr, "entrasync sync: %s\n", rep.fatal_msg);
	rc = engine_report_exit_code(&rep);

	steps_js = json ? cJSON_CreateObject() : NULL;
	struct steps s = { .cfg = &cfg, .st = st, .cl = &cl, .sel = sel, .pull_http = &rep.pull_http,
	                   .run_id = dry ? 0 : rep.run_id, .dry = dry,
	                   .json = json, .out = json ? stderr : stdout, .js = steps_js, .rc = EXIT_OK };
	/* after a Syncro 401, a Syncro found not answering or a stop signal nothing more is sent */
	char skip_fatal[96];
	snprintf(skip_fatal, sizeof skip_fatal, "skipped: the run stopped (%s)", rep.fatal_why);
	const char *skip = shutdown_requested() ? "skipped: stopped by a signal" : rep.fatal ? skip_fatal : NULL;
	if (cfg.actions.ticket_problem_type) {
		/* their actions are Graph calls: with Graph found not answering they
		 * wait for the next run (none of their attempts spent) */
		if (skip) step_done(&s, "tickets", false, NULL, "%s", skip);
		else if (rep.graph_unavailable)
			step_done(&s, "tickets", false, NULL, "skipped: Microsoft Graph not answering (the next run takes them)");
		else step_tickets(&s);
	}
	if (cfg.billing.schedules_on_sync) {
		if (skip) step_done(&s, "schedules", false, NULL, "%s", skip);
		else step_schedules(&s);
	}
	if (cfg.alerts.enabled) {
		if (skip) step_done(&s, "alerts", false, NULL, "%s", skip);
		else step_alerts(&s);
	}
	if (!dry) step_retention(&s);
	step_metrics(&s, metrics_path);
	if (json) print_json(&rep, steps_js);
	if (s.rc != EXIT_OK) rc = EXIT_PARTIAL;
out:
	progress_finish(watch.progress);
	cJSON_Delete(steps_js);
	engine_report_free(&rep);
	clients_free(&cl);
	store_close(st);
	store_lock_release(&lock);
	free(sel);
	free(ids);
	opt_list_free(&names);
	config_free(&cfg);
	return rc;
}
