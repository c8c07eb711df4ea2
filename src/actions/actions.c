/* actions — `entrasync user` actions on one target: who acts, target
 * resolution through the links and the mirror, the guarded action (removed
 * user, protect hook, confirmation, dry-run, Graph call, audit row), the
 * password generator, and `show`. Tickets are in actions_tickets.c, the
 * policy hooks in lua_actions.c. See actions.h. */
#include "actions/actions.h"
#include "actions/actions_internal.h"

#include <ctype.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "graph/graph.h"
#include "util/log.h"
#include "util/skus.h"

const char *actions_actor(void)
{
	static char actor[160];
	const char *who = getenv("SUDO_USER");
	if (!who || !*who) who = getenv("USER");
	if (!who || !*who) {
		const struct passwd *pw = getpwuid(getuid());
		who = pw ? pw->pw_name : NULL;
	}
	if (who && *who) snprintf(actor, sizeof actor, "operator:%s", who);
	else snprintf(actor, sizeof actor, "operator:uid %ld", (long)getuid());
	return actor;
}

/* ---- small JSON helpers -------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The user's label: userPrincipalName, else mail, else the object id. */
static const char *user_label(const cJSON *u, const char *object_id)
{
	const char *s = jstr(u, "userPrincipalName");
	if (!s) s = jstr(u, "mail");
	return s ? s : object_id;
}

/* ---- targets ------------------------------------------------------------- */

void actions_target_free(struct actions_target *t)
{
	if (!t) return;
	free(t->object_id);
	free(t->label);
	cJSON_Delete(t->user);
	free(t->last_pull_at);
	store_link_free(&t->link);
	for (size_t i = 0; i < t->ngroups; i++) free(t->groups[i]);
	free(t->groups);
	free(t->candidates);
	memset(t, 0, sizeof *t);
}

enum target_kind { TARGET_CONTACT, TARGET_OBJECT_ID, TARGET_EMAIL };

static bool all_digits(const char *s)
{
	if (!*s) return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s)) return false;
	return true;
}

/* One user a target may mean. */
struct candidate {
	const struct config_tenant *tenant;
	char *object_id;
	char *label;
	bool removed;
	long long contact_id;
};

struct resolve {
	const struct actions_env *env;
	const struct config_tenant *tenant;
	enum target_kind kind;
	const char *target;
	long long contact_id;
	struct candidate *v;
	size_t n, cap;
	struct err err;
	bool failed;
};

static void candidate_add(struct resolve *r, const char *object_id, const char *label, bool removed,
                          long long contact_id)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->v[i].tenant == r->tenant && str_ieq(r->v[i].object_id, object_id)) {
			if (!r->v[i].contact_id) r->v[i].contact_id = contact_id;
			return;
		}
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 8;
		r->v = xrealloc(r->v, r->cap * sizeof *r->v);
	}
	r->v[r->n++] = (struct candidate){ .tenant = r->tenant, .object_id = xstrdup(object_id),
	                                    .label = label ? xstrdup(label) : NULL, .removed = removed,
	                                    .contact_id = contact_id };
}

static int link_match(const struct store_link *l, void *ud)
{
	struct resolve *r = ud;
	bool hit = false;
	if (r->kind == TARGET_CONTACT) {
		hit = l->contact_id == r->contact_id;
	} else if (r->kind == TARGET_EMAIL && l->fields) {
		cJSON *f = cJSON_Parse(l->fields);
		const char *mail = jstr(f, "email");
		hit = mail && str_ieq(mail, r->target);
		cJSON_Delete(f);
	}
	if (hit) candidate_add(r, l->object_id, NULL, false, l->contact_id);
	return 0;
}

static int user_match(const struct store_user *u, void *ud)
{
	struct resolve *r = ud;
	cJSON *j = cJSON_Parse(u->json);
	const char *mail = jstr(j, "mail"), *upn = jstr(j, "userPrincipalName");
	if ((mail && str_ieq(mail, r->target)) || (upn && str_ieq(upn, r->target)))
		candidate_add(r, u->object_id, user_label(j, u->object_id), u->removed != NULL, 0);
	cJSON_Delete(j);
	return 0;
}

