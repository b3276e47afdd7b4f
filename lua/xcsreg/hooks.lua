-- xcsreg.hooks: the functions a site file may give beside its data, as
-- wrk's scripts give setup/request/response: each replaces or observes one
-- step of the workflow (xcsreg.reconcile), so that a site changes a step in
-- a few lines instead of copying the script.
--
--   hooks = {
--     namespaces = function(cluster) return { "ns", ... } end,
--         the namespaces to handle, instead of namespaces/namespace_selector/
--         all_namespaces; cluster is a read-only view (see below).
--     registries = function(namespace, registries, cluster) return registries end,
--         the registry entries for one namespace: given a copy of the site
--         file's, returns those to use there (a subset, changed, or new
--         ones); each is checked as a site file entry is.
--     password = function(entry) return "password" end,
--         the password of every entry that names no other source (entry is
--         a copy: secret, server, username...), e.g. read over xcsreg.http
--         from a secret store.
--     result = function(event) end,
--         told of each object handled and each failure, in namespace order:
--         { namespace =, kind = "secret" | "serviceaccount", name =,
--           result = "created" | "configured" | "unchanged" | "failed",
--           error = message (when failed), dry_run = true (when so) }.
--   }
--
-- A hook runs as the site file does: in its sandbox, under its instruction
-- limit. What a hook returns is checked like site file data; whatever it
-- does, the library's invariants hold (a Secret is never written with an
-- empty credential; a ServiceAccount's pull secrets are only added to). A
-- hook that raises, loops, or returns garbage fails the run before anything
-- is written (result, an observer, runs after the writes it is told of),
-- with a message naming the file, the line and the hook:
--   /etc/xcsreg/registries.lua:12: hook namespaces: attempt to index a nil value
local pager = require "xcsreg.pager"
local site = require "site"

local hooks = {}

hooks.NAMES = { "namespaces", "registries", "password", "result" }
-- A site file builds a table with a little code: a few thousand Lua VM
-- instructions for a hundred registries. Past this many it, or one of its
-- hooks, is stuck in a loop (50 million take a fraction of a second), and
-- is stopped.
hooks.INSTRUCTIONS = 50 * 1000 * 1000
-- A hundred registries take well under a MiB; a hook reading a secret
-- store, a few. Past these a site file (or hook) is runaway: its heap is
-- refused, and one still running (stuck in a C call, as string.find with a
-- pathological pattern, that the instruction count cannot interrupt) ends
-- the run with exit 2 before anything is written (#12 item 19). A hook
-- reading a secret store over HTTP has its own timeouts, well under this.
hooks.MEMORY = 64 * 1024 * 1024
hooks.SECONDS = 60

-- The limits of site.run for what the site file at path runs ("what" names
-- it in the message of a stop).
function hooks.limits(what)
  return { instructions = hooks.INSTRUCTIONS, memory = hooks.MEMORY, seconds = hooks.SECONDS, what = what }
end

local known = {}
for _, name in ipairs(hooks.NAMES) do known[name] = true end

-- Checks a site file's `hooks` value: the table of hooks | nil, message.
function hooks.check(t)
  if t == nil then return {} end
  if type(t) ~= "table" then return nil, "hooks: must be a table of functions, not " .. type(t) end
  for k, v in pairs(t) do
    if not known[k] then
      return nil, string.format("hooks: unknown hook %s (known: %s)", tostring(k), table.concat(hooks.NAMES, ", "))
    end
    if type(v) ~= "function" then return nil, string.format("hooks.%s: must be a function, not %s", k, type(v)) end
  end
  return t
end

-- The error of hook `name` of the site file at `path`: "path:line: hook
-- name: msg". A message from the hook's own code already has its line (the
-- file is loaded under the empty chunk name, so it reads ":12: ...");
-- otherwise the line is where the hook is defined.
local function failure(path, name, fn, msg)
  if type(msg) ~= "string" then msg = "raised a " .. type(msg) .. ", not an error message" end
  local line, rest = msg:match("^:(%d+): (.*)$")
  if not line then line, rest = site.where(fn), msg end
  return string.format("%s:%s: hook %s: %s", path, tostring(line), name, rest)
end
hooks.failure = failure

-- Calls hook `name` of plan (xcsreg.config) with the arguments, under the
-- site file's limits: true, results... | false, message (as above). When
-- the plan has no such hook: nil.
function hooks.call(plan, name, ...)
  local fn = plan.hooks and plan.hooks[name]
  if not fn then return nil end
  local r = table.pack(site.run(fn, hooks.limits(plan.path .. ": hook " .. name), ...))
  if not r[1] then return false, failure(plan.path, name, fn, r[2]) end
  return table.unpack(r, 1, r.n)
end

-- "path:line: hook name", line being where the hook is defined: the
-- prefix of a message about what it returned.
function hooks.prefix(plan, name)
  return string.format("%s:%s: hook %s", plan.path, tostring(site.where(plan.hooks[name])), name)
end

-- What hook `name` returned is not what it must return: the message.
function hooks.returned(plan, name, what)
  return hooks.prefix(plan, name) .. ": returned " .. what
end

-- A copy of t, tables inside copied too, so that a hook cannot change the
-- library's data through what it is given.
function hooks.copy(t)
  if type(t) ~= "table" then return t end
  local c = {}
  for k, v in pairs(t) do c[k] = hooks.copy(v) end
  return c
end

-- The read-only view of the cluster a hook is given: GET and LIST of any
-- path (k8s.path builds one), the context's namespace and server. Answers
-- are objects, or nil and the API's message.
function hooks.cluster(client)
  local function answer(obj, err)
    if obj then return obj end
    return nil, tostring(err)
  end
  return {
    namespace = client.namespace,
    server = client.server,
    get = function(path) return answer(client:get(path)) end,
    list = function(path, query) return answer(pager.list(client, path, query)) end,
  }
end

return hooks
