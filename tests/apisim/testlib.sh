# shellcheck shell=bash
# Helpers for the apisim-based integration tests: one line per assertion,
# "ok - desc" / "not ok - desc" with "# " diagnostics, and a closing
# "NAME: N passed, N failed" line. Source it, call t_done at the end.

T_PASS=0
T_FAIL=0
T_NAME=$(basename "$0" .sh)

ok() { T_PASS=$((T_PASS + 1)); echo "ok - $1"; }

not_ok() {
	T_FAIL=$((T_FAIL + 1))
	echo "not ok - $1"
	shift
	local l
	for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done
}

# expect_eq DESC WANT GOT
expect_eq() {
	if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "want: $2" "got:  $3"; fi
}

# expect_contains DESC NEEDLE HAYSTACK
expect_contains() {
	if [[ "$3" == *"$2"* ]]; then ok "$1"; else not_ok "$1" "want substring: $2" "got: $3"; fi
}

# expect_not_contains DESC NEEDLE HAYSTACK
expect_not_contains() {
	if [[ "$3" != *"$2"* ]]; then ok "$1"; else not_ok "$1" "unwanted substring: $2" "got: $3"; fi
}

# jget EXPR < json : evaluate a Python expression on the decoded JSON `d`
# (prints strings bare, everything else as compact JSON).
jget() {
	python3 -S -c '
import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(v if isinstance(v, str) else json.dumps(v, separators=(",", ":")))' "$1"
}

# ctl METHOD PATH [JSON]: call the simulator control API
ctl() {
	if [ $# -ge 3 ]; then
		curl -sS -X "$1" -H 'Content-Type: application/json' --data-binary "$3" "$XCSREG_SIM_CONTROL$2"
	else
		curl -sS -X "$1" "$XCSREG_SIM_CONTROL$2"
	fi
}

t_done() {
	echo "$T_NAME: $T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
}

if [ -z "${XCSREG_SIM_API:-}" ]; then
	echo "# run me through tests/apisim/with-sim" >&2
	exit 2
fi
