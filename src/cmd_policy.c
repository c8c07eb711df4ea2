/* cmd_policy — `entrasync policy test POLICY --users FILE [--customer ID]
 * [--json]`: offline (no config, no network, no database): loads the
 * policy in the same sandbox a sync uses and, for every user of a
 * Graph-shaped file ({"value":[…]} or an array), prints include's verdict
 * and reason, the contact fields, and what on_leave would do for each
 * reason a linked user can leave. Exit 0 all evaluated, 1 the policy
 * failed on some user, 2 usage error or the policy does not load. */
#include "commands.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine.h"
#include "engine_policy.h"
#include "log.h"
#include "script.h"

static const char *const whys[] = { "deleted", "disabled", "out_of_scope" };

/* The user's group keys as store_plan_row's "name\x1Fid\x1E…" string,
 * from an optional "groups" array (names or ids) or Graph's "memberOf"
 * ([{"id","displayName"}]). NULL when none. */
static char *user_groups(const cJSON *u)
{
	struct buf b = {0};
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(u, "groups")) {
		if (!cJSON_IsString(it)) continue;
		if (b.len) buf_addc(&b, '\x1E');
		buf_printf(&b, "%s\x1F", it->valuestring);
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(u, "memberOf")) {
		const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
		const cJSON *dn = cJSON_GetObjectItemCaseSensitive(it, "displayName");
		if (b.len) buf_addc(&b, '\x1E');
		buf_printf(&b, "%s\x1F%s", cJSON_IsString(dn) ? dn->valuestring : "", cJSON_IsString(id) ? id->valuestring : "");
	}
	return b.len ? buf_steal(&b) : NULL;
}

static const char *str_of(const cJSON *u, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(u, k);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* "Name <mail>" of a Graph user. */
static char *user_label(const cJSON *u)
{
	const char *dn = str_of(u, "displayName"), *mail = str_of(u, "mail"), *upn = str_of(u, "userPrincipalName");
	const char *addr = mail ? mail : upn, *id = str_of(u, "id");
	if (dn && addr) return xasprintf("%s <%s>", dn, addr);
	return xstrdup(dn ? dn : addr ? addr : id ? id : "(no name)");
}

static cJSON *fields_json(const struct syncro_fields *fs)
{
	cJSON *o = cJSON_CreateObject();
	for (int f = 0; f < SYNCRO_NFIELDS; f++)
		if (fs->v[f]) cJSON_AddStringToObject(o, syncro_field_name((enum syncro_field)f), fs->v[f]);
	return o;
}

/* "name = \"…\", …"; with blank_note, blank values say they are never
 * written (contact fields; on_leave's "" does blank a field). */
static void print_fields(const struct syncro_fields *fs, bool blank_note)
{
	const char *sep = "";
	for (int f = 0; f < SYNCRO_NFIELDS; f++) {
		if (!fs->v[f]) continue;
		printf("%s%s = \"%s\"%s", sep, syncro_field_name((enum syncro_field)f), fs->v[f],
		       blank_note && engine_blank(fs->v[f]) ? " (blank: never written)" : "");
		sep = ", ";
	}
	if (!*sep) printf("(no fields)");
}

/* Evaluates one user; adds its JSON to arr (when json) or prints it.
 * Returns the number of policy errors. */
static int test_user(struct engine_policy *p, const cJSON *u, long long customer, bool json, cJSON *arr,
                     long long *included)
{
	struct err err;
	int errors = 0;
	char *label = user_label(u), *groups = user_groups(u);
	struct policy_decision d = {0};
	struct syncro_fields want = {0};
	cJSON *o = json ? cJSON_CreateObject() : NULL;
	const char *id = str_of(u, "id");
	if (o) {
		cJSON_AddStringToObject(o, "user", label);
		if (id) cJSON_AddStringToObject(o, "id", id);
	} else {
		printf("%s%s%s%s\n", label, id ? " (" : "", id ? id : "", id ? ")" : "");
	}
	if (engine_policy_eval(p, u, groups, &d, &err) != 0) {
		log_redact_err(&err);
		if (o) cJSON_AddStringToObject(o, "error", err.msg);
		else printf("  error: %s\n", err.msg);
		errors++;
		goto out;
	}
	if (d.include) (*included)++;
	engine_desired_fields(&d, customer, &want);
	bool disabled = cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(u, "accountEnabled"));
	if (o) {
		cJSON_AddBoolToObject(o, "include", d.include);
		if (d.reason) cJSON_AddStringToObject(o, "reason", d.reason);
		if (d.include) cJSON_AddItemToObject(o, "contact", fields_json(&want));
	} else {
		printf("  include: %s%s%s%s\n", d.include ? "yes" : "no", d.reason ? " (" : "", d.reason ? d.reason : "",
		       d.reason ? ")" : "");
		if (d.include) {
			printf("  contact: ");
			print_fields(&want, true);
			printf("\n");
		} else {
			printf("  if linked, it leaves as '%s'\n", disabled ? "disabled" : "out_of_scope");
		}
	}
	/* on_leave, with c = the contact as it would have been written (for a
	 * user out of scope: name and e-mail from Graph) */
	if (!d.include) {
		const char *dn = str_of(u, "displayName"), *mail = str_of(u, "mail");
		if (dn) syncro_fields_set(&want, SYNCRO_F_NAME, dn);
		if (mail) syncro_fields_set(&want, SYNCRO_F_EMAIL, mail);
	}
	cJSON *ol = o ? cJSON_AddObjectToObject(o, "on_leave") : NULL;
	if (!o) printf("  on_leave:");
	for (size_t i = 0; i < ARRAY_LEN(whys); i++) {
		struct engine_leave lv = {0};
		if (engine_policy_on_leave(p, &want, 0, whys[i], &lv, &err) != 0) {
			log_redact_err(&err);
			if (ol) cJSON_AddStringToObject(ol, whys[i], err.msg);
			else printf("\n    %s → error: %s", whys[i], err.msg);
			errors++;
			continue;
		}
		if (ol) {
			if (lv.kind == ENGINE_LEAVE_CHANGES) cJSON_AddItemToObject(ol, whys[i], fields_json(&lv.changes));
			else cJSON_AddStringToObject(ol, whys[i], lv.kind == ENGINE_LEAVE_DELETE ? "delete" : "keep");
		} else {
			printf("%s %s → ", i ? ";" : "", whys[i]);
			if (lv.kind == ENGINE_LEAVE_CHANGES) print_fields(&lv.changes, false);
			else printf("%s", lv.kind == ENGINE_LEAVE_DELETE ? "delete" : "keep");
		}
		engine_leave_free(&lv);
	}
	if (!o) printf("\n");
out:
	if (o) cJSON_AddItemToArray(arr, o);
	policy_decision_free(&d);
	syncro_fields_free(&want);
	free(label);
	free(groups);
	return errors;
}

