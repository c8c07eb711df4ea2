-- field_mapping.lua — your own Graph → Syncro mapping: every field is
-- optional (nil is never written, a blank Graph value never blanks Syncro).
-- The notes carry department, office and the user's Microsoft licences
-- (u.licenses); notes are in create_only, so a technician's later edits in
-- Syncro are not overwritten.
local p = require "entrasync.policy"

-- u.licenses items are { sku_id = "05e9a617-…", part = "SPE_E3",
-- name = "Microsoft 365 E3" }: the notes get the friendly names.
local function licence_names(u)
  local names = p.license_names(u)
  return #names > 0 and table.concat(names, ", ") or "none"
end

return {
  name = "field mapping",
  create_only = { "notes" },
  include = function(u, t)
    if p.is_disabled(u) or p.is_guest(u) then return false, "disabled or guest" end
    if not p.has_mail(u) then return false, "no mail address" end
    return true
  end,
  contact = function(u, t)
    return {
      name = u.displayName,
      email = u.mail,
      phone = p.first(u.businessPhones),
      mobile = u.mobilePhone,
      title = u.jobTitle,
      address1 = u.streetAddress,
      city = u.city, state = u.state, zip = u.postalCode,
      notes = string.format("Department: %s\nOffice: %s\nLicences: %s",
                            u.department or "-", u.officeLocation or "-", licence_names(u)),
    }
  end,
  on_leave = "keep",
}
