/* test_engine_stream — engine_plan_tenant over a small mirror: what the
 * planner reads of each user's JSON text (accountEnabled, mail, UPN,
 * displayName, escapes included), a malformed user reported and skipped
 * (never taken for removed), leavers through on_leave in the policy's own
 * state, orphan links, and the plan stamps in links.stamp: a second plan
 * of the same inputs evaluates nobody, a policy change everybody. */
#include "t.h"

#include <stdio.h>
#include <stdlib.h>

#include "engine/engine_stream.h"
#include "store/store.h"
#include "store/store_outbox.h"

#define TENANT "t1"
#define CUSTOMER 101

static char *write_policy(const char *name, const char *extra)
{
	char *path = xasprintf("%s/%s", t_tmpdir(), name);
	FILE *f = fopen(path, "w");
	if (f) {
		fprintf(f, "return {\n"
		           "  include = function(u) return u.accountEnabled ~= false, 'disabled' end,\n"
		           "  contact = function(u) return { name = u.displayName, email = u.mail } end,\n"
		           "  on_leave = function(c, why) if why == 'deleted' then return 'delete' end\n"
		           "    return { notes = '[left] ' .. why } end,\n"
		           "}\n%s", extra);
		fclose(f);
	}
	return path;
}

struct got {
	struct buf log;          /* "object:kind[:label];" per action, "!label:msg;" per error */
	struct store *st;        /* links written for creates and restamps (like apply) */
	struct store_outbox *ob;
	long long next_contact;
	bool gone_on_update;     /* an update finds its contact deleted in Syncro: link dropped, emit says 1 */
	struct syncro_contact_list have;   /* the customer's existing contacts (taken by plan) */
	const struct str_index *gone;      /* the planner's gone set (sync --verify), or NULL */
	const long long *gone_contacts;
};

static int need_contacts(void *ud, long long customer_id, const char *label)
{
	return 0;
}

static int emit(void *ud, struct engine_action *a)
{
	struct got *g = ud;
	struct err err;
	buf_printf(&g->log, "%s:%s", a->object_id, engine_kind_name(a->kind));
	if (a->gone_contact) buf_printf(&g->log, ":gone#%lld", a->gone_contact);
	if (a->kind == ENGINE_UPDATE && g->gone_on_update) {
		buf_adds(&g->log, ":gone;");
		if (store_link_delete(g->st, TENANT, a->object_id, &err) != 0) t_fail(__FILE__, __LINE__, "%s", err.msg);
		engine_action_free(a);
		return 1;
	}
	if (a->kind == ENGINE_CREATE) buf_printf(&g->log, ":%s", a->label);
	if (a->kind == ENGINE_ADOPT) buf_printf(&g->log, ":%lld", a->contact_id);
	if (a->kind == ENGINE_MARK) buf_printf(&g->log, ":%s", a->after.v[SYNCRO_F_NOTES]);
	if (a->kind == ENGINE_UNCHANGED && a->restamp)   /* re-planned: what the link is told */
		buf_printf(&g->log, ":%lld/%lld:%s%s", a->contact_id, a->customer_id, a->label ? a->label : "-",
		           a->changed || a->after.v[SYNCRO_F_NAME] ? ":changed?" : "");
	buf_addc(&g->log, ';');
	if (a->kind == ENGINE_CREATE || a->kind == ENGINE_MARK || a->kind == ENGINE_ADOPT) {
		char *fields = engine_fields_to_json(&a->written);
		struct store_link l = { .tenant_id = TENANT, .object_id = a->object_id, .customer_id = CUSTOMER,
		                        .contact_id = a->kind == ENGINE_CREATE ? ++g->next_contact : a->contact_id,
		                        .fields = fields, .stamp = a->stamp };
		if (store_link_put(g->st, &l, &err) != 0) t_fail(__FILE__, __LINE__, "%s", err.msg);
		free(fields);
	} else if (a->restamp && store_link_restamp(g->ob, TENANT, a->object_id, a->stamp, &err) != 0) {
		t_fail(__FILE__, __LINE__, "%s", err.msg);
	}
	engine_action_free(a);
	return 0;
}

