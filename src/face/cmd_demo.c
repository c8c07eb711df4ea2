/* cmd_demo — `entrasync demo [--keep]`: the product end to end in one
 * command on a fresh machine. Starts the bundled fakes (tests/fakes/
 * fake_graph.py --tenants demo, fake_syncro.py --data demo) on loopback
 * ports in a fresh temp folder, writes a config there mapping the demo
 * tenants Contoso / Fabrikam / Northwind to Syncro customers 101 / "Fabrikam
 * Inc" (by name) / 103 with policies/default.lua, runs the sync engine in
 * process as a dry run, then for real, then once more (nothing to do), and
 * prints what happened in words a new user understands.
 *
 * The fake Syncro's demo contacts do not share e-mails with the people the
 * fake Graph generates, so before the first run the demo adds a few
 * contacts (through the fake's control API) that do: one with the e-mail in
 * other case and an old name/title (→ adopted and updated), and a pair with
 * one e-mail (→ a conflict). The summary says so.
 *
 * Processes: the fakes are children (killed on every exit path; they also
 * get SIGTERM if this process dies: PR_SET_PDEATHSIG). The runs happen in a
 * forked worker so that SIGINT/SIGTERM only set a flag in this process,
 * which then stops the worker and the fakes and removes the temp folder
 * (unless --keep) before exiting 130/143. */
#include "face/commands.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "util/config.h"
#include "engine/engine.h"
#include "engine/engine_policy.h"
#include "graph/graph.h"
#include "http/http.h"
#include "util/log.h"
#include "store/store.h"
#include "syncro/syncro.h"

#define DEMO_CLIENT_ID "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59"
#define DEMO_SECRET    "Xq7Q~entrasync.fake-demo-secret_0001"
#define DEMO_SYNCRO_KEY "entrasync-demo-key"
#define DEMO_START_SECONDS 20

/* The demo tenants of the fake Graph and the Syncro customers they map to. */
static const struct demo_tenant {
	const char *key, *id, *name;
	long long customer_id;          /* mapped by id, or 0 */
	const char *customer_name;      /* mapped by business_name, or NULL */
} demo_tenants[] = {
	{ "contoso", "6babcaad-604b-40ac-a9d7-9fd97c0b779f", "Contoso", 101, NULL },
	{ "fabrikam", "2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d", "Fabrikam", 0, "Fabrikam Inc" },
	{ "northwind", "9c8b7a6d-5e4f-4321-a0b9-c8d7e6f5a4b3", "Northwind", 103, NULL },
};
#define DEMO_NTENANTS (sizeof demo_tenants / sizeof demo_tenants[0])

/* Where things are and what runs. */
struct demo {
	char fakes[PATH_MAX];           /* folder holding fake_graph.py and fake_syncro.py */
	char policy[PATH_MAX];          /* policies/default.lua */
	char python[PATH_MAX];
	char dir[PATH_MAX];             /* the temp folder */
	char config[PATH_MAX + 32];
	int graph_port, syncro_port;
	int seeded;                     /* contacts the demo added to the fake Syncro */
	bool keep;
};

/* Children, for the signal path. */
static volatile pid_t pid_graph, pid_syncro, pid_worker;
static volatile sig_atomic_t demo_signal;

static void demo_on_signal(int sig)
{
	demo_signal = sig;
}

/* dir + "/" + name into out[cap]; false (out cut) when it does not fit. */
static bool path_join(char *out, size_t cap, const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	if (a + 1 + b >= cap) {
		if (cap) out[0] = '\0';
		return false;
	}
	memcpy(out, dir, a);
	out[a] = '/';
	memcpy(out + a + 1, name, b + 1);
	return true;
}

static bool file_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* python3 in $PATH into out[cap]; false when none. */
static bool find_python(char *out, size_t cap)
{
	const char *path = getenv("PATH");
	if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t n = strcspn(path, ":");
		if (n > 0 && (size_t)snprintf(out, cap, "%.*s/python3", (int)n, path) < cap && access(out, X_OK) == 0)
			return true;
		path += n;
		if (*path == ':') path++;
	}
	return false;
}

/* Finds the fakes and the default policy: beside the source tree (the
 * binary's folder, its parent or grandparent holding tests/fakes), else the
 * share folder of an install: PREFIX/share/entrasync as built, or
 * BINDIR/../share/entrasync (an install under another PREFIX, or moved).
 * Fails naming every place it looked. */
