/* billing_invoice — one Syncro invoice per tenant and period, written
 * through intents so that a crash anywhere is completed by the next run
 * without a second invoice (the state machine is in billing_run.h). */
#include "billing/billing_internal.h"

#include <cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include "util/log.h"

#define FIND_SLACK_SECONDS 600     /* clock skew allowed between us and Syncro when looking an invoice up */

const char *billing_invoice_status_name(enum billing_invoice_status s)
{
	static const char *const names[] = { "draft", "created", "recovered", "exists", "nothing", "scheduled",
	                                     "no_data", "unmapped", "pending", "failed" };
	return (size_t)s < ARRAY_LEN(names) ? names[s] : "?";
}

void billing_invoice_result_free(struct billing_invoice_result *r)
{
	if (!r) return;
	billing_plan_free(&r->plan);
	billing_drifts_free(&r->drift);
	memset(r, 0, sizeof *r);
}

__attribute__((format(printf, 3, 4)))
static void set_error(struct billing_invoice_result *out, enum billing_invoice_status st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof out->error, fmt, ap);
	va_end(ap);
	out->status = st;
}

/* A failure of the store (or of Syncro's token): the run must stop. */
static int fatal(struct billing_invoice_result *out, const struct err *e)
{
	out->fatal = true;
	set_error(out, BILLING_INV_FAILED, "%s", e->msg);
	return -1;
}

/* A fresh marker "ES-<16 hex digits>", put in the invoice's note. */
static void new_marker(char out[32])
{
	unsigned char r[8];
	if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
		unsigned long long x = (unsigned long long)time_now() * 1000003ULL ^ (unsigned long long)getpid();
		memcpy(r, &x, sizeof r);
	}
	snprintf(out, 32, "ES-%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
}

/* ISO-8601 time `seconds` before iso (into buf[32]); iso itself when it
 * does not parse. */
static const char *iso_before(const char *iso, double seconds, char buf[32])
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *end = iso ? strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end) {
		snprintf(buf, 32, "%s", iso ? iso : "1970-01-01T00:00:00Z");
		return buf;
	}
	time_iso8601((double)timegm(&tm) - seconds, buf, 32);
	return buf;
}

/* The key of a line on a Syncro invoice, comparable to plan line keys. */
static char *invoice_line_key(const struct syncro_invoice_line *li)
{
	return billing_line_key(li->product_id, li->item);
}

/* The line of inv with key, or NULL. */
static const struct syncro_invoice_line *invoice_line_find(const struct syncro_invoice *inv, const char *key)
{
	for (size_t i = 0; i < inv->nlines; i++) {
		char *k = invoice_line_key(&inv->lines[i]);
		bool eq = strcmp(k, key) == 0;
		free(k);
		if (eq) return &inv->lines[i];
	}
	return NULL;
}

/* What is POSTed for plan line l: the product (catalog name, description
 * and price unless the policy set them), or a named line with its price;
 * a named line's description says what it bills. */
static void line_request(const struct billing_line *l, const struct billing_period *p, char *desc, size_t cap,
                         struct syncro_line_new *out)
{
	snprintf(desc, cap, "Microsoft licences %s: %s", p->id, l->skus ? l->skus : "");
	*out = (struct syncro_line_new){
		.product_id = l->product_id, .item = l->name, .description = l->product_id ? NULL : desc,
		.quantity = l->quantity, .set_price = l->has_price && !l->price_from_catalog, .price_cents = l->unit_cents,
		.taxable = l->taxable,
	};
}

