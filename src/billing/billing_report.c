/* billing_report — the reconciliation of a period (`entrasync bill
 * --report`): per tenant and SKU, purchased, assigned, billed quantity and
 * amount (the period's invoice when there is one, else what bill() plans),
 * and the leaks: seats purchased but not billed, billed but no longer
 * assigned, SKUs with assigned seats and no price. Written as a table,
 * CSV, JSON or HTML (leaks first). */
#include "billing/billing_internal.h"
#include "report/report.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

void billing_report_free(struct billing_report *r)
{
	if (!r) return;
	for (size_t i = 0; i < r->n; i++) {
		struct billing_report_row *w = &r->rows[i];
		free(w->tenant_id);
		free(w->tenant_name);
		free(w->sku_id);
		free(w->part);
		free(w->name);
	}
	free(r->rows);
	for (size_t i = 0; i < r->nproblems; i++) free(r->problems[i]);
	free(r->problems);
	memset(r, 0, sizeof *r);
}

bool billing_report_row_leaks(const struct billing_report_row *r)
{
	return r->unbilled_seats > 0 || r->unassigned_billed > 0 || r->no_price;
}

__attribute__((format(printf, 2, 3)))
static void problem(struct billing_report *r, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	r->problems = xrealloc(r->problems, (r->nproblems + 1) * sizeof *r->problems);
	r->problems[r->nproblems++] = buf_steal(&b);
}

static const struct billing_plan_sku *plan_sku(const struct billing_plan *p, const char *sku_id)
{
	for (size_t i = 0; i < p->nskus; i++)
		if (strcmp(p->skus[i].sku_id, sku_id) == 0) return &p->skus[i];
	return NULL;
}

/* Adds the row of one SKU: counts from `now` (may be NULL: the SKU is gone),
 * billing from `billed` (the invoice's or the plan's share, may be NULL). */
static void add_row(struct billing_report *r, const struct billing_tenant *t, const struct billing_plan_sku *now,
                    const struct billing_plan *bplan, const struct billing_plan_sku *billed, bool invoiced,
                    long long invoice_id)
{
	const struct billing_plan_sku *id = now ? now : billed;
	r->rows = xrealloc(r->rows, (r->n + 1) * sizeof *r->rows);
	struct billing_report_row *w = &r->rows[r->n++];
	memset(w, 0, sizeof *w);
	w->tenant_id = xstrdup(t->id);
	w->tenant_name = xstrdup(t->name ? t->name : t->id);
	w->sku_id = xstrdup(id->sku_id);
	w->part = id->part ? xstrdup(id->part) : NULL;
	w->name = xstrdup(id->name);
	w->purchased = now ? now->purchased : 0;
	w->assigned = now ? now->assigned : 0;
	w->peak_assigned = now ? now->peak_assigned : 0;
	w->status = billed ? billed->status : now->status;
	w->invoiced = invoiced;
	w->invoice_id = invoice_id;
	if (billed && billed->status == BILLING_SKU_BILLED) {
		const struct billing_line *l = &bplan->lines[billed->line];
		w->billed_qty = billed->quantity;
		w->priced = l->has_price;
		w->unit_cents = l->unit_cents;
		w->billed_cents = l->has_price ? l->unit_cents * billed->quantity : 0;
	}
	if (w->status != BILLING_SKU_FREE && w->purchased > w->billed_qty) w->unbilled_seats = w->purchased - w->billed_qty;
	if (w->billed_qty > w->assigned) w->unassigned_billed = w->billed_qty - w->assigned;
	w->no_price = w->status == BILLING_SKU_UNBILLED;
	if (w->priced) w->leak_cents = w->unbilled_seats * w->unit_cents;
	r->billed_cents += w->billed_cents;
	r->leak_cents += w->leak_cents;
	r->leaks += billing_report_row_leaks(w);
}

struct invoiced {
	bool found;
	bool incomplete;           /* state 'created': lines may be missing in Syncro */
	long long invoice_id;
	struct billing_plan plan;
};

/* The period's invoice of the tenant (created or done), if any. */
static int invoiced_plan(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                         struct invoiced *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	struct store_billing_invoice row;
	int rc = store_billing_invoice_get(c->sb, t->id, p->id, &row, err);
	if (rc < 0) return -1;
	if (rc == 0 && (strcmp(row.state, "done") == 0 || strcmp(row.state, "created") == 0)) {
		if (billing_plan_from_json(row.plan, &out->plan, err) == 0) {
			out->found = true;
			out->invoice_id = row.invoice_id;
			out->incomplete = strcmp(row.state, "created") == 0;
		}
	}
	store_billing_invoice_free(&row);
	return 0;
}

