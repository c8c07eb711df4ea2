/* syncro — the Syncro MSP REST client: customers (by id or business_name)
 * and their contacts (list with paging, get, create, update, delete), on the
 * shared http engine as one service "syncro" paced for every tenant of the
 * process together. Facts: shared/reference/syncro-api.md.
 *
 * What it does about Syncro's quirks:
 *   - Auth: `Authorization: Bearer <api key>` (the spec's bearerAuth). The key
 *     is registered with log_secret_add and never put in a URL.
 *   - Rate limit: 180 requests a minute per IP, over-limit answer undocumented
 *     (429, no Retry-After, per third parties). The service is paced at
 *     requests_per_minute minus a small headroom (2 %, at least two requests
 *     a window) with a token bucket of 1.5: any window of the configured size
 *     sees at most pace x window + 1.5 starts, under the limit by at least
 *     half a request even with some arrival jitter, so 429s do not normally
 *     happen; the half token lets a start that the loop wakes for late be
 *     made up by the next, so the pace is kept exactly. If one comes
 *     anyway, every Syncro lane is held for the whole window (default 60 s):
 *     after that the window only holds what was in flight. Then the request
 *     goes on: GET/PUT/DELETE through the engine's retry, a POST resubmitted
 *     by this client (a 429 means "not applied").
 *   - Paging: meta.total_pages of each answer; without meta, pages are read
 *     until an empty one. No page size is assumed.
 *   - Shapes: a single contact comes back flat, a single customer wrapped in
 *     {"customer":…}; both shapes are accepted for both. `title` is read from
 *     properties.title (top-level title as a fallback) and written as the
 *     top-level `title` the spec documents for PUT (stored by Syncro in
 *     properties.title); a create also sends properties.title.
 *   - Errors become enum syncro_result codes plus a message (struct err).
 *
 * Threading: single-threaded, like the http engine. Synchronous calls run
 * the engine loop until their operation completes (other pending requests
 * progress meanwhile); they must not be called from an engine callback.
 * Asynchronous calls (syncro_submit) complete through a callback on the loop,
 * which may submit further operations. */
#ifndef ENTRASYNC_SYNCRO_H
#define ENTRASYNC_SYNCRO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/config.h"
#include "http/http.h"
#include "util/util.h"

/* ---- Results ------------------------------------------------------------- */

/* Every call returns one of these; negative values are failures (the
 * project's "0 or negative" convention) and come with a message in err. */
enum syncro_result {
	SYNCRO_OK = 0,
	SYNCRO_NOT_FOUND = -1,       /* 404: no such contact (deleted in Syncro: drop the link)
	                              * or, on create, no such customer; customer lookup: none */
	SYNCRO_INVALID = -2,         /* 422 (or a value refused before sending): Syncro's message
	                              * in err; record it against this contact and go on */
	SYNCRO_UNAUTHORIZED = -3,    /* 401: the API token lacks a permission or is wrong:
	                              * fatal for the run (every tenant uses the same token) */
	SYNCRO_UNKNOWN_OUTCOME = -4, /* a POST that may or may not have been applied (connection
	                              * lost, timeout, 5xx, unreadable answer): never retried
	                              * here; re-match by e-mail before creating again */
	SYNCRO_FAILED = -5,          /* anything else (transport error or 5xx after retries,
	                              * lasting 429, 400, unexpected answer) */
	SYNCRO_AMBIGUOUS = -6,       /* customer by name: several exact matches (listed in err) */
	SYNCRO_UNAVAILABLE = -7,     /* not sent: Syncro was found not answering earlier in this
	                              * run (SYNCRO_OUTAGE_*): fatal for the run, which stops
	                              * instead of waiting out each request's timeouts */
};

/* "ok", "not_found", "invalid", "unauthorized", "unknown_outcome", "failed",
 * "ambiguous", "unavailable". */
const char *syncro_result_name(enum syncro_result r);
/* true when the failure concerns only the one contact: record it and go on
 * (SYNCRO_INVALID, SYNCRO_NOT_FOUND). */
bool syncro_result_recordable(enum syncro_result r);
/* true when the whole run must stop (SYNCRO_UNAUTHORIZED, SYNCRO_UNAVAILABLE). */
bool syncro_result_fatal(enum syncro_result r);

