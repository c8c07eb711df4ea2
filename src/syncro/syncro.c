/* syncro — the Syncro MSP client (see syncro.h): the service and its pacing,
 * 429 holds, and one small state machine per operation (send, classify the
 * answer, follow pages or resubmit, complete). The synchronous calls submit
 * an operation and step the engine until it completes. */
#include "syncro/syncro.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define SYNCRO_DEFAULT_RPM 180.0
#define SYNCRO_DEFAULT_WINDOW 60.0
#define SYNCRO_DEFAULT_HEADROOM 0.02
#define SYNCRO_BURST 1.5             /* token bucket size: see syncro.h, rate limit */
#define SYNCRO_DEFAULT_IN_FLIGHT 8
#define SYNCRO_DEFAULT_TIMEOUT 60.0
#define SYNCRO_DEFAULT_ATTEMPTS 5
#define SYNCRO_DEFAULT_OUTAGE 60.0   /* s: see syncro_opts.outage_seconds */
#define SYNCRO_OUTAGE_ATTEMPTS 5
#define SYNCRO_MAX_PAGES 100000      /* a guard against a server that never ends */

/* What every 401 message ends with: the permissions the sync needs (spec). */
#define SYNCRO_PERMISSIONS "Customers - List/Search, Customers - View Detail and Customers - Edit"

struct syncro_client {
	struct http_engine *e;
	struct http_service *svc;
	char *auth_header;               /* "Authorization: Bearer <key>" */
	const char *headers[3];          /* auth, Accept, NULL */
	double window;                   /* s: rate window, and the hold after a 429 */
	double pace;                     /* requests per minute actually paced */
	int max_attempts;
	struct syncro_lane_entry *lanes; /* named lanes, held together with the default */
	size_t n_lanes;
	uint64_t throttled;
};

struct syncro_lane_entry {
	char *name;
	struct http_lane *lane;
};

/* One operation in progress. Owns its copies of the call's inputs. */
struct op {
	struct syncro_client *sc;
	enum syncro_op kind;
	long long id;
	char *name;                      /* CUSTOMER_FIND */
	char *body;                      /* CONTACT_CREATE / _UPDATE */
	struct http_lane *lane;
	long long page;                  /* listing: the page asked for */
	struct syncro_pages pages;       /* listing: what page 1 said */
	int restarts;                    /* listing: read again from page 1 after a page did not fit */
	char inconsistent[200];          /* listing: why the last page did not fit */
	bool moves;                      /* CONTACT_UPDATE: changes customer_id */
	size_t cap;                      /* CONTACTS_LIST: capacity of reply.contacts */
	struct syncro_customer *matches; /* CUSTOMER_FIND: exact matches */
	size_t n_matches;
	struct buf similar;              /* CUSTOMER_FIND: other names Syncro returned */
	size_t n_similar;
	syncro_done_fn done;             /* NULL once the synchronous waiter has gone */
	void *ctx;
	struct syncro_reply reply;
};

/* ---- client ---------------------------------------------------------------------- */

void syncro_opts_from_config(const struct config_syncro *cfg, struct syncro_opts *opts)
{
	memset(opts, 0, sizeof *opts);
	opts->base_url = cfg->base_url;
	opts->api_key = cfg->api_key;
	opts->requests_per_minute = cfg->requests_per_minute;
	opts->ca_file = cfg->ca_file;
	opts->outage_seconds = cfg->outage_seconds;
	opts->timeout = cfg->timeout_seconds;
}

/* true for a loopback host (127.0.0.0/8, ::1, localhost) at the start of
 * s, which ends at the port, path or end. */
static bool host_is_loopback(const char *s)
{
	size_t n = strcspn(s, ":/?#");
	if (s[0] == '[') n = strcspn(s, "]") + 1;
	if ((n == 9 && strncasecmp(s, "localhost", 9) == 0) || (n == 5 && strncmp(s, "[::1]", 5) == 0))
		return true;
	if (n < 9 || strncmp(s, "127.", 4) != 0) return false;
	for (size_t i = 4; i < n; i++)
		if (!isdigit((unsigned char)s[i]) && s[i] != '.') return false;
	return true;
}

/* Checks the base URL: https, or http to a loopback host (the fakes). */
static int check_base_url(const char *url, struct err *err)
{
	if (str_starts(url, "https://") && url[8]) return 0;
	if (str_starts(url, "http://") && host_is_loopback(url + 7)) return 0;
	return err_set(err, "syncro.base_url '%s' must be https:// (plain http only to a loopback address)",
	               url);
}

/* Sees every Syncro answer before the engine decides about a retry: a 429
 * holds every lane for the window, so nothing is sent until it has freed. */
