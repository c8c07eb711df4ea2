"""test_fake_graph.py - self-test of the fake Microsoft Graph (fake_graph.py) with unittest.

Starts one in-process server on 127.0.0.1 (port 0) for the module, resets it before every test
through the control API, and talks to it over real HTTP (http.client): token endpoint (secret,
client assertion, AADSTS errors), 401/403, users paging, delta rounds, groups, $batch, the
other endpoints, every fault, the clock, the request log, --state, the CLI and TLS.
Run: cd tests/fakes && python3 -m unittest -v test_fake_graph   (needs the openssl CLI).
"""

import base64
import gzip
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import fake_graph  # noqa: E402
import graph_data  # noqa: E402

CID = graph_data.DEMO_CLIENT_ID
SECRET = graph_data.DEMO_SECRET
CONTOSO = "6babcaad-604b-40ac-a9d7-9fd97c0b779f"
FABRIKAM = "2a6b1c4d-7e8f-4a9b-8c0d-1e2f3a4b5c6d"
PARTNER = "e5a1c0de-1111-4abc-9def-0123456789ab"
SCOPE = "https://graph.microsoft.com/.default"

SRV = None
FAKE = None
TMP = None
KEY = CERT = None


def setUpModule():
    global SRV, FAKE, TMP, KEY, CERT
    TMP = tempfile.mkdtemp(prefix="fgtest.")
    KEY, CERT = os.path.join(TMP, "key.pem"), os.path.join(TMP, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", KEY,
                    "-out", CERT, "-days", "2", "-subj", "/CN=entrasync-test"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    FAKE = fake_graph.FakeGraph(seed=1, spec="demo")
    SRV = fake_graph.start(FAKE)


def tearDownModule():
    SRV.shutdown()
    SRV.server_close()
    FAKE.close()
    shutil.rmtree(TMP, ignore_errors=True)


class Reply:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.text = raw.decode("utf-8", "replace")

    @property
    def json(self):
        return json.loads(self.raw)

    def __repr__(self):
        return "<%d %s>" % (self.status, self.text[:300])


def call(method, path, body=None, headers=None, form=None, token=None, port=None, conn=None):
    """One HTTP request to the fake; path may be an absolute URL on it (nextLink)."""
    if path.startswith("http"):
        u = urllib.parse.urlsplit(path)
        path = u.path + ("?" + u.query if u.query else "")
    h = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        h["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    if token:
        h["Authorization"] = "Bearer " + token
    own = conn is None
    c = conn or http.client.HTTPConnection("127.0.0.1", port or SRV.server_address[1],
                                           timeout=10)
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, raw)
    finally:
        if own:
            c.close()


def ctl(method, path, body=None):
    r = call(method, "/_fake/" + path, body if body is not None else (
        {} if method in ("POST", "PATCH", "PUT") else None))
    assert r.status < 300, (path, r)
    return r.json


def token(tenant="contoso.com", **form):
    f = {"client_id": CID, "client_secret": SECRET, "scope": SCOPE,
         "grant_type": "client_credentials"}
    f.update(form)
    return call("POST", "/%s/oauth2/v2.0/token" % tenant, form=f)


def tok(tenant="contoso.com"):
    r = token(tenant)
    assert r.status == 200, r
    return r.json["access_token"]


def get(path, t, headers=None):
    return call("GET", path, token=t, headers=headers)


def follow(path, t, headers=None, limit=200):
    """Follow nextLinks; returns (pages, last page json)."""
    pages = []
    url = path
    for _ in range(limit):
        r = get(url, t, headers)
        assert r.status == 200, r
        pages.append(r.json)
        url = r.json.get("@odata.nextLink")
        if not url:
            return pages
    raise AssertionError("too many pages")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(data, alg):
    d = tempfile.mkdtemp(dir=TMP)
    with open(os.path.join(d, "in"), "wb") as f:
        f.write(data)
    cmd = ["openssl", "dgst", "-sha256", "-sign", KEY]
    if alg == "PS256":
        cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
    out = subprocess.run(cmd + [os.path.join(d, "in")], check=True, stdout=subprocess.PIPE).stdout
    shutil.rmtree(d)
    return out


def cert_thumbs():
    with open(CERT) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    import hashlib
    return b64u(hashlib.sha1(der).digest()), b64u(hashlib.sha256(der).digest())


def assertion(tenant_id=CONTOSO, alg="PS256", aud=None, exp_delta=300, jti=None, use_s1=False,
              thumb=None):
    s1, s256 = cert_thumbs()
    hdr = {"alg": alg, "typ": "JWT"}
    if use_s1:
        hdr["x5t"] = thumb or s1
    else:
        hdr["x5t#S256"] = thumb or s256
    now = int(time.time())
    claims = {"aud": aud or "https://login.microsoftonline.com/%s/oauth2/v2.0/token" % tenant_id,
              "iss": CID, "sub": CID, "jti": jti or str(uuid.uuid4()), "nbf": now,
              "exp": now + exp_delta, "iat": now}
    signing = (b64u(json.dumps(hdr).encode()) + "." + b64u(json.dumps(claims).encode())).encode()
    return signing.decode() + "." + b64u(sign(signing, alg))


def cert_token(tenant="contoso.com", jwt=None, **kw):
    return call("POST", "/%s/oauth2/v2.0/token" % tenant, form={
        "client_id": CID, "scope": SCOPE, "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": jwt or assertion(**kw)})


class Base(unittest.TestCase):
    def setUp(self):
        ctl("POST", "reset")

    def assertAadsts(self, r, status, error, code):
        self.assertEqual(r.status, status, r)
        j = r.json
        self.assertEqual(j["error"], error)
        self.assertEqual(j["error_codes"], [code])
        self.assertTrue(j["error_description"].startswith("AADSTS%d: " % code), j)
        self.assertIn("Trace ID: " + j["trace_id"], j["error_description"])
        self.assertIn("Correlation ID: " + j["correlation_id"], j["error_description"])
        for k in ("timestamp", "trace_id", "correlation_id", "error_uri"):
            self.assertIn(k, j)

    def assertGraphError(self, r, status, code):
        self.assertEqual(r.status, status, r)
        e = r.json["error"]
        self.assertEqual(e["code"], code, r)
        self.assertIsInstance(e["message"], str)
        self.assertIn("request-id", e["innerError"])
        self.assertIn("date", e["innerError"])
        self.assertEqual(r.headers.get("request-id"), e["innerError"]["request-id"])

    def users_of(self, key):
        return [u for u in ctl("GET", "tenants/%s/users" % key)["users"]]


# ---------------------------------------------------------------------------------------------
class TokenTests(Base):
    def test_secret_ok_by_domain_and_id(self):
        for ref in ("contoso.com", CONTOSO):
            r = token(ref)
            self.assertEqual(r.status, 200, r)
            j = r.json
            self.assertEqual(j["token_type"], "Bearer")
            self.assertEqual(j["expires_in"], 3599)
            self.assertTrue(j["access_token"])
        self.assertNotEqual(tok(), tok())

    def test_basic_auth_secret(self):
        basic = base64.b64encode(("%s:%s" % (CID, urllib.parse.quote_plus(SECRET))).encode())
        r = call("POST", "/contoso.com/oauth2/v2.0/token",
                 form={"scope": SCOPE, "grant_type": "client_credentials"},
                 headers={"Authorization": "Basic " + basic.decode()})
        self.assertEqual(r.status, 200, r)

    def test_unknown_tenant_90002(self):
        self.assertAadsts(token("nosuchtenant.example"), 400, "invalid_request", 90002)
        self.assertAadsts(token(str(uuid.uuid4())), 400, "invalid_request", 90002)

    def test_unknown_client_700016(self):
        self.assertAadsts(token(client_id=str(uuid.uuid4())), 400, "unauthorized_client",
                          700016)
        # app exists but has no service principal in Woodgrove (listed in contracts)
        self.assertAadsts(token("woodgrovebank.com"), 400, "unauthorized_client", 700016)

    def test_bad_secret_7000215(self):
        self.assertAadsts(token(client_secret="wrong"), 401, "invalid_client", 7000215)

    def test_expired_secret_7000222(self):
        ctl("POST", "apps/%s/expire-secrets" % CID)
        self.assertAadsts(token(), 401, "invalid_client", 7000222)

    def test_no_consent_65001(self):
        ctl("PATCH", "tenants/contoso/grants/%s" % CID, {"consent": False})
        self.assertAadsts(token(), 400, "invalid_grant", 65001)
        self.assertEqual(token("fabrikam.com").status, 200)

    def test_missing_credential_7000218(self):
        r = call("POST", "/contoso.com/oauth2/v2.0/token", form={
            "client_id": CID, "scope": SCOPE, "grant_type": "client_credentials"})
        self.assertAadsts(r, 401, "invalid_client", 7000218)

    def test_bad_scope_70011_and_grant_type(self):
        self.assertAadsts(token(scope="https://graph.microsoft.com/User.Read"), 400,
                          "invalid_scope", 70011)
        self.assertAadsts(token(grant_type="password"), 400, "unsupported_grant_type", 70003)
        r = call("GET", "/contoso.com/oauth2/v2.0/token")
        self.assertEqual(r.status, 400)

    def test_token_headers(self):
        r = token()
        self.assertIn("no-store", r.headers["cache-control"])
        self.assertTrue(r.headers["content-type"].startswith("application/json"))

    def test_assertion_ps256_and_rs256_verified(self):
        with open(CERT) as f:
            ctl("POST", "apps/%s/certificates" % CID, {"pem": f.read()})
        r = cert_token()
        self.assertEqual(r.status, 200, r)
        r = cert_token(alg="RS256", use_s1=True)
        self.assertEqual(r.status, 200, r)
        # assertion for fabrikam, addressed by domain in the URL and by id in aud
        r = cert_token("fabrikam.com", tenant_id=FABRIKAM)
        self.assertEqual(r.status, 200, r)

    def test_assertion_errors(self):
        with open(CERT) as f:
            ctl("POST", "apps/%s/certificates" % CID, {"pem": f.read()})
        good = assertion()
        h, p, s = good.split(".")
        bad_sig = h + "." + p + "." + b64u(b"\x00" * 256)
        self.assertAadsts(cert_token(jwt=bad_sig), 401, "invalid_client", 700027)
        self.assertAadsts(cert_token(thumb=b64u(b"x" * 32)), 401, "invalid_client", 700027)
        self.assertAadsts(cert_token(tenant_id=FABRIKAM), 401, "invalid_client", 50012)
        self.assertAadsts(cert_token(exp_delta=-900), 401, "invalid_client", 700024)
        self.assertAadsts(cert_token(jwt="not-a-jwt"), 400, "invalid_request", 50027)
        jti = str(uuid.uuid4())
        self.assertEqual(cert_token(jti=jti).status, 200)
        self.assertAadsts(cert_token(jti=jti), 401, "invalid_client", 50012)

    def test_assertion_structure_only_without_public_key(self):
        s1, s256 = cert_thumbs()
        ctl("POST", "apps/%s/certificates" % CID, {"x5tS256": s256})
        good = assertion()
        h, p, _s = good.split(".")
        self.assertEqual(cert_token(jwt=h + "." + p + "." + b64u(b"junk")).status, 200)


# ---------------------------------------------------------------------------------------------
class GraphAuthTests(Base):
    def test_missing_and_garbage_token_401(self):
        r = call("GET", "/v1.0/users")
        self.assertGraphError(r, 401, "InvalidAuthenticationToken")
        self.assertIn("www-authenticate", r.headers)
        self.assertGraphError(get("/v1.0/users", "garbage"), 401, "InvalidAuthenticationToken")

    def test_expired_token_401(self):
        ctl("POST", "config", {"token_lifetime": 60})
        r = token()
        self.assertEqual(r.json["expires_in"], 60)
        t = r.json["access_token"]
        self.assertEqual(get("/v1.0/organization", t).status, 200)
        ctl("POST", "clock", {"advance_seconds": 61})
        self.assertGraphError(get("/v1.0/organization", t), 401, "InvalidAuthenticationToken")
        self.assertEqual(get("/v1.0/organization", tok()).status, 200)

    def test_missing_role_403(self):
        ctl("PATCH", "tenants/contoso/grants/%s" % CID,
            {"remove_roles": ["User.Read.All", "Directory.Read.All"]})
        t = tok()
        self.assertGraphError(get("/v1.0/users", t), 403, "Authorization_RequestDenied")
        self.assertEqual(get("/v1.0/organization", t).status, 200)
        ctl("PATCH", "tenants/contoso/grants/%s" % CID, {"roles": []})
        t = tok()  # a token is issued even without roles
        for p in ("/v1.0/organization", "/v1.0/subscribedSkus", "/v1.0/security/secureScores",
                  "/v1.0/groups"):
            self.assertGraphError(get(p, t), 403, "Authorization_RequestDenied")

    def test_token_scoped_to_its_tenant(self):
        tc, tf = tok("contoso.com"), tok("fabrikam.com")
        self.assertEqual(get("/v1.0/organization", tc).json["value"][0]["id"], CONTOSO)
        self.assertEqual(get("/v1.0/organization", tf).json["value"][0]["id"], FABRIKAM)
        nl = get("/v1.0/users?$top=2", tc).json["@odata.nextLink"]
        self.assertGraphError(get(nl, tf), 400, "Request_BadRequest")
        fab_upns = {u["userPrincipalName"] for u in self.users_of("fabrikam")}
        seen = {u["userPrincipalName"] for p in follow("/v1.0/users?$select=userPrincipalName",
                                                       tc) for u in p["value"]}
        self.assertFalse(seen & fab_upns)


# ---------------------------------------------------------------------------------------------
class UsersTests(Base):
    def test_default_properties(self):
        r = get("/v1.0/users", tok())
        self.assertEqual(r.status, 200)
        self.assertTrue(r.headers["content-type"].startswith("application/json;odata.metadata"))
        j = r.json
        self.assertTrue(j["@odata.context"].endswith("/v1.0/$metadata#users"))
        keys = set(j["value"][0])
        self.assertEqual(keys, {"businessPhones", "displayName", "givenName", "jobTitle", "mail",
                                "mobilePhone", "officeLocation", "preferredLanguage", "surname",
                                "userPrincipalName", "id"})
        self.assertIn(None, [u["jobTitle"] for u in j["value"]])  # nulls are present in lists

    def test_paging_all_users(self):
        t = tok()
        pages = follow("/v1.0/users?$select=id,userPrincipalName,userType,accountEnabled&$top=7",
                       t)
        ids = [u["id"] for p in pages for u in p["value"]]
        active = [u for u in self.users_of("contoso") if u["_state"] == "active"]
        self.assertEqual(len(ids), len(active))
        self.assertEqual(len(set(ids)), len(ids))
        self.assertGreater(len(pages), 4)
        self.assertTrue(all(len(p["value"]) == 7 for p in pages[:-1]))
        self.assertNotIn("@odata.nextLink", pages[-1])
        self.assertIn("$skiptoken=", pages[0]["@odata.nextLink"])
        self.assertIn("$top=7", pages[0]["@odata.nextLink"])
        vals = [u for p in pages for u in p["value"]]
        self.assertTrue(any(u["userType"] == "Guest" and "#EXT#" in u["userPrincipalName"]
                            for u in vals))
        self.assertTrue(any(u["accountEnabled"] is False for u in vals))

    def test_top_bounds(self):
        t = tok()
        r = get("/v1.0/users?$top=1000", t)
        self.assertEqual(r.status, 400)
        self.assertIn("Invalid page size specified: '1000'. Must be between 1 and 999 inclusive",
                      r.json["error"]["message"])
        self.assertEqual(get("/v1.0/users?$top=0", t).status, 400)
        self.assertEqual(get("/v1.0/users?$top=999", t).status, 200)

    def test_select_errors(self):
        t = tok()
        self.assertGraphError(get("/v1.0/users?$select=id,nosuch", t), 400, "Request_BadRequest")
        self.assertGraphError(get("/v1.0/users?$select=id,skills", t), 501, "NotImplemented")

    def test_filter_count_and_advanced_queries(self):
        t = tok()
        users = [u for u in self.users_of("contoso") if u["_state"] == "active"]
        q = "/v1.0/users?$select=id&$filter=" + urllib.parse.quote("accountEnabled eq false")
        got = [u for p in follow(q, t) for u in p["value"]]
        self.assertEqual(len(got), sum(1 for u in users if u["accountEnabled"] is False))
        q = "/v1.0/users?$select=id&$filter=" + urllib.parse.quote("accountEnabled ne true")
        self.assertGraphError(get(q, t), 400, "Request_UnsupportedQuery")
        r = get(q + "&$count=true", t, {"ConsistencyLevel": "eventual"})
        self.assertEqual(r.json["@odata.count"], len(got))
        self.assertGraphError(get("/v1.0/users?$count=true", t), 400, "Request_BadRequest")
        sku = graph_data.SKU_BY_PART["SPE_E3"][1]
        q = "/v1.0/users?$select=id,assignedLicenses&$filter=" + urllib.parse.quote(
            "assignedLicenses/any(x:x/skuId eq %s)" % sku)
        got = [u for p in follow(q, t) for u in p["value"]]
        self.assertTrue(got and all(any(a["skuId"] == sku for a in u["assignedLicenses"])
                                    for u in got))
        r = get("/v1.0/users/$count", t, {"ConsistencyLevel": "eventual"})
        self.assertEqual(int(r.text), len(users))

    def test_get_user_by_id_and_upn(self):
        t = tok()
        u = self.users_of("contoso")[3]
        r = get("/v1.0/users/%s?$select=id,department" % urllib.parse.quote(
            u["userPrincipalName"]), t)
        self.assertEqual(r.json["id"], u["id"])
        self.assertEqual(get("/v1.0/users/" + u["id"], t).json["userPrincipalName"],
                         u["userPrincipalName"])
        self.assertGraphError(get("/v1.0/users/" + str(uuid.uuid4()), t), 404,
                              "Request_ResourceNotFound")

    def test_utf8_and_generated_variety(self):
        t = tok("contoso.com")
        r = get("/v1.0/users?$top=999&$select=displayName,mail,assignedLicenses,userType", t)
        vals = r.json["value"]
        self.assertTrue(any(not u["displayName"].isascii() for u in vals), "no non-ASCII name")
        self.assertIn("Zoë".encode("utf-8") if any("Zoë" in u["displayName"] for u in vals)
                      else vals[0]["displayName"].encode("utf-8"), r.raw)
        self.assertTrue(any(u["mail"] is None for u in vals))
        skus = {a["skuId"] for u in vals for a in u["assignedLicenses"]}
        self.assertIn(graph_data.UNKNOWN_SKU_ID, skus)
        self.assertIn("05e9a617-0261-4cee-bb44-138d3ef5d965", skus)

    def test_gzip_and_keepalive(self):
        t = tok()
        c = http.client.HTTPConnection("127.0.0.1", SRV.server_address[1], timeout=10)
        r1 = call("GET", "/v1.0/users", token=t, headers={"Accept-Encoding": "gzip"}, conn=c)
        self.assertEqual(r1.headers.get("content-encoding"), "gzip")
        self.assertIn("value", json.loads(gzip.decompress(r1.raw)))
        r2 = call("GET", "/v1.0/organization", token=t, conn=c)  # same connection
        self.assertEqual(r2.status, 200)
        self.assertNotIn("content-encoding", r2.headers)
        c.close()
        self.assertEqual(r1.headers["x-ms-resource-unit"], "2")
        self.assertEqual(r1.headers["client-request-id"], r1.headers["request-id"])
        r3 = call("GET", "/v1.0/organization", token=t, headers={"client-request-id": "abc"})
        self.assertEqual(r3.headers["client-request-id"], "abc")


# ---------------------------------------------------------------------------------------------
class DeltaTests(Base):
    SEL = "/v1.0/users/delta?$select=displayName,jobTitle,city,accountEnabled"

    def initial_round(self, t, size=10):
        pages = follow(self.SEL, t, {"Prefer": "odata.maxpagesize=%d" % size})
        self.assertIn("@odata.deltaLink", pages[-1])
        for p in pages[:-1]:
            self.assertNotIn("@odata.deltaLink", p)
        return pages

    def round(self, link, t, minimal=False):
        h = {"Prefer": "return=minimal"} if minimal else None
        pages = follow(link, t, h)
        return [x for p in pages for x in p["value"]], pages[-1]["@odata.deltaLink"]

    def test_initial_round_pages(self):
        t = tok()
        pages = self.initial_round(t, 10)
        users = self.users_of("contoso")
        vals = [x for p in pages for x in p["value"]]
        self.assertEqual(len(vals), len(users))
        self.assertGreaterEqual(len(pages), 4)
        removed = [x for x in vals if "@removed" in x]
        self.assertEqual([x["@removed"] for x in removed], [{"reason": "changed"}])
        live = [x for x in vals if "@removed" not in x]
        self.assertTrue(all("id" in x and "displayName" in x for x in live))
        self.assertTrue(all(None not in x.values() for x in live))  # never-set are omitted
        self.assertTrue(any("jobTitle" not in x for x in live))
        self.assertIn("$skiptoken=", pages[0]["@odata.nextLink"])
        self.assertIn("$deltatoken=", pages[-1]["@odata.deltaLink"])

    def test_change_round_default_and_minimal(self):
        t = tok()
        link = self.initial_round(t, 50)[-1]["@odata.deltaLink"]
        us = [u for u in self.users_of("contoso") if u["_state"] == "active"
              and u.get("jobTitle") and u.get("city")]
        a, b, c = us[0], us[1], us[2]
        ctl("PATCH", "tenants/contoso/users/" + a["id"], {"jobTitle": "Chief Tester"})
        ctl("PATCH", "tenants/contoso/users/" + b["id"], {"mobilePhone": "+1 555 0000"})
        ctl("PATCH", "tenants/contoso/users/" + c["id"], {"city": None})
        new = ctl("POST", "tenants/contoso/users", {"displayName": "New Hire",
                                                    "givenName": "New", "surname": "Hire",
                                                    "jobTitle": "Intern"})
        vals, link2 = self.round(link, t)
        by = {x["id"]: x for x in vals}
        self.assertEqual(set(by), {a["id"], c["id"], new["id"]})  # b: untracked property
        self.assertEqual(by[a["id"]]["jobTitle"], "Chief Tester")
        self.assertEqual(by[a["id"]]["displayName"], a["displayName"])  # unchanged selected
        self.assertIn("city", by[c["id"]])
        self.assertIsNone(by[c["id"]]["city"])  # changed to null: present as null
        self.assertEqual(by[new["id"]]["displayName"], "New Hire")
        self.assertNotIn("@removed", by[new["id"]])
        # minimal: only changed properties (+ id)
        ctl("PATCH", "tenants/contoso/users/" + a["id"], {"jobTitle": "Chief Tester 2"})
        vals, link3 = self.round(link2, t, minimal=True)
        self.assertEqual(vals, [{"jobTitle": "Chief Tester 2", "id": a["id"]}])
        vals, _ = self.round(link3, t)
        self.assertEqual(vals, [])

    def test_removed_reasons_and_restore(self):
        t = tok()
        link = self.initial_round(t, 100)[-1]["@odata.deltaLink"]
        us = [u for u in self.users_of("contoso") if u["_state"] == "active"]
        x, y = us[5], us[6]
        ctl("POST", "tenants/contoso/users/%s/soft-delete" % x["id"])
        ctl("POST", "tenants/contoso/users/%s/hard-delete" % y["id"])
        vals, link2 = self.round(link, t)
        by = {v["id"]: v for v in vals}
        self.assertEqual(by[x["id"]], {"id": x["id"], "@removed": {"reason": "changed"}})
        self.assertEqual(by[y["id"]], {"id": y["id"], "@removed": {"reason": "deleted"}})
        ctl("POST", "tenants/contoso/users/%s/restore" % x["id"])
        vals, _ = self.round(link2, t)
        self.assertEqual(len(vals), 1)
        self.assertEqual(vals[0]["displayName"], x["displayName"])
        self.assertNotIn("@removed", vals[0])

    def test_delta_paging_of_changes(self):
        t = tok()
        link = self.initial_round(t, 100)[-1]["@odata.deltaLink"]
        us = [u for u in self.users_of("contoso") if u["_state"] == "active"]
        for u in us[:12]:
            ctl("POST", "tenants/contoso/users/%s/disable" % u["id"])
        pages = follow(link, t, {"Prefer": "odata.maxpagesize=5"})
        ids = [v["id"] for p in pages for v in p["value"]]
        changed = [u["id"] for u in us[:12] if u["accountEnabled"]]
        self.assertGreater(len(changed), 5)
        self.assertEqual(len(pages), (len(changed) + 4) // 5)
        self.assertEqual(sorted(ids), sorted(changed))
        first = next(u for u in us[:12] if u["accountEnabled"])
        want = {k: first[k] for k in ("displayName", "jobTitle", "city") if first.get(k)}
        want.update(accountEnabled=False, id=first["id"])
        self.assertEqual(pages[0]["value"][0], want)  # changed + current selected, no nulls

    def test_expiry_410_and_location(self):
        t = tok()
        link = self.initial_round(t, 100)[-1]["@odata.deltaLink"]
        ctl("POST", "clock", {"advance_days": 6})
        t = tok()
        _vals, link = self.round(link, t)  # 6 days old: still fine
        ctl("POST", "clock", {"advance_days": 8})
        t = tok()
        r = get(link, t)
        self.assertGraphError(r, 410, "resyncRequired")
        loc = r.headers["location"]
        self.assertIn("$deltatoken=", loc)
        self.assertIn("$select=displayName,jobTitle,city,accountEnabled", loc)
        pages = follow(loc, t)
        self.assertIn("@odata.deltaLink", pages[-1])
        self.assertEqual(len([x for p in pages for x in p["value"]]),
                         len(self.users_of("contoso")))

    def test_expiry_modes(self):
        t = tok()
        link = self.initial_round(t, 100)[-1]["@odata.deltaLink"]
        ctl("POST", "clock", {"advance_days": 8})
        t = tok()
        for mode in ("syncStateNotFound", "resyncRequired"):
            ctl("POST", "config", {"delta_expiry_mode": mode})
            self.assertGraphError(get(link, t), 400, mode)

    def test_latest_filter_and_rejected_options(self):
        t = tok()
        r = get("/v1.0/users/delta?$select=displayName&$deltatoken=latest", t)
        self.assertEqual(r.json["value"], [])
        link = r.json["@odata.deltaLink"]
        u = [x for x in self.users_of("contoso") if x["_state"] == "active"]
        ctl("PATCH", "tenants/contoso/users/" + u[1]["id"], {"displayName": "Renamed"})
        vals, _ = self.round(link, t)
        self.assertEqual(vals, [{"displayName": "Renamed", "id": u[1]["id"]}])
        q = "/v1.0/users/delta?$select=displayName&$filter=" + urllib.parse.quote(
            "id eq '%s' or id eq '%s'" % (u[2]["id"], u[3]["id"]))
        vals = [x for p in follow(q, t) for x in p["value"]]
        self.assertEqual({x["id"] for x in vals}, {u[2]["id"], u[3]["id"]})
        self.assertGraphError(get("/v1.0/users/delta?$top=5", t), 400,
                              "Request_UnsupportedQuery")

    def test_reset_invalidates_delta_links(self):
        t = tok()
        link = self.initial_round(t, 100)[-1]["@odata.deltaLink"]
        ctl("POST", "reset")
        self.assertEqual(get(link, tok()).status, 410)


# ---------------------------------------------------------------------------------------------
class GroupsTests(Base):
    def test_filter_by_name_and_get(self):
        t = tok()
        q = "/v1.0/groups?$filter=" + urllib.parse.quote("displayName eq 'Sync - PSA Contacts'")
        r = get(q, t)
        self.assertEqual(len(r.json["value"]), 1)
        g = r.json["value"][0]
        self.assertEqual(get("/v1.0/groups/" + g["id"], t).json["displayName"],
                         "Sync - PSA Contacts")
        self.assertGraphError(get("/v1.0/groups/" + str(uuid.uuid4()), t), 404,
                              "Request_ResourceNotFound")

    def test_transitive_members_flatten_and_page(self):
        t = tok()
        groups = {g["displayName"]: g for g in ctl("GET", "tenants/contoso/groups")["groups"]}
        psa = groups["Sync - PSA Contacts"]
        pages = follow("/v1.0/groups/%s/transitiveMembers?$select=id&$top=4" % psa["id"], t)
        self.assertGreater(len(pages), 2)
        vals = [x for p in pages for x in p["value"]]
        ids = [x["id"] for x in vals]
        self.assertEqual(len(ids), len(set(ids)))
        types = {x["@odata.type"] for x in vals}
        self.assertEqual(types, {"#microsoft.graph.user", "#microsoft.graph.group",
                                 "#microsoft.graph.device"})
        self.assertTrue(all(set(x) == {"@odata.type", "id"} for x in vals))
        # Warehouse users (nested two levels) are in; direct members are not all users
        for uid in groups["Warehouse"]["members"]:
            self.assertIn(uid, ids)
        direct = [x for p in follow("/v1.0/groups/%s/members?$select=id" % psa["id"], t)
                  for x in p["value"]]
        self.assertEqual(len(direct), len(psa["members"]))
        self.assertLess(len(direct), len(vals))
        self.assertEqual(get("/v1.0/groups/%s/transitiveMembers" % psa["id"], t)
                         .headers["x-ms-resource-unit"], "5")

    def test_membership_change_visible(self):
        t = tok()
        g = ctl("POST", "tenants/contoso/groups", {"displayName": "Temp"})
        u = self.users_of("contoso")[2]
        ctl("POST", "tenants/contoso/groups/%s/members" % g["id"], {"add": [u["id"]]})
        vals = get("/v1.0/groups/%s/transitiveMembers" % g["id"], t).json["value"]
        self.assertEqual([v["id"] for v in vals], [u["id"]])
        vals = get("/v1.0/users/%s/transitiveMemberOf" % u["id"], t).json["value"]
        self.assertIn(g["id"], [v["id"] for v in vals])


# ---------------------------------------------------------------------------------------------
class EndpointTests(Base):
    def test_organization(self):
        t = tok()
        o = get("/v1.0/organization", t).json["value"][0]
        self.assertEqual(o["id"], CONTOSO)
        self.assertEqual(o["displayName"], "Contoso, Ltd")
        d = {x["name"]: x for x in o["verifiedDomains"]}
        self.assertTrue(d["contoso.com"]["isDefault"])
        self.assertTrue(any(x["isInitial"] and x["name"].endswith(".onmicrosoft.com")
                            for x in d.values()))
        r = get("/v1.0/organization/" + CONTOSO, t).json
        self.assertTrue(r["@odata.context"].endswith("#organization/$entity"))
        p = get("/v1.0/organization", tok(PARTNER)).json["value"][0]
        self.assertEqual(p["partnerTenantType"], "ResellerPartnerDelegatedAdmin")

    def test_subscribed_skus_live_counts(self):
        t = tok()
        skus = {s["skuPartNumber"]: s for s in get("/v1.0/subscribedSkus", t).json["value"]}
        e3 = skus["SPE_E3"]
        self.assertEqual(e3["skuId"], "05e9a617-0261-4cee-bb44-138d3ef5d965")
        self.assertEqual(e3["id"], CONTOSO + "_" + e3["skuId"])
        for k in ("enabled", "suspended", "warning", "lockedOut"):
            self.assertIn(k, e3["prepaidUnits"])
        u = [x for x in self.users_of("contoso") if x["_state"] == "active"
             and any(a["skuId"] == e3["skuId"] for a in x["assignedLicenses"])][0]
        ctl("PATCH", "tenants/contoso/users/" + u["id"], {"assignedLicenses": []})
        ctl("PATCH", "tenants/contoso/skus/SPE_E3", {"enabled": 99, "warning": 3})
        e3b = {s["skuPartNumber"]: s for s in get("/v1.0/subscribedSkus", t).json["value"]}[
            "SPE_E3"]
        self.assertEqual(e3b["consumedUnits"], e3["consumedUnits"] - 1)
        self.assertEqual(e3b["prepaidUnits"]["enabled"], 99)
        self.assertEqual(e3b["prepaidUnits"]["warning"], 3)
        self.assertIn(graph_data.UNKNOWN_SKU_ID, [s["skuId"] for s in skus.values()])
        fab = {s["skuPartNumber"]: s for s in get("/v1.0/subscribedSkus", tok("fabrikam.com"))
               .json["value"]}
        self.assertEqual(fab["EMS"]["capabilityStatus"], "Warning")
        self.assertEqual(get("/v1.0/subscribedSkus", t).headers["x-ms-resource-unit"], "3")

    def test_secure_scores(self):
        t = tok()
        r = get("/v1.0/security/secureScores?$top=1", t).json
        s = r["value"][0]
        today = time.strftime("%Y-%m-%d", time.gmtime(time.time()))
        self.assertEqual(s["id"], "%s_%s" % (CONTOSO, today))
        self.assertEqual(s["azureTenantId"], CONTOSO)
        self.assertLessEqual(s["currentScore"], s["maxScore"])
        self.assertAlmostEqual(sum(c["score"] for c in s["controlScores"]), s["currentScore"],
                               places=1)
        extra = set().union(*[set(c) for c in s["controlScores"]])
        self.assertTrue({"on", "count", "total"} <= extra)
        self.assertTrue(all(isinstance(c["count"], str) for c in s["controlScores"]
                            if "count" in c))
        allv = get("/v1.0/security/secureScores", t).json["value"]
        self.assertEqual(len(allv), 90)
        dates = [x["id"][-10:] for x in allv]
        self.assertEqual(dates, sorted(dates, reverse=True))
        self.assertGreater(len({x["currentScore"] for x in allv}), 1)  # history moves
        ctl("PUT", "tenants/contoso/secure-scores/" + today, {"currentScore": 12.5})
        self.assertEqual(get("/v1.0/security/secureScores?$top=1", t).json["value"][0][
            "currentScore"], 12.5)

    def test_control_profiles(self):
        t = tok()
        r = get("/v1.0/security/secureScoreControlProfiles", t).json["value"]
        names = {p["id"] for p in r}
        s = get("/v1.0/security/secureScores?$top=1", t).json["value"][0]
        self.assertTrue({c["controlName"] for c in s["controlScores"]} <= names)
        self.assertTrue(any(p["deprecated"] for p in r))
        q = "/v1.0/security/secureScoreControlProfiles?$filter=" + urllib.parse.quote(
            "controlCategory eq 'Identity'")
        self.assertTrue(all(p["controlCategory"] == "Identity" for p in get(q, t)
                            .json["value"]))

    def test_contracts_partner_only(self):
        r = get("/v1.0/contracts", tok(PARTNER))
        self.assertEqual(r.status, 200, r)
        cs = r.json["value"]
        self.assertEqual({c["customerId"] for c in cs} >= {CONTOSO, FABRIKAM}, True)
        fab = [c for c in cs if c["customerId"] == FABRIKAM][0]
        self.assertEqual(fab["displayName"], "Fabrikam Inc")  # snapshot, never updated
        self.assertEqual(set(cs[0]), {"id", "contractType", "customerId", "defaultDomainName",
                                      "displayName"})
        self.assertGraphError(get("/v1.0/contracts", tok()), 403, "Forbidden")

    def test_contracts_added_and_removed(self):
        """POST/DELETE tenants/partner/contracts: a contract a test adds is listed by /contracts."""
        ctl("POST", "tenants", {"key": "lamna", "id": "7d3c1a2b-0000-4f00-8000-00000000a1b2",
                                "displayName": "Lamna Healthcare", "domain": "lamna.example",
                                "contract": False})
        t = tok(PARTNER)
        ids = lambda: {c["customerId"] for c in get("/v1.0/contracts", t).json["value"]}  # noqa: E731
        self.assertNotIn("7d3c1a2b-0000-4f00-8000-00000000a1b2", ids())
        c = ctl("POST", "tenants/partner/contracts", {"customer": "lamna",
                                                       "displayName": "Lamna (old name)"})
        self.assertEqual((c["customerId"], c["defaultDomainName"], c["displayName"],
                          c["contractType"]),
                         ("7d3c1a2b-0000-4f00-8000-00000000a1b2", "lamna.example",
                          "Lamna (old name)", "ResellerPartner"))
        self.assertIn("7d3c1a2b-0000-4f00-8000-00000000a1b2", ids())
        ctl("DELETE", "tenants/partner/contracts/" + c["id"])
        self.assertNotIn("7d3c1a2b-0000-4f00-8000-00000000a1b2", ids())

    def test_tenant_information(self):
        t = tok(PARTNER)
        r = get("/v1.0/tenantRelationships/findTenantInformationByTenantId(tenantId='%s')"
                % FABRIKAM, t).json
        self.assertEqual(r["tenantId"], FABRIKAM)
        self.assertEqual(r["defaultDomainName"], "fabrikam.com")
        self.assertIn("federationBrandName", r)
        self.assertEqual(get("/v1.0/tenantRelationships/findTenantInformationByTenantId("
                             "tenantId='%s')" % uuid.uuid4(), t).status, 404)
        self.assertEqual(get("/v1.0/tenantRelationships/findTenantInformationByTenantId("
                             "tenantId='%s')" % FABRIKAM, tok()).status, 403)

    def test_patch_user_disable_and_password(self):
        t = tok()
        us = [u for u in self.users_of("contoso") if u["_state"] == "active"]
        u = [x for x in us if not x["_admin"] and x["accountEnabled"]][0]
        r = call("PATCH", "/v1.0/users/" + u["id"], {"accountEnabled": False}, token=t)
        self.assertEqual(r.status, 204, r)
        self.assertFalse(ctl("GET", "tenants/contoso/users/" + u["id"])["accountEnabled"])
        r = call("PATCH", "/v1.0/users/" + u["id"], {"passwordProfile": {
            "password": "weak", "forceChangePasswordNextSignIn": True}}, token=t)
        self.assertGraphError(r, 400, "Request_BadRequest")
        r = call("PATCH", "/v1.0/users/" + u["id"], {"passwordProfile": {
            "password": "Str0ng!Passw0rd", "forceChangePasswordNextSignIn": True}}, token=t)
        self.assertEqual(r.status, 204, r)
        self.assertEqual(ctl("GET", "tenants/contoso/users/" + u["id"])["_password"],
                         "Str0ng!Passw0rd")
        admin = [x for x in us if x["_admin"]][0]
        r = call("PATCH", "/v1.0/users/" + admin["id"], {"accountEnabled": False}, token=t)
        self.assertGraphError(r, 403, "Authorization_RequestDenied")
        r = call("PATCH", "/v1.0/users/" + u["id"], {"department": "X"}, token=t)
        self.assertGraphError(r, 403, "Authorization_RequestDenied")  # no write role
        ctl("PATCH", "tenants/contoso/grants/%s" % CID,
            {"remove_roles": ["User-PasswordProfile.ReadWrite.All"]})
        r = call("PATCH", "/v1.0/users/" + u["id"], {"passwordProfile": {
            "password": "Str0ng!Passw0rd2"}}, token=tok())
        self.assertGraphError(r, 403, "Authorization_RequestDenied")

    def test_directory_roles_of_user(self):
        t = tok()
        us = [u for u in self.users_of("contoso") if u["_state"] == "active"]
        admin = [x for x in us if x["_admin"]][0]
        plain = [x for x in us if not x["_admin"]][0]
        path = "/v1.0/users/%s/transitiveMemberOf/microsoft.graph.directoryRole"
        r = get(path % admin["id"] + "?$select=displayName", t)
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json["@odata.context"].endswith("$metadata#directoryRoles"))
        self.assertEqual(r.json["value"], [{"@odata.type": "#microsoft.graph.directoryRole",
                                            "displayName": "Global Administrator"}])
        full = get(path % admin["userPrincipalName"], t).json["value"][0]
        self.assertEqual(full["roleTemplateId"], "62e90394-69f5-4237-9190-012177145e10")
        self.assertEqual(sorted(full), ["@odata.type", "deletedDateTime", "description",
                                        "displayName", "id", "roleTemplateId"])
        uuid.UUID(full["id"])
        other = get(path % [x for x in self.users_of("fabrikam") if x["_admin"]][0]["id"],
                    tok("fabrikam.com")).json["value"][0]
        self.assertNotEqual(other["id"], full["id"])  # activated roles are per tenant
        # memberOf too; the uncast list carries the role after the groups, the group cast not
        direct = get("/v1.0/users/%s/memberOf/microsoft.graph.directoryRole" % admin["id"], t)
        self.assertEqual(direct.json["value"], [full])
        mixed = get("/v1.0/users/%s/memberOf" % admin["id"], t).json["value"]
        self.assertEqual(mixed[-1], full)
        self.assertTrue(all(v["@odata.type"] == "#microsoft.graph.group" for v in mixed[:-1]))
        groups = get("/v1.0/users/%s/memberOf/microsoft.graph.group" % admin["id"], t).json
        self.assertEqual(groups["value"], mixed[:-1])
        # a non-administrator holds none; the control API's admin flag grants and removes
        self.assertEqual(get(path % plain["id"], t).json["value"], [])
        ctl("POST", "tenants/contoso/users/%s/admin" % plain["id"], {"admin": True})
        self.assertEqual(get(path % plain["id"], t).json["value"], [full])
        ctl("POST", "tenants/contoso/users/%s/admin" % plain["id"], {"admin": False})
        self.assertEqual(get(path % plain["id"], t).json["value"], [])
        # errors: unknown property, unknown user, unknown cast
        self.assertGraphError(get(path % admin["id"] + "?$select=mail", t), 400,
                              "Request_BadRequest")
        self.assertGraphError(get(path % uuid.uuid4(), t), 404, "Request_ResourceNotFound")
        self.assertGraphError(get("/v1.0/users/%s/memberOf/microsoft.graph.role" % admin["id"],
                                  t), 400, "BadRequest")
        # permission: a user read role; a group read role alone is not enough for the roles
        ctl("PATCH", "tenants/contoso/grants/%s" % CID, {"remove_roles": [
            "User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
            "Directory.ReadWrite.All", "User.ReadBasic.All"]})
        t = tok()
        self.assertGraphError(get(path % admin["id"], t), 403, "Authorization_RequestDenied")
        self.assertEqual(get("/v1.0/users/%s/memberOf/microsoft.graph.group" % admin["id"],
                             t).status, 200)

    def test_revoke_sessions(self):
        t = tok()
        u = [x for x in self.users_of("contoso") if x["_state"] == "active"
             and not x["_admin"]][0]
        r = call("POST", "/v1.0/users/%s/revokeSignInSessions" % u["id"], token=t)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json["value"], True)
        self.assertTrue(r.json["@odata.context"].endswith("#Edm.Boolean"))
        self.assertTrue(ctl("GET", "tenants/contoso/users/" + u["id"])[
            "signInSessionsValidFromDateTime"])

    def test_unknown_segment(self):
        self.assertGraphError(get("/v1.0/mef", tok()), 400, "BadRequest")


