"""Background work that is not the engine: file I/O, the model-cache scan, model downloads.

The one helper for it (the generation engine has its own thread, ui/engine_thread/). Each task runs in a
daemon thread (closing the app never waits for a scan or a download; atomic writes keep files whole) and
gets only immutable data (see core/project_state.py), so the window keeps painting and editing meanwhile.
Results, progress and errors come back on the UI thread through a queued signal.

Two kinds of task:
- `submit()`: file work (saving, autosaving, opening, exporting). These run one at a time in submission
  order, so two saves never race; `busy` and `busy_changed` describe this queue (the status bar's busy bar).
- `start()`: independent work that may take long (a download) or must not wait behind a save (the cache
  scan). It starts at once; its work function receives a `TaskState` to report progress and see a cancel.

Errors become one sentence: an InpaintStudioError's own text, or a generic sentence for surprises (logged
with their traceback). A task whose work raises CancelledError (after `Task.cancel()`) calls `on_cancelled`.
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

from inpaint_studio.core.errors import CancelledError, InpaintStudioError
from inpaint_studio.engine.events import CancelToken

log = logging.getLogger(__name__)


class TaskState(CancelToken):
    """What a started task's work function can use: notice a cancel (a CancelToken), report progress."""

    def __init__(self, report: Callable[[Any], None]) -> None:
        super().__init__()
        self._report = report

    def report(self, progress: Any) -> None:
        """Send a progress value to the task's on_progress (on the UI thread); callers throttle."""
        self._report(progress)


def _ignore(_value: Any = None) -> None:
    pass


@dataclass(eq=False)
class Task:
    label: str  # what it does, for messages: "saving photo.inpaint"
    work: Callable[..., Any]
    on_done: Callable[[Any], None]
    on_error: Callable[[str], None]
    on_progress: Callable[[Any], None] = _ignore
    on_cancelled: Callable[[], None] = _ignore
    serial: bool = True
    state: TaskState | None = None
    started: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask a started task to stop (its work sees TaskState.cancelled); file work cannot be cancelled."""
        if self.state is not None:
            self.state.cancel()


def error_sentence(label: str, error: BaseException) -> str:
    if isinstance(error, InpaintStudioError):
        return str(error)
    if isinstance(error, MemoryError):
        return f"There was not enough memory for {label}; close other programs and try again."
    return f"Unexpected error while {label}: {error}. The details are in the log."


class _Relay(QObject):
    finished = Signal(object, object, object)  # task, result, error
    progress = Signal(object, object)  # task, value


class BackgroundRunner(QObject):
    """See the module docstring."""

    busy_changed = Signal(bool)  # the file-work queue started / emptied
    task_started = Signal(str)  # label of a file-work task

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: deque[Task] = deque()
        self._current: Task | None = None
        self._started: set[Task] = set()
        self._relay = _Relay(self)
        self._relay.finished.connect(self._on_finished)
        self._relay.progress.connect(self._on_progress)

    @property
    def busy(self) -> bool:
        """True while file work runs or waits."""
        return self._current is not None

    @property
    def current(self) -> Task | None:
        return self._current

    def running(self) -> list[Task]:
        """The started (independent) tasks that have not finished."""
        return list(self._started)

    def submit(
        self,
        label: str,
        work: Callable[[], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None],
    ) -> Task:
        """Queue file work: runs after the file work before it."""
        task = Task(label, work, on_done, on_error)
        self._queue.append(task)
        if self._current is None:
            self._start_next()
        return task

    def start(
        self,
        label: str,
        work: Callable[[TaskState], Any],
        on_done: Callable[[Any], None],
        on_error: Callable[[str], None],
        *,
        on_progress: Callable[[Any], None] = _ignore,
        on_cancelled: Callable[[], None] = _ignore,
    ) -> Task:
        """Run independent work now, in its own thread; `work(state)` may report progress and stop on cancel."""
        task = Task(label, work, on_done, on_error, on_progress, on_cancelled, serial=False)
        relay = self._relay

        def report(value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the window was destroyed meanwhile
                relay.progress.emit(task, value)

        task.state = TaskState(report)
        self._started.add(task)
        self._launch(task)
        return task

    def wait(self, timeout_s: float | None = None) -> bool:
        """Process events until the file work is done (its callbacks ran); False on timeout.

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

    def cancel_all(self) -> None:
        """Ask every started task to stop (file work always completes: a half-written file helps nobody)."""
        for task in self._started:
            task.cancel()

    # ---- internals ----------------------------------------------------------------------------------
    def _start_next(self) -> None:
        if not self._queue:
            return
        task = self._current = self._queue.popleft()
        self.busy_changed.emit(True)
        self.task_started.emit(task.label)
        self._launch(task)

    def _launch(self, task: Task) -> None:
        task.started = time.monotonic()
        relay = self._relay

        def run() -> None:
            result: Any = None
            error: BaseException | None = None
            try:
                result = task.work() if task.state is None else task.work(task.state)
            except BaseException as exc:  # reported on the UI thread; a worker thread must never die silently
                error = exc
                if not isinstance(exc, InpaintStudioError | MemoryError):
                    log.error("background task failed: %s", task.label, exc_info=exc)
            finally:
                task.done.set()
            with contextlib.suppress(RuntimeError):  # the window was destroyed meanwhile: nobody waits
                relay.finished.emit(task, result, error)

        threading.Thread(target=run, name=f"background: {task.label}", daemon=True).start()

    def _on_progress(self, task: Task, value: Any) -> None:
        if task in self._started:
            task.on_progress(value)

    def _on_finished(self, task: Task, result: Any, error: BaseException | None) -> None:
        try:
            if error is None:
                task.on_done(result)
            elif isinstance(error, CancelledError) and task.state is not None:
                task.on_cancelled()
            else:
                task.on_error(error_sentence(task.label, error))
        finally:
            if task.serial:
                self._current = None
                if self._queue:
                    self._start_next()
                else:
                    self.busy_changed.emit(False)
            else:
                self._started.discard(task)
