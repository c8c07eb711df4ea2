/* cmd_bill — `entrasync bill`: licence billing through Syncro (issue 7).
 *   bill --period YYYY-MM     one invoice per tenant for the period
 *   bill --schedules          keep the tenant's recurring invoice lines in step
 *   bill --report --period P  the reconciliation (table, csv, json, html);
 *                             also `report billing ...` once cmd_report
 *                             dispatches to cmd_report_billing
 * Options shared: --tenant, --dry-run, --json.
 * Schedule settings come from the config (billing = { schedule,
 * on_removed, max_decrease = { count, percent } } and each tenant's
 * billing_schedule); --schedule and --on-removed override them for a run.
 * Exit: 0 every tenant ok, 1 some failed, held or not billable (no data, no
 * customer), 2 usage or config error, 3 could not start. */
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "billing/billing_run.h"
#include "face/cmd_ops.h"
#include "face/commands.h"
#include "util/config.h"
#include "http/http.h"
#include "util/log.h"
#include "util/shutdown.h"
#include "store/store.h"
#include "store/store_billing.h"
#include "report/metrics.h"
#include "syncro/syncro.h"
#include "syncro/syncro_billing.h"

static int on_removed_value(const char *v, int *out, struct err *err)
{
	if (v && strcmp(v, "zero") == 0) *out = 0;
	else if (v && strcmp(v, "remove") == 0) *out = 1;
	else return err_set(err, "on_removed must be \"zero\" or \"remove\", not '%s'", v ? v : "");
	return 0;
}

/* ---- options and the things a run opens */

struct bill_opts {
	const char *cmd;                   /* "bill", or "report billing" (its messages name what was typed) */
	const char *period, *schedule, *on_removed, *format, *output;
	struct opt_list names;             /* --tenant, repeatable and comma-separated */
	int schedules, report, dry_run, json, allow_decrease, open_period, reinvoice;
};

struct bill_run {
	struct config cfg;
	struct store *st;
	struct store_lock lock;
	struct http_engine *engine;
	struct syncro_client *sc;
	struct billing_ctx ctx;
	struct billing_tenants tl;         /* the tenants to bill */
	struct billing_tenant *tenants;    /* = tl.v */
	size_t n;                          /* = tl.n */
	struct billing_period period;
	struct script_limits limits;
};

static void run_free(struct bill_run *r)
{
	/* its Syncro requests, for the metrics (a failure to record them is only logged) */
	struct err err;
	if (r->sc && r->st && metrics_record_service(r->st, syncro_client_service(r->sc), NULL, &err) != 0)
		log_warn("bill", "the HTTP counters were not recorded for the metrics: %s", err.msg);
	billing_ctx_release(&r->ctx);
	syncro_resource_free(r->ctx.sy);
	store_billing_close(r->ctx.sb);
	http_engine_free(r->engine);
	syncro_client_free(r->sc);
	store_close(r->st);
	store_lock_release(&r->lock);
	billing_tenants_free(&r->tl);
	config_free(&r->cfg);
}

/* The tenants to bill (billing_tenants_build): those named by --tenant
 * (all without), with --schedule over the config's schedules. */
static int select_tenants(struct bill_run *r, const struct bill_opts *o, int *code)
{
	struct err err;
	bool *sel = xcalloc(r->cfg.ntenants + 1, sizeof *sel);
	int rc = -1;
	if ((*code = ops_tenants_select(o->cmd, &r->cfg, r->st, &o->names, sel)) != 0) goto out;
	if (billing_tenants_build(&r->cfg, r->st, r->sc, sel, o->schedule, &r->tl, &err) != 0) {
		*code = usage_fail(o->cmd, "%s", err.msg);
		goto out;
	}
	r->tenants = r->tl.v;
	r->n = r->tl.n;
	rc = 0;
out:
	free(sel);
	return rc;
}

