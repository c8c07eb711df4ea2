#!/usr/bin/env python3
"""test_fake_syncro: self-test of the fake Syncro server (tests/fakes/fake_syncro.py).

Starts the real CLI on a free loopback port and talks HTTP to it: auth, paging
meta, flat vs wrapped objects, CRUD, title -> properties.title, 422/404/400-HTML
bodies, the sliding-window rate limit, every fault kind including
fail-after-apply, tickets/comments, the invoice line-item quirk, schedules,
products, control API and 100k-contact performance.

Run: python3 tests/fakes/test_fake_syncro.py [--ok-lines] [unittest args]
--ok-lines prints one "ok - NAME" / "FAIL - NAME" line per case (tests/run.sh counts them).
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_syncro.py")
KEY = "test-key-123"
PORT = None
PROC = None
TMP = None


def start_server(*extra):
    """Starts fake_syncro.py with a port file; returns (Popen, port)."""
    port_file = os.path.join(TMP, "port.%d" % time.monotonic_ns())
    err_file = port_file + ".err"
    with open(err_file, "w") as err:
        proc = subprocess.Popen([sys.executable, SERVER, "--port", "0", "--port-file", port_file] + list(extra),
                                stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            with open(port_file) as fh:
                return proc, int(fh.read().strip())
        if proc.poll() is not None:
            with open(err_file) as fh:
                raise RuntimeError("server exited: %s" % fh.read())
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("server did not write its port file")


def setUpModule():
    global PROC, PORT, TMP
    TMP = tempfile.mkdtemp(prefix="fake-syncro-test.")
    PROC, PORT = start_server("--api-key", KEY, "--data", "demo")


def tearDownModule():
    PROC.send_signal(signal.SIGTERM)
    try:
        PROC.wait(timeout=5)
    except subprocess.TimeoutExpired:
        PROC.kill()
    shutil.rmtree(TMP, ignore_errors=True)


def request(method, path, body=None, key=KEY, auth="bearer", ctype="application/json", raw=None,
            port=None, conn=None):
    """One HTTP request; returns (status, headers dict, body bytes). Raises on dropped connections."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port or PORT, timeout=10)
    headers = {}
    if key and auth == "bearer":
        headers["Authorization"] = "Bearer " + key
    elif key and auth == "bare":
        headers["Authorization"] = key
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if data is not None and ctype:
        headers["Content-Type"] = ctype
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
    finally:
        if own:
            conn.close()


def api(method, path, body=None, **kw):
    """API call under /api/v1; returns (status, parsed JSON or raw text)."""
    status, headers, payload = request(method, "/api/v1" + path, body, **kw)
    if headers.get("content-type", "").startswith("application/json"):
        return status, json.loads(payload)
    return status, payload.decode()


def n_contacts():
    return ctl("GET", "stats")["counts"]["contacts"]


def ctl(method, what, body=None):
    status, _, payload = request(method, "/_fake/" + what, body, key=None)
    assert status == 200, (status, payload)
    return json.loads(payload)


class FakeSyncroCase(unittest.TestCase):
    def setUp(self):
        ctl("POST", "reset", {"data": "demo"})


class TestAuth(FakeSyncroCase):
    def test_auth_forms_and_401_body(self):
        self.assertEqual(api("GET", "/me")[0], 200)
        self.assertEqual(api("GET", "/me", auth="bare")[0], 200)
        self.assertEqual(api("GET", "/me?api_key=" + KEY, key=None)[0], 200)
        for kw in ({"key": None}, {"key": "wrong"}, {"key": "wrong", "auth": "bare"}):
            status, body = api("GET", "/contacts", **kw)
            self.assertEqual(status, 401)
            self.assertEqual(body, {"error": "Not authorized. Please ask account admin to update your group permissions."})
        status, body = api("GET", "/contacts?api_key=nope", key=None)
        self.assertEqual(status, 401)

    def test_denied_permission_is_401(self):
        ctl("POST", "config", {"deny": ["contacts.create"]})
        status, body = api("POST", "/contacts", {"customer_id": 101, "name": "X"})
        self.assertEqual(status, 401)
        self.assertIn("Not authorized", body["error"])
        self.assertEqual(api("GET", "/contacts")[0], 200)


