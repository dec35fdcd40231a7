"""Add-ons in the studio, end to end with the real worker thread and tiny models: the Add-ons box bound to the
settings model, the reference image as a named input kept in history, the preview while painting, and
Image > Upscale as an undoable edit with its history entry."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QSettings
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from inpaint_studio.core.jobspec import REFERENCE_INPUT
from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.engine.events import JobCancelled
from inpaint_studio.engine.replay import replay
from inpaint_studio.engine.tasks import TaskFinished
from inpaint_studio.engine.upscale import UpscaleJob, UpscaleResult
from inpaint_studio.ui.document.commands import mask_change
from inpaint_studio.ui.engine_thread.worker import EngineWorker
from inpaint_studio.ui.window.composition import EngineOptions
from inpaint_studio.ui.window.main_window import MainWindow

TIMEOUT_MS = 60_000
W, H = 96, 80


@pytest.fixture(scope="module")
def module_worker(qapp, shared_engine) -> Iterator[EngineWorker]:
    worker = EngineWorker(engine_factory=lambda: shared_engine)
    yield worker
    assert worker.shutdown(10.0)


def photo() -> Image.Image:
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    base = np.stack([x / W * 220, y / H * 220, (x + y) / (W + H) * 255], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8))


@pytest.fixture
def window(qtbot, tmp_path: Path, module_worker) -> Iterator[MainWindow]:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, engine=EngineOptions(worker=module_worker, warm_up_delay_ms=None))
    win.resize(1300, 900)
    win.show()
    qtbot.waitExposed(win)
    win.open_image(photo(), "photo")
    win.canvas.set_view(1.0, QPointF(0, 0))
    yield win
    qtbot.waitUntil(
        lambda: not module_worker.is_busy and module_worker.current_id is None and not module_worker.pending_ids(),
        timeout=TIMEOUT_MS,
    )
    win.undo_stack.setClean()
    win.close()
    win.deleteLater()
    QApplication.processEvents()


def set_mask(window: MainWindow, box: tuple[int, int, int, int] = (30, 24, 62, 56)) -> None:
    mask = np.zeros((window.document.height, window.document.width), np.uint8)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    command = mask_change(window.document, mask, "Rectangle")
    if command is not None:
        window.undo_stack.push(command)


def use_model(window: MainWindow, model: Path) -> None:
    panel = window.generation.panel
    assert panel.models.add_local_model(str(model))
    panel.prompt_edit.setPlainText("a red apple")
    panel.steps_spin.setValue(2)
    panel.padding_spin.setValue(8)
    panel.seed_edit.setText("5")
    panel.seed_lock.setChecked(True)
    panel.live_preview_check.setChecked(False)


# ---- the Add-ons box -------------------------------------------------------------------------------------------


def test_the_addons_box_edits_the_job_it_shows(window, tiny_sd_inpaint, tiny_lora, tiny_embedding):
    use_model(window, tiny_sd_inpaint)
    panel, model = window.generation.panel, window.generation.settings_model
    addons = panel.addons
    addons.lora_list.add(str(tiny_lora))
    assert model.job.loras == ((str(tiny_lora), 1.0),)
    addons.lora_list._rows[0][1].setValue(0.65)  # the row's weight spin box
    assert model.job.loras == ((str(tiny_lora), 0.65),)
    addons.embedding_list.add(str(tiny_embedding))
    addons.embedding_list._rows[0][1].setText("tinystyle")
    assert model.job.embeddings == ((str(tiny_embedding), "tinystyle"),)
    addons.fast_check.setChecked(True)
    assert model.job.fast == "lcm" and not panel.scheduler_combo.isEnabled()
    addons.fast_combo.setCurrentIndex(addons.fast_combo.findData("tcd"))
    assert model.job.fast == "tcd"
    assert "not installed" in addons.fast_info.text() or "Needs" in addons.fast_info.text()
    assert addons.fast_download.isVisibleTo(panel)  # offered with its size and licence
    addons.fast_check.setChecked(False)
    assert model.job.fast == "off" and panel.scheduler_combo.isEnabled()
    addons.speed_combo.setCurrentIndex(addons.speed_combo.findData("fastest"))
    assert model.job.speed.preset == "fastest"
    # A job from a record shows in the box, and removing a row edits the job again.
    model.load_job(model.job.replace(loras=(("owner/ink", -0.5), (str(tiny_lora), 1.0))))
    assert [ref for ref, _ in addons.lora_list.value()] == ["owner/ink", str(tiny_lora)]
    addons.lora_list.remove("owner/ink")
    assert model.job.loras == ((str(tiny_lora), 1.0),)
    panel.models.select("classic")
    assert not panel.addons_group.isEnabled()  # the classical fill takes no add-ons


def test_a_lora_folder_is_listed(window, tiny_lora, tmp_path, qtbot):
    folder = tmp_path / "loras"
    folder.mkdir()
    (folder / "ink.safetensors").write_bytes(Path(tiny_lora).read_bytes())
    (folder / "notes.txt").write_text("not a LoRA")
    addons = window.generation.panel.addons
    window.settings.lora_folder = str(folder)
    addons.refresh()
    qtbot.waitUntil(lambda: bool(addons.lora_choices()), timeout=TIMEOUT_MS)
    (choice,) = [c for c in addons.lora_choices() if c.source == "folder"]
    assert choice.label == "ink" and choice.family == "a model with text width 32" and choice.installed


# ---- the reference image -----------------------------------------------------------------------------------------


def test_the_reference_travels_with_the_job_into_history_and_back(
    window, qtbot, shared_engine, tiny_sd_inpaint, tiny_ip_adapter
):
    controller = window.generation
    use_model(window, tiny_sd_inpaint)
    set_mask(window)
    controller.settings_model.set("ip_adapter", str(tiny_ip_adapter))
    # Without a reference Generate says what to do, in one sentence, and submits nothing.
    window.ctx.guarded(controller.generate)
    assert "The IP-Adapter needs a reference image; choose one under Add-ons > Reference" in window.message_bar.text()
    assert not controller.worker.is_busy
    base_id = window.document.layers[0].id
    assert controller.panel.addons.reference_from_layer(base_id, "Background")
    controller.generate()
    qtbot.waitUntil(lambda: len(controller.candidates.candidates()) == 1, timeout=TIMEOUT_MS)
    candidate = controller.candidates.candidates()[0]
    assert set(candidate.inputs) == {REFERENCE_INPUT}
    assert candidate.result.extra["ip_adapter"]["reference"] == str(tiny_ip_adapter)
    entry = controller.apply(candidate)
    assert entry is not None and np.array_equal(
        entry.inputs[REFERENCE_INPUT].to_array(), window.document.layers[0].pixels
    )
    details = controller.history_panel
    details.select(entry.id)
    assert "Reference" in details.details.toPlainText()
    # "Use these parameters" brings the reference back with the job; a rerun sends it again.
    controller.panel.addons.clear_reference()
    controller.use_parameters(entry.id)
    assert np.array_equal(controller.panel.addons.reference, window.document.layers[0].pixels)
    job_id = controller.rerun(entry.id)
    assert REFERENCE_INPUT in controller._submitted[job_id].inputs
    qtbot.waitUntil(lambda: len(controller.candidates.candidates()) == 2, timeout=TIMEOUT_MS)
    assert GenerationRecord.from_dict(entry.params).job.ip_adapter == str(tiny_ip_adapter)
    # Replay (the `replay` command's engine part) re-creates the result from the entry, reference included.
    (step,) = replay(controller.recorder.history, shared_engine.run, start=entry.id, until=entry.id)
    assert step.identical is True


# ---- the preview while painting ------------------------------------------------------------------------------


def test_the_preview_follows_the_mask_and_gives_way_to_generate(window, qtbot, tiny_sd_inpaint):
    controller, preview = window.generation, window.paint_preview
    use_model(window, tiny_sd_inpaint)
    worker = controller.worker
    events: list[Any] = []
    worker.task_finished.connect(events.append)
    worker.job_cancelled.connect(events.append)
    controller.panel.addons.paint_preview_check.setChecked(True)
    set_mask(window)
    qtbot.waitUntil(lambda: preview.previews >= 1, timeout=TIMEOUT_MS)
    label = controller.panel.paint_preview_label
    assert label.isVisibleTo(controller.panel) and not label.pixmap().isNull()
    finished = [e for e in events if isinstance(e, TaskFinished)]
    pixels, region = finished[-1].value
    assert pixels.shape[:2] == (region[3] - region[1], region[2] - region[0])
    # Nothing changed: no new preview. A new mask: a new one, and Generate cancels a running preview.
    assert preview.update_now() is None
    set_mask(window, (20, 20, 50, 50))
    task_id = preview.update_now()
    assert task_id is not None
    assert controller.panel.generate_button.text() == "Generate"  # a preview is not a job in the queue
    assert not controller.cancel_all_action.isEnabled()
    controller.generate()
    qtbot.waitUntil(lambda: len(controller.candidates.candidates()) == 1, timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: any(e.job_id == task_id for e in events), timeout=TIMEOUT_MS)
    # Cleared mask or the switch off: the preview goes away.
    controller.panel.addons.paint_preview_check.setChecked(False)
    assert not label.isVisibleTo(controller.panel)
    assert {type(e) for e in events} <= {TaskFinished, JobCancelled}


# ---- Image > Upscale ------------------------------------------------------------------------------------------


def nearest_upscale(job: UpscaleJob, image: Any, *, progress=None, cancel=None) -> UpscaleResult:
    """A stand-in for the engine's upscaler with spandrel (tests/engine/test_upscale.py runs the real one)."""
    array = np.asarray(image)
    for done in range(3):
        if progress:
            progress(done + 1, 3)
    big = np.repeat(np.repeat(array, job.scale, axis=0), job.scale, axis=1)
    extra = {"architecture": "Nearest", "model_scale": job.scale, "passes": 1, "device_name": "CPU"}
    return UpscaleResult(Image.fromarray(big), job, {"reference": job.model}, "cpu", 0.01, extra)


