-- yaml: decode (kubeconfigs, the core schema, anchors, errors) and encode
-- (what `kubectl -o yaml` prints, byte for byte).
-- needs: none
local t = require "test"
local yaml = require "yaml"
local json = require "json"

local null, A, O = json.null, json.array, json.object

-- Equal by value, with integer/float, array/object and NaN told apart.
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) == "number" then
    return math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b))
  end
  if type(a) ~= "table" then return a == b end
  if json.kind(a) ~= json.kind(b) then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

local function decodes(text, want, name)
  local got, err = yaml.decode(text)
  t.ok(err == nil and same(got, want), name,
    "got:  " .. t.show(got) .. " (" .. tostring(err) .. ")\nwant: " .. t.show(want))
end

local function encodes(value, want, name)
  local ok, got = pcall(yaml.encode, value)
  t.ok(ok and got == want, name, "got:\n" .. tostring(got) .. "\nwant:\n" .. want)
end

---------------------------------------------------------------- kubeconfig

local kubeconfig = [[
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: ZmFrZS1jYQ==
    server: https://127.0.0.1:6443
  name: kind-dev
- cluster:
    insecure-skip-tls-verify: true
    server: "https://10.0.0.1:443"
  name: lab
contexts:
- context:
    cluster: kind-dev
    namespace: default
    user: dev-admin
  name: kind-dev
- context: {cluster: lab, user: eks-user}
  name: lab
current-context: kind-dev
preferences: {}
users:
- name: dev-admin
  user:
    client-certificate-data: ZmFrZS1jZXJ0
    client-key-data: ZmFrZS1rZXk=
- name: eks-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      args:
      - eks
      - get-token
      - --cluster-name
      - demo
      command: aws
      env:
      - name: AWS_PROFILE
        value: dev
      - name: EMPTY
        value: ""
      interactiveMode: IfAvailable
      provideClusterInfo: false
- name: token-user
  user:
    token: fake-token-not-real
]]
decodes(kubeconfig, O {
  apiVersion = "v1",
  kind = "Config",
  clusters = A {
    O { cluster = O { ["certificate-authority-data"] = "ZmFrZS1jYQ==", server = "https://127.0.0.1:6443" },
        name = "kind-dev" },
    O { cluster = O { ["insecure-skip-tls-verify"] = true, server = "https://10.0.0.1:443" }, name = "lab" },
  },
  contexts = A {
    O { context = O { cluster = "kind-dev", namespace = "default", user = "dev-admin" }, name = "kind-dev" },
    O { context = O { cluster = "lab", user = "eks-user" }, name = "lab" },
  },
  ["current-context"] = "kind-dev",
  preferences = O {},
  users = A {
    O { name = "dev-admin",
        user = O { ["client-certificate-data"] = "ZmFrZS1jZXJ0", ["client-key-data"] = "ZmFrZS1rZXk=" } },
    O { name = "eks-user", user = O { exec = O {
      apiVersion = "client.authentication.k8s.io/v1beta1",
      args = A { "eks", "get-token", "--cluster-name", "demo" },
      command = "aws",
      env = A { O { name = "AWS_PROFILE", value = "dev" }, O { name = "EMPTY", value = "" } },
      interactiveMode = "IfAvailable",
      provideClusterInfo = false,
    } } },
    O { name = "token-user", user = O { token = "fake-token-not-real" } },
  },
}, "a kubeconfig: lists, maps, booleans, flow style, quoted and plain strings")

local kc = yaml.decode(kubeconfig)
t.eq(json.kind(kc), "object", "mappings carry json's object marker")
t.eq(json.kind(kc.clusters), "array", "sequences carry json's array marker")
t.eq(json.kind(kc.preferences), "object", "{} is an object")
t.eq(json.encode(kc.users[2].user.exec.args), '["eks","get-token","--cluster-name","demo"]',
  "decoded values encode as JSON")

---------------------------------------------------------------- scalars