/* Collects the candidates of one tenant. */
static int resolve_tenant(struct resolve *r, struct err *err)
{
	struct store *st = r->env->st;
	const char *tid = r->tenant->id;
	if (r->kind == TARGET_CONTACT || r->kind == TARGET_EMAIL)
		if (store_link_each(st, tid, link_match, r, err) < 0) return -1;
	if (r->kind == TARGET_EMAIL && store_user_each(st, tid, STORE_USERS_ALL, user_match, r, err) < 0) return -1;
	if (r->kind == TARGET_OBJECT_ID) {
		struct store_user u;
		int rc = store_user_get(st, tid, r->target, &u, err);
		if (rc < 0) return -1;
		if (rc == 0) {
			cJSON *j = cJSON_Parse(u.json);
			candidate_add(r, u.object_id, user_label(j, u.object_id), u.removed != NULL, 0);
			cJSON_Delete(j);
			store_user_free(&u);
		}
	}
	return 0;
}

static bool tenant_selected(const struct config_tenant *t, const char *sel)
{
	return !sel || str_ieq(t->id, sel) || (t->name && str_ieq(t->name, sel));
}

static int group_collect(const char *group_id, const char *display_name, void *ud)
{
	struct actions_target *t = ud;
	t->groups = xrealloc(t->groups, (t->ngroups + 2) * sizeof *t->groups);
	if (display_name) t->groups[t->ngroups++] = xstrdup(display_name);
	t->groups[t->ngroups++] = xstrdup(group_id);
	return 0;
}

int actions_target_load(const struct actions_env *env, const struct config_tenant *ct, const char *object_id,
                        struct actions_target *out, struct err *err)
{
	struct store *st = env->st;
	const char *tid = ct->id;
	memset(out, 0, sizeof *out);
	out->tenant = ct;
	out->object_id = xstrdup(object_id);
	struct store_user u;
	int rc = store_user_get(st, tid, object_id, &u, err);
	if (rc < 0) return -1;
	if (rc == 0) {
		out->user = cJSON_Parse(u.json);
		out->removed = u.removed != NULL;
		store_user_free(&u);
	} else {
		out->removed = true;   /* linked, but not (or no longer) in the mirror */
	}
	out->label = xstrdup(user_label(out->user, object_id));
	if ((rc = store_link_get(st, tid, object_id, &out->link, err)) < 0) return -1;
	struct store_tenant row;
	if ((rc = store_tenant_get(st, tid, &row, err)) < 0) return -1;
	if (rc == 0) {
		out->last_pull_at = row.last_pull_at ? xstrdup(row.last_pull_at) : NULL;
		store_tenant_free(&row);
	}
	if (store_user_groups_each(st, tid, object_id, group_collect, out, err) < 0) return -1;
	return 0;
}

