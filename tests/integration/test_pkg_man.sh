#!/usr/bin/env bash
# needs: none
# Cheap checks of the packaging, run everywhere (no root, network or Debian
# tools): the man page renders without warnings and names every command, host
# option, shipped script, script flag, exit status and environment variable
# the binary knows; its version, debian/changelog's and xcsreg.h's agree;
# `make install PREFIX=/usr` puts in place every file debian/ and the man page
# promise, with the units pointing at PREFIX; the bash completion offers what
# the binary's help lists.
set -u
T_PASS=0 T_FAIL=0
ok() { T_PASS=$((T_PASS + 1)); echo "ok - $1"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $1"; shift; printf '%s\n' "$@" | sed 's/^/# /'; }
expect_eq() { if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "want: $2" "got:  $3"; fi; }
cd "$(dirname "$0")/../.."
x=${XCSREG:-./xcsreg}
tmp=$(mktemp -d "${XCSREG_TEST_TMP:-/tmp}/pkgman.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
page=doc/xcsreg.1

# ---- the page renders ----
warn=$(groff -man -ww -z "$page" 2>&1)
expect_eq "groff -man -ww: no warnings" "" "$warn"
if command -v man >/dev/null; then
	warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
	expect_eq "man --warnings -l: no warnings" "" "$warn"
else
	echo "## man is missing: only groff rendered the page"
fi
# plain text, no hyphenation, long lines: words as they are
text=$(LC_ALL=C groff -man -Tascii -P-c -P-b -P-u -rHY=0 -rLL=250n "$page")
missing=""
for s in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS SCRIPTS FILES ENVIRONMENT "EXIT STATUS" EXAMPLES "SEE ALSO"; do
	grep -q "^$s\$" <<<"$text" || missing="$missing [$s]"
done
expect_eq "sections NAME SYNOPSIS DESCRIPTION COMMANDS SCRIPTS FILES ENVIRONMENT EXIT STATUS EXAMPLES SEE ALSO" "" "$missing"
# one word as the page shows it, - and all
has() { grep -qE -- "(^|[^A-Za-z0-9_-])$1([^A-Za-z0-9_-]|\$)" <<<"$text"; }

# ---- what the binary knows is on the page ----
version=$(sed -n 's/^#define XCSREG_VERSION "\(.*\)"/\1/p' src/xcsreg.h)
expect_eq "the page's version is xcsreg.h's" "xcsreg $version" "$(sed -n 's/^\.TH [^"]*"[^"]*" "\([^"]*\)".*/\1/p' "$page")"
expect_eq "debian/changelog's version is xcsreg.h's" "$version" "$(dpkg-parsechangelog -S Version 2>/dev/null || sed -n '1s/^xcsreg (\([^)]*\)).*/\1/p' debian/changelog)"

help=$("$x" --help)
missing=""
for c in $(sed -n '/^commands:/,/^$/s/^  \([a-z][a-z]*\).*/\1/p' <<<"$help"); do has "$c" || missing="$missing $c"; done
for o in $(sed -n '/^options:/,/^$/s/^ *\(-[a-z], \)\{0,1\}\(--[a-z-]*\).*/\2/p' <<<"$help"); do has "$o" || missing="$missing $o"; done
expect_eq "every command and host option of xcsreg --help" "" "$missing"

scripts=$("$x" scripts | sed -n '/^modules/q; s/^  \([^ ][^ ]*\) .*/\1/p')
expect_eq "xcsreg scripts lists the shipped scripts" "credential-provider.lua setup.lua status.lua" "$(echo $scripts)"
for s in $scripts; do
	grep -q "^\.SS $s\$" "$page" || not_ok "$s has its own subsection under SCRIPTS"
	sec=$(awk -v s="$s" '$0 == "   " s { on = 1; next } /^   [^ ]/ || /^[A-Z]/ { on = 0 } on' <<<"$text")
	missing=""
	for f in $("$x" run "$s" --help | sed -n '/^Flags:/,/^$/s/^ *\(-[a-zA-Z], \)\{0,1\}\(--[a-z][a-z-]*\).*/\2/p'); do
		grep -qE -- "(^|[^a-z-])$f([^a-z-]|\$)" <<<"$sec" || missing="$missing $f"
	done
	expect_eq "$s: every flag of its --help is in its subsection" "" "$missing"
done

missing=""
exits=$(awk '/^\.SH EXIT STATUS/ { on = 1; next } /^\.SH / { on = 0 } on && prev ~ /^\.TP/ { print } { prev = $0 }' "$page")
for code in 0 1 2 3 '128 + '; do grep -q "^\.B.* $code\|^\.B $code" <<<"$exits" || grep -qF "$code" <<<"$exits" || missing="$missing $code"; done
expect_eq "exit statuses 0 1 2 3 and 128+N" "" "$missing"

missing=""
for v in $(grep -rhoE '"(XCSREG_[A-Z_]+|KUBECONFIG|KUBERNETES_SERVICE_[A-Z]+|POD_NAMESPACE|XDG_RUNTIME_DIR|GCE_[A-Z_]+|AWS_[A-Z_]*[A-Z])"' src lua | tr -d '"' | sort -u); do
	has "$v" || missing="$missing $v"
done
expect_eq "every environment variable src/ and lua/ read (XCSREG_ALLOW_CORE, XCSREG_CONFIG, ...)" "" "$missing"

# ---- make install puts what debian/ and the page promise in place ----
dest=$tmp/dest
out=$(make -s install DESTDIR="$dest" PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system BIN="$x" 2>&1)
expect_eq "make install DESTDIR PREFIX=/usr SYSTEMDUNITDIR=/lib/systemd/system" "0" "$?"
missing=""
for f in /usr/bin/xcsreg /usr/share/man/man1/xcsreg.1 /usr/share/bash-completion/completions/xcsreg \
	$(sed -n 's/^\.B \(\/usr\/share\/doc\/[^ ]*[^/ ]\)$/\1/p; s/^\.B \(\/lib\/systemd\/system\/[^\\]*\)\\fR.*\\fP\(.*\)$/\1 \2/p' "$page"); do
	[ -e "$dest$f" ] || missing="$missing $f"
done
expect_eq "the files the man page's FILES names under /usr/share/doc and /lib/systemd, and the page and completion, are installed" "" "$missing"
expect_eq "the installed units run PREFIX's binary and name PREFIX's docs" "" \
	"$(grep -l /usr/local "$dest/lib/systemd/system/"* 2>/dev/null)"
expect_eq "ExecStart=/usr/bin/xcsreg" "2" "$(grep -c '^ExecStart=/usr/bin/xcsreg ' "$dest/lib/systemd/system/xcsreg.service")"
expect_eq "debian/rules installs with make install" "1" \
	"$(grep -c '$(MAKE) install DESTDIR=$(CURDIR)/debian/xcsreg PREFIX=/usr' debian/rules)"
expect_eq "debian/ makes the directories the page names: /etc/xcsreg /var/lib/xcsreg" "etc/xcsreg var/lib/xcsreg" "$(echo $(cat debian/xcsreg.dirs))"
expect_eq "postinst sets their modes (FILES: 0750 root:xcsreg, 0700 xcsreg)" "2" \
	"$(grep -cE 'statoverride --update --add (root xcsreg 0750 /etc/xcsreg|xcsreg xcsreg 0700 /var/lib/xcsreg)' debian/xcsreg.postinst)"

# ---- the manifests name the image as make image tags it ----
images=$(grep -h '^ *image:' scripts/k8s/*.yaml | awk '{print $2}' | sort -u)
expect_eq "scripts/k8s/ names one image, .../xcsreg:VERSION (make image: localhost/xcsreg:$version)" "xcsreg:$version" \
	"$(sed 's,.*/,,' <<<"$images" | sort -u)"
expect_eq "Makefile: IMAGE defaults to localhost/xcsreg:VERSION" "IMAGE ?= localhost/xcsreg:\$(VERSION)" "$(grep '^IMAGE ?=' Makefile)"

# ---- the site file example passes xcsreg's own checks ----
printf 'fake-pull-password' >"$tmp/ghcr.token"
printf 'fake-pull-password' >"$tmp/harbor.token"
chmod 600 "$tmp"/*.token
sed "s,/etc/xcsreg/,$tmp/,g" examples/registries.lua >"$tmp/registries.lua"
out=$("$x" run setup.lua --config "$tmp/registries.lua" --dry-run=client -o json 2>&1 >/dev/null); rc=$?
expect_eq "examples/registries.lua: setup.lua --dry-run=client accepts it" "0|" "$rc|$out"

# ---- the bash completion offers what the help lists ----
comp() { XC="$x" bash -c '. scripts/completion/xcsreg.bash; COMP_WORDS=("$XC" "$@"); COMP_CWORD=$#; _xcsreg; echo "${COMPREPLY[*]}"' _ "$@"; }
expect_eq "completion: the commands" "run scripts cat version help" "$(comp "")"
expect_eq "completion: the shipped scripts after run" "setup.lua status.lua" "$(comp run s | tr ' ' '\n' | grep '\.lua$' | xargs)"
for s in $scripts; do
	want=$("$x" run "$s" --help | sed -n '/^Flags:/,/^$/s/^ *\(-[a-zA-Z], \)\{0,1\}\(--[a-z][a-z-]*\).*/\2/p' | xargs)
	expect_eq "completion: every flag of $s" "$want" "$(comp run "$s" "")"
done
expect_eq "completion: --dry-run's modes" "client server" "$(comp run setup.lua --dry-run "")"
expect_eq "completion: a module name after cat" "xcsreg/reconcile.lua" "$(comp cat xcsreg/reco)"

echo "test_pkg_man: $T_PASS passed, $T_FAIL failed"
[ "$T_FAIL" -eq 0 ]
