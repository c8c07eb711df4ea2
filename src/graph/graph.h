/* graph — the Microsoft Graph client: app-only tokens per customer tenant
 * (client secret, or a certificate-signed client assertion), requests with
 * the bearer token on the shared HTTP engine (one lane per tenant, so a
 * throttled tenant waits without stalling the others), Graph and identity
 * error bodies turned into actionable messages, and the pull of users (delta),
 * groups, organization, licences and Secure Score into the store
 * (graph_pull.c). Knows http, cJSON and the store's API; never Syncro.
 *
 * Ownership: a graph_client borrows the http_engine and the config it was
 * made from (both must outlive it) and owns its tenants (graph_tenant), the
 * loaded key and certificate, and the tokens (memory only, registered with
 * log_secret_add so no log line can carry them).
 *
 * Threading: like http, single-threaded; callbacks run inside http_run. */
#ifndef ENTRASYNC_GRAPH_H
#define ENTRASYNC_GRAPH_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>
#include "util/config.h"
#include "http/http.h"
#include "util/util.h"

struct graph_client;
struct graph_tenant;
struct store;

/* ---- Client ------------------------------------------------------------- */

struct graph_client_opts {
	const struct config_graph *cfg;   /* credentials and URLs (borrowed) */
	struct http_engine *engine;       /* borrowed */
	int max_in_flight;        /* Graph requests in flight over all tenants, and token
	                           * requests (each its own cap); 0 = 64 */
	int tenant_max_in_flight; /* per tenant; 0 = 4 */
	double rate_per_min;      /* pacing over all tenants, requests/min; 0 = unpaced */
	struct http_retry_policy retry; /* zeros = the HTTP core's defaults */
};

/* Makes a client: adds the "graph" and "login" services to the engine, and
 * loads the certificate and key when configured. Fails only for a config
 * wrong in itself: no client_id, neither a client secret nor a certificate,
 * an unknown graph.jwt_alg. A certificate or key that cannot be used (see
 * graph_credentials_check) still makes a client, whose every token fails
 * with the reason and sends nothing: each tenant of the run fails with it,
 * as with a secret Entra refuses, and the run is recorded. */
int graph_client_new(const struct graph_client_opts *o, struct graph_client **out, struct err *err);
/* Loads the certificate and key of cfg as graph_client_new does, without a
 * client or the network (`entrasync check`, `status`, the daemon): -1 for
 * the config errors graph_client_new refuses; GRAPH_CRED_UNUSABLE for a
 * credential it would make every token fail with (errors name the file:
 * unreadable, not PEM or a binary .pfx/.cer named as such with the commands
 * that make PEM files of it, expired, not valid yet, encrypted key, key not
 * matching the certificate or none of a chain's, not RSA). A file of
 * several certificates (the app's and its chain, in any order) is read for
 * the one whose public key is the private key's. *not_after (may be NULL):
 * that certificate's notAfter in seconds since the epoch whenever it could
 * be read (an expired one too), else -1 (and with a client secret). 0 when
 * fine (a client secret is always fine here). flags: GRAPH_CRED_QUIET, no
 * warning of a private key other users can read (the caller's runs say it). */
#define GRAPH_CRED_UNUSABLE (-2)
#define GRAPH_CRED_QUIET 1u
int graph_credentials_check(const struct config_graph *cfg, unsigned flags, double *not_after, struct err *err);
/* The notAfter of the certificate graph_client_new would use from cfg (the
 * PEM file graph.certificate, and of a chain the certificate of
 * graph.private_key), in seconds since the epoch; -1 when none (a client
 * secret) or it cannot be read. Reads the files each call (a certificate
 * renewed in place is seen at once). */
double graph_certificate_not_after(const struct config_graph *cfg);
/* A certificate that expires within this many days is warned about: by
 * `check`, by `status`, at each daemon run, and by a pull or sync run by
 * hand, a timer or cron (ops_cert_warn). */
#define GRAPH_CERT_WARN_DAYS 30
/* Frees the client and its tenants. Call after http_run has returned (no
 * request of this client may be pending), and before http_engine_free. */
void graph_client_free(struct graph_client *gc);
const char *graph_client_id(const struct graph_client *gc);
/* The client's http services (for counters: http_service_counters): the
 * Graph API ("graph") and the token endpoint ("login"). Owned by the engine. */
