/* billing_run — what every billing run shares (billing_run.h,
 * billing_internal.h): the context's caches (one hook per policy file,
 * catalog products), planning a tenant's period, and the one write path. */
#include "billing/billing_internal.h"

#include <stdlib.h>
#include <string.h>

#include "billing/billing_hook.h"
#include "util/log.h"
#include "store/store_tenants.h"
#include "syncro/syncro.h"

struct cached_hook {
	char *path;
	struct billing_hook *h;            /* NULL: it failed to load (error kept) */
	char *error;
};

struct cached_product {
	long long id;
	enum syncro_result rc;
	struct syncro_product p;
	char *error;
};

struct cached_schedule_names {
	long long customer;
	long long *ids;
	char **names;
	size_t n;
	bool unread;                       /* the list could not be read: no name resolves */
};

struct billing_cache {
	struct cached_hook *hooks;
	size_t nhooks;
	struct cached_product *products;
	size_t nproducts;
	struct cached_schedule_names *scheds;
	size_t nscheds;
};

void billing_ctx_release(struct billing_ctx *c)
{
	struct billing_cache *k = c->cache;
	if (!k) return;
	for (size_t i = 0; i < k->nhooks; i++) {
		free(k->hooks[i].path);
		free(k->hooks[i].error);
		billing_hook_free(k->hooks[i].h);
	}
	for (size_t i = 0; i < k->nproducts; i++) {
		syncro_product_free(&k->products[i].p);
		free(k->products[i].error);
	}
	for (size_t i = 0; i < k->nscheds; i++) {
		for (size_t j = 0; j < k->scheds[i].n; j++) free(k->scheds[i].names[j]);
		free(k->scheds[i].names);
		free(k->scheds[i].ids);
	}
	free(k->scheds);
	free(k->hooks);
	free(k->products);
	free(k);
	c->cache = NULL;
}

static struct billing_cache *cache_of(struct billing_ctx *c)
{
	if (!c->cache) c->cache = xcalloc(1, sizeof *c->cache);
	return c->cache;
}

/* The hook of policy path, loaded once per run (a failure is kept too). */
static struct billing_hook *hook_for(struct billing_ctx *c, const char *path, struct err *err)
{
	struct billing_cache *k = cache_of(c);
	for (size_t i = 0; i < k->nhooks; i++) {
		if (strcmp(k->hooks[i].path, path) != 0) continue;
		if (!k->hooks[i].h) err_set(err, "%s", k->hooks[i].error);
		return k->hooks[i].h;
	}
	k->hooks = xrealloc(k->hooks, (k->nhooks + 1) * sizeof *k->hooks);
	struct cached_hook *ch = &k->hooks[k->nhooks++];
	memset(ch, 0, sizeof *ch);
	ch->path = xstrdup(path);
	if (billing_hook_open(path, c->limits, &ch->h, err) != 0) ch->error = xstrdup(err->msg);
	return ch->h;
}

/* The catalog product id, read once per run. */
static const struct cached_product *product_for(struct billing_ctx *c, long long id)
{
	struct billing_cache *k = cache_of(c);
	for (size_t i = 0; i < k->nproducts; i++)
		if (k->products[i].id == id) return &k->products[i];
	k->products = xrealloc(k->products, (k->nproducts + 1) * sizeof *k->products);
	struct cached_product *cp = &k->products[k->nproducts++];
	memset(cp, 0, sizeof *cp);
	cp->id = id;
	struct err e = {{0}};
	cp->rc = syncro_product_get(c->sy, id, &cp->p, &e);
	if (cp->rc != SYNCRO_OK) cp->error = xstrdup(e.msg);
	return cp;
}

/* The schedule names of customer known to the run, or NULL. */
static struct cached_schedule_names *schedule_names(struct billing_ctx *c, long long customer)
{
	struct billing_cache *k = cache_of(c);
	for (size_t i = 0; i < k->nscheds; i++)
		if (k->scheds[i].customer == customer) return &k->scheds[i];
	return NULL;
}