/* The invoice's audit JSON: period, id, number, lines and total. */
static char *invoice_audit_json(const struct billing_plan *plan, long long invoice_id, const char *number)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "period", plan->period.id);
	if (invoice_id) cJSON_AddNumberToObject(o, "invoice_id", (double)invoice_id);
	if (number && *number) cJSON_AddStringToObject(o, "number", number);
	cJSON *lines = cJSON_AddArrayToObject(o, "lines");
	for (size_t i = 0; i < plan->nlines; i++) {
		const struct billing_line *l = &plan->lines[i];
		if (l->quantity <= 0) continue;
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "line", billing_line_label(l));
		cJSON_AddNumberToObject(j, "quantity", (double)l->quantity);
		if (l->has_price) cJSON_AddNumberToObject(j, "unit_cents", (double)l->unit_cents);
		cJSON_AddStringToObject(j, "skus", l->skus ? l->skus : "");
		cJSON_AddItemToArray(lines, j);
	}
	cJSON_AddNumberToObject(o, "total_cents", (double)billing_plan_total(plan, NULL));
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

/* Marks the invoice row done, with its audit row, in one transaction. */
static int record_done(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_invoice_result *out,
                       struct err *err)
{
	char *after = invoice_audit_json(&out->plan, out->invoice_id, out->number);
	char object[48];
	snprintf(object, sizeof object, "invoice:%lld", out->invoice_id);
	struct store_audit a = { .run_id = c->run_id, .tenant_id = t->id, .object_id = object, .action = "bill.invoice",
	                         .after = after, .actor = "entrasync", .result = "ok" };
	int rc = -1;
	if (store_billing_begin(c->sb, err) != 0) goto out;
	if (store_billing_invoice_update(c->sb, t->id, out->plan.period.id, "done", out->invoice_id, out->number, NULL,
	                                 err) != 0 ||
	    store_billing_audit(c->sb, &a, err) != 0 || store_billing_commit(c->sb, err) != 0) {
		store_billing_rollback(c->sb);
		goto out;
	}
	rc = 0;
out:
	free(after);
	return rc;
}

/* ---- line intents left open by an interrupted run */

struct open_line {
	long long id;
	char *key;
};
struct open_lines {
	const char *period;
	struct open_line *v;
	size_t n;
};

static int collect_open_line(const struct store_billing_intent *in, void *ud)
{
	struct open_lines *ol = ud;
	if (!in->period || strcmp(in->period, ol->period) != 0 || strcmp(in->action, "invoice.line") != 0) return 0;
	ol->v = xrealloc(ol->v, (ol->n + 1) * sizeof *ol->v);
	ol->v[ol->n++] = (struct open_line){ in->id, xstrdup(in->target ? in->target : "") };
	return 0;
}

/* Closes the period's open line intents against the invoice as it is:
 * a line there → done (its id), else failed with why (NULL: not applied,
 * added again). inv NULL: the invoice is gone, every one failed. */
static int settle_open_lines(struct billing_ctx *c, const struct billing_tenant *t, const char *period,
                             const struct syncro_invoice *inv, const char *why, struct err *err)
{
	struct open_lines ol = { .period = period };
	int rc = store_billing_intent_each_open(c->sb, t->id, collect_open_line, &ol, err);
	for (size_t i = 0; i < ol.n; i++) {
		const struct syncro_invoice_line *li = rc == 0 && inv ? invoice_line_find(inv, ol.v[i].key) : NULL;
		if (rc == 0)
			rc = store_billing_intent_finish(c->sb, ol.v[i].id, li ? "done" : "failed", li ? li->id : 0,
			                                 li ? NULL : why ? why : "not applied (settled by a later run)", err);
		free(ol.v[i].key);
	}
	free(ol.v);
	return rc;
}

/* ---- the lines */

/* Adds the plan's lines that inv lacks (inv NULL: a new, empty invoice),
 * each through the write path. Returns 0 when every line is there, 1
 * when some are not (out says why), -1 on a store failure (out->fatal). */
/* The audit row of one line sent to an invoice: its request, ok or why it
 * failed (a failure to record it is logged: the line's intent row has it). */
