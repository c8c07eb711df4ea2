/* graph_pull — `entrasync pull`'s engine: for every tenant at once on the
 * one HTTP engine, the users delta chain into the mirror (page + delta
 * state per transaction, resync on an expired state), and one $batch for
 * organization + subscribedSkus + secureScores + secureScoreControlProfiles
 * (at most once a UTC day per tenant) + the declared groups' look-ups (429
 * parts retried alone after the longest Retry-After; the rest of an answer
 * Graph cut short fetched from its nextLink; parts left out asked again),
 * then each group's transitiveMembers. A tenant's failure is recorded in
 * its result and never stops the others.
 *
 * Requests per tenant in a steady state: users/delta (1 page when little
 * changed) + 1 $batch, which also carries each declared group's first
 * transitiveMembers page, asked for under the id that group had at the
 * last pull and kept only when the look-up in the same batch confirms it
 * (a group first seen, renamed or recreated costs one more request). */
#include "graph/graph_internal.h"
#include "util/json_scan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "util/log.h"
#include "util/shutdown.h"
#include "store/store.h"
#include "store/store_history.h"
#include "store/store_snapshots.h"

const char graph_user_select[] =
	"id,displayName,givenName,surname,mail,userPrincipalName,userType,accountEnabled,department,"
	"officeLocation,jobTitle,businessPhones,mobilePhone,streetAddress,city,state,postalCode,country,"
	"companyName,employeeId,onPremisesSyncEnabled,createdDateTime,assignedLicenses";

#define SKU_SELECT "skuId,skuPartNumber,prepaidUnits,consumedUnits,capabilityStatus,appliesTo"
#define ORG_SELECT "id,displayName,verifiedDomains"
/* what the report joins into the breakdown (id = controlName), and a few
 * more fields worth keeping; the long remediation texts are left out */
#define PROFILE_SELECT "id,title,controlCategory,maxScore,rank,service,tier,userImpact,implementationCost,deprecated"
#define BATCH_MAX_PARTS 20
#define BATCH_MAX_ROUNDS 6       /* first try + retries of 429 parts and of parts left out */
/* nextLinks followed for the rest of one $batch's answer: each should
 * bring a part at least; one that brings none is not followed forever */
#define BATCH_MAX_FOLLOWS BATCH_MAX_PARTS
#define MALFORMED_RETRIES 2
#define SCORE_DAYS_MAX 90
#define BATCH_MAX_WAIT 120.0     /* s: a longer Retry-After on parts fails them */

struct pull_tenant;

/* A piece of an answer's text, kept by the tenant (p NULL: none). */
struct text_span {
	const char *p;
	size_t n;
};

struct pull_group {
	struct pull_tenant *pt;
	const char *ref;          /* as declared by the policy (name or id) */
	bool by_id;
	char *id;
	char *name;
	struct graph_members members; /* gathered over the pages */
	bool complete;            /* its last page came: stored when the tenant finishes */
	char *guess;              /* the id its first members page is asked under in the $batch */
	bool speculative;         /* that page is awaited (members_part_done) */
	char *page_stored;        /* the page key stored with guess's member rows (NULL: none) */
	long long stored_members; /* the distinct members of those rows (-1: unknown) */
	uint64_t page_state[2];   /* text_digest over this pull's member pages, in order */
	size_t page_bytes;        /* their length */
	int pages;                /* member pages taken this pull */
	bool same;                /* its one page is the one its rows came from: they stay */
};

/* A day of the secureScores pages: its object as sent and the members
 * read from it (score_day_keys), spans into the held page text. */
enum { SCORE_DAY_CREATED, SCORE_DAY_ID, SCORE_DAY_CURRENT, SCORE_DAY_MAX, SCORE_DAY_AVERAGES, SCORE_DAY_NKEYS };
struct score_day {
	struct text_span obj;
	struct json_scan_value v[SCORE_DAY_NKEYS];
};

struct pull_tenant {
	struct graph_client *gc;
	struct store *st;
	const struct graph_pull_opts *opts;
	const struct graph_pull_spec *spec;
	struct graph_pull_result *res;
	struct graph_tenant *gt;
	int outstanding;          /* our requests whose callback has not run */
	bool finished;
	const char *interrupted;  /* why the run's loop failed (every later error is its consequence), or NULL */
	/* users */
	struct store_delta cur;   /* the state the page in flight was fetched under (owned) */
	char *users_url;          /* the URL in flight */
	bool resynced;            /* a resync was started in this run */
	int malformed;
	/* batch and groups */
	struct pull_group *groups;
	size_t ngroups;
	int score_top;            /* the days of Secure Score asked for (0: none) */
	bool scores_complete;     /* the pages asked for all came */
	bool backfill_pending;    /* an earlier backfill stored in part (score_days) */
	cJSON *profiles;          /* control profiles gathered over their pages (owned) */
	bool profiles_complete;   /* their last page came */
	char *org_name;
	char *org_domain;
	/* What the batch brought, stored when the tenant finishes, in one
	 * transaction with the tenant's row: pointers into held bodies. */
	cJSON **held;             /* answers kept for that (owned) */
	size_t nheld;
	char **held_text;         /* answer texts kept for that (owned) */
	size_t nheld_text;
	const cJSON *org;         /* the organization object */
	const cJSON *skus;        /* the subscribedSkus body */
	struct score_day *score_days; /* the days of the secureScores pages, read in place */
	size_t nscore_days;
	struct buf errors;
	struct buf warnings;          /* what it could not read but the users' sync does without */
	struct buf denied_perms;      /* the permissions lacked for those reads, ", "-separated */
	struct buf denied_reads;      /* and the reads denied ("GET /organization, ...") */
};

/* Keeps a parsed value alive until the tenant is freed. */
static void tenant_hold_json(struct pull_tenant *pt, cJSON *json)
{
	pt->held = xrealloc(pt->held, (pt->nheld + 1) * sizeof *pt->held);
	pt->held[pt->nheld++] = json;
}

/* Keeps the answer's text (r's body, taken from it) until the tenant is
 * freed; its span, or an empty one when there is no body. */
static struct text_span tenant_hold_text(struct pull_tenant *pt, struct graph_result *r)
{
	if (!r->body || !r->body->data || !r->body->len) return (struct text_span){ 0 };
	size_t n = r->body->len;
	char *text = buf_steal(r->body);
	pt->held_text = xrealloc(pt->held_text, (pt->nheld_text + 1) * sizeof *pt->held_text);
	pt->held_text[pt->nheld_text++] = text;
	return (struct text_span){ text, n };
}

/* Keeps a copy of a piece of an answer until the tenant is freed. */
static struct text_span tenant_hold_span(struct pull_tenant *pt, struct text_span span)
{
	char *copy = xstrndup(span.p, span.n);
	pt->held_text = xrealloc(pt->held_text, (pt->nheld_text + 1) * sizeof *pt->held_text);
	pt->held_text[pt->nheld_text++] = copy;
	return (struct text_span){ copy, span.n };
}

/* The one line of a tenant not done once Graph or its token endpoint was
 * found not answering (graph_client_down): a new string, or NULL while
 * they answer. */
static char *down_line(const struct pull_tenant *pt)
{
	char why[400];
	if (!graph_client_down(pt->gc, why, sizeof why)) return NULL;
	return xasprintf("tenant %s: %s; the pull stopped (the next run goes on from here)", pt->spec->tenant_id, why);
}

static void tenant_error(struct pull_tenant *pt, const char *msg)
{
	/* after the loop failed, the errors of the cancelled requests ("could
	 * not reach …: cancelled") would hide the cause: name it instead, once;
	 * so for the requests not sent once Graph was found not answering */
	char *cause = pt->interrupted ? xasprintf("tenant %s: the pull was interrupted: %s", pt->spec->tenant_id,
	                                          pt->interrupted) : down_line(pt);
	if (cause) msg = cause;
	if (!(pt->errors.len && strstr(pt->errors.data, msg))) {
		if (pt->errors.len) buf_adds(&pt->errors, "; ");
		buf_adds(&pt->errors, msg);
		log_error("graph.pull", "%s", msg);
	}
	free(cause);
}

/* A read the contacts do without failed for good (a permission the app
 * was not given for licences or Secure Score): said once, the tenant ok. */
static void tenant_warn(struct pull_tenant *pt, const char *msg)
{
	if (pt->warnings.len && strstr(pt->warnings.data, msg)) return;
	if (pt->warnings.len) buf_adds(&pt->warnings, "; ");
	buf_adds(&pt->warnings, msg);
	log_warn("graph.pull", "%s", msg);
}

/* The reads denied that the contacts do without, as one warning: the
 * permissions, the reads, what is not updated, the admin-consent URL. */
static void denied_warn(struct pull_tenant *pt)
{
	if (!pt->denied_perms.len) return;
	char *url = graph_admin_consent_url(pt->gc, pt->spec->tenant_id);
	char *msg = xasprintf("tenant %s: the app lacks the application permission%s %s in this tenant (403 "
	                      "Authorization_RequestDenied on %s): the users were pulled, but the tenant's licences, "
	                      "Secure Score or organization are not updated until it is granted; add %s to the app "
	                      "registration and grant admin consent again: %s", pt->spec->tenant_id,
	                      strchr(pt->denied_perms.data, ',') ? "s" : "", pt->denied_perms.data,
	                      pt->denied_reads.data, strchr(pt->denied_perms.data, ',') ? "them" : "it", url);
	tenant_warn(pt, msg);
	free(msg);
	free(url);
}

static void tenant_finish(struct pull_tenant *pt);

