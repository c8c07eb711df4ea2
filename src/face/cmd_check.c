/* cmd_check — `entrasync check`: loads the config and every policy it
 * names, reports every problem (all config problems, then one line per
 * broken policy), then the Graph certificate and key when configured (read
 * as a pull would: PEM, matching, not expired; a warning 30 days before it
 * expires), and prints a short summary when all is fine. Never opens
 * the database and never touches the network. Run by the daemon on a new
 * snapshot (ENTRASYNC_SNAPSHOT_FD set), a certificate the runs cannot use
 * does not fail it: the daemon takes the config and says it at each run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "face/commands.h"
#include "graph/graph.h"
#include "util/config.h"
#include "util/log.h"
#include "script/script.h"
#include "util/snapshot.h"

/* A distinct policy file of the config and where it is first named. */
struct policy_use {
	const char *path;
	int line;            /* config line naming it (0 = unknown) */
};

/* Distinct policy paths: the default first, then each tenant's in order.
 * Returns a malloc'd array (caller frees) and its length in *n. */
static struct policy_use *distinct_policies(const struct config *cfg, size_t *n)
{
	struct policy_use *v = xcalloc(cfg->ntenants + 1, sizeof *v);
	*n = 0;
	if (cfg->policy) v[(*n)++] = (struct policy_use){ cfg->policy, cfg->policy_line };
	for (size_t i = 0; i < cfg->ntenants; i++) {
		const struct config_tenant *t = &cfg->tenants[i];
		size_t j = 0;
		while (j < *n && strcmp(v[j].path, t->policy) != 0) j++;
		if (j == *n) v[(*n)++] = (struct policy_use){ t->policy, t->policy_line };
	}
	return v;
}

/* Loads one policy in a fresh sandbox, as the sync would. A file that
 * cannot be read is reported at the config line that names it (a policy
 * held by the daemon's snapshot is checked as held, whatever the disk has). */
static int check_policy(const struct config *cfg, const struct policy_use *p, struct err *err)
{
	struct script *s = NULL;
	int rc = -1;
	struct stat st;
	const char *why = NULL;
	if (snapshot_has(p->path)) why = NULL;   /* the daemon's accepted text: the disk does not count */
	else if (stat(p->path, &st) != 0) why = strerror(errno);
	else if (!S_ISREG(st.st_mode)) why = "not a regular file";
	else if (access(p->path, R_OK) != 0) why = strerror(errno);
	if (why) {
		if (p->line) err_set(err, "%s:%d: policy file '%s' cannot be read (%s)", cfg->path, p->line, p->path, why);
		else err_set(err, "%s: policy file '%s' cannot be read (%s)", cfg->path, p->path, why);
		goto out;
	}
	struct script_limits lim = { .instructions = cfg->limits.instructions, .seconds = cfg->limits.seconds, .memory_bytes = cfg->limits.memory_bytes };
	if (script_new(&lim, &s, err) != 0) goto out;
	if (script_policy_load(s, p->path, err) != 0) goto out;
	rc = 0;
out:
	script_free(s);
	return rc;
}

static void print_summary(const struct config *cfg, size_t npolicies)
{
	printf("config OK: %s, %zu tenant%s, %zu polic%s\n", cfg->path, cfg->ntenants, cfg->ntenants == 1 ? "" : "s",
	       npolicies, npolicies == 1 ? "y" : "ies");
	for (size_t i = 0; i < cfg->ntenants; i++) {
		const struct config_tenant *t = &cfg->tenants[i];
		if (t->name) printf("  %s (%s): ", t->name, t->id);
		else printf("  %s: ", t->id);
		if (t->syncro_customer) printf("Syncro customer '%s'", t->syncro_customer);
		else printf("Syncro customer #%lld", t->syncro_customer_id);
		printf(", policy %s\n", t->policy);
	}
}

int cmd_check(int argc, char **argv, const struct global_opts *g)
{
	struct config cfg;
	struct err err;
	struct policy_use *policies = NULL;
	size_t npolicies = 0, nbad = 0;
	int npos, rc = EXIT_USAGE;
	memset(&cfg, 0, sizeof cfg);
	if (command_args("check", argc, argv, NULL, 0, &npos) != 0) return EXIT_USAGE;
	const char *path = config_locate(g->config_path);
	if (config_load_opts(path, CONFIG_SKIP_POLICY_FILES, &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		if (access(path, F_OK) != 0)
			fprintf(stderr, "entrasync check: no config file at '%s' (give --config FILE or set ENTRASYNC_CONFIG)\n", path);
		else
			fprintf(stderr, "entrasync check: %s is not valid\n", path);
		goto out;
	}
	policies = distinct_policies(&cfg, &npolicies);
	for (size_t i = 0; i < npolicies; i++) {
		if (check_policy(&cfg, &policies[i], &err) == 0) continue;
		log_redact_err(&err);
		fprintf(stderr, "%s\n", err.msg);
		nbad++;
	}
	if (nbad) {
		fprintf(stderr, "entrasync check: %zu of %zu polic%s not valid\n", nbad, npolicies,
		        npolicies == 1 ? "y is" : "ies are");
		goto out;
	}
	double not_after = -1;
	int cred = graph_credentials_check(&cfg.graph, 0, &not_after, &err);
	/* the daemon's check of a new snapshot: a certificate the runs cannot
	 * use is no reason to keep a stale config (its runs fail their tenants
	 * with it, and the daemon logs it at each run) */
	if (cred == GRAPH_CRED_UNUSABLE && getenv(SNAPSHOT_ENV)) cred = 0;
	if (cred != 0) {
		log_redact_err(&err);
		fprintf(stderr, "%s\nentrasync check: %s is not valid\n", err.msg, path);
		goto out;
	}
	print_summary(&cfg, npolicies);
	double left = not_after - time_now();
	if (not_after >= 0 && left < GRAPH_CERT_WARN_DAYS * 86400.0) {
		char day[16];
		time_day(not_after, day, sizeof day);
		fprintf(stderr, "warning: graph.certificate %s expires on %s (in %.0f days): upload its successor to the app "
		        "registration and point the config at it before then\n", cfg.graph.certificate, day, left / 86400.0);
	}
	rc = EXIT_OK;
out:
	free(policies);
	config_free(&cfg);
	return rc;
}
