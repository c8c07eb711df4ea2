/* lua_actions — the policy hooks of Microsoft actions: protect(u, t) and
 * allow_action(action, u, t), called in the policy sandbox.
 *
 * script.h offers a call for include/contact only and no access to the Lua
 * state, so the hooks run through its public API: a generated wrapper
 * policy, loaded in its own sandboxed state, embeds the tenant's policy text
 * (loaded with chunkname "@PATH", so its errors keep the real file:line),
 * and its include(u, t) calls the hook that u["@entrasync.hook"] names, with
 * the action from u["@entrasync.action"] (both keys removed from u before
 * the call), returning the hook's boolean and reason. Same sandbox,
 * instruction budget and memory cap as every policy call. The policy is also
 * loaded once on its own, for its validation and to learn which hooks it
 * has. When script.h gains a direct call (e.g. script_policy_call(s, name,
 * args)), only this file changes. This file includes no lua.h. */
#include "actions.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "snapshot.h"

#define HOOK_KEY "@entrasync.hook"
#define ACTION_KEY "@entrasync.action"

struct actions_hooks {
	struct script *s;            /* the wrapper, or NULL when the policy has no hook */
	unsigned functions;          /* POLICY_FN_* of the real policy */
	char *path;
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
	free(h->path);
	free(h);
}

/* Appends s as a Lua double-quoted string literal. */
static void lua_string(struct buf *b, const char *s)
{
	buf_addc(b, '"');
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') buf_printf(b, "\\%c", *p);
		else if (*p < 0x20) buf_printf(b, "\\%03u", *p);
		else buf_addc(b, (char)*p);
	}
	buf_addc(b, '"');
}

/* The '=' count of a long bracket that cannot occur in text: one more than
 * the longest run of '=' that follows a ']' in it. */
static size_t long_bracket_level(const char *text)
{
	size_t longest = 0;
	for (const char *p = strchr(text, ']'); p; p = strchr(p + 1, ']')) {
		size_t n = strspn(p + 1, "=");
		if (n > longest) longest = n;
	}
	return longest + 1;
}

/* The wrapper policy's source for the policy at path with text. */
static char *wrapper_source(const char *path, const char *text)
{
	size_t level = long_bracket_level(text);
	char *eq = xmalloc(level + 1);
	memset(eq, '=', level);
	eq[level] = '\0';
	struct buf b = {0};
	buf_printf(&b, "local src = [%s[\n%s]%s]\nlocal PATH = ", eq, text, eq);
	lua_string(&b, path);
	buf_adds(&b, "\nlocal policy = assert(load(src, \"@\" .. PATH, \"t\"))()\n"
	       "local hooks = { protect = policy.protect, allow_action = policy.allow_action }\n"
	       "return {\n"
	       "  include = function(u, t)\n"
	       "    local hook, action = u[\"" HOOK_KEY "\"], u[\"" ACTION_KEY "\"]\n"
	       "    u[\"" HOOK_KEY "\"] = nil\n"
	       "    u[\"" ACTION_KEY "\"] = nil\n"
	       "    local fn = hooks[hook]\n"
	       "    local yes, why\n"
	       "    if hook == \"protect\" then yes, why = fn(u, t) else yes, why = fn(action, u, t) end\n"
	       "    if yes == nil then yes = false end\n"
	       "    if type(yes) ~= \"boolean\" then\n"
	       "      error(PATH .. \": \" .. hook .. \"() must return true or false [, reason], got \" .. type(yes), 0)\n"
	       "    end\n"
	       "    if why ~= nil and type(why) ~= \"string\" and type(why) ~= \"number\" then\n"
	       "      error(PATH .. \": \" .. hook .. \"()'s reason must be a string, got \" .. type(why), 0)\n"
	       "    end\n"
	       "    return yes, why\n"
	       "  end,\n"
	       "}\n");
	free(eq);
	return buf_steal(&b);
}

/* Loads the wrapper source into a new state (through a private temporary
 * file, removed at once: script_policy_load reads files). */
