-- proc.run: exit codes, capture, large I/O both ways, environment, PATH
-- lookup, failures as nil + message, misuse raising, no fd or zombie leaks.
-- needs: none
local t = require "test"
local proc = require "proc"

local function run(opts) return proc.run(opts) end

local statf = assert(io.open("/proc/self/stat"))
local mypid = statf:read("l"):match("^(%d+)")
statf:close()

-- A scratch directory of our own under the run's temporary directory.
local _, tmp = run { argv = { "mktemp", "-d", (os.getenv("XCSREG_TEST_TMP") or "/tmp") .. "/proc.XXXXXX" } }
tmp = tmp:gsub("\n$", "")

local function write_file(path, text, mode)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  assert(run { argv = { "chmod", mode, path } } == 0)
end

local function now()
  local _, out = run { argv = { "date", "+%s.%N" } }
  return tonumber(out)
end

-- Our descriptors and what they are, as "N -> target" lines. The lister
-- waits for the end of its stdin: we close that only after our side of
-- proc.run's own setup is done, so the listing never races with it.
local function our_fds()
  local _, out = run { argv = { "sh", "-c", 'cat >/dev/null; find "$0" -mindepth 1 -printf "%f -> %l\n"',
    "/proc/" .. mypid .. "/fd" }, stdin = "x" }
  local fds = {}
  for line in out:gmatch("[^\n]+") do fds[#fds + 1] = line:gsub("pipe:%[%d+%]", "pipe") end
  table.sort(fds)
  return fds
end

local function our_children()
  local f = assert(io.open("/proc/self/task/" .. mypid .. "/children"))
  local s = f:read("a")
  f:close()
  return s
end

-- exit status
t.eq({ run { argv = { "true" } } }, { 0, "", "" }, "true: status 0, no output")
t.eq(run { argv = { "false" } }, 1, "false: status 1")
t.eq(run { argv = { "sh", "-c", "exit 7" } }, 7, "exit 7 gives 7")
t.eq(run { argv = { "sh", "-c", "exit 255" } }, 255, "exit 255 gives 255")
t.eq(run { argv = { "sh", "-c", "kill -TERM $$" } }, 128 + 15, "killed by SIGTERM gives 143")
t.eq(run { argv = { "sh", "-c", "kill -KILL $$" } }, 128 + 9, "killed by SIGKILL gives 137")
t.eq(run { argv = { "sh", "-c", "kill -PIPE $$" } }, 128 + 13,
  "SIGPIPE is not ignored in the child (the host ignores it)")

-- capture
t.eq({ run { argv = { "sh", "-c", "printf out; printf err >&2; exit 3" } } }, { 3, "out", "err" },
  "stdout and stderr captured apart, with the status")
t.eq({ run { argv = { "printf", "a\\000b\\377" } } }, { 0, "a\0b\255", "" }, "binary stdout kept")
t.eq({ run { argv = { "echo", "a b", "$HOME", "*", ";", "|" } } }, { 0, "a b $HOME * ; |\n", "" },
  "arguments reach the command verbatim: no shell")
t.eq({ run { argv = { "cat" }, stdin = "in\0put\n" } }, { 0, "in\0put\n", "" }, "stdin fed, binary safe")
t.eq({ run { argv = { "cat" }, stdin = "" } }, { 0, "", "" }, "empty stdin is end of file")
t.eq({ run { argv = { "readlink", "/proc/self/fd/0" } } }, { 0, "/dev/null\n", "" },
  "without stdin the command reads /dev/null")
t.eq({ run { argv = { "readlink", "/proc/self/fd/2" }, stderr = "inherit" } },
  { 0, select(2, run { argv = { "readlink", "/proc/" .. mypid .. "/fd/2" } }), "" },
  "stderr = 'inherit' gives the command our stderr, and '' as captured stderr")

-- several MiB both ways at once: a loop that wrote all stdin first, or read
-- stdout before stderr, would deadlock on full pipes
local parts = {}
for i = 1, 8 * 1024 do parts[i] = string.format("%07d", i) .. string.rep("x", 1017) end
local big = table.concat(parts)
local status, out, err = run { argv = { "sh", "-c", "tee /dev/stderr" }, stdin = big }
t.eq(status, 0, "8 MiB through tee: status 0")
t.ok(#big == 8 << 20 and out == big, "8 MiB stdin comes back on stdout intact", "got " .. #out .. " bytes")
t.ok(err == big, "and on stderr intact, read at the same time", "got " .. #err .. " bytes")
status, out = run { argv = { "head", "-c", tostring(12 << 20), "/dev/zero" } }
t.ok(status == 0 and out == string.rep("\0", 12 << 20), "12 MiB of output under the 16 MiB default cap")
t.eq(run { argv = { "true" }, stdin = big }, 0, "a command that does not read its stdin is fine (EPIPE)")
t.eq({ run { argv = { "head", "-c", "3" }, stdin = big } }, { 0, "000", "" },
  "a command that stops reading its stdin early is fine")

-- environment
t.eq({ run { argv = { "printenv", "PATH" } } }, { 0, os.getenv("PATH") .. "\n", "" },
  "our environment is inherited")
t.eq({ run { argv = { "sh", "-c", 'printf %s "$XCS_ADDED"' }, env = { XCS_ADDED = "a b=c" } } },
  { 0, "a b=c", "" }, "env adds a variable")
t.eq({ run { argv = { "printenv", "HOME" }, env = { HOME = "/nowhere" } } }, { 0, "/nowhere\n", "" },
  "env replaces a variable")
local _, envout = run { argv = { "env" }, env = { HOME = "/nowhere" } }
t.eq(select(2, envout:gsub("\nHOME=", "")) + select(2, envout:gsub("^HOME=", "")), 1,
  "a replaced variable appears once")
t.eq({ run { argv = { "/usr/bin/env" }, clear_env = true } }, { 0, "", "" }, "clear_env: empty environment")
t.eq({ run { argv = { "/usr/bin/env" }, clear_env = true, env = { XCS_ONLY = "1" } } },
  { 0, "XCS_ONLY=1\n", "" }, "clear_env with env: exactly those variables")
t.eq({ run { argv = { "env" }, clear_env = true } }, { 0, "", "" },
  "without PATH in the environment, the default PATH is searched")

-- PATH lookup in the child's PATH
local bin, noexec = tmp .. "/bin", tmp .. "/noexec"
assert(run { argv = { "mkdir", bin, noexec } } == 0)
write_file(bin .. "/xcs-hello", '#!/bin/sh\necho hello "$@"\n', "755")
write_file(noexec .. "/xcs-hello", '#!/bin/sh\necho wrong\n', "644")
t.eq({ run { argv = { "xcs-hello", "x y" }, env = { PATH = bin } } }, { 0, "hello x y\n", "" },
  "argv[0] without '/' is looked up in the child's PATH")
t.eq({ run { argv = { "xcs-hello" }, env = { PATH = noexec .. ":" .. bin } } }, { 0, "hello\n", "" },
  "a non-executable match earlier in PATH is skipped")
t.eq({ run { argv = { "xcs-hello" } } }, { nil, "executable not found: xcs-hello" },
  "not in our PATH: not found")
t.eq({ run { argv = { "xcs-hello" }, env = { PATH = noexec } } }, { nil, "permission denied: xcs-hello" },
  "only a non-executable match: permission denied")
t.eq({ run { argv = { noexec .. "/xcs-hello" } } }, { nil, "permission denied: " .. noexec .. "/xcs-hello" },
  "a path to a non-executable file: permission denied")
t.eq({ run { argv = { tmp .. "/missing" } } }, { nil, "executable not found: " .. tmp .. "/missing" },
  "a path to nothing: not found")
t.eq({ run { argv = { "no-such-command-xcsreg" } } }, { nil, "executable not found: no-such-command-xcsreg" },
  "an unknown command: not found")
write_file(bin .. "/xcs-noformat", "just text\n", "755")
t.eq({ run { argv = { bin .. "/xcs-noformat" } } },
  { nil, "cannot run " .. bin .. "/xcs-noformat: Exec format error" },
  "a file without #! is not handed to a shell")

-- timeout
local t0 = now()
t.eq({ run { argv = { "sleep", "5" }, timeout = 0.3 } }, { nil, "command timed out after 0.3s: sleep" },
  "sleep 5 with timeout 0.3: nil, message")
local elapsed = now() - t0
t.ok(elapsed < 1.5, "and it returns quickly", string.format("took %.2fs", elapsed))
t0 = now()
t.eq({ run { argv = { "sh", "-c", "exec >&- 2>&-; sleep 5" }, timeout = 0.3 } },
  { nil, "command timed out after 0.3s: sh" }, "a command that closed its output still times out")
elapsed = now() - t0
t.ok(elapsed < 1.5, "and it returns quickly too", string.format("took %.2fs", elapsed))
t.eq({ run { argv = { "echo", "fast" }, timeout = 5 } }, { 0, "fast\n", "" }, "a quick command within its timeout")
t.eq(our_children(), "", "timed-out commands were killed and reaped")

-- max_output
t.eq({ run { argv = { "head", "-c", "1000", "/dev/zero" }, max_output = 1000 } },
  { 0, string.rep("\0", 1000), "" }, "output of exactly max_output bytes is fine")
t.eq({ run { argv = { "head", "-c", "1001", "/dev/zero" }, max_output = 1000 } },
  { nil, "standard output of head exceeds 1000 bytes" }, "one byte over max_output: nil, message")
t.eq({ run { argv = { "sh", "-c", "head -c 5000 /dev/zero >&2" }, max_output = 1000 } },
  { nil, "standard error of sh exceeds 1000 bytes" }, "the cap applies to stderr too")
t.eq({ run { argv = { "yes" }, max_output = 100000 } }, { nil, "standard output of yes exceeds 100000 bytes" },
  "endless output is cut off")
t.eq(our_children(), "", "commands over the cap were killed and reaped")

-- secrets given on stdin are not on the command line
local secret = "xcsreg-fake-token-0000"
status, out = run { argv = { "sh", "-c", 'read -r line; printf "%s|" "${#line}"; cat /proc/$$/cmdline' },
  stdin = secret .. "\n" }
t.eq(out:match("^(%d+)|"), tostring(#secret), "the command read the secret from stdin")
t.ok(status == 0 and out:find("/proc/$$/cmdline", 1, true) and not out:find("fake-token", 1, true),
  "the secret is not in the command's /proc/PID/cmdline")

-- descriptors: the child gets 0-2 only, the host leaks none
local held = assert(io.open(tmp .. "/held", "w")) -- opened without O_CLOEXEC
t.eq({ run { argv = { "ls", "/proc/self/fd" } } }, { 0, "0\n1\n2\n3\n", "" },
  "the command gets only 0, 1, 2 (3 is ls's own directory)")
held:close()
local before = our_fds()
for i = 1, 100 do
  run { argv = { "sh", "-c", "echo $0; echo x >&2", tostring(i) }, stdin = "abc" }
  run { argv = { "no-such-command-xcsreg" } }
  run { argv = { "yes" }, max_output = 10 }
  run { argv = { noexec .. "/xcs-hello" } }
end
for _ = 1, 3 do run { argv = { "sleep", "1" }, timeout = 0.05 } end
t.eq(our_fds(), before, "no descriptor leaked by 400 runs of every outcome")
t.eq(our_children(), "", "no zombie left by them")

-- misuse raises
local function raises(want, opts, name)
  t.raises(want, name or want, proc.run, opts)
end
t.raises("bad argument #1 to 'proc.run' (table expected, got string)", "argument must be a table",
  proc.run, "ls")
raises("unknown option 'argz'", { argv = { "true" }, argz = 1 })
raises("unknown option '1'", { "true" }, "positional arguments are unknown options")
raises("option 'argv' must be a non-empty list of strings", {}, "argv is required")
raises("option 'argv' must be a non-empty list of strings", { argv = {} }, "argv must not be empty")
raises("option 'argv' must be a table, not string", { argv = "true" })
raises("argv[2] must be a string, got number", { argv = { "echo", 3 } })
raises("argv[2] must be a string, got nil", { argv = { "echo", nil, "x" } })
raises("argv[1] contains a NUL byte", { argv = { "ec\0ho" } })
raises("option 'env' must be a table, not string", { argv = { "true" }, env = "A=1" })
raises("env.A must be a string, got number", { argv = { "true" }, env = { A = 1 } })
raises("env: names must be strings, got number", { argv = { "true" }, env = { "A=1" } })
raises("env: bad variable name 'A=B'", { argv = { "true" }, env = { ["A=B"] = "x" } })
raises("env: bad variable name ''", { argv = { "true" }, env = { [""] = "x" } })
raises("env.A contains a NUL byte", { argv = { "true" }, env = { A = "x\0y" } })
raises("option 'stdin' must be a string, not number", { argv = { "true" }, stdin = 5 })
raises("option 'clear_env' must be a boolean, not number", { argv = { "true" }, clear_env = 1 })
raises("option 'timeout' must be a number, not string", { argv = { "true" }, timeout = "1" })
raises("option 'timeout' must be a positive number of seconds", { argv = { "true" }, timeout = 0 })
raises("option 'timeout' must be a positive number of seconds", { argv = { "true" }, timeout = 0 / 0 },
  "timeout must not be NaN")
raises("option 'max_output' must be a positive integer", { argv = { "true" }, max_output = 1.5 })
raises("option 'max_output' must be a positive integer", { argv = { "true" }, max_output = -1 },
  "max_output must be positive")
raises("option 'stderr': invalid value 'null'", { argv = { "true" }, stderr = "null" })

run { argv = { "rm", "-rf", tmp } }
return t.done()
