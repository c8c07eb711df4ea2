/* cmd_ops — shared pieces of the operator commands (see cmd_ops.h). */
#include "face/cmd_ops.h"
#include "graph/graph.h"
#include "util/log.h"
#include "util/snapshot.h"
#include "store/store_tenants.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *ops_tenant_id(const struct config *cfg, const char *given)
{
	for (size_t i = 0; i < cfg->ntenants; i++)
		if (str_ieq(cfg->tenants[i].id, given)) return cfg->tenants[i].id;
	for (size_t i = 0; i < cfg->ntenants; i++)
		if (cfg->tenants[i].name && str_ieq(cfg->tenants[i].name, given)) return cfg->tenants[i].id;
	return given;
}

/* The id of the store's row that name (a GUID or a domain, any case) is
 * another name of (store_tenant_same_as), as a new string, or NULL. */
static char *row_named(struct store *st, const char *name)
{
	char *lower = xstrdup(name), *other = NULL;
	for (char *c = lower; *c; c++) *c = (char)tolower((unsigned char)*c);
	int more = 0;
	struct err err;
	if (store_tenant_same_as(st, lower, &other, &more, &err) != 0) other = NULL;
	free(lower);
	return other;
}

const char *ops_tenant_id_in(const struct config *cfg, struct store *st, const char *given)
{
	const char *id = ops_tenant_id(cfg, given);
	if (id != given || !st) return id;
	char *other = row_named(st, given);
	for (size_t i = 0; other && i < cfg->ntenants; i++)
		if (str_ieq(cfg->tenants[i].id, other)) id = cfg->tenants[i].id;
	free(other);
	return id;
}

static int tenant_row_seen(const struct store_status_tenant *t, void *ud)
{
	(void)t;
	(void)ud;
	return 0;
}

bool ops_tenant_known(const struct config *cfg, struct store *st, const char *given)
{
	const char *id = ops_tenant_id_in(cfg, st, given);
	if (id != given) return true;
	struct err err;
	return st && store_status_tenant_each(st, id, tenant_row_seen, NULL, &err) == 0;
}

int ops_tenant_unknown(const char *cmd, const struct config *cfg, const char *given)
{
	if (strchr(given, ','))
		return usage_fail(cmd, "--tenant names one tenant here, not a list ('%s')", given);
	struct buf hint = { 0 };
	config_tenant_unknown_hint(cfg, given, &hint);
	int rc = usage_fail(cmd, "unknown tenant '%s' %s", given, hint.data);
	buf_free(&hint);
	return rc;
}

int ops_tenants_select(const char *cmd, const struct config *cfg, struct store *st, const struct opt_list *names,
                       bool *sel)
{
	for (size_t i = 0; i < cfg->ntenants; i++) sel[i] = names->n == 0;
	for (size_t k = 0; k < names->n; k++) {
		const char *id = ops_tenant_id_in(cfg, st, names->v[k]);
		size_t i = 0;
		while (i < cfg->ntenants && cfg->tenants[i].id != id) i++;
		if (i == cfg->ntenants) return ops_tenant_unknown(cmd, cfg, names->v[k]);
		sel[i] = true;
	}
	return 0;
}

/* store_tenant_each: is this row the one named ud->given (id or name)? */
struct row_search {
	const char *given;
	bool found;
};
static int row_is_named(const struct store_tenant *t, void *ud)
{
	struct row_search *rs = ud;
	if (str_ieq(t->id, rs->given) || (t->name && str_ieq(t->name, rs->given))) rs->found = true;
	return 0;
}

int ops_tenants_resolve(const char *cmd, const struct config *cfg, struct store *st, const struct opt_list *names,
                        const char **ids)
{
	for (size_t k = 0; k < names->n; k++) {
		ids[k] = ops_tenant_id_in(cfg, st, names->v[k]);
		if (ids[k] != names->v[k]) continue;             /* a configured tenant */
		struct row_search rs = { .given = names->v[k] };
		struct err err;
		if (st && store_tenant_each(st, row_is_named, &rs, &err) != 0) {
			fprintf(stderr, "entrasync %s: %s\n", cmd, err.msg);
			return EXIT_NOSTART;
		}
		if (!rs.found) return ops_tenant_unknown(cmd, cfg, names->v[k]);
	}
	return 0;
}