static void user_error(void *ud, const char *label, const char *msg)
{
	struct got *g = ud;
	buf_printf(&g->log, "!%s:%s;", label, msg);
}

/* Plans the tenant with the policy at path; the log of what came out. */
static void plan(struct got *g, const char *path, long long *stamped)
{
	struct err err;
	struct engine_policy pol;
	struct engine_contacts *ix = engine_contacts_new();
	engine_contacts_add(ix, CUSTOMER, &g->have);
	struct script_tenant t = { .id = TENANT, .name = "T", .syncro_customer_id = CUSTOMER };
	buf_reset(&g->log);
	if (engine_policy_load(&pol, path, NULL, &t, &err) != 0) {
		t_fail(__FILE__, __LINE__, "%s", err.msg);
		engine_contacts_free(ix);
		return;
	}
	struct engine_planner pl = { .st = g->st, .ob = g->ob, .tenant_id = TENANT, .pol = &pol,
	                             .default_customer = CUSTOMER, .ix = ix, .batch = 2, .need_contacts = need_contacts,
	                             .emit = emit, .user_error = user_error, .ud = g, .gone = g->gone,
	                             .gone_contacts = g->gone_contacts };
	if (engine_plan_tenant(&pl, &err) != 0) t_fail(__FILE__, __LINE__, "%s", err.msg);
	*stamped = pl.stamped;
	engine_policy_free(&pol);
	engine_contacts_free(ix);
}

/* Opens the store at db with its outbox and the tenant into g. */
static bool open_tenant(struct got *g, const char *db)
{
	struct err err;
	struct store_tenant t = { .id = TENANT, .name = "T", .syncro_customer_id = CUSTOMER };
	if (store_open(db, &g->st, &err) == 0 && store_outbox_open(g->st, &g->ob, &err) == 0 &&
	    store_tenant_put(g->st, &t, &err) == 0)
		return true;
	t_fail(__FILE__, __LINE__, "%s", err.msg);
	return false;
}

/* Closes what open_tenant opened and frees the log. */
static void close_tenant(struct got *g)
{
	store_outbox_close(g->ob);
	store_close(g->st);
	buf_free(&g->log);
}

TEST(engine_plan_tenant_reads_text_stamps_and_leavers)
{
	struct err err;
	char *db = xasprintf("%s/plan.db", t_tmpdir());
	char *pol = write_policy("p.lua", ""), *pol2 = write_policy("p2.lua", "-- changed\n");
	struct got g = {0};
	long long stamped = -1;
	if (!open_tenant(&g, db)) return;
	static const char *const users[][2] = {
		{ "a", "{\"mail\":\"ann@x.com\",\"nested\":{\"displayName\":\"No\"},\"displayName\":\"Ann \\u00c5. \\\"A\\\"\"}" },
		{ "b", "{\"displayName\":\"Bob\",\"userPrincipalName\":\"bob@x.com\",\"accountEnabled\":true}" },
		{ "c", "{\"displayName\":\"Cy\",\"mail\":\"cy@x.com\",\"accountEnabled\":false}" },
		{ "d", "{\"displayName\":\"Dee\",\"mail\":\"dee@x.com\"" },          /* malformed */
		{ "e", "{\"displayName\":\"Eve\",\"mail\":\"eve@x.com\"}" },
	};
	for (size_t i = 0; i < sizeof users / sizeof *users; i++)
		REQUIRE_OK(store_user_put(g.st, TENANT, users[i][0], users[i][1], &err), &err);

	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:create:Ann \xc3\x85. \"A\" <ann@x.com>;b:create:Bob <bob@x.com>;c:skip;"
	                      "!d:user: invalid JSON at byte offset 39;e:create:Eve <eve@x.com>;");
	CHECK_EQ_INT(stamped, 0);

	/* the same inputs: nobody evaluated (d is not linked: reported again) */
	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:unchanged;b:unchanged;c:skip;!d:user: invalid JSON at byte offset 39;e:unchanged;");
	CHECK_EQ_INT(stamped, 3);

	/* b disabled, e removed in Entra, a link whose user is gone: on_leave */
	REQUIRE_OK(store_user_put(g.st, TENANT, "b", "{\"displayName\":\"Bob\",\"accountEnabled\":false}", &err), &err);
	REQUIRE_OK(store_user_mark_removed(g.st, TENANT, "e", "deleted", &err), &err);
	struct store_link orphan = { .tenant_id = TENANT, .object_id = "zz", .contact_id = 99, .customer_id = CUSTOMER,
	                             .fields = "{\"name\":\"Zed\"}", .stamp = "0000000000000000" };
	REQUIRE_OK(store_link_put(g.st, &orphan, &err), &err);
	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:unchanged;b:mark:[left] disabled;c:skip;!d:user: invalid JSON at byte offset 39;"
	                      "e:delete;zz:delete;");
	CHECK_EQ_INT(stamped, 1);

	/* a policy change re-plans everyone; unchanged users take the new stamp */
	plan(&g, pol2, &stamped);
	CHECK_EQ_INT(stamped, 0);
	CHECK_CONTAINS(g.log.data, "a:unchanged:1/101:-;b:keep;");   /* no label, as when stamped */
	plan(&g, pol2, &stamped);
	CHECK_EQ_INT(stamped, 2);   /* a unchanged, b kept: both by their stamp */
	struct store_link l = {0};
	REQUIRE_OK(store_link_get(g.st, TENANT, "a", &l, &err), &err);
	CHECK(l.stamp && strlen(l.stamp) == 16);
	CHECK(l.fields && !strstr(l.fields, "stamp"));
	store_link_free(&l);

	close_tenant(&g);
	free(pol);
	free(pol2);
	free(db);
}

