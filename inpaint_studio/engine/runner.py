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

The path of one job through Engine.run:
1. the job gets a concrete seed and is validated (core/jobspec.py); the sampler name and the prompt
   weighting syntax are checked before anything is loaded;
2. region.prepare_for_task checks the image and mask and decides the box the model works on;
3. the model reference is resolved to local files and a family (models.ModelResolver);
4. all of it becomes one RunContext (context.py), with the variant seeds;
5. the classical fill (here, on the CPU), a removal network (removal.py) or a DiffusionJob (diffusion.py)
   computes the images and composites them over the original (region.finish_image); a diffusion job with a
   `prefill` first has its masked area filled by the classical fill or a removal network ("Remove, then
   refine"). The classical fill and removal networks record the job without the settings they ignore
   (removal.settings_used);
6. the outcome becomes an InpaintResult, announced by JobFinished; a failure becomes JobFailed or
   JobCancelled and is raised as the InpaintStudioError they describe.
The engine keeps what outlives one job: the loaded pipeline (loader.PipelineManager), the loaded removal
network (removal.RemovalModels), the models' own scheduler configs (schedulers.SchedulerConfigs) and the
download / pickled-checkpoint permissions.
"""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core.errors import BadInputError, CancelledError, EngineError, InpaintStudioError
from inpaint_studio.core.fast_modes import apply_fast
from inpaint_studio.core.jobspec import PREFILL_NONE, InpaintJob
from inpaint_studio.engine.addons import UPSCALER_SUFFIXES
from inpaint_studio.engine.classical import LARGE_HOLE_PX, classical_fill, hole_thickness_px
from inpaint_studio.engine.context import RunContext, RunOutcome
from inpaint_studio.engine.diffusion import DiffusionJob
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
from inpaint_studio.engine.loader import PipelineManager
from inpaint_studio.engine.models import ModelInfo, ModelResolver
from inpaint_studio.engine.prompts import check_syntax
from inpaint_studio.engine.region import finish_image, prepare_for_task
from inpaint_studio.engine.removal import RemovalModels, prefill, run_removal, settings_used
from inpaint_studio.engine.schedulers import SchedulerConfigs, check_scheduler_name
from inpaint_studio.engine.upscale import UpscaleJob, Upscaler, UpscaleResult

log = logging.getLogger(__name__)


class Engine:
    """Runs jobs; keeps one pipeline loaded between jobs (see PipelineManager)."""

    def __init__(self, *, allow_download: bool = False, allow_unsafe_checkpoints: bool = False) -> None:
        """`allow_unsafe_checkpoints`: load any pickled .ckpt/.pt/.pth the jobs name (the command line's
        --allow-unsafe-checkpoint); otherwise only those passed to `allow_unsafe_checkpoint`."""
        self.pipelines = PipelineManager()
        self.removal = RemovalModels()
        self.models = ModelResolver(allow_download=allow_download, allow_unsafe_checkpoints=allow_unsafe_checkpoints)
        self.scheduler_configs = SchedulerConfigs()
        self.upscaler = Upscaler(allow_download=allow_download)

    # ---- public API -----------------------------------------------------------------------------------
    @property
    def allow_download(self) -> bool:
        return self.models.allow_download

    @allow_download.setter
    def allow_download(self, allowed: bool) -> None:
        self.models.allow_download = allowed
        self.upscaler.allow_download = allowed

    def allow_unsafe_checkpoint(self, path: str) -> None:
        """The user confirmed loading this pickled checkpoint (read weights-only even then)."""
        self.models.allow_unsafe_checkpoint(path)

    def resolve(self, reference: str) -> ModelInfo:
        return self.models.resolve(reference)

    def scheduler_config(self, info: ModelInfo, pipe: Any = None) -> dict[str, Any]:
        """The model's own scheduler config (see SchedulerConfigs.get)."""
        return self.scheduler_configs.get(info, pipe)

    def release(self) -> None:
        """Unload the current model, the removal network and the upscaler, and return their memory."""
        self.pipelines.release()
        self.removal.release()
        self.upscaler.release()

    def upscale(
        self,
        job: UpscaleJob,
        image: Image.Image | np.ndarray,
        *,
        progress: Callable[[int, int], None] | None = None,
        cancel: CancelToken | None = None,
    ) -> UpscaleResult:
        """Upscale `image` (engine/upscale.py). A diffusion upscaler needs the memory of the loaded inpainting
        model, so that one is released first; an upscaling network is small and sits beside it."""
        if job.model.strip() and not job.model.strip().lower().endswith(UPSCALER_SUFFIXES):
            self.pipelines.release()
        return self.upscaler.run(job, image, progress=progress, cancel=cancel)

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
        reference_image: Image.Image | np.ndarray | None = None,
    ) -> InpaintResult:
        """Run `job`; emits JobStarted, JobProgress..., then JobFinished / JobCancelled / JobFailed.

        `image` is required except for text-to-image; `mask` is required for inpainting, optional for
        image-to-image (without it the whole image is redrawn). `control_image` replaces the ControlNet
        condition built from image and mask (for ControlNets other than the inpainting one). `handoff` is
        the previous chain step's latents (used only where they equal this step's input exactly).
        `reference_image` is the IP-Adapter's reference (the job's input image named "reference"); it is
        required when the job names an IP-Adapter. With fast mode on, the job that runs (and is recorded) has
        the fast profile's sampler, steps and guidance (core/fast_modes.py).

        Raises the InpaintStudioError that JobFailed/JobCancelled describe, so headless callers can simply
        use try/except. `preview_every` > 0 attaches an approximate preview image every N steps.
        """
        emit = on_event or (lambda event: None)
        cancel = cancel or CancelToken()
        try:
            job = apply_fast(job.resolved().validate()).validate()
            start = time.perf_counter()
            context = self._context(job, image, mask, emit, cancel, job_id, control_image, handoff, preview_every)
            context = context.with_reference(reference_image)
            result = self._run(context, start)
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

    # ---- internals ------------------------------------------------------------------------------------
    def _context(
        self,
        job: InpaintJob,
        image: Image.Image | np.ndarray | None,
        mask: Image.Image | np.ndarray | None,
        emit: EventSink,
        cancel: CancelToken,
        job_id: int,
        control_image: Image.Image | np.ndarray | None,
        handoff: LatentHandoff | None,
        preview_every: int,
    ) -> RunContext:
        """Check what can be checked before any model is loaded, prepare the input and resolve the model."""
        if not job.is_classical:
            check_scheduler_name(job.scheduler)
        if job.prompt_weighting:  # a malformed weighting fails before any model is loaded
            check_syntax(job.prompt, "prompt")
            check_syntax(job.negative_prompt, "negative prompt")
        prepared = prepare_for_task(job, image, mask)
        info = self.models.resolve(job.model)
        job = settings_used(job, info)  # what a classical fill or removal network ignores is not recorded
        cancel.raise_if_cancelled()
        return RunContext(
            job=job,
            info=info,
            prepared=prepared,
            emit=emit,
            cancel=cancel,
            job_id=job_id,
            control_image=control_image,
            handoff=handoff,
            preview_every=preview_every,
        )

    def _run(self, context: RunContext, start: float) -> InpaintResult:
        if context.info.family is Family.CLASSIC:
            outcome = run_classical(context)
        elif context.info.family is Family.REMOVAL:
            outcome = run_removal(context, self.removal)
        else:
            prefilled = None
            if context.job.prefill.strip() != PREFILL_NONE:
                context, prefilled = prefill(context, self.removal, self.models)
            outcome = DiffusionJob(
                context, pipelines=self.pipelines, models=self.models, scheduler_configs=self.scheduler_configs
            ).run()
            if prefilled is not None:
                outcome.extra["prefill"] = prefilled
        images = outcome.images
        if context.prepared is not None:
            region = context.prepared.box
        else:
            region = (0, 0, images[0].width, images[0].height)
        return InpaintResult(
            images=images,
            job=context.job,
            seeds=list(context.seeds[: len(images)]),
            model=context.info.to_dict(),
            device=outcome.device,
            duration_s=time.perf_counter() - start,
            region=region,
            extra=outcome.extra,
            handoff=outcome.handoff,
        )


def run_classical(context: RunContext) -> RunOutcome:
    """The classical (OpenCV) fill of the prepared box, on the CPU; one image whatever `variants` says."""
    job, prepared = context.job, context.prepared
    if prepared is None:  # text-to-image: validation refuses it for "classic", but not for " classic"
        raise BadInputError(f"The classical fill can only inpaint; choose a diffusion model for {job.task.value}.")
    method = job.effective_classical_method
    context.emit(JobStarted(context.job_id, job, 1))

    def progress(done: int, total: int) -> None:
        context.emit(JobProgress(context.job_id, done, max(total, 1), 0))

    filled = classical_fill(
        prepared.crop(prepared.rgb), prepared.mask, method, cancel=context.cancel, progress=progress
    )
    thickness = hole_thickness_px(prepared.mask)
    extra = {
        "classical_method": method.value,
        "hole_thickness_px": round(thickness, 1),
        "hole_too_large": thickness > LARGE_HOLE_PX,  # the studio and the CLI suggest a removal network
    }
    return RunOutcome([finish_image(job, prepared, filled)], "cpu", extra)
