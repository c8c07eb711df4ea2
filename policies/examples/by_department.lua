-- by_department.lua — only people of some departments become contacts.
-- p.filter builds the include function: each criterion is a list, values
-- match case-insensitively, criteria combine with AND. Here: enabled members
-- with a mail address in Sales, Retail or Operations.
local p = require "entrasync.policy"

local in_departments = p.filter{ user_types = { "Member" }, departments = { "Sales", "Retail", "Operations" } }

return {
  name = "by department",
  include = function(u, t)
    if p.is_disabled(u) then return false, "account disabled" end
    if not p.has_mail(u) then return false, "no mail address" end
    return in_departments(u, t)          -- true, or false with the reason
  end,
  contact = p.contact,                   -- the usual Graph → Syncro mapping
  on_leave = "keep",
}
