/* test_engine_plan — the plan rules (create, adopt, update, leave, conflict,
 * unchanged), the contact index, the removal guard and field JSON, on plain
 * structs with no Lua, HTTP or SQLite. */
#include "t.h"

#include <stdarg.h>
#include <stdlib.h>

#include "engine/engine.h"

/* fields from "name=value" pairs, NULL-terminated */
static void fields_of(struct syncro_fields *fs, ...)
{
	va_list ap;
	memset(fs, 0, sizeof *fs);
	va_start(ap, fs);
	for (const char *kv; (kv = va_arg(ap, const char *));) {
		const char *eq = strchr(kv, '=');
		char *name = xstrndup(kv, (size_t)(eq - kv));
		int f = syncro_field_lookup(name);
		free(name);
		if (f >= 0) syncro_fields_set(fs, (enum syncro_field)f, eq + 1);
	}
	va_end(ap);
}

static struct engine_user user_in(const char *id, const struct syncro_fields *desired)
{
	struct engine_user u = { .object_id = id, .label = id, .included = desired != NULL, .desired = desired };
	if (desired) u.mail = desired->v[SYNCRO_F_EMAIL];
	return u;
}

static void contact_of(struct syncro_contact *c, long long id, long long customer, const char *email, const char *name)
{
	memset(c, 0, sizeof *c);
	c->id = id;
	c->customer_id = customer;
	char cust[32];
	snprintf(cust, sizeof cust, "%lld", customer);
	syncro_fields_set(&c->f, SYNCRO_F_CUSTOMER_ID, cust);
	if (email) syncro_fields_set(&c->f, SYNCRO_F_EMAIL, email);
	if (name) syncro_fields_set(&c->f, SYNCRO_F_NAME, name);
}

TEST(engine_plan_create_writes_nonblank_fields)
{
	struct err err;
	struct syncro_fields d;
	fields_of(&d, "name=Ann Lee", "email=ann@x.com", "phone=", "title=  ", "notes=licensed: E3",
	          "customer_id=101", NULL);
	struct engine_user u = user_in("u1", &d);
	struct engine_plan_opts o = { .create_only = 1u << SYNCRO_F_NOTES };
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(&o, &u, NULL, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_CREATE);
	CHECK_EQ_INT(a.customer_id, 101);
	CHECK_STR(a.after.v[SYNCRO_F_NAME], "Ann Lee");
	CHECK_STR(a.after.v[SYNCRO_F_NOTES], "licensed: E3");   /* create_only: written on create */
	CHECK(a.after.v[SYNCRO_F_PHONE] == NULL);                /* blank: never written */
	CHECK(a.after.v[SYNCRO_F_TITLE] == NULL);
	CHECK(a.after.v[SYNCRO_F_MOBILE] == NULL);               /* nil: never written */
	CHECK(a.changed & (1u << SYNCRO_F_CUSTOMER_ID));
	CHECK_STR(a.written.v[SYNCRO_F_EMAIL], "ann@x.com");
	engine_action_free(&a);
	syncro_fields_free(&d);
}

TEST(engine_plan_adopt_one_candidate_updates_only_differences)
{
	struct err err;
	struct syncro_fields d;
	fields_of(&d, "name=Alex Wilber", "email=alex.wilber@contoso.com", "title=Designer", "notes=from entra",
	          "customer_id=101", NULL);
	struct engine_user u = user_in("u2", &d);
	struct syncro_contact c;
	contact_of(&c, 1003, 101, "Alex.Wilber@Contoso.com", "Alex W.");
	syncro_fields_set(&c.f, SYNCRO_F_TITLE, "Designer");
	syncro_fields_set(&c.f, SYNCRO_F_MOBILE, "425-555-0111");
	const struct syncro_contact *cands[] = { &c };
	struct engine_plan_opts o = { .create_only = 1u << SYNCRO_F_NOTES };
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(&o, &u, NULL, NULL, cands, 1, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_ADOPT);
	CHECK_EQ_INT(a.contact_id, 1003);
	CHECK_EQ_INT(a.changed, 1u << SYNCRO_F_NAME);            /* e-mail differs in case only; title same */
	CHECK_STR(a.before.v[SYNCRO_F_NAME], "Alex W.");
	CHECK_STR(a.after.v[SYNCRO_F_NAME], "Alex Wilber");
	CHECK(a.after.v[SYNCRO_F_NOTES] == NULL);                /* create_only: not on adopt */
	/* the link records everything known: the contact's values and the change */
	CHECK_STR(a.written.v[SYNCRO_F_MOBILE], "425-555-0111");
	CHECK_STR(a.written.v[SYNCRO_F_NAME], "Alex Wilber");
	CHECK_STR(a.written.v[SYNCRO_F_EMAIL], "Alex.Wilber@Contoso.com");
	engine_action_free(&a);
	syncro_contact_free(&c);
	syncro_fields_free(&d);
}

TEST(engine_plan_conflict_lists_candidates_and_creates_nothing)
{
	struct err err;
	struct syncro_fields d;
	fields_of(&d, "name=Lee Gu", "email=lee.gu@contoso.com", "customer_id=101", NULL);
	struct engine_user u = user_in("u3", &d);
	struct syncro_contact c1, c2;
	contact_of(&c1, 1004, 101, "lee.gu@contoso.com", "Lee Gu");
	contact_of(&c2, 1005, 101, "LEE.GU@contoso.com", "Lee Gu (old)");
	const struct syncro_contact *cands[] = { &c1, &c2 };
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(NULL, &u, NULL, NULL, cands, 2, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_CONFLICT);
	CHECK_EQ_INT(a.ncandidates, 2);
	CHECK_EQ_INT(a.candidates[0], 1004);
	CHECK_EQ_INT(a.candidates[1], 1005);
	CHECK_EQ_INT(a.changed, 0);
	CHECK_STR(a.reason, "contacts #1004, #1005 of customer 101 have this e-mail");
	engine_action_free(&a);
	syncro_contact_free(&c1);
	syncro_contact_free(&c2);
	syncro_fields_free(&d);
}

