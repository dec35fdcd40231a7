"""Prompt weighting (compel) for SD and SDXL: same as plain for plain prompts, clear errors when malformed."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.engine.prompts import check_syntax
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import box_mask, job_for, photo, pixels


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


@pytest.mark.parametrize(
    "text",
    [
        "a cat",
        "a (red)1.3 apple",
        "a red++ apple--",
        "(a red apple)0.8, (bowl)+",
        '("a cat", "a dog").blend(0.7, 0.3)',
        r"a \(literal\) bracket",
        "",
    ],
)
def test_valid_weighting_syntax_passes(text):
    check_syntax(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a (red apple", "1 '(' without a closing ')'"),
        ("a red) apple", "')' without its '(' at character 6"),
        ('("a cat", "a dog).blend(1, 1)', 'unclosed " quote'),
        ("a (red:1.3) apple", "A1111 weighting '(red:1.3)'"),
    ],
)
def test_malformed_weighting_is_one_clear_sentence(text, message):
    with pytest.raises(BadInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_syntax(text)


@pytest.mark.parametrize("fixture", ["tiny_sd_inpaint", "tiny_sdxl_inpaint"])
def test_weighting_keeps_plain_prompts_and_changes_weighted_ones(engine, request, fixture):
    model = request.getfixturevalue(fixture)
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    # An empty negative prompt exercises SDXL's zeros-for-empty-negative rule.
    for negative in ("blurry", ""):
        plain = engine.run(job_for(model, negative_prompt=negative), image, mask)
        weighted_plain = engine.run(job_for(model, negative_prompt=negative, prompt_weighting=True), image, mask)
        assert np.array_equal(pixels(plain.images[0]), pixels(weighted_plain.images[0]))
    heavy = engine.run(job_for(model, prompt="a (red)1.8 apple--", prompt_weighting=True), image, mask)
    assert not np.array_equal(pixels(plain.images[0]), pixels(heavy.images[0]))
    # Without weighting the same text is literal: brackets and all.
    literal = engine.run(job_for(model, prompt="a (red)1.8 apple--"), image, mask)
    assert not np.array_equal(pixels(literal.images[0]), pixels(heavy.images[0]))


def test_weighting_through_the_refiner_and_long_prompts(engine, tiny_sdxl_inpaint, tiny_sdxl_refiner):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    long_prompt = ", ".join(["a (very)1.2 detailed red apple"] * 12)  # > 77 tokens: compel encodes chunks
    job = job_for(tiny_sdxl_inpaint, prompt=long_prompt, prompt_weighting=True, refiner=str(tiny_sdxl_refiner))
    result = engine.run(job, image, mask)
    assert result.extra["refiner"]["latent_handoff"] is True


def test_malformed_weighting_fails_before_any_step(engine, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(BadInputError, match="negative prompt has 1 '\\('"):
        engine.run(job_for(tiny_sd_inpaint, negative_prompt="(blurry", prompt_weighting=True), image, mask)
    with pytest.raises(BadInputError, match="prompt weighting cannot be read"):
        engine.run(job_for(tiny_sd_inpaint, prompt='("a", "b").blend(0.5)', prompt_weighting=True), image, mask)
    assert engine.run(job_for(tiny_sd_inpaint, prompt="(fine)1.1", prompt_weighting=True), image, mask).images
