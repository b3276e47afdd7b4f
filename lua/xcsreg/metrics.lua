-- xcsreg.metrics: how the run went, in Prometheus text format for
-- node_exporter's textfile collector (which reads only files named *.prom).
local file = require "file"

local metrics = {}

local function quote(v) return (v:gsub('[\\"\n]', { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" })) end

-- The text of run = { time = epoch seconds, success = boolean, expiries = {
-- { namespace =, secret =, expires_at = epoch seconds }, ... } }, and of
-- run.counters = { { name =, help =, type = "counter"|"gauge", value = }, ... }
-- (setup.lua --watch's own, served on /metrics).
function metrics.text(run)
  local lines = {
    "# HELP xcsreg_last_run_timestamp_seconds When the last xcsreg run ended, in seconds since the epoch.",
    "# TYPE xcsreg_last_run_timestamp_seconds gauge",
    "xcsreg_last_run_timestamp_seconds " .. run.time,
    "# HELP xcsreg_last_run_success Whether the last xcsreg run succeeded (1) or failed (0).",
    "# TYPE xcsreg_last_run_success gauge",
    "xcsreg_last_run_success " .. (run.success and 1 or 0),
    "# HELP xcsreg_secret_expiry_timestamp_seconds When the credential a Secret holds expires, in seconds since the epoch.",
    "# TYPE xcsreg_secret_expiry_timestamp_seconds gauge",
  }
  for _, e in ipairs(run.expiries) do
    lines[#lines + 1] = string.format('xcsreg_secret_expiry_timestamp_seconds{namespace="%s",secret="%s"} %d',
      quote(e.namespace), quote(e.secret), e.expires_at)
  end
  for _, c in ipairs(run.counters or {}) do
    lines[#lines + 1] = "# HELP " .. c.name .. " " .. c.help
    lines[#lines + 1] = "# TYPE " .. c.name .. " " .. c.type
    lines[#lines + 1] = c.name .. " " .. string.format("%d", c.value)
  end
  return table.concat(lines, "\n") .. "\n"
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
