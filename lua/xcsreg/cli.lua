-- xcsreg.cli: kubectl-style flag parsing for the shipped scripts.
--
-- A flag spec is a list of { long = "namespace", short = "n", arg = "NS",
-- repeated = true, help = "..." }. Flags with `arg` take a value, given as
-- `--flag value`, `--flag=value`, `-n value`, `-n=value` or `-nvalue`; the
-- others are booleans (`--adopt`, `--adopt=false`). A repeated flag collects
-- its values in a list; any other flag keeps its last value, as kubectl does.
-- `--` ends the flags.
local cli = {}

local function find(spec, key, field)
  for _, f in ipairs(spec) do
    if f[field] == key then return f end
  end
end

local function set(opts, f, value)
  if f.repeated then
    opts[f.long] = opts[f.long] or {}
    table.insert(opts[f.long], value)
  else
    opts[f.long] = value
  end
end

-- Returns opts (keyed by long name), positional arguments | nil, message.
function cli.parse(spec, args)
  local opts, positional = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local f, name, value
    if a == "--" then
      table.move(args, i + 1, #args, #positional + 1, positional)
      break
    elseif a:sub(1, 2) == "--" then
      name, value = a:match("^%-%-([^=]+)=(.*)$")
      name = name or a:sub(3)
      f = find(spec, name, "long")
      name = "--" .. name
    elseif a:sub(1, 1) == "-" and #a > 1 then
      name = a:sub(2, 2)
      f = find(spec, name, "short")
      if #a > 2 then value = a:sub(3):gsub("^=", "") end
      -- -vvv is -v -v -v, as kubectl's (pflag's) count flags
      if f and f.repeated and not f.arg and a:find("^%-" .. name .. "+$") then
        for _ = 3, #a do set(opts, f, true) end
        value = nil
      end
      name = "-" .. name
    else
      positional[#positional + 1] = a
    end
    if name and not f then return nil, "unknown flag: " .. name end
    if f and f.arg then
      if value == nil then
        i = i + 1
        value = args[i]
        if value == nil then return nil, "flag needs an argument: " .. name end
      end
      set(opts, f, value)
    elseif f then
      if value == nil or value == "true" then
        set(opts, f, true)
      elseif value == "false" then
        set(opts, f, false)
      else
        return nil, string.format('invalid argument "%s" for "%s": want true or false', value, name)
      end
    end
    i = i + 1
  end
  return opts, positional
end

-- The value of --`name`, a number of seconds above 0 and at most a day,
-- or `default` when absent: seconds | nil, message.
function cli.seconds(opts, name, default)
  local v = opts[name]
  local n = tonumber(v or default)
  if not n or not (n > 0 and n <= 86400) then
    return nil, string.format('--%s: must be a number of seconds, above 0 and at most a day, not "%s"', name, v)
  end
  return n
end

-- The arguments that cli.parse(spec, ...) makes opts of again: one
-- `--long=value` per value, in spec order; for starting a script anew.
function cli.args(spec, opts)
  local args = {}
  for _, f in ipairs(spec) do
    local v = opts[f.long]
    for _, value in ipairs(f.repeated and v or { v }) do
      args[#args + 1] = "--" .. f.long .. "=" .. tostring(value)
    end
  end
  return args
end

-- The "Options:" block of a --help text.
function cli.help(spec)
  local lines = {}
  for _, f in ipairs(spec) do
    local left = (f.short and "-" .. f.short .. ", " or "    ") .. "--" .. f.long
    if f.arg then left = left .. " " .. f.arg end
    lines[#lines + 1] = string.format("  %-32s %s", left, f.help)
  end
  return table.concat(lines, "\n")
end

return cli
