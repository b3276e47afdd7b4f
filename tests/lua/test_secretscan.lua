-- tests/lib/secretscan.py, the secret scan of tests/run: it finds a registered
-- secret in every form it looks for, and leaves alone what must carry one.
-- needs: none
local t = require "test"
local base64 = require "base64"
local json = require "json"
local proc = require "proc"

local here = arg[0]:match("^(.*)/[^/]*$") or "."
local scanner = here .. "/../lib/secretscan.py"
local dir = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/secretscan-test"
assert(proc.run { argv = { "rm", "-rf", dir } } == 0)
for _, sub in ipairs { "keys", "carried", "leaked", "query" } do
  assert(proc.run { argv = { "mkdir", "-p", dir .. "/" .. sub } } == 0)
end

-- "?>", ":", "@", " " and "+" make its base64url, URL and form forms differ from the others
local SECRET = "fake-scan-demo?>:p@ss w+rd"

local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(text)
  f:close()
  return name
end

local function url(s) return (s:gsub("[^%w%-._~]", function(c) return string.format("%%%02X", c:byte()) end)) end

-- Runs the scanner over the given files of dir -> status, output with dir/ cut.
local function scan(files, registry)
  local argv = { "python3", scanner, "--registry", dir .. "/" .. (registry or "registry.txt"), "--keys", dir .. "/keys" }
  for _, f in ipairs(files) do argv[#argv + 1] = dir .. "/" .. f end
  local status, out, err = proc.run { argv = argv, timeout = 60 }
  assert(status, out)
  return status, out:gsub(dir:gsub("%p", "%%%0") .. "/", "") .. err
end

write("registry.txt", "# a comment, then a blank line\n\ndemo-secret " .. SECRET .. "\n")

-- every form: raw, base64 behind 0, 1 and 2 bytes (a docker auth "user:password"
-- puts it anywhere), base64url, URL-encoded, form-encoded, Go's JSON escaping
local forms = {
  { "raw.txt", "line 1\nline 2 " .. SECRET .. " and more\n", "demo-secret (raw)", 2 },
  { "b64-0.txt", base64.encode(SECRET), "demo-secret (base64/0)" },
  { "b64-1.txt", base64.encode(":" .. SECRET), "demo-secret (base64/1)" },
  { "b64-2.txt", base64.encode("u:" .. SECRET), "demo-secret (base64/2)" },
  { "b64-auth.txt", '{"auth":"' .. base64.encode("xcsreg-bot:" .. SECRET) .. '"}', "demo-secret (base64/2)" },
  { "b64url.txt", base64.encode(SECRET, { url = true }), "demo-secret (base64url/0)" },
  { "url.txt", "GET /token?password=" .. url(SECRET) .. " HTTP/1.1\n", "demo-secret (url)" },
  { "form.txt", "password=" .. url(SECRET):gsub("%%20", "+"), "demo-secret (form)" },
  { "json.txt", json.encode { p = SECRET .. "<" }, "demo-secret (json)" },
}
for _, c in ipairs(forms) do
  write(c[1], c[2])
  local status, out = scan { c[1] }
  t.eq({ status, out }, { 1, string.format("FOUND %s:%d %s\n# secret scan: 1 secrets x 1 files, 1 found\n",
    c[1], c[4] or 1, c[3]) }, "found in " .. c[1])
end

write("clean.txt", "nothing to see: fake-scan-demo, p@ss, " .. base64.encode("fake-scan-dem") .. "\n")
t.eq({ scan { "clean.txt" } }, { 0, "# secret scan: 1 secrets x 1 files, 0 found\n" },
  "parts of a secret are not the secret")

-- The simulator's request log: only the bodies of Secret writes may carry it.
local function entry(method, path, body, query)
  return json.encode { conn = 1, method = method, path = path, query = query or {}, content_type = "application/json",
    user = "admin", status = 201, body = body } .. "\n"
end
local dockerconfig = base64.encode(json.encode { auths = { ["r.example"] = { password = SECRET,
  auth = base64.encode("u:" .. SECRET) } } })
local secret_body = json.encode { data = { [".dockerconfigjson"] = dockerconfig } }
write("carried/apisim-requests.jsonl", entry("GET", "/api/v1/namespaces/ns/secrets/s", "")
  .. entry("POST", "/api/v1/namespaces/ns/secrets", secret_body)
  .. entry("PUT", "/api/v1/namespaces/ns/secrets/s", secret_body)
  .. entry("PATCH", "/api/v1/namespaces/ns/secrets/s", json.encode { stringData = { password = SECRET } }))
t.eq({ scan { "carried/apisim-requests.jsonl" } }, { 0, "# secret scan: 1 secrets x 1 files, 0 found\n" },
  "Secret create, replace and patch bodies may carry it")
write("leaked/apisim-requests.jsonl", entry("POST", "/api/v1/namespaces/ns/secrets", secret_body)
  .. entry("PATCH", "/api/v1/namespaces/ns/serviceaccounts/default", secret_body))
t.eq({ scan { "leaked/apisim-requests.jsonl" } },
  { 1, "FOUND leaked/apisim-requests.jsonl:2 demo-secret (base64/1-json)\n# secret scan: 1 secrets x 1 files, 1 found\n" },
  "a ServiceAccount patch body may not")
write("query/apisim-requests.jsonl", entry("POST", "/api/v1/namespaces/ns/secrets", "{}", { token = { SECRET } })
  .. entry("POST", "/api/v1/namespaces/ns/secrets/s/x", secret_body))
t.eq({ scan { "query/apisim-requests.jsonl" } },
  { 1, "FOUND query/apisim-requests.jsonl:1 demo-secret (raw)\n# secret scan: 1 secrets x 1 files, 1 found\n" },
  "nor a Secret write's query, nor a body sent to another path")

-- what --dry-run=client -o json prints is left out, and counted
write("run.secret-output", secret_body)
t.eq({ scan { "run.secret-output", "clean.txt" } },
  { 0, "# secret scan: 1 secrets x 1 files, 0 found (1 files of --dry-run=client -o output excluded)\n" },
  "a --dry-run=client -o output is excluded")

-- Private keys found under --keys: the PEM lines holding private bytes, as
-- they are or base64'd (a kubeconfig's client-key-data); the public key is no secret.
assert(proc.run { argv = { "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
  "-nodes", "-keyout", dir .. "/keys/demo.key", "-out", dir .. "/keys/demo.crt", "-days", "1", "-subj", "/CN=scan" } } == 0)
local key = assert(io.open(dir .. "/keys/demo.key")):read("a")
local cert = assert(io.open(dir .. "/keys/demo.crt")):read("a")
write("pem.txt", "error: cannot parse\n" .. key)
write("key-data.txt", "client-key-data: " .. base64.encode(key) .. "\n")
write("cert.txt", cert .. base64.encode(cert))
t.eq({ scan { "pem.txt", "key-data.txt", "cert.txt" } }, { 1, "FOUND pem.txt:3 private-key:demo.key (raw)\n"
  .. "FOUND key-data.txt:1 private-key:demo.key (base64/1)\n# secret scan: 2 secrets x 3 files, 2 found\n" },
  "a private key, in PEM or base64'd, but not its certificate")

write("bad-registry.txt", "no-value\n")
t.eq({ scan({ "clean.txt" }, "bad-registry.txt") }, { 2, "secretscan: " .. dir .. "/bad-registry.txt:1: want NAME VALUE\n" },
  "a registry line without a value is refused")

return t.done()
