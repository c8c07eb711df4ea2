/* actions_internal — what actions.c shares with actions_tickets.c (not for
 * other modules): loading a target from a known user, the tenant's hooks,
 * the user as policies see it, the protect check, audit rows and the texts
 * of a done action. */
#ifndef ENTRASYNC_ACTIONS_INTERNAL_H
#define ENTRASYNC_ACTIONS_INTERNAL_H

#include "actions/actions.h"


/* Fills *out (zeroed first) for user object_id of tenant ct: its mirror row
 * (removed when absent or removed), link, declared groups, last pull.
 * actions_target_free also after a failure. */
int actions_target_load(const struct actions_env *env, const struct config_tenant *ct, const char *object_id,
                        struct actions_target *out, struct err *err);

/* The hooks of tenant ct's policy (config limits). */
int actions_tenant_hooks(const struct actions_env *env, const struct config_tenant *ct, struct actions_hooks **h,
                         struct err *err);

/* pu for t: its mirror JSON and declared groups (names and ids); the script
 * layer makes u.licenses from the JSON's assignedLicenses. */
void actions_target_policy_user(const struct actions_target *t, struct policy_user *pu);

/* protect(u, t) with hooks h: *prot and *why (free; may be NULL). A hook
 * that fails protects (fail closed), with the error as reason. */
void actions_target_protected(struct actions_hooks *h, const struct actions_target *t, bool *prot, char **why);

/* Appends the audit row "user.<what>" of t (tenant may be NULL) with actor
 * env->actor; result is redacted first. Failures are logged. */
void actions_audit(const struct actions_env *env, const struct actions_target *t, const char *what,
                   const char *before, const char *after, const char *result);

/* The before / after JSON of action a on t (new strings or NULL; never a
 * password). */
void actions_change_json(const struct actions_target *t, enum graph_action a, char **before, char **after);

/* After a done disable/enable: the mirror's accountEnabled says what Graph
 * now holds (the next pull brings the same), so `show`, the audit's
 * "before" of a later action and the sync's plan see it at once. */
void actions_mirror_note(const struct actions_env *env, const struct actions_target *t, enum graph_action a);

/* What Microsoft documents that action a does not do for t, one sentence
 * to add to its outcome, or NULL: revoking a B2B guest's sessions (it does
 * not work for external users), disabling or enabling an account synced
 * from on-premises AD (the next directory sync may set it back). */
const char *actions_caveat(const struct actions_target *t, enum graph_action a);

/* "disabled the account of", … (followed by the user's label). */
extern const char *const actions_done_words[GRAPH_NACTIONS];

/* The tenant's configured name, else its id. */
const char *actions_tenant_label(const struct config_tenant *ct);

#endif
