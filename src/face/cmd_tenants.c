/* cmd_tenants — `entrasync tenants`: the configured tenants with their last
 * pull (from the store), then those only the store still knows;
 * `entrasync tenants discover` (the config may list no tenant yet): the
 * CSP partner tenant's customers (/contracts), whether each is mapped in
 * the config, whether the app can get a token there and read with it, the
 * configured tenants that are no customers, and ready-to-paste config
 * entries (valid Lua whatever the names hold) for the ones not mapped yet,
 * with the Syncro customer suggested by its contacts' e-mail domains (else
 * by name, as the sync matches it);
 * `entrasync tenants forget TENANT`: a customer no longer managed, out of
 * the config, deleted from the store (store_tenants.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "face/cmd_ops.h"
#include "face/commands.h"
#include "util/config.h"
#include "graph/graph.h"
#include "http/http.h"
#include "util/log.h"
#include "store/store.h"
#include "store/store_tenants.h"
#include "syncro/syncro.h"

/* ---- entrasync tenants ------------------------------------------------------- */

struct listing {
	const struct config *cfg;
	struct store *st;
};

/* A tenant the store holds and the config no longer names: one line, and
 * the way to forget it. */
static int list_unconfigured(const struct store_tenant *t, void *ud)
{
	const struct listing *l = ud;
	if (ops_tenant_row_configured(l->cfg, l->st, t->id)) return 0;
	char *name = str_term_safe(t->name ? t->name : "-");   /* Microsoft's organization name: the customer's text */
	printf("%-38s %-28s %-20s %-8s %s\n", t->id, name, t->last_pull_at ? t->last_pull_at : "never", "-", "-");
	free(name);
	printf("  not in the config any more: 'entrasync tenants forget %s' deletes what the database keeps of it\n",
	       t->id);
	return 0;
}

static int list_tenants(const struct config *cfg)
{
	struct store *st = NULL;
	struct err err;
	bool have_db = access(cfg->database, F_OK) == 0;
	if (have_db && store_open(cfg->database, &st, &err) != 0) {
		fprintf(stderr, "entrasync tenants: %s\n", err.msg);
		return EXIT_NOSTART;
	}
	printf("%-38s %-28s %-20s %-8s %s\n", "TENANT", "NAME", "LAST PULL", "STATUS", "USERS");
	for (size_t i = 0; i < cfg->ntenants; i++) {
		const struct config_tenant *t = &cfg->tenants[i];
		struct store_tenant row = { 0 };
		long long users = 0;
		int found = st ? store_tenant_get(st, t->id, &row, &err) : STORE_NOTFOUND;
		if (found < 0) {
			fprintf(stderr, "entrasync tenants: %s\n", err.msg);
			found = STORE_NOTFOUND;
		}
		/* named another way than the store's row (its GUID, a verified domain): that row's, until renamed */
		char *known_as = found == STORE_NOTFOUND && st ? ops_tenant_row_of(cfg, st, t) : NULL;
		if (known_as && store_tenant_get(st, known_as, &row, &err) == 0) found = 0;
		if (found == 0) store_user_count(st, known_as ? known_as : t->id, STORE_USERS_PRESENT, &users, &err);
		/* the store's name is Microsoft's organization name: the customer's text */
		char *name = str_term_safe(t->name ? t->name : (found == 0 && row.name ? row.name : "-"));
		printf("%-38s %-28s %-20s %-8s %lld\n", t->id, name,
		       found == 0 && row.last_pull_at ? row.last_pull_at : "never",
		       found == 0 && row.last_status ? row.last_status : "-", users);
		free(name);
		if (found == 0 && row.last_error && row.last_status && strcmp(row.last_status, "ok") != 0) {
			char *error = str_term_message(row.last_error);
			printf("  last error: %s\n", error);
			free(error);
		}
		if (known_as)
			printf("  known to the database as %s: the next pull or sync renames its rows to %s\n", known_as,
			       t->id);
		free(known_as);
		store_tenant_free(&row);
	}
	struct listing l = { cfg, st };
	if (st && store_tenant_each(st, list_unconfigured, &l, &err) != 0)
		fprintf(stderr, "entrasync tenants: %s\n", err.msg);
	store_close(st);
	return EXIT_OK;
}

/* ---- entrasync tenants discover ------------------------------------------------- */

struct customer {
	char *tenant_id;
	char *domain;
	char *name;
	const struct config_tenant *mapped;
	struct graph_tenant *gt;
	char **domains;          /* verified domains from /organization (owned), may be empty */
	size_t ndomains;
	char *org_error;         /* why /organization could not be read with a token (owned), or NULL */
	bool org_denied;         /* that was a 401/403: /users is tried (users_done) */
	bool users_readable;     /* the users can be read all the same (User.Read.All without the others) */
};

static void customer_free(struct customer *c)
{
	free(c->tenant_id);
	free(c->domain);
	free(c->name);
	for (size_t k = 0; k < c->ndomains; k++) free(c->domains[k]);
	free(c->domains);
	free(c->org_error);
}

