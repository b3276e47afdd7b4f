-- Helpers for the tests of the deploy recipes in scripts/: reading files of
-- the tree, the documents of a manifest, and the flags a shipped script takes.
local json = require "json"
local proc = require "proc"
local yaml = require "yaml"

local lib = {}

lib.root = (arg[0]:match("^(.*)/tests/integration/[^/]*$")) or "."
lib.xcsreg = os.getenv("XCSREG") or lib.root .. "/xcsreg"
lib.tmp = os.getenv("XCSREG_TEST_TMP") or "/tmp"

function lib.read(path) return assert(io.open(lib.root .. "/" .. path)):read("a") end

-- The documents of a YAML file (those that are not only comments), decoded.
function lib.documents(path)
  local docs = {}
  for text in (lib.read(path) .. "\n---\n"):gmatch("(.-)\n%-%-%-\n") do
    local doc = assert(yaml.decode(text))
    if doc ~= json.null then docs[#docs + 1] = doc end
  end
  return docs
end

local flags_of = {}
-- The long flags `xcsreg run SCRIPT --help` lists.
function lib.script_flags(script)
  if not flags_of[script] then
    local code, out = proc.run { argv = { lib.xcsreg, "run", script, "--help" } }
    assert(code == 0, script .. " --help failed")
    flags_of[script] = {}
    for flag in out:gmatch("%-%-[%w-]+") do flags_of[script][flag] = true end
  end
  return flags_of[script]
end

-- The flags of `xcsreg ... run SCRIPT ARGS...` (argv from after the binary)
-- that SCRIPT does not take: { script =, unknown = {...} }, or nil and why
-- when argv does not run a shipped script.
function lib.check_args(argv)
  local i = 1
  while argv[i] and argv[i] ~= "run" do i = i + 1 end
  local script = argv[i + 1]
  if not script or not script:find("^%w+%.lua$") then return nil, "not `run SCRIPT.lua`: " .. table.concat(argv, " ") end
  local known = lib.script_flags(script)
  local result = { script = script, unknown = {} }
  for j = i + 2, #argv do
    local flag = argv[j]:match("^(%-%-[%w-]+)")
    if flag and not known[flag] then table.insert(result.unknown, flag) end
  end
  return result
end

-- The value following `flag` in argv.
function lib.arg_value(argv, flag)
  for i, a in ipairs(argv) do
    if a == flag then return argv[i + 1] end
  end
end

return lib
