-- tests/lua/policy_helpers.lua — positive tests of lua/entrasync/policy.lua,
-- run in the sandbox by tests/lua/policy.sh (`entrasync lua`). Prints one
-- "ok - NAME" / "FAIL - NAME" line per test; exits non-zero on any failure.
local p = require "entrasync.policy"
local json = require "entrasync.json"

local failures = 0
local function test(name, fn)
  local ok, err = pcall(fn)
  if ok then
    print("ok - policy_" .. name)
  else
    failures = failures + 1
    print("FAIL - policy_" .. name)
    print("    " .. tostring(err))
  end
end

local function eq(got, want, what)
  if got ~= want then
    error(string.format("%s: got %s, want %s", what or "value", tostring(got), tostring(want)), 2)
  end
end

-- calls fn expecting an error containing `want` (plain text)
local function fails(fn, want)
  local ok, err = pcall(fn)
  if ok then error("expected an error containing: " .. want, 2) end
  if not string.find(tostring(err), want, 1, true) then
    error("error '" .. tostring(err) .. "' does not contain '" .. want .. "'", 2)
  end
end

test("license_names", function()
  local u = { licenses = {
    { sku_id = "05e9a617-0261-4cee-bb44-138d3ef5d965", part = "SPE_E3", name = "Microsoft 365 E3" },
    { sku_id = "00000000-0000-0000-0000-00000000abcd", part = "00000000-0000-0000-0000-00000000abcd",
      name = "00000000-0000-0000-0000-00000000abcd" },
    { sku_id = "x", part = "ONLY_PART" },
  } }
  eq(table.concat(p.license_names(u), ", "),
     "Microsoft 365 E3, 00000000-0000-0000-0000-00000000abcd, ONLY_PART")
  eq(#p.license_names({ licenses = {} }), 0)
  eq(#p.license_names({}), 0, "no u.licenses")
end)

test("domain", function()
  eq(p.domain("Jane.Doe@Contoso.COM"), "contoso.com")
  eq(p.domain("a@b@Sub.Example.org"), "sub.example.org")
  eq(p.domain("no-at-sign"), nil)
  eq(p.domain("trailing@"), nil)
  eq(p.domain(""), nil)
  eq(p.domain(nil), nil)
  eq(p.domain(42), nil)
  eq(p.domain(json.null), nil)
end)

test("nonempty", function()
  eq(p.nonempty("x"), true)
  eq(p.nonempty(" \t "), false)
  eq(p.nonempty(""), false)
  eq(p.nonempty(nil), false)
  eq(p.nonempty(json.null), false)
  eq(p.nonempty({}), false)
  eq(p.nonempty({ 1 }), true)
  eq(p.nonempty(0), true)
  eq(p.nonempty(false), true)
  eq(p.nonempty("\1"), true, "a control byte that is not a space")
  eq(p.nonempty(" \r\n\v\f x"), true)
  eq(p.nonempty("\194\160"), true, "NBSP is not ASCII space")
  eq(p.nonempty({ a = 1 }), true)
  eq(p.nonempty(), false)
end)

test("first", function()
  eq(p.first({ "a", "b" }), "a")
  eq(p.first({ "", "  ", json.null, "c" }), "c")
  eq(p.first({ [2] = "b", [3] = "c" }), "b")          -- holes
  eq(p.first({ nil, "", "z" }), "z")
  eq(p.first({}), nil)
  eq(p.first(json.decode('["", null, "+1 555"]')), "+1 555")
  eq(p.first(nil, "", "x", "y"), "x")                 -- arguments
  eq(p.first(nil, nil), nil)
  eq(p.first("solo"), "solo")
  eq(p.first(""), nil)
  local u = { mail = nil, userPrincipalName = "u@x.com" }
  eq(p.first(u.mail, u.userPrincipalName), "u@x.com")
end)

test("is_guest", function()
  eq(p.is_guest({ userType = "Guest" }), true)
  eq(p.is_guest({ userType = "guest" }), true)
  eq(p.is_guest({ userType = "Member", userPrincipalName = "a_b.com#EXT#@t.onmicrosoft.com" }), true)
  eq(p.is_guest({ userType = "Member", userPrincipalName = "a@t.com" }), false)
  eq(p.is_guest({}), false)
  eq(p.is_guest({ userType = "Member", userPrincipalName = 7 }), false)
  eq(p.is_guest({ userPrincipalName = "x#EXT#" }), true)
  eq(p.is_guest({ userPrincipalName = "x#ext#" }), false, "#EXT# is matched exactly")
end)

test("is_member", function()
  eq(p.is_member({ userType = "Member" }), true)
  eq(p.is_member({ userType = "MEMBER" }), true)
  eq(p.is_member({}), true)
  eq(p.is_member({ userType = "Guest" }), false)
  -- an external account is a guest, never a member too (no userType: a guest invited long ago)
  eq(p.is_member({ userPrincipalName = "carl_outlook.com#EXT#@t.onmicrosoft.com" }), false)
  eq(p.is_member({ userType = "Member", userPrincipalName = "a_b.com#EXT#@t.onmicrosoft.com" }), false)
  eq(p.is_member({ userType = "Member", userPrincipalName = "a@t.com" }), true)
end)

test("service_word_sets", function()
  eq(p.SERVICE_ADDRESS_WORDS.scanner, true, "scanner is a service address word")
  eq(p.SERVICE_ADDRESS_WORDS.anna, nil, "anna is not")
  eq(p.SERVICE_NAME_WORDS.room, true, "room is a service name word")
  local n = 0
  for w, v in pairs(p.SERVICE_NAME_WORDS) do n = n + 1; eq(v, true, w) end
  eq(n > 10, true, "the name words are listed")
end)

test("is_disabled", function()
  eq(p.is_disabled({ accountEnabled = false }), true)
  eq(p.is_disabled({ accountEnabled = true }), false)
  eq(p.is_disabled({}), false)
end)

test("has_mail", function()
  eq(p.has_mail({ mail = "a@b.com" }), true)
  eq(p.has_mail({ mail = "" }), false)
  eq(p.has_mail({ mail = "not an address" }), false)
  eq(p.has_mail({ mail = "a@b@c" }), false)
  eq(p.has_mail({ userPrincipalName = "a@b.com" }), false)
  eq(p.has_mail({ mail = json.null }), false)
  eq(p.has_mail({ mail = "a@" }), false)
  eq(p.has_mail({ mail = "@a" }), false)
  eq(p.has_mail({ mail = "@" }), false)
  eq(p.has_mail({ mail = "@a@b" }), true, "the search starts at the second byte")
  eq(p.has_mail({ mail = 5 }), false)
  eq(p.has_mail({ mail = "a@b\0@c" }), false)
end)

test("is_service_account", function()
  local yes = {
    { mail = "noreply@contoso.com" }, { mail = "no-reply@contoso.com" }, { mail = "do_not_reply@contoso.com" },
    { mail = "DoNotReply@contoso.com" }, { mail = "svc_backup@contoso.com" }, { mail = "scanner2@contoso.com" },
    { mail = "room.12@contoso.com" }, { mail = "Admin@contoso.com" }, { mail = "helpdesk@contoso.com" },
    { userPrincipalName = "sync_server01@contoso.onmicrosoft.com" },
    { displayName = "Conf Room Adams", mail = "Adams@contoso.com" },
    { displayName = "MOD Administrator", mail = "mod@contoso.com" },
    { displayName = "Shared Mailbox - Finance", mail = "finance.team@contoso.com" },
  }
  for i, u in ipairs(yes) do
    local is, why = p.is_service_account(u)
    eq(is, true, "case " .. i .. " (" .. tostring(u.mail or u.userPrincipalName) .. ")")
    eq(type(why), "string", "reason " .. i)
  end
  local no = {
    { displayName = "Jane Doe", mail = "jane.doe@contoso.com" },
    { displayName = "Brad Mintz", mail = "bmintz@contoso.com" },    -- "admin" only inside words
    { displayName = "Roomba Fan", mail = "roomba@contoso.com" },
    { displayName = "Testa Rossi", mail = "testa@contoso.com" },
    { displayName = "Ana Svcova", mail = "ana.svcova@contoso.com" },
    {},
  }
  for i, u in ipairs(no) do
    eq(p.is_service_account(u), false, "person " .. i .. " (" .. tostring(u.mail) .. ")")
  end
  local _, why = p.is_service_account({ mail = "scanner2@contoso.com" })
  eq(why, "service address ('scanner')")
  _, why = p.is_service_account({ displayName = "Conf Room Adams", mail = "Adams@contoso.com" })
  eq(why, "service name ('room')")
end)

test("filter_single_criteria", function()
  local inc = p.filter { departments = { "Sales", "Support" } }
  eq(inc({ department = "sales" }), true)
  eq(inc({ department = "SUPPORT" }), true)
  local ok, why = inc({ department = "Engineering" })
  eq(ok, false)
  eq(why, "department 'Engineering' not in the filter")
  ok, why = inc({})
  eq(ok, false)
  eq(why, "no department")
  eq(p.filter { user_types = "Member" } ({ userType = "member" }), true)          -- one string
  eq(p.filter { offices = { "HQ" } } ({ officeLocation = "hq" }), true)
  eq(p.filter { domains = { "Contoso.com" } } ({ domain = "contoso.com" }), true)
  eq(p.filter { domains = { "contoso.com" } } ({ domain = "fabrikam.com" }), false)
end)

test("filter_groups", function()
  local inc = p.filter { groups = { "sales team", "Staff" } }
  eq(inc({ groups = { ["Sales Team"] = true } }), true)
  eq(inc({ groups = { staff = true, Other = true } }), true)
  local ok, why = inc({ groups = { Other = true } })
  eq(ok, false)
  eq(why, "not in the filter's groups")
  eq(inc({ groups = {} }), false)
  eq(inc({}), false)
end)

test("filter_criteria_combine_with_and", function()
  local inc = p.filter { user_types = { "Member" }, departments = { "Sales" }, domains = { "contoso.com" } }
  local u = { userType = "Member", department = "Sales", domain = "contoso.com" }
  eq(inc(u), true)
  u.domain = "fabrikam.com"
  local ok, why = inc(u)
  eq(ok, false)
  eq(why, "domain 'fabrikam.com' not in the filter")
  u.domain, u.userType = "contoso.com", "Guest"
  ok, why = inc(u)
  eq(ok, false)
  eq(why, "user type 'Guest' not in the filter")
  eq(p.filter {} ({}), true)   -- no criteria: everyone
end)

test("filter_argument_errors", function()
  fails(function() p.filter { departmens = { "Sales" } } end,
    "p.filter: unknown criterion 'departmens' (did you mean 'departments'?)")
  fails(function() p.filter { departments = {} } end, "p.filter: 'departments' is empty")
  fails(function() p.filter { departments = 5 } end, "'departments' must be a list of strings, got number")
  fails(function() p.filter { departments = { "a", 5 } } end, "'departments' must be a list of strings")
  fails(function() p.filter "Sales" end, "p.filter: expects a table")
  -- the error points at the caller's line
  fails(function() p.filter { bogus = {} } end, "policy_helpers.lua:")
end)

test("contact_mapping", function()
  local u = json.decode([[{
    "displayName": "Jane Doe", "givenName": "Jane", "surname": "Doe", "mail": "jane@contoso.com",
    "businessPhones": ["+1 425 555 0100", "+1 425 555 0199"], "mobilePhone": "+1 425 555 0101",
    "jobTitle": "Rep", "streetAddress": "1 Main St", "city": "Springfield", "state": "IL", "postalCode": "62701"
  }]])
  local c = p.contact(u)
  eq(c.name, "Jane Doe")
  eq(c.email, "jane@contoso.com")
  eq(c.phone, "+1 425 555 0100")
  eq(c.mobile, "+1 425 555 0101")
  eq(c.title, "Rep")
  eq(c.address1, "1 Main St")
  eq(c.city, "Springfield")
  eq(c.state, "IL")
  eq(c.zip, "62701")
  eq(c.notes, nil)
  eq(p.contact({ givenName = "A", surname = "B" }).name, "A B")
  eq(p.contact({ displayName = " ", mail = "x@y.z" }).name, "x@y.z")
  eq(p.contact({ businessPhones = json.array() }).phone, nil)
  eq(p.contact({ businessPhones = json.decode("[null]") }).phone, nil)
end)

test("mark", function()
  local mark = p.mark("[left]")
  local today = os.date("!%Y-%m-%d")
  local ch = mark({ notes = "VIP customer" }, "removed from Entra", {})
  eq(ch.notes, "[left] " .. today .. " removed from Entra\nVIP customer")
  ch = mark({}, nil, {})
  eq(ch.notes, "[left] " .. today)
  -- idempotent: an already marked contact is left alone
  ch = mark({ notes = "[left] 2020-01-01 gone\nold" }, "again", {})
  eq(next(ch), nil)
  eq(p.mark()({ notes = "" }, "x").notes, "[left] " .. today .. " x")
  fails(function() p.mark("") end, "p.mark: the prefix must be a non-empty string")
  fails(function() p.mark(5) end, "p.mark: the prefix must be a non-empty string")
  -- on_leave = p.mark (not called): on_leave(c, why, t) reaches p.mark with the contact
  fails(function() p.mark({ notes = "x" }, "disabled", {}) end, "give on_leave = p.mark() or p.mark(\"[left]\")")
  -- notes near Syncro's limit: the mark on top, their end cut (said), within the limit
  local line = "[left] " .. today .. " disabled"
  local long = string.rep("x", 16380)
  local cut = mark({ notes = long }, "disabled").notes
  eq(#cut <= 16384, true, "within the limit")
  eq(cut:sub(1, #line + 4), line .. "\nxxx", "the mark on top")
  local xs, n = cut:match("\n(x+)\n%[cut by entrasync: (%d+) bytes of the older notes%]$")
  eq(#xs + tonumber(n), 16380, "the cut said")
  -- the cut is never inside a character: "é" is 2 bytes
  local accents = string.rep("\195\169", 8190) .. "yyyy"
  cut = mark({ notes = accents }, "disabled").notes
  eq(#cut <= 16384, true, "within the limit (é)")
  eq(utf8.len(cut) ~= nil, true, "valid UTF-8 after the cut")
  -- a mark that fits is not cut
  local fits = string.rep("x", 16384 - #line - 1)
  eq(mark({ notes = fits }, "disabled").notes, line .. "\n" .. fits)
end)

test("text_word_matcher", function()
  local text = require "entrasync.text"
  local m = text.word_matcher { "Room", "svc", "noreply" }
  eq(m("Conf ROOM Adams"), "room")
  eq(m("svc_backup2@contoso.com", "@"), "svc")
  eq(m("backup@svc.contoso.com", "@"), nil)              -- stops at "@"
  eq(m("roomba"), nil)                                   -- whole words only
  eq(m("x-noreply-x"), "noreply")
  eq(m(""), nil)
  eq(m("caf\u{E9} room"), "room")                          -- non-ASCII bytes separate words
  eq(m(nil), nil)
  eq(m(42), nil, "not a string")
  eq(p.is_service_account({ displayName = 12345 }), false)
  fails(function() text.word_matcher { "two words" } end, "is not a word of ASCII letters")
  fails(function() text.word_matcher { 5 } end, "item 1 must be a word")
end)

test("module_is_cached", function()
  eq(require("entrasync.policy"), p)
  eq(require("entrasync.json"), json)
end)

if failures > 0 then error(failures .. " policy helper test(s) failed", 0) end
