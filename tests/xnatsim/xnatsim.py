#!/usr/bin/env python3
"""xnatsim: an XNAT Container Service REST API simulator for xcsreg's tests.

Standard library only. HTTPS on 127.0.0.1 (--cert/--key), an ephemeral
port written to --port-file. The behaviour follows
/work/shared/reference/xnat.md ("ref §N"):

  POST   /data/JSESSION               Basic; the session id as the body, and Set-Cookie (ref §6)
  DELETE /data/JSESSION               ends the session
  GET    /xapi/docker/server          {"backend": ..., "swarm-mode": ..., "ping": ...}; ping computed per call (ref §2)
  GET    /xapi/commands               every command to a ContainerManager; others: public and protected (ref §3)
         ?restrictToEnabledForSite=true  commands with a site-enabled wrapper, whole
  GET    /xapi/wrappers/{id}/enabled  true/false (ContainerManager; else 403 empty) (ref §4)
  GET    /xapi/wrappers/{id}/projects array of project ids (ContainerManager)
  GET    /xapi/docker/hubs            array, passwords and tokens never returned; pings every hub (ref §5)
  GET    /xapi/docker/hubs/{id|name}  200, 404, 400 when a name is not unique
  POST   /xapi/docker/hubs            create (ContainerManager): 201 without secrets; duplicate name/url: 500
  POST   /xapi/docker/hubs/{id}       update with fromPojoWithTemplate semantics: keys left out become
                                      null; a blank password keeps the old one only while url and
                                      username are unchanged; ?default=true with a body acts on the
                                      body's id (0 when absent); 200 empty
  DELETE /xapi/docker/hubs/{id}       204; 409 for the default hub
  GET    /xapi/docker/hubs/{id}/ping  {"ping":..., "response":..., "message":...}

Authentication: Basic on every request (401 text/plain when wrong) or
Cookie JSESSIONID of a session; each Basic request creates a session, as
XNAT does. No CSRF check (XAPI has none). Role checks fail with 403 and an
empty body (restrictTo, ref §4 "Errors").

Control (no auth), under /_ctl/: GET state (everything, passwords
included: for tests' assertions), POST seed (replace the state with the
JSON body's keys: server, commands, hubs, users, default_hub,
enabled, projects), GET log (one object per request: method, path, query,
status, auth: basic|cookie|none, user), POST reset-log, POST fail
{"mode": "down"|"none"} (down: every /xapi and /data request answers 503).
The request log never holds a body.
"""
import argparse
import base64
import copy
import http.server
import json
import os
import secrets as pysecrets
import socketserver
import ssl
import sys
import threading
import urllib.parse

lock = threading.Lock()
state = {}
log = []
sessions = {}
mode = {"fail": "none"}


def initial_state():
    return {
        "server": {"id": 1, "name": "Local socket", "host": "unix:///var/run/docker.sock",
                   "backend": "docker", "swarm-mode": False},
        "commands": [],
        # CheckDefaultDockerHub (ref §5)
        "hubs": [{"id": 1, "name": "Docker Hub", "url": "https://index.docker.io/v1/", "username": None,
                  "password": None, "email": None, "token": None}],
        "default_hub": 1,
        "users": {"admin": {"password": "xnat-admin-fake-pw", "roles": ["ContainerManager", "Admin"]}},
        "enabled": {},   # wrapper id (str) -> bool
        "projects": {},  # wrapper id (str) -> [project ids]
        "pings": 0,
        "next_hub": 2,
    }


HUB_KEYS = ["id", "name", "url", "username", "email", "token"]