def test_upscale_is_one_undoable_edit_with_its_history_entry(window, qtbot, shared_engine, monkeypatch):
    monkeypatch.setattr(shared_engine, "upscale", nearest_upscale)
    assert [a.text() for a in window.menuBar().actions()].count("&Image") == 1
    set_mask(window)
    before = window.document.composite()
    upscaler = window.upscaler
    task_id = upscaler.upscale(UpscaleJob(model="some/upscaler.safetensors", scale=2))
    assert task_id is not None and upscaler._progress.isVisible()
    qtbot.waitUntil(lambda: not upscaler.running, timeout=TIMEOUT_MS)
    doc = window.document
    assert (doc.width, doc.height) == (2 * W, 2 * H)
    assert [layer.name for layer in doc.layers] == ["Background", "Upscaled x2 (upscaler)"]
    assert np.array_equal(doc.layers[-1].pixels, np.repeat(np.repeat(before, 2, axis=0), 2, axis=1))
    assert doc.mask.shape == (2 * H, 2 * W) and doc.mask[2 * 30, 2 * 40] == 255
    assert window.size_label.text() == f"{2 * W} × {2 * H} px"
    entry = window.generation.recorder.history.head
    assert entry.kind == "upscale" and entry.params["upscale"]["scale"] == 2
    assert entry.snapshot.width == 2 * W and doc.layers[-1].metadata["history_id"] == entry.id
    panel = window.generation.history_panel
    panel.select(entry.id)
    assert "x2" in panel.details.toPlainText() and "Nearest" in panel.details.toPlainText()
    assert window.settings.upscale_model == "some/upscaler.safetensors"
    # Ctrl+Z: the original size, layers and mask; redo: the upscale again.
    window.undo()
    assert (doc.width, doc.height) == (W, H) and len(doc.layers) == 1
    assert np.array_equal(doc.composite(), before)
    window.redo()
    assert (doc.width, doc.height) == (2 * W, 2 * H)
    # Branching from the state before the upscale gives the small image back, undoably.
    window.generation.branch_from(entry.parent_id)
    assert (doc.width, doc.height) == (W, H)
    window.undo()
    assert (doc.width, doc.height) == (2 * W, 2 * H)