int actions_resolve(const struct actions_env *env, const char *target, const char *tenant, struct actions_target *out,
                    struct err *err)
{
	memset(out, 0, sizeof *out);
	struct resolve r = { .env = env, .target = target };
	char *lower = NULL;
	const struct config *cfg = env->cfg;
	int rc = ACTIONS_ERROR;
	if (all_digits(target)) {
		r.kind = TARGET_CONTACT;
		r.contact_id = strtoll(target, NULL, 10);
	} else if (str_is_guid(target)) {
		r.kind = TARGET_OBJECT_ID;   /* Graph's ids are lower case; an id copied from elsewhere may not be */
		lower = xstrdup(target);
		for (char *c = lower; *c; c++) *c = (char)tolower((unsigned char)*c);
		r.target = lower;
	} else if (strchr(target, '@')) {
		r.kind = TARGET_EMAIL;
	} else {
		return err_set(err, "'%s' is not a Syncro contact id, an e-mail, a UPN or an Entra object id", target),
		       ACTIONS_USAGE;
	}
	bool any_tenant = false;
	for (size_t i = 0; i < cfg->ntenants; i++) {
		if (!tenant_selected(&cfg->tenants[i], tenant)) continue;
		any_tenant = true;
		r.tenant = &cfg->tenants[i];
		if (resolve_tenant(&r, err) != 0) goto out;
	}
	/* candidates found through a link: their label and state from the mirror */
	for (size_t i = 0; i < r.n; i++) {
		struct store_user u;
		int got;
		if (r.v[i].label) continue;
		if ((got = store_user_get(env->st, r.v[i].tenant->id, r.v[i].object_id, &u, err)) < 0) goto out;
		r.v[i].removed = got != 0 || u.removed != NULL;
		if (got == 0) {
			cJSON *j = cJSON_Parse(u.json);
			r.v[i].label = xstrdup(user_label(j, u.object_id));
			cJSON_Delete(j);
			store_user_free(&u);
		}
	}
	if (!any_tenant) {
		rc = ACTIONS_USAGE;
		err_set(err, "tenant '%s' is not in the config", tenant);
		goto out;
	}
	/* present users win over removed ones of the same tenant; across
	 * tenants a removed match still makes the target ambiguous (the user
	 * meant may be the one removed: acting on a namesake in another
	 * customer's tenant is the mistake to avoid) */
	size_t present = 0, pick = 0;
	bool tenants_differ = false;
	for (size_t i = 0; i < r.n; i++) {
		if (!r.v[i].removed) present++, pick = i;
		if (r.v[i].tenant != r.v[0].tenant) tenants_differ = true;
	}
	if (tenants_differ) present = 0;
	if (r.n == 0) {
		rc = ACTIONS_USAGE;
		err_set(err, "no user matches '%s'%s%s (looked in the links and the mirror: has the tenant been pulled?)",
		        target, tenant ? " in tenant " : "", tenant ? tenant : "");
		goto out;
	}
	if (r.n > 1 && present != 1) {
		struct buf b = {0}, line = {0};
		buf_printf(&b, "'%s' is ambiguous: it matches %zu users; name one by its object id (and --tenant):", target,
		           r.n);
		for (size_t i = 0; i < r.n; i++) {
			const struct candidate *c = &r.v[i];
			buf_printf(&b, "\n  %s %s %s", c->tenant->name ? c->tenant->name : c->tenant->id, c->object_id,
			           c->label ? c->label : "");
			if (c->contact_id) buf_printf(&b, " (contact %lld)", c->contact_id);
			if (c->removed) buf_adds(&b, " (removed)");
			buf_printf(&line, "%s%s (%s%s)", i ? ", " : "", c->label ? c->label : c->object_id,
			           actions_tenant_label(c->tenant), c->removed ? ", removed" : "");
		}
		err_set(err, "%s", b.data);
		buf_free(&b);
		out->candidates = line.data;   /* taken */
		rc = ACTIONS_AMBIGUOUS;
		goto out;
	}
	if (r.n == 1) pick = 0;
	if (actions_target_load(env, r.v[pick].tenant, r.v[pick].object_id, out, err) != 0) {
		actions_target_free(out);
		goto out;
	}
	rc = ACTIONS_OK;
out:
	for (size_t i = 0; i < r.n; i++) {
		free(r.v[i].object_id);
		free(r.v[i].label);
	}
	free(r.v);
	free(lower);
	return rc;
}

/* ---- the user as policies see it ----------------------------------------- */

void actions_target_policy_user(const struct actions_target *t, struct policy_user *pu)
{
	memset(pu, 0, sizeof *pu);
	pu->graph = t->user;
	pu->groups = (const char *const *)t->groups;
	pu->ngroups = t->ngroups;
}

int actions_tenant_hooks(const struct actions_env *env, const struct config_tenant *ct, struct actions_hooks **h,
                         struct err *err)
{
	struct script_limits lim = { .instructions = env->cfg->limits.instructions, .seconds = env->cfg->limits.seconds,
	                             .memory_bytes = env->cfg->limits.memory_bytes };
	struct script_tenant st = { .id = ct->id, .name = ct->name, .syncro_customer_id = ct->syncro_customer_id };
	return actions_hooks_load(ct->policy, &lim, &st, h, err);
}

void actions_target_protected(struct actions_hooks *h, const struct actions_target *t, bool *prot, char **why)
{
	struct err err;
	struct actions_verdict v = { 0 };
	struct policy_user pu;
	*prot = false;
	*why = NULL;
	actions_target_policy_user(t, &pu);
	if (t->user && actions_hook_protect(h, &pu, &v, &err) != 0) {
		*prot = true;
		*why = xasprintf("protect() failed: %s", err.msg);
	} else if (v.yes) {
		*prot = true;
		*why = v.reason ? xstrdup(v.reason) : NULL;
	}
	actions_verdict_free(&v);
}

