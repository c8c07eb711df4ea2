/* bench_engine — planning a large mirror: ENGINE_BENCH_USERS (default
 * 1,000,000) Graph users in one tenant's store, planned through
 * policies/default.lua (include with the service-account heuristics,
 * p.contact mapping) by the same planner `sync` uses (engine_plan_tenant:
 * store batches, JSON parse, policy eval, plan). Two passes, each in a
 * child process so its time, CPU and peak memory are its own:
 *   first sync   — no links: every included user becomes a create;
 *   steady state — every included user linked with the fields last
 *                  written, 1 % of the users changed in Entra: updates for
 *                  those, the rest unchanged.
 * Each pass runs ENGINE_BENCH_ROUNDS times (default 3): figures of the
 * round with the median CPU time (wall, CPU, users per CPU second), every
 * round's CPU seconds, the largest peak RSS. ENGINE_BENCH_ONLY=first stops after the first pass (for profiling, e.g.
 * valgrind --tool=callgrind --toggle-collect=engine_plan_tenant). */
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"
#include "engine/engine_policy.h"
#include "engine/engine_stream.h"
#include "store/store.h"
#include "store/store_outbox.h"

#define TENANT "b0b0b0b0-0000-4000-8000-00000000be7c"
#define CUSTOMER 101

static const char *const first_names[] = { "Adele", "Alex", "Megan", "Lee", "Nestor", "Patti", "Isaiah", "Lynne",
                                          "Diego", "Grady", "Johanna", "Miriam", "Pradeep", "Joni", "Zoë", "José" };
static const char *const last_names[] = { "Vance", "Wilber", "Bowen", "Gu", "Wilke", "Fernandez", "Langer", "Robbins",
                                         "Siciliani", "Archie", "Lorenz", "Graham", "Gupta", "Sherman", "Ångström", "Núñez" };
static const char *const departments[] = { "Sales", "Marketing", "Finance", "Operations", "Support", "IT", "HR", "Legal" };

/* A realistic Graph user (the properties graph_user_select pulls). */
static void user_json(struct buf *b, long i, int version)
{
	const char *fn = first_names[i % 16], *ln = last_names[(i / 16) % 16];
	bool disabled = i % 20 == 7, guest = i % 50 == 3, service = i % 97 == 5;
	buf_reset(b);
	buf_printf(b, "{\"id\":\"%08lx-0000-4000-8000-%012lx\",\"displayName\":\"%s %s%s\",\"givenName\":\"%s\","
	           "\"surname\":\"%s\",", i, i, fn, ln, service ? " Scanner" : "", fn, ln);
	if (guest)
		buf_printf(b, "\"mail\":\"user%ld@partner.example\",\"userPrincipalName\":\"user%ld_partner.example#EXT#@bench.onmicrosoft.com\","
		           "\"userType\":\"Guest\",", i, i);
	else
		buf_printf(b, "\"mail\":\"user%ld@bench.example\",\"userPrincipalName\":\"user%ld@bench.example\",\"userType\":\"Member\",",
		           i, i);
	buf_printf(b, "\"accountEnabled\":%s,\"department\":\"%s\",\"officeLocation\":\"Building %ld\","
	           "\"jobTitle\":\"%s Specialist%s\",\"businessPhones\":[\"+1 425 555 %04ld\"],\"mobilePhone\":\"+1 206 555 %04ld\","
	           "\"streetAddress\":\"%ld Main Street\",\"city\":\"Redmond\",\"state\":\"WA\",\"postalCode\":\"98052\","
	           "\"country\":\"United States\",\"companyName\":\"Bench Corp\",\"employeeId\":\"E%07ld\","
	           "\"onPremisesSyncEnabled\":null,\"createdDateTime\":\"2024-01-02T03:04:05Z\","
	           "\"assignedLicenses\":[{\"disabledPlans\":[],\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"}%s]}",
	           disabled ? "false" : "true", departments[i % 8], i % 12, departments[i % 8], version ? " II" : "",
	           i % 10000, (i * 7) % 10000, i % 900 + 1, i,
	           i % 3 ? "" : ",{\"disabledPlans\":[],\"skuId\":\"f30db892-07e9-47e9-837c-80727f46fd3d\"}");
}

static int fill_users(const char *db, long n, struct err *err)
{
	struct store *st = NULL;
	struct buf b = {0};
	int rc = -1;
	if (store_open(db, &st, err) != 0) return -1;
	struct store_tenant t = { .id = TENANT, .name = "Bench", .syncro_customer_id = CUSTOMER };
	if (store_tenant_put(st, &t, err) != 0) goto out;
	char id[64];
	for (long i = 0; i < n; i++) {
		if (i % 20000 == 0 && (i ? store_commit(st, err) : 0) + store_begin(st, err) != 0) goto out;
		user_json(&b, i, 0);
		snprintf(id, sizeof id, "%08lx-0000-4000-8000-%012lx", i, i);
		if (store_user_put(st, TENANT, id, b.data, err) != 0) goto out;
	}
	if (store_commit(st, err) != 0) goto out;
	rc = 0;
out:
	store_rollback(st, NULL);
	buf_free(&b);
	store_close(st);
	return rc;
}

