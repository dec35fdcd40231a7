"""The job fields added for tasks, chains and model families: defaults, round trips, one sentence per problem."""

from __future__ import annotations

import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import InpaintJob, SpeedOptions, Task


def test_new_fields_round_trip_and_older_records_keep_their_meaning():
    job = InpaintJob(
        model="a/b",
        task=Task.IMG2IMG,
        prompt_weighting=True,
        refiner="c/d",
        refiner_switch=0.7,
        controlnet=None,
        prior_steps=10,
        prior_guidance_scale=2.0,
        speed=SpeedOptions(attention="sliced", compile_unet=True),
    )
    data = job.to_dict()
    assert data["task"] == "img2img" and data["speed"]["attention"] == "sliced"
    assert InpaintJob.from_dict(data) == job
    recorded_before = {k: v for k, v in InpaintJob(model="a/b", seed=1).to_dict().items() if k in _OLD_FIELDS}
    old = InpaintJob.from_dict(recorded_before)
    assert old.task is Task.INPAINT and not old.prompt_weighting and old.refiner is None
    assert old.speed == SpeedOptions() and old.controlnet is None
    with pytest.raises(BadInputError, match="'task' is 'outpaint'; use one of: inpaint, text2img, img2img"):
        InpaintJob.from_dict({"task": "outpaint"})


_OLD_FIELDS = {
    "model",
    "prompt",
    "negative_prompt",
    "strength",
    "guidance_scale",
    "steps",
    "scheduler",
    "seed",
    "variants",
    "mask",
    "area",
    "padding_px",
    "resolution",
    "preserve_unmasked",
    "color_match",
    "output_size",
    "classical_method",
    "device",
    "memory_mode",
}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"task": Task.TEXT2IMG, "width": 60}, "The width is 60 px; use a multiple of 8 between 64 and 4096"),
        ({"task": Task.TEXT2IMG, "height": 5000}, "The height is 5000 px"),
        ({"width": 512}, "Width and height only apply to text-to-image"),
        ({"refiner_switch": 1.0}, "Refiner switch is 1.0; use a fraction between 0 and 1"),
        ({"refiner": " "}, "The refiner is empty"),
        ({"controlnet": ""}, "The ControlNet is empty"),
        ({"controlnet_scale": 3.0}, "ControlNet scale is 3.0; use a value between 0 and 2"),
        ({"control_start": 0.6, "control_end": 0.5}, "must satisfy 0 <= start < end <= 1"),
        ({"prior_steps": 0}, "Prior steps is 0"),
        ({"prior_guidance_scale": 60.0}, "Prior guidance scale is 60.0"),
        ({"task": Task.IMG2IMG, "controlnet": "x/y"}, "A ControlNet can only be used for inpainting here"),
    ],
)
def test_each_new_problem_is_one_sentence(changes, message):
    problems = InpaintJob(model="a/b", **changes).problems()
    assert len(problems) == 1 and message in problems[0]
    assert problems[0].count(". ") == 0 and problems[0].endswith(".")
