/* bench_syncro — pacing efficiency of the Syncro client: 1,000 contact
 * creates from 10 tenants (lanes) at requests_per_minute 600 against the
 * fake Syncro, whose sliding window is raised to match (600 per 60 s).
 * Target: done within 5 % of 100 s, zero 429s. Starts its own fake
 * (python3 tests/fakes/fake_syncro.py); takes about 100 s. */
#include "bench.h"

#include <cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/http.h"
#include "syncro/syncro.h"

#define BENCH_KEY "sk-bench-syncro-00000000000000"
#define BENCH_WRITES 1000
#define BENCH_TENANTS 10
#define BENCH_RPM 600.0

/* Spawns the fake with the given rate limit; returns its pid and port, or
 * -1 when python3 or the fake is not there. */
static pid_t spawn_fake(const char *dir, int *port)
{
	const char *script = "tests/fakes/fake_syncro.py";
	if (access(script, R_OK) != 0 || system("command -v python3 >/dev/null 2>&1") != 0) return -1;
	char pf[512];
	snprintf(pf, sizeof pf, "%s/bench_syncro.port", dir);
	unlink(pf);
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execlp("python3", "python3", script, "--port", "0", "--port-file", pf, "--api-key", BENCH_KEY,
		       "--data", "none", "--rate-limit", "600", "--window", "60", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 400; i++, usleep(25000)) {
		FILE *f = fopen(pf, "r");
		if (!f) continue;
		int ok = fscanf(f, "%d", port);
		fclose(f);
		if (ok == 1) return pid;
	}
	if (pid > 0) kill(pid, SIGTERM);
	return -1;
}

struct tally {
	int done, ok;
	double last;          /* time_mono of the last completion */
};

static void on_created(struct syncro_reply *r, void *ctx)
{
	struct tally *t = ctx;
	t->done++;
	t->ok += r->rc == SYNCRO_OK;
	t->last = time_mono();
}

/* GET /_fake/<what> through a plain service of the same engine. */
static cJSON *fake_get(struct http_service *ctl, const char *what)
{
	struct http_response r;
	struct err err;
	cJSON *j = NULL;
	if (http_do(ctl, &(struct http_request){ .url = what }, &r, &err) == 0 && r.status == 200)
		j = cJSON_Parse(r.body.data);
	http_response_free(&r);
	return j;
}

BENCH(syncro_pacing_efficiency)
{
	const char *tmp = bench_env("TESTS_TMP") ? bench_env("TESTS_TMP") : "/tmp";
	int port = 0;
	pid_t fake = spawn_fake(tmp, &port);
	if (fake < 0) {
		printf("  skipped: python3 or tests/fakes/fake_syncro.py missing\n");
		return;
	}
	struct err err = {{0}};
	struct http_engine *e = http_engine_new(NULL, &err);
	char base[128], ctl_base[128];
	snprintf(base, sizeof base, "http://127.0.0.1:%d/api/v1", port);
	snprintf(ctl_base, sizeof ctl_base, "http://127.0.0.1:%d/_fake", port);
	struct syncro_client *sc = e ? syncro_client_new(e, &(struct syncro_opts){ .base_url = base,
	                               .api_key = BENCH_KEY, .requests_per_minute = BENCH_RPM }, &err) : NULL;
	struct http_service *ctl = sc ? http_service_add(e, &(struct http_service_opts){ .name = "fakectl",
	                                .base_url = ctl_base }, &err) : NULL;
	if (!ctl) {
		printf("  failed: %s\n", err.msg);
		goto out;
	}
	const char *seed = "{\"customers\":[{\"id\":101,\"business_name\":\"Bench\"}]}";
	struct http_response seeded;
	http_do(ctl, &(struct http_request){ .method = "POST", .url = "/seed", .body = seed,
	        .body_len = strlen(seed), .content_type = "application/json" }, &seeded, &err);
	http_response_free(&seeded);

	struct http_lane *lanes[BENCH_TENANTS];
	for (int i = 0; i < BENCH_TENANTS; i++) {
		char name[32];
		snprintf(name, sizeof name, "tenant%d", i);
		lanes[i] = syncro_client_lane(sc, name);
	}
	struct tally t = {0};
	struct syncro_fields fs = {0};
	syncro_fields_set(&fs, SYNCRO_F_CUSTOMER_ID, "101");
	for (int i = 0; i < BENCH_WRITES; i++) {
		char name[64], email[64];
		snprintf(name, sizeof name, "User %d", i);
		snprintf(email, sizeof email, "user%d@bench.example", i);
		syncro_fields_set(&fs, SYNCRO_F_NAME, name);
		syncro_fields_set(&fs, SYNCRO_F_EMAIL, email);
		if (syncro_submit(sc, &(struct syncro_call){ .op = SYNCRO_OP_CONTACT_CREATE, .fields = &fs,
		                  .lane = lanes[i % BENCH_TENANTS] }, on_created, &t, &err) < 0)
			printf("  submit failed: %s\n", err.msg);
	}
	syncro_fields_free(&fs);
	double t0 = time_mono();
	if (http_run(e, &err) < 0) printf("  run failed: %s\n", err.msg);
	double took = t.last - t0;

	cJSON *stats = fake_get(ctl, "/stats");
	int fake_429 = cJSON_GetObjectItem(cJSON_GetObjectItem(stats, "requests"), "status_429")->valueint;
	int stored = cJSON_GetObjectItem(cJSON_GetObjectItem(stats, "counts"), "contacts")->valueint;
	cJSON_Delete(stats);
	struct http_counters k;
	http_service_counters(syncro_client_service(sc), &k);
	char note[160];
	double ideal = BENCH_WRITES / (BENCH_RPM / 60.0);
	snprintf(note, sizeof note, "target <= %.0f s; %d ok, %d stored; pace %.1f/min", ideal * 1.05, t.ok,
	         stored, syncro_client_pace(sc));
	bench_report("1,000 writes at 600/min: wall time", took, "s", note);
	snprintf(note, sizeof note, "100 s = 100 %%; target <= 105 %%");
	bench_report("1,000 writes at 600/min: vs. 100 s", 100.0 * took / ideal, "%", note);
	bench_report("1,000 writes at 600/min: achieved rate", 60.0 * BENCH_WRITES / took, "req/min", NULL);
	snprintf(note, sizeof note, "client saw %llu; attempts %llu", (unsigned long long)syncro_client_throttled(sc),
	         (unsigned long long)k.attempts);
	bench_report("1,000 writes at 600/min: 429s at the fake", fake_429, "", note);
out:
	http_engine_free(e);
	syncro_client_free(sc);
	kill(fake, SIGTERM);
	waitpid(fake, NULL, 0);
}