static int demo_locate(struct demo *d, struct err *err)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0) n = 0;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash) *slash = '\0';
	char parent[PATH_MAX], grand[PATH_MAX], share[PATH_MAX], beside[PATH_MAX];
	path_join(parent, sizeof parent, exe, "..");     /* build/entrasync */
	path_join(grand, sizeof grand, exe, "../..");    /* build/asan/entrasync */
	path_join(share, sizeof share, ENTRASYNC_PREFIX, "share/entrasync");
	path_join(beside, sizeof beside, exe, "../share/entrasync");
	/* (root, fakes under it, policy under it) */
	const char *const places[5][3] = {
		{ exe, "tests/fakes", "policies/default.lua" },
		{ parent, "tests/fakes", "policies/default.lua" },
		{ grand, "tests/fakes", "policies/default.lua" },
		{ share, "fakes", "policies/default.lua" },
		{ beside, "fakes", "policies/default.lua" },
	};
	for (int i = 0; i < 5; i++) {
		char g[PATH_MAX], s[PATH_MAX];
		if (!path_join(d->fakes, sizeof d->fakes, places[i][0], places[i][1]) ||
		    !path_join(d->policy, sizeof d->policy, places[i][0], places[i][2]) ||
		    !path_join(g, sizeof g, d->fakes, "fake_graph.py") || !path_join(s, sizeof s, d->fakes, "fake_syncro.py"))
			continue;
		if (file_exists(g) && file_exists(s) && file_exists(d->policy)) goto found;
	}
	return err_set(err, "cannot find the bundled fakes (fake_graph.py, fake_syncro.py) and policies/default.lua: "
	               "looked in %s/tests/fakes, %s/tests/fakes, %s/tests/fakes, %s/fakes and %s/fakes (run the demo "
	               "from the source tree: ./entrasync demo)", exe, parent, grand, share, beside);
found:
	if (!find_python(d->python, sizeof d->python))
		return err_set(err, "python3 is not installed (or not in PATH): the demo's fake servers need it "
		               "(Debian: apt-get install python3)");
	return 0;
}

/* Starts one fake: python3 SCRIPT ARGS..., output into LOG. */
static pid_t demo_spawn(const struct demo *d, const char *script, const char *log, const char *const extra[])
{
	char path[PATH_MAX], logpath[PATH_MAX];
	path_join(path, sizeof path, d->fakes, script);
	path_join(logpath, sizeof logpath, d->dir, log);
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0) return pid;
	char *argv[16];                 /* the child's own copies: it execs or exits */
	int n = 0;
	argv[n++] = xstrdup("python3");
	argv[n++] = xstrdup(path);
	for (int i = 0; extra[i] && n < 15; i++) argv[n++] = xstrdup(extra[i]);
	argv[n] = NULL;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int nul = open("/dev/null", O_RDONLY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	if (nul >= 0) dup2(nul, 0);
	execv(d->python, argv);
	_exit(127);
}

/* Reads a port file; 0 when absent or empty. */
static int read_port(const char *dir, const char *name)
{
	char path[PATH_MAX];
	if (!path_join(path, sizeof path, dir, name)) return 0;
	FILE *f = fopen(path, "r");
	if (!f) return 0;
	int port = 0;
	if (fscanf(f, "%d", &port) != 1) port = 0;
	fclose(f);
	return port;
}

/* The last lines of a fake's log, for an error message. */
static void log_tail(const char *dir, const char *name, char *out, size_t cap)
{
	char path[PATH_MAX];
	out[0] = '\0';
	if (!path_join(path, sizeof path, dir, name)) return;
	FILE *f = fopen(path, "r");
	if (!f) return;
	char buf[4096];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = n > 600 ? buf + n - 600 : buf;
	snprintf(out, cap, "%.600s", p);
}