class TestContacts(FakeSyncroCase):
    def test_paging_meta_50_and_past_end(self):
        ctl("POST", "customers", [{"id": 900, "business_name": "Paging Co"}])
        ctl("POST", "contacts", [{"customer_id": 900, "name": "P%d" % i, "email": "p%d@paging.example" % i}
                                 for i in range(120)])
        status, body = api("GET", "/contacts?customer_id=900")
        self.assertEqual(status, 200)
        self.assertEqual(len(body["contacts"]), 50)
        self.assertEqual(body["meta"], {"total_pages": 3, "total_entries": 120, "per_page": 50, "page": 1})
        _, p3 = api("GET", "/contacts?customer_id=900&page=3")
        self.assertEqual(len(p3["contacts"]), 20)
        self.assertEqual(p3["contacts"][-1]["name"], "P119")
        _, p4 = api("GET", "/contacts?customer_id=900&page=4")
        self.assertEqual(p4["contacts"], [])
        self.assertEqual(p4["meta"]["page"], 4)
        # per_page is not documented for contacts: ignored
        _, pp = api("GET", "/contacts?customer_id=900&per_page=5")
        self.assertEqual(len(pp["contacts"]), 50)
        ids = [c["id"] for page in (1, 2, 3) for c in api("GET", "/contacts?customer_id=900&page=%d" % page)[1]["contacts"]]
        self.assertEqual(len(set(ids)), 120)
        self.assertEqual(ids, sorted(ids))

    def test_get_is_flat_with_spec_fields(self):
        status, c = api("GET", "/contacts/1001")
        self.assertEqual(status, 200)
        self.assertNotIn("contact", c)
        self.assertEqual(list(c), ["id", "name", "address1", "address2", "city", "state", "zip", "email", "phone",
                                   "mobile", "latitude", "longitude", "customer_id", "account_id", "notes",
                                   "created_at", "updated_at", "vendor_id", "properties", "opt_out", "extension"])
        self.assertEqual(c["email"], "adele.vance@contoso.com")

    def test_crud_and_hard_delete(self):
        status, c = api("POST", "/contacts", {"customer_id": 102, "name": "New Person", "email": "new.person@fabrikam.com",
                                              "phone": "555-0001", "address1": "1 Road", "zip": "12345", "notes": "n"})
        self.assertEqual(status, 200)
        cid = c["id"]
        self.assertEqual((c["customer_id"], c["name"], c["address1"], c["zip"]), (102, "New Person", "1 Road", "12345"))
        self.assertEqual(api("GET", "/contacts/%d" % cid)[1], c)
        status, u = api("PUT", "/contacts/%d" % cid, {"name": "Renamed", "mobile": "555-0002"})
        self.assertEqual(status, 200)
        self.assertEqual((u["name"], u["mobile"], u["phone"], u["email"]), ("Renamed", "555-0002", "555-0001",
                                                                           "new.person@fabrikam.com"))
        status, d = api("DELETE", "/contacts/%d" % cid)
        self.assertEqual((status, d), (200, {"success": True}))
        self.assertEqual(api("GET", "/contacts/%d" % cid), (404, {"message": "Not found"}))
        self.assertEqual(api("DELETE", "/contacts/%d" % cid), (404, {"message": "Not found"}))

    def test_title_goes_to_properties_title(self):
        status, c = api("POST", "/contacts", {"customer_id": 101, "name": "T", "title": "CFO"})
        self.assertEqual(status, 200)
        self.assertEqual(c["properties"], {"title": "CFO"})
        self.assertNotIn("title", c)
        status, u = api("PUT", "/contacts/%d" % c["id"], {"name": "T", "title": "CEO"})
        self.assertEqual(status, 200)
        self.assertEqual(u["properties"]["title"], "CEO")
        self.assertNotIn("title", u)
        self.assertEqual(api("GET", "/contacts/%d" % c["id"])[1]["properties"]["title"], "CEO")

    def test_422_bodies(self):
        status, body = api("POST", "/contacts", {"customer_id": 101, "name": "Bad Email", "email": "xxx"})
        self.assertEqual(status, 422)
        self.assertEqual(body["errors"], "Email is not an email")
        self.assertIsNone(body["record"]["id"])
        self.assertEqual(body["record"]["email"], "xxx")
        self.assertIn("processed_phone", body["record"])
        status, body = api("PUT", "/contacts/1001", {"name": "Adele", "email": "not an email"})
        self.assertEqual((status, body["errors"]), (422, "Email is not an email"))
        self.assertEqual(body["record"]["id"], 1001)
        status, body = api("PUT", "/contacts/1001", {"name": "Adele", "customer_id": None})
        self.assertEqual((status, body["errors"]), (422, "Customer can't be blank"))
        self.assertEqual(api("GET", "/contacts/1001")[1]["email"], "adele.vance@contoso.com")

    def test_404_bodies(self):
        self.assertEqual(api("POST", "/contacts", {"customer_id": 999999, "name": "X"}), (404, {"message": "Not found"}))
        self.assertEqual(api("POST", "/contacts", {"name": "no customer"}), (404, {"message": "Not found"}))
        self.assertEqual(api("GET", "/contacts/424242"), (404, {"message": "Not found"}))
        self.assertEqual(api("PUT", "/contacts/424242", {"name": "x"}), (404, {"message": "Not found"}))

    def test_400_html_without_json_content_type(self):
        before = n_contacts()
        for ctype in ("application/x-www-form-urlencoded", "text/plain", None):
            status, headers, payload = request("POST", "/api/v1/contacts",
                                               raw=b'{"customer_id":101,"name":"X"}', ctype=ctype)
            self.assertEqual(status, 400, ctype)
            self.assertTrue(headers["content-type"].startswith("text/html"))
            self.assertIn(b"<html", payload)
        status, headers, _ = request("PUT", "/api/v1/contacts/1001", raw=b'{"name": ', ctype="application/json")
        self.assertEqual(status, 400)
        self.assertEqual(n_contacts(), before)
        # JSON with charset parameter is fine
        status, _, _ = request("POST", "/api/v1/contacts", raw=b'{"customer_id":101,"name":"X"}',
                               ctype="application/json; charset=utf-8")
        self.assertEqual(status, 200)

    def test_duplicate_emails_allowed(self):
        for _ in range(2):
            self.assertEqual(api("POST", "/contacts", {"customer_id": 103, "name": "Dup", "email": "dup@northwindtraders.com"})[0], 200)
        found = ctl("GET", "contacts?email=DUP@northwindtraders.com")["contacts"]
        self.assertEqual(len(found), 2)

    def test_unknown_route_is_404_html(self):
        status, headers, payload = request("GET", "/api/v1/nothing_here")
        self.assertEqual(status, 404)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        self.assertIn(b"<html", payload)
        status, _, _ = request("DELETE", "/api/v1/products/501")   # products have no DELETE
        self.assertEqual(status, 404)


