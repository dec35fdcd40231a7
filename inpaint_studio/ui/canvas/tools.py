"""Canvas tools as press/move/release handlers on document coordinates.

The canvas turns mouse and tablet events into `PointerEvent`s (document pixels, pressure, modifiers) and
forwards them to the current tool, so tests drive tools directly without a real mouse. Each completed
gesture pushes exactly one undo step.

Tools: mask brush (paint or erase the mask), colour paint brush (paint layers; erase mode lowers the active
layer's alpha), rectangle and lasso selection (add to the mask by default or with Shift, subtract with
Alt), eyedropper (sets the paint colour from the composite), object selection (click-to-select with a
segmentation model: tools_select.py) and the canvas expander (tools_expand.py).

A tool whose look changes outside a gesture (a proposed selection arriving from the worker) fires its
`changed` event; the canvas repaints then. Keys the canvas hands to the tool first: `key("enter")`,
`key("escape")`, which return True when the tool used the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from inpaint_studio.core import mask_ops
from inpaint_studio.core.brush import (
    StrokePoint,
    StrokeRecorder,
    StrokeSpacer,
    dab_alpha,
    stamp_color,
    stamp_erase_alpha,
    stamp_mask,
)
from inpaint_studio.core.document import MASK, Document, Event, Rect, rect_union
from inpaint_studio.ui.document.commands import AddLayerCommand, RegionCommand

MIN_SIZE, MAX_SIZE = 1.0, 2000.0
SIZE_STEP = 1.2  # [ and ] scale the brush (multiplicative, as in Krita), so small and big brushes adapt alike
HARDNESS_STEP = 0.1
MIN_PRESSURE_SCALE = 0.1  # a feather-light pen touch still leaves a visible dab


@dataclass(frozen=True)
class PointerEvent:
    """A pointer sample in document pixel coordinates (pixel (i, j) spans [i, i+1) x [j, j+1))."""

    x: float
    y: float
    pressure: float = 1.0
    shift: bool = False
    alt: bool = False
    ctrl: bool = False
    tablet: bool = False
    scale: float = 1.0  # screen (logical) pixels per document pixel at the time of the event


class ToolSettings(QObject):
    """Brush size, hardness, erase mode and paint colour shared by the tools and the tool bar."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._size = 40.0
        self._hardness = 0.8
        self._erase = False
        self._color: tuple[int, int, int] = (255, 255, 255)
        self.pressure_size = True

    @property
    def size(self) -> float:
        """Brush diameter in document pixels."""
        return self._size

    def set_size(self, size: float) -> None:
        size = float(min(MAX_SIZE, max(MIN_SIZE, round(size, 1))))
        if size != self._size:
            self._size = size
            self.changed.emit()

    def bigger(self) -> None:
        self.set_size(max(self._size + 1, self._size * SIZE_STEP))

    def smaller(self) -> None:
        self.set_size(min(self._size - 1, self._size / SIZE_STEP))

    @property
    def hardness(self) -> float:
        return self._hardness

    def set_hardness(self, hardness: float) -> None:
        hardness = round(min(1.0, max(0.0, hardness)), 2)
        if hardness != self._hardness:
            self._hardness = hardness
            self.changed.emit()

    def harder(self) -> None:
        self.set_hardness(self._hardness + HARDNESS_STEP)

    def softer(self) -> None:
        self.set_hardness(self._hardness - HARDNESS_STEP)

    @property
    def erase(self) -> bool:
        return self._erase

    def set_erase(self, erase: bool) -> None:
        if erase != self._erase:
            self._erase = bool(erase)
            self.changed.emit()

    @property
    def color(self) -> tuple[int, int, int]:
        return self._color

    def set_color(self, color: tuple[int, int, int]) -> None:
        color = (int(color[0]), int(color[1]), int(color[2]))
        if color != self._color:
            self._color = color
            self.changed.emit()

    def diameter_at(self, pressure: float) -> float:
        if not self.pressure_size:
            return self._size
        return max(MIN_SIZE, self._size * max(MIN_PRESSURE_SCALE, min(1.0, pressure)))


