/* test_script_contact — p.contact in C (src/script/lua_contact.c): a policy whose
 * contact is p.contact itself gets its contacts straight from the user's
 * JSON text; one that calls p.contact from Lua gets them from the C
 * function; both must give exactly what the former Lua p.contact gave
 * (kept here as the reference), for ordinary users and for every kind of
 * user the fast path declines (escapes, non-strings, odd businessPhones,
 * names joined from givenName and surname, a u changed by include). */
#include "t.h"

#include <stdlib.h>

#include <cjson/cJSON.h>

#include "script/script.h"

/* The three ways to the contact: the fast path, the C function called from
 * Lua, and p.contact as it was written in Lua. %s is include's body. */
static const char *const policy_fmt[3] = {
	"local p = require 'entrasync.policy'\n"
	"local kept\n"
	"return {\n"
	"  include = function(u, t) kept = u %s end,\n"
	"  contact = p.contact,\n"
	"  license = function() return (pcall(function() return kept.mobilePhone end)) end,\n"
	"}\n",
	"local p = require 'entrasync.policy'\n"
	"local kept\n"
	"return {\n"
	"  include = function(u, t) kept = u %s end,\n"
	"  contact = function(u, t) return p.contact(u) end,\n"
	"  license = function() return (pcall(function() return kept.mobilePhone end)) end,\n"
	"}\n",
	"local p = require 'entrasync.policy'\n"
	"local json_null, nonempty = require('entrasync.json').null, p.nonempty\n"
	"return {\n"
	"  include = function(u, t) %s end,\n"
	"  contact = function(u)\n"
	"    local name = u.displayName\n"
	"    if not nonempty(name) then\n"
	"      local given, sur = u.givenName, u.surname\n"
	"      if nonempty(given) and nonempty(sur) then name = given .. ' ' .. sur\n"
	"      else name = p.first(given, sur, u.mail, u.userPrincipalName) end\n"
	"    end\n"
	"    local phones, phone = u.businessPhones\n"
	"    if phones then\n"      /* the first that is not blank */
	"      local i = 1\n"
	"      while phones[i] ~= nil do\n"
	"        local v = phones[i]\n"
	"        if v and v ~= json_null and nonempty(v) then phone = v break end\n"
	"        i = i + 1\n"
	"      end\n"
	"    end\n"
	"    return { name = name, email = u.mail, phone = phone,\n"
	"      mobile = u.mobilePhone, title = u.jobTitle, address1 = u.streetAddress, city = u.city,\n"
	"      state = u.state, zip = u.postalCode }\n"
	"  end,\n"
	"}\n",
};

static const char *const includes[] = {
	"return true",
	"local _ = u.mobilePhone return true",
	"u.mobilePhone = 'assigned' return true",
	"u.city = nil return true",
	"u.displayName = nil return true",
	"rawset(u, 'jobTitle', 'raw') return true",
	"rawset(u, 'extra', 1) return true",
	"return pcall(setmetatable, u, nil) == false and getmetatable(u) == false",
	"return u.mail ~= nil, u.domain",
};

static const char *const users[] = {
	"{\"id\":\"1\",\"displayName\":\"Jane Doe\",\"givenName\":\"Jane\",\"surname\":\"Doe\",\"mail\":\"j@x.com\","
	"\"userPrincipalName\":\"j@x.com\",\"businessPhones\":[\"+1 425 555 0100\"],\"mobilePhone\":\"+1 206\","
	"\"jobTitle\":\"Boss\",\"streetAddress\":\"1 Main St\",\"city\":\"Oslo\",\"state\":\"WA\",\"postalCode\":\"98052\"}",
	"{\"displayName\":\"  \",\"givenName\":\"Jane\",\"surname\":\"Doe\",\"mail\":\"j@x.com\",\"mobilePhone\":\"1\"}",
	"{\"displayName\":\"\",\"givenName\":\"Jane\",\"surname\":\" \",\"mail\":\"j@x.com\"}",
	"{\"displayName\":null,\"givenName\":null,\"surname\":\"Doe\"}",
	"{\"givenName\":\"\\t\",\"userPrincipalName\":\"u@x.com\",\"mail\":\"\"}",
	"{\"id\":\"nothing at all\"}",
	"{}",
	"{\"displayName\":\"J\\u00e9r\\u00f4me\",\"mail\":\"a\\\"b@x.com\"}",
	"{\"displayName\":\"Ren\xc3\xa9 O'Brien\",\"mail\":\"r@x.com\",\"city\":\"Z\xc3\xbcrich\"}",
	"{\"displayName\":42,\"mobilePhone\":5551234}",
	"{\"displayName\":\"A\",\"mobilePhone\":5.5}",
	"{\"displayName\":\"A\",\"jobTitle\":{\"x\":1}}",
	"{\"displayName\":\"A\",\"city\":true}",
	"{\"displayName\":\"A\",\"city\":[\"Oslo\"]}",
	"{\"displayName\":\"A\",\"businessPhones\":[]}",
	"{\"displayName\":\"A\",\"businessPhones\":[null,\"2\"]}",
	"{\"displayName\":\"A\",\"businessPhones\":[ \"\" ]}",
	"{\"displayName\":\"A\",\"businessPhones\":[\"\",\"+44 20 1234\"]}",
	"{\"displayName\":\"A\",\"businessPhones\":[ \" \" , null , \"9\" ]}",
	"{\"displayName\":\"A\",\"businessPhones\":[\"\",\"\\u0031\"]}",
	"{\"displayName\":\"A\",\"businessPhones\":[\"\",12]}",
	"{\"displayName\":\"A\",\"businessPhones\":[null,null]}",
	"{\"displayName\":\"A\",\"businessPhones\":[ \"1\" , \"2\" ]}",
	"{\"displayName\":\"A\",\"businessPhones\":[\"\\u0031\"]}",
	"{\"displayName\":\"A\",\"businessPhones\":[12]}",
	"{\"displayName\":\"A\",\"businessPhones\":[false]}",
	"{\"displayName\":\"A\",\"businessPhones\":[[\"x\"]]}",
	"{\"displayName\":\"A\",\"businessPhones\":\"555\"}",
	"{\"displayName\":\"A\",\"businessPhones\":{\"1\":\"x\"}}",
	"{\"displayName\":\"A\",\"businessPhones\":7}",
	"{\"displayName\":\"A\",\"businessPhones\":false}",
	"{\"displayName\":\"A\",\"businessPhones\":null}",
	"{\"mail\":\"first@x.com\",\"mail\":\"second@x.com\",\"displayName\":\"D\",\"displayName\":\"E\"}",
	"{\"displayName\":\"A\",\"ma\\u0069l\":\"escaped-key@x.com\"}",
	" { \"displayName\" : \"Spaced\" , \"city\" : \"Oslo\" } ",
};

