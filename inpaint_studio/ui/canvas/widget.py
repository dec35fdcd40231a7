"""The canvas: draws the document, routes pointer input to the current tool, zooms and pans.

Why a plain QWidget and not QGraphicsView: the canvas shows one big raster plus a few overlays. A scene
graph would add item indexing, its own caching and a second coordinate system without giving anything we
use, and it would make the dirty-rect path (document change -> cache rect -> widget rect) less direct.
Here the view transform is two numbers (scale, offset) and paintEvent draws only the exposed region.

Rendering: the composite lives in a `DisplayCache` (premultiplied BGRA + mip levels), refreshed only in the
rect a change touched. The mask is drawn straight from the document's numpy array through a zero-copy
Alpha8 QImage, so a mask dab costs nothing but the repaint of its screen rect.

Zoom is in device pixels: 100 % shows one image pixel per physical screen pixel, also on high-DPI screens.

Keys handled here (the window's actions handle the rest): hold Space to pan with the left button, hold
Backslash to see the original (the base layer alone). The canvas takes the keyboard focus when the pointer
comes over it (as Krita's does), so these keys and Enter (apply) work after a click on a panel's button or
list, unless the user is typing in a text or number field, which keeps its focus. Enter and Esc go to the
current tool first when it has a use for them (the Select tool's proposal), before the window's shortcuts
(apply a result, cancel a job).

A canvas-size change (`Document.resized`: an expansion, an upscale or their undo) rebuilds the display cache
and keeps the image where it was on screen (or refits it, in fit mode).
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, QRectF, QSize, QSizeF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QCursor,
    QEnterEvent,
    QFocusEvent,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QPolygonF,
    QRegion,
    QResizeEvent,
    QTabletEvent,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QTextEdit,
    QWidget,
)

from inpaint_studio.core.document import Document, Layer, Rect, composite_layers
from inpaint_studio.ui import qt_images
from inpaint_studio.ui.canvas.display_cache import DisplayCache
from inpaint_studio.ui.canvas.tools import TOOL_CLASSES, PointerEvent, Preview, Tool, ToolSettings
from inpaint_studio.ui.canvas.tools_expand import ExpandTool
from inpaint_studio.ui.canvas.tools_select import ObjectSelectTool, SelectionOverlay

ZOOM_MIN, ZOOM_MAX = 1 / 64, 64.0
WHEEL_ZOOM_STEP = 1.25  # per wheel notch (120 units of angle delta)
KEY_ZOOM_STEP = math.sqrt(2)  # + / - keys
FIT_MARGIN = 24  # logical pixels around a fitted image
KEEP_VISIBLE = 48  # panning never loses the image: this many logical pixels stay on screen
ORIGINAL_KEY = Qt.Key.Key_Backslash
BACKGROUND = QColor(43, 43, 46)
MASK_COLOR = QColor(255, 48, 96)
MASK_OPACITY = 0.5
PROPOSAL_COLORS = {False: QColor(40, 170, 255), True: QColor(255, 190, 30)}  # add / cut out of the mask
PROPOSAL_OPACITY = 0.55
ALL_TOOLS: tuple[type[Tool], ...] = (*TOOL_CLASSES, ObjectSelectTool, ExpandTool)
CHECKER_SIZE = 8


def _checker_brush() -> QBrush:
    size = CHECKER_SIZE
    pixmap = QPixmap(2 * size, 2 * size)
    pixmap.fill(QColor(204, 204, 204))
    painter = QPainter(pixmap)
    painter.fillRect(0, 0, size, size, QColor(153, 153, 153))
    painter.fillRect(size, size, size, size, QColor(153, 153, 153))
    painter.end()
    return QBrush(pixmap)


class Canvas(QWidget):
    """Shows `document`; tools edit it and push their undo steps on `undo_stack`."""

    zoom_changed = Signal(float)  # zoom, 1.0 = 100 %
    cursor_moved = Signal(object)  # (x, y) integer document pixel under the pointer, or None outside
    tool_changed = Signal(str)  # tool name
    mask_visible_changed = Signal(bool)
    original_shown = Signal(bool)  # the base-only view was entered (True) or left (False)

    def __init__(
        self,
        document: Document,
        undo_stack: QUndoStack,
        settings: ToolSettings,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.document, self.undo_stack, self.settings = document, undo_stack, settings
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)  # we fill every exposed pixel ourselves
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setTabletTracking(True)
        self.setMinimumSize(QSize(200, 150))
        self.setAcceptDrops(False)  # the main window handles drops for the whole window

        self._primed: np.ndarray | None = None  # a composite computed elsewhere for the next reset
        self._cache = DisplayCache(self._cache_source)
        self._original_cache: DisplayCache | None = None  # built on first use of the compare key
        self._original_layer: Layer | None = None
        self._mask_image: QImage | None = None
        self._mask_array: np.ndarray | None = None
        self._checker = _checker_brush()

        self._zoom = 1.0
        self._offset = QPointF(0, 0)  # widget position (logical px) of the document's top-left corner
        self._fit_mode = True  # refit on resize until the user zooms or pans
        self._show_mask = True
        self._mask_color = QColor(MASK_COLOR)
        self._show_original = False
        self._space_down = False
        self._panning: QPointF | None = None  # last pan position while dragging
        self._pointer: QPointF | None = None  # last pointer position in widget coordinates
        self._stroke_button: Qt.MouseButton | None = None
        self._tablet_down = False
        self._preview_region = QRegion()  # where the selection outline was drawn (to erase it)
        self._preview_points = 0  # lasso points already outlined
        self._cursor_radius_shown = 0.0  # radius of the brush outline last painted

        self.tools: dict[str, Tool] = {cls.name: cls(document, undo_stack, settings) for cls in ALL_TOOLS}
        self._tool = self.tools["mask_brush"]
        self._proposal_array: np.ndarray | None = None  # kept alive while _proposal_image views it
        self._proposal_image: QImage | None = None
        for tool in self.tools.values():
            tool.changed.connect(lambda t=tool: self._on_tool_changed(t))

        document.pixels_changed.connect(self._on_pixels_changed)
        document.mask_changed.connect(self._on_mask_changed)
        document.layers_changed.connect(self._on_layers_changed)
        document.resized.connect(self._on_resized)
        document.reset.connect(self._on_reset)
        settings.changed.connect(self._on_settings_changed)
        self._on_reset()

    # ----------------------------------------------------------------- public API
    @property
    def tool(self) -> Tool:
        return self._tool

    def set_tool(self, name: str) -> None:
        """Select a tool by name (see `TOOL_CLASSES`); a gesture in progress is committed first."""
        tool = self.tools[name]
        if tool is self._tool:
            return
        self.finish_gesture()
        self._tool = tool
        self._update_cursor()
        self.update(self._cursor_rect(self._pointer))  # the brush outline appears or goes
        self.tool_changed.emit(name)

    @property
    def gesture_active(self) -> bool:
        """True while a stroke or selection is being drawn (not yet an undo step)."""
        return self._tool.busy

    def finish_gesture(self) -> None:
        """Commit the current tool's stroke or selection (before undo, tool switches, focus loss)."""
        self._stroke_button = None
        self._tablet_down = False
        if self._tool.busy:
            self._tool.finish()
            self._refresh_preview()

    @property
    def zoom(self) -> float:
        """Device pixels per image pixel (1.0 = 100 %)."""
        return self._zoom

    @property
    def scale(self) -> float:
        """Logical widget pixels per image pixel."""
        return self._zoom / self.devicePixelRatioF()

    @property
    def offset(self) -> QPointF:
        return QPointF(self._offset)

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom keeping the image point under anchor (widget coordinates; default: the centre) in place."""
        zoom = min(ZOOM_MAX, max(ZOOM_MIN, zoom))
        anchor = QPointF(self.width() / 2, self.height() / 2) if anchor is None else QPointF(anchor)
        doc_x, doc_y = self.map_to_document(anchor)
        self._zoom = zoom
        self._offset = QPointF(anchor.x() - doc_x * self.scale, anchor.y() - doc_y * self.scale)
        self._fit_mode = False
        self._after_view_change()

    def set_view(self, zoom: float, offset: QPointF) -> None:
        """Set zoom and the widget position of the image's top-left corner exactly (tests, benchmarks)."""
        self._zoom = min(ZOOM_MAX, max(ZOOM_MIN, zoom))
        self._offset = QPointF(offset)
        self._fit_mode = False
        self._after_view_change(clamp=False)

    def zoom_by(self, factor: float, anchor: QPointF | None = None) -> None:
        self.set_zoom(self._zoom * factor, anchor)

    def zoom_in(self, anchor: QPointF | None = None) -> None:
        self.zoom_by(KEY_ZOOM_STEP, anchor if anchor is not None else self._pointer_anchor())

    def zoom_out(self, anchor: QPointF | None = None) -> None:
        self.zoom_by(1 / KEY_ZOOM_STEP, anchor if anchor is not None else self._pointer_anchor())

    def fit_to_window(self) -> None:
        """Show the whole image, centred (Ctrl+0); stays fitted while the window is resized."""
        doc = self.document
        if doc.is_empty:
            return
        available_w = max(1.0, self.width() - 2 * FIT_MARGIN)
        available_h = max(1.0, self.height() - 2 * FIT_MARGIN)
        scale = min(available_w / doc.width, available_h / doc.height)
        self._zoom = min(ZOOM_MAX, max(ZOOM_MIN, scale * self.devicePixelRatioF()))
        self._center()
        self._fit_mode = True
        self._after_view_change(clamp=False)

    def actual_pixels(self) -> None:
        """100 % (Ctrl+1), around the pointer when it is over the canvas."""
        self.set_zoom(1.0, self._pointer_anchor())

    def pan_by(self, dx: float, dy: float) -> None:
        self._offset += QPointF(dx, dy)
        self._fit_mode = False
        self._after_view_change()

    def map_to_document(self, point: QPointF) -> tuple[float, float]:
        """Widget (logical) coordinates -> document pixel coordinates (continuous)."""
        scale = self.scale
        return ((point.x() - self._offset.x()) / scale, (point.y() - self._offset.y()) / scale)

    def map_from_document(self, x: float, y: float) -> QPointF:
        scale = self.scale
        return QPointF(self._offset.x() + x * scale, self._offset.y() + y * scale)

    def widget_rect(self, rect: Rect, pad: int = 2) -> QRect:
        """The widget area showing a document rect (padded for filtering and antialiasing)."""
        top_left = self.map_from_document(rect[0], rect[1])
        bottom_right = self.map_from_document(rect[2], rect[3])
        return QRectF(top_left, bottom_right).toAlignedRect().adjusted(-pad, -pad, pad, pad)

    @property
    def show_mask(self) -> bool:
        return self._show_mask

    def set_show_mask(self, show: bool) -> None:
        if show != self._show_mask:
            self._show_mask = show
            self.update()
            self.mask_visible_changed.emit(show)

    @property
    def mask_color(self) -> QColor:
        """The mask overlay's colour (drawn at MASK_OPACITY)."""
        return QColor(self._mask_color)

    def set_mask_color(self, color: QColor) -> None:
        color = QColor(color)
        color.setAlpha(255)
        if color.isValid() and color != self._mask_color:
            self._mask_color = color
            self.update()

    @property
    def showing_original(self) -> bool:
        return self._show_original

    def set_show_original(self, show: bool) -> None:
        """Show the base layer alone ("see the original") instead of the composite."""
        if show == self._show_original:
            return
        self._show_original = show
        if show:
            self._prepare_original()
        self.update()
        self.original_shown.emit(show)

    @property
    def display_cache(self) -> DisplayCache:
        return self._cache

    def prime_composite(self, premultiplied: np.ndarray) -> None:
        """The whole document's premultiplied composite, computed off the UI thread (a project being opened):
        the next reset's display cache uses it instead of compositing every layer here. One-shot."""
        self._primed = premultiplied

    def _cache_source(self, rect: Rect) -> np.ndarray:
        primed, self._primed = self._primed, None
        doc = self.document
        if (
            primed is not None
            and tuple(rect) == (0, 0, doc.width, doc.height)
            and primed.shape[:2] == (doc.height, doc.width)
        ):
            return primed
        return doc.composite(rect, premultiplied=True)

    # ----------------------------------------------------------------- document events
    def _on_reset(self) -> None:
        self.finish_gesture()
        doc = self.document
        self._cache.rebuild(doc.width, doc.height)
        self._original_cache, self._original_layer = None, None
        self._wrap_mask()
        self.fit_to_window()
        self.update()

    def _on_resized(self, offset: tuple[int, int]) -> None:
        doc = self.document
        self._cache.rebuild(doc.width, doc.height)
        self._original_cache, self._original_layer = None, None
        self._wrap_mask()
        if self._fit_mode:
            self.fit_to_window()
        else:  # the old pixels stay where they were on screen
            self._offset -= QPointF(offset[0] * self.scale, offset[1] * self.scale)
            self._after_view_change()
        self.update()

    def _on_tool_changed(self, tool: Tool) -> None:
        if tool is self._tool:
            self.update()  # a proposal or a frame appeared, changed or went: rare, so repaint all

    def _on_pixels_changed(self, rect: Rect) -> None:
        if rect[2] <= rect[0] or rect[3] <= rect[1]:
            return
        self._cache.update(rect)
        if self._original_cache is not None:
            self._original_cache.mark_stale(rect)
        self.update(self.widget_rect(rect))

    def _on_mask_changed(self, rect: Rect) -> None:
        if self._mask_array is not self.document.mask:
            self._wrap_mask()
        if self._show_mask:
            self.update(self.widget_rect(rect))

    def _on_layers_changed(self) -> None:
        base = self.document.base_layer
        if self._original_cache is not None and (base is not self._original_layer or base is None):
            self._original_cache, self._original_layer = None, None  # rebuilt on next use
            if self._show_original:
                self._prepare_original()
                self.update()

    def _on_settings_changed(self) -> None:
        if self._tool.cursor == "brush" and self._pointer is not None:
            # The outline changed size: repaint where the old and the new one are.
            self.update(self._cursor_rect(self._pointer, self._cursor_radius_shown))
            self.update(self._cursor_rect(self._pointer))

    def _wrap_mask(self) -> None:
        mask = self.document.mask
        if self.document.is_empty or not mask.flags.c_contiguous:
            self._mask_array, self._mask_image = mask, None
            return
        self._mask_array = mask
        self._mask_image = qt_images.wrap(mask, QImage.Format.Format_Alpha8)

    def _prepare_original(self) -> None:
        base = self.document.base_layer
        if base is None:
            return
        if self._original_cache is None or self._original_layer is not base:
            cache = DisplayCache(lambda rect: composite_layers([_opaque_view(base)], rect, premultiplied=True))
            cache.rebuild(self.document.width, self.document.height)
            self._original_cache, self._original_layer = cache, base
        else:
            self._original_cache.refresh_stale()

    # ----------------------------------------------------------------- view helpers
    def _center(self) -> None:
        doc, scale = self.document, self.scale
        self._offset = QPointF(
            round((self.width() - doc.width * scale) / 2), round((self.height() - doc.height * scale) / 2)
        )

    def _pointer_anchor(self) -> QPointF | None:
        if self._pointer is not None and self.rect().contains(self._pointer.toPoint()):
            return QPointF(self._pointer)
        return None

    def _clamp_offset(self) -> None:
        doc = self.document
        if doc.is_empty:
            return
        w, h = doc.width * self.scale, doc.height * self.scale
        keep_x, keep_y = min(KEEP_VISIBLE, w), min(KEEP_VISIBLE, h)
        x = min(self.width() - keep_x, max(keep_x - w, self._offset.x()))
        y = min(self.height() - keep_y, max(keep_y - h, self._offset.y()))
        self._offset = QPointF(x, y)

    def _after_view_change(self, clamp: bool = True) -> None:
        if clamp:
            self._clamp_offset()
        self.update()
        self.zoom_changed.emit(self._zoom)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit_to_window()
        else:
            old, new = event.oldSize(), event.size()
            if old.isValid():
                self._offset += QPointF((new.width() - old.width()) / 2, (new.height() - old.height()) / 2)
            self._clamp_offset()

    # ----------------------------------------------------------------- painting
    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        exposed = event.rect()
        painter.fillRect(exposed, BACKGROUND)
        doc = self.document
        if doc.is_empty:
            self._paint_empty_hint(painter)
            painter.end()
            return
        scale = self.scale
        image_rect = QRectF(self._offset, QSizeF(doc.width * scale, doc.height * scale))
        visible = image_rect.intersected(QRectF(exposed))
        if not visible.isEmpty():
            painter.save()
            painter.setClipRect(visible)
            painter.setBrushOrigin(self._offset.toPoint())
            painter.fillRect(visible, self._checker)
            cache = self._original_cache if self._show_original and self._original_cache else self._cache
            self._draw_cached(painter, cache, scale)
            if self._show_mask and not self._show_original:
                self._draw_mask(painter, exposed.intersected(visible.toAlignedRect()), scale)
            painter.restore()
        self._paint_selection(painter, exposed, scale)
        self._paint_preview(painter)
        self._paint_brush_cursor(painter)
        painter.end()

    def _draw_cached(self, painter: QPainter, cache: DisplayCache, scale: float) -> None:
        # Draw the whole level under a transform and let the clip limit the work: sampling is then the
        # same for every partial repaint, so dab-sized updates never leave seams at fractional zooms.
        chosen = cache.image_for(self._zoom)
        if chosen is None:
            return
        image, level_scale = chosen
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._zoom < 2.0)
        painter.translate(self._offset)
        painter.scale(scale / level_scale, scale / level_scale)
        painter.drawImage(QPointF(0, 0), image)
        painter.restore()

    def _draw_mask(self, painter: QPainter, area: QRect, scale: float) -> None:
        if self._mask_image is None or area.isEmpty():
            return
        self._draw_alpha(painter, area, scale, self._mask_image, self._mask_color, MASK_OPACITY)

    def _draw_alpha(
        self, painter: QPainter, area: QRect, scale: float, alpha: QImage, color: QColor, opacity: float
    ) -> None:
        """Tint `area` with `color` where the document-sized Alpha8 image `alpha` is set."""
        dpr = self.devicePixelRatioF()
        overlay = QImage(
            max(1, math.ceil(area.width() * dpr)),
            max(1, math.ceil(area.height() * dpr)),
            QImage.Format.Format_ARGB32_Premultiplied,
        )
        overlay.setDevicePixelRatio(dpr)
        overlay.fill(0)
        mask_painter = QPainter(overlay)
        mask_painter.translate(-QPointF(area.topLeft()))
        mask_painter.translate(self._offset)
        mask_painter.scale(scale, scale)
        mask_painter.fillRect(QRectF(0, 0, self.document.width, self.document.height), color)
        mask_painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_DestinationIn)
        mask_painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self._zoom < 2.0)
        mask_painter.drawImage(QPointF(0, 0), alpha)
        mask_painter.end()
        painter.setOpacity(opacity)
        painter.drawImage(area.topLeft(), overlay)
        painter.setOpacity(1.0)

    def _paint_selection(self, painter: QPainter, exposed: QRect, scale: float) -> None:
        """The Select tool's proposal (tinted: blue to add, amber to cut out), its box and its clicks."""
        overlay = self._tool.overlay() if isinstance(self._tool, ObjectSelectTool) else None
        if overlay is None or self._show_original:
            if overlay is None:
                self._proposal_array, self._proposal_image = None, None
            return
        image = self._proposal_qimage(overlay)
        if image is not None and overlay.rect is not None:
            area = exposed.intersected(self.widget_rect(overlay.rect))
            if not area.isEmpty():
                self._draw_alpha(painter, area, scale, image, PROPOSAL_COLORS[overlay.subtract], PROPOSAL_OPACITY)
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if overlay.box is not None:
            left, top, right, bottom = overlay.box
            frame = QRectF(self.map_from_document(left, top), self.map_from_document(right, bottom))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setPen(QPen(QColor(0, 0, 0), 1))
            painter.drawRect(frame)
            painter.setPen(QPen(PROPOSAL_COLORS[overlay.subtract], 1, Qt.PenStyle.DashLine))
            painter.drawRect(frame)
        for point in overlay.points:
            centre = self.map_from_document(point.x, point.y)
            painter.setPen(QPen(QColor(255, 255, 255), 1.5))
            painter.setBrush(QColor(40, 200, 90) if point.include else QColor(230, 50, 50))
            painter.drawEllipse(centre, 5, 5)
            painter.setPen(QPen(QColor(255, 255, 255), 1.5))
            painter.drawLine(centre + QPointF(-2.5, 0), centre + QPointF(2.5, 0))
            if point.include:
                painter.drawLine(centre + QPointF(0, -2.5), centre + QPointF(0, 2.5))
        painter.restore()

    def _proposal_qimage(self, overlay: SelectionOverlay) -> QImage | None:
        proposal = overlay.proposal
        if proposal is None or proposal.shape != (self.document.height, self.document.width):
            self._proposal_array, self._proposal_image = None, None
            return None
        if self._proposal_array is not proposal or self._proposal_image is None:
            if not proposal.flags.c_contiguous:
                proposal = np.ascontiguousarray(proposal)
            self._proposal_array = proposal
            self._proposal_image = qt_images.wrap(proposal, QImage.Format.Format_Alpha8)
        return self._proposal_image

    def _paint_empty_hint(self, painter: QPainter) -> None:
        painter.setPen(QColor(150, 150, 155))
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        painter.setFont(font)
        painter.drawText(
            self.rect(),
            Qt.AlignmentFlag.AlignCenter,
            "Open an image (Ctrl+O), paste one (Ctrl+V) or drop a file here",
        )

    def _paint_preview(self, painter: QPainter) -> None:
        # Outlines only (no fill): updating a dragged rectangle or a growing lasso then repaints thin
        # strips, not the whole area under them. Subtracting draws in the mask colour.
        preview = self._tool.preview()
        if preview is None:
            return
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        points = [self.map_from_document(x, y) for x, y in preview.points]
        dashes = QPen(self._mask_color if preview.subtract else QColor(255, 255, 255), 1, Qt.PenStyle.DashLine)
        for pen in (QPen(QColor(0, 0, 0), 1), dashes):
            painter.setPen(pen)
            if preview.kind == "rect":
                painter.drawRect(QRectF(points[0], points[-1]).normalized())
            else:
                painter.drawPolyline(QPolygonF(points))
        if preview.label:
            self._paint_label(painter, preview, QRectF(points[0], points[-1]).normalized())
        painter.restore()

    def _paint_label(self, painter: QPainter, preview: Preview, frame: QRectF) -> None:
        text = preview.label or ""
        metrics = painter.fontMetrics()
        box = QRectF(metrics.boundingRect(text)).adjusted(-6, -3, 6, 3)
        box.moveBottomRight(frame.bottomRight() - QPointF(4, 4))
        # Keep it on screen when the frame's corner is not (a canvas dragged far beyond the view).
        view = QRectF(self.rect()).adjusted(4, 4, -4, -4)
        box.moveBottomRight(
            QPointF(
                min(max(box.right(), view.left() + box.width()), view.right()),
                min(max(box.bottom(), view.top() + box.height()), view.bottom()),
            )
        )
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(20, 20, 22, 210))
        painter.drawRoundedRect(box, 3, 3)
        painter.setPen(QColor(240, 240, 240))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _refresh_preview(self) -> None:
        """Schedule repaints for what the selection outline changed (see _paint_preview)."""
        preview = self._tool.preview()
        if preview is None:
            if not self._preview_region.isEmpty():
                self.update(self._preview_region)
            self._preview_region = QRegion()
            self._preview_points = 0
            return
        if preview.kind == "rect":
            corners = [self.map_from_document(x, y) for x, y in preview.points]
            frame = QRectF(corners[0], corners[-1]).normalized().toAlignedRect()
            outline = QRegion(self.rect()) if preview.label else _outline_region(frame)  # the label may move
            self.update(self._preview_region.united(outline))
            self._preview_region = outline
            return
        start = max(0, self._preview_points - 1)  # the segments added since the last refresh
        new_points = [self.map_from_document(x, y) for x, y in preview.points[start:]]
        if len(preview.points) < self._preview_points:
            start, new_points = 0, [self.map_from_document(x, y) for x, y in preview.points]
        segment = QPolygonF(new_points).boundingRect().toAlignedRect().adjusted(-3, -3, 3, 3)
        self.update(segment)
        self._preview_region = self._preview_region.united(segment)
        self._preview_points = len(preview.points)

    def _brush_radius_px(self) -> float:
        return self.settings.size * self.scale / 2

    def _paint_brush_cursor(self, painter: QPainter) -> None:
        if self._tool.cursor != "brush" or self._pointer is None or self._panning is not None or self._space_down:
            return
        if self.document.is_empty:
            return
        centre = self._pointer
        radius = self._cursor_radius_shown = self._brush_radius_px()
        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        # A black and a white ring: visible on any image.
        painter.setPen(QPen(QColor(0, 0, 0, 200), 1))
        painter.drawEllipse(centre, radius + 1, radius + 1)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 1))
        painter.drawEllipse(centre, radius, radius)
        if radius < 6:  # too small to see: add a crosshair
            painter.drawLine(centre + QPointF(-8, 0), centre + QPointF(-3, 0))
            painter.drawLine(centre + QPointF(3, 0), centre + QPointF(8, 0))
            painter.drawLine(centre + QPointF(0, -8), centre + QPointF(0, -3))
            painter.drawLine(centre + QPointF(0, 3), centre + QPointF(0, 8))
        painter.restore()

    def _cursor_rect(self, point: QPointF | None, radius_px: float | None = None) -> QRect:
        if point is None:
            return QRect()
        radius = max(self._brush_radius_px() if radius_px is None else radius_px, 8) + 3
        return QRectF(point.x() - radius, point.y() - radius, 2 * radius, 2 * radius).toAlignedRect()

    def _move_pointer(self, point: QPointF | None) -> None:
        if self._tool.cursor == "brush":
            self.update(self._cursor_rect(self._pointer))
            self.update(self._cursor_rect(point))
        self._pointer = point
        if point is None or self.document.is_empty:
            self.cursor_moved.emit(None)
            return
        x, y = self.map_to_document(point)
        inside = 0 <= x < self.document.width and 0 <= y < self.document.height
        self.cursor_moved.emit((math.floor(x), math.floor(y)) if inside else None)

    def _update_cursor(self) -> None:
        if self._panning is not None:
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif self._space_down:
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        elif self._tool.cursor == "brush":
            self.setCursor(Qt.CursorShape.BlankCursor)  # the drawn outline is the cursor
        else:
            self.setCursor(Qt.CursorShape.CrossCursor)

    # ----------------------------------------------------------------- input
    def _pointer_event(
        self, pos: QPointF, modifiers: Qt.KeyboardModifier, pressure: float = 1.0, tablet: bool = False
    ) -> PointerEvent:
        x, y = self.map_to_document(pos)
        return PointerEvent(
            x,
            y,
            pressure=pressure,
            shift=bool(modifiers & Qt.KeyboardModifier.ShiftModifier),
            alt=bool(modifiers & Qt.KeyboardModifier.AltModifier),
            ctrl=bool(modifiers & Qt.KeyboardModifier.ControlModifier),
            tablet=tablet,
            scale=self.scale,
        )

    def _repaint_preview(self) -> None:
        if self._tool.preview() is not None or not self._preview_region.isEmpty():
            self._refresh_preview()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position()
        button = event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_down):
            self._panning = pos
            self._update_cursor()
            self.update(self._cursor_rect(pos))
            return
        if button == Qt.MouseButton.LeftButton and self._stroke_button is None and not self._tablet_down:
            self._stroke_button = button
            self._tool.press(self._pointer_event(pos, event.modifiers()))
            self._repaint_preview()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if not self.hasFocus():  # e.g. a popup closed over the canvas: no enter event came
            self._take_focus_from_pointer()
        pos = event.position()
        if self._panning is not None:
            delta = pos - self._panning
            self._panning = pos
            self.pan_by(delta.x(), delta.y())
            return
        self._move_pointer(pos)
        if self._stroke_button is not None:
            self._tool.move(self._pointer_event(pos, event.modifiers()))
            self._repaint_preview()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._panning is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._panning = None
            self._update_cursor()
            self.update(self._cursor_rect(pos))
            return
        if self._stroke_button is not None and event.button() == self._stroke_button:
            self._stroke_button = None
            self._tool.release(self._pointer_event(pos, event.modifiers()))
            self._refresh_preview()

    def tabletEvent(self, event: QTabletEvent) -> None:
        # Handle the pen ourselves (accepting stops Qt from synthesising mouse events) to get pressure.
        pos = event.position()
        kind = event.type()
        if self._space_down or self._panning is not None:
            event.ignore()  # let the synthesised mouse events pan
            return
        pointer = self._pointer_event(pos, event.modifiers(), pressure=event.pressure(), tablet=True)
        if kind == QEvent.Type.TabletPress and event.button() == Qt.MouseButton.LeftButton:
            self.setFocus(Qt.FocusReason.MouseFocusReason)
            self._tablet_down = True
            self._tool.press(pointer)
        elif kind == QEvent.Type.TabletMove:
            self._move_pointer(pos)
            if self._tablet_down:
                self._tool.move(pointer)
        elif kind == QEvent.Type.TabletRelease and self._tablet_down:
            self._tablet_down = False
            self._tool.release(pointer)
        else:
            event.ignore()
            return
        self._repaint_preview()
        event.accept()

    def wheelEvent(self, event: QWheelEvent) -> None:
        modifiers = event.modifiers()
        angle = event.angleDelta()
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            notches = angle.y() / 120 if angle.y() else angle.x() / 120
            if notches:
                self.zoom_by(WHEEL_ZOOM_STEP**notches, event.position())
            event.accept()
            return
        pixels = event.pixelDelta()
        dx, dy = (pixels.x(), pixels.y()) if not pixels.isNull() else (angle.x() / 2, angle.y() / 2)
        if modifiers & Qt.KeyboardModifier.ShiftModifier and dx == 0:
            dx, dy = dy, 0  # Shift turns a vertical wheel into horizontal scrolling
        self.pan_by(dx, dy)
        event.accept()

    def event(self, event: QEvent) -> bool:
        # Enter and Esc are window shortcuts too (apply a result, cancel a job): while the tool has a use for
        # them (a proposed selection), accepting the override sends them here as key presses instead.
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            name = _TOOL_KEYS.get(event.key())
            plain = not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
            if name is not None and plain and self._tool.wants_key(name):
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        name = _TOOL_KEYS.get(event.key())
        if name is not None and self._tool.key(name):
            self._refresh_preview()
            event.accept()
            return
        if event.isAutoRepeat() and event.key() in (Qt.Key.Key_Space, ORIGINAL_KEY):
            event.accept()
            return
        if event.key() == Qt.Key.Key_Space:
            self._space_down = True
            self._update_cursor()
            self.update(self._cursor_rect(self._pointer))
            event.accept()
        elif event.key() == ORIGINAL_KEY:
            self.set_show_original(True)
            event.accept()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.isAutoRepeat():
            event.accept()
            return
        if event.key() == Qt.Key.Key_Space:
            self._space_down = False
            self._update_cursor()
            self.update(self._cursor_rect(self._pointer))
            event.accept()
        elif event.key() == ORIGINAL_KEY:
            self.set_show_original(False)
            event.accept()
        else:
            super().keyReleaseEvent(event)

    def enterEvent(self, event: QEnterEvent) -> None:
        super().enterEvent(event)
        self._take_focus_from_pointer()
        self._update_cursor()
        self._move_pointer(event.position())

    def _take_focus_from_pointer(self) -> None:
        """The pointer is over the canvas: take the keys, unless a field is being typed in (see the docstring)."""
        if self.hasFocus() or not self.isActiveWindow():
            return
        if not _is_text_field(QApplication.focusWidget()):
            self.setFocus(Qt.FocusReason.MouseFocusReason)

    def leaveEvent(self, event: QEvent) -> None:
        super().leaveEvent(event)
        self._move_pointer(None)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # Keys released while another widget has focus never reach us: drop the held states.
        self._space_down = False
        self.set_show_original(False)
        self._update_cursor()
        super().focusOutEvent(event)

    def pointer_position(self) -> QPoint | None:
        return None if self._pointer is None else self._pointer.toPoint()

    def sync_pointer(self) -> None:
        """Re-read the global cursor position (after zooming with keys the outline must follow)."""
        self._move_pointer(QPointF(self.mapFromGlobal(QCursor.pos())))