static void line_audit(struct billing_ctx *c, const struct billing_tenant *t, long long invoice_id, const char *body,
                       const char *failed)
{
	char object[48];
	snprintf(object, sizeof object, "invoice:%lld", invoice_id);
	char *result = failed ? xasprintf("failed: %s", failed) : NULL;
	struct store_audit a = { .run_id = c->run_id, .tenant_id = t->id, .object_id = object,
	                         .action = "bill.invoice.line", .after = body, .actor = "entrasync",
	                         .result = result ? result : "ok" };
	struct err e;
	if (store_billing_audit(c->sb, &a, &e) != 0) log_warn("bill", "invoice %lld: audit: %s", invoice_id, e.msg);
	free(result);
}

static int add_lines(struct billing_ctx *c, const struct billing_tenant *t, const struct syncro_invoice *inv,
                     struct billing_invoice_result *out)
{
	const struct billing_plan *plan = &out->plan;
	int missing = 0;
	for (size_t i = 0; i < plan->nlines; i++) {
		const struct billing_line *l = &plan->lines[i];
		if (l->quantity <= 0) continue;
		if (inv && invoice_line_find(inv, l->key)) {
			out->lines_found++;
			continue;
		}
		char desc[256];
		struct syncro_line_new req;
		line_request(l, &plan->period, desc, sizeof desc, &req);
		char *body = syncro_line_body(&req, false);
		struct billing_write w = { .tenant_id = t->id, .period = plan->period.id, .action = "invoice.line",
		                           .target = l->key, .payload = body };
		struct err e = {{0}}, se = {{0}};
		struct syncro_invoice_line got = {0};
		int rc = billing_write_begin(c, &w, &se);
		enum syncro_result r = SYNCRO_FAILED;
		if (rc == 0) {
			r = syncro_invoice_line_add(c->sy, out->invoice_id, &req, &got, &e);
			billing_write_sent(c, &w);
		}
		long long line_id = got.id;
		if (rc == 0 && r == SYNCRO_UNKNOWN_OUTCOME) {
			/* Was it applied? The invoice says. */
			struct syncro_invoice now;
			struct err ge = {{0}};
			if (syncro_invoice_get(c->sy, out->invoice_id, &now, &ge) == SYNCRO_OK) {
				const struct syncro_invoice_line *li = invoice_line_find(&now, l->key);
				if (li) {
					r = SYNCRO_OK;
					line_id = li->id;
				} else {
					r = SYNCRO_FAILED;   /* not applied: the next run adds it */
				}
			}
			syncro_invoice_free(&now);
		}
		if (rc == 0 && r == SYNCRO_OK)
			rc = billing_write_finish(c, &w, "done", line_id, NULL, NULL, NULL, NULL, &se);
		else if (rc == 0 && r != SYNCRO_UNKNOWN_OUTCOME)
			rc = billing_write_finish(c, &w, "failed", 0, e.msg, NULL, NULL, NULL, &se);
		if (rc == 0 && r != SYNCRO_UNKNOWN_OUTCOME) line_audit(c, t, out->invoice_id, body, r == SYNCRO_OK ? NULL : e.msg);
		free(got.item);
		free(got.name);
		free(body);
		if (rc != 0) return fatal(out, &se);
		if (r == SYNCRO_OK) {
			out->lines_added++;
			continue;
		}
		missing++;
		if (r == SYNCRO_UNKNOWN_OUTCOME)
			set_error(out, BILLING_INV_PENDING, "invoice %lld: line %s: %s; settled on the next run",
			          out->invoice_id, billing_line_label(l), e.msg);
		else
			set_error(out, BILLING_INV_FAILED, "invoice %lld: line %s: %s%s", out->invoice_id,
			          billing_line_label(l), e.msg[0] ? e.msg : "not applied", "; the next run adds it");
		if (r == SYNCRO_UNAUTHORIZED) {
			out->fatal = true;
			return -1;
		}
	}
	return missing ? 1 : 0;
}

/* Adds the lines inv lacks (NULL: a new invoice), then marks the invoice
 * done with ok_status; lines still missing leave it for the next run. */