/* ---- Contact fields ------------------------------------------------------ */

/* The contact fields the sync writes, in a fixed order. customer_id is held
 * as decimal text like the others so one field set can be diffed uniformly;
 * it is sent as a JSON number. */
enum syncro_field {
	SYNCRO_F_NAME,
	SYNCRO_F_EMAIL,
	SYNCRO_F_PHONE,
	SYNCRO_F_MOBILE,
	SYNCRO_F_TITLE,
	SYNCRO_F_ADDRESS1,
	SYNCRO_F_ADDRESS2,
	SYNCRO_F_CITY,
	SYNCRO_F_STATE,
	SYNCRO_F_ZIP,
	SYNCRO_F_NOTES,
	SYNCRO_F_CUSTOMER_ID,
	SYNCRO_NFIELDS
};

/* "name", "email", …, "customer_id" (the policy's and Syncro's names). */
const char *syncro_field_name(enum syncro_field f);
/* The field called name, or -1. */
int syncro_field_lookup(const char *name);

/* A set of field values: v[f] is an owned string, NULL = absent (never sent,
 * or null in Syncro). "" is a value (sent as a blank). Zero-initialised is
 * empty. */
struct syncro_fields {
	char *v[SYNCRO_NFIELDS];
};
/* Sets f to a copy of value (NULL = absent), freeing the old value. */
void syncro_fields_set(struct syncro_fields *fs, enum syncro_field f, const char *value);
/* Frees every value; fs becomes empty. */
void syncro_fields_free(struct syncro_fields *fs);

/* ---- Records --------------------------------------------------------------- */

/* A contact as Syncro holds it. All strings owned; syncro_contact_free. */
struct syncro_contact {
	long long id;
	long long customer_id;       /* also in f.v[SYNCRO_F_CUSTOMER_ID] as text; 0 = none */
	struct syncro_fields f;      /* title from properties.title */
	char *properties_json;       /* the whole "properties" object, compact JSON, or NULL */
	char *updated_at;            /* as Syncro sent it, or NULL */
};
/* Frees what c owns and zeroes it. NULL is a no-op. */
void syncro_contact_free(struct syncro_contact *c);

struct syncro_contact_list {
	struct syncro_contact *items;
	size_t n;
};
void syncro_contact_list_free(struct syncro_contact_list *l);

/* A customer (Organization): the fields the sync needs. Strings owned. */
struct syncro_customer {
	long long id;
	char *business_name;         /* may be NULL (individuals) */
	char *fullname;              /* may be NULL */
	char *email;                 /* may be NULL */
	bool disabled;
};
void syncro_customer_free(struct syncro_customer *c);

/* ---- The client ------------------------------------------------------------ */

struct syncro_opts {
	const char *base_url;        /* https://SUB.syncromsp.com/api/v1, or http:// on loopback */
	const char *subdomain;       /* used when base_url is NULL: https://SUB.syncromsp.com/api/v1 */
	const char *api_key;         /* required */
	double requests_per_minute;  /* Syncro's limit for this process; 0 = 180 */
	const char *ca_file;         /* extra trust anchor (PEM) or NULL */
	/* Tuning; 0 = default. */
	double window_seconds;       /* Syncro's rate window, and the hold after a 429; 60 */
	double headroom;             /* fraction of requests_per_minute kept unused, against
	                              * arrival jitter: 0.02, and at least two requests of the
	                              * window. Negative = none (pace at the limit). */
	int max_in_flight;           /* Syncro requests in flight at once; 8 */
	double timeout;              /* per attempt, s; 60 */
	int max_attempts;            /* per request (first + retries), also POST resubmits
	                              * after 429; 5 */
	double outage_seconds;       /* Syncro is found down (SYNCRO_UNAVAILABLE for what is
	                              * not sent yet) once SYNCRO_OUTAGE_ATTEMPTS attempts in a
	                              * row over at least this long got no answer or 502/503/504;
	                              * 60 */
};

/* Fills opts from the config's syncro section (pointers borrow from cfg). */
void syncro_opts_from_config(const struct config_syncro *cfg, struct syncro_opts *opts);

