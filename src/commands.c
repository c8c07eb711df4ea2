/* commands — the command table, the option parser every command shares,
 * the global options, help texts and "did you mean" for the face. */
#include "commands.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "log.h"
#include "script.h"

const struct command commands[] = {
	{ "help", "Show the commands, or one command's help",
	  "usage: entrasync help [COMMAND]\n"
	  "\n"
	  "Lists the commands, the global options and the exit codes; with COMMAND,\n"
	  "shows that command's help (same as 'entrasync COMMAND --help').\n",
	  cmd_help, 0 },
	{ "version", "Print the version",
	  "usage: entrasync version\n"
	  "\n"
	  "Prints the program's version (same as 'entrasync --version').\n",
	  cmd_version, 0 },
	{ "check", "Validate the config and every policy it names",
	  "usage: entrasync check [--config FILE]\n"
	  "\n"
	  "Loads the config and every policy it names (the default policy and each\n"
	  "tenant's), reports every problem found with FILE:LINE, and prints a short\n"
	  "summary when all is well. Touches neither the network nor the database.\n"
	  "\n"
	  "Exit status: 0 all fine, 2 the config or a policy has a problem.\n",
	  cmd_check, 0 },
	{ "lua", "Run a Lua file in the policy sandbox (developer command)",
	  "usage: entrasync lua [--instructions N] [--memory-mb N] FILE [ARG...]\n"
	  "\n"
	  "Developer command: runs FILE in the same sandbox as policies (the limits\n"
	  "of one policy call apply to the whole file), with the entrasync.* modules\n"
	  "read from --lua-dir DIR when given, else the copies built into the\n"
	  "program. ARGs are in the global table 'arg' (arg[0] = FILE); print goes\n"
	  "to stdout. Put '--' before ARGs that look like global options.\n"
	  "  --instructions N   instruction budget (default 10000000)\n"
	  "  --memory-mb N      memory cap of the Lua state in MiB (default 64)\n"
	  "\n"
	  "Exit status: 0 ok, 1 the script failed, 2 usage error.\n",
	  cmd_lua, 1 },
	{ "pull", "Pull users, groups, licences and Secure Score from Microsoft Graph",
	  "usage: entrasync pull [--tenant ID[,ID...]]\n"
	  "\n"
	  "Reads every configured tenant (or those named by --tenant, by id or name)\n"
	  "from Microsoft Graph into the local database, all tenants at once: users\n"
	  "(by delta: only what changed since the last pull), the groups each\n"
	  "tenant's policy declares, the organization, today's licences and the\n"
	  "Secure Score history. Touches nothing in Syncro. A tenant that fails (no\n"
	  "consent, missing permission...) is reported; the others go on.\n"
	  "\n"
	  "Exit status: 0 all tenants pulled, 1 some failed, 2 usage or config error,\n"
	  "3 could not start (another run holds the lock, database unreadable).\n",
	  cmd_pull, 0 },
	{ "tenants", "List the tenants and their last pull; discover CSP customers",
	  "usage: entrasync tenants [discover]\n"
	  "\n"
	  "Lists the configured tenants with their last pull. With 'discover' (needs\n"
	  "csp.partner_tenant), lists the partner tenant's customers from Microsoft\n"
	  "Graph: tenant id, default domain, name, whether it is in the config,\n"
	  "whether the app can get a token there, and config entries to paste for\n"
	  "the customers not mapped yet.\n",
	  cmd_tenants, 0 },
	{ "sync", "Pull from Graph, plan, and bring Syncro contacts in step",
	  "usage: entrasync sync [--tenant ID|NAME]... [--dry-run] [--json] [--allow-removals]\n"
	  "\n"
	  "For every configured tenant (or those named with --tenant, repeatable):\n"
	  "pulls the users from Microsoft Graph into the local mirror, plans the\n"
	  "contacts with the tenant's policy, and applies the plan to Syncro: creates,\n"
	  "adopts an existing contact with the user's e-mail, updates only what\n"
	  "changed, and handles leavers per on_leave. Prints per tenant:\n"
	  "  + create   ~ update/adopt (field: old → new)   - delete   ! conflict or held\n"
	  "\n"
	  "  --dry-run          plan and show, write nothing to Syncro (reads allowed)\n"
	  "  --json             print the report as JSON\n"
	  "  --allow-removals   release the removal guard for this run (a tenant is held\n"
	  "                     when more than max(5, 10%) of its linked contacts would be\n"
	  "                     deleted or marked, or Graph returned no users)\n"
	  "\n"
	  "Exit status: 0 all tenants ok, 1 a tenant failed or was held, 2 usage or\n"
	  "config error, 3 could not start (another run holds the lock).\n",
	  cmd_sync, 0 },
	{ "demo", "Run the main job end to end on bundled fake tenants",
	  "usage: entrasync demo [--keep]\n"
	  "\n"
	  "Starts the bundled fake Microsoft Graph (tenants Contoso, Fabrikam,\n"
	  "Northwind) and fake Syncro (their customers) on 127.0.0.1 in a temporary\n"
	  "folder, writes a config there, then runs 'sync --dry-run', 'sync' and\n"
	  "'sync' again, and shows what was created, adopted, updated and the\n"
	  "conflict left for you. Nothing leaves the machine. Needs python3; the\n"
	  "fakes are found in the source tree beside the program, in\n"
	  "$ENTRASYNC_FAKES, or in PREFIX/share/entrasync/fakes.\n"
	  "\n"
	  "  --keep   keep the temporary folder (config, database, fake logs)\n",
	  cmd_demo, 0 },
	{ "policy", "Test a policy offline on a file of Graph users",
	  "usage: entrasync policy test POLICY --users FILE [--customer ID] [--json]\n"
	  "\n"
	  "Offline: no config, no network, no database. Loads POLICY in the same\n"
	  "sandbox a sync uses and, for every user in FILE (Graph-shaped: {\"value\":[...]}\n"
	  "or an array of user objects), prints include's verdict and reason, the\n"
	  "contact fields, and what on_leave would do for each reason a linked user\n"
	  "can leave (deleted, disabled, out_of_scope). A user object may carry\n"
	  "\"groups\": [names or ids] or Graph's \"memberOf\": [{\"id\",\"displayName\"}] for\n"
	  "u.groups; licences come from assignedLicenses. Try it on\n"
	  "tests/fixtures/users/*.json and policies/examples/*.lua.\n"
	  "\n"
	  "  --customer ID   the tenant's Syncro customer id (t.syncro_customer_id)\n"
	  "  --json          print the decisions as JSON\n"
	  "\n"
	  "Exit status: 0 every user evaluated, 1 the policy failed on some user,\n"
	  "2 usage error or the policy does not load.\n",
	  cmd_policy, 0 },
	{ NULL, NULL, NULL, NULL, 0 },
};

