/* lua_actions — the policy hooks of Microsoft actions: protect(u, t) and
 * allow_action(action, u, t), called in the policy sandbox.
 *
 * The tenant's policy is loaded into its own sandboxed state, kept only when
 * it has a hook, and each hook runs through script_policy_verdict: the one
 * protected call of the scripting layer, with the user table exactly as for
 * include(), the tenant table, a fresh instruction budget, the state's
 * memory cap, and errors naming the hook and the policy's file:line. This
 * file includes no lua.h. */
#include "actions/actions.h"

#include <stdlib.h>
#include <string.h>

struct actions_hooks {
	struct script *s;            /* the policy's state, or NULL when it has no hook */
	unsigned functions;          /* POLICY_FN_* of the policy */
};

bool actions_hooks_has_protect(const struct actions_hooks *h)
{
	return h && (h->functions & POLICY_FN_PROTECT);
}

bool actions_hooks_has_allow(const struct actions_hooks *h)
{
	return h && (h->functions & POLICY_FN_ALLOW_ACTION);
}

void actions_verdict_free(struct actions_verdict *v)
{
	if (!v) return;
	free(v->reason);
	memset(v, 0, sizeof *v);
}

void actions_hooks_free(struct actions_hooks *h)
{
	if (!h) return;
	script_free(h->s);
	free(h);
}

int actions_hooks_load(const char *path, const struct script_limits *limits, const struct script_tenant *t,
                       struct actions_hooks **out, struct err *err)
{
	*out = NULL;
	struct actions_hooks *h = xcalloc(1, sizeof *h);
	if (!path) goto done;
	if (script_new(limits, &h->s, err) != 0 || script_policy_load(h->s, path, err) != 0) goto fail;
	h->functions = script_policy_info(h->s)->functions;
	if (!(h->functions & (POLICY_FN_PROTECT | POLICY_FN_ALLOW_ACTION))) {
		script_free(h->s);     /* nothing to call: keep no state */
		h->s = NULL;
		goto done;
	}
	if (t && script_set_tenant(h->s, t, err) != 0) goto fail;
done:
	*out = h;
	return 0;
fail:
	actions_hooks_free(h);
	return -1;
}

int actions_hook_protect(struct actions_hooks *h, const struct policy_user *u, struct actions_verdict *out,
                         struct err *err)
{
	memset(out, 0, sizeof *out);
	if (!actions_hooks_has_protect(h)) return 0;
	return script_policy_verdict(h->s, "protect", NULL, u, &out->yes, &out->reason, err);
}

int actions_hook_allow(struct actions_hooks *h, const char *action, const struct policy_user *u,
                       const struct policy_requester *req, struct actions_verdict *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	if (!actions_hooks_has_allow(h)) return 0;
	return script_policy_verdict_by(h->s, "allow_action", action, u, req, &out->yes, &out->reason, err);
}
