"""The History panel: every edit with its thumbnail, kind, time and duration; parameters of generations.

Rows are in the order the edits were made. The line the document is on is drawn normally (the current
entry in bold); undone entries and side branches are greyed and indented by branch, and chained
generations say which result they started from. Selecting a row asks the controller to show that state on
the canvas; the buttons reuse its parameters, re-run it with a new seed, or branch from it.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.history import History, HistoryEntry
from inpaint_studio.core.jobspec import Area
from inpaint_studio.core.parameters import addon_name
from inpaint_studio.core.record import GenerationRecord, record_of
from inpaint_studio.ui import qt_images
from inpaint_studio.ui.document.history_recorder import HistoryRecorder

ICON = 44
ID_ROLE = Qt.ItemDataRole.UserRole
_DIM = QColor(140, 140, 146)
_GENERATION_FIELDS = (
    ("Model", "model_name"),
    ("Prompt", "prompt"),
    ("Negative prompt", "negative_prompt"),
    ("Seed", "seed"),
    ("Strength", "strength"),
    ("Guidance", "guidance_scale"),
    ("Steps", "steps"),
    ("Sampler", "scheduler"),
    ("Area", "area"),
    ("Device", "device_name"),
)


_DIFFUSION_ONLY = ("prompt", "negative_prompt", "seed", "strength", "guidance_scale", "steps", "scheduler")


def generation_fields(record: GenerationRecord) -> list[tuple[str, str]]:
    """(label, value) rows describing a generation or classical fill."""
    job = record.job
    values: dict[str, Any] = {k: getattr(job, k) for k in ("prompt", "negative_prompt", "seed", "strength")}
    values.update(guidance_scale=job.guidance_scale, steps=job.steps, scheduler=job.scheduler)
    values["model_name"] = record.model_name
    values["area"] = f"masked region + {job.padding_px} px" if job.area is Area.MASKED else "whole image"
    device, name = record.device, record.device_name
    same = name.lower().startswith(device.lower())  # "CPU" for "cpu": say it once
    values["device_name"] = f"{name} ({device})" if name and device and not same else (name or device)
    classical = not record.ran_diffusion  # the classical fill and removal networks: no prompt, steps, sampler
    seeded = record.seed_used is not None
    rows = []
    for label, key in _GENERATION_FIELDS:
        if classical and key in _DIFFUSION_ONLY and not (key == "seed" and seeded):
            continue  # a fill has none of these (MAT alone uses a seed)
        value = values.get(key, "")
        rows.append((label, "" if value is None else str(value)))
    if not classical:
        rows.append(("Variant", f"{record.variant + 1} of {record.batch_size}"))
    rows.append(("Feather / grow", f"{job.mask.feather_px} px / {job.mask.grow_px} px"))
    rows.append(("Preserve unmasked", "yes" if job.preserve_unmasked else "no"))
    network = record.extra.get("removal_network")
    if network:
        rows.append(("Removal network", str(network)))
    elif classical:
        rows.append(("Fill method", str(record.extra.get("classical_method", job.effective_classical_method.value))))
    else:
        rows.extend(addon_fields(record))
    prefill = record.extra.get("prefill")
    if isinstance(prefill, dict):
        rows.append(("Pre-fill", str(prefill.get("removal_network") or prefill.get("prefill", ""))))
    return rows


def addon_fields(record: GenerationRecord) -> list[tuple[str, str]]:
    """Rows for the add-ons a generation used: LoRAs with weights (A1111's tags), embeddings, the reference."""
    job, rows = record.job, []
    if job.fast != "off":
        rows.append(("Fast mode", job.fast))
    if job.loras:
        rows.append(("LoRAs", " ".join(f"<lora:{addon_name(ref)}:{weight:g}>" for ref, weight in job.loras)))
    if job.embeddings:
        rows.append(("Embeddings", ", ".join(token or addon_name(ref) for ref, token in job.embeddings)))
    if job.ip_adapter:
        where = ", inside the mask" if job.ip_adapter_masked else ""
        rows.append(("Reference", f"{addon_name(job.ip_adapter)} at {job.ip_adapter_scale:g}{where}"))
    if job.speed.preset != "default":
        rows.append(("Speed", job.speed.preset))
    return rows


def upscale_fields(params: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows for an upscale entry (engine/upscale.py's record)."""
    job = params.get("upscale") if isinstance(params.get("upscale"), dict) else {}
    extra = params.get("extra") if isinstance(params.get("extra"), dict) else {}
    size = params.get("size")
    rows = [
        ("Upscaler", addon_name(str(job.get("model", "")))),
        ("Factor", f"x{job.get('scale', '?')}"),
        ("Network", f"{extra.get('architecture', '?')} x{extra.get('model_scale', '?')}"),
    ]
    if isinstance(size, list) and len(size) == 2:
        rows.append(("New size", f"{size[0]} × {size[1]} px"))
    rows.append(("Tiles", f"{job.get('tile')} px" if job.get("tile") else "whole image"))
    rows.append(("Device", str(extra.get("device_name") or params.get("device", ""))))
    return rows


def thumbnail_icon(entry: HistoryEntry) -> QIcon:
    rgba = entry.render_thumbnail()
    if rgba is None:
        return QIcon()
    return QIcon(qt_images.thumbnail_pixmap(rgba, ICON))


def _clock(when: float) -> str:
    return _dt.datetime.fromtimestamp(when).strftime("%H:%M:%S")


def entry_label(entry: HistoryEntry, lanes: dict[int, int], status: str) -> str:
    first = f"#{entry.id}  {entry.kind_label}: {entry.title}"
    second = [_clock(entry.time)]
    if entry.duration_s:
        second.append(f"{entry.duration_s:.1f} s")
    if entry.derived_from:
        second.append("from " + ", ".join(f"#{i}" for i in entry.derived_from))
    lane = lanes.get(entry.id, 0)
    if lane and entry.parent_id is not None and lanes.get(entry.parent_id) != lane:
        second.append(f"branch of #{entry.parent_id}")
    if status == "undone":
        second.append("undone")
    return f"{'    ' * lane}{first}\n{'    ' * lane}{' · '.join(second)}"


class HistoryPanel(QWidget):
    """Lists `recorder.history`; signals carry entry ids (None: back to the current document)."""

    preview_requested = Signal(object)  # int | None
    use_parameters_requested = Signal(int)
    rerun_requested = Signal(int)
    branch_requested = Signal(int)

    def __init__(self, recorder: HistoryRecorder, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.recorder = recorder
        self._icons: dict[int, QIcon] = {}
        self._memory_mib = 0.0
        self._budget_mib: float | None = None
        # Where the memory figure comes from: the memory budget's census when installed (cheap), else a walk.
        self.memory_source: Callable[[], int] | None = None
        self.list = QListWidget(self)
        self.list.setIconSize(QSize(ICON, ICON))
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setUniformItemSizes(False)
        self.list.setWordWrap(False)
        # A long prompt is cut with "…" at the panel's edge (the tooltip has it whole), not scrolled sideways.
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.currentItemChanged.connect(self._on_current_changed)
        self.details = QTextBrowser(self)
        self.details.setOpenLinks(False)
        self.details.setPlaceholderText("Select an entry to see the document as it was and its parameters.")
        self.use_button = QPushButton("Use these parameters", self)
        self.use_button.clicked.connect(lambda: self._emit_selected(self.use_parameters_requested))
        self.rerun_button = QPushButton("Re-run with a new seed", self)
        self.rerun_button.clicked.connect(lambda: self._emit_selected(self.rerun_requested))
        self.branch_button = QPushButton("Branch from here", self)
        self.branch_button.setToolTip("Continue from this state; the later entries stay in the history")
        self.branch_button.clicked.connect(lambda: self._emit_selected(self.branch_requested))
        self.back_button = QPushButton("Back to current", self)
        self.back_button.setToolTip("Stop showing the selected state")
        self.back_button.clicked.connect(self.back_to_current)
        self.memory_label = QLabel(self)
        self.memory_label.setObjectName("history_memory")
        buttons = QGridLayout()
        buttons.addWidget(self.use_button, 0, 0)
        buttons.addWidget(self.rerun_button, 0, 1)
        buttons.addWidget(self.branch_button, 1, 0)
        buttons.addWidget(self.back_button, 1, 1)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.list)
        split.addWidget(self.details)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.memory_label)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(0)
        self._refresh_timer.timeout.connect(self.refresh)
        recorder.changed.connect(self._refresh_timer.start)
        self._memory_timer = QTimer(self)
        self._memory_timer.setSingleShot(True)
        self._memory_timer.setInterval(2000)
        self._memory_timer.timeout.connect(self._update_memory)
        self.refresh()
        self._update_memory()

    @property
    def history(self) -> History:
        return self.recorder.history

    # ---- API ----------------------------------------------------------------------------------------
    def selected_id(self) -> int | None:
        item = self.list.currentItem()
        return int(item.data(ID_ROLE)) if item is not None and item.isSelected() else None

    def select(self, entry_id: int | None) -> None:
        """Select an entry (showing its state) or nothing (back to the current document)."""
        if entry_id is None:
            self.back_to_current()
            return
        if self._refresh_timer.isActive():  # an edit just happened: list it first
            self._refresh_timer.stop()
            self.refresh()
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ID_ROLE) == entry_id:
                if self.list.currentItem() is item:
                    self._on_clicked(item)
                else:
                    self.list.setCurrentItem(item)  # currentItemChanged shows it
                return

    def back_to_current(self) -> None:
        self.clear_selection()
        self._show_details(None)
        self.preview_requested.emit(None)

    def clear_selection(self) -> None:
        """Unselect without asking for a preview (the preview already ended)."""
        self.list.blockSignals(True)
        self.list.clearSelection()
        self.list.setCurrentItem(None)
        self.list.blockSignals(False)

    def refresh(self) -> None:
        history = self.history
        selected = self.selected_id()
        known = set(history.entries)
        self._icons = {k: v for k, v in self._icons.items() if k in known}
        lanes = history.lanes()
        statuses = history.statuses()
        self.list.blockSignals(True)
        self.list.clear()
        for entry in history:
            status = statuses[entry.id]
            item = QListWidgetItem(self._icon(entry), entry_label(entry, lanes, status))
            item.setData(ID_ROLE, entry.id)
            if status in ("undone", "branch"):
                item.setForeground(QBrush(_DIM))
            if status == "current":
                font = QFont(item.font())
                font.setBold(True)
                item.setFont(font)
            item.setToolTip(f"#{entry.id} {entry.kind_label}: {entry.title}\n{status}")
            self.list.addItem(item)
            if entry.id == selected:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if selected is None:
            self.list.scrollToBottom()
        self._show_details(selected if selected in known else None)
        self._show_memory()
        if not self._memory_timer.isActive():
            self._memory_timer.start()

    def set_budget(self, budget_bytes: int | None) -> None:
        """Show the memory budget next to the snapshots' size (see ui/memory_budget.py)."""
        self._budget_mib = None if budget_bytes is None else budget_bytes / 2**20
        self._show_memory()

    def _update_memory(self) -> None:
        # Summing the distinct tiles walks every snapshot: done at most every 2 s, never per stroke.
        source = self.memory_source or self.history.memory_bytes
        self._memory_mib = source() / 2**20 if len(self.history) else 0.0
        self._show_memory()

    def _show_memory(self) -> None:
        count = len(self.history)
        noun = "entry" if count == 1 else "entries"
        budget = f" of {self._budget_mib:.0f}" if self._budget_mib is not None else ""
        self.memory_label.setText(f"{count} {noun} · snapshots {self._memory_mib:.1f}{budget} MiB")

    # ---- internals ----------------------------------------------------------------------------------
    def _icon(self, entry: HistoryEntry) -> QIcon:
        icon = self._icons.get(entry.id)
        if icon is None or entry.thumbnail is None:
            icon = thumbnail_icon(entry)
            self._icons[entry.id] = icon
        return icon

    def _emit_selected(self, signal: Any) -> None:
        entry_id = self.selected_id()
        if entry_id is not None:
            signal.emit(entry_id)

    def _on_clicked(self, item: QListWidgetItem) -> None:
        entry_id = int(item.data(ID_ROLE))
        self._show_details(entry_id)
        self.preview_requested.emit(entry_id)

    def _on_current_changed(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        if current is not None:
            self._on_clicked(current)

    def _show_details(self, entry_id: int | None) -> None:
        entry = self.history.entries.get(entry_id) if entry_id is not None else None
        record = record_of(entry) if entry is not None else None
        is_generation = record is not None
        self.use_button.setEnabled(is_generation)
        self.rerun_button.setEnabled(is_generation and entry is not None and entry.kind == "generate")
        self.branch_button.setEnabled(
            entry is not None and entry.snapshot is not None and entry.id != self.history.head_id
        )
        self.back_button.setEnabled(entry is not None)
        if entry is None:
            self.details.clear()
            return
        rows = [
            ("Kind", entry.kind_label),
            ("When", _dt.datetime.fromtimestamp(entry.time).strftime("%Y-%m-%d %H:%M:%S")),
            ("Duration", f"{entry.duration_s:.2f} s" if entry.duration_s else "—"),
            ("Status", self.history.status(entry.id)),
        ]
        if entry.parent_id is not None:
            rows.append(("Applied to", f"#{entry.parent_id}"))
        if entry.derived_from:
            rows.append(("Started from result", ", ".join(f"#{i}" for i in entry.derived_from)))
        if record is not None:
            rows.extend(generation_fields(record))
        elif entry.kind == "upscale":
            rows.extend(upscale_fields(entry.params))
        body = "".join(
            f"<tr><td style='color:#9a9aa0;padding-right:8px'>{html.escape(k)}</td>"
            f"<td>{html.escape(v) or '<i>empty</i>'}</td></tr>"
            for k, v in rows
        )
        self.details.setHtml(f"<b>#{entry.id} {html.escape(entry.title)}</b><table>{body}</table>")