static int load_wrapper(struct actions_hooks *h, const char *text, const struct script_limits *limits,
                        const struct script_tenant *t, struct err *err)
{
	const char *tmp = getenv("TMPDIR");
	char *tpl = xasprintf("%s/entrasync-hooks-XXXXXX.lua", tmp && *tmp ? tmp : "/tmp");
	char *src = wrapper_source(h->path, text);
	int rc = -1;
	int fd = mkstemps(tpl, 4);
	if (fd < 0) {
		err_set(err, "%s: cannot create a temporary file for its hooks in %s", h->path, tmp && *tmp ? tmp : "/tmp");
		goto out;
	}
	size_t len = strlen(src);
	bool written = write(fd, src, len) == (ssize_t)len;
	close(fd);
	if (!written) {
		err_set(err, "%s: cannot write the hooks wrapper %s", h->path, tpl);
		goto out_unlink;
	}
	if (script_new(limits, &h->s, err) != 0) goto out_unlink;
	if (script_policy_load(h->s, tpl, err) != 0) goto out_unlink;
	if (t && script_set_tenant(h->s, t, err) != 0) goto out_unlink;
	rc = 0;
out_unlink:
	unlink(tpl);
out:
	free(tpl);
	free(src);
	return rc;
}

int actions_hooks_load(const char *path, const struct script_limits *limits, const struct script_tenant *t,
                       struct actions_hooks **out, struct err *err)
{
	*out = NULL;
	struct actions_hooks *h = xcalloc(1, sizeof *h);
	struct script *probe = NULL;
	char *text = NULL;
	size_t len = 0;
	if (!path) goto done;
	h->path = xstrdup(path);
	/* the policy on its own: validation, and which hooks it has */
	if (script_new(limits, &probe, err) != 0 || script_policy_load(probe, path, err) != 0) goto fail;
	h->functions = script_policy_info(probe)->functions;
	if (!(h->functions & (POLICY_FN_PROTECT | POLICY_FN_ALLOW_ACTION))) goto done;
	if (snapshot_file_read(path, &text, &len, err) != 0) goto fail;
	if (strlen(text) != len) {
		err_set(err, "%s: holds a NUL byte", path);
		goto fail;
	}
	if (load_wrapper(h, text, limits, t, err) != 0) goto fail;
done:
	script_free(probe);
	free(text);
	*out = h;
	return 0;
fail:
	script_free(probe);
	free(text);
	actions_hooks_free(h);
	return -1;
}

/* "in include()" in the wrapper's messages → "in HOOK()". */
static void name_hook(struct err *err, const char *hook)
{
	const char *from = "in include()";
	char *at = strstr(err->msg, from);
	if (!at) return;
	struct buf b = {0};
	buf_add(&b, err->msg, (size_t)(at - err->msg));
	buf_printf(&b, "in %s()", hook);
	buf_adds(&b, at + strlen(from));
	err_set(err, "%s", b.data);
	buf_free(&b);
}

static int call_hook(struct actions_hooks *h, const char *hook, const char *action, const struct policy_user *u,
                     struct actions_verdict *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	cJSON *user = NULL;
	if (u->graph) {
		user = cJSON_Duplicate(u->graph, 1);
	} else {
		user = cJSON_ParseWithLength(u->json ? u->json : "", u->json ? u->len : 0);
		if (!user) return err_set(err, "%s(): the user is not valid JSON", hook);
	}
	if (!cJSON_IsObject(user)) {
		cJSON_Delete(user);
		return err_set(err, "%s(): the user must be a JSON object", hook);
	}
	cJSON_DeleteItemFromObjectCaseSensitive(user, HOOK_KEY);
	cJSON_DeleteItemFromObjectCaseSensitive(user, ACTION_KEY);
	cJSON_AddStringToObject(user, HOOK_KEY, hook);
	if (action) cJSON_AddStringToObject(user, ACTION_KEY, action);
	struct policy_user pu = *u;
	pu.graph = user;
	pu.json = NULL;
	pu.len = 0;
	struct policy_decision d;
	int rc = script_policy_eval(h->s, &pu, &d, err);
	cJSON_Delete(user);
	if (rc != 0) {
		name_hook(err, hook);
		return -1;
	}
	out->yes = d.include;
	out->reason = d.reason ? xstrdup(d.reason) : NULL;
	policy_decision_free(&d);
	return 0;
}

int actions_hook_protect(struct actions_hooks *h, const struct policy_user *u, struct actions_verdict *out,
                         struct err *err)
{
	memset(out, 0, sizeof *out);
	if (!actions_hooks_has_protect(h)) return 0;
	return call_hook(h, "protect", NULL, u, out, err);
}

int actions_hook_allow(struct actions_hooks *h, const char *action, const struct policy_user *u,
                       struct actions_verdict *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	if (!actions_hooks_has_allow(h)) return 0;
	return call_hook(h, "allow_action", action, u, out, err);
}
