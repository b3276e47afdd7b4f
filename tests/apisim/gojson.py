"""Go-compatible JSON, base64 and quoting helpers for the API simulator.

kube-apiserver is written in Go, so every error message that echoes a decode
problem (bad JSON, bad base64, wrong JSON type) is Go's wording. Python's json
module words its errors differently and accepts things Go rejects (NaN, lone
surrogates), so syntax checking is done here with a port of the decision points
of Go's encoding/json scanner, and only valid input reaches json.loads.
"""

import base64
import json
import unicodedata

WS = b" \t\r\n"


class GoJSONError(Exception):
    """A message worded exactly as Go's encoding/json would word it."""


def quote_char(c):
    """Go's encoding/json quoteChar(byte)."""
    if c == ord("'"):
        return "'\\''"
    if c == ord('"'):
        return "'\"'"
    s = go_quote(chr(c))
    return "'" + s[1:-1] + "'"


def _syntax(c, ctx):
    return GoJSONError("invalid character %s %s" % (quote_char(c), ctx))


EOF_MSG = "unexpected end of JSON input"


class _Scanner:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def peek(self):
        if self.i >= len(self.d):
            raise GoJSONError(EOF_MSG)
        return self.d[self.i]

    def skip_ws(self):
        while self.i < len(self.d) and self.d[self.i] in WS:
            self.i += 1

    def value(self):
        self.skip_ws()
        c = self.peek()
        if c == ord("{"):
            self.i += 1
            self.skip_ws()
            if self.peek() == ord("}"):
                self.i += 1
                return
            while True:
                self.skip_ws()
                c = self.peek()
                if c != ord('"'):
                    raise _syntax(c, "looking for beginning of object key string")
                self.string()
                self.skip_ws()
                c = self.peek()
                if c != ord(":"):
                    raise _syntax(c, "after object key")
                self.i += 1
                self.value()
                self.skip_ws()
                c = self.peek()
                self.i += 1
                if c == ord("}"):
                    return
                if c != ord(","):
                    raise _syntax(c, "after object key:value pair")
        if c == ord("["):
            self.i += 1
            self.skip_ws()
            if self.peek() == ord("]"):
                self.i += 1
                return
            while True:
                self.value()
                self.skip_ws()
                c = self.peek()
                self.i += 1
                if c == ord("]"):
                    return
                if c != ord(","):
                    raise _syntax(c, "after array element")
        if c == ord('"'):
            return self.string()
        if c == ord("-") or ord("0") <= c <= ord("9"):
            return self.number()
        for lit in (b"true", b"false", b"null"):
            if c == lit[0]:
                self.i += 1
                for want in lit[1:]:
                    got = self.peek()
                    if got != want:
                        raise _syntax(got, "in literal %s (expecting %s)" % (lit.decode(), quote_char(want)))
                    self.i += 1
                return
        raise _syntax(c, "looking for beginning of value")

    def string(self):
        self.i += 1  # opening quote
        while True:
            c = self.peek()
            self.i += 1
            if c == ord('"'):
                return
            if c == ord("\\"):
                e = self.peek()
                self.i += 1
                if e in b'bfnrt\\/"':
                    continue
                if e != ord("u"):
                    raise _syntax(e, "in string escape code")
                for _ in range(4):
                    h = self.peek()
                    self.i += 1
                    if h not in b"0123456789abcdefABCDEF":
                        raise _syntax(h, "in \\u hexadecimal character escape")
            elif c < 0x20:
                raise _syntax(c, "in string literal")

    def _digits(self):
        while self.i < len(self.d) and ord("0") <= self.d[self.i] <= ord("9"):
            self.i += 1

    def number(self):
        # After a complete number Go falls into "end of value" for the enclosing
        # context, so stopping here and letting the caller look at the next byte
        # yields the same message.
        if self.d[self.i] == ord("-"):
            self.i += 1
            c = self.peek()
            if not ord("0") <= c <= ord("9"):
                raise _syntax(c, "in numeric literal")
        if self.d[self.i] == ord("0"):
            self.i += 1
        else:
            self._digits()
        if self.i < len(self.d) and self.d[self.i] == ord("."):
            self.i += 1
            c = self.peek()
            if not ord("0") <= c <= ord("9"):
                raise _syntax(c, "after decimal point in numeric literal")
            self._digits()
        if self.i < len(self.d) and self.d[self.i] in b"eE":
            self.i += 1
            c = self.peek()
            if c in b"+-":
                self.i += 1
                c = self.peek()
            if not ord("0") <= c <= ord("9"):
                raise _syntax(c, "in exponent of numeric literal")
            self._digits()


def check_valid(data):
    """Raise GoJSONError with Go's message if data is not one JSON value."""
    s = _Scanner(data)
    s.value()
    s.skip_ws()
    if s.i < len(data):
        raise _syntax(data[s.i], "after top-level value")


