"""Kubernetes types, Status errors and validation as kube-apiserver v1.32 has them.

Objects are plain dicts. Each kind has a schema mirroring the Go struct, used
for three things the real server gets from Go's type system:
  * decoding: Go type errors, strict "unknown field" errors, base64 []byte;
  * output: struct field order, sorted map keys, omitempty rules -- so bytes
    match and "no change" detection (byte comparison) works;
  * strategic merge patch: which lists merge by which key.
"""

import random
import re

from gojson import CorruptInputError, b64decode_go, b64encode, go_quote, json_type_name, unmarshal_map_error


# --- schema -----------------------------------------------------------------

class T:
    def __init__(self, kind, go, fields=(), elem=None, merge=False, merge_key=None, open_=False):
        self.kind = kind          # str int bool bytes time any struct map list
        self.go = go              # Go type name, for UnmarshalTypeError
        self.fields = list(fields)  # struct: (json name, T, mode) mode o=omitempty a=always p=pointer
        self.elem = elem
        self.merge = merge        # list with patchStrategy=merge
        self.merge_key = merge_key
        self.open = open_         # struct whose unmodelled fields pass through untouched
        self.by_name = {f[0]: f for f in self.fields}

    def field(self, name):
        f = self.by_name.get(name)
        return f[1] if f else None

    @property
    def short(self):
        return self.go.split(".")[-1]


S = T("str", "string")
I64 = T("int", "int64")
I32 = T("int", "int32")
B = T("bool", "bool")
BYTES = T("bytes", "[]uint8")
TIME = T("time", "v1.Time")
ANY = T("any", "interface {}")
MICROTIME = T("microtime", "v1.MicroTime")  # RFC3339 with exactly 6 fractional digits, UTC on output


def MAP(elem):
    return T("map", "map[string]" + elem.go, elem=elem)


def LIST(elem, key=None, merge=False):
    return T("list", "[]" + elem.go, elem=elem, merge=merge or key is not None, merge_key=key)


def STRUCT(go, *fields, open_=False):
    return T("struct", go, fields, open_=open_)


OBJECT_META = STRUCT(
    "v1.ObjectMeta",
    ("name", S, "o"), ("generateName", S, "o"), ("namespace", S, "o"), ("selfLink", S, "o"),
    ("uid", S, "o"), ("resourceVersion", S, "o"), ("generation", I64, "o"),
    ("creationTimestamp", TIME, "a"), ("deletionTimestamp", TIME, "p"),
    ("deletionGracePeriodSeconds", I64, "p"), ("labels", MAP(S), "o"), ("annotations", MAP(S), "o"),
    ("ownerReferences", LIST(ANY, key="uid"), "o"), ("finalizers", LIST(S, merge=True), "o"),
    ("managedFields", LIST(ANY), "o"))

TYPE_META = [("kind", S, "o"), ("apiVersion", S, "o"), ("metadata", OBJECT_META, "a")]

LOCAL_REF = STRUCT("v1.LocalObjectReference", ("name", S, "o"))
OBJECT_REF = STRUCT("v1.ObjectReference", ("kind", S, "o"), ("namespace", S, "o"), ("name", S, "o"),
                    ("uid", S, "o"), ("apiVersion", S, "o"), ("resourceVersion", S, "o"),
                    ("fieldPath", S, "o"))

SECRET = STRUCT("v1.Secret", *TYPE_META, ("immutable", B, "p"), ("data", MAP(BYTES), "o"),
                ("stringData", MAP(S), "o"), ("type", S, "o"))

SERVICE_ACCOUNT = STRUCT("v1.ServiceAccount", *TYPE_META,
                         ("secrets", LIST(OBJECT_REF, key="name"), "o"),
                         ("imagePullSecrets", LIST(LOCAL_REF), "o"),   # +listType=atomic
                         ("automountServiceAccountToken", B, "p"))

NAMESPACE = STRUCT("v1.Namespace", *TYPE_META,
                   ("spec", STRUCT("v1.NamespaceSpec", ("finalizers", LIST(S), "o")), "a"),
                   ("status", STRUCT("v1.NamespaceStatus", ("phase", S, "o"), ("conditions", LIST(ANY), "o")), "a"))

