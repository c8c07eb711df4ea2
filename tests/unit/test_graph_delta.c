/* test_graph_delta — applying /users/delta pages to the real store: the
 * first round page by page, incremental merges of changed properties,
 * @removed changed/deleted, a failing page leaving mirror and state as they
 * were (crash safety), a resync staged and swapped atomically (an
 * interrupted one reports nobody removed), and the snapshot tables. */
#include "t.h"
#include "graph/graph.h"
#include "store/store.h"
#include "store/store_snapshots.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TID "11111111-2222-3333-4444-555555555555"

static struct store *open_store(struct err *err)
{
	char path[600];
	snprintf(path, sizeof path, "%s/entrasync.db", t_tmpdir());
	struct store *st = NULL;
	if (store_open(path, &st, err)) return NULL;
	struct store_tenant t = { .id = TID, .name = "Contoso" };
	if (store_tenant_put(st, &t, err)) {
		store_close(st);
		return NULL;
	}
	return st;
}

static void close_store(struct store *st)
{
	store_close(st);
}

/* Applies page text under the current state (with the text, as a pull
 * does; g_tree_only: the tree alone); returns the apply result. */
static bool g_tree_only;
static int apply(struct store *st, const char *text, struct graph_delta_counts *c, bool *complete, struct err *err)
{
	cJSON *page = cJSON_Parse(text);
	if (!page) return err_set(err, "test page is not JSON");
	struct store_delta cur = { 0 };
	int rc = store_delta_get(st, TID, "users", &cur, err);
	if (rc >= 0 && g_tree_only) rc = graph_delta_apply_page(st, TID, page, &cur, c, complete, err);
	else if (rc >= 0) rc = graph_delta_apply_page_text(st, TID, page, text, strlen(text), &cur, c, complete, err);
	store_delta_free(&cur);
	cJSON_Delete(page);
	return rc;
}

/* The stored JSON property key of user id as a string ("" when absent or
 * not a string; "(null)" for JSON null; "(none)" for no such user). */
static char *prop(struct store *st, const char *id, const char *key)
{
	static char out[256];
	struct store_user u = { 0 };
	struct err err;
	if (store_user_get(st, TID, id, &u, &err) != 0) return strcpy(out, "(none)");
	cJSON *j = cJSON_Parse(u.json);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	if (cJSON_IsString(v)) snprintf(out, sizeof out, "%s", v->valuestring);
	else if (cJSON_IsNull(v)) strcpy(out, "(null)");
	else out[0] = '\0';
	cJSON_Delete(j);
	store_user_free(&u);
	return out;
}

static char *removed_of(struct store *st, const char *id)
{
	static char out[32];
	struct store_user u = { 0 };
	struct err err;
	if (store_user_get(st, TID, id, &u, &err) != 0) return strcpy(out, "(none)");
	snprintf(out, sizeof out, "%s", u.removed ? u.removed : "present");
	store_user_free(&u);
	return out;
}

static long long count(struct store *st, enum store_user_filter f)
{
	long long n = -1;
	struct err err;
	store_user_count(st, TID, f, &n, &err);
	return n;
}

/* users-delta-page.json and users-delta-final.json (Microsoft's example). */
static const char page1[] =
	"{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#users(displayName,givenName,surname)\","
	"\"@odata.nextLink\":\"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=PAGE2\",\"value\":["
	"{\"displayName\":\"Cameron White\",\"givenName\":\"Cameron\",\"surname\":\"White\",\"id\":\"ffff7b1a\"},"
	"{\"displayName\":\"Delia Dennis\",\"givenName\":\"Delia\",\"surname\":\"Dennis\",\"id\":\"605d1257\"},"
	"{\"id\":\"86462606\",\"@removed\":{\"reason\":\"deleted\"}},"
	"{\"displayName\":\"Conf Room Adams\",\"id\":\"6ea91a8d\"}]}";
static const char page2[] =
	"{\"@odata.deltaLink\":\"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=D1\",\"value\":["
	"{\"displayName\":\"Lidia Holloway\",\"givenName\":\"Lidia\",\"surname\":\"Holloway\",\"id\":\"25dcffff\"},"
	"{\"displayName\":\"Patti Fernandez\",\"givenName\":\"Patti\",\"surname\":\"Fernandez\",\"id\":\"f6ede700\"}]}";

/* A store with page1_text applied, as a test's start. */
static struct store *open_after_page1(const char *page1_text, struct graph_delta_counts *c, struct err *err)
{
	struct store *st = open_store(err);
	bool complete;
	if (st && apply(st, page1_text, c, &complete, err) != 0) {
		close_store(st);
		return NULL;
	}
	return st;
}

