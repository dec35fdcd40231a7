#!/usr/bin/env bash
# Build and test the Linux installers: one command.
#
#   bash packaging/build_linux.sh [--variant cpu|cuda] [--no-chroot] [--no-startup] [--runs N] [--reuse]
#
# 1. a build virtualenv (packaging/build/venv-VARIANT) with the variant's torch, the app and PyInstaller;
# 2. trace_imports.py: the modules diffusers/transformers load by name, for the spec's hidden imports;
# 3. PyInstaller (packaging/inpaint-studio.spec) -> packaging/build/dist/inpaint-studio/ (self-contained);
# 4. artifacts in packaging/build/artifacts: inpaint-studio-VERSION-linux-x86_64-VARIANT.tar.gz and the .deb;
# 5. checks: the .deb's Depends cover every system library the bundle links (check_deps.py), lintian;
# 6. smoke tests of the bundle unpacked from the .tar.gz into /tmp, run with an empty environment (no source
#    tree, no virtualenv, no PYTHONPATH; cwd outside the repository): a full run (window offscreen, classical
#    fill, a tiny diffusion model through the GUI, and all tiny model families through the CLI) and a
#    first-run (fresh HOME, no models). The same smoke test runs from source first; the two must report the
#    same capabilities (Qt plugins, codecs, samplers), so bundling lost nothing;
# 7. the .deb installed into a clean debootstrap root and run there (root and a Debian mirror needed;
#    skipped with a notice otherwise, or with --no-chroot);
# 8. start-up time to a painted window, frozen vs source, under Xvfb (measure_startup.py);
# 9. a summary with sizes: packaging/build/artifacts/build-summary-VARIANT.json, printed at the end.
#
# --reuse skips steps 1-4 when a bundle and its archives exist (to rerun the tests after a fix in them);
# a release is always built without it.
#
# Environment: PYTHON (default python3.11, else python3) for the build venv; TORCH_VERSION (2.13.0);
# TORCH_INDEX_URL (default: PyTorch's CPU index for cpu, its cu128 index for cuda; when unreachable the pip
# configuration's own indexes are used, and the installed torch is checked to be the right variant).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

VARIANT=cpu
CHROOT=1
STARTUP=1
RUNS=5
REUSE=0
while [ $# -gt 0 ]; do
    case "$1" in
        --variant) VARIANT=$2; shift 2 ;;
        --no-chroot) CHROOT=0; shift ;;
        --no-startup) STARTUP=0; shift ;;
        --runs) RUNS=$2; shift 2 ;;
        --reuse) REUSE=1; shift ;;
        -h|--help) sed -n '2,25p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case "$VARIANT" in cpu|cuda) ;; *) echo "--variant is cpu or cuda" >&2; exit 2 ;; esac

BUILD=$ROOT/packaging/build
VENV=$BUILD/venv-$VARIANT
DIST=$BUILD/dist-$VARIANT
WORK=$BUILD/work-$VARIANT
ARTIFACTS=$BUILD/artifacts
LOGS=$BUILD/logs-$VARIANT
MODELS=$BUILD/smoke-models
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
mkdir -p "$ARTIFACTS" "$LOGS"
T0=$(date +%s)
step() { echo; echo "== [$(( $(date +%s) - T0 ))s] $*"; }

BUNDLE=$DIST/inpaint-studio
if [ "$REUSE" = 1 ] && [ -x "$BUNDLE/inpaint-studio" ] && [ -x "$VENV/bin/python" ]; then
    VERSION=$("$VENV/bin/python" -c "import inpaint_studio; print(inpaint_studio.__version__)")
    TARBALL=$ARTIFACTS/inpaint-studio-$VERSION-linux-x86_64-$VARIANT.tar.gz
    DEB=$(ls "$ARTIFACTS"/inpaint-studio*_"$VERSION"_amd64.deb 2>/dev/null | head -1)
    [ -f "$TARBALL" ] && [ -f "$DEB" ] || { echo "--reuse: no archives in $ARTIFACTS; build without it" >&2; exit 2; }
    step "reusing $BUNDLE, $TARBALL and $DEB"
