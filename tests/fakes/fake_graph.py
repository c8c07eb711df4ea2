#!/usr/bin/env python3
"""fake_graph.py - a faithful fake of Microsoft Graph v1.0 and the Microsoft identity platform
token endpoint, on 127.0.0.1, for entrasync's tests, benchmarks and demo.

One process serves  POST /{tenant}/oauth2/v2.0/token  (client secret or JWT client assertion,
AADSTS error bodies) and  /v1.0/...  (users, users/delta, groups, transitiveMembers,
organization, subscribedSkus, secureScores, secureScoreControlProfiles, contracts,
findTenantInformationByTenantId, PATCH users, revokeSignInSessions, $batch), plus a JSON control
API under /_fake/ (reset, state, request log, mutations, fake clock, fault injection).
Response shapes follow /work/shared/reference/graph-examples/*.json; behaviour follows
/work/shared/reference/graph-api.md.  See tests/fakes/README.md.  Python 3 stdlib only (plus the
`openssl` CLI to check RSA signatures of client assertions when an app has a public key).

CLI:  python3 tests/fakes/fake_graph.py --port 0 --port-file F [--host H] [--tls-cert C --tls-key K]
      [--state FILE.json] [--seed N] [--tenants SPEC] [--latency-ms N] [--token-lifetime S]
      [--app-cert PEM]... [--now ISO] [--access-log FILE]
"""

import argparse
import base64
import collections
import gzip
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import graph_data  # noqa: E402
import graph_model  # noqa: E402
from graph_model import FilterError, ODataFilter, iso, parse_iso  # noqa: E402

GRAPH_CT = ("application/json;odata.metadata=minimal;odata.streaming=true;"
            "IEEE754Compatible=false;charset=utf-8")
TOKEN_CT = "application/json; charset=utf-8"
GRAPH_SCOPES = ("https://graph.microsoft.com/.default",
                "00000003-0000-0000-c000-000000000000/.default")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

# Application permissions accepted per need (graph-api.md section 11, with the alternatives).
USER_READ = {"User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
             "Directory.ReadWrite.All"}
USER_WRITE = {"User.ReadWrite.All", "Directory.ReadWrite.All", "User.ReadUpdate.All"}
GROUP_READ = {"GroupMember.Read.All", "Group.Read.All", "Group.ReadWrite.All",
              "Directory.Read.All", "Directory.ReadWrite.All"}
ORG_READ = {"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All",
            "Directory.ReadWrite.All"}
SECURITY_READ = {"SecurityEvents.Read.All", "SecurityEvents.ReadWrite.All"}
CONTRACT_READ = {"Directory.Read.All", "Directory.ReadWrite.All"}
TENANT_INFO_READ = {"CrossTenantInformation.ReadBasic.All"}
REVOKE = {"User.RevokeSessions.All", "User.ReadWrite.All", "Directory.ReadWrite.All"}
PASSWORD_WRITE = {"User-PasswordProfile.ReadWrite.All"}

DEFAULT_CONFIG = {
    "latency_ms": 0,                 # added to every Graph/token request
    "token_lifetime": 3599,          # expires_in of issued tokens (fake-clock seconds)
    "delta_token_max_age_days": 7,   # deltaLink age (fake clock) before resync is required
    "delta_expiry_mode": "410",      # 410 | syncStateNotFound | resyncRequired
    "page_size": 100,                # default page size of collections
    "delta_page_size": 100,          # default users/delta page size (Prefer odata.maxpagesize)
    "score_page_size": 0,            # >0: secureScores pages at most this long, below $top (as Graph may)
    "batch_shuffle": True,           # $batch responses in shuffled order
    "ru_limit_per_10s": 0,           # >0: token-bucket throttling per app+tenant (real time)
    "assertion_replay_check": True,  # reject a client assertion jti seen before
    "log_max": 500000,               # request log entries kept
}


class Resp:
    """An HTTP response being built: status, headers (list of pairs), body (dict -> JSON, str,
    bytes or None), content type, and fault effects (drop / malformed)."""

    def __init__(self, status, body=None, headers=None, ctype=GRAPH_CT):
        self.status = status
        self.body = body
        self.headers = list(headers or [])
        self.ctype = ctype
        self.drop = None
        self.malformed = False

    def header(self, name):
        low = name.lower()
        return next((v for k, v in self.headers if k.lower() == low), None)

    def body_bytes(self):
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return jdump(self.body).encode("utf-8")


class Ctx:
    """One Graph request (top-level or a $batch part)."""

    def __init__(self, method, path, query, headers, body, base):
        self.method = method
        self.path = path          # e.g. /v1.0/users/delta
        self.query = query        # raw query string
        self.headers = headers    # dict, lower-case keys
        self.body = body          # bytes
        self.base = base          # scheme://host:port
        self.request_id = str(uuid.uuid4())
        self.client_request_id = headers.get("client-request-id") or self.request_id
        self.q = {}
        for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True):
            k = k.lower()
            self.q[k if k.startswith("$") else "$" + k] = v
        self.token = None         # token record after auth
        self.tenant = None        # graph_model.Tenant after auth
        self.fault = None
        self.ru = 1

    def header(self, name):
        return self.headers.get(name.lower())

    def advanced(self):
        return ((self.header("ConsistencyLevel") or "").lower() == "eventual"
                and self.q.get("$count", "").lower() == "true")


class GraphError(Exception):
    def __init__(self, resp):
        Exception.__init__(self, resp.status)
        self.resp = resp