TEST(graph_delta_first_round_then_changes)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct graph_delta_counts c = { 0 };
	bool complete = true;
	REQUIRE_OK(apply(st, page1, &c, &complete, &err), &err);
	CHECK(!complete);
	CHECK_EQ_INT(c.upserted, 3);
	CHECK_EQ_INT(c.removed_deleted, 0);  /* never seen: nothing to remove, nothing counted */
	/* the page is committed together with the resume point */
	struct store_delta d = { 0 };
	REQUIRE_OK(store_delta_get(st, TID, "users", &d, &err), &err);
	CHECK_STR(d.next_link, "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=PAGE2");
	CHECK(d.delta_link == NULL);
	CHECK(d.round_started_at != NULL);
	store_delta_free(&d);
	CHECK_EQ_INT(count(st, STORE_USERS_PRESENT), 3);
	CHECK_STR(removed_of(st, "86462606"), "(none)");  /* removed before we ever saw it */
	CHECK_STR(prop(st, "ffff7b1a", "displayName"), "Cameron White");

	REQUIRE_OK(apply(st, page2, &c, &complete, &err), &err);
	CHECK(complete);
	REQUIRE_OK(store_delta_get(st, TID, "users", &d, &err), &err);
	CHECK_STR(d.delta_link, "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=D1");
	CHECK(d.next_link == NULL);
	CHECK(d.round_started_at == NULL);
	CHECK(!d.resync);
	store_delta_free(&d);
	CHECK_EQ_INT(count(st, STORE_USERS_PRESENT), 5);

	/* users-delta-changes.json: changed properties only, and a soft delete */
	const char changes[] =
		"{\"@odata.deltaLink\":\"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=D2\",\"value\":["
		"{\"displayName\":\"MOD Administrator\",\"surname\":null,\"id\":\"25dcffff\"},"
		"{\"id\":\"ffff7b1a\",\"@removed\":{\"reason\":\"changed\"}},"
		"{\"id\":\"605d1257\",\"@removed\":{\"reason\":\"deleted\"}}]}";
	memset(&c, 0, sizeof c);
	REQUIRE_OK(apply(st, changes, &c, &complete, &err), &err);
	CHECK(complete);
	CHECK_EQ_INT(c.upserted, 1);
	CHECK_EQ_INT(c.removed_changed, 1);
	CHECK_EQ_INT(c.removed_deleted, 1);
	CHECK_STR(prop(st, "25dcffff", "displayName"), "MOD Administrator");
	CHECK_STR(prop(st, "25dcffff", "givenName"), "Lidia");       /* unchanged: kept */
	CHECK_STR(prop(st, "25dcffff", "surname"), "(null)");        /* changed to null */
	CHECK_STR(removed_of(st, "ffff7b1a"), "changed");
	CHECK_STR(removed_of(st, "605d1257"), "deleted");
	CHECK_STR(prop(st, "ffff7b1a", "displayName"), "Cameron White"); /* last JSON kept */
	CHECK_EQ_INT(count(st, STORE_USERS_PRESENT), 3);
	/* a replay of the same removals counts nothing; soft- then hard-deleted counts once more */
	const char again[] = "{\"@odata.deltaLink\":\"https://g/users/delta?$deltatoken=D2b\",\"value\":["
	                     "{\"id\":\"ffff7b1a\",\"@removed\":{\"reason\":\"changed\"}},"
	                     "{\"id\":\"605d1257\",\"@removed\":{\"reason\":\"deleted\"}}]}";
	memset(&c, 0, sizeof c);
	REQUIRE_OK(apply(st, again, &c, &complete, &err), &err);
	CHECK_EQ_INT(c.removed_changed + c.removed_deleted, 0);

	/* a restore comes unannotated and whole, as a create (never-set properties
	 * left out): present again, and what it was before it left is replaced:
	 * its surname was cleared while it was deleted, so it has none now */
	const char restore[] = "{\"@odata.deltaLink\":\"https://g/users/delta?$deltatoken=D3\",\"value\":["
	                       "{\"id\":\"ffff7b1a\",\"displayName\":\"Cameron White\",\"givenName\":\"Cameron\","
	                       "\"jobTitle\":\"Back\"}]}";
	REQUIRE_OK(apply(st, restore, &c, &complete, &err), &err);
	CHECK_STR(removed_of(st, "ffff7b1a"), "present");
	CHECK_STR(prop(st, "ffff7b1a", "jobTitle"), "Back");
	CHECK_STR(prop(st, "ffff7b1a", "givenName"), "Cameron");
	CHECK_STR(prop(st, "ffff7b1a", "surname"), "");   /* "White" before it left: not kept */
	/* replaying the same page changes nothing */
	REQUIRE_OK(store_delta_put(st, TID, "users", &(struct store_delta){ .delta_link = "https://g/x" }, &err), &err);
	REQUIRE_OK(apply(st, restore, &c, &complete, &err), &err);
	CHECK_STR(prop(st, "ffff7b1a", "jobTitle"), "Back");
	close_store(st);
}

