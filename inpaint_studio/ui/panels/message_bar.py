"""A non-modal message strip above the canvas (like a browser's info bar).

Every error the user should see goes through `show_error` instead of a modal dialog: a burst of failures
(ten bad files dropped at once) updates one strip instead of stacking ten dialogs. Repeats of the same
message are counted rather than re-shown. Info messages hide themselves after a few seconds; errors stay
until dismissed (the close button or Escape while the bar has focus). A message may offer actions (buttons
such as "Recover" or "Use these parameters"); such a message stays until it is answered or replaced.

The bar floats over the top of its parent (the canvas) instead of taking a row of the window's layout: a
message coming and going must not resize the canvas, which would re-fit and re-zoom the image under the
user's hand (98 % -> 91 % and back).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

INFO_TIMEOUT_MS = 6000
Action = tuple[str, Callable[[], object]]  # button text, what it does

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
        self._buttons: list[QPushButton] = []
        close = QToolButton(self)
        close.setText("✕")
        close.setToolTip("Dismiss")
        close.setAutoRaise(True)
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 4, 4)
        layout.addWidget(self._label, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self._layout = layout
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.hide()
        if parent is not None:
            parent.installEventFilter(self)  # follow its width

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.parent() and event.type() == QEvent.Type.Resize and not self.isHidden():
            self._place()
        return False

    def _place(self) -> None:
        """Across the top of the parent, as tall as the message needs at that width."""
        parent = self.parentWidget()
        if parent is None:
            return
        width = parent.width()
        layout = self.layout()
        height = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else -1
        self.setGeometry(0, 0, width, max(height, self.sizeHint().height()))
        self.raise_()

    def show_error(self, text: str, actions: Sequence[Action] = ()) -> None:
        self._show("error", text, actions)

    def show_info(self, text: str, actions: Sequence[Action] = ()) -> None:
        self._show("info", text, actions)

    def actions_offered(self) -> list[str]:
        """The texts of the action buttons shown (tests read them)."""
        return [] if self.isHidden() else [button.text() for button in self._buttons]

    def trigger(self, text: str) -> None:
        """Press the action button with this text (what a click does)."""
        next(button for button in self._buttons if button.text() == text).click()

    def text(self) -> str:
        """The message shown (without the repeat counter); empty when hidden."""
        return "" if self.isHidden() else self._message

    def kind(self) -> str | None:
        return self._kind if not self.isHidden() else None

    def dismiss(self) -> None:
        self._timer.stop()
        self._set_actions(())
        if not self.isHidden():
            self.hide()
            self.dismissed.emit()

    def _show(self, kind: Literal["error", "info"], text: str, actions: Sequence[Action] = ()) -> None:
        text = text.strip() or "Something went wrong."
        if not self.isHidden() and kind == self._kind and text == self._message:
            self._repeats += 1
        else:
            self._repeats = 1
        # An info must not hide an error the user has not read yet, nor a question waiting for an answer.
        waiting = self._kind == "error" or bool(self._buttons)
        if kind == "info" and not actions and waiting and not self.isHidden() and text != self._message:
            return
        self._kind, self._message = kind, text
        self._set_actions(actions)
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
        self._place()
        if kind == "info" and not actions:
            self._timer.start(INFO_TIMEOUT_MS)
        else:
            self._timer.stop()

    def _set_actions(self, actions: Sequence[Action]) -> None:
        for button in self._buttons:
            self._layout.removeWidget(button)
            button.hide()  # now: deleteLater waits for the event loop, and a stale button must not show
            button.deleteLater()
        self._buttons = []
        for index, (label, callback) in enumerate(actions):
            button = QPushButton(label, self)
            button.setAutoDefault(False)
            button.clicked.connect(lambda _checked=False, c=callback: self._answer(c))
            self._layout.insertWidget(1 + index, button, 0, Qt.AlignmentFlag.AlignVCenter)
            self._buttons.append(button)

    def _answer(self, callback: Callable[[], object]) -> None:
        self.dismiss()  # first: the action may show a message of its own
        callback()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Escape:
            self.dismiss()
        else:
            super().keyPressEvent(event)
