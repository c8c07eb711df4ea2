/* cmd_report — `entrasync report licenses|securescore|findings`: the
 * licence and Secure Score history kept in the local database, across
 * tenants, as a table (80 columns), CSV, JSON or one HTML page; with the
 * config's alerts.enabled (or --alerts for one run; --no-alerts turns them
 * off for one run), findings and secure_score alerts become Syncro tickets
 * (see alerts.h) with the config's alerts.problem_type, subject_prefix and
 * unused_days (the "unused" threshold unless --days). Reads only the
 * database (and Syncro for alerts): run `entrasync pull` to collect the
 * numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/alerts.h"
#include "util/shutdown.h"
#include "face/cmd_ops.h"
#include "face/commands.h"
#include "util/config.h"
#include "util/log.h"
#include "report/report.h"
#include "store/store.h"
#include "store/store_snapshots.h"

static int parse_days(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > 100000) return -1;
	*out = (int)v;
	return 0;
}

/* Writes text to path (or stdout when path is NULL or "-"). */
static int write_out(const char *path, const struct buf *text, struct err *err)
{
	if (!path || strcmp(path, "-") == 0) {
		fwrite(text->data ? text->data : "", 1, text->len, stdout);
		return 0;
	}
	char *tmp = xasprintf("%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	int rc = 0;
	if (!f) {
		rc = err_set(err, "cannot write %s: %m", tmp);
	} else {
		if (fwrite(text->data ? text->data : "", 1, text->len, f) != text->len) rc = err_set(err, "cannot write %s: %m", tmp);
		if (fclose(f) != 0 && rc == 0) rc = err_set(err, "cannot write %s: %m", tmp);
		if (rc == 0 && rename(tmp, path) != 0) rc = err_set(err, "cannot rename %s to %s: %m", tmp, path);
		if (rc != 0) unlink(tmp);
	}
	free(tmp);
	return rc;
}

int cmd_report(int argc, char **argv, const struct global_opts *g)
{
	/* `report billing …` is the billing reconciliation (src/face/cmd_bill.c) */
	if (argc > 0 && strcmp(argv[0], "billing") == 0) return cmd_report_billing(argc - 1, argv + 1, g);
	const char *unused = NULL, *days_opt = NULL, *format_opt = NULL, *out_opt = NULL, *title_opt = NULL;
	int by_user = 0, controls = 0, alerts = 0, no_alerts = 0, dry_run = 0;
	const struct opt opts[] = {
		{ "--tenant", "ID", &unused, NULL },   /* taken out before (repeatable) */
		{ "--days", "N", &days_opt, NULL },
		{ "--by-user", NULL, NULL, &by_user },
		{ "--controls", NULL, NULL, &controls },
		{ "--format", "FORMAT", &format_opt, NULL },
		{ "--out", "FILE", &out_opt, NULL },
		{ "--title", "TEXT", &title_opt, NULL },
		{ "--alerts", NULL, NULL, &alerts },
		{ "--no-alerts", NULL, NULL, &no_alerts },
		{ "--dry-run", NULL, NULL, &dry_run },
		{ NULL, NULL, NULL, NULL },
	};
	static const char *const kinds[] = { "licenses", "securescore", "findings", "billing", NULL };
	static const char *const formats[] = { "table", "csv", "json", "html", NULL };
	struct config cfg;
	struct err err;
	int npos, rc;
	struct store *st = NULL;
	struct store_lock lock = { 0 };
	struct report *r = NULL;
	struct report_lua *rl = NULL;
	struct buf text = {0};
	struct opt_list names = { 0 };
	const char **tenants = NULL;
	const char **scope = NULL;
	char **known_as = NULL;      /* per configured tenant, the store's other id for it, or NULL (owned) */
	size_t nknown_as = 0;
	memset(&cfg, 0, sizeof cfg);
	int left = opts_take_list(argc, argv, "--tenant", "ID", &names, &err);
	if (left < 0) return usage_fail("report", "%s", err.msg);
	if ((rc = command_args("report", left, argv, opts, 1, &npos)) != 0) goto out;
	rc = EXIT_USAGE;
	if (npos != 1) {
		usage_fail("report", "which report? licenses, securescore or findings");
		goto out;
	}
	struct report_opts o = { .by_user = by_user, .controls = controls, .title = title_opt };
	if (report_kind_parse(argv[0], &o.kind) != 0) {
		usage_unknown("report", argv[0], kinds, "report");
		goto out;
	}
	if (format_opt && report_format_parse(format_opt, &o.format) != 0) {
		usage_unknown("format", format_opt, formats, "report");
		goto out;
	}
	if (days_opt && parse_days(days_opt, &o.days) != 0) {
		usage_fail("report", "--days needs a whole number of days (0..100000), not '%s'", days_opt);
		goto out;
	}
	if (by_user && o.kind != REPORT_LICENSES) {
		usage_fail("report", "--by-user goes with 'report licenses'");
		goto out;
	}
	if (alerts && no_alerts) {
		usage_fail("report", "--alerts and --no-alerts do not go together");
		goto out;
	}
	if (config_load(config_locate(g->config_path), &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		goto out;
	}
	/* alerts: the config's alerts.enabled, forced on by --alerts or off by --no-alerts for this run */
	alerts = !no_alerts && (alerts || cfg.alerts.enabled);
	if (dry_run && !alerts) {
		rc = usage_fail("report", "--dry-run goes with --alerts (or alerts.enabled in the config)");
		goto out;
	}
	if (alerts && !days_opt && o.kind != REPORT_SECURESCORE) o.days = cfg.alerts.unused_days;
	o.failing_hours = cfg.alerts.failing_hours;
	rc = EXIT_NOSTART;
	if (access(cfg.database, F_OK) != 0) {
		fprintf(stderr, "entrasync report: no database at %s yet: run 'entrasync pull' first\n", cfg.database);
		goto out;
	}
	/* --alerts writes to Syncro and the store: one run at a time; a stop
	 * (SIGTERM, SIGINT) finishes the ticket in hand, the next run the rest */
	if (alerts) shutdown_install();
	if (alerts && store_lock_acquire(cfg.database, &lock, &err) != 0) {
		fprintf(stderr, "entrasync report: %s\n", err.msg);
		goto out;
	}
	/* with --alerts (the lock held), a configured tenant the store knows under another of its names (its GUID, a
	 * domain) is renamed first, as a pull or a sync does: its alerts go to its customer */
	if (store_open(cfg.database, &st, &err) != 0 || (alerts && ops_tenants_rekey(&cfg, st, &err) != 0)) {
		fprintf(stderr, "entrasync report: %s\n", err.msg);
		goto out;
	}
	/* without --tenant: the configured tenants, under the store's other id until a pull renames it (a customer
	 * taken out of the config is not reported) */
	if (!names.n) {
		scope = xcalloc(2 * cfg.ntenants + 1, sizeof *scope);
		known_as = xcalloc(cfg.ntenants + 1, sizeof *known_as);
		nknown_as = cfg.ntenants;
		for (size_t i = 0; i < cfg.ntenants; i++) {
			scope[o.nscope++] = cfg.tenants[i].id;
			if ((known_as[i] = ops_tenant_row_of(&cfg, st, &cfg.tenants[i]))) scope[o.nscope++] = known_as[i];
		}
		o.scope = scope;
	}
	/* the tenants named: configured ones by id, name, GUID or verified domain, and ones only the store holds */
	if (names.n) {
		tenants = xcalloc(names.n, sizeof *tenants);
		if ((rc = ops_tenants_resolve("report", &cfg, st, &names, tenants)) != 0) goto out;
		rc = EXIT_NOSTART;
		o.tenants = tenants;
		o.ntenants = names.n;
	}
	rl = report_lua_new(&cfg);
	struct report_hooks hooks;
	report_lua_hooks(rl, &hooks);
	rc = EXIT_PARTIAL;
	if (report_build(st, &o, &hooks, &r, &err) != 0) {
		fprintf(stderr, "entrasync report: %s\n", err.msg);
		rc = strstr(err.msg, "not in the database") ? EXIT_USAGE : EXIT_PARTIAL;
		goto out;
	}
	if (report_render(r, &o, &text, &err) != 0 || write_out(out_opt, &text, &err) != 0) {
		fprintf(stderr, "entrasync report: %s\n", err.msg);
		goto out;
	}
	if (out_opt && strcmp(out_opt, "-") != 0)
		fprintf(stderr, "entrasync report: %s report written to %s\n", report_kind_name(o.kind), out_opt);
	if (r->nleft_out)
		fprintf(stderr, "entrasync report: left out %zu tenant%s not in the config any more: %s ('--tenant ID' "
		        "reports %s; 'entrasync tenants forget ID' deletes what the database keeps of %s)\n", r->nleft_out,
		        r->nleft_out == 1 ? "" : "s", r->left_out.data, r->nleft_out == 1 ? "it" : "one",
		        r->nleft_out == 1 ? "it" : "one");
	rc = EXIT_OK;
	if (alerts) {
		struct alerts_opts ao = { .dry_run = dry_run, .problem_type = cfg.alerts.problem_type,
		                          .subject_prefix = cfg.alerts.subject_prefix };
		struct alerts_result ar = { 0 };
		if (alerts_run(&cfg, st, r, &ao, stderr, &ar, &err) != 0) {
			fprintf(stderr, "entrasync report: alerts: %s\n", err.msg);
			rc = EXIT_PARTIAL;
		} else if (ar.failed) {
			rc = EXIT_PARTIAL;
		}
	}
out:
	report_free(r);
	report_lua_free(rl);
	buf_free(&text);
	store_close(st);
	store_lock_release(&lock);
	config_free(&cfg);
	free(tenants);
	opt_list_free(&names);
	for (size_t i = 0; i < nknown_as; i++) free(known_as[i]);
	free(known_as);
	free(scope);
	return commands_finish_output(rc);
}
