"""The engine worker thread with real engines: queue order, cancel, failures, shutdown, the async helper."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from inpaint_studio.core.errors import CancelledError, EmptyMaskError, ModelUnavailableError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import JobCancelled, JobFailed, JobFinished, JobProgress, JobStarted
from inpaint_studio.ui.background import BackgroundRunner
from inpaint_studio.ui.engine_thread.awaitable import run_job
from inpaint_studio.ui.engine_thread.downloads import ModelDownloader
from inpaint_studio.ui.engine_thread.worker import REMOVED_FROM_QUEUE, EngineWorker

TIMEOUT_MS = 60_000


def photo(width: int = 64, height: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 200, (x + y) / (width + height) * 255], axis=-1)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def box_mask(width: int = 64, height: int = 64, box: tuple[int, int, int, int] = (20, 20, 44, 44)) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    return mask


def tiny_job(model, **kw) -> InpaintJob:
    values = {"model": str(model), "prompt": "a red apple", "steps": 2, "seed": 3, "padding_px": 8}
    values.update(kw)
    return InpaintJob(**values)


@pytest.fixture(scope="module")
def module_worker(qapp, shared_engine):
    w = EngineWorker(engine_factory=lambda: shared_engine)
    yield w
    assert w.shutdown(10.0)


@pytest.fixture
def worker(qtbot, module_worker):
    """The module's worker (the model stays loaded between tests); each test leaves it idle."""
    yield module_worker
    qtbot.waitUntil(lambda: not module_worker.is_busy, timeout=TIMEOUT_MS)


class Recorder:
    """Collects every event the worker emits on the UI thread, with the thread it arrived on."""

    def __init__(self, worker: EngineWorker) -> None:
        self.events: list[object] = []
        self.threads: set[int] = set()
        worker.event.connect(self.add)

    def add(self, event: object) -> None:
        self.threads.add(threading.get_ident())
        self.events.append(event)

    def of(self, job_id: int) -> list[object]:
        return [e for e in self.events if getattr(e, "job_id", None) == job_id]

    def terminal(self, job_id: int) -> object | None:
        return next((e for e in self.of(job_id) if isinstance(e, JobFinished | JobCancelled | JobFailed)), None)


