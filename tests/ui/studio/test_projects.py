"""Projects through the real window: save/open round trip, title mark, background saves, errors, autosave,
crash recovery, OpenRaster, PNG parameters and the history memory budget."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QFileDialog, QMessageBox

from inpaint_studio.core.generation_settings import get_path, job_field_paths
from inpaint_studio.core.history import HistoryEntry
from inpaint_studio.core.imageio import save_image
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.project import load_project
from inpaint_studio.core.recovery import find_recoverable
from inpaint_studio.engine.replay import replay
from inpaint_studio.engine.runner import Engine
from inpaint_studio.ui.document.commands import mask_change
from inpaint_studio.ui.panels.candidates import Candidate
from inpaint_studio.ui.window.main_window import MainWindow
from tests.job_examples import NON_DEFAULT, job_with_every_field

from .conftest import close_window
from .helpers import drag, line

ROOT = Path(__file__).resolve().parents[3]


# ----------------------------------------------------------------- helpers
def set_mask(window: MainWindow, box: tuple[int, int, int, int]) -> None:
    mask = np.zeros_like(window.document.mask)
    left, top, right, bottom = box
    mask[top:bottom, left:right] = 255
    command = mask_change(window.document, mask, "Rectangle")
    assert command is not None
    window.undo_stack.push(command)


def classic_candidate(window: MainWindow, box: tuple[int, int, int, int], seed: int = 1) -> Candidate:
    """A real classical fill of `box` (OpenCV, no model, no worker thread) as a Results candidate."""
    set_mask(window, box)
    image = window.document.composite()
    mask = window.document.mask.copy()
    image.flags.writeable = mask.flags.writeable = False
    result = Engine().run(InpaintJob(model="classic", seed=seed).resolved(), Image.fromarray(image), mask)
    candidate = Candidate(result=result, index=0, image=image, mask=mask)
    window.generation.candidates.add([candidate], select_first=False)
    return candidate


def apply_classic(window: MainWindow, box: tuple[int, int, int, int]) -> HistoryEntry:
    entry = window.generation.apply(classic_candidate(window, box))
    assert entry is not None and entry.kind == "classic"
    return entry


def paint_stroke(window: MainWindow, y: int, color: tuple[int, int, int]) -> None:
    window.select_tool("paint_brush")
    window.tool_settings.set_color(color)
    drag(window.canvas, line(20, y, 200, y))


def save(window: MainWindow, path: Path, qtbot) -> None:
    with qtbot.waitSignal(window.projects.saved, timeout=30_000):
        assert window.projects.save_to(path)


def layers_of(window: MainWindow) -> list[tuple]:
    return [
        (la.id, la.name, la.kind, la.visible, la.opacity, la.metadata, la.pixels.tobytes())
        for la in window.document.layers
    ]


def history_of(window: MainWindow) -> list[tuple]:
    history = window.generation.recorder.history
    return [(e.id, e.parent_id, e.kind, e.title, e.params, e.derived_from, sorted(e.inputs)) for e in history]


def new_window(qtbot, settings_path: Path) -> MainWindow:
    window = MainWindow(settings=QSettings(str(settings_path), QSettings.Format.IniFormat))
    window.show()
    qtbot.waitExposed(window)
    return window


def set_panel(window: MainWindow) -> None:
    panel = window.generation.panel
    panel.models.combo.setCurrentIndex(1)  # a catalog model: every field is in use
    panel.prompt_edit.setPlainText("a wooden door, evening light")
    panel.negative_edit.setPlainText("blurry")
    panel.strength_spin.setValue(0.65)
    panel.guidance_spin.setValue(5.5)
    panel.steps_spin.setValue(23)
    panel.scheduler_combo.setCurrentText("Euler a")
    panel.seed_edit.setText("4242")
    panel.seed_lock.setChecked(True)
    panel.variants_spin.setValue(3)
    panel.area_combo.setCurrentIndex(1)
    panel.padding_spin.setValue(40)
    panel.feather_spin.setValue(12)
    panel.grow_spin.setValue(-3)
    panel.preserve_check.setChecked(False)
    panel.live_preview_check.setChecked(False)


# ----------------------------------------------------------------- round trip
def test_save_close_open_restores_layers_mask_history_and_generate_panel(
    opened: MainWindow, tmp_path, qtbot, monkeypatch
) -> None:
    window = opened
    fill = apply_classic(window, (40, 40, 90, 80))
    window.layers_panel.add_paint_layer()
    paint_stroke(window, 120, (255, 0, 0))
    set_mask(window, (150, 20, 200, 60))
    set_panel(window)
    generate_settings = window.generation.settings_model.to_dict()
    expected = (layers_of(window), window.document.mask.copy(), history_of(window))
    composite_at_fill = window.generation.recorder.history[fill.id].snapshot.composite()
    head = window.generation.recorder.history.head_id

    target = tmp_path / "door.inpaint"
    # File > Save Project As… with "door" typed in the dialog: the suffix is added.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "door"), ""))
    with qtbot.waitSignal(window.projects.saved, timeout=30_000):
        window.actions["save_project_as"].trigger()
    assert target.exists()
    assert window.windowTitle() == "door.inpaint[*] — Inpaint Studio" and not window.isWindowModified()
    close_window(window)

    # A fresh window with fresh settings: everything must come from the file.
    reopened = new_window(qtbot, tmp_path / "other.ini")
    try:
        assert reopened.open_path(target)
        assert (layers_of(reopened), history_of(reopened)) == (expected[0], expected[2])
        assert np.array_equal(reopened.document.mask, expected[1])
        assert reopened.generation.settings_model.to_dict() == generate_settings
        assert reopened.generation.recorder.history.head_id == head
        assert not reopened.isWindowModified() and reopened.windowTitle().startswith("door.inpaint")
        # The panel lists every entry; clicking one shows that state; re-run gets the entry's recorded input.
        panel = reopened.generation.history_panel
        panel.refresh()
        assert panel.list.count() == len(expected[2])
        panel.select(fill.id)
        overlay = reopened.generation.overlay
        assert overlay.showing and overlay.key == fill.id
        saved_fill = reopened.generation.recorder.history[fill.id]
        assert np.array_equal(saved_fill.snapshot.composite(), composite_at_fill)
        submitted = []
        reopened.generation.submit = lambda job, image, mask, **kw: submitted.append((job, image, mask)) or 1
        reopened.generation.rerun(fill.id)
        assert np.array_equal(submitted[0][1], saved_fill.inputs["image"].to_array())
        assert np.array_equal(submitted[0][2], fill.inputs["mask"].to_array())
        # New edits continue the saved history.
        set_mask(reopened, (0, 0, 10, 10))
        history = reopened.generation.recorder.history
        assert history.head.parent_id == head and reopened.isWindowModified()
    finally:
        close_window(reopened)


def test_title_mark_follows_unsaved_work_and_save_as_renames(opened: MainWindow, tmp_path, qtbot, monkeypatch) -> None:
    window = opened
    assert window.windowTitle() == "photo.png[*] — Inpaint Studio" and not window.isWindowModified()
    set_mask(window, (10, 10, 50, 50))
    assert window.isWindowModified()
    save(window, tmp_path / "work.inpaint", qtbot)
    assert window.windowTitle().startswith("work.inpaint") and not window.isWindowModified()
    window.undo()
    assert window.isWindowModified()
    window.redo()
    assert not window.isWindowModified()  # back at exactly what was saved
    set_mask(window, (60, 60, 80, 80))
    window.undo()
    assert window.undo_stack.isClean() and window.isWindowModified()  # the history gained an entry
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "copy.inpaint"), ""))
    with qtbot.waitSignal(window.projects.saved, timeout=30_000):
        window.actions["save_project_as"].trigger()
    assert window.windowTitle().startswith("copy.inpaint") and not window.isWindowModified()
    assert [Path(p).name for p in window.recent_files()[:2]] == ["copy.inpaint", "work.inpaint"]
    # Ctrl+S saves to the current file without asking.
    set_mask(window, (1, 1, 5, 5))
    with qtbot.waitSignal(window.projects.saved, timeout=30_000):
        window.actions["save_project"].trigger()
    assert not window.isWindowModified() and len(load_project(tmp_path / "copy.inpaint").history) == 4


def test_saving_a_big_document_keeps_the_window_responsive(window: MainWindow, tmp_path, qtbot) -> None:
    rng = np.random.default_rng(0)
    h, w = 1500, 2200
    y, x = np.mgrid[0:h, 0:w]
    photo = np.stack([(x * 255) // w, (y * 255) // h, ((x + y) * 255) // (w + h)], -1) + rng.integers(-6, 7, (h, w, 3))
    window.open_image(Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)), "big")
    window.layers_panel.add_paint_layer()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    started = time.perf_counter()
    with qtbot.waitSignal(window.projects.saved, timeout=60_000):
        assert window.projects.save_to(tmp_path / "big.inpaint")
        returned = time.perf_counter() - started
    took = time.perf_counter() - started
    timer.stop()
    assert returned < 0.25, f"save_to blocked the UI thread for {returned:.2f} s"
    during = [t for t in ticks if t < started + took]
    gaps = np.diff([started, *during])
    assert len(during) >= 3 and gaps.max() < 0.5, (took, len(during), gaps.max())
    assert load_project(tmp_path / "big.inpaint").document.size == (w, h)


def test_edits_or_other_work_during_a_save_are_not_marked_saved(opened: MainWindow, tmp_path, qtbot) -> None:
    set_mask(opened, (10, 10, 50, 50))
    with qtbot.waitSignal(opened.projects.saved, timeout=30_000):
        opened.projects.save_to(tmp_path / "a.inpaint")
        set_mask(opened, (60, 60, 90, 90))  # while the save runs
    assert opened.isWindowModified() and "not in it yet" in opened.message_bar.text()
    assert len(load_project(tmp_path / "a.inpaint").history) == 2
    opened.undo_stack.setClean()
    opened.projects.save_to(tmp_path / "b.inpaint")
    opened.open_image(Image.new("RGB", (8, 8)), "other")  # before the save has finished
    opened.projects.wait_idle()
    assert opened.projects.path is None and opened.windowTitle().startswith("other")
    assert load_project(tmp_path / "b.inpaint").document.size == (240, 160)


def test_a_failed_save_says_why_and_keeps_the_work(opened: MainWindow, tmp_path, qtbot) -> None:
    set_mask(opened, (10, 10, 50, 50))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    layers, mask = layers_of(opened), opened.document.mask.copy()
    assert opened.projects.save_to(blocker / "work.inpaint")
    qtbot.waitUntil(lambda: not opened.projects.runner.busy, timeout=30_000)
    assert opened.message_bar.kind() == "error"
    assert "not a folder" in opened.message_bar.text() and "choose an existing folder" in opened.message_bar.text()
    assert layers_of(opened) == layers and np.array_equal(opened.document.mask, mask)
    assert opened.isWindowModified() and opened.projects.path is None


def test_a_reopened_project_keeps_every_generate_setting(opened: MainWindow, tmp_path, qtbot) -> None:
    model = opened.generation.settings_model
    model.load_job(job_with_every_field(), lock_seed=True)
    model.set("live_preview", False)
    target = tmp_path / "every-setting.inpaint"
    assert opened.projects.save_to(target, wait=True)
    close_window(opened)
    reopened = new_window(qtbot, tmp_path / "other.ini")
    try:
        assert reopened.open_path(target)
        restored = reopened.generation.settings_model
        for path in job_field_paths():
            assert get_path(restored.job, path) == NON_DEFAULT[path], path
        assert restored.seed_locked and not restored.live_preview
    finally:
        close_window(reopened)


# ----------------------------------------------------------------- autosave and recovery
def test_autosave_after_a_pause_writes_a_recoverable_file_and_a_clean_exit_removes_it(
    opened: MainWindow, private_recovery_dir: Path, qtbot
) -> None:
    opened.settings.autosave_delay_s = 0.2
    opened.settings.autosave_max_wait_s = 1.0
    autosave = opened.autosave
    with qtbot.waitSignal(autosave.autosaved, timeout=30_000) as signal:
        set_mask(opened, (20, 20, 70, 70))
    path = Path(signal.args[0])
    assert path.parent == private_recovery_dir and path.suffix == ".inpaint"
    saved = load_project(path)
    assert np.array_equal(saved.document.mask, opened.document.mask)
    assert len(saved.history) == len(opened.generation.recorder.history)
    assert find_recoverable(private_recovery_dir) == []  # this session is alive: not a crash
    opened.undo_stack.setClean()
    opened.close()
    assert not any(private_recovery_dir.iterdir())


CRASHING_SESSION = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
sys.path.insert(0, {root!r})
import numpy as np
from PySide6.QtCore import QSettings
from inpaint_studio.ui.app import create_application
from inpaint_studio.ui.document.commands import mask_change
from inpaint_studio.ui.window.main_window import MainWindow
app = create_application()
window = MainWindow(settings=QSettings({settings!r}, QSettings.Format.IniFormat))
window.show()
assert window.open_path({image!r})
mask = np.zeros_like(window.document.mask)
mask[30:90, 40:120] = 255
window.undo_stack.push(mask_change(window.document, mask, "Rectangle"))
window.generation.panel.prompt_edit.setPlainText("recovered prompt")
assert window.autosave.autosave_now()
assert window.projects.wait_idle(60)
os._exit(3)  # a crash: no clean-exit clean-up
"""


