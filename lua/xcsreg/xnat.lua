-- xcsreg.xnat: a client of XNAT's REST API, for what xcsreg needs of the
-- Container Service: which backend runs the jobs, which images its commands
-- run, and its image hubs (xcsreg.hubs writes those). Facts and their
-- sources: ../shared/reference/xnat.md (cited below as "ref §N").
--
--   xnat.check(t)          the site file's `xnat` table, checked: cfg | nil, message
--   xnat.client(cfg)       a client (the password read now) | nil, message
--   c:json(method, path [, {query =, body =, what =}]) -> value, status | nil, message, status
--   c:backend()            "docker" | "swarm" | "kubernetes" | "unknown", server | nil, message
--   c:commands()           the installed commands, wrappers' enablement | nil, message
--   c:close()              ends XNAT's session (also <close>)
--   xnat.command_images(commands) -> { {command, id, type, version, image, via}, ... }
--
-- Authentication (ref §6): HTTP Basic with a localdb account or an alias
-- token (alias:secret). Each Basic request makes XNAT create a session, so
-- the first request of a run goes with Basic and every later one with the
-- JSESSIONID XNAT set (kept for the run; one Basic retry when XNAT has
-- dropped it), and close ends it (DELETE /data/JSESSION). XAPI does no
-- CSRF check; the legacy check skips non-browser User-Agents, and ours is
-- "xcsreg/0.1". All requests share the http module's one libcurl handle,
-- so they reuse one connection. Errors name the call, XNAT's status and
-- its message (error bodies are empty or plain text, ref §6), cut to
-- MAX_MESSAGE bytes; no answer is read past MAX_BODY bytes. No password
-- appears in any message: it is registered with log.secret when read.
local credentials = require "xcsreg.credentials"
local http = require "http"
local json = require "json"
local log = require "log"

local xnat = {}

xnat.USER_AGENT = "xcsreg/0.1"
xnat.MAX_BODY = 16 * 1024 * 1024 -- a site with thousands of commands stays well below
local MAX_MESSAGE = 200
xnat.HUBS_MODES = { ["true"] = true, ["false"] = true, always = true }

local KEYS = { url = true, username = true, password_env = true, password_file = true, password_command = true,
               ca_file = true, hubs = true, state_file = true, timeout = true }

local function check_string(v)
  if type(v) ~= "string" then return "must be a string, not " .. type(v) end
  if v == "" then return "must not be empty" end
end