class TestCustomers(FakeSyncroCase):
    def test_list_wrapped_with_meta_and_contacts(self):
        status, body = api("GET", "/customers")
        self.assertEqual(status, 200)
        self.assertEqual([c["business_name"] for c in body["customers"]], ["Contoso Ltd", "Fabrikam Inc", "Northwind Traders"])
        self.assertEqual(body["meta"], {"total_pages": 1, "total_entries": 3, "per_page": 100, "page": 1})
        contoso = body["customers"][0]
        self.assertEqual(contoso["id"], 101)
        self.assertIn("adele.vance@contoso.com", [c["email"] for c in contoso["contacts"]])

    def test_paging_100(self):
        ctl("POST", "generate", {"customers": 150, "contacts_per_customer": 0})
        _, p1 = api("GET", "/customers")
        self.assertEqual((len(p1["customers"]), p1["meta"]["total_pages"], p1["meta"]["total_entries"]), (100, 2, 153))
        _, p2 = api("GET", "/customers?page=2")
        self.assertEqual(len(p2["customers"]), 53)

    def test_search(self):
        _, b = api("GET", "/customers?business_name=contoso")
        self.assertEqual([c["id"] for c in b["customers"]], [101])
        _, b = api("GET", "/customers?query=north")
        self.assertEqual([c["id"] for c in b["customers"]], [103])
        _, b = api("GET", "/customers?id[]=101&id[]=103")
        self.assertEqual([c["id"] for c in b["customers"]], [101, 103])
        _, b = api("GET", "/customers?not_id[]=101")
        self.assertEqual([c["id"] for c in b["customers"]], [102, 103])
        _, b = api("GET", "/customers?sort=business_name%20DESC")
        self.assertEqual([c["id"] for c in b["customers"]], [103, 102, 101])
        ctl("POST", "customers", [{"id": 150, "business_name": "Old Contoso Branch", "disabled": True}])
        _, b = api("GET", "/customers?business_name=contoso")
        self.assertEqual([c["id"] for c in b["customers"]], [101])
        _, b = api("GET", "/customers?business_name=contoso&include_disabled=true")
        self.assertEqual([c["id"] for c in b["customers"]], [101, 150])
        _, b = api("GET", "/customers/autocomplete?query=fab")
        self.assertEqual([c["id"] for c in b["customers"]], [102])
        self.assertNotIn("meta", b)

    def test_crud_wrapped_and_errors(self):
        status, body = api("POST", "/customers", {"business_name": "Litware", "email": "it is not an email"})
        self.assertEqual(status, 422)
        self.assertEqual(body["success"], False)
        self.assertEqual(body["message"], ["Email is not an email"])
        self.assertEqual(body["params"]["business_name"], "Litware")
        status, body = api("POST", "/customers", {"business_name": "Litware", "firstname": "Ann", "lastname": "Lee",
                                                  "address": "1 St", "address_2": "Suite 2"})
        self.assertEqual(status, 200)
        c = body["customer"]
        self.assertEqual((c["address"], c["address_2"], c["fullname"], c["business_then_name"]),
                         ("1 St", "Suite 2", "Ann Lee", "Litware"))
        status, got = api("GET", "/customers/%d" % c["id"])
        self.assertEqual(got["customer"]["business_name"], "Litware")
        self.assertEqual(got["customer"]["contacts"], [])
        status, body = api("PUT", "/customers/%d" % c["id"], {"email": "bad"})
        self.assertEqual((status, body), (422, {"success": False, "message": ["Email is not an email"]}))
        status, body = api("PUT", "/customers/%d" % c["id"], {"notes": "vip"})
        self.assertEqual(body["customer"]["notes"], "vip")
        self.assertEqual(api("GET", "/customers/latest")[1]["customer"]["id"], c["id"])
        status, body = api("DELETE", "/customers/%d" % c["id"])
        self.assertEqual((status, body), (200, {"message": "Customer was deleted from the system."}))
        self.assertEqual(api("GET", "/customers/%d" % c["id"])[0], 404)