void billing_schedules_note(struct billing_ctx *c, long long customer, const struct syncro_schedule_list *l)
{
	if (schedule_names(c, customer)) return;
	struct billing_cache *k = cache_of(c);
	k->scheds = xrealloc(k->scheds, (k->nscheds + 1) * sizeof *k->scheds);
	struct cached_schedule_names *cs = &k->scheds[k->nscheds++];
	memset(cs, 0, sizeof *cs);
	cs->customer = customer;
	if (!l) {
		cs->unread = true;
		return;
	}
	cs->ids = xcalloc(l->n + 1, sizeof *cs->ids);
	cs->names = xcalloc(l->n + 1, sizeof *cs->names);
	for (size_t i = 0; i < l->n; i++) {
		cs->ids[i] = l->items[i].id;
		cs->names[i] = xstrdup(l->items[i].name ? l->items[i].name : "");
	}
	cs->n = l->n;
}

long long billing_schedule_named(struct billing_ctx *c, long long customer, const char *name)
{
	struct cached_schedule_names *cs = schedule_names(c, customer);
	if (!cs) {
		struct syncro_schedule_list all;
		struct err e = {{0}};
		bool read = syncro_schedules_list(c->sy, customer, &all, &e) == SYNCRO_OK;
		if (!read) log_warn("bill", "customer %lld: its schedules could not be listed to compare them: %s", customer,
		                    e.msg);
		billing_schedules_note(c, customer, read ? &all : NULL);
		syncro_schedule_list_free(&all);
		cs = schedule_names(c, customer);
	}
	long long id = 0;
	size_t hits = 0;
	for (size_t i = 0; i < cs->n; i++)
		if (str_ieq(cs->names[i], name) && !hits++) id = cs->ids[i];
	return hits == 1 ? id : 0;
}

/* Names and prices product lines from the catalog. */
static int fill_catalog(struct billing_ctx *c, struct billing_plan *p, struct err *err)
{
	for (size_t i = 0; i < p->nlines; i++) {
		struct billing_line *l = &p->lines[i];
		if (!l->product_id) continue;
		const struct cached_product *cp = product_for(c, l->product_id);
		if (cp->rc == SYNCRO_NOT_FOUND)
			return err_set(err, "bill() bills product %lld (%s), which is not in Syncro's product catalog",
			               l->product_id, l->skus);
		if (cp->rc != SYNCRO_OK) return err_set(err, "%s", cp->error);
		free(l->catalog_name);
		l->catalog_name = cp->p.name ? xstrdup(cp->p.name) : NULL;
		if (!l->has_price) {
			l->has_price = true;
			l->unit_cents = cp->p.retail_cents;
			l->price_from_catalog = true;
		}
	}
	return 0;
}

struct plan_walk {
	struct billing_ctx *c;
	struct billing_hook *h;
	const struct billing_period *p;
	struct billing_plan *plan;
	struct err *err;
	bool failed;
};

static int plan_one_sku(const struct billing_usage *u, void *ud)
{
	struct plan_walk *w = ud;
	enum billing_verdict v;
	struct billing_item it;
	if (billing_hook_call(w->h, u, w->p, &v, &it, w->err) != 0 ||
	    billing_plan_add(w->plan, u, v, &it, w->err) != 0) {
		billing_item_free(&it);
		w->failed = true;
		return 1;
	}
	/* seats the customer cannot use any more, billed all the same: said, so
	 * that it is a decision (bill() sees sku.suspended and sku.locked_out) */
	if (v == BILLING_BILLED && it.quantity > 0 && (u->suspended > 0 || u->locked_out > 0))
		log_warn("bill", "%s: %s: billed %lld while Microsoft has %lld seat%s suspended and %lld locked out%s%s%s "
		         "(bill() can leave them out: sku.suspended, sku.locked_out)", w->plan->tenant_id,
		         u->part ? u->part : u->sku_id, it.quantity, u->suspended, u->suspended == 1 ? "" : "s",
		         u->locked_out, u->capability_status ? " (subscription " : "",
		         u->capability_status ? u->capability_status : "", u->capability_status ? ")" : "");
	billing_item_free(&it);
	return 0;
}

