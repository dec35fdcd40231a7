"""The Generate panel's settings model: every job field and panel switch survives its plain-data round trip."""

from __future__ import annotations

import json

import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.generation_settings import ALL, GenerationSettings, job_field_paths
from inpaint_studio.core.jobspec import ClassicalMethod, InpaintJob
from tests.job_examples import NON_DEFAULT, job_with, job_with_every_field


def through_json(settings: GenerationSettings) -> GenerationSettings:
    return GenerationSettings.from_dict(json.loads(json.dumps(settings.to_dict())))


@pytest.mark.parametrize("path", list(job_field_paths()))
def test_every_job_field_survives_set_and_reload(path: str) -> None:
    settings = GenerationSettings()
    heard: list[str] = []
    settings.subscribe(heard.append)
    settings.set(path, NON_DEFAULT[path])
    assert heard == [path] and settings.get(path) == NON_DEFAULT[path]
    reloaded = through_json(settings)
    assert reloaded.get(path) == NON_DEFAULT[path]
    assert reloaded.job == job_with(path)


@pytest.mark.parametrize("flag", ["seed_locked", "live_preview", "paint_preview"])
def test_panel_switches_survive_reload(flag: str) -> None:
    settings = GenerationSettings()
    settings.set(flag, not settings.get(flag))
    assert through_json(settings).get(flag) == settings.get(flag)


def test_setting_an_equal_value_is_silent_and_load_job_says_all() -> None:
    settings = GenerationSettings()
    heard: list[str] = []
    settings.subscribe(heard.append)
    settings.set("steps", InpaintJob().steps)
    assert heard == []
    settings.load_job(job_with_every_field(), lock_seed=True)
    assert heard == [ALL] and settings.job == job_with_every_field() and settings.seed_locked


def test_the_job_to_run_has_a_seed_only_when_it_is_locked() -> None:
    settings = GenerationSettings(InpaintJob(seed=7))
    assert settings.job_to_run().seed is None
    settings.set("seed_locked", True)
    assert settings.job_to_run().seed == 7


def test_a_classic_reference_with_a_method_becomes_the_method() -> None:
    settings = GenerationSettings()
    settings.set("model", "classic:ns")
    assert (settings.job.model, settings.job.classical_method) == ("classic", ClassicalMethod.NAVIER_STOKES)
    assert GenerationSettings(InpaintJob(model="classic:telea")).job.classical_method is ClassicalMethod.TELEA


def test_older_panel_values_kept_the_seed_as_text() -> None:
    restored = GenerationSettings.from_parts({"prompt": "x"}, {"seed_text": "9", "seed_locked": True})
    assert restored.job.seed == 9 and restored.seed_locked and restored.job.prompt == "x"
    unlocked = GenerationSettings.from_parts({}, {"seed_text": ""})
    assert unlocked.job.seed is None and not unlocked.seed_locked


def test_damaged_data_is_one_sentence() -> None:
    with pytest.raises(BadInputError):
        GenerationSettings.from_dict({"job": {"steps": "many"}})
    with pytest.raises(BadInputError):
        GenerationSettings.from_dict(["not", "a", "table"])  # type: ignore[arg-type]
