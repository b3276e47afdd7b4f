-- .dockerconfigjson bytes and `setup.lua --dry-run=client -o json|yaml`, with kubectl as the oracle.
-- needs: none
-- kubectl runs with KUBECONFIG=/nonexistent (client dry run needs no cluster); the
-- test passwords are fake and travel in kubectl's argv here only, never in xcsreg's.
local t = require "test"
local base64 = require "base64"
local dockerconfig = require "xcsreg.dockerconfigjson"
local json = require "json"
local proc = require "proc"
local yaml = require "yaml"

local xcsreg = os.getenv("XCSREG") or "./xcsreg"
local tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"

local function kubectl(name, r, ns, format)
  local argv = { "kubectl", "create", "secret", "docker-registry", name,
    "--docker-username=" .. r.username, "--docker-password=" .. r.password,
    "--dry-run=client", "-o", format or "json" }
  if r.server then argv[#argv + 1] = "--docker-server=" .. r.server end
  if r.email then argv[#argv + 1] = "--docker-email=" .. r.email end
  if ns then argv[#argv + 1] = "--namespace=" .. ns end
  local status, out, err = proc.run { argv = argv, env = { KUBECONFIG = "/nonexistent" }, timeout = 30 }
  assert(status == 0, "kubectl failed: " .. tostring(err or out))
  return out
end

-- The decoded .dockerconfigjson that kubectl writes.
local function kubectl_bytes(r)
  return base64.decode(json.decode(kubectl("x", r)).data[".dockerconfigjson"])
end

local cases = {
  { label = "plain, with email", server = "registry.example.com", username = "alice", password = "fake-pw-1", email = "alice@example.com" },
  { label = "default server, no email", username = "bob", password = "fake:pw:with:colons" },
  { label = "unicode everywhere", server = "https://régistry.example:5000/v2/", username = "用户",
    password = "fäke-pässwörd€🔑", email = "ü@ex.com" },
  { label = "HTML characters", server = "ghcr.io", username = "u<&>", password = "<&>fake" },
  { label = "quote and backslash", server = "gh\"cr\\io", username = 'u"q\\b', password = 'fake"\\pw', email = 'e"\\@x' },
  { label = "control characters, DEL, U+2028", server = "r.io", username = "u",
    password = "fake\1b\8c\12d\te\127f\u{2028}g/h\n" },
  { label = "Harbor robot account", server = "harbor.example.org", username = "robot$xnat", password = "fake-robot-token" },
}

for _, c in ipairs(cases) do
  local want = kubectl_bytes(c)
  local got = dockerconfig.encode { { server = c.server or "https://index.docker.io/v1/", username = c.username,
    password = c.password, email = c.email } }
  t.ok(got == want, "same bytes as kubectl: " .. c.label)
end

-- Several registries in one Secret: kubectl's entry for each, keys in byte order as Go sorts a map.
local several = {
  { server = "b.io", username = "u1", password = "fake-1" },
  { server = "a.io", username = "u2", password = "fake-2", email = "x@y" },
  { server = "A.io", username = "u3", password = "fake-3" },
  { server = "a.io/", username = "u4", password = "fake-4" },
}
local entries = {}
for _, r in ipairs(several) do
  entries[r.server] = kubectl_bytes(r):match('^{"auths":{(.*)}}$')
end
t.ok(dockerconfig.encode(several) == '{"auths":{' .. entries["A.io"] .. "," .. entries["a.io"] .. ","
  .. entries["a.io/"] .. "," .. entries["b.io"] .. "}}", "several registries: kubectl's entries, keys in byte order")
t.eq(dockerconfig.auth("用户", "p:w"), "55So5oi3OnA6dw==", "auth is padded base64 of user:password")

-- ---- setup.lua --dry-run=client: no cluster contact, kubectl's objects plus the label ----
local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local site = write(tmp .. "/dryrun-site.lua", [[
return {
  registries = {
    { secret = "plain", server = "registry.example.com", username = "alice", password_env = "XCSREG_T_PW1",
      email = "alice@example.com" },
    { secret = "uni", server = "https://régistry.example:5000/v2/", username = "用户", password_env = "XCSREG_T_PW2",
      email = "ü@ex.com" },
    { secret = "html", server = "ghcr.io", username = 'u"q\\b', password_env = "XCSREG_T_PW3" },
  },
}]])
local env = { KUBECONFIG = "/nonexistent", HOME = "/nonexistent", XCSREG_T_PW1 = cases[1].password,
  XCSREG_T_PW2 = cases[3].password, XCSREG_T_PW3 = "<&>fake-pw" }
local expected_regs = {
  { name = "plain", r = cases[1] },
  { name = "uni", r = cases[3] },
  { name = "html", r = { server = "ghcr.io", username = 'u"q\\b', password = "<&>fake-pw" } },
}

local function run_setup(...)
  return proc.run { argv = { xcsreg, "run", "setup.lua", ... }, env = env, timeout = 30 }
end

local function without_labels(obj)
  t.eq(obj.metadata.labels, { ["app.kubernetes.io/managed-by"] = "xcsreg" }, obj.metadata.name .. ": the managed-by label")
  obj.metadata.labels = nil
  return obj
end

local status, out, err = run_setup("--config", site, "--dry-run=client", "-o", "json", "-n", "ns-a", "-n", "ns-b")
t.eq({ status, err }, { 0, "" }, "client dry run with no kubeconfig at all: exit 0, nothing on stderr")
local list = json.decode(out)
t.eq({ list.apiVersion, list.kind, #list.items }, { "v1", "List", 6 }, "a v1 List of 3 Secrets x 2 namespaces")
local i = 0
for _, ns in ipairs { "ns-a", "ns-b" } do
  for _, e in ipairs(expected_regs) do
    i = i + 1
    local want = json.decode(kubectl(e.name, e.r, ns))
    t.ok(t.deep_equal(without_labels(list.items[i]), want), string.format("item %d (%s/%s) equals kubectl's", i, ns, e.name))
  end
end
t.eq(out, json.encode(json.decode(out), { indent = 4 }) .. "\n", "printed like kubectl -o json: 4-space indent, newline")

status, out = run_setup("--config", site, "--dry-run=client", "-o", "yaml")
t.eq(status, 0, "-o yaml without a namespace: exit 0")
list = yaml.decode(out)
t.eq(#list.items, 3, "-o yaml: one item per Secret")
for n, e in ipairs(expected_regs) do
  local want = yaml.decode(kubectl(e.name, e.r, nil, "yaml"))
  t.ok(t.deep_equal(without_labels(list.items[n]), want), e.name .. ": -o yaml item equals kubectl's, no namespace")
end

-- one registry from flags, the password on stdin
status, out = proc.run { argv = { xcsreg, "run", "setup.lua", "--secret-name", "reg", "--docker-username", "bob",
  "--docker-password-stdin", "--dry-run=client", "-o", "json", "-n", "team-a" },
  stdin = cases[2].password .. "\n", env = env, timeout = 30 }
list = json.decode(out)
t.ok(status == 0 and t.deep_equal(without_labels(list.items[1]), json.decode(kubectl("reg", cases[2], "team-a"))),
  "flags and --docker-password-stdin (trailing newline dropped): kubectl's object")

status, out, err = run_setup("--config", site, "--dry-run=client", "-n", "a", "-n", "b")
t.eq({ status, out, err }, { 0, table.concat({
  "a: secret/plain created (dry run)", "a: secret/uni created (dry run)", "a: secret/html created (dry run)",
  "a: serviceaccount/default configured (dry run)",
  "b: secret/plain created (dry run)", "b: secret/uni created (dry run)", "b: secret/html created (dry run)",
  "b: serviceaccount/default configured (dry run)", "" }, "\n"), "" }, "client dry run without -o: kubectl's lines")

return t.done()
