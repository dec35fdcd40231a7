"""One diffusion job: pipeline calls per variant, the optional SDXL refiner pass, decode and finish.

Engine.run prepares the input (region.py: crop box, blend weight), resolves the model and hands the
RunContext (context.py) to `DiffusionJob.run`, with the engine's long-lived parts it needs and nothing
else: the PipelineManager (loader.py), the ModelResolver for the ControlNet and the refiner (models.py)
and the models' own scheduler configs (schedulers.py). The per-family call differences live in
calls.py; decoding and the NaN retry in decode.py; speed settings in speed.py; the final composite in
region.finish_image. Progress is exact: the number of step callbacks of every call (prior, base,
refiner) is known before the first one starts.
"""

from __future__ import annotations

import gc
import logging
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from inpaint_studio.core.errors import BadInputError, CancelledError, OutOfMemoryError
from inpaint_studio.core.fast_modes import profile_of
from inpaint_studio.core.jobspec import MemoryMode, OutputSize, Task
from inpaint_studio.engine import adapters, calls, decode, speed
from inpaint_studio.engine.addons import family_key, resolve_addon
from inpaint_studio.engine.context import RunContext, RunOutcome
from inpaint_studio.engine.devices import describe_device, pick_device
from inpaint_studio.engine.events import JobProgress, JobStarted, LatentHandoff
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.loader import PipelineManager, free_device_cache
from inpaint_studio.engine.models import ControlNetInfo, ModelInfo, ModelResolver, component_config
from inpaint_studio.engine.prompts import weighted_embeddings
from inpaint_studio.engine.region import finish_image, working_size_for
from inpaint_studio.engine.schedulers import SchedulerConfigs, apply_scheduler, build_scheduler

log = logging.getLogger(__name__)

# Approximate linear map from SD latents to RGB: a cheap live preview without running the VAE.
_LATENT_RGB = np.array(
    [[0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264], [-0.184, -0.271, -0.473]],
    dtype=np.float32,
)


