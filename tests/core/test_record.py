"""The generation record: one shape for what made a result, and the records earlier versions wrote."""

from __future__ import annotations

import json

import pytest

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.history import History
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.record import VERSION, GenerationRecord, record_of
from tests.job_examples import job_with_every_field

# What the studio wrote into a history entry before the record type (ui/generation_controller.py,
# generation_params, until December): the batch's job with its first seed, the variant's seed beside it.
OLD_PARAMS = {
    "job": {**InpaintJob(prompt="a red apple", steps=2, seed=11, variants=2, padding_px=8).to_dict()},
    "seed": 12,
    "variant": 1,
    "seeds": [11, 12],
    "model": {"reference": "/models/tiny", "source": "folder", "family": "sd_inpaint", "path": "/models/tiny"},
    "model_name": "tiny",
    "device": "cpu",
    "device_name": "CPU (2 threads of 2)",
    "region": [10, 20, 74, 84],
    "extra": {"working_size": [64, 64], "pipeline": "StableDiffusionInpaintPipeline"},
    "rerun_of": None,
    "snapshot_ms": 1.5,  # the recorder's own measurement, kept beside the record
}


def test_a_record_written_by_the_previous_version_still_reads() -> None:
    record = GenerationRecord.from_dict(OLD_PARAMS)
    assert record.seed == 12 and record.job.variants == 1 and (record.variant, record.batch_size) == (1, 2)
    assert record.job.prompt == "a red apple" and record.model_name == "tiny" and record.region == (10, 20, 74, 84)
    assert record.submitted_job == InpaintJob(prompt="a red apple", steps=2, seed=12, variants=2, padding_px=8)
    assert record.device_name == "CPU (2 threads of 2)" and record.extra["pipeline"] == "StableDiffusionInpaintPipeline"


def test_round_trip_keeps_every_field_and_stores_the_seed_once() -> None:
    job = job_with_every_field().replace(variants=1)
    record = GenerationRecord(job, {"source": "hub", "reference": "a/b"}, "cuda:0", "RTX", 2, 3, (1, 2, 3, 4), 2.5)
    data = json.loads(json.dumps(record.to_dict()))
    assert data["record"] == VERSION and "seed" not in data and "seeds" not in data and "model_name" not in data
    assert GenerationRecord.from_dict(data) == record
    assert record.model_name == "a/b" and record.submitted_job.variants == 3


def test_the_history_panel_and_replay_read_entries_through_it() -> None:
    history = History()
    entry = history.add("generate", "a red apple", params=OLD_PARAMS)
    layer = history.add("layer", "Rename", params={"x": 1})
    assert record_of(entry) is not None and record_of(entry).seed == 12  # type: ignore[union-attr]
    assert record_of(layer) is None


@pytest.mark.parametrize(
    "damage",
    [
        {"job": None},
        {"job": {"steps": "two"}},
        {"variant": 5},
        {"variant": "1"},
        {"record": 99},
        {"job": {**OLD_PARAMS["job"], "seed": None}, "seed": None},
    ],
)
def test_damaged_records_are_one_sentence(damage: dict) -> None:
    with pytest.raises(BadInputError):
        GenerationRecord.from_dict({**OLD_PARAMS, **damage})
    entry = History().add("generate", "x", params={**OLD_PARAMS, **damage})
    assert record_of(entry) is None
