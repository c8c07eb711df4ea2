/* test_actions — Microsoft actions without a network: action names,
 * permissions and request bodies, the 403 messages, the password generator,
 * ticket subjects, the policy hooks (protect / allow_action in the sandbox),
 * the ticket state table, target resolution over a real store, the guards of
 * one action (removed, protected, dry-run, confirmation) with their audit
 * rows, show, and the ticket JSON parser. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "actions/actions.h"
#include "graph/graph_actions.h"
#include "util/log.h"
#include "store/store.h"
#include "store/store_actions.h"
#include "syncro/syncro_tickets_open.h"
#include "t.h"

#define CONTOSO "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
#define FABRIKAM "2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d"
#define ADELE "11111111-1111-4111-8111-111111111111"
#define ADMIN "22222222-2222-4222-8222-222222222222"
#define LEE1 "33333333-3333-4333-8333-333333333333"
#define LEE2 "44444444-4444-4444-8444-444444444444"
#define GONE "55555555-5555-4555-8555-555555555555"
#define E3 "05e9a617-0261-4cee-bb44-138d3ef5d965"

/* ---- names, permissions, requests ---------------------------------------- */

TEST(actions_names_and_permissions)
{
	CHECK_EQ_INT(graph_action_lookup("disable"), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(graph_action_lookup("ENABLE"), GRAPH_ACTION_ENABLE);
	CHECK_EQ_INT(graph_action_lookup("revoke-sessions"), GRAPH_ACTION_REVOKE_SESSIONS);
	CHECK_EQ_INT(graph_action_lookup("revoke sessions"), GRAPH_ACTION_REVOKE_SESSIONS);
	CHECK_EQ_INT(graph_action_lookup("set_password"), GRAPH_ACTION_SET_PASSWORD);
	CHECK_EQ_INT(graph_action_lookup("disabled"), -1);
	CHECK_EQ_INT(graph_action_lookup("revoke"), -1);
	CHECK_EQ_INT(graph_action_lookup(NULL), -1);
	CHECK_STR(graph_action_permission(GRAPH_ACTION_DISABLE), "User.EnableDisableAccount.All + User.Read.All");
	CHECK_STR(graph_action_permission(GRAPH_ACTION_ENABLE), "User.EnableDisableAccount.All + User.Read.All");
	CHECK_STR(graph_action_permission(GRAPH_ACTION_REVOKE_SESSIONS), "User.RevokeSessions.All");
	CHECK_STR(graph_action_permission(GRAPH_ACTION_SET_PASSWORD), "User-PasswordProfile.ReadWrite.All");
	CHECK(graph_action_destructive(GRAPH_ACTION_DISABLE));
	CHECK(!graph_action_destructive(GRAPH_ACTION_ENABLE));
	CHECK(graph_action_destructive(GRAPH_ACTION_REVOKE_SESSIONS));
	CHECK(graph_action_destructive(GRAPH_ACTION_SET_PASSWORD));
}

TEST(actions_request_bodies)
{
	struct graph_action_request r;
	graph_action_request_make(GRAPH_ACTION_DISABLE, ADELE, NULL, &r);
	CHECK_STR(r.method, "PATCH");
	CHECK_STR(r.url, "/users/" ADELE);
	CHECK_STR(r.body, "{\"accountEnabled\":false}");
	graph_action_request_free(&r);
	graph_action_request_make(GRAPH_ACTION_ENABLE, "o'neil#1@contoso.com", NULL, &r);
	CHECK_STR(r.url, "/users/o%27neil%231@contoso.com");
	CHECK_STR(r.body, "{\"accountEnabled\":true}");
	graph_action_request_free(&r);
	graph_action_request_make(GRAPH_ACTION_REVOKE_SESSIONS, ADELE, NULL, &r);
	CHECK_STR(r.method, "POST");
	CHECK_STR(r.url, "/users/" ADELE "/revokeSignInSessions");
	CHECK(r.body == NULL);
	graph_action_request_free(&r);
	graph_action_request_make(GRAPH_ACTION_SET_PASSWORD, ADELE, "S3cret!pw\"x", &r);
	CHECK_STR(r.body, "{\"passwordProfile\":{\"password\":\"S3cret!pw\\\"x\",\"forceChangePasswordNextSignIn\":true}}");
	graph_action_request_free(&r);
	CHECK(r.body == NULL && r.url == NULL);
	graph_action_request_make(GRAPH_ACTION_SET_PASSWORD, ADELE, NULL, &r);
	CHECK_CONTAINS(r.body, "\"<new password>\"");
	graph_action_request_free(&r);
}

TEST(actions_forbidden_messages)
{
	struct err err;
	CHECK_EQ_INT(graph_action_forbidden_message(GRAPH_ACTION_REVOKE_SESSIONS, "adele@contoso.com", CONTOSO,
	                                            GRAPH_FORBIDDEN_PERMISSION, NULL, "https://login/x/adminconsent",
	                                            &err), -1);
	CHECK_CONTAINS(err.msg, "lacks the application permission User.RevokeSessions.All");
	CHECK_CONTAINS(err.msg, "https://login/x/adminconsent");
	CHECK(!strstr(err.msg, "administrator"));
	graph_action_forbidden_message(GRAPH_ACTION_DISABLE, "admin@contoso.com", CONTOSO, GRAPH_FORBIDDEN_ADMIN,
	                               "Global Administrator", NULL, &err);
	CHECK_CONTAINS(err.msg, "admin@contoso.com is an administrator (directory role: Global Administrator)");
	CHECK(!strstr(err.msg, "lacks"));
	graph_action_forbidden_message(GRAPH_ACTION_SET_PASSWORD, "x@contoso.com", CONTOSO, GRAPH_FORBIDDEN_UNSURE, NULL,
	                               NULL, &err);
	CHECK_CONTAINS(err.msg, "either the app lacks the application permission User-PasswordProfile.ReadWrite.All");
	CHECK_CONTAINS(err.msg, "or x@contoso.com is an administrator");
}

/* ---- passwords ------------------------------------------------------------ */

TEST(actions_password_generator)
{
	struct err err;
	char *prev = NULL;
	for (int i = 0; i < 200; i++) {
		char *pw = NULL;
		REQUIRE_OK(actions_password_generate(20, &pw, &err), &err);
		CHECK_EQ_INT(strlen(pw), 20);
		CHECK(strpbrk(pw, "ABCDEFGHJKLMNPQRSTUVWXYZ"));
		CHECK(strpbrk(pw, "abcdefghijkmnopqrstuvwxyz"));
		CHECK(strpbrk(pw, "23456789"));
		CHECK(strpbrk(pw, "!#$%&*+-=?@^_~"));
		CHECK(!strpbrk(pw, "0O1lI \"'\\"));
		if (prev) CHECK(strcmp(prev, pw) != 0);
		free(prev);
		prev = pw;
	}
	free(prev);
	char *pw = NULL;
	CHECK(actions_password_generate(8, &pw, &err) != 0);
	CHECK(pw == NULL);
	CHECK_CONTAINS(err.msg, "12..256");
}

/* ---- ticket subjects ------------------------------------------------------------ */

/* The action of a subject, checking the address and the name it gives
 * the user ("" when none); -9 when it names more than one address, -8
 * when the address or name is not the one expected. */
static int subject(const char *text, const char *want_address, const char *want_name)
{
	struct ticket_subject sub;
	actions_ticket_subject_parse(text, &sub);
	if (sub.several) return -9;
	if (strcmp(sub.address, want_address) != 0 || strcmp(sub.name, want_name) != 0) {
		fprintf(stderr, "    subject '%s': address '%s' name '%s', expected '%s' '%s'\n", text ? text : "(null)",
		        sub.address, sub.name, want_address, want_name);
		return -8;
	}
	return sub.action;
}

TEST(actions_ticket_subjects)
{
	/* the action alone: the ticket's contact is the user */
	CHECK_EQ_INT(subject("disable", "", ""), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("  Disable account  ", "", ""), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable: Jane left today", "", ""), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable sign-in (leaver)", "", ""), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Enable - back from leave", "", ""), GRAPH_ACTION_ENABLE);
	CHECK_EQ_INT(subject("Enable user \xE2\x80\x94 back from leave", "", ""), GRAPH_ACTION_ENABLE);
	CHECK_EQ_INT(subject("Revoke sessions: John's account is compromised", "", ""), GRAPH_ACTION_REVOKE_SESSIONS);
	CHECK_EQ_INT(subject("revoke-sessions", "", ""), GRAPH_ACTION_REVOKE_SESSIONS);
	CHECK_EQ_INT(subject("Revoke  sessions", "", ""), GRAPH_ACTION_REVOKE_SESSIONS);
	/* naming the user by address, before or in the free text */
	CHECK_EQ_INT(subject("Disable lucas.zbinden@contoso.com - he left today", "lucas.zbinden@contoso.com", ""),
	             GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable account of Lucas@Contoso.com.", "Lucas@Contoso.com", ""), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Revoke sessions for jane@contoso.com: phone stolen", "jane@contoso.com", ""),
	             GRAPH_ACTION_REVOKE_SESSIONS);
	/* an address after the separator names no user (the caller refuses one that is not the user acted on) */
	CHECK_EQ_INT(subject("Disable: leaver (lucas@contoso.com)", "", ""), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable jean-luc@contoso.com", "jean-luc@contoso.com", ""), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable Lucas Zbinden lucas@contoso.com", "lucas@contoso.com", "Lucas Zbinden"),
	             GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable Mia Nguyen <lucas@contoso.com>", "lucas@contoso.com", "Mia Nguyen"),
	             GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable a@contoso.com b@contoso.com", "", ""), -9);
	CHECK_EQ_INT(subject("Disable: a@contoso.com, b@contoso.com", "", ""), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable a@contoso.com: A@CONTOSO.COM left", "a@contoso.com", ""), GRAPH_ACTION_DISABLE);
	/* naming the user by name (the caller checks it is the ticket's contact) */
	CHECK_EQ_INT(subject("DISABLE jane", "", "jane"), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Enable Lucas, back from leave", "", "Lucas"), GRAPH_ACTION_ENABLE);
	CHECK_EQ_INT(subject("Disable account for Jean-Luc Picard - left", "", "Jean-Luc Picard"), GRAPH_ACTION_DISABLE);
	CHECK_EQ_INT(subject("Disable MFA prompts on Hannah's phone", "", "MFA prompts on Hannah's phone"),
	             GRAPH_ACTION_DISABLE);
	/* the addresses of the text after the separator are kept for the caller */
	struct ticket_subject sub;
	actions_ticket_subject_parse("Revoke sessions: phone stolen, reported by manager lucas@contoso.com", &sub);
	CHECK_EQ_INT(sub.action, GRAPH_ACTION_REVOKE_SESSIONS);
	CHECK_STR(sub.address, "");
	CHECK_EQ_INT(sub.ntext, 1);
	CHECK_STR(sub.text_address[0], "lucas@contoso.com");
	/* no action */
	CHECK_EQ_INT(subject("Disabled account cannot log in", "", ""), -1);
	CHECK_EQ_INT(subject("Please disable Jane", "", ""), -1);
	CHECK_EQ_INT(subject("Revoke", "", ""), -1);
	CHECK_EQ_INT(subject("", "", ""), -1);
	CHECK_EQ_INT(subject(NULL, "", ""), -1);
	/* a password is never set from a ticket: recognised (to refuse it) whatever follows */
	CHECK_EQ_INT(subject("Reset password for John", "", ""), GRAPH_ACTION_SET_PASSWORD);
	CHECK_EQ_INT(subject("set-password", "", ""), GRAPH_ACTION_SET_PASSWORD);
}

/* ---- policy hooks ------------------------------------------------------------------ */

static const char *const hooks_policy =
	"-- a policy with both hooks ]==] in a comment\n"
	"return {\n"
	"  groups = { 'Admins' },\n"
	"  include = function(u) return true end,\n"
	"  protect = function(u, t)\n"
	"    if u['@entrasync.hook'] ~= nil then return false, 'member ' .. u['@entrasync.hook'] end\n"
	"    if u.groups.Admins then return true, 'admin group of ' .. t.name end\n"
	"    if u.userPrincipalName == 'boom@contoso.com' then local x = nil; return x.y end\n"
	"    if u.userPrincipalName == 'odd@contoso.com' then return 'yes' end\n"
	"    return false\n"
	"  end,\n"
	"  allow_action = function(action, u, t)\n"
	"    if t.name ~= 'Contoso' then error('no tenant table') end\n"
	"    if action == 'disable' and (u.licenses[1] or {}).part == 'SPE_E3' then return true end\n"
	"    return false, 'no ' .. action .. ' for ' .. (u.domain or '?')\n"
	"  end,\n"
	"}\n";

/* allow_action's fourth argument: who asked (the ticket's contact). */
TEST(actions_hook_allow_sees_the_requester)
{
	struct err err;
	const char *path = t_write_file("req.lua",
		"return {\n"
		"  include = function(u) return true end,\n"
		"  allow_action = function(action, u, t, req)\n"
		"    if not req then return false, 'nobody asked' end\n"
		"    if req.self then return true end\n"
		"    if req.upn == 'boss@contoso.com' then return true end\n"
		"    return false, 'contact ' .. req.contact_id .. ' (' .. tostring(req.upn) .. ') asked for someone else'\n"
		"  end,\n"
		"}\n");
	struct script_tenant st = { .id = CONTOSO, .name = "Contoso" };
	struct actions_hooks *h = NULL;
	REQUIRE_OK(actions_hooks_load(path, NULL, &st, &h, &err), &err);
	const char *json = "{\"userPrincipalName\":\"mia@contoso.com\"}";
	struct policy_user u = { .json = json, .len = strlen(json) };
	struct actions_verdict v;
	REQUIRE_OK(actions_hook_allow(h, "disable", &u, NULL, &v, &err), &err);
	CHECK(!v.yes);
	CHECK_STR(v.reason, "nobody asked");
	actions_verdict_free(&v);
	struct policy_requester self = { .contact_id = 1001, .self = true, .user_id = "u1", .upn = "mia@contoso.com" };
	REQUIRE_OK(actions_hook_allow(h, "disable", &u, &self, &v, &err), &err);
	CHECK(v.yes);
	actions_verdict_free(&v);
	struct policy_requester boss = { .contact_id = 1002, .user_id = "u2", .upn = "boss@contoso.com" };
	REQUIRE_OK(actions_hook_allow(h, "disable", &u, &boss, &v, &err), &err);
	CHECK(v.yes);
	actions_verdict_free(&v);
	struct policy_requester other = { .contact_id = 1003 };
	REQUIRE_OK(actions_hook_allow(h, "disable", &u, &other, &v, &err), &err);
	CHECK(!v.yes);
	CHECK_STR(v.reason, "contact 1003 (nil) asked for someone else");
	actions_verdict_free(&v);
	actions_hooks_free(h);
}

TEST(actions_hooks_protect_and_allow)
{
	struct err err;
	const char *path = t_write_file("hooks.lua", hooks_policy);
	struct script_tenant st = { .id = CONTOSO, .name = "Contoso" };
	struct actions_hooks *h = NULL;
	REQUIRE_OK(actions_hooks_load(path, NULL, &st, &h, &err), &err);
	CHECK(actions_hooks_has_protect(h));
	CHECK(actions_hooks_has_allow(h));
	const char *admins[] = { "Admins", "g-1" };
	const char *json = "{\"userPrincipalName\":\"a@contoso.com\","
	                   "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"}]}";
	struct policy_user u = { .json = json, .len = strlen(json), .groups = admins, .ngroups = 2 };
	struct actions_verdict v;
	REQUIRE_OK(actions_hook_protect(h, &u, &v, &err), &err);
	CHECK(v.yes);
	CHECK_STR(v.reason, "admin group of Contoso");
	actions_verdict_free(&v);
	u.ngroups = 0;
	REQUIRE_OK(actions_hook_protect(h, &u, &v, &err), &err);
	CHECK(!v.yes);
	CHECK(v.reason == NULL);
	REQUIRE_OK(actions_hook_allow(h, "disable", &u, NULL, &v, &err), &err);
	CHECK(v.yes);
	REQUIRE_OK(actions_hook_allow(h, "enable", &u, NULL, &v, &err), &err);
	CHECK(!v.yes);
	CHECK_STR(v.reason, "no enable for contoso.com");
	actions_verdict_free(&v);
	/* errors: file:line of the real policy, and the hook's name */
	cJSON *boom = cJSON_Parse("{\"userPrincipalName\":\"boom@contoso.com\"}");
	struct policy_user ub = { .graph = boom };
	CHECK(actions_hook_protect(h, &ub, &v, &err) != 0);
	CHECK_CONTAINS(err.msg, "in protect()");
	CHECK_CONTAINS(err.msg, "hooks.lua:8:");
	cJSON_Delete(boom);
	cJSON *odd = cJSON_Parse("{\"userPrincipalName\":\"odd@contoso.com\"}");
	struct policy_user uo = { .graph = odd };
	CHECK(actions_hook_protect(h, &uo, &v, &err) != 0);
	CHECK_CONTAINS(err.msg, "protect() must return true or false");
	/* no member name is reserved: the caller's members reach the hook as they are */
	cJSON_AddStringToObject(odd, "@entrasync.hook", "allow_action");
	REQUIRE_OK(actions_hook_protect(h, &uo, &v, &err), &err);
	CHECK(!v.yes);
	CHECK_STR(v.reason, "member allow_action");
	actions_verdict_free(&v);
	CHECK(cJSON_GetObjectItem(odd, "@entrasync.hook") != NULL);
	cJSON_Delete(odd);
	actions_hooks_free(h);
}

