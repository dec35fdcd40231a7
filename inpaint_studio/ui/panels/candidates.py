"""The candidate strip: one thumbnail per variant of finished generations, to preview, apply or discard.

A candidate keeps what its job was given (the image and mask copies the worker used) so "more like this"
re-runs on exactly that input, and so applying it can tell which pixels the job changed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QIcon, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.engine.events import InpaintResult
from inpaint_studio.ui import qt_images

THUMB = 88
KEY_ROLE = Qt.ItemDataRole.UserRole

_keys = itertools.count(1)


@dataclass(eq=False)
class Candidate:
    """One variant of one finished job."""

    result: InpaintResult
    index: int  # variant index in result.images
    image: np.ndarray  # the job's input image (read-only copy shared with the request)
    mask: np.ndarray  # the job's input mask
    derived_from: tuple[int, ...] = ()  # history ids of result layers the input was built on
    rerun_of: int | None = None  # history entry this job re-ran, if any
    inputs: Mapping[str, np.ndarray] = field(default_factory=dict)  # named input images ("reference")
    key: int = field(default_factory=lambda: next(_keys))
    applied_entry: int | None = None  # history id once applied

    @property
    def seed(self) -> int:
        return self.result.seeds[self.index]

    def record(self) -> GenerationRecord:
        """What made this variant (core/record.py): what its history entry keeps once applied."""
        return self.result.record(self.index, rerun_of=self.rerun_of)

    @property
    def pixels(self) -> np.ndarray:
        return np.asarray(self.result.images[self.index])

    def region_pixels(self) -> tuple[np.ndarray, tuple[int, int]]:
        """The part of the result the model worked on (what a preview needs), and its origin."""
        left, top, right, bottom = self.result.region
        return self.pixels[top:bottom, left:right], (left, top)

    @property
    def title(self) -> str:
        job = self.result.job
        if job.is_classical:
            return "Classical fill"
        if self.result.extra.get("removal_network"):
            return f"{self.result.extra['removal_network']} removal"
        return job.prompt.strip().splitlines()[0][:48] if job.prompt.strip() else "Generation"


def thumbnail_icon(candidate: Candidate, side: int = THUMB) -> QIcon:
    region, _origin = candidate.region_pixels()
    return QIcon(qt_images.thumbnail_pixmap(region[..., :3], side))


class _StripList(QListWidget):
    """Enter applies the selected candidate, Delete discards it."""

    apply_key = Signal()
    discard_key = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers():
            self.apply_key.emit()
            event.accept()
        elif event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            self.discard_key.emit()
            event.accept()
        else:
            super().keyPressEvent(event)


class CandidateStrip(QWidget):
    """Thumbnails of candidates (newest last); signals carry the chosen Candidate."""

    preview_requested = Signal(object)  # Candidate, or None to end the preview
    apply_requested = Signal(object)  # Candidate
    discard_requested = Signal(object)  # Candidate (already removed from the strip)
    more_requested = Signal(object)  # Candidate

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._candidates: dict[int, Candidate] = {}
        # Whether an applied candidate's history entry is still in the document (undo takes it out).
        self._in_document: Callable[[int], bool] = lambda _entry_id: True
        self.list = _StripList(self)
        self.list.setViewMode(QListWidget.ViewMode.IconMode)
        self.list.setFlow(QListWidget.Flow.LeftToRight)
        self.list.setWrapping(False)
        self.list.setMovement(QListWidget.Movement.Static)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setSpacing(4)
        self.list.setGridSize(QSize(THUMB + 30, THUMB + 30))  # room for a 10-digit seed under each one
        self.list.setFixedHeight(THUMB + 44)
        self.list.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setToolTip("Click: preview on the canvas · Double-click or Enter: apply as a new layer")
        self.list.itemSelectionChanged.connect(self._on_selection)
        self.list.itemDoubleClicked.connect(lambda item: self._request(self.apply_requested, item))
        self.list.apply_key.connect(self.apply_selected)
        self.list.discard_key.connect(self.discard_selected)
        self.hint = QLabel("Results appear here: one per variant.", self)
        self.hint.setObjectName("candidates_hint")
        self.apply_button = QPushButton("Apply", self)
        self.apply_button.setToolTip("Add the selected result as a new layer (Enter or double-click)")
        self.apply_button.clicked.connect(self.apply_selected)
        self.discard_button = QPushButton("Discard", self)
        self.discard_button.setToolTip("Remove the selected result (Delete)")
        self.discard_button.clicked.connect(self.discard_selected)
        self.more_button = QPushButton("More like this", self)
        self.more_button.setToolTip("Run the same job again with new seeds")
        self.more_button.clicked.connect(lambda: self._request(self.more_requested, self.list.currentItem()))
        self.clear_button = QPushButton("Discard all", self)
        self.clear_button.clicked.connect(self.clear)
        buttons = QHBoxLayout()
        for button in (self.apply_button, self.discard_button, self.more_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.hint)
        layout.addWidget(self.list)
        layout.addLayout(buttons)
        self._update_buttons()

    # ---- content ------------------------------------------------------------------------------------
    def candidates(self) -> list[Candidate]:
        return [self._candidates[self.list.item(i).data(KEY_ROLE)] for i in range(self.list.count())]

    def selected(self) -> Candidate | None:
        item = self.list.currentItem()
        return self._candidates.get(item.data(KEY_ROLE)) if item is not None and item.isSelected() else None

    def add(self, candidates: list[Candidate], select_first: bool = True) -> None:
        first: QListWidgetItem | None = None
        for candidate in candidates:
            self._candidates[candidate.key] = candidate
            item = QListWidgetItem(thumbnail_icon(candidate), self._label(candidate))
            item.setData(KEY_ROLE, candidate.key)
            seed = "" if candidate.record().seed_used is None else f"\nseed {candidate.seed}"
            item.setToolTip(f"{candidate.title}{seed}")
            self.list.addItem(item)
            first = first or item
        if first is not None:
            self.list.scrollToItem(first)
            if select_first:
                self.list.setCurrentItem(first)
        self._update_buttons()

    def mark_applied(self, candidate: Candidate, entry_id: int | None) -> None:
        candidate.applied_entry = entry_id
        item = self._item_for(candidate)
        if item is not None:
            item.setText(self._label(candidate))

    def is_applied(self, candidate: Candidate) -> bool:
        """Applied, and its layer still in the document (an undone apply is not)."""
        return candidate.applied_entry is not None and self._in_document(candidate.applied_entry)

    def refresh_applied(self, in_document: Callable[[int], bool]) -> None:
        """Re-draw the applied marks after undo/redo: `in_document(entry_id)` says which applies count."""
        self._in_document = in_document
        for i in range(self.list.count()):
            item = self.list.item(i)
            candidate = self._candidates.get(item.data(KEY_ROLE))
            if candidate is not None and item.text() != self._label(candidate):
                item.setText(self._label(candidate))

    def select(self, candidate: Candidate | None) -> None:
        if candidate is None:
            self.list.clearSelection()
            return
        item = self._item_for(candidate)
        if item is not None:
            self.list.setCurrentItem(item)

    def remove(self, candidate: Candidate) -> None:
        item = self._item_for(candidate)
        if item is not None:
            self.list.takeItem(self.list.row(item))
        self._candidates.pop(candidate.key, None)
        self._update_buttons()

    def clear(self) -> None:
        had = bool(self._candidates)
        self.list.clear()
        self._candidates.clear()
        self._update_buttons()
        if had:
            self.preview_requested.emit(None)

    # ---- actions ------------------------------------------------------------------------------------
    def apply_selected(self) -> None:
        self._request(self.apply_requested, self.list.currentItem())

    def discard_selected(self) -> None:
        candidate = self.selected()
        if candidate is None:
            return
        row = self.list.currentRow()
        self.remove(candidate)
        self.discard_requested.emit(candidate)
        if self.list.count():
            self.list.setCurrentRow(min(row, self.list.count() - 1))
        else:
            self.preview_requested.emit(None)

    # ---- internals ----------------------------------------------------------------------------------
    def _label(self, candidate: Candidate) -> str:
        mark = " ✓" if self.is_applied(candidate) else ""
        network = candidate.result.extra.get("removal_network")
        name = "classical" if candidate.result.job.is_classical else str(candidate.seed)
        if network:
            name = f"{network}" if candidate.record().seed_used is None else f"{network} {candidate.seed}"
        return f"{name}{mark}"

    def _item_for(self, candidate: Candidate) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(KEY_ROLE) == candidate.key:
                return item
        return None

    def _request(self, signal: Signal, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        candidate = self._candidates.get(item.data(KEY_ROLE))
        if candidate is not None:
            signal.emit(candidate)

    def _on_selection(self) -> None:
        self._update_buttons()
        self.preview_requested.emit(self.selected())

    def clear_selection(self) -> None:
        """Unselect without asking for a preview (the preview already ended)."""
        self.list.blockSignals(True)
        self.list.clearSelection()
        self.list.blockSignals(False)
        self._update_buttons()

    def _update_buttons(self) -> None:
        has_selection = self.selected() is not None
        for button in (self.apply_button, self.discard_button, self.more_button):
            button.setEnabled(has_selection)
        self.clear_button.setEnabled(bool(self._candidates))
        self.hint.setVisible(not self._candidates)
