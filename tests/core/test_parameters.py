"""The A1111 "parameters" text: formatting, parsing, mapping onto a job, and the round trip."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inpaint_studio.core.jobspec import Area, InpaintJob, MaskOptions
from inpaint_studio.core.parameters import (
    NEGATIVE_PREFIX,
    format_parameters,
    is_settings_line,
    job_overrides_from_parameters,
    looks_like_parameters,
    parse_parameters,
)

JOB = InpaintJob(
    model="stable-diffusion-inpainting",
    prompt="a cat on a bench",
    negative_prompt="blurry",
    steps=30,
    scheduler="DPM++ 2M Karras",
    guidance_scale=7.5,
    strength=0.75,
    mask=MaskOptions(feather_px=8),
    padding_px=64,
)


def fmt(job: InpaintJob = JOB, **kw: object) -> str:
    args: dict = {"width": 512, "height": 512, "seed": 1234, "model_name": "stable-diffusion-inpainting"}
    args.update(kw)
    return format_parameters(job, **args)


def test_format_matches_the_a1111_layout() -> None:
    assert fmt() == (
        "a cat on a bench\n"
        "Negative prompt: blurry\n"
        "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 1234, Size: 512x512, "
        "Model: stable-diffusion-inpainting, Denoising strength: 0.75, Mask blur: 8, "
        "Inpaint area: Only masked, Masked area padding: 64"
    )


def test_format_omits_empty_negative_prompt() -> None:
    text = fmt(JOB.replace(negative_prompt=""))
    assert NEGATIVE_PREFIX not in text
    assert text.startswith("a cat on a bench\nSteps: 30, ")


def test_format_with_empty_prompts_is_the_settings_line() -> None:
    text = fmt(JOB.replace(prompt="", negative_prompt=""))
    assert "\n" not in text and text.startswith("Steps: 30")
    assert parse_parameters(text)["prompt"] == ""


def test_format_whole_picture_and_extra() -> None:
    text = fmt(JOB.replace(area=Area.WHOLE), extra={"Version": "inpaint-studio 0.1", "Variant": 2, "Steps": 40})
    last = text.split("\n")[-1]
    assert "Inpaint area: Whole picture" in last
    assert last.startswith("Steps: 40, ")  # an extra with a standard key replaces it in place
    assert last.endswith("Version: inpaint-studio 0.1, Variant: 2")


def test_values_with_commas_quotes_and_colons_are_quoted_like_a1111() -> None:
    text = fmt(model_name='my, "best": model', extra={"Lora hashes": "a: 1, b: 2"})
    last = text.split("\n")[-1]
    assert 'Model: "my, \\"best\\": model"' in last
    assert 'Lora hashes: "a: 1, b: 2"' in last
    parsed = parse_parameters(text)
    assert parsed["Model"] == 'my, "best": model' and parsed["Lora hashes"] == "a: 1, b: 2"


@pytest.mark.parametrize("key", ["", "x", "has:colon", "trailing ", " leading", "comma,key", "prompt"])
def test_bad_extra_keys_are_refused(key: str) -> None:
    with pytest.raises(ValueError, match="cannot be stored"):
        fmt(extra={key: 1})


def test_parse_a1111_text() -> None:
    text = (
        "masterpiece, a cat\n"
        "on a bench, (sunset:1.2)\n"
        "Negative prompt: blurry, lowres\n"
        "bad hands\n"
        "Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 3391304437, Size: 512x768, "
        'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "add_detail: 7c6bad76eb54", '
        "Version: v1.6.0"
    )
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "masterpiece, a cat\non a bench, (sunset:1.2)"
    assert parsed["negative_prompt"] == "blurry, lowres\nbad hands"
    assert parsed["Steps"] == "20" and parsed["Seed"] == "3391304437" and parsed["Size"] == "512x768"
    assert parsed["Sampler"] == "DPM++ 2M Karras" and parsed["Model hash"] == "6ce0161689"
    assert parsed["Lora hashes"] == "add_detail: 7c6bad76eb54" and parsed["Version"] == "v1.6.0"


def test_parse_without_negative_prompt_or_settings() -> None:
    assert parse_parameters("just a prompt\nover two lines") == {
        "prompt": "just a prompt\nover two lines",
        "negative_prompt": "",
    }
    parsed = parse_parameters("a dog\nSteps: 5, Sampler: Euler a, CFG scale: 6")
    assert parsed["prompt"] == "a dog" and parsed["negative_prompt"] == "" and parsed["Sampler"] == "Euler a"
    assert parse_parameters("") == {"prompt": "", "negative_prompt": ""}


def test_parse_crlf_and_trailing_blank_lines() -> None:
    text = "a dog\r\nNegative prompt: cat\r\nSteps: 5, Sampler: Euler a, CFG scale: 6\r\n\r\n"
    parsed = parse_parameters(text)
    assert parsed["prompt"] == "a dog" and parsed["negative_prompt"] == "cat" and parsed["CFG scale"] == "6"


def test_parse_malformed_quoted_value_is_kept_as_text() -> None:
    parsed = parse_parameters('p\nSteps: 5, Sampler: "bad \\q escape", CFG scale: 6')
    assert parsed["Sampler"] == '"bad \\q escape"'


def test_settings_line_detection() -> None:
    assert is_settings_line("Steps: 5, Sampler: Euler, CFG scale: 7")
    assert not is_settings_line("a cat: cute, b: 2")
    assert looks_like_parameters("x\nSteps: 5, Sampler: Euler, CFG scale: 7\n")
    assert not looks_like_parameters("Make: Canon, Model: R5, Lens: 50mm")
    assert not looks_like_parameters("OLYMPUS DIGITAL CAMERA")


def test_job_overrides_types() -> None:
    overrides = job_overrides_from_parameters(parse_parameters(fmt()))
    assert overrides == {
        "prompt": "a cat on a bench",
        "negative_prompt": "blurry",
        "steps": 30,
        "guidance_scale": 7.5,
        "seed": 1234,
        "strength": 0.75,
        "scheduler": "DPM++ 2M Karras",
        "padding_px": 64,
        "area": Area.MASKED,
    }
    assert isinstance(overrides["steps"], int) and isinstance(overrides["guidance_scale"], float)
    job = InpaintJob(model="stable-diffusion-inpainting").replace(**overrides).validate()
    assert job.seed == 1234


def test_job_overrides_skip_unknown_and_malformed() -> None:
    parsed = {
        "prompt": "p",
        "Steps": "lots",
        "CFG scale": "nan",
        "Seed": "-1",  # A1111's "random"
        "Denoising strength": "1.5",
        "Masked area padding": "12.5",
        "Inpaint area": "Somewhere",
        "Sampler": "  ",
        "Hires upscale": "2",
        "Size": "512x512",
    }
    assert job_overrides_from_parameters(parsed) == {"prompt": "p"}


def test_job_overrides_accept_whole_floats_and_whole_picture() -> None:
    overrides = job_overrides_from_parameters(
        {"Steps": "30.0", "CFG scale": "7", "Inpaint area": "whole picture", "Seed": " 42 "}
    )
    assert overrides == {"steps": 30, "guidance_scale": 7.0, "area": Area.WHOLE, "seed": 42}


# ---- round trip ------------------------------------------------------------------------------------------
def prompt_text() -> st.SearchStrategy[str]:
    # Bias towards the characters that matter to the format, on top of arbitrary text.
    tricky = st.sampled_from(["\n", "\r", "\r\n", ",", ":", '"', "\\", " ", "\t", "Steps: 1, a: 2, b: 3"])
    return st.lists(st.one_of(st.text(max_size=12), tricky), max_size=8).map("".join)


def no_negative_marker_line(text: str) -> bool:
    return not any(line.startswith(NEGATIVE_PREFIX) for line in text.split("\n"))


@settings(max_examples=300, deadline=None)
@given(
    prompt=prompt_text().filter(no_negative_marker_line),
    negative=prompt_text(),
    scheduler=prompt_text(),
    model_name=prompt_text(),
    note=prompt_text(),
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(1, 500),
    guidance=st.floats(0, 50, allow_nan=False),
    strength=st.floats(0.001, 1.0, allow_nan=False),
    width=st.integers(1, 10_000),
    height=st.integers(1, 10_000),
)
def test_round_trip_property(
    prompt: str,
    negative: str,
    scheduler: str,
    model_name: str,
    note: str,
    seed: int,
    steps: int,
    guidance: float,
    strength: float,
    width: int,
    height: int,
) -> None:
    job = InpaintJob(
        prompt=prompt,
        negative_prompt=negative,
        scheduler=scheduler,
        steps=steps,
        guidance_scale=guidance,
        strength=strength,
    )
    text = format_parameters(job, width=width, height=height, seed=seed, model_name=model_name, extra={"Note": note})
    parsed = parse_parameters(text)
    assert parsed["prompt"] == prompt
    assert parsed["negative_prompt"] == negative
    assert parsed["Sampler"] == scheduler
    assert parsed["Model"] == model_name
    assert parsed["Note"] == note
    assert parsed["Size"] == f"{width}x{height}"
    assert looks_like_parameters(text)

    overrides = job_overrides_from_parameters(parsed)
    assert overrides["steps"] == steps and overrides["seed"] == seed
    assert overrides["guidance_scale"] == guidance and overrides["strength"] == strength
    assert overrides.get("scheduler", "") == (scheduler if scheduler.strip() else "")
    rebuilt = InpaintJob().replace(**overrides)  # from defaults: every value must come from the text
    expected = job.replace(seed=seed)
    if not scheduler.strip():  # a blank sampler name is skipped, so the default stays
        expected = expected.replace(scheduler=rebuilt.scheduler)
    assert rebuilt == expected
