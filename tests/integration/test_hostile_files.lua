-- needs: none
-- Hostile site files, password files and kubeconfigs: missing, wrong types
-- at every level, huge values, non-UTF-8, endless, readable by other
-- users. Each must end in a clear error naming the place (file, entry,
-- field) and, for setup.lua, exit status 2; none may crash. What is not
-- done yet is a "# GAP:" line, after asserting that at least nothing
-- crashes.
local t = require "test"
local k8s = require "k8s"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG") or "./xcsreg"
local TMP = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/hostile-files"
assert(os.execute("rm -rf '" .. TMP .. "' && mkdir -p '" .. TMP .. "/dir'"))
local MiB = 1024 * 1024

local function write(name, text, mode)
  local path = TMP .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  assert(os.execute(("chmod %s '%s'"):format(mode or "600", path)))
  return path
end

-- `xcsreg run setup.lua ARGS` -> status, stdout, stderr (nil, message if it ran too long)
local function setup(args, timeout)
  local argv = { XCSREG, "run", "setup.lua" }
  table.move(args, 1, #args, #argv + 1, argv)
  return proc.run { argv = argv, env = { FAKE_PASSWORD = "fake-password-0", HOME = TMP }, timeout = timeout or 60,
                    max_output = 64 * 1024 * 1024 }
end

-- A site file through setup.lua --dry-run=client (no cluster needed).
local function site(name, text, timeout)
  local path = write(name .. ".lua", text)
  local status, out, err = setup({ "--config", path, "--dry-run=client" }, timeout)
  return path, status, out, err
end

local function entry(fields)
  local e = { 'secret = "s"', 'server = "r.example"', 'username = "u"' }
  for _, f in ipairs(fields or { 'password_env = "FAKE_PASSWORD"' }) do e[#e + 1] = f end
  return "return { registries = { { " .. table.concat(e, ", ") .. " } } }\n"
end

-- ---- site files: each error names the file and the field, exit 2 ----
local path, status, out, err = site("good", entry())
t.eq({ status, out }, { 0, "secret/s created (dry run)\nserviceaccount/default configured (dry run)\n" },
  "a good site file: the baseline")

status, out, err = setup { "--config", TMP .. "/missing.lua", "--dry-run=client" }
t.eq({ status, err }, { 2, "error: cannot read site file " .. TMP .. "/missing.lua: No such file or directory\n" },
  "site file: missing")
status, out, err = setup { "--config", TMP .. "/dir", "--dry-run=client" }
t.eq({ status, err and err:match("^[^\n]*") }, { 2, "error: cannot read " .. TMP .. "/dir: Is a directory" },
  "site file: a directory")

local cases = {
  { "syntax", "return {", ":1: unexpected symbol near <eof>" },
  { "not-table", 'return "x"', ": must return a table, not string" },
  { "unknown-top", "return { registry = {} }",
    ': unknown key "registry" (known: all_namespaces, exclude_namespaces, namespace_selector, namespaces, registries, service_accounts)' },
  { "ns-string", 'return { namespaces = "x", registries = {} }', ": namespaces: must be a non-empty list of names" },
  { "ns-number", "return { namespaces = { 1 }, registries = {} }", ": namespaces[1]: must be a string, not number" },
  { "ns-invalid", 'return { namespaces = { "Team_A" }, registries = {} }',
    ': namespaces[1]: "Team_A" is not a valid namespace name' },
  { "sa-table", "return { service_accounts = { {} }, registries = {} }",
    ": service_accounts[1]: must be a string, not table" },
  { "no-registries", "return { registries = {} }", ": registries: must be a non-empty list of entries" },
  { "entry-string", 'return { registries = { "ghcr.io" } }', ": registries[1]: must be a table, not string" },
  { "server-number", entry { "server2 = 1" }, ': registries[1] (secret "s"): unknown key "server2"' },
  { "server-type", 'return { registries = { { secret = "s", server = 5, username = "u", password_env = "X" } } }',
    ': registries[1] (secret "s"): server: must be a string, not number' },
  { "user-colon", 'return { registries = { { secret = "s", server = "r", username = "a:b", password_env = "X" } } }',
    ': registries[1] (secret "s"): username: must not contain' },
  { "command-string", entry { 'password_command = "pass show x"' },
    ': registries[1] (secret "s"): password_command: must be a list of strings' },
  { "command-mixed", entry { 'password_command = { "pass", 1 }' },
    ': registries[1] (secret "s"): password_command: must be a list of strings' },
  { "password-in-file", entry { 'password = "fake-in-file"' },
    ': registries[1] (secret "s"): unknown key "password"' },
  { "two-passwords", entry { 'password_env = "A"', 'password_file = "/x"' },
    ': registries[1] (secret "s"): password_env and password_file both given' },
  { "password-file-missing", entry { 'password_file = "' .. TMP .. '/nope"' },
    ': registries[1] (secret "s"): password_file: cannot read ' .. TMP .. "/nope: No such file or directory" },
  { "password-env-unset", entry { 'password_env = "XCSREG_TEST_UNSET_VARIABLE"' },
    ': registries[1] (secret "s"): password_env: environment variable XCSREG_TEST_UNSET_VARIABLE is not set' },
  { "secret-non-utf8", 'return { registries = { { secret = "\\255\\254", server = "r", username = "u", '
    .. 'password_env = "FAKE_PASSWORD" } } }', ': registries[1] (secret "\255\254"): secret: ' },
}
for _, c in ipairs(cases) do
  path, status, out, err = site(c[1], c[2])
  local first = err and err:match("^[^\n]*") or tostring(out)
  t.ok(status == 2 and first:find("error: " .. path .. c[3], 1, true) == 1,
    "site file " .. c[1] .. ": exit 2, the place and the problem", first)
end

-- a site file that raises something that is not a string, or a string without a place
path, status, out, err = site("raise-table", "error({})")
t.eq(status, 2, "site file raising a table: exit 2")
if err:find(path, 1, true) then
  t.ok(true, "site file raising a table: the message names the file")
else
  print("# GAP: a site file raising a non-string (error({})) gives '" .. err:match("^[^\n]*")
    .. "', which does not name the file")
end
path, status, out, err = site("raise-plain", "error('no place', 0)")
t.eq(status, 2, "site file raising a message without a place: exit 2")
if not err:find(path, 1, true) then
  print("# GAP: a site file raising error('no place', 0) gives '" .. err:match("^[^\n]*")
    .. "', which does not name the file")
end

-- huge: a 10 MB Secret name is refused, but the message quotes it whole
path, status, out, err = site("huge-name", 'return { registries = { { secret = string.rep("a", 10 * 1024 * 1024), '
  .. 'server = "r", username = "u", password_env = "FAKE_PASSWORD" } } }')
t.ok(status == 2 and err:find("error: " .. path .. ": registries[1] (secret \"aaaa", 1, true) == 1,
  "site file, 10 MB secret name: exit 2, the place", err:sub(1, 200))
if #err > 4096 then
  print(("# GAP: a 10 MB secret name is quoted whole in the error (%d bytes of message, twice the name); "
    .. "quote a prefix"):format(#err))
end

-- endless: a site file runs without a time limit
path, status, out = site("endless", "while true do end", 3)
t.eq({ status, out }, { nil, "command timed out after 3s: " .. XCSREG }, "site file with an endless loop: no crash")
if status == nil then
  print("# GAP: a site file with an endless loop hangs setup.lua (no instruction or time limit on the sandbox)")
end

-- ---- password files ----
local pw = write("pw-open", "fake-password-1\n", "644")
path, status, out, err = site("pw-open", entry { 'password_file = "' .. pw .. '"' })
t.eq(status, 0, "password file readable by others: still used")
if err:find(pw, 1, true) and err:find("chmod 600", 1, true) then
  t.ok(true, "password file readable by others: a warning names it and says chmod 600")
else
  print("# GAP: no warning for password file " .. pw .. " readable by other users (mode 0644); "
    .. "ssh refuses such keys: warn, suggest chmod 600")
end
local closed = write("pw-closed", "fake-password-2\n", "600")
path, status, out, err = site("pw-closed", entry { 'password_file = "' .. closed .. '"' })
t.eq({ status, err }, { 0, "" }, "password file of mode 0600: no warning")

local big = write("pw-big", string.rep("p", 10 * MiB))
path, status, out, err = site("pw-big", entry { 'password_file = "' .. big .. '"' })
if status == 2 then
  t.ok(err:find(big, 1, true), "10 MB password file: refused, the file named", err)
else
  t.eq(status, 0, "10 MB password file: no crash")
  print("# GAP: a 10 MB password file is accepted (a Secret holds at most 1 MiB: the API server will refuse it "
    .. "late); refuse it naming the file")
end

-- ---- kubeconfigs: k8s.client gives nil, err naming the file, entry and field ----
local function kubeconfig(name, text, mode)
  return write(name .. ".kubeconfig", text, mode)
end
local function client_fails(name, text, want)
  local kc = kubeconfig(name, text)
  local ok, c, cerr = pcall(k8s.client, { kubeconfig = kc })
  local msg = ok and cerr and tostring(cerr) or tostring(c)
  t.ok(ok and c == nil and msg:find((want:gsub("FILE", kc)), 1, true) == 1,
    "kubeconfig " .. name .. ": nil, err with the place", msg:sub(1, 300))
end
local function doc(cluster, user, extra)
  return "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    .. "clusters: [{name: k, cluster: " .. (cluster or "{server: 'https://127.0.0.1:1'}") .. "}]\n"
    .. "users: [{name: u, user: " .. (user or "{token: fake-token}") .. "}]\n"
    .. "contexts: [{name: c, context: {cluster: k, user: u}}]\n" .. (extra or "")
end

local c, cerr = k8s.client { kubeconfig = TMP .. "/nope.kubeconfig" }
t.eq({ c, tostring(cerr) }, { nil, "kubeconfig " .. TMP .. "/nope.kubeconfig: No such file or directory" },
  "kubeconfig: missing")
c, cerr = k8s.client { kubeconfig = TMP .. "/dir" }
t.eq({ c, tostring(cerr) }, { nil, "kubeconfig " .. TMP .. "/dir: Is a directory" }, "kubeconfig: a directory")

client_fails("not-yaml", "a: b: c\n", "kubeconfig FILE: line 1, column 5: mapping values are not allowed")
client_fails("scalar", "just text\n", "kubeconfig FILE: not a kubeconfig (a YAML mapping was expected)")
client_fails("clusters-string", "clusters: x\n", "FILE: clusters must be a list")
client_fails("clusters-item", "clusters: [x]\n", "FILE: clusters[0] must be a mapping")
client_fails("clusters-noname", "clusters: [{cluster: {}}]\n", "FILE: clusters[0] has no name")
client_fails("cluster-string", "clusters: [{name: k, cluster: x}]\n", 'FILE: cluster "k": cluster must be a mapping')
client_fails("server-int", doc("{server: 5}"), 'FILE: cluster "k": server must be a string')
client_fails("server-scheme", doc("{server: 'ftp://x'}"), 'FILE: cluster "k": server ftp://x is not an https:// or http:// URL')
client_fails("insecure-word", doc("{server: 'https://a', insecure-skip-tls-verify: maybe}"),
  'FILE: cluster "k": insecure-skip-tls-verify must be true or false')
client_fails("ca-base64", doc("{server: 'https://a', certificate-authority-data: '!!!'}"),
  'FILE: cluster "k": certificate-authority-data is not valid base64 (at byte 0)')
client_fails("ca-missing", doc("{server: 'https://a', certificate-authority: nope.crt}"),
  "certificate-authority " .. TMP .. "/nope.crt: No such file or directory")
client_fails("token-list", doc(nil, "{token: [1]}"), 'FILE: user "u": token must be a string')
client_fails("exec-string", doc(nil, "{exec: run-me}"), 'FILE: user "u": exec must be a mapping')
client_fails("context-list", "current-context: [a]\n", "kubeconfig FILE: current-context must be a string")
client_fails("non-utf8", "current-context: \255\254\n", "kubeconfig FILE: line 1, column 18: invalid leading UTF-8 octet")
client_fails("huge-file", "current-context: c\n" .. string.rep("#", 17 * MiB), "kubeconfig FILE: File too large")
client_fails("huge-server", doc("{server: " .. string.rep("x", 10 * MiB) .. "}"), 'FILE: cluster "k": server xxxx')

-- a YAML sequence is not a kubeconfig either
local seq = kubeconfig("sequence", "- clusters: []\n")
c, cerr = k8s.client { kubeconfig = seq }
t.eq(c, nil, "kubeconfig that is a YAML sequence: nil, err")
if not tostring(cerr):find("not a kubeconfig", 1, true) then
  print("# GAP: a kubeconfig that is a YAML sequence reads as an empty one ('" .. tostring(cerr)
    .. "'), not 'not a kubeconfig (a YAML mapping was expected)'")
end

-- an exec extension JSON cannot hold: must be nil, err, not a raise
local ext = kubeconfig("exec-inf", doc("{server: 'https://a', extensions: [{name: client.authentication.k8s.io/exec, "
  .. "extension: {n: .inf}}]}", "{exec: {apiVersion: client.authentication.k8s.io/v1, command: x, "
  .. "interactiveMode: Never, provideClusterInfo: true}}"))
local ok
ok, c, cerr = pcall(k8s.client, { kubeconfig = ext })
if ok then
  t.ok(c == nil and tostring(cerr):find(ext .. ': cluster "k"', 1, true) == 1,
    "exec extension with .inf: nil, err naming the cluster", tostring(cerr))
else
  t.ok(tostring(c):find("json.encode: cannot encode inf", 1, true), "exec extension with .inf: no crash", tostring(c))
  print("# GAP: k8s.client raises (" .. tostring(c) .. ") for an exec extension JSON cannot hold, "
    .. "instead of returning nil, err naming the cluster")
end

-- a huge token is taken as it is (it only has to fit the 16 MiB file cap)
c = k8s.client { kubeconfig = kubeconfig("huge-token", doc(nil, "{token: " .. string.rep("t", 10 * MiB) .. "}")) }
t.ok(c ~= nil, "kubeconfig with a 10 MB token: no crash")

-- setup.lua with a bad kubeconfig: exit 2, the message
status, out, err = setup { "--kubeconfig", TMP .. "/scalar.kubeconfig", "--config", TMP .. "/good.lua",
  "--lock", "none", "--no-verify" }
t.eq({ status, err and err:match("^[^\n]*") },
  { 2, "error: kubeconfig " .. TMP .. "/scalar.kubeconfig: not a kubeconfig (a YAML mapping was expected)" },
  "setup.lua with a bad kubeconfig: exit 2 and the message")

-- a kubeconfig holding a token, readable by other users
local open = kubeconfig("open", doc(), "644")
local probe = write("open-probe.lua", ("local c, err = require('k8s').client { kubeconfig = %q }\n"
  .. "print(c and 'client' or tostring(err))\n"):format(open))
status, out, err = proc.run { argv = { XCSREG, "run", probe }, timeout = 30 }
t.eq({ status, out }, { 0, "client\n" }, "kubeconfig readable by others: still used")
if err:find(open, 1, true) and err:find("chmod 600", 1, true) then
  t.ok(true, "kubeconfig readable by others: a warning names it and says chmod 600")
else
  print("# GAP: no warning for kubeconfig " .. open .. " holding a token and readable by other users "
    .. "(mode 0644); warn, suggest chmod 600")
end
local private = kubeconfig("private", doc(), "600")
probe = write("private-probe.lua", ("require('k8s').client { kubeconfig = %q }\n"):format(private))
status, out, err = proc.run { argv = { XCSREG, "run", probe }, timeout = 30 }
t.eq({ status, err }, { 0, "" }, "kubeconfig of mode 0600: no warning")

return t.done()