static int finish_lines(struct billing_ctx *c, const struct billing_tenant *t, const struct syncro_invoice *inv,
                        struct billing_invoice_result *out, enum billing_invoice_status ok_status)
{
	struct err e = {{0}};
	int rc = add_lines(c, t, inv, out);
	if (rc != 0) return rc < 0 ? -1 : 0;
	if (record_done(c, t, out, &e) != 0) return fatal(out, &e);
	out->status = ok_status;
	return 0;
}

/* The invoice recorded for the period is gone from Syncro (404: deleted
 * there). With c->reinvoice its row is marked failed (audited) and
 * out->replan set, so that the period is planned and invoiced anew (a dry
 * run only sets out->replan: its draft is the new invoice); else it is
 * reported, with the way to do that: an invoice an MSP deleted may have
 * been deleted on purpose. Returns 0, or -1 when out->fatal. */
static int invoice_gone(struct billing_ctx *c, const struct billing_tenant *t, struct billing_invoice_result *out)
{
	const char *period = out->plan.period.id;
	if (c->reinvoice && c->dry_run) {
		out->replan = true;
		return 0;
	}
	if (!c->reinvoice) {
		set_error(out, BILLING_INV_FAILED, "invoice %lld (recorded for %s) is no longer in Syncro: it was deleted "
		          "there; nothing is made again by itself (to invoice the month again: entrasync bill --period %s "
		          "--tenant %s --reinvoice)", out->invoice_id, period, period, t->id);
		return 0;
	}
	char object[48], *note = xasprintf("deleted in Syncro; invoiced again (--reinvoice)");
	char *gone = xasprintf("its invoice %lld was deleted in Syncro and replaced (--reinvoice)", out->invoice_id);
	snprintf(object, sizeof object, "invoice:%lld", out->invoice_id);
	struct store_audit a = { .run_id = c->run_id, .tenant_id = t->id, .object_id = object,
	                         .action = "bill.invoice.reinvoice", .actor = "entrasync", .result = note };
	struct err e = {{0}};
	int rc = 0;
	/* the lines an interrupted run was adding to it: closed with it (the new
	 * invoice has its own) */
	if (store_billing_begin(c->sb, &e) != 0 ||
	    store_billing_invoice_update(c->sb, t->id, period, "failed", out->invoice_id, out->number, note, &e) != 0 ||
	    settle_open_lines(c, t, period, NULL, gone, &e) != 0 ||
	    store_billing_audit(c->sb, &a, &e) != 0 || store_billing_commit(c->sb, &e) != 0) {
		store_billing_rollback(c->sb);
		rc = fatal(out, &e);
	} else {
		out->replan = true;
	}
	free(gone);
	free(note);
	return rc;
}

/* Completes an invoice that exists (state 'created'): reads it, settles
 * open line intents, adds the missing lines, marks it done. */
static int complete_invoice(struct billing_ctx *c, const struct billing_tenant *t, struct billing_invoice_result *out,
                            enum billing_invoice_status ok_status)
{
	struct syncro_invoice inv;
	struct err e = {{0}};
	enum syncro_result r = syncro_invoice_get(c->sy, out->invoice_id, &inv, &e);
	if (r != SYNCRO_OK) {
		syncro_invoice_free(&inv);
		out->fatal = r == SYNCRO_UNAUTHORIZED;
		if (r == SYNCRO_NOT_FOUND)
			return invoice_gone(c, t, out);
		else
			set_error(out, BILLING_INV_FAILED, "%s", e.msg);
		return out->fatal ? -1 : 0;
	}
	if (!out->number[0] && inv.number) snprintf(out->number, sizeof out->number, "%s", inv.number);
	int rc = settle_open_lines(c, t, out->plan.period.id, &inv, NULL, &e);
	if (rc != 0) {
		syncro_invoice_free(&inv);
		return fatal(out, &e);
	}
	rc = finish_lines(c, t, &inv, out, ok_status);
	syncro_invoice_free(&inv);
	return rc;
}

/* The invoice row says 'pending': was the POST applied? Looks the invoice
 * up by marker; found → 'created' (then completed); not found → *sent
 * false (POST it now). */
