"""The main window: canvas in the centre, dockable panels, menus, tool bar, status bar, message bar.

Hooks for other panels (Generate, History, ...):

* `MainWindow.document` - the one `Document` of this window. It is never replaced: opening an image calls
  ``document.reset_from(...)``, which fires ``document.reset``; connect once.
* `MainWindow.undo_stack` - push every edit here. To apply a result as a new layer:
  ``window.undo_stack.push(AddLayerCommand(window.document, layer))`` or
  ``commands.add_image_layer(window.undo_stack, window.document, pil_image, "Result", metadata={...})``.
* `MainWindow.canvas`, `MainWindow.message_bar` (``show_error(text)`` / ``show_info(text)``),
  `MainWindow.add_panel(widget, title, area) -> QDockWidget`, `MainWindow.set_engine_status(text)`,
  `MainWindow.run_guarded(fn, *args)` (runs fn, turning exceptions into a message bar error),
  `MainWindow.actions` (every QAction by name), and the ``document_opened(str)`` signal (path or "").
* `MainWindow.projects` - the ProjectController (ui/project_controller.py): project path, save/open,
  autosave and recovery (``projects.autosave``) and the memory budget (``projects.memory``).

Files: Open accepts images, projects (.inpaint) and OpenRaster (.ora); so do the command line, drag and drop
and Open Recent. See docs/canvas.md for the shortcut map.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from PIL import Image
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QColorDialog,
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QSpinBox,
    QToolBar,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core import imageio, mask_ops
from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.parameters import looks_like_parameters
from inpaint_studio.ui import icons, qt_images
from inpaint_studio.ui.canvas.tools import MAX_SIZE, MIN_SIZE, ToolSettings
from inpaint_studio.ui.canvas.widget import Canvas
from inpaint_studio.ui.document.commands import AddLayerCommand, UndoStack, mask_change
from inpaint_studio.ui.panels.layers_panel import LayersPanel
from inpaint_studio.ui.panels.message_bar import MessageBar

log = logging.getLogger(__name__)
T = TypeVar("T")

APP_NAME = "Inpaint Studio"
RECENT_KEY = "recent_files"
MAX_RECENT = 10
UNDO_LIMIT = 300  # strokes store only their bounding box, so this is a generous history
IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp);;All files (*)"
OPEN_FILTER = (
    "Images, projects and OpenRaster (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp *.inpaint *.ora);;"
    "Inpaint Studio projects (*.inpaint);;OpenRaster (*.ora);;" + IMAGE_FILTER
)
EXPORT_FILTER = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp);;TIFF (*.tif *.tiff);;BMP (*.bmp)"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
PROJECT_SUFFIX = ".inpaint"
ORA_SUFFIX = ".ora"
DOCUMENT_SUFFIXES = {PROJECT_SUFFIX, ORA_SUFFIX}  # always open as the document, never as a layer
ENGINE_PLACEHOLDER = "Engine: not loaded"
MIN_BRUSH_ON_SCREEN = 24  # logical pixels


class MainWindow(QMainWindow):
    """One document per window; see the module docstring for the hooks other panels use."""

    document_opened = Signal(str)  # path of the opened image, "" for a pasted one

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else QSettings()
        self._document = Document()
        self._undo_stack = UndoStack(self)
        self._undo_stack.setUndoLimit(UNDO_LIMIT)
        self.tool_settings = ToolSettings(self)
        self.actions: dict[str, QAction] = {}

        self._canvas = Canvas(self._document, self._undo_stack, self.tool_settings, self)
        self._message_bar = MessageBar(self)
        central = QWidget(self)
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self._message_bar)
        layout.addWidget(self._canvas, 1)
        self.setCentralWidget(central)

        self.layers_panel = LayersPanel(self._document, self._undo_stack, self)
        self.layers_dock = self.add_panel(self.layers_panel, "Layers", Qt.DockWidgetArea.RightDockWidgetArea)

        self._create_actions()
        self._create_menus()
        self._create_tool_bar()
        self._create_status_bar()
        self.setAcceptDrops(True)
        self.setDockOptions(QMainWindow.DockOption.AnimatedDocks | QMainWindow.DockOption.AllowTabbedDocks)

        self._undo_stack.cleanChanged.connect(self._update_title)
        self._document.reset.connect(self._on_document_reset)
        self._document.layers_changed.connect(self._update_enabled)
        self._canvas.zoom_changed.connect(self._on_zoom_changed)
        self._canvas.cursor_moved.connect(self._on_cursor_moved)
        self._canvas.tool_changed.connect(self._on_tool_changed)
        self._canvas.mask_visible_changed.connect(self.actions["toggle_mask"].setChecked)
        self._canvas.original_shown.connect(self._on_original_shown)
        self.tool_settings.changed.connect(self._on_tool_settings_changed)

        self.resize(1280, 840)
        from inpaint_studio.ui.controllers.generation import install_generation  # Generate, Results, History
        from inpaint_studio.ui.controllers.projects import install_projects  # save/open, autosave, budget
        from inpaint_studio.ui.window.shortcut_guard import install_shortcut_guard

        install_generation(self)
        self.projects = install_projects(self)
        install_shortcut_guard()
        self._restore_window_state()
        self._on_document_reset()
        self._on_tool_settings_changed()

    # ----------------------------------------------------------------- hooks for other code
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
        panels_menu: QMenu | None = getattr(self, "_panels_menu", None)
        if panels_menu is not None:
            panels_menu.addAction(dock.toggleViewAction())
        return dock

    def set_engine_status(self, text: str) -> None:
        """The device/engine text in the status bar (e.g. "Engine: CUDA, SDXL loaded")."""
        self.engine_label.setText(text)

    def run_guarded(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run fn; an error becomes one message in the message bar instead of a crash or a dialog."""
        try:
            return fn(*args, **kwargs)
        except InpaintStudioError as error:
            self._message_bar.show_error(str(error))
        except MemoryError:
            self._message_bar.show_error(
                "There is not enough memory for this; close other programs or work on a smaller image."
            )
        except Exception as error:  # the one place that turns surprises into a message
            log.exception("unexpected error")
            self._message_bar.show_error(f"Unexpected error: {error}. The details are in the log.")
        return None

    # ----------------------------------------------------------------- actions
    def _action(
        self,
        name: str,
        text: str,
        slot: Callable[[], Any] | None = None,
        shortcuts: Iterable[str | QKeySequence | QKeySequence.StandardKey] = (),
        tip: str | None = None,
        checkable: bool = False,
        icon: Any = None,
    ) -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        sequences = [QKeySequence(s) for s in shortcuts]
        if sequences:
            action.setShortcuts(sequences)
        shortcut_text = sequences[0].toString(QKeySequence.SequenceFormat.NativeText) if sequences else ""
        action.setToolTip(
            f"{tip or text.replace('&', '').rstrip('.…')}" + (f" ({shortcut_text})" if shortcut_text else "")
        )
        action.setCheckable(checkable)
        if icon is not None:
            action.setIcon(icon)
        if slot is not None:
            action.triggered.connect(lambda _checked=False, s=slot: self.run_guarded(s))
        self.addAction(action)  # shortcuts work even when a menu or the tool bar is hidden
        self.actions[name] = action
        return action

    def _create_actions(self) -> None:
        a = self._action
        std = QKeySequence.StandardKey
        # Each action gets one sequence per key: a StandardKey plus the same key as text (Quit was
        # [StandardKey.Quit, "Ctrl+Q"]) registers it twice on X11, and Qt then calls the key ambiguous.
        a(
            "new_project",
            "&New Project",
            lambda: self.projects.new_project(),
            ["Ctrl+N"],
            "Close the work and start again",
        )
        a("open", "&Open…", self.open_dialog, [std.Open], "Open an image, a project (.inpaint) or OpenRaster (.ora)")
        a("open_project", "Open Pro&ject…", lambda: self.projects.open_project_dialog(), ["Ctrl+Shift+O"])
        a("save_project", "&Save Project", lambda: self.projects.save(), ["Ctrl+S"])
        a("save_project_as", "Save Project &As…", lambda: self.projects.save_as_dialog(), ["Ctrl+Shift+S"])
        a("import_ora", "&Import OpenRaster…", lambda: self.projects.import_ora_dialog(), [])
        a(
            "export_ora",
            "Export OpenRas&ter…",
            lambda: self.projects.export_ora_dialog(),
            [],
            "Export the layers and mask",
        )
        a("paste", "&Paste", self.paste, [std.Paste], "Paste an image: a new document, or a new layer")
        a("copy_image", "&Copy Image", self.copy_image, ["Ctrl+Shift+C"], "Copy the visible image to the clipboard")
        a("export_image", "&Export Image…", self.export_dialog, ["Ctrl+Alt+E"], "Export the visible image")
        a("export_mask", "Export &Mask…", self.export_mask_dialog, ["Ctrl+Alt+S"])
        a("load_mask", "&Load Mask…", self.load_mask_dialog, ["Ctrl+Alt+O"])
        a("quit", "&Quit", self.close, ["Ctrl+Q"])

        undo = a("undo", "&Undo", self.undo, [std.Undo])
        redo = a("redo", "&Redo", self.redo, ["Ctrl+Shift+Z", "Ctrl+Y"])
        undo.setEnabled(False)
        redo.setEnabled(False)
        self._undo_stack.canUndoChanged.connect(undo.setEnabled)
        self._undo_stack.canRedoChanged.connect(redo.setEnabled)
        self._undo_stack.undoTextChanged.connect(lambda t: undo.setText(f"&Undo {t}".strip()))
        self._undo_stack.redoTextChanged.connect(lambda t: redo.setText(f"&Redo {t}".strip()))

        a("zoom_in", "Zoom &In", self._canvas.zoom_in, ["+", "=", "Ctrl++", "Ctrl+="])
        a("zoom_out", "Zoom &Out", self._canvas.zoom_out, ["-", "Ctrl+-"])
        a("fit", "&Fit to Window", self._canvas.fit_to_window, ["Ctrl+0"])
        a("actual", "&100 %", self._canvas.actual_pixels, ["Ctrl+1"])
        toggle_mask = a(
            "toggle_mask", "Show &Mask Overlay", None, ["Ctrl+H"], checkable=True, icon=icons.mask_overlay()
        )
        toggle_mask.setChecked(True)
        toggle_mask.toggled.connect(self._canvas.set_show_mask)
        compare = a(
            "compare", "Compare with &Original", None, [], "Show the original image (or hold \\)", checkable=True
        )
        compare.toggled.connect(self._canvas.set_show_original)

        group = QActionGroup(self)
        group.setExclusive(True)
        tool_specs = [
            ("mask_brush", "Mask &Brush", "B", icons.mask_brush(), "Paint the area to repaint"),
            ("rect_select", "&Rectangle", "M", icons.rect_select(), "Add a rectangle to the mask (Alt: subtract)"),
            ("lasso", "&Lasso", "L", icons.lasso(), "Add a free-hand shape to the mask (Alt: subtract)"),
            ("paint_brush", "&Paint Brush", "P", icons.paint_brush(), "Paint colour on a paint layer"),
            ("eyedropper", "E&yedropper", "I", icons.eyedropper(), "Pick the paint colour from the image"),
        ]
        for name, text, key, icon, tip in tool_specs:
            action = a(f"tool_{name}", text, lambda n=name: self.select_tool(n), [key], tip, True, icon)
            group.addAction(action)
        self.actions["tool_mask_brush"].setChecked(True)
        a("eraser", "&Eraser", self.toggle_eraser, ["E"], "Erase with the brush (toggle)", True, icons.eraser())
        a("swap_erase", "S&wap Paint/Erase", self.swap_erase, ["X"])
        a("size_up", "Bigger Brush", self.tool_settings.bigger, ["]"])
        a("size_down", "Smaller Brush", self.tool_settings.smaller, ["["])
        # One sequence each: on X11 "Shift+[" also matches "{", and two matches make Qt drop the key.
        a("harder", "Harder Brush", self.tool_settings.harder, ["Shift+]"])
        a("softer", "Softer Brush", self.tool_settings.softer, ["Shift+["])
        a("paint_color", "Paint &Colour…", self.choose_color, [], "Choose the paint colour")

        a("mask_clear", "&Clear Mask", self.clear_mask, ["Ctrl+D", "Ctrl+Shift+A"])
        a("mask_all", "Mask &Everything", self.fill_mask, ["Ctrl+A"])
        a("mask_invert", "&Invert Mask", self.invert_mask, ["Ctrl+I", "Ctrl+Shift+I"])
        a("mask_grow", "&Grow Mask…", self.grow_mask_dialog)
        a("mask_shrink", "&Shrink Mask…", self.shrink_mask_dialog)
        a("mask_feather", "&Feather Mask…", self.feather_mask_dialog)

        layers = self.layers_panel
        a("layer_new", "&New Paint Layer", layers.add_paint_layer, ["Ctrl+Shift+N"])
        a("layer_duplicate", "&Duplicate Layer", layers.duplicate_active, ["Ctrl+J"])
        a("layer_rename", "&Rename Layer", layers.rename_active, ["F2"])
        a("layer_merge_down", "&Merge Down", layers.merge_down_active, ["Ctrl+E"])
        a("layer_delete", "De&lete Layer", layers.delete_active, [])
        a("layer_flatten", "&Flatten Image", layers.flatten, ["Ctrl+Shift+E"])

    def _create_menus(self) -> None:
        bar = self.menuBar()
        act = self.actions
        file_menu = bar.addMenu("&File")
        for name in ("new_project", "open", "open_project"):
            file_menu.addAction(act[name])
        self._recent_menu = file_menu.addMenu("Open &Recent")
        self._recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addSeparator()
        file_menu.addAction(act["save_project"])
        file_menu.addAction(act["save_project_as"])
        file_menu.addSeparator()
        for name in ("import_ora", "export_ora", "export_image", "export_mask", "load_mask"):
            file_menu.addAction(act[name])
        file_menu.addSeparator()
        file_menu.addAction(act["paste"])
        file_menu.addAction(act["copy_image"])
        file_menu.addSeparator()
        file_menu.addAction(act["quit"])

        edit = bar.addMenu("&Edit")
        for name in ("undo", "redo"):
            edit.addAction(act[name])
        edit.addSeparator()
        edit.addAction(act["copy_image"])
        edit.addAction(act["paste"])

        view = bar.addMenu("&View")
        for name in ("zoom_in", "zoom_out", "fit", "actual"):
            view.addAction(act[name])
        view.addSeparator()
        view.addAction(act["toggle_mask"])
        view.addAction(act["compare"])
        view.addSeparator()
        self._panels_menu = view.addMenu("&Panels")
        self._panels_menu.addAction(self.layers_dock.toggleViewAction())

        tools = bar.addMenu("&Tools")
        for name in ("tool_mask_brush", "tool_rect_select", "tool_lasso", "tool_paint_brush", "tool_eyedropper"):
            tools.addAction(act[name])
        tools.addSeparator()
        for name in ("eraser", "swap_erase", "size_up", "size_down", "harder", "softer", "paint_color"):
            tools.addAction(act[name])

        mask = bar.addMenu("&Mask")
        for name in ("mask_clear", "mask_all", "mask_invert", "mask_grow", "mask_shrink", "mask_feather"):
            mask.addAction(act[name])
        mask.addSeparator()
        mask.addAction(act["load_mask"])
        mask.addAction(act["export_mask"])

        layer = bar.addMenu("&Layer")
        for name in ("layer_new", "layer_duplicate", "layer_rename", "layer_merge_down", "layer_delete"):
            layer.addAction(act[name])
        layer.addSeparator()
        layer.addAction(act["layer_flatten"])

    def _create_tool_bar(self) -> None:
        bar = QToolBar("Tools", self)
        bar.setObjectName("toolbar_tools")
        bar.setMovable(True)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        act = self.actions
        for name in ("tool_mask_brush", "eraser", "tool_rect_select", "tool_lasso"):
            bar.addAction(act[name])
        bar.addSeparator()
        for name in ("tool_paint_brush", "tool_eyedropper"):
            bar.addAction(act[name])
        self.color_button = QToolButton(bar)
        self.color_button.setDefaultAction(act["paint_color"])
        bar.addWidget(self.color_button)
        bar.addSeparator()

        bar.addWidget(QLabel(" Size ", bar))
        self.size_spin = QSpinBox(bar)
        self.size_spin.setRange(int(MIN_SIZE), int(MAX_SIZE))
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Brush diameter in image pixels ([ and ])")
        self.size_spin.setKeyboardTracking(False)
        self.size_spin.valueChanged.connect(lambda v: self.tool_settings.set_size(v))
        # Enter in a tool bar field returns to the canvas, so the tool keys work again at once.
        self.size_spin.lineEdit().returnPressed.connect(self._canvas.setFocus)
        bar.addWidget(self.size_spin)
        bar.addWidget(QLabel(" Hardness ", bar))
        self.hardness_spin = QSpinBox(bar)
        self.hardness_spin.setRange(0, 100)
        self.hardness_spin.setSuffix(" %")
        self.hardness_spin.setToolTip("Brush edge hardness (Shift+[ and Shift+])")
        self.hardness_spin.setKeyboardTracking(False)
        self.hardness_spin.valueChanged.connect(lambda v: self.tool_settings.set_hardness(v / 100))
        self.hardness_spin.lineEdit().returnPressed.connect(self._canvas.setFocus)
        bar.addWidget(self.hardness_spin)
        bar.addSeparator()
        bar.addAction(act["toggle_mask"])
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.tool_bar = bar

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

    def choose_color(self) -> None:
        initial = QColor(*self.tool_settings.color)
        color = QColorDialog.getColor(initial, self, "Paint colour")
        if color.isValid():
            self.tool_settings.set_color((color.red(), color.green(), color.blue()))
            self.select_tool("paint_brush")

    def _on_tool_changed(self, name: str) -> None:
        action = self.actions.get(f"tool_{name}")
        if action is not None:
            action.setChecked(True)

    def _on_tool_settings_changed(self) -> None:
        settings = self.tool_settings
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

    # ----------------------------------------------------------------- undo
    def undo(self) -> None:
        self._canvas.finish_gesture()  # a stroke in progress becomes its own step first
        self._undo_stack.undo()

    def redo(self) -> None:
        self._canvas.finish_gesture()
        self._undo_stack.redo()

    # ----------------------------------------------------------------- opening
    def open_dialog(self) -> None:
        start = str(self.settings.value("last_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open", start, OPEN_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | os.PathLike[str], confirm: bool = True) -> bool:
        """Open an image, a project (.inpaint) or an OpenRaster file as the document (asking about unsaved
        work first); False if not opened. Errors (missing, damaged, unsupported file) show in the message bar.
        """
        suffix = Path(path).suffix.lower()
        if suffix == PROJECT_SUFFIX:
            return self.projects.open_project(path, confirm=confirm)
        if suffix == ORA_SUFFIX:
            return self.projects.open_ora(path, confirm=confirm)
        if confirm and not self.maybe_save():
            return False
        loaded = self.run_guarded(imageio.load_image, path)
        if loaded is None:
            return False
        document = Document.from_image(loaded.image, name="Background")
        document.metadata = {
            "path": str(path),
            "icc_profile": loaded.icc_profile,
            "exif": loaded.exif,
            "parameters": loaded.parameters,
        }
        self.set_document(document)
        self.add_recent(str(path))
        self.settings.setValue("last_dir", str(Path(path).parent))
        self.document_opened.emit(str(path))
        if loaded.parameters and looks_like_parameters(loaded.parameters):
            self.generation.offer_parameters(loaded.parameters)
        return True

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

    def insert_image_as_layer(self, image: Image.Image, name: str) -> Layer | None:
        """Add an image as a new paint layer, centred on the document (cropped if larger); undoable."""
        doc = self._document
        if doc.is_empty:
            self.open_image(image, name)
            return None
        rgba = np.asarray(image.convert("RGBA"))
        layer = doc.new_layer(doc.unique_name(name))
        h, w = rgba.shape[:2]
        x, y = (doc.width - w) // 2, (doc.height - h) // 2
        sx, sy = max(0, -x), max(0, -y)
        dx, dy = max(0, x), max(0, y)
        cw, ch = min(w - sx, doc.width - dx), min(h - sy, doc.height - dy)
        layer.pixels[dy : dy + ch, dx : dx + cw] = rgba[sy : sy + ch, sx : sx + cw]
        active = doc.active_layer
        index = doc.index_of(active.id) + 1 if active is not None else None
        self._undo_stack.push(AddLayerCommand(doc, layer, index, f"Add “{layer.name}”"))
        if (w, h) != doc.size:
            self._message_bar.show_info(
                f"“{name}” is {w}×{h} and the image is {doc.width}×{doc.height}: it was centred as a new layer."
            )
        return layer

    def open_or_insert(self, paths: list[str]) -> None:
        """Drop/paste rule: with no image open the first file opens and the rest become layers;
        with an image open every file becomes a new layer (like placing a file in Photoshop)."""
        for path in paths:
            if Path(path).suffix.lower() in DOCUMENT_SUFFIXES:
                self.open_path(path)  # a project or layered file replaces the work (asking to save it)
                continue
            if self._document.is_empty:
                self.open_path(path, confirm=False)
                continue
            loaded = self.run_guarded(imageio.load_image, path)
            if loaded is not None:
                self.insert_image_as_layer(loaded.image, Path(path).stem)

    def paste(self) -> None:
        """Ctrl+V: the clipboard's image (or image files) as a new document when none is open, else a layer."""
        mime = QGuiApplication.clipboard().mimeData()
        paths = _local_image_paths(mime.urls()) if mime is not None and mime.hasUrls() else []
        if paths:
            self.open_or_insert(paths)
            return
        if mime is None or not mime.hasImage():
            self._message_bar.show_info("The clipboard holds no image to paste.")
            return
        image = qt_images.qimage_to_pil(QGuiApplication.clipboard().image())
        if image is None:
            self._message_bar.show_error("The clipboard image could not be read; copy it again and paste.")
            return
        if self._document.is_empty:
            self.open_image(image, "Pasted image")
        else:
            self.insert_image_as_layer(image, "Pasted")

    def copy_image(self) -> None:
        if self._require_image():
            QGuiApplication.clipboard().setImage(qt_images.pil_to_qimage(self._document.flattened()))
            self._message_bar.show_info("The visible image was copied to the clipboard.")

    # ----------------------------------------------------------------- export
    def export_dialog(self) -> bool:
        if not self._require_image():
            return False
        source = self._document.metadata.get("path") or ""
        stem = Path(source).stem if source else "image"
        start = Path(str(self.settings.value("export_dir", str(Path(source).parent if source else Path.home()))))
        path, _ = QFileDialog.getSaveFileName(self, "Export image", str(start / f"{stem}-edited.png"), EXPORT_FILTER)
        return bool(path) and self.export_image(path)

    def export_image(self, path: str | os.PathLike[str]) -> bool:
        """Write the flattened image (format by extension, keeping ICC profile and parameters); True on success."""
        if not self._require_image():
            return False
        doc = self._document
        rgba = doc.composite()  # once: a 6000x4000 composite takes a noticeable moment
        image = Image.fromarray(rgba, "RGBA")
        if bool((rgba[..., 3] == 255).all()):
            image = image.convert("RGB")  # no alpha channel in the file when nothing is transparent
        meta = doc.metadata
        written = self.run_guarded(
            imageio.save_image,
            image,
            path,
            parameters=meta.get("parameters"),
            icc_profile=meta.get("icc_profile"),
            exif=meta.get("exif"),
        )
        if written is None:
            return False
        if self.projects.path is None:
            # Not a project (yet): for an image-only workflow the export is the save.
            self.projects.mark_saved()
        self.settings.setValue("export_dir", str(Path(path).parent))
        self._message_bar.show_info(f"Exported {Path(path).name}.")
        return True

    def export_mask_dialog(self) -> None:
        if not self._require_image():
            return
        source = self._document.metadata.get("path") or ""
        stem = Path(source).stem if source else "image"
        start = Path(str(self.settings.value("export_dir", str(Path.home()))))
        path, _ = QFileDialog.getSaveFileName(self, "Export mask", str(start / f"{stem}-mask.png"), EXPORT_FILTER)
        if path:
            self.export_mask(path)

    def export_mask(self, path: str | os.PathLike[str]) -> bool:
        """Write the mask as a greyscale image (white = repaint)."""
        if not self._require_image():
            return False
        mask = Image.fromarray(self._document.mask, "L")
        if self.run_guarded(imageio.save_image, mask, path) is None:
            return False
        self._message_bar.show_info(f"Exported the mask to {Path(path).name}.")
        return True

    def load_mask_dialog(self) -> None:
        if not self._require_image():
            return
        start = str(self.settings.value("last_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Load mask", start, IMAGE_FILTER)
        if path:
            self.load_mask(path)

    def load_mask(self, path: str | os.PathLike[str]) -> bool:
        """Replace the mask by a mask image of the same size (undoable)."""
        if not self._require_image():
            return False
        mask = self.run_guarded(imageio.load_mask, path, self._document.size)
        if mask is None:
            return False
        self._push_mask(np.asarray(mask, np.uint8), "Load mask")
        return True

    # ----------------------------------------------------------------- mask operations
    def _push_mask(self, new_mask: np.ndarray, text: str) -> None:
        self._canvas.finish_gesture()
        command = mask_change(self._document, new_mask, text)
        if command is not None:
            self._undo_stack.push(command)

    def clear_mask(self) -> None:
        if self._require_image(quiet=True):
            self._push_mask(np.zeros_like(self._document.mask), "Clear mask")

    def fill_mask(self) -> None:
        if self._require_image(quiet=True):
            self._push_mask(np.full_like(self._document.mask, 255), "Mask everything")

    def invert_mask(self) -> None:
        if self._require_image(quiet=True):
            self._push_mask(mask_ops.invert(self._document.mask), "Invert mask")

    def grow_mask(self, px: int) -> None:
        if self._require_image(quiet=True):
            self._push_mask(mask_ops.grow(self._document.mask, px), f"Grow mask by {px} px")

    def shrink_mask(self, px: int) -> None:
        if self._require_image(quiet=True):
            self._push_mask(mask_ops.shrink(self._document.mask, px), f"Shrink mask by {px} px")

    def feather_mask(self, px: int) -> None:
        if self._require_image(quiet=True):
            self._push_mask(mask_ops.feather(self._document.mask, px), f"Feather mask by {px} px")

    def _ask_pixels(self, key: str, title: str, label: str, default: int) -> int | None:
        if not self._require_image():
            return None
        last = int(self.settings.value(key, default))
        value, ok = QInputDialog.getInt(self, title, label, last, 1, 1000)
        if not ok:
            return None
        self.settings.setValue(key, value)
        return value

    def grow_mask_dialog(self) -> None:
        px = self._ask_pixels("mask/grow_px", "Grow mask", "Grow by (pixels):", 8)
        if px:
            self.grow_mask(px)

    def shrink_mask_dialog(self) -> None:
        px = self._ask_pixels("mask/shrink_px", "Shrink mask", "Shrink by (pixels):", 8)
        if px:
            self.shrink_mask(px)

    def feather_mask_dialog(self) -> None:
        px = self._ask_pixels("mask/feather_px", "Feather mask", "Feather radius (pixels):", 8)
        if px:
            self.feather_mask(px)

    # ----------------------------------------------------------------- recent files
    def recent_files(self) -> list[str]:
        value = self.settings.value(RECENT_KEY, [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value or []]

    def add_recent(self, path: str) -> None:
        """Put a file first in Open Recent."""
        path = str(Path(path).resolve()) if Path(path).exists() else path
        files = [path] + [p for p in self.recent_files() if p != path]
        self.settings.setValue(RECENT_KEY, files[:MAX_RECENT])

    def _fill_recent_menu(self) -> None:
        menu = self._recent_menu
        menu.clear()
        files = self.recent_files()
        for index, path in enumerate(files):
            label = f"&{index + 1} {Path(path).name}" if index < 9 else Path(path).name
            action = menu.addAction(label)
            action.setToolTip(path)
            action.setStatusTip(path)
            action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        if not files:
            menu.addAction("No recent files").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear Recent", lambda: self.settings.setValue(RECENT_KEY, []))

    # ----------------------------------------------------------------- unsaved work
    def maybe_save(self) -> bool:
        """Ask Save / Discard / Cancel when there is unsaved work (Save saves the project, Save As when
        it has no file yet); True when it is fine to go on."""
        self._canvas.finish_gesture()
        return self.projects.maybe_save()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.maybe_save():
            event.ignore()
            return
        self.projects.wait_idle()  # a save or autosave in flight finishes first
        self.projects.autosave.discard()  # a clean exit: nothing to recover
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        event.accept()

    def _restore_window_state(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)

    # ----------------------------------------------------------------- drag and drop
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        mime = event.mimeData()
        if (mime.hasUrls() and _local_image_paths(mime.urls(), any_file=True)) or mime.hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:
        mime = event.mimeData()
        paths = _local_image_paths(mime.urls(), any_file=True) if mime.hasUrls() else []
        event.acceptProposedAction()
        if paths:
            # Let the drag finish before any question or slow load runs.
            QTimer.singleShot(0, lambda: self.run_guarded(self.open_or_insert, paths))
        elif mime.hasImage():
            image = qt_images.qimage_to_pil(QImage(mime.imageData()))
            if image is not None:
                QTimer.singleShot(0, lambda: self.run_guarded(self.insert_image_as_layer, image, "Dropped"))

    # ----------------------------------------------------------------- status and state
    def _require_image(self, quiet: bool = False) -> bool:
        if self._document.is_empty:
            if not quiet:
                self._message_bar.show_info("Open an image first (Ctrl+O), or paste one (Ctrl+V).")
            return False
        return True

    def _on_document_reset(self) -> None:
        doc = self._document
        self.size_label.setText("" if doc.is_empty else f"{doc.width} × {doc.height} px")
        self._update_title()
        self._update_enabled()
        self._on_zoom_changed(self._canvas.zoom)

    def _update_enabled(self) -> None:
        has_image = not self._document.is_empty
        for name, action in self.actions.items():
            if name.startswith(("mask_", "layer_", "export_", "tool_", "save_")) or name in (
                "copy_image",
                "load_mask",
                "fit",
                "actual",
                "zoom_in",
                "zoom_out",
                "compare",
            ):
                action.setEnabled(has_image)

    def _update_title(self) -> None:
        projects = getattr(self, "projects", None)
        if projects is not None:
            projects.update_title()  # the project's name and unsaved mark
        else:
            self.setWindowTitle(APP_NAME)  # during construction

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


def _local_image_paths(urls: Iterable[Any], any_file: bool = False) -> list[str]:
    """Local file paths among urls; image extensions only unless any_file (load_image then explains)."""
    paths = []
    for url in urls:
        if url.isLocalFile():
            path = url.toLocalFile()
            if any_file or Path(path).suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
    return paths
