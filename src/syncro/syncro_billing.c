/* syncro_billing — invoices, invoice schedules and products on the Syncro
 * service (see syncro_billing.h): requests through syncro_resource_request
 * (the client's header, pacing, 429 resends and result codes); JSON shapes
 * for each record; paging by meta.total_pages or until an empty page. */
#include "syncro/syncro_billing.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_PAGES 10000

/* ---- records --------------------------------------------------------------- */

void syncro_invoice_free(struct syncro_invoice *inv)
{
	if (!inv) return;
	for (size_t i = 0; i < inv->nlines; i++) {
		free(inv->lines[i].item);
		free(inv->lines[i].name);
	}
	free(inv->lines);
	free(inv->number);
	free(inv->date);
	free(inv->note);
	free(inv->updated_at);
	memset(inv, 0, sizeof *inv);
}

static void schedule_line_free(struct syncro_schedule_line *l)
{
	free(l->name);
	free(l->description);
	memset(l, 0, sizeof *l);
}

void syncro_schedule_free(struct syncro_schedule *s)
{
	if (!s) return;
	for (size_t i = 0; i < s->nlines; i++) schedule_line_free(&s->lines[i]);
	free(s->lines);
	free(s->name);
	free(s->frequency);
	free(s->next_run);
	memset(s, 0, sizeof *s);
}

void syncro_schedule_list_free(struct syncro_schedule_list *l)
{
	if (!l) return;
	for (size_t i = 0; i < l->n; i++) syncro_schedule_free(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof *l);
}

void syncro_product_free(struct syncro_product *p)
{
	if (!p) return;
	free(p->name);
	free(p->description);
	memset(p, 0, sizeof *p);
}

/* ---- JSON reading ------------------------------------------------------------ */