/* Called at the end of every callback of this tenant. */
static void tenant_done_one(struct pull_tenant *pt)
{
	if (--pt->outstanding == 0) tenant_finish(pt);
}

/* graph_submit counting the request as outstanding; on a refused submit
 * (the tenant's token failed for good) the error is recorded. */
static int tenant_submit(struct pull_tenant *pt, const struct graph_request *req)
{
	struct err err;
	pt->outstanding++;
	if (graph_submit(pt->gt, req, &err) != 0) {
		pt->outstanding--;
		tenant_error(pt, err.msg);
		return -1;
	}
	return 0;
}

/* Percent-encodes s for a URL query value, appended to out. */
static void url_escape(const char *s, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
		    *p == '_' || *p == '.' || *p == '~') {
			buf_addc(out, (char)*p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			buf_add(out, e, 3);
		}
	}
}

/* ---- users ----------------------------------------------------------------- */

/* CPU seconds of the calling thread: what writing to the mirror costs,
 * unlike wall time, does not grow with the machine's load. */
static double thread_cpu_seconds(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return time_mono();
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void users_fetch(struct pull_tenant *pt);

static char *users_first_url(void)
{
	return xasprintf("/users/delta?$select=%s", graph_user_select);
}

/* Starts a full resync (staged), fetching the first page. */
static void users_resync(struct pull_tenant *pt, const char *why)
{
	struct err err;
	log_warn("graph.pull", "tenant %s: %s: starting a full resync of users", pt->spec->tenant_id, why);
	pt->resynced = true;
	pt->res->resync = true;
	char *first = users_first_url();
	if (graph_delta_start_resync(pt->st, pt->spec->tenant_id, first, &err) != 0) {
		tenant_error(pt, err.msg);
		free(first);
		return;
	}
	free(first);
	users_fetch(pt);
}

static void users_page_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct pull_tenant *pt = ctx;
	struct err err;
	const char *tid = pt->spec->tenant_id;
	if (r->ok && r->json) {
		pt->malformed = 0;
		struct graph_delta_counts c = { 0 };
		bool complete = false;
		const struct buf *text = r->resp ? &r->resp->body : NULL;
		double t0 = thread_cpu_seconds();
		int rc = graph_delta_apply_page_text(pt->st, tid, r->json, text && text->len ? text->data : NULL,
		                                     text ? text->len : 0, &pt->cur, &c, &complete, &err);
		pt->res->store_seconds += thread_cpu_seconds() - t0;
		if (rc != 0) {
			tenant_error(pt, err.msg);
		} else {
			pt->res->pages++;
			pt->res->users_upserted += c.upserted;
			pt->res->users_removed += c.removed_changed + c.removed_deleted + c.swapped_removed;
			if (!complete) users_fetch(pt);
		}
	} else if (r->ok) {
		err_set(&err, "tenant %s: users/delta returned an empty body", tid);
		tenant_error(pt, err.msg);
	} else if (r->status >= 200 && r->status < 300 && ++pt->malformed <= MALFORMED_RETRIES) {
		log_warn("graph.pull", "%s: fetching the page again", r->err.msg);
		users_fetch(pt);
	} else if (r->status && graph_delta_needs_resync(&r->gerr) && !pt->resynced) {
		char why[160];
		snprintf(why, sizeof why, "the delta state was rejected (%ld%s%s)", r->status, r->gerr.code[0] ? " " : "",
		         r->gerr.code);
		users_resync(pt, why);
	} else {
		tenant_error(pt, r->err.msg);
	}
	(void)t;
	tenant_done_one(pt);
}

/* Reads the delta state and fetches the page it points at. */
static void users_fetch(struct pull_tenant *pt)
{
	struct err err;
	const char *tid = pt->spec->tenant_id;
	store_delta_free(&pt->cur);
	if (store_delta_get(pt->st, tid, "users", &pt->cur, &err) < 0) {
		tenant_error(pt, err.msg);
		return;
	}
	free(pt->users_url);
	bool minimal = false;
	if (pt->cur.next_link) {
		pt->users_url = xstrdup(pt->cur.next_link);
		minimal = !pt->cur.resync && pt->cur.delta_link;
	} else if (pt->cur.delta_link) {
		pt->users_url = xstrdup(pt->cur.delta_link);
		minimal = true;
	} else {
		/* The first round: straight into the mirror when it is empty,
		 * else (state lost, mirror kept) as a resync. */
		long long n = 0;
		if (store_user_count(pt->st, tid, STORE_USERS_ALL, &n, &err) != 0) {
			tenant_error(pt, err.msg);
			return;
		}
		pt->res->first_round = true;
		if (n > 0 && !pt->resynced) {
			pt->users_url = NULL;
			users_resync(pt, "no delta state for a tenant with a mirror");
			return;
		}
		pt->users_url = users_first_url();
	}
	/* a link stored under another graph.endpoint (the config changed it)
	 * is not followed there with this tenant's token: a full resync here */
	if (pt->users_url && !pt->resynced && !graph_url_is_endpoints(pt->gt, pt->users_url)) {
		free(pt->users_url);
		pt->users_url = NULL;
		users_resync(pt, "its stored delta link is not below graph.endpoint (was the endpoint changed?)");
		return;
	}
	/* The biggest pages Graph gives, and on incremental rounds only the
	 * changed properties (the merge keeps the rest). Those pages are asked
	 * for uncompressed: an hourly one is a few changed properties (1.6 KB
	 * for 9 users), where inflating costs a zlib state (~40 KB zeroed) per
	 * page; full pages (999 whole users, ~1.6 MB) stay compressed. */
	static const char *const full_headers[] = { "Prefer: odata.maxpagesize=999", NULL };
	static const char *const minimal_headers[] = { "Prefer: return=minimal, odata.maxpagesize=999",
		                                       "Accept-Encoding: identity", NULL };
	tenant_submit(pt, &(struct graph_request){
		.url = pt->users_url, .headers = minimal ? minimal_headers : full_headers,
		.on_done = users_page_done, .ctx = pt });
}

/* The guard that keeps a partial mirror from being planned: whatever
 * happened (an error already recorded or not), a users round still in
 * progress in the store fails the tenant. A first round writes straight
 * into the empty mirror, so the mirror of an unfinished one is partial; a
 * sync plans only tenants whose pull is ok. */
static void users_check_complete(struct pull_tenant *pt)
{
	struct err err;
	struct store_delta d = { 0 };
	char msg[300];
	const char *tid = pt->spec->tenant_id;
	int rc = store_delta_get(pt->st, tid, "users", &d, &err);
	if (rc < 0) {
		tenant_error(pt, err.msg);
	} else if (rc == 0 && d.next_link) {
		snprintf(msg, sizeof msg, "tenant %s: the users round did not complete (%s); the next pull resumes it", tid,
		         d.resync ? "a staged resync: the mirror is kept as it was" : "the mirror is partial");
		tenant_error(pt, msg);
	} else if ((rc == STORE_NOTFOUND || !d.delta_link) && !pt->errors.len) {
		snprintf(msg, sizeof msg, "tenant %s: no users round has completed", tid);
		tenant_error(pt, msg);
	}
	store_delta_free(&d);
}

/* ---- groups ---------------------------------------------------------------- */

static void members_fetch(struct pull_group *g, const char *url);
static void members_page_take(struct pull_group *g, const char *text, size_t len, long status);

static void members_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct pull_group *g = ctx;
	struct pull_tenant *pt = g->pt;
	const struct buf *body = r->body;
	if (!r->ok || !body || !body->len) tenant_error(pt, r->ok ? "transitiveMembers returned an empty body" : r->err.msg);
	else members_page_take(g, body->data, body->len, r->status);
	(void)t;
	tenant_done_one(pt);
}

/* The requests whose answers are asked for uncompressed (a server that
 * compresses anyway is decoded):
 * - member pages: GUID lists fetched again on every pull; gzip shrinks
 *   them only ~3.4x (77 KB to 23 KB per 1,000 members) and inflating them
 *   was the largest single cost of an incremental pull (27% of its
 *   instructions, 100 tenants x 1,000 users);
 * - a $batch of a few KB (an hourly one: organization, SKUs, a day or two
 *   of Secure Score, group look-ups; ~7 KB): compressed it would take the
 *   same round trip (both fit the first TCP window), and inflating costs a
 *   zlib state (~40 KB zeroed) and ~25 instructions a byte.
 * Full user pages (names and addresses, 6-10x smaller gzipped; incremental
 * ones are asked uncompressed, see users_fetch) and a $batch that backfills
 * scores or carries the control profiles (hundreds of KB) stay compressed. */
static const char *const uncompressed_headers[] = { "Accept-Encoding: identity", NULL };

/* The first transitiveMembers page of group id, as big as Graph gives. */
static char *members_first_url(const char *id)
{
	struct buf url = { 0 };
	buf_adds(&url, "/groups/");
	url_escape(id, &url);
	buf_adds(&url, "/transitiveMembers?$select=id&$top=999");
	return buf_steal(&url);
}

static void members_fetch(struct pull_group *g, const char *url)
{
	char *first = NULL;
	if (!url) url = first = members_first_url(g->id);
	tenant_submit(g->pt, &(struct graph_request){ .url = url, .headers = uncompressed_headers, .raw = true,
	                                               .on_done = members_done, .ctx = g });
	free(first);
}

/* A members part's page read in place while its $batch answer was
 * scanned (batch_members_read): its ids and nextLink, kept until the
 * group's look-up in the same answer says whether they are taken. */
