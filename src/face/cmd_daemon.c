/* cmd_daemon — `entrasync daemon --every 1h [--jitter 5m] [--verify-every
 * 24h]`: runs `sync` (or `pull`) on a fixed schedule, each run a child process
 * (fork + exec of /proc/self/exe with the same global options), so a crash
 * or a leak in one run never takes the daemon down.
 *
 * The settings a run uses are the ones the daemon last accepted, never the
 * files as they are on disk at that moment: at start and on each SIGHUP the
 * daemon reads the config file and every policy file it names into a
 * snapshot (snapshot.h), has `entrasync check` validate exactly those texts
 * (a child, given the candidate snapshot), and only then takes it. Each run
 * inherits the accepted snapshot as a sealed memfd (ENTRASYNC_SNAPSHOT_FD)
 * and loads the config and its policies from it, under their original
 * paths (file:line errors, relative paths). So an edit on disk takes effect
 * at the next good SIGHUP, and a broken edit never reaches a run. env() in
 * the config is still evaluated by each run from its environment: no
 * secret from the environment is copied into the snapshot.
 *
 * Signals are blocked and taken synchronously with sigtimedwait, so there
 * are no handlers and no races:
 *   SIGTERM / SIGINT  forwarded to the running child (which finishes the
 *                     write in flight and stops), then the daemon exits 0
 *                     once the child is gone; at once when no run is going.
 *   SIGHUP            a new snapshot of the config and every policy,
 *                     validated by `entrasync check`; on failure the reason
 *                     is logged and recorded (status shows it), and the
 *                     daemon keeps the snapshot it had; on success the next
 *                     run uses the new one.
 *   SIGCHLD           a run ended: its exit code is logged and recorded.
 * Schedule: slots at start + k * every; each run starts at its slot plus a
 * random jitter in [0, --jitter]. A slot that comes while the previous run
 * is still going is skipped (logged and counted), never started twice. When
 * the run lock is held (a manual `sync`), the run waits for it: the two
 * take turns. With --verify-every, a sync run is given --verify when the
 * last run that had it started that long ago or more (or none did: the
 * first run verifies); the time is kept in the store's kv, so a restarted
 * daemon keeps the rhythm. The schedule and each run's outcome go into the store's kv
 * (status reads them); with --metrics FILE the metrics file is rewritten at
 * start and after every run.
 *
 * A Graph certificate or key that cannot be used (expired, unreadable, not
 * the key's) is no reason not to start or to keep a stale config at a
 * reload: it is said when the config is taken, and at the start of each
 * run (which reads the files again: renewed in place, the new one counts),
 * and each run records every tenant failed with it, as a pull or a sync run
 * by hand does, while the Syncro side (tickets, alerts of the failing
 * tenants) goes on. A config wrong in itself is refused as ever. */
#include "face/cmd_daemon.h"
#include "graph/graph.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "face/commands.h"
#include "util/config.h"
#include "util/log.h"
#include "report/metrics.h"
#include "util/snapshot.h"
#include "util/when.h"

extern char **environ;

#define DAEMON_LOCK_POLL_S 1.0     /* re-check a held run lock this often */
#define DAEMON_LOCK_RETRIES 5      /* a child that lost the lock race is retried this often per slot */

/* ---------------------------------------------------------------- locks */

long daemon_lock_holder(const char *lock_path)
{
	int fd = open(lock_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) return 0;
	long pid = 0;
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		flock(fd, LOCK_UN);
	} else if (errno == EWOULDBLOCK) {
		char buf[32];
		ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
		buf[n > 0 ? n : 0] = '\0';
		pid = strtol(buf, NULL, 10);
		if (pid <= 0) pid = -1;
	}
	close(fd);
	return pid;
}

int daemon_lock_acquire(const char *db_path, struct store_lock *lock, struct err *err)
{
	char *base = xasprintf("%s.daemon", db_path);
	struct err inner;
	int rc = store_lock_acquire(base, lock, &inner);
	if (rc != 0) {
		char *path = xasprintf("%s.lock", base);
		long pid = daemon_lock_holder(path);
		if (pid > 0) err_set(err, "another entrasync daemon (pid %ld) runs on %s", pid, db_path);
		else if (pid < 0) err_set(err, "another entrasync daemon runs on %s", db_path);
		else err_set(err, "%s", inner.msg);
		free(path);
	}
	free(base);
	return rc;
}

double daemon_next_slot(double anchor, double every, double now)
{
	if (now < anchor) return anchor;
	double k = floor((now - anchor) / every) + 1;
	return anchor + k * every;
}