TEST(graph_delta_bad_page_changes_nothing)
{
	struct err err;
	struct graph_delta_counts c = { 0 };
	bool complete;
	struct store *st = open_after_page1(page1, &c, &err);
	REQUIRE_OK(st ? 0 : -1, &err);
	/* the second item has no id: the whole page is refused, nothing of it stays */
	const char bad[] = "{\"@odata.deltaLink\":\"https://g/users/delta?$deltatoken=BAD\",\"value\":["
	                   "{\"id\":\"aaaa\",\"displayName\":\"A\"},{\"displayName\":\"no id\"}]}";
	CHECK(apply(st, bad, &c, &complete, &err) < 0);
	CHECK_CONTAINS(err.msg, "no id");
	CHECK_STR(removed_of(st, "aaaa"), "(none)");
	struct store_delta d = { 0 };
	REQUIRE_OK(store_delta_get(st, TID, "users", &d, &err), &err);
	CHECK_STR(d.next_link, "https://graph.microsoft.com/v1.0/users/delta?$skiptoken=PAGE2");
	CHECK(d.delta_link == NULL);
	store_delta_free(&d);
	CHECK(!store_in_transaction(st));
	/* no links at all, or both */
	CHECK(apply(st, "{\"value\":[]}", &c, &complete, &err) < 0);
	CHECK_CONTAINS(err.msg, "neither");
	CHECK(apply(st, "{\"value\":[],\"@odata.nextLink\":\"a\",\"@odata.deltaLink\":\"b\"}", &c, &complete, &err) < 0);
	CHECK(apply(st, "{\"@odata.deltaLink\":\"b\"}", &c, &complete, &err) < 0);
	CHECK_CONTAINS(err.msg, "value");
	/* an empty page with a nextLink is fine (Graph sends those) */
	CHECK_OK(apply(st, "{\"value\":[],\"@odata.nextLink\":\"https://g/users/delta?$skiptoken=P3\"}", &c,
	               &complete, &err), &err);
	REQUIRE_OK(store_delta_get(st, TID, "users", &d, &err), &err);
	CHECK_STR(d.next_link, "https://g/users/delta?$skiptoken=P3");
	store_delta_free(&d);
	close_store(st);
}

TEST(graph_delta_resync_is_atomic)
{
	struct err err;
	struct graph_delta_counts c = { 0 };
	bool complete;
	struct store *st = open_after_page1(page1, &c, &err);
	REQUIRE_OK(st ? 0 : -1, &err);
	REQUIRE_OK(apply(st, page2, &c, &complete, &err), &err);
	CHECK_EQ_INT(count(st, STORE_USERS_PRESENT), 5);

	/* The delta token expired: a resync starts, staged. */
	REQUIRE_OK(graph_delta_start_resync(st, TID, "https://g/users/delta?$select=id", &err), &err);
	struct store_delta d = { 0 };
	REQUIRE_OK(store_delta_get(st, TID, "users", &d, &err), &err);
	CHECK(d.resync);
	CHECK_STR(d.next_link, "https://g/users/delta?$select=id");
	CHECK_STR(d.delta_link, "https://graph.microsoft.com/v1.0/users/delta?$deltatoken=D1");
	store_delta_free(&d);
	const char r1[] = "{\"@odata.nextLink\":\"https://g/users/delta?$skiptoken=R2\",\"value\":["
	                  "{\"id\":\"ffff7b1a\",\"displayName\":\"Cameron Renamed\"},"
	                  "{\"id\":\"new1\",\"displayName\":\"New One\"}]}";
	memset(&c, 0, sizeof c);
	REQUIRE_OK(apply(st, r1, &c, &complete, &err), &err);
	CHECK(!complete);
	/* mid-resync (e.g. the run was interrupted here): the live mirror is
	 * untouched, nobody is reported removed, nothing new shows yet */
	CHECK_EQ_INT(count(st, STORE_USERS_PRESENT), 5);
	CHECK_EQ_INT(count(st, STORE_USERS_REMOVED), 0);
	CHECK_STR(prop(st, "ffff7b1a", "displayName"), "Cameron White");
	CHECK_STR(removed_of(st, "new1"), "(none)");
	long long staged = 0;
	REQUIRE_OK(store_mirror_stage_count(st, TID, &staged, &err), &err);
	CHECK_EQ_INT(staged, 2);
	REQUIRE_OK(store_delta_get(st, TID, "users", &d, &err), &err);
	CHECK(d.resync);
	CHECK_STR(d.next_link, "https://g/users/delta?$skiptoken=R2");
	store_delta_free(&d);

	/* the last page completes the round: swapped in one step */
	const char r2[] = "{\"@odata.deltaLink\":\"https://g/users/delta?$deltatoken=R\",\"value\":["
	                  "{\"id\":\"25dcffff\",\"displayName\":\"Lidia Holloway\"},"
	                  "{\"id\":\"6ea91a8d\",\"@removed\":{\"reason\":\"deleted\"}}]}";
	REQUIRE_OK(apply(st, r2, &c, &complete, &err), &err);
	CHECK(complete);
	CHECK_STR(prop(st, "ffff7b1a", "displayName"), "Cameron Renamed");
	CHECK_STR(removed_of(st, "new1"), "present");
	CHECK_STR(removed_of(st, "25dcffff"), "present");
	CHECK_STR(removed_of(st, "6ea91a8d"), "deleted");
	CHECK_STR(removed_of(st, "605d1257"), "changed");   /* absent from the full round */
	CHECK_STR(removed_of(st, "f6ede700"), "changed");
	CHECK_EQ_INT(count(st, STORE_USERS_PRESENT), 3);
	CHECK(c.swapped_removed >= 2);
	REQUIRE_OK(store_delta_get(st, TID, "users", &d, &err), &err);
	CHECK(!d.resync);
	CHECK(d.next_link == NULL);
	CHECK_STR(d.delta_link, "https://g/users/delta?$deltatoken=R");
	store_delta_free(&d);
	REQUIRE_OK(store_mirror_stage_count(st, TID, &staged, &err), &err);
	CHECK_EQ_INT(staged, 0);

	/* starting a resync again drops a previous, abandoned staging */
	REQUIRE_OK(graph_delta_start_resync(st, TID, "https://g/u", &err), &err);
	REQUIRE_OK(apply(st, r1, &c, &complete, &err), &err);
	REQUIRE_OK(graph_delta_start_resync(st, TID, "https://g/u", &err), &err);
	REQUIRE_OK(store_mirror_stage_count(st, TID, &staged, &err), &err);
	CHECK_EQ_INT(staged, 0);
	close_store(st);
}