# ---------------------------------------------------------------------------------------------
class BatchTests(Base):
    def batch(self, reqs, t):
        return call("POST", "/v1.0/$batch", {"requests": reqs}, token=t)

    def test_batch_shapes(self):
        t = tok()
        reqs = [{"id": "1", "method": "GET", "url": "/users?$select=id&$top=2"},
                {"id": "2", "method": "GET", "url": "organization"},
                {"id": "3", "method": "GET", "url": "/groups/%s" % uuid.uuid4()},
                {"id": "4", "method": "PATCH", "url": "/users/%s" % self.users_of("contoso")[3][
                    "id"], "body": {"accountEnabled": False},
                 "headers": {"Content-Type": "application/json"}},
                {"id": "5", "method": "GET", "url": "users/$count",
                 "headers": {"ConsistencyLevel": "eventual"}}]
        r = self.batch(reqs, t)
        self.assertEqual(r.status, 200)
        parts = {p["id"]: p for p in r.json["responses"]}
        self.assertEqual(set(parts), {"1", "2", "3", "4", "5"})
        self.assertEqual(parts["1"]["status"], 200)
        self.assertEqual(len(parts["1"]["body"]["value"]), 2)
        self.assertIn("@odata.nextLink", parts["1"]["body"])
        self.assertTrue(parts["1"]["headers"]["Content-Type"].startswith("application/json"))
        self.assertEqual(parts["3"]["status"], 404)
        self.assertEqual(parts["3"]["body"]["error"]["code"], "Request_ResourceNotFound")
        self.assertEqual(parts["4"]["status"], 204)
        self.assertIsNone(parts["4"]["body"])
        self.assertIsInstance(parts["5"]["body"], str)
        orders = set()
        for _ in range(6):
            orders.add(tuple(p["id"] for p in self.batch(reqs[:3], t).json["responses"]))
        self.assertGreater(len(orders), 1)  # any order

    def test_batch_limits(self):
        t = tok()
        reqs = [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)]
        self.assertGraphError(self.batch(reqs, t), 400, "BadRequest")
        self.assertEqual(self.batch(reqs[:20], t).status, 200)
        r = call("POST", "/v1.0/$batch", b"{not json", token=t)
        self.assertGraphError(r, 400, "BadRequest")
        dup = [{"id": "1", "method": "GET", "url": "/organization"}] * 2
        self.assertGraphError(self.batch(dup, t), 400, "BadRequest")

    def test_batch_depends_on_424(self):
        t = tok()
        r = self.batch([{"id": "a", "method": "GET", "url": "/groups/nope"},
                        {"id": "b", "method": "GET", "url": "/organization", "dependsOn": ["a"]},
                        {"id": "c", "method": "GET", "url": "/organization"},
                        {"id": "d", "method": "GET", "url": "/organization",
                         "dependsOn": ["c"]}], t)
        parts = {p["id"]: p for p in r.json["responses"]}
        self.assertEqual(parts["a"]["status"], 404)
        self.assertEqual(parts["b"]["status"], 424)
        self.assertEqual(parts["d"]["status"], 200)

    def test_batch_part_429(self):
        t = tok()
        ctl("POST", "faults", {"match": "/v1.0/users", "status": 429, "retry_after": "2.5",
                               "times": 2})
        reqs = [{"id": str(i), "method": "GET", "url": "/users?$top=1"} for i in range(3)]
        reqs.append({"id": "org", "method": "GET", "url": "/organization"})
        r = self.batch(reqs, t)
        self.assertEqual(r.status, 200)
        parts = {p["id"]: p for p in r.json["responses"]}
        throttled = [p for p in parts.values() if p["status"] == 429]
        self.assertEqual(len(throttled), 2)
        for p in throttled:
            self.assertEqual(p["headers"]["Retry-After"], "2.5")
            self.assertEqual(p["body"]["error"]["code"], "TooManyRequests")
        self.assertEqual(parts["org"]["status"], 200)
        log = ctl("GET", "requests?kind=batch-part")
        self.assertEqual(log["total"], 4)

    def test_batch_partial_next_link(self):
        t = tok()
        urls = ["/organization", "/subscribedSkus", "/users?$top=1", "/groups?$top=1",
                "/security/secureScores?$top=1"]
        reqs = [{"id": "p%d" % i, "method": "GET", "url": u} for i, u in enumerate(urls)]
        ctl("POST", "faults", {"match": r"\$batch", "batch_partial": 2, "next_parts": 2,
                               "tenant": "contoso"})
        r = self.batch(reqs, t)
        self.assertEqual(r.status, 200)
        self.assertEqual(sorted(p["id"] for p in r.json["responses"]), ["p0", "p1"])
        link = r.json["@odata.nextLink"]
        self.assertIn("/v1.0/$batch?$skiptoken=", link)
        seen = [p["id"] for p in r.json["responses"]]
        pages = follow(link, t)
        self.assertEqual([len(p["responses"]) for p in pages], [2, 1])
        for p in pages:
            seen += [x["id"] for x in p["responses"]]
            self.assertTrue(all(x["status"] == 200 and "body" in x for x in p["responses"]))
        self.assertEqual(sorted(seen), ["p0", "p1", "p2", "p3", "p4"])  # each part once
        self.assertEqual(len(get(link, t).json["responses"]), 2)       # read again: the same
        self.assertEqual(ctl("GET", "requests?kind=batch-part&summary=1")["total"], 5)
        self.assertEqual(ctl("GET", "faults")["faults"], [])            # consumed by the POST
        self.assertNotIn("@odata.nextLink", self.batch(reqs, t).json)
        self.assertGraphError(get(link, tok("fabrikam.com")), 400, "Request_BadRequest")
        raw, mac = link.split("$skiptoken=")[1].rsplit(".", 1)
        self.assertGraphError(get(link.split("$skiptoken=")[0] + "$skiptoken=" + raw + ".x" + mac,
                                  t), 400, "Request_BadRequest")
        # empty pages first
        ctl("POST", "faults", {"match": r"\$batch", "batch_partial": 0, "next_empty": 2})
        pages = [self.batch(reqs, t).json]
        pages += follow(pages[0]["@odata.nextLink"], t)
        self.assertEqual([len(p["responses"]) for p in pages], [0, 0, 0, 5])
        # without a nextLink: the parts after the first are left out for good
        ctl("POST", "faults", {"match": r"\$batch", "batch_partial": 1, "next_link": False})
        r = self.batch(reqs, t)
        self.assertEqual([p["id"] for p in r.json["responses"]], ["p0"])
        self.assertNotIn("@odata.nextLink", r.json)
        ctl("POST", "reset")
        self.assertGraphError(get(link, tok()), 400, "Request_BadRequest")


