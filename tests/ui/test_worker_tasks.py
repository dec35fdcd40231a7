"""Engine tasks on the worker thread: work that is not an InpaintJob (upscaling, the preview while painting),
its events, priorities, "latest only" previews, cancel and shutdown."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError, CancelledError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import JobFinished, JobStarted
from inpaint_studio.ui.engine_thread.worker import (
    EngineWorker,
    TaskCancelled,
    TaskFailed,
    TaskFinished,
    TaskProgress,
    TaskStarted,
)

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


def waiting(label: str, engine_log: list[str], started: threading.Event | None = None, steps: int = 200):
    """A task that runs until cancelled (or `steps` x 10 ms), checking its token like a denoising loop."""

    def work(engine: FakeEngine, report: Any, cancel: Any) -> str:
        engine.ran.append(label)
        if started is not None:
            started.set()
        for step in range(steps):
            if cancel.cancelled:
                raise CancelledError()
            report(step)
            time.sleep(0.01)
        return label

    return work


@pytest.fixture
def setup(qtbot, qapp):
    engine = FakeEngine()
    worker = EngineWorker(engine_factory=lambda: engine, stall_timeout_s=0)
    events: list[Any] = []
    for signal in (
        worker.task_started,
        worker.task_progress,
        worker.task_finished,
        worker.task_failed,
        worker.task_cancelled,
    ):
        signal.connect(events.append)
    yield worker, engine, events
    assert worker.shutdown(10.0)


def finished(events: list[Any], task_id: int) -> bool:
    return any(isinstance(e, TaskFinished | TaskFailed | TaskCancelled) and e.task_id == task_id for e in events)


def test_a_task_runs_on_the_engine_thread_and_reports(qtbot, setup):
    worker, _engine, events = setup
    threads: list[str] = []

    def work(eng: FakeEngine, report: Any, cancel: Any) -> np.ndarray:
        threads.append(threading.current_thread().name)
        report((1, 2))
        report((2, 2))
        return np.ones(3)

    task_id = worker.submit_task("testing", work)
    qtbot.waitUntil(lambda: finished(events, task_id), timeout=TIMEOUT_MS)
    kinds = [type(e) for e in events if e.task_id == task_id]
    assert kinds == [TaskStarted, TaskProgress, TaskProgress, TaskFinished]
    assert [e.value for e in events if isinstance(e, TaskProgress)] == [(1, 2), (2, 2)]
    assert threads and threads[0] != threading.current_thread().name
    assert np.array_equal(events[-1].result, np.ones(3))


def test_failures_become_one_sentence_and_the_worker_goes_on(qtbot, setup):
    worker, _engine, events = setup

    def refuses(*_: Any) -> None:
        raise BadInputError("Upscale factor 3 is not offered; use 2 or 4.")

    def breaks(*_: Any) -> None:
        raise ZeroDivisionError("boom")

    first, second = worker.submit_task("upscaling", refuses), worker.submit_task("upscaling x2", breaks)
    third = worker.submit_task("after", lambda *_: "fine")
    qtbot.waitUntil(lambda: finished(events, third), timeout=TIMEOUT_MS)
    failures = {e.task_id: e.message for e in events if isinstance(e, TaskFailed)}
    assert failures[first] == "Upscale factor 3 is not offered; use 2 or 4."
    assert failures[second].startswith("Upscaling x2 failed unexpectedly (ZeroDivisionError: boom)")
    assert [e.result for e in events if isinstance(e, TaskFinished)] == ["fine"]


def test_a_newer_preview_replaces_the_waiting_one_and_cancels_the_running_one(qtbot, setup):
    worker, engine, events = setup
    started = threading.Event()
    first = worker.submit_task("preview 1", waiting("preview 1", engine.ran, started), latest_only=True)
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT_MS)
    second = worker.submit_task("preview 2", waiting("preview 2", engine.ran), latest_only=True)
    third = worker.submit_task("preview 3", waiting("preview 3", engine.ran, steps=3), latest_only=True)
    qtbot.waitUntil(lambda: finished(events, third), timeout=TIMEOUT_MS)
    cancelled = {e.task_id for e in events if isinstance(e, TaskCancelled)}
    assert cancelled == {first, second}  # the running one stopped at its next check; the waiting one never ran
    assert engine.ran == ["preview 1", "preview 3"]
    assert any(isinstance(e, TaskFinished) and e.task_id == third for e in events)


def test_jobs_and_tasks_go_before_a_preview_and_cancel_a_running_one(qtbot, setup):
    worker, engine, events = setup
    started = threading.Event()
    preview = worker.submit_task("preview", waiting("preview", engine.ran, started), latest_only=True)
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT_MS)
    job_id = worker.submit(InpaintJob(), np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8), np.uint8))
    later_preview = worker.submit_task("preview 2", waiting("preview 2", engine.ran, steps=2), latest_only=True)
    upscale = worker.submit_task("upscale", lambda eng, *_: eng.ran.append("upscale") or "done")
    qtbot.waitUntil(lambda: finished(events, later_preview), timeout=TIMEOUT_MS)
    assert engine.ran == ["preview", f"job {job_id}", "upscale", "preview 2"]
    assert any(isinstance(e, TaskCancelled) and e.task_id == preview for e in events)
    assert any(isinstance(e, TaskFinished) and e.task_id == upscale for e in events)


def test_cancel_a_task_wherever_it_is(qtbot, setup):
    worker, engine, events = setup
    started = threading.Event()
    running = worker.submit_task("long", waiting("long", engine.ran, started))
    queued = worker.submit_task("queued", waiting("queued", engine.ran))
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT_MS)
    assert worker.current_task_id == running and worker.pending_task_ids() == [queued]
    assert worker.cancel_task(queued) and worker.cancel_task(running)
    assert not worker.cancel_task(12345)
    qtbot.waitUntil(lambda: finished(events, running), timeout=TIMEOUT_MS)
    assert {e.task_id for e in events if isinstance(e, TaskCancelled)} == {running, queued}
    assert engine.ran == ["long"]


def test_shutdown_cancels_tasks_and_returns(qtbot, qapp):
    engine = FakeEngine()
    worker = EngineWorker(engine_factory=lambda: engine, stall_timeout_s=0)
    started = threading.Event()
    worker.submit_task("long", waiting("long", engine.ran, started, steps=10_000))
    worker.submit_task("never", waiting("never", engine.ran))
    qtbot.waitUntil(started.is_set, timeout=TIMEOUT_MS)
    began = time.monotonic()
    assert worker.shutdown(10.0)
    assert time.monotonic() - began < 5.0 and engine.ran == ["long"]
    with pytest.raises(RuntimeError):
        worker.submit_task("late", waiting("late", engine.ran))
