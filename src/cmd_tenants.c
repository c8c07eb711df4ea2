/* cmd_tenants — `entrasync tenants`: the configured tenants with their last
 * pull (from the store); `entrasync tenants discover`: the CSP partner
 * tenant's customers (/contracts), whether each is mapped in the config,
 * whether the app can get a token there, a suggested Syncro customer, and
 * ready-to-paste config entries for the ones not mapped yet. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "graph.h"
#include "http.h"
#include "log.h"
#include "store.h"

/* ---- entrasync tenants ------------------------------------------------------- */

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
		if (found == 0) store_user_count(st, t->id, STORE_USERS_PRESENT, &users, &err);
		const char *name = t->name ? t->name : (found == 0 && row.name ? row.name : "-");
		printf("%-38s %-28s %-20s %-8s %lld\n", t->id, name,
		       found == 0 && row.last_pull_at ? row.last_pull_at : "never",
		       found == 0 && row.last_status ? row.last_status : "-", users);
		if (found == 0 && row.last_error && row.last_status && strcmp(row.last_status, "ok") != 0)
			printf("  last error: %s\n", row.last_error);
		store_tenant_free(&row);
	}
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
};

struct discovery {
	struct customer *v;
	size_t n, cap;
	struct graph_tenant *partner;
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

/* A Lua string literal (quotes and backslashes escaped). */
static void lua_quote(const char *s, struct buf *out)
{
	buf_addc(out, '"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\') buf_addc(out, '\\');
		if (*s == '\n') buf_adds(out, "\\n");
		else buf_addc(out, *s);
	}
	buf_addc(out, '"');
}

static int discover(const struct config *cfg)
{
	struct err err;
	int rc = EXIT_NOSTART;
	struct http_engine *engine = NULL;
	struct graph_client *gc = NULL;
	struct discovery d = { 0 };
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
		for (size_t k = 0; k < cfg->ntenants && !c->mapped; k++) {
			const char *id = cfg->tenants[k].id;
			if (str_ieq(id, c->tenant_id) || (c->domain && str_ieq(id, c->domain))) c->mapped = &cfg->tenants[k];
		}
		c->gt = graph_tenant_get(gc, c->tenant_id);
		graph_tenant_token_start(c->gt);
	}
	if (http_run(engine, &err) != 0) {
		fprintf(stderr, "entrasync tenants discover: %s\n", err.msg);
		goto out;
	}
	size_t unmapped = 0, no_token = 0;
	printf("%zu customer tenant%s of partner %s:\n", d.n, d.n == 1 ? "" : "s", cfg->csp_partner_tenant);
	for (size_t i = 0; i < d.n; i++) {
		struct customer *c = &d.v[i];
		const char *tok_err = graph_tenant_token_error(c->gt);
		printf("  %s  %-32s %-30s %-11s token: %s\n", c->tenant_id, c->domain ? c->domain : "-",
		       c->name ? c->name : "-", c->mapped ? "mapped" : "not mapped", tok_err ? "FAILED" : "ok");
		if (tok_err) {
			printf("      %s\n", tok_err);
			no_token++;
		}
		if (!c->mapped) unmapped++;
	}
	if (unmapped) {
		/* Suggested Syncro customer: by name for now; matching by the
		 * e-mail domains of existing contacts needs the Syncro client. */
		printf("\n-- ready to paste into tenants = { ... } (check syncro_customer: suggested by name)\n");
		for (size_t i = 0; i < d.n; i++) {
			struct customer *c = &d.v[i];
			if (c->mapped) continue;
			struct buf b = { 0 };
			buf_adds(&b, "{ id = ");
			lua_quote(c->tenant_id, &b);
			if (c->name) {
				buf_adds(&b, ", name = ");
				lua_quote(c->name, &b);
			}
			buf_adds(&b, ", syncro_customer = ");
			lua_quote(c->name ? c->name : c->domain, &b);
			buf_adds(&b, " },");
			if (c->domain) buf_printf(&b, "  -- %s", c->domain);
			if (graph_tenant_token_error(c->gt)) buf_adds(&b, " (no token yet: grant admin consent first)");
			printf("%s\n", b.data);
			buf_free(&b);
		}
	}
	rc = EXIT_OK;
	(void)no_token;
out:
	graph_client_free(gc);
	http_engine_free(engine);
	for (size_t i = 0; i < d.n; i++) {
		free(d.v[i].tenant_id);
		free(d.v[i].domain);
		free(d.v[i].name);
	}
	free(d.v);
	return rc;
}

int cmd_tenants(int argc, char **argv, const struct global_opts *g)
{
	const struct opt none[] = { { NULL, NULL, NULL, NULL } };
	struct config cfg;
	struct err err;
	int npos, rc = EXIT_USAGE;
	memset(&cfg, 0, sizeof cfg);
	if (opts_parse(argc, argv, none, argv, &npos, &err) != 0) return usage_fail("tenants", "%s", err.msg);
	if (npos > 1 || (npos == 1 && strcmp(argv[0], "discover") != 0)) {
		static const char *const subs[] = { "discover", NULL };
		return usage_unknown("subcommand", argv[npos > 1 ? 1 : 0], subs, "tenants");
	}
	if (config_load_opts(config_locate(g->config_path), CONFIG_SKIP_POLICY_FILES, &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	rc = npos == 1 ? discover(&cfg) : list_tenants(&cfg);
out:
	config_free(&cfg);
	return rc;
}
