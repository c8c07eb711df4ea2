/* cmd_conflicts — `entrasync conflicts [--tenant T] [--json]` lists the open
 * conflicts (users the sync did not link because several Syncro contacts
 * have their e-mail, or because the one that has it is linked to a user who
 * left; linked users whose update would make a second contact with an
 * e-mail) with the candidates; `entrasync link --tenant T USER
 * CONTACT_ID` and `entrasync unlink --tenant T USER` resolve one by hand.
 * link and unlink take the run lock (so they never interleave with a sync)
 * and write the link, the conflict's resolution and an audit row (actor
 * "operator:NAME") in one transaction. Nothing is sent to Syncro: the next
 * sync brings the linked contact in step with the policy. */
#include <cjson/cJSON.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "face/cmd_ops.h"
#include "util/log.h"
#include "store/store_outbox.h"
#include "util/when.h"

/* ---------------------------------------------------------------- conflicts */

struct conflicts_print {
	bool json;
	double now;
	cJSON *arr;
	long long n;
	struct store *st;          /* for whether a candidate is linked */
};

/* Is one of the candidates linked to a user (any)? Then `link` to it is
 * refused, and linking another gives that one's e-mail a second contact:
 * the conflict's message is what resolves it. */
static bool candidate_linked(struct store *st, const cJSON *cands)
{
	for (const cJSON *m = cands->child; st && m; m = m->next) {
		if (!cJSON_IsNumber(m)) continue;
		struct store_link l = { 0 };
		struct err err;
		int rc = store_link_find_contact(st, 0, (long long)m->valuedouble, &l, &err);
		store_link_free(&l);
		if (rc == 0) return true;
	}
	return false;
}

static void add_str(cJSON *o, const char *k, const char *v)
{
	if (v) cJSON_AddStringToObject(o, k, v);
	else cJSON_AddNullToObject(o, k);
}

static int on_conflict(const struct store_status_conflict *c, void *ud)
{
	struct conflicts_print *p = ud;
	p->n++;
	cJSON *cands = c->candidates ? cJSON_Parse(c->candidates) : NULL;
	if (p->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "id", (double)c->id);
		add_str(o, "tenant_id", c->tenant_id);
		add_str(o, "object_id", c->object_id);
		add_str(o, "display_name", c->display_name);
		add_str(o, "mail", c->mail);
		add_str(o, "user_principal_name", c->upn);
		add_str(o, "reason", c->reason);
		add_str(o, "opened_at", c->opened_at);
		if (c->linked_contact) cJSON_AddNumberToObject(o, "linked_contact", (double)c->linked_contact);
		else cJSON_AddNullToObject(o, "linked_contact");
		cJSON_AddItemToObject(o, "candidates", cJSON_IsArray(cands) ? cands : cJSON_CreateArray());
		if (!cJSON_IsArray(cands)) cJSON_Delete(cands);
		cJSON_AddItemToArray(p->arr, o);
		return 0;
	}
	char rel[32] = "";
	double t = when_parse_iso(c->opened_at);
	if (t >= 0) when_relative(t, p->now, rel, sizeof rel);
	printf("%s  ", c->tenant_id), ops_put(c->display_name ? c->display_name : "(not in the mirror)");
	if (c->mail || c->upn) printf(" <"), ops_put(c->mail ? c->mail : c->upn), printf(">");
	printf("  user %s\n", c->object_id);
	printf("    "), ops_put(c->reason ? c->reason : "conflict"), printf("\n");
	printf("    open since %s%s%s%s\n", c->opened_at ? c->opened_at : "?", *rel ? " (" : "", rel, *rel ? ")" : "");
	if (cJSON_IsArray(cands) && cJSON_GetArraySize(cands) > 0) {
		printf("    candidate contacts:");
		for (const cJSON *m = cands->child; m; m = m->next)
			if (cJSON_IsNumber(m)) printf(" #%.0f", m->valuedouble);
		/* a linked user: its update would make a second contact with the
		 * e-mail; one candidate otherwise: its contact is another user's,
		 * who left (the message names the unlink that frees it) or who has
		 * the address too (the message says to tell them apart) */
		if (c->linked_contact)
			printf("\n    resolve: delete or merge in Syncro the contact that is not this person's (the next "
			       "sync then updates #%lld), or keep a candidate instead: entrasync link --tenant %s %s "
			       "CONTACT_ID [--customer ID]\n", c->linked_contact, c->tenant_id, c->object_id);
		else if (cJSON_GetArraySize(cands) > 1 && !candidate_linked(p->st, cands))
			printf("\n    resolve: entrasync link --tenant %s %s CONTACT_ID\n", c->tenant_id, c->object_id);
		else
			printf("\n    resolve: as the message above says\n");
	}
	printf("\n");
	cJSON_Delete(cands);
	return 0;
}