/* ---------------------------------------------------------------- state */

struct daemon {
	const struct global_opts *g;
	const char *config_path;
	char *database;            /* from the config accepted last */
	int snap_fd;               /* the accepted snapshot (sealed memfd), -1 before the first */
	const char *command;       /* "sync" | "pull" */
	char **extra;              /* arguments after "--", for the child */
	int nextra;
	double every, jitter;
	const char *every_text, *jitter_text;
	const char *metrics_path;
	double started_at;         /* wall clock */
	double anchor;             /* monotonic time of slot 0 */
	double due;                /* monotonic time the next run starts */
	double due_wall;           /* the same on the wall clock, for status */
	pid_t child;               /* the running run, 0 when none */
	double child_started;      /* monotonic */
	double child_started_wall; /* wall clock */
	int lock_retries;          /* this slot's restarts after losing the lock race */
	bool waiting_lock;         /* the run is due but the run lock is held */
	bool stopping;             /* SIGTERM/SIGINT received */
	int exit_code;             /* the daemon's when it stops: EXIT_OK, or EXIT_USAGE (its first run's) */
	long runs_ended;           /* runs ended since the daemon started */
	long long skipped;
	struct config_graph cred;  /* the accepted config's graph.certificate, private_key and jwt_alg, no
	                            * secret; certificate NULL = a client secret */
	double cert_not_after;     /* its notAfter as the last run started (the files are read again at each
	                            * run: renewed in place, the new one counts); -1 = none or unreadable */
	double verify_every;       /* --verify-every in seconds; 0 = never */
	double last_verify;        /* wall clock start of the last run with --verify; 0 = none */
	bool child_verifies;       /* the running run has --verify */
	bool replaced_said;        /* the program file replaced on disk: logged once */
	sigset_t sigs;             /* the signals we take with sigtimedwait */
};

/* A random jitter in [0, d->jitter]. */
static double jitter_draw(const struct daemon *d)
{
	if (d->jitter <= 0) return 0;
	return d->jitter * ((double)random() / (double)RAND_MAX);
}

/* Sets the next run: the first slot after now (plus jitter). */
static void schedule_next(struct daemon *d, double now_mono)
{
	d->due = daemon_next_slot(d->anchor, d->every, now_mono) + jitter_draw(d);
	d->due_wall = time_now() + (d->due - now_mono);
}

/* Writes key/value pairs (NULL-terminated key, value list; a NULL value
 * deletes) into the store's kv, opening the store for this only. Logged,
 * not fatal, on failure (the daemon must keep running). */
static void record(struct daemon *d, const char *const *kv)
{
	struct store *st = NULL;
	struct err err;
	if (store_open(d->database, &st, &err) != 0) goto fail;
	if (store_begin(st, &err) != 0) goto fail;
	for (size_t i = 0; kv[i]; i += 2)
		if (store_kv_put(st, kv[i], kv[i + 1], &err) != 0) goto fail;
	if (store_commit(st, &err) != 0) goto fail;
	store_close(st);
	return;
fail:
	log_warn("daemon", "cannot record the daemon state in %s: %s", d->database, err.msg);
	store_close(st);
}

static void record_schedule(struct daemon *d, const char *state)
{
	char next[32], skipped[32];
	time_iso8601(d->due_wall, next, sizeof next);
	snprintf(skipped, sizeof skipped, "%lld", d->skipped);
	record(d, (const char *const[]){ DAEMON_KV_NEXT_RUN_AT, next, DAEMON_KV_STATE, state, DAEMON_KV_SKIPPED,
	                                 skipped, NULL });
}

static void write_metrics(struct daemon *d)
{
	if (!d->metrics_path) return;
	struct store *st = NULL;
	struct err err;
	struct metrics_extra extra = { .have_daemon = 1, .next_run_at = d->stopping ? 0 : d->due_wall,
	                               .daemon_started_at = d->started_at, .runs_skipped = d->skipped,
	                               .cert_not_after = d->cert_not_after };
	if (store_open(d->database, &st, &err) != 0 || metrics_write_file(st, d->metrics_path, &extra, &err) != 0)
		log_warn("daemon", "cannot write the metrics file %s: %s", d->metrics_path, err.msg);
	store_close(st);
}

/* ---------------------------------------------------------------- children */

/* argv for a child: entrasync [global options] CMD [--verify] [ARGS]
 * (--verify when d->child_verifies and with_extra). Caller frees the array only. */
