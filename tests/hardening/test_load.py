"""Load: 100 queued jobs, repeated model switching and 500 undo/redo cycles on a 3000x2000 document.

Nothing crashes, the queue keeps its order and every job gets exactly one outcome, and memory returns to its
baseline: growth per job / switch / cycle is measured after a warm-up (tests/hardening/load.py) and must stay
below a small bound. `-s` prints the figures (docs/reliability.md lists them; benchmarks/bench_reliability.py
prints the same table).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from inpaint_studio.ui.engine_thread.worker import EngineWorker
from tests.hardening.conftest import studio_window
from tests.hardening.load import MB, run_model_switching, run_queue, run_undo_redo

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")


def test_a_hundred_queued_jobs_keep_their_order_and_memory(qapp, tiny_sd_inpaint: Path, hardening_engine: Any) -> None:
    worker = EngineWorker(engine_factory=lambda: hardening_engine)
    try:
        run = run_queue(worker, tiny_sd_inpaint, jobs=100)
    finally:
        assert worker.shutdown(10.0)
    print(
        f"\n100 queued jobs: {run.seconds:.1f} s, {run.outcomes}; RSS {run.rss_before / MB:.0f} -> "
        f"{run.rss_after / MB:.0f} MiB (slope {run.rss_per_job / 1024:.1f} KiB/job); traced "
        f"{run.traced_per_job / 1024:+.1f} KiB/job"
    )
    assert run.accounted, run.problems
    assert run.outcomes == {"finished": 86, "cancelled": 10, "failed": 4}
    assert run.order_kept
    # Each result is a 512x512 image (768 KiB): keeping them would show at once.
    assert run.traced_per_job < 64 * 1024, "Python/numpy memory grows with every job"
    assert run.rss_per_job < 256 * 1024 and run.rss_after - run.rss_before < 64 * MB


def test_queued_jobs_on_the_same_picture_share_one_copy(qtbot) -> None:
    """Queue another x20 on one 12-megapixel picture holds one 48 MB copy, not twenty."""
    import threading

    import numpy as np

    from inpaint_studio.core.jobspec import InpaintJob
    from tests.hardening.conftest import FakeEngine

    gate = threading.Event()
    worker = EngineWorker(engine_factory=lambda: FakeEngine(stuck=gate), stall_timeout_s=0)
    try:
        picture = np.full((3000, 4000, 4), 90, np.uint8)
        mask = np.zeros((3000, 4000), np.uint8)
        mask[100:200, 100:200] = 255
        ids = [worker.submit(InpaintJob(model="fake", seed=FakeEngine.STUCK_SEED), picture, mask) for _ in range(20)]
        other = picture.copy()
        other[0, 0] = 1
        different = worker.submit(InpaintJob(model="fake", seed=2), other, mask)
        held = {id(worker.request(i).image) for i in ids}
        assert len(held) == 1 and len({id(worker.request(i).mask) for i in ids}) == 1
        assert id(worker.request(different).image) not in held  # other pixels: its own copy
        assert not worker.request(ids[0]).image.flags.writeable
        picture[:] = 0  # the caller's array is not the queued one
        assert worker.request(ids[-1]).image[5, 5, 0] == 90
    finally:
        gate.set()
        assert worker.shutdown(10.0)


def test_switching_models_back_and_forth_releases_each(tiny_sd_inpaint: Path, tiny_sd: Path) -> None:
    from inpaint_studio.engine.runner import Engine

    engine = Engine()
    try:
        run = run_model_switching(engine, [tiny_sd_inpaint, tiny_sd], switches=12)
    finally:
        engine.release()
    print(
        f"\n12 model switches: {run.seconds:.1f} s; RSS warm {run.rss_warm / MB:.0f} MiB, peak "
        f"{run.rss_peak / MB:.0f}, last {run.rss_last / MB:.0f} (slope {run.rss_per_switch / MB:+.2f} MiB/switch)"
    )
    assert run.released and run.held_max == 1
    assert run.rss_per_switch < 2 * MB and run.rss_peak - run.rss_warm < 96 * MB


def test_five_hundred_undo_redo_cycles_on_a_large_document(qapp, tmp_path: Path) -> None:
    with studio_window(tmp_path) as window:
        run = run_undo_redo(window, cycles=500)
        window.projects.mark_saved()
    print(
        f"\n{run.cycles} undo/redo cycles of {run.strokes} strokes on {run.size[0]}x{run.size[1]}: "
        f"{run.seconds:.1f} s; RSS {run.rss_before / MB:.0f} -> {run.rss_after / MB:.0f} MiB "
        f"(slope {run.rss_per_cycle / 1024:+.1f} KiB/cycle); traced "
        f"{(run.traced_after - run.traced_before) / MB:+.2f} MiB"
    )
    assert run.pixels_restored
    assert run.traced_after - run.traced_before < 8 * MB
    assert run.rss_per_cycle < 64 * 1024 and run.rss_after - run.rss_before < 64 * MB
