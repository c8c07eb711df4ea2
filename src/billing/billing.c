/* billing — the billing rules over plain structs (see billing.h): periods,
 * the hook's input and output, plans with bundles, drift, and the schedule
 * diff with its decrease guard. No Lua, HTTP or SQLite here. */
#include "billing/billing.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/config.h"

/* Sanity bounds on what a policy returns, small enough that no total of
 * cents can overflow: 10^6 * 100 cents * 10^7 seats = 10^15 a line. */
#define BILLING_MAX_QUANTITY 10000000LL
#define BILLING_MAX_PRICE    1000000.0

/* ---------------------------------------------------------------- periods */

static int month_days(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : days[m - 1];
}

static void period_fill(struct billing_period *out, int y, int m)
{
	memset(out, 0, sizeof *out);
	out->days = month_days(y, m);
	snprintf(out->id, sizeof out->id, "%04d-%02d", y % 10000, m % 100);
	snprintf(out->first, sizeof out->first, "%04d-%02d-01", y % 10000, m % 100);
	snprintf(out->last, sizeof out->last, "%04d-%02d-%02d", y % 10000, m % 100, out->days % 100);
}

int billing_period_parse(const char *s, struct billing_period *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	if (!s || strlen(s) != 7 || s[4] != '-')
		return err_set(err, "period '%s' must be a month, YYYY-MM (e.g. 2026-10)", s ? s : "");
	for (int i = 0; i < 7; i++)
		if (i != 4 && !isdigit((unsigned char)s[i]))
			return err_set(err, "period '%s' must be a month, YYYY-MM (e.g. 2026-10)", s);
	int y = atoi(s), m = atoi(s + 5);
	if (y < 2000 || y > 2999 || m < 1 || m > 12)
		return err_set(err, "period '%s': no such month (YYYY-MM, month 01 to 12)", s);
	period_fill(out, y, m);
	return 0;
}

void billing_period_of(double t, struct billing_period *out)
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	period_fill(out, tm.tm_year + 1900, tm.tm_mon + 1);
}

void billing_period_prev(const struct billing_period *p, struct billing_period *out)
{
	int y = atoi(p->id), m = atoi(p->id + 5);
	if (--m < 1) {
		m = 12;
		y--;
	}
	period_fill(out, y, m);
}

int billing_period_vs(const struct billing_period *p, double t)
{
	char day[16];
	time_day(t, day, sizeof day);
	if (strcmp(p->last, day) < 0) return -1;
	if (strcmp(p->first, day) > 0) return 1;
	return 0;
}

/* ---------------------------------------------------------------- usage */

long long billing_usage_available(const struct billing_usage *u)
{
	return u->purchased > u->assigned ? u->purchased - u->assigned : 0;
}

cJSON *billing_usage_cjson(const struct billing_usage *u, const struct billing_period *p)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *s = cJSON_AddObjectToObject(root, "sku");
	cJSON_AddStringToObject(s, "sku_id", u->sku_id ? u->sku_id : "");
	if (u->part) cJSON_AddStringToObject(s, "part", u->part);
	cJSON_AddStringToObject(s, "name", u->name ? u->name : (u->part ? u->part : u->sku_id ? u->sku_id : ""));
	cJSON_AddNumberToObject(s, "purchased", (double)u->purchased);
	cJSON_AddNumberToObject(s, "assigned", (double)u->assigned);
	cJSON_AddNumberToObject(s, "available", (double)billing_usage_available(u));
	cJSON_AddNumberToObject(s, "peak_assigned", (double)u->peak_assigned);
	cJSON_AddNumberToObject(s, "peak_purchased", (double)u->peak_purchased);
	cJSON_AddNumberToObject(s, "days", (double)u->days);
	cJSON_AddNumberToObject(s, "suspended", (double)u->suspended);
	cJSON_AddNumberToObject(s, "warning", (double)u->warning);
	cJSON_AddNumberToObject(s, "locked_out", (double)u->locked_out);
	if (u->capability_status) cJSON_AddStringToObject(s, "capability_status", u->capability_status);
	if (p) cJSON_AddStringToObject(s, "period", p->id);
	return root;
}

char *billing_usage_json(const struct billing_usage *u, const struct billing_period *p)
{
	cJSON *root = billing_usage_cjson(u, p);
	char *out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}