/* protect(u, t) of t's tenant, loading its hooks: *prot, *why (free). A
 * policy that does not load protects (fail closed), with the error as reason. */
static void target_protected(const struct actions_env *env, const struct actions_target *t, bool *prot, char **why)
{
	struct actions_hooks *h = NULL;
	struct err err;
	if (actions_tenant_hooks(env, t->tenant, &h, &err) != 0) {
		*prot = true;
		*why = xasprintf("the tenant's policy does not load, so protect() cannot be asked: %s", err.msg);
		return;
	}
	actions_target_protected(h, t, prot, why);
	actions_hooks_free(h);
}

/* ---- passwords ------------------------------------------------------------ */

int actions_password_generate(size_t len, char **out, struct err *err)
{
	static const char *const classes[] = { "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz", "23456789",
	                                       "!#$%&*+-=?@^_~" };
	char alphabet[128] = "";
	for (size_t i = 0; i < ARRAY_LEN(classes); i++) strcat(alphabet, classes[i]);
	size_t n = strlen(alphabet);
	unsigned limit = 256 - 256 % (unsigned)n;   /* rejection sampling: no modulo bias */
	*out = NULL;
	if (len < 12 || len > 256) return err_set(err, "password length %zu is not within 12..256", len);
	char *pw = xmalloc(len + 1);
	unsigned char rnd[64];
	for (int tries = 0; tries < 100; tries++) {
		size_t k = 0;
		while (k < len) {
			if (RAND_bytes(rnd, sizeof rnd) != 1) {
				OPENSSL_cleanse(pw, len + 1);
				free(pw);
				return err_set(err, "the random generator (OpenSSL RAND_bytes) failed");
			}
			for (size_t i = 0; i < sizeof rnd && k < len; i++)
				if (rnd[i] < limit) pw[k++] = alphabet[rnd[i] % n];
		}
		pw[len] = '\0';
		bool all = true;
		for (size_t c = 0; c < ARRAY_LEN(classes); c++)
			if (strcspn(pw, classes[c]) == len) all = false;
		if (all) {
			OPENSSL_cleanse(rnd, sizeof rnd);
			*out = pw;
			return 0;
		}
	}
	OPENSSL_cleanse(pw, len + 1);
	OPENSSL_cleanse(rnd, sizeof rnd);
	free(pw);
	return err_set(err, "could not draw a password with every character class");
}

/* ---- one action ------------------------------------------------------------ */

void actions_outcome_free(struct actions_outcome *o)
{
	if (!o) return;
	free(o->message);
	free(o->permission);
	graph_action_request_free(&o->request);
	if (o->password) OPENSSL_cleanse(o->password, strlen(o->password));
	free(o->password);
	memset(o, 0, sizeof *o);
}

void actions_audit(const struct actions_env *env, const struct actions_target *t, const char *what,
                   const char *before, const char *after, const char *result)
{
	char action[48];
	snprintf(action, sizeof action, "user.%s", what);
	struct err err;
	struct buf red = {0};
	log_redact(result, &red);
	if (store_audit_append(env->st, &(struct store_audit){
		.tenant_id = t->tenant ? t->tenant->id : NULL, .object_id = t->object_id, .contact_id = t->link.contact_id,
		.action = action, .before = before, .after = after, .actor = env->actor, .result = red.data }, NULL,
		&err) != 0)
		log_error("actions.audit", "could not record the audit row of %s on %s: %s", action,
		          t->label ? t->label : "?", err.msg);
	buf_free(&red);
}

/* Sets the outcome's result and message (printf), audits it with the
 * given prefix ("refused", "failed", "cancelled"), returns result. */
static int finish(const struct actions_env *env, const struct actions_target *t, enum graph_action a,
                  struct actions_outcome *out, enum actions_result result, const char *prefix, bool dry_run,
                  const char *fmt, ...) __attribute__((format(printf, 8, 9)));
static int finish(const struct actions_env *env, const struct actions_target *t, enum graph_action a,
                  struct actions_outcome *out, enum actions_result result, const char *prefix, bool dry_run,
                  const char *fmt, ...)
{
	va_list ap;
	struct buf msg = {0};
	va_start(ap, fmt);
	buf_vprintf(&msg, fmt, ap);
	va_end(ap);
	struct buf red = {0};
	log_redact(msg.data, &red);
	buf_free(&msg);
	out->result = result;
	out->message = buf_steal(&red);
	if (!dry_run) {
		char *row = xasprintf("%s: %s", prefix, out->message);
		actions_audit(env, t, graph_action_name(a), NULL, NULL, row);
		free(row);
	}
	return result;
}