/* The first line of an error (the rest is a traceback). */
static const char *first_line(const char *msg)
{
	static char line[512];
	snprintf(line, sizeof line, "%.*s", (int)strcspn(msg, "\n"), msg);
	return line;
}

static const char *const limits_policy =
	"return {\n"
	"  include = function(u) return true end,\n"
	"  protect = function(u, t)\n"
	"    if u.userPrincipalName == 'loop@contoso.com' then while true do end end\n"
	"    if u.userPrincipalName == 'big@contoso.com' then local s = {} for i = 1, 1e8 do s[i] = ('x'):rep(1e5) .. i end end\n"
	"    if u.userPrincipalName == 'io@contoso.com' then return io.open('/etc/passwd') end\n"
	"    if u.userPrincipalName == 'nil@contoso.com' then return end\n"
	"    return true, 42\n"
	"  end,\n"
	"  allow_action = function(action, u, t)\n"
	"    if action == 'boom' then error('no ' .. action .. ' for ' .. u.userPrincipalName) end\n"
	"    return 'maybe'\n"
	"  end,\n"
	"}\n";

/* Calls protect on a user with that userPrincipalName. */
static int protect_upn(struct actions_hooks *h, const char *upn, struct actions_verdict *v, struct err *err)
{
	char json[128];
	snprintf(json, sizeof json, "{\"userPrincipalName\":\"%s\"}", upn);
	struct policy_user u = { .json = json, .len = strlen(json) };
	return actions_hook_protect(h, &u, v, err);
}

