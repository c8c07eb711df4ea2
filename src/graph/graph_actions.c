/* graph_actions — the Graph calls of `entrasync user` (disable, enable,
 * revoke sessions, set password), the live-user read, and the 403 probe
 * that tells a missing permission from an administrator target. Synchronous
 * wrappers over graph_submit + http_run. See graph_actions.h. */
#include "graph/graph_actions.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "util/log.h"

static const struct {
	const char *name;
	const char *permission;
	const char *alternatives;
	bool destructive;
} actions[GRAPH_NACTIONS] = {
	[GRAPH_ACTION_DISABLE] = { "disable", "User.EnableDisableAccount.All + User.Read.All",
	                           "User.ReadWrite.All or Directory.ReadWrite.All", true },
	[GRAPH_ACTION_ENABLE] = { "enable", "User.EnableDisableAccount.All + User.Read.All",
	                          "User.ReadWrite.All or Directory.ReadWrite.All", false },
	[GRAPH_ACTION_REVOKE_SESSIONS] = { "revoke-sessions", "User.RevokeSessions.All",
	                                   "User.ReadWrite.All or Directory.ReadWrite.All", true },
	[GRAPH_ACTION_SET_PASSWORD] = { "set-password", "User-PasswordProfile.ReadWrite.All", "", true },
};

const char *graph_action_name(enum graph_action a)
{
	return a < GRAPH_NACTIONS ? actions[a].name : "?";
}

int graph_action_lookup(const char *name)
{
	if (!name) return -1;
	for (int a = 0; a < GRAPH_NACTIONS; a++) {
		const char *want = actions[a].name;
		size_t i = 0;
		/* '-' in the canonical name matches '-', '_' or ' ' */
		for (; want[i] && name[i]; i++) {
			char c = name[i];
			if (want[i] == '-' ? (c != '-' && c != '_' && c != ' ')
			                   : (c | 0x20) != want[i])
				break;
		}
		if (!want[i] && !name[i]) return a;
	}
	return -1;
}

const char *graph_action_permission(enum graph_action a)
{
	return a < GRAPH_NACTIONS ? actions[a].permission : "";
}

const char *graph_action_permission_alternatives(enum graph_action a)
{
	return a < GRAPH_NACTIONS ? actions[a].alternatives : "";
}

bool graph_action_destructive(enum graph_action a)
{
	return a < GRAPH_NACTIONS && actions[a].destructive;
}

/* Percent-encodes what is not unreserved (object ids are GUIDs, but a UPN
 * may hold '#' or '\''). */
static void path_escape(const char *s, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("-._~@", *p)) {
			buf_addc(out, (char)*p);
		} else {
			buf_addc(out, '%');
			buf_addc(out, hex[*p >> 4]);
			buf_addc(out, hex[*p & 15]);
		}
	}
}

static char *user_url(const char *object_id, const char *suffix)
{
	struct buf b = {0};
	buf_adds(&b, "/users/");
	path_escape(object_id, &b);
	if (suffix) buf_adds(&b, suffix);
	return buf_steal(&b);
}

void graph_action_request_make(enum graph_action a, const char *object_id, const char *password,
                               struct graph_action_request *out)
{
	memset(out, 0, sizeof *out);
	cJSON *body = NULL;
	switch (a) {
	case GRAPH_ACTION_DISABLE:
	case GRAPH_ACTION_ENABLE:
		out->method = "PATCH";
		out->url = user_url(object_id, NULL);
		body = cJSON_CreateObject();
		cJSON_AddBoolToObject(body, "accountEnabled", a == GRAPH_ACTION_ENABLE);
		break;
	case GRAPH_ACTION_REVOKE_SESSIONS:
		out->method = "POST";
		out->url = user_url(object_id, "/revokeSignInSessions");
		break;
	case GRAPH_ACTION_SET_PASSWORD:
	case GRAPH_NACTIONS:
		out->method = "PATCH";
		out->url = user_url(object_id, NULL);
		body = cJSON_CreateObject();
		cJSON *pp = cJSON_AddObjectToObject(body, "passwordProfile");
		cJSON_AddStringToObject(pp, "password", password ? password : "<new password>");
		cJSON_AddBoolToObject(pp, "forceChangePasswordNextSignIn", 1);
		break;
	}
	if (body) {
		out->body = cJSON_PrintUnformatted(body);
		/* cJSON keeps its own copy of the password: wipe it before freeing */
		cJSON *pp = cJSON_GetObjectItemCaseSensitive(body, "passwordProfile");
		cJSON *pw = pp ? cJSON_GetObjectItemCaseSensitive(pp, "password") : NULL;
		if (cJSON_IsString(pw)) OPENSSL_cleanse(pw->valuestring, strlen(pw->valuestring));
		cJSON_Delete(body);
	}
}

void graph_action_request_free(struct graph_action_request *r)
{
	if (!r) return;
	if (r->body) OPENSSL_cleanse(r->body, strlen(r->body));
	free(r->body);
	free(r->url);
	memset(r, 0, sizeof *r);
}

