/* test_script — the sandboxed Lua host (src/script/script.c): instruction and
 * memory limits (also through pcall/xpcall) after which the process and
 * other states carry on, strict globals, print routing, policy loading
 * errors (unknown key with line and suggestion, wrong types, syntax, missing
 * file, non-table), and include/contact evaluation on sample users. */
#include "t.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "util/log.h"
#include "script/script.h"

static struct script *new_state(long long instructions, size_t memory)
{
	struct script_limits lim = { .instructions = instructions, .memory_bytes = memory };
	struct script *s = NULL;
	struct err err;
	if (script_new(&lim, &s, &err) != 0) t_fail(__FILE__, __LINE__, "script_new: %s", err.msg);
	return s;
}

/* A trivial call proves the state is usable. */
static void check_state_works(struct script *s)
{
	struct err err;
	CHECK_OK(script_run_string(s, "local t = {} for i = 1, 1000 do t[i] = ('x'):rep(10) end assert(#t == 1000)",
	                           "ok.lua", &err), &err);
	CHECK_EQ_INT(script_last_fail(s), SCRIPT_OK);
}

/* Runs code that must fail with kind `want`, message containing `msg`;
 * then checks the same state and a fresh one still work. */
static void check_limit(struct script *s, const char *code, enum script_fail want, const char *msg)
{
	struct err err;
	CHECK(script_run_string(s, code, "bomb.lua", &err) != 0);
	CHECK_EQ_INT(script_last_fail(s), want);
	CHECK_CONTAINS(err.msg, msg);
	check_state_works(s);
	struct script *fresh = new_state(0, 0);
	if (fresh) check_state_works(fresh);
	script_free(fresh);
}

/* A state (default limits) with the policy text loaded from DIR/name, or
 * NULL after reporting the failure at the caller's line. */
#define POLICY_STATE(name, text) policy_state_at(__LINE__, name, text)
static struct script *policy_state_at(int line, const char *name, const char *text)
{
	struct err err = {{0}};
	struct script *s = new_state(0, 0);
	const char *path = t_write_file(name, text);
	if (!s || !path || script_policy_load(s, path, &err) != 0) {
		t_fail(__FILE__, line, "loading %s: %s", name, err.msg);
		script_free(s);
		return NULL;
	}
	return s;
}

static int eval_json(struct script *s, const char *json, struct policy_decision *d, struct err *err)
{
	struct policy_user u = { .json = json, .len = strlen(json) };
	return script_policy_eval(s, &u, d, err);
}

/* Evaluates the user JSON with s's policy and checks include's answer:
 * include true, false or EVAL_ANY (not checked), reason (NULL = none
 * given); a user left out gets no contact field. Failures are reported at
 * the caller's line. */
#define EVAL_ANY (-1)
#define CHECK_EVAL(s, json, include, reason) check_eval_at(__LINE__, s, json, include, reason)
static void check_eval_at(int line, struct script *s, const char *json, int include, const char *reason)
{
	struct err err;
	struct policy_decision d;
	if (eval_json(s, json, &d, &err) != 0) {
		t_fail(__FILE__, line, "evaluating %s: %s", json, err.msg);
		return;
	}
	if (include != EVAL_ANY && d.include != include) t_fail(__FILE__, line, "include: %d, want %d", d.include, include);
	if (reason ? !d.reason || strcmp(d.reason, reason) != 0 : d.reason != NULL)
		t_fail(__FILE__, line, "reason: \"%s\", want \"%s\"", d.reason ? d.reason : "(null)",
		       reason ? reason : "(null)");
	for (int i = 0; i < POLICY_NFIELDS && !d.include; i++)
		if (d.field[i]) t_fail(__FILE__, line, "contact field %s set for a user left out", policy_contact_field_names[i]);
	policy_decision_free(&d);
}

