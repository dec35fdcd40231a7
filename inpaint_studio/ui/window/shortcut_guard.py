"""Editing keys stay with the focused text or number field instead of triggering window shortcuts.

Window-wide shortcuts (Ctrl+A "mask everything", the single-letter tool keys, [ and ], + and -) must not
fire while the user types in a prompt, a seed or a spin box, or selects text in the history's details.
Qt asks the focused widget first (a ShortcutOverride event); editable line edits and spin boxes already
claim their keys, but read-only text (the parameter details) claims nothing, so Ctrl+A there masked the
whole image instead of selecting the text. This filter answers the question the same way for every text
widget: editable fields keep typing and editing keys, read-only text keeps select-all and copy. Keys that
mean nothing to a field (Ctrl+Enter, Escape, Ctrl+S, ...) still reach the window.

One filter per application, installed by `install_shortcut_guard()`; it looks only at ShortcutOverride
events, which Qt sends to the focus widget once per key press.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit, QWidget

_Std = QKeySequence.StandardKey
READ_ONLY_KEYS = (_Std.SelectAll, _Std.Copy)
EDITING_KEYS = (
    *READ_ONLY_KEYS,
    _Std.Cut,
    _Std.Paste,
    _Std.Undo,
    _Std.Redo,
    _Std.Delete,
    _Std.DeleteStartOfWord,
    _Std.DeleteEndOfWord,
    _Std.MoveToNextWord,
    _Std.MoveToPreviousWord,
    _Std.SelectNextWord,
    _Std.SelectPreviousWord,
    _Std.MoveToStartOfLine,
    _Std.MoveToEndOfLine,
)
_PLAIN = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
_NAVIGATION = {
    Qt.Key.Key_Backspace,
    Qt.Key.Key_Delete,
    Qt.Key.Key_Home,
    Qt.Key.Key_End,
    Qt.Key.Key_Left,
    Qt.Key.Key_Right,
}


def field_kind(widget: QObject | None) -> str | None:
    """'editable', 'read-only' (selectable text) or None (not a text field)."""
    if isinstance(widget, QAbstractSpinBox):
        return "read-only" if widget.isReadOnly() else "editable"
    if isinstance(widget, QLineEdit):
        return "read-only" if widget.isReadOnly() else "editable"
    if isinstance(widget, QTextEdit | QPlainTextEdit):
        if not widget.isReadOnly():
            return "editable"
        selectable = Qt.TextInteractionFlag.TextSelectableByMouse | Qt.TextInteractionFlag.TextSelectableByKeyboard
        return "read-only" if widget.textInteractionFlags() & selectable else None
    if isinstance(widget, QComboBox) and widget.isEditable():
        return "editable"
    return None


def field_wants(widget: QObject | None, event: QKeyEvent) -> bool:
    """Whether the focused widget should get this key rather than a window shortcut."""
    kind = field_kind(widget)
    if kind is None:
        return False
    if any(event.matches(key) for key in (EDITING_KEYS if kind == "editable" else READ_ONLY_KEYS)):
        return True
    if kind != "editable" or event.modifiers() & ~_PLAIN:
        return False
    text = event.text()
    return (bool(text) and text.isprintable()) or Qt.Key(event.key()) in _NAVIGATION


class ShortcutGuard(QObject):
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(watched, QWidget):
            assert isinstance(event, QKeyEvent)
            if field_wants(watched, event):
                event.accept()  # "the widget takes this key": Qt delivers it as a key press, no shortcut
                return True
        return False


def install_shortcut_guard() -> ShortcutGuard | None:
    """Install the application's guard once (later calls return the same one)."""
    app = QCoreApplication.instance()
    if app is None:
        return None
    guard = app.findChild(ShortcutGuard)
    if guard is None:
        guard = ShortcutGuard(app)
        app.installEventFilter(guard)
    return guard