/* Starts both fakes and waits for their port files. */
static int demo_start_fakes(struct demo *d, struct err *err)
{
	char gport[PATH_MAX], sport[PATH_MAX];
	path_join(gport, sizeof gport, d->dir, "graph.port");
	path_join(sport, sizeof sport, d->dir, "syncro.port");
	const char *const gargs[] = { "--port", "0", "--port-file", gport, "--seed", "1", "--tenants", "demo", NULL };
	const char *const sargs[] = { "--port", "0", "--port-file", sport, "--api-key", DEMO_SYNCRO_KEY, "--data", "demo",
	                  "--rate-limit", "6000", NULL };
	pid_graph = demo_spawn(d, "fake_graph.py", "graph.log", gargs);
	if (pid_graph < 0) return err_set(err, "cannot start the fake Graph: %s", strerror(errno));
	pid_syncro = demo_spawn(d, "fake_syncro.py", "syncro.log", sargs);
	if (pid_syncro < 0) return err_set(err, "cannot start the fake Syncro: %s", strerror(errno));
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	for (int i = 0; i < DEMO_START_SECONDS * 20 && !demo_signal; i++) {
		d->graph_port = read_port(d->dir, "graph.port");
		d->syncro_port = read_port(d->dir, "syncro.port");
		if (d->graph_port > 0 && d->syncro_port > 0) return 0;
		const char *dead = NULL, *log = NULL;
		int status;
		if (waitpid(pid_graph, &status, WNOHANG) == pid_graph) {
			pid_graph = 0;
			dead = "fake Graph", log = "graph.log";
		} else if (waitpid(pid_syncro, &status, WNOHANG) == pid_syncro) {
			pid_syncro = 0;
			dead = "fake Syncro", log = "syncro.log";
		}
		if (dead) {
			char tail[700];
			log_tail(d->dir, log, tail, sizeof tail);
			return err_set(err, "the %s exited while starting:\n%.700s", dead, tail);
		}
		nanosleep(&tick, NULL);
	}
	if (demo_signal) return err_set(err, "interrupted");
	return err_set(err, "the fakes did not start within %d s (logs in %s)", DEMO_START_SECONDS, d->dir);
}

static void stop_child(volatile pid_t *pid, int sig)
{
	if (*pid <= 0) return;
	kill(*pid, sig);
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	for (int i = 0; i < 150; i++) {           /* up to 3 s, then SIGKILL */
		if (waitpid(*pid, NULL, WNOHANG) != 0) {
			*pid = 0;
			return;
		}
		nanosleep(&tick, NULL);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	remove(path);
	return 0;
}

/* Writes the config: the three demo tenants, one mapped by customer name. */
static int demo_write_config(struct demo *d, struct err *err)
{
	path_join(d->config, sizeof d->config, d->dir, "entrasync.lua");
	FILE *f = fopen(d->config, "w");
	if (!f) return err_set(err, "%s: %s", d->config, strerror(errno));
	fprintf(f,
	        "-- entrasync demo config: the bundled fakes on 127.0.0.1 (gone once the demo ends)\n"
	        "database = \"state/demo.db\"\n"
	        "graph = { client_id = \"%s\", client_secret = \"%s\",\n"
	        "          authority = \"http://127.0.0.1:%d\", endpoint = \"http://127.0.0.1:%d\" }\n"
	        "-- the fake Syncro is started with a 6000/minute limit so the demo is quick; real Syncro allows 180\n"
	        "syncro = { base_url = \"http://127.0.0.1:%d/api/v1\", api_key = \"%s\", requests_per_minute = 6000 }\n"
	        "policy = \"%s\"\n"
	        "tenants = {\n",
	        DEMO_CLIENT_ID, DEMO_SECRET, d->graph_port, d->graph_port, d->syncro_port, DEMO_SYNCRO_KEY, d->policy);
	for (size_t i = 0; i < DEMO_NTENANTS; i++) {
		const struct demo_tenant *t = &demo_tenants[i];
		if (t->customer_name)
			fprintf(f, "  { id = \"%s\", name = \"%s\", syncro_customer = \"%s\" },\n", t->id, t->name,
			        t->customer_name);
		else
			fprintf(f, "  { id = \"%s\", name = \"%s\", syncro_customer_id = %lld },\n", t->id, t->name,
			        t->customer_id);
	}
	fputs("}\n", f);
	if (fclose(f) != 0) return err_set(err, "%s: %s", d->config, strerror(errno));
	return 0;
}

/* ---- the fakes' control API, through the HTTP layer (loopback, no retry
 * needed: a fake that does not answer fails the demo at once) */

static int control_call(int port, const char *method, const char *path, const char *body, struct buf *out,
                        struct err *err)
{
	int rc = -1;
	char url[512];
	struct http_response resp = {0};
	struct http_engine *e = http_engine_new(NULL, err);
	struct http_service *svc = NULL;
	if (!e) goto out;
	svc = http_service_add(e, &(struct http_service_opts){ .name = "fake-control", .total_timeout = 20,
	                                                       .retry = { .max_attempts = 1 } }, err);
	if (!svc) goto out;
	snprintf(url, sizeof url, "http://127.0.0.1:%d/_fake/%s", port, path);
	struct http_request req = { .method = method, .url = url, .body = body, .body_len = body ? strlen(body) : 0,
	                            .content_type = body ? "application/json" : NULL,
	                            .idempotent = HTTP_IDEMPOTENT_NO };
	if (http_do(svc, &req, &resp, err) != 0) goto out;
	if (resp.status != 200) {
		err_set(err, "%s %s: HTTP %ld", method, url, resp.status);
		goto out;
	}
	if (resp.body.len) buf_add(out, resp.body.data, resp.body.len);
	rc = 0;
out:
	http_response_free(&resp);
	http_engine_free(e);
	return rc;
}

/* Picks, among the tenant's active users, those the policy includes (up to
 * max, in the fake's order) into mails[] / names[] (owned strings). */
static size_t pick_included(struct engine_policy *pol, const cJSON *users, char **mails, char **names, size_t max,
                            struct err *err)
{
	size_t n = 0;
	const cJSON *u;
	cJSON_ArrayForEach(u, users) {
		if (n == max) break;
		const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "_state"));
		const char *mail = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "mail"));
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(u, "displayName"));
		if ((state && strcmp(state, "active") != 0) || !mail || !name || !strchr(mail, '@')) continue;
		struct policy_decision dec;
		if (engine_policy_eval(pol, u, NULL, &dec, err) != 0) continue;
		if (dec.include) {
			mails[n] = xstrdup(mail);
			names[n] = xstrdup(name);
			n++;
		}
		policy_decision_free(&dec);
	}
	return n;
}

