"""The Select tool (W) driven by real mouse and key events, with a tiny random SAM in the interactive thread:
preview before commit, one undo step, Alt to leave out or cut out, boxes, the embedding made once per image,
and the model offered for download when it is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtTest import QTest

from inpaint_studio.core.document import MASK
from inpaint_studio.core.selection import PromptPoint
from inpaint_studio.ui.canvas.tools_select import ObjectSelectTool
from inpaint_studio.ui.canvas.widget import PROPOSAL_COLORS
from inpaint_studio.ui.document.commands import RegionCommand
from inpaint_studio.ui.window.main_window import MainWindow

from .helpers import drag, line

Alt = Qt.KeyboardModifier.AltModifier
NoMod = Qt.KeyboardModifier.NoModifier
Left = Qt.MouseButton.LeftButton
TIMEOUT_MS = 60_000


@pytest.fixture
def selecting(opened: MainWindow, tiny_sam: Path, qtbot) -> Iterator[MainWindow]:
    """The opened window with the tiny SAM chosen, the Select tool active and the image analysed."""
    opened.settings.segmenter_model = str(tiny_sam)
    opened.actions["tool_object_select"].trigger()
    assert opened.canvas.tool.name == "object_select"
    qtbot.waitUntil(lambda: encodes(opened) == 1 and not opened.selection.worker.is_busy, timeout=TIMEOUT_MS)
    yield opened
    select_tool = opened.canvas.tools["object_select"]
    assert isinstance(select_tool, ObjectSelectTool)
    select_tool.drop()  # closing commits a proposal left open, then asks to save: not in a teardown


def encodes(window: MainWindow) -> int:
    cache = window.selection.cache()
    return 0 if cache is None else cache.encodes


def tool(window: MainWindow) -> ObjectSelectTool:
    selected = window.canvas.tool
    assert isinstance(selected, ObjectSelectTool)
    return selected


def click(window: MainWindow, x: int, y: int, modifiers: Qt.KeyboardModifier = NoMod) -> None:
    QTest.mouseClick(window.canvas, Left, modifiers, QPoint(x, y))


def wait_for_proposal(qtbot, window: MainWindow) -> np.ndarray:
    qtbot.waitUntil(lambda: tool(window).proposal is not None and not tool(window).waiting, timeout=TIMEOUT_MS)
    proposal = tool(window).proposal
    assert proposal is not None
    return proposal


def test_a_click_previews_the_object_and_enter_commits_one_undo_step(selecting: MainWindow, qtbot) -> None:
    window = selecting
    click(window, 60, 40)
    proposal = wait_for_proposal(qtbot, window)
    assert tool(window).prompt.points == (PromptPoint(60, 40),)  # document pixels (100 %, image at the corner)
    assert proposal.shape == (160, 240) and proposal.any()
    assert not window.document.mask.any() and window.undo_stack.count() == 0  # a preview only
    # The preview is drawn: the canvas shows the proposal's tint where the model put the object.
    shot = window.canvas.grab().toImage()
    ys, xs = np.nonzero(proposal)
    pixel = shot.pixelColor(int(xs[len(xs) // 2]), int(ys[len(ys) // 2]))
    tint = PROPOSAL_COLORS[False]
    assert abs(pixel.blue() - pixel.red()) > 20 or (pixel.blue(), pixel.red()) == (tint.blue(), tint.red())
    QTest.keyClick(window.canvas, Qt.Key.Key_Return)
    assert np.array_equal(window.document.mask >= 128, proposal >= 128)
    assert window.undo_stack.count() == 1
    command = window.undo_stack.command(0)
    assert isinstance(command, RegionCommand) and command.target == MASK and command.text() == "Add object to mask"
    assert window.generation.recorder.history.head.kind == "mask"
    assert tool(window).overlay() is None
    window.undo()
    assert not window.document.mask.any()
    window.redo()
    assert window.document.mask.any()
    assert encodes(window) == 1  # committing changed the mask only: the embedding stays


def test_alt_click_leaves_a_part_out_and_escape_drops_everything(selecting: MainWindow, qtbot) -> None:
    window = selecting
    click(window, 60, 40)
    first = wait_for_proposal(qtbot, window)
    click(window, 180, 120, Alt)
    qtbot.waitUntil(lambda: tool(window).proposal is not first and not tool(window).waiting, timeout=TIMEOUT_MS)
    points = tool(window).prompt.points
    assert [p.include for p in points] == [True, False] and not tool(window).subtract
    QTest.keyClick(window.canvas, Qt.Key.Key_Escape)
    assert tool(window).overlay() is None and tool(window).prompt.is_empty
    assert not window.document.mask.any() and window.undo_stack.count() == 0
    assert encodes(window) == 1  # both clicks ran the decoder only


def test_starting_with_alt_cuts_the_object_out_of_the_mask(selecting: MainWindow, qtbot) -> None:
    window = selecting
    window.masks.fill()
    click(window, 100, 70, Alt)
    proposal = wait_for_proposal(qtbot, window)
    assert tool(window).subtract and tool(window).prompt.points[0].include
    QTest.keyClick(window.canvas, Qt.Key.Key_Enter)
    mask = window.document.mask
    assert np.array_equal(mask == 0, proposal >= 128) and (mask[proposal < 128] == 255).all()
    assert window.undo_stack.command(window.undo_stack.count() - 1).text() == "Remove object from mask"


def test_a_drag_is_a_box_prompt(selecting: MainWindow, qtbot) -> None:
    window = selecting
    drag(window.canvas, line(30, 20, 150, 110, 6))
    wait_for_proposal(qtbot, window)
    prompt = tool(window).prompt
    assert not prompt.points and prompt.box == pytest.approx((30, 20, 150, 110))


def test_switching_tools_commits_the_proposal(selecting: MainWindow, qtbot) -> None:
    window = selecting
    click(window, 60, 40)
    proposal = wait_for_proposal(qtbot, window)
    window.actions["tool_mask_brush"].trigger()
    assert np.array_equal(window.document.mask >= 128, proposal >= 128) and window.undo_stack.count() == 1


def test_a_click_outside_the_image_is_one_sentence(selecting: MainWindow) -> None:
    window = selecting
    click(window, 300, 40)  # the image is 240 px wide, shown at 100 % from the canvas's corner
    assert window.message_bar.kind() == "error"
    assert "outside the 240×160 image" in window.message_bar.text()
    assert tool(window).prompt.is_empty and not window.selection.worker.is_busy


def test_the_embedding_is_made_again_only_when_the_pixels_change(selecting: MainWindow, qtbot) -> None:
    window = selecting
    click(window, 60, 40)
    wait_for_proposal(qtbot, window)
    QTest.keyClick(window.canvas, Qt.Key.Key_Escape)
    window.actions["tool_paint_brush"].trigger()
    drag(window.canvas, line(20, 20, 120, 20))  # colour on a new layer: the picture changed
    window.actions["tool_object_select"].trigger()
    qtbot.waitUntil(lambda: encodes(window) == 2 and not window.selection.worker.is_busy, timeout=TIMEOUT_MS)
    click(window, 60, 40)
    wait_for_proposal(qtbot, window)
    assert encodes(window) == 2


def test_without_a_model_the_tool_offers_the_download_with_size_and_licence(
    opened: MainWindow, qtbot, tiny_sam: Path, tmp_path: Path, monkeypatch
) -> None:
    import huggingface_hub.constants

    from tests.tiny_sam import hub_cache

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    opened.actions["tool_object_select"].trigger()
    text = opened.message_bar.text()
    assert "SlimSAM-50" in text and "112 MB" in text and "Apache-2.0" in text
    assert opened.message_bar.actions_offered() == ["Download", "Choose model…"]
    fetched: list[str] = []

    def fake_download(repo_id: str, progress=None) -> Path:  # the hub, offline: lay the files out as it would
        fetched.append(repo_id)
        return hub_cache(cache, repo_id, tiny_sam)

    opened.selection.downloader.download = fake_download
    opened.message_bar.trigger("Download")
    qtbot.waitUntil(lambda: encodes(opened) == 1 and not opened.selection.worker.is_busy, timeout=TIMEOUT_MS)
    assert fetched == ["nielsr/slimsam-50-uniform"] and "is ready" in opened.message_bar.text()
    click(opened, 60, 40)
    wait_for_proposal(qtbot, opened)
    tool(opened).drop()
