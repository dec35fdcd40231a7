"""Chains: recipes, shared weights, latent hand-off, replay to identical pixels, cancel keeps finished steps."""

from __future__ import annotations

import copy
import gc
import json
import weakref

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.masks import feather
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.engine.chain import Chain, ChainCancelled, comparison_grid, run_chain
from inpaint_studio.engine.events import ChainStepFinished, JobProgress, JobStarted
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import box_mask, photo, pixels


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


def recipe(model, *, steps=None, **top):
    data = {
        "format": "inpaint-studio/chain",
        "version": 1,
        "defaults": {"model": str(model), "steps": 2},
        "steps": steps
        or [
            {"name": "base", "job": {"task": "text2img", "prompt": "a house", "width": 64, "height": 64}},
            {"name": "door", "job": {"task": "inpaint", "prompt": "a red door", "seed": 11}},
            {"name": "style", "job": {"task": "img2img", "prompt": "oil painting", "strength": 0.5, "steps": 4}},
        ],
    }
    data.update(top)
    return data


def test_text_to_image_inpaint_image_to_image_on_one_checkpoint(engine, tiny_sd):
    mask = box_mask(64, 64, (16, 16, 48, 48))
    events = []
    result = run_chain(engine, Chain.from_dict(recipe(tiny_sd)), {"mask": mask}, on_event=events.append)
    assert result.complete and [r.job.task.value for r in result.steps] == ["text2img", "inpaint", "img2img"]
    base, door, style = (pixels(image) for image in result.images)
    outside = feather(mask, 8) == 0
    assert np.array_equal(door[outside], base[outside])  # the inpaint step kept the first step's pixels
    assert not np.array_equal(style, door)
    assert [type(p).__name__ for p in engine.pipelines.pipelines()] == [
        "StableDiffusionInpaintPipeline",
        "StableDiffusionPipeline",
        "StableDiffusionImg2ImgPipeline",
    ]  # one checkpoint, three from_pipe views of it
    assert result.steps[1].extra["latent_input"] is False  # composited image: pixels, not latents
    assert [e.index for e in events if isinstance(e, ChainStepFinished)] == [0, 1, 2]
    assert sorted({e.job_id for e in events if isinstance(e, JobStarted)}) == [0, 1, 2]
    assert all(isinstance(r.job.seed, int) for r in result.steps) and result.steps[1].job.seed == 11


def test_latents_go_straight_to_image_to_image_when_the_image_is_their_decode(engine, tiny_sd):
    steps = [
        {"job": {"task": "text2img", "prompt": "a house", "width": 64, "height": 64, "seed": 1}},
        {"job": {"task": "img2img", "prompt": "oil painting", "strength": 0.5, "steps": 4, "seed": 2}},
    ]
    chained = run_chain(engine, Chain.from_dict(recipe(tiny_sd, steps=steps)), {})
    assert chained.steps[1].extra["latent_input"] is True
    # Run alone on the decoded image, the same step re-encodes it: close, but not the same latents.
    alone = engine.run(chained.steps[1].job, chained.images[0])
    assert alone.extra["latent_input"] is False
    assert not np.array_equal(pixels(alone.images[0]), pixels(chained.images[1]))


def test_the_record_is_plain_data_and_replays_to_identical_pixels(engine, tiny_sd, tiny_sd_inpaint):
    image, mask = photo(80, 64), box_mask(80, 64, (20, 16, 56, 48))
    steps = [
        {"name": "fill", "job": {"task": "inpaint", "model": str(tiny_sd_inpaint), "prompt": "a cat"}},
        {"name": "again", "job": {"task": "inpaint", "prompt": "a black cat", "strength": 0.7, "steps": 3}},
        {"name": "refine", "mask": "mask", "job": {"task": "img2img", "prompt": "a cat", "strength": 0.4, "steps": 5}},
    ]
    inputs = {"image": image, "mask": mask}
    first = run_chain(engine, Chain.from_dict(recipe(tiny_sd, steps=steps)), inputs)
    record = first.record()
    stored = json.loads(json.dumps(record))  # what a history entry or project file keeps
    assert GenerationRecord.from_dict(stored["steps"][1]["result"]).seed == first.steps[1].job.seed
    assert stored["input_digests"]["image"] == first.input_digests["image"]
    replay = run_chain(engine, Chain.from_dict(stored), inputs)
    for a, b in zip(first.images, replay.images):
        assert np.array_equal(pixels(a), pixels(b))
    assert replay.record()["steps"][2]["job"] == stored["steps"][2]["job"]