static void add_contact(cJSON *list, long long customer, const char *name, const char *email, const char *title,
                        const char *notes)
{
	cJSON *c = cJSON_CreateObject();
	cJSON_AddNumberToObject(c, "customer_id", (double)customer);
	cJSON_AddStringToObject(c, "name", name);
	cJSON_AddStringToObject(c, "email", email);
	if (title) cJSON_AddStringToObject(c, "title", title);
	if (notes) cJSON_AddStringToObject(c, "notes", notes);
	cJSON_AddItemToArray(list, c);
}

/* Adds to the fake Syncro contacts that share e-mails with people of the
 * fake Graph (see the banner): Contoso: one to adopt (e-mail upper-cased,
 * old name and title) and a duplicate pair (a conflict); Fabrikam: one to
 * adopt as it is. */
static int demo_seed_overlap(struct demo *d, struct err *err)
{
	int rc = -1;
	struct engine_policy pol = {0};
	struct buf resp = {0};
	cJSON *state = NULL, *seed = cJSON_CreateObject(), *list = cJSON_AddArrayToObject(seed, "contacts");
	char *mails[2] = {0}, *names[2] = {0}, *body = NULL;
	size_t n = 0;
	if (engine_policy_load(&pol, d->policy, NULL, NULL, err) != 0) goto out;
	for (int t = 0; t < 2; t++) {
		char path[64];
		snprintf(path, sizeof path, "state?tenant=%s", demo_tenants[t].key);
		buf_reset(&resp);
		if (control_call(d->graph_port, "GET", path, NULL, &resp, err) != 0) goto out;
		cJSON_Delete(state);
		state = cJSON_ParseWithLength(resp.data, resp.len);
		const cJSON *tenants = cJSON_GetObjectItemCaseSensitive(state, "tenants");
		const cJSON *users = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tenants, 0), "users");
		for (size_t i = 0; i < n; i++) {
			free(mails[i]);
			free(names[i]);
			mails[i] = names[i] = NULL;
		}
		n = pick_included(&pol, users, mails, names, t == 0 ? 2 : 1, err);
		if (t == 0 && n == 2) {
			char upper[256], old[300];
			snprintf(upper, sizeof upper, "%s", mails[0]);
			for (char *p = upper; *p; p++)
				if (*p >= 'a' && *p <= 'z') *p = (char)(*p - 'a' + 'A');
			snprintf(old, sizeof old, "%.200s (old record)", names[0]);
			add_contact(list, 101, old, upper, "Temp", "Added by hand years ago");
			add_contact(list, 101, names[1], mails[1], NULL, "Entered twice by mistake");
			add_contact(list, 101, names[1], mails[1], NULL, "Entered twice by mistake");
		} else if (t == 1 && n == 1) {
			add_contact(list, 102, names[0], mails[0], NULL, NULL);
		}
	}
	d->seeded = cJSON_GetArraySize(list);
	body = cJSON_PrintUnformatted(seed);
	buf_reset(&resp);
	if (control_call(d->syncro_port, "POST", "seed", body, &resp, err) != 0) goto out;
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) {
		free(mails[i]);
		free(names[i]);
	}
	free(body);
	cJSON_Delete(seed);
	cJSON_Delete(state);
	buf_free(&resp);
	engine_policy_free(&pol);
	return rc;
}