class TestRateLimit(FakeSyncroCase):
    def tearDown(self):
        ctl("POST", "config", {"rate_limit": 180, "window": 60})

    def test_sliding_window(self):
        ctl("POST", "config", {"rate_limit": 5, "window": 1.0})
        ctl("DELETE", "requests")
        t0 = time.monotonic()
        for _ in range(3):
            self.assertEqual(api("GET", "/me")[0], 200)
        time.sleep(max(0, 0.6 - (time.monotonic() - t0)))
        for _ in range(2):
            self.assertEqual(api("GET", "/me")[0], 200)
        status, headers, payload = request("GET", "/api/v1/me")
        self.assertEqual(status, 429)
        self.assertNotIn("retry-after", headers)
        self.assertEqual(payload, b"Retry later\n")
        # control API is neither limited nor counted
        self.assertEqual(ctl("GET", "stats")["requests"]["rate_limited"], 1)
        # after the first 3 leave the window, exactly 3 more fit (a fixed window would allow 5)
        time.sleep(max(0, 1.1 - (time.monotonic() - t0)))
        results = [api("GET", "/me")[0] for _ in range(4)]
        self.assertEqual(results, [200, 200, 200, 429])
        summary = ctl("GET", "requests")["summary"]
        self.assertEqual((summary["rate_limited"], summary["status_429"]), (2, 2))


class TestFaults(FakeSyncroCase):
    def test_status_faults_times_and_bodies(self):
        before = n_contacts()
        ctl("POST", "faults", [{"match": r"/contacts$", "method": "GET", "status": 500, "times": 2}])
        status, headers, payload = request("GET", "/api/v1/contacts")
        self.assertEqual(status, 500)
        self.assertIn(b"something went wrong", payload)
        self.assertEqual(request("GET", "/api/v1/contacts")[0], 500)
        self.assertEqual(request("GET", "/api/v1/contacts")[0], 200)
        self.assertEqual(request("GET", "/api/v1/contacts/1001")[0], 200)   # match is a path regex
        ctl("POST", "faults", {"match": "/customers", "status": 503})
        self.assertEqual(request("GET", "/api/v1/customers")[0], 503)
        ctl("POST", "faults", {"match": "/customers", "status": 429, "retry_after": 7})
        status, headers, payload = request("GET", "/api/v1/customers")
        self.assertEqual((status, headers.get("retry-after"), payload), (429, "7", b"Retry later\n"))
        ctl("POST", "faults", {"match": "/contacts", "method": "POST", "status": 422})
        status, body = api("POST", "/contacts", {"customer_id": 101, "name": "Z"})
        self.assertEqual((status, body), (422, {"success": False, "message": ["Injected failure"]}))
        self.assertEqual(n_contacts(), before)   # not applied
        summary = ctl("GET", "stats")["requests"]
        self.assertEqual((summary["status_429"], summary["rate_limited"], summary["faults_fired"]), (1, 0, 5))

    def test_skip_and_forever(self):
        ctl("POST", "faults", {"match": "/me", "status": 500, "skip": 1, "times": -1})
        self.assertEqual([api("GET", "/me")[0] for _ in range(4)], [200, 500, 500, 500])
        ctl("DELETE", "faults")
        self.assertEqual(api("GET", "/me")[0], 200)

    def test_drop_mid_body_not_applied(self):
        before = n_contacts()
        ctl("POST", "faults", {"match": "/contacts", "method": "POST", "drop": True})
        with self.assertRaises(http.client.IncompleteRead):
            request("POST", "/api/v1/contacts", {"customer_id": 101, "name": "Dropped"})
        self.assertEqual(n_contacts(), before)
        ctl("POST", "faults", {"match": "/contacts", "drop": True})
        with self.assertRaises(http.client.IncompleteRead):
            request("GET", "/api/v1/contacts")
        self.assertEqual(request("GET", "/api/v1/contacts")[0], 200)
        self.assertEqual(ctl("GET", "stats")["requests"]["dropped"], 2)

    def test_drop_no_response(self):
        ctl("POST", "faults", {"match": "/customers", "drop": "no_response"})
        with self.assertRaises(http.client.RemoteDisconnected):
            request("GET", "/api/v1/customers")

    def test_malformed_json(self):
        ctl("POST", "faults", {"match": "/contacts/1001", "malformed": True})
        status, headers, payload = request("GET", "/api/v1/contacts/1001")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("application/json"))
        with self.assertRaises(ValueError):
            json.loads(payload)

    def test_latency(self):
        ctl("POST", "faults", {"match": "/me", "latency_ms": 300})
        t = time.monotonic()
        self.assertEqual(api("GET", "/me")[0], 200)
        self.assertGreaterEqual(time.monotonic() - t, 0.29)
        t = time.monotonic()
        api("GET", "/me")
        self.assertLess(time.monotonic() - t, 0.25)
        ctl("POST", "config", {"latency_ms": 200})
        t = time.monotonic()
        api("GET", "/me")
        self.assertGreaterEqual(time.monotonic() - t, 0.19)
        ctl("POST", "config", {"latency_ms": 0})

    def test_fail_after_apply(self):
        ctl("DELETE", "requests")
        ctl("POST", "faults", {"match": r"/contacts$", "method": "POST", "after_apply": True})
        with self.assertRaises(http.client.RemoteDisconnected):
            request("POST", "/api/v1/contacts", {"customer_id": 103, "name": "Ghost", "email": "ghost@northwindtraders.com"})
        found = ctl("GET", "contacts?email=ghost@northwindtraders.com")["contacts"]
        self.assertEqual(len(found), 1)   # the write happened although the client saw nothing
        log = ctl("GET", "requests")
        self.assertEqual(log["summary"]["writes"], {"contacts.create": 1})
        self.assertEqual(log["requests"][-1]["fault"], "after_apply+drop:no_response")
        self.assertIsNone(log["requests"][-1]["status"])
        # after_apply with a status: applied, then answered 500
        ctl("POST", "faults", {"match": r"/contacts/\d+$", "method": "PUT", "after_apply": True, "status": 500})
        self.assertEqual(request("PUT", "/api/v1/contacts/1001", {"name": "Adele V."})[0], 500)
        self.assertEqual(api("GET", "/contacts/1001")[1]["name"], "Adele V.")
        # after_apply with a mid-body drop
        ctl("POST", "faults", {"match": r"/contacts/\d+$", "method": "DELETE", "after_apply": True, "drop": True})
        with self.assertRaises(http.client.IncompleteRead):
            request("DELETE", "/api/v1/contacts/1002")
        self.assertEqual(api("GET", "/contacts/1002")[0], 404)