int cmd_conflicts(int argc, char **argv, const struct global_opts *g)
{
	const char *tenant = NULL;
	int json = 0, npos, rc;
	const struct opt opts[] = {
		{ "--tenant", "ID|NAME", &tenant, NULL },
		{ "--json", NULL, NULL, &json },
		{ NULL, NULL, NULL, NULL },
	};
	struct config cfg;
	struct err err;
	struct store *st = NULL;
	struct conflicts_print p = { .now = time_now() };
	memset(&cfg, 0, sizeof cfg);
	if (command_args("conflicts", argc, argv, opts, 0, &npos) != 0) return EXIT_USAGE;
	p.json = json;
	if ((rc = ops_config_load("conflicts", g, &cfg)) != 0) goto out;
	rc = ops_store_open("conflicts", &cfg, false, &st);
	if (rc != 0 && rc != STORE_NOTFOUND) goto out;
	if (tenant && !ops_tenant_known(&cfg, st, tenant)) {
		rc = ops_tenant_unknown("conflicts", &cfg, tenant);
		goto out;
	}
	if (json) p.arr = cJSON_CreateArray();
	p.st = st;
	if (st && store_status_conflict_each(st, tenant ? ops_tenant_id_in(&cfg, st, tenant) : NULL, on_conflict, &p, &err) != 0) {
		fprintf(stderr, "entrasync conflicts: %s\n", err.msg);
		rc = EXIT_NOSTART;
		goto out;
	}
	if (json) {
		char *s = cJSON_Print(p.arr);
		printf("%s\n", s);
		free(s);
	} else if (p.n == 0) {
		printf("No open conflicts%s%s.\n", tenant ? " for " : "", tenant ? tenant : "");
	} else {
		printf("%lld open conflict%s.\n", p.n, p.n == 1 ? "" : "s");
	}
	rc = EXIT_OK;
out:
	cJSON_Delete(p.arr);
	store_close(st);
	config_free(&cfg);
	return rc;
}

/* ---------------------------------------------------------------- link / unlink */

/* "operator:NAME": the user behind sudo, else the login of the real uid. */
static char *operator_name(void)
{
	const char *name = getenv("SUDO_USER");
	if (!name || !*name) {
		struct passwd *pw = getpwuid(getuid());
		name = pw ? pw->pw_name : NULL;
	}
	if (!name || !*name) name = getenv("USER");
	return xasprintf("operator:%s", name && *name ? name : "unknown");
}

/* What link and unlink share: the config, the run lock, the store, the
 * outbox and the user named on the command line. */
struct manual {
	const char *cmd;
	struct config cfg;
	struct store_lock lock;
	struct store *st;
	struct store_outbox *ob;
	const char *tenant_id;
	const struct config_tenant *ct;   /* NULL when only the store knows the tenant */
	struct store_tenant tenant;
	char *object_id;
	char *actor;
};

static void manual_close(struct manual *m)
{
	free(m->actor);
	free(m->object_id);
	store_tenant_free(&m->tenant);
	store_outbox_close(m->ob);
	store_close(m->st);
	store_lock_release(&m->lock);
	config_free(&m->cfg);
}