local scalars = {
  -- text, value, name
  { "~", null, "~ is null" },
  { "null", null, "null" },
  { "Null", null, "Null" },
  { "NULL", null, "NULL" },
  { "", null, "an empty document is null" },
  { "# just a comment\n", null, "a document of comments is null" },
  { "---\n", null, "--- alone is null" },
  { "nULL", "nULL", "nULL is a string" },
  { "true", true, "true" },
  { "True", true, "True" },
  { "TRUE", true, "TRUE" },
  { "false", false, "false" },
  { "False", false, "False" },
  { "FALSE", false, "FALSE" },
  { "yes", "yes", "yes is a string (YAML 1.2)" },
  { "off", "off", "off is a string" },
  { "y", "y", "y is a string" },
  { "0", 0, "0" },
  { "42", 42, "an integer" },
  { "-17", -17, "a negative integer" },
  { "+17", 17, "a signed integer" },
  { "010", 10, "leading zeros are decimal" },
  { "0x1F", 31, "hexadecimal" },
  { "0xff", 255, "lower-case hexadecimal" },
  { "0o17", 15, "octal" },
  { "9223372036854775807", math.maxinteger, "the largest integer" },
  { "-9223372036854775808", math.mininteger, "the smallest integer" },
  { "9223372036854775808", 9223372036854775808.0, "past the largest integer: a float" },
  { "-9223372036854775809", -9223372036854775809.0, "past the smallest integer: a float" },
  { "0x8000000000000000", 9223372036854775808.0, "hexadecimal past the largest integer: a float" },
  { "0x10000000000000000", "0x10000000000000000", "hexadecimal past 64 bits: a string, as in go-yaml" },
  { "0o2000000000000000000000", "0o2000000000000000000000", "octal past 64 bits: a string" },
  { "0o1000000000000000000000", 9223372036854775808.0, "octal past the largest integer: a float" },
  { "1.5", 1.5, "a float" },
  { "-0.25", -0.25, "a negative float" },
  { "1e3", 1000.0, "an exponent makes a float" },
  { "1E-2", 0.01, "an upper-case exponent" },
  { ".5", 0.5, "a float without integer digits" },
  { "5.", 5.0, "a float without fraction digits" },
  { "+1.5e+2", 150.0, "a signed float with a signed exponent" },
  { ".inf", math.huge, ".inf" },
  { "+.Inf", math.huge, "+.Inf" },
  { "-.INF", -math.huge, "-.INF" },
  { "0x", "0x", "0x is a string" },
  { "0b101", "0b101", "binary is not in the core schema" },
  { "1_000", "1_000", "underscores make a string" },
  { "1e", "1e", "1e is a string" },
  { ".", ".", ". is a string" },
  { "1.2.3", "1.2.3", "a version is a string" },
  { "2024-01-02", "2024-01-02", "a date is a string" },
  { "12:30", "12:30", "a time is a string" },
  { "-", A { null }, "- alone is a sequence of one null" },
  { "-a", "-a", "-a is a string" },
  { "'true'", "true", "a single-quoted true is a string" },
  { '"123"', "123", "a double-quoted number is a string" },
  { "''", "", "an empty quoted string" },
  { "'null'", "null", "a quoted null is a string" },
  { "'it''s'", "it's", "'' in single quotes" },
  { '"a\\tb\\n\\u00e9\\x41"', "a\tb\n\u{e9}A", "double-quoted escapes" },
  { '"a\\0b"', "a\0b", "an escaped NUL stays in the string" },
  { "héllo wörld", "héllo wörld", "UTF-8 text" },
  { "|\n  line one\n  line two\n", "line one\nline two\n", "a literal block keeps its final newline" },
  { "|-\n  a\n  b\n", "a\nb", "|- strips it" },
  { "|+\n  a\n\n", "a\n\n", "|+ keeps them all" },
  { ">\n  folded\n  text\n\n  para\n", "folded text\npara\n", "a folded block" },
  { ">-\n  a\n  b\n", "a b", ">- strips the final newline" },
  { "|2\n   indented\n", " indented\n", "an indentation indicator" },
  { "a: |\n  42\n", O { a = "42\n" }, "a block scalar is a string" },
  { "!!str 123", "123", "!!str" },
  { "!!str true", "true", "!!str true" },
  { "!!int '42'", 42, "!!int on a quoted scalar" },
  { "!!float 1", 1.0, "!!float of an integer is a float" },
  { "!!float '2.5'", 2.5, "!!float on a quoted scalar" },
  { "!!bool 'true'", true, "!!bool" },
  { "!!null ''", null, "!!null" },
  { "!!binary aGVsbG8=", "hello", "!!binary is base64-decoded" },
  { "!!binary |\n  //79AAE=\n", "\xff\xfe\xfd\x00\x01", "!!binary across lines, binary exact" },
  { "!!binary \"aGVs\\n bG8=\"", "hello", "!!binary ignores spaces and line breaks" },
  { "!custom 12", 12, "an unknown tag keeps the value" },
  { "!custom '12'", "12", "an unknown tag on a quoted scalar" },
  { "! 12", "12", "the non-specific tag ! makes a string" },
  { "!<tag:yaml.org,2002:int> 7", 7, "a verbatim tag" },
  { "%YAML 1.1\n---\nfoo", "foo", "a %YAML directive" },
  { "\xef\xbb\xbfa: 1", O { a = 1 }, "a UTF-8 byte order mark is skipped" },
  { "\xff\xfea\0:\0 \0001\0", O { a = 1 }, "UTF-16 with a byte order mark" },
}
for _, c in ipairs(scalars) do
  decodes(c[1], c[2], "scalar: " .. c[3])