TEST(graph_delta_merge_rules)
{
	cJSON *item = cJSON_Parse("{\"id\":\"x\",\"a\":2,\"c\":null,\"@odata.type\":\"#u\",\"b@odata.x\":1,"
	                          "\"businessPhones\":[\"1\"]}");
	char *m = graph_delta_merge("{\"id\":\"x\",\"a\":1,\"b\":\"keep\",\"c\":\"gone\"}", item);
	cJSON *j = cJSON_Parse(m);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "a")) == 2);
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "b")), "keep");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(j, "c")));
	CHECK(cJSON_GetObjectItem(j, "@odata.type") == NULL);
	CHECK(cJSON_GetObjectItem(j, "b@odata.x") == NULL);
	CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "businessPhones")), 1);
	cJSON_Delete(j);
	free(m);
	m = graph_delta_merge("not json", item);
	j = cJSON_Parse(m);
	CHECK(cJSON_IsObject(j));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "id")), "x");
	cJSON_Delete(j);
	free(m);
	cJSON_Delete(item);
}

/* The text merge gives what the cJSON merge gives (JSON-equal), on the
 * rules above and on stored users of every shape; raw values byte for byte. */
TEST(graph_delta_merge_text_matches_the_tree_merge)
{
	static const char *const olds[] = {
		"{\"id\":\"x\",\"a\":1,\"b\":\"keep\",\"c\":\"gone\"}",
		"{\"id\":\"x\",\"businessPhones\":[\"9\",\"8\"],\"n\":{\"deep\":[1,{\"z\":null}]},\"q\\\"k\":\"\\u00e9\"}",
		"{}", "not json", "[1,2]", NULL,
	};
	static const char *const items[] = {
		"{\"id\":\"x\",\"a\":2,\"c\":null,\"@odata.type\":\"#u\",\"b@odata.x\":1,\"businessPhones\":[\"1\"]}",
		"{\"id\":\"x\",\"jobTitle\":\"Changed\",\"a\":1.50,\"a\":3}",
		"{\"id\":\"x\"}",
	};
	for (size_t i = 0; i < ARRAY_LEN(olds); i++)
		for (size_t k = 0; k < ARRAY_LEN(items); k++) {
			cJSON *item = cJSON_Parse(items[k]);
			REQUIRE(item);
			char *tree = graph_delta_merge(olds[i], item);
			char *text = graph_delta_merge_text(olds[i], items[k], strlen(items[k]));
			REQUIRE(text);
			cJSON *a = cJSON_Parse(tree), *b = cJSON_Parse(text);
			if (!a || !b || !cJSON_Compare(a, b, true))
				t_fail(__FILE__, __LINE__, "old %zu item %zu: tree %s, text %s", i, k, tree, text);
			cJSON_Delete(a);
			cJSON_Delete(b);
			free(tree);
			free(text);
			cJSON_Delete(item);
		}
	/* raw values kept as sent; a malformed item is refused (the caller falls back) */
	static const char raw_item[] = "{\"b\":2.0}", bad_item[] = "{\"b\":}";
	char *m = graph_delta_merge_text("{\"a\":1.50e0,\"b\":2}", raw_item, strlen(raw_item));
	CHECK_STR(m, "{\"a\":1.50e0,\"b\":2.0}");
	free(m);
	CHECK(graph_delta_merge_text("{}", bad_item, strlen(bad_item)) == NULL);
	/* a name over 255 bytes, in the item or the stored object: left to the
	 * cJSON merge (NULL), never dropped */
	struct buf lk = { 0 };
	buf_adds(&lk, "{\"");
	for (int i = 0; i < 300; i++) buf_addc(&lk, 'k');
	buf_adds(&lk, "\":1}");
	CHECK(graph_delta_merge_text("{}", lk.data, lk.len) == NULL);
	CHECK(graph_delta_merge_text(lk.data, raw_item, strlen(raw_item)) == NULL);
	buf_free(&lk);
}

static int count_license(const struct store_license *l, void *ud)
{
	long long *n = ud;
	if (!strcmp(l->sku_id, "c7df2760-2c81-4ef7-b578-5b5392b571df")) {
		CHECK_EQ_INT(l->enabled, strcmp(l->day, "2026-11-26") ? 25 : 30);
		CHECK_EQ_INT(l->consumed, 14);
		CHECK_STR(l->capability_status, "Enabled");
		CHECK_STR(l->sku_part_number, "ENTERPRISEPREMIUM");
	}
	(*n)++;
	return 0;
}

static int check_score(const struct store_secure_score *s, void *ud)
{
	int *n = ud;
	if (*n == 0) {
		CHECK_STR(s->day, "2019-03-18");
		CHECK(s->current_score == 380.5);
	}
	CHECK_CONTAINS(s->controls, "\"NotScored\"");
	(*n)++;
	return 0;
}

