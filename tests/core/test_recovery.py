"""Autosave and recovery after a crash: a killed session's work is found and opens intact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from inpaint_studio.core.project import load_project
from inpaint_studio.core.recovery import Autosaver, discard_recovery, find_recoverable

CRASHING_SESSION = r"""
import os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.core.test_project import make_project
from inpaint_studio.core.recovery import Autosaver
saver = Autosaver(Path(sys.argv[1]))
saver.save(make_project(seed=7), title="holiday.jpg", source="/photos/holiday.jpg")
os._exit(1)  # a crash: no clean-exit discard
"""


def test_a_crashed_sessions_autosave_is_offered_and_opens(tmp_path):
    script = tmp_path / "session.py"
    script.write_text(CRASHING_SESSION.format(root=str(Path(__file__).resolve().parents[2])))
    folder = tmp_path / "recovery"
    subprocess.run([sys.executable, str(script), str(folder)], check=False, timeout=120)
    items = find_recoverable(folder)
    assert len(items) == 1
    item = items[0]
    assert item.title == "holiday.jpg" and item.source == "/photos/holiday.jpg" and item.age_s < 600
    from tests.core.test_project import make_project

    recovered = load_project(item.project).document
    expected = make_project(seed=7).document
    assert all(np.array_equal(a.pixels, b.pixels) for a, b in zip(recovered.layers, expected.layers))
    discard_recovery(item)
    assert find_recoverable(folder) == []


def test_the_running_session_and_clean_exits_are_not_offered(tmp_path):
    from tests.core.test_project import make_project

    saver = Autosaver(tmp_path)
    saver.save(make_project(), title="live")
    assert find_recoverable(tmp_path) == []  # this process is alive: not a crash
    saver.discard()
    assert list(tmp_path.iterdir()) == []


def test_garbage_in_the_recovery_folder_is_ignored(tmp_path):
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "orphan.json").write_text('{"pid": 999999999}')  # no project file beside it
    assert find_recoverable(tmp_path) == []
    assert find_recoverable(tmp_path / "missing") == []