@dataclass(frozen=True)
class Preview:
    """What the canvas draws for a gesture in progress: a rect or a polygon, adding or subtracting."""

    kind: Literal["rect", "polygon"]
    points: tuple[tuple[float, float], ...]
    subtract: bool
    label: str | None = None  # a size readout drawn beside a rect (the Expand tool's new canvas size)


class Tool:
    """Base class; subclasses override the handlers they need."""

    name = "tool"
    label = "Tool"
    cursor: Literal["brush", "cross", "picker"] = "cross"

    def __init__(self, document: Document, undo_stack: QUndoStack, settings: ToolSettings) -> None:
        self.document, self.undo_stack, self.settings = document, undo_stack, settings
        self.changed = Event()  # fired when what the tool draws changes outside a pointer event

    @property
    def busy(self) -> bool:
        """True while a gesture (press ... release) is in progress."""
        return False

    def key(self, name: str) -> bool:
        """A key the canvas offers first ("enter", "escape"); True when the tool used it."""
        return False

    def wants_key(self, name: str) -> bool:
        """True when `key(name)` would use the key now (the canvas then keeps it from the window's shortcuts)."""
        return False

    def press(self, event: PointerEvent) -> None:
        pass

    def move(self, event: PointerEvent) -> None:
        pass

    def release(self, event: PointerEvent) -> None:
        pass

    def finish(self) -> None:
        """Commit a gesture in progress (the window calls this before undo, tool switches, focus loss)."""

    def preview(self) -> Preview | None:
        return None


class _BrushBase(Tool):
    """A stroke of spaced dabs; the whole stroke becomes one RegionCommand of its bounding box."""

    cursor = "brush"

    def __init__(self, document: Document, undo_stack: QUndoStack, settings: ToolSettings) -> None:
        super().__init__(document, undo_stack, settings)
        self._target: str | None = None
        self._recorder: StrokeRecorder | None = None
        self._spacer: StrokeSpacer | None = None
        self._macro = False
        self._last = PointerEvent(0, 0)

    @property
    def busy(self) -> bool:
        return self._target is not None

    def _begin_target(self) -> str | None:
        """The target id to paint into (may push a command inside the stroke's macro first)."""
        raise NotImplementedError

    def _stamp(self, array: np.ndarray, rect: Rect, alpha: np.ndarray) -> Rect | None:
        raise NotImplementedError

    def _stroke_text(self) -> str:
        raise NotImplementedError

    def press(self, event: PointerEvent) -> None:
        if self.document.is_empty:
            return
        if self.busy:
            self.finish()
        self._target = self._begin_target()
        if self._target is None:
            return
        self._recorder = StrokeRecorder(self.document.target_array(self._target))
        self._spacer = StrokeSpacer(self.settings.diameter_at)
        self._last = event
        self._dabs(self._spacer.start(StrokePoint(event.x, event.y, event.pressure)))

    def move(self, event: PointerEvent) -> None:
        if self._spacer is None:
            return
        self._last = event
        self._dabs(self._spacer.move_to(StrokePoint(event.x, event.y, event.pressure)))

    def release(self, event: PointerEvent) -> None:
        if self._spacer is None:
            return
        self.move(event)
        self.finish()

    def finish(self) -> None:
        target, recorder = self._target, self._recorder
        self._target = self._recorder = self._spacer = None
        if target is None or recorder is None:
            return
        change = recorder.finish()
        if change is not None:
            rect, old, new = change
            self.undo_stack.push(
                RegionCommand(self.document, target, rect, old, new, self._stroke_text(), applied=True)
            )
        if self._macro:
            self._macro = False
            self.undo_stack.endMacro()

    def _dabs(self, points: list[StrokePoint]) -> None:
        assert self._target is not None and self._recorder is not None
        array = self.document.target_array(self._target)
        hardness = self.settings.hardness
        changed: Rect | None = None
        for point in points:
            rect, alpha = dab_alpha(point.x, point.y, self.settings.diameter_at(point.pressure), hardness)
            self._recorder.before_write(rect)
            changed = rect_union(changed, self._stamp(array, rect, alpha))
        if changed is not None:
            self.document.notify_changed(self._target, changed)


