/* bench_script — users/second through the policy path on one core: Graph
 * users-delta pages of 999 users (~25 properties each, with
 * assignedLicenses, as selected in graph-api.md §4) as JSON text -> page
 * split -> the user's text checked and parsed into a (lazy) Lua user table
 * -> sandboxed include + contact of policies/default.lua -> C decision
 * struct. Also reports the parts, the same through a cJSON tree, and the
 * cost of a policy that reads u.licenses (made only when read).
 * The main figure is measured in ROUNDS rounds: the median round is the
 * figure to cite, the best round what the code does when nothing else
 * disturbs the core (on a shared machine single runs of the same binary
 * differed by half). */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "script/script.h"
#include "util/util.h"

#define PAGE_USERS 999
#define PAGES 20
#define MIN_SECONDS 2.0
#define ROUNDS 9              /* the main figure: rounds of ROUND_SECONDS, median and best reported */
#define ROUND_SECONDS 0.4

static const char *const first_names[] = { "Jane", "John", "Amélie", "Björn", "Chen", "Dana", "Élodie", "Farid",
                                           "Grace", "Hiro", "Ingrid", "Jürgen", "Kofi", "Lena", "Mateo", "Nora" };
static const char *const last_names[] = { "Doe", "Smith", "Müller", "García", "O'Brien", "Nakamura", "Kowalski",
                                          "Dubois", "Rossi", "Andersson", "Nguyen", "Okafor", "Silva", "Jensen" };
static const char *const departments[] = { "Sales", "Engineering", "Finance", "Support", "Marketing", "HR", "Legal",
                                           "Operations" };
static const char *const cities[] = { "Redmond", "Seattle", "München", "Paris", "Springfield", "Zürich", "Oslo" };

/* A pseudo-random but reproducible sequence. */
static unsigned long long g_rng = 88172645463325252ULL;
static unsigned rnd(unsigned n)
{
	g_rng ^= g_rng << 13;
	g_rng ^= g_rng >> 7;
	g_rng ^= g_rng << 17;
	return (unsigned)(g_rng % n);
}

static void guid(struct buf *b)
{
	buf_printf(b, "%08x-%04x-%04x-%04x-%04x%08x", rnd(0xffffffffu), rnd(0xffff), rnd(0xffff), rnd(0xffff),
	           rnd(0xffff), rnd(0xffffffffu));
}

/* One Graph user with the PSA $select properties. About 1 in 8 is a guest,
 * disabled, unlicensed service mailbox or has no mail. */
