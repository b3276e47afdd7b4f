-- needs: none
-- The json module: Go's encoding/json string escaping (kubectl byte
-- identity), sorted keys, indentation, array/object markers, json.null,
-- strict decoding with positions, and misuse raising.
local t = require "test"
local json = require "json"

-- encoding: exact bytes
local encodes = {
  { 'u"q\\b', [["u\"q\\b"]], "quote and backslash" },
  { "<&>", [["\u003c\u0026\u003e"]], "HTML-safe escapes" },
  { "a\1b\8c\12d\te\127f\u{2028}g/h", '"a\\u0001b\\bc\\fd\\te\127f\\u2028g/h"', "control bytes, DEL raw, U+2028, '/' raw" },
  { "\n\r\0\31 ", [["\n\r\u0000\u001f "]], "newline, return, NUL, 0x1f" },
  { "\u{2029}", [["\u2029"]], "U+2029" },
  { "é中😀\u{fffd}", '"é中😀\u{fffd}"', "valid non-ASCII stays raw UTF-8" },
  { "\xff", [["\ufffd"]], "an invalid byte becomes U+FFFD" },
  { "a\xe2\x80b", [["a\ufffd\ufffdb"]], "each byte of a cut-short sequence becomes U+FFFD" },
  { "\xc0\xaf", [["\ufffd\ufffd"]], "an overlong form is invalid" },
  { "\xed\xa0\x80", [["\ufffd\ufffd\ufffd"]], "an encoded surrogate is invalid" },
  { "\xf4\x90\x80\x80", [["\ufffd\ufffd\ufffd\ufffd"]], "past U+10FFFF is invalid" },
  { "", [[""]], "empty string" },
  { 0, "0", "zero" },
  { -42, "-42", "negative integer" },
  { math.maxinteger, "9223372036854775807", "largest integer" },
  { math.mininteger, "-9223372036854775808", "smallest integer" },
  { 1.5, "1.5", "float" },
  { 0.1, "0.1", "0.1 in shortest form" },
  { 1 / 3, "0.3333333333333333", "1/3 needs 16 digits" },
  { 2 ^ 0.5, "1.4142135623730951", "sqrt 2 needs 17 digits" },
  { 3.0, "3", "integral float" },
  { 1e300, "1e+300", "large float" },
  { true, "true", "true" },
  { false, "false", "false" },
  { json.null, "null", "json.null" },
  { {}, "{}", "an unmarked empty table is an object" },
  { json.array(), "[]", "marked empty array" },
  { json.object(), "{}", "marked empty object" },
  { { 1, "two", false }, '[1,"two",false]', "sequence" },
  { { b = 1, a = 2, ["B"] = 3, [""] = 4, ab = 5 }, '{"":4,"B":3,"a":2,"ab":5,"b":1}', "keys sorted by bytes" },
  { { ["a\0b"] = 1, a = 2 }, '{"a":2,"a\\u0000b":1}', "keys are binary safe" },
  { { ["<k>"] = "v" }, '{"\\u003ck\\u003e":"v"}', "keys escaped as strings" },
  { { x = json.array { json.object(), json.array() } }, '{"x":[{},[]]}', "nested markers" },
  { json.object { a = json.null }, '{"a":null}', "null member" },
}
for _, c in ipairs(encodes) do
  t.eq(json.encode(c[1]), c[2], "encode: " .. c[3])
end

-- kubectl's .dockerconfigjson bytes (kubernetes-api.md 1.3), keys sorted
local auths = { auths = { ["registry.example.com"] = {
  username = "alice", password = "s3cret", auth = "YWxpY2U6czNjcmV0" } } }
t.eq(json.encode(auths),
  '{"auths":{"registry.example.com":{"auth":"YWxpY2U6czNjcmV0","password":"s3cret","username":"alice"}}}',
  "a docker config encodes compactly with sorted keys")

-- indentation like Go's json.MarshalIndent(v, "", "  ")
local doc = { kind = "Secret", metadata = { name = "x", labels = {} }, data = json.array { 1, { a = true } },
  empty = json.array() }
