/* test_script_helpers — the policy helpers written in C (entrasync.text:
 * p.is_guest, p.is_member, p.is_disabled, p.has_mail and
 * p.is_service_account from text.service_account) against the Lua they
 * replaced (kept here as the reference), on users combining every kind of
 * userType, userPrincipalName, mail, accountEnabled and displayName,
 * no-reply spellings and non-string values included. */
#include "t.h"

#include <stdlib.h>

#include "script/script.h"

static const char policy[] =
	"local p, text = require 'entrasync.policy', require 'entrasync.text'\n"
	"local lower, find, byte = string.lower, string.find, string.byte\n"
	"local contains, is_address = text.contains, text.is_address\n"
	"local function is_guest(u)\n"
	"  local t = u.userType\n"
	"  if t == 'Guest' or (t ~= 'Member' and type(t) == 'string' and lower(t) == 'guest') then return true end\n"
	"  return contains(u.userPrincipalName, '#EXT#')\n"
	"end\n"
	"local function is_member(u)\n"
	"  local t = u.userType\n"
	"  return (t == nil or t == 'Member' or (type(t) == 'string' and lower(t) == 'member'))\n"
	"    and not contains(u.userPrincipalName, '#EXT#')\n"
	"end\n"
	"local function is_disabled(u) return u.accountEnabled == false end\n"
	"local function has_mail(u) return is_address(u.mail) end\n"
	"local aw = text.word_matcher{ 'noreply', 'admin', 'svc', 'scanner', 'room', 'test', 'info', 'backup' }\n"
	"local nw = text.word_matcher{ 'room', 'admin', 'scanner', 'bot' }\n"
	"local function is_service_account(u)\n"
	"  local addr = u.mail\n"
	"  local ta = type(addr)\n"
	"  if ta ~= 'string' then addr = u.userPrincipalName ta = type(addr) end\n"
	"  if ta == 'string' then\n"
	"    local b = byte(addr, 1)\n"
	"    if b == 110 or b == 78 or b == 100 or b == 68 then\n"
	"      local la = lower(addr)\n"
	"      if find(la, '^no[%-_%.]?reply') or find(la, '^do[%-_%.]?not[%-_%.]?reply') then\n"
	"        return true, 'no-reply address'\n"
	"      end\n"
	"    end\n"
	"    local w = aw(addr, '@')\n"
	"    if w then return true, \"service address ('\" .. w .. \"')\" end\n"
	"  end\n"
	"  local w = nw(u.displayName)\n"
	"  if w then return true, \"service name ('\" .. w .. \"')\" end\n"
	"  return false\n"
	"end\n"
	"local c_service = text.service_account(aw, nw)\n"
	"local pairs_ = { { 'is_guest', is_guest, p.is_guest }, { 'is_member', is_member, p.is_member },\n"
	"  { 'is_disabled', is_disabled, p.is_disabled }, { 'has_mail', has_mail, p.has_mail },\n"
	"  { 'service', is_service_account, c_service } }\n"
	"return {\n"
	"  include = function(u, t)\n"
	"    local out = {}\n"
	"    for _, c in ipairs(pairs_) do\n"
	"      local a1, a2 = c[2](u)\n"
	"      local n = select('#', c[3](u))\n"
	"      local b1, b2 = c[3](u)\n"
	"      if a1 ~= b1 or a2 ~= b2 or n ~= (a2 == nil and 1 or 2) then\n"
	"        return false, c[1] .. ': ' .. tostring(a1) .. ',' .. tostring(a2) .. ' ~= ' .. tostring(b1) .. ',' .. tostring(b2)\n"
	"      end\n"
	"      out[#out + 1] = tostring(b1) .. (b2 and ('/' .. b2) or '')\n"
	"    end\n"
	"    for _, f in ipairs{ p.is_guest, p.is_member, p.is_disabled, p.has_mail, c_service } do\n"
	"      assert(not pcall(f, nil) and not pcall(f, 5))\n"
	"    end\n"
	"    return true, table.concat(out, ' ')\n"
	"  end,\n"
	"}\n";

