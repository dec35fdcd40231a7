"""Load measurements shared by tests/hardening/test_load.py (which asserts on them) and
benchmarks/bench_reliability.py (which prints them): a long job queue through the real worker, repeated model
switching, and hundreds of undo/redo cycles on a large document. Memory is read from /proc/self/statm (RSS)
and tracemalloc (Python and numpy allocations), after a warm-up, with gc run before every reading.
"""

from __future__ import annotations

import gc
import os
import time
import tracemalloc
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer

from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import JobCancelled, JobFailed, JobFinished, JobStarted

MB = 2**20


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; no psutil needed)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def settled_rss() -> int:
    gc.collect()
    return rss_bytes()


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> None:
    """Process Qt events until predicate() holds (AssertionError after timeout_s)."""
    deadline = time.monotonic() + timeout_s
    tick = QTimer()
    tick.start(10)
    try:
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"still waiting after {timeout_s} s")
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
    finally:
        tick.stop()


def slope(values: list[float]) -> float:
    """Least-squares growth per sample."""
    if len(values) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(values)), np.asarray(values, np.float64), 1)[0])


def photo(width: int = 64, height: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def box_mask(width: int = 64, height: int = 64) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    mask[20:44, 20:44] = 255
    return mask


# ---- a long queue through the real worker ------------------------------------------------------------------------


@dataclass
class QueueRun:
    jobs: int
    seconds: float
    outcomes: dict[str, int]
    order_kept: bool
    accounted: bool
    rss_before: int
    rss_after: int
    rss_per_job: float  # least-squares slope of RSS over the finished jobs
    traced_before: int
    traced_after: int
    problems: list[str] = field(default_factory=list)

    @property
    def traced_per_job(self) -> float:
        return (self.traced_after - self.traced_before) / self.jobs


def run_queue(
    worker: Any, model: Path, jobs: int = 100, warm_up: int = 8, timeout_s: float = 300, side: int = 512
) -> QueueRun:
    """Queue `jobs` at once (every 10th cancelled while queued, every 25th with an empty mask, which fails),
    then check that every job got exactly one outcome, in submission order, and measure memory per job.

    Every job gets the same `side`-pixel picture, as "Queue another" does (the worker keeps one copy for
    them all); the model works on a small crop around the mask, and each result is a full-size image, so
    anything kept per job shows in the figures."""

    def job(seed: int) -> InpaintJob:
        return InpaintJob(model=str(model), prompt="a red apple", steps=1, scheduler="Euler", seed=seed, padding_px=8)

    seen: list[tuple[str, int]] = []  # (event type, job id): no results kept, so they cannot inflate memory
    rss_at_done: list[int] = []

    def record(event: Any) -> None:
        seen.append((type(event).__name__, getattr(event, "job_id", -1)))

    worker.event.connect(record)
    worker.job_done.connect(lambda _id: rss_at_done.append(rss_bytes()))
    try:
        warm = [worker.submit(job(s), photo(side, side), box_mask(side, side)) for s in range(warm_up)]
        wait_until(lambda: all(_terminal(seen, i) for i in warm), timeout_s)
        seen.clear()
        rss_at_done.clear()
        tracemalloc.start()
        gc.collect()
        traced_before = tracemalloc.get_traced_memory()[0]
        rss_before = settled_rss()
        started = time.monotonic()
        ids, cancelled, failing = [], [], []
        picture = photo(side, side, seed=1)
        for index in range(jobs):
            empty = index % 25 == 12
            mask = np.zeros((side, side), np.uint8) if empty else box_mask(side, side)
            job_id = worker.submit(job(1000 + index), picture, mask)  # "Queue another" on the same picture
            ids.append(job_id)
            if empty:
                failing.append(job_id)
            elif index % 10 == 9:
                cancelled.append(job_id)
        for job_id in cancelled:
            worker.cancel_queued(job_id)
        wait_until(lambda: all(_terminal(seen, i) for i in ids), timeout_s)
        seconds = time.monotonic() - started
        gc.collect()
        traced_after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        rss_after = settled_rss()
    finally:
        worker.event.disconnect(record)
    outcomes = {"finished": 0, "cancelled": 0, "failed": 0}
    problems = []
    for job_id in ids:
        kinds = [kind for kind, i in seen if i == job_id]
        terminal = [k for k in kinds if k in ("JobFinished", "JobCancelled", "JobFailed")]
        if len(terminal) != 1 or kinds.count("JobQueued") != 1:
            problems.append(f"job {job_id}: {kinds}")
            continue
        outcomes[{"JobFinished": "finished", "JobCancelled": "cancelled", "JobFailed": "failed"}[terminal[0]]] += 1
        expected = "JobCancelled" if job_id in cancelled else "JobFailed" if job_id in failing else "JobFinished"
        if terminal[0] != expected:
            problems.append(f"job {job_id}: {terminal[0]}, expected {expected}")
    started_order = [i for kind, i in seen if kind == JobStarted.__name__]
    run_order = [i for i in ids if i not in cancelled and i not in failing]
    return QueueRun(
        jobs=jobs,
        seconds=seconds,
        outcomes=outcomes,
        order_kept=started_order == run_order,
        accounted=not problems and sum(outcomes.values()) == jobs,
        rss_before=rss_before,
        rss_after=rss_after,
        rss_per_job=slope([float(v) for v in rss_at_done[len(rss_at_done) // 4 :]]),
        traced_before=traced_before,
        traced_after=traced_after,
        problems=problems,
    )


def _terminal(seen: list[tuple[str, int]], job_id: int) -> bool:
    names = (JobFinished.__name__, JobCancelled.__name__, JobFailed.__name__)
    return any(kind in names and i == job_id for kind, i in seen)


# ---- model switching ---------------------------------------------------------------------------------------------


@dataclass
class SwitchRun:
    switches: int
    seconds: float
    rss_warm: int  # after each model was loaded once
    rss_peak: int  # the highest reading after a switch
    rss_last: int
    rss_per_switch: float
    released: bool  # every model given up was garbage (a weak reference to its pipeline died)
    held_max: int  # most pipelines held at once


def run_model_switching(engine: Any, models: list[Path], switches: int = 12) -> SwitchRun:
    def job(model: Path) -> InpaintJob:
        return InpaintJob(model=str(model), prompt="x", steps=1, scheduler="Euler", seed=1, padding_px=8)

    for model in models:  # warm-up: each loaded once
        engine.run(job(model), photo(), box_mask())
    rss_warm = settled_rss()
    readings, released, held = [], True, 0
    started = time.monotonic()
    previous: weakref.ref | None = None
    for index in range(switches):
        engine.run(job(models[index % len(models)]), photo(), box_mask())
        held = max(held, len(engine.pipelines.pipelines()))
        gc.collect()
        if previous is not None and previous() is not None:
            released = False
        previous = weakref.ref(engine.pipelines.pipelines()[0])
        readings.append(rss_bytes())
    return SwitchRun(
        switches=switches,
        seconds=time.monotonic() - started,
        rss_warm=rss_warm,
        rss_peak=max(readings),
        rss_last=readings[-1],
        rss_per_switch=slope([float(v) for v in readings]),
        released=released,
        held_max=held,
    )


# ---- undo/redo on a large document --------------------------------------------------------------------------------


@dataclass
class UndoRun:
    size: tuple[int, int]
    strokes: int
    cycles: int
    seconds: float
    rss_before: int
    rss_after: int
    rss_per_cycle: float
    traced_before: int
    traced_after: int
    pixels_restored: bool


def run_undo_redo(window: Any, cycles: int = 500, size: tuple[int, int] = (3000, 2000)) -> UndoRun:
    """Open a large photo, paint strokes (mask and paint layer), then undo all and redo all, `cycles` times.

    Strokes go through the real canvas (mouse events); undo/redo through the window's actions."""
    from PIL import Image
    from PySide6.QtCore import QPointF

    from tests.ui.studio.helpers import drag, line

    width, height = size
    window.open_image(Image.fromarray(photo(width, height, seed=3)), "large")
    window.canvas.set_view(1.0, QPointF(0, 0))
    window.tool_settings.set_size(40)
    strokes = [line(20, 40 + 60 * i, 500, 60 + 60 * i, steps=12) for i in range(3)]
    for points in strokes:  # mask strokes
        drag(window.canvas, points)
    window.layers_panel.add_paint_layer()
    window.select_tool("paint_brush")
    for points in strokes[:2]:  # paint strokes on the new layer
        drag(window.canvas, [(x + 30, y + 10) for x, y in points])
    QCoreApplication.processEvents()
    count = window.undo_stack.count()
    final_mask = window.document.mask.copy()
    final_paint = window.document.layers[-1].pixels.copy()

    def cycle() -> None:
        for _ in range(count):
            window.undo()
        for _ in range(count):
            window.redo()
        QCoreApplication.processEvents()

    for _ in range(5):  # warm-up: caches, the budget's census, the History panel
        cycle()
    tracemalloc.start()
    gc.collect()
    traced_before = tracemalloc.get_traced_memory()[0]
    rss_before = settled_rss()
    readings = []
    started = time.monotonic()
    for index in range(cycles):
        cycle()
        if index % 10 == 9:
            readings.append(float(rss_bytes()))
    seconds = time.monotonic() - started
    gc.collect()
    traced_after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rss_after = settled_rss()
    restored = np.array_equal(window.document.mask, final_mask) and np.array_equal(
        window.document.layers[-1].pixels, final_paint
    )
    return UndoRun(
        size=size,
        strokes=count,
        cycles=cycles,
        seconds=seconds,
        rss_before=rss_before,
        rss_after=rss_after,
        rss_per_cycle=slope(readings) / 10,
        traced_before=traced_before,
        traced_after=traced_after,
        pixels_restored=restored,
    )