-- The site file's xnat table: { url = "https://xnat.example.org", username =,
-- one of password_env/_file/_command (read as registry passwords are,
-- xcsreg.credentials), ca_file =, hubs = false | true | "always" | { server,
-- ... }, state_file =, timeout = seconds }. Returns a copy with url's
-- trailing "/" dropped | nil, "xnat.FIELD: message".
function xnat.check(t)
  if type(t) ~= "table" then return nil, "xnat: must be a table, not " .. type(t) end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    if not KEYS[k] then return nil, string.format("xnat: unknown key %q", k) end
  end
  for _, k in ipairs { "url", "username" } do
    if t[k] == nil then return nil, "xnat." .. k .. ": missing" end
    local err = check_string(t[k])
    if err then return nil, "xnat." .. k .. ": " .. err end
  end
  if not t.url:find("^https://[^/]") then
    -- the password goes with every Basic request: never in cleartext
    return nil, "xnat.url: must be an https:// URL (XNAT's password is sent with it)"
  end
  if t.username:find(":", 1, true) then return nil, "xnat.username: must not contain ':' (HTTP Basic)" end
  local given = {}
  for _, k in ipairs(credentials.file_keys) do
    if t[k] ~= nil then given[#given + 1] = k end
  end
  if #given == 0 then return nil, "xnat: missing password: give password_env, password_file or password_command" end
  if #given > 1 then return nil, string.format("xnat: %s and %s both given: give only one", given[1], given[2]) end
  local source = given[1]
  if source == "password_command" then
    local v = t[source]
    if type(v) ~= "table" or #v == 0 then return nil, "xnat.password_command: must be a list of strings" end
    for _, a in ipairs(v) do
      if type(a) ~= "string" then return nil, "xnat.password_command: must be a list of strings" end
    end
  else
    local err = check_string(t[source])
    if err then return nil, "xnat." .. source .. ": " .. err end
  end
  for _, k in ipairs { "ca_file", "state_file" } do
    local err = t[k] ~= nil and check_string(t[k])
    if err then return nil, "xnat." .. k .. ": " .. err end
  end
  if t.timeout ~= nil and (type(t.timeout) ~= "number" or t.timeout <= 0) then
    return nil, "xnat.timeout: must be a number of seconds above 0"
  end
  local hubs = t.hubs
  if hubs == nil then hubs = false end
  if type(hubs) == "table" then
    if #hubs == 0 then return nil, "xnat.hubs: must be true, false, \"always\" or a non-empty list of registry servers" end
    for i, s in ipairs(hubs) do
      if type(s) ~= "string" or s == "" then return nil, string.format("xnat.hubs[%d]: must be a registry server", i) end
    end
  elseif not xnat.HUBS_MODES[tostring(hubs)] then
    return nil, "xnat.hubs: must be true, false, \"always\" or a list of registry servers, not " .. tostring(hubs)
  end
  return { url = t.url:gsub("/+$", ""), username = t.username, source = source, source_value = t[source],
           ca_file = t.ca_file, hubs = hubs, state_file = t.state_file, timeout = t.timeout or 30 }
end

-- XNAT's message of an error answer: its text, on one line, cut.
local function message_of(body)
  local text = (body or ""):gsub("%s+", " "):match("^%s*(.-)%s*$")
  if text:find("^<") then text = text:match("<title>(.-)</title>") or "an HTML page" end
  return log.redact(text, MAX_MESSAGE)
end

local Client = {}
Client.__index = Client
Client.__close = function(c) c:close() end

-- One request: status, body | nil, message. opts: query (a table), body (a
-- table, sent as JSON), what (how the call is named in messages).
function Client:request(method, path, opts)
  opts = opts or {}
  local url = self.url .. path
  if opts.query then
    local parts = {}
    for k, v in pairs(opts.query) do
      parts[#parts + 1] = k .. "=" .. tostring(v):gsub("[^%w%-%._~]", function(ch)
        return string.format("%%%02X", ch:byte())
      end)
    end
    table.sort(parts)
    url = url .. "?" .. table.concat(parts, "&")
  end
  local what = opts.what or (method .. " " .. path)
  for attempt = 1, 2 do
    local headers = { ["User-Agent"] = xnat.USER_AGENT, Accept = "application/json" }
    local basic
    if self.session then
      headers.Cookie = "JSESSIONID=" .. self.session
    else
      basic = { self.username, self.password }
    end
    local body
    if opts.body ~= nil then
      body = json.encode(opts.body)
      headers["Content-Type"] = "application/json"
    end
    log.debug("xnat: %s %s", method, url)
    self.requests = self.requests + 1
    local status, rheaders, rbody = http.request { url = url, method = method, headers = headers, body = body,
      basic_auth = basic, ca_file = self.ca_file, timeout = self.timeout, connect_timeout = 10,
      max_body = xnat.MAX_BODY }
    if not status then return nil, string.format("XNAT %s: %s: %s", self.url, what, rheaders) end
    local cookie = (rheaders["set-cookie"] or ""):match("JSESSIONID=([^;,%s]+)")
    if cookie then self.session = log.secret(cookie) end
    -- a session XNAT has dropped: once more with Basic
    if status == 401 and self.session and not basic and attempt == 1 then
      self.session = nil
    else
      if status >= 400 then
        local msg = message_of(rbody)
        local hint = ""
        if status == 401 then
          hint = string.format(" (user %s: wrong password or alias token, or the token expired)", self.username)
        elseif status == 403 then
          hint = string.format(" (user %s lacks the role: from Container Service 3.7 a ContainerManager, before it "
            .. "an Admin)", self.username)
        end
        return nil, string.format("XNAT %s: %s: HTTP %d%s%s", self.url, what, status, msg ~= "" and ": " .. msg or "",
          hint), status
      end
      return status, rbody
    end
  end
end

-- A request whose answer is JSON (or empty): value (json.null when empty),
-- status | nil, message, status.
function Client:json(method, path, opts)
  local status, body, code = self:request(method, path, opts)
  if not status then return nil, body, code end
  if body == nil or body:match("^%s*$") then return json.null, status end
  local v, err = json.decode(body)
  if v == nil then
    return nil, string.format("XNAT %s: %s: HTTP %d: not JSON (%s)", self.url, (opts and opts.what) or method .. " " .. path,
      status, err)
  end
  return v, status
end

-- Which backend runs the jobs (ref §2): GET /xapi/docker/server's
-- "backend", or, before CS 3.2.0, "swarm-mode". Returns the backend
-- ("docker", "swarm", "kubernetes" or "unknown") and the server object | nil, message.
function Client:backend()
  local server, err = self:json("GET", "/xapi/docker/server", { what = "read the container server (GET /xapi/docker/server)" })
  if not server then return nil, err end
  if type(server) ~= "table" then return nil, "XNAT " .. self.url .. ": GET /xapi/docker/server: not an object" end
  local b = server.backend
  if b == nil or b == json.null then b = server["swarm-mode"] == true and "swarm" or "docker" end
  if b ~= "docker" and b ~= "swarm" and b ~= "kubernetes" then b = "unknown" end
  return b, server
end

local function str(v) return type(v) == "string" and v or nil end

-- The installed commands (ref §3): GET /xapi/commands, all of them (a
-- ContainerManager sees every one, ref §3 "Visibility filter"), each
-- { id, name, version, image, type, visibility, wrappers = { { id, name,
-- enabled (for the site; nil when XNAT would not say), projects = {...} or
-- nil } }, via = { image... } (the images its wrappers' setup and wrapup
-- commands run) }. Enablement is read per wrapper (ref §4:
-- GET /xapi/wrappers/{id}/enabled and, from 3.7.0, /projects); it is
-- reported only: a disabled wrapper still launches (ref §3).
function Client:commands()
  local list, err = self:json("GET", "/xapi/commands", { what = "list the commands (GET /xapi/commands)" })
  if not list then return nil, err end
  if json.kind(list) ~= "array" then return nil, "XNAT " .. self.url .. ": GET /xapi/commands: not an array" end
  local out = {}
  for _, c in ipairs(list) do
    if type(c) == "table" then
      local cmd = { id = math.tointeger(c.id), name = str(c.name) or "?", version = str(c.version),
                    image = str(c.image), type = str(c.type) or "docker", visibility = str(c.visibility) or "public",
                    wrappers = {}, via = {} }
      for _, w in ipairs(type(c.xnat) == "table" and c.xnat or {}) do
        if type(w) == "table" then
          local wrapper = { id = math.tointeger(w.id), name = str(w.name) or "?" }
          if wrapper.id then
            local on, _, code = self:json("GET", string.format("/xapi/wrappers/%d/enabled", wrapper.id))
            if on == true or on == false then wrapper.enabled = on end
            if code == 403 then self.not_manager = true end
            local projects = self:json("GET", string.format("/xapi/wrappers/%d/projects", wrapper.id))
            if json.kind(projects) == "array" then wrapper.projects = projects end
          end
          cmd.wrappers[#cmd.wrappers + 1] = wrapper
          for _, group in ipairs { { w["external-inputs"], "via-setup-command" }, { w["derived-inputs"], "via-setup-command" },
                                   { w["output-handlers"], "via-wrapup-command" } } do
            for _, item in ipairs(type(group[1]) == "table" and group[1] or {}) do
              local via = type(item) == "table" and str(item[group[2]])
              if via then
                -- "repo/image:tag[:commandName]": XNAT takes the first two
                -- ":"-parts as the image (ref §3, DockerServiceImpl.getCommandByImage)
                local a, b = via:match("^([^:]+):([^:]+)")
                cmd.via[#cmd.via + 1] = a and (a .. ":" .. b) or via
              end
            end
          end
        end
      end
      out[#out + 1] = cmd
    end
  end
  if self.not_manager then
    -- ref §3 "Visibility filter", §4: the list may lack private commands
    log.warn("XNAT %s: user %s is not a ContainerManager: XNAT hides private commands from it, and whether "
      .. "wrappers are enabled is unknown", self.url, self.username)
  end
  return out
end

-- Every image XNAT may run for these commands (ref §3 "Images to cover"):
-- each command's image, setup and wrapup types included, then any image a
-- wrapper names as its setup or wrapup command that no command has; one
-- entry per command and image: { command, id, type, version, image, via
-- (the command naming it, for those), enabled (any wrapper enabled for the
-- site; nil when unknown), projects }.
function xnat.command_images(commands)
  local list, have = {}, {}
  for _, c in ipairs(commands) do
    if c.image then
      local enabled, projects = nil, {}
      for _, w in ipairs(c.wrappers) do
        if w.enabled ~= nil then enabled = enabled or w.enabled end
        for _, p in ipairs(w.projects or {}) do projects[#projects + 1] = p end
      end
      list[#list + 1] = { command = c.name, id = c.id, type = c.type, version = c.version, image = c.image,
                          enabled = enabled, projects = projects, wrappers = c.wrappers }
      have[c.image] = true
    end
  end
  for _, c in ipairs(commands) do
    for _, image in ipairs(c.via) do
      if not have[image] then
        have[image] = true
        list[#list + 1] = { command = c.name, id = c.id, type = "setup/wrapup of " .. c.name, image = image,
                            via = c.name, projects = {}, wrappers = {} }
      end
    end
  end
  return list
end

-- Ends XNAT's session: DELETE /data/JSESSION (ref §6). Idempotent.
function Client:close()
  if self.session and not self.closed then
    self.closed = true
    local status = http.request { url = self.url .. "/data/JSESSION", method = "DELETE",
      headers = { ["User-Agent"] = xnat.USER_AGENT, Cookie = "JSESSIONID=" .. self.session },
      ca_file = self.ca_file, timeout = 10, connect_timeout = 10, max_body = 4096 }
    self.requests = self.requests + 1
    if not status then log.debug("xnat: could not end the session") end
  end
  self.closed = true
end

-- A client of cfg (xnat.check's): its password read now, from its source,
-- as a registry's is (xcsreg.credentials: same limits, registered as a
-- secret). Returns the client | nil, message. Raises on misuse.
function xnat.client(cfg)
  if type(cfg) ~= "table" or type(cfg.url) ~= "string" then error("xnat.client: a checked xnat table expected", 2) end
  local password, err = credentials.read(cfg.source, cfg.source_value)
  if not password then return nil, "xnat." .. cfg.source .. ": " .. err end
  return setmetatable({ url = cfg.url, username = cfg.username, password = password, ca_file = cfg.ca_file,
                        timeout = cfg.timeout or 30, requests = 0 }, Client)
end

return xnat
