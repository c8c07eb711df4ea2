/* metrics — renders the store's history as Prometheus text format and
 * writes it atomically for node_exporter's textfile collector; keeps the
 * per-service HTTP totals in the store's key/value table. */
#include "report/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/http.h"
#include "store/store_status.h"
#include "util/when.h"

#define METRICS_HTTP_PREFIX "metrics.http."

/* ---------------------------------------------------------------- HTTP totals */

static const char *const http_counter_names[] = { "requests", "attempts", "throttled", "failures",
                                                  "transport_errors" };

static uint64_t http_counter(const struct metrics_http *c, size_t i)
{
	const uint64_t v[] = { c->requests, c->attempts, c->throttled, c->failures, c->transport_errors };
	return v[i];
}

/* A service name safe in a kv key and a label: [a-z0-9_], 1..32 chars. */
static int service_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > 32) return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

int metrics_record_http(struct store *st, const char *service, const struct metrics_http *c, struct err *err)
{
	if (!service_name_ok(service)) return err_set(err, "metrics: invalid service name '%s'", service ? service : "");
	bool own = !store_in_transaction(st);
	if (own && store_begin(st, err) != 0) return -1;
	for (size_t i = 0; i < ARRAY_LEN(http_counter_names); i++) {
		char key[96], val[32];
		char *old = NULL;
		snprintf(key, sizeof key, METRICS_HTTP_PREFIX "%s.%s", service, http_counter_names[i]);
		int rc = store_kv_get(st, key, &old, err);
		if (rc < 0) goto fail;
		uint64_t total = (rc == 0 && old ? strtoull(old, NULL, 10) : 0) + http_counter(c, i);
		free(old);
		snprintf(val, sizeof val, "%" PRIu64, total);
		if (store_kv_put(st, key, val, err) != 0) goto fail;
	}
	if (own && store_commit(st, err) != 0) goto fail;
	return 0;
fail:
	if (own) {
		struct err ignored;
		store_rollback(st, &ignored);
	}
	return -1;
}

int metrics_record_service(struct store *st, const struct http_service *svc, const struct http_counters *more,
                           struct err *err)
{
	struct http_counters c;
	http_service_counters(svc, &c);
	if (more) http_counters_add(&c, more);
	struct metrics_http m = { .requests = c.submitted, .attempts = c.attempts, .throttled = c.throttled,
	                          .failures = c.failures, .transport_errors = c.transport_errors };
	return metrics_record_http(st, http_service_name(svc), &m, err);
}

/* ---------------------------------------------------------------- rendering */

void metrics_label_escape(const char *v, struct buf *out)
{
	for (; v && *v; v++) {
		if (*v == '\\') buf_adds(out, "\\\\");
		else if (*v == '"') buf_adds(out, "\\\"");
		else if (*v == '\n') buf_adds(out, "\\n");
		else buf_addc(out, *v);
	}
}

/* One metric family: its header and the samples gathered for it. */
struct family {
	const char *name;
	const char *type;          /* "counter" | "gauge" */
	const char *help;
	struct buf samples;
};

enum fam {
	F_RUNS, F_RUN_DURATION, F_RUN_FINISHED, F_RUN_OK, F_LAST_SUCCESS, F_LAST_COMPLETE,
	F_WRITES, F_TENANT_RUNS, F_TENANT_FAILURES,
	F_TENANT_INFO, F_TENANT_USERS, F_TENANT_LINKS, F_TENANT_CONFLICTS, F_TENANT_INTENTS,
	F_TENANT_LAST_PULL, F_TENANT_LAST_SYNC, F_TENANT_LAST_REACHED, F_TENANT_STATUS,
	F_HTTP_REQUESTS, F_HTTP_ATTEMPTS, F_HTTP_THROTTLED, F_HTTP_FAILURES, F_HTTP_TRANSPORT,
	F_DAEMON_NEXT, F_DAEMON_START, F_DAEMON_SKIPPED,
	F_CERT_EXPIRY,
	F_DB_BYTES, F_DB_FREE_BYTES,
	F_GENERATED,
	F__COUNT
};

