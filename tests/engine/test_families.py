"""Kandinsky 2.2, the SDXL refiner pass and ControlNet inpainting, on tiny offline models."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.core.jobspec import Task
from inpaint_studio.core.masks import feather
from inpaint_studio.engine import calls
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import Events, box_mask, job_for, photo, pixels


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


# ---- Kandinsky 2.2 (prior + decoder) ---------------------------------------------------------------------


def kandinsky_job(model, **kw):
    return job_for(model, **{"prior_steps": 2, "resolution": 64, **kw})


def test_kandinsky_inpaints_white_area_keeps_the_rest_and_counts_prior_steps(engine, tiny_kandinsky_inpaint):
    image, mask = photo(96, 80), box_mask(96, 80, (30, 20, 66, 56))
    events = Events()
    result = engine.run(kandinsky_job(tiny_kandinsky_inpaint), image, mask, on_event=events.append)
    out, original = pixels(result.images[0]), pixels(image)
    assert result.extra["pipeline"] == "KandinskyV22InpaintCombinedPipeline"
    assert result.images[0].size == (96, 80)
    outside = feather(mask, 8) == 0
    assert np.array_equal(out[outside], original[outside])
    # White = repaint, like the other families: the masked pixels changed.
    assert (out[mask > 0] != original[mask > 0]).any(axis=-1).mean() > 0.9
    assert events.progress_ok()
    assert events[0].total_steps == 2 + 2  # prior steps + decoder steps
    again = engine.run(kandinsky_job(tiny_kandinsky_inpaint), image, mask)
    assert np.array_equal(pixels(again.images[0]), out)


def test_kandinsky_text_to_image_and_its_refusals(engine, tiny_kandinsky_inpaint):
    result = engine.run(kandinsky_job(tiny_kandinsky_inpaint, task=Task.TEXT2IMG, width=72, height=64, resolution=None))
    assert result.images[0].size == (72, 64)
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(BadInputError, match="no strength setting"):
        engine.run(kandinsky_job(tiny_kandinsky_inpaint, strength=0.5), image, mask)
    with pytest.raises(BadInputError, match="cannot do image-to-image"):
        engine.run(kandinsky_job(tiny_kandinsky_inpaint, task=Task.IMG2IMG), image)
    with pytest.raises(BadInputError, match="Prompt weighting is not available for Kandinsky"):
        engine.run(kandinsky_job(tiny_kandinsky_inpaint, prompt_weighting=True), image, mask)


def test_kandinsky_cancel_stops_in_the_prior_or_the_decoder(engine, tiny_kandinsky_inpaint):
    from inpaint_studio.core.errors import CancelledError
    from inpaint_studio.engine.events import CancelToken, JobCancelled, JobProgress

    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    for stop_at in (1, 3):  # in the prior (steps 1-2), in the decoder (steps 3-6)
        token, events = CancelToken(), []

        def sink(event, token=token, events=events, stop_at=stop_at):
            events.append(event)
            if isinstance(event, JobProgress) and event.step == stop_at:
                token.cancel()

        with pytest.raises(CancelledError):
            engine.run(kandinsky_job(tiny_kandinsky_inpaint, steps=4), image, mask, on_event=sink, cancel=token)
        assert isinstance(events[-1], JobCancelled)
        assert max(e.step for e in events if isinstance(e, JobProgress)) == stop_at
    assert engine.run(kandinsky_job(tiny_kandinsky_inpaint), image, mask).images


# ---- SDXL + refiner ---------------------------------------------------------------------------------------


def test_sdxl_refiner_pass_hands_latents_over_when_the_vaes_match(engine, tiny_sdxl_inpaint, tiny_sdxl_refiner):
    image, mask = photo(80, 64), box_mask(80, 64, (20, 16, 56, 48))
    events = Events()
    job = job_for(tiny_sdxl_inpaint, steps=5, refiner=str(tiny_sdxl_refiner), refiner_switch=0.6)
    result = engine.run(job, image, mask, on_event=events.append)
    assert result.extra["refiner"]["latent_handoff"] is True
    assert result.extra["refiner"]["pipeline"] == "StableDiffusionXLInpaintPipeline"
    # Base and refiner split one 5-step schedule at 60 %: 3 + 2 step callbacks, all counted.
    assert events.progress_ok() and events[0].total_steps == 5
    outside = feather(mask, 8) == 0
    assert np.array_equal(pixels(result.images[0])[outside], pixels(image)[outside])
    assert engine.pipelines.loaded.family.value == "sdxl_refiner"  # one checkpoint at a time
    plain = engine.run(job.replace(refiner=None), image, mask)
    assert not np.array_equal(pixels(plain.images[0]), pixels(result.images[0]))
    again = engine.run(job, image, mask)
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))


def test_sdxl_refiner_with_another_latent_space_decodes_and_re_encodes(
    engine, tiny_sdxl_inpaint, tiny_sdxl_refiner, tmp_path
):
    other = shutil.copytree(tiny_sdxl_refiner, tmp_path / "refiner-other-vae")
    config_file = other / "vae" / "config.json"
    config = json.loads(config_file.read_text())
    config["scaling_factor"] = 0.5  # another latent scaling: latents must go through pixels
    config_file.write_text(json.dumps(config))
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    events = Events()
    result = engine.run(job_for(tiny_sdxl_inpaint, steps=4, refiner=str(other)), image, mask, on_event=events.append)
    assert result.extra["refiner"]["latent_handoff"] is False
    assert events.progress_ok()
    assert np.isfinite(pixels(result.images[0]).astype(float)).all()


def test_sdxl_text_to_image_with_refiner_uses_its_image_to_image_pipeline(engine, tiny_sdxl_inpaint, tiny_sdxl_refiner):
    job = job_for(tiny_sdxl_inpaint, task=Task.TEXT2IMG, width=64, height=64, steps=4, refiner=str(tiny_sdxl_refiner))
    result = engine.run(job)
    assert result.extra["refiner"]["pipeline"] == "StableDiffusionXLImg2ImgPipeline"
    assert result.images[0].size == (64, 64)


def test_refiner_needs_sdxl_on_both_sides(engine, tiny_sd_inpaint, tiny_sdxl_inpaint, tiny_sdxl_refiner):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(BadInputError, match="needs an SDXL base model"):
        engine.run(job_for(tiny_sd_inpaint, refiner=str(tiny_sdxl_refiner)), image, mask)
    with pytest.raises(BadInputError, match="is not an SDXL model"):
        engine.run(job_for(tiny_sdxl_inpaint, refiner=str(tiny_sd_inpaint)), image, mask)


def test_refiner_alone_refines_an_existing_image_below_full_strength(engine, tiny_sdxl_refiner):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    result = engine.run(job_for(tiny_sdxl_refiner, strength=0.3, steps=4), image, mask)
    assert result.extra["pipeline"] == "StableDiffusionXLInpaintPipeline"


# ---- ControlNet inpainting --------------------------------------------------------------------------------


def test_control_image_marks_masked_pixels_minus_one():
    rgb = np.full((4, 4, 3), 255, np.uint8)
    mask = np.zeros((4, 4), np.uint8)
    mask[1, 2] = 255
    condition = calls.control_image(rgb, mask)
    assert tuple(condition.shape) == (1, 3, 4, 4)
    assert (condition[0, :, 1, 2] == -1).all()
    assert (condition[0, :, 0, 0] == 1).all()


@pytest.fixture(scope="module")
def active_controlnet(tiny_controlnet, tmp_path_factory):
    """The tiny ControlNet with its zero convolutions filled in, so that its output reaches the UNet.

    A freshly initialised ControlNet adds exactly zero (its output convolutions start at zero, as in
    training), so scale and start/end could not change a pixel.
    """
    import torch
    from diffusers import ControlNetModel

    model = ControlNetModel.from_pretrained(tiny_controlnet)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        zero_convs = [
            *model.controlnet_down_blocks,
            model.controlnet_mid_block,
            model.controlnet_cond_embedding.conv_out,
        ]
        for block in zero_convs:
            block.weight.copy_(torch.randn(block.weight.shape, generator=generator) * 0.5)
    path = tmp_path_factory.mktemp("active_controlnet")
    model.save_pretrained(path, safe_serialization=True)
    return path


def test_controlnet_inpaint_shares_the_base_modules_and_its_settings_matter(engine, tiny_sd_inpaint, active_controlnet):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    job = job_for(tiny_sd_inpaint, controlnet=str(active_controlnet), steps=3)
    events = Events()
    full = engine.run(job, image, mask, on_event=events.append)
    assert full.extra["pipeline"] == "StableDiffusionControlNetInpaintPipeline"
    assert full.extra["controlnet"]["path"] == str(active_controlnet)
    assert events.progress_ok()
    base, variant = engine.pipelines.pipelines()[0], engine.pipelines.pipelines()[-1]
    assert variant.unet is base.unet and variant.vae is base.vae and variant.text_encoder is base.text_encoder
    weak = engine.run(job.replace(controlnet_scale=0.0), image, mask)
    early = engine.run(job.replace(control_end=0.4), image, mask)
    assert not np.array_equal(pixels(full.images[0]), pixels(weak.images[0]))
    assert not np.array_equal(pixels(full.images[0]), pixels(early.images[0]))
    # Another ControlNet's condition can be given as an image of the same size.
    edges = photo(64, 64, seed=5)
    custom = engine.run(job, image, mask, control_image=edges)
    assert not np.array_equal(pixels(full.images[0]), pixels(custom.images[0]))
    with pytest.raises(BadInputError, match="control image is 32x32"):
        engine.run(job, image, mask, control_image=photo(32, 32))


def test_controlnet_for_another_family_and_misplaced_models_are_explained(
    engine, tiny_sdxl_inpaint, tiny_controlnet, tiny_sd_inpaint
):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(BadInputError, match="made for another model family"):
        engine.run(job_for(tiny_sdxl_inpaint, controlnet=str(tiny_controlnet)), image, mask)
    with pytest.raises(ModelUnavailableError, match="is a ControlNet, which guides a base model"):
        engine.run(job_for(tiny_controlnet), image, mask)
    with pytest.raises(ModelUnavailableError, match="is not a ControlNet"):
        engine.run(job_for(tiny_sd_inpaint, controlnet=str(tiny_sd_inpaint / "unet")), image, mask)
    with pytest.raises(BadInputError, match="ControlNet can only be used for inpainting"):
        engine.run(job_for(tiny_sd_inpaint, controlnet=str(tiny_controlnet), task=Task.IMG2IMG), image)
