/* lua_license — the policy hooks of reports, bound to each tenant's policy:
 *   license = function(sku, t) return { name=, hide=, billable=, unit_price=, group= } end
 *   secure_score = function(s, prev, t) return { alert = "..." } | nil end
 * (see report.h). One sandboxed script state per tenant, made and loaded on
 * the tenant's first call, with the config's limits.
 *
 * The call into Lua goes through script_policy_call (script layer): it
 * pushes JSON values as Lua tables, calls the named policy function with
 * the tenant table last, under the instruction budget and memory cap, and
 * converts its result back. */
#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "util/config.h"
#include "util/log.h"
#include "report/report.h"
#include "script/script.h"

struct tenant_state {
	const struct config_tenant *t;
	struct script *s;          /* NULL until made, or when it failed */
	bool tried;
	char *error;               /* why the policy could not be used */
};

struct report_lua {
	const struct config *cfg;
	struct tenant_state *v;    /* one per configured tenant */
	struct str_index by_id;    /* tenant id (case folded) -> index in v */
};

struct report_lua *report_lua_new(const struct config *cfg)
{
	struct report_lua *rl = xcalloc(1, sizeof *rl);
	rl->cfg = cfg;
	rl->v = xcalloc(cfg->ntenants ? cfg->ntenants : 1, sizeof *rl->v);
	rl->by_id.fold = true;
	for (size_t i = 0; i < cfg->ntenants; i++) {
		rl->v[i].t = &cfg->tenants[i];
		if (cfg->tenants[i].id) str_index_put(&rl->by_id, cfg->tenants[i].id, i);
	}
	return rl;
}

void report_lua_free(struct report_lua *rl)
{
	if (!rl) return;
	for (size_t i = 0; i < rl->cfg->ntenants; i++) {
		script_free(rl->v[i].s);
		free(rl->v[i].error);
	}
	free(rl->v);
	str_index_free(&rl->by_id);
	free(rl);
}

/* The tenant's loaded state, or NULL (no policy, or it failed: *err). */
static struct script *tenant_script(struct report_lua *rl, const char *tenant_id, struct err *err, bool *none)
{
	*none = false;
	size_t k = str_index_get(&rl->by_id, tenant_id);
	struct tenant_state *ts = k == STR_INDEX_NONE ? NULL : &rl->v[k];
	if (!ts || !ts->t->policy) {
		*none = true;
		return NULL;
	}
	if (!ts->tried) {
		ts->tried = true;
		struct err e = {{0}};
		struct script_limits lim = { .instructions = rl->cfg->limits.instructions, .seconds = rl->cfg->limits.seconds,
		                             .memory_bytes = rl->cfg->limits.memory_bytes };
		struct script_tenant st = { .id = ts->t->id, .name = ts->t->name,
		                            .syncro_customer_id = ts->t->syncro_customer_id };
		if (script_new(&lim, &ts->s, &e) != 0 || script_policy_load(ts->s, ts->t->policy, &e) != 0 ||
		    script_set_tenant(ts->s, &st, &e) != 0) {
			ts->error = xstrdup(e.msg);
			script_free(ts->s);
			ts->s = NULL;
		}
	}
	if (ts->error) err_set(err, "%s", ts->error);
	return ts->s;
}

/* Calls fn of the tenant's policy with args. Returns 0 (*result set, NULL
 * for nil), 1 when there is nothing to call, -1 with err. */
static int call_hook(struct report_lua *rl, const char *tenant_id, const char *fn, unsigned bit,
                     const cJSON *const *args, size_t nargs, cJSON **result, struct err *err)
{
	*result = NULL;
	bool none;
	struct script *s = tenant_script(rl, tenant_id, err, &none);
	if (none) return 1;
	if (!s) return -1;
	const struct policy_info *pi = script_policy_info(s);
	if (!pi || !(pi->functions & bit)) return 1;
	return script_policy_call(s, fn, args, nargs, result, err) == 0 ? 0 : -1;
}

static const char *const shape_keys[] = { "name", "hide", "billable", "unit_price", "group", NULL };

