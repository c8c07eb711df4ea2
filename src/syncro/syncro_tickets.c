/* syncro_tickets — the ticket calls (see syncro_tickets.h), made with
 * syncro_resource_request on the Syncro client, so that they share its
 * pacing, 429 holds, header and result rules. Messages: "Syncro: <what>: ...". */
#include "syncro/syncro_tickets.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void syncro_ticket_free(struct syncro_ticket *t)
{
	if (!t) return;
	free(t->number);
	free(t->subject);
	free(t->status);
	free(t->problem_type);
	memset(t, 0, sizeof *t);
}

bool syncro_ticket_closed(const char *status)
{
	return status && (str_ieq(status, "Resolved") || str_ieq(status, "Closed"));
}

static char *json_text(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (cJSON_IsString(v)) return xstrdup(v->valuestring);
	if (cJSON_IsNumber(v)) return xasprintf("%.0f", v->valuedouble);
	return NULL;
}

int syncro_ticket_from_json(const cJSON *obj, struct syncro_ticket *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "ticket");
	if (!cJSON_IsObject(t)) t = obj;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "id");
	if (!cJSON_IsNumber(id) || id->valuedouble <= 0) return err_set(err, "a ticket without a numeric id");
	out->id = (long long)id->valuedouble;
	const cJSON *cid = cJSON_GetObjectItemCaseSensitive(t, "customer_id");
	if (cJSON_IsNumber(cid)) out->customer_id = (long long)cid->valuedouble;
	out->number = json_text(t, "number");
	out->subject = json_text(t, "subject");
	out->status = json_text(t, "status");
	out->problem_type = json_text(t, "problem_type");
	return 0;
}

/* Adapter for syncro_resource_record. */
static int ticket_cb(const cJSON *answer, void *out)
{
	struct err e = {{0}};
	return syncro_ticket_from_json(answer, out, &e);
}

/* One ticket request; a record request when out is not NULL. */
static enum syncro_result send(struct syncro_resource *tickets, const char *method, const char *url,
                               const char *body, const char *what, struct syncro_ticket *out, struct err *err)
{
	const struct syncro_req rq = { .method = method, .path = url, .body = body, .what = what };
	if (!out) return syncro_resource_request(tickets, &rq, NULL, err);
	return syncro_resource_record(tickets, &rq, ticket_cb, out, err);
}

enum syncro_result syncro_ticket_create(struct syncro_resource *tickets, const struct syncro_ticket_new *t,
                                        struct syncro_ticket *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	if (t->customer_id <= 0 || !t->subject || !*t->subject)
		return err_set(err, "Syncro: create ticket: a customer id and a subject are needed"), SYNCRO_INVALID;
	cJSON *b = cJSON_CreateObject();
	cJSON_AddNumberToObject(b, "customer_id", (double)t->customer_id);
	cJSON_AddStringToObject(b, "subject", t->subject);
	if (t->problem_type) cJSON_AddStringToObject(b, "problem_type", t->problem_type);
	cJSON_AddStringToObject(b, "status", t->status ? t->status : "New");
	if (t->body) {
		cJSON *cs = cJSON_AddArrayToObject(b, "comments_attributes");
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "subject", "entrasync alert");
		cJSON_AddStringToObject(c, "body", t->body);
		cJSON_AddBoolToObject(c, "hidden", true);
		cJSON_AddBoolToObject(c, "do_not_email", true);
		cJSON_AddItemToArray(cs, c);
	}
	char *body = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	char what[64];
	snprintf(what, sizeof what, "create ticket (customer %lld)", t->customer_id);
	enum syncro_result rc = send(tickets, "POST", "/tickets", body, what, out, err);
	cJSON_free(body);
	return rc;
}

enum syncro_result syncro_ticket_get(struct syncro_resource *tickets, long long id, struct syncro_ticket *out,
                                     struct err *err)
{
	memset(out, 0, sizeof *out);
	char url[64], what[64];
	snprintf(url, sizeof url, "/tickets/%lld", id);
	snprintf(what, sizeof what, "get ticket %lld", id);
	return send(tickets, "GET", url, NULL, what, out, err);
}

enum syncro_result syncro_ticket_comment(struct syncro_resource *tickets, long long id, const char *subject,
                                         const char *body, struct err *err)
{
	char url[64], what[64];
	snprintf(url, sizeof url, "/tickets/%lld/comment", id);
	snprintf(what, sizeof what, "comment on ticket %lld", id);
	cJSON *b = cJSON_CreateObject();
	cJSON_AddStringToObject(b, "subject", subject && *subject ? subject : "entrasync alert");
	cJSON_AddStringToObject(b, "body", body ? body : "");
	cJSON_AddBoolToObject(b, "hidden", true);
	cJSON_AddBoolToObject(b, "do_not_email", true);
	char *text = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	enum syncro_result rc = send(tickets, "POST", url, text, what, NULL, err);
	cJSON_free(text);
	return rc;
}

enum syncro_result syncro_ticket_update(struct syncro_resource *tickets, long long id, const char *status,
                                        const char *subject, struct err *err)
{
	if (!status && !subject) return SYNCRO_OK;
	char url[64], what[64];
	snprintf(url, sizeof url, "/tickets/%lld", id);
	snprintf(what, sizeof what, "update ticket %lld", id);
	cJSON *b = cJSON_CreateObject();
	if (status) cJSON_AddStringToObject(b, "status", status);
	if (subject) cJSON_AddStringToObject(b, "subject", subject);
	char *text = cJSON_PrintUnformatted(b);
	cJSON_Delete(b);
	enum syncro_result rc = send(tickets, "PUT", url, text, what, NULL, err);
	cJSON_free(text);
	return rc;
}