struct members_read {
	bool read;
	struct graph_members m;
	char *next;
	uint64_t digest[2];       /* text_digest of the page's text */
	size_t bytes;             /* its length */
	bool same;                /* it is the page the group's stored rows came from: not read */
};

static const uint64_t page_digest_init[2] = TEXT_DIGEST_INIT;

/* The page key of member pages: their text_digest (in order) and their
 * length, "HEX32:BYTES". Stored on the group's row with the member rows
 * taken from those pages (store_group_page_put). */
static void page_key(const uint64_t state[2], size_t bytes, char out[64])
{
	char hex[33];
	text_digest_hex(state, hex);
	snprintf(out, 64, "%s:%zu", hex, bytes);
}

/* The length in a stored page key, or 0. */
static size_t page_key_bytes(const char *key)
{
	const char *colon = key ? strchr(key, ':') : NULL;
	return colon ? (size_t)strtoull(colon + 1, NULL, 10) : 0;
}

/* Whether text[0..len) is the one page g's stored rows came from (a group
 * of one page: the key of a group of several never matches one page). */
static bool members_page_is_stored(const struct pull_group *g, const char *text, size_t len)
{
	if (!g->page_stored || page_key_bytes(g->page_stored) != len) return false;
	uint64_t st[2] = TEXT_DIGEST_INIT;
	text_digest_next(st, text, len);
	char key[64];
	page_key(st, len, key);
	return strcmp(key, g->page_stored) == 0;
}

/* Whether a group's page asked under g->guess may be compared with the
 * stored key: the look-up confirmed the id (a recreated group's rows are
 * another group's). */
static bool members_guess_holds(const struct pull_group *g)
{
	return g->page_stored && g->guess && g->id && !strcasecmp(g->id, g->guess);
}

/* The group's one page is the stored one: its rows stay (tenant_results_put). */
static void members_same(struct pull_group *g)
{
	log_debug("graph.pull", "tenant %s: group %s: the member page is the one its stored members came from "
	          "(not read again)", g->pt->spec->tenant_id, g->id);
	g->same = true;
	g->complete = true;
}

/* Takes a members page's text into the group; follows its nextLink, or
 * marks the group complete. A malformed page fails the tenant. */
static void members_page_take(struct pull_group *g, const char *text, size_t len, long status)
{
	struct err err;
	char *next = NULL;
	if (g->pages == 0 && members_guess_holds(g) && members_page_is_stored(g, text, len)) {
		/* the very text its rows were taken from (checked then): not read again */
		members_same(g);
		return;
	}
	text_digest_next(g->page_state, text, len);
	g->page_bytes += len;
	g->pages++;
	if (graph_members_page(text, len, &g->members, &next, &err) != 0) {
		char *msg = xasprintf("tenant %s: GET /groups/%s/transitiveMembers: Graph sent malformed JSON "
		                      "(%zu bytes, status %ld): %s", g->pt->spec->tenant_id, g->id, len, status, err.msg);
		tenant_error(g->pt, msg);
		free(msg);
		return;
	}
	if (next) members_fetch(g, next);
	else g->complete = true;
	free(next);
}

/* The $batch's members part of a group (asked under g->guess). Its page is
 * taken when the group's look-up (read before it) found that very id;
 * when the look-up found another id, group_resolved fetched that one's
 * members instead; when the look-up has not answered yet (retried after a
 * 429), this page is dropped and group_resolved fetches them later. A
 * failed part, the id confirmed, falls back to an ordinary request. */
static void members_part_done(struct pull_group *g, long status, struct text_span body, struct members_read *pre)
{
	if (!g->speculative) return;
	g->speculative = false;
	if (!g->id || strcasecmp(g->id, g->guess) != 0) return;
	if (!(status >= 200 && status < 300 && body.p)) {
		members_fetch(g, NULL);
	} else if (pre && pre->same) {
		members_same(g);
	} else if (pre && pre->read) {
		/* read while the $batch answer was scanned (batch_members_read):
		 * the group's first page, so its ids move over whole */
		graph_members_free(&g->members);
		g->members = pre->m;
		pre->m = (struct graph_members){ 0 };
		memcpy(g->page_state, pre->digest, sizeof g->page_state);
		g->page_bytes = pre->bytes;
		g->pages = 1;
		if (pre->next) members_fetch(g, pre->next);
		else g->complete = true;
	} else {
		members_page_take(g, body.p, body.n, status);
	}
}

/* A group look-up part: by id (an object) or by name (a collection). */
static void group_resolved(struct pull_tenant *pt, struct pull_group *g, long status, const cJSON *body)
{
	char msg[600];
	const char *tid = pt->spec->tenant_id;
	if (g->by_id) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(body, "id");
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(body, "displayName");
		if (status == 404 || !cJSON_IsString(id)) {
			snprintf(msg, sizeof msg, "tenant %s: the policy's group id '%s' does not exist in this tenant", tid,
			         g->ref);
			tenant_error(pt, msg);
			return;
		}
		g->id = xstrdup(id->valuestring);
		g->name = xstrdup(cJSON_IsString(name) ? name->valuestring : g->ref);
	} else {
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(body, "value");
		int n = cJSON_IsArray(value) ? cJSON_GetArraySize(value) : 0;
		if (n != 1) {
			snprintf(msg, sizeof msg, "tenant %s: the policy's group '%s' %s", tid, g->ref,
			         n == 0 ? "does not exist in this tenant (check the name, or give the group id)"
			                : "matches several groups: give its id instead of the name");
			tenant_error(pt, msg);
			return;
		}
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(value->child, "id");
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(value->child, "displayName");
		if (!cJSON_IsString(id)) {
			snprintf(msg, sizeof msg, "tenant %s: the look-up of group '%s' returned no id", tid, g->ref);
			tenant_error(pt, msg);
			return;
		}
		g->id = xstrdup(id->valuestring);
		g->name = xstrdup(cJSON_IsString(name) ? name->valuestring : g->ref);
	}
	/* its first page asked for under this id (GUIDs: case aside) in a $batch: taken there */
	if (g->speculative && !strcasecmp(g->guess, g->id)) return;
	g->speculative = false;
	members_fetch(g, NULL);
}

/* ---- organization, licences, secure score ------------------------------------ */

/* Reads the organization's name and default domain; the object is kept
 * for org_write. */
static void org_read(struct pull_tenant *pt, const cJSON *body)
{
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(body, "value");
	const cJSON *org = cJSON_IsArray(value) ? value->child : body;
	if (!cJSON_IsObject(org)) return;
	pt->org = org;
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(org, "displayName");
	if (cJSON_IsString(name)) {
		free(pt->org_name);
		pt->org_name = xstrdup(name->valuestring);
	}
	const cJSON *domains = cJSON_GetObjectItemCaseSensitive(org, "verifiedDomains");
	for (const cJSON *d = cJSON_IsArray(domains) ? domains->child : NULL; d; d = d->next) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(d, "name");
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d, "isDefault")) && cJSON_IsString(n)) {
			free(pt->org_domain);
			pt->org_domain = xstrdup(n->valuestring);
		}
	}
}

/* The organization as received (verified domains etc.), for reports. */
static int org_write(struct pull_tenant *pt, struct err *err)
{
	char *key = xasprintf("graph.organization.%s", pt->spec->tenant_id);
	char *text = cJSON_PrintUnformatted(pt->org);
	int rc = store_kv_put(pt->st, key, text, err);
	cJSON_free(text);
	free(key);
	return rc;
}

static long long json_count(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (cJSON_IsNumber(v)) return (long long)v->valuedouble;
	if (cJSON_IsString(v)) return strtoll(v->valuestring, NULL, 10);
	return 0;
}

static const char *json_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void today_utc(char out[11])
{
	char iso[32];
	time_iso8601(time_now(), iso, sizeof iso);
	memcpy(out, iso, 10);
	out[10] = '\0';
}

static int skus_write(struct pull_tenant *pt, struct err *err)
{
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(pt->skus, "value");
	int n = cJSON_IsArray(value) ? cJSON_GetArraySize(value) : 0;
	struct store_license *rows = xcalloc((size_t)n + 1, sizeof *rows);
	size_t k = 0;
	for (const cJSON *s = n ? value->child : NULL; s; s = s->next) {
		const char *sku = json_str(s, "skuId");
		if (!sku) continue;
		const cJSON *pre = cJSON_GetObjectItemCaseSensitive(s, "prepaidUnits");
		rows[k++] = (struct store_license){
			.sku_id = sku, .sku_part_number = json_str(s, "skuPartNumber"),
			.enabled = json_count(pre, "enabled"), .suspended = json_count(pre, "suspended"),
			.warning = json_count(pre, "warning"), .locked_out = json_count(pre, "lockedOut"),
			.consumed = json_count(s, "consumedUnits"),
			.capability_status = json_str(s, "capabilityStatus"), .applies_to = json_str(s, "appliesTo"),
		};
	}
	char day[11];
	today_utc(day);
	int rc = store_license_snapshot_put(pt->st, pt->spec->tenant_id, day, rows, k, err);
	if (rc == 0) pt->res->skus = (long)k;
	free(rows);
	return rc;
}

static void scores_fetch(struct pull_tenant *pt, const char *url);

/* The members of a day's object that score_day_put reads, by SCORE_DAY_*. */
static const char *const score_day_keys[SCORE_DAY_NKEYS] = {
	[SCORE_DAY_CREATED] = "createdDateTime", [SCORE_DAY_ID] = "id", [SCORE_DAY_CURRENT] = "currentScore",
	[SCORE_DAY_MAX] = "maxScore", [SCORE_DAY_AVERAGES] = "averageComparativeScores",
};

