/* cmd_policy — `entrasync policy test POLICY --users FILE [--json]`:
 * offline (no config, no network, no database), loads POLICY the way the
 * engine does (engine_policy.h) and, for every user of a Graph-shaped file
 * ({"value":[…]} or a JSON array of user objects), prints the decision:
 * included or not with include()'s reason, the contact fields contact()
 * would write (and customer_id), and for a user who is not included what
 * on_leave would do if the user were linked (why = "deleted" for an
 * @removed entry, "disabled" for accountEnabled false, else
 * "out_of_scope"); the contact handed to on_leave is built from the user
 * (name, email, title), as no contact was ever written offline.
 *
 * Groups: a user object may carry "memberOf": [{"displayName","id"}, …]
 * (the shape of Graph's /users/{id}/transitiveMemberOf); those become the
 * keys of u.groups. Licences come from assignedLicenses as in a sync.
 * Exit: 0 every user evaluated, 1 some evaluation failed, 2 usage error or
 * the policy / the file cannot be loaded. */
#include "face/commands.h"

#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "engine/engine.h"
#include "engine/engine_policy.h"
#include "util/log.h"
#include "script/script.h"
#include "syncro/syncro.h"

/* "name\x1Fid\x1E…" (engine_policy_eval's groups) from a user's memberOf. */
static void groups_of(const cJSON *user, struct buf *out)
{
	buf_reset(out);
	const cJSON *g;
	cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(user, "memberOf")) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(g, "displayName"));
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(g, "id"));
		if (!name && !id) continue;
		buf_printf(out, "%s\x1F%s\x1E", name ? name : "", id ? id : "");
	}
}

static const char *str_of(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* Why a user who is not included would leave, as on_leave is told. */
static const char *leave_why(const cJSON *user)
{
	if (cJSON_GetObjectItemCaseSensitive(user, "@removed")) return "deleted";
	if (cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(user, "accountEnabled"))) return "disabled";
	return "out_of_scope";
}

/* "Name <mail>" or what the user has. New string. */
static char *user_label(const cJSON *user)
{
	const char *name = str_of(user, "displayName"), *mail = str_of(user, "mail");
	const char *upn = str_of(user, "userPrincipalName"), *id = str_of(user, "id");
	const char *addr = mail ? mail : upn;
	if (name && addr) return xasprintf("%s <%s>", name, addr);
	return xstrdup(name ? name : addr ? addr : id ? id : "(no name)");
}

/* The evaluation of one user, for text and JSON output. */
struct policy_case {
	char *label;
	const char *id;
	bool included;
	char *reason;
	struct syncro_fields contact;        /* desired fields (with customer_id) when included */
	const char *why;                     /* not included: on_leave's why */
	struct engine_leave leave;
	char *error;                         /* evaluation failed */
};

static void case_free(struct policy_case *c)
{
	free(c->label);
	free(c->reason);
	free(c->error);
	syncro_fields_free(&c->contact);
	engine_leave_free(&c->leave);
}

static void case_eval(struct engine_policy *pol, const cJSON *user, struct buf *groups, struct policy_case *c)
{
	struct err err;
	struct policy_decision d;
	memset(c, 0, sizeof *c);
	c->label = user_label(user);
	c->id = str_of(user, "id");
	groups_of(user, groups);
	if (cJSON_GetObjectItemCaseSensitive(user, "@removed")) {
		c->reason = xstrdup("removed in Entra");
	} else {
		if (engine_policy_eval(pol, user, groups->len ? groups->data : NULL, &d, &err) != 0) {
			c->error = xstrdup(err.msg);
			return;
		}
		c->included = d.include;
		if (d.reason) c->reason = xstrdup(d.reason);
		if (d.include) engine_desired_fields(&d, 0, &c->contact);
		policy_decision_free(&d);
		if (c->included) return;
	}
	c->why = leave_why(user);
	struct syncro_fields was = {0};
	const char *name = str_of(user, "displayName"), *mail = str_of(user, "mail");
	if (name) syncro_fields_set(&was, SYNCRO_F_NAME, name);
	if (mail || str_of(user, "userPrincipalName"))
		syncro_fields_set(&was, SYNCRO_F_EMAIL, mail ? mail : str_of(user, "userPrincipalName"));
	if (str_of(user, "jobTitle")) syncro_fields_set(&was, SYNCRO_F_TITLE, str_of(user, "jobTitle"));
	if (engine_policy_on_leave(pol, &was, 0, c->why, &c->leave, &err) != 0) c->error = xstrdup(err.msg);
	syncro_fields_free(&was);
}