/* Each hook failure names the hook and the policy's file:line; the budget,
 * the memory cap and the sandbox hold inside hooks, and the state stays
 * usable after each failure. */
TEST(actions_hooks_errors_and_limits)
{
	struct err err;
	char want[600];
	const char *path = t_write_file("limits.lua", limits_policy);
	struct script_limits lim = { .instructions = 100000, .memory_bytes = (size_t)2 << 20 };
	struct script_tenant st = { .id = CONTOSO, .name = "Contoso" };
	struct actions_hooks *h = NULL;
	REQUIRE_OK(actions_hooks_load(path, &lim, &st, &h, &err), &err);
	struct actions_verdict v;
	const char *json = "{\"userPrincipalName\":\"a@contoso.com\"}";
	struct policy_user u = { .json = json, .len = strlen(json) };

	CHECK(actions_hook_allow(h, "boom", &u, NULL, &v, &err) != 0);
	snprintf(want, sizeof want, "policy error in allow_action(): %s:11: no boom for a@contoso.com", path);
	CHECK_STR(first_line(err.msg), want);
	CHECK(!v.yes && v.reason == NULL);
	CHECK(actions_hook_allow(h, "disable", &u, NULL, &v, &err) != 0);
	snprintf(want, sizeof want, "%s:10: allow_action() must return true or false [, reason], got string", path);
	CHECK_STR(err.msg, want);

	CHECK(protect_upn(h, "loop@contoso.com", &v, &err) != 0);
	snprintf(want, sizeof want, "instruction budget exceeded (100000 instructions) in protect() at %s:4", path);
	CHECK_STR(first_line(err.msg), want);
	REQUIRE_OK(protect_upn(h, "a@contoso.com", &v, &err), &err);   /* a fresh budget for the next call */
	CHECK(v.yes);
	CHECK_STR(v.reason, "42");
	actions_verdict_free(&v);

	CHECK(protect_upn(h, "big@contoso.com", &v, &err) != 0);
	CHECK_CONTAINS(first_line(err.msg), "memory limit exceeded (2 MiB) in protect()");
	REQUIRE_OK(protect_upn(h, "a@contoso.com", &v, &err), &err);
	CHECK(v.yes);
	actions_verdict_free(&v);

	CHECK(protect_upn(h, "io@contoso.com", &v, &err) != 0);
	snprintf(want, sizeof want, "policy error in protect(): %s:6: 'io' is not available in the policy sandbox", path);
	CHECK_STR(first_line(err.msg), want);

	v.yes = true;
	REQUIRE_OK(protect_upn(h, "nil@contoso.com", &v, &err), &err);   /* nil is no */
	CHECK(!v.yes);
	CHECK(v.reason == NULL);

	struct policy_user bad = { .json = "{\"userPrincipalName\":", .len = 21 };
	CHECK(actions_hook_protect(h, &bad, &v, &err) != 0);
	CHECK_CONTAINS(err.msg, "user in protect(): invalid JSON at byte offset 21");
	actions_hooks_free(h);
}

