-- Example: every real person of the tenant, and nobody else. Guests
-- (userType Guest or #EXT# accounts), disabled accounts, accounts without a
-- mailbox and likely service, shared or resource mailboxes (scanner@,
-- reception@, "Conf Room …", noreply@) are left out, each with its reason,
-- so `entrasync policy test` shows why someone is missing.
local p = require "entrasync.policy"

return {
  name = "guests-excluded",
  include = function(u, t)
    if p.is_guest(u) then return false, "guest account" end
    if not p.is_member(u) then return false, "not a member account" end
    if p.is_disabled(u) then return false, "account disabled" end
    if not p.has_mail(u) then return false, "no mail address" end
    local service, why = p.is_service_account(u)
    if service then return false, why end
    return true
  end,
  contact = p.contact,
  on_leave = "keep",
}
