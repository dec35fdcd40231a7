"""The studio with Settings > Engine > Server: Generate, candidates, apply and history work unchanged through the
worker's remote engine; the record names the server; a connection lost mid-job is one message, nothing
applied is lost, and the job can be queued again. The Settings dialog's Test button asks the real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from inpaint_studio.core.record import GenerationRecord
from inpaint_studio.engine.runner import Engine
from inpaint_studio.ui.background import BackgroundRunner
from inpaint_studio.ui.settings import ENGINE_LOCAL, ENGINE_SERVER, AppSettings, RemoteEngineFactory, engine_factory
from inpaint_studio.ui.window.composition import EngineOptions
from inpaint_studio.ui.window.main_window import MainWindow
from inpaint_studio.ui.window.settings_dialog import SettingsDialog
from tests.service.helpers import TOKEN, CuttableProxy
from tests.ui.test_generation import MASK_BOX, H, W, photo, set_mask, use_tiny_model, wait_candidates

pytestmark = pytest.mark.cluster
TIMEOUT_MS = 120_000


def server_settings(tmp_path: Path, url: str, token: str = TOKEN) -> QSettings:
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings = AppSettings(store)
    settings.engine_kind, settings.engine_url, settings.engine_token = ENGINE_SERVER, url, token
    return store


@pytest.fixture
def open_windows(qapp) -> Iterator[list[MainWindow]]:
    windows: list[MainWindow] = []
    yield windows
    for window in windows:
        window.undo_stack.setClean()
        window.close()
        window.deleteLater()
    QApplication.processEvents()


def generate(window: MainWindow) -> None:
    window.actions["generate"].trigger()  # what Ctrl+Enter and the Generate button do


def studio(qtbot, store: QSettings, windows: list[MainWindow]) -> MainWindow:
    window = MainWindow(settings=store, engine=EngineOptions(warm_up_delay_ms=None))  # its own worker
    windows.append(window)
    window.resize(1200, 800)
    window.show()
    qtbot.waitExposed(window)
    window.open_image(photo(), "photo")
    return window


def test_the_studio_generates_on_the_server_and_history_names_it(
    qtbot, server, tiny_sd_inpaint, tiny_sd, tmp_path, open_windows
):
    window = studio(qtbot, server_settings(tmp_path, server.url), open_windows)
    controller = window.generation
    assert isinstance(controller.worker._factory, RemoteEngineFactory)
    # The server's own models join the model list (this computer does not have tiny_sd).
    picker = controller.panel.models
    qtbot.waitUntil(lambda: any(c.reference == str(tiny_sd) for c in picker.choices()), timeout=30_000)
    assert next(c for c in picker.choices() if c.reference == str(tiny_sd)).source == "server"
    set_mask(window)
    use_tiny_model(controller, tiny_sd_inpaint, seed=31, variants=2, preview=True)
    generate(window)
    wait_candidates(qtbot, controller, 2)
    candidate = controller.candidates.candidates()[1]
    host = server.url.split("//")[1]
    assert window.engine_label.text().startswith("Engine: CPU") and host in window.engine_label.text()
    # The same pixels a local engine makes from the same input.
    submitted_image = candidate.image
    local = Engine().run(candidate.result.job, submitted_image, candidate.mask)
    assert np.array_equal(np.asarray(candidate.result.images[1]), np.asarray(local.images[1]))
    controller.apply(candidate)
    record = GenerationRecord.from_dict(controller.recorder.history.head.params)
    assert record.seed == 32 and record.device == "cpu" and f"on {host}" in record.device_name
    assert record.extra["server"]["url"] == server.url
    controller.history_panel.select(controller.recorder.history.head.id)
    assert host in controller.history_panel.details.toPlainText()


def test_a_lost_connection_is_one_message_and_the_job_can_be_queued_again(
    qtbot, server, tiny_sd_inpaint, tmp_path, open_windows
):
    proxy = CuttableProxy(int(server.url.rsplit(":", 1)[1]))
    try:
        window = studio(qtbot, server_settings(tmp_path, proxy.url), open_windows)
        controller = window.generation
        set_mask(window)
        use_tiny_model(controller, tiny_sd_inpaint, seed=5)
        generate(window)  # a first result, applied: it must survive the failure below
        wait_candidates(qtbot, controller, 1)
        controller.apply(controller.candidates.candidates()[0])
        applied = window.document.composite().copy()
        layers = [layer.name for layer in window.document.layers]
        set_mask(window)  # Apply cleared the mask (as artists expect); the next job needs one again

        controller.panel.steps_spin.setValue(400)
        controller.worker.job_progress.connect(lambda event: proxy.cut() if event.step == 2 else None)
        failed: list[object] = []
        controller.worker.job_failed.connect(failed.append)
        generate(window)
        qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT_MS)
        message = window.message_bar.text()
        assert message.startswith(f"The connection to the server 127.0.0.1:{proxy.port} was lost during the job")
        assert "nothing was changed" in message and message.endswith(".") and ". " not in message  # one sentence
        assert [layer.name for layer in window.document.layers] == layers
        assert np.array_equal(window.document.composite(), applied)
        assert len(controller.candidates.candidates()) == 1

        controller.worker.job_progress.disconnect()
        controller.panel.steps_spin.setValue(2)
        generate(window)  # queued again: the network is back
        wait_candidates(qtbot, controller, 2)
        assert controller.candidates.candidates()[1].result.images[0].size == (W, H)
    finally:
        proxy.close()


def test_settings_test_the_server_and_switch_the_engine(qtbot, server, tmp_path, open_windows):
    store = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    settings = AppSettings(store)
    assert settings.engine_kind == ENGINE_LOCAL and engine_factory(settings) is None  # the default
    window = studio(qtbot, store, open_windows)
    runner = BackgroundRunner()
    dialog = SettingsDialog(settings, runner, window)
    assert dialog.local.isChecked() and not dialog.test_button.isEnabled()
    dialog.server.setChecked(True)
    dialog.url.setText(server.url)
    dialog.token.setText("not-the-token-at-all")
    dialog.test_button.click()
    qtbot.waitUntil(lambda: "token" in dialog.test_result.text(), timeout=30_000)
    dialog.token.setText(TOKEN)
    qtbot.waitUntil(dialog.test_button.isEnabled, timeout=5_000)
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("Connected to Inpaint Studio"), timeout=30_000)
    assert "CPU" in dialog.test_result.text()
    dialog.accept()
    assert (settings.engine_kind, settings.engine_url, settings.engine_token) == (ENGINE_SERVER, server.url, TOKEN)
    window.generation.apply_engine_settings()
    factory = window.generation.worker._factory
    assert isinstance(factory, RemoteEngineFactory) and factory.url == server.url
    # The classical fill now runs on the server too; the record says so.
    set_mask(window, MASK_BOX)
    generate(window)
    wait_candidates(qtbot, window.generation, 1)
    assert "server" in window.generation.candidates.candidates()[0].result.extra
    dialog.close()


def test_a_refused_token_is_one_message_in_the_studio(qtbot, server, tmp_path, open_windows):
    window = studio(qtbot, server_settings(tmp_path, server.url, token="not-the-right-token"), open_windows)
    failed: list[object] = []
    window.generation.worker.job_failed.connect(failed.append)
    set_mask(window)
    generate(window)
    qtbot.waitUntil(lambda: bool(failed), timeout=TIMEOUT_MS)
    assert "token" in window.message_bar.text() and window.message_bar.text().endswith(".")
    qtbot.waitUntil(lambda: not window.generation.worker.is_busy, timeout=10_000)  # done follows the failure
