"""A non-modal message strip above the canvas (like a browser's info bar).

Every error the user should see goes through `show_error` instead of a modal dialog: a burst of failures
(ten bad files dropped at once) updates one strip instead of stacking ten dialogs. Repeats of the same
message are counted rather than re-shown. Info messages hide themselves after a few seconds; errors stay
until dismissed (the close button or Escape while the bar has focus).
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

INFO_TIMEOUT_MS = 6000

_COLOURS = {  # background, text, border
    "error": ("#5c2328", "#ffe3e3", "#8a3a41"),
    "info": ("#1f3f5c", "#e3f1ff", "#356088"),
}


class MessageBar(QFrame):
    """Shows one message at a time; `text()` and `kind()` report what is shown (tests read them)."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("MessageBar")
        self._kind: Literal["error", "info"] | None = None
        self._message = ""
        self._repeats = 1
        self._label = QLabel(self)
        self._label.setWordWrap(True)
        self._label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.hide()

    def show_error(self, text: str) -> None:
        self._show("error", text)

    def show_info(self, text: str) -> None:
        self._show("info", text)

    def text(self) -> str:
        """The message shown (without the repeat counter); empty when hidden."""
        return "" if self.isHidden() else self._message

    def kind(self) -> str | None:
        return self._kind if not self.isHidden() else None

    def dismiss(self) -> None:
        self._timer.stop()
        if not self.isHidden():
            self.hide()
            self.dismissed.emit()

    def _show(self, kind: Literal["error", "info"], text: str) -> None:
        text = text.strip() or "Something went wrong."
        if not self.isHidden() and kind == self._kind and text == self._message:
            self._repeats += 1
        else:
            self._repeats = 1
        # An info must not hide an error the user has not read yet.
        if kind == "info" and self._kind == "error" and not self.isHidden() and text != self._message:
            return
        self._kind, self._message = kind, text
        suffix = f"  (×{self._repeats})" if self._repeats > 1 else ""
        self._label.setText(text + suffix)
        background, text_colour, border = _COLOURS[kind]
        self.setStyleSheet(
            f"#MessageBar {{ background: {background}; border: 1px solid {border}; border-radius: 4px;"
            " margin: 6px 6px 2px 6px; }"
            f"#MessageBar QLabel, #MessageBar QToolButton {{ color: {text_colour}; background: transparent; "
            "border: none; }"
        )
        self.show()
        if kind == "info":
            self._timer.start(INFO_TIMEOUT_MS)
        else:
            self._timer.stop()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.dismiss()
        else:
            super().keyPressEvent(event)
