/* cmd_user — `entrasync user show|disable|enable|revoke-sessions|
 * set-password TARGET [--tenant T] [--yes] [--dry-run] [--json]` and
 * `entrasync user tickets`: the face of actions.h. Options, the terminal
 * (confirmation prompt, a password given on standard input), text and JSON
 * output, exit codes:
 *   0 done (or shown, or dry run); 1 refused, cancelled or failed;
 *   2 usage: bad arguments, unknown or ambiguous target, --yes needed;
 *   3 could not start (no database, lock held).
 * A generated password is printed once, on standard output, and nowhere
 * else. User actions take no run lock (an urgent disable must not wait for
 * a sync); `user tickets` does (a sync run processes tickets too). The
 * problem type and statuses of `user tickets` come from the config's
 * actions = { ... }, each overridden by its flag. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "actions/actions.h"
#include "face/commands.h"
#include "face/cmd_ops.h"
#include "util/config.h"
#include "graph/graph.h"
#include "http/http.h"
#include "util/log.h"
#include "util/shutdown.h"
#include "store/store.h"
#include "report/metrics.h"
#include "syncro/syncro.h"

#define PASSWORD_MAX 256

static const char *const subcommands[] = { "show", "disable", "enable", "revoke-sessions", "set-password", "tickets",
                                           NULL };

/* The clients an action needs. */
struct clients {
	struct http_engine *engine;
	struct graph_client *gc;
	struct syncro_client *sc;
};

/* Records the clients' HTTP counters for the metrics (a failure is only
 * logged), then frees them. st may be NULL (nothing recorded). */
static void clients_free(struct clients *c, struct store *st)
{
	struct http_service *svc[] = { c->gc ? graph_client_service(c->gc) : NULL,
	                               c->gc ? graph_client_login_service(c->gc) : NULL,
	                               c->sc ? syncro_client_service(c->sc) : NULL };
	struct err err;
	for (size_t i = 0; st && i < ARRAY_LEN(svc); i++)
		if (svc[i] && metrics_record_service(st, svc[i], NULL, &err) != 0)
			log_warn("user", "the HTTP counters were not recorded for the metrics: %s", err.msg);
	graph_client_free(c->gc);
	http_engine_free(c->engine);
	syncro_client_free(c->sc);
	memset(c, 0, sizeof *c);
}

static int clients_new(const struct config *cfg, bool syncro, struct clients *c, struct err *err)
{
	memset(c, 0, sizeof *c);
	if (!(c->engine = http_engine_new(NULL, err))) return -1;
	if (graph_client_new(&(struct graph_client_opts){ .cfg = &cfg->graph, .engine = c->engine }, &c->gc, err) != 0)
		return -1;
	if (syncro) {
		struct syncro_opts so;
		syncro_opts_from_config(&cfg->syncro, &so);
		if (!(c->sc = syncro_client_new(c->engine, &so, err))) return -1;
	}
	return 0;
}

/* Opens the store; refuses to create a database that does not exist. */
static int open_store(const struct config *cfg, const char *cmd, struct store **st)
{
	struct err err;
	if (access(cfg->database, F_OK) != 0) {
		fprintf(stderr, "entrasync user %s: no database at %s yet: run 'entrasync pull' first\n", cmd, cfg->database);
		return EXIT_NOSTART;
	}
	if (store_open(cfg->database, st, &err) != 0) {
		fprintf(stderr, "entrasync user %s: %s\n", cmd, err.msg);
		return EXIT_NOSTART;
	}
	return 0;
}

/* Asks on the terminal (prompt on stderr, answer on stdin). */
static bool confirm_on_terminal(const char *question, void *ud)
{
	(void)ud;
	fprintf(stderr, "%s Type 'yes' to confirm: ", question);
	fflush(stderr);
	char line[64];
	if (!fgets(line, sizeof line, stdin)) return false;
	line[strcspn(line, "\r\n")] = '\0';
	bool yes = !strcmp(line, "yes") || !strcmp(line, "y");
	/* confirmed: from here a Ctrl-C lets the Graph call end and its audit
	 * row be written (killed in it, the action could be done with no trace) */
	if (yes) shutdown_install();
	return yes;
}