void actions_change_json(const struct actions_target *t, enum graph_action a, char **before, char **after)
{
	*before = *after = NULL;
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(t->user, "accountEnabled");
	switch (a) {
	case GRAPH_ACTION_DISABLE:
	case GRAPH_ACTION_ENABLE:
		if (cJSON_IsBool(en)) *before = xasprintf("{\"accountEnabled\":%s}", cJSON_IsTrue(en) ? "true" : "false");
		*after = xasprintf("{\"accountEnabled\":%s}", a == GRAPH_ACTION_ENABLE ? "true" : "false");
		break;
	case GRAPH_ACTION_REVOKE_SESSIONS:
		*after = xstrdup("{\"revokeSignInSessions\":true}");
		break;
	case GRAPH_ACTION_SET_PASSWORD:
	case GRAPH_NACTIONS:
		*after = xstrdup("{\"passwordProfile\":{\"forceChangePasswordNextSignIn\":true}}");
		break;
	}
}

void actions_mirror_note(const struct actions_env *env, const struct actions_target *t, enum graph_action a)
{
	if ((a != GRAPH_ACTION_DISABLE && a != GRAPH_ACTION_ENABLE) || !cJSON_IsObject(t->user) || t->removed) return;
	cJSON *u = cJSON_Duplicate(t->user, 1);
	cJSON_DeleteItemFromObjectCaseSensitive(u, "accountEnabled");
	cJSON_AddBoolToObject(u, "accountEnabled", a == GRAPH_ACTION_ENABLE);
	char *json = cJSON_PrintUnformatted(u);
	struct err err;
	if (store_user_put(env->st, t->tenant->id, t->object_id, json, &err) != 0)
		log_warn("actions.mirror", "%s: the mirror keeps the old accountEnabled until the next pull: %s", t->label,
		         err.msg);
	free(json);
	cJSON_Delete(u);
}

const char *const actions_done_words[GRAPH_NACTIONS] = {
	[GRAPH_ACTION_DISABLE] = "disabled the account of",
	[GRAPH_ACTION_ENABLE] = "enabled the account of",
	[GRAPH_ACTION_REVOKE_SESSIONS] = "revoked the sign-in sessions of",
	[GRAPH_ACTION_SET_PASSWORD] = "set a new password (to change at next sign-in) for",
};

const char *actions_tenant_label(const struct config_tenant *ct)
{
	return ct->name ? ct->name : ct->id;
}

