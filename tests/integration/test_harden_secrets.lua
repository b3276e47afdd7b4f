-- needs: hostile
-- Secrets in messages (issue 12): redacted before any cut (item 7), short
-- ones only as whole words, with a warning (item 8), URL passwords masked
-- (item 9).
local t = require "test"
local k8s = require "k8s"
local log = require "log"
local proc = require "proc"

local XCSREG = os.getenv("XCSREG") or "./xcsreg"
local TMP = (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/harden-secrets"
assert(os.execute("rm -rf '" .. TMP .. "' && mkdir -p '" .. TMP .. "'"))
local function write(name, text)
  local path = TMP .. "/" .. name
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end
local function kubeconfig(name, server)
  return write(name, "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
    .. "clusters: [{name: k, cluster: {server: '" .. server .. "'}}]\n"
    .. "contexts: [{name: c, context: {cluster: k, user: u}}]\nusers: [{name: u, user: {}}]\n")
end
-- whether any 12 bytes of secret appear in s
local function has_part(s, secret)
  for i = 1, #secret - 11 do
    if s:find(secret:sub(i, i + 11), 1, true) then return true end
  end
  return false
end
local function run(script, env)
  return proc.run { argv = { XCSREG, "run", write("script.lua", script) }, env = env, timeout = 30 }
end

-- ---- item 7: redact, then cut ----
-- a bearer token of 160 characters that an error page echoes in its title,
-- after 50 bytes of text: cut to 200 bytes first, 150 of it were shown
local token = t.secret(("fake-long-bearer-token-"):rep(7):sub(1, 160), "harden-long-token")
log.secret(token)
local c = assert(k8s.client { kubeconfig = kubeconfig("hostile-http.yaml", os.getenv("XCSREG_HOSTILE_HTTP")) })
local obj, err = c:get("/api/v1/namespaces/x/secrets/htmlpage", { title = ("x"):rep(50) .. token })
local msg = tostring(err)
t.ok(not obj and msg:find(("x"):rep(50) .. "***", 1, true) and not has_part(msg, token),
  "k8s: an HTML title echoing a long token past the cut: the token is redacted whole, no part of it shown", msg)
t.eq(log.redact(("y"):rep(190) .. token .. ("w"):rep(20), 200), ("y"):rep(190) .. "***" .. ("w"):rep(7) .. "...",
  "log.redact(s, max): redacts, then cuts to max bytes (a cut token is no longer a match)")
t.eq(log.redact("é" .. ("z"):rep(10), 1), "...", "log.redact(s, max): never cuts a UTF-8 character")
-- a credential helper's error, cut at 200 bytes in a message
local helper_dir = TMP .. "/bin"
assert(os.execute("mkdir -p '" .. helper_dir .. "'"))
local helper = write("bin/docker-credential-echo-token",
  "#!/bin/sh\nprintf '%s' '" .. ("h"):rep(100) .. "' \"$TOKEN\" >&2\nexit 1\n")
assert(os.execute("chmod 755 '" .. helper .. "'"))
local status, out, serr = run([[
local log = require "log"
log.secret(os.getenv("TOKEN"))
local sources = require "xcsreg.sources"
local cred, err = sources.get { server = "r.example", credential_helper = "echo-token" }
print(err)
]], { TOKEN = token, PATH = helper_dir .. ":" .. os.getenv("PATH") })
t.ok(status == 0 and out:find(("h"):rep(100) .. "***", 1, true) and not has_part(out, token),
  "credential helper: its message, cut to 200 bytes, has the token redacted whole", out .. serr)

-- ---- item 8: short secrets ----
status, out, serr = run([[
local log = require "log"
log.secret("p")
log.warn("expand the p option: p, (p) and p.")
print(log.redact("an ex-p-ression"), log.redact("p"), log.redact("app"))
]])
t.eq({ status, out, serr }, { 0, "an ex-***-ression\t***\tapp\n", "warning: expand the *** option: ***, (***) and ***.\n" },
  "a one-byte secret is redacted as a whole word only: ordinary words are left alone")
status, out, serr = proc.run { argv = { XCSREG, "run", "setup.lua", "--secret-name", "s", "--docker-server", "r.example",
  "--docker-username", "u", "--docker-password-env", "PW", "-n", "ns", "--dry-run=client" }, env = { PW = "p" } }
t.eq({ status, serr }, { 0, "warning: environment variable PW: the password is weak (1 bytes; fewer than 8 are hidden "
  .. "in messages only as a whole word): use a longer one\n" }, "a password shorter than 8 bytes: a warning that it is weak")
status, out, serr = proc.run { argv = { XCSREG, "run", "setup.lua", "--secret-name", "s", "--docker-server", "r.example",
  "--docker-username", "u", "--docker-password-env", "PW", "-n", "ns", "--dry-run=client" },
  env = { PW = "fake-password-0" } }
t.eq({ status, serr }, { 0, "" }, "a longer password: no warning")

-- ---- item 9: passwords in URLs ----
local url_password = t.secret("fake-url-password-9", "harden-url-password")
c = assert(k8s.client { kubeconfig = kubeconfig("userinfo.yaml", "http://admin:" .. url_password .. "@127.0.0.1:1") })
obj, err = c:get("/api/v1/namespaces")
msg = tostring(err)
t.ok(not obj and msg:find("http://***@127.0.0.1:1", 1, true) and not msg:find(url_password, 1, true),
  "k8s: a server URL's userinfo is masked in its errors", msg)
t.eq(log.redact("GET https://bob:pw@example.org/v2/ and http://tok@h:5 or git@github.com:x and mailto:a@b"),
  "GET https://***@example.org/v2/ and http://***@h:5 or git@github.com:x and mailto:a@b",
  "log.redact masks the userinfo of every URL, and nothing else")
status, out, serr = run([[
local log = require "log"
log.warn("cannot verify the credential of user u for https://u:]] .. url_password .. [[@registry.example/v2/")
error("at https://u:]] .. url_password .. [[@registry.example")
]])
t.ok(status == 1 and serr:find("^warning: cannot verify the credential of user u for https://%*%*%*@registry%.example/v2/\n")
  and serr:find("xcsreg: [^\n]*at https://%*%*%*@registry%.example") and not serr:find(url_password, 1, true),
  "log lines and the host's last-resort error mask URL passwords", serr)

return t.done()
