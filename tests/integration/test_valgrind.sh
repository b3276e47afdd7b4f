#!/bin/bash
# needs: httpd
# Every Lua test of the primitives, under valgrind with the plain build:
# no invalid reads or writes, no memory definitely or indirectly lost.
# (The sanitized build runs every other test with LeakSanitizer.)
set -u
plain=${XCSREG_PLAIN:-./xcsreg}
if [ ! -x "$plain" ]; then
	echo "not ok - the plain build $plain exists (make all)"
	exit 1
fi
fails=0
for f in tests/lua/test_*.lua; do
	log=$(mktemp)
	valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=99 --log-file="$log" "$plain" run "$f" >/dev/null 2>&1
	rc=$?
	if [ $rc -ne 99 ] && [ ! -s "$log" ]; then
		echo "ok - valgrind: $f: no errors, no leaks"
	else
		echo "not ok - valgrind: $f (exit $rc)"
		sed 's/^/#   /' "$log" | head -40
		fails=$((fails + 1))
	fi
	rm -f "$log"
done
[ $fails -eq 0 ]