static void on_syncro_response(struct http_service *svc, const struct http_response *resp, void *ctx)
{
	struct syncro_client *sc = ctx;
	if (resp->status != 429) return;
	sc->throttled++;
	struct http_lane *def = http_service_default_lane(svc);
	if (http_lane_held_for(def) < sc->window / 2)
		log_warn("syncro_throttled", "Syncro answered 429 (rate limit): holding every Syncro request "
		         "for %g s, the length of its window", sc->window);
	http_lane_hold(def, sc->window);
	for (size_t i = 0; i < sc->n_lanes; i++) http_lane_hold(sc->lanes[i].lane, sc->window);
}

struct syncro_client *syncro_client_new(struct http_engine *e, const struct syncro_opts *o,
                                        struct err *err)
{
	char *url = NULL;
	if (!e || !o) {
		err_set(err, "syncro: no engine or options");
		return NULL;
	}
	if (!o->api_key || !*o->api_key) {
		err_set(err, "syncro.api_key is missing (Syncro: Admin > API - API Tokens)");
		return NULL;
	}
	if (o->base_url && *o->base_url) {
		url = xstrdup(o->base_url);
	} else if (o->subdomain && *o->subdomain) {
		for (const char *p = o->subdomain; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-') {
				err_set(err, "syncro.subdomain '%s' must be only the account name (e.g. 'acme')",
				        o->subdomain);
				return NULL;
			}
		url = xasprintf("https://%s.syncromsp.com/api/v1", o->subdomain);
	} else {
		err_set(err, "syncro needs base_url or subdomain");
		return NULL;
	}
	if (check_base_url(url, err) < 0) {
		free(url);
		return NULL;
	}
	log_secret_add(o->api_key);

	struct syncro_client *sc = xcalloc(1, sizeof *sc);
	double rpm = o->requests_per_minute > 0 ? o->requests_per_minute : SYNCRO_DEFAULT_RPM;
	sc->e = e;
	sc->window = o->window_seconds > 0 ? o->window_seconds : SYNCRO_DEFAULT_WINDOW;
	/* Headroom: a fraction of the limit, but at least two requests of the
	 * window (a whole interval of arrival jitter tolerated at small limits). */
	double per_window = rpm * sc->window / 60.0;
	double headroom = o->headroom == 0 ? SYNCRO_DEFAULT_HEADROOM : o->headroom < 0 ? 0 : o->headroom;
	if (o->headroom >= 0 && per_window > 0 && headroom < 2.0 / per_window) headroom = 2.0 / per_window;
	if (headroom > 0.5) headroom = 0.5;
	sc->max_attempts = o->max_attempts > 0 ? o->max_attempts : SYNCRO_DEFAULT_ATTEMPTS;
	sc->pace = rpm * (1.0 - headroom);
	sc->svc = http_service_add(e, &(struct http_service_opts){
		.name = "syncro",
		.base_url = url,
		.rate_per_min = sc->pace,
		.burst = SYNCRO_BURST,
		.max_in_flight = o->max_in_flight > 0 ? o->max_in_flight : SYNCRO_DEFAULT_IN_FLIGHT,
		.ca_file = o->ca_file,
		.total_timeout = o->timeout > 0 ? o->timeout : SYNCRO_DEFAULT_TIMEOUT,
		.retry = { .max_attempts = sc->max_attempts },
		/* a Syncro that stopped answering ends the run in a minute or two
		 * instead of each of its writes, one after another, waiting out
		 * its timeouts and retries (hours, holding the run lock) */
		.trip_attempts = SYNCRO_OUTAGE_ATTEMPTS,
		.trip_seconds = o->outage_seconds > 0 ? o->outage_seconds : SYNCRO_DEFAULT_OUTAGE,
		.on_response = on_syncro_response,
		.hook_ctx = sc,
	}, err);
	free(url);
	if (!sc->svc) {
		free(sc);
		return NULL;
	}
	sc->auth_header = xasprintf("Authorization: Bearer %s", o->api_key);
	sc->headers[0] = sc->auth_header;
	sc->headers[1] = "Accept: application/json";
	sc->headers[2] = NULL;
	return sc;
}

void syncro_client_free(struct syncro_client *sc)
{
	if (!sc) return;
	free(sc->auth_header);
	for (size_t i = 0; i < sc->n_lanes; i++) free(sc->lanes[i].name);
	free(sc->lanes);
	free(sc);
}

struct http_service *syncro_client_service(struct syncro_client *sc) { return sc->svc; }
double syncro_client_pace(const struct syncro_client *sc) { return sc->pace; }
uint64_t syncro_client_throttled(const struct syncro_client *sc) { return sc->throttled; }

struct http_lane *syncro_client_lane(struct syncro_client *sc, const char *name)
{
	if (!name || !*name) name = "lane";
	for (size_t i = 0; i < sc->n_lanes; i++)
		if (strcmp(sc->lanes[i].name, name) == 0) return sc->lanes[i].lane;
	struct http_lane *l = http_lane_add(sc->svc, name, 0);
	/* A lane added now takes the hold that is on, if any. */
	http_lane_hold(l, http_lane_held_for(http_service_default_lane(sc->svc)));
	sc->lanes = xrealloc(sc->lanes, (sc->n_lanes + 1) * sizeof *sc->lanes);
	sc->lanes[sc->n_lanes++] = (struct syncro_lane_entry){ xstrdup(name), l };
	return l;
}

