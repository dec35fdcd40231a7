"""The Generate panel: model picker, prompt and settings, Generate / Cancel, progress and live preview.

A view over a GenerationSettings model (core/generation_settings.py): each widget is bound to one field
(ui/bindings.py), so the panel holds no state of its own and "Use these parameters", restored settings and
reopened projects all go through the model. Job fields without a widget (task, ControlNet, refiner,
speed, ...) are listed under the settings with a button that resets them. The panel reports intents
through signals; the generation controller acts on them. Nothing here imports torch.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRegularExpression, Qt, Signal
from PySide6.QtGui import QRegularExpressionValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.generation_settings import ALL, GenerationSettings, get_path, job_field_paths
from inpaint_studio.core.jobspec import (
    CLASSIC_MODEL,
    MAX_SEED,
    MAX_STEPS,
    MAX_VARIANTS,
    OFF,
    PREFILL_NONE,
    Area,
    ClassicalMethod,
    InpaintJob,
)
from inpaint_studio.core.user_models import UserModels
from inpaint_studio.engine.model_list import engine_summary
from inpaint_studio.engine.schedulers import scheduler_names
from inpaint_studio.ui import bindings, icons, qt_images
from inpaint_studio.ui.background import BackgroundRunner
from inpaint_studio.ui.panels.generate.addons import AddonsBox
from inpaint_studio.ui.panels.generate.model_picker import ModelPicker
from inpaint_studio.ui.panels.wheel_guard import guard_wheel
from inpaint_studio.ui.settings import AppSettings

PREVIEW_SIDE = 112
PAINT_PREVIEW_SIDE = 160

_METHOD_LABELS = {
    ClassicalMethod.AUTO: "Automatic",
    ClassicalMethod.TELEA: "Telea (fast)",
    ClassicalMethod.NAVIER_STOKES: "Navier-Stokes",
    ClassicalMethod.FSR: "Spectral (slower, texture)",
}
# "Remove, then refine": what fills the mask before a diffusion model redraws it.
_PREFILL_LABELS = {
    PREFILL_NONE: "None",
    CLASSIC_MODEL: "Classical fill",
    "lama": "LaMa removal",
    "migan": "MI-GAN removal",
    "mat": "MAT removal",
}
PREFILL_STRENGTH = 0.75  # chosen with a pre-fill when the strength was 1, where the pre-fill would not count
# Job fields the panel has widgets for; any other field that differs from its default is listed as "also".
_SHOWN = {
    "model",
    "prompt",
    "negative_prompt",
    "strength",
    "guidance_scale",
    "steps",
    "scheduler",
    "seed",
    "variants",
    "mask.grow_px",
    "mask.feather_px",
    "area",
    "padding_px",
    "preserve_unmasked",
    "color_match",
    "classical_method",
    # the add-ons box (ui/panels/generate/addons.py)
    "fast",
    "loras",
    "embeddings",
    "ip_adapter",
    "ip_adapter_scale",
    "ip_adapter_masked",
    "speed.preset",
    "prefill",
}


def hidden_settings(job: InpaintJob) -> dict[str, object]:
    """The job's non-default values that have no widget in the panel (they still run: say so)."""
    defaults = InpaintJob()
    return {
        path: get_path(job, path)
        for path in job_field_paths()
        if path not in _SHOWN and get_path(job, path) != get_path(defaults, path)
    }


