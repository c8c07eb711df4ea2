/* graph_pull_workers — `entrasync pull` over worker processes, one per
 * core. The tenants are dealt out by size (the users each had at the last
 * pull) to forked workers; each worker has its own HTTP engine, Graph
 * client and store connection and runs graph_pull on its share; its results
 * come back over a pipe. One worker is graph_pull in this process.
 *
 * Why processes: a pull's CPU (HTTP, JSON, SQLite) is per tenant and
 * independent. On one core the hundred-tenant incremental pull is bound by
 * that CPU, not by the network's round trips; workers spread it over the
 * cores with nothing shared to lock: SQLite orders the writes of the
 * connections through its WAL write lock (each is a short transaction),
 * and a worker that crashes takes only its own tenants with it. */
#include "graph/graph.h"
#include "graph/graph_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http/http.h"
#include "util/log.h"
#include "util/shutdown.h"
#include "store/store.h"

/* What a worker sends back for each of its tenants: the index in specs and
 * the result, as bytes (the same binary on both ends of the pipe), with the
 * worker's HTTP counters as they stand (the parent keeps the last). */
struct worker_record {
	size_t index;
	struct graph_pull_result result;
	struct graph_pull_http http;
};

struct worker {
	pid_t pid;
	int fd;                   /* read end of its pipe; -1 once at EOF */
	size_t *tenants;          /* indexes into specs */
	size_t n;
	struct buf in;            /* bytes read, not yet a whole record */
	struct graph_pull_http http; /* its counters, from its last record */
};

int graph_pull_workers_auto(size_t n, long cpus)
{
	long w = cpus > 0 ? cpus : 1;
	long by_tenants = (long)(n / GRAPH_PULL_TENANTS_PER_WORKER);
	if (w > by_tenants) w = by_tenants;
	if (w > GRAPH_PULL_WORKERS_MAX) w = GRAPH_PULL_WORKERS_MAX;
	return w < 1 ? 1 : (int)w;
}

/* A tenant's weight and its place in the config, for sorting. */
struct weighed {
	long long weight;
	size_t index;
};

/* Heaviest first; equal weights in config order. */
static int weighed_cmp(const void *a, const void *b)
{
	const struct weighed *x = a, *y = b;
	if (x->weight != y->weight) return x->weight > y->weight ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

void graph_pull_deal(const long long *weight, size_t n, int w, int *worker_of)
{
	struct weighed *order = xcalloc(n + 1, sizeof *order);
	long long *load = xcalloc((size_t)w, sizeof *load);
	for (size_t i = 0; i < n; i++) order[i] = (struct weighed){ weight[i], i };
	qsort(order, n, sizeof *order, weighed_cmp);   /* thousands of tenants: not an insertion sort */
	for (size_t i = 0; i < n; i++) {
		int best = 0;
		for (int k = 1; k < w; k++)
			if (load[k] < load[best]) best = k;
		worker_of[order[i].index] = best;
		load[best] += order[i].weight;
	}
	free(load);
	free(order);
}

/* The worker's whole life, in the child: pulls specs[tenants[0..n)] and
 * writes a record per tenant to fd. Never returns. */
static void worker_main(const struct graph_pull_workers_opts *o, const struct graph_pull_spec *specs,
                        const struct worker *w, int max_in_flight, pid_t parent, int fd)
{
	/* the pull dies with the parent (killed, crashed): no orphan goes on
	 * writing the store behind a new run */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent) _exit(1);
	shutdown_install_worker();
	struct graph_pull_spec *mine = xcalloc(w->n + 1, sizeof *mine);
	struct graph_pull_result *res = xcalloc(w->n + 1, sizeof *res);
	struct store *st = NULL;
	struct http_engine *engine = NULL;
	struct graph_client *gc = NULL;
	struct err err = { 0 };
	int rc = -1;
	for (size_t i = 0; i < w->n; i++) mine[i] = specs[w->tenants[i]];
	/* the parent copies the WAL into the database meanwhile (workers_read):
	 * a worker's event loop never stops for a checkpoint and its fsyncs */
	if (store_open(o->database, &st, &err) != 0 || store_autocheckpoint(st, false, &err) != 0) goto report;
	engine = http_engine_new(NULL, &err);
	if (!engine) goto report;
	if (graph_client_new(&(struct graph_client_opts){ .cfg = o->cfg, .engine = engine, .max_in_flight = max_in_flight },
	                     &gc, &err) != 0)
		goto report;
	if (graph_pull(gc, st, mine, w->n, o->pull, res, &err) != 0) goto report;
	rc = 0;
report:;
	struct graph_pull_http http = { 0 };
	if (gc) {
		http_service_counters(graph_client_service(gc), &http.graph);
		http_service_counters(graph_client_login_service(gc), &http.login);
	}
	for (size_t i = 0; i < w->n; i++) {
		struct worker_record rec = { .index = w->tenants[i], .result = res[i], .http = http };
		if (rc != 0) {
			rec.result.ok = false;
			snprintf(rec.result.error, sizeof rec.result.error, "tenant %.100s: %.900s", mine[i].tenant_id,
			         err.msg);
		}
		if (fd_write_all(fd, &rec, sizeof rec) != 0) break;
	}
	graph_client_free(gc);
	http_engine_free(engine);
	store_close(st);
	free(res);
	free(mine);
	close(fd);
	_exit(rc == 0 ? 0 : 1);
}

