"""The window's actions, menus and tool bar, as tables: what each command is called, its keys and its slot.

Shortcuts follow Photoshop/Krita/GIMP habits (docs/canvas.md has the whole map). Each action gets one key
sequence per key: a StandardKey plus the same key as text registers it twice on X11, and Qt then calls the
key ambiguous. The generation controller adds its own actions (Generate, Cancel, Apply) to the same table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QMenu, QSpinBox, QToolBar, QToolButton

from inpaint_studio.ui import icons
from inpaint_studio.ui.canvas.tools import MAX_SIZE, MIN_SIZE

if TYPE_CHECKING:
    from inpaint_studio.ui.window.main_window import MainWindow

Key = str | QKeySequence.StandardKey


@dataclass(frozen=True)
class ActionSpec:
    name: str
    text: str
    slot: Callable[[], Any] | None = None
    keys: tuple[Key, ...] = ()
    tip: str | None = None
    checkable: bool = False
    icon: QIcon | None = None


def _specs(w: MainWindow) -> list[ActionSpec]:
    std = QKeySequence.StandardKey
    files, masks, projects, layers, canvas, tools = (
        w.files,
        w.masks,
        w.projects,
        w.layers_panel,
        w.canvas,
        w.tool_settings,
    )
    selection, outpaint = w.selection, w.outpaint
    A = ActionSpec

    def tool(name: str, text: str, key: str, tip: str, icon: QIcon) -> ActionSpec:
        return A(f"tool_{name}", text, lambda: w.select_tool(name), (key,), tip, True, icon)

    return [
        # File
        A("new_project", "&New Project", projects.new_project, ("Ctrl+N",), "Close the work and start again"),
        A("open", "&Open…", files.open_dialog, (std.Open,), "Open an image, a project (.inpaint) or OpenRaster (.ora)"),
        A("open_project", "Open Pro&ject…", projects.open_project_dialog, ("Ctrl+Shift+O",)),
        A("save_project", "&Save Project", projects.save, ("Ctrl+S",)),
        A("save_project_as", "Save Project &As…", projects.save_as_dialog, ("Ctrl+Shift+S",)),
        A("import_ora", "&Import OpenRaster…", projects.import_ora_dialog),
        A("export_ora", "Export OpenRas&ter…", projects.export_ora_dialog, (), "Export the layers and mask"),
        A("paste", "&Paste", files.paste, (std.Paste,), "Paste an image: a new document, or a new layer"),
        A("copy_image", "&Copy Image", files.copy_image, ("Ctrl+Shift+C",), "Copy the visible image to the clipboard"),
        A("export_image", "&Export Image…", files.export_dialog, ("Ctrl+Alt+E",), "Export the visible image"),
        A("export_mask", "Export &Mask…", files.export_mask_dialog, ("Ctrl+Alt+S",)),
        A("load_mask", "&Load Mask…", files.load_mask_dialog, ("Ctrl+Alt+O",)),
        A("quit", "&Quit", w.close, ("Ctrl+Q",)),
        # Edit
        A("undo", "&Undo", w.undo, (std.Undo,)),
        A("redo", "&Redo", w.redo, ("Ctrl+Shift+Z", "Ctrl+Y")),
        A("settings", "&Settings…", w.open_settings, ("Ctrl+,",), "Where generations run: this computer or a server"),
        # View
        A("zoom_in", "Zoom &In", canvas.zoom_in, ("+", "=", "Ctrl++", "Ctrl+=")),
        A("zoom_out", "Zoom &Out", canvas.zoom_out, ("-", "Ctrl+-")),
        A("fit", "&Fit to Window", canvas.fit_to_window, ("Ctrl+0",)),
        A("actual", "&100 %", canvas.actual_pixels, ("Ctrl+1",)),
        A("toggle_mask", "Show &Mask Overlay", None, ("Ctrl+H",), checkable=True, icon=icons.mask_overlay()),
        A("compare", "Compare with &Original", None, (), "Show the original image (or hold \\)", checkable=True),
        A("overlay_color", "Mask Overlay Co&lour…", w.choose_mask_color, (), "Choose the colour of the mask overlay"),
        # Tools (the five tools are one exclusive group)
        tool("mask_brush", "Mask &Brush", "B", "Paint the area to repaint", icons.mask_brush()),
        tool("rect_select", "&Rectangle", "M", "Add a rectangle to the mask (Alt: subtract)", icons.rect_select()),
        tool("lasso", "&Lasso", "L", "Add a free-hand shape to the mask (Alt: subtract)", icons.lasso()),
        tool(
            "object_select",
            "&Select Object",
            "W",
            "Click an object to add it to the mask (Alt-click: leave a part out; drag: a box); Enter applies",
            icons.object_select(),
        ),
        tool(
            "expand", "E&xpand Canvas", "C", "Drag an edge of the image outwards to add canvas", icons.expand_canvas()
        ),
        tool("paint_brush", "&Paint Brush", "P", "Paint colour on a paint layer", icons.paint_brush()),
        tool("eyedropper", "E&yedropper", "I", "Pick the paint colour from the image", icons.eyedropper()),
        A("eraser", "&Eraser", w.toggle_eraser, ("E",), "Erase with the brush (toggle)", True, icons.eraser()),
        A("swap_erase", "S&wap Paint/Erase", w.swap_erase, ("X",)),
        A("size_up", "Bigger Brush", tools.bigger, ("]",)),
        A("size_down", "Smaller Brush", tools.smaller, ("[",)),
        # One sequence each: on X11 "Shift+[" also matches "{", and two matches make Qt drop the key.
        A("harder", "Harder Brush", tools.harder, ("Shift+]",)),
        A("softer", "Softer Brush", tools.softer, ("Shift+[",)),
        A("paint_color", "Paint &Colour…", w.choose_color, (), "Choose the paint colour"),
        A("selection_model", "Selection &Model…", selection.choose_model, (), "The model the Select tool uses"),
        # Image
        A("expand_canvas", "&Expand Canvas…", outpaint.expand_dialog, ("Ctrl+Alt+C",), "Add canvas and fill it"),
        # Mask
        A("mask_clear", "&Clear Mask", masks.clear, ("Ctrl+D", "Ctrl+Shift+A")),
        A("mask_all", "Mask &Everything", masks.fill, ("Ctrl+A",)),
        A("mask_invert", "&Invert Mask", masks.invert, ("Ctrl+I", "Ctrl+Shift+I")),
        A("mask_grow", "&Grow Mask…", masks.grow_dialog),
        A("mask_shrink", "&Shrink Mask…", masks.shrink_dialog),
        A("mask_feather", "&Feather Mask…", masks.feather_dialog),
        A(
            "keep_mask_after_apply",
            "&Keep Mask After Apply",
            None,
            (),
            "Keep the mask when a result is applied (off: Apply clears it, in the same undo step)",
            checkable=True,
        ),
        # Layer
        A("layer_new", "&New Paint Layer", layers.add_paint_layer, ("Ctrl+Shift+N",)),
        A("layer_duplicate", "&Duplicate Layer", layers.duplicate_active, ("Ctrl+J",)),
        A("layer_rename", "&Rename Layer", layers.rename_active, ("F2",)),
        A("layer_merge_down", "&Merge Down", layers.merge_down_active, ("Ctrl+E",)),
        A("layer_delete", "De&lete Layer", layers.delete_active),
        A("layer_flatten", "&Flatten Image", layers.flatten, ("Ctrl+Shift+E",)),
    ]


TOOLS = (
    "tool_mask_brush",
    "tool_rect_select",
    "tool_lasso",
    "tool_object_select",
    "tool_paint_brush",
    "tool_eyedropper",
    "tool_expand",
)
# Menu layout: names of actions, None for a separator, "@recent" / "@panels" for the two sub-menus.
MENUS: dict[str, tuple[str | None, ...]] = {
    "&File": (
        "new_project",
        "open",
        "open_project",
        "@recent",
        None,
        "save_project",
        "save_project_as",
        None,
        "import_ora",
        "export_ora",
        "export_image",
        "export_mask",
        "load_mask",
        None,
        "paste",
        "copy_image",
        None,
        "quit",
    ),
    "&Edit": ("undo", "redo", None, "copy_image", "paste", None, "settings"),
    "&Image": ("expand_canvas", "tool_expand", None, "upscale", "upscale_x2", "upscale_x4"),
    "&View": ("zoom_in", "zoom_out", "fit", "actual", None, "toggle_mask", "overlay_color", "compare", None, "@panels"),
    "&Tools": (
        *TOOLS,
        None,
        "eraser",
        "swap_erase",
        "size_up",
        "size_down",
        "harder",
        "softer",
        "paint_color",
        None,
        "selection_model",
    ),
    "&Mask": (
        "mask_clear",
        "mask_all",
        "mask_invert",
        "mask_grow",
        "mask_shrink",
        "mask_feather",
        None,
        "load_mask",
        "export_mask",
        None,
        "keep_mask_after_apply",
    ),
    "&Layer": (
        "layer_new",
        "layer_duplicate",
        "layer_rename",
        "layer_merge_down",
        "layer_delete",
        None,
        "layer_flatten",
    ),
}


def create_actions(window: MainWindow) -> None:
    """Create every action of the table on the window (shortcuts work even when a menu is hidden)."""
    group = QActionGroup(window)
    group.setExclusive(True)
    for spec in _specs(window):
        action = QAction(spec.text, window)
        action.setObjectName(spec.name)
        sequences = [QKeySequence(k) for k in spec.keys]
        if sequences:
            action.setShortcuts(sequences)
        shortcut = sequences[0].toString(QKeySequence.SequenceFormat.NativeText) if sequences else ""
        tip = spec.tip or spec.text.replace("&", "").rstrip(".…")
        action.setToolTip(tip + (f" ({shortcut})" if shortcut else ""))
        action.setCheckable(spec.checkable)
        if spec.icon is not None:
            action.setIcon(spec.icon)
        if spec.slot is not None:
            action.triggered.connect(lambda _checked=False, s=spec.slot: window.ctx.guarded(s))
        window.addAction(action)
        window.actions[spec.name] = action
        if spec.name in TOOLS:
            group.addAction(action)
    window.actions["tool_mask_brush"].setChecked(True)


def create_menus(window: MainWindow, recent: QMenu, panels: QMenu) -> None:
    bar = window.menuBar()
    for title, names in MENUS.items():
        menu = bar.addMenu(title)
        for name in names:
            if name is None:
                menu.addSeparator()
            elif name == "@recent":
                recent.setTitle("Open &Recent")
                menu.addMenu(recent)
            elif name == "@panels":
                panels.setTitle("&Panels")
                menu.addMenu(panels)
            else:
                menu.addAction(window.actions[name])


def create_tool_bar(window: MainWindow) -> QToolBar:
    """Tools, the paint colour, brush size and hardness fields, and the mask overlay switch."""
    bar = QToolBar("Tools", window)
    bar.setObjectName("toolbar_tools")
    bar.setMovable(True)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    act = window.actions
    for name in ("tool_mask_brush", "eraser", "tool_rect_select", "tool_lasso", "tool_object_select"):
        bar.addAction(act[name])
    bar.addSeparator()
    for name in ("tool_paint_brush", "tool_eyedropper", "tool_expand"):
        bar.addAction(act[name])
    window.color_button = QToolButton(bar)
    window.color_button.setDefaultAction(act["paint_color"])
    bar.addWidget(window.color_button)
    bar.addSeparator()
    tools, canvas = window.tool_settings, window.canvas
    bar.addWidget(QLabel(" Size ", bar))
    window.size_spin = _field(bar, MIN_SIZE, MAX_SIZE, " px", "Brush diameter in image pixels ([ and ])")
    window.size_spin.valueChanged.connect(lambda v: tools.set_size(v))
    # Enter in a tool bar field returns to the canvas, so the tool keys work again at once.
    window.size_spin.lineEdit().returnPressed.connect(canvas.setFocus)
    bar.addWidget(window.size_spin)
    bar.addWidget(QLabel(" Hardness ", bar))
    window.hardness_spin = _field(bar, 0, 100, " %", "Brush edge hardness (Shift+[ and Shift+])")
    window.hardness_spin.valueChanged.connect(lambda v: tools.set_hardness(v / 100))
    window.hardness_spin.lineEdit().returnPressed.connect(canvas.setFocus)
    bar.addWidget(window.hardness_spin)
    bar.addSeparator()
    bar.addAction(act["toggle_mask"])
    window.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
    return bar


def _field(bar: QToolBar, low: float, high: float, suffix: str, tip: str) -> QSpinBox:
    spin = QSpinBox(bar)
    spin.setRange(int(low), int(high))
    spin.setSuffix(suffix)
    spin.setToolTip(tip)
    spin.setKeyboardTracking(False)
    return spin
