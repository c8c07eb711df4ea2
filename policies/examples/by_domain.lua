-- by_domain.lua — one Microsoft tenant, several e-mail domains: only the
-- domains you manage become contacts, and each domain can feed its own Syncro
-- customer through customer_id (one tenant → several customers).
local p = require "entrasync.policy"

-- domain → Syncro customer id (nil = the tenant's own customer)
local customers = {
  ["contoso.com"] = nil,
  ["fabrikam.com"] = 102,
}
local managed = p.filter{ domains = { "contoso.com", "fabrikam.com" } }

return {
  name = "by domain",
  include = function(u, t)
    if p.is_disabled(u) or p.is_guest(u) then return false, "disabled or guest" end
    if not p.has_mail(u) then return false, "no mail address" end
    return managed(u, t)
  end,
  contact = function(u, t)
    local c = p.contact(u)
    c.customer_id = customers[u.domain]  -- u.domain: lower-case domain of mail (else UPN)
    return c
  end,
  on_leave = "keep",
}