static int settle_pending(struct billing_ctx *c, const struct billing_tenant *t, const struct store_billing_invoice *row,
                          struct billing_invoice_result *out, bool *found)
{
	char since[32];
	struct syncro_invoice inv;
	struct err e = {{0}};
	*found = false;
	iso_before(row->created_at, FIND_SLACK_SECONDS, since);
	enum syncro_result r = syncro_invoice_find(c->sy, since, row->customer_id, row->marker, &inv, &e);
	if (r == SYNCRO_OK) {
		*found = true;
		out->invoice_id = inv.id;
		snprintf(out->number, sizeof out->number, "%s", inv.number ? inv.number : "");
		syncro_invoice_free(&inv);
		if (store_billing_invoice_update(c->sb, t->id, row->period, "created", out->invoice_id, out->number, NULL,
		                                 &e) != 0)
		return fatal(out, &e);
		return 0;
	}
	syncro_invoice_free(&inv);
	if (r == SYNCRO_NOT_FOUND) return 0;
	out->fatal = r == SYNCRO_UNAUTHORIZED;
	set_error(out, BILLING_INV_PENDING, "looking up the invoice of an interrupted run (%s): %s", row->marker, e.msg);
	return out->fatal ? -1 : 0;
}

/* POSTs the invoice of the row (state 'pending', marker and plan
 * recorded), then its lines. */
static int create_invoice(struct billing_ctx *c, const struct billing_tenant *t, const char *marker,
                          struct billing_invoice_result *out, enum billing_invoice_status ok_status)
{
	const struct billing_period *p = &out->plan.period;
	char note[160], today[16];
	snprintf(note, sizeof note, "Microsoft licences for %s (entrasync ref %s)", p->id, marker);
	struct syncro_invoice inv;
	struct err e = {{0}};
	billing_point(c, BILLING_BEFORE_SEND, "invoice.create");
	enum syncro_result r = syncro_invoice_create(c->sy, t->customer_id, billing_today(c, today), note, &inv, &e);
	billing_point(c, BILLING_AFTER_SEND, "invoice.create");
	if (r == SYNCRO_UNKNOWN_OUTCOME) {
		/* Settle it now, as the next run would. */
		syncro_invoice_free(&inv);
		struct store_billing_invoice row;
		if (store_billing_invoice_get(c->sb, t->id, p->id, &row, &e) != 0) return fatal(out, &e);
		bool found;
		int rc = settle_pending(c, t, &row, out, &found);
		store_billing_invoice_free(&row);
		if (rc != 0 || out->error[0]) return rc;
		if (!found) {
			set_error(out, BILLING_INV_PENDING, "the invoice's creation had no clear answer and it is not in Syncro "
			          "(yet): the next run looks again and creates it if still missing");
			return 0;
		}
		return complete_invoice(c, t, out, ok_status);
	}
	if (r != SYNCRO_OK) {
		syncro_invoice_free(&inv);
		out->fatal = r == SYNCRO_UNAUTHORIZED;
		set_error(out, BILLING_INV_FAILED, "%s", e.msg);
		struct err se = {{0}};
		struct store_audit a = { .run_id = c->run_id, .tenant_id = t->id, .action = "bill.invoice",
		                         .actor = "entrasync" };
		char *result = xasprintf("failed: %s", e.msg);
		a.result = result;
		if (store_billing_begin(c->sb, &se) != 0 ||
		    store_billing_invoice_update(c->sb, t->id, p->id, "failed", 0, NULL, e.msg, &se) != 0 ||
		    store_billing_audit(c->sb, &a, &se) != 0 || store_billing_commit(c->sb, &se) != 0) {
			store_billing_rollback(c->sb);
			out->fatal = true;
			set_error(out, BILLING_INV_FAILED, "%s (and recording it failed: %s)", e.msg, se.msg);
		}
		free(result);
		return out->fatal ? -1 : 0;
	}
	out->invoice_id = inv.id;
	snprintf(out->number, sizeof out->number, "%s", inv.number ? inv.number : "");
	syncro_invoice_free(&inv);
	/* the invoice exists in Syncro from now on: its row and an audit row say
	 * so together (each line gets its own; "bill.invoice" when complete) */
	char object[48], *after = xasprintf("{\"period\":\"%s\",\"invoice_id\":%lld,\"number\":\"%s\"}", p->id,
	                                    out->invoice_id, out->number);
	snprintf(object, sizeof object, "invoice:%lld", out->invoice_id);
	struct store_audit a = { .run_id = c->run_id, .tenant_id = t->id, .object_id = object,
	                         .action = "bill.invoice.create", .after = after, .actor = "entrasync", .result = "ok" };
	int rc = 0;
	if (store_billing_begin(c->sb, &e) != 0 ||
	    store_billing_invoice_update(c->sb, t->id, p->id, "created", out->invoice_id, out->number, NULL, &e) != 0 ||
	    store_billing_audit(c->sb, &a, &e) != 0 || store_billing_commit(c->sb, &e) != 0) {
		store_billing_rollback(c->sb);
		rc = -1;
	}
	free(after);
	if (rc != 0) return fatal(out, &e);
	return finish_lines(c, t, NULL, out, ok_status);
}

