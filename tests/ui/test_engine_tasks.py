"""Engine work that is not an InpaintJob: typed tasks in the generation queue (same ids, order, cancel and
watchdog as jobs), and the interactive worker whose answers never wait behind a generation."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.selection import PromptPoint, SelectionPrompt
from inpaint_studio.engine.events import JobCancelled, JobFailed, JobFinished, JobProgress
from inpaint_studio.engine.segmentation import SegmenterCache, SelectObject
from inpaint_studio.engine.tasks import TaskContext, TaskFinished
from inpaint_studio.ui.engine_thread.interactive import SUPERSEDED, InteractiveWorker
from inpaint_studio.ui.engine_thread.worker import REMOVED_FROM_QUEUE, EngineWorker

TIMEOUT_MS = 60_000


@dataclass(frozen=True, eq=False)
class Probe:
    """Records where and in what order it ran, and what its workspace held."""

    log: list = field(default_factory=list)
    title: str = "Probe"

    def run(self, context: TaskContext) -> str:
        self.log.append((threading.get_ident(), context.job_id, context.workspace.engine))
        return f"ran {context.job_id}"


@dataclass(frozen=True, eq=False)
class Gate:
    """Runs until `opened` is set (reporting progress, honouring cancel): a long generation's stand-in."""

    opened: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    title: str = "A long task"

    def run(self, context: TaskContext) -> str:
        self.started.set()
        step = 0
        while not self.opened.wait(0.02):
            context.cancel.raise_if_cancelled()
            step += 1
            context.emit(JobProgress(context.job_id, step, 10_000, 0))
        return "opened"


@dataclass(frozen=True, eq=False)
class Broken:
    title: str = "The broken task"

    def run(self, context: TaskContext) -> None:
        raise BadInputError("This task cannot work on that; give it something else.")


def photo(width: int = 64, height: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 4, y * 5, np.full_like(x, 80)], axis=-1).astype(np.uint8)


def mask(width: int = 64, height: int = 48) -> np.ndarray:
    out = np.zeros((height, width), np.uint8)
    out[10:30, 20:40] = 255
    return out


@pytest.fixture(scope="module")
def engine_worker(qapp, shared_engine):
    worker = EngineWorker(engine_factory=lambda: shared_engine)
    yield worker
    assert worker.shutdown(10.0)


@pytest.fixture
def worker(qtbot, engine_worker):
    yield engine_worker
    qtbot.waitUntil(lambda: not engine_worker.is_busy, timeout=TIMEOUT_MS)


def collect(worker: EngineWorker) -> list[object]:
    events: list[object] = []
    worker.event.connect(events.append)
    return events


def test_a_task_takes_its_turn_in_the_queue_in_the_engine_thread(qtbot, worker, shared_engine):
    events = collect(worker)
    probe = Probe()
    first = worker.submit(InpaintJob(model="classic"), photo(), mask())
    task_id = worker.submit_task(probe)
    last = worker.submit(InpaintJob(model="classic", seed=2), photo(), mask())
    assert worker.is_task(task_id) and not worker.is_task(first)
    assert worker.pending_ids() == [task_id, last] and worker.request(task_id) is None
    with qtbot.waitSignal(worker.task_finished, timeout=TIMEOUT_MS) as done:
        pass
    qtbot.waitUntil(lambda: not worker.is_busy, timeout=TIMEOUT_MS)
    assert done.args[0].job_id == task_id and done.args[0].value == f"ran {task_id}"
    order = [e.job_id for e in events if isinstance(e, JobFinished | TaskFinished)]
    assert order == [first, task_id, last]
    ((thread, job_id, engine),) = probe.log
    assert thread != threading.get_ident() and job_id == task_id and engine is shared_engine
    assert not worker.is_task(task_id)


def test_tasks_cancel_like_jobs_queued_or_running(qtbot, worker):
    events = collect(worker)
    gate = Gate()
    running = worker.submit_task(gate)
    queued = worker.submit_task(Probe())
    assert gate.started.wait(30)
    assert worker.cancel(queued)
    assert JobCancelled(queued, REMOVED_FROM_QUEUE) in events
    qtbot.waitUntil(lambda: any(isinstance(e, JobProgress) and e.job_id == running for e in events), timeout=5000)
    with qtbot.waitSignal(worker.job_cancelled, timeout=TIMEOUT_MS) as cancelled:
        assert worker.cancel_current()
    assert cancelled.args[0].job_id == running
    assert not any(isinstance(e, TaskFinished) for e in events)


