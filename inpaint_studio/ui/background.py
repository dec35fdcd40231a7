"""Slow, self-contained file work (saving a project, autosaving, writing OpenRaster) off the UI thread.

Tasks run one at a time, in submission order, each in its own daemon thread; the work function gets only
immutable data (see core/project_state.py), so the window keeps painting and editing meanwhile. Results
and errors come back on the UI thread through a queued signal. Errors become one sentence: an
InpaintStudioError's own text (e.g. "the disk is full ... any previous file is unchanged"), or a generic
sentence for surprises (logged with their traceback).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QTimer, Signal

from inpaint_studio.core.errors import InpaintStudioError

log = logging.getLogger(__name__)


@dataclass
class Task:
    label: str  # what it does, for messages: "saving photo.inpaint"
    work: Callable[[], Any]
    on_done: Callable[[Any], None]
    on_error: Callable[[str], None]
    started: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


def error_sentence(label: str, error: BaseException) -> str:
    if isinstance(error, InpaintStudioError):
        return str(error)
    if isinstance(error, MemoryError):
        return f"There was not enough memory for {label}; close other programs and try again."
    return f"Unexpected error while {label}: {error}. The details are in the log."


class _Relay(QObject):
    finished = Signal(object, object, object)  # task, result, error


class BackgroundRunner(QObject):
    """A serial queue of background tasks; `busy_changed(bool)` drives a progress indication."""

    busy_changed = Signal(bool)
    task_started = Signal(str)  # label

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Task] = deque()
        self._current: Task | None = None
        self._relay = _Relay(self)
        self._relay.finished.connect(self._on_finished)

    @property
    def busy(self) -> bool:
        return self._current is not None

    @property
    def current(self) -> Task | None:
        return self._current

    def submit(
        self,
        label: str,
        work: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None],
    ) -> Task:
        task = Task(label, work, on_done, on_error)
        self._queue.append(task)
        if self._current is None:
            self._start_next()
        return task

    def wait(self, timeout_s: float | None = None) -> bool:
        """Process events until every task is done (their callbacks ran); False on timeout.

        Events are processed in place (not in a nested QEventLoop), so objects someone scheduled for
        deletion with deleteLater are not deleted under their feet while the caller waits: the window keeps
        painting and its timers run, and nothing else changes.
        """
        if not self.busy:
            return True
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        tick = QTimer()  # wakes the wait below at least this often, whatever else happens
        tick.start(25)
        try:
            while self.busy and (deadline is None or time.monotonic() < deadline):
                QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
        finally:
            tick.stop()
        return not self.busy

    # ---- internals ----------------------------------------------------------------------------------
    def _start_next(self) -> None:
        if not self._queue:
            return
        task = self._current = self._queue.popleft()
        task.started = time.monotonic()
        relay = self._relay

        def run() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = task.work()
            except BaseException as exc:  # reported on the UI thread; a worker thread must never die silently
                error = exc
                if not isinstance(exc, InpaintStudioError | MemoryError):
                    log.error("background task failed: %s", task.label, exc_info=exc)
            finally:
                task.done.set()
            with contextlib.suppress(RuntimeError):  # the window was destroyed meanwhile: nobody waits
                relay.finished.emit(task, result, error)

        self.busy_changed.emit(True)
        self.task_started.emit(task.label)
        threading.Thread(target=run, name=f"background: {task.label}", daemon=True).start()

    def _on_finished(self, task: Task, result: Any, error: BaseException | None) -> None:
        try:
            if error is None:
                task.on_done(result)
            else:
                task.on_error(error_sentence(task.label, error))
        finally:
            self._current = None
            if self._queue:
                self._start_next()
            else:
                self.busy_changed.emit(False)