int ops_config_load(const char *cmd, const struct global_opts *g, struct config *cfg)
{
	struct err err;
	const char *path = config_locate(g->config_path);
	if (config_load_opts(path, CONFIG_SKIP_POLICY_FILES, cfg, &err) == 0) return 0;
	fprintf(stderr, "%s\n", err.msg);
	if (access(path, F_OK) != 0)
		fprintf(stderr, "entrasync %s: no config file at '%s' (give --config FILE or set ENTRASYNC_CONFIG)\n", cmd,
		        path);
	return EXIT_USAGE;
}

int ops_store_open(const char *cmd, const struct config *cfg, bool create, struct store **st)
{
	struct err err;
	*st = NULL;
	if (!create && access(cfg->database, F_OK) != 0) return STORE_NOTFOUND;
	if (store_open(cfg->database, st, &err) != 0) {
		fprintf(stderr, "entrasync %s: %s\n", cmd, err.msg);
		return EXIT_NOSTART;
	}
	return 0;
}

static char *value_text(const cJSON *v)
{
	return v ? cJSON_PrintUnformatted(v) : NULL;
}

/* Adds the change of member name when before and after differ. */
static void change_add(struct ops_change **v, size_t *n, const char *name, const cJSON *b, const cJSON *a)
{
	if (b && a && cJSON_Compare(b, a, 1)) return;
	if (!b && !a) return;
	*v = xrealloc(*v, (*n + 1) * sizeof **v);
	(*v)[(*n)++] = (struct ops_change){ xstrdup(name), value_text(b), value_text(a) };
}

size_t ops_changes(const char *before, const char *after, struct ops_change **out)
{
	cJSON *b = before ? cJSON_Parse(before) : NULL, *a = after ? cJSON_Parse(after) : NULL;
	size_t n = 0;
	*out = NULL;
	if (!cJSON_IsObject(b)) {
		cJSON_Delete(b);
		b = NULL;
	}
	if (!cJSON_IsObject(a)) {
		cJSON_Delete(a);
		a = NULL;
	}
	for (const cJSON *m = a ? a->child : NULL; m; m = m->next)
		change_add(out, &n, m->string, b ? cJSON_GetObjectItemCaseSensitive(b, m->string) : NULL, m);
	for (const cJSON *m = b ? b->child : NULL; m; m = m->next)
		if (!a || !cJSON_GetObjectItemCaseSensitive(a, m->string)) change_add(out, &n, m->string, m, NULL);
	cJSON_Delete(a);
	cJSON_Delete(b);
	return n;
}

void ops_changes_free(struct ops_change *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].field);
		free(v[i].before);
		free(v[i].after);
	}
	free(v);
}

void ops_pruned_text(const struct config_retention *r, const struct store_pruned *p, struct buf *out)
{
	const char *sep = "";
	if (p->runs || p->run_tenants) {
		buf_printf(out, "%lld run%s older than %d days (%lld tenant result%s)", p->runs, p->runs == 1 ? "" : "s",
		           r->runs_days, p->run_tenants, p->run_tenants == 1 ? "" : "s");
		sep = ", ";
	}
	if (p->intents) {
		buf_printf(out, "%s%lld finished intent%s older than %d days", sep, p->intents, p->intents == 1 ? "" : "s",
		           r->runs_days);
		sep = ", ";
	}
	if (p->audit) {
		buf_printf(out, "%s%lld audit row%s older than %d days", sep, p->audit, p->audit == 1 ? "" : "s",
		           r->audit_days);
		sep = ", ";
	}
	if (p->score_days)
		buf_printf(out, "%sthe control scores of %lld Secure Score day%s older than %d days", sep, p->score_days,
		           p->score_days == 1 ? "" : "s", r->score_detail_days);
}

