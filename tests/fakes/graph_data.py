"""graph_data.py - deterministic generator of fake Microsoft Entra tenants for fake_graph.py.

Produces the *state document*: a plain JSON-able dict (tenants, users, groups, devices, SKUs,
secure-score model, apps and their per-tenant grants, contracts) that graph_model.State loads,
that `--state FILE.json` persists and that GET /_fake/state dumps.  Python 3 stdlib only.

Everything is derived from (seed, tenant key) with random.Random(str), so adding a tenant does not
change the others and the same --seed always gives the same directory.  Shapes and key names
follow /work/shared/reference/graph-examples/*.json; SKU ids and service plans come from
/work/shared/reference/skus.csv (a subset, embedded so the fake has no file dependency).
"""

import calendar
import functools
import random
import time
import unicodedata

# ---------------------------------------------------------------------------------------------
# Static tables

# (skuPartNumber, skuId, [(servicePlanName, servicePlanId)]) - real rows of skus.csv.
SKUS = [
    ("SPE_E3", "05e9a617-0261-4cee-bb44-138d3ef5d965", [
        ("YAMMER_ENTERPRISE", "7547a3fe-08ee-4ccb-b430-5077c5041653"),
        ("INTUNE_A", "c1ec4a95-1f05-45b3-a911-aa3fa01094f5"),
        ("MFA_PREMIUM", "8a256a2b-b617-496d-b51b-e76466e88db0"),
        ("AAD_PREMIUM", "41781fb2-bc02-4b7c-bd55-b576c07bb09d"),
        ("MCOSTANDARD", "0feaeb32-d00e-4d66-bd5a-43b5b83db82c"),
        ("SHAREPOINTENTERPRISE", "5dbe027f-2339-4123-9542-606e4d348a72"),
        ("RMS_S_ENTERPRISE", "bea4c11e-220a-4e6d-8eb8-8ea15d019f90")]),
    ("O365_BUSINESS_PREMIUM", "f245ecc8-75af-4f8e-b61f-27d8114de5f3", [
        ("EXCHANGE_S_STANDARD", "9aaf7827-d63c-4b61-89c3-182f06f82e5c"),
        ("TEAMS1", "57ff2da0-773e-42df-b2af-ffb7a2317929"),
        ("YAMMER_ENTERPRISE", "7547a3fe-08ee-4ccb-b430-5077c5041653"),
        ("MCOSTANDARD", "0feaeb32-d00e-4d66-bd5a-43b5b83db82c"),
        ("SHAREPOINTSTANDARD", "c7699d2e-19aa-44de-8edf-1736da088ca1")]),
    ("ENTERPRISEPACK", "6fd2c87f-b296-42f0-b197-1e91e994b900", [
        ("TEAMS1", "57ff2da0-773e-42df-b2af-ffb7a2317929"),
        ("MCOSTANDARD", "0feaeb32-d00e-4d66-bd5a-43b5b83db82c"),
        ("SHAREPOINTENTERPRISE", "5dbe027f-2339-4123-9542-606e4d348a72"),
        ("RMS_S_ENTERPRISE", "bea4c11e-220a-4e6d-8eb8-8ea15d019f90"),
        ("EXCHANGE_S_ENTERPRISE", "efb87545-963c-4e0d-99df-69c6916d9eb0"),
        ("OFFICESUBSCRIPTION", "43de0ff5-c92c-492b-9116-175376d08c38"),
        ("YAMMER_ENTERPRISE", "7547a3fe-08ee-4ccb-b430-5077c5041653")]),
    ("O365_BUSINESS_ESSENTIALS", "3b555118-da6a-4418-894f-7df1e2096870", [
        ("YAMMER_ENTERPRISE", "7547a3fe-08ee-4ccb-b430-5077c5041653"),
        ("EXCHANGE_S_STANDARD", "9aaf7827-d63c-4b61-89c3-182f06f82e5c"),
        ("SHAREPOINTSTANDARD", "c7699d2e-19aa-44de-8edf-1736da088ca1"),
        ("MCOSTANDARD", "0feaeb32-d00e-4d66-bd5a-43b5b83db82c"),
        ("TEAMS1", "57ff2da0-773e-42df-b2af-ffb7a2317929")]),
    ("SPB", "cbdc14ab-d96c-4c30-b9f4-6ada7cdc1d46", [
        ("SHAREPOINTSTANDARD", "c7699d2e-19aa-44de-8edf-1736da088ca1"),
        ("TEAMS1", "57ff2da0-773e-42df-b2af-ffb7a2317929"),
        ("INTUNE_A", "c1ec4a95-1f05-45b3-a911-aa3fa01094f5"),
        ("AAD_PREMIUM", "41781fb2-bc02-4b7c-bd55-b576c07bb09d"),
        ("MFA_PREMIUM", "8a256a2b-b617-496d-b51b-e76466e88db0"),
        ("YAMMER_ENTERPRISE", "7547a3fe-08ee-4ccb-b430-5077c5041653"),
        ("EXCHANGE_S_FOUNDATION", "113feb6c-3fe4-4440-bddc-54d774bf0318")]),
    ("EMS", "efccb6f7-5641-4e0e-bd10-b4976e1bf68e", [
        ("AAD_PREMIUM", "41781fb2-bc02-4b7c-bd55-b576c07bb09d"),
        ("EXCHANGE_S_FOUNDATION", "113feb6c-3fe4-4440-bddc-54d774bf0318"),
        ("RMS_S_ENTERPRISE", "bea4c11e-220a-4e6d-8eb8-8ea15d019f90"),
        ("MFA_PREMIUM", "8a256a2b-b617-496d-b51b-e76466e88db0"),
        ("INTUNE_A", "c1ec4a95-1f05-45b3-a911-aa3fa01094f5")]),
    ("EXCHANGESTANDARD", "4b9405b0-7788-4568-add1-99614e613b69", [
        ("EXCHANGE_S_STANDARD", "9aaf7827-d63c-4b61-89c3-182f06f82e5c")]),
    ("POWER_BI_STANDARD", "a403ebcc-fae0-4ca2-8c8c-7a907fd6c235", [
        ("BI_AZURE_P0", "2049e525-b859-401b-b2a0-e0a31c4b1fe4"),
        ("EXCHANGE_S_FOUNDATION", "113feb6c-3fe4-4440-bddc-54d774bf0318")]),
    ("FLOW_FREE", "f30db892-07e9-47e9-837c-80727f46fd3d", [
        ("EXCHANGE_S_FOUNDATION", "113feb6c-3fe4-4440-bddc-54d774bf0318"),
        ("FLOW_P2_VIRAL", "50e68c76-46c6-4674-81f9-75456511b170")]),
    # Deliberately NOT in skus.csv: clients must fall back to skuPartNumber for unknown GUIDs.
    ("TEAMS_ROOMS_PILOT_LEGACY", "2b7f0e4a-9c1d-4e55-8a3b-6f0c7d1e9a42", [
        ("MCOMEETBASIC", "9974d6cf-cd24-4ba2-921c-e2aa687da846"),
        ("EXCHANGE_S_FOUNDATION", "113feb6c-3fe4-4440-bddc-54d774bf0318")]),
]
SKU_BY_PART = {s[0]: s for s in SKUS}
PLANS_BY_SKU = {s[1]: s[2] for s in SKUS}
UNKNOWN_SKU_ID = "2b7f0e4a-9c1d-4e55-8a3b-6f0c7d1e9a42"

