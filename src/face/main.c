/* main — the entry point: takes the global options out of argv, finds the
 * command in the table (src/face/commands.c) and runs it. With no command it
 * prints the short help to stderr and exits 2 (a usage error, like git).
 * SIGPIPE is ignored: a closed socket or a closed output pipe becomes an
 * EPIPE error to handle, never a silent death mid-run (a reader that went
 * away is not reported, see commands_finish_output). No core files (they
 * would hold the secrets). A run the daemon started (an exec of
 * /proc/self/exe, which the kernel names "exe") takes its name back. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "face/commands.h"
#include "util/log.h"

int main(int argc, char **argv)
{
	struct global_opts g = { 0 };
	struct err err;
	char **rest = xcalloc((size_t)argc + 1, sizeof *rest);
	int nrest = 0, rc;
	signal(SIGPIPE, SIG_IGN);
	char comm[17] = "";
	if (prctl(PR_GET_NAME, comm) == 0 && strcmp(comm, "exe") == 0)   /* ps, top, pgrep, the journal */
		prctl(PR_SET_NAME, "entrasync");
	/* a core file would hold the client secret, the private key and the
	 * Syncro API key in clear: none is written (ENTRASYNC_CORE=1 allows
	 * one, for a developer who needs it) */
	const char *core = getenv("ENTRASYNC_CORE");
	struct rlimit lim;
	if ((!core || strcmp(core, "1") != 0) && getrlimit(RLIMIT_CORE, &lim) == 0) {
		lim.rlim_cur = 0;
		setrlimit(RLIMIT_CORE, &lim);
	}
	if (global_opts_parse(argc - 1, argv + 1, &g, rest, &nrest, &err) != 0) {
		rc = usage_fail(NULL, "%s", err.msg);
	} else if (nrest == 0) {
		commands_print_help(stderr, 1);
		rc = EXIT_USAGE;
	} else {
		const struct command *cmd = command_find(rest[0]);
		if (!cmd) {
			rc = usage_unknown_command(rest[0]);
		} else if (command_wants_help(nrest - 1, rest + 1)) {
			command_print_usage(cmd, stdout);
			rc = EXIT_OK;
		} else {
			global_opts_apply(&g);
			rc = cmd->run(nrest - 1, rest + 1, &g);
		}
	}
	rc = commands_finish_output(rc);
	free(rest);
	log_secrets_clear();
	return rc;
}
