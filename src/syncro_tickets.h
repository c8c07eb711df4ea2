/* syncro_tickets — Syncro tickets for the Microsoft actions taken from them:
 * list open tickets of a problem type, read one, post a comment, find an
 * earlier comment by a marker, set the status. Shared/reference/syncro-api.md
 * §8 and the spec: GET /tickets (status, query, page; meta.total_pages),
 * GET/PUT /tickets/{id} ({"ticket":{…}}), POST /tickets/{id}/comment
 * (subject and body required), GET /tickets/{id}/comments (newest first).
 *
 * The spec has no problem_type filter on GET /tickets: the list is narrowed
 * with query=<problem type> (Syncro searches problem types among other
 * things) and filtered here, exactly (ASCII case-insensitive).
 *
 * Requests go through the Syncro client's http service (syncro.h), on a
 * lane "tickets", so they share its pacing and its 429 hold; the client has
 * no public request call, so this file keeps its own copy of the
 * Authorization header (the API key is already registered as a secret by
 * syncro_client_new). A POST answered 429 (not applied) is sent again, up to
 * 5 times; GET and PUT are retried by the HTTP core. Results use
 * enum syncro_result (syncro.h); a POST without a usable answer is
 * SYNCRO_UNKNOWN_OUTCOME. Every call is synchronous: never from a callback. */
#ifndef ENTRASYNC_SYNCRO_TICKETS_H
#define ENTRASYNC_SYNCRO_TICKETS_H

#include <stdbool.h>
#include <stddef.h>
#include "syncro.h"
#include "util.h"

struct syncro_tickets;

/* A handle for ticket calls on client sc (borrowed: free this first).
 * api_key: the same key the client was made with (copied). */
struct syncro_tickets *syncro_tickets_new(struct syncro_client *sc, const char *api_key);
void syncro_tickets_free(struct syncro_tickets *tk);

/* A ticket, as far as actions need it. Strings owned (may be NULL). */
struct syncro_ticket {
	long long id;
	long long number;
	long long customer_id;
	long long contact_id;        /* 0 = none */
	char *subject;
	char *problem_type;
	char *status;
};
void syncro_ticket_free(struct syncro_ticket *t);

struct syncro_ticket_list {
	struct syncro_ticket *items;
	size_t n;
};
void syncro_ticket_list_free(struct syncro_ticket_list *l);

/* Parses a ticket object (flat or {"ticket":{…}}) into *out (zeroed first).
 * Fails without a numeric id. Exposed for tests. */
int syncro_ticket_from_json(const struct cJSON *obj, struct syncro_ticket *out, struct err *err);

/* Every ticket with status `status` (e.g. "Not Closed"; NULL = any) whose
 * problem_type equals problem_type (NULL = any), all pages, in Syncro's order. */
enum syncro_result syncro_tickets_list(struct syncro_tickets *tk, const char *status, const char *problem_type,
                                       struct syncro_ticket_list *out, struct err *err);
enum syncro_result syncro_ticket_get(struct syncro_tickets *tk, long long id, struct syncro_ticket *out,
                                     struct err *err);
/* POST /tickets/{id}/comment {subject, body, hidden, do_not_email:true}. */
enum syncro_result syncro_ticket_comment_add(struct syncro_tickets *tk, long long id, const char *subject,
                                             const char *body, bool hidden, struct err *err);
/* Looks through the ticket's comments (all pages) for one whose body holds
 * needle: *found. */
enum syncro_result syncro_ticket_comment_find(struct syncro_tickets *tk, long long id, const char *needle,
                                              bool *found, struct err *err);
/* PUT /tickets/{id} {"status": status}. */
enum syncro_result syncro_ticket_set_status(struct syncro_tickets *tk, long long id, const char *status,
                                            struct err *err);

#endif
