/* test_syncro — the Syncro client against the fake Syncro
 * (tests/fakes/fake_syncro.py, started here once for all these tests and
 * reset before each): paging, customers by id and name, contact CRUD and
 * shapes, error results, retries, unknown outcomes, 429 holds, pacing, and
 * the API key kept out of logs; the resource handle the billing and ticket
 * calls share. Also the JSON shapes without a server. */
#include "t.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/http.h"
#include "util/log.h"
#include "syncro/syncro.h"
#include "syncro/syncro_billing.h"
#include "syncro/syncro_tickets.h"

#define KEY "sk-test-syncro-0123456789abcdef"

/* ---- the fake ----------------------------------------------------------------- */

static pid_t g_fake_pid;
static int g_fake_port;
static bool g_fake_failed;

static void fake_stop(void)
{
	if (g_fake_pid > 0) {
		kill(g_fake_pid, SIGTERM);
		waitpid(g_fake_pid, NULL, 0);
		g_fake_pid = 0;
	}
}

/* Starts the fake once (no data, no rate limit, api key KEY). False (and
 * the test skips) when python3 or the fake is not there. */
static bool fake_up(void)
{
	if (g_fake_pid > 0) return true;
	if (g_fake_failed) return false;
	g_fake_failed = true;
	const char *script = t_env("FAKE_SYNCRO") ? t_env("FAKE_SYNCRO") : "tests/fakes/fake_syncro.py";
	if (access(script, R_OK) != 0 || system("command -v python3 >/dev/null 2>&1") != 0) return false;
	char port_file[600];
	snprintf(port_file, sizeof port_file, "%s/fake_syncro.port", t_tmpdir());
	pid_t pid = fork();
	if (pid < 0) return false;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);   /* never outlives the tests */
		FILE *devnull = freopen("/dev/null", "w", stderr);
		(void)devnull;
		execlp("python3", "python3", script, "--port", "0", "--port-file", port_file, "--api-key", KEY,
		       "--data", "none", "--rate-limit", "0", (char *)NULL);
		_exit(127);
	}
	g_fake_pid = pid;
	atexit(fake_stop);
	for (int i = 0; i < 400; i++) {
		FILE *f = fopen(port_file, "r");
		if (f) {
			int ok = fscanf(f, "%d", &g_fake_port);
			fclose(f);
			if (ok == 1 && g_fake_port > 0) {
				g_fake_failed = false;
				return true;
			}
		}
		if (waitpid(pid, NULL, WNOHANG) == pid) break;
		usleep(25000);
	}
	fake_stop();
	return false;
}

static size_t ctl_write(char *p, size_t size, size_t n, void *ud)
{
	buf_add(ud, p, size * n);
	return size * n;
}

/* One control call to the fake (/_fake/<path>); returns the HTTP status and
 * the parsed answer in *out (caller deletes; may be NULL). */
static long fake_ctl(const char *method, const char *path, const char *json, cJSON **out)
{
	char url[512];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/_fake/%s", g_fake_port, path);
	struct buf body = {0};
	CURL *h = curl_easy_init();
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	if (json) curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, ctl_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
	long status = 0;
	if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(h);
	if (out) *out = body.data ? cJSON_Parse(body.data) : NULL;
	buf_free(&body);
	return status;
}

/* Resets the fake and seeds it with json (NULL = nothing). */
static bool fake_reset(const char *seed)
{
	if (fake_ctl("POST", "reset", "{\"data\":\"none\"}", NULL) != 200) return false;
	return !seed || fake_ctl("POST", "seed", seed, NULL) == 200;
}

/* Number of stored contacts with this e-mail. */
static int fake_count_email(const char *email)
{
	char path[300];
	snprintf(path, sizeof path, "contacts?email=%s", email);
	cJSON *r = NULL;
	fake_ctl("GET", path, NULL, &r);
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(r, "contacts"));
	cJSON_Delete(r);
	return n;
}

/* Requests the fake logged for method and a path regex. *out (optional)
 * receives the list; returns its length. */
static int fake_requests(const char *method, const char *path_rx, cJSON **out)
{
	char path[300];
	snprintf(path, sizeof path, "requests?method=%s&path=%s", method, path_rx);
	cJSON *r = NULL;
	fake_ctl("GET", path, NULL, &r);
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(r, "requests"));
	if (out) *out = r;
	else cJSON_Delete(r);
	return n;
}

/* The fake's count of 429 answers since the last reset. */
static int fake_429s(void)
{
	cJSON *r = NULL;
	fake_ctl("GET", "stats", NULL, &r);
	int n = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "requests"), "status_429")->valueint;
	cJSON_Delete(r);
	return n;
}

/* ---- a client on the fake ---------------------------------------------------------- */

struct fixture {
	struct http_engine *e;
	struct syncro_client *sc;
	struct err err;
};

/* Engine + client on the fake; rpm 0 = fast (60,000 a minute). */
static bool fixture_open(struct fixture *fx, double rpm, double window, const char *key)
{
	memset(fx, 0, sizeof *fx);
	fx->e = http_engine_new(NULL, &fx->err);
	if (!fx->e) return false;
	char base[128];
	snprintf(base, sizeof base, "http://127.0.0.1:%d/api/v1", g_fake_port);
	fx->sc = syncro_client_new(fx->e, &(struct syncro_opts){
		.base_url = base, .api_key = key ? key : KEY,
		.requests_per_minute = rpm > 0 ? rpm : 60000, .window_seconds = window,
	}, &fx->err);
	return fx->sc != NULL;
}

static void fixture_close(struct fixture *fx)
{
	http_engine_free(fx->e);
	syncro_client_free(fx->sc);
}

#define NEED_FAKE() do { if (!fake_up()) { t_skip("python3 or tests/fakes/fake_syncro.py missing"); return; } } while (0)

/* Fields of a new contact of customer 101 (fs is emptied first). */
static void new_contact(struct syncro_fields *fs, const char *name, const char *email)
{
	syncro_fields_free(fs);
	syncro_fields_set(fs, SYNCRO_F_CUSTOMER_ID, "101");
	syncro_fields_set(fs, SYNCRO_F_NAME, name);
	syncro_fields_set(fs, SYNCRO_F_EMAIL, email);
}

static const char *const SEED_ONE =
	"{\"customers\":[{\"id\":101,\"business_name\":\"Contoso Ltd\"}]}";

/* ---- JSON shapes (no server) -------------------------------------------------------- */

