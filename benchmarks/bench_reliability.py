"""Reliability figures for docs/reliability.md: memory under load, measured.

Run: ``.venv/bin/python benchmarks/bench_reliability.py [--jobs 100] [--switches 12] [--cycles 500]``.
Prints a table; never fails. The measurements are the ones tests/hardening/test_load.py asserts on
(tests/hardening/load.py): a queue of jobs through the real worker thread (tiny SD inpainting model from
tests/tiny_models.py, 512x512 pictures, one Euler step each), alternating two tiny models, and undo/redo
cycles of real canvas strokes on a 3000x2000 document in the offscreen main window. Memory: RSS from
/proc/self/statm and tracemalloc, after a warm-up, with gc before each reading.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--switches", type=int, default=12)
    parser.add_argument("--cycles", type=int, default=500)
    args = parser.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from inpaint_studio.engine.runner import Engine
    from inpaint_studio.ui.engine_thread.worker import EngineWorker
    from inpaint_studio.ui.window.main_window import MainWindow
    from tests.hardening.load import MB, run_model_switching, run_queue, run_undo_redo
    from tests.tiny_models import build_sd, build_sd_inpaint

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="bench-reliability-") as folder:
        root = Path(folder)
        os.environ["INPAINT_STUDIO_RECOVERY_DIR"] = str(root / "recovery")
        inpaint, plain = build_sd_inpaint(root / "sd-inpaint"), build_sd(root / "sd")
        engine = Engine()
        worker = EngineWorker(engine_factory=lambda: engine)
        queue = run_queue(worker, inpaint, jobs=args.jobs)
        worker.shutdown(10.0)
        switching = run_model_switching(engine, [inpaint, plain], switches=args.switches)
        engine.release()
        window = MainWindow(settings=QSettings(str(root / "settings.ini"), QSettings.Format.IniFormat))
        window.show()
        undo = run_undo_redo(window, cycles=args.cycles)
        window.projects.mark_saved()
        window.close()
        app.processEvents()

    def mib(value: float) -> str:
        return f"{value / MB:.0f}"

    print("| load | time (s) | RSS before (MiB) | RSS after (MiB) | RSS slope | tracemalloc | result |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    outcome = ", ".join(f"{v} {k}" for k, v in queue.outcomes.items())
    print(
        f"| {queue.jobs} queued jobs | {queue.seconds:.1f} | {mib(queue.rss_before)} | {mib(queue.rss_after)} | "
        f"{queue.rss_per_job / 1024:+.1f} KiB/job | {queue.traced_per_job / 1024:+.1f} KiB/job | {outcome}; "
        f"order kept: {queue.order_kept}; all accounted for: {queue.accounted} |"
    )
    print(
        f"| {switching.switches} model switches | {switching.seconds:.1f} | {mib(switching.rss_warm)} | "
        f"{mib(switching.rss_last)} (peak {mib(switching.rss_peak)}) | {switching.rss_per_switch / MB:+.2f} MiB/switch "
        f"| - | at most {switching.held_max} pipeline held; each released: {switching.released} |"
    )
    traced = (undo.traced_after - undo.traced_before) / MB
    print(
        f"| {undo.cycles} undo/redo cycles ({undo.strokes} steps, {undo.size[0]}x{undo.size[1]}) | "
        f"{undo.seconds:.1f} | {mib(undo.rss_before)} | {mib(undo.rss_after)} | {undo.rss_per_cycle / 1024:+.1f} "
        f"KiB/cycle | {traced:+.2f} MiB in all | pixels restored exactly: {undo.pixels_restored} |"
    )


if __name__ == "__main__":
    main()
