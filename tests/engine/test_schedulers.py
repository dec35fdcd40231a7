"""Every named sampler on the tiny SD model: the right class, exact progress, a finite image, recorded."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_studio.core.jobspec import Task
from inpaint_studio.engine.runner import Engine
from inpaint_studio.engine.schedulers import SCHEDULERS, build_scheduler, scheduler_names
from tests.engine.helpers import Events, box_mask, job_for, photo, pixels


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


@pytest.mark.parametrize("name", scheduler_names())
def test_every_sampler_runs_with_exact_progress(engine, tiny_sd_inpaint, name):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    for job in (
        job_for(tiny_sd_inpaint, scheduler=name, steps=3),
        # Strength trims the schedule; second-order samplers (Heun, DPM2) make two calls per step.
        job_for(tiny_sd_inpaint, scheduler=name, steps=4, strength=0.5, task=Task.IMG2IMG),
    ):
        events = Events()
        result = engine.run(job, image, None if job.task is Task.IMG2IMG else mask, on_event=events.append)
        assert events.progress_ok(), name
        assert result.job.scheduler == name
        expected = "PNDMScheduler" if name == "default" else SCHEDULERS[name][0]
        assert result.extra["scheduler"] == expected
        assert np.isfinite(pixels(result.images[0]).astype(float)).all()


def test_sampler_options_come_from_the_models_own_config(engine, tiny_sd_inpaint):
    config = engine.scheduler_config(engine.resolve(str(tiny_sd_inpaint)))
    karras = build_scheduler("DPM++ 2M Karras", config)
    assert karras.config.use_karras_sigmas is True
    assert karras.config.beta_schedule == config["beta_schedule"] == "scaled_linear"
    plain = build_scheduler("DPM++ 2M", config)
    assert plain.config.use_karras_sigmas is False  # the previous choice's overrides do not leak


def test_samplers_change_the_result(engine, tiny_sd_inpaint):
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    euler = engine.run(job_for(tiny_sd_inpaint, scheduler="Euler", steps=3), image, mask)
    ddim = engine.run(job_for(tiny_sd_inpaint, scheduler="DDIM", steps=3), image, mask)
    assert not np.array_equal(pixels(euler.images[0]), pixels(ddim.images[0]))
