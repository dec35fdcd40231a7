"""Outpainting in the studio: Image > Expand Canvas… and the Expand tool (C), the new area masked, pre-filled and
generated; the expansion one undo step recorded in history; projects and replays that cross an expansion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from inpaint_studio.core.canvas import Margins, blend_reach, margins_from_params
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.project import load_project
from inpaint_studio.engine.replay import replay
from inpaint_studio.engine.runner import Engine
from inpaint_studio.ui.document.commands import ExpandCanvasCommand, mask_change
from inpaint_studio.ui.panels.candidates import Candidate
from inpaint_studio.ui.panels.expand_dialog import ExpandCanvasDialog
from inpaint_studio.ui.window.main_window import MainWindow

from .conftest import close_window
from .helpers import drag, line

TIMEOUT_MS = 60_000


def layer_pixels(window: MainWindow) -> dict[str, np.ndarray]:
    return {layer.id: layer.pixels.copy() for layer in window.document.layers}


def set_mask(window: MainWindow, box: tuple[int, int, int, int]) -> None:
    mask = np.zeros_like(window.document.mask)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    command = mask_change(window.document, mask, "Rectangle")
    assert command is not None
    window.undo_stack.push(command)


def apply_generation(window: MainWindow, job: InpaintJob, engine: Engine) -> None:
    """A real generation of the current mask (run here, not in the worker) applied as the studio applies one."""
    image = window.document.composite()
    mask = window.document.mask.copy()
    image.flags.writeable = mask.flags.writeable = False
    result = engine.run(job.resolved(), Image.fromarray(image), mask)
    candidate = Candidate(result=result, index=0, image=image, mask=mask)
    window.generation.candidates.add([candidate], select_first=False)
    assert window.generation.apply(candidate) is not None


def test_expanding_extends_every_layer_bit_exactly_in_one_undo_step(opened: MainWindow) -> None:
    window = opened
    window.layers_panel.add_paint_layer()
    window.select_tool("paint_brush")
    drag(window.canvas, line(20, 30, 200, 30))
    set_mask(window, (10, 10, 50, 40))
    before, old_mask = layer_pixels(window), window.document.mask.copy()
    steps = window.undo_stack.count()
    window.outpaint.expand(Margins(16, 8, 40, 0), prefill="none", generate=False)
    doc = window.document
    assert doc.size == (296, 168) and window.undo_stack.count() == steps + 1
    for layer in doc.layers:
        assert layer.pixels.shape == (168, 296, 4)
        assert np.array_equal(layer.pixels[8:168, 16:256], before[layer.id])
    # The mask: what was painted, plus the new area except a strip as wide as the Generate panel's blend.
    job = window.generation.panel.job()
    keep = blend_reach(job.mask.feather_px, job.mask.grow_px)
    assert np.array_equal(doc.mask[8:168, 16:256], old_mask)
    assert (doc.mask[:, 256 + keep + 1 :] == 255).all() and not doc.mask[8:, 256 : 256 + keep].any()
    assert (doc.mask[:, -1] == 255).all()  # the outer canvas border stays masked
    assert not doc.mask[:8, 16 + keep : 256 - keep].any()  # a strip narrower than the blend keeps its pre-fill
    command = window.undo_stack.command(window.undo_stack.count() - 1)
    assert isinstance(command, ExpandCanvasCommand) and command.text() == "Expand canvas to 296×168"
    entry = window.generation.recorder.history.head
    assert entry.kind == "layer" and margins_from_params(entry.params) == Margins(16, 8, 40, 0)
    assert entry.snapshot is not None and (entry.snapshot.width, entry.snapshot.height) == (296, 168)
    assert window.size_label.text() == "296 × 168 px"
    window.undo()
    assert doc.size == (240, 160) and all(np.array_equal(la.pixels, before[la.id]) for la in doc.layers)
    assert np.array_equal(doc.mask, old_mask)
    assert window.generation.recorder.history.head.snapshot.width == 240
    window.redo()
    assert doc.size == (296, 168)
    window.canvas.grab()  # the canvas repaints at the new size


def test_too_much_canvas_is_one_sentence_and_nothing_changes(opened: MainWindow) -> None:
    window = opened
    window.outpaint.expand_canvas(Margins(0, 0, 65_000, 65_000))
    assert window.message_bar.kind() == "error" and "add less canvas" in window.message_bar.text()
    assert window.document.size == (240, 160) and window.undo_stack.count() == 0


def test_the_dialog_offers_presets_around_an_anchor_and_refuses_too_much(qapp) -> None:
    dialog = ExpandCanvasDialog(240, 160, [("classic", "Classical fill"), ("none", "Leave it empty")])
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert not ok.isEnabled()  # nothing to add yet
    dialog.apply_preset(1.5)  # IOPaint's 1.5x, image kept in the middle
    assert dialog.margins() == Margins(60, 40, 60, 40) and ok.isEnabled()
    assert dialog.size_label.text() == "New canvas: 360 × 240 px"
    dialog.set_anchor((0, 1))  # Krita's anchor: the image stays on the left
    dialog.direction.setCurrentIndex(1)  # width only
    dialog.apply_preset(2.0)
    assert dialog.margins() == Margins(0, 0, 240, 0)
    dialog.spins["right"].setValue(65_400)  # 65640 px wide
    assert not ok.isEnabled() and "longer than image files can hold" in dialog.size_label.text()
    dialog.deleteLater()


def test_the_menu_dialog_expands_prefills_and_generates(opened: MainWindow, qtbot) -> None:
    window = opened
    original = window.document.composite()

    def answer() -> None:
        dialog = QApplication.activeModalWidget()
        assert isinstance(dialog, ExpandCanvasDialog)
        dialog.set_margins(Margins(0, 0, 64, 0))
        dialog.prefill.setCurrentIndex(dialog.prefill.findData("classic"))
        dialog.generate.setChecked(True)
        dialog.accept()

    QTimer.singleShot(0, answer)
    with qtbot.waitSignal(window.generation.worker.job_finished, timeout=TIMEOUT_MS):
        window.actions["expand_canvas"].trigger()
    doc = window.document
    assert doc.size == (304, 160) and window.settings.expand_margins == [0, 0, 64, 0]
    names = [layer.name for layer in doc.layers]
    assert names == ["Background", "Pre-fill"]
    prefill = doc.layers[1].pixels
    assert not prefill[:, :240].any() and (prefill[:, 240:, 3] == 255).all()  # the whole new area, opaque
    history = window.generation.recorder.history
    assert [e.title for e in history][-2:] == ["Expand canvas to 304×160", "Pre-fill the new canvas (classical fill)"]
    # The Generate panel's model (the classical fill here) filled the masked new area: a candidate to apply.
    qtbot.waitUntil(lambda: bool(window.generation.candidates.candidates()), timeout=TIMEOUT_MS)
    candidate = window.generation.candidates.candidates()[0]
    window.generation.apply(candidate)
    final = doc.composite()
    assert np.array_equal(final[:, :240], original)  # every original pixel bit-exact
    assert (final[:, 240:, 3] == 255).all()
    assert window.undo_stack.count() == 3  # expand, pre-fill, apply


def test_the_expand_tool_drags_an_edge_outwards(opened: MainWindow, qtbot) -> None:
    window = opened
    window.settings.outpaint_prefill, window.settings.outpaint_generate = "none", False
    window.actions["tool_expand"].trigger()
    assert window.canvas.tool.name == "expand"
    drag(window.canvas, [(120, 80)])  # inside, far from the edges: nothing to grab
    assert "Drag from an edge" in window.message_bar.text() and window.document.size == (240, 160)
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    QTest.mousePress(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(236, 80))
    QTest.mouseMove(window.canvas, QPoint(290, 150))
    preview = window.canvas.tool.preview()
    assert preview is not None and preview.label == "290 × 160 px"  # only the right edge was grabbed
    QTest.mouseRelease(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(300, 150))
    assert window.document.size == (300, 160) and window.undo_stack.count() == 1
    QTest.mousePress(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(5, 5))
    QTest.mouseMove(window.canvas, QPoint(2, 2))
    QTest.keyClick(window.canvas, Qt.Key.Key_Escape)  # Esc abandons a drag
    QTest.mouseRelease(window.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(2, 2))
    assert window.document.size == (300, 160) and window.undo_stack.count() == 1


@pytest.mark.slow
def test_a_project_across_an_expansion_saves_reopens_branches_and_replays(
    opened: MainWindow, qtbot, tmp_path: Path, tiny_sd_inpaint: Path
) -> None:
    window = opened
    engine = Engine()
    job = InpaintJob(model=str(tiny_sd_inpaint), prompt="moss", steps=2, seed=5, padding_px=8)
    set_mask(window, (40, 40, 80, 72))
    apply_generation(window, job, engine)
    before_expansion = window.generation.recorder.history.head_id
    window.outpaint.expand(Margins(0, 0, 48, 0), prefill="none", generate=False)
    set_mask(window, (250, 60, 286, 100))
    apply_generation(window, job.replace(seed=6), engine)
    composite = window.document.composite()
    target = tmp_path / "wide.inpaint"
    with qtbot.waitSignal(window.projects.saved, timeout=30_000):
        assert window.projects.save_to(target)
    close_window(window)

    project = load_project(target)
    assert project.document.size == (288, 160)
    assert np.array_equal(project.document.composite(), composite)
    history = project.history
    sizes = [(e.snapshot.width, e.snapshot.height) for e in history if e.snapshot is not None]
    assert (240, 160) in sizes and (288, 160) in sizes
    # Replay with a new seed: the first result changes, so the second one's input is rebuilt from the
    # state after the expansion, with the new first result extended as the expansion extended the old one.
    steps = list(replay(history, engine.run, seed=99))
    assert steps[0].identical is False and steps[0].image.size == (240, 160)
    assert steps[1].image.size == (288, 160) and steps[1].layer_pixels.shape == (160, 288, 4)
    # Replayed as recorded: bit-identical results, both of them.
    assert [s.identical for s in replay(history, engine.run)] == [True, True]

    from .test_projects import new_window

    reopened = new_window(qtbot, tmp_path / "other.ini")
    try:
        assert reopened.open_path(target)
        assert reopened.document.size == (288, 160)
        reopened.generation.branch_from(before_expansion)  # a state of the other size
        assert reopened.document.size == (240, 160)
        reopened.undo()
        assert reopened.document.size == (288, 160)
        assert np.array_equal(reopened.document.composite(), composite)
    finally:
        close_window(reopened)
    engine.release()
