/* cmd_demo — `entrasync demo [--keep]`: the product end to end on one
 * machine with nothing to set up. Starts the bundled fakes (fake Microsoft
 * Graph with its demo tenants, fake Syncro with its demo customers) on
 * 127.0.0.1 in a temporary folder, adds a few users to the fake Graph that
 * match existing Syncro contacts (so adoption and a conflict show), writes
 * a config there, runs `sync --dry-run`, then `sync`, then `sync` again
 * (zero writes), prints what happened, and stops the fakes.
 * The fakes are found next to the program's source tree (tests/fakes of
 * the repo the binary sits in), in $ENTRASYNC_FAKES, or in the installed
 * share folder (PREFIX/share/entrasync/fakes). Needs python3. */
#include "commands.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "engine.h"
#include "http.h"
#include "log.h"

#define DEMO_CLIENT_ID "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59"
#define DEMO_SECRET    "Xq7Q~entrasync.fake-demo-secret_0001"
#define DEMO_API_KEY   "entrasync-demo-key"
#define DEMO_RPM       3000   /* the fake is local: no need to wait at Syncro's real 180 a minute */

struct demo {
	char dir[PATH_MAX];            /* the temporary folder */
	char fakes[PATH_MAX];          /* folder with fake_graph.py and fake_syncro.py */
	char policy[PATH_MAX];         /* policies/default.lua */
	char python[PATH_MAX];
	pid_t graph_pid, syncro_pid;
	char graph_url[64], syncro_url[64];
};

static bool is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Does DIR hold both fakes? */
static bool has_fakes(const char *dir)
{
	char *g = xasprintf("%s/fake_graph.py", dir), *s = xasprintf("%s/fake_syncro.py", dir);
	bool ok = is_file(g) && is_file(s);
	free(g);
	free(s);
	return ok;
}

/* realpath of path into out[PATH_MAX] when it is a file. */
static bool real_file(const char *path, char *out)
{
	return is_file(path) && realpath(path, out) != NULL;
}

/* The folder holding the fakes, and the default policy beside them. */
static int find_fakes(struct demo *d, struct err *err)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash) *slash = '\0';
	const char *env = getenv("ENTRASYNC_FAKES");
	char *cand[4];
	size_t nc = 0;
	if (env && *env) cand[nc++] = xstrdup(env);
	cand[nc++] = xasprintf("%s/tests/fakes", exe);          /* ./entrasync in the repo */
	cand[nc++] = xasprintf("%s/../../tests/fakes", exe);    /* build/entrasync, build/asan/... */
	cand[nc++] = xasprintf("%s/share/entrasync/fakes", ENTRASYNC_PREFIX);
	int rc = 1;
	for (size_t i = 0; i < nc && rc == 1; i++) {
		if (!has_fakes(cand[i]) || !realpath(cand[i], d->fakes)) continue;
		/* the default policy: the repo's, else the installed one */
		char *p1 = xasprintf("%s/../../policies/default.lua", d->fakes);
		char *p2 = xasprintf("%s/share/entrasync/policies/default.lua", ENTRASYNC_PREFIX);
		rc = real_file(p1, d->policy) || real_file(p2, d->policy)
		     ? 0 : err_set(err, "found the fakes in %s but no policies/default.lua beside them", d->fakes);
		free(p1);
		free(p2);
	}
	if (rc == 1)
		rc = err_set(err, "cannot find the bundled fakes (fake_graph.py, fake_syncro.py): looked in "
		             "$ENTRASYNC_FAKES, %s/tests/fakes, %s/../../tests/fakes and %s/share/entrasync/fakes; "
		             "run the demo from the source tree or set ENTRASYNC_FAKES", exe, exe, ENTRASYNC_PREFIX);
	for (size_t i = 0; i < nc; i++) free(cand[i]);
	return rc;
}

static int find_python(struct demo *d, struct err *err)
{
	const char *path = getenv("PATH");
	char *copy = xstrdup(path ? path : "/usr/local/bin:/usr/bin:/bin");
	int rc = -1;
	for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		snprintf(d->python, sizeof d->python, "%s/python3", *dir ? dir : ".");
		if (access(d->python, X_OK) == 0) {
			rc = 0;
			break;
		}
	}
	free(copy);
	if (rc != 0) err_set(err, "the demo needs python3 to run its fake servers, and none is on the PATH "
	                     "(install it, e.g. 'apt-get install python3')");
	return rc;
}

