"""Make the before/after pictures of docs/removal.md, here, with what runs here.

    .venv/bin/python scripts/removal_pictures.py [--out docs/screenshots]

1. removal-classical.png: scikit-image's astronaut (512 px) with a 90x105 px patch and a 3 px scratch
   masked, then filled by the classical fill: fine for the scratch, streaks in the patch (the issue's case,
   and what the studio's large-hole message is about).
2. removal-exact.png: a 6000x4000 photo with a 1000x800 px hole filled by an MI-GAN-shaped ONNX network
   with random weights (tests/removal_models.py), and the map of the pixels that changed. Random weights
   paint noise, so this picture shows where pixels may change (the feathered hole, nowhere else), not what a
   trained network paints: that needs the downloaded weights.
3. --studio: removal-studio.png, the real window under Xvfb (needs xvfb, xdotool, imagemagick, libxcb-cursor0):
   nothing downloaded, a large brush stroke masked over the helmet, Ctrl+Enter. The classical fill runs, the message
   bar offers MI-GAN for the hole it cannot fill well, and the line under Generate says what will run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from inpaint_studio.core.jobspec import ClassicalMethod, InpaintJob  # noqa: E402
from inpaint_studio.engine.runner import Engine  # noqa: E402
from tests.removal_models import build_migan_onnx  # noqa: E402

LABEL_PX = 22


def labelled(images: list[Image.Image], labels: list[str], height: int = 360) -> Image.Image:
    tiles = [image.convert("RGB").resize((round(image.width * height / image.height), height)) for image in images]
    out = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), height + LABEL_PX), "white")
    draw = ImageDraw.Draw(out)
    x = 0
    for tile, label in zip(tiles, labels):
        out.paste(tile, (x, 0))
        draw.text((x + 4, height + 5), label, fill="black")
        x += tile.width + 8
    return out


def with_mask(image: np.ndarray, mask: np.ndarray) -> Image.Image:
    shown = image.copy()
    hole = mask > 127
    shown[hole] = (0.45 * shown[hole] + 0.55 * np.array([255, 40, 40])).astype(np.uint8)
    return Image.fromarray(shown)


def classical_picture(out: Path) -> None:
    from skimage import data

    photo = data.astronaut()
    mask = np.zeros(photo.shape[:2], np.uint8)
    mask[300:405, 370:460] = 255  # a 90 x 105 px patch over the helmet and the table
    mask[60:63, 20:220] = 255  # a 3 px scratch across the background
    job = InpaintJob(model="classic", classical_method=ClassicalMethod.AUTO)
    result = Engine().run(job, photo, mask)
    filled = np.asarray(result.images[0])
    crop = (slice(250, 450), slice(312, 512))
    scratch = (slice(0, 200), slice(0, 240))
    picture = labelled(
        [
            with_mask(photo, mask),
            Image.fromarray(filled),
            Image.fromarray(filled[crop]),
            Image.fromarray(filled[scratch]),
        ],
        [
            "masked: a 90x105 px patch, a 3 px scratch",
            "classical fill",
            f"the patch: streaks ({result.extra['hole_thickness_px']:.0f} px thick)",
            "the scratch: fine",
        ],
    )
    picture.save(out / "removal-classical.png", optimize=True)
    print(f"saved {out / 'removal-classical.png'}")


def exact_picture(out: Path) -> None:
    rng = np.random.default_rng(0)
    width, height = 6000, 4000
    x = np.linspace(0, 200, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 200, height, dtype=np.float32)[:, None]
    photo = np.empty((height, width, 3), np.uint8)
    photo[..., 0] = (x * 0.9 + 30).astype(np.uint8)
    photo[..., 1] = (y * 0.9 + 20).astype(np.uint8)
    photo[..., 2] = ((x + y) * 0.5).astype(np.uint8)
    photo += rng.integers(0, 10, (height, width, 1), dtype=np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[1600:2400, 2500:3500] = 255
    with tempfile.TemporaryDirectory() as tmp:
        network = build_migan_onnx(Path(tmp) / "migan.onnx")
        result = Engine().run(InpaintJob(model=str(network)), photo, mask)
    filled = np.asarray(result.images[0])
    changed = np.any(filled != photo, axis=2)
    left, top, right, bottom = result.region
    changes = np.zeros((height, width, 3), np.uint8)
    changes[changed] = (255, 255, 255)
    box = Image.fromarray(changes)
    ImageDraw.Draw(box).rectangle((left, top, right, bottom), outline=(80, 160, 255), width=12)
    picture = labelled(
        [with_mask(photo, mask), Image.fromarray(filled), box],
        [
            "6000x4000, a 1000x800 px hole",
            "MI-GAN-shaped net, random weights (not a real fill)",
            f"changed pixels (white); blue: the {right - left}x{bottom - top} box it worked on",
        ],
        height=300,
    )
    picture.save(out / "removal-exact.png", optimize=True)
    print(f"saved {out / 'removal-exact.png'}; {int(changed.sum())} pixels changed, all inside the feathered hole")


def studio_picture(out: Path) -> None:
    import os
    import subprocess
    import time

    from skimage import data

    sys.path.insert(0, str(ROOT / "scripts"))
    from screenshots import DISPLAY, SIZE, run, screenshot, stroke, wait_for_window

    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "astronaut.png"
        Image.fromarray(data.astronaut()).resize((1024, 1024)).save(sample)
        (Path(tmp) / "hub").mkdir()
        xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"])
        app = None
        try:
            time.sleep(1.0)
            env = dict(
                os.environ,
                DISPLAY=DISPLAY,
                QT_QPA_PLATFORM="xcb",
                INPAINT_STUDIO_RECOVERY_DIR=tmp,
                INPAINT_STUDIO_CONFIG_DIR=tmp,
                XDG_CONFIG_HOME=tmp,  # the window's own settings start empty too
                HF_HUB_CACHE=str(Path(tmp) / "hub"),  # nothing downloaded
                HF_HUB_OFFLINE="1",
            )
            app = subprocess.Popen([sys.executable, "-m", "inpaint_studio", str(sample)], env=env)
            window = wait_for_window("Inpaint Studio")
            run("xdotool", "windowmove", window, "0", "0")
            run("xdotool", "windowsize", window, str(SIZE[0]), str(SIZE[1]))
            time.sleep(3.0)
            cx, cy = SIZE[0] // 2, SIZE[1] // 2
            run("xdotool", "mousemove", str(cx), str(cy))
            run("xdotool", "windowfocus", "--sync", window)
            run("xdotool", "key", "b")  # the mask brush, made large (] grows it by a fifth)
            for _ in range(7):
                run("xdotool", "key", "bracketright")
            stroke([(cx + 130, cy + 170), (cx + 160, cy + 190)])  # over the helmet, lower right of the photo
            time.sleep(0.5)
            run("xdotool", "key", "ctrl+Return")  # the default choice: the classical fill (nothing installed)
            time.sleep(25)  # the engine's first start (importing torch) comes first
            screenshot(out / "removal-studio.png")
        finally:
            if app is not None:
                app.terminate()
                try:
                    app.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    app.kill()
            xvfb.terminate()
            xvfb.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--studio", action="store_true", help="also the window screenshot (under Xvfb)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    classical_picture(args.out)
    exact_picture(args.out)
    if args.studio:
        studio_picture(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
