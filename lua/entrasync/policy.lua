-- entrasync.policy — helpers for tenant policies (runtime code, compiled into
-- the binary; policies get it with `local p = require "entrasync.policy"`).
--
-- The user table u has the Microsoft Graph properties under their Graph names
-- (JSON null = absent), plus u.domain (lower-case), u.groups (set of group
-- names) and u.licenses (list of { sku_id, part, name }). The helpers run once per user
-- per sync, so they stay cheap: no closures or tables built per call on the
-- common paths.
local P = {}

local type, pairs, ipairs, select, error, tostring, next = type, pairs, ipairs, select, error, tostring, next
local lower, match, format, sub =
  string.lower, string.match, string.format, string.sub
local concat, sort = table.concat, table.sort
local text = require("entrasync.text")
local word_matcher = text.word_matcher

-- Levenshtein distance, for "did you mean" in helper argument errors.
local function distance(a, b)
  local la, lb = #a, #b
  local row = {}
  for j = 0, lb do row[j] = j end
  for i = 1, la do
    local diag = row[0]
    row[0] = i
    for j = 1, lb do
      local up = row[j]
      local cost = (sub(a, i, i) == sub(b, j, j)) and 0 or 1
      local best = diag + cost
      if up + 1 < best then best = up + 1 end
      if row[j - 1] + 1 < best then best = row[j - 1] + 1 end
      row[j] = best
      diag = up
    end
  end
  return row[lb]
end

local function suggestion(given, names)
  local best, bestd
  for _, n in ipairs(names) do
    local d = distance(given, n)
    if not bestd or d < bestd then best, bestd = n, d end
  end
  if bestd and bestd <= 2 then return " (did you mean '" .. best .. "'?)" end
  return ""
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

--- p.domain(addr) -> the lower-case domain of an e-mail address or UPN, or nil.
function P.domain(addr)
  if type(addr) ~= "string" then return nil end
  local d = match(addr, "@([^@]+)$")
  return d and lower(d) or nil
end

--- p.nonempty(v) -> true unless v is nil, json.null, a blank string or an empty table.
--- (In C, entrasync.text: one call instead of a few Lua instructions per use.)
local nonempty = text.nonempty
P.nonempty = nonempty

--- p.first(list) -> the first non-empty item of a list (holes allowed);
--- p.first(a, b, ...) -> the first non-empty argument. nil when none.
---   p.first(u.businessPhones)   p.first(u.mail, u.userPrincipalName)
function P.first(...)
  local n = select("#", ...)
  if n == 1 then
    local list = ...
    if type(list) ~= "table" then return nonempty(list) and list or nil end
    local v = list[1]
    if nonempty(v) then return v end
    local best, bi = nil, nil
    for i, item in pairs(list) do
      if type(i) == "number" and (bi == nil or i < bi) and nonempty(item) then best, bi = item, i end
    end
    return best
  end
  for i = 1, n do
    local v = select(i, ...)
    if nonempty(v) then return v end
  end
  return nil
end

--- p.is_guest(u): a Guest (userType, any case) or an external (#EXT#) account.
--- p.is_member(u): userType Member (any case; an absent userType counts as Member).
--- p.is_disabled(u): accountEnabled is false (absent = not known to be disabled).
--- p.has_mail(u): u.mail is an address: one "@" with something on each side.
--- (In C, entrasync.text: one call each; every user goes through them.)
P.is_guest, P.is_member, P.is_disabled, P.has_mail = text.is_guest, text.is_member, text.is_disabled, text.has_mail

-- Words that mark a mailbox as a service, shared or resource account when
-- they appear as a word of the address's local part ("svc_backup",
-- "scanner2", "room.12") or of the display name ("Conf Room Adams"). The
-- matchers (C, entrasync.text) compare words without regard to case and
-- allocate nothing unless a word matches.
local SERVICE_ADDRESS_WORDS = {
  "noreply", "donotreply", "admin", "administrator", "svc", "service", "services", "scanner", "scan",
  "scans", "scantoemail", "room", "rooms", "conference", "confroom", "boardroom", "meetingroom",
  "mailbox", "shared", "printer", "copier", "fax", "calendar", "resource", "postmaster", "mailer",
  "daemon", "bounce", "bounces", "test", "helpdesk", "info", "support", "alerts", "alert",
  "notifications", "notification", "backup", "sync", "automation", "bot", "reception", "accounts",
  "billing", "invoices", "careers", "jobs", "marketing", "office", "webmaster", "security",
}
local SERVICE_NAME_WORDS = {
  "noreply", "admin", "administrator", "service", "scanner", "room", "conference", "boardroom",
  "mailbox", "shared", "printer", "copier", "fax", "calendar", "resource", "test", "helpdesk",
  "sync", "synchronization", "automation", "bot",
}
local service_address_word = word_matcher(SERVICE_ADDRESS_WORDS)
local service_name_word = word_matcher(SERVICE_NAME_WORDS)