/* ---- synchronous requests ------------------------------------------------ */

/* The outcome of one request, copied out of its callback. */
struct sync_result {
	bool submitted;            /* went to graph_submit: from then on it may have been sent */
	bool done;
	bool ok;
	bool token_failure;
	bool unavailable;          /* not sent: Graph found not answering */
	long status;
	struct err err;
	struct graph_error gerr;
	cJSON *json;               /* taken from the result; cJSON_Delete */
};

static void sync_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct sync_result *s = ctx;
	s->done = true;
	s->ok = r->ok;
	s->token_failure = r->token_failure;
	s->unavailable = r->unavailable;
	s->status = r->status;
	s->err = r->err;
	s->gerr = r->gerr;
	s->json = r->json;
	r->json = NULL;
	(void)t;
}

/* Sends one request and runs the engine until it completes. Returns 0 when
 * the callback ran (check s->ok), -1 when it did not: not sent at all when
 * !s->submitted (the tenant's token failed before, say), else unknown. */
static int sync_request(struct http_engine *e, struct graph_tenant *t, const struct graph_request *req,
                        struct sync_result *s, struct err *err)
{
	memset(s, 0, sizeof *s);
	struct graph_request r = *req;
	r.on_done = sync_done;
	r.ctx = s;
	if (graph_submit(t, &r, err) != 0) return -1;
	s->submitted = true;
	struct err run_err;
	if (http_run(e, &run_err) != 0 && !s->done) {
		*err = run_err;
		return -1;
	}
	if (!s->done) return err_set(err, "tenant %s: the Graph request did not complete", graph_tenant_id(t));
	return 0;
}

/* Classifies a failed request. A token failure (graph.h) is a request never
 * sent, or whose token Graph refused (401), and one of a Graph found not
 * answering was never sent: not applied either way. */
static enum graph_action_status failure_status(const struct sync_result *s)
{
	if (s->token_failure || s->unavailable) return GRAPH_ACTION_NOT_SENT;
	if (s->status == 0 || s->status >= 500 || s->status == 429) return GRAPH_ACTION_UNKNOWN;
	if (s->status == 403) return GRAPH_ACTION_FORBIDDEN;
	if (s->status == 404) return GRAPH_ACTION_NOT_FOUND;
	if (s->status >= 200 && s->status < 300) return GRAPH_ACTION_UNKNOWN; /* malformed answer */
	return GRAPH_ACTION_REFUSED;
}

int graph_action_forbidden_message(enum graph_action a, const char *label, const char *tenant_id,
                                   enum graph_forbidden_kind kind, const char *roles, const char *consent_url,
                                   struct err *err)
{
	const char *perm = graph_action_permission(a), *alt = graph_action_permission_alternatives(a);
	char consent[600] = "";
	if (consent_url) snprintf(consent, sizeof consent, "; grant admin consent again: %s", consent_url);
	char alts[200] = "";
	if (*alt) snprintf(alts, sizeof alts, " (or %s)", alt);
	switch (kind) {
	case GRAPH_FORBIDDEN_ADMIN:
		err_set(err, "%s of %s refused by Graph (403): %s is an administrator (directory role: %s) that the app "
		        "may not change; an app with %s cannot act on administrators: do it in the Microsoft Entra "
		        "admin center", graph_action_name(a), label, label, roles && *roles ? roles : "?", perm);
		break;
	case GRAPH_FORBIDDEN_PERMISSION:
		err_set(err, "%s of %s refused by Graph (403): the app lacks the application permission %s%s in tenant "
		        "%s; add it to the app registration%s", graph_action_name(a), label, perm, alts, tenant_id,
		        consent);
		break;
	case GRAPH_FORBIDDEN_UNSURE:
		err_set(err, "%s of %s refused by Graph (403): either the app lacks the application permission %s%s in "
		        "tenant %s (add it to the app registration%s), or %s is an administrator that the app may not "
		        "change (do it in the Microsoft Entra admin center)", graph_action_name(a), label, perm, alts,
		        tenant_id, consent, label);
		break;
	}
	log_redact_err(err);
	return -1;
}

/* After a 403: reads the target's directory roles to tell why. *roles gets
 * their names ("Global Administrator, ...") when there are some. */
static enum graph_forbidden_kind probe_roles(struct http_engine *e, struct graph_tenant *t, const char *object_id,
                                             char **roles)
{
	*roles = NULL;
	char *url = user_url(object_id, "/transitiveMemberOf/microsoft.graph.directoryRole?$select=displayName");
	struct sync_result s;
	struct err err;
	enum graph_forbidden_kind kind = GRAPH_FORBIDDEN_UNSURE;
	int rc = sync_request(e, t, &(struct graph_request){ .url = url }, &s, &err);
	free(url);
	if (rc != 0 || !s.ok || !s.json) goto out;
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(s.json, "value");
	if (!cJSON_IsArray(value)) goto out;
	struct buf names = {0};
	const cJSON *it;
	cJSON_ArrayForEach(it, value) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "displayName");
		if (names.len) buf_adds(&names, ", ");
		buf_adds(&names, cJSON_IsString(n) ? n->valuestring : "unnamed role");
	}
	if (names.len) {
		kind = GRAPH_FORBIDDEN_ADMIN;
		*roles = buf_steal(&names);
	} else {
		kind = GRAPH_FORBIDDEN_PERMISSION;
		buf_free(&names);
	}
