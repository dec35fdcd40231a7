"""The Select tool (W): click an object and a segmentation model proposes its mask.

One selection is a short session of prompts for one object, previewed before it touches the mask:

* click: the object under the pointer becomes the proposal; more clicks refine it ("this too");
* Alt-click: leave this part out of the proposal;
* drag: a box around the object (replaces the session's box);
* started with Alt (a first Alt-click or Alt-drag), the proposal is cut out of the mask instead of added, and
  the roles swap: Alt-clicks add to what is cut out, plain clicks keep parts in the mask. The rule is the
  same either way: Alt means "towards removing from the mask".
* Enter (or any commit: switching tools, undo, Generate) applies the proposal as one undo step; Esc drops it.

The tool owns only the session and the proposal's pixels. Computing a proposal is someone else's job: the
`client` (ui/controllers/selection.py) takes each prompt, runs the model in the interactive worker thread,
and hands the mask back with `show_result`. Results for anything but the latest prompt are ignored, so fast
clicking never shows a stale answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from PySide6.QtGui import QUndoStack

from inpaint_studio.core import mask_ops
from inpaint_studio.core.document import MASK, Document, Rect, bbox_of_nonzero
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.selection import PromptPoint, SelectionPrompt, check_point
from inpaint_studio.ui.canvas.tools import PointerEvent, Preview, Tool, ToolSettings
from inpaint_studio.ui.document.commands import RegionCommand

DRAG_SCREEN_PX = 4.0  # a press that moves less than this (on screen) is a click, not a box


class SelectionClient(Protocol):
    """What the tool asks of whoever computes proposals."""

    def request_selection(self, prompt: SelectionPrompt) -> None:
        """Compute the mask for `prompt` and call the tool's `show_result` (or `request_failed`)."""

    def selection_problem(self, message: str) -> None:
        """Tell the user why a gesture did nothing (a click outside the image, no image open)."""

    def selection_ended(self) -> None:
        """The session was applied or dropped: pending work for it can be cancelled."""


@dataclass(frozen=True)
class SelectionOverlay:
    """What the canvas draws for the session: the proposal (full-size uint8 or None), its rect, the prompts."""

    proposal: np.ndarray | None
    rect: Rect | None
    subtract: bool
    points: tuple[PromptPoint, ...]
    box: tuple[float, float, float, float] | None
    waiting: bool