/* An update whose contact was deleted in Syncro (emit drops the link and
 * says 1): the user is planned again at once as one with no link — created,
 * or a contact with the e-mail adopted — with the same stamp, so the next
 * plan has the user unchanged. Other users are not touched. */
TEST(engine_plan_tenant_plans_again_a_user_whose_contact_is_gone)
{
	struct err err;
	char *db = xasprintf("%s/plan-gone.db", t_tmpdir()), *pol = write_policy("gone.lua", "");
	struct got g = {0};
	long long stamped = -1;
	if (!open_tenant(&g, db)) return;
	REQUIRE_OK(store_user_put(g.st, TENANT, "a", "{\"displayName\":\"Ann\",\"mail\":\"ann@x.com\"}", &err), &err);
	REQUIRE_OK(store_user_put(g.st, TENANT, "b", "{\"displayName\":\"Bo\",\"mail\":\"bo@x.com\"}", &err), &err);
	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:create:Ann <ann@x.com>;b:create:Bo <bo@x.com>;");

	/* a renamed: its update finds the contact gone; created again */
	REQUIRE_OK(store_user_put(g.st, TENANT, "a", "{\"displayName\":\"Ann N\",\"mail\":\"ann@x.com\"}", &err), &err);
	g.gone_on_update = true;
	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:update:gone;a:create:Ann N <ann@x.com>;b:unchanged;");
	g.gone_on_update = false;
	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:unchanged;b:unchanged;");   /* the create's link has the stamp */
	CHECK_EQ_INT(stamped, 2);

	/* b renamed, its contact merged in Syncro into one with its e-mail: adopted */
	g.have.items = xcalloc(1, sizeof *g.have.items);
	g.have.n = 1;
	g.have.items[0] = (struct syncro_contact){ .id = 900, .customer_id = CUSTOMER };
	g.have.items[0].f.v[SYNCRO_F_EMAIL] = xstrdup("BO@x.com");
	g.have.items[0].f.v[SYNCRO_F_CUSTOMER_ID] = xstrdup("101");
	REQUIRE_OK(store_user_put(g.st, TENANT, "b", "{\"displayName\":\"Bo N\",\"mail\":\"bo@x.com\"}", &err), &err);
	g.gone_on_update = true;
	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:unchanged;b:update:gone;b:adopt:900;");
	struct store_link l = {0};
	REQUIRE_OK(store_link_get(g.st, TENANT, "b", &l, &err), &err);
	CHECK_EQ_INT(l.contact_id, 900);
	CHECK(l.stamp && strlen(l.stamp) == 16);
	store_link_free(&l);

	close_tenant(&g);
	free(pol);
	free(db);
}

