/* graph — the Graph client core: services and per-tenant lanes on the HTTP
 * engine, requests with the tenant's bearer token (one refresh and retry
 * after a 401 InvalidAuthenticationToken), Graph error bodies parsed and
 * turned into actionable messages, and the x-ms-throttle-* headers logged. */
#include "graph/graph_internal.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define DEFAULT_MAX_IN_FLIGHT 64
#define DEFAULT_TENANT_MAX_IN_FLIGHT 4
#define DEFAULT_OUTAGE_SECONDS 60.0   /* see graph.outage_seconds */
#define OUTAGE_ATTEMPTS 5

/* ---- errors ---------------------------------------------------------- */

static void copy_str(char *dst, size_t cap, const cJSON *v)
{
	if (cJSON_IsString(v) && v->valuestring) snprintf(dst, cap, "%s", v->valuestring);
}

/* copy_str of the first n bytes of a server's message, redacted before it
 * is cut to cap (a secret the server echoed near the cut would leave a
 * fragment no later redaction recognises). */
static void copy_message(char *dst, size_t cap, const char *s, size_t n)
{
	char *one = xstrndup(s, n);
	struct buf red = {0};
	log_redact(one, &red);
	snprintf(dst, cap, "%s", red.data ? red.data : "");
	buf_free(&red);
	free(one);
}

/* The first of several keys that exists (case-sensitive), or NULL. */
static const cJSON *get_any(const cJSON *obj, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);
	if (!v && b) v = cJSON_GetObjectItemCaseSensitive(obj, b);
	return v;
}

int graph_error_parse(long status, const char *body, size_t len, struct graph_error *out)
{
	memset(out, 0, sizeof *out);
	out->status = status;
	if (!body || !len) return -1;
	cJSON *j = cJSON_ParseWithLength(body, len);
	if (!j) return -1;
	int rc = -1;
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (cJSON_IsObject(e)) {
		/* Graph / OData: {"error": {"code", "message", "innerError"|"innererror"}} */
		copy_str(out->code, sizeof out->code, cJSON_GetObjectItemCaseSensitive(e, "code"));
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
		if (cJSON_IsString(m) && m->valuestring)
			copy_message(out->message, sizeof out->message, m->valuestring, strlen(m->valuestring));
		const cJSON *in = get_any(e, "innerError", "innererror");
		for (int depth = 0; cJSON_IsObject(in) && depth < 8; depth++) {
			const cJSON *v = get_any(in, "request-id", "requestId");
			if (v && !out->request_id[0]) copy_str(out->request_id, sizeof out->request_id, v);
			v = get_any(in, "client-request-id", "clientRequestId");
			if (v && !out->client_request_id[0]) copy_str(out->client_request_id, sizeof out->client_request_id, v);
			v = cJSON_GetObjectItemCaseSensitive(in, "date");
			if (v && !out->date[0]) copy_str(out->date, sizeof out->date, v);
			v = cJSON_GetObjectItemCaseSensitive(in, "code");
			if (cJSON_IsString(v)) copy_str(out->inner_code, sizeof out->inner_code, v);
			in = get_any(in, "innerError", "innererror");
		}
		rc = 0;
	} else if (cJSON_IsString(e)) {
		/* identity platform: {"error", "error_description", "error_codes", ...} */
		copy_str(out->code, sizeof out->code, e);
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "error_description");
		if (cJSON_IsString(d) && d->valuestring)
			copy_message(out->message, sizeof out->message, d->valuestring, strcspn(d->valuestring, "\r\n"));
		const cJSON *codes = cJSON_GetObjectItemCaseSensitive(j, "error_codes");
		const cJSON *c0 = cJSON_IsArray(codes) ? cJSON_GetArrayItem(codes, 0) : NULL;
		if (cJSON_IsNumber(c0)) out->aadsts = (long)c0->valuedouble;
		else if (!strncmp(out->message, "AADSTS", 6)) out->aadsts = strtol(out->message + 6, NULL, 10);
		copy_str(out->request_id, sizeof out->request_id, cJSON_GetObjectItemCaseSensitive(j, "trace_id"));
		copy_str(out->client_request_id, sizeof out->client_request_id,
		         cJSON_GetObjectItemCaseSensitive(j, "correlation_id"));
		copy_str(out->date, sizeof out->date, cJSON_GetObjectItemCaseSensitive(j, "timestamp"));
		rc = 0;
	}
	cJSON_Delete(j);
	return rc;
}

