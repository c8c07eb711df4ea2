/* cmd_audit — `entrasync audit [--tenant T] [--since DATE] [--contact ID]
 * [--user USER] [--run ID] [--limit N] [--json]`: the audit trail (every
 * write to Syncro, and every link / unlink by hand), oldest first, each
 * with the fields that changed as  field: before → after. Reads only. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face/cmd_ops.h"
#include "util/log.h"
#include "util/when.h"

struct audit_print {
	bool json;
	long long rows;
};

/* A copied audit row (--limit gathers the newest rows before printing). */
struct audit_copy {
	struct store_audit a;
	char *user_name;
	char *s[8];                /* the owned strings behind a's fields */
};
struct audit_held {
	struct audit_copy *v;
	size_t n;
};

/* "12" → 12; anything else (or <= 0) fails. */
static int positive_id(const char *s, long long *v)
{
	char *end;
	if (!s || !*s) return -1;
	long long x = strtoll(s, &end, 10);
	if (*end || x <= 0) return -1;
	*v = x;
	return 0;
}

static cJSON *row_json(const struct store_audit *a, const char *user_name)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "id", (double)a->id);
	cJSON_AddStringToObject(o, "at", a->at ? a->at : "");
	if (a->run_id) cJSON_AddNumberToObject(o, "run_id", (double)a->run_id);
	else cJSON_AddNullToObject(o, "run_id");
	if (a->tenant_id) cJSON_AddStringToObject(o, "tenant_id", a->tenant_id);
	else cJSON_AddNullToObject(o, "tenant_id");
	if (a->object_id) cJSON_AddStringToObject(o, "object_id", a->object_id);
	else cJSON_AddNullToObject(o, "object_id");
	if (user_name) cJSON_AddStringToObject(o, "user", user_name);
	else cJSON_AddNullToObject(o, "user");
	if (a->contact_id) cJSON_AddNumberToObject(o, "contact_id", (double)a->contact_id);
	else cJSON_AddNullToObject(o, "contact_id");
	cJSON_AddStringToObject(o, "action", a->action ? a->action : "");
	if (a->actor) cJSON_AddStringToObject(o, "actor", a->actor);
	else cJSON_AddNullToObject(o, "actor");
	if (a->result) cJSON_AddStringToObject(o, "result", a->result);
	else cJSON_AddNullToObject(o, "result");
	cJSON *b = a->before ? cJSON_Parse(a->before) : NULL, *af = a->after ? cJSON_Parse(a->after) : NULL;
	cJSON_AddItemToObject(o, "before", b ? b : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "after", af ? af : cJSON_CreateNull());
	struct ops_change *ch;
	size_t n = ops_changes(a->before, a->after, &ch);
	cJSON *changes = cJSON_AddArrayToObject(o, "changes");
	for (size_t i = 0; i < n; i++) {
		cJSON *c = cJSON_CreateObject();
		cJSON_AddStringToObject(c, "field", ch[i].field);
		cJSON *bv = ch[i].before ? cJSON_Parse(ch[i].before) : NULL, *av = ch[i].after ? cJSON_Parse(ch[i].after) : NULL;
		cJSON_AddItemToObject(c, "before", bv ? bv : cJSON_CreateNull());
		cJSON_AddItemToObject(c, "after", av ? av : cJSON_CreateNull());
		cJSON_AddItemToArray(changes, c);
	}
	ops_changes_free(ch, n);
	return o;
}

static void row_text(const struct store_audit *a, const char *user_name)
{
	printf("%s  %s  %s", a->at ? a->at : "?", a->tenant_id ? a->tenant_id : "-", a->action ? a->action : "?");
	if (a->contact_id) printf("  contact #%lld", a->contact_id);
	/* an Entra user, or a billing object ("invoice:7002", "schedule:301") */
	if (a->object_id && strchr(a->object_id, ':')) printf("  %s", a->object_id);
	else if (a->object_id) {
		printf("  user %s", a->object_id);
		if (user_name) printf(" ("), ops_put(user_name), printf(")");
	}
	if (a->run_id) printf("  run %lld", a->run_id);
	if (a->actor && strcmp(a->actor, "entrasync") != 0) printf("  by "), ops_put(a->actor);
	printf("  "), ops_put(a->result), printf("\n");
	struct ops_change *ch;
	size_t n = ops_changes(a->before, a->after, &ch);
	for (size_t i = 0; i < n; i++) {
		printf("    "), ops_put(ch[i].field), printf(": "), ops_put(ch[i].before ? ch[i].before : "(none)");
		printf(" → "), ops_put(ch[i].after ? ch[i].after : "(none)"), printf("\n");
	}
	ops_changes_free(ch, n);
}

static char *dup_or_null(const char *v)
{
	return v ? xstrdup(v) : NULL;
}

static int on_row_hold(const struct store_audit *a, const char *user_name, void *ud)
{
	struct audit_held *h = ud;
	h->v = xrealloc(h->v, (h->n + 1) * sizeof *h->v);
	struct audit_copy *c = &h->v[h->n++];
	const char *src[8] = { a->at, a->tenant_id, a->object_id, a->action, a->before, a->after, a->actor, a->result };
	for (size_t i = 0; i < 8; i++) c->s[i] = dup_or_null(src[i]);
	c->user_name = dup_or_null(user_name);
	c->a = (struct store_audit){ .id = a->id, .run_id = a->run_id, .contact_id = a->contact_id, .at = c->s[0],
	                             .tenant_id = c->s[1], .object_id = c->s[2], .action = c->s[3], .before = c->s[4],
	                             .after = c->s[5], .actor = c->s[6], .result = c->s[7] };
	return 0;
}

