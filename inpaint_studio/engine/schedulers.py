"""Named samplers mapped onto diffusers schedulers, built from the model's own scheduler config.

The names follow what artists know from A1111/Krita ("DPM++ 2M Karras", "Euler a", ...); the chosen name
is recorded in the job and in the PNG "parameters" text as "Sampler". "default" is the model's own.
Building from the model's config keeps its betas, prediction type and timestep spacing; only the solver
and the overrides listed here change. Samplers that need extra packages (DPM++ SDE needs torchsde) are
left out.
"""

from __future__ import annotations

from typing import Any

from inpaint_studio.core.errors import BadInputError

DEFAULT = "default"

# name -> (diffusers class name, config overrides)
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False}),
    "DPM++ 2M Karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "DPM++ 2M SDE Karras": (
        "DPMSolverMultistepScheduler",
        {"use_karras_sigmas": True, "algorithm_type": "sde-dpmsolver++"},
    ),
    "DPM++ 2M SDE": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": False, "algorithm_type": "sde-dpmsolver++"}),
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler Karras": ("EulerDiscreteScheduler", {"use_karras_sigmas": True}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "DDPM": ("DDPMScheduler", {}),
    "DEIS": ("DEISMultistepScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "PNDM": ("PNDMScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "LMS Karras": ("LMSDiscreteScheduler", {"use_karras_sigmas": True}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "DPM2": ("KDPM2DiscreteScheduler", {}),
    "DPM2 a": ("KDPM2AncestralDiscreteScheduler", {}),
    # Latent-consistency sampling: meant for LCM-distilled models or the LCM LoRA (4-8 steps, guidance 1-2).
    "LCM": ("LCMScheduler", {}),
}


def scheduler_names() -> list[str]:
    return [DEFAULT, *SCHEDULERS]


def check_scheduler_name(name: str) -> None:
    if name != DEFAULT and name not in SCHEDULERS:
        raise BadInputError(f"Unknown sampler '{name}'; choose one of: {', '.join(scheduler_names())}.")


def build_scheduler(name: str, original_config: dict[str, Any]) -> Any:
    """The named sampler built from a model's own scheduler config (its betas, timestep spacing, ...)."""
    import diffusers

    check_scheduler_name(name)
    if name == DEFAULT:
        class_name, overrides = original_config["_class_name"], {}
    else:
        class_name, overrides = SCHEDULERS[name]
    return getattr(diffusers, class_name).from_config(original_config, **overrides)


def apply_scheduler(pipe: Any, name: str, original_config: dict[str, Any]) -> Any:
    """Set the named sampler on `pipe` (and on a combined pipeline's decoder, which holds its own reference).

    Always rebuilt (cheap): a previous choice's overrides must not leak into this one.
    """
    scheduler = build_scheduler(name, original_config)
    pipe.scheduler = scheduler
    inner = getattr(pipe, "decoder_pipe", None)
    if inner is not None:
        inner.scheduler = scheduler
    return scheduler