class TestControl(FakeSyncroCase):
    def test_request_log_and_counts(self):
        ctl("DELETE", "requests")
        api("GET", "/contacts?customer_id=101&api_key=" + KEY, key=None)
        api("POST", "/contacts", {"customer_id": 101, "name": "Log Me"})
        api("POST", "/contacts", {"customer_id": 101, "name": "Bad", "email": "bad"})
        api("PUT", "/contacts/1001", {"name": "Adele"})
        log = ctl("GET", "requests")
        rows = log["requests"]
        self.assertEqual([(r["method"], r["path"], r["status"]) for r in rows],
                         [("GET", "/api/v1/contacts", 200), ("POST", "/api/v1/contacts", 200),
                          ("POST", "/api/v1/contacts", 422), ("PUT", "/api/v1/contacts/1001", 200)])
        self.assertNotIn(KEY, rows[0]["query"])
        self.assertEqual(rows[0]["client"], "127.0.0.1")
        self.assertIsInstance(rows[0]["time"], float)
        self.assertEqual(rows[1]["body"]["name"], "Log Me")
        self.assertEqual(log["summary"]["writes"], {"contacts.create": 1, "contacts.update": 1})
        self.assertEqual(log["summary"]["write_attempts"], {"contacts.create": 2, "contacts.update": 1})
        since = ctl("GET", "requests?since=%d&method=put" % rows[1]["seq"])["requests"]
        self.assertEqual([r["method"] for r in since], ["PUT"])

    def test_seed_reset_and_state(self):
        made = ctl("POST", "customers", [{"business_name": "Seeded A"}, {"id": 777, "business_name": "Seeded B"}])
        self.assertEqual([c["id"] for c in made["created"]], [104, 777])
        made = ctl("POST", "contacts", {"customer_id": 777, "name": "S", "title": "Boss", "email": "x"})
        self.assertEqual(made["created"][0]["properties"], {"title": "Boss"})   # seeding skips validation
        self.assertEqual(api("POST", "/customers", {"business_name": "Next"})[1]["customer"]["id"], 778)
        state = ctl("GET", "state")
        self.assertEqual(len(state["customers"]), 6)
        self.assertIn("contacts", state)
        self.assertEqual(list(ctl("GET", "state?kind=products")), ["products"])
        ctl("POST", "reset", {"data": "none"})
        self.assertEqual(ctl("GET", "stats")["counts"]["customers"], 0)
        ctl("POST", "reset", {"data": "demo"})
        self.assertEqual(ctl("GET", "stats")["counts"]["customers"], 3)

    def test_bad_fault_rejected(self):
        status, _, payload = request("POST", "/_fake/faults", {"match": "(", "status": 500}, key=None)
        self.assertEqual(status, 400)
        self.assertIn("regex", json.loads(payload)["error"])
        status, _, payload = request("POST", "/_fake/faults", {"match": "x", "bogus": 1}, key=None)
        self.assertEqual(status, 400)
        self.assertIn("bogus", json.loads(payload)["error"])
        self.assertEqual(ctl("GET", "faults")["faults"], [])

    def test_demo_data(self):
        _, b = api("GET", "/customers")
        self.assertEqual({c["id"]: c["business_name"] for c in b["customers"]},
                         {101: "Contoso Ltd", 102: "Fabrikam Inc", 103: "Northwind Traders"})
        emails = [c["email"] for c in api("GET", "/contacts?customer_id=101")[1]["contacts"]]
        self.assertIn("megan.bowen@contoso.com", emails)
        self.assertEqual(emails.count("lee.gu@contoso.com"), 2)
        self.assertTrue(any(e and e.endswith("@fabrikam.com") for c in b["customers"][1:2]
                            for e in [x["email"] for x in c["contacts"]]))

    def test_keep_alive_throughput(self):
        # 300 requests on one connection: a Nagle/delayed-ACK stall (40 ms each) would take 12 s.
        ctl("POST", "config", {"rate_limit": 0})   # setUp's reset restores the CLI's 180/60
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5)
        t = time.monotonic()
        try:
            for i in range(300):
                status, _, _ = request("GET", "/api/v1/contacts/1001", conn=conn) if i % 2 else \
                    request("PUT", "/api/v1/contacts/1001", {"notes": str(i)}, conn=conn)
                self.assertEqual(status, 200)
        finally:
            conn.close()
        self.assertLess(time.monotonic() - t, 2.0)