CONTAINER = STRUCT(
    "v1.Container",
    ("name", S, "a"), ("image", S, "o"), ("command", LIST(S), "o"), ("args", LIST(S), "o"),
    ("workingDir", S, "o"), ("ports", LIST(ANY, key="containerPort"), "o"), ("envFrom", LIST(ANY), "o"),
    ("env", LIST(ANY, key="name"), "o"), ("resources", ANY, "a"), ("resizePolicy", LIST(ANY), "o"),
    ("restartPolicy", S, "p"), ("volumeMounts", LIST(ANY, key="mountPath"), "o"),
    ("volumeDevices", LIST(ANY, key="devicePath"), "o"), ("livenessProbe", ANY, "p"),
    ("readinessProbe", ANY, "p"), ("startupProbe", ANY, "p"), ("lifecycle", ANY, "p"),
    ("terminationMessagePath", S, "o"), ("terminationMessagePolicy", S, "o"), ("imagePullPolicy", S, "o"),
    ("securityContext", ANY, "p"), ("stdin", B, "o"), ("stdinOnce", B, "o"), ("tty", B, "o"))

VOLUME = STRUCT("v1.Volume", ("name", S, "a"), open_=True)

POD_SPEC = STRUCT(
    "v1.PodSpec",
    ("volumes", LIST(VOLUME, key="name"), "o"), ("initContainers", LIST(CONTAINER, key="name"), "o"),
    ("containers", LIST(CONTAINER, key="name"), "a"), ("ephemeralContainers", LIST(ANY, key="name"), "o"),
    ("restartPolicy", S, "o"), ("terminationGracePeriodSeconds", I64, "p"),
    ("activeDeadlineSeconds", I64, "p"), ("dnsPolicy", S, "o"), ("nodeSelector", MAP(S), "o"),
    ("serviceAccountName", S, "o"), ("serviceAccount", S, "o"), ("automountServiceAccountToken", B, "p"),
    ("nodeName", S, "o"), ("hostNetwork", B, "o"), ("hostPID", B, "o"), ("hostIPC", B, "o"),
    ("shareProcessNamespace", B, "p"), ("securityContext", ANY, "p"),
    ("imagePullSecrets", LIST(LOCAL_REF, key="name"), "o"), ("hostname", S, "o"), ("subdomain", S, "o"),
    ("affinity", ANY, "p"), ("schedulerName", S, "o"), ("tolerations", LIST(ANY), "o"),
    ("hostAliases", LIST(ANY, key="ip"), "o"), ("priorityClassName", S, "o"), ("priority", I32, "p"),
    ("dnsConfig", ANY, "p"), ("readinessGates", LIST(ANY), "o"), ("runtimeClassName", S, "p"),
    ("enableServiceLinks", B, "p"), ("preemptionPolicy", S, "p"), ("overhead", MAP(ANY), "o"),
    ("topologySpreadConstraints", LIST(ANY), "o"), ("setHostnameAsFQDN", B, "p"), ("os", ANY, "p"),
    ("hostUsers", B, "p"), ("schedulingGates", LIST(ANY, key="name"), "o"),
    ("resourceClaims", LIST(ANY, key="name"), "o"), ("resources", ANY, "p"))

POD_STATUS = STRUCT("v1.PodStatus", *[(n, ANY, "o") for n in (
    "phase", "conditions", "message", "reason", "nominatedNodeName", "hostIP", "hostIPs", "podIP",
    "podIPs", "startTime", "initContainerStatuses", "containerStatuses", "qosClass",
    "ephemeralContainerStatuses", "resize", "resourceClaimStatuses")])

POD = STRUCT("v1.Pod", *TYPE_META, ("spec", POD_SPEC, "a"), ("status", POD_STATUS, "a"))