int billing_plan_tenant(struct billing_ctx *c, const struct billing_tenant *t, const struct billing_period *p,
                        struct billing_plan *out, bool *has_data, struct err *err)
{
	billing_plan_init(out, t->id, p);
	if (has_data) *has_data = false;
	if (!t->policy) return err_set(err, "no policy: bill() lives in the tenant's policy");
	struct billing_hook *h = hook_for(c, t->policy, err);
	if (!h) return -1;
	struct script_tenant st = { .id = t->id, .name = t->name, .default_domain = t->default_domain,
	                            .syncro_customer_id = t->customer_id };
	if (billing_hook_set_tenant(h, &st, err) != 0) return -1;
	struct plan_walk w = { c, h, p, out, err, false };
	char last[16];
	int rc = store_billing_usage_each(c->sb, t->id, p->first, p->last, plan_one_sku, &w, last, err);
	if (rc < 0 || w.failed) return -1;
	if (has_data) *has_data = last[0] != '\0';
	/* a month whose snapshots stop early (pulls stopped): billed from the
	 * last day there is, and said so (today's month is still going) */
	char today[16];
	if (last[0] && strcmp(last, p->last) < 0 && strcmp(billing_today(c, today), p->last) > 0)
		log_warn("bill", "%s: the licence snapshots of %s stop at %s (of %d days): the month is billed from that "
		         "day; are the daily pulls running?", t->name ? t->name : t->id, p->id, last, p->days);
	if (c->sy && fill_catalog(c, out, err) != 0) return -1;
	return 0;
}

/* ---------------------------------------------------------------- the write path */

void billing_point(struct billing_ctx *c, enum billing_point at, const char *action)
{
	if (c->hook) c->hook(c->hook_ud, at, action);
}

int billing_write_begin(struct billing_ctx *c, struct billing_write *w, struct err *err)
{
	if (store_billing_intent_add(c->sb, c->run_id, w->tenant_id, w->period, w->action, w->target, w->payload,
	                             &w->intent_id, err) != 0)
		return -1;
	billing_point(c, BILLING_BEFORE_SEND, w->action);
	return 0;
}

void billing_write_sent(struct billing_ctx *c, const struct billing_write *w)
{
	billing_point(c, BILLING_AFTER_SEND, w->action);
}

int billing_write_finish(struct billing_ctx *c, const struct billing_write *w, const char *state, long long result_id,
                         const char *error, const struct store_audit *a, int (*more)(void *ud, struct err *err),
                         void *ud, struct err *err)
{
	if (store_billing_begin(c->sb, err) != 0) return -1;
	if (store_billing_intent_finish(c->sb, w->intent_id, state, result_id, error, err) != 0 ||
	    (a && store_billing_audit(c->sb, a, err) != 0) || (more && more(ud, err) != 0) ||
	    store_billing_commit(c->sb, err) != 0) {
		store_billing_rollback(c->sb);
		return -1;
	}
	return 0;
}

double billing_now(const struct billing_ctx *c)
{
	return c->now > 0 ? c->now : time_now();
}

const char *billing_today(const struct billing_ctx *c, char *buf)
{
	char iso[32];
	time_iso8601(billing_now(c), iso, sizeof iso);
	memcpy(buf, iso, 10);
	buf[10] = '\0';
	return buf;
}

/* ---------------------------------------------------------------- tenants */

static const char *tenants_own(struct billing_tenants *t, const char *s)
{
	t->owned = xrealloc(t->owned, (t->nowned + 1) * sizeof *t->owned);
	return t->owned[t->nowned++] = xstrdup(s);
}

/* The Syncro customer of a tenant: the config's id, else the one the sync
 * stored, else found by the config's business name (a Syncro read). */
static long long tenants_customer(struct syncro_client *sc, const struct config_tenant *ct,
                                  const struct store_tenant *row)
{
	if (ct->syncro_customer_id) return ct->syncro_customer_id;
	if (row && row->syncro_customer_id) return row->syncro_customer_id;
	if (!ct->syncro_customer || !sc) return 0;
	struct syncro_customer cust;
	struct err e = {{0}};
	long long id = syncro_customer_find(sc, ct->syncro_customer, &cust, &e) == SYNCRO_OK ? cust.id : 0;
	if (!id) log_warn("bill", "%s: %s", ct->id, e.msg);
	syncro_customer_free(&cust);
	return id;
}

/* The schedule of config tenant ct: override (--schedule) when not NULL,
 * else its billing_schedule, else billing.schedule unless it said
 * billing_schedule = false (NULL: none). *from_default (optional): it is
 * billing.schedule's. */
static const char *tenant_schedule(const struct config *cfg, const struct config_tenant *ct, const char *override,
                                   bool *from_default)
{
	const char *s = override ? override : ct->billing_schedule ? ct->billing_schedule
	              : ct->billing_schedule_off ? NULL : cfg->billing.schedule;
	if (from_default) *from_default = s && !override && !ct->billing_schedule;
	return s;
}

/* A tenant of the config the run does not bill: its customer as far as
 * the config and the store know it (no Syncro read; 0 = not known) and
 * its schedule. Returns -1 on a store error. */