struct syncro_client;

/* Adds the service "syncro" to engine e and returns a client for it (one per
 * process: every tenant shares its pacing). Registers the API key with
 * log_secret_add. Returns NULL and fills err on a bad URL, missing key or
 * unreadable ca_file. Free the engine first (that completes pending
 * operations, see syncro_submit), then the client. */
struct syncro_client *syncro_client_new(struct http_engine *e, const struct syncro_opts *opts,
                                        struct err *err);
void syncro_client_free(struct syncro_client *sc);

/* The client's http service (for counters: http_service_counters). */
struct http_service *syncro_client_service(struct syncro_client *sc);
/* A lane of the Syncro service for one tenant (name as in logs; not a
 * secret), created on first use and owned by the client: tenants' queues are
 * served in turn, within the one pace. Held with all others on a 429. */
struct http_lane *syncro_client_lane(struct syncro_client *sc, const char *name);
/* The pace actually used, requests per minute (requests_per_minute less
 * the headroom). */
double syncro_client_pace(const struct syncro_client *sc);
/* How many 429s the client has seen (each held the lanes for the window). */
uint64_t syncro_client_throttled(const struct syncro_client *sc);

/* ---- Synchronous calls ------------------------------------------------------
 * Each returns SYNCRO_OK or a failure code with err filled (redacted). Out
 * structs are zeroed first and owned by the caller afterwards (free them
 * with their free function, also after a failure). */

enum syncro_result syncro_customer_get(struct syncro_client *sc, long long id,
                                       struct syncro_customer *out, struct err *err);
/* The one customer whose business_name equals name (case ignored:
 * syncro_name_match), over all pages of GET /customers?business_name= (a substring
 * search; disabled customers are not listed by Syncro). Several →
 * SYNCRO_AMBIGUOUS listing ids and names; none → SYNCRO_NOT_FOUND (naming
 * similar customers when Syncro returned any). */
enum syncro_result syncro_customer_find(struct syncro_client *sc, const char *name,
                                        struct syncro_customer *out, struct err *err);
/* Every contact of a customer, all pages. */
enum syncro_result syncro_contacts_list(struct syncro_client *sc, long long customer_id,
                                        struct syncro_contact_list *out, struct err *err);
enum syncro_result syncro_contact_get(struct syncro_client *sc, long long id,
                                      struct syncro_contact *out, struct err *err);
/* POST /contacts with the non-NULL fields (customer_id required). out (may be
 * NULL) receives the created contact. Never retried after it may have been
 * applied: SYNCRO_UNKNOWN_OUTCOME. */
enum syncro_result syncro_contact_create(struct syncro_client *sc, const struct syncro_fields *fields,
                                         struct syncro_contact *out, struct err *err);
/* PUT /contacts/{id} with only the non-NULL fields of changes (at least
 * one). 404 → SYNCRO_NOT_FOUND: deleted in Syncro, or (when changes move it)
 * the new customer_id does not exist; the message says which may apply.
 * out may be NULL. */
enum syncro_result syncro_contact_update(struct syncro_client *sc, long long id,
                                         const struct syncro_fields *changes,
                                         struct syncro_contact *out, struct err *err);
/* DELETE /contacts/{id}. 404 → SYNCRO_NOT_FOUND (already gone). */
enum syncro_result syncro_contact_delete(struct syncro_client *sc, long long id, struct err *err);

/* ---- Asynchronous calls ---------------------------------------------------- */

enum syncro_op {
	SYNCRO_OP_CUSTOMER_GET,      /* id */
	SYNCRO_OP_CUSTOMER_FIND,     /* name */
	SYNCRO_OP_CONTACTS_LIST,     /* id = customer id */
	SYNCRO_OP_CONTACT_GET,       /* id */
	SYNCRO_OP_CONTACT_CREATE,    /* fields */
	SYNCRO_OP_CONTACT_UPDATE,    /* id, fields = the changes */
	SYNCRO_OP_CONTACT_DELETE,    /* id */
};

/* One operation to submit. Everything is copied by syncro_submit. */
struct syncro_call {
	enum syncro_op op;
	long long id;
	const char *name;
	const struct syncro_fields *fields;
	struct http_lane *lane;      /* from syncro_client_lane, or NULL = the default lane */
};

