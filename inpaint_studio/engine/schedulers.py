"""Named samplers mapped onto diffusers schedulers, built from the model's own scheduler config.

The names follow what artists know from A1111/Krita ("DPM++ 2M Karras", "Euler a", ...); the chosen name
is recorded in the job and in the PNG "parameters" text as "Sampler". "default" is the model's own.
Building from the model's config keeps its betas, prediction type and timestep spacing; only the solver
and the overrides listed here change. Samplers that need extra packages (DPM++ SDE needs torchsde) are
left out. `SchedulerConfigs` keeps each model's own config from before the first sampler swap (one per
Engine).
"""

from __future__ import annotations

from typing import Any

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.engine.models import ModelInfo, component_config

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
    # Few-step LoRAs (core/fast_modes.py): TCD's own sampler; Hyper-SD and SDXL-Lightning want trailing timesteps.
    "TCD": ("TCDScheduler", {}),
    "DDIM Trailing": ("DDIMScheduler", {"timestep_spacing": "trailing"}),
    "Euler Trailing": ("EulerDiscreteScheduler", {"timestep_spacing": "trailing"}),
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


class SchedulerConfigs:
    """Each model's own scheduler config, kept from its first use: every sampler is built from the original.

    A loaded pipeline's scheduler is replaced by the chosen sampler, so its config must be read before the
    first swap (pass `pipe` on the first use of a loaded model); a model not loaded yet (the refiner before
    its pass) has its config read from its files. A few models at most: the cache is cleared past that.
    """

    MAX_MODELS = 8

    def __init__(self) -> None:
        self._configs: dict[str, dict[str, Any]] = {}

    def get(self, info: ModelInfo, pipe: Any = None) -> dict[str, Any]:
        """The model's own scheduler config, as loaded (before any sampler swap) or read from its files."""
        key = str(info.path)
        if key not in self._configs:
            if pipe is not None:
                config = dict(pipe.scheduler.config)
            else:
                config = component_config(info, "scheduler", "scheduler_config.json")
                if config is None:
                    raise ModelUnavailableError(
                        f"The model {info.name} has no scheduler configuration; download it again."
                    )
            if len(self._configs) > self.MAX_MODELS:
                self._configs.clear()
            self._configs[key] = config
        return self._configs[key]