/* Opens what the mode needs: store (+ lock when writing), Syncro. */
static int open_run(struct bill_run *r, const struct bill_opts *o, const struct global_opts *g, int *code)
{
	struct err err;
	*code = EXIT_USAGE;
	if (config_load(config_locate(g->config_path), &r->cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	/* the run lock even when nothing is written (a dry run, the report):
	 * Syncro's 180 requests a minute are per IP, and a sync going on
	 * paces itself to use them all */
	*code = EXIT_NOSTART;
	/* the report only reads what pulls and runs stored: without a
	 * database there is nothing to report, and none is made (as `report`
	 * does) */
	if (o->report && access(r->cfg.database, F_OK) != 0) {
		fprintf(stderr, "entrasync %s: no database at %s yet: run 'entrasync pull' first\n", o->cmd,
		        r->cfg.database);
		return -1;
	}
	if (store_lock_acquire(r->cfg.database, &r->lock, &err) != 0 ||
	    store_open(r->cfg.database, &r->st, &err) != 0 || store_billing_open(r->st, &r->ctx.sb, &err) != 0) {
		fprintf(stderr, "entrasync %s: %s\n", o->cmd, err.msg);
		return -1;
	}
	struct syncro_opts so;
	syncro_opts_from_config(&r->cfg.syncro, &so);
	if (!(r->engine = http_engine_new(NULL, &err)) || !(r->sc = syncro_client_new(r->engine, &so, &err)) ||
	    !(r->ctx.sy = syncro_resource_new(r->sc, SYNCRO_BILLING_PERMISSIONS, &err))) {
		fprintf(stderr, "entrasync %s: %s\n", o->cmd, err.msg);
		*code = EXIT_USAGE;
		return -1;
	}
	if (select_tenants(r, o, code) != 0) return -1;
	r->limits = (struct script_limits){ .instructions = r->cfg.limits.instructions, .seconds = r->cfg.limits.seconds,
	                                    .memory_bytes = r->cfg.limits.memory_bytes };
	r->ctx.limits = &r->limits;
	r->ctx.dry_run = o->dry_run;
	r->ctx.reinvoice = o->reinvoice;
	r->ctx.sched = (struct billing_sched_opts){
		.remove = o->on_removed ? strcmp(o->on_removed, "remove") == 0 : r->cfg.billing.remove,
		.max_decrease_count = r->cfg.billing.max_decrease_count,
		.max_decrease_percent = r->cfg.billing.max_decrease_percent,
		.allow_decrease = o->allow_decrease,
	};
	*code = EXIT_OK;
	return 0;
}

/* ---- output */

static const char *label_of(const struct billing_tenant *t)
{
	return t->name ? t->name : t->id;
}

static void print_lines(const struct billing_plan *p)
{
	char m1[32], m2[32];
	for (size_t i = 0; i < p->nlines; i++) {
		const struct billing_line *l = &p->lines[i];
		if (l->quantity <= 0) continue;
		if (l->has_price)
			printf("    %5lld x %s @ %s = %s%s   [%s]\n", l->quantity, billing_line_label(l),
			       billing_money(l->unit_cents, m1), billing_money(l->unit_cents * l->quantity, m2),
			       l->price_from_catalog ? " (catalog price)" : "", l->skus);
		else
			printf("    %5lld x %s @ catalog price   [%s]\n", l->quantity, billing_line_label(l), l->skus);
	}
	bool complete;
	long long total = billing_plan_total(p, &complete);
	printf("    total %s%s\n", billing_money(total, m1), complete ? "" : " + lines at catalog prices");
}

static void print_unbilled(const struct billing_plan *p)
{
	for (size_t i = 0; i < p->nskus; i++) {
		const struct billing_plan_sku *s = &p->skus[i];
		if (s->status != BILLING_SKU_UNBILLED) continue;
		printf("  UNBILLED: %s (%s): %lld assigned (peak %lld), %lld purchased: bill() gives no price\n",
		       s->part ? s->part : s->sku_id, s->name, s->assigned, s->peak_assigned, s->purchased);
	}
}

static void print_drift(const struct billing_drifts *d)
{
	char m1[32], m2[32];
	for (size_t i = 0; i < d->n; i++) {
		const struct billing_drift *x = &d->v[i];
		printf("  DRIFT: %s: ", x->label);
		if (x->old_qty < 0) printf("not invoiced, now %lld", x->new_qty);
		else if (x->new_qty < 0) printf("invoiced %lld, now not billed", x->old_qty);
		else printf("invoiced %lld, now %lld", x->old_qty, x->new_qty);
		if (x->old_cents >= 0 && x->new_cents >= 0 && x->old_cents != x->new_cents)
			printf(" (unit price %s, now %s)", billing_money(x->old_cents, m1), billing_money(x->new_cents, m2));
		printf("\n");
	}
}

static void print_invoice(const struct billing_tenant *t, const struct billing_invoice_result *res, const char *period)
{
	const char *who = label_of(t);
	switch (res->status) {
	case BILLING_INV_DRAFT:
		if (res->recovering && res->invoice_id)
			printf("%s: an interrupted invoice %lld for %s would be completed (dry run: nothing sent)\n", who,
			       res->invoice_id, period);
		else if (res->recovering)   /* its creation had no clear answer: the real run looks for it first */
			printf("%s: an interrupted invoice for %s would be looked for in Syncro (by its reference) and made or "
			       "completed (dry run: nothing sent)\n", who, period);
		else if (res->replaces)
			printf("%s: DRAFT invoice for customer %lld, %s, instead of invoice %lld, deleted in Syncro (dry run: "
			       "nothing sent)\n", who, t->customer_id, period, res->replaces);
		else
			printf("%s: DRAFT invoice for customer %lld, %s (dry run: nothing sent)\n", who, t->customer_id, period);
		print_lines(&res->plan);
		break;
	case BILLING_INV_CREATED:
	case BILLING_INV_RECOVERED:
		printf("%s: invoice %lld #%s %s for %s: %lld line%s added%s", who, res->invoice_id, res->number,
		       res->status == BILLING_INV_CREATED ? "created" : "completed (interrupted before)", period,
		       res->lines_added, res->lines_added == 1 ? "" : "s",
		       res->lines_found ? " (others were already there)" : "");
		if (res->replaces) printf("; instead of invoice %lld, deleted in Syncro", res->replaces);
		printf("\n");
		print_lines(&res->plan);
		break;
	case BILLING_INV_EXISTS:
		printf("%s: already invoiced for %s: invoice %lld #%s; nothing sent%s\n", who, period, res->invoice_id,
		       res->number, res->drift.n ? "; counts changed since:" : res->have_now ? "; no drift" : "");
		if (res->error[0]) printf("  WARNING: %s\n", res->error);
		break;
	case BILLING_INV_NOTHING:
		printf("%s: nothing to bill for %s\n", who, period);
		break;
	case BILLING_INV_SCHEDULED:
		printf("%s: %s\n", who, res->error);
		break;
	default:
		printf("%s: %s: %s\n", who, res->status == BILLING_INV_FAILED ? "FAILED" : res->status == BILLING_INV_PENDING
		       ? "PENDING" : billing_invoice_status_name(res->status), res->error);
		break;
	}
	print_drift(&res->drift);
	print_unbilled(&res->plan);
}

static cJSON *drift_json(const struct billing_drifts *d)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < d->n; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "line", d->v[i].key);
		cJSON_AddStringToObject(o, "label", d->v[i].label);
		if (d->v[i].old_qty >= 0) cJSON_AddNumberToObject(o, "invoiced_quantity", (double)d->v[i].old_qty);
		if (d->v[i].new_qty >= 0) cJSON_AddNumberToObject(o, "quantity_now", (double)d->v[i].new_qty);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

/* The JSON of one tenant's outcome (invoice or schedule). */
static cJSON *tenant_json(const struct billing_tenant *t, const char *status, const char *error,
                          const struct billing_plan *plan)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "tenant_id", t->id);
	if (t->name) cJSON_AddStringToObject(o, "name", t->name);
	if (t->customer_id) cJSON_AddNumberToObject(o, "customer_id", (double)t->customer_id);
	cJSON_AddStringToObject(o, "status", status);
	if (error && *error) cJSON_AddStringToObject(o, "error", error);
	cJSON *p = billing_plan_to_cjson(plan);
	cJSON *unbilled = cJSON_AddArrayToObject(o, "unbilled");
	for (size_t i = 0; i < plan->nskus; i++)
		if (plan->skus[i].status == BILLING_SKU_UNBILLED)
			cJSON_AddItemToArray(unbilled, cJSON_CreateString(plan->skus[i].part ? plan->skus[i].part
			                                                                      : plan->skus[i].sku_id));
	cJSON_AddItemToObject(o, "plan", p);
	return o;
}