static char **child_argv(const struct daemon *d, const char *cmd, bool with_extra)
{
	const struct global_opts *g = d->g;
	char **v = xcalloc((size_t)d->nextra + 16, sizeof *v);
	int n = 0;
	union { const char *c; char *m; } u;
#define ARG(s) (u.c = (s), v[n++] = u.m)
	ARG("entrasync");
	ARG("--config");
	ARG(d->config_path);
	if (g->lua_dir) { ARG("--lua-dir"); ARG(g->lua_dir); }
	/* a reload's check reports only its errors: its warnings (logged by
	 * the runs anyway) would bury the reason a reload failed */
	bool check = strcmp(cmd, "check") == 0;
	if (check || g->log_level) { ARG("--log-level"); ARG(check ? "error" : g->log_level); }
	if (g->log_format && !check) { ARG("--log-format"); ARG(g->log_format); }
	ARG(cmd);
	if (with_extra && d->child_verifies) ARG("--verify");
	if (with_extra)
		for (int i = 0; i < d->nextra; i++) ARG(d->extra[i]);
#undef ARG
	v[n] = NULL;
	return v;
}

/* The daemon's environment for a child: without any SNAPSHOT_ENV, plus
 * SNAPSHOT_ENV=snap_fd. The caller frees the array and *var (the one
 * string allocated). */
static char **child_env(int snap_fd, char **var)
{
	size_t n = 0;
	while (environ[n]) n++;
	char **v = xcalloc(n + 2, sizeof *v);
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!str_starts(environ[i], SNAPSHOT_ENV "=")) v[k++] = environ[i];
	*var = xasprintf("%s=%d", SNAPSHOT_ENV, snap_fd);
	v[k++] = *var;
	v[k] = NULL;
	return v;
}

/* Starts a child running argv with the snapshot snap_fd (inherited: its
 * close-on-exec flag is cleared in the child only). Its signal mask and
 * dispositions are the defaults, it gets its own process group (a
 * terminal's Ctrl-C reaches only the daemon, which forwards it once), stdin
 * is /dev/null, and stdout goes to out_fd when >= 0. Returns its pid or -1. */
static pid_t spawn(char **argv, const sigset_t *blocked, int out_fd, int err_fd, int snap_fd)
{
	char *var = NULL;
	char **envp = child_env(snap_fd, &var);
	pid_t pid = fork();
	if (pid != 0) {
		free(envp);
		free(var);
		return pid;
	}
	/* child: only async-signal-safe calls until exec */
	sigprocmask(SIG_UNBLOCK, blocked, NULL);
	signal(SIGPIPE, SIG_DFL);
	setpgid(0, 0);
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) dup2(null, 0);
	if (out_fd >= 0) dup2(out_fd, 1);
	if (err_fd >= 0) dup2(err_fd, 2);
	if (fcntl(snap_fd, F_SETFD, 0) != 0) _exit(127);
	execve("/proc/self/exe", argv, envp);
	_exit(127);
}

/* The lines of text (a command's complaint) as one line for the log and
 * status: its lines joined by "; ", blank ones and the line ends dropped.
 * A new string. */
static char *one_line(const char *text)
{
	struct buf b = { 0 };
	for (const char *p = text; *p;) {
		size_t len = strcspn(p, "\n");
		size_t end = len;
		while (end && (p[end - 1] == '\r' || p[end - 1] == ' ')) end--;
		if (end) {
			if (b.len) buf_adds(&b, "; ");
			buf_add(&b, p, end);
		}
		p += len + (p[len] == '\n');
	}
	return buf_steal(&b);
}

/* Runs `entrasync check` on the snapshot snap_fd and waits for it. Returns
 * 0 when its config and every policy are valid; else -1 with the first
 * lines of its complaint in err (they are logged too). */
static int validate(struct daemon *d, int snap_fd, struct err *err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) != 0) return err_set(err, "pipe: %s", strerror(errno));
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	char **argv = child_argv(d, "check", false);
	pid_t pid = spawn(argv, &d->sigs, null, pipefd[1], snap_fd);
	free(argv);
	close(pipefd[1]);
	if (null >= 0) close(null);
	struct buf out = { 0 };
	char chunk[512];
	ssize_t n;
	while ((n = read(pipefd[0], chunk, sizeof chunk)) != 0) {
		if (n < 0) {
			if (errno == EINTR) continue;
			break;
		}
		if (out.len < 8192) buf_add(&out, chunk, (size_t)n);
	}
	close(pipefd[0]);
	int status = 0, rc = -1;
	if (pid < 0) {
		err_set(err, "cannot start 'entrasync check': %s", strerror(errno));
	} else if (waitpid(pid, &status, 0) != pid) {
		err_set(err, "waiting for 'entrasync check': %s", strerror(errno));
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = 0;
	} else {
		char *said = one_line(out.data ? out.data : "");
		if (*said) {
			err_set(err, "%s", said);
		} else {
			err_set(err, "'entrasync check' failed (%s %d)", WIFEXITED(status) ? "exit" : "signal",
			        WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		}
		free(said);
	}
	buf_free(&out);
	return rc;
}