class TestConcurrency(FakeSyncroCase):
    def test_parallel_creates_get_unique_ids(self):
        ctl("POST", "config", {"rate_limit": 0})
        before = n_contacts()
        ids, errors = [], []

        def worker(w):
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
            try:
                for i in range(40):
                    status, _, payload = request("POST", "/api/v1/contacts",
                                                 {"customer_id": 102, "name": "W%d-%d" % (w, i)}, conn=conn)
                    if status != 200:
                        errors.append(status)
                    else:
                        ids.append(json.loads(payload)["id"])
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        self.assertEqual(errors, [])
        self.assertEqual(len(ids), 320)
        self.assertEqual(len(set(ids)), 320)
        self.assertEqual(n_contacts(), before + 320)
        self.assertEqual(ctl("GET", "stats")["requests"]["writes"]["contacts.create"], 320)


class TestTickets(FakeSyncroCase):
    def test_list_filters_and_meta(self):
        for i, (status, ptype, cust) in enumerate([("New", "Email", 101), ("Resolved", "Onboarding", 101),
                                                   ("In Progress", "Onboarding", 103)]):
            s, t = api("POST", "/tickets", {"customer_id": cust, "subject": "T%d" % i, "status": status,
                                            "problem_type": ptype})
            self.assertEqual(s, 200)
        _, b = api("GET", "/tickets?status=Resolved")
        self.assertEqual([t["subject"] for t in b["tickets"]], ["T1"])
        self.assertEqual(b["meta"], {"total_pages": 1, "page": 1})
        _, b = api("GET", "/tickets?customer_id=101")
        self.assertEqual([t["subject"] for t in b["tickets"]], ["Outlook keeps asking for password", "T0", "T1"])
        _, b = api("GET", "/tickets?customer_id=101&status=Not%20Closed")
        self.assertEqual(len(b["tickets"]), 2)
        _, b = api("GET", "/tickets?query=onboarding")
        self.assertEqual(sorted(t["subject"] for t in b["tickets"]), ["New hire onboarding", "T1", "T2"])
        self.assertEqual(api("POST", "/tickets", {"subject": "orphan"}), (422, {"error": "Customer required field"}))

    def test_get_update_status_and_delete(self):
        s, b = api("GET", "/tickets/5001")
        self.assertEqual((s, b["ticket"]["status"], b["ticket"]["customer"]["id"]), (200, "New", 101))
        s, b = api("PUT", "/tickets/5001", {"status": "Resolved"})
        self.assertEqual(b["ticket"]["status"], "Resolved")
        self.assertIsNotNone(b["ticket"]["resolved_at"])
        self.assertEqual(api("GET", "/tickets/999")[0], 404)
        self.assertEqual(api("DELETE", "/tickets/5002"), (200, {"message": "Ticket was successfully deleted. "}))
        self.assertEqual(api("GET", "/tickets/5002")[0], 404)
        s, st = api("GET", "/tickets/settings")
        self.assertIn("Resolved", st["ticket_status_list"])

    def test_comments(self):
        s, b = api("POST", "/tickets/5001/comment", {"body": "no subject"})
        self.assertEqual((s, b), (422, {"success": False, "message": ["Subject can't be blank"]}))
        for i in range(12):
            s, b = api("POST", "/tickets/5001/comment", {"subject": "S%d" % i, "body": "B%d" % i, "hidden": True,
                                                          "do_not_email": True})
            self.assertEqual(s, 200)
        self.assertEqual(b["comment"]["ticket_id"], 5001)
        self.assertNotIn("do_not_email", b["comment"])
        s, b = api("GET", "/tickets/5001/comments")
        self.assertEqual(len(b["comments"]), 10)
        self.assertEqual(b["meta"], {"total_pages": 2, "page": 1, "per_page": 10})
        self.assertEqual(b["comments"][0]["subject"], "S11")   # newest first
        s, b = api("GET", "/tickets/5001/comments?per_page=50&sort_direction=ASC")
        self.assertEqual(len(b["comments"]), 13)
        self.assertEqual(b["comments"][0]["subject"], "Initial Issue")
        # list shows only the initial comment unless all_comments=true
        _, lst = api("GET", "/tickets?customer_id=101")
        self.assertEqual(len(lst["tickets"][0]["comments"]), 1)
        _, lst = api("GET", "/tickets?customer_id=101&all_comments=true")
        self.assertEqual(len(lst["tickets"][0]["comments"]), 13)