TEST(syncro_json_contact_shapes)
{
	struct err err = {{0}};
	struct syncro_contact c;
	cJSON *flat = cJSON_Parse("{\"id\":7,\"name\":\"Jane\",\"email\":\"j@x.com\",\"phone\":null,"
	                          "\"zip\":62701,\"customer_id\":55,\"properties\":{\"title\":\"CFO\",\"x\":1},"
	                          "\"title\":\"ignored\",\"updated_at\":\"2026-01-01T00:00:00.000Z\"}");
	REQUIRE_OK(syncro_contact_from_json(flat, &c, &err), &err);
	CHECK_EQ_INT(c.id, 7);
	CHECK_EQ_INT(c.customer_id, 55);
	CHECK_STR(c.f.v[SYNCRO_F_NAME], "Jane");
	CHECK_STR(c.f.v[SYNCRO_F_TITLE], "CFO");            /* properties.title wins */
	CHECK_STR(c.f.v[SYNCRO_F_ZIP], "62701");            /* a number as text */
	CHECK_STR(c.f.v[SYNCRO_F_CUSTOMER_ID], "55");
	CHECK(c.f.v[SYNCRO_F_PHONE] == NULL);               /* null = absent */
	CHECK(c.f.v[SYNCRO_F_MOBILE] == NULL);
	CHECK_CONTAINS(c.properties_json, "\"x\":1");
	syncro_contact_free(&c);
	cJSON_Delete(flat);

	cJSON *wrapped = cJSON_Parse("{\"contact\":{\"id\":8,\"name\":\"Bo\",\"title\":\"Boss\"}}");
	REQUIRE_OK(syncro_contact_from_json(wrapped, &c, &err), &err);
	CHECK_EQ_INT(c.id, 8);
	CHECK_STR(c.f.v[SYNCRO_F_TITLE], "Boss");           /* top-level title as fallback */
	syncro_contact_free(&c);
	cJSON_Delete(wrapped);

	cJSON *noid = cJSON_Parse("{\"name\":\"x\"}");
	CHECK(syncro_contact_from_json(noid, &c, &err) < 0);
	syncro_contact_free(&c);
	cJSON_Delete(noid);

	struct syncro_customer cu;
	cJSON *cw = cJSON_Parse("{\"customer\":{\"id\":101,\"business_name\":\"Contoso\",\"disabled\":true}}");
	REQUIRE_OK(syncro_customer_from_json(cw, &cu, &err), &err);
	CHECK_EQ_INT(cu.id, 101);
	CHECK_STR(cu.business_name, "Contoso");
	CHECK(cu.disabled);
	syncro_customer_free(&cu);
	cJSON_Delete(cw);
	cJSON *cf = cJSON_Parse("{\"id\":102,\"business_name\":null,\"fullname\":\"Walkin Customer\"}");
	REQUIRE_OK(syncro_customer_from_json(cf, &cu, &err), &err);
	CHECK_EQ_INT(cu.id, 102);
	CHECK(cu.business_name == NULL);
	CHECK_STR(cu.fullname, "Walkin Customer");
	syncro_customer_free(&cu);
	cJSON_Delete(cf);
}

/* Customers by business name, as the sync and tenants discover match them:
 * the same in any case, similar without punctuation or as a part, and the
 * sync's words for several or none. */
TEST(syncro_customer_names)
{
	CHECK_EQ_INT(syncro_name_match("ÆRØ BÅDEBYGGERI APS", "Ærø Bådebyggeri ApS"), SYNCRO_NAME_SAME);
	CHECK_EQ_INT(syncro_name_match("Acme, Inc.", "Acme Inc"), SYNCRO_NAME_SIMILAR);
	CHECK_EQ_INT(syncro_name_match("ACME Inc (Europe)", "Acme Inc"), SYNCRO_NAME_SIMILAR);
	CHECK_EQ_INT(syncro_name_match("Acme", "Acme Inc"), SYNCRO_NAME_OTHER);
	CHECK_EQ_INT(syncro_name_match(NULL, "Acme"), SYNCRO_NAME_OTHER);
	CHECK_EQ_INT(syncro_name_match("Acme", ""), SYNCRO_NAME_OTHER);
	char dup1[] = "Dup Co", dup2[] = "DUP CO", acme[] = "Acme, Inc.", aero[] = "ÆRØ BÅDEBYGGERI APS";
	struct syncro_customer list[] = { { .id = 202, .business_name = dup1 }, { .id = 203, .business_name = dup2 },
	                                  { .id = 204, .business_name = acme }, { .id = 205, .business_name = aero },
	                                  { .id = 206, .business_name = NULL } };
	const struct syncro_customer *found = NULL;
	struct err err = {{0}};
	size_t similar = 9;
	CHECK_EQ_INT(syncro_customer_pick(list, 5, "Ærø Bådebyggeri ApS", &found, &similar, &err), SYNCRO_OK);
	CHECK(found == &list[3]);
	CHECK_EQ_INT(syncro_customer_pick(list, 5, "dup co", &found, &similar, &err), SYNCRO_AMBIGUOUS);
	CHECK(found == NULL);
	CHECK_STR(err.msg, "2 customers have this business name: 202 'Dup Co', 203 'DUP CO'; set the tenant's "
	          "syncro_customer_id to the one to use");
	CHECK_EQ_INT(syncro_customer_pick(list, 5, "Acme Inc", &found, &similar, &err), SYNCRO_NOT_FOUND);
	CHECK(similar == 1);
	CHECK_CONTAINS(err.msg, "no customer has this business name (similar: 204 'Acme, Inc.'); set the tenant's "
	               "syncro_customer to the exact name");
	CHECK_EQ_INT(syncro_customer_pick(list, 5, "Lonely", &found, &similar, &err), SYNCRO_NOT_FOUND);
	CHECK(similar == 0);
	CHECK_CONTAINS(err.msg, "no customer has this business name; check");
}

