/* test_config — the config loader and its helpers: every bad fixture under
 * tests/fixtures/config/bad (each states the messages it must produce in
 * "-- expect:" lines, values that must not appear in "-- not:" lines and
 * the number of problems in "-- problems:"), the same for the config's own
 * limits (tests/fixtures/config/limits), the good fixtures parsed in
 * full, URL policy, tenant ids, suggestions, discovery and redaction. */
#include "t.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/config.h"
#include "util/log.h"

#define FIXTURES "tests/fixtures/config"
#define GRAPH_SECRET "graph-secret-for-tests"
#define SYNCRO_KEY "syncro-key-for-tests"

static void set_test_env(void)
{
	setenv("ENTRASYNC_GRAPH_SECRET", GRAPH_SECRET, 1);
	setenv("SYNCRO_API_KEY", SYNCRO_KEY, 1);
	unsetenv("ES_TEST_SURELY_UNSET");
}

static const char *write_file(const char *dir, const char *name, const char *text)
{
	static char path[600];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f) return NULL;
	fputs(text, f);
	fclose(f);
	return path;
}

/* The problems in a message: its lines, less a traceback's (its heading and
 * the tab-indented frames under it). */
static size_t count_problems(const char *s)
{
	size_t n = 0;
	for (const char *line = s; *line; ) {
		const char *end = strchr(line, '\n');
		if (line[0] != '\t' && !str_starts(line, "stack traceback:")) n++;
		if (!end) break;
		line = end + 1;
	}
	return n;
}

/* Checks one bad fixture against the expectations written in its header. */
static void check_bad_fixture(const char *path)
{
	char *src = NULL;
	size_t len;
	struct err err, rerr;
	struct config cfg;
	int nprob = -1;
	if (file_read(path, &src, &len, &rerr) != 0) {
		t_fail(__FILE__, __LINE__, "%s", rerr.msg);
		return;
	}
	memset(&err, 0, sizeof err);
	if (config_load(path, &cfg, &err) == 0) {
		t_fail(__FILE__, __LINE__, "%s: loaded, expected an error", path);
		config_free(&cfg);
		free(src);
		return;
	}
	CHECK(cfg.tenants == NULL && cfg.path == NULL);        /* left empty on failure */
	for (char *line = strtok(src, "\n"); line; line = strtok(NULL, "\n")) {
		if (str_starts(line, "-- expect: ")) {
			const char *want = line + 11;
			char full[700];
			/* ":LINE: ..." must follow the file's own name */
			if (want[0] == ':') snprintf(full, sizeof full, "%s%s", path, want);
			else snprintf(full, sizeof full, "%s", want);
			if (!strstr(err.msg, full)) t_fail(__FILE__, __LINE__, "%s: missing \"%s\" in:\n%s", path, full, err.msg);
		} else if (str_starts(line, "-- not: ")) {
			if (strstr(err.msg, line + 8)) t_fail(__FILE__, __LINE__, "%s: leaks \"%s\":\n%s", path, line + 8, err.msg);
		} else if (str_starts(line, "-- problems: ")) {
			nprob = atoi(line + 13);
		}
	}
	if (nprob < 0) t_fail(__FILE__, __LINE__, "%s: no '-- problems: N' line", path);
	else if (count_problems(err.msg) != (size_t)nprob)
		t_fail(__FILE__, __LINE__, "%s: %zu problems reported, expected %d:\n%s", path, count_problems(err.msg), nprob,
		       err.msg);
	free(src);
}

static int lua_file(const struct dirent *d)
{
	return str_ends(d->d_name, ".lua");
}

/* Checks every fixture of FIXTURES/sub (at least min of them). */
static void check_fixture_dir(const char *sub, int min)
{
	struct dirent **names;
	char dir[256];
	snprintf(dir, sizeof dir, "%s/%s", FIXTURES, sub);
	int n = scandir(dir, &names, lua_file, alphasort);
	REQUIRE(n >= min);
	for (int i = 0; i < n; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
		check_bad_fixture(path);
		free(names[i]);
	}
	free(names);
}