# resource plural -> (Kind, schema, namespaced, shortNames, singular)
# k8s.io/api/coordination/v1/types.go: Lease{TypeMeta, ObjectMeta, Spec LeaseSpec `json:"spec,omitempty"`}
# (a struct, so always written); every LeaseSpec field is a pointer with omitempty. v1.32
# also has strategy and preferredHolder (CoordinatedLeaderElection, alpha, off: dropped on write).
LEASE_SPEC = STRUCT("v1.LeaseSpec", ("holderIdentity", S, "p"), ("leaseDurationSeconds", I32, "p"),
                    ("acquireTime", MICROTIME, "p"), ("renewTime", MICROTIME, "p"),
                    ("leaseTransitions", I32, "p"), ("strategy", S, "p"), ("preferredHolder", S, "p"))
LEASE = STRUCT("v1.Lease", *TYPE_META, ("spec", LEASE_SPEC, "a"))

RESOURCES = {
    "namespaces": ("Namespace", NAMESPACE, False, ["ns"], "namespace"),
    "secrets": ("Secret", SECRET, True, [], "secret"),
    "serviceaccounts": ("ServiceAccount", SERVICE_ACCOUNT, True, ["sa"], "serviceaccount"),
    "pods": ("Pod", POD, True, ["po"], "pod"),
    "leases": ("Lease", LEASE, True, [], "lease"),
}
# Workloads of the batch and apps groups, for reading their pod templates:
# stored as given (seeded by the control API), read by GET and LIST under
# /apis/GROUP/VERSION/namespaces/NS/RESOURCE.
for _plural, _kind in (("jobs", "Job"), ("cronjobs", "CronJob"), ("deployments", "Deployment"),
                       ("statefulsets", "StatefulSet"), ("daemonsets", "DaemonSet")):
    RESOURCES[_plural] = (_kind, STRUCT(_kind, *TYPE_META, open_=True), True, [], _kind.lower())
# resource plural -> "group/version" for those not in the core group
GROUP_VERSION = {"jobs": "batch/v1", "cronjobs": "batch/v1", "deployments": "apps/v1",
                 "statefulsets": "apps/v1", "daemonsets": "apps/v1", "leases": "coordination.k8s.io/v1"}
KIND_TO_RESOURCE = {v[0]: k for k, v in RESOURCES.items()}

# Kinds the real v1 scheme knows, so a body of another kind gets the
# "unknown conversion" wording rather than "no kind registered".
V1_KINDS = {"Binding", "ComponentStatus", "ConfigMap", "Endpoints", "Event", "LimitRange", "Namespace",
            "Node", "PersistentVolume", "PersistentVolumeClaim", "Pod", "PodTemplate",
            "ReplicationController", "ResourceQuota", "Secret", "Service", "ServiceAccount", "Status",
            "List", "DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "GetOptions",
            "ListOptions"}


# --- decoding ---------------------------------------------------------------

class DecodeContext:
    def __init__(self):
        self.error = None          # first decode error (Go keeps going and returns the first)
        self.unknown = []          # strict-mode unknown field paths, in document order

    def type_error(self, value, owner, gopath, gotype):
        if self.error is None:
            if owner is None:
                self.error = "json: cannot unmarshal %s into Go value of type %s" % (json_type_name(value), gotype)
            else:
                self.error = "json: cannot unmarshal %s into Go struct field %s.%s of type %s" % (
                    json_type_name(value), owner, gopath, gotype)

    def fail(self, msg):
        if self.error is None:
            self.error = msg


def _zero(t):
    if t.kind == "str":
        return ""
    if t.kind == "int":
        return 0
    if t.kind == "bool":
        return False
    if t.kind == "struct":
        return decode_value({}, t, DecodeContext())
    if t.kind == "any":
        return {}
    return None


def _is_empty(v, t):
    if t.kind == "struct":
        return False
    return v is None or v == "" or v is False or (v == 0 and not isinstance(v, bool)) or v == [] or v == {}


