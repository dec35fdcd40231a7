"""Image > Expand Canvas…: how much canvas to add on each side, and how to fill it.

Pixels per side, or a preset: IOPaint's outpainting sizes (1.25×, 1.5×, 2×, in width, height or both) placed
with Krita's and Photoshop's 3x3 anchor grid (where the image stays: in the middle, on a side, in a corner).
Below: the new size (refused, with the reason, when it exceeds the app's pixel limit), how to pre-fill the
new area, and whether to run the Generate panel's model on it right away.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.canvas import MAX_MARGIN, Margins, check_expansion
from inpaint_studio.core.errors import BadInputError

PRESETS = (1.25, 1.5, 2.0)
DIRECTIONS = (("Both", True, True), ("Width", True, False), ("Height", False, True))


@dataclass(frozen=True)
class ExpandChoice:
    margins: Margins
    prefill: str
    generate: bool
    anchor: tuple[int, int]


class ExpandCanvasDialog(QDialog):
    """See the module docstring. `choice()` after exec() returns what was chosen."""

    def __init__(
        self,
        width: int,
        height: int,
        prefill_methods: list[tuple[str, str]],  # (name, label)
        *,
        margins: Margins | None = None,
        anchor: tuple[int, int] = (1, 1),
        prefill: str = "classic",
        generate: bool = True,
        model_name: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Expand Canvas")
        self.image_size = (width, height)
        self._anchor = anchor
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Image: {width} × {height} px. Add canvas (pixels):", self))

        sides = QFormLayout()
        self.spins: dict[str, QSpinBox] = {}
        for name in ("left", "top", "right", "bottom"):
            spin = QSpinBox(self)
            spin.setObjectName(f"expand_{name}")
            spin.setRange(0, MAX_MARGIN)
            spin.setSuffix(" px")
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(self._update)
            self.spins[name] = spin
            sides.addRow(name.capitalize(), spin)
        grid_box = QHBoxLayout()
        grid_box.addLayout(sides)
        grid_box.addSpacing(16)
        grid_box.addWidget(self._anchor_grid())
        layout.addLayout(grid_box)

        presets = QHBoxLayout()
        presets.addWidget(QLabel("Presets:", self))
        self.direction = QComboBox(self)
        self.direction.setObjectName("expand_direction")
        for label, _x, _y in DIRECTIONS:
            self.direction.addItem(label)
        presets.addWidget(self.direction)
        for factor in PRESETS:
            button = QPushButton(f"{factor:g}×", self)
            button.setObjectName(f"expand_preset_{factor:g}")
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, f=factor: self.apply_preset(f))
            presets.addWidget(button)
        presets.addStretch(1)
        layout.addLayout(presets)

        self.size_label = QLabel(self)
        self.size_label.setObjectName("expand_size")
        layout.addWidget(self.size_label)

        fill = QFormLayout()
        self.prefill = QComboBox(self)
        self.prefill.setObjectName("expand_prefill")
        for name, label in prefill_methods:
            self.prefill.addItem(label, name)
        index = self.prefill.findData(prefill)
        self.prefill.setCurrentIndex(max(0, index))
        self.prefill.setToolTip("Colours for the new area, so the model continues the picture instead of black")
        fill.addRow("Pre-fill the new area", self.prefill)
        self.generate = QCheckBox(
            f"Then fill it with the Generate panel's model{f' ({model_name})' if model_name else ''}"
        )
        self.generate.setObjectName("expand_generate")
        self.generate.setChecked(generate)
        fill.addRow(self.generate)
        layout.addLayout(fill)

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        if margins is not None:
            self.set_margins(margins)
        self._update()

    # ---- values -----------------------------------------------------------------------------------------
    def margins(self) -> Margins:
        return Margins(*(self.spins[name].value() for name in ("left", "top", "right", "bottom")))

    def set_margins(self, margins: Margins) -> None:
        for name, value in zip(("left", "top", "right", "bottom"), margins.as_tuple()):
            spin = self.spins[name]
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)
        self._update()

    @property
    def anchor(self) -> tuple[int, int]:
        return self._anchor

    def set_anchor(self, anchor: tuple[int, int]) -> None:
        button = self._anchor_buttons.button(anchor[1] * 3 + anchor[0])
        if button is not None:
            button.setChecked(True)
        self._set_anchor_id(anchor[1] * 3 + anchor[0])

    def apply_preset(self, factor: float) -> None:
        """Scale the canvas by `factor` in the chosen direction, the image kept at the anchor."""
        _label, fx, fy = DIRECTIONS[self.direction.currentIndex()]
        width, height = self.image_size
        self.set_margins(Margins.scaled(width, height, factor if fx else 1.0, factor if fy else 1.0, self._anchor))

    def choice(self) -> ExpandChoice:
        return ExpandChoice(self.margins(), str(self.prefill.currentData()), self.generate.isChecked(), self._anchor)

    def problem(self) -> str | None:
        """Why OK is disabled (one sentence), or None."""
        margins = self.margins()
        if margins.is_zero:
            return "Add some canvas on at least one side."
        try:
            check_expansion(*self.image_size, margins)
        except BadInputError as error:
            return str(error)
        return None

    # ---- widgets -------------------------------------------------------------------------------------------
    def _anchor_grid(self) -> QWidget:
        box = QWidget(self)
        grid = QGridLayout(box)
        grid.setSpacing(2)
        grid.setContentsMargins(0, 0, 0, 0)
        self._anchor_buttons = QButtonGroup(self)
        self._anchor_buttons.setExclusive(True)
        for row in range(3):
            for column in range(3):
                button = QToolButton(box)
                button.setCheckable(True)
                button.setFixedSize(22, 22)
                button.setObjectName(f"expand_anchor_{column}_{row}")
                button.setToolTip("Keep the image here; presets add canvas around it")
                self._anchor_buttons.addButton(button, row * 3 + column)
                grid.addWidget(button, row, column)
        self._anchor_buttons.idClicked.connect(lambda i: self._set_anchor_id(i))
        self.set_anchor(self._anchor)
        label = QLabel("Anchor", box)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(label, 3, 0, 1, 3)
        return box

    def _set_anchor_id(self, index: int) -> None:
        self._anchor = (index % 3, index // 3)
        for button in self._anchor_buttons.buttons():
            button.setText("")
        checked = self._anchor_buttons.button(index)
        if checked is not None:
            checked.setText("●")

    def _update(self) -> None:
        width, height = self.image_size
        margins = self.margins()
        new_width, new_height = margins.new_size(width, height)
        problem = self.problem()
        self.size_label.setText(problem if problem else f"New canvas: {new_width} × {new_height} px")
        self.size_label.setStyleSheet("color: #e06c75;" if problem and not margins.is_zero else "")
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok) if hasattr(self, "buttons") else None
        if ok is not None:
            ok.setEnabled(problem is None)