/* A contact with the user's e-mail linked to a user who left the directory
 * (an account made again with the same address): a conflict naming it,
 * not a second contact; a free candidate beside it is adopted as before. */
TEST(engine_plan_contact_of_a_departed_user_is_a_conflict_not_a_create)
{
	struct err err;
	struct syncro_fields d;
	fields_of(&d, "name=Jonas Lambert", "email=jonas.lambert@contoso.com", "customer_id=101", NULL);
	struct engine_user u = user_in("u-new", &d);
	u.taken_contact = 1026;
	u.taken_note = "contact #1026 with this e-mail is linked to user u-old of tenant t, deleted from the directory";
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(NULL, &u, NULL, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_CONFLICT);
	CHECK_EQ_INT(a.ncandidates, 1);
	CHECK_EQ_INT(a.candidates[0], 1026);
	CHECK_EQ_INT(a.customer_id, 101);
	CHECK_EQ_INT(a.changed, 0);
	CHECK_STR(a.reason, u.taken_note);
	CHECK(a.reason != u.taken_note);   /* owned by the action */
	engine_action_free(&a);
	struct syncro_contact c;
	contact_of(&c, 1030, 101, "jonas.lambert@contoso.com", "Jonas Lambert");
	const struct syncro_contact *cands[] = { &c };
	REQUIRE_OK(engine_plan_user(NULL, &u, NULL, NULL, cands, 1, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_ADOPT);
	CHECK_EQ_INT(a.contact_id, 1030);
	engine_action_free(&a);
	syncro_contact_free(&c);
	syncro_fields_free(&d);
}

/* A contact the dry run would make for another user with the address:
 * a conflict with no contact id to name; the run's registry of what it made
 * finds it by e-mail in any case, per customer. */
TEST(engine_plan_contact_the_run_makes_is_a_conflict_for_a_second_user)
{
	struct err err;
	struct engine_contacts *made = engine_contacts_new();
	CHECK(engine_contacts_made_find(made, 101, "pat@x.com") == NULL);
	engine_contacts_made(made, 101, 0, "Pat@X.com", "t1", "u-first", false);
	engine_contacts_made(made, 101, 3001, "lee@x.com", "t2", "u-lee", false);
	engine_contacts_made(made, 101, 3002, "", "t2", "u-blank", false);   /* no address: nothing to find */
	const struct engine_made *m = engine_contacts_made_find(made, 101, "pat@x.COM");
	CHECK(m != NULL && m->contact_id == 0 && strcmp(m->object_id, "u-first") == 0 && strcmp(m->tenant_id, "t1") == 0);
	m = engine_contacts_made_find(made, 101, "LEE@x.com");
	CHECK(m != NULL && m->contact_id == 3001);
	CHECK(engine_contacts_made_find(made, 102, "lee@x.com") == NULL);
	CHECK(engine_contacts_made_find(made, 101, "") == NULL);
	CHECK(!engine_contacts_has(made, 102));
	/* a user, by mail, then UPN, then the desired e-mail */
	struct syncro_fields want;
	fields_of(&want, "email=LEE@x.com", "customer_id=101", NULL);
	struct engine_user by = { .object_id = "u", .mail = "nobody@x.com", .desired = &want };
	m = engine_contacts_made_match(made, 101, &by);
	CHECK(m != NULL && m->contact_id == 3001);
	by.upn = "pat@x.com";
	m = engine_contacts_made_match(made, 101, &by);
	CHECK(m != NULL && m->contact_id == 0);
	by.mail = "pat@X.com";
	by.upn = "lee@x.com";
	m = engine_contacts_made_match(made, 101, &by);
	CHECK(m != NULL && strcmp(m->object_id, "u-first") == 0);
	CHECK(engine_contacts_made_match(made, 102, &by) == NULL);
	syncro_fields_free(&want);
	engine_contacts_free(made);

	struct syncro_fields d;
	fields_of(&d, "name=Pat Two", "email=pat@x.com", "customer_id=101", NULL);
	struct engine_user u = user_in("u-second", &d);
	u.taken_contact = 0;
	u.taken_note = "the contact this run would make for user u-first of tenant t1 has this e-mail too";
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(NULL, &u, NULL, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_CONFLICT);
	CHECK_EQ_INT(a.ncandidates, 0);
	CHECK_EQ_INT(a.changed, 0);
	CHECK_STR(a.reason, u.taken_note);
	engine_action_free(&a);
	syncro_fields_free(&d);
}

TEST(engine_plan_update_changed_fields_only)
{
	struct err err;
	struct engine_link l = { .contact_id = 7, .customer_id = 101 };
	fields_of(&l.fields, "name=Ann Lee", "email=ann@x.com", "phone=555-1", "title=Clerk", "notes=first",
	          "customer_id=101", NULL);
	struct syncro_fields d;
	/* rename + e-mail change: an update; phone blank in Graph: kept;
	 * mobile nil: never written; notes create_only: not updated */
	fields_of(&d, "name=Ann Smith", "email=ann.smith@x.com", "phone=", "title=Clerk", "notes=second",
	          "customer_id=101", NULL);
	struct engine_user u = user_in("u4", &d);
	struct engine_plan_opts o = { .create_only = 1u << SYNCRO_F_NOTES };
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(&o, &u, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UPDATE);
	CHECK_EQ_INT(a.contact_id, 7);
	CHECK_EQ_INT(a.changed, (1u << SYNCRO_F_NAME) | (1u << SYNCRO_F_EMAIL));
	CHECK_STR(a.before.v[SYNCRO_F_EMAIL], "ann@x.com");
	CHECK_STR(a.after.v[SYNCRO_F_EMAIL], "ann.smith@x.com");
	CHECK(a.after.v[SYNCRO_F_PHONE] == NULL);
	CHECK_STR(a.written.v[SYNCRO_F_PHONE], "555-1");
	CHECK_STR(a.written.v[SYNCRO_F_NOTES], "first");
	engine_action_free(&a);

	/* same values (e-mail in another case): unchanged */
	syncro_fields_free(&d);
	fields_of(&d, "name=Ann Lee", "email=ANN@x.com", "title=Clerk", "customer_id=101", NULL);
	u = user_in("u4", &d);
	REQUIRE_OK(engine_plan_user(&o, &u, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UNCHANGED);
	CHECK_EQ_INT(a.changed, 0);
	engine_action_free(&a);

	/* a field the link never had (NULL) that the policy now gives */
	syncro_fields_free(&d);
	fields_of(&d, "name=Ann Lee", "email=ann@x.com", "city=Oslo", "customer_id=101", NULL);
	u = user_in("u4", &d);
	REQUIRE_OK(engine_plan_user(&o, &u, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UPDATE);
	CHECK_EQ_INT(a.changed, 1u << SYNCRO_F_CITY);
	CHECK(a.before.v[SYNCRO_F_CITY] == NULL);
	engine_action_free(&a);

	/* moving to another customer is an update of customer_id */
	syncro_fields_free(&d);
	fields_of(&d, "name=Ann Lee", "email=ann@x.com", "customer_id=102", NULL);
	u = user_in("u4", &d);
	REQUIRE_OK(engine_plan_user(&o, &u, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UPDATE);
	CHECK_EQ_INT(a.customer_id, 102);
	CHECK_STR(a.after.v[SYNCRO_F_CUSTOMER_ID], "102");
	engine_action_free(&a);
	syncro_fields_free(&d);
	engine_link_free(&l);
}

/* A linked user's update that would give its contact the e-mail another
 * contact of the customer has (renamed to a hand-made contact's address),
 * or move it to a customer where a contact has its e-mail: a conflict on
 * those contacts, nothing written; the other contacts matter only then. */
TEST(engine_plan_update_making_a_second_contact_is_a_conflict)
{
	struct err err;
	struct engine_link l = { .contact_id = 7, .customer_id = 101 };
	fields_of(&l.fields, "name=Ann Lee", "email=ann@x.com", "title=Clerk", "customer_id=101", NULL);
	struct syncro_contact other, other2;
	contact_of(&other, 1059, 101, "Ann.Smith@x.com", "Shared Old");
	contact_of(&other2, 1060, 101, "ann.smith@x.com", "Shared Older");
	const struct syncro_contact *cands[] = { &other, &other2 };
	struct syncro_fields d;
	fields_of(&d, "name=Ann Smith", "email=ann.smith@x.com", "title=Clerk", "customer_id=101", NULL);
	struct engine_user u = user_in("u4", &d);
	u.reason = "in scope";
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(NULL, &u, &l, NULL, cands, 1, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_CONFLICT);
	CHECK_EQ_INT(a.contact_id, 7);
	CHECK_EQ_INT(a.customer_id, 101);
	CHECK_EQ_INT(a.ncandidates, 1);
	CHECK_EQ_INT(a.candidates[0], 1059);
	CHECK_EQ_INT(a.changed, 0);
	CHECK(a.after.v[SYNCRO_F_EMAIL] == NULL && a.written.v[SYNCRO_F_EMAIL] == NULL);
	CHECK_STR(a.object_id, "u4");
	CHECK_STR(a.reason, "contact #1059 of customer 101 has the e-mail ann.smith@x.com already: giving it to the "
	                    "user's contact #7 would make a second one");
	engine_action_free(&a);
	REQUIRE_OK(engine_plan_user(NULL, &u, &l, NULL, cands, 2, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_CONFLICT);
	CHECK_EQ_INT(a.ncandidates, 2);
	CHECK_STR(a.reason, "contacts #1059, #1060 of customer 101 have the e-mail ann.smith@x.com already: giving it "
	                    "to the user's contact #7 would make a second one");
	engine_action_free(&a);

	/* no other contact has it: the update as before */
	REQUIRE_OK(engine_plan_user(NULL, &u, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UPDATE);
	CHECK_STR(a.reason, "in scope");
	engine_action_free(&a);

	/* the e-mail not written on updates (create_only): others holding it do not matter */
	struct engine_plan_opts o = { .create_only = 1u << SYNCRO_F_EMAIL };
	REQUIRE_OK(engine_plan_user(&o, &u, &l, NULL, cands, 1, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UPDATE);
	CHECK_EQ_INT(a.changed, 1u << SYNCRO_F_NAME);
	engine_action_free(&a);

	/* moved to customer 102, where a contact has the e-mail */
	struct syncro_contact there;
	contact_of(&there, 2001, 102, "ANN@x.com", "A. Lee");
	const struct syncro_contact *there_c[] = { &there };
	syncro_fields_free(&d);
	fields_of(&d, "name=Ann Lee", "email=ann@x.com", "title=Clerk", "customer_id=102", NULL);
	u = user_in("u4", &d);
	REQUIRE_OK(engine_plan_user(NULL, &u, &l, NULL, there_c, 1, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_CONFLICT);
	CHECK_EQ_INT(a.customer_id, 102);
	CHECK_EQ_INT(a.candidates[0], 2001);
	CHECK_STR(a.reason, "contact #2001 of customer 102 has the e-mail ann@x.com already: moving the user's contact "
	                    "#7 there from customer 101 would make a second one");
	engine_action_free(&a);

	/* a change of anything else: holders are not the question */
	syncro_fields_free(&d);
	fields_of(&d, "name=Ann Lee", "email=ann@x.com", "title=Manager", "customer_id=101", NULL);
	u = user_in("u4", &d);
	REQUIRE_OK(engine_plan_user(NULL, &u, &l, NULL, there_c, 1, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UPDATE);
	CHECK_EQ_INT(a.changed, 1u << SYNCRO_F_TITLE);
	engine_action_free(&a);
	syncro_contact_free(&there);
	syncro_contact_free(&other);
	syncro_contact_free(&other2);
	syncro_fields_free(&d);
	engine_link_free(&l);
}

TEST(engine_plan_leave_outcomes)
{
	struct err err;
	struct engine_link l = { .contact_id = 9, .customer_id = 101 };
	fields_of(&l.fields, "name=Bo", "email=bo@x.com", "notes=hello", "customer_id=101", NULL);
	struct engine_user u = { .object_id = "u5", .removed = true };
	struct engine_action a;

	CHECK_EQ_INT(engine_user_leaving(&u), ENGINE_WHY_DELETED);
	struct engine_user dis = { .object_id = "u5", .disabled = true };
	CHECK_EQ_INT(engine_user_leaving(&dis), ENGINE_WHY_DISABLED);
	struct engine_user oos = { .object_id = "u5" };
	CHECK_EQ_INT(engine_user_leaving(&oos), ENGINE_WHY_OUT_OF_SCOPE);
	CHECK_STR(engine_why_name(ENGINE_WHY_OUT_OF_SCOPE), "out_of_scope");

	/* on_leave not evaluated: refused */
	CHECK(engine_plan_user(NULL, &u, &l, NULL, NULL, 0, &a, &err) != 0);

	struct engine_leave keep = { .kind = ENGINE_LEAVE_KEEP };
	REQUIRE_OK(engine_plan_user(NULL, &u, &l, &keep, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_KEEP);
	CHECK_EQ_INT(a.why, ENGINE_WHY_DELETED);
	CHECK_EQ_INT(a.changed, 0);
	CHECK(!engine_kind_destructive(a.kind));
	engine_action_free(&a);

	struct engine_leave del = { .kind = ENGINE_LEAVE_DELETE };
	REQUIRE_OK(engine_plan_user(NULL, &dis, &l, &del, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_DELETE);
	CHECK_EQ_INT(a.why, ENGINE_WHY_DISABLED);
	CHECK_EQ_INT(a.contact_id, 9);
	CHECK_STR(a.before.v[SYNCRO_F_NAME], "Bo");
	CHECK(engine_kind_destructive(a.kind));
	engine_action_free(&a);

	struct engine_leave mark = { .kind = ENGINE_LEAVE_CHANGES };
	fields_of(&mark.changes, "notes=[left] 2026-11-26 out_of_scope\nhello", "phone=", "customer_id=999", NULL);
	REQUIRE_OK(engine_plan_user(NULL, &oos, &l, &mark, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_MARK);
	CHECK_EQ_INT(a.why, ENGINE_WHY_OUT_OF_SCOPE);
	/* "" blanks a field on leave; customer_id never moves on leave */
	CHECK_EQ_INT(a.changed, (1u << SYNCRO_F_NOTES) | (1u << SYNCRO_F_PHONE));
	CHECK_STR(a.after.v[SYNCRO_F_PHONE], "");
	CHECK_STR(a.before.v[SYNCRO_F_NOTES], "hello");
	CHECK_STR(a.written.v[SYNCRO_F_CUSTOMER_ID], "101");
	engine_action_free(&a);

	/* marks already there: nothing to write, the contact is kept */
	engine_leave_free(&mark);
	mark.kind = ENGINE_LEAVE_CHANGES;
	fields_of(&mark.changes, "notes=hello", NULL);
	REQUIRE_OK(engine_plan_user(NULL, &oos, &l, &mark, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_KEEP);
	engine_action_free(&a);
	engine_leave_free(&mark);

	/* not linked and out of scope: nothing to do, include's reason kept */
	struct engine_user guest = { .object_id = "g1", .reason = "guest account" };
	REQUIRE_OK(engine_plan_user(NULL, &guest, NULL, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_SKIP);
	CHECK_STR(a.reason, "guest account");
	engine_action_free(&a);
	engine_link_free(&l);
}

TEST(engine_plan_user_who_comes_back_is_updated_not_created)
{
	struct err err;
	/* kept (and marked) while disabled; the link stays */
	struct engine_link l = { .contact_id = 12, .customer_id = 101 };
	fields_of(&l.fields, "name=Cy", "email=cy@x.com", "notes=[left] 2026-01-01 disabled", "customer_id=101", NULL);
	struct syncro_fields d;
	fields_of(&d, "name=Cy", "email=cy@x.com", "notes=back", "customer_id=101", NULL);
	struct engine_user u = user_in("u6", &d);
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(NULL, &u, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UPDATE);
	CHECK_EQ_INT(a.contact_id, 12);
	CHECK_EQ_INT(a.changed, 1u << SYNCRO_F_NOTES);
	engine_action_free(&a);
	syncro_fields_free(&d);
	engine_link_free(&l);
}

TEST(engine_plan_mark_is_recorded_and_taken_out_when_the_user_comes_back)
{
	struct err err;
	struct engine_link l = { .contact_id = 14, .customer_id = 101 };
	fields_of(&l.fields, "name=Di", "email=di@x.com", "phone=555", "customer_id=101", NULL);
	struct engine_user gone = { .object_id = "u8", .label = "u8", .disabled = true };
	struct engine_leave mark = { .kind = ENGINE_LEAVE_CHANGES, .have_now = true };
	fields_of(&mark.changes, "notes=[left] 2026-11-28 disabled\nVIP", "phone=", NULL);
	fields_of(&mark.now, "notes=VIP", "phone=555", NULL);   /* Syncro: a technician's note */
	struct engine_action a;
	REQUIRE_OK(engine_plan_user(NULL, &gone, &l, &mark, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_MARK);
	/* what the marked fields had before: Syncro's ("" for nothing) */
	CHECK_STR(a.marked, "{\"phone\":\"555\",\"notes\":\"VIP\"}");
	engine_action_free(&a);
	engine_leave_free(&mark);

	/* a second mark of the same leave keeps what the first replaced */
	fields_of(&l.marked, "notes=VIP", NULL);
	mark = (struct engine_leave){ .kind = ENGINE_LEAVE_CHANGES };
	fields_of(&mark.changes, "title=gone", NULL);
	REQUIRE_OK(engine_plan_user(NULL, &gone, &l, &mark, NULL, 0, &a, &err), &err);
	CHECK_STR(a.marked, "{\"title\":\"\",\"notes\":\"VIP\"}");
	engine_action_free(&a);
	engine_leave_free(&mark);

	/* back in scope: the mark taken out of what Syncro has now (a line a
	 * technician added below kept); the phone contact() sets is its own */
	syncro_fields_free(&l.fields);
	syncro_fields_free(&l.marked);
	fields_of(&l.fields, "name=Di", "email=di@x.com", "phone=", "notes=[left] 2026-11-28 disabled\nVIP",
	          "customer_id=101", NULL);
	fields_of(&l.marked, "notes=VIP", "phone=555", NULL);
	fields_of(&l.now, "name=Di", "phone=", "notes=[left] 2026-11-28 disabled\nVIP\ncalled", NULL);
	l.have_now = true;
	struct syncro_fields d;
	fields_of(&d, "name=Di", "email=di@x.com", "phone=556", "customer_id=101", NULL);
	struct engine_user back = user_in("u8", &d);
	REQUIRE_OK(engine_plan_user(NULL, &back, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_EQ_INT(a.kind, ENGINE_UPDATE);
	CHECK_EQ_INT(a.changed, (1u << SYNCRO_F_NOTES) | (1u << SYNCRO_F_PHONE));
	CHECK_STR(a.after.v[SYNCRO_F_NOTES], "VIP\ncalled");
	CHECK_STR(a.before.v[SYNCRO_F_NOTES], "[left] 2026-11-28 disabled\nVIP\ncalled");
	CHECK_STR(a.written.v[SYNCRO_F_NOTES], "VIP\ncalled");
	CHECK_STR(a.after.v[SYNCRO_F_PHONE], "556");
	CHECK(a.marked == NULL);
	engine_action_free(&a);

	/* notes contact() writes only on create: the mark is taken out all the same */
	struct engine_plan_opts o = { .create_only = 1u << SYNCRO_F_NOTES };
	syncro_fields_set(&d, SYNCRO_F_NOTES, "Licences: E3");
	REQUIRE_OK(engine_plan_user(&o, &back, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_STR(a.after.v[SYNCRO_F_NOTES], "VIP\ncalled");
	engine_action_free(&a);
	/* notes contact() does set: its value, as for any update */
	REQUIRE_OK(engine_plan_user(NULL, &back, &l, NULL, NULL, 0, &a, &err), &err);
	CHECK_STR(a.after.v[SYNCRO_F_NOTES], "Licences: E3");
	engine_action_free(&a);
	syncro_fields_free(&d);
	engine_link_free(&l);
}

TEST(engine_unmarked_takes_the_mark_out_of_what_the_contact_has)
{
	const char *wrote = "[left] 2026-11-28 disabled\nVIP";
	CHECK_STR(engine_unmarked(wrote, wrote, "VIP"), "VIP");
	CHECK_STR(engine_unmarked("[left] 2026-11-28 disabled\nVIP\nmore", wrote, "VIP"), "VIP\nmore");
	/* nothing below the mark before it: a line typed below it since is kept */
	CHECK_STR(engine_unmarked("[left] 2026-11-28 disabled", "[left] 2026-11-28 disabled", ""), "");
	CHECK_STR(engine_unmarked("[left] 2026-11-28 disabled\nnew", "[left] 2026-11-28 disabled", ""), "new");
	/* the mark taken out, or changed, by hand: what the contact has stands */
	CHECK_STR(engine_unmarked("VIP", wrote, "VIP"), "VIP");
	CHECK_STR(engine_unmarked(NULL, wrote, "VIP"), "");
	/* a replaced value: the old one back while the mark is there */
	CHECK_STR(engine_unmarked("", "", "555"), "555");
	CHECK_STR(engine_unmarked("777", "", "555"), "777");
	/* notes cut to fit under the mark: the whole old notes back */
	CHECK_STR(engine_unmarked("[left] x\nVI[cut]", "[left] x\nVI[cut]", "VIP"), "VIP");
}

TEST(engine_plan_rejects_inconsistent_input)
{
	struct err err;
	struct engine_user u = { .object_id = "u7", .included = true };   /* no desired */
	struct engine_action a;
	CHECK(engine_plan_user(NULL, &u, NULL, NULL, NULL, 0, &a, &err) != 0);
	struct syncro_fields d;
	fields_of(&d, "name=No Customer", NULL);
	u.desired = &d;
	CHECK(engine_plan_user(NULL, &u, NULL, NULL, NULL, 0, &a, &err) != 0);
	CHECK_CONTAINS(err.msg, "no Syncro customer");
	syncro_fields_free(&d);
}

TEST(engine_contacts_index_matches_mail_then_upn)
{
	struct engine_contacts *ix = engine_contacts_new();
	struct syncro_contact_list l = { .items = xcalloc(4, sizeof(struct syncro_contact)), .n = 4 };
	contact_of(&l.items[0], 1, 101, "Ann@X.com", "Ann");
	contact_of(&l.items[1], 2, 101, "ann.upn@x.com", "Ann upn");
	contact_of(&l.items[2], 3, 101, NULL, "Front desk");
	contact_of(&l.items[3], 4, 101, "dup@x.com", "Dup");
	engine_contacts_add(ix, 101, &l);
	CHECK(l.items == NULL);
	CHECK(engine_contacts_has(ix, 101));
	CHECK(!engine_contacts_has(ix, 102));

	const struct syncro_contact *out[4];
	CHECK_EQ_INT(engine_contacts_find(ix, 101, "ann@x.COM", out, 4), 1);
	CHECK_EQ_INT(out[0]->id, 1);
	CHECK_EQ_INT(engine_contacts_find(ix, 101, "", out, 4), 0);
	CHECK_EQ_INT(engine_contacts_find(ix, 102, "ann@x.com", out, 4), 0);

	struct engine_user u = { .object_id = "u", .mail = "nobody@x.com", .upn = "ANN.UPN@x.com" };
	CHECK_EQ_INT(engine_contacts_match(ix, 101, &u, out, 4), 1);
	CHECK_EQ_INT(out[0]->id, 2);
	u.mail = "ann@x.com";    /* mail first */
	CHECK_EQ_INT(engine_contacts_match(ix, 101, &u, out, 4), 1);
	CHECK_EQ_INT(out[0]->id, 1);

	/* a taken (linked) contact is no candidate */
	engine_contacts_take(ix, 101, 1);
	CHECK_EQ_INT(engine_contacts_match(ix, 101, &u, out, 4), 1);
	CHECK_EQ_INT(out[0]->id, 2);
	CHECK(engine_contacts_get(ix, 101, 3) != NULL);
	CHECK(engine_contacts_get(ix, 101, 99) == NULL);

	/* duplicates: both come back, counted past max */
	struct syncro_contact_list l2 = { .items = xcalloc(3, sizeof(struct syncro_contact)), .n = 3 };
	contact_of(&l2.items[0], 11, 101, "dup@x.com", "A");
	contact_of(&l2.items[1], 12, 101, "DUP@x.com", "B");
	contact_of(&l2.items[2], 13, 101, "dup@x.com", "C");
	engine_contacts_add(ix, 101, &l2);   /* replaces the list */
	CHECK_EQ_INT(engine_contacts_find(ix, 101, "dup@x.com", out, 2), 3);
	CHECK_EQ_INT(engine_contacts_find(ix, 101, "ann@x.com", out, 2), 0);

	/* holders of an e-mail: taken ones too, all but the one named */
	engine_contacts_take(ix, 101, 12);
	CHECK_EQ_INT(engine_contacts_find(ix, 101, "dup@x.com", out, 4), 2);
	CHECK_EQ_INT(engine_contacts_holding(ix, 101, "Dup@X.com", 0, out, 4), 3);
	CHECK_EQ_INT(engine_contacts_holding(ix, 101, "dup@x.com", 11, out, 4), 2);
	CHECK_EQ_INT(out[0]->id, 12);
	CHECK_EQ_INT(out[1]->id, 13);
	CHECK_EQ_INT(engine_contacts_holding(ix, 101, "", 0, out, 4), 0);
	CHECK_EQ_INT(engine_contacts_holding(ix, 102, "dup@x.com", 0, out, 4), 0);
	engine_contacts_free(ix);
}

/* Contacts by id (what sync --verify asks for every link): found whatever
 * the order Syncro listed them in, the right one, none for an id not
 * listed, for an empty list, or after the list was replaced. */
TEST(engine_contacts_get_by_id_in_any_order)
{
	struct engine_contacts *ix = engine_contacts_new();
	static const long long ids[] = { 907, 15, 300, 2, 88, 1000, 41 };
	enum { N = sizeof ids / sizeof *ids };
	struct syncro_contact_list l = { .items = xcalloc(N, sizeof(struct syncro_contact)), .n = N };
	for (size_t i = 0; i < N; i++) contact_of(&l.items[i], ids[i], 101, NULL, "C");
	engine_contacts_add(ix, 101, &l);
	for (size_t i = 0; i < N; i++) {
		const struct syncro_contact *c = engine_contacts_get(ix, 101, ids[i]);
		CHECK(c != NULL && c->id == ids[i]);
	}
	CHECK(engine_contacts_get(ix, 101, 1) == NULL);
	CHECK(engine_contacts_get(ix, 101, 301) == NULL);
	CHECK(engine_contacts_get(ix, 101, 5000) == NULL);
	CHECK(engine_contacts_get(ix, 102, 15) == NULL);
	struct syncro_contact_list none = {0};
	engine_contacts_add(ix, 103, &none);
	CHECK(engine_contacts_get(ix, 103, 15) == NULL);
	struct syncro_contact_list l2 = { .items = xcalloc(1, sizeof(struct syncro_contact)), .n = 1 };
	contact_of(&l2.items[0], 5, 101, NULL, "New");
	engine_contacts_add(ix, 101, &l2);   /* replaces the list */
	CHECK(engine_contacts_get(ix, 101, 907) == NULL);
	CHECK(engine_contacts_get(ix, 101, 5) != NULL);
	engine_contacts_free(ix);
}

TEST(engine_guard_limits)
{
	char why[256];
	struct engine_guard g = { .links = 20, .removals = 5, .present_users = 20, .max_count = -1, .max_percent = -1 };
	CHECK(!engine_guard_check(&g, why, sizeof why));       /* 5 = max(5, 2): allowed */
	g.removals = 6;
	CHECK(engine_guard_check(&g, why, sizeof why));
	CHECK_CONTAINS(why, "6 of 20");
	g.allow_removals = true;
	CHECK(!engine_guard_check(&g, why, sizeof why));
	g.allow_removals = false;
	g.links = 1000;                                          /* 10 % = 100 */
	g.removals = 100;
	CHECK(!engine_guard_check(&g, why, sizeof why));
	g.removals = 101;
	CHECK(engine_guard_check(&g, why, sizeof why));
	g.max_percent = 50;                                      /* per-tenant policy */
	CHECK(!engine_guard_check(&g, why, sizeof why));
	g.max_percent = 0;
	g.max_count = 0;
	g.removals = 1;
	CHECK(engine_guard_check(&g, why, sizeof why));
	g.removals = 0;
	CHECK(!engine_guard_check(&g, why, sizeof why));
	/* empty source */
	g.present_users = 0;
	CHECK(engine_guard_check(&g, why, sizeof why));
	CHECK_CONTAINS(why, "no users");
	g.links = 0;
	CHECK(!engine_guard_check(&g, why, sizeof why));
}

TEST(engine_fields_json_roundtrip)
{
	struct err err;
	struct syncro_fields a, b = {0};
	fields_of(&a, "name=Zoë \"Z\" Ng", "email=z@x.com", "phone=", "customer_id=101", NULL);
	char *js = engine_fields_to_json(&a);
	CHECK_CONTAINS(js, "\"customer_id\":101");
	CHECK_CONTAINS(js, "\"phone\":\"\"");
	REQUIRE_OK(engine_fields_from_json(js, &b, &err), &err);
	for (int f = 0; f < SYNCRO_NFIELDS; f++) CHECK(!engine_field_differs((enum syncro_field)f, a.v[f], b.v[f]));
	CHECK(engine_fields_from_json("[1]", &b, &err) != 0);
	REQUIRE_OK(engine_fields_from_json(NULL, &b, &err), &err);
	CHECK(b.v[SYNCRO_F_NAME] == NULL);
	free(js);
	syncro_fields_free(&a);
	syncro_fields_free(&b);

	unsigned mask;
	const char *names[] = { "notes", "title" };
	REQUIRE_OK(engine_fields_mask(names, 2, &mask, &err), &err);
	CHECK_EQ_INT(mask, (1u << SYNCRO_F_NOTES) | (1u << SYNCRO_F_TITLE));
	const char *bad[] = { "nots" };
	CHECK(engine_fields_mask(bad, 1, &mask, &err) != 0);
	CHECK(engine_blank(" \t"));
	CHECK(!engine_blank(" x"));
}

TEST(engine_stamp_matches_the_link_column)
{
	struct err err;
	struct syncro_fields a, b = {0};
	bool leaving = false;
	CHECK(engine_stamp_matches("0123456789abcdef:k", "0123456789abcdef", &leaving));
	CHECK(leaving);
	CHECK(engine_stamp_matches("0123456789abcdef", "0123456789abcdef", &leaving));
	CHECK(!leaving);
	CHECK(!engine_stamp_matches("0123456789abcdee", "0123456789abcdef", NULL));
	CHECK(!engine_stamp_matches("0123456789abcdef:x", "0123456789abcdef", NULL));
	CHECK(!engine_stamp_matches("0123456789abcdef0", "0123456789abcdef", NULL));
	CHECK(!engine_stamp_matches(NULL, "0123456789abcdef", NULL));
	CHECK(!engine_stamp_matches("0123456789abcdef", "0123", NULL));
	/* a link's fields JSON holds contact fields only; a legacy _stamp is ignored */
	fields_of(&a, "name=Ann", "customer_id=101", NULL);
	char *js = engine_fields_to_json(&a);
	CHECK(!strstr(js, "stamp"));
	free(js);
	REQUIRE_OK(engine_fields_from_json("{\"_stamp\":\"0123456789abcdef\",\"name\":\"Ann\",\"customer_id\":101}", &b,
	                                   &err), &err);
	CHECK_STR(b.v[SYNCRO_F_NAME], "Ann");
	CHECK_STR(b.v[SYNCRO_F_CUSTOMER_ID], "101");
	/* numbers read as text, as a double prints them; escapes decoded */
	static const struct { const char *json, *want; } nums[] = {
		{ "{\"phone\":-0}", "0" }, { "{\"phone\":1.5}", "1.5" }, { "{\"phone\":1e3}", "1000" },
		{ "{\"phone\":-42}", "-42" }, { "{\"phone\":123456789012345}", "123456789012345" },
		{ "{\"phone\":12345678901234567}", "12345678901234568" },
		{ "{\"phone\":\"\\u00c5 \\\"x\\\"\"}", "\xc3\x85 \"x\"" },
	};
	for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
		REQUIRE_OK(engine_fields_from_json(nums[i].json, &b, &err), &err);
		CHECK_STR(b.v[SYNCRO_F_PHONE], nums[i].want);
	}
	CHECK(engine_fields_from_json("{\"phone\":\"bad\\q\"}", &b, &err) != 0);
	CHECK(engine_fields_from_json("[1]", &b, &err) != 0);
	/* the fingerprint depends on every byte and on where it starts */
	uint64_t h1 = engine_hash(ENGINE_STAMP_SEED, "abcdefghij", 10), h2 = engine_hash(ENGINE_STAMP_SEED, "abcdefghik", 10);
	CHECK(h1 != h2);
	CHECK(engine_hash(1, "abcdefghij", 10) != h1);
	CHECK(engine_hash(ENGINE_STAMP_SEED, "abcdefghij", 10) == h1);
	syncro_fields_free(&a);
	syncro_fields_free(&b);
}

/* engine_fields_same_json says yes exactly when the text is what
 * engine_fields_to_json writes for the non-blank fields. */
TEST(engine_fields_same_json_matches_the_written_text)
{
	static const char *const values[] = {
		"Ann", "", "  ", "quote \" back \\ slash", "tab\tnew\nline\r\b\f", "ctl \x01\x1f end", "Zoë Ångström",
		"€ 😀", "101", "-7", "2147483647", "2147483648", "0101", "12x", "/slash/",
		"0", "-0", "999999999", "-2147483647", "1000000000",
	};
	unsigned seed = 7;
	for (int round = 0; round < 400; round++) {
		struct syncro_fields fs = {0}, nonblank = {0};
		for (int f = 0; f < SYNCRO_NFIELDS; f++) {
			seed = seed * 1103515245 + 12345;
			if ((seed >> 16) % 3 == 0) continue;
			const char *v = values[(seed >> 8) % (sizeof values / sizeof *values)];
			syncro_fields_set(&fs, (enum syncro_field)f, v);
			if (!engine_blank(v)) syncro_fields_set(&nonblank, (enum syncro_field)f, v);
		}
		char *js = engine_fields_to_json(&nonblank);
		bool big = nonblank.v[SYNCRO_F_CUSTOMER_ID] && strcmp(nonblank.v[SYNCRO_F_CUSTOMER_ID], "2147483648") == 0;
		if (engine_fields_same_json(&fs, js) == big)   /* too big for "%d": always "unsure" */
			t_fail(__FILE__, __LINE__, "round %d: %s", round, js);
		/* any change of a value is seen */
		for (int f = 0; f < SYNCRO_NFIELDS; f++) {
			if (!nonblank.v[f]) continue;
			char *was = xstrdup(fs.v[f]);
			syncro_fields_set(&fs, (enum syncro_field)f, "changed");
			if (engine_fields_same_json(&fs, js)) t_fail(__FILE__, __LINE__, "round %d: change unseen", round);
			syncro_fields_set(&fs, (enum syncro_field)f, was);
			free(was);
			break;
		}
		free(js);
		syncro_fields_free(&fs);
		syncro_fields_free(&nonblank);
	}
	CHECK(!engine_fields_same_json(&(struct syncro_fields){0}, NULL));
	CHECK(engine_fields_same_json(&(struct syncro_fields){0}, "{}"));
	CHECK(!engine_fields_same_json(&(struct syncro_fields){0}, "{} "));
}

/* An action owns its strings (one block, engine_action_own): it outlives
 * the user, link, leave and candidates it was planned from, and a value
 * written as sent is the same copy. */
TEST(engine_plan_action_outlives_its_inputs)
{
	struct err err;
	struct engine_action a[4];
	struct syncro_fields d;
	fields_of(&d, "name=Ann Lee", "email=ann@x.com", "title=", "customer_id=101", NULL);
	char *id = xstrdup("u1"), *label = xstrdup("Ann <ann@x.com>"), *reason = xstrdup("member");
	struct engine_user u = { .object_id = id, .label = label, .reason = reason, .included = true, .desired = &d };
	struct syncro_contact c;
	contact_of(&c, 7, 101, "ann@x.com", "A. Lee");
	syncro_fields_set(&c.f, SYNCRO_F_MOBILE, "555");
	const struct syncro_contact *cands[] = { &c };
	struct engine_link link = { .contact_id = 8, .customer_id = 101 };
	fields_of(&link.fields, "name=Ann", "notes=old", NULL);
	struct engine_leave keep = { .kind = ENGINE_LEAVE_KEEP };
	REQUIRE_OK(engine_plan_user(NULL, &u, NULL, NULL, NULL, 0, &a[0], &err), &err);   /* create */
	REQUIRE_OK(engine_plan_user(NULL, &u, NULL, NULL, cands, 1, &a[1], &err), &err);  /* adopt */
	REQUIRE_OK(engine_plan_user(NULL, &u, &link, NULL, NULL, 0, &a[2], &err), &err);  /* update */
	u.included = false;
	REQUIRE_OK(engine_plan_user(NULL, &u, &link, &keep, NULL, 0, &a[3], &err), &err); /* keep */
	/* the inputs are gone (ASan/valgrind see any use of them) */
	free(id);
	free(label);
	free(reason);
	syncro_fields_free(&d);
	syncro_contact_free(&c);
	engine_link_free(&link);

	CHECK_EQ_INT(a[0].kind, ENGINE_CREATE);
	CHECK_STR(a[0].object_id, "u1");
	CHECK_STR(a[0].label, "Ann <ann@x.com>");
	CHECK_STR(a[0].reason, "member");
	CHECK_STR(a[0].after.v[SYNCRO_F_NAME], "Ann Lee");
	CHECK(a[0].written.v[SYNCRO_F_NAME] == a[0].after.v[SYNCRO_F_NAME]);   /* one copy */
	CHECK(a[0].after.v[SYNCRO_F_TITLE] == NULL && a[0].written.v[SYNCRO_F_TITLE] == NULL);

	CHECK_EQ_INT(a[1].kind, ENGINE_ADOPT);
	CHECK_STR(a[1].before.v[SYNCRO_F_NAME], "A. Lee");
	CHECK_STR(a[1].after.v[SYNCRO_F_NAME], "Ann Lee");
	CHECK_STR(a[1].written.v[SYNCRO_F_NAME], "Ann Lee");
	CHECK_STR(a[1].written.v[SYNCRO_F_MOBILE], "555");   /* the contact's own value */
	CHECK(a[1].after.v[SYNCRO_F_MOBILE] == NULL);

	CHECK_EQ_INT(a[2].kind, ENGINE_UPDATE);
	CHECK_STR(a[2].before.v[SYNCRO_F_NAME], "Ann");
	CHECK_STR(a[2].written.v[SYNCRO_F_NOTES], "old");
	CHECK_STR(a[2].written.v[SYNCRO_F_EMAIL], "ann@x.com");

	CHECK_EQ_INT(a[3].kind, ENGINE_KEEP);
	CHECK_STR(a[3].written.v[SYNCRO_F_NAME], "Ann");
	CHECK_STR(a[3].written.v[SYNCRO_F_NOTES], "old");
	CHECK(a[3].reason && strcmp(a[3].reason, "member") == 0);
	for (int i = 0; i < 4; i++) engine_action_free(&a[i]);

	/* an action made by hand, owned afterwards */
	struct engine_action h = { .kind = ENGINE_UNCHANGED };
	char *oid = xstrdup("u9");
	h.object_id = oid;
	engine_action_own(&h);
	free(oid);
	CHECK_STR(h.object_id, "u9");
	CHECK(h.label == NULL && h.pool != NULL);
	engine_action_free(&h);
	CHECK(h.pool == NULL && h.object_id == NULL);
}