TEST(script_budget_infinite_loops)
{
	struct script *s = new_state(100000, 0);
	REQUIRE(s);
	check_limit(s, "while true do end", SCRIPT_FAIL_BUDGET,
	            "instruction budget exceeded (100000 instructions) at bomb.lua:1");
	check_limit(s, "local ok, e = pcall(function() while true do end end)\nwhile true do end", SCRIPT_FAIL_BUDGET,
	            "instruction budget exceeded (100000 instructions) at bomb.lua:1");
	/* pcall cannot swallow the overrun: the code after it never runs */
	check_limit(s, "for i = 1, 100 do pcall(function() while true do end end) end\nerror('survived pcall')",
	            SCRIPT_FAIL_BUDGET, "instruction budget exceeded");
	check_limit(s, "local ok = xpcall(function() while true do end end, function(m) return m end)\n"
	               "error('survived xpcall')", SCRIPT_FAIL_BUDGET, "instruction budget exceeded");
	/* a handler that loops itself, and nested pcalls */
	check_limit(s, "xpcall(function() while true do end end, function() while true do end end) error('no')",
	            SCRIPT_FAIL_BUDGET, "instruction budget exceeded");
	check_limit(s, "pcall(pcall, pcall, function() while true do end end) error('no')", SCRIPT_FAIL_BUDGET,
	            "instruction budget exceeded");
	/* the traceback comes with it */
	struct err err;
	CHECK(script_run_string(s, "local function spin() while true do end end\nspin()", "spin.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "at spin.lua:1\nstack traceback:");
	CHECK_CONTAINS(err.msg, "in local 'spin'");
	script_free(s);
}

TEST(script_budget_is_per_call)
{
	/* two calls of ~60% of the budget each both pass: the budget is restored
	 * (a numeric for with one addition is 2 VM instructions per turn) */
	struct script *s = new_state(1000000, 0);
	REQUIRE(s);
	struct err err;
	const char *code = "local n = 0 for i = 1, 300000 do n = n + i end";
	CHECK_OK(script_run_string(s, code, "a.lua", &err), &err);
	CHECK_OK(script_run_string(s, code, "a.lua", &err), &err);
	/* and a call of 3x that fails */
	CHECK(script_run_string(s, "local n = 0 for i = 1, 600000 do n = n + i end", "b.lua", &err) != 0);
	CHECK_EQ_INT(script_last_fail(s), SCRIPT_FAIL_BUDGET);
	CHECK_OK(script_run_string(s, code, "a.lua", &err), &err);
	script_free(s);
	/* budgets beyond the hook's int interval are counted in steps */
	s = new_state(5000000000LL, 0);
	REQUIRE(s);
	CHECK_OK(script_run_string(s, code, "a.lua", &err), &err);
	script_free(s);
}

TEST(script_memory_bombs)
{
	struct script *s = new_state(0, 4u << 20);
	REQUIRE(s);
	check_limit(s, "local s = string.rep('x', 100 * 1024 * 1024)", SCRIPT_FAIL_MEMORY,
	            "memory limit exceeded (4 MiB)");
	check_limit(s, "local t = {} for i = 1, 1e9 do t[i] = ('y'):rep(100) .. i end", SCRIPT_FAIL_MEMORY,
	            "memory limit exceeded (4 MiB)");
	check_limit(s, "local s = 'ab' for i = 1, 40 do s = s .. s end", SCRIPT_FAIL_MEMORY, "memory limit exceeded");
	/* inside pcall/xpcall: re-raised, the code after never runs */
	check_limit(s, "local ok = pcall(string.rep, 'x', 100 * 1024 * 1024)\nerror('survived pcall')",
	            SCRIPT_FAIL_MEMORY, "memory limit exceeded (4 MiB) at bomb.lua:1");
	check_limit(s, "pcall(function() local t = {} for i = 1, 1e9 do t[i] = {i} end end)\nerror('survived pcall')",
	            SCRIPT_FAIL_MEMORY, "memory limit exceeded (4 MiB)");
	check_limit(s, "xpcall(function() local t = {} for i = 1, 1e9 do t[i] = {i} end end, function(m) return m end)\n"
	               "error('survived xpcall')", SCRIPT_FAIL_MEMORY, "memory limit exceeded (4 MiB)");
	CHECK(script_memory_used(s) < (2u << 20));   /* garbage collected after the error */
	script_free(s);
}

TEST(script_failure_leaves_other_states_alone)
{
	/* b keeps state in a module-level table across calls; a fails in all ways
	 * (and t is an empty table when no tenant was set) */
	struct script *a = new_state(200000, 4u << 20);
	struct script *b = POLICY_STATE("b.lua", "local n = 0\n"
	                                         "return { include = function(u, t) assert(type(t) == 'table' and next(t) == nil)\n"
	                                         "n = n + 1 return true, tostring(n) end }\n");
	REQUIRE(a && b);
	struct err err;
	CHECK_EVAL(b, "{\"id\":\"1\"}", true, "1");
	CHECK(script_run_string(a, "while true do end", "x.lua", &err) != 0);
	CHECK(script_run_string(a, "local t = {} while true do t[#t + 1] = {} end", "x.lua", &err) != 0);
	CHECK(script_run_string(a, "error('boom')", "x.lua", &err) != 0);
	CHECK_STR(err.msg, "lua error: x.lua:1: boom\nstack traceback:\n\t[C]: in function 'error'\n\tx.lua:1: in main chunk");
	CHECK_EVAL(b, "{\"id\":\"1\"}", true, "2");
	/* a global smuggled in one state is not seen by another */
	CHECK(script_run_string(a, "rawset(_G, 'leak', 1)", "x.lua", &err) != 0);
	CHECK(script_run_string(b, "assert(leak == nil)", "y.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "undefined global 'leak'");
	script_free(a);
	script_free(b);
}

TEST(script_strict_globals)
{
	struct script *s = new_state(0, 0);
	REQUIRE(s);
	struct err err;
	CHECK(script_run_string(s, "local a = 1\nx = a", "g.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "g.lua:2: assignment to undeclared global 'x'");
	CHECK(script_run_string(s, "local y = undefined_thing", "g.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "g.lua:1: undefined global 'undefined_thing'");
	CHECK(script_run_string(s, "_G.x = 1", "g.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "assignment to undeclared global 'x'");
	CHECK(script_run_string(s, "load('z = 1')()", "g.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "assignment to undeclared global 'z'");
	CHECK(script_run_string(s, "setmetatable(_G, nil)", "g.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "g.lua:1: cannot change a protected metatable");
	CHECK(script_run_string(s, "rawset(_G, 'x', 1)", "g.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "writing to the global table is not allowed");
	CHECK(script_run_string(s, "local f = load('return 1', 'c', 't', {})", "g.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "the env argument is not available");
	/* locals, library tables and local _ENV tables work as usual */
	CHECK_OK(script_run_string(s, "local t = { x = 1 } t.y = 2 local _ENV = { assert = assert } assert(true)",
	                           "g.lua", &err), &err);
	script_free(s);
}

/* Captures log lines written during fn into buf. */
TEST(script_print_goes_to_log)
{
	struct script *s = new_state(0, 0);
	REQUIRE(s);
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);
	REQUIRE(f);
	log_set_stream(f);
	struct err err;
	CHECK_OK(script_run_string(s, "print('hello', 42, nil)", "p.lua", &err), &err);
	log_set_stream(NULL);
	fclose(f);
	CHECK_CONTAINS(mem, "info  policy p.lua:1: hello\t42\tnil");
	free(mem);
	script_free(s);
}

TEST(script_policy_load_errors)
{
	struct script *s = new_state(0, 0);
	REQUIRE(s);
	struct err err;
	static const struct { const char *name, *text, *want; } cases[] = {
		{ "typo.lua", "local p = require 'entrasync.policy'\nreturn {\n  include = function() return true end,\n  on_leve = 'keep',\n}\n",
		  "typo.lua:4: unknown key 'on_leve' in policy table (did you mean 'on_leave'?)" },
		{ "nosugg.lua", "return { zzzzzz = 1 }\n", "nosugg.lua:1: unknown key 'zzzzzz' in policy table" },
		{ "dyn.lua", "local t = {}\nt['on_' .. 'lv'] = 1\nreturn t\n", "dyn.lua: unknown key 'on_lv' in policy table" },
		{ "groups.lua", "return {\n  groups = 5,\n}\n", "groups.lua:2: policy key 'groups' must be a list of strings, got number" },
		{ "groups2.lua", "return {\n  groups = { 'a', 7 },\n}\n",
		  "groups2.lua:2: policy key 'groups' must be a list of strings, got a number at position 2" },
		{ "fn.lua", "return {\n\n  include = true,\n}\n", "fn.lua:3: policy key 'include' must be a function, got boolean" },
		{ "leave.lua", "return { on_leave = 'drop' }\n",
		  "leave.lua:1: policy key 'on_leave' must be a function, \"keep\" or \"delete\", got \"drop\"" },
		{ "name.lua", "return { name = {} }\n", "name.lua:1: policy key 'name' must be a string, got table" },
		{ "create.lua", "return { create_only = { 'emial' } }\n",
		  "create.lua:1: policy key 'create_only': unknown contact field 'emial' (did you mean 'email'?)" },
		{ "maxr.lua", "return {\n  max_removals = {\n    cuont = 3 },\n}\n",
		  "maxr.lua:3: unknown key 'cuont' in max_removals (count, percent) (did you mean 'count'?)" },
		{ "maxp.lua", "return { max_removals = { percent = 250 } }\n", "max_removals.percent must be a number from 0 to 100" },
		{ "pos.lua", "return { function() end }\n", "pos.lua: unexpected item [1] in policy table" },
		{ "syntax.lua", "return {\n  include = function(u) return u. end,\n}\n", "syntax.lua:2: <name> expected near 'end'" },
		{ "nil.lua", "local x = 1\n", "nil.lua: the policy must return a table, got nil" },
		{ "str.lua", "return 'policy'\n", "str.lua: the policy must return a table, got string" },
		{ "rt.lua", "local t = nil\nreturn t.x\n", "policy error: " },
		{ "glob.lua", "helper = 1\nreturn {}\n", "glob.lua:1: assignment to undeclared global 'helper'" },
		{ "req.lua", "local io = require 'io'\nreturn {}\n", "req.lua:1: module 'io' is not available" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		const char *path = t_write_file(cases[i].name, cases[i].text);
		REQUIRE(path);
		if (script_policy_load(s, path, &err) == 0) {
			t_fail(__FILE__, __LINE__, "%s loaded", cases[i].name);
			continue;
		}
		CHECK_CONTAINS(err.msg, cases[i].want);
		CHECK(script_policy_info(s) == NULL);
	}
	CHECK(script_policy_load(s, "/nonexistent/policy.lua", &err) != 0);
	CHECK_STR(err.msg, "cannot read policy: /nonexistent/policy.lua: No such file or directory");
	/* a binary chunk is refused even from a file */
	const char *bin = t_write_file("bin.lua", "\x1bLua\x54");
	CHECK(script_policy_load(s, bin, &err) != 0);
	CHECK_CONTAINS(err.msg, "attempt to load a binary chunk (mode is 't')");
	script_free(s);
}

TEST(script_policy_info_after_load)
{
	struct script *s = POLICY_STATE("full.lua",
		"local p = require 'entrasync.policy'\n"
		"return {\n"
		"  name = 'acme', description = 'Acme policy',\n"
		"  groups = { 'Sales', 'Staff' },\n"
		"  create_only = { 'notes', 'title' },\n"
		"  include = function(u, t) return true end,\n"
		"  contact = p.contact,\n"
		"  on_leave = p.mark('[left]'),\n"
		"  license = function() end, secure_score = function() end, bill = function() end,\n"
		"  protect = function() end, allow_action = function() end,\n"
		"  max_removals = { count = 5, percent = 10 },\n"
		"}\n");
	REQUIRE(s);
	const struct policy_info *pi = script_policy_info(s);
	REQUIRE(pi);
	CHECK_STR(pi->name, "acme");
	CHECK_STR(pi->description, "Acme policy");
	CHECK_EQ_INT(pi->ngroups, 2);
	CHECK_STR(pi->groups[1], "Staff");
	CHECK_EQ_INT(pi->ncreate_only, 2);
	CHECK_STR(pi->create_only[0], "notes");
	CHECK_EQ_INT(pi->on_leave, POLICY_ON_LEAVE_FUNCTION);
	CHECK_EQ_INT(pi->max_removals_count, 5);
	CHECK(pi->max_removals_percent == 10);
	CHECK_EQ_INT(pi->functions, POLICY_FN_INCLUDE | POLICY_FN_CONTACT | POLICY_FN_LICENSE | POLICY_FN_SECURE_SCORE |
	             POLICY_FN_BILL | POLICY_FN_PROTECT | POLICY_FN_ALLOW_ACTION | POLICY_FN_ON_LEAVE);
	script_free(s);
}

static const char *const sample_users[] = {
	/* 0: an ordinary member */
	"{\"id\":\"u0\",\"displayName\":\"Jane Doe\",\"givenName\":\"Jane\",\"surname\":\"Doe\","
	"\"mail\":\"Jane.Doe@Contoso.COM\",\"userPrincipalName\":\"jane@contoso.onmicrosoft.com\",\"userType\":\"Member\","
	"\"accountEnabled\":true,\"department\":\"Sales\",\"jobTitle\":\"Rep\",\"businessPhones\":[\"+1 425 555 0100\"],"
	"\"mobilePhone\":null,\"streetAddress\":\"1 Main St\",\"city\":\"Springfield\",\"state\":\"IL\",\"postalCode\":\"62701\"}",
	/* 1: a guest */
	"{\"id\":\"u1\",\"displayName\":\"Guest\",\"mail\":\"g@fabrikam.com\",\"userType\":\"Guest\",\"accountEnabled\":true,"
	"\"userPrincipalName\":\"g_fabrikam.com#EXT#@contoso.onmicrosoft.com\"}",
	/* 2: disabled */
	"{\"id\":\"u2\",\"displayName\":\"Old Timer\",\"mail\":\"old@contoso.com\",\"userType\":\"Member\",\"accountEnabled\":false}",
	/* 3: a room mailbox */
	"{\"id\":\"u3\",\"displayName\":\"Conf Room Adams\",\"mail\":\"Adams@contoso.com\",\"userType\":\"Member\",\"accountEnabled\":true}",
	/* 4: no mail */
	"{\"id\":\"u4\",\"displayName\":\"No Mail\",\"mail\":null,\"userPrincipalName\":\"nomail@contoso.com\",\"userType\":\"Member\","
	"\"accountEnabled\":true}",
	/* 5: a service address */
	"{\"id\":\"u5\",\"displayName\":\"Backup\",\"mail\":\"svc_backup@contoso.com\",\"userType\":\"Member\",\"accountEnabled\":true}",
};

TEST(script_eval_default_policy)
{
	struct script *s = new_state(0, 0);
	REQUIRE(s);
	struct err err;
	REQUIRE_OK(script_policy_load(s, "policies/default.lua", &err), &err);
	CHECK_EQ_INT(script_policy_info(s)->on_leave, POLICY_ON_LEAVE_KEEP);
	struct script_tenant t = { "tid", "Contoso", "contoso.com", 42 };
	REQUIRE_OK(script_set_tenant(s, &t, &err), &err);
	struct policy_decision d;
	REQUIRE_OK(eval_json(s, sample_users[0], &d, &err), &err);
	CHECK(d.include);
	CHECK(d.reason == NULL);
	CHECK_STR(d.field[POLICY_NAME], "Jane Doe");
	CHECK_STR(d.field[POLICY_EMAIL], "Jane.Doe@Contoso.COM");
	CHECK_STR(d.field[POLICY_PHONE], "+1 425 555 0100");
	CHECK(d.field[POLICY_MOBILE] == NULL);
	CHECK_STR(d.field[POLICY_TITLE], "Rep");
	CHECK_STR(d.field[POLICY_ADDRESS1], "1 Main St");
	CHECK_STR(d.field[POLICY_CITY], "Springfield");
	CHECK_STR(d.field[POLICY_STATE], "IL");
	CHECK_STR(d.field[POLICY_ZIP], "62701");
	CHECK(d.field[POLICY_NOTES] == NULL);
	CHECK_EQ_INT(d.customer_id, 0);
	policy_decision_free(&d);
	static const char *const why[] = { NULL, "guest account", "account disabled", "service name ('room')",
	                                   "no mail address", "service address ('svc')" };
	for (size_t i = 1; i < ARRAY_LEN(sample_users); i++) CHECK_EVAL(s, sample_users[i], false, why[i]);
	/* the same user as a parsed cJSON object */
	cJSON *j = cJSON_Parse(sample_users[0]);
	struct policy_user u = { .graph = j };
	REQUIRE_OK(script_policy_eval(s, &u, &d, &err), &err);
	CHECK(d.include);
	policy_decision_free(&d);
	cJSON_Delete(j);
	/* malformed user JSON */
	CHECK(eval_json(s, "{\"id\":", &d, &err) != 0);
	CHECK_CONTAINS(err.msg, "user: invalid JSON at byte offset ");
	script_free(s);
}

TEST(script_eval_user_and_tenant_tables)
{
	struct script *s = POLICY_STATE("ut.lua",
		"local json = require 'entrasync.json'\n"
		"return {\n"
		"  include = function(u, t)\n"
		"    assert(u.domain == 'contoso.com', tostring(u.domain))\n"
		"    assert(u.groups.Sales == true and u.groups.Staff == true and u.groups.Other == nil)\n"
		"    assert(#u.licenses == 0 and rawget(u, 'assignedLicenses') == nil)\n"
		"    assert(u.mobilePhone == nil, 'JSON null is absent')\n"
		"    assert(math.type(u.n) == 'integer')\n"
		"    assert(t.id == 'tid' and t.name == 'Contoso' and t.default_domain == 'contoso.com')\n"
		"    assert(t.syncro_customer_id == 42 and math.type(t.syncro_customer_id) == 'integer')\n"
		"    return true, 'checked'\n"
		"  end,\n"
		"  contact = function(u, t)\n"
		"    return { name = u.displayName, zip = 12345, customer_id = 7, notes = '' }\n"
		"  end,\n"
		"}\n");
	REQUIRE(s);
	struct err err;
	struct script_tenant t = { "tid", "Contoso", "contoso.com", 42 };
	REQUIRE_OK(script_set_tenant(s, &t, &err), &err);
	const char *groups[] = { "Sales", "Staff" };
	const char *json = "{\"displayName\":\"A\",\"mail\":null,\"userPrincipalName\":\"a@CONTOSO.com\",\"mobilePhone\":null,\"n\":5}";
	struct policy_user u = { .json = json, .len = strlen(json), .groups = groups, .ngroups = 2 };
	struct policy_decision d;
	REQUIRE_OK(script_policy_eval(s, &u, &d, &err), &err);
	CHECK(d.include);
	CHECK_STR(d.reason, "checked");
	CHECK_STR(d.field[POLICY_NAME], "A");
	CHECK_STR(d.field[POLICY_ZIP], "12345");
	CHECK_STR(d.field[POLICY_NOTES], "");
	CHECK_EQ_INT(d.customer_id, 7);
	policy_decision_free(&d);
	script_free(s);
}

TEST(script_eval_contract_errors)
{
	struct script *s = new_state(100000, 4u << 20);
	REQUIRE(s);
	struct err err;
	struct policy_decision d;
	static const struct { const char *text, *want; } cases[] = {
		{ "return {\n  include = function() return true end,\n  contact = function(u)\n    return { emial = 'x' }\n  end,\n}\n",
		  ":3: unknown contact field 'emial' (did you mean 'email'?)" },
		{ "return {\n  include = function() return true end,\n  contact = function(u) return { phone = {} } end,\n}\n",
		  ":3: contact field 'phone' must be a string, got table" },
		{ "return {\n  include = function() return true end,\n  contact = function(u) return { name = true } end,\n}\n",
		  ":3: contact field 'name' must be a string, got boolean" },
		{ "return {\n  include = function() return true end,\n  contact = function(u) return 'x' end,\n}\n",
		  ":3: contact() must return a table of contact fields, got string" },
		{ "return {\n  include = function() return true end,\n  contact = function(u) return { customer_id = 'abc' } end,\n}\n",
		  ":3: contact field 'customer_id' must be a positive integer, got string" },
		{ "return {\n  include = function() end,\n}\n", ":2: include() must return true or false [, reason], got nil" },
		{ "return {\n  include = function() return true, {} end,\n}\n", ":2: include()'s reason must be a string, got table" },
		{ "return {\n  include = function(u) return u.mail:lower() == 'x' end,\n}\n",
		  "policy error in include(): " },
		{ "return {\n  include = function(u) while true do end end,\n}\n",
		  "instruction budget exceeded (100000 instructions) in include() at " },
		{ "return {\n  include = function(u) return true end,\n  contact = function(u) while true do end end,\n}\n",
		  "instruction budget exceeded (100000 instructions) in contact() at " },
		{ "return {\n  include = function(u) return true end,\n  contact = function(u) return { name = ('x'):rep(1 << 22) } end,\n}\n",
		  "memory limit exceeded (4 MiB) in contact()" },
		{ "return {\n  include = function(u) return undefined_helper(u) end,\n}\n", ":2: undefined global 'undefined_helper'" },
		{ "return { name = 'no include' }\n", "the policy has no include function" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		char name[32];
		snprintf(name, sizeof name, "c%zu.lua", i);
		const char *path = t_write_file(name, cases[i].text);
		REQUIRE_OK(script_policy_load(s, path, &err), &err);
		if (eval_json(s, "{\"id\":\"1\"}", &d, &err) == 0) {
			t_fail(__FILE__, __LINE__, "case %zu evaluated", i);
			policy_decision_free(&d);
			continue;
		}
		CHECK_CONTAINS(err.msg, cases[i].want);
		CHECK(d.block == NULL && d.field[POLICY_NAME] == NULL);
		/* the same state then evaluates a good policy */
		const char *good = t_write_file("good.lua", "return { include = function(u) return true end }\n");
		REQUIRE_OK(script_policy_load(s, good, &err), &err);
		CHECK_EVAL(s, "{\"id\":\"1\"}", true, NULL);
	}
	script_free(s);
}

TEST(script_lua_dir_overrides_embedded_modules)
{
	char dir[600];
	snprintf(dir, sizeof dir, "%s", t_tmpdir());
	char sub[700];
	snprintf(sub, sizeof sub, "%s/entrasync", dir);
	REQUIRE(mkdir(sub, 0700) == 0);
	char mod[800];
	snprintf(mod, sizeof mod, "%s/policy.lua", sub);
	FILE *f = fopen(mod, "w");
	REQUIRE(f);
	fputs("return { from_disk = true }\n", f);
	fclose(f);
	struct err err;
	script_set_lua_dir(dir);
	struct script *s = new_state(0, 0);
	script_set_lua_dir(NULL);          /* the state keeps the directory it was made with */
	REQUIRE(s);
	CHECK_OK(script_run_string(s, "assert(require('entrasync.policy').from_disk)", "d.lua", &err), &err);
	CHECK_OK(script_run_string(s, "assert(require('entrasync.json').null)", "d.lua", &err), &err);
	CHECK(script_run_string(s, "require('entrasync.other')", "d.lua", &err) != 0);
	CHECK_CONTAINS(err.msg, "module 'entrasync.other' not found: ");
	CHECK_CONTAINS(err.msg, "/entrasync/other.lua: No such file or directory");
	script_free(s);
	s = new_state(0, 0);
	REQUIRE(s);
	CHECK_OK(script_run_string(s, "local p = require('entrasync.policy') assert(p.domain and not p.from_disk)\n"
	                              "assert(require('entrasync.policy') == p)", "d.lua", &err), &err);
	script_free(s);
}

TEST(script_small_memory_cap_and_state_creation)
{
	struct script *s = NULL;
	struct err err;
	struct script_limits tiny = { .memory_bytes = 1024 };
	CHECK(script_new(&tiny, &s, &err) != 0);
	CHECK(s == NULL);
	CHECK_CONTAINS(err.msg, "memory limit");
	s = new_state(0, 512u << 10);
	REQUIRE(s);
	check_state_works(s);
	CHECK(script_memory_used(s) > 0 && script_memory_used(s) < (512u << 10));
	script_free(s);
}

/* The policy's u from JSON text is lazy (members converted on first read):
 * it must behave like a plain table for everything a policy does. */
TEST(script_lazy_user_table_semantics)
{
	struct script *s = POLICY_STATE("lazy.lua",
		"local json = require 'entrasync.json'\n"
		"local kept\n"
		"return {\n"
		"  include = function(u, t)\n"
		"    if u.id == 'stale' then\n"
		"      assert(kept.mail == 'a@b.com', 'members read during their call stay')\n"
		"      local ok, e = pcall(function() return kept.never_read end)\n"
		"      assert(not ok and e:find('belongs to a policy call that has returned'), tostring(e))\n"
		"      ok, e = pcall(pairs, kept)\n"
		"      assert(not ok and e:find('belongs to a policy call that has returned'), tostring(e))\n"
		"      return true, 'stale checked'\n"
		"    end\n"
		"    kept = u\n"
		"    assert(rawget(u, 'n') == nil, 'not converted before the first read')\n"
		"    assert(u.n == 5 and rawget(u, 'n') == 5)\n"
		"    assert(u.mail == 'a@b.com')\n"
		"    assert(u.missing == nil and u.nothing == nil)\n"
		"    assert(u.lic[1].skuId == 'S1' and u.lic[1].plans[2] == 'p2')\n"
		"    u.displayName = 'Changed'\n"
		"    assert(u.displayName == 'Changed')\n"
		"    u.city = nil\n"
		"    assert(u.city == nil, 'an assignment hides the member for good')\n"
		"    local keys = {}\n"
		"    for k in pairs(u) do keys[#keys + 1] = k end\n"
		"    table.sort(keys)\n"
		"    assert(table.concat(keys, ',') == 'displayName,domain,groups,id,lic,licenses,mail,n', table.concat(keys, ','))\n"
		"    assert(math.type(u.n) == 'integer')\n"
		"    return true, json.encode(u)\n"
		"  end,\n"
		"}\n");
	REQUIRE(s);
	const char *user = "{\"id\":\"1\",\"mail\":\"a@b.com\",\"displayName\":\"A\",\"city\":\"X\",\"nothing\":null,"
	                   "\"lic\":[{\"skuId\":\"S1\",\"plans\":[\"p1\",\"p2\"]}],\"n\":5}";
	CHECK_EVAL(s, user, true, "{\"displayName\":\"Changed\",\"domain\":\"b.com\",\"groups\":{},\"id\":\"1\","
	                          "\"lic\":[{\"plans\":[\"p1\",\"p2\"],\"skuId\":\"S1\"}],\"licenses\":{},\"mail\":\"a@b.com\",\"n\":5}");
	/* the kept u of the previous call raises instead of reading freed text */
	CHECK_EVAL(s, "{\"id\":\"stale\"}", true, "stale checked");
	script_free(s);
}

/* u.licenses: { sku_id, part, name } per assignedLicenses item, from the
 * SKU table (unknown: the id for both), made only when read; the same from
 * text and from a cJSON object; a Graph member named licenses is hidden. */
TEST(script_eval_licenses)
{
	struct script *s = POLICY_STATE("lic.lua",
		"return {\n"
		"  include = function(u, t)\n"
		"    if u.id == 'skip' then\n"
		"      return rawget(u, 'licenses') == nil and rawget(u, 'assignedLicenses') == nil, 'untouched'\n"
		"    end\n"
		"    local out = {}\n"
		"    for i, l in ipairs(u.licenses) do out[i] = l.sku_id .. '|' .. l.part .. '|' .. l.name end\n"
		"    assert(u.licenses == u.licenses, 'made once per call')\n"
		"    return true, table.concat(out, ';')\n"
		"  end,\n"
		"  contact = function(u, t)\n"
		"    local names = {}\n"
		"    for _, l in ipairs(u.licenses) do names[#names + 1] = l.name end\n"
		"    return { notes = table.concat(names, ', ') }\n"
		"  end,\n"
		"}\n");
	REQUIRE(s);
	struct err err;
	struct policy_decision d;
	/* not read: never made, and assignedLicenses stays unconverted */
	CHECK_EVAL(s, "{\"id\":\"skip\",\"assignedLicenses\":[{\"skuId\":\"x\"}]}", true, "untouched");
	const char *user = "{\"id\":\"1\",\"licenses\":\"hidden\",\"assignedLicenses\":["
	                   "{\"disabledPlans\":[],\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"},"
	                   "{\"disabledPlans\":[\"x\"]},"
	                   "{\"skuId\":\"00000000-0000-0000-0000-00000000abcd\"},"
	                   "{\"skuId\":\"EFCCB6F7-5641-4E0E-BD10-B4976E1BF68E\"},null]}";
	const char *want = "05e9a617-0261-4cee-bb44-138d3ef5d965|SPE_E3|Microsoft 365 E3;"
	                   "00000000-0000-0000-0000-00000000abcd|00000000-0000-0000-0000-00000000abcd|"
	                   "00000000-0000-0000-0000-00000000abcd;"
	                   "EFCCB6F7-5641-4E0E-BD10-B4976E1BF68E|EMS|Enterprise Mobility + Security E3";
	/* from text; no assignedLicenses, or not an array: an empty list */
	const struct { const char *json, *reason, *notes; } cases[] = {
		{ user, want, "Microsoft 365 E3, 00000000-0000-0000-0000-00000000abcd, Enterprise Mobility + Security E3" },
		{ "{\"id\":\"2\",\"assignedLicenses\":null}", "", "" },
		{ "{\"id\":\"3\",\"assignedLicenses\":{\"skuId\":\"x\"}}", "", "" },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		REQUIRE_OK(eval_json(s, cases[i].json, &d, &err), &err);
		CHECK(d.include);
		CHECK_STR(d.reason, cases[i].reason);
		CHECK_STR(d.field[POLICY_NOTES], cases[i].notes);
		policy_decision_free(&d);
	}
	/* the same from a parsed object */
	cJSON *j = cJSON_Parse(user);
	struct policy_user pu = { .graph = j };
	REQUIRE_OK(script_policy_eval(s, &pu, &d, &err), &err);
	CHECK_STR(d.reason, want);
	policy_decision_free(&d);
	cJSON_Delete(j);
	script_free(s);
}

/* The names a policy reads are learnt and converted up front for later
 * users: the values stay right whatever the order of the members, with
 * duplicates (the first wins), escapes, nulls and assignments. */
TEST(script_learned_members_stay_exact)
{
	struct script *s = POLICY_STATE("learn.lua",
		"return {\n"
		"  include = function(u, t)\n"
		"    local early = rawget(u, 'mail') ~= nil\n"
		"    local r = tostring(u.mail) .. '|' .. tostring(u.city) .. '|' .. tostring(u.n) .. '|' .. tostring(u.domain)\n"
		"    u.city = 'assigned'\n"
		"    assert(u.city == 'assigned')\n"
		"    return early, r\n"
		"  end,\n"
		"}\n");
	REQUIRE(s);
	static const struct { const char *json, *want; bool early; } cases[] = {
		{ "{\"mail\":\"a@B.com\",\"city\":\"X\",\"n\":1}", "a@B.com|X|1|b.com", false },
		{ "{\"mail\":\"b@c.com\",\"city\":\"Y\",\"n\":2}", "b@c.com|Y|2|c.com", true },
		{ "{\"n\":3,\"city\":\"Z\",\"mail\":\"c@d.com\"}", "c@d.com|Z|3|d.com", true },
		{ "{\"mail\":\"first@x.com\",\"mail\":\"second@x.com\",\"n\":4}", "first@x.com|nil|4|x.com", true },
		{ "{\"mail\":null,\"city\":\"Q\",\"userPrincipalName\":\"u@UPN.org\"}", "nil|Q|nil|upn.org", false },
		{ "{\"mail\":\"e\\u00e9@x.com\",\"city\":\"W\"}", "e\xc3\xa9@x.com|W|nil|x.com", true },
		{ "{\"city\":\"V\",\"mail\":\"f@y.com\"}", "f@y.com|V|nil|y.com", true },
	};
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) CHECK_EVAL(s, cases[i].json, cases[i].early, cases[i].want);
	/* many users, alternating orders: always exact */
	for (int i = 0; i < 3000; i++) {
		char json[200], want[200];
		if (i % 2) snprintf(json, sizeof json, "{\"n\":%d,\"mail\":\"m%d@x.com\",\"city\":\"c%d\"}", i, i, i);
		else snprintf(json, sizeof json, "{\"city\":\"c%d\",\"id\":\"%d\",\"mail\":\"m%d@x.com\",\"n\":%d}", i, i, i, i);
		snprintf(want, sizeof want, "m%d@x.com|c%d|%d|x.com", i, i, i);
		CHECK_EVAL(s, json, EVAL_ANY, want);
	}
	script_free(s);
}

static int count_and_eval(void *ud, const char *item, size_t len)
{
	struct script *s = ud;
	struct err err;
	struct policy_user u = { .json = item, .len = len };
	struct policy_decision d;
	if (script_policy_eval(s, &u, &d, &err) != 0) {
		fprintf(stderr, "    %s\n", err.msg);
		return -1;
	}
	int rc = d.reason ? atoi(d.reason) : -2;
	policy_decision_free(&d);
	return rc == 0 ? 0 : -3;
}

/* Long strings (the 16-byte scanning steps) with escapes at every offset
 * around a step's end: the page split and the user parser find the same
 * string ends and values as a byte-by-byte reading. */
TEST(script_long_strings_with_escapes)
{
	struct script *s = POLICY_STATE("esc.lua",
		"local marks = { '\"', '\\\\', '\\195\\169' }\n"
		"return { include = function(u)\n"
		"  local pre = {}\n"
		"  for i = 0, u.at - 1 do pre[#pre + 1] = string.char(97 + i % 26) end\n"
		"  local want = table.concat(pre) .. marks[u.kind + 1] .. 'tail'\n"
		"  return true, (u.a == want and u.b == 'x') and '0' or ('1 ' .. tostring(u.a))\n"
		"end }\n");
	REQUIRE(s);
	struct err err;
	struct buf page = {0};
	buf_adds(&page, "{\"value\":[");
	int n = 0;
	for (int at = 0; at < 40; at++) {
		for (int kind = 0; kind < 3; kind++) {
			static const char *const esc[] = { "\\\"", "\\\\", "\\u00e9" };
			struct buf v = {0};
			for (int i = 0; i < at; i++) buf_addc(&v, (char)('a' + i % 26));
			buf_adds(&v, esc[kind]);
			buf_adds(&v, "tail");
			if (n++) buf_addc(&page, ',');
			buf_printf(&page, "{\"at\":%d,\"kind\":%d,\"a\":\"%s\",\"b\":\"x\"}", at, kind, v.data);
			buf_free(&v);
		}
	}
	buf_adds(&page, "]}");
	REQUIRE_OK(script_json_each_item(page.data, page.len, "value", count_and_eval, s, &err), &err);
	buf_free(&page);
	script_free(s);
}

TEST(script_user_json_checked_before_the_policy_runs)
{
	struct script *s = POLICY_STATE("count.lua",
		"local calls = 0\n"
		"return { include = function(u) calls = calls + 1 return true, tostring(calls) .. ':' .. tostring(u.mail) end }\n");
	REQUIRE(s);
	struct err err;
	struct policy_decision d;
	/* malformed deep inside a member the policy never reads: still refused */
	CHECK(eval_json(s, "{\"mail\":\"a@b.c\",\"assignedLicenses\":[{\"skuId\":\"x\",}]}", &d, &err) != 0);
	CHECK_CONTAINS(err.msg, "user: invalid JSON at byte offset 49 (line 1, column 50): expected a string key near '}]}'");
	CHECK(eval_json(s, "[1, 2]", &d, &err) != 0);
	CHECK_STR(err.msg, "user: the user must be a JSON object");
	CHECK(eval_json(s, "{\"a\":1} x", &d, &err) != 0);
	CHECK_CONTAINS(err.msg, "unexpected data after the value");
	CHECK(eval_json(s, "", &d, &err) != 0);
	CHECK_CONTAINS(err.msg, "user: invalid JSON: empty text");
	/* nesting deeper than the limit */
	struct buf deep = {0};
	buf_adds(&deep, "{\"x\":");
	for (int i = 0; i < 70; i++) buf_addc(&deep, '[');
	for (int i = 0; i < 70; i++) buf_addc(&deep, ']');
	buf_adds(&deep, "}");
	CHECK(eval_json(s, deep.data, &d, &err) != 0);
	CHECK_CONTAINS(err.msg, "JSON nested too deeply (more than 64 levels)");
	buf_free(&deep);
	/* none of the above reached the policy */
	/* escaped keys work (converted up front) */
	CHECK_EVAL(s, "{\"m\\u0061il\":\"esc@key.com\"}", true, "1:esc@key.com");
	/* more members than the lazy index holds: converted up front */
	struct buf wide = {0};
	buf_adds(&wide, "{\"mail\":\"w@x.y\"");
	for (int i = 0; i < 300; i++) buf_printf(&wide, ",\"k%d\":%d", i, i);
	buf_adds(&wide, "}");
	CHECK_EVAL(s, wide.data, true, "2:w@x.y");
	buf_free(&wide);
	script_free(s);
}

/* script_policy_verdict: hook([lead,] u, t) with u as for include (computed
 * members too), t the tenant table, include's answer contract with nil as
 * false, and errors naming the hook and the policy's file:line. */
TEST(script_policy_verdict_hooks)
{
	struct script *s = new_state(100000, 0);
	REQUIRE(s);
	struct err err;
	bool yes = true;
	char *why = NULL;
	const char *json = "{\"mail\":\"Ann@Contoso.COM\","
	                   "\"assignedLicenses\":[{\"skuId\":\"05e9a617-0261-4cee-bb44-138d3ef5d965\"}]}";
	const char *groups[] = { "Admins" };
	struct policy_user u = { .json = json, .len = strlen(json), .groups = groups, .ngroups = 1 };
	CHECK(script_policy_verdict(s, "protect", NULL, &u, &yes, &why, &err) != 0);
	CHECK_STR(err.msg, "no policy loaded");
	CHECK(!yes && why == NULL);
	const char *path = t_write_file("verdict.lua",
		"return {\n"
		"  protect = function(u, t)\n"
		"    return u.groups.Admins == true, u.domain .. ' ' .. u.licenses[1].part .. ' ' .. t.name\n"
		"  end,\n"
		"  allow_action = function(action, u, t)\n"
		"    if action == 'n' then return 7 end\n"
		"    if action == 't' then return true, {} end\n"
		"    if action == 'x' then return u.nothing.here end\n"
		"    if action == 'nil' then return nil end\n"
		"    return action == 'disable', 42\n"
		"  end,\n"
		"}\n");
	REQUIRE_OK(script_policy_load(s, path, &err), &err);
	struct script_tenant st = { .id = "t1", .name = "Contoso" };
	REQUIRE_OK(script_set_tenant(s, &st, &err), &err);
	REQUIRE_OK(script_policy_verdict(s, "protect", NULL, &u, &yes, &why, &err), &err);
	CHECK(yes);
	CHECK_STR(why, "contoso.com SPE_E3 Contoso");
	free(why);
	REQUIRE_OK(script_policy_verdict(s, "allow_action", "disable", &u, &yes, &why, &err), &err);
	CHECK(yes);
	CHECK_STR(why, "42");
	free(why);
	REQUIRE_OK(script_policy_verdict(s, "allow_action", "enable", &u, &yes, &why, &err), &err);
	CHECK(!yes);
	free(why);
	yes = true;
	REQUIRE_OK(script_policy_verdict(s, "allow_action", "nil", &u, &yes, &why, &err), &err);
	CHECK(!yes && why == NULL);
	char want[600];
	static const struct { const char *lead, *kind; int line; const char *msg; } fails[] = {
		{ "n", "", 5, "allow_action() must return true or false [, reason], got number" },
		{ "t", "", 5, "allow_action()'s reason must be a string, got table" },
		{ "x", "policy error in allow_action(): ", 8, "attempt to index a nil value (field 'nothing')" },
	};
	for (size_t i = 0; i < ARRAY_LEN(fails); i++) {
		CHECK(script_policy_verdict(s, "allow_action", fails[i].lead, &u, &yes, &why, &err) != 0);
		snprintf(want, sizeof want, "%s%s:%d: %s", fails[i].kind, path, fails[i].line, fails[i].msg);
		CHECK_STR(strtok(err.msg, "\n"), want);
		CHECK(!yes && why == NULL);
		CHECK_EQ_INT(script_last_fail(s), SCRIPT_FAIL_ERROR);
	}
	CHECK(script_policy_verdict(s, "include", NULL, &u, &yes, &why, &err) != 0);
	snprintf(want, sizeof want, "%s: the policy has no include function", path);
	CHECK_STR(err.msg, want);
	script_free(s);
}