def test_after_a_crash_the_next_window_offers_recovery_and_recovering_restores_the_work(
    window: MainWindow, image_path: Path, private_recovery_dir: Path, tmp_path, qtbot, monkeypatch
) -> None:
    script = CRASHING_SESSION.format(root=str(ROOT), settings=str(tmp_path / "crash.ini"), image=str(image_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    items = window.autosave.offer_recovery()
    assert len(items) == 1 and items[0].title == "photo.png"
    assert window.message_bar.actions_offered() == ["Recover", "Discard"]
    assert "photo.png" in window.message_bar.text()
    window.message_bar.trigger("Recover")
    assert window.document.size == (240, 160)
    assert window.document.mask[30:90, 40:120].all() and window.document.mask.sum() == 255 * 60 * 80
    assert [e.kind for e in window.generation.recorder.history] == ["open", "mask"]
    assert window.generation.panel.prompt_edit.toPlainText() == "recovered prompt"
    assert window.windowTitle() == "Recovered – photo.png[*] — Inpaint Studio" and window.isWindowModified()
    # Saving keeps the work; the crashed session's autosave is then no longer needed.
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "rescued.inpaint"), ""))
    with qtbot.waitSignal(window.projects.saved, timeout=30_000):
        window.projects.save()
    assert window.windowTitle() == "rescued.inpaint[*] — Inpaint Studio" and not window.isWindowModified()
    assert find_recoverable(private_recovery_dir) == [] and not items[0].project.exists()


