"""The generation worker: one QThread that owns the Engine (and so torch), fed by a FIFO job queue.

The UI thread talks to `EngineWorker`, a QObject that lives on the UI thread: `submit()` captures an
immutable request (copies of the pixels, the frozen job, a CancelToken) and returns a job id at once; the
queue is kept here, on the UI thread, so cancelling a queued job never races with the worker. One job at a
time goes to `_EngineHost`, the QObject that lives in the worker thread, creates the Engine lazily (the first
``import torch`` happens there, never on the UI thread) and runs jobs. Its events come back as one queued Qt
signal and are re-emitted here as typed signals, so every receiver runs on the UI thread whatever kind of
callable it is.

Why a facade instead of moving EngineWorker itself into the thread: the queue, the job ids and the
signals the panels connect to must be usable synchronously from the UI thread, while the engine must only
ever be touched from the worker thread; splitting the two objects makes that rule structural.

Besides jobs, the engine thread runs `EngineTask`s (engine/tasks.py): other work that needs the Engine
(upscaling, a pre-fill for outpainting, the live preview while painting). `submit_task` queues one in the same
queue with the same ids, watchdog and cancel; it runs in the same thread with the Engine in its workspace,
reports `JobProgress` like a job and ends with `task_finished` (TaskFinished) instead of `job_finished`
(failures and cancels are `job_failed` / `job_cancelled` with its id). A "latest only" task (a preview,
`submit_task(task, latest_only=True)`) waits behind all other work: a newer one replaces a waiting one and
cancels a running one, and any job or other task submitted while one runs cancels it, so a preview never
delays real work by more than one denoising step. Interactive work that must not wait behind a generation
(the Select tool's clicks) has its own thread instead: ui/engine_thread/interactive.py.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot

from inpaint_studio.core.errors import EngineError, InpaintStudioError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import (
    CancelToken,
    EngineEvent,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
)
from inpaint_studio.engine.tasks import EngineTask, TaskFinished, Workspace, run_task
from inpaint_studio.engine.warmup import import_engine_libraries
from inpaint_studio.ui.engine_thread.watchdog import ABANDON_GRACE_S, STALL_TIMEOUT_S, Watchdog

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

REMOVED_FROM_QUEUE = "Removed from the queue before it started; nothing was changed."

# Threads given up on: stuck in a call that ignored cancel (abandoned by the watchdog) or not stopped within
# shutdown()'s timeout. Qt aborts the process when a running QThread object is destroyed, and deleting the
# object that runs in it would crash, so both stay referenced until the process exits (the app then ends
# with os._exit instead of waiting for them: see ui/app.py).
_ORPHANS: list[tuple[QThread, QObject]] = []
# Workers whose thread runs: referenced so garbage collection never destroys a running QThread, and
# stopped when the interpreter exits (a window deleted without being closed, a test that forgot).
_LIVE: set[EngineWorker] = set()
EXIT_TIMEOUT_S = 10.0
# Library imports in progress (engine/warmup.py runs them in helper threads): a process that ends meanwhile
# ends with os._exit (see ui/app.py), as the interpreter's own shutdown would wait on the import's locks.
_IMPORTS: set[threading.Thread] = set()


@atexit.register
def _stop_all_at_exit() -> None:
    for worker in list(_LIVE):
        with contextlib.suppress(RuntimeError):  # its C++ side is already gone
            worker.shutdown(EXIT_TIMEOUT_S)


def keep_orphan(thread: QThread, host: QObject) -> None:
    """Keep a worker thread that did not stop referenced until the process exits (see _ORPHANS)."""
    _ORPHANS.append((thread, host))


def orphaned_threads() -> int:
    """How many worker threads are still running after a timed-out shutdown (the app may then os._exit)."""
    return sum(1 for thread, _host in _ORPHANS if thread.isRunning())


def imports_in_progress() -> int:
    """How many engine library imports (torch, diffusers) are still running in their helper threads."""
    return sum(1 for thread in list(_IMPORTS) if thread.is_alive())


def _new_engine() -> Any:
    from inpaint_studio.engine.runner import Engine  # no torch at import: see engine/__init__.py

    return Engine()


ABANDONED = (
    "The generation stopped responding (no progress for {seconds:.0f} s) and did not stop when cancelled; it was "
    "set aside and a fresh engine runs the next job (the model loads again)."
)


@dataclass(frozen=True)
class JobRequest:
    """Everything a job needs, captured on the UI thread; the pixel arrays are private read-only copies."""

    job_id: int
    job: InpaintJob
    image: np.ndarray  # HxWx3 or HxWx4 uint8
    mask: np.ndarray  # HxW uint8, 255 = repaint
    cancel: CancelToken
    preview_every: int = 0
    submitted: float = 0.0
    # Named input images beside image and mask (e.g. "reference", the IP-Adapter's): read-only copies; the
    # engine gets each as the keyword argument "<name>_image".
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskRequest:
    """An EngineTask waiting for (or running in) the engine thread; the task holds its own read-only inputs."""

    job_id: int
    task: EngineTask
    cancel: CancelToken
    submitted: float = 0.0
    latest_only: bool = False  # a preview: waits behind all other work, replaced by a newer one


Request = JobRequest | TaskRequest
SUPERSEDED = "Replaced by a newer preview before it started."


def _latest_only(request: Request) -> bool:
    return isinstance(request, TaskRequest) and request.latest_only


def _needs_libraries(request: Request) -> bool:
    """Whether the work needs torch and diffusers imported (a task says so with `needs_torch = False`)."""
    if isinstance(request, TaskRequest):
        return bool(getattr(request.task, "needs_torch", True))
    return not request.job.is_classical


@dataclass(frozen=True)
class JobQueued:
    job_id: int
    job: InpaintJob | EngineTask
    position: int  # 0 = runs next


@dataclass(frozen=True)
class EngineInfo:
    """What the worker learnt while loading the engine (shown in the status bar, kept in history)."""

    device: str  # e.g. "cpu", "cuda:0"
    device_name: str  # e.g. "CPU (2 threads of 2)"
    torch_version: str
    import_s: float  # time spent importing torch + diffusers in the worker thread
    first_op_s: float  # time of the first torch operation (thread-pool start)


def default_torch_threads() -> int:
    """One core fewer than the machine has: the UI thread keeps a core, so the window never waits for a
    time slice (measured on 2 cores: p99 event-loop lateness 5 ms with 1 torch thread, 16 ms with 2, and
    the job itself ran faster, since two intra-op threads fought the UI and each other for the cores)."""
    return max(1, (os.cpu_count() or 2) - 1)


ENGINE_NICE = 5  # how much lower the engine's threads run than the window's (Linux nice levels)


def lower_this_threads_priority() -> None:
    """Let the scheduler prefer the UI thread when the cores are busy (other programs, torch's own threads).

    The engine keeps every idle cycle; only when something else wants the same core does the window go
    first, so a repaint never waits for a time slice behind a denoising step. Threads this thread starts
    later (torch's intra-op pool) inherit it on Linux, where each thread has its own nice value; elsewhere
    Qt's thread priority does the same.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + ENGINE_NICE))
        return
    app, thread = QCoreApplication.instance(), QThread.currentThread()
    if app is not None and thread is not None and thread is not app.thread():  # never the UI thread
        thread.setPriority(QThread.Priority.LowPriority)


def _frozen_copy(array: np.ndarray) -> np.ndarray:
    copy = np.array(array, copy=True, order="C")
    copy.flags.writeable = False
    return copy


def as_image_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """An RGB or RGBA uint8 array copy of a PIL image or array."""
    if isinstance(image, Image.Image):
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        return _frozen_copy(np.asarray(image))
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"image must be HxWx3/4 uint8, got {array.shape} {array.dtype}")
    return _frozen_copy(array)


# ----------------------------------------------------------------------------------------------------
# The object that lives in the worker thread
# ----------------------------------------------------------------------------------------------------


class _EngineHost(QObject):
    """Owns the Engine; every slot runs in the worker thread.

    The Engine object itself needs no torch (the classical fill is OpenCV), so it is made at once. torch,
    transformers and diffusers are imported by a helper thread (engine/warmup.py): started by the warm-up
    shortly after the window appears, or by the first job that needs them. While they import, this thread
    stays free, so a classical fill asked for right after start runs at once; a diffusion job waits for the
    import here, in its turn. The queue (on the UI thread) and its one-job-at-a-time order are unchanged.
    """

    event = Signal(object)  # EngineEvent
    done = Signal(int)  # job id: the worker is free again
    loading = Signal()
    ready = Signal(object)  # EngineInfo
    load_failed = Signal(str)
    _imported = Signal()  # from the import thread: the libraries are in (or failed to import)

    def __init__(
        self,
        engine_factory: Callable[[], Any] | None = None,
        torch_threads: int | None = None,
        allowed_unsafe: frozenset[str] = frozenset(),
    ) -> None:
        super().__init__()
        self._engine: Any = None
        self._factory = engine_factory
        self._torch_threads = torch_threads
        self._allowed_unsafe = set(allowed_unsafe)  # pickled checkpoints the user allowed (see allow_unsafe)
        self._remote = bool(getattr(engine_factory, "remote", False))  # a server's client (engine/remote.py)
        # An injected engine is released by whoever made it; a server's client is this host's own.
        self._owns_engine = engine_factory is None or self._remote
        self._workspace: Workspace | None = None  # what tasks keep between runs (engine/tasks.py)
        self._import: threading.Thread | None = None
        self._import_s = 0.0
        self._import_error: BaseException | None = None
        self._lowered = False
        self.info: EngineInfo | None = None
        self._imported.connect(self._finish_loading)

    def _lower_priority(self) -> None:
        """Once, in the worker thread, when it is about to run torch work (see lower_this_threads_priority).

        Not earlier: threads inherit their creator's nice value on Linux and cannot raise it back, and the
        import thread this thread starts must keep the window's priority (see _import_libraries)."""
        if not self._lowered:
            self._lowered = True
            lower_this_threads_priority()

    def _ensure_engine(self) -> Any:
        """The Engine ready for any work: torch imported and set up here, or a server's client connected."""
        return self._ensure_remote_engine() if self._remote else self._ensure_torch()

    def _engine_object(self) -> Any:
        """The Engine (made on first use; no torch needed for that)."""
        if self._engine is None:
            self._engine = self._factory() if self._factory else _new_engine()
            for path in self._allowed_unsafe:
                self._allow_on_engine(path)
        return self._engine

    def _start_import(self) -> None:
        """Import torch and diffusers in a helper thread (at most one at a time)."""
        if self.info is not None or self._import is not None:
            return
        self.loading.emit()
        self._import_error = None
        self._import = threading.Thread(target=self._import_libraries, name="inpaint-engine-import", daemon=True)
        _IMPORTS.add(self._import)
        self._import.start()

    def _import_libraries(self) -> None:
        """Runs in the import thread, at the window's priority: importing holds the GIL most of the time, and a
        lower-priority GIL holder is a priority inversion for the UI thread waiting for it (measured: one
        60-80 ms stall per warm-up with the import thread niced, 9-21 ms without)."""
        try:
            self._import_s = import_engine_libraries()
        except BaseException as exc:  # reported on the engine thread by _ensure_torch
            self._import_error = exc
        finally:
            _IMPORTS.discard(threading.current_thread())
            with contextlib.suppress(RuntimeError):  # the host was deleted meanwhile (window closed)
                self._imported.emit()

    @Slot()
    def _finish_loading(self) -> None:
        """The import thread finished: set torch up in this thread and report the engine ready."""
        if self.info is None and self._import is not None:
            self._load_failure(self._ensure_torch)

    def _ensure_torch(self) -> Any:
        """Wait for the libraries (importing them now if nothing did yet), set torch's threads, run its first
        operation in this thread, and report the engine ready. Returns the Engine."""
        engine = self._engine_object()
        if self.info is not None:
            return engine
        self._start_import()
        assert self._import is not None
        self._import.join()
        self._import, error = None, self._import_error
        if error is not None:
            self._import_error = None
            raise error
        self._lower_priority()  # torch's intra-op threads, started by the first op below, inherit it
        start = time.perf_counter()
        import torch  # imported already: this only binds the name

        threads = default_torch_threads() if self._torch_threads is None else self._torch_threads
        if threads > 0:
            torch.set_num_threads(threads)
        # The first op starts torch's intra-op thread pool: a one-time cost better paid before a job.
        (torch.ones(64, 64) @ torch.ones(64, 64)).sum().item()
        from inpaint_studio.engine.devices import describe_device, pick_device

        device = pick_device("auto")
        self.info = EngineInfo(
            device=device,
            device_name=describe_device(device),
            torch_version=torch.__version__,
            import_s=self._import_s,
            first_op_s=time.perf_counter() - start,
        )
        self.ready.emit(self.info)
        return engine

    def _ensure_remote_engine(self) -> Any:
        """A server's client (engine/remote.py): no torch here; the server says what it runs on."""
        if self._engine is not None and self.info is not None:
            return self._engine
        self.loading.emit()
        engine = self._engine_object()
        try:
            device, device_name = engine.describe()
        except InpaintStudioError as exc:  # the server is down or refuses: say so now; jobs will say it too
            self.load_failed.emit(str(exc))
            return engine
        self.info = EngineInfo(device, device_name, torch_version="", import_s=0.0, first_op_s=0.0)
        self.ready.emit(self.info)
        return engine

    def _load_failure(self, load: Callable[[], Any]) -> str | None:
        """Run `load`; a failure (a broken install) is logged and reported, and the thread lives on."""
        try:
            load()
        except Exception as exc:
            log.exception("engine start-up failed")
            message = (
                f"The generation engine could not start ({type(exc).__name__}: {str(exc)[:120]}); "
                "reinstall the application or use the classical fill."
            )
            self.load_failed.emit(message)
            return message
        return None

    @Slot()
    def warm_up(self) -> None:
        if self._remote:
            self._load_failure(self._ensure_remote_engine)
            return
        self._load_failure(self._engine_object)
        self._start_import()

    @Slot(object)
    def run(self, request: Request) -> None:
        try:
            if request.cancel.cancelled:
                self.event.emit(JobCancelled(request.job_id))
                return
            try:
                # The classical fill needs no torch: it does not wait for the libraries to import.
                local_light = not self._remote and not _needs_libraries(request)
                engine = self._engine_object() if local_light else self._ensure_engine()
            except Exception as exc:
                log.exception("engine start-up failed")
                error = EngineError(
                    f"The generation engine could not start ({type(exc).__name__}); "
                    "reinstall the application or use the classical fill."
                )
                self.event.emit(JobFailed(request.job_id, str(error), error))
                return
            if isinstance(request, TaskRequest):
                self._run_task(request, engine)
                return
            try:
                named = {f"{name}_image": pixels for name, pixels in request.inputs.items()}
                engine.run(
                    request.job,
                    request.image,
                    request.mask,
                    on_event=self.event.emit,
                    cancel=request.cancel,
                    job_id=request.job_id,
                    preview_every=request.preview_every,
                    **named,
                )
            except InpaintStudioError:
                pass  # the engine already emitted JobFailed / JobCancelled for it
            except Exception as exc:  # defensive: Engine.run converts these, but the worker must survive
                log.exception("job %s failed outside the engine's handler", request.job_id)
                error = EngineError(f"The generation failed unexpectedly ({type(exc).__name__}); try again.")
                self.event.emit(JobFailed(request.job_id, str(error), error))
        finally:
            self.done.emit(request.job_id)

    def _run_task(self, request: TaskRequest, engine: Any) -> None:
        if self._workspace is None or self._workspace.engine is not engine:
            self._workspace = Workspace(engine)
        with contextlib.suppress(InpaintStudioError):  # run_task already emitted JobFailed / JobCancelled
            run_task(request.task, self._workspace, emit=self.event.emit, cancel=request.cancel, job_id=request.job_id)

    @Slot(str)
    def allow_unsafe(self, path: str) -> None:
        self._allowed_unsafe.add(path)
        if self._engine is not None:
            self._allow_on_engine(path)

    def _allow_on_engine(self, path: str) -> None:
        allow = getattr(self._engine, "allow_unsafe_checkpoint", None)  # fake engines in tests have none
        if allow is not None:
            allow(path)

    @Slot()
    def release(self) -> None:
        if self._workspace is not None:
            self._workspace.release()
        if self._engine is not None:
            self._engine.release()

    @Slot()
    def stop(self) -> None:
        """Free the model and end the thread's event loop (runs after any job in progress)."""
        try:
            if self._owns_engine:
                self.release()
                close = getattr(self._engine, "close", None)  # a server's client: its connections
                if close is not None:
                    close()
        finally:
            self._engine = None
            thread = self.thread()
            if thread is not None:
                thread.quit()


# ----------------------------------------------------------------------------------------------------
# The UI-thread facade
# ----------------------------------------------------------------------------------------------------


class EngineWorker(QObject):
    """Queue + signals on the UI thread, engine in a worker thread. See the module docstring."""

    job_queued = Signal(object)  # JobQueued
    job_started = Signal(object)  # JobStarted
    job_progress = Signal(object)  # JobProgress
    job_finished = Signal(object)  # JobFinished
    job_cancelled = Signal(object)  # JobCancelled
    job_failed = Signal(object)  # JobFailed
    event = Signal(object)  # every EngineEvent and JobQueued, in order
    job_done = Signal(int)  # a job left the worker (whatever its outcome)
    queue_changed = Signal()
    busy_changed = Signal(bool)
    engine_loading = Signal()
    engine_ready = Signal(object)  # EngineInfo
    engine_failed = Signal(str)
    job_stalled = Signal(int, float)  # job id, seconds without any event: it may be stuck
    job_resumed = Signal(int)  # a stalled job reported progress again
    job_abandoned = Signal(int)  # a stalled job ignored cancel: its thread was given up, a fresh one serves
    task_finished = Signal(object)  # TaskFinished: an EngineTask's value (see submit_task)

    # Private: queued calls into the worker thread.
    _run = Signal(object)
    _warm = Signal()
    _release = Signal()
    _stop = Signal()
    _allow = Signal(str)

    def __init__(
        self,
        parent: QObject | None = None,
        engine_factory: Callable[[], Any] | None = None,
        torch_threads: int | None = None,
        *,
        stall_timeout_s: float | None = None,
        abandon_grace_s: float = ABANDON_GRACE_S,
    ) -> None:
        """`engine_factory` builds the engine in the worker thread (default: a new `Engine`, which the
        worker then owns and releases on shutdown; an injected one is left loaded). `torch_threads` sets
        torch's intra-op threads: None = `default_torch_threads()` (all cores but one), 0 = torch's own
        choice (one per core). `stall_timeout_s`: the watchdog's limit (None: STALL_TIMEOUT_S for the
        engine's device; 0: no watchdog); `abandon_grace_s`: see ABANDON_GRACE_S."""
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._pending: deque[Request] = deque()
        self._current: Request | None = None
        self._task_ids: set[int] = set()  # ids of EngineTasks, queued or running
        self._closing = False
        self._switch_pending = False
        self.engine_info: EngineInfo | None = None
        self.engine_state = "idle"  # idle | loading | ready | failed
        self._factory, self._torch_threads = engine_factory, torch_threads
        self.stall_timeout_s = stall_timeout_s
        self.abandoned_jobs: list[int] = []
        self._allowed_unsafe: set[str] = set()
        self.watchdog = Watchdog(self.stall_timeout, abandon_grace_s, self)
        self.watchdog.stalled.connect(self.job_stalled)
        self.watchdog.resumed.connect(self.job_resumed)
        self.watchdog.abandon.connect(self._abandon_current)
        self._thread, self._host = self._new_host()
        self._started = False  # the thread starts on first use: a window never used costs no thread

    def _new_host(self) -> tuple[QThread, _EngineHost]:
        """A worker thread and the engine host that lives in it (not started yet)."""
        thread = QThread()
        thread.setObjectName("inpaint-engine")
        host = _EngineHost(self._factory, self._torch_threads, frozenset(self._allowed_unsafe))
        host.moveToThread(thread)
        self._run.connect(host.run)
        self._allow.connect(host.allow_unsafe)
        self._warm.connect(host.warm_up)
        self._release.connect(host.release)
        self._stop.connect(host.stop)
        host.event.connect(self._on_event)
        host.done.connect(self._on_done)
        host.loading.connect(self._on_loading)
        host.ready.connect(self._on_ready)
        host.load_failed.connect(self._on_load_failed)
        thread.finished.connect(host.deleteLater)
        return thread, host

    def _detach_host(self, *, forget: bool = False) -> None:
        """Give up the current thread: nothing it does reaches this object any more (see _ORPHANS).

        `forget`: the thread never started, so there is nothing to keep referenced."""
        thread, host = self._thread, self._host
        if self._started:
            self._stop.emit()  # queued behind the stuck call: frees its model and ends it, if it ever returns
        for signal, slot in (
            (self._run, host.run),
            (self._warm, host.warm_up),
            (self._release, host.release),
            (self._stop, host.stop),
            (self._allow, host.allow_unsafe),
            (host.event, self._on_event),
            (host.done, self._on_done),
            (host.loading, self._on_loading),
            (host.ready, self._on_ready),
            (host.load_failed, self._on_load_failed),
        ):
            with contextlib.suppress(RuntimeError, TypeError):
                signal.disconnect(slot)
        if forget:
            host.deleteLater()
        else:
            _ORPHANS.append((thread, host))

    # ---- state --------------------------------------------------------------------------------------
    @property
    def current_id(self) -> int | None:
        return self._current.job_id if self._current else None

    @property
    def current_job(self) -> InpaintJob | None:
        """The running InpaintJob (None while nothing or a task runs)."""
        return self._current.job if isinstance(self._current, JobRequest) else None

    def pending_ids(self) -> list[int]:
        return [request.job_id for request in self._pending]

    # What the studio shows as running and queued: jobs and tasks, never a preview (latest only).
    @property
    def running_work_id(self) -> int | None:
        """The running job or task; None while nothing or only a preview runs."""
        current = self._current
        return None if current is None or _latest_only(current) else current.job_id

    def queued_work_ids(self) -> list[int]:
        return [request.job_id for request in self._pending if not _latest_only(request)]

    def request(self, job_id: int) -> JobRequest | None:
        """The captured request of a running or queued job (not of a task)."""
        if isinstance(self._current, JobRequest) and self._current.job_id == job_id:
            return self._current
        return next((r for r in self._pending if r.job_id == job_id and isinstance(r, JobRequest)), None)

    def pending_job(self, job_id: int) -> InpaintJob | None:
        return next((r.job for r in self._pending if r.job_id == job_id and isinstance(r, JobRequest)), None)

    def is_task(self, job_id: int) -> bool:
        """True when the id belongs to an EngineTask that is queued or running (its events are not a job's)."""
        return job_id in self._task_ids

    @property
    def is_busy(self) -> bool:
        """Work other than a preview runs or waits (a preview never makes the studio look busy)."""
        return self.running_work_id is not None or bool(self.queued_work_ids())

    @property
    def is_running(self) -> bool:
        """The worker thread is alive (False before first use and after shutdown)."""
        return self._thread.isRunning()

    @property
    def is_closed(self) -> bool:
        return self._closing

    def _ensure_started(self) -> None:
        if not self._started:
            self._started = True
            _LIVE.add(self)  # kept alive (and stopped at exit) while its thread runs
            self._thread.start()

    # ---- commands (UI thread) -------------------------------------------------------------------------
    def warm_up(self) -> None:
        """Load torch and create the engine now (the window calls this shortly after it is shown)."""
        if not self._closing and self.engine_state == "idle":
            self._ensure_started()
            self._warm.emit()

    def allow_unsafe_checkpoint(self, path: str) -> None:
        """Let the engine load this pickled checkpoint (the user confirmed it); applies to later jobs."""
        if path in self._allowed_unsafe:
            return
        self._allowed_unsafe.add(path)
        self._allow.emit(path)  # queued before any job submitted after this call

    def switch_engine(self, engine_factory: Callable[[], Any] | None) -> None:
        """Use another engine (Settings > Engine: this computer or a server) from the next job on.

        The running job and the queue are not touched: the switch happens once the worker is free (now,
        when it is), and the old engine is released in its own thread."""
        self._factory = engine_factory
        self._switch_pending = True
        self._maybe_switch()

    def _maybe_switch(self) -> None:
        if not self._switch_pending or self._current is not None or self._closing:
            return
        self._switch_pending = False
        # The old host frees its engine and ends its thread, which stays referenced until it has.
        self._detach_host(forget=not self._started)
        self._thread, self._host = self._new_host()
        self._started = False
        self.engine_state, self.engine_info = "idle", None

    def release_model(self) -> None:
        """Unload the current model once the worker is free (returns its memory)."""
        if not self._closing and self._started:
            self._release.emit()

    def submit(
        self,
        job: InpaintJob,
        image: Image.Image | np.ndarray,
        mask: np.ndarray,
        *,
        preview_every: int = 0,
        inputs: Mapping[str, Image.Image | np.ndarray] | None = None,
    ) -> int:
        """Queue a job; returns its id at once. The image and mask are copied now, on the calling thread, and so
        are the named `inputs` (e.g. {"reference": pixels}: the IP-Adapter's reference image).

        Queueing several jobs on the same picture keeps one copy: a request equal to the latest queued (or
        running) one shares its read-only arrays (20 queued jobs on a 24 MP photo would otherwise hold 2 GB).
        """
        if self._closing:
            raise RuntimeError("the worker is shut down")
        mask_array = np.asarray(mask)
        if mask_array.ndim == 3:
            mask_array = mask_array[..., 0]
        mask_array = mask_array.astype(np.uint8, copy=False)
        image_array = image if isinstance(image, np.ndarray) else as_image_array(image)
        shared_image, shared_mask = self._shared(image_array, "image"), self._shared(mask_array, "mask")
        request = JobRequest(
            job_id=next(self._ids),
            job=job,
            image=shared_image if shared_image is not None else as_image_array(image_array),
            mask=shared_mask if shared_mask is not None else _frozen_copy(mask_array),
            cancel=CancelToken(),
            preview_every=int(preview_every),
            submitted=time.monotonic(),
            inputs={name: as_image_array(value) for name, value in (inputs or {}).items()},
        )
        self._enqueue(request, job)
        return request.job_id

    def submit_task(self, task: EngineTask, *, latest_only: bool = False) -> int:
        """Queue an EngineTask behind the work already queued; returns its id at once.

        It runs in the engine thread with the same cancel and watchdog as a job, and ends with `task_finished`
        (or job_failed / job_cancelled with its id). The task must hold its own read-only copies of its inputs.
        `latest_only` (a preview): it waits until no other work is queued, replaces a waiting preview (which
        reports JobCancelled) and cancels a running one; any other work cancels a running preview.
        """
        if self._closing:
            raise RuntimeError("the worker is shut down")
        if not isinstance(task, EngineTask):
            raise TypeError(f"{type(task).__name__} is not an EngineTask (it needs a title and run(context))")
        request = TaskRequest(
            job_id=next(self._ids),
            task=task,
            cancel=CancelToken(),
            submitted=time.monotonic(),
            latest_only=latest_only,
        )
        self._task_ids.add(request.job_id)
        if latest_only:
            for waiting in [r for r in self._pending if _latest_only(r)]:
                self.cancel_queued(waiting.job_id, SUPERSEDED)
        self._enqueue(request, task)
        return request.job_id

    def _enqueue(self, request: Request, what: InpaintJob | EngineTask) -> None:
        was_busy = self.is_busy
        self._cancel_running_preview()
        self._pending.append(request)
        queued = JobQueued(request.job_id, what, len(self._pending) - 1 + (1 if self._current else 0))
        self.job_queued.emit(queued)
        self.event.emit(queued)
        self.queue_changed.emit()
        if not was_busy and self.is_busy:
            self.busy_changed.emit(True)
        self._dispatch()

    def _cancel_running_preview(self) -> None:
        """New work of any kind ends a running preview at its next step (a newer preview replaces it)."""
        if self._current is not None and _latest_only(self._current):
            self._current.cancel.cancel()

    def _shared(self, array: np.ndarray, field_name: str) -> np.ndarray | None:
        """The latest request's frozen array when it holds the same pixels as `array`, else None."""
        latest = self._pending[-1] if self._pending else self._current
        held = getattr(latest, field_name, None) if latest is not None else None
        if held is not None and held.shape == array.shape and held.dtype == array.dtype and np.array_equal(held, array):
            return held
        return None

    def cancel_current(self) -> bool:
        """Ask the running job to stop at its next step; False when nothing runs.

        A stalled job that ignores the request is abandoned by the watchdog (ui/engine_thread/watchdog.py)."""
        if self._current is None:
            return False
        self._current.cancel.cancel()
        self.watchdog.cancel_asked()
        return True

    def cancel_queued(self, job_id: int, reason: str = "") -> bool:
        """Remove a job that has not started; it reports JobCancelled. False when it is not queued."""
        for request in list(self._pending):
            if request.job_id == job_id:
                self._pending.remove(request)
                self._emit(JobCancelled(job_id, reason or REMOVED_FROM_QUEUE))
                self._task_ids.discard(job_id)
                self.job_done.emit(job_id)
                self.queue_changed.emit()
                self._maybe_idle()
                return True
        return False

    def cancel(self, job_id: int) -> bool:
        """Cancel a job wherever it is (running or queued)."""
        if self._current is not None and self._current.job_id == job_id:
            return self.cancel_current()
        return self.cancel_queued(job_id)

    def cancel_all(self) -> None:
        for job_id in self.pending_ids():
            self.cancel_queued(job_id)
        self.cancel_current()

    def shutdown(self, timeout_s: float = 3.0) -> bool:
        """Cancel everything, free the model and stop the thread, waiting at most `timeout_s`.

        Never blocks longer: a job stuck in a step that cannot be interrupted keeps running detached (its
        thread is kept referenced so Qt does not abort on its destruction). Returns True when stopped.
        """
        if self._closing:
            return not self._thread.isRunning()
        self._closing = True
        self.watchdog.stop()
        self.cancel_all()
        if not self._started:
            return True
        self._stop.emit()
        stopped = self._thread.wait(max(0, int(timeout_s * 1000)))
        if stopped:
            _LIVE.discard(self)
        else:
            log.warning("the engine thread did not stop within %.1f s; leaving it detached", timeout_s)
            _ORPHANS.append((self._thread, self._host))
        return bool(stopped)

    # ---- the watchdog (UI thread) ---------------------------------------------------------------------
    @property
    def abandon_grace_s(self) -> float:
        return self.watchdog.grace_s

    @abandon_grace_s.setter
    def abandon_grace_s(self, seconds: float) -> None:
        self.watchdog.grace_s = seconds

    def stall_timeout(self) -> float:
        """Seconds without an event after which the running job counts as stalled (0: never)."""
        if self.stall_timeout_s is not None:
            return max(0.0, float(self.stall_timeout_s))
        device = self.engine_info.device if self.engine_info is not None else "cpu"
        return STALL_TIMEOUT_S["cpu" if device == "cpu" else "gpu"]

    def _abandon_current(self, _job_id: int, silent_s: float) -> None:
        """The running job ignored cancel while stalled: report it, give up its thread, start afresh."""
        request = self._current
        if request is None:
            return
        self._detach_host()
        self._thread, self._host = self._new_host()
        self._started = False  # the next job starts the new thread and loads a new engine
        self.engine_state, self.engine_info = "idle", None
        self._current = None
        self.abandoned_jobs.append(request.job_id)
        error = EngineError(ABANDONED.format(seconds=silent_s))
        self._emit(JobFailed(request.job_id, str(error), error))
        self._task_ids.discard(request.job_id)
        self.job_abandoned.emit(request.job_id)
        self.job_done.emit(request.job_id)
        self._dispatch()
        self._maybe_idle()

    # ---- internals (UI thread) ------------------------------------------------------------------------
    def _dispatch(self) -> None:
        if self._current is not None or self._closing or not self._pending:
            return
        # Real work first; a preview (latest only) runs when nothing else waits.
        request = next((r for r in self._pending if not _latest_only(r)), self._pending[0])
        self._pending.remove(request)
        self._ensure_started()
        self._current = request
        self.watchdog.watch(request.job_id)
        self.queue_changed.emit()
        self._run.emit(request)

    def _emit(self, event: EngineEvent) -> None:
        if isinstance(event, JobProgress):
            self.job_progress.emit(event)
        elif isinstance(event, JobStarted):
            self.job_started.emit(event)
        elif isinstance(event, JobFinished):
            self.job_finished.emit(event)
        elif isinstance(event, JobCancelled):
            self.job_cancelled.emit(event)
        elif isinstance(event, JobFailed):
            self.job_failed.emit(event)
        elif isinstance(event, TaskFinished):
            self.task_finished.emit(event)
        self.event.emit(event)

    @Slot(object)
    def _on_event(self, event: EngineEvent) -> None:
        if self._current is not None and getattr(event, "job_id", None) == self._current.job_id:
            self.watchdog.activity()
        self._emit(event)

    @Slot(int)
    def _on_done(self, job_id: int) -> None:
        if self._current is not None and self._current.job_id == job_id:
            self._current = None
            self.watchdog.stop()
        self._task_ids.discard(job_id)
        self.job_done.emit(job_id)
        self._maybe_switch()
        self._dispatch()
        self._maybe_idle()

    def _maybe_idle(self) -> None:
        if not self.is_busy:
            self.busy_changed.emit(False)

    @Slot()
    def _on_loading(self) -> None:
        self.watchdog.activity()
        self.engine_state = "loading"
        self.engine_loading.emit()

    @Slot(object)
    def _on_ready(self, info: EngineInfo) -> None:
        self.watchdog.activity()
        self.engine_state = "ready"
        self.engine_info = info
        self.engine_ready.emit(info)

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        self.engine_state = "failed"
        self.engine_failed.emit(message)