class TestBilling(FakeSyncroCase):
    def test_invoice_line_items_quirk(self):
        s, b = api("POST", "/invoices", {"customer_id": 101, "number": "9001", "date": "2026-11-20",
                                         "line_items": [{"item": "Ignored", "price": 99, "quantity": 1}]})
        self.assertEqual(s, 200)
        inv = b["invoice"]
        self.assertEqual((inv["subtotal"], inv["total"], inv["date"]), ("0.0", "0.0", "2026-11-20T00:00:00.000Z"))
        s, got = api("GET", "/invoices/%d" % inv["id"])
        self.assertEqual(got["invoice"]["line_items"], [])
        s, li = api("POST", "/invoices/%d/line_items" % inv["id"], {"product_id": 503, "quantity": 2})
        self.assertEqual(s, 200)
        self.assertEqual((li["item"], li["price"], li["cost"], li["quantity"], li["taxable"]),
                         ("Microsoft 365 Business Premium", "22.0", "19.8", "2.0", True))
        s, li2 = api("POST", "/invoices/%d/line_items" % inv["id"], {"item": "Labour", "name": "On-site", "price": 80,
                                                                     "quantity": 1.5})
        self.assertEqual(s, 200)
        _, got = api("GET", "/invoices/%d" % inv["id"])
        self.assertEqual([x["item"] for x in got["invoice"]["line_items"]], ["Microsoft 365 Business Premium", "Labour"])
        self.assertEqual(got["invoice"]["subtotal"], "164.0")
        s, upd = api("PUT", "/invoices/%d/line_items/%d" % (inv["id"], li2["id"]), {"price": 100})
        self.assertEqual(upd["price"], "100.0")
        s, after = api("DELETE", "/invoices/%d/line_items/%d" % (inv["id"], li["id"]))
        self.assertEqual(s, 200)
        self.assertEqual(after["invoice"]["subtotal"], "150.0")
        self.assertEqual(api("POST", "/invoices/%d/line_items" % inv["id"], {"product_id": 424242})[0], 404)
        self.assertEqual(api("GET", "/invoices/9001")[1]["invoice"]["id"], inv["id"])   # by number
        _, lst = api("GET", "/invoices")
        self.assertEqual(lst["meta"], {"total_pages": 1, "page": 1})
        self.assertEqual(api("POST", "/invoices", {"customer_id": 4242})[0], 404)

    def test_schedules_and_line_items(self):
        s, b = api("POST", "/schedules", {"customer_id": 102})
        self.assertEqual(s, 422)
        self.assertIn("Name can't be blank", b["error"])
        self.assertIn("Next run can't be blank", b["error"])
        s, b = api("POST", "/schedules", {"customer_id": 102, "name": "Fabrikam M365", "frequency": "Monthly",
                                          "next_run": "2026-12-01", "paused": True,
                                          "line_items": [{"name": "ignored"}]})
        self.assertEqual(s, 200)
        sch = b["schedule"]
        self.assertEqual((sch["lines"], sch["paused"], sch["next_run"]), ([], True, "2026-12-01T00:00:00.000Z"))
        s, li = api("POST", "/schedules/%d/add_line_item" % sch["id"], {"product_id": 501, "quantity": 10})
        self.assertEqual(s, 200)
        li = li["schedule_line_item"]
        self.assertEqual((li["name"], li["retail_cents"], li["price_retail"], li["quantity"]),
                         ("Microsoft 365 Business Basic", 600, 6.0, "10.0"))
        s, li2 = api("POST", "/schedules/%d/add_line_item" % sch["id"], {"name": "Backup", "retail_cents": 1500,
                                                                        "quantity": 1})
        li2 = li2["schedule_line_item"]
        self.assertEqual(api("POST", "/schedules/%d/add_line_item" % sch["id"], {"quantity": 1}),
                         (422, {"error": ["Name can't be blank"]}))
        s, upd = api("PUT", "/schedules/%d/line_items/%d" % (sch["id"], li["id"]), {"quantity": 12})
        self.assertEqual((s, upd["schedule_line_item"]["quantity"]), (200, "12.0"))
        _, got = api("GET", "/schedules/%d" % sch["id"])
        self.assertEqual(len(got["schedule"]["lines"]), 2)
        self.assertEqual(got["schedule"]["subtotal"], 87)
        s, _ = api("POST", "/schedules/%d/remove_line_item" % sch["id"], {"line_item_id": li2["id"]})
        self.assertEqual(s, 200)
        self.assertEqual([x["id"] for x in api("GET", "/schedules/%d" % sch["id"])[1]["schedule"]["lines"]], [li["id"]])
        # the spec has no DELETE on schedule line items
        self.assertEqual(request("DELETE", "/api/v1/schedules/%d/line_items/%d" % (sch["id"], li["id"]))[0], 404)
        _, lst = api("GET", "/schedules?customer_id=102")
        self.assertEqual([x["id"] for x in lst["schedules"]], [sch["id"]])
        self.assertEqual(api("DELETE", "/schedules/%d" % sch["id"])[0], 200)
        self.assertEqual(api("GET", "/schedules/%d" % sch["id"])[0], 404)

    def test_products(self):
        s, b = api("POST", "/products", {"name": "Only name"})
        self.assertEqual((s, b["message"]), (422, ["Description can't be blank"]))
        s, b = api("POST", "/products", {"name": "Widget", "description": "A widget", "price_retail": 9.5})
        self.assertEqual((s, b["product"]["price_retail"]), (200, 9.5))
        _, lst = api("GET", "/products?name=widget")
        self.assertEqual([p["name"] for p in lst["products"]], ["Widget"])
        self.assertEqual(api("GET", "/products/501")[1]["product"]["name"], "Microsoft 365 Business Basic")


