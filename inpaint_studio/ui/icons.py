"""Tool bar icons drawn with QPainter, so the app ships no image files and icons stay sharp at any DPI."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap

SIZE = 32
INK = QColor(225, 225, 230)
ACCENT = QColor(255, 48, 96)  # the mask overlay colour
LOCKED = QColor(255, 196, 64)  # a locked seed


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


def object_select() -> QIcon:
    """A pointer clicking on a blob (Select tool)."""

    def paint(p: QPainter) -> None:
        p.setBrush(QColor(40, 170, 255, 150))
        p.setPen(QPen(INK, 1.5, Qt.PenStyle.DashLine))
        p.drawEllipse(QRectF(3, 4, 20, 16))
        arrow = QPainterPath(QPointF(15, 12))
        arrow.lineTo(QPointF(15, 29))
        arrow.lineTo(QPointF(19, 25))
        arrow.lineTo(QPointF(22, 31))
        arrow.lineTo(QPointF(25, 29.5))
        arrow.lineTo(QPointF(22, 24))
        arrow.lineTo(QPointF(28, 23))
        arrow.closeSubpath()
        p.setPen(QPen(QColor(30, 30, 34), 1.5))
        p.setBrush(INK)
        p.drawPath(arrow)

    return _draw(paint)


def expand_canvas() -> QIcon:
    """A picture inside a bigger dashed frame, with arrows outwards (Expand tool)."""

    def paint(p: QPainter) -> None:
        p.setPen(QPen(INK, 1.5, Qt.PenStyle.DashLine))
        p.drawRect(QRectF(3, 3, 26, 26))
        p.setPen(QPen(INK, 2))
        p.setBrush(QColor(90, 90, 96))
        p.drawRect(QRectF(10, 10, 12, 12))
        for start, end in (((16, 9), (16, 5)), ((16, 23), (16, 27)), ((9, 16), (5, 16)), ((23, 16), (27, 16))):
            p.drawLine(QPointF(*start), QPointF(*end))

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


def layer_add() -> QIcon:
    def paint(p: QPainter) -> None:
        p.drawRect(QRectF(6, 9, 16, 16))
        p.drawLine(QPointF(24, 4), QPointF(24, 12))
        p.drawLine(QPointF(20, 8), QPointF(28, 8))

    return _draw(paint)


def layer_duplicate() -> QIcon:
    def paint(p: QPainter) -> None:
        p.drawRect(QRectF(11, 5, 15, 15))
        p.setBrush(QColor(50, 50, 53))
        p.drawRect(QRectF(6, 12, 15, 15))

    return _draw(paint)


def layer_merge_down() -> QIcon:
    def paint(p: QPainter) -> None:
        p.drawLine(QPointF(16, 4), QPointF(16, 17))
        p.drawLine(QPointF(10, 11), QPointF(16, 17))
        p.drawLine(QPointF(22, 11), QPointF(16, 17))
        p.drawRect(QRectF(6, 21, 20, 6))

    return _draw(paint)


def layer_flatten() -> QIcon:
    def paint(p: QPainter) -> None:
        for y in (7, 14):
            p.setPen(QPen(QColor(INK.red(), INK.green(), INK.blue(), 110), 2))
            p.drawLine(QPointF(8, y), QPointF(24, y))
        p.setPen(QPen(INK, 2))
        p.setBrush(INK)
        p.drawRect(QRectF(6, 20, 20, 6))

    return _draw(paint)


def layer_delete() -> QIcon:
    def paint(p: QPainter) -> None:
        p.drawLine(QPointF(7, 9), QPointF(25, 9))
        p.drawLine(QPointF(13, 9), QPointF(13, 5))
        p.drawLine(QPointF(13, 5), QPointF(19, 5))
        p.drawLine(QPointF(19, 5), QPointF(19, 9))
        path = QPainterPath(QPointF(9, 9))
        path.lineTo(QPointF(11, 27))
        path.lineTo(QPointF(21, 27))
        path.lineTo(QPointF(23, 9))
        p.drawPath(path)
        p.drawLine(QPointF(14, 13), QPointF(14.5, 23))
        p.drawLine(QPointF(18, 13), QPointF(17.5, 23))

    return _draw(paint)


# ---- the Generate panel's seed controls ----


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

    return _draw(paint)


def dice() -> QIcon:
    def paint(painter: QPainter) -> None:
        painter.setPen(QPen(INK, 2))
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRoundedRect(QRectF(5, 5, 22, 22), 5, 5)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(INK)
        for x, y in ((11, 11), (16, 16), (21, 21), (21, 11), (11, 21)):
            painter.drawEllipse(QPointF(x, y), 2.2, 2.2)

    return _draw(paint)
