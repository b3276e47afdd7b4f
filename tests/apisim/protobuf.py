"""Just enough protobuf to read kubectl's typed POST of a Secret.

`kubectl create secret docker-registry` (client-go typed client) sends
application/vnd.kubernetes.protobuf with no JSON fallback, so a JSON-only
server makes the command fail. Only Secret is decoded; anything else is
reported as unsupported (the caller answers 415).
Field numbers: k8s.io/api core/v1 generated.proto, apimachinery runtime/generated.proto.
"""

import base64

MAGIC = b"k8s\x00"


class Unsupported(Exception):
    pass


def _varint(b, i):
    shift = result = 0
    while True:
        if i >= len(b):
            raise Unsupported("truncated varint")
        c = b[i]
        i += 1
        result |= (c & 0x7F) << shift
        if not c & 0x80:
            return result, i
        shift += 7


def fields(b):
    """Yield (field number, wire type, value) for one message."""
    i = 0
    while i < len(b):
        tag, i = _varint(b, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise Unsupported("wire type %d" % wt)
        yield num, wt, v


def _map_entry(b):
    k = v = b""
    for num, _, val in fields(b):
        if num == 1:
            k = val
        elif num == 2:
            v = val
    return k.decode("utf-8", "replace"), v


def _object_meta(b):
    meta = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for num, _, v in fields(b):
        if num in names:
            meta[names[num]] = v.decode("utf-8", "replace")
        elif num in (11, 12):
            k, val = _map_entry(v)
            meta.setdefault("labels" if num == 11 else "annotations", {})[k] = val.decode("utf-8", "replace")
        elif num == 14:
            meta.setdefault("finalizers", []).append(v.decode("utf-8", "replace"))
    return meta


def decode_object(body, kind):
    if not body.startswith(MAGIC):
        raise Unsupported("missing k8s protobuf envelope")
    type_meta, raw = {}, b""
    for num, _, v in fields(body[len(MAGIC):]):
        if num == 1:
            for n2, _, v2 in fields(v):
                type_meta["apiVersion" if n2 == 1 else "kind"] = v2.decode()
        elif num == 2:
            raw = v
    if type_meta.get("kind") != kind or kind not in ("Secret", "ServiceAccount", "Namespace"):
        raise Unsupported("apisim decodes protobuf only for Secret, ServiceAccount and Namespace")
    obj = {"apiVersion": type_meta.get("apiVersion", "v1"), "kind": kind}
    if kind == "ServiceAccount":
        return _service_account(raw, obj)
    if kind == "Namespace":
        for num, _, v in fields(raw):
            if num == 1:
                obj["metadata"] = _object_meta(v)
        return obj
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = _object_meta(v)
        elif num == 2:
            k, val = _map_entry(v)
            obj.setdefault("data", {})[k] = base64.b64encode(val).decode()
        elif num == 3:
            obj["type"] = v.decode("utf-8", "replace")
        elif num == 4:
            k, val = _map_entry(v)
            obj.setdefault("stringData", {})[k] = val.decode("utf-8", "replace")
        elif num == 5:
            obj["immutable"] = bool(v)
    return obj


def _service_account(raw, obj):
    ref_names = {1: "kind", 2: "namespace", 3: "name", 4: "uid", 5: "apiVersion", 6: "resourceVersion",
                 7: "fieldPath"}
    for num, _, v in fields(raw):
        if num == 1:
            obj["metadata"] = _object_meta(v)
        elif num == 2:
            obj.setdefault("secrets", []).append(
                {ref_names[n]: x.decode("utf-8", "replace") for n, _, x in fields(v) if n in ref_names})
        elif num == 3:
            obj.setdefault("imagePullSecrets", []).append(
                {"name": x.decode("utf-8", "replace") for n, _, x in fields(v) if n == 1})
        elif num == 4:
            obj["automountServiceAccountToken"] = bool(v)
    return obj