/* Least-privileged application permission per Graph path (graph-api.md §11). */
static const struct {
	const char *prefix;
	const char *permission;
} permissions[] = {
	{ "/users", "User.Read.All" },
	{ "/groups", "GroupMember.Read.All" },
	{ "/organization", "Organization.Read.All" },
	{ "/subscribedSkus", "Organization.Read.All" },
	{ "/security/secureScoreControlProfiles", "SecurityEvents.Read.All" },
	{ "/security/secureScores", "SecurityEvents.Read.All" },
	{ "/contracts", "Directory.Read.All" },
	{ "/tenantRelationships", "CrossTenantInformation.ReadBasic.All" },
};

/* Skips scheme, host and the /v1.0 or /beta version segment of a URL. */
static const char *url_path(const char *url)
{
	const char *p = url;
	const char *s = strstr(p, "://");
	if (s) {
		p = strchr(s + 3, '/');
		if (!p) return "/";
	}
	if (!strncmp(p, "/v1.0/", 6)) p += 5;
	else if (!strncmp(p, "/beta/", 6)) p += 5;
	return p;
}

const char *graph_permission_for(const char *path)
{
	if (!path) return NULL;
	const char *p = url_path(path);
	for (size_t i = 0; i < ARRAY_LEN(permissions); i++) {
		size_t n = strlen(permissions[i].prefix);
		if (!strncmp(p, permissions[i].prefix, n) && (p[n] == '\0' || p[n] == '/' || p[n] == '?' || p[n] == '('))
			return permissions[i].permission;
	}
	return NULL;
}

void graph_describe(const char *method, const char *url, char *out, size_t cap)
{
	const char *p = url_path(url ? url : "");
	size_t n = strcspn(p, "?");
	snprintf(out, cap, "%s %.*s", method ? method : "GET", (int)(n > 200 ? 200 : n), p);
}

char *graph_admin_consent_url(const struct graph_client *gc, const char *tenant_id)
{
	return xasprintf("%s/%s/adminconsent?client_id=%s", gc->authority, tenant_id, gc->client_id);
}

