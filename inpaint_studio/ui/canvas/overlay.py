"""A preview drawn over the canvas without touching the document: a candidate result or a past state.

A transparent child widget of the canvas that follows its zoom and pan (it reads the canvas's public
`offset` and `scale` at paint time; the canvas repaints its children whenever it repaints). It ignores the
mouse, so painting, zooming and panning keep working while a preview shows. The image is kept in a
`DisplayCache` (premultiplied, with half-size levels) so a zoomed-out view of a large preview costs what
the canvas itself costs.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QLabel, QWidget

from inpaint_studio.core.document import Rect
from inpaint_studio.ui.canvas.display_cache import DisplayCache
from inpaint_studio.ui.canvas.widget import Canvas


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA (or RGB) uint8 -> premultiplied RGBA uint8."""
    if rgba.shape[2] == 3:
        return np.dstack([rgba, np.full(rgba.shape[:2], 255, np.uint8)])
    alpha = rgba[..., 3:4].astype(np.uint16)
    out = rgba.copy()
    out[..., :3] = ((rgba[..., :3].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
    return out


class CanvasOverlay(QWidget):
    """Shows one preview image at a document position, with a caption; `clear()` hides it."""

    def __init__(self, canvas: Canvas) -> None:
        super().__init__(canvas)
        self.canvas = canvas
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setAttribute(Qt.WidgetAttribute.WA_NoSystemBackground)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self._cache: DisplayCache | None = None
        self._origin = (0, 0)
        self._size = (0, 0)
        self._outline = True
        self.kind: str | None = None  # "candidate" | "history" | None
        self.key: object = None  # what is shown (a candidate key or a history id), for the controllers
        self._caption = QLabel(self)
        self._caption.setStyleSheet(
            "QLabel { background: rgba(20, 20, 22, 210); color: #f0f0f0; padding: 4px 8px; border-radius: 4px; }"
        )
        self._caption.hide()
        canvas.installEventFilter(self)
        self.setGeometry(canvas.rect())
        self.hide()

    # ---- API --------------------------------------------------------------------------------------
    @property
    def showing(self) -> bool:
        return self._cache is not None

    @property
    def caption(self) -> str:
        return self._caption.text() if self.showing else ""

    def show_image(
        self,
        pixels: np.ndarray,
        origin: tuple[int, int] = (0, 0),
        caption: str = "",
        *,
        kind: str = "candidate",
        key: object = None,
        outline: bool = True,
    ) -> None:
        """Show straight RGBA/RGB `pixels` with their top-left at document `origin`."""
        premultiplied = np.ascontiguousarray(premultiply(pixels))
        height, width = premultiplied.shape[:2]
        cache = DisplayCache(lambda rect: premultiplied[rect[1] : rect[3], rect[0] : rect[2]])
        cache.rebuild(width, height)
        self._cache, self._origin, self._size = cache, (int(origin[0]), int(origin[1])), (width, height)
        self._outline, self.kind, self.key = outline, kind, key
        self._caption.setText(caption)
        self._caption.setVisible(bool(caption))
        self._caption.adjustSize()
        self.setGeometry(self.canvas.rect())
        self._place_caption()
        self.show()
        self.raise_()
        self.update()

    def clear(self) -> None:
        if self._cache is None:
            return
        self._cache, self.kind, self.key = None, None, None
        self._caption.hide()
        self.hide()
        self.canvas.update()

    def document_rect(self) -> Rect | None:
        if not self.showing:
            return None
        x, y = self._origin
        return (x, y, x + self._size[0], y + self._size[1])

    # ---- Qt ----------------------------------------------------------------------------------------
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.canvas and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.canvas.rect())
            self._place_caption()
        return False

    def _place_caption(self) -> None:
        # Bottom-left: the top of the canvas is where the message bar and the image's top edge are.
        self._caption.move(10, max(0, self.height() - self._caption.height() - 10))

    def paintEvent(self, event: QPaintEvent) -> None:
        if self._cache is None:
            return
        scale = self.canvas.scale
        chosen = self._cache.image_for(self.canvas.zoom)
        if chosen is None:
            return
        image, level_scale = chosen
        painter = QPainter(self)
        painter.setClipRect(event.rect())
        offset = self.canvas.offset
        x, y = self._origin
        top_left = QPointF(offset.x() + x * scale, offset.y() + y * scale)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.canvas.zoom < 2.0)
        painter.translate(top_left)
        painter.scale(scale / level_scale, scale / level_scale)
        painter.drawImage(QPointF(0, 0), image)
        painter.restore()
        if self._outline:
            rect = QRectF(top_left, QPointF(top_left.x() + self._size[0] * scale, top_left.y() + self._size[1] * scale))
            painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
            painter.drawRect(rect.adjusted(-1, -1, 0, 0))
            painter.setPen(QPen(QColor(255, 210, 80), 1, Qt.PenStyle.DashLine))
            painter.drawRect(rect.adjusted(-1, -1, 0, 0))
        painter.end()