int actions_perform(const struct actions_env *env, const struct actions_target *t, const struct actions_opts *o,
                    struct actions_outcome *out)
{
	memset(out, 0, sizeof *out);
	enum graph_action a = o->action;
	const char *name = graph_action_name(a), *tn = actions_tenant_label(t->tenant);
	struct err err;
	out->permission = xstrdup(graph_action_permission(a));
	if (t->removed)
		return finish(env, t, a, out, ACTIONS_REFUSED, "refused", o->dry_run,
		              "%s of %s (%s) refused: the user was removed from Entra (as of the last pull)", name, t->label,
		              tn);
	bool prot;
	char *why;
	target_protected(env, t, &prot, &why);
	if (prot) {
		int rc = finish(env, t, a, out, ACTIONS_REFUSED, "refused", o->dry_run,
		                "%s of %s (%s) refused: the user is protected by the tenant's policy%s%s", name, t->label, tn,
		                why ? ": " : "", why ? why : "");
		free(why);
		return rc;
	}
	if (o->dry_run) {
		graph_action_request_make(a, t->object_id, NULL, &out->request);
		out->result = ACTIONS_OK;
		const char *note = actions_caveat(t, a);
		out->message = xasprintf("dry run: %s of %s (%s) would send %s %s%s%s (needs %s)%s%s", name, t->label, tn,
		                         out->request.method, out->request.url, out->request.body ? " " : "",
		                         out->request.body ? out->request.body : "", out->permission, note ? ". Note: " : "",
		                         note ? note : "");
		return ACTIONS_OK;
	}
	if (graph_action_destructive(a) && !o->yes) {
		if (!o->confirm)
			return finish(env, t, a, out, ACTIONS_USAGE, "refused", false,
			              "%s of %s (%s) not confirmed: no terminal to ask on; pass --yes to confirm", name, t->label,
			              tn);
		char *q = xasprintf("%s the Microsoft account %s (%s)?", name, t->label, tn);
		bool yes = o->confirm(q, o->confirm_ud);
		free(q);
		if (!yes)
			return finish(env, t, a, out, ACTIONS_REFUSED, "cancelled", false, "%s of %s (%s) cancelled at the prompt",
			              name, t->label, tn);
	}
	if (!env->gc || !env->engine)
		return finish(env, t, a, out, ACTIONS_ERROR, "failed", false, "%s: no Graph client", name);
	char *password = NULL;
	if (a == GRAPH_ACTION_SET_PASSWORD) {
		if (o->password) {
			password = xstrdup(o->password);
		} else if (actions_password_generate(20, &password, &err) != 0) {
			return finish(env, t, a, out, ACTIONS_ERROR, "failed", false, "%s of %s: %s", name, t->label, err.msg);
		} else {
			out->password_generated = true;
		}
		log_secret_add(password);
	}
	struct graph_tenant *gt = graph_tenant_get(env->gc, t->tenant->id);
	enum graph_action_status st = graph_action_run(env->engine, gt, a, t->object_id, t->label, password, &err);
	if (st != GRAPH_ACTION_OK) {
		if (password) OPENSSL_cleanse(password, strlen(password));
		free(password);
		out->password_generated = false;
		return finish(env, t, a, out, ACTIONS_FAILED, "failed", false, "%s", err.msg);
	}
	char *before, *after;
	actions_change_json(t, a, &before, &after);
	actions_audit(env, t, graph_action_name(a), before, after, "ok");
	actions_mirror_note(env, t, a);
	free(before);
	free(after);
	out->result = ACTIONS_OK;
	const char *note = actions_caveat(t, a);
	out->message = xasprintf("%s %s (%s)%s%s", actions_done_words[a], t->label, tn, note ? ". Note: " : "",
	                         note ? note : "");
	if (out->password_generated) out->password = password;
	else if (password) {
		OPENSSL_cleanse(password, strlen(password));
		free(password);
	}
	return ACTIONS_OK;
}

const char *actions_caveat(const struct actions_target *t, enum graph_action a)
{
	const char *upn = jstr(t->user, "userPrincipalName"), *type = jstr(t->user, "userType");
	bool guest = (type && str_ieq(type, "Guest")) || (upn && strstr(upn, "#EXT#"));
	const cJSON *synced = cJSON_GetObjectItemCaseSensitive(t->user, "onPremisesSyncEnabled");
	if (a == GRAPH_ACTION_REVOKE_SESSIONS && guest)
		return "Microsoft documents that revoking sessions does not work for external (B2B) users: this guest's "
		       "sign-ins come from their own organization; disable the guest here, or ask their organization";
	if ((a == GRAPH_ACTION_DISABLE || a == GRAPH_ACTION_ENABLE) && cJSON_IsTrue(synced))
		return "the account is synced from on-premises Active Directory: the next directory sync may set it back; "
		       "change it in AD too";
	return NULL;
}

/* ---- show ------------------------------------------------------------------- */

struct audit_pick {
	const struct actions_target *t;
	cJSON *rows;
	int left;
};

static void add_json_text(cJSON *o, const char *k, const char *json)
{
	cJSON *v = json ? cJSON_Parse(json) : NULL;
	if (v) cJSON_AddItemToObject(o, k, v);
	else if (json) cJSON_AddStringToObject(o, k, json);
}

static int audit_pick(const struct store_audit *a, void *ud)
{
	struct audit_pick *p = ud;
	bool mine = (a->object_id && str_ieq(a->object_id, p->t->object_id)) ||
	            (p->t->link.contact_id && a->contact_id == p->t->link.contact_id);
	if (!mine) return 0;
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "at", a->at);
	cJSON_AddStringToObject(r, "action", a->action);
	if (a->actor) cJSON_AddStringToObject(r, "actor", a->actor);
	if (a->result) cJSON_AddStringToObject(r, "result", a->result);
	if (a->contact_id) cJSON_AddNumberToObject(r, "contact_id", (double)a->contact_id);
	add_json_text(r, "before", a->before);
	add_json_text(r, "after", a->after);
	cJSON_AddItemToArray(p->rows, r);
	return --p->left > 0 ? 0 : 1;
}

