"""The main window: shortcuts, mask menu, layers, files, clipboard, unsaved work, view navigation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QGuiApplication
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QMessageBox

from inpaint_studio.core.document import Layer
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.imageio import load_image
from inpaint_studio.ui.document.commands import AddLayerCommand, add_image_layer
from inpaint_studio.ui.qt_images import pil_to_qimage
from inpaint_studio.ui.window.main_window import ENGINE_PLACEHOLDER, MainWindow

from .conftest import IMAGE_SIZE, close_window
from .helpers import drag, line

Ctrl = Qt.KeyboardModifier.ControlModifier
Shift = Qt.KeyboardModifier.ShiftModifier
NoMod = Qt.KeyboardModifier.NoModifier


def key(window: MainWindow, k: Qt.Key, modifiers: Qt.KeyboardModifier = NoMod) -> None:
    QTest.keyClick(window.canvas, k, modifiers)


# ----------------------------------------------------------------- shortcuts
def test_brush_shortcuts(opened: MainWindow) -> None:
    opened.canvas.setFocus()
    settings = opened.tool_settings
    key(opened, Qt.Key.Key_BracketRight)
    assert settings.size == 24
    key(opened, Qt.Key.Key_BracketLeft)
    key(opened, Qt.Key.Key_BracketLeft)
    assert settings.size < 20
    key(opened, Qt.Key.Key_BracketLeft, Shift)
    assert settings.hardness == pytest.approx(0.9)
    key(opened, Qt.Key.Key_BracketRight, Shift)
    assert settings.hardness == pytest.approx(1.0)
    key(opened, Qt.Key.Key_X)
    assert settings.erase
    key(opened, Qt.Key.Key_X)
    assert not settings.erase
    for k, tool in [
        (Qt.Key.Key_M, "rect_select"),
        (Qt.Key.Key_L, "lasso"),
        (Qt.Key.Key_I, "eyedropper"),
        (Qt.Key.Key_P, "paint_brush"),
        (Qt.Key.Key_B, "mask_brush"),
    ]:
        key(opened, k)
        assert opened.canvas.tool.name == tool
    key(opened, Qt.Key.Key_E)
    assert settings.erase and opened.canvas.tool.name == "mask_brush"
    key(opened, Qt.Key.Key_E)
    assert not settings.erase
    assert opened.size_spin.value() == round(settings.size)  # the tool bar follows


def test_ctrl_z_undoes_and_ctrl_shift_z_and_ctrl_y_redo(opened: MainWindow) -> None:
    drag(opened.canvas, line(40, 80, 180, 80))
    after = opened.document.mask.copy()
    key(opened, Qt.Key.Key_Z, Ctrl)
    assert not opened.document.mask.any()
    key(opened, Qt.Key.Key_Z, Ctrl | Shift)
    assert np.array_equal(opened.document.mask, after)
    key(opened, Qt.Key.Key_Z, Ctrl)
    key(opened, Qt.Key.Key_Y, Ctrl)
    assert np.array_equal(opened.document.mask, after)


def test_view_shortcuts_and_mask_overlay_toggle(opened: MainWindow) -> None:
    canvas = opened.canvas
    key(opened, Qt.Key.Key_1, Ctrl)
    assert canvas.zoom == 1.0
    key(opened, Qt.Key.Key_0, Ctrl)
    w, h = IMAGE_SIZE
    fitted = canvas.zoom
    assert w * fitted <= canvas.width() and h * fitted <= canvas.height()
    assert max(w * fitted / canvas.width(), h * fitted / canvas.height()) > 0.8
    key(opened, Qt.Key.Key_Plus)
    assert canvas.zoom > fitted
    key(opened, Qt.Key.Key_Minus)
    assert canvas.zoom == pytest.approx(fitted)
    assert canvas.show_mask
    key(opened, Qt.Key.Key_H, Ctrl)
    assert not canvas.show_mask and not opened.actions["toggle_mask"].isChecked()
    key(opened, Qt.Key.Key_H, Ctrl)
    assert canvas.show_mask
    assert opened.zoom_label.text() == f"{canvas.zoom * 100:.4g} %"


def test_ctrl_wheel_zooms_around_the_pointer_and_wheel_pans(opened: MainWindow, qtbot) -> None:
    canvas = opened.canvas
    canvas.set_view(1.0, QPointF(10, 10))
    anchor = QPointF(110, 70)
    before = canvas.map_to_document(anchor)
    _wheel(canvas, anchor, 120, Ctrl)
    assert canvas.zoom == pytest.approx(1.25)
    after = canvas.map_to_document(anchor)
    assert after == pytest.approx(before)
    offset = canvas.offset
    _wheel(canvas, anchor, -120, NoMod)
    assert canvas.offset.y() == pytest.approx(offset.y() - 60)
    _wheel(canvas, anchor, -120, Shift)
    assert canvas.offset.x() == pytest.approx(offset.x() - 60)


def _wheel(widget, pos: QPointF, delta: int, modifiers: Qt.KeyboardModifier) -> None:
    from PySide6.QtCore import QPoint as P
    from PySide6.QtGui import QWheelEvent

    event = QWheelEvent(
        pos,
        widget.mapToGlobal(pos),
        P(0, 0),
        P(0, delta),
        Qt.MouseButton.NoButton,
        modifiers,
        Qt.ScrollPhase.NoScrollPhase,
        False,
    )
    QGuiApplication.sendEvent(widget, event)


def test_space_drag_and_middle_drag_pan_without_painting(opened: MainWindow) -> None:
    canvas = opened.canvas
    canvas.setFocus()
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    drag(canvas, [(50, 50), (80, 60)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert canvas.offset == QPointF(30, 10)
    drag(canvas, [(80, 60), (70, 60)], button=Qt.MouseButton.MiddleButton)
    assert canvas.offset == QPointF(20, 10)
    assert not opened.document.mask.any() and opened.undo_stack.count() == 0


def test_holding_backslash_shows_the_original(opened: MainWindow) -> None:
    doc = opened.document
    red = np.zeros((doc.height, doc.width, 4), np.uint8)
    red[..., 0] = red[..., 3] = 255
    opened.undo_stack.push(AddLayerCommand(doc, Layer("red", red)))
    canvas = opened.canvas
    assert canvas.grab().toImage().pixelColor(50, 50).red() == 255
    canvas.setFocus()
    QTest.keyPress(canvas, Qt.Key.Key_Backslash)
    assert canvas.showing_original
    shown = canvas.grab().toImage().pixelColor(50, 50)
    base = doc.layers[0].pixels[50, 50]
    assert (shown.red(), shown.green(), shown.blue()) == tuple(int(v) for v in base[:3])
    QTest.keyRelease(canvas, Qt.Key.Key_Backslash)
    assert not canvas.showing_original
    assert canvas.grab().toImage().pixelColor(50, 50).red() == 255


def test_status_bar_shows_size_cursor_zoom_and_engine_placeholder(opened: MainWindow) -> None:
    QTest.mouseMove(opened.canvas, QPoint(33, 44))
    assert opened.cursor_label.text() == "x 33, y 44"
    assert opened.size_label.text() == "240 × 160 px"
    assert opened.zoom_label.text() == "100 %"
    assert opened.engine_label.text() == ENGINE_PLACEHOLDER
    opened.set_engine_status("Engine: CPU")
    assert opened.engine_label.text() == "Engine: CPU"


# ----------------------------------------------------------------- mask menu
def _paint_square(window: MainWindow) -> np.ndarray:
    window.select_tool("rect_select")
    drag(window.canvas, [(60, 40), (120, 100)])
    return window.document.mask.copy()


def test_invert_grow_shrink_feather_clear_are_undoable(opened: MainWindow) -> None:
    square = _paint_square(opened)
    mask = opened.document.mask
    opened.masks.invert()
    assert np.array_equal(mask, 255 - square)
    opened.undo()
    assert np.array_equal(mask, square)
    opened.masks.grow(5)
    assert mask[40:100, 55:125].min() == 255 and mask.sum() > square.sum()
    assert not mask[:, 126:].any()
    opened.undo()
    opened.masks.shrink(5)
    assert mask[45:95, 65:115].min() == 255 and not mask[40:44].any() and mask.sum() < square.sum()
    opened.undo()
    opened.masks.feather(6)
    assert 0 < mask[70, 60] < 255 and mask[70, 90] == 255
    opened.undo()
    assert np.array_equal(mask, square)
    key(opened, Qt.Key.Key_D, Ctrl)
    assert not mask.any()
    key(opened, Qt.Key.Key_I, Ctrl)
    assert mask.min() == 255
    opened.undo()
    opened.undo()
    assert np.array_equal(mask, square)


def test_mask_change_command_keeps_only_the_changed_box(opened: MainWindow) -> None:
    _paint_square(opened)
    opened.masks.grow(3)
    command = opened.undo_stack.command(opened.undo_stack.count() - 1)
    assert command.rect == (57, 37, 123, 103)


def test_export_and_load_mask_round_trip(opened: MainWindow, tmp_path: Path) -> None:
    square = _paint_square(opened)
    target = tmp_path / "mask.png"
    assert opened.files.export_mask(target)
    assert np.array_equal(np.asarray(Image.open(target)), square)
    opened.masks.clear()
    assert opened.files.load_mask(target)
    assert np.array_equal(opened.document.mask, square)
    opened.undo()
    assert not opened.document.mask.any()


def test_a_mask_of_the_wrong_size_is_a_message(opened: MainWindow, tmp_path: Path) -> None:
    wrong = tmp_path / "small.png"
    Image.new("L", (10, 10), 255).save(wrong)
    assert not opened.files.load_mask(wrong)
    assert "10x10" in opened.message_bar.text() and opened.message_bar.kind() == "error"


# ----------------------------------------------------------------- layers
def test_layer_operations_are_undoable(opened: MainWindow) -> None:
    doc = opened.document
    panel = opened.layers_panel
    original = doc.composite()
    panel.add_paint_layer()
    paint = doc.active_layer
    assert paint is not None and paint.kind == "paint" and len(doc.layers) == 2
    paint.pixels[10:20, 10:20] = (0, 0, 255, 255)
    doc.notify_changed(paint.id, (10, 10, 20, 20))
    painted = doc.composite()
    panel.duplicate_active()
    assert [la.name for la in doc.layers] == ["Background", "Paint", "Paint copy"]
    copy_id = doc.active_layer_id
    opened.undo_stack.push(
        __import__("inpaint_studio.ui.document.commands", fromlist=["x"]).RenameLayerCommand(doc, copy_id, "Blue")
    )
    assert doc.layer(copy_id).name == "Blue"
    panel.opacity.setValue(40)
    assert doc.layer(copy_id).opacity == pytest.approx(0.4)
    panel.merge_down_active()
    assert len(doc.layers) == 2 and np.array_equal(doc.composite(), painted)
    panel.flatten()
    assert len(doc.layers) == 1 and np.array_equal(doc.composite(), painted)
    for expected in (2, 3, 3, 3, 2, 1):  # flatten, merge, opacity, rename, duplicate, add
        opened.undo()
        assert len(doc.layers) == expected
    assert np.array_equal(doc.composite(), original)
    while opened.undo_stack.canRedo():
        opened.redo()
    assert len(doc.layers) == 1 and np.array_equal(doc.composite(), painted)


def test_layers_panel_lists_top_first_and_edits_through_undo(opened: MainWindow) -> None:
    doc = opened.document
    panel = opened.layers_panel
    panel.add_paint_layer()
    panel.add_paint_layer()
    names = [panel.list.item(r).text() for r in range(panel.list.count())]
    assert names == ["Paint 2", "Paint", "Background"]
    # Selecting a row sets the active layer.
    panel.list.setCurrentRow(2)
    assert doc.active_layer_id == doc.layers[0].id
    # Checkbox = visibility, text edit = rename; both undoable.
    item = panel.list.item(1)
    item.setCheckState(Qt.CheckState.Unchecked)
    assert not doc.layers[1].visible
    panel.list.item(1).setText("Sketch")
    assert doc.layers[1].name == "Sketch"
    opened.undo()
    opened.undo()
    assert doc.layers[1].name == "Paint" and doc.layers[1].visible
    # Delete is disabled for the last remaining layer.
    panel.delete_active()
    panel.list.setCurrentRow(0)
    panel.delete_active()
    panel.list.setCurrentRow(0)
    panel.delete_active()
    assert len(doc.layers) == 1 and not panel.delete_button.isEnabled()


def test_moving_a_layer_changes_the_composite_and_undoes(opened: MainWindow) -> None:
    doc = opened.document
    from inpaint_studio.ui.document.commands import MoveLayerCommand

    opened.layers_panel.add_paint_layer()
    paint = doc.active_layer
    assert paint is not None
    paint.pixels[...] = (255, 255, 255, 255)
    doc.notify_changed(paint.id, doc.full_rect)
    opened.undo_stack.push(MoveLayerCommand(doc, paint.id, 0))
    assert doc.layers[0] is paint and doc.composite()[0, 0, 0] != 255
    opened.undo()
    assert doc.layers[1] is paint and doc.composite()[0, 0, 0] == 255


def test_add_image_layer_hook_for_results(opened: MainWindow) -> None:
    doc = opened.document
    result = Image.new("RGB", IMAGE_SIZE, (9, 8, 7))
    layer = add_image_layer(opened.undo_stack, doc, result, "Result", metadata={"history_id": "h1"})
    assert doc.layers[-1] is layer and layer.kind == "result" and layer.metadata["history_id"] == "h1"
    assert tuple(doc.composite((0, 0, 1, 1))[0, 0]) == (9, 8, 7, 255)
    opened.undo()
    assert len(doc.layers) == 1


# ----------------------------------------------------------------- files
def test_open_export_round_trip_keeps_pixels(opened: MainWindow, image_path: Path, tmp_path: Path) -> None:
    _paint_square(opened)  # the mask is not part of the image
    out = tmp_path / "out.png"
    assert not opened.undo_stack.isClean()
    assert opened.files.export_image(out)
    assert opened.undo_stack.isClean() and not opened.isWindowModified()
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(Image.open(image_path)))
    assert opened.recent_files()[0] == str(image_path.resolve())


def test_export_jpeg_and_webp_by_extension(opened: MainWindow, tmp_path: Path) -> None:
    for name, fmt in (("a.jpg", "JPEG"), ("a.webp", "WEBP"), ("a.tif", "TIFF"), ("a.bmp", "BMP")):
        assert opened.files.export_image(tmp_path / name), opened.message_bar.text()
        assert Image.open(tmp_path / name).format == fmt


def test_export_with_an_unknown_extension_is_a_message(opened: MainWindow, tmp_path: Path) -> None:
    assert not opened.files.export_image(tmp_path / "a.xyz")
    assert "not a supported file type" in opened.message_bar.text()


def test_a_bad_file_shows_its_message_not_an_exception(window: MainWindow, tmp_path: Path) -> None:
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(BadInputError) as error:
        load_image(bad)
    assert not window.open_path(bad)
    assert window.message_bar.text() == str(error.value)
    assert window.message_bar.kind() == "error" and window.message_bar.isVisible()
    assert window.document.is_empty
    # The same failure again is counted, not stacked.
    window.open_path(bad)
    assert window.message_bar.text() == str(error.value)
    window.message_bar.dismiss()
    assert not window.message_bar.isVisible()


def test_dropping_files_opens_then_adds_layers(window: MainWindow, image_path: Path, tmp_path: Path, qtbot) -> None:
    second = tmp_path / "second.png"
    Image.new("RGB", (100, 50), (0, 255, 0)).save(second)
    _drop(window, [image_path, second])
    qtbot.waitUntil(lambda: len(window.document.layers) == 2)
    assert window.document.size == IMAGE_SIZE
    assert window.document.layers[1].name == "second"
    assert "centred" in window.message_bar.text()


def _drop(window: MainWindow, paths: list[Path]) -> None:
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPoint(100, 100)
    enter = QDragEnterEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, NoMod)
    window.dragEnterEvent(enter)
    assert enter.isAccepted()
    window.dropEvent(QDropEvent(QPointF(pos), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, NoMod))


def test_paste_makes_a_document_then_a_layer_and_copy_image(window: MainWindow) -> None:
    clipboard = QGuiApplication.clipboard()
    clipboard.setImage(pil_to_qimage(Image.new("RGB", (64, 48), (200, 10, 20))))
    window.files.paste()
    assert window.document.size == (64, 48) and len(window.document.layers) == 1
    clipboard.setImage(pil_to_qimage(Image.new("RGB", (64, 48), (1, 2, 3))))
    window.files.paste()
    assert len(window.document.layers) == 2
    assert tuple(window.document.composite((0, 0, 1, 1))[0, 0]) == (1, 2, 3, 255)
    window.undo()
    window.files.copy_image()
    copied = clipboard.image()
    assert (copied.width(), copied.height()) == (64, 48)
    assert copied.pixelColor(5, 5).red() == 200


# ----------------------------------------------------------------- unsaved work
@pytest.mark.parametrize(
    ("answer", "closes"),
    [(QMessageBox.StandardButton.Cancel, False), (QMessageBox.StandardButton.Discard, True)],
)
def test_closing_with_unsaved_work_asks(opened: MainWindow, monkeypatch, answer, closes) -> None:
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *args, **kwargs: asked.append(args) or answer)
    _paint_square(opened)
    opened.close()
    assert len(asked) == 1 and opened.isVisible() != closes


def test_closing_with_save_saves_the_project_first(opened: MainWindow, monkeypatch, tmp_path: Path) -> None:
    # Save means the project now (Save As when it has no file yet); exporting an image is File > Export.
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Save)
    target = tmp_path / "saved.inpaint"
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    _paint_square(opened)
    opened.close()
    assert target.exists() and not opened.isVisible()


def test_clean_window_closes_without_asking(window: MainWindow, monkeypatch) -> None:
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: pytest.fail("asked"))
    close_window(window)
    assert not window.isVisible()


# ----------------------------------------------------------------- start-up without torch
def test_window_opens_without_importing_torch(image_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os, sys
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtCore import QSettings
        from inpaint_studio.ui.app import create_application
        from inpaint_studio.ui.window.main_window import MainWindow
        app = create_application()
        window = MainWindow(settings=QSettings("{image_path.parent / "s.ini"}", QSettings.Format.IniFormat))
        window.show()
        assert window.open_path({str(image_path)!r})
        app.processEvents()
        window.close()
        heavy = [m for m in ("torch", "diffusers", "transformers") if m in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_a_huge_photo_starts_with_a_brush_visible_at_fit_zoom(window: MainWindow) -> None:
    window.tool_settings.set_size(40)
    window.open_image(Image.new("RGB", (9000, 300)), "huge")  # wide: tiny at fit, cheap to make
    assert window.tool_settings.size * window.canvas.scale >= 20
    window.tool_settings.set_size(40)
    window.open_image(Image.new("RGB", (300, 200)), "small")
    assert window.tool_settings.size == 40  # usable sizes are left alone


def test_open_recent_menu_reopens(opened: MainWindow, image_path: Path) -> None:
    opened._fill_recent_menu()
    entries = [a for a in opened._recent_menu.actions() if a.toolTip() == str(image_path.resolve())]
    assert len(entries) == 1
    opened.undo_stack.setClean()
    opened.open_image(Image.new("RGB", (10, 10)), "other")
    entries[0].trigger()
    assert opened.document.size == IMAGE_SIZE


def test_dragging_a_row_reorders_the_layers(opened: MainWindow, qtbot) -> None:
    doc = opened.document
    panel = opened.layers_panel
    panel.add_paint_layer()
    paint = doc.active_layer
    assert paint is not None
    # What an internal drag does to the list model: move the top row (the paint layer) to the bottom.
    panel.list.setCurrentRow(0)
    assert panel.list.model().moveRow(panel.list.rootIndex(), 0, panel.list.rootIndex(), 2)
    qtbot.waitUntil(lambda: doc.layers[0] is paint)
    assert [panel.list.item(r).text() for r in range(2)] == ["Background", "Paint"]
    opened.undo()
    assert doc.layers[1] is paint


def test_export_keeps_transparency_only_when_there_is_some(opened: MainWindow, tmp_path: Path) -> None:
    assert opened.files.export_image(tmp_path / "opaque.png")
    assert Image.open(tmp_path / "opaque.png").mode == "RGB"
    opened.layers_panel.add_paint_layer()
    opened.document.layers[0].pixels[0, 0, 3] = 0
    assert opened.files.export_image(tmp_path / "alpha.png")
    assert Image.open(tmp_path / "alpha.png").mode == "RGBA"
