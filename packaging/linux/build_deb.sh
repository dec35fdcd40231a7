#!/usr/bin/env bash
# Build the .deb from a PyInstaller bundle folder.
#
#   bash packaging/linux/build_deb.sh BUNDLE_DIR VERSION VARIANT OUT_DIR
#
# Layout: the bundle in /opt/inpaint-studio, a /usr/bin/inpaint-studio symlink, the desktop entry, the icons
# (hicolor PNG sizes + scalable SVG) and the shared-mime-info type for *.inpaint projects. No maintainer
# scripts: the desktop-file-utils, shared-mime-info and hicolor-icon-theme packages run their dpkg file
# triggers (update-desktop-database, update-mime-database, gtk-update-icon-cache) when files land in their
# folders, which is what Debian policy recommends over postinst calls.
set -euo pipefail

BUNDLE=${1:?bundle folder}
VERSION=${2:?version}
VARIANT=${3:?cpu or cuda}
OUT=${4:?output folder}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
RES=$ROOT/resources

case "$VARIANT" in
    cpu) PACKAGE=inpaint-studio; OTHER=inpaint-studio-cuda; FLAVOUR="CPU build" ;;
    cuda) PACKAGE=inpaint-studio-cuda; OTHER=inpaint-studio; FLAVOUR="NVIDIA CUDA build" ;;
    *) echo "unknown variant $VARIANT" >&2; exit 2 ;;
esac

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/inpaint-deb.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/$PACKAGE

install -d "$PKG/DEBIAN" "$PKG/opt" "$PKG/usr/bin" "$PKG/usr/share/applications" \
    "$PKG/usr/share/mime/packages" "$PKG/usr/share/icons/hicolor/scalable/apps" "$PKG/usr/share/doc/$PACKAGE"
cp -a "$BUNDLE" "$PKG/opt/inpaint-studio"
# Modes as Debian policy wants them (dpkg installs what the archive says): directories 755, programs 755,
# everything else 644, shared libraries included (wheels ship many .so files and licence texts as 755).
find "$PKG/opt/inpaint-studio" -type d -exec chmod 755 {} +
find "$PKG/opt/inpaint-studio" -type f -exec chmod 644 {} +
while IFS= read -r -d '' file; do
    case "$file" in *.so|*.so.*) continue ;; esac
    [ "$(head -c 4 "$file" | od -An -c | tr -d ' ')" = "177ELF" ] && chmod 755 "$file"