/* "SPE_E3" or the id: how a SKU is named in messages. */
static const char *usage_label(const struct billing_usage *u)
{
	return u->part ? u->part : u->sku_id ? u->sku_id : "?";
}

/* ---------------------------------------------------------------- bill() */

void billing_item_free(struct billing_item *it)
{
	if (!it) return;
	free(it->name);
	memset(it, 0, sizeof *it);
}

static bool is_whole(double v)
{
	return isfinite(v) && floor(v) == v;
}

int billing_item_from_json(const char *json, const struct billing_usage *u, struct billing_item *out,
                           struct err *err)
{
	static const char *const keys[] = { "product_id", "name", "unit_price", "quantity", "taxable", NULL };
	const char *sku = usage_label(u);
	int rc = -1;
	memset(out, 0, sizeof *out);
	out->taxable = -1;
	out->quantity = u->assigned;
	cJSON *root = cJSON_Parse(json ? json : "");
	if (!cJSON_IsObject(root)) {
		err_set(err, "bill() for %s must return a table, nil or false", sku);
		goto out;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, root) {
		const char *k = it->string;
		if (strcmp(k, "product_id") == 0) {
			if (!cJSON_IsNumber(it) || !is_whole(it->valuedouble) || it->valuedouble < 1 ||
			    it->valuedouble > 9.0e15) {
				err_set(err, "bill() for %s: product_id must be a positive integer (a Syncro product id)", sku);
				goto out;
			}
			out->product_id = (long long)it->valuedouble;
		} else if (strcmp(k, "name") == 0) {
			if (!cJSON_IsString(it) || !it->valuestring[0]) {
				err_set(err, "bill() for %s: name must be a non-empty string", sku);
				goto out;
			}
			free(out->name);
			out->name = xstrdup(it->valuestring);
		} else if (strcmp(k, "unit_price") == 0) {
			if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < 0 ||
			    it->valuedouble > BILLING_MAX_PRICE) {
				err_set(err, "bill() for %s: unit_price must be a number from 0 to 1,000,000 (e.g. 12.50)", sku);
				goto out;
			}
			out->has_price = true;
			out->unit_cents = llround(it->valuedouble * 100.0);
		} else if (strcmp(k, "quantity") == 0) {
			if (!cJSON_IsNumber(it) || !is_whole(it->valuedouble) || it->valuedouble < 0 ||
			    it->valuedouble > (double)BILLING_MAX_QUANTITY) {
				err_set(err, "bill() for %s: quantity must be a whole number from 0 to 10,000,000, got %s", sku,
				        !cJSON_IsNumber(it) ? "another type" : it->valuedouble > (double)BILLING_MAX_QUANTITY
				                                                   ? "more" : "a fraction or a negative number");
				goto out;
			}
			out->quantity = (long long)it->valuedouble;
		} else if (strcmp(k, "taxable") == 0) {
			if (!cJSON_IsBool(it)) {
				err_set(err, "bill() for %s: taxable must be true or false", sku);
				goto out;
			}
			out->taxable = cJSON_IsTrue(it) ? 1 : 0;
		} else {
			const char *near = config_nearest(k, keys);
			err_set(err, "bill() for %s: unknown key '%s'%s%s%s (known: product_id, name, unit_price, quantity, "
			        "taxable)", sku, k, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
			goto out;
		}
	}
	if (!out->product_id && !out->name) {
		err_set(err, "bill() for %s: the table needs a product_id (a Syncro product) or a name", sku);
		goto out;
	}
	if (!out->product_id && !out->has_price) {
		err_set(err, "bill() for %s: a line without product_id needs a unit_price", sku);
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(root);
	if (rc != 0) billing_item_free(out);
	return rc;
}

/* ---------------------------------------------------------------- plans */

const char *billing_sku_status_name(enum billing_sku_status s)
{
	switch (s) {
	case BILLING_SKU_BILLED: return "billed";
	case BILLING_SKU_FREE: return "free";
	case BILLING_SKU_UNBILLED: return "unbilled";
	case BILLING_SKU_IDLE: return "idle";
	}
	return "?";
}

static int sku_status_parse(const char *s)
{
	for (int i = BILLING_SKU_BILLED; i <= BILLING_SKU_IDLE; i++)
		if (s && strcmp(s, billing_sku_status_name((enum billing_sku_status)i)) == 0) return i;
	return -1;
}

const char *billing_line_label(const struct billing_line *l)
{
	if (l->name) return l->name;
	if (l->catalog_name) return l->catalog_name;
	return l->fallback;
}

char *billing_line_key(long long product_id, const char *name)
{
	if (product_id > 0) return xasprintf("p:%lld", product_id);
	char *k = xasprintf("n:%s", name ? name : "");
	for (char *p = k + 2; *p; p++) *p = (char)tolower((unsigned char)*p);
	return k;
}

void billing_plan_init(struct billing_plan *p, const char *tenant_id, const struct billing_period *period)
{
	memset(p, 0, sizeof *p);
	p->tenant_id = xstrdup(tenant_id ? tenant_id : "");
	if (period) p->period = *period;
}

static void line_free(struct billing_line *l)
{
	free(l->key);
	free(l->name);
	free(l->catalog_name);
	free(l->skus);
}

void billing_plan_free(struct billing_plan *p)
{
	if (!p) return;
	for (size_t i = 0; i < p->nskus; i++) {
		free(p->skus[i].sku_id);
		free(p->skus[i].part);
		free(p->skus[i].name);
	}
	for (size_t i = 0; i < p->nlines; i++) line_free(&p->lines[i]);
	free(p->skus);
	free(p->lines);
	free(p->tenant_id);
	memset(p, 0, sizeof *p);
}

static struct billing_plan_sku *plan_new_sku(struct billing_plan *p)
{
	if (p->nskus == p->skus_cap) {
		p->skus_cap = p->skus_cap ? p->skus_cap * 2 : 8;
		p->skus = xrealloc(p->skus, p->skus_cap * sizeof *p->skus);
	}
	struct billing_plan_sku *s = &p->skus[p->nskus++];
	memset(s, 0, sizeof *s);
	s->line = -1;
	return s;
}

/* Appends an empty line for product_id (0 = a named line). */
static struct billing_line *plan_new_line(struct billing_plan *p, long long product_id)
{
	if (p->nlines == p->lines_cap) {
		p->lines_cap = p->lines_cap ? p->lines_cap * 2 : 4;
		p->lines = xrealloc(p->lines, p->lines_cap * sizeof *p->lines);
	}
	struct billing_line *l = &p->lines[p->nlines++];
	memset(l, 0, sizeof *l);
	l->taxable = -1;
	l->product_id = product_id;
	snprintf(l->fallback, sizeof l->fallback, "product %lld", product_id);
	return l;
}

static long long plan_line_index(const struct billing_plan *p, const char *key)
{
	for (size_t i = 0; i < p->nlines; i++)
		if (strcmp(p->lines[i].key, key) == 0) return (long long)i;
	return -1;
}

const struct billing_line *billing_plan_line(const struct billing_plan *p, const char *key)
{
	long long i = plan_line_index(p, key);
	return i < 0 ? NULL : &p->lines[i];
}

/* Checks that item it can join line l (a bundle): explicit prices, names
 * and taxable settings must agree. */
static int bundle_check(const struct billing_line *l, const struct billing_item *it, const char *sku,
                        struct err *err)
{
	char a[32], b[32];
	if (l->has_price != it->has_price || (l->has_price && l->unit_cents != it->unit_cents))
		return err_set(err, "bill(): %s and %s are billed as the same line (%s) with different unit prices (%s "
		               "and %s): give every SKU of a bundle the same unit_price", l->skus, sku, billing_line_label(l),
		               l->has_price ? billing_money(l->unit_cents, a) : "catalog",
		               it->has_price ? billing_money(it->unit_cents, b) : "catalog");
	if (l->name && it->name && strcmp(l->name, it->name) != 0)
		return err_set(err, "bill(): %s and %s are billed as the same product %lld with different names ('%s' "
		               "and '%s')", l->skus, sku, l->product_id, l->name, it->name);
	if (l->taxable >= 0 && it->taxable >= 0 && l->taxable != it->taxable)
		return err_set(err, "bill(): %s and %s are billed as the same line (%s) but only one is taxable", l->skus,
		               sku, billing_line_label(l));
	return 0;
}

int billing_plan_add(struct billing_plan *p, const struct billing_usage *u, enum billing_verdict v,
                     const struct billing_item *it, struct err *err)
{
	const char *label = usage_label(u);
	long long li = -1;
	if (v == BILLING_BILLED) {
		char *key = billing_line_key(it->product_id, it->name);
		li = plan_line_index(p, key);
		if (li >= 0) {
			struct billing_line *l = &p->lines[li];
			if (bundle_check(l, it, label, err) != 0) {
				free(key);
				return -1;
			}
			l->quantity += it->quantity;
			if (!l->name && it->name) l->name = xstrdup(it->name);
			if (l->taxable < 0) l->taxable = it->taxable;
			char *skus = xasprintf("%s+%s", l->skus, label);
			free(l->skus);
			l->skus = skus;
			free(key);
		} else {
			struct billing_line *l = plan_new_line(p, it->product_id);
			l->key = key;
			l->name = it->name ? xstrdup(it->name) : NULL;
			l->has_price = it->has_price;
			l->unit_cents = it->unit_cents;
			l->quantity = it->quantity;
			l->taxable = it->taxable;
			l->skus = xstrdup(label);
			li = (long long)p->nlines - 1;
		}
	}
	struct billing_plan_sku *s = plan_new_sku(p);
	s->sku_id = xstrdup(u->sku_id ? u->sku_id : "");
	s->part = u->part ? xstrdup(u->part) : NULL;
	s->name = xstrdup(u->name ? u->name : label);
	s->purchased = u->purchased;
	s->assigned = u->assigned;
	s->peak_purchased = u->peak_purchased;
	s->peak_assigned = u->peak_assigned;
	s->days = u->days;
	s->line = li;
	if (v == BILLING_BILLED) {
		s->status = BILLING_SKU_BILLED;
		s->quantity = it->quantity;
	} else if (v == BILLING_FREE) {
		s->status = BILLING_SKU_FREE;
	} else {
		s->status = u->peak_assigned > 0 || u->assigned > 0 ? BILLING_SKU_UNBILLED : BILLING_SKU_IDLE;
	}
	return 0;
}

long long billing_plan_total(const struct billing_plan *p, bool *complete)
{
	long long sum = 0;
	bool all = true;
	for (size_t i = 0; i < p->nlines; i++) {
		const struct billing_line *l = &p->lines[i];
		if (l->has_price) sum += l->quantity * l->unit_cents;
		else if (l->quantity > 0) all = false;
	}
	if (complete) *complete = all;
	return sum;
}

size_t billing_plan_billable(const struct billing_plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nlines; i++) n += p->lines[i].quantity > 0;
	return n;
}