/* What an operation produced. Owned by the client and freed after the
 * callback returns; the callback may take a member by copying it and
 * zeroing the original. */
struct syncro_reply {
	enum syncro_op op;
	enum syncro_result rc;
	struct err err;              /* message when rc != SYNCRO_OK */
	long status;                 /* last HTTP status, 0 = none */
	struct syncro_contact contact;       /* CONTACT_GET / _CREATE / _UPDATE */
	struct syncro_contact_list contacts; /* CONTACTS_LIST */
	struct syncro_customer customer;     /* CUSTOMER_GET / _FIND */
};

typedef void (*syncro_done_fn)(struct syncro_reply *reply, void *ctx);

/* Queues an operation on the engine; done runs once with the outcome, from
 * inside http_run/http_step, or from http_engine_free for an operation still
 * pending (SYNCRO_FAILED; SYNCRO_UNKNOWN_OUTCOME for a create). Fails only
 * for invalid input (the callback is then not called). */
int syncro_submit(struct syncro_client *sc, const struct syncro_call *call, syncro_done_fn done,
                  void *ctx, struct err *err);

/* ---- JSON shapes (syncro_json.c; used by the client, exposed for tests) ---- */

struct cJSON;
/* Fills *out (zeroed first) from a contact object, flat or wrapped in
 * {"contact":{…}}. Fails when it has no numeric id. */
int syncro_contact_from_json(const struct cJSON *obj, struct syncro_contact *out, struct err *err);

/* A listing read page by page must fit together: every page the same
 * meta.total_pages as page 1, as many items as page 1 except the last (no
 * more), no empty page before the last. A page that does not fit (a record
 * added or deleted while the pages were read, or Syncro answering short)
 * makes a listing that may miss records: a missed contact or invoice would
 * be made again. pages holds what page 1 said (filled at page 1). */
struct syncro_pages {
	long long total;             /* page 1's meta.total_pages, -1 when absent */
	size_t len;                  /* page 1's item count: the page size */
};
/* For page `page` (root: its answer, items: its list): 1 when a page
 * follows, 0 when it is the last (or page reached max_pages), -1 when it
 * does not fit (why). Without meta.total_pages: more while pages hold
 * items. */
int syncro_pages_next(struct syncro_pages *pages, long long page, long long max_pages, const struct cJSON *root,
                      const struct cJSON *items, char *why, size_t cap);
/* Fills *out from a customer object, wrapped {"customer":{…}} or flat. */
int syncro_customer_from_json(const struct cJSON *obj, struct syncro_customer *out, struct err *err);
/* How a customer's business name compares with the name a tenant gives:
 * the same (case ignored: str_ieq_utf8), similar (its letters and digits,
 * case folded, contain the name's: "Acme, Inc." and "ACME Inc (EU)" for
 * "Acme Inc"), or not. What syncro_customer_find and tenants discover
 * both match by. */
enum syncro_name_match { SYNCRO_NAME_OTHER, SYNCRO_NAME_SIMILAR, SYNCRO_NAME_SAME };
enum syncro_name_match syncro_name_match(const char *business_name, const char *name);
#define SYNCRO_SIMILAR_MAX 5
/* Appends "ID 'business name'" of c to similar (", " between), counting in
 * *n, up to SYNCRO_SIMILAR_MAX of them; a customer without one is skipped. */
void syncro_similar_add(struct buf *similar, size_t *n, const struct syncro_customer *c);
/* The verdict on a business name that same[0..n_same) have: SYNCRO_OK for
 * one; SYNCRO_NOT_FOUND for none (naming similar, "" or NULL when none
 * was) or SYNCRO_AMBIGUOUS for several (listing them), with err saying what
 * to set. */
enum syncro_result syncro_name_verdict(const struct syncro_customer *same, size_t n_same, const char *similar,
                                       struct err *err);
/* syncro_customer_find over a list already read: the one customer of
 * list[0..n) named name (*out points into list), else NULL and the
 * verdict's failure, similar names from the whole list (*n_similar of
 * them, when n_similar is not NULL). */
