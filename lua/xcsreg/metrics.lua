-- xcsreg.metrics: how the run went, in Prometheus text format for
-- node_exporter's textfile collector (which reads only files named *.prom).
local file = require "file"

local metrics = {}

local function quote(v) return (v:gsub('[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" })) end
local function unquote(v) return (v:gsub("\\(.)", { ["\\"] = "\\", ['"'] = '"', n = "\n" })) end

local HELP = {
  last_run_timestamp_seconds = "When the last xcsreg run ended, in seconds since the epoch.",
  last_run_success = "Whether the last xcsreg run succeeded (1) or failed (0).",
  secret_expiry_timestamp_seconds = "When the credential a Secret holds expires, in seconds since the epoch.",
}

-- The text of run = { time = epoch seconds, success = boolean, expiries = {
-- { namespace =, secret =, expires_at = epoch seconds }, ... } }, or of a
-- fleet's run = { clusters = { { name =, time =, success =, expiries = },
-- ... } }: the same series, each with a first label cluster="NAME"; then
-- run.counters = { { name =, help =, type = "counter"|"gauge", value = }, ... }
-- (setup.lua --watch's own, served on /metrics).
function metrics.text(run)
  local clusters = run.clusters or { run }
  local lines = {}
  local function series(name, each)
    lines[#lines + 1] = "# HELP xcsreg_" .. name .. " " .. HELP[name]
    lines[#lines + 1] = "# TYPE xcsreg_" .. name .. " gauge"
    for _, c in ipairs(clusters) do
      local label = run.clusters and 'cluster="' .. quote(c.name) .. '"' or nil
      each(c, function(labels, value)
        labels = label and labels and label .. "," .. labels or label or labels or ""
        lines[#lines + 1] = string.format("xcsreg_%s%s %d", name, labels ~= "" and "{" .. labels .. "}" or "", value)
      end)
    end
  end
  series("last_run_timestamp_seconds", function(c, add) add(nil, c.time) end)
  series("last_run_success", function(c, add) add(nil, c.success and 1 or 0) end)
  series("secret_expiry_timestamp_seconds", function(c, add)
    for _, e in ipairs(c.expiries) do
      add(string.format('namespace="%s",secret="%s"', quote(e.namespace), quote(e.secret)), e.expires_at)
    end
  end)
  for _, c in ipairs(run.counters or {}) do
    lines[#lines + 1] = "# HELP " .. c.name .. " " .. c.help
    lines[#lines + 1] = "# TYPE " .. c.name .. " " .. c.type
    lines[#lines + 1] = c.name .. " " .. string.format("%d", c.value)
  end
  return table.concat(lines, "\n") .. "\n"
end

-- The run of a single cluster's text (metrics.text's), as given to it: how
-- a fleet's parent learns what each cluster's run wrote. | nil when text
-- is not such a text.
function metrics.parse(text)
  local run = { expiries = {} }
  for line in text:gmatch("[^\n]+") do
    if not line:find("^#") then
      local name, labels, value = line:match('^xcsreg_([%w_]+)(%b{}) (%-?%d+)$')
      if not name then name, value = line:match("^xcsreg_([%w_]+) (%-?%d+)$") end
      value = math.tointeger(tonumber(value))
      if not value then return nil end
      if name == "last_run_timestamp_seconds" then
        run.time = value
      elseif name == "last_run_success" then
        run.success = value == 1
      elseif name == "secret_expiry_timestamp_seconds" and labels then
        local ns, secret = labels:match('^{namespace="(.-)",secret="(.-)"}$')
        if not ns then return nil end
        run.expiries[#run.expiries + 1] = { namespace = unquote(ns), secret = unquote(secret), expires_at = value }
      else
        return nil
      end
    end
  end
  if run.time == nil or run.success == nil then return nil end
  return run
end

-- Writes metrics.text(run) to path, through a temporary file renamed over
-- it, so that the collector never reads half a file (file.replace).
-- Returns true | nil, message.
function metrics.write(path, run)
  -- a new file made in path's directory (never one another user planted
  -- there, nor a symlink's target), mode 0644, renamed over path
  return file.replace(path, metrics.text(run), { mode = tonumber("644", 8) })
end

return metrics