end

local nan = yaml.decode(".nan")
t.ok(math.type(nan) == "float" and nan ~= nan, "scalar: .nan is NaN")
t.ok(yaml.decode(".NaN") ~= yaml.decode(".NaN"), "scalar: .NaN is NaN")
t.eq(yaml.decode(".NAN_"), ".NAN_", "scalar: .NAN_ is a string")
t.eq(math.type(yaml.decode("1e3")), "float", "1e3 is a float, not an integer")
t.eq(math.type(yaml.decode("-0")), "integer", "-0 is an integer")
t.eq(1 / yaml.decode("-0.0"), -math.huge, "-0.0 keeps its sign")
t.eq(#yaml.decode('"a\\0b"'), 3, "binary exact: the NUL counts")

---------------------------------------------------------------- collections

decodes("{a: [1, 2, {b: c}], d: [], e: {}}", O { a = A { 1, 2, O { b = "c" } }, d = A {}, e = O {} },
  "flow style")
decodes("- - a\n  - b\n- []\n- {}\n-\n- ~\n", A { A { "a", "b" }, A {}, O {}, null, null },
  "nested sequences; an empty item is null")
decodes("a:\nb: ~\n", O { a = null, b = null }, "a key without a value is null")
decodes("1: a\n-2: b\ntrue: c\nfalse: d\n0x10: e\n1.5: f\n1e3: g\n.inf: h\n'x': i\n",
  O { ["1"] = "a", ["-2"] = "b", ["true"] = "c", ["false"] = "d", ["16"] = "e", ["1.5"] = "f",
      ["1000"] = "g", [".inf"] = "h", x = "i" },
  "keys are converted to strings, as sigs.k8s.io/yaml does")
decodes("? complex\n: value\n", O { complex = "value" }, "an explicit key")
decodes("a: 1\n---\nb: 2\n", O { a = 1 }, "several documents: the first")
decodes("a: 1\n--- ]]] not yaml\n", O { a = 1 }, "the documents after the first are not read")
decodes("a: 1\n...\n", O { a = 1 }, "an explicit document end")
decodes(string.rep("[", 1000) .. string.rep("]", 1000),
  (function()
    local v = A {}
    for _ = 2, 1000 do v = A { v } end
    return v
  end)(), "1000 nested sequences")

---------------------------------------------------------------- anchors

decodes("a: &x {p: 1, q: [2]}\nb: *x\nc: &s text\nd: *s\n",
  O { a = O { p = 1, q = A { 2 } }, b = O { p = 1, q = A { 2 } }, c = "text", d = "text" },
  "aliases expand to the anchored values")
local shared = yaml.decode("a: &x {p: [1]}\nb: *x\n")
t.ok(shared.a ~= shared.b and shared.a.p ~= shared.b.p, "an alias is a copy, not the same table")
shared.b.p[1] = 99
t.eq(shared.a.p[1], 1, "changing the copy leaves the anchored value alone")
t.eq(json.kind(shared.b.p), "array", "copies keep their markers")
decodes("a: &x 1\na2: *x\nb: &x 2\nb2: *x\n", O { a = 1, a2 = 1, b = 2, b2 = 2 },
  "an anchor defined again holds the later value")
decodes("a: &x false\nb: *x\n", O { a = false, b = false }, "an anchored false")

local merge = [[
base: &base
  image: web:1
  replicas: 1
  labels: {app: web}
extra: &extra
  replicas: 5
  port: 80
one:
  replicas: 2
  <<: *base
  name: one
many:
  <<: [*extra, *base]
  image: web:2
inline:
  <<: {x: 1}
  y: 2
]]
decodes(merge, O {
  base = O { image = "web:1", replicas = 1, labels = O { app = "web" } },
  extra = O { replicas = 5, port = 80 },
  one = O { replicas = 2, image = "web:1", labels = O { app = "web" }, name = "one" },
  many = O { replicas = 5, port = 80, image = "web:2", labels = O { app = "web" } },
  inline = O { x = 1, y = 2 },
}, "merge keys: the mapping's own keys win, then earlier merged mappings")
decodes("a: {'<<': 1}\n", O { a = O { ["<<"] = 1 } }, "a quoted << is an ordinary key")

local laughs = [[
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
]]
t.fails("line 7, column 8: document too large (aliases expand to more than 1000000 nodes)",
  "billion laughs: refused at the alias that crosses the cap", yaml.decode, laughs)
local deep_alias = "a: &a " .. string.rep("[", 600) .. string.rep("]", 600) .. "\nb: [[[[[" ..
  string.rep("[", 500) .. "*a" .. string.rep("]", 505) .. "\n"
t.fails("line 2, column 509: nesting deeper than 1000 levels", "an alias copied too deep",
  yaml.decode, deep_alias)

---------------------------------------------------------------- errors

local errors = {
  { "a: b: c", "line 1, column 5: mapping values are not allowed in this context" },
  { "a: [1, 2", "line 2, column 1: did not find expected ',' or ']'" },
  { "key: 'unterminated", "line 1, column 19: found unexpected end of stream" },
  { "a:\n\tb: 1", "line 2, column 1: found character that cannot start any token" },
  { "a: 1\n b: 2", "line 2, column 3: mapping values are not allowed in this context" },
  { "- a\nb: c", "line 2, column 1: did not find expected '-' indicator" },
  { "a: |\n  x\n b", "line 3, column 2: did not find expected key" },
  { "a: @x", "line 1, column 4: found character that cannot start any token" },
  { "%FOO bar\n--- 1", "line 1, column 5: found unknown directive name" },
  { "a: 1\na: 2", 'line 2, column 1: duplicate key "a"' },
  { "a:\n  b: 1\n  c: 2\n  b: 3", 'line 4, column 3: duplicate key "b"' },
  { '1: a\n"1": b', 'line 2, column 1: duplicate key "1"' },
  { "<<: {a: 1}\n<<: {b: 1}", 'line 2, column 1: duplicate key "<<"' },
  { "a: &x\n  p: 1\nb: *y", 'line 3, column 4: undefined alias "y"' },
  { "a: &x [1, *x]", 'line 1, column 11: alias "x" is inside its own anchor' },
  { "? [1, 2]\n: x", "line 1, column 3: mapping key is not a scalar" },
  { "{a: 1}: x", "line 1, column 1: mapping key is not a scalar" },
  { "~: x", "line 1, column 1: mapping key is null" },
  { "a: !!int abc", "line 1, column 4: invalid !!int value" },
  { "a: !!int 1.5", "line 1, column 4: invalid !!int value" },
  { "a: !!int -0x10", "line 1, column 4: invalid !!int value" },
  { "a: !!float 0x10", "line 1, column 4: invalid !!float value" },
  { "a: !!bool yes", "line 1, column 4: invalid !!bool value" },
  { "a: !!null x", "line 1, column 4: invalid !!null value" },
  { "a: !!binary 'a'", "line 1, column 4: invalid !!binary value" },
  { "x: &a 1\ny:\n  <<: *a", "line 3, column 7: merge key value is not a mapping or a list of mappings" },
  { "x: &a {p: 1}\ny:\n  <<: [*a, 5]",
    "line 3, column 7: merge key value is not a mapping or a list of mappings" },
  { string.rep("[", 1001) .. string.rep("]", 1001), "line 1, column 1001: nesting deeper than 1000 levels" },
  { "a:\n  b:\n    c: [1, {d: " .. string.rep("[", 998) .. string.rep("]", 998) .. "}]",
    "line 3, column 1011: nesting deeper than 1000 levels" },
  -- libyaml's reader rejects bytes that are not UTF-8 and control characters
  { "a: \xff\n", "line 1, column 4: invalid leading UTF-8 octet" },
  { "a: b\nc: é \xc3\x28\n", "line 2, column 7: invalid trailing UTF-8 octet" }, -- the '(' 
  { "a: \xe2\x82", "line 1, column 4: incomplete UTF-8 octet sequence" },
  { "a: b\r\nc: \0", "line 2, column 4: control characters are not allowed" },
}
for _, c in ipairs(errors) do
  t.fails(c[2], "error: " .. c[2], yaml.decode, c[1])
end
local v, err = yaml.decode("a: 1\na: 2")
t.ok(v == nil and err == 'line 2, column 1: duplicate key "a"', "an error is exactly nil, message")
t.eq(select("#", yaml.decode("a: 1")), 1, "a success returns one value")

---------------------------------------------------------------- encode: kubectl's output

-- kubectl create secret docker-registry y1 --docker-server=ghcr.io --docker-username=u
--   --docker-password=p --dry-run=client -o yaml
encodes(O {
  apiVersion = "v1",
  kind = "Secret",
  metadata = O { name = "y1", creationTimestamp = null },
  type = "kubernetes.io/dockerconfigjson",
  data = O { [".dockerconfigjson"] =
    "eyJhdXRocyI6eyJnaGNyLmlvIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3JkIjoicCIsImF1dGgiOiJkVHB3In19fQ==" },
}, [[
apiVersion: v1
data:
  .dockerconfigjson: eyJhdXRocyI6eyJnaGNyLmlvIjp7InVzZXJuYW1lIjoidSIsInBhc3N3b3JkIjoicCIsImF1dGgiOiJkVHB3In19fQ==
kind: Secret
metadata:
  creationTimestamp: null
  name: y1
type: kubernetes.io/dockerconfigjson
]], "kubectl: a docker-registry Secret")

-- kubectl create configmap quoting --dry-run=client -o yaml --from-literal=... (each value below)
local quoting = {
  bool = "true", yes = "yes", off = "Off", int = "123", neg = "-7", hex = "0x1F", octal = "017",
  float = "1.5", exp = "1e3", inf = ".inf", date = "2024-01-02", time = "2024-01-02T03:04:05Z",
  sexagesimal = "1:20", null = "null", tilde = "~", empty = "", lead = " x", trail = "x ",
  colon = "a: b", hash = "a #b", comment = "#x", dash = "- a", star = "*x", quote = "it's",
  dquote = 'say "hi"', tab = "a\tb", multi = "line one\nline two\n", strip = "a\nb", keep = "a\n\n",
  leadnl = "\nx", ctl = "bell\a", utf8 = "héllo wörld", plain = "ghcr.io/acme/web:1.2.3",
  url = "https://example.com/a?b=c#d",
  long = "The quick brown fox jumps over the lazy dog, then the quick brown fox jumps over the " ..
    "lazy dog again and again.",
}
local quoting_yaml = [[
apiVersion: v1
data:
  bool: "true"
  colon: 'a: b'
  comment: '#x'
  ctl: "bell\a"
  dash: '- a'
  date: "2024-01-02"
  dquote: say "hi"
  empty: ""
  exp: "1e3"
  float: "1.5"
  hash: 'a #b'
  hex: "0x1F"
  inf: ".inf"
  int: "123"
  keep: |+
    a

  lead: ' x'
  leadnl: |2-

    x
  long: The quick brown fox jumps over the lazy dog, then the quick brown fox jumps
    over the lazy dog again and again.
  multi: |
    line one
    line two
  neg: "-7"
  "null": "null"
  octal: "017"
  "off": "Off"
  plain: ghcr.io/acme/web:1.2.3
  quote: it's
  sexagesimal: "1:20"
  star: '*x'
  strip: |-
    a
    b
  tab: "a\tb"
  tilde: "~"
  time: "2024-01-02T03:04:05Z"
  trail: 'x '
  url: https://example.com/a?b=c#d
  utf8: héllo wörld
  "yes": "yes"
kind: ConfigMap
metadata:
  creationTimestamp: null
  name: quoting
]]
encodes(O { apiVersion = "v1", kind = "ConfigMap", data = quoting,
            metadata = O { creationTimestamp = null, name = "quoting" } },
  quoting_yaml, "kubectl: strings quoted as go-yaml quotes them")
decodes(quoting_yaml, O { apiVersion = "v1", kind = "ConfigMap", data = O(quoting),
                          metadata = O { creationTimestamp = null, name = "quoting" } },
  "kubectl's output decodes to the same strings")

-- kubectl label --local --overwrite -f deployment.json foo=bar -o yaml
local deployment_json = [[
{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default",
"labels":{"app":"web","foo":"bar"},"annotations":{"deployment.kubernetes.io/revision":"1",
"description":"A web front end that serves the public site; it scales with traffic and keeps no state of its own.",
"note":"line one\nline two\n","empty":"","on":"yes"},"creationTimestamp":null},
"spec":{"replicas":3,"selector":{"matchLabels":{"app":"web"}},"strategy":{},"template":{"metadata":
{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"ghcr.io/acme/web:1.2.3",
"args":["--port","8080","--ratio","0.5"],"ports":[{"containerPort":8080,"protocol":"TCP"}],"resources":{},
"env":[{"name":"A","value":"true"},{"name":"B","value":"1e3"},{"name":"C","value":"a: b"}]}],
"imagePullSecrets":[{"name":"regcred"}],"volumes":[],"nodeSelector":{"a10":"x","a9":"y","A":"z","_x":"w","-y":"v"}}}},
"status":{"ratio":0.25,"big":1e21,"small":1e-7,"flag":false,"nothing":null,"neg":-42,"maxint":9223372036854775807}}
]]
local deployment_yaml = [[
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations:
    deployment.kubernetes.io/revision: "1"
    description: A web front end that serves the public site; it scales with traffic
      and keeps no state of its own.
    empty: ""
    note: |
      line one
      line two
    "on": "yes"
  creationTimestamp: null
  labels:
    app: web
    foo: bar
  name: web
  namespace: default
spec:
  replicas: 3
  selector:
    matchLabels:
      app: web
  strategy: {}
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - args:
        - --port
        - "8080"
        - --ratio
        - "0.5"
        env:
        - name: A
          value: "true"
        - name: B
          value: "1e3"
        - name: C
          value: 'a: b'
        image: ghcr.io/acme/web:1.2.3
        name: web
        ports:
        - containerPort: 8080
          protocol: TCP
        resources: {}
      imagePullSecrets:
      - name: regcred
      nodeSelector:
        -y: v
        _x: w
        A: z
        a9: "y"
        a10: x
      volumes: []
status:
  big: 1e+21
  flag: false
  maxint: 9223372036854775807
  neg: -42
  nothing: null
  ratio: 0.25
  small: 1e-07
]]
local deployment = assert(json.decode(deployment_json))
deployment.status.maxint = math.maxinteger -- json reads numbers past 2^53 as floats
encodes(deployment, deployment_yaml,
  "kubectl: nesting, sequences under keys, {} and [], numbers, go-yaml's key order, folding at 80")