size_t billing_plan_unbilled(const struct billing_plan *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->nskus; i++) n += p->skus[i].status == BILLING_SKU_UNBILLED;
	return n;
}

const char *billing_money(long long cents, char buf[32])
{
	long long a = cents < 0 ? -cents : cents;
	snprintf(buf, 32, "%s%lld.%02lld", cents < 0 ? "-" : "", a / 100, a % 100);
	return buf;
}

/* ---- plan <-> JSON */

static void add_opt_string(cJSON *o, const char *k, const char *v)
{
	if (v) cJSON_AddStringToObject(o, k, v);
}

cJSON *billing_plan_to_cjson(const struct billing_plan *p)
{
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "tenant_id", p->tenant_id ? p->tenant_id : "");
	cJSON_AddStringToObject(root, "period", p->period.id);
	cJSON *lines = cJSON_AddArrayToObject(root, "lines");
	for (size_t i = 0; i < p->nlines; i++) {
		const struct billing_line *l = &p->lines[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "key", l->key);
		if (l->product_id) cJSON_AddNumberToObject(o, "product_id", (double)l->product_id);
		add_opt_string(o, "name", l->name);
		add_opt_string(o, "catalog_name", l->catalog_name);
		cJSON_AddStringToObject(o, "label", billing_line_label(l));
		cJSON_AddNumberToObject(o, "quantity", (double)l->quantity);
		if (l->has_price) {
			cJSON_AddNumberToObject(o, "unit_cents", (double)l->unit_cents);
			cJSON_AddNumberToObject(o, "amount_cents", (double)(l->unit_cents * l->quantity));
			if (l->price_from_catalog) cJSON_AddBoolToObject(o, "price_from_catalog", 1);
		}
		if (l->taxable >= 0) cJSON_AddBoolToObject(o, "taxable", l->taxable);
		cJSON_AddStringToObject(o, "skus", l->skus ? l->skus : "");
		cJSON_AddItemToArray(lines, o);
	}
	cJSON *skus = cJSON_AddArrayToObject(root, "skus");
	for (size_t i = 0; i < p->nskus; i++) {
		const struct billing_plan_sku *s = &p->skus[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "sku_id", s->sku_id);
		add_opt_string(o, "part", s->part);
		cJSON_AddStringToObject(o, "name", s->name);
		cJSON_AddNumberToObject(o, "purchased", (double)s->purchased);
		cJSON_AddNumberToObject(o, "assigned", (double)s->assigned);
		cJSON_AddNumberToObject(o, "peak_purchased", (double)s->peak_purchased);
		cJSON_AddNumberToObject(o, "peak_assigned", (double)s->peak_assigned);
		cJSON_AddNumberToObject(o, "days", (double)s->days);
		cJSON_AddStringToObject(o, "status", billing_sku_status_name(s->status));
		if (s->status == BILLING_SKU_BILLED) {
			cJSON_AddNumberToObject(o, "quantity", (double)s->quantity);
			cJSON_AddStringToObject(o, "line", p->lines[s->line].key);
		}
		cJSON_AddItemToArray(skus, o);
	}
	bool complete;
	long long total = billing_plan_total(p, &complete);
	cJSON_AddNumberToObject(root, "total_cents", (double)total);
	cJSON_AddBoolToObject(root, "total_complete", complete);
	return root;
}

