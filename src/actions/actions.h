/* actions — Microsoft actions on the Entra user behind a Syncro contact
 * (issue 8): `entrasync user show|disable|enable|revoke-sessions|
 * set-password TARGET`, and the same actions taken from Syncro tickets
 * during a sync run (or `entrasync user tickets`).
 *
 * Parts:
 *   1. policy hooks (lua_actions.c): protect(u, t) and
 *      allow_action(action, u, t) of the tenant's policy;
 *   2. targets (actions.c): a contact id, e-mail, UPN or object id resolved
 *      through the links and the mirror; ambiguous → refused with the
 *      candidates;
 *   3. one action (actions.c): guard (removed user, protect hook),
 *      confirmation, dry-run, the Graph call (graph_actions.h), an audit row
 *      for every attempt (done, refused, failed, cancelled); a done disable
 *      or enable also sets accountEnabled in the mirror (what Graph now
 *      holds, and what the next pull brings anyway);
 *   4. show (actions.c): what the store knows of the user behind a target;
 *   5. tickets (actions_tickets.c): open tickets of the configured problem
 *      type, each acted on at most once, crash-safe (store_actions.h).
 *
 * Audit rows: action "user.<action>" (user.disable, user.enable,
 * user.revoke-sessions, user.set-password), actor env->actor (the person:
 * "operator:<$SUDO_USER or $USER>"; from a ticket "syncro-ticket:<id> via
 * operator:<name>"), the target's tenant, object and contact ids, before /
 * after JSON (never a password), result "ok", "refused: …", "failed: …",
 * "cancelled: …". A dry run writes nothing anywhere (no audit either).
 *
 * Secrets: a password (given or generated) is registered with
 * log_secret_add, goes only into the Graph request body and the caller's
 * outcome (to print once), and is wiped from memory when freed. */
#ifndef ENTRASYNC_ACTIONS_H
#define ENTRASYNC_ACTIONS_H

#include <stdbool.h>
#include <stdio.h>
#include <cjson/cJSON.h>
#include "util/config.h"
#include "graph/graph_actions.h"
#include "script/script.h"
#include "store/store.h"
#include "util/util.h"

struct graph_client;
struct http_engine;
struct syncro_client;

/* ================================================================ 1. hooks */

/* The protect / allow_action hooks of one tenant's policy, called through
 * script_policy_verdict (see lua_actions.c): same sandbox, limits and
 * file:line errors as any policy call ("policy error in protect():
 * policies/acme.lua:8: ..."). */
struct actions_hooks;

/* Loads the policy at path (NULL = no policy: no hooks) for tenant t. On
 * failure (the policy does not load) err names the file and line. */
int actions_hooks_load(const char *path, const struct script_limits *limits, const struct script_tenant *t,
                       struct actions_hooks **out, struct err *err);
void actions_hooks_free(struct actions_hooks *h);
bool actions_hooks_has_protect(const struct actions_hooks *h);
bool actions_hooks_has_allow(const struct actions_hooks *h);

/* A hook's answer: yes/no and its optional reason (owned; free). */
struct actions_verdict {
	bool yes;
	char *reason;
};
void actions_verdict_free(struct actions_verdict *v);

/* protect(u, t): yes = protected. Without the hook: no. u is the user as
 * for include() (u.groups, u.licenses, u.domain filled). */
int actions_hook_protect(struct actions_hooks *h, const struct policy_user *u, struct actions_verdict *out,
                         struct err *err);
/* allow_action(action, u, t, req): yes = allowed. Without the hook: no.
 * action is "disable", "enable" or "revoke-sessions"; req who asked (the
 * ticket's contact; NULL: none given). */
int actions_hook_allow(struct actions_hooks *h, const char *action, const struct policy_user *u,
                       const struct policy_requester *req, struct actions_verdict *out, struct err *err);

/* ================================================================ environment */

/* What the actions work with; everything borrowed. */
struct actions_env {
	const struct config *cfg;
	struct store *st;
	struct http_engine *engine;   /* with gc: NULL when no Graph call will be made */
	struct graph_client *gc;
	struct syncro_client *sc;     /* tickets only */
	const char *actor;            /* who acts, for the audit ("operator:jdoe") */
	FILE *out;                    /* tickets: one line per ticket (NULL = log only) */
};

