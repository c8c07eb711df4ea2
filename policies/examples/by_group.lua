-- by_group.lua — membership of an Entra group decides: list the groups the
-- policy looks at in `groups` (name or id); u.groups then holds those the user
-- is a transitive member of, as a set: u.groups["Sync - PSA Contacts"] == true.
local p = require "entrasync.policy"

return {
  name = "by group",
  groups = { "Sync - PSA Contacts", "Contractors" },
  include = function(u, t)
    if p.is_disabled(u) then return false, "account disabled" end
    if not p.has_mail(u) then return false, "no mail address" end
    if u.groups["Contractors"] then return false, "in Contractors" end
    if not u.groups["Sync - PSA Contacts"] then return false, "not in Sync - PSA Contacts" end
    return true, "in Sync - PSA Contacts"
  end,
  contact = p.contact,
  on_leave = "keep",
}