# ---------------------------------------------------------------------------------------------
class FaultTests(Base):
    def test_429_retry_after_and_consumed(self):
        t = tok()
        ctl("POST", "faults", {"match": r"/users\b", "status": 429, "retry_after": "1.5"})
        r = get("/v1.0/users", t)
        self.assertGraphError(r, 429, "TooManyRequests")
        self.assertEqual(r.headers["retry-after"], "1.5")
        self.assertTrue(r.headers["x-ms-throttle-scope"].startswith("Tenant_Application/"))
        self.assertEqual(r.headers["x-ms-throttle-information"], "ResourceUnitLimitExceeded")
        self.assertEqual(r.json["error"]["innerError"]["status"], "429")
        self.assertEqual(get("/v1.0/users", t).status, 200)  # times=1 consumed
        self.assertEqual(ctl("GET", "faults")["faults"], [])

    def test_500_503_times_after_and_tenant(self):
        t, tf = tok(), tok("fabrikam.com")
        ctl("POST", "faults", {"match": "organization", "status": 503, "times": 2, "after": 1,
                               "tenant": "contoso", "retry_after": "3"})
        self.assertEqual(get("/v1.0/organization", tf).status, 200)  # other tenant untouched
        self.assertEqual(get("/v1.0/organization", t).status, 200)   # after=1
        r = get("/v1.0/organization", t)
        self.assertGraphError(r, 503, "serviceNotAvailable")
        self.assertEqual(r.headers["retry-after"], "3")
        self.assertEqual(get("/v1.0/organization", t).status, 503)
        self.assertEqual(get("/v1.0/organization", t).status, 200)
        ctl("POST", "faults", {"match": "subscribedSkus", "status": 500, "times": -1})
        for _ in range(3):
            self.assertGraphError(get("/v1.0/subscribedSkus", t), 500, "generalException")
        ctl("DELETE", "faults")
        self.assertEqual(get("/v1.0/subscribedSkus", t).status, 200)

    def test_drop_mid_body(self):
        t = tok()
        ctl("POST", "faults", {"match": "/users", "drop": True})
        c = http.client.HTTPConnection("127.0.0.1", SRV.server_address[1], timeout=10)
        c.request("GET", "/v1.0/users", headers={"Authorization": "Bearer " + t})
        resp = c.getresponse()
        self.assertEqual(resp.status, 200)
        with self.assertRaises(http.client.IncompleteRead):
            resp.read()
        c.close()
        self.assertEqual(get("/v1.0/users", t).status, 200)

    def test_malformed_json_page(self):
        t = tok()
        ctl("POST", "faults", {"match": "/users", "malformed": True})
        r = get("/v1.0/users", t)
        self.assertEqual(r.status, 200)
        with self.assertRaises(ValueError):
            json.loads(r.raw)
        self.assertEqual(len(r.raw), int(r.headers["content-length"]))
        json.loads(get("/v1.0/users", t).raw)

    def test_expire_token_after_n(self):
        t = tok()
        ctl("POST", "faults", {"expire_token_after": 2, "match": "/v1.0/"})
        self.assertEqual(get("/v1.0/organization", t).status, 200)
        self.assertEqual(get("/v1.0/organization", t).status, 200)
        self.assertGraphError(get("/v1.0/organization", t), 401, "InvalidAuthenticationToken")
        self.assertGraphError(get("/v1.0/organization", t), 401, "InvalidAuthenticationToken")
        self.assertEqual(get("/v1.0/organization", tok()).status, 200)

    def test_delta_gone_fault(self):
        t = tok()
        link = follow("/v1.0/users/delta?$select=id", t)[-1]["@odata.deltaLink"]
        ctl("POST", "faults", {"delta_gone": True})
        self.assertEqual(get("/v1.0/users", t).status, 200)  # not a delta request: not consumed
        r = get(link, t)
        self.assertEqual(r.status, 410)
        self.assertIn("location", r.headers)
        self.assertEqual(get(link, t).status, 200)
        ctl("POST", "faults", {"delta_gone": True, "mode": "syncStateNotFound"})
        self.assertGraphError(get(link, t), 400, "syncStateNotFound")

    def test_empty_delta_page(self):
        t = tok()
        ctl("POST", "faults", {"empty_page": True})
        pages = follow("/v1.0/users/delta?$select=displayName", t)
        self.assertEqual(pages[0]["value"], [])
        self.assertIn("@odata.nextLink", pages[0])
        self.assertEqual(sum(len(p["value"]) for p in pages), len(self.users_of("contoso")))

    def test_latency(self):
        t = tok()
        ctl("POST", "faults", {"match": "organization", "latency_ms": 200})
        t0 = time.time()
        self.assertEqual(get("/v1.0/organization", t).status, 200)
        self.assertGreaterEqual(time.time() - t0, 0.2)
        t0 = time.time()
        get("/v1.0/organization", t)
        self.assertLess(time.time() - t0, 0.2)
        ctl("POST", "config", {"latency_ms": 100})
        t0 = time.time()
        for _ in range(3):
            get("/v1.0/organization", t)
        self.assertGreaterEqual(time.time() - t0, 0.3)

    def test_token_endpoint_fault(self):
        ctl("POST", "faults", {"match": "oauth2", "status": 503, "retry_after": "1"})
        r = token()
        self.assertAadsts(r, 503, "temporarily_unavailable", 90033)
        self.assertEqual(r.headers["retry-after"], "1")
        self.assertEqual(token().status, 200)
        ctl("POST", "faults", {"kind": "token", "status": 400, "error": "invalid_grant",
                               "aadsts": 53003, "message": "Access has been blocked by "
                               "Conditional Access policies.", "tenant": "fabrikam"})
        self.assertEqual(token().status, 200)  # other tenant
        self.assertAadsts(token("fabrikam.com"), 400, "invalid_grant", 53003)

    def test_ru_throttling(self):
        t = tok()
        ctl("POST", "config", {"ru_limit_per_10s": 5})
        statuses = [get("/v1.0/users", t).status for _ in range(4)]  # 2 RU each
        self.assertEqual(statuses[:2], [200, 200])
        self.assertIn(429, statuses)


