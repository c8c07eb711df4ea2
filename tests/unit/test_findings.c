/* test_findings — the licence finding rules (src/report/findings.c). */
#include "t.h"

#include <string.h>

#include "report/alerts.h"
#include "report/findings.h"
#include "report/report.h"
#include "util/when.h"

static size_t count_kind(const struct findings *f, enum finding_kind k)
{
	size_t n = 0;
	for (size_t i = 0; i < f->n; i++) n += f->v[i].kind == k;
	return n;
}

TEST(findings_unused_threshold_and_billable)
{
	struct findings f = {0};
	struct findings_sku s = { .sku_id = "a", .name = "E3", .purchased = 10, .assigned = 7, .unused_days = 30,
	                          .billable = true };
	findings_check_sku(&f, "t1", &s, 30);
	REQUIRE(f.n == 1);
	CHECK_EQ_INT(f.v[0].kind, FINDING_UNUSED);
	CHECK_EQ_INT(f.v[0].count, 3);
	CHECK_EQ_INT(f.v[0].days, 30);
	CHECK_STR(f.v[0].message, "E3: 3 of 10 seats unused for 30 days in a row");
	s.unused_least = 1;                      /* 3 free today, 1 on some day of the run */
	findings_check_sku(&f, "t1", &s, 30);
	REQUIRE(f.n == 2);
	CHECK_STR(f.v[1].message, "E3: 3 of 10 seats unused, at least 1 of them for 30 days in a row");
	CHECK_STR(f.v[1].alert_text, f.v[0].alert_text);      /* the alert follows today's seats */
	findings_free(&f);
	s.unused_least = 3;
	findings_check_sku(&f, "t1", &s, 30);
	CHECK_STR(f.v[0].message, "E3: 3 of 10 seats unused for 30 days in a row");
	s.unused_days = 29;                      /* one day short */
	findings_check_sku(&f, "t1", &s, 30);
	CHECK_EQ_INT(f.n, 1);
	s.unused_days = 400;
	s.billable = false;                      /* free SKUs are never unused */
	findings_check_sku(&f, "t1", &s, 30);
	CHECK_EQ_INT(f.n, 1);
	s.billable = true;
	findings_check_sku(&f, "t1", &s, 0);     /* threshold 0: off */
	CHECK_EQ_INT(f.n, 1);
	s.assigned = 10;                         /* nothing free */
	findings_check_sku(&f, "t1", &s, 1);
	CHECK_EQ_INT(f.n, 1);
	findings_free(&f);
	CHECK(f.n == 0 && f.v == NULL);
}

TEST(findings_over_assigned_and_units)
{
	struct findings f = {0};
	struct findings_sku s = { .sku_id = "b", .name = "EMS", .purchased = 5, .assigned = 11, .suspended = 2,
	                          .warning = 3, .locked_out = 1, .unused_days = 0, .billable = true };
	findings_check_sku(&f, "t1", &s, 30);
	CHECK_EQ_INT(f.n, 4);
	CHECK_EQ_INT(count_kind(&f, FINDING_OVER_ASSIGNED), 1);
	CHECK_EQ_INT(count_kind(&f, FINDING_WARNING), 1);
	CHECK_EQ_INT(count_kind(&f, FINDING_SUSPENDED), 1);
	CHECK_EQ_INT(count_kind(&f, FINDING_LOCKED_OUT), 1);
	for (size_t i = 0; i < f.n; i++) {
		const struct finding *x = &f.v[i];
		if (x->kind == FINDING_OVER_ASSIGNED) {
			CHECK_EQ_INT(x->count, 3);
			CHECK_EQ_INT(x->severity, FINDING_CRIT);
			CHECK_STR(x->message, "EMS: 11 seats assigned, only 8 usable (5 purchased, 3 in the grace period): 3 over");
		}
		if (x->kind == FINDING_WARNING) CHECK_EQ_INT(x->count, 3);
		if (x->kind == FINDING_SUSPENDED) CHECK_EQ_INT(x->count, 2);
		if (x->kind == FINDING_LOCKED_OUT) CHECK_EQ_INT(x->count, 1);
		CHECK_STR(x->sku_id, "b");
		CHECK_STR(x->tenant_id, "t1");
	}
	findings_free(&f);
}

/* Seats in the grace period (prepaidUnits.warning: the subscription expired,
 * its seats still work until it is suspended) count as usable: holding one is
 * not over-assignment, only the grace period's own warning. */
