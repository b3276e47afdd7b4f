#!/usr/bin/env python3
"""secretscan.py: fails when a registered test secret shows up where it must not.

Usage: secretscan.py --registry FILE [--registry FILE...] [--keys DIR] [--logs DIR] PATH...

A registry file holds one secret per line, "NAME VALUE": the name has no
spaces, the value is the rest of the line, verbatim; blank lines and lines
starting with "#" are comments. --keys DIR registers the private part of
every PEM private key found under DIR (the test PKIs); --logs DIR is left
out of that search.

Each secret is looked for in the forms it takes on the wire and in logs:
raw; base64 and base64url at each of the 3 byte alignments (so "user:pass"
in a docker `auth`, or the password inside a base64'd .dockerconfigjson,
is found whatever precedes it); URL-encoded (%XX and form '+'); JSON-escaped
(Go's HTML-safe \\u003c form and ensure_ascii's \\uXXXX form), and the
JSON forms base64'd too.

Every file under each PATH directory (and each PATH file) is scanned, except:
  *.secret-output     stdout of `setup.lua --dry-run=client -o FORMAT`, which
                      prints the Secrets by design (counted as excluded);
  apisim-requests.jsonl  the simulator's request log: scanned entry by entry,
                      leaving out only the body of Secret writes (POST, PUT,
                      PATCH of /api/v1/namespaces/NS/secrets[/NAME]), which must
                      carry the .dockerconfigjson.
Prints one "FOUND FILE:LINE NAME (FORM)" line per secret and file (never the
secret; NAME|NAME when secrets sharing a prefix share the fragment found),
then "# secret scan: N secrets x N files, N found"; exits 1 when something
was found, 2 on misuse. The search is GNU grep's, for all patterns at once.
"""
import argparse
import base64
import json
import os
import re
import subprocess
import sys
import tempfile
from urllib.parse import quote, quote_plus

MIN_ENCODED = 8  # shorter encoded fragments would match random base64 data
MAX_KEY_FILE = 1 << 16
SECRET_WRITE = re.compile(r"/api/v1/namespaces/[^/]+/secrets(/[^/]+)?")
PEM = re.compile(rb"-----BEGIN ([A-Z ]*)PRIVATE KEY-----\r?\n(.*?)-----END \1PRIVATE KEY-----", re.S)
OID_RSA = bytes.fromhex("2a864886f70d010101")


def die(message):
    print("secretscan: " + message, file=sys.stderr)
    sys.exit(2)


def read_registry(path):
    secrets = []
    with open(path, "rb") as f:
        for number, line in enumerate(f.read().decode("utf-8").split("\n"), 1):
            if not line.strip() or line.startswith("#"):
                continue
            name, sep, value = line.partition(" ")
            if not sep or not value:
                die(f"{path}:{number}: want NAME VALUE")
            secrets.append((name, value.encode("utf-8")))
    return secrets


def base64_forms(value):
    """The base64 text that encodes value whatever bytes precede it: for each
    alignment, the characters that depend on value's bytes only."""
    forms = []
    for pad in range(3):
        text = base64.b64encode(b"\0" * pad + value).rstrip(b"=")
        start = (0, 2, 3)[pad]  # characters that mix in the padding bytes
        end = 4 * ((pad + len(value)) // 3)  # complete groups: no following byte mixed in
        fragment = text[start:end]
        if len(fragment) >= MIN_ENCODED:
            forms.append((f"base64/{pad}", fragment))
            url = fragment.translate(bytes.maketrans(b"+/", b"-_"))
            if url != fragment:
                forms.append((f"base64url/{pad}", url))
    return forms


def forms_of(value):
    forms = [("raw", value)]
    text = value.decode("utf-8", "replace")
    url = quote(text, safe="")
    go_json = json.dumps(text, ensure_ascii=False)[1:-1]
    for old, new in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        go_json = go_json.replace(old, new)
    for form, encoded in (("url", url), ("url-lower", re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), url)),
                          ("form", quote_plus(text, safe="")), ("json", go_json), ("json-ascii", json.dumps(text)[1:-1])):
        forms.append((form, encoded.encode()))
    # base64'd JSON holding it (a .dockerconfigjson) holds its JSON form
    for form, text_form in [("", value)] + [(f, p) for f, p in forms if f.startswith("json")]:
        if form == "" or text_form != value:
            forms.extend((name + ("-" + form if form else ""), fragment) for name, fragment in base64_forms(text_form))
    seen, unique = set(), []
    for form, pattern in forms:
        if pattern not in seen:
            seen.add(pattern)
            unique.append((form, pattern))
    return unique


def der_element(buf, off):
    """(tag, content start, content end) of the DER element at off."""
    tag, length, off = buf[off], buf[off + 1], off + 2
    if length & 0x80:
        n = length & 0x7F
        length, off = int.from_bytes(buf[off:off + n], "big"), off + n
    return tag, off, off + length


def der_children(buf, start, end):
    children = []
    while start < end:
        element = der_element(buf, start)
        children.append(element)
        start = element[2]
    return children


