#!/usr/bin/env bash
# Build and smoke-test the macOS app bundle and disk image (run by the "installers" workflow on macos-14,
# Apple Silicon). Not run on the Linux development machine; see docs/packaging.md.
#
#   bash packaging/macos/build_macos.sh
#
# One variant: torch's macOS arm64 wheel from PyPI runs on the GPU through MPS (the app keeps fp32 there)
# and on the CPU otherwise; there is no CUDA on macOS. Same steps as build_linux.sh, then
# "Inpaint Studio.app" (PyInstaller BUNDLE, see the spec: document types for images and *.inpaint) and a
# compressed .dmg. Signing: ad hoc unless MACOS_SIGN_IDENTITY names a Developer ID certificate in the
# keychain; notarization with notarytool when MACOS_NOTARY_PROFILE names a stored profile.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
BUILD=$ROOT/packaging/build
VENV=$BUILD/venv-mps
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
PYTHON=${PYTHON:-python3.11}
mkdir -p "$BUILD/artifacts"

echo "== build venv"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --quiet)
"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install "torch==$TORCH_VERSION"
"$VENV/bin/python" -c "import torch; print('torch', torch.__version__, 'MPS built:', torch.backends.mps.is_built())"
"${PIP[@]}" install ".[packaging]" pytest
"${PIP[@]}" install --no-deps --force-reinstall .
VERSION=$("$VENV/bin/python" -c "import inpaint_studio; print(inpaint_studio.__version__)")

echo "== traced imports, icons"
OMP_NUM_THREADS=1 "$VENV/bin/python" packaging/trace_imports.py "$BUILD/traced_imports.txt"
"$VENV/bin/python" packaging/make_icons.py

echo "== PyInstaller"
INPAINT_STUDIO_REQUIRE_TRACE=1 "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
    --distpath "$BUILD/dist" --workpath "$BUILD/work" packaging/inpaint-studio.spec
APP="$BUILD/dist/Inpaint Studio.app"
if [ -n "${MACOS_SIGN_IDENTITY:-}" ]; then
    codesign --force --deep --options runtime --timestamp -s "$MACOS_SIGN_IDENTITY" "$APP"
else
    codesign --force --deep -s - "$APP"  # ad hoc: runs locally; Gatekeeper asks on other Macs
fi

echo "== smoke tests (the .app copied outside the checkout, empty environment)"
MODELS=$BUILD/smoke-models
"$VENV/bin/python" - "$MODELS" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, ".")
from tests.tiny_models import BUILDERS
for name in ("sd_inpaint", "sdxl_inpaint"):
    BUILDERS[name](Path(sys.argv[1]) / name)
PY
SMOKE=$(mktemp -d)
ditto "$APP" "$SMOKE/Inpaint Studio.app"
EXE="$SMOKE/Inpaint Studio.app/Contents/MacOS/inpaint-studio"
mkdir -p "$SMOKE/home-full" "$SMOKE/home-first"
(cd "$SMOKE" && env -i PATH=/usr/bin:/bin HOME="$SMOKE/home-full" QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 \
    "$EXE" --smoke-test "$SMOKE/full" --model "$MODELS/sd_inpaint" --cli-model "$MODELS/sdxl_inpaint")
(cd "$SMOKE" && env -i PATH=/usr/bin:/bin HOME="$SMOKE/home-first" QT_QPA_PLATFORM=offscreen \
    "$EXE" --smoke-test "$SMOKE/first-run" --first-run)
cp "$SMOKE/full/smoke-report.json" "$BUILD/artifacts/smoke-report-macos-full.json"
cp "$SMOKE/first-run/smoke-report.json" "$BUILD/artifacts/smoke-report-macos-first-run.json"

echo "== disk image"
DMG=$BUILD/artifacts/inpaint-studio-$VERSION-macos-arm64.dmg
STAGE=$(mktemp -d)
ditto "$APP" "$STAGE/Inpaint Studio.app"
ln -s /Applications "$STAGE/Applications"  # drag-to-install
hdiutil create -volname "Inpaint Studio" -srcfolder "$STAGE" -ov -format UDZO "$DMG"
if [ -n "${MACOS_NOTARY_PROFILE:-}" ]; then
    xcrun notarytool submit "$DMG" --keychain-profile "$MACOS_NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
fi
du -sh "$APP" "$DMG"