# App roles an app-only token can carry (graph-api.md section 11 plus alternatives).
ALL_ROLES = [
    "User.Read.All", "GroupMember.Read.All", "Organization.Read.All", "SecurityEvents.Read.All",
    "Directory.Read.All", "User.EnableDisableAccount.All", "User.RevokeSessions.All",
    "User-PasswordProfile.ReadWrite.All",
]
PARTNER_ROLES = ["Directory.Read.All", "CrossTenantInformation.ReadBasic.All", "User.Read.All",
                 "Organization.Read.All", "SecurityEvents.Read.All"]

# The demo multi-tenant app (registered in the partner tenant, consented in the customers).
DEMO_CLIENT_ID = "4f3c5b7a-8e2d-4c1b-9a6f-0d2e1c3b4a59"
DEMO_SECRET = "Xq7Q~entrasync.fake-demo-secret_0001"
DEMO_SECRET_ID = "7d9f0a1e-3b2c-4d5e-8f6a-1b2c3d4e5f60"

# Built-in demo tenants: key -> (fixed tenant id, display name, custom domain or None, users,
# country, hybrid (onPremisesSyncEnabled), SKU plan).
DEMO_TENANTS = [
    ("contoso", "6babcaad-604b-40ac-a9d7-9fd97c0b779f", "Contoso, Ltd", "contoso.com", 38, "US",
     False, [("SPE_E3", 0.70), ("O365_BUSINESS_PREMIUM", 0.15), ("POWER_BI_STANDARD", 0.2),
             ("TEAMS_ROOMS_PILOT_LEGACY", 0.05)]),
    ("fabrikam", "2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d", "Fabrikam, Inc.", "fabrikam.com", 27, "DE",
     True, [("ENTERPRISEPACK", 0.8), ("EMS", 0.5), ("FLOW_FREE", 0.1)]),
    ("northwind", "9c8b7a6d-5e4f-4321-a0b9-c8d7e6f5a4b3", "Northwind Traders", None, 22, "GB",
     False, [("O365_BUSINESS_PREMIUM", 0.6), ("O365_BUSINESS_ESSENTIALS", 0.3),
             ("EXCHANGESTANDARD", 0.1)]),
]
# Listed in the partner's contracts but the demo app has no service principal there (700016).
DEMO_UNCONSENTED = ("woodgrove", "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "Woodgrove Bank",
                    "woodgrovebank.com", 8, "US", False, [("SPB", 0.9)])
PARTNER_TENANT = ("partner", "e5a1c0de-1111-4abc-9def-0123456789ab", "Tailspin IT Services",
                  "tailspin-it.com", 6, "NL", False, [("SPB", 1.0)])

