#!/usr/bin/env python3
"""A small HTTP/1.1 keep-alive test server for xcsreg's http tests.

Listens on 127.0.0.1 on ephemeral ports: plain HTTP, and HTTPS too when
--cert/--key are given. Writes "HTTP_PORT HTTPS_PORT" (0 when there is no
TLS) to --port-file once listening. Exits when its parent goes away.

Endpoints (any method):
  /echo                 JSON: method, path, query, headers, body, conn
  /status/N             status N; ?retry_after=S adds Retry-After
  /slow?ms=N            answers after N ms
  /drip?bytes=N         N bytes (default 10), one every 200 ms
  /big?bytes=N          N bytes of 'x'
  /drop                 closes the connection without answering
  /redirect?to=URL      302 to URL (?code=N for another 3xx)
  /basic?user=U&password=P   200 with Basic credentials U:P, else 401
  /headers?NAME=VALUE   response headers from the query, repeats kept
  /v1/secret/data/PATH  a Vault KV v2 secret (GET reads, POST {"data": {...}}
                        writes), with X-Vault-Token VAULT_TOKEN; else 403
                        {"errors": ["permission denied"]}, as Vault answers
  /hold?ms=N            answers after N ms (default 100) JSON: conn, query, and
                        inflight: the most /hold requests this server has had
                        in flight at once (since the last /hold-reset)
  /hold-reset           forgets that count
  /v2/                  200 {}: an open registry's answer
  /v2/NAME/manifests/REF  held 100 ms as /hold (and counted with it), then
                        200 with an OCI manifest's Content-Type, or 404 with
                        the registry's MANIFEST_UNKNOWN error when REF is
                        "missing"
  /hook                 a webhook: POST stores the body (200); GET /hooks
                        answers the stored bodies as a JSON list
"""
import argparse
import base64
import http.server
import itertools
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

# The token of the /v1/secret/ store (tests/lib/secrets.txt lists it).
VAULT_TOKEN = "hvs.xcsreg-test-vault-token-7c1f"
vault = {}
hook_bodies = []
store_lock = threading.Lock()

conn_ids = itertools.count(1)
conn_ids_lock = threading.Lock()

holding = {"now": 0, "most": 0}
holding_lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes

    def version_string(self):
        return "xcsreg-httpd"

    def setup(self):
        super().setup()
        with conn_ids_lock:
            self.conn_id = next(conn_ids)

    def log_message(self, format, *args):
        pass  # quiet: requests may carry (fake) credentials

    def send(self, status, body=b"", headers=(), content_type="text/plain"):
        if status in (204, 304):
            body = b""  # these have no body, and no Content-Length either
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if status not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def hold(self, seconds):
        """Waits, counted as in flight; returns the most in flight so far."""
        with holding_lock:
            holding["now"] += 1
            holding["most"] = max(holding["most"], holding["now"])
        time.sleep(seconds)
        with holding_lock:
            holding["now"] -= 1
            return holding["most"]

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        arg = lambda name, default=None: query.get(name, [default])[0]
        body = self.read_body()
        path = url.path
        if path == "/echo":
            headers = {}
            for name, value in self.headers.items():
                name = name.lower()
                headers[name] = headers[name] + ", " + value if name in headers else value
            doc = {
                "method": self.command,
                "path": path,
                "query": url.query,
                "headers": headers,
                "body": body.decode("latin-1"),
                "conn": self.conn_id,
            }
            self.send(200, json.dumps(doc, sort_keys=True).encode(), content_type="application/json")
        elif path.startswith("/status/"):
            extra = []
            if arg("retry_after") is not None:
                extra.append(("Retry-After", arg("retry_after")))
            code = int(path[len("/status/"):])
            self.send(code, ("status %d\n" % code).encode(), extra)
        elif path == "/slow":
            time.sleep(int(arg("ms", "1000")) / 1000)
            self.send(200, b"slow\n")
        elif path == "/hold":
            most = self.hold(int(arg("ms", "100")) / 1000)
            doc = {"conn": self.conn_id, "query": url.query, "inflight": most}
            self.send(200, json.dumps(doc, sort_keys=True).encode(), content_type="application/json")
        elif path == "/hold-reset":
            with holding_lock:
                holding["most"] = holding["now"]
            self.send(200, b"ok\n")
        elif path == "/v2/":
            self.send(200, b"{}", content_type="application/json")
        elif path.startswith("/v2/") and "/manifests/" in path:
            self.hold(0.1)
            if path.endswith("/manifests/missing"):
                self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}',
                          content_type="application/json")
            else:
                self.send(200, b"", content_type="application/vnd.oci.image.manifest.v1+json")
        elif path == "/drip":
            n = int(arg("bytes", "10"))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            for _ in range(n):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
        elif path == "/big":
            n = int(arg("bytes", "0"))
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = b"x" * 65536
            while n > 0:
                self.wfile.write(chunk[:n])
                n -= len(chunk)
        elif path == "/drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
        elif path == "/redirect":
            self.send(int(arg("code", "302")), b"", [("Location", arg("to", "/echo"))])
        elif path == "/basic":
            want = "Basic " + base64.b64encode(
                (arg("user", "") + ":" + arg("password", "")).encode()).decode()
            if self.headers.get("Authorization") == want:
                self.send(200, json.dumps({"user": arg("user", "")}).encode(),
                          content_type="application/json")
            else:
                self.send(401, b"unauthorized\n", [("WWW-Authenticate", 'Basic realm="xcsreg-test"')])
        elif path == "/headers":
            self.send(200, b"ok\n", urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        elif path.startswith("/v1/secret/data/"):
            key = path[len("/v1/secret/data/"):]
            if self.headers.get("X-Vault-Token") != VAULT_TOKEN:
                self.send(403, b'{"errors":["permission denied"]}', content_type="application/json")
            elif self.command in ("POST", "PUT"):
                with store_lock:
                    vault[key] = json.loads(body)["data"]
                self.send(200, b'{"data":{"version":1}}', content_type="application/json")
            elif key in vault:
                doc = {"data": {"data": vault[key], "metadata": {"version": 1}}}
                self.send(200, json.dumps(doc).encode(), content_type="application/json")
            else:
                self.send(404, b'{"errors":[]}', content_type="application/json")
        elif path == "/hook" and self.command == "POST":
            with store_lock:
                hook_bodies.append(body.decode())
            self.send(200, b"ok\n")
        elif path == "/hooks":
            with store_lock:
                doc = json.dumps(hook_bodies)
            self.send(200, doc.encode(), content_type="application/json")
        else:
            self.send(404, b"not found\n")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = dispatch


class TLSHandler(Handler):
    def setup(self):
        # The handshake runs here, in the connection's thread, so a client
        # that rejects our certificate cannot stall the accept loop.
        self.request.do_handshake()
        super().setup()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's listen backlog of 5 drops the SYNs of a client opening
    # more connections at once (a batch of 8), which then wait a second to
    # retry
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # clients that hang up or reject the certificate are expected


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()

    http_port = serve(Server(("127.0.0.1", 0), Handler))
    https_port = 0
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        tls = Server(("127.0.0.1", 0), TLSHandler)
        tls.socket = ctx.wrap_socket(tls.socket, server_side=True, do_handshake_on_connect=False)
        https_port = serve(tls)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (http_port, https_port))
    os.rename(tmp, args.port_file)

    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