def test_discarding_a_recovery_offer_deletes_it(window: MainWindow, private_recovery_dir: Path, tmp_path) -> None:
    from inpaint_studio.core.recovery import Autosaver
    from tests.core.test_project import make_project

    Autosaver(private_recovery_dir).save(make_project(), title="old.png")
    note = next(private_recovery_dir.glob("*.json"))
    note.write_text(note.read_text().replace(f'"pid": {os.getpid()}', '"pid": 999999999'))  # a dead session
    assert len(window.autosave.offer_recovery()) == 1
    window.message_bar.trigger("Discard")
    assert not any(private_recovery_dir.iterdir()) and window.document.is_empty


# ----------------------------------------------------------------- OpenRaster, drops, PNG parameters
def test_openraster_export_and_import_through_the_menu(opened: MainWindow, tmp_path, qtbot, monkeypatch) -> None:
    opened.layers_panel.add_paint_layer()
    paint_stroke(opened, 100, (0, 200, 0))
    set_mask(opened, (5, 5, 60, 40))
    layers = [(la.name, la.kind, la.pixels.tobytes()) for la in opened.document.layers]
    mask = opened.document.mask.copy()
    target = tmp_path / "layers.ora"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "layers"), ""))
    opened.actions["export_ora"].trigger()
    qtbot.waitUntil(lambda: not opened.projects.runner.busy, timeout=30_000)
    assert target.exists() and "Exported layers.ora" in opened.message_bar.text()
    opened.undo_stack.setClean()
    opened.open_image(Image.new("RGB", (8, 8)), "other")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    opened.actions["import_ora"].trigger()
    assert [(la.name, la.kind, la.pixels.tobytes()) for la in opened.document.layers] == layers
    assert np.array_equal(opened.document.mask, mask)
    assert opened.windowTitle().startswith("layers.ora")