/* Starts one fake: python3 SCRIPT --port 0 --port-file DIR/NAME.port ARGS... */
static pid_t start_fake(struct demo *d, const char *script, const char *name, const char *const *args,
                        struct err *err)
{
	char *argv[24];
	size_t n = 0;
	argv[n++] = xstrdup(d->python);
	argv[n++] = xasprintf("%s/%s", d->fakes, script);
	argv[n++] = xstrdup("--port");
	argv[n++] = xstrdup("0");
	argv[n++] = xstrdup("--port-file");
	argv[n++] = xasprintf("%s/%s.port", d->dir, name);
	for (size_t i = 0; args[i] && n + 1 < ARRAY_LEN(argv); i++) argv[n++] = xstrdup(args[i]);
	argv[n] = NULL;
	char *log = xasprintf("%s/%s.log", d->dir, name);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	if (pid < 0) err_set(err, "fork: %s", strerror(errno));
	for (size_t i = 0; i < n; i++) free(argv[i]);
	free(log);
	return pid;
}

/* Waits (up to 15 s) for the fake's port file; fills url. */
static int wait_port(struct demo *d, pid_t pid, const char *name, char *url, size_t cap, struct err *err)
{
	char *port = xasprintf("%s/%s.port", d->dir, name);
	int rc = 1;
	for (int i = 0; i < 300 && rc == 1; i++) {
		char *text = NULL;
		size_t len;
		struct err e;
		if (file_read(port, &text, &len, &e) == 0) {
			int p = atoi(text);
			free(text);
			if (p > 0) {
				snprintf(url, cap, "http://127.0.0.1:%d", p);
				rc = 0;
				break;
			}
		}
		int status;
		if (waitpid(pid, &status, WNOHANG) == pid)
			rc = err_set(err, "the fake %s stopped at start (see %s/%s.log)", name, d->dir, name);
		else
			usleep(50000);
	}
	free(port);
	if (rc == 1) rc = err_set(err, "the fake %s did not start within 15 s (see %s/%s.log)", name, d->dir, name);
	return rc;
}

static void stop_fake(pid_t *pid)
{
	if (*pid <= 0) return;
	kill(*pid, SIGTERM);
	for (int i = 0; i < 60; i++) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = 0;
			return;
		}
		usleep(50000);
	}
	kill(*pid, SIGKILL);
	waitpid(*pid, NULL, 0);
	*pid = 0;
}

/* POSTs JSON to a fake's control API (URL/_fake/PATH). */
static int fake_post(struct http_service *svc, const char *url, const char *path, const char *json,
                     struct err *err)
{
	struct http_response r = {0};
	char *full = xasprintf("%s/_fake/%s", url, path);
	struct http_request req = { .method = "POST", .url = full, .body = json, .body_len = strlen(json),
	                            .content_type = "application/json" };
	int rc = http_do(svc, &req, &r, err);
	if (rc == 0 && (r.status < 200 || r.status > 299)) rc = err_set(err, "the fake answered %ld to %s", r.status, path);
	http_response_free(&r);
	free(full);
	return rc;
}

/* Users added to the fake Contoso tenant that match contacts of the fake
 * Syncro's demo customer 101 (tests/fakes/SYNCRO.md): two adoptions (one
 * with its e-mail in another case and another name) and a conflict (two
 * contacts share Lee Gu's e-mail). */
static const char *const demo_users[] = {
	"{\"displayName\":\"Adele Vance\",\"givenName\":\"Adele\",\"surname\":\"Vance\",\"mail\":\"adele.vance@contoso.com\","
	"\"userPrincipalName\":\"adele.vance@contoso.com\",\"jobTitle\":\"Retail Manager\",\"department\":\"Retail\","
	"\"businessPhones\":[\"425-555-0109\"],\"accountEnabled\":true,\"userType\":\"Member\"}",
	"{\"displayName\":\"Alex Wilber\",\"givenName\":\"Alex\",\"surname\":\"Wilber\",\"mail\":\"alex.wilber@contoso.com\","
	"\"userPrincipalName\":\"alex.wilber@contoso.com\",\"jobTitle\":\"Marketing Assistant\",\"department\":\"Marketing\","
	"\"accountEnabled\":true,\"userType\":\"Member\"}",
	"{\"displayName\":\"Lee Gu\",\"givenName\":\"Lee\",\"surname\":\"Gu\",\"mail\":\"lee.gu@contoso.com\","
	"\"userPrincipalName\":\"lee.gu@contoso.com\",\"jobTitle\":\"Director\",\"department\":\"Manufacturing\","
	"\"accountEnabled\":true,\"userType\":\"Member\"}",
};

