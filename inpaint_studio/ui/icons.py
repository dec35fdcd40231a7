"""Tool bar icons drawn with QPainter, so the app ships no image files and icons stay sharp at any DPI."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

SIZE = 32
INK = QColor(225, 225, 230)
ACCENT = QColor(255, 48, 96)  # the mask overlay colour


def _draw(paint: Callable[[QPainter], None]) -> QIcon:
    icon = QIcon()
    for scale in (1, 2):  # a 2x pixmap for high-DPI screens
        pixmap = QPixmap(SIZE * scale, SIZE * scale)
        pixmap.setDevicePixelRatio(scale)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(INK, 2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin))
        paint(painter)
        painter.end()
        icon.addPixmap(pixmap)
    return icon


def _brush_shape(painter: QPainter, tip: QColor) -> None:
    path = QPainterPath(QPointF(26, 4))
    path.lineTo(QPointF(28, 6))
    path.lineTo(QPointF(15, 20))
    path.lineTo(QPointF(12, 17))
    path.closeSubpath()
    painter.drawPath(path)
    blob = QPainterPath(QPointF(11, 18))
    blob.cubicTo(QPointF(6, 18), QPointF(8, 25), QPointF(4, 28))
    blob.cubicTo(QPointF(10, 28), QPointF(15, 26), QPointF(14, 21))
    blob.closeSubpath()
    painter.setBrush(tip)
    painter.drawPath(blob)


def mask_brush() -> QIcon:
    return _draw(lambda p: _brush_shape(p, ACCENT))


def paint_brush(color: QColor | None = None) -> QIcon:
    return _draw(lambda p: _brush_shape(p, color or QColor(255, 255, 255)))


def eraser() -> QIcon:
    def paint(p: QPainter) -> None:
        p.translate(16, 16)
        p.rotate(-40)
        p.setBrush(QColor(240, 160, 170))
        p.drawRoundedRect(QRectF(-11, -6, 22, 12), 2, 2)
        p.setBrush(INK)
        p.drawRoundedRect(QRectF(-11, -6, 8, 12), 2, 2)

    return _draw(paint)


def rect_select() -> QIcon:
    def paint(p: QPainter) -> None:
        p.setPen(QPen(INK, 2, Qt.PenStyle.DashLine))
        p.drawRect(QRectF(5, 7, 22, 18))

    return _draw(paint)


def lasso() -> QIcon:
    def paint(p: QPainter) -> None:
        p.setPen(QPen(INK, 2, Qt.PenStyle.DashLine))
        p.drawEllipse(QRectF(4, 5, 24, 15))
        p.setPen(QPen(INK, 2))
        p.drawLine(QPointF(10, 19), QPointF(8, 28))

    return _draw(paint)


def eyedropper() -> QIcon:
    def paint(p: QPainter) -> None:
        p.translate(16, 16)
        p.rotate(45)
        p.drawRoundedRect(QRectF(-3, -13, 6, 6), 1, 1)
        p.drawLine(QPointF(-5, -7), QPointF(5, -7))
        p.drawRect(QRectF(-2, -7, 4, 14))
        p.drawLine(QPointF(0, 7), QPointF(0, 12))

    return _draw(paint)


def mask_overlay() -> QIcon:
    def paint(p: QPainter) -> None:
        p.setBrush(QColor(ACCENT.red(), ACCENT.green(), ACCENT.blue(), 150))
        p.drawEllipse(QRectF(4, 8, 24, 16))
        p.setBrush(INK)
        p.drawEllipse(QPointF(16, 16), 4, 4)

    return _draw(paint)


def swatch(color: QColor) -> QIcon:
    def paint(p: QPainter) -> None:
        p.setPen(QPen(QColor(20, 20, 20), 1))
        p.setBrush(color)
        p.drawRoundedRect(QRectF(5, 5, 22, 22), 3, 3)

    return _draw(paint)