/* ---- the runs (in the worker) */

static const char *label_of(const struct engine_action *a)
{
	return a->label ? a->label : a->object_id;
}

static const char *tenant_label(const struct engine_tenant_report *t)
{
	return t->name ? t->name : t->id;
}

/* One run of the engine with a fresh store and clients (verify: sync --verify). */
static int demo_run(const struct config *cfg, bool dry, bool verify, struct engine_report *rep, struct err *err)
{
	int rc = -1;
	struct store *st = NULL;
	struct http_engine *e = NULL;
	struct graph_client *gc = NULL;
	struct syncro_client *sc = NULL;
	struct syncro_opts so;
	memset(rep, 0, sizeof *rep);
	if (store_open(cfg->database, &st, err) != 0) goto out;
	if (!(e = http_engine_new(NULL, err))) goto out;
	syncro_opts_from_config(&cfg->syncro, &so);
	if (!(sc = syncro_client_new(e, &so, err))) goto out;
	struct graph_client_opts go = { .cfg = &cfg->graph, .engine = e };
	if (graph_client_new(&go, &gc, err) != 0) goto out;
	struct engine_sync_opts o = { .dry_run = dry, .verify = verify, .record_plan = true };
	struct engine_env env = { .cfg = cfg, .st = st, .gc = gc, .sc = sc };
	rc = engine_sync(&env, &o, rep, err);
out:
	graph_client_free(gc);
	http_engine_free(e);
	syncro_client_free(sc);
	store_close(st);
	return rc;
}

static void print_fields_changed(const struct engine_action *a)
{
	int first = 1;
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (!(a->changed & (1u << f)) || f == SYNCRO_F_CUSTOMER_ID) continue;
		printf("%s%s: %s → %s", first ? "\n        " : ", ", syncro_field_name((enum syncro_field)f),
		       a->before.v[f] ? a->before.v[f] : "(none)", a->after.v[f] ? a->after.v[f] : "(none)");
		first = 0;
	}
	if (first) printf(" (nothing to change)");
}

static void print_plan_table(const struct engine_report *r, bool dry)
{
	printf("    %-10s %6s %8s %8s %8s %9s %9s %8s  %s\n", "tenant", "users", dry ? "create" : "created",
	       dry ? "adopt" : "adopted", dry ? "update" : "updated", "conflict", "unchanged", "skipped", "status");
	struct engine_counts tot = {0};
	for (size_t i = 0; i < r->n; i++) {
		const struct engine_tenant_report *t = &r->t[i];
		printf("    %-10s %6lld %8lld %8lld %8lld %9lld %9lld %8lld  %s%s%s\n", tenant_label(t), t->n.users,
		       t->n.created, t->n.adopted, t->n.updated, t->n.conflicts, t->n.unchanged, t->n.skipped, t->status,
		       t->reason ? ": " : "", t->reason ? t->reason : "");
		tot.users += t->n.users, tot.created += t->n.created, tot.adopted += t->n.adopted;
		tot.updated += t->n.updated, tot.conflicts += t->n.conflicts, tot.unchanged += t->n.unchanged;
		tot.skipped += t->n.skipped;
	}
	printf("    %-10s %6lld %8lld %8lld %8lld %9lld %9lld %8lld\n", "total", tot.users, tot.created, tot.adopted,
	       tot.updated, tot.conflicts, tot.unchanged, tot.skipped);
	for (size_t i = 0; i < r->n; i++)
		for (size_t k = 0; k < r->t[i].nerrors; k++) printf("    error (%s): %s\n", tenant_label(&r->t[i]), r->t[i].errors[k]);
}

