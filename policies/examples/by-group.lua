-- Example: membership of an Entra group decides. The groups named in
-- `groups` are looked up in Graph at each sync (transitive membership:
-- nested groups count); u.groups is a set keyed by their names and ids.
-- Add or remove people in Entra and the next sync follows.
local p = require "entrasync.policy"

local GROUP = "Sync - PSA Contacts"

return {
  name = "by-group",
  groups = { GROUP },                         -- name or object id
  include = function(u, t)
    if not u.groups[GROUP] then return false, "not in '" .. GROUP .. "'" end
    if p.is_disabled(u) then return false, "account disabled" end
    return true
  end,
  contact = p.contact,
  -- taken out of the group (or disabled): keep the contact, with a note
  on_leave = p.mark("[left]"),
}