/* Opens everything for tenant / user. Returns 0 or an exit code (printed). */
static int manual_open(struct manual *m, const struct global_opts *g, const char *tenant, const char *user)
{
	struct err err;
	int rc;
	if ((rc = ops_config_load(m->cmd, g, &m->cfg)) != 0) return rc;
	if (store_lock_acquire(m->cfg.database, &m->lock, &err) != 0) {
		fprintf(stderr, "entrasync %s: %s (try again when it is done)\n", m->cmd, err.msg);
		return EXIT_NOSTART;
	}
	if ((rc = ops_store_open(m->cmd, &m->cfg, false, &m->st)) == STORE_NOTFOUND)
		return usage_fail(m->cmd, "no database yet at %s: run 'entrasync sync' (or pull) first", m->cfg.database);
	if (rc != 0) return rc;
	if (store_outbox_open(m->st, &m->ob, &err) != 0) {
		fprintf(stderr, "entrasync %s: %s\n", m->cmd, err.msg);
		return EXIT_NOSTART;
	}
	m->tenant_id = ops_tenant_id_in(&m->cfg, m->st, tenant);   /* its GUID or a verified domain names it too */
	for (size_t i = 0; i < m->cfg.ntenants; i++)
		if (strcmp(m->cfg.tenants[i].id, m->tenant_id) == 0) m->ct = &m->cfg.tenants[i];
	rc = store_tenant_get(m->st, m->tenant_id, &m->tenant, &err);
	if (rc == STORE_NOTFOUND)
		return usage_fail(m->cmd, "no tenant '%s' in the store (a tenant of the config that was never pulled?)",
		                  tenant);
	if (rc < 0) {
		fprintf(stderr, "entrasync %s: %s\n", m->cmd, err.msg);
		return EXIT_NOSTART;
	}
	rc = store_status_user_find(m->st, m->tenant_id, user, &m->object_id, &err);
	if (rc == STORE_NOTFOUND)
		return usage_fail(m->cmd, "no user '%s' in the mirror of tenant %s (object id, UPN or mail; "
		                  "a new user appears after the next pull)", user, m->tenant_id);
	if (rc < 0) return usage_fail(m->cmd, "%s", err.msg);
	m->actor = operator_name();
	return 0;
}

/* Commits a link change: put (l != NULL) or delete the user's link,
 * resolve their conflict, append the audit row; one transaction. */
static int manual_commit(struct manual *m, const struct store_link *l, const struct store_audit *au, struct err *err)
{
	if (store_begin(m->st, err) != 0) return -1;
	if (l ? store_link_put(m->st, l, err) : store_link_delete(m->st, m->tenant_id, m->object_id, err)) goto fail;
	if (store_conflict_resolve(m->ob, m->tenant_id, m->object_id, err) != 0) goto fail;
	if (store_audit_append(m->st, au, NULL, err) != 0) goto fail;
	return store_commit(m->st, err);
fail:
	store_rollback(m->st, NULL);
	return -1;
}

