"""Keeps the `History` in step with the undo stack: one entry per pushed command, head = the undo index.

Every command pushed on the window's undo stack (by any panel or tool) becomes an entry whose kind comes
from the command type (`RegionCommand` on the mask: "mask"; on a layer: "paint"; layer commands: "layer").
Code that knows more (the generation controller) calls `annotate_next()` right before its push to give the
entry its kind, title, parameters and chain links. Undo and redo only move the head, so the entries they
leave behind stay in the history (as "undone", then as a side branch once something new is pushed).

Opening a project hands its saved history to `adopt_next()` before the document resets: the history is then
taken over instead of starting a new one, and the saved head becomes the state at undo index 0.

Commands are recognised by their C++ address: the undo stack owns them, so a macro (created in C++) has no
stable Python object to tag. An address is forgotten as soon as its command leaves the stack, so a reused
address is always seen as a new command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from inpaint_studio.core.document import MASK, Document, Layer
from inpaint_studio.core.history import (
    DocumentSnapshot,
    Hints,
    History,
    HistoryEntry,
    adopt_sources,
    capture,
)
from inpaint_studio.ui.document.commands import (
    AddLayerCommand,
    DuplicateLayerCommand,
    ExpandCanvasCommand,
    MoveLayerCommand,
    RegionCommand,
    RemoveLayerCommand,
    RenameLayerCommand,
    ResizeDocumentCommand,
    SetLayerOpacityCommand,
    SetLayerVisibleCommand,
    StepCommand,
)

# Commands that change no pixels of the layers that stay in the document.
_NO_PIXEL_CHANGE = (RemoveLayerCommand, RenameLayerCommand, SetLayerOpacityCommand, SetLayerVisibleCommand)
_NEW_LAYER = (AddLayerCommand, DuplicateLayerCommand)


@dataclass
class Annotation:
    """What the next pushed command is, when its pusher knows better than the command's type."""

    kind: str
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    derived_from: tuple[int, ...] = ()
    layer: Layer | None = None  # a result layer: gets metadata["history_id"] before the snapshot
    branch_to: int | None = None  # a RestoreStateCommand: maps to this existing entry, creates none


class RestoreStateCommand(QUndoCommand):
    """Make the document show a history snapshot ("branch from here"); undo brings the previous layers back.

    The previous Layer objects are kept by reference (no pixel copies); the restored layers are new
    objects built from the snapshot's tiles, with the snapshot's layer ids.
    """

    def __init__(self, document: Document, snapshot: DocumentSnapshot, text: str) -> None:
        super().__init__(text)
        self.document, self.snapshot = document, snapshot
        self.before_size = document.size
        self.before_layers = list(document.layers)
        self.before_active = document.active_layer_id
        self.before_mask = document.mask.copy()
        self.after_layers: list[Layer] | None = None
        self.after_mask = snapshot.mask.to_array()

        self.before_size = (document.width, document.height)

    def redo(self) -> None:
        if self.after_layers is None:
            self.after_layers = self.snapshot.to_layers()
        snap = self.snapshot
        # A snapshot from before a canvas expansion has another size: `restore` handles both.
        self.document.restore(snap.width, snap.height, self.after_layers, snap.active_layer_id, self.after_mask.copy())

    def undo(self) -> None:
        width, height = self.before_size
        self.document.restore(width, height, self.before_layers, self.before_active, self.before_mask.copy())