class ObjectSelectTool(Tool):
    """See the module docstring."""

    name = "object_select"
    label = "Object selection"

    def __init__(self, document: Document, undo_stack: QUndoStack, settings: ToolSettings) -> None:
        super().__init__(document, undo_stack, settings)
        self.client: SelectionClient | None = None
        self._press: PointerEvent | None = None
        self._drag: tuple[float, float] | None = None
        self._prompt = SelectionPrompt()
        self._subtract = False
        self._proposal: np.ndarray | None = None
        self._rect: Rect | None = None
        self._waiting = False

    # ---- state ------------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """A press in progress or a session open (so tool switches and undo commit it first)."""
        return self._press is not None or not self._prompt.is_empty

    @property
    def prompt(self) -> SelectionPrompt:
        return self._prompt

    @property
    def subtract(self) -> bool:
        return self._subtract

    @property
    def proposal(self) -> np.ndarray | None:
        return self._proposal

    @property
    def waiting(self) -> bool:
        """A prompt was sent and its answer has not come yet."""
        return self._waiting

    def overlay(self) -> SelectionOverlay | None:
        if self._prompt.is_empty and self._proposal is None:
            return None
        return SelectionOverlay(
            self._proposal, self._rect, self._subtract, self._prompt.points, self._prompt.box, self._waiting
        )

    # ---- pointer -----------------------------------------------------------------------------------------
    def press(self, event: PointerEvent) -> None:
        if self.document.is_empty:
            return
        self._press, self._drag = event, None

    def move(self, event: PointerEvent) -> None:
        press = self._press
        if press is None:
            return
        distance = math.hypot(event.x - press.x, event.y - press.y) * max(event.scale, 1e-6)
        if self._drag is not None or distance >= DRAG_SCREEN_PX:
            self._drag = (event.x, event.y)

    def release(self, event: PointerEvent) -> None:
        press = self._press
        if press is None:
            return
        self.move(event)
        drag, self._press, self._drag = self._drag, None, None
        starting = self._prompt.is_empty
        subtract = press.alt if starting else self._subtract
        if drag is not None:
            box = self._clip_box((press.x, press.y, drag[0], drag[1]))
            if box is None:
                self._problem(
                    f"The box lies outside the {self.document.width}×{self.document.height} image; "
                    "drag over the object."
                )
                return
            prompt = self._prompt.with_box(box)
        else:
            point = PromptPoint(press.x, press.y, include=(press.alt == subtract))
            try:
                check_point(point, self.document.width, self.document.height)
            except BadInputError as error:
                self._problem(f"{error} Click on the object in the image.")
                return
            prompt = self._prompt.with_point(point)
        if not prompt.has_object:  # an Alt-click that leaves out a part of nothing yet cannot happen (see above)
            return
        self._prompt, self._subtract, self._waiting = prompt, subtract, True
        self.changed.emit()
        if self.client is not None:
            self.client.request_selection(prompt)

    def preview(self) -> Preview | None:
        """The box being dragged (drawn like the rectangle tool's outline)."""
        if self._press is None or self._drag is None:
            return None
        subtract = self._press.alt if self._prompt.is_empty else self._subtract
        return Preview("rect", ((self._press.x, self._press.y), self._drag), subtract)

    # ---- answers -----------------------------------------------------------------------------------------
    def show_result(self, prompt: SelectionPrompt, mask: np.ndarray) -> bool:
        """The client's answer for `prompt`; ignored (False) unless it answers the latest prompt."""
        if prompt != self._prompt or self._prompt.is_empty:
            return False
        if mask.shape != (self.document.height, self.document.width):
            return False  # the image changed size meanwhile
        self._proposal = mask
        self._rect = bbox_of_nonzero(mask)
        self._waiting = False
        self.changed.emit()
        return True

    def request_failed(self, prompt: SelectionPrompt) -> None:
        """The client could not answer `prompt`: forget the prompt's last step, keep the previous proposal."""
        if prompt != self._prompt:
            return
        self._waiting = False
        if len(prompt.points) + (prompt.box is not None) <= 1:
            self._reset()
        self.changed.emit()

    # ---- commit or drop ----------------------------------------------------------------------------------
    def finish(self) -> None:
        """Apply the proposal to the mask (one undo step) and end the session."""
        self._press = self._drag = None
        proposal, rect, subtract = self._proposal, self._rect, self._subtract
        had_session = not self._prompt.is_empty
        self._reset()
        if had_session:
            self.changed.emit()
            if self.client is not None:
                self.client.selection_ended()
        if proposal is None or rect is None or proposal.shape != self.document.mask.shape:
            return
        left, top, right, bottom = rect
        old = self.document.read_region(MASK, rect)
        new = mask_ops.combine(old, proposal[top:bottom, left:right], "subtract" if subtract else "add")
        if not np.array_equal(old, new):
            text = "Remove object from mask" if subtract else "Add object to mask"
            self.undo_stack.push(RegionCommand(self.document, MASK, rect, old, new, text))

    def drop(self) -> None:
        """End the session without touching the mask (Esc)."""
        self._press = self._drag = None
        if self._prompt.is_empty and self._proposal is None:
            return
        self._reset()
        self.changed.emit()
        if self.client is not None:
            self.client.selection_ended()

    def key(self, name: str) -> bool:
        if not self.wants_key(name):
            return False
        if name == "enter":
            self.finish()
        else:
            self.drop()
        return True

    def wants_key(self, name: str) -> bool:
        return name in ("enter", "escape") and not self._prompt.is_empty

    # ---- helpers -----------------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._prompt, self._subtract = SelectionPrompt(), False
        self._proposal, self._rect, self._waiting = None, None, False

    def _clip_box(self, corners: tuple[float, float, float, float]) -> tuple[float, float, float, float] | None:
        x0, y0, x1, y1 = corners
        width, height = self.document.width, self.document.height
        left, right = max(0.0, min(x0, x1)), min(float(width), max(x0, x1))
        top, bottom = max(0.0, min(y0, y1)), min(float(height), max(y0, y1))
        if right - left < 1 or bottom - top < 1:
            return None
        return (left, top, right, bottom)

    def _problem(self, message: str) -> None:
        if self.client is not None:
            self.client.selection_problem(message)