def test_a_failing_task_is_one_sentence_and_the_worker_goes_on(qtbot, worker):
    with qtbot.waitSignal(worker.job_failed, timeout=TIMEOUT_MS) as failed:
        worker.submit_task(Broken())
    assert failed.args[0].message == "This task cannot work on that; give it something else."
    with qtbot.waitSignal(worker.task_finished, timeout=TIMEOUT_MS):
        worker.submit_task(Probe())
    with pytest.raises(TypeError, match="not an EngineTask"):
        worker.submit_task(object())  # type: ignore[arg-type]


def test_a_click_is_answered_while_a_long_generation_runs(qtbot, worker, tiny_sam):
    """The reason for the interactive thread: the engine thread is busy, the click does not wait for it."""
    interactive = InteractiveWorker()
    try:
        gate = Gate()
        worker.submit_task(gate)
        assert gate.started.wait(30)
        prompt = SelectionPrompt((PromptPoint(20, 15),))
        with qtbot.waitSignal(interactive.task_finished, timeout=TIMEOUT_MS) as answered:
            interactive.submit(SelectObject(str(tiny_sam), "img", photo(), prompt))
        assert worker.is_busy and worker.is_task(worker.current_id)  # the "generation" still runs
        assert answered.args[0].value.mask.shape == (48, 64)
        # A second click on the same image runs the decoder alone.
        with qtbot.waitSignal(interactive.task_finished, timeout=TIMEOUT_MS):
            interactive.submit(SelectObject(str(tiny_sam), "img", None, prompt.with_point(PromptPoint(40, 30))))
        assert interactive.workspace.peek(SegmenterCache).encodes == 1
    finally:
        gate.opened.set()
        assert interactive.shutdown(10.0)


def test_the_latest_click_wins_and_the_thread_stops_cleanly(qtbot):
    interactive = InteractiveWorker()
    cancelled: list[JobCancelled] = []
    finished: list[TaskFinished] = []
    interactive.task_cancelled.connect(cancelled.append)
    interactive.task_finished.connect(finished.append)
    gate = Gate()
    interactive.submit(gate)
    assert gate.started.wait(30)
    first = interactive.submit(Probe(), replaces="select")
    second = interactive.submit(Probe(), replaces="select")
    other = interactive.submit(Probe(), replaces="encode")
    assert cancelled == [JobCancelled(first, SUPERSEDED)] and interactive.pending_ids() == [second, other]
    gate.opened.set()
    qtbot.waitUntil(lambda: not interactive.is_busy, timeout=TIMEOUT_MS)
    assert [e.job_id for e in finished][1:] == [second, other]
    with qtbot.waitSignal(interactive.task_failed, timeout=TIMEOUT_MS) as failed:
        interactive.submit(Broken())
    assert isinstance(failed.args[0], JobFailed) and failed.args[0].message.startswith("This task cannot")
    start = time.monotonic()
    assert interactive.shutdown(10.0) and time.monotonic() - start < 5
    with pytest.raises(RuntimeError):
        interactive.submit(Probe())


@dataclass(frozen=True, eq=False)
class Stuck:
    """A task in a call that never returns and never looks at its cancel token (until `gate` opens)."""

    gate: threading.Event = field(default_factory=threading.Event)
    title: str = "A stuck task"

    def run(self, context: TaskContext) -> str:
        self.gate.wait()
        return "late"


def test_the_watchdog_treats_a_stuck_task_like_a_stuck_job(qtbot, shared_engine):
    from inpaint_studio.ui.engine_thread.worker import orphaned_threads

    worker = EngineWorker(engine_factory=lambda: shared_engine, stall_timeout_s=0.4, abandon_grace_s=0.3)
    events = collect(worker)
    stuck = Stuck()
    try:
        with qtbot.waitSignal(worker.engine_ready, timeout=TIMEOUT_MS):
            worker.warm_up()
        with qtbot.waitSignal(worker.job_stalled, timeout=TIMEOUT_MS) as stalled:
            task_id = worker.submit_task(stuck)
        assert stalled.args[0] == task_id
        after = worker.submit_task(Probe())  # waits behind it
        with qtbot.waitSignal(worker.job_abandoned, timeout=TIMEOUT_MS):
            assert worker.cancel_current()  # ignored by the task: its thread is given up
        failed = next(e for e in events if isinstance(e, JobFailed) and e.job_id == task_id)
        assert "did not stop when cancelled" in failed.message and not worker.is_task(task_id)
        qtbot.waitUntil(
            lambda: any(isinstance(e, TaskFinished) and e.job_id == after for e in events), timeout=TIMEOUT_MS
        )
    finally:
        stuck.gate.set()
        assert worker.shutdown(10.0)
        qtbot.waitUntil(lambda: orphaned_threads() == 0, timeout=TIMEOUT_MS)
