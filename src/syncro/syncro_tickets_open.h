/* syncro_tickets_open — the reads that Microsoft actions taken from tickets
 * need beside syncro_tickets.h (which creates, reads, comments and updates
 * one ticket): the open tickets of a problem type, with the contact each is
 * about, a customer's open tickets (alerts look for one an interrupted run
 * made), and the search of a ticket's comments for a marker (to tell
 * whether a comment whose answer was lost is there).
 *   GET /tickets?status=&query=&customer_id=&page=   {"tickets":[…],"meta":{total_pages}}
 *   GET /tickets/{id}/comments?page=    {"comments":[…],"meta":{…}}
 * The spec has no problem_type filter on GET /tickets: the list is narrowed
 * with query=<problem type> (Syncro searches problem types among other
 * fields) and filtered here, exactly (ASCII case-insensitive).
 * GETs on the Syncro client's service (its pacing, 429 hold, retries), on a
 * lane "tickets"; results are enum syncro_result (syncro.h). Synchronous:
 * never call from an engine callback. */
#ifndef ENTRASYNC_SYNCRO_TICKETS_OPEN_H
#define ENTRASYNC_SYNCRO_TICKETS_OPEN_H

#include <stdbool.h>
#include <stddef.h>
#include "syncro/syncro.h"
#include "util/util.h"

/* A listed ticket. Strings owned (may be NULL). */
struct syncro_open_ticket {
	long long id;
	long long customer_id;
	long long contact_id;        /* 0 = none */
	char *number;                /* as Syncro sent it */
	char *subject;
	char *problem_type;
	char *status;
};
void syncro_open_ticket_free(struct syncro_open_ticket *t);

struct syncro_open_tickets {
	struct syncro_open_ticket *items;
	size_t n;
};
void syncro_open_tickets_free(struct syncro_open_tickets *l);

/* Parses a listed ticket (flat or {"ticket":{…}}) into *out (zeroed
 * first). Fails without a numeric id. Exposed for tests. */
int syncro_open_ticket_from_json(const struct cJSON *obj, struct syncro_open_ticket *out, struct err *err);

/* Every ticket with status `status` (e.g. "Not Closed"; NULL = any) whose
 * problem_type equals problem_type (NULL = any), all pages, in Syncro's
 * order. */
enum syncro_result syncro_open_tickets_list(struct syncro_client *sc, const char *status,
                                            const char *problem_type, struct syncro_open_tickets *out,
                                            struct err *err);

/* Every ticket of customer customer_id with status `status` (NULL = any),
 * all pages (GET /tickets?customer_id=&status=). */
enum syncro_result syncro_tickets_of_customer(struct syncro_client *sc, long long customer_id, const char *status,
                                              struct syncro_open_tickets *out, struct err *err);

/* Looks through ticket id's comments (all pages) for one whose body holds
 * needle: *found. */
enum syncro_result syncro_ticket_comment_find(struct syncro_client *sc, long long id,
                                              const char *needle, bool *found, struct err *err);

#endif