/* What a planning pass saw. */
struct pass {
	long long users, kinds[ENGINE_NKINDS], errors, stamped;
	struct store *link_to;   /* non-NULL: write a link for each create (setup pass) */
	long long next_contact;
};

static int need_contacts(void *ud, long long customer_id, const char *label)
{
	return 0;   /* the index was filled with the customer's (empty) list beforehand */
}

static int emit(void *ud, struct engine_action *a)
{
	struct pass *p = ud;
	p->kinds[a->kind]++;
	if (p->link_to && a->kind == ENGINE_CREATE) {
		struct err err;
		char *fields = engine_fields_to_json(&a->written);
		struct store_link l = { .tenant_id = TENANT, .object_id = a->object_id, .contact_id = ++p->next_contact,
		                        .customer_id = a->customer_id, .fields = fields, .stamp = a->stamp };
		int rc = store_link_put(p->link_to, &l, &err);
		free(fields);
		if (rc != 0) {
			fprintf(stderr, "bench_engine: %s\n", err.msg);
			return -1;
		}
		if (p->next_contact % 20000 == 0 && (store_commit(p->link_to, &err) || store_begin(p->link_to, &err)))
			return -1;
	}
	engine_action_free(a);
	return 0;
}

static void user_error(void *ud, const char *label, const char *msg)
{
	struct pass *p = ud;
	if (!p->errors++) fprintf(stderr, "bench_engine: %s: %s\n", label, msg);
}

/* One planning pass over the tenant. */
static int plan_pass(const char *db, const char *policy, struct pass *p, struct err *err)
{
	struct store *st = NULL;
	struct store_outbox *ob = NULL;
	struct engine_policy pol = {0};
	struct engine_contacts *ix = engine_contacts_new();
	struct syncro_contact_list none = {0};
	int rc = -1;
	engine_contacts_add(ix, CUSTOMER, &none);
	if (store_open(db, &st, err) != 0 || store_outbox_open(st, &ob, err) != 0) goto out;
	struct script_tenant t = { .id = TENANT, .name = "Bench", .syncro_customer_id = CUSTOMER };
	if (engine_policy_load(&pol, policy, NULL, &t, err) != 0) goto out;
	if (p->link_to && store_begin(p->link_to, err) != 0) goto out;
	struct engine_planner pl = { .st = st, .ob = ob, .tenant_id = TENANT, .pol = &pol, .default_customer = CUSTOMER,
	                             .ix = ix, .need_contacts = need_contacts, .emit = emit, .user_error = user_error,
	                             .ud = p };
	if (engine_plan_tenant(&pl, err) != 0) goto out;
	if (p->link_to && store_commit(p->link_to, err) != 0) goto out;
	p->users = pl.users;
	p->stamped = pl.stamped;
	rc = 0;
out:
	engine_policy_free(&pol);
	engine_contacts_free(ix);
	store_outbox_close(ob);
	store_close(st);
	return rc;
}

/* One pass in a child: what it saw, its wall and CPU seconds (user+sys,
 * and sys), its peak RSS in MB. 0, or -1 when the pass failed. */
struct measure {
	struct pass p;
	double wall, cpu, sys, rss_mb;
};