TEST(syncro_json_bodies_and_errors)
{
	struct err err = {{0}};
	struct syncro_fields fs = {0};
	char *body = NULL;
	syncro_fields_set(&fs, SYNCRO_F_NAME, "Jane \"J\" Doe");
	syncro_fields_set(&fs, SYNCRO_F_TITLE, "CFO");
	syncro_fields_set(&fs, SYNCRO_F_PHONE, "");
	CHECK_EQ_INT(syncro_contact_body(&fs, true, &body, &err), SYNCRO_INVALID);   /* no customer_id */
	CHECK_CONTAINS(err.msg, "customer_id");
	syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, "abc");
	CHECK_EQ_INT(syncro_contact_body(&fs, true, &body, &err), SYNCRO_INVALID);
	syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, "101");
	REQUIRE(syncro_contact_body(&fs, true, &body, &err) == SYNCRO_OK);
	cJSON *j = cJSON_Parse(body);
	CHECK(cJSON_IsNumber(cJSON_GetObjectItem(j, "customer_id")));
	CHECK_EQ_INT(cJSON_GetObjectItem(j, "customer_id")->valueint, 101);
	CHECK_STR(cJSON_GetObjectItem(j, "name")->valuestring, "Jane \"J\" Doe");
	CHECK_STR(cJSON_GetObjectItem(j, "phone")->valuestring, "");          /* "" is a value */
	CHECK(cJSON_GetObjectItem(j, "email") == NULL);                        /* NULL is not sent */
	CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "properties"), "title")->valuestring, "CFO");
	cJSON_Delete(j);
	free(body);
	syncro_fields_free(&fs);

	syncro_fields_set(&fs, SYNCRO_F_TITLE, "CEO");
	REQUIRE(syncro_contact_body(&fs, false, &body, &err) == SYNCRO_OK);
	CHECK_STR(body, "{\"title\":\"CEO\"}");   /* update: only the change, no properties hash */
	free(body);
	syncro_fields_free(&fs);

	CHECK_EQ_INT(syncro_field_lookup("address2"), SYNCRO_F_ADDRESS2);
	CHECK_EQ_INT(syncro_field_lookup("nope"), -1);
	CHECK_STR(syncro_field_name(SYNCRO_F_CUSTOMER_ID), "customer_id");

	struct { const char *body, *want; } cases[] = {
		{ "{\"record\":{},\"errors\":\"Email is not an email\"}", "Email is not an email" },
		{ "{\"errors\":[\"Name can't be blank\",\"Email is not an email\"]}",
		  "Name can't be blank; Email is not an email" },
		{ "{\"errors\":{\"mute_for\":[\"is invalid\"]}}", "mute_for: is invalid" },
		{ "{\"success\":false,\"message\":[\"Email is not an email\"]}", "Email is not an email" },
		{ "{\"error\":\"Customer required field\"}", "Customer required field" },
		{ "<html>Bad Request</html>", "" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct buf b = {0};
		syncro_error_text(cases[i].body, &b);
		CHECK_STR(b.data ? b.data : "", cases[i].want);
		buf_free(&b);
	}
	CHECK(syncro_result_recordable(SYNCRO_INVALID) && syncro_result_recordable(SYNCRO_NOT_FOUND));
	CHECK(!syncro_result_recordable(SYNCRO_UNAUTHORIZED) && syncro_result_fatal(SYNCRO_UNAUTHORIZED));
	CHECK(!syncro_result_fatal(SYNCRO_FAILED));
	CHECK_STR(syncro_result_name(SYNCRO_UNKNOWN_OUTCOME), "unknown_outcome");
}

TEST(syncro_client_options)
{
	struct err err = {{0}};
	struct http_engine *e = http_engine_new(NULL, &err);
	REQUIRE(e);
	CHECK(!syncro_client_new(e, &(struct syncro_opts){ .base_url = "http://example.com/api/v1",
	                                                  .api_key = KEY }, &err));
	CHECK_CONTAINS(err.msg, "https");
	CHECK(!syncro_client_new(e, &(struct syncro_opts){ .subdomain = "acme" }, &err));
	CHECK_CONTAINS(err.msg, "api_key");
	CHECK(!syncro_client_new(e, &(struct syncro_opts){ .subdomain = "acme.evil", .api_key = KEY }, &err));
	struct syncro_client *sc = syncro_client_new(e, &(struct syncro_opts){ .subdomain = "acme",
	                                             .api_key = KEY }, &err);
	REQUIRE(sc);
	/* 180 a minute, less 2 %: 176.4 */
	CHECK(syncro_client_pace(sc) > 176.3 && syncro_client_pace(sc) < 176.5);
	CHECK(syncro_client_lane(sc, "t1") == syncro_client_lane(sc, "t1"));
	CHECK(syncro_client_lane(sc, "t1") != syncro_client_lane(sc, "t2"));
	char url[] = "https://acme.syncromsp.com/api/v1", key[] = KEY;
	struct config_syncro cfg = { .base_url = url, .api_key = key, .requests_per_minute = 360 };
	struct syncro_opts o;
	syncro_opts_from_config(&cfg, &o);
	CHECK_STR(o.base_url, cfg.base_url);
	CHECK(o.requests_per_minute == 360);
	http_engine_free(e);
	syncro_client_free(sc);
}

/* ---- against the fake ------------------------------------------------------------- */

/* Seeds customer 101 with n contacts named c<i>, e-mail c<i>@contoso.com. */
static bool seed_contacts(int n)
{
	struct buf s = {0};
	buf_adds(&s, "{\"customers\":[{\"id\":101,\"business_name\":\"Contoso Ltd\"}],\"contacts\":[");
	for (int i = 0; i < n; i++)
		buf_printf(&s, "%s{\"customer_id\":101,\"name\":\"c%d\",\"email\":\"c%d@contoso.com\"}", i ? "," : "", i, i);
	buf_adds(&s, "]}");
	bool ok = fake_reset(s.data);
	buf_free(&s);
	return ok;
}

TEST(syncro_list_follows_total_pages)
{
	NEED_FAKE();
	REQUIRE(seed_contacts(120));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 0, NULL));
	struct syncro_contact_list l = {0};
	CHECK_EQ_INT(syncro_contacts_list(fx.sc, 101, &l, &fx.err), SYNCRO_OK);
	CHECK_EQ_INT(l.n, 120);
	bool all = l.n == 120;
	for (size_t i = 0; all && i < l.n; i++) {
		char want[32];
		snprintf(want, sizeof want, "c%zu", i);
		all = l.items[i].f.v[SYNCRO_F_NAME] && strcmp(l.items[i].f.v[SYNCRO_F_NAME], want) == 0 &&
		      l.items[i].customer_id == 101;
	}
	CHECK(all);
	syncro_contact_list_free(&l);
	CHECK_EQ_INT(fake_requests("GET", "^/api/v1/contacts$", NULL), 3);   /* 50 a page */

	/* Another page size: no size is assumed, meta.total_pages is followed. */
	REQUIRE(fake_ctl("POST", "config", "{\"page_size\":{\"contacts\":7}}", NULL) == 200);
	fake_ctl("DELETE", "requests", NULL, NULL);
	CHECK_EQ_INT(syncro_contacts_list(fx.sc, 101, &l, &fx.err), SYNCRO_OK);
	CHECK_EQ_INT(l.n, 120);
	CHECK_EQ_INT(fake_requests("GET", "^/api/v1/contacts$", NULL), 18);
	syncro_contact_list_free(&l);

	/* A customer without contacts: one page, nothing. */
	REQUIRE(fake_ctl("POST", "seed", "{\"customers\":[{\"id\":150,\"business_name\":\"Empty\"}]}", NULL) == 200);
	CHECK_EQ_INT(syncro_contacts_list(fx.sc, 150, &l, &fx.err), SYNCRO_OK);
	CHECK_EQ_INT(l.n, 0);
	syncro_contact_list_free(&l);
	fixture_close(&fx);
}