/* The hooks need no temporary file: they load with TMPDIR unusable. */
TEST(actions_hooks_no_temporary_file)
{
	struct err err;
	const char *path = t_write_file("tmpless.lua", hooks_policy);
	char *saved = t_env_swap("TMPDIR", "/nonexistent/entrasync-test");
	struct actions_hooks *h = NULL;
	int rc = actions_hooks_load(path, NULL, NULL, &h, &err);
	t_env_restore("TMPDIR", saved);
	REQUIRE_OK(rc, &err);
	CHECK(actions_hooks_has_protect(h));
	actions_hooks_free(h);
}

TEST(actions_hooks_absent)
{
	struct err err;
	struct actions_hooks *h = NULL;
	const char *path = t_write_file("plain.lua", "return { include = function(u) return true end }\n");
	REQUIRE_OK(actions_hooks_load(path, NULL, NULL, &h, &err), &err);
	CHECK(!actions_hooks_has_protect(h));
	CHECK(!actions_hooks_has_allow(h));
	struct policy_user u = { .json = "{}", .len = 2 };
	struct actions_verdict v = { .yes = true };
	REQUIRE_OK(actions_hook_protect(h, &u, &v, &err), &err);
	CHECK(!v.yes);
	REQUIRE_OK(actions_hook_allow(h, "disable", &u, NULL, &v, &err), &err);
	CHECK(!v.yes);
	actions_hooks_free(h);
	REQUIRE_OK(actions_hooks_load(NULL, NULL, NULL, &h, &err), &err);
	CHECK(!actions_hooks_has_protect(h));
	actions_hooks_free(h);
	const char *bad = t_write_file("bad.lua", "return { include = function(u) return true end, protekt = 1 }\n");
	CHECK(actions_hooks_load(bad, NULL, NULL, &h, &err) != 0);
	CHECK(h == NULL);
	CHECK_CONTAINS(err.msg, "protekt");
}