TEST(findings_grace_seats_are_not_over_assigned)
{
	struct findings f = {0};
	struct findings_sku s = { .sku_id = "c", .name = "Business Basic", .purchased = 0, .assigned = 1, .warning = 4,
	                          .billable = true };
	findings_check_sku(&f, "t1", &s, 30);
	REQUIRE(f.n == 1);
	CHECK_EQ_INT(f.v[0].kind, FINDING_WARNING);
	CHECK_EQ_INT(f.v[0].count, 4);
	/* more assigned than enabled and grace seats together is over-assigned */
	s.purchased = 2;
	s.warning = 3;
	s.assigned = 6;
	findings_check_sku(&f, "t1", &s, 30);
	REQUIRE(f.n == 3);
	CHECK_EQ_INT(count_kind(&f, FINDING_OVER_ASSIGNED), 1);
	for (size_t i = 1; i < f.n; i++)
		if (f.v[i].kind == FINDING_OVER_ASSIGNED) {
			CHECK_EQ_INT(f.v[i].count, 1);
			CHECK_STR(f.v[i].message, "Business Basic: 6 seats assigned, only 5 usable (2 purchased, 3 in the "
			                          "grace period): 1 over");
		}
	findings_free(&f);
}

TEST(findings_of_an_older_day_say_it)
{
	struct findings f = {0};
	struct findings_sku s = { .sku_id = "c", .name = "Business Basic", .purchased = 5, .assigned = 3, .suspended = 2,
	                          .billable = true };
	findings_check_sku(&f, "t0", &s, 30);   /* another tenant's, of the newest day */
	size_t first = f.n;
	findings_check_sku(&f, "t1", &s, 30);
	findings_mark_day(&f, first, "2026-11-10");
	REQUIRE(f.n == 2 * first);
	CHECK_STR(f.v[first].message, "Business Basic: 2 seats suspended (unusable, data kept) (licence counts of "
	                              "2026-11-10, the tenant's newest)");
	CHECK_STR(f.v[first].alert_text, "Business Basic: 2 seats suspended (unusable, data kept)");
	CHECK_STR(f.v[0].message, "Business Basic: 2 seats suspended (unusable, data kept)");   /* the others' as they were */
	findings_free(&f);
}

TEST(findings_users)
{
	struct findings f = {0};
	const char *two[] = { "Office 365 E3", "EMS E3" };
	const char *three[] = { "A", "B", "C" };
	struct findings_user u = { .object_id = "u1", .upn = "ann@x.com", .enabled = true, .skus = two, .nskus = 2 };
	findings_check_user(&f, "t1", &u);
	CHECK_EQ_INT(f.n, 0);                    /* enabled and present: fine */
	u.enabled = false;
	findings_check_user(&f, "t1", &u);
	REQUIRE(f.n == 1);
	CHECK_EQ_INT(f.v[0].kind, FINDING_DISABLED_USER);
	CHECK_STR(f.v[0].message, "disabled user ann@x.com holds Office 365 E3 and EMS E3");
	CHECK_EQ_INT(f.v[0].count, 2);
	/* soft-deleted (Graph's @removed reason "changed"): restorable for 30 days */
	struct findings_user d = { .object_id = "u2", .upn = NULL, .enabled = true, .removed = "changed",
	                           .removed_at = "2025-03-04T10:00:00Z", .skus = three, .nskus = 3,
	                           .as_of = when_parse_iso("2025-03-20T00:00:00Z") };
	findings_check_user(&f, "t1", &d);
	REQUIRE(f.n == 2);
	CHECK_EQ_INT(f.v[1].kind, FINDING_DELETED_USER);
	CHECK_STR(f.v[1].message, "deleted user u2 was last seen holding A, B and C (deleted 2025-03-04, restorable "
	                          "until 2025-04-03)");
	CHECK_STR(f.v[1].upn, "u2");
	d.nskus = 0;                             /* no licence: nothing to say */
	findings_check_user(&f, "t1", &d);
	CHECK_EQ_INT(f.n, 2);
	d.nskus = 3;
	d.as_of = when_parse_iso("2025-04-03T10:00:01Z");   /* past Microsoft's 30 days: gone for good */
	findings_check_user(&f, "t1", &d);
	CHECK_EQ_INT(f.n, 2);
	d.as_of = when_parse_iso("2025-03-05T00:00:00Z");
	d.removed = "deleted";                   /* deleted for good (hard delete): its seats are free */
	findings_check_user(&f, "t1", &d);
	CHECK_EQ_INT(f.n, 2);
	findings_free(&f);
}

TEST(findings_sort_and_names)
{
	struct findings f = {0};
	struct findings_sku unused = { .sku_id = "a", .name = "Z", .purchased = 3, .assigned = 1, .unused_days = 9,
	                               .billable = true };
	struct findings_sku over = { .sku_id = "b", .name = "Y", .purchased = 1, .assigned = 2 };
	findings_check_sku(&f, "t2", &unused, 5);
	findings_add_alert(&f, "t1", "score fell");
	findings_check_sku(&f, "t2", &over, 5);
	findings_sort(&f);
	REQUIRE(f.n == 3);
	CHECK_EQ_INT(f.v[0].kind, FINDING_OVER_ASSIGNED);   /* crit first */
	CHECK_STR(f.v[1].tenant_id, "t1");                 /* then by tenant */
	CHECK_EQ_INT(f.v[1].kind, FINDING_SCORE_ALERT);
	CHECK_EQ_INT(f.v[2].kind, FINDING_UNUSED);
	for (int k = 0; k < FINDING_NKINDS; k++) CHECK(strcmp(finding_kind_name((enum finding_kind)k), "?") != 0);
	CHECK_STR(finding_kind_name(FINDING_DELETED_USER), "deleted_user");
	CHECK_STR(finding_severity_name(FINDING_CRIT), "crit");
	findings_free(&f);
}