static void graph_user(struct buf *b, unsigned i)
{
	const char *fn = first_names[rnd(ARRAY_LEN(first_names))], *ln = last_names[rnd(ARRAY_LEN(last_names))];
	unsigned kind = rnd(16);
	bool guest = kind == 0, disabled = kind == 1, service = kind == 2, nomail = kind == 3;
	buf_adds(b, "{\"id\":\"");
	guid(b);
	if (service)
		buf_printf(b, "\",\"displayName\":\"Scanner %u\",\"givenName\":null,\"surname\":null,", i);
	else
		buf_printf(b, "\",\"displayName\":\"%s %s\",\"givenName\":\"%s\",\"surname\":\"%s\",", fn, ln, fn, ln);
	if (nomail) buf_adds(b, "\"mail\":null,");
	else if (service) buf_printf(b, "\"mail\":\"scanner%u@contoso.com\",", i);
	else buf_printf(b, "\"mail\":\"%c.user%u@Contoso.com\",", (fn[0] & 0x80) ? 'x' : fn[0], i);   /* ASCII */
	if (guest) buf_printf(b, "\"userPrincipalName\":\"u%u_fabrikam.com#EXT#@contoso.onmicrosoft.com\",\"userType\":\"Guest\",", i);
	else buf_printf(b, "\"userPrincipalName\":\"user%u@contoso.com\",\"userType\":\"Member\",", i);
	buf_printf(b, "\"accountEnabled\":%s,\"department\":\"%s\",\"officeLocation\":\"%u/%u\",\"jobTitle\":\"%s\",",
	           disabled ? "false" : "true", departments[rnd(ARRAY_LEN(departments))], 10 + rnd(30), 1000 + rnd(3000),
	           rnd(4) ? "Account Manager" : "Senior Software Engineer");
	buf_printf(b, "\"businessPhones\":[\"+1 425 555 %04u\"],\"mobilePhone\":%s,", rnd(10000),
	           rnd(3) ? "\"+1 206 555 0142\"" : "null");
	buf_printf(b, "\"streetAddress\":\"%u Main Street\",\"city\":\"%s\",\"state\":\"WA\",\"postalCode\":\"98%03u\","
	              "\"country\":\"United States\",\"companyName\":\"Contoso Ltd\",\"preferredLanguage\":\"en-US\","
	              "\"usageLocation\":\"US\",",
	           1 + rnd(9000), cities[rnd(ARRAY_LEN(cities))], rnd(1000));
	buf_adds(b, "\"assignedLicenses\":[");
	unsigned nlic = service ? 0 : 1 + rnd(3);
	for (unsigned l = 0; l < nlic; l++) {
		buf_adds(b, l ? ",{\"disabledPlans\":[" : "{\"disabledPlans\":[");
		if (rnd(3) == 0) {
			buf_addc(b, '"');
			guid(b);
			buf_addc(b, '"');
		}
		buf_adds(b, "],\"skuId\":\"");
		guid(b);
		buf_adds(b, "\"}");
	}
	buf_printf(b, "],\"onPremisesSyncEnabled\":%s,\"createdDateTime\":\"2021-0%u-1%uT08:%02u:00Z\","
	              "\"employeeId\":%s}",
	           rnd(2) ? "true" : "null", 1 + rnd(9), rnd(10), rnd(60), rnd(2) ? "\"E1234\"" : "null");
}

/* One users-delta page of n users as JSON text (caller frees). */
static char *graph_page(unsigned first, unsigned n, size_t *len)
{
	struct buf b = {0};
	buf_adds(&b, "{\"@odata.context\":\"https://graph.microsoft.com/v1.0/$metadata#users\","
	             "\"@odata.nextLink\":\"https://graph.microsoft.com/v1.0/users/delta?$skiptoken=oEBwdSP6uehIAxQOWq\","
	             "\"value\":[");
	for (unsigned i = 0; i < n; i++) {
		if (i) buf_addc(&b, ',');
		graph_user(&b, first + i);
	}
	buf_adds(&b, "]}");
	*len = b.len;
	return buf_steal(&b);
}

struct corpus {
	char *text[PAGES];
	size_t len[PAGES];
	size_t bytes;
};

static void corpus_make(struct corpus *c)
{
	memset(c, 0, sizeof *c);
	for (unsigned p = 0; p < PAGES; p++) {
		c->text[p] = graph_page(p * PAGE_USERS, PAGE_USERS, &c->len[p]);
		c->bytes += c->len[p];
	}
}

static void corpus_free(struct corpus *c)
{
	for (unsigned p = 0; p < PAGES; p++) free(c->text[p]);
}

static struct script *policy_state(const char *policy)
{
	struct script *s = NULL;
	struct err err;
	if (script_new(NULL, &s, &err) != 0 || script_policy_load(s, policy, &err) != 0) {
		fprintf(stderr, "bench_script: %s\n", err.msg);
		exit(1);
	}
	struct script_tenant t = { "00000000-0000-0000-0000-000000000001", "Contoso", "contoso.com", 1234 };
	if (script_set_tenant(s, &t, &err) != 0) {
		fprintf(stderr, "bench_script: %s\n", err.msg);
		exit(1);
	}
	return s;
}

static const char *const user_groups[] = { "All Staff", "Sales Team" };

struct text_run {
	struct script *s;
	unsigned long users, included;
};