/* ---- a store with two tenants ---------------------------------------------------- */

static const char *const demo_policy =
	"return {\n"
	"  include = function(u) return true end,\n"
	"  protect = function(u, t) if u.userPrincipalName:match('^admin@') then return true, 'break-glass' end\n"
	"    return false end,\n"
	"}\n";

struct fixture {
	struct store *st;
	struct config cfg;
	struct config_tenant tenants[2];
	struct actions_env env;
};

static char *user_json(const char *upn, const char *mail, bool enabled)
{
	return xasprintf("{\"userPrincipalName\":\"%s\",\"mail\":%s%s%s,\"displayName\":\"%s\",\"accountEnabled\":%s,"
	                 "\"department\":\"Sales\",\"officeLocation\":\"B12\",\"assignedLicenses\":[{\"skuId\":\"%s\"}]}",
	                 upn, mail ? "\"" : "", mail ? mail : "null", mail ? "\"" : "", upn, enabled ? "true" : "false", E3);
}

static int fixture_open(struct fixture *fx, struct err *err)
{
	memset(fx, 0, sizeof *fx);
	char *db = xasprintf("%s/actions/es.db", t_tmpdir());
	int rc = store_open(db, &fx->st, err);
	free(db);
	if (rc) return -1;
	/* config strings are char * (owned by a loaded config): static copies here */
	static char contoso_id[] = CONTOSO, fabrikam_id[] = FABRIKAM, contoso[] = "Contoso", fabrikam[] = "Fabrikam";
	static char policy[512];
	snprintf(policy, sizeof policy, "%s", t_write_file("demo.lua", demo_policy));
	fx->tenants[0] = (struct config_tenant){ .id = contoso_id, .name = contoso, .policy = policy };
	fx->tenants[1] = (struct config_tenant){ .id = fabrikam_id, .name = fabrikam };
	fx->cfg.tenants = fx->tenants;
	fx->cfg.ntenants = 2;
	fx->env = (struct actions_env){ .cfg = &fx->cfg, .st = fx->st, .actor = "operator:tester" };
	struct { const char *tenant, *oid, *upn, *mail; bool removed; } users[] = {
		{ CONTOSO, ADELE, "adele.vance@contoso.com", "Adele.Vance@contoso.com", false },
		{ CONTOSO, ADMIN, "admin@contoso.com", NULL, false },
		{ CONTOSO, LEE1, "lee.gu@contoso.com", "lee.gu@contoso.com", false },
		{ FABRIKAM, LEE2, "lee.gu@fabrikam.com", "lee.gu@contoso.com", false },
		{ CONTOSO, GONE, "gone@contoso.com", "gone@contoso.com", true },
	};
	for (size_t i = 0; i < 2; i++)
		if (store_tenant_put(fx->st, &(struct store_tenant){ .id = fx->tenants[i].id, .name = fx->tenants[i].name,
		                                                     .last_pull_at = "2026-11-26T08:00:00Z" }, err) != 0)
			return -1;
	for (size_t i = 0; i < ARRAY_LEN(users); i++) {
		char *j = user_json(users[i].upn, users[i].mail, true);
		rc = store_user_put(fx->st, users[i].tenant, users[i].oid, j, err);
		free(j);
		if (rc) return -1;
		if (users[i].removed && store_user_mark_removed(fx->st, users[i].tenant, users[i].oid, "deleted", err))
			return -1;
	}
	if (store_group_put(fx->st, CONTOSO, "g-staff", "All Staff", err) ||
	    store_group_member_put(fx->st, CONTOSO, "g-staff", ADELE, err))
		return -1;
	if (store_link_put(fx->st, &(struct store_link){ .tenant_id = CONTOSO, .object_id = ADELE, .contact_id = 1001,
	                                                 .customer_id = 101,
	                                                 .fields = "{\"email\":\"adele@old.example\"}" }, err) ||
	    store_link_put(fx->st, &(struct store_link){ .tenant_id = FABRIKAM, .object_id = LEE2, .contact_id = 1001,
	                                                 .customer_id = 102 }, err) ||
	    store_link_put(fx->st, &(struct store_link){ .tenant_id = CONTOSO, .object_id = LEE1, .contact_id = 1004,
	                                                 .customer_id = 101 }, err))
		return -1;
	return 0;
}

static void fixture_close(struct fixture *fx)
{
	store_close(fx->st);
}

