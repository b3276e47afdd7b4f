-- test.lua: assertions for xcsreg's Lua tests. Each prints "ok - name" or
-- "not ok - name" with a diagnostic; end a test file with `return t.done()`.
local t = {}
local failed, count = 0, 0

local function show(v, depth)
  depth = depth or 0
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" or depth > 3 then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = "[" .. show(k) .. "]=" .. show(v[k], depth + 1)
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end
t.show = show

local function deep_equal(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then
    return false
  end
  if math.type(a) ~= math.type(b) then return false end
  for k, v in pairs(a) do
    if not deep_equal(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
t.deep_equal = deep_equal

local function report(ok, name, diag)
  count = count + 1
  if ok then
    print("ok - " .. name)
  else
    failed = failed + 1
    print("not ok - " .. name)
    if diag then print("#   " .. diag:gsub("\n", "\n#   ")) end
  end
  return ok
end

function t.ok(cond, name, diag) return report(cond and true or false, name, diag) end

-- Equal by value (tables deeply), and integers stay integers.
function t.eq(got, want, name)
  local ok = deep_equal(got, want)
  if ok and math.type(got) ~= math.type(want) then ok = false end
  return report(ok, name, "got:  " .. show(got) .. "\nwant: " .. show(want))
end

-- fn(...) must raise an error whose message contains `want` (plain text).
function t.raises(want, name, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then return report(false, name, "did not raise") end
  err = tostring(err)
  return report(err:find(want, 1, true) ~= nil, name, "error: " .. err .. "\nwant: " .. want)
end

-- fn(...) must return nil plus a message containing `want`.
function t.fails(want, name, fn, ...)
  local v, err = fn(...)
  if v ~= nil then return report(false, name, "returned " .. show(v)) end
  err = tostring(err)
  return report(err:find(want, 1, true) ~= nil, name, "error: " .. err .. "\nwant: " .. want)
end

function t.done()
  if count == 0 then
    print("not ok - the file made no assertions")
    return 1
  end
  return failed == 0 and 0 or 1
end

return t