def test_an_edit_during_the_upscale_sets_the_result_aside(window, qtbot, shared_engine, monkeypatch):
    release = threading.Event()

    def slow(job, image, *, progress=None, cancel=None):
        release.wait(10)
        return nearest_upscale(job, image)

    monkeypatch.setattr(shared_engine, "upscale", slow)
    upscaler = window.upscaler
    upscaler.upscale(UpscaleJob(model="x/y.safetensors", scale=2))
    set_mask(window)  # the artist keeps working meanwhile
    release.set()
    qtbot.waitUntil(lambda: not upscaler.running, timeout=TIMEOUT_MS)
    assert (window.document.width, window.document.height) == (W, H)
    assert "changed while it was being upscaled" in window.message_bar.text()


def test_upscale_failures_and_cancel_leave_the_image_alone(window, qtbot, shared_engine, monkeypatch, tmp_path):
    upscaler = window.upscaler
    weights = tmp_path / "x4.safetensors"
    weights.write_bytes(b"spandrel is needed to read this")
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as without the vision extra
    upscaler.upscale(UpscaleJob(model=str(weights), scale=2))
    qtbot.waitUntil(lambda: not upscaler.running, timeout=TIMEOUT_MS)
    assert 'pip install "inpaint-studio[vision]"' in window.message_bar.text()
    assert (window.document.width, window.document.height) == (W, H)
    window.message_bar.dismiss()  # read: an info never covers an unread error

    def endless(job, image, *, progress=None, cancel=None):
        while not cancel.cancelled:
            progress(1, 10)
            time.sleep(0.01)
        cancel.raise_if_cancelled()

    monkeypatch.setattr(shared_engine, "upscale", endless)
    upscaler.upscale(UpscaleJob(model=str(weights), scale=2))
    qtbot.waitUntil(lambda: upscaler._progress.value() == 1, timeout=TIMEOUT_MS)
    upscaler._cancel.click()
    qtbot.waitUntil(lambda: not upscaler.running, timeout=TIMEOUT_MS)
    assert "cancelled; nothing was changed" in window.message_bar.text()
    assert (window.document.width, window.document.height) == (W, H)