static int child_pass(const char *db, const char *policy, struct measure *m)
{
	int fds[2];
	if (pipe(fds) != 0) return -1;
	double t0 = time_mono();
	pid_t pid = fork();
	if (pid == 0) {
		struct pass p = {0};
		struct err err;
		close(fds[0]);
		if (plan_pass(db, policy, &p, &err) != 0) {
			fprintf(stderr, "bench_engine: %s\n", err.msg);
			_exit(1);
		}
		ssize_t w = write(fds[1], &p, sizeof p);
		_exit(w == (ssize_t)sizeof p ? 0 : 1);
	}
	close(fds[1]);
	memset(m, 0, sizeof *m);
	ssize_t r = pid > 0 ? read(fds[0], &m->p, sizeof m->p) : -1;
	close(fds[0]);
	int status = 0;
	struct rusage ru = {0};
	if (pid > 0) wait4(pid, &status, 0, &ru);
	m->wall = time_mono() - t0;
	if (r != (ssize_t)sizeof m->p || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return -1;
	m->sys = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	m->cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + m->sys;
	m->rss_mb = (double)ru.ru_maxrss / 1024.0;
	return 0;
}

static int by_cpu(const void *a, const void *b)
{
	const struct measure *x = a, *y = b;
	return x->cpu < y->cpu ? -1 : x->cpu > y->cpu;
}

#define MAX_ROUNDS 15

/* Runs the pass `rounds` times, each in a child; reports the round with
 * the median CPU time (its wall, CPU, sys, users per second), every
 * round's CPU, and the largest peak RSS. */
static void measured_pass(const char *db, const char *policy, const char *name, int rounds)
{
	struct measure m[MAX_ROUNDS];
	double rss = 0;
	for (int i = 0; i < rounds; i++) {
		if (child_pass(db, policy, &m[i]) != 0) {
			printf("  %s: the pass failed\n", name);
			return;
		}
		if (m[i].rss_mb > rss) rss = m[i].rss_mb;
	}
	char all[256] = "", what[128], note[256];
	size_t n = 0;
	for (int i = 0; i < rounds && n < sizeof all; i++)
		n += (size_t)snprintf(all + n, sizeof all - n, "%s%.2f", i ? ", " : "", m[i].cpu);
	qsort(m, (size_t)rounds, sizeof *m, by_cpu);
	const struct measure *med = &m[rounds / 2];
	const struct pass *p = &med->p;
	snprintf(note, sizeof note, "%lld users: %lld create, %lld update, %lld unchanged (%lld by stamp), %lld skip, "
	         "%lld errors", p->users, p->kinds[ENGINE_CREATE], p->kinds[ENGINE_UPDATE], p->kinds[ENGINE_UNCHANGED],
	         p->stamped, p->kinds[ENGINE_SKIP], p->errors);
	snprintf(what, sizeof what, "%s: wall", name);
	bench_report(what, med->wall, "s", note);
	snprintf(what, sizeof what, "%s: CPU (user+sys), median of %d", name, rounds);
	bench_report(what, med->cpu, "s", rounds > 1 ? all : NULL);
	snprintf(what, sizeof what, "%s: of which sys", name);
	bench_report(what, med->sys, "s", NULL);
	snprintf(what, sizeof what, "%s: users per CPU second", name);
	bench_report(what, (double)p->users / (med->cpu > 0 ? med->cpu : 1e-9), "users/s", NULL);
	snprintf(what, sizeof what, "%s: peak RSS", name);
	bench_report(what, rss, "MB", NULL);
}

BENCH(engine_plan_1m)
{
	struct err err;
	const char *ns = bench_env("ENGINE_BENCH_USERS"), *rs = bench_env("ENGINE_BENCH_ROUNDS");
	long n = ns ? atol(ns) : 1000000;
	int rounds = rs ? atoi(rs) : 3;
	if (rounds < 1) rounds = 1;
	if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
	const char *base = bench_env("TESTS_TMP");
	char *dir = xasprintf("%s/bench-engine-%d", base ? base : "/tmp", (int)getpid());
	mkdir(dir, 0700);
	char *db = xasprintf("%s/plan.db", dir), *changed = xasprintf("%s/changed.lua", dir);
	double t0 = time_mono();
	if (fill_users(db, n, &err) != 0) {
		printf("  setup failed: %s\n", err.msg);
		goto out;
	}
	bench_report("setup: users written to the store", time_mono() - t0, "s", NULL);

	measured_pass(db, "policies/default.lua", "first sync plan", rounds);
	const char *only = bench_env("ENGINE_BENCH_ONLY");
	if (only && strcmp(only, "first") == 0) goto out;

	/* links as a first sync would have written them, then 1 % changed */
	struct store *st = NULL;
	struct pass setup = {0};
	t0 = time_mono();
	if (store_open(db, &st, &err) != 0) goto out;
	setup.link_to = st;
	if (plan_pass(db, "policies/default.lua", &setup, &err) != 0) {
		printf("  setup failed: %s\n", err.msg);
		store_close(st);
		goto out;
	}
	struct buf b = {0};
	char id[64];
	store_begin(st, &err);
	for (long i = 0; i < n; i += 100) {
		user_json(&b, i, 1);
		snprintf(id, sizeof id, "%08lx-0000-4000-8000-%012lx", i, i);
		store_user_put(st, TENANT, id, b.data, &err);
	}
	store_commit(st, &err);
	buf_free(&b);
	store_close(st);
	bench_report("setup: links written, 1% of users changed", time_mono() - t0, "s", NULL);

	measured_pass(db, "policies/default.lua", "steady state plan (1% changed)", rounds);

	/* the same policy with one more line: a new hash, every user re-planned */
	char *text = NULL;
	size_t len;
	if (file_read("policies/default.lua", &text, &len, &err) == 0) {
		FILE *f = fopen(changed, "w");
		if (f) {
			fprintf(f, "%s\n-- changed\n", text);
			fclose(f);
			measured_pass(db, changed, "after a policy change (all re-planned)", rounds);
		}
		free(text);
	}
out:
	unlink(changed);
	free(changed);
	unlink(db);
	char *wal = xasprintf("%s-wal", db), *shm = xasprintf("%s-shm", db), *lock = xasprintf("%s.lock", db);
	unlink(wal);
	unlink(shm);
	unlink(lock);
	rmdir(dir);
	free(wal);
	free(shm);
	free(lock);
	free(db);
	free(dir);
}
