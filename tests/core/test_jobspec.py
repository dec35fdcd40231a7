"""The job specification: one clear message per bad value, a concrete seed in every record."""

from __future__ import annotations

import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import Area, ClassicalMethod, InpaintJob, MaskOptions, OutputSize


def test_defaults_are_valid_and_seed_resolves_to_an_integer():
    job = InpaintJob().validate()
    resolved = job.resolved()
    assert job.seed is None and isinstance(resolved.seed, int)
    assert resolved.resolved() is resolved
    assert InpaintJob(seed=5, variants=3).variant_seeds() == [5, 6, 7]
    assert InpaintJob(seed=2**32 - 1, variants=2).variant_seeds() == [2**32 - 1, 0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strength": 0.0}, "Strength is 0.0; it must be above 0 and at most 1."),
        ({"strength": 1.5}, "Strength is 1.5"),
        ({"steps": 0}, "Steps is 0"),
        ({"model": "x", "steps": 3, "strength": 0.2}, "raise the steps to at least 6"),
        ({"guidance_scale": -1}, "Guidance scale is -1"),
        ({"seed": -4}, "Seed -4 is out of range"),
        ({"variants": 0}, "Variants is 0"),
        ({"padding_px": -1}, "Padding is -1 px"),
        ({"resolution": 10}, "Working resolution is 10 px"),
        ({"mask": MaskOptions(feather_px=-2)}, "Feather is -2 px"),
        ({"mask": MaskOptions(grow_px=900)}, "Mask grow/shrink is 900 px"),
        ({"model": " "}, "No model is chosen"),
        ({"output_size": OutputSize.PROCESSED}, "only works with area 'whole'"),
    ],
)
def test_each_bad_value_has_its_own_message(changes, message):
    with pytest.raises(BadInputError, match=message.replace(".", r"\.")):
        InpaintJob(**changes).validate()


def test_all_problems_are_reported_together():
    problems = InpaintJob(strength=2, steps=0, variants=99).problems()
    assert len(problems) == 3


def test_dict_round_trip_and_unknown_keys():
    job = InpaintJob(model="a/b", prompt="cat", seed=3, area=Area.WHOLE, mask=MaskOptions(grow_px=2, feather_px=4))
    data = job.to_dict()
    assert data["area"] == "whole" and data["mask"] == {"grow_px": 2, "feather_px": 4}
    assert InpaintJob.from_dict(data) == job
    with pytest.raises(BadInputError, match="Unknown job setting.*stepz"):
        InpaintJob.from_dict({"stepz": 3})
    with pytest.raises(BadInputError, match="'area' is 'everywhere'; use one of: whole, masked"):
        InpaintJob.from_dict({"area": "everywhere"})


def test_the_classical_method_is_the_models_suffix_or_the_field():
    field = ClassicalMethod.FSR
    assert InpaintJob(classical_method=field).effective_classical_method is field
    assert InpaintJob(model="classic:telea", classical_method=field).effective_classical_method is ClassicalMethod.TELEA
    assert InpaintJob(model=" classic:ns ").effective_classical_method is ClassicalMethod.NAVIER_STOKES
    assert InpaintJob(model="owner/model", classical_method=field).effective_classical_method is field
    for model in ("classic:nope", "classic:"):
        problems = InpaintJob(model=model).problems()
        assert len(problems) == 1 and "classical fill method" in problems[0] and "classic:telea" in problems[0]
        assert problems[0].endswith(".") and "\n" not in problems[0]
        with pytest.raises(BadInputError, match="is unknown; use the model 'classic' or one of: classic:telea"):
            InpaintJob(model=model).effective_classical_method  # noqa: B018