/* Reads path into snap; a policy file that cannot be read is reported at
 * the config line naming it. */
static int snapshot_file(struct snapshot *snap, const struct config *cfg, const char *path, int line,
                         struct err *err)
{
	char *text = NULL;
	size_t len = 0;
	struct err inner;
	if (snapshot_get(snap, path)) return 0;
	if (file_read(path, &text, &len, &inner) != 0) {
		if (line) return err_set(err, "%s:%d: policy file cannot be read: %s", cfg->path, line, inner.msg);
		return err_set(err, "%s: policy file cannot be read: %s", cfg->path, inner.msg);
	}
	snapshot_add(snap, path, text, len);
	free(text);
	return 0;
}

/* Keeps of g what the check of the certificate at each run needs (never
 * the client secret), in place of what d had. */
static void cred_keep(struct daemon *d, const struct config_graph *g)
{
	free(d->cred.certificate);
	free(d->cred.private_key);
	free(d->cred.jwt_alg);
	memset(&d->cred, 0, sizeof d->cred);
	if (!g || !g->certificate || !*g->certificate) return;
	d->cred.certificate = xstrdup(g->certificate);
	d->cred.private_key = g->private_key ? xstrdup(g->private_key) : NULL;
	d->cred.jwt_alg = g->jwt_alg ? xstrdup(g->jwt_alg) : NULL;
}

/* The Graph certificate the config just taken names cannot be used (why):
 * said once, as the daemon takes the config anyway. */
static void say_cred_unusable(const char *why)
{
	log_error("daemon", "the Graph certificate cannot be used: %s. The daemon runs on: each run records every "
	          "tenant failed with this (status, the findings and the alerts show it) until the files are mended",
	          why);
}

/* A new snapshot: the config file's text, parsed here for the policies it
 * names (and the database), then every policy file's text; sealed into a
 * memfd that `entrasync check` validates. On success *fd is the snapshot
 * (the caller's), *database the config's database and *nfiles its file
 * count, and unusable->msg why the Graph certificate or key it names cannot
 * be used ("" when they can: a config is not refused for that); on failure
 * err says why and nothing is returned. */
static int snapshot_take(struct daemon *d, int *fd, char **database, size_t *nfiles, struct err *unusable,
                         struct err *err)
{
	struct snapshot snap = { 0 };
	struct config cfg;
	char *text = NULL;
	size_t len = 0;
	int rc = -1;
	*fd = -1;
	unusable->msg[0] = '\0';
	memset(&cfg, 0, sizeof cfg);
	if (file_read(d->config_path, &text, &len, err) != 0) {
		err_prefix(err, "cannot read config");
		goto out;
	}
	if (config_load_text(d->config_path, text, len, CONFIG_SKIP_POLICY_FILES, &cfg, err) != 0) goto out;
	double not_after = -1;
	int cred = graph_credentials_check(&cfg.graph, 0, &not_after, unusable);
	if (cred == GRAPH_CRED_UNUSABLE) {
		log_redact_err(unusable);
	} else if (cred != 0) {   /* the config wrong in itself (an unknown graph.jwt_alg) */
		err_set(err, "%s", unusable->msg);
		unusable->msg[0] = '\0';
		goto out;
	}
	snapshot_add(&snap, d->config_path, text, len);
	if (cfg.policy && snapshot_file(&snap, &cfg, cfg.policy, cfg.policy_line, err) != 0) goto out;
	for (size_t i = 0; i < cfg.ntenants; i++)
		if (snapshot_file(&snap, &cfg, cfg.tenants[i].policy, cfg.tenants[i].policy_line, err) != 0) goto out;
	if (snapshot_seal(&snap, fd, err) != 0) goto out;
	if (validate(d, *fd, err) != 0) goto out;
	*database = xstrdup(cfg.database);
	*nfiles = snap.n;
	cred_keep(d, &cfg.graph);
	d->cert_not_after = not_after;
	rc = 0;
out:
	if (rc != 0) {
		if (*fd >= 0) close(*fd);
		*fd = -1;
		log_redact_err(err);
	}
	snapshot_free(&snap);
	config_free(&cfg);
	free(text);
	return rc;
}