t.eq(json.encode(doc, { indent = 2 }), table.concat({
  '{',
  '  "data": [',
  '    1,',
  '    {',
  '      "a": true',
  '    }',
  '  ],',
  '  "empty": [],',
  '  "kind": "Secret",',
  '  "metadata": {',
  '    "labels": {},',
  '    "name": "x"',
  '  }',
  '}' }, "\n"), "indent = 2")
t.eq(json.encode({ a = { 1 } }, { indent = 4 }), '{\n    "a": [\n        1\n    ]\n}', "indent = 4")
t.eq(json.encode({ a = { 1 } }, { indent = 0 }), '{\n"a": [\n1\n]\n}', "indent = 0: newlines only, as Go")
t.eq(json.encode("x", { indent = 2 }), '"x"', "indent on a scalar")
t.eq(json.encode({ a = 1 }, {}), '{"a":1}', "empty options: compact")

-- values JSON cannot hold raise, naming the path
local enc_errors = {
  { { metadata = { labels = { 1, a = 2 } } }, "json.encode: cannot encode a table with mixed keys at .metadata.labels" },
  { { x = { 1, 2, print } }, "json.encode: cannot encode a function value at .x[3]" },
  { print, "json.encode: cannot encode a function value" },
  { coroutine.create(print), "json.encode: cannot encode a thread value" },
  { { io.stdout }, "json.encode: cannot encode a userdata value at [1]" },
  { { a = { [1] = 1, [3] = 3 } }, "json.encode: cannot encode a sparse array at .a" },
  { { [0] = "zero" }, "json.encode: cannot encode a sparse array" },
  { { [-1] = "x", [1] = "y" }, "json.encode: cannot encode a sparse array" },
  { { [1.5] = 1 }, "json.encode: cannot encode a table with number keys" },
  { { [true] = 1 }, "json.encode: cannot encode a table with boolean keys" },
  { { ["app.kubernetes.io/name"] = { x = 0 / 0 } }, 'json.encode: cannot encode NaN at ["app.kubernetes.io/name"].x' },
  { { a = 1 / 0 }, "json.encode: cannot encode inf at .a" },
  { { a = -1 / 0 }, "json.encode: cannot encode -inf at .a" },
  { json.array { x = 1 }, "json.encode: cannot encode an array with keys other than 1..n" },
  { json.array { [2] = 1 }, "json.encode: cannot encode an array with keys other than 1..n" },
  { json.object { 1 }, "json.encode: cannot encode an object with non-string keys" },
  { { items = { { spec = { [2] = 1 } } } }, "json.encode: cannot encode a sparse array at .items[1].spec" },
}
for i, c in ipairs(enc_errors) do
  local ok, err = pcall(json.encode, c[1])
  t.eq({ ok, err }, { false, c[2] }, "encode error " .. i .. ": " .. c[2])
end
local nested = {}
local inner = nested
for _ = 1, 999 do
  inner[1] = {}
  inner = inner[1]