/* The message for a request that got a non-2xx status or none. */
static void request_error_message(const struct graph_tenant *t, const struct graph_call *c,
                                  const struct http_response *resp, const struct graph_error *ge,
                                  struct err *err)
{
	char what[256];
	graph_describe(c->method, c->url, what, sizeof what);
	char rid[128] = "";
	if (ge->request_id[0]) snprintf(rid, sizeof rid, " (request-id %s)", ge->request_id);
	if (resp->error == HTTP_ERR_DOWN) {
		/* never sent: "not sent: graph is not answering: ..." */
		err_set(err, "tenant %s: %s: %s", t->id, what, resp->error_text);
	} else if (resp->error != HTTP_ERR_NONE) {
		/* no HTTP answer: refused or reset connections, or one that timed
		 * out after connecting (a server that never answers) */
		err_set(err, "tenant %s: %s: no answer from Graph: %s (after %d attempt%s)", t->id, what, resp->error_text,
		        resp->attempts, resp->attempts == 1 ? "" : "s");
	} else if (resp->status == 403 && !strcmp(ge->code, "Authorization_RequestDenied")) {
		const char *perm = graph_permission_for(c->url);
		char *url = graph_admin_consent_url(t->gc, t->id);
		if (perm)
			err_set(err, "tenant %s: %s was denied (403 Authorization_RequestDenied): the app lacks the "
			        "application permission %s in this tenant; add it to the app registration and grant "
			        "admin consent again: %s%s", t->id, what, perm, url, rid);
		else
			err_set(err, "tenant %s: %s was denied (403 Authorization_RequestDenied): the app lacks an "
			        "application permission in this tenant; grant it and admin consent again: %s%s",
			        t->id, what, url, rid);
		free(url);
	} else if (resp->status == 403 && strstr(what, "/contracts")) {
		/* not a permission: the tenant is no CSP partner (Graph: "only supported for partner tenants") */
		err_set(err, "tenant %s: %s was refused (403 %s: %s): the customer list is only a CSP partner "
		        "tenant's: is csp.partner_tenant your partner tenant? (there the app needs Directory.Read.All)%s",
		        t->id, what, ge->code[0] ? ge->code : "Forbidden", ge->message[0] ? ge->message : "no detail", rid);
	} else if (resp->status == 403) {
		const char *perm = graph_permission_for(c->url);
		err_set(err, "tenant %s: %s was refused (403 %s: %s)%s%s%s%s", t->id, what,
		        ge->code[0] ? ge->code : "Forbidden", ge->message[0] ? ge->message : "no detail",
		        perm ? "; it needs the application permission " : "", perm ? perm : "",
		        perm ? " (a 403 can also mean a missing licence)" : "", rid);
	} else if (resp->status == 429) {
		char how[128];
		err_set(err, "tenant %s: %s: still throttled by Graph (429) %s%s", t->id, what,
		        http_throttled_text(resp, how, sizeof how), rid);
	} else if (resp->status == 401) {
		err_set(err, "tenant %s: %s: Graph rejected the token (401 %s: %s)%s", t->id, what,
		        ge->code[0] ? ge->code : "Unauthorized", ge->message, rid);
	} else {
		err_set(err, "tenant %s: %s: Graph returned %ld%s%s%s%s%s", t->id, what, resp->status,
		        ge->code[0] ? " " : "", ge->code, ge->message[0] ? ": " : "", ge->message, rid);
	}
	log_redact_err(err);
}

/* ---- client and tenants ------------------------------------------------ */

static void strip_slash(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/') s[--n] = '\0';
}

/* on_response hook of the graph service: logs Microsoft's throttle headers. */
static void graph_on_response(struct http_service *svc, const struct http_response *resp, void *hook_ctx)
{
	const char *pct = http_response_header(resp, "x-ms-throttle-limit-percentage");
	const char *scope = http_response_header(resp, "x-ms-throttle-scope");
	const char *info = http_response_header(resp, "x-ms-throttle-information");
	if (!pct && !scope && !info) return;
	char what[256];
	graph_describe(resp->method, resp->url, what, sizeof what);
	log_warn("graph.throttle", "%s: status %ld%s%s%s%s%s%s", what, resp->status,
	         pct ? ", limit percentage " : "", pct ? pct : "", scope ? ", scope " : "", scope ? scope : "",
	         info ? ", information " : "", info ? info : "");
}

