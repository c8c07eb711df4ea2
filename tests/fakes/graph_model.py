"""graph_model.py - in-memory directory behind fake_graph.py: tenants, users with a change log
(for /users/delta), groups, SKUs, secure scores, the fake clock and a small OData $filter engine.

Loaded from the state document made by graph_data.generate() (or a --state file); to_doc()
gives it back (JSON-able).  Not thread-safe by itself: fake_graph.py holds State.lock around every
call.  Python 3 stdlib only.
"""

import calendar
import copy
import json
import math
import re
import time
import uuid
import zlib

import graph_data

DAY = 86400

# Properties of microsoft.graph.user the fake knows ($select validation).  Values not stored on a
# user read as null.
USER_PROPS = [
    "id", "aboutMe", "accountEnabled", "ageGroup", "assignedLicenses", "assignedPlans",
    "birthday", "businessPhones", "city", "companyName", "consentProvidedForMinor", "country",
    "createdDateTime", "creationType", "deletedDateTime", "department", "displayName",
    "employeeHireDate", "employeeId", "employeeLeaveDateTime", "employeeOrgData", "employeeType",
    "externalUserState", "externalUserStateChangeDateTime", "faxNumber", "givenName", "hireDate",
    "identities", "imAddresses", "interests", "isResourceAccount", "jobTitle",
    "lastPasswordChangeDateTime", "legalAgeGroupClassification", "licenseAssignmentStates",
    "mail", "mailboxSettings", "mailNickname", "mobilePhone", "mySite", "officeLocation",
    "onPremisesDistinguishedName", "onPremisesDomainName", "onPremisesExtensionAttributes",
    "onPremisesImmutableId", "onPremisesLastSyncDateTime", "onPremisesProvisioningErrors",
    "onPremisesSamAccountName", "onPremisesSecurityIdentifier", "onPremisesSyncEnabled",
    "onPremisesUserPrincipalName", "otherMails", "passwordPolicies", "passwordProfile",
    "pastProjects", "postalCode", "preferredDataLocation", "preferredLanguage", "preferredName",
    "provisionedPlans", "proxyAddresses", "responsibilities", "schools", "securityIdentifier",
    "showInAddressList", "signInActivity", "signInSessionsValidFromDateTime", "skills", "state",
    "streetAddress", "surname", "usageLocation", "userPrincipalName", "userType",
]
USER_PROP_SET = set(USER_PROPS)
USER_PROP_CANON = {p.lower(): p for p in USER_PROPS}
# Only on a single user, never in a collection: selecting them on /users gives 501.
NOT_IN_COLLECTION = {"aboutMe", "birthday", "hireDate", "interests", "mySite", "pastProjects",
                     "preferredName", "responsibilities", "schools", "skills", "mailboxSettings"}
USER_DEFAULT_SELECT = ("businessPhones", "displayName", "givenName", "jobTitle", "mail",
                       "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                       "userPrincipalName", "id")
# Writable through PATCH /users/{id} and the control API.
USER_WRITABLE = USER_PROP_SET - {"id", "createdDateTime", "deletedDateTime", "signInActivity",
                                 "assignedPlans", "provisionedPlans", "licenseAssignmentStates",
                                 "assignedLicenses"}
GROUP_PROPS = ["id", "createdDateTime", "deletedDateTime", "description", "displayName",
               "groupTypes", "mail", "mailEnabled", "mailNickname", "securityEnabled",
               "visibility", "membershipRule", "onPremisesSyncEnabled", "proxyAddresses",
               "classification", "expirationDateTime", "isAssignableToRole",
               "renewedDateTime", "securityIdentifier"]
DIRECTORY_ROLE_PROPS = ["id", "deletedDateTime", "description", "displayName", "roleTemplateId"]
# The one directory role the fake knows: what a user flagged '_admin' holds (templateId is the
# built-in one, the same in every tenant; the activated role's id is per tenant).
GLOBAL_ADMIN_TEMPLATE = "62e90394-69f5-4237-9190-012177145e10"
GLOBAL_ADMIN_DESCRIPTION = ("Can manage all aspects of Microsoft Entra ID and Microsoft services "
                            "that use Microsoft Entra identities.")


# ---------------------------------------------------------------------------------------------
# Time

def iso(epoch, frac=False):
    """Epoch seconds -> '2024-01-02T03:04:05Z' (with 7 fractional digits when frac)."""
    s = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    if frac:
        s += ".%07d" % int((epoch - math.floor(epoch)) * 1e7)
    return s + "Z"


def parse_iso(text):
    """'2024-01-02', '2024-01-02T03:04:05Z' or with fraction/offset 'Z' -> epoch seconds."""
    text = text.strip()
    if len(text) == 10:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d"))
    main = text.rstrip("Z").split(".")[0].replace(" ", "T")
    if "+" in main[10:]:
        main = main[:10] + main[10:].split("+")[0]
    return calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))