/* ---- operations ----------------------------------------------------------------- */

static void reply_free(struct syncro_reply *r)
{
	syncro_contact_free(&r->contact);
	syncro_contact_list_free(&r->contacts);
	syncro_customer_free(&r->customer);
}

static void op_free(struct op *op)
{
	free(op->name);
	free(op->body);
	for (size_t i = 0; i < op->n_matches; i++) syncro_customer_free(&op->matches[i]);
	free(op->matches);
	buf_free(&op->similar);
	reply_free(&op->reply);
	free(op);
}

/* The token permission an operation needs (the spec's names). */
static const char *op_permission(enum syncro_op k)
{
	switch (k) {
	case SYNCRO_OP_CUSTOMER_FIND: return "Customers - List/Search";
	case SYNCRO_OP_CUSTOMER_GET:
	case SYNCRO_OP_CONTACTS_LIST:
	case SYNCRO_OP_CONTACT_GET: return "Customers - View Detail";
	case SYNCRO_OP_CONTACT_CREATE:
	case SYNCRO_OP_CONTACT_UPDATE:
	case SYNCRO_OP_CONTACT_DELETE: return "Customers - Edit";
	}
	return "?";
}

/* "update contact 1234": what the operation is, for messages. */
static void op_describe(const struct op *op, struct buf *out)
{
	switch (op->kind) {
	case SYNCRO_OP_CUSTOMER_GET: buf_printf(out, "get customer %lld", op->id); break;
	case SYNCRO_OP_CUSTOMER_FIND: buf_printf(out, "find customer '%s'", op->name); break;
	case SYNCRO_OP_CONTACTS_LIST:
		buf_printf(out, "list contacts of customer %lld (page %lld)", op->id, op->page);
		break;
	case SYNCRO_OP_CONTACT_GET: buf_printf(out, "get contact %lld", op->id); break;
	case SYNCRO_OP_CONTACT_CREATE: buf_printf(out, "create contact (customer %lld)", op->id); break;
	case SYNCRO_OP_CONTACT_UPDATE: buf_printf(out, "update contact %lld", op->id); break;
	case SYNCRO_OP_CONTACT_DELETE: buf_printf(out, "delete contact %lld", op->id); break;
	}
}

/* Completes op with rc: runs the callback (if a waiter is still there) and
 * frees the operation. */
static void op_finish(struct op *op, enum syncro_result rc)
{
	op->reply.rc = rc;
	if (rc != SYNCRO_OK) log_redact_err(&op->reply.err);
	if (op->done) op->done(&op->reply, op->ctx);
	op_free(op);
}

/* Completes op with a failure; the message reads "Syncro: <what>: <fmt…>". */
__attribute__((format(printf, 3, 4)))
static void op_fail(struct op *op, enum syncro_result rc, const char *fmt, ...)
{
	struct buf msg = {0};
	buf_adds(&msg, "Syncro: ");
	op_describe(op, &msg);
	buf_adds(&msg, ": ");
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	err_set(&op->reply.err, "%s", msg.data);
	buf_free(&msg);
	op_finish(op, rc);
}

/* Appends s percent-encoded for a query value (RFC 3986 unreserved kept). */
static void add_query_value(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') buf_addc(b, (char)*p);
		else buf_printf(b, "%%%02X", *p);
	}
}

static void op_http_done(struct http_response *resp, void *ctx);

/* Sends the op's next request (first, next page, or a POST again after a
 * 429). Fails only when the engine refuses the request. */
static int op_send(struct op *op, struct err *err)
{
	struct buf url = {0};
	const char *method = "GET";
	switch (op->kind) {
	case SYNCRO_OP_CUSTOMER_GET: buf_printf(&url, "/customers/%lld", op->id); break;
	case SYNCRO_OP_CUSTOMER_FIND:
		buf_adds(&url, "/customers?business_name=");
		add_query_value(&url, op->name);
		buf_printf(&url, "&page=%lld", op->page);
		break;
	case SYNCRO_OP_CONTACTS_LIST:
		buf_printf(&url, "/contacts?customer_id=%lld&page=%lld", op->id, op->page);
		break;
	case SYNCRO_OP_CONTACT_GET: buf_printf(&url, "/contacts/%lld", op->id); break;
	case SYNCRO_OP_CONTACT_CREATE: method = "POST"; buf_adds(&url, "/contacts"); break;
	case SYNCRO_OP_CONTACT_UPDATE: method = "PUT"; buf_printf(&url, "/contacts/%lld", op->id); break;
	case SYNCRO_OP_CONTACT_DELETE: method = "DELETE"; buf_printf(&url, "/contacts/%lld", op->id); break;
	}
	struct http_request req = {
		.method = method,
		.url = url.data,
		.headers = op->sc->headers,
		.body = op->body,
		.body_len = op->body ? strlen(op->body) : 0,
		.content_type = op->body ? "application/json" : NULL,
		.lane = op->lane,
		.on_done = op_http_done,
		.ctx = op,
	};
	int rc = http_submit(op->sc->svc, &req, err);
	buf_free(&url);
	return rc;
}