def test_openraster_notes_show_and_dropped_projects_open(window: MainWindow, tmp_path, qtbot) -> None:
    ora = tmp_path / "krita.ora"
    layer = Image.new("RGBA", (32, 24), (10, 20, 30, 255))
    with zipfile.ZipFile(ora, "w") as archive:
        archive.writestr("mimetype", "image/openraster")
        archive.writestr(
            "stack.xml",
            '<image w="32" h="24"><stack><layer name="glow" src="data/a.png" composite-op="svg:screen"/>'
            '<layer name="paper" src="data/a.png"/></stack></image>',
        )
        buffer = io.BytesIO()
        layer.save(buffer, "PNG")
        archive.writestr("data/a.png", buffer.getvalue())
    from .test_main_window import _drop

    _drop(window, [ora])
    qtbot.waitUntil(lambda: window.document.size == (32, 24))
    assert "svg:screen" in window.message_bar.text()
    window.undo_stack.setClean()
    save(window, tmp_path / "k.inpaint", qtbot)
    window.open_image(Image.new("RGB", (8, 8)), "other")
    _drop(window, [tmp_path / "k.inpaint"])
    qtbot.waitUntil(lambda: window.document.size == (32, 24))
    assert window.windowTitle().startswith("k.inpaint")


def test_png_parameters_are_offered_and_fill_the_generate_panel(window: MainWindow, tmp_path) -> None:
    text = (
        "a castle on a hill\nNegative prompt: fog\n"
        "Steps: 33, Sampler: Euler a, CFG scale: 6.5, Seed: 1234, Denoising strength: 0.7"
    )
    path = tmp_path / "made-elsewhere.png"
    save_image(Image.new("RGB", (64, 48), (90, 90, 90)), path, parameters=text)
    assert window.open_path(path)
    assert window.message_bar.actions_offered() == ["Use these parameters"]
    assert "a castle on a hill" in window.message_bar.text()
    window.message_bar.trigger("Use these parameters")
    job = window.generation.panel.job()
    assert (job.prompt, job.negative_prompt, job.steps, job.scheduler) == ("a castle on a hill", "fog", 33, "Euler a")
    assert (job.guidance_scale, job.seed, job.strength) == (6.5, 1234, 0.7)