@dataclass
class _Pass:
    """One model's pass over all variants: the base model, or the refiner."""

    info: ModelInfo
    pipe: Any
    route: calls.Route
    inputs: calls.CallInputs | list[calls.CallInputs]  # one for all variants, or one per variant
    calls_per_variant: int
    prior_calls: int = 0
    denoising_start: float | None = None
    denoising_end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class DiffusionJob:
    """Runs one resolved, validated job on a diffusion model (see module docstring)."""

    def __init__(
        self,
        context: RunContext,
        *,
        pipelines: PipelineManager,
        models: ModelResolver,
        scheduler_configs: SchedulerConfigs,
    ) -> None:
        self.context = context
        self.job, self.info, self.prepared = context.job, context.info, context.prepared  # read everywhere
        self.pipelines, self.models, self.scheduler_configs = pipelines, models, scheduler_configs
        self.used_handoff = False
        self.total = 1

    # ---- the job ------------------------------------------------------------------------------------
    def run(self) -> RunOutcome:
        import torch  # here, not at the top: importing this module must not load torch (the window needs it)

        self.device = pick_device(self.job.device)
        try:
            return self._run()
        except torch.OutOfMemoryError as exc:
            raise self._out_of_memory(exc) from exc

    def _run(self) -> RunOutcome:
        job = self.job
        controlnet = self._controlnet()
        refiner = self._refiner()
        request = self._addon_request()  # the add-ons' files are found before any model loads
        route = calls.route(self.info, job, str(controlnet.path) if controlnet else None)
        pipe = self.pipelines.get(self.info, self.device, job.memory_mode, route.variant, controlnet)
        apply_scheduler(pipe, job.scheduler, self.scheduler_configs.get(self.info, pipe))
        native = native_resolution(pipe, self.info.family)
        self.work_size, self.out_size = self._sizes(pipe, native)
        # Every job puts its own add-ons on (and the previous job's off) before the prompts are encoded.
        self.addons = adapters.apply(pipe, request, siblings=self.pipelines.pipelines())
        settings = speed.resolve(
            job.speed, self.device, self.work_size, native, ip_adapter=request.ip_adapter is not None
        )
        self.speed = speed.apply(pipe, settings)
        base = _Pass(self.info, pipe, route, self._inputs(pipe, route), 0)
        base.denoising_end = job.refiner_switch if refiner else None
        base.calls_per_variant = calls.count_calls(pipe.scheduler, job, route, denoising_end=base.denoising_end)
        if route.kandinsky:
            base.prior_calls = calls.count_prior_calls(pipe, job)
            base.calls_per_variant += base.prior_calls
        passes = [base]
        if refiner is not None:
            ref_route = calls.refiner_route(job)
            ref_config = self.scheduler_configs.get(refiner)  # read from its files: not loaded yet
            ref_calls = calls.count_calls(
                build_scheduler(job.scheduler, ref_config), job, ref_route, denoising_start=job.refiner_switch
            )
            passes.append(_Pass(refiner, None, ref_route, calls.CallInputs(self.work_size), ref_calls))
            passes[1].denoising_start = job.refiner_switch
        per_variant = sum(p.calls_per_variant for p in passes)
        self.total = per_variant * job.variants
        self.context.emit(JobStarted(self.context.job_id, job, self.total))

        latents = self._denoise(base, offset=0, per_variant=per_variant)
        final = base
        if refiner is not None:
            final = passes[1]
            latents = self._refine(base, final, latents, offset=base.calls_per_variant, per_variant=per_variant)
        images, handoff, retried = self._finish(final, latents)
        extra = {
            "task": job.task.value,
            "working_size": list(self.work_size),
            "native_resolution": native,
            "device_name": describe_device(self.device),
            "dtype": str(final.pipe.dtype).replace("torch.", ""),
            "pipeline": type(pipe).__name__,
            "scheduler": type(pipe.scheduler).__name__,
            "unet_in_channels": self.info.in_channels,
            "speed": self.speed,
            "vae_decoded_in_fp32": retried,
            "latent_input": self.used_handoff,
        }
        extra.update(self.addons)
        profile = profile_of(job)
        if profile is not None:
            extra["fast"] = {"mode": profile.name, "sampler": profile.scheduler, "steps": job.steps}
        if controlnet is not None:
            extra["controlnet"] = controlnet.to_dict()
        if refiner is not None:
            extra["refiner"] = {"model": refiner.to_dict(), "pipeline": type(final.pipe).__name__, **final.extra}
        return RunOutcome(images, self.device, extra, handoff)

    # ---- parts --------------------------------------------------------------------------------------
    def _controlnet(self) -> ControlNetInfo | None:
        if self.job.controlnet is None:
            return None
        return self.models.resolve_controlnet(self.job.controlnet)

    def _refiner(self) -> ModelInfo | None:
        if self.job.refiner is None:
            return None
        if self.info.family not in (Family.SDXL, Family.SDXL_INPAINT):
            raise BadInputError(
                f"A refiner pass needs an SDXL base model, but {self.info.name} is {self.info.family.value}; "
                "remove the refiner or choose an SDXL model."
            )
        refiner = self.models.resolve(self.job.refiner)
        if not refiner.family.is_sdxl:
            raise BadInputError(
                f"The refiner {refiner.name} is not an SDXL model ({refiner.family.value}); "
                "choose stabilityai/stable-diffusion-xl-refiner-1.0 or another SDXL model."
            )
        return refiner

    def _addon_request(self) -> adapters.AddonRequest:
        """The job's LoRAs (fast mode's first), embeddings and IP-Adapter, resolved to local files."""
        job, family = self.job, self.info.family
        profile = profile_of(job)
        if not (job.loras or job.embeddings or job.ip_adapter or profile):
            return adapters.AddonRequest()
        if not (family.is_sdxl or family in (Family.SD, Family.SD_INPAINT)):
            what = "Fast mode works" if profile else "LoRAs, embeddings and IP-Adapters work"
            raise BadInputError(f"{what} with SD 1.5 and SDXL models, not {self.info.name}; choose one of those.")
        key = family_key(family.is_sdxl)
        allow = self.models.allow_download
        loras = []
        if profile is not None:
            reference = profile.loras.get(key)
            if reference is None:
                raise BadInputError(
                    f"Fast mode '{profile.name}' ({profile.label}) is made for SDXL only; choose fast mode 'lcm' "
                    "or an SDXL model."
                )
            loras.append((resolve_addon(reference, "lora", family=key, allow_download=allow), 1.0))
        for reference, weight in job.loras:
            loras.append((resolve_addon(reference, "lora", family=key, allow_download=allow), weight))
        embeddings = tuple(
            (resolve_addon(reference, "embedding", family=key, allow_download=allow), token)
            for reference, token in job.embeddings
        )
        ip = None
        if job.ip_adapter:
            if self.context.reference_image is None:
                raise BadInputError(
                    "The IP-Adapter needs a reference image; choose one under Reference in the Generate panel "
                    "(or give --reference IMAGE)."
                )
            ip = resolve_addon(job.ip_adapter, "ip_adapter", family=key, allow_download=allow)
        # Sequential offload keeps weights off the device between layers: fusing into them is not possible.
        fuse = job.memory_mode is not MemoryMode.SEQUENTIAL_OFFLOAD
        return adapters.AddonRequest(tuple(loras), embeddings, ip, job.ip_adapter_scale, fuse)

    def _sizes(self, pipe: Any, native: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(working size, output size before compositing)."""
        multiple = calls.size_multiple(pipe)
        if self.prepared is None:  # text-to-image: the size asked for, worked at the next model multiple
            out = (self.job.width or native, self.job.height or native)
            return (_round_up(out[0], multiple), _round_up(out[1], multiple)), out
        left, top, right, bottom = self.prepared.box
        box = (right - left, bottom - top)
        return working_size_for(box, native, self.job.resolution, multiple), box

    def _inputs(self, pipe: Any, route: calls.Route) -> calls.CallInputs:
        job, work = self.job, self.work_size
        inputs = calls.CallInputs(work)
        if job.prompt_weighting:
            inputs.embeds = weighted_embeddings(pipe, job.prompt, job.negative_prompt)
        profile = profile_of(job)
        inputs.eta = profile.eta if profile is not None else None
        if self.prepared is None:
            # Text-to-image through an inpainting model: a neutral canvas, all of it masked.
            inputs.image = Image.new("RGB", work, (127, 127, 127))
            inputs.mask = Image.new("L", work, 255)
            self._reference(inputs)
            return inputs
        crop_rgb = self.prepared.crop(self.prepared.rgb)
        inputs.image = Image.fromarray(crop_rgb).resize(work, Image.Resampling.LANCZOS)
        # Nearest keeps the mask binary; the pipeline binarises anyway.
        mask = np.full_like(self.prepared.mask, 255) if route.full_mask else self.prepared.mask
        inputs.mask = Image.fromarray(mask).resize(work, Image.Resampling.NEAREST)
        if route.variant.controlnet is not None:
            inputs.control = self._control(crop_rgb, route)
        latents = self._usable_handoff(pipe, route, crop_rgb)
        if latents is not None:
            inputs.image = latents
        self._reference(inputs)
        return inputs

    def _reference(self, inputs: calls.CallInputs) -> None:
        """The IP-Adapter's reference image, and its mask when it should act inside the mask only."""
        given = self.context.reference_image
        if not self.job.ip_adapter or given is None:
            return
        pil = given if isinstance(given, Image.Image) else Image.fromarray(np.asarray(given))
        inputs.ip_image = pil.convert("RGB")
        if self.job.ip_adapter_masked and inputs.mask is not None:
            width, height = self.work_size
            inputs.ip_masks = adapters.ip_adapter_masks(inputs.mask, width, height)

    def _control(self, crop_rgb: np.ndarray, route: calls.Route) -> Any:
        work = self.work_size
        if self.context.control_image is None:  # the inpainting ControlNet's condition, built from image and mask
            rgb = np.asarray(Image.fromarray(crop_rgb).resize(work, Image.Resampling.LANCZOS))
            mask = np.asarray(Image.fromarray(self.prepared.mask).resize(work, Image.Resampling.NEAREST))
            return calls.control_image(rgb, mask)
        given = self.context.control_image
        pil = given if isinstance(given, Image.Image) else Image.fromarray(np.asarray(given))
        if pil.size != (self.prepared.rgb.shape[1], self.prepared.rgb.shape[0]):
            raise BadInputError(
                f"The control image is {pil.width}x{pil.height} but the image is "
                f"{self.prepared.rgb.shape[1]}x{self.prepared.rgb.shape[0]}; give one of the same size."
            )
        return pil.convert("RGB").crop(self.prepared.box).resize(work, Image.Resampling.LANCZOS)

    def _usable_handoff(self, pipe: Any, route: calls.Route, crop_rgb: np.ndarray) -> Any:
        """The previous step's latents when they can replace this step's input pixels exactly."""
        handoff = self.context.handoff
        usable = (
            handoff is not None
            and self.job.task is Task.IMG2IMG
            and not route.takes_mask  # an img2img pipeline: inpainting pipelines also need masked pixels
            and getattr(pipe, "vae", None) is not None  # Kandinsky's img2img always re-encodes pixels
            and self.prepared.box == (0, 0, self.prepared.rgb.shape[1], self.prepared.rgb.shape[0])
            and tuple(handoff.size) == tuple(self.work_size)
            and handoff.latent_space == decode.pipe_latent_space(pipe)
            and np.array_equal(handoff.rgb, crop_rgb)
        )
        self.used_handoff = bool(usable)
        if not usable:
            return None
        return handoff.latents.to(device=pipe._execution_device, dtype=pipe.dtype)

    def _denoise(self, p: _Pass, *, offset: int, per_variant: int) -> list[Any]:
        import torch  # see run()

        out = []
        for index, seed in enumerate(self.context.seeds):
            self.context.cancel.raise_if_cancelled()
            done = index * per_variant + offset
            prior_callback = None
            if p.prior_calls:
                prior_callback = _StepCallback(self, index, done, preview=False)
                done += p.prior_calls
            callback = _StepCallback(self, index, done, preview=not p.route.kandinsky)
            generator = torch.Generator("cpu").manual_seed(seed)
            inputs = p.inputs if isinstance(p.inputs, calls.CallInputs) else p.inputs[index]
            kwargs = calls.build_kwargs(
                p.pipe,
                self.job,
                p.route,
                inputs,
                generator=generator,
                callback=callback,
                prior_callback=prior_callback,
                denoising_start=p.denoising_start,
                denoising_end=p.denoising_end,
            )
            if speed.warming_up(p.pipe):
                # The first call of a newly compiled UNet compiles it (a minute or more): keep reporting, so the
                # window shows the job alive and the watchdog does not call it stuck.
                with _Heartbeat(self, index, done):
                    out.append(self._call(p.pipe, kwargs))
                speed.warmed_up(p.pipe)
            else:
                out.append(self._call(p.pipe, kwargs))
            if self.context.cancel.cancelled:
                raise CancelledError()
        return out

    def _refine(self, base: _Pass, ref: _Pass, latents: list[Any], *, offset: int, per_variant: int) -> list[Any]:
        """Hand the base model's partly denoised latents to the refiner (decoded when the VAEs differ)."""
        config = component_config(ref.info, "vae")
        space = decode.latent_space(config, config.get("_class_name", "")) if config else None
        compatible = space == decode.pipe_latent_space(base.pipe)
        images = latents if compatible else [self._latents_to_pil(base.pipe, lat) for lat in latents]
        ref.extra["latent_handoff"] = compatible
        # Loading the refiner releases the base model: only one checkpoint is in memory at a time.
        ref.pipe = self.pipelines.get(ref.info, self.device, self.job.memory_mode, ref.route.variant)
        apply_scheduler(ref.pipe, self.job.scheduler, self.scheduler_configs.get(ref.info, ref.pipe))
        speed.apply(ref.pipe, self.speed)
        if self.job.prompt_weighting:
            embeds = weighted_embeddings(ref.pipe, self.job.prompt, self.job.negative_prompt)
        else:
            embeds = None
        mask = base.inputs.mask if ref.route.takes_mask else None
        if compatible:
            images = [lat.to(device=ref.pipe._execution_device, dtype=ref.pipe.dtype) for lat in images]
        ref.inputs = [calls.CallInputs(self.work_size, image=img, mask=mask, embeds=embeds) for img in images]
        return self._denoise(ref, offset=offset, per_variant=per_variant)

    def _latents_to_pil(self, pipe: Any, latents: Any) -> Image.Image:
        raw, _ = decode.decode(pipe, latents)
        return Image.fromarray(_to_uint8(raw))

    def _call(self, pipe: Any, kwargs: dict[str, Any]) -> Any:
        try:
            output = pipe(**kwargs)
        except CancelledError:
            raise
        except Exception as exc:
            failure = speed.compile_failed(exc)
            if failure is None:
                raise
            speed.forget_compiled(pipe)
            raise failure from exc
        return output.images[:1]

    def _finish(self, final: _Pass, latents: list[Any]) -> tuple[list[Image.Image], LatentHandoff | None, bool]:
        images: list[Image.Image] = []
        handoff = None
        retried_any = False
        for index, lat in enumerate(latents):
            raw, retried = decode.decode(final.pipe, lat)
            retried_any |= retried
            model_out = _to_uint8(raw)
            if self.prepared is None:
                image = Image.fromarray(model_out)
                if image.size != self.out_size:
                    image = image.resize(self.out_size, Image.Resampling.LANCZOS)
            elif self.job.output_size is OutputSize.PROCESSED:
                image = Image.fromarray(model_out)
            else:
                back = model_out
                if (model_out.shape[1], model_out.shape[0]) != self.out_size:
                    back = np.asarray(Image.fromarray(model_out).resize(self.out_size, Image.Resampling.LANCZOS))
                image = finish_image(self.job, self.prepared, back)
            images.append(image)
            if index == 0:
                handoff = self._handoff_out(final.pipe, lat, model_out, image)
        return images, handoff, retried_any

    def _handoff_out(self, pipe: Any, latents: Any, model_out: np.ndarray, image: Image.Image) -> LatentHandoff | None:
        rgb = np.asarray(image)
        if rgb.ndim != 3 or rgb.shape[:2] != model_out.shape[:2] or not np.array_equal(rgb[..., :3], model_out):
            return None
        size = (model_out.shape[1], model_out.shape[0])
        return LatentHandoff(latents.detach().cpu(), decode.pipe_latent_space(pipe), size, model_out)

    def _out_of_memory(self, exc: BaseException) -> OutOfMemoryError:
        # The traceback's frames hold the activations that filled the memory: drop them before freeing.
        traceback.clear_frames(exc.__traceback__)
        gc.collect()
        free_device_cache(self.device)
        width, height = getattr(self, "work_size", (0, 0))
        at = f" at {width}x{height}" if width else ""
        if self.device.startswith("cuda"):
            advice = "use memory mode 'model_offload' (or 'sequential_offload'), a smaller working resolution"
        else:
            advice = "use attention 'sliced', a smaller working resolution"
        return OutOfMemoryError(
            f"The GPU ran out of memory{at}; {advice}, the masked-region area or fewer variants, then try again."
        )


class _Heartbeat:
    """Reports progress (unchanged) every few seconds from a helper thread while one long call runs."""

    INTERVAL_S = 5.0

    def __init__(self, job: DiffusionJob, variant: int, done: int) -> None:
        self.job, self.variant, self.done = job, variant, done
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="compile warm-up heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        context = self.job.context
        while not self._stop.wait(self.INTERVAL_S):
            context.emit(JobProgress(context.job_id, self.done, self.job.total, self.variant))


class _StepCallback:
    """callback_on_step_end: progress after every step, cooperative cancel, optional preview."""

    def __init__(self, job: DiffusionJob, variant: int, done_before: int, *, preview: bool) -> None:
        self.job, self.variant, self.done_before, self.preview = job, variant, done_before, preview

    def __call__(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        context = self.job.context
        if self._stop_if_cancelled(pipe):
            return kwargs
        preview = None
        every = context.preview_every
        if self.preview and every and (step + 1) % every == 0 and "latents" in kwargs:
            preview = latents_preview(kwargs["latents"])
        done = min(self.job.total, self.done_before + step + 1)
        variants = len(context.seeds)
        context.emit(JobProgress(context.job_id, done, self.job.total, self.variant, preview, variants))
        # Again after reporting: a cancel that arrived meanwhile (a listener of this very event, Ctrl+C)
        # must not cost one more whole step, which on a CPU can take a minute.
        self._stop_if_cancelled(pipe)
        return kwargs

    def _stop_if_cancelled(self, pipe: Any) -> bool:
        if not self.job.context.cancel.cancelled:
            return False
        if not hasattr(type(pipe), "interrupt"):
            raise CancelledError()  # Kandinsky's pipelines have no interrupt flag
        pipe._interrupt = True  # diffusers skips the remaining steps
        return True


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


def native_resolution(pipe: Any, family: Family) -> int:
    unet = getattr(pipe, "unet", None)
    inner = getattr(pipe, "decoder_pipe", None)
    scale = getattr(pipe, "vae_scale_factor", None) or getattr(inner, "movq_scale_factor", None)
    if unet is not None and scale and isinstance(getattr(unet.config, "sample_size", None), int):
        return int(unet.config.sample_size) * int(scale)
    return family.native_resolution


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _to_uint8(raw: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(raw * 255.0), 0, 255).astype(np.uint8)