struct http_service *graph_client_service(struct graph_client *gc);
struct http_service *graph_client_login_service(struct graph_client *gc);
/* Was Graph or its token endpoint found not answering: five attempts in a
 * row (Graph's of two tenants at least) got no answer or a 502/503/504 over
 * graph.outage_seconds (60) or more? From then on every request of the
 * client ends unsent. Then why ("graph is not answering: 5 attempts in a
 * row over 61 s failed (the last: 503)", or "the token endpoint URL: login
 * is not answering: …") into why[cap] when why is not NULL. */
bool graph_client_down(const struct graph_client *gc, char *why, size_t cap);

/* The tenant context for tenant_id (GUID or domain), made on first use: its
 * lane on the graph service and its token cache. Owned by the client. */
struct graph_tenant *graph_tenant_get(struct graph_client *gc, const char *tenant_id);
/* Is url relative, or below graph.endpoint? The only URLs graph_submit
 * sends the tenant's token to (a link Graph answered with is followed only
 * then). */
bool graph_url_is_endpoints(const struct graph_tenant *t, const char *url);
const char *graph_tenant_id(const struct graph_tenant *t);
struct graph_client *graph_tenant_client(const struct graph_tenant *t);

/* Graph requests submitted for this tenant (first attempts, not the token
 * requests), and HTTP attempts (incl. retries made by the HTTP core). */
struct graph_tenant_counters {
	long requests;
	long attempts;
	long token_requests;
	long throttled;           /* 429s seen, $batch parts included */
};
void graph_tenant_counters(const struct graph_tenant *t, struct graph_tenant_counters *out);

/* ---- Errors ------------------------------------------------------------- */

/* A Graph error body ({"error":{"code","message","innerError"|"innererror":
 * {"request-id"|"requestId","client-request-id","date","code"}}}), or a token
 * endpoint error ({"error","error_description","error_codes":[…],
 * "trace_id","correlation_id"}). Fields are "" when absent. */
struct graph_error {
	long status;
	char code[96];            /* error.code, or the token endpoint's `error` */
	char inner_code[96];      /* innerError.code (or the innermost one) */
	char message[512];        /* error.message / first line of error_description */
	char request_id[80];      /* request-id / requestId / trace_id */
	char client_request_id[80]; /* client-request-id / correlation_id */
	char date[48];
	long aadsts;              /* first of error_codes (token endpoint), else 0 */
};
/* Parses body (need not be NUL-terminated) into *out. Returns 0 when it was
 * an error body of either shape, -1 otherwise (out then has status only). */
int graph_error_parse(long status, const char *body, size_t len, struct graph_error *out);

/* The application permission (least privileged) Graph needs for a request
 * path ("/users/delta?…" → "User.Read.All"), or NULL when unknown. */
const char *graph_permission_for(const char *path);

/* Writes an actionable message for a failed token request of the client in
 * tenant_id into err (AADSTS700016 → the admin-consent URL, 7000215/7000222
 * → the secret, 65001 → consent, 90002 → the tenant id, …). Returns -1. */
int graph_token_error_message(const struct graph_client *gc, const char *tenant_id,
                              const struct graph_error *ge, struct err *err);
/* The admin-consent URL of the client's app in tenant_id (new string). */
char *graph_admin_consent_url(const struct graph_client *gc, const char *tenant_id);

/* ---- Tokens ----------------------------------------------------------- */

/* Parses a token endpoint 200 body: access_token and expires_in (seconds).
 * *token is a new string (free). */
int graph_token_parse(const char *body, size_t len, char **token, double *expires_in, struct err *err);

/* The client-assertion JWT for tenant_id (certificate credentials only):
 * header {alg PS256, typ JWT, x5t#S256} or {alg RS256, typ JWT, x5t} per
 * graph.jwt_alg; claims aud = {authority}/{tenant}/oauth2/v2.0/token,
 * iss = sub = client id, jti (random UUID), nbf = iat = now, exp = now+300.
 * now is seconds since the epoch. *jwt is a new string (free). */
int graph_client_assertion(const struct graph_client *gc, const char *tenant_id, double now, char **jwt,
                           struct err *err);