/* A password given on standard input (not a terminal): its first line.
 * *pw NULL when nothing was given (then one is generated). */
static int read_password(char **pw, struct err *err)
{
	*pw = NULL;
	if (isatty(STDIN_FILENO)) return 0;
	char *buf = xcalloc(1, PASSWORD_MAX + 2);
	size_t n = fread(buf, 1, PASSWORD_MAX + 1, stdin);
	int rc = 0;
	buf[n] = '\0';
	size_t len = strcspn(buf, "\r\n");
	if (len > PASSWORD_MAX) {
		rc = err_set(err, "the password on standard input is longer than %d characters", PASSWORD_MAX);
	} else if (len > 0) {
		buf[len] = '\0';
		log_secret_add(buf);
		*pw = xstrdup(buf);
	}
	OPENSSL_cleanse(buf, PASSWORD_MAX + 2);
	free(buf);
	return rc;
}

static const char *result_word(enum actions_result r)
{
	switch (r) {
	case ACTIONS_OK: return "ok";
	case ACTIONS_USAGE: return "usage";
	case ACTIONS_REFUSED: return "refused";
	case ACTIONS_FAILED: return "failed";
	case ACTIONS_ERROR: return "error";
	case ACTIONS_AMBIGUOUS: return "ambiguous";
	}
	return "?";
}

static int exit_code(enum actions_result r)
{
	switch (r) {
	case ACTIONS_OK: return EXIT_OK;
	case ACTIONS_USAGE:
	case ACTIONS_AMBIGUOUS: return EXIT_USAGE;
	case ACTIONS_REFUSED:
	case ACTIONS_FAILED: return EXIT_PARTIAL;
	case ACTIONS_ERROR: return EXIT_NOSTART;
	}
	return EXIT_PARTIAL;
}

static void print_json(cJSON *o)
{
	char *s = cJSON_Print(o);
	printf("%s\n", s);
	free(s);
}

/* ---- show ----------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void show_text(const cJSON *o)
{
	const cJSON *it;
	const char *upn = jstr(o, "userPrincipalName");
	printf("%s (%s)\n", upn ? upn : jstr(o, "object_id"), jstr(o, "displayName") ? jstr(o, "displayName") : "-");
	printf("  tenant:      %s%s%s%s\n", jstr(o, "tenant_name") ? jstr(o, "tenant_name") : "", jstr(o, "tenant_name") ? " (" : "",
	       jstr(o, "tenant"), jstr(o, "tenant_name") ? ")" : "");
	printf("  object id:   %s\n", jstr(o, "object_id"));
	if (jstr(o, "mail")) printf("  mail:        %s\n", jstr(o, "mail"));
	const cJSON *en = cJSON_GetObjectItemCaseSensitive(o, "enabled");
	printf("  enabled:     %s%s\n", cJSON_IsBool(en) ? (cJSON_IsTrue(en) ? "yes" : "no") : "unknown",
	       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "removed")) ? " (removed from Entra)" : "");
	printf("  department:  %s\n", jstr(o, "department") ? jstr(o, "department") : "-");
	printf("  office:      %s\n", jstr(o, "office") ? jstr(o, "office") : "-");
	if (jstr(o, "jobTitle")) printf("  job title:   %s\n", jstr(o, "jobTitle"));
	printf("  licenses:   ");
	const cJSON *lics = cJSON_GetObjectItemCaseSensitive(o, "licenses");
	if (!cJSON_GetArraySize(lics)) printf(" none");
	cJSON_ArrayForEach(it, lics) printf(" %s%s", jstr(it, "name"), it->next ? ";" : "");
	printf("\n  groups:     ");
	const cJSON *groups = cJSON_GetObjectItemCaseSensitive(o, "groups");
	if (!cJSON_GetArraySize(groups)) printf(" none of the declared groups");
	cJSON_ArrayForEach(it, groups) printf(" %s%s", jstr(it, "name") ? jstr(it, "name") : jstr(it, "id"), it->next ? "," : "");
	printf("\n  last pull:   %s\n", jstr(o, "last_pull") ? jstr(o, "last_pull") : "never");
	const cJSON *prot = cJSON_GetObjectItemCaseSensitive(o, "protected");
	printf("  protected:   %s%s%s\n", cJSON_IsTrue(prot) ? "yes" : "no", jstr(o, "protected_reason") ? ": " : "",
	       jstr(o, "protected_reason") ? jstr(o, "protected_reason") : "");
	const cJSON *link = cJSON_GetObjectItemCaseSensitive(o, "link");
	if (cJSON_IsObject(link)) {
		const cJSON *f = cJSON_GetObjectItemCaseSensitive(link, "fields");
		char *fields = f ? cJSON_PrintUnformatted(f) : NULL;
		printf("  link:        Syncro contact %.0f of customer %.0f, since %s, last written %s\n",
		       cJSON_GetObjectItemCaseSensitive(link, "contact_id")->valuedouble,
		       cJSON_GetObjectItemCaseSensitive(link, "customer_id")->valuedouble,
		       jstr(link, "created_at") ? jstr(link, "created_at") : "?",
		       jstr(link, "updated_at") ? jstr(link, "updated_at") : "?");
		if (fields) printf("               fields %s\n", fields);
		free(fields);
	} else {
		printf("  link:        not linked to a Syncro contact\n");
	}
	const cJSON *audit = cJSON_GetObjectItemCaseSensitive(o, "audit");
	printf("  last writes: %s\n", cJSON_GetArraySize(audit) ? "" : "none");
	cJSON_ArrayForEach(it, audit)
		printf("    %s %-22s %-28s %s\n", jstr(it, "at"), jstr(it, "action"), jstr(it, "actor") ? jstr(it, "actor") : "-",
		       jstr(it, "result") ? jstr(it, "result") : "");
}

/* ---- one action -------------------------------------------------------------- */