TEST(syncro_customer_by_id_and_name)
{
	NEED_FAKE();
	REQUIRE(fake_reset("{\"customers\":["
		"{\"id\":101,\"business_name\":\"Contoso Ltd\"},"
		"{\"id\":102,\"business_name\":\"Contoso Ltd Holdings\"},"
		"{\"id\":103,\"business_name\":\"Fabrikam\"},"
		"{\"id\":104,\"business_name\":\"FABRIKAM\"},"
		"{\"id\":105,\"business_name\":\"Northwind\"},"
		"{\"id\":106,\"business_name\":\"Northwind Traders\"}]}"));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 0, NULL));
	struct syncro_customer c;

	CHECK_EQ_INT(syncro_customer_get(fx.sc, 103, &c, &fx.err), SYNCRO_OK);   /* wrapped */
	CHECK_EQ_INT(c.id, 103);
	CHECK_STR(c.business_name, "Fabrikam");
	syncro_customer_free(&c);
	CHECK_EQ_INT(syncro_customer_get(fx.sc, 999, &c, &fx.err), SYNCRO_NOT_FOUND);
	CHECK_CONTAINS(fx.err.msg, "999");
	syncro_customer_free(&c);

	/* exact, case-insensitive; the "like" neighbour does not count */
	CHECK_EQ_INT(syncro_customer_find(fx.sc, "contoso ltd", &c, &fx.err), SYNCRO_OK);
	CHECK_EQ_INT(c.id, 101);
	syncro_customer_free(&c);

	/* matches spread over pages (1 a page here) */
	REQUIRE(fake_ctl("POST", "config", "{\"page_size\":{\"customers\":1}}", NULL) == 200);
	CHECK_EQ_INT(syncro_customer_find(fx.sc, "Northwind Traders", &c, &fx.err), SYNCRO_OK);
	CHECK_EQ_INT(c.id, 106);
	syncro_customer_free(&c);

	CHECK_EQ_INT(syncro_customer_find(fx.sc, "Fabrikam", &c, &fx.err), SYNCRO_AMBIGUOUS);
	CHECK_CONTAINS(fx.err.msg, "103 'Fabrikam'");
	CHECK_CONTAINS(fx.err.msg, "104 'FABRIKAM'");
	CHECK(c.id == 0);
	syncro_customer_free(&c);

	CHECK_EQ_INT(syncro_customer_find(fx.sc, "Contoso", &c, &fx.err), SYNCRO_NOT_FOUND);
	CHECK_CONTAINS(fx.err.msg, "101 'Contoso Ltd'");   /* similar names offered */
	syncro_customer_free(&c);
	CHECK_EQ_INT(syncro_customer_find(fx.sc, "Wide World & Co", &c, &fx.err), SYNCRO_NOT_FOUND);
	CHECK_CONTAINS(fx.err.msg, "no customer");
	syncro_customer_free(&c);
	cJSON *reqs = NULL;
	fake_requests("GET", "^/api/v1/customers$", &reqs);
	bool encoded = false;
	cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(reqs, "requests"))
		encoded = encoded || strstr(cJSON_GetObjectItem(it, "query")->valuestring, "Wide%20World%20%26%20Co");
	CHECK(encoded);
	cJSON_Delete(reqs);
	fixture_close(&fx);
}

TEST(syncro_contact_crud_and_title)
{
	NEED_FAKE();
	REQUIRE(fake_reset(SEED_ONE));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 0, NULL));
	struct syncro_fields fs = {0};
	new_contact(&fs, "Adele Vance", "adele@contoso.com");
	syncro_fields_set(&fs, SYNCRO_F_TITLE, "Retail Manager");
	syncro_fields_set(&fs, SYNCRO_F_CITY, "Redmond");
	struct syncro_contact c;
	REQUIRE(syncro_contact_create(fx.sc, &fs, &c, &fx.err) == SYNCRO_OK);
	syncro_fields_free(&fs);
	long long id = c.id;
	CHECK(id > 0);
	CHECK_EQ_INT(c.customer_id, 101);
	CHECK_STR(c.f.v[SYNCRO_F_TITLE], "Retail Manager");
	syncro_contact_free(&c);

	/* stored as properties.title, not top-level */
	cJSON *st = NULL;
	fake_ctl("GET", "contacts?email=adele@contoso.com", NULL, &st);
	cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "contacts"), 0);
	CHECK_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(rec, "properties"), "title")->valuestring, "Retail Manager");
	CHECK(cJSON_GetObjectItem(rec, "title") == NULL);
	cJSON_Delete(st);

	REQUIRE(syncro_contact_get(fx.sc, id, &c, &fx.err) == SYNCRO_OK);   /* flat */
	CHECK_EQ_INT(c.id, id);
	CHECK_STR(c.f.v[SYNCRO_F_EMAIL], "adele@contoso.com");
	CHECK_STR(c.f.v[SYNCRO_F_CITY], "Redmond");
	CHECK_STR(c.f.v[SYNCRO_F_TITLE], "Retail Manager");
	syncro_contact_free(&c);

	/* update sends only the changed fields */
	syncro_fields_set(&fs, SYNCRO_F_TITLE, "Store Director");
	syncro_fields_set(&fs, SYNCRO_F_PHONE, "+1 425 555 0109");
	REQUIRE(syncro_contact_update(fx.sc, id, &fs, &c, &fx.err) == SYNCRO_OK);
	syncro_fields_free(&fs);
	CHECK_STR(c.f.v[SYNCRO_F_TITLE], "Store Director");
	CHECK_STR(c.f.v[SYNCRO_F_PHONE], "+1 425 555 0109");
	CHECK_STR(c.f.v[SYNCRO_F_CITY], "Redmond");      /* untouched */
	CHECK_STR(c.f.v[SYNCRO_F_NAME], "Adele Vance");
	syncro_contact_free(&c);
	cJSON *puts = NULL;
	REQUIRE(fake_requests("PUT", "^/api/v1/contacts/", &puts) == 1);
	cJSON *sent = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(puts, "requests"), 0), "body");
	CHECK_EQ_INT(cJSON_GetArraySize(sent), 2);
	CHECK(cJSON_GetObjectItem(sent, "title") && cJSON_GetObjectItem(sent, "phone"));
	cJSON_Delete(puts);

	/* moving it to another customer; to one that does not exist */
	REQUIRE(fake_ctl("POST", "customers", "{\"id\":102,\"business_name\":\"Fabrikam\"}", NULL) == 200);
	syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, "102");
	REQUIRE(syncro_contact_update(fx.sc, id, &fs, &c, &fx.err) == SYNCRO_OK);
	CHECK_EQ_INT(c.customer_id, 102);
	syncro_contact_free(&c);
	syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, "999");
	CHECK_EQ_INT(syncro_contact_update(fx.sc, id, &fs, NULL, &fx.err), SYNCRO_NOT_FOUND);
	CHECK_CONTAINS(fx.err.msg, "or the customer it was to move to");
	syncro_fields_free(&fs);

	CHECK_EQ_INT(syncro_contact_delete(fx.sc, id, &fx.err), SYNCRO_OK);
	CHECK_EQ_INT(syncro_contact_get(fx.sc, id, &c, &fx.err), SYNCRO_NOT_FOUND);
	syncro_contact_free(&c);
	CHECK_EQ_INT(fake_count_email("adele@contoso.com"), 0);
	fixture_close(&fx);
}