static const struct { const char *name, *type, *help; } fam_def[F__COUNT] = {
	[F_RUNS] = { "entrasync_runs_total", "counter", "Finished runs by kind and status." },
	[F_RUN_DURATION] = { "entrasync_last_run_duration_seconds", "gauge", "Duration of the latest finished run." },
	[F_RUN_FINISHED] = { "entrasync_last_run_timestamp_seconds", "gauge", "When the latest run finished." },
	[F_RUN_OK] = { "entrasync_last_run_success", "gauge", "1 when the latest finished run was ok, else 0." },
	[F_LAST_SUCCESS] = { "entrasync_last_success_timestamp_seconds", "gauge",
	                     "When the latest run with status ok finished." },
	[F_LAST_COMPLETE] = { "entrasync_last_complete_timestamp_seconds", "gauge",
	                      "When the latest run that went through (ok, or partial: some tenants failed) finished." },
	[F_WRITES] = { "entrasync_writes_total", "counter",
	               "Writes recorded in the audit trail by action and outcome (ok, failed, dry_run)." },
	[F_TENANT_RUNS] = { "entrasync_tenant_runs_total", "counter", "Per-tenant run outcomes (ok, failed, held)." },
	[F_TENANT_FAILURES] = { "entrasync_tenant_failures_total", "counter", "Runs in which the tenant failed." },
	[F_TENANT_INFO] = { "entrasync_tenant_info", "gauge", "The tenants in the store (value 1), with their name." },
	[F_TENANT_USERS] = { "entrasync_tenant_users_mirrored", "gauge", "Users mirrored from Entra (not removed)." },
	[F_TENANT_LINKS] = { "entrasync_tenant_contacts_linked", "gauge", "Syncro contacts linked to Entra users." },
	[F_TENANT_CONFLICTS] = { "entrasync_tenant_conflicts_open", "gauge", "Open conflicts waiting for an operator." },
	[F_TENANT_INTENTS] = { "entrasync_tenant_writes_unconfirmed", "gauge",
	                       "Writes recorded as intents whose result is not known yet." },
	[F_TENANT_LAST_PULL] = { "entrasync_tenant_last_pull_timestamp_seconds", "gauge",
	                         "The tenant's last pull, whatever its outcome." },
	[F_TENANT_LAST_SYNC] = { "entrasync_tenant_last_sync_timestamp_seconds", "gauge",
	                         "The tenant's last sync, whatever its outcome." },
	[F_TENANT_LAST_REACHED] = { "entrasync_tenant_last_success_timestamp_seconds", "gauge",
	                            "The end of the tenant's newest pull or sync that reached it (ok or held)." },
	[F_TENANT_STATUS] = { "entrasync_tenant_status", "gauge",
	                      "1 for the status (ok, failed, held) of the tenant's newest pull or sync, 0 for the others." },
	[F_HTTP_REQUESTS] = { "entrasync_http_requests_total", "counter", "HTTP requests by service." },
	[F_HTTP_ATTEMPTS] = { "entrasync_http_attempts_total", "counter", "HTTP attempts (requests + retries)." },
	[F_HTTP_THROTTLED] = { "entrasync_http_throttled_total", "counter", "HTTP 429 responses by service." },
	[F_HTTP_FAILURES] = { "entrasync_http_failures_total", "counter",
	                      "HTTP requests that failed in the end: no answer, or 429/5xx after the retries "
	                      "(a 4xx is an answer: its tenant's outcome says what it meant)." },
	[F_HTTP_TRANSPORT] = { "entrasync_http_transport_errors_total", "counter", "Attempts without an HTTP status." },
	[F_DAEMON_NEXT] = { "entrasync_daemon_next_run_timestamp_seconds", "gauge", "When the daemon runs next." },
	[F_DAEMON_START] = { "entrasync_daemon_start_timestamp_seconds", "gauge", "When the daemon started." },
	[F_DAEMON_SKIPPED] = { "entrasync_daemon_runs_skipped_total", "counter",
	                       "Runs not started because the previous one was still going." },
	[F_CERT_EXPIRY] = { "entrasync_graph_certificate_expiry_timestamp_seconds", "gauge",
	                    "When the Graph app's certificate expires (its notAfter); absent with a client secret." },
	[F_DB_BYTES] = { "entrasync_database_bytes", "gauge", "Size of the database file (WAL not included)." },
	[F_DB_FREE_BYTES] = { "entrasync_database_free_bytes", "gauge",
	                      "Free pages in the database file: reused by SQLite, given back by prune --vacuum." },
	[F_GENERATED] = { "entrasync_metrics_generated_timestamp_seconds", "gauge", "When this file was written." },
};

struct render {
	struct family f[F__COUNT];
	/* tenant failures: the (kind, tenant) group being summed */
	char *group_kind, *group_tenant;
	long long group_failed;
};