done < <(find "$PKG/opt/inpaint-studio" -type f -print0)
ln -s /opt/inpaint-studio/inpaint-studio "$PKG/usr/bin/inpaint-studio"
install -m 644 "$RES/inpaint-studio.desktop" "$PKG/usr/share/applications/inpaint-studio.desktop"
install -m 644 "$RES/inpaint-studio-mime.xml" "$PKG/usr/share/mime/packages/inpaint-studio.xml"
install -m 644 "$RES/icons/inpaint-studio.svg" "$PKG/usr/share/icons/hicolor/scalable/apps/inpaint-studio.svg"
for png in "$RES"/icons/inpaint-studio-*.png; do
    size=${png##*-}; size=${size%.png}
    install -D -m 644 "$png" "$PKG/usr/share/icons/hicolor/${size}x${size}/apps/inpaint-studio.png"
done
cat > "$PKG/usr/share/doc/$PACKAGE/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: inpaint-studio

Files: *
Copyright: $(date -u +%Y -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}") Inpaint Studio contributors
License: Apache-2.0
Comment: The bundle in /opt/inpaint-studio also contains Python, Qt (LGPL-3.0), PyTorch (BSD-3-Clause),
 diffusers and transformers (Apache-2.0), OpenCV (Apache-2.0) and their dependencies, each under its own
 licence; their licence files are inside the bundle's dist-info folders.
 On Debian systems the Apache-2.0 licence is in /usr/share/common-licenses/Apache-2.0.
COPYRIGHT
# Lintian tags that a self-contained application bundle raises by design; each is explained in
# docs/packaging.md ("lintian"). The real findings (file modes, copyright) are fixed above instead.
install -d "$PKG/usr/share/lintian/overrides"
cat > "$PKG/usr/share/lintian/overrides/$PACKAGE" <<OVERRIDES
# Third-party application bundle in /opt (FHS: add-on application software), like browsers and IDEs.
$PACKAGE: dir-or-file-in-opt [opt/inpaint-studio/*]
# Python, Qt, PyTorch and OpenCV with the libraries their wheels ship, found through their own RPATHs.
$PACKAGE: embedded-library *
$PACKAGE: custom-library-search-path *
$PACKAGE: shared-library-lacks-prerequisites *
$PACKAGE: library-not-linked-against-libc *
$PACKAGE: missing-depends-on-sensible-utils *
# Upstream binaries as the wheels ship them (PyTorch, OpenCV, Pillow, the PyInstaller bootloader).
$PACKAGE: unstripped-binary-or-object *
$PACKAGE: hardening-no-pie *
# Python sources kept next to the bytecode (TorchScript and transformers read them); never run directly.
$PACKAGE: script-not-executable *
$PACKAGE: wrong-path-for-interpreter *
$PACKAGE: unusual-interpreter *
# The command line documents itself: inpaint-studio --help.
$PACKAGE: no-manual-page [usr/bin/inpaint-studio]
OVERRIDES
gzip -9n > "$PKG/usr/share/doc/$PACKAGE/changelog.gz" <<CHANGELOG
$PACKAGE ($VERSION) unstable; urgency=medium

  * Release $VERSION ($FLAVOUR).

 -- Inpaint Studio maintainers <maintainers@inpaint-studio.invalid>  $(date -R -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")
CHANGELOG

# The bundle's binaries need at least the build machine's glibc and C++ runtime (the bundle does not carry
# them): building on Ubuntu 22.04 (CI) gives glibc 2.35, on Debian 12 2.36.
GLIBC=$(getconf GNU_LIBC_VERSION | cut -d" " -f2)
GCC_MAJOR=$(dpkg-query -W -f='${Version}' libstdc++6 2>/dev/null | cut -d. -f1)
GCC_MAJOR=${GCC_MAJOR:-12}
# What the bundle does not carry: glibc and the X11/Wayland/GL/font stack that Qt's xcb platform plugin
# loads from the system (PyInstaller collects neither glibc nor libraries that are part of a desktop).
# libxcb-cursor0 is the one Qt >= 6.5 needs that desktops often lack.
DEPENDS="libc6 (>= $GLIBC), libstdc++6 (>= $GCC_MAJOR), libgcc-s1, libglib2.0-0, libfontconfig1, libfreetype6, libdbus-1-3, \
libegl1, libgl1, libx11-6, libx11-xcb1, libxkbcommon0, libxkbcommon-x11-0, libxcb1, libxcb-cursor0, \
libxcb-icccm4, libxcb-image0, libxcb-keysyms1, libxcb-randr0, libxcb-render-util0, libxcb-render0, \
libxcb-shape0, libxcb-shm0, libxcb-sync1, libxcb-xfixes0, libxcb-xinerama0, libxcb-xkb1, libxcb-xinput0, \
libwayland-client0, libwayland-cursor0, libwayland-egl1"
# The GTK platform theme plugin (native file dialogs on GNOME) loads only where GTK 3 is installed.
RECOMMENDS="libgtk-3-0, desktop-file-utils, shared-mime-info, hicolor-icon-theme"
INSTALLED_KB=$(du -sk --apparent-size "$PKG" | cut -f1)
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: $PACKAGE
Version: $VERSION
Section: graphics
Priority: optional
Architecture: amd64
Maintainer: Inpaint Studio maintainers <maintainers@inpaint-studio.invalid>
Installed-Size: $INSTALLED_KB
Depends: $DEPENDS
Recommends: $RECOMMENDS
Conflicts: $OTHER
Replaces: $OTHER
Provides: inpaint-studio-app
Homepage: https://github.com/inpaint-studio/inpaint-studio
Description: local image inpainting with diffusion models ($FLAVOUR)
 Inpaint Studio repaints masked parts of images on your own computer: paint a
 mask, type a prompt, and a diffusion model (Stable Diffusion 1.5, SDXL,
 Kandinsky 2.2) fills the area; the classical OpenCV fill works with nothing
 downloaded. Results land as layers with a full, reproducible history.
 .
 This package is self-contained (Python, Qt, PyTorch and diffusers are inside
 /opt/inpaint-studio). Model weights are not included: the app downloads them
 into the Hugging Face cache when asked.
CONTROL

mkdir -p "$OUT"
DEB=$OUT/${PACKAGE}_${VERSION}_amd64.deb
# root:root ownership without needing root; xz keeps the download small (torch compresses well).
dpkg-deb --root-owner-group -Zxz -z6 --build "$PKG" "$DEB" >/dev/null
echo "$DEB"