TEST(syncro_errors_422_404_401)
{
	NEED_FAKE();
	REQUIRE(fake_reset(SEED_ONE));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 0, NULL));
	struct syncro_fields fs = {0};
	new_contact(&fs, "Bad Email", "not-an-email");
	enum syncro_result rc = syncro_contact_create(fx.sc, &fs, NULL, &fx.err);
	CHECK_EQ_INT(rc, SYNCRO_INVALID);
	CHECK(syncro_result_recordable(rc));
	CHECK_CONTAINS(fx.err.msg, "Email is not an email");
	CHECK_EQ_INT(fake_count_email("not-an-email"), 0);

	/* create for a customer that does not exist */
	syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, "999");
	syncro_fields_set(&fs, SYNCRO_F_EMAIL, "ok@contoso.com");
	CHECK_EQ_INT(syncro_contact_create(fx.sc, &fs, NULL, &fx.err), SYNCRO_NOT_FOUND);
	CHECK_CONTAINS(fx.err.msg, "customer 999");
	syncro_fields_free(&fs);

	/* update / delete of a contact deleted in Syncro */
	syncro_fields_set(&fs, SYNCRO_F_PHONE, "1");
	CHECK_EQ_INT(syncro_contact_update(fx.sc, 424242, &fs, NULL, &fx.err), SYNCRO_NOT_FOUND);
	CHECK_CONTAINS(fx.err.msg, "424242");
	CHECK_EQ_INT(syncro_contact_delete(fx.sc, 424242, &fx.err), SYNCRO_NOT_FOUND);
	/* nothing to update is refused before sending */
	syncro_fields_free(&fs);
	CHECK_EQ_INT(syncro_contact_update(fx.sc, 1, &fs, NULL, &fx.err), SYNCRO_INVALID);

	/* 401: a permission missing */
	REQUIRE(fake_ctl("POST", "config", "{\"deny\":[\"contacts.create\"]}", NULL) == 200);
	syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, "101");
	syncro_fields_set(&fs, SYNCRO_F_NAME, "X");
	rc = syncro_contact_create(fx.sc, &fs, NULL, &fx.err);
	syncro_fields_free(&fs);
	CHECK_EQ_INT(rc, SYNCRO_UNAUTHORIZED);
	CHECK(syncro_result_fatal(rc));
	CHECK_CONTAINS(fx.err.msg, "permission 'Customers - Edit'");
	CHECK_CONTAINS(fx.err.msg, "Customers - List/Search");
	CHECK_CONTAINS(fx.err.msg, "API Tokens");
	fixture_close(&fx);

	/* 401: a wrong key */
	REQUIRE(fixture_open(&fx, 0, 0, "sk-wrong-key-000000000000"));
	struct syncro_contact_list l;
	CHECK_EQ_INT(syncro_contacts_list(fx.sc, 101, &l, &fx.err), SYNCRO_UNAUTHORIZED);
	CHECK_CONTAINS(fx.err.msg, "Customers - View Detail");
	syncro_contact_list_free(&l);
	fixture_close(&fx);
}

TEST(syncro_get_5xx_retried)
{
	NEED_FAKE();
	REQUIRE(seed_contacts(3));
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"GET\",\"match\":\"/contacts$\",\"status\":503,\"times\":2}",
	                 NULL) == 200);
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 0, NULL));
	struct syncro_contact_list l;
	CHECK_EQ_INT(syncro_contacts_list(fx.sc, 101, &l, &fx.err), SYNCRO_OK);
	CHECK_EQ_INT(l.n, 3);
	syncro_contact_list_free(&l);
	struct http_counters k;
	http_service_counters(syncro_client_service(fx.sc), &k);
	CHECK_EQ_INT(k.retries, 2);
	CHECK_EQ_INT(fake_requests("GET", "^/api/v1/contacts$", NULL), 3);

	/* a GET failing on every attempt ends as SYNCRO_FAILED */
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"GET\",\"match\":\"/contacts/\",\"status\":500,\"times\":-1}",
	                 NULL) == 200);
	struct syncro_contact c;
	CHECK_EQ_INT(syncro_contact_get(fx.sc, 1001, &c, &fx.err), SYNCRO_FAILED);
	CHECK_CONTAINS(fx.err.msg, "HTTP 500");
	syncro_contact_free(&c);
	fixture_close(&fx);
}

TEST(syncro_post_unknown_outcome_not_retried)
{
	NEED_FAKE();
	REQUIRE(fake_reset(SEED_ONE));
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"POST\",\"match\":\"/contacts$\",\"after_apply\":true,"
	                 "\"drop\":\"no_response\"}", NULL) == 200);
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 0, NULL));
	struct syncro_fields fs = {0};
	new_contact(&fs, "Dropped", "dropped@contoso.com");
	struct syncro_contact c;
	CHECK_EQ_INT(syncro_contact_create(fx.sc, &fs, &c, &fx.err), SYNCRO_UNKNOWN_OUTCOME);
	CHECK_CONTAINS(fx.err.msg, "may or may not");
	CHECK(c.id == 0);
	CHECK_EQ_INT(fake_count_email("dropped@contoso.com"), 1);    /* applied once, never again */
	CHECK_EQ_INT(fake_requests("POST", "^/api/v1/contacts$", NULL), 1);

	/* a 5xx on POST is just as unknown, and not retried either */
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"POST\",\"match\":\"/contacts$\",\"status\":502}", NULL) == 200);
	syncro_fields_set(&fs, SYNCRO_F_EMAIL, "bad-gateway@contoso.com");
	CHECK_EQ_INT(syncro_contact_create(fx.sc, &fs, &c, &fx.err), SYNCRO_UNKNOWN_OUTCOME);
	CHECK_EQ_INT(fake_requests("POST", "^/api/v1/contacts$", NULL), 2);
	syncro_fields_free(&fs);
	syncro_contact_free(&c);
	fixture_close(&fx);
}