char *billing_plan_to_json(const struct billing_plan *p)
{
	cJSON *root = billing_plan_to_cjson(p);
	char *s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return s;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long long jnum(const cJSON *o, const char *k, long long dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : dflt;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

int billing_plan_from_json(const char *json, struct billing_plan *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	cJSON *root = cJSON_Parse(json ? json : "");
	const cJSON *lines = cJSON_GetObjectItemCaseSensitive(root, "lines");
	const cJSON *skus = cJSON_GetObjectItemCaseSensitive(root, "skus");
	struct billing_period per;
	if (!cJSON_IsArray(lines) || !cJSON_IsArray(skus) || billing_period_parse(jstr(root, "period"), &per, err) != 0) {
		cJSON_Delete(root);
		return err_set(err, "a recorded billing plan is not readable");
	}
	billing_plan_init(out, jstr(root, "tenant_id"), &per);
	const cJSON *o;
	cJSON_ArrayForEach(o, lines) {
		struct billing_line *l = plan_new_line(out, jnum(o, "product_id", 0));
		l->key = xstrdup(jstr(o, "key") ? jstr(o, "key") : "");
		l->name = dup_or_null(jstr(o, "name"));
		l->catalog_name = dup_or_null(jstr(o, "catalog_name"));
		l->quantity = jnum(o, "quantity", 0);
		l->has_price = cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "unit_cents"));
		l->unit_cents = jnum(o, "unit_cents", 0);
		l->price_from_catalog = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "price_from_catalog"));
		const cJSON *tx = cJSON_GetObjectItemCaseSensitive(o, "taxable");
		l->taxable = cJSON_IsBool(tx) ? cJSON_IsTrue(tx) : -1;
		l->skus = xstrdup(jstr(o, "skus") ? jstr(o, "skus") : "");
	}
	cJSON_ArrayForEach(o, skus) {
		struct billing_plan_sku *s = plan_new_sku(out);
		s->sku_id = xstrdup(jstr(o, "sku_id") ? jstr(o, "sku_id") : "");
		s->part = dup_or_null(jstr(o, "part"));
		s->name = xstrdup(jstr(o, "name") ? jstr(o, "name") : s->sku_id);
		s->purchased = jnum(o, "purchased", 0);
		s->assigned = jnum(o, "assigned", 0);
		s->peak_purchased = jnum(o, "peak_purchased", 0);
		s->peak_assigned = jnum(o, "peak_assigned", 0);
		s->days = jnum(o, "days", 0);
		int st = sku_status_parse(jstr(o, "status"));
		s->status = st < 0 ? BILLING_SKU_IDLE : (enum billing_sku_status)st;
		s->quantity = jnum(o, "quantity", 0);
		s->line = jstr(o, "line") ? plan_line_index(out, jstr(o, "line")) : -1;
		if (s->status == BILLING_SKU_BILLED && s->line < 0) s->status = BILLING_SKU_IDLE;
	}
	cJSON_Delete(root);
	return 0;
}

