/* lua_bill — the policy's bill(sku, t) hook (billing_hook.h), called in the
 * policy sandbox.
 *
 * The policy is loaded into its own sandboxed state (script_policy_load,
 * validated like any policy) and bill runs through script_policy_table: one
 * protected call of the scripting layer with the sku table, the tenant
 * table, a fresh instruction budget, the state's memory cap, and errors
 * naming bill() and the policy's file:line. The table it answers is checked
 * by billing_item_from_json, whose messages get the same file:line. This
 * file includes no lua.h. */
#include "billing/billing_hook.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

struct billing_hook {
	struct script *s;
	char *path;
};

int billing_hook_open(const char *path, const struct script_limits *limits, struct billing_hook **out,
                      struct err *err)
{
	struct billing_hook *h = xcalloc(1, sizeof *h);
	*out = NULL;
	h->path = xstrdup(path);
	if (script_new(limits, &h->s, err) != 0 || script_policy_load(h->s, path, err) != 0) goto fail;
	if (!(script_policy_info(h->s)->functions & POLICY_FN_BILL)) {
		err_set(err, "%s: the policy has no bill function (bill = function(sku, t) ... end)", path);
		goto fail;
	}
	*out = h;
	return 0;
fail:
	billing_hook_free(h);
	return -1;
}

void billing_hook_free(struct billing_hook *h)
{
	if (!h) return;
	script_free(h->s);
	free(h->path);
	free(h);
}

const char *billing_hook_path(const struct billing_hook *h)
{
	return h->path;
}

int billing_hook_set_tenant(struct billing_hook *h, const struct script_tenant *t, struct err *err)
{
	return script_set_tenant(h->s, t, err);
}

int billing_hook_call(struct billing_hook *h, const struct billing_usage *u, const struct billing_period *p,
                      enum billing_verdict *v, struct billing_item *item, struct err *err)
{
	char where[300];
	bool declined = false;
	cJSON *table = NULL;
	char *text = NULL;
	int rc = -1;
	memset(item, 0, sizeof *item);
	*v = BILLING_NOT_BILLED;
	cJSON *arg = billing_usage_cjson(u, p);
	const cJSON *sku = cJSON_GetObjectItemCaseSensitive(arg, "sku");
	if (script_policy_table(h->s, "bill", &sku, 1, &table, &declined, where, sizeof where, err) != 0) goto out;
	if (!table) {
		*v = declined ? BILLING_FREE : BILLING_NOT_BILLED;
		rc = 0;
		goto out;
	}
	text = cJSON_PrintUnformatted(table);
	if (!text) {
		err_set(err, "%s: bill(): out of memory", where);
		goto out;
	}
	if (billing_item_from_json(text, u, item, err) != 0) {
		err_prefix(err, "%s", where);
		goto out;
	}
	*v = BILLING_BILLED;
	rc = 0;
out:
	free(text);
	cJSON_Delete(table);
	cJSON_Delete(arg);
	return rc;
}
