"""The Expand tool (C): drag an edge or a corner of the image outwards to make the canvas bigger.

Press outside the image (or on its border, within a few screen pixels of an edge) and drag: the edges on
that side follow the pointer, a dashed frame shows the new canvas and its size. On release the tool hands
the margins to its `client` (ui/controllers/outpaint.py), which extends every layer and the mask as one undo
step and fills the new area (the same as Image > Expand Canvas…). Dragging back inside stops at the image's
own edge: this tool only adds canvas (cropping is another tool's job).
"""

from __future__ import annotations

import math
from typing import Protocol

from PySide6.QtGui import QUndoStack

from inpaint_studio.core.canvas import Margins
from inpaint_studio.core.document import Document
from inpaint_studio.ui.canvas.tools import PointerEvent, Preview, Tool, ToolSettings

EDGE_SCREEN_PX = 12.0  # a press this close to an edge (inside the image) grabs it


class ExpandClient(Protocol):
    def expand_canvas(self, margins: Margins) -> None:
        """Extend the canvas by these margins (one undo step) and fill the new area."""

    def expand_problem(self, message: str) -> None:
        """Tell the user why the gesture did nothing."""


class ExpandTool(Tool):
    """See the module docstring."""

    name = "expand"
    label = "Expand canvas"

    def __init__(self, document: Document, undo_stack: QUndoStack, settings: ToolSettings) -> None:
        super().__init__(document, undo_stack, settings)
        self.client: ExpandClient | None = None
        self._edges: tuple[bool, bool, bool, bool] | None = None  # left, top, right, bottom grabbed
        self._start = (0.0, 0.0)
        self._margins = Margins()

    @property
    def busy(self) -> bool:
        return self._edges is not None

    @property
    def margins(self) -> Margins:
        """The margins of the drag in progress (zero when none)."""
        return self._margins

    def press(self, event: PointerEvent) -> None:
        if self.document.is_empty:
            return
        edges = self._edges_at(event)
        if not any(edges):
            if self.client is not None:
                self.client.expand_problem(
                    "Drag from an edge of the image (or from outside it) outwards to add canvas on that side."
                )
            return
        self._edges, self._start, self._margins = edges, (event.x, event.y), Margins()

    def move(self, event: PointerEvent) -> None:
        if self._edges is None:
            return
        left, top, right, bottom = self._edges
        width, height = self.document.width, self.document.height
        # Measured from the image's edge, not from the press: grabbing outside the image adds that much too.
        self._margins = Margins(
            max(0, math.ceil(-event.x)) if left else 0,
            max(0, math.ceil(-event.y)) if top else 0,
            max(0, math.ceil(event.x - width)) if right else 0,
            max(0, math.ceil(event.y - height)) if bottom else 0,
        )

    def release(self, event: PointerEvent) -> None:
        if self._edges is None:
            return
        self.move(event)
        self.finish()

    def finish(self) -> None:
        margins = self._margins
        self._edges, self._margins = None, Margins()
        self.changed.emit()
        if not margins.is_zero and self.client is not None:
            self.client.expand_canvas(margins)

    def key(self, name: str) -> bool:
        if name == "escape" and self._edges is not None:
            self._edges, self._margins = None, Margins()
            self.changed.emit()
            return True
        return False

    def wants_key(self, name: str) -> bool:
        return name == "escape" and self._edges is not None

    def preview(self) -> Preview | None:
        if self._edges is None:
            return None
        m = self._margins
        width, height = self.document.width + m.left + m.right, self.document.height + m.top + m.bottom
        corners = (
            (-float(m.left), -float(m.top)),
            (float(self.document.width + m.right), float(self.document.height + m.bottom)),
        )
        return Preview("rect", corners, False, label=f"{width} × {height} px")

    def _edges_at(self, event: PointerEvent) -> tuple[bool, bool, bool, bool]:
        reach = EDGE_SCREEN_PX / max(event.scale, 1e-6)  # in document pixels
        width, height = self.document.width, self.document.height
        return (event.x < reach, event.y < reach, event.x > width - reach, event.y > height - reach)