def private_ranges(kind, der):
    """Byte ranges of a private key's DER that are secret (not its public key)."""
    _, start, end = der_element(der, 0)
    fields = der_children(der, start, end)
    if kind == b"":  # PKCS#8: version, algorithm, privateKey OCTET STRING
        algorithm = der[fields[1][1]:fields[1][2]]
        _, start, end = fields[2]
        if OID_RSA in algorithm:
            kind, der_inner = b"RSA ", der[start:end]
        elif der[start] == 0x30:  # EC and the like: an inner SEQUENCE
            kind, der_inner = b"EC ", der[start:end]
        else:  # Ed25519 and the like: the OCTET STRING is the key
            return [(start, end)]
        return [(a + start, b + start) for a, b in private_ranges(kind, der_inner)]
    if kind == b"RSA ":  # version, n, e, then d, p, q, dp, dq, qinv
        return [(s, e) for _, s, e in fields[3:9]]
    if kind == b"EC ":  # version, privateKey, [0] parameters, [1] publicKey
        return [fields[1][1:]]
    return [(0, len(der))]


def key_secrets(root, skip):
    """NAME VALUE pairs for the PEM lines of each private key under root that
    hold secret bytes: such a line appears nowhere but in that key."""
    secrets = []
    for path in walk([root], skip):
        try:
            if os.path.getsize(path) > MAX_KEY_FILE:
                continue
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        for match in PEM.finditer(data):
            lines = match.group(2).split()
            try:
                der = base64.b64decode(b"".join(lines))
                ranges = private_ranges(match.group(1), der)
            except (ValueError, IndexError):
                continue
            offset = 0
            for line in lines:
                size = len(base64.b64decode(line)) if len(line) % 4 == 0 else 0
                if len(line) >= 16 and any(a < offset + size and offset < b for a, b in ranges):
                    secrets.append((f"private-key:{os.path.relpath(path, root)}", line))
                offset += size
    return secrets


def walk(paths, skip=None):
    for top in paths:
        if os.path.isfile(top):
            yield top
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if os.path.join(dirpath, d) != skip)
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if os.path.isfile(path) and not os.path.islink(path):
                    yield path


def without_secret_writes(data):
    """The simulator's request log (JSON lines) with the bodies of Secret
    writes left out, and every other field as sent, one entry per line."""
    lines = []
    for line in data.split(b"\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            lines.append(line)
            continue
        if entry.get("method") in ("POST", "PUT", "PATCH") and SECRET_WRITE.fullmatch(entry.get("path", "")):
            entry["body"] = ""
        lines.append("\t".join(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
                               for v in entry.values()).encode("utf-8", "replace"))
    return b"\n".join(lines)


def grep(pattern_file, files):
    """(file, line, pattern) for the matches of any pattern, by GNU grep's
    many-pattern search (much faster than one search per pattern)."""
    proc = subprocess.run(["grep", "-F", "-a", "-o", "-n", "-H", "-Z", "-f", pattern_file, "--", *files],
                          capture_output=True, env={**os.environ, "LC_ALL": "C"})
    if proc.returncode > 1:
        die("grep failed: " + proc.stderr.decode(errors="replace"))
    hits = []
    for record in proc.stdout.split(b"\n"):
        if record:
            path, _, rest = record.partition(b"\0")
            line, _, pattern = rest.partition(b":")
            hits.append((os.fsdecode(path), int(line), pattern))
    return hits


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--registry", action="append", default=[])
    ap.add_argument("--keys")
    ap.add_argument("--logs")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()

    secrets = []
    for path in args.registry:
        if os.path.exists(path):
            secrets.extend(read_registry(path))
    if args.keys:
        secrets.extend(key_secrets(args.keys, args.logs and os.path.normpath(args.logs)))
    patterns = {}  # pattern -> (names, form): secrets sharing a prefix may share a fragment
    for name, value in secrets:
        for form, pattern in forms_of(value):
            names, _ = patterns.setdefault(pattern, ([], form))
            if name not in names:
                names.append(name)

    with tempfile.TemporaryDirectory() as scratch:
        pattern_file = os.path.join(scratch, "patterns")
        with open(pattern_file, "wb") as f:
            f.write(b"".join(pattern + b"\n" for pattern in patterns))
        targets, shown, excluded = [], {}, 0
        for path in walk(args.paths):
            if path.endswith(".secret-output"):
                excluded += 1
                continue
            target = path
            if path.endswith("apisim-requests.jsonl"):
                target = os.path.join(scratch, f"{len(targets)}.jsonl")
                with open(path, "rb") as f, open(target, "wb") as out:
                    out.write(without_secret_writes(f.read()))
            targets.append(target)
            shown[target] = path
        hits = grep(pattern_file, targets) if targets and patterns else []

    found = set()
    for target, line, pattern in hits:
        names, form = patterns[pattern]
        name = "|".join(names)
        key = (shown[target], name)
        if key not in found:
            found.add(key)
            print(f"FOUND {shown[target]}:{line} {name} ({form})")
    names = len({name for name, _ in secrets})
    print(f"# secret scan: {names} secrets x {len(targets)} files, {len(found)} found"
          + (f" ({excluded} files of --dry-run=client -o output excluded)" if excluded else ""))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
