/* syncro_billing — the Syncro calls billing needs: invoices and their line
 * items, invoice schedules (recurring invoices) and their lines, products.
 * Same service, pacing, 429 holds and result codes as the contact client
 * (syncro.h): requests go to syncro_client_service(sc), so every tenant's
 * billing and sync writes share the one 180/min pace. Facts and quirks:
 * shared/reference/syncro-api.md §8 and syncro-openapi.json:
 *   - line_items sent with a new invoice are dropped by Syncro: an invoice
 *     is created bare, then each line is POSTed to /invoices/{id}/line_items;
 *   - product_id + quantity fills a line's name, price and taxable from the
 *     catalog; fields sent explicitly win;
 *   - invoice money and quantities are decimal text ("22.0"); schedule lines
 *     hold prices in cents (retail_cents); quantities are held here x 100;
 *   - the invoice list has no customer filter: an invoice whose create
 *     answer was lost is found again by the marker entrasync put in its
 *     note, among invoices updated since the intent (since_updated_at);
 *   - schedule lines are removed with POST /schedules/{id}/remove_line_item
 *     {"line_item_id": N} (the spec has no DELETE for them);
 *   - no request is idempotent on Syncro's side: a POST is never retried
 *     once it may have been applied (SYNCRO_UNKNOWN_OUTCOME), except a 429
 *     (not applied), which is sent again after the hold.
 * Synchronous calls (they run the engine loop); results as enum
 * syncro_result with a redacted message in err. Out structs are zeroed
 * first and owned by the caller (free them also after a failure). */
#ifndef ENTRASYNC_SYNCRO_BILLING_H
#define ENTRASYNC_SYNCRO_BILLING_H

#include <stdbool.h>
#include <stddef.h>
#include "http/http.h"
#include "syncro/syncro.h"
#include "util/util.h"

/* The billing calls take a resource (syncro.h) made on the Syncro client
 * with these permissions, which a 401 names:
 *   syncro_resource_new(sc, SYNCRO_BILLING_PERMISSIONS, err)
 * Its request count (syncro_resource_requests) counts the billing calls. */
#define SYNCRO_BILLING_PERMISSIONS "Invoices - Create, Invoices - Edit, Invoices - List/Search, " \
	"Invoices - View Details, Recurring Invoices - List, Recurring Invoices - Edit and Products - List/Search"

/* ---- records ------------------------------------------------------------- */

struct syncro_invoice_line {
	long long id;
	long long product_id;        /* 0 = none */
	char *item;                  /* the line's item name */
	char *name;                  /* its description */
	long long qty_centi;         /* quantity x 100 */
	long long price_cents;
	bool taxable;
};

struct syncro_invoice {
	long long id;
	long long customer_id;
	char *number;
	char *date;
	char *note;
	long long total_cents;
	char *updated_at;
	struct syncro_invoice_line *lines;   /* detail view only */
	size_t nlines;
};
void syncro_invoice_free(struct syncro_invoice *inv);

struct syncro_schedule_line {
	long long id;
	long long product_id;        /* 0 = none */
	char *name;
	char *description;
	long long qty_centi;
	long long retail_cents;
	bool taxable;
};

struct syncro_schedule {
	long long id;
	long long customer_id;
	char *name;
	char *frequency;
	char *next_run;
	bool paused;
	struct syncro_schedule_line *lines;
	size_t nlines;
};
void syncro_schedule_free(struct syncro_schedule *s);
struct syncro_schedule_list {
	struct syncro_schedule *items;
	size_t n;
};
void syncro_schedule_list_free(struct syncro_schedule_list *l);

struct syncro_product {
	long long id;
	char *name;
	char *description;
	long long retail_cents;
	bool taxable;
	bool disabled;
};
void syncro_product_free(struct syncro_product *p);

/* ---- inputs ---------------------------------------------------------------- */

/* A line to add (invoice or schedule). Borrowed strings. */
struct syncro_line_new {
	long long product_id;        /* 0 = a line without product (item/name required) */
	const char *item;            /* invoice: item name; schedule: name. NULL = the catalog's */
	const char *description;     /* invoice: name (description); schedule: description. NULL = catalog's */
	long long quantity;          /* whole units */
	bool set_price;              /* send price_cents (else the catalog's price) */
	long long price_cents;
	int taxable;                 /* -1 = not sent */
};

/* ---- invoices ---------------------------------------------------------------- */

/* POST /invoices {customer_id, date, note} (no line items: they would be
 * dropped). date "YYYY-MM-DD". out (may be NULL) gets the new invoice. */
enum syncro_result syncro_invoice_create(struct syncro_resource *billing, long long customer_id, const char *date,
                                         const char *note, struct syncro_invoice *out, struct err *err);
/* GET /invoices/{id}: the invoice with its line items. */
enum syncro_result syncro_invoice_get(struct syncro_resource *billing, long long id, struct syncro_invoice *out,
                                      struct err *err);
/* The invoice of customer_id whose note holds marker, among invoices
 * updated since `since` (ISO-8601), all pages. SYNCRO_NOT_FOUND when none;
 * several → SYNCRO_AMBIGUOUS naming them. */
enum syncro_result syncro_invoice_find(struct syncro_resource *billing, const char *since, long long customer_id,
                                       const char *marker, struct syncro_invoice *out, struct err *err);
/* POST /invoices/{id}/line_items. out may be NULL. */
enum syncro_result syncro_invoice_line_add(struct syncro_resource *billing, long long invoice_id,
                                           const struct syncro_line_new *l, struct syncro_invoice_line *out,
                                           struct err *err);
/* The JSON body of a line add (new string): for tests and the dry-run
 * recorder. schedule: the schedule line shape (name, retail_cents). */
char *syncro_line_body(const struct syncro_line_new *l, bool schedule);

/* ---- schedules --------------------------------------------------------------- */

/* Every schedule of a customer, all pages, with their lines. */
enum syncro_result syncro_schedules_list(struct syncro_resource *billing, long long customer_id,
                                         struct syncro_schedule_list *out, struct err *err);
enum syncro_result syncro_schedule_get(struct syncro_resource *billing, long long id, struct syncro_schedule *out,
                                       struct err *err);
/* POST /schedules/{id}/add_line_item. out may be NULL. */
enum syncro_result syncro_schedule_line_add(struct syncro_resource *billing, long long schedule_id,
                                            const struct syncro_line_new *l, struct syncro_schedule_line *out,
                                            struct err *err);
/* PUT /schedules/{id}/line_items/{line_id} {quantity[, retail_cents]}. */
enum syncro_result syncro_schedule_line_update(struct syncro_resource *billing, long long schedule_id,
                                               long long line_id, long long qty_centi, bool set_price,
                                               long long retail_cents, struct syncro_schedule_line *out, struct err *err);
/* POST /schedules/{id}/remove_line_item {"line_item_id": line_id}. A line
 * already gone answers SYNCRO_NOT_FOUND. */
enum syncro_result syncro_schedule_line_remove(struct syncro_resource *billing, long long schedule_id,
                                               long long line_id, struct err *err);

/* ---- products ---------------------------------------------------------------- */

enum syncro_result syncro_product_get(struct syncro_resource *billing, long long id, struct syncro_product *out,
                                      struct err *err);

#endif