else
REUSE=0
# ---- 1. build virtualenv -----------------------------------------------------------------------------------
step "build virtualenv $VENV ($VARIANT torch $TORCH_VERSION)"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --quiet)
"${PIP[@]}" install --upgrade pip
default_index=https://download.pytorch.org/whl/cpu
[ "$VARIANT" = cuda ] && default_index=https://download.pytorch.org/whl/cu128
INDEX=${TORCH_INDEX_URL:-$default_index}
torch_args=("torch==$TORCH_VERSION")
if "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=15)" "$INDEX/torch/" \
    2>/dev/null; then
    torch_args+=(--index-url "$INDEX")
else
    echo "note: $INDEX is not reachable; installing torch==$TORCH_VERSION from the pip configuration's indexes"
fi
"${PIP[@]}" install "${torch_args[@]}"
# The variant must be what it says: a CPU bundle with CUDA torch would be 3 GB larger, and the reverse useless.
"$VENV/bin/python" - "$VARIANT" <<'PY'
import sys, torch
cuda = torch.version.cuda
if (sys.argv[1] == "cuda") != (cuda is not None):
    raise SystemExit(f"torch {torch.__version__} (CUDA {cuda}) is not a {sys.argv[1]} build")
print(f"torch {torch.__version__}, CUDA {cuda}")
PY
find_links=()
[ -d "$ROOT/.whl" ] && find_links=(--find-links "$ROOT/.whl")  # wheels this checkout keeps locally, if any
# pytest: tests/tiny_models.py (the smoke-test models) imports it; the spec excludes it from the bundle.
"${PIP[@]}" install "${find_links[@]}" ".[packaging]" pytest
"${PIP[@]}" install --no-deps --force-reinstall "${find_links[@]}" .  # this working tree's version and metadata
VERSION=$("$VENV/bin/python" -c "import inpaint_studio; print(inpaint_studio.__version__)")
"$VENV/bin/python" -m pip freeze > "$LOGS/build-venv-freeze.txt"

# ---- 2. traced imports, icons ------------------------------------------------------------------------------
step "trace the modules loaded by name (tiny models of every family through the engine)"
OMP_NUM_THREADS=1 "$VENV/bin/python" packaging/trace_imports.py "$BUILD/traced_imports.txt" >"$LOGS/trace.log" 2>&1 \
    || { tail -30 "$LOGS/trace.log"; exit 1; }
tail -1 "$LOGS/trace.log"
"$VENV/bin/python" packaging/make_icons.py >/dev/null

# ---- 3. PyInstaller ----------------------------------------------------------------------------------------
step "PyInstaller"
rm -rf "$BUNDLE"
INPAINT_STUDIO_REQUIRE_TRACE=1 "$VENV/bin/pyinstaller" --noconfirm --log-level WARN \
    --distpath "$DIST" --workpath "$WORK" packaging/inpaint-studio.spec >"$LOGS/pyinstaller.log" 2>&1 \
    || { tail -40 "$LOGS/pyinstaller.log"; exit 1; }
du -sh "$BUNDLE"

# ---- 4. artifacts ------------------------------------------------------------------------------------------
step "archives"
TARBALL=$ARTIFACTS/inpaint-studio-$VERSION-linux-x86_64-$VARIANT.tar.gz
tar -C "$DIST" -czf "$TARBALL" inpaint-studio
DEB=$(bash packaging/linux/build_deb.sh "$BUNDLE" "$VERSION" "$VARIANT" "$ARTIFACTS")
ls -la "$TARBALL" "$DEB"
fi  # --reuse

# ---- 5. package checks -------------------------------------------------------------------------------------
step "the .deb's Depends cover the bundle's system libraries"
CONTROL=$(mktemp)
dpkg-deb -f "$DEB" > "$CONTROL"
"$VENV/bin/python" packaging/linux/check_deps.py "$BUNDLE" "$CONTROL" | tee "$LOGS/check-deps.log" | tail -3
rm -f "$CONTROL"
if command -v lintian >/dev/null; then
    # Informational: a bundled app trips "embedded library" and friends by design (see docs/packaging.md).
    lintian --no-tag-display-limit "$DEB" >"$LOGS/lintian.log" 2>&1 || true
    echo "lintian: $(grep -c '^E:' "$LOGS/lintian.log" || true) errors, $(grep -c '^W:' "$LOGS/lintian.log" || true) warnings (log: $LOGS/lintian.log)"