static void load(struct script *s, int way, const char *include, struct err *err, int *ok)
{
	char text[4096];
	const char *fmt = policy_fmt[way], *at = strstr(fmt, "%s");
	snprintf(text, sizeof text, "%.*s%s%s", (int)(at - fmt), fmt, include, at + 2);
	*ok = script_policy_load_text(s, "contact_way.lua", text, strlen(text), err) == 0;
	if (!*ok) t_fail(__FILE__, __LINE__, "load: %s", err->msg);
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

TEST(script_contact_fast_path_gives_the_lua_contact)
{
	struct script *s[3] = { 0 };
	struct err err;
	for (int w = 0; w < 3; w++) {
		REQUIRE(script_new(NULL, &s[w], &err) == 0);
	}
	unsigned compared = 0;
	for (size_t inc = 0; inc < ARRAY_LEN(includes); inc++) {
		int ok = 1;
		for (int w = 0; w < 3 && ok; w++) load(s[w], w, includes[inc], &err, &ok);
		if (!ok) break;
		for (int round = 0; round < 3; round++) {              /* learnt member names change what is converted */
			for (size_t i = 0; i < ARRAY_LEN(users); i++) {
				struct policy_decision d[3];
				int rc[3];
				char msg[3][sizeof err.msg];
				for (int w = 0; w < 3; w++) {
					struct policy_user u = { .json = users[i], .len = strlen(users[i]) };
					rc[w] = script_policy_eval(s[w], &u, &d[w], &err);
					snprintf(msg[w], sizeof msg[w], "%.*s", (int)sizeof msg[w] - 1, rc[w] ? err.msg : "");
				}
				for (int w = 0; w < 2; w++) {
					if (rc[w] != rc[2]) {
						t_fail(__FILE__, __LINE__, "include %zu, user %zu, way %d: rc %d (%s), reference %d (%s)", inc,
						       i, w, rc[w], msg[w], rc[2], msg[2]);
						continue;
					}
					if (rc[w]) continue;
					CHECK_EQ_INT(d[w].include, d[2].include);
					CHECK(same(d[w].reason, d[2].reason));
					for (int f = 0; f < POLICY_NFIELDS; f++)
						if (!same(d[w].field[f], d[2].field[f]))
							t_fail(__FILE__, __LINE__, "include %zu, user %zu, way %d, %s: \"%s\" != \"%s\"", inc, i, w,
							       policy_contact_field_names[f], d[w].field[f] ? d[w].field[f] : "(nil)",
							       d[2].field[f] ? d[2].field[f] : "(nil)");
					compared++;
				}
				for (int w = 0; w < 3; w++) policy_decision_free(&d[w]);
			}
		}
	}
	CHECK(compared > 400);
	for (int w = 0; w < 3; w++) script_free(s[w]);
}

/* After the call, a member nobody read cannot be read from a kept u: so
 * whether contact() converted u.mobilePhone shows which path ran. */
static int kept_mobile_was_read(struct script *s, const char *json, int *out)
{
	struct err err;
	struct policy_user u = { .json = json, .len = strlen(json) };
	struct policy_decision d;
	if (script_policy_eval(s, &u, &d, &err) != 0) return -1;
	policy_decision_free(&d);
	cJSON *r = NULL;
	if (script_policy_call(s, "license", NULL, 0, &r, &err) != 0) return -1;
	*out = cJSON_IsTrue(r);
	cJSON_Delete(r);
	return 0;
}

TEST(script_contact_fast_path_is_taken)
{
	struct script *s = NULL;
	struct err err;
	REQUIRE(script_new(NULL, &s, &err) == 0);
	int ok = 1, read = -1;
	load(s, 0, "return true", &err, &ok);
	REQUIRE(ok);
	REQUIRE(kept_mobile_was_read(s, users[0], &read) == 0);
	CHECK_EQ_INT(read, 0);                                      /* from the text: no Lua value made */
	REQUIRE(kept_mobile_was_read(s, users[1], &read) == 0);     /* name joined in C through Lua */
	CHECK_EQ_INT(read, 1);
	load(s, 0, "u.department = 'x' return true", &err, &ok);   /* a changed u: the Lua way */
	REQUIRE(kept_mobile_was_read(s, users[0], &read) == 0);
	CHECK_EQ_INT(read, 1);
	load(s, 1, "return true", &err, &ok);
	REQUIRE(kept_mobile_was_read(s, users[0], &read) == 0);
	CHECK_EQ_INT(read, 1);
	script_free(s);
}