GENERATED_NAMES = [
    "Adatum Corporation", "Alpine Ski House", "Litware, Inc.", "Proseware, Inc.", "Woodgrove Tools",
    "Wingtip Toys", "Relecloud", "Trey Research", "Lucerne Publishing", "Coho Winery",
    "Margie's Travel", "Tailwind Traders", "Humongous Insurance", "Blue Yonder Airlines",
    "VanArsdel, Ltd.", "Southridge Video", "Fourth Coffee", "Wide World Importers",
    "Consolidated Messenger", "Lamna Healthcare", "Munson's Pickles and Preserves",
    "Bellows College", "Best For You Organics", "City Power & Light", "First Up Consultants",
    "Graphic Design Institute", "Nod Publishers", "Olympia Hotels", "Contoso Pharmaceuticals",
    "A. Datum Bikes",
]

FIRST_NAMES = [
    "Adele", "Alex", "Allan", "Bianca", "Brian", "Cameron", "Christie", "Debra", "Delia", "Diego",
    "Emily", "Enrico", "Gerhart", "Grady", "Henrietta", "Irvin", "Isaiah", "Johanna", "Joni",
    "Lee", "Lidia", "Lynne", "Megan", "Miriam", "Nestor", "Patti", "Pradeep", "Raul", "Sally",
    "Sanjay", "Tina", "Vance", "Wanda", "Yuki", "Zainab", "Oliver", "Amelia", "Noah", "Sophie",
    "Liam", "Emma", "Lucas", "Mia", "Hannah", "Jonas", "Lena", "Finn", "Clara", "Omar", "Priya",
]
LAST_NAMES = [
    "Vance", "Wilber", "Deyoung", "Kelly", "Johnson", "White", "Cline", "Berger", "Dennis",
    "Soto", "Braun", "Muñoz", "Gonzales", "Archie", "Mueller", "Sink", "Lambert", "Harris",
    "Gray", "Holloway", "Robbins", "Bowen", "Zbinden", "Wilkins", "Fernandez", "Gupta", "Rogers",
    "Patel", "Smith", "Taylor", "Brown", "Evans", "Walker", "Wright", "Clarke", "Fischer", "Weber",
    "Schneider", "Meyer", "Jansen", "de Vries", "Bakker", "Visser", "Okafor", "Nakamura", "Kim",
    "Nguyen", "Rossi", "Dubois", "O'Brien",
]
# A few names outside ASCII (the client must keep UTF-8 intact end to end).
NON_ASCII = [
    ("José", "Núñez"), ("Zoë", "Ångström"), ("Łukasz", "Żółkiewski"), ("Søren", "Kierkegård"),
    ("François", "Lefèvre"), ("Antonín", "Dvořák"), ("Renée", "Müller"),
    ("Björk", "Guðmundsdóttir"),
    ("Ελένη", "Παπαδοπούλου"), ("明", "李"), ("Ayşe", "Yılmaz"), ("Siobhán", "Ó Súilleabháin"),
]
DEPARTMENTS = {
    "Sales": ["Account Executive", "Sales Manager", "Inside Sales Representative",
              "Sales Director"],
    "Finance": ["Accountant", "Finance Manager", "Controller", "Payroll Specialist"],
    "Operations": ["Operations Manager", "Logistics Coordinator", "Warehouse Associate",
                   "Warehouse Lead"],
    "IT": ["IT Administrator", "Systems Engineer", "Helpdesk Technician", "IT Manager"],
    "Marketing": ["Marketing Manager", "Content Strategist", "Product Marketing Manager"],
    "Human Resources": ["HR Generalist", "HR Manager", "Recruiter"],
    "Support": ["Support Engineer", "Customer Success Manager", "Support Lead"],
    "Executive": ["Chief Executive Officer", "Chief Financial Officer", "Chief Operating Officer"],
}
GUEST_DOMAINS = ["gmail.com", "outlook.com", "partnerfirm.com", "consulting-group.net", "yahoo.com"]
SHARED_MAILBOXES = [("Info", "info"), ("Accounts Payable", "ap"), ("Reception", "reception"),
                    ("Sales Team", "sales"), ("Support Desk", "support"), ("Careers", "careers")]
OFFICES = {
    "US": [("Seattle", "WA", "98101", "United States", "1000 4th Ave", "+1 206 555 01"),
           ("Redmond", "WA", "98052", "United States", "One Microsoft Way", "+1 425 555 01")],
    "DE": [("München", "Bayern", "80331", "Germany", "Marienplatz 8", "+49 89 5550 1"),
           ("Berlin", "Berlin", "10117", "Germany", "Friedrichstraße 68", "+49 30 5550 1")],
    "GB": [("London", "England", "EC2V 7HH", "United Kingdom", "1 Poultry", "+44 20 7946 0"),
           ("Manchester", "England", "M1 1AE", "United Kingdom", "12 Piccadilly", "+44 161 496 0")],
    "NL": [("Amsterdam", "Noord-Holland", "1017 CT", "Netherlands", "Herengracht 420",
            "+31 20 555 01")],
}
LANG = {"US": "en-US", "DE": "de-DE", "GB": "en-GB", "NL": "nl-NL"}

