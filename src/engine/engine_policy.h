/* engine_policy — a tenant's policy as the engine uses it: loaded in a
 * sandboxed script state (script.h), evaluated on a mirrored user
 * (include + contact, with u.groups filled), and on_leave
 * for a leaving linked contact; plus the policy file's hash.
 *
 * on_leave as a function is called in the same state (script_policy_call:
 * same sandbox, a fresh instruction budget, the memory cap) with c (the
 * contact's fields as last written, and its id), why and t; the table it
 * returns is checked here as contact fields, errors naming the policy's
 * file:line where on_leave is written and "on_leave()". */
#ifndef ENGINE_POLICY_H
#define ENGINE_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include "engine/engine.h"
#include "script/script.h"
#include "util/util.h"

struct cJSON;

struct engine_policy {
	struct script *main;           /* include / contact / on_leave */
	const struct policy_info *info;/* owned by main */
	char leave_where[300];         /* "file:line" of on_leave, for its errors */
	char hash[65];                 /* SHA-256 of the policy file, hex */
	/* What every plan stamp starts from: the program version, its built-in
	 * Lua modules, the policy file's hash and the tenant table t. Any of
	 * them changing re-plans every user. */
	uint64_t stamp_base;
	struct engine_plan_opts plan;  /* create_only mask */
	/* calls that ran out of the sandbox's limits (instructions, time,
	 * memory): after ENGINE_POLICY_MAX_EXHAUSTED of them the policy is not
	 * called again for this tenant's run (a looping policy would spend its
	 * whole budget on every user); the first one's message is kept */
	int exhausted;
	char exhausted_first[300];
};
#define ENGINE_POLICY_MAX_EXHAUSTED 3

/* Loads path into *p (zeroed first) for tenant t (may be NULL: policy test).
 * limits may be NULL (defaults). On failure *p is left empty. */
int engine_policy_load(struct engine_policy *p, const char *path, const struct script_limits *limits,
                       const struct script_tenant *t, struct err *err);
void engine_policy_free(struct engine_policy *p);

/* Evaluates include + contact on a Graph user object. groups: the
 * "name\x1Fid\x1E…" string of store_plan_row (NULL/"" = none): both names
 * and ids become keys of u.groups. u.licenses comes from the user's
 * assignedLicenses (script.h). *out: policy_decision_free. */
int engine_policy_eval(struct engine_policy *p, const struct cJSON *user, const char *groups,
                       struct policy_decision *out, struct err *err);
/* The same, handing the policy the user's JSON text (the script layer's
 * fast path: its own parser, a lazy u). user is not used when json is
 * given (may be NULL); without json it is the user, as above. */
int engine_policy_eval_json(struct engine_policy *p, const struct cJSON *user, const char *json,
                            const char *groups, struct policy_decision *out, struct err *err);

/* What on_leave says for a leaving linked contact c (its fields as last
 * written, or as Syncro has them now: engine_stream.c leave_again; and its id), why = "deleted" | "disabled" | "out_of_scope".
 * Not given → keep. *out: engine_leave_free. */
int engine_policy_on_leave(struct engine_policy *p, const struct syncro_fields *c, long long contact_id,
                           const char *why, struct engine_leave *out, struct err *err);

/* Desired contact fields from a decision: the contact() fields, and
 * customer_id (the policy's, else default_customer when > 0). */
void engine_desired_fields(const struct policy_decision *d, long long default_customer, struct syncro_fields *out);

#endif