# ---------------------------------------------------------------------------------------------
class ControlTests(Base):
    def test_clock_and_secure_score_history(self):
        t = tok()
        now0 = ctl("GET", "clock")["now"]
        ctl("POST", "clock", {"advance_days": 120})
        t = tok()
        first = get("/v1.0/security/secureScores?$top=1", t).json["value"][0]
        self.assertEqual(first["id"][-10:], time.strftime(
            "%Y-%m-%d", time.gmtime(time.time() + 120 * 86400)))
        self.assertNotEqual(ctl("GET", "clock")["now"][:10], now0[:10])
        ctl("POST", "clock", {"set": "2030-01-15T12:00:00Z"})
        t = tok()
        v = get("/v1.0/security/secureScores", t).json["value"]
        self.assertEqual(v[0]["id"][-10:], "2030-01-15")
        self.assertEqual(len(v), 90)
        ctl("PATCH", "tenants/contoso/secure-score", {"since": "2030-01-10"})
        self.assertEqual(len(get("/v1.0/security/secureScores", t).json["value"]), 6)

    def test_request_log_counts_per_tenant(self):
        ctl("DELETE", "requests")
        tc, tf = tok(), tok("fabrikam.com")
        for _ in range(3):
            get("/v1.0/organization", tc)
        get("/v1.0/organization", tf)
        log = ctl("GET", "requests")
        self.assertEqual(log["counts"][CONTOSO], 4)  # token + 3
        self.assertEqual(log["counts"][FABRIKAM], 2)
        r = ctl("GET", "requests?tenant=fabrikam&path=organization")
        self.assertEqual(r["total"], 1)
        row = r["requests"][0]
        for k in ("method", "path", "tenant", "time", "status"):
            self.assertIn(k, row)
        self.assertEqual(row["status"], 200)

    def test_reset_and_determinism(self):
        t = tok()
        u = self.users_of("contoso")[1]
        ctl("PATCH", "tenants/contoso/users/" + u["id"], {"displayName": "Changed"})
        ctl("POST", "reset")
        self.assertEqual(ctl("GET", "tenants/contoso/users/" + u["id"])["displayName"],
                         u["displayName"])
        self.assertGraphError(get("/v1.0/users", t), 401, "InvalidAuthenticationToken")
        a = json.dumps(graph_data.generate(7, "demo+2x15"), sort_keys=True)
        b = json.dumps(graph_data.generate(7, "demo+2x15"), sort_keys=True)
        c = json.dumps(graph_data.generate(8, "demo+2x15"), sort_keys=True)
        self.assertEqual(a, b)
        self.assertNotEqual(a, c)
        doc = graph_data.generate(7, "3x50")
        self.assertEqual(len(doc["tenants"]), 4)
        self.assertTrue(all(len(x["users"]) == 50 for x in doc["tenants"][1:]))
        self.assertEqual(len(doc["tenants"][0]["contracts"]), 3)

    def test_state_file_roundtrip(self):
        path = os.path.join(TMP, "state.json")
        f1 = fake_graph.FakeGraph(seed=3, spec="1x12", state_path=path)
        self.assertTrue(os.path.exists(path))
        t = f1.state.tenants[1]
        uid = t.order[0]
        t.update_user(t.users[uid], {"jobTitle": "Persisted"})
        f1.save(path)
        f2 = fake_graph.FakeGraph(seed=99, spec="demo", state_path=path)
        self.assertEqual(f2.state.tenants[1].users[uid]["jobTitle"], "Persisted")
        self.assertEqual(f2.state.tenants[1].seq(), 1)
        f1.close()
        f2.close()

    def test_add_tenant_and_mutations(self):
        s = ctl("POST", "tenants", {"key": "newco", "displayName": "NewCo", "domain": "newco.test",
                                    "users": 12})
        self.assertEqual(s["users"], 11)  # one soft-deleted former employee
        t = tok("newco.test")
        self.assertEqual(get("/v1.0/organization", t).json["value"][0]["displayName"], "NewCo")
        cs = get("/v1.0/contracts", tok(PARTNER)).json["value"]
        self.assertIn(s["id"], [c["customerId"] for c in cs])
        ctl("DELETE", "tenants/newco/grants/" + CID)
        self.assertEqual(token("newco.test").json["error_codes"], [700016])

    def test_cli_subprocess(self):
        pf = os.path.join(TMP, "port")
        p = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_graph.py"), "--port", "0",
                              "--port-file", pf, "--seed", "2", "--tenants", "1x5"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            for _ in range(100):
                if os.path.exists(pf):
                    break
                time.sleep(0.05)
            with open(pf) as f:
                port = int(f.read())
            r = call("GET", "/_fake/tenants", port=port)
            self.assertEqual(len(r.json["tenants"]), 2)
        finally:
            p.send_signal(signal.SIGTERM)
            out, _err = p.communicate(timeout=10)
        self.assertEqual(p.returncode, 0)
        self.assertEqual(out, b"")

    def test_tls(self):
        fake = fake_graph.FakeGraph(seed=1, spec="1x3")
        srv = fake_graph.start(fake, tls_cert=CERT, tls_key=KEY)
        try:
            ctx = ssl.create_default_context(cafile=CERT)
            ctx.check_hostname = False
            c = http.client.HTTPSConnection("127.0.0.1", srv.server_address[1], context=ctx,
                                            timeout=10)
            c.request("GET", "/_fake/health")
            r = c.getresponse()
            self.assertEqual(json.loads(r.read())["ok"], True)
            c.request("GET", "/v1.0/users")
            r = c.getresponse()
            self.assertEqual(r.status, 401)
            r.read()
            c.close()
        finally:
            srv.shutdown()
            srv.server_close()
            fake.close()


if __name__ == "__main__":
    unittest.main()
