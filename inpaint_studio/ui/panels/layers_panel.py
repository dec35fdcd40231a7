"""The Layers panel: the stack top-first with thumbnails, visibility, opacity, reorder, rename and actions.

Every change goes through an undo command; selecting a row only sets the active layer (not an edit, as in
Photoshop and Krita). The list is rebuilt from the document on ``layers_changed``; thumbnails refresh a
moment after pixels change, so painting never waits for them.
"""

from __future__ import annotations

import math

import cv2
from PySide6.QtCore import QModelIndex, QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QImage, QPixmap, QUndoCommand, QUndoStack
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.document import Document, Layer, Rect
from inpaint_studio.ui import icons, qt_images
from inpaint_studio.ui.document.commands import (
    AddLayerCommand,
    DuplicateLayerCommand,
    FlattenCommand,
    MergeDownCommand,
    MoveLayerCommand,
    RemoveLayerCommand,
    RenameLayerCommand,
    SetLayerOpacityCommand,
    SetLayerVisibleCommand,
)
from inpaint_studio.ui.panels.wheel_guard import guard_wheel

THUMB = 44  # thumbnail side in logical pixels
THUMB_DELAY_MS = 250
ID_ROLE = Qt.ItemDataRole.UserRole
KIND_LABELS = {"base": "Original image", "result": "Inpainting result", "paint": "Paint layer"}


def layer_thumbnail(layer: Layer, side: int) -> QImage:
    """A small RGBA preview; strided sampling first keeps this cheap for a 6000x4000 layer."""
    height, width = layer.pixels.shape[:2]
    step = max(1, math.floor(max(width, height) / (2 * side)))
    sample = layer.pixels[::step, ::step]
    scale = side / max(sample.shape[0], sample.shape[1])
    size = (max(1, round(sample.shape[1] * scale)), max(1, round(sample.shape[0] * scale)))
    return qt_images.to_qimage(cv2.resize(sample, size, interpolation=cv2.INTER_AREA))