int graph_client_new(const struct graph_client_opts *o, struct graph_client **out, struct err *err)
{
	*out = NULL;
	const struct config_graph *cfg = o->cfg;
	if (!cfg || !cfg->client_id || !*cfg->client_id)
		return err_set(err, "graph.client_id is not set");
	struct graph_client *gc = xcalloc(1, sizeof *gc);
	gc->by_id.fold = true;   /* tenant ids are compared as str_ieq does */
	gc->cfg = cfg;
	gc->engine = o->engine;
	gc->client_id = xstrdup(cfg->client_id);
	gc->authority = xstrdup(cfg->authority && *cfg->authority ? cfg->authority : "https://login.microsoftonline.com");
	gc->endpoint = xstrdup(cfg->endpoint && *cfg->endpoint ? cfg->endpoint : "https://graph.microsoft.com");
	strip_slash(gc->authority);
	strip_slash(gc->endpoint);
	gc->tenant_max_in_flight = o->tenant_max_in_flight > 0 ? o->tenant_max_in_flight : DEFAULT_TENANT_MAX_IN_FLIGHT;
	gc->cert_not_after = -1;
	if (graph_auth_load(gc, err) != 0) goto fail;

	char *base = xasprintf("%s/v1.0", gc->endpoint);
	int max_in_flight = o->max_in_flight > 0 ? o->max_in_flight : DEFAULT_MAX_IN_FLIGHT;
	/* A Graph that stopped answering (no answer, 502/503/504 for every
	 * tenant) ends the pull in a minute or two instead of each request of
	 * hundreds of tenants waiting out its timeouts and retries (hours, into
	 * the next hourly run). Only failures of two tenants at least count:
	 * one tenant's own 503s are its own. */
	double outage = cfg->outage_seconds > 0 ? cfg->outage_seconds : DEFAULT_OUTAGE_SECONDS;
	double timeout = cfg->timeout_seconds;   /* 0: the HTTP core's default (120 s) */
	gc->api = http_service_add(o->engine, &(struct http_service_opts){
		.name = "graph", .base_url = base, .max_in_flight = max_in_flight,
		.rate_per_min = o->rate_per_min, .burst = o->rate_per_min > 0 ? o->rate_per_min / 6 : 0,
		.ca_file = cfg->ca_file, .total_timeout = timeout, .retry = o->retry,
		.trip_attempts = OUTAGE_ATTEMPTS, .trip_seconds = outage, .trip_two_lanes = true,
		.on_response = graph_on_response, .hook_ctx = gc }, err);
	free(base);
	if (!gc->api) goto fail;
	/* Token requests go one per tenant (Entra throttles per tenant and
	 * app), so they may run as wide as Graph requests: with 16, a hundred
	 * tenants waited seven round trips before the last could start. They
	 * share one lane, so any five failures in a row count. */
	gc->login = http_service_add(o->engine, &(struct http_service_opts){
		.name = "login", .base_url = gc->authority, .max_in_flight = max_in_flight,
		.ca_file = cfg->ca_file, .total_timeout = timeout, .retry = o->retry,
		.trip_attempts = OUTAGE_ATTEMPTS, .trip_seconds = outage }, err);
	if (!gc->login) goto fail;
	*out = gc;
	return 0;
fail:
	graph_client_free(gc);
	return -1;
}

void graph_client_free(struct graph_client *gc)
{
	if (!gc) return;
	for (size_t i = 0; i < gc->ntenants; i++) {
		struct graph_tenant *t = gc->tenants[i];
		while (t->waiting) {
			struct graph_call *c = t->waiting;
			t->waiting = c->next;
			graph_call_fail(c, "the Graph client was freed");
		}
		free(t->id);
		free(t->auth_header);
		free(t->token_error);
		free(t);
	}
	free(gc->tenants);
	str_index_free(&gc->by_id);
	graph_auth_free(gc);
	free(gc->credential_error);
	free(gc->client_id);
	free(gc->authority);
	free(gc->endpoint);
	free(gc);
}

const char *graph_client_id(const struct graph_client *gc)
{
	return gc->client_id;
}

struct http_service *graph_client_service(struct graph_client *gc)
{
	return gc->api;
}

struct http_service *graph_client_login_service(struct graph_client *gc)
{
	return gc->login;
}

bool graph_client_down(const struct graph_client *gc, char *why, size_t cap)
{
	char text[300];
	if (http_service_down(gc->api, text, sizeof text)) {
		if (why) snprintf(why, cap, "%s", text);
		return true;
	}
	if (!http_service_down(gc->login, text, sizeof text)) return false;
	if (why) snprintf(why, cap, "the token endpoint %s: %s", gc->authority, text);
	return true;
}

struct graph_tenant *graph_tenant_get(struct graph_client *gc, const char *tenant_id)
{
	size_t k = str_index_get(&gc->by_id, tenant_id);   /* not a walk over every tenant */
	if (k != STR_INDEX_NONE) return gc->tenants[k];
	if (gc->ntenants == gc->cap_tenants) {
		gc->cap_tenants = gc->cap_tenants ? gc->cap_tenants * 2 : 16;
		gc->tenants = xrealloc(gc->tenants, gc->cap_tenants * sizeof *gc->tenants);
	}
	struct graph_tenant *t = xcalloc(1, sizeof *t);
	t->gc = gc;
	t->id = xstrdup(tenant_id);
	t->lane = http_lane_add(gc->api, tenant_id, gc->tenant_max_in_flight);
	str_index_put(&gc->by_id, t->id, gc->ntenants);
	gc->tenants[gc->ntenants++] = t;
	return t;
}

