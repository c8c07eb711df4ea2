/* cmd_sync — `entrasync sync [--tenant T]... [--dry-run] [--json]
 * [--allow-removals]`: loads the config, runs the engine for the selected
 * tenants (engine_sync_config: run lock, store, Graph and Syncro clients)
 * and prints the plan/result per tenant (text, or JSON). Exit 0 all ok, 1
 * a tenant failed or was held (or the run stopped on a Syncro 401), 2
 * usage or config error, 3 could not start (lock held, store unreadable).
 *
 * Test hooks (environment, for the crash tests only):
 *   ENTRASYNC_TEST_KILL_BEFORE_SEND=N / ENTRASYNC_TEST_KILL_AFTER_SEND=N:
 *   the process SIGKILLs itself right before / right after its Nth Syncro
 *   write (after the intent is committed / before the result is). */
#include "commands.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "engine.h"
#include "log.h"

#define MAX_TENANT_ARGS 256

/* Takes every "--tenant X" / "--tenant=X" (before "--") out of argv into
 * names. Returns the new argc, or -1 (err) on a missing value. */
static int take_tenants(int argc, char **argv, const char **names, size_t *n, struct err *err)
{
	int out = 0;
	*n = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (i < argc) argv[out++] = argv[i++];
			break;
		}
		const char *v = NULL;
		if (strcmp(a, "--tenant") == 0) {
			if (i + 1 >= argc || str_starts(argv[i + 1], "--"))
				return err_set(err, "option '--tenant' needs a value (--tenant ID|NAME)");
			v = argv[++i];
		} else if (str_starts(a, "--tenant=")) {
			v = a + strlen("--tenant=");
			if (!*v) return err_set(err, "option '--tenant' needs a value (--tenant ID|NAME)");
		} else {
			argv[out++] = argv[i];
			continue;
		}
		if (*n == MAX_TENANT_ARGS) return err_set(err, "too many --tenant options");
		names[(*n)++] = v;
	}
	return out;
}

static long kill_before, kill_after, sends_before, sends_after;

static void hook_before(void *ud, const struct engine_action *a)
{
	if (kill_before && ++sends_before == kill_before) raise(SIGKILL);
}

static void hook_after(void *ud, const struct engine_action *a)
{
	if (kill_after && ++sends_after == kill_after) raise(SIGKILL);
}

static long env_long(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? strtol(v, NULL, 10) : 0;
}

int cmd_sync(int argc, char **argv, const struct global_opts *g)
{
	const char *names[MAX_TENANT_ARGS], *unused = NULL;
	size_t nnames = 0;
	int dry = 0, json = 0, allow = 0, npos = 0, rc = EXIT_NOSTART;
	struct err err;
	const struct opt opts[] = {
		{ "--dry-run", NULL, NULL, &dry },
		{ "--json", NULL, NULL, &json },
		{ "--allow-removals", NULL, NULL, &allow },
		{ "--tenant", "ID|NAME", &unused, NULL },   /* taken out before (repeatable); here for "did you mean" */
		{ NULL, NULL, NULL, NULL },
	};
	int left = take_tenants(argc, argv, names, &nnames, &err);
	if (left < 0) return usage_fail("sync", "%s", err.msg);
	if (opts_parse(left, argv, opts, argv, &npos, &err) != 0) return usage_fail("sync", "%s", err.msg);
	if (npos > 0) return usage_fail("sync", "unexpected argument '%s'", argv[0]);

	struct config cfg;
	struct engine_report rep = {0};
	bool *sel = NULL, nostart = false;
	memset(&cfg, 0, sizeof cfg);
	const char *path = config_locate(g->config_path);
	if (config_load(path, &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	sel = xcalloc(cfg.ntenants + 1, sizeof *sel);
	if (engine_tenants_select(&cfg, names, nnames, sel, &err) != 0) {
		rc = usage_fail("sync", "%s", err.msg);
		goto out;
	}
	kill_before = env_long("ENTRASYNC_TEST_KILL_BEFORE_SEND");
	kill_after = env_long("ENTRASYNC_TEST_KILL_AFTER_SEND");
	struct engine_sync_opts o = {
		.tenants = names, .ntenants = nnames, .dry_run = dry, .allow_removals = allow, .record_plan = true,
		.before_send = kill_before ? hook_before : NULL, .after_send = kill_after ? hook_after : NULL,
	};
	if (engine_sync_config(&cfg, &o, &rep, &nostart, &err) != 0) {
		fprintf(stderr, "entrasync sync: %s\n", err.msg);
		rc = nostart ? EXIT_NOSTART : EXIT_USAGE;
		goto out;
	}
	if (json) engine_report_print_json(stdout, &rep);
	else engine_report_print_text(stdout, &rep);
	if (rep.fatal) fprintf(stderr, "entrasync sync: %s\n", rep.fatal_msg);
	rc = engine_report_exit_code(&rep);
out:
	engine_report_free(&rep);
	free(sel);
	config_free(&cfg);
	return rc;
}
