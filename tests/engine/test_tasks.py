"""Text-to-image and image-to-image jobs, and the from_pipe variants that run them without a second copy."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import Task
from inpaint_studio.core.masks import feather
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import Events, box_mask, job_for, photo, pixels


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


def unique_weight_bytes(pipelines) -> int:
    """Bytes of distinct parameter/buffer storage held by `pipelines` (shared tensors counted once)."""
    import torch

    seen: dict[int, int] = {}
    for pipe in pipelines:
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                for tensor in [*module.parameters(), *module.buffers()]:
                    storage = tensor.untyped_storage()
                    seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def test_text_to_image_on_a_plain_checkpoint(engine, tiny_sd):
    events = Events()
    result = engine.run(job_for(tiny_sd, task=Task.TEXT2IMG, width=72, height=64), on_event=events.append)
    assert result.images[0].size == (72, 64)
    assert result.extra["pipeline"] == "StableDiffusionPipeline"
    assert result.region == (0, 0, 72, 64)
    assert events.progress_ok()
    assert result.handoff is not None and result.handoff.size == (72, 64)  # the image is its decoded latents
    again = engine.run(result.job)
    assert np.array_equal(pixels(again.images[0]), pixels(result.images[0]))


def test_text_to_image_on_an_inpainting_checkpoint_masks_a_blank_canvas(engine, tiny_sd_inpaint):
    result = engine.run(job_for(tiny_sd_inpaint, task=Task.TEXT2IMG, width=64, height=64))
    assert result.extra["pipeline"] == "StableDiffusionInpaintPipeline"
    assert pixels(result.images[0]).std() > 5  # a picture, not the grey canvas


def test_image_to_image_whole_picture_and_masked(engine, tiny_sd):
    image = photo(80, 64)
    whole = engine.run(job_for(tiny_sd, task=Task.IMG2IMG, strength=0.6, steps=4), image)
    assert whole.images[0].size == (80, 64)
    assert whole.extra["pipeline"] == "StableDiffusionImg2ImgPipeline"
    changed = (pixels(whole.images[0]) != pixels(image)).any(axis=-1)
    assert changed.mean() > 0.9  # no mask: the whole picture is redrawn
    mask = box_mask(80, 64, (20, 16, 50, 40))
    masked = engine.run(job_for(tiny_sd, task=Task.IMG2IMG, strength=0.6, steps=4), image, mask)
    outside = feather(mask, 8) == 0
    assert np.array_equal(pixels(masked.images[0])[outside], pixels(image)[outside])


def test_image_to_image_on_an_inpainting_checkpoint(engine, tiny_sd_inpaint):
    image = photo(64, 64)
    result = engine.run(job_for(tiny_sd_inpaint, task=Task.IMG2IMG, strength=0.5, steps=4), image)
    assert result.extra["pipeline"] == "StableDiffusionInpaintPipeline"
    assert not np.array_equal(pixels(result.images[0]), pixels(image))


def test_tasks_say_what_input_they_need(engine, tiny_sd):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(BadInputError, match="starts from the prompt alone"):
        engine.run(job_for(tiny_sd, task=Task.TEXT2IMG), image, mask)
    with pytest.raises(BadInputError, match="needs an input image"):
        engine.run(job_for(tiny_sd, task=Task.IMG2IMG))
    with pytest.raises(BadInputError, match="Inpainting needs a mask"):
        engine.run(job_for(tiny_sd), image)
    with pytest.raises(BadInputError, match="Strength has no meaning for text-to-image"):
        engine.run(job_for(tiny_sd, task=Task.TEXT2IMG, strength=0.5))
    with pytest.raises(BadInputError, match="only apply to text-to-image"):
        engine.run(job_for(tiny_sd, width=64), image, mask)
    with pytest.raises(BadInputError, match="classical fill can only inpaint"):
        engine.run(job_for("classic", task=Task.TEXT2IMG))


def test_tasks_on_one_checkpoint_share_its_weights(tiny_sd):
    """from_pipe variants add no weights: measured over the distinct tensor storage of all pipelines."""
    eng = Engine()
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    eng.run(job_for(tiny_sd), image, mask)
    alone = unique_weight_bytes(eng.pipelines.pipelines())
    eng.run(job_for(tiny_sd, task=Task.TEXT2IMG, width=64, height=64))
    eng.run(job_for(tiny_sd, task=Task.IMG2IMG, strength=0.5, steps=4), image)
    held = eng.pipelines.pipelines()
    assert [type(p).__name__ for p in held] == [
        "StableDiffusionInpaintPipeline",
        "StableDiffusionPipeline",
        "StableDiffusionImg2ImgPipeline",
    ]
    assert alone > 100_000 and unique_weight_bytes(held) == alone
    eng.release()
    assert eng.pipelines.pipelines() == []
