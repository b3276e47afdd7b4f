-- xcsreg.credentials: where a registry password comes from.
--
-- Each source is a key of a registry entry; `read` gets that key's value and
-- returns the password, or nil and a message. Every password is registered
-- with log.secret the moment it is read, so no log line or error can show
-- it. Passwords never travel in the argv of a child process.
local log = require "log"
local proc = require "proc"

local credentials = {}

-- Trailing newlines (from `echo`, editors, `pass show`) are not part of a password.
local function chomp(s) return (s:gsub("[\r\n]+$", "")) end

local function nonempty(password, what)
  if password == "" then return nil, what end
  return log.secret(password)
end

credentials.sources = {
  -- the site file's keys
  password_env = function(name)
    local v = os.getenv(name)
    if v == nil then return nil, "environment variable " .. name .. " is not set" end
    return nonempty(chomp(log.secret(v)), "environment variable " .. name .. " is empty")
  end,
  password_file = function(path)
    local f, err = io.open(path, "rb")
    if not f then return nil, "cannot read " .. err end
    local v, rerr = f:read("a")
    f:close()
    if not v then return nil, "cannot read " .. path .. ": " .. tostring(rerr) end
    return nonempty(chomp(log.secret(v)), path .. " is empty")
  end,
  password_command = function(argv)
    local status, out, err = proc.run { argv = argv, timeout = 60 }
    if not status then return nil, out end -- proc's message names the command
    log.secret(out)
    if status ~= 0 then
      local first = (err:match("[^\n]*")):sub(1, 200)
      return nil, string.format("%s exited with status %d%s", argv[1], status,
        first ~= "" and ": " .. first or "")
    end
    return nonempty(chomp(out), argv[1] .. " printed nothing")
  end,
  -- the command line's only
  password_stdin = function()
    local v = io.stdin:read("a") or ""
    return nonempty(chomp(log.secret(v)), "standard input is empty")
  end,
  password = function(v) return nonempty(log.secret(v), "the password is empty") end,
}

-- The keys of a site file entry that name a password source.
credentials.file_keys = { "password_env", "password_file", "password_command" }

function credentials.read(key, value)
  return credentials.sources[key](value)
end

return credentials
