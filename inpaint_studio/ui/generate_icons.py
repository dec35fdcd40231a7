"""Icons of the Generate panel (seed lock, dice), drawn with QPainter: emoji glyphs are missing from many
Linux fonts and showed as empty boxes under Xvfb."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPen, QPixmap

SIZE = 32
INK = QColor(225, 225, 230)
LOCKED = QColor(255, 196, 64)


def _icon(paint: Callable[[QPainter], None]) -> QIcon:
    icon = QIcon()
    for scale in (1, 2):
        pixmap = QPixmap(SIZE * scale, SIZE * scale)
        pixmap.setDevicePixelRatio(scale)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        paint(painter)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def padlock(locked: bool) -> QIcon:
    """A closed (amber) or open (grey) padlock."""

    def paint(painter: QPainter) -> None:
        color = LOCKED if locked else INK
        painter.setPen(QPen(color, 3, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        shackle = QRectF(9, 4, 14, 16) if locked else QRectF(15, 2, 14, 16)
        painter.drawArc(shackle, 0, 180 * 16)
        if locked:
            painter.drawLine(QPointF(9, 12), QPointF(9, 15))
        painter.drawLine(QPointF(shackle.right(), 12), QPointF(shackle.right(), 15))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(color)
        painter.drawRoundedRect(QRectF(6, 15, 20, 14), 3, 3)

    return _icon(paint)


def dice() -> QIcon:
    def paint(painter: QPainter) -> None:
        painter.setPen(QPen(INK, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(5, 5, 22, 22), 5, 5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(INK)
        for x, y in ((11, 11), (16, 16), (21, 21), (21, 11), (11, 21)):
            painter.drawEllipse(QPointF(x, y), 2.2, 2.2)

    return _icon(paint)