/* Appends `name{labels} value` to family f. labels: NULL-terminated
 * name, value pairs (values escaped). */
static void sample(struct render *r, enum fam f, const char *const *labels, double value)
{
	struct buf *b = &r->f[f].samples;
	buf_adds(b, fam_def[f].name);
	if (labels && labels[0]) {
		buf_addc(b, '{');
		for (size_t i = 0; labels[i]; i += 2) {
			buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
			metrics_label_escape(labels[i + 1] ? labels[i + 1] : "", b);
			buf_addc(b, '"');
		}
		buf_addc(b, '}');
	}
	if (value == (double)(long long)value) buf_printf(b, " %lld\n", (long long)value);
	else buf_printf(b, " %.3f\n", value);
}

static int on_run_count(const char *kind, const char *status, long long n, void *ud)
{
	sample(ud, F_RUNS, (const char *const[]){ "kind", kind, "status", status, NULL }, (double)n);
	return 0;
}

static int on_run_latest(const char *kind, const char *started, const char *finished, const char *status,
                         const char *last_ok, const char *last_complete, void *ud)
{
	const char *const l[] = { "kind", kind, NULL };
	double s = when_parse_iso(started), f = when_parse_iso(finished), ok = when_parse_iso(last_ok);
	if (s >= 0 && f >= 0) sample(ud, F_RUN_DURATION, l, f - s);
	if (f >= 0) sample(ud, F_RUN_FINISHED, l, f);
	sample(ud, F_RUN_OK, l, status && strcmp(status, "ok") == 0 ? 1 : 0);
	if (ok >= 0) sample(ud, F_LAST_SUCCESS, l, ok);
	double complete = when_parse_iso(last_complete);
	if (complete >= 0) sample(ud, F_LAST_COMPLETE, l, complete);
	return 0;
}

static int on_write_count(const char *action, const char *outcome, long long n, void *ud)
{
	sample(ud, F_WRITES, (const char *const[]){ "action", action, "outcome", outcome, NULL }, (double)n);
	return 0;
}

static void failures_flush(struct render *r)
{
	if (r->group_kind)
		sample(r, F_TENANT_FAILURES, (const char *const[]){ "kind", r->group_kind, "tenant", r->group_tenant, NULL },
		       (double)r->group_failed);
	free(r->group_kind);
	free(r->group_tenant);
	r->group_kind = r->group_tenant = NULL;
	r->group_failed = 0;
}

static int on_tenant_run_count(const char *kind, const char *tenant, const char *status, long long n, void *ud)
{
	struct render *r = ud;
	sample(r, F_TENANT_RUNS, (const char *const[]){ "kind", kind, "tenant", tenant, "status", status, NULL },
	       (double)n);
	if (!r->group_kind || strcmp(r->group_kind, kind) != 0 || strcmp(r->group_tenant, tenant) != 0) {
		failures_flush(r);
		r->group_kind = xstrdup(kind);
		r->group_tenant = xstrdup(tenant);
	}
	if (strcmp(status, "failed") == 0) r->group_failed += n;
	return 0;
}

static int on_tenant(const struct store_status_tenant *t, void *ud)
{
	struct render *r = ud;
	const char *const l[] = { "tenant", t->id, NULL };
	sample(r, F_TENANT_INFO, (const char *const[]){ "tenant", t->id, "name", t->name ? t->name : "", NULL }, 1);
	sample(r, F_TENANT_USERS, l, (double)t->users_present);
	sample(r, F_TENANT_LINKS, l, (double)t->links);
	sample(r, F_TENANT_CONFLICTS, l, (double)t->conflicts_open);
	sample(r, F_TENANT_INTENTS, l, (double)t->intents_open);
	double pull = when_parse_iso(t->pull.finished_at ? t->pull.finished_at : t->last_pull_at);
	double sync = when_parse_iso(t->sync.finished_at ? t->sync.finished_at : t->last_sync_at);
	double reached = when_parse_iso(t->last_reached_at);
	if (pull >= 0) sample(r, F_TENANT_LAST_PULL, l, pull);
	if (sync >= 0) sample(r, F_TENANT_LAST_SYNC, l, sync);
	if (reached >= 0) sample(r, F_TENANT_LAST_REACHED, l, reached);
	/* the newer of its pull and its sync (run ids grow), else the tenants row's */
	const struct store_status_run *newest = t->pull.run_id > t->sync.run_id ? &t->pull : &t->sync;
	const char *status = newest->status ? newest->status : t->last_status;
	if (status) {
		static const char *const all[] = { "ok", "failed", "held" };
		for (size_t i = 0; i < ARRAY_LEN(all); i++)
			sample(r, F_TENANT_STATUS, (const char *const[]){ "tenant", t->id, "status", all[i], NULL },
			       strcmp(status, all[i]) == 0 ? 1 : 0);
	}
	return 0;
}