# ----------------------------------------------------------------- memory budget
def test_budget_pruning_keeps_applied_results_and_what_replay_needs(opened: MainWindow, qtbot) -> None:
    window = opened
    opened.settings.history_budget_mb = 1
    window.layers_panel.add_paint_layer()
    for i in range(4):
        paint_stroke(window, 20 + 30 * i, (40 * i, 0, 200))
    fill = apply_classic(window, (100, 40, 160, 100))
    for i in range(3):
        paint_stroke(window, 30 + 40 * i, (0, 90 * i, 0))
    old = classic_candidate(window, (0, 0, 30, 30), seed=1)
    newest = classic_candidate(window, (200, 100, 240, 160), seed=2)
    history = window.generation.recorder.history
    before = history.memory_bytes()
    applied = next(c for c in window.generation.candidates.candidates() if c.applied_entry == fill.id)
    plan = window.memory.enforce()
    # The applied result's candidate goes first (its pixels live on in a layer), then the older one.
    assert plan.candidates == [applied.key, old.key]
    assert window.generation.candidates.candidates() == [newest]
    assert "removed from Results" in window.message_bar.text()
    assert plan.snapshots and plan.total_after < before
    strokes = [e for e in history if e.kind == "paint"]
    assert any(e.snapshot is None for e in strokes)
    assert history[fill.id].snapshot is not None and set(history[fill.id].inputs) == {"image", "mask"}
    assert history[history[fill.id].parent_id].snapshot is not None and history.head.snapshot is not None
    steps = list(replay(history, Engine().run))
    assert [s.entry_id for s in steps] == [fill.id] and steps[0].identical
    # Undo into a pruned state re-captures it; the document and the new snapshot agree.
    while history.head.snapshot is not None and window.undo_stack.canUndo():
        window.undo()
    assert history.head.snapshot is not None
    assert np.array_equal(history.head.snapshot.composite(), window.document.composite())