int billing_report_build(struct billing_ctx *c, const struct billing_tenant *tenants, size_t n,
                         const struct billing_period *p, struct billing_report *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	out->period = *p;
	for (size_t i = 0; i < n; i++) {
		const struct billing_tenant *t = &tenants[i];
		const char *label = t->name ? t->name : t->id;
		struct billing_plan now;
		struct invoiced inv;
		struct err e = {{0}};
		bool has_data = false;
		if (invoiced_plan(c, t, p, &inv, err) != 0) {
			billing_report_free(out);
			return -1;
		}
		if (inv.found && inv.incomplete) {
			problem(out, "%s: invoice %lld for %s is incomplete in Syncro (its lines were still being added when a "
			        "run stopped or failed): 'entrasync bill --period %s' adds the missing lines; the rows below "
			        "are its plan, not what Syncro holds yet", label, inv.invoice_id, p->id, p->id);
			out->failures++;
		}
		if (billing_plan_tenant(c, t, p, &now, &has_data, &e) != 0) {
			/* no counts to set the invoice against: rows of zeros would show leaks that are not */
			problem(out, "%s: bill() could not be planned, so the tenant is not reconciled: %s", label, e.msg);
			out->failures++;
			billing_plan_free(&now);
			billing_plan_free(&inv.plan);
			continue;
		} else if (!has_data) {
			problem(out, "%s: no licence snapshot in %s", label, p->id);
		}
		if (!inv.found && !has_data) {
			billing_plan_free(&now);
			continue;
		}
		const struct billing_plan *bplan = inv.found ? &inv.plan : &now;
		for (size_t k = 0; k < now.nskus; k++)
			add_row(out, t, &now.skus[k], bplan, plan_sku(bplan, now.skus[k].sku_id), inv.found, inv.invoice_id);
		for (size_t k = 0; inv.found && k < inv.plan.nskus; k++)   /* invoiced SKUs gone since */
			if (!plan_sku(&now, inv.plan.skus[k].sku_id))
				add_row(out, t, NULL, &inv.plan, &inv.plan.skus[k], true, inv.invoice_id);
		if (t->twin) problem(out, "%s: the same Microsoft tenant as tenant %s of the config: listed twice", label, t->twin);
		if (!inv.found && !t->customer_id) problem(out, "%s: no Syncro customer: not invoiced", label);
		billing_plan_free(&now);
		billing_plan_free(&inv.plan);
	}
	return 0;
}

/* ---------------------------------------------------------------- output */

/* "unbilled 5 seats ($115.00); billed 2 not assigned; no price". */
static void leak_text(const struct billing_report_row *w, struct buf *b)
{
	char m[32];
	const char *sep = "";
	if (w->no_price) {
		buf_printf(b, "no price for %lld assigned", w->assigned ? w->assigned : w->peak_assigned);
		sep = "; ";
	}
	if (w->unbilled_seats > 0) {
		buf_printf(b, "%s%lld purchased not billed", sep, w->unbilled_seats);
		if (w->leak_cents) buf_printf(b, " (%s)", billing_money(w->leak_cents, m));
		sep = "; ";
	}
	if (w->unassigned_billed > 0) buf_printf(b, "%s%lld billed not assigned", sep, w->unassigned_billed);
}

static const char *sku_label(const struct billing_report_row *w)
{
	return w->part ? w->part : w->sku_id;
}

/* The table fits an 80-column terminal: names are cut (UTF-8 aware, '~')
 * to their columns, and a row's leaks go on an indented line under it. */
static void write_table(FILE *f, const struct billing_report *r)
{
	char m1[32], m2[32], num[32];
	struct buf b = {0};
	fprintf(f, "Billing reconciliation %s (%s to %s)\n\n", r->period.id, r->period.first, r->period.last);
	fprintf(f, "%-16s %-18s %6s %6s %5s %6s %11s\n", "TENANT", "SKU", "PURCH", "ASSIGN", "PEAK", "BILLED", "AMOUNT");
	for (size_t i = 0; i < r->n; i++) {
		const struct billing_report_row *w = &r->rows[i];
		buf_reset(&b);
		report_cell(&b, w->tenant_name, 16, false);
		buf_addc(&b, ' ');
		report_cell(&b, sku_label(w), 18, false);
		buf_printf(&b, " %6lld %6lld %5lld %6lld ", w->purchased, w->assigned, w->peak_assigned, w->billed_qty);
		report_cell(&b, w->priced ? billing_money(w->billed_cents, num) : w->billed_qty ? "catalog?" : "-", 11, true);
		struct buf lk = {0};
		leak_text(w, &lk);
		const char *planned = w->invoiced || !w->billed_qty ? "" : "planned, not invoiced";
		if (lk.len || *planned)
			buf_printf(&b, "\n    %s%s%s", lk.len ? lk.data : "", lk.len && *planned ? "; " : "", planned);
		fprintf(f, "%s\n", b.data);
		buf_free(&lk);
	}
	buf_free(&b);
	fprintf(f, "\nbilled %s; %lld row%s with leaks, %s of purchased seats not billed\n",
	        billing_money(r->billed_cents, m1), r->leaks, r->leaks == 1 ? "" : "s", billing_money(r->leak_cents, m2));
	for (size_t i = 0; i < r->nproblems; i++) fprintf(f, "problem: %s\n", r->problems[i]);
}

