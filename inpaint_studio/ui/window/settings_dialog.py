"""Edit > Settings… (Ctrl+,): where generations run.

Engine: "This computer" (the default: the engine runs in this app's worker thread) or "Server" (an
`inpaint-studio serve` elsewhere, docs/remote.md): its address and token, and a Test button that asks the
server what it runs on, in the background (the window never waits for the network). Saved in AppSettings;
the window then switches the worker's engine for the next job.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.ui.background import BackgroundRunner, TaskState
from inpaint_studio.ui.settings import ENGINE_LOCAL, ENGINE_SERVER, AppSettings


def test_server(url: str, token: str | None) -> str:
    """The Test button's work (in a background thread): one sentence about the server, or its error."""
    from inpaint_studio.engine.remote import RemoteEngine

    engine = RemoteEngine(url, token, connect_timeout_s=5.0, read_timeout_s=15.0)
    try:
        return engine.test()
    finally:
        engine.close()


class SettingsDialog(QDialog):
    """See the module docstring."""

    def __init__(self, settings: AppSettings, runner: BackgroundRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settings_dialog")
        self.settings, self.runner = settings, runner
        self._test_task: Any = None

        engine = QGroupBox("Engine: where generations run")
        self.local = QRadioButton("This computer")
        self.local.setToolTip("The engine runs in this app, on this computer's GPU or CPU.")
        self.server = QRadioButton("Server")
        self.server.setToolTip("An inpaint-studio server on another computer (inpaint-studio serve).")
        self.kind = QButtonGroup(self)
        self.kind.addButton(self.local)
        self.kind.addButton(self.server)
        self.url = QLineEdit(settings.engine_url)
        self.url.setPlaceholderText("http://gpu-box:8000")
        self.token = QLineEdit(settings.engine_token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("the server's token (empty when it has none)")
        self.test_button = QPushButton("Test")
        self.test_button.setToolTip("Ask the server what it runs on")
        self.test_result = QLabel("")
        self.test_result.setWordWrap(True)
        self.test_result.setObjectName("test_result")
        form = QFormLayout()
        form.addRow("Address", self.url)
        form.addRow("Token", self.token)
        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button)
        test_row.addWidget(self.test_result, 1)
        form.addRow("", test_row)
        layout = QVBoxLayout(engine)
        layout.addWidget(self.local)
        layout.addWidget(self.server)
        layout.addLayout(form)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        outer = QVBoxLayout(self)
        outer.addWidget(engine)
        outer.addWidget(buttons)

        (self.server if settings.engine_kind == ENGINE_SERVER else self.local).setChecked(True)
        self.kind.buttonToggled.connect(lambda *_args: self._update())
        self.url.textChanged.connect(lambda *_args: self._update())
        self.test_button.clicked.connect(self.test)
        self._update()

    @property
    def uses_server(self) -> bool:
        return self.server.isChecked()

    def _update(self) -> None:
        server = self.uses_server
        for widget in (self.url, self.token, self.test_button):
            widget.setEnabled(server)
        has_url = bool(self.url.text().strip())
        self.test_button.setEnabled(server and has_url and self._test_task is None)
        self.ok_button.setEnabled(not server or has_url)

    def test(self) -> None:
        """Ask the server in the background; the answer (or the error's sentence) appears beside the button."""
        url, token = self.url.text().strip(), self.token.text().strip() or None
        self.test_result.setText("Connecting…")

        def work(_state: TaskState) -> str:
            return test_server(url, token)

        self._test_task = self.runner.start("testing the server", work, self._tested, self._test_failed)
        self._update()

    def _tested(self, sentence: str) -> None:
        self._test_task = None
        self.test_result.setText(sentence)
        self._update()

    def _test_failed(self, message: str) -> None:
        self._test_task = None
        self.test_result.setText(message)
        self._update()

    def accept(self) -> None:
        if self.uses_server:
            try:
                from inpaint_studio.engine.remote import normalise_url

                normalise_url(self.url.text())
            except InpaintStudioError as exc:
                self.test_result.setText(str(exc))
                return
        self.settings.engine_kind = ENGINE_SERVER if self.uses_server else ENGINE_LOCAL
        self.settings.engine_url = self.url.text().strip()
        self.settings.engine_token = self.token.text().strip()
        super().accept()
