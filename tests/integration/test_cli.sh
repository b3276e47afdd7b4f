#!/bin/bash
# needs: none
# The command line: exit codes, help, scripts, cat, version, tracebacks.
set -u
x=${XCSREG:-./xcsreg}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # name, shell condition (evaluated)
	local name=$1; shift
	if eval "$1"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi
}

"$x" version >"$tmp/out" 2>&1; rc=$?
check "version exits 0" '[ $rc -eq 0 ]'
check "version names xcsreg" "grep -q '^xcsreg 0\.' \"\$tmp/out\""
for lib in 'Lua 5.4' 'libcurl ' 'cJSON ' 'libyaml '; do
	check "version shows $lib" 'grep -q "^$lib" "$tmp/out"'
done

"$x" help >"$tmp/out"; rc=$?
check "help exits 0 and prints usage" '[ $rc -eq 0 ] && grep -q "^usage: xcsreg" "$tmp/out"'
"$x" --help >"$tmp/out"; check "--help prints usage" 'grep -q "exit codes" "$tmp/out"'
"$x" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "no command: exit 2, usage on stderr" '[ $rc -eq 2 ] && grep -q usage "$tmp/err"'
"$x" frobnicate 2>"$tmp/err"; rc=$?
check "unknown command: exit 2 naming it" '[ $rc -eq 2 ] && grep -q "unknown command .frobnicate." "$tmp/err"'
"$x" --bogus run x 2>"$tmp/err"; rc=$?
check "unknown option: exit 2 naming it" '[ $rc -eq 2 ] && grep -q "unknown option .--bogus." "$tmp/err"'

"$x" run nosuch.lua 2>"$tmp/err"; rc=$?
check "run nosuch.lua exits 2" '[ $rc -eq 2 ]'
check "run nosuch.lua names the file" 'grep -q "cannot open nosuch.lua: No such file" "$tmp/err"'
"$x" run 2>"$tmp/err"; rc=$?
check "run without a script exits 2" '[ $rc -eq 2 ]'

printf 'local function f() error("boom here") end\nf()\n' >"$tmp/raise.lua"
"$x" run "$tmp/raise.lua" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "a raising script exits 1" '[ $rc -eq 1 ]'
check "the message names the script and line" 'grep -q "raise.lua:1: boom here" "$tmp/err"'
check "a traceback follows" 'grep -q "stack traceback" "$tmp/err"'
printf 'error({})\n' >"$tmp/raise2.lua"
"$x" run "$tmp/raise2.lua" 2>"$tmp/err"; rc=$?
check "a non-string error object exits 1 and says what it was" '[ $rc -eq 1 ] && grep -q "error object is a table value" "$tmp/err"'
printf 'local x = \n' >"$tmp/syntax.lua"
"$x" run "$tmp/syntax.lua" 2>"$tmp/err"; rc=$?
check "a syntax error exits 2 naming the file" '[ $rc -eq 2 ] && grep -q "syntax.lua:2:" "$tmp/err"'

printf 'local a, b = ...\nio.write(arg[0], "|", a, "|", b, "|", #arg)\nreturn tonumber(a)\n' >"$tmp/args.lua"
out=$("$x" run "$tmp/args.lua" 7 two); rc=$?
check "script arguments reach ... and arg" '[ "$out" = "$tmp/args.lua|7|two|2" ]'
check "an integer returned by the script is the exit code" '[ $rc -eq 7 ]'
printf 'return false\n' >"$tmp/false.lua"
"$x" run "$tmp/false.lua"; rc=$?
check "returning false exits 1" '[ $rc -eq 1 ]'

"$x" scripts >"$tmp/out"; rc=$?
check "scripts lists setup.lua with a description" '[ $rc -eq 0 ] && grep -Eq "^  setup\.lua +[a-z]" "$tmp/out"'
"$x" cat setup.lua >"$tmp/setup.lua"; rc=$?
check "cat prints a shipped script verbatim" '[ $rc -eq 0 ] && cmp -s "$tmp/setup.lua" lua/setup.lua'
"$x" cat nosuch.lua 2>"$tmp/err"; rc=$?
check "cat of an unknown name exits 2" '[ $rc -eq 2 ] && grep -q "no shipped file named .nosuch.lua." "$tmp/err"'

# --lua-dir: an edited copy wins over the built-in one, without rebuilding.
mkdir -p "$tmp/lua"
printf -- '-- setup.lua: edited\nio.write("edited copy")\nreturn 0\n' >"$tmp/lua/setup.lua"
out=$("$x" --lua-dir "$tmp/lua" run setup.lua); rc=$?
check "--lua-dir runs the edited copy" '[ $rc -eq 0 ] && [ "$out" = "edited copy" ]'
out=$(XCSREG_LUA_PATH="$tmp/lua" "$x" run setup); rc=$?
check "XCSREG_LUA_PATH works too, and the .lua suffix is optional" '[ "$out" = "edited copy" ]'
cp "$tmp/lua/setup.lua" "$tmp/setup.lua"
out=$(cd "$tmp" && "$x" run ./setup.lua); rc=$?
check "./setup.lua runs the local file" '[ "$out" = "edited copy" ]'

[ $fails -eq 0 ]