TEST(syncro_429_waited_out)
{
	NEED_FAKE();
	REQUIRE(seed_contacts(1));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 1.0, NULL));   /* the hold lasts the window: 1 s here */
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"GET\",\"match\":\"/contacts/\",\"status\":429}", NULL) == 200);
	struct syncro_contact c;
	double t0 = time_mono();
	CHECK_EQ_INT(syncro_contact_get(fx.sc, 1001, &c, &fx.err), SYNCRO_OK);
	double took = time_mono() - t0;
	CHECK(took >= 0.95);
	CHECK(took < 5);
	CHECK_EQ_INT(c.id, 1001);
	syncro_contact_free(&c);
	CHECK_EQ_INT(syncro_client_throttled(fx.sc), 1);

	/* a 429 on POST: not applied, so sent again after the hold; one contact */
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"POST\",\"match\":\"/contacts$\",\"status\":429}", NULL) == 200);
	struct syncro_fields fs = {0};
	new_contact(&fs, "Throttled", "throttled@contoso.com");
	t0 = time_mono();
	CHECK_EQ_INT(syncro_contact_create(fx.sc, &fs, NULL, &fx.err), SYNCRO_OK);
	CHECK(time_mono() - t0 >= 0.95);
	syncro_fields_free(&fs);
	CHECK_EQ_INT(fake_count_email("throttled@contoso.com"), 1);
	CHECK_EQ_INT(fake_requests("POST", "^/api/v1/contacts$", NULL), 2);
	CHECK_EQ_INT(syncro_client_throttled(fx.sc), 2);
	fixture_close(&fx);
}

static void note_time(struct syncro_reply *r, void *ctx)
{
	*(double *)ctx = r->rc == SYNCRO_OK ? time_mono() : -1;
}

TEST(syncro_429_holds_every_lane)
{
	NEED_FAKE();
	REQUIRE(seed_contacts(2));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 1.0, NULL));
	struct http_lane *la = syncro_client_lane(fx.sc, "tenant-a"), *lb = syncro_client_lane(fx.sc, "tenant-b");
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"GET\",\"match\":\"/contacts/1001$\",\"status\":429}",
	                 NULL) == 200);
	double done_a = 0, done_b = 0;
	REQUIRE_OK(syncro_submit(fx.sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_GET, .id = 1001, .lane = la },
	                         note_time, &done_a, &fx.err), &fx.err);
	double t0 = time_mono();
	while (syncro_client_throttled(fx.sc) == 0 && time_mono() - t0 < 5) REQUIRE_OK(http_step(fx.e, 20, &fx.err), &fx.err);
	REQUIRE(syncro_client_throttled(fx.sc) == 1);
	/* tenant b's request is held too: Syncro's limit is per IP, not per tenant */
	t0 = time_mono();
	REQUIRE_OK(syncro_submit(fx.sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_GET, .id = 1002, .lane = lb },
	                         note_time, &done_b, &fx.err), &fx.err);
	REQUIRE_OK(http_run(fx.e, &fx.err), &fx.err);
	CHECK(done_a > 0 && done_b > 0);
	CHECK(done_b - t0 >= 0.8);
	fixture_close(&fx);
}

TEST(syncro_pacing_avoids_429)
{
	NEED_FAKE();
	REQUIRE(seed_contacts(1));
	/* the fake admits 60 requests in any 5 s; the client is told 720 a minute */
	REQUIRE(fake_ctl("POST", "config", "{\"rate_limit\":60,\"window\":5}", NULL) == 200);
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 720, 5, NULL));
	double pace = syncro_client_pace(fx.sc) / 60.0;   /* per second */
	CHECK(pace < 12.0);
	int n = 80, ok = 0;
	double t0 = time_mono();
	for (int i = 0; i < n; i++) {
		struct syncro_contact c;
		ok += syncro_contact_get(fx.sc, 1001, &c, &fx.err) == SYNCRO_OK;
		syncro_contact_free(&c);
	}
	double took = time_mono() - t0;
	int throttled = fake_429s();
	CHECK_EQ_INT(ok, n);
	CHECK_EQ_INT(throttled, 0);
	CHECK_EQ_INT(syncro_client_throttled(fx.sc), 0);
	double bound = (n - 1.5) / pace;                  /* the pace, not the window, sets the time */
	CHECK(took >= bound * 0.98);
	CHECK(took <= bound + 1.5);
	printf("    pacing: %d requests in %.2f s (pace %.1f/s, bound %.2f s), %d x 429\n", n, took, pace, bound,
	       throttled);
	fixture_close(&fx);
}

struct async_tally {
	int done, ok;
	size_t contacts;
};

static void async_done(struct syncro_reply *r, void *ctx)
{
	struct async_tally *t = ctx;
	t->done++;
	t->ok += r->rc == SYNCRO_OK;
	if (r->op == SYNCRO_OP_CONTACTS_LIST) t->contacts += r->contacts.n;
}

TEST(syncro_async_lanes)
{
	NEED_FAKE();
	REQUIRE(fake_reset("{\"customers\":[{\"id\":101,\"business_name\":\"A\"},{\"id\":102,\"business_name\":\"B\"}],"
	                   "\"contacts\":[{\"customer_id\":101,\"name\":\"a1\"},{\"customer_id\":102,\"name\":\"b1\"},"
	                   "{\"customer_id\":102,\"name\":\"b2\"}]}"));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 0, NULL));
	struct async_tally t = {0};
	struct http_lane *la = syncro_client_lane(fx.sc, "tenant-a"), *lb = syncro_client_lane(fx.sc, "tenant-b");
	struct syncro_fields fs = {0};
	syncro_fields_set(&fs, SYNCRO_F_NAME, "new");
	for (int i = 0; i < 5; i++) {
		char cid[8];
		snprintf(cid, sizeof cid, "%d", 101 + i % 2);
		syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, cid);
		REQUIRE_OK(syncro_submit(fx.sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_CREATE, .fields = &fs,
		                         .lane = i % 2 ? lb : la }, async_done, &t, &fx.err), &fx.err);
	}
	syncro_fields_free(&fs);
	REQUIRE_OK(syncro_submit(fx.sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACTS_LIST, .id = 102, .lane = lb },
	                         async_done, &t, &fx.err), &fx.err);
	CHECK(syncro_submit(fx.sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_GET, .id = 0 }, async_done, &t,
	                    &fx.err) < 0);   /* refused: no callback */
	REQUIRE_OK(http_run(fx.e, &fx.err), &fx.err);
	CHECK_EQ_INT(t.done, 6);
	CHECK_EQ_INT(t.ok, 6);
	CHECK(t.contacts >= 2);   /* b1, b2, and the creates that ran before the listing */
	cJSON *st = NULL;
	fake_ctl("GET", "health", NULL, &st);
	CHECK_EQ_INT(cJSON_GetObjectItem(cJSON_GetObjectItem(st, "counts"), "contacts")->valueint, 8);
	cJSON_Delete(st);

	/* operations pending when the engine goes are completed as failures */
	REQUIRE_OK(syncro_submit(fx.sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACTS_LIST, .id = 101 },
	                         async_done, &t, &fx.err), &fx.err);
	fixture_close(&fx);
	CHECK_EQ_INT(t.done, 7);
	CHECK_EQ_INT(t.ok, 6);
}