static void outcome_json(const struct actions_target *t, enum graph_action a, const struct actions_outcome *oc,
                         bool dry_run)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "action", graph_action_name(a));
	cJSON_AddStringToObject(o, "tenant", t->tenant->id);
	cJSON_AddStringToObject(o, "object_id", t->object_id);
	cJSON_AddStringToObject(o, "user", t->label);
	if (t->link.contact_id) cJSON_AddNumberToObject(o, "contact_id", (double)t->link.contact_id);
	cJSON_AddStringToObject(o, "result", result_word(oc->result));
	cJSON_AddBoolToObject(o, "dry_run", dry_run);
	cJSON_AddStringToObject(o, "message", oc->message ? oc->message : "");
	cJSON_AddStringToObject(o, "permission", oc->permission ? oc->permission : "");
	if (oc->request.method) {
		cJSON *r = cJSON_AddObjectToObject(o, "request");
		cJSON_AddStringToObject(r, "method", oc->request.method);
		cJSON_AddStringToObject(r, "url", oc->request.url);
		cJSON *b = oc->request.body ? cJSON_Parse(oc->request.body) : NULL;
		if (b) cJSON_AddItemToObject(r, "body", b);
	}
	if (oc->password) cJSON_AddStringToObject(o, "password", oc->password);
	char *s = cJSON_Print(o);
	printf("%s\n", s);
	/* the text held the password: wipe before freeing */
	OPENSSL_cleanse(s, strlen(s));
	free(s);
	cJSON *pw = cJSON_GetObjectItemCaseSensitive(o, "password");
	if (cJSON_IsString(pw)) OPENSSL_cleanse(pw->valuestring, strlen(pw->valuestring));
	cJSON_Delete(o);
}

static void outcome_text(const struct actions_target *t, const struct actions_outcome *oc)
{
	FILE *f = oc->result == ACTIONS_OK ? stdout : stderr;
	fprintf(f, "%s%s\n", oc->result == ACTIONS_OK ? "" : "entrasync user: ", oc->message ? oc->message : "");
	if (oc->password) {
		printf("New password for %s (to be changed at the next sign-in; shown only this once):\n%s\n", t->label,
		       oc->password);
	}
}

struct user_opts {
	const char *tenant;
	int yes, dry_run, json;
};

