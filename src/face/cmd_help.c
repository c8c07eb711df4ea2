/* cmd_help — `entrasync help [COMMAND]` and `entrasync version` (also
 * reached as --help and --version). */
#include <stdio.h>

#include "face/commands.h"

int cmd_help(int argc, char **argv, const struct global_opts *g)
{
	int npos;
	(void)g;
	if (command_args("help", argc, argv, NULL, 1, &npos) != 0) return EXIT_USAGE;
	if (npos == 0) {
		commands_print_help(stdout, 0);
		return EXIT_OK;
	}
	const struct command *c = command_find(argv[0]);
	if (!c) return usage_unknown_command(argv[0]);
	command_print_usage(c, stdout);
	return EXIT_OK;
}

int cmd_version(int argc, char **argv, const struct global_opts *g)
{
	int npos;
	(void)g;
	if (command_args("version", argc, argv, NULL, 0, &npos) != 0) return EXIT_USAGE;
	printf("entrasync %s\n", ENTRASYNC_VERSION);
	return EXIT_OK;
}