/* Audit rows of the fixture as "action|actor|result" lines. */
static int audit_line(const struct store_audit *a, void *ud)
{
	buf_printf(ud, "%s|%s|%s|%lld\n", a->action, a->actor, a->result, a->contact_id);
	return 0;
}

static char *audit_dump(struct fixture *fx)
{
	struct buf b = {0};
	struct err err;
	store_audit_each(fx->st, NULL, audit_line, &b, &err);
	return buf_steal(&b);
}

TEST(actions_resolve_targets)
{
	struct err err;
	struct fixture fx;
	REQUIRE_OK(fixture_open(&fx, &err), &err);
	struct actions_target t;
	/* by e-mail (any case), by UPN, by object id, by the e-mail last written to the contact */
	REQUIRE_OK(actions_resolve(&fx.env, "adele.vance@CONTOSO.com", NULL, &t, &err), &err);
	CHECK_STR(t.object_id, ADELE);
	CHECK_STR(t.label, "adele.vance@contoso.com");
	CHECK_EQ_INT(t.link.contact_id, 1001);
	CHECK_STR(t.last_pull_at, "2026-11-26T08:00:00Z");
	CHECK_EQ_INT(t.ngroups, 2);
	CHECK(!t.removed);
	actions_target_free(&t);
	REQUIRE_OK(actions_resolve(&fx.env, ADMIN, NULL, &t, &err), &err);
	CHECK_STR(t.label, "admin@contoso.com");
	CHECK_EQ_INT(t.link.contact_id, 0);
	actions_target_free(&t);
	REQUIRE_OK(actions_resolve(&fx.env, "adele@old.example", NULL, &t, &err), &err);
	CHECK_STR(t.object_id, ADELE);
	actions_target_free(&t);
	/* a contact id linked in two customers: ambiguous with the candidates, unless --tenant */
	CHECK_EQ_INT(actions_resolve(&fx.env, "1001", NULL, &t, &err), ACTIONS_AMBIGUOUS);
	CHECK_CONTAINS(err.msg, "ambiguous: it matches 2 users");
	CHECK_CONTAINS(err.msg, "Contoso " ADELE " adele.vance@contoso.com (contact 1001)");
	CHECK_CONTAINS(err.msg, "Fabrikam " LEE2);
	CHECK_CONTAINS(t.candidates, "adele.vance@contoso.com (Contoso)");   /* the same on one line, for a ticket */
	actions_target_free(&t);
	REQUIRE_OK(actions_resolve(&fx.env, "1001", "Fabrikam", &t, &err), &err);
	CHECK_STR(t.object_id, LEE2);
	CHECK(t.tenant == &fx.tenants[1]);
	actions_target_free(&t);
	REQUIRE_OK(actions_resolve(&fx.env, "1004", NULL, &t, &err), &err);
	CHECK_STR(t.object_id, LEE1);
	actions_target_free(&t);
	/* the same mail in two tenants */
	CHECK_EQ_INT(actions_resolve(&fx.env, "lee.gu@contoso.com", NULL, &t, &err), ACTIONS_AMBIGUOUS);
	CHECK_CONTAINS(err.msg, LEE1);
	CHECK_CONTAINS(err.msg, LEE2);
	actions_target_free(&t);
	REQUIRE_OK(actions_resolve(&fx.env, "lee.gu@contoso.com", CONTOSO, &t, &err), &err);
	CHECK_STR(t.object_id, LEE1);
	actions_target_free(&t);
	/* removed users are found (show), marked removed */
	REQUIRE_OK(actions_resolve(&fx.env, "gone@contoso.com", NULL, &t, &err), &err);
	CHECK(t.removed);
	actions_target_free(&t);
	/* nothing, malformed, unknown tenant */
	CHECK_EQ_INT(actions_resolve(&fx.env, "nobody@contoso.com", NULL, &t, &err), ACTIONS_USAGE);
	CHECK_CONTAINS(err.msg, "no user matches 'nobody@contoso.com'");
	CHECK_EQ_INT(actions_resolve(&fx.env, "9999", NULL, &t, &err), ACTIONS_USAGE);
	CHECK_EQ_INT(actions_resolve(&fx.env, "Adele Vance", NULL, &t, &err), ACTIONS_USAGE);
	CHECK_CONTAINS(err.msg, "is not a Syncro contact id, an e-mail, a UPN or an Entra object id");
	CHECK_EQ_INT(actions_resolve(&fx.env, ADELE, "Nowhere", &t, &err), ACTIONS_USAGE);
	CHECK_CONTAINS(err.msg, "tenant 'Nowhere' is not in the config");
	fixture_close(&fx);
}

static bool answer_no(const char *q, void *ud)
{
	(*(int *)ud)++;
	return strstr(q, "disable the Microsoft account adele.vance@contoso.com (Contoso)?") == NULL;
}

static bool answer_yes(const char *q, void *ud)
{
	(*(int *)ud)++;
	return true;
}