/* Takes the whole records out of w->in into results; marks them done. */
static void worker_records(struct worker *w, size_t n, struct graph_pull_result *results, bool *done)
{
	size_t used = 0;
	while (w->in.len - used >= sizeof(struct worker_record)) {
		struct worker_record rec;
		memcpy(&rec, w->in.data + used, sizeof rec);
		used += sizeof rec;
		if (rec.index >= n) continue;
		rec.result.error[sizeof rec.result.error - 1] = '\0';
		results[rec.index] = rec.result;
		done[rec.index] = true;
		w->http = rec.http;
	}
	memmove(w->in.data, w->in.data + used, w->in.len - used);
	w->in.len -= used;
}

#define CHECKPOINT_FIRST_MS 250
#define CHECKPOINT_EVERY_MS 20

/* Reads every worker's pipe until each is at EOF. Meanwhile, every 20 ms
 * once the pull has run 250 ms, copies what the workers committed from the
 * WAL into the database (they do not checkpoint: the copy and its fsyncs
 * would stop their event loops for 10-20 ms each time, twice in an hourly
 * pull of 100 tenants). A pull done sooner (an hourly one: a few hundred
 * pages of WAL) leaves the copy off the workers' CPUs while they pull: it
 * is made as soon as a worker has finished (its CPU is free, the others'
 * last answers are still coming), so that the store's close at the end of
 * the run has only what came after to copy. */
