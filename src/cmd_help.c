/* cmd_help — `entrasync help [COMMAND]` and `entrasync version` (also
 * reached as --help and --version). */
#include <stdio.h>

#include "commands.h"

int cmd_help(int argc, char **argv, const struct global_opts *g)
{
	static const struct opt none[] = { { NULL, NULL, NULL, NULL } };
	char **pos = argv;
	int npos;
	struct err err;
	(void)g;
	if (opts_parse(argc, argv, none, pos, &npos, &err) != 0) return usage_fail("help", "%s", err.msg);
	if (npos > 1) return usage_fail("help", "expected at most one command name, got %d arguments", npos);
	if (npos == 0) {
		commands_print_help(stdout, 0);
		return EXIT_OK;
	}
	const struct command *c = command_find(pos[0]);
	if (!c) return usage_unknown_command(pos[0]);
	command_print_usage(c, stdout);
	return EXIT_OK;
}

int cmd_version(int argc, char **argv, const struct global_opts *g)
{
	static const struct opt none[] = { { NULL, NULL, NULL, NULL } };
	char **pos = argv;
	int npos;
	struct err err;
	(void)g;
	if (opts_parse(argc, argv, none, pos, &npos, &err) != 0) return usage_fail("version", "%s", err.msg);
	if (npos > 0) return usage_fail("version", "unexpected argument '%s'", pos[0]);
	printf("entrasync %s\n", ENTRASYNC_VERSION);
	return EXIT_OK;
}