/* Sends the next request from a completion; a refusal completes op. */
static void op_continue(struct op *op)
{
	struct err e = {{0}};
	if (op_send(op, &e) < 0) op_fail(op, SYNCRO_FAILED, "%s", e.msg);
}

/* Whether the listing answered by root (items = its list) has another
 * page (syncro_pages_next): 1 more, 0 done, -3 the page does not fit
 * (op->inconsistent says why): the caller must not trust the listing. */
static int page_next(struct op *op, const cJSON *root, const cJSON *items)
{
	int r = syncro_pages_next(&op->pages, op->page, SYNCRO_MAX_PAGES, root, items, op->inconsistent,
	                          sizeof op->inconsistent);
	return r < 0 ? -3 : r;
}

/* After a page that did not fit: the listing is read again from page 1,
 * once; then it fails (nothing is decided on a listing that may miss
 * records). */
static void listing_restart(struct op *op)
{
	if (op->restarts++ >= 1) {
		op_fail(op, SYNCRO_FAILED, "the listing changed while it was read, twice (%s): not trusted, nothing "
		        "decided on it; the next run reads it again", op->inconsistent);
		return;
	}
	log_warn("syncro", "%s: the listing changed while it was read (%s): reading it again from page 1",
	         op->kind == SYNCRO_OP_CONTACTS_LIST ? "contacts" : "customers", op->inconsistent);
	struct syncro_contact_list *l = &op->reply.contacts;
	for (size_t i = 0; i < l->n; i++) syncro_contact_free(&l->items[i]);
	l->n = 0;
	for (size_t i = 0; i < op->n_matches; i++) syncro_customer_free(&op->matches[i]);
	op->n_matches = 0;
	buf_free(&op->similar);
	op->n_similar = 0;
	op->page = 1;
	op_continue(op);
}

/* Takes a page of contacts; returns 1 when more pages follow, 0 when done,
 * -1 after completing op with a failure, -3 when the page does not fit the
 * listing (page_next). */
static int take_contacts(struct op *op, const cJSON *root)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "contacts");
	if (!cJSON_IsArray(items)) {
		op_fail(op, SYNCRO_FAILED, "the answer has no \"contacts\" list");
		return -1;
	}
	struct syncro_contact_list *l = &op->reply.contacts;
	const cJSON *it;
	cJSON_ArrayForEach(it, items) {
		struct err e = {{0}};
		struct syncro_contact c;
		if (syncro_contact_from_json(it, &c, &e) < 0) {
			syncro_contact_free(&c);
			op_fail(op, SYNCRO_FAILED, "unexpected contact in the list: %s", e.msg);
			return -1;
		}
		if (l->n == op->cap) {
			op->cap = op->cap ? op->cap * 2 : 64;
			l->items = xrealloc(l->items, op->cap * sizeof *l->items);
		}
		l->items[l->n++] = c;
	}
	return page_next(op, root, items);
}

/* Takes a page of customers, keeping the exact name matches; returns like
 * take_contacts. */
static int take_customers(struct op *op, const cJSON *root)
{
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "customers");
	if (!cJSON_IsArray(items)) {
		op_fail(op, SYNCRO_FAILED, "the answer has no \"customers\" list");
		return -1;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, items) {
		struct err e = {{0}};
		struct syncro_customer c;
		if (syncro_customer_from_json(it, &c, &e) < 0) {
			syncro_customer_free(&c);
			op_fail(op, SYNCRO_FAILED, "unexpected customer in the list: %s", e.msg);
			return -1;
		}
		if (syncro_name_match(c.business_name, op->name) == SYNCRO_NAME_SAME) {
			op->matches = xrealloc(op->matches, (op->n_matches + 1) * sizeof *op->matches);
			op->matches[op->n_matches++] = c;
			continue;
		}
		syncro_similar_add(&op->similar, &op->n_similar, &c);
		syncro_customer_free(&c);
	}
	return page_next(op, root, items);
}

/* CUSTOMER_FIND after the last page: one match, none, or several. */
static void finish_find(struct op *op)
{
	struct err e = {{0}};
	enum syncro_result r = syncro_name_verdict(op->matches, op->n_matches, op->similar.data, &e);
	if (r != SYNCRO_OK) {
		op_fail(op, r, "%s", e.msg);
		return;
	}
	op->reply.customer = op->matches[0];
	op->n_matches = 0;
	op_finish(op, SYNCRO_OK);
}

