-- policies/default.lua — the default tenant policy: every enabled Member
-- account with a mailbox address becomes a Syncro contact, except likely
-- service, shared and resource mailboxes; contacts of people who leave are
-- kept (non-destructive). Copy this file to write a tenant's own policy.
local p = require "entrasync.policy"
local is_disabled, is_guest, is_member, has_mail, is_service_account =
  p.is_disabled, p.is_guest, p.is_member, p.has_mail, p.is_service_account

return {
  name = "default",
  description = "Enabled members with a mail address; service mailboxes skipped; leavers kept",

  include = function(u, t)
    if is_disabled(u) then return false, "account disabled" end
    if is_guest(u) then return false, "guest account" end
    if not is_member(u) then return false, "not a member account" end
    if not has_mail(u) then return false, "no mail address" end
    local service, why = is_service_account(u)
    if service then return false, why end
    return true
  end,

  contact = p.contact,

  on_leave = "keep",
}
