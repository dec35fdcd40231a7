"""How long quitting takes: from the close (what Ctrl+Q does) to the window gone and to the process ended.

Run: ``.venv/bin/python benchmarks/bench_quit.py [--runs 3]``. Prints a table; never fails on time.
Goal: the window closes at once and the process ends within 1 s when idle.

Each run starts the application through its own entry point (`inpaint_studio.cli.main`, as the
`inpaint-studio` command does; offscreen Qt), lets the engine warm up (torch and diffusers imported, as
they are a few seconds after any start), then closes the window from a timer, like the Quit action. The
child prints when the close began and when it returned (the window hidden); the parent notes when the
process ended.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = textwrap.dedent(
    """
    import sys, time
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from inpaint_studio.cli import main
    from inpaint_studio.ui.app import create_application

    def drive():
        windows = [w for w in QApplication.topLevelWidgets() if type(w).__name__ == "MainWindow"]
        if not windows:
            QTimer.singleShot(50, drive)
            return
        window = windows[0]
        worker = window.generation.worker

        def close():
            print("CLOSE", time.time(), flush=True)
            window.close()
            print("HIDDEN", time.time(), flush=True)

        worker.engine_ready.connect(lambda _info: QTimer.singleShot(1000, close))
        worker.warm_up()

    create_application()
    QTimer.singleShot(100, drive)
    sys.exit(main([]))
    """
)


def one_run(tmp: Path) -> tuple[float, float]:
    env = dict(
        os.environ,
        QT_QPA_PLATFORM="offscreen",
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(ROOT),
        XDG_CONFIG_HOME=str(tmp / "config"),
        INPAINT_STUDIO_CONFIG_DIR=str(tmp / "config"),
        INPAINT_STUDIO_RECOVERY_DIR=str(tmp / "recovery"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    stamps: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        word, _, value = line.partition(" ")
        if word in ("CLOSE", "HIDDEN"):
            stamps[word] = float(value)
    proc.wait(timeout=300)
    ended = time.time()
    if "CLOSE" not in stamps or "HIDDEN" not in stamps:
        raise SystemExit("the child did not close its window")
    return stamps["HIDDEN"] - stamps["CLOSE"], ended - stamps["CLOSE"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    hidden, ended = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.runs):
            h, e = one_run(Path(tmp))
            hidden.append(h)
            ended.append(e)
    print(f"Quitting with the engine warmed up ({os.cpu_count()} CPU cores, load {os.getloadavg()[0]:.1f})")
    print(f"{'':<28} {'median s':>9} {'max s':>7}")
    print(f"{'window hidden after':<28} {statistics.median(hidden):>9.2f} {max(hidden):>7.2f}")
    print(f"{'process ended after':<28} {statistics.median(ended):>9.2f} {max(ended):>7.2f}")
    print("Goal: the window closes at once, the process ends within 1 s when idle.")


if __name__ == "__main__":
    main()
