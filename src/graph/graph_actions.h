/* graph_actions — the Microsoft Graph calls behind `entrasync user`: disable
 * and enable an account (PATCH /users/{id} accountEnabled), revoke its
 * sign-in sessions (POST /users/{id}/revokeSignInSessions), set a password
 * app-only (PATCH /users/{id} passwordProfile with
 * forceChangePasswordNextSignIn), and the small reads that go with them (the
 * live state of a user, to finish a ticket action interrupted by a crash
 * without acting twice; the directory roles of a target, to explain a 403).
 * Built on graph.h's request helper (token, bearer, retries, error bodies);
 * every call here is synchronous: it runs the HTTP engine until its request
 * is done, so never call it from an engine callback.
 *
 * A 403 is turned into a message that names the application permission the
 * action needs, or says that the target is an administrator the app may not
 * change: Graph answers the same Authorization_RequestDenied for both, so
 * after a 403 the target's directory roles are read (GET
 * /users/{id}/transitiveMemberOf/microsoft.graph.directoryRole, User.Read.All):
 * roles → administrator; none → the permission is missing; unreadable → the
 * message says both are possible.
 *
 * Secrets: a password handed to graph_action_run goes only into the request
 * body (never into a URL, message or log line); callers register it with
 * log_secret_add before the call so that no echo of it can be logged. */
#ifndef ENTRASYNC_GRAPH_ACTIONS_H
#define ENTRASYNC_GRAPH_ACTIONS_H

#include <stdbool.h>
#include "graph/graph.h"
#include "http/http.h"
#include "util/util.h"

enum graph_action {
	GRAPH_ACTION_DISABLE,
	GRAPH_ACTION_ENABLE,
	GRAPH_ACTION_REVOKE_SESSIONS,
	GRAPH_ACTION_SET_PASSWORD,
	GRAPH_NACTIONS
};

/* "disable", "enable", "revoke-sessions", "set-password". */
const char *graph_action_name(enum graph_action a);
/* The action called name (also "revoke sessions", "revoke_sessions", any
 * case), or -1. */
int graph_action_lookup(const char *name);
/* The least application permission(s) the action needs, as the message shows
 * them ("User.EnableDisableAccount.All + User.Read.All"), and the
 * alternatives that also work ("User.ReadWrite.All"), or "" when none. */
const char *graph_action_permission(enum graph_action a);
const char *graph_action_permission_alternatives(enum graph_action a);
/* Does the action take something away from the user (asks for a
 * confirmation)? disable, revoke-sessions, set-password. */
bool graph_action_destructive(enum graph_action a);

/* The request an action sends, for --dry-run and for graph_action_run.
 * method and url are static or owned (free with graph_action_request_free);
 * body is a new JSON text. For set-password, password NULL puts the
 * placeholder "<new password>" in the body (dry-run). */
struct graph_action_request {
	const char *method;        /* "PATCH" | "POST" (static) */
	char *url;                 /* "/users/{id}" (id escaped) */
	char *body;                /* JSON, or NULL (revokeSignInSessions sends none) */
};
void graph_action_request_make(enum graph_action a, const char *object_id, const char *password,
                               struct graph_action_request *out);
/* Frees url and body; when the body held a password it is wiped first. */
void graph_action_request_free(struct graph_action_request *r);

/* Why a call failed, for the caller's decisions. */
enum graph_action_status {
	GRAPH_ACTION_OK = 0,
	GRAPH_ACTION_FORBIDDEN = -1,   /* 403: permission missing or administrator target (see message) */
	GRAPH_ACTION_NOT_FOUND = -2,   /* 404: no such user in the tenant (deleted) */
	GRAPH_ACTION_REFUSED = -3,     /* another 4xx: Graph's message (e.g. password complexity) */
	GRAPH_ACTION_UNKNOWN = -4,     /* no answer, 5xx, lasting 429: the action may or may not
	                                * have been applied; safe to check and retry */
	GRAPH_ACTION_NOT_SENT = -5,    /* no usable token: none could be had (a refused or expired
	                                * secret, an unusable certificate, no consent, the token
	                                * endpoint not answering), so nothing was sent, or Graph
	                                * refused the token itself (401 again with a new one); or
	                                * Graph was found not answering (graph_client_down): not
	                                * applied; safe to retry once that is fixed */
};

/* What a 403 was, after the roles probe. */
enum graph_forbidden_kind {
	GRAPH_FORBIDDEN_PERMISSION,    /* the target holds no directory role: permission missing */
	GRAPH_FORBIDDEN_ADMIN,         /* the target holds a directory role */
	GRAPH_FORBIDDEN_UNSURE,        /* the roles could not be read */
};

/* Writes the 403 message for action a on label (UPN or id) in tenant_id
 * into err: kind says what the probe found, roles (may be NULL) the roles'
 * names, consent_url where to grant consent (may be NULL). Returns -1.
 * Exposed for tests. */
int graph_action_forbidden_message(enum graph_action a, const char *label, const char *tenant_id,
                                   enum graph_forbidden_kind kind, const char *roles, const char *consent_url,
                                   struct err *err);

/* Runs action a on user object_id of tenant t: one request (plus, after a
 * 403, the roles probe), running engine e until done. label names the user
 * in messages. password: set-password only (required there). Returns
 * GRAPH_ACTION_OK, or a negative graph_action_status with err holding an
 * actionable message (redacted). */
enum graph_action_status graph_action_run(struct http_engine *e, struct graph_tenant *t, enum graph_action a,
                                          const char *object_id, const char *label, const char *password,
                                          struct err *err);

/* The live user: GET /users/{id}?$select=select. *out is the parsed object
 * (cJSON_Delete). Status codes as above (403 → GRAPH_ACTION_FORBIDDEN with
 * Graph's message). */
enum graph_action_status graph_user_fetch(struct http_engine *e, struct graph_tenant *t, const char *object_id,
                                          const char *select, cJSON **out, struct err *err);

#endif
