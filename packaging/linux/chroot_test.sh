#!/usr/bin/env bash
# Install the .deb into a clean Debian root made with debootstrap and run the app there.
#
#   sudo bash packaging/linux/chroot_test.sh DEB MODELS_DIR OUT_DIR [SUITE]
#
# What it proves: on a minimal Debian (no Python, no Qt, no X libraries) `apt-get install ./x.deb` pulls in
# everything the bundle needs through Depends; the installed app passes the smoke test (offscreen), shows
# its window on a real X server through Qt's xcb plugin, registers its desktop entry, file associations and
# project MIME type, and uninstalls cleanly. Needs root (chroot, mount) and network access to a Debian mirror.
# The base system is cached as a tarball in packaging/build so a rebuild does not download it again.
set -euo pipefail

DEB=$(realpath "${1:?the .deb}")
MODELS=$(realpath "${2:?folder with the tiny smoke-test models}")
OUT=$(realpath -m "${3:?output folder}")
SUITE=${4:-bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=$ROOT/packaging/build/chroot-$SUITE-minbase.tar
PACKAGE=$(dpkg-deb -f "$DEB" Package)
DISPLAY_NUM=${CHROOT_TEST_DISPLAY:-:88}

[ "$(id -u)" = 0 ] || { echo "chroot_test.sh needs root" >&2; exit 2; }
mkdir -p "$OUT"
ROOTFS=$(mktemp -d /tmp/inpaint-chroot.XXXXXX)
XVFB_PID=
cleanup() {
    [ -n "$XVFB_PID" ] && kill "$XVFB_PID" 2>/dev/null || true
    for mountpoint in tmp/.X11-unix dev/pts dev proc sys; do
        mountpoint -q "$ROOTFS/$mountpoint" && umount -l "$ROOTFS/$mountpoint" || true
    done
    rm -rf --one-file-system "$ROOTFS"
}
trap cleanup EXIT

if [ -f "$CACHE" ]; then
    echo "== base system from $CACHE"
    tar -xf "$CACHE" -C "$ROOTFS"
else
    echo "== debootstrap $SUITE (minbase) from $MIRROR"
    debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$OUT/debootstrap.log" 2>&1 \
        || { tail -20 "$OUT/debootstrap.log"; exit 1; }
    tar -cf "$CACHE" -C "$ROOTFS" .
fi
mount -t proc proc "$ROOTFS/proc"
mount -t sysfs sys "$ROOTFS/sys"
mount --bind /dev "$ROOTFS/dev"
mount --bind /dev/pts "$ROOTFS/dev/pts"
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
in_root() { chroot "$ROOTFS" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

echo "== what the clean root has before the install"
in_root sh -c 'command -v python3 || echo "no python3"; ls /usr/lib/x86_64-linux-gnu | grep -c -E "libQt|libxcb" || true'

cp "$DEB" "$ROOTFS/tmp/"
cp -a "$MODELS" "$ROOTFS/tmp/models"
echo "== apt-get install ./$(basename "$DEB") (Depends and Recommends from $MIRROR)"
in_root apt-get update -q >"$OUT/apt.log" 2>&1
BEFORE=$(in_root dpkg-query -W -f='${Package}\n' | wc -l)
in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/tmp/$(basename "$DEB")" >>"$OUT/apt.log" 2>&1 \
    || { tail -30 "$OUT/apt.log"; exit 1; }
AFTER=$(in_root dpkg-query -W -f='${Package}\n' | wc -l)
echo "installed $PACKAGE and $((AFTER - BEFORE - 1)) dependencies; $(in_root du -sh /opt/inpaint-studio | cut -f1) in /opt"

echo "== smoke test of the installed app (offscreen)"
in_root env HOME=/tmp/home1 QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 \
    inpaint-studio --smoke-test /tmp/smoke-full --model /tmp/models/sd_inpaint | tee "$OUT/chroot-smoke-full.log" \
    | grep -E "FAIL|passed|failed" || true
in_root test -f /tmp/smoke-full/smoke-report.json
grep -q '"ok": true' "$ROOTFS/tmp/smoke-full/smoke-report.json" || { echo "chroot smoke test failed" >&2; exit 1; }
echo "== first-run smoke test (fresh HOME, no models)"
in_root env HOME=/tmp/home2 QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 \
    inpaint-studio --smoke-test /tmp/smoke-first --first-run | tee "$OUT/chroot-smoke-first-run.log" \
    | grep -E "FAIL|passed|failed" || true
grep -q '"ok": true' "$ROOTFS/tmp/smoke-first/smoke-report.json" || { echo "chroot first-run test failed" >&2; exit 1; }
cp "$ROOTFS/tmp/smoke-full/smoke-report.json" "$OUT/chroot-smoke-full.json"
cp "$ROOTFS/tmp/smoke-first/smoke-report.json" "$OUT/chroot-smoke-first-run.json"

echo "== the window on a real X server (xcb) with only the packaged dependencies"
Xvfb "$DISPLAY_NUM" -screen 0 1600x1000x24 -nolisten tcp >/dev/null 2>&1 &
XVFB_PID=$!
for _ in $(seq 100); do [ -S "/tmp/.X11-unix/X${DISPLAY_NUM#:}" ] && break; sleep 0.05; done
mkdir -p "$ROOTFS/tmp/.X11-unix"
mount --bind /tmp/.X11-unix "$ROOTFS/tmp/.X11-unix"
in_root env HOME=/tmp/home3 DISPLAY="$DISPLAY_NUM" QT_QPA_PLATFORM=xcb \
    INPAINT_STUDIO_STARTUP_PROBE=/tmp/xcb-probe.json inpaint-studio >"$OUT/chroot-xcb.log" 2>&1 \
    || { cat "$OUT/chroot-xcb.log"; exit 1; }
in_root test -s /tmp/xcb-probe.json || { echo "no window was shown through xcb" >&2; exit 1; }
echo "window shown and painted through xcb: $(cat "$ROOTFS/tmp/xcb-probe.json")"

echo "== desktop integration"
in_root grep -q "image/png=.*inpaint-studio.desktop" /usr/share/applications/mimeinfo.cache
in_root grep -q "application/x-inpaint-studio=.*inpaint-studio.desktop" /usr/share/applications/mimeinfo.cache
in_root test -f /usr/share/mime/application/x-inpaint-studio.xml
in_root test -f /usr/share/icons/hicolor/256x256/apps/inpaint-studio.png
in_root test -f /usr/share/icons/hicolor/scalable/apps/inpaint-studio.svg
echo "desktop entry in mimeinfo.cache for images and *.inpaint; MIME type registered; icons installed"

echo "== purge"
in_root env DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "$PACKAGE" >>"$OUT/apt.log" 2>&1
in_root test ! -e /opt/inpaint-studio
in_root test ! -e /usr/bin/inpaint-studio
echo "purged: /opt/inpaint-studio and /usr/bin/inpaint-studio are gone"
echo "CHROOT TEST PASSED"
