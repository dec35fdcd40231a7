"""Undoable edits of a `Document` as QUndoCommands.

Pixel edits (a brush stroke, a mask operation, a pasted region) are `RegionCommand`s: the bounding box of
the change with its old and new pixels, never a copy of the whole layer. Layer edits keep references to the
`Layer` objects they removed or replaced, which costs no pixel copies either.

For other code (the Generate/History panels): push ``AddLayerCommand(document, layer)`` on the window's undo
stack to apply a result as a new layer; `add_image_layer` builds the layer from a PIL image first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from inpaint_studio.core.canvas import Margins
from inpaint_studio.core.document import (
    MASK,
    CanvasState,
    Document,
    Layer,
    LayerKind,
    Rect,
    bbox_of_difference,
    pil_to_rgba,
)

OPACITY_MERGE_ID = 1001  # consecutive opacity changes of one layer (a slider drag) merge into one step


class UndoStack(QUndoStack):
    """The window's undo stack; `declared_clean` says someone marked the current state as saved.

    QUndoStack's cleanChanged also fires when undo or redo returns to the saved index, which does not
    tell "saved now" from "back where it was saved"; the project's unsaved mark needs the difference.
    """

    declared_clean = Signal()

    def setClean(self) -> None:
        super().setClean()
        self.declared_clean.emit()


class RegionCommand(QUndoCommand):
    """Old and new pixels of one rect of a layer (by id) or of the mask (`MASK`).

    When the change is already on the canvas (a stroke was drawn live), pass ``applied=True`` so the first
    redo(), which QUndoStack.push calls, does not write it again.
    """

    def __init__(
        self,
        document: Document,
        target: str,
        rect: Rect,
        old: np.ndarray,
        new: np.ndarray,
        text: str,
        applied: bool = False,
    ) -> None:
        super().__init__(text)
        if old.shape != new.shape:
            raise ValueError(f"old {old.shape} and new {new.shape} pixels differ in shape")
        self.document, self.target, self.rect = document, target, rect
        self.old, self.new = old, new
        self._skip_redo = applied

    @property
    def nbytes(self) -> int:
        """Memory this step holds (both copies)."""
        return int(self.old.nbytes + self.new.nbytes)

    def redo(self) -> None:
        if self._skip_redo:
            self._skip_redo = False
            return
        self.document.write_region(self.target, self.rect, self.new)

    def undo(self) -> None:
        self.document.write_region(self.target, self.rect, self.old)


def region_change(document: Document, target: str, new_full: np.ndarray, text: str) -> RegionCommand | None:
    """A command that replaces a whole target's pixels, storing only the rect that differs (None: no change)."""
    current = document.target_array(target)
    rect = bbox_of_difference(current, new_full)
    if rect is None:
        return None
    left, top, right, bottom = rect
    return RegionCommand(
        document,
        target,
        rect,
        current[top:bottom, left:right].copy(),
        np.ascontiguousarray(new_full[top:bottom, left:right]),
        text,
    )


def mask_change(document: Document, new_mask: np.ndarray, text: str) -> RegionCommand | None:
    return region_change(document, MASK, new_mask, text)


class AddLayerCommand(QUndoCommand):
    """Insert a layer (index None = on top) and make it active; undo removes it."""

    def __init__(self, document: Document, layer: Layer, index: int | None = None, text: str | None = None) -> None:
        super().__init__(text or f"Add layer “{layer.name}”")
        self.document, self.layer = document, layer
        self.index = len(document.layers) if index is None else index
        self._previous_active: str | None = document.active_layer_id

    def redo(self) -> None:
        self._previous_active = self.document.active_layer_id
        self.document.add_layer(self.layer, self.index)

    def undo(self) -> None:
        self.document.remove_layer(self.layer.id)
        if self._previous_active is not None and any(la.id == self._previous_active for la in self.document.layers):
            self.document.set_active_layer(self._previous_active)


def add_image_layer(
    undo_stack: QUndoStack,
    document: Document,
    image: Image.Image,
    name: str,
    kind: LayerKind = "result",
    metadata: dict[str, Any] | None = None,
    index: int | None = None,
) -> Layer:
    """Push "add this image as a new layer" (the image must have the document's size); returns the layer."""
    layer = Layer(name=document.unique_name(name), pixels=pil_to_rgba(image), kind=kind, metadata=metadata or {})
    undo_stack.push(AddLayerCommand(document, layer, index))
    return layer