# Secure Score controls: (controlName, category, maxScore, kind, service, title, description).
# kind "ratio" controls carry undocumented count/total keys (as strings, like the real service).
SECURE_CONTROLS = [
    ("AdminMFAV2", "Identity", 10.0, "ratio", "AzureAD",
     "Ensure multifactor authentication is enabled for all users in administrative roles",
     "Requiring multifactor authentication (MFA) for administrative roles makes it harder for "
     "attackers to access accounts."),
    ("MFARegistrationV2", "Identity", 9.0, "ratio", "AzureAD",
     "Ensure all users can complete multifactor authentication",
     "Help protect devices and data that are accessible to these users with MFA."),
    ("BlockLegacyAuthentication", "Identity", 8.0, "binary", "AzureAD",
     "Enable Conditional Access policies to block legacy authentication",
     "Today, most compromising sign-in attempts come from legacy authentication."),
    ("SigninRiskPolicy", "Identity", 7.0, "binary", "AzureAD",
     "Turn on sign-in risk policy", "Turning on the sign-in risk policy ensures that suspicious "
     "sign-ins are challenged for multifactor authentication."),
    ("UserRiskPolicy", "Identity", 7.0, "binary", "AzureAD", "Turn on user risk policy",
     "With the user risk policy turned on, Microsoft Entra ID detects the probability that a user "
     "account has been compromised."),
    ("PWAgePolicyNew", "Identity", 8.0, "binary", "AzureAD",
     "Set the 'Password expiration policy' to 'Set passwords to never expire'",
     "Research has found that when periodic password resets are enforced, passwords become less "
     "secure."),
    ("OneAdmin", "Identity", 1.0, "binary", "AzureAD", "Designate more than one global admin",
     "Having more than one global administrator helps if you're unable to fulfill the needs."),
    ("SelfServicePasswordReset", "Identity", 1.0, "binary", "AzureAD",
     "Enable self-service password reset", "With self-service password reset in Microsoft Entra "
     "ID, users no longer need to engage helpdesk to reset passwords."),
    ("IntegratedApps", "Identity", 4.0, "binary", "AzureAD",
     "Do not allow users to grant consent to unreliable applications",
     "Tighten the security of your services by regulating the access of third-party "
     "integrated apps."),
    ("mip_search_auditlog", "Data", 10.0, "binary", "MIP", "Ensure audit data recording is enabled",
     "When audit log search in the Microsoft Purview compliance portal is enabled, user and admin "
     "activity from your organization is recorded in the audit log."),
    ("DLPEnabled", "Data", 10.0, "binary", "IP", "Apply Data Loss Prevention policies",
     "Data Loss Prevention (DLP) policies can be used to comply with business standards and "
     "industry regulations."),
    ("mdo_safelinksforemail", "Apps", 9.0, "ratio", "MDO",
     "Ensure Safe Links for Office Applications is Enabled",
     "Enabling Safe Links policy for Office applications allows URL's that exist inside of Office "
     "documents to be checked."),
    ("mdo_atpprotection", "Apps", 8.0, "binary", "MDO",
     "Ensure that Defender for Office 365 for SharePoint, OneDrive, and Microsoft Teams is Enabled",
     "Microsoft Defender for Office 365 scans files for malicious content."),
    ("scid_2006", "Device", 5.0, "ratio", "MDATP", "Turn on Microsoft Defender Antivirus",
     "Turn on Microsoft Defender Antivirus on all devices."),
]
# In the control profiles list only (real lists carry deprecated controls no longer scored).
DEPRECATED_CONTROL = ("AdminMFA", "Identity", 50.0, "binary", "AzureAD",
                      "Require MFA for administrative roles (deprecated)",
                      "Superseded by AdminMFAV2.")

EPOCH_BASE = "2024-06-01T00:00:00Z"  # fixed anchor for generated createdDateTime values


# ---------------------------------------------------------------------------------------------
# Helpers

class Rng(random.Random):
    """random.Random with cheap float-based choice/randrange (generation of 100,000 users is
    dominated by these calls). Deterministic for a given seed, like its base class."""

    def choice(self, seq):
        return seq[int(self.random() * len(seq))]

    def randrange(self, start, stop=None, step=1):
        if stop is None:
            start, stop = 0, start
        return start + int(self.random() * (stop - start))


def new_guid(rng):
    """A random-looking version-4 GUID string drawn from rng (same bits as
    uuid.UUID(int=..., version=4); deterministic for a seeded rng)."""
    n = rng.getrandbits(128)
    n = (n & ~(0xc000 << 48)) | (0x8000 << 48)
    n = (n & ~(0xf000 << 64)) | (4 << 76)
    h = "%032x" % n
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


