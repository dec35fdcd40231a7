"""Every Generate setting survives the ways it travels in the studio: "Use these parameters", a restart.

(Reopening a project is in tests/ui/studio/test_projects.py.) One test per job field, with the example
values of tests/job_examples.py, through the real panel widgets and controller.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from inpaint_studio.core.generation_settings import get_path, job_field_paths
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.core.user_models import UserModels
from inpaint_studio.ui.background import BackgroundRunner
from inpaint_studio.ui.panels.generate.panel import GeneratePanel, hidden_settings
from inpaint_studio.ui.settings import AppSettings, load_generation_settings, remember_generation_settings
from inpaint_studio.ui.window.composition import EngineOptions
from inpaint_studio.ui.window.main_window import MainWindow
from tests.job_examples import NON_DEFAULT, job_with, job_with_every_field

FIELDS = list(job_field_paths())


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory) -> Iterator[MainWindow]:
    store = QSettings(str(tmp_path_factory.mktemp("settings") / "s.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=store, engine=EngineOptions(warm_up_delay_ms=None))
    yield win
    win.undo_stack.setClean()
    win.close()
    win.deleteLater()


def panel_on(settings: QSettings) -> GeneratePanel:
    """A Generate panel as the window composes it, its model saved to `settings` as it changes."""
    app_settings = AppSettings(settings)
    model = load_generation_settings(app_settings)
    remember_generation_settings(model, app_settings)
    return GeneratePanel(model, UserModels.load(), BackgroundRunner())


@pytest.mark.parametrize("path", FIELDS)
def test_use_these_parameters_keeps_the_field(window: MainWindow, path: str) -> None:
    batch = job_with(path).replace(seed=job_with(path).seed or 5)
    record = GenerationRecord(batch.replace(variants=1), variant=batch.variants - 1, batch_size=batch.variants)
    entry = window.generation.recorder.history.add("generate", path, params=record.to_dict())
    window.generation.settings_model.load_job(InpaintJob(seed=1))  # something else shown before
    window.generation.use_parameters(entry.id)
    panel_job = window.generation.panel.job()
    assert get_path(panel_job, path) == NON_DEFAULT[path]
    assert panel_job == record.submitted_job  # and nothing else changed either


@pytest.mark.parametrize("path", FIELDS)
def test_a_restart_keeps_the_field(qtbot, tmp_path: Path, path: str) -> None:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    first = panel_on(settings)
    qtbot.addWidget(first)
    first.model.set(path, NON_DEFAULT[path])
    settings.sync()
    again = panel_on(QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(again)
    assert get_path(again.model.job, path) == NON_DEFAULT[path]


def test_settings_without_a_widget_are_listed_and_reset(qtbot, tmp_path: Path) -> None:
    panel = panel_on(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(panel)
    panel.load_job(job_with_every_field())
    hidden = hidden_settings(panel.model.job)
    assert {"task", "controlnet", "refiner", "speed.attention"} <= set(hidden)
    text = panel.extras_label.text()
    assert panel.extras_label.isVisibleTo(panel) and "controlnet" in text and "img2img" in text
    panel.extras_reset.click()
    assert hidden_settings(panel.model.job) == {} and not panel.extras_label.isVisibleTo(panel)
    assert panel.model.job.prompt == NON_DEFAULT["prompt"]  # what the panel shows is kept


def test_widgets_and_model_stay_in_step(qtbot, tmp_path: Path) -> None:
    panel = panel_on(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(panel)
    panel.steps_spin.setValue(44)
    panel.prompt_edit.setPlainText("  a cat \n")
    assert panel.model.job.steps == 44 and panel.model.job.prompt == "a cat"
    panel.model.set("mask.feather_px", 21)
    assert panel.feather_spin.value() == 21
    panel.model.set("classical_method", NON_DEFAULT["classical_method"])
    assert panel.method_combo.currentData() == NON_DEFAULT["classical_method"].value
