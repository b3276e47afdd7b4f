-- needs: none
-- registry.parse_challenge (WWW-Authenticate) and registry.base_url (which
-- registry a docker config key names), table-driven, plus verify's misuse.
local t = require "test"
local registry = require "xcsreg.registry"

local function bearer(params) return {scheme = "bearer", params = params} end

local challenges = {
  {"Basic", 'Basic realm="Registry Realm"', {{scheme = "basic", params = {realm = "Registry Realm"}}}},
  {"bare scheme", "Basic", {{scheme = "basic", params = {}}}},
  {"Docker Hub's Bearer",
   'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
   {bearer{realm = "https://auth.docker.io/token", service = "registry.docker.io"}}},
  {"scope with commas and colons inside quotes",
   'Bearer realm="https://a.example/token",service="a.example",scope="repository:team/app:pull,push"',
   {bearer{realm = "https://a.example/token", service = "a.example", scope = "repository:team/app:pull,push"}}},
  {"escaped quote and backslash", [[Basic realm="say \"hi\" \\ \x"]], {{scheme = "basic", params = {realm = [[say "hi" \ x]]}}}},
  {"case-insensitive scheme and names, values kept", 'BEARER Realm="https://A/Token", SERVICE=Svc',
   {bearer{realm = "https://A/Token", service = "Svc"}}},
  {"token values and spaces around =", "Bearer realm = r , service= s", {bearer{realm = "r", service = "s"}}},
  {"a lone name= is a token68", "Basic realm=", {{scheme = "basic", params = {}}}},
  {"empty quoted value", 'Basic realm=""', {{scheme = "basic", params = {realm = ""}}}},
  {"several challenges", 'Basic realm="r", Bearer realm="https://a/t",service="s"',
   {{scheme = "basic", params = {realm = "r"}}, bearer{realm = "https://a/t", service = "s"}}},
  {"a token68 challenge is skipped, not its neighbours", 'Negotiate YIIB/g+==, Basic realm="r"',
   {{scheme = "negotiate", params = {}}, {scheme = "basic", params = {realm = "r"}}}},
  {"comma-separated headers joined, empty elements", ' , Basic realm="r",, ,Bearer realm="x" ,',
   {{scheme = "basic", params = {realm = "r"}}, bearer{realm = "x"}}},
  {"tabs as whitespace", 'Bearer\trealm="x",\tservice="y"', {bearer{realm = "x", service = "y"}}},
  {"non-ASCII inside quotes", 'Basic realm="Regístry"', {{scheme = "basic", params = {realm = "Regístry"}}}},
  {"empty header", "", {}},
  {"only whitespace and commas", " ,\t, ", {}},
  {"unterminated quote", 'Bearer realm="https://a/t', {}},
  {"trailing backslash in a quote", 'Basic realm="r\\', {}},
  {"parameter before any scheme", 'realm="r"', {}},
  {"missing comma between parameters", 'Bearer realm="a" service="b"', {}},
  {"garbage after a quoted value", 'Basic realm="r"x', {}},
  {"no value", "Bearer service=s,realm=", {}},
  {"an unquoted URL is not a token", "Bearer realm=https://a/t", {}},
  {"doubled =", "Basic realm==r", {}},
  {"quote where a token should be", 'Basic "realm"', {}},
  {"parameter after a token68", "Negotiate abc=, realm=r", {}},
  {"control characters", "Basic\0realm=r", {}},
  {"bad characters in a token value", "Basic realm=a(b)", {}},
}
for _, case in ipairs(challenges) do
  local name, header, want = case[1], case[2], case[3]
  t.eq(registry.parse_challenge(header), want, "parse_challenge: " .. name)
end

-- Whatever the input, a list and never an error (a small fuzz over the
-- characters that matter to the grammar).
local alphabet = {'"', "\\", ",", "=", " ", "\t", "a", "B", "/", "+", "\0", "é"}
local seed, all_lists = 12345, true
for _ = 1, 3000 do
  local parts = {}
  for i = 1, seed % 24 do
    seed = (seed * 1103515245 + 12345) % 2147483648
    parts[i] = alphabet[seed % #alphabet + 1]
  end
  seed = (seed * 1103515245 + 12345) % 2147483648
  local ok, list = pcall(registry.parse_challenge, table.concat(parts))
  if not ok or type(list) ~= "table" then all_lists = false; break end
end
t.ok(all_lists, "parse_challenge never raises on 3000 random headers")

local servers = {
  {"https://index.docker.io/v1/", "https://registry-1.docker.io"},
  {"index.docker.io", "https://registry-1.docker.io"},
  {"docker.io", "https://registry-1.docker.io"},
  {"registry-1.docker.io", "https://registry-1.docker.io"},
  {"ghcr.io", "https://ghcr.io"},
  {"Harbor.Example.org:8443", "https://harbor.example.org:8443"},
  {"127.0.0.1:5000", "https://127.0.0.1:5000"},
  {"[::1]:5000", "https://[::1]:5000"},
  {"https://registry.example/some/path?x=1", "https://registry.example"},
  {"http://127.0.0.1:5000/v2/", "http://127.0.0.1:5000"},
  {"HTTPS://quay.io", "https://quay.io"},
  {"registry.example/path", "https://registry.example"},
}
for _, case in ipairs(servers) do
  t.eq(registry.base_url(case[1]), case[2], "base_url " .. case[1])
end
for _, bad in ipairs{"", "https://", "ftp://registry.example", "user:pw@registry.example", "reg istry",
                     "registry.example:", "registry.example:port"} do
  t.fails(("invalid registry server %q: expected host[:port] or an http(s) URL"):format(bad),
          "base_url rejects " .. ("%q"):format(bad), registry.base_url, bad)
end

local good = {server = "registry.example", username = "u", password = "not-a-real-password"}
local function with(changes)
  local opts = {}
  for k, v in pairs(good) do opts[k] = v end
  for k, v in pairs(changes) do opts[k] = v end
  return opts
end
t.raises("registry.verify: expected a table of options", "verify needs a table", registry.verify, "x")
t.raises("registry.verify: unknown option 'passwd'", "verify names an unknown option",
         registry.verify, with{passwd = "x"})
t.raises("registry.verify: option 'insecure' must be a boolean", "verify checks option types",
         registry.verify, with{insecure = "yes"})
t.raises("registry.verify: option 'username' is required", "verify needs a username",
         registry.verify, {server = "registry.example", password = "x"})
t.raises('registry.verify: invalid registry server "ftp://x"', "verify rejects a bad server",
         registry.verify, with{server = "ftp://x"})

return t.done()