fi

# ---- 6. smoke tests ----------------------------------------------------------------------------------------
step "tiny smoke-test models"
"$VENV/bin/python" - "$MODELS" >"$LOGS/models.log" 2>&1 <<'PY' || { tail -20 "$LOGS/models.log"; exit 1; }
import sys
from pathlib import Path
sys.path.insert(0, ".")
from tests.tiny_models import BUILDERS
root = Path(sys.argv[1])
for name in ("sd_inpaint", "sdxl_inpaint", "kandinsky_inpaint", "sd_inpaint_single_file"):
    if not (root / name).exists():
        BUILDERS[name](root / name)
PY
ls "$MODELS"
CLI_MODELS=(--cli-model "$MODELS/sdxl_inpaint" --cli-model "$MODELS/kandinsky_inpaint"
    --cli-model "$MODELS/sd_inpaint_single_file/tiny-sd-inpainting.safetensors")
SMOKE=$(mktemp -d /tmp/inpaint-smoke.XXXXXX)
trap 'rm -rf "$SMOKE"' EXIT  # the logs in $LOGS keep the output of a failed run
# An empty environment: no PATH to a venv, no PYTHONPATH, no VIRTUAL_ENV; one torch thread (tiny models).
clean_env() { env -i PATH=/usr/bin:/bin LANG=C.UTF-8 HOME="$1" QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS=1 "${@:2}"; }

step "smoke test from source (build venv), for comparison"
mkdir -p "$SMOKE/home-src"
# PYTHONPATH: the working tree's package, the one the spec bundles (not the venv's installed copy).
(cd "$SMOKE" && clean_env "$SMOKE/home-src" env PYTHONPATH="$ROOT" "$VENV/bin/python" "$ROOT/packaging/entry.py" \
    --smoke-test "$SMOKE/source" \
    --model "$MODELS/sd_inpaint" "${CLI_MODELS[@]}" >"$LOGS/smoke-source.log" 2>&1) \
    || { grep -E "FAIL|Error" "$LOGS/smoke-source.log" | tail -20; exit 1; }
tail -1 "$LOGS/smoke-source.log"

step "smoke test of the bundle unpacked from the .tar.gz (full run)"
tar -C "$SMOKE" -xzf "$TARBALL"
APP=$SMOKE/inpaint-studio/inpaint-studio
mkdir -p "$SMOKE/home-full" "$SMOKE/home-first"
(cd "$SMOKE" && clean_env "$SMOKE/home-full" "$APP" --smoke-test "$SMOKE/frozen-full" --model "$MODELS/sd_inpaint" \
    "${CLI_MODELS[@]}" 2>&1 | tee "$LOGS/smoke-frozen-full.log" | grep -E "PASS|FAIL|passed|FAILED") \
    || true
grep -q '"ok": true' "$SMOKE/frozen-full/smoke-report.json" || { tail -40 "$LOGS/smoke-frozen-full.log"; exit 1; }

step "smoke test of the bundle, second run: first-run state (fresh HOME, no models)"
(cd "$SMOKE" && clean_env "$SMOKE/home-first" "$APP" --smoke-test "$SMOKE/frozen-first-run" --first-run 2>&1 \
    | tee "$LOGS/smoke-frozen-first-run.log" | grep -E "PASS|FAIL|passed|FAILED") || true
grep -q '"ok": true' "$SMOKE/frozen-first-run/smoke-report.json" \
    || { tail -40 "$LOGS/smoke-frozen-first-run.log"; exit 1; }

step "frozen and source report the same capabilities"
"$VENV/bin/python" - "$SMOKE/source/smoke-report.json" "$SMOKE/frozen-full/smoke-report.json" <<'PY'
import json, sys
source, frozen = (json.load(open(p))["capabilities"] for p in sys.argv[1:])
if source != frozen:
    for key in source:
        if source[key] != frozen.get(key):
            print(f"{key}:\n  source {source[key]}\n  frozen {frozen.get(key)}")
    raise SystemExit("the bundle lost something the source install has")