int report_shape_from_json(const cJSON *v, struct report_sku_shape *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	if (!v || cJSON_IsNull(v)) return 0;
	if (!cJSON_IsObject(v)) return err_set(err, "license() must return a table or nil");
	const cJSON *it;
	cJSON_ArrayForEach(it, v) {
		const char *k = it->string;
		if (strcmp(k, "name") == 0 || strcmp(k, "group") == 0) {
			if (!cJSON_IsString(it)) goto bad_type;
			char **dst = k[0] == 'n' ? &out->name : &out->group;
			free(*dst);
			*dst = xstrdup(it->valuestring);
		} else if (strcmp(k, "hide") == 0 || strcmp(k, "billable") == 0) {
			if (!cJSON_IsBool(it)) goto bad_type;
			if (k[0] == 'h') {
				out->hide = cJSON_IsTrue(it);
			} else {
				out->billable_set = true;
				out->billable = cJSON_IsTrue(it);
			}
		} else if (strcmp(k, "unit_price") == 0) {
			if (!cJSON_IsNumber(it) || it->valuedouble < 0) {
				report_sku_shape_free(out);
				return err_set(err, "license(): unit_price must be a number >= 0");
			}
			out->unit_price_set = true;
			out->unit_price = it->valuedouble;
		} else {
			const char *near = config_nearest(k, shape_keys);
			report_sku_shape_free(out);
			return err_set(err, "license() returned an unknown key '%s'%s%s%s", k, near ? " (did you mean '" : "",
			               near ? near : "", near ? "'?)" : "");
		}
		continue;
	bad_type:
		report_sku_shape_free(out);
		return err_set(err, "license(): '%s' must be a %s", k,
		               strcmp(k, "name") == 0 || strcmp(k, "group") == 0 ? "string" : "boolean");
	}
	return 0;
}

int report_alert_from_json(const cJSON *v, char **alert, struct err *err)
{
	*alert = NULL;
	if (!v || cJSON_IsNull(v)) return 0;
	if (!cJSON_IsObject(v)) return err_set(err, "secure_score() must return { alert = \"...\" } or nil");
	const cJSON *it;
	cJSON_ArrayForEach(it, v) {
		if (strcmp(it->string, "alert") != 0)
			return err_set(err, "secure_score() returned an unknown key '%s' (expected 'alert')", it->string);
		if (cJSON_IsFalse(it) || cJSON_IsNull(it)) continue;
		if (!cJSON_IsString(it)) return err_set(err, "secure_score(): 'alert' must be a string");
		if (*it->valuestring) *alert = xstrdup(it->valuestring);
	}
	return 0;
}

static int hook_license(void *ctx, const char *tenant_id, const struct report_sku_in *in,
                        struct report_sku_shape *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	cJSON *sku = cJSON_CreateObject();
	cJSON_AddStringToObject(sku, "sku_id", in->sku_id);
	if (in->part) cJSON_AddStringToObject(sku, "part", in->part);
	if (in->name) cJSON_AddStringToObject(sku, "name", in->name);
	if (in->status) cJSON_AddStringToObject(sku, "status", in->status);
	cJSON_AddNumberToObject(sku, "purchased", (double)in->purchased);
	cJSON_AddNumberToObject(sku, "assigned", (double)in->assigned);
	cJSON_AddNumberToObject(sku, "available", (double)in->available);
	cJSON_AddNumberToObject(sku, "suspended", (double)in->suspended);
	cJSON_AddNumberToObject(sku, "warning", (double)in->warning);
	cJSON_AddNumberToObject(sku, "locked_out", (double)in->locked_out);
	const cJSON *args[1] = { sku };
	cJSON *res = NULL;
	int rc = call_hook(ctx, tenant_id, "license", POLICY_FN_LICENSE, args, 1, &res, err);
	if (rc == 0 && report_shape_from_json(res, out, err) != 0) rc = -1;
	cJSON_Delete(sku);
	cJSON_Delete(res);
	return rc;
}

static cJSON *score_json(const struct report_score_point *p)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "date", p->date);
	cJSON_AddNumberToObject(j, "current", p->current);
	cJSON_AddNumberToObject(j, "max", p->max);
	cJSON_AddNumberToObject(j, "percent", p->percent);
	return j;
}

static int hook_secure_score(void *ctx, const char *tenant_id, const struct report_score_point *s,
                             const struct report_score_point *prev, char **alert, struct err *err)
{
	*alert = NULL;
	cJSON *a = score_json(s), *b = prev ? score_json(prev) : NULL;   /* NULL: nil */
	const cJSON *args[2] = { a, b };
	cJSON *res = NULL;
	int rc = call_hook(ctx, tenant_id, "secure_score", POLICY_FN_SECURE_SCORE, args, 2, &res, err);
	if (rc == 0 && report_alert_from_json(res, alert, err) != 0) rc = -1;
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(res);
	return rc;
}

void report_lua_hooks(struct report_lua *rl, struct report_hooks *hooks)
{
	hooks->license = hook_license;
	hooks->secure_score = hook_secure_score;
	hooks->ctx = rl;
}