/* Compares the invoiced plan with one made now (drift); a plan that
 * cannot be made now leaves have_now false, and out->error saying why. */
static void compare_now(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                        struct billing_invoice_result *out)
{
	struct billing_plan now;
	struct err e = {{0}};
	bool has_data;
	if (billing_plan_tenant(c, t, p, &now, &has_data, &e) != 0)   /* the invoice stands; the policy broke since */
		snprintf(out->error, sizeof out->error, "bill() fails now, so what changed since cannot be told: %.900s", e.msg);
	else if (has_data) {
		billing_plan_drift(&out->plan, &now, &out->drift);
		out->have_now = true;
	}
	billing_plan_free(&now);
}

/* An invoice row found for the period: report it, or complete it. */
static int invoice_from_row(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                            const struct store_billing_invoice *row, struct billing_invoice_result *out)
{
	struct err e = {{0}};
	if (billing_plan_from_json(row->plan, &out->plan, &e) != 0) {
		set_error(out, BILLING_INV_FAILED, "the invoice recorded for %s: %s", p->id, e.msg);
		return 0;
	}
	out->invoice_id = row->invoice_id;
	snprintf(out->number, sizeof out->number, "%s", row->number ? row->number : "");
	bool done = strcmp(row->state, "done") == 0;
	/* still in Syncro? (one read: a deleted invoice is not "invoiced"; a dry
	 * run reads an interrupted one too, to say what the real run will) */
	if ((done || (c->dry_run && strcmp(row->state, "created") == 0)) && c->sy && out->invoice_id) {
		struct syncro_invoice inv;
		enum syncro_result r = syncro_invoice_get(c->sy, out->invoice_id, &inv, &e);
		syncro_invoice_free(&inv);
		if (r == SYNCRO_NOT_FOUND) return invoice_gone(c, t, out);
		if (r == SYNCRO_UNAUTHORIZED) {
			out->fatal = true;
			set_error(out, BILLING_INV_FAILED, "%s", e.msg);
			return -1;
		}
		if (r != SYNCRO_OK) log_warn("bill", "%s: invoice %lld could not be read to check it is still there: %s",
		                             t->id, out->invoice_id, e.msg);
	}
	if (done) {
		out->status = BILLING_INV_EXISTS;
		compare_now(c, t, p, out);
		return 0;
	}
	if (c->dry_run) {
		out->status = BILLING_INV_DRAFT;
		out->recovering = true;
		return 0;
	}
	int rc = 0;
	if (strcmp(row->state, "pending") == 0) {
		bool found;
		rc = settle_pending(c, t, row, out, &found);
		if (rc != 0 || out->error[0]) return rc;
		if (!found) return create_invoice(c, t, row->marker, out, BILLING_INV_RECOVERED);
	}
	rc = complete_invoice(c, t, out, BILLING_INV_RECOVERED);
	if (rc == 0 && out->status == BILLING_INV_RECOVERED) compare_now(c, t, p, out);
	return rc;
}