def test_the_upscale_dialog_offers_downloads_with_size_and_licence(window, qtbot):
    dialog = window.upscaler.open_dialog()
    assert dialog is not None
    qtbot.waitUntil(lambda: dialog.model_combo.count() > 0, timeout=TIMEOUT_MS)
    index = dialog.model_combo.findData("ai-forever/Real-ESRGAN/RealESRGAN_x4.pth")
    dialog.model_combo.setCurrentIndex(index)
    assert "0.07 GB download, licence BSD-3-Clause" in dialog.info.text()
    assert dialog.download_button.isVisibleTo(dialog)
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled()  # not installed yet
    dialog.scale_combo.setCurrentIndex(dialog.scale_combo.findData(4))
    assert dialog.job().scale == 4
    dialog.reject()


@pytest.mark.vision
def test_a_real_upscaling_network_through_the_studio(window, qtbot, tmp_path):
    from tests.tiny_addons import build_upscaler_weights

    weights = build_upscaler_weights(tmp_path, 2)
    upscaler = window.upscaler
    upscaler.upscale(UpscaleJob(model=str(weights), scale=4, tile=64, overlap=16))
    qtbot.waitUntil(lambda: not upscaler.running, timeout=TIMEOUT_MS)
    assert (window.document.width, window.document.height) == (4 * W, 4 * H)
    entry = window.generation.recorder.history.head
    assert entry.kind == "upscale" and entry.params["extra"]["passes"] == 2
    assert entry.params["extra"]["architecture"] == "ESRGAN"