/* SIGHUP: a new snapshot, taken when `entrasync check` accepts it. Either
 * way the outcome is recorded in the store before it is logged, so that
 * whoever reads the log line and then runs `status` sees the same. */
static void reload(struct daemon *d)
{
	struct err err, unusable;
	char *database = NULL;
	int fd = -1;
	size_t nfiles = 0;
	log_info("daemon", "SIGHUP: reading and checking the config and the policies again");
	if (snapshot_take(d, &fd, &database, &nfiles, &unusable, &err) != 0) {
		/* recorded first, as "reload ok" below: once the log says it,
		 * status says it too */
		record(d, (const char *const[]){ DAEMON_KV_CONFIG_ERROR, err.msg, NULL });
		log_error("daemon", "reload failed, keeping the previous settings: %s", err.msg);
		return;
	}
	if (strcmp(database, d->database) != 0) {
		/* the runs read the snapshot's config: taking it would move them
		 * to another database than the one this daemon locks and reports
		 * in (a second daemon could then start on it) */
		snprintf(err.msg, sizeof err.msg, "the config now names the database %s, and this daemon runs on %s: "
		         "a new database needs a restart of the daemon", database, d->database);
		free(database);
		close(fd);
		record(d, (const char *const[]){ DAEMON_KV_CONFIG_ERROR, err.msg, NULL });
		log_error("daemon", "reload refused, keeping the previous settings: %s", err.msg);
		return;
	}
	close(d->snap_fd);
	d->snap_fd = fd;
	free(database);
	record(d, (const char *const[]){ DAEMON_KV_CONFIG_ERROR, NULL, NULL });
	log_info("daemon", "reload ok: the config and every policy are valid (%zu files); the next run uses them",
	         nfiles);
	if (unusable.msg[0]) say_cred_unusable(unusable.msg);
}

/* The program file replaced since the daemon started (an upgrade: make
 * install, a package, a copy moved into place): the runs are execs of
 * /proc/self/exe, the file the daemon was started from, so they keep the
 * old version until a restart. Said once, as a warning. */
static void say_if_replaced(struct daemon *d)
{
	char path[4096];
	ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
	if (d->replaced_said || n <= 0) return;
	path[n] = '\0';
	if (!str_ends(path, " (deleted)")) return;
	d->replaced_said = true;
	path[n - 10] = '\0';
	log_warn("daemon", "%s was replaced on disk since the daemon started (an upgrade?): its runs keep using the "
	         "version it started with (%s) until the daemon is restarted (systemctl restart entrasync-daemon)",
	         path, ENTRASYNC_VERSION);
}

static void start_run(struct daemon *d, double now)
{
	say_if_replaced(d);
	double wall = time_now();
	/* the run reads the certificate and key files as they are now: so do
	 * the warning and the metrics' expiry gauge (the run warns of a key
	 * other users can read itself) */
	struct err unusable;
	if (d->cred.certificate &&
	    graph_credentials_check(&d->cred, GRAPH_CRED_QUIET, &d->cert_not_after, &unusable) != 0) {
		log_redact_err(&unusable);
		log_error("daemon", "the Graph certificate cannot be used, so every tenant of this run fails: %s",
		          unusable.msg);
	} else if (d->cert_not_after > 0 && d->cert_not_after - wall < GRAPH_CERT_WARN_DAYS * 86400.0) {
		char day[16];
		time_day(d->cert_not_after, day, sizeof day);
		log_warn("daemon", "the Graph certificate expires on %s: upload its successor to the app registration and "
		         "point the config at it", day);
	}
	d->child_verifies = d->verify_every > 0 && (d->last_verify <= 0 || wall - d->last_verify >= d->verify_every);
	char **argv = child_argv(d, d->command, true);
	/* with --log-format json every line the daemon's output gets is a JSON
	 * event (a journal shipped to a log store parses them): the run's text
	 * report is not written there; its tenants' outcomes are logged, its
	 * writes are in the audit trail (entrasync audit) */
	int out_fd = d->g->log_format && !strcmp(d->g->log_format, "json") ? open("/dev/null", O_WRONLY | O_CLOEXEC) : -1;
	pid_t pid = spawn(argv, &d->sigs, out_fd, -1, d->snap_fd);
	if (out_fd >= 0) close(out_fd);
	free(argv);
	if (pid < 0) {
		log_error("daemon", "cannot start a run: %s", strerror(errno));
		schedule_next(d, now);
		record_schedule(d, "waiting");
		return;
	}
	d->child = pid;
	d->child_started = now;
	d->child_started_wall = wall;
	char at[32];
	time_iso8601(wall, at, sizeof at);
	struct buf extra = { 0 };
	for (int i = 0; i < d->nextra; i++) buf_printf(&extra, " %s", d->extra[i]);
	log_info("daemon", "run started: entrasync %s%s%s (pid %ld)", d->command, d->child_verifies ? " --verify" : "",
	         extra.len ? extra.data : "", (long)pid);
	buf_free(&extra);
	schedule_next(d, now);
	char next[32];
	time_iso8601(d->due_wall, next, sizeof next);
	record(d, (const char *const[]){ DAEMON_KV_STATE, "running", DAEMON_KV_LAST_START, at, DAEMON_KV_NEXT_RUN_AT,
	                                 next, NULL });
}

