"""Two-way bindings between Qt widgets and a field of a GenerationSettings model (core/generation_settings.py).

A binding copies the model's value into the widget now and whenever the model changes, and writes the
widget's value into the model whenever the user edits it. Each direction converts (e.g. a seed field's
text <-> int | None); a value that comes back unchanged is not written again, so there is no echo loop and
the text cursor never jumps. `Binding.unbind()` disconnects both directions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import SignalInstance
from PySide6.QtWidgets import QAbstractButton, QComboBox, QDoubleSpinBox, QLineEdit, QPlainTextEdit, QSpinBox

from inpaint_studio.core.generation_settings import ALL, GenerationSettings


class Binding:
    """One widget <-> one model path. See the module docstring."""

    def __init__(
        self,
        model: GenerationSettings,
        path: str,
        signal: SignalInstance,
        read: Callable[[], Any],
        write: Callable[[Any], None],
    ) -> None:
        self.model, self.path, self._signal, self._read, self._write = model, path, signal, read, write
        self._writing = False
        self._unsubscribe = model.subscribe(self._on_model_changed)
        signal.connect(self._on_widget_changed)
        self.push()

    def push(self) -> None:
        """Show the model's value in the widget."""
        value = self.model.get(self.path)
        if self._read() == value:
            return
        self._writing = True
        try:
            self._write(value)
        finally:
            self._writing = False

    def _on_model_changed(self, path: str) -> None:
        if path in (self.path, ALL):
            self.push()

    def _on_widget_changed(self, *_args: Any) -> None:
        if not self._writing:
            self.model.set(self.path, self._read())

    def unbind(self) -> None:
        self._unsubscribe()
        with contextlib.suppress(RuntimeError, TypeError):  # the widget is already gone
            self._signal.disconnect(self._on_widget_changed)


def spin(model: GenerationSettings, path: str, widget: QSpinBox) -> Binding:
    return Binding(model, path, widget.valueChanged, widget.value, widget.setValue)


def fraction(model: GenerationSettings, path: str, widget: QDoubleSpinBox, digits: int = 4) -> Binding:
    """A decimal spin box; the value is rounded so 0.1 + steps of 0.05 never records 0.15000000000000002."""
    return Binding(model, path, widget.valueChanged, lambda: round(widget.value(), digits), widget.setValue)


def check(model: GenerationSettings, path: str, widget: QAbstractButton) -> Binding:
    """A check box or a checkable button."""
    return Binding(model, path, widget.toggled, widget.isChecked, widget.setChecked)


def combo_data(model: GenerationSettings, path: str, widget: QComboBox, *, enum: type | None = None) -> Binding:
    """A combo box whose items carry the values as data (enum members are stored by their value)."""

    def read() -> Any:
        data = widget.currentData()
        return enum(data) if enum is not None and data is not None else data

    def write(value: Any) -> None:
        index = widget.findData(value.value if enum is not None else value)
        widget.setCurrentIndex(max(0, index))

    return Binding(model, path, widget.currentIndexChanged, read, write)


def combo_text(model: GenerationSettings, path: str, widget: QComboBox) -> Binding:
    """A combo box whose item texts are the values (an unknown value shows the first item)."""
    return Binding(
        model,
        path,
        widget.currentIndexChanged,
        widget.currentText,
        lambda value: widget.setCurrentIndex(max(0, widget.findText(str(value)))),
    )


def plain_text(model: GenerationSettings, path: str, widget: QPlainTextEdit) -> Binding:
    """A multi-line text; the model keeps it without surrounding spaces and newlines."""

    def write(value: Any) -> None:
        widget.setPlainText(str(value))

    return Binding(model, path, widget.textChanged, lambda: widget.toPlainText().strip(), write)


def optional_int(model: GenerationSettings, path: str, widget: QLineEdit) -> Binding:
    """A line edit holding a whole number or nothing (the seed: empty = random)."""

    def read() -> int | None:
        text = widget.text().strip()
        return int(text) if text.isdigit() else None

    def write(value: Any) -> None:
        widget.setText("" if value is None else str(value))

    return Binding(model, path, widget.textChanged, read, write)
