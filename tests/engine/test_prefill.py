"""Pre-filling new canvas before outpainting: the classical fill behind a seam that removal models plug into."""

from __future__ import annotations

import numpy as np
import pytest

from inpaint_studio.core.canvas import Margins, expand_array, new_area_mask
from inpaint_studio.core.errors import BadInputError, CancelledError
from inpaint_studio.engine import prefill as prefill_module
from inpaint_studio.engine.events import CancelToken, JobCancelled, JobProgress
from inpaint_studio.engine.prefill import PrefillTask, prefill, prefill_methods, register_prefill
from inpaint_studio.engine.tasks import TaskFinished, Workspace, run_task


def gradient(width: int = 96, height: int = 64) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x / width * 255, y / height * 255, np.full_like(x, 128)], axis=-1).astype(np.uint8)


RIGHT_AND_BOTTOM = Margins(0, 0, 48, 16)


def expanded(margins: Margins = RIGHT_AND_BOTTOM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    original = gradient()
    canvas = expand_array(np.dstack([original, np.full(original.shape[:2], 255, np.uint8)]), margins)
    return original, canvas, new_area_mask(96, 64, margins)


def test_the_classical_prefill_continues_the_edge_and_keeps_the_original_exact():
    original, canvas, hole = expanded()
    out = prefill(canvas, hole, "classic")
    assert out.shape == canvas.shape and np.array_equal(out[:64, :96, :3], original)
    assert (out[..., 3] == 255).all()  # the filled pixels became opaque
    # Continued colours: next to the right edge the red channel is what the edge had (about 255), below the
    # bottom edge the green channel is what the bottom row had; no black.
    assert out[:64, 100, 0].min() > 200 and out[70, :96, 1].min() > 200
    assert out[hole == 255, :3].max(axis=-1).min() > 60


def test_rgb_stays_rgb_and_none_changes_nothing():
    _original, canvas, hole = expanded()
    rgb = np.ascontiguousarray(canvas[..., :3])
    filled = prefill(rgb, hole, "classic:ns")
    assert filled.shape == rgb.shape and filled[hole == 255].any()
    assert np.array_equal(prefill(canvas, hole, "none"), canvas)


def test_unknown_methods_and_bad_inputs_are_one_sentence():
    _original, canvas, hole = expanded()
    with pytest.raises(BadInputError, match="The pre-fill 'wat' is unknown; use one of: classic"):
        prefill(canvas, hole, "wat")
    with pytest.raises(BadInputError, match="The pre-fill 'lama' needs the generation engine"):
        prefill(canvas, hole, "lama")  # a removal network loads through the engine (an engine task)
    with pytest.raises(BadInputError, match="differ in size"):
        prefill(canvas, hole[:-1], "classic")
    with pytest.raises(BadInputError, match="RGB or RGBA"):
        prefill(canvas[..., 0], hole, "classic")


def test_a_removal_model_plugs_in_through_the_seam(monkeypatch):
    monkeypatch.setattr(prefill_module, "_METHODS", dict(prefill_module._METHODS))
    monkeypatch.setattr(prefill_module, "_LABELS", dict(prefill_module._LABELS))
    seen = {}

    def fake_removal(rgb, mask, context):
        seen["engine"] = context.engine
        out = rgb.copy()
        out[mask > 0] = (10, 20, 30)
        return out

    register_prefill("removal-test", fake_removal, "A removal model")
    assert "removal-test" in prefill_methods() and prefill_methods()[-1] == "none"
    original, canvas, hole = expanded()
    engine = object()
    out = prefill(canvas, hole, "removal-test", engine=engine)
    assert seen["engine"] is engine and (out[hole == 255, :3] == (10, 20, 30)).all()
    assert np.array_equal(out[:64, :96, :3], original)
    with pytest.raises(ValueError):
        register_prefill("none", fake_removal)


def test_the_prefill_task_reports_progress_and_can_be_cancelled():
    _original, canvas, hole = expanded(Margins(64, 0, 64, 0))
    events = []
    value = run_task(PrefillTask(canvas, hole, "classic"), Workspace(), emit=events.append, job_id=4)
    assert any(isinstance(e, JobProgress) and e.job_id == 4 for e in events)
    assert isinstance(events[-1], TaskFinished) and events[-1].value is value
    assert "classical fill" in PrefillTask(canvas, hole).title
    cancel = CancelToken()
    cancel.cancel()
    events.clear()
    with pytest.raises(CancelledError):
        run_task(PrefillTask(canvas, hole), Workspace(), emit=events.append, cancel=cancel)
    assert isinstance(events[-1], JobCancelled)


def test_a_removal_network_prefills_the_new_area_through_the_engine(tmp_path):
    """MI-GAN's published ONNX interface (a tiny export, tests/removal_models.py) as outpainting's pre-fill:
    loaded through the Engine as a downloaded file is, the original pixels exact, the new area filled."""
    from inpaint_studio.engine.runner import Engine
    from tests.removal_models import build_migan_onnx

    weights = build_migan_onnx(tmp_path / "migan_pipeline_v2.onnx")
    original, canvas, hole = expanded()
    engine = Engine()
    try:
        out = prefill(canvas, hole, str(weights), engine=engine)
        again = prefill(canvas, hole, str(weights), engine=engine)  # the loaded network is kept
        assert engine.removal.loaded is not None
    finally:
        engine.release()
    assert np.array_equal(out, again)
    assert np.array_equal(out[:64, :96, :3], original) and (out[..., 3] == 255).all()
    assert not np.array_equal(out[hole == 255, :3], prefill(canvas, hole, "classic")[hole == 255, :3])
    assert "migan" in prefill_methods() and "lama" in prefill_methods()


def test_a_classical_prefill_task_does_not_wait_for_torch():
    """The engine thread runs it without importing torch first (ui/engine_thread/worker.py _needs_libraries)."""
    _original, canvas, hole = expanded()
    assert not PrefillTask(canvas, hole, "classic").needs_torch
    assert not PrefillTask(canvas, hole, "classic:ns").needs_torch
    assert not PrefillTask(canvas, hole, "none").needs_torch
    assert PrefillTask(canvas, hole, "migan").needs_torch