static int seed_graph(struct demo *d, struct err *err)
{
	struct http_engine *e = http_engine_new(NULL, err);
	if (!e) return -1;
	int rc = -1;
	struct http_service *svc = http_service_add(e, &(struct http_service_opts){ .name = "demo" }, err);
	if (!svc) goto out;
	for (size_t i = 0; i < ARRAY_LEN(demo_users); i++)
		if (fake_post(svc, d->graph_url, "tenants/contoso/users", demo_users[i], err) != 0) goto out;
	rc = 0;
out:
	http_engine_free(e);
	return rc;
}

static int write_config(struct demo *d, char *path, size_t cap, struct err *err)
{
	snprintf(path, cap, "%s/entrasync.lua", d->dir);
	FILE *f = fopen(path, "w");
	if (!f) return err_set(err, "cannot write %s: %s", path, strerror(errno));
	fprintf(f,
	        "-- entrasync demo config: the fake Graph and the fake Syncro on 127.0.0.1\n"
	        "database = \"state/demo.db\"\n"
	        "graph = { client_id = \"%s\", client_secret = \"%s\",\n"
	        "          authority = \"%s\", endpoint = \"%s\" }\n"
	        "syncro = { base_url = \"%s/api/v1\", api_key = \"%s\", requests_per_minute = %d }\n"
	        "policy = \"%s\"\n"
	        "tenants = {\n"
	        "  { id = \"6babcaad-604b-40ac-a9d7-9fd97c0b779f\", name = \"Contoso\", syncro_customer_id = 101 },\n"
	        "  { id = \"2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d\", name = \"Fabrikam\", syncro_customer = \"Fabrikam Inc\" },\n"
	        "  { id = \"9c8b7a6d-5e4f-4321-a0b9-c8d7e6f5a4b3\", name = \"Northwind\", syncro_customer_id = 103 },\n"
	        "}\n",
	        DEMO_CLIENT_ID, DEMO_SECRET, d->graph_url, d->graph_url, d->syncro_url, DEMO_API_KEY, DEMO_RPM, d->policy);
	if (fclose(f) != 0) return err_set(err, "cannot write %s", path);
	return 0;
}

/* One step of the demo: a sync, its report printed. */
static int demo_sync(const struct config *cfg, bool dry, struct engine_report *rep, struct err *err)
{
	bool nostart;
	struct engine_sync_opts o = { .dry_run = dry, .record_plan = true };
	if (engine_sync_config(cfg, &o, rep, &nostart, err) != 0) return -1;
	engine_report_print_text_brief(stdout, rep, 3);
	return 0;
}

static void print_summary(const struct engine_report *real, const struct engine_report *again)
{
	struct engine_counts t = {0};
	printf("\n== What happened\n");
	for (size_t i = 0; i < real->n; i++) {
		const struct engine_tenant_report *r = &real->t[i];
		t.created += r->n.created;
		t.adopted += r->n.adopted;
		t.updated += r->n.updated;
		t.conflicts += r->n.conflicts;
		for (size_t k = 0; k < r->nplan; k++) {
			const struct engine_action *a = &r->plan[k].a;
			if (a->kind == ENGINE_ADOPT)
				printf("  adopted   %s: existing contact #%lld linked%s\n", a->label ? a->label : a->object_id,
				       a->contact_id, a->changed ? ", differing fields updated" : "");
			else if (a->kind == ENGINE_CONFLICT)
				printf("  conflict  %s: %zu contacts share the e-mail; nothing created, left for you to merge\n",
				       a->label ? a->label : a->object_id, a->ncandidates);
		}
	}
	long long again_writes = 0;
	for (size_t i = 0; again && i < again->n; i++) again_writes += again->t[i].writes;
	printf("  %lld contacts created, %lld existing contacts adopted, %lld updated, %lld conflict%s "
	       "across %zu tenants.\n", t.created, t.adopted, t.updated, t.conflicts, t.conflicts == 1 ? "" : "s",
	       real->n);
	if (again)
		printf("  A second sync right after sent %lld write%s to Syncro: only what changes in Entra is written.\n",
		       again_writes, again_writes == 1 ? "" : "s");
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(path) == 0 ? 0 : 0;   /* best effort: go on */
}