def _fix_strings(v):
    # Go turns lone surrogates (and invalid UTF-8, handled by the decode below)
    # into U+FFFD; Python would keep them and later fail to encode.
    if isinstance(v, str):
        if any(0xD800 <= ord(ch) <= 0xDFFF for ch in v):
            return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in v)
        return v
    if isinstance(v, list):
        return [_fix_strings(x) for x in v]
    if isinstance(v, dict):
        return {_fix_strings(k): _fix_strings(x) for k, x in v.items()}
    return v


def loads(data):
    """Decode bytes like Go's json.Unmarshal into interface{} (syntax errors worded by Go)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    check_valid(data)
    return _fix_strings(json.loads(data.decode("utf-8", "replace")))


def json_type_name(v):
    """The word Go's UnmarshalTypeError uses for a JSON value."""
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def unmarshal_map_error(data):
    """Go: json.Unmarshal(data, &map[string]interface{}{}) error text, or None."""
    try:
        v = loads(data)
    except GoJSONError as e:
        return str(e)
    if v is None or isinstance(v, dict):
        return None
    return "json: cannot unmarshal %s into Go value of type map[string]interface {}" % json_type_name(v)


def _html_escape(s):
    return (s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def encode(obj):
    """Go's json.Encoder.Encode: compact, HTML-escaped, one trailing newline."""
    return (_html_escape(json.dumps(obj, ensure_ascii=False, separators=(",", ":"))) + "\n").encode("utf-8")


def marshal(obj):
    """Go's json.Marshal: compact, HTML-escaped, no newline."""
    return _html_escape(json.dumps(obj, ensure_ascii=False, separators=(",", ":"))).encode("utf-8")


def encode_pretty(obj):
    """Go's json.MarshalIndent(obj, "", "  "): no trailing newline."""
    return _html_escape(json.dumps(obj, ensure_ascii=False, indent=2, separators=(",", ": "))).encode("utf-8")


def _printable(ch):
    # Approximates Go's strconv.IsPrint: letters, marks, numbers, punctuation,
    # symbols and the ASCII space.
    if ch == " ":
        return True
    return unicodedata.category(ch)[0] in "LMNPS"


def go_quote(s):
    """Go's strconv.Quote / fmt %q for a string."""
    if isinstance(s, bytes):
        s = s.decode("utf-8", "surrogateescape")
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= o <= 0xDCFF:  # an invalid byte kept by surrogateescape
            out.append("\\x%02x" % (o - 0xDC00))
        elif _printable(ch):
            out.append(ch)
        elif ch in "\a\b\f\n\r\t\v":
            out.append({"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                        "\t": "\\t", "\v": "\\v"}[ch])
        elif o < 0x20 or o == 0x7F:
            out.append("\\x%02x" % o)
        elif o < 0x10000:
            out.append("\\u%04x" % o)
        else:
            out.append("\\U%08x" % o)
    out.append('"')
    return "".join(out)


def go_fmt_v(v):
    """fmt's %v for values decoded into interface{} (maps print sorted)."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict):
        return "map[" + " ".join("%s:%s" % (k, go_fmt_v(v[k])) for k in sorted(v)) + "]"
    if isinstance(v, list):
        return "[" + " ".join(go_fmt_v(x) for x in v) + "]"
    return str(v)


# --- base64 -----------------------------------------------------------------

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_DEC = {ord(c): i for i, c in enumerate(_B64)}


class CorruptInputError(Exception):
    def __init__(self, offset):
        super().__init__("illegal base64 data at input byte %d" % offset)


def b64decode_go(s):
    """base64.StdEncoding.DecodeString, including Go's error offsets.

    Go skips CR/LF anywhere, requires padding, tolerates non-zero trailing bits.
    """
    src = s.encode("utf-8") if isinstance(s, str) else s
    out = bytearray()
    si = 0
    n = len(src)
    while True:
        dbuf = [0, 0, 0, 0]
        dlen = 4
        j = 0
        end = False
        while j < 4:
            if si == n:
                if j == 0:
                    return bytes(out)
                if j == 1:
                    raise CorruptInputError(si - j)
                raise CorruptInputError(si - j)  # StdEncoding has padding
            c = src[si]
            si += 1
            if c in _DEC:
                dbuf[j] = _DEC[c]
                j += 1
                continue
            if c in (0x0A, 0x0D):
                continue
            if c != ord("="):
                raise CorruptInputError(si - 1)
            if j in (0, 1):
                raise CorruptInputError(si - 1)
            if j == 2:
                while si < n and src[si] in (0x0A, 0x0D):
                    si += 1
                if si == n:
                    raise CorruptInputError(n)
                if src[si] != ord("="):
                    raise CorruptInputError(si - 1)
                si += 1
            while si < n and src[si] in (0x0A, 0x0D):
                si += 1
            if si < n:
                raise CorruptInputError(si)
            dlen = j
            end = True
            break
        val = (dbuf[0] << 18) | (dbuf[1] << 12) | (dbuf[2] << 6) | dbuf[3]
        b = [(val >> 16) & 0xFF, (val >> 8) & 0xFF, val & 0xFF]
        out.extend(b[: dlen - 1])
        if end:
            return bytes(out)


def b64encode(b):
    return base64.b64encode(b).decode("ascii")