static const char *exit_meaning(int code)
{
	switch (code) {
	case EXIT_OK: return "all ok";
	case EXIT_PARTIAL: return "some tenant failed or was held";
	case EXIT_USAGE: return "usage or config error";
	case EXIT_NOSTART: return "could not start (lock held, store unreadable)";
	case 127: return "could not execute the program";
	default: return "unexpected exit code";
	}
}

/* Did the run that just ended finish its verify? Its SYNC_KV_VERIFIED_AT
 * is at or after its start (the ISO text keeps whole seconds) when it did;
 * an outage or a stop left it unwritten. Says so in the log when not. */
static bool child_verified(struct daemon *d)
{
	struct store *st = NULL;
	char *at = NULL;
	struct err err;
	bool done = false;
	if (store_open(d->database, &st, &err) != 0 || store_kv_get(st, SYNC_KV_VERIFIED_AT, &at, &err) < 0) {
		log_warn("daemon", "cannot read whether the run verified (%s): the next run verifies again", err.msg);
		goto out;
	}
	done = at && when_parse_iso(at) >= floor(d->child_started_wall);
	if (!done)
		log_warn("daemon", "the run's verify did not finish (an outage or a stop cut it short, see the run's "
		         "messages): the next run verifies again");
out:
	free(at);
	store_close(st);
	return done;
}

