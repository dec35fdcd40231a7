"""The preview while painting: a few-step result of the masked area, redone as the mask changes.

With "Preview while painting the mask" on (the Generate panel's add-ons), every change of the mask or the
pixels schedules a preview at most every `INTERVAL_MS` while the pointer keeps painting, so the preview
follows the stroke instead of waiting for its end. The preview job is the panel's job in fast mode (its
few-step LoRA, `core/fast_modes.py`) when that LoRA is installed, else the panel's job with at most
`FALLBACK_STEPS` steps; one variant, a fixed seed (the panel's, when locked) so successive previews differ
only where the mask does.

It is an `EngineTask` (engine/tasks.py) submitted with `latest_only` (ui/engine_thread/worker.py): a newer
preview replaces a waiting one and cancels a running one at its next denoising step, and a Generate or an
upscale cancels it. The
window never waits: only the masked area plus its padding is copied on the UI thread (and not at all when
nothing changed), at most `MAX_REGION_PIXELS`; the result is shown in the panel, never on the canvas, so
painting stays unobstructed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QTimer

from inpaint_studio.core import geometry, masks
from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.fast_modes import DEFAULT_FAST, PROFILES
from inpaint_studio.core.generation_settings import GenerationSettings
from inpaint_studio.core.jobspec import OFF, Area, InpaintJob
from inpaint_studio.engine.addons import is_installed
from inpaint_studio.engine.events import JobFailed
from inpaint_studio.engine.tasks import TaskContext, TaskFinished
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.engine_thread.worker import EngineWorker
from inpaint_studio.ui.panels.generate.panel import GeneratePanel

log = logging.getLogger(__name__)

INTERVAL_MS = 350
FALLBACK_STEPS = 8
PREVIEW_SEED = 1
MAX_REGION_PIXELS = 4_000_000


def preview_job(job: InpaintJob, family: str, *, fast_available: bool) -> InpaintJob:
    """The job a preview runs (see the module docstring); `family` is "sd", "sdxl" or "" (no fast mode)."""
    job = job.replace(variants=1, seed=job.seed if job.seed is not None else PREVIEW_SEED, area=Area.MASKED)
    if job.is_classical:
        return job
    fast = job.fast if job.fast != OFF else DEFAULT_FAST
    profile = PROFILES[fast]
    if family and fast_available and family in profile.loras:
        return job.replace(fast=fast)
    steps = min(job.steps, FALLBACK_STEPS)
    steps = max(steps, math.ceil(1 / job.strength - 1e-9))  # strength x steps must reach one step
    return job.replace(fast=OFF, steps=steps)


@dataclass(frozen=True)
class PreviewTask:
    """One preview: the job on a copy of the masked region; returns the region's pixels and where they go."""

    job: InpaintJob
    image: np.ndarray = field(repr=False)
    mask: np.ndarray = field(repr=False)
    origin: tuple[int, int]  # the region's top-left corner in the document
    named: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    title: str = "The preview while painting"

    def run(self, context: TaskContext) -> tuple[np.ndarray, tuple[int, int, int, int]]:
        engine = context.workspace.engine
        result = engine.run(self.job, self.image, self.mask, cancel=context.cancel, **self.named)
        x0, y0, x1, y1 = result.region
        left, top = self.origin
        return np.asarray(result.images[0])[y0:y1, x0:x1], (left + x0, top + y0, left + x1, top + y1)