class MaskBrushTool(_BrushBase):
    """Paints the mask (255 = repaint); in erase mode removes it."""

    name = "mask_brush"
    label = "Mask brush"

    def _begin_target(self) -> str | None:
        return MASK

    def _stamp(self, array: np.ndarray, rect: Rect, alpha: np.ndarray) -> Rect | None:
        return stamp_mask(array, rect, alpha, erase=self.settings.erase)

    def _stroke_text(self) -> str:
        return "Erase mask" if self.settings.erase else "Paint mask"


class PaintBrushTool(_BrushBase):
    """Paints colour on a paint layer (adding one when the active layer is not); erase mode lowers alpha."""

    name = "paint_brush"
    label = "Paint brush"

    def _begin_target(self) -> str | None:
        layer = self.document.active_layer
        if self.settings.erase:
            return layer.id if layer is not None else None
        if layer is None or layer.kind != "paint":
            # The new layer and the stroke undo together: one gesture, one step.
            new = self.document.new_layer(self.document.unique_name("Paint"))
            index = self.document.index_of(layer.id) + 1 if layer is not None else None
            self.undo_stack.beginMacro("Paint stroke")
            self._macro = True
            self.undo_stack.push(AddLayerCommand(self.document, new, index))
            return new.id
        return layer.id

    def _stamp(self, array: np.ndarray, rect: Rect, alpha: np.ndarray) -> Rect | None:
        if self.settings.erase:
            return stamp_erase_alpha(array, rect, alpha)
        return stamp_color(array, rect, alpha, self.settings.color)

    def _stroke_text(self) -> str:
        return "Erase paint" if self.settings.erase else "Paint stroke"


def _selection_mode(event: PointerEvent) -> mask_ops.Mode:
    return "subtract" if event.alt else "add"


class RectSelectTool(Tool):
    """Drag a rectangle; on release it is added to (default, Shift) or subtracted from (Alt) the mask."""

    name = "rect_select"
    label = "Rectangle selection"

    def __init__(self, document: Document, undo_stack: QUndoStack, settings: ToolSettings) -> None:
        super().__init__(document, undo_stack, settings)
        self._start: tuple[float, float] | None = None
        self._end: tuple[float, float] = (0.0, 0.0)
        self._mode: mask_ops.Mode = "add"

    @property
    def busy(self) -> bool:
        return self._start is not None

    def press(self, event: PointerEvent) -> None:
        if self.document.is_empty:
            return
        self._start = self._end = (event.x, event.y)
        self._mode = _selection_mode(event)

    def move(self, event: PointerEvent) -> None:
        if self._start is not None:
            self._end = (event.x, event.y)

    def release(self, event: PointerEvent) -> None:
        self.move(event)
        self.finish()

    def finish(self) -> None:
        if self._start is None:
            return
        rect = self.rect()
        self._start = None
        if rect is None:
            return
        rect = self.document.clip_rect(rect)
        old = self.document.read_region(MASK, rect)
        if old.size == 0:
            return
        shape = np.full_like(old, 255)
        new = mask_ops.combine(old, shape, self._mode)
        if not np.array_equal(old, new):
            text = "Subtract rectangle from mask" if self._mode == "subtract" else "Add rectangle to mask"
            self.undo_stack.push(RegionCommand(self.document, MASK, rect, old, new, text))

    def rect(self) -> Rect | None:
        """The pixels the drag covers: every pixel the rectangle touches (None while nothing is dragged)."""
        if self._start is None:
            return None
        (x0, y0), (x1, y1) = self._start, self._end
        left, right = sorted((x0, x1))
        top, bottom = sorted((y0, y1))
        rect = (math.floor(left), math.floor(top), math.ceil(right), math.ceil(bottom))
        return None if rect[2] <= rect[0] or rect[3] <= rect[1] else rect

    def preview(self) -> Preview | None:
        if self._start is None:
            return None
        (x0, y0), (x1, y1) = self._start, self._end
        return Preview("rect", ((x0, y0), (x1, y1)), self._mode == "subtract")


