#!/usr/bin/env python3
"""fake_syncro: a loopback fake of the Syncro MSP REST API for tests, the demo and benchmarks.

Serves http://127.0.0.1:PORT/api/v1 (customers, contacts, tickets, comments,
invoices + line items, schedules + line items, products, /me) with Syncro's
shapes and quirks (syncro_store.py), plus:
  - auth: "Authorization: Bearer KEY", bare "Authorization: KEY" or ?api_key=KEY;
  - a sliding-window rate limit per client IP answering 429;
  - a JSON control API under /_fake/ (no auth, not rate limited): reset, state
    dump, request log, seeding, bulk generation, fault injection, config.
See tests/fakes/SYNCRO.md. Python 3 standard library only.

Usage: fake_syncro.py --port 0 --port-file F [--api-key KEY] [--rate-limit 180]
       [--window 60] [--seed N] [--data demo|none|FILE.json] [--generate C,N]
       [--latency-ms N] [--verbose]
"""

import argparse
import collections
import json
import os
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import syncro_demo  # noqa: E402
from syncro_store import UNAUTHORIZED, NOT_FOUND, ApiError, Store, route  # noqa: E402

API_PREFIX = "/api/v1"

# GUESS (SYNCRO.md): Syncro documents no over-limit answer; this is Rack::Attack's default
# throttle response (429, text/plain "Retry later"), with no Retry-After header.
RATE_LIMIT_BODY = b"Retry later\n"

HTML_400 = b"""<!DOCTYPE html>
<html>
<head>
  <title>Bad Request (400)</title>
  <meta name="viewport" content="width=device-width,initial-scale=1">
</head>
<body>
  <div class="dialog">
    <h1>Bad Request</h1>
    <p>The server cannot process the request due to a client error.</p>
  </div>
</body>
</html>
"""
HTML_404 = b"""<!DOCTYPE html>
<html>
<head>
  <title>The page you were looking for doesn't exist (404)</title>
</head>
<body>
  <div class="dialog">
    <h1>The page you were looking for doesn't exist.</h1>
    <p>You may have mistyped the address or the page may have moved.</p>
  </div>
</body>
</html>
"""
HTML_500 = b"""<!DOCTYPE html>
<html>
<head>
  <title>We're sorry, but something went wrong (500)</title>
</head>
<body>
  <div class="dialog">
    <h1>We're sorry, but something went wrong.</h1>
  </div>
</body>
</html>
"""
HTML_503 = b"""<!DOCTYPE html>
<html><head><title>503 Service Temporarily Unavailable</title></head>
<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>
"""

CT_JSON = "application/json; charset=utf-8"
CT_HTML = "text/html; charset=utf-8"
CT_TEXT = "text/plain; charset=utf-8"