def test_torch_is_not_imported_by_the_ui_modules():
    code = (
        "import sys; import inpaint_studio.ui.engine_thread.worker, inpaint_studio.engine.runner;"
        "import inpaint_studio.ui.controllers.generation;"
        "print('torch' in sys.modules, 'diffusers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_generation_runs_in_the_worker_thread_and_reports_on_the_ui_thread(qtbot, worker, tiny_sd_inpaint):
    events = Recorder(worker)
    image = photo()
    with qtbot.waitSignal(worker.job_finished, timeout=TIMEOUT_MS) as finished:
        job_id = worker.submit(tiny_job(tiny_sd_inpaint, variants=2), image, box_mask())
    image[:] = 0  # the request holds its own copy: changing the caller's array changes nothing
    result = finished.args[0].result
    assert finished.args[0].job_id == job_id
    assert len(result.images) == 2 and result.seeds == [3, 4]
    assert np.asarray(result.images[0])[0, 0].any()  # the original (not the zeroed array) was used
    kinds = [type(e).__name__ for e in events.of(job_id)]
    assert kinds[0] == "JobQueued" and kinds[1] == "JobStarted" and kinds[-1] == "JobFinished"
    progress = [e for e in events.of(job_id) if isinstance(e, JobProgress)]
    assert [p.step for p in progress] == list(range(1, len(progress) + 1))
    assert events.threads == {threading.get_ident()}
    assert worker.engine_state == "ready" and worker.engine_info.device == "cpu"
    qtbot.waitUntil(lambda: not worker.is_busy, timeout=TIMEOUT_MS)


def test_queue_of_three_runs_in_order_and_each_is_accounted_for(qtbot, worker, tiny_sd_inpaint):
    events = Recorder(worker)
    ids = [worker.submit(tiny_job(tiny_sd_inpaint, seed=s), photo(), box_mask()) for s in (1, 2, 3)]
    assert worker.current_id == ids[0] and worker.pending_ids() == ids[1:]
    qtbot.waitUntil(lambda: all(events.terminal(i) for i in ids), timeout=TIMEOUT_MS)
    started = [e.job_id for e in events.events if isinstance(e, JobStarted)]
    finished = [e for e in events.events if isinstance(e, JobFinished)]
    assert started == ids and [e.job_id for e in finished] == ids
    assert [e.result.seeds[0] for e in finished] == [1, 2, 3]
    qtbot.waitUntil(lambda: not worker.is_busy, timeout=TIMEOUT_MS)


def test_cancel_mid_run_then_the_next_job_works(qtbot, worker, tiny_sd_inpaint):
    events = Recorder(worker)
    job = tiny_job(tiny_sd_inpaint, steps=200)

    def cancel_after_two_steps(event: object) -> None:
        if isinstance(event, JobProgress) and event.step == 2:
            worker.cancel_current()

    worker.job_progress.connect(cancel_after_two_steps)
    with qtbot.waitSignal(worker.job_cancelled, timeout=TIMEOUT_MS):
        first = worker.submit(job, photo(), box_mask())
    worker.job_progress.disconnect(cancel_after_two_steps)
    steps = [e.step for e in events.of(first) if isinstance(e, JobProgress)]
    assert 2 <= max(steps) < 200
    with qtbot.waitSignal(worker.job_finished, timeout=TIMEOUT_MS) as done:
        second = worker.submit(tiny_job(tiny_sd_inpaint), photo(), box_mask())
    assert done.args[0].job_id == second


def test_cancel_queued_removes_only_that_job(qtbot, worker, tiny_sd_inpaint):
    events = Recorder(worker)
    ids = [worker.submit(tiny_job(tiny_sd_inpaint, seed=s), photo(), box_mask()) for s in (1, 2, 3)]
    assert worker.cancel_queued(ids[1])
    assert not worker.cancel_queued(ids[1])
    qtbot.waitUntil(lambda: all(events.terminal(i) for i in ids), timeout=TIMEOUT_MS)
    assert isinstance(events.terminal(ids[0]), JobFinished)
    assert events.terminal(ids[1]) == JobCancelled(ids[1], REMOVED_FROM_QUEUE)
    assert isinstance(events.terminal(ids[2]), JobFinished)
    assert not any(isinstance(e, JobStarted) for e in events.of(ids[1]))


def test_errors_are_reported_and_the_worker_keeps_working(qtbot, worker, tiny_sd_inpaint, tmp_path):
    with qtbot.waitSignal(worker.job_failed, timeout=TIMEOUT_MS) as failed:
        worker.submit(tiny_job(tiny_sd_inpaint), photo(), np.zeros((64, 64), np.uint8))
    assert isinstance(failed.args[0].error, EmptyMaskError)
    with qtbot.waitSignal(worker.job_failed, timeout=TIMEOUT_MS) as failed:
        worker.submit(tiny_job(tmp_path / "nowhere"), photo(), box_mask())
    assert isinstance(failed.args[0].error, ModelUnavailableError)
    assert failed.args[0].message.endswith(".")
    with qtbot.waitSignal(worker.job_finished, timeout=TIMEOUT_MS):
        worker.submit(tiny_job(tiny_sd_inpaint), photo(), box_mask())


def test_classical_fill_through_the_worker(qtbot, worker):
    image = photo(96, 80)
    mask = box_mask(96, 80, (30, 30, 50, 45))
    with qtbot.waitSignal(worker.job_finished, timeout=TIMEOUT_MS) as finished:
        worker.submit(InpaintJob(model="classic"), image, mask)
    out = np.asarray(finished.args[0].result.images[0])
    assert out.shape == (80, 96, 3)
    outside = mask == 0
    assert np.array_equal(out[outside][:, :3], image[outside])  # nothing outside the mask's feather changed
    assert not np.array_equal(out[35:40, 35:45], image[35:40, 35:45])


def test_shutdown_during_a_generation_returns_promptly(qtbot, tiny_sd_inpaint, shared_engine):
    worker = EngineWorker(engine_factory=lambda: shared_engine)
    with qtbot.waitSignal(worker.job_finished, timeout=TIMEOUT_MS):  # the one-time kernel set-up is done
        worker.submit(tiny_job(tiny_sd_inpaint), photo(), box_mask())
    with qtbot.waitSignal(worker.job_progress, timeout=TIMEOUT_MS):
        worker.submit(tiny_job(tiny_sd_inpaint, steps=500), photo(), box_mask())
    worker.submit(tiny_job(tiny_sd_inpaint), photo(), box_mask())
    start = time.monotonic()
    assert worker.shutdown(10.0)
    assert time.monotonic() - start < 5.0
    assert not worker.is_running
    with pytest.raises(RuntimeError):
        worker.submit(tiny_job(tiny_sd_inpaint), photo(), box_mask())


def test_run_job_awaits_results_and_cancellation(qtbot, worker, tiny_sd_inpaint):
    import qasync

    loop = qasync.QEventLoop(already_running=False)
    asyncio.set_event_loop(loop)

    async def scenario() -> tuple[object, object]:
        result = await run_job(worker, tiny_job(tiny_sd_inpaint, seed=9), photo(), box_mask())
        task = asyncio.ensure_future(run_job(worker, tiny_job(tiny_sd_inpaint, steps=300), photo(), box_mask()))
        await asyncio.sleep(0.3)
        worker.cancel_current()
        try:
            await task
        except CancelledError as exc:
            return result, exc
        return result, None

    try:
        result, cancelled = loop.run_until_complete(asyncio.wait_for(scenario(), 60))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
    assert result.seeds == [9]
    assert isinstance(cancelled, CancelledError)


def test_download_reports_progress_and_can_be_cancelled(qtbot):
    """The downloader's thread and hub progress class, with a local stand-in for the network transfer."""
    gate = threading.Event()

    def fake_hub_download(repo_id, progress):
        files = progress(total=3, desc="Fetching 3 files")
        data = progress(total=3000, unit="B", desc="Downloading bytes")
        for _ in range(3):
            data.update(1000)
            files.update(1)
            if repo_id == "slow/model":
                gate.wait(5)
        return f"/cache/{repo_id}"

    downloader = ModelDownloader(BackgroundRunner(), download=fake_hub_download)
    seen = []
    downloader.progress.connect(seen.append)
    with qtbot.waitSignal(downloader.finished, timeout=TIMEOUT_MS) as done:
        downloader.start("owner/model")
    assert done.args == ["owner/model", "/cache/owner/model"]
    assert seen[-1].done_bytes == 3000 and seen[-1].files_done == 3
    with qtbot.waitSignal(downloader.cancelled, timeout=TIMEOUT_MS):
        downloader.start("slow/model")
        downloader.cancel("slow/model")
        gate.set()
    assert not downloader.is_downloading()