decodes(deployment_yaml, deployment, "kubectl's output decodes to what json decodes")

-- kubectl label --local --overwrite -f serviceaccount.json foo=bar -o yaml
encodes(assert(json.decode([[
{"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"default","namespace":"apps",
"labels":{"foo":"bar"}},"imagePullSecrets":[{"name":"ghcr-pull"},{"name":"other"}],
"secrets":[{"name":"default-token-abcde"}]}]])), [[
apiVersion: v1
imagePullSecrets:
- name: ghcr-pull
- name: other
kind: ServiceAccount
metadata:
  labels:
    foo: bar
  name: default
  namespace: apps
secrets:
- name: default-token-abcde
]], "kubectl: a ServiceAccount with imagePullSecrets")

---------------------------------------------------------------- encode: values

local values = {
  { null, "null\n", "null" },
  { true, "true\n", "true" },
  { false, "false\n", "false" },
  { 42, "42\n", "an integer" },
  { math.mininteger, "-9223372036854775808\n", "the smallest integer" },
  { 1.5, "1.5\n", "a float" },
  { 2.0, "2.0\n", "an integral float stays a float" },
  { -0.0, "-0.0\n", "negative zero" },
  { 123456.5, "123456.5\n", "a float below 1e6" },
  { 1234567.5, "1.2345675e+06\n", "a float from 1e6 in exponent form, as Go" },
  { 1e21, "1e+21\n", "1e21" },
  { 0.0001, "0.0001\n", "1e-4 without exponent" },
  { 0.00001, "1e-05\n", "1e-5 in exponent form" },
  { 0.1, "0.1\n", "the shortest digits" },
  { 1 / 3, "0.3333333333333333\n", "all the digits needed" },
  { math.huge, ".inf\n", "infinity" },
  { -math.huge, "-.inf\n", "minus infinity" },
  { 0 / 0, ".nan\n", "NaN" },
  { "abc", "abc\n", "a string at the top" },
  { "", '""\n', "an empty string" },
  { O {}, "{}\n", "an empty object" },
  { A {}, "[]\n", "an empty array" },
  { {}, "{}\n", "an unmarked empty table is {}" },
  { { 1, 2 }, "- 1\n- 2\n", "an unmarked 1..n table is a sequence" },
  { { b = 1, a = 2 }, "a: 2\nb: 1\n", "an unmarked string-keyed table is a mapping" },
  { O { x = A { A { 1 }, O { y = A {} } } }, "x:\n- - 1\n- \"y\": []\n", "sequences in sequences" },
  { A { O { a = 1, b = O { c = 2 } } }, "- a: 1\n  b:\n    c: 2\n", "mappings in sequences" },
  { "\xff\xfe", "!!binary //4=\n", "bytes that are not UTF-8 become !!binary, as go-yaml does" },
  { O { k = string.rep("\xff", 60) }, "k: !!binary |\n  " .. string.rep("/", 70) .. "\n  " ..
      string.rep("/", 10) .. "\n", "long !!binary in lines of 70" },
  { "a\0b", '"a\\0b"\n', "a NUL is escaped" },
  { "x\u{2028}y", "'x\u{2028}  y'\n", "a line separator (a YAML 1.1 line break)" },
  { string.rep("k", 130), string.rep("k", 130) .. "\n", "a long plain string" },
  { O { [string.rep("k", 130)] = 1 }, "? " .. string.rep("k", 130) .. "\n: 1\n",
    "a key longer than 128 characters is an explicit key" },
  { O { ["a\nb"] = 1 }, "? |-\n  a\n  b\n: 1\n", "a key with a line break" },
  { O { ["a \nb"] = 1 }, '? "a \\nb"\n: 1\n', "a key with a space before a line break" },
  { O { ["<<"] = "<<" }, '"<<": <<\n', "a key << is quoted: plain it would be a merge key" },
}
for _, c in ipairs(values) do
  encodes(c[1], c[2], "encode: " .. c[3])
