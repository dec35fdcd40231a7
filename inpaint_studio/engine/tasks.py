"""Engine work other than an InpaintJob, as typed tasks: segmentation now, upscaling and previews later.

An `EngineTask` is a frozen description of one piece of work (its inputs captured as read-only data when it
is made) with a `run(context)` method that does it in a worker thread and returns a value. The studio's
workers (ui/engine_thread/) run tasks next to inpainting jobs with the same event vocabulary: a task may emit
`JobProgress`, and its outcome is `TaskFinished` (the value), `JobFailed` (one sentence) or `JobCancelled`.

`TaskContext.workspace` is what the thread keeps between tasks: the generation thread's `Engine` (loaded
pipelines) and any cache a task kind needs (`workspace.get(SegmenterCache, factory)`: the loaded SAM model and
its image embeddings). A task never keeps state of its own between runs, so it can be queued, cancelled or
dropped at any time, and a worker that gives up its thread gives up the workspace with it.

Qt-free: tasks run the same from the command line (`run_task`) as in the studio.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from inpaint_studio.core.errors import CancelledError, EngineError, InpaintStudioError
from inpaint_studio.engine.events import CancelToken, EventSink, JobCancelled, JobFailed

log = logging.getLogger(__name__)
T = TypeVar("T")


class Workspace:
    """Long-lived objects of one worker thread, made on first use (`get`) and released together."""

    def __init__(self, engine: Any = None) -> None:
        self.engine = engine  # the generation Engine, in the generation thread; None elsewhere
        self._items: dict[type, Any] = {}

    def get(self, kind: type[T], factory: Callable[[], T]) -> T:
        """The thread's object of this class, made by `factory` the first time."""
        item = self._items.get(kind)
        if item is None:
            item = factory()
            self._items[kind] = item
        return item

    def peek(self, kind: type[T]) -> T | None:
        return self._items.get(kind)

    def release(self) -> None:
        """Free what the tasks loaded (each object's own `release()`, when it has one)."""
        for item in self._items.values():
            release = getattr(item, "release", None)
            if callable(release):
                release()
        self._items.clear()


@dataclass(frozen=True)
class TaskContext:
    """What a running task gets: its id, where to report, its cancel token and the thread's workspace."""

    job_id: int
    emit: EventSink
    cancel: CancelToken
    workspace: Workspace


@runtime_checkable
class EngineTask(Protocol):
    """A unit of engine work. `title` names it in messages ("Analysing the image for selection")."""

    @property
    def title(self) -> str: ...

    def run(self, context: TaskContext) -> Any: ...


@dataclass(frozen=True)
class TaskFinished:
    """A task's outcome: `value` is what its `run` returned."""

    job_id: int
    task: EngineTask = field(repr=False)
    value: Any = field(repr=False)
    duration_s: float = 0.0


def run_task(
    task: EngineTask,
    workspace: Workspace,
    *,
    emit: EventSink | None = None,
    cancel: CancelToken | None = None,
    job_id: int = 0,
) -> Any:
    """Run a task here, reporting as a worker does: TaskFinished, or JobFailed / JobCancelled and the error raised.

    An unexpected exception becomes an EngineError sentence (its traceback goes to the log), like Engine.run.
    """
    sink = emit or (lambda event: None)
    token = cancel or CancelToken()
    started = time.perf_counter()
    try:
        token.raise_if_cancelled()
        value = task.run(TaskContext(job_id, sink, token, workspace))
    except CancelledError as exc:
        sink(JobCancelled(job_id, str(exc)))
        raise
    except InpaintStudioError as exc:
        sink(JobFailed(job_id, str(exc), exc))
        raise
    except MemoryError as exc:
        error = EngineError(f"{task.title} ran out of memory; close other programs or work on a smaller image.")
        sink(JobFailed(job_id, str(error), error))
        raise error from exc
    except Exception as exc:
        log.exception("task %s (%s) failed", job_id, task.title)
        error = EngineError(f"{task.title} failed unexpectedly ({type(exc).__name__}: {str(exc)[:120]}); try again.")
        sink(JobFailed(job_id, str(error), error))
        raise error from exc
    sink(TaskFinished(job_id, task, value, time.perf_counter() - started))
    return value