int cmd_link(int argc, char **argv, const struct global_opts *g)
{
	const char *tenant = NULL, *customer = NULL;
	const struct opt opts[] = {
		{ "--tenant", "ID|NAME", &tenant, NULL },
		{ "--customer", "ID", &customer, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	struct manual m = { .cmd = "link" };
	struct err err;
	struct store_link old = { 0 }, other = { 0 };
	char *before = NULL, *after = NULL;
	int npos, rc;
	long long contact_id = 0, customer_id = 0;
	if (command_args("link", argc, argv, opts, 2, &npos) != 0) return EXIT_USAGE;
	if (!tenant) return usage_fail("link", "--tenant is required (the user's tenant)");
	if (npos != 2) return usage_fail("link", "give the user and the contact id: entrasync link --tenant T USER CONTACT_ID");
	char *end;
	contact_id = strtoll(argv[1], &end, 10);
	if (*end || contact_id <= 0) return usage_fail("link", "CONTACT_ID must be a Syncro contact id (a number), got '%s'", argv[1]);
	if (customer) {
		customer_id = strtoll(customer, &end, 10);
		if (*end || customer_id <= 0) return usage_fail("link", "--customer needs a Syncro customer id, got '%s'", customer);
	}
	if ((rc = manual_open(&m, g, tenant, argv[0])) != 0) goto out;
	if (!customer_id) customer_id = m.tenant.syncro_customer_id;
	if (!customer_id && m.ct) customer_id = m.ct->syncro_customer_id;
	if (!customer_id) {
		rc = usage_fail("link", "the Syncro customer of tenant %s is not known yet: give --customer ID", m.tenant_id);
		goto out;
	}
	/* linked to another user as a contact of any customer (ids are Syncro's, global) */
	rc = store_link_find_contact(m.st, 0, contact_id, &other, &err);
	if (rc < 0) goto fail;
	if (rc == 0 && !(strcmp(other.tenant_id, m.tenant_id) == 0 && strcmp(other.object_id, m.object_id) == 0)) {
		char of[48] = "";
		if (other.customer_id != customer_id) snprintf(of, sizeof of, " (customer #%lld)", other.customer_id);
		rc = usage_fail("link", "contact #%lld is already linked to user %s of tenant %s%s: "
		                "'entrasync unlink --tenant %s %s' first", contact_id, other.object_id, other.tenant_id, of,
		                other.tenant_id, other.object_id);
		goto out;
	}
	rc = store_link_get(m.st, m.tenant_id, m.object_id, &old, &err);
	if (rc < 0) goto fail;
	bool had = rc == 0;
	if (had && old.contact_id == contact_id && old.customer_id == customer_id) {
		printf("user %s of %s is already linked to contact #%lld\n", m.object_id, m.tenant_id, contact_id);
		rc = EXIT_OK;
		goto out;
	}
	if (had) before = xasprintf("{\"contact_id\":%lld,\"customer_id\":%lld}", old.contact_id, old.customer_id);
	after = xasprintf("{\"contact_id\":%lld,\"customer_id\":%lld}", contact_id, customer_id);
	/* No fields: the next sync reads the contact from Syncro and sends the
	 * policy's fields that differ (engine_stream.c), as for an adopted one. */
	struct store_link l = { .tenant_id = m.tenant_id, .object_id = m.object_id, .contact_id = contact_id,
	                        .customer_id = customer_id, .fields = NULL };
	struct store_audit au = { .tenant_id = m.tenant_id, .object_id = m.object_id, .contact_id = contact_id,
	                          .action = "link", .before = before, .after = after, .actor = m.actor, .result = "ok" };
	if (manual_commit(&m, &l, &au, &err) != 0) goto fail;
	printf("linked user %s of %s to contact #%lld (customer #%lld)", m.object_id, m.tenant_id, contact_id, customer_id);
	if (had) printf(", replacing contact #%lld", old.contact_id);
	printf("; the next sync brings the contact in step with the policy\n");
	rc = EXIT_OK;
	goto out;
fail:
	fprintf(stderr, "entrasync link: %s\n", err.msg);
	rc = EXIT_NOSTART;
out:
	free(before);
	free(after);
	store_link_free(&old);
	store_link_free(&other);
	manual_close(&m);
	return rc;
}

int cmd_unlink(int argc, char **argv, const struct global_opts *g)
{
	const char *tenant = NULL;
	const struct opt opts[] = { { "--tenant", "ID|NAME", &tenant, NULL }, { NULL, NULL, NULL, NULL } };
	struct manual m = { .cmd = "unlink" };
	struct err err;
	struct store_link old = { 0 };
	char *before = NULL;
	int npos, rc;
	if (command_args("unlink", argc, argv, opts, 1, &npos) != 0) return EXIT_USAGE;
	if (!tenant) return usage_fail("unlink", "--tenant is required (the user's tenant)");
	if (npos != 1) return usage_fail("unlink", "give the user: entrasync unlink --tenant T USER");
	if ((rc = manual_open(&m, g, tenant, argv[0])) != 0) goto out;
	rc = store_link_get(m.st, m.tenant_id, m.object_id, &old, &err);
	if (rc < 0) goto fail;
	if (rc == STORE_NOTFOUND) {
		printf("user %s of %s is not linked to any contact\n", m.object_id, m.tenant_id);
		rc = EXIT_OK;
		goto out;
	}
	before = xasprintf("{\"contact_id\":%lld,\"customer_id\":%lld}", old.contact_id, old.customer_id);
	struct store_audit au = { .tenant_id = m.tenant_id, .object_id = m.object_id, .contact_id = old.contact_id,
	                          .action = "unlink", .before = before, .actor = m.actor, .result = "ok" };
	if (manual_commit(&m, NULL, &au, &err) != 0) goto fail;
	printf("unlinked user %s of %s from contact #%lld; the next sync matches the user again by e-mail\n",
	       m.object_id, m.tenant_id, old.contact_id);
	rc = EXIT_OK;
	goto out;
fail:
	fprintf(stderr, "entrasync unlink: %s\n", err.msg);
	rc = EXIT_NOSTART;
out:
	free(before);
	store_link_free(&old);
	manual_close(&m);
	return rc;
}