static int on_http_kv(const char *key, const char *value, void *ud)
{
	static const enum fam fams[] = { F_HTTP_REQUESTS, F_HTTP_ATTEMPTS, F_HTTP_THROTTLED, F_HTTP_FAILURES,
	                                 F_HTTP_TRANSPORT };
	const char *rest = key + strlen(METRICS_HTTP_PREFIX);
	const char *dot = strrchr(rest, '.');
	if (!dot || dot == rest) return 0;
	char *service = xstrndup(rest, (size_t)(dot - rest));
	for (size_t i = 0; i < ARRAY_LEN(http_counter_names); i++)
		if (strcmp(dot + 1, http_counter_names[i]) == 0)
			sample(ud, fams[i], (const char *const[]){ "service", service, NULL }, strtod(value, NULL));
	free(service);
	return 0;
}

int metrics_render(struct store *st, const struct metrics_extra *extra, double now, struct buf *out,
                   struct err *err)
{
	struct render r;
	int rc = -1;
	memset(&r, 0, sizeof r);
	long long bytes = 0, free_bytes = 0;
	if (!st) goto no_store;   /* no database yet: the zero state */
	if (store_status_run_counts(st, on_run_count, &r, err) != 0) goto out;
	if (store_status_run_latest(st, on_run_latest, &r, err) != 0) goto out;
	if (store_status_write_counts(st, on_write_count, &r, err) != 0) goto out;
	if (store_status_tenant_run_counts(st, on_tenant_run_count, &r, err) != 0) goto out;
	failures_flush(&r);
	if (store_status_tenant_each(st, NULL, on_tenant, &r, err) != 0) goto out;
	if (store_status_kv_each(st, METRICS_HTTP_PREFIX, on_http_kv, &r, err) != 0) goto out;
	if (store_status_db_size(st, &bytes, &free_bytes, err) != 0) goto out;
no_store:
	if (extra && extra->have_daemon) {
		if (extra->next_run_at > 0) sample(&r, F_DAEMON_NEXT, NULL, extra->next_run_at);
		if (extra->daemon_started_at > 0) sample(&r, F_DAEMON_START, NULL, extra->daemon_started_at);
		sample(&r, F_DAEMON_SKIPPED, NULL, (double)extra->runs_skipped);
	}
	if (extra && extra->cert_not_after > 0) sample(&r, F_CERT_EXPIRY, NULL, extra->cert_not_after);
	sample(&r, F_DB_BYTES, NULL, (double)bytes);
	sample(&r, F_DB_FREE_BYTES, NULL, (double)free_bytes);
	sample(&r, F_GENERATED, NULL, (double)(long long)now);
	for (int i = 0; i < F__COUNT; i++) {
		if (!r.f[i].samples.len) continue;
		buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fam_def[i].name, fam_def[i].help, fam_def[i].name,
		           fam_def[i].type);
		buf_add(out, r.f[i].samples.data, r.f[i].samples.len);
	}
	rc = 0;
out:
	failures_flush(&r);
	for (int i = 0; i < F__COUNT; i++) buf_free(&r.f[i].samples);
	return rc;
}

/* ---------------------------------------------------------------- the file */

int metrics_write_file(struct store *st, const char *path, const struct metrics_extra *extra, struct err *err)
{
	struct buf text = { 0 };
	char *tmp = NULL;
	int fd = -1, rc = -1;
	if (metrics_render(st, extra, time_now(), &text, err) != 0) goto out;
	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		err_set(err, "metrics: cannot create %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fchmod(fd, 0644) != 0 || fd_write_all(fd, text.data ? text.data : "", text.len) != 0 || fsync(fd) != 0) {
		err_set(err, "metrics: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		err_set(err, "metrics: cannot write %s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		err_set(err, "metrics: cannot rename %s to %s: %s", tmp, path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0) close(fd);
	if (rc != 0 && tmp) unlink(tmp);
	free(tmp);
	buf_free(&text);
	return rc;
}