class StepCommand(QUndoCommand):
    """Several commands as one undo step: done in order, undone in reverse (e.g. Apply = add the result
    layer and clear the mask). The parts are plain Python references, not Qt children: Qt would delete
    children that Python also owns."""

    def __init__(self, text: str, parts: list[QUndoCommand | None]) -> None:
        super().__init__(text)
        self.parts = [part for part in parts if part is not None]

    def redo(self) -> None:
        for part in self.parts:
            part.redo()

    def undo(self) -> None:
        for part in reversed(self.parts):
            part.undo()


class RemoveLayerCommand(QUndoCommand):
    def __init__(self, document: Document, layer_id: str) -> None:
        layer = document.layer(layer_id)
        super().__init__(f"Delete layer “{layer.name}”")
        self.document, self.layer = document, layer
        self.index = document.index_of(layer_id)
        self.was_active = document.active_layer_id == layer_id

    def redo(self) -> None:
        self.document.remove_layer(self.layer.id)

    def undo(self) -> None:
        self.document.add_layer(self.layer, self.index, activate=self.was_active)


class RenameLayerCommand(QUndoCommand):
    def __init__(self, document: Document, layer_id: str, name: str) -> None:
        super().__init__(f"Rename layer to “{name}”")
        self.document, self.layer_id = document, layer_id
        self.old, self.new = document.layer(layer_id).name, name

    def redo(self) -> None:
        self.document.rename_layer(self.layer_id, self.new)

    def undo(self) -> None:
        self.document.rename_layer(self.layer_id, self.old)


class SetLayerVisibleCommand(QUndoCommand):
    def __init__(self, document: Document, layer_id: str, visible: bool) -> None:
        layer = document.layer(layer_id)
        super().__init__(f"{'Show' if visible else 'Hide'} layer “{layer.name}”")
        self.document, self.layer_id = document, layer_id
        self.old, self.new = layer.visible, visible

    def redo(self) -> None:
        self.document.set_layer_visible(self.layer_id, self.new)

    def undo(self) -> None:
        self.document.set_layer_visible(self.layer_id, self.old)


class SetLayerOpacityCommand(QUndoCommand):
    """Opacity change; consecutive changes of the same layer merge (one undo step per slider drag)."""

    def __init__(self, document: Document, layer_id: str, opacity: float) -> None:
        layer = document.layer(layer_id)
        super().__init__(f"Opacity of “{layer.name}”")
        self.document, self.layer_id = document, layer_id
        self.old, self.new = layer.opacity, float(opacity)

    def id(self) -> int:
        return OPACITY_MERGE_ID

    def mergeWith(self, other: QUndoCommand) -> bool:
        if not isinstance(other, SetLayerOpacityCommand) or other.layer_id != self.layer_id:
            return False
        self.new = other.new
        return True

    def redo(self) -> None:
        self.document.set_layer_opacity(self.layer_id, self.new)

    def undo(self) -> None:
        self.document.set_layer_opacity(self.layer_id, self.old)


class MoveLayerCommand(QUndoCommand):
    def __init__(self, document: Document, layer_id: str, new_index: int) -> None:
        super().__init__(f"Move layer “{document.layer(layer_id).name}”")
        self.document, self.layer_id = document, layer_id
        self.old_index, self.new_index = document.index_of(layer_id), new_index

    def redo(self) -> None:
        self.document.move_layer(self.layer_id, self.new_index)

    def undo(self) -> None:
        self.document.move_layer(self.layer_id, self.old_index)


class DuplicateLayerCommand(QUndoCommand):
    def __init__(self, document: Document, layer_id: str) -> None:
        super().__init__(f"Duplicate layer “{document.layer(layer_id).name}”")
        self.document, self.source_id = document, layer_id
        self.copy: Layer | None = None
        self.previous_active = document.active_layer_id

    def redo(self) -> None:
        if self.copy is None:
            self.copy = self.document.duplicate_layer(self.source_id)
        else:  # re-insert the same layer so later commands that name its id stay valid
            self.document.add_layer(self.copy, self.document.index_of(self.source_id) + 1)

    def undo(self) -> None:
        assert self.copy is not None
        self.document.remove_layer(self.copy.id)
        if self.previous_active is not None:
            self.document.set_active_layer(self.previous_active)