struct discovery {
	struct customer *v;
	size_t n, cap;
	struct graph_tenant *partner;
	struct customer self;    /* the partner tenant itself: csp.partner_tenant as .domain, its id and verified
	                          * domains once its /organization is read (a config may list it: the MSP's staff) */
	struct err err;
	bool failed;
};

static void contracts_fetch(struct discovery *d, const char *url);

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void contracts_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct discovery *d = ctx;
	if (!r->ok || !r->json) {
		d->failed = true;
		d->err = r->err;
		if (r->ok) err_set(&d->err, "/contracts returned an empty body");
		return;
	}
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(r->json, "value");
	for (const cJSON *c = cJSON_IsArray(value) ? value->child : NULL; c; c = c->next) {
		const char *id = jstr(c, "customerId");
		if (!id) continue;
		if (d->n == d->cap) {
			d->cap = d->cap ? d->cap * 2 : 32;
			d->v = xrealloc(d->v, d->cap * sizeof *d->v);
		}
		const char *dom = jstr(c, "defaultDomainName"), *name = jstr(c, "displayName");
		d->v[d->n++] = (struct customer){ .tenant_id = xstrdup(id), .domain = dom ? xstrdup(dom) : NULL,
		                                  .name = name ? xstrdup(name) : NULL };
	}
	const char *next = jstr(r->json, "@odata.nextLink");
	if (next) contracts_fetch(d, next);
	(void)t;
}

static void contracts_fetch(struct discovery *d, const char *url)
{
	struct err err;
	if (graph_submit(d->partner, &(struct graph_request){ .url = url, .on_done = contracts_done, .ctx = d },
	                 &err) != 0) {
		d->failed = true;
		d->err = err;
	}
}

/* ---- Syncro suggestion by contact e-mail domain ------------------------------ */

/* One (domain, customer) pair with how many of the customer's contacts have
 * an e-mail address in that domain. */
struct domain_hit {
	char *domain;            /* lower case, owned */
	long long customer_id;
	size_t contacts;
};

/* What Syncro holds, read once: customer names and the domain → customer
 * counts. All strings owned; syncro_index_free. */
struct syncro_index {
	struct syncro_customer *customers;
	size_t ncustomers;
	struct domain_hit *hits;
	size_t nhits;
};

static void syncro_index_free(struct syncro_index *ix)
{
	for (size_t i = 0; i < ix->ncustomers; i++) syncro_customer_free(&ix->customers[i]);
	for (size_t i = 0; i < ix->nhits; i++) free(ix->hits[i].domain);
	free(ix->customers);
	free(ix->hits);
	memset(ix, 0, sizeof *ix);
}

/* Counts one contact's e-mail domain for its customer. */
static void syncro_index_add(struct syncro_index *ix, const char *email, long long customer_id)
{
	const char *at = email ? strrchr(email, '@') : NULL;
	if (!at || !at[1] || customer_id <= 0) return;
	char *dom = xstrdup(at + 1);
	for (char *p = dom; *p; p++)
		if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
	for (size_t i = 0; i < ix->nhits; i++)
		if (ix->hits[i].customer_id == customer_id && strcmp(ix->hits[i].domain, dom) == 0) {
			ix->hits[i].contacts++;
			free(dom);
			return;
		}
	ix->hits = xrealloc(ix->hits, (ix->nhits + 1) * sizeof *ix->hits);
	ix->hits[ix->nhits++] = (struct domain_hit){ .domain = dom, .customer_id = customer_id, .contacts = 1 };
}

/* Reads every page of GET path ("/customers" or "/contacts") and hands each
 * item of the array called key to the index. Stops at meta.total_pages, or
 * at an empty page when there is no meta. */
static enum syncro_result syncro_index_read(struct syncro_client *sc, struct syncro_index *ix, const char *path,
                                            const char *key, struct err *err)
{
	for (int page = 1;; page++) {
		char url[96];
		cJSON *json = NULL;
		snprintf(url, sizeof url, "%s?page=%d", path, page);
		enum syncro_result r = syncro_request(sc, &(struct syncro_req){ .path = url }, &json, err);
		if (r != SYNCRO_OK) return r;
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(json, key);
		size_t n = 0;
		for (const cJSON *it = cJSON_IsArray(items) ? items->child : NULL; it; it = it->next, n++) {
			if (strcmp(key, "customers") == 0) {
				struct syncro_customer cu;
				if (syncro_customer_from_json(it, &cu, err) != 0) continue;
				ix->customers = xrealloc(ix->customers, (ix->ncustomers + 1) * sizeof *ix->customers);
				ix->customers[ix->ncustomers++] = cu;
			} else {
				const cJSON *cid = cJSON_GetObjectItemCaseSensitive(it, "customer_id");
				syncro_index_add(ix, jstr(it, "email"), cJSON_IsNumber(cid) ? (long long)cid->valuedouble : 0);
			}
		}
		const cJSON *meta = cJSON_GetObjectItemCaseSensitive(json, "meta");
		const cJSON *total = cJSON_GetObjectItemCaseSensitive(meta, "total_pages");
		bool last = cJSON_IsNumber(total) ? page >= total->valuedouble : n == 0;
		cJSON_Delete(json);
		if (last) return SYNCRO_OK;
	}
}