def command_kind_and_hints(command: QUndoCommand) -> tuple[str, Hints | None]:
    """The history kind of a command and what it changed (None: unknown, compare everything)."""
    if isinstance(command, RegionCommand):
        return ("mask" if command.target == MASK else "paint"), {command.target: command.rect}
    if isinstance(command, RestoreStateCommand | ExpandCanvasCommand | ResizeDocumentCommand):
        return "layer", None  # every array replaced (another size, maybe): compare everything
    if isinstance(command, _NO_PIXEL_CHANGE + _NEW_LAYER):
        return "layer", {}
    if isinstance(command, MoveLayerCommand):
        return "layer", {}
    if isinstance(command, StepCommand):
        parts: list[QUndoCommand | None] = list(command.parts)
    else:
        parts = [command.child(i) for i in range(command.childCount())]
    if parts:
        kinds: list[str] = []
        merged: dict[str, Any] = {}
        for child in parts:
            if child is None:
                return "layer", None
            kind, hints = command_kind_and_hints(child)
            if hints is None:
                return kind, None
            kinds.append(kind)
            for target, rect in hints.items():
                merged[target] = _union(merged[target], rect) if target in merged else rect
        kind = "paint" if "paint" in kinds else ("mask" if kinds and all(k == "mask" for k in kinds) else "layer")
        return kind, merged
    text = command.text().lower()
    return ("mask" if "mask" in text else "layer"), None