TEST(config_bad_fixtures)
{
	set_test_env();
	check_fixture_dir("bad", 30);
}

/* The config's own limits (an endless loop, one inside a pcall, a runaway
 * table) under 1 million instructions and 4 MiB of Lua memory, so that they
 * end quickly under valgrind too; the defaults (100 million, 256 MiB) are
 * checked end to end by test_config.sh. */
TEST(config_limit_fixtures)
{
	set_test_env();
	config_set_run_limits(1000000, (size_t)4 << 20);
	check_fixture_dir("limits", 3);
	config_set_run_limits(0, 0);
}

TEST(config_good_parsed_in_full)
{
	struct config cfg;
	struct err err;
	set_test_env();
	REQUIRE_OK(config_load(FIXTURES "/good.lua", &cfg, &err), &err);
	CHECK_STR(cfg.path, FIXTURES "/good.lua");
	CHECK_STR(cfg.dir, FIXTURES);
	CHECK_STR(cfg.database, FIXTURES "/state/test.db");
	CHECK_STR(cfg.policy, FIXTURES "/policies/default.lua");
	CHECK_EQ_INT(cfg.policy_line, 17);
	CHECK_STR(cfg.graph.client_id, "11111111-2222-3333-4444-555555555555");
	CHECK_STR(cfg.graph.client_secret, GRAPH_SECRET);
	CHECK(cfg.graph.certificate == NULL && cfg.graph.private_key == NULL);
	CHECK_STR(cfg.graph.authority, "http://127.0.0.5:18080");     /* trailing '/' dropped */
	CHECK_STR(cfg.graph.endpoint, "http://[::1]:18081");
	CHECK_STR(cfg.graph.ca_file, FIXTURES "/certs/ca.pem");
	CHECK_STR(cfg.graph.jwt_alg, "RS256");
	CHECK_STR(cfg.syncro.base_url, "https://acme.syncromsp.com/api/v1");
	CHECK_STR(cfg.syncro.api_key, SYNCRO_KEY);
	CHECK(cfg.syncro.requests_per_minute == 120.0);
	CHECK(cfg.syncro.ca_file == NULL);
	REQUIRE(cfg.ntenants == 3);
	CHECK_STR(cfg.tenants[0].id, "contoso.onmicrosoft.com");
	CHECK_STR(cfg.tenants[0].name, "Contoso");
	CHECK_EQ_INT(cfg.tenants[0].syncro_customer_id, 101);
	CHECK(cfg.tenants[0].syncro_customer == NULL);
	CHECK_STR(cfg.tenants[0].policy, FIXTURES "/policies/contoso.lua");
	CHECK_EQ_INT(cfg.tenants[0].line, 19);
	CHECK_EQ_INT(cfg.tenants[0].policy_line, 19);
	CHECK_STR(cfg.tenants[1].id, "fabrikam.onmicrosoft.com");
	CHECK(cfg.tenants[1].name == NULL);
	CHECK_EQ_INT(cfg.tenants[1].syncro_customer_id, 0);
	CHECK_STR(cfg.tenants[1].syncro_customer, "Fabrikam Inc");
	CHECK_STR(cfg.tenants[1].policy, FIXTURES "/policies/default.lua");
	CHECK_EQ_INT(cfg.tenants[1].policy_line, 17);
	CHECK_STR(cfg.tenants[2].id, "0f0e0d0c-0b0a-0908-0706-050403020100");   /* folded to lower case */
	CHECK_EQ_INT(cfg.tenants[2].syncro_customer_id, 303);
	CHECK_EQ_INT(cfg.tenants[2].line, 21);
	CHECK_STR(cfg.csp_partner_tenant, "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
	CHECK_EQ_INT(cfg.limits.instructions, 5000000);
	CHECK_EQ_INT(cfg.limits.memory_bytes, 32u << 20);
	CHECK(cfg.tenants[0].billing_schedule == NULL);
	CHECK_STR(cfg.tenants[1].billing_schedule, "Fabrikam M365");
	CHECK_STR(cfg.actions.ticket_problem_type, "Microsoft action");
	CHECK_STR(cfg.actions.ticket_status_done, "Resolved");
	CHECK_STR(cfg.actions.ticket_status_failed, "Waiting on Customer");
	CHECK_STR(cfg.billing.schedule, "301");                 /* an id, kept in digits */
	CHECK(cfg.billing.remove);
	CHECK_EQ_INT(cfg.billing.max_decrease_count, 8);
	CHECK(cfg.billing.max_decrease_percent == 12.5);
	CHECK(cfg.billing.schedules_on_sync);
	CHECK(cfg.alerts.enabled);
	CHECK_STR(cfg.alerts.problem_type, "Licensing");
	CHECK_STR(cfg.alerts.subject_prefix, "[MSP]");
	CHECK_EQ_INT(cfg.alerts.unused_days, 14);
	CHECK_EQ_INT(cfg.alerts.failing_hours, 6);
	CHECK_EQ_INT(cfg.retention.runs_days, 30);
	CHECK_EQ_INT(cfg.retention.audit_days, 730);
	CHECK_EQ_INT(cfg.retention.score_detail_days, 90);
	/* the secrets were registered for redaction as they were read */
	struct buf b = {0};
	log_redact("token " GRAPH_SECRET " and " SYNCRO_KEY, &b);
	CHECK_STR(b.data, "token [REDACTED] and [REDACTED]");
	buf_free(&b);
	config_free(&cfg);
	CHECK(cfg.path == NULL && cfg.ntenants == 0);
	config_free(&cfg);                                     /* twice is harmless */
}

TEST(config_good_return_style_with_certificate)
{
	struct config cfg;
	struct err err;
	set_test_env();
	REQUIRE_OK(config_load(FIXTURES "/good_cert.lua", &cfg, &err), &err);
	CHECK(cfg.graph.client_secret == NULL);
	CHECK_STR(cfg.graph.certificate, FIXTURES "/certs/cert.pem");
	CHECK_STR(cfg.graph.private_key, FIXTURES "/certs/key.pem");
	CHECK_STR(cfg.graph.jwt_alg, "PS256");                   /* defaults */
	CHECK_STR(cfg.graph.authority, CONFIG_DEFAULT_AUTHORITY);
	CHECK_STR(cfg.graph.endpoint, CONFIG_DEFAULT_ENDPOINT);
	CHECK_STR(cfg.database, FIXTURES "/state/entrasync.db");
	CHECK_STR(cfg.syncro.base_url, "https://acme.syncromsp.com/api/v1");
	CHECK(cfg.syncro.requests_per_minute == 180.0);
	CHECK(cfg.csp_partner_tenant == NULL);
	CHECK_EQ_INT(cfg.limits.instructions, CONFIG_DEFAULT_INSTRUCTIONS);
	CHECK_EQ_INT(cfg.limits.memory_bytes, (size_t)CONFIG_DEFAULT_MEMORY_MB << 20);
	REQUIRE(cfg.ntenants == 2);
	CHECK_EQ_INT(cfg.tenants[1].syncro_customer_id, 202);
	CHECK_EQ_INT(cfg.tenants[1].line, 13);   /* built by a helper: the list's line */
	/* no actions, billing or alerts tables: everything off, the defaults */
	CHECK(cfg.actions.ticket_problem_type == NULL && cfg.actions.ticket_status_done == NULL &&
	      cfg.actions.ticket_status_failed == NULL);
	CHECK(cfg.billing.schedule == NULL && !cfg.billing.remove && !cfg.billing.schedules_on_sync);
	CHECK_EQ_INT(cfg.billing.max_decrease_count, -1);
	CHECK(cfg.billing.max_decrease_percent == -1);
	CHECK(cfg.tenants[0].billing_schedule == NULL);
	CHECK(!cfg.alerts.enabled);
	CHECK_STR(cfg.alerts.problem_type, CONFIG_DEFAULT_ALERT_PROBLEM);
	CHECK_STR(cfg.alerts.subject_prefix, CONFIG_DEFAULT_ALERT_PREFIX);
	CHECK_EQ_INT(cfg.alerts.unused_days, CONFIG_DEFAULT_UNUSED_DAYS);
	CHECK_EQ_INT(cfg.alerts.failing_hours, CONFIG_DEFAULT_FAILING_HOURS);
	CHECK_EQ_INT(cfg.retention.runs_days, CONFIG_DEFAULT_RUNS_DAYS);   /* runs 90 days, audit for ever */
	CHECK_EQ_INT(cfg.retention.audit_days, 0);
	CHECK_EQ_INT(cfg.retention.score_detail_days, CONFIG_DEFAULT_SCORE_DETAIL_DAYS);
	config_free(&cfg);
}

TEST(config_missing_file)
{
	struct config cfg;
	struct err err;
	CHECK(config_load(FIXTURES "/no-such-config.lua", &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "cannot read config");
	CHECK_CONTAINS(err.msg, "no-such-config.lua: No such file or directory");
	CHECK(config_load(FIXTURES, &cfg, &err) != 0);           /* a directory */
	CHECK_CONTAINS(err.msg, "cannot read config");
}

TEST(config_paths_resolve_against_the_config_folder)
{
	const char *dir = t_tmpdir();
	struct config cfg;
	struct err err;
	char text[2048];
	set_test_env();
	REQUIRE(write_file(dir, "p.lua", "return {}\n"));
	snprintf(text, sizeof text,
	         "database = '/var/lib/entrasync/x.db'\n"
	         "graph = { client_id = '4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59', client_secret = env('UNSET_WITH_DEFAULT_X', 'fallback-secret') }\n"
	         "syncro = { subdomain = 'Acme-2', api_key = env('SYNCRO_API_KEY'), requests_per_minute = 600 }\n"
	         "tenants = { { id = 'a.example.com', syncro_customer_id = 1.0, policy = 'p.lua' },\n"
	         "            { id = 'b.example.com', syncro_customer = 'B', policy = '%s/p.lua' } }\n", dir);
	const char *path = write_file(dir, "entrasync.lua", text);
	REQUIRE(path);
	char *log_text = NULL;
	size_t log_len = 0;
	FILE *logf = open_memstream(&log_text, &log_len);
	log_set_stream(logf);
	int rc = config_load(path, &cfg, &err);
	log_set_stream(NULL);
	fclose(logf);
	REQUIRE_OK(rc, &err);
	char want[700];
	CHECK_STR(cfg.dir, dir);
	CHECK_STR(cfg.database, "/var/lib/entrasync/x.db");       /* absolute: unchanged */
	snprintf(want, sizeof want, "%s/p.lua", dir);
	CHECK_STR(cfg.tenants[0].policy, want);
	CHECK_STR(cfg.tenants[1].policy, want);
	CHECK_EQ_INT(cfg.tenants[0].syncro_customer_id, 1);        /* 1.0 counts as an integer */
	CHECK_STR(cfg.graph.client_secret, "fallback-secret");    /* env() default */
	CHECK_STR(cfg.syncro.base_url, "https://Acme-2.syncromsp.com/api/v1");
	CHECK(cfg.syncro.requests_per_minute == 600.0);            /* allowed, with a warning */
	CHECK_CONTAINS(log_text, "entrasync.lua:3: syncro.requests_per_minute 600 is above Syncro's limit of 180");
	free(log_text);
	config_free(&cfg);
}

TEST(config_env_empty_and_many_problems)
{
	const char *dir = t_tmpdir();
	struct config cfg;
	struct err err;
	set_test_env();
	setenv("ES_TEST_EMPTY", "", 1);
	const char *path = write_file(dir, "empty.lua", "x = 1\ngraph = { client_secret = env('ES_TEST_EMPTY') }\n");
	REQUIRE(path);
	CHECK(config_load(path, &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "empty.lua:2: environment variable ES_TEST_EMPTY is empty");
	unsetenv("ES_TEST_EMPTY");
	/* more problems than fit in one message: whole lines, then a count */
	struct buf b = {0};
	for (int i = 0; i < 100; i++) buf_printf(&b, "unknown_key_number_%d = %d\n", i, i);
	path = write_file(dir, "many.lua", b.data);
	buf_free(&b);
	REQUIRE(path);
	CHECK(config_load(path, &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "many.lua:1: unknown key 'unknown_key_number_0' at top level\n");
	CHECK_CONTAINS(err.msg, "more problems)");
	CHECK(strlen(err.msg) < sizeof err.msg - 1);
	/* a UTF-8 byte order mark (Windows editors) is fine; lines still count */
	path = write_file(dir, "bom.lua", "\xEF\xBB\xBF" "database = 'x.db'\ngraph = 7\n");
	CHECK(config_load(path, &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "bom.lua:2: graph must be a table, not an integer");
	/* a table is accepted as the chunk's result only: other values are not */
	path = write_file(dir, "ret.lua", "return 42\n");
	CHECK(config_load(path, &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "not return an integer");
}

TEST(config_check_url_policy)
{
	struct err err;
	static const char *const ok[] = {
		"https://graph.microsoft.com", "HTTPS://login.microsoftonline.com/x", "http://127.0.0.1:8080/api",
		"http://127.0.0.5", "http://127.255.255.254/x", "http://[::1]:9000/", "http://localhost",
		"http://LocalHost:1/p", "http://user:pw@127.0.0.1/", "http://[::ffff:127.0.0.1]/",
	};
	for (size_t i = 0; i < ARRAY_LEN(ok); i++)
		if (config_check_url("k", ok[i], &err) != 0) t_fail(__FILE__, __LINE__, "refused %s: %s", ok[i], err.msg);
	static const char *const bad[] = {
		"http://graph.microsoft.com", "http://128.0.0.1", "http://127.0.0.1.evil.example/",
		"http://127.0.0.1@evil.example/", "http://[::2]/", "http://localhost.evil.example",
		"http://10.0.0.1", "ftp://127.0.0.1/", "file:///etc/passwd", "graph.microsoft.com", "https://",
		"http://", "https:// space.example", "http://[::1/", "",
		"https://acme.syncromsp.com:99999/api/v1", "https://acme.syncromsp.com:0/api/v1", "https://a.example:/x",
		"https://a.example:8o/x", "https://acme.syncromsp.com/api/v1?key=1", "https://graph.microsoft.com#x",
	};
	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		if (config_check_url("k", bad[i], &err) == 0) t_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
	CHECK(config_check_url("graph.endpoint", "http://graph.example.com/v1", &err) != 0);
	CHECK_CONTAINS(err.msg, "graph.endpoint 'http://graph.example.com/v1' uses plain http:// to 'graph.example.com'");
	CHECK(config_check_url("syncro.base_url", "gopher://x", &err) != 0);
	CHECK_CONTAINS(err.msg, "syncro.base_url 'gopher://x' must start with https://");
	CHECK(config_check_url("syncro.base_url", "https://acme.syncromsp.com:99999/api/v1", &err) != 0);
	CHECK_CONTAINS(err.msg, "has a port that is not a number from 1 to 65535");
	CHECK(config_check_url("syncro.base_url", "https://acme.syncromsp.com/api/v1?x=1", &err) != 0);
	CHECK_CONTAINS(err.msg, "has a query or fragment");
}

TEST(config_tenant_id_shape)
{
	CHECK(config_is_tenant_id("0f0e0d0c-0b0a-0908-0706-050403020100"));
	CHECK(config_is_tenant_id("AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"));
	CHECK(config_is_tenant_id("contoso.onmicrosoft.com"));
	CHECK(config_is_tenant_id("a-b.example.co.uk"));
	CHECK(!config_is_tenant_id("contoso"));
	CHECK(!config_is_tenant_id("0f0e0d0c-0b0a-0908-0706-05040302010"));   /* short last group */
	CHECK(!config_is_tenant_id("0f0e0d0c-0b0a-0908-0706-05040302010g"));
	CHECK(!config_is_tenant_id("-bad.example.com"));
	CHECK(!config_is_tenant_id("bad-.example.com"));
	CHECK(!config_is_tenant_id("a..example.com"));
	CHECK(!config_is_tenant_id("example.com."));
	CHECK(!config_is_tenant_id("exa mple.com"));
	CHECK(!config_is_tenant_id(""));
}

/* `sync --tenant` / `status --tenant` with a name that is not configured:
 * the nearest name or id (without case), else a short list. */
TEST(config_tenant_unknown_hints)
{
	char ids[12][48], names[12][32];
	struct config_tenant tenants[12];
	memset(tenants, 0, sizeof tenants);
	for (int i = 0; i < 12; i++) {
		snprintf(ids[i], sizeof ids[i], "%08d-0000-4000-8000-00000000000%d", i, i % 10);
		snprintf(names[i], sizeof names[i], "Customer %c", 'A' + i);
		tenants[i].id = ids[i];
		tenants[i].name = i == 0 ? NULL : names[i];
	}
	snprintf(names[1], sizeof names[1], "Contoso");
	struct config cfg = { .tenants = tenants, .ntenants = 3 };
	struct buf b = { 0 };
	config_tenant_unknown_hint(&cfg, "contso", &b);
	CHECK_STR(b.data, "(did you mean 'Contoso'?)");
	buf_reset(&b);
	config_tenant_unknown_hint(&cfg, "00000000-0000-4000-8000-0000000000O0", &b);   /* a letter O for a zero */
	CHECK_STR(b.data, "(did you mean '00000000-0000-4000-8000-000000000000'?)");
	buf_reset(&b);
	config_tenant_unknown_hint(&cfg, "woodgrove", &b);
	CHECK_STR(b.data, "(configured: 00000000-0000-4000-8000-000000000000, Contoso, Customer C)");
	buf_reset(&b);
	cfg.ntenants = 12;
	config_tenant_unknown_hint(&cfg, "woodgrove", &b);
	CHECK_CONTAINS(b.data, ", Customer J and 2 more: entrasync tenants lists them)");
	CHECK(!strstr(b.data, "Customer K"));
	buf_reset(&b);
	cfg.ntenants = 0;
	config_tenant_unknown_hint(&cfg, "woodgrove", &b);
	CHECK_STR(b.data, "(no tenants are configured)");
	buf_free(&b);
}

TEST(config_nearest_suggestions)
{
	static const char *const keys[] = { "database", "graph", "syncro", "policy", "tenants", "csp", "limits",
	                                    "actions", "billing", "alerts", NULL };
	CHECK_STR(config_nearest("tenant", keys), "tenants");
	CHECK_STR(config_nearest("datbase", keys), "database");
	CHECK_STR(config_nearest("polcy", keys), "policy");
	CHECK_STR(config_nearest("limit", keys), "limits");
	CHECK_STR(config_nearest("alert", keys), "alerts");
	CHECK_STR(config_nearest("action", keys), "actions");
	CHECK_STR(config_nearest("tenants_list", keys), "tenants");        /* known key is a prefix */
	CHECK(config_nearest("zzzzzz", keys) == NULL);
	CHECK(config_nearest("ab", keys) == NULL);                          /* too short to guess */
	static const char *const opts[] = { "--config", "--lua-dir", "--log-level", "--log-format", NULL };
	CHECK_STR(config_nearest("--confg", opts), "--config");
	CHECK_STR(config_nearest("--conf", opts), "--config");              /* prefix */
	CHECK_STR(config_nearest("--log-lvl", opts), "--log-level");
	CHECK(config_nearest("--x", opts) == NULL);
	static const char *const cmds[] = { "help", "version", "check", NULL };
	CHECK_STR(config_nearest("chek", cmds), "check");
	CHECK_STR(config_nearest("ver", cmds), "version");
}

TEST(config_locate_order)
{
	unsetenv("ENTRASYNC_CONFIG");
	CHECK_STR(config_locate(NULL), "entrasync.lua");
	setenv("ENTRASYNC_CONFIG", "", 1);
	CHECK_STR(config_locate(NULL), "entrasync.lua");
	setenv("ENTRASYNC_CONFIG", "/etc/entrasync/config.lua", 1);
	CHECK_STR(config_locate(NULL), "/etc/entrasync/config.lua");
	CHECK_STR(config_locate("mine.lua"), "mine.lua");
	unsetenv("ENTRASYNC_CONFIG");
}

/* config_load_text: the text as if read from path (which need not exist):
 * relative paths resolve against path's folder, messages name path:line. */
TEST(config_load_text_as_if_from_its_path)
{
	struct config cfg;
	struct err err;
	set_test_env();
	const char good[] = "graph = { client_id = '4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59', client_secret = env('ENTRASYNC_GRAPH_SECRET') }\n"
	                    "syncro = { subdomain = 'acme', api_key = 'k' }\n"
	                    "policy = 'pol.lua'\n"
	                    "tenants = { { id = 'a.example.com', syncro_customer_id = 1 } }\n";
	REQUIRE_OK(config_load_text("/nonexistent/conf/es.lua", good, strlen(good), CONFIG_SKIP_POLICY_FILES, &cfg,
	                            &err), &err);
	CHECK_STR(cfg.path, "/nonexistent/conf/es.lua");
	CHECK_STR(cfg.policy, "/nonexistent/conf/pol.lua");
	CHECK_STR(cfg.tenants[0].policy, "/nonexistent/conf/pol.lua");
	CHECK_STR(cfg.database, "/nonexistent/conf/state/entrasync.db");
	CHECK_STR(cfg.graph.client_secret, GRAPH_SECRET);          /* env() evaluated at load */
	config_free(&cfg);
	/* without the flag the policy file must exist */
	CHECK(config_load_text("/nonexistent/conf/es.lua", good, strlen(good), 0, &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "/nonexistent/conf/es.lua:3: policy file '/nonexistent/conf/pol.lua' cannot be read");
	/* only len bytes count */
	const char cut[] = "tenants = {}\nthis is not lua";
	CHECK(config_load_text("x/es.lua", cut, 13, 0, &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "x/es.lua:1: tenants is empty");
	CHECK(strstr(err.msg, "near") == NULL);
}

/* CONFIG_TENANTS_OPTIONAL (tenants discover): no tenants, or an empty
 * list, is no problem; a malformed list still is. */
TEST(config_tenants_optional)
{
	struct config cfg;
	struct err err;
	set_test_env();
	const char head[] = "graph = { client_id = '4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59', client_secret = 's' }\n"
	                    "syncro = { subdomain = 'acme', api_key = 'k' }\n"
	                    "csp = { partner_tenant = 'partner.example' }\n";
	const unsigned flags = CONFIG_SKIP_POLICY_FILES | CONFIG_TENANTS_OPTIONAL;
	REQUIRE_OK(config_load_text("es.lua", head, strlen(head), flags, &cfg, &err), &err);
	CHECK(cfg.ntenants == 0);
	CHECK_STR(cfg.csp_partner_tenant, "partner.example");
	config_free(&cfg);
	char text[512];
	snprintf(text, sizeof text, "%stenants = {}\n", head);
	REQUIRE_OK(config_load_text("es.lua", text, strlen(text), flags, &cfg, &err), &err);
	CHECK(cfg.ntenants == 0);
	config_free(&cfg);
	snprintf(text, sizeof text, "%stenants = { a = 1 }\n", head);
	CHECK(config_load_text("es.lua", text, strlen(text), flags, &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "'a' is a named key");
	/* without the flag: missing */
	CHECK(config_load_text("es.lua", head, strlen(head), CONFIG_SKIP_POLICY_FILES, &cfg, &err) != 0);
	CHECK_CONTAINS(err.msg, "tenants is missing");
}
