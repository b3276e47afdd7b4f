-- xcsreg.hubs: XNAT's image hubs, the registry credentials its Docker and
-- Swarm backends pull with, kept equal to the credentials setup.lua has
-- just put in the cluster's Secrets. Facts: ../shared/reference/xnat.md §5
-- ("ref §5"); the client is xcsreg.xnat's.
--
--   hubs.wanted(cfg, creds)   the hubs to upsert, by hub URL | nil, message
--   hubs.url(server)          the url a hub of this registry must have
--   hubs.sync(c, want, opts)  upserts them: lines ({text=} | {error=}), ok
--   hubs.step(cfg, creds, opts)  setup.lua's step after the Secrets: exit code
--
-- The rules, each from ref §5:
-- * One hub per URL (url is unique), matched on url: GET /xapi/docker/hubs,
--   then POST /xapi/docker/hubs/{id} with the full object (id equal to the
--   path's; a key left out becomes null), or POST /xapi/docker/hubs when
--   none has the url. The name of a hub found is kept; a new one is named
--   after its URL. Each hub written is then verified with its ping
--   (GET /xapi/docker/hubs/{id}/ping; a failed ping warns).
-- * url is the bare registry host ("ghcr.io", "harbor.example.org:8443"):
--   Swarm takes the hub whose url *equals* the image's registry host;
--   Docker Hub's images match "https://index.docker.io/v1/".
-- * username + password, token null (token becomes Docker's identitytoken).
-- * Never DELETE a hub (the default one answers 409), never send ?default=
--   (with a body it acts on the body's id), never send a blank password (it
--   would keep the old one only while url and username are unchanged, and
--   a failed update leaves the hub as it was: XNAT keeps the stored one).
-- * Passwords are write-only: no GET returns them. A hub is unchanged when
--   what can be read (url, username, email, token null) is as wanted AND
--   xcsreg's own record (opts.state_file, JSON: per url the hub id, user
--   and the generation of the credential pushed, never a password) says it
--   pushed this generation of the credential to this hub. A generation is
--   the Secret's name and its xcsreg.io/rotated-at, which changes with
--   every write of its content, so a rotated credential (ECR every 12 h)
--   is pushed in the run that writes it. No record: the hub is updated.
local file = require "file"
local json = require "json"
local log = require "log"
local registry_host = require "xcsreg.registry_host"
local runlock = require "xcsreg.runlock"
local xnat = require "xcsreg.xnat"

local hubs = {}

-- The url of the hub for registry `server` (a docker config key or URL).
function hubs.url(server)
  return registry_host.docker_config_key(registry_host.host_of(server))
end

-- The hubs to upsert: cfg.hubs (true/"always": every registry; a list: those
-- servers) over creds (the credentials the cluster's Secrets hold after
-- this run, in namespace order: { server, username, password, email,
-- generation }). The first credential of a url wins; another user name for
-- it is a warning. Returns { { url, username, password, email, generation } ... }
-- | nil, message (a listed server with no credential this run).
function hubs.wanted(cfg, creds)
  local only
  if type(cfg.hubs) == "table" then
    only = {}
    for _, s in ipairs(cfg.hubs) do only[hubs.url(s)] = s end
  end
  local list, by_url = {}, {}
  for _, c in ipairs(creds) do
    local url = hubs.url(c.server)
    if not only or only[url] then
      local have = by_url[url]
      if not have then
        have = { url = url, username = c.username, password = c.password, email = c.email, generation = c.generation }
        by_url[url] = have
        list[#list + 1] = have
      elseif have.username ~= c.username then
        log.warn("xnat: hub %s: registries for it have users %s and %s; the hub gets %s", url, have.username,
          c.username, have.username)
      end
    end
  end
  for url, server in pairs(only or {}) do
    if not by_url[url] then
      return nil, string.format("xnat.hubs: %s: no Secret holds a credential for it after this run", server)
    end
  end
  return list
end

local function read_record(path)
  if not path then return {} end
  local f = io.open(path)
  if not f then return {} end
  local text = f:read(1024 * 1024)
  f:close()
  local t = text and json.decode(text)
  return type(t) == "table" and type(t.hubs) == "table" and t.hubs or {}
end

local function write_record(path, record)
  if not path then return true end
  local ok, err = file.replace(path, json.encode({ hubs = json.object(record) }, { indent = 2 }) .. "\n",
    { mode = 384 }) -- 0600
  if not ok then return nil, err end
  return true
end

local function null_or(v) if v == nil or v == "" then return json.null end return v end
local function text(v) if v == nil or v == json.null then return "" end return v end

-- Upserts want (hubs.wanted's) on client c. opts: state_file (xcsreg's
-- record; nil: none), dry_run (say what would be done, change nothing).
-- Returns lines ({ text = "xnat hub/URL created" } | { error = message })
-- and whether all were done.
function hubs.sync(c, want, opts)
  opts = opts or {}
  local lines, ok = {}, true
  local list, err = c:json("GET", "/xapi/docker/hubs", { what = "list the image hubs (GET /xapi/docker/hubs)" })
  if list and json.kind(list) ~= "array" then list, err = nil, "XNAT " .. c.url .. ": GET /xapi/docker/hubs: not an array" end
  if not list then return { { error = err } }, false end
  local by_url = {}
  for _, h in ipairs(list) do
    if type(h) == "table" and type(h.url) == "string" then by_url[h.url] = h end
  end
  local record = read_record(opts.state_file)
  local suffix = opts.dry_run and " (server dry run)" or ""
  local changed = false
  for _, w in ipairs(want) do
    local h = by_url[w.url]
    local result
    if type(w.password) ~= "string" or w.password == "" then
      lines[#lines + 1] = { error = "xnat hub/" .. w.url .. ": no password to send: the hub is left as it is" }
      ok = false
    elseif h then
      local id = math.tointeger(h.id)
      local email = w.email ~= "" and w.email or text(h.email)
      local rec = record[w.url]
      local readable_same = text(h.username) == w.username and text(h.email) == email and text(h.token) == ""
      local pushed = type(rec) == "table" and rec.id == id and rec.username == w.username
        and rec.generation == w.generation
      if readable_same and pushed then
        result = "unchanged"
      elseif opts.dry_run then
        result = "configured"
      else
        local body = { id = id, name = h.name, url = w.url, username = w.username, password = w.password,
                       email = null_or(email), token = json.null }
        local st, perr = c:request("POST", string.format("/xapi/docker/hubs/%d", id),
          { body = body, what = string.format("update hub %d (POST /xapi/docker/hubs/%d)", id, id) })
        if st then
          result = "configured"
          record[w.url] = { id = id, username = w.username, generation = w.generation }
          changed = true
        else
          lines[#lines + 1] = { error = string.format("xnat hub/%s: %s; the hub keeps its credential", w.url, perr) }
          ok = false
        end
      end
    elseif opts.dry_run then
      result = "created"
    else
      local body = { name = w.url, url = w.url, username = w.username, password = w.password,
                     email = null_or(w.email), token = json.null }
      local made, perr = c:json("POST", "/xapi/docker/hubs", { body = body, what = "create a hub (POST /xapi/docker/hubs)" })
      if made then
        result = "created"
        local id = type(made) == "table" and math.tointeger(made.id)
        if id then record[w.url] = { id = id, username = w.username, generation = w.generation } end
        changed = true
      else
        lines[#lines + 1] = { error = string.format("xnat hub/%s: %s", w.url, perr) }
        ok = false
      end
    end
    if result then lines[#lines + 1] = { text = "xnat hub/" .. w.url .. " " .. result .. suffix } end
    local id = record[w.url] and record[w.url].id
    if id and not opts.dry_run and (result == "created" or result == "configured") then
      -- verified as ref §5 says: the hub's ping (a warning: the change is made)
      local ping = c:json("GET", string.format("/xapi/docker/hubs/%d/ping", id))
      if type(ping) == "table" and ping.ping == false then
        log.warn("xnat hub/%s: XNAT's ping answers %s: %s", w.url, tostring(ping.response),
          log.redact(tostring(ping.message), 200))
      end
    end
  end
  if changed then
    local wok, werr = write_record(opts.state_file, record)
    if not wok then
      lines[#lines + 1] = { error = "xnat: cannot keep the record of the hubs written: " .. werr }
      ok = false
    end
  end
  return lines, ok
end

-- Where xcsreg keeps its record of the hubs it wrote: xnat.state_file, else
-- beside the lock (--lock's directory, or the default lock's: a directory
-- only the runner may write to); none with --lock none.
local function state_file(cfg, lock)
  if cfg.state_file then return cfg.state_file end
  if lock == "none" then return nil end
  if lock then return (lock:match("^(.*)/") or ".") .. "/xnat-hubs.json" end
  for _, p in ipairs(runlock.candidates(os.getenv)) do
    local dir = p:match("^(.*)/")
    if file.private_dir(dir) then return dir .. "/xnat-hubs.json" end
  end
end

-- setup.lua's step after the Secrets (xcsreg.reconcile): XNAT's backend
-- read (ref §2); on Docker and Swarm, or with hubs = "always", the hubs
-- upserted with creds (what the Secrets hold after this run); on
-- Kubernetes hubs have no effect (ref §1, "Hubs are ignored") and are left
-- alone. opts: dry_run, quiet, lock (--lock). Output as setup.lua's, errors
-- to stderr. Returns the exit code: 0, or 1 when XNAT could not be asked
-- or a hub could not be written (the Secrets are done either way).
function hubs.step(cfg, creds, opts)
  local c <close>, err = xnat.client(cfg)
  if not c then
    log.error("xnat: %s; image hubs not updated", err)
    return 1
  end
  local backend, server = c:backend()
  if not backend then
    log.error("%s; image hubs not updated", server)
    return 1
  end
  log.debug("xnat %s: backend %s", cfg.url, backend)
  if cfg.hubs ~= "always" and backend ~= "docker" and backend ~= "swarm" then
    if not opts.quiet then
      print(string.format("xnat: backend %s: image hubs are not used there, not managed (xnat.hubs = \"always\" "
        .. "would)", backend))
    end
    return 0
  end
  if backend == "docker" then
    log.info("xnat: backend docker: job launches pull with the Tomcat user's docker config.json, not with hubs; "
      .. "hubs serve admin pulls and pre-pulls (/xapi/docker/hubs/{id}/pull)")
  end
  local want, werr = hubs.wanted(cfg, creds)
  if not want then
    log.error("%s", werr)
    return 1
  end
  local lines, ok = hubs.sync(c, want, { dry_run = opts.dry_run, state_file = state_file(cfg, opts.lock) })
  for _, line in ipairs(lines) do
    if line.error then
      log.error("%s", line.error)
    elseif not opts.quiet then
      print(line.text)
    end
  end
  log.debug("%d request(s) to XNAT %s", c.requests, cfg.url)
  return ok and 0 or 1
end

return hubs