class LassoTool(Tool):
    """Draw a free-hand outline; on release the closed shape is added to or subtracted from the mask."""

    name = "lasso"
    label = "Lasso selection"

    def __init__(self, document: Document, undo_stack: QUndoStack, settings: ToolSettings) -> None:
        super().__init__(document, undo_stack, settings)
        self._points: list[tuple[float, float]] | None = None
        self._mode: mask_ops.Mode = "add"

    @property
    def busy(self) -> bool:
        return self._points is not None

    def press(self, event: PointerEvent) -> None:
        if self.document.is_empty:
            return
        self._points = [(event.x, event.y)]
        self._mode = _selection_mode(event)

    def move(self, event: PointerEvent) -> None:
        if self._points is None:
            return
        last = self._points[-1]
        if math.hypot(event.x - last[0], event.y - last[1]) >= 0.5:
            self._points.append((event.x, event.y))

    def release(self, event: PointerEvent) -> None:
        self.move(event)
        self.finish()

    def finish(self) -> None:
        points, self._points = self._points, None
        if points is None or len(points) < 3:
            return
        xs = [p[0] for p in points]
        ys = [p[1] for p in points]
        rect = self.document.clip_rect(
            (math.floor(min(xs)) - 1, math.floor(min(ys)) - 1, math.ceil(max(xs)) + 1, math.ceil(max(ys)) + 1)
        )
        old = self.document.read_region(MASK, rect)
        if old.size == 0:
            return
        local = [(x - rect[0], y - rect[1]) for x, y in points]
        shape = mask_ops.polygon_coverage((old.shape[1], old.shape[0]), local)
        new = mask_ops.combine(old, shape, self._mode)
        if not np.array_equal(old, new):
            text = "Subtract lasso from mask" if self._mode == "subtract" else "Add lasso to mask"
            self.undo_stack.push(RegionCommand(self.document, MASK, rect, old, new, text))

    def preview(self) -> Preview | None:
        if self._points is None:
            return None
        return Preview("polygon", tuple(self._points), self._mode == "subtract")


class EyedropperTool(Tool):
    """Click or drag to pick the paint colour from the visible composite."""

    name = "eyedropper"
    label = "Eyedropper"
    cursor = "picker"

    def __init__(self, document: Document, undo_stack: QUndoStack, settings: ToolSettings) -> None:
        super().__init__(document, undo_stack, settings)
        self._down = False

    @property
    def busy(self) -> bool:
        return self._down

    def press(self, event: PointerEvent) -> None:
        self._down = True
        self._pick(event)

    def move(self, event: PointerEvent) -> None:
        if self._down:
            self._pick(event)

    def release(self, event: PointerEvent) -> None:
        if self._down:
            self._pick(event)
        self._down = False

    def finish(self) -> None:
        self._down = False

    def _pick(self, event: PointerEvent) -> None:
        x, y = math.floor(event.x), math.floor(event.y)
        if self.document.is_empty or not (0 <= x < self.document.width and 0 <= y < self.document.height):
            return
        pixel = self.document.composite((x, y, x + 1, y + 1))[0, 0]
        if pixel[3] > 0:
            self.settings.set_color((int(pixel[0]), int(pixel[1]), int(pixel[2])))


TOOL_CLASSES: tuple[type[Tool], ...] = (MaskBrushTool, PaintBrushTool, RectSelectTool, LassoTool, EyedropperTool)
