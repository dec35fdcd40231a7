"""Image > Upscale…: choose the upscaler, the factor and the tile size.

The list is the user's upscaler folder and the catalog (engine/addon_list.py), scanned on the background
runner; a catalog model that is not installed shows its size and licence and a Download button (the
controller downloads it on request). Nothing here imports torch.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.engine.addon_list import AddonChoice, list_upscalers
from inpaint_studio.engine.upscale import SCALES, UpscaleJob
from inpaint_studio.ui.background import BackgroundRunner, TaskState


class UpscaleDialog(QDialog):
    """See the module docstring; `job()` is the UpscaleJob the dialog describes."""

    download_requested = Signal(str)  # catalog reference

    def __init__(
        self,
        runner: BackgroundRunner,
        folder: str = "",
        model: str = "",
        scale: int = 2,
        size: tuple[int, int] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Upscale")
        self.setMinimumWidth(480)
        self.runner, self.folder, self.size = runner, folder, size
        self._choices: list[AddonChoice] = []
        self._wanted = model
        layout = QVBoxLayout(self)
        form = QFormLayout()
        model_row = QHBoxLayout()
        self.model_combo = QComboBox(self)
        self.model_combo.setMinimumContentsLength(28)
        self.model_combo.currentIndexChanged.connect(self._update)
        self.add_button = QToolButton(self)
        self.add_button.setText("+")
        self.add_button.setToolTip("Add an upscaler file (.safetensors or .pth)")
        self.add_button.clicked.connect(self.add_file_dialog)
        model_row.addWidget(self.model_combo, 1)
        model_row.addWidget(self.add_button)
        form.addRow("Upscaler", model_row)
        self.scale_combo = QComboBox(self)
        for factor in SCALES:
            self.scale_combo.addItem(f"x{factor}", factor)
        self.scale_combo.setCurrentIndex(max(0, self.scale_combo.findData(scale)))
        self.scale_combo.currentIndexChanged.connect(self._update)
        form.addRow("Factor", self.scale_combo)
        self.tile_spin = QSpinBox(self)
        self.tile_spin.setRange(0, 4096)
        self.tile_spin.setSingleStep(64)
        self.tile_spin.setValue(UpscaleJob(model="").tile)
        self.tile_spin.setSuffix(" px")
        self.tile_spin.setSpecialValueText("whole image")
        self.tile_spin.setToolTip("Tiles keep large images within memory; smaller tiles need less")
        form.addRow("Tiles", self.tile_spin)
        layout.addLayout(form)
        info_row = QHBoxLayout()
        self.info = QLabel("Looking for upscalers…", self)
        self.info.setWordWrap(True)
        self.info.setMinimumHeight(self.info.fontMetrics().lineSpacing() * 4)
        self.info.setObjectName("upscale_info")
        self.download_button = QPushButton("Download", self)
        self.download_button.clicked.connect(lambda: self.download_requested.emit(self.reference()))
        self.download_button.setVisible(False)
        info_row.addWidget(self.info, 1)
        info_row.addWidget(self.download_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(info_row)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, parent=self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Upscale")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.refresh()

    def refresh(self) -> None:
        folder = self.folder

        def scan(_state: TaskState) -> list[AddonChoice]:
            return list_upscalers(folder)

        self.runner.start("looking for upscalers", scan, self.set_choices, lambda message: self.info.setText(message))

    def set_choices(self, choices: list[AddonChoice]) -> None:
        wanted = self.reference() or self._wanted
        self._choices = list(choices)
        if wanted and not any(c.reference == wanted for c in self._choices):
            self._choices.insert(0, AddonChoice(wanted, Path(wanted).name, "upscaler", Path(wanted).exists(), "folder"))
        self.model_combo.blockSignals(True)
        self.model_combo.clear()
        for choice in self._choices:
            self.model_combo.addItem(choice.label, choice.reference)
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(wanted)))
        self.model_combo.blockSignals(False)
        self._update()

    def add_file_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose an upscaler", self.folder, "Upscalers (*.safetensors *.pth *.pt *.ckpt)"
        )
        if path:
            self.add_file(path)

    def add_file(self, path: str) -> None:
        self._wanted = path
        self.set_choices([c for c in self._choices if c.reference != path])
        self.model_combo.setCurrentIndex(max(0, self.model_combo.findData(path)))

    def reference(self) -> str:
        data = self.model_combo.currentData()
        return str(data) if data else ""

    def current_choice(self) -> AddonChoice | None:
        index = self.model_combo.currentIndex()
        return self._choices[index] if 0 <= index < len(self._choices) else None

    def job(self) -> UpscaleJob:
        return UpscaleJob(
            model=self.reference(), scale=int(self.scale_combo.currentData()), tile=self.tile_spin.value()
        )

    def _update(self, *_args: object) -> None:
        choice = self.current_choice()
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if choice is None:
            self.info.setText("No upscaler yet: add a file (+) or download one from the list.")
            self.download_button.setVisible(False)
            ok.setEnabled(False)
            return
        problems = self.job().problems(self.size)
        text = choice.details()
        if problems:
            text += " " + " ".join(problems)
        self.info.setText(text)
        self.download_button.setVisible(choice.entry is not None and not choice.installed)
        ok.setEnabled(choice.installed and not problems)
        self.adjustSize()  # the texts arrive after the list was scanned: grow to show them whole