-- The same words as sets, for policies to read or copy (p.SERVICE_ADDRESS_WORDS.scanner
-- == true); changing them changes what a policy's own helper reads, not
-- p.is_service_account, whose matchers are built above.
local function word_set(list)
  local set = {}
  for _, w in ipairs(list) do set[w] = true end
  return set
end
P.SERVICE_ADDRESS_WORDS = word_set(SERVICE_ADDRESS_WORDS)
P.SERVICE_NAME_WORDS = word_set(SERVICE_NAME_WORDS)

--- p.is_service_account(u) -> true, why | false: a likely service, shared or
--- resource mailbox, judged by the words of its address and display name:
--- a no-reply address (no-reply, noreply, do_not_reply, ... at the start,
--- any case) -> true, "no-reply address"; a listed word in the local part
--- of u.mail (else of u.userPrincipalName) -> true, "service address
--- ('scanner')"; a listed word in u.displayName -> true, "service name
--- ('room')". In C (entrasync.text.service_account).
P.is_service_account = text.service_account(service_address_word, service_name_word)

-- p.filter criteria -> the user property each one reads.
local FILTER_FIELDS = {
  user_types = "userType", departments = "department", offices = "officeLocation",
  domains = "domain", groups = false,
}
local FILTER_NAMES = { "user_types", "departments", "offices", "domains", "groups" }
local FILTER_LABELS = {
  user_types = "user type", departments = "department", offices = "office", domains = "domain",
}

local function lower_set(key, list)
  if type(list) == "string" then list = { list } end
  if type(list) ~= "table" then
    error(format("p.filter: '%s' must be a list of strings, got %s", key, type(list)), 3)
  end
  local set, n = {}, 0
  for k, v in pairs(list) do
    if type(k) ~= "number" or type(v) ~= "string" then
      error(format("p.filter: '%s' must be a list of strings (item %s is a %s)", key, tostring(k), type(v)), 3)
    end
    set[lower(v)] = true
    n = n + 1
  end
  if n == 0 then error(format("p.filter: '%s' is empty (it would exclude everyone)", key), 3) end
  return set
end

