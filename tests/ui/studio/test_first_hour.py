"""An artist's first hour (issue 14): each finding, driven through the real window as a person would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QColorDialog, QFileDialog, QLineEdit, QScrollArea, QToolButton, QWidget

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.parameters import parse_parameters
from inpaint_studio.core.project import load_project
from inpaint_studio.ui.engine_thread import worker as worker_module
from inpaint_studio.ui.engine_thread.worker import EngineWorker
from inpaint_studio.ui.window.composition import EngineOptions
from inpaint_studio.ui.window.main_window import MainWindow
from tests.ui.studio.conftest import close_window
from tests.ui.studio.helpers import drag, line

ROOT = Path(__file__).resolve().parents[3]
NOTCH = 120
SD15 = "stable-diffusion-v1-5/stable-diffusion-inpainting"  # a catalog model: listed even when not downloaded


def wheel(widget: QWidget, notches: int, pos: QPoint | None = None) -> None:
    """Turn the mouse wheel over `widget` (down for positive notches). QTest.wheelEvent goes through the
    platform's input path, so Qt finds the widget under the pointer and propagates as for a real wheel."""
    local = pos if pos is not None else widget.rect().center()
    window = widget.window()
    QTest.wheelEvent(window.windowHandle(), QPointF(widget.mapTo(window, local)), QPoint(0, -NOTCH * notches))
    QApplication.processEvents()