class GeneratePanel(QWidget):
    """See the module docstring. Signals carry intents; the controller acts on them."""

    generate_requested = Signal()
    remove_requested = Signal()
    cancel_requested = Signal()

    def __init__(
        self,
        model: GenerationSettings,
        user_models: UserModels,
        runner: BackgroundRunner,
        parent: QWidget | None = None,
        *,
        app_settings: AppSettings | None = None,
    ) -> None:
        """`app_settings`: where the LoRA / embeddings folders are kept (None: no folders, the cache only)."""
        super().__init__(parent)
        self.model = model
        self._app_settings = app_settings
        self._build(user_models, runner)
        self._bind()
        guard_wheel(self)  # the wheel scrolls the panel; only a focused control changes its value
        model.subscribe(self._on_model_changed)
        self._on_model_changed(ALL)

    # ---- construction -----------------------------------------------------------------------------
    def _build(self, user_models: UserModels, runner: BackgroundRunner) -> None:
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

        self.models = ModelPicker(self.model, user_models, runner, body)
        self.models.choices_changed.connect(self._show_engine)
        layout.addWidget(self.models)

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
        self.color_match_check = QCheckBox("Match colours to the surroundings", body)
        self.color_match_check.setToolTip("Shift the fill's colours to those around the mask (against colour casts)")
        self.method_combo = QComboBox(body)
        for method, label in _METHOD_LABELS.items():
            self.method_combo.addItem(label, method.value)
        self.live_preview_check = QCheckBox("Live preview while generating", body)
        self.prefill_combo = QComboBox(body)
        for value, label in _PREFILL_LABELS.items():
            self.prefill_combo.addItem(label, value)
        self.prefill_combo.setToolTip(
            "Remove, then refine: fill the mask first (the object disappears), then let the model redraw the "
            "area at the chosen strength"
        )
        self.prefill_combo.activated.connect(self._on_prefill_chosen)
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
        form.addRow("Pre-fill", self.prefill_combo)
        form.addRow("", self.preserve_check)
        form.addRow("", self.color_match_check)
        form.addRow("", self.live_preview_check)
        self._form = form
        layout.addLayout(form)

        # Add-ons: fast mode, LoRAs, embeddings, the IP-Adapter's reference, the speed preset.
        self.addons_group = QGroupBox("Add-ons", body)
        group_layout = QVBoxLayout(self.addons_group)
        group_layout.setContentsMargins(6, 6, 6, 6)
        self.addons = AddonsBox(self.model, runner, self._app_settings, self.addons_group)
        group_layout.addWidget(self.addons)
        layout.addWidget(self.addons_group)

        # Settings without a widget (loaded from a history entry, a project or a recipe): shown, resettable.
        extras = QHBoxLayout()
        self.extras_label = QLabel(body)
        self.extras_label.setWordWrap(True)
        self.extras_label.setObjectName("generate_extras")
        self.extras_reset = QToolButton(body)
        self.extras_reset.setText("Reset")
        self.extras_reset.setToolTip("Reset these settings to their defaults")
        self.extras_reset.clicked.connect(self.reset_hidden_settings)
        extras.addWidget(self.extras_label, 1)
        extras.addWidget(self.extras_reset, 0, Qt.AlignmentFlag.AlignTop)
        layout.addLayout(extras)

        # Run: pinned under the scrolling settings, so Generate and the progress are always in view.
        footer = QWidget(self)
        footer_layout = QVBoxLayout(footer)
        footer_layout.setContentsMargins(6, 4, 6, 6)
        buttons = QHBoxLayout()
        self.generate_button = QPushButton("Generate", footer)
        self.generate_button.setToolTip("Generate (Ctrl+Enter); while one runs, this queues another")
        self.generate_button.setDefault(True)
        self.generate_button.clicked.connect(self.generate_requested)
        self.remove_button = QPushButton("Remove", footer)
        self.remove_button.setToolTip(
            "Remove what is under the mask (Shift+Delete): the installed removal model, or the classical fill; "
            "no prompt"
        )
        self.remove_button.clicked.connect(self.remove_requested)
        self.cancel_button = QPushButton("Cancel", footer)
        self.cancel_button.setToolTip("Cancel the running generation (Esc; Shift+Esc cancels the queue too)")
        self.cancel_button.clicked.connect(self.cancel_requested)
        buttons.addWidget(self.generate_button, 2)
        buttons.addWidget(self.remove_button, 1)
        buttons.addWidget(self.cancel_button, 1)
        footer_layout.addLayout(buttons)
        self.engine_label = QLabel("", footer)  # "Will run: LaMa removal ..."
        self.engine_label.setWordWrap(True)
        self.engine_label.setObjectName("generate_engine")
        footer_layout.addWidget(self.engine_label)
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
        # The preview while painting (ui/controllers/paint_preview.py): the masked area, a few steps.
        self.paint_preview_label = QLabel(footer)
        self.paint_preview_label.setObjectName("paint_preview")
        self.paint_preview_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.paint_preview_label.setVisible(False)
        footer_layout.addWidget(self.paint_preview_label)
        outer.addWidget(footer)
        layout.addStretch(1)
        self.set_running(False, 0)

    def _bind(self) -> None:
        m = self.model
        self._bindings = [
            bindings.plain_text(m, "prompt", self.prompt_edit),
            bindings.plain_text(m, "negative_prompt", self.negative_edit),
            bindings.fraction(m, "strength", self.strength_spin),
            bindings.fraction(m, "guidance_scale", self.guidance_spin),
            bindings.spin(m, "steps", self.steps_spin),
            bindings.combo_text(m, "scheduler", self.scheduler_combo),
            bindings.optional_int(m, "seed", self.seed_edit),
            bindings.check(m, "seed_locked", self.seed_lock),
            bindings.spin(m, "variants", self.variants_spin),
            bindings.combo_data(m, "area", self.area_combo, enum=Area),
            bindings.spin(m, "padding_px", self.padding_spin),
            bindings.spin(m, "mask.feather_px", self.feather_spin),
            bindings.spin(m, "mask.grow_px", self.grow_spin),
            bindings.check(m, "preserve_unmasked", self.preserve_check),
            bindings.check(m, "color_match", self.color_match_check),
            bindings.combo_data(m, "classical_method", self.method_combo, enum=ClassicalMethod),
            bindings.check(m, "live_preview", self.live_preview_check),
            bindings.Binding(m, "prefill", self.prefill_combo.currentIndexChanged, self._prefill, self._show_prefill),
        ]

    # ---- the job ------------------------------------------------------------------------------------
    @property
    def seed_locked(self) -> bool:
        return self.model.seed_locked

    @property
    def live_preview(self) -> bool:
        """Live preview is asked for and means something for the chosen model (not the classical fill)."""
        return self.model.live_preview and not self.model.job.is_classical

    def job(self) -> InpaintJob:
        """The frozen job Generate runs (not validated: see InpaintJob.problems())."""
        return self.model.job_to_run()

    def load_job(self, job: InpaintJob, *, lock_seed: bool = True) -> None:
        """Show a job's parameters (from history: 'use these parameters'). The seed is locked by default."""
        self.model.load_job(job, lock_seed=lock_seed if job.seed is not None else None)

    def select_model(self, reference: str) -> bool:
        return self.models.select(reference)

    def model_reference(self) -> str:
        return self.model.job.model

    def randomise_seed(self) -> None:
        self.model.set("seed", secrets.randbelow(MAX_SEED + 1))
        self.model.set("seed_locked", True)

    def show_seed(self, seed: int) -> None:
        """After a run: show the concrete seed used (a locked seed keeps its value)."""
        if not self.seed_locked:
            self.model.set("seed", seed)

    def _prefill(self) -> str:
        return str(self.prefill_combo.currentData())

    def _show_prefill(self, value: str) -> None:
        """Select the pre-fill; a removal model file (from a recipe, a history entry) gets its own item."""
        if self.prefill_combo.findData(value) < 0:
            self.prefill_combo.addItem(f"{Path(value).name} (your removal model)", value)
        self.prefill_combo.setCurrentIndex(self.prefill_combo.findData(value))

    def _on_prefill_chosen(self, _index: int) -> None:
        """At strength 1 the diffusion model starts from noise and the pre-fill would not count: lower it."""
        if self._prefill() != PREFILL_NONE and self.model.job.strength >= 1.0:
            self.model.set("strength", PREFILL_STRENGTH)

    def reset_hidden_settings(self) -> None:
        """Put every setting the panel has no widget for back to its default."""
        defaults = InpaintJob()
        job = self.model.job
        for path in hidden_settings(job):
            self.model.set(path, get_path(defaults, path))

    def _on_model_changed(self, path: str) -> None:
        if path in ("seed_locked", ALL):
            locked = self.seed_locked
            self.seed_lock.setIcon(icons.padlock(locked))
            self.seed_edit.setReadOnly(not locked)
            self.seed_edit.setToolTip(
                "This seed is used for every run" if locked else "The seed of the last run; lock it to reuse it"
            )
        if path in ("model", ALL):
            self.addons.set_model_family(self.models.current_choice().family if self.models.choices() else None)
        if path in ("model", "area", "classical_method", "fast", ALL):
            self._update_enabled()
        self._show_hidden_settings()
        self._show_engine()

    def _show_engine(self) -> None:
        """The line under Generate: which engine will run (the default choice may mean a removal model)."""
        text = engine_summary(self.model.job, self.models.choices())
        self.engine_label.setText(text)
        self.engine_label.setToolTip(text)

    def _show_hidden_settings(self) -> None:
        hidden = hidden_settings(self.model.job)
        text = ", ".join(f"{path.replace('_', ' ')} {_shown(value)}" for path, value in hidden.items())
        self.extras_label.setText(f"Also used: {text}." if hidden else "")
        self.extras_label.setVisible(bool(hidden))
        self.extras_reset.setVisible(bool(hidden))

    def _update_enabled(self) -> None:
        job = self.model.job
        removal = self.models.current_choice().is_removal if self.models.choices() else False
        seeded = removal and self.models.current_choice().architecture == "MAT"  # MAT's fill depends on its seed
        classic = job.is_classical or removal  # no prompt, steps or sampler
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
            self.color_match_check,
            self.live_preview_check,
        ):
            widget.setEnabled(not classic)
        self.area_combo.setEnabled(not job.is_classical)  # a removal network works on a region or the whole
        self.padding_spin.setEnabled(not job.is_classical and job.area is Area.MASKED)
        for widget in (self.seed_edit, self.seed_lock, self.seed_random, self.variants_spin):
            widget.setEnabled(not classic or seeded)
        self.method_combo.setEnabled(job.is_classical)
        self._form.setRowVisible(self.method_combo, job.is_classical)
        self._form.setRowVisible(self.prefill_combo, not classic)
        self.addons_group.setEnabled(not classic)
        if not classic and job.fast != OFF:
            self.scheduler_combo.setEnabled(False)  # fast mode uses its own sampler
            self.scheduler_combo.setToolTip("Fast mode uses the sampler its LoRA needs")
        else:
            self.scheduler_combo.setToolTip("")

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

    def set_progress(
        self, step: int, total: int, seconds_left: float | None, queued: int, label: str | None = None
    ) -> None:
        """The bar fills over the whole job; its text says where it is (`label`, e.g. "Variant 2 of 2 ·
        step 4 of 61"; default "Step 4 of 61")."""
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(step)
        left = "" if seconds_left is None else f" · {_format_seconds(seconds_left)} left"
        more = f" · {queued} queued" if queued else ""
        self.progress_bar.setFormat(f"{label or f'Step {step} of {total}'}{left}{more}")

    def set_status(self, text: str) -> None:
        self.status_label.setText(text)

    def set_paint_preview(self, rgb: np.ndarray | None, caption: str = "") -> None:
        """The latest preview of the masked area while painting (None hides it)."""
        if rgb is None:
            self.paint_preview_label.clear()
            self.paint_preview_label.setVisible(False)
            return
        self.paint_preview_label.setPixmap(qt_images.thumbnail_pixmap(rgb[..., :3], PAINT_PREVIEW_SIDE))
        self.paint_preview_label.setToolTip(caption)
        self.paint_preview_label.setVisible(True)

    def set_preview(self, rgb: np.ndarray | None) -> None:
        if rgb is None:
            self.preview_label.clear()
            return
        pixmap = qt_images.thumbnail_pixmap(rgb[..., :3], PREVIEW_SIDE)
        self.preview_label.setMinimumHeight(pixmap.height())
        self.preview_label.setPixmap(pixmap)


def _shown(value: object) -> str:
    text = getattr(value, "value", value)
    return f"“{text}”" if isinstance(text, str) else str(text).lower()


def _format_seconds(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    return f"{minutes}:{sec:02d} min"