/* Keeps an element of a secureScores page's "value" (a day's object, in
 * vals[SCORE_DAY_NKEYS]) with its members, as the page's one scan found them. */
static int score_day_keep(void *ud, size_t i, const struct json_scan_value *vals)
{
	struct pull_tenant *pt = ud;
	(void)i;
	pt->score_days = xrealloc(pt->score_days, (pt->nscore_days + 1) * sizeof *pt->score_days);
	struct score_day *d = &pt->score_days[pt->nscore_days++];
	d->obj = (struct text_span){ vals[SCORE_DAY_NKEYS].text, vals[SCORE_DAY_NKEYS].len };
	memcpy(d->v, vals, sizeof d->v);
	return 0;
}

/* Keeps a secureScores page (its text) for scores_write and follows its
 * nextLink while the days asked for are not all there. The pages are read
 * from their text: a day's object is stored as Graph sent it, so it is
 * never parsed into a tree and printed again (that was 15% of an hourly
 * pull's instructions). */
static void scores_page(struct pull_tenant *pt, struct text_span body)
{
	static const char *const also[] = { "@odata.nextLink" };
	struct json_scan_value next_link;
	struct err err;
	bool found;
	size_t had = pt->nscore_days;
	/* one pass: the days, their members, and the nextLink beside them */
	if (json_scan_each_record_also(body.p, body.n, "value", score_day_keys, SCORE_DAY_NKEYS, NULL, score_day_keep,
	                               pt, &found, also, 1, &next_link, &err) != 0) {
		pt->nscore_days = had;   /* none of a malformed page */
		char msg[300];
		snprintf(msg, sizeof msg, "tenant %.100s: a secureScores page is malformed JSON: %.150s", pt->spec->tenant_id,
		         err.msg);
		tenant_error(pt, msg);
		return;
	}
	/* $top=N asks for the N newest days; a nextLink beyond them is older
	 * history we already hold (or that Graph pages below N: then go on). */
	if (next_link.type == JSON_SCAN_STRING && pt->nscore_days < (size_t)pt->score_top) {
		struct buf next = { 0 };
		if (json_scan_string_buf(&next_link, &next) >= 0) scores_fetch(pt, next.data);
		else pt->scores_complete = true;
		buf_free(&next);
	} else {
		pt->scores_complete = true;
	}
}

/* A number member (or a numeric string, as Graph sends some), else 0. */
static double scan_number(const struct json_scan_value *v)
{
	if (v->type == JSON_SCAN_NUMBER) return strtod(v->text, NULL);   /* stops at the ',' or '}' after it */
	if (v->type != JSON_SCAN_STRING) return 0;
	char num[64];
	return json_scan_string(v, num, sizeof num) >= 0 ? strtod(num, NULL) : 0;
}

/* Stores one day's object (an element of a page's "value", as sent); an
 * element that is no object, or names no day, is skipped. */
static int score_day_put(struct pull_tenant *pt, const struct score_day *d, struct err *err)
{
	const struct text_span obj = d->obj;
	const struct json_scan_value *v = d->v;
	char created[64] = "", id[256] = "";
	if (*obj.p != '{') return 0;
	if (v[SCORE_DAY_CREATED].type == JSON_SCAN_STRING) json_scan_string(&v[SCORE_DAY_CREATED], created, sizeof created);
	if (v[SCORE_DAY_ID].type == JSON_SCAN_STRING) json_scan_string(&v[SCORE_DAY_ID], id, sizeof id);
	char day[11] = "";
	if (strlen(created) >= 10) memcpy(day, created, 10);
	else if (strlen(id) >= 10) memcpy(day, id + strlen(id) - 10, 10);
	day[10] = '\0';
	if (!day[0]) return 0;
	/* Stored as sent when it is strict JSON (always, from Graph); else
	 * through cJSON, printed compactly: JSON-equal either way. Its control
	 * scores are stored in it, not again apart (store_secure_score_put). */
	char *raw = NULL, *averages = NULL;
	if (json_scan_strings_strict(obj.p, obj.n)) {
		raw = xstrndup(obj.p, obj.n);
		if (v[SCORE_DAY_AVERAGES].type != JSON_SCAN_ABSENT)
			averages = xstrndup(v[SCORE_DAY_AVERAGES].text, v[SCORE_DAY_AVERAGES].len);
	} else {
		cJSON *tree = cJSON_ParseWithLength(obj.p, obj.n);
		char *printed = tree ? cJSON_PrintUnformatted(tree) : NULL;
		static const char *const arrays[] = { "averageComparativeScores" };
		struct json_scan_value a;
		if (printed && json_scan_members(printed, strlen(printed), arrays, 1, &a, err) == 0) {
			raw = xstrdup(printed);
			if (a.type != JSON_SCAN_ABSENT) averages = xstrndup(a.text, a.len);
		}
		if (printed) cJSON_free(printed);
		cJSON_Delete(tree);
	}
	struct store_secure_score sc = { .tenant_id = pt->spec->tenant_id, .day = day,
	                                 .current_score = scan_number(&v[SCORE_DAY_CURRENT]),
	                                 .max_score = scan_number(&v[SCORE_DAY_MAX]), .averages = averages,
	                                 .raw = raw };
	int rc = store_secure_score_put(pt->st, &sc, err);
	free(averages);
	free(raw);
	if (rc != 0) return -1;
	pt->res->scores++;
	return 0;
}

/* The kv key that marks a tenant's Secure Score backfill as unfinished. */
static char *backfill_key(const struct pull_tenant *pt)
{
	return xasprintf("graph.secure_score.backfill_pending.%s", pt->spec->tenant_id);
}

/* Stores each kept day. Unknown fields anywhere are kept: the whole object
 * (raw) and its arrays are stored as received. */
static int scores_write(struct pull_tenant *pt, struct err *err)
{
	for (size_t i = 0; i < pt->nscore_days; i++)
		if (score_day_put(pt, &pt->score_days[i], err) != 0) return -1;
	if (!pt->score_top) return 0;
	/* a backfill stored in part stays pending (score_days); one whole, or
	 * an hourly round, ends it. Nothing stored: nothing to mend. */
	if (!pt->scores_complete && !pt->nscore_days) return 0;
	if (pt->scores_complete && !pt->backfill_pending) return 0;   /* nothing pending to clear */
	char *key = backfill_key(pt);
	char today[11];
	today_utc(today);
	int rc = store_kv_put(pt->st, key, pt->scores_complete ? NULL : today, err);
	free(key);
	return rc;
}

static void scores_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct pull_tenant *pt = ctx;
	if (r->ok && r->resp && r->resp->body.len) scores_page(pt, tenant_hold_text(pt, r));
	else tenant_error(pt, r->ok ? "secureScores returned an empty body" : r->err.msg);
	(void)t;
	tenant_done_one(pt);
}

static void scores_fetch(struct pull_tenant *pt, const char *url)
{
	tenant_submit(pt, &(struct graph_request){ .url = url, .raw = true, .on_done = scores_done, .ctx = pt });
}

/* How many days of Secure Score to ask for: 90 the first time, and again
 * while a backfill is unfinished (a page of it failed after others were
 * stored: the days it lacked would otherwise stay a gap in the history);
 * else the days since the newest stored one (that one included: it may
 * have moved). */
static int score_days(struct pull_tenant *pt)
{
	char *day = NULL, *key = backfill_key(pt), *pending = NULL;
	struct err err;
	int got = store_kv_get(pt->st, key, &pending, &err);
	free(key);
	free(pending);
	pt->backfill_pending = got == 0;
	if (got == 0) return SCORE_DAYS_MAX;
	if (store_secure_score_latest_day(pt->st, pt->spec->tenant_id, &day, &err) != 0) return SCORE_DAYS_MAX;
	struct tm tm = { 0 };
	int top = SCORE_DAYS_MAX;
	if (sscanf(day, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) == 3) {
		tm.tm_year -= 1900;
		tm.tm_mon -= 1;
		double since = (time_now() - (double)timegm(&tm)) / 86400.0;
		top = (int)floor(since) + 1;
		if (top < 1) top = 1;
		if (top > SCORE_DAYS_MAX) top = SCORE_DAYS_MAX;
	}
	free(day);
	return top;
}

/* ---- secureScoreControlProfiles -------------------------------------------- */

/* Whether the tenant's control profiles are due: not stored today yet.
 * They change rarely, and only the breakdown's titles need them. */
static bool profiles_due(struct pull_tenant *pt)
{
	char day[11], today[11];
	struct err err;
	today_utc(today);
	int rc = store_history_profiles_day_get(pt->st, pt->spec->tenant_id, day, &err);
	if (rc != 0 && rc != STORE_NOTFOUND) log_warn("graph.pull", "%s", err.msg);
	return rc != 0 || strcmp(day, today) != 0;
}

static void profiles_fetch(struct pull_tenant *pt, const char *url);

/* Gathers a page of profiles; follows its nextLink. After the last page
 * they are stored (profiles_write) when the tenant finishes. */
static void profiles_page(struct pull_tenant *pt, const cJSON *body)
{
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(body, "value");
	if (!cJSON_IsArray(value)) {
		tenant_error(pt, "secureScoreControlProfiles: the answer has no \"value\" array");
		return;
	}
	if (!pt->profiles) pt->profiles = cJSON_CreateArray();
	for (const cJSON *p = value->child; p; p = p->next) cJSON_AddItemToArray(pt->profiles, cJSON_Duplicate(p, true));
	const char *next = json_str(body, "@odata.nextLink");
	if (next) profiles_fetch(pt, next);
	else pt->profiles_complete = true;
}

