-- xcsreg.config: what to do, from a site file or from kubectl-style flags.
--
-- Both end as the same plan:
--   { namespaces = {...} or nil (nil: the context's namespace, unless one of:)
--     namespace_selector = "label selector" or nil,
--     all_namespaces = true or nil, exclude_namespaces = {...} or nil,
--     service_accounts = {...},
--     secrets = { { name = "ghcr", registries = { {server=, username=, password=, email=}, ... } }, ... },
--     entries = the registry entries as checked, hooks = the site file's
--     (xcsreg.hooks; {} from flags), path = the site file (nil from flags),
--     images = the image references to check pull readiness of, or nil,
--     xnat = the XNAT site (xcsreg.xnat.check's), or nil }
-- A registry whose credential a source mints at run time (xcsreg.sources)
-- has `source` (its site-file entry) instead of `password`, and may have no
-- username, and may have refresh_before (seconds). Any registry may have
-- ca_file and insecure (for verification). Every check runs before anything
-- is sent to a cluster; every error names the entry and the field (the
-- flag, for the command line).
local base64 = require "base64"
local credentials = require "xcsreg.credentials"
local hooks = require "xcsreg.hooks"
local image_ref = require "xcsreg.image_ref"
local http = require "http"
local json = require "json"
local log = require "log"
local registry_host = require "xcsreg.registry_host"
local site = require "site"
local sources = require "xcsreg.sources"
local time = require "xcsreg.time"
local xnat = require "xcsreg.xnat"

local config = {}

config.DEFAULT_FILE = "/etc/xcsreg/registries.lua"
config.DEFAULT_SERVER = "https://index.docker.io/v1/"
-- Bytes of a value quoted in a message: a 10 MB name makes no 10 MB message.
local MAX_QUOTED = 64

-- s as %q quotes it, or its first MAX_QUOTED bytes followed by ... and its size.
local function quote(s)
  if #s <= MAX_QUOTED then return string.format("%q", s) end
  return string.format("%q... (%d bytes)", s:sub(1, MAX_QUOTED), #s)
end

-- DNS-1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?
local function is_label(s)
  return s:find("^[a-z0-9]") and s:find("[a-z0-9]$") and not s:find("[^a-z0-9%-]")
end

function config.check_namespace(s)
  if #s > 63 or not is_label(s) then
    return string.format("%s is not a valid namespace name: it must be a lowercase RFC 1123 label "
      .. "(a-z, 0-9 and '-', starting and ending with a letter or digit, at most 63 characters)", quote(s))
  end
end

-- DNS-1123 subdomain: labels joined by '.', at most 253 characters in all.
function config.check_name(s, what)
  local ok = #s <= 253 and s ~= ""
  for part in (s .. "."):gmatch("([^.]*)%.") do ok = ok and is_label(part) end
  if not ok then
    return string.format("%s is not a valid %s name: it must be a lowercase RFC 1123 subdomain "
      .. "(a-z, 0-9, '-' and '.', starting and ending with a letter or digit, at most 253 characters)", quote(s), what)
  end
end

local function check_string(v)
  if type(v) ~= "string" then return "must be a string, not " .. type(v) end
  if v == "" then return "must not be empty" end
end

local function check_username(v)
  local err = check_string(v)
  if err then return err end
  if v:find(":", 1, true) then
    return "must not contain ':' (the kubelet splits the auth field at the first ':')"
  end
end

local function check_argv(v)
  if type(v) ~= "table" or #v == 0 then return "must be a list of strings: the command and its arguments" end
  for k, a in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v or type(a) ~= "string" then
      return "must be a list of strings: the command and its arguments"
    end
  end
end

-- The keys of a registry entry, and how each is checked. A site file may
-- use those in `file_keys`; the rest come from command-line flags only.
local checks = {
  secret = function(v) return check_string(v) or config.check_name(v, "Secret") end,
  server = check_string,
  username = check_username,
  email = function(v) if type(v) ~= "string" then return "must be a string, not " .. type(v) end end,
  password_env = check_string,
  password_file = check_string,
  password_command = check_argv,
  password = check_string,
  password_stdin = function() end,
  registry_ca_file = function(v)
    local err = check_string(v)
    if err then return err end
    local f, oerr = io.open(v, "rb")
    if not f then return "cannot read " .. oerr end
    f:close()
  end,
  insecure_registry = function(v) if type(v) ~= "boolean" then return "must be true or false, not " .. type(v) end end,
  refresh_before = function(v) return select(2, time.parse_duration(v)) end,
}
-- The keys naming a source that mints the credential at run time (checked by sources.check).
local minting = {}
for _, key in ipairs(sources.keys) do
  minting[key] = true
  checks[key] = function() end
end
local file_keys = {
  secret = true, server = true, username = true, email = true,
  password_env = true, password_file = true, password_command = true,
  registry_ca_file = true, insecure_registry = true, refresh_before = true,
  credential_helper = true, docker_config = true, ecr = true, gcp = true,
}

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

-- Prefixes a message with where it happened, when there is a where.
local function at(where, msg)
  if where then return where .. ": " .. msg end
  return msg
end

-- Checks one registry entry. `label(field)` is how the user wrote the field
-- (the key, or the flag); `how` says how to give a password; with
-- password_hook, an entry may give none (hooks.password supplies it).
local function check_entry(e, label, how, password_hook)
  local given = {}
  for _, field in ipairs(sorted_keys(e)) do
    if credentials.sources[field] or minting[field] then given[#given + 1] = field end
  end
  if #given > 1 then
    return string.format("%s and %s both given: give only one", label(given[1]), label(given[2]))
  end
  local minted = minting[given[1]]
  for _, field in ipairs { "secret", "server", "username" } do
    -- a minted credential comes with its user name
    if e[field] == nil and not (field == "username" and minted) then return label(field) .. ": missing" end
  end
  for _, field in ipairs(sorted_keys(e)) do
    local err = checks[field](e[field])
    if err then return label(field) .. ": " .. err end
  end
  if #given == 0 then
    if password_hook then return end
    return "missing password: give " .. how .. ", or a password hook"
  end
  if minted then return select(2, sources.check(e)) end
  if e.refresh_before ~= nil then
    return "refresh_before: only for a credential minted by " .. table.concat(sources.keys, ", ")
  end
end

local function label_of_key(field) return field end

-- The passwords a plan's entries have read, by source: kept beside the
-- plan, not in it, so that no dump of a plan shows one.
local password_cache = setmetatable({}, { __mode = "k" })

-- The password of entry e, from the source its key names or from the
-- password hook, read once a run however many namespaces use it: password
-- | nil, message. A hook's error names the hook; the others the key.
local function read_password(plan, e, where, label)
  local key, value, id
  for k in pairs(credentials.sources) do
    if e[k] ~= nil then key, value = k, e[k] end
  end
  if key then
    id = key .. "\0" .. (type(value) == "table" and table.concat(value, "\0") or tostring(value))
  else
    id = "hook\0" .. e.secret .. "\0" .. e.server .. "\0" .. tostring(e.username)
  end
  local cache = password_cache[plan]
  if cache[id] then return table.unpack(cache[id]) end
  local password, err
  if key then
    password, err = credentials.read(key, value)
    if not password then err = at(where, label(key) .. ": " .. err) end
  else
    local ok, got = hooks.call(plan, "password", hooks.copy(e))
    if not ok then
      err = got
    elseif type(got) ~= "string" or got == "" then
      err = hooks.returned(plan, "password", string.format("%s for %s, not a non-empty string",
        got == "" and "an empty string" or "a " .. type(got), where or e.secret))
    elseif #got > credentials.MAX_PASSWORD_BYTES then
      err = hooks.returned(plan, "password", string.format("a password larger than %d bytes", credentials.MAX_PASSWORD_BYTES))
    else
      password = log.secret(got)
    end
  end
  cache[id] = { password, err }
  return password, err
end

-- The password of entry i of a plan loaded with credentials = false, read
-- now (credential-provider.lua reads only those of the entries matching the
-- image it is asked about): password | nil, message.
function config.password(plan, i)
  local e = plan.entries[i]
  return read_password(plan, e, string.format("%s: registries[%d] (secret %s)", plan.path, i, quote(e.secret)),
    label_of_key)
end

-- Groups entries into Secrets (in order of first appearance) and reads every
-- password, unless read is false. `where(i)` names entry i for messages (or
-- nil), `label` as above.
local function build_secrets(plan, entries, where, label, read)
  credentials.hide_env(entries)
  local secrets, by_name, first = {}, {}, {}
  for i, e in ipairs(entries) do
    local s = by_name[e.secret]
    if not s then
      s = { name = e.secret, registries = {} }
      by_name[e.secret], first[e.secret] = s, {}
      secrets[#secrets + 1] = s
    end
    local other = first[e.secret][e.server]
    if other then
      return nil, at(where(i), string.format("%s: %s is already given for this Secret by registries[%d]",
        label("server"), quote(e.server), other))
    end
    first[e.secret][e.server] = i
  end
  for i, e in ipairs(entries) do
    local r = { server = e.server, username = e.username, email = e.email or "", ca_file = e.registry_ca_file,
                insecure = e.insecure_registry, refresh_before = time.parse_duration(e.refresh_before) }
    if sources.kind(e) then
      r.source = e -- minted when the Secret is written (xcsreg.rotation)
    elseif read ~= false then
      local err
      r.password, err = read_password(plan, e, where(i), label)
      if not r.password then return nil, err end
    end
    table.insert(by_name[e.secret].registries, r)
  end
  return secrets
end

-- The globals a site file may use: no I/O, no loading, no environment; the
-- libraries are copies, so that the file cannot change ours.
local function sandbox()
  local function copy(lib)
    local c = {}
    for k, v in pairs(lib) do c[k] = v end
    return c
  end
  -- What hooks need to reach a secret store or a webhook. An environment
  -- variable read here is taken to hold a secret (a store's token).
  local xcsreg = {
    http = { request = http.request },
    json = { encode = json.encode, decode = json.decode, null = json.null },
    base64 = { encode = base64.encode, decode = base64.decode },
    log = { info = log.info, warn = log.warn },
    secret_env = function(name)
      local v = os.getenv(tostring(name))
      return v and log.secret(v)
    end,
  }
  return {
    ipairs = ipairs, pairs = pairs, next = next, select = select, type = type,
    tostring = tostring, tonumber = tonumber, error = error, assert = assert,
    pcall = pcall, rawequal = rawequal, rawget = rawget, rawlen = rawlen, setmetatable = setmetatable,
    getmetatable = getmetatable,
    string = copy(string), table = copy(table), math = copy(math), utf8 = copy(utf8), xcsreg = xcsreg,
  }
end

local function check_names(list, field, check)
  if type(list) ~= "table" or #list == 0 then return field .. ": must be a non-empty list of names" end
  for i = 1, #list do
    local v = list[i]
    if type(v) ~= "string" then return string.format("%s[%d]: must be a string, not %s", field, i, type(v)) end
    local err = check(v)
    if err then return string.format("%s[%d]: %s", field, i, err) end
  end
end

local function check_sa(v) return config.check_name(v, "ServiceAccount") end

-- Label keys ([prefix/]name) and values, as Kubernetes checks them.
local function is_label_name(s)
  return #s <= 63 and s:find("^%w") and s:find("%w$") and not s:find("[^%w%-_%.]")
end
local function is_label_key(s)
  local prefix, name = s:match("^(.*)/(.*)$")
  if prefix and config.check_name(prefix, "label prefix") then return false end
  return is_label_name(name or s)
end
local function is_label_value(s) return s == "" or is_label_name(s) end

-- Why s is not a label selector as the API server reads it (requirements
-- joined by ","), or nil. Checked here so that a typo fails before the
-- cluster is asked.
function config.check_selector(s)
  local function bad(req)
    local msg = string.format("%s is not a valid label selector: want key=value, key!=value, key in (v1,v2), "
      .. "key notin (v1,v2), key or !key, joined by \",\" (keys and values as in labels)", quote(s))
    if req ~= s then msg = msg .. string.format("; %s is none of these", quote(req)) end
    return msg
  end
  if s:find("%c") then return bad(s) end
  -- the commas inside "in (a,b)" do not end a requirement
  local masked = s:gsub("%b()", function(p) return (p:gsub(",", "\0")) end)
  for raw in (masked .. ","):gmatch("([^,]*),") do
    local req = raw:match("^%s*(.-)%s*$")
    local shown = req:gsub("\0", ",")
    local key, value = req:match("^([^=!%s]+)%s*[!=]?=%s*(.-)$")
    if key then
      if not (is_label_key(key) and is_label_value(value)) then return bad(shown) end
    else
      local set
      key, set = req:match("^(%S+)%s+in%s*(%b())$")
      if not key then key, set = req:match("^(%S+)%s+notin%s*(%b())$") end
      if set then
        local values = set:sub(2, -2)
        if not is_label_key(key) or not values:find("%S") then return bad(shown) end
        for v in (values .. "\0"):gmatch("([^\0]*)\0") do
          if not is_label_value(v:match("^%s*(.-)%s*$")) then return bad(shown) end
        end
      elseif not is_label_key(req:match("^!%s*(.*)$") or req) then
        return bad(shown)
      end
    end
  end
end

-- The namespace keys of a site file: at most one of namespaces,
-- namespace_selector, all_namespaces; exclude_namespaces goes with the last.
local function check_selection(t, plan)
  local given = {}
  for _, k in ipairs { "namespaces", "namespace_selector", "all_namespaces" } do
    if t[k] ~= nil and t[k] ~= false then given[#given + 1] = k end
  end
  if #given > 1 then
    return string.format("%s and %s both given: give only one of namespaces, namespace_selector, all_namespaces",
      given[1], given[2])
  end
  if t.namespaces ~= nil then
    local err = check_names(t.namespaces, "namespaces", config.check_namespace)
    if err then return err end
    plan.namespaces = t.namespaces
  end
  local selector = t.namespace_selector
  if selector ~= nil then
    local err = check_string(selector) or config.check_selector(selector)
    if err then return "namespace_selector: " .. err end
    plan.namespace_selector = selector
  end
  if t.all_namespaces ~= nil and type(t.all_namespaces) ~= "boolean" then
    return "all_namespaces: must be true or false, not " .. type(t.all_namespaces)
  end
  plan.all_namespaces = t.all_namespaces or nil
  if t.exclude_namespaces ~= nil then
    if not t.all_namespaces then return "exclude_namespaces: only with all_namespaces = true" end
    if type(t.exclude_namespaces) == "table" and next(t.exclude_namespaces) == nil then return end
    local err = check_names(t.exclude_namespaces, "exclude_namespaces", config.check_namespace)
    if err then return err end
    plan.exclude_namespaces = t.exclude_namespaces
  end
end

-- Checks the registry entries of a site file (or of a hook): the first
-- error, naming the entry (where(i)) and the field, or nil.
local function check_entries(plan, entries, where)
  for i, e in ipairs(entries) do
    if type(e) ~= "table" then return where(i) .. ": must be a table, not " .. type(e) end
    for _, k in ipairs(sorted_keys(e)) do
      if not file_keys[k] then return string.format("%s: unknown key %s", where(i), quote(k)) end
    end
    local err = check_entry(e, label_of_key, "one of password_env, password_file, password_command, or a "
      .. "credential source: " .. table.concat(sources.keys, ", "), plan.hooks.password ~= nil)
    if err then return where(i) .. ": " .. err end
  end
  for k in pairs(entries) do
    if math.type(k) ~= "integer" or k < 1 or k > #entries then
      return where(1):gsub("%[1%]", "") .. ": must be a list of entries, not a table with key " .. quote(tostring(k))
    end
  end
end

local TOP_KEYS = { all_namespaces = true, clusters = true, exclude_namespaces = true, hooks = true, images = true,
                   namespace_selector = true, namespaces = true, registries = true, restart_owners = true,
                   service_accounts = true, xnat = true }

-- `images`: the references whose pull readiness status.lua (and setup.lua
-- before it writes) checks, each as a pod spec would give it.
local function check_images(v)
  if v == nil then return end
  if type(v) ~= "table" or #v == 0 then return "images: must be a non-empty list of image references" end
  for i = 1, #v do
    if type(v[i]) ~= "string" then return string.format("images[%d]: must be a string, not %s", i, type(v[i])) end
    local ref, err = image_ref.parse(v[i])
    if not ref then return string.format("images[%d]: %s", i, err) end
  end
end

-- `clusters`: the clusters one run reconciles (xcsreg.fleet), each
-- { name =, context =, kubeconfig = } (name defaults to the context):
-- checked list | nil, message. A kubeconfig that cannot be read is named
-- now, before any cluster is contacted.
local CLUSTER_KEYS = { context = true, kubeconfig = true, name = true }
local function check_clusters(v)
  if v == nil then return end
  if type(v) ~= "table" or #v == 0 then
    return nil, "clusters: must be a non-empty list of { name =, context =, kubeconfig = } tables"
  end
  for k in pairs(v) do
    if math.type(k) ~= "integer" or k < 1 or k > #v then
      return nil, "clusters: must be a list, not a table with key " .. quote(tostring(k))
    end
  end
  local list, seen = {}, {}
  for i, c in ipairs(v) do
    local where = string.format("clusters[%d]", i)
    if type(c) ~= "table" then return nil, where .. ": must be a table, not " .. type(c) end
    for _, k in ipairs(sorted_keys(c)) do
      if not CLUSTER_KEYS[k] then
        return nil, string.format("%s: unknown key %s (known: context, kubeconfig, name)", where, quote(k))
      end
    end
    for _, k in ipairs { "name", "context", "kubeconfig" } do
      local err = c[k] ~= nil and check_string(c[k])
      if err then return nil, string.format("%s.%s: %s", where, k, err) end
    end
    if not (c.context or c.kubeconfig) then return nil, where .. ": give its context, its kubeconfig, or both" end
    local name = c.name or c.context
    if not name then return nil, where .. ": name: needed when no context names the cluster" end
    -- printed before each of its lines and put in a metrics label
    if #name > 253 or not name:find("^[%w%p]+$") then
      return nil, string.format("%s: name %s: must be at most 253 printable characters, no spaces", where, quote(name))
    end
    if seen[name] then
      return nil, string.format("%s: name %s: already the name of clusters[%d]", where, quote(name), seen[name])
    end
    seen[name] = i
    if c.kubeconfig then
      local f, err = io.open(c.kubeconfig)
      if not f then return nil, string.format("%s.kubeconfig: cannot read %s", where, err) end
      f:close()
    end
    list[i] = { name = name, context = c.context, kubeconfig = c.kubeconfig }
  end
  return list
end

-- Loads and checks a site file. Returns the plan | nil, message.
-- opts.credentials = false: leave the passwords unread (for reports).
function config.load_file(path, opts)
  local f, oerr = io.open(path)
  if not f then return nil, "cannot read site file " .. oerr end
  local text, rerr = f:read("a")
  f:close()
  if not text then return nil, "cannot read " .. path .. ": " .. tostring(rerr) end
  -- Loaded under the empty chunk name, so that a message is ":line: ..." and
  -- names the file once prefixed, however long its path (Lua shortens those).
  -- As loadfile does: a UTF-8 byte order mark and a first "#" line are skipped.
  text = text:gsub("^\239\187\191", ""):gsub("^#[^\n]*", "")
  local chunk, err = load(text, "=", "t", sandbox())
  local ok, t = chunk ~= nil, err
  if ok then ok, t = site.run(chunk, hooks.limits(path)) end
  if not ok then
    if type(t) ~= "string" then return nil, string.format("%s: raised a %s, not an error message", path, type(t)) end
    return nil, path .. (t:find("^:%d+:") and "" or ": ") .. t
  end
  if type(t) ~= "table" then return nil, path .. ": must return a table, not " .. type(t) end
  for _, k in ipairs(sorted_keys(t)) do
    if not TOP_KEYS[k] then
      return nil, string.format("%s: unknown key %s (known: %s)", path, quote(k), table.concat(sorted_keys(TOP_KEYS), ", "))
    end
  end
  local plan = { service_accounts = t.service_accounts or { "default" }, path = path }
  password_cache[plan] = {}
  plan.hooks, err = hooks.check(t.hooks)
  err = err or check_selection(t, plan) or check_names(plan.service_accounts, "service_accounts", check_sa)
    or check_images(t.images) or (t.restart_owners ~= nil and check_names(t.restart_owners, "restart_owners",
      function(v) if not v:match("^%u%w*$") then return quote(v) .. " is not a kind (Job, ReplicaSet, Pod...)" end end))
  plan.images, plan.restart_owners = t.images, t.restart_owners
  if not err then plan.clusters, err = check_clusters(t.clusters) end
  if not err and plan.hooks.namespaces and (plan.namespaces or plan.namespace_selector or plan.all_namespaces) then
    err = "hooks.namespaces and " .. (plan.namespaces and "namespaces" or plan.namespace_selector
      and "namespace_selector" or "all_namespaces") .. " both given: give only one"
  end
  if err then return nil, path .. ": " .. err end
  local entries = t.registries
  if type(entries) ~= "table" or #entries == 0 then
    return nil, path .. ": registries: must be a non-empty list of entries"
  end
  local function where(i)
    local e = entries[i]
    if type(e) == "table" and type(e.secret) == "string" then
      return string.format("%s: registries[%d] (secret %s)", path, i, quote(e.secret))
    end
    return string.format("%s: registries[%d]", path, i)
  end
  err = check_entries(plan, entries, where)
  if err then return nil, err end
  if t.xnat ~= nil then
    -- the XNAT site (xcsreg.xnat; its password is read when it is called)
    plan.xnat, err = xnat.check(t.xnat)
    if not plan.xnat then return nil, path .. ": " .. err end
    credentials.hide_env({ t.xnat })
    for i, server in ipairs(type(plan.xnat.hubs) == "table" and plan.xnat.hubs or {}) do
      local found = false
      for _, e in ipairs(entries) do found = found or e.server == server end
      if not found then return nil, string.format("%s: xnat.hubs[%d]: %s is no registry's server", path, i, quote(server)) end
    end
  end
  plan.entries, plan.read, plan.where = entries, not (opts and opts.credentials == false), where
  plan.secrets, err = build_secrets(plan, entries, where, label_of_key, plan.read)
  if not plan.secrets then return nil, err end
  return plan
end

-- A plan loaded with credentials = false, its passwords now read (a run
-- that learns only from the site file that it is one cluster's): the
-- plan | nil, message, as load_file's with credentials would have been.
function config.read_passwords(plan)
  if plan.read then return plan end
  local secrets, err = build_secrets(plan, plan.entries, plan.where, label_of_key, true)
  if not secrets then return nil, err end
  plan.secrets, plan.read = secrets, true
  return plan
end

-- The Secrets of namespace ns: the plan's, or those of the entries that
-- hooks.registries returns for ns (given a copy of the site file's; checked
-- as those are; their passwords read once a run): secrets | nil, message.
function config.secrets_for(plan, ns, cluster)
  if not (plan.hooks and plan.hooks.registries) then return plan.secrets end
  local ok, entries = hooks.call(plan, "registries", ns, hooks.copy(plan.entries), cluster)
  if not ok then return nil, entries end
  local function where(i)
    return string.format("%s: namespace %s: registries[%d]", hooks.prefix(plan, "registries"), ns, i)
  end
  if type(entries) ~= "table" then
    return nil, hooks.returned(plan, "registries", string.format("a %s for namespace %s, not a list of registry "
      .. "entries", type(entries), ns))
  end
  if #entries == 0 then return {} end
  local err = check_entries(plan, entries, where)
  if err then return nil, err end
  local secrets
  secrets, err = build_secrets(plan, entries, where, label_of_key, plan.read)
  if not secrets then return nil, err end
  return secrets
end

-- pull.check's options for the images of a registry (an image reference's
-- registry, "docker.io" for Docker Hub): the registry_ca_file and
-- insecure_registry of the plan's entry for that host, or {}.
function config.pull_options(plan)
  local by_host = {}
  for _, e in ipairs(plan.entries or {}) do
    local host = registry_host.canonical(registry_host.host_of(e.server))
    if not by_host[host] then by_host[host] = { ca_file = e.registry_ca_file, insecure = e.insecure_registry } end
  end
  return function(registry) return by_host[registry_host.canonical(registry)] or {} end
end

-- The flags of the one-registry form, and the entry key each sets.
config.registry_flags = {
  ["secret-name"] = "secret",
  ["docker-server"] = "server",
  ["docker-username"] = "username",
  ["docker-email"] = "email",
  ["docker-password"] = "password",
  ["docker-password-stdin"] = "password_stdin",
  ["docker-password-file"] = "password_file",
  ["docker-password-env"] = "password_env",
}

-- Builds the plan of the one-registry form from parsed flags | nil, message.
function config.from_flags(opts)
  local e, flag_of = { server = config.DEFAULT_SERVER }, {}
  for flag, key in pairs(config.registry_flags) do
    flag_of[key] = "--" .. flag
    if opts[flag] ~= nil and opts[flag] ~= false then e[key] = opts[flag] end
  end
  local function label(field) return flag_of[field] end
  local err = check_entry(e, label,
    "--docker-password-stdin, --docker-password-file FILE or --docker-password-env VAR")
  if err then return nil, err end
  local plan = { service_accounts = { "default" }, hooks = {}, read = true, entries = { e } }
  password_cache[plan] = {}
  plan.secrets, err = build_secrets(plan, { e }, function() end, label, true)
  if not plan.secrets then return nil, err end
  return plan
end

-- Applies -n and --service-account (they override the file, its
-- namespace_selector and all_namespaces too) and checks them.
function config.override(plan, namespaces, service_accounts)
  if namespaces then
    local err = check_names(namespaces, "--namespace", config.check_namespace)
    if err then return nil, err end
    plan.namespaces, plan.namespace_selector, plan.all_namespaces, plan.exclude_namespaces = namespaces, nil, nil, nil
    if plan.hooks then plan.hooks.namespaces = nil end
  end
  if service_accounts then
    local err = check_names(service_accounts, "--service-account", check_sa)
    if err then return nil, err end
    plan.service_accounts = service_accounts
  end
  return plan
end

return config