def test_different_checkpoints_load_and_unload_in_order(tiny_sd, tiny_sd_inpaint):
    eng = Engine()
    steps = [
        {"job": {"task": "text2img", "model": str(tiny_sd), "prompt": "a house", "width": 64, "height": 64}},
        {"job": {"task": "inpaint", "model": str(tiny_sd_inpaint), "prompt": "a door"}},
    ]
    loaded = []

    def on_event(event):
        if isinstance(event, JobStarted):
            held = eng.pipelines.pipelines()
            loaded.append((eng.pipelines.loaded.path.name, len(held), weakref.ref(held[0])))

    run_chain(
        eng,
        Chain.from_dict(recipe(tiny_sd, steps=steps)),
        {"mask": box_mask(64, 64, (8, 8, 40, 40))},
        on_event=on_event,
    )
    assert [(name, count) for name, count, _ in loaded] == [(tiny_sd.name, 2), (tiny_sd_inpaint.name, 1)]
    gc.collect()
    assert loaded[0][2]() is None  # the first checkpoint was released before the second loaded
    eng.release()


def test_cancel_mid_chain_keeps_the_finished_steps(engine, tiny_sd):
    from inpaint_studio.engine.events import CancelToken

    mask = box_mask(64, 64, (16, 16, 48, 48))
    chain = Chain.from_dict(recipe(tiny_sd)).resolved()
    complete = run_chain(engine, chain, {"mask": mask})
    token = CancelToken()
    finished_steps = []

    def on_event(event):
        if isinstance(event, JobProgress) and event.job_id == 1 and event.step == 1:
            token.cancel()

    with pytest.raises(ChainCancelled, match="after 1 of 3 chain steps") as caught:
        run_chain(
            engine,
            chain,
            {"mask": mask},
            on_event=on_event,
            cancel=token,
            on_step=lambda i, r: finished_steps.append(i),
        )
    partial = caught.value.partial
    assert finished_steps == [0] and len(partial.steps) == 1 and not partial.complete
    assert np.array_equal(pixels(partial.images[0]), pixels(complete.images[0]))
    assert len(partial.record()["steps"]) == 3 and "result" not in partial.record()["steps"][1]
    # The engine is usable afterwards.
    assert run_chain(engine, chain, {"mask": mask}).complete


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(version=2), "version 2 is not supported"),
        (lambda r: r.update(format="x"), "not a chain recipe"),
        (lambda r: r.update(stepz=[]), "Unknown chain recipe key\\(s\\): stepz"),
        (lambda r: r["steps"][1].update(maks="m"), "Step 2 has unknown key\\(s\\): maks"),
        (lambda r: r["steps"][1]["job"].update(strenght=1), "Step 2: Unknown job setting\\(s\\): strenght"),
        (lambda r: r["steps"][1]["job"].update(steps=0), "Step 2 \\(door\\): Steps is 0"),
        (lambda r: r["steps"].reverse(), "Step 3 \\(base\\) is text-to-image, which ignores the steps before it"),
        (lambda r: r["steps"][1].update(mask="other"), "uses the mask input 'other', which the chain was not given"),
        (lambda r: r["steps"][2]["job"].update(variants=2), "Step 3 \\(style\\) asks for 2 variants"),
        (lambda r: r["steps"][2]["job"].update(scheduler="Fast"), "the sampler 'Fast' is unknown"),
        (lambda r: r.update(steps=[]), "has no steps"),
    ],
)
def test_recipe_problems_are_named_before_anything_runs(tiny_sd, change, message):
    data = copy.deepcopy(recipe(tiny_sd))
    change(data)
    with pytest.raises(BadInputError, match=message):
        Chain.from_dict(data).validate({"mask"})


def test_first_step_on_an_image_needs_the_image_input(tiny_sd):
    steps = [{"job": {"task": "inpaint", "prompt": "x"}}]
    with pytest.raises(BadInputError, match="no 'image' input was given"):
        Chain.from_dict(recipe(tiny_sd, steps=steps)).validate({"mask"})


def test_recipe_defaults_merge_nested_options(tiny_sd):
    data = recipe(tiny_sd)
    data["defaults"]["speed"] = {"attention": "sliced", "vae_tiling": "on"}
    data["steps"][2]["job"]["speed"] = {"vae_tiling": "off"}
    chain = Chain.from_dict(data)
    assert chain.steps[2].job.speed.attention == "sliced" and chain.steps[2].job.speed.vae_tiling == "off"
    assert chain.steps[1].mask == "mask" and chain.steps[2].mask is None  # inpaint steps default to "mask"
    assert Chain.from_dict(chain.to_dict()) == chain


def test_comparison_grid_places_every_image_in_one_row():
    grid = comparison_grid([photo(64, 32), photo(40, 40)], ["base", "1. fill"], height=50)
    assert grid.size == (100 + 50, 50 + 18)