class Clock:
    """Fake clock: real time plus an adjustable offset (tests jump days ahead)."""

    def __init__(self, offset=0.0):
        self.offset = float(offset)

    def now(self):
        return time.time() + self.offset

    def advance(self, seconds):
        self.offset += float(seconds)

    def set(self, epoch):
        self.offset = float(epoch) - time.time()


# ---------------------------------------------------------------------------------------------
# OData $filter (small subset: eq ne gt ge lt le, and/or/not, parentheses, in (...),
# startswith/endswith(prop,'x'), prop/any(x:x/sub eq v) and prop/any(x:x eq v))

class FilterError(Exception):
    """Bad filter. code/message are the Graph error code and message to answer with."""

    def __init__(self, code, message):
        Exception.__init__(self, message)
        self.code = code
        self.message = message


_TOK = re.compile(r"\s*(?:('(?:[^']|'')*')|([(),])|([^\s(),']+))")


def _lit(tok):
    if tok.startswith("'"):
        return tok[1:-1].replace("''", "'")
    low = tok.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    try:
        return int(tok)
    except ValueError:
        pass
    try:
        return float(tok)
    except ValueError:
        return tok  # GUIDs and DateTimeOffset literals are bare


class ODataFilter:
    """Parsed $filter. .advanced is True when the expression needs ConsistencyLevel: eventual +
    $count=true on directory objects (ne, not, endswith, eq null). props limits the allowed
    property names (canonical case map), resource names the type in error messages."""

    def __init__(self, text, props, resource):
        self.text = text
        self.props = props
        self.resource = resource
        self.advanced = False
        self.toks = []
        pos = 0
        while pos < len(text):
            m = _TOK.match(text, pos)
            if not m or m.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise FilterError("BadRequest", "Invalid filter clause")
            pos = m.end()
            tok = m.group(1) or m.group(2) or m.group(3)
            if tok:
                self.toks.append(tok)
        self.i = 0
        self.ast = self._or()
        if self.i != len(self.toks):
            raise FilterError("BadRequest", "Invalid filter clause")

    # recursive descent ------------------------------------------------------------------------
    def _peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def _take(self, want=None):
        tok = self._peek()
        if tok is None or (want is not None and tok.lower() != want):
            raise FilterError("BadRequest", "Invalid filter clause")
        self.i += 1
        return tok

    def _chain(self, op, operand):
        """operand (op operand)*, left-associative."""
        node = operand()
        while (self._peek() or "").lower() == op:
            self.i += 1
            node = (op, node, operand())
        return node

    def _or(self):
        return self._chain("or", self._and)

    def _and(self):
        return self._chain("and", self._not)

    def _not(self):
        if (self._peek() or "").lower() == "not":
            self.i += 1
            self.advanced = True
            return ("not", self._not())
        return self._primary()

    def _prop(self, name):
        canon = self.props.get(name.lower())
        if canon is None:
            raise FilterError("Request_UnsupportedQuery",
                              "Unsupported or invalid query filter clause specified for property "
                              "'%s' of resource '%s'." % (name, self.resource))
        return canon

    def _primary(self):
        tok = self._take()
        low = tok.lower()
        if tok == "(":
            node = self._or()
            self._take(")")
            return node
        if low in ("startswith", "endswith"):
            if low == "endswith":
                self.advanced = True
            self._take("(")
            prop = self._prop(self._take())
            self._take(",")
            val = _lit(self._take())
            self._take(")")
            return (low, prop, val)
        if low.endswith("/any"):
            prop = self._prop(tok[:-4])
            self._take("(")
            inner = self._take()
            if ":" not in inner:
                raise FilterError("BadRequest", "Invalid filter clause")
            var, path = inner.split(":", 1)
            sub = None if path == var else path[len(var) + 1:]
            op = self._take().lower()
            val = _lit(self._take())
            self._take(")")
            return ("any", prop, sub, op, val)
        prop = self._prop(tok)
        op = self._take().lower()
        if op == "in":
            self._take("(")
            vals = []
            while True:
                vals.append(_lit(self._take()))
                sep = self._take()
                if sep == ")":
                    break
                if sep != ",":
                    raise FilterError("BadRequest", "Invalid filter clause")
            return ("in", prop, vals)
        if op not in ("eq", "ne", "gt", "ge", "lt", "le"):
            raise FilterError("BadRequest", "Invalid filter clause")
        val = _lit(self._take())
        if op == "ne" or (op == "eq" and val is None):
            self.advanced = True
        return ("cmp", op, prop, val)

    # evaluation -------------------------------------------------------------------------------
    @staticmethod
    def _cmp(op, a, b):
        if isinstance(a, str) and isinstance(b, str):
            a, b = a.casefold(), b.casefold()
        if op == "eq":
            return a == b
        if op == "ne":
            return a != b
        if a is None or b is None:
            return False
        try:
            return {"gt": a > b, "ge": a >= b, "lt": a < b, "le": a <= b}[op]
        except TypeError:
            return False

    def match(self, obj, node=None):
        node = self.ast if node is None else node
        kind = node[0]
        if kind == "or":
            return self.match(obj, node[1]) or self.match(obj, node[2])
        if kind == "and":
            return self.match(obj, node[1]) and self.match(obj, node[2])
        if kind == "not":
            return not self.match(obj, node[1])
        if kind == "cmp":
            return self._cmp(node[1], obj.get(node[2]), node[3])
        if kind == "in":
            return any(self._cmp("eq", obj.get(node[1]), v) for v in node[2])
        if kind in ("startswith", "endswith"):
            v = obj.get(node[1])
            if not isinstance(v, str) or not isinstance(node[2], str):
                return False
            v, w = v.casefold(), node[2].casefold()
            return v.startswith(w) if kind == "startswith" else v.endswith(w)
        if kind == "any":
            _k, prop, sub, op, val = node
            for item in obj.get(prop) or []:
                x = item.get(sub) if (sub and isinstance(item, dict)) else item
                if self._cmp(op, x, val):
                    return True
            return False
        raise FilterError("BadRequest", "Invalid filter clause")


