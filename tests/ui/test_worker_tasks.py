"""Engine tasks on the generation worker with a fake engine: progress and failures in the job vocabulary,
"latest only" previews (replaced, cancelled by other work, never making the studio busy) and shutdown.
Queue order with real jobs, the watchdog and the interactive thread: tests/ui/test_engine_tasks.py."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import JobCancelled, JobFailed, JobFinished, JobProgress, JobStarted
from inpaint_studio.engine.tasks import TaskContext, TaskFinished
from inpaint_studio.ui.engine_thread.worker import EngineWorker

TIMEOUT_MS = 20_000


class FakeEngine:
    """Runs jobs instantly (a classical-like result) and records what ran, in order."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, job: InpaintJob, image: Any, mask: Any, *, on_event: Any, cancel: Any, job_id: int, **_: Any):
        from inpaint_studio.engine.events import InpaintResult

        self.ran.append(f"job {job_id}")
        on_event(JobStarted(job_id, job, 1))
        result = InpaintResult([], job, [1], {}, "cpu", 0.0, (0, 0, 1, 1))
        on_event(JobFinished(job_id, result))
        return result

    def release(self) -> None:
        pass


@dataclass(frozen=True, eq=False)
class Waiting:
    """Runs until cancelled (or `steps` x 10 ms), checking its token like a denoising loop."""

    name: str
    started: threading.Event = field(default_factory=threading.Event)
    steps: int = 200

    @property
    def title(self) -> str:
        return self.name.capitalize()

    def run(self, context: TaskContext) -> str:
        context.workspace.engine.ran.append(self.name)
        self.started.set()
        for step in range(self.steps):
            context.cancel.raise_if_cancelled()
            context.emit(JobProgress(context.job_id, step + 1, self.steps, 0))
            time.sleep(0.01)
        return self.name


@dataclass(frozen=True, eq=False)
class Call:
    """A task that calls `work(context)`: for one-off checks."""

    work: Any
    title: str = "Upscaling x2"

    def run(self, context: TaskContext) -> Any:
        return self.work(context)


@pytest.fixture
def setup(qtbot, qapp):
    engine = FakeEngine()
    worker = EngineWorker(engine_factory=lambda: engine, stall_timeout_s=0)
    events: list[Any] = []
    worker.event.connect(events.append)
    yield worker, engine, events
    assert worker.shutdown(10.0)


def ended(events: list[Any], job_id: int) -> bool:
    return any(isinstance(e, TaskFinished | JobFailed | JobCancelled) and e.job_id == job_id for e in events)


def test_a_task_runs_on_the_engine_thread_and_reports_progress(qtbot, setup):
    worker, engine, events = setup
    threads: list[str] = []

    def work(context: TaskContext) -> np.ndarray:
        threads.append(threading.current_thread().name)
        assert context.workspace.engine is engine
        context.emit(JobProgress(context.job_id, 1, 2, 0))
        context.emit(JobProgress(context.job_id, 2, 2, 0))
        return np.ones(3)

    task_id = worker.submit_task(Call(work))
    assert worker.is_task(task_id)
    qtbot.waitUntil(lambda: ended(events, task_id), timeout=TIMEOUT_MS)
    mine = [e for e in events if getattr(e, "job_id", None) == task_id]
    assert [type(e).__name__ for e in mine] == ["JobQueued", "JobProgress", "JobProgress", "TaskFinished"]
    assert [(e.step, e.total) for e in mine if isinstance(e, JobProgress)] == [(1, 2), (2, 2)]
    assert threads and threads[0] != threading.current_thread().name
    assert np.array_equal(mine[-1].value, np.ones(3))


def test_failures_become_one_sentence_and_the_worker_goes_on(qtbot, setup):
    worker, _engine, events = setup

    def refuses(_context: TaskContext) -> None:
        raise BadInputError("Upscale factor 3 is not offered; use 2 or 4.")

    def breaks(_context: TaskContext) -> None:
        raise ZeroDivisionError("boom")

    first, second = worker.submit_task(Call(refuses)), worker.submit_task(Call(breaks))
    third = worker.submit_task(Call(lambda _context: "fine"))
    qtbot.waitUntil(lambda: ended(events, third), timeout=TIMEOUT_MS)
    failures = {e.job_id: e.message for e in events if isinstance(e, JobFailed)}
    assert failures[first] == "Upscale factor 3 is not offered; use 2 or 4."
    assert failures[second].startswith("Upscaling x2 failed unexpectedly (ZeroDivisionError: boom)")
    assert [e.value for e in events if isinstance(e, TaskFinished)] == ["fine"]


def test_a_newer_preview_replaces_the_waiting_one_and_cancels_the_running_one(qtbot, setup):
    worker, engine, events = setup
    running = Waiting("preview 1")
    first = worker.submit_task(running, latest_only=True)
    qtbot.waitUntil(running.started.is_set, timeout=TIMEOUT_MS)
    assert not worker.is_busy  # a preview never makes the studio look busy
    assert worker.running_work_id is None and worker.current_id == first
    second = worker.submit_task(Waiting("preview 2"), latest_only=True)
    third = worker.submit_task(Waiting("preview 3", steps=3), latest_only=True)
    qtbot.waitUntil(lambda: ended(events, third), timeout=TIMEOUT_MS)
    cancelled = {e.job_id for e in events if isinstance(e, JobCancelled)}
    assert cancelled == {first, second}  # the running one stopped at its next check; the waiting one never ran
    assert engine.ran == ["preview 1", "preview 3"]
    assert any(isinstance(e, TaskFinished) and e.job_id == third for e in events)


def test_jobs_and_tasks_go_before_a_preview_and_cancel_a_running_one(qtbot, setup):
    worker, engine, events = setup
    busy: list[bool] = []
    worker.busy_changed.connect(busy.append)
    first = Waiting("preview")
    preview = worker.submit_task(first, latest_only=True)
    qtbot.waitUntil(first.started.is_set, timeout=TIMEOUT_MS)
    assert busy == []
    later_preview = worker.submit_task(Waiting("preview 2", steps=2), latest_only=True)
    assert worker.queued_work_ids() == []
    job_id = worker.submit(InpaintJob(), np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))
    upscale = worker.submit_task(Call(lambda context: context.workspace.engine.ran.append("upscale") or "done"))
    qtbot.waitUntil(lambda: ended(events, later_preview), timeout=TIMEOUT_MS)
    assert engine.ran == ["preview", f"job {job_id}", "upscale", "preview 2"]
    assert any(isinstance(e, JobCancelled) and e.job_id == preview for e in events)
    assert any(isinstance(e, TaskFinished) and e.job_id == upscale for e in events)
    assert busy[0] is True and busy[-1] is False  # the job and the upscale made it busy, the preview did not


def test_shutdown_cancels_tasks_and_returns(qtbot, qapp):
    engine = FakeEngine()
    worker = EngineWorker(engine_factory=lambda: engine, stall_timeout_s=0)
    long = Waiting("long", steps=10_000)
    worker.submit_task(long)
    worker.submit_task(Waiting("never"))
    qtbot.waitUntil(long.started.is_set, timeout=TIMEOUT_MS)
    began = time.monotonic()
    assert worker.shutdown(10.0)
    assert time.monotonic() - began < 5.0 and engine.ran == ["long"]
    with pytest.raises(RuntimeError):
        worker.submit_task(Waiting("late"))