/* Base64url without padding of len bytes, appended to out. */
void graph_base64url(const unsigned char *data, size_t len, struct buf *out);

/* Starts getting the tenant's token in the background (a no-op when it
 * holds a valid one or failed for good); see graph_tenant_token_error
 * after http_run. For checking many tenants at once. */
void graph_tenant_token_start(struct graph_tenant *t);

/* ---- Requests ----------------------------------------------------------- */

/* The outcome of a Graph request, handed to its callback. */
struct graph_result {
	long status;              /* HTTP status; 0 when none (transport/token failure) */
	bool ok;                  /* 2xx and (when a body was expected) parsable JSON */
	struct err err;           /* when !ok: actionable message (redacted) */
	struct graph_error gerr;  /* when a Graph error body came back */
	cJSON *json;              /* the parsed body of a 2xx (not for a raw request), or NULL; freed after the
	                           * callback unless the callback takes it (sets NULL) */
	const struct http_response *resp; /* headers etc., valid during the callback;
	                           * NULL when the request never reached Graph */
	struct buf *body;         /* resp's body (NULL with resp): a callback may keep it
	                           * (buf_steal) instead of copying it */
	bool token_failure;       /* no token could be had for the tenant */
	bool unavailable;         /* not sent: Graph was found not answering (graph_client_down) */
	unsigned token_gen;       /* which of the tenant's tokens the request carried */
};

typedef void (*graph_done_fn)(struct graph_tenant *t, struct graph_result *r, void *ctx);

struct graph_request {
	const char *method;       /* NULL = GET */
	const char *url;          /* "/users/delta?…" (under {endpoint}/v1.0) or absolute */
	const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
	const char *body;         /* JSON body or NULL */
	size_t body_len;
	bool idempotent;          /* retry a POST (e.g. a $batch of GETs) */
	bool raw;                 /* leave a 2xx body unparsed: r->json stays NULL and the
	                           * callback reads (and checks) r->resp->body itself */
	graph_done_fn on_done;    /* required */
	void *ctx;
};

/* Queues a request for the tenant: gets (or refreshes) the tenant's token
 * first when needed, adds the bearer token, and on a 401
 * InvalidAuthenticationToken refreshes the token and tries once more. The
 * callback runs exactly once. Fails (without calling back) only for invalid
 * input, or when the tenant's token already failed for good this run (err
 * then holds that message). */
int graph_submit(struct graph_tenant *t, const struct graph_request *req, struct err *err);

/* For failures Graph reports inside a 200 (a $batch part's 401): drops
 * the tenant's token when it is still the one the request carried
 * (r->token_gen), so the next request gets a fresh one. */
void graph_tenant_token_refused(struct graph_tenant *t, unsigned token_gen);

/* The tenant's permanent token failure, or NULL while tokens work. */
const char *graph_tenant_token_error(const struct graph_tenant *t);
/* Whether that failure is the app's missing admin consent in the tenant
 * (AADSTS700016, 65001, 90094, 90099), which the consent URL mends. */
bool graph_tenant_token_needs_consent(const struct graph_tenant *t);

/* ---- Pull (graph_pull.c) ---------------------------------------------- */

/* The $select of /users/delta: what policies get. */
extern const char graph_user_select[];

/* What to pull for one tenant. */
struct graph_pull_spec {
	const char *tenant_id;
	const char *name;         /* configured display name or NULL */
	const char *const *groups; /* names or ids declared by the tenant's policy */
	size_t n_groups;
};

/* What a pull did for one tenant. ok implies the users round completed
 * (the delta state holds a deltaLink and no round in progress): the mirror
 * is whole, fit to plan from. A round left in progress (a first pull that
 * writes straight into the empty mirror, or a staged resync) is never ok. */