/* A quantity held in hundredths as plain digits: "1000000", "4.5",
 * "0.25" (never an exponent), into buf[32]. */
static const char *quantity_text(long long centi, char buf[32])
{
	long long a = centi < 0 ? -centi : centi;
	const char *sign = centi < 0 ? "-" : "";
	if (a % 100 == 0) snprintf(buf, 32, "%s%lld", sign, a / 100);
	else if (a % 10 == 0) snprintf(buf, 32, "%s%lld.%lld", sign, a / 100, a % 100 / 10);
	else snprintf(buf, 32, "%s%lld.%02lld", sign, a / 100, a % 100);
	return buf;
}

static void print_change(const struct billing_change *ch)
{
	char m1[32], m2[32], q1[32], q2[32];
	printf("    %s%s %s: ", ch->held ? "HELD " : "", billing_change_kind_name(ch->kind), ch->label);
	if (ch->kind == BILLING_ADD)
		printf("quantity %s at %s", quantity_text(ch->new_qty_centi, q2),
		       ch->set_price ? billing_money(ch->new_cents, m2) : "the catalog price");
	else
		printf("quantity %s -> %s", quantity_text(ch->old_qty_centi, q1), quantity_text(ch->new_qty_centi, q2));
	if (ch->kind != BILLING_ADD && ch->set_price)
		printf(", unit price %s -> %s", billing_money(ch->old_cents, m1), billing_money(ch->new_cents, m2));
	if (ch->error) printf("   FAILED: %s", ch->error);
	printf("\n");
}