/* Stores the gathered profiles as one array, with today as their day. */
static int profiles_write(struct pull_tenant *pt, struct err *err)
{
	char *json = cJSON_PrintUnformatted(pt->profiles);
	char today[11];
	today_utc(today);
	int rc = store_history_profiles_put(pt->st, pt->spec->tenant_id, json, err) != 0 ||
	                 store_history_profiles_day_put(pt->st, pt->spec->tenant_id, today, err) != 0
	             ? -1
	             : 0;
	cJSON_free(json);
	return rc;
}

static void profiles_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct pull_tenant *pt = ctx;
	if (r->ok && r->json) profiles_page(pt, r->json);
	else tenant_error(pt, r->ok ? "secureScoreControlProfiles returned an empty body" : r->err.msg);
	(void)t;
	tenant_done_one(pt);
}

static void profiles_fetch(struct pull_tenant *pt, const char *url)
{
	tenant_submit(pt, &(struct graph_request){ .url = url, .on_done = profiles_done, .ctx = pt });
}

/* ---- $batch ---------------------------------------------------------------- */

/* One part of a $batch: "org", "skus", "scores", "profiles", "g<N>"
 * (group N's look-up) or "m<N>" (its first members page). */
struct batch_part {
	char id[16];
	char *url;
	bool left_out;            /* asked again because no answer held it */
};

/* A $batch sent (POST), or the rest of its answer fetched from the
 * nextLink it came with (GET next): parts are those still awaited. */
struct batch {
	struct pull_tenant *pt;
	struct batch_part *parts;
	size_t n;
	int round;
	int follows;              /* nextLinks followed for this round's answer */
	char *next;               /* the nextLink to GET; NULL: POST the parts */
	bool auth_retried;        /* parts refused with 401 were sent again once */
	bool large;               /* may answer with more than a few KB: ask for gzip */
};

static void batch_free(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++) free(b->parts[i].url);
	free(b->parts);
	free(b->next);
	free(b);
}

/* A batch to carry some of b's parts on (batch_take): the next round
 * (round + 1), or the rest of this round's answer behind next. */
static struct batch *batch_derive(const struct batch *b, int round, const char *next)
{
	struct batch *d = xcalloc(1, sizeof *d);
	d->pt = b->pt;
	d->round = round;
	d->follows = next ? b->follows + 1 : 0;
	d->next = next ? xstrdup(next) : NULL;
	d->auth_retried = b->auth_retried;
	d->large = b->large;
	d->parts = xcalloc(b->n, sizeof *d->parts);
	return d;
}

/* Adds a copy of part p to d. */
static void batch_take(struct batch *d, const struct batch_part *p, bool left_out)
{
	d->parts[d->n] = *p;
	d->parts[d->n].url = xstrdup(p->url);
	d->parts[d->n].left_out = left_out;
	d->n++;
}

static void batch_send(struct batch *b);

/* A part of a $batch answer, read from its text: spans into the answer. */
struct batch_answer {
	bool found;
	long status;
	struct json_scan_value headers;   /* JSON_SCAN_ABSENT when none */
	struct text_span body;            /* p NULL when none */
};

struct header_find {
	const char *name;
	char *out;
	size_t cap;
	bool found;
};

static int header_match(void *ud, const char *key, const struct json_scan_value *v)
{
	struct header_find *h = ud;
	if (h->found || !key || !str_ieq(key, h->name)) return 0;
	if (v->type == JSON_SCAN_STRING) h->found = json_scan_string(v, h->out, h->cap) >= 0;
	else if (v->type == JSON_SCAN_NUMBER && v->len < h->cap) {
		memcpy(h->out, v->text, v->len);
		h->out[v->len] = '\0';
		h->found = true;
	}
	return 0;
}

/* The part's header value (case-insensitive name) into out[cap]; false
 * when it has none. */
static bool part_header(const struct batch_answer *a, const char *name, char *out, size_t cap)
{
	struct header_find h = { .name = name, .out = out, .cap = cap };
	struct err err;
	if (a->headers.type != JSON_SCAN_OBJECT) return false;
	json_scan_each_member(a->headers.text, a->headers.len, header_match, &h, &err);
	return h.found;
}

/* The message for a failed part, as for a request of its own. A part
 * the users' sync does without (the organization, licences, Secure Score:
 * not a group's) that Graph denies for a missing permission is a warning:
 * the app may have been given User.Read.All only, as a plain contact sync
 * needs; its data is not updated until the permission is granted. */
static void part_error(struct pull_tenant *pt, const struct batch_part *p, long status, struct text_span body)
{
	struct graph_error ge = { .status = status };
	if (body.p) graph_error_parse(status, body.p, body.n, &ge);
	char what[256], msg[1024];
	graph_describe("GET", p->url, what, sizeof what);
	const char *perm = graph_permission_for(p->url);
	if (status == 403 && !strcmp(ge.code, "Authorization_RequestDenied")) {
		char *url = graph_admin_consent_url(pt->gc, pt->spec->tenant_id);
		if (p->id[0] != 'm' && p->id[0] != 'g') {   /* said once for all of them: denied_warn */
			const char *name = perm ? perm : "(unknown)";
			if (!pt->denied_perms.len || !strstr(pt->denied_perms.data, name))
				buf_printf(&pt->denied_perms, "%s%s", pt->denied_perms.len ? ", " : "", name);
			buf_printf(&pt->denied_reads, "%s%s", pt->denied_reads.len ? ", " : "", what);
			log_debug("graph.pull", "tenant %s: %s denied (403 %s)%s%s", pt->spec->tenant_id, what, ge.code,
			          ge.request_id[0] ? ", request-id " : "", ge.request_id);
			free(url);
			return;
		}
		snprintf(msg, sizeof msg, "tenant %s: %s was denied (403 Authorization_RequestDenied): the app lacks the "
		         "application permission %s in this tenant; add it to the app registration and grant admin "
		         "consent again: %s%s%s", pt->spec->tenant_id, what, perm ? perm : "(unknown)", url,
		         ge.request_id[0] ? " (request-id " : "", ge.request_id[0] ? ge.request_id : "");
		if (ge.request_id[0]) strncat(msg, ")", sizeof msg - strlen(msg) - 1);
		free(url);
	} else {
		snprintf(msg, sizeof msg, "tenant %s: %s: Graph returned %ld%s%s%s%s", pt->spec->tenant_id, what, status,
		         ge.code[0] ? " " : "", ge.code, ge.message[0] ? ": " : "", ge.message);
	}
	tenant_error(pt, msg);
}

/* The part's body parsed, kept by the tenant; NULL (with the tenant's
 * error) when it is not JSON. The secureScores part is read from its text
 * instead (scores_page): the others are small. */
static const cJSON *part_json(struct pull_tenant *pt, const struct batch_part *p, struct text_span body)
{
	cJSON *j = body.p ? cJSON_ParseWithLength(body.p, body.n) : NULL;
	if (!j) {
		char msg[300];
		snprintf(msg, sizeof msg, "tenant %s: the $batch part '%s' has %s", pt->spec->tenant_id, p->id,
		         body.p ? "a malformed JSON body" : "no body");
		tenant_error(pt, msg);
		return NULL;
	}
	tenant_hold_json(pt, j);
	return j;
}

static void batch_part_done(struct pull_tenant *pt, const struct batch_part *p, long status, struct text_span body,
                            struct members_read *pre)
{
	bool ok = status >= 200 && status < 300;
	if (p->id[0] == 'm') {
		members_part_done(&pt->groups[strtol(p->id + 1, NULL, 10)], status, body, pre);
		return;
	}
	if (p->id[0] == 'g') {
		struct pull_group *g = &pt->groups[strtol(p->id + 1, NULL, 10)];
		if (ok) {
			const cJSON *j = part_json(pt, p, body);
			if (j) group_resolved(pt, g, status, j);
		} else if (status == 404 && g->by_id) {
			group_resolved(pt, g, status, NULL);
		} else {
			part_error(pt, p, status, body);
		}
		return;
	}
	if (!ok) {
		part_error(pt, p, status, body);
		return;
	}
	if (!strcmp(p->id, "scores")) {
		if (body.p) scores_page(pt, tenant_hold_span(pt, body));
		else tenant_error(pt, "secureScores returned an empty body");
		return;
	}
	const cJSON *j = part_json(pt, p, body);
	if (!j) return;
	if (!strcmp(p->id, "org")) org_read(pt, j);
	else if (!strcmp(p->id, "skus")) pt->skus = j;
	else if (!strcmp(p->id, "profiles")) profiles_page(pt, j);
}

struct batch_read {
	const struct batch *b;
	struct batch_answer *ans;   /* by part index */
	struct members_read *pre;   /* by part index */
};

/* The index of the part whose id is the string value v, or b->n. */
static size_t batch_part_index(const struct batch *b, const struct json_scan_value *v)
{
	char id[32];
	if (v->type != JSON_SCAN_STRING || json_scan_string(v, id, sizeof id) < 0) return b->n;
	for (size_t k = 0; k < b->n; k++)
		if (!strcmp(b->parts[k].id, id)) return k;
	return b->n;
}

/* json_scan_reader for a part's "body": a members part's page (80 KB per
 * 1,000 members, most of an hourly $batch) is read right there, not
 * skipped by the scan and read again after it. Needs the part's id before
 * its body (Graph's order: id, status, headers, body); else, or when the
 * page is not one, 0: the scan skips it and members_part_done reads it. */
