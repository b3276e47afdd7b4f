-- Fuzz target: registry.parse_challenge, the WWW-Authenticate parser of
-- `docker login`-style credential checks (see fuzz_lua.c).
-- Promised: never raises; a list of {scheme = lower-case token, params =
-- {lower-case name = string}}; malformed input gives an empty list. And
-- writing the result back as a header (quoted values) parses to the same.
local registry = require "xcsreg.registry"

local function shape(list, header)
  assert(type(list) == "table", "not a table")
  local n = 0
  for _ in pairs(list) do n = n + 1 end
  assert(n == #list, "not a list")
  for _, c in ipairs(list) do
    assert(type(c.scheme) == "string" and c.scheme ~= "" and c.scheme == c.scheme:lower(), "bad scheme")
    assert(type(c.params) == "table", "no params")
    for k, v in pairs(c.params) do
      assert(type(k) == "string" and k ~= "" and k == k:lower(), "bad parameter name")
      assert(type(v) == "string", "bad parameter value")
    end
  end
end

local function quote(v) return '"' .. v:gsub('[\\"]', "\\%0") .. '"' end

local function unparse(list)
  local parts = {}
  for _, c in ipairs(list) do
    local names = {}
    for k in pairs(c.params) do names[#names + 1] = k end
    table.sort(names)
    local params = {}
    for _, k in ipairs(names) do params[#params + 1] = k .. "=" .. quote(c.params[k]) end
    parts[#parts + 1] = c.scheme .. (#params > 0 and " " .. table.concat(params, ", ") or "")
  end
  return table.concat(parts, ", ")
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do
    if a[i].scheme ~= b[i].scheme then return false end
    for k, v in pairs(a[i].params) do if b[i].params[k] ~= v then return false end end
    for k in pairs(b[i].params) do if a[i].params[k] == nil then return false end end
  end
  return true
end

return function(header)
  local list = registry.parse_challenge(header)
  shape(list, header)
  local again = unparse(list)
  local reparsed = registry.parse_challenge(again)
  assert(same(list, reparsed), "written back as " .. string.format("%q", again) .. " it parses differently")
end
