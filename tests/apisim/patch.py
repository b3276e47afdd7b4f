"""The three non-apply PATCH flavours, with the semantics the apiserver uses.

* JSON merge patch: RFC 7386 (evanphx/json-patch MergePatch).
* JSON patch: RFC 6902 (evanphx/json-patch v4 DecodePatch/Apply).
* Strategic merge patch: merge patch plus Go struct tags: lists marked
  patchStrategy=merge are merged by their patchMergeKey, everything else is
  replaced. Item order follows apimachinery's normalizeElementOrder /
  mergeSortedSlice so results match the server (new items first, e.g.
  SA secrets [tok-b, tok-a]).
"""

import copy

from gojson import GoJSONError, go_fmt_v, json_type_name, loads


class PatchError(Exception):
    """kind: 'bad_request' (400), 'generic422' (422 without text), 'internal' (500)."""

    def __init__(self, kind, message=""):
        super().__init__(message)
        self.kind = kind
        self.message = message


# --- JSON merge patch -------------------------------------------------------

def _prune_nulls(v):
    if isinstance(v, dict):
        return {k: _prune_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_prune_nulls(x) for x in v]
    return v


def _merge_docs(doc, patch):
    for k, pv in patch.items():
        if pv is None:
            doc.pop(k, None)
        elif isinstance(pv, dict) and isinstance(doc.get(k), dict):
            _merge_docs(doc[k], pv)
        else:
            doc[k] = _prune_nulls(pv)
    return doc


def merge_patch(doc, patch_bytes):
    """Returns the patched document, which may be a list when the patch is one
    (evanphx returns a JSON array patch unchanged; decoding then fails with 422)."""
    try:
        patch = loads(patch_bytes)
    except GoJSONError:
        raise PatchError("bad_request", "Invalid JSON Patch")
    if isinstance(patch, dict):
        return _merge_docs(copy.deepcopy(doc), patch)
    if isinstance(patch, list):
        return _prune_nulls(patch)
    raise PatchError("bad_request", "Invalid JSON Patch")


# --- JSON patch (RFC 6902) --------------------------------------------------

def decode_json_patch(patch_bytes):
    try:
        ops = loads(patch_bytes)
    except GoJSONError as e:
        raise PatchError("bad_request", str(e))
    if ops is None:
        return []
    if not isinstance(ops, list):
        raise PatchError("bad_request", "json: cannot unmarshal %s into Go value of type jsonpatch.Patch"
                         % json_type_name(ops))
    for op in ops:
        if op is not None and not isinstance(op, dict):
            raise PatchError("bad_request", "json: cannot unmarshal %s into Go value of type jsonpatch.Operation"
                             % json_type_name(op))
    return ops


def _split_pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError("generic422", "invalid path")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _container(doc, parts):
    cur = doc
    for p in parts:
        if isinstance(cur, dict):
            if p not in cur:
                raise PatchError("generic422", "doc is missing path")
            cur = cur[p]
        elif isinstance(cur, list):
            cur = cur[_index(p, len(cur))]
        else:
            raise PatchError("generic422", "doc is missing path")
    return cur


def _index(p, n, allow_end=False):
    if p == "-" and allow_end:
        return n
    if not p.isdigit() or (len(p) > 1 and p[0] == "0"):
        raise PatchError("generic422", "invalid index")
    i = int(p)
    if i > n or (i == n and not allow_end):
        raise PatchError("generic422", "index out of bounds")
    return i


def _get(doc, parts):
    if not parts:
        return doc
    parent = _container(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError("generic422", "missing value")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(last, len(parent))]
    raise PatchError("generic422", "missing value")


def _add(doc, parts, value):
    if not parts:
        return value
    parent = _container(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(last, len(parent), allow_end=True), value)
    else:
        raise PatchError("generic422", "doc is missing path")
    return doc


def _remove(doc, parts):
    if not parts:
        raise PatchError("generic422", "cannot remove root")
    parent = _container(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError("generic422", "missing value")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(last, len(parent)))
    raise PatchError("generic422", "doc is missing path")


def _deep_equal(a, b):
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_deep_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_deep_equal(x, y) for x, y in zip(a, b))
    if a != b:
        return False
    return type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float)))