/* A 2xx answer: parse it, then complete op or read the next page. */
static void op_success(struct op *op, const struct http_response *resp)
{
	bool post = op->kind == SYNCRO_OP_CONTACT_CREATE;
	if (op->kind == SYNCRO_OP_CONTACT_DELETE) {   /* {"success":true} or nothing */
		op_finish(op, SYNCRO_OK);
		return;
	}
	cJSON *root = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
	if (!root) {
		op_fail(op, post ? SYNCRO_UNKNOWN_OUTCOME : SYNCRO_FAILED, "HTTP %ld with an answer that is "
		        "not JSON%s", resp->status, post ? "; the contact may have been created" : "");
		return;
	}
	struct err e = {{0}};
	int more = 0;
	switch (op->kind) {
	case SYNCRO_OP_CUSTOMER_GET:
		if (syncro_customer_from_json(root, &op->reply.customer, &e) < 0) more = -2;
		break;
	case SYNCRO_OP_CONTACT_GET:
	case SYNCRO_OP_CONTACT_CREATE:
	case SYNCRO_OP_CONTACT_UPDATE:
		if (syncro_contact_from_json(root, &op->reply.contact, &e) < 0) more = -2;
		break;
	case SYNCRO_OP_CONTACTS_LIST: more = take_contacts(op, root); break;
	case SYNCRO_OP_CUSTOMER_FIND: more = take_customers(op, root); break;
	case SYNCRO_OP_CONTACT_DELETE: break;
	}
	cJSON_Delete(root);
	if (more == -1) return;   /* completed by take_* */
	if (more == -3) {
		listing_restart(op);
		return;
	}
	if (more == -2) {
		op_fail(op, post ? SYNCRO_UNKNOWN_OUTCOME : SYNCRO_FAILED, "unexpected answer: %s%s", e.msg,
		        post ? "; the contact may have been created" : "");
	} else if (more == 1) {
		op->page++;
		op_continue(op);
	} else if (op->kind == SYNCRO_OP_CUSTOMER_FIND) {
		finish_find(op);
	} else {
		op_finish(op, SYNCRO_OK);
	}
}

/* The engine's completion of one request of op (after its own retries). */
static void op_http_done(struct http_response *resp, void *ctx)
{
	struct op *op = ctx;
	bool post = op->kind == SYNCRO_OP_CONTACT_CREATE;
	long st = resp->status;
	op->reply.status = st;
	if (resp->error == HTTP_ERR_DOWN) {   /* never sent: not an unknown outcome */
		op_fail(op, SYNCRO_UNAVAILABLE, "%s", resp->error_text);
		return;
	}
	if (resp->error != HTTP_ERR_NONE) {
		if (post)
			op_fail(op, SYNCRO_UNKNOWN_OUTCOME, "%s; the contact may or may not have been created",
			        resp->error_text);
		else
			op_fail(op, SYNCRO_FAILED, "%s (after %d attempts)", resp->error_text, resp->attempts);
		return;
	}
	if (st >= 200 && st < 300) {
		op_success(op, resp);
		return;
	}
	struct buf msg = {0};
	syncro_error_text(resp->body.data, &msg);
	const char *said = msg.len ? msg.data : NULL;
	switch (st) {
	case 401:
		op_fail(op, SYNCRO_UNAUTHORIZED, "401 %s: the API token lacks the permission '%s' or is "
		        "wrong or expired. entrasync needs a token with the Custom Permissions " SYNCRO_PERMISSIONS
		        " (Syncro: Admin > API - API Tokens)", said ? said : "Not authorized",
		        op_permission(op->kind));
		break;
	case 404:
		if (post)
			op_fail(op, SYNCRO_NOT_FOUND, "customer %lld not found", op->id);
		else if (op->kind == SYNCRO_OP_CUSTOMER_FIND)   /* a search finds nothing with a 200: the path is wrong */
			op_fail(op, SYNCRO_FAILED, "the customer search answered 404 Not Found: Syncro has no such API path; "
			        "is syncro.base_url right? (it ends in /api/v1: https://SUBDOMAIN.syncromsp.com/api/v1)");
		else if (op->kind == SYNCRO_OP_CUSTOMER_GET || op->kind == SYNCRO_OP_CONTACTS_LIST)
			op_fail(op, SYNCRO_NOT_FOUND, "customer %lld not found", op->id);
		else if (op->kind == SYNCRO_OP_CONTACT_UPDATE && op->moves)
			op_fail(op, SYNCRO_NOT_FOUND, "contact %lld, or the customer it was to move to, not found",
			        op->id);
		else
			op_fail(op, SYNCRO_NOT_FOUND, "contact %lld not found (deleted in Syncro?)", op->id);
		break;
	case 422:
		op_fail(op, SYNCRO_INVALID, "%s", said ? said : "422: Syncro refused the values");
		break;
	case 429:
		/* the HTTP core sent it again after each hold (a 429 is not applied,
		 * POSTs too) until its attempts ran out */
		char how[128];
		op_fail(op, SYNCRO_FAILED, "still rate limited (429) %s", http_throttled_text(resp, how, sizeof how));
		break;
	default:
		if (st >= 500 && post)
			op_fail(op, SYNCRO_UNKNOWN_OUTCOME, "HTTP %ld%s%s; the contact may or may not have been "
			        "created", st, said ? ": " : "", said ? said : "");
		else if (st >= 500)
			op_fail(op, SYNCRO_FAILED, "HTTP %ld%s%s (after %d attempts)", st, said ? ": " : "",
			        said ? said : "", resp->attempts);
		else
			op_fail(op, SYNCRO_FAILED, "HTTP %ld%s%s", st, said ? ": " : "",
			        said ? said : " (the answer has no JSON message)");
		break;
	}
	buf_free(&msg);
}