class LayersPanel(QWidget):
    """Lists the document's layers; the window docks it (see MainWindow.add_panel)."""

    def __init__(self, document: Document, undo_stack: QUndoStack, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document, self.undo_stack = document, undo_stack
        self._rebuilding = False

        self.list = QListWidget(self)
        self.list.setIconSize(QSize(THUMB, THUMB))
        self.list.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.list.setDefaultDropAction(Qt.DropAction.MoveAction)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.DoubleClicked | QAbstractItemView.EditTrigger.EditKeyPressed
        )
        self.list.setSpacing(1)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.model().rowsMoved.connect(self._on_rows_moved)

        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setToolTip("Opacity of the selected layer")
        # Apply on release (tracking off): each change recomposites the whole image, too slow to do per pixel
        # of slider travel on a large photo. The label follows the drag.
        self.opacity.setTracking(False)
        self.opacity.sliderMoved.connect(lambda v: self.opacity_label.setText(f"{v} %"))
        self.opacity.valueChanged.connect(self._on_opacity)
        self.opacity_label = QLabel("100 %", self)
        self.opacity_label.setMinimumWidth(44)
        opacity_row = QHBoxLayout()
        opacity_row.addWidget(QLabel("Opacity", self))
        opacity_row.addWidget(self.opacity, 1)
        opacity_row.addWidget(self.opacity_label)

        self.add_button = self._button(icons.layer_add(), "New paint layer", self.add_paint_layer)
        self.duplicate_button = self._button(icons.layer_duplicate(), "Duplicate layer", self.duplicate_active)
        self.merge_button = self._button(icons.layer_merge_down(), "Merge down", self.merge_down_active)
        self.flatten_button = self._button(icons.layer_flatten(), "Flatten image", self.flatten)
        self.delete_button = self._button(icons.layer_delete(), "Delete layer", self.delete_active)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.duplicate_button, self.merge_button, self.flatten_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        buttons.addWidget(self.delete_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(opacity_row)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)

        self._thumb_timer = QTimer(self)
        self._thumb_timer.setSingleShot(True)
        self._thumb_timer.timeout.connect(self.refresh_thumbnails)

        document.layers_changed.connect(self.rebuild)
        document.pixels_changed.connect(self._on_pixels_changed)
        document.reset.connect(self.rebuild)
        self.rebuild()
        guard_wheel(self)  # the opacity slider changes only once clicked

    def _button(self, icon: QIcon, tip: str, slot: object) -> QToolButton:
        button = QToolButton(self)
        button.setIcon(icon)
        button.setIconSize(QSize(20, 20))
        button.setAutoRaise(True)
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        button.clicked.connect(slot)
        return button

    # ----------------------------------------------------------------- list <-> document
    def rebuild(self) -> None:
        """Re-read the document: rows top-first, names, visibility, selection, opacity, button states."""
        self._rebuilding = True
        try:
            self.list.clear()
            for layer in reversed(self.document.layers):
                item = QListWidgetItem(layer.name)
                item.setData(ID_ROLE, layer.id)
                item.setFlags(
                    Qt.ItemFlag.ItemIsSelectable
                    | Qt.ItemFlag.ItemIsEnabled
                    | Qt.ItemFlag.ItemIsEditable
                    | Qt.ItemFlag.ItemIsUserCheckable
                    | Qt.ItemFlag.ItemIsDragEnabled
                )
                item.setCheckState(Qt.CheckState.Checked if layer.visible else Qt.CheckState.Unchecked)
                tip = KIND_LABELS.get(layer.kind, layer.kind)
                if layer.opacity < 1:
                    tip += f", {round(layer.opacity * 100)} % opacity"
                item.setToolTip(f"{layer.name} — {tip}. Checkbox: visibility; double-click: rename; drag: reorder.")
                item.setIcon(QIcon(QPixmap.fromImage(layer_thumbnail(layer, THUMB))))
                self.list.addItem(item)
                if layer.id == self.document.active_layer_id:
                    self.list.setCurrentItem(item)
            active = self.document.active_layer
            self.opacity.setEnabled(active is not None)
            self.opacity.setValue(round((active.opacity if active else 1.0) * 100))
            self.opacity_label.setText(f"{self.opacity.value()} %")
            self._update_buttons()
        finally:
            self._rebuilding = False

    def refresh_thumbnails(self) -> None:
        for row in range(self.list.count()):
            item = self.list.item(row)
            try:
                layer = self.document.layer(item.data(ID_ROLE))
            except KeyError:
                continue
            item.setIcon(QIcon(QPixmap.fromImage(layer_thumbnail(layer, THUMB))))

    def _on_pixels_changed(self, _rect: Rect) -> None:
        if not self._thumb_timer.isActive():
            self._thumb_timer.start(THUMB_DELAY_MS)

    def _update_buttons(self) -> None:
        doc = self.document
        active = doc.active_layer
        index = doc.index_of(active.id) if active is not None else -1
        self.add_button.setEnabled(not doc.is_empty)
        self.duplicate_button.setEnabled(active is not None)
        self.merge_button.setEnabled(index > 0)
        self.flatten_button.setEnabled(len(doc.layers) > 1)
        self.delete_button.setEnabled(active is not None and len(doc.layers) > 1)

    def _item_layer_id(self, item: QListWidgetItem | None) -> str | None:
        return None if item is None else item.data(ID_ROLE)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if self._rebuilding:
            return
        layer_id = self._item_layer_id(current)
        if layer_id is not None and layer_id != self.document.active_layer_id:
            self.document.set_active_layer(layer_id)  # fires layers_changed -> rebuild

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        if self._rebuilding:
            return
        layer_id = self._item_layer_id(item)
        if layer_id is None:
            return
        try:
            layer = self.document.layer(layer_id)
        except KeyError:
            return
        visible = item.checkState() == Qt.CheckState.Checked
        name = item.text().strip()
        command: QUndoCommand | None = None
        if visible != layer.visible:
            command = SetLayerVisibleCommand(self.document, layer_id, visible)
        elif name and name != layer.name:
            command = RenameLayerCommand(self.document, layer_id, name)
        elif not name:
            QTimer.singleShot(0, self.rebuild)  # an empty name is not a name: show the old one again
        if command is not None:
            self.undo_stack.push(command)

    def _on_rows_moved(self, _parent: QModelIndex, start: int, _end: int, _dest: QModelIndex, _row: int) -> None:
        if self._rebuilding:
            return
        # Qt has already moved the row; read back where the dragged layer ended up.
        QTimer.singleShot(0, self._apply_list_order)

    def _apply_list_order(self) -> None:
        ids = [self.list.item(row).data(ID_ROLE) for row in range(self.list.count())]
        current = [layer.id for layer in reversed(self.document.layers)]
        if ids == current or sorted(ids) != sorted(current):
            self.rebuild()
            return
        moved = self._item_layer_id(self.list.currentItem())
        if moved is None:
            self.rebuild()
            return
        new_index = len(ids) - 1 - ids.index(moved)
        self.undo_stack.push(MoveLayerCommand(self.document, moved, new_index))
        self.rebuild()

    def _on_opacity(self, value: int) -> None:
        self.opacity_label.setText(f"{value} %")
        if self._rebuilding:
            return
        active = self.document.active_layer
        if active is not None and round(active.opacity * 100) != value:
            self.undo_stack.push(SetLayerOpacityCommand(self.document, active.id, value / 100))

    # ----------------------------------------------------------------- actions (also used by menus)
    def add_paint_layer(self) -> None:
        if self.document.is_empty:
            return
        active = self.document.active_layer
        index = self.document.index_of(active.id) + 1 if active is not None else None
        layer = self.document.new_layer(self.document.unique_name("Paint"))
        self.undo_stack.push(AddLayerCommand(self.document, layer, index))

    def duplicate_active(self) -> None:
        if self.document.active_layer_id is not None:
            self.undo_stack.push(DuplicateLayerCommand(self.document, self.document.active_layer_id))

    def merge_down_active(self) -> None:
        active = self.document.active_layer
        if active is not None and self.document.index_of(active.id) > 0:
            self.undo_stack.push(MergeDownCommand(self.document, active.id))

    def flatten(self) -> None:
        if len(self.document.layers) > 1:
            self.undo_stack.push(FlattenCommand(self.document))

    def delete_active(self) -> None:
        if self.document.active_layer_id is not None and len(self.document.layers) > 1:
            self.undo_stack.push(RemoveLayerCommand(self.document, self.document.active_layer_id))

    def rename_active(self) -> None:
        """Start editing the selected row's name (F2 / double-click)."""
        item = self.list.currentItem()
        if item is not None:
            self.list.editItem(item)