static const char *leave_kind_name(enum engine_leave_kind k)
{
	return k == ENGINE_LEAVE_DELETE ? "delete" : k == ENGINE_LEAVE_CHANGES ? "mark" : "keep";
}

/* A value on one line: newlines shown as \n. */
static void put_one_line(const char *v)
{
	for (; *v; v++) {
		if (*v == '\n') fputs("\\n", stdout);
		else putchar(*v);
	}
}

static void print_case_text(const struct policy_case *c)
{
	if (c->error) {
		printf("! %s\n    error: %s\n", c->label, c->error);
		return;
	}
	if (c->included) {
		printf("+ %s: included%s%s\n", c->label, c->reason ? ": " : "", c->reason ? c->reason : "");
		for (int f = 0; f < SYNCRO_NFIELDS; f++)
			if (c->contact.v[f]) {
				printf("    %-11s ", syncro_field_name((enum syncro_field)f));
				put_one_line(c->contact.v[f]);
				putchar('\n');
			}
		return;
	}
	printf("- %s: not included%s%s\n", c->label, c->reason ? ": " : "", c->reason ? c->reason : "");
	printf("    if linked, on_leave(\"%s\") → %s", c->why, leave_kind_name(c->leave.kind));
	if (c->leave.kind == ENGINE_LEAVE_CHANGES) {
		int first = 1;
		for (int f = 0; f < SYNCRO_NFIELDS; f++) {
			if (!c->leave.changes.v[f]) continue;
			printf("%s%s = \"%s\"", first ? ": " : ", ", syncro_field_name((enum syncro_field)f), c->leave.changes.v[f]);
			first = 0;
		}
	}
	putchar('\n');
}

static cJSON *fields_json(const struct syncro_fields *fs)
{
	char *s = engine_fields_to_json(fs);
	cJSON *o = cJSON_Parse(s);
	free(s);
	return o ? o : cJSON_CreateObject();
}

static cJSON *case_json(const struct policy_case *c)
{
	cJSON *o = cJSON_CreateObject();
	if (c->id) cJSON_AddStringToObject(o, "id", c->id);
	cJSON_AddStringToObject(o, "user", c->label);
	if (c->error) {
		cJSON_AddStringToObject(o, "error", c->error);
		return o;
	}
	cJSON_AddBoolToObject(o, "included", c->included);
	if (c->reason) cJSON_AddStringToObject(o, "reason", c->reason);
	else cJSON_AddNullToObject(o, "reason");
	if (c->included) {
		cJSON_AddItemToObject(o, "contact", fields_json(&c->contact));
	} else {
		cJSON *l = cJSON_AddObjectToObject(o, "on_leave");
		cJSON_AddStringToObject(l, "why", c->why);
		cJSON_AddStringToObject(l, "action", leave_kind_name(c->leave.kind));
		if (c->leave.kind == ENGINE_LEAVE_CHANGES) cJSON_AddItemToObject(l, "changes", fields_json(&c->leave.changes));
	}
	return o;
}

/* The users array of a Graph-shaped document (borrowed), or NULL. */
static const cJSON *users_of(const cJSON *doc)
{
	if (cJSON_IsArray(doc)) return doc;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "value");
	return cJSON_IsArray(v) ? v : NULL;
}

/* Parses the users file into *doc, or says why it cannot (returns -1): a
 * file in UTF-16 (what Windows PowerShell 5.1's Out-File and `>` write) is
 * named as such with the way to save it as UTF-8; invalid JSON gets the line
 * and column where the parse stopped. */
