#!/usr/bin/env bash
# needs: apisim
# The container image of `make image` (scripts/build-image): built from the
# Debian package and the package mirror alone, at most 40 MB, only the binary,
# its libraries and the CA bundle (no shell, no apt, no dpkg), user 10001;
# run, without a container engine, as its root file system mounted read-only
# (buildah mount, chroot --userspec=10001:10001): `xcsreg version`, and
# setup.lua then status.lua against the API simulator on 127.0.0.1.
# Skipped, saying why, without root, mmdebstrap, buildah or dpkg-buildpackage.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../apisim/testlib.sh
. "$here/../apisim/testlib.sh"
cd "$here/../.."

skip() { ok "image test skipped: $1"; echo "## skipped: $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip "not root (mmdebstrap, buildah mount and chroot need it)"
for tool in mmdebstrap buildah dpkg-buildpackage dh; do
	command -v "$tool" >/dev/null || skip "$tool is missing (scripts/install-deps installs it)"
done

version=$(sed -n 's/^#define XCSREG_VERSION "\(.*\)"/\1/p' src/xcsreg.h)
tag=localhost/xcsreg:$version
start=$SECONDS
if ! out=$(make -s image 2>&1); then
	not_ok "make image builds the image" "$out"
	t_done; exit 1
fi
ok "make image builds $tag ($((SECONDS - start)) s)"
echo "## make image: $((SECONDS - start)) s; $(tail -n 1 <<<"$out")"

size=$(buildah inspect --type image --format '{{.Docker.Size}}' "$tag" 2>/dev/null)
[ -n "$size" ] && [ "$size" -gt 0 ] || size=$(du -sb build/image/root | cut -f1)
echo "## image size: $size bytes"
if [ "$size" -le $((40 * 1000 * 1000)) ]; then ok "the image is at most 40 MB ($size bytes)"; else not_ok "the image is at most 40 MB" "size: $size"; fi
expect_eq "user 10001:10001, entry point /usr/bin/xcsreg" "10001:10001 [/usr/bin/xcsreg] [help]" \
	"$(buildah inspect --type image --format '{{.OCIv1.Config.User}} {{.OCIv1.Config.Entrypoint}} {{.OCIv1.Config.Cmd}}' "$tag")"

ctr=$(buildah from --quiet --pull=never "$tag")
mnt=$(buildah mount "$ctr")
ro=$(mktemp -d "${XCSREG_TEST_TMP:-/tmp}/image-ro.XXXXXX")
cleanup() {
	umount "$ro/run/xcsreg" "$ro/tmp" "$ro/proc" 2>/dev/null
	umount "$ro" 2>/dev/null
	rmdir "$ro" 2>/dev/null
	buildah rm "$ctr" >/dev/null 2>&1
}
trap cleanup EXIT

missing=""
for f in bin/sh bin/bash usr/bin/apt usr/bin/dpkg usr/bin/perl; do
	[ -e "$mnt/$f" ] && missing="$missing $f"
done
expect_eq "no shell, apt, dpkg or perl in the image" "" "$missing"
expect_eq "CA bundle present" "yes" "$([ -s "$mnt/etc/ssl/certs/ca-certificates.crt" ] && echo yes)"
expect_eq "the packages' copyright files are in it" "yes" \
	"$([ -f "$mnt/usr/share/doc/libcurl4/copyright" ] && [ -f "$mnt/usr/share/doc/xcsreg/copyright" ] && echo yes)"

# The site's view: kubeconfig and password in places the CronJob mounts;
# the root read-only, with in-memory /run/xcsreg (the lock) and /tmp.
install -d -o 10001 -g 10001 -m 0700 "$mnt/etc/xcsreg/sim"
install -o 10001 -g 10001 -m 0600 "$XCSREG_SIM_DIR/token.kubeconfig" "$mnt/etc/xcsreg/sim/kubeconfig"
mount --bind "$mnt" "$ro" && mount -o remount,bind,ro "$ro" &&
	mount -t tmpfs -o mode=0755,uid=10001,gid=10001 tmpfs "$ro/run/xcsreg" &&
	mount -t tmpfs -o mode=1777 tmpfs "$ro/tmp" || { not_ok "mount the image's root read-only"; t_done; exit 1; }
in_image() { chroot --userspec=10001:10001 "$ro" /usr/bin/xcsreg "$@"; }

out=$(in_image version 2>&1); rc=$?
expect_eq "xcsreg version runs in the image as uid 10001" "0 xcsreg $version" "$rc $(head -n 1 <<<"$out")"
expect_contains "and finds libcurl (dlopen) and its TLS" "libcurl 7" "$out"
out=$(in_image --help 2>&1); rc=$?
expect_eq "xcsreg --help runs" "0 usage: xcsreg" "$rc ${out%% \[*}"
printf 'local f = io.open("/x", "w") return f and 0 or 1\n' >"$ro/tmp/write.lua"
expect_eq "the root really is read-only" "1" "$(in_image run /tmp/write.lua >/dev/null 2>&1; echo $?)"

ctl POST /reset >/dev/null
run_setup() {
	printf '%s' 'fake-pull-password' | KUBECONFIG=/etc/xcsreg/sim/kubeconfig in_image run setup.lua \
		-n default --secret-name ghcr --docker-server ghcr.io --docker-username xnat-bot \
		--docker-password-stdin --no-verify --lock /run/xcsreg/lock --request-timeout 10 2>&1
}
out=$(run_setup); rc=$?
expect_eq "setup.lua in the image against the simulator: created and configured" \
	"0|secret/ghcr created|serviceaccount/default configured" "$rc|$(tr '\n' '|' <<<"$out" | sed 's/|$//')"
out=$(run_setup); rc=$?
expect_eq "a second run changes nothing" "0|secret/ghcr unchanged|serviceaccount/default unchanged" \
	"$rc|$(tr '\n' '|' <<<"$out" | sed 's/|$//')"
out=$(KUBECONFIG=/etc/xcsreg/sim/kubeconfig in_image run status.lua -q -n default 2>&1); rc=$?
expect_eq "status.lua -q in the image: all is well" "0|" "$rc|$out"

t_done