TEST(actions_perform_guards)
{
	struct err err;
	struct fixture fx;
	REQUIRE_OK(fixture_open(&fx, &err), &err);
	struct actions_target adele, admin, gone;
	REQUIRE_OK(actions_resolve(&fx.env, ADELE, NULL, &adele, &err), &err);
	REQUIRE_OK(actions_resolve(&fx.env, ADMIN, NULL, &admin, &err), &err);
	REQUIRE_OK(actions_resolve(&fx.env, GONE, NULL, &gone, &err), &err);
	struct actions_outcome oc;
	/* dry run: the request, no audit */
	CHECK_EQ_INT(actions_perform(&fx.env, &adele, &(struct actions_opts){ .action = GRAPH_ACTION_DISABLE,
	                                                                      .dry_run = true }, &oc), ACTIONS_OK);
	CHECK_STR(oc.request.method, "PATCH");
	CHECK_CONTAINS(oc.message, "would send PATCH /users/" ADELE " {\"accountEnabled\":false}");
	CHECK_CONTAINS(oc.message, "needs User.EnableDisableAccount.All + User.Read.All");
	actions_outcome_free(&oc);
	char *dump = audit_dump(&fx);
	CHECK_STR(dump, "");
	free(dump);
	/* protected by the policy, removed user */
	CHECK_EQ_INT(actions_perform(&fx.env, &admin, &(struct actions_opts){ .action = GRAPH_ACTION_DISABLE,
	                                                                      .yes = true }, &oc), ACTIONS_REFUSED);
	CHECK_CONTAINS(oc.message, "protected by the tenant's policy: break-glass");
	actions_outcome_free(&oc);
	CHECK_EQ_INT(actions_perform(&fx.env, &gone, &(struct actions_opts){ .action = GRAPH_ACTION_ENABLE }, &oc),
	             ACTIONS_REFUSED);
	CHECK_CONTAINS(oc.message, "removed from Entra");
	actions_outcome_free(&oc);
	/* confirmation: no terminal → --yes needed; a "no" cancels; enable asks nothing */
	CHECK_EQ_INT(actions_perform(&fx.env, &adele, &(struct actions_opts){ .action = GRAPH_ACTION_DISABLE }, &oc),
	             ACTIONS_USAGE);
	CHECK_CONTAINS(oc.message, "pass --yes");
	actions_outcome_free(&oc);
	int asked = 0;
	CHECK_EQ_INT(actions_perform(&fx.env, &adele, &(struct actions_opts){ .action = GRAPH_ACTION_DISABLE,
	                                                                      .confirm = answer_no, .confirm_ud = &asked },
	                             &oc), ACTIONS_REFUSED);
	CHECK_EQ_INT(asked, 1);
	CHECK_CONTAINS(oc.message, "cancelled at the prompt");
	actions_outcome_free(&oc);
	/* confirmed (or --yes, or not destructive) → on to Graph (none here) */
	CHECK_EQ_INT(actions_perform(&fx.env, &adele, &(struct actions_opts){ .action = GRAPH_ACTION_REVOKE_SESSIONS,
	                                                                      .confirm = answer_yes, .confirm_ud = &asked },
	                             &oc), ACTIONS_ERROR);
	CHECK_EQ_INT(asked, 2);
	actions_outcome_free(&oc);
	CHECK_EQ_INT(actions_perform(&fx.env, &adele, &(struct actions_opts){ .action = GRAPH_ACTION_ENABLE,
	                                                                      .confirm = answer_yes, .confirm_ud = &asked },
	                             &oc), ACTIONS_ERROR);
	CHECK_EQ_INT(asked, 2);
	actions_outcome_free(&oc);
	dump = audit_dump(&fx);
	CHECK_CONTAINS(dump, "user.disable|operator:tester|refused: disable of admin@contoso.com (Contoso) refused: the "
	                     "user is protected by the tenant's policy: break-glass|0\n");
	CHECK_CONTAINS(dump, "user.enable|operator:tester|refused: enable of gone@contoso.com");
	CHECK_CONTAINS(dump, "user.disable|operator:tester|refused: disable of adele.vance@contoso.com (Contoso) not "
	                     "confirmed");
	CHECK_CONTAINS(dump, "user.disable|operator:tester|cancelled: disable of adele.vance@contoso.com (Contoso) "
	                     "cancelled at the prompt|1001\n");
	CHECK_CONTAINS(dump, "user.revoke-sessions|operator:tester|failed: revoke-sessions: no Graph client|1001\n");
	free(dump);
	actions_target_free(&adele);
	actions_target_free(&admin);
	actions_target_free(&gone);
	fixture_close(&fx);
}

TEST(actions_show_json)
{
	struct err err;
	struct fixture fx;
	REQUIRE_OK(fixture_open(&fx, &err), &err);
	struct actions_target t;
	REQUIRE_OK(actions_resolve(&fx.env, "adele.vance@contoso.com", NULL, &t, &err), &err);
	for (int i = 0; i < 12; i++)
		REQUIRE_OK(store_audit_append(fx.st, &(struct store_audit){ .tenant_id = CONTOSO, .object_id = ADELE,
		                                                            .contact_id = 1001, .action = "update",
		                                                            .actor = "entrasync", .result = "ok",
		                                                            .after = "{\"title\":\"x\"}" }, NULL, &err), &err);
	REQUIRE_OK(store_audit_append(fx.st, &(struct store_audit){ .tenant_id = CONTOSO, .object_id = LEE1,
	                                                            .action = "update", .result = "ok" }, NULL, &err), &err);
	cJSON *o = NULL;
	REQUIRE_OK(actions_show(&fx.env, &t, 5, &o, &err), &err);
	char *s = cJSON_PrintUnformatted(o);
	CHECK_CONTAINS(s, "\"userPrincipalName\":\"adele.vance@contoso.com\"");
	CHECK_CONTAINS(s, "\"enabled\":true");
	CHECK_CONTAINS(s, "\"department\":\"Sales\",\"office\":\"B12\"");
	CHECK_CONTAINS(s, "\"name\":\"Microsoft 365 E3\"");
	CHECK_CONTAINS(s, "\"groups\":[{\"name\":\"All Staff\",\"id\":\"g-staff\"}]");
	CHECK_CONTAINS(s, "\"last_pull\":\"2026-11-26T08:00:00Z\"");
	CHECK_CONTAINS(s, "\"link\":{\"contact_id\":1001,\"customer_id\":101,\"fields\":{\"email\":\"adele@old.example\"}");
	CHECK_CONTAINS(s, "\"protected\":false");
	CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(o, "audit")), 5);
	CHECK_CONTAINS(s, "\"after\":{\"title\":\"x\"}");
	free(s);
	cJSON_Delete(o);
	actions_target_free(&t);
	REQUIRE_OK(actions_resolve(&fx.env, ADMIN, NULL, &t, &err), &err);
	REQUIRE_OK(actions_show(&fx.env, &t, 5, &o, &err), &err);
	CHECK(cJSON_IsTrue(cJSON_GetObjectItem(o, "protected")));
	CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(o, "protected_reason")), "break-glass");
	CHECK(cJSON_IsNull(cJSON_GetObjectItem(o, "link")));
	CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(o, "audit")), 0);
	cJSON_Delete(o);
	actions_target_free(&t);
	fixture_close(&fx);
}