static int users_file_problem(const char *path, const char *text, size_t len, cJSON **doc)
{
	if (text_is_utf16(text, len)) {
		fprintf(stderr, "entrasync policy test: %s is UTF-16 text (Windows PowerShell's Out-File and '>' write it): "
		        "save Graph's answer as it came, e.g. Invoke-MgGraphRequest -Uri 'v1.0/users?$top=999' "
		        "-OutputFilePath %s, or write UTF-8 (Set-Content -Encoding utf8)\n", path, path);
		return -1;
	}
	const char *end = NULL;
	*doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (*doc) return 0;
	size_t at = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
	size_t line = 1, col = 1;
	for (size_t i = 0; i < at; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	fprintf(stderr, "entrasync policy test: %s: not valid JSON (line %zu, column %zu)\n", path, line, col);
	return -1;
}

static int policy_test(const char *policy, const char *users_path, bool json)
{
	struct err err;
	struct engine_policy pol = {0};
	char *text = NULL;
	size_t len = 0;
	cJSON *doc = NULL, *out = NULL;
	struct buf groups = {0};
	int rc = EXIT_USAGE;
	long long included = 0, excluded = 0, errors = 0;
	if (file_read(users_path, &text, &len, &err) != 0) {
		fprintf(stderr, "entrasync policy test: %s\n", err.msg);
		goto out;
	}
	if (users_file_problem(users_path, text, len, &doc) != 0) goto out;
	const cJSON *users = users_of(doc);
	if (!users) {
		fprintf(stderr, "entrasync policy test: %s: not a Graph user list ({\"value\":[…]} or a JSON array)\n",
		        users_path);
		goto out;
	}
	struct script_tenant t = { .id = "policy-test", .name = "policy test" };
	if (engine_policy_load(&pol, policy, NULL, &t, &err) != 0) {
		fprintf(stderr, "entrasync policy test: %s\n", err.msg);
		goto out;
	}
	if (json) out = cJSON_CreateArray();
	else printf("policy %s, users %s\n", policy, users_path);
	const cJSON *user;
	cJSON_ArrayForEach(user, users) {
		if (!cJSON_IsObject(user)) continue;
		struct policy_case c;
		case_eval(&pol, user, &groups, &c);
		if (c.error) errors++;
		else if (c.included) included++;
		else excluded++;
		if (json) cJSON_AddItemToArray(out, case_json(&c));
		else print_case_text(&c);
		case_free(&c);
	}
	if (json) {
		cJSON *root = cJSON_CreateObject();
		cJSON_AddStringToObject(root, "policy", policy);
		cJSON_AddNumberToObject(root, "included", (double)included);
		cJSON_AddNumberToObject(root, "excluded", (double)excluded);
		cJSON_AddNumberToObject(root, "errors", (double)errors);
		cJSON_AddItemToObject(root, "users", out);
		out = NULL;
		char *s = cJSON_Print(root);
		puts(s);
		free(s);
		cJSON_Delete(root);
	} else {
		printf("%lld users: %lld included, %lld not included, %lld errors\n", included + excluded + errors,
		       included, excluded, errors);
	}
	rc = errors ? EXIT_PARTIAL : EXIT_OK;
out:
	cJSON_Delete(out);
	cJSON_Delete(doc);
	free(text);
	buf_free(&groups);
	engine_policy_free(&pol);
	return rc;
}

int cmd_policy(int argc, char **argv, const struct global_opts *g)
{
	const char *users = NULL;
	int json = 0, npos = 0;
	const struct opt opts[] = {
		{ "--users", "FILE", &users, NULL },
		{ "--json", NULL, NULL, &json },
		{ NULL, NULL, NULL, NULL },
	};
	int u = command_args("policy", argc, argv, opts, 2, &npos);
	if (u) return u;
	if (npos < 1 || strcmp(argv[0], "test") != 0)
		return usage_fail("policy", "usage: entrasync policy test POLICY --users FILE [--json]");
	if (npos < 2) return usage_fail("policy", "which policy? (entrasync policy test POLICY --users FILE)");
	if (!users) return usage_fail("policy", "option '--users FILE' is required (a Graph user list)");
	if (!g->log_level) log_set_level(LOG_WARN);
	return policy_test(argv[1], users, json);
}