def decode_value(v, t, ctx, path="", gopath="", owner=None):
    """Decode a JSON value into the canonical form of schema t (see module doc)."""
    if v is None:
        return None
    k = t.kind
    if k == "any":
        return v
    if k == "microtime":
        if not isinstance(v, str):
            ctx.type_error(v, owner, gopath, "string")
            return None
        out, err = parse_microtime(v)
        if err:
            ctx.fail(err)
        return out
    if k in ("str", "time"):
        if not isinstance(v, str):
            ctx.type_error(v, owner, gopath, "string" if k == "time" else t.go)
            return None
        return v
    if k == "int":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            ctx.type_error(v, owner, gopath, t.go)
            return None
        if isinstance(v, float) and not v.is_integer():
            ctx.fail("json: cannot unmarshal number %s into Go struct field %s.%s of type %s" % (v, owner, gopath, t.go))
            return None
        return int(v)
    if k == "bool":
        if not isinstance(v, bool):
            ctx.type_error(v, owner, gopath, t.go)
            return None
        return v
    if k == "bytes":
        if not isinstance(v, str):
            ctx.type_error(v, owner, gopath, t.go)
            return None
        try:
            return b64encode(b64decode_go(v))
        except CorruptInputError as e:
            ctx.fail(str(e))
            return None
    if k == "map":
        if not isinstance(v, dict):
            ctx.type_error(v, owner, gopath, t.go)
            return None
        out = {}
        for key in sorted(v, key=lambda s: s.encode("utf-8")):
            dv = decode_value(v[key], t.elem, ctx, path + "." + key if path else key, gopath, owner)
            out[key] = _zero(t.elem) if dv is None and t.elem.kind in ("str",) else dv
        return out
    if k == "list":
        if not isinstance(v, list):
            ctx.type_error(v, owner, gopath, t.go)
            return None
        return [decode_value(x, t.elem, ctx, "%s[%d]" % (path, i), gopath, owner) if x is not None
                else _zero(t.elem) for i, x in enumerate(v)]
    # struct
    if not isinstance(v, dict):
        ctx.type_error(v, owner, gopath, t.go)
        return None
    vals = {}
    extra = {}
    for key, x in v.items():
        sub = path + "." + key if path else key
        f = t.by_name.get(key)
        if f is None:
            if t.open:
                extra[key] = x
            else:
                ctx.unknown.append(sub)
            continue
        vals[key] = decode_value(x, f[1], ctx, sub, gopath + "." + key if gopath else key, t.short)
    out = {}
    for name, ft, mode in t.fields:
        dv = vals.get(name)
        if mode == "a":
            out[name] = dv if dv is not None else _zero(ft)
        elif mode == "p":
            if dv is not None:
                out[name] = dv
        elif not _is_empty(dv, ft):
            out[name] = dv
    out.update(extra)
    return out


RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"


def parse_microtime(v):
    """metav1.MicroTime.UnmarshalJSON: time.Parse(RFC3339Micro, s), which wants
    exactly six fractional digits; MarshalJSON writes it back in UTC.
    Returns (canonical, error text)."""
    import datetime
    m = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(.*)", v)
    if not m:
        return None, "parsing time %s as %s: cannot parse %s as %s" % (
            go_quote(v), go_quote(RFC3339_MICRO), go_quote(v), go_quote("2006"))
    rest = m.group(2)
    fm = re.match(r"\.(\d{6})(Z|[+-]\d{2}:\d{2})$", rest)
    if not fm:
        if not re.match(r"\.\d{6}", rest):
            return None, "parsing time %s as %s: cannot parse %s as %s" % (
                go_quote(v), go_quote(RFC3339_MICRO), go_quote(rest), go_quote(".000000"))
        return None, "parsing time %s as %s: cannot parse %s as %s" % (
            go_quote(v), go_quote(RFC3339_MICRO), go_quote(rest[7:]), go_quote("Z07:00"))
    try:
        t = datetime.datetime.strptime(m.group(1) + "." + fm.group(1) + fm.group(2).replace("Z", "+00:00"),
                                       "%Y-%m-%dT%H:%M:%S.%f%z")
    except ValueError:
        return None, "parsing time %s: month, day or time out of range" % go_quote(v)
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), None


def encode_for(kind, obj):
    """Canonical (Go-encoded) form of an already valid object."""
    return decode_value(obj, RESOURCES[KIND_TO_RESOURCE[kind]][1], DecodeContext())


# --- Status errors ----------------------------------------------------------

class APIError(Exception):
    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self):
        return status_obj("Failure", self.message, self.reason, self.details, self.code)


def status_obj(status, message=None, reason=None, details=None, code=None):
    d = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": status}
    if message:
        d["message"] = message
    if reason:
        d["reason"] = reason
    if details is not None:
        d["details"] = details
    if code:
        d["code"] = code
    return d


