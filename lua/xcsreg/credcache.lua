-- xcsreg.credcache: minted credentials kept on local disk between runs, for
-- credential-provider.lua. The kubelet runs the plugin once per image it has
-- no cached answer for; without this every such run would ask ECR or GCP
-- again. One file per credential, in a directory only the runner owns and
-- may write to (file.private_dir: 0700, not a symlink, owned by this user),
-- each file mode 0600 and written by file.replace (a new file renamed over
-- the old one: a reader sees the old credential or the new one, never half).
--
--   credcache.open(dir) -> cache | false ("none") | nil, message
--   cache:get(id, now, margin) -> { username, password, expires_at, minted_at } | nil, why
--       a credential stored under exactly id (the file holds the whole id,
--       so a name collision never serves another registry's credential),
--       served while less than half of its lifetime has passed and more
--       than margin seconds are left; a file that is unreadable, not JSON,
--       of another id or with fields of the wrong type is ignored (why says
--       which) and replaced by the next put.
--   cache:put(id, cred, now) -> true | nil, message   (only credentials
--       with an expires_at are worth keeping; others are not stored)
--   cache:lock(timeout) -> lock | nil, message   one minting at a time, so
--       that the kubelet's calls for many images at once mint once.
local file = require "file"
local json = require "json"
local log = require "log"
local proc = require "proc"
local runlock = require "xcsreg.runlock"

local credcache = {}
local Cache = {}
Cache.__index = Cache

credcache.VERSION = 1

-- Where the cache is when --cache-dir does not say: /var/cache/xcsreg for
-- root (the kubelet runs its plugins as root), else /tmp/xcsreg-UID/cache.
function credcache.default_dir()
  if runlock.uid() == "0" then return "/var/cache/xcsreg" end
  return "/tmp/xcsreg-" .. runlock.uid() .. "/cache"
end

function credcache.open(dir)
  if dir == "none" then return false end
  local parent = dir:match("^(.+)/[^/]+$")
  if parent and parent:match("^/tmp/xcsreg%-") then
    local ok, err = file.private_dir(parent)
    if not ok then return nil, err end
  end
  local ok, err = file.private_dir(dir)
  if not ok then return nil, err end
  return setmetatable({ dir = dir }, Cache)
end

-- FNV-1a, 64 bits, as 16 hex digits: a file name for any id.
local function fnv1a(s)
  local h = -3750763034362895579 -- 0xcbf29ce484222325
  for i = 1, #s do
    h = h ~ s:byte(i)
    h = h * 1099511628211
  end
  return string.format("%016x", h)
end

function Cache:path(id) return self.dir .. "/cred-" .. fnv1a(id) .. ".json" end

function Cache:get(id, now, margin)
  local f = io.open(self:path(id), "rb")
  if not f then return nil, "not cached" end
  local text = f:read("a")
  f:close()
  local doc = json.decode(text or "")
  if type(doc) ~= "table" or doc.version ~= credcache.VERSION or type(doc.id) ~= "string"
    or type(doc.username) ~= "string" or type(doc.password) ~= "string" or doc.password == ""
    or math.type(doc.expires_at) ~= "integer" or math.type(doc.minted_at) ~= "integer" then
    return nil, "the cache file is not one of ours: ignored"
  end
  log.secret(doc.password)
  if doc.id ~= id then return nil, "the cache file holds another credential: ignored" end
  if doc.expires_at - now <= (margin or 0) then return nil, "the cached credential expires too soon" end
  if now - doc.minted_at >= (doc.expires_at - doc.minted_at) / 2 then
    return nil, "half of the cached credential's lifetime is past"
  end
  return { username = doc.username, password = doc.password, expires_at = doc.expires_at,
           minted_at = doc.minted_at }
end

function Cache:put(id, cred, now)
  if not cred.expires_at then return true end
  local text = json.encode { version = credcache.VERSION, id = id, username = cred.username,
                             password = cred.password, expires_at = cred.expires_at, minted_at = now }
  return file.replace(self:path(id), text, { mode = tonumber("600", 8) })
end

function Cache:lock(timeout)
  return proc.lock(self.dir .. "/lock", { timeout = timeout })
end

return credcache