/* A field as report_csv_field writes it (quoted as needed, no formula, no
 * control character), then its separator. */
static void csv_field(FILE *f, const char *s, bool last)
{
	struct buf b = { 0 };
	report_csv_field(&b, s ? s : "");
	buf_addc(&b, last ? '\n' : ',');
	fwrite(b.data, 1, b.len, f);
	buf_free(&b);
}

static void write_csv(FILE *f, const struct billing_report *r)
{
	fputs("period,tenant_id,tenant,sku_id,sku,name,status,purchased,assigned,peak_assigned,billed_quantity,"
	      "unit_price,billed_amount,invoiced,invoice_id,purchased_not_billed,billed_not_assigned,no_price,"
	      "leak_amount\n", f);
	for (size_t i = 0; i < r->n; i++) {
		const struct billing_report_row *w = &r->rows[i];
		char m1[32], m2[32], m3[32];
		csv_field(f, r->period.id, false);
		csv_field(f, w->tenant_id, false);
		csv_field(f, w->tenant_name, false);
		csv_field(f, w->sku_id, false);
		csv_field(f, w->part, false);
		csv_field(f, w->name, false);
		fprintf(f, "%s,%lld,%lld,%lld,%lld,%s,%s,%s,", billing_sku_status_name(w->status), w->purchased,
		        w->assigned, w->peak_assigned, w->billed_qty, w->priced ? billing_money(w->unit_cents, m1) : "",
		        w->priced ? billing_money(w->billed_cents, m2) : "", w->invoiced ? "yes" : "no");
		if (w->invoice_id) fprintf(f, "%lld", w->invoice_id);
		fprintf(f, ",%lld,%lld,%s,%s\n", w->unbilled_seats, w->unassigned_billed, w->no_price ? "yes" : "no",
		        w->priced ? billing_money(w->leak_cents, m3) : "");
	}
}

static cJSON *row_json(const struct billing_report_row *w)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "tenant_id", w->tenant_id);
	cJSON_AddStringToObject(o, "tenant", w->tenant_name);
	cJSON_AddStringToObject(o, "sku_id", w->sku_id);
	if (w->part) cJSON_AddStringToObject(o, "sku", w->part);
	cJSON_AddStringToObject(o, "name", w->name);
	cJSON_AddStringToObject(o, "status", billing_sku_status_name(w->status));
	cJSON_AddNumberToObject(o, "purchased", (double)w->purchased);
	cJSON_AddNumberToObject(o, "assigned", (double)w->assigned);
	cJSON_AddNumberToObject(o, "peak_assigned", (double)w->peak_assigned);
	cJSON_AddNumberToObject(o, "billed_quantity", (double)w->billed_qty);
	if (w->priced) {
		cJSON_AddNumberToObject(o, "unit_cents", (double)w->unit_cents);
		cJSON_AddNumberToObject(o, "billed_cents", (double)w->billed_cents);
		cJSON_AddNumberToObject(o, "leak_cents", (double)w->leak_cents);
	}
	cJSON_AddBoolToObject(o, "invoiced", w->invoiced);
	if (w->invoice_id) cJSON_AddNumberToObject(o, "invoice_id", (double)w->invoice_id);
	cJSON *lk = cJSON_AddObjectToObject(o, "leaks");
	cJSON_AddNumberToObject(lk, "purchased_not_billed", (double)w->unbilled_seats);
	cJSON_AddNumberToObject(lk, "billed_not_assigned", (double)w->unassigned_billed);
	cJSON_AddBoolToObject(lk, "no_price", w->no_price);
	return o;
}

static void write_json(FILE *f, const struct billing_report *r)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "period", r->period.id);
	cJSON *tot = cJSON_AddObjectToObject(root, "totals");
	cJSON_AddNumberToObject(tot, "billed_cents", (double)r->billed_cents);
	cJSON_AddNumberToObject(tot, "leak_cents", (double)r->leak_cents);
	cJSON_AddNumberToObject(tot, "rows_with_leaks", (double)r->leaks);
	cJSON *rows = cJSON_AddArrayToObject(root, "rows");
	for (size_t i = 0; i < r->n; i++) cJSON_AddItemToArray(rows, row_json(&r->rows[i]));
	cJSON *pr = cJSON_AddArrayToObject(root, "problems");
	for (size_t i = 0; i < r->nproblems; i++) cJSON_AddItemToArray(pr, cJSON_CreateString(r->problems[i]));
	char *s = cJSON_Print(root);
	fprintf(f, "%s\n", s);
	free(s);
	cJSON_Delete(root);
}

