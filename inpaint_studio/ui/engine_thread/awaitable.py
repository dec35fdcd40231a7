"""Await a generation from asyncio code (qasync): `await run_job(worker, job, image, mask)`.

For scripts and tests that drive the studio's worker with coroutines (benchmarks/bench_ui_responsiveness.py);
the window itself reacts to the worker's signals and never awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, Slot

from inpaint_studio.core.errors import CancelledError, EngineError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import EngineEvent, InpaintResult, JobCancelled, JobFailed, JobFinished
from inpaint_studio.ui.engine_thread.worker import EngineWorker


async def run_job(
    worker: EngineWorker,
    job: InpaintJob,
    image: Image.Image | np.ndarray,
    mask: np.ndarray,
    *,
    preview_every: int = 0,
    on_event: Callable[[EngineEvent], None] | None = None,
) -> InpaintResult:
    """Submit a job and await its result (for qasync controllers).

    Raises the job's InpaintStudioError (CancelledError when it was cancelled). Cancelling the awaiting
    task cancels the job.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[InpaintResult] = loop.create_future()
    job_id: int | None = None

    receiver = _FutureReceiver(worker, future, on_event)
    job_id = worker.submit(job, image, mask, preview_every=preview_every)
    receiver.job_id = job_id
    receiver.flush()
    try:
        return await future
    except asyncio.CancelledError:
        worker.cancel(job_id)
        raise
    finally:
        receiver.disconnect_all()


class _FutureReceiver(QObject):
    """Resolves an asyncio future from the worker's signals (a QObject, so slots run on the UI thread)."""

    def __init__(
        self,
        worker: EngineWorker,
        future: asyncio.Future[InpaintResult],
        on_event: Callable[[EngineEvent], None] | None,
    ) -> None:
        super().__init__()
        self.worker, self.future, self.on_event = worker, future, on_event
        self.job_id: int | None = None
        self._early: list[Any] = []  # events seen before submit() returned the id (JobQueued)
        worker.event.connect(self._on_event)

    def flush(self) -> None:
        early, self._early = self._early, []
        for event in early:
            self._on_event(event)

    def disconnect_all(self) -> None:
        with contextlib.suppress(RuntimeError, TypeError):  # already gone (worker deleted)
            self.worker.event.disconnect(self._on_event)

    @Slot(object)
    def _on_event(self, event: Any) -> None:
        if self.job_id is None:
            self._early.append(event)
            return
        if getattr(event, "job_id", None) != self.job_id:
            return
        if self.on_event is not None:
            self.on_event(event)
        if self.future.done():
            return
        if isinstance(event, JobFinished):
            self.future.set_result(event.result)
        elif isinstance(event, JobCancelled):
            self.future.set_exception(CancelledError(event.message))
        elif isinstance(event, JobFailed):
            self.future.set_exception(event.error or EngineError(event.message))
