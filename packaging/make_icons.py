"""Icons from resources/icons/inpaint-studio.svg.

    python packaging/make_icons.py --png     # re-render the committed PNG sizes (needs rsvg-convert)
    python packaging/make_icons.py           # .ico (Windows) and .icns (macOS) into packaging/build/icons

The PNGs are committed (resources/icons/inpaint-studio-<size>.png), so a build needs only Pillow, which the
app depends on anyway: the Windows and macOS runners have no SVG renderer to rely on. Re-run with --png after
editing the SVG.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

from bundle_config import APP_NAME, ICON_SIZES  # noqa: E402

ICONS = ROOT / "resources" / "icons"
SVG = ICONS / f"{APP_NAME}.svg"
OUT = ROOT / "packaging" / "build" / "icons"


def png_path(size: int) -> Path:
    return ICONS / f"{APP_NAME}-{size}.png"


def render_pngs() -> None:
    rsvg = shutil.which("rsvg-convert")
    if rsvg is None:
        raise SystemExit("rsvg-convert not found: apt-get install librsvg2-bin")
    for size in ICON_SIZES:
        subprocess.run([rsvg, "-w", str(size), "-h", str(size), str(SVG), "-o", str(png_path(size))], check=True)
        print(png_path(size).relative_to(ROOT))


def platform_icons() -> None:
    from PIL import Image

    OUT.mkdir(parents=True, exist_ok=True)
    largest = Image.open(png_path(max(ICON_SIZES))).convert("RGBA")
    # Windows picks the best of several sizes; ICO stores at most 256 px.
    ico_sizes = [(s, s) for s in ICON_SIZES if s <= 256]
    largest.save(OUT / f"{APP_NAME}.ico", sizes=ico_sizes)
    # Pillow writes the standard ICNS sizes it can derive from the largest image.
    largest.save(OUT / f"{APP_NAME}.icns")
    shutil.copyfile(png_path(256), OUT / f"{APP_NAME}.png")
    for name in (f"{APP_NAME}.ico", f"{APP_NAME}.icns", f"{APP_NAME}.png"):
        print((OUT / name).relative_to(ROOT))


def main(argv: list[str]) -> int:
    if "--png" in argv:
        render_pngs()
    platform_icons()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