TEST(findings_failing_threshold_and_stable_message)
{
	struct findings f = {0};
	const double now = 1780272000.0;   /* 2026-06-01T00:00:00Z */
	struct findings_failing x = { .since = "2026-05-31T00:00:00Z", .runs = 24,
	                              .reason = "tenant t1: consent for the app a1 is missing (AADSTS65001): grant it: "
	                                        "https://login.example/t1/adminconsent?client_id=a1 (trace id 4f1c-77)" };
	findings_check_failing(&f, "t1", &x, now, 0);          /* 0: never */
	CHECK_EQ_INT(f.n, 0);
	findings_check_failing(&f, "t1", &x, now, 25);         /* failing 24 h, not 25 */
	CHECK_EQ_INT(f.n, 0);
	findings_check_failing(&f, "t1", &x, now, 24);
	REQUIRE(f.n == 1);
	CHECK_EQ_INT(f.v[0].kind, FINDING_FAILING);
	CHECK_EQ_INT(f.v[0].severity, FINDING_CRIT);
	CHECK_STR(f.v[0].tenant_id, "t1");
	CHECK_STR(f.v[0].message, "entrasync has failed to pull or sync this tenant since 2026-05-31T00:00:00Z: tenant t1: "
	                          "consent for the app a1 is missing (AADSTS65001): grant it: "
	                          "https://login.example/t1/adminconsent?client_id=a1");
	/* the same failure with another trace id (and a request id) reads the same */
	x.reason = "tenant t1: consent for the app a1 is missing (AADSTS65001): grant it: "
	           "https://login.example/t1/adminconsent?client_id=a1 (trace id 9a9a-01)";
	findings_check_failing(&f, "t1", &x, now, 24);
	REQUIRE(f.n == 2);
	CHECK_STR(f.v[1].message, f.v[0].message);
	x.reason = "tenant t1: GET /users/delta: HTTP 500 (request-id r-1) after retries";
	findings_check_failing(&f, "t1", &x, now, 24);
	REQUIRE(f.n == 3);
	CHECK_STR(f.v[2].message, "entrasync has failed to pull or sync this tenant since 2026-05-31T00:00:00Z: tenant t1: "
	                          "GET /users/delta: HTTP 500 after retries");
	/* the last pull or sync that reached the tenant, when the history holds it, is what the message names */
	x.last_reached = "2026-05-30T23:00:05Z";
	findings_check_failing(&f, "t1", &x, now, 24);
	REQUIRE(f.n == 4);
	CHECK_STR(f.v[3].message, "entrasync has not pulled or synced this tenant since 2026-05-30T23:00:05Z (failing "
	                          "since 2026-05-31T00:00:00Z): tenant t1: GET /users/delta: HTTP 500 after retries");
	x.last_reached = NULL;
	/* an unclosed "(trace id" stays as it is; no reason recorded says so */
	x.reason = "cut short (trace id 12";
	findings_check_failing(&f, "t1", &x, now, 24);
	REQUIRE(f.n == 5);
	CHECK(strstr(f.v[4].message, ": cut short (trace id 12") != NULL);
	x.reason = NULL;
	findings_check_failing(&f, "t1", &x, now, 24);
	REQUIRE(f.n == 6);
	CHECK(strstr(f.v[5].message, ": no reason recorded") != NULL);
	/* the latest run did not fail: nothing */
	x.runs = 0;
	findings_check_failing(&f, "t1", &x, now, 1);
	CHECK_EQ_INT(f.n, 6);
	CHECK_STR(finding_kind_name(FINDING_FAILING), "failing");
	findings_free(&f);
}

/* An alert's digest (what tells a later run that its ticket needs a
 * comment) does not move with an unused licence's running count of days,
 * and moves with its seats. */
static void unused_digest(long long assigned, int days, char out[17])
{
	struct report r;
	memset(&r, 0, sizeof r);
	struct findings_sku s = { .sku_id = "a", .name = "E3", .purchased = 10, .assigned = assigned,
	                          .unused_days = days, .billable = true };
	findings_check_sku(&r.findings, "t1", &s, 30);
	struct alerts al;
	alerts_collect(&r, NULL, &al);
	out[0] = '\0';
	if (al.n == 1) memcpy(out, al.v[0].digest, 17);
	alerts_free(&al);
	findings_free(&r.findings);
}

TEST(findings_unused_alert_digest_ignores_the_days)
{
	char d30[17], d31[17], d90[17], fewer[17];
	unused_digest(7, 30, d30);
	unused_digest(7, 31, d31);
	unused_digest(7, 90, d90);
	unused_digest(8, 31, fewer);
	REQUIRE(d30[0] != '\0');
	CHECK_STR(d31, d30);
	CHECK_STR(d90, d30);
	CHECK(strcmp(fewer, d30) != 0);
}
