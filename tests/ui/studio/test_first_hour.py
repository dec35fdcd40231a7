"""An artist's first hour (issue 14): each finding, driven through the real window as a person would."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QScrollArea, QWidget

from inpaint_studio.ui.window.main_window import MainWindow

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