enum syncro_result syncro_customer_pick(const struct syncro_customer *list, size_t n, const char *name,
                                        const struct syncro_customer **out, size_t *n_similar, struct err *err);
/* The JSON body (malloc'd, in *out) of a create (every non-NULL field,
 * customer_id required, title also as properties.title) or an update (the
 * non-NULL fields; title top-level). SYNCRO_INVALID when customer_id is
 * missing on create or not an integer. */
enum syncro_result syncro_contact_body(const struct syncro_fields *fs, bool create, char **out,
                                       struct err *err);
/* Appends Syncro's message from an error body: "errors" (string, array or
 * object), "message" (string or array) or "error". Appends nothing when the
 * body is not JSON or has none of them. */
void syncro_error_text(const char *body, struct buf *out);


/* ---- Raw requests (tickets, billing: the areas beside contacts) ---------------
 * One synchronous request on the client's service (its pacing, 429 holds,
 * retries, lanes) with the client's Authorization header, so that no other
 * file builds one. Must not be called from an engine callback. */
struct syncro_req {
	const char *method;          /* "GET" when NULL */
	const char *path;            /* below the base URL, query included: "/tickets/5?page=2" */
	const char *body;            /* JSON, or NULL */
	bool repeatable;             /* a POST whose repeat is harmless: retried like a GET */
	struct http_lane *lane;      /* from syncro_client_lane, or NULL = the default lane */
	const char *what;            /* for messages, "create ticket (customer 5)"; NULL = "METHOD path" */
	const char *permissions;     /* named on a 401: "Tickets - Create, …"; NULL = not named */
};
/* Sends rq and classifies the answer, as the contact calls do:
 *   2xx → SYNCRO_OK; *out (when out is not NULL) = the parsed JSON answer
 *         (cJSON_Delete), an answer that is not JSON failing;
 *   401 → SYNCRO_UNAUTHORIZED, 404 → SYNCRO_NOT_FOUND, 422 → SYNCRO_INVALID
 *         (Syncro's message in err);
 *   a POST (not repeatable) answered 429 was not applied: sent again after
 *   the hold, up to max_attempts; its lost answer, 5xx or unreadable 2xx
 *   → SYNCRO_UNKNOWN_OUTCOME ("it may or may not have been applied");
 *   anything else → SYNCRO_FAILED.
 * Messages read "Syncro: <what>: …", redacted. *out is NULL on failure. */
enum syncro_result syncro_request(struct syncro_client *sc, const struct syncro_req *rq, struct cJSON **out,
                                  struct err *err);

/* ---- Resources (billing, tickets): one handle over syncro_request ----------
 * An area of the API beside contacts (syncro_billing.h, syncro_tickets.h
 * take one): the client it sends through, the token permissions a 401 names
 * for it, and how many requests it made. */
struct syncro_resource;

/* A resource on sc (which must outlive it; free the resource first).
 * permissions (copied; NULL = none named) is what the area needs, e.g.
 * SYNCRO_BILLING_PERMISSIONS. NULL and err filled when sc is NULL. */
struct syncro_resource *syncro_resource_new(struct syncro_client *sc, const char *permissions, struct err *err);
void syncro_resource_free(struct syncro_resource *res);
/* Requests made through res (a POST sent again after a 429 counts once). */
long long syncro_resource_requests(const struct syncro_resource *res);
/* syncro_request on res's client, naming res's permissions on a 401 (unless
 * rq names its own); counts the request. Same results and *out. */
enum syncro_result syncro_resource_request(struct syncro_resource *res, const struct syncro_req *rq,
                                           struct cJSON **out, struct err *err);
/* A request whose answer is one record: syncro_resource_request, then
 * parse(answer, out) when out is not NULL. A parse failure (no record with an
 * id) is "Syncro: <what>: unexpected answer ...": SYNCRO_UNKNOWN_OUTCOME for a
 * POST that is not repeatable (it may have been applied), else
 * SYNCRO_FAILED. What parse fills in out is the caller's to free, whatever
 * the result. */
enum syncro_result syncro_resource_record(struct syncro_resource *res, const struct syncro_req *rq,
                                          int (*parse)(const struct cJSON *answer, void *out), void *out,
                                          struct err *err);

#endif