/* A tenant billed by its recurring invoice is not invoiced per period
 * too (it would pay twice): out says so. True when t has a schedule. */
static bool billed_by_schedule(const struct billing_tenant *t, const struct billing_period *p,
                               struct billing_invoice_result *out)
{
	if (!t->schedule || !*t->schedule) return false;
	set_error(out, BILLING_INV_SCHEDULED, "not invoiced for %s: billed by its recurring invoice '%s' (%s; bill "
	          "--schedules keeps it in step); to invoice it per period instead, set billing_schedule = false in its "
	          "entry of the config", p->id, t->schedule,
	          t->schedule_default ? "billing.schedule of the config" : "its billing_schedule");
	return true;
}

int billing_invoice_tenant(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                           struct billing_invoice_result *out)
{
	memset(out, 0, sizeof *out);
	struct err e = {{0}};
	billing_plan_init(&out->plan, t->id, p);
	if (t->twin) {
		set_error(out, BILLING_INV_UNMAPPED, "the same Microsoft tenant as tenant %s of the config: list it once; "
		          "neither is billed until then (a second invoice would follow)", t->twin);
		return 0;
	}
	if (!t->customer_id) {
		set_error(out, BILLING_INV_UNMAPPED, "no Syncro customer for the tenant (set syncro_customer_id, or run "
		          "the sync once so it is found by name)");
		return 0;
	}
	/* a deleted invoice is not made again for a tenant its schedule bills now */
	if (c->reinvoice && billed_by_schedule(t, p, out)) return 0;
	struct store_billing_invoice row;
	int got = store_billing_invoice_get(c->sb, t->id, p->id, &row, &e);
	if (got < 0) return fatal(out, &e);
	if (got == 0 && strcmp(row.state, "failed") != 0) {
		billing_plan_free(&out->plan);
		int rc = invoice_from_row(c, t, p, &row, out);
		store_billing_invoice_free(&row);
		if (rc != 0 || !out->replan) return rc;
		/* gone from Syncro, --reinvoice: planned and made anew below */
		long long gone = out->invoice_id;
		billing_invoice_result_free(out);
		memset(out, 0, sizeof *out);
		out->replaces = gone;
		billing_plan_init(&out->plan, t->id, p);
		got = STORE_NOTFOUND;
	}
	if (got == 0) store_billing_invoice_free(&row);
	/* an invoice begun before is completed (or reported) above; none is begun
	 * for a tenant its schedule bills */
	if (billed_by_schedule(t, p, out)) return 0;
	/* Nothing invoiced yet (or a refused attempt): plan it now. */
	bool has_data;
	billing_plan_free(&out->plan);
	if (billing_plan_tenant(c, t, p, &out->plan, &has_data, &e) != 0) {
		set_error(out, BILLING_INV_FAILED, "%s", e.msg);
		return 0;
	}
	if (!has_data) {
		set_error(out, BILLING_INV_NO_DATA, "no licence snapshot of the tenant in %s (run entrasync pull daily)",
		          p->id);
		return 0;
	}
	if (billing_plan_billable(&out->plan) == 0) {
		out->status = BILLING_INV_NOTHING;
		return 0;
	}
	if (c->dry_run) {
		out->status = BILLING_INV_DRAFT;
		return 0;
	}
	char marker[32];
	new_marker(marker);
	char *plan_json = billing_plan_to_json(&out->plan);
	struct store_billing_invoice intent = { .tenant_id = t->id, .period = p->id, .customer_id = t->customer_id,
	                                        .marker = marker, .plan = plan_json, .run_id = c->run_id };
	int rc = store_billing_invoice_intent(c->sb, &intent, &e);
	free(plan_json);
	if (rc != 0) return fatal(out, &e);
	return create_invoice(c, t, marker, out, BILLING_INV_CREATED);
}