static void print_schedule(const struct billing_tenant *t, const struct billing_schedule_result *res, bool dry)
{
	const char *who = label_of(t);
	if (res->status >= BILLING_SCHED_NO_DATA && !res->schedule_id) {
		printf("%s: %s: %s\n", who, res->status == BILLING_SCHED_FAILED ? "FAILED"
		       : billing_sched_status_name(res->status), res->error);
		print_unbilled(&res->plan);
		return;
	}
	printf("%s: schedule %lld '%s': %zu change%s%s, %lld line%s already right%s\n", who, res->schedule_id,
	       res->schedule_name, res->changes.n, res->changes.n == 1 ? "" : "s",
	       dry ? " (dry run: nothing sent)" : "", res->changes.unchanged, res->changes.unchanged == 1 ? "" : "s",
	       res->recovered ? "; writes of an interrupted run settled" : "");
	if (res->planned_from[0])
		printf("  from the licences of %s: none pulled for the month yet (its first day; entrasync pull brings "
		       "them)\n", res->planned_from);
	for (size_t i = 0; i < res->changes.n; i++) print_change(&res->changes.v[i]);
	if (res->changes.held) printf("  HELD: %s\n", res->changes.reason);
	for (size_t i = 0; i < res->changes.nduplicates; i++) printf("  WARNING: %s\n", res->changes.duplicates[i]);
	for (size_t i = 0; i < res->nleft; i++) {
		const struct billing_left_schedule *l = &res->left[i];
		printf("  %sschedule %lld%s%s%s: %s\n", l->failed ? "FAILED: " : "", l->id, l->name[0] ? " '" : "", l->name,
		       l->name[0] ? "'" : "", l->note);
		for (size_t j = 0; j < l->changes.n; j++) print_change(&l->changes.v[j]);
	}
	if (res->status == BILLING_SCHED_FAILED && res->error[0]) printf("  FAILED: %s\n", res->error);
	print_unbilled(&res->plan);
}

static cJSON *changes_json(const struct billing_changes *c)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; i < c->n; i++) {
		const struct billing_change *ch = &c->v[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "change", billing_change_kind_name(ch->kind));
		cJSON_AddStringToObject(o, "line", ch->key);
		cJSON_AddStringToObject(o, "label", ch->label);
		if (ch->line_id) cJSON_AddNumberToObject(o, "line_id", (double)ch->line_id);
		cJSON_AddNumberToObject(o, "old_quantity", (double)ch->old_qty_centi / 100.0);
		cJSON_AddNumberToObject(o, "new_quantity", (double)ch->new_qty_centi / 100.0);
		if (ch->set_price) cJSON_AddNumberToObject(o, "unit_cents", (double)ch->new_cents);
		cJSON_AddBoolToObject(o, "held", ch->held);
		cJSON_AddBoolToObject(o, "applied", ch->applied);
		if (ch->error) cJSON_AddStringToObject(o, "error", ch->error);
		cJSON_AddItemToArray(a, o);
	}
	return a;
}