/* ---------------------------------------------------------------- drift */

void billing_drifts_free(struct billing_drifts *d)
{
	if (!d) return;
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].key);
		free(d->v[i].label);
	}
	free(d->v);
	memset(d, 0, sizeof *d);
}

static void drift_add(struct billing_drifts *d, const struct billing_line *a, const struct billing_line *b)
{
	const struct billing_line *l = b ? b : a;
	d->v = xrealloc(d->v, (d->n + 1) * sizeof *d->v);
	d->v[d->n++] = (struct billing_drift){
		.key = xstrdup(l->key), .label = xstrdup(billing_line_label(l)),
		.old_qty = a ? a->quantity : -1, .new_qty = b ? b->quantity : -1,
		.old_cents = a && a->has_price ? a->unit_cents : -1, .new_cents = b && b->has_price ? b->unit_cents : -1,
	};
}

void billing_plan_drift(const struct billing_plan *then, const struct billing_plan *now, struct billing_drifts *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < then->nlines; i++) {
		const struct billing_line *a = &then->lines[i];
		const struct billing_line *b = billing_plan_line(now, a->key);
		if (b && b->quantity <= 0) b = NULL;
		if (a->quantity <= 0) {
			if (b) drift_add(out, NULL, b);
			continue;
		}
		if (!b || a->quantity != b->quantity || (a->has_price && b->has_price && a->unit_cents != b->unit_cents))
			drift_add(out, a, b);
	}
	for (size_t i = 0; i < now->nlines; i++) {
		const struct billing_line *b = &now->lines[i];
		if (b->quantity > 0 && !billing_plan_line(then, b->key)) drift_add(out, NULL, b);
	}
}

