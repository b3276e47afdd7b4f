#!/usr/bin/env python3
"""apisim: a Kubernetes API server simulator (kube-apiserver v1.32 behaviour
for Secrets, ServiceAccounts, Namespaces and Pods) plus a control API for tests.

    python3 apisim.py --certs DIR --ready-file F [--plain] [--verbose]

The API listens on https://127.0.0.1:<ephemeral> (or http with --plain), the
control API on http://127.0.0.1:<ephemeral>; F receives
{"api": ..., "control": ..., "pid": ...} once both listen. See README.md.
"""

import argparse
import io
import json
import os
import random
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

sys.dont_write_bytecode = True  # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gojson  # noqa: E402
import k8s  # noqa: E402
from k8stypes import (APIError, KIND_TO_RESOURCE, RESOURCES, UNAUTHORIZED, conflict, details,  # noqa: E402
                      not_found_path, status_obj)

VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0",
           "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53", "gitTreeState": "clean",
           "buildDate": "2024-12-11T17:59:15Z", "goVersion": "go1.23.3", "compiler": "gc",
           "platform": "linux/amd64"}
PUBLIC_PATHS = ("/version", "/version/", "/healthz", "/livez", "/readyz")
VERBS_NS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
TOO_LARGE_WAIT_SECONDS = 3.0  # watch_cache.go blockTimeout
CLIENT_CHECK_SECONDS = 0.25  # how often a waiting watch looks whether its client went away
APF_BODY = b"Too many requests, please try again later.\n"

# Status bodies for injected faults, keyed by code: (reason, message).
FAULT_STATUS = {
    400: ("BadRequest", "apisim injected fault"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "apisim injected fault"),
    404: ("NotFound", "the server could not find the requested resource"),
    409: ("Conflict", "apisim injected fault"),
    429: ("TooManyRequests", "apisim injected fault"),
    500: ("InternalError", "Internal error occurred: apisim injected fault"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, "
                     "but may still be processing the request"),
}


def api_resource_list():
    res = []
    for name in ("namespaces", "pods", "secrets", "serviceaccounts"):
        kind, _, namespaced, short, singular = RESOURCES[name]
        r = {"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
             "verbs": [v for v in VERBS_NS if namespaced or v != "deletecollection"]}
        if short:
            r["shortNames"] = short
        if name == "pods":
            r["categories"] = ["all"]
        res.append(r)
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": res}


COORDINATION_GROUP = {"name": "coordination.k8s.io",
                      "versions": [{"groupVersion": "coordination.k8s.io/v1", "version": "v1"}],
                      "preferredVersion": {"groupVersion": "coordination.k8s.io/v1", "version": "v1"}}


def coordination_resource_list():
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "coordination.k8s.io/v1",
            "resources": [{"name": "leases", "singularName": "lease", "namespaced": True, "kind": "Lease",
                           "verbs": VERBS_NS}]}


def openapi_coordination():
    p = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": {p: {"patch": {
        "x-kubernetes-group-version-kind": {"group": "coordination.k8s.io", "version": "v1", "kind": "Lease"},
        "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
        "responses": {}}}}}