struct graph_pull_result {
	bool ok;
	char error[1024];         /* when !ok: every problem, "; "-separated (redacted) */
	char warning[1024];       /* what could not be read but the users' sync does without (a missing
	                           * permission for licences or Secure Score), "; "-separated, or "" */
	bool unavailable;         /* not done: Graph or its token endpoint was found not answering
	                           * (graph_client_down; error says so); what it stored stays, and
	                           * the next pull resumes from it */
	bool resync;              /* a full resync ran (or continues next run) */
	bool first_round;         /* the first full round of this tenant */
	long long users_upserted; /* mirror rows written (present) */
	long long users_removed;  /* marked removed (@removed or resync swap) */
	long long users_present;  /* present in the mirror after the pull */
	long pages;
	long groups;              /* groups resolved and their members stored */
	long long group_members;
	long skus;
	long scores;              /* secure score days stored */
	double store_seconds;     /* CPU seconds (this thread's) spent applying users/delta
	                           * pages to the mirror: robust under load, unlike wall time */
	struct graph_tenant_counters counters;
};

struct graph_pull_opts {
	bool skip_groups, skip_licenses, skip_scores; /* for tests/bench */
};

/* Pulls every tenant of specs concurrently on the client's engine into st
 * (tenant rows, user mirror by delta, groups, organization, licence and
 * Secure Score snapshots). results[i] describes specs[i]. One tenant's
 * failure never stops the others; Graph or its token endpoint found not
 * answering (graph_client_down) stops them all: the requests not sent yet
 * end unsent, and each tenant not done fails with the one line saying so
 * (unavailable), while the tenants done keep their results. Returns 0
 * with every result filled (check each): when the event loop itself fails
 * (epoll, curl's multi interface), the requests in flight are cancelled and
 * each tenant not finished fails with "the pull was interrupted: <why>";
 * what each had committed stays, and the next pull resumes from it. opts
 * may be NULL. */
int graph_pull(struct graph_client *gc, struct store *st, const struct graph_pull_spec *specs, size_t n,
               const struct graph_pull_opts *opts, struct graph_pull_result *results, struct err *err);

/* ---- The pull over worker processes (graph_pull_workers.c) --------------- */

#define GRAPH_PULL_WORKERS_MAX CONFIG_PULL_WORKERS_MAX
#define GRAPH_PULL_TENANTS_PER_WORKER 16  /* auto: no more workers than one per this many tenants */

/* The HTTP counters of the requests a pull made in its worker processes
 * (each worker's services, summed), which the caller's own services (those
 * of o->gc) do not see. */
struct graph_pull_http {
	struct http_counters graph;   /* the Graph API */
	struct http_counters login;   /* the token endpoint */
};

struct graph_pull_workers_opts {
	const struct config_graph *cfg; /* credentials and URLs, for each worker's own client (borrowed) */
	const char *database;     /* the store's path: each worker opens its own connection */
	struct store *st;         /* the caller's connection: tenants' sizes are read from it,
	                           * and it is the store of a pull in this process */
	struct graph_client *gc;  /* the client of a pull in this process (one worker) */
	int workers;              /* 0 = graph_pull_workers_auto; 1 = in this process */
	int max_in_flight;        /* requests in flight over all workers, shared out; 0 = 64 */
	const struct graph_pull_opts *pull; /* may be NULL */
	struct graph_pull_http *http; /* may be NULL: the workers' counters are added to it (a pull in
	                               * this process counts on o->gc's services instead) */
};

/* graph_pull spread over worker processes, one per core: each forked worker
 * has its own HTTP engine, Graph client (the caps shared out) and store
 * connection, and pulls its share of the tenants (dealt by size, see
 * graph_pull_deal); results[i] describes specs[i] as with graph_pull. A
 * worker that dies fails only its own tenants, each with a message naming
 * how it ended. With one worker it is graph_pull on o->gc and o->st. */
int graph_pull_workers(const struct graph_pull_workers_opts *o, const struct graph_pull_spec *specs, size_t n,
                       struct graph_pull_result *results, struct err *err);

/* How many workers for n tenants: one per online CPU, no more than one per
 * GRAPH_PULL_TENANTS_PER_WORKER tenants, at least 1, at most
 * GRAPH_PULL_WORKERS_MAX. */
int graph_pull_workers_auto(size_t n, long cpus);

/* Deals n tenants of the given weights to w workers, heaviest first to the
 * least loaded (ties to the lowest worker): worker_of[i] gets tenant i's
 * worker. Pure; for the tests. */
void graph_pull_deal(const long long *weight, size_t n, int w, int *worker_of);

/* ---- Group members (graph_members.c) ------------------------------------ */