# ---------------------------------------------------------------------------------------------
# Tenant

class Tenant:
    """One directory. Users live in self.users (id -> dict of Graph properties plus internal
    '_state' in active|softDeleted|hardDeleted, '_admin', '_password'); self.order keeps creation
    order for paging; self.log is the change log (entry i has seq i+1)."""

    LAZY = ("users", "order", "upn", "groups", "group_order", "devices", "log", "frag",
            "delta_cache")

    def __init__(self, doc):
        self.head = doc  # tenant dict of the state document (header fields always present)
        self.id = doc["id"]
        self.key = doc["key"]
        if "gen" not in doc:
            self._index()

    def _index(self):
        doc = self.head
        if "gen" in doc:
            graph_data.fill_tenant(doc)
        self.users = {}
        self.order = []
        self.upn = {}
        for u in doc["users"]:
            self._index_user(u)
        self.groups = {g["id"]: g for g in doc["groups"]}
        self.group_order = [g["id"] for g in doc["groups"]]
        self.devices = {d["id"]: d for d in doc["devices"]}
        self.log = [tuple(e) for e in doc.get("changeLog", [])]
        self.frag = {}          # user id -> {cache key: JSON text}
        self.delta_cache = {}   # (p, q) -> (ordered ids, {id: (props, kinds)})

    def __getattr__(self, name):
        # Only reached for attributes not set yet: a lazily generated tenant materializes its
        # directory on first use.
        if name in Tenant.LAZY and "head" in self.__dict__:
            self._index()
            return self.__dict__[name]
        raise AttributeError(name)

    @property
    def doc(self):
        """The full tenant dict (generating the directory body first if still lazy)."""
        if "users" not in self.__dict__:
            self._index()
        return self.head

    @property
    def materialized(self):
        return "users" in self.__dict__

    @property
    def display_name(self):
        return self.head["displayName"]

    def domains(self):
        return self.head["domains"]

    def default_domain(self):
        return next(d["name"] for d in self.head["domains"] if d["isDefault"])

    def _index_user(self, u):
        self.users[u["id"]] = u
        self.order.append(u["id"])
        if u.get("userPrincipalName"):
            self.upn[u["userPrincipalName"].lower()] = u["id"]

    def seq(self):
        return len(self.log)

    # users ------------------------------------------------------------------------------------
    def find_user(self, ref, include_deleted=False):
        """User dict by id or UPN (case-insensitive); None when absent or (unless
        include_deleted) not active."""
        u = self.users.get(ref)
        if u is None:
            uid = self.upn.get(ref.lower())
            u = self.users.get(uid) if uid else None
        if u is None or u["_state"] == "hardDeleted":
            return None
        if u["_state"] != "active" and not include_deleted:
            return None
        return u

    def _record(self, uid, kind, props):
        self.log.append((uid, kind, tuple(sorted(props))))
        self.frag.pop(uid, None)
        self.delta_cache.clear()

    def create_user(self, props, new_id):
        """Create a user from Graph properties (id optional). Returns the user dict."""
        u = {"id": props.get("id") or new_id, "accountEnabled": True, "assignedLicenses": [],
             "businessPhones": [], "otherMails": [], "proxyAddresses": [], "userType": "Member",
             "_state": "active", "_admin": False}
        if u["id"] in self.users:
            raise ValueError("user id already exists")
        for k, v in props.items():
            if k in USER_PROP_SET or k in ("_admin", "_password"):
                u[k] = v
        u.setdefault("createdDateTime", None)
        if not u.get("userPrincipalName"):
            raise ValueError("userPrincipalName is required")
        if u["userPrincipalName"].lower() in self.upn:
            raise ValueError("Another object with the same value for property "
                             "userPrincipalName already exists.")
        self._index_user(u)
        self._record(u["id"], "create", [k for k in u if not k.startswith("_")])
        return u

    def update_user(self, u, props):
        """Apply property changes; records only properties whose value really changed. Returns
        the list of changed property names."""
        changed = []
        for k, v in props.items():
            if k.startswith("_"):
                u[k] = v
                continue
            if k not in USER_PROP_SET:
                raise ValueError("Invalid property '%s'." % k)
            if u.get(k) != v:
                if k == "userPrincipalName":
                    self.upn.pop((u.get(k) or "").lower(), None)
                    self.upn[v.lower()] = u["id"]
                u[k] = v
                changed.append(k)
        if changed:
            self._record(u["id"], "update", changed)
        return changed

    def soft_delete(self, u, now):
        u["_state"] = "softDeleted"
        u["deletedDateTime"] = iso(now)
        self._record(u["id"], "soft", ["deletedDateTime"])

    def restore(self, u):
        u["_state"] = "active"
        u["deletedDateTime"] = None
        self._record(u["id"], "restore", ["deletedDateTime"])

    def hard_delete(self, u):
        u["_state"] = "hardDeleted"
        self.upn.pop((u.get("userPrincipalName") or "").lower(), None)
        for g in self.groups.values():
            if u["id"] in g["members"]:
                g["members"].remove(u["id"])
        self._record(u["id"], "hard", [])

    # delta ------------------------------------------------------------------------------------
    def delta_changes(self, p, q):
        """Users changed in log positions (p, q]: (ordered ids, {id: (props set, kinds set)}).
        One O(q-p) scan per round, cached for the pages of that round."""
        key = (p, q)
        hit = self.delta_cache.get(key)
        if hit is not None:
            return hit
        ids, info = [], {}
        for uid, kind, props in self.log[p:q]:
            ent = info.get(uid)
            if ent is None:
                ent = info[uid] = (set(), set())
                ids.append(uid)
            ent[0].update(props)
            ent[1].add(kind)
        if len(self.delta_cache) > 32:
            self.delta_cache.clear()
        self.delta_cache[key] = (ids, info)
        return ids, info

    # groups -----------------------------------------------------------------------------------
    def find_directory_object(self, oid):
        """(odata type, object) for a user/group/device id; (None, None) when unknown."""
        u = self.users.get(oid)
        if u is not None:
            return ("user", u) if u["_state"] != "hardDeleted" else (None, None)
        if oid in self.groups:
            return "group", self.groups[oid]
        if oid in self.devices:
            return "device", self.devices[oid]
        return None, None

    def transitive_members(self, gid):
        """Flattened members of group gid: users (soft-deleted ones keep memberships, like
        Entra, but are left out here since Graph omits them), nested groups and devices, each
        once, depth-first in membership order. Cycle-safe."""
        out, seen = [], {gid}

        def walk(g):
            for mid in g["members"]:
                if mid in seen:
                    continue
                seen.add(mid)
                typ, obj = self.find_directory_object(mid)
                if typ is None or (typ == "user" and obj["_state"] != "active"):
                    continue
                out.append((typ, obj))
                if typ == "group":
                    walk(obj)
        walk(self.groups[gid])
        return out

    def member_of(self, oid, transitive):
        """Groups that contain oid directly (or transitively)."""
        direct = [g for g in (self.groups[i] for i in self.group_order) if oid in g["members"]]
        if not transitive:
            return direct
        out, seen = [], set()
        todo = list(direct)
        while todo:
            g = todo.pop(0)
            if g["id"] in seen:
                continue
            seen.add(g["id"])
            out.append(g)
            todo.extend(x for x in (self.groups[i] for i in self.group_order)
                        if g["id"] in x["members"])
        return out

    def directory_roles(self, oid):
        """Directory roles (microsoft.graph.directoryRole dicts) user oid holds: Global
        Administrator when the user is flagged '_admin', else none. Role assignments are direct,
        so memberOf and transitiveMemberOf see the same list."""
        u = self.users.get(oid)
        if u is None or not u.get("_admin"):
            return []
        rid = str(uuid.uuid5(uuid.NAMESPACE_URL, "fake-graph:%s:directoryRole:%s"
                             % (self.id, GLOBAL_ADMIN_TEMPLATE)))
        return [{"id": rid, "deletedDateTime": None, "description": GLOBAL_ADMIN_DESCRIPTION,
                 "displayName": "Global Administrator", "roleTemplateId": GLOBAL_ADMIN_TEMPLATE}]

    # licenses ---------------------------------------------------------------------------------
    def subscribed_skus(self):
        """subscribedSkus with consumedUnits counted live from active users' assignedLicenses
        (unless a fixed consumedUnits was set through the control API)."""
        counts = {}
        for uid in self.order:
            u = self.users[uid]
            if u["_state"] != "active":
                continue
            for lic in u.get("assignedLicenses") or []:
                counts[lic.get("skuId")] = counts.get(lic.get("skuId"), 0) + 1
        out = []
        for s in self.doc["skus"]:
            s2 = dict(s)
            if s2.get("consumedUnits") is None:
                s2["consumedUnits"] = counts.get(s["skuId"], 0)
            out.append(s2)
        return out

    # secure score -----------------------------------------------------------------------------
    def secure_score_days(self, now):
        """Dates (YYYY-MM-DD, newest first) that have a secureScore at fake time now: one per day
        for up to 90 days, not before the tenant existed (or secureScore.since)."""
        model = self.doc["secureScore"]
        today = int(now // DAY)
        since = model.get("since") or self.doc["createdDateTime"]
        first = int(parse_iso(since) // DAY)
        out = []
        for d in range(today, max(today - 90, first - 1), -1):
            date = time.strftime("%Y-%m-%d", time.gmtime(d * DAY))
            ov = model["overrides"].get(date)
            if ov and ov.get("missing"):
                continue
            out.append(date)
        return out

    def score_user_counts(self):
        """(activeUserCount, licensedUserCount) of a secureScore: the directory as it is now."""
        active = licensed = 0
        for uid in self.order:
            u = self.users[uid]
            if (u["_state"] == "active" and u.get("accountEnabled")
                    and u.get("userType") == "Member"):
                active += 1
            if u["_state"] == "active" and u.get("assignedLicenses"):
                licensed += 1
        return active, licensed

    def secure_score(self, date, counts=None):
        """The secureScore object for one day (deterministic from the model, then overrides).
        counts: score_user_counts(), when the caller renders several days of one state."""
        model = self.doc["secureScore"]
        d = int(parse_iso(date) // DAY)
        salt = model["salt"]
        scores = []
        cur = mx = 0.0
        for i, c in enumerate(model["controls"]):
            period = 90 + (zlib.crc32(("%s%s" % (salt, c["controlName"])).encode()) % 150)
            phase = (d + salt + i * 37) % period / period
            tri = 1 - 4 * abs(phase - 0.5)          # triangle wave in [-1, 1]
            frac = min(1.0, max(0.0, c["start"] + 0.35 * tri))
            dip = zlib.crc32(("%s:%s:%s" % (salt, d, i)).encode()) % 41 == 0
            entry = {"controlCategory": c["controlCategory"], "controlName": c["controlName"],
                     "description": c["description"]}
            if c["kind"] == "ratio":
                total = c["total"]
                count = int(round(total * frac)) if not dip else int(total * frac * 0.5)
                score = round(c["maxScore"] * count / total, 2)
                entry.update({"score": score, "scoreInPercentage": round(100.0 * count / total, 2),
                              "count": str(count), "total": str(total),
                              "implementationStatus": "You have %d of %d users protected" % (
                                  count, total)})
            else:
                on = frac >= 0.5 and not dip
                score = c["maxScore"] if on else 0.0
                entry.update({"score": score, "scoreInPercentage": 100.0 if on else 0.0,
                              "on": "true" if on else "false"})
            entry.update({"IsApplicable": "true",
                          "lastSynced": "%sT%02d:%02d:00Z" % (date, 0, 5 + i)})
            if i % 5 == 4:
                entry["NotScored"] = "false"
            scores.append(entry)
            cur += score
            mx += c["maxScore"]
        active, licensed = counts or self.score_user_counts()
        av = model["averages"]
        obj = {
            "id": "%s_%s" % (self.id, date), "azureTenantId": self.id,
            "activeUserCount": active, "createdDateTime": "%sT00:0%d:%02dZ" % (date, salt % 10,
                                                                                salt % 60),
            "currentScore": round(cur, 2),
            "enabledServices": ["HasExchange", "HasSharePoint", "HasOD4B", "HasTeams"],
            "licensedUserCount": licensed, "maxScore": round(mx, 2),
            "averageComparativeScores": [
                {"basis": "AllTenants", "averageScore": av["AllTenants"]},
                {"basis": "TotalSeats", "averageScore": av["TotalSeats"],
                 "seatSizeRangeLowerValue": "1", "seatSizeRangeUpperValue": "100"},
                {"basis": "IndustryTypes", "averageScore": av["IndustryTypes"],
                 "industryName": "Technology"}],
            "controlScores": scores,
            "vendorInformation": {"provider": "SecureScore", "providerVersion": None,
                                  "subProvider": None, "vendor": "Microsoft"},
        }
        ov = model["overrides"].get(date)
        if ov:
            for k, v in ov.items():
                if k != "missing":
                    obj[k] = copy.deepcopy(v)
        return obj

    def control_profiles(self):
        out = []
        controls = self.doc["secureScore"]["controls"]
        names = [(c["controlName"], c["controlCategory"], c["maxScore"], c["kind"], c["service"],
                  c["title"], c["description"]) for c in controls]
        for rank, (name, cat, mx, kind, svc, title, desc) in enumerate(
                names + [graph_data.DEPRECATED_CONTROL], start=1):
            out.append({
                "id": name, "azureTenantId": self.id,
                "actionType": "Config" if kind == "binary" else "Behavior",
                "actionUrl": "https://security.microsoft.com/securescore?viewid=actions",
                "controlCategory": cat, "title": title,
                "deprecated": name == graph_data.DEPRECATED_CONTROL[0],
                "implementationCost": ["Low", "Moderate", "High"][rank % 3],
                "lastModifiedDateTime": None, "maxScore": mx, "rank": rank,
                "remediation": desc, "remediationImpact": "This change will have a %s impact on "
                "your users." % ["low", "moderate", "high"][rank % 3],
                "service": svc, "threats": [["Account Breach", "Elevation of Privilege"],
                                            ["Data Exfiltration", "Data Spillage"],
                                            ["Password Cracking"]][rank % 3],
                "tier": ["Core", "Defense in Depth", "Advanced"][rank % 3],
                "userImpact": ["Low", "Moderate", "High"][rank % 3],
                "complianceInformation": [], "controlStateUpdates": [{
                    "assignedTo": None, "comment": None, "state": "Default", "updatedBy": None,
                    "updatedDateTime": "2024-03-19T22:37:14.628799Z"}],
                "vendorInformation": {"provider": "SecureScore", "providerVersion": None,
                                      "subProvider": None, "vendor": "Microsoft"},
            })
        return out


# ---------------------------------------------------------------------------------------------
# State

class State:
    """All tenants and app registrations. tenants are looked up by id or verified domain (and by
    key / display name for the control API only)."""

    def __init__(self, doc):
        self.doc = doc
        self.apps = doc["apps"]
        self.tenants = [Tenant(t) for t in doc["tenants"]]
        self.reindex()

    def reindex(self):
        self.by_id = {t.id.lower(): t for t in self.tenants}
        self.by_domain = {}
        for t in self.tenants:
            for d in t.domains():
                self.by_domain[d["name"].lower()] = t

    def tenant(self, ref, control=False):
        """Tenant by id or domain (case-insensitive); control=True also accepts the key."""
        if ref is None:
            return None
        low = ref.lower()
        t = self.by_id.get(low) or self.by_domain.get(low)
        if t is None and control:
            t = next((x for x in self.tenants if x.key == low), None)
        return t

    def to_doc(self):
        """The state document (deep copy, JSON-able)."""
        for t in self.tenants:
            if not t.materialized:
                continue  # still lazy: the "gen" recipe is the state
            t.doc["users"] = [t.users[i] for i in t.order]
            t.doc["groups"] = [t.groups[i] for i in t.group_order]
            t.doc["changeLog"] = [list(e) for e in t.log]
        return json.loads(json.dumps(self.doc))