static void fail_eval(const struct err *err)
{
	fprintf(stderr, "bench_script: %s\n", err->msg);
	exit(1);
}

/* Per item of a page's "value": evaluate the user's JSON text. */
static int eval_item(void *ud, const char *item, size_t len)
{
	struct text_run *r = ud;
	struct err err;
	r->users++;
	if (!r->s) return 0;
	struct policy_user in = { .json = item, .len = len, .groups = user_groups, .ngroups = 2 };
	struct policy_decision d;
	if (script_policy_eval(r->s, &in, &d, &err) != 0) fail_eval(&err);
	r->included += d.include;
	policy_decision_free(&d);
	return 0;
}

/* The text path: each page split into user texts (one scan), each user
 * parsed straight into Lua and evaluated (when s is not NULL). */
static unsigned long run_text(const struct corpus *c, struct script *s, unsigned long *included)
{
	struct text_run r = { .s = s };
	struct err err;
	for (unsigned p = 0; p < PAGES; p++)
		if (script_json_each_item(c->text[p], c->len[p], "value", eval_item, &r, &err) != 0) fail_eval(&err);
	*included += r.included;
	return r.users;
}

/* The tree path: each page parsed by cJSON, each user object converted
 * from the tree (when s is not NULL). */
static unsigned long run_tree(const struct corpus *c, struct script *s, unsigned long *included)
{
	unsigned long users = 0;
	struct err err;
	for (unsigned p = 0; p < PAGES; p++) {
		cJSON *page = cJSON_ParseWithLength(c->text[p], c->len[p]);
		const cJSON *value = cJSON_GetObjectItemCaseSensitive(page, "value");
		const cJSON *u;
		cJSON_ArrayForEach(u, value) {
			users++;
			if (!s) continue;
			struct policy_user in = { .graph = u, .groups = user_groups, .ngroups = 2 };
			struct policy_decision d;
			if (script_policy_eval(s, &in, &d, &err) != 0) {
				fprintf(stderr, "bench_script: %s\n", err.msg);
				exit(1);
			}
			*included += d.include;
			policy_decision_free(&d);
		}
		cJSON_Delete(page);
	}
	return users;
}

/* CPU seconds of this thread: the machine may be shared, and CPU time is
 * what one core spends on the work whatever else runs. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef unsigned long (*run_fn)(const struct corpus *c, struct script *s, unsigned long *included);

/* Repeats run for at least min_seconds of CPU (one pass with BENCH_ONCE=1,
 * for callgrind/perf profiles); returns users per CPU second. */
static double measure_for(double min_seconds, run_fn run, const struct corpus *c, struct script *s,
                          unsigned long *included, unsigned long *users)
{
	double t0 = cpu_now(), el;
	*users = *included = 0;
	if (bench_env("BENCH_ONCE")) min_seconds = 0;
	do {
		*users += run(c, s, included);
		el = cpu_now() - t0;
	} while (el < min_seconds);
	return (double)*users / el;
}

