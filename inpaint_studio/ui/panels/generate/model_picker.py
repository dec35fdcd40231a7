"""The Generate panel's model picker: the one model list (engine/model_list.py), add a model, download one.

Bound to the settings model's "model" field: choosing a row sets it, and a model set from data (restored
settings, a history entry, a project) is selected here, after adding an unknown local path to the user's
models if it is a usable model. The Hugging Face cache is scanned on the background runner, never on the
UI thread. Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.generation_settings import ALL, GenerationSettings
from inpaint_studio.core.jobspec import CLASSIC_MODEL
from inpaint_studio.core.user_models import UserModels
from inpaint_studio.engine.catalog import InstalledModel, installed_models
from inpaint_studio.engine.model_list import ModelChoice, add_user_model, model_choices
from inpaint_studio.ui.background import BackgroundRunner, TaskState


class ModelPicker(QWidget):
    """See the module docstring."""

    choices_changed = Signal()  # the list was rebuilt (installed models found, a model added)
    download_requested = Signal(str)  # hub id
    download_cancel_requested = Signal(str)
    add_model_failed = Signal(str)  # one-sentence message for the message bar

    def __init__(
        self,
        model: GenerationSettings,
        user_models: UserModels,
        runner: BackgroundRunner,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.model, self.user_models, self.runner = model, user_models, runner
        self._choices: list[ModelChoice] = []
        self._installed: list[InstalledModel] = []
        self._server_rows: list[dict[str, Any]] = []
        self._downloading: str | None = None
        self._build()
        self.set_installed([])
        model.subscribe(self._on_model_changed)
        self.refresh_installed()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        self.combo = QComboBox(self)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.setMinimumContentsLength(18)
        self.combo.setToolTip("Which model fills the mask")
        self.combo.currentIndexChanged.connect(self._on_index_changed)
        row.addWidget(self.combo, 1)
        self.add_button = QToolButton(self)
        self.add_button.setText("+")
        self.add_button.setToolTip(
            "Add a model from a folder or a file: a checkpoint (.safetensors) or a removal model (.onnx, .pth)"
        )
        menu = QMenu(self.add_button)
        menu.addAction("Add model folder…", self.add_folder_dialog)
        menu.addAction("Add checkpoint file…", self.add_file_dialog)
        self.add_button.setMenu(menu)
        self.add_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        row.addWidget(self.add_button)
        layout.addLayout(row)
        self.info = QLabel(self)
        self.info.setWordWrap(True)
        self.info.setObjectName("model_info")
        layout.addWidget(self.info)
        download_row = QHBoxLayout()
        self.download_button = QPushButton("Download", self)
        self.download_button.clicked.connect(lambda: self.download_requested.emit(self.reference()))
        self.download_progress = QProgressBar(self)
        self.download_progress.setTextVisible(True)
        self.download_cancel = QPushButton("Cancel", self)
        self.download_cancel.clicked.connect(lambda: self.download_cancel_requested.emit(self.reference()))
        download_row.addWidget(self.download_button)
        download_row.addWidget(self.download_progress, 1)
        download_row.addWidget(self.download_cancel)
        layout.addLayout(download_row)
        self._set_download_visible(False)

    # ---- the list -----------------------------------------------------------------------------------
    def refresh_installed(self) -> None:
        """Scan the Hugging Face cache in the background (it touches the disk) and update the list."""

        def scan(_state: TaskState) -> list[InstalledModel]:
            try:
                return installed_models()
            except Exception:  # an unreadable cache means nothing installed, never a crash
                return []

        self.runner.start("looking for installed models", scan, self.set_installed, lambda _message: None)

    def set_server_models(self, rows: list[dict[str, Any]]) -> None:
        """The engine server's models (`RemoteEngine.models()` rows): its own folders join the list; [] when
        the studio uses this computer again."""
        self._server_rows = [row for row in rows if isinstance(row.get("id"), str)]
        self.set_installed(self._installed)

    def set_installed(self, installed: list[InstalledModel]) -> None:
        """Rebuild the list, keeping the model's current choice."""
        self._installed = list(installed)
        self._choices = model_choices(self._installed, self.user_models.paths)
        on_server = {row["id"]: row for row in self._server_rows if row.get("installed")}
        for index, choice in enumerate(self._choices):
            if choice.source == "catalog" and choice.reference in on_server:  # no download needed here
                label = f"{choice.entry.name if choice.entry else choice.reference} (on the server)"
                self._choices[index] = dataclasses.replace(choice, installed=True, label=label)
        known = {choice.reference for choice in self._choices}
        for row in self._server_rows:
            if row["id"] not in known:
                name = str(row.get("name") or row["id"]).replace("\\", "/").rsplit("/", 1)[-1]
                label = f"{name} (on the server)"
                self._choices.append(ModelChoice(row["id"], label, "server", True, family=row.get("family")))
        self.combo.blockSignals(True)
        self.combo.clear()
        for choice in self._choices:
            self.combo.addItem(choice.label, choice.reference)
            self.combo.setItemData(self.combo.count() - 1, choice.details(), Qt.ItemDataRole.ToolTipRole)
        self.combo.blockSignals(False)
        self._show(self.model.job.model)
        self.choices_changed.emit()

    def choices(self) -> list[ModelChoice]:
        return list(self._choices)

    def current_choice(self) -> ModelChoice:
        index = self.combo.currentIndex()
        return self._choices[index] if 0 <= index < len(self._choices) else self._choices[0]

    def reference(self) -> str:
        return self.current_choice().reference if self._choices else CLASSIC_MODEL

    def select(self, reference: str) -> bool:
        """Choose a model by reference; an unknown local path is added first. False if it is unusable.

        References come from files too (projects, history, parameters): a pickled checkpoint the user has
        not allowed is refused here, never offered for confirmation."""
        if self._knows(reference):
            self.model.set("model", reference)
            return True
        return self.add_local_model(reference)

    def _knows(self, reference: str) -> bool:
        return any(c.reference == reference for c in self._choices)

    def _show(self, reference: str) -> None:
        """Select `reference` in the list, adding a usable local path first; an unusable one (named by data:
        a restored setting, a project) is said in the message bar and the first row is chosen instead."""
        if not self._knows(reference) and self.add_local_model(reference):
            return  # add_local_model chose it
        index = next((i for i, c in enumerate(self._choices) if c.reference == reference), 0)
        self.combo.blockSignals(True)
        self.combo.setCurrentIndex(index)
        self.combo.blockSignals(False)
        self._on_index_changed(index)

    def _on_model_changed(self, path: str) -> None:
        if path in ("model", ALL) and self.model.job.model != self.reference():
            self._show(self.model.job.model)

    def _on_index_changed(self, _index: int) -> None:
        if not self._choices:
            return
        choice = self.current_choice()
        self.info.setText(choice.details())
        self._set_download_visible(choice.source == "catalog" and not choice.installed)
        self.model.set("model", choice.reference)

    # ---- adding the user's models -------------------------------------------------------------------
    def add_local_model(self, path: str, *, ask_unsafe: bool = False) -> bool:
        """Check a folder / checkpoint file is a usable model (configs only), remember and choose it.

        A pickled checkpoint (.ckpt/.pt/.pth) is added only when the user allowed it before, or, with
        `ask_unsafe` (the "Add checkpoint file…" action), confirms now; the engine reads it weights-only."""
        confirm = self.confirm_unsafe_checkpoint if ask_unsafe else None
        try:
            reference = add_user_model(path, self.user_models, confirm_unsafe=confirm)
        except InpaintStudioError as error:
            self.add_model_failed.emit(str(error))
            return False
        self.set_installed(self._installed)
        self.model.set("model", reference)
        return True

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

    def add_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a diffusers model folder")
        if path:
            self.add_local_model(path)

    def add_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Choose a checkpoint",
            "",
            "Checkpoints and removal models (*.safetensors *.onnx *.pth *.pt);;"
            "Legacy pickled checkpoints (*.ckpt *.pt *.pth)",
        )
        if path:
            self.add_local_model(path, ask_unsafe=True)

    # ---- downloads ----------------------------------------------------------------------------------
    def _set_download_visible(self, needed: bool) -> None:
        downloading = self._downloading is not None and self._downloading == self.reference()
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
