"""Faults in the generation worker: the app stays responsive, says what happened, frees memory, and the next
job runs; closing never waits forever.

* a job that stops reporting progress is detected by the watchdog (ui/worker.py), which the window shows
  with a Cancel button; if the job ignores the cancel (a call that never returns), its thread is abandoned
  and a fresh thread and engine run the next job (a fake engine blocked on an Event stands for the stuck call);
* an exception inside the pipeline and a simulated out-of-memory, with the real engine and a tiny model:
  one sentence, the failed call's tensors freed, the next job fine;
* cancel at every step index, from before the first step to after the last;
* closing the window during a generation, and quitting the app with a stuck job (a subprocess): bounded.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication

from inpaint_studio.core.errors import EngineError, OutOfMemoryError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import JobCancelled, JobFailed, JobFinished, JobProgress, JobStarted
from inpaint_studio.ui.controllers.generation import SHUTDOWN_TIMEOUT_S
from inpaint_studio.ui.engine_thread.worker import EngineWorker, orphaned_threads
from inpaint_studio.ui.window.composition import EngineOptions
from tests.hardening.conftest import FakeEngine, studio_window
from tests.hardening.corpus import photo

TIMEOUT_MS = 60_000
STALL_S = 0.4  # the watchdog's limit in these tests (the app's default is minutes)
GRACE_S = 0.3


def box_mask(width: int = 64, height: int = 64) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[20:44, 20:44] = 255
    return mask


class Events:
    """Every event a worker emits, on the UI thread."""

    def __init__(self, worker: EngineWorker) -> None:
        self.items: list[Any] = []
        worker.event.connect(self.items.append)

    def of(self, job_id: int) -> list[Any]:
        return [e for e in self.items if getattr(e, "job_id", None) == job_id]

    def terminal(self, job_id: int) -> Any:
        done = (JobFinished, JobCancelled, JobFailed)
        return next((e for e in self.of(job_id) if isinstance(e, done)), None)


class Engines:
    """An engine factory: the job with seed FakeEngine.STUCK_SEED gets stuck (until `gate` is set)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.made: list[FakeEngine] = []
        self.threads: list[int] = []

    def __call__(self) -> FakeEngine:
        self.threads.append(threading.get_ident())
        engine = FakeEngine(stuck=self.gate)
        self.made.append(engine)
        return engine


def fake_job(seed: int = FakeEngine.STUCK_SEED) -> InpaintJob:
    return InpaintJob(model="fake", seed=seed)


# ---- the watchdog ------------------------------------------------------------------------------------------


def test_a_stuck_job_is_reported_then_abandoned_and_a_fresh_engine_runs_the_next(qtbot) -> None:
    engines = Engines()
    worker = EngineWorker(engine_factory=engines, stall_timeout_s=STALL_S, abandon_grace_s=GRACE_S)
    events = Events(worker)
    abandoned: list[int] = []
    worker.job_abandoned.connect(abandoned.append)
    try:
        with qtbot.waitSignal(worker.engine_ready, timeout=TIMEOUT_MS):
            worker.warm_up()  # torch is imported before the watchdog's short limit starts counting
        with qtbot.waitSignal(worker.job_stalled, timeout=TIMEOUT_MS) as stalled:
            stuck = worker.submit(fake_job(), photo(64, 64), box_mask())
        assert stalled.args[0] == stuck and stalled.args[1] >= STALL_S
        queued = worker.submit(fake_job(2), photo(64, 64), box_mask())  # waits behind the stuck job

        started = time.monotonic()
        assert worker.cancel_current()  # the fake engine ignores it, like a call that never returns
        qtbot.waitUntil(lambda: events.terminal(queued) is not None, timeout=TIMEOUT_MS)
        assert time.monotonic() - started < 10 * (STALL_S + GRACE_S) + 5

        failed = events.terminal(stuck)
        assert isinstance(failed, JobFailed) and isinstance(failed.error, EngineError)
        assert "did not stop when cancelled" in failed.message and failed.message.endswith(".")
        assert abandoned == [stuck] and worker.abandoned_jobs == [stuck]
        # The queued job ran on a new engine in a new thread, in order.
        assert isinstance(events.terminal(queued), JobFinished)
        assert len(engines.made) == 2 and engines.made[1].ran == [queued] and engines.made[0].ran == []
        assert engines.threads[0] != engines.threads[1]
        assert not worker.is_busy

        # The stuck call returns at last: nothing of it reaches the window, and its thread ends.
        count = len(events.items)
        engines.gate.set()
        qtbot.waitUntil(lambda: orphaned_threads() == 0, timeout=TIMEOUT_MS)
        QApplication.processEvents()
        assert events.items[count:] == []
        again = worker.submit(fake_job(3), photo(64, 64), box_mask())
        qtbot.waitUntil(lambda: isinstance(events.terminal(again), JobFinished), timeout=TIMEOUT_MS)
    finally:
        engines.gate.set()
        assert worker.shutdown(10.0)
        qtbot.waitUntil(lambda: orphaned_threads() == 0, timeout=TIMEOUT_MS)


