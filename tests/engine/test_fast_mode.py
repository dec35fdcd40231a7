"""Fast mode: a few-step LoRA with its sampler, steps and guidance, applied by the engine and recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.core.fast_modes import PROFILES, apply_fast
from inpaint_studio.core.jobspec import CLASSIC_MODEL, InpaintJob
from inpaint_studio.core.parameters import format_parameters, job_overrides_from_parameters, parse_parameters
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import box_mask, job_for, photo, pixels
from tests.tiny_addons import build_lora, put_in_cache

IMAGE, MASK = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))


def test_the_profile_sets_sampler_steps_and_guidance_and_is_idempotent():
    job = InpaintJob(model="a/b", steps=30, guidance_scale=7.5, scheduler="Euler a", fast="lcm")
    fast = apply_fast(job)
    assert (fast.scheduler, fast.steps, fast.guidance_scale) == ("LCM", 4, 1.0)
    assert apply_fast(fast) == fast  # a recorded job replays as itself
    chosen = apply_fast(job.replace(steps=6, guidance_scale=1.5))
    assert (chosen.steps, chosen.guidance_scale) == (6, 1.5)  # in the profile's range: the artist's choice
    assert apply_fast(job.replace(fast="off")) == job.replace(fast="off")
    assert apply_fast(job.replace(model=CLASSIC_MODEL)) == job.replace(model=CLASSIC_MODEL)
    hyper = apply_fast(job.replace(fast="hyper"))
    assert (hyper.scheduler, hyper.steps, hyper.guidance_scale) == ("DDIM Trailing", 8, 0.0)
    assert all(profile.describe().startswith(profile.label) for profile in PROFILES.values())
    problems = InpaintJob(fast="turbo").problems()
    assert problems == ["Fast mode 'turbo' is unknown; use one of: off, lcm, tcd, hyper, lightning."]


@pytest.fixture
def lcm_installed(hub_cache, tmp_path) -> Path:
    """A tiny LoRA in the cache under the id fast mode looks for (the real one is a 135 MB download)."""
    lora = build_lora(tmp_path / "lcm", seed=11)
    put_in_cache(hub_cache, "latent-consistency/lcm-lora-sdv1-5", {"pytorch_lora_weights.safetensors": lora})
    put_in_cache(hub_cache, "h1t/TCD-SD15-LoRA", {"pytorch_lora_weights.safetensors": lora})
    return lora


def test_fast_mode_runs_the_profile_with_its_lora_and_records_it(lcm_installed, tiny_sd_inpaint):
    eng = Engine()
    try:
        plain = eng.run(job_for(tiny_sd_inpaint), IMAGE, MASK)
        fast = eng.run(job_for(tiny_sd_inpaint, steps=30, fast="lcm"), IMAGE, MASK)
        assert (fast.job.fast, fast.job.scheduler, fast.job.steps, fast.job.guidance_scale) == ("lcm", "LCM", 4, 1.0)
        assert fast.extra["scheduler"] == "LCMScheduler"
        assert fast.extra["fast"] == {"mode": "lcm", "sampler": "LCM", "steps": 4}
        assert fast.extra["loras"][0]["reference"] == "latent-consistency/lcm-lora-sdv1-5"
        # Its record replays to the same pixels, and a job without fast mode gets the bare model back.
        again = eng.run(fast.record().job, IMAGE, MASK)
        assert np.array_equal(pixels(again.images[0]), pixels(fast.images[0]))
        assert np.array_equal(pixels(eng.run(job_for(tiny_sd_inpaint), IMAGE, MASK).images[0]), pixels(plain.images[0]))
        # The same LoRA as an ordinary LoRA with the same sampler settings: fast mode is exactly that.
        manual = eng.run(
            job_for(tiny_sd_inpaint, scheduler="LCM", steps=4, guidance_scale=1.0, loras=((str(lcm_installed), 1.0),)),
            IMAGE,
            MASK,
        )
        assert np.array_equal(pixels(manual.images[0]), pixels(fast.images[0]))
        tcd = eng.run(job_for(tiny_sd_inpaint, fast="tcd"), IMAGE, MASK)
        assert tcd.extra["scheduler"] == "TCDScheduler" and tcd.job.guidance_scale == 0.0
        text = format_parameters(fast.job, width=64, height=64, seed=7, model_name="tiny")
        assert "Fast: lcm" in text and "Sampler: LCM" in text and "Steps: 4" in text
        assert job_overrides_from_parameters(parse_parameters(text))["fast"] == "lcm"
    finally:
        eng.release()


def test_fast_mode_says_what_is_missing_or_unsupported(hub_cache, tiny_sd_inpaint):
    eng = Engine()
    with pytest.raises(ModelUnavailableError) as caught:
        eng.run(job_for(tiny_sd_inpaint, fast="lcm"), IMAGE, MASK)
    message = str(caught.value)
    assert "latent-consistency/lcm-lora-sdv1-5 is not installed" in message
    assert "0.13 GB, licence CreativeML OpenRAIL++-M" in message and message.count(". ") == 0
    with pytest.raises(BadInputError, match="is made for SDXL only"):
        eng.run(job_for(tiny_sd_inpaint, fast="lightning"), IMAGE, MASK)


def test_fast_mode_needs_an_sd_or_sdxl_model(hub_cache, tiny_kandinsky_inpaint):
    with pytest.raises(BadInputError, match="Fast mode works with SD 1.5 and SDXL models"):
        Engine().run(job_for(tiny_kandinsky_inpaint, fast="lcm"), IMAGE, MASK)