static void workers_read(struct store *st, struct worker *ws, int nw, size_t n, struct graph_pull_result *results,
                         bool *done)
{
	struct pollfd *pfd = xcalloc((size_t)nw, sizeof *pfd);
	int open_fds = nw;
	double next_checkpoint = time_mono() + CHECKPOINT_FIRST_MS / 1000.0;
	bool stop_passed = false;
	while (open_fds > 0) {
		/* a stop asked of this process goes to its workers (they inherited
		 * its handler): each ends its pull and reports, as graph_pull does */
		if (shutdown_requested() && !stop_passed) {
			for (int k = 0; k < nw; k++)
				if (ws[k].fd >= 0) kill(ws[k].pid, shutdown_signal());
			stop_passed = true;
		}
		for (int k = 0; k < nw; k++) pfd[k] = (struct pollfd){ .fd = ws[k].fd, .events = POLLIN };
		int wait_ms = (int)((next_checkpoint - time_mono()) * 1000) + 1;
		int ready = poll(pfd, (nfds_t)nw, wait_ms > 0 ? wait_ms : 0);
		if (time_mono() >= next_checkpoint) {
			struct err err;
			if (store_checkpoint_passive(st, NULL, &err) != 0) log_warn("graph.pull", "%s", err.msg);
			next_checkpoint = time_mono() + CHECKPOINT_EVERY_MS / 1000.0;
		}
		if (ready < 0) {
			if (errno == EINTR) continue;
			break;
		}
		for (int k = 0; k < nw; k++) {
			if (ws[k].fd < 0 || !(pfd[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
			char chunk[8192];
			ssize_t r = read(ws[k].fd, chunk, sizeof chunk);
			if (r < 0 && errno == EINTR) continue;
			if (r > 0) {
				buf_add(&ws[k].in, chunk, (size_t)r);
				worker_records(&ws[k], n, results, done);
				continue;
			}
			close(ws[k].fd);
			ws[k].fd = -1;
			if (--open_fds > 0) {
				struct err err;
				if (store_checkpoint_passive(st, NULL, &err) != 0) log_warn("graph.pull", "%s", err.msg);
			}
		}
	}
	free(pfd);
}

/* Logs (debug) which tenants a worker has: the first few by name. */
static void worker_describe(const struct worker *w, int k, const struct graph_pull_spec *specs)
{
	struct buf names = { 0 };
	for (size_t i = 0; i < w->n && i < 8; i++) {
		const struct graph_pull_spec *s = &specs[w->tenants[i]];
		buf_printf(&names, "%s%s", i ? ", " : "", s->name ? s->name : s->tenant_id);
	}
	if (w->n > 8) buf_printf(&names, " and %zu more", w->n - 8);
	log_debug("graph.pull", "pull worker %d (pid %ld): %zu tenants: %s", k + 1, (long)w->pid, w->n,
	          names.data ? names.data : "");
	buf_free(&names);
}

/* How a worker ended, for the message of the tenants it did not report. */
static void worker_end_text(int status, char *out, size_t cap)
{
	if (WIFSIGNALED(status)) snprintf(out, cap, "was killed by signal %d", WTERMSIG(status));
	else if (WIFEXITED(status)) snprintf(out, cap, "exited with status %d", WEXITSTATUS(status));
	else snprintf(out, cap, "ended");
}

int graph_pull_workers(const struct graph_pull_workers_opts *o, const struct graph_pull_spec *specs, size_t n,
                       struct graph_pull_result *results, struct err *err)
{
	int nw = o->workers > 0 ? o->workers : graph_pull_workers_auto(n, sysconf(_SC_NPROCESSORS_ONLN));
	if ((size_t)nw > n) nw = n > 0 ? (int)n : 1;
	if (nw > GRAPH_PULL_WORKERS_MAX) nw = GRAPH_PULL_WORKERS_MAX;
	if (nw <= 1) return graph_pull(o->gc, o->st, specs, n, o->pull, results, err);

	int rc = -1;
	long long *weight = xcalloc(n + 1, sizeof *weight);
	int *worker_of = xcalloc(n + 1, sizeof *worker_of);
	bool *done = xcalloc(n + 1, sizeof *done);
	struct worker *ws = xcalloc((size_t)nw, sizeof *ws);
	int started = 0;
	for (size_t i = 0; i < n; i++) {
		long long users = 0;
		struct err ignored;
		if (store_user_count(o->st, specs[i].tenant_id, STORE_USERS_PRESENT, &users, &ignored) != 0) users = 0;
		weight[i] = users + 100;   /* a tenant's fixed cost: token, $batch, groups */
	}
	graph_pull_deal(weight, n, nw, worker_of);
	for (int k = 0; k < nw; k++) {
		ws[k].fd = -1;
		ws[k].tenants = xcalloc(n + 1, sizeof *ws[k].tenants);
	}
	for (size_t i = 0; i < n; i++) {
		struct worker *w = &ws[worker_of[i]];
		w->tenants[w->n++] = i;
	}
	int max_total = o->max_in_flight > 0 ? o->max_in_flight : 64;
	int each = (max_total + nw - 1) / nw;
	pid_t parent = getpid();
	fflush(NULL);   /* nothing buffered is written twice by a child */
	for (int k = 0; k < nw; k++) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) != 0) {
			err_set(err, "cannot make a pipe for pull worker %d: %s", k + 1, strerror(errno));
			goto out;
		}
		pid_t pid = fork();
		if (pid < 0) {
			err_set(err, "cannot start pull worker %d: %s", k + 1, strerror(errno));
			close(p[0]);
			close(p[1]);
			goto out;
		}
		if (pid == 0) {
			close(p[0]);
			for (int j = 0; j < k; j++) close(ws[j].fd);
			worker_main(o, specs, &ws[k], each, parent, p[1]);
		}
		close(p[1]);
		ws[k].pid = pid;
		ws[k].fd = p[0];
		started++;
	}
	log_debug("graph.pull", "%zu tenants over %d worker processes, %d requests in flight each", n, nw, each);
	if (log_get_level() >= LOG_DEBUG)
		for (int k = 0; k < nw; k++) worker_describe(&ws[k], k, specs);
	workers_read(o->st, ws, nw, n, results, done);
	rc = 0;
	for (int k = 0; o->http && k < nw; k++) {
		http_counters_add(&o->http->graph, &ws[k].http.graph);
		http_counters_add(&o->http->login, &ws[k].http.login);
	}
out:
	/* pipes closed first: a worker still writing gets EPIPE (SIGPIPE) instead
	 * of blocking on a full pipe while it is waited for */
	for (int k = 0; k < nw; k++) {
		if (ws[k].fd >= 0) close(ws[k].fd);
		ws[k].fd = -1;
	}
	for (int k = 0; k < started; k++) {
		int status = 0;
		if (rc != 0) kill(ws[k].pid, SIGKILL);
		while (waitpid(ws[k].pid, &status, 0) < 0 && errno == EINTR) {}
		char how[64];
		worker_end_text(status, how, sizeof how);
		for (size_t i = 0; i < ws[k].n; i++) {
			size_t t = ws[k].tenants[i];
			if (done[t]) continue;
			memset(&results[t], 0, sizeof results[t]);
			snprintf(results[t].error, sizeof results[t].error,
			         "tenant %s: its pull worker (pid %ld) %s before reporting it; a new pull resumes where "
			         "its last commit left off", specs[t].tenant_id, (long)ws[k].pid, how);
			graph_tenant_row_put(o->st, specs[t].tenant_id, NULL, NULL, results[t].error);
			done[t] = true;
		}
	}
	for (int k = 0; k < nw; k++) {
		buf_free(&ws[k].in);
		free(ws[k].tenants);
	}
	free(ws);
	free(done);
	free(worker_of);
	free(weight);
	return rc;
}