bad = {k: v for k, v in frozen["samplers"].items() if v != "ok"}
print("identical:", ", ".join(source), f"; samplers unavailable in both: {bad or 'none'}")
PY
cp "$SMOKE/frozen-full/smoke-report.json" "$ARTIFACTS/smoke-report-$VARIANT-full.json"
cp "$SMOKE/frozen-first-run/smoke-report.json" "$ARTIFACTS/smoke-report-$VARIANT-first-run.json"

# ---- 7. clean root -----------------------------------------------------------------------------------------
CHROOT_RESULT="not run"
if [ "$CHROOT" = 1 ]; then
    step "install the .deb into a clean debootstrap root and run it there"
    if [ "$(id -u)" = 0 ] && command -v debootstrap >/dev/null; then
        if bash packaging/linux/chroot_test.sh "$DEB" "$MODELS" "$LOGS/chroot" 2>&1 | tee "$LOGS/chroot.log"; then
            CHROOT_RESULT=passed
        else
            echo "chroot test FAILED (log: $LOGS/chroot.log)"; exit 1
        fi
    else
        echo "skipped: needs root and debootstrap (apt-get install debootstrap)"
        CHROOT_RESULT="skipped (needs root and debootstrap)"
    fi
fi

# ---- 8. start-up time --------------------------------------------------------------------------------------
STARTUP_JSON=$ARTIFACTS/startup-$VARIANT.json
if [ "$STARTUP" = 1 ]; then
    step "time to a painted window under Xvfb: frozen vs source ($RUNS runs each, interleaved)"
    if command -v Xvfb >/dev/null; then
        "$VENV/bin/python" packaging/measure_startup.py --runs "$RUNS" --json "$STARTUP_JSON" \
            --cmd "source=/usr/bin/env PYTHONPATH=$ROOT $VENV/bin/python $ROOT/packaging/entry.py" --cmd "frozen=$APP"
    else
        echo "skipped: Xvfb not installed (apt-get install xvfb)"
    fi
fi

# ---- 9. summary --------------------------------------------------------------------------------------------
step "summary"
"$VENV/bin/python" - "$VARIANT" "$VERSION" "$BUNDLE" "$TARBALL" "$DEB" "$CHROOT_RESULT" "$STARTUP_JSON" \
    "$ARTIFACTS/build-summary-$VARIANT.json" "$(( $(date +%s) - T0 ))" <<'PY'
import json, os, platform, sys, torch
from pathlib import Path
variant, version, bundle, tarball, deb, chroot, startup, out, seconds = sys.argv[1:]
def tree_bytes(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file() and not p.is_symlink())
def largest(path, n=12):
    sizes = {}
    for p in Path(path).rglob("*"):
        if p.is_file() and not p.is_symlink():
            rel = p.relative_to(path).parts
            key = "/".join(rel[: 3 if rel[0] == "_internal" else 2])
            sizes[key] = sizes.get(key, 0) + p.stat().st_size
    return {k: round(v / 1e6, 1) for k, v in sorted(sizes.items(), key=lambda kv: -kv[1])[:n]}
summary = {
    "variant": variant,
    "version": version,
    "torch": torch.__version__,
    "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
    "bundle_mb": round(tree_bytes(bundle) / 1e6, 1),
    "bundle_files": sum(1 for p in Path(bundle).rglob("*") if p.is_file()),
    "tar_gz_mb": round(os.path.getsize(tarball) / 1e6, 1),
    "deb_mb": round(os.path.getsize(deb) / 1e6, 1),
    "largest_parts_mb": largest(bundle),
    "chroot_test": chroot,
    "startup": json.load(open(startup))["summary"] if os.path.exists(startup) else None,
    "build_seconds": int(seconds),
}
Path(out).write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary, indent=2))
PY
echo
echo "artifacts in $ARTIFACTS:"
ls -la "$ARTIFACTS"