const char *graph_tenant_id(const struct graph_tenant *t)
{
	return t->id;
}

struct graph_client *graph_tenant_client(const struct graph_tenant *t)
{
	return t->gc;
}

void graph_tenant_counters(const struct graph_tenant *t, struct graph_tenant_counters *out)
{
	*out = t->counters;
}

void graph_tenant_token_refused(struct graph_tenant *t, unsigned token_gen)
{
	if (token_gen == t->token_gen && t->token) {
		log_info("graph.token", "tenant %s: Graph refused the token inside a $batch: getting a new one", t->id);
		graph_token_invalidate(t);
	}
}

const char *graph_tenant_token_error(const struct graph_tenant *t)
{
	return t->token_error;
}

bool graph_tenant_token_needs_consent(const struct graph_tenant *t)
{
	return t->token_error && t->token_needs_consent;
}

/* ---- requests ------------------------------------------------------------ */

static void call_free(struct graph_call *c)
{
	if (!c) return;
	free(c->method);
	free(c->url);
	if (c->headers)
		for (char **h = c->headers; *h; h++) free(*h);
	free(c->headers);
	/* the body may hold a password (PATCH passwordProfile, graph_actions.c) */
	if (c->body) OPENSSL_cleanse(c->body, c->body_len + 1);
	free(c->body);
	free(c);
}

void graph_call_fail(struct graph_call *c, const char *msg)
{
	struct graph_result r = { 0 };
	r.token_failure = true;
	err_set(&r.err, "%s", msg);
	c->on_done(c->t, &r, c->ctx);
	call_free(c);
}

static bool is_auth_failure(const struct http_response *resp, const struct graph_error *ge)
{
	if (resp->status != 401) return false;
	return !ge->code[0] || !strcmp(ge->code, "InvalidAuthenticationToken");
}

/* Completion of one Graph request on the engine. */
static void call_done(struct http_response *resp, void *ctx)
{
	struct graph_call *c = ctx;
	struct graph_tenant *t = c->t;
	struct graph_result r = { 0 };
	t->counters.attempts += resp->attempts;
	if (resp->status == 429) t->counters.throttled++;
	r.status = resp->status;
	r.resp = resp;
	r.body = &resp->body;
	r.token_gen = c->token_gen;
	r.unavailable = resp->error == HTTP_ERR_DOWN;
	if (resp->error == HTTP_ERR_CANCELLED) {
		err_set(&r.err, "tenant %s: request cancelled", t->id);
		goto done;
	}
	if (resp->error == HTTP_ERR_NONE && resp->status >= 200 && resp->status < 300) {
		r.ok = true;
		if (resp->body.len > 0 && !c->raw) {
			r.json = cJSON_ParseWithLength(resp->body.data, resp->body.len);
			if (!r.json) {
				char what[256];
				graph_describe(c->method, c->url, what, sizeof what);
				r.ok = false;
				err_set(&r.err, "tenant %s: %s: Graph sent malformed JSON (%zu bytes, status %ld)", t->id, what,
				        resp->body.len, resp->status);
			}
		}
		goto done;
	}
	graph_error_parse(resp->status, resp->body.data, resp->body.len, &r.gerr);
	if (resp->error == HTTP_ERR_NONE && is_auth_failure(resp, &r.gerr) && !c->auth_retried) {
		/* The token was refused (expired early, revoked, or a fresh consent
		 * needs a new one): drop it unless a newer one came meanwhile, and
		 * send the call once more. */
		c->auth_retried = true;
		log_info("graph.token", "tenant %s: Graph refused the token (401 %s): getting a new one", t->id,
		         r.gerr.code[0] ? r.gerr.code : "Unauthorized");
		if (c->token_gen == t->token_gen) graph_token_invalidate(t);
		if (t->token_error) {
			graph_call_fail(c, t->token_error);
			return;
		}
		if (graph_token_valid(t)) {
			graph_call_send(c);
		} else {
			c->next = NULL;
			if (t->waiting_tail) t->waiting_tail->next = c;
			else t->waiting = c;
			t->waiting_tail = c;
			graph_token_request(t);
		}
		return;
	}
	request_error_message(t, c, resp, &r.gerr, &r.err);
done:
	c->on_done(t, &r, c->ctx);
	cJSON_Delete(r.json);
	call_free(c);
}

