"""Removal in the studio: the picker's removal rows, "Will run", Remove (Shift+Delete), the large-hole offer and
"Remove, then refine", with a real window, worker thread and an MI-GAN-shaped ONNX network in a laid-out
Hugging Face cache (found by the same background scan a downloaded model is)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from inpaint_studio.core.jobspec import CLASSIC_MODEL, ClassicalMethod
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.engine.catalog import removal_entry
from inpaint_studio.ui.controllers.generation import GenerationController
from inpaint_studio.ui.panels.generate.panel import PREFILL_STRENGTH
from inpaint_studio.ui.window.main_window import MainWindow
from tests.removal_models import build_migan_onnx, hub_cache, use_hub_cache
from tests.ui.test_generation import TIMEOUT_MS, _studio, module_worker, set_mask, wait_candidates  # noqa: F401

SHIFT = Qt.KeyboardModifier.ShiftModifier


@pytest.fixture(scope="module")
def migan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_migan_onnx(tmp_path_factory.mktemp("migan") / "migan_pipeline_v2.onnx")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_hub_cache(tmp_path, monkeypatch)


@pytest.fixture
def studio(qtbot, tmp_path, module_worker, cache) -> Iterator[tuple[MainWindow, GenerationController]]:  # noqa: F811
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window, controller = _studio(qtbot, settings, module_worker)
    yield window, controller
    qtbot.waitUntil(lambda: not module_worker.is_busy, timeout=TIMEOUT_MS)
    window.undo_stack.setClean()
    window.close()
    window.deleteLater()
    QApplication.processEvents()


def install_migan(qtbot, controller: GenerationController, cache: Path, migan_file: Path) -> None:
    entry = removal_entry("migan")
    hub_cache(cache, entry.repo, {entry.file: migan_file})
    picker = controller.panel.models
    picker.refresh_installed()  # the background scan the studio runs after a download
    qtbot.waitUntil(lambda: any(c.reference == "migan" and c.installed for c in picker.choices()), timeout=TIMEOUT_MS)


def test_the_picker_lists_removal_models_with_size_and_licence_first(qtbot, studio) -> None:
    _window, controller = studio
    panel = controller.panel
    rows = {c.reference: c for c in panel.models.choices()}
    assert {"lama", "mat", "migan"} <= set(rows) and all(rows[n].is_removal for n in ("lama", "mat", "migan"))
    panel.select_model("mat")
    info = panel.models.info.text()
    assert info.startswith("Not installed: needs a 0.13 GB download (licence CC BY-NC 4.0, non-commercial")
    assert not panel.models.download_button.isHidden()
    assert not panel.prompt_edit.isEnabled() and not panel.steps_spin.isEnabled()
    assert panel.seed_edit.isEnabled() and panel.variants_spin.isEnabled()  # MAT's fill depends on its seed
    assert panel.engine_label.text() == "Will run: MAT removal, no prompt, once downloaded."
    panel.select_model("migan")
    assert not panel.seed_edit.isEnabled() and not panel.prefill_combo.isVisibleTo(panel)


def test_will_run_says_removal_for_the_default_choice_once_a_removal_model_is_installed(
    qtbot, studio, cache, migan_file
) -> None:
    _window, controller = studio
    panel = controller.panel
    panel.select_model(CLASSIC_MODEL)
    assert panel.engine_label.text().startswith("Will run: the classical fill (auto); for objects larger than spots")
    install_migan(qtbot, controller, cache, migan_file)
    assert panel.engine_label.text().startswith("Will run: MI-GAN removal (installed; choose a fill method")
    panel.method_combo.setCurrentIndex(panel.method_combo.findData(ClassicalMethod.TELEA.value))
    assert panel.engine_label.text() == "Will run: the classical fill (telea)."


def test_generate_on_the_default_choice_and_shift_delete_remove_with_the_installed_network(
    qtbot, studio, cache, migan_file
) -> None:
    window, controller = studio
    install_migan(qtbot, controller, cache, migan_file)
    controller.panel.select_model(CLASSIC_MODEL)
    set_mask(window)
    controller.generate()  # the default choice: MI-GAN runs, not the classical fill
    wait_candidates(qtbot, controller, 1)
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Delete, SHIFT)  # Remove
    wait_candidates(qtbot, controller, 2)
    first, second = controller.candidates.candidates()[:2]
    for candidate in (first, second):
        assert candidate.title == "MI-GAN removal" and candidate.result.model["reference"] == "migan"
    assert np.array_equal(first.pixels, second.pixels)
    entry = controller.apply(second)
    record = GenerationRecord.from_dict(entry.params)
    assert record.extra["removal_network"] == "MI-GAN" and record.seed_used is None and record.job.prompt == ""
    assert entry.title.startswith("MI-GAN removal of a ") and entry.kind == "generate"
    assert controller.panel.seed_edit.text() == ""  # no seed was shown: MI-GAN uses none


def test_the_classical_fill_offers_a_removal_model_for_a_large_hole(qtbot, studio, cache, migan_file) -> None:
    window, controller = studio
    panel = controller.panel
    panel.select_model(CLASSIC_MODEL)
    panel.method_combo.setCurrentIndex(panel.method_combo.findData(ClassicalMethod.NAVIER_STOKES.value))
    set_mask(window, (20, 20, 90, 100))  # 70 px wide at its thinnest
    controller.generate()
    qtbot.waitUntil(lambda: "px thick" in window.message_bar.text(), timeout=TIMEOUT_MS)
    assert window.message_bar.kind() == "info" and window.message_bar.actions_offered() == ["Get MI-GAN"]
    window.message_bar.trigger("Get MI-GAN")
    assert panel.model_reference() == "migan" and not panel.models.download_button.isHidden()
    install_migan(qtbot, controller, cache, migan_file)
    panel.select_model(CLASSIC_MODEL)
    panel.method_combo.setCurrentIndex(panel.method_combo.findData(ClassicalMethod.NAVIER_STOKES.value))
    controller.generate()
    qtbot.waitUntil(lambda: window.message_bar.actions_offered() == ["Use MI-GAN"], timeout=TIMEOUT_MS)
    # A small spot is the classical fill's case: no offer.
    window.message_bar.dismiss()
    set_mask(window, (60, 60, 70, 68))
    controller.generate()
    wait_candidates(qtbot, controller, 3)
    assert "px thick" not in window.message_bar.text()


def test_remove_then_refine_in_the_panel(qtbot, studio, tiny_sd_inpaint, cache, migan_file) -> None:
    window, controller = studio
    panel = controller.panel
    install_migan(qtbot, controller, cache, migan_file)
    assert panel.models.add_local_model(str(tiny_sd_inpaint))
    assert panel.prefill_combo.isVisibleTo(panel) and panel.model.job.strength == 1.0
    panel.prefill_combo.setCurrentIndex(panel.prefill_combo.findData("migan"))
    panel.prefill_combo.activated.emit(panel.prefill_combo.currentIndex())  # what a user's choice sends
    assert panel.model.job.prefill == "migan" and panel.model.job.strength == PREFILL_STRENGTH
    panel.prompt_edit.setPlainText("a stone wall")
    panel.steps_spin.setValue(4)
    name = Path(tiny_sd_inpaint).name
    assert panel.engine_label.text() == f"Will run: MI-GAN removal, then {name}, 4 steps at strength 0.75."
    set_mask(window)
    controller.generate()
    wait_candidates(qtbot, controller, 1)
    result = controller.candidates.candidates()[0].result
    assert result.extra["prefill"]["removal_network"] == "MI-GAN" and result.job.prefill == "migan"