TEST(syncro_api_key_never_logged)
{
	NEED_FAKE();
	REQUIRE(seed_contacts(2));
	char *text = NULL;
	size_t len = 0;
	FILE *cap = open_memstream(&text, &len);
	REQUIRE(cap);
	enum log_level was = log_get_level();
	log_set_stream(cap);
	log_set_level(LOG_TRACE);
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 1.0, NULL));
	struct syncro_contact_list l;
	CHECK_EQ_INT(syncro_contacts_list(fx.sc, 101, &l, &fx.err), SYNCRO_OK);
	syncro_contact_list_free(&l);
	struct syncro_fields fs = {0};
	syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, "101");
	syncro_fields_set(&fs, SYNCRO_F_NAME, KEY);            /* even echoed back by Syncro */
	syncro_fields_set(&fs, SYNCRO_F_EMAIL, "bad");
	CHECK_EQ_INT(syncro_contact_create(fx.sc, &fs, NULL, &fx.err), SYNCRO_INVALID);
	CHECK(!strstr(fx.err.msg, KEY));
	syncro_fields_free(&fs);
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"GET\",\"status\":429}", NULL) == 200);
	CHECK_EQ_INT(syncro_contacts_list(fx.sc, 101, &l, &fx.err), SYNCRO_OK);
	syncro_contact_list_free(&l);
	fixture_close(&fx);
	REQUIRE(fixture_open(&fx, 0, 0, "sk-wrong-key-000000000000"));
	CHECK_EQ_INT(syncro_contacts_list(fx.sc, 101, &l, &fx.err), SYNCRO_UNAUTHORIZED);
	CHECK(!strstr(fx.err.msg, "sk-wrong-key-000000000000"));
	syncro_contact_list_free(&l);
	fixture_close(&fx);
	fflush(cap);
	log_set_stream(stderr);
	log_set_level(was);
	CHECK_CONTAINS(text, "syncro");
	CHECK_CONTAINS(text, "429");
	CHECK(!strstr(text, KEY));
	CHECK(!strstr(text, "sk-wrong-key-000000000000"));
	CHECK(!strstr(text, "api_key"));
	fclose(cap);
	free(text);
	/* the key went as a Bearer header, never in a URL */
	cJSON *reqs = NULL;
	fake_requests("GET", "^/api/v1/", &reqs);
	cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(reqs, "requests"))
		CHECK(!strstr(cJSON_GetObjectItem(it, "query")->valuestring, "api_key"));
	cJSON_Delete(reqs);
}

/* syncro_request: the shared raw request (tickets, billing) keeps the
 * client's header and the same result rules as the contact calls. */
TEST(syncro_request_raw_rules)
{
	NEED_FAKE();
	REQUIRE(fake_reset(SEED_ONE));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 1.0, NULL));
	cJSON *out = NULL;
	/* the client's Authorization header: a GET that needs it works */
	CHECK_EQ_INT(syncro_request(fx.sc, &(struct syncro_req){ .path = "/customers/101" }, &out, &fx.err), SYNCRO_OK);
	struct syncro_customer cu;
	CHECK_OK(syncro_customer_from_json(out, &cu, &fx.err), &fx.err);
	CHECK_EQ_INT(cu.id, 101);
	syncro_customer_free(&cu);
	cJSON_Delete(out);
	/* 404, with the default "METHOD path" in the message; *out NULL */
	out = (cJSON *)&fx;
	CHECK_EQ_INT(syncro_request(fx.sc, &(struct syncro_req){ .path = "/customers/999" }, &out, &fx.err),
	             SYNCRO_NOT_FOUND);
	CHECK(out == NULL);
	CHECK_CONTAINS(fx.err.msg, "Syncro: GET /customers/999: not found");
	/* 422: Syncro's message */
	const struct syncro_req bad = { .method = "POST", .path = "/contacts", .what = "create contact",
	                                .body = "{\"customer_id\":101,\"name\":\"B\",\"email\":\"not-an-email\"}" };
	CHECK_EQ_INT(syncro_request(fx.sc, &bad, NULL, &fx.err), SYNCRO_INVALID);
	CHECK_CONTAINS(fx.err.msg, "Syncro: create contact: ");
	CHECK_CONTAINS(fx.err.msg, "Email is not an email");
	/* a 429 on POST: not applied, sent again after the hold */
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"POST\",\"match\":\"/contacts$\",\"status\":429}", NULL) == 200);
	const struct syncro_req ok = { .method = "POST", .path = "/contacts",
	                               .body = "{\"customer_id\":101,\"name\":\"R\",\"email\":\"raw@contoso.com\"}" };
	CHECK_EQ_INT(syncro_request(fx.sc, &ok, &out, &fx.err), SYNCRO_OK);
	cJSON_Delete(out);
	CHECK_EQ_INT(fake_count_email("raw@contoso.com"), 1);
	CHECK_EQ_INT(syncro_client_throttled(fx.sc), 1);
	/* a 5xx on a POST: unknown outcome, not sent again; repeatable: retried */
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"POST\",\"match\":\"/contacts$\",\"status\":502}", NULL) == 200);
	int before = fake_requests("POST", "^/api/v1/contacts$", NULL);
	CHECK_EQ_INT(syncro_request(fx.sc, &ok, NULL, &fx.err), SYNCRO_UNKNOWN_OUTCOME);
	CHECK_CONTAINS(fx.err.msg, "may or may not have been applied");
	CHECK_EQ_INT(fake_requests("POST", "^/api/v1/contacts$", NULL), before + 1);
	fixture_close(&fx);
	/* 401: the permissions the caller names, the key never in the message */
	REQUIRE(fixture_open(&fx, 0, 0, "sk-wrong-key-000000000000"));
	CHECK_EQ_INT(syncro_request(fx.sc, &(struct syncro_req){ .path = "/customers/101", .permissions = "Tickets - X" },
	                            NULL, &fx.err), SYNCRO_UNAUTHORIZED);
	CHECK_CONTAINS(fx.err.msg, "lacks a permission (Tickets - X)");
	CHECK(strstr(fx.err.msg, "sk-wrong-key") == NULL);
	fixture_close(&fx);
}

/* One syncro_resource serves the ticket and the billing calls: each names
 * its own permissions on a 401, counts its requests, and an answer without
 * a record is an unknown outcome for a create, a failure for a read. */
