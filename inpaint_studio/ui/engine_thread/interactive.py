"""The interactive worker: a second, lightweight thread for tools that must answer while a generation runs.

Why a thread of its own rather than priority in the generation queue: the engine thread runs one job at a
time, and a job cannot be paused. A CPU generation takes minutes, loading a model cannot be interrupted at
all, so a click put at the head of that queue would still wait for the running job to end. Here a click on
the Select tool runs the SAM decoder (tens of milliseconds) at once, whatever the engine thread is doing.
The price: the two threads share the CPU cores (torch releases the GIL in its kernels, so both progress),
and the selection model has its own memory (SlimSAM-50: about 110 MB).

What runs here: `EngineTask`s (engine/tasks.py) that are short or that the user waits for interactively.
Long work with a progress bar (upscaling) belongs in the generation queue (`EngineWorker.submit_task`).
The thread keeps a `Workspace` (the loaded SAM model and image embeddings) between tasks.

Queue: first in, first out, one task at a time, with "latest wins" for tasks that supersede each other:
`submit(task, replaces="select")` cancels a task of the same key that has not started (a fast series of
clicks runs the decoder for the last one only). A running task is never interrupted; its cancel token is
set and a task checks it between its steps. No watchdog: nothing here should run for long, and a user
waiting for a selection sees a status line and can switch tools.

Like EngineWorker, the facade lives on the UI thread and the host in the worker thread; every signal
arrives on the UI thread. The thread starts on the first submit (a window that never selects costs nothing).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import time
from collections import deque

from PySide6.QtCore import QObject, QThread, Signal, Slot

from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.engine.events import CancelToken, JobCancelled, JobFailed
from inpaint_studio.engine.tasks import EngineTask, TaskFinished, Workspace, run_task
from inpaint_studio.engine.warmup import IMPORT_LOCK, import_engine_libraries
from inpaint_studio.ui.engine_thread.worker import TaskRequest, default_torch_threads, keep_orphan

log = logging.getLogger(__name__)

SUPERSEDED = "Replaced by a newer request before it started."
_LIVE: set[InteractiveWorker] = set()


@atexit.register
def _stop_all_at_exit() -> None:
    for worker in list(_LIVE):
        with contextlib.suppress(RuntimeError):
            worker.shutdown(3.0)


class _InteractiveHost(QObject):
    """Runs tasks in the interactive thread; owns the thread's Workspace."""

    event = Signal(object)
    done = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.workspace = Workspace()
        self._imported = False

    def _import_once(self) -> None:
        if self._imported:
            return
        import_engine_libraries()  # torch and diffusers, as gently for the window as the engine thread does
        with IMPORT_LOCK:  # never beside another thread's first import of the same lazy modules
            import torch
            import transformers

            transformers.SamModel  # noqa: B018  (touching a lazy class imports it now, under the lock)
        # torch's intra-op thread count is one setting for the process: the engine thread's choice (all cores
        # but one, so the UI keeps a core), set here too in case this thread is the first to use torch.
        torch.set_num_threads(default_torch_threads())
        self._imported = True

    @Slot(object)
    def run(self, request: TaskRequest) -> None:
        try:
            if request.cancel.cancelled:
                self.event.emit(JobCancelled(request.job_id, SUPERSEDED))
                return
            self._import_once()
            run_task(request.task, self.workspace, emit=self.event.emit, cancel=request.cancel, job_id=request.job_id)
        except InpaintStudioError:
            pass  # reported by run_task
        except Exception as exc:  # the import itself failed: a broken install must not kill the thread
            log.exception("interactive task %s failed", request.job_id)
            from inpaint_studio.core.errors import EngineError

            error = EngineError(
                f"{request.task.title} could not start ({type(exc).__name__}: {str(exc)[:100]}); "
                "reinstall the application."
            )
            self.event.emit(JobFailed(request.job_id, str(error), error))
        finally:
            self.done.emit(request.job_id)

    @Slot()
    def stop(self) -> None:
        try:
            self.workspace.release()
        finally:
            thread = self.thread()
            if thread is not None:
                thread.quit()