end

---------------------------------------------------------------- round trips

local function round_trips(x, name)
  local text = yaml.encode(x)
  local back, err = yaml.decode(text)
  t.ok(same(back, x), "round trip: " .. name, "yaml:\n" .. text .. "\nback: " .. t.show(back) ..
    " (" .. tostring(err) .. ")\nwant: " .. t.show(x))
end
round_trips(yaml.decode(kubeconfig), "the kubeconfig")
round_trips(deployment, "the deployment")
round_trips(O(quoting), "strings kubectl quotes")
round_trips(json.decode('{"a":[1,-2.5,1e300,5e-324,true,null,{},[]],"":"","ü":"\\u0000\\u001f\\u007f"}'),
  "json values")
-- A test name on one line, whatever the bytes.
local function printable(x)
  return (tostring(x):gsub("[^%w%p ]", function(c) return string.format("\\x%02x", c:byte()) end))
end
for _, x in ipairs { 0.1, -0.0, 2.0, 1e15, 1e16, 123456789.125, 2 ^ 53, 2 ^ 63, math.pi, 5e-324,
                     math.maxinteger, math.mininteger, "\xff\0\x80", "é\r\n", " \t" } do
  round_trips(x, math.type(x) and math.type(x) .. " " .. printable(x) or "string " .. printable(x))
