#!/usr/bin/env python3
"""httptest.py — the scripted loopback HTTP server behind the HTTP core's tests
(Python 3 standard library only). One process, four listeners on 127.0.0.1,
port 0 each:
  plain      HTTP/1.1 keep-alive
  tls        HTTPS with a certificate signed by the test CA (mkcerts.sh)
  badtls     HTTPS with a self-signed certificate nobody trusts
  h2         a minimal HTTP/2-only TLS server (ALPN h2, test CA cert): answers
             every stream with 200 and JSON {stream, conn_id, protocol}; it
             decodes no request headers (enough to see multiplexing)
  blackhole  accepts nothing; its accept queue is kept full, so a connect
             hangs until the client's connect timeout
When all are up it writes the env file (--env) with HTTPTEST_* exports.

Paths (all methods; every request whose query has key=K is timestamped under K):
  /echo                 JSON: method, path, query, target (the request line's,
                        as sent), headers, body, peer port, connection id and
                        request number on that connection
  /status/N             status N (?retry_after=V adds Retry-After: V)
  /flaky?key=K&fail=N&status=S[&retry_after=V|&retry_after_date=D]
                        the first N requests for K fail with S (a status code,
                        "drop" = close mid-body, or "reset" = close without a
                        reply), then 200 with JSON {attempt, arrived, target}.
                        retry_after_date=D sends an HTTP date about D s ahead
                        (whole seconds) and remembers it as the key's target.
  /slow?ms=M            replies after M ms
  /drop                 promises 100000 bytes, sends 10, closes
  /gzip                 gzip-encoded text if Accept-Encoding allows gzip
  /count?key=K          JSON {count, times} of the key's requests (wall clock)
  /limited?key=K&limit=L&window=W
                        sliding window: 429 once more than L requests for K
                        arrived within W seconds, else 200
  /big?bytes=N          N bytes of 'x'
"""
import argparse
import email.utils
import gzip
import json
import math
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
KEY_TIMES = {}      # key -> [wall-clock arrival times]
FLAKY_TARGET = {}   # key -> retry target (epoch seconds) of the last HTTP-date Retry-After
CONN_SEQ = [0]

GZIP_TEXT = ("entrasync gzip test line\n" * 200).encode()


def record(key):
    now = time.time()
    with LOCK:
        KEY_TIMES.setdefault(key, []).append(now)
        return len(KEY_TIMES[key]), now


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "httptest/1"

    def log_message(self, fmt, *args):  # quiet: the C tests assert, not read logs
        pass

    def setup(self):
        super().setup()
        with LOCK:
            CONN_SEQ[0] += 1
            self.conn_id = CONN_SEQ[0]
        self.conn_requests = 0

    # -- helpers --
    def reply(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status, obj, headers=None):
        self.reply(status, json.dumps(obj), headers=headers)

    def drop_mid_body(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"0123456789")
        self.wfile.flush()
        self.hard_close()

    def hard_close(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    # -- dispatch --
    def handle_any(self):
        self.conn_requests += 1
        body = self.read_body()
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path
        count, arrived = (0, time.time())
        if "key" in q and path != "/count":
            count, arrived = record(q["key"])
        if path == "/echo":
            self.reply_json(200, {
                "method": self.command, "path": path, "query": url.query, "target": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"), "body_len": len(body),
                "peer_port": self.client_address[1], "conn_id": self.conn_id,
                "conn_requests": self.conn_requests,
            })
        elif path.startswith("/status/"):
            hdrs = {"Retry-After": q["retry_after"]} if "retry_after" in q else {}
            self.reply_json(int(path[8:]), {"status": int(path[8:])}, hdrs)
        elif path == "/flaky":
            self.flaky(q, count, arrived)
        elif path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            self.reply_json(200, {"slept_ms": int(q.get("ms", "1000"))})
        elif path == "/drop":
            self.drop_mid_body()
        elif path == "/silent":
            self.hard_close()  # the request arrived (and counted); no answer byte at all
        elif path == "/gzip":
            if "gzip" in (self.headers.get("Accept-Encoding") or ""):
                self.reply(200, gzip.compress(GZIP_TEXT), "text/plain", {"Content-Encoding": "gzip"})
            else:
                self.reply(200, GZIP_TEXT, "text/plain")
        elif path == "/count":
            with LOCK:
                times = list(KEY_TIMES.get(q.get("key", ""), []))
            self.reply_json(200, {"count": len(times), "times": times})
        elif path == "/limited":
            limit, window = int(q.get("limit", "1")), float(q.get("window", "1"))
            with LOCK:
                recent = [t for t in KEY_TIMES.get(q.get("key", ""), []) if t > arrived - window]
            if len(recent) > limit:
                self.reply_json(429, {"error": "too many requests"})
            else:
                self.reply_json(200, {"n": count})
        elif path == "/big":
            n = int(q.get("bytes", "1048576"))
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                self.wfile.write(chunk[:min(n, len(chunk))])
                n -= min(n, len(chunk))
        else:
            self.reply_json(404, {"error": "no such path", "path": path})

    def flaky(self, q, count, arrived):
        key, fail, mode = q.get("key", ""), int(q.get("fail", "1")), q.get("status", "503")
        hdrs = {"X-Attempt": str(count)}
        if count <= fail:
            if mode == "drop":
                return self.drop_mid_body()
            if mode == "reset":
                return self.hard_close()
            if "retry_after" in q:
                hdrs["Retry-After"] = q["retry_after"]
            elif "retry_after_date" in q:
                target = math.ceil(time.time()) + int(q["retry_after_date"])
                with LOCK:
                    FLAKY_TARGET[key] = target
                hdrs["Retry-After"] = email.utils.formatdate(target, usegmt=True)
            return self.reply_json(int(mode), {"error": "scripted failure", "attempt": count}, hdrs)
        with LOCK:
            target = FLAKY_TARGET.get(key)
        self.reply_json(200, {"attempt": count, "arrived": arrived, "target": target}, hdrs)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # TLS handshakes the client refuses, resets: expected in these tests
        pass


def tls_server(certfile, keyfile):
    srv = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certfile, keyfile)
    ctx.set_alpn_protocols(["http/1.1"])
    # handshake in the connection's thread, not in the accept loop
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    return srv