--- p.filter{ user_types=, departments=, offices=, domains=, groups= } -> an
--- include function(u, t) -> bool, reason. Each criterion is a list (or one
--- string); criteria combine with AND, the values of one criterion with OR;
--- matching is case-insensitive. groups matches the names in u.groups.
function P.filter(spec)
  if type(spec) ~= "table" then
    error("p.filter: expects a table such as { departments = { \"Sales\" } }, got " .. type(spec), 2)
  end
  local names = {}
  for k in pairs(spec) do
    if type(k) ~= "string" or FILTER_FIELDS[k] == nil then
      error(format("p.filter: unknown criterion '%s'%s (criteria: %s)", tostring(k),
        suggestion(tostring(k), FILTER_NAMES), concat(FILTER_NAMES, ", ")), 2)
    end
    names[#names + 1] = k
  end
  sort(names)   -- a stable order, so reasons do not depend on hashing
  local fields, sets, labels, n = {}, {}, {}, #names
  for i, k in ipairs(names) do
    fields[i] = FILTER_FIELDS[k]
    sets[i] = lower_set(k, spec[k])
    labels[i] = FILTER_LABELS[k]
  end
  return function(u, t)
    for i = 1, n do
      local field, set = fields[i], sets[i]
      if field then
        local v = u[field]
        if type(v) ~= "string" or not set[lower(v)] then
          if v == nil then return false, "no " .. labels[i] end
          return false, labels[i] .. " '" .. tostring(v) .. "' not in the filter"
        end
      else
        local ok, g = false, u.groups
        if type(g) == "table" then
          for name in pairs(g) do
            if type(name) == "string" and set[lower(name)] then ok = true break end
          end
        end
        if not ok then return false, "not in the filter's groups" end
      end
    end
    return true
  end
end

--- p.contact(u) -> the obvious Graph -> Syncro contact mapping: name,
--- email, phone, mobile, title, address1, city, state, zip. Absent values
--- stay absent (the contact keeps what it has).
---   name     u.displayName, else "givenName surname" when both are non-empty,
---            else the first non-empty of givenName, surname, mail, userPrincipalName
---   email = u.mail, phone = u.businessPhones[1] (unless json.null), mobile = u.mobilePhone,
---   title = u.jobTitle, address1 = u.streetAddress, city, state, zip = u.postalCode
--- (In C, entrasync.text: a policy whose contact is p.contact itself gets its
--- contacts read straight from the user's JSON text, with no Lua values made.)
P.contact = text.contact

--- p.license_names(u) -> the friendly names of the user's licences, in
--- order ({ "Microsoft 365 E3", ... }; an SKU missing from the name table
--- shows its id), an empty list when none:
---   table.concat(p.license_names(u), ", ")
function P.license_names(u)
  local names, lic = {}, u.licenses
  if type(lic) ~= "table" then return names end
  for i = 1, #lic do
    local l = lic[i]
    names[i] = type(l) == "table" and (l.name or l.part or l.sku_id) or tostring(l)
  end
  return names
end

--- p.mark(prefix) -> an on_leave function(c, why, t) that keeps the contact
--- but prepends "PREFIX YYYY-MM-DD why" to its notes (once: a contact whose
--- notes already start with prefix is left alone). Notes that would not fit
--- Syncro's limit with the line on top lose their end, which a last line
--- says ("[cut by entrasync: N bytes of the older notes]").
local NOTES_MAX = text.notes_max
local CUT_LINE = "\n[cut by entrasync: %d bytes of the older notes]"

-- line, "\n" and notes, the notes' end cut (at a UTF-8 character's start)
-- to keep within NOTES_MAX bytes.
local function notes_below(line, notes)
  local all = line .. "\n" .. notes
  if #all <= NOTES_MAX then return all end
  local keep = NOTES_MAX - #line - 1 - #format(CUT_LINE, #notes)
  if keep < 0 then keep = 0 end
  -- a byte 0x80-0xBF continues a character: the cut goes before it
  while keep > 0 and match(notes, "^[\128-\191]", keep + 1) do keep = keep - 1 end
  return line .. "\n" .. sub(notes, 1, keep) .. format(CUT_LINE, #notes - keep)
end

function P.mark(prefix)
  if prefix == nil then prefix = "[left]" end
  if type(prefix) == "table" then   -- on_leave = p.mark: called as on_leave(c, why, t)
    error("p.mark: give on_leave = p.mark() or p.mark(\"[left]\") (called: it makes the on_leave function), "
          .. "not p.mark itself", 2)
  end
  if type(prefix) ~= "string" or prefix == "" then
    error("p.mark: the prefix must be a non-empty string", 2)
  end
  return function(c, why, t)
    local notes = type(c) == "table" and c.notes or nil
    if type(notes) ~= "string" then notes = "" end
    if sub(notes, 1, #prefix) == prefix then return {} end
    local line = prefix .. " " .. os.date("!%Y-%m-%d")
    if type(why) == "string" and why ~= "" then line = line .. " " .. why end
    if notes ~= "" then line = notes_below(line, notes) end
    return { notes = line }
  end
end

return P
