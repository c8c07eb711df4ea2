/* billing_hook — the policy's bill(sku, t) hook, as the billing runs call
 * it (implemented in src/script/lua_bill.c, the scripting layer).
 *
 * bill = function(sku, t) return { product_id=, name=, unit_price=,
 * quantity=, taxable= } | nil | false end
 *   sku = { sku_id, part, name, purchased, assigned, available,
 *           peak_assigned, peak_purchased, days, period }   (billing.h)
 *   t   = the tenant table every policy function gets (script.h)
 * nil = no price (listed as unbilled when seats are assigned); false =
 * deliberately not billed; a table = one item (billing_item_from_json).
 *
 * The call runs in the policy sandbox with its instruction budget and
 * memory cap, through script_policy_table (script.h): no wrapper policy,
 * no temporary file. Errors name bill() and the policy's file:line:
 *   policy error in bill(): policies/acme.lua:7: attempt to index a nil value ...
 *   policies/acme.lua:3: bill() must return a table, nil or false, got string
 *   policies/acme.lua:3: bill() for SPE_E3: unknown key 'qty' ... */
#ifndef ENTRASYNC_BILLING_HOOK_H
#define ENTRASYNC_BILLING_HOOK_H

#include "billing/billing.h"
#include "script/script.h"
#include "util/util.h"

struct billing_hook;   /* one sandboxed state holding a policy's bill() */

/* Loads the policy at path (validated like any policy) and prepares its
 * bill(). A policy without bill fails with "PATH: the policy has no bill
 * function". limits may be NULL (defaults). *out: billing_hook_free. */
int billing_hook_open(const char *path, const struct script_limits *limits, struct billing_hook **out,
                      struct err *err);
void billing_hook_free(struct billing_hook *h);
/* The policy file the hook was loaded from. */
const char *billing_hook_path(const struct billing_hook *h);

/* Sets the tenant table t for the next calls. */
int billing_hook_set_tenant(struct billing_hook *h, const struct script_tenant *t, struct err *err);

/* Calls bill(sku, t) for SKU u of period p. *v gets the verdict; when it
 * is BILLING_BILLED, *item is filled (billing_item_free). Policy errors,
 * budget or memory overruns and invalid tables fail with the message. */
int billing_hook_call(struct billing_hook *h, const struct billing_usage *u, const struct billing_period *p,
                      enum billing_verdict *v, struct billing_item *item, struct err *err);

#endif