/* "operator:<name>": $SUDO_USER when set (the person behind sudo), else
 * $USER, else the login name of the uid, else "uid <n>". Static buffer. */
const char *actions_actor(void);

/* ================================================================ 2. targets */

enum actions_result {
	ACTIONS_OK = 0,
	ACTIONS_USAGE = -1,      /* target unknown or malformed; --yes needed */
	ACTIONS_REFUSED = -2,    /* protected, removed user, policy hook failed, cancelled */
	ACTIONS_FAILED = -3,     /* Graph refused or failed (message says which) */
	ACTIONS_ERROR = -4,      /* could not run (store, config) */
	ACTIONS_AMBIGUOUS = -5,  /* the target matches several users (the message lists them) */
};

/* The Entra user a target resolved to. Owned; actions_target_free. */
struct actions_target {
	const struct config_tenant *tenant;   /* borrowed from the config */
	char *object_id;
	char *label;                 /* userPrincipalName, else mail, else object id */
	cJSON *user;                 /* the mirror's JSON of the user */
	bool removed;                /* removed from Entra (mirror) */
	char *last_pull_at;          /* the tenant's last pull, or NULL */
	struct store_link link;      /* when linked (link.contact_id != 0) */
	char **groups;               /* declared groups of the user: names and ids */
	size_t ngroups;
	char *candidates;            /* ACTIONS_AMBIGUOUS only: "label (tenant), ..." of the users matched */
};
void actions_target_free(struct actions_target *t);

/* Resolves target among the configured tenants (or only tenant, an id or
 * name, when not NULL): all digits → a Syncro contact id (links); a GUID → an
 * Entra object id (mirror); with '@' → mail or userPrincipalName (mirror,
 * case-insensitive) or the e-mail last written to a linked contact.
 * Present users win over removed ones with the same key. Returns ACTIONS_OK;
 * ACTIONS_USAGE with err saying "no user..." (or why target is no target);
 * ACTIONS_AMBIGUOUS with err listing the candidates ("... matches 2 users:
 * Contoso ab12… adele@contoso.com (contact 1001); ...") and out->candidates
 * the same in one line ("adele@contoso.com (Contoso), ..."), for a ticket's
 * comment; or ACTIONS_ERROR. out is freed with actions_target_free either way. */
int actions_resolve(const struct actions_env *env, const char *target, const char *tenant, struct actions_target *out,
                    struct err *err);

/* ================================================================ 3. one action */

struct actions_opts {
	enum graph_action action;
	bool yes;                    /* confirmed on the command line */
	bool dry_run;
	/* Asks the person at the terminal; returns true when confirmed. NULL =
	 * no terminal: a destructive action then needs yes. */
	bool (*confirm)(const char *question, void *ud);
	void *confirm_ud;
	const char *password;        /* set-password: given on stdin, or NULL = generate */
};

/* What happened. Owned; actions_outcome_free (wipes the password). */
struct actions_outcome {
	enum actions_result result;
	char *message;               /* one line: what was done or why not */
	char *permission;            /* the application permission the action needs (static copy) */
	struct graph_action_request request; /* dry-run: what would be sent (password placeholder) */
	char *password;              /* set-password, generated: print it once; NULL otherwise */
	bool password_generated;
};
void actions_outcome_free(struct actions_outcome *o);

/* Runs one action on t: refuses a removed user or one protect() protects
 * (or whose protect() fails), asks for confirmation of a destructive action
 * unless yes (no terminal and no yes: refused, ACTIONS_USAGE), shows the
 * request on dry_run, else calls Graph. Every outcome but dry-run is an audit
 * row. Returns out->result. */
int actions_perform(const struct actions_env *env, const struct actions_target *t, const struct actions_opts *o,
                    struct actions_outcome *out);

/* A strong random password (OpenSSL RAND_bytes): len characters (at least
 * 12) from upper and lower case letters, digits and symbols, with each class
 * present and no look-alikes (0 O 1 l I). *out: free after wiping. */
int actions_password_generate(size_t len, char **out, struct err *err);

/* ================================================================ 4. show */

/* Everything the store knows of the user behind t, as a JSON object: tenant,
 * object id, UPN, mail, displayName, enabled, department, office, jobTitle,
 * licenses (skuId, part number, friendly name), declared groups, removed,
 * last pull, the link (contact, customer, fields, created/updated) and the
 * last audit rows of the user or its contact (newest first, at most
 * max_audit), and protected (with reason) when the policy has protect().
 * *out: cJSON_Delete. */
