"""Fixtures for the canvas/main-window tests: a window with private settings, closed (and checked) after each test.

Lives in its own folder so it does not mix with tests/ui/conftest.py (the engine-worker tests' fixtures).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QSettings
from PySide6.QtWidgets import QApplication

from inpaint_studio.ui.window.main_window import MainWindow

IMAGE_SIZE = (240, 160)


@pytest.fixture(autouse=True)
def private_recovery_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Autosaves and recovery offers of these tests stay in the test's own folder."""
    folder = tmp_path / "recovery"
    monkeypatch.setenv("INPAINT_STUDIO_RECOVERY_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def no_leaked_windows(qapp: QApplication) -> Iterator[None]:
    """A window left open by a test is a bug (it would also keep its document's memory alive)."""
    yield
    QApplication.processEvents()
    leaked = [w for w in QApplication.topLevelWidgets() if w.isVisible()]
    for widget in leaked:
        if isinstance(widget, MainWindow):
            widget.undo_stack.setClean()
        widget.close()
    assert not leaked, f"windows left open: {[type(w).__name__ for w in leaked]}"


def close_window(window: MainWindow) -> None:
    window.undo_stack.setClean()  # no "export your changes?" question on close
    window.close()
    window.deleteLater()
    QApplication.processEvents()


@pytest.fixture
def studio_settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, studio_settings: QSettings) -> Iterator[MainWindow]:
    win = MainWindow(settings=studio_settings)
    win.show()
    qtbot.waitExposed(win)
    yield win
    close_window(win)


@pytest.fixture
def image_path(tmp_path: Path) -> Path:
    """A 240x160 RGB PNG with gradients and noise (every pixel distinct enough to catch shifts)."""
    w, h = IMAGE_SIZE
    rng = np.random.default_rng(7)
    x = np.broadcast_to(np.linspace(0, 255, w)[None, :, None], (h, w, 1))
    y = np.broadcast_to(np.linspace(0, 255, h)[:, None, None], (h, w, 1))
    pixels = np.concatenate([x, y, rng.integers(0, 256, (h, w, 1))], axis=2)
    path = tmp_path / "photo.png"
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path)
    return path


@pytest.fixture
def opened(window: MainWindow, image_path: Path) -> MainWindow:
    """The window with the test image open at 100 % zoom, image origin at the canvas's (0, 0)."""
    assert window.open_path(image_path)
    window.canvas.set_view(1.0, QPointF(0, 0))
    window.tool_settings.set_size(20)
    window.tool_settings.set_hardness(1.0)
    return window
