-- Example: only some departments become contacts.
-- Sales and Support staff are the people who call the help desk; everyone
-- else stays out of Syncro. p.filter combines criteria with AND and the
-- values of one criterion with OR, case-insensitively, and says why a user
-- is left out ("department 'Finance' not in the filter").
--   entrasync policy test policies/examples/by-department.lua --users tests/fixtures/users/contoso.json
local p = require "entrasync.policy"

local in_departments = p.filter{
  user_types  = { "Member" },                 -- no guests
  departments = { "Sales", "Support" },
}

return {
  name = "by-department",
  include = function(u, t)
    if p.is_disabled(u) then return false, "account disabled" end
    if not p.has_mail(u) then return false, "no mail address" end
    return in_departments(u, t)
  end,
  contact = p.contact,                        -- name, email, phones, title, address
  on_leave = "keep",                          -- never lose a contact by accident
}