/* Lists the actions of one kind, up to max per kind. */
static void print_kind(const struct engine_report *r, enum engine_kind kind, size_t max)
{
	size_t shown = 0, total = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct engine_tenant_report *t = &r->t[i];
		for (size_t k = 0; k < t->nplan; k++) {
			const struct engine_action *a = &t->plan[k].a;
			if (a->kind != kind) continue;
			total++;
			if (shown == max) continue;
			shown++;
			printf("      %s: %s", tenant_label(t), label_of(a));
			if (kind == ENGINE_ADOPT || kind == ENGINE_UPDATE) {
				printf(" → contact #%lld", a->contact_id);
				print_fields_changed(a);
			} else if (kind == ENGINE_CONFLICT && a->ncandidates < 2) {
				printf(": %s", a->reason ? a->reason : "conflict");   /* its one contact is someone else's */
			} else if (kind == ENGINE_CONFLICT) {
				printf(": %zu contacts have this e-mail:", a->ncandidates);
				for (size_t c = 0; c < a->ncandidates; c++) printf("%s #%lld", c ? "," : "", a->candidates[c]);
			} else if (kind == ENGINE_CREATE && t->plan[k].error) {
				printf(" (failed: %s)", t->plan[k].error);
			}
			putchar('\n');
		}
	}
	if (total > shown) printf("      … and %zu more\n", total - shown);
}

/* Keeps the contact of the first link it is given (ud: long long, 0 before). */
static int keep_first_contact(const struct store_link *l, void *ud)
{
	long long *first = ud;
	if (!*first) *first = l->contact_id;
	return 0;
}

/* The contact of the first link of the first demo tenant (a technician is
 * about to delete it). 0, or -1 (err). */
static int first_linked_contact(const struct config *cfg, long long *contact_id, struct err *err)
{
	struct store *st = NULL;
	int rc = -1;
	*contact_id = 0;
	if (store_open(cfg->database, &st, err) != 0) goto out;
	if (store_link_each(st, cfg->tenants[0].id, keep_first_contact, contact_id, err) != 0) goto out;
	if (!*contact_id) {
		err_set(err, "tenant %s has no linked contact", cfg->tenants[0].id);
		goto out;
	}
	rc = 0;
out:
	store_close(st);
	return rc;
}

/* What the Syncro API's DELETE of a contact does, as a technician would
 * (through the product's own client, against the fake). */
static int delete_contact(const struct config *cfg, long long id, struct err *err)
{
	struct http_engine *e = http_engine_new(NULL, err);
	struct syncro_client *sc = NULL;
	struct syncro_opts so;
	int rc = -1;
	if (!e) goto out;
	syncro_opts_from_config(&cfg->syncro, &so);
	if (!(sc = syncro_client_new(e, &so, err))) goto out;
	rc = syncro_contact_delete(sc, id, err) == SYNCRO_OK ? 0 : -1;
out:
	syncro_client_free(sc);
	http_engine_free(e);
	return rc;
}

static long long sum_of(const struct engine_report *r, size_t off)
{
	long long s = 0;
	for (size_t i = 0; i < r->n; i++) s += *(const long long *)((const char *)&r->t[i].n + off);
	return s;
}
#define SUM(r, field) sum_of((r), offsetof(struct engine_counts, field))

/* The worker: dry run, sync, sync again, a contact deleted in Syncro and
 * sync --verify; prints the story. Exit code. */