static const cJSON *member(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* The object itself, or its "wrapper" member when it has one. */
static const cJSON *unwrap(const cJSON *o, const char *wrapper)
{
	const cJSON *w = member(o, wrapper);
	return cJSON_IsObject(w) ? w : o;
}

static char *text_of(const cJSON *o, const char *k)
{
	const cJSON *v = member(o, k);
	return cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
}

/* A number given as a JSON number or as decimal text ("22.0"). */
static bool number_of(const cJSON *o, const char *k, double *out)
{
	const cJSON *v = member(o, k);
	char *end;
	if (cJSON_IsNumber(v)) {
		*out = v->valuedouble;
		return true;
	}
	if (cJSON_IsString(v) && v->valuestring[0]) {
		*out = strtod(v->valuestring, &end);
		return *end == '\0' && isfinite(*out);
	}
	return false;
}

static long long id_of(const cJSON *o, const char *k)
{
	double d;
	return number_of(o, k, &d) ? (long long)d : 0;
}

/* x 100, rounded: cents of a dollar amount, hundredths of a quantity. */
static long long hundredths_of(const cJSON *o, const char *k)
{
	double d;
	return number_of(o, k, &d) ? llround(d * 100.0) : 0;
}

static bool bool_of(const cJSON *o, const char *k)
{
	return cJSON_IsTrue(member(o, k));
}

static int invoice_line_from_json(const cJSON *o, struct syncro_invoice_line *out)
{
	memset(out, 0, sizeof *out);
	o = unwrap(o, "line_item");
	if (!cJSON_IsObject(o) || (out->id = id_of(o, "id")) <= 0) return -1;
	out->product_id = id_of(o, "product_id");
	out->item = text_of(o, "item");
	out->name = text_of(o, "name");
	out->qty_centi = hundredths_of(o, "quantity");
	out->price_cents = hundredths_of(o, "price");
	out->taxable = bool_of(o, "taxable");
	return 0;
}

static int invoice_from_json(const cJSON *o, struct syncro_invoice *out)
{
	memset(out, 0, sizeof *out);
	o = unwrap(o, "invoice");
	if (!cJSON_IsObject(o) || (out->id = id_of(o, "id")) <= 0) return -1;
	out->customer_id = id_of(o, "customer_id");
	out->number = text_of(o, "number");
	out->date = text_of(o, "date");
	out->note = text_of(o, "note");
	out->updated_at = text_of(o, "updated_at");
	out->total_cents = hundredths_of(o, "total");
	const cJSON *lines = member(o, "line_items"), *it;
	if (cJSON_IsArray(lines)) {
		out->lines = xcalloc((size_t)cJSON_GetArraySize(lines) + 1, sizeof *out->lines);
		cJSON_ArrayForEach(it, lines) {
			if (invoice_line_from_json(it, &out->lines[out->nlines]) != 0) return -1;
			out->nlines++;
		}
	}
	return 0;
}

static int schedule_line_from_json(const cJSON *o, struct syncro_schedule_line *out)
{
	memset(out, 0, sizeof *out);
	o = unwrap(o, "schedule_line_item");
	if (!cJSON_IsObject(o) || (out->id = id_of(o, "id")) <= 0) return -1;
	out->product_id = id_of(o, "product_id");
	out->name = text_of(o, "name");
	out->description = text_of(o, "description");
	out->qty_centi = hundredths_of(o, "quantity");
	double d;
	if (number_of(o, "retail_cents", &d)) out->retail_cents = llround(d);
	else out->retail_cents = hundredths_of(o, "price_retail");
	out->taxable = bool_of(o, "taxable");
	return 0;
}

static int schedule_from_json(const cJSON *o, struct syncro_schedule *out)
{
	memset(out, 0, sizeof *out);
	o = unwrap(o, "schedule");
	if (!cJSON_IsObject(o) || (out->id = id_of(o, "id")) <= 0) return -1;
	out->customer_id = id_of(o, "customer_id");
	out->name = text_of(o, "name");
	out->frequency = text_of(o, "frequency");
	out->next_run = text_of(o, "next_run");
	out->paused = bool_of(o, "paused");
	const cJSON *lines = member(o, "lines"), *it;
	if (cJSON_IsArray(lines)) {
		out->lines = xcalloc((size_t)cJSON_GetArraySize(lines) + 1, sizeof *out->lines);
		cJSON_ArrayForEach(it, lines) {
			if (schedule_line_from_json(it, &out->lines[out->nlines]) != 0) return -1;
			out->nlines++;
		}
	}
	return 0;
}

static int product_from_json(const cJSON *o, struct syncro_product *out)
{
	memset(out, 0, sizeof *out);
	o = unwrap(o, "product");
	if (!cJSON_IsObject(o) || (out->id = id_of(o, "id")) <= 0) return -1;
	out->name = text_of(o, "name");
	out->description = text_of(o, "description");
	out->retail_cents = hundredths_of(o, "price_retail");
	out->taxable = bool_of(o, "taxable");
	out->disabled = bool_of(o, "disabled");
	return 0;
}

/* ---- requests ------------------------------------------------------------------ */

/* How a request may be treated when its answer is lost. */
enum sb_kind {
	SB_READ,                     /* GET: retried by the engine */
	SB_CREATE,                   /* POST that creates: never resent once it may have applied */
	SB_REPEATABLE,               /* PUT, or a POST whose repeat is harmless (remove_line_item) */
};

/* Appends s percent-encoded for a query value. */
static void add_query_value(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p)) buf_addc(b, (char)*p);
		else buf_printf(b, "%%%02X", *p);
	}
}

/* The request for syncro_resource_request / _record (what = "create
 * invoice (customer 101)" for messages). */
static struct syncro_req sb_req(const char *method, const char *url, const char *body, enum sb_kind kind,
                                const char *what)
{
	return (struct syncro_req){ .method = method, .path = url, .body = body, .what = what,
	                            .repeatable = kind == SB_REPEATABLE };
}

/* Sends one request. On SYNCRO_OK, *root (root may be NULL: the answer is
 * then not read) is the parsed answer (caller deletes). */
static enum syncro_result sb_request(struct syncro_resource *billing, const char *method, const char *url,
                                     const char *body, enum sb_kind kind, const char *what, cJSON **root,
                                     struct err *err)
{
	const struct syncro_req rq = sb_req(method, url, body, kind, what);
	return syncro_resource_request(billing, &rq, root, err);
}