/* The user ids gathered from a group's transitiveMembers pages. */
struct graph_members {
	struct buf ids;           /* the ids one after the other, each NUL-terminated */
	size_t n;
};

/* Reads one transitiveMembers page from its text (len bytes), without a
 * cJSON tree: appends to m the id of every item that is a user (an object
 * whose "@odata.type" is absent or "#microsoft.graph.user"; items without a
 * string id are skipped), and sets *next_link to the page's
 * "@odata.nextLink" (new string, free) or NULL. Returns 0, or -1 with err
 * when the text is not valid JSON or has no "value" array (m unchanged). */
int graph_members_page(const char *text, size_t len, struct graph_members *m, char **next_link, struct err *err);
/* The same for a page that is the start of text (e.g. a $batch part's body,
 * read in place): *used gets the bytes the page spans; what follows it is
 * not looked at. */
int graph_members_page_prefix(const char *text, size_t len, struct graph_members *m, char **next_link, size_t *used,
                              struct err *err);
/* Pointers to m's ids in order (new array of m->n + 1, free it; the
 * strings stay m's, valid until m changes). */
const char **graph_members_list(const struct graph_members *m);
void graph_members_free(struct graph_members *m);

/* ---- Delta pages (graph_delta.c) --------------------------------------- */

struct graph_delta_counts {
	long long upserted;
	long long removed_changed;
	long long removed_deleted;
	long long swapped_removed; /* users a resync swap marked removed */
};

/* Applies one /users/delta page to the mirror of tenant_id in ONE store
 * transaction together with the delta state that follows it:
 *   - items with @removed: marked removed with their reason ("changed" =
 *     soft-deleted, "deleted" = gone; anything else counts as "changed");
 *   - other items of an incremental round (cur->delta_link set): their
 *     properties merged into the stored JSON (a key present replaces, null
 *     included; absent keys keep their value); of a full round (no
 *     delta_link yet, or a resync): the item replaces the stored JSON, as
 *     full rounds carry complete objects. "@…" annotations are dropped;
 *   - with @odata.nextLink: the state keeps cur->delta_link and records
 *     next_link (resume point) and the round;
 *   - with @odata.deltaLink: the round is complete (a resync is swapped
 *     into the live mirror here) and the state holds only the new deltaLink.
 * In a resync (cur->resync), items go to the staging area instead.
 * *complete is set when the page ended the round. A malformed page changes
 * nothing. cur is the state the page was fetched under. */
struct store_delta;
int graph_delta_apply_page(struct store *st, const char *tenant_id, const cJSON *page,
                           const struct store_delta *cur, struct graph_delta_counts *counts, bool *complete,
                           struct err *err);
/* The same, given also the text page was parsed from (text_len bytes,
 * with a NUL at text[text_len]; NULL = none): a full round then stores each item without annotations as
 * its own bytes of the page (strict JSON, as Graph sent it) instead of
 * re-printing it from the tree; anything else is handled as above. */
int graph_delta_apply_page_text(struct store *st, const char *tenant_id, const cJSON *page, const char *text,
                                size_t text_len, const struct store_delta *cur, struct graph_delta_counts *counts,
                                bool *complete, struct err *err);

/* Merges the properties of a delta item into the JSON object text old (may
 * be NULL) and returns the new text (free). Exposed for tests. */
char *graph_delta_merge(const char *old, const cJSON *item);
/* graph_delta_merge on text: the stored object old (NULL or not an object:
 * an empty one) with the item's members item[0..item_len) spliced in, raw
 * values kept byte for byte. NULL when item is not a well-formed object or
 * either holds a name over 255 bytes (then use graph_delta_merge). New string. */
char *graph_delta_merge_text(const char *old, const char *item, size_t item_len);

/* Starts a full resync of tenant_id's users in one transaction: drops any
 * staged rows and records a round that resumes from first_url in the
 * staging area, keeping the old delta_link until the swap. */
int graph_delta_start_resync(struct store *st, const char *tenant_id, const char *first_url, struct err *err);

/* Whether a failed delta request means "the delta state is gone: resync":
 * 410, or an error code syncStateNotFound / resyncRequired (also inner). */
bool graph_delta_needs_resync(const struct graph_error *ge);

#endif