/* The run ended with wait status `status`. */
static void run_ended(struct daemon *d, int status, double now)
{
	char exit_text[32], at[32];
	double took = now - d->child_started;
	d->child = 0;
	time_iso8601(time_now(), at, sizeof at);
	if (WIFEXITED(status)) {
		int code = WEXITSTATUS(status);
		snprintf(exit_text, sizeof exit_text, "%d", code);
		if (code == EXIT_NOSTART && !d->stopping && d->lock_retries < DAEMON_LOCK_RETRIES) {
			char *lock = xasprintf("%s.lock", d->database);
			long holder = daemon_lock_holder(lock);
			free(lock);
			if (holder != 0) {
				/* Lost the race for the run lock to a manual run: take our turn after it. */
				d->lock_retries++;
				log_info("daemon", "the run lock was taken by another run (pid %ld); running after it", holder);
				d->due = now;
				d->waiting_lock = false;
				return;
			}
		}
		if (code == 0) log_info("daemon", "run finished in %.1f s: exit 0 (%s)", took, exit_meaning(code));
		else log_warn("daemon", "run finished in %.1f s: exit %d (%s)", took, code, exit_meaning(code));
		if (code == EXIT_USAGE && d->runs_ended == 0 && !d->stopping) {
			/* the config passed check: the first run's usage error is the
			 * options after '--', and every run would repeat it */
			log_error("daemon", "the first run exited %d (usage error): the options it was given after '--' are "
			          "wrong (its message is above); stopping", code);
			d->stopping = true;
			d->exit_code = EXIT_USAGE;
		}
		if (d->child_verifies && (code == EXIT_OK || code == EXIT_PARTIAL) && !d->stopping &&
		    child_verified(d)) {
			/* the run verified (whatever its tenants' outcome): the next is due verify_every later */
			char verified[32];
			d->last_verify = d->child_started_wall;
			time_iso8601(d->last_verify, verified, sizeof verified);
			record(d, (const char *const[]){ DAEMON_KV_LAST_VERIFY, verified, NULL });
		}
	} else {
		snprintf(exit_text, sizeof exit_text, "signal %d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		log_error("daemon", "run ended by %s after %.1f s", exit_text, took);
	}
	d->lock_retries = 0;
	d->runs_ended++;
	char next[32];
	time_iso8601(d->due_wall, next, sizeof next);
	record(d, (const char *const[]){ DAEMON_KV_STATE, d->stopping ? "stopped" : "waiting", DAEMON_KV_LAST_END, at,
	                                 DAEMON_KV_LAST_EXIT, exit_text, DAEMON_KV_NEXT_RUN_AT, next, NULL });
	write_metrics(d);
}

/* The run is due now: start it, wait for the run lock, or skip the slot
 * when the previous run is still going. */
static void run_due(struct daemon *d, double now)
{
	if (d->child) {
		d->skipped++;
		char due[32];
		time_iso8601(d->due_wall, due, sizeof due);
		log_warn("daemon", "the run started %.0f s ago is still going: the run due at %s is skipped",
		         now - d->child_started, due);
		schedule_next(d, now);
		record_schedule(d, "running");
		return;
	}
	char *lock = xasprintf("%s.lock", d->database);
	long holder = daemon_lock_holder(lock);
	free(lock);
	if (holder != 0) {
		if (!d->waiting_lock)
			log_info("daemon", "another run (pid %ld) holds the run lock; this run starts when it is done", holder);
		d->waiting_lock = true;
		return;
	}
	d->waiting_lock = false;
	start_run(d, now);
}

/* ---------------------------------------------------------------- the loop */

static int loop(struct daemon *d)
{
	for (;;) {
		double now = time_mono();
		if (d->child) {
			int status;
			pid_t r = waitpid(d->child, &status, WNOHANG);
			if (r == d->child) {
				run_ended(d, status, now);
				continue;
			}
		}
		if (d->stopping && !d->child) return d->exit_code;
		if (!d->stopping && now >= d->due && !(d->waiting_lock && d->child)) {
			run_due(d, now);
			if (!d->waiting_lock) continue;
		}
		double wait = d->stopping ? 1.0 : d->due - now;
		if (d->waiting_lock) wait = DAEMON_LOCK_POLL_S;
		if (wait < 0.01) wait = 0.01;
		if (wait > 60) wait = 60;   /* re-check the clock now and then (suspend, clock jumps) */
		struct timespec ts = { (time_t)wait, (long)((wait - floor(wait)) * 1e9) };
		int sig = sigtimedwait(&d->sigs, NULL, &ts);
		if (sig < 0) continue;       /* timeout or EINTR */
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("daemon", "%s: stopping%s", sig == SIGTERM ? "SIGTERM" : "SIGINT",
			         d->child ? "; the run in progress finishes its write in flight first" : "");
			d->stopping = true;
			if (d->child) kill(d->child, sig);
		} else if (sig == SIGHUP) {
			reload(d);
		}
		/* SIGCHLD: reaped at the top */
	}
}

/* Parses option name's duration text into *secs: from 1 s (a shorter
 * interval only logs skipped runs) to 366 days (past that the schedule's
 * times overflow). 0, or -1 with the usage error printed. */
#define DAEMON_DURATION_MAX_DAYS 366

static int duration_opt(const char *name, const char *text, double *secs)
{
	struct err err;
	if (when_parse_duration(text, secs, &err) != 0) return usage_fail("daemon", "%s: %s", name, err.msg), -1;
	if (*secs < 1 || *secs > DAEMON_DURATION_MAX_DAYS * 86400.0)
		return usage_fail("daemon", "%s %s: give 1s to %dd", name, text, DAEMON_DURATION_MAX_DAYS), -1;
	return 0;
}

