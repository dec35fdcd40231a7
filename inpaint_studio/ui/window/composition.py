"""Where the studio is put together: every controller is built here, in one place, in dependency order.

    StudioContext (document, undo stack, canvas, message bar, settings, background runner, actions)
      -> GenerationController (Generate panel on a GenerationSettings model, Results, History, engine worker)
      -> ProjectController (save/open, title) -> AutosaveScheduler, MemoryBudget
      -> FileActions (open/paste/drop/export), MaskActions (the Mask menu)
      -> UpscaleController (Image > Upscale), PaintPreview (the preview while painting)
      -> SelectionController (the Select tool's model, on its own interactive worker thread)
      -> OutpaintController (Image > Expand Canvas…, the Expand tool; fills through the generation controller)

The generation panels are docked here too. Tests pass `EngineOptions` to share one engine worker between
windows instead of starting a thread (and loading torch) per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt

from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.controllers.autosave import AutosaveScheduler
from inpaint_studio.ui.controllers.generation import WARM_UP_DELAY_MS, GenerationController
from inpaint_studio.ui.controllers.memory_budget import MemoryBudget
from inpaint_studio.ui.controllers.outpaint import OutpaintController
from inpaint_studio.ui.controllers.paint_preview import PaintPreview
from inpaint_studio.ui.controllers.projects import ProjectController
from inpaint_studio.ui.controllers.selection import SelectionController
from inpaint_studio.ui.controllers.upscale import UpscaleController
from inpaint_studio.ui.engine_thread.interactive import InteractiveWorker
from inpaint_studio.ui.engine_thread.worker import EngineWorker
from inpaint_studio.ui.settings import (
    engine_factory,
    load_generation_settings,
    load_user_models,
    remember_generation_settings,
)
from inpaint_studio.ui.window.files import FileActions
from inpaint_studio.ui.window.mask_actions import MaskActions

if TYPE_CHECKING:
    from inpaint_studio.ui.window.main_window import MainWindow


@dataclass(frozen=True)
class EngineOptions:
    """How the window gets its generation engine."""

    worker: EngineWorker | None = None  # None: the window starts (and owns) its own worker
    owns_worker: bool | None = None  # default: True for its own worker, False for a shared one
    warm_up_delay_ms: int | None = WARM_UP_DELAY_MS  # None: load the engine only for the first job
    interactive: InteractiveWorker | None = None  # the Select tool's thread; None: the window makes its own


@dataclass(frozen=True)
class Controllers:
    generation: GenerationController
    projects: ProjectController
    autosave: AutosaveScheduler
    memory: MemoryBudget
    files: FileActions
    masks: MaskActions
    upscale: UpscaleController
    paint_preview: PaintPreview
    selection: SelectionController
    outpaint: OutpaintController


def compose(window: MainWindow, ctx: StudioContext, engine: EngineOptions) -> Controllers:
    """Build and connect every controller of `window` (see the module docstring)."""
    settings_model = load_generation_settings(ctx.settings)
    remember_generation_settings(settings_model, ctx.settings)
    user_models = load_user_models(ctx.settings)
    worker = engine.worker if engine.worker is not None else EngineWorker(engine_factory=engine_factory(ctx.settings))
    owns = engine.worker is None if engine.owns_worker is None else engine.owns_worker
    generation = GenerationController(
        ctx, settings_model, user_models, worker=worker, owns_worker=owns, warm_up_delay_ms=engine.warm_up_delay_ms
    )
    generation.engine_status.connect(window.set_engine_status)
    _dock_generation_panels(window, generation)
    projects = ProjectController(ctx, window, generation)
    autosave = AutosaveScheduler(ctx, projects)
    memory = MemoryBudget(ctx, generation)
    files = FileActions(ctx, window, generation, projects)
    upscale = UpscaleController(ctx, worker, generation.recorder)
    paint_preview = PaintPreview(ctx, settings_model, worker, generation.panel, generation.named_inputs)
    interactive = engine.interactive
    selection = SelectionController(ctx, interactive, owns_worker=interactive is None)
    outpaint = OutpaintController(ctx, generation)
    return Controllers(
        generation,
        projects,
        autosave,
        memory,
        files,
        MaskActions(ctx),
        upscale,
        paint_preview,
        selection,
        outpaint,
    )


def _dock_generation_panels(window: MainWindow, generation: GenerationController) -> None:
    right, bottom, left = (
        Qt.DockWidgetArea.RightDockWidgetArea,
        Qt.DockWidgetArea.BottomDockWidgetArea,
        Qt.DockWidgetArea.LeftDockWidgetArea,
    )
    generate = window.add_panel(generation.panel, "Generate", right)
    results = window.add_panel(generation.candidates, "Results", bottom)
    history = window.add_panel(generation.history_panel, "History", left)
    # The side columns run the full height; Results sits under the canvas only.
    window.setCorner(Qt.Corner.BottomRightCorner, right)
    window.setCorner(Qt.Corner.BottomLeftCorner, left)
    window.splitDockWidget(generate, window.layers_dock, Qt.Orientation.Vertical)
    # Layers gets room for four rows at the default size (a test checks); the rest goes to Generate, which
    # scrolls while its Run part stays.
    window.resizeDocks([generate, window.layers_dock], [600, 240], Qt.Orientation.Vertical)
    window.resizeDocks([generate, history], [340, 260], Qt.Orientation.Horizontal)
    window.resizeDocks([results], [150], Qt.Orientation.Vertical)