static const char *const global_names[] = { "--config", "--lua-dir", "--log-level", "--log-format", NULL };
static const char *const log_formats[] = { "human", "json", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", "trace", NULL };

const struct command *command_find(const char *name)
{
	for (const struct command *c = commands; c->name; c++)
		if (strcmp(c->name, name) == 0) return c;
	return NULL;
}

/* "unknown WHAT 'GIVEN' (did you mean 'X'?)" into b. */
static void format_unknown(struct buf *b, const char *what, const char *given, const char *const *valid)
{
	const char *near = config_nearest(given, valid);
	buf_printf(b, "unknown %s '%s'", what, given);
	if (near) buf_printf(b, " (did you mean '%s'?)", near);
}

int usage_fail(const char *cmd, const char *fmt, ...)
{
	struct buf b = {0};
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	fprintf(stderr, "entrasync%s%s: %s\n", cmd ? " " : "", cmd ? cmd : "", b.data ? b.data : "");
	buf_free(&b);
	return EXIT_USAGE;
}

int usage_unknown(const char *what, const char *given, const char *const *valid, const char *cmd)
{
	struct buf b = {0};
	format_unknown(&b, what, given, valid);
	usage_fail(cmd, "%s", b.data);
	buf_free(&b);
	return EXIT_USAGE;
}

int usage_unknown_command(const char *given)
{
	const char *names[32];
	size_t n = 0;
	for (const struct command *c = commands; c->name && n + 1 < ARRAY_LEN(names); c++)
		if (!c->hidden) names[n++] = c->name;
	names[n] = NULL;
	struct buf b = {0};
	format_unknown(&b, "command", given, names);
	if (!config_nearest(given, names)) buf_adds(&b, " (see 'entrasync help')");
	usage_fail(NULL, "%s", b.data);
	buf_free(&b);
	return EXIT_USAGE;
}

/* Is a the start of "--name" or "--name=…" for this option name? */
static int opt_named(const char *a, const char *name)
{
	size_t n = strlen(name);
	return strncmp(a, name, n) == 0 && (a[n] == '\0' || a[n] == '=');
}

/* Matches argv[*i] against opts. Returns 1 when it is one of them (value
 * or flag stored, *i moved past a separate value), 0 when it is not, -1 on
 * a missing value or a value given to a flag (err). A separate value may
 * not look like a long option ("--config --log-level" is a missing value). */
static int opt_take(const struct opt *opts, int argc, char **argv, int *i, struct err *err)
{
	const char *a = argv[*i];
	for (const struct opt *o = opts; o->name; o++) {
		if (!opt_named(a, o->name)) continue;
		const char *eq = a + strlen(o->name);
		if (!o->metavar) {
			if (*eq == '=') return err_set(err, "option '%s' takes no value", o->name);
			*o->flag = 1;
			return 1;
		}
		const char *v = NULL;
		if (*eq == '=') v = eq + 1;
		else if (*i + 1 < argc && !(str_starts(argv[*i + 1], "--") && argv[*i + 1][2])) v = argv[++*i];
		if (!v || !*v) return err_set(err, "option '%s' needs a value (%s %s)", o->name, o->name, o->metavar);
		*o->value = v;
		return 1;
	}
	return 0;
}

/* err = "unknown option 'X' (did you mean …)" among extra and the global
 * options (and --help); "=value" is left out of the message. */
static int unknown_option(const char *given, const struct opt *extra, const char *const *more, struct err *err)
{
	const char *valid[64];
	size_t n = 0;
	for (const struct opt *o = extra; o && o->name && n < 40; o++) valid[n++] = o->name;
	for (size_t j = 0; global_names[j]; j++) valid[n++] = global_names[j];
	for (size_t j = 0; more && more[j] && n < 62; j++) valid[n++] = more[j];
	valid[n] = NULL;
	char *name = xstrndup(given, strcspn(given, "="));
	struct buf b = {0};
	format_unknown(&b, "option", name, valid);
	err_set(err, "%s", b.data);
	buf_free(&b);
	free(name);
	return -1;
}

int opts_parse(int argc, char **argv, const struct opt *opts, char **pos, int *npos, struct err *err)
{
	static const char *const help[] = { "--help", NULL };
	*npos = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (++i < argc) pos[(*npos)++] = argv[i];
			break;
		}
		if (a[0] != '-' || a[1] == '\0') {
			pos[(*npos)++] = argv[i];
			continue;
		}
		int r = opt_take(opts, argc, argv, &i, err);
		if (r < 0) return -1;
		if (r == 0) return unknown_option(a, opts, help, err);
	}
	return 0;
}

