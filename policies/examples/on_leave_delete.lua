-- on_leave_delete.lua — the contact of someone who leaves is deleted from
-- Syncro. Destructive: the removal guard still holds a tenant when one run
-- would remove more than max(5, 10%) of its contacts (tune it here, or run
-- `sync --allow-removals` once when you mean it).
local p = require "entrasync.policy"

return {
  name = "leavers deleted",
  include = function(u, t)
    if p.is_disabled(u) or p.is_guest(u) then return false, "disabled or guest" end
    if not p.has_mail(u) then return false, "no mail address" end
    return true
  end,
  contact = p.contact,
  on_leave = "delete",
  max_removals = { count = 5, percent = 10 },
}