end
t.eq(#json.encode(nested), 2000, "1000 nested tables encode")
inner[1] = {}
t.raises("json.encode: nesting too deep", "1001 nested tables raise", json.encode, nested)
local cycle = {}
cycle.self = cycle
t.raises("json.encode: nesting too deep", "a cycle raises", json.encode, cycle)
t.raises("json.encode: cannot encode a nil value", "nil", json.encode, nil)

-- misuse
t.raises("bad argument #1 to 'json.encode' (value expected)", "encode()", json.encode)
t.raises("bad argument #2 to 'json.encode' (table expected, got number)", "encode with number options",
  json.encode, {}, 2)
t.raises("bad argument #2 to 'json.encode' (unknown option 'x')", "unknown option", json.encode, {}, { x = 1 })
t.raises("bad argument #2 to 'json.encode' (unknown option 'pretty')", "unknown option next to a known one",
  json.encode, {}, { indent = 2, pretty = true })
for _, v in ipairs { 9, -1, 1.5, "2", true } do
  t.raises("bad argument #2 to 'json.encode' (option 'indent' must be an integer from 0 to 8)",
    "indent = " .. tostring(v), json.encode, {}, { indent = v })
end
t.raises("bad argument #1 to 'json.decode' (string expected, got no value)", "decode()", json.decode)
t.raises("bad argument #1 to 'json.decode' (string expected, got table)", "decode({})", json.decode, {})

-- decoding
t.eq(json.decode('{"a":[1,2.5,"x"],"b":null,"c":true,"d":false}'),
  { a = { 1, 2.5, "x" }, b = json.null, c = true, d = false }, "decode an object")
local decodes = {
  { "0", 0 }, { "-0", 0 }, { "42", 42 }, { "1e2", 100 }, { "2.0", 2 }, { "2.5", 2.5 }, { "-1.25e-2", -0.0125 },
  { "9007199254740991", 9007199254740991 }, { "9007199254740992", 9007199254740992.0 },
  { "-9007199254740992", -9007199254740992.0 }, { "1e20", 1e20 }, { "1e308", 1e308 }, { "1e-400", 0 },
  { '"a\\"\\\\\\/\\b\\f\\n\\r\\tz"', 'a"\\/\b\f\n\r\tz' },
  { '"\\u00e9\\u4E2D\\ud83d\\ude00"', "é中😀" },
  { '"\xff\xfe"', "\xff\xfe" },
  { '"\\u0001"', "\1" },
  { '"\\u0000"', "\0" },
  { " \t\r\n[ ] \n", {} },
  { "null", json.null }, { "true", true },
}
for _, c in ipairs(decodes) do
  t.eq(json.decode(c[1]), c[2], "decode " .. c[1]:gsub("%c", "."))
end
local v = json.decode('{"a":[{},[]],"b":{}}')
t.eq({ json.kind(v), json.kind(v.a), json.kind(v.a[1]), json.kind(v.a[2]), json.kind(v.b) },
  { "object", "array", "object", "array", "object" }, "decoded tables carry markers")
t.eq(json.decode('{"a":1,"a":2}'), { a = 2 }, "the last of duplicate keys wins, as Go")
-- cJSON's strings end at a NUL: with one anywhere, strings come from the text
t.eq(json.decode('{"k\\u0000":["a\\u0000b","\\u00e9\\u4e2d\\ud83d\\ude00\\n\\"\\\\\\/\\b\\f\\r\\t",{"x":"y"}],"z":"\xff"}'),
  { ["k\0"] = { "a\0b", "é中😀\n\"\\/\b\f\r\t", { x = "y" } }, z = "\xff" },
  "strings with \\u0000 decode exactly, and every other string beside them")
t.eq(json.decode(json.encode { "\0", { ["\0\0"] = "x\0" } }), { "\0", { ["\0\0"] = "x\0" } }, "NUL bytes round trip")

local dec_errors = {
  { "", "invalid JSON at line 1, column 1 (byte 0)" },
  { "{", "invalid JSON at line 1, column 1 (byte 0)" },
  { '{"a":1}x', "invalid JSON at line 1, column 8 (byte 7)" },
  { '{"a":1} {}', "invalid JSON at line 1, column 9 (byte 8)" },
  { "[1,2]]", "invalid JSON at line 1, column 6 (byte 5)" },
  { ' {\n "a": x}', "invalid JSON at line 2, column 7 (byte 9)" },
  { '{"a" 1}', "invalid JSON at line 1, column 6 (byte 5)" },
  { "[1,]", "invalid JSON at line 1, column 4 (byte 3)" },
  { "+1", "invalid JSON at line 1, column 1 (byte 0)" },
  { "01", "invalid JSON at line 1, column 2 (byte 1)" },
  { "[-]", "invalid JSON at line 1, column 2 (byte 1)" },
  { "1.", "invalid JSON at line 1, column 3 (byte 2)" },
  { ".5", "invalid JSON at line 1, column 1 (byte 0)" },
  { "1e", "invalid JSON at line 1, column 2 (byte 1)" },
  { "[1e]", "invalid JSON at line 1, column 3 (byte 2)" },
  { "tru", "invalid JSON at line 1, column 1 (byte 0)" },
  { "nul", "invalid JSON at line 1, column 1 (byte 0)" },
  { "NaN", "invalid JSON at line 1, column 1 (byte 0)" },
  { "'a'", "invalid JSON at line 1, column 1 (byte 0)" },
  { '"a\nb"', "invalid JSON at line 1, column 3 (byte 2)" },
  { '"a\tb"', "invalid JSON at line 1, column 3 (byte 2)" },
  { '"\\x"', "invalid JSON at line 1, column 2 (byte 1)" },
  { '"\\u00zz"', "invalid JSON at line 1, column 6 (byte 5)" },
  { '"\\ud800"', "invalid JSON at line 1, column 2 (byte 1)" },
  { '[1,\v2]', "invalid JSON at line 1, column 4 (byte 3)" },
  { "\1 1", "invalid JSON at line 1, column 1 (byte 0)" },
  { "\xef\xbb\xbf1", "invalid JSON at line 1, column 1 (byte 0)" },
  { '"a\0b"', "invalid JSON at line 1, column 3 (byte 2)" },
  { "[1e400]", "JSON number out of range at line 1, column 2 (byte 1)" },
  { '{"a":-1e999}', "JSON number out of range at line 1, column 6 (byte 5)" },
  { string.rep("[", 1001) .. string.rep("]", 1001), "JSON nesting too deep at line 1, column 1001 (byte 1000)" },
}
for _, c in ipairs(dec_errors) do
  local got, err = json.decode(c[1])
  t.eq({ got, err }, { nil, c[2] }, "decode error: " .. c[1]:gsub("%c", "."):sub(1, 20))
end
t.eq(#json.decode(string.rep("[", 1000) .. string.rep("]", 1000)), 1, "1000 nested arrays decode")

-- round trips
local round = {
  { a = json.array(), b = json.object(), c = { 1, 2, { x = json.null } }, d = 1.25, e = -7, f = "s é\u{2028}<\1\0" },
  json.array { json.array { json.array() } },
  { metadata = { name = "n", labels = json.object() }, imagePullSecrets = json.array { { name = "a" } } },
}
for i, r in ipairs(round) do
  local back = json.decode(json.encode(r))
  t.eq(json.encode(back), json.encode(r), "round trip " .. i .. " re-encodes identically")
end
local back = json.decode(json.encode { i = 3, f = 0.5, big = 2 ^ 60 })
t.eq({ math.type(back.i), math.type(back.f), math.type(back.big) }, { "integer", "float", "float" },
  "integers stay integers, floats and values past 2^53 floats")
t.eq(json.decode(json.encode "s\xff"), "s\xef\xbf\xbd", "invalid UTF-8 comes back as U+FFFD")
local text = '{"apiVersion":"v1","data":{".dockerconfigjson":"eyJ9"},"kind":"Secret","metadata":{"name":"x"},"type":"kubernetes.io/dockerconfigjson"}'
t.eq(json.encode(json.decode(text)), text, "a sorted compact Secret is a fixed point")

-- markers
local arr = {}
t.ok(json.array(arr) == arr, "json.array returns its argument")
t.eq(json.kind(arr), "array", "kind of a marked array")
t.eq(json.kind(json.object()), "object", "kind of a new object")
t.eq(json.kind(json.array(json.array())), "array", "marking twice is fine")
t.eq(json.kind({}), nil, "an unmarked table has no kind")
t.eq(json.kind("x"), nil, "a string has no kind")
t.eq(select("#", json.kind({})), 1, "kind returns one value")
t.raises("bad argument #1 to 'json.array' (table already has a metatable)", "array over an object",
  json.array, json.object())
t.raises("bad argument #1 to 'json.object' (table already has a metatable)", "object over another metatable",
  json.object, setmetatable({}, {}))
t.raises("bad argument #1 to 'json.array' (table expected, got string)", "array of a string", json.array, "x")
t.raises("bad argument #1 to 'json.kind' (value expected)", "kind()", json.kind)
t.eq(type(json.null), "userdata", "json.null is a light userdata")
t.ok(json.null ~= nil, "json.null is not nil")

return t.done()