static void held_free(struct audit_held *h)
{
	for (size_t i = 0; i < h->n; i++)
	{
		for (size_t k = 0; k < 8; k++) free(h->v[i].s[k]);
		free(h->v[i].user_name);
	}
	free(h->v);
}

/* Prints one row (JSON as an element of the streamed array). */
static void print_row(struct audit_print *p, const struct store_audit *a, const char *user_name)
{
	if (p->json) {
		cJSON *o = row_json(a, user_name);
		char *s = cJSON_PrintUnformatted(o);
		printf("%s  %s", p->rows ? ",\n" : "", s);
		free(s);
		cJSON_Delete(o);
	} else {
		row_text(a, user_name);
	}
	p->rows++;
}

static int on_row_seen(const struct store_audit *a, const char *user_name, void *ud)
{
	(void)a;
	(void)user_name;
	++*(size_t *)ud;
	return 0;
}

static int on_row_stream(const struct store_audit *a, const char *user_name, void *ud)
{
	print_row(ud, a, user_name);
	return 0;
}

int cmd_audit(int argc, char **argv, const struct global_opts *g)
{
	const char *tenant = NULL, *since = NULL, *contact = NULL, *user = NULL, *run = NULL, *limit = NULL;
	int json = 0, npos, rc;
	const struct opt opts[] = {
		{ "--tenant", "ID|NAME", &tenant, NULL },
		{ "--since", "DATE", &since, NULL },
		{ "--contact", "ID", &contact, NULL },
		{ "--user", "USER", &user, NULL },
		{ "--run", "ID", &run, NULL },
		{ "--limit", "N", &limit, NULL },
		{ "--json", NULL, NULL, &json },
		{ NULL, NULL, NULL, NULL },
	};
	struct config cfg;
	struct err err;
	struct store *st = NULL;
	struct store_status_audit_filter f = { 0 };
	struct audit_print p = { 0 };
	char since_iso[32];
	char *object_id = NULL;
	memset(&cfg, 0, sizeof cfg);
	if (command_args("audit", argc, argv, opts, 0, &npos) != 0) return EXIT_USAGE;
	p.json = json;
	if (contact && positive_id(contact, &f.contact_id) != 0)
		return usage_fail("audit", "--contact needs a Syncro contact id (a positive number), got '%s'", contact);
	if (run && positive_id(run, &f.run_id) != 0)
		return usage_fail("audit", "--run needs a run id (a positive number), got '%s'", run);
	if (limit && positive_id(limit, &f.limit) != 0)
		return usage_fail("audit", "--limit needs a positive number, got '%s'", limit);
	if (since) {
		if (when_parse_since(since, time_now(), since_iso, sizeof since_iso, &err) != 0)
			return usage_fail("audit", "--since: %s", err.msg);
		f.since = since_iso;
	}
	if (user && !tenant) return usage_fail("audit", "--user needs --tenant (user names are per tenant)");
	if ((rc = ops_config_load("audit", g, &cfg)) != 0) goto out;
	rc = ops_store_open("audit", &cfg, false, &st);
	if (tenant) f.tenant_id = ops_tenant_id_in(&cfg, st, tenant);
	if (rc == STORE_NOTFOUND) {
		if (json) printf("[]\n");
		else fprintf(stderr, "entrasync audit: no database yet at %s: nothing has been written\n", cfg.database);
		rc = EXIT_OK;
		goto out;
	}
	if (rc != 0) goto out;
	if (user) {
		int r = store_status_user_find(st, f.tenant_id, user, &object_id, &err);
		if (r == STORE_NOTFOUND) f.object_id = user;   /* a user no longer mirrored: match the id as given */
		else if (r < 0) {
			rc = usage_fail("audit", "%s", err.msg);
			goto out;
		} else {
			f.object_id = object_id;
		}
	}
	if (tenant && !ops_tenant_known(&cfg, st, tenant)) {
		/* not configured, not in the store: a forgotten tenant keeps its
		 * audit rows; with none, a typo, not an empty history */
		struct store_status_audit_filter any = { .tenant_id = f.tenant_id, .limit = 1, .newest_first = true };
		size_t seen = 0;
		if (store_status_audit_each(st, &any, on_row_seen, &seen, &err) == 0 && seen == 0) {
			rc = ops_tenant_unknown("audit", &cfg, tenant);
			goto out;
		}
	}
	if (json) printf("[\n");
	if (f.limit) {
		/* the newest N, printed oldest first */
		struct audit_held h = { 0 };
		f.newest_first = true;
		rc = store_status_audit_each(st, &f, on_row_hold, &h, &err);
		for (size_t i = h.n; rc == 0 && i > 0; i--) print_row(&p, &h.v[i - 1].a, h.v[i - 1].user_name);
		held_free(&h);
	} else {
		rc = store_status_audit_each(st, &f, on_row_stream, &p, &err);
	}
	if (json) printf("%s]\n", p.rows ? "\n" : "");
	if (rc != 0) {
		fprintf(stderr, "entrasync audit: %s\n", err.msg);
		rc = EXIT_NOSTART;
		goto out;
	}
	if (!json && p.rows == 0) fprintf(stderr, "entrasync audit: no writes match\n");
	rc = EXIT_OK;
out:
	free(object_id);
	store_close(st);
	config_free(&cfg);
	return rc;
}