static int count_group(const char *group_id, const char *display_name, void *ud)
{
	CHECK_STR(group_id, "g1");
	CHECK_STR(display_name, "Sales EU");
	(*(int *)ud)++;
	return 0;
}

TEST(graph_store_snapshots)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct store_license rows[] = {
		{ .sku_id = "c7df2760-2c81-4ef7-b578-5b5392b571df", .sku_part_number = "ENTERPRISEPREMIUM",
		  .enabled = 25, .consumed = 14, .capability_status = "Enabled", .applies_to = "User" },
		{ .sku_id = "d17b27af-3f49-4822-99f9-56a661538792", .sku_part_number = "CRMSTANDARD",
		  .suspended = 25, .consumed = 14, .capability_status = "Suspended", .applies_to = "User" },
	};
	REQUIRE_OK(store_license_snapshot_put(st, TID, "2026-11-25", rows, 2, &err), &err);
	rows[0].enabled = 30;
	/* a second pull on the same day replaces that day (one SKU fewer) */
	REQUIRE_OK(store_license_snapshot_put(st, TID, "2026-11-26", rows, 2, &err), &err);
	REQUIRE_OK(store_license_snapshot_put(st, TID, "2026-11-26", rows, 1, &err), &err);
	char *day = NULL;
	REQUIRE_OK(store_license_latest_day(st, TID, &day, &err), &err);
	CHECK_STR(day, "2026-11-26");
	free(day);
	long long n = 0;
	REQUIRE_OK(store_license_each(st, TID, NULL, count_license, &n, &err), &err);
	CHECK_EQ_INT(n, 1);
	n = 0;
	REQUIRE_OK(store_license_each(st, TID, "2026-11-25", count_license, &n, &err), &err);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(store_license_latest_day(st, "other", &day, &err), STORE_NOTFOUND);
	/* the hourly put of an unchanged day writes nothing; a changed count
	 * rewrites its row only */
	int lic_before = sqlite3_total_changes(store_sqlite(st));
	REQUIRE_OK(store_license_snapshot_put(st, TID, "2026-11-26", rows, 1, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - lic_before, 0);
	rows[0].enabled = 31;
	REQUIRE_OK(store_license_snapshot_put(st, TID, "2026-11-26", rows, 1, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - lic_before, 1);
	rows[0].enabled = 30;
	REQUIRE_OK(store_license_snapshot_put(st, TID, "2026-11-26", rows, 1, &err), &err);
	/* unknown tenant: a clear refusal */
	CHECK(store_license_snapshot_put(st, "nope", "2026-11-26", rows, 1, &err) < 0);
	CHECK_CONTAINS(err.msg, "not in the store");

	CHECK_EQ_INT(store_secure_score_latest_day(st, TID, &day, &err), STORE_NOTFOUND);
	const char *controls = "[{\"controlName\":\"AdminMFA\",\"score\":35.0,\"NotScored\":\"false\",\"on\":\"x\"}]";
	struct store_secure_score s1 = { .tenant_id = TID, .day = "2019-03-19", .current_score = 387,
	                                 .max_score = 697, .averages = "[]", .controls = controls };
	struct store_secure_score s0 = s1;
	s0.day = "2019-03-18";
	s0.current_score = 380.5;
	REQUIRE_OK(store_secure_score_put(st, &s1, &err), &err);
	REQUIRE_OK(store_secure_score_put(st, &s0, &err), &err);
	/* the same day as stored: nothing written; a moved score: one row */
	int changes = sqlite3_total_changes(store_sqlite(st));
	REQUIRE_OK(store_secure_score_put(st, &s1, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - changes, 0);
	s1.current_score = 388;
	REQUIRE_OK(store_secure_score_put(st, &s1, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - changes, 1);
	s1.current_score = 387;
	REQUIRE_OK(store_secure_score_put(st, &s1, &err), &err);  /* replaces */
	REQUIRE_OK(store_secure_score_latest_day(st, TID, &day, &err), &err);
	CHECK_STR(day, "2019-03-19");
	free(day);
	REQUIRE_OK(store_secure_score_count(st, TID, &n, &err), &err);
	CHECK_EQ_INT(n, 2);
	int k = 0;
	REQUIRE_OK(store_secure_score_each(st, TID, check_score, &k, &err), &err);
	CHECK_EQ_INT(k, 2);

	const char *ids[] = { "u1", "u2", "u3" };
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales", ids, 3, &err), &err);
	REQUIRE_OK(store_group_member_count(st, TID, "g1", &n, &err), &err);
	CHECK_EQ_INT(n, 3);
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales EU", ids + 1, 1, &err), &err);
	REQUIRE_OK(store_group_member_count(st, TID, "g1", &n, &err), &err);
	CHECK_EQ_INT(n, 1);
	/* overlapping change, unsorted, with a duplicate: only the difference is written */
	const char *ids2[] = { "u4", "u2", "u4", "u0" };
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales EU", ids2, 4, &err), &err);
	REQUIRE_OK(store_group_member_count(st, TID, "g1", &n, &err), &err);
	CHECK_EQ_INT(n, 3);
	int in = 0;
	REQUIRE_OK(store_user_groups_each(st, TID, "u4", count_group, &in, &err), &err);
	CHECK_EQ_INT(in, 1);
	in = 0;
	REQUIRE_OK(store_user_groups_each(st, TID, "u3", count_group, &in, &err), &err);
	CHECK_EQ_INT(in, 0);
	/* the same membership again (another order): no row written, the name either */
	const char *ids3[] = { "u0", "u4", "u2" };
	int before = sqlite3_total_changes(store_sqlite(st));
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales EU", ids3, 3, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - before, 0);
	/* one in, one out: two rows written, the digest dropped by the first
	 * (a trigger) and the new one set on the group's row */
	const char *ids4[] = { "u0", "u5", "u2" };
	before = sqlite3_total_changes(store_sqlite(st));
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales EU", ids4, 3, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - before, 4);
	/* another writer's change is not hidden by the digest: by the API or
	 * behind the store's back (triggers drop the digest on any row change) */
	REQUIRE_OK(store_group_member_put(st, TID, "g1", "u9", &err), &err);
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales EU", ids4, 3, &err), &err);
	in = 0;
	REQUIRE_OK(store_user_groups_each(st, TID, "u9", count_group, &in, &err), &err);
	CHECK_EQ_INT(in, 0);
	REQUIRE(sqlite3_exec(store_sqlite(st), "DELETE FROM group_members WHERE object_id = 'u5'", NULL, NULL, NULL) ==
	        SQLITE_OK);
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales EU", ids4, 3, &err), &err);
	REQUIRE_OK(store_group_member_count(st, TID, "g1", &n, &err), &err);
	CHECK_EQ_INT(n, 3);
	in = 0;
	REQUIRE_OK(store_user_groups_each(st, TID, "u5", count_group, &in, &err), &err);
	CHECK_EQ_INT(in, 1);
	in = 0;
	REQUIRE_OK(store_user_groups_each(st, TID, "u4", count_group, &in, &err), &err);
	CHECK_EQ_INT(in, 0);
	/* a row added behind the store's back: the trigger drops the digest too */
	REQUIRE(sqlite3_exec(store_sqlite(st), "INSERT INTO group_members (tenant_id, group_id, object_id) "
	                     "VALUES ('" TID "', 'g1', 'u7')", NULL, NULL, NULL) == SQLITE_OK);
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales EU", ids4, 3, &err), &err);
	in = 0;
	REQUIRE_OK(store_user_groups_each(st, TID, "u7", count_group, &in, &err), &err);
	CHECK_EQ_INT(in, 0);
	REQUIRE_OK(store_group_member_count(st, TID, "g1", &n, &err), &err);
	CHECK_EQ_INT(n, 3);
	/* a large set that changes by one id each way */
	enum { BIG = 3000 };
	char (*big)[40] = calloc(BIG + 1, sizeof *big);
	const char **bigp = calloc(BIG + 1, sizeof *bigp);
	REQUIRE(big && bigp);
	for (int i = 0; i < BIG; i++) {
		snprintf(big[i], sizeof big[i], "%08x-0000-4000-8000-%012d", (unsigned)i * 2654435761u, i);
		bigp[i] = big[i];
	}
	REQUIRE_OK(store_group_members_replace(st, TID, "g2", "All", bigp, BIG, &err), &err);
	snprintf(big[BIG], sizeof big[BIG], "ffffffff-0000-4000-8000-000000000000");
	bigp[17] = big[BIG];
	before = sqlite3_total_changes(store_sqlite(st));
	REQUIRE_OK(store_group_members_replace(st, TID, "g2", "All", bigp, BIG, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - before, 4);
	before = sqlite3_total_changes(store_sqlite(st));
	REQUIRE_OK(store_group_members_replace(st, TID, "g2", "All", bigp, BIG, &err), &err);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - before, 0);
	REQUIRE_OK(store_group_member_count(st, TID, "g2", &n, &err), &err);
	CHECK_EQ_INT(n, BIG);
	in = 0;
	REQUIRE_OK(store_user_groups_each(st, TID, big[17], count_group, &in, &err), &err);
	CHECK_EQ_INT(in, 0);
	free(big);
	free(bigp);
	REQUIRE_OK(store_group_members_replace(st, TID, "g1", "Sales EU", NULL, 0, &err), &err);
	REQUIRE_OK(store_group_member_count(st, TID, "g1", &n, &err), &err);
	CHECK_EQ_INT(n, 0);

	/* a group's id by its stored name: ASCII case ignored; none when two
	 * groups share the name */
	char *gid = NULL;
	REQUIRE_OK(store_group_id_by_name(st, TID, "sales eu", &gid, &err), &err);
	CHECK_STR(gid, "g1");
	free(gid);
	CHECK_EQ_INT(store_group_id_by_name(st, TID, "Sales", &gid, &err), STORE_NOTFOUND);
	CHECK(gid == NULL);
	CHECK_EQ_INT(store_group_id_by_name(st, "other", "All", &gid, &err), STORE_NOTFOUND);
	const char *one[] = { "u1" };
	REQUIRE_OK(store_group_members_replace(st, TID, "g3", "All", one, 1, &err), &err);
	CHECK_EQ_INT(store_group_id_by_name(st, TID, "All", &gid, &err), STORE_NOTFOUND);
	/* only the groups named stay, with their members; the rest go */
	long long dropped = -1;
	const char *keep[] = { "g2", "g9" };
	REQUIRE_OK(store_groups_keep_only(st, TID, keep, 2, &dropped, &err), &err);
	CHECK_EQ_INT(dropped, 2);
	REQUIRE_OK(store_group_member_count(st, TID, "g3", &n, &err), &err);
	CHECK_EQ_INT(n, 0);
	REQUIRE_OK(store_group_member_count(st, TID, "g2", &n, &err), &err);
	CHECK_EQ_INT(n, BIG);
	REQUIRE_OK(store_group_id_by_name(st, TID, "All", &gid, &err), &err);
	CHECK_STR(gid, "g2");
	free(gid);
	REQUIRE_OK(store_groups_keep_only(st, TID, keep, 2, &dropped, &err), &err);
	CHECK_EQ_INT(dropped, 0);
	/* the page digest: stored with the rows, vouches for them until any
	 * member row of the group changes (triggers drop it) */
	char *pd = NULL;
	long long members = 0;
	REQUIRE_OK(store_group_page_get(st, TID, "g2", &pd, &members, &err), &err);
	CHECK(pd == NULL);
	REQUIRE_OK(store_group_page_put(st, TID, "g2", "0123456789abcdef0123456789abcdef", &err), &err);
	REQUIRE_OK(store_group_page_get(st, TID, "g2", &pd, &members, &err), &err);
	CHECK_STR(pd, "0123456789abcdef0123456789abcdef");
	CHECK_EQ_INT(members, BIG);
	free(pd);
	bool still = false;
	before = sqlite3_total_changes(store_sqlite(st));
	REQUIRE_OK(store_group_page_same(st, TID, "g2", "All", "0123456789abcdef0123456789abcdef", &still, &err), &err);
	CHECK(still);
	CHECK_EQ_INT(sqlite3_total_changes(store_sqlite(st)) - before, 0);   /* nothing written */
	REQUIRE_OK(store_group_page_same(st, TID, "g2", "All Staff", "0123456789abcdef0123456789abcdef", &still, &err), &err);
	CHECK(still);
	REQUIRE_OK(store_group_id_by_name(st, TID, "All Staff", &gid, &err), &err);   /* renamed */
	CHECK_STR(gid, "g2");
	free(gid);
	REQUIRE_OK(store_group_page_same(st, TID, "g2", "Other", "ffffffffffffffffffffffffffffffff", &still, &err), &err);
	CHECK(!still);
	REQUIRE_OK(store_group_id_by_name(st, TID, "All Staff", &gid, &err), &err);   /* not renamed then */
	free(gid);
	REQUIRE_OK(store_group_page_get(st, "other", "g2", &pd, &members, &err), &err);   /* another tenant's */
	CHECK(pd == NULL);
	char sql[200];
	snprintf(sql, sizeof sql, "DELETE FROM group_members WHERE rowid = (SELECT rowid FROM group_members "
	         "WHERE tenant_id = '%s' AND group_id = 'g2' LIMIT 1)", TID);
	CHECK_EQ_INT(sqlite3_exec(store_sqlite(st), sql, NULL, NULL, NULL), SQLITE_OK);
	REQUIRE_OK(store_group_page_get(st, TID, "g2", &pd, &members, &err), &err);
	CHECK(pd == NULL);
	REQUIRE_OK(store_group_page_same(st, TID, "g2", "All Staff", "0123456789abcdef0123456789abcdef", &still, &err), &err);
	CHECK(!still);
	REQUIRE_OK(store_groups_keep_only(st, TID, NULL, 0, NULL, &err), &err);
	REQUIRE_OK(store_group_member_count(st, TID, "g2", &n, &err), &err);
	CHECK_EQ_INT(n, 0);
	close_store(st);
}

/* The stored JSON text of user id ("(none)" when absent); static buffer. */
static const char *stored(struct store *st, const char *id)
{
	static char out[1024];
	struct store_user u = { 0 };
	struct err err;
	if (store_user_get(st, TID, id, &u, &err) != 0) return strcpy(out, "(none)");
	snprintf(out, sizeof out, "%s", u.json);
	store_user_free(&u);
	return out;
}

/* A full round stores each plain item as Graph's own bytes (white space,
 * escapes, number spelling and key order kept); items with annotations,
 * raw control characters or numbers outside JSON's grammar (cJSON takes
 * them) are printed from the tree as before; the tree-only call prints. */
TEST(graph_delta_full_round_stores_items_verbatim)
{
	static const char item_a[] = "{ \"id\": \"a1\", \"displayName\": \"Zo\\u00eb \\\"Z\\\" Ng\", "
	                             "\"businessPhones\": [ \"+1 1\", \"+1 2\" ], \"n\": 1.50e+2, \"x\": {\"y\": [true, null]} }";
	static const char item_b[] = "{\"id\":\"b2\",\"displayName\":\"Bo\",\"manager@delta\":[{\"id\":\"m\"}]}";
	static const char item_c[] = "{\"id\":\"c3\",\"displayName\":\"Tab\there\"}";
	static const char item_d[] = "{\"id\":\"d4\",\"n\":01}";
	char page[2048];
	snprintf(page, sizeof page,
	         "{\"@odata.context\":\"x\",\"skip\":{\"value\":[1]},\"value\" : [ %s ,\n %s,%s,%s ],"
	         "\"@odata.deltaLink\":\"https://graph.microsoft.com/v1.0/users/delta?$deltatoken=V\"}",
	         item_a, item_b, item_c, item_d);
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct graph_delta_counts c = { 0 };
	bool complete = false;
	REQUIRE_OK(apply(st, page, &c, &complete, &err), &err);
	CHECK(complete);
	CHECK_EQ_INT(c.upserted, 4);
	CHECK_STR(stored(st, "a1"), item_a);                       /* byte for byte */
	CHECK_STR(stored(st, "b2"), "{\"id\":\"b2\",\"displayName\":\"Bo\"}");  /* annotation dropped */
	CHECK_STR(stored(st, "c3"), "{\"id\":\"c3\",\"displayName\":\"Tab\\there\"}");  /* escaped */
	CHECK_STR(stored(st, "d4"), "{\"id\":\"d4\",\"n\":1}");
	CHECK_STR(prop(st, "a1", "displayName"), "Zo\xc3\xab \"Z\" Ng");

	/* a resync stages the same bytes and swaps them in */
	REQUIRE_OK(graph_delta_start_resync(st, TID, "https://graph.microsoft.com/v1.0/users/delta", &err), &err);
	char resync_page[2048];
	snprintf(resync_page, sizeof resync_page, "{\"value\":[%s],\"@odata.deltaLink\":\"https://g/users/delta?$deltatoken=W\"}",
	         item_a);
	REQUIRE_OK(apply(st, resync_page, &c, &complete, &err), &err);
	CHECK_STR(stored(st, "a1"), item_a);
	CHECK_STR(removed_of(st, "b2"), "changed");
	close_store(st);

	/* without the text: printed from the tree */
	g_tree_only = true;
	st = open_store(&err);
	REQUIRE(st);
	REQUIRE_OK(graph_delta_start_resync(st, TID, "https://graph.microsoft.com/v1.0/users/delta", &err), &err);
	REQUIRE_OK(apply(st, resync_page, &c, &complete, &err), &err);
	g_tree_only = false;
	CHECK_STR(stored(st, "a1"), "{\"id\":\"a1\",\"displayName\":\"Zo\xc3\xab \\\"Z\\\" Ng\",\"businessPhones\":"
	                            "[\"+1 1\",\"+1 2\"],\"n\":150,\"x\":{\"y\":[true,null]}}");
	close_store(st);
}

/* An incremental round merges (never stores the item's text as is). */
TEST(graph_delta_incremental_round_merges_with_text)
{
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	struct graph_delta_counts c = { 0 };
	bool complete = false;
	REQUIRE_OK(apply(st, "{\"value\":[{\"id\":\"a1\",\"displayName\":\"A\",\"city\":\"Oslo\"}],"
	                     "\"@odata.deltaLink\":\"https://g/users/delta?$deltatoken=1\"}", &c, &complete, &err), &err);
	REQUIRE_OK(apply(st, "{\"value\":[ {\"id\":\"a1\", \"city\":\"Bergen\"} ],"
	                     "\"@odata.deltaLink\":\"https://g/users/delta?$deltatoken=2\"}", &c, &complete, &err), &err);
	CHECK_STR(stored(st, "a1"), "{\"id\":\"a1\",\"displayName\":\"A\",\"city\":\"Bergen\"}");
	close_store(st);
}

/* The page scanner under mutation: every one-byte change of a page that
 * cJSON still accepts applies without a fault (ASan watches) and leaves
 * only strict JSON in the mirror (SQLite's json_valid). */
TEST(graph_delta_mutated_pages_store_strict_json)
{
	static const char base[] =
		"{\"@odata.nextLink\":\"https://g/users/delta?$skiptoken=N\",\"value\":[{\"id\":\"a1\",\"displayName\":"
		"\"A \\\"q\\\" \\\\\",\"n\":-1.5e3,\"p\":[\"x\",{\"k\":null}],\"t\":true},{\"id\":\"b2\",\"m\":0}]}";
	static const char subst[] = "\"\\{}[],0.e-+ \tx\x01";
	struct err err;
	struct store *st = open_store(&err);
	REQUIRE(st);
	char page[sizeof base];
	int applied = 0;
	for (size_t i = 0; i + 1 < sizeof base; i++) {
		for (size_t k = 0; k + 1 < sizeof subst; k++) {
			memcpy(page, base, sizeof base);
			page[i] = subst[k];
			cJSON *tree = cJSON_ParseWithLength(page, sizeof base - 1);
			if (!tree) continue;
			struct store_delta cur = { 0 };
			struct graph_delta_counts c = { 0 };
			bool complete;
			if (graph_delta_apply_page_text(st, TID, tree, page, sizeof base - 1, &cur, &c, &complete, &err) == 0)
				applied++;
			cJSON_Delete(tree);
		}
	}
	CHECK(applied > 50);
	sqlite3_stmt *s = NULL;
	REQUIRE(sqlite3_prepare_v2(store_sqlite(st), "SELECT count(*), sum(json_valid(json)) FROM users", -1, &s,
	                           NULL) == SQLITE_OK);
	REQUIRE(sqlite3_step(s) == SQLITE_ROW);
	CHECK(sqlite3_column_int(s, 0) > 0);
	CHECK_EQ_INT(sqlite3_column_int(s, 1), sqlite3_column_int(s, 0));
	sqlite3_finalize(s);
	close_store(st);
}