/* ---- the modes */

/* Whether a stop was asked for (SIGTERM, SIGINT) before tenant i: said
 * once; the tenants left are billed by the next run. */
static bool stopped(struct bill_run *r, size_t i)
{
	if (!shutdown_requested()) return false;
	fprintf(stderr, "entrasync %s: stopped by a signal: %zu tenant%s left for the next run\n", "bill", r->n - i,
	        r->n - i == 1 ? "" : "s");
	return true;
}

/* Records a tenant's outcome in the run (not in a dry run). */
static void record_tenant(struct bill_run *r, const struct billing_tenant *t, bool ok, bool held, const char *why)
{
	struct err e;
	if (!r->ctx.run_id) return;
	if (store_run_tenant_put(r->st, r->ctx.run_id, t->id, ok ? "ok" : held ? "held" : "failed", NULL,
	                         why && *why ? why : NULL, &e) != 0)
		log_error("bill", "%s", e.msg);
}

static int run_invoices(struct bill_run *r, cJSON *out)
{
	size_t bad = 0;
	cJSON *list = out ? cJSON_AddArrayToObject(out, "tenants") : NULL;
	for (size_t i = 0; i < r->n && !stopped(r, i); i++) {
		const struct billing_tenant *t = &r->tenants[i];
		struct billing_invoice_result res;
		int rc = billing_invoice_tenant(&r->ctx, t, &r->period, &res);
		bool scheduled = res.status == BILLING_INV_SCHEDULED;   /* its recurring invoice bills it: error says so */
		/* invoiced, but bill() fails now: bad */
		bool ok = scheduled || (res.status <= BILLING_INV_NOTHING && !res.error[0]);
		bad += !ok;
		record_tenant(r, t, ok, false, res.error);
		if (list) {
			cJSON *j = tenant_json(t, billing_invoice_status_name(res.status), scheduled ? NULL : res.error, &res.plan);
			if (scheduled) cJSON_AddStringToObject(j, "note", res.error);
			if (res.invoice_id) cJSON_AddNumberToObject(j, "invoice_id", (double)res.invoice_id);
			if (res.number[0]) cJSON_AddStringToObject(j, "number", res.number);
			if (res.replaces) cJSON_AddNumberToObject(j, "replaces_invoice_id", (double)res.replaces);
			cJSON_AddItemToObject(j, "drift", drift_json(&res.drift));
			cJSON_AddItemToArray(list, j);
		} else {
			print_invoice(t, &res, r->period.id);
		}
		billing_invoice_result_free(&res);
		if (rc != 0) {
			fprintf(stderr, "entrasync bill: stopping: the run cannot go on\n");
			return EXIT_PARTIAL;
		}
	}
	return bad || shutdown_requested() ? EXIT_PARTIAL : EXIT_OK;
}

