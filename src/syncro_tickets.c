/* syncro_tickets — ticket list (status + client-side problem type filter),
 * get, comment, comment search and status update, as synchronous requests on
 * the Syncro client's http service. See syncro_tickets.h. */
#include "syncro_tickets.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "log.h"

#define TICKETS_MAX_PAGES 1000
#define POST_MAX_SENDS 5

struct syncro_tickets {
	struct http_service *svc;
	struct http_lane *lane;
	char *auth;                  /* "Authorization: Bearer <key>" */
	const char *headers[3];
};

struct syncro_tickets *syncro_tickets_new(struct syncro_client *sc, const char *api_key)
{
	struct syncro_tickets *tk = xcalloc(1, sizeof *tk);
	tk->svc = syncro_client_service(sc);
	tk->lane = syncro_client_lane(sc, "tickets");
	tk->auth = xasprintf("Authorization: Bearer %s", api_key ? api_key : "");
	tk->headers[0] = tk->auth;
	tk->headers[1] = "Accept: application/json";
	return tk;
}

void syncro_tickets_free(struct syncro_tickets *tk)
{
	if (!tk) return;
	free(tk->auth);
	free(tk);
}

void syncro_ticket_free(struct syncro_ticket *t)
{
	if (!t) return;
	free(t->subject);
	free(t->problem_type);
	free(t->status);
	memset(t, 0, sizeof *t);
}

void syncro_ticket_list_free(struct syncro_ticket_list *l)
{
	if (!l) return;
	for (size_t i = 0; i < l->n; i++) syncro_ticket_free(&l->items[i]);
	free(l->items);
	memset(l, 0, sizeof *l);
}

static char *json_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? xstrdup(v->valuestring) : NULL;
}

static long long json_id(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsNumber(v)) return (long long)v->valuedouble;
	if (cJSON_IsString(v) && v->valuestring[0]) {
		char *end;
		long long n = strtoll(v->valuestring, &end, 10);
		return *end ? 0 : n;
	}
	return 0;
}

int syncro_ticket_from_json(const cJSON *obj, struct syncro_ticket *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	const cJSON *inner = cJSON_GetObjectItemCaseSensitive(obj, "ticket");
	if (cJSON_IsObject(inner)) obj = inner;
	if (!cJSON_IsObject(obj) || !(out->id = json_id(obj, "id"))) return err_set(err, "a ticket without an id");
	out->number = json_id(obj, "number");
	out->customer_id = json_id(obj, "customer_id");
	out->contact_id = json_id(obj, "contact_id");
	out->subject = json_str(obj, "subject");
	out->problem_type = json_str(obj, "problem_type");
	out->status = json_str(obj, "status");
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

/* One request; *json (may be NULL) gets the parsed 2xx body. */
static enum syncro_result tk_request(struct syncro_tickets *tk, const char *method, const char *url, const char *body,
                                     cJSON **json, struct err *err)
{
	bool post = !strcmp(method, "POST");
	struct http_response resp = { 0 };
	enum syncro_result rc = SYNCRO_FAILED;
	if (json) *json = NULL;
	for (int sends = 1;; sends++) {
		http_response_free(&resp);
		int r = http_do(tk->svc, &(struct http_request){
			.method = method, .url = url, .headers = tk->headers, .body = body,
			.body_len = body ? strlen(body) : 0, .content_type = body ? "application/json" : NULL,
			.lane = tk->lane }, &resp, err);
		if (r != 0) {
			rc = post ? SYNCRO_UNKNOWN_OUTCOME : SYNCRO_FAILED;
			err_prefix(err, "Syncro %s %s", method, url);
			goto out;
		}
		/* a 429 means "not applied": the service hook has held the lanes for
		 * the window, so sending again now waits it out */
		if (resp.status == 429 && post && sends < POST_MAX_SENDS) continue;
		break;
	}
	long st = resp.status;
	if (st >= 200 && st < 300) {
		cJSON *root = resp.body.len ? cJSON_ParseWithLength(resp.body.data, resp.body.len) : NULL;
		if (!root && json) {
			rc = post ? SYNCRO_UNKNOWN_OUTCOME : SYNCRO_FAILED;
			err_set(err, "Syncro %s %s: unreadable answer (status %ld)", method, url, st);
			goto out;
		}
		if (json) *json = root;
		else cJSON_Delete(root);
		rc = SYNCRO_OK;
		goto out;
	}
	struct buf msg = {0};
	syncro_error_text(resp.body.data, &msg);
	if (st == 404) rc = SYNCRO_NOT_FOUND;
	else if (st == 422) rc = SYNCRO_INVALID;
	else if (st == 401) rc = SYNCRO_UNAUTHORIZED;
	else if (post && st >= 500) rc = SYNCRO_UNKNOWN_OUTCOME;
	else rc = SYNCRO_FAILED;
	err_set(err, "Syncro %s %s: %ld%s%s%s", method, url, st, msg.len ? " (" : "", msg.len ? msg.data : "",
	        msg.len ? ")" : "");
	if (st == 401) err_prefix(err, "the Syncro API token lacks a ticket permission (Tickets - View/Edit)");
	buf_free(&msg);
out:
	http_response_free(&resp);
	if (rc != SYNCRO_OK) log_redact_err(err);
	return rc;
}

static bool page_more(const cJSON *root, const cJSON *items, long page)
{
	const cJSON *total = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "meta"),
	                                                      "total_pages");
	if (page >= TICKETS_MAX_PAGES) return false;
	if (cJSON_IsNumber(total)) return (double)page < total->valuedouble;
	return cJSON_GetArraySize(items) > 0;
}

