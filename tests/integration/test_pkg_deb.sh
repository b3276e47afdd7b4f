#!/usr/bin/env bash
# needs: none
# The Debian package of `make deb`: exactly one build/deb/xcsreg_VERSION_ARCH.deb,
# lintian-clean, with the files and Depends issue #15 names; installed by apt
# into a fresh minimal Debian 12 root (scripts/debian-root: mmdebstrap from the
# package mirror), where xcsreg runs, its man page renders, the user and the
# directories' modes are set, the units are not enabled; purged, it leaves no state.
# Skipped, saying why, without root, dpkg-buildpackage, debhelper, lintian or mmdebstrap.
set -u
T_PASS=0 T_FAIL=0
ok() { T_PASS=$((T_PASS + 1)); echo "ok - $1"; }
not_ok() { T_FAIL=$((T_FAIL + 1)); echo "not ok - $1"; shift; printf '%s\n' "$@" | sed 's/^/# /'; }
expect_eq() { if [ "$2" == "$3" ]; then ok "$1"; else not_ok "$1" "want: $2" "got:  $3"; fi; }
finish() { echo "test_pkg_deb: $T_PASS passed, $T_FAIL failed"; [ "$T_FAIL" -eq 0 ]; exit; }
cd "$(dirname "$0")/../.."

skip() { ok "package test skipped: $1"; echo "## skipped: $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip "not root (mmdebstrap and chroot need it)"
for tool in dpkg-buildpackage dh lintian mmdebstrap; do
	command -v "$tool" >/dev/null || skip "$tool is missing (scripts/install-deps installs it)"
done

version=$(sed -n 's/^#define XCSREG_VERSION "\(.*\)"/\1/p' src/xcsreg.h)
arch=$(dpkg --print-architecture)
deb=build/deb/xcsreg_${version}_${arch}.deb
start=$SECONDS
out=$(make -s deb 2>&1) || { not_ok "make deb" "$out"; finish; }
echo "## make deb: $((SECONDS - start)) s"
expect_eq "make deb leaves exactly one package, build/deb/xcsreg_VERSION_ARCH.deb" "$deb" "$(ls build/deb/*.deb)"

start=$SECONDS
lint=$(lintian --info --pedantic --display-experimental --tag-display-limit 0 "$deb" 2>&1 | grep -v 'running with root privileges')
echo "## lintian ($((SECONDS - start)) s): ${lint:-no tags}"
expect_eq "lintian: no errors" "" "$(grep '^E:' <<<"$lint")"
expect_eq "lintian: no warnings" "" "$(grep '^W:' <<<"$lint")"

fields=$(dpkg-deb -f "$deb" Version Depends)
expect_eq "version is xcsreg.h's" "Version: $version" "$(head -n 1 <<<"$fields")"
for lib in libc6 liblua5.4-0 libcjson1 libyaml-0-2 libcurl4 ca-certificates adduser; do
	grep -q "[ ,]$lib\b" <<<"$fields" || not_ok "Depends names $lib" "$fields"
done
ok "Depends: shlibs (libc6 liblua5.4-0 libcjson1 libyaml-0-2), libcurl4 (loaded with dlopen), ca-certificates, adduser"
contents=$(dpkg-deb -c "$deb" | awk '{print $1, $6}')
want="-rwxr-xr-x ./usr/bin/xcsreg
-rw-r--r-- ./usr/share/man/man1/xcsreg.1.gz
-rw-r--r-- ./usr/share/bash-completion/completions/xcsreg
-rw-r--r-- ./lib/systemd/system/xcsreg.service
-rw-r--r-- ./lib/systemd/system/xcsreg.timer
-rw-r--r-- ./usr/share/doc/xcsreg/examples/xcsreg.cron
-rw-r--r-- ./usr/share/doc/xcsreg/examples/registries.lua
drwxr-xr-x ./etc/xcsreg/
drwxr-xr-x ./var/lib/xcsreg/"
missing=$(grep -vxF -f <(printf '%s\n' "$contents") <<<"$want")
expect_eq "the package holds the binary, man page, completion, units, examples, /etc/xcsreg" "" "$missing"

# ---- installed into a fresh Debian 12 root ----
root=build/deb/root
start=$SECONDS
if ! log=$(scripts/debian-root "$root" "$deb" man-db 2>&1); then
	not_ok "a fresh Debian 12 root with the package installed by apt" "$(tail -n 20 <<<"$log")"
	finish
fi
ok "apt installs the package into a fresh Debian 12 root made by mmdebstrap ($((SECONDS - start)) s)"
echo "## install root: $((SECONDS - start)) s"
in_root() { chroot "$root" "$@"; }
expect_eq "xcsreg version runs there" "xcsreg $version" "$(in_root xcsreg version 2>&1 | head -n 1)"
out=$(in_root xcsreg run setup.lua --help 2>&1); rc=$?
expect_eq "xcsreg run setup.lua --help runs there" "0 usage: xcsreg run setup.lua" "$rc ${out%% \[*}"
out=$(in_root xcsreg run status.lua --help 2>&1); rc=$?
expect_eq "xcsreg run status.lua --help runs there" "0 usage: xcsreg run status.lua" "$rc ${out%% \[*}"
warn=$(in_root env LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l /usr/share/man/man1/xcsreg.1.gz 2>&1 >/dev/null)
page=$(in_root env LC_ALL=C.UTF-8 MANWIDTH=80 man -l /usr/share/man/man1/xcsreg.1.gz 2>/dev/null)
expect_eq "man -l renders the installed page without warnings" "EXIT STATUS|" "$(grep -o 'EXIT STATUS' <<<"$page")|$warn"
expect_eq "man xcsreg finds it" "XCSREG(1)" "$(in_root env MANWIDTH=80 man xcsreg 2>/dev/null | head -n 1 | awk '{print $1}')"
expect_eq "the system user xcsreg, no login" "/nonexistent:/usr/sbin/nologin" "$(in_root getent passwd xcsreg | cut -d: -f6,7)"
expect_eq "/etc/xcsreg root:xcsreg 0750, /var/lib/xcsreg xcsreg:xcsreg 0700" \
	"750 root xcsreg|700 xcsreg xcsreg" "$(in_root stat -c '%a %U %G' /etc/xcsreg)|$(in_root stat -c '%a %U %G' /var/lib/xcsreg)"
expect_eq "the timer and the service are installed, not enabled" "installed|" \
	"$([ -f "$root/lib/systemd/system/xcsreg.timer" ] && [ -f "$root/lib/systemd/system/xcsreg.service" ] && echo installed)|$(find "$root/etc/systemd" -name 'xcsreg*')"
expect_eq "the installed service runs /usr/bin/xcsreg" "" "$(grep -n '/usr/local' "$root/lib/systemd/system/xcsreg.service")"
expect_eq "the bash completion completes there" "run scripts cat version help" \
	"$(in_root bash -c '. /usr/share/bash-completion/completions/xcsreg; COMP_WORDS=(xcsreg ""); COMP_CWORD=1; _xcsreg; echo "${COMPREPLY[*]}"')"
out=$(in_root apt-get purge -y -q xcsreg 2>&1); rc=$?
expect_eq "purge: no /var/lib/xcsreg, no statoverride left" "0||" \
	"$rc|$(ls -d "$root/var/lib/xcsreg" 2>/dev/null)|$(in_root dpkg-statoverride --list | grep xcsreg)"
rm -rf "$root"
finish