/* Lists Syncro's customers and all contacts once into ix. On failure, ix is
 * freed and err says why. */
static int syncro_index_load(const struct config *cfg, struct http_engine *engine, struct syncro_index *ix,
                             struct err *err)
{
	struct syncro_opts so;
	syncro_opts_from_config(&cfg->syncro, &so);
	so.max_attempts = 2;     /* a suggestion is not worth a long wait */
	if (so.timeout <= 0 || so.timeout > 15) so.timeout = 15;   /* syncro.timeout_seconds when shorter */
	struct syncro_client *sc = syncro_client_new(engine, &so, err);
	int rc = -1;
	if (!sc) goto out;
	if (syncro_index_read(sc, ix, "/customers", "customers", err) != SYNCRO_OK) goto out;
	if (syncro_index_read(sc, ix, "/contacts", "contacts", err) != SYNCRO_OK) goto out;
	rc = 0;
out:
	if (rc != 0) syncro_index_free(ix);
	syncro_client_free(sc);
	return rc;
}

static const struct syncro_customer *syncro_index_customer(const struct syncro_index *ix, long long id)
{
	for (size_t i = 0; i < ix->ncustomers; i++)
		if (ix->customers[i].id == id) return &ix->customers[i];
	return NULL;
}

/* A customer's name for a comment: its business name, else its full name. */
static const char *customer_label(const struct syncro_customer *sc)
{
	if (sc->business_name && *sc->business_name) return sc->business_name;
	if (sc->fullname && *sc->fullname) return sc->fullname;
	return "(no name)";
}

/* Is dom one of the tenant's domains (its default one, its verified ones)? */
static bool customer_has_domain(const struct customer *c, const char *dom)
{
	if (c->domain && str_ieq(c->domain, dom)) return true;
	for (size_t d = 0; d < c->ndomains; d++)
		if (str_ieq(c->domains[d], dom)) return true;
	return false;
}

/* One Syncro customer's contacts in the tenant's domains, all of them
 * summed, and which domains they were in. */
struct domain_score {
	const struct syncro_customer *customer;
	size_t contacts;
	struct buf domains;      /* ", " between */
};

/* The Syncro customer with the most contacts in the tenant's domains
 * (summed over them), or NULL. why gets "by contact domain(s) D (N
 * contacts)". Several with as many: the one of them with the tenant's
 * name (syncro_name_match) when just one has it, else NULL and tie says
 * which ("N customers have ..."). */
static const struct syncro_customer *suggest_by_domain(const struct syncro_index *ix, const struct customer *c,
                                                       struct buf *why, struct buf *tie)
{
	struct domain_score *v = NULL;
	size_t n = 0, best = 0, nbest = 0;
	for (size_t i = 0; i < ix->nhits; i++) {
		const struct domain_hit *h = &ix->hits[i];
		const struct syncro_customer *sc = syncro_index_customer(ix, h->customer_id);
		if (!sc || !customer_has_domain(c, h->domain)) continue;
		size_t k = 0;
		while (k < n && v[k].customer != sc) k++;
		if (k == n) {
			v = xrealloc(v, (n + 1) * sizeof *v);
			v[n++] = (struct domain_score){ .customer = sc };
		}
		v[k].contacts += h->contacts;
		buf_printf(&v[k].domains, "%s%s", v[k].domains.len ? ", " : "", h->domain);
	}
	for (size_t k = 0; k < n; k++)
		if (v[k].contacts > best) best = v[k].contacts;
	const struct domain_score *pick = NULL, *named = NULL;
	size_t nnamed = 0;
	for (size_t k = 0; k < n; k++) {
		if (v[k].contacts != best) continue;
		nbest++;
		pick = &v[k];
		if (syncro_name_match(v[k].customer->business_name, c->name) == SYNCRO_NAME_SAME) {
			named = &v[k];
			nnamed++;
		}
	}
	if (nbest > 1) pick = nnamed == 1 ? named : NULL;
	if (pick) {
		buf_printf(why, "by contact domain%s %s (%zu contact%s", strchr(pick->domains.data, ',') ? "s" : "",
		           pick->domains.data, pick->contacts, pick->contacts == 1 ? "" : "s");
		buf_adds(why, nbest > 1 ? "; as many as another customer's, and its name is the tenant's)" : ")");
	} else if (nbest > 1) {
		buf_printf(tie, "%zu customers have %zu contact%s each in its domains: ", nbest, best,
		           best == 1 ? "" : "s");
		size_t listed = 0;
		for (size_t k = 0; k < n; k++)
			if (v[k].contacts == best)
				buf_printf(tie, "%s%lld '%s'", listed++ ? ", " : "", v[k].customer->id,
				           customer_label(v[k].customer));
	}
	const struct syncro_customer *found = pick ? pick->customer : NULL;
	for (size_t k = 0; k < n; k++) buf_free(&v[k].domains);
	free(v);
	return found;
}

/* Is the customer configured, by its id, its default domain, or (once its
 * /organization was read) any of its verified domains? Else, when the
 * database is there (st), by the organization a pull stored for a config
 * entry: a tenant configured by a verified domain /organization could not
 * be read for (denied) is still recognised once pulled. */
