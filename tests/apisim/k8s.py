"""The API semantics: store, auth, and the REST verbs, ordered as kube-apiserver
orders its checks (authn -> authz -> content type -> options -> decode ->
namespace match -> mutating admission -> existence/preconditions -> validation
-> storage), because which error a client sees first is part of the contract.
"""

import base64
import bisect
import copy
import datetime
import json
import re
import threading
import uuid

import gojson
from gojson import GoJSONError, go_quote, json_type_name
from k8stypes import (APIError, FieldError, GROUP_VERSION, KIND_TO_RESOURCE, RESOURCES, V1_KINDS, DecodeContext,
                      already_exists, bad_request, conflict, decode_value, details, encode_for, forbidden,
                      generate_name, generic_422, internal, invalid, method_not_allowed, not_found, not_found_path,
                      status_obj, too_large, unsupported_media, validate_lease, validate_lease_spec,
                      validate_namespace, validate_pod,
                      validate_meta_update, validate_pod_update, validate_secret, validate_secret_update,
                      validate_service_account)
import patch as patchlib

PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]
BODY_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
MAX_BODY = 3 * 1024 * 1024
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
INTERPRET_STRUCT = 'struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }'
ADMIN_GROUP = "system:masters"


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Request:
    def __init__(self, method, path, query, headers, body, user=None):
        self.method, self.path, self.query, self.headers, self.body = method, path, query, headers, body
        self.user = user  # {"name":..., "groups": [...]} after authentication

    def q(self, name, default=""):
        v = self.query.get(name)
        return v[-1] if v else default

    @property
    def user_agent(self):
        return self.headers.get("User-Agent", "")


class Result:
    def __init__(self, code, obj=None, headers=None, raw=None, content_type="application/json"):
        self.code, self.obj, self.headers, self.raw, self.content_type = code, obj, headers or [], raw, content_type


def go_parse_bool(name, v):
    if v in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if v in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise bad_request('strconv.ParseBool: parsing %s: invalid syntax' % go_quote(v))


class Options:
    """CreateOptions / UpdateOptions / PatchOptions / DeleteOptions from the query."""

    def __init__(self, req, kind, patch_type=None, body_opts=None):
        src = body_opts if body_opts is not None else {k: v for k, v in req.query.items()}
        def last(name):
            v = src.get(name)
            if isinstance(v, list):
                return v[-1] if v else ""
            return v if v is not None else ""
        dry = src.get("dryRun") or []
        self.dry_run = [dry] if isinstance(dry, str) else list(dry)
        self.field_manager = last("fieldManager")
        self.field_validation = last("fieldValidation")
        self.force = None
        if "force" in src:
            f = last("force")
            self.force = f if isinstance(f, bool) else go_parse_bool("force", f)
        errs = []
        if kind == "PatchOptions":
            if patch_type != "application/apply-patch+yaml":
                if self.force is not None:
                    errs.append(FieldError("Forbidden", "force", None, "may not be specified for non-apply patch"))
            elif not self.field_manager:
                errs.append(FieldError("Required", "fieldManager", None, "is required for apply patch"))
        if kind != "DeleteOptions":
            if len(self.field_manager.encode()) > 128:
                errs.append(FieldError("TooLong", "fieldManager", None, "may not be more than 128 bytes"))
            for i, ch in enumerate(self.field_manager):
                if not (ch == " " or gojson._printable(ch)):
                    errs.append(FieldError("Invalid", "fieldManager", self.field_manager,
                                           "invalid character U+%04X (at position %d)" % (ord(ch), i)))
        else:
            pp = src.get("propagationPolicy")
            if pp is not None and pp not in ("Foreground", "Background", "Orphan"):
                errs.append(FieldError("NotSupported", "propagationPolicy", pp,
                                       'supported values: "Foreground", "Background", "Orphan", "nil"'))
        if any(d != "All" for d in self.dry_run):
            errs.append(FieldError("NotSupported", "dryRun", self.dry_run, 'supported values: "All"'))
        if kind != "DeleteOptions" and self.field_validation not in ("", "Ignore", "Strict", "Warn"):
            errs.append(FieldError("NotSupported", "fieldValidation", self.field_validation,
                                   'supported values: "", "Ignore", "Strict", "Warn"'))
        if errs:
            raise invalid(kind, "", errs, group="meta.k8s.io")
        if not self.field_manager:
            # The apiserver names an anonymous writer after its User-Agent.
            self.field_manager = req.user_agent.split("/")[0][:128]
        # Since 1.27 the server-side default is Warn.
        self.validation = self.field_validation or "Warn"

    @property
    def dry(self):
        return bool(self.dry_run)


def warning_header(text):
    return ("Warning", '299 - "%s"' % text.replace("\\", "\\\\").replace('"', '\\"'))


def api_group(resource):
    return GROUP_VERSION.get(resource, "/").split("/")[0] if resource in GROUP_VERSION else ""


class RequestInfo:
    def __init__(self, resource, namespace, name, subresource, verb):
        self.resource, self.namespace, self.name, self.subresource, self.verb = (
            resource, namespace, name, subresource, verb)


class WatchEvent:
    __slots__ = ("rv", "type", "key", "obj", "prev")

    def __init__(self, rv, typ, key, obj, prev):
        self.rv, self.type, self.key, self.obj, self.prev = rv, typ, key, obj, prev


class Watch:
    """One watch request (GET ...?watch=true), as the apiserver's cacher
    serves it: what it selects, where it starts, what it owes the client
    first. The streaming itself is apisim.py's (APIHandler.stream_watch)."""

    def __init__(self, resource, namespace, labels, fields):
        self.resource, self.namespace, self.labels, self.fields = resource, namespace, labels, fields
        self.kind = RESOURCES[resource][0]
        self.api_version = GROUP_VERSION.get(resource, "v1")
        self.initial = []      # ADDED objects owed first (resourceVersion "" or "0")
        self.initial_end = False  # then a BOOKMARK annotated k8s.io/initial-events-end (sendInitialEvents)
        self.wait_for = None   # sendInitialEvents=true with a resourceVersion the store has not reached
        self.error = None      # a Status sent as the one ERROR event (410 Expired)
        self.last = 0          # the resourceVersion the client has seen
        self.bookmarks = False
        self.timeout = 0       # timeoutSeconds (0: the server's default)
        self.generation = 0

    def selects(self, key, obj):
        res, ns, _ = key
        if res != self.resource or (self.namespace and ns != self.namespace):
            return False
        return (all(r(obj["metadata"].get("labels") or {}) for r in self.labels)
                and all(r(obj) for r in self.fields))

    def translate(self, e):
        """The event this watcher sees, or None. With a selector, an object
        that starts matching is ADDED and one that stops is DELETED
        (k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go convertToWatchEvent)."""
        cur = self.selects(e.key, e.obj)
        if e.type == "ADDED":
            return ("ADDED", e.obj) if cur else None
        if e.type == "DELETED":
            return ("DELETED", e.obj) if self.selects(e.key, e.prev) else None
        old = self.selects(e.key, e.prev)
        if cur and old:
            return ("MODIFIED", e.obj)
        if cur:
            return ("ADDED", e.obj)
        if old:
            return ("DELETED", e.obj)
        return None

    def bookmark(self, rv, initial_end=False):
        """BOOKMARK: an empty object of the kind with only the resourceVersion
        (cacher.go dispatchEvent / watch_cache.go newBookmark)."""
        meta = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return encode_for(self.kind, {"kind": self.kind, "apiVersion": self.api_version, "metadata": meta})