# ----------------------------------------------------------------- shortcuts
def test_quit_is_one_unambiguous_shortcut(window: MainWindow, qtbot) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    assert [s.toString() for s in window.actions["quit"].shortcuts()] == ["Ctrl+Q"]
    owners: dict[str, str] = {}
    for name, action in window.actions.items():
        for sequence in action.shortcuts():
            assert sequence.toString() not in owners, (name, owners.get(sequence.toString()))
            owners[sequence.toString()] = name
    assert owners["Ctrl+S"] == "save_project" and owners["Ctrl+Shift+S"] == "save_project_as"
    assert owners["Ctrl+Alt+E"] == "export_image" and owners["Ctrl+Shift+E"] == "layer_flatten"
    QTest.keyClick(window.canvas, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not window.isVisible())


X11_SHORTCUTS = """
import sys
from PySide6.QtCore import QSettings, Qt, qInstallMessageHandler
from PySide6.QtGui import QKeySequence
from PySide6.QtTest import QTest
from inpaint_studio.ui.app import create_application
from inpaint_studio.ui.window.main_window import MainWindow
messages = []
qInstallMessageHandler(lambda kind, context, text: messages.append(text))
app = create_application()
assert QKeySequence.keyBindings(QKeySequence.StandardKey.Quit), "this platform binds no Quit key"
window = MainWindow(settings=QSettings({settings!r}, QSettings.Format.IniFormat))
window.show()
QTest.qWaitForWindowExposed(window)
window.activateWindow()
assert QTest.qWaitForWindowActive(window)
owners = {{}}
for name, action in window.actions.items():
    for sequence in action.shortcuts():
        key = sequence.toString()
        assert key not in owners, (key, name, owners.get(key))
        owners[key] = name
window.canvas.setFocus()
QTest.keyClick(window.canvas, Qt.Key.Key_Q, Qt.KeyboardModifier.ControlModifier)
app.processEvents()
assert not window.isVisible(), messages
print("closed")
"""