int actions_show(const struct actions_env *env, const struct actions_target *t, int max_audit, cJSON **out,
                 struct err *err);

/* ================================================================ 5. tickets */

struct actions_ticket_opts {
	const char *problem_type;    /* tickets of this problem type (required) */
	const char *open_status;     /* status filter of "open" tickets; NULL = "Not Closed" */
	const char *status_done;     /* status set after a done action; NULL = unchanged */
	const char *status_failed;   /* after a refused or failed one; NULL = unchanged */
	bool dry_run;                /* say what would be done; change nothing anywhere */
	int max_attempts;            /* Graph attempts for one ticket before giving up; 0 = 3 */
	const bool *tenants;         /* per cfg->tenants, the ones the run was given (sync --tenant); NULL =
	                              * all. A ticket of a customer none of them has, or one left pending for
	                              * another tenant, is left as it is for a run that has its tenant. */
};

struct actions_ticket_report {
	int seen;                    /* open tickets of the problem type */
	int done;                    /* acted on now, ok */
	int refused;                 /* not acted on (no action, no link, protected, not allowed...) */
	int failed;                  /* Graph refused or failed for good */
	int pending;                 /* left for the next run (transient failure) */
	int resumed;                 /* tickets of an interrupted run finished now */
	int already;                 /* handled by an earlier run */
};

/* The ticket actions of one run (what a sync run calls once, after its
 * pull, with the same env): first finishes tickets an interrupted run left
 * (intent: checks the user's live state, acts only if the action is not in
 * effect yet; acted: posts the comment unless a comment with the ticket's
 * marker is already there), then reads the open tickets of the problem type.
 * A ticket whose subject starts with "disable", "enable" or "revoke
 * sessions" (any case) acts on the ticket's contact (through its link) when
 * the tenant's allow_action says yes and protect does not protect the user;
 * set-password is never taken from a ticket. Each outcome is posted as a
 * private comment (with the marker "[entrasync ticket <id>]") and the status
 * set as configured. Requires env->sc, env->gc, env->engine. Returns 0 when
 * the run itself worked (per-ticket failures are in *rep), -1 (err) when it
 * could not run (Syncro unreachable, store). */
int actions_process_tickets(const struct actions_env *env, const struct actions_ticket_opts *o,
                            struct actions_ticket_report *rep, struct err *err);

/* What a ticket subject asks for. The subject is the action ("disable",
 * "enable", "revoke sessions"), optionally a noun ("account", "user",
 * "sign-in", "login") and "for"/"of", optionally the user (an e-mail or
 * UPN, or a name), then nothing or a separator (":", "-", ",", "(", "/",
 * "|", an en or em dash) and any text: "Disable", "Disable Mia", "Disable
 * account: left today", "Revoke sessions for jane@contoso.com - phone
 * stolen". A name is checked against the ticket's contact by the caller
 * ("Disable MFA prompts on Jane's phone" names "MFA prompts on Jane's
 * phone": no contact has that name). */
#define TICKET_TEXT_ADDRESSES 4
struct ticket_subject {
	int action;                /* enum graph_action, -1 when the subject starts with none */
	char address[320];         /* the e-mail naming the user (before the separator), "" if none */
	char name[200];            /* the other words naming the user (before the separator), "" if none */
	bool several;              /* the user part names more than one address */
	/* addresses in the text after the separator: the caller refuses any that
	 * is not the user acted on (a manager who asked, a colleague named: they
	 * are never the target, and a ticket about one user must not name two) */
	char text_address[TICKET_TEXT_ADDRESSES][320];
	int ntext;                 /* how many (at most TICKET_TEXT_ADDRESSES kept; more count) */
	/* the text after the separator, its words lower case between single
	 * spaces, a space first and last (" lucas left today "), "" if none:
	 * the caller refuses a text that names another user of the tenant */
	char text[400];
};
/* Fills *out from subject (NULL = no action). "set password" / "reset
 * password" give GRAPH_ACTION_SET_PASSWORD whatever follows (a ticket
 * never sets one). */
void actions_ticket_subject_parse(const char *subject, struct ticket_subject *out);

#endif