/* sync --verify's gone set: a linked user whose contact is gone is planned
 * as one with no link (created, its stamp or not; a leaver skipped), the
 * action carrying the gone contact; the others as always. */
TEST(engine_plan_tenant_gone_contacts_count_as_no_link)
{
	struct err err;
	char *db = xasprintf("%s/plan-verify.db", t_tmpdir()), *pol = write_policy("verify.lua", "");
	struct got g = {0};
	long long stamped = -1;
	if (!open_tenant(&g, db)) return;
	REQUIRE_OK(store_user_put(g.st, TENANT, "a", "{\"displayName\":\"Ann\",\"mail\":\"ann@x.com\"}", &err), &err);
	REQUIRE_OK(store_user_put(g.st, TENANT, "b", "{\"displayName\":\"Bo\",\"mail\":\"bo@x.com\"}", &err), &err);
	REQUIRE_OK(store_user_put(g.st, TENANT, "c", "{\"displayName\":\"Cy\",\"mail\":\"cy@x.com\"}", &err), &err);
	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:create:Ann <ann@x.com>;b:create:Bo <bo@x.com>;c:create:Cy <cy@x.com>;");
	/* a (unchanged, stamped) and c (now disabled: leaving) have lost their contacts 1 and 3 */
	REQUIRE_OK(store_user_put(g.st, TENANT, "c", "{\"displayName\":\"Cy\",\"mail\":\"cy@x.com\","
	                          "\"accountEnabled\":false}", &err), &err);
	struct str_index gone = {0};
	static const long long contacts[] = { 1, 3 };
	str_index_put(&gone, "a", 0);
	str_index_put(&gone, "c", 1);
	g.gone = &gone;
	g.gone_contacts = contacts;
	plan(&g, pol, &stamped);
	CHECK_STR(g.log.data, "a:create:gone#1:Ann <ann@x.com>;b:unchanged;c:skip:gone#3;");
	CHECK_EQ_INT(stamped, 1);   /* b only: a's stamp is not trusted when its contact is gone */
	str_index_free(&gone);
	close_tenant(&g);
	free(pol);
	free(db);
}

/* A policy error names the user as "Name <mail>" (its strings decoded for
 * the message, though an unchanged user's never are). */
TEST(engine_plan_tenant_policy_error_names_the_user)
{
	struct err err;
	char *db = xasprintf("%s/plan-err.db", t_tmpdir()), *pol = xasprintf("%s/boom.lua", t_tmpdir());
	FILE *f = fopen(pol, "w");
	if (!f) t_fail(__FILE__, __LINE__, "cannot write %s", pol);
	else {
		fprintf(f, "return {\n"
		           "  include = function(u) return true end,\n"
		           "  contact = function(u) if u.displayName == 'Boom' then error('no contact') end\n"
		           "    return { name = u.displayName, email = u.mail } end,\n"
		           "}\n");
		fclose(f);
	}
	struct got g = {0};
	long long stamped = -1;
	if (!open_tenant(&g, db)) return;
	REQUIRE_OK(store_user_put(g.st, TENANT, "a", "{\"displayName\":\"Ann\",\"mail\":\"ann@x.com\"}", &err), &err);
	REQUIRE_OK(store_user_put(g.st, TENANT, "b", "{\"displayName\":\"Boom\",\"userPrincipalName\":\"b@x.com\"}", &err),
	           &err);
	plan(&g, pol, &stamped);
	CHECK_CONTAINS(g.log.data, "a:create:Ann <ann@x.com>;!Boom <b@x.com>:");
	CHECK_CONTAINS(g.log.data, "no contact");
	close_tenant(&g);
	free(pol);
	free(db);
}
