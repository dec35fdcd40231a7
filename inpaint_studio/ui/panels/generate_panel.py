"""The Generate panel: model picker, prompt and settings, Generate / Cancel, progress and live preview.

The panel only edits values and reports intents through signals; `job()` turns its widgets into a frozen
`InpaintJob` on the UI thread (the controller submits it). Nothing here imports torch: the model list comes
from the catalog JSON, the Hugging Face cache scan (run in a thread) and paths the user added.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, QRegularExpression, QSettings, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.jobspec import (
    CLASSIC_MODEL,
    MAX_SEED,
    MAX_STEPS,
    MAX_VARIANTS,
    Area,
    ClassicalMethod,
    InpaintJob,
    MaskOptions,
)
from inpaint_studio.engine.catalog import CatalogEntry, InstalledModel, catalog
from inpaint_studio.engine.models import PICKLED_CHECKPOINTS, resolve_model
from inpaint_studio.engine.schedulers import scheduler_names
from inpaint_studio.ui import icons, qt_images

SETTINGS_MODEL = "generate/model"
SETTINGS_LOCAL_MODELS = "generate/local_models"
SETTINGS_UNSAFE_ALLOWED = "models/unsafe_allowed"  # pickled checkpoints the user chose to trust, one by one
SETTINGS_PARAMS = "generate/params"
SETTINGS_SEED_LOCKED = "generate/seed_locked"
SETTINGS_LIVE_PREVIEW = "generate/live_preview"
CLASSIC_LABEL = "Classical fill (no download)"
PREVIEW_SIDE = 112

_METHOD_LABELS = {
    ClassicalMethod.AUTO: "Automatic",
    ClassicalMethod.TELEA: "Telea (fast)",
    ClassicalMethod.NAVIER_STOKES: "Navier-Stokes",
    ClassicalMethod.FSR: "Spectral (slower, texture)",
}


@dataclass(frozen=True)
class ModelChoice:
    """One row of the model picker."""

    reference: str  # what goes into InpaintJob.model
    label: str
    source: str  # classic | catalog | cached | local
    installed: bool
    entry: CatalogEntry | None = None
    size_gb: float | None = None

    def details(self) -> str:
        """What the user should know about this choice (one or two sentences)."""
        if self.source == "classic":
            return "Fills the mask from its surroundings with OpenCV: no download, no prompt, works on any computer."
        if self.source == "local":
            if not self.installed:
                return f"{self.reference} is missing; add the model again or choose another."
            return f"Your model at {self.reference}."
        entry = self.entry
        if self.installed:
            size = f"{self.size_gb:.1f} GB on disk" if self.size_gb else "installed"
            note = f" {entry.note}" if entry and entry.note else ""
            return f"Installed ({size}).{note}"
        assert entry is not None
        vram = f", and about {entry.min_vram_gb:g} GB of GPU memory to run fast" if entry.min_vram_gb else ""
        return (
            f"Not installed: needs a {entry.download_gb:g} GB download (licence {entry.licence}){vram}. {entry.note}"
        ).strip()


def model_choices(installed: list[InstalledModel], local_paths: list[str]) -> list[ModelChoice]:
    """The picker's rows: the classical fill, the catalog, other cached pipelines, then the user's files."""
    by_id = {model.id: model for model in installed}
    out = [ModelChoice(CLASSIC_MODEL, CLASSIC_LABEL, "classic", True)]
    for entry in catalog():
        model = by_id.get(entry.id)
        state = "installed" if model else f"not installed, {entry.download_gb:g} GB"
        out.append(
            ModelChoice(
                entry.id,
                f"{entry.name} ({state})",
                "catalog",
                model is not None,
                entry,
                model.size_gb if model else None,
            )
        )
    catalog_ids = {entry.id for entry in catalog()}
    for model in installed:
        if model.id not in catalog_ids and model.family is not None:
            out.append(ModelChoice(model.id, f"{model.id} (installed)", "cached", True, None, model.size_gb))
    for path in local_paths:
        exists = Path(path).exists()
        label = f"{Path(path).name} (your file{'' if exists else ', missing'})"
        out.append(ModelChoice(path, label, "local", exists))
    return out


class _ScanRelay(QObject):
    done = Signal(object)  # list[InstalledModel]


class GeneratePanel(QWidget):
    """See the module docstring. Signals carry intents; the controller acts on them."""

    generate_requested = Signal()
    cancel_requested = Signal()
    download_requested = Signal(str)  # hub id
    download_cancel_requested = Signal(str)
    model_changed = Signal(str)
    add_model_failed = Signal(str)  # one-sentence message for the message bar

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self._choices: list[ModelChoice] = []
        self._installed: list[InstalledModel] = []
        self._scan_relay = _ScanRelay(self)
        self._scan_relay.done.connect(self._on_scan_done)
        self._last_seed: int | None = None
        self._build()
        self._restore()
        self.set_models(self._installed)
        self.refresh_installed()

    # ---- construction -----------------------------------------------------------------------------
    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(300)
        body = QWidget(scroll)
        scroll.setWidget(body)
        outer.addWidget(scroll, 1)
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)

        # Model picker
        row = QHBoxLayout()
        self.model_combo = QComboBox(body)
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model_combo.setMinimumContentsLength(18)
        self.model_combo.setToolTip("Which model fills the mask")
        self.model_combo.currentIndexChanged.connect(self._on_model_index_changed)
        row.addWidget(self.model_combo, 1)
        self.add_model_button = QToolButton(body)
        self.add_model_button.setText("+")
        self.add_model_button.setToolTip("Add a model from a folder or a checkpoint file (.safetensors)")
        menu = QMenu(self.add_model_button)
        menu.addAction("Add model folder…", self.add_model_folder_dialog)
        menu.addAction("Add checkpoint file…", self.add_model_file_dialog)
        self.add_model_button.setMenu(menu)
        self.add_model_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        row.addWidget(self.add_model_button)
        layout.addLayout(row)
        self.model_info = QLabel(body)
        self.model_info.setWordWrap(True)
        self.model_info.setObjectName("model_info")
        layout.addWidget(self.model_info)
        download_row = QHBoxLayout()
        self.download_button = QPushButton("Download", body)
        self.download_button.clicked.connect(lambda: self.download_requested.emit(self.model_reference()))
        self.download_progress = QProgressBar(body)
        self.download_progress.setTextVisible(True)
        self.download_cancel = QPushButton("Cancel", body)
        self.download_cancel.clicked.connect(lambda: self.download_cancel_requested.emit(self.model_reference()))
        download_row.addWidget(self.download_button)
        download_row.addWidget(self.download_progress, 1)
        download_row.addWidget(self.download_cancel)
        layout.addLayout(download_row)
        self._downloading: str | None = None

        # Prompts
        self.prompt_edit = QPlainTextEdit(body)
        self.prompt_edit.setPlaceholderText("Describe what to paint in the masked area")
        self.prompt_edit.setFixedHeight(64)
        self.prompt_edit.setTabChangesFocus(True)
        self.negative_edit = QPlainTextEdit(body)
        self.negative_edit.setPlaceholderText("Negative prompt: what to avoid")
        self.negative_edit.setFixedHeight(44)
        self.negative_edit.setTabChangesFocus(True)
        layout.addWidget(QLabel("Prompt", body))
        layout.addWidget(self.prompt_edit)
        layout.addWidget(self.negative_edit)

        # Settings
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.strength_spin = QDoubleSpinBox(body)
        self.strength_spin.setRange(0.01, 1.0)
        self.strength_spin.setSingleStep(0.05)
        self.strength_spin.setToolTip("How much of the masked area is re-imagined (1 = entirely)")
        self.guidance_spin = QDoubleSpinBox(body)
        self.guidance_spin.setRange(0.0, 50.0)
        self.guidance_spin.setSingleStep(0.5)
        self.guidance_spin.setToolTip("How closely the result follows the prompt")
        self.steps_spin = QSpinBox(body)
        self.steps_spin.setRange(1, MAX_STEPS)
        self.scheduler_combo = QComboBox(body)
        self.scheduler_combo.addItems(scheduler_names())
        seed_row = QHBoxLayout()
        self.seed_edit = QLineEdit(body)
        self.seed_edit.setValidator(QRegularExpressionValidator(QRegularExpression(r"\d{0,10}"), self.seed_edit))
        self.seed_edit.setPlaceholderText("random")
        self.seed_lock = QToolButton(body)
        self.seed_lock.setCheckable(True)
        self.seed_lock.setToolTip("Lock the seed (unlocked: a new random seed every run)")
        self.seed_lock.toggled.connect(self._on_seed_lock_toggled)
        self.seed_random = QToolButton(body)
        self.seed_random.setIcon(icons.dice())
        self.seed_random.setToolTip("Pick a new random seed and lock it")
        self.seed_random.clicked.connect(self.randomise_seed)
        seed_row.addWidget(self.seed_edit, 1)
        seed_row.addWidget(self.seed_lock)
        seed_row.addWidget(self.seed_random)
        self.variants_spin = QSpinBox(body)
        self.variants_spin.setRange(1, MAX_VARIANTS)
        self.variants_spin.setToolTip("How many results to make (seed, seed + 1, ...)")
        area_row = QHBoxLayout()
        self.area_combo = QComboBox(body)
        self.area_combo.addItem("Masked region", Area.MASKED.value)
        self.area_combo.addItem("Whole image", Area.WHOLE.value)
        self.area_combo.currentIndexChanged.connect(self._update_enabled)
        self.padding_spin = QSpinBox(body)
        self.padding_spin.setRange(0, 4096)
        self.padding_spin.setSuffix(" px")
        self.padding_spin.setToolTip("Context around the mask the model sees")
        area_row.addWidget(self.area_combo, 1)
        area_row.addWidget(QLabel("+", body))
        area_row.addWidget(self.padding_spin)
        self.feather_spin = QSpinBox(body)
        self.feather_spin.setRange(0, 256)
        self.feather_spin.setSuffix(" px")
        self.feather_spin.setToolTip("Width of the soft edge where the result blends into the image")
        self.grow_spin = QSpinBox(body)
        self.grow_spin.setRange(-256, 256)
        self.grow_spin.setSuffix(" px")
        self.grow_spin.setToolTip("Grow (positive) or shrink (negative) the mask before filling")
        self.preserve_check = QCheckBox("Keep pixels outside the mask exact", body)
        self.method_combo = QComboBox(body)
        for method, label in _METHOD_LABELS.items():
            self.method_combo.addItem(label, method.value)
        self.live_preview_check = QCheckBox("Live preview while generating", body)
        form.addRow("Strength", self.strength_spin)
        form.addRow("Guidance", self.guidance_spin)
        form.addRow("Steps", self.steps_spin)
        form.addRow("Sampler", self.scheduler_combo)
        form.addRow("Seed", seed_row)
        form.addRow("Variants", self.variants_spin)
        form.addRow("Area", area_row)
        form.addRow("Feather", self.feather_spin)
        form.addRow("Grow mask", self.grow_spin)
        form.addRow("Fill method", self.method_combo)
        form.addRow("", self.preserve_check)
        form.addRow("", self.live_preview_check)
        self._form = form
        layout.addLayout(form)

        # Run: pinned under the scrolling settings, so Generate and the progress are always in view.
        footer = QWidget(self)
        footer_layout = QVBoxLayout(footer)
        footer_layout.setContentsMargins(6, 4, 6, 6)
        buttons = QHBoxLayout()
        self.generate_button = QPushButton("Generate", footer)
        self.generate_button.setToolTip("Generate (Ctrl+Enter); while one runs, this queues another")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate_requested)
        self.cancel_button = QPushButton("Cancel", footer)
        self.cancel_button.setToolTip("Cancel the running generation (Esc; Shift+Esc cancels the queue too)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons.addWidget(self.generate_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        footer_layout.addLayout(buttons)
        self.progress_bar = QProgressBar(footer)
        self.progress_bar.setTextVisible(True)
        footer_layout.addWidget(self.progress_bar)
        self.status_label = QLabel("", footer)
        self.status_label.setWordWrap(True)
        self.status_label.setObjectName("generate_status")
        footer_layout.addWidget(self.status_label)
        self.preview_label = QLabel(footer)
        self.preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview_label.setMinimumHeight(0)
        footer_layout.addWidget(self.preview_label)
        outer.addWidget(footer)
        layout.addStretch(1)
        self.set_running(False, 0)
        self._set_download_visible(False)

    # ---- models -------------------------------------------------------------------------------------
    def refresh_installed(self) -> None:
        """Scan the Hugging Face cache in a thread (it touches the disk) and update the picker."""
        from inpaint_studio.engine.catalog import installed_models

        relay = self._scan_relay

        def scan() -> None:
            try:
                found = installed_models()
            except Exception:  # an unreadable cache means nothing installed, never a crash
                found = []
            with contextlib.suppress(RuntimeError):  # the panel was closed meanwhile
                relay.done.emit(found)

        threading.Thread(target=scan, name="model-scan", daemon=True).start()

    def _on_scan_done(self, installed: list[InstalledModel]) -> None:
        self.set_models(installed)

    def local_models(self) -> list[str]:
        value = self.settings.value(SETTINGS_LOCAL_MODELS, [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or [])]

    def set_models(self, installed: list[InstalledModel]) -> None:
        """Rebuild the picker, keeping the current (or remembered) choice."""
        self._installed = list(installed)
        current = self.model_reference() if self._choices else str(self.settings.value(SETTINGS_MODEL, CLASSIC_MODEL))
        self._choices = model_choices(self._installed, self.local_models())
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for choice in self._choices:
            self.model_combo.addItem(choice.label, choice.reference)
            self.model_combo.setItemData(self.model_combo.count() - 1, choice.details(), Qt.ItemDataRole.ToolTipRole)
        index = next((i for i, c in enumerate(self._choices) if c.reference == current), 0)
        self.model_combo.setCurrentIndex(index)
        self.model_combo.blockSignals(False)
        self._on_model_index_changed(index)

    def choices(self) -> list[ModelChoice]:
        return list(self._choices)

    def current_choice(self) -> ModelChoice:
        index = self.model_combo.currentIndex()
        return self._choices[index] if 0 <= index < len(self._choices) else self._choices[0]

    def model_reference(self) -> str:
        return self.current_choice().reference if self._choices else CLASSIC_MODEL

    def select_model(self, reference: str) -> bool:
        """Choose a model by reference; an unknown local path is added first. False if it is unusable.

        References come from files too (projects, history, parameters): a pickled checkpoint the user has
        not allowed is refused here, never offered for confirmation."""
        if not any(c.reference == reference for c in self._choices) and not self.add_local_model(reference):
            return False
        index = next(i for i, c in enumerate(self._choices) if c.reference == reference)
        self.model_combo.setCurrentIndex(index)
        return True

    def unsafe_allowed(self) -> list[str]:
        """Pickled checkpoints the user allowed (the recorded opt-in, QSettings "models/unsafe_allowed")."""
        value = self.settings.value(SETTINGS_UNSAFE_ALLOWED, [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or [])]

    def is_unsafe_allowed(self, reference: str) -> bool:
        return reference in self.unsafe_allowed()

    def add_local_model(self, path: str, *, ask_unsafe: bool = False) -> bool:
        """Check a folder / .safetensors file is a usable model (reads configs only) and add it.

        A pickled checkpoint (.ckpt/.pt/.pth) is added only when the user allowed it before, or, with
        `ask_unsafe` (the "Add model file" action), confirms now; the engine then reads it weights-only."""
        if Path(path).suffix.lower() in PICKLED_CHECKPOINTS:
            return self._add_pickled(path, ask_unsafe)
        try:
            info = resolve_model(path)
        except InpaintStudioError as error:
            self.add_model_failed.emit(str(error))
            return False
        return self._remember_local(str(info.path or path))

    def _add_pickled(self, path: str, ask: bool) -> bool:
        reference = str(Path(path).expanduser())
        if not Path(reference).is_file():
            self.add_model_failed.emit(f"The checkpoint {reference} does not exist; check the path.")
            return False
        if not self.is_unsafe_allowed(reference):
            if not ask or not self.confirm_unsafe_checkpoint(reference):
                try:
                    resolve_model(reference)  # the refusal sentence, without reading the file
                except InpaintStudioError as error:
                    self.add_model_failed.emit(str(error))
                return False
            self.settings.setValue(SETTINGS_UNSAFE_ALLOWED, [*self.unsafe_allowed(), reference])
        return self._remember_local(reference)

    def confirm_unsafe_checkpoint(self, path: str) -> bool:
        """Ask before trusting a pickled checkpoint; the default answer is No."""
        answer = QMessageBox.warning(
            self,
            "Load a pickled checkpoint?",
            f"{Path(path).name} is a legacy pickled checkpoint. Loading a pickle can run hidden code, so "
            "Inpaint Studio refuses such files unless you trust where this one came from.\n\n"
            "It will be read with PyTorch's weights-only loader, which refuses files that contain code. "
            "Prefer a .safetensors version when there is one.\n\nLoad this file?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def _remember_local(self, reference: str) -> bool:
        paths = self.local_models()
        if reference not in paths:
            paths.append(reference)
            self.settings.setValue(SETTINGS_LOCAL_MODELS, paths)
        self.set_models(self._installed)
        index = next(i for i, c in enumerate(self._choices) if c.reference == reference)
        self.model_combo.setCurrentIndex(index)
        return True

    def add_model_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder")
        if path:
            self.add_local_model(path)

    def add_model_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a checkpoint",
            "",
            "Checkpoints (*.safetensors);;Legacy pickled checkpoints (*.ckpt *.pt *.pth)",
        )
        if path:
            self.add_local_model(path, ask_unsafe=True)

    def _on_model_index_changed(self, _index: int) -> None:
        if not self._choices:
            return
        choice = self.current_choice()
        self.model_info.setText(choice.details())
        self._set_download_visible(choice.source == "catalog" and not choice.installed)
        self.settings.setValue(SETTINGS_MODEL, choice.reference)
        self._update_enabled()
        self.model_changed.emit(choice.reference)

    # ---- downloads ----------------------------------------------------------------------------------
    def _set_download_visible(self, needed: bool) -> None:
        downloading = self._downloading is not None and self._downloading == self.model_reference()
        self.download_button.setVisible(needed and not downloading)
        self.download_progress.setVisible(downloading)
        self.download_cancel.setVisible(downloading)

    def set_download_state(self, repo_id: str | None, done: int = 0, total: int = 0, text: str = "") -> None:
        """Show a download's progress (repo_id None: no download running)."""
        self._downloading = repo_id
        if repo_id is not None:
            if total > 0:
                self.download_progress.setRange(0, 1000)
                self.download_progress.setValue(int(1000 * done / total))
            else:
                self.download_progress.setRange(0, 0)  # busy indicator until sizes are known
            self.download_progress.setFormat(text or "%p%")
        choice = self.current_choice() if self._choices else None
        self._set_download_visible(bool(choice and choice.source == "catalog" and not choice.installed))

    # ---- the job ------------------------------------------------------------------------------------
    @property
    def seed_locked(self) -> bool:
        return self.seed_lock.isChecked()

    def _seed_value(self) -> int | None:
        text = self.seed_edit.text().strip()
        if not text:
            return None
        return int(text)

    def job(self) -> InpaintJob:
        """The frozen job the widgets describe (not validated: see InpaintJob.problems())."""
        choice = self.current_choice()
        return InpaintJob(
            model=choice.reference,
            prompt=self.prompt_edit.toPlainText().strip(),
            negative_prompt=self.negative_edit.toPlainText().strip(),
            strength=round(self.strength_spin.value(), 4),
            guidance_scale=round(self.guidance_spin.value(), 4),
            steps=self.steps_spin.value(),
            scheduler=self.scheduler_combo.currentText(),
            seed=self._seed_value() if self.seed_locked else None,
            variants=self.variants_spin.value(),
            mask=MaskOptions(grow_px=self.grow_spin.value(), feather_px=self.feather_spin.value()),
            area=Area(self.area_combo.currentData()),
            padding_px=self.padding_spin.value(),
            preserve_unmasked=self.preserve_check.isChecked(),
            classical_method=ClassicalMethod(self.method_combo.currentData()),
        )

    def load_job(self, job: InpaintJob, *, lock_seed: bool = True) -> None:
        """Show a job's parameters (from history: 'use these parameters'). The seed is locked by default."""
        if not self.select_model(job.model):
            self.model_combo.setCurrentIndex(0)
        self.prompt_edit.setPlainText(job.prompt)
        self.negative_edit.setPlainText(job.negative_prompt)
        self.strength_spin.setValue(job.strength)
        self.guidance_spin.setValue(job.guidance_scale)
        self.steps_spin.setValue(job.steps)
        index = self.scheduler_combo.findText(job.scheduler)
        self.scheduler_combo.setCurrentIndex(max(0, index))
        self.variants_spin.setValue(job.variants)
        self.area_combo.setCurrentIndex(max(0, self.area_combo.findData(job.area.value)))
        self.padding_spin.setValue(job.padding_px)
        self.feather_spin.setValue(job.mask.feather_px)
        self.grow_spin.setValue(job.mask.grow_px)
        self.preserve_check.setChecked(job.preserve_unmasked)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(job.classical_method.value)))
        if job.seed is not None:
            self.seed_edit.setText(str(job.seed))
            self.seed_lock.setChecked(lock_seed)
        self._update_enabled()

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """What a project stores: the job Generate would run (InpaintJob.to_dict) and the panel-only values."""
        ui = {
            "seed_text": self.seed_edit.text(),
            "seed_locked": self.seed_locked,
            "live_preview": self.live_preview_check.isChecked(),
        }
        return self.job().to_dict(), ui

    def restore_state(self, job_data: dict[str, Any], ui: dict[str, Any] | None = None) -> None:
        """Show a saved state() again. Raises BadInputError when the job data is not valid."""
        ui = ui if isinstance(ui, dict) else {}
        job = InpaintJob.from_dict(job_data)
        locked = bool(ui.get("seed_locked", job.seed is not None))
        self.load_job(job, lock_seed=locked)
        seed_text = ui.get("seed_text", "" if job.seed is None else str(job.seed))
        self.seed_edit.setText(str(seed_text))
        self.seed_lock.setChecked(locked)
        if "live_preview" in ui:
            self.live_preview_check.setChecked(bool(ui["live_preview"]))

    def randomise_seed(self) -> None:
        self.seed_edit.setText(str(secrets.randbelow(MAX_SEED + 1)))
        self.seed_lock.setChecked(True)

    def show_seed(self, seed: int) -> None:
        """After a run: show the concrete seed used (a locked seed keeps its value)."""
        self._last_seed = seed
        if not self.seed_locked:
            self.seed_edit.setText(str(seed))

    def _on_seed_lock_toggled(self, locked: bool) -> None:
        self.seed_lock.setIcon(icons.padlock(locked))
        self.seed_edit.setReadOnly(not locked)
        self.seed_edit.setToolTip(
            "This seed is used for every run" if locked else "The seed of the last run; lock it to reuse it"
        )
        self.settings.setValue(SETTINGS_SEED_LOCKED, locked)

    def _update_enabled(self) -> None:
        classic = self.model_reference() == CLASSIC_MODEL or self.model_reference().startswith(CLASSIC_MODEL + ":")
        for widget in (
            self.prompt_edit,
            self.negative_edit,
            self.strength_spin,
            self.guidance_spin,
            self.steps_spin,
            self.scheduler_combo,
            self.seed_edit,
            self.seed_lock,
            self.seed_random,
            self.variants_spin,
            self.area_combo,
            self.padding_spin,
            self.live_preview_check,
        ):
            widget.setEnabled(not classic)
        if not classic:
            self.padding_spin.setEnabled(self.area_combo.currentData() == Area.MASKED.value)
        self.method_combo.setEnabled(classic)
        self._form.setRowVisible(self.method_combo, classic)

    @property
    def live_preview(self) -> bool:
        return self.live_preview_check.isChecked() and self.live_preview_check.isEnabled()

    # ---- run state ----------------------------------------------------------------------------------
    def set_running(self, running: bool, queued: int) -> None:
        self.cancel_button.setEnabled(running or queued > 0)
        self.generate_button.setText("Queue another" if running else "Generate")
        if not running:
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("Idle" if not queued else f"{queued} queued")
            self.preview_label.clear()
            self.preview_label.setMinimumHeight(0)

    def set_progress(self, step: int, total: int, seconds_left: float | None, queued: int) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(step)
        left = "" if seconds_left is None else f" · {_format_seconds(seconds_left)} left"
        more = f" · {queued} queued" if queued else ""
        self.progress_bar.setFormat(f"Step {step}/{total}{left}{more}")

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_preview(self, rgb: np.ndarray | None) -> None:
        if rgb is None:
            self.preview_label.clear()
            return
        pixmap = qt_images.thumbnail_pixmap(rgb[..., :3], PREVIEW_SIDE)
        self.preview_label.setMinimumHeight(pixmap.height())
        self.preview_label.setPixmap(pixmap)

    # ---- settings -----------------------------------------------------------------------------------
    def save_settings(self) -> None:
        job = self.job()
        data = job.to_dict()
        data.pop("seed")
        data["seed_text"] = self.seed_edit.text()
        self.settings.setValue(SETTINGS_PARAMS, json.dumps(data))
        self.settings.setValue(SETTINGS_MODEL, job.model)
        self.settings.setValue(SETTINGS_LIVE_PREVIEW, self.live_preview_check.isChecked())

    def _restore(self) -> None:
        defaults = InpaintJob()
        data: dict[str, Any] = {}
        raw = self.settings.value(SETTINGS_PARAMS, "")
        if raw:
            try:
                data = json.loads(str(raw))
            except (ValueError, RecursionError):
                data = {}
        if not isinstance(data, dict):
            data = {}
        seed_text = str(data.pop("seed_text", ""))
        try:
            job = InpaintJob.from_dict({k: v for k, v in data.items() if k != "model"}) if data else defaults
        except InpaintStudioError:
            job = defaults
        self.prompt_edit.setPlainText(job.prompt)
        self.negative_edit.setPlainText(job.negative_prompt)
        self.strength_spin.setValue(job.strength)
        self.guidance_spin.setValue(job.guidance_scale)
        self.steps_spin.setValue(job.steps)
        self.scheduler_combo.setCurrentIndex(max(0, self.scheduler_combo.findText(job.scheduler)))
        self.variants_spin.setValue(job.variants)
        self.area_combo.setCurrentIndex(max(0, self.area_combo.findData(job.area.value)))
        self.padding_spin.setValue(job.padding_px)
        self.feather_spin.setValue(job.mask.feather_px)
        self.grow_spin.setValue(job.mask.grow_px)
        self.preserve_check.setChecked(job.preserve_unmasked)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(job.classical_method.value)))
        self.seed_edit.setText(seed_text)
        locked = _as_bool(self.settings.value(SETTINGS_SEED_LOCKED, False))
        self.seed_lock.setChecked(locked)
        self._on_seed_lock_toggled(locked)
        self.live_preview_check.setChecked(_as_bool(self.settings.value(SETTINGS_LIVE_PREVIEW, True)))


def _as_bool(value: object) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


def _format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    return f"{minutes}:{sec:02d} min"
