-- LISTs over pages (#12 item 13): the simulator pages as the apiserver
-- does (limit, metadata.continue), and caps its pages at 2 items here;
-- every LIST of setup.lua and status.lua follows continue to the end, a
-- continue token that expired (410) makes one whole LIST, and a token that
-- leads nowhere is an error, not a loop.
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
package.path = dir .. "/setupfixtures/?.lua;" .. package.path
local t = require "test"
local json = require "json"
local lib = require "setuplib"
local proc = require "proc"

local env = { PW = "example-static-pw-3b8c" }
local site = lib.write("paging-site.lua", [[
return {
  namespace_selector = "paged",
  registries = {
    { secret = "a", server = "a.example.org", username = "u", password_env = "PW" },
    { secret = "b", server = "b.example.org", username = "u", password_env = "PW" },
    { secret = "c", server = "c.example.org", username = "u", password_env = "PW" },
  },
}]])
local handled
local NAMES = { "p1", "p2", "p3", "p4", "p5", "p6", "p7" }

lib.reset()
for _, ns in ipairs(NAMES) do lib.namespace(ns, { paged = "yes" }) end
lib.paging(2)
lib.clear_log()
local status, out, err = lib.setup({ "--config", site }, { env = env })
t.eq(status, 0, "7 namespaces over 2-item pages: exit 0 " .. err)
handled = {}
for ns in out:gmatch("(p%d): serviceaccount/default configured\n") do handled[#handled + 1] = ns end
t.eq(handled, NAMES, "every namespace of every page handled")
local continued = 0
for _, e in ipairs(lib.log()) do
  if e.method == "GET" and e.query and e.query.continue then continued = continued + 1 end
end
t.ok(continued >= 3, "the pages after the first were asked with continue", tostring(continued))

-- status.lua: 3 Secrets in a namespace, over 2-item pages; and the snapshot's
-- LIST of 21 managed Secrets across the cluster
local function run_status(...)
  local st, sout, serr = proc.run { argv = { lib.xcsreg, "run", "status.lua", ... },
    env = { KUBECONFIG = lib.dir .. "/token.kubeconfig", HOME = lib.tmp }, timeout = 60 }
  assert(st, sout)
  return st, sout, serr
end
status, out = run_status("-n", "p7")
t.eq(status, 0, "status.lua over pages: exit 0")
t.ok(out:find("all well (3 Secrets in 1 namespace)", 1, true) ~= nil, "status.lua: all 3 Secrets of the namespace", out)
lib.clear_log()
status, out = lib.setup({ "--config", site }, { env = env })
t.eq(status, 0, "an unchanged run over pages: exit 0")
local writes = 0
for _, e in ipairs(lib.log()) do if e.method ~= "GET" then writes = writes + 1 end end
t.eq(writes, 0, "... writes nothing: each Secret was found on its page")

-- a server that pages though no limit was asked (the API allows it): the
-- first page by a fault, the rest by the simulator from the token
lib.reset()
for _, ns in ipairs(NAMES) do lib.namespace(ns, { paged = "yes" }) end
local function ns_item(name) return { metadata = { name = name, labels = { paged = "yes" } }, status = { phase = "Active" } } end
local base64 = require "base64"
assert(lib.fault { method = "GET", path_regex = "^/api/v1/namespaces$", count = 1, status = 200,
  body = json.encode { kind = "NamespaceList", apiVersion = "v1", items = { ns_item("p1"), ns_item("p2") },
    metadata = { resourceVersion = "200", remainingItemCount = 5,
      continue = base64.encode(json.encode { v = "meta.k8s.io/v1", rv = 200, start = "/p3" }) } },
  content_type = "application/json" })
status, out = lib.setup({ "--config", site }, { env = env })
handled = {}
for ns in out:gmatch("(p%d): serviceaccount/default configured\n") do handled[#handled + 1] = ns end
t.eq({ status, handled }, { 0, NAMES }, "a first page with continue: the rest asked for and handled")

-- a continue token that expired: 410 Gone, then one whole LIST
lib.reset()
for _, ns in ipairs(NAMES) do lib.namespace(ns, { paged = "yes" }) end
lib.paging(2)
assert(lib.fault { method = "GET", path_regex = "^/api/v1/namespaces$", skip = 1, count = 1, status = 410,
  body = json.encode { kind = "Status", apiVersion = "v1", metadata = {}, status = "Failure", reason = "Expired",
    code = 410, message = "The provided continue parameter is too old to display a consistent list result." },
  content_type = "application/json" })
status, out, err = lib.setup({ "--config", site }, { env = env })
handled = {}
for ns in out:gmatch("(p%d): serviceaccount/default configured\n") do handled[#handled + 1] = ns end
t.eq({ status, handled }, { 0, NAMES }, "an expired continue token: listed whole, every namespace handled")

-- a server whose continue token leads nowhere
lib.paging(nil)
assert(lib.fault { method = "GET", path_regex = "^/api/v1/namespaces$", count = 5, status = 200,
  body = json.encode { kind = "NamespaceList", apiVersion = "v1", metadata = { continue = "again" }, items = json.array {} },
  content_type = "application/json" })
status, out, err = lib.setup({ "--config", site }, { env = env })
t.eq(status, 1, "a continue token that repeats: exit 1")
t.ok(err:find("LIST /api/v1/namespaces: the server's continue token does not lead to an end", 1, true) ~= nil,
  "... said so", err)
lib.clear_faults()
return t.done()