def json_patch(doc, ops):
    doc = copy.deepcopy(doc)
    for op in ops:
        if op is None:
            raise PatchError("generic422", "nil operation")
        kind = op.get("op")
        if not isinstance(op.get("path"), str):
            raise PatchError("generic422", "operation missing path")
        parts = _split_pointer(op["path"])
        if kind == "add":
            if "value" not in op:
                raise PatchError("generic422", "missing value")
            doc = _add(doc, parts, copy.deepcopy(op["value"]))
        elif kind == "remove":
            _remove(doc, parts)
        elif kind == "replace":
            if "value" not in op:
                raise PatchError("generic422", "missing value")
            _get(doc, parts)  # must exist
            if not parts:
                doc = copy.deepcopy(op["value"])
            else:
                parent = _container(doc, parts[:-1])
                if isinstance(parent, dict):
                    parent[parts[-1]] = copy.deepcopy(op["value"])
                else:
                    parent[_index(parts[-1], len(parent))] = copy.deepcopy(op["value"])
        elif kind in ("move", "copy"):
            if not isinstance(op.get("from"), str):
                raise PatchError("generic422", "missing from")
            src = _split_pointer(op["from"])
            val = _remove(doc, src) if kind == "move" else copy.deepcopy(_get(doc, src))
            doc = _add(doc, parts, val)
        elif kind == "test":
            try:
                cur = _get(doc, parts)
            except PatchError:
                cur = None
                if op.get("value") is not None:
                    raise
            if not _deep_equal(cur, op.get("value")):
                raise PatchError("generic422", "testing value failed")
        else:
            raise PatchError("generic422", "Unexpected kind: %s" % kind)
    return doc


# --- strategic merge patch --------------------------------------------------

DIRECTIVE = "$patch"
SET_ORDER = "$setElementOrder/"
_DELETE = object()


def _key_of(item, key):
    return item if key is None else item.get(key) if isinstance(item, dict) else None


def _merge_sorted(left, right, server_order, key):
    """apimachinery mergeSortedSlice: interleave server-only items (left) into the
    patch items (right) keeping each list's relative order."""
    def idx(x):
        k = _key_of(x, key)
        for i, s in enumerate(server_order):
            if _key_of(s, key) == k:
                return i
        return -1
    out = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j]); j += 1
        elif j >= len(right):
            out.append(left[i]); i += 1
        else:
            li, ri = idx(left[i]), idx(right[j])
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i]); i += 1
            else:
                out.append(right[j]); j += 1
    return out


def _merge_list(orig, patch, key, order, elem_t):
    items = []
    deletes = set()
    for p in patch:
        if isinstance(p, dict) and DIRECTIVE in p:
            d = p[DIRECTIVE]
            if d == "replace":
                return [strategic(None, {k: v for k, v in x.items() if k != DIRECTIVE}, elem_t)
                        if isinstance(x, dict) else x
                        for x in patch if not (isinstance(x, dict) and x.get(DIRECTIVE) == "replace")]
            if d == "delete":
                if key is not None and key not in p:
                    raise PatchError("internal", "map: %s does not contain declared merge key: %s"
                                     % (go_fmt_v(p), key))
                deletes.add(_key_of(p, key))
                continue
            raise PatchError("bad_request", "Unable to find unsupported strategic merge patch format")
        if key is not None:
            if not isinstance(p, dict) or key not in p:
                raise PatchError("internal", "map: %s does not contain declared merge key: %s"
                                 % (go_fmt_v(p), key))
        items.append(p)
    server = [o for o in (orig or []) if _key_of(o, key) not in deletes]
    merged = list(server)
    for p in items:
        k = _key_of(p, key)
        pos = next((i for i, o in enumerate(merged) if _key_of(o, key) == k), -1)
        if pos >= 0:
            if key is not None:
                merged[pos] = strategic(merged[pos], p, elem_t)
        else:
            merged.append(strategic(None, p, elem_t) if isinstance(p, dict) else p)
    order_keys = [_key_of(x, key) for x in (order if order is not None else items)]
    patch_part = sorted([m for m in merged if _key_of(m, key) in order_keys],
                        key=lambda m: order_keys.index(_key_of(m, key)))
    server_only = [m for m in merged if _key_of(m, key) not in order_keys]
    return _merge_sorted(server_only, patch_part, orig or [], key)


def strategic(orig, patch, t):
    """Apply a strategic merge patch map to orig (a dict or None) for schema t."""
    if not isinstance(patch, dict):
        return patch
    d = patch.get(DIRECTIVE)
    if d == "delete":
        return _DELETE
    if d == "replace":
        orig = None
        patch = {k: v for k, v in patch.items() if k != DIRECTIVE}
    elif d is not None:
        raise PatchError("bad_request", "Unable to find unsupported strategic merge patch format")
    result = copy.deepcopy(orig) if isinstance(orig, dict) else {}
    for k, pv in patch.items():
        if k.startswith(SET_ORDER) or k == "$retainKeys" or k.startswith("$deleteFromPrimitiveList/"):
            continue
        ft = t.field(k) if t is not None else None
        if pv is None:
            result.pop(k, None)
            continue
        ov = result.get(k)
        if isinstance(pv, dict):
            v = strategic(ov if isinstance(ov, dict) else None, pv, ft)
            if v is _DELETE:
                result.pop(k, None)
            else:
                result[k] = v
        elif isinstance(pv, list) and ft is not None and ft.kind == "list" and ft.merge:
            order = patch.get(SET_ORDER + k)
            result[k] = _merge_list(ov if isinstance(ov, list) else [], pv, ft.merge_key,
                                    order if isinstance(order, list) else None, ft.elem)
        else:
            # Atomic lists and scalars replace; directives inside them are kept
            # literally (the decoder later drops or rejects them).
            result[k] = copy.deepcopy(pv)
    return result
