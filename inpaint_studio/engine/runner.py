"""The engine: (image, mask, job) -> inpainted image(s), with progress events and cooperative cancel.

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

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core import compositing, geometry, masks
from inpaint_studio.core.errors import (
    BadInputError,
    CancelledError,
    EngineError,
    InpaintStudioError,
    OutOfMemoryError,
)
from inpaint_studio.core.jobspec import Area, InpaintJob, OutputSize
from inpaint_studio.engine.events import (
    CancelToken,
    EventSink,
    InpaintResult,
    JobCancelled,
    JobFailed,
    JobFinished,
    JobProgress,
    JobStarted,
)
from inpaint_studio.engine.models import Family, ModelInfo, resolve_model

log = logging.getLogger(__name__)

# Approximate linear map from SD latents to RGB: a cheap live preview without running the VAE.
_LATENT_RGB = np.array(
    [[0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264], [-0.184, -0.271, -0.473]],
    dtype=np.float32,
)


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
    import cv2

    pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    if pil.mode not in ("RGB", "RGBA"):
        pil = pil.convert("RGBA" if "A" in pil.getbands() or "transparency" in pil.info else "RGB")
    arr = np.asarray(pil)
    rgb = np.ascontiguousarray(arr[..., :3])
    alpha = np.ascontiguousarray(arr[..., 3]) if arr.shape[-1] == 4 else None
    mask_arr = masks.as_mask_array(mask.convert("L") if isinstance(mask, Image.Image) else mask)
    size = pil.size
    masks.check_same_size((mask_arr.shape[1], mask_arr.shape[0]), size)
    binary = cv2.threshold(mask_arr, 127, 255, cv2.THRESH_BINARY)[1]
    x, y, w, h = cv2.boundingRect(binary)
    if w == 0 or h == 0:
        masks.require_nonempty(binary)
    # Grow inside a window around the painted pixels only (dilation reaches grow_px further).
    window = _expand((x, y, x + w, y + h), max(job.mask.grow_px, 0) + 1, size)
    wl, wt, wr, wb = window
    grown_window = masks.grow(binary[wt:wb, wl:wr], job.mask.grow_px)
    masks.require_nonempty(grown_window)
    gx, gy, gw, gh = cv2.boundingRect(grown_window)
    grown_box = (wl + gx, wt + gy, wl + gx + gw, wt + gy + gh)
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

    def __init__(self, *, allow_download: bool = False) -> None:
        from inpaint_studio.engine.loader import PipelineManager

        self.pipelines = PipelineManager()
        self.allow_download = allow_download
        self._scheduler_configs: dict[str, dict[str, Any]] = {}

    # ---- public API -----------------------------------------------------------------------------------
    def resolve(self, reference: str) -> ModelInfo:
        return resolve_model(reference, allow_download=self.allow_download)

    def release(self) -> None:
        """Unload the current model and return its memory."""
        self.pipelines.release()

    def run(
        self,
        job: InpaintJob,
        image: Image.Image | np.ndarray,
        mask: Image.Image | np.ndarray,
        *,
        on_event: EventSink | None = None,
        cancel: CancelToken | None = None,
        job_id: int = 0,
        preview_every: int = 0,
    ) -> InpaintResult:
        """Run `job`; emits JobStarted, JobProgress..., then JobFinished / JobCancelled / JobFailed.

        Raises the InpaintStudioError that JobFailed/JobCancelled describe, so headless callers can simply
        use try/except. `preview_every` > 0 attaches an approximate preview image every N steps.
        """
        emit = on_event or (lambda event: None)
        cancel = cancel or CancelToken()
        try:
            job = job.resolved().validate()
            result = self._run(job, image, mask, emit, cancel, job_id, preview_every)
        except CancelledError as exc:
            emit(JobCancelled(job_id, str(exc)))
            raise
        except InpaintStudioError as exc:
            emit(JobFailed(job_id, str(exc), exc))
            raise
        except Exception as exc:  # an unexpected failure still becomes one sentence for the user
            log.exception("job %s failed", job_id)
            error = EngineError(
                f"The generation failed unexpectedly ({type(exc).__name__}: {str(exc)[:160]}); "
                "try again, or choose another model or sampler."
            )
            emit(JobFailed(job_id, str(error), error))
            raise error from exc
        emit(JobFinished(job_id, result))
        return result

    # ---- internals ------------------------------------------------------------------------------------
    def _run(
        self,
        job: InpaintJob,
        image: Image.Image | np.ndarray,
        mask: Image.Image | np.ndarray,
        emit: EventSink,
        cancel: CancelToken,
        job_id: int,
        preview_every: int,
    ) -> InpaintResult:
        start = time.perf_counter()
        if not job.is_classical:
            from inpaint_studio.engine.schedulers import check_scheduler_name

            check_scheduler_name(job.scheduler)
        info = self.resolve(job.model)
        prepared = prepare_input(job, image, mask)
        cancel.raise_if_cancelled()
        if info.family is Family.CLASSIC:
            images, device, extra = self._run_classical(job, prepared, emit, cancel, job_id)
        else:
            images, device, extra = self._run_diffusion(job, info, prepared, emit, cancel, job_id, preview_every)
        return InpaintResult(
            images=images,
            job=job,
            seeds=job.variant_seeds()[: len(images)],
            model=info.to_dict(),
            device=device,
            duration_s=time.perf_counter() - start,
            region=prepared.box,
            extra=extra,
        )

    def _run_classical(self, job, prepared: PreparedInput, emit, cancel, job_id):
        from inpaint_studio.core.jobspec import ClassicalMethod
        from inpaint_studio.engine.classical import classical_fill

        method = job.classical_method
        if ":" in job.model:
            method = ClassicalMethod(job.model.split(":", 1)[1])
        emit(JobStarted(job_id, job, 1))

        def progress(done: int, total: int) -> None:
            emit(JobProgress(job_id, done, max(total, 1), 0))

        filled = classical_fill(prepared.crop(prepared.rgb), prepared.mask, method, cancel=cancel, progress=progress)
        out = self._finish_image(job, prepared, filled)
        return [out], "cpu", {"classical_method": method.value}

    def _run_diffusion(self, job, info: ModelInfo, prepared: PreparedInput, emit, cancel, job_id, preview_every):
        import torch

        from inpaint_studio.engine.devices import describe_device, pick_device
        from inpaint_studio.engine.loader import free_device_cache
        from inpaint_studio.engine.schedulers import apply_scheduler

        if info.family is Family.SDXL_REFINER:
            raise BadInputError(
                f"{info.name} is a refiner, which only improves an existing result; choose an inpainting model."
            )
        device = pick_device(job.device)
        pipe = self.pipelines.get(info, device, job.memory_mode)
        key = str(info.path)
        if key not in self._scheduler_configs:
            self._scheduler_configs = {key: dict(pipe.scheduler.config)}  # only the loaded model's
        apply_scheduler(pipe, job.scheduler, self._scheduler_configs[key])

        native = _native_resolution(pipe, info.family)
        left, top, right, bottom = prepared.box
        box_w, box_h = right - left, bottom - top
        work_w, work_h = working_size_for((box_w, box_h), native, job.resolution)
        crop_rgb = Image.fromarray(prepared.crop(prepared.rgb))
        crop_mask = Image.fromarray(prepared.mask)
        model_image = crop_rgb.resize((work_w, work_h), Image.Resampling.LANCZOS)
        # Nearest keeps the mask binary; the pipeline binarises anyway.
        model_mask = crop_mask.resize((work_w, work_h), Image.Resampling.NEAREST)

        per_variant = _denoising_steps(pipe.scheduler, job.steps, job.strength)
        total = per_variant * job.variants
        emit(JobStarted(job_id, job, total))
        images: list[Image.Image] = []
        for index, seed in enumerate(job.variant_seeds()):
            cancel.raise_if_cancelled()
            done_before = index * per_variant
            callback = _StepCallback(emit, cancel, job_id, index, done_before, total, preview_every)
            generator = torch.Generator("cpu").manual_seed(seed)
            try:
                output = pipe(
                    prompt=job.prompt,
                    negative_prompt=job.negative_prompt or None,
                    image=model_image,
                    mask_image=model_mask,
                    height=work_h,
                    width=work_w,
                    strength=job.strength,
                    guidance_scale=job.guidance_scale,
                    num_inference_steps=job.steps,
                    generator=generator,
                    output_type="np",
                    callback_on_step_end=callback,
                )
            except torch.OutOfMemoryError as exc:
                free_device_cache(device)
                raise OutOfMemoryError(
                    f"The GPU ran out of memory at {work_w}x{work_h}; use the masked-region area, fewer "
                    "variants, a smaller working resolution, or memory mode 'model_offload'."
                ) from exc
            if cancel.cancelled:
                raise CancelledError()
            raw = np.asarray(output.images[0], dtype=np.float32)
            if not np.isfinite(raw).all():
                raise EngineError(
                    "The model produced an invalid (NaN) image, usually an fp16 VAE overflow; "
                    "try again on the CPU or with a model whose VAE supports fp16."
                )
            model_out = np.clip(np.rint(raw * 255.0), 0, 255).astype(np.uint8)
            if job.output_size is OutputSize.PROCESSED:
                images.append(Image.fromarray(model_out))
                continue
            back = np.asarray(Image.fromarray(model_out).resize((box_w, box_h), Image.Resampling.LANCZOS))
            images.append(self._finish_image(job, prepared, back))
        extra = {
            "working_size": [work_w, work_h],
            "native_resolution": native,
            "device_name": describe_device(device),
            "dtype": str(pipe.dtype).replace("torch.", ""),
            "pipeline": type(pipe).__name__,
            "unet_in_channels": info.in_channels,
        }
        return images, device, extra

    def _finish_image(self, job: InpaintJob, prepared: PreparedInput, generated: np.ndarray) -> Image.Image:
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


def _denoising_steps(scheduler: Any, steps: int, strength: float) -> int:
    """How many times the pipeline will call back: the scheduler's timesteps after strength trims them.

    Mirrors the pipelines' get_timesteps(); some schedulers (PNDM, Heun) run more than `steps` calls.
    """
    import copy

    probe = copy.deepcopy(scheduler)
    probe.set_timesteps(steps)
    order = getattr(probe, "order", 1)
    init = min(int(steps * strength), steps)
    skip = max(steps - init, 0) * order
    return max(1, len(probe.timesteps) - skip)


def _native_resolution(pipe: Any, family: Family) -> int:
    unet = getattr(pipe, "unet", None)
    scale = getattr(pipe, "vae_scale_factor", None)
    if unet is not None and scale and isinstance(getattr(unet.config, "sample_size", None), int):
        return int(unet.config.sample_size) * int(scale)
    return family.native_resolution


class _StepCallback:
    """callback_on_step_end: progress after every step, cooperative cancel, optional preview."""

    def __init__(self, emit, cancel: CancelToken, job_id: int, variant: int, done_before: int, total: int, every: int):
        self.emit, self.cancel, self.job_id = emit, cancel, job_id
        self.variant, self.done_before, self.total, self.every = variant, done_before, total, every

    def __call__(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        if self.cancel.cancelled:
            pipe._interrupt = True  # diffusers skips the remaining steps
            return kwargs
        preview = None
        if self.every and (step + 1) % self.every == 0 and "latents" in kwargs:
            preview = latents_preview(kwargs["latents"])
        done = min(self.total, self.done_before + step + 1)
        self.emit(JobProgress(self.job_id, done, self.total, self.variant, preview))
        return kwargs


def latents_preview(latents: Any) -> Image.Image | None:
    """A rough RGB picture of 4-channel SD latents (no VAE decode): for a live preview only."""
    try:
        lat = latents[0].detach().float().cpu().numpy()
    except (AttributeError, IndexError):
        return None
    if lat.shape[0] != 4:
        return None
    rgb = np.tensordot(lat.transpose(1, 2, 0), _LATENT_RGB, axes=1)
    rgb = np.clip((rgb + 1.0) * 127.5, 0, 255).astype(np.uint8)
    return Image.fromarray(rgb)
