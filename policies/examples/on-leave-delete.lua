-- Example: leavers' contacts are deleted from Syncro. Deleting is
-- destructive, so the removal guard matters: a sync that would delete (or
-- mark) more than max(count, percent % of the tenant's linked contacts) is
-- held — nothing destructive happens, the rest of the sync goes on, the
-- run exits 1 — until you check and run `entrasync sync --allow-removals`.
-- Here: at most 3 contacts or 5 %, whichever is larger. A user who comes
-- back after a delete gets a new contact.
local p = require "entrasync.policy"

return {
  name = "on-leave-delete",
  include = function(u, t)
    if p.is_disabled(u) then return false, "account disabled" end
    if p.is_guest(u) or not p.has_mail(u) then return false, "guest or no mail" end
    return true
  end,
  contact = p.contact,
  on_leave = "delete",                        -- deleted, disabled or out of scope: delete
  max_removals = { count = 3, percent = 5 },
}