enum syncro_result syncro_tickets_list(struct syncro_tickets *tk, const char *status, const char *problem_type,
                                       struct syncro_ticket_list *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	size_t cap = 0;
	enum syncro_result rc = SYNCRO_OK;
	for (long page = 1;; page++) {
		struct buf url = {0};
		buf_printf(&url, "/tickets?page=%ld", page);
		if (status) {
			buf_adds(&url, "&status=");
			query_value(&url, status);
		}
		if (problem_type) {
			buf_adds(&url, "&query=");
			query_value(&url, problem_type);
		}
		cJSON *root = NULL;
		rc = tk_request(tk, "GET", url.data, NULL, &root, err);
		buf_free(&url);
		if (rc != SYNCRO_OK) break;
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "tickets");
		if (!cJSON_IsArray(items)) {
			cJSON_Delete(root);
			rc = SYNCRO_FAILED;
			err_set(err, "Syncro GET /tickets: the answer has no \"tickets\" list");
			break;
		}
		const cJSON *it;
		cJSON_ArrayForEach(it, items) {
			struct syncro_ticket t;
			struct err e2;
			if (syncro_ticket_from_json(it, &t, &e2) != 0) continue;
			if (problem_type && !(t.problem_type && str_ieq(t.problem_type, problem_type))) {
				syncro_ticket_free(&t);
				continue;
			}
			if (out->n == cap) {
				cap = cap ? cap * 2 : 16;
				out->items = xrealloc(out->items, cap * sizeof *out->items);
			}
			out->items[out->n++] = t;
		}
		bool more = page_more(root, items, page);
		cJSON_Delete(root);
		if (!more) break;
	}
	if (rc != SYNCRO_OK) syncro_ticket_list_free(out);
	return rc;
}

enum syncro_result syncro_ticket_get(struct syncro_tickets *tk, long long id, struct syncro_ticket *out,
                                     struct err *err)
{
	memset(out, 0, sizeof *out);
	char url[64];
	snprintf(url, sizeof url, "/tickets/%lld", id);
	cJSON *root = NULL;
	enum syncro_result rc = tk_request(tk, "GET", url, NULL, &root, err);
	if (rc == SYNCRO_OK && syncro_ticket_from_json(root, out, err) != 0) rc = SYNCRO_FAILED;
	cJSON_Delete(root);
	return rc;
}

enum syncro_result syncro_ticket_comment_add(struct syncro_tickets *tk, long long id, const char *subject,
                                             const char *body, bool hidden, struct err *err)
{
	char url[64];
	snprintf(url, sizeof url, "/tickets/%lld/comment", id);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "subject", subject);
	cJSON_AddStringToObject(o, "body", body);
	cJSON_AddBoolToObject(o, "hidden", hidden);
	cJSON_AddBoolToObject(o, "do_not_email", 1);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	cJSON *root = NULL;
	enum syncro_result rc = tk_request(tk, "POST", url, text, &root, err);
	free(text);
	cJSON_Delete(root);
	return rc;
}

enum syncro_result syncro_ticket_comment_find(struct syncro_tickets *tk, long long id, const char *needle,
                                              bool *found, struct err *err)
{
	*found = false;
	enum syncro_result rc = SYNCRO_OK;
	for (long page = 1; !*found; page++) {
		char url[96];
		snprintf(url, sizeof url, "/tickets/%lld/comments?page=%ld", id, page);
		cJSON *root = NULL;
		rc = tk_request(tk, "GET", url, NULL, &root, err);
		if (rc != SYNCRO_OK) break;
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "comments");
		if (!cJSON_IsArray(items)) items = cJSON_IsArray(root) ? root : NULL;
		const cJSON *it;
		cJSON_ArrayForEach(it, items) {
			const cJSON *b = cJSON_GetObjectItemCaseSensitive(it, "body");
			if (cJSON_IsString(b) && strstr(b->valuestring, needle)) *found = true;
		}
		bool more = items && page_more(root, items, page);
		cJSON_Delete(root);
		if (!more) break;
	}
	return rc;
}

enum syncro_result syncro_ticket_set_status(struct syncro_tickets *tk, long long id, const char *status,
                                            struct err *err)
{
	char url[64];
	snprintf(url, sizeof url, "/tickets/%lld", id);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", status);
	char *text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	enum syncro_result rc = tk_request(tk, "PUT", url, text, NULL, err);
	free(text);
	return rc;
}
