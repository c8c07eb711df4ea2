/* graph_internal — the Graph client's private structures, shared by
 * graph.c (client, tenants, requests), graph_auth.c (credentials, tokens)
 * and graph_pull.c. Nothing outside src/graph/ includes this. */
#ifndef ENTRASYNC_GRAPH_INTERNAL_H
#define ENTRASYNC_GRAPH_INTERNAL_H

#include <openssl/evp.h>
#include "graph/graph.h"

/* A request of graph_submit, from submission until its callback returns:
 * waits for a token when there is none, then goes to the HTTP engine. */
struct graph_call {
	struct graph_tenant *t;
	char *method;
	char *url;
	char **headers;           /* copies, NULL-terminated */
	char *body;
	size_t body_len;
	bool idempotent;
	bool raw;                 /* the caller reads the body's text (no cJSON tree) */
	graph_done_fn on_done;
	void *ctx;
	bool sent;                /* went to the engine at least once */
	bool auth_retried;        /* the one refresh after a 401 is used */
	unsigned token_gen;       /* generation of the token it was sent with */
	struct graph_call *next;  /* in the tenant's queue of calls waiting for a token */
};

struct graph_tenant {
	struct graph_client *gc;
	char *id;
	struct http_lane *lane;   /* on the graph service */
	/* token cache (memory only) */
	char *auth_header;        /* "Authorization: Bearer <token>": made once per token, sent with
	                           * every call (a token is 1.5-2.5 KB) */
	const char *token;        /* the token itself, inside auth_header, or NULL */
	double token_renew_at;    /* time_mono() after which a new token is needed */
	unsigned token_gen;
	bool token_pending;       /* a token request is in flight */
	int token_transient;      /* token answers "temporarily_unavailable" in a row (asked again) */
	char *token_error;        /* permanent failure this run, or NULL */
	bool token_needs_consent; /* token_error is the tenant's missing admin consent */
	struct graph_call *waiting, *waiting_tail;
	struct graph_tenant_counters counters;
};

struct graph_client {
	const struct config_graph *cfg;
	char *client_id;
	char *authority;          /* no trailing '/' */
	char *endpoint;           /* no trailing '/' */
	struct http_engine *engine;
	struct http_service *api;   /* {endpoint}/v1.0 */
	struct http_service *login; /* {authority} */
	int tenant_max_in_flight;
	/* certificate credentials (NULL key = client secret) */
	EVP_PKEY *key;
	bool rs256;
	char *x5t;                /* base64url SHA-1 of the certificate DER */
	char *x5t_s256;           /* base64url SHA-256 of the certificate DER */
	double cert_not_after;    /* the certificate's notAfter (s since the epoch); -1 = none or unknown */
	char *credential_error;   /* the certificate or key cannot be used (expired, unreadable, not the
	                           * certificate's...): every token fails with it, no request made; NULL = usable */
	bool quiet;               /* no warning of a private key other users can read (said by another process) */
	struct graph_tenant **tenants;
	size_t ntenants, cap_tenants;
	struct str_index by_id;       /* tenant id (case folded) -> index in tenants */
};

/* graph_auth.c */
/* Reads the credentials gc->cfg names into gc. -1 when the config itself
 * is wrong (no credential at all, an unknown graph.jwt_alg): no client can
 * be made. Else 0; when the certificate or key named cannot be used (see
 * graph_credentials_check) gc->credential_error says why, and every token
 * of the client fails with it (graph_token_request). */
int graph_auth_load(struct graph_client *gc, struct err *err);
void graph_auth_free(struct graph_client *gc);
/* The token scope: {endpoint}/.default (new string). */
char *graph_scope(const struct graph_client *gc);
/* Whether the tenant's cached token can be used now. */
bool graph_token_valid(const struct graph_tenant *t);
/* Submits the tenant's token request (once: no-op while one is pending).
 * On completion the waiting calls are sent, or failed with the message. */
void graph_token_request(struct graph_tenant *t);
/* Drops the cached token (after a 401). */
void graph_token_invalidate(struct graph_tenant *t);

/* graph.c */
/* Sends a call to the engine with the tenant's current token. */
void graph_call_send(struct graph_call *c);
/* Completes a call that cannot be sent (token failure) with msg. */
void graph_call_fail(struct graph_call *c, const char *msg);
/* "GET /users/delta" for messages: method and path without the query. */
void graph_describe(const char *method, const char *url, char *out, size_t cap);

/* graph_pull.c */
struct store;
/* The tenant's row after its pull ended (status and `tenants` read it):
 * now as the last pull, "ok" when error is NULL, else "failed" with it; the
 * name and default domain replaced when given (NULL keeps them). A store
 * error is logged: the pull's result already says how it went. */
void graph_tenant_row_put(struct store *st, const char *tenant_id, const char *name, const char *domain,
                          const char *error);

#endif
