-- xcsreg.credentials: where a registry password comes from.
--
-- Each source is a key of a registry entry; `read` gets that key's value and
-- returns the password, or nil and a message. Every password is registered
-- with log.secret the moment it is read, so no log line or error can show
-- it. Passwords never travel in the argv of a child process.
local log = require "log"
local proc = require "proc"
local site = require "site"

local credentials = {}

-- The most bytes read for a password, from any source. Registry passwords
-- and tokens are bytes to a few KB (an ECR token ~3 KB, a JWT ~1-8 KB); a
-- Secret holds at most 1 MiB in all, and each password is in it twice
-- (base64 of base64), so more is a mistake, refused here rather than by the
-- API server after the other Secrets were written.
credentials.MAX_PASSWORD_BYTES = 64 * 1024
local MAX = credentials.MAX_PASSWORD_BYTES

-- Trailing newlines (from `echo`, editors, `pass show`) are not part of a password.
local function chomp(s) return (s:gsub("[\r\n]+$", "")) end

-- source: where the password came from, to name it in a warning.
local function nonempty(password, what, source)
  if password == "" then return nil, what end
  if #password < log.SHORT_SECRET then
    -- log.c hides so short a secret only where it is a whole word: "p"
    -- must not turn every "expand" into "ex***and"
    log.warn("%s: the password is weak (%d bytes; fewer than %d are hidden in messages only as a whole word): "
      .. "use a longer one", source, #password, log.SHORT_SECRET)
  end
  return log.secret(password)
end

local function too_large(what) return nil, ("%s is larger than %d bytes"):format(what, MAX) end

credentials.sources = {
  -- the site file's keys
  password_env = function(name)
    local v = os.getenv(name)
    if v == nil then return nil, "environment variable " .. name .. " is not set" end
    log.secret(v)
    if #v > MAX then return too_large("environment variable " .. name) end
    return nonempty(chomp(v), "environment variable " .. name .. " is empty", "environment variable " .. name)
  end,
  password_file = function(path)
    -- refused unread when too large; a warning when other users can read it
    local v, err = site.read_secret(path, { max_bytes = MAX, what = "password file" })
    if not v then return nil, err end
    return nonempty(chomp(log.secret(v)), path .. " is empty", path)
  end,
  password_command = function(argv)
    local status, out, err = proc.run { argv = argv, timeout = 60, max_output = MAX }
    if not status then return nil, out end -- proc's message names the command
    log.secret(out)
    if status ~= 0 then
      local first = log.redact(err:match("[^\n]*"), 200) -- redacted, then cut
      return nil, string.format("%s exited with status %d%s", argv[1], status,
        first ~= "" and ": " .. first or "")
    end
    return nonempty(chomp(out), argv[1] .. " printed nothing", argv[1])
  end,
  -- the command line's only
  password_stdin = function()
    local v = log.secret(io.stdin:read(MAX + 1) or "")
    if #v > MAX then return too_large("standard input") end
    return nonempty(chomp(v), "standard input is empty", "standard input")
  end,
  password = function(v)
    log.secret(v)
    if #v > MAX then return too_large("the password") end
    return nonempty(v, "the password is empty", "--docker-password")
  end,
}

-- The keys of a site file entry that name a password source.
credentials.file_keys = { "password_env", "password_file", "password_command" }

-- Keeps every variable the entries name as a password source (password_env)
-- out of the environment of every command the run starts (proc.hide_env):
-- a password_command, a credential helper or an exec plugin has no
-- business with another registry's password. Called with all the entries
-- before any password is read, so that the first entry's command does not
-- see the second's.
function credentials.hide_env(entries)
  for _, e in ipairs(entries) do
    local name = type(e) == "table" and e.password_env
    if type(name) == "string" and name ~= "" and not name:find("[=%z]") then proc.hide_env(name) end
  end
end

function credentials.read(key, value)
  return credentials.sources[key](value)
end

return credentials
