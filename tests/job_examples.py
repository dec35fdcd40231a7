"""A non-default example value for every InpaintJob field: the settings round-trip tests use one per field."""

from __future__ import annotations

from typing import Any

from inpaint_studio.core.generation_settings import job_field_paths, replace_path
from inpaint_studio.core.jobspec import Area, ClassicalMethod, InpaintJob, MemoryMode, OutputSize, Task

NON_DEFAULT: dict[str, Any] = {
    "model": "stable-diffusion-v1-5/stable-diffusion-inpainting",
    "prompt": "a wooden door, evening light",
    "negative_prompt": "blurry",
    "strength": 0.55,
    "guidance_scale": 4.5,
    "steps": 17,
    "scheduler": "Euler a",
    "seed": 4242,
    "variants": 3,
    "mask.grow_px": -3,
    "mask.feather_px": 12,
    "area": Area.WHOLE,
    "padding_px": 40,
    "resolution": 768,
    "preserve_unmasked": False,
    "color_match": True,
    "output_size": OutputSize.PROCESSED,
    "classical_method": ClassicalMethod.TELEA,
    "device": "cpu",
    "memory_mode": MemoryMode.MODEL_OFFLOAD,
    "task": Task.IMG2IMG,
    "width": 640,
    "height": 448,
    "prompt_weighting": True,
    "refiner": "stabilityai/stable-diffusion-xl-refiner-1.0",
    "refiner_switch": 0.7,
    "controlnet": "lllyasviel/control_v11p_sd15_inpaint",
    "controlnet_scale": 0.5,
    "control_start": 0.1,
    "control_end": 0.9,
    "prior_steps": 12,
    "prior_guidance_scale": 3.0,
    "speed.attention": "sliced",
    "speed.vae_tiling": "on",
    "speed.channels_last": "off",
    "speed.compile_unet": True,
    "speed.fuse_qkv": "on",
    "speed.preset": "fastest",
    "loras": (("styles/ink-wash.safetensors", 0.8), ("latent-consistency/lcm-lora-sdv1-5", -0.25)),
    "embeddings": (("embeddings/bad-hands.safetensors", "badhands"), ("sd-concepts-library/cat-toy", "")),
    "ip_adapter": "h94/IP-Adapter",
    "ip_adapter_scale": 0.45,
    "ip_adapter_masked": True,
    "fast": "lcm",
    "prefill": "lama",
}
assert set(NON_DEFAULT) == set(job_field_paths()), "every job field needs an example (tests/job_examples.py)"


def job_with(path: str, value: Any = None) -> InpaintJob:
    """The default job with one field changed (to its example by default)."""
    return replace_path(InpaintJob(), path, NON_DEFAULT[path] if value is None else value)


def job_with_every_field() -> InpaintJob:
    job = InpaintJob()
    for path, value in NON_DEFAULT.items():
        job = replace_path(job, path, value)
    return job