/* A request whose answer is one record, parsed with from (failure →
 * "unexpected answer", an unknown outcome for a create). */
static enum syncro_result sb_record(struct syncro_resource *billing, const char *method, const char *url,
                                    const char *body, enum sb_kind kind, const char *what,
                                    int (*from)(const cJSON *, void *), void *out, struct err *err)
{
	const struct syncro_req rq = sb_req(method, url, body, kind, what);
	return syncro_resource_record(billing, &rq, from, out, err);
}

/* Adapters for sb_record. */
static int invoice_cb(const cJSON *o, void *out) { return invoice_from_json(o, out); }
static int invoice_line_cb(const cJSON *o, void *out) { return invoice_line_from_json(o, out); }
static int schedule_cb(const cJSON *o, void *out) { return schedule_from_json(o, out); }
static int schedule_line_cb(const cJSON *o, void *out) { return schedule_line_from_json(o, out); }
static int product_cb(const cJSON *o, void *out) { return product_from_json(o, out); }

/* ---- invoices -------------------------------------------------------------------- */

enum syncro_result syncro_invoice_create(struct syncro_resource *billing, long long customer_id, const char *date,
                                         const char *note, struct syncro_invoice *out, struct err *err)
{
	struct syncro_invoice tmp;
	if (!out) out = &tmp;
	memset(out, 0, sizeof *out);
	cJSON *body = cJSON_CreateObject();
	cJSON_AddNumberToObject(body, "customer_id", (double)customer_id);
	if (date) cJSON_AddStringToObject(body, "date", date);
	if (note) cJSON_AddStringToObject(body, "note", note);
	char *text = cJSON_PrintUnformatted(body);
	char what[96];
	snprintf(what, sizeof what, "create invoice (customer %lld)", customer_id);
	enum syncro_result rc = sb_record(billing, "POST", "/invoices", text, SB_CREATE, what, invoice_cb, out, err);
	free(text);
	cJSON_Delete(body);
	if (out == &tmp) syncro_invoice_free(&tmp);
	return rc;
}

enum syncro_result syncro_invoice_get(struct syncro_resource *billing, long long id, struct syncro_invoice *out,
                                      struct err *err)
{
	memset(out, 0, sizeof *out);
	char url[64], what[64];
	snprintf(url, sizeof url, "/invoices/%lld", id);
	snprintf(what, sizeof what, "get invoice %lld", id);
	return sb_record(billing, "GET", url, NULL, SB_READ, what, invoice_cb, out, err);
}

enum syncro_result syncro_invoice_find(struct syncro_resource *billing, const char *since, long long customer_id,
                                       const char *marker, struct syncro_invoice *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	enum syncro_result rc = SYNCRO_NOT_FOUND;
	struct buf ids = {0};
	size_t found = 0;
	struct syncro_pages pages;
	int restarts = 0;
	for (long long page = 1;; page++) {
		struct buf url = {0};
		buf_adds(&url, "/invoices?since_updated_at=");
		add_query_value(&url, since);
		buf_printf(&url, "&page=%lld", page);
		cJSON *root;
		char what[96];
		snprintf(what, sizeof what, "list invoices updated since %s (page %lld)", since, page);
		enum syncro_result r = sb_request(billing, "GET", url.data, NULL, SB_READ, what, &root, err);
		buf_free(&url);
		if (r != SYNCRO_OK) {
			rc = r;
			break;
		}
		const cJSON *items = member(root, "invoices"), *it;
		if (!cJSON_IsArray(items)) {
			cJSON_Delete(root);
			err_set(err, "Syncro: %s: the answer has no \"invoices\" list", what);
			rc = SYNCRO_FAILED;
			break;
		}
		cJSON_ArrayForEach(it, items) {
			const char *note = cJSON_IsString(member(it, "note")) ? member(it, "note")->valuestring : NULL;
			if (id_of(it, "customer_id") != customer_id || !note || !strstr(note, marker)) continue;
			buf_printf(&ids, "%s%lld", found ? ", " : "", id_of(it, "id"));
			if (found++ == 0 && invoice_from_json(it, out) != 0) syncro_invoice_free(out);
		}
		char why[200];
		int more = syncro_pages_next(&pages, page, SB_MAX_PAGES, root, items, why, sizeof why);
		cJSON_Delete(root);
		if (more < 0) {   /* a listing that may miss the invoice must not say "not there": that makes a second */
			if (restarts++ == 0) {
				syncro_invoice_free(out);
				memset(out, 0, sizeof *out);
				buf_free(&ids);
				found = 0;
				page = 0;
				continue;
			}
			err_set(err, "Syncro: %s: the listing changed while it was read, twice (%s): not trusted", what, why);
			rc = SYNCRO_FAILED;
			break;
		}
		if (!more) {
			rc = found == 1 && out->id ? SYNCRO_OK : found > 1 ? SYNCRO_AMBIGUOUS : SYNCRO_NOT_FOUND;
			if (rc == SYNCRO_AMBIGUOUS)
				err_set(err, "Syncro: %zu invoices of customer %lld carry the marker %s (%s)", found, customer_id,
				        marker, ids.data);
			else if (rc == SYNCRO_NOT_FOUND)
				err_set(err, "Syncro: no invoice of customer %lld carries the marker %s", customer_id, marker);
			break;
		}
	}
	buf_free(&ids);
	return rc;
}

