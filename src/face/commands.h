/* commands — the face: one table of subcommands (src/face/commands.c), each
 * implemented in src/face/cmd_<name>.c. Later features add a row to the table.
 * A command gets argv after its name (global options already taken out
 * by main) and returns the process exit code:
 * 0 ok, 1 some tenant failed or held, 2 usage or config error,
 * 3 could not start (lock held, store unreadable).
 * Also here: the option parser every command shares, the global options
 * (--config, --lua-dir, --log-level, --log-format, accepted before or after
 * the command name) and the help texts. */
#ifndef ENTRASYNC_COMMANDS_H
#define ENTRASYNC_COMMANDS_H

#include <stdio.h>
#include "util/util.h"

enum { EXIT_OK = 0, EXIT_PARTIAL = 1, EXIT_USAGE = 2, EXIT_NOSTART = 3 };

/* Written by `sync --verify` (not a dry run) into the store's kv when its
 * verify was not cut short by an outage (Syncro's or Graph's) or a stop
 * signal: the run's start, ISO-8601 UTC. The daemon counts a --verify run
 * as the verify it was due only when this says that run finished it. */
#define SYNC_KV_VERIFIED_AT "sync.verified_at"

/* Options every command accepts before or after its name. The strings
 * point into argv (never freed). NULL = not given. */
struct global_opts {
	const char *config_path;  /* --config */
	const char *lua_dir;      /* --lua-dir: load the runtime Lua from disk */
	const char *log_level;    /* --log-level error|warn|info|debug|trace */
	const char *log_format;   /* --log-format human|json */
};

struct command {
	const char *name;
	const char *summary;      /* one line for `entrasync help` */
	const char *usage;        /* full --help text (without the global options) */
	int (*run)(int argc, char **argv, const struct global_opts *g);
	int hidden;               /* developer commands, not listed by help */
};

extern const struct command commands[];     /* ends with a row whose name is NULL */
/* The command named exactly name (hidden ones too), or NULL. */
const struct command *command_find(const char *name);

/* One option of a command, for opts_parse. A list ends with name NULL. */
struct opt {
	const char *name;         /* "--tenant" */
	const char *metavar;      /* "ID" when it takes a value; NULL for a flag */
	const char **value;       /* receives the value (options with a metavar) */
	int *flag;                /* set to 1 when given (flags) */
};

/* Parses a command's argv against opts: "--opt value", "--opt=value",
 * flags. Other arguments are positional, kept in order in pos (room for
 * argc entries; pos may be argv itself: they are compacted in place) with
 * their count in *npos; "--" ends the options. Fails
 * (-1, err) on an unknown option — with "did you mean" among opts and the
 * global options — a missing value ("option '--config' needs a value"),
 * a value given to a flag, or an option that takes one value given twice
 * (rather than one of them silently dropped; a command whose option takes
 * several takes them out first with opts_take_list). */
int opts_parse(int argc, char **argv, const struct opt *opts, char **pos, int *npos, struct err *err);

/* The values of a repeatable option (--tenant of pull, sync, report,
 * bill): each given value split at its commas, empty parts left out;
 * owned copies (opt_list_free). */
struct opt_list {
	char **v;
	size_t n;
};
/* Takes every "NAME V" / "NAME=V" before "--" out of argv, appending V's
 * parts to list, and returns the new argc (argv compacted, for
 * opts_parse); -1 (err) on a missing or empty value. metavar is for the
 * message. */
int opts_take_list(int argc, char **argv, const char *name, const char *metavar, struct opt_list *list,
                   struct err *err);
void opt_list_free(struct opt_list *l);

/* What a command calls first: opts_parse (opts may be NULL: no options of
 * its own) with the positional arguments compacted to the front of argv;
 * more than max_pos of them is an error. On a problem prints it
 * ("entrasync CMD: unknown option ...") and returns EXIT_USAGE; else 0. */
int command_args(const char *cmd, int argc, char **argv, const struct opt *opts, int max_pos, int *npos);

/* Takes the global options out of argv (the arguments after the program
 * name), wherever they are before a "--": fills *g and copies the rest, in
 * order, to rest (room for argc entries; rest[0] is the command name).
 * --help/-h and --version before the command become the commands "help"
 * and "version". Fails (-1, err) on an unknown option before the command,
 * a missing or invalid value. */
int global_opts_parse(int argc, char **argv, struct global_opts *g, char **rest, int *nrest, struct err *err);
/* Applies the validated global options: log level and format, Lua dir. */
void global_opts_apply(const struct global_opts *g);

/* Does a command's argv ask for its help (--help or -h before any "--")? */
int command_wants_help(int argc, char **argv);

/* Help texts: the whole program's (brief = the usage line and command list
 * only), and one command's usage followed by the global options. */
void commands_print_help(FILE *f, int brief);
void command_print_usage(const struct command *c, FILE *f);

/* Prints "entrasync: unknown command 'chek' (did you mean 'check'?)" or,
 * with cmd, "entrasync check: unknown option '--confg' (did you mean
 * '--config'?)" to stderr and returns EXIT_USAGE. valid is NULL-terminated. */
int usage_unknown(const char *what, const char *given, const char *const *valid, const char *cmd);
/* Same, for a command name (valid: the commands help lists). */
int usage_unknown_command(const char *given);
/* Prints "entrasync[ CMD]: MESSAGE" to stderr; returns EXIT_USAGE. */
int usage_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Flushes stdout at exit: a reader that went away (EPIPE) is not an error;
 * any other write error is reported and turns exit code 0 into 1. */
int commands_finish_output(int rc);

int cmd_help(int argc, char **argv, const struct global_opts *g);
int cmd_version(int argc, char **argv, const struct global_opts *g);
int cmd_demo(int argc, char **argv, const struct global_opts *g);
int cmd_check(int argc, char **argv, const struct global_opts *g);
int cmd_lua(int argc, char **argv, const struct global_opts *g);
int cmd_pull(int argc, char **argv, const struct global_opts *g);
int cmd_tenants(int argc, char **argv, const struct global_opts *g);
int cmd_report(int argc, char **argv, const struct global_opts *g);
int cmd_sync(int argc, char **argv, const struct global_opts *g);
int cmd_policy(int argc, char **argv, const struct global_opts *g);
int cmd_bill(int argc, char **argv, const struct global_opts *g);
/* `report billing ARGS` = `bill --report ARGS` (for cmd_report to dispatch to). */
int cmd_report_billing(int argc, char **argv, const struct global_opts *g);
int cmd_user(int argc, char **argv, const struct global_opts *g);
int cmd_status(int argc, char **argv, const struct global_opts *g);
int cmd_audit(int argc, char **argv, const struct global_opts *g);
int cmd_conflicts(int argc, char **argv, const struct global_opts *g);
int cmd_link(int argc, char **argv, const struct global_opts *g);
int cmd_unlink(int argc, char **argv, const struct global_opts *g);
int cmd_daemon(int argc, char **argv, const struct global_opts *g);
int cmd_metrics(int argc, char **argv, const struct global_opts *g);
int cmd_prune(int argc, char **argv, const struct global_opts *g);

#endif
