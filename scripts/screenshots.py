"""Drive the real app under Xvfb like a person does, and save screenshots for the README.

Starts Xvfb, opens a sample photo (scikit-image's astronaut) in `inpaint-studio`, paints a mask stroke with
real X mouse events (xdotool), generates with the classical fill (Ctrl+Enter), applies the result (Enter),
and saves a screenshot after each stage into docs/screenshots/ (or --out).

Needs Debian's xvfb, xdotool, imagemagick and libxcb-cursor0 (Qt's xcb plugin):
    apt-get install -y xvfb xdotool imagemagick libxcb-cursor0
    .venv/bin/python scripts/screenshots.py [--out DIR]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DISPLAY = ":97"
SIZE = (1600, 1000)


def run(*cmd: str, check: bool = True) -> str:
    env = dict(os.environ, DISPLAY=DISPLAY)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, env=env).stdout.strip()


def wait_for_window(name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = run("xdotool", "search", "--onlyvisible", "--name", name, check=False)
        if found:
            return found.splitlines()[0]
        time.sleep(0.5)
    raise SystemExit(f"no window named {name!r} appeared within {timeout:.0f} s")


def screenshot(path: Path) -> None:
    run("import", "-window", "root", str(path))
    print(f"saved {path}")


def stroke(points: list[tuple[int, int]]) -> None:
    """A mouse drag through the points (screen coordinates), with small steps like a hand."""
    run("xdotool", "mousemove", str(points[0][0]), str(points[0][1]))
    run("xdotool", "mousedown", "1")
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for i in range(1, 11):
            x, y = x0 + (x1 - x0) * i // 10, y0 + (y1 - y0) * i // 10
            run("xdotool", "mousemove", str(x), str(y))
            time.sleep(0.01)
    run("xdotool", "mouseup", "1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--wait", type=float, default=5.0, help="seconds to let the first generation finish")
    args = parser.parse_args()
    for tool in ("Xvfb", "xdotool", "import"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install -y xvfb xdotool imagemagick libxcb-cursor0")
    args.out.mkdir(parents=True, exist_ok=True)
    from PIL import Image
    from skimage import data

    with tempfile.TemporaryDirectory() as tmp:
        sample = Path(tmp) / "astronaut.png"
        Image.fromarray(data.astronaut()).resize((1024, 1024)).save(sample)
        xvfb = subprocess.Popen(["Xvfb", DISPLAY, "-screen", "0", f"{SIZE[0]}x{SIZE[1]}x24", "-nolisten", "tcp"])
        app = None
        try:
            time.sleep(1.0)
            env = dict(os.environ, DISPLAY=DISPLAY, QT_QPA_PLATFORM="xcb", INPAINT_STUDIO_RECOVERY_DIR=tmp)
            app = subprocess.Popen([sys.executable, "-m", "inpaint_studio", str(sample)], env=env)
            window = wait_for_window("Inpaint Studio")
            run("xdotool", "windowmove", window, "0", "0")
            run("xdotool", "windowsize", window, str(SIZE[0]), str(SIZE[1]))
            time.sleep(3.0)  # layout settles, the engine warms up in the worker
            screenshot(args.out / "script-1-opened.png")
            # The canvas sits in the middle of the window: paint over the mission patch, lower left.
            cx, cy = SIZE[0] // 2, SIZE[1] // 2
            run("xdotool", "key", "b")  # mask brush
            stroke([(cx - 140, cy + 120), (cx - 90, cy + 150), (cx - 130, cy + 190)])
            time.sleep(0.5)
            screenshot(args.out / "script-2-masked.png")
            run("xdotool", "key", "ctrl+Return")  # generate (the classical fill is the default model)
            time.sleep(args.wait)  # the classical fill does not wait for the engine's warm-up (importing torch)
            screenshot(args.out / "script-3-generated.png")
            run("xdotool", "mousemove", str(cx), str(cy))
            run("xdotool", "key", "Return")  # apply the previewed candidate as a new layer
            time.sleep(1.5)
            screenshot(args.out / "script-4-applied.png")
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