def _union(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _address(command: QUndoCommand | None) -> int:
    return int(shiboken6.getCppPointer(command)[0]) if command is not None else 0


class HistoryRecorder(QObject):
    """Records the document's edits into `history`; `changed` fires after every update."""

    changed = Signal()

    def __init__(self, document: Document, undo_stack: QUndoStack, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document, self.undo_stack = document, undo_stack
        self.history = History()
        self.revision = 0  # bumped on every change, merges included: "did anything change since then?"
        self._entry_of: dict[int, int] = {}  # command address -> entry id
        self._root_id: int | None = None  # the entry at undo index 0 (the opened image or the saved head)
        self._annotation: Annotation | None = None
        self._adopt: History | None = None
        undo_stack.indexChanged.connect(self._on_index_changed)
        document.reset.connect(self._on_reset)
        if not document.is_empty:
            self._on_reset()

    # ---- API ----------------------------------------------------------------------------------------
    def dispose(self) -> None:
        """Stop recording (the document is plain Python: its callbacks must be disconnected by hand)."""
        self.document.reset.disconnect(self._on_reset)
        self.undo_stack.indexChanged.disconnect(self._on_index_changed)

    def adopt_next(self, history: History | None) -> None:
        """Take over `history` (a project's) at the next document reset instead of starting afresh."""
        self._adopt = history

    def reachable_ids(self) -> set[int]:
        """Entries undo and redo can reach (the others are side branches or beyond the undo limit)."""
        ids = set(self._entry_of.values())
        if self._root_id is not None:
            ids.add(self._root_id)
        return ids

    def annotate_next(self, annotation: Annotation) -> None:
        """Describe the command about to be pushed (consumed by that push)."""
        self._annotation = annotation

    def push(self, command: QUndoCommand, annotation: Annotation) -> HistoryEntry | None:
        """Push a command with its annotation; returns the entry it created (or moved the head to)."""
        self._annotation = annotation
        self.undo_stack.push(command)
        self._annotation = None
        return self.history.head

    def branch_from(self, entry_id: int) -> bool:
        """Make the document show an entry's state, undoably; new edits then branch off that entry."""
        entry = self.history[entry_id]
        if entry.snapshot is None:
            return False
        command = RestoreStateCommand(self.document, entry.snapshot, f"Branch from #{entry.id}: {entry.title}")
        self.push(command, Annotation("layer", command.text(), branch_to=entry_id))
        return True

    # ---- recording ------------------------------------------------------------------------------------
    def _on_reset(self) -> None:
        self.history.clear()
        self._entry_of.clear()
        self._root_id = None
        self.revision += 1
        adopted, self._adopt = self._adopt, None
        if self.document.is_empty:
            self.changed.emit()
            return
        if adopted is not None and adopted.head is not None:
            self._take_over(adopted)
            self.changed.emit()
            return
        snapshot = capture(self.document)
        name = self.document.metadata.get("path") or self.document.metadata.get("name") or "Image"
        entry = self.history.add(
            "open",
            str(name).replace("\\", "/").rsplit("/", 1)[-1],
            params={"size": [self.document.width, self.document.height]},
            snapshot=snapshot,
            thumbnail=snapshot.thumbnail(),
            parent_id=None,
        )
        self._root_id = entry.id
        self.changed.emit()

    def _take_over(self, history: History) -> None:
        self.history = history
        head = history.head
        assert head is not None
        # Compare tile by tile with the saved head: equal tiles stay shared, and the snapshot learns which
        # live arrays it came from, so the next edit's capture reads only what that edit changed.
        head.snapshot = capture(self.document, head.snapshot)
        if head.thumbnail is None:
            head.thumbnail = head.snapshot.thumbnail()
        self._root_id = head.id

    def _on_index_changed(self, index: int) -> None:
        stack = self.undo_stack
        if not shiboken6.isValid(stack) or not shiboken6.isValid(self):
            return  # the window is being destroyed
        self.revision += 1
        previous_head = self.history.head
        addresses = [_address(stack.command(i)) for i in range(stack.count())]
        live = set(addresses)
        for address in [a for a in self._entry_of if a not in live]:
            del self._entry_of[address]  # the stack deleted that command (redo tail discarded, undo limit)
        new = [a for a in addresses if a not in self._entry_of]
        annotation, self._annotation = self._annotation, None
        if new and self._root_id is not None:
            address = new[-1]
            command = stack.command(addresses.index(address))
            self._entry_of[address] = self._record(command, annotation)
        elif index > 0 and addresses and self._root_id is not None:
            top = self._entry_of.get(addresses[index - 1])
            if top is not None and top == self.history.head_id and annotation is None:
                self._refresh(top, stack.command(index - 1))  # a merge (e.g. an opacity drag) changed it
        if self._root_id is not None:
            head = self._entry_of.get(addresses[index - 1]) if index > 0 else self._root_id
            self.history.set_head(head if head is not None else self._root_id)
            self._recapture_head(previous_head)
        self.changed.emit()

    def _recapture_head(self, previous: HistoryEntry | None) -> None:
        """Undo/redo reached an entry whose snapshot the memory budget dropped: the document shows that
        state now, so capture it again (sharing every tile equal to the state it came from)."""
        head = self.history.head
        if head is None or head.snapshot is not None:
            return
        reference = previous.snapshot if previous is not None else None
        head.snapshot = capture(self.document, reference)

    def _record(self, command: QUndoCommand, annotation: Annotation | None) -> int:
        if annotation is not None and annotation.branch_to is not None:
            entry = self.history[annotation.branch_to]
            if entry.snapshot is not None:  # the restored arrays hold exactly that snapshot
                entry.snapshot = adopt_sources(entry.snapshot, self.document)
            return entry.id
        kind, hints = command_kind_and_hints(command)
        title = command.text() or kind
        params: dict[str, Any] = {}
        duration, derived = 0.0, ()
        new_id = self.history.next_id
        if annotation is not None:
            kind, title, params = annotation.kind, annotation.title, dict(annotation.params)
            duration, derived = annotation.duration_s, annotation.derived_from
            if annotation.layer is not None:
                annotation.layer.metadata["history_id"] = new_id
        previous = self.history.head.snapshot if self.history.head is not None else None
        started = time.perf_counter()
        snapshot = capture(self.document, previous, hints)
        params.setdefault("snapshot_ms", round((time.perf_counter() - started) * 1000, 2))
        entry = self.history.add(
            kind,
            title,
            params=params,
            duration_s=duration,
            snapshot=snapshot,
            derived_from=derived,
        )
        assert entry.id == new_id
        return entry.id

    def _refresh(self, entry_id: int, command: QUndoCommand) -> None:
        entry = self.history[entry_id]
        parent = self.history[entry.parent_id] if entry.parent_id is not None else None
        _kind, hints = command_kind_and_hints(command)
        entry.snapshot = capture(self.document, parent.snapshot if parent else None, hints)
        entry.thumbnail = None  # re-rendered on demand
