-- k8stest.lua: helpers for the k8s module's tests (require "k8sfixtures.k8stest"):
-- scratch files, kubeconfigs, and nested `xcsreg run` with another environment.
local json = require "json"
local proc = require "proc"

local M = {}

M.fixtures = package.searchpath("k8sfixtures.k8stest", package.path):match("^(.*)/[^/]*$")
M.xcsreg = os.getenv("XCSREG") or "./xcsreg"

local function run(argv)
  local status, out, err = proc.run { argv = argv }
  assert(status == 0, table.concat(argv, " ") .. ": " .. tostring(err or out))
  return out
end

-- A fresh directory under the test run's scratch space.
function M.tmpdir()
  local base = os.getenv("XCSREG_TEST_TMP") or "/tmp"
  return (run { "mktemp", "-d", base .. "/k8s.XXXXXX" }:gsub("\n$", ""))
end

function M.write(path, text, mode)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  if mode then run { "chmod", mode, path } end
  return path
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.copy(from, to, mode)
  return M.write(to, assert(M.read(from), from), mode)
end

-- YAML in block style with every scalar written as JSON (valid YAML), map
-- keys sorted; arrays are tables with [1].
local function emit(v, indent, out)
  local pad = string.rep("  ", indent)
  if type(v) ~= "table" then
    out[#out + 1] = " " .. json.encode(v) .. "\n"
  elseif v[1] ~= nil then
    out[#out + 1] = "\n"
    for _, item in ipairs(v) do
      out[#out + 1] = pad .. "-"
      if type(item) == "table" and item[1] == nil then
        -- "- key: value" with the first key on the dash's line
        local keys = {}
        for k in pairs(item) do keys[#keys + 1] = k end
        table.sort(keys)
        for i, k in ipairs(keys) do
          out[#out + 1] = (i == 1 and " " or pad .. "  ") .. k .. ":"
          emit(item[k], indent + 2, out)
        end
      else
        emit(item, indent + 1, out)
      end
    end
  else
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    out[#out + 1] = #keys > 0 and "\n" or " {}\n"
    for _, k in ipairs(keys) do
      out[#out + 1] = pad .. k .. ":"
      emit(v[k], indent + 1, out)
    end
  end
end

function M.yaml(v)
  local out = {}
  emit(v, 0, out)
  return (table.concat(out):gsub("^\n", ""))
end

-- Writes a kubeconfig: cfg has clusters, users, contexts as {name = body}
-- maps and optionally current_context.
function M.kubeconfig(path, cfg)
  local doc = { apiVersion = "v1", kind = "Config", clusters = {}, users = {}, contexts = {} }
  for _, list in ipairs { "clusters", "users", "contexts" } do
    local item = list:sub(1, -2)
    local names = {}
    for name in pairs(cfg[list] or {}) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      doc[list][#doc[list] + 1] = { name = name, [item] = cfg[list][name] }
    end
    if #doc[list] == 0 then doc[list] = nil end
  end
  doc["current-context"] = cfg.current_context
  return M.write(path, M.yaml(doc), "600")
end

-- Runs a Lua chunk in a nested `xcsreg run` with env added to ours; its
-- "ok -"/"not ok -" lines are passed on (they count as this file's).
-- Returns status, stdout, stderr.
function M.nested(dir, code, env, xcsreg_args)
  local file = M.write(dir .. "/nested.lua", code)
  local argv = { M.xcsreg }
  for _, a in ipairs(xcsreg_args or {}) do argv[#argv + 1] = a end
  argv[#argv + 1] = "run"
  argv[#argv + 1] = file
  local status, out, err = proc.run { argv = argv, env = env, timeout = 120 }
  assert(status, out)
  for line in out:gmatch("[^\n]+") do
    if line:match("^ok ") or line:match("^not ok ") or line:match("^#") then print(line) end
  end
  return status, out, err
end

return M
