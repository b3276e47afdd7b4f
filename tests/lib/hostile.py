#!/usr/bin/env python3
"""A hostile HTTP server for xcsreg's tests: answers that a client must
survive with a clear error (see tests/lib/with-hostile).

Listens on 127.0.0.1 on ephemeral ports: plain HTTP, HTTPS (with --cert and
--key), and a third plain listener, the "other host" that redirects point
to (as http://localhost:PORT, another host name for the same address). The
other host records the Authorization and Cookie headers of every request
it gets; GET /seen on it (or /other-seen on the first two) returns them as
JSON, and /forget clears them. Writes "HTTP HTTPS OTHER" ports to
--port-file once listening; exits when its parent goes away.

A behaviour is chosen by the last segment of the path, so both
/huge and /api/v1/namespaces/x/secrets/huge get it (any method):
  huge                200, Content-Type application/json, a body of ?mib=N
                      MiB (default 200) that is never valid JSON;
                      ?chunked=1 sends it without a Content-Length
  truncated           200, Content-Length 1000, 100 bytes, then the
                      connection closes
  badjson             200, application/json, body {"kind":
  drip                200, one byte a second (?bytes=N, default 60)
  silent              accepts the request and never answers (?s=N seconds)
  hugeheaders         200 with ?mib=N (default 16) MiB of header lines
  redirect-other-host 302 to the other host, same path plus "-landed"
                      (?to=ip: to 127.0.0.1:OTHER instead of localhost)
  html500             500, Content-Type text/html, an nginx-like error page
  htmlpage            ?code=N (default 502), text/html; charset=utf-8, a page
                      titled "Bad Gateway" plus ?pad=N (default 0) x's (or ?title=T), whose
                      body echoes the request's headers (as debug pages do)
  gzipbomb            200, application/json, Content-Encoding gzip: ?mib=N
                      (default 64) MiB of spaces compressed to a few hundred KB
  ok                  200, a small Kubernetes Secret as JSON
  v2                  401 with a Basic challenge: a registry's /v2/, so that a
                      pull check sends its credential with each manifest
                      request (and a manifest tagged v2 is refused forever)
anything else is 404 with a Kubernetes Status.
"""
import argparse
import gzip
import http.server
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

seen = []
seen_lock = threading.Lock()
gzip_cache = {}
gzip_lock = threading.Lock()
other_port = 0

HTML_500 = b"""<html>\r
<head><title>500 Internal Server Error</title></head>\r
<body>\r
<center><h1>500 Internal Server Error</h1></center>\r
<hr><center>nginx</center>\r
</body>\r
</html>\r
"""

SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "ok", "namespace": "x", "resourceVersion": "1"},
    "type": "Opaque",
    "data": {"k": "dg=="},
}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def version_string(self):
        return "xcsreg-hostile"

    def log_message(self, format, *args):
        pass  # quiet: requests carry (fake) credentials

    def send(self, status, body, content_type="application/json", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        name = url.path.rstrip("/").rsplit("/", 1)[-1]
        handler = getattr(self, "b_" + name.replace("-", "_"), None)
        if handler is None or not name:
            status = {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                      "reason": "NotFound", "code": 404, "message": "no behaviour " + url.path}
            self.send(404, json.dumps(status).encode())
            return
        handler(url, query)

    def b_huge(self, url, query):
        remaining = int(query.get("mib", "200")) << 20
        chunked = query.get("chunked") == "1"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(remaining))
        self.end_headers()
        # '{"kind":"Secret","data":"xxxx...': a string that never ends
        head = b'{"kind":"Secret","data":"'
        block = b"x" * (1 << 16)
        try:
            first = True
            while remaining > 0:
                part = (head + block[len(head):]) if first else block
                part = part[:remaining]
                first = False
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                else:
                    self.wfile.write(part)
                remaining -= len(part)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client gave up, as it should
        self.close_connection = True

    def b_truncated(self, url, query):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b'{"kind":"Secret","metadata":{"name":"' + b"t" * 62 + b'"')
        self.wfile.flush()
        self.close_connection = True

    def b_badjson(self, url, query):
        self.send(200, b'{"kind":')

    def b_drip(self, url, query):
        n = int(query.get("bytes", "60"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(n))
        self.end_headers()
        try:
            for _ in range(n):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            pass
        self.close_connection = True

    def b_silent(self, url, query):
        time.sleep(int(query.get("s", "60")))
        self.close_connection = True

    def b_hugeheaders(self, url, query):
        remaining = int(query.get("mib", "16")) << 20
        line = b"X-Filler: " + b"y" * 1000 + b"\r\n"
        try:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            while remaining > 0:
                self.wfile.write(line * 64)
                remaining -= 64 * len(line)
            self.wfile.write(b"Content-Length: 2\r\n\r\n{}")
        except OSError:
            pass
        self.close_connection = True

    def b_redirect_other_host(self, url, query):
        host = "127.0.0.1" if query.get("to") == "ip" else "localhost"
        target = "http://%s:%d%s-landed" % (host, other_port, url.path)
        self.send(302, b"", headers=[("Location", target)])

    def b_html500(self, url, query):
        self.send(500, HTML_500, content_type="text/html")

    def b_htmlpage(self, url, query):
        title = query.get("title", "Bad Gateway " + "x" * int(query.get("pad", "0")))
        echoed = "".join("<li>%s: %s</li>" % (k, v) for k, v in self.headers.items())
        page = "<html><head>\n<TITLE>\n  %s\n</TITLE></head><body><ul>%s</ul></body></html>" % (title, echoed)
        self.send(int(query.get("code", "502")), page.encode(), content_type="text/html; charset=utf-8")

    def b_gzipbomb(self, url, query):
        mib = int(query.get("mib", "64"))
        with gzip_lock:
            if mib not in gzip_cache:
                gzip_cache[mib] = gzip.compress(b" " * (mib << 20), compresslevel=9)
        self.send(200, gzip_cache[mib], headers=[("Content-Encoding", "gzip")])

    def b_ok(self, url, query):
        self.send(200, json.dumps(SECRET).encode())

    def b_v2(self, url, query):
        body = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
        # no body to a HEAD here: the other behaviours send one anyway, which
        # leaves a kept-alive connection unusable for the next request
        self.send(401, b"" if self.command == "HEAD" else body,
                  headers=[("WWW-Authenticate", 'Basic realm="hostile"')])

    def b_other_seen(self, url, query):
        with seen_lock:
            self.send(200, json.dumps(seen).encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = dispatch


class OtherHandler(Handler):
    """The other host: records what it is sent, answers 200."""

    def dispatch(self):
        url = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if url.path == "/seen":
            with seen_lock:
                self.send(200, json.dumps(seen).encode())
            return
        if url.path == "/forget":
            with seen_lock:
                seen.clear()
            self.send(200, b"[]")
            return
        with seen_lock:
            seen.append({
                "path": url.path,
                "host": self.headers.get("Host"),
                "authorization": self.headers.get("Authorization"),
                "cookie": self.headers.get("Cookie"),
            })
        self.send(200, json.dumps(SECRET).encode())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = dispatch


class TLSHandler(Handler):
    def setup(self):
        # the handshake in the connection's thread: a client that rejects
        # the certificate cannot stall the accept loop
        self.request.do_handshake()
        super().setup()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up are what this server is for


def serve(server):
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def main():
    global other_port
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    args = ap.parse_args()

    other_port = serve(Server(("127.0.0.1", 0), OtherHandler))
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
        f.write("%d %d %d\n" % (http_port, https_port, other_port))
    os.rename(tmp, args.port_file)

    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
