-- xcsreg.rotation: when a Secret's minted credentials are due for renewal,
-- and the record of it kept on the Secret:
--   xcsreg.io/rotated-at   when its content was last written (RFC 3339, UTC)
--   xcsreg.io/expires-at   the earliest expiry of its registries' credentials,
--                          where the sources know it
-- A credential from xcsreg.sources is minted again when the stored one has
-- less than half of its lifetime (expires-at minus rotated-at) left, or less
-- than the entry's refresh_before; otherwise the stored one is used as it
-- is, and the source is not asked at all. Static passwords are read every
-- run; writing only what differs is xcsreg.secrets' job.
local time = require "xcsreg.time"
local dockerconfigjson = require "xcsreg.dockerconfigjson"
local log = require "log"
local secrets = require "xcsreg.secrets"
local sources = require "xcsreg.sources"

local rotation = {}

rotation.ROTATED_AT = "xcsreg.io/rotated-at"
rotation.EXPIRES_AT = "xcsreg.io/expires-at"

local function annotation(obj, key)
  local annotations = obj and obj.metadata.annotations
  return annotations and time.parse(annotations[key])
end

-- The expiry recorded on a stored Secret (or false: none), or nil.
function rotation.expires_at(obj) return annotation(obj, rotation.EXPIRES_AT) end

-- The annotations of a Secret written at `now`.
function rotation.annotations(now, expires_at)
  return { [rotation.ROTATED_AT] = time.format(now),
           [rotation.EXPIRES_AT] = expires_at and time.format(expires_at) or nil }
end

-- The auths of a stored Secret's .dockerconfigjson by server, or {}.
local function stored_auths(obj)
  local auths = obj and obj.data and dockerconfigjson.decode(obj.data[".dockerconfigjson"])
  return auths or {}
end

-- Why Secret s (a plan entry) needs its minted credentials minted again,
-- given the stored Secret obj (false: none) and its auths, or nil when the
-- stored ones serve.
local function due(s, obj, auths, now, force)
  if not obj then return "no Secret yet" end
  if not secrets.managed(obj) then return "the Secret was not made by xcsreg" end
  if force then return "--force-rotate" end
  local count, refresh_before = 0, 0
  for _ in pairs(auths) do count = count + 1 end
  for _, r in ipairs(s.registries) do
    local a = auths[r.server]
    local usable = type(a) == "table" and type(a.username) == "string" and type(a.password) == "string"
      and a.password ~= ""
    if not usable or (r.username and a.username ~= r.username) then return "its registries or users changed" end
    refresh_before = math.max(refresh_before, r.refresh_before or 0)
  end
  if count ~= #s.registries then return "its registries or users changed" end
  local rotated, expires = annotation(obj, rotation.ROTATED_AT), rotation.expires_at(obj)
  if not rotated or not expires or expires <= rotated then return "no recorded lifetime" end
  local left = expires - now
  if left < (expires - rotated) / 2 then return "less than half of its lifetime left" end
  if left < refresh_before then return "less than refresh_before left" end
end

-- Why Secret s's minted credentials are due, given the stored Secret obj
-- (false: none), or nil: the check rotation.credentials makes, for a
-- controller that decides whether to write at all.
function rotation.due(s, obj, now)
  return due(s, obj, stored_auths(obj), now, false)
end

-- When the stored Secret obj's minted credentials fall due (the first
-- whole second at which rotation.due says so), or nil when it records no
-- lifetime.
function rotation.due_at(s, obj)
  local rotated, expires = annotation(obj, rotation.ROTATED_AT), rotation.expires_at(obj)
  if not rotated or not expires or expires <= rotated then return nil end
  local refresh_before = 0
  for _, r in ipairs(s.registries) do refresh_before = math.max(refresh_before, r.refresh_before or 0) end
  return math.floor(math.min(rotated + (expires - rotated) / 2, expires - refresh_before)) + 1
end

-- The registries of Secret s with their credentials, for a write at `now`:
-- static passwords as read, minted ones from the stored Secret obj when it
-- is not due, else from their source (once per run). Returns the list and
-- the earliest known expiry, or nil and why not.
function rotation.credentials(s, obj, now, force)
  local auths, reason
  local list, expires_at = {}, nil
  for i, r in ipairs(s.registries) do
    local c = { server = r.server, username = r.username, password = r.password, email = r.email,
                ca_file = r.ca_file, insecure = r.insecure }
    if r.source then
      if reason == nil then
        auths = stored_auths(obj)
        reason = due(s, obj, auths, now, force) or false
      end
      local expiry
      if reason then
        log.debug("secret/%s: minting the credential of %s (%s)", s.name, r.server, reason)
        local cred, err = sources.get(r.source, { now = now })
        if not cred then return nil, err end
        if cred.password == "" then return nil, sources.kind(r.source) .. ": the password is empty" end
        if cred.username:find(":", 1, true) then
          return nil, sources.kind(r.source) .. ": the user name contains ':'"
        end
        if r.username and cred.username ~= r.username then
          return nil, string.format("%s: the credential is for user %s, not %s as the site file says",
            sources.kind(r.source), cred.username, r.username)
        end
        c.username, c.password, expiry = cred.username, cred.password, cred.expires_at
      else
        c.username, c.password, expiry = auths[r.server].username, auths[r.server].password, rotation.expires_at(obj)
      end
      if expiry and (not expires_at or expiry < expires_at) then expires_at = expiry end
    end
    list[i] = c
  end
  return list, expires_at
end

-- What to say when the Secret stored as obj (false: none) is kept because
-- `why`: "refresh failed (why); the current credential expires in 3h12m".
function rotation.kept(obj, why, now)
  if not obj then return "not created: " .. why end
  local expires = rotation.expires_at(obj)
  local msg = "refresh failed (" .. why .. "); "
  if not expires then return msg .. "the Secret in the cluster is kept" end
  if expires >= now then return msg .. "the current credential expires in " .. time.format_duration(expires - now) end
  return msg .. "the current credential expired " .. time.format_duration(now - expires) .. " ago"
end

return rotation