static double measure(run_fn run, const struct corpus *c, struct script *s, unsigned long *included,
                      unsigned long *users)
{
	return measure_for(MIN_SECONDS, run, c, s, included, users);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ROUNDS rounds of measure_for (one with BENCH_ONCE): *median and *best
 * users per CPU second, *worst too; *included and *users summed. */
static void measure_rounds(run_fn run, const struct corpus *c, struct script *s, unsigned long *included,
                           unsigned long *users, double *median, double *best, double *worst)
{
	double rate[ROUNDS];
	int n = bench_env("BENCH_ONCE") ? 1 : ROUNDS;
	unsigned long inc_total = 0, users_total = 0;
	for (int r = 0; r < n; r++) {
		unsigned long inc, u;
		rate[r] = measure_for(ROUND_SECONDS, run, c, s, &inc, &u);
		inc_total += inc;
		users_total += u;
	}
	qsort(rate, (size_t)n, sizeof rate[0], cmp_double);
	*median = rate[n / 2];
	*best = rate[n - 1];
	*worst = rate[0];
	*included = inc_total;
	*users = users_total;
}

/* A policy file with the given text under $TESTS_TMP (or /tmp). */
static const char *temp_policy(const char *name, const char *text)
{
	static char path[512];
	const char *dir = bench_env("TESTS_TMP");
	snprintf(path, sizeof path, "%s/%s", dir ? dir : "/tmp", name);
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	fputs(text, f);
	fclose(f);
	return path;
}

BENCH(script_policy_users_per_second)
{
	struct corpus c;
	corpus_make(&c);
	unsigned long inc = 0, users = 0;
	double split_rate = measure(run_text, &c, NULL, &inc, &users);
	double tree_parse_rate = measure(run_tree, &c, NULL, &inc, &users);

	/* the figure: the default policy (include + contact) on user texts */
	struct script *s = policy_state("policies/default.lua");
	run_text(&c, s, &inc);   /* warm up */
	double full_rate, best_rate, worst_rate;
	measure_rounds(run_text, &c, s, &inc, &users, &full_rate, &best_rate, &worst_rate);
	char note[200];
	snprintf(note, sizeof note,
	         "policies/default.lua, %u pages of %u users, %.0f bytes/user, %.0f%% included; rounds %.0f..%.0f",
	         PAGES, PAGE_USERS, (double)c.bytes / (PAGES * PAGE_USERS), 100.0 * (double)inc / (double)users,
	         worst_rate, best_rate);
	bench_report("users/s: JSON text -> Lua + include + contact, median round", full_rate, "users/CPU-s", note);
	bench_report("users/s: JSON text -> Lua + include + contact, best round", best_rate, "users/CPU-s", NULL);
	if (bench_env("BENCH_ONCE")) {   /* profiling: the main figure only */
		script_free(s);
		corpus_free(&c);
		return;
	}
	double tree_rate = measure(run_tree, &c, s, &inc, &users);
	bench_report("users/s: same via cJSON tree -> Lua", tree_rate, "users/CPU-s", "cJSON page parse included");
	bench_report("Lua state memory after the runs", (double)script_memory_used(s) / 1024, "KiB", NULL);
	script_free(s);

	/* the parts: a policy that does nothing shows parsing + the user table + the calls */
	s = policy_state(temp_policy("bench_trivial.lua", "return { include = function(u, t) return true end }\n"));
	double trivial_rate = measure(run_text, &c, s, &inc, &users);
	script_free(s);
	/* the default policy plus the licence names in the notes */
	s = policy_state(temp_policy("bench_licenses.lua",
		"local p = require 'entrasync.policy'\n"
		"return {\n"
		"  include = function(u, t)\n"
		"    if p.is_disabled(u) or p.is_guest(u) or not p.is_member(u) or not p.has_mail(u) then return false end\n"
		"    return not p.is_service_account(u)\n"
		"  end,\n"
		"  contact = function(u, t)\n"
		"    local c = p.contact(u)\n"
		"    c.notes = table.concat(p.license_names(u), ', ')\n"
		"    return c\n"
		"  end,\n"
		"}\n"));
	double lic_rate = measure(run_text, &c, s, &inc, &users);
	script_free(s);
	bench_report("users/s: the same + licence names into notes", lic_rate, "users/CPU-s", "reads u.licenses");
	bench_report("per user: page split (scan)", 1e6 / split_rate, "us", NULL);
	bench_report("per user: cJSON page parse (tree path)", 1e6 / tree_parse_rate, "us", NULL);
	bench_report("per user: parse into Lua + user table + calls", 1e6 / trivial_rate - 1e6 / split_rate, "us",
	             "trivial policy");
	bench_report("per user: default policy's own Lua work", 1e6 / full_rate - 1e6 / trivial_rate, "us", NULL);
	corpus_free(&c);
}