static int other_tenant_schedule(const struct config *cfg, struct store *st, const struct config_tenant *ct,
                                 long long *customer, const char **schedule, struct err *err)
{
	*schedule = tenant_schedule(cfg, ct, NULL, NULL);
	*customer = ct->syncro_customer_id;
	if (*customer || !*schedule) return 0;
	struct store_tenant row;
	int got = store_tenant_get(st, ct->id, &row, err);
	if (got < 0) return -1;
	if (got == 0) {
		*customer = row.syncro_customer_id;
		store_tenant_free(&row);
	}
	return 0;
}

/* Adds a schedule peer to t (see billing_tenants_build). */
static void add_peer(struct billing_tenant *t, const char *tenant_id, const char *schedule)
{
	t->peers = xrealloc(t->peers, (t->npeers + 1) * sizeof *t->peers);
	t->peers[t->npeers++] = (struct billing_schedule_peer){ tenant_id, schedule };
}

/* Sets the schedule twin and peers of each tenant built (see
 * billing_tenants_build); built[i]: the index in out->v of config tenant
 * i, or -1. */
static int tenants_schedule_twins(const struct config *cfg, struct store *st, const long long *built,
                                  struct billing_tenants *out, struct err *err)
{
	for (size_t i = 0; i < cfg->ntenants; i++) {
		if (built[i] < 0) continue;
		struct billing_tenant *t = &out->v[built[i]];
		if (!t->schedule || !*t->schedule || !t->customer_id || t->twin) continue;
		for (size_t j = 0; j < cfg->ntenants && !t->schedule_twin; j++) {
			if (j == i) continue;
			long long customer;
			const char *schedule;
			if (built[j] >= 0) {
				customer = out->v[built[j]].customer_id;
				schedule = out->v[built[j]].schedule;
			} else if (other_tenant_schedule(cfg, st, &cfg->tenants[j], &customer, &schedule, err) != 0) {
				return -1;
			}
			if (customer != t->customer_id || !schedule) continue;
			if (str_ieq(schedule, t->schedule)) t->schedule_twin = cfg->tenants[j].id;
			else add_peer(t, cfg->tenants[j].id, schedule);
		}
	}
	return 0;
}

int billing_tenants_build(const struct config *cfg, struct store *st, struct syncro_client *sc, const bool *sel,
                          const char *schedule, struct billing_tenants *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	out->v = xcalloc(cfg->ntenants + 1, sizeof *out->v);
	size_t *twin = xcalloc(cfg->ntenants + 1, sizeof *twin);
	long long *built = xcalloc(cfg->ntenants + 1, sizeof *built);
	int rc = store_tenant_twins(st, cfg->tenants, cfg->ntenants, twin, err);
	for (size_t i = 0; rc == 0 && i < cfg->ntenants; i++) {
		const struct config_tenant *ct = &cfg->tenants[i];
		built[i] = -1;
		if (sel && !sel[i]) continue;
		struct store_tenant row;
		int got = store_tenant_get(st, ct->id, &row, err);
		if (got < 0) {
			rc = -1;
			break;
		}
		built[i] = (long long)out->n;
		struct billing_tenant *t = &out->v[out->n++];
		t->id = ct->id;
		t->twin = twin[i] < cfg->ntenants ? cfg->tenants[twin[i]].id : NULL;
		t->name = ct->name ? ct->name : got == 0 && row.name ? tenants_own(out, row.name) : NULL;
		t->default_domain = got == 0 && row.default_domain ? tenants_own(out, row.default_domain) : NULL;
		t->customer_id = tenants_customer(sc, ct, got == 0 ? &row : NULL);
		t->policy = ct->policy;
		t->schedule = tenant_schedule(cfg, ct, schedule, &t->schedule_default);
		t->schedule_override = schedule != NULL;
		t->invoiced = !t->schedule && ct->billing_schedule_off;
		if (got == 0) store_tenant_free(&row);
	}
	if (rc == 0) rc = tenants_schedule_twins(cfg, st, built, out, err);
	free(built);
	free(twin);
	return rc;
}

void billing_tenants_free(struct billing_tenants *t)
{
	for (size_t i = 0; i < t->n; i++) free(t->v[i].peers);
	for (size_t i = 0; i < t->nowned; i++) free(t->owned[i]);
	free(t->owned);
	free(t->v);
	memset(t, 0, sizeof *t);
}
