#!/bin/bash
# needs: none
# scripts/check-layers: the objects of the build use each other one way; it
# fails on a cycle, on a lower layer using a higher one, on an unplaced object.
set -u
cd "$(dirname "$0")/../.."
root=$PWD
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fails=0
check() { # name, shell condition (evaluated)
	local name=$1; shift
	if eval "$1"; then echo "ok - $name"; else echo "not ok - $name"; fails=$((fails + 1)); fi
}
cc=${CC:-cc}
obj() { # dir name C-source
	mkdir -p "$1"
	printf '%s\n' "$3" >"$1/$2.c"
	"$cc" -c -o "$1/$2.o" "$1/$2.c"
}

# the tree's own build (the objects next to the binary under test)
objdir=$(dirname "${XCSREG:-$root/build/xcsreg}")
if ls "$objdir"/*.o >/dev/null 2>&1; then
	"$root/scripts/check-layers" "$objdir" >"$tmp/out" 2>&1; rc=$?
	check "the build's objects have no cycle and respect src/layers" '[ $rc -eq 0 ]'
	[ $rc -eq 0 ] || sed 's/^/# /' "$tmp/out"
else
	echo "## no objects next to $XCSREG: the build is checked by make test only"
fi

# a synthetic one-way stack passes
d=$tmp/good
obj "$d" util 'int util_f(void) { return 1; }'
obj "$d" mid 'int util_f(void); int mid_f(void) { return util_f(); }'
obj "$d" top 'int mid_f(void); int util_f(void); int main(void) { return mid_f() + util_f(); }'
printf 'util\nmid  # a comment\ntop\n' >"$d/layers"
"$root/scripts/check-layers" --layers "$d/layers" "$d" >"$tmp/out" 2>&1; rc=$?
check "a one-way stack passes" '[ $rc -eq 0 ] && grep -q "3 objects.*no cycle" "$tmp/out"'

# a cycle of three objects, all in one layer: found, named, with its symbols
d=$tmp/cycle
obj "$d" a 'int b_f(void); int a_f(void) { return b_f(); }'
obj "$d" b 'int c_f(void); int b_f(void) { return c_f(); }'
obj "$d" c 'int a_f(void); int c_f(void) { return a_f(); }'
obj "$d" d 'int a_f(void); int d_f(void) { return a_f(); }'
echo 'a b c d' >"$d/layers"
"$root/scripts/check-layers" --layers "$d/layers" "$d" >"$tmp/out" 2>&1; rc=$?
check "a cycle fails" '[ $rc -eq 1 ]'
check "the cycle is named, without the object outside it" \
	'grep -q "cycle among a, b, c:" "$tmp/out" && ! grep -q "cycle among.*d" "$tmp/out"'
check "each edge of the cycle names its symbol" \
	'grep -q "a -> b (b_f)" "$tmp/out" && grep -q "c -> a (a_f)" "$tmp/out"'

# a two-object cycle across layers: the cycle and the upward use
d=$tmp/up
obj "$d" low 'int high_f(void); int low_f(void) { return high_f(); }'
obj "$d" high 'int low_f(void); int high_f(void) { return 0; } int g(void) { return low_f(); }'
printf 'low\nhigh\n' >"$d/layers"
"$root/scripts/check-layers" --layers "$d/layers" "$d" >"$tmp/out" 2>&1; rc=$?
check "a lower layer using a higher one fails, naming both and the symbol" \
	'[ $rc -eq 1 ] && grep -q "cycle among high, low" "$tmp/out" &&
	 grep -q "low (layer 1) uses high (layer 2, higher): high_f" "$tmp/out"'

# an upward use without a cycle still fails
d=$tmp/uponly
obj "$d" low 'int high_f(void); int low_f(void) { return high_f(); }'
obj "$d" high 'int high_f(void) { return 0; }'
printf 'low\nhigh\n' >"$d/layers"
"$root/scripts/check-layers" --layers "$d/layers" "$d" >"$tmp/out" 2>&1; rc=$?
check "an upward use with no cycle fails" '[ $rc -eq 1 ] && grep -q "low (layer 1) uses high" "$tmp/out" &&
	! grep -q cycle "$tmp/out"'

# an object no layer names
printf 'low\n' >"$d/layers"
"$root/scripts/check-layers" --layers "$d/layers" "$d" >"$tmp/out" 2>&1; rc=$?
check "an object in no layer fails" '[ $rc -eq 1 ] && grep -q "high.o is in no layer" "$tmp/out"'

# usage
"$root/scripts/check-layers" --layers "$d/layers" "$tmp/nothing" >"$tmp/out" 2>&1; rc=$?
check "a directory without objects: exit 2" '[ $rc -eq 2 ] && grep -q "no objects" "$tmp/out"'
exit $((fails > 0))
