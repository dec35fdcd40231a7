"""Upscaling: tiling without seams, exact output sizes, progress and cancel; spandrel networks with random
weights (vision tests); one sentence without spandrel; the `upscale` command."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.cli import main
from inpaint_studio.core.errors import BadInputError, CancelledError, ModelUnavailableError
from inpaint_studio.engine.events import CancelToken
from inpaint_studio.engine.runner import Engine
from inpaint_studio.engine.upscale import UpscaleJob, run_tiled, tile_boxes
from tests.engine.helpers import photo
from tests.tiny_addons import build_upscaler_weights


def nearest(scale: int):
    return lambda rgb: np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


def test_tiles_cover_the_image_and_blend_without_a_seam():
    rgb = np.asarray(photo(300, 170))
    for tile, overlap in ((64, 16), (128, 32), (0, 0), (512, 32)):
        boxes = tile_boxes(300, 170, tile, overlap)
        covered = np.zeros((170, 300), bool)
        for left, top, right, bottom in boxes:
            covered[top:bottom, left:right] = True
        assert covered.all()
        job = UpscaleJob(model="x", scale=2, tile=tile, overlap=overlap)
        out = run_tiled(nearest(2), rgb, 2, job, lambda d, t: None, CancelToken())
        # A model that is the same everywhere: tiled and whole give the same pixels (blends of equal values).
        assert np.array_equal(out, nearest(2)(rgb))


def test_progress_counts_tiles_and_cancel_stops_between_them():
    rgb = np.asarray(photo(200, 200))
    job = UpscaleJob(model="x", scale=2, tile=64, overlap=16)
    seen: list[tuple[int, int]] = []
    run_tiled(nearest(2), rgb, 2, job, lambda d, t: seen.append((d, t)), CancelToken())
    total = len(tile_boxes(200, 200, 64, 16))
    assert seen[0] == (0, total) and seen[-1] == (total, total) and len(seen) == total + 1
    cancel = CancelToken()
    calls = []

    def model(tile):
        calls.append(1)
        if len(calls) == 3:
            cancel.cancel()
        return nearest(2)(tile)

    with pytest.raises(CancelledError):
        run_tiled(model, rgb, 2, job, lambda d, t: None, cancel)
    assert len(calls) == 3


def test_bad_requests_are_one_sentence_each():
    assert UpscaleJob(model="", scale=3, tile=10).problems() == [
        "No upscaler is chosen; pick one (e.g. a Real-ESRGAN file) or download one.",
        "Upscale factor 3 is not offered; use 2 or 4.",
        "Tile size 10 px is outside 64-4096; use 512 (or 0 for no tiles).",
    ]
    problem = UpscaleJob(model="x", scale=4).problems((6000, 4000))[0]
    assert "gives 24000x16000 (384 megapixels), more than this app's limit of 250" in problem


def test_without_spandrel_the_upscaler_says_what_to_install(tmp_path, monkeypatch):
    weights = tmp_path / "RealESRGAN_x4.safetensors"
    weights.write_bytes(b"not read: spandrel is needed first")
    monkeypatch.setitem(sys.modules, "spandrel", None)  # as if the optional vision extra were not installed
    with pytest.raises(ModelUnavailableError) as caught:
        Engine().upscale(UpscaleJob(model=str(weights)), photo(32, 32))
    assert 'pip install "inpaint-studio[vision]"' in str(caught.value)


def test_pickled_and_unknown_files_are_refused_before_loading(tmp_path):
    for name, phrase in (("model.bin", "pickled file"), ("model.onnx", "not an upscaler file")):
        path = tmp_path / name
        path.write_bytes(b"x")
        with pytest.raises(ModelUnavailableError, match=phrase):
            Engine().upscale(UpscaleJob(model=str(path)), photo(32, 32))
    with pytest.raises(BadInputError, match="Upscale factor 3"):
        Engine().upscale(UpscaleJob(model=str(path), scale=3), photo(32, 32))


# ---- spandrel networks (the vision extra) --------------------------------------------------------------------


@pytest.mark.vision
def test_a_network_upscales_to_the_exact_size_tiled_or_not(tmp_path):
    x2, x4 = build_upscaler_weights(tmp_path, 2), build_upscaler_weights(tmp_path, 4)
    engine = Engine()
    image = photo(100, 70)
    rgba = image.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.tile(np.linspace(0, 255, 100, dtype=np.uint8), (70, 1))))
    cases = ((x2, 2, 1), (x2, 4, 2), (x4, 4, 1), (x4, 2, 1))
    for weights, scale, passes in cases:
        progress: list[tuple[int, int]] = []
        result = engine.upscale(
            UpscaleJob(model=str(weights), scale=scale, tile=64, overlap=16),
            rgba,
            progress=lambda d, t, seen=progress: seen.append((d, t)),
        )
        assert result.image.size == (100 * scale, 70 * scale) and result.image.mode == "RGBA"
        assert result.extra["passes"] == passes and result.extra["architecture"] == "ESRGAN"
        assert progress[-1][0] == progress[-1][1] > 1
        alpha = np.asarray(result.image.getchannel("A"))
        assert alpha[:, 0].max() < 20 and alpha[:, -1].min() > 235  # the transparency scaled beside the RGB
    whole = engine.upscale(UpscaleJob(model=str(x2), scale=2, tile=0), image).image
    tiled = engine.upscale(UpscaleJob(model=str(x2), scale=2, tile=64, overlap=16), image).image
    difference = np.abs(np.asarray(whole).astype(int) - np.asarray(tiled).astype(int))
    assert difference.max() <= 4 and difference.mean() < 0.1  # tiles blend in: no seam
    record = engine.upscale(UpscaleJob(model=str(x2), scale=2), image).record()
    assert record["upscale"]["model"] == str(x2) and record["size"] == [200, 140]
    engine.release()


@pytest.mark.vision
def test_a_removal_network_is_not_an_upscaler(tmp_path):
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    path = tmp_path / "lama.safetensors"
    save_file({k: v.contiguous() for k, v in LaMa(in_nc=4, out_nc=3).state_dict().items()}, str(path))
    with pytest.raises(ModelUnavailableError, match="is an object-removal model, not an upscaling model"):
        Engine().upscale(UpscaleJob(model=str(path)), photo(32, 32))


@pytest.mark.vision
def test_the_upscale_command_writes_the_enlarged_image(tmp_path, capsys):
    weights = build_upscaler_weights(tmp_path, 4)
    source = tmp_path / "photo.png"
    photo(60, 40).save(source, pnginfo=None)
    out = tmp_path / "big.png"
    assert main(["upscale", str(source), "-o", str(out), "--model", str(weights), "--scale", "2", "-q"]) == 0
    assert Image.open(out).size == (120, 80)
    assert "120x80  ESRGAN x4" in capsys.readouterr().out


def test_the_upscale_command_refuses_bad_input_with_exit_2(tmp_path, capsys):
    source = tmp_path / "photo.png"
    photo(60, 40).save(source)
    code = main(["upscale", str(source), "-o", str(tmp_path / "out.png"), "--model", "x/y", "--tile", "10"])
    assert code == 2 and "Tile size 10 px" in capsys.readouterr().err
    code = main(["upscale", str(source), "-o", str(tmp_path / "out.png"), "--model", "someone/upscaler"])
    assert code == 3 and "is not installed" in capsys.readouterr().err
    assert main(["upscale", str(source), "-o", str(tmp_path / "out.gif"), "--model", "x/y"]) == 2


def test_cached_hub_upscalers_resolve(hub_cache, tmp_path):
    """A catalog reference "owner/name/file.pth" finds the file in the cache (without loading it)."""
    from inpaint_studio.engine.addons import resolve_addon
    from tests.tiny_addons import put_in_cache

    weights = tmp_path / "RealESRGAN_x4.pth"
    weights.write_bytes(b"pickled weights are read by spandrel's restricted loader, not here")
    put_in_cache(hub_cache, "ai-forever/Real-ESRGAN", {"RealESRGAN_x4.pth": weights})
    found = resolve_addon("ai-forever/Real-ESRGAN/RealESRGAN_x4.pth", "upscaler")
    assert found.path.name == "RealESRGAN_x4.pth" and found.revision == "b" * 40


def test_diffusers_sd_x4_upscaler_runs_tiled_with_progress_and_cancel(tmp_path):
    """The optional diffusion upscaler (prompt-guided), on a tiny StableDiffusionUpscalePipeline."""
    from tests.tiny_addons import build_sd_x4_upscaler

    folder = build_sd_x4_upscaler(tmp_path / "x4")
    engine = Engine()
    progress: list[tuple[int, int]] = []
    job = UpscaleJob(model=str(folder), scale=4, steps=2, tile=64, overlap=16, prompt="a photo")
    result = engine.upscale(job, photo(96, 40), progress=lambda d, t: progress.append((d, t)))
    assert result.image.size == (384, 160) and result.extra["architecture"] == "StableDiffusionUpscalePipeline"
    tiles = len(tile_boxes(96, 40, 64, 16))
    assert progress[-1] == (tiles * 2, tiles * 2)
    half = engine.upscale(dataclasses.replace(job, scale=2), photo(32, 32))
    assert half.image.size == (64, 64)
    cancel = CancelToken()
    with pytest.raises(CancelledError):
        engine.upscale(job, photo(96, 40), progress=lambda d, t: cancel.cancel(), cancel=cancel)
    engine.release()