def details(name=None, group=None, kind=None, uid=None, causes=None, retry=None):
    d = {}
    for k, v in (("name", name), ("group", group), ("kind", kind), ("uid", uid), ("causes", causes),
                 ("retryAfterSeconds", retry)):
        if v:
            d[k] = v
    return d


def _group(resource):
    return GROUP_VERSION[resource].split("/")[0] if resource in GROUP_VERSION else None


def _qualified(resource):
    """schema.GroupResource.String(): resource.group ("leases.coordination.k8s.io")."""
    g = _group(resource)
    return resource + "." + g if g else resource


def not_found(resource, name):
    return APIError(404, "NotFound", "%s %s not found" % (_qualified(resource), go_quote(name)),
                    details(name, group=_group(resource), kind=resource))


def not_found_path():
    return APIError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(resource, name):
    return APIError(409, "AlreadyExists", "%s %s already exists" % (_qualified(resource), go_quote(name)),
                    details(name, group=_group(resource), kind=resource))


OPTIMISTIC_LOCK = "the object has been modified; please apply your changes to the latest version and try again"


def conflict(resource, name, msg=OPTIMISTIC_LOCK):
    return APIError(409, "Conflict", "Operation cannot be fulfilled on %s %s: %s" % (
        _qualified(resource), go_quote(name), msg), details(name, group=_group(resource), kind=resource))


def forbidden(resource, name, msg):
    if name:
        message = "%s %s is forbidden: %s" % (_qualified(resource), go_quote(name), msg)
    else:
        message = "%s is forbidden: %s" % (_qualified(resource), msg)
    return APIError(403, "Forbidden", message, details(name, group=_group(resource), kind=resource))


def bad_request(msg):
    return APIError(400, "BadRequest", msg)


def internal(msg):
    """A plain Go error reaching the handler: code 500, reason "" (StatusReasonUnknown)."""
    return APIError(500, "", msg)


def method_not_allowed():
    return APIError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", {})


def unsupported_media(accepted):
    return APIError(415, "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: "
                    + ", ".join(accepted))


def too_large(msg):
    return APIError(413, "RequestEntityTooLarge", "Request entity too large: " + msg)


def generic_422():
    return APIError(422, "Invalid", "the server rejected our request due to an error in our request", {})


UNAUTHORIZED = APIError(401, "Unauthorized", "Unauthorized")


class FieldError:
    TYPES = {"Required": ("Required value", "FieldValueRequired"),
             "Invalid": ("Invalid value", "FieldValueInvalid"),
             "Forbidden": ("Forbidden", "FieldValueForbidden"),
             "TooLong": ("Too long", "FieldValueTooLong"),
             "NotSupported": ("Unsupported value", "FieldValueNotSupported")}

    def __init__(self, typ, field, value=None, detail=""):
        self.typ, self.field, self.value, self.detail = typ, field, value, detail

    def body(self):
        word = self.TYPES[self.typ][0]
        if self.typ in ("Required", "Forbidden", "TooLong"):
            s = word
        else:
            v = self.value
            if v is None:
                s = "%s: null" % word
            elif isinstance(v, bool):
                s = "%s: %s" % (word, "true" if v else "false")
            elif isinstance(v, (int, float)):
                s = "%s: %s" % (word, v)
            elif isinstance(v, str):
                s = "%s: %s" % (word, go_quote(v))
            elif isinstance(v, list):  # []string, printed with %#v
                s = "%s: []string{%s}" % (word, ", ".join(go_quote(x) for x in v))
            else:
                s = "%s: %s" % (word, v)
        if self.detail:
            s += ": " + self.detail
        return s

    def __str__(self):
        return "%s: %s" % (self.field, self.body())


def invalid(kind, name, errs, group=""):
    """errors.NewInvalid: message '<GroupKind> "<name>" is invalid: <aggregate>'."""
    causes = [{"reason": FieldError.TYPES[e.typ][1], "message": e.body(), "field": e.field} for e in errs]
    msgs = []
    for e in errs:
        if str(e) not in msgs:
            msgs.append(str(e))
    agg = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    gk = kind + ("." + group if group else "")
    return APIError(422, "Invalid", "%s %s is invalid: %s" % (gk, go_quote(name), agg),
                    details(name, group=group, kind=kind, causes=causes))