static void customer_map(struct customer *c, const struct config *cfg, struct store *st)
{
	for (size_t k = 0; k < cfg->ntenants && !c->mapped; k++) {
		const char *id = cfg->tenants[k].id;
		if (str_ieq(id, c->tenant_id) || (c->domain && str_ieq(id, c->domain))) c->mapped = &cfg->tenants[k];
		for (size_t d = 0; d < c->ndomains && !c->mapped; d++)
			if (str_ieq(id, c->domains[d])) c->mapped = &cfg->tenants[k];
	}
	if (c->mapped || !st) return;
	char *row = NULL, *lower = xstrdup(c->tenant_id);
	int more = 0;
	struct err err;
	config_tenant_id_fold(lower);
	if (store_tenant_same_as(st, lower, &row, &more, &err) == 0) c->mapped = ops_tenant_configured(cfg, row);
	free(row);
	free(lower);
}

/* /organization of a customer tenant (or of the partner's: its id too,
 * when c has none yet): its verified domains. A failure
 * leaves the list empty (the default domain is still tried) and says why
 * in c->org_error: a token that reads nothing is no working access. */
static void organization_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct customer *c = ctx;
	(void)t;
	if (!r->ok || !r->json) {
		c->org_denied = r->status == 401 || r->status == 403;
		if (c->org_denied)
			c->org_error = xasprintf("/organization denied: missing %s", graph_permission_for("/organization"));
		else
			c->org_error = xasprintf("/organization failed: %s", r->ok ? "an empty answer" : r->err.msg);
		return;
	}
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(r->json, "value");
	const cJSON *org = cJSON_IsArray(value) ? value->child : NULL;
	const cJSON *doms = cJSON_GetObjectItemCaseSensitive(org, "verifiedDomains");
	if (!c->tenant_id && jstr(org, "id")) c->tenant_id = xstrdup(jstr(org, "id"));   /* the partner's (discovery.self) */
	for (const cJSON *d = cJSON_IsArray(doms) ? doms->child : NULL; d; d = d->next) {
		const char *name = jstr(d, "name");
		if (!name) continue;
		c->domains = xrealloc(c->domains, (c->ndomains + 1) * sizeof *c->domains);
		c->domains[c->ndomains++] = xstrdup(name);
	}
}

/* The answer to /users?$top=1, asked when /organization was denied: with
 * User.Read.All alone (what a contact sync needs) the tenant is usable,
 * its licences and Secure Score are not; without it nothing is readable. */
static void users_done(struct graph_tenant *t, struct graph_result *r, void *ctx)
{
	struct customer *c = ctx;
	(void)t;
	c->users_readable = r->ok;
	char *was = c->org_error;
	c->org_error = xasprintf(r->ok ? "%s: the users can be read (the sync works); its licences, Secure Score and "
	                                 "domains cannot until that is granted"
	                               : "%s, and /users is denied too: every Graph read will be: grant the app's "
	                                 "permissions, then consent again", was);
	free(was);
}

/* A Lua string literal: quotes and backslashes escaped, and every control
 * character (\n, \r, \t, else \ddd): the entry stays one line of valid Lua. */
static void lua_quote(const char *s, struct buf *out)
{
	buf_addc(out, '"');
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
		if (*p == '"' || *p == '\\') {
			buf_addc(out, '\\');
			buf_addc(out, (char)*p);
		} else if (*p == '\n') {
			buf_adds(out, "\\n");
		} else if (*p == '\r') {
			buf_adds(out, "\\r");
		} else if (*p == '\t') {
			buf_adds(out, "\\t");
		} else if (*p < 0x20 || *p == 0x7F) {
			buf_printf(out, "\\%03u", *p);
		} else {
			buf_addc(out, (char)*p);
		}
	}
	buf_addc(out, '"');
}

/* s for a `--` comment, or a column of the listing: every control
 * character a space, so that no name can end the comment's line. */
static void comment_add(struct buf *out, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
		buf_addc(out, *p < 0x20 || *p == 0x7F ? ' ' : (char)*p);
}

/* How many characters s shows: its UTF-8 code points, not its bytes. */
static size_t text_width(const char *s)
{
	size_t n = 0;
	for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
		if ((*p & 0xC0) != 0x80) n++;
	return n;
}

/* s as a column of the listing (comment_add) padded to width characters
 * (text_width), then a space. */
static void column_add(struct buf *out, const char *s, size_t width)
{
	size_t from = out->len;
	comment_add(out, s);
	for (size_t chars = text_width(out->data + from); chars < width; chars++) buf_addc(out, ' ');
	buf_addc(out, ' ');
}

/* The gist of a token error for a comment: without its "tenant ID: ",
 * up to its first ": " outside parentheses (what follows is advice), at
 * most 120 bytes. */
static void short_reason(const char *msg, struct buf *out)
{
	if (str_starts(msg, "tenant ") && strstr(msg, ": ")) msg = strstr(msg, ": ") + 2;
	int depth = 0;
	for (size_t i = 0; msg[i] && i < 120; i++) {
		if (msg[i] == '(') depth++;
		else if (msg[i] == ')' && depth) depth--;
		else if (msg[i] == ':' && msg[i + 1] == ' ' && !depth) break;
		buf_addc(out, msg[i]);
	}
}