static int run_schedules(struct bill_run *r, const struct bill_opts *o, cJSON *out)
{
	size_t bad = 0;
	cJSON *list = out ? cJSON_AddArrayToObject(out, "tenants") : NULL;
	for (size_t i = 0; i < r->n && !stopped(r, i); i++) {
		const struct billing_tenant *t = &r->tenants[i];
		struct billing_schedule_result res;
		int rc = billing_schedule_tenant(&r->ctx, t, &r->period, &res);
		bool ok = res.status <= BILLING_SCHED_CHANGED || res.status == BILLING_SCHED_INVOICED;
		bad += !ok;
		record_tenant(r, t, ok, res.status == BILLING_SCHED_HELD,
		              res.status == BILLING_SCHED_HELD ? res.changes.reason : res.error);
		if (list) {
			cJSON *j = tenant_json(t, billing_sched_status_name(res.status), res.error, &res.plan);
			if (res.schedule_id) cJSON_AddNumberToObject(j, "schedule_id", (double)res.schedule_id);
			if (res.planned_from[0]) cJSON_AddStringToObject(j, "planned_from", res.planned_from);
			cJSON_AddItemToObject(j, "changes", changes_json(&res.changes));
			cJSON *left = cJSON_AddArrayToObject(j, "left_schedules");
			for (size_t k = 0; k < res.nleft; k++) {
				cJSON *lo = cJSON_CreateObject();
				cJSON_AddNumberToObject(lo, "schedule_id", (double)res.left[k].id);
				cJSON_AddBoolToObject(lo, "failed", res.left[k].failed);
				cJSON_AddStringToObject(lo, "note", res.left[k].note);
				cJSON_AddItemToObject(lo, "changes", changes_json(&res.left[k].changes));
				cJSON_AddItemToArray(left, lo);
			}
			if (res.changes.held) cJSON_AddStringToObject(j, "held", res.changes.reason);
			cJSON_AddItemToArray(list, j);
		} else {
			print_schedule(t, &res, o->dry_run);
		}
		billing_schedule_result_free(&res);
		if (rc != 0) {
			fprintf(stderr, "entrasync bill: stopping: the run cannot go on\n");
			return EXIT_PARTIAL;
		}
	}
	return bad || shutdown_requested() ? EXIT_PARTIAL : EXIT_OK;
}

static int run_report(struct bill_run *r, const struct bill_opts *o)
{
	struct billing_report rep;
	struct err err;
	if (billing_report_build(&r->ctx, r->tenants, r->n, &r->period, &rep, &err) != 0) {
		fprintf(stderr, "entrasync %s: %s\n", o->cmd, err.msg);
		return EXIT_PARTIAL;
	}
	FILE *f = stdout;
	if (o->output && !(f = fopen(o->output, "w"))) {
		billing_report_free(&rep);
		return usage_fail(o->cmd, "cannot write %s", o->output);
	}
	int rc = billing_report_write(f, &rep, o->json ? "json" : o->format, &err);
	if (f != stdout && fclose(f) != 0) rc = err_set(&err, "cannot write %s", o->output);
	size_t failures = rep.failures;
	billing_report_free(&rep);
	if (rc != 0) return usage_fail(o->cmd, "%s", err.msg);
	if (o->output) fprintf(stderr, "entrasync %s: billing report written to %s\n", o->cmd, o->output);
	return failures ? EXIT_PARTIAL : EXIT_OK;   /* a tenant not reconciled: said in the problems */
}

/* Checks the mode and the period against the options. */
static int check_opts(struct bill_opts *o, struct billing_period *p, struct err *err)
{
	if (!o->period && !o->schedules && !o->report) return err_set(err, "say what to do: --period YYYY-MM, --schedules or --report --period YYYY-MM");
	if (o->schedules && o->report) return err_set(err, "--schedules and --report do not go together");
	if (o->report && !o->period)
		return err_set(err, strcmp(o->cmd, "bill") == 0 ? "--report needs --period YYYY-MM"
		                                                : "give the month: --period YYYY-MM");
	if (o->report && o->dry_run) return err_set(err, "--report writes nothing anyway: drop --dry-run");
	if (o->format && !o->report) return err_set(err, "--format is for --report");
	if ((o->schedule || o->on_removed || o->allow_decrease) && !o->schedules)
		return err_set(err, "--schedule, --on-removed and --allow-decrease are for --schedules");
	if (o->reinvoice && (o->schedules || o->report))
		return err_set(err, "--reinvoice is for invoices: bill --period YYYY-MM --tenant ID --reinvoice");
	if (o->open_period && (o->schedules || o->report))
		return err_set(err, "--open-period is for invoicing the month still going (bill --period YYYY-MM "
		               "--open-period): drop it");
	int dummy;
	if (o->on_removed && on_removed_value(o->on_removed, &dummy, err) != 0) return -1;
	if (o->period) {
		if (billing_period_parse(o->period, p, err) != 0) return -1;
	} else {
		billing_period_of(time_now(), p);
	}
	int when = billing_period_vs(p, time_now());
	if (when > 0) return err_set(err, "period %s has not begun", p->id);
	if (when < 0 && o->open_period)
		return err_set(err, "period %s has ended: --open-period is for the month still going; drop it", p->id);
	if (when == 0 && o->period && !o->schedules && !o->report && !o->open_period)
		return err_set(err, "period %s has not ended: an invoice now would bill part of the month, and a tenant is "
		               "invoiced once per period (--open-period to do it anyway)", p->id);
	return 0;
}

