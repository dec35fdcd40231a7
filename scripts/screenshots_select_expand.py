"""Screenshots of the Select tool (W) and of Expand Canvas (Ctrl+Alt+C, C), made from the real app under Xvfb.

Like scripts/screenshots.py: starts Xvfb, opens scikit-image's astronaut in `inpaint-studio`, and drives it
with real X mouse and key events (xdotool), saving a screenshot after each stage into docs/screenshots/.

The Select tool needs a Segment Anything model. Where no model can be downloaded (the machine that made the
pictures in docs/ has no internet), `--tiny-sam` builds the tests' tiny random SAM and points the app at it:
the screenshots then show the tool's workings (the proposal, the clicks, the commit), not a real object's
outline. With SlimSAM installed (`inpaint-studio download nielsr/slimsam-50-uniform`), leave it out.

    apt-get install -y xvfb xdotool imagemagick libxcb-cursor0
    .venv/bin/python scripts/screenshots_select_expand.py [--tiny-sam] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from screenshots import DISPLAY, SIZE, run, screenshot, wait_for_window  # noqa: E402


def settings_file(config_home: Path, values: dict[str, object]) -> None:
    """Write the app's settings (QSettings' native file on Linux) before it starts."""
    from PySide6.QtCore import QSettings

    store = QSettings(str(config_home / "Inpaint Studio" / "Inpaint Studio.conf"), QSettings.Format.IniFormat)
    for key, value in values.items():
        store.setValue(key, value)
    store.sync()


def click(x: int, y: int, modifier: str | None = None) -> None:
    run("xdotool", "mousemove", str(x), str(y))
    if modifier:
        run("xdotool", "keydown", modifier)
    run("xdotool", "click", "1")
    if modifier:
        run("xdotool", "keyup", modifier)


def focus_canvas(x: int, y: int) -> None:
    """A middle click (the pan button: it changes nothing) gives the canvas the keyboard focus."""
    run("xdotool", "mousemove", str(x), str(y))
    run("xdotool", "click", "2")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--tiny-sam", action="store_true", help="use the tests' tiny random SAM (no download)")
    parser.add_argument("--wait", type=float, default=25.0, help="seconds for the engine's first job")
    parser.add_argument(
        "--image-bottom", type=int, default=722, help="screen y of the expanded picture's bottom edge, fitted"
    )
    args = parser.parse_args()
    for tool in ("Xvfb", "xdotool", "import"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install -y xvfb xdotool imagemagick libxcb-cursor0")
    args.out.mkdir(parents=True, exist_ok=True)
    from PIL import Image
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        sample = tmp / "astronaut.png"
        Image.fromarray(data.astronaut()).resize((1024, 1024)).save(sample)
        values: dict[str, object] = {"outpaint/margins": "[0, 0, 512, 0]", "outpaint/generate": True}
        if args.tiny_sam:
            from tests.tiny_sam import build_tiny_sam

            values["select/model"] = str(build_tiny_sam(tmp / "tiny-sam"))
        settings_file(tmp / "config", values)
        xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"])
        app = None
        try:
            time.sleep(1.0)
            env = dict(
                os.environ,
                DISPLAY=DISPLAY,
                QT_QPA_PLATFORM="xcb",
                XDG_CONFIG_HOME=str(tmp / "config"),
                INPAINT_STUDIO_RECOVERY_DIR=str(tmp / "recovery"),
                INPAINT_STUDIO_CONFIG_DIR=str(tmp / "models"),
            )
            app = subprocess.Popen([sys.executable, "-m", "inpaint_studio", str(sample)], env=env)
            window = wait_for_window("Inpaint Studio")
            run("xdotool", "windowmove", window, "0", "0")
            run("xdotool", "windowsize", window, str(SIZE[0]), str(SIZE[1]))
            time.sleep(4.0)
            cx, cy = SIZE[0] // 2 - 40, SIZE[1] // 2 - 40  # the canvas's middle (History left, Generate right)
            # --- Select: a click, a click that leaves a part out, Enter
            focus_canvas(cx, cy)
            run("xdotool", "key", "w")
            time.sleep(6.0)  # the image is analysed once (the model loads in the interactive thread)
            click(cx - 20, cy - 120)  # the astronaut's face
            time.sleep(3.0)
            screenshot(args.out / "select-1-proposal.png")
            click(cx + 140, cy + 60, "alt")  # leave a part out
            time.sleep(3.0)
            screenshot(args.out / "select-2-refined.png")
            run("xdotool", "key", "Return")
            time.sleep(1.0)
            screenshot(args.out / "select-3-applied.png")
            run("xdotool", "key", "ctrl+d")  # clear the mask again
            # --- Expand Canvas…: the dialog, then the pre-fill and the Generate panel's model on the new area
            run("xdotool", "key", "ctrl+alt+c")
            time.sleep(2.0)
            screenshot(args.out / "expand-1-dialog.png")
            run("xdotool", "key", "Return")
            time.sleep(args.wait)
            screenshot(args.out / "expand-2-generated.png")
            focus_canvas(cx, cy)
            run("xdotool", "key", "Return")  # apply the previewed result
            time.sleep(2.0)
            screenshot(args.out / "expand-3-applied.png")
            # --- The Expand tool: press below the picture and drag down (screenshot while the button is held)
            focus_canvas(cx, cy)
            run("xdotool", "key", "c")
            run("xdotool", "key", "ctrl+0")
            time.sleep(1.0)
            below = args.image_bottom + 12  # under the fitted picture: the bottom edge is grabbed
            run("xdotool", "mousemove", str(cx), str(below))
            run("xdotool", "mousedown", "1")
            for step in range(1, 11):
                run("xdotool", "mousemove", str(cx), str(below + step * 5))
                time.sleep(0.02)
            time.sleep(0.5)
            screenshot(args.out / "expand-4-tool.png")
            run("xdotool", "key", "Escape")
            run("xdotool", "mouseup", "1")
        finally:
            if app is not None:
                app.terminate()
                try:
                    app.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    app.kill()
            xvfb.terminate()
            xvfb.wait(timeout=10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