class InteractiveWorker(QObject):
    """See the module docstring."""

    task_finished = Signal(object)  # TaskFinished
    task_failed = Signal(object)  # JobFailed
    task_cancelled = Signal(object)  # JobCancelled (cancelled, or superseded before it started)
    task_started = Signal(int)
    busy_changed = Signal(bool)

    _run = Signal(object)
    _stop = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._pending: deque[tuple[TaskRequest, str | None]] = deque()
        self._current: TaskRequest | None = None
        self._closing = False
        self._thread = QThread()
        self._thread.setObjectName("inpaint-interactive")
        self._host = _InteractiveHost()
        self._host.moveToThread(self._thread)
        self._run.connect(self._host.run)
        self._stop.connect(self._host.stop)
        self._host.event.connect(self._on_event)
        self._host.done.connect(self._on_done)
        self._thread.finished.connect(self._host.deleteLater)
        self._started = False

    # ---- state ----------------------------------------------------------------------------------------
    @property
    def is_busy(self) -> bool:
        return self._current is not None or bool(self._pending)

    @property
    def current_id(self) -> int | None:
        return self._current.job_id if self._current is not None else None

    def pending_ids(self) -> list[int]:
        return [request.job_id for request, _key in self._pending]

    @property
    def is_closed(self) -> bool:
        return self._closing

    @property
    def workspace(self) -> Workspace:
        """The thread's workspace (read counters from the UI thread only while the worker is idle)."""
        return self._host.workspace

    # ---- commands (UI thread) ---------------------------------------------------------------------------
    def submit(self, task: EngineTask, *, replaces: str | None = None) -> int:
        """Queue a task; with `replaces`, a not yet started task submitted with the same key is dropped."""
        if self._closing:
            raise RuntimeError("the interactive worker is shut down")
        if not isinstance(task, EngineTask):
            raise TypeError(f"{type(task).__name__} is not an EngineTask")
        if replaces is not None:
            for request, key in list(self._pending):
                if key == replaces:
                    self._pending.remove((request, key))
                    self.task_cancelled.emit(JobCancelled(request.job_id, SUPERSEDED))
        request = TaskRequest(next(self._ids), task, CancelToken(), time.monotonic())
        was_busy = self.is_busy
        self._pending.append((request, replaces))
        if not was_busy:
            self.busy_changed.emit(True)
        self._dispatch()
        return request.job_id

    def cancel(self, job_id: int) -> bool:
        """Drop a queued task, or ask the running one to stop at its next check; False when unknown."""
        if self._current is not None and self._current.job_id == job_id:
            self._current.cancel.cancel()
            return True
        for request, key in list(self._pending):
            if request.job_id == job_id:
                self._pending.remove((request, key))
                self.task_cancelled.emit(JobCancelled(job_id))
                self._maybe_idle()
                return True
        return False

    def cancel_all(self) -> None:
        for job_id in self.pending_ids():
            self.cancel(job_id)
        if self._current is not None:
            self._current.cancel.cancel()

    def shutdown(self, timeout_s: float = 3.0) -> bool:
        """Cancel everything, free the model and stop the thread (waits at most `timeout_s`)."""
        if self._closing:
            return not self._thread.isRunning()
        self._closing = True
        self.cancel_all()
        if not self._started:
            return True
        self._stop.emit()
        stopped = self._thread.wait(max(0, int(timeout_s * 1000)))
        if stopped:
            _LIVE.discard(self)
        else:
            log.warning("the interactive thread did not stop within %.1f s; leaving it detached", timeout_s)
            keep_orphan(self._thread, self._host)
        return bool(stopped)

    # ---- internals (UI thread) ----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        if self._current is not None or not self._pending or self._closing:
            return
        if not self._started:
            self._started = True
            _LIVE.add(self)
            self._thread.start()
        self._current, _key = self._pending.popleft()
        self.task_started.emit(self._current.job_id)
        self._run.emit(self._current)

    @Slot(object)
    def _on_event(self, event: object) -> None:
        if isinstance(event, TaskFinished):
            self.task_finished.emit(event)
        elif isinstance(event, JobFailed):
            self.task_failed.emit(event)
        elif isinstance(event, JobCancelled):
            self.task_cancelled.emit(event)

    @Slot(int)
    def _on_done(self, job_id: int) -> None:
        if self._current is not None and self._current.job_id == job_id:
            self._current = None
        self._dispatch()
        self._maybe_idle()

    def _maybe_idle(self) -> None:
        if not self.is_busy:
            self.busy_changed.emit(False)