TEST(syncro_resource_tickets_and_billing)
{
	struct err err = {{0}};
	CHECK(syncro_resource_new(NULL, SYNCRO_TICKET_PERMISSIONS, &err) == NULL);
	CHECK_CONTAINS(err.msg, "no client");
	NEED_FAKE();
	REQUIRE(fake_reset(SEED_ONE));
	struct fixture fx;
	REQUIRE(fixture_open(&fx, 0, 0, NULL));
	struct syncro_resource *tickets = syncro_resource_new(fx.sc, SYNCRO_TICKET_PERMISSIONS, &fx.err);
	struct syncro_resource *billing = syncro_resource_new(fx.sc, SYNCRO_BILLING_PERMISSIONS, &fx.err);
	REQUIRE(tickets && billing);

	/* a real ticket, created and read back */
	struct syncro_ticket t, got;
	CHECK_EQ_INT(syncro_ticket_create(tickets, &(struct syncro_ticket_new){ .customer_id = 101,
	             .subject = "Disk full", .body = "on SRV1" }, &t, &fx.err), SYNCRO_OK);
	CHECK(t.id > 0);
	CHECK_EQ_INT(syncro_ticket_get(tickets, t.id, &got, &fx.err), SYNCRO_OK);
	CHECK_EQ_INT(got.id, t.id);
	CHECK_STR(got.subject, "Disk full");
	syncro_ticket_free(&got);
	CHECK_EQ_INT(syncro_resource_requests(tickets), 2);
	CHECK_EQ_INT(syncro_resource_requests(billing), 0);

	/* 2xx without a record: a create may have been applied, a read failed */
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"POST\",\"match\":\"/tickets$\",\"status\":200,"
	                 "\"body\":{\"nothing\":1}}", NULL) == 200);
	struct syncro_ticket lost;
	CHECK_EQ_INT(syncro_ticket_create(tickets, &(struct syncro_ticket_new){ .customer_id = 101, .subject = "X" },
	                                  &lost, &fx.err), SYNCRO_UNKNOWN_OUTCOME);
	CHECK_CONTAINS(fx.err.msg, "Syncro: create ticket (customer 101): unexpected answer");
	CHECK_CONTAINS(fx.err.msg, "may have been applied");
	CHECK(lost.id == 0);
	REQUIRE(fake_ctl("POST", "faults", "{\"method\":\"GET\",\"match\":\"/tickets/\",\"status\":200,"
	                 "\"body\":{\"ticket\":{}}}", NULL) == 200);
	CHECK_EQ_INT(syncro_ticket_get(tickets, t.id, &got, &fx.err), SYNCRO_FAILED);
	CHECK_CONTAINS(fx.err.msg, "unexpected answer");
	CHECK(strstr(fx.err.msg, "may have been applied") == NULL);
	syncro_ticket_free(&got);
	syncro_ticket_free(&t);
	CHECK_EQ_INT(syncro_resource_requests(tickets), 4);

	/* 401: each resource names its own permissions; a request naming its own wins */
	REQUIRE(fake_ctl("POST", "faults", "{\"match\":\"/products/\",\"status\":401,\"times\":2}", NULL) == 200);
	struct syncro_product p;
	CHECK_EQ_INT(syncro_product_get(billing, 7, &p, &fx.err), SYNCRO_UNAUTHORIZED);
	CHECK_CONTAINS(fx.err.msg, "(" SYNCRO_BILLING_PERMISSIONS ")");
	syncro_product_free(&p);
	CHECK_EQ_INT(syncro_resource_request(billing, &(struct syncro_req){ .path = "/products/7",
	             .permissions = "Products - List" }, NULL, &fx.err), SYNCRO_UNAUTHORIZED);
	CHECK_CONTAINS(fx.err.msg, "lacks a permission (Products - List)");
	CHECK_EQ_INT(syncro_resource_requests(billing), 2);
	REQUIRE(fake_ctl("POST", "faults", "{\"match\":\"/tickets/\",\"status\":401}", NULL) == 200);
	CHECK_EQ_INT(syncro_ticket_comment(tickets, 5, NULL, "b", &fx.err), SYNCRO_UNAUTHORIZED);
	CHECK_CONTAINS(fx.err.msg, "(" SYNCRO_TICKET_PERMISSIONS ")");

	syncro_resource_free(billing);
	syncro_resource_free(tickets);
	syncro_resource_free(NULL);
	fixture_close(&fx);
}

/* A listing's pages must fit page 1 (syncro_pages_next): else a record is
 * missed and made again. */
static int pages_step(struct syncro_pages *pg, long long page, const char *json, char *why)
{
	cJSON *root = cJSON_Parse(json);
	int r = syncro_pages_next(pg, page, 1000, root, cJSON_GetObjectItem(root, "items"), why, 200);
	cJSON_Delete(root);
	return r;
}

TEST(syncro_pages_must_fit)
{
	struct syncro_pages pg;
	char why[200];
	/* three pages of 2, the last shorter: fits */
	CHECK_EQ_INT(pages_step(&pg, 1, "{\"items\":[1,2],\"meta\":{\"total_pages\":3}}", why), 1);
	CHECK_EQ_INT(pages_step(&pg, 2, "{\"items\":[3,4],\"meta\":{\"total_pages\":3}}", why), 1);
	CHECK_EQ_INT(pages_step(&pg, 3, "{\"items\":[5],\"meta\":{\"total_pages\":3}}", why), 0);
	/* an empty or short page before the last */
	CHECK_EQ_INT(pages_step(&pg, 1, "{\"items\":[1,2],\"meta\":{\"total_pages\":3}}", why), 1);
	CHECK_EQ_INT(pages_step(&pg, 2, "{\"items\":[],\"meta\":{\"total_pages\":3}}", why), -1);
	CHECK_CONTAINS(why, "page 2 of 3 has 0 items where page 1 had 2");
	CHECK_EQ_INT(pages_step(&pg, 2, "{\"items\":[3],\"meta\":{\"total_pages\":3}}", why), -1);
	/* total_pages that changes, a last page longer than page 1 */
	CHECK_EQ_INT(pages_step(&pg, 2, "{\"items\":[3,4],\"meta\":{\"total_pages\":2}}", why), -1);
	CHECK_CONTAINS(why, "page 2 says 2 pages where page 1 said 3");
	CHECK_EQ_INT(pages_step(&pg, 3, "{\"items\":[5,6,7],\"meta\":{\"total_pages\":3}}", why), -1);
	/* no total_pages: until an empty page */
	CHECK_EQ_INT(pages_step(&pg, 1, "{\"items\":[1]}", why), 1);
	CHECK_EQ_INT(pages_step(&pg, 2, "{\"items\":[]}", why), 0);
	/* one page, empty */
	CHECK_EQ_INT(pages_step(&pg, 1, "{\"items\":[],\"meta\":{\"total_pages\":1}}", why), 0);
	CHECK_EQ_INT(pages_step(&pg, 1, "{\"items\":[],\"meta\":{\"total_pages\":0}}", why), 0);
}