class API:
    def __init__(self, plain=False, tokens=None):
        self.lock = threading.RLock()
        # Watchers wait on this for new events (notify_all on every write).
        self.cond = threading.Condition(self.lock)
        self.generation = 0  # bumped by reset/restore/restart: open watches of an older one are dropped
        self.end_generation = 0  # bumped by POST /watch/end: open watches of an older one end cleanly
        self.plain = plain
        self.default_tokens = tokens or {"admin-token": {"name": "admin", "groups": [ADMIN_GROUP]},
                                         "alice-token": {"name": "alice", "groups": []}}
        self.server_address = "127.0.0.1:6443"
        self.reset()

    # --- state --------------------------------------------------------------

    def reset(self):
        with self.lock:
            self.objects = {}   # (resource, namespace, name) -> canonical object
            self.owners = {}    # same key -> {unit tuple: {manager: "Apply"|"Update"}}
            self.history = []   # every change to self.objects, in order (see record)
            self.rv = 100
            self.new_watch_window(0)
            self.max_page = None  # the most items a LIST page holds (control API /paging)
            self.tokens = copy.deepcopy(self.default_tokens)
            self.grants = []
            for ns in ("default", "kube-system"):
                self.add_namespace(ns)

    def new_watch_window(self, floor):
        """Forget the watch events and drop open watches (reset, restore,
        restart). `floor` is the compacted revision: a watch from an older
        resourceVersion gets 410 Expired (see watch_start)."""
        with self.lock:
            self.events = []  # WatchEvent, in resourceVersion order
            self.watch_floor = floor
            self.generation += 1
            self.cond.notify_all()

    def compact(self):
        """The watch cache no longer holds any event up to the current
        resourceVersion, as when its window (capacity, eventFreshDuration) has
        moved on or it was re-listed after an etcd compaction or a restart:
        watches from an older resourceVersion get 410 Expired, with
        oldest-1 = this one in the message. Running watches are not affected
        (a cacheWatcher already has its events)."""
        with self.lock:
            self.watch_floor = self.rv
            return self.rv

    def end_watches(self):
        """Every open watch ends now, cleanly, as at its timeout."""
        with self.lock:
            self.end_generation += 1
            self.cond.notify_all()

    def emit(self, typ, key, obj, prev):
        with self.lock:
            self.events.append(WatchEvent(int(obj["metadata"]["resourceVersion"]), typ, key, obj, prev))
            self.cond.notify_all()

    def next_rv(self):
        self.rv += 1
        return str(self.rv)

    def record(self, op, key, obj):
        """Keeps each stored version (op "put") and each removal (op "delete"),
        so that a test can check what every version of an object held, not
        only the last one."""
        resource, ns, name = key
        self.history.append({"seq": len(self.history) + 1, "op": op, "kind": RESOURCES[resource][0],
                             "namespace": ns, "name": name, "object": copy.deepcopy(obj)})

    def store(self, key, obj):
        prev = self.objects.get(key)
        self.objects[key] = obj
        self.record("put", key, obj)
        self.emit("MODIFIED" if prev is not None else "ADDED", key, obj, prev)

    def remove(self, key):
        obj = self.objects.pop(key, None)
        self.owners.pop(key, None)
        if obj is not None:
            self.record("delete", key, obj)
            # A delete is an etcd revision too; the DELETED event carries the
            # last state with that revision as its resourceVersion
            # (k8s.io/apiserver/pkg/storage/etcd3/watcher.go prepareObjs:
            # decodeObj(prevValue, e.rev)).
            gone = copy.deepcopy(obj)
            gone["metadata"]["resourceVersion"] = self.next_rv()
            self.emit("DELETED", key, gone, obj)

    def save_state(self):
        """A copy of the store, for restore_state."""
        with self.lock:
            return copy.deepcopy((self.rv, self.objects, self.owners))

    def restore_state(self, state):
        """Puts the store back as save_state found it; the history starts anew."""
        with self.lock:
            self.rv, self.objects, self.owners = copy.deepcopy(state)
            self.history = []
            self.new_watch_window(self.rv)

    def add_namespace(self, name, labels=None, default_sa=True):
        with self.lock:
            ns = {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": name, "labels": dict(labels or {})},
                  "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"] = name
            self.put_new("namespaces", "", name, ns)
            if default_sa:
                self.ensure_default_sa(name)
            return self.objects[("namespaces", "", name)]

    def ensure_default_sa(self, ns):
        """What the ServiceAccounts controller does: an empty 'default' SA."""
        if ("namespaces", "", ns) in self.objects and ("serviceaccounts", ns, "default") not in self.objects:
            self.put_new("serviceaccounts", ns, "default",
                         {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": {"name": "default", "namespace": ns}})

    def put_new(self, resource, ns, name, obj):
        kind = RESOURCES[resource][0]
        obj = copy.deepcopy(obj)
        obj["kind"], obj["apiVersion"] = kind, GROUP_VERSION.get(resource, "v1")
        meta = obj.setdefault("metadata", {})
        meta["name"] = name
        if ns:
            meta["namespace"] = ns
        meta["uid"] = meta.get("uid") or str(uuid.uuid4())
        meta["creationTimestamp"] = meta.get("creationTimestamp") or now()
        meta["resourceVersion"] = self.next_rv()
        obj = encode_for(kind, obj)
        self.store((resource, ns, name), obj)
        return obj

    def store_update(self, key, obj):
        """Write unless byte-identical (etcd3 store skips no-op writes, RV unchanged)."""
        old = self.objects[key]
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        obj = encode_for(old["kind"], obj)
        if gojson.marshal(obj) == gojson.marshal(old):
            return old
        obj["metadata"]["resourceVersion"] = self.next_rv()
        self.store(key, obj)
        return obj

    def list_objects(self, kind=None, namespace=None):
        with self.lock:
            out = []
            for (res, ns, name), obj in sorted(self.objects.items(), key=lambda kv: (kv[0][0], kv[0][1] + "/" + kv[0][2])):
                if kind and obj["kind"] != kind:
                    continue
                if namespace is not None and ns != namespace:
                    continue
                out.append(obj)
            return out

    # --- authn / authz ------------------------------------------------------

    def authenticate(self, headers, cert_user):
        """Union authenticator: client certificate first, then bearer token.
        Returns (user or None, presented_credentials)."""
        if cert_user:
            return cert_user, True
        auth = headers.get("Authorization", "")
        if auth:
            if auth.startswith("Bearer "):
                u = self.tokens.get(auth[len("Bearer "):].strip())
                if u:
                    return u, True
            return None, True
        if self.plain:
            # --plain mimics the old insecure port: no credentials means full access.
            return {"name": "admin", "groups": [ADMIN_GROUP]}, False
        return None, False

    def authorize(self, user, info):
        if user["name"] == "admin" or ADMIN_GROUP in user.get("groups", []):
            return
        for g in self.grants:
            if g.get("user") != user["name"]:
                continue
            if not (set(g.get("verbs", [])) & {info.verb, "*"}):
                continue
            if not (set(g.get("resources", [])) & {info.resource, "*"}):
                continue
            nss = g.get("namespaces", ["*"])
            if "*" in nss or (info.namespace and info.namespace in nss):
                return
        res = info.resource + ("/" + info.subresource if info.subresource else "")
        if info.namespace:
            msg = 'User %s cannot %s resource %s in API group "%s" in the namespace %s' % (
                go_quote(user["name"]), info.verb, go_quote(res), api_group(info.resource), go_quote(info.namespace))
        else:
            msg = 'User %s cannot %s resource %s in API group "%s" at the cluster scope' % (
                go_quote(user["name"]), info.verb, go_quote(res), api_group(info.resource))
        msg = msg.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        raise forbidden(info.resource, info.name, msg)

    # --- routing ------------------------------------------------------------

    def request_info(self, req):
        group_version = "v1"
        if req.path.startswith("/apis/"):
            parts = req.path[len("/apis/"):].split("/")
            if len(parts) < 3 or not parts[2]:
                raise not_found_path()
            group_version, parts = parts[0] + "/" + parts[1], parts[2:]
        else:
            parts = [p for p in req.path[len("/api/v1/"):].split("/")]
        if parts and parts[-1] == "":
            parts = parts[:-1]
        ns = name = sub = ""
        if parts[0] == "namespaces" and len(parts) >= 3 and parts[2] not in ("status", "finalize"):
            ns, resource = parts[1], parts[2]
            name = parts[3] if len(parts) > 3 else ""
            sub = "/".join(parts[4:])
        elif parts[0] == "namespaces":
            resource = "namespaces"
            name = ns = parts[1] if len(parts) > 1 else ""
            sub = "/".join(parts[2:])
        else:
            resource = parts[0]
            name = parts[1] if len(parts) > 1 else ""
            sub = "/".join(parts[2:])
        m = req.method
        if m == "GET":
            verb = "get" if name else ("watch" if go_bool_q(req.q("watch")) else "list")
        elif m == "POST":
            verb = "create"
        elif m == "PUT":
            verb = "update"
        elif m == "PATCH":
            verb = "patch"
        elif m == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = m.lower()
        if GROUP_VERSION.get(resource, "v1") != group_version:
            raise not_found_path()
        return RequestInfo(resource, ns, name, sub, verb)

    def handle(self, req):
        info = self.request_info(req)
        self.authorize(req.user, info)
        spec = RESOURCES.get(info.resource)
        if spec is None or info.subresource:
            raise not_found_path()
        namespaced = spec[2]
        # /api/v1/secrets/x is not a route; /api/v1/namespaces/x/namespaces neither.
        if (namespaced and not info.namespace and info.name) or (not namespaced and info.resource != "namespaces"):
            raise not_found_path()
        if info.resource == "namespaces" and req.path.rstrip("/").count("/") > 4:
            raise not_found_path()
        if len(req.body) > MAX_BODY:
            raise too_large("limit is %d" % MAX_BODY)
        with self.lock:
            if info.verb == "get":
                return Result(200, self.get(info))
            if info.verb == "list":
                return Result(200, self.list(req, info))
            if info.verb == "watch":
                res = Result(200)
                res.watch = self.watch_start(req, info)
                return res
            if info.verb == "create" and not info.name:
                return self.create(req, info)
            if info.verb == "update" and info.name:
                return self.update(req, info)
            if info.verb == "patch" and info.name:
                return self.patch(req, info)
            if info.verb == "delete":
                return self.delete(req, info)
            if info.verb == "deletecollection" and info.resource != "namespaces":
                return self.delete_collection(req, info)
        raise method_not_allowed()

    # --- GET / LIST ---------------------------------------------------------

    def key(self, info, name=None):
        ns = info.namespace if RESOURCES[info.resource][2] else ""
        return (info.resource, ns, name if name is not None else info.name)

    def get(self, info):
        obj = self.objects.get(self.key(info))
        if obj is None:
            raise not_found(info.resource, info.name)
        return obj

    def list(self, req, info):
        kind = RESOURCES[info.resource][0]
        labels = parse_label_selector(req.q("labelSelector"))
        fields = parse_field_selector(req.q("fieldSelector"), info.resource)
        items = []
        for (res, ns, name), obj in sorted(self.objects.items(), key=lambda kv: kv[0][1] + "/" + kv[0][2]):
            if res != info.resource or (info.namespace and ns != info.namespace and info.resource != "namespaces"):
                continue
            if not all(r(obj["metadata"].get("labels") or {}) for r in labels):
                continue
            if not all(r(obj) for r in fields):
                continue
            item = dict(obj)
            # Items of a real list response carry no kind/apiVersion.
            item.pop("kind", None)
            item.pop("apiVersion", None)
            items.append((ns + "/" + name, item))
        return self.page(kind, items, req, info.resource)

    def page(self, kind, items, req, info_resource):
        """limit and continue, as the apiserver's etcd3 store pages a LIST
        (k8s.io/apiserver/pkg/storage/etcd3/store.go GetList): at most limit
        items, then metadata.continue (base64 JSON of the start key and the
        list's resourceVersion) and remainingItemCount. The server may return
        fewer than limit (max_page, set by the control API, forces that), and a
        token it cannot read is a 400; an expired one (410) is a fault's."""
        meta = {"resourceVersion": str(self.rv)}
        limit = req.q("limit")
        token = req.q("continue")
        if token:
            try:
                doc = json.loads(base64.b64decode(token, validate=True))
                start, meta["resourceVersion"] = doc["start"], str(doc["rv"])
                if doc.get("v") != "meta.k8s.io/v1":
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                raise bad_request("continue key is not valid: incorrect encoded start resourceVersion "
                                  "(version meta.k8s.io/v1)")
            items = [kv for kv in items if kv[0] >= start]
        n = None
        if limit:
            try:
                n = int(limit)
            except ValueError:
                n = None
            if n is not None and n <= 0:
                n = None
        if n is not None and self.max_page:
            n = min(n, self.max_page)
        if n is not None and len(items) > n:
            rest = items[n:]
            doc = {"v": "meta.k8s.io/v1", "rv": int(meta["resourceVersion"]), "start": rest[0][0]}
            meta["continue"] = base64.b64encode(json.dumps(doc, separators=(",", ":")).encode()).decode()
            meta["remainingItemCount"] = len(rest)
            items = items[:n]
        return {"kind": kind + "List", "apiVersion": GROUP_VERSION.get(info_resource, "v1"), "metadata": meta,
                "items": [item for _, item in items]}

    # --- WATCH --------------------------------------------------------------

    def watch_start(self, req, info):
        """Where a watch starts, as kube-apiserver v1.32's watch cache decides
        (k8s.io/apiserver/pkg/storage/cacher/watch_cache.go getAllEventsSinceLocked):
          * resourceVersion "" or "0": the current state as ADDED events, then
            what follows (for "" the real server asks etcd, with the same
            result; bookmarks are the cache's);
          * N: the events after N; N older than the compacted revision F:
            `too old resource version: N (F)`, 410 Expired, sent as a single
            ERROR event on a 200 stream ("To match the uncached watch
            implementation, once we have passed authn/authz/admission, and
            successfully parsed a resource version, other errors must fail
            with a watch event of type ERROR", cacher.go Watch: newErrWatcher).
        Called under self.lock."""
        sie = None
        if "sendInitialEvents" in req.query:
            sie = go_bool_q(req.q("sendInitialEvents"))
        self.validate_watch_options(req, sie)
        labels = parse_label_selector(req.q("labelSelector"))
        fields = parse_field_selector(req.q("fieldSelector"), info.resource)
        ns = info.namespace if RESOURCES[info.resource][2] else ""
        w = Watch(info.resource, ns, labels, fields)
        w.bookmarks = go_bool_q(req.q("allowWatchBookmarks"))
        t = req.q("timeoutSeconds")
        if t:
            try:
                w.timeout = int(t)
            except ValueError:
                raise bad_request("apisim: timeoutSeconds %s is not an integer" % go_quote(t))
        w.generation = self.generation
        w.end_generation = self.end_generation
        rv = req.q("resourceVersion")
        if rv and not rv.isdigit():
            raise bad_request("apisim: resourceVersion %s is not a number (not simulated)" % go_quote(rv))
        if sie is not None:
            # WatchList (v1.32: the WatchList feature gate is on in kube-apiserver):
            # true: the current state (not older than resourceVersion) as ADDED
            # events, then, with allowWatchBookmarks, a BOOKMARK annotated
            # k8s.io/initial-events-end; false: no initial state, from
            # resourceVersion (0 or "": from now). cacher.go Watch, watch_cache.go.
            if sie:
                w.initial_end = w.bookmarks
                if rv and int(rv) > self.rv:
                    w.wait_for = int(rv)  # the stream waits (3 s at most) for it: watch_initial
                    return w
                self.watch_initial(w)
                return w
            if rv in ("", "0"):
                w.last = self.rv
                return w
        if rv in ("", "0"):
            w.initial = [obj for key, obj in sorted(self.objects.items(), key=lambda kv: kv[0][1] + "/" + kv[0][2])
                         if w.selects(key, obj)]
            w.last = self.rv
        elif not rv.isdigit():
            raise bad_request("apisim: resourceVersion %s is not a number (not simulated)" % go_quote(rv))
        else:
            w.last = int(rv)
            if w.last < self.watch_floor:
                w.error = status_obj("Failure", "too old resource version: %d (%d)" % (w.last, self.watch_floor),
                                     "Expired", None, 410)
        return w

    def watch_initial(self, w):
        """sendInitialEvents=true: the current state. Called under self.lock."""
        w.initial = [obj for key, obj in sorted(self.objects.items(), key=lambda kv: kv[0][1] + "/" + kv[0][2])
                     if w.selects(key, obj)]
        w.last = self.rv

    def too_large(self, rv):
        """storage.NewTooLargeResourceVersionError, after the watch cache waited
        3 s for rv (watch_cache.go waitUntilFreshAndBlock), sent as the ERROR event."""
        return status_obj("Failure", "Too large resource version: %d, current: %d" % (rv, self.rv), "Timeout",
                          details(causes=[{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}],
                                  retry=1), 504)

    def validate_watch_options(self, req, sie):
        """k8s.io/apimachinery/pkg/apis/meta/internalversion/validation
        validateWatchOptions (WatchList enabled): 422 ListOptions.meta.k8s.io."""
        match = req.q("resourceVersionMatch")
        errs = []
        if sie is not None and match != "NotOlderThan":
            errs.append(FieldError("Forbidden", "resourceVersionMatch", None,
                                   "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
        if match:
            if sie is None:
                errs.append(FieldError("Forbidden", "resourceVersionMatch", None,
                                       "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
            if match != "NotOlderThan":
                errs.append(FieldError("NotSupported", "resourceVersionMatch", match,
                                       'supported values: "NotOlderThan"'))
            if req.q("continue"):
                errs.append(FieldError("Forbidden", "resourceVersionMatch", None,
                                       "resourceVersionMatch is forbidden when continue is provided"))
        if errs:
            raise invalid("ListOptions", "", errs, group="meta.k8s.io")

    def watch_pending(self, w):
        """Events after w.last. Called under self.lock."""
        i = bisect.bisect_right(self.events, w.last, key=lambda e: e.rv)
        return self.events[i:]

    # --- decoding -----------------------------------------------------------

    def read_body(self, req, kind, validation):
        """Decode a POST/PUT body like the apiserver's JSON serializer; returns (obj, warnings)."""
        ctype = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype == "application/vnd.kubernetes.protobuf":
            import protobuf
            try:
                raw = protobuf.decode_object(req.body, kind)
            except protobuf.Unsupported as e:
                raise unsupported_media(BODY_TYPES) from e
        elif ctype in ("", "application/json", "application/yaml", "*/*"):
            raw = self.interpret(req.body, kind)
        else:
            raise unsupported_media(BODY_TYPES)
        return self.decode_object(raw, kind, validation, req.body, create_style=True)

    def interpret(self, body, kind):
        """SimpleMetaFactory.Interpret + transformDecodeError for unreadable bodies."""
        def unrecognized(err):
            data = body
            if not data:
                summary = "<empty>"
            elif data[:1] == b"{":
                summary = data[:30].decode("utf-8", "replace") + (" ..." if len(data) > 30 else "")
            else:
                summary = data[:30].hex() + (" ..." if len(data) > 30 else "")
            return bad_request("the object provided is unrecognized (must be of type %s): "
                               "couldn't get version/kind; json parse error: %s (%s)" % (kind, err, summary))
        try:
            raw = gojson.loads(body)
        except GoJSONError as e:
            raise unrecognized(str(e))
        if raw is not None and not isinstance(raw, dict):
            raise unrecognized("json: cannot unmarshal %s into Go value of type %s" % (json_type_name(raw), INTERPRET_STRUCT))
        raw = raw or {}
        for f in ("apiVersion", "kind"):
            if raw.get(f) is not None and not isinstance(raw[f], str):
                raise unrecognized("json: cannot unmarshal %s into Go struct field .%s of type string"
                                   % (json_type_name(raw[f]), f))
        return raw

    def decode_object(self, raw, kind, validation, body, create_style, defaulting=True, shown=None):
        """create_style: POST/PUT errors (400, transformDecodeError wording); otherwise
        PATCH errors, reported as 422 'patch: Invalid value: <shown>'."""
        gv = raw.get("apiVersion") or "v1"
        k = raw.get("kind") or kind
        prefix = "%s in version %s cannot be handled as a %s: " % (k, go_quote(gv.split("/")[-1]), kind)
        want_gv = GROUP_VERSION.get(KIND_TO_RESOURCE.get(k, ""), "v1")
        if gv != want_gv or (want_gv == "v1" and k not in V1_KINDS):
            raise bad_request(prefix + 'no kind %s is registered for version %s in scheme "pkg/api/legacyscheme/scheme.go:30"'
                              % (go_quote(k), go_quote(gv)))
        if k != kind:
            raise bad_request(prefix + "converting (v1.%s) to (core.%s): unknown conversion" % (k, kind))
        ctx = DecodeContext()
        obj = decode_value(raw, RESOURCES[KIND_TO_RESOURCE[kind]][1], ctx)
        if shown is None:
            shown = gojson.marshal(_sorted(raw)).decode()
        if ctx.error:
            if create_style:
                raise bad_request(prefix + ctx.error)
            raise invalid("", "", [FieldError("Invalid", "patch", shown, ctx.error)])
        warnings = []
        if ctx.unknown:
            errs = ['unknown field "%s"' % p for p in ctx.unknown]
            if validation == "Strict":
                msg = "strict decoding error: " + ", ".join(errs)
                if create_style:
                    raise bad_request(prefix + msg)
                raise invalid("", "", [FieldError("Invalid", "patch", shown, msg)])
            if validation == "Warn":
                warnings = [warning_header(e) for e in errs]
        obj["kind"], obj["apiVersion"] = kind, want_gv
        self.default(obj, defaulting)
        return obj, warnings

    def default(self, obj, defaulting=True):
        """Conversion (stringData) and defaulting (type) that happen on every decode.
        Defaulting means a JSON PUT without `type` arrives as Opaque, so the
        strategy's keep-the-old-type rule never fires for JSON clients."""
        if obj["kind"] == "Secret":
            if obj.get("stringData"):
                data = obj.setdefault("data", {})
                for k, v in obj["stringData"].items():
                    data[k] = gojson.b64encode(v.encode("utf-8"))
                obj["data"] = {k: data[k] for k in sorted(data, key=lambda s: s.encode())}
            obj.pop("stringData", None)
            if defaulting and not obj.get("type"):
                obj["type"] = "Opaque"

    # --- CREATE -------------------------------------------------------------

    def create(self, req, info):
        kind = RESOURCES[info.resource][0]
        opts = Options(req, "CreateOptions")
        obj, warnings = self.read_body(req, kind, opts.validation)
        meta = obj["metadata"]
        for f in ("creationTimestamp", "uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(f, None)
        meta.pop("managedFields", None)
        ns = info.namespace if RESOURCES[info.resource][2] else ""
        if meta.get("namespace") and ns and meta["namespace"] != ns:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
        if ns:
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
        self.admit_namespace(ns)
        if kind == "Pod":
            self.admit_pod(obj, ns)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        self.prepare_for_create(obj)
        self.validate(obj, None)
        name = meta["name"]
        key = (info.resource, ns, name)
        rv = meta.get("resourceVersion", "")
        if not opts.dry and rv.isdigit() and int(rv) != 0:
            raise internal("resourceVersion should not be set on objects to be created")
        if key in self.objects:
            raise already_exists(info.resource, name)
        meta.pop("resourceVersion", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        if opts.dry:
            return Result(201, encode_for(kind, obj), warnings)
        stored = self.put_new(info.resource, ns, name, obj)
        self.record_update(key, None, stored, opts.field_manager)
        if kind == "Namespace":
            self.ensure_default_sa(name)
        return Result(201, stored, warnings)

    def admit_namespace(self, ns):
        """NamespaceLifecycle admission: writes into a missing namespace are 404s."""
        if ns and ("namespaces", "", ns) not in self.objects:
            raise not_found("namespaces", ns)

    def admit_pod(self, pod, ns):
        """ServiceAccount admission (plugin/pkg/admission/serviceaccount), create only."""
        spec = pod["spec"]
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = "default"
        sa_name = spec["serviceAccountName"]
        sa = self.objects.get(("serviceaccounts", ns, sa_name))
        if sa is None:
            raise forbidden("pods", pod["metadata"].get("name", ""),
                            'error looking up service account %s/%s: serviceaccount %s not found'
                            % (ns, sa_name, go_quote(sa_name)))
        automount = spec.get("automountServiceAccountToken")
        if automount is None:
            automount = sa.get("automountServiceAccountToken", True)
        if automount:
            vol = "kube-api-access-" + generate_name("")
            spec.setdefault("volumes", []).append({"name": vol, "projected": {"sources": [
                {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                               "fieldPath": "metadata.namespace"}}]}}],
                "defaultMode": 420}})
            for c in spec.get("containers") or []:
                c.setdefault("volumeMounts", []).append(
                    {"name": vol, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"})
        if not spec.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": r.get("name", "")} for r in sa.get("imagePullSecrets") or []]

    def prepare_for_create(self, obj):
        kind = obj["kind"]
        if kind == "ServiceAccount":
            if obj.get("secrets"):
                obj["secrets"] = [{"name": s.get("name", "")} for s in obj["secrets"]]
        elif kind == "Namespace":
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            labels = obj["metadata"].setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = obj["metadata"].get("name", "")
        elif kind == "Lease":
            drop_lease_alpha_fields(obj, None)
        elif kind == "Pod":
            spec = obj["spec"]
            for k, v in (("restartPolicy", "Always"), ("terminationGracePeriodSeconds", 30),
                         ("dnsPolicy", "ClusterFirst"), ("securityContext", {}),
                         ("schedulerName", "default-scheduler"), ("enableServiceLinks", True),
                         ("preemptionPolicy", "PreemptLowerPriority"), ("priority", 0)):
                spec.setdefault(k, v)
            spec["serviceAccount"] = spec.get("serviceAccountName", "")
            if "tolerations" not in spec:
                spec["tolerations"] = [
                    {"key": "node.kubernetes.io/" + t, "operator": "Exists", "effect": "NoExecute",
                     "tolerationSeconds": 300} for t in ("not-ready", "unreachable")]
            for c in spec.get("containers") or []:
                c.setdefault("resources", {})
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("terminationMessagePolicy", "File")
                image = c.get("image", "")
                tag = image.rsplit("/", 1)[-1].partition(":")[2] if "@" not in image else "digest"
                c.setdefault("imagePullPolicy", "Always" if tag in ("", "latest") else "IfNotPresent")
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}

    def validate(self, obj, old):
        kind = obj["kind"]
        if old is None:
            errs = {"Secret": validate_secret, "ServiceAccount": validate_service_account,
                    "Namespace": validate_namespace, "Pod": validate_pod, "Lease": validate_lease}[kind](obj)
        elif kind == "Secret":
            errs = validate_secret_update(obj, old)
        elif kind == "Pod":
            errs = validate_pod_update(obj, old)
        elif kind == "Lease":
            errs = validate_meta_update(obj, old) + validate_lease_spec(obj)
        else:
            errs = validate_meta_update(obj, old) + (
                validate_service_account(obj) if kind == "ServiceAccount" else validate_namespace(obj))
        if errs:
            raise invalid(kind, obj["metadata"].get("name", ""), errs,
                          group=api_group(KIND_TO_RESOURCE[kind]))

    # --- UPDATE (PUT) and PATCH share the tail ------------------------------

    def update(self, req, info):
        kind = RESOURCES[info.resource][0]
        opts = Options(req, "UpdateOptions")
        obj, warnings = self.read_body(req, kind, opts.validation)
        check_name(obj, info)
        key = self.key(info)
        current = self.objects.get(key)
        if current is None:
            raise not_found(info.resource, info.name)
        return self.finish_update(info, key, current, obj, opts, warnings, "Update")

    def finish_update(self, info, key, current, obj, opts, warnings, op):
        meta = obj["metadata"]
        ns = key[1]
        if ns:
            meta["namespace"] = ns
        rv = meta.get("resourceVersion", "")
        if rv and not rv.isdigit():
            raise internal('strconv.ParseUint: parsing %s: invalid syntax' % go_quote(rv))
        if rv and int(rv) != 0 and int(rv) != int(current["metadata"]["resourceVersion"]):
            raise conflict(info.resource, info.name)
        meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        self.prepare_for_update(obj, current)
        self.validate(obj, current)
        if opts.dry:
            return Result(200, encode_for(current["kind"], obj), warnings)
        stored = self.store_update(key, obj)
        if op == "Update":
            self.record_update(key, current, stored, opts.field_manager)
        return Result(200, stored, warnings)

    def prepare_for_update(self, obj, old):
        meta, ometa = obj["metadata"], old["metadata"]
        meta.pop("managedFields", None)
        meta.pop("selfLink", None)
        if not meta.get("uid"):
            meta["uid"] = ometa["uid"]
        meta["creationTimestamp"] = ometa["creationTimestamp"]
        if "generation" in ometa:
            meta["generation"] = ometa["generation"]
        else:
            meta.pop("generation", None)
        kind = obj["kind"]
        if kind == "Secret" and not obj.get("type"):
            obj["type"] = old.get("type", "")
        elif kind == "ServiceAccount" and obj.get("secrets"):
            obj["secrets"] = [{"name": s.get("name", "")} for s in obj["secrets"]]
        elif kind == "Namespace":
            obj["spec"], obj["status"] = old["spec"], old["status"]
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = ometa["name"]
        elif kind == "Pod":
            obj["status"] = old["status"]
        elif kind == "Lease":
            drop_lease_alpha_fields(obj, old)

    def patch(self, req, info):
        kind = RESOURCES[info.resource][0]
        schema = RESOURCES[info.resource][1]
        ctype = req.headers.get("Content-Type", "")
        idx = ctype.find(";")
        if idx > 0:
            ctype = ctype[:idx]
        if ctype not in PATCH_TYPES:
            raise unsupported_media(PATCH_TYPES)
        opts = Options(req, "PatchOptions", patch_type=ctype)
        key = self.key(info)
        current = self.objects.get(key)
        if ctype == "application/apply-patch+yaml":
            return self.apply(req, info, key, current, opts, kind)
        if current is None:
            raise not_found(info.resource, info.name)
        doc = copy.deepcopy(current)
        strict = opts.validation in ("Strict", "Warn")
        try:
            if ctype == "application/json-patch+json":
                if strict:
                    check_json_patch_ops(req.body)
                result = patchlib.json_patch(doc, patchlib.decode_json_patch(req.body))
                shown = gojson.marshal(_sorted(result)).decode() if isinstance(result, dict) else None
            elif ctype == "application/merge-patch+json":
                if strict:
                    try:
                        p = gojson.loads(req.body)
                    except GoJSONError as e:
                        raise bad_request("error decoding patch: %s" % e)
                    if p is not None and not isinstance(p, dict):
                        raise bad_request("error decoding patch: json: cannot unmarshal %s into Go value of type "
                                          "map[string]interface {}" % json_type_name(p))
                result = patchlib.merge_patch(doc, req.body)
                shown = gojson.marshal(_sorted(result)).decode() if isinstance(result, (dict, list)) else None
            else:
                try:
                    p = gojson.loads(req.body)
                except GoJSONError as e:
                    raise bad_request(str(e))
                if p is not None and not isinstance(p, dict):
                    raise bad_request("json: cannot unmarshal %s into Go value of type map[string]interface {}"
                                      % json_type_name(p))
                result = patchlib.strategic(doc, p or {}, schema)
                shown = gojson.go_fmt_v(p or {})  # the apiserver reports the patch map with %+v
        except patchlib.PatchError as e:
            if e.kind == "bad_request":
                raise bad_request(e.message)
            if e.kind == "generic422":
                raise generic_422()
            raise internal(e.message)
        if not isinstance(result, dict):
            raise invalid("", "", [FieldError("Invalid", "patch", shown,
                                              "couldn't get version/kind; json parse error: json: cannot unmarshal %s "
                                              "into Go value of type %s" % (json_type_name(result), INTERPRET_STRUCT))])
        obj, warnings = self.decode_object(result, kind, opts.validation, None, create_style=False, shown=shown)
        check_name(obj, info)
        return self.finish_update(info, key, current, obj, opts, warnings, "Update")

    def apply(self, req, info, key, current, opts, kind):
        try:
            raw = gojson.loads(req.body)
        except GoJSONError:
            raise bad_request("apisim: only JSON apply-patch bodies are supported (YAML is not parsed)")
        if not isinstance(raw, dict):
            raise bad_request("apisim: apply-patch body must be a JSON object")
        # Units are computed from the config as sent: defaults are not "applied" fields.
        config, warnings = self.decode_object(raw, kind, opts.validation, None, create_style=False,
                                              defaulting=False)
        check_name(config, info)
        manager = opts.field_manager
        if current is None:
            self.admit_namespace(key[1])
            self.default(config)
            if kind == "Pod":
                self.admit_pod(config, key[1])
            if key[1]:
                config["metadata"]["namespace"] = key[1]
            else:
                config["metadata"].pop("namespace", None)
            config["metadata"].pop("resourceVersion", None)
            self.prepare_for_create(config)
            self.validate(config, None)
            config["metadata"]["uid"] = str(uuid.uuid4())
            config["metadata"]["creationTimestamp"] = now()
            if opts.dry:
                return Result(201, encode_for(kind, config), warnings)
            stored = self.put_new(info.resource, key[1], info.name, config)
            self.owners[key] = {u: {manager: "Apply"} for u in units(stored)}
            if kind == "Namespace":
                self.ensure_default_sa(info.name)
            return Result(201, stored, warnings)
        result, owners = apply_fields(current, config, self.owners.get(key, {}), manager, bool(opts.force))
        rv = config["metadata"].get("resourceVersion")
        if rv:
            result["metadata"]["resourceVersion"] = rv
        res = self.finish_update(info, key, current, result, opts, warnings, "Apply")
        if not opts.dry:
            self.owners[key] = owners
        return res

    # --- DELETE -------------------------------------------------------------

    def delete(self, req, info):
        body_opts = None
        if req.body:
            try:
                body_opts = gojson.loads(req.body)
            except GoJSONError as e:
                raise bad_request("couldn't get version/kind; json parse error: %s" % e)
            if not isinstance(body_opts, dict):
                raise bad_request("decoded object cannot be converted to DeleteOptions")
        opts = Options(req, "DeleteOptions", body_opts=body_opts)
        key = self.key(info)
        obj = self.objects.get(key)
        if info.resource == "namespaces" and info.name in IMMORTAL_NAMESPACES:
            raise forbidden("namespaces", info.name, "this namespace may not be deleted")
        if obj is None:
            raise not_found(info.resource, info.name)
        pre = (body_opts or {}).get("preconditions") or {}
        storage_key = "/registry/%s/%s" % (info.resource, "/".join(p for p in key[1:] if p))
        for field, key_, have in (("UID", "uid", obj["metadata"]["uid"]),
                                  ("ResourceVersion", "resourceVersion", obj["metadata"]["resourceVersion"])):
            want = pre.get(key_)
            if want and want != have:
                raise conflict(info.resource, info.name,
                               "StorageError: invalid object, Code: 4, Key: %s, ResourceVersion: 0, "
                               "AdditionalErrorMsg: Precondition failed: %s in precondition: %s, %s in object meta: %s"
                               % (storage_key, field, want, field, have))
        kind = obj["kind"]
        if kind == "Namespace":
            # The namespace is marked Terminating first (a stored version: a
            # MODIFIED event), the namespace controller removes the contents,
            # then the namespace goes; the answer is the Terminating version.
            gone = copy.deepcopy(obj)
            gone["metadata"]["deletionTimestamp"] = now()
            gone["status"] = {"phase": "Terminating"}
            gone = encode_for(kind, gone)
            if opts.dry:
                return Result(200, gone)
            gone = self.store_update(key, gone)
            for k in [k for k in self.objects if k[1] == info.name and k[0] != "namespaces"]:
                self.remove(k)
            self.remove(key)
            return Result(200, gone)
        if not opts.dry:
            self.remove(key)
        if kind in ("Secret", "Lease"):  # the generic store answers a Success Status
            return Result(200, status_obj("Success", details=details(info.name, group=api_group(info.resource),
                                                                     kind=info.resource, uid=obj["metadata"]["uid"])))
        if kind == "Pod":
            gone = copy.deepcopy(obj)
            gone["metadata"]["deletionTimestamp"] = now()
            gone["metadata"]["deletionGracePeriodSeconds"] = 30
            return Result(200, encode_for(kind, gone))
        # ServiceAccount storage returns the deleted object; the controller then
        # recreates 'default' (empty) at once.
        if not opts.dry and kind == "ServiceAccount" and info.name == "default":
            self.ensure_default_sa(key[1])
        return Result(200, obj)

    def delete_collection(self, req, info):
        opts = Options(req, "DeleteOptions", body_opts=gojson.loads(req.body) if req.body else None)
        listed = self.list(req, info)
        gone = []
        for item in listed["items"]:
            key = (info.resource, item["metadata"].get("namespace", ""), item["metadata"]["name"])
            if not opts.dry:
                self.remove(key)
                if info.resource == "serviceaccounts" and key[2] == "default":
                    self.ensure_default_sa(key[1])
            gone.append(item)
        return Result(200, dict(listed, items=gone))

    # --- field ownership (a simplified server-side apply) -------------------

    def record_update(self, key, old, new, manager):
        owners = self.owners.setdefault(key, {})
        ou = units(old) if old else {}
        nu = units(new)
        for u, v in nu.items():
            if u not in ou or ou[u] != v:
                owners[u] = {manager: "Update"}
        for u in ou:
            if u not in nu:
                owners.pop(u, None)

    def mutate(self, resource, ns, name, merge):
        """Fault helper: a concurrent writer applies a merge patch (bumps RV)."""
        with self.lock:
            key = (resource, ns, name)
            cur = self.objects.get(key)
            if cur is None:
                return None
            new = patchlib.merge_patch(cur, gojson.marshal(merge))
            stored = self.store_update(key, new)
            self.record_update(key, cur, stored, "apisim-concurrent-writer")
            return stored


def drop_lease_alpha_fields(obj, old):
    """pkg/registry/coordination/lease/strategy.go: with CoordinatedLeaderElection
    off (v1.32's default) strategy and preferredHolder are dropped unless the
    stored object already has them."""
    spec = obj.get("spec") or {}
    ospec = (old or {}).get("spec") or {}
    if ospec.get("strategy") is None and ospec.get("preferredHolder") is None:
        spec.pop("strategy", None)
        spec.pop("preferredHolder", None)


def check_json_patch_ops(body):
    """kjson.UnmarshalStrict(patch, &[]handlers.jsonPatchOp) as done under Warn/Strict."""
    try:
        ops = gojson.loads(body)
    except GoJSONError as e:
        raise bad_request("error decoding patch: %s" % e)
    if ops is None:
        return
    if not isinstance(ops, list):
        raise bad_request("error decoding patch: json: cannot unmarshal %s into Go value of type "
                          "[]handlers.jsonPatchOp" % json_type_name(ops))
    for op in ops:
        if op is None:
            continue
        if not isinstance(op, dict):
            raise bad_request("error decoding patch: json: cannot unmarshal %s into Go value of type "
                              "handlers.jsonPatchOp" % json_type_name(op))
        for f in ("op", "path", "from"):
            if op.get(f) is not None and not isinstance(op[f], str):
                raise bad_request("error decoding patch: json: cannot unmarshal %s into Go struct field "
                                  "jsonPatchOp.%s of type string" % (json_type_name(op[f]), f))


def go_bool_q(v):
    return v in ("1", "t", "T", "TRUE", "true", "True")


def check_name(obj, info):
    name = obj["metadata"].get("name", "")
    if name != info.name:
        raise bad_request("the name of the object (%s) does not match the name on the URL (%s)" % (name, info.name))
    ns = obj["metadata"].get("namespace", "")
    if info.namespace and info.resource != "namespaces" and ns and ns != info.namespace:
        raise bad_request("the namespace of the object (%s) does not match the namespace on the URL (%s)"
                          % (ns, info.namespace))


def _sorted(v):
    if isinstance(v, dict):
        return {k: _sorted(v[k]) for k in sorted(v)}
    if isinstance(v, list):
        return [_sorted(x) for x in v]
    return v


def units(obj):
    """Ownership units: top-level fields, plus per key for string maps."""
    out = {}
    for k, v in obj.items():
        if k in ("kind", "apiVersion", "metadata", "status"):
            continue
        if k in ("data", "stringData") and isinstance(v, dict):
            for kk, vv in v.items():
                out[(k, kk)] = vv
        else:
            out[(k,)] = v
    meta = obj.get("metadata") or {}
    for mk in ("labels", "annotations"):
        for kk, vv in (meta.get(mk) or {}).items():
            out[("metadata", mk, kk)] = vv
    return out


def _set_unit(obj, u, v):
    cur = obj
    for p in u[:-1]:
        cur = cur.setdefault(p, {})
    cur[u[-1]] = copy.deepcopy(v)


def _del_unit(obj, u):
    cur = obj
    for p in u[:-1]:
        cur = cur.get(p) or {}
    cur.pop(u[-1], None)


def _manager_desc(manager, op):
    return go_quote(manager) + (" using v1" if op == "Update" else "")


def apply_fields(current, config, owners, manager, force):
    cu, au = units(current), units(config)
    owners = {u: dict(m) for u, m in owners.items()}
    conflicts = []
    for u, v in au.items():
        own = owners.get(u, {})
        others = sorted(m for m in own if m != manager)
        if u in cu and cu[u] == v:
            own[manager] = "Apply"
            owners[u] = own
        elif others and not force:
            conflicts.extend((u, m, own[m]) for m in others)
        else:
            owners[u] = {manager: "Apply"}
    if conflicts:
        path = lambda u: "." + ".".join(u)
        causes = [{"reason": "FieldManagerConflict", "message": "conflict with " + _manager_desc(m, op),
                   "field": path(u)} for u, m, op in conflicts]
        if len(conflicts) == 1:
            u, m, op = conflicts[0]
            msg = "Apply failed with 1 conflict: conflict with %s: %s" % (_manager_desc(m, op), path(u))
        else:
            lines = []
            for m in sorted({c[1] for c in conflicts}):
                op = next(c[2] for c in conflicts if c[1] == m)
                lines.append("conflicts with %s:" % _manager_desc(m, op))
                lines.extend("- " + path(u) for u, mm, _ in conflicts if mm == m)
            msg = "Apply failed with %d conflicts: %s" % (len(conflicts), "\n".join(lines))
        raise APIError(409, "Conflict", msg, {"causes": causes})
    result = copy.deepcopy(current)
    for u in list(owners):
        own = owners[u]
        if own.get(manager) == "Apply" and u not in au:
            del own[manager]
            if not own:
                _del_unit(result, u)
                del owners[u]
    for u, v in au.items():
        _set_unit(result, u, v)
    return result, owners


# --- selectors --------------------------------------------------------------

_LABEL_KEY = r"([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?"


def _split_top(s):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_label_selector(sel):
    reqs = []
    if not sel.strip():
        return reqs
    for part in _split_top(sel):
        p = part.strip()
        m = re.fullmatch(r"(%s)\s+(in|notin)\s+\(([^()]*)\)" % _LABEL_KEY, p)
        if m:
            key, op = m.group(1), m.group(5)
            vals = {v.strip() for v in m.group(6).split(",")}
            reqs.append((lambda k, vs: lambda l: k in l and l[k] in vs)(key, vals) if op == "in"
                        else (lambda k, vs: lambda l: k not in l or l[k] not in vs)(key, vals))
            continue
        m = re.fullmatch(r"(%s)\s*(==|=|!=)\s*([-A-Za-z0-9_.]*)" % _LABEL_KEY, p)
        if m:
            key, op, val = m.group(1), m.group(5), m.group(6)
            reqs.append((lambda k, v: lambda l: l.get(k) == v and k in l)(key, val) if op != "!="
                        else (lambda k, v: lambda l: k not in l or l[k] != v)(key, val))
            continue
        m = re.fullmatch(r"(!?)\s*(%s)" % _LABEL_KEY, p)
        if m:
            key = m.group(2)
            reqs.append((lambda k: lambda l: k not in l)(key) if m.group(1) else (lambda k: lambda l: k in l)(key))
            continue
        raise bad_request("unable to parse requirement: %s" % go_quote(p))
    return reqs


FIELD_LABELS = {"secrets": ("metadata.name", "metadata.namespace", "type"),
                "serviceaccounts": ("metadata.name", "metadata.namespace"),
                "leases": ("metadata.name", "metadata.namespace"),
                "namespaces": ("metadata.name", "status.phase"),
                "pods": ("metadata.name", "metadata.namespace", "spec.nodeName", "spec.restartPolicy",
                         "spec.schedulerName", "spec.serviceAccountName", "status.phase", "status.podIP")}


def parse_field_selector(sel, resource):
    reqs = []
    if not sel.strip():
        return reqs
    for part in sel.split(","):
        m = re.fullmatch(r"\s*([^=!\s]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not m:
            raise bad_request("invalid selector: '%s'; can't understand '%s'" % (sel, part))
        label, op, val = m.groups()
        if label not in FIELD_LABELS[resource]:
            raise bad_request("field label not supported: %s" % label)

        def getter(obj, path=label.split(".")):
            cur = obj
            for p in path:
                cur = cur.get(p, "") if isinstance(cur, dict) else ""
            return cur
        reqs.append((lambda g, o, v: lambda obj: (g(obj) == v) if o != "!=" else (g(obj) != v))(getter, op, val))
    return reqs
