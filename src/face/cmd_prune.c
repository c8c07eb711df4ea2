/* cmd_prune — `entrasync prune [--dry-run] [--vacuum]`: the retention
 * (store_retention.h) applied now and to the end, where a pull or a sync
 * applies it at most 100,000 rows a table a run: after a retention was
 * shortened, or to see what it deletes. --dry-run counts what would go
 * (the work done, then rolled back); --vacuum then gives the freed space
 * back to the file system. Takes the run lock. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "face/cmd_ops.h"

/* Prints the size change of a vacuum, in MB. */
static void print_vacuum(long long before, long long after)
{
	printf("vacuum: the database went from %.1f MB to %.1f MB\n", (double)before / 1e6, (double)after / 1e6);
}

int cmd_prune(int argc, char **argv, const struct global_opts *g)
{
	int dry = 0, vacuum = 0;
	const struct opt opts[] = { { "--dry-run", NULL, NULL, &dry }, { "--vacuum", NULL, NULL, &vacuum },
		                        { NULL, NULL, NULL, NULL } };
	struct config cfg;
	struct err err;
	struct store *st = NULL;
	struct store_lock lock = { 0 };
	struct buf said = { 0 };
	int npos, rc;
	memset(&cfg, 0, sizeof cfg);
	if (command_args("prune", argc, argv, opts, 0, &npos) != 0) return EXIT_USAGE;
	if (dry && vacuum) {
		fprintf(stderr, "entrasync prune: --vacuum does nothing with --dry-run\n");
		return EXIT_USAGE;
	}
	if ((rc = ops_config_load("prune", g, &cfg)) != 0) goto out;
	rc = EXIT_NOSTART;
	if (store_lock_acquire(cfg.database, &lock, &err) != 0) {
		fprintf(stderr, "entrasync prune: %s\n", err.msg);
		goto out;
	}
	int opened = ops_store_open("prune", &cfg, false, &st);
	if (opened == STORE_NOTFOUND) {
		printf("no database yet (%s): nothing to prune\n", cfg.database);
		rc = EXIT_OK;
		goto out;
	}
	if (opened != 0) goto out;
	struct store_retention keep = ops_retention_of(&cfg);
	struct store_pruned total = { 0 }, p;
	if (dry) {
		keep.dry_run = true;
		keep.max_rows = LLONG_MAX;
	}
	double now = time_now();
	do {
		if (store_prune(st, &keep, now, &p, &err) != 0) {
			fprintf(stderr, "entrasync prune: %s\n", err.msg);
			goto out;
		}
		total.runs += p.runs;
		total.run_tenants += p.run_tenants;
		total.intents += p.intents;
		total.audit += p.audit;
		total.score_days += p.score_days;
	} while (p.more && !dry);
	ops_pruned_text(&cfg.retention, &total, &said);
	if (said.len) printf("%s %s\n", dry ? "would delete" : "deleted", said.data);
	else printf("nothing older than the retention%s\n", dry ? "" : " to delete");
	if (vacuum) {
		long long before, after;
		if (store_vacuum(st, &before, &after, &err) != 0) {
			fprintf(stderr, "entrasync prune: %s\n", err.msg);
			goto out;
		}
		print_vacuum(before, after);
	}
	rc = EXIT_OK;
out:
	buf_free(&said);
	store_close(st);
	store_lock_release(&lock);
	config_free(&cfg);
	return rc;
}
