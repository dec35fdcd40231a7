"""How each model family is called: the one place that knows the pipelines' differences.

- routing: which pipeline (the loaded inpainting pipeline, or a from_pipe variant) runs a task. A model
  whose denoiser takes the mask as input (9-channel SD/SDXL inpainting UNets, Kandinsky 2.2's inpainting
  decoder) cannot run as a text-to-image or image-to-image pipeline; it runs those tasks as inpainting
  with the whole frame masked, which is what those UNets were trained to handle;
- the keyword arguments of the call (strength, prior settings, ControlNet inputs, refiner hand-off);
- how many step callbacks a call will make (for exact progress totals before the call starts);
- the working-size multiple (8 for SD/SDXL; Kandinsky's MoVQ needs its scale factor squared).
Every call asks for output_type="latent": the engine decodes itself (decode.py) so it can retry a NaN
decode in float32 and hand latents to the next step without a decode/encode round trip.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from inpaint_studio.core import masks
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import InpaintJob, Task
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.loader import Variant
from inpaint_studio.engine.models import ModelInfo


@dataclass(frozen=True)
class Route:
    """Which pipeline runs a job and what it is given."""

    variant: Variant
    takes_mask: bool  # image + mask_image (inpainting pipelines)
    full_mask: bool  # text2img / img2img through an inpainting pipeline: the whole frame is masked
    text2img: bool  # no input image at all (a blank canvas when full_mask)
    kandinsky: bool


def mask_is_input(info: ModelInfo) -> bool:
    """True when the denoiser itself takes the mask (it cannot run plain text2img/img2img pipelines)."""
    return info.family is Family.KANDINSKY22_INPAINT or info.in_channels == 9


def route(info: ModelInfo, job: InpaintJob, controlnet_path: str | None = None) -> Route:
    kandinsky = info.family is Family.KANDINSKY22_INPAINT
    if kandinsky:
        if job.task is Task.IMG2IMG:
            raise BadInputError(
                f"{info.name} (Kandinsky 2.2 inpainting) always repaints fully, so it cannot do image-to-image; "
                "use an SD or SDXL model for this step."
            )
        if job.strength != 1.0:
            raise BadInputError(
                f"{info.name} (Kandinsky 2.2 inpainting) has no strength setting (it always repaints fully); "
                "set strength to 1."
            )
        if job.prompt_weighting:
            raise BadInputError("Prompt weighting is not available for Kandinsky 2.2; turn it off for this model.")
    if info.family is Family.SDXL_REFINER and (job.task is Task.TEXT2IMG or job.strength >= 1.0):
        raise BadInputError(
            f"{info.name} is a refiner, which only improves an existing result; choose an inpainting model, "
            "or use it as the refiner of an SDXL job or with a strength below 1."
        )
    if controlnet_path is not None:
        if not info.family.is_sdxl and info.family not in (Family.SD, Family.SD_INPAINT):
            raise BadInputError(f"{info.name} cannot use a ControlNet; choose an SD 1.5 or SDXL model.")
        return Route(Variant("inpaint", controlnet_path), True, False, False, False)
    if job.task is Task.INPAINT:
        return Route(Variant(), True, False, False, kandinsky)
    if mask_is_input(info):
        return Route(Variant(), True, True, job.task is Task.TEXT2IMG, kandinsky)
    return Route(Variant(job.task.value), False, False, job.task is Task.TEXT2IMG, False)


def size_multiple(pipe: Any) -> int:
    """Working sizes must be multiples of this so the output has exactly the size asked for."""
    movq_scale = getattr(pipe, "movq_scale_factor", None) or getattr(
        getattr(pipe, "decoder_pipe", None), "movq_scale_factor", None
    )
    if movq_scale:
        return int(movq_scale) ** 2  # Kandinsky rounds latents up to multiples of the scale factor
    return max(8, int(getattr(pipe, "vae_scale_factor", 8)))


def is_sdxl(pipe: Any) -> bool:
    return hasattr(pipe, "text_encoder_2")


def schedulers_of(pipe: Any) -> list[Any]:
    """The pipelines whose `scheduler` drives the denoising (a combined pipeline holds a second one)."""
    inner = getattr(pipe, "decoder_pipe", None)
    return [pipe] if inner is None else [pipe, inner]


def refiner_route(job: InpaintJob) -> Route:
    """The refiner pass: inpainting for an inpainting job, image-to-image on the base's result otherwise."""
    if job.task is Task.INPAINT:
        return Route(Variant("inpaint"), True, False, False, False)
    return Route(Variant("img2img"), False, False, False, False)