int command_args(const char *cmd, int argc, char **argv, const struct opt *opts, int max_pos, int *npos)
{
	static const struct opt none[] = { { NULL, NULL, NULL, NULL } };
	struct err err;
	if (opts_parse(argc, argv, opts ? opts : none, argv, npos, &err) != 0) return usage_fail(cmd, "%s", err.msg);
	if (*npos > max_pos) return usage_fail(cmd, "unexpected argument '%s'", argv[max_pos]);
	return 0;
}

/* err = "invalid value 'V' for OPT (expected A, B or C) (did you mean …)". */
static int invalid_value(const char *opt, const char *v, const char *const *valid, struct err *err)
{
	struct buf b = {0};
	buf_printf(&b, "invalid value '%s' for %s (expected ", v, opt);
	for (size_t i = 0; valid[i]; i++)
		buf_printf(&b, "%s%s", i == 0 ? "" : valid[i + 1] ? ", " : " or ", valid[i]);
	buf_addc(&b, ')');
	const char *near = config_nearest(v, valid);
	if (near) buf_printf(&b, " (did you mean '%s'?)", near);
	err_set(err, "%s", b.data);
	buf_free(&b);
	return -1;
}

int global_opts_parse(int argc, char **argv, struct global_opts *g, char **rest, int *nrest, struct err *err)
{
	static char help_cmd[] = "help", version_cmd[] = "version";
	static const char *const before_cmd[] = { "--help", "--version", NULL };
	const struct opt gopts[] = {
		{ "--config", "FILE", &g->config_path, NULL },
		{ "--lua-dir", "DIR", &g->lua_dir, NULL },
		{ "--log-level", "LEVEL", &g->log_level, NULL },
		{ "--log-format", "FORMAT", &g->log_format, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	int have_cmd = 0;
	*nrest = 0;
	for (int i = 0; i < argc; i++) {
		char *a = argv[i];
		if (strcmp(a, "--") == 0) {             /* the rest belongs to the command, untouched */
			while (i < argc) rest[(*nrest)++] = argv[i++];
			break;
		}
		int r = opt_take(gopts, argc, argv, &i, err);
		if (r < 0) return -1;
		if (r > 0) continue;
		if (!have_cmd) {
			if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) a = help_cmd;
			else if (strcmp(a, "--version") == 0) a = version_cmd;
			else if (a[0] == '-' && a[1]) return unknown_option(a, NULL, before_cmd, err);
			have_cmd = 1;
		}
		rest[(*nrest)++] = a;
	}
	if (g->log_level && log_level_parse(g->log_level) < 0)
		return invalid_value("--log-level", g->log_level, log_levels, err);
	if (g->log_format && strcmp(g->log_format, "human") != 0 && strcmp(g->log_format, "json") != 0)
		return invalid_value("--log-format", g->log_format, log_formats, err);
	struct stat st;
	if (g->lua_dir && (stat(g->lua_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
		return err_set(err, "--lua-dir '%s' is not a directory", g->lua_dir);
	return 0;
}

void global_opts_apply(const struct global_opts *g)
{
	if (g->log_level) log_set_level((enum log_level)log_level_parse(g->log_level));
	if (g->log_format) log_set_format(strcmp(g->log_format, "json") == 0 ? LOG_JSON : LOG_HUMAN);
	if (g->lua_dir) script_set_lua_dir(g->lua_dir);
}

int command_wants_help(int argc, char **argv)
{
	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return 1;
	return 0;
}

static const char global_help[] =
	"Global options (before or after the command):\n"
	"  --config FILE        the config file (default: $ENTRASYNC_CONFIG, else ./entrasync.lua)\n"
	"  --lua-dir DIR        load the runtime's Lua modules from DIR instead of the built-in copies\n"
	"  --log-level LEVEL    error, warn, info (default), debug or trace\n"
	"  --log-format FORMAT  human (default) or json\n"
	"  -h, --help           show help\n"
	"  --version            print the version\n";

static const char exit_help[] =
	"Exit status:\n"
	"  0  success\n"
	"  1  some tenant failed or was held\n"
	"  2  usage or config error\n"
	"  3  could not start (lock held, store unreadable)\n";

void commands_print_help(FILE *f, int brief)
{
	fputs("usage: entrasync <command> [options]\n\n", f);
	if (!brief)
		fputs("Keeps Syncro MSP contacts in step with each customer's Microsoft Entra ID.\n\n", f);
	fputs("Commands:\n", f);
	for (const struct command *c = commands; c->name; c++)
		if (!c->hidden) fprintf(f, "  %-10s %s\n", c->name, c->summary);
	if (brief) {
		fputs("\nRun 'entrasync help' for the options and exit codes, 'entrasync help COMMAND' for a command.\n", f);
		return;
	}
	fprintf(f, "\n%s\n%s\nRun 'entrasync help COMMAND' or 'entrasync COMMAND --help' for a command's options.\n",
	        global_help, exit_help);
}

void command_print_usage(const struct command *c, FILE *f)
{
	fprintf(f, "%s\n%s", c->usage, global_help);
}

int commands_finish_output(int rc)
{
	errno = 0;
	int failed = fflush(stdout) != 0 || ferror(stdout);
	if (!failed || errno == EPIPE) return rc;
	fprintf(stderr, "entrasync: cannot write the output: %s\n", errno ? strerror(errno) : "write error");
	return rc ? rc : EXIT_PARTIAL;
}