int cmd_daemon(int argc, char **argv, const struct global_opts *g)
{
	const char *every = NULL, *jitter = NULL, *metrics = NULL, *command = NULL, *verify_every = NULL;
	const struct opt opts[] = {
		{ "--every", "DURATION", &every, NULL },
		{ "--jitter", "DURATION", &jitter, NULL },
		{ "--metrics", "FILE", &metrics, NULL },
		{ "--command", "COMMAND", &command, NULL },
		{ "--verify-every", "DURATION", &verify_every, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	struct daemon d;
	struct err err;
	struct store_lock lock = { 0 };
	int npos, rc = EXIT_USAGE;
	memset(&d, 0, sizeof d);
	d.snap_fd = -1;
	d.cert_not_after = -1;
	/* Arguments after "--" go to each run untouched. */
	int cut = argc;
	for (int i = 0; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			cut = i;
			break;
		}
	if (command_args("daemon", cut, argv, opts, 0, &npos) != 0) return EXIT_USAGE;
	d.extra = argv + (cut < argc ? cut + 1 : argc);
	d.nextra = cut < argc ? argc - cut - 1 : 0;
	if (!every) return usage_fail("daemon", "--every is required (e.g. --every 1h)");
	if (duration_opt("--every", every, &d.every) != 0) return EXIT_USAGE;
	if (jitter && duration_opt("--jitter", jitter, &d.jitter) != 0) return EXIT_USAGE;
	if (d.jitter >= d.every) return usage_fail("daemon", "--jitter must be shorter than --every");
	command = command ? command : "sync";
	if (strcmp(command, "sync") != 0 && strcmp(command, "pull") != 0) {
		static const char *const cmds[] = { "sync", "pull", NULL };
		return usage_unknown("command for --command", command, cmds, "daemon");
	}
	if (!command_find(command))
		return usage_fail("daemon", "this build has no '%s' command to run", command);
	if (verify_every) {
		if (strcmp(command, "sync") != 0)
			return usage_fail("daemon", "--verify-every goes with --command sync (a pull writes nothing to verify)");
		if (duration_opt("--verify-every", verify_every, &d.verify_every) != 0) return EXIT_USAGE;
	}
	d.g = g;
	d.command = command;
	d.every_text = every;
	d.jitter_text = jitter ? jitter : "0s";
	d.metrics_path = metrics;
	d.config_path = config_locate(g->config_path);

	/* Signals first, so none is lost between here and the loop. */
	sigemptyset(&d.sigs);
	sigaddset(&d.sigs, SIGTERM);
	sigaddset(&d.sigs, SIGINT);
	sigaddset(&d.sigs, SIGHUP);
	sigaddset(&d.sigs, SIGCHLD);
	sigprocmask(SIG_BLOCK, &d.sigs, NULL);

	size_t nfiles = 0;
	struct err unusable;
	if (snapshot_take(&d, &d.snap_fd, &d.database, &nfiles, &unusable, &err) != 0) {
		fprintf(stderr, "entrasync daemon: the config is not valid, not starting: %s\n", err.msg);
		goto out;
	}
	rc = EXIT_NOSTART;
	if (daemon_lock_acquire(d.database, &lock, &err) != 0) {
		fprintf(stderr, "entrasync daemon: %s\n", err.msg);
		goto out;
	}
	struct store *st = NULL;
	if (store_open(d.database, &st, &err) != 0) {
		fprintf(stderr, "entrasync daemon: %s\n", err.msg);
		goto out;
	}
	char *verified = NULL;
	if (d.verify_every > 0 && store_kv_get(st, DAEMON_KV_LAST_VERIFY, &verified, &err) == 0)
		d.last_verify = when_parse_iso(verified);
	free(verified);
	store_close(st);
	srandom((unsigned)(time_now() * 1000) ^ (unsigned)getpid());
	d.started_at = time_now();
	d.anchor = time_mono();
	d.due = d.anchor + jitter_draw(&d);
	d.due_wall = d.started_at + (d.due - d.anchor);
	char started[32], pid[32], next[32];
	time_iso8601(d.started_at, started, sizeof started);
	time_iso8601(d.due_wall, next, sizeof next);
	snprintf(pid, sizeof pid, "%ld", (long)getpid());
	record(&d, (const char *const[]){ DAEMON_KV_PID, pid, DAEMON_KV_STARTED_AT, started, DAEMON_KV_EVERY, every,
	                                  DAEMON_KV_JITTER, d.jitter_text, DAEMON_KV_COMMAND, command,
	                                  DAEMON_KV_NEXT_RUN_AT, next, DAEMON_KV_STATE, "waiting", DAEMON_KV_SKIPPED, "0",
	                                  DAEMON_KV_CONFIG_ERROR, NULL, DAEMON_KV_VERIFY_EVERY, verify_every, NULL });
	log_info("daemon", "started (pid %s): entrasync %s every %s%s%s, database %s; the config and its policies "
	         "as read now (%zu files) until a SIGHUP", pid, command, every, jitter ? " + up to " : "",
	         jitter ? jitter : "", d.database, nfiles);
	if (unusable.msg[0]) say_cred_unusable(unusable.msg);
	write_metrics(&d);
	rc = loop(&d);
	record(&d, (const char *const[]){ DAEMON_KV_STATE, "stopped", DAEMON_KV_NEXT_RUN_AT, NULL, NULL });
	write_metrics(&d);
	log_info("daemon", "stopped");
out:
	store_lock_release(&lock);
	free(d.database);
	cred_keep(&d, NULL);
	if (d.snap_fd >= 0) close(d.snap_fd);
	sigprocmask(SIG_UNBLOCK, &d.sigs, NULL);
	return rc;
}