@functools.lru_cache(maxsize=4096)
def ascii_fold(text):
    """'Łukasz Żółkiewski' -> 'lukaszzolkiewski'-style fold for UPN local parts."""
    repl = {"ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "ð": "d", "æ": "ae", "ß": "ss", "ı": "i"}
    text = "".join(repl.get(c, c) for c in text)
    norm = unicodedata.normalize("NFKD", text)
    out = "".join(c for c in norm if c.isascii() and (c.isalnum() or c in ".-"))
    return out.lower()


def _iso_days_before(base_iso, days, rng):
    """ISO-8601 UTC timestamp 'days' days before base_iso, with a random time of day."""
    base = _BASE_EPOCHS.get(base_iso)
    if base is None:
        base = _BASE_EPOCHS[base_iso] = calendar.timegm(time.strptime(base_iso,
                                                                      "%Y-%m-%dT%H:%M:%SZ"))
    return time.strftime("%Y-%m-%dT%H:%M:%SZ",
                         time.gmtime(base - days * 86400 - rng.randrange(86400)))


_BASE_EPOCHS = {}


def _slug(name):
    return "".join(c for c in ascii_fold(name) if c.isalnum())[:20] or "tenant"


# ---------------------------------------------------------------------------------------------
# Tenant generation

def make_tenant(seed, key, tid, name, custom_domain, n_users, country, hybrid, sku_plan,
                partner=False, lazy=False):
    """One tenant dict of the state document (see module doc). n_users counts every user object
    (people, guests, shared/service/room mailboxes, one soft-deleted former employee).
    lazy=True leaves the directory body (users, groups, devices, skus, secure score model) to
    fill_tenant(), recorded under "gen"; the header (id, name, domains, grants, contracts) is
    always there, so token requests and contracts need no generation."""
    # Tenants with a fixed id (the demo set) keep their header, domains included, for any seed.
    rng = Rng("%s:%s:head" % (seed if tid is None else "fixed", key))
    if tid is None:
        tid = new_guid(rng)
    slug = _slug(name)
    initial = "%s%04d.onmicrosoft.com" % (slug, rng.randrange(1000, 9999))
    domains = []
    if custom_domain:
        domains.append({"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": True,
                        "isInitial": False, "name": custom_domain, "type": "Managed"})
    domains.append({"capabilities": "Email, OfficeCommunicationsOnline",
                    "isDefault": not custom_domain, "isInitial": True, "name": initial,
                    "type": "Managed"})
    default_domain = custom_domain or initial
    city, state, postal, _cname, street, phone_prefix = OFFICES.get(country, OFFICES["US"])[0]
    t = {
        "key": key, "id": tid, "displayName": name, "partner": partner,
        "createdDateTime": _iso_days_before(EPOCH_BASE, rng.randrange(200, 2000), rng),
        "countryLetterCode": country, "domains": domains,
        "org": {"city": city, "state": state, "postalCode": postal, "country": None,
                "street": street, "businessPhones": [phone_prefix + "00"],
                "technicalNotificationMails": ["it@" + default_domain],
                "preferredLanguage": LANG.get(country, "en-US")},
        "grants": {}, "contracts": [],
        "gen": {"seed": seed, "users": n_users, "hybrid": hybrid,
                "skus": [list(p) for p in sku_plan]},
    }
    if not lazy:
        fill_tenant(t)
    return t


def fill_tenant(t):
    """Generate the directory body of a tenant made by make_tenant (consumes t["gen"])."""
    g = t.pop("gen")
    rng = Rng("%s:%s" % (g["seed"], t["key"]))
    default_domain = next(d["name"] for d in t["domains"] if d["isDefault"])
    initial = next(d["name"] for d in t["domains"] if d["isInitial"])
    country = t["countryLetterCode"]
    sku_plan = [tuple(p) for p in g["skus"]]
    t["users"] = _make_users(rng, t, g["users"], default_domain, initial,
                             OFFICES.get(country, OFFICES["US"]), country, g["hybrid"], sku_plan)
    t["devices"] = _make_devices(rng, t)
    t["groups"] = _make_groups(rng, t, default_domain)
    t["skus"] = _make_skus(rng, t, sku_plan)
    t["secureScore"] = _make_secure_score_model(rng)
    t["changeLog"] = []
    return t


def _make_users(rng, t, n, domain, initial, offices, country, hybrid, sku_plan):
    users = []
    used_upn = set()
    primary = [(SKU_BY_PART[p][1], share) for p, share in sku_plan]

    def upn_for(local, dom):
        base, i = local, 1
        while (base + "@" + dom).lower() in used_upn:
            i += 1
            base = "%s%d" % (local, i)
        used_upn.add((base + "@" + dom).lower())
        return base + "@" + dom, base

    def blank(uid, created):
        # properties never set are simply absent (they read as null)
        return {"id": uid, "accountEnabled": True, "assignedLicenses": [], "businessPhones": [],
                "createdDateTime": created, "otherMails": [], "proxyAddresses": [],
                "userType": "Member", "_state": "active", "_admin": False}

    def licenses_for(rng_):
        lic = []
        for sku_id, share in primary:
            if rng_.random() < share:
                disabled = []
                if rng_.random() < 0.15:
                    disabled = [PLANS_BY_SKU[sku_id][0][1]]
                lic.append({"disabledPlans": disabled, "skuId": sku_id})
        if not lic and primary:
            lic.append({"disabledPlans": [], "skuId": primary[0][0]})
        return lic

    # 1. Global admin (cloud-only, often the first account of a tenant).
    uid = new_guid(rng)
    u = blank(uid, t["createdDateTime"])
    upn, local = upn_for("admin", initial)
    u.update({"displayName": "MOD Administrator", "givenName": "MOD", "surname": "Administrator",
              "userPrincipalName": upn, "mailNickname": local, "mail": upn,
              "businessPhones": [offices[0][5] + "01"], "mobilePhone": offices[0][5][:-2] + "9001",
              "usageLocation": country, "preferredLanguage": LANG.get(country, "en-US"),
              "_admin": True, "assignedLicenses": [{"disabledPlans": [], "skuId": primary[0][0]}]})
    users.append(u)

    n_shared = max(1, n // 20) if n >= 10 else 0
    n_service = 1 if n >= 15 else 0
    n_room = 1 if n >= 20 else 0
    n_guest = max(1, n * 8 // 100) if n >= 8 else 0
    n_soft = 1 if n >= 10 else 0
    n_people = max(0, n - 1 - n_shared - n_service - n_room - n_guest - n_soft)
    dept_names = list(DEPARTMENTS)
    emp = 10000 + rng.randrange(1000)

    def person(soft=False):
        nonlocal emp
        if rng.random() < 0.06:
            given, sur = rng.choice(NON_ASCII)
        else:
            given, sur = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = _iso_days_before(EPOCH_BASE, rng.randrange(1, 1500), rng)
        u = blank(new_guid(rng), created)
        local_base = ascii_fold(given) + "." + ascii_fold(sur.replace(" ", "").replace("'", ""))
        if local_base.strip(".") != local_base or not local_base:
            # a script with no ASCII folding (Greek, Cyrillic...): admins give such
            # users a Latin alias; the fake uses the employee number
            local_base = "user%d" % (emp + 1)
        upn, local = upn_for(local_base, domain)
        dept = rng.choice(dept_names)
        city, state, postal, cname, street, phone = rng.choice(offices)
        emp += 1
        lic = licenses_for(rng)
        u.update({
            "displayName": "%s %s" % (given, sur), "givenName": given, "surname": sur,
            "userPrincipalName": upn, "mailNickname": local, "department": dept,
            "jobTitle": rng.choice(DEPARTMENTS[dept]),
            "officeLocation": "%s %d.%02d" % (city, rng.randrange(1, 6), rng.randrange(1, 40)),
            "city": city, "state": state, "postalCode": postal, "country": cname,
            "streetAddress": street, "companyName": t["displayName"], "usageLocation": country,
            "preferredLanguage": LANG.get(country, "en-US"),
            "employeeId": None if rng.random() < 0.1 else "E%d" % emp,
            "employeeType": "Employee" if rng.random() < 0.9 else "Contractor",
            "businessPhones": ([] if rng.random() < 0.15
                               else ["%s%02d" % (phone, rng.randrange(100))]),
            "mobilePhone": None if rng.random() < 0.4 else "+%d %03d %04d" % (
                rng.randrange(30, 49), rng.randrange(1000), rng.randrange(10000)),
            "assignedLicenses": lic,
        })
        u["mail"] = upn if lic else (None if rng.random() < 0.7 else upn)
        u["proxyAddresses"] = ["SMTP:" + upn] if u["mail"] else []
        if rng.random() < 0.07:
            u["accountEnabled"] = False
        if hybrid:
            u["onPremisesSyncEnabled"] = True
            u["onPremisesImmutableId"] = "%s==" % ascii_fold(local)[:16]
        if soft:
            u["_state"] = "softDeleted"
            u["deletedDateTime"] = _iso_days_before(EPOCH_BASE, rng.randrange(1, 20), rng)
        return u

    for _ in range(n_people):
        users.append(person())
    for i in range(n_shared):
        name, local = SHARED_MAILBOXES[i % len(SHARED_MAILBOXES)]
        u = blank(new_guid(rng), _iso_days_before(EPOCH_BASE, rng.randrange(1, 1500), rng))
        upn, local = upn_for(local, domain)
        u.update({"displayName": name, "userPrincipalName": upn, "mail": upn,
                  "mailNickname": local, "accountEnabled": False,
                  "proxyAddresses": ["SMTP:" + upn], "usageLocation": country})
        users.append(u)
    for _ in range(n_service):
        u = blank(new_guid(rng), _iso_days_before(EPOCH_BASE, rng.randrange(1, 1500), rng))
        upn, local = upn_for("svc-backup", initial)
        u.update({"displayName": "Backup Service Account", "userPrincipalName": upn,
                  "mailNickname": local, "jobTitle": None, "department": "IT"})
        users.append(u)
    for _ in range(n_room):
        u = blank(new_guid(rng), _iso_days_before(EPOCH_BASE, rng.randrange(1, 1500), rng))
        upn, local = upn_for("Adams", domain)
        u.update({"displayName": "Conf Room Adams", "userPrincipalName": upn, "mail": upn,
                  "mailNickname": local, "accountEnabled": False,
                  "proxyAddresses": ["SMTP:" + upn]})
        users.append(u)
    for _ in range(n_guest):
        given, sur = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        gdom = rng.choice(GUEST_DOMAINS)
        ext_mail = "%s.%s@%s" % (ascii_fold(given), ascii_fold(sur.replace(" ", "")), gdom)
        upn, local = upn_for(ext_mail.replace("@", "_") + "#EXT#", initial)
        u = blank(new_guid(rng), _iso_days_before(EPOCH_BASE, rng.randrange(1, 700), rng))
        u.update({"displayName": "%s %s" % (given, sur), "givenName": given, "surname": sur,
                  "userPrincipalName": upn, "mail": ext_mail, "mailNickname": local,
                  "userType": "Guest", "creationType": "Invitation",
                  "externalUserState": rng.choice(["Accepted", "Accepted", "PendingAcceptance"]),
                  "otherMails": [ext_mail], "proxyAddresses": ["SMTP:" + ext_mail]})
        users.append(u)
    for _ in range(n_soft):
        users.append(person(soft=True))
    return users


def _make_devices(rng, t):
    out = []
    for i in range(2):
        out.append({"id": new_guid(rng), "deviceId": new_guid(rng),
                    "displayName": "%s-LT-%03d" % (_slug(t["displayName"])[:6].upper(), i + 1),
                    "operatingSystem": "Windows", "operatingSystemVersion": "10.0.22631.4460",
                    "accountEnabled": True})
    return out


def _make_groups(rng, t, domain):
    """All Staff, one security group per department, Managers, a nested chain
    (PSA Contacts -> Operations -> Warehouse) and a device member, like real tenants."""
    people = [u for u in t["users"] if u["userType"] == "Member" and u.get("department")
              and u["_state"] == "active"]
    groups = []

    def group(name, desc, members, mail_enabled=False, unified=False):
        nick = ascii_fold(name.replace(" ", "")) or "group"
        g = {"id": new_guid(rng), "displayName": name, "description": desc,
             "createdDateTime": _iso_days_before(EPOCH_BASE, rng.randrange(10, 1500), rng),
             "groupTypes": ["Unified"] if unified else [],
             "mail": ("%s@%s" % (nick, domain)) if mail_enabled else None,
             "mailEnabled": mail_enabled, "mailNickname": nick,
             "securityEnabled": not unified, "visibility": "Private" if unified else None,
             "members": list(members)}
        groups.append(g)
        return g

    group("All Staff", "Everyone in the organization",
          [u["id"] for u in t["users"] if u["userType"] == "Member" and u["_state"] == "active"],
          mail_enabled=True, unified=True)
    by_dept = {}
    for u in people:
        by_dept.setdefault(u["department"], []).append(u["id"])
    dept_groups = {}
    for dept in sorted(by_dept):
        ids = by_dept[dept]
        if dept == "Operations":
            # Warehouse people sit in a nested group.
            title = {x["id"]: x["jobTitle"] for x in people}
            wh = [i for i in ids if "Warehouse" in title[i]]
            rest = [i for i in ids if i not in wh]
            whg = group("Warehouse", "Warehouse staff", wh)
            dept_groups[dept] = group("Operations", "Operations department", rest + [whg["id"]])
        else:
            dept_groups[dept] = group(dept, "%s department" % dept, ids)
    managers = [u["id"] for u in people if any(w in (u.get("jobTitle") or "")
                                               for w in ("Manager", "Director", "Chief", "Lead"))]
    group("Managers", "People managers", managers)
    psa = [g["id"] for d, g in sorted(dept_groups.items()) if d in ("Operations", "Sales",
                                                                     "Support")]
    extra = [u["id"] for u in people[:2]]
    group("Sync - PSA Contacts", "Users synced to the PSA as contacts",
          psa + extra + [t["devices"][0]["id"]])
    return groups


def _make_skus(rng, t, sku_plan):
    consumed = {}
    for u in t["users"]:
        if u["_state"] != "active":
            continue
        for lic in u["assignedLicenses"]:
            consumed[lic["skuId"]] = consumed.get(lic["skuId"], 0) + 1
    out = []
    for i, (part, _share) in enumerate(sku_plan):
        _p, sku_id, plans = SKU_BY_PART[part]
        used = consumed.get(sku_id, 0)
        free_sku = part in ("FLOW_FREE", "POWER_BI_STANDARD")
        enabled = 10000 if free_sku else used + rng.randrange(0, 6)
        sku = {
            "accountName": t["displayName"], "accountId": new_guid(rng), "appliesTo": "User",
            "capabilityStatus": "Enabled", "consumedUnits": None,
            "id": "%s_%s" % (t["id"], sku_id),
            "prepaidUnits": {"enabled": enabled, "lockedOut": 0, "suspended": 0, "warning": 0},
            "servicePlans": [{"servicePlanId": pid, "servicePlanName": pname,
                              "provisioningStatus": "Success", "appliesTo": "User"}
                             for pname, pid in plans],
            "skuId": sku_id, "skuPartNumber": part, "subscriptionIds": [new_guid(rng)],
        }
        # Fabrikam-style grace period on the second SKU of hybrid tenants: some warning seats.
        if i == 1 and t["key"] == "fabrikam":
            sku["capabilityStatus"] = "Warning"
            sku["prepaidUnits"]["warning"] = 5
        out.append(sku)
    return out


def _make_secure_score_model(rng):
    """Parameters from which graph_model computes one secureScore per day (deterministic)."""
    controls = []
    for name, cat, mx, kind, service, title, desc in SECURE_CONTROLS:
        c = {"controlName": name, "controlCategory": cat, "maxScore": mx, "kind": kind,
             "service": service, "title": title, "description": desc,
             # fraction implemented 120 days before the model anchor, and daily drift
             "start": round(rng.random(), 3),
             "total": rng.randrange(5, 60)}
        controls.append(c)
    return {"controls": controls, "since": None, "overrides": {}, "salt": rng.randrange(1 << 30),
            "averages": {"AllTenants": round(rng.uniform(35, 55), 2),
                         "TotalSeats": round(rng.uniform(35, 60), 2),
                         "IndustryTypes": round(rng.uniform(30, 65), 2)}}


def make_contract(rng, customer, contract_type="ResellerPartner", stale_name=None):
    default = next(d["name"] for d in customer["domains"] if d["isDefault"])
    return {"id": new_guid(rng), "contractType": contract_type, "customerId": customer["id"],
            "defaultDomainName": default, "displayName": stale_name or customer["displayName"]}


def demo_app(home_tenant_id):
    """The multi-tenant demo app registration (secret never expires in fake time)."""
    return {"displayName": "entrasync (fake)", "homeTenant": home_tenant_id,
            "secrets": [{"keyId": DEMO_SECRET_ID, "value": DEMO_SECRET,
                         "endDateTime": "2099-12-31T00:00:00Z"}],
            "certificates": []}


def parse_spec(spec):
    """'demo' | 'NxM' | combinations joined by '+', e.g. 'demo+5x20'. Returns a list of parts:
    ('demo',) or ('gen', N, M)."""
    parts = []
    for p in (spec or "demo").split("+"):
        p = p.strip().lower()
        if p == "demo":
            parts.append(("demo",))
        elif "x" in p:
            n, m = p.split("x", 1)
            parts.append(("gen", int(n), int(m)))
        else:
            raise ValueError("bad --tenants spec part %r (want 'demo' or NxM)" % p)
    return parts


def generate(seed=1, spec="demo", lazy=False):
    """The full state document for --seed/--tenants. Always includes the partner tenant (home of
    the demo app, holder of the contracts). lazy=True defers the bodies of generated (NxM)
    tenants to fill_tenant (graph_model does it on first use)."""
    seed = int(seed)
    rng = Rng("%s:contracts" % seed)
    partner = make_tenant(seed, *PARTNER_TENANT, partner=True)
    tenants = [partner]
    customers = []
    for part in parse_spec(spec):
        if part[0] == "demo":
            for d in DEMO_TENANTS:
                customers.append((make_tenant(seed, *d), True))
            customers.append((make_tenant(seed, *DEMO_UNCONSENTED), False))
        else:
            _g, n, m = part
            countries = ["US", "DE", "GB", "NL"]
            skusets = [[("SPE_E3", 0.8), ("EMS", 0.3)], [("O365_BUSINESS_PREMIUM", 0.9)],
                       [("ENTERPRISEPACK", 0.85), ("POWER_BI_STANDARD", 0.2)],
                       [("SPB", 0.9), ("EXCHANGESTANDARD", 0.05)]]
            for i in range(n):
                base = GENERATED_NAMES[i % len(GENERATED_NAMES)]
                name = base if i < len(GENERATED_NAMES) else "%s %d" % (base, i // len(
                    GENERATED_NAMES) + 1)
                key = "t%03d" % (i + 1)
                dom = "%s%d.example" % (_slug(name), i + 1)
                customers.append((make_tenant(seed, key, None, name, dom, m, countries[i % 4],
                                              i % 3 == 1, skusets[i % 4], lazy=lazy), True))
    app = demo_app(partner["id"])
    partner["grants"][DEMO_CLIENT_ID] = {"consent": True, "roles": list(PARTNER_ROLES),
                                         "adminRole": False}
    for t, consented in customers:
        if consented:
            t["grants"][DEMO_CLIENT_ID] = {"consent": True, "roles": list(ALL_ROLES),
                                           "adminRole": False}
        stale = None
        if t["key"] == "fabrikam":
            stale = "Fabrikam Inc"  # contracts keep the name from when the partnership began
        ctype = "ResellerPartner" if t["key"] != "northwind" else "BreadthPartner"
        partner["contracts"].append(make_contract(rng, t, ctype, stale))
        tenants.append(t)
    return {"version": 1, "seed": seed, "spec": spec, "apps": {DEMO_CLIENT_ID: app},
            "tenants": tenants}
