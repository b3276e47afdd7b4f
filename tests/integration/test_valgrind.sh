#!/bin/bash
# needs: httpd
# Under valgrind, with the plain build: every Lua test of the primitives,
# the hostile-input tests (files, HTTP and Kubernetes servers that misbehave:
# their error paths), and the k8s client's tests of configuration, errors and
# credentials against the API simulator, and its watches (with http.listen). No invalid reads or writes, no
# memory definitely or indirectly lost. ASan cannot see what the
# uninstrumented liblua writes (a Lua stack overflow in kubeconfig.c was
# seen by valgrind only); the sanitized build runs every test besides.
# Two files at a time. The servers a file needs besides httpd (this one's)
# are started around it, as tests/run does.
set -u
plain=${XCSREG_PLAIN:-./xcsreg}
if [ ! -x "$plain" ]; then
	echo "not ok - the plain build $plain exists (make all)"
	exit 1
fi
files=(tests/lua/test_*.lua
	tests/integration/test_hostile_*.lua
	tests/integration/test_k8s_config.lua
	tests/integration/test_k8s_errors.lua
	tests/integration/test_k8s_auth.lua
	tests/integration/test_k8s_watch.lua)
work=$(mktemp -d "${XCSREG_TEST_TMP:-/tmp}/valgrind.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The wrappers of the servers file f needs, but httpd (already running).
wrappers() {
	local needs n
	needs=$(head -n 5 "$1" | sed -n 's/^\(--\|#\) *needs: *//p' | head -n 1)
	for n in $needs; do
		case "$n" in
		none | httpd) ;;
		apisim) printf '%s\n' tests/apisim/with-sim ;;
		*) printf '%s\n' "tests/lib/with-$n" ;;
		esac
	done
}

# Runs file number i under valgrind; leaves its verdict in $work/i.out.
check() {
	local i=$1 f=$2 log=$work/$1.log rc wrap
	mapfile -t wrap < <(wrappers "$f")
	XCSREG_TEST_TMP=$work/tmp$i
	mkdir -p "$XCSREG_TEST_TMP"
	export XCSREG_TEST_TMP
	"${wrap[@]}" valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=99 --log-file="$log" "$plain" run "$f" >"$work/$i.test" 2>&1 </dev/null
	rc=$?
	if [ $rc -ne 99 ] && [ ! -s "$log" ]; then
		echo "ok - valgrind: $f: no errors, no leaks" >"$work/$i.out"
	else
		{
			echo "not ok - valgrind: $f (exit $rc)"
			sed 's/^/#   /' "$log" | head -40
			grep '^not ok' "$work/$i.test" | sed 's/^/#   /' | head -10
		} >"$work/$i.out"
	fi
}

for i in "${!files[@]}"; do
	# at most two at a time
	while [ "$(jobs -rp | wc -l)" -ge 2 ]; do
		wait -n
	done
	check "$i" "${files[$i]}" &
done
wait
fails=0
for i in "${!files[@]}"; do
	cat "$work/$i.out"
	grep -q '^not ok' "$work/$i.out" && fails=$((fails + 1))
done
echo "## valgrind: ${#files[@]} test files, $fails with errors or leaks"
[ $fails -eq 0 ]
