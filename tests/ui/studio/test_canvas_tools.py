"""Brush, eraser, selections and eyedropper driven by real mouse events on the canvas."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt

from inpaint_studio.core.document import MASK
from inpaint_studio.ui.document.commands import RegionCommand
from inpaint_studio.ui.window.main_window import MainWindow

from .helpers import drag, line

Alt = Qt.KeyboardModifier.AltModifier
Shift = Qt.KeyboardModifier.ShiftModifier


def band_rows(mask: np.ndarray, column: int) -> np.ndarray:
    return np.flatnonzero(mask[:, column] >= 128)


def test_horizontal_stroke_marks_a_band_as_wide_as_the_brush(opened: MainWindow) -> None:
    drag(opened.canvas, line(40, 80, 180, 80))
    mask = opened.document.mask
    rows = band_rows(mask, 110)
    assert rows[0] == 70 and rows[-1] == 89  # 20 px brush centred on y = 80 (pixel centres at .5)
    assert not mask[:, :25].any() and not mask[:, 196:].any()  # round caps end 10 px beyond the ends
    assert mask[60:100, 50:170].max() == 255
    assert not mask[:60].any() and not mask[101:].any()


def test_eraser_removes_the_band(opened: MainWindow) -> None:
    drag(opened.canvas, line(40, 80, 180, 80))
    opened.toggle_eraser()
    assert opened.tool_settings.erase
    opened.tool_settings.set_size(40)
    drag(opened.canvas, line(20, 80, 200, 80))
    assert not opened.document.mask.any()


def test_one_stroke_is_one_undo_step_restored_exactly(opened: MainWindow) -> None:
    opened.tool_settings.set_hardness(0.3)  # soft edges: every grey level must come back exactly
    drag(opened.canvas, line(30, 40, 120, 120, 25))
    first = opened.document.mask.copy()
    drag(opened.canvas, line(60, 20, 200, 60, 25))
    second = opened.document.mask.copy()
    assert opened.undo_stack.count() == 2
    opened.undo()
    assert np.array_equal(opened.document.mask, first)
    opened.undo()
    assert not opened.document.mask.any()
    opened.redo()
    opened.redo()
    assert np.array_equal(opened.document.mask, second)


def test_stroke_undo_stores_only_its_bounding_box(opened: MainWindow) -> None:
    drag(opened.canvas, line(40, 80, 100, 80))
    command = opened.undo_stack.command(0)
    assert isinstance(command, RegionCommand) and command.target == MASK
    left, top, right, bottom = command.rect
    assert (left, top, right, bottom) == (30, 70, 110, 90)
    assert command.nbytes == 2 * 80 * 20
    assert command.nbytes < opened.document.mask.nbytes / 10


def test_stroke_at_zoom_two_lands_under_the_pointer(opened: MainWindow) -> None:
    opened.canvas.set_view(2.0, QPointF(-40, -20))
    # Widget (100, 100) is document (70, 60); a 20 px brush spans 20 document pixels whatever the zoom.
    drag(opened.canvas, line(100, 100, 300, 100))
    rows = band_rows(opened.document.mask, 120)
    assert rows[0] == 50 and rows[-1] == 69


def test_rectangle_adds_and_alt_subtracts(opened: MainWindow) -> None:
    opened.select_tool("rect_select")
    drag(opened.canvas, [(20, 30), (60, 50), (100, 70)])
    mask = opened.document.mask
    assert mask[30:70, 20:100].min() == 255 and mask.sum() == 255 * 40 * 80
    drag(opened.canvas, [(40, 40), (60, 50)], modifiers=Alt)
    assert not mask[40:50, 40:60].any() and mask.sum() == 255 * (40 * 80 - 10 * 20)
    drag(opened.canvas, [(200, 100), (220, 120)], modifiers=Shift)  # Shift adds too
    assert mask[100:120, 200:220].min() == 255
    assert opened.undo_stack.count() == 3
    opened.undo()
    opened.undo()
    assert mask.sum() == 255 * 40 * 80


def test_lasso_fills_the_outlined_shape(opened: MainWindow) -> None:
    opened.select_tool("lasso")
    drag(opened.canvas, [(20, 20), (120, 20), (120, 120), (20, 120), (20, 21)])
    mask = opened.document.mask
    assert mask[25:115, 25:115].min() == 255
    assert not mask[:15].any() and not mask[:, 125:].any()
    drag(opened.canvas, [(40, 40), (100, 40), (100, 100), (40, 100)], modifiers=Alt)
    assert not mask[45:95, 45:95].any() and mask[25:35, 25:115].min() == 255


def test_paint_brush_adds_a_paint_layer_in_the_same_undo_step(opened: MainWindow) -> None:
    doc = opened.document
    base_before = doc.layers[0].pixels.copy()
    opened.select_tool("paint_brush")
    opened.tool_settings.set_color((10, 200, 30))
    drag(opened.canvas, line(40, 80, 180, 80))
    assert [layer.kind for layer in doc.layers] == ["base", "paint"]
    paint = doc.layers[1]
    assert doc.active_layer_id == paint.id
    assert tuple(paint.pixels[80, 110]) == (10, 200, 30, 255)
    assert np.array_equal(doc.layers[0].pixels, base_before)  # the original is never painted on
    assert tuple(doc.composite((110, 80, 111, 81))[0, 0]) == (10, 200, 30, 255)
    # The cache the canvas draws from follows (BGRA, premultiplied).
    assert tuple(opened.canvas.display_cache.level_array(0)[80, 110]) == (30, 200, 10, 255)
    assert opened.undo_stack.count() == 1
    opened.undo()
    assert len(doc.layers) == 1 and np.array_equal(doc.composite()[..., :3], base_before[..., :3])
    opened.redo()
    assert len(doc.layers) == 2 and tuple(doc.layers[1].pixels[80, 110]) == (10, 200, 30, 255)
    # A second stroke goes on the same paint layer.
    drag(opened.canvas, line(40, 120, 180, 120))
    assert len(doc.layers) == 2 and doc.layers[1].pixels[120, 110, 3] == 255


def test_paint_eraser_lowers_the_active_layer_alpha(opened: MainWindow) -> None:
    opened.select_tool("paint_brush")
    drag(opened.canvas, line(40, 80, 180, 80))
    opened.swap_erase()
    drag(opened.canvas, line(100, 60, 100, 100))
    paint = opened.document.layers[1]
    assert paint.pixels[80, 100, 3] == 0 and paint.pixels[80, 60, 3] == 255


def test_eyedropper_picks_the_composite_colour(opened: MainWindow) -> None:
    opened.select_tool("eyedropper")
    drag(opened.canvas, [(50, 60)])
    expected = tuple(int(v) for v in opened.document.composite((50, 60, 51, 61))[0, 0, :3])
    assert opened.tool_settings.color == expected


def test_stroke_outside_the_image_changes_nothing(opened: MainWindow) -> None:
    drag(opened.canvas, line(400, 400, 600, 400))
    assert opened.undo_stack.count() == 0 and not opened.document.mask.any()


def test_undo_during_a_stroke_commits_the_stroke_first(opened: MainWindow) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    QTest.mousePress(opened.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(40, 80))
    QTest.mouseMove(opened.canvas, QPoint(90, 80))
    opened.undo()  # finishes the stroke as its own step, then undoes it
    assert not opened.document.mask.any()
    QTest.mouseRelease(opened.canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(90, 80))
    assert not opened.document.mask.any()


def test_selection_outline_is_drawn_while_dragging_and_erased_after(opened: MainWindow) -> None:
    from PySide6.QtCore import QPoint
    from PySide6.QtTest import QTest

    canvas = opened.canvas
    opened.canvas.set_show_mask(False)  # compare against the bare image
    before = canvas.grab().toImage()
    opened.select_tool("rect_select")
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(20, 30))
    QTest.mouseMove(canvas, QPoint(100, 70))
    during = canvas.grab().toImage()
    assert during.pixelColor(60, 30) != before.pixelColor(60, 30)  # on the top edge
    assert during.pixelColor(60, 50) == before.pixelColor(60, 50)  # inside: outline only
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, QPoint(100, 70))
    after = canvas.grab().toImage()
    assert after.pixelColor(60, 30) == before.pixelColor(60, 30)


def test_tablet_pressure_scales_the_brush(opened: MainWindow) -> None:
    from PySide6.QtCore import QEvent
    from PySide6.QtGui import QPointingDevice, QTabletEvent
    from PySide6.QtWidgets import QApplication

    canvas = opened.canvas
    pen = QPointingDevice.primaryPointingDevice()

    def send(kind: QEvent.Type, x: float, pressure: float, buttons: Qt.MouseButton) -> None:
        pos = QPointF(x, 80)
        event = QTabletEvent(
            kind, pen, pos, canvas.mapToGlobal(pos), pressure, 0.0, 0.0, 0.0, 0.0, 0.0,
            Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton, buttons,
        )  # fmt: skip
        QApplication.sendEvent(canvas, event)
        assert event.isAccepted()

    send(QEvent.Type.TabletPress, 40, 0.5, Qt.MouseButton.LeftButton)
    for x in range(50, 181, 10):
        send(QEvent.Type.TabletMove, x, 0.5, Qt.MouseButton.LeftButton)
    send(QEvent.Type.TabletRelease, 180, 0.5, Qt.MouseButton.NoButton)
    rows = band_rows(opened.document.mask, 110)
    assert rows[0] == 75 and rows[-1] == 84  # half pressure: a 10 px band from the 20 px brush
    assert opened.undo_stack.count() == 1
