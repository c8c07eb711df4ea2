/* cmd_daemon — what `entrasync daemon` shares with the commands that
 * report on it (`status`, the metrics file): the daemon lock, the
 * key/value names under which it records its schedule in the store, and
 * the schedule arithmetic (exposed for unit tests).
 *
 * One daemon per database: it holds an flock()ed "<db>.daemon.lock" for its
 * whole life (separate from the run lock "<db>.lock" that each sync takes,
 * so a manual `sync` and the daemon's runs take turns on the run lock while
 * the daemon itself stays up). */
#ifndef ENTRASYNC_CMD_DAEMON_H
#define ENTRASYNC_CMD_DAEMON_H

#include "store/store.h"
#include "util/util.h"

/* Keys in the store's kv table (values are text). */
#define DAEMON_KV_PID          "daemon.pid"
#define DAEMON_KV_STARTED_AT   "daemon.started_at"     /* ISO-8601 UTC */
#define DAEMON_KV_EVERY        "daemon.every"          /* "1h" */
#define DAEMON_KV_JITTER       "daemon.jitter"         /* "5m" or "0s" */
#define DAEMON_KV_COMMAND      "daemon.command"        /* "sync" */
#define DAEMON_KV_NEXT_RUN_AT  "daemon.next_run_at"    /* ISO-8601 UTC */
#define DAEMON_KV_STATE        "daemon.state"          /* "waiting" | "running" | "stopped" */
#define DAEMON_KV_LAST_START   "daemon.last_run_started_at"
#define DAEMON_KV_LAST_END     "daemon.last_run_finished_at"
#define DAEMON_KV_LAST_EXIT    "daemon.last_run_exit"  /* "0".."3", or "signal N" */
#define DAEMON_KV_SKIPPED      "daemon.runs_skipped"
#define DAEMON_KV_LAST_VERIFY  "daemon.last_verify_at" /* ISO-8601 UTC: the start of the last run with --verify */
#define DAEMON_KV_VERIFY_EVERY "daemon.verify_every"   /* "1d"; absent without --verify-every */
#define DAEMON_KV_CONFIG_ERROR "daemon.config_error"   /* the last failed reload's reason; absent when fine */
#define DAEMON_KV_PREFIX       "daemon."

/* Takes the daemon lock of the database at db_path ("<db_path>.daemon.lock").
 * Fails when another daemon holds it: "another entrasync daemon (pid N)
 * runs on DB". Release with store_lock_release. */
int daemon_lock_acquire(const char *db_path, struct store_lock *lock, struct err *err);

/* Is the flock()ed file lock_path held by a process? Returns its pid (as
 * written in the file; -1 when held but the pid is unreadable), or 0 when
 * the file is missing or not locked. Never creates the file. */
long daemon_lock_holder(const char *lock_path);

/* The first scheduled slot strictly after now: anchor + k * every (k >= 1
 * integer), so a late or skipped run never shifts the schedule. */
double daemon_next_slot(double anchor, double every, double now);

#endif