static size_t batch_members_read(void *ud, size_t i, const struct json_scan_value *vals, const char *p, size_t left)
{
	struct batch_read *br = ud;
	struct err err;
	size_t k = batch_part_index(br->b, &vals[0]), used = 0;
	(void)i;
	if (k == br->b->n || br->b->parts[k].id[0] != 'm' || br->pre[k].read) return 0;
	struct members_read *mr = &br->pre[k];
	/* The stored page's text again, byte for byte: its span is that
	 * length (a whole JSON value has no longer valid continuation, and the
	 * scan goes on checking after it); members_part_done takes it as the
	 * same only once the look-up confirmed the id. */
	const struct pull_group *g = &br->b->pt->groups[strtol(br->b->parts[k].id + 1, NULL, 10)];
	size_t stored = g->page_stored ? page_key_bytes(g->page_stored) : 0;
	if (stored && stored <= left && members_page_is_stored(g, p, stored)) {
		mr->read = mr->same = true;
		return stored;
	}
	if (graph_members_page_prefix(p, left, &mr->m, &mr->next, &used, &err) != 0) return 0;
	mr->read = true;
	memcpy(mr->digest, page_digest_init, sizeof mr->digest);
	text_digest_next(mr->digest, p, used);
	mr->bytes = used;
	return used;
}

/* One element of "responses" (its id, status, headers, body): to the part
 * of its id. */
static int batch_answer_read(void *ud, size_t i, const struct json_scan_value *m)
{
	struct batch_read *br = ud;
	size_t k = batch_part_index(br->b, &m[0]);
	(void)i;
	if (k == br->b->n || br->ans[k].found) return 0;
	br->ans[k] = (struct batch_answer){ .found = true, .headers = m[2] };
	if (m[1].type == JSON_SCAN_NUMBER) br->ans[k].status = strtol(m[1].text, NULL, 10);
	if (m[3].type != JSON_SCAN_ABSENT && m[3].type != JSON_SCAN_NULL)
		br->ans[k].body = (struct text_span){ m[3].text, m[3].len };
	return 0;
}

/* The link to the rest of a $batch answer. Microsoft's JSON batching
 * text (https://learn.microsoft.com/graph/json-batching, as published
 * until 2024) says: "In addition to the responses property, there might be
 * a nextLink property in the batch response. This allows Microsoft Graph
 * to return a batch response as soon as any of the individual requests has
 * completed. To ensure that all individual responses have been received,
 * continue to follow the nextLink as long as it exists." It does not spell
 * the member's name: Microsoft's SDKs (BatchResponseContent in .NET, Java
 * and JavaScript) read "@odata.nextLink"; OData 4.01 JSON writes the
 * annotation "@nextLink"; the text's bare word is taken too. Read in the
 * same pass as "responses" (json_scan_each_record_also). */
static const char *const batch_next_keys[] = { "@odata.nextLink", "@nextLink", "nextLink" };
#define BATCH_NEXT_NKEYS (sizeof batch_next_keys / sizeof *batch_next_keys)

/* A $batch answer is read from its text (json_scan), not parsed into a
 * tree: the parts' bodies are cut out of it; all but the Secure Score
 * pages (the bulk of it) are then parsed on their own. The answer to a
 * batch's nextLink is read the same way, its parts as the first answer's.
 * A part no answer held: fetched behind the nextLink when there is one
 * (at most BATCH_MAX_FOLLOWS), else asked again in the next round (all
 * parts are GETs), at most BATCH_MAX_ROUNDS as 429 parts are. */
static void batch_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct batch *b = ctx;
	struct pull_tenant *pt = b->pt;
	struct batch_answer *ans = NULL;
	struct members_read *pre = NULL;
	struct batch *again = NULL, *rest = NULL;
	struct buf next = { 0 }, left_out = { 0 };
	const char *req = b->next ? "GET on the $batch answer's nextLink" : "POST /$batch";
	if (!r->ok && b->next && b->round + 1 < BATCH_MAX_ROUNDS && !graph_client_down(pt->gc, NULL, 0)) {
		/* the link itself failed (expired, refused, no answer after the
		 * retries): the parts it was to bring are asked again in a new
		 * $batch, as parts left out are (all GETs) */
		log_info("graph.pull", "tenant %s: %s failed (%s): its %zu part%s asked again", pt->spec->tenant_id, req,
		         r->err.msg, b->n, b->n == 1 ? "" : "s");
		again = batch_derive(b, b->round + 1, NULL);
		for (size_t i = 0; i < b->n; i++) batch_take(again, &b->parts[i], true);
		batch_send(again);
		again = NULL;
		goto out;
	}
	if (!r->ok) {
		tenant_error(pt, r->err.msg);
		goto out;
	}
	/* read in place: what is kept until the tenant finishes is parsed
	 * (organization, SKUs) or copied (Secure Score days) from it */
	struct text_span text = { r->body ? r->body->data : NULL, r->body ? r->body->len : 0 };
	static const char *const keys[] = { "id", "status", "headers", "body" };
	struct json_scan_value next_v[BATCH_NEXT_NKEYS];
	struct err err;
	ans = xcalloc(b->n + 1, sizeof *ans);
	pre = xcalloc(b->n + 1, sizeof *pre);
	struct batch_read br = { .b = b, .ans = ans, .pre = pre };
	const struct json_scan_reader members = { .key = 3, .read = batch_members_read, .ud = &br };
	bool listed = false;
	if (json_scan_each_record_also(text.p, text.n, "responses", keys, 4, &members, batch_answer_read, &br, &listed,
	                               batch_next_keys, BATCH_NEXT_NKEYS, next_v, &err) != 0) {
		char msg[400];
		snprintf(msg, sizeof msg, "tenant %.100s: %s: Graph sent malformed JSON (%zu bytes, status %ld): %.150s",
		         pt->spec->tenant_id, req, text.n, r->status, err.msg);
		tenant_error(pt, msg);
		goto out;
	}
	for (size_t k = 0; k < BATCH_NEXT_NKEYS && !next.len; k++)
		if (next_v[k].type == JSON_SCAN_STRING && json_scan_string_buf(&next_v[k], &next) <= 0) buf_free(&next);
	if (!listed && !next.len) {
		tenant_error(pt, "the $batch answer has no \"responses\"");
		goto out;
	}
	/* Parts come back in any order: matched by id. */
	again = batch_derive(b, b->round + 1, NULL);
	if (next.len && b->follows < BATCH_MAX_FOLLOWS) rest = batch_derive(b, b->round, next.data);
	double wait = 0;
	/* members parts ('m') after all others: a group's look-up decides
	 * whether the page asked under its last known id is taken */
	for (int pass = 0; pass < 2; pass++)
	for (size_t i = 0; i < b->n; i++) {
		if ((b->parts[i].id[0] == 'm') != (pass == 1)) continue;
		long status = ans[i].status;
		if (!ans[i].found) {
			/* still running at Graph: behind the nextLink; left out
			 * with none (or after the last follow): asked again */
			if (rest) {
				batch_take(rest, &b->parts[i], false);
			} else {
				buf_printf(&left_out, "%s'%s'", left_out.len ? ", " : "", b->parts[i].id);
				batch_take(again, &b->parts[i], true);
			}
		} else if (status == 429) {
			pt->gt->counters.throttled++;
			char ra[64];
			bool has_ra = part_header(&ans[i], "Retry-After", ra, sizeof ra);
			double secs = has_ra ? http_parse_retry_after(ra, time_now()) : -1;
			if (secs < 0) secs = pow(2, b->round);   /* no Retry-After: back off */
			if (secs > wait) wait = secs;
			log_info("graph.throttle", "tenant %s: $batch part %s got %ld (Retry-After %s)", pt->spec->tenant_id,
			         b->parts[i].id, status, has_ra ? ra : "none");
			batch_take(again, &b->parts[i], false);
		} else if (status == 401 && !b->auth_retried) {
			/* the token expired between the batch and its parts: new token, once */
			graph_tenant_token_refused(pt->gt, r->token_gen);
			again->auth_retried = true;
			batch_take(again, &b->parts[i], false);
		} else {
			batch_part_done(pt, &b->parts[i], status, ans[i].body, &pre[i]);
		}
	}
	/* the rest of this answer first: Graph is already working on it (a
	 * nextLink when every part came is not followed: nothing awaits) */
	if (rest && rest->n) {
		log_info("graph.pull", "tenant %s: the $batch answer held %zu of %zu parts: following its nextLink for the "
		         "rest", pt->spec->tenant_id, b->n - rest->n, b->n);
		batch_send(rest);
		rest = NULL;
	}
	if (again->n && again->round < BATCH_MAX_ROUNDS && wait <= BATCH_MAX_WAIT) {
		/* Retry only those parts, after the longest Retry-After, without
		 * holding up other tenants (the hold is on this tenant's lane). */
		if (left_out.len)
			log_info("graph.pull", "tenant %s: the $batch answer lacks part%s %s%s: asked again",
			         pt->spec->tenant_id, strchr(left_out.data, ',') ? "s" : "", left_out.data,
			         next.len ? " after its last nextLink" : "");
		http_lane_hold(pt->gt->lane, wait);
		batch_send(again);
		again = NULL;
	} else {
		/* the parts left out, in one message; each throttled one in its own */
		struct buf lost = { 0 };
		size_t nlost = 0;
		for (size_t i = 0; i < again->n; i++) {
			char what[256], msg[600];
			graph_describe("GET", again->parts[i].url, what, sizeof what);
			if (again->parts[i].left_out) {
				buf_printf(&lost, "%s'%s' (%s)", lost.len ? ", " : "", again->parts[i].id, what);
				nlost++;
				continue;
			}
			snprintf(msg, sizeof msg, "tenant %s: %s: still throttled by Graph after %d $batch rounds "
			         "(Retry-After %.0f s)", pt->spec->tenant_id, what, again->round, wait);
			tenant_error(pt, msg);
		}
		if (nlost) {
			char times[32] = "once";
			if (again->round > 1) snprintf(times, sizeof times, "%d times", again->round);
			char *msg = xasprintf("tenant %s: the $batch answer lacks part%s %s, asked %s: Graph did not answer "
			                      "%s; the next pull asks again", pt->spec->tenant_id, nlost > 1 ? "s" : "", lost.data,
			                      times, nlost > 1 ? "them" : "it");
			tenant_error(pt, msg);
			free(msg);
		}
		buf_free(&lost);
	}