JSON_ENC = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def jdump(obj):
    return JSON_ENC.encode(obj)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_dec(text):
    text = text.strip()
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeGraph:
    """The fake service: state, tokens, faults, request log; handle() serves one request."""

    def __init__(self, seed=1, spec="demo", state_path=None, now=None, app_certs=(),
                 config=None):
        self.seed = seed
        self.spec = spec
        self.state_path = state_path
        self.lock = threading.RLock()
        self.tmpdir = tempfile.mkdtemp(prefix="fake_graph.")
        self.key = hashlib.sha256(("fake-graph-%s" % seed).encode()).digest()
        self.base_config = dict(DEFAULT_CONFIG)
        self.base_config.update(config or {})
        self.start_offset = (parse_iso(now) - time.time()) if now else 0.0
        self.clock = graph_model.Clock(self.start_offset)
        self.cert_entries = []
        for pem_path in app_certs:
            with open(pem_path, encoding="utf-8") as fh:
                self.cert_entries.append(self.cert_entry({"pem": fh.read()}))
        self.initial_text = None
        if state_path and os.path.exists(state_path):
            with open(state_path, encoding="utf-8") as fh:
                self.initial_text = fh.read()
        doc = self.initial_doc()
        if state_path and self.initial_text is None:
            self.save(state_path, doc)
        self.generation = 0
        self.rng = random.Random(seed)
        self.record_file = None      # open file while POST /_fake/record is on (see record())
        self.record_path = None
        self.record_count = 0
        self.record_lock = threading.Lock()
        self._reset_runtime()
        self.state = graph_model.State(doc)

    def initial_doc(self):
        """The seed state: the --state file as loaded, else freshly generated (NxM tenants
        lazily, so 100 x 1,000 users start instantly and materialize on first use)."""
        if self.initial_text is not None:
            return json.loads(self.initial_text)
        doc = graph_data.generate(self.seed, self.spec, lazy=True)
        doc["apps"][graph_data.DEMO_CLIENT_ID]["certificates"] += [dict(c) for c in
                                                                    self.cert_entries]
        return doc

    def _reset_runtime(self):
        self.config = dict(self.base_config)
        self.tokens = {}
        self.faults = []
        self.fault_seq = 0
        self.requests = collections.deque(maxlen=int(self.config["log_max"]))
        self.req_seq = 0
        self.jtis = {}
        self.buckets = {}
        self.batch_rests = {}        # $batch parts held back by a batch_partial fault, by key
        self.batch_rest_seq = 0
        self.clock.offset = self.start_offset

    def reset(self, seed=None, spec=None):
        with self.lock:
            if seed is not None or spec is not None:
                self.seed = int(seed if seed is not None else self.seed)
                self.spec = spec or self.spec
                self.initial_text = None
            self.state = graph_model.State(self.initial_doc())
            self.generation += 1
            self._reset_runtime()

    def warm(self, select=None):
        """Materialize every lazily generated tenant now (and, given a $select string,
        pre-render each user's users/delta JSON for it), so a benchmark does not pay for it."""
        t0 = time.time()
        sel = None
        if select:
            canon = graph_model.USER_PROP_CANON
            sel = tuple(canon[p.strip().lower()] for p in select.split(",")
                        if p.strip() and p.strip().lower() != "id") + ("id",)
        n = 0
        for t in list(self.state.tenants):
            with self.lock:
                users = t.users
                if sel:
                    for uid in t.order:
                        if users[uid]["_state"] == "active":
                            self.user_fragment(t, users[uid], sel, True)
                n += len(users)
        return {"tenants": len(self.state.tenants), "users": n,
                "seconds": round(time.time() - t0, 3)}

    def save(self, path, doc=None):
        doc = doc if doc is not None else self.state.to_doc()
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
        os.replace(tmp, path)

    def close(self):
        self.record_control("DELETE", {})
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    # -------------------------------------------------------------------------------------------
    # request entry point

    def handle(self, h):
        """Serve one HTTP request on handler h (a BaseHTTPRequestHandler)."""
        t0 = time.time()
        headers = {k.lower(): v for k, v in h.headers.items()}
        body = h.read_body()
        split = urllib.parse.urlsplit(h.path)
        path, query = split.path, split.query
        host = headers.get("host") or "127.0.0.1:%d" % h.server.server_address[1]
        base = "%s://%s" % ("https" if h.server.tls else "http", host)
        if path.startswith("/_fake/") or path == "/_fake":
            try:
                resp = self.control(h.command, path, query, body)
            except Exception as e:  # noqa: BLE001 - report any bug as JSON
                traceback.print_exc()
                resp = Resp(500, {"error": "internal error: %s" % e}, ctype="application/json")
            h.send(resp, gzip_ok=False)
            return
        m = re.match(r"^/([^/]+)/oauth2/v2\.0/token/?$", path)
        kind = "token" if m else "graph"
        ctx = Ctx(h.command, path, query, headers, body, base)
        tenant_id = app_id = None
        fault = None
        with self.lock:
            if m:
                t = self.state.tenant(urllib.parse.unquote(m.group(1)))
                tenant_id = t.id if t else urllib.parse.unquote(m.group(1))
            else:
                tok = self._bearer(ctx)
                rec = self.tokens.get(tok) if tok else None
                if rec:
                    tenant_id, app_id = rec["tenant"], rec["app"]
            fault = self.pick_fault(path, query, tenant_id, kind, method=h.command)
            latency = self.config["latency_ms"] / 1000.0
        if fault and fault.get("latency_ms"):
            latency += fault["latency_ms"] / 1000.0
        ctx.fault = fault
        try:
            resp = self.fault_response(ctx, fault, kind, tenant_id, app_id) if fault else None
            if resp is None:
                if kind == "token":
                    resp = self.token_endpoint(ctx, urllib.parse.unquote(m.group(1)))
                else:
                    resp = self.graph(ctx)
                if fault and fault.get("drop"):
                    resp.drop = fault["drop"]
                if fault and fault.get("malformed"):
                    resp.malformed = True
        except Exception:  # noqa: BLE001
            traceback.print_exc()
            resp = self.gerr(ctx, 500, "generalException", "General exception while processing.")
        if kind == "graph":
            self._graph_headers(ctx, resp)
        if latency > 0:
            time.sleep(latency)
        if ctx.token:
            tenant_id, app_id = ctx.token["tenant"], ctx.token["app"]
        # logged before sending, so a client that got the response always finds it logged
        self.log_request(kind, h.command, h.path, tenant_id, app_id, resp.status, t0, fault,
                         accept_encoding=headers.get("accept-encoding"))
        rec = None
        if self.record_file is not None:
            rec = {"method": h.command, "target": h.path,
                   "authorization": headers.get("authorization") or "",
                   "body_sha256": hashlib.sha256(body).hexdigest()}
        h.send(resp, gzip_ok="gzip" in (headers.get("accept-encoding") or "").lower(), rec=rec)

    # -------------------------------------------------------------------------------------------
    # recording (POST /_fake/record {"file": PATH} .. DELETE /_fake/record), replayed by
    # tests/bench/replay_graph.c

    def record(self, rec, head, body, drop):
        """Append one exchange to the record file: one JSON object per line with the request's
        method, target (path + query as received), authorization (header value or ""),
        body_sha256 (hex of the request body as read), and the response as sent: status,
        reason, headers ([name, value] pairs in order, Content-Encoding/Content-Length
        included), body (base64 of the bytes written, after gzip; for a dropped response only
        the half that was written), drop (null, "close" or "reset"). Every string is the
        latin-1 text of the bytes on the wire, written with ASCII escapes (ensure_ascii)."""
        lines = head.decode("latin-1").split("\r\n")
        _version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
        hdrs = [ln.split(": ", 1) for ln in lines[1:] if ln]
        line = json.dumps(dict(rec, status=int(status), reason=reason, headers=hdrs,
                               body=base64.b64encode(body).decode("ascii"),
                               drop=("reset" if drop == "reset" else "close") if drop else None),
                          ensure_ascii=True, separators=(",", ":")) + "\n"
        with self.record_lock:
            if self.record_file is not None:
                self.record_file.write(line)
                self.record_file.flush()
                self.record_count += 1

    def record_control(self, method, data):
        """POST starts appending to data["file"] (an absolute path), DELETE stops; both and
        GET return {"file": PATH or null, "records": N written since the start}."""
        with self.record_lock:
            if method in ("POST", "DELETE") and self.record_file is not None:
                self.record_file.close()
                self.record_file = self.record_path = None
            if method == "POST":
                path = data.get("file")
                if not isinstance(path, str) or not os.path.isabs(path):
                    return self.cerr(400, "record needs {\"file\": \"/absolute/path\"}")
                self.record_file = open(path, "a", encoding="ascii")
                self.record_path = path
                self.record_count = 0
            return self.cok({"file": self.record_path, "records": self.record_count})

    def log_request(self, kind, method, path, tenant_id, app_id, status, t0, fault, batch=None,
                    accept_encoding=None):
        with self.lock:
            self.req_seq += 1
            self.requests.append({
                "seq": self.req_seq, "kind": kind, "method": method, "path": path,
                "tenant": tenant_id, "app": app_id, "status": status,
                "time": iso(self.clock.now()), "real_time": round(t0, 3),
                "ms": round((time.time() - t0) * 1000, 1),
                "fault": fault["id"] if fault else None, "batch": batch,
                "accept_encoding": accept_encoding})

    def _graph_headers(self, ctx, resp):
        resp.headers += [
            ("request-id", ctx.request_id), ("client-request-id", ctx.client_request_id),
            ("x-ms-ags-diagnostic", '{"ServerInfo":{"DataCenter":"Fake Region","Slice":"E",'
             '"Ring":"0","ScaleUnit":"000","RoleInstance":"FAKEGRAPH01"}}'),
            ("Strict-Transport-Security", "max-age=31536000")]
        if resp.header("Cache-Control") is None:
            resp.headers.append(("Cache-Control", "no-cache"))
        if resp.status < 300 or resp.status in (429,):
            resp.headers.append(("x-ms-resource-unit", str(ctx.ru)))
        if resp.body is not None and resp.ctype == GRAPH_CT:
            resp.headers.append(("OData-Version", "4.0"))

    # -------------------------------------------------------------------------------------------
    # fault injection

    def add_fault(self, spec):
        """Register a fault (see README). Returns its record."""
        f = dict(spec)
        if "match" in f:
            re.compile(f["match"])
        f.setdefault("match", ".*")
        f.setdefault("times", 1)
        f.setdefault("after", f.get("expire_token_after", 0) or 0)
        if f.get("tenant"):
            t = self.state.tenant(f["tenant"], control=True)
            if t is None:
                raise ValueError("unknown tenant %r" % f["tenant"])
            f["tenant_id"] = t.id
        self.fault_seq += 1
        f["id"] = self.fault_seq
        f["seen"] = 0
        f["fired"] = 0
        self.faults.append(f)
        return f

    def pick_fault(self, path, query, tenant_id, kind, batch_part=False, method=None):
        """The fault to apply to this request, consuming it; None when none matches. Pure
        latency faults fire alongside; the first other matching fault wins. A batch_partial
        fault matches a top-level POST /$batch only. Caller holds lock."""
        target = path + ("?" + urllib.parse.unquote(query) if query else "")
        chosen = None
        for f in list(self.faults):
            if f.get("tenant_id") and f["tenant_id"] != tenant_id:
                continue
            if not re.search(f["match"], target):
                continue
            if f.get("delta_gone") and not ("/delta" in path and "deltatoken" in query.lower()):
                continue
            if f.get("empty_page") and "/delta" not in path:
                continue
            if batch_part and (f.get("drop") or f.get("malformed") or f.get("delta_gone")
                               or f.get("empty_page")):
                continue
            if f.get("batch_partial") is not None and (
                    batch_part or method != "POST" or path.rstrip("/") != "/v1.0/$batch"):
                continue
            if f.get("kind") and f["kind"] != kind:
                continue
            f["seen"] += 1
            if f["seen"] <= int(f["after"]):
                continue
            action = any(f.get(k) for k in ("status", "drop", "malformed", "expire_token_after",
                                            "delta_gone", "empty_page")) or \
                f.get("batch_partial") is not None
            if action and chosen is not None:
                f["seen"] -= 1
                continue
            f["fired"] += 1
            if int(f["times"]) > 0 and f["fired"] >= int(f["times"]):
                self.faults.remove(f)
            if action:
                chosen = f
            elif chosen is None:
                chosen = {"id": f["id"], "latency_ms": f.get("latency_ms", 0)}
        return chosen

    def fault_response(self, ctx, f, kind, tenant_id, app_id):
        """The immediate response of a status / token-expiry fault; None for faults that act
        later (drop, malformed, delta_gone, empty_page, latency)."""
        if f.get("expire_token_after"):
            tok = self._bearer(ctx)
            with self.lock:
                if tok in self.tokens:
                    self.tokens[tok]["expired"] = True
            return self.gerr(ctx, 401, "InvalidAuthenticationToken",
                             "Access token has expired or is not yet valid.",
                             [("WWW-Authenticate", self._www_auth())])
        status = f.get("status")
        if not status:
            return None
        status = int(status)
        hdrs = []
        ra = f.get("retry_after", "1" if status == 429 else None)
        if ra is not None:
            hdrs.append(("Retry-After", str(ra)))
        if kind == "token":
            err = f.get("error") or {429: "temporarily_unavailable",
                                     500: "temporarily_unavailable",
                                     503: "temporarily_unavailable"}.get(status, "invalid_request")
            code = f.get("aadsts", 90033)
            msg = f.get("message", "A transient error has occurred. Please try again.")
            r = self.token_error(status, err, code, msg)
            r.headers += hdrs
            return r
        if status == 429:
            hdrs += [("x-ms-throttle-scope", "Tenant_Application/ReadWrite/%s/%s" % (
                app_id or "", tenant_id or "")),
                ("x-ms-throttle-information", "ResourceUnitLimitExceeded")]
            return Resp(429, self.err429_body(ctx), hdrs)
        code, msg = {
            400: ("BadRequest", "Bad request."),
            401: ("InvalidAuthenticationToken", "Access token validation failure."),
            403: ("Authorization_RequestDenied", "Insufficient privileges to complete the "
                  "operation."),
            404: ("Request_ResourceNotFound", "Resource not found."),
            500: ("generalException", "General exception while processing."),
            502: ("badGateway", "Bad gateway."),
            503: ("serviceNotAvailable", "Service is temporarily unavailable. Please retry."),
            504: ("gatewayTimeout", "The gateway did not receive a response in time."),
        }.get(status, ("generalException", "Injected failure."))
        return self.gerr(ctx, status, f.get("code", code), f.get("message", msg), hdrs)

    def err429_body(self, ctx):
        return {"error": {"code": "TooManyRequests", "innerError": {
            "code": "429", "date": iso(time.time())[:-1], "message": "Please retry after",
            "request-id": ctx.request_id, "status": "429"},
            "message": "Please retry again later."}}

    # -------------------------------------------------------------------------------------------
    # errors

    def gerr(self, ctx, status, code, message, headers=None):
        """A Graph error response (innerError with date/request-id/client-request-id)."""
        return Resp(status, {"error": {"code": code, "message": message, "innerError": {
            "date": iso(time.time())[:-1], "request-id": ctx.request_id,
            "client-request-id": ctx.client_request_id}}}, headers)

    def fail(self, ctx, status, code, message, headers=None):
        raise GraphError(self.gerr(ctx, status, code, message, headers))

    def token_error(self, status, error, code, text):
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        ts = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        body = {"error": error,
                "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\n"
                                     "Timestamp: %s" % (code, text, trace, corr, ts),
                "error_codes": [code], "timestamp": ts, "trace_id": trace,
                "correlation_id": corr,
                "error_uri": "https://login.microsoftonline.com/error?code=%d" % code}
        return Resp(status, body, self._token_headers(trace), ctype=TOKEN_CT)

    @staticmethod
    def _token_headers(trace):
        return [("Cache-Control", "no-store, no-cache"), ("Pragma", "no-cache"),
                ("x-ms-request-id", trace), ("x-ms-ests-server", "2.1.fake - FAKE ProdSlices"),
                ("P3P", 'CP="DSP CUR OTPi IND OTRi ONL FIN"')]

    @staticmethod
    def _www_auth():
        return ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/'
                'oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"')

    # -------------------------------------------------------------------------------------------
    # token endpoint

    def token_endpoint(self, ctx, tenant_ref):
        """POST /{tenant}/oauth2/v2.0/token, client_credentials with client_secret (form or HTTP
        Basic) or client_assertion. Errors as token-error.json with the AADSTS codes of
        graph-api.md section 3."""
        if ctx.method != "POST":
            return self.token_error(400, "invalid_request", 900561,
                                    "The endpoint only accepts POST, OPTIONS requests. "
                                    "Received a %s request." % ctx.method)
        form = dict(urllib.parse.parse_qsl(ctx.body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        with self.lock:
            tenant = self.state.tenant(tenant_ref)
            if tenant is None:
                return self.token_error(400, "invalid_request", 90002,
                                        "Tenant '%s' not found. Check to make sure you have the "
                                        "correct tenant ID and are signing into the correct "
                                        "cloud. Check with your subscription administrator, this "
                                        "may happen if there are no active subscriptions for "
                                        "the tenant." % tenant_ref)
            if "grant_type" not in form:
                return self.token_error(400, "invalid_request", 900144,
                                        "The request body must contain the following parameter: "
                                        "'grant_type'.")
            if form["grant_type"] != "client_credentials":
                return self.token_error(400, "unsupported_grant_type", 70003,
                                        "The app requested an unsupported grant type '%s'." %
                                        form["grant_type"])
            client_id = form.get("client_id")
            secret = form.get("client_secret")
            auth = ctx.header("Authorization") or ""
            if auth.lower().startswith("basic "):
                try:
                    user, _, pw = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
                    client_id = client_id or urllib.parse.unquote_plus(user)
                    secret = secret or urllib.parse.unquote_plus(pw)
                except (ValueError, UnicodeDecodeError):
                    return self.token_error(401, "invalid_client", 7000218,
                                            "The request body must contain the following "
                                            "parameter: 'client_assertion' or 'client_secret'.")
            assertion = form.get("client_assertion")
            claims = None
            if assertion and not client_id:
                try:
                    claims = json.loads(b64url_dec(assertion.split(".")[1]))
                    client_id = claims.get("sub")
                except (ValueError, IndexError):
                    pass
            if not client_id:
                return self.token_error(400, "invalid_request", 900144,
                                        "The request body must contain the following parameter: "
                                        "'client_id'.")
            scope = form.get("scope")
            if not scope:
                return self.token_error(400, "invalid_request", 900144,
                                        "The request body must contain the following parameter: "
                                        "'scope'.")
            if scope not in GRAPH_SCOPES:
                return self.token_error(400, "invalid_scope", 70011,
                                        "The provided value for the input parameter 'scope' is "
                                        "not valid. The scope %s is not valid." % scope)
            app = self.state.apps.get(client_id)
            grant = tenant.head["grants"].get(client_id)
            if app is None or grant is None:
                return self.token_error(400, "unauthorized_client", 700016,
                                        "Application with identifier '%s' was not found in the "
                                        "directory '%s'. This can happen if the application has "
                                        "not been installed by the administrator of the tenant "
                                        "or consented to by any user in the tenant. You may have "
                                        "sent your authentication request to the wrong tenant."
                                        % (client_id, tenant.display_name))
            if assertion:
                if form.get("client_assertion_type") != JWT_BEARER:
                    return self.token_error(400, "invalid_request", 50027,
                                            "JWT token is invalid or malformed "
                                            "(client_assertion_type must be %s)." % JWT_BEARER)
                err = self.check_assertion(assertion, app, client_id, tenant)
                if err:
                    return err
            elif secret is not None:
                now = self.clock.now()
                match = [s for s in app["secrets"] if hmac.compare_digest(
                    s["value"].encode(), secret.encode())]
                if not match:
                    return self.token_error(401, "invalid_client", 7000215,
                                            "Invalid client secret provided. Ensure the secret "
                                            "being sent in the request is the client secret "
                                            "value, not the client secret ID, for a secret added "
                                            "to app '%s'." % client_id)
                if all(parse_iso(s["endDateTime"]) <= now for s in match):
                    return self.token_error(401, "invalid_client", 7000222,
                                            "The provided client secret keys for app '%s' are "
                                            "expired. Visit the Azure portal to create new keys "
                                            "for your app: https://aka.ms/NewClientSecret, or "
                                            "consider using certificate credentials for added "
                                            "security: https://aka.ms/certCreds." % client_id)
            else:
                return self.token_error(401, "invalid_client", 7000218,
                                        "The request body must contain the following parameter: "
                                        "'client_assertion' or 'client_secret'.")
            if not grant.get("consent", True):
                return self.token_error(400, "invalid_grant", 65001,
                                        "The user or administrator has not consented to use the "
                                        "application with ID '%s' named '%s'. Send an "
                                        "interactive authorization request for this user and "
                                        "resource." % (client_id, app.get("displayName", "")))
            lifetime = int(self.config["token_lifetime"])
            # as long as Entra's (a 1.5-2.5 KB JWT): every Graph request carries it,
            # and what a client spends on that header is part of a pull's cost
            tok = "fake." + secrets.token_urlsafe(1350)
            self.tokens[tok] = {"tenant": tenant.id, "app": client_id,
                                "roles": frozenset(grant.get("roles", [])),
                                "admin": bool(grant.get("adminRole")),
                                "issued": self.clock.now(),
                                "exp": self.clock.now() + lifetime, "expired": False}
            if len(self.tokens) > 20000:
                now = self.clock.now()
                for k in [k for k, v in self.tokens.items() if v["exp"] < now]:
                    del self.tokens[k]
        return Resp(200, {"token_type": "Bearer", "expires_in": lifetime,
                          "ext_expires_in": lifetime, "access_token": tok},
                    self._token_headers(str(uuid.uuid4())), ctype=TOKEN_CT)

    def check_assertion(self, assertion, app, client_id, tenant):
        """Validate a JWT client assertion (structure, alg, x5t#S256/x5t, aud/iss/sub/jti/exp/
        nbf, optional RSA signature via openssl). Returns a token error Resp or None."""
        def bad(code, text, status=401, err="invalid_client"):
            return self.token_error(status, err, code, text)
        parts = assertion.split(".")
        if len(parts) != 3:
            return bad(50027, "JWT token is invalid or malformed.", 400, "invalid_request")
        try:
            header = json.loads(b64url_dec(parts[0]))
            claims = json.loads(b64url_dec(parts[1]))
            sig = b64url_dec(parts[2])
        except ValueError:
            return bad(50027, "JWT token is invalid or malformed.", 400, "invalid_request")
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return bad(50027, "JWT token is invalid or malformed.", 400, "invalid_request")
        alg = header.get("alg")
        if alg not in ("PS256", "RS256"):
            return bad(50027, "JWT token is invalid or malformed: unsupported alg '%s'." % alg,
                       400, "invalid_request")
        s256, s1 = header.get("x5t#S256"), header.get("x5t")
        if not s256 and not s1:
            return bad(700027, "Client assertion failed signature validation. [Reason - The "
                       "key was not found., x5t#S256/x5t header missing]")
        cert = next((c for c in app.get("certificates", [])
                     if (s256 and c.get("x5tS256") == s256) or (s1 and c.get("x5t") == s1)), None)
        if cert is None:
            return bad(700027, "The certificate with identifier used to sign the client "
                       "assertion is not registered on application. [Reason - The key was not "
                       "found., Thumbprint of key used by client: '%s']" % (s256 or s1))
        if cert.get("endDateTime") and parse_iso(cert["endDateTime"]) <= self.clock.now():
            return bad(700027, "Client assertion contains an invalid signature. [Reason - The "
                       "key used is expired.]")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        refs = {tenant.id.lower()} | {d["name"].lower() for d in tenant.domains()}
        ok_aud = False
        for a in auds:
            m = re.match(r"^https?://[^/]+/([^/]+)/oauth2/v2\.0/token/?$", str(a or ""))
            if m and m.group(1).lower() in refs:
                ok_aud = True
        if not ok_aud:
            return bad(50012, "Client assertion audience claim does not match Realm issuer "
                       "(aud '%s' is not the token endpoint of tenant %s)." % (aud, tenant.id))
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            return bad(50012, "Client assertion issuer and subject must both be the client id "
                       "'%s'." % client_id)
        jti = claims.get("jti")
        if not jti or not isinstance(jti, str):
            return bad(50012, "Client assertion is missing the jti claim.")
        now = time.time()  # assertions are signed with the client's real clock
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, (int, float)):
            return bad(50012, "Client assertion is missing the exp claim.")
        if exp + 300 < now or (isinstance(nbf, (int, float)) and nbf - 300 > now):
            return bad(700024, "Client assertion is not within its valid time range. Current "
                       "time: %s, assertion valid from %s, expiry time of assertion %s." % (
                           iso(now), iso(nbf) if isinstance(nbf, (int, float)) else "-",
                           iso(exp)))
        if self.config["assertion_replay_check"]:
            key = (client_id, jti)
            if key in self.jtis and self.jtis[key] > now - 600:
                return bad(50012, "Client assertion jti '%s' has already been used." % jti)
        if cert.get("publicKeyPem"):
            if not self.verify_rsa(cert, alg, (parts[0] + "." + parts[1]).encode(), sig):
                return bad(700027, "Client assertion contains an invalid signature. [Reason - "
                           "The signature does not verify against the registered key.]")
        if self.config["assertion_replay_check"]:
            self.jtis[(client_id, jti)] = now
            if len(self.jtis) > 50000:
                self.jtis = {k: v for k, v in self.jtis.items() if v > now - 600}
        return None

    def verify_rsa(self, cert, alg, data, sig):
        """RSA (RS256 PKCS#1 v1.5 or PS256 PSS, salt = digest length) via `openssl dgst`."""
        d = tempfile.mkdtemp(dir=self.tmpdir)
        try:
            pub, dat, sg = (os.path.join(d, n) for n in ("pub.pem", "data", "sig"))
            with open(pub, "w") as f:
                f.write(cert["publicKeyPem"])
            with open(dat, "wb") as f:
                f.write(data)
            with open(sg, "wb") as f:
                f.write(sig)
            cmd = ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sg]
            if alg == "PS256":
                cmd += ["-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:-1"]
            r = subprocess.run(cmd + [dat], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               check=False)
            return r.returncode == 0 and b"Verified OK" in r.stdout
        finally:
            shutil.rmtree(d, ignore_errors=True)

    @staticmethod
    def cert_entry(spec):
        """Certificate record from {"pem": certificate PEM} (thumbprints and public key derived
        with ssl + openssl) or from explicit {"x5t", "x5tS256", "publicKeyPem"}."""
        ent = {"x5t": spec.get("x5t"), "x5tS256": spec.get("x5tS256") or spec.get("x5t#S256"),
               "publicKeyPem": spec.get("publicKeyPem"), "endDateTime": spec.get("endDateTime")}
        if spec.get("pem"):
            der = ssl.PEM_cert_to_DER_cert(spec["pem"])
            ent["x5t"] = b64url(hashlib.sha1(der).digest())
            ent["x5tS256"] = b64url(hashlib.sha256(der).digest())
            if spec.get("verify", True):
                r = subprocess.run(["openssl", "x509", "-pubkey", "-noout"],
                                   input=spec["pem"].encode(), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, check=True)
                ent["publicKeyPem"] = r.stdout.decode()
        if not ent["x5t"] and not ent["x5tS256"]:
            raise ValueError("certificate needs pem, x5t or x5tS256")
        return ent

    # -------------------------------------------------------------------------------------------
    # Graph

    @staticmethod
    def _bearer(ctx):
        auth = ctx.header("Authorization") or ""
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    def authenticate(self, ctx):
        tok = self._bearer(ctx)
        if not tok:
            self.fail(ctx, 401, "InvalidAuthenticationToken", "Access token is empty.",
                      [("WWW-Authenticate", self._www_auth())])
        rec = self.tokens.get(tok)
        if rec is None:
            self.fail(ctx, 401, "InvalidAuthenticationToken",
                      "CompactToken parsing failed with error code: 80049217",
                      [("WWW-Authenticate", self._www_auth())])
        if rec["expired"] or rec["exp"] <= self.clock.now():
            self.fail(ctx, 401, "InvalidAuthenticationToken",
                      "Access token has expired or is not yet valid.",
                      [("WWW-Authenticate", self._www_auth())])
        ctx.token = rec
        ctx.tenant = self.state.tenant(rec["tenant"])

    def require(self, ctx, roles):
        if not (ctx.token["roles"] & roles):
            self.fail(ctx, 403, "Authorization_RequestDenied",
                      "Insufficient privileges to complete the operation.")

    def graph(self, ctx):
        """Top-level Graph request: auth, throttling, route."""
        with self.lock:
            try:
                self.authenticate(ctx)
                if ctx.path.rstrip("/") == "/v1.0/$batch":
                    return self.batch(ctx)
                resp = self.route(ctx)
                self.throttle(ctx, resp)
                return resp
            except GraphError as e:
                return e.resp

    def throttle(self, ctx, resp):
        """Optional RU token bucket per app+tenant (config ru_limit_per_10s)."""
        limit = int(self.config["ru_limit_per_10s"])
        if limit <= 0:
            return
        key = (ctx.token["app"], ctx.token["tenant"])
        now = time.time()
        q = self.buckets.setdefault(key, collections.deque())
        while q and q[0][0] < now - 10:
            q.popleft()
        used = sum(r for _t, r in q)
        if used + ctx.ru > limit:
            wait = max(0.1, q[0][0] + 10 - now) if q else 1.0
            raise GraphError(Resp(429, self.err429_body(ctx), [
                ("Retry-After", str(int(wait + 0.999))),
                ("x-ms-throttle-scope", "Tenant_Application/ReadWrite/%s/%s" % key),
                ("x-ms-throttle-information", "ResourceUnitLimitExceeded")]))
        q.append((now, ctx.ru))

    def route(self, ctx):
        """Dispatch an authenticated Graph request; raises GraphError for errors."""
        if not ctx.path.startswith("/v1.0/"):
            seg = ctx.path.strip("/").split("/")[0] if ctx.path.strip("/") else ""
            self.fail(ctx, 400, "BadRequest", "Invalid version: %s" % seg)
        segs = [urllib.parse.unquote(s) for s in ctx.path[len("/v1.0/"):].strip("/").split("/")]
        m, n = ctx.method, len(segs)
        head = segs[0]
        if head == "users":
            if n == 1 and m == "GET":
                return self.list_users(ctx)
            if n == 2 and segs[1] == "$count" and m == "GET":
                return self.count_users(ctx)
            if n == 2 and segs[1] in ("delta", "delta()") and m == "GET":
                return self.users_delta(ctx)
            if n == 2 and m == "GET":
                return self.get_user(ctx, segs[1])
            if n == 2 and m == "PATCH":
                return self.patch_user(ctx, segs[1])
            if n == 3 and segs[2] in ("revokeSignInSessions",
                                      "microsoft.graph.revokeSignInSessions") and m == "POST":
                return self.revoke_sessions(ctx, segs[1])
            if n in (3, 4) and segs[2] in ("memberOf", "transitiveMemberOf") and m == "GET":
                return self.member_of(ctx, segs[1], segs[2] == "transitiveMemberOf",
                                      segs[3] if n == 4 else None)
            if n == 3 and segs[2] == "licenseDetails" and m == "GET":
                return self.license_details(ctx, segs[1])
        elif head == "groups":
            if n == 1 and m == "GET":
                return self.list_groups(ctx)
            if n == 2 and m == "GET":
                return self.get_group(ctx, segs[1])
            if n in (3, 4) and segs[2] in ("members", "transitiveMembers") and m == "GET":
                return self.group_members(ctx, segs[1], segs[2] == "transitiveMembers",
                                          segs[3] if n == 4 else None)
        elif head == "organization" and m == "GET" and n <= 2:
            return self.organization(ctx, segs[1] if n == 2 else None)
        elif head == "subscribedSkus" and m == "GET" and n <= 2:
            return self.subscribed_skus(ctx, segs[1] if n == 2 else None)
        elif head == "security" and m == "GET" and n in (2, 3):
            if segs[1] == "secureScores":
                return self.secure_scores(ctx, segs[2] if n == 3 else None)
            if segs[1] == "secureScoreControlProfiles":
                return self.control_profiles(ctx, segs[2] if n == 3 else None)
        elif head == "contracts" and m == "GET" and n <= 2:
            return self.contracts(ctx, segs[1] if n == 2 else None)
        elif head == "tenantRelationships" and m == "GET" and n == 2:
            return self.tenant_information(ctx, segs[1])
        elif head == "$batch":
            self.fail(ctx, 400, "BadRequest", "Nested batch requests are not supported.")
        known = {"users", "groups", "organization", "subscribedSkus", "security", "contracts",
                 "tenantRelationships"}
        if head in known:
            if m not in ("GET", "POST", "PATCH", "DELETE", "PUT"):
                self.fail(ctx, 405, "Request_BadRequest",
                          "Specified HTTP method is not allowed for the request target.")
            self.fail(ctx, 400, "BadRequest", "Resource not found for the segment '%s'." %
                      segs[-1])
        self.fail(ctx, 400, "BadRequest", "Resource not found for the segment '%s'." % head)

    # query helpers ----------------------------------------------------------------------------

    def page_size(self, ctx, default=None, opt="$top"):
        default = default or int(self.config["page_size"])
        if opt not in ctx.q:
            return default
        raw = ctx.q[opt]
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if n < 1 or n > 999:
            self.fail(ctx, 400, "Request_BadRequest", "Invalid page size specified: '%s'. Must "
                      "be between 1 and 999 inclusive." % raw)
        return n

    def select(self, ctx, known, typ, not_in_collection=(), collection=False):
        """Selected properties (canonical names, in request order) or None."""
        raw = ctx.q.get("$select")
        if raw is None or raw.strip() == "":
            return None
        out = []
        for name in [p.strip() for p in raw.split(",") if p.strip()]:
            canon = known.get(name.lower())
            if canon is None:
                self.fail(ctx, 400, "Request_BadRequest", "Could not find a property named "
                          "'%s' on type 'microsoft.graph.%s'." % (name, typ))
            if collection and canon in not_in_collection:
                self.fail(ctx, 501, "NotImplemented", "This operation target is not yet "
                          "supported.")
            if canon not in out:
                out.append(canon)
        return out

    def parse_filter(self, ctx, props, resource, advanced_rules=True):
        raw = ctx.q.get("$filter")
        if raw is None or raw.strip() == "":
            return None
        try:
            f = ODataFilter(raw, props, resource)
        except FilterError as e:
            self.fail(ctx, 400, e.code, e.message)
        if advanced_rules and f.advanced and not ctx.advanced():
            self.fail(ctx, 400, "Request_UnsupportedQuery",
                      "Unsupported Query. (this filter needs the ConsistencyLevel: eventual "
                      "header and $count=true)")
        return f

    def check_count(self, ctx):
        """$count=true requires ConsistencyLevel: eventual on directory objects."""
        if ctx.q.get("$count", "").lower() == "true" and not ctx.advanced():
            self.fail(ctx, 400, "Request_BadRequest", "$count is not currently supported.")
        return ctx.q.get("$count", "").lower() == "true"

    def encode_token(self, payload):
        payload = dict(payload, g=self.generation)
        raw = b64url(jdump(payload).encode())
        mac = b64url(hmac.new(self.key, raw.encode(), hashlib.sha256).digest()[:12])
        return raw + "." + mac

    def decode_token(self, ctx, tok, tenant):
        """Payload of a skip/delta token minted by encode_token; 400 when forged or from another
        tenant. Tokens from before a /_fake/reset decode with 'stale': True."""
        try:
            raw, mac = tok.rsplit(".", 1)
            good = b64url(hmac.new(self.key, raw.encode(), hashlib.sha256).digest()[:12])
            if not hmac.compare_digest(good, mac):
                raise ValueError("mac")
            payload = json.loads(b64url_dec(raw))
        except (ValueError, TypeError):
            self.fail(ctx, 400, "Request_BadRequest", "The specified token is invalid or was "
                      "not issued for this request (skip/delta tokens are opaque).")
        if payload.get("t") != tenant.id:
            self.fail(ctx, 400, "Request_BadRequest", "The specified token is invalid or was "
                      "not issued for this request (skip/delta tokens are opaque).")
        payload["stale"] = payload.get("g") != self.generation
        return payload

    def link(self, ctx, path, params):
        """Absolute URL on this server with OData params ($ kept literal)."""
        q = "&".join("%s=%s" % (k, urllib.parse.quote(str(v), safe="$,()'=:@*-._~"))
                     for k, v in params)
        return ctx.base + path + ("?" + q if q else "")

    def next_link(self, ctx, skip):
        params = [(k, v) for k, v in urllib.parse.parse_qsl(ctx.query, keep_blank_values=True)
                  if k.lower().lstrip("$") != "skiptoken"]
        params.append(("$skiptoken", skip))
        return self.link(ctx, ctx.path, params)

    def metadata(self, ctx, frag):
        return ctx.base + "/v1.0/$metadata#" + frag

    def find_user(self, ctx, ref):
        u = ctx.tenant.find_user(ref)
        if u is None:
            self.fail(ctx, 404, "Request_ResourceNotFound", "Resource '%s' does not exist or one "
                      "of its queried reference-property objects are not present." % ref)
        return u

    # users ------------------------------------------------------------------------------------

    def user_select(self, ctx, collection):
        sel = self.select(ctx, graph_model.USER_PROP_CANON, "user",
                          graph_model.NOT_IN_COLLECTION, collection)
        if sel and "signInActivity" in sel and "AuditLog.Read.All" not in ctx.token["roles"]:
            self.fail(ctx, 403, "Authorization_RequestDenied", "Insufficient privileges to "
                      "complete the operation.")
        return sel

    @staticmethod
    def user_value(u, prop):
        if prop == "passwordProfile":
            return None
        if prop == "signInActivity":
            return {"lastSignInDateTime": u.get("createdDateTime"),
                    "lastSignInRequestId": None,
                    "lastNonInteractiveSignInDateTime": None,
                    "lastNonInteractiveSignInRequestId": None}
        return u.get(prop)

    def user_fragment(self, tenant, u, sel, delta):
        """Cached JSON text of user u for a $select (list form keeps nulls; delta form omits
        never-set values and always carries id, last)."""
        key = ("D" if delta else "L",) + tuple(sel)
        cache = tenant.frag.get(u["id"])
        if cache is None:
            cache = tenant.frag[u["id"]] = {}
        txt = cache.get(key)
        if txt is None:
            special = ("passwordProfile", "signInActivity")
            if delta:
                obj = {}
                for p in sel:
                    v = self.user_value(u, p) if p in special else u.get(p)
                    if v is not None and p != "id":
                        obj[p] = v
                obj["id"] = u["id"]
            else:
                obj = {p: (self.user_value(u, p) if p in special else u.get(p)) for p in sel}
            txt = cache[key] = JSON_ENC.encode(obj)
        return txt

    def list_users(self, ctx):
        """GET /users: $select $filter $top $count $orderby, opaque nextLink ($skiptoken)."""
        self.require(ctx, USER_READ)
        sel = self.user_select(ctx, True)
        size = self.page_size(ctx)
        counting = self.check_count(ctx)
        flt = self.parse_filter(ctx, graph_model.USER_PROP_CANON, "User")
        if "$search" in ctx.q and not (ctx.header("ConsistencyLevel") or "").lower() == "eventual":
            self.fail(ctx, 400, "Request_UnsupportedQuery", "Request with $search query "
                      "parameter only works through MSGraph with a special request header: "
                      "'ConsistencyLevel: eventual'")
        if "$search" in ctx.q or "$expand" in ctx.q:
            self.fail(ctx, 400, "Request_UnsupportedQuery", "The fake Graph does not support "
                      "$search/$expand on users.")
        t = ctx.tenant
        order = t.order
        orderby = ctx.q.get("$orderby")
        if orderby:
            prop, _, direction = orderby.strip().partition(" ")
            prop = graph_model.USER_PROP_CANON.get(prop.lower())
            if prop not in ("displayName", "userPrincipalName"):
                self.fail(ctx, 400, "Request_UnsupportedQuery", "Sorting not supported for "
                          "'%s'." % orderby)
            if flt and not ctx.advanced():
                self.fail(ctx, 400, "Request_UnsupportedQuery", "Unsupported Query. ($orderby "
                          "with $filter needs ConsistencyLevel: eventual and $count=true)")
            order = sorted(order, key=lambda i: (t.users[i].get(prop) or "").casefold(),
                           reverse=direction.strip().lower() == "desc")
        start = 0
        if "$skiptoken" in ctx.q:
            start = self.decode_token(ctx, ctx.q["$skiptoken"], t)["o"]
        sel_t = tuple(sel or graph_model.USER_DEFAULT_SELECT)
        frags, i = [], start
        while i < len(order) and len(frags) < size:
            u = t.users[order[i]]
            i += 1
            if u["_state"] != "active" or (flt and not flt.match(u)):
                continue
            frags.append(self.user_fragment(t, u, sel_t, False))
        while i < len(order) and (t.users[order[i]]["_state"] != "active"
                                  or (flt and not flt.match(t.users[order[i]]))):
            i += 1
        ctx.ru = max(1, 2 - (1 if sel else 0) - (1 if size < 20 else 0))
        head = '{"@odata.context":%s' % jdump(self.metadata(
            ctx, "users(%s)" % ",".join(sel) if sel else "users"))
        if counting and start == 0:
            n = sum(1 for x in order if t.users[x]["_state"] == "active"
                    and (not flt or flt.match(t.users[x])))
            head += ',"@odata.count":%d' % n
        if i < len(order):
            head += ',"@odata.nextLink":%s' % jdump(self.next_link(
                ctx, self.encode_token({"t": t.id, "o": i})))
        return Resp(200, head + ',"value":[' + ",".join(frags) + "]}")

    def count_users(self, ctx):
        self.require(ctx, USER_READ)
        if (ctx.header("ConsistencyLevel") or "").lower() != "eventual":
            self.fail(ctx, 400, "Request_BadRequest", "$count is not currently supported.")
        flt = self.parse_filter(ctx, graph_model.USER_PROP_CANON, "User", advanced_rules=False)
        t = ctx.tenant
        n = sum(1 for i in t.order if t.users[i]["_state"] == "active"
                and (not flt or flt.match(t.users[i])))
        return Resp(200, str(n), ctype="text/plain")

    def get_user(self, ctx, ref):
        self.require(ctx, USER_READ)
        sel = self.user_select(ctx, False)
        u = self.find_user(ctx, ref)
        sel_t = sel or list(graph_model.USER_DEFAULT_SELECT)
        obj = {"@odata.context": self.metadata(
            ctx, "users(%s)/$entity" % ",".join(sel) if sel else "users/$entity")}
        obj.update({p: self.user_value(u, p) for p in sel_t})
        return Resp(200, obj)

    def patch_user(self, ctx, ref):
        """PATCH /users/{id|upn}: accountEnabled needs User.EnableDisableAccount.All + a user read
        role (or a write role); passwordProfile needs User-PasswordProfile.ReadWrite.All; other
        properties a write role. Admin targets need adminRole on the grant. 204."""
        try:
            body = json.loads(ctx.body.decode("utf-8") or "null")
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            self.fail(ctx, 400, "BadRequest", "Unable to read JSON request payload. Please ensure "
                      "Content-Type header is set and payload is of valid JSON format.")
        roles = ctx.token["roles"]
        for k in body:
            canon = graph_model.USER_PROP_CANON.get(k.lower())
            if canon is None or canon not in graph_model.USER_WRITABLE:
                self.fail(ctx, 400, "Request_BadRequest", "Property '%s' does not exist on type "
                          "'microsoft.graph.user' or is read-only." % k)
            if canon == "accountEnabled":
                if not (roles & USER_WRITE or ("User.EnableDisableAccount.All" in roles
                                               and roles & USER_READ)):
                    self.require(ctx, set())
            elif canon == "passwordProfile":
                self.require(ctx, PASSWORD_WRITE)
            else:
                self.require(ctx, USER_WRITE)
        u = self.find_user(ctx, ref)
        sensitive = {"accountEnabled", "passwordProfile"} & set(body)
        if u.get("_admin") and sensitive and not ctx.token["admin"]:
            self.fail(ctx, 403, "Authorization_RequestDenied", "Insufficient privileges to "
                      "complete the operation.")
        changes = {}
        for k, v in body.items():
            canon = graph_model.USER_PROP_CANON[k.lower()]
            if canon == "passwordProfile":
                pw = (v or {}).get("password")
                if not isinstance(pw, str) or not self.password_ok(pw):
                    self.fail(ctx, 400, "Request_BadRequest", "The specified password does not "
                              "comply with password complexity requirements. Please provide a "
                              "different password.")
                u["_password"] = pw
                u["_forceChangePasswordNextSignIn"] = bool(
                    (v or {}).get("forceChangePasswordNextSignIn", False))
                changes["lastPasswordChangeDateTime"] = iso(self.clock.now())
            else:
                changes[canon] = v
        ctx.tenant.update_user(u, changes)
        return Resp(204, None)

    @staticmethod
    def password_ok(pw):
        classes = sum(1 for pat in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]")
                      if re.search(pat, pw))
        return 8 <= len(pw) <= 256 and classes >= 3

    def revoke_sessions(self, ctx, ref):
        self.require(ctx, REVOKE)
        u = self.find_user(ctx, ref)
        if u.get("_admin") and not ctx.token["admin"]:
            self.fail(ctx, 403, "Authorization_RequestDenied", "Insufficient privileges to "
                      "complete the operation.")
        ctx.tenant.update_user(u, {"signInSessionsValidFromDateTime": iso(self.clock.now())})
        return Resp(200, {"@odata.context": self.metadata(ctx, "Edm.Boolean"), "value": True})

    def license_details(self, ctx, ref):
        """GET /users/{id}/licenseDetails (docs conflict on app-only; the fake allows it with a
        user read role)."""
        self.require(ctx, USER_READ)
        u = self.find_user(ctx, ref)
        skus = {s["skuId"]: s for s in ctx.tenant.doc["skus"]}
        out = []
        for lic in u.get("assignedLicenses") or []:
            s = skus.get(lic["skuId"])
            plans = [dict(p, provisioningStatus="Disabled" if p["servicePlanId"] in
                          lic.get("disabledPlans", []) else "Success")
                     for p in (s["servicePlans"] if s else [])]
            out.append({"id": b64url(hashlib.sha256((u["id"] + lic["skuId"]).encode())
                                     .digest()[:32]),
                        "skuId": lic["skuId"], "skuPartNumber": s["skuPartNumber"] if s else None,
                        "servicePlans": plans})
        return Resp(200, {"@odata.context": self.metadata(
            ctx, "users('%s')/licenseDetails" % u["id"]), "value": out})

    # users/delta ------------------------------------------------------------------------------

    def users_delta(self, ctx):
        """GET /users/delta: initial round pages (nextLink) ending in a deltaLink; later rounds
        return users changed since (changed properties, Prefer: return=minimal), creations and
        @removed changed/deleted. deltaLinks expire (fake clock) -> 410 / syncStateNotFound /
        resyncRequired."""
        self.require(ctx, USER_READ)
        t = ctx.tenant
        prefer = (ctx.header("Prefer") or "").lower()
        minimal = "return=minimal" in prefer
        m = re.search(r"odata\.maxpagesize=(\d+)", prefer)
        size = int(self.config["delta_page_size"])
        applied = []
        if m:
            size = max(1, min(999, int(m.group(1))))
            applied.append("odata.maxpagesize=%d" % size)
        if minimal:
            applied.append("return=minimal")
        hdrs = [("Preference-Applied", ", ".join(applied))] if applied else []
        if ctx.fault and ctx.fault.get("delta_gone"):
            tok = self.decode_token(ctx, ctx.q.get("$deltatoken", ""), t)
            return self.delta_gone(ctx, tok, ctx.fault.get("mode"))
        if ctx.q.get("$deltatoken", "") not in ("", "latest") or "$skiptoken" in ctx.q:
            raw = ctx.q.get("$skiptoken") or ctx.q.get("$deltatoken")
            tok = self.decode_token(ctx, raw, t)
            if tok["stale"]:
                return self.delta_gone(ctx, tok, None)
            if tok["m"] == "d":
                age = self.clock.now() - tok["ts"]
                if age > float(self.config["delta_token_max_age_days"]) * graph_model.DAY:
                    return self.delta_gone(ctx, tok, None)
                tok = {"t": t.id, "m": "c", "s": tok["s"], "e": t.seq(), "o": 0,
                       "sel": tok["sel"], "ids": tok.get("ids")}
        else:
            if any(k in ctx.q for k in ("$top", "$orderby", "$expand", "$search")):
                self.fail(ctx, 400, "Request_UnsupportedQuery", "Unsupported query option for "
                          "delta: only $select, $filter (id eq) and $deltatoken are allowed.")
            sel = self.user_select(ctx, True)
            ids = None
            if ctx.q.get("$filter"):
                ids = self.delta_filter_ids(ctx)
            sel = [p for p in (sel or graph_model.USER_DEFAULT_SELECT) if p != "id"]
            if ctx.q.get("$deltatoken") == "latest":
                return self.delta_page(ctx, {"m": "d", "s": t.seq(), "sel": sel, "ids": ids},
                                       [], hdrs)
            tok = {"t": t.id, "m": "i", "s": t.seq(), "o": 0, "sel": sel, "ids": ids}
        if ctx.fault and ctx.fault.get("empty_page"):
            return self.delta_page(ctx, dict(tok), [], hdrs)
        ids = set(tok["ids"]) if tok.get("ids") else None
        sel = tok["sel"]
        ctx.ru = 1 if "$select" in ctx.q or tok["m"] != "i" else 2
        sel_t = tuple(sel) + ("id",)
        items = []
        if tok["m"] == "i":
            i = tok["o"]
            order = t.order
            while i < len(order) and len(items) < size:
                u = t.users[order[i]]
                i += 1
                if ids is not None and u["id"] not in ids:
                    continue
                if u["_state"] == "active":
                    items.append(self.user_fragment(t, u, sel_t, True))
                elif u["_state"] == "softDeleted":
                    items.append(jdump({"id": u["id"], "@removed": {"reason": "changed"}}))
                else:
                    items.append(jdump({"id": u["id"], "@removed": {"reason": "deleted"}}))
            nxt = dict(tok, o=i) if i < len(order) else {"m": "d", "s": tok["s"], "sel": sel,
                                                        "ids": tok.get("ids")}
        else:
            order, info = t.delta_changes(tok["s"], tok["e"])
            end = min(len(order), tok["o"] + size)
            tracked = set(sel)
            for uid in order[tok["o"]:end]:
                if ids is not None and uid not in ids:
                    continue
                props, kinds = info[uid]
                u = t.users[uid]
                if u["_state"] == "hardDeleted":
                    items.append(jdump({"id": uid, "@removed": {"reason": "deleted"}}))
                elif u["_state"] == "softDeleted":
                    items.append(jdump({"id": uid, "@removed": {"reason": "changed"}}))
                elif kinds & {"create", "restore"}:
                    items.append(self.user_fragment(t, u, sel_t, True))
                else:
                    changed = props & tracked
                    if not changed:
                        continue
                    obj = {}
                    for p in sel:
                        v = self.user_value(u, p)
                        if p in changed or (not minimal and v is not None):
                            obj[p] = v
                    obj["id"] = uid
                    items.append(jdump(obj))
            nxt = dict(tok, o=end) if end < len(order) else {"m": "d", "s": tok["e"], "sel": sel,
                                                            "ids": tok.get("ids")}
        return self.delta_page(ctx, nxt, items, hdrs)

    def delta_filter_ids(self, ctx):
        try:
            f = ODataFilter(ctx.q["$filter"], {"id": "id"}, "User")
        except FilterError:
            f = None
        ids = []

        def walk(node):
            if node[0] == "or":
                return walk(node[1]) and walk(node[2])
            if node[0] == "cmp" and node[1] == "eq" and node[2] == "id":
                ids.append(str(node[3]))
                return True
            return False
        if f is None or not walk(f.ast) or len(ids) > 50:
            self.fail(ctx, 400, "Request_UnsupportedQuery", "Unsupported query: delta $filter "
                      "supports only up to 50 'id eq' clauses joined by 'or'.")
        return ids

    def delta_page(self, ctx, nxt, items, hdrs):
        t = ctx.tenant
        sel = nxt["sel"]
        head = '{"@odata.context":%s' % jdump(self.metadata(ctx, "users(%s)" % ",".join(sel)))
        if nxt["m"] == "d":
            tok = self.encode_token({"t": t.id, "m": "d", "s": nxt["s"], "sel": sel,
                                     "ids": nxt.get("ids"), "ts": self.clock.now()})
            head += ',"@odata.deltaLink":%s' % jdump(self.link(ctx, "/v1.0/users/delta",
                                                               [("$deltatoken", tok)]))
        else:
            payload = {k: nxt[k] for k in ("m", "s", "e", "o", "sel", "ids") if k in nxt}
            payload["t"] = t.id
            head += ',"@odata.nextLink":%s' % jdump(self.link(
                ctx, "/v1.0/users/delta", [("$skiptoken", self.encode_token(payload))]))
        return Resp(200, head + ',"value":[' + ",".join(items) + "]}", hdrs)

    def delta_gone(self, ctx, tok, mode):
        """Resync required: 410 + Location (initial query, empty $deltatoken) or a 400
        syncStateNotFound / resyncRequired error, per config delta_expiry_mode."""
        mode = mode or self.config["delta_expiry_mode"]
        params = [("$select", ",".join(tok.get("sel") or []))] if tok.get("sel") else []
        if tok.get("ids"):
            params.append(("$filter", " or ".join("id eq '%s'" % i for i in tok["ids"])))
        params.append(("$deltatoken", ""))
        loc = self.link(ctx, "/v1.0/users/delta", params)
        if str(mode) == "syncStateNotFound":
            self.fail(ctx, 400, "syncStateNotFound", "The sync state generation is not found; "
                      "the delta token has expired. Please perform a full synchronization.")
        if str(mode) == "resyncRequired":
            self.fail(ctx, 400, "resyncRequired", "Resync required. Replace any local cached "
                      "copy of the data with a fresh copy from the server.")
        self.fail(ctx, 410, "resyncRequired", "Resync required. The delta token is no longer "
                  "valid; start again with the URL in the Location header.", [("Location", loc)])

    # groups -----------------------------------------------------------------------------------

    GROUP_CANON = {p.lower(): p for p in graph_model.GROUP_PROPS}
    DEVICE_PROPS = ["id", "accountEnabled", "deviceId", "displayName", "operatingSystem",
                    "operatingSystemVersion"]
    GROUP_DEFAULT = ["id", "createdDateTime", "description", "displayName", "groupTypes", "mail",
                     "mailEnabled", "mailNickname", "securityEnabled", "visibility"]

    def object_json(self, typ, obj, sel):
        """A directoryObject in a collection: @odata.type first, then the selected (or default)
        properties that exist on that type."""
        out = {"@odata.type": "#microsoft.graph." + typ}
        if typ == "user":
            props = sel or graph_model.USER_DEFAULT_SELECT
            for p in props:
                if p in graph_model.USER_PROP_SET:
                    out[p] = self.user_value(obj, p)
        elif typ == "group":
            for p in sel or self.GROUP_DEFAULT:
                if p in self.GROUP_CANON.values():
                    out[p] = obj.get(p)
        elif typ == "directoryRole":
            for p in sel or graph_model.DIRECTORY_ROLE_PROPS:
                if p in self.ROLE_CANON.values():
                    out[p] = obj.get(p)
        else:
            for p in sel or self.DEVICE_PROPS:
                if p in self.DEVICE_PROPS:
                    out[p] = obj.get(p)
        return out

    def paged(self, ctx, items, ctx_frag, size=None, count=None, render=None):
        """Generic offset paging with an opaque $skiptoken over a precomputed list."""
        size = size or self.page_size(ctx)
        start = 0
        if "$skiptoken" in ctx.q:
            start = self.decode_token(ctx, ctx.q["$skiptoken"], ctx.tenant)["o"]
        chunk = items[start:start + size]
        body = {"@odata.context": self.metadata(ctx, ctx_frag)}
        if count is not None and start == 0:
            body["@odata.count"] = count
        if start + size < len(items):
            body["@odata.nextLink"] = self.next_link(ctx, self.encode_token(
                {"t": ctx.tenant.id, "o": start + size}))
        body["value"] = [render(x) for x in chunk] if render else chunk
        return Resp(200, body)

    def find_group(self, ctx, gid):
        g = ctx.tenant.groups.get(gid)
        if g is None:
            self.fail(ctx, 404, "Request_ResourceNotFound", "Resource '%s' does not exist or one "
                      "of its queried reference-property objects are not present." % gid)
        return g

    def list_groups(self, ctx):
        self.require(ctx, GROUP_READ)
        sel = self.select(ctx, self.GROUP_CANON, "group")
        counting = self.check_count(ctx)
        flt = self.parse_filter(ctx, self.GROUP_CANON, "Group")
        t = ctx.tenant
        groups = [t.groups[i] for i in t.group_order]
        if flt:
            groups = [g for g in groups if flt.match(g)]
        return self.paged(ctx, groups, "groups(%s)" % ",".join(sel) if sel else "groups",
                          count=len(groups) if counting else None,
                          render=lambda g: {p: g.get(p) for p in (sel or self.GROUP_DEFAULT)})

    def get_group(self, ctx, gid):
        self.require(ctx, GROUP_READ)
        sel = self.select(ctx, self.GROUP_CANON, "group")
        g = self.find_group(ctx, gid)
        out = {"@odata.context": self.metadata(ctx, "groups/$entity")}
        out.update({p: g.get(p) for p in (sel or self.GROUP_DEFAULT)})
        return Resp(200, out)

    def group_members(self, ctx, gid, transitive, cast):
        """GET /groups/{id}/members|transitiveMembers[/microsoft.graph.user|group]: users, nested
        groups and devices (flattened when transitive), paged with nextLink. 3 / 5 RU."""
        self.require(ctx, GROUP_READ)
        known = dict(graph_model.USER_PROP_CANON)
        known.update(self.GROUP_CANON)
        known.update({p.lower(): p for p in self.DEVICE_PROPS})
        sel = self.select(ctx, known, "directoryObject")
        counting = self.check_count(ctx)
        g = self.find_group(ctx, gid)
        t = ctx.tenant
        if transitive:
            members = t.transitive_members(gid)
        else:
            members = []
            for mid in g["members"]:
                typ, obj = t.find_directory_object(mid)
                if typ and not (typ == "user" and obj["_state"] != "active"):
                    members.append((typ, obj))
        if cast:
            want = {"microsoft.graph.user": "user", "microsoft.graph.group": "group",
                    "microsoft.graph.device": "device"}.get(cast)
            if want is None:
                self.fail(ctx, 400, "BadRequest", "Resource not found for the segment '%s'." %
                          cast)
            if not ctx.advanced():
                self.fail(ctx, 400, "Request_UnsupportedQuery", "Unsupported Query. (casts need "
                          "ConsistencyLevel: eventual and $count=true)")
            members = [x for x in members if x[0] == want]
        ctx.ru = 5 if transitive else 3
        return self.paged(ctx, members, "directoryObjects",
                          count=len(members) if counting else None,
                          render=lambda x: self.object_json(x[0], x[1], sel))

    ROLE_CANON = {p.lower(): p for p in graph_model.DIRECTORY_ROLE_PROPS}
    MEMBER_OF_CASTS = {"microsoft.graph.group": "group",
                       "microsoft.graph.directoryRole": "directoryRole"}

    def member_of(self, ctx, ref, transitive, cast):
        """GET /users/{id}/memberOf|transitiveMemberOf[/microsoft.graph.group|directoryRole]:
        the user's groups (nested ones too when transitive), then the directory roles it holds
        (Global Administrator for a user flagged '_admin'), each with @odata.type. The
        directoryRole cast needs a user read role (User.Read.All, Directory.Read.All, ...); the
        rest a user or group read role. 2 RU."""
        want = self.MEMBER_OF_CASTS.get(cast) if cast else None
        if cast and want is None:
            self.fail(ctx, 400, "BadRequest", "Resource not found for the segment '%s'." % cast)
        self.require(ctx, USER_READ if want == "directoryRole" else USER_READ | GROUP_READ)
        known = {}
        if want != "directoryRole":
            known.update(self.GROUP_CANON)
        if want != "group":
            known.update(self.ROLE_CANON)
        sel = self.select(ctx, known, want or "directoryObject")
        counting = self.check_count(ctx)
        u = self.find_user(ctx, ref)
        t = ctx.tenant
        objs = []
        if want != "directoryRole":
            objs += [("group", g) for g in t.member_of(u["id"], transitive)]
        if want != "group":
            objs += [("directoryRole", r) for r in t.directory_roles(u["id"])]
        ctx.ru = 2
        frag = {"group": "groups", "directoryRole": "directoryRoles"}.get(want, "directoryObjects")
        return self.paged(ctx, objs, frag, count=len(objs) if counting else None,
                          render=lambda x: self.object_json(x[0], x[1], sel))

    # organization, SKUs, secure score, contracts, tenant information --------------------------

    SERVICE_OF_PLAN = {"EXCHANGE": "exchange", "SHAREPOINT": "SharePoint", "TEAMS": "TeamspaceAPI",
                       "MCO": "MicrosoftCommunicationsOnline", "YAMMER": "YammerEnterprise",
                       "INTUNE": "SCO", "MFA": "MultiFactorService", "AAD": "AADPremiumService",
                       "RMS": "RMSOnline", "OFFICESUBSCRIPTION": "MicrosoftOffice",
                       "BI_": "PowerBI", "FLOW": "ProcessSimple"}

    def org_json(self, ctx, t):
        d = t.doc
        org = d["org"]
        plans, seen = [], set()
        for s in d["skus"]:
            for p in s["servicePlans"]:
                if p["servicePlanId"] in seen:
                    continue
                seen.add(p["servicePlanId"])
                svc = next((v for k, v in self.SERVICE_OF_PLAN.items()
                            if p["servicePlanName"].startswith(k)), "MicrosoftOffice")
                plans.append({"assignedDateTime": d["createdDateTime"],
                              "capabilityStatus": "Enabled", "service": svc,
                              "servicePlanId": p["servicePlanId"]})
        return {
            "id": t.id, "deletedDateTime": None, "businessPhones": org["businessPhones"],
            "city": org["city"], "country": org["country"],
            "countryLetterCode": d["countryLetterCode"], "createdDateTime": d["createdDateTime"],
            "defaultUsageLocation": d["countryLetterCode"], "displayName": d["displayName"],
            "isMultipleDataLocationsForServicesEnabled": None, "marketingNotificationEmails": [],
            "onPremisesLastSyncDateTime": None, "onPremisesSyncEnabled": None,
            "partnerTenantType": "ResellerPartnerDelegatedAdmin" if d["partner"] else None,
            "postalCode": org["postalCode"], "preferredLanguage": org["preferredLanguage"],
            "securityComplianceNotificationMails": [], "securityComplianceNotificationPhones": [],
            "state": org["state"], "street": org["street"],
            "technicalNotificationMails": org["technicalNotificationMails"], "tenantType": "AAD",
            "directorySizeQuota": {"used": len(t.users) + len(t.groups), "total": 50000},
            "assignedPlans": plans, "privacyProfile": {"contactEmail": "", "statementUrl": ""},
            "provisionedPlans": [{"capabilityStatus": "Enabled", "provisioningStatus": "Success",
                                  "service": p["service"]} for p in plans],
            "verifiedDomains": [dict(x) for x in d["domains"]],
        }

    def organization(self, ctx, oid):
        self.require(ctx, ORG_READ)
        t = ctx.tenant
        sel = self.select(ctx, {k.lower(): k for k in self.org_json(ctx, t)}, "organization")
        org = self.org_json(ctx, t)
        if sel:
            org = {k: org[k] for k in sel}
        if oid is None:
            return Resp(200, {"@odata.context": self.metadata(ctx, "organization"),
                              "value": [org]})
        if oid.lower() != t.id.lower():
            self.fail(ctx, 404, "Request_ResourceNotFound", "Resource '%s' does not exist or one "
                      "of its queried reference-property objects are not present." % oid)
        out = {"@odata.context": self.metadata(ctx, "organization/$entity")}
        out.update(org)
        return Resp(200, out)

    def subscribed_skus(self, ctx, sid):
        """GET /subscribedSkus (only $select supported; consumedUnits live). 3 RU."""
        self.require(ctx, ORG_READ)
        ctx.ru = 3
        if any(k in ctx.q for k in ("$filter", "$top", "$orderby", "$count")):
            self.fail(ctx, 400, "Request_UnsupportedQuery", "Only $select is supported on "
                      "subscribedSkus.")
        skus = ctx.tenant.subscribed_skus()
        keys = {k.lower(): k for k in (skus[0] if skus else {"id": 1})}
        sel = self.select(ctx, keys, "subscribedSku")
        if sel:
            skus = [{k: s.get(k) for k in sel} for s in skus]
        if sid is not None:
            s = next((x for x in ctx.tenant.subscribed_skus() if x["id"] == sid), None)
            if s is None:
                self.fail(ctx, 404, "Request_ResourceNotFound", "Resource '%s' does not exist or "
                          "one of its queried reference-property objects are not present." % sid)
            out = {"@odata.context": self.metadata(ctx, "subscribedSkus/$entity")}
            out.update(s)
            return Resp(200, out)
        return Resp(200, {"@odata.context": self.metadata(ctx, "subscribedSkus"), "value": skus})

    def secure_scores(self, ctx, sid):
        """GET /security/secureScores: one per day for up to 90 days, newest first; $top $skip
        $filter $count; a nextLink ($skip) when $top leaves more."""
        self.require(ctx, SECURITY_READ)
        t = ctx.tenant
        days = t.secure_score_days(self.clock.now())
        if sid is not None:
            date = sid.rsplit("_", 1)[-1]
            if not sid.startswith(t.id) or date not in days:
                self.fail(ctx, 404, "itemNotFound", "Secure score '%s' was not found." % sid)
            return Resp(200, dict({"@odata.context": self.metadata(
                ctx, "security/secureScores/$entity")}, **t.secure_score(date)))
        canon = {"id": "id", "createddatetime": "createdDateTime", "azuretenantid":
                 "azureTenantId", "currentscore": "currentScore", "maxscore": "maxScore"}
        flt = self.parse_filter(ctx, canon, "secureScore", advanced_rules=False)
        skip = 0
        if "$skip" in ctx.q:
            try:
                skip = max(0, int(ctx.q["$skip"]))
            except ValueError:
                self.fail(ctx, 400, "BadRequest", "Invalid $skip value.")
        top = self.page_size(ctx) if "$top" in ctx.q else None
        cap = int(self.config["score_page_size"])
        if cap > 0:
            top = min(top, cap) if top else cap
        counts = t.score_user_counts()  # once, not once per day (90 scans of the directory)
        if flt:
            objs = [s for s in (t.secure_score(d, counts) for d in days) if flt.match(s)]
            total = len(objs)
            page = objs[skip:skip + top] if top else objs[skip:]
        else:
            total = len(days)
            page = [t.secure_score(d, counts) for d in (days[skip:skip + top] if top else days[skip:])]
        body = {"@odata.context": self.metadata(ctx, "security/secureScores")}
        if ctx.q.get("$count", "").lower() == "true":
            body["@odata.count"] = total
        if top and skip + top < total:
            params = [(k, v) for k, v in urllib.parse.parse_qsl(ctx.query, keep_blank_values=True)
                      if k.lower().lstrip("$") != "skip"]
            params.append(("$skip", str(skip + top)))
            body["@odata.nextLink"] = self.link(ctx, ctx.path, params)
        body["value"] = page
        return Resp(200, body)

    def control_profiles(self, ctx, pid):
        self.require(ctx, SECURITY_READ)
        profiles = ctx.tenant.control_profiles()
        if pid is not None:
            p = next((x for x in profiles if x["id"] == pid), None)
            if p is None:
                self.fail(ctx, 404, "itemNotFound", "Control profile '%s' was not found." % pid)
            return Resp(200, dict({"@odata.context": self.metadata(
                ctx, "security/secureScoreControlProfiles/$entity")}, **p))
        canon = {k.lower(): k for k in ("id", "controlCategory", "service", "tier", "title",
                                        "deprecated", "maxScore", "rank", "actionType")}
        flt = self.parse_filter(ctx, canon, "secureScoreControlProfile", advanced_rules=False)
        if flt:
            profiles = [p for p in profiles if flt.match(p)]
        return self.paged(ctx, profiles, "security/secureScoreControlProfiles",
                          size=self.page_size(ctx, default=100))

    def contracts(self, ctx, cid):
        """GET /contracts (partner tenants only; others 403 Forbidden). 3 RU."""
        self.require(ctx, CONTRACT_READ)
        t = ctx.tenant
        ctx.ru = 3
        if not t.head["partner"]:
            self.fail(ctx, 403, "Forbidden", "This operation is only supported for partner "
                      "tenants (contracts exist only in CSP, syndication and advisor partner "
                      "tenants).")
        items = t.head["contracts"]
        if cid is not None:
            c = next((x for x in items if x["id"] == cid), None)
            if c is None:
                self.fail(ctx, 404, "Request_ResourceNotFound", "Resource '%s' does not exist or "
                          "one of its queried reference-property objects are not present." % cid)
            return Resp(200, dict({"@odata.context": self.metadata(ctx, "contracts/$entity")},
                                  **c))
        canon = {k.lower(): k for k in ("customerId", "defaultDomainName", "displayName", "id",
                                        "contractType")}
        flt = self.parse_filter(ctx, canon, "Contract", advanced_rules=False)
        sel = self.select(ctx, canon, "contract")
        if flt:
            items = [c for c in items if flt.match(c)]
        return self.paged(ctx, items, "contracts",
                          render=lambda c: {k: c[k] for k in sel} if sel else dict(c))

    def tenant_information(self, ctx, seg):
        """findTenantInformationByTenantId(tenantId='..') / ByDomainName(domainName='..')."""
        m = re.match(r"^(findTenantInformationByTenantId|findTenantInformationByDomainName|"
                     r"microsoft\.graph\.findTenantInformationBy(?:TenantId|DomainName))"
                     r"\((tenantId|domainName)='([^']*)'\)$", seg)
        if not m:
            self.fail(ctx, 400, "BadRequest", "Resource not found for the segment '%s'." % seg)
        self.require(ctx, TENANT_INFO_READ)
        other = self.state.tenant(m.group(3))
        if other is None or (m.group(2) == "tenantId" and other.id.lower() != m.group(3).lower()):
            self.fail(ctx, 404, "Request_ResourceNotFound", "Tenant information for '%s' was not "
                      "found." % m.group(3))
        return Resp(200, {"@odata.context": self.metadata(ctx, "microsoft.graph.tenantInformation"),
                          "tenantId": other.id, "federationBrandName": None,
                          "displayName": other.display_name,
                          "defaultDomainName": other.default_domain()})

    # $batch -----------------------------------------------------------------------------------

    def batch(self, ctx):
        """POST /$batch: <= 20 requests, dependsOn (424 on failed dependency), responses in
        shuffled order, per-part faults (429 with Retry-After in the part headers); a
        batch_partial fault holds parts back behind an @odata.nextLink (GET: batch_rest)."""
        if ctx.method == "GET" and "$skiptoken" in ctx.q:
            return self.batch_rest(ctx)
        if ctx.method != "POST":
            self.fail(ctx, 405, "Request_BadRequest", "Specified HTTP method is not allowed for "
                      "the request target.")
        try:
            doc = json.loads(ctx.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            doc = None
        reqs = doc.get("requests") if isinstance(doc, dict) else None
        if not isinstance(reqs, list) or not reqs:
            self.fail(ctx, 400, "BadRequest", "Invalid batch payload format.")
        if len(reqs) > 20:
            self.fail(ctx, 400, "BadRequest", "Number of batch requests exceeds the maximum of "
                      "20.")
        ids = []
        for r in reqs:
            if (not isinstance(r, dict) or not isinstance(r.get("id"), str)
                    or not isinstance(r.get("url"), str) or not isinstance(r.get("method"), str)):
                self.fail(ctx, 400, "BadRequest", "Invalid batch payload format: every request "
                          "needs string id, method and url.")
            if r["id"] in ids:
                self.fail(ctx, 400, "BadRequest", "Batch request contains duplicate id '%s'." %
                          r["id"])
            ids.append(r["id"])
            if r.get("url", "").lower().startswith(("http://", "https://")):
                self.fail(ctx, 400, "BadRequest", "Invalid request URL '%s': batch URLs must be "
                          "relative." % r["url"])
        for r in reqs:
            for dep in r.get("dependsOn") or []:
                if dep not in ids:
                    self.fail(ctx, 400, "BadRequest", "Request '%s' depends on unknown request "
                              "'%s'." % (r["id"], dep))
        status = {}
        out = []
        pending = list(reqs)
        while pending:
            progressed = False
            for r in list(pending):
                deps = r.get("dependsOn") or []
                if any(d not in status for d in deps):
                    continue
                pending.remove(r)
                progressed = True
                if any(status[d] >= 400 for d in deps):
                    part = {"id": r["id"], "status": 424, "body": {"error": {
                        "code": "FailedDependency",
                        "message": "The request failed because of a failed dependency."}}}
                else:
                    part = self.batch_part(ctx, r)
                status[r["id"]] = part["status"]
                out.append(part)
            if not progressed:
                self.fail(ctx, 400, "BadRequest", "Batch request dependsOn forms a cycle.")
        ctx.ru = 1
        f = ctx.fault or {}
        if f.get("batch_partial") is None:
            return Resp(200, {"responses": self.batch_order(out)})
        # Graph "may return a batch response as soon as any of the individual requests has
        # completed", with a nextLink to follow for the rest (json-batching.md, before 2024)
        k = max(0, int(f["batch_partial"]))
        body = {"responses": self.batch_order(out[:k])}
        if out[k:] and f.get("next_link", True):
            self.batch_rest_seq += 1
            key = self.batch_rest_seq
            self.batch_rests[key] = out[k:]
            while len(self.batch_rests) > 1000:
                del self.batch_rests[next(iter(self.batch_rests))]
            body["@odata.nextLink"] = self.batch_rest_link(ctx, key, 0,
                                                           int(f.get("next_parts") or 0),
                                                           int(f.get("next_empty") or 0))
        return Resp(200, body)

    def batch_order(self, parts):
        """The parts of an answer in the order sent (shuffled unless config batch_shuffle is
        off)."""
        parts = list(parts)
        if self.config["batch_shuffle"]:
            self.rng.shuffle(parts)
        return parts

    def batch_rest_link(self, ctx, key, offset, per_page, empty=0):
        tok = self.encode_token({"t": ctx.tenant.id, "b": key, "o": offset, "n": per_page,
                                 "e": empty})
        return self.link(ctx, "/v1.0/$batch", [("$skiptoken", tok)])

    def batch_rest(self, ctx):
        """GET on a batch answer's @odata.nextLink: the parts held back from it, at most
        next_parts of them (with a nextLink while more remain), after next_empty pages that hold
        none. The same link may be read again; one from another tenant, forged or from before a
        reset: 400."""
        p = self.decode_token(ctx, ctx.q["$skiptoken"], ctx.tenant)
        rest = self.batch_rests.get(p.get("b"))
        if p["stale"] or rest is None:
            self.fail(ctx, 400, "Request_BadRequest", "The specified token is invalid or has "
                      "expired.")
        o, n, e = int(p.get("o", 0)), int(p.get("n", 0)), int(p.get("e", 0))
        page = [] if e > 0 else rest[o:o + n] if n > 0 else rest[o:]
        body = {"responses": self.batch_order(page)}
        if o + len(page) < len(rest):
            body["@odata.nextLink"] = self.batch_rest_link(ctx, p["b"], o + len(page), n,
                                                           max(0, e - 1))
        ctx.ru = 1
        return Resp(200, body)

    def batch_part(self, outer, r):
        t0 = time.time()
        url = r["url"].lstrip("/")
        path, _, query = url.partition("?")
        headers = {k.lower(): str(v) for k, v in (r.get("headers") or {}).items()}
        headers.setdefault("authorization", outer.header("Authorization") or "")
        body = r.get("body")
        if body is not None and "content-type" not in headers:
            return {"id": r["id"], "status": 400, "body": {"error": {
                "code": "BadRequest", "message": "Content-Type header is required when a body "
                "is specified."}}}
        raw = b"" if body is None else (body.encode() if isinstance(body, str) else
                                        jdump(body).encode())
        ctx = Ctx(r["method"].upper(), "/v1.0/" + path, query, headers, raw, outer.base)
        ctx.token, ctx.tenant = outer.token, outer.tenant
        fault = self.pick_fault(ctx.path, query, outer.token["tenant"], "graph",
                                batch_part=True)
        resp = None
        if fault:
            resp = self.fault_response(ctx, fault, "graph", outer.token["tenant"],
                                       outer.token["app"])
        if resp is None:
            try:
                resp = self.route(ctx)
                self.throttle(ctx, resp)
            except GraphError as e:
                resp = e.resp
        part = {"id": r["id"], "status": resp.status, "headers": {}}
        hdrs = part["headers"]
        for k, v in resp.headers:
            if k.lower() in ("retry-after", "location", "x-ms-throttle-scope",
                             "x-ms-throttle-information", "preference-applied"):
                hdrs[k] = v
        if resp.status < 300:
            hdrs["x-ms-resource-unit"] = str(ctx.ru)
        if resp.body is not None:
            hdrs["Cache-Control"] = "no-cache"
            hdrs["OData-Version"] = "4.0"
            hdrs["Content-Type"] = resp.ctype
            if isinstance(resp.body, (str, bytes)):
                text = resp.body if isinstance(resp.body, str) else resp.body.decode()
                part["body"] = json.loads(text) if resp.ctype != "text/plain" else text
            else:
                part["body"] = resp.body
        elif resp.status == 204:
            part["body"] = None
        if not hdrs:
            del part["headers"]
        self.log_request("batch-part", ctx.method, "/v1.0/" + url, outer.token["tenant"],
                         outer.token["app"], resp.status, t0, fault, batch=outer.request_id)
        return part

    # -------------------------------------------------------------------------------------------
    # control API

    def control(self, method, path, query, body):
        """JSON control API under /_fake/ (see README). Returns a Resp."""
        try:
            data = json.loads(body.decode("utf-8")) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            return self.cerr(400, "body is not JSON")
        q = dict(urllib.parse.parse_qsl(query))
        segs = [urllib.parse.unquote(s) for s in path[len("/_fake/"):].strip("/").split("/")]
        with self.lock:
            try:
                return self._control(method, segs, q, data)
            except (ValueError, KeyError, TypeError) as e:
                return self.cerr(400, "%s: %s" % (type(e).__name__, e))

    @staticmethod
    def cerr(status, msg):
        return Resp(status, {"error": msg}, ctype="application/json")

    @staticmethod
    def cok(obj, status=200):
        return Resp(status, obj, ctype="application/json")

    def _ctenant(self, ref):
        t = self.state.tenant(ref, control=True)
        if t is None:
            raise KeyError("unknown tenant %r" % ref)
        return t

    def _cuser(self, t, ref):
        u = t.users.get(ref)
        if u is None:
            uid = t.upn.get(ref.lower())
            u = t.users.get(uid) if uid else None
        if u is None:
            raise KeyError("unknown user %r" % ref)
        return u

    def tenant_summary(self, t):
        states = collections.Counter(t.users[i]["_state"] for i in t.order)
        grants = t.head["grants"]
        return {"key": t.key, "id": t.id, "displayName": t.display_name,
                "defaultDomain": t.default_domain(),
                "domains": [d["name"] for d in t.domains()], "partner": t.head["partner"],
                "users": states.get("active", 0), "softDeleted": states.get("softDeleted", 0),
                "hardDeleted": states.get("hardDeleted", 0), "groups": len(t.groups),
                "apps": {cid: {"consent": g.get("consent", True), "roles": g.get("roles", []),
                               "adminRole": g.get("adminRole", False)}
                         for cid, g in grants.items()},
                "seq": t.seq()}

    def _control(self, method, segs, q, data):
        s0 = segs[0] if segs else ""
        n = len(segs)
        if s0 == "health":
            return self.cok({"ok": True, "tenants": len(self.state.tenants)})
        if s0 == "record" and n == 1 and method in ("GET", "POST", "DELETE"):
            return self.record_control(method, data)
        if s0 == "reset" and method == "POST":
            self.reset(data.get("seed"), data.get("tenants"))
            return self.cok({"ok": True, "generation": self.generation})
        if s0 == "save" and method == "POST":
            path = data.get("path") or self.state_path
            if not path:
                return self.cerr(400, "no path (start with --state or pass {\"path\": ...})")
            self.save(path)
            return self.cok({"ok": True, "path": path})
        if s0 == "warm" and method == "POST":
            return self.cok(self.warm(data.get("select")))
        if s0 == "state" and method == "GET":
            doc = self.state.to_doc()
            if q.get("tenant"):
                tid = self._ctenant(q["tenant"]).id
                doc["tenants"] = [x for x in doc["tenants"] if x["id"] == tid]
            doc["clock"] = {"now": iso(self.clock.now()), "offset_seconds": self.clock.offset}
            doc["config"] = self.config
            return self.cok(doc)
        if s0 == "clock":
            if method == "POST":
                if "set" in data:
                    self.clock.set(parse_iso(data["set"]))
                if "advance_days" in data:
                    self.clock.advance(float(data["advance_days"]) * graph_model.DAY)
                if "advance_seconds" in data:
                    self.clock.advance(float(data["advance_seconds"]))
            return self.cok({"now": iso(self.clock.now()), "offset_seconds": self.clock.offset})
        if s0 == "config":
            if method == "POST":
                for k, v in data.items():
                    if k not in DEFAULT_CONFIG:
                        return self.cerr(400, "unknown config key %r" % k)
                    self.config[k] = v
            return self.cok(self.config)
        if s0 == "requests":
            if method == "DELETE":
                self.requests.clear()
                return self.cok({"ok": True})
            return self.cok(self.request_report(q))
        if s0 == "faults":
            if method == "POST":
                specs = data if isinstance(data, list) else [data]
                return self.cok({"faults": [self.add_fault(f) for f in specs]}, 201)
            if method == "DELETE":
                if n == 2:
                    self.faults = [f for f in self.faults if str(f["id"]) != segs[1]]
                else:
                    self.faults = []
                return self.cok({"ok": True})
            return self.cok({"faults": self.faults})
        if s0 == "tokens":
            if n == 2 and segs[1] == "expire" and method == "POST":
                tid = self._ctenant(data["tenant"]).id if data.get("tenant") else None
                k = 0
                for rec in self.tokens.values():
                    if tid is None or rec["tenant"] == tid:
                        rec["expired"] = True
                        k += 1
                return self.cok({"expired": k})
            return self.cok({"tokens": [{"tenant": r["tenant"], "app": r["app"],
                                         "roles": sorted(r["roles"]), "exp": iso(r["exp"]),
                                         "expired": r["expired"]} for r in self.tokens.values()]})
        if s0 == "apps":
            return self._control_apps(method, segs, data)
        if s0 == "tenants":
            if n == 1:
                if method == "POST":
                    return self.cok(self.add_tenant(data), 201)
                return self.cok({"tenants": [self.tenant_summary(t) for t in self.state.tenants]})
            t = self._ctenant(segs[1])
            if n == 2:
                return self.cok(self.tenant_summary(t))
            return self._control_tenant(method, t, segs[2:], q, data)
        return self.cerr(404, "unknown control endpoint /_fake/%s" % "/".join(segs))

    def request_report(self, q):
        tid = self._ctenant(q["tenant"]).id if q.get("tenant") else None
        pat = re.compile(q["path"]) if q.get("path") else None
        since = int(q.get("since", 0))
        rows = [r for r in self.requests if r["seq"] > since
                and (tid is None or r["tenant"] == tid)
                and (pat is None or pat.search(r["path"]))
                and (not q.get("kind") or r["kind"] == q["kind"])
                and (not q.get("status") or str(r["status"]) == q["status"])]
        counts = collections.Counter(r["tenant"] for r in rows if r["kind"] != "batch-part")
        out = {"total": len(rows), "counts": dict(counts), "last_seq": self.req_seq}
        if q.get("summary") not in ("1", "true"):
            out["requests"] = rows
        return out

    def _control_apps(self, method, segs, data):
        apps = self.state.apps
        if len(segs) == 1:
            if method == "POST":
                cid = data.get("client_id") or str(uuid.uuid4())
                if cid in apps:
                    return self.cerr(409, "app exists")
                apps[cid] = {"displayName": data.get("displayName", "test app"),
                             "homeTenant": data.get("homeTenant"), "secrets": [],
                             "certificates": []}
                if data.get("secret"):
                    apps[cid]["secrets"].append({"keyId": str(uuid.uuid4()),
                                                 "value": data["secret"],
                                                 "endDateTime": data.get("secret_end",
                                                                         "2099-12-31T00:00:00Z")})
                return self.cok(dict(apps[cid], client_id=cid), 201)
            return self.cok({"apps": apps})
        cid = segs[1]
        if cid not in apps:
            return self.cerr(404, "unknown app %r" % cid)
        app = apps[cid]
        op = segs[2] if len(segs) > 2 else None
        if op is None and method == "PATCH":
            for k in ("displayName", "secrets", "certificates"):
                if k in data:
                    app[k] = data[k]
        elif op == "secrets" and method == "POST":
            app["secrets"].append({"keyId": str(uuid.uuid4()), "value": data["value"],
                                   "endDateTime": data.get("endDateTime",
                                                           "2099-12-31T00:00:00Z")})
        elif op == "expire-secrets" and method == "POST":
            past = iso(self.clock.now() - 1)
            for s in app["secrets"]:
                if not data.get("keyId") or s["keyId"] == data["keyId"]:
                    s["endDateTime"] = past
        elif op == "certificates" and method == "POST":
            app["certificates"].append(self.cert_entry(data))
        elif op == "certificates" and method == "DELETE":
            app["certificates"] = []
        elif op is not None or method != "GET":
            return self.cerr(404, "unknown app operation")
        return self.cok(dict(app, client_id=cid))

    def add_tenant(self, data):
        """POST /_fake/tenants: a new generated tenant (optionally consented, in contracts)."""
        key = data.get("key") or "x%03d" % (len(self.state.tenants) + 1)
        if self.state.tenant(key, control=True):
            raise ValueError("tenant %r exists" % key)
        plan = [(p, 0.9) for p in data.get("skus", ["SPE_E3"])]
        doc = graph_data.make_tenant(self.seed, key, data.get("id"),
                                     data.get("displayName", key.title()), data.get("domain"),
                                     int(data.get("users", 10)), data.get("country", "US"),
                                     bool(data.get("hybrid", False)), plan)
        if data.get("grant", True):
            doc["grants"][data.get("client_id", graph_data.DEMO_CLIENT_ID)] = {
                "consent": bool(data.get("consent", True)),
                "roles": list(data.get("roles", graph_data.ALL_ROLES)), "adminRole": False}
        self.state.doc["tenants"].append(doc)
        t = graph_model.Tenant(doc)
        self.state.tenants.append(t)
        self.state.reindex()
        if data.get("contract", True):
            partner = next((x for x in self.state.tenants if x.head["partner"]), None)
            if partner:
                partner.head["contracts"].append(graph_data.make_contract(
                    random.Random(key), doc))
        return self.tenant_summary(t)

    def _control_tenant(self, method, t, segs, q, data):
        what = segs[0]
        n = len(segs)
        now = self.clock.now()
        if what == "users":
            if n == 1 and method == "POST":
                props = dict(data)
                if not props.get("userPrincipalName"):
                    local = graph_data.ascii_fold((props.get("displayName") or "user")
                                                  .replace(" ", "."))
                    props["userPrincipalName"] = "%s@%s" % (local, t.default_domain())
                props.setdefault("createdDateTime", iso(now))
                props.setdefault("displayName", props["userPrincipalName"].split("@")[0])
                u = t.create_user(props, str(uuid.uuid4()))
                return self.cok(u, 201)
            if n == 1:
                return self.cok({"users": [t.users[i] for i in t.order]})
            u = self._cuser(t, segs[1])
            if n == 2 and method == "GET":
                return self.cok(u)
            if n == 2 and method == "PATCH":
                changed = t.update_user(u, data)
                return self.cok({"changed": changed, "user": u})
            if n == 2 and method == "DELETE":
                t.hard_delete(u)
                return self.cok({"ok": True})
            if n == 3 and method == "POST":
                op = segs[2]
                if op == "disable":
                    t.update_user(u, {"accountEnabled": False})
                elif op == "enable":
                    t.update_user(u, {"accountEnabled": True})
                elif op == "soft-delete":
                    if u["_state"] != "active":
                        raise ValueError("user is not active")
                    t.soft_delete(u, now)
                elif op == "restore":
                    if u["_state"] != "softDeleted":
                        raise ValueError("user is not soft-deleted")
                    t.restore(u)
                elif op == "hard-delete":
                    t.hard_delete(u)
                elif op == "admin":
                    u["_admin"] = bool(data.get("admin", True))
                else:
                    return self.cerr(404, "unknown user operation %r" % op)
                return self.cok(u)
        if what == "groups":
            if n == 1 and method == "POST":
                gid = data.get("id") or str(uuid.uuid4())
                g = {"id": gid, "displayName": data["displayName"],
                     "description": data.get("description"), "createdDateTime": iso(now),
                     "groupTypes": data.get("groupTypes", []), "mail": data.get("mail"),
                     "mailEnabled": bool(data.get("mailEnabled", False)),
                     "mailNickname": data.get("mailNickname", graph_data.ascii_fold(
                         data["displayName"].replace(" ", ""))),
                     "securityEnabled": bool(data.get("securityEnabled", True)),
                     "visibility": None, "members": list(data.get("members", []))}
                t.groups[gid] = g
                t.group_order.append(gid)
                return self.cok(g, 201)
            if n == 1:
                return self.cok({"groups": [t.groups[i] for i in t.group_order]})
            g = t.groups.get(segs[1]) or next((x for x in t.groups.values()
                                               if x["displayName"] == segs[1]), None)
            if g is None:
                raise KeyError("unknown group %r" % segs[1])
            if n == 3 and segs[2] == "members" and method == "POST":
                for mid in data.get("add", []):
                    if t.find_directory_object(mid)[0] is None:
                        raise KeyError("unknown member %r" % mid)
                    if mid not in g["members"]:
                        g["members"].append(mid)
                for mid in data.get("remove", []):
                    if mid in g["members"]:
                        g["members"].remove(mid)
            elif n == 2 and method == "DELETE":
                del t.groups[g["id"]]
                t.group_order.remove(g["id"])
                for x in t.groups.values():
                    if g["id"] in x["members"]:
                        x["members"].remove(g["id"])
                return self.cok({"ok": True})
            return self.cok(g)
        if what in ("secure-scores", "secure-score"):
            model = t.doc["secureScore"]
            if n == 2 and method in ("PUT", "POST", "PATCH"):
                date = segs[1][:10]
                parse_iso(date)
                if method == "PATCH":
                    model["overrides"].setdefault(date, {}).update(data)
                else:
                    model["overrides"][date] = dict(data)
                return self.cok(t.secure_score(date) if not data.get("missing") else {"ok": True})
            if n == 2 and method == "DELETE":
                model["overrides"].pop(segs[1][:10], None)
                return self.cok({"ok": True})
            if n == 1 and method == "PATCH":
                for k in ("since",):
                    if k in data:
                        model[k] = data[k]
            days = t.secure_score_days(now)
            return self.cok({"days": days, "since": model.get("since"),
                             "overrides": model["overrides"]})
        if what == "skus":
            skus = t.doc["skus"]
            if n == 1 and method == "POST":
                part = data.get("skuPartNumber")
                row = graph_data.SKU_BY_PART.get(part)
                sku_id = data.get("skuId") or (row[1] if row else None)
                if not sku_id:
                    raise ValueError("need skuId or a known skuPartNumber")
                plans = row[2] if row else []
                sku = {"accountName": t.display_name, "accountId": str(uuid.uuid4()),
                       "appliesTo": "User", "capabilityStatus": data.get("capabilityStatus",
                                                                         "Enabled"),
                       "consumedUnits": data.get("consumedUnits"),
                       "id": "%s_%s" % (t.id, sku_id),
                       "prepaidUnits": dict({"enabled": 0, "lockedOut": 0, "suspended": 0,
                                             "warning": 0}, **data.get("prepaidUnits", {})),
                       "servicePlans": [{"servicePlanId": pid, "servicePlanName": pn,
                                         "provisioningStatus": "Success", "appliesTo": "User"}
                                        for pn, pid in plans],
                       "skuId": sku_id, "skuPartNumber": part or "UNKNOWN",
                       "subscriptionIds": [str(uuid.uuid4())]}
                skus.append(sku)
                return self.cok(sku, 201)
            if n == 1:
                return self.cok({"skus": t.subscribed_skus()})
            sku = next((s for s in skus if segs[1] in (s["skuId"], s["skuPartNumber"], s["id"])),
                       None)
            if sku is None:
                raise KeyError("unknown sku %r" % segs[1])
            if method == "DELETE":
                skus.remove(sku)
                return self.cok({"ok": True})
            if method == "PATCH":
                for k, v in data.items():
                    if k == "prepaidUnits":
                        sku["prepaidUnits"].update(v)
                    elif k in ("enabled", "suspended", "warning", "lockedOut"):
                        sku["prepaidUnits"][k] = v
                    elif k in ("capabilityStatus", "consumedUnits", "appliesTo",
                               "skuPartNumber", "accountName"):
                        sku[k] = v
                    else:
                        raise ValueError("cannot set %r on a sku" % k)
            return self.cok(sku)
        if what == "grants":
            if n != 2:
                return self.cok(t.head["grants"])
            cid = segs[1]
            if method == "DELETE":
                t.head["grants"].pop(cid, None)
                return self.cok({"ok": True})
            g = t.head["grants"].setdefault(cid, {"consent": True, "roles": [],
                                                 "adminRole": False})
            if "consent" in data:
                g["consent"] = bool(data["consent"])
            if "roles" in data:
                g["roles"] = list(data["roles"])
            for r in data.get("add_roles", []):
                if r not in g["roles"]:
                    g["roles"].append(r)
            for r in data.get("remove_roles", []):
                if r in g["roles"]:
                    g["roles"].remove(r)
            if "adminRole" in data:
                g["adminRole"] = bool(data["adminRole"])
            return self.cok(g)
        if what == "contracts":
            if t.head["partner"] and method == "POST":
                cust = self._ctenant(data["customer"])
                c = graph_data.make_contract(random.Random(cust.id), cust.head,
                                             data.get("contractType", "ResellerPartner"),
                                             data.get("displayName"))
                t.head["contracts"].append(c)
                return self.cok(c, 201)
            if method == "DELETE" and n == 2:
                t.head["contracts"] = [c for c in t.head["contracts"]
                                      if segs[1] not in (c["id"], c["customerId"])]
            return self.cok({"contracts": t.head["contracts"]})
        return self.cerr(404, "unknown tenant control endpoint %r" % what)


# -----------------------------------------------------------------------------------------------
# HTTP plumbing

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 120

    def version_string(self):
        return self.server_version

    def setup(self):
        if self.server.tls:
            self.request.settimeout(30)
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        BaseHTTPRequestHandler.setup(self)

    def finish(self):
        try:
            BaseHTTPRequestHandler.finish(self)
        finally:
            if self.server.tls:  # the wrapped socket is ours to close (socketserver closes
                try:             # the original, detached one)
                    self.request.close()
                except OSError:
                    pass

    def read_body(self):
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, resp, gzip_ok, rec=None):
        body = resp.body_bytes()
        if resp.malformed and body:
            body = body[:max(1, len(body) * 2 // 3)]
        encoded = False
        if gzip_ok and body:
            body = gzip.compress(body, compresslevel=1)
            encoded = True
        self.send_response(resp.status)
        if body or resp.status not in (204, 304):
            self.send_header("Content-Type", resp.ctype)
        for k, v in resp.headers:
            self.send_header(k, v)
        if encoded:
            self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
        self.send_header("Content-Length", str(len(body)))
        if resp.drop:
            self.send_header("Connection", "close")
        # Headers and body in one write: two small writes would meet Nagle + delayed ACK.
        self._headers_buffer.append(b"\r\n")
        head = b"".join(self._headers_buffer)
        self._headers_buffer = []
        if rec is not None:
            self.server.fake.record(rec, head, body[:len(body) // 2] if resp.drop else body,
                                    resp.drop)
        if resp.drop:
            self.wfile.write(head + body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                if resp.drop == "reset":
                    import struct
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(head + body)

    def _do(self):
        try:
            self.server.fake.handle(self)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _do

    def log_message(self, fmt, *args):
        log = self.server.access_log
        if log:
            log.write("%s %s\n" % (self.log_date_time_string(), fmt % args))
            log.flush()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512

    def __init__(self, addr, fake, tls=None, access_log=None):
        ThreadingHTTPServer.__init__(self, addr, Handler)
        self.fake = fake
        self.tls = tls
        self.access_log = access_log

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, TimeoutError)):
            return
        ThreadingHTTPServer.handle_error(self, request, client_address)


def start(fake, host="127.0.0.1", port=0, tls_cert=None, tls_key=None, access_log=None):
    """Start serving fake in a background thread; returns the Server (server.server_address
    has the port; call server.shutdown() to stop)."""
    ctx = None
    if tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls_cert, tls_key)
    srv = Server((host, port), fake, ctx, access_log)
    th = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    th.start()
    return srv


def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake Microsoft Graph + identity platform token "
                                 "endpoint (see tests/fakes/README.md).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", help="write the bound port here (atomically)")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--state", help="load state from this JSON file (created from the seed when "
                    "absent); POST /_fake/save and SIGTERM write it back")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--tenants", default="demo", help="'demo', 'NxM' (N tenants x M users) or "
                    "'demo+NxM'; the partner tenant is always there")
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--token-lifetime", type=int, default=3599)
    ap.add_argument("--app-cert", action="append", default=[],
                    help="PEM certificate to register on the demo app (repeatable)")
    ap.add_argument("--now", help="start the fake clock at this ISO time (default: real now)")
    ap.add_argument("--access-log", help="append an access log to this file")
    ap.add_argument("--eager", action="store_true", help="generate every tenant before writing "
                    "the port file (benchmarks; default: NxM tenants materialize on first use)")
    ap.add_argument("--warm-select", help="with --eager: also pre-render users/delta JSON for "
                    "this $select")
    a = ap.parse_args(argv)
    sys.setswitchinterval(0.001)  # sleeping (latency) threads get the GIL back promptly
    if bool(a.tls_cert) != bool(a.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    fake = FakeGraph(a.seed, a.tenants, a.state, a.now, a.app_cert,
                     {"latency_ms": a.latency_ms, "token_lifetime": a.token_lifetime})
    if a.eager:
        fake.warm(a.warm_select)
    log = open(a.access_log, "a", encoding="utf-8") if a.access_log else None
    srv = start(fake, a.host, a.port, a.tls_cert, a.tls_key, log)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.replace(tmp, a.port_file)
    done = threading.Event()

    def stop(_sig, _frm):
        done.set()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    done.wait()
    srv.shutdown()
    if a.state:
        with fake.lock:
            fake.save(a.state)
    fake.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