struct store_retention ops_retention_of(const struct config *cfg)
{
	const struct config_retention *r = &cfg->retention;
	return (struct store_retention){ .runs_days = r->runs_days, .audit_days = r->audit_days,
	                                 .score_detail_days = r->score_detail_days };
}

int ops_retention(const struct config *cfg, struct store *st, struct store_pruned *p, struct buf *out,
                  struct err *err)
{
	struct store_retention keep = ops_retention_of(cfg);
	if (store_prune(st, &keep, time_now(), p, err) != 0) return -1;
	ops_pruned_text(&cfg->retention, p, out);
	if (out->len && p->more) buf_printf(out, "; more next run");
	return 0;
}

void ops_put(const char *s)
{
	char *safe = str_term_safe(s);
	if (safe) fputs(safe, stdout);
	free(safe);
}

const struct config_tenant *ops_tenant_configured(const struct config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->ntenants; i++)
		if (strcmp(cfg->tenants[i].id, id) == 0) return &cfg->tenants[i];
	return NULL;
}

char *ops_tenant_row_of(const struct config *cfg, struct store *st, const struct config_tenant *ct)
{
	struct store_tenant row = { 0 };
	struct err err;
	int got = store_tenant_get(st, ct->id, &row, &err);
	store_tenant_free(&row);
	if (got != STORE_NOTFOUND) return NULL;   /* it has its own row (or cannot tell) */
	char *other = row_named(st, ct->id);
	if (other && ops_tenant_configured(cfg, other)) {   /* a row the config names by its own id */
		free(other);
		other = NULL;
	}
	return other;
}

const struct config_tenant *ops_tenant_row_configured(const struct config *cfg, struct store *st, const char *id)
{
	const struct config_tenant *ct = ops_tenant_configured(cfg, id);
	for (size_t i = 0; !ct && st && i < cfg->ntenants; i++) {
		char *row = ops_tenant_row_of(cfg, st, &cfg->tenants[i]);
		if (row && strcmp(row, id) == 0) ct = &cfg->tenants[i];
		free(row);
	}
	return ct;
}

int ops_tenants_rekey(const struct config *cfg, struct store *st, struct err *err)
{
	int rc = -1;
	for (size_t i = 0; i < cfg->ntenants; i++) {
		const char *id = cfg->tenants[i].id;
		struct store_tenant row = { 0 };
		int got = store_tenant_get(st, id, &row, err);
		store_tenant_free(&row);
		if (got < 0) goto out;
		if (got == 0) continue;            /* known by its id */
		char *other = NULL;
		int more = 0;
		int same = store_tenant_same_as(st, id, &other, &more, err);
		if (same < 0) goto out;
		if (same == 0 && ops_tenant_configured(cfg, other)) {
			log_warn("tenants", "tenants %s and %s of the config are the same Microsoft tenant (by the organization "
			         "its last pull stored): list it once", other, id);
		} else if (same == 0) {
			if (store_tenant_rekey(st, other, id, err) != 0) {
				err_prefix(err, "tenant %s: the database knew this Microsoft tenant as %s, and renaming its rows "
				           "to the config's id failed (none was renamed)", id, other);
				free(other);
				goto out;
			}
			log_warn("tenants", "tenant %s: the database knew this Microsoft tenant as %s: its rows (links to Syncro "
			         "contacts, history) now go by %s%s", id, other, id,
			         more ? "; it knows it under other ids too, listed by 'entrasync tenants' (forget them)" : "");
		}
		free(other);
	}
	rc = 0;
out:
	return rc;
}

void ops_cert_warn(const struct config *cfg)
{
	if (!cfg->graph.certificate || getenv(SNAPSHOT_ENV)) return;
	double not_after = graph_certificate_not_after(&cfg->graph), now = time_now();
	if (not_after <= 0 || not_after - now >= GRAPH_CERT_WARN_DAYS * 86400.0) return;
	char day[16];
	time_day(not_after, day, sizeof day);
	log_warn("graph", "the Graph certificate %s %s on %s: upload its successor to the app registration and point the "
	         "config at it", cfg->graph.certificate, not_after < now ? "expired" : "expires", day);
}