void graph_call_send(struct graph_call *c)
{
	struct graph_tenant *t = c->t;
	size_t n = 0;
	if (c->headers)
		while (c->headers[n]) n++;
	const char **hdrs = xcalloc(n + 3, sizeof *hdrs);
	for (size_t i = 0; i < n; i++) hdrs[i] = c->headers[i];
	hdrs[n] = t->auth_header;
	hdrs[n + 1] = "Accept: application/json";
	c->token_gen = t->token_gen;
	if (!c->sent) t->counters.requests++;
	c->sent = true;
	struct err err;
	int rc = http_submit(t->gc->api, &(struct http_request){
		.method = c->method, .url = c->url, .headers = hdrs,
		.body = c->body, .body_len = c->body_len,
		.content_type = c->body ? "application/json" : NULL,
		.idempotent = c->idempotent ? HTTP_IDEMPOTENT_YES : HTTP_IDEMPOTENT_AUTO,
		.lane = t->lane, .on_done = call_done, .ctx = c }, &err);
	free(hdrs);
	if (rc != 0) {
		struct graph_result r = { 0 };
		err_set(&r.err, "tenant %s: %s", t->id, err.msg);
		c->on_done(t, &r, c->ctx);
		call_free(c);
	}
}

bool graph_url_is_endpoints(const struct graph_tenant *t, const char *url)
{
	if (url[0] == '/') return true;
	const char *ep = t->gc->endpoint;
	size_t n = strlen(ep);
	return strncmp(url, ep, n) == 0 && (url[n] == '/' || url[n] == '?' || url[n] == '\0');
}

/* An absolute URL (a link Graph answered with: @odata.nextLink,
 * @odata.deltaLink) must be below graph.endpoint: the tenant's bearer
 * token goes nowhere else. 0, or -1 with err naming the other origin. */
static int url_is_graphs(const struct graph_tenant *t, const char *url, struct err *err)
{
	if (graph_url_is_endpoints(t, url)) return 0;
	const char *ep = t->gc->endpoint;
	const char *host = strstr(url, "://");
	size_t origin = host ? (size_t)(host + 3 - url) + strcspn(host + 3, "/?#") : strcspn(url, "/?#");
	return err_set(err, "tenant %s: Graph answered with a link to %.*s, not below graph.endpoint %s: not followed "
	               "(the tenant's token is sent to the endpoint only)", t->id, (int)(origin < 200 ? origin : 200), url, ep);
}

int graph_submit(struct graph_tenant *t, const struct graph_request *req, struct err *err)
{
	if (!req->url || !req->on_done) return err_set(err, "graph_submit: url and on_done are required");
	if (t->token_error) return err_set(err, "%s", t->token_error);
	if (url_is_graphs(t, req->url, err) != 0) return -1;
	struct graph_call *c = xcalloc(1, sizeof *c);
	c->t = t;
	c->method = xstrdup(req->method ? req->method : "GET");
	c->url = xstrdup(req->url);
	if (req->headers) {
		size_t n = 0;
		while (req->headers[n]) n++;
		c->headers = xcalloc(n + 1, sizeof *c->headers);
		for (size_t i = 0; i < n; i++) c->headers[i] = xstrdup(req->headers[i]);
	}
	if (req->body) {
		c->body = xmalloc(req->body_len + 1);
		memcpy(c->body, req->body, req->body_len);
		c->body[req->body_len] = '\0';
		c->body_len = req->body_len;
	}
	c->idempotent = req->idempotent;
	c->raw = req->raw;
	c->on_done = req->on_done;
	c->ctx = req->ctx;
	if (graph_token_valid(t)) {
		graph_call_send(c);
		return 0;
	}
	if (t->waiting_tail) t->waiting_tail->next = c;
	else t->waiting = c;
	t->waiting_tail = c;
	graph_token_request(t);
	return 0;
}
