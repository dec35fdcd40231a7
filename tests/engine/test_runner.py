"""The diffusion engine on tiny offline pipelines, loaded through the same path a user's model takes."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.core.errors import BadInputError, CancelledError, EmptyMaskError, ModelUnavailableError
from inpaint_studio.core.jobspec import Area, ClassicalMethod, InpaintJob, MaskOptions, MemoryMode, OutputSize
from inpaint_studio.core.masks import feather, grow
from inpaint_studio.engine.events import CancelToken, JobCancelled, JobFinished, JobProgress, JobStarted
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import box_mask, photo


@pytest.fixture(scope="module")
def engine() -> Engine:
    eng = Engine()
    yield eng
    eng.release()


def job_for(model, **kw) -> InpaintJob:
    defaults = {"model": str(model), "prompt": "a red apple", "steps": 2, "seed": 7}
    defaults.update(kw)
    return InpaintJob(**defaults)


def test_masked_region_keeps_outside_pixels_and_size_on_odd_image(engine, tiny_sd_inpaint):
    image = photo(1001, 667)
    mask = box_mask(1001, 667, (600, 300, 700, 380))
    job = job_for(tiny_sd_inpaint, mask=MaskOptions(feather_px=6))
    result = engine.run(job, image, mask)
    out = np.asarray(result.images[0])
    original = np.asarray(image)
    assert result.images[0].size == (1001, 667)
    weight = feather(mask, 6)
    outside = weight == 0
    assert np.array_equal(out[outside], original[outside])
    assert (out[mask > 0] != original[mask > 0]).any(axis=-1).mean() > 0.9  # the hole was repainted
    left, top, right, bottom = result.region
    assert left <= 600 and top <= 300 and right >= 700 and bottom >= 380  # crop holds the mask
    assert (right - left, bottom - top) != (1001, 667)  # ... and is a crop, not the whole image
    assert result.extra["unet_in_channels"] == 9


def test_feather_blends_a_band_outside_the_mask(engine, tiny_sd_inpaint):
    image = photo(200, 160)
    mask = box_mask(200, 160, (80, 60, 120, 100))
    result = engine.run(job_for(tiny_sd_inpaint, mask=MaskOptions(feather_px=10)), image, mask)
    out, original = np.asarray(result.images[0]).astype(int), np.asarray(image).astype(int)
    weight = feather(mask, 10)
    band = (weight > 0.2) & (weight < 0.8)
    assert band.sum() > 100
    # In the band, each pixel lies between the original and the fully generated value: check it moved.
    assert (np.abs(out[band] - original[band]).sum(axis=-1) > 0).mean() > 0.5


def test_same_seed_same_pixels_and_different_seeds_differ(engine, tiny_sd_inpaint):
    image, mask = photo(96, 80), box_mask(96, 80, (30, 20, 60, 50))
    job = job_for(tiny_sd_inpaint, variants=2)
    first = engine.run(job, image, mask)
    second = engine.run(job, image, mask)
    assert first.seeds == [7, 8]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(first.images, second.images))
    assert not np.array_equal(np.asarray(first.images[0]), np.asarray(first.images[1]))
    # Variant 2 re-runs alone from its recorded seed.
    alone = engine.run(job.replace(seed=8, variants=1), image, mask)
    assert np.array_equal(np.asarray(alone.images[0]), np.asarray(first.images[1]))


def test_unset_seed_is_recorded_as_a_concrete_integer(engine, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    result = engine.run(job_for(tiny_sd_inpaint, seed=None), image, mask)
    assert isinstance(result.job.seed, int)
    again = engine.run(result.job, image, mask)
    assert np.array_equal(np.asarray(result.images[0]), np.asarray(again.images[0]))


def test_progress_events_count_every_step_and_end_with_finished(engine, tiny_sd_inpaint):
    events = []
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    engine.run(job_for(tiny_sd_inpaint, steps=4, variants=2), image, mask, on_event=events.append)
    assert isinstance(events[0], JobStarted) and isinstance(events[-1], JobFinished)
    progress = [e for e in events if isinstance(e, JobProgress)]
    steps = [e.step for e in progress]
    assert steps == sorted(steps) and steps[-1] == progress[-1].total == events[0].total_steps
    assert len(progress) == events[0].total_steps
    assert {e.variant for e in progress} == {0, 1}


def test_cancel_mid_run_stops_and_reports(engine, tiny_sd_inpaint):
    token = CancelToken()
    events = []

    def sink(event):
        events.append(event)
        if isinstance(event, JobProgress) and event.step == 2:
            token.cancel()

    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(CancelledError):
        engine.run(job_for(tiny_sd_inpaint, steps=10), image, mask, on_event=sink, cancel=token)
    assert isinstance(events[-1], JobCancelled)
    assert max(e.step for e in events if isinstance(e, JobProgress)) < 10
    # The engine stays usable: the next job works.
    assert engine.run(job_for(tiny_sd_inpaint), image, mask).images


def test_whole_image_mode_restores_size_and_preserves_outside(engine, tiny_sd_inpaint):
    image, mask = photo(150, 90), box_mask(150, 90, (40, 30, 80, 60))
    result = engine.run(job_for(tiny_sd_inpaint, area=Area.WHOLE), image, mask)
    assert result.images[0].size == (150, 90)
    assert result.region == (0, 0, 150, 90)
    w, h = result.extra["working_size"]
    assert w % 8 == 0 and h % 8 == 0
    outside = feather(mask, 8) == 0
    assert np.array_equal(np.asarray(result.images[0])[outside], np.asarray(image)[outside])


def test_preserve_off_returns_model_pixels_everywhere(engine, tiny_sd_inpaint):
    image, mask = photo(96, 96), box_mask(96, 96, (40, 40, 60, 60))
    job = job_for(tiny_sd_inpaint, area=Area.WHOLE, preserve_unmasked=False)
    out = np.asarray(engine.run(job, image, mask).images[0])
    outside = feather(mask, 8) == 0
    assert not np.array_equal(out[outside], np.asarray(image)[outside])  # VAE round trip altered them
    processed = engine.run(job.replace(output_size=OutputSize.PROCESSED), image, mask)
    assert processed.images[0].size == tuple(processed.extra["working_size"])


def test_grow_enlarges_the_repainted_area(engine, tiny_sd_inpaint):
    image, mask = photo(96, 96), box_mask(96, 96, (40, 40, 56, 56))
    job = job_for(tiny_sd_inpaint, mask=MaskOptions(grow_px=6, feather_px=0))
    out = np.asarray(engine.run(job, image, mask).images[0])
    grown = grow(mask, 6)
    ring = (grown > 0) & (mask == 0)
    assert (out[ring] != np.asarray(image)[ring]).any(axis=-1).mean() > 0.9
    assert np.array_equal(out[grown == 0], np.asarray(image)[grown == 0])


def test_rgba_input_keeps_transparency_outside(engine, tiny_sd_inpaint):
    rgba = np.dstack([np.asarray(photo(64, 64)), np.full((64, 64), 100, np.uint8)])
    mask = box_mask(64, 64, (20, 20, 40, 40))
    out = np.asarray(engine.run(job_for(tiny_sd_inpaint), Image.fromarray(rgba), mask).images[0])
    assert out.shape == (64, 64, 4)
    assert (out[mask > 0][:, 3] == 255).all()  # filled pixels are opaque
    outside = feather(mask, 8) == 0
    assert np.array_equal(out[outside], rgba[outside])


def test_four_channel_checkpoint_inpaints_by_latent_blending(engine, tiny_sd):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    result = engine.run(job_for(tiny_sd), image, mask)
    assert result.model["family"] == "sd" and result.extra["unet_in_channels"] == 4
    assert result.extra["pipeline"] == "StableDiffusionInpaintPipeline"
    outside = feather(mask, 8) == 0
    assert np.array_equal(np.asarray(result.images[0])[outside], np.asarray(image)[outside])


def test_sdxl_inpaint(engine, tiny_sdxl_inpaint):
    image, mask = photo(80, 64), box_mask(80, 64, (20, 20, 50, 44))
    result = engine.run(job_for(tiny_sdxl_inpaint, strength=0.99), image, mask)
    assert result.model["family"] == "sdxl_inpaint"
    assert result.extra["pipeline"] == "StableDiffusionXLInpaintPipeline"
    assert result.images[0].size == (80, 64)


def test_named_scheduler_is_used_and_unknown_one_is_refused(engine, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    engine.run(job_for(tiny_sd_inpaint, scheduler="Euler a"), image, mask)
    assert type(engine.pipelines._pipe.scheduler).__name__ == "EulerAncestralDiscreteScheduler"
    engine.run(job_for(tiny_sd_inpaint), image, mask)
    assert type(engine.pipelines._pipe.scheduler).__name__ != "EulerAncestralDiscreteScheduler"
    with pytest.raises(BadInputError, match="Unknown sampler 'Bogus'"):
        engine.run(job_for(tiny_sd_inpaint, scheduler="Bogus"), image, mask)


def test_switching_models_releases_the_previous_pipeline(tiny_sd_inpaint, tiny_sd):
    eng = Engine()
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    eng.run(job_for(tiny_sd_inpaint), image, mask)
    first = weakref.ref(eng.pipelines._pipe)
    eng.run(job_for(tiny_sd_inpaint), image, mask)
    assert eng.pipelines._pipe is first()  # same model: reused, not reloaded
    eng.run(job_for(tiny_sd), image, mask)
    gc.collect()
    assert first() is None  # the old pipeline is gone
    eng.release()
    assert eng.pipelines.loaded is None


def test_empty_and_wrong_size_masks_are_reported_not_run(engine, tiny_sd_inpaint):
    image = photo(64, 48)
    with pytest.raises(EmptyMaskError, match="empty"):
        engine.run(job_for(tiny_sd_inpaint), image, np.zeros((48, 64), np.uint8))
    with pytest.raises(BadInputError, match="mask is 60x48 but the image is 64x48"):
        engine.run(job_for(tiny_sd_inpaint), image, np.full((48, 60), 255, np.uint8))


def test_offload_without_accelerator_is_refused(engine, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(BadInputError, match="needs an NVIDIA GPU"):
        engine.run(job_for(tiny_sd_inpaint, memory_mode=MemoryMode.MODEL_OFFLOAD, device="cpu"), image, mask)


def test_unknown_device_is_refused(engine, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(BadInputError, match="device 'cuda:3' is not available"):
        engine.run(job_for(tiny_sd_inpaint, device="cuda:3"), image, mask)


def test_classical_fill_through_the_engine(engine):
    image, mask = photo(300, 200), box_mask(300, 200, (100, 80, 130, 110))
    result = engine.run(InpaintJob(model="classic", seed=1), image, mask)
    out, original = np.asarray(result.images[0]), np.asarray(image)
    assert result.device == "cpu" and result.model["family"] == "classic"
    assert np.array_equal(out[mask == 0], original[mask == 0])
    # The hole is filled with something close to its surroundings, not left as it was.
    assert np.abs(out[mask > 0].astype(int) - original[mask > 0].astype(int)).mean() < 40


def test_the_classical_method_comes_from_the_model_reference_first(engine):
    image, mask = photo(120, 80), box_mask(120, 80, (40, 30, 60, 50))
    named = engine.run(InpaintJob(model="classic:telea", classical_method=ClassicalMethod.FSR, seed=1), image, mask)
    plain = engine.run(InpaintJob(model="classic", classical_method=ClassicalMethod.FSR, seed=1), image, mask)
    assert named.extra["classical_method"] == "telea" and plain.extra["classical_method"] == "fsr"
    with pytest.raises(BadInputError, match="classical fill method 'nope' is unknown"):
        engine.run(InpaintJob(model="classic:nope", seed=1), image, mask)


def test_missing_models_say_what_to_do(engine, tmp_path):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(ModelUnavailableError, match="not installed; download it with `inpaint-studio download"):
        engine.run(job_for("someone/not-a-real-model"), image, mask)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match="not a diffusers model"):
        engine.run(job_for(tmp_path / "empty"), image, mask)
    with pytest.raises(ModelUnavailableError, match="no such file or folder"):
        engine.run(job_for(tmp_path / "missing.safetensors"), image, mask)


def test_single_file_checkpoint_gives_the_same_pixels_as_its_folder(
    engine, tiny_sd_inpaint, tiny_sd_inpaint_single_file
):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    from_folder = engine.run(job_for(tiny_sd_inpaint), image, mask)
    from_file = engine.run(job_for(tiny_sd_inpaint_single_file), image, mask)
    assert from_file.model["source"] == "single_file"
    assert np.array_equal(np.asarray(from_file.images[0]), np.asarray(from_folder.images[0]))


def test_single_file_without_config_offline_says_what_to_do(engine, tiny_sd_inpaint_single_file, tmp_path):
    import shutil

    lone = tmp_path / "lone.safetensors"
    shutil.copy(tiny_sd_inpaint_single_file, lone)
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(ModelUnavailableError, match="needs its model configuration from the Hugging Face hub once"):
        engine.run(job_for(lone), image, mask)


def test_refiner_alone_is_refused(engine, tiny_sdxl_refiner):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(BadInputError, match="refiner"):
        engine.run(job_for(tiny_sdxl_refiner), image, mask)