def jbytes(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class Response:
    """One HTTP answer: status, body bytes, content type, extra headers."""

    __slots__ = ("status", "body", "ctype", "headers")

    def __init__(self, status, body=b"", ctype=CT_JSON, headers=None):
        self.status = status
        self.body = body
        self.ctype = ctype
        self.headers = headers or {}

    @classmethod
    def json(cls, status, obj):
        return cls(status, jbytes(obj), CT_JSON)


def default_fault_response(status):
    """What an injected status looks like when the fault gives no body."""
    if status == 429:
        return Response(429, RATE_LIMIT_BODY, CT_TEXT)
    if status == 401:
        return Response.json(401, UNAUTHORIZED)
    if status == 404:
        return Response.json(404, NOT_FOUND)
    if status == 422:
        return Response.json(422, {"success": False, "message": ["Injected failure"]})
    if status == 400:
        return Response(400, HTML_400, CT_HTML)
    if status == 503:
        return Response(503, HTML_503, CT_HTML)
    if status >= 500:
        return Response(status, HTML_500, CT_HTML)
    return Response.json(status, {"error": "Injected fault"})


class SlidingWindowLimiter:
    """At most `limit` admitted requests per client in any `window` seconds (0 = unlimited).

    Only admitted requests are remembered, so a client that backs off for the
    window gets through again; rejected requests do not extend the block.
    """

    def __init__(self, limit, window):
        self.limit = limit
        self.window = window
        self.hits = collections.defaultdict(collections.deque)

    def allow(self, client, now):
        if self.limit <= 0:
            return True
        q = self.hits[client]
        edge = now - self.window
        while q and q[0] <= edge:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        return True

    def reset(self):
        self.hits.clear()


FAULT_KEYS = {"match", "query", "method", "status", "times", "skip", "drop", "malformed",
              "latency_ms", "after_apply", "body", "headers", "content_type", "retry_after"}


def check_fault(f):
    """Validates one fault spec (see SYNCRO.md); returns a normalised copy or raises ApiError(400)."""
    if not isinstance(f, dict):
        raise ApiError(400, {"error": "a fault must be an object"})
    bad = set(f) - FAULT_KEYS
    if bad:
        raise ApiError(400, {"error": "unknown fault keys: %s" % ", ".join(sorted(bad))})
    out = dict(f)
    for key in ("match", "query"):
        try:
            out["_" + key] = re.compile(out.get(key) or "")
        except re.error as e:
            raise ApiError(400, {"error": "bad %s regex: %s" % (key, e)})
    if out.get("drop") not in (None, False, True, "mid_body", "no_response"):
        raise ApiError(400, {"error": "drop must be true, \"mid_body\" or \"no_response\""})
    times = out.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times == 0:
        raise ApiError(400, {"error": "times must be a positive integer or -1 (forever)"})
    out["times"] = times
    out["skip"] = int(out.get("skip") or 0)
    if out.get("status") is not None and not (isinstance(out["status"], int) and 100 <= out["status"] <= 599):
        raise ApiError(400, {"error": "status must be an HTTP status code"})
    out["fired"] = 0
    return out


def fault_public(f):
    return {k: v for k, v in f.items() if not k.startswith("_")}


class FakeSyncro(ThreadingHTTPServer):
    """The server: store, limiter, faults, request log, config; one lock guards them all."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, opts):
        self.opts = opts
        self.lock = threading.Lock()
        self.verbose = opts.verbose
        self.limiter = SlidingWindowLimiter(opts.rate_limit, opts.window)
        self.config = {}
        self.store = None
        self._reset_all(opts.data)
        super().__init__(addr, Handler)

    # -------------------------------------------------------------- state
    def _reset_all(self, data):
        self.config = {"api_key": self.opts.api_key, "rate_limit": self.opts.rate_limit,
                       "window": self.opts.window, "latency_ms": self.opts.latency_ms,
                       "page_size": {}, "deny": []}
        self.limiter.limit, self.limiter.window = self.opts.rate_limit, self.opts.window
        self.limiter.reset()
        self.faults = []
        self._clear_log()
        self._load(data)

    def _load(self, data):
        self.store = Store()
        if data in (None, "", "none"):
            pass
        elif data == "demo":
            self.store.seed(syncro_demo.DEMO)
        else:
            with open(data, encoding="utf-8") as fh:
                self.store.seed(json.load(fh))
        if self.opts.generate:
            c, n = self.opts.generate
            self.store.generate(c, n, self.opts.seed)
        self.data = data

    def _clear_log(self):
        self.log = []
        self.seq = 0
        self.summary = {"total": 0, "by_status": {}, "status_429": 0, "rate_limited": 0,
                        "writes": {}, "write_attempts": {}, "faults_fired": 0, "dropped": 0,
                        "malformed": 0}

    def record(self, entry, write_applied):
        """Appends a request log entry and updates the counters (caller holds the lock)."""
        self.seq += 1
        entry["seq"] = self.seq
        self.log.append(entry)
        s = self.summary
        s["total"] += 1
        if entry["status"] is not None:
            key = str(entry["status"])
            s["by_status"][key] = s["by_status"].get(key, 0) + 1
            if entry["status"] == 429:
                s["status_429"] += 1
        if entry.get("rate_limited"):
            s["rate_limited"] += 1
        if entry.get("fault"):
            s["faults_fired"] += 1
            if "drop" in entry["fault"] or entry["fault"].endswith("no_response"):
                s["dropped"] += 1
            if "malformed" in entry["fault"]:
                s["malformed"] += 1
        kind = entry.get("kind")
        if kind:
            s["write_attempts"][kind] = s["write_attempts"].get(kind, 0) + 1
            if write_applied:
                s["writes"][kind] = s["writes"].get(kind, 0) + 1

    def take_fault(self, method, path, query):
        """First armed fault matching the request (consumes one use), or None. Caller holds the lock."""
        for f in self.faults:
            if f["times"] == 0:
                continue
            if f.get("method") and f["method"].upper() != method:
                continue
            if not f["_match"].search(path) or not f["_query"].search(query):
                continue
            if f["skip"] > 0:
                f["skip"] -= 1
                continue
            if f["times"] > 0:
                f["times"] -= 1
            f["fired"] += 1
            return dict(f)
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeSyncro/1.0"
    sys_version = ""
    timeout = 120

    def setup(self):
        super().setup()
        # Headers and body leave in one write, and without Nagle: no 40 ms delayed-ACK stalls.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        if self.server.verbose:
            line = re.sub(r"(api_key=)[^&\s]*", r"\1[REDACTED]", fmt % args)
            sys.stderr.write("fake_syncro: %s - %s\n" % (self.address_string(), line))

    def do_GET(self):
        try:
            self.dispatch()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # -------------------------------------------------------------- plumbing
    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, r):
        self.send_response(r.status)
        self.send_header("Content-Type", r.ctype)
        self.send_header("Content-Length", str(len(r.body)))
        for k, v in r.headers.items():
            self.send_header(k, str(v))
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(r.body)
        self.flush_headers()

    def hang_up(self):
        """Closes the connection now (the client sees an empty reply or a short body)."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -------------------------------------------------------------- dispatch
    def dispatch(self):
        srv = self.server
        t0 = time.monotonic()
        raw = self.read_body()
        split = urlsplit(self.path)
        path, query = split.path, split.query
        if path == "/_fake" or path.startswith("/_fake/"):
            self.send(self.control(path[len("/_fake"):].strip("/"), parse_qs(query), raw))
            return
        method = self.command
        entry = {"time": time.time(), "client": self.client_address[0], "method": method,
                 "path": path, "query": re.sub(r"(api_key=)[^&]*", r"\1[REDACTED]", query),
                 "status": None, "op": None, "kind": None, "fault": None}
        with srv.lock:
            allowed = srv.limiter.allow(self.client_address[0], time.monotonic())
            fault = None if not allowed else srv.take_fault(method, path, query)
            latency = srv.config["latency_ms"]
        if not allowed:
            r = Response(429, RATE_LIMIT_BODY, CT_TEXT)
            entry.update(status=429, rate_limited=True)
            self.finish_entry(entry, t0, False)
            self.send(r)
            return
        if fault and fault.get("latency_ms"):
            latency += fault["latency_ms"]
        if latency:
            time.sleep(latency / 1000.0)
        acts = fault and (fault.get("status") or fault.get("drop") or fault.get("malformed"))
        if fault and acts and not fault.get("after_apply"):
            self.emit_fault(fault, None, entry, t0, False)
            return
        r, applied = self.api(method, path, query, raw, entry)
        if fault and fault.get("after_apply"):
            self.emit_fault(fault, r, entry, t0, applied)
            return
        if fault:
            entry["fault"] = "latency"
        entry["status"] = r.status
        self.finish_entry(entry, t0, applied)
        self.send(r)

    def finish_entry(self, entry, t0, applied):
        entry["ms"] = round((time.monotonic() - t0) * 1000, 2)
        with self.server.lock:
            self.server.record(entry, applied)

    def emit_fault(self, f, real, entry, t0, applied):
        """Sends the fault's answer instead of `real` (the applied request's response, or None)."""
        prefix = "after_apply+" if f.get("after_apply") else ""
        if f.get("status"):
            r = default_fault_response(f["status"])
            if "body" in f:
                b = f["body"]
                r.body = b.encode() if isinstance(b, str) else jbytes(b)
                r.ctype = CT_TEXT if isinstance(b, str) else CT_JSON
        elif real is not None:
            r = Response(real.status, real.body, real.ctype, dict(real.headers))
        else:
            r = Response.json(200, {"message": "placeholder " + "x" * 200})
        if f.get("content_type"):
            r.ctype = f["content_type"]
        if f.get("headers"):
            r.headers.update(f["headers"])
        if f.get("retry_after") is not None:
            r.headers["Retry-After"] = f["retry_after"]
        if f.get("malformed"):
            # A proper prefix of a JSON document is never valid JSON.
            r.body = r.body[:max(1, len(r.body) // 2)] if len(r.body) > 1 else b"{"
            r.ctype = CT_JSON
            entry.update(status=r.status, fault=prefix + "malformed")
            self.finish_entry(entry, t0, applied)
            self.send(r)
            return
        drop = f.get("drop")
        if drop is None and f.get("after_apply") and not f.get("status"):
            drop = "no_response"
        if drop == "no_response":
            entry.update(status=None, fault=prefix + "drop:no_response")
            self.finish_entry(entry, t0, applied)
            self.hang_up()
            return
        if drop:
            entry.update(status=None, fault=prefix + "drop:mid_body")
            self.finish_entry(entry, t0, applied)
            self.send_response(r.status)
            self.send_header("Content-Type", r.ctype)
            self.send_header("Content-Length", str(len(r.body)))
            self.end_headers()
            self.wfile.write(r.body[:len(r.body) // 2])
            self.hang_up()
            return
        entry.update(status=r.status, fault=prefix + "status")
        self.finish_entry(entry, t0, applied)
        self.send(r)

    def api(self, method, path, query, raw, entry):
        """Runs one API request; returns (Response, write_applied)."""
        srv = self.server
        if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            return Response(404, HTML_404, CT_HTML), False
        sub = path[len(API_PREFIX):] or "/"
        params = parse_qs(query, keep_blank_values=True)
        body = {}
        if method in ("POST", "PUT", "PATCH") and raw.strip():
            # Reported (azcg): a body without a JSON content type gets a 400 HTML page.
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return Response(400, HTML_400, CT_HTML), False
            try:
                body = json.loads(raw)
            except ValueError:
                return Response(400, HTML_400, CT_HTML), False   # GUESS: same page for bad JSON
            if not isinstance(body, dict):
                body = {"_json": body}   # Rails wraps non-object JSON bodies like this
            if method in ("POST", "PUT", "PATCH"):
                entry["body"] = body
        with srv.lock:
            key = srv.config["api_key"]
            deny = srv.config["deny"]
        token = self.token(params)
        if not token or (key and token != key):
            return Response.json(401, UNAUTHORIZED), False
        params.pop("api_key", None)
        found = route(method, sub)
        if found is None:
            return Response(404, HTML_404, CT_HTML), False   # Rails routing error page
        op, args, kind = found
        entry["op"], entry["kind"] = op, kind
        if op in deny or (kind and kind in deny):
            return Response.json(401, UNAUTHORIZED), False   # permission missing
        with srv.lock:
            try:
                status, obj = srv.store.call(op, params, body, args)
            except ApiError as e:
                status, obj = e.status, e.body
            data = jbytes(obj)
        return Response(status, data, CT_JSON), bool(kind) and 200 <= status < 300

    def token(self, params):
        auth = (self.headers.get("Authorization") or "").strip()
        if auth:
            m = re.match(r"(?i)bearer\s+(.+)", auth)
            return (m.group(1) if m else auth).strip()
        vals = params.get("api_key")
        return vals[0] if vals else None

    # -------------------------------------------------------------- control API
    def control(self, what, q, raw):
        srv = self.server
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            return Response.json(400, {"error": "bad JSON: %s" % e})
        method = self.command
        try:
            with srv.lock:
                obj = self.control_locked(srv, method, what, q, body)
        except ApiError as e:
            return Response.json(e.status if e.status != 422 else 400, e.body)
        except (OSError, ValueError, TypeError, KeyError) as e:
            return Response.json(400, {"error": "%s: %s" % (type(e).__name__, e)})
        if obj is None:
            return Response.json(404, {"error": "no such control endpoint: %s %s" % (method, what)})
        return Response.json(200, obj)

    def control_locked(self, srv, method, what, q, body):
        """Control endpoints (see SYNCRO.md); returns the JSON answer or None for unknown ones."""
        st = srv.store
        one = lambda name: (q.get(name) or [None])[0]   # noqa: E731
        if what == "health" and method == "GET":
            return {"ok": True, "counts": st.counts()}
        if what == "reset" and method == "POST":
            data = body.get("data", srv.opts.data) if isinstance(body, dict) else srv.opts.data
            srv._reset_all(data)
            return {"ok": True, "data": data, "counts": srv.store.counts()}
        if what == "state" and method == "GET":
            return st.dump(one("kind"))
        if what == "stats" and method == "GET":
            return {"counts": st.counts(), "requests": srv.summary,
                    "faults": [fault_public(f) for f in srv.faults]}
        if what == "requests":
            if method == "DELETE":
                srv._clear_log()
                return {"ok": True}
            if method == "GET":
                since = int(one("since") or 0)
                rows = [e for e in srv.log if e["seq"] > since]
                if one("method"):
                    rows = [e for e in rows if e["method"] == one("method").upper()]
                if one("path"):
                    rx = re.compile(one("path"))
                    rows = [e for e in rows if rx.search(e["path"])]
                if one("limit"):
                    rows = rows[-int(one("limit")):]
                return {"requests": rows, "summary": srv.summary}
        if what == "seed" and method == "POST":
            made = st.seed(body)
            return {"created": {k: [r["id"] for r in v] for k, v in made.items()}, "counts": st.counts()}
        if what in ("customers", "contacts", "products", "tickets", "invoices", "schedules"):
            if method == "POST":
                recs = body if isinstance(body, list) else [body]
                made = st.seed({what: recs})
                return {"created": [st.public(what, r) for r in made.get(what, [])]}
            if method == "GET":
                rows = st.dump(what)[what]
                if one("customer_id"):
                    rows = [r for r in rows if str(r.get("customer_id")) == one("customer_id")]
                if one("email"):
                    rows = [r for r in rows if (r.get("email") or "").lower() == one("email").lower()]
                return {what: rows}
        if what == "generate" and method == "POST":
            return st.generate(int(body.get("customers", 1)), int(body.get("contacts_per_customer", 0)),
                               body.get("seed", srv.opts.seed), body.get("domain_prefix", "customer"))
        if what == "faults":
            if method == "GET":
                return {"faults": [fault_public(f) for f in srv.faults]}
            if method == "DELETE":
                srv.faults = []
                return {"ok": True}
            if method == "POST":
                specs = body if isinstance(body, list) else [body]
                new = [check_fault(f) for f in specs]
                srv.faults.extend(new)
                return {"ok": True, "faults": [fault_public(f) for f in srv.faults]}
        if what == "config":
            if method == "POST":
                self.apply_config(srv, body)
            if method in ("GET", "POST"):
                return dict(srv.config, api_key="[set]" if srv.config["api_key"] else None,
                            page_size=dict(st.page_size))
        return None

    @staticmethod
    def apply_config(srv, body):
        if not isinstance(body, dict):
            raise ApiError(400, {"error": "config must be an object"})
        for k in ("rate_limit", "window", "latency_ms"):
            if k in body:
                srv.config[k] = float(body[k]) if k == "window" else int(body[k])
        if "api_key" in body:
            srv.config["api_key"] = body["api_key"] or None
        if "deny" in body:
            srv.config["deny"] = list(body["deny"] or [])
        if isinstance(body.get("page_size"), dict):
            srv.store.page_size.update({k: int(v) for k, v in body["page_size"].items()})
        if "rate_limit" in body or "window" in body:
            srv.limiter.limit, srv.limiter.window = srv.config["rate_limit"], srv.config["window"]
            srv.limiter.reset()


def parse_args(argv):
    p = argparse.ArgumentParser(description="Fake Syncro MSP REST API (loopback, for tests).")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = pick a free port")
    p.add_argument("--port-file", help="write the chosen port here (atomically)")
    p.add_argument("--api-key", default=None, help="required token (default: any non-empty token)")
    p.add_argument("--rate-limit", type=int, default=180, help="requests per window per client IP (0 = off)")
    p.add_argument("--window", type=float, default=60.0, help="rate-limit window, seconds")
    p.add_argument("--seed", type=int, default=1, help="random seed for generated data")
    p.add_argument("--data", default="demo", help="demo | none | FILE.json (seed format)")
    p.add_argument("--generate", default=None, help="C,N: also generate C customers with N contacts each")
    p.add_argument("--latency-ms", type=int, default=0, help="added to every API request")
    p.add_argument("--verbose", action="store_true", help="log each request to stderr")
    opts = p.parse_args(argv)
    if opts.generate:
        try:
            c, n = (int(x) for x in opts.generate.split(","))
        except ValueError:
            p.error("--generate wants C,N (two integers)")
        opts.generate = (c, n)
    return opts


def main(argv=None):
    opts = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        srv = FakeSyncro((opts.host, opts.port), opts)
    except (OSError, ValueError, ApiError) as e:
        sys.stderr.write("fake_syncro: cannot start: %s\n" % (e,))
        return 1
    port = srv.server_address[1]
    if opts.port_file:
        tmp = opts.port_file + ".tmp"
        with open(tmp, "w") as fh:
            fh.write("%d\n" % port)
        os.replace(tmp, opts.port_file)
    if opts.verbose:
        sys.stderr.write("fake_syncro: listening on http://%s:%d%s\n" % (opts.host, port, API_PREFIX))

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