static void html_text(FILE *f, const char *s)
{
	for (s = s ? s : ""; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static void html_row(FILE *f, const struct billing_report_row *w, bool leaks_first)
{
	char m[32];
	struct buf lk = {0};
	leak_text(w, &lk);
	fputs(billing_report_row_leaks(w) ? "<tr class=\"leak\"><td>" : "<tr><td>", f);
	html_text(f, w->tenant_name);
	fputs("</td><td>", f);
	html_text(f, sku_label(w));
	fputs("<br><small>", f);
	html_text(f, w->name);
	fprintf(f, "</small></td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%s</td><td>", w->purchased,
	        w->assigned, w->peak_assigned, w->billed_qty, w->priced ? billing_money(w->billed_cents, m) : "-");
	html_text(f, lk.data);
	fprintf(f, "</td><td>%s</td></tr>\n", w->invoiced ? "invoice" : leaks_first ? "plan" : "plan (not invoiced)");
	buf_free(&lk);
}

/* Leak rows by lost amount, then seats, largest first. */
static int leak_order(const void *a, const void *b)
{
	const struct billing_report_row *x = *(const struct billing_report_row *const *)a;
	const struct billing_report_row *y = *(const struct billing_report_row *const *)b;
	if (x->leak_cents != y->leak_cents) return x->leak_cents < y->leak_cents ? 1 : -1;
	long long sx = x->unbilled_seats + x->unassigned_billed + x->no_price;
	long long sy = y->unbilled_seats + y->unassigned_billed + y->no_price;
	return sx < sy ? 1 : sx > sy ? -1 : 0;
}

static void write_html(FILE *f, const struct billing_report *r)
{
	static const char head[] = "<tr><th>Tenant</th><th>SKU</th><th>Purchased</th><th>Assigned</th><th>Peak</th>"
	                           "<th>Billed</th><th>Amount</th><th>Leaks</th><th>Billed from</th></tr>\n";
	char m1[32], m2[32];
	fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Billing %s</title>\n"
	        "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
	        "padding:3px 6px;text-align:left}tr.leak{background:#fde8e8}</style></head><body>\n"
	        "<h1>Billing reconciliation %s</h1>\n<p>%s to %s: billed %s; %lld row%s with leaks; %s of purchased "
	        "seats not billed.</p>\n", r->period.id, r->period.id, r->period.first, r->period.last,
	        billing_money(r->billed_cents, m1), r->leaks, r->leaks == 1 ? "" : "s", billing_money(r->leak_cents, m2));
	const struct billing_report_row **leaks = xcalloc(r->n + 1, sizeof *leaks);
	size_t nl = 0;
	for (size_t i = 0; i < r->n; i++)
		if (billing_report_row_leaks(&r->rows[i])) leaks[nl++] = &r->rows[i];
	qsort(leaks, nl, sizeof *leaks, leak_order);
	fprintf(f, "<h2 id=\"leaks\">Leaks</h2>\n");
	if (nl) {
		fprintf(f, "<table>\n%s", head);
		for (size_t i = 0; i < nl; i++) html_row(f, leaks[i], true);
		fputs("</table>\n", f);
	} else {
		fputs("<p>None.</p>\n", f);
	}
	free(leaks);
	if (r->nproblems) {
		fputs("<h2 id=\"problems\">Problems</h2>\n<ul>\n", f);
		for (size_t i = 0; i < r->nproblems; i++) {
			fputs("<li>", f);
			html_text(f, r->problems[i]);
			fputs("</li>\n", f);
		}
		fputs("</ul>\n", f);
	}
	fprintf(f, "<h2 id=\"all\">All SKUs</h2>\n<table>\n%s", head);
	for (size_t i = 0; i < r->n; i++) html_row(f, &r->rows[i], false);
	fputs("</table>\n</body></html>\n", f);
}

int billing_report_write(FILE *f, const struct billing_report *r, const char *format, struct err *err)
{
	if (!format || strcmp(format, "table") == 0) write_table(f, r);
	else if (strcmp(format, "csv") == 0) write_csv(f, r);
	else if (strcmp(format, "json") == 0) write_json(f, r);
	else if (strcmp(format, "html") == 0) write_html(f, r);
	else return err_set(err, "unknown report format '%s' (table, csv, json or html)", format);
	return 0;
}