class H2Server:
    """Just enough HTTP/2 (RFC 9113) to check that the client negotiates h2
    and multiplexes: server preface, SETTINGS/PING acks, one fixed response
    per stream once the request is complete (END_STREAM)."""

    def __init__(self, certfile, keyfile):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certfile, keyfile)
        self.ctx.set_alpn_protocols(["h2"])
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]

    def serve_forever(self):
        while True:
            conn, _ = self.lsock.accept()
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    @staticmethod
    def frame(ftype, flags, sid, payload=b""):
        return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload

    @staticmethod
    def literal(index, value):
        """HPACK literal without indexing, indexed name (index >= 15)."""
        v = value.encode()
        return bytes([0x0F, index - 15, len(v)]) + v

    def connection(self, conn):
        try:
            tls = self.ctx.wrap_socket(conn, server_side=True)
            if tls.selected_alpn_protocol() != "h2":
                return tls.close()
            with LOCK:
                CONN_SEQ[0] += 1
                cid = CONN_SEQ[0]
            rfile = tls.makefile("rb")
            if rfile.read(24) != b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n":
                return tls.close()
            tls.sendall(self.frame(4, 0, 0))
            while True:
                hdr = rfile.read(9)
                if len(hdr) < 9:
                    break
                length, ftype, flags = int.from_bytes(hdr[:3], "big"), hdr[3], hdr[4]
                sid = int.from_bytes(hdr[5:9], "big") & 0x7FFFFFFF
                payload = rfile.read(length)
                if ftype == 4 and not flags & 1:            # SETTINGS -> ack
                    tls.sendall(self.frame(4, 1, 0))
                elif ftype == 6 and not flags & 1:          # PING -> ack
                    tls.sendall(self.frame(6, 1, 0, payload))
                elif ftype in (0, 1) and flags & 1:         # DATA/HEADERS with END_STREAM
                    body = json.dumps({"stream": sid, "conn_id": cid, "protocol": "h2"}).encode()
                    block = b"\x88" + self.literal(31, "application/json") + self.literal(28, str(len(body)))
                    tls.sendall(self.frame(1, 4, sid, block) + self.frame(0, 1, sid, body))
                elif ftype == 7:                            # GOAWAY
                    break
            tls.close()
        except (OSError, ssl.SSLError):
            pass


def blackhole():
    """A listener whose accept queue is full: new SYNs are dropped."""
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(0)
    fillers = []
    for _ in range(3):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex(lsock.getsockname())
        fillers.append(s)
    time.sleep(0.05)
    return lsock, fillers


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--certs", required=True)
    ap.add_argument("--env", required=True)
    a = ap.parse_args()
    plain = Server(("127.0.0.1", 0), Handler)
    good = tls_server(os.path.join(a.certs, "server.pem"), os.path.join(a.certs, "server.key"))
    bad = tls_server(os.path.join(a.certs, "bad.pem"), os.path.join(a.certs, "bad.key"))
    h2 = H2Server(os.path.join(a.certs, "server.pem"), os.path.join(a.certs, "server.key"))
    hole, fillers = blackhole()
    for srv in (plain, good, bad, h2):
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    env = {
        "HTTPTEST_URL": "http://127.0.0.1:%d" % plain.server_address[1],
        "HTTPTEST_TLS_URL": "https://localhost:%d" % good.server_address[1],
        "HTTPTEST_BADTLS_URL": "https://localhost:%d" % bad.server_address[1],
        "HTTPTEST_H2_URL": "https://localhost:%d" % h2.port,
        "HTTPTEST_BLACKHOLE_URL": "http://127.0.0.1:%d" % hole.getsockname()[1],
    }
    tmp = a.env + ".tmp"
    with open(tmp, "w") as f:
        for k, v in env.items():
            f.write("export %s='%s'\n" % (k, v))
    os.rename(tmp, a.env)
    # Stopped by down.sh; as a safety net, also exit once the env file is
    # gone (the runner removed the test directory without calling down.sh).
    try:
        while os.path.exists(a.env):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    del fillers
    return 0


if __name__ == "__main__":
    sys.exit(main())
