-- xcsreg.time: the clock of the whole workflow, and the two ways xcsreg
-- writes time: RFC 3339 (UTC, as Kubernetes' metav1.Time marshals it) on
-- Secrets and in reports, and short durations ("2h", "90m", "3d") in site
-- files, flags and messages.
local time = {}

-- Now, in epoch seconds. XCSREG_NOW (epoch seconds) stands in for the
-- clock: a testing hook, so that tests can play cron. Sources, rotation and
-- reports all read the time here, so one variable moves all of them.
function time.now()
  local fake = os.getenv("XCSREG_NOW")
  return fake and math.tointeger(tonumber(fake)) or os.time()
end

-- Why XCSREG_NOW cannot be used, or nil.
function time.check_clock()
  local fake = os.getenv("XCSREG_NOW")
  if fake and not math.tointeger(tonumber(fake)) then
    return string.format('XCSREG_NOW: must be a whole number of seconds since the epoch, not "%s"', fake)
  end
end

function time.format(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

-- Epoch seconds of a "YYYY-MM-DDTHH:MM:SSZ" time, or nil. (os.time reads
-- local time: the days are counted here, after Howard Hinnant's days_from_civil.)
function time.parse(s)
  local y, mo, d, h, mi, sec = tostring(s):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)Z$")
  if not y then return nil end
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo > 2 and mo - 3 or mo + 9) + 2) // 5 + tonumber(d) - 1
  local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

local UNITS = { s = 1, m = 60, h = 3600, d = 86400 }

-- Seconds from a number of seconds or a string like "2h", "90m", "1h30m",
-- "3d"; nil for nil; nil, message for anything else.
function time.parse_duration(v)
  if v == nil then return nil end
  if math.type(v) == "integer" and v > 0 then return v end
  local total, pos = 0, 1
  while type(v) == "string" and pos <= #v do
    local n, unit, after = v:match("^(%d+)([smhd])()", pos)
    if not n then break end
    total, pos = total + tonumber(n) * UNITS[unit], after
  end
  if type(v) ~= "string" or pos <= #v or total == 0 then
    return nil, 'must be a whole number of seconds, or a duration like "2h", "90m", "1h30m" or "3d"'
  end
  return total
end

-- "3h12m", "2d4h", "20m", "40s"
function time.format_duration(s)
  local d, h, m = s // 86400, s % 86400 // 3600, s % 3600 // 60
  if d > 0 then return string.format("%dd%dh", d, h) end
  if h > 0 then return string.format("%dh%dm", h, m) end
  if m > 0 then return string.format("%dm", m) end
  return string.format("%ds", s)
end

return time