# --- validation -------------------------------------------------------------

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + r")*"
CONFIG_KEY = r"[-._a-zA-Z0-9]+"


def regex_error(msg, fmt, *examples):
    if not examples:
        return msg + " (regex used for validation is '" + fmt + "')"
    msg += " (e.g. "
    for i, ex in enumerate(examples):
        if i > 0:
            msg += " or "
        msg += "'" + ex + "', "
    return msg + "regex used for validation is '" + fmt + "')"


def is_dns1123_subdomain(v):
    errs = []
    if len(v) > 253:
        errs.append("must be no more than 253 characters")
    if not re.fullmatch(DNS1123_SUBDOMAIN, v):
        errs.append(regex_error("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                                "characters, '-' or '.', and must start and end with an alphanumeric character",
                                DNS1123_SUBDOMAIN, "example.com"))
    return errs


def is_dns1123_label(v):
    errs = []
    if len(v) > 63:
        errs.append("must be no more than 63 characters")
    if not re.fullmatch(DNS1123_LABEL, v):
        errs.append(regex_error("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                                "or '-', and must start and end with an alphanumeric character",
                                DNS1123_LABEL, "my-name", "123-abc"))
    return errs


def is_config_map_key(v):
    errs = []
    if len(v) > 253:
        errs.append("must be no more than 253 characters")
    if not re.fullmatch(CONFIG_KEY, v):
        errs.append(regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                CONFIG_KEY, "key.name", "KEY_NAME", "key-name"))
    if v == ".":
        errs.append("must not be '.'")
    elif v == "..":
        errs.append("must not be '..'")
    elif v.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def validate_object_meta(meta, namespaced, name_fn):
    errs = []
    if meta.get("generateName"):
        for m in name_fn(mask_trailing_dash(meta["generateName"])):
            errs.append(FieldError("Invalid", "metadata.generateName", meta["generateName"], m))
    name = meta.get("name", "")
    if not name:
        errs.append(FieldError("Required", "metadata.name", None, "name or generateName is required"))
    else:
        for m in name_fn(name):
            errs.append(FieldError("Invalid", "metadata.name", name, m))
    ns = meta.get("namespace", "")
    if namespaced:
        if not ns:
            errs.append(FieldError("Required", "metadata.namespace"))
        else:
            for m in is_dns1123_label(ns):
                errs.append(FieldError("Invalid", "metadata.namespace", ns, m))
    elif ns:
        errs.append(FieldError("Forbidden", "metadata.namespace", None, "not allowed on this type"))
    if meta.get("generation", 0) < 0:
        errs.append(FieldError("Invalid", "metadata.generation", meta["generation"],
                               "must be greater than or equal to 0"))
    return errs


def mask_trailing_dash(name):
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


MAX_SECRET_SIZE = 1024 * 1024


def validate_secret(s):
    errs = validate_object_meta(s["metadata"], True, is_dns1123_subdomain)
    data = s.get("data") or {}
    total = 0
    decoded = {}
    # Go ranges over a map (random order); sorted keeps the simulator stable.
    for key in sorted(data):
        for m in is_config_map_key(key):
            errs.append(FieldError("Invalid", "data[%s]" % key, key, m))
        decoded[key] = b64decode_go(data[key]) if data[key] is not None else b""
        total += len(decoded[key])
    if total > MAX_SECRET_SIZE:
        errs.append(FieldError("TooLong", "data", None, "may not be more than %d bytes" % MAX_SECRET_SIZE))
    typ = s.get("type", "")
    ann = s["metadata"].get("annotations") or {}
    if typ == "kubernetes.io/service-account-token":
        if not ann.get("kubernetes.io/service-account.name"):
            errs.append(FieldError("Required", "metadata.annotations[kubernetes.io/service-account.name]"))
    elif typ in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if typ == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in decoded:
            errs.append(FieldError("Required", "data[%s]" % key))
        else:
            msg = unmarshal_map_error(decoded[key])
            if msg:
                errs.append(FieldError("Invalid", "data[%s]" % key, "<secret contents redacted>", msg))
    elif typ == "kubernetes.io/basic-auth":
        if "username" not in decoded and "password" not in decoded:
            errs.append(FieldError("Required", "data[username]"))
            errs.append(FieldError("Required", "data[password]"))
    elif typ == "kubernetes.io/ssh-auth":
        if not decoded.get("ssh-privatekey"):
            errs.append(FieldError("Required", "data[ssh-privatekey]"))
    elif typ == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in decoded:
                errs.append(FieldError("Required", "data[%s]" % key))
    return errs


