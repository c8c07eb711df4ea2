/* syncro_tickets_open — open tickets of a problem type (status + query on
 * Syncro's side, the exact problem type here) and the marker search in a
 * ticket's comments: paged GETs with syncro_request on the Syncro client. See syncro_tickets_open.h. */
#include "syncro/syncro_tickets_open.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>


#define TICKETS_MAX_PAGES 1000

void syncro_open_ticket_free(struct syncro_open_ticket *t)
{
	if (!t) return;
	free(t->number);
	free(t->subject);
	free(t->problem_type);
	free(t->status);
	memset(t, 0, sizeof *t);
}

void syncro_open_tickets_free(struct syncro_open_tickets *l)
{
	if (!l) return;
	for (size_t i = 0; i < l->n; i++) syncro_open_ticket_free(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof *l);
}

static char *text_of(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsString(v)) return xstrdup(v->valuestring);
	if (cJSON_IsNumber(v)) return xasprintf("%.0f", v->valuedouble);
	return NULL;
}

/* A positive id from a number or a string of digits, else 0. */
static long long id_of(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsNumber(v)) return v->valuedouble > 0 ? (long long)v->valuedouble : 0;
	if (cJSON_IsString(v) && v->valuestring[0]) {
		char *end;
		long long n = strtoll(v->valuestring, &end, 10);
		return *end || n < 0 ? 0 : n;
	}
	return 0;
}

int syncro_open_ticket_from_json(const cJSON *obj, struct syncro_open_ticket *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	const cJSON *inner = cJSON_GetObjectItemCaseSensitive(obj, "ticket");
	if (cJSON_IsObject(inner)) obj = inner;
	if (!cJSON_IsObject(obj) || !(out->id = id_of(obj, "id"))) return err_set(err, "a ticket without an id");
	out->customer_id = id_of(obj, "customer_id");
	out->contact_id = id_of(obj, "contact_id");
	out->number = text_of(obj, "number");
	out->subject = text_of(obj, "subject");
	out->problem_type = text_of(obj, "problem_type");
	out->status = text_of(obj, "status");
	return 0;
}

/* Appends s percent-encoded as a query value. */
static void query_value(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p)) buf_addc(b, (char)*p);
		else buf_printf(b, "%%%02X", *p);
	}
}

/* One GET on the lane "tickets"; *json gets the parsed 2xx body (cJSON_Delete). */
static enum syncro_result get_json(struct syncro_client *sc, const char *url, cJSON **json, struct err *err)
{
	const struct syncro_req rq = { .path = url, .lane = syncro_client_lane(sc, "tickets"),
	                               .permissions = "Tickets - List/Search, Tickets - View Details" };
	return syncro_request(sc, &rq, json, err);
}

/* Every ticket of GET /tickets?page=N&<filters> (filters: "" or
 * "&status=…&…"), all pages, those whose problem type is problem_type
 * (NULL = any). */
static enum syncro_result tickets_list(struct syncro_client *sc, const char *filters, const char *problem_type,
                                       struct syncro_open_tickets *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	size_t cap = 0;
	enum syncro_result rc = SYNCRO_OK;
	struct syncro_pages pages;
	int restarts = 0;
	for (long page = 1;; page++) {
		char *url = xasprintf("/tickets?page=%ld%s", page, filters);
		cJSON *root = NULL;
		rc = get_json(sc, url, &root, err);
		free(url);
		if (rc != SYNCRO_OK) break;
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "tickets"), *it;
		if (!cJSON_IsArray(items)) {
			cJSON_Delete(root);
			rc = SYNCRO_FAILED;
			err_set(err, "Syncro: GET /tickets: the answer has no \"tickets\" list");
			break;
		}
		cJSON_ArrayForEach(it, items) {
			struct syncro_open_ticket t;
			struct err skip;
			if (syncro_open_ticket_from_json(it, &t, &skip) != 0) continue;
			if (problem_type && !(t.problem_type && str_ieq(t.problem_type, problem_type))) {
				syncro_open_ticket_free(&t);
				continue;
			}
			if (out->n == cap) {
				cap = cap ? cap * 2 : 16;
				out->items = xrealloc(out->items, cap * sizeof *out->items);
			}
			out->items[out->n++] = t;
		}
		char why[200];
		int more = syncro_pages_next(&pages, page, TICKETS_MAX_PAGES, root, items, why, sizeof why);
		cJSON_Delete(root);
		if (more < 0) {   /* a ticket missed would be acted on late, or an alert's made twice */
			syncro_open_tickets_free(out);
			cap = 0;
			if (restarts++ == 0) {
				page = 0;
				continue;
			}
			err_set(err, "Syncro: GET /tickets: the listing changed while it was read, twice (%s): not trusted", why);
			rc = SYNCRO_FAILED;
			break;
		}
		if (!more) break;
	}
	if (rc != SYNCRO_OK) syncro_open_tickets_free(out);
	return rc;
}

enum syncro_result syncro_open_tickets_list(struct syncro_client *sc, const char *status,
                                            const char *problem_type, struct syncro_open_tickets *out,
                                            struct err *err)
{
	struct buf f = {0};
	if (status) {
		buf_adds(&f, "&status=");
		query_value(&f, status);
	}
	if (problem_type) {
		buf_adds(&f, "&query=");
		query_value(&f, problem_type);
	}
	enum syncro_result rc = tickets_list(sc, f.data ? f.data : "", problem_type, out, err);
	buf_free(&f);
	return rc;
}

enum syncro_result syncro_tickets_of_customer(struct syncro_client *sc, long long customer_id, const char *status,
                                              struct syncro_open_tickets *out, struct err *err)
{
	struct buf f = {0};
	buf_printf(&f, "&customer_id=%lld", customer_id);
	if (status) {
		buf_adds(&f, "&status=");
		query_value(&f, status);
	}
	enum syncro_result rc = tickets_list(sc, f.data, NULL, out, err);
	buf_free(&f);
	return rc;
}

enum syncro_result syncro_ticket_comment_find(struct syncro_client *sc, long long id,
                                              const char *needle, bool *found, struct err *err)
{
	*found = false;
	enum syncro_result rc = SYNCRO_OK;
	struct syncro_pages pages;
	int restarts = 0;
	for (long page = 1; !*found; page++) {
		char url[96];
		snprintf(url, sizeof url, "/tickets/%lld/comments?page=%ld", id, page);
		cJSON *root = NULL;
		rc = get_json(sc, url, &root, err);
		if (rc != SYNCRO_OK) break;
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "comments"), *it;
		if (!cJSON_IsArray(items)) items = cJSON_IsArray(root) ? root : NULL;
		cJSON_ArrayForEach(it, items) {
			const cJSON *b = cJSON_GetObjectItemCaseSensitive(it, "body");
			if (cJSON_IsString(b) && strstr(b->valuestring, needle)) *found = true;
		}
		char why[200];
		int more = items ? syncro_pages_next(&pages, page, TICKETS_MAX_PAGES, root, items, why, sizeof why) : 0;
		cJSON_Delete(root);
		if (more < 0 && !*found) {   /* a missed comment would be posted a second time */
			if (restarts++ == 0) {
				page = 0;
				continue;
			}
			err_set(err, "Syncro: GET /tickets/%lld/comments: the listing changed while it was read, twice (%s): "
			        "not trusted", id, why);
			rc = SYNCRO_FAILED;
			break;
		}
		if (more <= 0) break;
	}
	return rc;
}
