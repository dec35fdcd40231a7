"""Fast mode: a few-step LoRA with the sampler, step count and guidance it was distilled for.

One switch for the artist ("Fast" in the Generate panel, `--fast` on the command line): the job's `fast`
field names the profile, and `apply_fast` turns the job into the one that actually runs, so the recorded
job (history, PNG parameters, replay) holds the sampler, steps and guidance that made the pixels. It is
idempotent: applying it to a recorded job changes nothing, so a replay runs the same job.

Steps and guidance the profile accepts are kept (LCM at 6 steps is a choice); values outside its range
(30 steps, guidance 7.5 from the normal settings) become the profile's defaults. The LoRA itself is
chosen per model family by the engine (engine/addons.py) from `FastProfile.loras`.

Profiles follow the diffusers docs for each method (inference with LCM-LoRA, TCD, Hyper-SD, SDXL-Lightning).
"""

from __future__ import annotations

from dataclasses import dataclass

from inpaint_studio.core.jobspec import OFF, InpaintJob


@dataclass(frozen=True)
class FastProfile:
    name: str  # the value of InpaintJob.fast
    label: str  # how the panel names it
    loras: dict[str, str]  # "sd" / "sdxl" -> LoRA reference (hub id, or hub id + "/" + file)
    scheduler: str  # a sampler name of engine/schedulers.py
    steps: int  # default step count
    step_range: tuple[int, int]
    guidance: float  # default guidance scale (<= 1 turns classifier-free guidance off: one UNet call a step)
    guidance_range: tuple[float, float]
    eta: float | None = None  # the sampler's eta (TCD's gamma), passed to the pipeline call

    def describe(self) -> str:
        low, high = self.step_range
        steps = f"{low}-{high} steps" if low != high else f"{low} steps"
        return f"{self.label}: {steps} (default {self.steps}), guidance {self.guidance:g}, sampler {self.scheduler}"


PROFILES: dict[str, FastProfile] = {
    profile.name: profile
    for profile in (
        FastProfile(
            "lcm",
            "LCM-LoRA",
            {"sd": "latent-consistency/lcm-lora-sdv1-5", "sdxl": "latent-consistency/lcm-lora-sdxl"},
            "LCM",
            4,
            (2, 8),
            1.0,
            (0.0, 2.0),
        ),
        FastProfile(
            "tcd",
            "TCD",
            {"sd": "h1t/TCD-SD15-LoRA", "sdxl": "h1t/TCD-SDXL-LoRA"},
            "TCD",
            4,
            (1, 8),
            0.0,
            (0.0, 1.0),
            eta=0.3,
        ),
        FastProfile(
            "hyper",
            "Hyper-SD (8 steps)",
            {
                "sd": "ByteDance/Hyper-SD/Hyper-SD15-8steps-lora.safetensors",
                "sdxl": "ByteDance/Hyper-SD/Hyper-SDXL-8steps-lora.safetensors",
            },
            "DDIM Trailing",
            8,
            (8, 8),
            0.0,
            (0.0, 1.0),
        ),
        FastProfile(
            "lightning",
            "SDXL-Lightning (4 steps)",
            {"sdxl": "ByteDance/SDXL-Lightning/sdxl_lightning_4step_lora.safetensors"},
            "Euler Trailing",
            4,
            (4, 4),
            0.0,
            (0.0, 1.0),
        ),
    )
}
DEFAULT_FAST = "lcm"  # what the panel's switch and --fast choose


def profile_of(job: InpaintJob) -> FastProfile | None:
    """The job's fast profile; None when fast mode is off (or unknown: problems() names it)."""
    return None if job.fast == OFF else PROFILES.get(job.fast)


def apply_fast(job: InpaintJob) -> InpaintJob:
    """The job as fast mode runs it: the profile's sampler, and its steps / guidance unless the job's own are in
    the profile's range. Unchanged when fast mode is off; idempotent."""
    profile = profile_of(job)
    if profile is None or job.is_classical:
        return job
    low, high = profile.step_range
    steps = job.steps if low <= job.steps <= high else profile.steps
    g_low, g_high = profile.guidance_range
    guidance = job.guidance_scale if g_low <= job.guidance_scale <= g_high else profile.guidance
    return job.replace(scheduler=profile.scheduler, steps=steps, guidance_scale=guidance)