out:
	if (again) batch_free(again);
	if (rest) batch_free(rest);
	buf_free(&next);
	buf_free(&left_out);
	free(ans);
	for (size_t i = 0; pre && i < b->n; i++) {
		graph_members_free(&pre[i].m);
		free(pre[i].next);
	}
	free(pre);
	batch_free(b);
	(void)t;
	tenant_done_one(pt);
}

/* Sends b: its parts as a POST /$batch, or a GET on the nextLink to the
 * rest of an answer (the same lane, token and Accept-Encoding). */
static void batch_send(struct batch *b)
{
	if (b->next) {
		if (tenant_submit(b->pt, &(struct graph_request){ .url = b->next, .headers = b->large ? NULL :
		                                                  uncompressed_headers, .raw = true, .on_done = batch_done,
		                                                  .ctx = b }) != 0)
			batch_free(b);
		return;
	}
	cJSON *root = cJSON_CreateObject();
	cJSON *reqs = cJSON_AddArrayToObject(root, "requests");
	for (size_t i = 0; i < b->n; i++) {
		cJSON *r = cJSON_CreateObject();
		cJSON_AddStringToObject(r, "id", b->parts[i].id);
		cJSON_AddStringToObject(r, "method", "GET");
		cJSON_AddStringToObject(r, "url", b->parts[i].url);
		cJSON_AddItemToArray(reqs, r);
	}
	char *body = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	int rc = tenant_submit(b->pt, &(struct graph_request){
		.method = "POST", .url = "/$batch", .headers = b->large ? NULL : uncompressed_headers, .body = body,
		.body_len = strlen(body), .idempotent = true, .raw = true, .on_done = batch_done, .ctx = b });
	cJSON_free(body);
	if (rc != 0) batch_free(b);
}

#define BATCH_FIXED_PARTS 4      /* organization, subscribedSkus, secureScores, control profiles */

/* A group's look-up URL: by id, or by name as an OData filter. */
static char *group_lookup_url(const struct pull_group *g)
{
	struct buf url = { 0 };
	if (g->by_id) {
		buf_adds(&url, "/groups/");
		url_escape(g->ref, &url);
		buf_adds(&url, "?$select=id,displayName");
	} else {
		/* OData string literal: quotes doubled */
		struct buf lit = { 0 };
		buf_adds(&lit, "displayName eq '");
		for (const char *c = g->ref; *c; c++) {
			if (*c == '\'') buf_addc(&lit, '\'');
			buf_addc(&lit, *c);
		}
		buf_addc(&lit, '\'');
		buf_adds(&url, "/groups?$filter=");
		url_escape(lit.data, &url);
		buf_adds(&url, "&$select=id,displayName");
		buf_free(&lit);
	}
	return buf_steal(&url);
}

/* organization + subscribedSkus + secureScores + control profiles (when
 * due) + each group's look-up, followed by its first members page when
 * its id is known from the last pull; in batches of at most 20 parts. */
static void tenant_batches(struct pull_tenant *pt)
{
	struct batch_part *all = xcalloc(BATCH_FIXED_PARTS + 2 * pt->ngroups + 1, sizeof *all);
	bool *large = xcalloc(BATCH_FIXED_PARTS + 2 * pt->ngroups + 1, sizeof *large);
	size_t n = 0;
#define PART(ID, URL) do { snprintf(all[n].id, sizeof all[n].id, "%s", (ID)); all[n].url = (URL); n++; } while (0)
	if (!pt->opts->skip_licenses) {
		PART("org", xstrdup("/organization?$select=" ORG_SELECT));
		PART("skus", xstrdup("/subscribedSkus?$select=" SKU_SELECT));
	}
	if (!pt->opts->skip_scores) {
		pt->score_top = score_days(pt);
		large[n] = pt->score_top > 2;
		PART("scores", xasprintf("/security/secureScores?$top=%d", pt->score_top));
		if (profiles_due(pt)) {
			large[n] = true;
			PART("profiles", xstrdup("/security/secureScoreControlProfiles?$select=" PROFILE_SELECT));
		}
	}
	for (size_t gi = 0; gi < pt->ngroups; gi++) {
		struct pull_group *g = &pt->groups[gi];
		char id[16];
		snprintf(id, sizeof id, "g%u", (unsigned)gi % 100000u);
		PART(id, group_lookup_url(g));
		if (g->guess) {
			snprintf(id, sizeof id, "m%u", (unsigned)gi % 100000u);
			PART(id, members_first_url(g->guess));
			g->speculative = true;
		}
	}
#undef PART
	/* a group's look-up and its member part go in the same batch: the
	 * page is taken only when the look-up is read first */
	for (size_t at = 0; at < n;) {
		struct batch *b = xcalloc(1, sizeof *b);
		b->pt = pt;
		b->parts = xcalloc(BATCH_MAX_PARTS, sizeof *b->parts);
		size_t end = at + BATCH_MAX_PARTS < n ? at + BATCH_MAX_PARTS : n;
		if (end < n && all[end].id[0] == 'm' && end - 1 > at) end--;
		for (; at < end; at++) {
			b->parts[b->n++] = all[at];
			b->large |= large[at];
		}
		batch_send(b);
	}
	free(large);
	free(all);
}

/* ---- tenant life cycle ------------------------------------------------------- */

/* The id a group's first members page is asked under in the $batch: the
 * declared id, or the id of the one group of that name stored by an
 * earlier pull; none (NULL) otherwise: the look-up then comes first. */
static void group_guess(struct pull_tenant *pt, struct pull_group *g)
{
	struct err err;
	memcpy(g->page_state, page_digest_init, sizeof g->page_state);
	g->stored_members = -1;
	if (g->by_id) {
		g->guess = xstrdup(g->ref);
	} else if (store_group_id_by_name(pt->st, pt->spec->tenant_id, g->ref, &g->guess, &err) < 0) {
		log_warn("graph.pull", "tenant %s: %s", pt->spec->tenant_id, err.msg);
	}
	if (g->guess && store_group_page_get(pt->st, pt->spec->tenant_id, g->guess, &g->page_stored,
	                                     &g->stored_members, &err) < 0)
		log_warn("graph.pull", "tenant %s: %s", pt->spec->tenant_id, err.msg);
}

static void tenant_start(struct pull_tenant *pt)
{
	struct err err;
	const char *tid = pt->spec->tenant_id;
	struct store_tenant row = { 0 };
	int rc = store_tenant_get(pt->st, tid, &row, &err);
	if (rc == STORE_NOTFOUND) {
		struct store_tenant fresh = { .id = tid, .name = pt->spec->name };
		rc = store_tenant_put(pt->st, &fresh, &err);
	}
	store_tenant_free(&row);
	if (rc != 0) {
		tenant_error(pt, err.msg);
		return;
	}
	pt->outstanding++;  /* held while starting, so nothing finishes early */
	users_fetch(pt);
	if (!pt->opts->skip_groups) {
		pt->ngroups = pt->spec->n_groups;
		pt->groups = xcalloc(pt->ngroups + 1, sizeof *pt->groups);
		for (size_t i = 0; i < pt->ngroups; i++) {
			pt->groups[i].pt = pt;
			pt->groups[i].ref = pt->spec->groups[i];
			pt->groups[i].by_id = str_is_guid(pt->spec->groups[i]);
			group_guess(pt, &pt->groups[i]);
		}
	}
	if (!(pt->opts->skip_licenses && pt->opts->skip_scores && pt->ngroups == 0)) tenant_batches(pt);
	tenant_done_one(pt);
}

/* Once every group the policy names has been pulled whole, the tenant's
 * other stored groups go: one no longer named, or deleted or recreated
 * (a new id) in Graph, must not go on lending its old members to the
 * policy's u.groups. Nothing goes when a group is missing or failed. */
static int groups_prune(struct pull_tenant *pt, struct err *err)
{
	if (pt->opts->skip_groups) return 0;
	const char **ids = xcalloc(pt->ngroups + 1, sizeof *ids);
	int rc = 0;
	for (size_t i = 0; i < pt->ngroups; i++) {
		if (!pt->groups[i].complete) goto out;
		ids[i] = pt->groups[i].id;
	}
	long long dropped = 0;
	rc = store_groups_keep_only(pt->st, pt->spec->tenant_id, ids, pt->ngroups, &dropped, err);
	if (rc == 0 && dropped)
		log_info("graph.pull", "tenant %s: %lld stored group%s no longer named by the policy or gone from Graph "
		         "dropped", pt->spec->tenant_id, dropped, dropped == 1 ? "" : "s");
out:
	free(ids);
	return rc;
}