def validate_secret_update(new, old):
    errs = validate_meta_update(new, old)
    if new.get("type", "") != old.get("type", ""):
        errs.append(FieldError("Invalid", "type", new.get("type", ""), "field is immutable"))
    if old.get("immutable"):
        if not new.get("immutable"):
            errs.append(FieldError("Forbidden", "immutable", None, "field is immutable when `immutable` is set"))
        if (new.get("data") or {}) != (old.get("data") or {}):
            errs.append(FieldError("Forbidden", "data", None, "field is immutable when `immutable` is set"))
    return errs + validate_secret(new)


def validate_meta_update(new, old):
    errs = []
    if new["metadata"].get("uid") != old["metadata"].get("uid"):
        errs.append(FieldError("Invalid", "metadata.uid", new["metadata"].get("uid", ""), "field is immutable"))
    return errs


def validate_service_account(sa):
    return validate_object_meta(sa["metadata"], True, is_dns1123_subdomain)


def validate_namespace(ns):
    return validate_object_meta(ns["metadata"], False, is_dns1123_label)


def validate_lease(lease):
    """pkg/apis/coordination/validation/validation.go ValidateLease / ValidateLeaseSpec
    (the same checks on update, after ValidateObjectMetaUpdate)."""
    return validate_object_meta(lease["metadata"], True, is_dns1123_subdomain) + validate_lease_spec(lease)


def validate_lease_spec(lease):
    errs = []
    spec = lease.get("spec") or {}
    if spec.get("leaseDurationSeconds") is not None and spec["leaseDurationSeconds"] <= 0:
        errs.append(FieldError("Invalid", "spec.leaseDurationSeconds", spec["leaseDurationSeconds"],
                               "must be greater than 0"))
    if spec.get("leaseTransitions") is not None and spec["leaseTransitions"] < 0:
        errs.append(FieldError("Invalid", "spec.leaseTransitions", spec["leaseTransitions"],
                               "must be greater than or equal to 0"))
    return errs


def validate_pod(pod):
    errs = validate_object_meta(pod["metadata"], True, is_dns1123_subdomain)
    containers = pod["spec"].get("containers") or []
    if not containers:
        errs.append(FieldError("Required", "spec.containers"))
    for i, c in enumerate(containers):
        if not c.get("name"):
            errs.append(FieldError("Required", "spec.containers[%d].name" % i))
        else:
            for m in is_dns1123_label(c["name"]):
                errs.append(FieldError("Invalid", "spec.containers[%d].name" % i, c["name"], m))
        if not c.get("image"):
            errs.append(FieldError("Required", "spec.containers[%d].image" % i))
    return errs


POD_UPDATE_MSG = ("pod updates may not change fields other than `spec.containers[*].image`,"
                  "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                  "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                  "(allow it to be set to 1 if it was previously negative)")


def validate_pod_update(new, old):
    errs = validate_meta_update(new, old)
    def strip(spec):
        spec = dict(spec)
        spec["containers"] = [dict(c, image="") for c in spec.get("containers") or []]
        spec["initContainers"] = [dict(c, image="") for c in spec.get("initContainers") or []]
        spec.pop("activeDeadlineSeconds", None)
        return spec
    if strip(new["spec"]) != strip(old["spec"]):
        # The real message continues with a Go struct diff that is not reproduced.
        errs.append(FieldError("Forbidden", "spec", None, POD_UPDATE_MSG))
    return errs + validate_pod(new)


def generate_name(prefix):
    if len(prefix) > 58:
        prefix = prefix[:58]
    return prefix + "".join(random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
