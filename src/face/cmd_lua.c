/* cmd_lua — `entrasync lua [--instructions N] [--memory-mb N] FILE [ARGS...]`:
 * the developer command that runs a Lua file in the policy sandbox, with the
 * same limits as policies; `print` goes to stdout. The Lua tests run
 * through it. Exit 0 on success, 1 when the script fails (the error, with
 * file:line and a traceback, on stderr), 2 on a usage error. */
#include "face/commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "script/script.h"

static const char lua_usage[] =
	"usage: entrasync lua [--instructions N] [--memory-mb N] [--seconds S] FILE [ARGS...]\n"
	"Runs FILE in the policy sandbox (the limits of a policy call apply to the\n"
	"whole file). ARGS are in the global table arg (arg[0] = FILE).\n"
	"  --instructions N   instruction budget (default 10000000)\n"
	"  --memory-mb N      memory cap of the Lua state in MiB (default 64)\n"
	"  --seconds S        CPU time limit (default 10)\n";

/* Parses a positive integer option value; -1 when it is not one. */
static long long parse_count(const char *s)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0) return -1;
	return v;
}

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "entrasync: lua: %s%s%s\n%s", what, arg ? " " : "", arg ? arg : "", lua_usage);
	return EXIT_USAGE;
}

int cmd_lua(int argc, char **argv, const struct global_opts *g)
{
	static const char *const options[] = { "--instructions", "--memory-mb", "--seconds", "--help" };
	struct script_limits lim = {0};
	int i = 0;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		const char *o = argv[i];
		if (strcmp(o, "--") == 0) { i++; break; }
		if (strcmp(o, "--help") == 0 || strcmp(o, "-h") == 0) {
			fputs(lua_usage, stdout);
			return EXIT_OK;
		}
		if (strcmp(o, "--seconds") == 0) {
			if (i + 1 >= argc) return usage_error("a value is needed after", o);
			char *end;
			double v = strtod(argv[++i], &end);
			if (*end || !(v >= 0.01 && v <= 3600)) return usage_error("invalid value (seconds, 0.01 to 3600):", argv[i]);
			lim.seconds = v;
			continue;
		}
		bool ins = strcmp(o, "--instructions") == 0, mem = strcmp(o, "--memory-mb") == 0;
		if (ins || mem) {
			if (i + 1 >= argc) return usage_error("a value is needed after", o);
			long long v = parse_count(argv[++i]);
			if (v < 0 || (mem && v > 1 << 20)) return usage_error("invalid value (a positive integer is needed):", argv[i]);
			if (ins) lim.instructions = v;
			else lim.memory_bytes = (size_t)v << 20;
			continue;
		}
		const char *best = NULL;
		size_t best_d = 4;
		for (size_t k = 0; k < ARRAY_LEN(options); k++) {
			size_t d = str_edit_distance(o, options[k]);
			if (d < best_d) { best_d = d; best = options[k]; }
		}
		if (best) {
			fprintf(stderr, "entrasync: unknown option '%s' for 'lua' (did you mean '%s'?)\n", o, best);
			return EXIT_USAGE;
		}
		return usage_error("unknown option", o);
	}
	if (i >= argc) return usage_error("missing FILE", NULL);
	if (g && g->lua_dir) script_set_lua_dir(g->lua_dir);

	struct err err = {0};
	struct script *s = NULL;
	int rc = EXIT_PARTIAL;
	if (script_new(&lim, &s, &err) != 0) goto out;
	script_set_print(s, SCRIPT_PRINT_STDOUT);
	if (script_run_file(s, argv[i], argc - i - 1, argv + i + 1, &err) != 0) goto out;
	rc = EXIT_OK;
out:
	fflush(stdout);
	if (rc != EXIT_OK) {
		log_redact_err(&err);
		fprintf(stderr, "entrasync: lua: %s\n", err.msg);
	}
	script_free(s);
	return rc;
}