static int demo_worker(const struct demo *d)
{
	struct config cfg;
	struct err err;
	struct engine_report dry = {0}, real = {0}, again = {0}, verified = {0};
	long long gone_id = 0;
	int rc = EXIT_PARTIAL;
	memset(&cfg, 0, sizeof cfg);
	if (config_load(d->config, &cfg, &err) != 0) {
		fprintf(stderr, "entrasync demo: %s\n", err.msg);
		goto out;
	}

	printf("\n1. Dry run  (entrasync sync --dry-run): pull the users from Graph, plan, write nothing\n");
	if (demo_run(&cfg, true, false, &dry, &err) != 0) {
		fprintf(stderr, "entrasync demo: dry run: %s\n", err.msg);
		goto out;
	}
	print_plan_table(&dry, true);
	printf("    Planned: %lld new contacts, %lld existing contacts to adopt (same e-mail), %lld conflict(s);\n"
	       "    %lld Syncro writes would be sent, none was. Skipped = users the policy leaves out\n"
	       "    (guests, disabled accounts, no mail, shared/service mailboxes, rooms).\n",
	       SUM(&dry, created), SUM(&dry, adopted), SUM(&dry, conflicts), dry.writes);

	printf("\n2. Sync  (entrasync sync): the same plan, applied to Syncro\n");
	if (demo_run(&cfg, false, false, &real, &err) != 0) {
		fprintf(stderr, "entrasync demo: sync: %s\n", err.msg);
		goto out;
	}
	print_plan_table(&real, false);
	printf("    Created %lld contacts, e.g.:\n", SUM(&real, created));
	print_kind(&real, ENGINE_CREATE, 3);
	printf("    Adopted %lld existing contacts (linked by e-mail instead of duplicated; only what differs is written):\n",
	       SUM(&real, adopted));
	print_kind(&real, ENGINE_ADOPT, 10);
	if (SUM(&real, updated)) {
		printf("    Updated %lld:\n", SUM(&real, updated));
		print_kind(&real, ENGINE_UPDATE, 5);
	}
	printf("    Conflict: %lld user(s) match several contacts: nothing linked or created for them;\n"
	       "    'entrasync conflicts' lists them, 'entrasync link' resolves one by hand:\n", SUM(&real, conflicts));
	print_kind(&real, ENGINE_CONFLICT, 10);
	printf("    Syncro writes sent: %lld.\n", real.writes);

	printf("\n3. Sync again: nothing changed in Entra, so nothing is written\n");
	if (demo_run(&cfg, false, false, &again, &err) != 0) {
		fprintf(stderr, "entrasync demo: second sync: %s\n", err.msg);
		goto out;
	}
	printf("    %lld unchanged, %lld conflict(s) still open, %lld Syncro writes.\n", SUM(&again, unchanged),
	       SUM(&again, conflicts), again.writes);

	printf("\n4. A technician deletes a contact in Syncro. Its user did not change in Entra, so a plain sync\n"
	       "   sends nothing for them; 'entrasync sync --verify' lists the customers' contacts and checks\n"
	       "   every link (the daemon does it once a day)\n");
	if (first_linked_contact(&cfg, &gone_id, &err) != 0 || delete_contact(&cfg, gone_id, &err) != 0) {
		fprintf(stderr, "entrasync demo: deleting a contact: %s\n", err.msg);
		goto out;
	}
	printf("    Deleted contact #%lld in Syncro.\n", gone_id);
	if (demo_run(&cfg, false, true, &verified, &err) != 0) {
		fprintf(stderr, "entrasync demo: sync --verify: %s\n", err.msg);
		goto out;
	}
	for (size_t i = 0; i < verified.n; i++) {
		const struct engine_tenant_report *t = &verified.t[i];
		for (size_t k = 0; k < t->nplan; k++) {
			const struct engine_action *a = &t->plan[k].a;
			if (!a->gone_contact) continue;
			printf("    %s: %s: contact #%lld is gone: link dropped, %s\n", tenant_label(t), label_of(a),
			       a->gone_contact, a->kind == ENGINE_CREATE ? "contact created again" : engine_kind_name(a->kind));
		}
	}
	printf("    %lld linked contacts checked, %lld gone, %lld Syncro writes.\n",
	       SUM(&verified, verified) + SUM(&verified, gone), SUM(&verified, gone), verified.writes);
	rc = engine_report_exit_code(&dry) || engine_report_exit_code(&real) || engine_report_exit_code(&again) ||
	     engine_report_exit_code(&verified) ? EXIT_PARTIAL : EXIT_OK;
out:
	engine_report_free(&dry);
	engine_report_free(&real);
	engine_report_free(&again);
	engine_report_free(&verified);
	config_free(&cfg);
	return rc;
}

static void print_intro(const struct demo *d)
{
	printf("entrasync demo: the whole job against local fakes of Microsoft Graph and Syncro\n"
	       "(on 127.0.0.1; nothing leaves this machine)\n\n");
	printf("Fake Graph on port %d: Contoso, Fabrikam and Northwind, with members, guests, disabled\n"
	       "accounts, shared mailboxes and a service account. Fake Syncro on port %d: their customers,\n"
	       "with existing contacts (%d of them added by the demo so that some people are already there).\n",
	       d->graph_port, d->syncro_port, d->seeded);
	printf("Config %s maps each tenant to its Syncro customer:\n", d->config);
	for (size_t i = 0; i < DEMO_NTENANTS; i++) {
		const struct demo_tenant *t = &demo_tenants[i];
		if (t->customer_name)
			printf("    %-10s → customer \"%s\" (by name)\n", t->name, t->customer_name);
		else
			printf("    %-10s → customer #%lld (by id)\n", t->name, t->customer_id);
	}
	printf("Policy %s:\n    enabled members with a mail address become contacts; leavers are kept.\n", d->policy);
}

