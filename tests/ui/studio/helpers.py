"""Synthetic pointer gestures on the canvas (real Qt mouse events through QTest)."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QWidget

NoMod = Qt.KeyboardModifier.NoModifier
Left = Qt.MouseButton.LeftButton


def drag(
    widget: QWidget,
    points: list[tuple[int, int]],
    modifiers: Qt.KeyboardModifier = NoMod,
    button: Qt.MouseButton = Left,
) -> None:
    """Press at the first point, move through the others, release at the last."""
    first = QPoint(*points[0])
    QTest.mousePress(widget, button, modifiers, first)
    for x, y in points[1:]:
        QTest.mouseMove(widget, QPoint(x, y))
    QTest.mouseRelease(widget, button, modifiers, QPoint(*points[-1]))


def line(x0: int, y0: int, x1: int, y1: int, steps: int = 10) -> list[tuple[int, int]]:
    return [(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps)) for i in range(steps + 1)]
