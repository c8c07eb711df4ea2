/* bench_http — HTTP core cost per request against the loopback server
 * ($HTTPTEST_URL from tests/fakes/up.sh): 2,000 keep-alive GETs to /echo,
 * sequential (http_do) and 16 in flight (http_submit + http_run), next to a
 * bare libcurl easy-handle loop over the same connection as the baseline, so
 * the engine's own overhead is the difference. The Python server dominates
 * the wall-clock figures (and other load on the machine makes them noisy),
 * so each mode also reports the client's own CPU time per request
 * (CLOCK_PROCESS_CPUTIME_ID of this process only). */
#include "bench.h"
#include "http/http.h"
#include "util/log.h"

#include <curl/curl.h>
#include <stdio.h>
#include <time.h>

#define BENCH_N 2000

static size_t sink(char *d, size_t s, size_t n, void *u)
{
	(void)d;
	(void)u;
	return s * n;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, double secs, double cpu, int n, long conns)
{
	char name[96], note[64];
	snprintf(name, sizeof name, "%s requests/s", what);
	snprintf(note, sizeof note, "%d GETs, %ld connection%s", n, conns, conns == 1 ? "" : "s");
	bench_report(name, n / secs, "req/s", note);
	snprintf(name, sizeof name, "%s per request", what);
	bench_report(name, secs / n * 1e6, "us", "wall");
	snprintf(name, sizeof name, "%s CPU per request", what);
	bench_report(name, cpu / n * 1e6, "us", "user+sys of this process");
}

BENCH(http_echo_baseline_curl_easy)
{
	const char *base = bench_env("HTTPTEST_URL");
	if (!base) { printf("  skipped: HTTPTEST_URL unset (run tests/fakes/up.sh)\n"); return; }
	char url[512];
	snprintf(url, sizeof url, "%s/echo", base);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	CURL *h = curl_easy_init();
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	long conns = 0, c;
	int ok = 0;
	double t0 = time_mono(), c0 = cpu_now();
	for (int i = 0; i < BENCH_N; i++) {
		if (curl_easy_perform(h) == CURLE_OK) ok++;
		curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &c);
		conns += c;
	}
	double secs = time_mono() - t0, cpu = cpu_now() - c0;
	curl_easy_cleanup(h);
	if (ok != BENCH_N) printf("  warning: %d of %d failed\n", BENCH_N - ok, BENCH_N);
	report("curl_easy seq", secs, cpu, BENCH_N, conns);
}

/* An engine with one service on $HTTPTEST_URL, or NULL (said why). */
static struct http_service *bench_service(struct http_engine **e, int max_in_flight)
{
	const char *base = bench_env("HTTPTEST_URL");
	*e = NULL;
	if (!base) { printf("  skipped: HTTPTEST_URL unset\n"); return NULL; }
	struct err err;
	log_set_level(LOG_WARN);
	*e = http_engine_new(NULL, &err);
	struct http_service *s = *e ? http_service_add(*e, &(struct http_service_opts){ .name = "bench",
		.base_url = base, .max_in_flight = max_in_flight }, &err) : NULL;
	if (!s) {
		printf("  failed: %s\n", err.msg);
		http_engine_free(*e);
	}
	return s;
}

BENCH(http_echo_sequential)
{
	struct err err;
	struct http_engine *e;
	struct http_service *s = bench_service(&e, 1);
	if (!s) return;
	long conns = 0;
	int ok = 0;
	double t0 = time_mono(), c0 = cpu_now();
	for (int i = 0; i < BENCH_N; i++) {
		struct http_response r;
		if (http_do(s, &(struct http_request){ .url = "/echo" }, &r, &err) == 0 && r.status == 200) ok++;
		conns += r.new_connections;
		http_response_free(&r);
	}
	double secs = time_mono() - t0, cpu = cpu_now() - c0;
	if (ok != BENCH_N) printf("  warning: %d of %d failed\n", BENCH_N - ok, BENCH_N);
	report("http_do seq", secs, cpu, BENCH_N, conns);
	http_engine_free(e);
}

struct tally {
	int ok;
	long conns;
};

static void on_done(struct http_response *r, void *ctx)
{
	struct tally *t = ctx;
	if (r->status == 200) t->ok++;
	t->conns += r->new_connections;
}

BENCH(http_echo_16_in_flight)
{
	struct err err;
	struct http_engine *e;
	struct http_service *s = bench_service(&e, 16);
	if (!s) return;
	struct tally t = {0};
	double t0 = time_mono(), c0 = cpu_now();
	for (int i = 0; i < BENCH_N; i++)
		if (http_submit(s, &(struct http_request){ .url = "/echo", .on_done = on_done, .ctx = &t }, &err) < 0)
			printf("  submit failed: %s\n", err.msg);
	if (http_run(e, &err) < 0) printf("  run failed: %s\n", err.msg);
	double secs = time_mono() - t0, cpu = cpu_now() - c0;
	if (t.ok != BENCH_N) printf("  warning: %d of %d failed\n", BENCH_N - t.ok, BENCH_N);
	report("http 16 in flight", secs, cpu, BENCH_N, t.conns);
	http_engine_free(e);
}
