"""Latents -> pixels, with the NaN guard, and the test for whether two VAEs share a latent space.

The pipelines are called with output_type="latent" and decoded here, mirroring what each pipeline does
itself (so pixels are identical to a plain diffusers call), for two reasons:
- an fp16 VAE can overflow to NaN (a black image); the decode is then retried with the VAE in float32
  (and that VAE decodes in float32 from then on) instead of re-running the whole denoising;
- a chain step or the SDXL refiner can take the latents as they are when the VAEs are compatible.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import numpy as np

from inpaint_studio.core.errors import EngineError

log = logging.getLogger(__name__)

# VAEs that overflowed once in half precision: decoded in float32 from then on.
_needs_fp32: weakref.WeakSet[Any] = weakref.WeakSet()

# What decides whether latents of one VAE can be decoded by another: the class and the latent space's
# shape and scaling. SD 1.x/2.x share one (scaling 0.18215), SDXL another (0.13025), Kandinsky's MoVQ a
# third (another class). Values absent from a config take the diffusers defaults.
_LATENT_SPACE_DEFAULTS: dict[str, Any] = {
    "latent_channels": 4,
    "scaling_factor": 0.18215,
    "shift_factor": None,
    "latents_mean": None,
    "latents_std": None,
}


def latent_space(config: Any, class_name: str) -> dict[str, Any]:
    """The latent-space signature of a VAE from its config (a loaded config or a config.json dict)."""
    get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
    signature: dict[str, Any] = {"class": class_name, "levels": len(get("block_out_channels", []) or [])}
    for key, default in _LATENT_SPACE_DEFAULTS.items():
        value = get(key, default)
        signature[key] = list(value) if isinstance(value, (list, tuple)) else value
    return signature


def vae_of(pipe: Any) -> Any:
    return getattr(pipe, "vae", None) or getattr(pipe, "movq", None)


def pipe_latent_space(pipe: Any) -> dict[str, Any]:
    vae = vae_of(pipe)
    return latent_space(vae.config, type(vae).__name__)


def decode(pipe: Any, latents: Any) -> tuple[np.ndarray, bool]:
    """Decode `latents` (1xCxhxw) to an HxWx3 float32 image in [0, 1]; also says whether fp32 was needed."""
    import torch

    if not torch.isfinite(latents).all():
        raise EngineError(
            "The model produced an invalid (NaN) result while denoising; run the job on the CPU "
            "or choose another model (its weights may not work in half precision)."
        )
    vae = vae_of(pipe)
    with torch.no_grad():
        if vae not in _needs_fp32:
            image = _decode_once(pipe, latents, force_fp32=False)
            if np.isfinite(image).all():
                return image, False
            log.warning("VAE decode gave NaN in %s; retrying in float32", vae.dtype)
            _needs_fp32.add(vae)
        image = _decode_once(pipe, latents, force_fp32=True)
    if not np.isfinite(image).all():
        raise EngineError(
            "The model's VAE produced an invalid (NaN) image even in full precision; "
            "the model files may be damaged: download it again or choose another model."
        )
    return image, True


def _decode_once(pipe: Any, latents: Any, *, force_fp32: bool) -> np.ndarray:
    import torch

    vae = vae_of(pipe)
    original_dtype = vae.dtype
    # What the SDXL pipelines do for a VAE flagged force_upcast; SD pipelines decode in the VAE's dtype.
    upcast = force_fp32 or (
        original_dtype == torch.float16 and hasattr(pipe, "text_encoder_2") and vae.config.force_upcast
    )
    if upcast and original_dtype != torch.float32:
        vae.to(dtype=torch.float32)
    try:
        dtype = torch.float32 if upcast else original_dtype
        if hasattr(pipe, "movq") or hasattr(getattr(pipe, "decoder_pipe", None), "movq"):
            image = vae.decode(latents.to(dtype), force_not_quantize=True)["sample"]
            image = (image * 0.5 + 0.5).clamp(0, 1)
            return image.cpu().permute(0, 2, 3, 1).float().numpy()[0]
        config = vae.config
        lat = latents.to(dtype)
        if getattr(config, "latents_mean", None) is not None and getattr(config, "latents_std", None) is not None:
            mean = torch.tensor(config.latents_mean).view(1, -1, 1, 1).to(lat.device, lat.dtype)
            std = torch.tensor(config.latents_std).view(1, -1, 1, 1).to(lat.device, lat.dtype)
            lat = lat * std / config.scaling_factor + mean
        else:
            lat = lat / config.scaling_factor
        image = vae.decode(lat, return_dict=False)[0]
        watermark = getattr(pipe, "watermark", None)
        if watermark is not None:
            image = watermark.apply_watermark(image)
        return pipe.image_processor.postprocess(image, output_type="np")[0].astype(np.float32, copy=False)
    finally:
        # Back to the dtype the pipelines expect: they encode their inputs with this VAE in that dtype.
        if vae.dtype != original_dtype:
            vae.to(dtype=original_dtype)