def test_a_slow_job_that_resumes_is_not_abandoned(qtbot) -> None:
    engines = Engines()
    worker = EngineWorker(engine_factory=engines, stall_timeout_s=STALL_S, abandon_grace_s=GRACE_S)
    events = Events(worker)
    resumed: list[int] = []
    worker.job_resumed.connect(resumed.append)
    try:
        with qtbot.waitSignal(worker.engine_ready, timeout=TIMEOUT_MS):
            worker.warm_up()
        with qtbot.waitSignal(worker.job_stalled, timeout=TIMEOUT_MS):
            job = worker.submit(fake_job(), photo(64, 64), box_mask())
        engines.gate.set()  # the long step ends by itself; nobody cancelled
        qtbot.waitUntil(lambda: events.terminal(job) is not None, timeout=TIMEOUT_MS)
        assert isinstance(events.terminal(job), JobFinished)
        assert resumed == [job] and worker.abandoned_jobs == [] and len(engines.made) == 1
    finally:
        engines.gate.set()
        assert worker.shutdown(10.0)


def test_shutdown_with_a_stuck_job_returns_within_its_timeout(qtbot) -> None:
    engines = Engines()
    worker = EngineWorker(engine_factory=engines, stall_timeout_s=0)
    try:
        worker.submit(fake_job(), photo(64, 64), box_mask())
        qtbot.waitUntil(lambda: any(engine.entered.is_set() for engine in engines.made), timeout=TIMEOUT_MS)
        before = orphaned_threads()
        started = time.monotonic()
        assert worker.shutdown(0.5) is False  # it could not stop the call...
        assert time.monotonic() - started < 2.0  # ...and did not wait for it
        assert orphaned_threads() == before + 1
    finally:
        engines.gate.set()
    qtbot.waitUntil(lambda: orphaned_threads() == 0, timeout=TIMEOUT_MS)


def test_the_window_says_a_job_is_stuck_offers_cancel_and_keeps_working(qtbot, tmp_path: Path) -> None:
    engines = Engines()
    worker = EngineWorker(engine_factory=engines)  # the window's settings set its watchdog
    engine = EngineOptions(worker=worker, owns_worker=True, warm_up_delay_ms=None)
    with studio_window(
        tmp_path, generation__stall_timeout_s=STALL_S, generation__abandon_grace_s=GRACE_S, engine=engine
    ) as window:
        controller = window.generation
        assert (worker.stall_timeout_s, worker.abandon_grace_s) == (STALL_S, GRACE_S)
        window.open_image(photo_image(), "photo")
        window.masks.fill()
        mask = np.zeros((64, 64), np.uint8)
        mask[10:30, 10:30] = 255

        ticks: list[float] = []
        timer_id = window.startTimer(10)  # the UI thread keeps running while a job hangs
        window.timerEvent = lambda _event: ticks.append(time.monotonic())  # type: ignore[method-assign]
        try:
            controller.submit(fake_job(), window.document.composite(), mask)
            qtbot.waitUntil(lambda: "no progress" in window.message_bar.text(), timeout=TIMEOUT_MS)
            assert window.message_bar.kind() == "error"
            assert window.message_bar.actions_offered() == ["Cancel"]
            window.message_bar.trigger("Cancel")
            qtbot.waitUntil(lambda: "did not stop when cancelled" in window.message_bar.text(), timeout=TIMEOUT_MS)
        finally:
            window.killTimer(timer_id)
        gaps = np.diff(ticks)
        assert len(ticks) > 20 and gaps.max() < 1.0, f"the window froze for {gaps.max():.2f} s"

        # The next job runs on a fresh engine and its result arrives.
        controller.submit(fake_job(5), window.document.composite(), mask)
        qtbot.waitUntil(lambda: controller.candidates.list.count() == 1, timeout=TIMEOUT_MS)
        engines.gate.set()
        window.projects.mark_saved()
        started = time.monotonic()
        window.close()
        assert time.monotonic() - started < SHUTDOWN_TIMEOUT_S + 1.0


def photo_image() -> Any:
    from PIL import Image

    return Image.fromarray(photo(64, 64))


