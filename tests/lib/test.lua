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

-- Registers a fake secret the test made at run time with the secret scan of
-- tests/run (tests/lib/secretscan.py); returns value. Fixed fake secrets
-- belong in tests/lib/secrets.txt instead.
function t.secret(value, name)
  assert(type(value) == "string" and #value >= 6 and not value:find("\n", 1, true),
    "t.secret: the value must be a string of 6 bytes or more, on one line")
  name = name or "runtime:" .. (arg and arg[0] or "?"):gsub(".*/", "")
  assert(not name:find("%s"), "t.secret: the name must have no spaces")
  local path = os.getenv("XCSREG_SECRETS_FILE")
  if path then
    local f = assert(io.open(path, "a"))
    f:write(name, " ", value, "\n")
    f:close()
  end
  return value
end

-- Under tests/run, the output of every xcsreg run the test makes is kept in
-- $XCSREG_TEST_LOGS for the secret scan too: proc.run is wrapped. The stdout
-- of `--dry-run=client -o FORMAT`, which prints the Secrets by design, and
-- that of credential-provider.lua (a CredentialProviderResponse) go to a
-- file the scan leaves out.
local logs = os.getenv("XCSREG_TEST_LOGS")
local loaded, proc = pcall(require, "proc")
if logs and loaded then
  local run, runs = proc.run, 0
  local stat = io.open("/proc/self/stat")
  local pid = stat and stat:read("l"):match("^%d+") or tostring(os.time())
  if stat then stat:close() end
  local xcsreg = { [os.getenv("XCSREG") or ""] = true, [os.getenv("XCSREG_PLAIN") or ""] = true }

  local function prints_secrets(argv)
    local client, output = false, false
    for i, a in ipairs(argv) do
      -- a credential provider answers the kubelet with credentials on stdout (its stderr is scanned)
      if a == "credential-provider.lua" then return true end
      if a == "--dry-run=client" or (a == "--dry-run" and argv[i + 1] == "client") then client = true end
      if a == "-o" or a == "--output" or a:find("^%-%-output=") or a:find("^%-o.") then output = true end
    end
    return client and output
  end

  local function keep(file, text)
    if text == "" then return end
    local f = io.open(logs .. "/" .. file, "wb")
    if f then
      f:write(text)
      f:close()
    end
  end

  proc.run = function(opts)
    local r = table.pack(pcall(run, opts))
    if not r[1] then
      -- keep the message the unwrapped function gives
      error((tostring(r[2]):gsub("^(bad argument #%d+ to )'%?'", "%1'proc.run'")), 0)
    end
    local argv = type(opts) == "table" and opts.argv
    local program = type(argv) == "table" and tostring(argv[1]) or ""
    if r[2] and (xcsreg[program] or program:find("^xcsreg$") or program:find("/xcsreg$")) then
      runs = runs + 1
      local base = string.format("xcsreg-run-%s-%d", pid, runs)
      keep(base .. (prints_secrets(argv) and ".secret-output" or ".out"), r[3])
      keep(base .. ".err", r[4])
    end
    return table.unpack(r, 2, r.n)
  end
end

function t.done()
  if count == 0 then
    print("not ok - the file made no assertions")
    return 1
  end
  return failed == 0 and 0 or 1
end

return t