static int bill_main(int argc, char **argv, const struct global_opts *g, const char *cmd);

int cmd_report_billing(int argc, char **argv, const struct global_opts *g)
{
	char **args = xcalloc((size_t)argc + 2, sizeof *args);
	static char report[] = "--report";
	args[0] = report;
	for (int i = 0; i < argc; i++) args[i + 1] = argv[i];
	int rc = bill_main(argc + 1, args, g, "report billing");
	free(args);
	return rc;
}

int cmd_bill(int argc, char **argv, const struct global_opts *g)
{
	return bill_main(argc, argv, g, "bill");
}

static int bill_main(int argc, char **argv, const struct global_opts *g, const char *cmd)
{
	struct bill_opts o = { .cmd = cmd };
	const char *unused = NULL;
	const struct opt opts[] = {
		{ "--period", "YYYY-MM", &o.period, NULL },
		{ "--schedules", NULL, NULL, &o.schedules },
		{ "--report", NULL, NULL, &o.report },
		{ "--tenant", "ID", &unused, NULL },   /* taken out before (repeatable); here for "did you mean" */
		{ "--dry-run", NULL, NULL, &o.dry_run },
		{ "--json", NULL, NULL, &o.json },
		{ "--schedule", "NAME|ID", &o.schedule, NULL },
		{ "--on-removed", "zero|remove", &o.on_removed, NULL },
		{ "--allow-decrease", NULL, NULL, &o.allow_decrease },
		{ "--open-period", NULL, NULL, &o.open_period },
		{ "--reinvoice", NULL, NULL, &o.reinvoice },
		{ "--format", "FORMAT", &o.format, NULL },
		{ "--out", "FILE", &o.output, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	struct err err;
	int npos, code;
	struct bill_run r;
	memset(&r, 0, sizeof r);
	int left = opts_take_list(argc, argv, "--tenant", "ID", &o.names, &err);
	if (left < 0 || opts_parse(left, argv, opts, argv, &npos, &err) != 0 || check_opts(&o, &r.period, &err) != 0) {
		opt_list_free(&o.names);
		return usage_fail(o.cmd, "%s", err.msg);
	}
	if (npos > 0) {
		opt_list_free(&o.names);
		return usage_fail(o.cmd, "unexpected argument '%s'", argv[0]);
	}
	int opened = open_run(&r, &o, g, &code);
	opt_list_free(&o.names);             /* the tenants are in r */
	if (opened != 0) {
		run_free(&r);
		return code;
	}
	if (o.report) {
		code = run_report(&r, &o);
		run_free(&r);
		return code;
	}
	/* SIGTERM / SIGINT: the tenant in hand is finished (its invoice whole),
	 * the others are left for the next run; a second signal kills */
	shutdown_install();
	if (!o.dry_run && store_run_begin(r.st, o.schedules ? "bill-schedules" : "bill", &r.ctx.run_id, &err) != 0) {
		fprintf(stderr, "entrasync bill: %s\n", err.msg);
		run_free(&r);
		return EXIT_NOSTART;
	}
	cJSON *out = NULL;
	if (o.json) {
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "mode", o.schedules ? "schedules" : "invoices");
		cJSON_AddStringToObject(out, "period", r.period.id);
		cJSON_AddBoolToObject(out, "dry_run", o.dry_run);
	}
	code = o.schedules ? run_schedules(&r, &o, out) : run_invoices(&r, out);
	if (out) {
		char *s = cJSON_Print(out);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(out);
	}
	if (r.ctx.run_id) {
		char *summary = xasprintf("{\"tenants\":%zu,\"period\":\"%s\",\"syncro_requests\":%lld}", r.n, r.period.id,
		                          syncro_resource_requests(r.ctx.sy));
		if (store_run_finish(r.st, r.ctx.run_id, code == EXIT_OK ? "ok" : "partial", summary, &err) != 0)
			log_error("bill", "%s", err.msg);
		free(summary);
	}
	run_free(&r);
	return code;
}
