/* snapshot — the config and policy texts the daemon last accepted, handed
 * to each run so that a run never reads a file edited on disk since the
 * last good SIGHUP (see cmd_daemon.c).
 *
 * The daemon reads the config file and every policy file it names into a
 * struct snapshot, writes it into a sealed memfd (snapshot_seal: no write,
 * grow or shrink is possible afterwards) and each run, an exec'd child,
 * inherits that fd, named by the environment variable ENTRASYNC_SNAPSHOT_FD.
 * In the child, snapshot_file_read is a drop-in file_read that answers
 * from the snapshot for the files it holds (by the exact path the daemon
 * read them under: the config as given and the policies as the config
 * resolves them), and from the disk for any other file. The config loader
 * and script_policy_load read through it, so chunk names, file:line errors
 * and relative paths are those of the original files. Only file texts are
 * kept: env() in the config is evaluated by each run, from its environment.
 *
 * Ownership: a struct snapshot owns its paths and texts (snapshot_free).
 * The process-wide snapshot (from ENTRASYNC_SNAPSHOT_FD) is read once, on
 * the first snapshot_file_read / snapshot_has, and kept until exit; the
 * program is single-threaded at that point (config load). */
#ifndef ENTRASYNC_SNAPSHOT_H
#define ENTRASYNC_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include "util/util.h"

#define SNAPSHOT_ENV "ENTRASYNC_SNAPSHOT_FD"

struct snapshot_file {
	char *path;             /* as the readers name it */
	char *text;             /* NUL-terminated */
	size_t len;             /* without the NUL */
};

struct snapshot {
	struct snapshot_file *files;
	size_t n;
};

/* Adds path's text (len bytes, copied; a later add of the same path
 * replaces it). */
void snapshot_add(struct snapshot *s, const char *path, const char *text, size_t len);
/* The entry for path, or NULL. */
const struct snapshot_file *snapshot_get(const struct snapshot *s, const char *path);
void snapshot_free(struct snapshot *s);

/* Serialises s into a new memfd (close-on-exec, the caller clears that for
 * the child that inherits it) and seals it against any change. *fd is the
 * caller's to close. */
int snapshot_seal(const struct snapshot *s, int *fd, struct err *err);
/* Reads a sealed snapshot fd (from offset 0, not moving the shared file
 * offset) into *s (zeroed first; freed on failure). A fd that is not
 * sealed, or text that is not a snapshot, is an error. */
int snapshot_read_fd(int fd, struct snapshot *s, struct err *err);

/* Like file_read, but answers from this process's snapshot (the daemon's,
 * through ENTRASYNC_SNAPSHOT_FD) when it holds path. When the variable is
 * set but the snapshot cannot be read, every call fails with why, so a run
 * never falls back silently to files the daemon did not accept. */
int snapshot_file_read(const char *path, char **out, size_t *len, struct err *err);
/* Does this process's snapshot hold path? (false without a snapshot) */
bool snapshot_has(const char *path);

#endif