class _LayerListSnapshot(QUndoCommand):
    """Base of commands that restructure the stack: undo restores the previous list of Layer objects."""

    def __init__(self, document: Document, text: str) -> None:
        super().__init__(text)
        self.document = document
        self.before = list(document.layers)
        self.before_active = document.active_layer_id
        self.after: list[Layer] | None = None
        self.after_active: str | None = None

    def _apply(self) -> None:
        raise NotImplementedError

    def redo(self) -> None:
        if self.after is None:
            self._apply()
            self.after, self.after_active = list(self.document.layers), self.document.active_layer_id
        else:
            self._restore_after()
            self.document.set_layers(self.after, self.after_active)

    def undo(self) -> None:
        self._restore_before()
        self.document.set_layers(self.before, self.before_active)

    def _restore_after(self) -> None:
        """Hook: put mutated layer attributes back to their post-command state."""

    def _restore_before(self) -> None:
        """Hook: put mutated layer attributes back to their pre-command state."""


class MergeDownCommand(_LayerListSnapshot):
    """Merge a layer into the one below; the lower layer's old pixel array is kept by reference."""

    def __init__(self, document: Document, layer_id: str) -> None:
        index = document.index_of(layer_id)
        if index == 0:
            raise ValueError("the bottom layer has nothing below it to merge into")
        super().__init__(document, f"Merge “{document.layer(layer_id).name}” down")
        self.layer_id = layer_id
        self.lower = document.layers[index - 1]
        self.lower_before = (self.lower.pixels, self.lower.visible, self.lower.opacity)
        self.lower_after: tuple[np.ndarray, bool, float] | None = None

    def _apply(self) -> None:
        self.document.merge_down(self.layer_id)  # assigns a new array to lower.pixels
        self.lower_after = (self.lower.pixels, self.lower.visible, self.lower.opacity)

    def _restore_after(self) -> None:
        assert self.lower_after is not None
        self.lower.pixels, self.lower.visible, self.lower.opacity = self.lower_after

    def _restore_before(self) -> None:
        self.lower.pixels, self.lower.visible, self.lower.opacity = self.lower_before


class FlattenCommand(_LayerListSnapshot):
    """Flatten every layer into one base layer; undo brings the old layers back untouched."""

    def __init__(self, document: Document) -> None:
        super().__init__(document, "Flatten image")

    def _apply(self) -> None:
        self.document.flatten_all()


class ResizeDocumentCommand(QUndoCommand):
    """Give the document another size with new layers and mask (an upscale); undo brings the previous ones back.

    Both states are kept by reference (the Layer objects and the mask arrays): no pixel copies beyond the new
    layers themselves.
    """

    def __init__(
        self, document: Document, size: tuple[int, int], layers: list[Layer], mask: np.ndarray, text: str
    ) -> None:
        super().__init__(text)
        self.document = document
        self.before = (document.width, document.height, list(document.layers), document.mask, document.active_layer_id)
        active = layers[-1].id if layers else None
        self.after = (size[0], size[1], list(layers), mask, active)

    def redo(self) -> None:
        width, height, layers, mask, active = self.after
        self.document.restore(width, height, layers, active, mask)

    def undo(self) -> None:
        width, height, layers, mask, active = self.before
        self.document.restore(width, height, layers, active, mask)


class ExpandCanvasCommand(QUndoCommand):
    """Add canvas around the image: every layer and the mask grow (`Document.expand_canvas`); one undo step.

    Undo swaps the previous arrays back in (kept by reference: the expansion copies each layer once, undo and
    redo copy nothing). `mask` is the new canvas's whole mask when the caller wants other values than
    "everything new is masked" (the outpaint controller keeps a band next to the image unmasked).
    """

    def __init__(
        self, document: Document, margins: Margins, mask: np.ndarray | None = None, text: str | None = None
    ) -> None:
        width, height = margins.new_size(document.width, document.height)
        super().__init__(text or f"Expand canvas to {width}×{height}")
        if mask is not None and mask.shape != (height, width):
            raise ValueError(f"the new mask is {mask.shape}, the expanded canvas {height}x{width}")
        self.document, self.margins, self._mask = document, margins, mask
        self.before: CanvasState | None = None
        self.after: CanvasState | None = None

    @property
    def nbytes(self) -> int:
        """Memory this step alone holds: the arrays from before the expansion (the live ones are the document's)."""
        state = self.before
        return 0 if state is None else int(sum(a.nbytes for a in state.pixels.values()) + state.mask.nbytes)

    def redo(self) -> None:
        if self.after is None:
            after = self.document.expanded_state(self.margins)
            if self._mask is not None:
                after = CanvasState(after.width, after.height, after.pixels, np.ascontiguousarray(self._mask))
                self._mask = None
            self.before = self.document.canvas_state()
            self.after = after
        self.document.set_canvas_state(self.after, self.margins.offset)

    def undo(self) -> None:
        assert self.before is not None
        left, top = self.margins.offset
        self.document.set_canvas_state(self.before, (-left, -top))
