"""`inpaint-studio select` and `inpaint-studio outpaint`: outputs, bit-exact originals, and bad input in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.cli import main
from inpaint_studio.core.parameters import parse_parameters
from inpaint_studio.core.selection import PromptPoint, SelectionPrompt
from inpaint_studio.engine.segmentation import DEFAULT_SEGMENTER, Segmenter, resolve_segmenter


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    y, x = np.mgrid[0:60, 0:90].astype(np.float32)
    pixels = np.stack([x * 2.5, y * 3.5, np.full_like(x, 100)], axis=-1) + rng.normal(0, 5, (60, 90, 3))
    path = tmp_path / "photo.png"
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
    return path


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# ---- select -------------------------------------------------------------------------------------------------


def test_select_writes_the_mask_the_studio_would_make(photo, tiny_sam, tmp_path, capsys):
    out = tmp_path / "mask.png"
    argv = ["select", str(photo), "--point", "30,20", "--exclude", "70,40", "--box", "5,5,80,55"]
    assert main([*argv, "-o", str(out), "--model", str(tiny_sam)]) == 0
    with Image.open(out) as written:
        assert written.mode == "L" and written.size == (90, 60)
        mask = np.asarray(written)
    assert set(np.unique(mask)) <= {0, 255}
    segmenter = Segmenter(resolve_segmenter(str(tiny_sam)))
    image = np.asarray(Image.open(photo).convert("RGB"))
    prompt = SelectionPrompt((PromptPoint(30, 20), PromptPoint(70, 40, include=False)), box=(5, 5, 80, 55))
    assert np.array_equal(mask, segmenter.predict(segmenter.embed(image), prompt).mask)
    assert "px selected" in capsys.readouterr().out


def test_select_takes_an_installed_hub_id(photo, sam_hub, tmp_path):
    out = tmp_path / "mask.png"
    assert main(["select", str(photo), "--point", "10,10", "-o", str(out), "--model", sam_hub, "-q"]) == 0
    assert out.is_file()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--point", "90,10"], "The point 90,10 is outside the 90×60 image; use x from 0 to 89 and y from 0 to 59."),
        (["--point", "12"], "--point '12' is not X,Y in pixels"),
        (["--point", "1,2", "--box", "1,2,3"], "--box '1,2,3' is not X0,Y0,X1,Y1"),
        (["--exclude", "3,4"], "Say where the object is with --point X,Y"),
        (["--box", "0,0,91,60"], "reaches outside the 90×60 image"),
    ],
)
def test_select_bad_input_is_one_sentence_and_exit_2(photo, tiny_sam, tmp_path, capsys, extra, needle):
    out = tmp_path / "mask.png"
    assert main(["select", str(photo), *extra, "-o", str(out), "--model", str(tiny_sam)]) == 2
    assert needle in one_line(capsys)
    assert not out.exists()


def test_select_model_problems_exit_3(photo, tiny_sd_inpaint, tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    out = tmp_path / "mask.png"
    assert main(["select", str(photo), "--point", "1,1", "-o", str(out)]) == 3
    line = one_line(capsys)
    assert f"{DEFAULT_SEGMENTER} is not installed" in line and "112 MB" in line
    assert main(["select", str(photo), "--point", "1,1", "-o", str(out), "--model", str(tiny_sd_inpaint)]) == 3
    assert "not a selection model" in one_line(capsys)
    assert not out.exists()


def test_download_recognises_a_selection_model(tiny_sam, monkeypatch, capsys):
    import inpaint_studio.cli.models as models_cli

    monkeypatch.setattr(models_cli, "download", lambda repo_id: tiny_sam)
    assert main(["download", "tiny-org/tiny-sam"]) == 0
    assert "selection model installed" in capsys.readouterr().out


def test_models_lists_the_selection_models(capsys):
    assert main(["models", "--json"]) == 0
    import json

    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows[DEFAULT_SEGMENTER]["family"] == "selection (sam)" and rows[DEFAULT_SEGMENTER]["licence"]


# ---- outpaint -------------------------------------------------------------------------------------------------


def test_outpaint_classic_extends_and_keeps_every_original_pixel(photo, tmp_path, capsys):
    out = tmp_path / "wide.png"
    assert main(["outpaint", str(photo), "--expand", "16,0,40,8", "-o", str(out), "--seed", "1"]) == 0
    original = np.asarray(Image.open(photo))
    with Image.open(out) as written:
        assert written.size == (90 + 56, 60 + 8) and written.mode == "RGB"
        result = np.asarray(written)
        params = parse_parameters(written.info["parameters"])
    assert np.array_equal(result[0:60, 16:106], original)  # bit-exact
    new = np.ones(result.shape[:2], bool)
    new[0:60, 16:106] = False
    assert result[new].max(axis=-1).min() > 20  # filled, no black border
    assert "Seed" not in params and "Steps" not in params  # the classical fill uses neither (not recorded)
    assert "pre-filled the new area" in capsys.readouterr().out


@pytest.mark.slow
def test_outpaint_with_a_diffusion_model(photo, tiny_sd_inpaint, tmp_path):
    out = tmp_path / "out.png"
    argv = ["outpaint", str(photo), "--expand", "0,0,48,0", "-o", str(out), "--model", str(tiny_sd_inpaint)]
    argv += ["--prompt", "a meadow", "--steps", "2", "--seed", "4", "--feather", "4", "-q"]
    assert main(argv) == 0
    prefill_only = tmp_path / "prefill.png"
    assert main(["outpaint", str(photo), "--expand", "0,0,48,0", "-o", str(prefill_only), "--model", "classic"]) == 0
    original = np.asarray(Image.open(photo))
    with Image.open(out) as written:
        result = np.asarray(written)
        params = parse_parameters(written.info["parameters"])
    assert result.shape == (60, 138, 3) and np.array_equal(result[:, :90], original)
    # the model painted the new area beyond the blend strip (4 px feather + 1): it differs from the pre-fill alone
    assert not np.array_equal(result[:, 96:], np.asarray(Image.open(prefill_only))[:, 96:])
    assert params["prompt"] == "a meadow" and params["Seed"] == "4"


@pytest.mark.parametrize(
    ("expand", "extra", "needle"),
    [
        ("0,0,20000,20000", [], "more than the 250,000,000 this app works with; add less canvas."),
        ("0,0,20", [], "--expand '0,0,20' is not LEFT,TOP,RIGHT,BOTTOM"),
        ("0,-4,0,0", [], "negative"),
        ("0,0,16,0", ["--prefill", "wat"], "The pre-fill 'wat' is unknown"),
        ("0,0,16,0", ["--steps", "0"], "Steps is 0"),
    ],
)
def test_outpaint_bad_input_is_one_sentence_and_exit_2(photo, tmp_path, capsys, expand, extra, needle):
    out = tmp_path / "out.png"
    assert main(["outpaint", str(photo), "--expand", expand, "-o", str(out), *extra]) == 2
    assert needle in one_line(capsys)
    assert not out.exists()
