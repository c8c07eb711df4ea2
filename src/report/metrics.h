/* metrics — Prometheus text-format metrics for node_exporter's textfile
 * collector: runs, run duration, writes by action, tenant failures, HTTP
 * requests and 429s by service, last success time, and per-tenant gauges.
 *
 * Everything is derived from the store, so the counters are true totals
 * over the database's life whichever process writes the file (a `sync`, the
 * daemon after each run): runs and their per-tenant outcomes from the runs
 * tables, writes from the audit trail, and HTTP counters from totals that
 * each run adds to the store's key/value table with metrics_record_http
 * (keys "metrics.http.<service>.<counter>").
 *
 * The file is written atomically: a temporary file in the same folder
 * ("FILE.tmp.PID", which the collector ignores since it does not end in
 * .prom), fsync'd, then renamed over FILE (mode 0644). */
#ifndef ENTRASYNC_METRICS_H
#define ENTRASYNC_METRICS_H

#include <stdint.h>
#include "store/store.h"
#include "util/util.h"

/* Per-service HTTP totals to add (a subset of struct http_counters, so this
 * header needs no http.h: copy the fields). */
struct metrics_http {
	uint64_t requests;        /* requests submitted */
	uint64_t attempts;        /* attempts (requests + retries) */
	uint64_t throttled;       /* 429 responses */
	uint64_t failures;        /* requests that failed in the end */
	uint64_t transport_errors;/* attempts without an HTTP status */
};

/* Adds c to the store's running totals for service ("graph", "syncro"),
 * in one transaction (or the caller's). Call once per service at the end
 * of a run with that run's counters. */
int metrics_record_http(struct store *st, const char *service, const struct metrics_http *c, struct err *err);

struct http_service;
struct http_counters;
/* The same for an HTTP service of the run (http.h): its name and its
 * counters since it was added (http_service_counters), plus more (may be
 * NULL: the same service's requests made in other processes, the pull's
 * workers). Call once per service when the run ends, e.g.
 *   metrics_record_service(st, syncro_client_service(sc), NULL, &err); */
int metrics_record_service(struct store *st, const struct http_service *svc, const struct http_counters *more,
                           struct err *err);

/* Extra lines a caller adds (the daemon: its schedule). NULL-safe. */
struct metrics_extra {
	double next_run_at;       /* > 0: entrasync_daemon_next_run_timestamp_seconds */
	double daemon_started_at; /* > 0: entrasync_daemon_start_timestamp_seconds */
	long long runs_skipped;   /* daemon: runs not started because one was still going */
	int have_daemon;          /* emit the daemon lines */
	double cert_not_after;    /* > 0: entrasync_graph_certificate_expiry_timestamp_seconds */
};

/* Renders every metric from the store into out (appended). now is the
 * wall clock for entrasync_metrics_generated_timestamp_seconds. st NULL
 * (no database yet): the zero state, the database's size 0. */
int metrics_render(struct store *st, const struct metrics_extra *extra, double now, struct buf *out,
                   struct err *err);

/* Renders and writes path atomically (see above). */
int metrics_write_file(struct store *st, const char *path, const struct metrics_extra *extra, struct err *err);

/* A Prometheus label value with \, " and newline escaped, appended to out. */
void metrics_label_escape(const char *v, struct buf *out);

#endif