/* Validates call, makes the op and sends its first request. Returns NULL
 * with *rc and err set when the input is refused or the engine refuses
 * the request (the callback is then never called). */
static struct op *op_start(struct syncro_client *sc, const struct syncro_call *call, syncro_done_fn done,
                           void *ctx, enum syncro_result *rc, struct err *err)
{
	*rc = SYNCRO_INVALID;
	if (!sc || !call) {
		err_set(err, "Syncro: no client or call");
		return NULL;
	}
	bool needs_id = call->op != SYNCRO_OP_CUSTOMER_FIND && call->op != SYNCRO_OP_CONTACT_CREATE;
	bool needs_fields = call->op == SYNCRO_OP_CONTACT_CREATE || call->op == SYNCRO_OP_CONTACT_UPDATE;
	if (needs_id && call->id <= 0) {
		err_set(err, "Syncro: an id above 0 is needed, not %lld", call->id);
		return NULL;
	}
	if (call->op == SYNCRO_OP_CUSTOMER_FIND && (!call->name || !*call->name)) {
		err_set(err, "Syncro: find customer: no business name given");
		return NULL;
	}
	if (needs_fields && !call->fields) {
		err_set(err, "Syncro: no contact fields given");
		return NULL;
	}
	struct op *op = xcalloc(1, sizeof *op);
	op->sc = sc;
	op->kind = call->op;
	op->id = call->id;
	op->name = call->name ? xstrdup(call->name) : NULL;
	op->lane = call->lane;
	op->page = 1;
	op->done = done;
	op->ctx = ctx;
	op->reply.op = call->op;
	if (needs_fields) {
		bool any = false;
		for (int f = 0; f < SYNCRO_NFIELDS; f++) any = any || call->fields->v[f];
		if (!any) {
			err_set(err, "Syncro: update contact %lld: no field to change", call->id);
			goto fail;
		}
		*rc = syncro_contact_body(call->fields, call->op == SYNCRO_OP_CONTACT_CREATE, &op->body, err);
		if (*rc != SYNCRO_OK) goto fail;
		op->moves = call->fields->v[SYNCRO_F_CUSTOMER_ID] != NULL;
		if (call->op == SYNCRO_OP_CONTACT_CREATE)   /* for messages */
			op->id = strtoll(call->fields->v[SYNCRO_F_CUSTOMER_ID], NULL, 10);
	}
	if (op_send(op, err) < 0) {
		*rc = SYNCRO_FAILED;
		goto fail;
	}
	*rc = SYNCRO_OK;
	return op;
fail:
	op->done = NULL;
	op_free(op);
	return NULL;
}

int syncro_submit(struct syncro_client *sc, const struct syncro_call *call, syncro_done_fn done,
                  void *ctx, struct err *err)
{
	enum syncro_result rc;
	return op_start(sc, call, done, ctx, &rc, err) ? 0 : -1;
}

/* ---- synchronous calls -------------------------------------------------------------- */

struct sync_wait {
	bool done;
	struct syncro_reply *out;
};

static void sync_done(struct syncro_reply *reply, void *ctx)
{
	struct sync_wait *w = ctx;
	*w->out = *reply;
	memset(reply, 0, sizeof *reply);   /* moved: op_free frees nothing of it */
	w->done = true;
}

/* Submits call and steps the engine until it completes; the outcome is
 * moved into *reply (caller frees it with reply_free). */
static enum syncro_result run_sync(struct syncro_client *sc, const struct syncro_call *call,
                                   struct syncro_reply *reply, struct err *err)
{
	memset(reply, 0, sizeof *reply);
	struct sync_wait w = { false, reply };
	enum syncro_result rc;
	struct op *op = op_start(sc, call, sync_done, &w, &rc, err);
	if (!op) return rc;
	while (!w.done) {
		if (http_step(sc->e, 1000, err) < 0) {
			if (!w.done) op->done = NULL;   /* it completes later, unobserved */
			err_prefix(err, "Syncro");
			return SYNCRO_FAILED;
		}
	}
	if (reply->rc != SYNCRO_OK && err) *err = reply->err;
	return reply->rc;
}

