-- on_leave_mark.lua — keep the contact of someone who leaves, but mark it:
-- p.mark(prefix) prepends "PREFIX YYYY-MM-DD why" to its notes (once), so
-- technicians see it; deleted users' contacts are removed, others are marked.
local p = require "entrasync.policy"

local mark = p.mark("[LEFT]")

return {
  name = "leavers marked",
  include = function(u, t)
    if p.is_disabled(u) or p.is_guest(u) then return false, "disabled or guest" end
    if not p.has_mail(u) then return false, "no mail address" end
    return true
  end,
  contact = p.contact,
  on_leave = function(c, why, t)
    if why == "deleted" then return "delete" end   -- gone from Entra for good
    return mark(c, why, t)                         -- disabled or out of scope: marked
  end,
}
