#!/usr/bin/env python3
"""tokenserver.py: a token service for a real docker-registry, for xcsreg's tests.

It answers the token endpoint of the registry token authentication spec
(distribution's docs/spec/auth/token.md): GET /token?service=S&account=A
[&scope=...] with HTTP basic auth. The right credential gets a JWT signed
RS256, with the openssl CLI, by the key whose certificate the registry lists
in auth.token.rootcertbundle; the registry finds that key by the JWT's "kid",
libtrust's key ID of the public key. A wrong or missing credential gets 401,
an unknown service 400. The realm's query can ask for other answers:
reply=access_token answers the OAuth2 way, {"access_token": ...} with no
"token" field; reply=html a 200 HTML page (a proxy's, say); reply=error 500.

Access: the user gets what it asks for, except "pull" on the repositories
whose name starts with a --deny-pull prefix (a robot account scoped to
other projects: it logs in fine, and the registry then answers 401
insufficient_scope). A second credential, $XCSREG_REG_PUSHER_USER /
$XCSREG_REG_PUSHER_PASSWORD when set, is the repositories' owner: it gets
everything it asks for (the tests push images with it).

Usage: tokenserver.py --cert PEM --key PEM --signing-key PEM --issuer ISS
                      --service SVC --port-file FILE --log FILE [--deny-pull PREFIX]...
Listens with TLS on 127.0.0.1 on a free port, which it writes to FILE. The
credential it accepts is $XCSREG_REG_USER / $XCSREG_REG_PASSWORD. FILE
--log gets one line per request: the request line and the status (no
credentials are ever written).
"""
import argparse
import base64
import hashlib
import json
import os
import secrets
import ssl
import subprocess
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(key_file):
    """The key ID docker-registry computes for a trusted key: SHA-256 of the
    DER public key, first 240 bits, base32, in colon-separated groups of 4."""
    der = subprocess.run(["openssl", "pkey", "-in", key_file, "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


def requested_access(scopes, deny_pull=()):
    """'repository:name:pull,push' scopes as the JWT "access" claim, without
    "pull" on the repositories whose name starts with a deny_pull prefix."""
    access = []
    for scope in scopes:
        parts = scope.split(":")
        if len(parts) >= 3:
            name = ":".join(parts[1:-1])
            actions = [a for a in parts[-1].split(",") if a]
            if parts[0] == "repository" and any(name.startswith(p) for p in deny_pull):
                actions = [a for a in actions if a != "pull"]
            access.append({"type": parts[0], "name": name, "actions": actions})
    return access


class TokenService:
    def __init__(self, args):
        self.args = args
        self.kid = libtrust_key_id(args.signing_key)
        user = os.environ["XCSREG_REG_USER"]
        password = os.environ["XCSREG_REG_PASSWORD"]
        self.good_auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        pusher = os.environ.get("XCSREG_REG_PUSHER_USER"), os.environ.get("XCSREG_REG_PUSHER_PASSWORD")
        self.pusher_auth = ("Basic " + base64.b64encode(f"{pusher[0]}:{pusher[1]}".encode()).decode()
                            if pusher[0] and pusher[1] else None)
        self.log = open(args.log, "a", buffering=1)

    def sign(self, claims):
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.args.signing_key],
                                   input=signing_input, check=True, capture_output=True).stdout
        token = signing_input.decode() + "." + b64url(signature)
        # tests/run's secret scan looks for every token handed out (its signature makes it unique)
        if os.environ.get("XCSREG_SECRETS_FILE"):
            with open(os.environ["XCSREG_SECRETS_FILE"], "a") as f:
                f.write("registry-bearer-token %s\n" % b64url(signature))
        return token

    def answer(self, path, authorization):
        """(status, extra headers, JSON body or HTML text) for GET path."""
        url = urlsplit(path)
        query = parse_qs(url.query)
        if url.path != "/token":
            return 404, {}, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}
        if query.get("reply") == ["html"]:
            return 200, {}, "<html><body>Please sign in to the proxy</body></html>"
        if query.get("reply") == ["error"]:
            return 500, {}, {"errors": [{"code": "UNKNOWN", "message": "the token database is down"}]}
        pusher = self.pusher_auth is not None and secrets.compare_digest(authorization or "", self.pusher_auth)
        if not pusher and not secrets.compare_digest(authorization or "", self.good_auth):
            return (401, {"WWW-Authenticate": 'Basic realm="xcsreg-test-token"'},
                    {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]})
        if query.get("service") != [self.args.service]:
            return 400, {}, {"errors": [{"code": "INVALID_SERVICE", "message": "unknown service"}]}
        now = int(time.time())
        token = self.sign({
            "iss": self.args.issuer, "sub": query.get("account", [""])[0],
            "aud": self.args.service, "exp": now + 300, "nbf": now - 10, "iat": now,
            "jti": secrets.token_hex(16),
            "access": requested_access(query.get("scope", []), () if pusher else self.args.deny_pull),
        })
        if query.get("reply") == ["access_token"]:
            return 200, {}, {"access_token": token, "expires_in": 300}
        issued = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return 200, {}, {"token": token, "expires_in": 300, "issued_at": issued}


class Handler(BaseHTTPRequestHandler):
    # Kept-alive connections, as the token services of Docker Hub, GHCR or
    # Harbor keep them (BaseHTTPRequestHandler's HTTP/1.0 closes each one).
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in separate writes

    def do_GET(self):
        service = self.server.service
        status, headers, body = service.answer(self.path, self.headers.get("Authorization"))
        html = isinstance(body, str)
        data = body.encode() if html else json.dumps(body).encode()
        # logged before the answer goes out, so that a client that has its
        # answer finds the request in the log (a test reads it right after)
        service.log.write(f"{self.requestline} -> {status}\n")
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if html else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's listen backlog of 5 drops the SYNs of a client opening
    # more connections at once (a batch of 8), which then wait a second to
    # retry; real servers listen with the system's limit
    request_queue_size = 128


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in ("--cert", "--key", "--signing-key", "--issuer", "--service", "--port-file", "--log"):
        parser.add_argument(option, required=True)
    parser.add_argument("--deny-pull", action="append", default=[], metavar="PREFIX")
    args = parser.parse_args()

    server = Server(("127.0.0.1", 0), Handler)
    server.service = TokenService(args)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    # The handshake happens in the request's thread, so a client that stalls
    # or gives up mid-handshake does not hold up the others.
    server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