/* The customer-returning calls: run call, move the customer into out. */
static enum syncro_result run_customer_call(struct syncro_client *sc, const struct syncro_call *call,
                                            struct syncro_customer *out, struct err *err)
{
	struct syncro_reply r;
	enum syncro_result rc = run_sync(sc, call, &r, err);
	*out = r.customer;
	memset(&r.customer, 0, sizeof r.customer);
	reply_free(&r);
	return rc;
}

enum syncro_result syncro_customer_get(struct syncro_client *sc, long long id,
                                       struct syncro_customer *out, struct err *err)
{
	return run_customer_call(sc, &(struct syncro_call){ .op = SYNCRO_OP_CUSTOMER_GET, .id = id }, out, err);
}

enum syncro_result syncro_customer_find(struct syncro_client *sc, const char *name,
                                        struct syncro_customer *out, struct err *err)
{
	return run_customer_call(sc, &(struct syncro_call){ .op = SYNCRO_OP_CUSTOMER_FIND, .name = name }, out,
	                         err);
}

enum syncro_result syncro_contacts_list(struct syncro_client *sc, long long customer_id,
                                        struct syncro_contact_list *out, struct err *err)
{
	struct syncro_reply r;
	enum syncro_result rc = run_sync(sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACTS_LIST,
	                                 .id = customer_id }, &r, err);
	*out = r.contacts;
	memset(&r.contacts, 0, sizeof r.contacts);
	reply_free(&r);
	return rc;
}

/* The contact-returning calls: run call, move the contact into out (or
 * drop it when out is NULL). */
static enum syncro_result run_contact_call(struct syncro_client *sc, const struct syncro_call *call,
                                           struct syncro_contact *out, struct err *err)
{
	struct syncro_reply r;
	enum syncro_result rc = run_sync(sc, call, &r, err);
	if (out) {
		*out = r.contact;
		memset(&r.contact, 0, sizeof r.contact);
	}
	reply_free(&r);
	return rc;
}

enum syncro_result syncro_contact_get(struct syncro_client *sc, long long id,
                                      struct syncro_contact *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	return run_contact_call(sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_GET, .id = id }, out, err);
}

enum syncro_result syncro_contact_create(struct syncro_client *sc, const struct syncro_fields *fields,
                                         struct syncro_contact *out, struct err *err)
{
	if (out) memset(out, 0, sizeof *out);
	return run_contact_call(sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_CREATE, .fields = fields },
	                        out, err);
}

enum syncro_result syncro_contact_update(struct syncro_client *sc, long long id,
                                         const struct syncro_fields *changes,
                                         struct syncro_contact *out, struct err *err)
{
	if (out) memset(out, 0, sizeof *out);
	return run_contact_call(sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_UPDATE, .id = id,
	                        .fields = changes }, out, err);
}

enum syncro_result syncro_contact_delete(struct syncro_client *sc, long long id, struct err *err)
{
	return run_contact_call(sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_DELETE, .id = id }, NULL, err);
}

/* ---- raw requests ------------------------------------------------------------ */

/* The answer of a raw request that is not 2xx (nor a 429 to resend) as a
 * result code and message. unsure: a POST whose effect is unknown on 5xx. */
static enum syncro_result raw_failure(const struct syncro_req *rq, const char *what, bool unsure,
                                      const struct http_response *resp, struct err *err)
{
	long st = resp->status;
	struct buf msg = {0};
	syncro_error_text(resp->body.data, &msg);
	const char *said = msg.len ? msg.data : NULL;
	enum syncro_result rc = SYNCRO_FAILED;
	if (st == 401) {
		rc = SYNCRO_UNAUTHORIZED;
		err_set(err, "Syncro: %s: 401 %s: the API token lacks a permission%s%s%s or is wrong (Syncro: Admin > "
		        "API - API Tokens)", what, said ? said : "Not authorized", rq->permissions ? " (" : "",
		        rq->permissions ? rq->permissions : "", rq->permissions ? ")" : "");
	} else if (st == 404) {
		rc = SYNCRO_NOT_FOUND;
		err_set(err, "Syncro: %s: not found (HTTP 404)%s%s", what, said ? ": " : "", said ? said : "");
	} else if (st == 422) {
		rc = SYNCRO_INVALID;
		err_set(err, "Syncro: %s: %s", what, said ? said : "422: Syncro refused the values");
	} else if (st == 429) {
		char how[128];
		err_set(err, "Syncro: %s: still rate limited (429) %s", what, http_throttled_text(resp, how, sizeof how));
	} else if (st >= 500 && unsure) {
		rc = SYNCRO_UNKNOWN_OUTCOME;
		err_set(err, "Syncro: %s: HTTP %ld%s%s; it may or may not have been applied", what, st, said ? ": " : "",
		        said ? said : "");
	} else {
		err_set(err, "Syncro: %s: HTTP %ld%s%s", what, st, said ? ": " : "", said ? said : "");
	}
	buf_free(&msg);
	return rc;
}

