"""The engine: (image, mask, job) -> inpainted image(s), with progress events and cooperative cancel.

Also text-to-image (no input) and image-to-image (no mask, or a mask that limits the change) jobs;
chains of jobs are run by engine/chain.py on top of Engine.run.

What it guarantees, whatever the model:
- the output has the input's size;
- with preserve_unmasked (the default) every pixel outside the feathered mask is bit-identical to the
  input: the model's output is composited over the original, never returned raw;
- the same job (same seed) on the same device gives identical pixels (a CPU generator seeds the noise,
  so the noise itself is also the same across devices).

"Masked region" mode crops the mask's bounding box plus padding, runs at the model's native resolution
and scales back, so a 6000x4000 photo costs about what a 512x512 image costs.
"""

from __future__ import annotations

import gc
import logging
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core import compositing, geometry, masks
from inpaint_studio.core.errors import (
    BadInputError,
    CancelledError,
    EngineError,
    InpaintStudioError,
    ModelUnavailableError,
)
from inpaint_studio.core.jobspec import Area, InpaintJob, Task
from inpaint_studio.engine.events import (
    CancelToken,
    EventSink,
    InpaintResult,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
    LatentHandoff,
)
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.models import ModelInfo, component_config, resolve_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedInput:
    """Image and mask, checked, with the processed box decided and the mask work done inside it only.

    Everything mask-related is computed on the box, never on the whole frame: on a 6000x4000 photo the
    cost of a job then follows the size of the edit, not the size of the photo.
    """

    rgb: np.ndarray  # HxWx3 uint8, the whole image
    alpha: np.ndarray | None  # HxW uint8 when the input had transparency
    box: masks.Box  # (left, top, right, bottom) of the processed area
    mask: np.ndarray  # box-sized uint8: grown, binarised mask (255 = repaint)
    weight: np.ndarray  # box-sized float32 blend weight (feathered mask); 0 at the box's inner edges

    def crop(self, array: np.ndarray) -> np.ndarray:
        left, top, right, bottom = self.box
        return array[top:bottom, left:right]


def _expand(box: masks.Box, margin: int, size: tuple[int, int]) -> masks.Box:
    left, top, right, bottom = box
    width, height = size
    return max(0, left - margin), max(0, top - margin), min(width, right + margin), min(height, bottom + margin)


def prepare_input(job: InpaintJob, image: Image.Image | np.ndarray, mask: Image.Image | np.ndarray) -> PreparedInput:
    """Validate sizes and the mask, grow/feather it, and choose the area the model works on."""
    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if pil.mode not in ("RGB", "RGBA"):
        pil = pil.convert("RGBA" if "A" in pil.getbands() or "transparency" in pil.info else "RGB")
    arr = np.asarray(pil)
    rgb = np.ascontiguousarray(arr[..., :3])
    alpha = np.ascontiguousarray(arr[..., 3]) if arr.shape[-1] == 4 else None
    mask_arr = masks.as_mask_array(mask.convert("L") if isinstance(mask, Image.Image) else mask)
    size = pil.size
    masks.check_same_size((mask_arr.shape[1], mask_arr.shape[0]), size)
    painted = masks.masked_bbox(mask_arr)
    # Binarise and grow inside a window around the masked pixels only (dilation reaches grow_px further).
    window = _expand(painted, max(job.mask.grow_px, 0) + 1, size)
    wl, wt, wr, wb = window
    grown_window = masks.grow(masks.binarize(mask_arr[wt:wb, wl:wr]), job.mask.grow_px)
    gl, gt, gr, gb = masks.masked_bbox(grown_window)  # an erosion can leave nothing
    grown_box = (wl + gl, wt + gt, wl + gr, wt + gb)
    if job.area is Area.WHOLE:
        box: masks.Box = (0, 0, size[0], size[1])
    else:
        # The box must contain the whole feather band, or its edge would show as a seam.
        padding = max(job.padding_px, job.mask.feather_px + 8)
        box = geometry.crop_box(grown_box, size, padding)
    left, top, right, bottom = box
    box_mask = np.zeros((bottom - top, right - left), np.uint8)
    # The grown window and the box both contain the grown mask: copy their overlap.
    ol, ot, orr, ob = max(left, wl), max(top, wt), min(right, wr), min(bottom, wb)
    box_mask[ot - top : ob - top, ol - left : orr - left] = grown_window[ot - wt : ob - wt, ol - wl : orr - wl]
    weight = masks.feather(box_mask, job.mask.feather_px)
    return PreparedInput(rgb=rgb, alpha=alpha, box=box, mask=box_mask, weight=weight)


