/* syncro_tickets — Syncro tickets on the Syncro client's service (same
 * pacing, 429 holds and lanes as contacts): create a ticket for a
 * customer, read one, add a comment, change its status or subject.
 * Facts: shared/reference/syncro-api.md §8; the fake's guesses in
 * tests/fakes/SYNCRO.md.
 *   POST /tickets                 {customer_id, subject, problem_type, status,
 *                                  comments_attributes:[{subject, body, hidden, do_not_email}]}
 *   GET  /tickets/{id}            {"ticket":{...}}
 *   PUT  /tickets/{id}            {status?, subject?}
 *   POST /tickets/{id}/comment    {subject, body, hidden, do_not_email}
 * Needs the API token permissions "Tickets - Create", "Tickets - Edit" and
 * "Tickets - View Details". Same result codes as syncro.h; a POST that may
 * have been applied is SYNCRO_UNKNOWN_OUTCOME and is never resent. */
#ifndef ENTRASYNC_SYNCRO_TICKETS_H
#define ENTRASYNC_SYNCRO_TICKETS_H

#include "syncro/syncro.h"

/* The ticket calls take a resource (syncro.h) made on the Syncro client
 * with these permissions, which a 401 names:
 *   syncro_resource_new(sc, SYNCRO_TICKET_PERMISSIONS, err) */
#define SYNCRO_TICKET_PERMISSIONS "Tickets - Create, Tickets - Edit, Tickets - List/Search, Tickets - View Details"

struct syncro_ticket {
	long long id;
	long long customer_id;
	char *number;              /* as Syncro sent it (number or text), or NULL */
	char *subject;
	char *status;              /* "New", "In Progress", "Resolved", ... */
	char *problem_type;
};
void syncro_ticket_free(struct syncro_ticket *t);

/* What a new ticket says. body becomes its first (hidden, not e-mailed)
 * comment. status NULL = "New". */
struct syncro_ticket_new {
	long long customer_id;
	const char *subject;
	const char *problem_type;  /* may be NULL */
	const char *status;
	const char *body;
};

enum syncro_result syncro_ticket_create(struct syncro_resource *tickets, const struct syncro_ticket_new *t,
                                        struct syncro_ticket *out, struct err *err);
/* 404 → SYNCRO_NOT_FOUND (deleted in Syncro). */
enum syncro_result syncro_ticket_get(struct syncro_resource *tickets, long long id, struct syncro_ticket *out,
                                     struct err *err);
/* Adds a hidden, not e-mailed comment. */
enum syncro_result syncro_ticket_comment(struct syncro_resource *tickets, long long id, const char *subject,
                                         const char *body, struct err *err);
/* Changes the status and/or the subject (NULL = unchanged). */
enum syncro_result syncro_ticket_update(struct syncro_resource *tickets, long long id, const char *status,
                                        const char *subject, struct err *err);

/* Is the status a closed one ("Resolved", "Closed", case-insensitive)? */
bool syncro_ticket_closed(const char *status);

/* Parses {"ticket":{...}} or a flat ticket. Exposed for tests. */
int syncro_ticket_from_json(const struct cJSON *obj, struct syncro_ticket *out, struct err *err);

#endif
