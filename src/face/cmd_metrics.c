/* cmd_metrics — `entrasync metrics [--output FILE]`: the Prometheus
 * metrics (src/report/metrics.h) from the store, on stdout or written atomically
 * to FILE for node_exporter's textfile collector. For cron set-ups
 * (`entrasync sync; entrasync metrics --output F`); the daemon writes the
 * file itself with --metrics. Reads only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "face/cmd_daemon.h"
#include "face/cmd_ops.h"
#include "graph/graph.h"
#include "report/metrics.h"
#include "util/when.h"

/* The daemon's schedule for the daemon lines, when a daemon runs. */
static void daemon_extra(const struct config *cfg, struct store *st, struct metrics_extra *extra)
{
	char *lock = xasprintf("%s.daemon.lock", cfg->database);
	long pid = daemon_lock_holder(lock);
	free(lock);
	if (pid == 0) return;
	struct err err;
	char *v = NULL;
	extra->have_daemon = 1;
	if (store_kv_get(st, DAEMON_KV_NEXT_RUN_AT, &v, &err) == 0 && v) extra->next_run_at = when_parse_iso(v);
	free(v);
	v = NULL;
	if (store_kv_get(st, DAEMON_KV_STARTED_AT, &v, &err) == 0 && v) extra->daemon_started_at = when_parse_iso(v);
	free(v);
	v = NULL;
	if (store_kv_get(st, DAEMON_KV_SKIPPED, &v, &err) == 0 && v) extra->runs_skipped = strtoll(v, NULL, 10);
	free(v);
}

int cmd_metrics(int argc, char **argv, const struct global_opts *g)
{
	const char *output = NULL;
	const struct opt opts[] = { { "--output", "FILE", &output, NULL }, { NULL, NULL, NULL, NULL } };
	struct config cfg;
	struct err err;
	struct store *st = NULL;
	struct metrics_extra extra = { 0 };
	int npos, rc;
	memset(&cfg, 0, sizeof cfg);
	if (command_args("metrics", argc, argv, opts, 0, &npos) != 0) return EXIT_USAGE;
	if ((rc = ops_config_load("metrics", g, &cfg)) != 0) goto out;
	/* no database yet: the zero state, and nothing created (metrics only reads;
	 * run by another user, say root, it must not leave a database the
	 * service's user cannot write) */
	rc = ops_store_open("metrics", &cfg, false, &st);
	if (rc != 0 && rc != STORE_NOTFOUND) goto out;
	if (st) daemon_extra(&cfg, st, &extra);
	/* the certificate's expiry whenever it can be read, an expired one too:
	 * an alert on it must not resolve the moment it expires */
	double not_after = graph_certificate_not_after(&cfg.graph);
	if (not_after > 0) extra.cert_not_after = not_after;
	rc = EXIT_NOSTART;
	if (output) {
		if (metrics_write_file(st, output, &extra, &err) != 0) {
			fprintf(stderr, "entrasync metrics: %s\n", err.msg);
			goto out;
		}
	} else {
		struct buf text = { 0 };
		if (metrics_render(st, &extra, time_now(), &text, &err) != 0) {
			fprintf(stderr, "entrasync metrics: %s\n", err.msg);
			goto out;
		}
		fputs(text.data ? text.data : "", stdout);
		buf_free(&text);
	}
	rc = EXIT_OK;
out:
	store_close(st);
	config_free(&cfg);
	return rc;
}
