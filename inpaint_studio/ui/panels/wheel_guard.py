"""The mouse wheel scrolls a panel; it changes a number or a choice only in the control that has focus.

Qt's spin boxes, combo boxes and sliders take every wheel event over them, so scrolling down a long panel
changed whatever value passed under the pointer (the Sampler became "DEIS" on the way to the Generate
button). Here such a control ignores the wheel until the user has clicked or tabbed into it; the event
then travels on to its parents, and the scroll area around the panel scrolls, as in Krita's and Blender's
panels. Controls also stop taking focus from the wheel (WheelFocus -> StrongFocus), or the first notch
would focus them and the second change them.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QComboBox, QScrollBar, QWidget

GUARDED = (QAbstractSpinBox, QComboBox, QAbstractSlider)


class WheelGuard(QObject):
    """Event filter: a wheel event over an unfocused guarded control goes to its parents instead."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and isinstance(watched, QWidget) and not watched.hasFocus():
            # Ignored and "filtered": Qt skips the control and offers the event to its parent widgets.
            event.ignore()
            return True
        return False


def guard_wheel(root: QWidget) -> WheelGuard:
    """Guard every spin box, combo box and slider under `root` (call once its widgets exist)."""
    guard = root.findChild(WheelGuard, "", Qt.FindChildOption.FindDirectChildrenOnly)
    if guard is None:
        guard = WheelGuard(root)
    for control in root.findChildren(QWidget):
        if isinstance(control, QScrollBar) or not isinstance(control, GUARDED):
            continue  # a scroll bar is what the wheel is for
        if not control.property("wheel_guarded"):
            control.setProperty("wheel_guarded", True)
            if control.focusPolicy() == Qt.FocusPolicy.WheelFocus:
                control.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            control.installEventFilter(guard)
    return guard