/* ---- ticket state ------------------------------------------------------------------ */

static int count_open(const struct store_ticket_action *a, void *ud)
{
	buf_printf(ud, "%lld:%s;", a->ticket_id, a->state);
	return 0;
}

TEST(actions_ticket_state_store)
{
	struct err err;
	struct fixture fx;
	REQUIRE_OK(fixture_open(&fx, &err), &err);
	struct store_actions *sa = NULL;
	REQUIRE_OK(store_actions_open(fx.st, &sa, &err), &err);
	bool claimed = false;
	REQUIRE_OK(store_ticket_action_claim(sa, &(struct store_ticket_action){ .ticket_id = 5001, .customer_id = 101,
	                                                                         .contact_id = 1001, .tenant_id = CONTOSO,
	                                                                         .object_id = ADELE, .label = "adele",
	                                                                         .action = "disable" }, &claimed, &err),
	           &err);
	CHECK(claimed);
	REQUIRE_OK(store_ticket_action_claim(sa, &(struct store_ticket_action){ .ticket_id = 5001, .action = "enable" },
	                                     &claimed, &err), &err);
	CHECK(!claimed);
	REQUIRE_OK(store_ticket_action_claim(sa, &(struct store_ticket_action){ .ticket_id = 5002, .state = "acted",
	                                                                         .outcome = "refused",
	                                                                         .message = "no contact" }, &claimed,
	                                     &err), &err);
	struct store_ticket_action a;
	REQUIRE_OK(store_ticket_action_get(sa, 5001, &a, &err), &err);
	CHECK_STR(a.action, "disable");
	CHECK_STR(a.state, "intent");
	CHECK(a.outcome == NULL && a.attempted_at == NULL);
	CHECK_EQ_INT(a.attempts, 0);
	store_ticket_action_free(&a);
	REQUIRE_OK(store_ticket_action_attempt(sa, 5001, &err), &err);
	REQUIRE_OK(store_ticket_action_set(sa, 5001, "acted", "ok", "disabled adele", &err), &err);
	REQUIRE_OK(store_ticket_action_get(sa, 5001, &a, &err), &err);
	CHECK_STR(a.state, "acted");
	CHECK_STR(a.outcome, "ok");
	CHECK_EQ_INT(a.attempts, 1);
	CHECK(a.attempted_at != NULL);
	store_ticket_action_free(&a);
	struct buf open = {0};
	REQUIRE_OK(store_ticket_action_each_open(sa, count_open, &open, &err), &err);
	CHECK_STR(open.data, "5001:acted;5002:acted;");
	REQUIRE_OK(store_ticket_action_set(sa, 5001, "done", NULL, NULL, &err), &err);
	REQUIRE_OK(store_ticket_action_get(sa, 5001, &a, &err), &err);
	CHECK_STR(a.message, "disabled adele");   /* NULL keeps */
	store_ticket_action_free(&a);
	CHECK_EQ_INT(store_ticket_action_get(sa, 9999, &a, &err), STORE_NOTFOUND);
	/* a bad state is refused by the table */
	CHECK(store_ticket_action_set(sa, 5002, "sideways", NULL, NULL, &err) != 0);
	store_actions_close(sa);
	/* a second open finds the table (and its rows) as they were */
	REQUIRE_OK(store_actions_open(fx.st, &sa, &err), &err);
	buf_reset(&open);
	REQUIRE_OK(store_ticket_action_each_open(sa, count_open, &open, &err), &err);
	CHECK_STR(open.data, "5002:acted;");
	buf_free(&open);
	store_actions_close(sa);
	fixture_close(&fx);
}

TEST(actions_ticket_json)
{
	struct err err;
	struct syncro_open_ticket t;
	cJSON *o = cJSON_Parse("{\"ticket\":{\"id\":5003,\"number\":1001,\"subject\":\"Disable: Jane\",\"customer_id\":101,"
	                       "\"contact_id\":1002,\"problem_type\":\"Microsoft action\",\"status\":\"New\"}}");
	REQUIRE_OK(syncro_open_ticket_from_json(o, &t, &err), &err);
	CHECK_EQ_INT(t.id, 5003);
	CHECK_STR(t.number, "1001");
	CHECK_EQ_INT(t.contact_id, 1002);
	CHECK_STR(t.subject, "Disable: Jane");
	CHECK_STR(t.problem_type, "Microsoft action");
	syncro_open_ticket_free(&t);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"id\":\"77\",\"contact_id\":null,\"subject\":null}");
	REQUIRE_OK(syncro_open_ticket_from_json(o, &t, &err), &err);
	CHECK_EQ_INT(t.id, 77);
	CHECK_EQ_INT(t.contact_id, 0);
	CHECK(t.subject == NULL);
	syncro_open_ticket_free(&t);
	cJSON_Delete(o);
	o = cJSON_Parse("{\"subject\":\"x\"}");
	CHECK(syncro_open_ticket_from_json(o, &t, &err) != 0);
	cJSON_Delete(o);
}