static const char policy_usage[] =
	"usage: entrasync policy test POLICY --users FILE [--customer ID] [--json]\n";

static int policy_test(int argc, char **argv)
{
	const char *users = NULL, *customer_s = NULL;
	int json = 0, npos = 0, rc = EXIT_USAGE;
	struct err err;
	const struct opt opts[] = {
		{ "--users", "FILE", &users, NULL },
		{ "--customer", "ID", &customer_s, NULL },
		{ "--json", NULL, NULL, &json },
		{ NULL, NULL, NULL, NULL },
	};
	if (opts_parse(argc, argv, opts, argv, &npos, &err) != 0) return usage_fail("policy test", "%s", err.msg);
	if (npos != 1) return usage_fail("policy test", "%s%s", npos ? "one POLICY file, please\n" : "missing POLICY\n",
	                                 policy_usage);
	if (!users) return usage_fail("policy test", "missing --users FILE\n%s", policy_usage);
	long long customer = 0;
	if (customer_s) {
		char *end;
		customer = strtoll(customer_s, &end, 10);
		if (*end || customer <= 0) return usage_fail("policy test", "--customer needs a Syncro customer id (a number)");
	}
	const char *path = argv[0];
	char *text = NULL;
	size_t len = 0;
	cJSON *doc = NULL, *out = NULL;
	struct engine_policy p = {0};
	if (file_read(users, &text, &len, &err) != 0) {
		fprintf(stderr, "entrasync policy test: %s\n", err.msg);
		goto done;
	}
	doc = cJSON_ParseWithLength(text, len);
	const cJSON *list = cJSON_IsObject(doc) ? cJSON_GetObjectItemCaseSensitive(doc, "value") : doc;
	if (!cJSON_IsArray(list)) {
		fprintf(stderr, "entrasync policy test: %s: expected Graph users: {\"value\":[…]} or an array of user objects\n",
		        users);
		goto done;
	}
	struct script_tenant t = { .id = "policy-test", .name = "policy test", .syncro_customer_id = customer };
	if (engine_policy_load(&p, path, NULL, &t, &err) != 0) {
		log_redact_err(&err);
		fprintf(stderr, "%s\n", err.msg);
		goto done;
	}
	long long n = 0, included = 0, errors = 0;
	cJSON *arr = NULL;
	if (json) {
		out = cJSON_CreateObject();
		cJSON_AddStringToObject(out, "policy", path);
		arr = cJSON_AddArrayToObject(out, "users");
	}
	const cJSON *u;
	cJSON_ArrayForEach(u, list) {
		if (!cJSON_IsObject(u)) continue;
		n++;
		errors += test_user(&p, u, customer, json, arr, &included);
	}
	if (json) {
		cJSON_AddNumberToObject(out, "users_tested", (double)n);
		cJSON_AddNumberToObject(out, "included", (double)included);
		cJSON_AddNumberToObject(out, "excluded", (double)(n - included));
		cJSON_AddNumberToObject(out, "errors", (double)errors);
		char *s = cJSON_Print(out);
		if (s) printf("%s\n", s);
		cJSON_free(s);
	} else {
		printf("\n%lld user%s: %lld included, %lld excluded, %lld policy error%s\n", n, n == 1 ? "" : "s", included,
		       n - included, errors, errors == 1 ? "" : "s");
	}
	rc = errors ? EXIT_PARTIAL : EXIT_OK;
done:
	engine_policy_free(&p);
	cJSON_Delete(out);
	cJSON_Delete(doc);
	free(text);
	return rc;
}

int cmd_policy(int argc, char **argv, const struct global_opts *g)
{
	if (g && g->lua_dir) script_set_lua_dir(g->lua_dir);
	if (argc < 1) return usage_fail("policy", "missing subcommand\n%s", policy_usage);
	if (strcmp(argv[0], "test") == 0) return policy_test(argc - 1, argv + 1);
	static const char *const subs[] = { "test", NULL };
	return usage_unknown("subcommand", argv[0], subs, "policy");
}
