"""Opening a project decodes it in a background thread: the window keeps painting (its timers fire), and the
document is untouched until the whole file has loaded, so a damaged file changes nothing."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QObject, QTimerEvent

from inpaint_studio.core.document import Document, Layer
from inpaint_studio.core.history import History, capture
from inpaint_studio.core.project import Project, load_project, save_project
from inpaint_studio.ui.controllers import projects as projects_module
from tests.hardening.conftest import studio_window
from tests.hardening.corpus import photo

WIDTH, HEIGHT = 3000, 2000


@pytest.fixture(scope="module")
def big_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-megapixel project with three layers of noise (PNG cannot shrink it) and a history."""
    rng = np.random.default_rng(1)
    layers = []
    for index, kind in enumerate(("base", "paint", "paint")):
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 4), dtype=np.uint8)
        pixels[..., 3] = 255 if index == 0 else 128
        layers.append(Layer(name=f"layer {index}", pixels=pixels, kind=kind))  # type: ignore[arg-type]
    document = Document(WIDTH, HEIGHT, layers)
    history = History()
    history.add("open", "Opened", snapshot=capture(document))
    return save_project(Project(document, history), tmp_path_factory.mktemp("big") / "big.inpaint")


class Ticker(QObject):
    """A 10 ms timer on the UI thread recording when it fired and what the window showed then."""

    def __init__(self, window: Any) -> None:
        super().__init__()
        self.window = window
        self.seen: list[tuple[float, tuple[int, int], tuple[str, ...], bool]] = []
        self.timer_id = self.startTimer(10)

    def timerEvent(self, event: QTimerEvent) -> None:
        doc = self.window.document
        ids = tuple(layer.id for layer in doc.layers)
        self.seen.append((time.monotonic(), doc.size, ids, self.window.isEnabled()))

    def stop(self) -> None:
        self.killTimer(self.timer_id)


def test_a_large_project_opens_while_the_window_keeps_running(
    qtbot, tmp_path: Path, big_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.perf_counter()
    load_project(big_project)
    decode_s = time.perf_counter() - started  # what the window froze for when this ran on the UI thread
    readers: list[bool] = []

    def reading(*args: Any, **kwargs: Any) -> Project:
        readers.append(threading.current_thread() is threading.main_thread())
        return load_project(*args, **kwargs)

    monkeypatch.setattr(projects_module, "load_project", reading)

    with studio_window(tmp_path) as window:
        window.open_image(Image.fromarray(photo(64, 48)), "small")
        before = (window.document.size, tuple(layer.id for layer in window.document.layers))
        ticker = Ticker(window)
        try:
            qtbot.wait(50)
            t0 = time.monotonic()
            assert window.open_path(big_project)
            t1 = time.monotonic()
            qtbot.wait(50)
        finally:
            ticker.stop()
        assert window.document.size == (WIDTH, HEIGHT) and len(window.document.layers) == 3
        during = [tick for tick in ticker.seen if t0 <= tick[0] <= t1]
        times = [t0] + [tick[0] for tick in during] + [t1]
        longest = max(np.diff(times))
        print(
            f"\nopen {WIDTH}x{HEIGHT} x3 layers: {t1 - t0:.2f} s in the window, {decode_s:.2f} s to decode; "
            f"{len(during)} timer ticks, longest gap {longest * 1000:.0f} ms"
        )
        # The file is read and decoded off the UI thread (the whole of decode_s), and the event loop ran meanwhile.
        # The longest gap is printed, not asserted: what remains on the UI thread is swapping the document in
        # and repainting, and a wall-clock bound here failed on a busy machine (benchmarks/ measure times).
        assert readers == [False], "the project was read on the UI thread"
        assert len(during) >= 10, "the UI timer did not fire while the project was read"
        # The document was the old one until the new one replaced it whole; input waited meanwhile.
        states = [(size, ids) for _, size, ids, _ in ticker.seen]
        first_new = next(i for i, state in enumerate(states) if state != before)
        assert all(state == before for state in states[:first_new])
        assert all(state[0] == (WIDTH, HEIGHT) for state in states[first_new:])
        assert not all(enabled for *_, enabled in during), "input was not blocked while the file was read"
        assert window.isEnabled()
        window.projects.mark_saved()


def test_a_damaged_project_leaves_the_work_as_it_was(tmp_path: Path, big_project: Path) -> None:
    damaged = tmp_path / "damaged.inpaint"
    data = big_project.read_bytes()
    damaged.write_bytes(data[: len(data) * 3 // 4])  # the zip directory is at the end: gone
    with studio_window(tmp_path / "window") as window:
        window.open_image(Image.fromarray(photo(64, 48)), "small")
        layers = list(window.document.layers)
        pixels = window.document.layers[0].pixels.copy()
        assert not window.open_path(damaged)
        assert window.message_bar.kind() == "error" and "damaged.inpaint" in window.message_bar.text()
        assert window.document.layers == layers and np.array_equal(window.document.layers[0].pixels, pixels)
        assert window.isEnabled()
        window.projects.mark_saved()
