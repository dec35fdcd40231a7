"""The Generate panel's add-ons: Fast mode, LoRAs, embeddings, the IP-Adapter's reference image, the speed
preset and the preview while painting.

Every control is bound to a field of the GenerationSettings model (ui/bindings.py), like the rest of the panel,
so restored settings, projects and "Use these parameters" show what they hold. The lists of LoRAs and
embeddings are `PairList`s (a row per add-on: its name, its weight or token, a remove button) fed by the
user's LoRA / embeddings folders and the Hugging Face cache (engine/addon_list.py, scanned on the background
runner). The reference image is pixels, not a setting: the box holds it for the controller, which sends it as
the job's input image named "reference" (and history keeps it with the entry's inputs).

Downloads are only offered, with their size and licence, for what the chosen settings need (a fast-mode LoRA,
an IP-Adapter); the controller runs them. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.fast_modes import DEFAULT_FAST, PROFILES
from inpaint_studio.core.generation_settings import GenerationSettings
from inpaint_studio.core.jobspec import LORA_WEIGHT_LIMIT, OFF, SPEED_PRESETS
from inpaint_studio.core.parameters import addon_name
from inpaint_studio.engine.addon_list import AddonChoice, catalog_choices, list_embeddings, list_loras
from inpaint_studio.engine.addons import IP_ADAPTER_DEFAULTS, IP_ADAPTER_REPO, is_installed
from inpaint_studio.engine.catalog import AddonEntry, addon_entry
from inpaint_studio.ui import bindings, qt_images
from inpaint_studio.ui.background import BackgroundRunner, TaskState
from inpaint_studio.ui.panels.wheel_guard import guard_wheel
from inpaint_studio.ui.settings import AppSettings

REFERENCE_SIDE = 96
_SPEED_LABELS = {"default": "Default", "fastest": "Fastest"}
_SPEED_TIPS = {
    "default": "SDPA attention; channels_last on NVIDIA GPUs",
    "fastest": "Fused QKV projections, channels_last and, on NVIDIA GPUs, torch.compile (the first run compiles)",
}


def _download_words(entry: AddonEntry) -> str:
    return f"{entry.name}: a {entry.download_gb:g} GB download, licence {entry.licence}"


def _combo(parent: QWidget) -> QComboBox:
    combo = QComboBox(parent)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(8)
    return combo


def _wrapping(parent: QWidget, name: str) -> QLabel:
    """A label that wraps to the panel's width instead of widening it."""
    label = QLabel(parent)
    label.setObjectName(name)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
    return label


def _row(*widgets: QWidget, stretch_last: bool = True) -> QHBoxLayout:
    row = QHBoxLayout()
    row.setContentsMargins(0, 0, 0, 0)
    for index, widget in enumerate(widgets):
        last = index == len(widgets) - 1
        row.addWidget(widget, 1 if last and stretch_last else 0)
    if not stretch_last:
        row.addStretch(1)
    return row