static int group_json(const char *group_id, const char *display_name, void *ud)
{
	cJSON *g = cJSON_CreateObject();
	if (display_name) cJSON_AddStringToObject(g, "name", display_name);
	cJSON_AddStringToObject(g, "id", group_id);
	cJSON_AddItemToArray(ud, g);
	return 0;
}

static void copy_member(cJSON *dst, const char *k, const cJSON *src, const char *sk)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, sk);
	if (v && !cJSON_IsNull(v)) cJSON_AddItemToObject(dst, k, cJSON_Duplicate(v, 1));
}

int actions_show(const struct actions_env *env, const struct actions_target *t, int max_audit, cJSON **out,
                 struct err *err)
{
	cJSON *o = cJSON_CreateObject();
	*out = NULL;
	cJSON_AddStringToObject(o, "tenant", t->tenant->id);
	if (t->tenant->name) cJSON_AddStringToObject(o, "tenant_name", t->tenant->name);
	cJSON_AddStringToObject(o, "object_id", t->object_id);
	copy_member(o, "userPrincipalName", t->user, "userPrincipalName");
	copy_member(o, "mail", t->user, "mail");
	copy_member(o, "displayName", t->user, "displayName");
	copy_member(o, "enabled", t->user, "accountEnabled");
	copy_member(o, "department", t->user, "department");
	copy_member(o, "office", t->user, "officeLocation");
	copy_member(o, "jobTitle", t->user, "jobTitle");
	copy_member(o, "userType", t->user, "userType");
	cJSON_AddBoolToObject(o, "removed", t->removed);
	cJSON *lics = cJSON_AddArrayToObject(o, "licenses");
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(t->user, "assignedLicenses")) {
		const char *sku = jstr(it, "skuId");
		if (!sku) continue;
		const struct sku_info *si = skus_find(sku);
		cJSON *l = cJSON_CreateObject();
		cJSON_AddStringToObject(l, "skuId", sku);
		if (si) cJSON_AddStringToObject(l, "skuPartNumber", si->part_number);
		cJSON_AddStringToObject(l, "name", skus_friendly_name(sku, si ? si->part_number : NULL));
		cJSON_AddItemToArray(lics, l);
	}
	cJSON *groups = cJSON_AddArrayToObject(o, "groups");
	if (store_user_groups_each(env->st, t->tenant->id, t->object_id, group_json, groups, err) < 0) {
		cJSON_Delete(o);
		return -1;
	}
	if (t->last_pull_at) cJSON_AddStringToObject(o, "last_pull", t->last_pull_at);
	else cJSON_AddNullToObject(o, "last_pull");
	if (t->link.contact_id) {
		cJSON *l = cJSON_AddObjectToObject(o, "link");
		cJSON_AddNumberToObject(l, "contact_id", (double)t->link.contact_id);
		cJSON_AddNumberToObject(l, "customer_id", (double)t->link.customer_id);
		add_json_text(l, "fields", t->link.fields);
		if (t->link.created_at) cJSON_AddStringToObject(l, "created_at", t->link.created_at);
		if (t->link.updated_at) cJSON_AddStringToObject(l, "updated_at", t->link.updated_at);
	} else {
		cJSON_AddNullToObject(o, "link");
	}
	bool prot;
	char *why;
	target_protected(env, t, &prot, &why);
	cJSON_AddBoolToObject(o, "protected", prot);
	if (why) cJSON_AddStringToObject(o, "protected_reason", why);
	free(why);
	struct audit_pick p = { .t = t, .rows = cJSON_AddArrayToObject(o, "audit"), .left = max_audit > 0 ? max_audit : 10 };
	struct store_audit_filter f = { .tenant_id = t->tenant->id, .newest_first = true };
	if (store_audit_each(env->st, &f, audit_pick, &p, err) < 0) {
		cJSON_Delete(o);
		return -1;
	}
	*out = o;
	return 0;
}
