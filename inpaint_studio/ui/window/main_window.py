"""The main window: canvas in the centre, dockable panels, menus, tool bar, status bar, message bar.

It owns the long-lived parts of one studio (the Document, the undo stack, the canvas, the message bar) and
hands them to its controllers as one typed StudioContext (ui/context.py); composition.py builds the
controllers, actions.py the actions, menus and tool bar. What stays here is the window's own job: replacing
the work (`set_document`, `open_image`, `open_path`), the tools' state in the tool bar, the status bar,
closing, and remembering its layout.

Public parts for other code and tests: `document`, `undo_stack`, `canvas`, `message_bar`, `settings`
(AppSettings), `actions` (every QAction by name), `generation`, `projects`, `autosave`, `memory`, `files`,
`masks`, `selection` (the Select tool's model), `outpaint` (Expand Canvas), and the ``document_opened(str)``
signal (path, or "" for an in-memory image).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from PIL import Image
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QColor, QDragEnterEvent, QDropEvent, QShowEvent
from PySide6.QtWidgets import QColorDialog, QDockWidget, QLabel, QMainWindow, QMenu, QVBoxLayout, QWidget

from inpaint_studio.core.document import Document
from inpaint_studio.ui import icons
from inpaint_studio.ui.background import BackgroundRunner
from inpaint_studio.ui.canvas.tools import ToolSettings
from inpaint_studio.ui.canvas.widget import Canvas
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.document.commands import UndoStack
from inpaint_studio.ui.panels.layers_panel import LayersPanel
from inpaint_studio.ui.panels.message_bar import MessageBar
from inpaint_studio.ui.settings import AppSettings
from inpaint_studio.ui.window import actions
from inpaint_studio.ui.window.composition import EngineOptions, compose
from inpaint_studio.ui.window.settings_dialog import SettingsDialog
from inpaint_studio.ui.window.shortcut_guard import install_shortcut_guard

log = logging.getLogger(__name__)

APP_NAME = "Inpaint Studio"
UNDO_LIMIT = 300  # strokes store only their bounding box, so this is a generous history
ENGINE_PLACEHOLDER = "Engine: not loaded"
MIN_BRUSH_ON_SCREEN = 24  # logical pixels
# Actions that need an image to act on.
_NEED_IMAGE = ("mask_", "layer_", "export_", "tool_", "save_", "upscale")
_NEED_IMAGE_NAMES = ("copy_image", "load_mask", "fit", "actual", "zoom_in", "zoom_out", "compare", "expand_canvas")


class MainWindow(QMainWindow):
    """One document per window; see the module docstring."""

    document_opened = Signal(str)  # path of the opened file, "" for a pasted image

    def __init__(
        self,
        settings: QSettings | AppSettings | None = None,
        parent: QWidget | None = None,
        *,
        engine: EngineOptions | None = None,
    ) -> None:
        super().__init__(parent)
        self.settings = settings if isinstance(settings, AppSettings) else AppSettings(settings)
        self._document = Document()
        self._undo_stack = UndoStack(self)
        self._undo_stack.setUndoLimit(UNDO_LIMIT)
        self.tool_settings = ToolSettings(self)
        self.actions: dict[str, QAction] = {}

        self._canvas = Canvas(self._document, self._undo_stack, self.tool_settings, self)
        # Over the canvas, not above it: a message must not resize (and so re-zoom) the canvas.
        self._message_bar = MessageBar(self._canvas)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._canvas, 1)
        self.setCentralWidget(central)
        self._panels_menu = QMenu("&Panels", self)
        self.layers_panel = LayersPanel(self._document, self._undo_stack, self)
        self.layers_dock = self.add_panel(self.layers_panel, "Layers", Qt.DockWidgetArea.RightDockWidgetArea)

        self.ctx = StudioContext(
            window=self,
            document=self._document,
            undo_stack=self._undo_stack,
            canvas=self._canvas,
            messages=self._message_bar,
            status=self.statusBar(),
            settings=self.settings,
            runner=BackgroundRunner(self),
            actions=self.actions,
        )
        parts = compose(self, self.ctx, engine or EngineOptions())
        self.generation, self.projects, self.autosave = parts.generation, parts.projects, parts.autosave
        self.memory, self.files, self.masks = parts.memory, parts.files, parts.masks
        self.upscaler, self.paint_preview = parts.upscale, parts.paint_preview
        self.selection, self.outpaint = parts.selection, parts.outpaint

        actions.create_actions(self)
        self._recent_menu = QMenu("Open &Recent", self)
        self._recent_menu.aboutToShow.connect(self._fill_recent_menu)
        actions.create_menus(self, self._recent_menu, self._panels_menu)
        self.tool_bar = actions.create_tool_bar(self)
        self._create_status_bar()
        self._connect_actions()
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        self._undo_stack.cleanChanged.connect(self.projects.update_title)
        self._document.reset.connect(self._on_document_reset)
        self._document.resized.connect(lambda _offset: self._on_document_reset())  # the size label
        self._document.layers_changed.connect(self._update_enabled)
        self._canvas.zoom_changed.connect(self._on_zoom_changed)
        self._canvas.cursor_moved.connect(self._on_cursor_moved)
        self._canvas.tool_changed.connect(self._on_tool_changed)
        self._canvas.mask_visible_changed.connect(self.actions["toggle_mask"].setChecked)
        self._canvas.original_shown.connect(self._on_original_shown)
        self.tool_settings.changed.connect(self._on_tool_settings_changed)

        self.resize(1280, 840)
        install_shortcut_guard()
        self._restore_window_state()
        size, hardness = self.settings.brush_size, self.settings.brush_hardness  # the brush as the user left it
        self.tool_settings.set_size(size)
        self.tool_settings.set_hardness(hardness)
        self._on_document_reset()
        self._on_tool_settings_changed()

    # ----------------------------------------------------------------- the parts
    @property
    def document(self) -> Document:
        return self._document

    @property
    def undo_stack(self) -> UndoStack:
        return self._undo_stack

    @property
    def canvas(self) -> Canvas:
        return self._canvas

    @property
    def message_bar(self) -> MessageBar:
        return self._message_bar

    def add_panel(
        self, widget: QWidget, title: str, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    ) -> QDockWidget:
        """Dock a panel; its show/hide toggle appears in View > Panels. Returns the dock widget."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock_{title.lower().replace(' ', '_')}")  # for saveState/restoreState
        dock.setWidget(widget)
        dock.setFeatures(
            QDockWidget.DockWidgetFeature.DockWidgetMovable
            | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            | QDockWidget.DockWidgetFeature.DockWidgetClosable
        )
        self.addDockWidget(area, dock)
        self._panels_menu.addAction(dock.toggleViewAction())
        return dock

    def set_engine_status(self, text: str) -> None:
        """The device/engine text in the status bar (e.g. "Engine: CUDA, SDXL loaded")."""
        self.engine_label.setText(text)

    def run_guarded(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run fn; an error becomes one message in the message bar (StudioContext.guarded)."""
        return self.ctx.guarded(fn, *args, **kwargs)

    # ----------------------------------------------------------------- the work (DocumentHost)
    def open_path(self, path: str | os.PathLike[str], confirm: bool = True) -> bool:
        """Open an image, a project or an OpenRaster file as the work (ui/window/files.py)."""
        return self.files.open_path(path, confirm)

    def open_image(self, image: Image.Image, name: str = "Pasted image") -> None:
        """Make an in-memory image the document (no unsaved-work question: callers ask first)."""
        document = Document.from_image(image, name="Background")
        document.metadata = {"path": "", "name": name}
        self.set_document(document)
        self.document_opened.emit("")

    def set_document(self, document: Document) -> None:
        """Make `document` the window's work (the one Document takes it over); undo starts empty."""
        self._canvas.finish_gesture()
        self._document.reset_from(document)
        self._undo_stack.clear()
        self._undo_stack.setClean()
        # A brush a few screen pixels wide at fit zoom is unusable (a 40 px brush on a 6000 px photo):
        # start such photos with one about MIN_BRUSH_ON_SCREEN pixels wide instead.
        scale = self._canvas.scale
        if scale > 0 and self.tool_settings.size * scale < MIN_BRUSH_ON_SCREEN / 3:
            self.tool_settings.set_size(round(MIN_BRUSH_ON_SCREEN / scale))
        self._canvas.setFocus()

    def opened(self, path: str) -> None:
        """A file became the work: Open Recent, the folder the next Open starts in, document_opened."""
        self.settings.add_recent(path)
        self.settings.last_dir = os.path.dirname(os.path.abspath(path))
        self.document_opened.emit(path)

    def maybe_save(self) -> bool:
        """Ask Save / Discard / Cancel when there is unsaved work (Save saves the project, Save As when
        it has no file yet); True when it is fine to go on."""
        self._canvas.finish_gesture()
        return self.projects.maybe_save()

    # ----------------------------------------------------------------- tools
    def select_tool(self, name: str) -> None:
        if name in ("mask_brush", "paint_brush"):
            self.tool_settings.set_erase(False)  # B and P mean "paint" (E is the eraser)
        self._canvas.set_tool(name)
        self.actions[f"tool_{name}"].setChecked(True)

    def toggle_eraser(self) -> None:
        """E: switch the brush into erasing (selecting the mask brush if no brush is active), or back."""
        if self._canvas.tool.cursor != "brush":
            self._canvas.set_tool("mask_brush")
            self.tool_settings.set_erase(True)
        else:
            self.tool_settings.set_erase(not self.tool_settings.erase)

    def swap_erase(self) -> None:
        """X: swap between painting and erasing, keeping the tool."""
        self.tool_settings.set_erase(not self.tool_settings.erase)

    def choose_mask_color(self) -> None:
        """View > Mask Overlay Colour: pick the overlay's colour (remembered; an orange photo wants blue)."""
        color = QColorDialog.getColor(self._canvas.mask_color, self, "Mask overlay colour")
        if color.isValid():
            self.set_mask_color(color)

    def set_mask_color(self, color: QColor) -> None:
        self._canvas.set_mask_color(color)
        self.settings.mask_color = color.name()
        self.actions["overlay_color"].setIcon(icons.swatch(self._canvas.mask_color))

    def choose_color(self) -> None:
        initial = QColor(*self.tool_settings.color)
        color = QColorDialog.getColor(initial, self, "Paint colour")
        if color.isValid():
            self.tool_settings.set_color((color.red(), color.green(), color.blue()))
            self.select_tool("paint_brush")

    def undo(self) -> None:
        self._canvas.finish_gesture()  # a stroke in progress becomes its own step first
        self._undo_stack.undo()

    def redo(self) -> None:
        self._canvas.finish_gesture()
        self._undo_stack.redo()

    def _on_tool_changed(self, name: str) -> None:
        action = self.actions.get(f"tool_{name}")
        if action is not None:
            action.setChecked(True)

    def _on_tool_settings_changed(self) -> None:
        settings = self.tool_settings
        if (self.settings.brush_size, self.settings.brush_hardness) != (settings.size, settings.hardness):
            self.settings.brush_size, self.settings.brush_hardness = settings.size, settings.hardness
        for spin, value in (
            (self.size_spin, round(settings.size)),
            (self.hardness_spin, round(settings.hardness * 100)),
        ):
            if spin.value() != value:
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)
        self.actions["eraser"].setChecked(settings.erase)
        color = QColor(*settings.color)
        self.actions["paint_color"].setIcon(icons.swatch(color))
        self.actions["tool_paint_brush"].setIcon(icons.paint_brush(color))

    def open_settings(self) -> bool:
        """Edit > Settings…: the engine choice (this computer or a server); True when it was changed."""
        before = (self.ctx.settings.engine_kind, self.ctx.settings.engine_url, self.ctx.settings.engine_token)
        dialog = SettingsDialog(self.ctx.settings, self.ctx.runner, self)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return False
        after = (self.ctx.settings.engine_kind, self.ctx.settings.engine_url, self.ctx.settings.engine_token)
        if after == before:
            return False
        self.generation.apply_engine_settings()
        return True

    def _connect_actions(self) -> None:
        undo, redo = self.actions["undo"], self.actions["redo"]
        undo.setEnabled(False)
        redo.setEnabled(False)
        self._undo_stack.canUndoChanged.connect(undo.setEnabled)
        self._undo_stack.canRedoChanged.connect(redo.setEnabled)
        self._undo_stack.undoTextChanged.connect(lambda t: undo.setText(f"&Undo {t}".strip()))
        self._undo_stack.redoTextChanged.connect(lambda t: redo.setText(f"&Redo {t}".strip()))
        toggle_mask = self.actions["toggle_mask"]
        toggle_mask.setChecked(True)
        toggle_mask.toggled.connect(self._canvas.set_show_mask)
        saved = QColor(self.settings.mask_color)
        self.set_mask_color(saved if saved.isValid() else self._canvas.mask_color)
        keep = self.actions["keep_mask_after_apply"]
        keep.setChecked(self.settings.keep_mask_after_apply)
        keep.toggled.connect(lambda on: setattr(self.settings, "keep_mask_after_apply", on))
        self.actions["compare"].toggled.connect(self._canvas.set_show_original)

    # ----------------------------------------------------------------- recent files
    def recent_files(self) -> list[str]:
        return self.settings.recent_files

    def _fill_recent_menu(self) -> None:
        menu = self._recent_menu
        menu.clear()
        files = self.recent_files()
        for index, path in enumerate(files):
            label = f"&{index + 1} {os.path.basename(path)}" if index < 9 else os.path.basename(path)
            action = menu.addAction(label)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        if not files:
            menu.addAction("No recent files").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear Recent", lambda: setattr(self.settings, "recent_files", []))

    # ----------------------------------------------------------------- window events
    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.generation.window_shown()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.projects.wait_idle()  # a save or autosave in flight finishes first
        self.autosave.discard()  # a clean exit: nothing to recover
        self.settings.window_geometry = self.saveGeometry()
        self.settings.window_state = self.saveState()
        self.settings.store.sync()  # on disk now: the application may end without the interpreter's teardown
        event.accept()
        self.hide()  # at once: stopping the engine below may wait for a running step to end
        self.generation.shutdown()
        self.selection.shutdown()

    def _restore_window_state(self) -> None:
        geometry, state = self.settings.window_geometry, self.settings.window_state
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.files.accepts_drop(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        event.acceptProposedAction()
        self.files.drop(event.mimeData())

    # ----------------------------------------------------------------- status and state
    def _create_status_bar(self) -> None:
        status = self.statusBar()
        self.cursor_label = QLabel("", self)
        self.size_label = QLabel("", self)
        self.zoom_label = QLabel("", self)
        self.engine_label = QLabel(ENGINE_PLACEHOLDER, self)
        self.cursor_label.setMinimumWidth(120)
        self.zoom_label.setMinimumWidth(60)
        for label in (self.cursor_label, self.size_label, self.zoom_label, self.engine_label):
            label.setContentsMargins(8, 0, 8, 0)
            status.addPermanentWidget(label)

    def _on_document_reset(self) -> None:
        doc = self._document
        self.size_label.setText("" if doc.is_empty else f"{doc.width} × {doc.height} px")
        self.projects.update_title()
        self._update_enabled()
        self._on_zoom_changed(self._canvas.zoom)

    def _update_enabled(self) -> None:
        has_image = not self._document.is_empty
        for name, action in self.actions.items():
            if name.startswith(_NEED_IMAGE) or name in _NEED_IMAGE_NAMES:
                action.setEnabled(has_image)

    def _on_zoom_changed(self, zoom: float) -> None:
        self.zoom_label.setText("" if self._document.is_empty else f"{zoom * 100:.4g} %")

    def _on_cursor_moved(self, position: tuple[int, int] | None) -> None:
        self.cursor_label.setText("" if position is None else f"x {position[0]}, y {position[1]}")

    def _on_original_shown(self, shown: bool) -> None:
        compare = self.actions["compare"]
        if compare.isChecked() != shown:
            compare.blockSignals(True)
            compare.setChecked(shown)
            compare.blockSignals(False)
        if shown:
            self.statusBar().showMessage("Showing the original image", 1500)