out:
	cJSON_Delete(s.json);
	return kind;
}

/* The message for a failure other than 403, from graph.h's own message. */
static void failure_message(enum graph_action a, const char *label, const struct sync_result *s,
                            enum graph_action_status st, struct err *err)
{
	switch (st) {
	case GRAPH_ACTION_NOT_FOUND:
		err_set(err, "%s of %s: Graph does not know this user (404): deleted in Entra since the last pull? (%s)",
		        graph_action_name(a), label, s->err.msg);
		break;
	case GRAPH_ACTION_UNKNOWN:
		if (s->status == 429)   /* refused, so not applied: Graph processes no throttled request */
			err_set(err, "%s of %s: not applied: Graph is still throttling this tenant (429) after every retry; "
			        "try again later: %s", graph_action_name(a), label, s->err.msg);
		else
			err_set(err, "%s of %s: no usable answer from Graph, the action may or may not have been applied: %s",
			        graph_action_name(a), label, s->err.msg);
		break;
	case GRAPH_ACTION_NOT_SENT:
		if (s->unavailable)
			err_set(err, "%s of %s: not applied: %s", graph_action_name(a), label, s->err.msg);
		else
			err_set(err, "%s of %s: not applied: no usable token for the tenant: %s", graph_action_name(a), label,
			        s->err.msg);
		break;
	default:
		err_set(err, "%s of %s failed: %s", graph_action_name(a), label, s->err.msg);
		break;
	}
	log_redact_err(err);
}

enum graph_action_status graph_action_run(struct http_engine *e, struct graph_tenant *t, enum graph_action a,
                                          const char *object_id, const char *label, const char *password,
                                          struct err *err)
{
	if (a >= GRAPH_NACTIONS) return err_set(err, "unknown action"), GRAPH_ACTION_REFUSED;
	if (a == GRAPH_ACTION_SET_PASSWORD && (!password || !*password))
		return err_set(err, "set-password: no password"), GRAPH_ACTION_REFUSED;
	struct graph_action_request req;
	graph_action_request_make(a, object_id, password, &req);
	struct sync_result s;
	int rc = sync_request(e, t, &(struct graph_request){
		.method = req.method, .url = req.url, .body = req.body, .body_len = req.body ? strlen(req.body) : 0,
		/* setting accountEnabled or a password twice is the same as once */
		.idempotent = a != GRAPH_ACTION_REVOKE_SESSIONS }, &s, err);
	graph_action_request_free(&req);
	if (rc != 0 && !s.submitted) {
		err_prefix(err, "%s of %s: not applied", graph_action_name(a), label);
		log_redact_err(err);
		return GRAPH_ACTION_NOT_SENT;
	}
	if (rc != 0) {
		log_redact_err(err);
		return GRAPH_ACTION_UNKNOWN;
	}
	enum graph_action_status st = s.ok ? GRAPH_ACTION_OK : failure_status(&s);
	cJSON_Delete(s.json);
	if (st == GRAPH_ACTION_OK) return GRAPH_ACTION_OK;
	if (st == GRAPH_ACTION_FORBIDDEN) {
		char *roles = NULL;
		enum graph_forbidden_kind kind = probe_roles(e, t, object_id, &roles);
		char *consent = graph_admin_consent_url(graph_tenant_client(t), graph_tenant_id(t));
		graph_action_forbidden_message(a, label, graph_tenant_id(t), kind, roles, consent, err);
		free(consent);
		free(roles);
		return st;
	}
	failure_message(a, label, &s, st, err);
	return st;
}

enum graph_action_status graph_user_fetch(struct http_engine *e, struct graph_tenant *t, const char *object_id,
                                          const char *select, cJSON **out, struct err *err)
{
	*out = NULL;
	char *url = user_url(object_id, NULL);
	if (select) {
		char *u2 = xasprintf("%s?$select=%s", url, select);
		free(url);
		url = u2;
	}
	struct sync_result s;
	int rc = sync_request(e, t, &(struct graph_request){ .url = url }, &s, err);
	free(url);
	if (rc != 0) return s.submitted ? GRAPH_ACTION_UNKNOWN : GRAPH_ACTION_NOT_SENT;
	if (s.ok && cJSON_IsObject(s.json)) {
		*out = s.json;
		return GRAPH_ACTION_OK;
	}
	cJSON_Delete(s.json);
	enum graph_action_status st = s.ok ? GRAPH_ACTION_UNKNOWN : failure_status(&s);
	*err = s.err;
	if (s.ok) err_set(err, "tenant %s: GET user %s: no JSON object in the answer", graph_tenant_id(t), object_id);
	return st;
}