def _is_text_field(widget: QWidget | None) -> bool:
    """A field the user types into: it keeps the keyboard while the pointer passes over the canvas."""
    if isinstance(widget, QAbstractSpinBox | QLineEdit | QTextEdit | QPlainTextEdit):
        return not widget.isReadOnly()
    return isinstance(widget, QComboBox) and widget.isEditable()


_TOOL_KEYS = {
    Qt.Key.Key_Return: "enter",
    Qt.Key.Key_Enter: "enter",
    Qt.Key.Key_Escape: "escape",
}


def _outline_region(rect: QRect, pad: int = 2) -> QRegion:
    """The four edges of rect as a region (what repainting a rectangle's outline needs)."""
    region = QRegion()
    grown = rect.adjusted(-pad, -pad, pad, pad)
    thickness = 2 * pad + 1
    region += QRect(grown.left(), grown.top(), grown.width(), thickness)
    region += QRect(grown.left(), grown.bottom() - thickness + 1, grown.width(), thickness)
    region += QRect(grown.left(), grown.top(), thickness, grown.height())
    region += QRect(grown.right() - thickness + 1, grown.top(), thickness, grown.height())
    return region


def _opaque_view(layer: Layer) -> Layer:
    """The base layer as seen in the compare view: full opacity and visible, whatever the panel says."""
    return Layer(name=layer.name, pixels=layer.pixels, kind=layer.kind, id=layer.id)
