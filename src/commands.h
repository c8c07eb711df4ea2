/* commands — the face: one table of subcommands (src/commands.c), each
 * implemented in src/cmd_<name>.c. Later features add a row to the table.
 * A command gets argv after its name and returns the process exit code:
 * 0 ok, 1 some tenant failed or held, 2 usage or config error,
 * 3 could not start (lock held, store unreadable). */
#ifndef ENTRASYNC_COMMANDS_H
#define ENTRASYNC_COMMANDS_H

enum { EXIT_OK = 0, EXIT_PARTIAL = 1, EXIT_USAGE = 2, EXIT_NOSTART = 3 };

/* Options every command accepts before or after its name. */
struct global_opts {
	const char *config_path;  /* --config */
	const char *lua_dir;      /* --lua-dir: load the runtime Lua from disk */
	const char *log_level;    /* --log-level */
	const char *log_format;   /* --log-format human|json */
};

struct command {
	const char *name;
	const char *summary;      /* one line for `entrasync help` */
	const char *usage;        /* full --help text */
	int (*run)(int argc, char **argv, const struct global_opts *g);
	int hidden;               /* developer commands, not listed by help */
};

extern const struct command commands[];
const struct command *command_find(const char *name);

/* Prints "entrasync: unknown option '--x' for 'check' (did you mean
 * '--config'?)" to stderr and returns EXIT_USAGE. valid is NULL-terminated. */
int usage_unknown(const char *what, const char *given, const char *const *valid, const char *cmd);

int cmd_help(int argc, char **argv, const struct global_opts *g);
int cmd_version(int argc, char **argv, const struct global_opts *g);
int cmd_check(int argc, char **argv, const struct global_opts *g);
int cmd_lua(int argc, char **argv, const struct global_opts *g);

#endif