static void print_outro(const struct demo *d, int rc)
{
	printf("\n%s\n", rc == EXIT_OK ? "Done: the demo ran end to end." : "The demo ran with problems (see above).");
	if (d->keep) {
		printf("The work folder is kept: %s\n"
		       "  entrasync.lua (the config), state/demo.db (the database), graph.log, syncro.log.\n"
		       "Next steps (the fakes are stopped; these read the database):\n"
		       "  ./entrasync --config %s status\n"
		       "  ./entrasync --config %s audit\n"
		       "  ./entrasync --config %s conflicts\n",
		       d->dir, d->config, d->config, d->config);
	} else {
		printf("The work folder %s (config, database, logs) was removed;\n"
		       "run 'entrasync demo --keep' to keep it and explore it with\n"
		       "  entrasync --config FOLDER/entrasync.lua status | audit | conflicts\n", d->dir);
	}
	printf("For your own tenants: write a config (README.md, Configuration), try a policy offline with\n"
	       "'entrasync policy test POLICY --users FILE', then 'entrasync check' and 'entrasync sync --dry-run'.\n");
}

/* Waits for the worker; on a signal stops it. Returns its exit code. */
static int wait_worker(void)
{
	int status = 0;
	for (;;) {
		if (demo_signal) {
			stop_child(&pid_worker, SIGTERM);
			return 128 + demo_signal;
		}
		pid_t r = waitpid(pid_worker, &status, 0);
		if (r == pid_worker) break;
		if (r < 0 && errno != EINTR) return EXIT_PARTIAL;
	}
	pid_worker = 0;
	if (WIFEXITED(status)) return WEXITSTATUS(status);
	return EXIT_PARTIAL;
}

int cmd_demo(int argc, char **argv, const struct global_opts *g)
{
	int keep = 0, npos = 0, rc = EXIT_NOSTART;
	const struct opt opts[] = { { "--keep", NULL, NULL, &keep }, { NULL, NULL, NULL, NULL } };
	int u = command_args("demo", argc, argv, opts, 0, &npos);
	if (u) return u;
	struct demo d;
	struct err err;
	memset(&d, 0, sizeof d);
	d.keep = keep;
	if (!g->log_level) log_set_level(LOG_ERROR);
	if (demo_locate(&d, &err) != 0) {
		fprintf(stderr, "entrasync demo: %s\n", err.msg);
		return EXIT_NOSTART;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(d.dir, sizeof d.dir, "%s/entrasync-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d.dir)) {
		fprintf(stderr, "entrasync demo: cannot make a temp folder %s: %s\n", d.dir, strerror(errno));
		return EXIT_NOSTART;
	}
	struct sigaction sa, old_int, old_term;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = demo_on_signal;           /* no SA_RESTART: waitpid returns EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	if (demo_start_fakes(&d, &err) != 0 || demo_write_config(&d, &err) != 0 || demo_seed_overlap(&d, &err) != 0) {
		fprintf(stderr, "entrasync demo: %s\n", err.msg);
		goto out;
	}
	if (demo_signal) goto out;
	print_intro(&d);
	fflush(NULL);
	pid_worker = fork();
	if (pid_worker < 0) {
		fprintf(stderr, "entrasync demo: fork: %s\n", strerror(errno));
		goto out;
	}
	if (pid_worker == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		int wrc = demo_worker(&d);
		fflush(NULL);
		_exit(wrc);
	}
	rc = wait_worker();
	if (!demo_signal) print_outro(&d, rc);
out:
	stop_child(&pid_worker, SIGTERM);
	stop_child(&pid_graph, SIGTERM);
	stop_child(&pid_syncro, SIGTERM);
	if (demo_signal) {
		fprintf(stderr, "entrasync demo: interrupted; fakes stopped%s\n", d.keep ? "" : ", temp folder removed");
		rc = 128 + demo_signal;
	}
	if (!d.keep) nftw(d.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return rc;
}