/* The ready-to-paste entry of c (one line, valid Lua, its comment after
 * `--`) with its Syncro customer: by contact domain, else by name as the
 * sync finds it (the one customer with it, else what the sync would say
 * about several or similar ones), when ix (Syncro read) is not NULL; else
 * by name, unchecked. */
static void paste_entry(const struct customer *c, const struct syncro_index *ix, struct buf *out)
{
	struct buf note = { 0 };
	struct buf why = { 0 }, tie = { 0 };
	size_t n_similar = 0;
	const struct syncro_customer *sc = ix ? suggest_by_domain(ix, c, &why, &tie) : NULL;
	const struct syncro_customer *by_name = NULL;
	enum syncro_result by_name_r = SYNCRO_NOT_FOUND;
	struct err name_err = { { 0 } };
	if (ix && !sc && !tie.len)
		by_name_r = syncro_customer_pick(ix->customers, ix->ncustomers, c->name, &by_name, &n_similar, &name_err);
	buf_adds(out, "{ id = ");
	lua_quote(c->tenant_id, out);
	if (c->name) {
		buf_adds(out, ", name = ");
		lua_quote(c->name, out);
	}
	if (c->domain) buf_printf(&note, "%s; ", c->domain);
	if (sc || by_name) {
		buf_printf(out, ", syncro_customer_id = %lld },  -- ", sc ? sc->id : by_name->id);
		buf_printf(&note, "%s, %s", customer_label(sc ? sc : by_name), sc ? why.data : "by name");
	} else {
		buf_adds(out, ", syncro_customer = ");
		lua_quote(c->name ? c->name : c->domain, out);
		buf_adds(out, " },  -- ");
		/* Syncro read, and no customer has its domains or (just one) its
		 * name: the entry says so rather than name a customer the sync
		 * will not find; with several of its name, or similar ones, what
		 * the sync would say, not to create one more */
		if (!ix)
			buf_adds(&note, "by name");
		else if (tie.len)
			buf_printf(&note, "CHECK IN SYNCRO: %s; set the tenant's syncro_customer_id to the one to use", tie.data);
		else if (by_name_r == SYNCRO_AMBIGUOUS || n_similar)
			buf_printf(&note, "CHECK IN SYNCRO: no customer has its domains; %s", name_err.msg);
		else
			buf_adds(&note, "NOT IN SYNCRO: no customer has its domains or this name; create it, or set "
			                "syncro_customer_id");
	}
	const char *tok_err = graph_tenant_token_error(c->gt);
	if (graph_tenant_token_needs_consent(c->gt)) {
		buf_adds(&note, " (no token yet: grant admin consent first)");
	} else if (tok_err) {
		buf_adds(&note, " (token failed: ");
		short_reason(tok_err, &note);
		buf_adds(&note, ")");
	}
	comment_add(out, note.data);
	buf_free(&note);
	buf_free(&why);
	buf_free(&tie);
}

/* The config's tenants that none of the partner's customers is, nor the
 * partner tenant itself (by csp.partner_tenant, its id or a verified
 * domain): no longer a customer per /contracts, or (named by a domain
 * while some customer's domains could not be read) maybe one of those. */
static void configured_not_customers(const struct config *cfg, const struct discovery *d)
{
	bool domains_unknown = false;
	for (size_t i = 0; i < d->n; i++)
		if (!d->v[i].mapped && (graph_tenant_token_error(d->v[i].gt) || d->v[i].org_error)) domains_unknown = true;
	for (size_t k = 0; k < cfg->ntenants; k++) {
		const struct config_tenant *t = &cfg->tenants[k];
		bool found = customer_has_domain(&d->self, t->id) || (d->self.tenant_id && str_ieq(d->self.tenant_id, t->id));
		for (size_t i = 0; i < d->n && !found; i++) found = d->v[i].mapped == t;
		if (found) continue;     /* a customer, or the partner's own tenant (in no contract) */
		printf("  %s%s%s%s (%s:%d): configured, but ", t->id, t->name ? " (" : "", t->name ? t->name : "",
		       t->name ? ")" : "", cfg->path ? cfg->path : "config", t->line);
		if (domains_unknown && !str_is_guid(t->id))
			printf("none of your customers per /contracts has this id or default domain: it may be a verified "
			       "domain of one whose domains could not be read (above)\n");
		else
			printf("no longer one of your customers per /contracts: if you no longer manage it, take it out of "
			       "the config, then 'entrasync tenants forget %s'\n", t->id);
	}
}

