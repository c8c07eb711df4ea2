-- Example: leavers' contacts are kept but marked, differently per reason.
-- on_leave(c, why, t) gets the contact as entrasync last wrote it and why
-- the user left: "deleted" (removed in Entra), "disabled" (accountEnabled
-- false) or "out_of_scope" (include said no). It returns "keep", "delete"
-- or the fields to change. Marks are written once (an unchanged mark is
-- not written again), and count against the removal guard like deletes.
-- A user who comes back is updated, never duplicated.
local p = require "entrasync.policy"

local mark_left = p.mark("[left]")           -- prepends "[left] YYYY-MM-DD why" to the notes, once

return {
  name = "on-leave-mark",
  include = function(u, t)
    if p.is_disabled(u) then return false, "account disabled" end
    if p.is_guest(u) or not p.has_mail(u) then return false, "guest or no mail" end
    return true
  end,
  contact = p.contact,
  on_leave = function(c, why, t)
    if why == "out_of_scope" then return "keep" end        -- e.g. moved to another department
    if why == "deleted" then
      return { name = "[deleted] " .. (c.name or ""), phone = "", mobile = "" }
    end
    return mark_left(c, why, t)                            -- disabled: a note, nothing else
  end,
}