def count_calls(
    scheduler: Any,
    job: InpaintJob,
    route_: Route,
    denoising_start: float | None = None,
    denoising_end: float | None = None,
) -> int:
    """How many times the denoising loop will invoke callback_on_step_end with `scheduler`.

    Mirrors the pipelines' get_timesteps() and denoising_start/_end cut-offs; some schedulers (Heun, PNDM)
    make more calls than `steps`. Kandinsky's prior adds count_prior_calls().
    """
    probe = copy.deepcopy(scheduler)
    probe.set_timesteps(job.steps)
    timesteps = [int(t) for t in probe.timesteps]
    order = getattr(probe, "order", 1)
    train = probe.config.num_train_timesteps
    strength = 1.0 if route_.kandinsky or route_.text2img else job.strength
    if denoising_start is None:
        init = min(int(job.steps * strength), job.steps)
        timesteps = timesteps[max(job.steps - init, 0) * order :]
    else:
        cutoff = round(train - denoising_start * train)
        count = sum(1 for t in timesteps if t < cutoff)
        if order == 2 and count % 2 == 0:
            count += 1
        timesteps = timesteps[len(timesteps) - count :]
    if denoising_end is not None:
        cutoff = round(train - denoising_end * train)
        timesteps = [t for t in timesteps if t >= cutoff]
    return max(1, len(timesteps))


def count_prior_calls(pipe: Any, job: InpaintJob) -> int:
    prior = copy.deepcopy(pipe.prior_pipe.scheduler)
    prior.set_timesteps(job.prior_steps)
    return len(prior.timesteps)


def control_image(rgb: np.ndarray, mask: np.ndarray) -> Any:
    """The inpainting ControlNet's condition: the image in [0, 1] with masked pixels set to -1 (1x3xHxW)."""
    import torch

    image = rgb.astype(np.float32) / 255.0
    image[masks.is_masked(mask)] = -1.0
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None]


@dataclass
class CallInputs:
    """Everything a call needs besides the job; the runner fills it once per job."""

    size: tuple[int, int]  # (width, height) the model works at
    image: Any = None  # PIL image, or latents (a 4-channel tensor) handed over from a previous step
    mask: Any = None  # PIL "L" image
    control: Any = None  # ControlNet condition (tensor or PIL)
    embeds: dict[str, Any] | None = None  # weighted prompt embeddings, replacing the prompts
    ip_image: Any = None  # the IP-Adapter's reference image (PIL)
    ip_masks: Any = None  # diffusers' ip_adapter_masks: the reference acts inside the mask only
    eta: float | None = None  # the sampler's eta (fast mode's TCD)


def build_kwargs(
    pipe: Any,
    job: InpaintJob,
    route_: Route,
    inputs: CallInputs,
    *,
    generator: Any,
    callback: Any,
    prior_callback: Any = None,
    denoising_start: float | None = None,
    denoising_end: float | None = None,
) -> dict[str, Any]:
    width, height = inputs.size
    kwargs: dict[str, Any] = {
        "height": height,
        "width": width,
        "num_inference_steps": job.steps,
        "guidance_scale": job.guidance_scale,
        "generator": generator,
        "output_type": "latent",
        "callback_on_step_end": callback,
    }
    if inputs.embeds is not None:
        kwargs.update(inputs.embeds)
    else:
        kwargs.update(prompt=job.prompt, negative_prompt=job.negative_prompt or None)
    if route_.takes_mask:
        kwargs.update(image=inputs.image, mask_image=inputs.mask)
    elif not route_.text2img:
        kwargs["image"] = inputs.image
    if route_.kandinsky:
        kwargs.update(
            prior_num_inference_steps=job.prior_steps,
            prior_guidance_scale=job.prior_guidance_scale,
            prior_callback_on_step_end=prior_callback,
        )
    elif route_.takes_mask or not route_.text2img:
        kwargs["strength"] = job.strength  # 1 for text-to-image (validated)
    if denoising_start is not None:
        kwargs["denoising_start"] = denoising_start
    if denoising_end is not None:
        kwargs["denoising_end"] = denoising_end
    if inputs.ip_image is not None:
        kwargs["ip_adapter_image"] = inputs.ip_image
        if inputs.ip_masks is not None:
            kwargs["cross_attention_kwargs"] = {"ip_adapter_masks": inputs.ip_masks}
    if inputs.eta is not None:
        kwargs["eta"] = inputs.eta
    if route_.variant.controlnet is not None:
        kwargs.update(
            control_image=inputs.control,
            controlnet_conditioning_scale=job.controlnet_scale,
            control_guidance_start=job.control_start,
            control_guidance_end=job.control_end,
        )
    return kwargs
