-- Example: your own field mapping, with the user's Microsoft 365 licences
-- in the contact's notes. u.licenses lists the skuPartNumber of each
-- assigned licence (SPE_E3, SPB, …); the map below gives friendlier names.
-- Fields you do not return are never written, and a blank Entra value never
-- blanks what Syncro holds. `create_only` fields are written when the
-- contact is created and then left to the technicians (here: the address).
local p = require "entrasync.policy"

local LICENCE_NAMES = {
  SPE_E3 = "Microsoft 365 E3", SPB = "Microsoft 365 Business Premium",
  O365_BUSINESS_PREMIUM = "Microsoft 365 Business Standard", EXCHANGESTANDARD = "Exchange Online (Plan 1)",
}

local function licence_line(u)
  local names = {}
  for _, part in ipairs(u.licenses) do names[#names + 1] = LICENCE_NAMES[part] or part end
  table.sort(names)
  if #names == 0 then return "Licences: none" end
  return "Licences: " .. table.concat(names, ", ")
end

return {
  name = "licenses-in-notes",
  include = function(u, t)
    if p.is_disabled(u) or p.is_guest(u) or not p.has_mail(u) then return false, "not a licensed person" end
    return true
  end,
  contact = function(u, t)
    return {
      name     = u.displayName,
      email    = u.mail,
      phone    = p.first(u.businessPhones),     -- first non-empty business phone
      mobile   = u.mobilePhone,
      title    = u.jobTitle,
      address1 = u.streetAddress,
      city     = u.city,
      zip      = u.postalCode,
      notes    = licence_line(u),               -- updated when licences change
    }
  end,
  create_only = { "address1", "city", "zip" },
  on_leave = "keep",
}