static const char demo_usage[] =
	"usage: entrasync demo [--keep]\n";

int cmd_demo(int argc, char **argv, const struct global_opts *g)
{
	int keep = 0, npos = 0, rc = EXIT_PARTIAL;
	struct err err;
	const struct opt opts[] = { { "--keep", NULL, NULL, &keep }, { NULL, NULL, NULL, NULL } };
	if (opts_parse(argc, argv, opts, argv, &npos, &err) != 0) return usage_fail("demo", "%s", err.msg);
	if (npos > 0) return usage_fail("demo", "unexpected argument '%s'\n%s", argv[0], demo_usage);

	struct demo d = {0};
	struct config cfg;
	struct engine_report dry = {0}, real = {0}, again = {0};
	memset(&cfg, 0, sizeof cfg);
	if (!g->log_level) log_set_level(LOG_ERROR);   /* the demo's own output tells the story */
	if (find_fakes(&d, &err) != 0 || find_python(&d, &err) != 0) {
		fprintf(stderr, "entrasync demo: %s\n", err.msg);
		return EXIT_NOSTART;
	}
	const char *tmp = getenv("TMPDIR");
	snprintf(d.dir, sizeof d.dir, "%s/entrasync-demo.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(d.dir)) {
		fprintf(stderr, "entrasync demo: cannot make a temporary folder: %s\n", strerror(errno));
		return EXIT_NOSTART;
	}
	printf("entrasync demo: fake Microsoft Graph (tenants Contoso, Fabrikam, Northwind) and fake Syncro\n"
	       "(customers Contoso Ltd, Fabrikam Inc, Northwind Traders) on 127.0.0.1, in %s\n", d.dir);
	static const char *const gargs[] = { "--seed", "1", "--tenants", "demo", NULL };
	static const char *const sargs[] = { "--api-key", DEMO_API_KEY, "--data", "demo", "--rate-limit", "0", NULL };
	if ((d.graph_pid = start_fake(&d, "fake_graph.py", "graph", gargs, &err)) < 0) goto fail;
	if ((d.syncro_pid = start_fake(&d, "fake_syncro.py", "syncro", sargs, &err)) < 0) goto fail;
	if (wait_port(&d, d.graph_pid, "graph", d.graph_url, sizeof d.graph_url, &err) != 0) goto fail;
	if (wait_port(&d, d.syncro_pid, "syncro", d.syncro_url, sizeof d.syncro_url, &err) != 0) goto fail;
	if (seed_graph(&d, &err) != 0) {
		err_prefix(&err, "adding the demo users to the fake Graph");
		goto fail;
	}
	char cfgpath[PATH_MAX + 32];
	if (write_config(&d, cfgpath, sizeof cfgpath, &err) != 0) goto fail;
	if (config_load(cfgpath, &cfg, &err) != 0) goto fail;

	printf("\n== 1. entrasync sync --dry-run   (the plan; nothing is written)\n\n");
	if (demo_sync(&cfg, true, &dry, &err) != 0) goto fail;
	printf("\n== 2. entrasync sync   (the same plan, applied to Syncro)\n\n");
	if (demo_sync(&cfg, false, &real, &err) != 0) goto fail;
	printf("\n== 3. entrasync sync   (again: nothing changed in Entra)\n\n");
	if (demo_sync(&cfg, false, &again, &err) != 0) goto fail;
	print_summary(&real, &again);
	printf("\nConfig, database and the fakes' logs: %s%s\n", d.dir, keep ? "" : " (removed now; --keep keeps them)");
	rc = engine_report_exit_code(&real) == 0 && !real.fatal ? EXIT_OK : EXIT_PARTIAL;
	goto out;
fail:
	log_redact_err(&err);
	fprintf(stderr, "entrasync demo: %s\n", err.msg);
	keep = 1;
	fprintf(stderr, "entrasync demo: files kept in %s\n", d.dir);
out:
	stop_fake(&d.graph_pid);
	stop_fake(&d.syncro_pid);
	engine_report_free(&dry);
	engine_report_free(&real);
	engine_report_free(&again);
	config_free(&cfg);
	if (!keep && d.dir[0]) nftw(d.dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