char *syncro_line_body(const struct syncro_line_new *l, bool schedule)
{
	cJSON *o = cJSON_CreateObject();
	if (l->product_id) cJSON_AddNumberToObject(o, "product_id", (double)l->product_id);
	if (l->item) cJSON_AddStringToObject(o, schedule ? "name" : "item", l->item);
	if (l->description) cJSON_AddStringToObject(o, schedule ? "description" : "name", l->description);
	cJSON_AddNumberToObject(o, "quantity", (double)l->quantity);
	if (l->set_price && schedule) cJSON_AddNumberToObject(o, "retail_cents", (double)l->price_cents);
	if (l->set_price && !schedule) cJSON_AddNumberToObject(o, "price", (double)l->price_cents / 100.0);
	if (l->taxable >= 0) cJSON_AddBoolToObject(o, "taxable", l->taxable);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

enum syncro_result syncro_invoice_line_add(struct syncro_resource *billing, long long invoice_id,
                                           const struct syncro_line_new *l, struct syncro_invoice_line *out,
                                           struct err *err)
{
	struct syncro_invoice_line tmp;
	if (!out) out = &tmp;
	memset(out, 0, sizeof *out);
	char *body = syncro_line_body(l, false);
	char url[64], what[96];
	snprintf(url, sizeof url, "/invoices/%lld/line_items", invoice_id);
	snprintf(what, sizeof what, "add a line to invoice %lld", invoice_id);
	enum syncro_result rc = sb_record(billing, "POST", url, body, SB_CREATE, what, invoice_line_cb, out, err);
	free(body);
	if (out == &tmp) {
		free(tmp.item);
		free(tmp.name);
	}
	return rc;
}

/* ---- schedules ------------------------------------------------------------------- */

enum syncro_result syncro_schedules_list(struct syncro_resource *billing, long long customer_id,
                                         struct syncro_schedule_list *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	struct syncro_pages pages;
	int restarts = 0;
	for (long long page = 1;; page++) {
		char url[96], what[96];
		snprintf(url, sizeof url, "/schedules?customer_id=%lld&page=%lld", customer_id, page);
		snprintf(what, sizeof what, "list the schedules of customer %lld (page %lld)", customer_id, page);
		cJSON *root;
		enum syncro_result rc = sb_request(billing, "GET", url, NULL, SB_READ, what, &root, err);
		if (rc != SYNCRO_OK) return rc;
		const cJSON *items = member(root, "schedules"), *it;
		if (!cJSON_IsArray(items)) {
			cJSON_Delete(root);
			err_set(err, "Syncro: %s: the answer has no \"schedules\" list", what);
			return SYNCRO_FAILED;
		}
		out->items = xrealloc(out->items, (out->n + (size_t)cJSON_GetArraySize(items) + 1) * sizeof *out->items);
		cJSON_ArrayForEach(it, items) {
			if (schedule_from_json(it, &out->items[out->n]) != 0) {
				syncro_schedule_free(&out->items[out->n]);
				cJSON_Delete(root);
				err_set(err, "Syncro: %s: a schedule without an id", what);
				return SYNCRO_FAILED;
			}
			if (out->items[out->n].customer_id == customer_id) out->n++;
			else syncro_schedule_free(&out->items[out->n]);
		}
		char why[200];
		int more = syncro_pages_next(&pages, page, SB_MAX_PAGES, root, items, why, sizeof why);
		cJSON_Delete(root);
		if (more < 0) {
			syncro_schedule_list_free(out);
			if (restarts++ == 0) {
				page = 0;
				continue;
			}
			err_set(err, "Syncro: %s: the listing changed while it was read, twice (%s): not trusted", what, why);
			return SYNCRO_FAILED;
		}
		if (!more) return SYNCRO_OK;
	}
}

enum syncro_result syncro_schedule_get(struct syncro_resource *billing, long long id, struct syncro_schedule *out,
                                       struct err *err)
{
	memset(out, 0, sizeof *out);
	char url[64], what[64];
	snprintf(url, sizeof url, "/schedules/%lld", id);
	snprintf(what, sizeof what, "get schedule %lld", id);
	return sb_record(billing, "GET", url, NULL, SB_READ, what, schedule_cb, out, err);
}

enum syncro_result syncro_schedule_line_add(struct syncro_resource *billing, long long schedule_id,
                                            const struct syncro_line_new *l, struct syncro_schedule_line *out,
                                            struct err *err)
{
	struct syncro_schedule_line tmp;
	if (!out) out = &tmp;
	memset(out, 0, sizeof *out);
	char *body = syncro_line_body(l, true);
	char url[64], what[96];
	snprintf(url, sizeof url, "/schedules/%lld/add_line_item", schedule_id);
	snprintf(what, sizeof what, "add a line to schedule %lld", schedule_id);
	enum syncro_result rc = sb_record(billing, "POST", url, body, SB_CREATE, what, schedule_line_cb, out, err);
	free(body);
	if (out == &tmp) schedule_line_free(&tmp);
	return rc;
}

enum syncro_result syncro_schedule_line_update(struct syncro_resource *billing, long long schedule_id,
                                               long long line_id, long long qty_centi, bool set_price,
                                               long long retail_cents, struct syncro_schedule_line *out, struct err *err)
{
	struct syncro_schedule_line tmp;
	if (!out) out = &tmp;
	memset(out, 0, sizeof *out);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "quantity", (double)qty_centi / 100.0);
	if (set_price) cJSON_AddNumberToObject(o, "retail_cents", (double)retail_cents);
	char *body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	char url[96], what[96];
	snprintf(url, sizeof url, "/schedules/%lld/line_items/%lld", schedule_id, line_id);
	snprintf(what, sizeof what, "update line %lld of schedule %lld", line_id, schedule_id);
	enum syncro_result rc = sb_record(billing, "PUT", url, body, SB_REPEATABLE, what, schedule_line_cb, out, err);
	free(body);
	if (out == &tmp) schedule_line_free(&tmp);
	return rc;
}

enum syncro_result syncro_schedule_line_remove(struct syncro_resource *billing, long long schedule_id,
                                               long long line_id, struct err *err)
{
	char url[96], what[96], body[48];
	snprintf(url, sizeof url, "/schedules/%lld/remove_line_item", schedule_id);
	snprintf(what, sizeof what, "remove line %lld from schedule %lld", line_id, schedule_id);
	snprintf(body, sizeof body, "{\"line_item_id\":%lld}", line_id);
	return sb_request(billing, "POST", url, body, SB_REPEATABLE, what, NULL, err);
}

/* ---- products -------------------------------------------------------------------- */

enum syncro_result syncro_product_get(struct syncro_resource *billing, long long id, struct syncro_product *out,
                                      struct err *err)
{
	memset(out, 0, sizeof *out);
	char url[64], what[64];
	snprintf(url, sizeof url, "/products/%lld", id);
	snprintf(what, sizeof what, "get product %lld", id);
	return sb_record(billing, "GET", url, NULL, SB_READ, what, product_cb, out, err);
}