/* ---------------------------------------------------------------- schedules */

const char *billing_change_kind_name(enum billing_change_kind k)
{
	switch (k) {
	case BILLING_ADD: return "add";
	case BILLING_UPDATE: return "update";
	case BILLING_ZERO: return "zero";
	case BILLING_REMOVE: return "remove";
	}
	return "?";
}

void billing_changes_free(struct billing_changes *c)
{
	if (!c) return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].key);
		free(c->v[i].label);
		free(c->v[i].name);
		free(c->v[i].error);
	}
	free(c->v);
	for (size_t i = 0; i < c->nduplicates; i++) free(c->duplicates[i]);
	free(c->duplicates);
	for (size_t i = 0; i < c->nmanaged; i++) free(c->managed[i]);
	free(c->managed);
	memset(c, 0, sizeof *c);
}

static struct billing_change *change_new(struct billing_changes *c, enum billing_change_kind kind, const char *key,
                                         const char *label)
{
	c->v = xrealloc(c->v, (c->n + 1) * sizeof *c->v);
	struct billing_change *ch = &c->v[c->n++];
	memset(ch, 0, sizeof *ch);
	ch->kind = kind;
	ch->key = xstrdup(key);
	ch->label = xstrdup(label);
	ch->taxable = -1;
	ch->old_cents = ch->new_cents = -1;
	return ch;
}

static void managed_add(struct billing_changes *c, const char *key)
{
	for (size_t i = 0; i < c->nmanaged; i++)
		if (strcmp(c->managed[i], key) == 0) return;
	c->managed = xrealloc(c->managed, (c->nmanaged + 1) * sizeof *c->managed);
	c->managed[c->nmanaged++] = xstrdup(key);
}

static bool key_in(const char *key, const char *const *keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i], key) == 0) return true;
	return false;
}

/* The schedule line matching key (the first one), or -1; *dups counts the
 * others with that key. */
static long long sched_find(const struct billing_sched_line *have, size_t n, const char *key, size_t *dups)
{
	long long found = -1;
	*dups = 0;
	for (size_t i = 0; i < n; i++) {
		char *k = billing_line_key(have[i].product_id, have[i].name);
		bool eq = strcmp(k, key) == 0;
		free(k);
		if (!eq) continue;
		if (found < 0) found = (long long)i;
		else (*dups)++;
	}
	return found;
}

/* The units of a change's decrease (0 when it does not decrease). */
static long long change_decrease(const struct billing_change *ch)
{
	long long d = ch->old_qty_centi - ch->new_qty_centi;
	return d > 0 ? (d + 99) / 100 : 0;
}