def openapi_v1():
    """The minimum kubectl's query-param verifier needs to switch to
    server-side field validation (cli-runtime query_param_verifier_v3.go)."""
    paths = {}
    for name in ("namespaces", "pods", "secrets", "serviceaccounts"):
        kind, _, namespaced = RESOURCES[name][:3]
        p = "/api/v1/namespaces/{namespace}/%s/{name}" % name if namespaced else "/api/v1/namespaces/{name}"
        paths[p] = {"patch": {"x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": kind},
                              "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
                              "responses": {}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"}, "paths": paths}


def load_tokens(certs):
    """kube-apiserver --token-auth-file format: token,user,uid,"group1,group2"."""
    path = os.path.join(certs or "", "tokens.csv")
    if not certs or not os.path.exists(path):
        return None
    import csv
    out = {}
    with open(path) as f:
        for row in csv.reader(f):
            if len(row) >= 2 and not row[0].startswith("#"):
                groups = [g for g in (row[3].split(",") if len(row) > 3 else []) if g]
                out[row[0]] = {"name": row[1], "groups": groups}
    return out


class Sim:
    """State outside the Kubernetes model: log, faults, throttle, connection ids."""

    def __init__(self, plain, tokens):
        self.api = k8s.API(plain=plain, tokens=tokens)
        self.lock = threading.Lock()
        self.conn_seq = 0
        self.conns = set()       # open API connections (POST /restart drops them)
        self.down_until = 0.0    # POST /restart down_ms: API connections are closed at once until then
        self.default_min_request_timeout = 1800.0  # --min-request-timeout; POST /watch changes it until reset
        self.watches_open = 0
        self.reset()

    def reset(self):
        with self.lock:
            self.log = []
            self.faults = []
            self.saved = {}  # name -> a copy of the store (POST /save, /restore)
            self.max_inflight = None
            self.throttle_retry = 1
            self.inflight = 0
            self.randomize_timeout = True  # the default watch timeout is min-request-timeout * [1, 2)
            self.bookmark_seconds = 60.0   # cacher.go bookmarkFrequency
            self.min_request_timeout = self.default_min_request_timeout
        self.api.reset()

    def next_conn(self):
        with self.lock:
            self.conn_seq += 1
            return self.conn_seq

    def take_fault(self, method, path, verb=None):
        with self.lock:
            for f in self.faults:
                if f["remaining"] <= 0:
                    continue
                if f.get("method") not in (None, "", "*") and f["method"].upper() != method:
                    continue
                if f.get("verb") not in (None, "", "*") and f["verb"] != verb:
                    continue
                if f.get("path_regex") and not re.search(f["path_regex"], path):
                    continue
                if f["to_skip"] > 0:  # a matching request let through: the fault is for a later one
                    f["to_skip"] -= 1
                    continue
                f["remaining"] -= 1
                return dict(f)
        return None

    def drop_connections(self):
        """What a restarting apiserver does to its clients: every TCP
        connection closes, open watches without their terminating chunk."""
        with self.lock:
            conns = list(self.conns)
        for c in conns:
            try:
                socket.socket.shutdown(c, socket.SHUT_RDWR)  # the raw socket: TLS state untouched
            except OSError:
                pass

    def enter(self):
        with self.lock:
            if self.max_inflight is not None and self.inflight >= self.max_inflight:
                return False
            self.inflight += 1
            return True

    def leave(self):
        with self.lock:
            self.inflight -= 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections are closed after this
    # kube-apiserver (Go's net/http) sets TCP_NODELAY; without it the body,
    # written after the headers, waits for the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def setup(self):
        super().setup()
        self.conn_id = self.server.sim.next_conn()
        if self.server.track:
            with self.server.sim.lock:
                self.server.sim.conns.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            if self.server.track:
                with self.server.sim.lock:
                    self.server.sim.conns.discard(self.connection)

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("apisim[%d] %s\n" % (self.conn_id, fmt % args))

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
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

    def send(self, code, body, content_type="application/json", headers=()):
        self.send_response_only(code)
        self.send_header("Date", formatdate(usegmt=True))
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET


class APIHandler(Handler):
    def pretty(self, query):
        # apiserver negotiation.isPrettyPrint
        pp = query.get("pretty", [""])[-1]
        if pp:
            return pp in ("1", "t", "T", "TRUE", "true", "True")
        ua = self.headers.get("User-Agent", "")
        return ua.startswith("curl") or ua.startswith("Wget") or ua.startswith("Mozilla/5.0")

    def cert_user(self):
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        cert = self.connection.getpeercert()
        if not cert:
            return None
        name, groups = None, []
        for rdn in cert.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    name = v
                elif k == "organizationName":
                    groups.append(v)
        return {"name": name, "groups": groups} if name else None

    def respond_obj(self, code, obj, query, headers=()):
        body = gojson.encode_pretty(obj) if self.pretty(query) else gojson.encode(obj)
        hdrs = [("Audit-Id", str(uuid.uuid4())), ("Cache-Control", "no-cache, private")] + list(headers)
        self.send(code, body, "application/json", hdrs)

    def respond_error(self, err, query):
        hdrs = list(err.headers.items())
        if err.details and err.details.get("retryAfterSeconds"):
            hdrs.append(("Retry-After", str(err.details["retryAfterSeconds"])))
        self.respond_obj(err.code, err.status(), query, hdrs)

    def dispatch(self):
        sim = self.server.sim
        url = urlsplit(self.path)
        # Go's net/http hands handlers the percent-decoded path.
        path, query = unquote(url.path), parse_qs(url.query, keep_blank_values=True)
        body = self.read_body()
        entry = {"conn": self.conn_id, "method": self.command, "path": path, "query": query,
                 "content_type": self.headers.get("Content-Type"), "user": None, "verb": None, "status": None,
                 "body": body.decode("utf-8", "replace")}
        with sim.lock:
            sim.log.append(entry)
            if sim.log_file:  # the whole run's log, which /reset does not clear
                sim.log_file.write(json.dumps(entry) + "\n")
        # Watches are long-running requests, which max-in-flight does not count.
        long_running = self.command == "GET" and k8s.go_bool_q(query.get("watch", [""])[-1])
        if not long_running and not sim.enter():
            # Priority & fairness / max-in-flight rejection: plain text, not a Status.
            entry["status"] = 429
            self.send(429, APF_BODY, "text/plain; charset=utf-8",
                      [("Retry-After", str(sim.throttle_retry)), ("X-Content-Type-Options", "nosniff")])
            return
        try:
            verb = None
            if sim.faults and (path.startswith("/api/v1/") or path.startswith("/apis/")):
                try:
                    verb = sim.api.request_info(k8s.Request(self.command, path, query, self.headers, b"")).verb
                except APIError:
                    pass
            fault = sim.take_fault(self.command, path, verb)
            if fault and self.inject(fault, path, query, body, entry):
                return
            entry["status"] = self.serve_api(path, query, body, entry)
        finally:
            if not long_running:
                sim.leave()

    def inject(self, f, path, query, body, entry):
        """Apply a fault; True when the request has been answered (or dropped)."""
        if f.get("mutate") is not None:
            info = self.server.sim.api.request_info(k8s.Request("GET", path, {}, {}, b""))
            ns = info.namespace if RESOURCES.get(info.resource, (0, 0, False))[2] else ""
            self.server.sim.api.mutate(info.resource, ns, info.name, f["mutate"])
        if f.get("latency_ms"):
            time.sleep(f["latency_ms"] / 1000.0)
        action = f.get("action") or ("status" if f.get("status") else "none")
        entry["fault"] = action
        if action == "drop":
            entry["status"] = "dropped"
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.wfile = io.BytesIO()
            return True
        if action == "timeout":
            # Carried out, but the answer never comes: what a client sees
            # when a slow server finishes after the client stopped waiting.
            self.wfile = io.BytesIO()
            entry["status"] = self.serve_api(path, query, body, entry)
            time.sleep(f.get("hold_ms", 5000) / 1000.0)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return True
        if action == "conflict":
            info = self.server.sim.api.request_info(k8s.Request("GET", path, {}, {}, b""))
            entry["status"] = 409
            self.respond_error(conflict(info.resource, info.name), query)
            return True
        if action == "status":
            code = int(f.get("status") or 500)
            entry["status"] = code
            hdrs = [("Retry-After", str(f["retry_after"]))] if f.get("retry_after") is not None else []
            if f.get("body") is not None:
                b = f["body"].encode("utf-8")
                ctype = f.get("content_type") or ("application/json" if b[:1] == b"{" else "text/plain; charset=utf-8")
                self.send(code, b, ctype, hdrs)
            elif code == 429 and f.get("content_type", "text/plain").startswith("text/plain"):
                if not hdrs:
                    hdrs = [("Retry-After", "1")]
                self.send(code, APF_BODY, "text/plain; charset=utf-8", hdrs + [("X-Content-Type-Options", "nosniff")])
            else:
                reason, msg = FAULT_STATUS.get(code, ("", "the server responded with the status code %d but did "
                                                          "not return more information" % code))
                det = None
                if code == 500:
                    det = details(causes=[{"message": "apisim injected fault"}])
                if f.get("retry_after"):
                    det = dict(det or {}, retryAfterSeconds=int(f["retry_after"]))
                self.respond_obj(code, status_obj("Failure", msg, reason, det, code), query, hdrs)
            return True
        return False  # delay / none: handle normally

    def serve_api(self, path, query, body, entry):
        api = self.server.sim.api
        try:
            user, presented = api.authenticate(self.headers, self.cert_user())
            if user is None and (presented or path not in PUBLIC_PATHS):
                raise UNAUTHORIZED
            entry["user"] = user["name"] if user else None
            p = path.rstrip("/") or "/"
            if p == "/version":
                obj = VERSION
            elif p in ("/healthz", "/livez", "/readyz"):
                self.send(200, b"ok", "text/plain; charset=utf-8")
                return 200
            elif p == "/api":
                obj = {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:%d" % self.server.server_address[1]}]}
            elif p == "/apis":
                obj = {"kind": "APIGroupList", "apiVersion": "v1", "groups": [COORDINATION_GROUP]}
            elif p == "/apis/coordination.k8s.io":
                obj = dict({"kind": "APIGroup", "apiVersion": "v1"}, **COORDINATION_GROUP)
            elif p == "/apis/coordination.k8s.io/v1":
                obj = coordination_resource_list()
            elif p == "/openapi/v3/apis/coordination.k8s.io/v1":
                obj = openapi_coordination()
            elif p == "/api/v1":
                obj = api_resource_list()
            elif p == "/openapi/v3":
                obj = {"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=0123ABCD"},
                                 "apis/coordination.k8s.io/v1": {
                                     "serverRelativeURL": "/openapi/v3/apis/coordination.k8s.io/v1?hash=4567CDEF"}}}
            elif p == "/openapi/v3/api/v1":
                obj = openapi_v1()
            elif path.startswith("/api/v1/") or (path.startswith("/apis/") and path.count("/") >= 4):
                req = k8s.Request(self.command, path, query, self.headers, body, user)
                try:
                    entry["verb"] = api.request_info(req).verb
                except APIError:
                    pass
                res = api.handle(req)
                if getattr(res, "watch", None) is not None:
                    return self.stream_watch(res.watch, entry)
                self.respond_obj(res.code, res.obj, query, res.headers)
                return res.code
            else:
                raise not_found_path()
            if self.command not in ("GET", "HEAD"):
                raise APIError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource", {})
            self.respond_obj(200, obj, query)
            return 200
        except APIError as e:
            self.respond_error(e, query)
            return e.code
        except Exception as e:  # a simulator bug must still answer like a server would
            import traceback
            traceback.print_exc()
            self.respond_obj(500, status_obj("Failure", "Internal error occurred: apisim: %r" % e,
                                             "InternalError", None, 500), query)
            return 500


    def client_gone(self):
        """A watching client sends nothing: a readable socket means it closed
        (Go's server notices the same through its background read)."""
        try:
            if isinstance(self.connection, ssl.SSLSocket) and self.connection.pending():
                return True
            return bool(select.select([self.connection], [], [], 0)[0])
        except (OSError, ValueError):
            return True

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def stream_watch(self, w, entry):
        """Serve a watch as k8s.io/apiserver/pkg/endpoints/handlers/watch.go
        serveWatch does: 200, chunked, one JSON WatchEvent per chunk and line,
        objects encoded as GET encodes them; the stream ends cleanly (the
        terminating chunk) at the timeout: timeoutSeconds, or when absent/0
        --min-request-timeout times a random factor in [1, 2)
        (handlers/get.go ListResource: `if timeout == 0 && minRequestTimeout > 0`). Bookmarks (allowWatchBookmarks) come
        roughly every bookmarkFrequency (a minute) and 2 s before the deadline
        (cacher/cache_watcher.go nextBookmarkTime). A reset, restore or
        restart drops the connection without the terminating chunk."""
        sim, api = self.server.sim, self.server.sim.api
        timeout = w.timeout  # negative: over at once, as upstream ("in keeping with 1.30 behavior")
        if timeout == 0:
            timeout = sim.min_request_timeout * ((random.random() + 1.0) if sim.randomize_timeout else 1.0)
        start = time.monotonic()
        deadline = start + timeout

        def next_bookmark(now):
            t = min(now + sim.bookmark_seconds, deadline - 2.0)
            return t if t >= now else None

        self.send_response_only(200)
        self.send_header("Audit-Id", str(uuid.uuid4()))
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Content-Type", "application/json")
        self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        # Keys set before the status, so GET /log (another thread) sees no dict change size.
        entry["watch_events"] = 0
        entry["watch_end"] = None
        entry["status"] = 200
        with sim.lock:
            sim.watches_open += 1
        counted = [True]

        def over(how):
            # Not counted as open any more before the client can see the end,
            # so that GET /watch never shows a watch its client saw end.
            entry["watch_end"] = how
            if counted[0]:
                counted[0] = False
                with sim.lock:
                    sim.watches_open -= 1
        ended = "timeout"
        try:
            def send(typ, obj):
                self.write_chunk(gojson.encode({"type": typ, "object": obj}))
                entry["watch_events"] += 1
            if w.wait_for is not None:
                with api.cond:
                    limit = time.monotonic() + TOO_LARGE_WAIT_SECONDS
                    while api.rv < w.wait_for and time.monotonic() < limit and api.generation == w.generation:
                        api.cond.wait(limit - time.monotonic())
                    if api.rv >= w.wait_for:
                        api.watch_initial(w)
                    else:
                        w.error = api.too_large(w.wait_for)
            if w.error is not None:
                send("ERROR", w.error)
                ended = "error"
                over(ended)
                self.write_chunk(b"")
                return 200
            for obj in w.initial:
                send("ADDED", obj)
            if w.initial_end:
                send("BOOKMARK", w.bookmark(w.last, initial_end=True))
            bookmark_at = next_bookmark(time.monotonic()) if w.bookmarks else None
            while True:
                with api.cond:
                    while True:
                        if api.generation != w.generation:
                            ended = "dropped"
                            break
                        events = api.watch_pending(w)
                        now = time.monotonic()
                        if api.end_generation != w.end_generation:
                            deadline = now  # POST /watch/end: over, cleanly
                        if events or now >= deadline or (bookmark_at is not None and now >= bookmark_at):
                            break
                        if self.client_gone():
                            ended = "client"
                            break
                        wake = deadline if bookmark_at is None else min(deadline, bookmark_at)
                        api.cond.wait(min(wake - now, CLIENT_CHECK_SECONDS))
                    current_rv = api.rv
                if ended == "client":
                    self.close_connection = True
                    return 200
                if ended == "dropped":
                    over(ended)
                    self.close_connection = True
                    try:
                        socket.socket.shutdown(self.connection, socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return 200
                for e in events:
                    w.last = e.rv
                    out = w.translate(e)
                    if out is not None:
                        send(*out)
                now = time.monotonic()
                if bookmark_at is not None and now >= bookmark_at:
                    send("BOOKMARK", w.bookmark(max(current_rv, w.last)))
                    bookmark_at = next_bookmark(now)
                if now >= deadline:
                    over(ended)
                    self.write_chunk(b"")
                    return 200
        except OSError:  # the client went away
            ended = "client"
            self.close_connection = True
            return 200
        finally:
            over(ended)


class ControlHandler(Handler):
    def reply(self, code, obj):
        self.send(code, (json.dumps(obj, indent=1) + "\n").encode(), "application/json")

    def dispatch(self):
        sim = self.server.sim
        api = sim.api
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        raw = self.read_body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError as e:
            return self.reply(400, {"error": "bad JSON: %s" % e})
        route = (self.command, url.path.rstrip("/"))
        try:
            if route == ("POST", "/reset"):
                sim.reset()
                return self.reply(200, {"ok": True})
            if route == ("POST", "/namespaces"):
                ns = api.add_namespace(body["name"], body.get("labels"), body.get("default_sa", True))
                return self.reply(201, ns)
            if route == ("POST", "/objects"):
                return self.reply(201, self.put_object(body))
            if route == ("GET", "/objects"):
                return self.reply(200, api.list_objects(q.get("kind"), q.get("namespace")))
            if route == ("GET", "/object"):
                res = KIND_TO_RESOURCE.get(q.get("kind", ""))
                ns = q.get("namespace", "") if res and RESOURCES[res][2] else ""
                with api.lock:
                    obj = api.objects.get((res, ns, q.get("name", "")))
                return self.reply(200, obj) if obj else self.reply(404, {"error": "not found"})
            if route == ("POST", "/grant"):
                with api.lock:
                    api.grants.append(body)
                return self.reply(200, {"grants": api.grants})
            if route == ("POST", "/users"):
                with api.lock:
                    api.tokens[body["token"]] = {"name": body["name"], "groups": body.get("groups", [])}
                return self.reply(200, {"ok": True})
            if route == ("POST", "/faults"):
                faults = body if isinstance(body, list) else [body]
                with sim.lock:
                    for f in faults:
                        f["remaining"] = int(f.get("count", 1))
                        f["to_skip"] = int(f.get("skip", 0))
                        sim.faults.append(f)
                return self.reply(200, {"faults": sim.faults})
            if route == ("GET", "/faults"):
                return self.reply(200, {"faults": sim.faults})
            if route == ("DELETE", "/faults"):
                with sim.lock:
                    sim.faults = []
                return self.reply(200, {"ok": True})
            if route == ("GET", "/log"):
                with sim.lock:
                    return self.reply(200, list(sim.log))
            if route == ("DELETE", "/log"):
                with sim.lock:
                    sim.log = []
                return self.reply(200, {"ok": True})
            if route == ("GET", "/history"):
                with api.lock:
                    return self.reply(200, [h for h in api.history
                                            if all(h[k] == q[k] for k in ("kind", "namespace", "name") if k in q)])
            if route == ("DELETE", "/history"):
                with api.lock:
                    api.history = []
                return self.reply(200, {"ok": True})
            if route == ("POST", "/save"):
                state = api.save_state()
                with sim.lock:
                    sim.saved[body["name"]] = state
                return self.reply(200, {"ok": True})
            if route == ("POST", "/restore"):
                with sim.lock:
                    state = sim.saved.get(body["name"])
                if state is None:
                    return self.reply(404, {"error": "no saved state %r" % body["name"]})
                api.restore_state(state)
                return self.reply(200, {"ok": True})
            if route == ("POST", "/paging"):
                with sim.lock:
                    mp = body.get("max_page")
                    api.max_page = int(mp) if mp else None
                return self.reply(200, {"max_page": api.max_page})
            if route == ("POST", "/throttle"):
                with sim.lock:
                    mi = body.get("max_inflight")
                    sim.max_inflight = int(mi) if mi is not None else None
                    sim.throttle_retry = int(body.get("retry_after", 1))
                return self.reply(200, {"max_inflight": sim.max_inflight})
            if route == ("DELETE", "/throttle"):
                with sim.lock:
                    sim.max_inflight = None
                return self.reply(200, {"ok": True})
            if route == ("POST", "/compact"):
                return self.reply(200, {"compacted": api.compact()})
            if route == ("POST", "/watch"):
                with sim.lock:
                    if "min_request_timeout" in body:
                        sim.min_request_timeout = float(body["min_request_timeout"])
                    if "randomize" in body:
                        sim.randomize_timeout = bool(body["randomize"])
                    if "bookmark_seconds" in body:
                        sim.bookmark_seconds = float(body["bookmark_seconds"])
                return self.reply(200, self.watch_state())
            if route == ("POST", "/watch/end"):
                with sim.lock:
                    n = sim.watches_open
                api.end_watches()
                return self.reply(200, {"ended": n})
            if route == ("GET", "/watch"):
                return self.reply(200, self.watch_state())
            if route == ("POST", "/restart"):
                with sim.lock:
                    sim.down_until = time.monotonic() + float(body.get("down_ms", 0)) / 1000.0
                with api.lock:
                    api.new_watch_window(api.rv)
                sim.drop_connections()
                return self.reply(200, {"resourceVersion": str(api.rv)})
            if route == ("GET", "/healthz"):
                return self.reply(200, {"ok": True})
            return self.reply(404, {"error": "no such control endpoint %s %s" % route})
        except (KeyError, TypeError, ValueError) as e:
            return self.reply(400, {"error": "%s: %s" % (type(e).__name__, e)})
        except APIError as e:
            return self.reply(e.code, e.status())

    def watch_state(self):
        sim, api = self.server.sim, self.server.sim.api
        with sim.lock:
            st = {"open": sim.watches_open, "min_request_timeout": sim.min_request_timeout,
                  "randomize": sim.randomize_timeout, "bookmark_seconds": sim.bookmark_seconds}
        with api.lock:
            st.update(resourceVersion=str(api.rv), compacted=str(api.watch_floor))
        return st

    def put_object(self, body):
        """Store an object as given (bypasses auth, admission and validation)."""
        api = self.server.sim.api
        kind = body.get("kind", "")
        res = KIND_TO_RESOURCE.get(kind)
        if res is None:
            raise ValueError("unsupported kind %r" % kind)
        obj, _ = api.decode_object(body, kind, "Ignore", None, create_style=True)
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if RESOURCES[res][2] else ""
        if RESOURCES[res][2] and not ns:
            raise ValueError("metadata.namespace is required")
        meta.pop("resourceVersion", None)
        with api.lock:
            return api.put_new(res, ns, meta["name"], obj)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, sim, tls=None, verbose=False, track=False):
        self.sim, self.tls, self.verbose, self.track = sim, tls, verbose, track
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the per-connection thread, so a slow or failing
        # client never blocks the accept loop.
        conn = request
        if self.track and time.monotonic() < self.sim.down_until:  # "restarting"
            return
        if self.tls is not None:
            request.settimeout(10)
            try:
                conn = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                if self.verbose:
                    sys.stderr.write("apisim: TLS handshake failed: %s\n" % e)
                return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            if conn is not request:  # wrap_socket detached the original socket
                conn.close()

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--certs", help="directory made by mkcerts")
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--plain", action="store_true", help="serve the API over plain HTTP")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--min-request-timeout", type=float, default=1800.0,
                    help="kube-apiserver's: a watch without timeoutSeconds ends after this many seconds "
                         "times a random factor in [1, 2)")
    ap.add_argument("--log-file", help="also append each request log entry to this file, as a JSON line")
    args = ap.parse_args()

    tls = None
    if not args.plain:
        if not args.certs:
            ap.error("--certs is required unless --plain")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(os.path.join(args.certs, "server.crt"), os.path.join(args.certs, "server.key"))
        tls.load_verify_locations(os.path.join(args.certs, "ca.crt"))
        tls.verify_mode = ssl.CERT_OPTIONAL  # like --client-ca-file: certificates optional, verified if sent

    sim = Sim(args.plain, load_tokens(args.certs))
    sim.log_file = open(args.log_file, "a", buffering=1) if args.log_file else None
    sim.default_min_request_timeout = sim.min_request_timeout = args.min_request_timeout
    api_srv = Server(("127.0.0.1", 0), APIHandler, sim, tls, args.verbose, track=True)
    ctl_srv = Server(("127.0.0.1", 0), ControlHandler, sim, None, args.verbose)
    for s in (api_srv, ctl_srv):
        threading.Thread(target=s.serve_forever, daemon=True).start()

    ready = {"api": "%s://127.0.0.1:%d" % ("http" if args.plain else "https", api_srv.server_address[1]),
             "control": "http://127.0.0.1:%d" % ctl_srv.server_address[1], "pid": os.getpid()}
    tmp = args.ready_file + ".tmp.%d" % os.getpid()
    with open(tmp, "w") as f:
        json.dump(ready, f)
    os.rename(tmp, args.ready_file)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    for s in (api_srv, ctl_srv):
        s.shutdown()
        s.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