def working_size_for(box_size: tuple[int, int], native: int, resolution: int | None, multiple: int = 8):
    """Size the model works at: the box scaled to the model's native pixel count (or `resolution` long side)."""
    w, h = box_size
    if resolution:
        return geometry.working_size(box_size, resolution, multiple)
    # Same number of pixels as native x native, same aspect as the box.
    long_side = native * math.sqrt(max(w, h) / min(w, h))
    return geometry.working_size(box_size, round(long_side), multiple)


class Engine:
    """Runs jobs; keeps one pipeline loaded between jobs (see PipelineManager)."""

    def __init__(self, *, allow_download: bool = False, allow_unsafe_checkpoints: bool = False) -> None:
        """`allow_unsafe_checkpoints`: load any pickled .ckpt/.pt/.pth the jobs name (the command line's
        --allow-unsafe-checkpoint); otherwise only those passed to `allow_unsafe_checkpoint`."""
        from inpaint_studio.engine.loader import PipelineManager

        self.pipelines = PipelineManager()
        self.allow_download = allow_download
        self.allow_unsafe_checkpoints = allow_unsafe_checkpoints
        self.allowed_unsafe: set[str] = set()  # pickled checkpoints the user allowed one by one (the studio)
        self._scheduler_configs: dict[str, dict[str, Any]] = {}

    # ---- public API -----------------------------------------------------------------------------------
    def allow_unsafe_checkpoint(self, path: str) -> None:
        """The user confirmed loading this pickled checkpoint (read weights-only even then)."""
        self.allowed_unsafe.add(str(Path(path).expanduser()))

    def resolve(self, reference: str) -> ModelInfo:
        path = str(Path(reference.strip()).expanduser())
        allowed = self.allow_unsafe_checkpoints or path in self.allowed_unsafe
        return resolve_model(reference, allow_download=self.allow_download, allow_unsafe=allowed)

    def release(self) -> None:
        """Unload the current model and return its memory."""
        self.pipelines.release()

    def run(
        self,
        job: InpaintJob,
        image: Image.Image | np.ndarray | None = None,
        mask: Image.Image | np.ndarray | None = None,
        *,
        control_image: Image.Image | np.ndarray | None = None,
        handoff: LatentHandoff | None = None,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        job_id: int = 0,
        preview_every: int = 0,
    ) -> InpaintResult:
        """Run `job`; emits JobStarted, JobProgress..., then JobFinished / JobCancelled / JobFailed.

        `image` is required except for text-to-image; `mask` is required for inpainting, optional for
        image-to-image (without it the whole image is redrawn). `control_image` replaces the ControlNet
        condition built from image and mask (for ControlNets other than the inpainting one). `handoff` is
        the previous chain step's latents (used only where they equal this step's input exactly).

        Raises the InpaintStudioError that JobFailed/JobCancelled describe, so headless callers can simply
        use try/except. `preview_every` > 0 attaches an approximate preview image every N steps.
        """
        emit = on_event or (lambda event: None)
        cancel = cancel or CancelToken()
        try:
            job = job.resolved().validate()
            result = self._run(job, image, mask, control_image, handoff, emit, cancel, job_id, preview_every)
        except CancelledError as exc:
            emit(JobCancelled(job_id, str(exc)))
            raise
        except InpaintStudioError as exc:
            emit(JobFailed(job_id, str(exc), exc))
            raise
        except Exception as exc:  # an unexpected failure still becomes one sentence for the user
            log.exception("job %s failed", job_id)
            # The error travels on (JobFailed, the raised EngineError's cause): its traceback's frames
            # must not keep the failed call's tensors alive while the message is shown.
            traceback.clear_frames(exc.__traceback__)
            gc.collect()
            error = EngineError(
                f"The generation failed unexpectedly ({type(exc).__name__}: {str(exc)[:160]}); "
                "try again, or choose another model or sampler."
            )
            emit(JobFailed(job_id, str(error), error))
            raise error from exc
        emit(JobFinished(job_id, result))
        return result

    def scheduler_config(self, info: ModelInfo, pipe: Any = None) -> dict[str, Any]:
        """The model's own scheduler config, as loaded (before any sampler swap) or read from its files."""
        key = str(info.path)
        if key not in self._scheduler_configs:
            if pipe is not None:
                config = dict(pipe.scheduler.config)
            else:
                config = component_config(info, "scheduler", "scheduler_config.json")
                if config is None:
                    raise ModelUnavailableError(
                        f"The model {info.name} has no scheduler configuration; download it again."
                    )
            if len(self._scheduler_configs) > 8:
                self._scheduler_configs.clear()
            self._scheduler_configs[key] = config
        return self._scheduler_configs[key]

    # ---- internals ------------------------------------------------------------------------------------
    def _run(
        self,
        job: InpaintJob,
        image: Image.Image | np.ndarray | None,
        mask: Image.Image | np.ndarray | None,
        control_image: Image.Image | np.ndarray | None,
        handoff: LatentHandoff | None,
        emit: EventSink,
        cancel: CancelToken,
        job_id: int,
        preview_every: int,
    ) -> InpaintResult:
        start = time.perf_counter()
        if not job.is_classical:
            from inpaint_studio.engine.schedulers import check_scheduler_name

            check_scheduler_name(job.scheduler)
        if job.prompt_weighting:  # a malformed weighting fails before any model is loaded
            from inpaint_studio.engine.prompts import check_syntax

            check_syntax(job.prompt, "prompt")
            check_syntax(job.negative_prompt, "negative prompt")
        prepared = self._prepare(job, image, mask)
        info = self.resolve(job.model)
        cancel.raise_if_cancelled()
        out_handoff = None
        if info.family is Family.CLASSIC:
            images, device, extra = self._run_classical(job, prepared, emit, cancel, job_id)
        else:
            from inpaint_studio.engine.diffusion import DiffusionJob

            outcome = DiffusionJob(
                self,
                job,
                info,
                prepared,
                control_image=control_image,
                handoff=handoff,
                emit=emit,
                cancel=cancel,
                job_id=job_id,
                preview_every=preview_every,
            ).run()
            images, device, extra, out_handoff = outcome.images, outcome.device, outcome.extra, outcome.handoff
        if prepared is not None:
            region = prepared.box
        else:
            region = (0, 0, images[0].width, images[0].height)
        return InpaintResult(
            images=images,
            job=job,
            seeds=job.variant_seeds()[: len(images)],
            model=info.to_dict(),
            device=device,
            duration_s=time.perf_counter() - start,
            region=region,
            extra=extra,
            handoff=out_handoff,
        )

    def _prepare(
        self, job: InpaintJob, image: Image.Image | np.ndarray | None, mask: Image.Image | np.ndarray | None
    ) -> PreparedInput | None:
        if job.task is Task.TEXT2IMG:
            if image is not None or mask is not None:
                raise BadInputError(
                    "Text-to-image starts from the prompt alone; give no image or mask, or set the task to "
                    "inpaint or img2img."
                )
            return None
        if image is None:
            raise BadInputError(f"The {job.task.value} task needs an input image; open one or use text2img.")
        if mask is None:
            if job.task is Task.INPAINT:
                raise BadInputError("Inpainting needs a mask (white = repaint); paint one or give a mask file.")
            size = image.size if isinstance(image, Image.Image) else np.asarray(image).shape[1::-1]
            mask = np.full((size[1], size[0]), 255, np.uint8)  # image-to-image of the whole picture
        return prepare_input(job, image, mask)

    def _run_classical(self, job, prepared: PreparedInput, emit, cancel, job_id):
        from inpaint_studio.engine.classical import classical_fill

        method = job.effective_classical_method
        emit(JobStarted(job_id, job, 1))

        def progress(done: int, total: int) -> None:
            emit(JobProgress(job_id, done, max(total, 1), 0))

        filled = classical_fill(prepared.crop(prepared.rgb), prepared.mask, method, cancel=cancel, progress=progress)
        out = finish_image(job, prepared, filled)
        return [out], "cpu", {"classical_method": method.value}


def finish_image(job: InpaintJob, prepared: PreparedInput, generated: np.ndarray) -> Image.Image:
    """Colour-match the box-sized generated pixels and composite them over the original image."""
    if job.color_match and not job.is_classical:
        generated = compositing.match_color(generated, prepared.crop(prepared.rgb), prepared.mask)
    rgb = prepared.rgb.copy()
    region = prepared.crop(rgb)
    if job.preserve_unmasked:
        region[...] = compositing.composite(region, generated, prepared.weight)
    else:
        region[...] = generated
    if prepared.alpha is None:
        return Image.fromarray(rgb)
    # Filled pixels become opaque; untouched ones keep their transparency.
    alpha = prepared.alpha.copy()
    alpha_region = prepared.crop(alpha)
    opaque = np.full_like(alpha_region, 255)
    alpha_region[...] = compositing.composite(alpha_region[..., None], opaque[..., None], prepared.weight)[..., 0]
    return Image.fromarray(np.dstack([rgb, alpha]))
