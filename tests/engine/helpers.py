"""Small shared builders for the engine tests (images, masks, jobs, event capture)."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.events import JobProgress, JobStarted


def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth, photo-like test image (gradients + noise) of the given size."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 200, (x + y) / (width + height) * 255], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8))


def box_mask(width: int, height: int, box: tuple[int, int, int, int]) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    return mask


def job_for(model: Any, **kw: Any) -> InpaintJob:
    defaults: dict[str, Any] = {"model": str(model), "prompt": "a red apple", "steps": 2, "seed": 7}
    defaults.update(kw)
    return InpaintJob(**defaults)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


class Events(list):
    """An on_event sink that keeps every event; `progress_ok()` checks the exact-progress guarantee."""

    def progress(self) -> list[JobProgress]:
        return [e for e in self if isinstance(e, JobProgress)]

    def progress_ok(self) -> bool:
        started = [e for e in self if isinstance(e, JobStarted)]
        progress = self.progress()
        steps = [e.step for e in progress]
        return (
            len(started) == 1
            and len(progress) == started[0].total_steps
            and steps == list(range(1, started[0].total_steps + 1))
        )