static const char *const user_types[] = { "\"Guest\"", "\"guest\"", "\"GUEST\"", "\"Member\"", "\"member\"",
                                           "\"MEMBER\"", "\"Other\"", "null", NULL, "5", "true", "[\"Guest\"]",
                                           "\"Gu\\u0065st\"" };
static const char *const upns[] = { "\"a@x.com\"", "\"a_b.com#EXT#@x.onmicrosoft.com\"", "\"a#ext#@x.com\"", "5", NULL,
                                    "\"scanner@x.com\"", "\"no-reply@x.com\"", "null" };
static const char *const mails[] = {
	"\"a@b\"", "\"@b\"", "\"a@\"", "\"a@b@c\"", "\"\"", "5", "null", NULL, "\"no-reply@x.com\"", "\"NoReply@x.com\"",
	"\"no_reply@x\"", "\"no.reply@x\"", "\"no--reply@x\"", "\"noreply\"", "\"do-not-reply@x\"", "\"do_not.reply@x\"",
	"\"DoNotReply@x\"", "\"do-notreply@x\"", "\"DO-NOT-REPLY@X\"", "\"doreply@x\"", "\"no-replyz@x\"",
	"\"svc_backup@x\"", "\"scanner2@x\"", "\"room.12@x\"", "\"jane@room.com\"", "\"info@x\"", "\"Information@x\"",
	"\"Test-Admin@x\"", "\"n@x\"", "\"d\"", "\"no\"", "\"do-not\"",
};
static const char *const enabled[] = { "false", "true", "null", NULL, "\"false\"", "0" };
static const char *const names[] = { "\"Conf Room Adams\"", "\"Scanner 3\"", "\"Bot\"", "\"Jane Doe\"", "5", "null",
                                     NULL, "\"ROBOT\"", "\"admin-team\"" };

static void member(struct buf *b, const char *name, const char *value)
{
	if (!value) return;
	buf_printf(b, "%s\"%s\":%s", b->len > 1 ? "," : "", name, value);
}

TEST(script_helpers_in_c_match_their_lua)
{
	struct script *s = NULL;
	struct err err;
	REQUIRE(script_new(NULL, &s, &err) == 0);
	REQUIRE_OK(script_policy_load_text(s, "helpers.lua", policy, strlen(policy), &err), &err);
	unsigned guests = 0, services = 0, noreply = 0;
	for (size_t i = 0; i < 3000; i++) {
		struct buf b = {0};
		buf_addc(&b, '{');
		member(&b, "userType", user_types[i % ARRAY_LEN(user_types)]);
		member(&b, "userPrincipalName", upns[i / 3 % ARRAY_LEN(upns)]);
		member(&b, "mail", mails[i % ARRAY_LEN(mails)]);
		member(&b, "accountEnabled", enabled[i / 7 % ARRAY_LEN(enabled)]);
		member(&b, "displayName", names[i / 5 % ARRAY_LEN(names)]);
		buf_addc(&b, '}');
		struct policy_user u = { .json = b.data, .len = b.len };
		struct policy_decision d;
		if (script_policy_eval(s, &u, &d, &err) != 0) {
			t_fail(__FILE__, __LINE__, "%s: %s", b.data, err.msg);
		} else {
			if (!d.include) t_fail(__FILE__, __LINE__, "%s: %s", b.data, d.reason ? d.reason : "?");
			guests += d.reason && strncmp(d.reason, "true", 4) == 0;
			services += d.reason && strstr(d.reason, "service ") != NULL;
			noreply += d.reason && strstr(d.reason, "no-reply") != NULL;
			policy_decision_free(&d);
		}
		buf_free(&b);
	}
	/* the users cover each outcome */
	CHECK(guests > 300);
	CHECK(services > 300);
	CHECK(noreply > 100);
	script_free(s);
}
