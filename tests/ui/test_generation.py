"""The generation half of the studio, end to end: real window, real worker thread, real tiny models."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from inpaint_studio.core.jobspec import CLASSIC_MODEL, InpaintJob
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.core.results import result_layer_pixels
from inpaint_studio.core.user_models import UserModels
from inpaint_studio.engine.model_list import CLASSIC_LABEL
from inpaint_studio.ui.background import BackgroundRunner
from inpaint_studio.ui.controllers.generation import GenerationController
from inpaint_studio.ui.document.commands import RegionCommand, mask_change
from inpaint_studio.ui.engine_thread.worker import EngineWorker
from inpaint_studio.ui.panels.generate.panel import GeneratePanel
from inpaint_studio.ui.settings import AppSettings, load_generation_settings, remember_generation_settings
from inpaint_studio.ui.window.composition import EngineOptions
from inpaint_studio.ui.window.main_window import MainWindow

TIMEOUT_MS = 60_000
W, H = 160, 120
MASK_BOX = (50, 40, 100, 80)
CTRL = Qt.KeyboardModifier.ControlModifier


# ----------------------------------------------------------------------------------------------------
# fixtures
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def module_worker(qapp, shared_engine) -> Iterator[EngineWorker]:
    worker = EngineWorker(engine_factory=lambda: shared_engine)
    yield worker
    assert worker.shutdown(10.0)


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


def photo() -> Image.Image:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack([x / W * 220, y / H * 220, (x + y) / (W + H) * 255], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))


def _studio(
    qtbot, settings: QSettings, worker: EngineWorker | None, **kwargs
) -> tuple[MainWindow, GenerationController]:
    # The window's controller gets a worker that shares the session's engine.
    window = MainWindow(settings=settings, engine=EngineOptions(worker=worker, warm_up_delay_ms=None, **kwargs))
    controller = window.generation
    window.resize(1300, 850)
    window.show()
    qtbot.waitExposed(window)
    window.open_image(photo(), "photo")
    window.canvas.set_view(1.0, QPointF(0, 0))
    return window, controller


@pytest.fixture
def studio(qtbot, settings, module_worker) -> Iterator[tuple[MainWindow, GenerationController]]:
    window, controller = _studio(qtbot, settings, module_worker)
    yield window, controller
    qtbot.waitUntil(lambda: not module_worker.is_busy, timeout=TIMEOUT_MS)
    window.undo_stack.setClean()
    window.close()
    window.deleteLater()
    QApplication.processEvents()


def set_mask(window: MainWindow, box: tuple[int, int, int, int] = MASK_BOX) -> None:
    mask = np.zeros((H, W), np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    command = mask_change(window.document, mask, "Rectangle")
    if command is not None:
        window.undo_stack.push(command)


def use_tiny_model(controller: GenerationController, model: Path, **values) -> None:
    panel = controller.panel
    assert panel.models.add_local_model(str(model))
    panel.prompt_edit.setPlainText(values.get("prompt", "a red apple"))
    panel.negative_edit.setPlainText(values.get("negative", "blurry"))
    panel.steps_spin.setValue(values.get("steps", 2))
    panel.variants_spin.setValue(values.get("variants", 1))
    panel.padding_spin.setValue(8)
    panel.live_preview_check.setChecked(values.get("preview", False))
    if "seed" in values:
        panel.seed_edit.setText(str(values["seed"]))
        panel.seed_lock.setChecked(True)


def ctrl_enter(window: MainWindow) -> None:
    QTest.keyClick(window.canvas, Qt.Key.Key_Return, CTRL)


def wait_candidates(qtbot, controller: GenerationController, count: int) -> None:
    qtbot.waitUntil(lambda: len(controller.candidates.candidates()) >= count, timeout=TIMEOUT_MS)


# ----------------------------------------------------------------------------------------------------
# generation, candidates, apply, undo, history
# ----------------------------------------------------------------------------------------------------


def test_tiny_model_generation_gives_one_candidate_per_variant_and_apply_is_undoable(qtbot, studio, tiny_sd_inpaint):
    window, controller = studio
    set_mask(window)
    use_tiny_model(controller, tiny_sd_inpaint, variants=2, seed=11, preview=True)
    previews: list[object] = []
    controller.worker.job_progress.connect(lambda e: previews.append(e.preview))
    ctrl_enter(window)
    wait_candidates(qtbot, controller, 2)
    candidates = controller.candidates.candidates()
    assert [c.seed for c in candidates] == [11, 12]
    assert window.engine_label.text().startswith("Engine: CPU")  # the device the engine reported
    assert any(p is not None for p in previews)  # live preview images arrived
    assert controller.panel.seed_edit.text() == "11"
    # Clicking the second thumbnail previews it over the canvas; the document is untouched.
    layers_before = len(window.document.layers)
    item = controller.candidates.list.item(1)
    rect = controller.candidates.list.visualItemRect(item)
    QTest.mouseClick(controller.candidates.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert controller.overlay.showing and controller.overlay.key == candidates[1].key
    assert len(window.document.layers) == layers_before
    # Enter applies it as a new layer named after the prompt.
    QTest.keyClick(controller.candidates.list, Qt.Key.Key_Return)
    assert [la.name for la in window.document.layers] == ["Background", "a red apple"]
    layer = window.document.layers[-1]
    assert layer.kind == "result" and not controller.overlay.showing
    assert np.array_equal(window.document.composite()[..., :3], np.asarray(candidates[1].result.images[1])[..., :3])
    entry = controller.recorder.history.head
    assert entry.kind == "generate" and layer.metadata["history_id"] == entry.id
    params = entry.params
    record = GenerationRecord.from_dict(params)
    assert record.seed == 12 and record.variant == 1 and record.batch_size == 2 and record.device == "cpu"
    assert record.model_name == Path(tiny_sd_inpaint).name
    job = params["job"]
    assert (job["prompt"], job["negative_prompt"], job["steps"], job["scheduler"]) == (
        "a red apple",
        "blurry",
        2,
        "default",
    )
    assert {"strength", "guidance_scale", "area", "padding_px"} <= set(job)
    details = controller.history_panel
    details.select(entry.id)
    text = details.details.toPlainText()
    for expected in ("a red apple", "blurry", "12", "Strength", "Guidance", "Sampler", "masked region", "CPU"):
        assert expected in text
    # Ctrl+Z removes the layer; the entry stays in history (undone), the head moves back.
    details.back_to_current()
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, CTRL)
    assert [la.name for la in window.document.layers] == ["Background"]
    history = controller.recorder.history
    assert history.head_id == entry.parent_id and history.status(entry.id) == "undone"


def test_classical_fill_through_the_worker_needs_no_model(qtbot, studio):
    window, controller = studio
    assert controller.panel.model_reference() == CLASSIC_MODEL
    set_mask(window)
    before = window.document.composite()
    ctrl_enter(window)
    wait_candidates(qtbot, controller, 1)
    item = controller.candidates.list.item(0)
    rect = controller.candidates.list.visualItemRect(item)
    viewport = controller.candidates.list.viewport()
    # A real double-click is press, release, then the double-click event (QTest sends only the last).
    QTest.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    QTest.mouseDClick(viewport, Qt.MouseButton.LeftButton, pos=rect.center())
    after = window.document.composite()
    assert window.document.layers[-1].name == "Classical fill"
    feather = controller.panel.feather_spin.value()
    left, top, right, bottom = MASK_BOX
    outside = np.ones((H, W), bool)
    outside[top - feather - 1 : bottom + feather + 1, left - feather - 1 : right + feather + 1] = False
    assert np.array_equal(after[outside], before[outside])
    assert not np.array_equal(
        after[top + 5 : bottom - 5, left + 5 : right - 5], before[top + 5 : bottom - 5, left + 5 : right - 5]
    )
    assert controller.recorder.history.head.kind == "classic"


def test_escape_cancels_mid_run_and_the_next_job_works(qtbot, studio, tiny_sd_inpaint):
    window, controller = studio
    set_mask(window)
    use_tiny_model(controller, tiny_sd_inpaint, steps=300, seed=1)
    with qtbot.waitSignal(controller.worker.job_progress, timeout=TIMEOUT_MS):
        ctrl_enter(window)
    assert controller.panel.progress_bar.format().startswith("Step ")
    with qtbot.waitSignal(controller.worker.job_cancelled, timeout=TIMEOUT_MS):
        QTest.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert window.message_bar.kind() == "info" and "Cancelled" in window.message_bar.text()
    assert controller.candidates.candidates() == []
    controller.panel.steps_spin.setValue(2)
    ctrl_enter(window)
    wait_candidates(qtbot, controller, 1)


def test_generate_again_while_running_queues_three_jobs_in_order(qtbot, studio, tiny_sd_inpaint):
    window, controller = studio
    set_mask(window)
    use_tiny_model(controller, tiny_sd_inpaint, seed=100)
    ids = []
    for seed in (100, 200, 300):
        controller.panel.seed_edit.setText(str(seed))
        ids.append(controller.generate())
    assert controller.worker.current_id == ids[0] and controller.worker.pending_ids() == ids[1:]
    assert controller.panel.generate_button.text() == "Queue another"
    wait_candidates(qtbot, controller, 3)
    assert [c.seed for c in controller.candidates.candidates()] == [100, 200, 300]
    qtbot.waitUntil(lambda: not controller.worker.is_busy, timeout=TIMEOUT_MS)
    assert controller.panel.generate_button.text() == "Generate"


def test_errors_show_in_the_message_bar_and_the_next_job_works(qtbot, studio, tiny_sd_inpaint, tmp_path):
    window, controller = studio
    # Empty mask: caught on the UI thread.
    ctrl_enter(window)
    assert window.message_bar.kind() == "error" and "mask is empty" in window.message_bar.text()
    # A model that disappeared after it was added: reported by the worker.
    set_mask(window)
    gone = tmp_path / "gone-model"
    shutil.copytree(tiny_sd_inpaint, gone)
    use_tiny_model(controller, gone, seed=1)
    shutil.rmtree(gone)
    with qtbot.waitSignal(controller.worker.job_failed, timeout=TIMEOUT_MS):
        ctrl_enter(window)
    message = window.message_bar.text()
    assert "gone-model" in message and message.rstrip().endswith(".")
    # A mask that the job's shrink empties: the engine's own check, through the worker.
    window.message_bar.dismiss()
    controller.panel.select_model(str(tiny_sd_inpaint))
    controller.panel.grow_spin.setValue(-60)
    with qtbot.waitSignal(controller.worker.job_failed, timeout=TIMEOUT_MS):
        ctrl_enter(window)
    assert "mask is empty" in window.message_bar.text()
    # The app is still usable: the next job succeeds.
    controller.panel.grow_spin.setValue(0)
    ctrl_enter(window)
    wait_candidates(qtbot, controller, 1)
    assert controller.candidates.candidates()[0].seed == 1


def test_enter_applies_on_the_canvas_but_types_a_newline_in_the_prompt(qtbot, studio, tiny_sd_inpaint):
    window, controller = studio
    set_mask(window)
    use_tiny_model(controller, tiny_sd_inpaint, seed=4)
    # Ctrl+Enter works from the prompt field too (the window-wide shortcut).
    controller.panel.prompt_edit.setFocus()
    QTest.keyClick(controller.panel.prompt_edit, Qt.Key.Key_Return, CTRL)
    wait_candidates(qtbot, controller, 1)
    assert controller.overlay.showing  # the first result of a job is previewed
    QTest.keyClick(controller.panel.prompt_edit, Qt.Key.Key_Return)
    assert controller.panel.prompt_edit.toPlainText().count("\n") == 1
    assert len(window.document.layers) == 1
    window.canvas.setFocus()
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert len(window.document.layers) == 2


def test_history_click_shows_the_old_state_and_branch_keeps_later_entries(qtbot, studio):
    window, controller = studio
    set_mask(window)
    ctrl_enter(window)
    wait_candidates(qtbot, controller, 1)
    fill = controller.apply(controller.candidates.candidates()[0])
    # A paint stroke on a new layer: an entry of kind "paint".
    window.layers_panel.add_paint_layer()
    layer_id = window.document.active_layer_id
    window.select_tool("paint_brush")
    window.tool_settings.set_color((255, 0, 0))
    QTest.mousePress(window.canvas, Qt.MouseButton.LeftButton, pos=QPoint(20, 20))
    QTest.mouseMove(window.canvas, QPoint(30, 22))
    QTest.mouseRelease(window.canvas, Qt.MouseButton.LeftButton, pos=QPoint(30, 22))
    history = controller.recorder.history
    stroke = history.head
    assert stroke.kind == "paint" and window.document.layer(layer_id).pixels[20, 25, 3] > 0
    kinds = [e.kind for e in history]
    assert kinds == ["open", "mask", "classic", "layer", "paint"]

    def canvas_pixel(x: int, y: int) -> tuple[int, int, int]:
        color = window.canvas.grab().toImage().pixelColor(x, y)
        return color.red(), color.green(), color.blue()

    assert canvas_pixel(25, 20)[0] > 200  # the red stroke is on screen
    controller.history_panel.select(fill.id)
    assert controller.overlay.showing and controller.overlay.key == fill.id
    assert canvas_pixel(25, 20)[0] < 200  # the state before the stroke is shown instead
    controller.history_panel.back_to_current()
    assert canvas_pixel(25, 20)[0] > 200
    # Branch from the fill: the document becomes that state, undoably; later entries stay.
    controller.history_panel.select(fill.id)
    controller.history_panel.branch_button.click()
    assert [la.name for la in window.document.layers] == ["Background", "Classical fill"]
    assert history.head_id == fill.id and stroke.id in history.entries
    set_mask(window, (10, 10, 30, 30))  # a new edit: the stroke's line becomes a side branch
    assert history.head.parent_id == fill.id
    assert history.status(stroke.id) == "branch" and history.lanes()[stroke.id] > 0
    controller.history_panel.refresh()
    labels = [controller.history_panel.list.item(i).text() for i in range(controller.history_panel.list.count())]
    assert len(labels) == len(history) == 6  # nothing was lost (branching itself adds no entry)
    # Undo of the branch steps brings the stroke back.
    window.undo_stack.undo()
    window.undo_stack.undo()
    assert window.document.layer(layer_id).pixels[20, 25, 3] > 0
    assert history.head_id == stroke.id


def test_use_parameters_rerun_and_more_like_this(qtbot, studio, tiny_sd_inpaint):
    window, controller = studio
    set_mask(window)
    use_tiny_model(controller, tiny_sd_inpaint, seed=21, prompt="a blue door")
    ctrl_enter(window)
    wait_candidates(qtbot, controller, 1)
    entry = controller.apply(controller.candidates.candidates()[0])
    # Change the panel, then load the entry's parameters back.
    controller.panel.prompt_edit.setPlainText("something else")
    controller.panel.seed_lock.setChecked(False)
    controller.use_parameters(entry.id)
    job = controller.panel.job()
    assert job.prompt == "a blue door" and job.seed == 21 and job.model == str(tiny_sd_inpaint)
    # Re-run: same input, new seed.
    controller.rerun(entry.id)
    wait_candidates(qtbot, controller, 2)
    rerun = controller.candidates.candidates()[1]
    assert rerun.seed != 21 and rerun.rerun_of == entry.id
    assert np.array_equal(rerun.image, controller.candidates.candidates()[0].image)
    # More like this: the same job with new seeds, on the candidate's input.
    controller.more_like_this(rerun)
    wait_candidates(qtbot, controller, 3)
    assert controller.candidates.candidates()[2].result.job.prompt == "a blue door"


def test_inpaint_on_a_result_records_the_chain(qtbot, studio):
    window, controller = studio
    set_mask(window)
    ctrl_enter(window)
    wait_candidates(qtbot, controller, 1)
    first = controller.apply(controller.candidates.candidates()[0])
    set_mask(window, (60, 50, 90, 70))  # inside the first fill
    ctrl_enter(window)
    wait_candidates(qtbot, controller, 2)
    second = controller.apply(controller.candidates.candidates()[1])
    assert second.derived_from == (first.id,)
    controller.history_panel.refresh()
    label = controller.history_panel.list.item(controller.history_panel.list.count() - 1).text()
    assert f"from #{first.id}" in label


def test_window_keeps_painting_while_a_generation_runs(qtbot, studio, tiny_sd_inpaint):
    window, controller = studio
    set_mask(window)
    use_tiny_model(controller, tiny_sd_inpaint, steps=300, seed=2)
    with qtbot.waitSignal(controller.worker.job_progress, timeout=TIMEOUT_MS):
        controller.generate()
    window.select_tool("mask_brush")
    QTest.mousePress(window.canvas, Qt.MouseButton.LeftButton, pos=QPoint(10, 100))
    QTest.mouseMove(window.canvas, QPoint(30, 100))
    QTest.mouseRelease(window.canvas, Qt.MouseButton.LeftButton, pos=QPoint(30, 100))
    assert window.document.mask[100, 20] > 0
    assert controller.worker.current_id is not None  # still generating meanwhile
    assert isinstance(window.undo_stack.command(window.undo_stack.index() - 1), RegionCommand)
    controller.cancel_all()


def test_closing_the_window_during_a_generation_returns_promptly(qtbot, settings, shared_engine, tiny_sd_inpaint):
    worker = EngineWorker(engine_factory=lambda: shared_engine)
    window, controller = _studio(qtbot, settings, worker, owns_worker=True)
    set_mask(window)
    use_tiny_model(controller, tiny_sd_inpaint, steps=2, seed=1)
    controller.generate()
    wait_candidates(qtbot, controller, 1)  # kernels warm: what remains is the cancel latency
    controller.panel.steps_spin.setValue(500)
    with qtbot.waitSignal(worker.job_progress, timeout=TIMEOUT_MS):
        controller.generate()
    controller.generate()  # and one queued
    window.undo_stack.setClean()
    start = time.monotonic()
    window.close()
    elapsed = time.monotonic() - start
    assert elapsed < 5.0
    assert not worker.is_running and worker.is_closed
    window.deleteLater()


# ----------------------------------------------------------------------------------------------------
# the model picker
# ----------------------------------------------------------------------------------------------------


def make_panel(qtbot, settings: QSettings) -> GeneratePanel:
    """A Generate panel as the window composes it: its settings model saved to `settings`."""
    app_settings = AppSettings(settings)
    model = load_generation_settings(app_settings)
    remember_generation_settings(model, app_settings)
    panel = GeneratePanel(model, UserModels.load(), BackgroundRunner())
    qtbot.addWidget(panel)
    return panel


def test_model_picker_classic_first_catalog_marked_and_added_models_remembered(qtbot, settings, tiny_sd_inpaint):
    panel = make_panel(qtbot, settings)
    choices = panel.models.choices()
    assert choices[0].label == CLASSIC_LABEL and panel.model_reference() == CLASSIC_MODEL
    catalog_rows = [c for c in choices if c.source == "catalog"]
    assert catalog_rows and all("not installed" in c.label for c in catalog_rows)  # offline, empty cache
    panel.select_model(catalog_rows[0].reference)
    info = panel.models.info.text()
    assert "GB download" in info and "licence" in info
    assert not panel.models.download_button.isHidden()
    with qtbot.waitSignal(panel.models.download_requested) as requested:
        panel.models.download_button.click()
    assert requested.args == [catalog_rows[0].reference]
    # An added folder is checked (configs only), chosen and remembered.
    assert panel.models.add_local_model(str(tiny_sd_inpaint))
    assert panel.model_reference() == str(tiny_sd_inpaint)
    assert str(tiny_sd_inpaint) in UserModels.load().paths  # the list `inpaint-studio models` shows too
    again = make_panel(qtbot, settings)
    assert again.model_reference() == str(tiny_sd_inpaint)
    # A folder that is not a model is refused with a message.
    with qtbot.waitSignal(panel.models.add_model_failed) as failed:
        assert not panel.models.add_local_model(str(Path(tiny_sd_inpaint).parent))
    assert "model_index.json" in failed.args[0]


def test_seed_lock_and_concrete_seed_after_a_run(qtbot, settings):
    panel = make_panel(qtbot, settings)
    panel.select_model(CLASSIC_MODEL)
    panel.seed_lock.setChecked(False)
    assert panel.job().seed is None
    panel.show_seed(1234)
    assert panel.seed_edit.text() == "1234" and panel.job().seed is None
    panel.seed_lock.setChecked(True)
    assert panel.job().seed == 1234
    panel.show_seed(99)
    assert panel.seed_edit.text() == "1234"
    panel.randomise_seed()
    assert panel.seed_locked and panel.job().seed != 1234
    loaded = InpaintJob(model=CLASSIC_MODEL, prompt="x", seed=7, steps=12, variants=3)
    panel.load_job(loaded)
    job = panel.job()
    assert (job.seed, job.steps, job.variants, job.prompt) == (7, 12, 3, "x")


def test_download_progress_and_cancel_in_the_panel(qtbot, studio):
    """The download UI with a local stand-in for the network transfer (no network in tests)."""
    import threading

    window, controller = studio
    gate = threading.Event()

    def fake_hub_download(repo_id, progress):
        data = progress(total=2_000_000_000, unit="B", desc="Downloading bytes")
        data.update(500_000_000)
        gate.wait(10)
        data.update(1)  # raises CancelledError once the user cancelled
        return "/nowhere"

    controller.downloader.download = fake_hub_download
    panel = controller.panel
    target = next(c for c in panel.models.choices() if c.source == "catalog")
    panel.select_model(target.reference)
    panel.models.download_button.click()
    qtbot.waitUntil(lambda: panel.models.download_progress.value() > 0, timeout=TIMEOUT_MS)
    assert panel.models.download_progress.isVisible() and "0.50 / 2.00 GB" in panel.models.download_progress.format()
    with qtbot.waitSignal(controller.downloader.cancelled, timeout=TIMEOUT_MS):
        panel.models.download_cancel.click()
        gate.set()
    assert "cancelled" in window.message_bar.text()
    assert not panel.models.download_button.isHidden()


def test_result_layer_holds_only_changed_pixels():
    source = np.zeros((4, 5, 4), np.uint8)
    source[..., 3] = 255
    result = source[..., :3].copy()
    result[1, 2] = (9, 8, 7)
    layer = result_layer_pixels(result, source)
    assert layer[1, 2].tolist() == [9, 8, 7, 255]
    assert layer[..., 3].sum() == 255