def public_hub(h):
    # password and token are WRITE_ONLY (ref §5); the hub classes force ALWAYS, so nulls are present
    out = {k: h.get(k) for k in HUB_KEYS if k != "token"}
    out["default"] = h["id"] == state["default_hub"]
    out["token"] = None
    return out


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def reply(self, status, body=None, ctype="application/json", headers=None):
        if body is None:
            data = b""
        elif isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.status = status

    def body_json(self):
        if not self.raw:
            return None
        return json.loads(self.raw)

    def auth(self):
        """(user, kind, set_cookie) or None after replying 401."""
        cookie = self.headers.get("Cookie") or ""
        for part in cookie.split(";"):
            k, _, v = part.strip().partition("=")
            if k == "JSESSIONID" and v in sessions:
                return sessions[v], "cookie", None
        h = self.headers.get("Authorization") or ""
        if h.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
            except Exception:
                user, pw = "", None
            u = state["users"].get(user)
            if u and u["password"] == pw:
                sid = pysecrets.token_hex(16).upper()
                sessions[sid] = user
                return user, "basic", sid
        self.kind = "basic" if h else ("cookie" if cookie else "none")
        self.reply(401, "Unauthorized: bad credentials or session expired", "text/plain")
        return None

    def handle_any(self, method):
        self.status, self.kind, self.user = 0, "none", None
        n = int(self.headers.get("Content-Length") or 0)
        self.raw = self.rfile.read(n) if n else b""  # always read: the connection is kept alive
        u = urllib.parse.urlsplit(self.path)
        path, query = u.path, urllib.parse.parse_qs(u.query)
        try:
            if path.startswith("/_ctl/"):
                with lock:
                    self.control(method, path[6:])
                return
            with lock:
                if mode["fail"] == "down":
                    self.reply(503, "Service Unavailable", "text/plain")
                    return
                a = self.auth()
                if a is None:
                    return
                self.user, self.kind, sid = a
                self.set_cookie = {"Set-Cookie": f"JSESSIONID={sid}; Path=/; HttpOnly"} if sid else {}
                self.route(method, path, query)
        finally:
            if not path.startswith("/_ctl/"):
                with lock:
                    log.append({"method": method, "path": path, "query": u.query, "status": self.status,
                                "auth": self.kind, "user": self.user})

    def manager(self):
        return "ContainerManager" in state["users"][self.user]["roles"]

    def ok(self, status, body=None, ctype="application/json"):
        self.reply(status, body, ctype, self.set_cookie)

    def route(self, method, path, query):
        parts = [p for p in path.split("/") if p]
        if path == "/data/JSESSION":
            if method == "POST":
                sid = self.set_cookie.get("Set-Cookie", "=").split("=")[1].split(";")[0] if self.set_cookie else None
                return self.ok(200, sid or "", "text/plain")
            if method == "DELETE":
                for k, v in list(sessions.items()):
                    if ("JSESSIONID=" + k) in (self.headers.get("Cookie") or ""):
                        del sessions[k]
                return self.ok(200)
        if parts[:1] != ["xapi"]:
            return self.ok(404, "Not Found", "text/plain")
        rest = parts[1:]
        if rest == ["docker", "server"] and method == "GET":
            s = copy.deepcopy(state["server"])
            if s is None:
                return self.ok(404, "No container server defined.", "text/plain")
            s["ping"] = True
            return self.ok(200, s)
        if rest == ["commands"] and method == "GET":
            out = []
            for c in state["commands"]:
                vis = c.get("visibility", "public")
                if not self.manager() and vis == "private":
                    continue
                if query.get("restrictToEnabledForSite") == ["true"]:
                    if not any(state["enabled"].get(str(w["id"])) for w in c.get("xnat", [])):
                        continue
                out.append(c)
            return self.ok(200, out)
        if len(rest) == 3 and rest[0] == "wrappers" and method == "GET":
            if not self.manager():
                return self.ok(403)
            wid = rest[1]
            if not any(str(w["id"]) == wid for c in state["commands"] for w in c.get("xnat", [])):
                return self.ok(404, "No wrapper with id " + wid, "text/plain")
            if rest[2] == "enabled":
                return self.ok(200, bool(state["enabled"].get(wid, False)))
            if rest[2] == "projects":
                return self.ok(200, state["projects"].get(wid, []))
        if rest[:2] == ["docker", "hubs"]:
            return self.hubs(method, rest[2:], query)
        return self.ok(404, "Not Found", "text/plain")

    def find_hub(self, key):
        if key.isdigit():
            return [h for h in state["hubs"] if h["id"] == int(key)]
        return [h for h in state["hubs"] if h["name"] == key]

    def hubs(self, method, rest, query):
        if not rest and method == "GET":
            state["pings"] += len(state["hubs"])  # each GET pings every hub (ref §5)
            return self.ok(200, [public_hub(h) for h in state["hubs"]])
        if method in ("POST", "DELETE") and not self.manager():
            return self.ok(403)
        if not rest and method == "POST":
            b = self.body_json() or {}
            for k in ("name", "url"):
                if any(h[k] == b.get(k) for h in state["hubs"]):
                    return self.ok(500, "could not execute statement; SQL [n/a]; constraint [uk_" + k + "]",
                                   "text/plain")
            h = {k: b.get(k) for k in ("name", "url", "username", "password", "email", "token")}
            h["id"] = state["next_hub"]
            state["next_hub"] += 1
            state["hubs"].append(h)
            if query.get("default") == ["true"]:
                state["default_hub"] = h["id"]
            return self.ok(201, public_hub(h))
        if len(rest) == 1:
            found = self.find_hub(rest[0])
            if len(found) > 1:
                return self.ok(400, "More than one hub with name " + rest[0], "text/plain")
            if not found:
                return self.ok(404, "No hub " + rest[0], "text/plain")
            h = found[0]
            if method == "GET":
                return self.ok(200, public_hub(h))
            if method == "DELETE":
                if h["id"] == state["default_hub"]:
                    return self.ok(409, "Cannot delete default hub", "text/plain")
                state["hubs"].remove(h)
                return self.ok(204)
            if method == "POST":
                b = self.body_json()
                if b is None:
                    if query.get("default") == ["true"]:
                        state["default_hub"] = h["id"]
                    return self.ok(200)
                if query.get("default") == ["true"]:
                    # updateHubAndSetDefault acts on the body's id (0 when absent) (ref §5)
                    target = [x for x in state["hubs"] if x["id"] == (b.get("id") or 0)]
                    if not target:
                        return self.ok(404, "No hub " + str(b.get("id") or 0), "text/plain")
                    h = target[0]
                # fromPojoWithTemplate: a missing key becomes null; a blank password keeps the
                # old one only while url and username are unchanged
                new = {k: b.get(k) for k in ("name", "url", "username", "email", "token")}
                for k in ("name", "url"):
                    if any(x is not h and x[k] == new[k] for x in state["hubs"]):
                        return self.ok(500, "could not execute statement; constraint [uk_" + k + "]", "text/plain")
                pw = b.get("password")
                if not pw:
                    pw = h["password"] if (new["url"] == h["url"] and new["username"] == h["username"]) else None
                h.update(new)
                h["password"] = pw
                if query.get("default") == ["true"]:
                    state["default_hub"] = h["id"]
                return self.ok(200)
        if len(rest) == 2 and rest[1] == "ping" and method == "GET":
            found = self.find_hub(rest[0])
            if not found:
                return self.ok(404, "No hub " + rest[0], "text/plain")
            if state["server"] and state["server"].get("backend") == "kubernetes":
                return self.ok(200, {"ping": False, "response": "Error",
                                     "message": "Cannot ping image host in Kubernetes mode."})
            return self.ok(200, {"ping": True, "response": "OK", "message": None})
        return self.ok(404, "Not Found", "text/plain")

    def control(self, method, what):
        global state
        if what == "state" and method == "GET":
            return self.reply(200, state)
        if what == "seed" and method == "POST":
            b = self.body_json() or {}
            state = initial_state()
            state.update(b)
            sessions.clear()
            return self.reply(200, {"ok": True})
        if what == "log" and method == "GET":
            return self.reply(200, log)
        if what == "reset-log" and method == "POST":
            log.clear()
            return self.reply(200, {"ok": True})
        if what == "fail" and method == "POST":
            mode["fail"] = (self.body_json() or {}).get("mode", "none")
            return self.reply(200, {"ok": True})
        return self.reply(404, {"error": "no such control " + what})

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PUT(self):
        self.handle_any("PUT")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    global state
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    args = ap.parse_args()
    state = initial_state()
    srv = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    parent = os.getppid()

    def watch():
        import time
        while True:
            time.sleep(1)
            if os.getppid() != parent:
                os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