int billing_schedule_diff(const struct billing_plan *plan, const struct billing_sched_line *have, size_t n,
                          const char *const *managed, size_t nmanaged, const struct billing_sched_opts *o,
                          struct billing_changes *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	bool *claimed = xcalloc(n + 1, sizeof *claimed);
	for (size_t i = 0; i < plan->nlines; i++) {
		const struct billing_line *l = &plan->lines[i];
		size_t dups = 0;
		long long at = sched_find(have, n, l->key, &dups);
		long long want = l->quantity * 100;
		managed_add(out, l->key);
		if (at < 0) {
			struct billing_change *ch = change_new(out, BILLING_ADD, l->key, billing_line_label(l));
			ch->product_id = l->product_id;
			ch->name = l->name ? xstrdup(l->name) : NULL;
			ch->taxable = l->taxable;
			ch->new_qty_centi = want;
			if (l->has_price && !l->price_from_catalog) {
				ch->new_cents = l->unit_cents;
				ch->set_price = true;
			}
			continue;
		}
		const struct billing_sched_line *h = &have[at];
		claimed[at] = true;
		out->base += (h->qty_centi + 50) / 100;
		if (dups) {
			char *d = xasprintf("schedule line %lld (%s) has %zu duplicate%s with the same %s: only line %lld is "
			                    "kept in step", h->id, billing_line_label(l), dups, dups == 1 ? "" : "s",
			                    l->product_id ? "product" : "name", h->id);
			out->duplicates = xrealloc(out->duplicates, (out->nduplicates + 1) * sizeof *out->duplicates);
			out->duplicates[out->nduplicates++] = d;
		}
		bool price_differs = l->has_price && !l->price_from_catalog && l->unit_cents != h->retail_cents;
		if (h->qty_centi == want && !price_differs) {
			out->unchanged++;
			continue;
		}
		struct billing_change *ch = change_new(out, BILLING_UPDATE, l->key, billing_line_label(l));
		ch->line_id = h->id;
		ch->product_id = h->product_id;
		ch->old_qty_centi = h->qty_centi;
		ch->new_qty_centi = want;
		ch->old_cents = h->retail_cents;
		ch->new_cents = price_differs ? l->unit_cents : h->retail_cents;
		ch->set_price = price_differs;
	}
	/* Managed lines the plan no longer has. */
	for (size_t i = 0; i < n; i++) {
		if (claimed[i]) continue;
		char *k = billing_line_key(have[i].product_id, have[i].name);
		bool ours = key_in(k, managed, nmanaged) && !billing_plan_line(plan, k);
		size_t dups = 0;
		bool first = ours && sched_find(have, n, k, &dups) == (long long)i;
		if (first) {
			out->base += (have[i].qty_centi + 50) / 100;
			const char *label = have[i].name ? have[i].name : k;
			if (o->remove) {
				struct billing_change *ch = change_new(out, BILLING_REMOVE, k, label);
				ch->line_id = have[i].id;
				ch->product_id = have[i].product_id;
				ch->old_qty_centi = have[i].qty_centi;
				ch->old_cents = ch->new_cents = have[i].retail_cents;
			} else if (have[i].qty_centi != 0) {
				struct billing_change *ch = change_new(out, BILLING_ZERO, k, label);
				ch->line_id = have[i].id;
				ch->product_id = have[i].product_id;
				ch->old_qty_centi = have[i].qty_centi;
				ch->old_cents = ch->new_cents = have[i].retail_cents;
				managed_add(out, k);
			} else {
				out->unchanged++;
				managed_add(out, k);
			}
		}
		free(k);
	}
	free(claimed);
	/* The decrease guard. */
	for (size_t i = 0; i < out->n; i++) out->decrease += change_decrease(&out->v[i]);
	long long max_count = o->max_decrease_count >= 0 ? o->max_decrease_count : BILLING_MAX_DECREASE_COUNT;
	double max_pct = o->max_decrease_percent >= 0 ? o->max_decrease_percent : BILLING_MAX_DECREASE_PERCENT;
	double by_pct = floor((double)out->base * max_pct / 100.0);
	double limit = (double)max_count > by_pct ? (double)max_count : by_pct;
	if (!o->allow_decrease && (double)out->decrease > limit) {
		out->held = true;
		snprintf(out->reason, sizeof out->reason, "the billed quantity would drop by %lld units of %lld, more "
		         "than the limit of %.0f (max(%lld, %g %%)): decreases held; rerun with --allow-decrease to apply "
		         "them", out->decrease, out->base, limit, max_count, max_pct);
		for (size_t i = 0; i < out->n; i++)
			if (change_decrease(&out->v[i]) > 0) out->v[i].held = true;
	}
	(void)err;
	return 0;
}