class PairList(QWidget):
    """Rows of (add-on, value): a LoRA and its weight, or an embedding and its token. `changed` fires on edits."""

    changed = Signal()

    def __init__(self, kind: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kind = kind  # "lora" | "embedding"
        self._rows: list[tuple[str, QWidget]] = []
        self._building = False
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(2)

    def value(self) -> tuple[tuple[str, Any], ...]:
        out = []
        for reference, editor in self._rows:
            if isinstance(editor, QDoubleSpinBox):
                out.append((reference, round(editor.value(), 3)))
            else:
                assert isinstance(editor, QLineEdit)
                out.append((reference, editor.text().strip()))
        return tuple(out)

    def set_value(self, pairs: Any) -> None:
        self._building = True
        try:
            while self._layout.count():
                item = self._layout.takeAt(0)
                if item.widget() is not None:
                    item.widget().deleteLater()
            self._rows = []
            for reference, other in pairs or ():
                self._add_row(str(reference), other)
        finally:
            self._building = False

    def add(self, reference: str) -> None:
        """Add an add-on with its default value (weight 1, the file's own token); a second add is ignored."""
        if any(ref == reference for ref, _ in self._rows):
            return
        self._add_row(reference, 1.0 if self.kind == "lora" else "")
        self.changed.emit()

    def _add_row(self, reference: str, other: Any) -> None:
        row = QWidget(self)
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        name = QLabel(addon_name(reference), row)
        name.setToolTip(reference)
        name.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never widens the panel
        layout.addWidget(name, 1)
        editor: QWidget
        if self.kind == "lora":
            spin = QDoubleSpinBox(row)
            spin.setRange(-LORA_WEIGHT_LIMIT, LORA_WEIGHT_LIMIT)
            spin.setSingleStep(0.05)
            spin.setDecimals(2)
            spin.setValue(float(other))
            spin.setToolTip("Weight: 1 is full strength, 0 is off (exactly as without this LoRA)")
            spin.valueChanged.connect(self._edited)
            editor = spin
        else:
            edit = QLineEdit(str(other), row)
            edit.setPlaceholderText(Path(reference).stem if Path(reference).suffix else "its own token")
            edit.setToolTip("The word that calls this embedding in the prompt (empty: the file's own, or its name)")
            edit.setMaximumWidth(110)
            edit.textChanged.connect(self._edited)
            editor = edit
        layout.addWidget(editor)
        remove = QToolButton(row)
        remove.setText("×")
        remove.setToolTip("Remove")
        remove.clicked.connect(lambda _checked=False, r=reference: self.remove(r))
        layout.addWidget(remove)
        self._layout.addWidget(row)
        self._rows.append((reference, editor))
        guard_wheel(row)  # rows come and go after the panel guarded its controls

    def remove(self, reference: str) -> None:
        self.set_value(tuple(pair for pair in self.value() if pair[0] != reference))
        self.changed.emit()

    def _edited(self, *_args: Any) -> None:
        if not self._building:
            self.changed.emit()


def _pairs_binding(model: GenerationSettings, path: str, widget: PairList) -> bindings.Binding:
    return bindings.Binding(model, path, widget.changed, widget.value, widget.set_value)


def _reference_combo(model: GenerationSettings, path: str, combo: QComboBox) -> bindings.Binding:
    """A combo of references with "None" first; a value it does not list (from a file, a record) is added."""

    def write(value: Any) -> None:
        if value is not None and combo.findData(value) < 0:
            combo.addItem(addon_name(value), value)
        combo.setCurrentIndex(max(0, combo.findData(value)))

    return bindings.Binding(model, path, combo.currentIndexChanged, combo.currentData, write)


class AddonsBox(QWidget):
    """See the module docstring."""

    download_requested = Signal(str, str)  # reference, family ("sd" / "sdxl" / "")
    message = Signal(str)  # one sentence for the message bar
    reference_changed = Signal()

    def __init__(
        self,
        model: GenerationSettings,
        runner: BackgroundRunner,
        app_settings: AppSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model, self.runner, self.app_settings = model, runner, app_settings
        self.family = "sd"  # of the chosen model: "sd" | "sdxl" | "" (no add-ons: classic, Kandinsky)
        self.reference: np.ndarray | None = None  # the IP-Adapter's reference image (RGB/RGBA uint8)
        self.reference_source = ""
        self.layer_provider: Callable[[], list[tuple[str, str]]] | None = None  # (id, name) of the layers
        self.layer_pixels: Callable[[str], np.ndarray | None] | None = None
        self._loras: list[AddonChoice] = []
        self._embeddings: list[AddonChoice] = []
        self._build()
        self._bind()
        model.subscribe(self._on_model_changed)
        self._update_fast_info()
        self.refresh()

    # ---- construction -------------------------------------------------------------------------------
    def _build(self) -> None:
        # One column of compact rows: the panel is narrow, and nothing here may widen it (long texts wrap).
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        self.fast_check = QCheckBox("Fast", self)
        self.fast_check.setToolTip("A few-step LoRA with the sampler, steps and guidance it needs (2-8 steps)")
        self.fast_combo = _combo(self)
        for profile in PROFILES.values():
            self.fast_combo.addItem(profile.label, profile.name)
        layout.addLayout(_row(self.fast_check, self.fast_combo))
        self.fast_info = _wrapping(self, "fast_info")
        layout.addWidget(self.fast_info)
        self.fast_download = QPushButton("Download", self)
        self.fast_download.clicked.connect(self._download_fast)
        layout.addLayout(_row(self.fast_download, stretch_last=False))
        self.paint_preview_check = QCheckBox("Preview while painting", self)
        self.paint_preview_check.setToolTip("A few-step preview of the masked area, redone as the mask changes")
        layout.addWidget(self.paint_preview_check)

        self.lora_list = PairList("lora", self)
        self.lora_add = self._add_button("Add a LoRA", self._fill_lora_menu)
        layout.addLayout(_row(QLabel("LoRAs", self), self.lora_add, stretch_last=False))
        layout.addWidget(self.lora_list)
        self.embedding_list = PairList("embedding", self)
        self.embedding_add = self._add_button("Add a textual-inversion embedding", self._fill_embedding_menu)
        layout.addLayout(_row(QLabel("Embeddings", self), self.embedding_add, stretch_last=False))
        layout.addWidget(self.embedding_list)

        self.ip_combo = _combo(self)
        self.ip_combo.addItem("None", None)
        self.ip_combo.setToolTip("An IP-Adapter makes the result follow a reference image")
        layout.addLayout(_row(QLabel("Reference", self), self.ip_combo))
        self.reference_label = QLabel("No reference image", self)
        self.reference_label.setObjectName("reference_image")
        self.reference_label.setMinimumHeight(24)
        self.reference_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.reference_button = QToolButton(self)
        self.reference_button.setText("Image…")
        menu = QMenu(self.reference_button)
        menu.addAction("From a file…", self.reference_from_file_dialog)
        self.layer_menu = menu.addMenu("From a layer")
        self.layer_menu.aboutToShow.connect(self._fill_layer_menu)
        menu.addAction("Clear", self.clear_reference)
        self.reference_button.setMenu(menu)
        self.reference_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        layout.addLayout(_row(self.reference_label, self.reference_button, stretch_last=False))
        self.ip_scale = QDoubleSpinBox(self)
        self.ip_scale.setRange(0.0, 2.0)
        self.ip_scale.setSingleStep(0.05)
        self.ip_scale.setToolTip("How strongly the reference steers the result (0.6 is usual)")
        self.ip_masked = QCheckBox("Inside the mask only", self)
        layout.addLayout(_row(self.ip_scale, self.ip_masked))
        self.ip_info = _wrapping(self, "ip_info")
        layout.addWidget(self.ip_info)
        self.ip_download = QPushButton("Download", self)
        self.ip_download.clicked.connect(self._download_ip_adapter)
        layout.addLayout(_row(self.ip_download, stretch_last=False))

        self.speed_combo = _combo(self)
        for preset in SPEED_PRESETS:
            self.speed_combo.addItem(_SPEED_LABELS[preset], preset)
            self.speed_combo.setItemData(self.speed_combo.count() - 1, _SPEED_TIPS[preset], Qt.ItemDataRole.ToolTipRole)
        self.speed_combo.setToolTip("Speed settings that do not change the picture beyond float rounding")
        layout.addLayout(_row(QLabel("Speed", self), self.speed_combo))

    def _add_button(self, tip: str, fill: Callable[[QMenu], None]) -> QToolButton:
        button = QToolButton(self)
        button.setText("+")
        button.setToolTip(tip)
        menu = QMenu(button)
        menu.aboutToShow.connect(lambda: fill(menu))
        button.setMenu(menu)
        button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        return button

    def _bind(self) -> None:
        m = self.model

        def fast_read() -> str:
            return str(self.fast_combo.currentData()) if self.fast_check.isChecked() else OFF

        def fast_write(value: Any) -> None:
            self.fast_check.setChecked(value != OFF)
            if value != OFF:
                self.fast_combo.setCurrentIndex(max(0, self.fast_combo.findData(value)))

        self._bindings = [
            bindings.Binding(m, "fast", self.fast_check.toggled, fast_read, fast_write),
            bindings.Binding(m, "fast", self.fast_combo.currentIndexChanged, fast_read, fast_write),
            bindings.check(m, "paint_preview", self.paint_preview_check),
            _pairs_binding(m, "loras", self.lora_list),
            _pairs_binding(m, "embeddings", self.embedding_list),
            _reference_combo(m, "ip_adapter", self.ip_combo),
            bindings.fraction(m, "ip_adapter_scale", self.ip_scale),
            bindings.check(m, "ip_adapter_masked", self.ip_masked),
            bindings.combo_data(m, "speed.preset", self.speed_combo),
        ]
        if m.job.fast == OFF:
            self.fast_combo.setCurrentIndex(max(0, self.fast_combo.findData(DEFAULT_FAST)))

    # ---- lists --------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Scan the LoRA and embeddings folders and the Hugging Face cache in the background."""
        lora_folder = self.app_settings.lora_folder if self.app_settings else ""
        embeddings_folder = self.app_settings.embeddings_folder if self.app_settings else ""

        def scan(_state: TaskState) -> tuple[list[AddonChoice], list[AddonChoice], list[AddonChoice]]:
            return list_loras(lora_folder), list_embeddings(embeddings_folder), catalog_choices("ip_adapter")

        self.runner.start("looking for LoRAs and embeddings", scan, self.set_choices, lambda _message: None)

    def set_choices(self, found: tuple[list[AddonChoice], list[AddonChoice], list[AddonChoice]]) -> None:
        self._loras, self._embeddings, adapters = found
        current = self.model.job.ip_adapter
        self.ip_combo.blockSignals(True)
        self.ip_combo.clear()
        self.ip_combo.addItem("None", None)
        for choice in adapters:
            self.ip_combo.addItem(choice.label, choice.reference)
            self.ip_combo.setItemData(self.ip_combo.count() - 1, choice.details(), Qt.ItemDataRole.ToolTipRole)
        if current is not None and self.ip_combo.findData(current) < 0:
            self.ip_combo.addItem(addon_name(current), current)
        self.ip_combo.setCurrentIndex(max(0, self.ip_combo.findData(current)))
        self.ip_combo.blockSignals(False)
        self._update_ip_info()

    def lora_choices(self) -> list[AddonChoice]:
        return list(self._loras)

    def embedding_choices(self) -> list[AddonChoice]:
        return list(self._embeddings)

    def _fill_lora_menu(self, menu: QMenu) -> None:
        menu.clear()
        for choice in self._loras:
            family = f"  ({choice.family})" if choice.family else ""
            action = menu.addAction(f"{choice.label}{family}", lambda c=choice: self.lora_list.add(c.reference))
            action.setToolTip(choice.details())
        if self._loras:
            menu.addSeparator()
        menu.addAction("Add a LoRA file…", lambda: self._add_file_dialog("lora"))
        menu.addAction("Choose the LoRA folder…", lambda: self._choose_folder("lora_folder"))

    def _fill_embedding_menu(self, menu: QMenu) -> None:
        menu.clear()
        for choice in self._embeddings:
            menu.addAction(choice.label, lambda c=choice: self.embedding_list.add(c.reference))
        if self._embeddings:
            menu.addSeparator()
        menu.addAction("Add an embedding file…", lambda: self._add_file_dialog("embedding"))
        menu.addAction("Choose the embeddings folder…", lambda: self._choose_folder("embeddings_folder"))

    def _add_file_dialog(self, kind: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose a file", "", "Safetensors (*.safetensors)")
        if path:
            (self.lora_list if kind == "lora" else self.embedding_list).add(path)

    def _choose_folder(self, setting: str) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder")
        if folder and self.app_settings is not None:
            setattr(self.app_settings, setting, folder)
            self.refresh()

    # ---- the reference image --------------------------------------------------------------------------
    def set_reference(self, pixels: np.ndarray | None, source: str = "") -> None:
        """The IP-Adapter's reference image (None clears it); shown as a thumbnail."""
        self.reference = None if pixels is None else np.ascontiguousarray(pixels)
        self.reference_source = source if pixels is not None else ""
        if self.reference is None:
            self.reference_label.clear()
            self.reference_label.setText("No reference image")
        else:
            pixmap = qt_images.thumbnail_pixmap(self.reference[..., :3], REFERENCE_SIDE)
            self.reference_label.setPixmap(pixmap)
            self.reference_label.setToolTip(source)
        self._update_ip_info()
        self.reference_changed.emit()

    def clear_reference(self) -> None:
        self.set_reference(None)

    def reference_from_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a reference image", "", "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)"
        )
        if path:
            self.reference_from_file(path)

    def reference_from_file(self, path: str) -> bool:
        from inpaint_studio.core.imageio import load_image

        try:
            loaded = load_image(Path(path))
        except InpaintStudioError as error:
            self.message.emit(str(error))
            return False
        self.set_reference(np.asarray(loaded.image.convert("RGB")), Path(path).name)
        return True

    def _fill_layer_menu(self) -> None:
        self.layer_menu.clear()
        layers = self.layer_provider() if self.layer_provider else []
        if not layers:
            self.layer_menu.addAction("No layers").setEnabled(False)
        for layer_id, name in layers:
            self.layer_menu.addAction(name, lambda i=layer_id, n=name: self.reference_from_layer(i, n))

    def reference_from_layer(self, layer_id: str, name: str = "") -> bool:
        pixels = self.layer_pixels(layer_id) if self.layer_pixels else None
        if pixels is None:
            self.message.emit("That layer is gone; choose another one.")
            return False
        self.set_reference(pixels, f"layer “{name or layer_id}”")
        return True

    # ---- model family, fast mode, downloads -----------------------------------------------------------
    def set_model_family(self, family: str | None) -> None:
        """The chosen model's family (catalog names: "sd_inpaint", "sdxl", ...; None when unknown yet)."""
        if family is None:
            self.family = "sd"
        elif family.startswith("sdxl"):
            self.family = "sdxl"
        elif family in ("sd", "sd_inpaint"):
            self.family = "sd"
        else:
            self.family = ""
        self._update_fast_info()
        self._update_ip_info()

    def fast_reference(self) -> str | None:
        """The LoRA the chosen fast mode needs for the chosen model (None: none, or not made for it)."""
        profile = PROFILES.get(str(self.fast_combo.currentData()))
        return profile.loras.get(self.family) if profile and self.family else None

    def _update_fast_info(self) -> None:
        profile = PROFILES.get(str(self.fast_combo.currentData()))
        if profile is None:
            return
        reference = self.fast_reference()
        text = profile.describe() + "."
        needs_download = False
        if not self.family:
            text = "Fast mode works with SD 1.5 and SDXL models."
        elif reference is None:
            text = f"{profile.label} is made for SDXL models only; choose LCM-LoRA for this model."
        elif not is_installed(reference, "lora", self.family):
            entry = addon_entry(reference)
            text += f" Needs {_download_words(entry) if entry else reference + ', not installed'}."
            needs_download = True
        self.fast_info.setText(text)
        self.fast_download.setVisible(needs_download)

    def _download_fast(self) -> None:
        reference = self.fast_reference()
        if reference:
            self.download_requested.emit(reference, self.family)

    def _update_ip_info(self) -> None:
        reference = self.model.job.ip_adapter
        self.ip_download.setVisible(False)
        enabled = reference is not None
        for widget in (self.ip_scale, self.ip_masked, self.reference_button):
            widget.setEnabled(enabled)
        if reference is None:
            self.ip_info.setText("")
            return
        if not is_installed(reference, "ip_adapter", self.family or None):
            entry = addon_entry(reference)
            self.ip_info.setText(f"Needs {_download_words(entry)}." if entry else f"{reference} is not installed.")
            self.ip_download.setVisible(True)
        elif self.reference is None:
            self.ip_info.setText("Choose the reference image (a file, or one of the layers).")
        else:
            self.ip_info.setText(f"Reference: {self.reference_source}.")

    def _download_ip_adapter(self) -> None:
        reference = self.model.job.ip_adapter
        if not reference:
            return
        if reference.strip().rstrip("/") == IP_ADAPTER_REPO:  # the repository alone: this family's adapter
            reference = f"{IP_ADAPTER_REPO}/{IP_ADAPTER_DEFAULTS.get(self.family or 'sd', IP_ADAPTER_DEFAULTS['sd'])}"
        self.download_requested.emit(reference, self.family)

    def installed_changed(self) -> None:
        """A download finished: the install states shown may have changed."""
        self._update_fast_info()
        self.refresh()

    def _on_model_changed(self, path: str) -> None:
        if path in ("fast", "ip_adapter", "*"):
            self._update_fast_info()
            self._update_ip_info()