/* Stores what the tenant's batch and group requests brought, in the
 * caller's transaction; stops at the first failure. */
static int tenant_results_put(struct pull_tenant *pt, struct err *err)
{
	if (pt->org && org_write(pt, err) != 0) return -1;
	if (pt->skus && skus_write(pt, err) != 0) return -1;
	if (scores_write(pt, err) != 0) return -1;
	if (pt->profiles_complete && profiles_write(pt, err) != 0) return -1;
	for (size_t i = 0; i < pt->ngroups; i++) {
		struct pull_group *g = &pt->groups[i];
		if (!g->complete) continue;
		if (g->same) {
			bool still;
			if (store_group_page_same(pt->st, pt->spec->tenant_id, g->id, g->name, g->page_stored, &still, err) != 0)
				return -1;
			if (!still) {
				/* its rows changed in the store during this pull: read whole next time */
				log_warn("graph.pull", "tenant %s: group %s: its stored members changed during the pull; they "
				         "are read again at the next pull", pt->spec->tenant_id, g->id);
				g->complete = false;
				continue;
			}
			pt->res->groups++;
			if (g->stored_members > 0) pt->res->group_members += g->stored_members;
			continue;
		}
		char key[64];
		page_key(g->page_state, g->page_bytes, key);
		const char **ids = graph_members_list(&g->members);
		int rc = store_group_members_replace(pt->st, pt->spec->tenant_id, g->id, g->name, ids, g->members.n, err);
		free(ids);
		if (rc != 0 || store_group_page_put(pt->st, pt->spec->tenant_id, g->id, key, err) != 0) return -1;
		pt->res->groups++;
		pt->res->group_members += (long long)g->members.n;
	}
	return groups_prune(pt, err);
}

void graph_tenant_row_put(struct store *st, const char *tenant_id, const char *name, const char *domain,
                          const char *error)
{
	struct err err;
	struct store_tenant row = { 0 };
	if (store_tenant_get(st, tenant_id, &row, &err) == 0) {
		char now[32];
		time_iso8601(time_now(), now, sizeof now);
		struct store_tenant up = row;
		if (name) up.name = name;
		if (domain) up.default_domain = domain;
		up.last_pull_at = now;
		up.last_status = error ? "failed" : "ok";
		up.last_error = error;
		if (store_tenant_put(st, &up, &err) != 0) log_error("graph.pull", "%s", err.msg);
	}
	store_tenant_free(&row);
}

/* The tenant's row after a pull: its name (the config's, else Graph's) and
 * domain from Graph, when and how the pull ended. */
static void tenant_row_put(struct pull_tenant *pt, const struct graph_pull_result *res)
{
	const char *name = pt->spec->name ? pt->spec->name : pt->org_name;
	graph_tenant_row_put(pt->st, pt->spec->tenant_id, name, pt->org_domain, res->ok ? NULL : res->error);
}

/* The result's counts of what was stored, when none of it was kept. */
static void results_dropped(struct graph_pull_result *res)
{
	res->groups = res->skus = res->scores = 0;
	res->group_members = 0;
}

/* Frees what the tenant holds (its groups, the answers kept for its
 * results, its delta state) and empties those fields: a second call
 * finds nothing to free. */
static void tenant_free(struct pull_tenant *pt)
{
	for (size_t i = 0; i < pt->ngroups; i++) {
		struct pull_group *g = &pt->groups[i];
		graph_members_free(&g->members);
		free(g->guess);
		free(g->page_stored);
		free(g->id);
		free(g->name);
	}
	free(pt->groups);
	pt->groups = NULL;
	pt->ngroups = 0;
	store_delta_free(&pt->cur);
	free(pt->users_url);
	free(pt->org_name);
	free(pt->org_domain);
	pt->users_url = pt->org_name = pt->org_domain = NULL;
	cJSON_Delete(pt->profiles);
	pt->profiles = NULL;
	for (size_t i = 0; i < pt->nheld; i++) cJSON_Delete(pt->held[i]);
	free(pt->held);
	pt->held = NULL;
	pt->nheld = 0;
	for (size_t i = 0; i < pt->nheld_text; i++) free(pt->held_text[i]);
	free(pt->held_text);
	pt->held_text = NULL;
	pt->nheld_text = 0;
	pt->org = pt->skus = NULL;
	free(pt->score_days);
	pt->score_days = NULL;
	pt->nscore_days = 0;
	buf_free(&pt->errors);
	buf_free(&pt->warnings);
	buf_free(&pt->denied_perms);
	buf_free(&pt->denied_reads);
}

/* All requests of the tenant are done (or the pull stopped): what they
 * brought, the tenant row and the result, in one transaction (the users'
 * pages were committed each with its delta state already). When storing
 * the results fails, none of them is kept and the tenant fails; its row
 * still records that. Then what the tenant held is freed: each tenant's
 * parsed answers go as it finishes, while the others' are still on the
 * way, not all of them after the last answer. */
static void tenant_finish(struct pull_tenant *pt)
{
	if (pt->finished) return;
	pt->finished = true;
	struct err err, ignored;
	const char *tid = pt->spec->tenant_id;
	struct graph_pull_result *res = pt->res;
	bool tx = store_begin(pt->st, &err) == 0;
	if (!tx) log_error("graph.pull", "tenant %s: %s", tid, err.msg);
	if (tenant_results_put(pt, &err) != 0) {
		if (tx) {
			store_rollback(pt->st, &ignored);
			results_dropped(res);
			tx = store_begin(pt->st, &ignored) == 0;
		}
		err_prefix(&err, "tenant %s: storing what the pull brought (none of it kept)", tid);
		tenant_error(pt, err.msg);
	}
	if (store_user_count(pt->st, tid, STORE_USERS_PRESENT, &res->users_present, &err) != 0)
		tenant_error(pt, err.msg);
	users_check_complete(pt);
	/* not done when Graph was found not answering: that one line says why
	 * (what failed before it, its 503s or timeouts, was the outage too) */
	char *down = pt->errors.len && !pt->interrupted ? down_line(pt) : NULL;
	if (down) {
		buf_reset(&pt->errors);
		buf_adds(&pt->errors, down);
		res->unavailable = true;
		free(down);
	}
	graph_tenant_counters(pt->gt, &res->counters);
	denied_warn(pt);
	res->ok = pt->errors.len == 0;
	snprintf(res->error, sizeof res->error, "%s", pt->errors.len ? pt->errors.data : "");
	snprintf(res->warning, sizeof res->warning, "%s", pt->warnings.len ? pt->warnings.data : "");
	tenant_row_put(pt, res);
	if (tx && store_commit(pt->st, &err) != 0) {
		/* a failed COMMIT can leave it open: never let it join the next
		 * tenant's; the row then records the failure on its own */
		store_rollback(pt->st, &ignored);
		results_dropped(res);
		res->ok = false;
		snprintf(res->error, sizeof res->error, "tenant %.64s: storing what the pull brought failed (none of it "
		         "kept): %.300s", tid, err.msg);
		log_error("graph.pull", "%s", res->error);
		tenant_row_put(pt, res);
	}
	log_info("graph.pull", "tenant %s: %s, %lld users present (%lld written, %lld removed), %ld pages, "
	         "%ld groups, %ld SKUs, %ld score days, %ld requests", tid, res->ok ? "ok" : "failed",
	         res->users_present, res->users_upserted, res->users_removed, res->pages, res->groups, res->skus,
	         res->scores, res->counters.requests);
	tenant_free(pt);
}

int graph_pull(struct graph_client *gc, struct store *st, const struct graph_pull_spec *specs, size_t n,
               const struct graph_pull_opts *opts, struct graph_pull_result *results, struct err *err)
{
	static const struct graph_pull_opts defaults = { 0 };
	if (!opts) opts = &defaults;
	struct pull_tenant *pts = xcalloc(n + 1, sizeof *pts);
	for (size_t i = 0; i < n; i++) {
		memset(&results[i], 0, sizeof results[i]);
		pts[i] = (struct pull_tenant){ .gc = gc, .st = st, .opts = opts, .spec = &specs[i], .res = &results[i],
		                               .gt = graph_tenant_get(gc, specs[i].tenant_id) };
	}
	/* each tenant's token request goes out as soon as the tenant has
	 * started: the next tenants are read from the store while it travels */
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0 && !shutdown_requested(); i++) {
		tenant_start(&pts[i]);
		if (!pts[i].finished && pts[i].outstanding == 0) tenant_finish(&pts[i]);
		rc = http_step(gc->engine, 0, err);
	}
	/* http_run, but a stop asked for (SIGTERM, SIGINT) ends it: what each
	 * tenant committed stays, and the next pull resumes from it */
	while (rc == 0 && http_pending(gc->engine) > 0 && !shutdown_requested()) rc = http_step(gc->engine, 1000, err);
	if (rc == 0 && shutdown_requested()) rc = err_set(err, "stopped by a signal");
	if (rc != 0) {
		/* the loop failed with requests still pending: their callbacks
		 * run now, while the tenants they point into are alive (the
		 * engine would otherwise run them when it is freed), and every
		 * tenant not finished fails with the loop's reason */
		log_redact_err(err);
		for (size_t i = 0; i < n; i++) pts[i].interrupted = err->msg;
		struct err ignored;
		(void)http_cancel_all(gc->engine, &ignored);
	}
	for (size_t i = 0; i < n; i++) {
		if (!pts[i].finished) {
			tenant_error(&pts[i], "the pull was interrupted");
			tenant_finish(&pts[i]);
		}
		tenant_free(&pts[i]);
	}
	free(pts);
	return 0;
}