def click(widget: QWidget, pos: QPoint | None = None) -> None:
    """A left click as the platform delivers it (through the window: focus follows the click)."""
    local = pos if pos is not None else widget.rect().center()
    window = widget.window()
    QTest.mouseClick(
        window.windowHandle(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, widget.mapTo(window, local)
    )
    QApplication.processEvents()


# ---- 1. the wheel over the Generate panel scrolls it; only a focused control changes ----------------------


def test_wheel_over_the_generate_panel_scrolls_it_instead_of_changing_values(window: MainWindow, qtbot) -> None:
    panel = window.generation.panel
    window.resize(1280, 700)  # short enough that the panel scrolls
    window.activateWindow()
    qtbot.waitActive(window)
    # A diffusion model, as in the report: its sampler, steps and strength are enabled (the classical fill
    # disables them, and a disabled control never sees the wheel).
    assert panel.select_model(SD15)
    assert panel.scheduler_combo.isEnabled()
    scroll = panel.findChild(QScrollArea)
    bar = scroll.verticalScrollBar()
    assert bar.maximum() > 0, "the panel should be taller than its dock here"
    sampler, steps = panel.scheduler_combo, panel.steps_spin
    before = (sampler.currentText(), steps.value(), panel.strength_spin.value())
    window.canvas.setFocus()
    for control in (sampler, steps, panel.strength_spin):
        scroll.ensureWidgetVisible(control)
        start = bar.value()
        wheel(control, 1 if start < bar.maximum() else -1)
        assert bar.value() != start, f"the panel did not scroll under {type(control).__name__}"
    assert (sampler.currentText(), steps.value(), panel.strength_spin.value()) == before
    assert not sampler.hasFocus() and not steps.hasFocus()
    # Clicked into, a control takes the wheel as usual.
    scroll.ensureWidgetVisible(steps)
    click(steps)
    assert steps.hasFocus()
    wheel(steps, -1)
    assert steps.value() == before[1] + 1


# ---- 12. the classical fill answers at once, while the engine's libraries are still importing -------------


def test_classical_fill_right_after_start_does_not_wait_for_the_engine_warm_up(
    qtbot, studio_settings, image_path, monkeypatch
) -> None:
    gate = threading.Event()
    real_import = worker_module.import_engine_libraries

    def slow_import() -> float:  # torch taking its time to import (7 s on a busy 2-core machine)
        gate.wait(60)
        return real_import()

    monkeypatch.setattr(worker_module, "import_engine_libraries", slow_import)
    worker = EngineWorker()
    window = MainWindow(settings=studio_settings, engine=EngineOptions(worker=worker, warm_up_delay_ms=None))
    try:
        window.show()
        qtbot.waitExposed(window)
        assert window.open_path(image_path)
        window.canvas.set_view(1.0, QPointF(0, 0))
        worker.warm_up()  # what the window does shortly after it appears
        qtbot.waitUntil(lambda: worker.engine_state == "loading", timeout=10_000)
        drag(window.canvas, line(60, 60, 140, 90))  # a mask stroke
        QTest.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Generate
        controller = window.generation
        qtbot.waitUntil(lambda: len(controller.candidates.candidates()) == 1, timeout=20_000)
        assert worker.engine_state == "loading" and not gate.is_set()  # the import is still in progress
        # A diffusion job waits for the import, in its turn; the model is missing, so it then fails.
        failed: list[object] = []
        worker.job_failed.connect(failed.append)
        worker.submit(
            InpaintJob(model=str(image_path.parent / "no-such-model")),
            window.document.composite(),
            window.document.mask,
        )
        qtbot.wait(500)
        assert not failed and worker.is_busy
        gate.set()
        qtbot.waitUntil(lambda: bool(failed), timeout=60_000)
        assert worker.engine_state == "ready"
    finally:
        gate.set()
        close_window(window)


# ---- 10. quitting: the window goes at once, the process ends without the interpreter's teardown -----------


def test_closing_hides_the_window_and_writes_the_settings_before_stopping_the_engine(
    window: MainWindow, studio_settings, monkeypatch
) -> None:
    seen: dict[str, object] = {}
    stop = window.generation.shutdown

    def shutdown() -> bool:
        seen["visible"] = window.isVisible()
        seen["settings on disk"] = Path(studio_settings.fileName()).read_text()
        return stop()

    monkeypatch.setattr(window.generation, "shutdown", shutdown)
    window.undo_stack.setClean()
    assert window.close()
    assert seen["visible"] is False
    assert "geometry" in str(seen["settings on disk"])


def test_quitting_ends_the_process_at_once_and_keeps_every_guarantee(tmp_path: Path, image_path: Path) -> None:
    """The real start-up path, ended the way the application ends (exit_at_once): a save in flight still
    finishes, the autosave slot is removed, the settings are on disk, the exit code is 0."""
    project = tmp_path / "work.inpaint"
    recovery, config = tmp_path / "recovery", tmp_path / "config"
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from inpaint_studio.ui import app
        from inpaint_studio.ui.document.commands import mask_change

        def drive():
            window = next(w for w in QApplication.topLevelWidgets() if type(w).__name__ == "MainWindow")
            if window.document.is_empty:
                QTimer.singleShot(50, drive)
                return
            mask = np.zeros(window.document.mask.shape, np.uint8)
            mask[10:60, 10:60] = 255
            window.undo_stack.push(mask_change(window.document, mask, "stroke"))
            assert window.autosave.autosave_now()  # an autosave slot now exists
            window.projects.save_to({str(project)!r})  # runs in the background: in flight while closing
            window.projects.mark_saved()  # (no question on close)
            window.close()

        app.create_application()
        QTimer.singleShot(100, drive)
        app.run_gui([{str(image_path)!r}], exit_at_once=True)
        print("the interpreter's teardown ran")
        """
    )
    env = dict(
        os.environ,
        INPAINT_STUDIO_RECOVERY_DIR=str(recovery),
        XDG_CONFIG_HOME=str(config),
        QT_QPA_PLATFORM="offscreen",
        PYTHONPATH=str(ROOT),
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "teardown ran" not in done.stdout  # it ended at once
    assert load_project(project).document.size == (240, 160)  # the save in flight finished
    assert not [p for p in recovery.rglob("*") if p.is_file()]  # the autosave slot is gone
    settings = next(config.rglob("*.conf")).read_text()
    assert "geometry" in settings and "recent_files" in settings


# ---- 2. File > Export carries the parameters of the result the picture shows ------------------------------


def set_spin(spin, value: int) -> None:
    """Click into a spin box, select its text, type a number and press Enter."""
    click(spin)
    QTest.keyClick(spin, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(spin, str(value))
    QTest.keyClick(spin, Qt.Key.Key_Return)


def fill_and_apply(window: MainWindow, qtbot, stroke: list[tuple[int, int]]) -> None:
    """Paint a mask stroke, generate (Ctrl+Enter) with the panel's model, apply the result (Enter)."""
    controller = window.generation
    count = len(controller.candidates.candidates())
    drag(window.canvas, stroke)
    QTest.keyClick(window.canvas, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(controller.candidates.candidates()) > count, timeout=60_000)
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert window.document.layers[-1].kind == "result"


def exported_parameters(window: MainWindow, path: Path) -> dict[str, str] | None:
    assert window.files.export_image(path)
    with Image.open(path) as image:
        text = image.info.get("parameters")
    return None if text is None else parse_parameters(text)


def test_export_carries_the_parameters_of_the_topmost_visible_result(opened: MainWindow, qtbot, tmp_path) -> None:
    window, panel = opened, opened.generation.panel
    window.activateWindow()
    qtbot.waitActive(window)
    assert exported_parameters(window, tmp_path / "plain.png") is None  # the photo had none
    set_spin(panel.feather_spin, 3)
    window.canvas.setFocus()
    fill_and_apply(window, qtbot, line(40, 40, 100, 60))
    set_spin(panel.feather_spin, 9)
    window.canvas.setFocus()
    fill_and_apply(window, qtbot, line(120, 100, 200, 120))
    top = exported_parameters(window, tmp_path / "two.png")
    assert top is not None and top["Mask blur"] == "9" and top["Model"] == "classic" and top["Size"] == "240x160"
    # The top result hidden (its checkbox in the Layers panel): the picture shows the first one.
    window.layers_panel.list.item(0).setCheckState(Qt.CheckState.Unchecked)
    assert not window.document.layers[-1].visible
    assert exported_parameters(window, tmp_path / "first.png")["Mask blur"] == "3"
    # Both undone (Ctrl+Z through the hide, the applies and the strokes): no generation is shown any more.
    for _ in range(4):
        QTest.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [layer.kind for layer in window.document.layers] == ["base"]
    assert exported_parameters(window, tmp_path / "undone.png") is None


# ---- 3. after Apply the mask is cleared (one undo step, unless kept); the overlay colour is a setting -------


def test_apply_clears_the_mask_in_the_same_undo_step_unless_kept(opened: MainWindow, qtbot) -> None:
    window = opened
    window.activateWindow()
    qtbot.waitActive(window)
    fill_and_apply(window, qtbot, line(40, 40, 100, 60))
    assert not window.document.mask.any()  # the result is not hidden under the overlay
    # One Ctrl+Z takes back the result and brings the mask back.
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [layer.kind for layer in window.document.layers] == ["base"] and window.document.mask.any()
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert window.document.layers[-1].kind == "result" and not window.document.mask.any()
    # Mask > Keep Mask After Apply: the next apply leaves the mask for another try on the same area.
    keep = window.actions["keep_mask_after_apply"]
    assert keep in _menu(window, "&Mask").actions()
    keep.trigger()
    assert window.settings.keep_mask_after_apply
    fill_and_apply(window, qtbot, line(120, 100, 200, 120))
    assert window.document.mask[100:120, 120:200].any()


def test_the_mask_overlay_colour_is_chosen_in_the_view_menu_and_remembered(
    opened: MainWindow, qtbot, studio_settings, monkeypatch
) -> None:
    window = opened
    drag(window.canvas, line(40, 60, 200, 60))
    blue = QColor(40, 90, 255)
    monkeypatch.setattr(QColorDialog, "getColor", lambda *args, **kwargs: blue)
    action = window.actions["overlay_color"]
    assert action in _menu(window, "&View").actions()
    before = window.canvas.grab().toImage().pixelColor(120, 60)
    action.trigger()
    after = window.canvas.grab().toImage().pixelColor(120, 60)
    # Half-opacity pink (255, 48, 96) became half-opacity blue over the same photo pixel.
    assert before.red() - after.red() > 80 and after.blue() - before.blue() > 60
    assert window.settings.mask_color == blue.name()
    again = MainWindow(settings=studio_settings)
    try:
        assert again.canvas.mask_color == blue
    finally:
        close_window(again)


# ---- 4. a message over the canvas neither moves nor re-zooms the image -----------------------------------


def test_a_message_floats_over_the_canvas_without_resizing_or_rezooming_it(window: MainWindow, image_path, qtbot):
    assert window.open_path(image_path)
    canvas = window.canvas
    canvas.fit_to_window()
    size, zoom, offset = canvas.size(), canvas.zoom, canvas.offset
    QTest.keyClick(canvas, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    bar = window.message_bar
    assert bar.isVisible() and "copied" in bar.text()
    assert (canvas.size(), canvas.zoom, canvas.offset) == (size, zoom, offset)
    top_left = bar.mapTo(window, bar.rect().topLeft())
    assert top_left == canvas.mapTo(window, canvas.rect().topLeft()) and bar.width() == canvas.width()
    window.resize(window.width() - 80, window.height())  # it follows the canvas's width
    qtbot.waitUntil(lambda: bar.width() == canvas.width())
    size, zoom = canvas.size(), canvas.zoom
    QTest.mouseClick(bar.findChild(QToolButton), Qt.MouseButton.LeftButton)  # its close button
    assert not bar.isVisible()
    assert (canvas.size(), canvas.zoom) == (size, zoom)


# ---- 5. with the pointer over the canvas, its keys work after a click in a panel ---------------------------


def point_at(widget: QWidget, pos: QPoint | None = None) -> None:
    """Move the pointer over `widget` as the platform reports it (enter and leave events included)."""
    local = pos if pos is not None else widget.rect().center()
    window = widget.window()
    QTest.mouseMove(window.windowHandle(), widget.mapTo(window, local))
    QApplication.processEvents()


def press(window: MainWindow, key: Qt.Key, modifiers=Qt.KeyboardModifier.NoModifier, release: bool = True) -> None:
    """A key pressed on the keyboard: it goes to whichever widget has the focus."""
    QTest.keyPress(window.windowHandle(), key, modifiers)
    if release:
        QTest.keyRelease(window.windowHandle(), key, modifiers)
    QApplication.processEvents()


def test_backslash_and_enter_work_over_the_canvas_after_clicking_a_panel(opened: MainWindow, qtbot) -> None:
    window, controller = opened, opened.generation
    window.activateWindow()
    qtbot.waitActive(window)
    panel = controller.panel
    # Paint a mask, then click Generate in the panel: the button has the keyboard now.
    drag(window.canvas, line(40, 40, 100, 60))
    panel.findChild(QScrollArea).ensureWidgetVisible(panel.generate_button)
    click(panel.generate_button)
    assert panel.generate_button.hasFocus()
    qtbot.waitUntil(lambda: len(controller.candidates.candidates()) == 1, timeout=60_000)
    assert controller.overlay.showing  # the result is previewed on the canvas
    # Back over the canvas, Enter applies the result (it does not click Generate again).
    point_at(window.canvas, QPoint(150, 120))
    press(window, Qt.Key.Key_Return)
    assert window.document.layers[-1].kind == "result"
    assert not window.generation.worker.is_busy and len(controller.candidates.candidates()) == 1
    # Choose a fill method in the combo box (it keeps the focus), then hold \ over the canvas.
    combo = panel.method_combo
    panel.findChild(QScrollArea).ensureWidgetVisible(combo)
    click(combo)
    press(window, Qt.Key.Key_Down)
    press(window, Qt.Key.Key_Return)  # picks it and closes the list
    qtbot.waitUntil(lambda: combo.view() is None or not combo.view().isVisible())
    assert combo.hasFocus()
    point_at(window.canvas, QPoint(160, 100))
    press(window, Qt.Key.Key_Backslash, release=False)
    assert window.canvas.showing_original
    press(window, Qt.Key.Key_Backslash)
    assert not window.canvas.showing_original


def test_typing_in_the_prompt_keeps_the_keys_while_the_pointer_crosses_the_canvas(opened: MainWindow, qtbot) -> None:
    window, panel = opened, opened.generation.panel
    window.activateWindow()
    qtbot.waitActive(window)
    assert panel.select_model(SD15)
    click(panel.prompt_edit)
    point_at(window.canvas)
    press(window, Qt.Key.Key_Backslash)
    assert panel.prompt_edit.hasFocus() and panel.prompt_edit.toPlainText() == "\\"


# ---- 9. applied marks follow undo; long history titles; room for the layers; the brush is remembered ------


def test_an_undone_apply_loses_its_tick_and_redo_brings_it_back(opened: MainWindow, qtbot) -> None:
    window = opened
    window.activateWindow()
    qtbot.waitActive(window)
    fill_and_apply(window, qtbot, line(40, 40, 100, 60))
    item = window.generation.candidates.list.item(0)
    assert item.text().endswith("✓")
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not item.text().endswith("✓")
    QTest.keyClick(window.canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert item.text().endswith("✓")


def test_a_long_history_title_is_cut_at_the_panel_edge_not_scrolled(opened: MainWindow, qtbot) -> None:
    window = opened
    long_name = "a layer with a very long name that goes on and on well past the edge of the history panel"
    window.activateWindow()
    qtbot.waitActive(window)
    press(window, Qt.Key.Key_F2)  # Layer > Rename: the name becomes editable in the Layers panel
    editor = window.layers_panel.list.findChild(QLineEdit)
    assert editor is not None and editor.hasFocus()
    QTest.keyClicks(editor, long_name)
    press(window, Qt.Key.Key_Return)
    assert window.document.layers[0].name == long_name
    history = window.generation.history_panel
    qtbot.waitUntil(lambda: history.list.count() == 2)
    row = history.list.item(history.list.count() - 1)
    assert long_name in row.toolTip()
    assert history.list.visualItemRect(row).width() > history.list.viewport().width()  # too long to fit...
    assert not history.list.horizontalScrollBar().isVisible()  # ...and cut, not scrolled sideways


def test_the_layers_panel_shows_several_rows_at_the_default_size(window: MainWindow, image_path) -> None:
    assert window.open_path(image_path)
    rows = window.layers_panel.list
    row_height = rows.visualItemRect(rows.item(0)).height() + 2 * rows.spacing()
    assert rows.viewport().height() >= 4 * row_height


def test_the_brush_size_and_hardness_are_remembered(opened: MainWindow, studio_settings) -> None:
    window = opened
    for _ in range(3):
        QTest.keyClick(window.canvas, Qt.Key.Key_BracketRight)  # ] bigger
    QTest.keyClick(window.canvas, Qt.Key.Key_BracketLeft, Qt.KeyboardModifier.ShiftModifier)  # Shift+[ softer
    size, hardness = window.tool_settings.size, window.tool_settings.hardness
    assert size > 20 and hardness < 1.0
    close_window(window)
    again = MainWindow(settings=studio_settings)
    try:
        assert (again.tool_settings.size, again.tool_settings.hardness) == (size, hardness)
        assert again.size_spin.value() == round(size)
    finally:
        close_window(again)


# ---- 7. a model folder added in the studio is listed by `inpaint-studio models` --------------------------


def test_a_folder_added_in_the_studio_is_your_folder_there_and_on_the_command_line(
    window: MainWindow, tiny_sd_inpaint: Path, monkeypatch, private_config_dir: Path
) -> None:
    picker = window.generation.panel.models
    # "+" > "Add model folder…"; the folder is picked in the system's dialog.
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args, **kwargs: str(tiny_sd_inpaint))
    add_folder = next(a for a in picker.add_button.menu().actions() if a.text().startswith("Add model folder"))
    add_folder.trigger()
    assert picker.combo.currentText().endswith("(your folder)")
    assert tiny_sd_inpaint.name in picker.combo.currentText()
    env = dict(os.environ, INPAINT_STUDIO_CONFIG_DIR=str(private_config_dir), HF_HUB_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "inpaint_studio", "models"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    row = next(line for line in done.stdout.splitlines() if str(tiny_sd_inpaint) in line)
    assert row.split()[0] == "yes" and row.split()[-1] == str(tiny_sd_inpaint)  # listed, installed


# ---- responsiveness: the engine's threads yield the cores to the window -----------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_the_engine_thread_runs_below_the_window_in_priority_and_the_import_thread_does_not(qtbot, monkeypatch) -> None:
    """Torch work runs niced (the window gets a core first); the import thread keeps the window's priority,
    since a niced thread holding the GIL for an import stalled the window 60-80 ms (priority inversion)."""
    seen: list[int] = []
    importer: list[int] = []

    def imports() -> float:
        importer.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return 0.0

    monkeypatch.setattr(worker_module, "import_engine_libraries", imports)

    class Engine:
        def run(self, job, image, mask, *, on_event, job_id, **_):
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
            raise BadInputError("done")

        def release(self) -> None:
            pass

    worker = EngineWorker(engine_factory=Engine)
    try:
        image, mask = np.zeros((8, 8, 3), np.uint8), np.full((8, 8), 255, np.uint8)
        worker.submit(InpaintJob(model="someone/a-diffusion-model"), image, mask)
        qtbot.waitUntil(lambda: bool(seen), timeout=30_000)
        ui = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert seen[0] >= min(19, ui + worker_module.ENGINE_NICE)
        assert importer == [ui]
    finally:
        assert worker.shutdown(10)


def _menu(window, title: str):
    """The menu bar's menu with this title (menus are found by name: their order may change)."""
    menus = {action.text(): action.menu() for action in window.menuBar().actions()}
    return menus[title]
