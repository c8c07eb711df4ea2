-- Example: by e-mail domain, and one Microsoft tenant feeding two Syncro
-- customers. Users of contoso.com go to the tenant's own customer; the UK
-- subsidiary (contoso.co.uk) has its own customer in Syncro. Anything else
-- (partners' domains, onmicrosoft.com test accounts) stays out.
local p = require "entrasync.policy"

-- domain -> Syncro customer id (nil = the tenant's configured customer)
local CUSTOMER_BY_DOMAIN = {
  ["contoso.com"]   = nil,
  ["contoso.co.uk"] = 204,                    -- "Contoso UK Ltd" in Syncro
}

local in_domains = p.filter{ domains = { "contoso.com", "contoso.co.uk" } }

return {
  name = "by-domain",
  include = function(u, t)
    if p.is_disabled(u) or p.is_guest(u) then return false, "disabled or guest" end
    local service, why = p.is_service_account(u)
    if service then return false, why end
    return in_domains(u, t)                   -- u.domain: lower-case domain of mail, else UPN
  end,
  contact = function(u, t)
    local c = p.contact(u)
    c.customer_id = CUSTOMER_BY_DOMAIN[u.domain]   -- nil: t.syncro_customer_id
    return c
  end,
  on_leave = "keep",
}