static int user_action(const struct config *cfg, const char *sub, const char *target, const struct user_opts *uo)
{
	struct err err;
	struct store *st = NULL;
	struct clients cl = { 0 };
	struct actions_target t = { 0 };
	struct actions_outcome oc = { 0 };
	char *password = NULL;
	int rc = open_store(cfg, sub, &st);
	if (rc) return rc;
	bool show = !strcmp(sub, "show");
	int action = show ? -1 : graph_action_lookup(sub);
	struct actions_env env = { .cfg = cfg, .st = st, .actor = actions_actor() };
	int r = actions_resolve(&env, target, uo->tenant ? ops_tenant_id_in(cfg, st, uo->tenant) : NULL, &t, &err);
	if (r != ACTIONS_OK) {
		log_redact_err(&err);
		fprintf(stderr, "entrasync user %s: %s\n", sub, err.msg);
		rc = exit_code(r);
		goto out;
	}
	if (show) {
		cJSON *o = NULL;
		if (actions_show(&env, &t, 10, &o, &err) != 0) {
			fprintf(stderr, "entrasync user show: %s\n", err.msg);
			rc = EXIT_NOSTART;
			goto out;
		}
		if (uo->json) print_json(o);
		else show_text(o);
		cJSON_Delete(o);
		rc = EXIT_OK;
		goto out;
	}
	if (action == GRAPH_ACTION_SET_PASSWORD && !uo->dry_run && read_password(&password, &err) != 0) {
		rc = usage_fail("user set-password", "%s", err.msg);
		goto out;
	}
	if (!uo->dry_run && clients_new(cfg, false, &cl, &err) != 0) {
		fprintf(stderr, "entrasync user %s: %s\n", sub, err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	env.engine = cl.engine;
	env.gc = cl.gc;
	/* on a terminal, set-password generates the password (read_password
	 * reads only a redirected standard input): the prompt may read it */
	bool terminal = isatty(STDIN_FILENO);
	/* asked nothing (--yes, no terminal to ask on, an action not asked
	 * about): a SIGTERM or SIGINT lets the Graph call in flight end and its
	 * audit row be written (killed in it, the action could be done with no
	 * trace); with a question on a terminal, Ctrl-C must still cancel at
	 * once, until it is answered yes (confirm_on_terminal) */
	if (uo->yes || !terminal || (!show && !graph_action_destructive((enum graph_action)action))) shutdown_install();
	struct actions_opts ao = { .action = (enum graph_action)action, .yes = uo->yes, .dry_run = uo->dry_run,
	                           .confirm = terminal ? confirm_on_terminal : NULL, .password = password };
	r = actions_perform(&env, &t, &ao, &oc);
	if (uo->json) outcome_json(&t, ao.action, &oc, uo->dry_run);
	else outcome_text(&t, &oc);
	if (r == ACTIONS_USAGE && !uo->json) fprintf(stderr, "(in a script, add --yes; to see the request, --dry-run)\n");
	rc = exit_code(r);
out:
	if (password) OPENSSL_cleanse(password, strlen(password));
	free(password);
	actions_outcome_free(&oc);
	actions_target_free(&t);
	clients_free(&cl, st);
	store_close(st);
	return rc;
}

/* ---- tickets ------------------------------------------------------------------- */

struct ticket_cli {
	const char *problem_type, *open_status, *status_done, *status_failed;
	int dry_run;
};

static int user_tickets(const struct config *cfg, const struct ticket_cli *tc)
{
	struct err err;
	struct store *st = NULL;
	struct store_lock lock = { 0 };
	struct clients cl = { 0 };
	if (!tc->problem_type)
		return usage_fail("user tickets", "no problem type: set actions.ticket_problem_type in the config "
		                  "(or pass --problem-type TYPE)");
	/* SIGTERM / SIGINT: the ticket in hand is finished (its action and
	 * comment recorded), the others wait for the next run */
	shutdown_install();
	int rc = open_store(cfg, "tickets", &st);
	if (rc) return rc;
	rc = EXIT_NOSTART;
	if (store_lock_acquire(cfg->database, &lock, &err) != 0) {
		fprintf(stderr, "entrasync user tickets: %s\n", err.msg);
		goto out;
	}
	if (clients_new(cfg, true, &cl, &err) != 0) {
		fprintf(stderr, "entrasync user tickets: %s\n", err.msg);
		rc = EXIT_USAGE;
		goto out;
	}
	struct actions_env env = { .cfg = cfg, .st = st, .engine = cl.engine, .gc = cl.gc, .sc = cl.sc,
	                           .actor = actions_actor(), .out = stdout };
	struct actions_ticket_opts o = { .problem_type = tc->problem_type, .open_status = tc->open_status,
	                                 .status_done = tc->status_done, .status_failed = tc->status_failed,
	                                 .dry_run = tc->dry_run };
	struct actions_ticket_report rep;
	if (actions_process_tickets(&env, &o, &rep, &err) != 0) {
		fprintf(stderr, "entrasync user tickets: %s\n", err.msg);
		rc = EXIT_PARTIAL;
		goto out;
	}
	printf("tickets of problem type '%s': %d open, %d done, %d refused, %d failed, %d pending, %d resumed, "
	       "%d handled before%s\n", tc->problem_type, rep.seen, rep.done, rep.refused, rep.failed, rep.pending,
	       rep.resumed, rep.already, tc->dry_run ? " (dry run: nothing changed)" : "");
	rc = rep.failed || rep.pending ? EXIT_PARTIAL : EXIT_OK;
out:
	clients_free(&cl, st);
	store_close(st);
	store_lock_release(&lock);
	return rc;
}

int cmd_user(int argc, char **argv, const struct global_opts *g)
{
	struct user_opts uo = { 0 };
	struct ticket_cli tc = { 0 };
	const struct opt opts[] = {
		{ "--tenant", "T", &uo.tenant, NULL },
		{ "--yes", NULL, NULL, &uo.yes },
		{ "--dry-run", NULL, NULL, &uo.dry_run },
		{ "--json", NULL, NULL, &uo.json },
		{ "--problem-type", "TYPE", &tc.problem_type, NULL },
		{ "--open-status", "STATUS", &tc.open_status, NULL },
		{ "--status-done", "STATUS", &tc.status_done, NULL },
		{ "--status-failed", "STATUS", &tc.status_failed, NULL },
		{ NULL, NULL, NULL, NULL },
	};
	int npos;
	int rc = command_args("user", argc, argv, opts, 2, &npos);
	if (rc) return rc;
	if (npos == 0) return usage_fail("user", "which subcommand? (show, disable, enable, revoke-sessions, set-password, "
	                                 "tickets)");
	const char *sub = argv[0];
	bool known = false;
	for (const char *const *s = subcommands; *s; s++) known = known || !strcmp(*s, sub);
	if (!known) return usage_unknown("subcommand", sub, subcommands, "user");
	bool tickets = !strcmp(sub, "tickets");
	if (tickets && npos != 1) return usage_fail("user tickets", "unexpected argument '%s'", argv[1]);
	if (tickets && (uo.tenant || uo.yes || uo.json))
		return usage_fail("user tickets", "--tenant, --yes and --json go with the actions on one TARGET");
	if (!tickets && npos != 2) return usage_fail("user", "%s needs a TARGET (Syncro contact id, e-mail, UPN or Entra "
	                                             "object id)", sub);
	if (!tickets && (tc.problem_type || tc.open_status || tc.status_done || tc.status_failed))
		return usage_fail("user", "--problem-type and the --status options go with 'user tickets'");
	struct config cfg;
	struct err err;
	if (config_load(config_locate(g->config_path), &cfg, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return EXIT_USAGE;
	}
	tc.dry_run = uo.dry_run;
	/* the flags override the config's actions = { ... } */
	if (!tc.problem_type) tc.problem_type = cfg.actions.ticket_problem_type;
	if (!tc.status_done) tc.status_done = cfg.actions.ticket_status_done;
	if (!tc.status_failed) tc.status_failed = cfg.actions.ticket_status_failed;
	rc = tickets ? user_tickets(&cfg, &tc) : user_action(&cfg, sub, argv[1], &uo);
	config_free(&cfg);
	return rc;
}