class PaintPreview(QObject):
    """See the module docstring."""

    def __init__(
        self,
        ctx: StudioContext,
        settings_model: GenerationSettings,
        worker: EngineWorker,
        panel: GeneratePanel,
        named_inputs: Any,
    ) -> None:
        super().__init__(ctx.window)
        self.ctx, self.model, self.worker, self.panel = ctx, settings_model, worker, panel
        self.document = ctx.document
        self._named_inputs = named_inputs
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.update_now)
        self._task_id: int | None = None
        self._last: tuple[Any, ...] | None = None  # what the last preview was made from
        self._told_missing = False
        self.previews = 0  # finished previews (for the status and tests)
        doc = self.document
        doc.mask_changed.connect(self._on_changed)
        doc.pixels_changed.connect(self._on_changed)
        doc.reset.connect(self._on_reset)
        doc.resized.connect(self._on_reset)
        settings_model.subscribe(self._on_settings)
        worker.task_finished.connect(self._on_finished)
        worker.job_failed.connect(self._on_failed)
        worker.job_cancelled.connect(self._on_cancelled)

    @property
    def enabled(self) -> bool:
        return self.model.paint_preview

    def _on_changed(self, *_args: Any) -> None:
        if self.enabled and not self._timer.isActive():
            self._timer.start()  # a throttle, not a debounce: previews follow a stroke while it goes on

    def _on_settings(self, path: str) -> None:
        if path == "paint_preview" and not self.enabled:
            self.stop()
            return
        if path in ("seed_locked", "live_preview"):
            return
        self._told_missing = False
        self._on_changed()

    def _on_reset(self, *_args: Any) -> None:  # reset(), or resized(offset)
        self.stop()

    def stop(self) -> None:
        """No preview: cancel the running one and hide it."""
        self._timer.stop()
        if self._task_id is not None:
            self.worker.cancel(self._task_id)
            self._task_id = None
        self._last = None
        self.panel.set_paint_preview(None)

    def update_now(self) -> int | None:
        """Submit a preview of the current mask (replacing a waiting or running one); its task id, or None when
        there is nothing to preview or nothing changed."""
        doc = self.document
        if not self.enabled or doc.is_empty or self.worker.is_closed:
            return None
        box = masks.bbox(doc.mask)
        if box is None:
            self.stop()
            return None
        family = self.panel.addons.family
        job = self.model.job_to_run()
        fast = job.fast if job.fast != OFF else DEFAULT_FAST
        reference = PROFILES[fast].loras.get(family) if family else None
        available = reference is not None and is_installed(reference, "lora", family)
        if not available and not job.is_classical and not self._told_missing and family:
            self._told_missing = True
            self.ctx.status.showMessage(
                "Preview while painting: fast mode's LoRA is not installed (Add-ons > Mode offers it); "
                f"previews use {FALLBACK_STEPS} ordinary steps meanwhile.",
                8000,
            )
        job = preview_job(job, family, fast_available=available)
        if job.problems():
            return None
        padding = max(job.padding_px, job.mask.feather_px + 8)
        region = geometry.crop_box(box, doc.size, padding)
        left, top, right, bottom = region
        if (right - left) * (bottom - top) > MAX_REGION_PIXELS:
            self.ctx.status.showMessage("Preview while painting: the masked area is too large to preview live.", 4000)
            return None
        mask = doc.mask[top:bottom, left:right]
        key = (job, region)
        if self._last is not None and self._last[0] == key and np.array_equal(self._last[1], mask):
            return None  # e.g. a layer's visibility toggled and back: the same input
        image = doc.composite(region)
        mask = mask.copy()
        try:
            named = {f"{name}_image": pixels for name, pixels in self._named_inputs(job).items()}
        except InpaintStudioError:
            job, named = job.replace(ip_adapter=None), {}  # no reference chosen yet: preview without it
        self._last = (key, mask)

        task = PreviewTask(job, image, mask, (left, top), named)
        self._task_id = self.worker.submit_task(task, latest_only=True)
        return self._task_id

    def _on_finished(self, event: TaskFinished) -> None:
        if event.job_id != self._task_id:
            return
        self._task_id = None
        pixels, region = event.value
        self.previews += 1
        self.panel.set_paint_preview(pixels, f"Preview of the masked area {region}")

    def _on_cancelled(self, event: Any) -> None:
        if event.job_id == self._task_id:
            self._task_id = None  # replaced by a newer preview, or ended by other work

    def _on_failed(self, event: JobFailed) -> None:
        if event.job_id != self._task_id:
            return
        self._task_id = None
        # Said once in the status bar (not the message bar): a preview must not nag while the artist paints.
        self.ctx.status.showMessage(f"Preview while painting: {event.message}", 8000)
