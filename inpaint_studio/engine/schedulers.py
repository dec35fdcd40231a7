"""Named samplers mapped onto diffusers schedulers, built from the model's own scheduler config.

The names follow what artists know from A1111/Krita ("DPM++ 2M Karras", "Euler a", ...); the chosen name
is recorded in the job and in the PNG "parameters" text as "Sampler".
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
    "Euler": ("EulerDiscreteScheduler", {}),
    "Euler a": ("EulerAncestralDiscreteScheduler", {}),
    "DDIM": ("DDIMScheduler", {}),
    "UniPC": ("UniPCMultistepScheduler", {}),
    "PNDM": ("PNDMScheduler", {}),
    "LMS": ("LMSDiscreteScheduler", {}),
    "Heun": ("HeunDiscreteScheduler", {}),
    "LCM": ("LCMScheduler", {}),
}


def scheduler_names() -> list[str]:
    return [DEFAULT, *SCHEDULERS]


def check_scheduler_name(name: str) -> None:
    if name != DEFAULT and name not in SCHEDULERS:
        raise BadInputError(f"Unknown sampler '{name}'; choose one of: {', '.join(scheduler_names())}.")


def apply_scheduler(pipe: Any, name: str, original_config: dict[str, Any]) -> None:
    """Set `pipe.scheduler` to the named sampler, built from the model's original scheduler config."""
    import diffusers

    check_scheduler_name(name)
    if name == DEFAULT:
        class_name, overrides = original_config["_class_name"], {}
    else:
        class_name, overrides = SCHEDULERS[name]
    # Always rebuilt (cheap): a previous choice's overrides must not leak into this one.
    cls = getattr(diffusers, class_name)
    pipe.scheduler = cls.from_config(original_config, **overrides)
