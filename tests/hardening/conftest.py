"""Fixtures of the hardening tests: a real engine for the tiny models, fake engines for faults, a window."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from inpaint_studio.core.errors import CancelledError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import InpaintResult, JobCancelled, JobFinished, JobProgress, JobStarted


@pytest.fixture(scope="session")
def hardening_engine() -> Iterator[Any]:
    """One real Engine for the tiny-model tests here (each worker gets it through engine_factory)."""
    from inpaint_studio.engine.runner import Engine

    engine = Engine()
    yield engine
    engine.release()


class FakeEngine:
    """Runs a job like the real engine (events, seeds, cooperative cancel) without a model.

    With `stuck`, a job whose seed is STUCK_SEED starts, reports one step, then blocks on that event and
    ignores cancel: a call into a driver or a C library that never returns. `entered` is set once it blocks.
    (Tied to the job, not to the engine: which thread builds its engine first is not deterministic.)
    """

    STUCK_SEED = 1

    def __init__(self, steps: int = 3, stuck: threading.Event | None = None) -> None:
        self.steps, self.stuck = steps, stuck
        self.entered = threading.Event()
        self.ran: list[int] = []
        self.released = threading.Event()

    def run(self, job: InpaintJob, image: Any, mask: Any, *, on_event: Any, cancel: Any, job_id: int, **_: Any) -> Any:
        on_event(JobStarted(job_id, job, self.steps))
        on_event(JobProgress(job_id, 1, self.steps, 0))
        if self.stuck is not None and job.seed == self.STUCK_SEED:
            self.entered.set()
            self.stuck.wait()  # deliberately deaf to cancel
        for step in range(2, self.steps + 1):
            if cancel.cancelled:
                on_event(JobCancelled(job_id))
                raise CancelledError()
            on_event(JobProgress(job_id, step, self.steps, 0))
        self.ran.append(job_id)
        pixels = np.asarray(image)[..., :3]
        result = InpaintResult(
            images=[Image.fromarray(np.ascontiguousarray(pixels))],
            job=job,
            seeds=[job.seed or 0],
            model={"reference": "fake", "source": "classic"},
            device="cpu",
            duration_s=0.0,
            region=(0, 0, pixels.shape[1], pixels.shape[0]),
        )
        on_event(JobFinished(job_id, result))
        return result

    def release(self) -> None:
        self.released.set()


@contextmanager
def studio_window(folder: Path, engine: Any = None, **settings: object) -> Iterator[Any]:
    """A shown offscreen MainWindow with private settings (extra QSettings values given as key=value);
    `engine`: the window's EngineOptions (a shared worker)."""
    from inpaint_studio.ui.window.main_window import MainWindow

    folder.mkdir(parents=True, exist_ok=True)
    store = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    for key, value in settings.items():
        store.setValue(key.replace("__", "/"), value)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INPAINT_STUDIO_RECOVERY_DIR", str(folder / "recovery"))
        window = MainWindow(settings=store, engine=engine)
        window.show()
        try:
            yield window
        finally:
            if window.isVisible():
                window.projects.mark_saved()
                window.close()
            window.deleteLater()
            QApplication.processEvents()
