-- no_guests.lua — everyone with a mailbox except guests (B2B #EXT# accounts),
-- disabled accounts and likely service, shared or room mailboxes.
local p = require "entrasync.policy"

return {
  name = "guests excluded",
  include = function(u, t)
    if p.is_guest(u) then return false, "guest account" end
    if p.is_disabled(u) then return false, "account disabled" end
    if not p.has_mail(u) then return false, "no mail address" end
    local service, why = p.is_service_account(u)
    if service then return false, why end
    return true
  end,
  contact = p.contact,
  on_leave = "keep",
}
