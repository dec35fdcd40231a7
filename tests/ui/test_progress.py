"""Progress of a job with several variants: "Variant k of n · step s of N" in the panel and on the command line
(issue 14.8: a 2-variant job of 60 steps read "Step 65/122")."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from inpaint_studio.cli.common import ProgressBar
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import JobProgress, JobStarted
from inpaint_studio.ui.document.commands import mask_change
from inpaint_studio.ui.engine_thread.worker import EngineWorker
from inpaint_studio.ui.window.composition import EngineOptions
from inpaint_studio.ui.window.main_window import MainWindow

TIMEOUT_MS = 120_000


def test_the_label_counts_steps_within_the_variant() -> None:
    # 2 variants of 61 denoising calls (PNDM makes one more call than the 60 steps asked for).
    assert JobProgress(1, 5, 122, 0, variants=2).label() == "Variant 1 of 2 · step 5 of 61"
    assert JobProgress(1, 61, 122, 0, variants=2).label() == "Variant 1 of 2 · step 61 of 61"
    assert JobProgress(1, 65, 122, 1, variants=2).label() == "Variant 2 of 2 · step 4 of 61"
    assert JobProgress(1, 122, 122, 1, variants=2).label(", ") == "Variant 2 of 2, step 61 of 61"
    assert JobProgress(1, 3, 20, 0).label() == "Step 3 of 20"  # one result: no variant


def test_the_command_line_bar_says_variant_and_step() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, width=10)
    bar(JobStarted(1, InpaintJob(variants=2), 122))
    bar(JobProgress(1, 65, 122, 1, variants=2))
    line = out.getvalue().split("\r")[-1]
    assert line.startswith("[#####-----] Variant 2 of 2, step 4 of 61, ") and line.rstrip().endswith("s left")


@pytest.fixture
def window(qtbot, tmp_path: Path, shared_engine) -> Iterator[MainWindow]:
    worker = EngineWorker(engine_factory=lambda: shared_engine)
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, engine=EngineOptions(worker=worker, owns_worker=True, warm_up_delay_ms=None))
    win.show()
    qtbot.waitExposed(win)
    yield win
    qtbot.waitUntil(lambda: not worker.is_busy, timeout=TIMEOUT_MS)
    win.undo_stack.setClean()
    win.close()
    win.deleteLater()
    QApplication.processEvents()


def test_a_two_variant_generation_shows_variant_and_step_in_the_panel(qtbot, window, tiny_sd_inpaint) -> None:
    rng = np.random.default_rng(1)
    window.open_image(Image.fromarray(rng.integers(0, 256, (96, 128, 3), np.uint8)), "photo")
    window.canvas.set_view(1.0, QPointF(0, 0))
    mask = np.zeros((96, 128), np.uint8)
    mask[30:60, 40:90] = 255
    window.undo_stack.push(mask_change(window.document, mask, "Rectangle"))
    panel = window.generation.panel
    assert panel.models.add_local_model(str(tiny_sd_inpaint))
    panel.prompt_edit.setPlainText("a red apple")
    panel.steps_spin.setValue(3)
    panel.variants_spin.setValue(2)
    panel.live_preview_check.setChecked(False)
    texts: list[str] = []
    maxima: set[int] = set()

    def shown(_event: JobProgress) -> None:  # after the controller's slot updated the panel
        texts.append(panel.progress_bar.format())
        maxima.add(panel.progress_bar.maximum())

    window.generation.worker.job_progress.connect(shown)
    QTest.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(window.generation.candidates.candidates()) == 2, timeout=TIMEOUT_MS)
    (maximum,) = maxima  # the bar fills over the whole job
    per_variant = maximum // 2
    assert per_variant >= 3
    assert texts[0].startswith(f"Variant 1 of 2 · step 1 of {per_variant}")
    assert any(text.startswith(f"Variant 2 of 2 · step 1 of {per_variant}") for text in texts)
    assert texts[-1].startswith(f"Variant 2 of 2 · step {per_variant} of {per_variant}")


def test_a_two_variant_command_line_run_shows_variant_and_step(tmp_path: Path, tiny_sd_inpaint) -> None:
    image, mask, out = tmp_path / "photo.png", tmp_path / "mask.png", tmp_path / "out.png"
    Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(image)
    box = np.zeros((64, 64), np.uint8)
    box[16:48, 16:48] = 255
    Image.fromarray(box).save(mask)
    argv = [sys.executable, "-m", "inpaint_studio", "inpaint", str(image), "--mask", str(mask), "-o", str(out)]
    argv += ["--model", str(tiny_sd_inpaint), "--steps", "3", "--seed", "1", "--variants", "2"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Variant 1 of 2, step 1 of " in done.stderr and "Variant 2 of 2, step " in done.stderr