end

-- Random strings over the characters that make quoting hard.
local pool = { "a", "Z", "0", "1", "9", " ", "  ", ":", ": ", "#", " #", "-", "- ", "?", "'", '"', "\\",
  "!", "&", "*", "|", ">", "%", "@", "`", ",", "[", "]", "{", "}", "~", ".", "_", "+", "e", "x",
  "\t", "\n", "\r", "\0", "\1", "é", "中", "😀", "\u{85}", "\u{a0}", "\u{2028}", "\u{feff}",
  "true", "null", "yes", "0x", "1e3", "2024-01-02", "1:20", "---", "...", "<<", "\xff" }
math.randomseed(7)
local failed = {}
for i = 1, 3000 do
  local parts = {}
  for j = 1, math.random(0, 8) do parts[j] = pool[math.random(#pool)] end
  local s = table.concat(parts)
  local text = yaml.encode(O { [s] = A { s } })
  local back = yaml.decode(text)
  if not (back and back[s] and back[s][1] == s) then failed[#failed + 1] = string.format("%q", s) end
  if i % 1000 == 0 then
    t.eq(failed, {}, "round trip: random strings as keys and values, batch " .. i // 1000)
    failed = {}
  end
end

---------------------------------------------------------------- misuse

t.raises("bad argument #1 to 'yaml.decode' (string expected, got no value)", "decode()", yaml.decode)
t.raises("bad argument #1 to 'yaml.decode' (string expected, got table)", "decode({})", yaml.decode, {})
t.raises("bad argument #1 to 'yaml.encode' (value expected)", "encode()", yaml.encode)
t.raises("yaml.encode: cannot encode a nil value", "encode(nil)", yaml.encode, nil)
t.raises("yaml.encode: cannot encode a function value", "encode a function", yaml.encode, { f = print })
t.raises("yaml.encode: cannot encode a thread value", "encode a coroutine", yaml.encode,
  A { coroutine.create(print) })
t.raises("yaml.encode: cannot encode a table with mixed keys", "mixed keys", yaml.encode, { 1, a = 2 })
t.raises("yaml.encode: cannot encode a sparse array", "a sparse array", yaml.encode, { [1] = 1, [3] = 3 })
t.raises("yaml.encode: cannot encode a table with boolean keys", "boolean keys", yaml.encode, { [true] = 1 })
t.raises("yaml.encode: cannot encode an array with keys other than 1..n", "an array with a string key",
  yaml.encode, A { 1, x = 2 })
t.raises("yaml.encode: cannot encode an object with non-string keys", "an object with an integer key",
  yaml.encode, O { 1 })
local cycle = {}
cycle.self = cycle
t.raises("yaml.encode: nesting too deep", "a cycle", yaml.encode, cycle)
local deep = {}
for _ = 1, 1000 do deep = { deep } end
t.raises("yaml.encode: nesting too deep", "1001 nested tables", yaml.encode, deep)
t.eq(yaml.encode(deep[1]), string.rep("- ", 999) .. "{}\n", "1000 nested tables encode")

return t.done()