def test_quitting_the_app_with_a_stuck_job_ends_the_process_promptly(tmp_path: Path) -> None:
    """The real start-up path (run_gui) with an engine stuck forever: closing ends the process, exit code 0."""
    image = tmp_path / "photo.png"
    photo_image().save(image)
    script = textwrap.dedent(
        f"""
        import sys, threading, time
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        import numpy as np
        from inpaint_studio.core.jobspec import InpaintJob
        from inpaint_studio.engine.events import JobStarted
        from inpaint_studio.ui import app
        from inpaint_studio.ui.engine_thread import worker as worker_module
        from inpaint_studio.ui.window import composition

        class Stuck:
            def run(self, job, image, mask, *, on_event, cancel, job_id, **_):
                on_event(JobStarted(job_id, job, 10))
                threading.Event().wait()  # never returns, whatever cancel says
            def release(self):
                pass

        composition.EngineWorker = lambda *a, **k: worker_module.EngineWorker(engine_factory=Stuck)

        def drive():
            window = next(w for w in QApplication.topLevelWidgets() if type(w).__name__ == "MainWindow")
            if window.document.is_empty:
                QTimer.singleShot(50, drive)
                return
            def started(_event):
                window.projects.mark_saved()
                print("CLOSE", time.time(), flush=True)
                window.close()
            window.generation.worker.job_started.connect(started)
            mask = np.zeros((64, 64), np.uint8)
            mask[10:30, 10:30] = 255
            window.generation.submit(InpaintJob(model="fake", seed=1), window.document.composite(), mask)

        app.create_application()  # run_gui reuses it; the timer below needs it
        QTimer.singleShot(100, drive)
        sys.exit(app.run_gui([{str(image)!r}]))
        """
    )
    env = dict(
        os.environ,
        INPAINT_STUDIO_RECOVERY_DIR=str(tmp_path / "recovery"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        QT_QPA_PLATFORM="offscreen",
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    ended = time.time()
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    closed = float(next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("CLOSE")))
    assert ended - closed < SHUTDOWN_TIMEOUT_S + 5.0, f"closing took {ended - closed:.1f} s"


# ---- the real engine: failures inside the pipeline ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_worker(qapp, hardening_engine) -> Any:
    worker = EngineWorker(engine_factory=lambda: hardening_engine)
    yield worker
    assert worker.shutdown(10.0)


def tiny_job(model: Path, **changes: Any) -> InpaintJob:
    # Euler: one UNet call per step (the default PNDM sampler makes one more call than it has steps).
    values: dict[str, Any] = {"model": str(model), "prompt": "a red apple", "steps": 3, "seed": 3, "padding_px": 8}
    values["scheduler"] = "Euler"
    values.update(changes)
    return InpaintJob(**values)


def run_and_wait(qtbot, worker: EngineWorker, job: InpaintJob, events: Events) -> Any:
    job_id = worker.submit(job, photo(64, 64), box_mask())
    qtbot.waitUntil(lambda: events.terminal(job_id) is not None, timeout=TIMEOUT_MS)
    return events.terminal(job_id)


@pytest.mark.parametrize("fault", ["exception", "out of memory"])
def test_a_failure_inside_the_pipeline_is_one_sentence_frees_its_tensors_and_the_next_job_works(
    qtbot, real_worker: EngineWorker, tiny_sd_inpaint: Path, hardening_engine: Any, fault: str, monkeypatch
) -> None:
    import torch

    events = Events(real_worker)
    assert isinstance(run_and_wait(qtbot, real_worker, tiny_job(tiny_sd_inpaint), events), JobFinished)
    pipe = hardening_engine.pipelines.pipelines()[0]
    held: list[weakref.ref] = []

    def failing_forward(*args: Any, **kwargs: Any) -> Any:
        activations = torch.ones(4, 1024, 1024)  # 16 MB that only this call's frame holds
        held.append(weakref.ref(activations))
        if fault == "exception":
            raise RuntimeError("simulated failure inside the UNet")
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")

    monkeypatch.setattr(pipe.unet, "forward", failing_forward)
    failed = run_and_wait(qtbot, real_worker, tiny_job(tiny_sd_inpaint), events)
    assert isinstance(failed, JobFailed)
    assert isinstance(failed.error, OutOfMemoryError if fault == "out of memory" else EngineError)
    assert "\n" not in failed.message and failed.message.endswith(".")
    assert ("ran out of memory" if fault == "out of memory" else "simulated failure") in failed.message
    gc.collect()
    assert held and held[0]() is None, "the failed call's tensors are still alive while its error is shown"

    monkeypatch.undo()
    assert isinstance(run_and_wait(qtbot, real_worker, tiny_job(tiny_sd_inpaint, seed=4), events), JobFinished)


STEPS = 3


@pytest.mark.parametrize("at", ["started", *range(1, STEPS + 1)])
def test_cancel_at_every_step_index(
    tiny_sd_inpaint: Path, hardening_engine: Any, at: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancel when the job starts (before step 1) or right after step k, including after the last one: the
    remaining denoising steps are skipped (counted UNet calls), the job ends as cancelled (never a partial
    result), and the next job runs normally. Synchronous, so the step index is exact."""
    from inpaint_studio.core.errors import CancelledError
    from inpaint_studio.engine.events import CancelToken

    hardening_engine.run(tiny_job(tiny_sd_inpaint, steps=1), photo(64, 64), box_mask())  # loaded
    unet = hardening_engine.pipelines.pipelines()[0].unet
    calls: list[int] = []
    forward = unet.forward
    monkeypatch.setattr(unet, "forward", lambda *a, **k: (calls.append(1), forward(*a, **k))[1])
    token, seen = CancelToken(), []

    def on_event(event: Any) -> None:
        seen.append(event)
        if (at == "started" and isinstance(event, JobStarted)) or (isinstance(event, JobProgress) and event.step == at):
            token.cancel()

    with pytest.raises(CancelledError):
        hardening_engine.run(
            tiny_job(tiny_sd_inpaint, steps=STEPS), photo(64, 64), box_mask(), on_event=on_event, cancel=token
        )
    done = 0 if at == "started" else int(at)
    assert [e.step for e in seen if isinstance(e, JobProgress)] == list(range(1, done + 1))
    assert len(calls) == done, f"{len(calls)} UNet calls after a cancel at step {at}"
    assert isinstance(seen[-1], JobCancelled)
    monkeypatch.undo()
    result = hardening_engine.run(tiny_job(tiny_sd_inpaint, steps=2), photo(64, 64), box_mask())
    assert result.images[0].size == (64, 64)


@pytest.mark.parametrize("at", ["started", *range(1, STEPS + 1)])
def test_cancel_from_the_window_thread_at_every_step(
    qtbot, real_worker: EngineWorker, tiny_sd_inpaint: Path, at: object
) -> None:
    """The same through the worker: the cancel is sent from the UI thread when the step's event arrives
    there (the engine may have run further by then, even to the end on a busy machine). Whatever the timing:
    one outcome, never a partial result, and the next queued job runs normally."""
    events = Events(real_worker)
    job_id: list[int] = []

    def cancel_at(event: Any) -> None:
        if not job_id or getattr(event, "job_id", None) != job_id[0]:
            return
        if (at == "started" and isinstance(event, JobStarted)) or (isinstance(event, JobProgress) and event.step == at):
            real_worker.cancel_current()

    real_worker.event.connect(cancel_at)
    try:
        job_id.append(real_worker.submit(tiny_job(tiny_sd_inpaint, steps=STEPS), photo(64, 64), box_mask()))
        following = real_worker.submit(tiny_job(tiny_sd_inpaint, steps=2), photo(64, 64), box_mask())
        qtbot.waitUntil(lambda: events.terminal(following) is not None, timeout=TIMEOUT_MS)
    finally:
        real_worker.event.disconnect(cancel_at)
    steps = [e.step for e in events.of(job_id[0]) if isinstance(e, JobProgress)]
    outcome = events.terminal(job_id[0])
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= (0 if at == "started" else int(at))
    # Cancelled, or (when the UI thread got to it only after the last step) finished whole: never partial.
    assert isinstance(outcome, JobCancelled) or (isinstance(outcome, JobFinished) and len(steps) == STEPS)
    assert len([e for e in events.of(job_id[0]) if e is outcome]) == 1
    assert isinstance(events.terminal(following), JobFinished)


def test_closing_the_window_during_a_generation_is_bounded(
    qtbot, tmp_path: Path, tiny_sd_inpaint: Path, hardening_engine: Any
) -> None:
    worker = EngineWorker(engine_factory=lambda: hardening_engine)
    engine = EngineOptions(worker=worker, owns_worker=True, warm_up_delay_ms=None)
    with studio_window(tmp_path, engine=engine) as window:
        controller = window.generation
        window.open_image(photo_image(), "photo")
        with qtbot.waitSignal(worker.job_progress, timeout=TIMEOUT_MS):
            controller.submit(tiny_job(tiny_sd_inpaint, steps=400), window.document.composite(), box_mask())
        controller.submit(tiny_job(tiny_sd_inpaint), window.document.composite(), box_mask())  # queued
        window.projects.mark_saved()
        started = time.monotonic()
        window.close()
        elapsed = time.monotonic() - started
        print(f"\nclose during a generation: {elapsed:.3f} s")
        assert elapsed < SHUTDOWN_TIMEOUT_S
        assert not worker.is_running
    with pytest.raises(RuntimeError):
        worker.submit(tiny_job(tiny_sd_inpaint), photo(64, 64), box_mask())