class TestScale(FakeSyncroCase):
    def test_100k_contacts(self):
        base = n_contacts()
        t = time.monotonic()
        ctl("POST", "generate", {"customers": 10, "contacts_per_customer": 10000, "seed": 7})
        gen = time.monotonic() - t
        self.assertEqual(n_contacts(), base + 100000)
        t = time.monotonic()
        _, last = api("GET", "/contacts?customer_id=104&page=200")
        _, all_last = api("GET", "/contacts?page=2001")
        for i in range(20):
            api("PUT", "/contacts/%d" % (2000 + i), {"name": "Changed %d" % i})
        api("DELETE", "/contacts/2500")
        _, after = api("GET", "/contacts?page=1000")
        elapsed = time.monotonic() - t
        self.assertEqual(len(last["contacts"]), 50)
        self.assertEqual(last["meta"]["total_entries"], 10000)
        self.assertEqual(len(all_last["contacts"]), base)
        self.assertEqual(after["meta"]["total_entries"], base + 100000 - 1)
        self.assertLess(gen, 8.0)
        self.assertLess(elapsed, 2.0)


class TestCli(unittest.TestCase):
    def test_data_none_generate_and_sigterm(self):
        proc, port = start_server("--data", "none", "--generate", "2,3", "--seed", "5", "--rate-limit", "0")
        try:
            status, _, payload = request("GET", "/_fake/stats", key=None, port=port)
            self.assertEqual(status, 200)
            counts = json.loads(payload)["counts"]
            self.assertEqual((counts["customers"], counts["contacts"]), (2, 6))
            # without --api-key any non-empty token works, none does not
            self.assertEqual(request("GET", "/api/v1/contacts", key="anything", port=port)[0], 200)
            self.assertEqual(request("GET", "/api/v1/contacts", key=None, port=port)[0], 401)
            _, _, p1 = request("GET", "/api/v1/contacts", key="k", port=port)
        finally:
            proc.send_signal(signal.SIGTERM)
            # 20 s, not 5: once under `make check` (ASan builds and Python fakes on
            # two cores) the exit took longer than 5 s; it is immediate otherwise
            self.assertEqual(proc.wait(timeout=20), 0)
        proc, port = start_server("--data", "none", "--generate", "2,3", "--seed", "5")
        try:
            _, _, p2 = request("GET", "/api/v1/contacts", key="k", port=port)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
        strip = lambda p: [(c["id"], c["name"], c["email"]) for c in json.loads(p)["contacts"]]   # noqa: E731
        self.assertEqual(strip(p1), strip(p2))   # deterministic ids and data

    def test_data_file(self):
        path = os.path.join(TMP, "seed.json")
        with open(path, "w") as fh:
            json.dump({"customers": [{"id": 5, "business_name": "File Co"}],
                       "contacts": [{"customer_id": 5, "name": "F", "email": "f@file.example"}]}, fh)
        proc, port = start_server("--data", path)
        try:
            status, _, payload = request("GET", "/api/v1/customers/5", key="k", port=port)
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(payload)["customer"]["contacts"][0]["email"], "f@file.example")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)


class OkLinesResult(unittest.TextTestResult):
    """Prints "ok - NAME" / "FAIL - NAME" per case for tests/run.sh."""

    def _name(self, test):
        method = getattr(test, "_testMethodName", None)
        return "fake_syncro: %s.%s" % (type(test).__name__, method) if method else "fake_syncro: %s" % test

    def addSuccess(self, test):
        super().addSuccess(test)
        print("ok - " + self._name(test), flush=True)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        print("FAIL - " + self._name(test), flush=True)
        print("    " + self._exc_info_to_string(err, test).replace("\n", "\n    "), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        print("FAIL - " + self._name(test), flush=True)
        print("    " + self._exc_info_to_string(err, test).replace("\n", "\n    "), flush=True)


if __name__ == "__main__":
    if "--ok-lines" in sys.argv:
        sys.argv.remove("--ok-lines")
        with open(os.devnull, "w") as devnull:
            runner = unittest.TextTestRunner(resultclass=OkLinesResult, verbosity=0, stream=devnull)
            prog = unittest.main(testRunner=runner, exit=False)
        sys.exit(0 if prog.result.wasSuccessful() else 1)
    unittest.main()