enum syncro_result syncro_request(struct syncro_client *sc, const struct syncro_req *rq, cJSON **out,
                                  struct err *err)
{
	const char *method = rq->method ? rq->method : "GET";
	bool unsure = strcmp(method, "POST") == 0 && !rq->repeatable;   /* a lost answer may hide a write */
	char *what = rq->what ? xstrdup(rq->what) : xasprintf("%s %s", method, rq->path);
	struct http_request req = {
		.method = method, .url = rq->path, .headers = sc->headers, .body = rq->body,
		.body_len = rq->body ? strlen(rq->body) : 0, .content_type = rq->body ? "application/json" : NULL,
		.lane = rq->lane, .idempotent = rq->repeatable ? HTTP_IDEMPOTENT_YES : HTTP_IDEMPOTENT_AUTO,
	};
	struct http_response resp = {0};
	enum syncro_result rc = SYNCRO_FAILED;
	if (out) *out = NULL;
	/* a 429 (not applied, whatever the method) is sent again by the HTTP core
	 * after the hold on_syncro_response puts on every lane */
	struct err e = {{0}};
	if (http_do(sc->svc, &req, &resp, &e) != 0) {
		if (resp.error == HTTP_ERR_DOWN) {   /* never sent */
			rc = SYNCRO_UNAVAILABLE;
			err_set(err, "Syncro: %s: %s", what, resp.error_text);
			goto out;
		}
		rc = unsure ? SYNCRO_UNKNOWN_OUTCOME : SYNCRO_FAILED;
		err_set(err, "Syncro: %s: %s%s", what, e.msg, unsure ? "; it may or may not have been applied" : "");
		goto out;
	}
	if (resp.status < 200 || resp.status >= 300) {
		rc = raw_failure(rq, what, unsure, &resp, err);
		goto out;
	}
	rc = SYNCRO_OK;
	if (out && !(*out = cJSON_ParseWithLength(resp.body.data ? resp.body.data : "", resp.body.len))) {
		rc = unsure ? SYNCRO_UNKNOWN_OUTCOME : SYNCRO_FAILED;
		err_set(err, "Syncro: %s: HTTP %ld with an answer that is not JSON%s", what, resp.status,
		        unsure ? "; it may have been applied" : "");
	}
out:
	http_response_free(&resp);
	free(what);
	if (rc != SYNCRO_OK && err) log_redact_err(err);
	return rc;
}

/* ---- resources ----------------------------------------------------------------- */

struct syncro_resource {
	struct syncro_client *sc;
	char *permissions;               /* named on a 401, or NULL */
	long long requests;
};

struct syncro_resource *syncro_resource_new(struct syncro_client *sc, const char *permissions, struct err *err)
{
	if (!sc) {
		err_set(err, "Syncro: no client for the resource");
		return NULL;
	}
	struct syncro_resource *res = xcalloc(1, sizeof *res);
	res->sc = sc;
	res->permissions = permissions ? xstrdup(permissions) : NULL;
	return res;
}

void syncro_resource_free(struct syncro_resource *res)
{
	if (!res) return;
	free(res->permissions);
	free(res);
}

long long syncro_resource_requests(const struct syncro_resource *res)
{
	return res->requests;
}

enum syncro_result syncro_resource_request(struct syncro_resource *res, const struct syncro_req *rq,
                                           cJSON **out, struct err *err)
{
	struct syncro_req named = *rq;
	if (!named.permissions) named.permissions = res->permissions;
	res->requests++;
	return syncro_request(res->sc, &named, out, err);
}

enum syncro_result syncro_resource_record(struct syncro_resource *res, const struct syncro_req *rq,
                                          int (*parse)(const cJSON *answer, void *out), void *out,
                                          struct err *err)
{
	cJSON *answer = NULL;
	enum syncro_result rc = syncro_resource_request(res, rq, &answer, err);
	if (rc == SYNCRO_OK && out && parse(answer, out) != 0) {
		const char *method = rq->method ? rq->method : "GET";
		bool create = strcmp(method, "POST") == 0 && !rq->repeatable;
		char *what = rq->what ? xstrdup(rq->what) : xasprintf("%s %s", method, rq->path);
		rc = create ? SYNCRO_UNKNOWN_OUTCOME : SYNCRO_FAILED;
		err_set(err, "Syncro: %s: unexpected answer (no record with an id)%s", what,
		        create ? "; it may have been applied" : "");
		free(what);
	}
	cJSON_Delete(answer);
	return rc;
}