static int discover(const struct config *cfg)
{
	struct err err;
	int rc = EXIT_NOSTART;
	struct http_engine *engine = NULL;
	struct graph_client *gc = NULL;
	struct discovery d = { 0 };
	struct syncro_index ix = { 0 };
	struct store *st = NULL;
	if (!cfg->csp_partner_tenant)
		return usage_fail("tenants discover", "csp.partner_tenant is not set in the config "
		                  "(csp = { partner_tenant = \"YOUR-PARTNER-TENANT-ID\" })");
	engine = http_engine_new(NULL, &err);
	if (!engine) {
		fprintf(stderr, "entrasync tenants discover: %s\n", err.msg);
		goto out;
	}
	if (graph_client_new(&(struct graph_client_opts){ .cfg = &cfg->graph, .engine = engine }, &gc, &err) != 0) {
		fprintf(stderr, "entrasync tenants discover: %s\n", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	d.partner = graph_tenant_get(gc, cfg->csp_partner_tenant);
	contracts_fetch(&d, "/contracts");
	if (http_run(engine, &err) != 0 || d.failed) {
		if (d.failed) err = d.err;
		log_redact_err(&err);
		fprintf(stderr, "entrasync tenants discover: reading the partner tenant's customers failed: %s\n", err.msg);
		rc = EXIT_PARTIAL;
		goto out;
	}
	/* Can the app get a token in each customer tenant? All at once. */
	for (size_t i = 0; i < d.n; i++) {
		struct customer *c = &d.v[i];
		customer_map(c, cfg, NULL);
		c->gt = graph_tenant_get(gc, c->tenant_id);
		graph_tenant_token_start(c->gt);
	}
	if (http_run(engine, &err) != 0) {
		fprintf(stderr, "entrasync tenants discover: %s\n", err.msg);
		goto out;
	}
	/* The verified domains of every one with a token: whether the token
	 * reads anything; a config entry may name the tenant by one of them;
	 * the Syncro suggestion. The partner's own too (id and domains): a
	 * config entry naming it is no former customer. Unread, its
	 * csp.partner_tenant still tells it. */
	d.self.domain = xstrdup(cfg->csp_partner_tenant);
	if (graph_submit(d.partner, &(struct graph_request){ .url = "/organization?$select=id,verifiedDomains",
	                                                     .on_done = organization_done, .ctx = &d.self }, &err) != 0)
		log_warn("tenants", "%s", err.msg);
	for (size_t i = 0; i < d.n; i++) {
		struct customer *c = &d.v[i];
		if (graph_tenant_token_error(c->gt)) continue;
		if (graph_submit(c->gt, &(struct graph_request){ .url = "/organization?$select=verifiedDomains",
		                                                 .on_done = organization_done, .ctx = c }, &err) != 0)
			c->org_error = xasprintf("/organization failed: %s", err.msg);
	}
	if (http_run(engine, &err) != 0) {
		fprintf(stderr, "entrasync tenants discover: %s\n", err.msg);
		goto out;
	}
	/* /organization denied: are the users readable all the same? */
	for (size_t i = 0; i < d.n; i++) {
		struct customer *c = &d.v[i];
		if (c->org_denied && graph_submit(c->gt, &(struct graph_request){ .url = "/users?$top=1&$select=id",
		                                                                  .on_done = users_done, .ctx = c },
		                                  &err) != 0)
			log_warn("tenants", "%s", err.msg);
	}
	if (http_run(engine, &err) != 0) {
		fprintf(stderr, "entrasync tenants discover: %s\n", err.msg);
		goto out;
	}
	if (access(cfg->database, F_OK) == 0 && store_open(cfg->database, &st, &err) != 0) {
		log_redact_err(&err);
		printf("(the database could not be read, tenants are matched by their domains only: %s)\n", err.msg);
		st = NULL;
	}
	for (size_t i = 0; i < d.n; i++) customer_map(&d.v[i], cfg, st);
	size_t unmapped = 0, unreachable = 0;
	printf("%zu customer tenant%s of partner %s:\n", d.n, d.n == 1 ? "" : "s", cfg->csp_partner_tenant);
	size_t domain_width = 24, name_width = 24;   /* the widest, up to 60 */
	for (size_t i = 0; i < d.n; i++) {
		size_t wd = text_width(d.v[i].domain), wn = text_width(d.v[i].name);
		if (wd > domain_width) domain_width = wd < 60 ? wd : 60;
		if (wn > name_width) name_width = wn < 60 ? wn : 60;
	}
	for (size_t i = 0; i < d.n; i++) {
		struct customer *c = &d.v[i];
		const char *tok_err = graph_tenant_token_error(c->gt);
		struct buf row = { 0 };
		buf_printf(&row, "  %s  ", c->tenant_id);
		column_add(&row, c->domain ? c->domain : "-", domain_width);
		column_add(&row, c->name ? c->name : "-", name_width);
		printf("%s%-11s token: %s%s\n", row.data, c->mapped ? "mapped" : "not mapped", tok_err ? "FAILED" : "ok",
		       c->org_error ? ", but" : "");
		buf_free(&row);
		if (tok_err || c->org_error) {
			char *why = str_term_message(tok_err ? tok_err : c->org_error);
			printf("      %s\n", why);
			free(why);
			if (tok_err || !c->users_readable) unreachable++;   /* its users readable: usable, a note */
		}
		if (!c->mapped) unmapped++;
	}
	configured_not_customers(cfg, &d);
	if (unmapped) {
		/* Suggested Syncro customer: the one whose contacts' e-mail
		 * domains match the tenant's domains, else by name. */
		bool have_syncro = cfg->syncro.base_url && cfg->syncro.api_key;
		if (have_syncro && syncro_index_load(cfg, engine, &ix, &err) != 0) {
			log_redact_err(&err);
			printf("\nSyncro could not be read (%s): syncro_customer suggested by name only\n", err.msg);
			have_syncro = false;
		}
		printf("\n-- ready to paste into tenants = { ... } (check syncro_customer: suggested by %s)\n",
		       have_syncro ? "contact domain, else by name" : "name");
		for (size_t i = 0; i < d.n; i++) {
			struct customer *c = &d.v[i];
			if (c->mapped) continue;
			struct buf b = { 0 };
			paste_entry(c, have_syncro ? &ix : NULL, &b);
			printf("%s\n", b.data);
			buf_free(&b);
		}
	}
	/* a customer the app cannot read is work to do (consent, permissions) */
	rc = unreachable ? EXIT_PARTIAL : EXIT_OK;
out:
	graph_client_free(gc);
	http_engine_free(engine);
	for (size_t i = 0; i < d.n; i++) customer_free(&d.v[i]);
	customer_free(&d.self);
	store_close(st);
	syncro_index_free(&ix);
	free(d.v);
	return rc;
}

/* ---- entrasync tenants forget ------------------------------------------------- */

/* The store's tenants that a TENANT argument names: by id, default domain
 * or name (ASCII case-insensitive). */
struct forget_match {
	const char *given;
	char *id;                /* the match's id (owned): the exact id if one is, else the first */
	char *label;             /* its name, else its domain, else NULL (owned) */
	size_t n;                /* how many matched */
	bool exact;              /* id is exactly the given text */
	struct buf all;          /* "id (name), ..." of every match, for an ambiguous name */
};

static int forget_match_row(const struct store_tenant *t, void *ud)
{
	struct forget_match *m = ud;
	if (!str_ieq(t->id, m->given) && !(t->default_domain && str_ieq(t->default_domain, m->given)) &&
	    !(t->name && str_ieq(t->name, m->given)))
		return 0;
	bool exact = strcmp(t->id, m->given) == 0;
	if (m->n++ == 0 || exact) {
		free(m->id);
		free(m->label);
		m->id = xstrdup(t->id);
		/* names are Microsoft's organization names (the customer's text): printed safe */
		m->label = t->name ? str_term_safe(t->name) : t->default_domain ? str_term_safe(t->default_domain) : NULL;
		m->exact = exact;
	}
	buf_printf(&m->all, "%s%s%s", m->all.len ? ", " : "", t->id, t->name ? " (" : "");
	buf_add_term(&m->all, t->name);
	buf_adds(&m->all, t->name ? ")" : "");
	return 0;
}

/* "N what" appended to out, with a separator, when n is not 0. */
static void said(struct buf *out, long long n, const char *one, const char *many)
{
	if (n) buf_printf(out, "%s%lld %s", out->len ? ", " : "", n, n == 1 ? one : many);
}

/* What f says was deleted, as one line's list. */
static void forgotten_text(const struct store_forgotten *f, bool with_audit, struct buf *out)
{
	said(out, f->users, "mirrored user", "mirrored users");
	if (f->groups)
		buf_printf(out, "%s%lld group%s (%lld membership%s)", out->len ? ", " : "", f->groups,
		           f->groups == 1 ? "" : "s", f->memberships, f->memberships == 1 ? "" : "s");
	said(out, f->links, "link to a Syncro contact", "links to Syncro contacts");
	if (f->license_days)
		buf_printf(out, "%s%lld day%s of licence counts (%lld row%s)", out->len ? ", " : "", f->license_days,
		           f->license_days == 1 ? "" : "s", f->license_rows, f->license_rows == 1 ? "" : "s");
	said(out, f->score_days, "Secure Score day", "Secure Score days");
	said(out, f->conflicts, "conflict", "conflicts");
	if (f->intents)
		buf_printf(out, "%s%lld write intent%s", out->len ? ", " : "", f->intents, f->intents == 1 ? "" : "s");
	if (f->intents_open) buf_printf(out, " (%lld never finished)", f->intents_open);
	said(out, f->run_results, "run result", "run results");
	said(out, f->billing, "billing record", "billing records");
	said(out, f->ticket_actions, "ticket action", "ticket actions");
	said(out, f->state_keys, "state key", "state keys");
	if (with_audit) said(out, f->audit, "audit row", "audit rows");
}

/* Refuses to forget the tenant of row id, which the config still names
 * (as ct): says where, and what to do. */
static int refuse_configured(const struct config *cfg, const struct config_tenant *ct, const char *id)
{
	char as[200] = "";
	if (strcmp(ct->id, id) != 0)
		snprintf(as, sizeof as, " (the database's %.80s is the same Microsoft tenant, named another way)", id);
	fprintf(stderr, "entrasync tenants forget: tenant %s%s%s%s is still in the config (%s%s%d)%s: take its entry "
	        "out of the config first (entrasync then stops pulling and syncing it), then forget it\n", ct->id,
	        ct->name ? " (" : "", ct->name ? ct->name : "", ct->name ? ")" : "", cfg->path ? cfg->path : "config",
	        ct->line ? ":" : "", ct->line, as);
	return EXIT_USAGE;
}

static int forget(const struct config *cfg, const char *given, bool dry_run, bool with_audit)
{
	struct store *st = NULL;
	struct store_lock lock = { 0 };
	struct forget_match m = { .given = given };
	struct buf text = { 0 };
	struct err err;
	const struct config_tenant *ct;
	int rc = EXIT_NOSTART;
	if (store_lock_acquire(cfg->database, &lock, &err) != 0) {
		fprintf(stderr, "entrasync tenants forget: %s\n", err.msg);
		goto out;
	}
	int opened = ops_store_open("tenants forget", cfg, false, &st);
	if (opened == STORE_NOTFOUND) {
		fprintf(stderr, "entrasync tenants forget: no database yet (%s): nothing to forget\n", cfg->database);
		rc = EXIT_USAGE;
		goto out;
	}
	if (opened != 0) goto out;
	if (store_tenant_each(st, forget_match_row, &m, &err) != 0) {
		fprintf(stderr, "entrasync tenants forget: %s\n", err.msg);
		goto out;
	}
	rc = EXIT_USAGE;
	if (m.n == 0) {
		fprintf(stderr, "entrasync tenants forget: the database holds no tenant '%s' (by id, default domain or "
		        "name; 'entrasync tenants' lists them)\n", given);
		goto out;
	}
	if (m.n > 1 && !m.exact) {
		fprintf(stderr, "entrasync tenants forget: '%s' names %zu tenants: %s; give the id\n", given, m.n,
		        m.all.data);
		goto out;
	}
	if ((ct = ops_tenant_row_configured(cfg, st, m.id))) {
		rc = refuse_configured(cfg, ct, m.id);
		goto out;
	}
	struct store_forgotten f;
	int done = store_tenant_forget(st, m.id, with_audit, dry_run, &f, &err);
	if (done != 0) {
		if (done == STORE_NOTFOUND) snprintf(err.msg, sizeof err.msg, "tenant %s went meanwhile", m.id);
		fprintf(stderr, "entrasync tenants forget: %s\n", err.msg);
		rc = EXIT_NOSTART;
		goto out;
	}
	forgotten_text(&f, with_audit, &text);
	printf("%s tenant %s%s%s%s: %s\n", dry_run ? "would forget" : "forgot", m.label ? m.label : m.id,
	       m.label ? " (" : "", m.label ? m.id : "", m.label ? ")" : "", text.len ? text.data : "nothing but its row");
	if (!with_audit && f.audit)
		printf("kept: its %lld audit row%s (retention.audit_days applies; --audit deletes them now)\n", f.audit,
		       f.audit == 1 ? "" : "s");
	printf("Nothing %s changed in Syncro or Microsoft 365: the customer's contacts stay as they are.\n",
	       dry_run ? "would be" : "was");
	if (!dry_run) printf("'entrasync prune --vacuum' gives the freed space back to the file system.\n");
	rc = EXIT_OK;
out:
	free(m.id);
	free(m.label);
	buf_free(&m.all);
	buf_free(&text);
	store_close(st);
	store_lock_release(&lock);
	return rc;
}

int cmd_tenants(int argc, char **argv, const struct global_opts *g)
{
	int dry = 0, audit = 0;
	const struct opt opts[] = { { "--dry-run", NULL, NULL, &dry }, { "--audit", NULL, NULL, &audit },
		                        { NULL, NULL, NULL, NULL } };
	struct config cfg;
	struct err err;
	int npos, rc = EXIT_USAGE;
	memset(&cfg, 0, sizeof cfg);
	if (opts_parse(argc, argv, opts, argv, &npos, &err) != 0) return usage_fail("tenants", "%s", err.msg);
	bool forgetting = npos >= 1 && strcmp(argv[0], "forget") == 0;
	if (!forgetting && (npos > 1 || (npos == 1 && strcmp(argv[0], "discover") != 0))) {
		static const char *const subs[] = { "discover", "forget", NULL };
		return usage_unknown("subcommand", argv[npos > 1 ? 1 : 0], subs, "tenants");
	}
	if (forgetting && npos != 2)
		return usage_fail("tenants", npos < 2 ? "forget needs the TENANT (its id, default domain or name)"
		                                      : "forget takes one TENANT");
	if ((dry || audit) && !forgetting)
		return usage_fail("tenants", "%s goes with 'forget'", dry ? "--dry-run" : "--audit");
	/* discover is how a new CSP partner gets its tenants' entries: it needs
	 * none configured yet */
	bool discovering = !forgetting && npos == 1;
	if (config_load_opts(config_locate(g->config_path),
	                     CONFIG_SKIP_POLICY_FILES | (discovering ? CONFIG_TENANTS_OPTIONAL : 0u), &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	rc = forgetting ? forget(&cfg, argv[1], dry, audit) : discovering ? discover(&cfg) : list_tenants(&cfg);
out:
	config_free(&cfg);
	return rc;
}