@pytest.mark.skipif(shutil.which("xvfb-run") is None, reason="needs xvfb-run for X11 key bindings")
def test_ctrl_q_quits_on_x11_where_quit_is_a_standard_key(tmp_path) -> None:
    # On X11 StandardKey.Quit is Ctrl+Q: registering both made Qt call the key ambiguous and do nothing.
    script = X11_SHORTCUTS.format(settings=str(tmp_path / "x11.ini"))
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
    done = subprocess.run(
        ["xvfb-run", "-a", sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0 and "closed" in done.stdout, done.stderr[-2000:]
    assert "Ambiguous" not in done.stderr


def test_text_fields_keep_their_editing_keys(opened: MainWindow) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    ctrl = Qt.KeyboardModifier.ControlModifier
    details = opened.generation.history_panel.details
    details.setPlainText("#1 Opened photo.png")
    details.setFocus()
    assert QApplication.focusWidget() is details
    QTest.keyClick(details, Qt.Key.Key_A, ctrl)
    assert not opened.document.mask.any(), "Ctrl+A in the details masked the image"
    assert details.textCursor().selectedText() == "#1 Opened photo.png"
    for field in (opened.size_spin, opened.generation.panel.feather_spin):
        field.setFocus()
        size, zoom = opened.tool_settings.size, opened.canvas.zoom
        for key, modifiers in (
            (Qt.Key.Key_A, ctrl),
            (Qt.Key.Key_M, Qt.KeyboardModifier.NoModifier),
            (Qt.Key.Key_BracketRight, Qt.KeyboardModifier.NoModifier),
            (Qt.Key.Key_Minus, Qt.KeyboardModifier.NoModifier),
            (Qt.Key.Key_Delete, Qt.KeyboardModifier.NoModifier),
        ):
            QTest.keyClick(field, key, modifiers)
        assert not opened.document.mask.any() and opened.canvas.tool.name == "mask_brush"
        assert (opened.tool_settings.size, opened.canvas.zoom) == (size, zoom)
    opened.canvas.setFocus()
    QTest.keyClick(opened.canvas, Qt.Key.Key_A, ctrl)
    assert opened.document.mask.all()  # on the canvas, Ctrl+A still masks everything


def test_closing_with_unsaved_work_and_cancel_keeps_the_window(opened: MainWindow, monkeypatch) -> None:
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    set_mask(opened, (1, 1, 9, 9))
    opened.close()
    assert opened.isVisible() and opened.isWindowModified()


@pytest.mark.parametrize("suffix", [".inpaint", ".ora"])
def test_open_recent_reopens_projects_and_openraster(opened: MainWindow, tmp_path, qtbot, suffix) -> None:
    target = tmp_path / f"recent{suffix}"
    if suffix == ".inpaint":
        save(opened, target, qtbot)
    else:
        assert opened.projects.export_ora(target, wait=True)
        opened.settings.add_recent(str(target))
    opened.open_image(Image.new("RGB", (8, 8)), "other")
    opened._fill_recent_menu()
    entry = next(a for a in opened._recent_menu.actions() if a.toolTip() == str(target.resolve()))
    entry.trigger()
    assert opened.document.size == (240, 160) and opened.windowTitle().startswith(target.name)


def test_window_title_for_a_file_opened_from_the_command_line(window: MainWindow, tmp_path, qtbot) -> None:
    from inpaint_studio.core.project import save_project
    from tests.core.test_project import make_project

    path = save_project(make_project(), tmp_path / "cli.inpaint")
    window.files.open_or_insert([str(path)])
    assert window.windowTitle() == "cli.inpaint[*] — Inpaint Studio" and not window.isWindowModified()


def test_new_project_asks_about_unsaved_work_then_empties_the_window(opened: MainWindow, monkeypatch) -> None:
    asked: list[object] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.Discard)
    set_mask(opened, (1, 1, 9, 9))
    opened.actions["new_project"].trigger()
    assert len(asked) == 1 and opened.document.is_empty
    assert opened.windowTitle() == "Inpaint Studio" and not opened.isWindowModified()
    assert not opened.actions["save_project"].isEnabled() and len(opened.generation.recorder.history) == 0
