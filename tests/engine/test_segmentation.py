"""Click-to-select with a tiny random SAM built offline: loading, the coordinates SAM gets, the mask it gives
back, one embedding per image, and every refusal in one sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.core.selection import PromptPoint, SelectionPrompt
from inpaint_studio.engine.events import JobFailed
from inpaint_studio.engine.segmentation import (
    DEFAULT_SEGMENTER,
    EncodeImage,
    Segmenter,
    SegmenterCache,
    SelectObject,
    is_segmenter_folder,
    resolve_segmenter,
    segmenter_catalog,
    segmenter_download_hint,
    segmenter_entry,
)
from inpaint_studio.engine.tasks import TaskFinished, Workspace, run_task
from tests.tiny_sam import IMAGE_SIZE


def photo(width: int = 150, height: int = 90, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([x / width * 200, y / height * 200, np.full_like(x, 90)], axis=-1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def segmenter(tiny_sam: Path) -> Segmenter:
    return Segmenter(resolve_segmenter(str(tiny_sam)))


class ForwardSpy:
    """Records what the mask decoder is given (and can replace its answer) without touching the model."""

    def __init__(self, segmenter: Segmenter, logits=None) -> None:
        self.model = segmenter.model
        self.original = self.model.forward
        self.calls: list[dict] = []
        self.logits = logits

    def __enter__(self) -> ForwardSpy:
        def spy(**kwargs):
            self.calls.append(kwargs)
            out = self.original(**kwargs)
            if self.logits is not None:
                import torch

                count = out.pred_masks.shape[2]
                out.pred_masks = torch.as_tensor(self.logits, dtype=torch.float32)[None, None, None].repeat(
                    1, 1, count, 1, 1
                )
            return out

        self.model.forward = spy
        return self

    def __exit__(self, *exc) -> None:
        del self.model.forward


def test_the_catalog_offers_a_cpu_sized_default_with_size_and_licence():
    entry = segmenter_entry(DEFAULT_SEGMENTER)
    assert entry is not None and entry.model_type == "sam" and 30 <= entry.download_mb <= 200
    assert all(e.licence and e.download_mb > 0 and e.model_type in ("sam", "sam2") for e in segmenter_catalog())
    assert "112 MB, licence Apache-2.0" in segmenter_download_hint(DEFAULT_SEGMENTER)


def test_a_local_folder_loads_and_answers_a_click_with_a_mask_of_the_image_size(segmenter, tiny_sam):
    assert segmenter.info.model_type == "sam" and segmenter.info.source == "folder"
    image = photo()
    embedding = segmenter.embed(image, key="a")
    assert embedding.size == (150, 90)
    # SAM resizes the longest side to its input size and pads the rest: 150x90 -> 128x77 (76.8 rounded).
    assert embedding.model_size == (IMAGE_SIZE, 77)
    result = segmenter.predict(embedding, SelectionPrompt((PromptPoint(40.5, 30.5),)))
    assert result.mask.shape == (90, 150) and result.mask.dtype == np.uint8
    assert set(np.unique(result.mask)) <= {0, 255}
    again = segmenter.predict(embedding, SelectionPrompt((PromptPoint(40.5, 30.5),)))
    assert np.array_equal(result.mask, again.mask) and result.score == again.score  # deterministic
    rgba = np.dstack([image, np.full(image.shape[:2], 7, np.uint8)])  # alpha is ignored
    same = segmenter.predict(segmenter.embed(rgba), SelectionPrompt((PromptPoint(40.5, 30.5),)))
    assert np.array_equal(same.mask, result.mask)


def test_points_and_boxes_reach_the_decoder_in_the_models_coordinates(segmenter):
    embedding = segmenter.embed(photo(), key="b")
    sx, sy = IMAGE_SIZE / 150, 77 / 90
    prompt = SelectionPrompt(
        (PromptPoint(75, 45), PromptPoint(120, 10, include=False)),
        box=(10, 20, 140, 80),
    )
    with ForwardSpy(segmenter) as spy:
        segmenter.predict(embedding, prompt)
    (call,) = spy.calls
    points = call["input_points"].numpy()
    assert points.shape == (1, 1, 2, 2)
    assert np.allclose(points[0, 0], [[75 * sx, 45 * sy], [120 * sx, 10 * sy]])
    assert call["input_labels"].numpy().tolist() == [[[1, 0]]]
    assert np.allclose(call["input_boxes"].numpy(), [[[10 * sx, 20 * sy, 140 * sx, 80 * sy]]])
    assert call["multimask_output"] is False  # more than one hint: SAM's single best answer


def test_a_single_click_takes_the_best_of_sams_three_guesses(segmenter):
    embedding = segmenter.embed(photo(), key="c")
    with ForwardSpy(segmenter) as spy:
        result = segmenter.predict(embedding, SelectionPrompt((PromptPoint(20, 20),)))
    assert spy.calls[0]["multimask_output"] is True and "input_boxes" not in spy.calls[0]
    import torch

    with torch.inference_mode():
        out = segmenter.model(
            image_embeddings=embedding.tensors,
            input_points=spy.calls[0]["input_points"],
            input_labels=spy.calls[0]["input_labels"],
            multimask_output=True,
        )
    assert result.score == pytest.approx(float(out.iou_scores.max()))


def test_the_low_resolution_mask_is_cropped_out_of_sams_padding_before_scaling(segmenter):
    """SAM pads the resized image to a square; its masks cover the padding too. A mask that is "on" in the top
    40/128 of the padded square covers the top 40/77 of the image (the crop), not 40/128 of it (no crop)."""
    embedding = segmenter.embed(photo(), key="d")
    low = IMAGE_SIZE // 4  # SAM's masks are a quarter of its input side
    logits = np.full((low, low), -10.0, np.float32)
    logits[: 40 // 4, : low // 2] = 10.0  # the top 40 px and the left half of the padded 128 px square
    with ForwardSpy(segmenter, logits):
        mask = segmenter.predict(embedding, SelectionPrompt((PromptPoint(5, 5),))).mask
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    assert rows[0] == 0 and abs(rows[-1] + 1 - 90 * 40 / 77) <= 2  # ~47 rows (no crop would give ~28)
    assert cols[0] == 0 and abs(cols[-1] + 1 - 75) <= 2  # the left half of 150 px


def test_a_click_outside_the_image_is_one_sentence(segmenter):
    embedding = segmenter.embed(photo(), key="e")
    with pytest.raises(BadInputError, match="outside the 150×90 image"):
        segmenter.predict(embedding, SelectionPrompt((PromptPoint(150, 10),)))


def test_the_cache_encodes_each_image_once_and_decodes_each_click(tiny_sam):
    cache = SegmenterCache()
    model, image = str(tiny_sam), photo()
    first = cache.embedding(model, ("doc", 1), image)
    assert cache.loads == 1 and cache.encodes == 1
    assert cache.embedding(model, ("doc", 1), None) is first  # a click on the same image: no encoder
    assert cache.encodes == 1
    cache.embedding(model, ("doc", 2), photo(seed=1))  # the pixels changed: a new key, encoded once more
    cache.embedding(model, ("doc", 3), photo(seed=2))
    assert cache.encodes == 3 and cache.loads == 1
    assert cache.cached_embedding(model, ("doc", 1)) is None  # two are kept
    with pytest.raises(BadInputError, match="changed since it was analysed"):
        cache.embedding(model, ("doc", 1), None)


def test_tasks_run_through_the_workspace_and_report_like_a_worker(tiny_sam):
    workspace, events = Workspace(), []
    model, image = str(tiny_sam), photo()
    embedding = run_task(EncodeImage(model, "k", image), workspace, emit=events.append, job_id=7)
    assert isinstance(events[-1], TaskFinished) and events[-1].job_id == 7 and events[-1].value is embedding
    result = run_task(SelectObject(model, "k", None, SelectionPrompt((PromptPoint(3, 3),))), workspace)
    assert result.mask.shape == (90, 150)
    assert workspace.peek(SegmenterCache).encodes == 1  # the click reused the task's embedding
    events.clear()
    with pytest.raises(BadInputError):
        run_task(SelectObject(model, "k", None, SelectionPrompt((PromptPoint(-1, 3),))), workspace, emit=events.append)
    assert isinstance(events[-1], JobFailed) and "outside" in events[-1].message
    workspace.release()
    assert workspace.peek(SegmenterCache) is None


def test_a_hub_id_resolves_from_the_cache_like_a_downloaded_model(sam_hub):
    info = resolve_segmenter(sam_hub)
    assert info.source == "hub" and info.revision == "c" * 40 and info.reference == sam_hub
    segmenter = Segmenter(info)
    mask = segmenter.predict(segmenter.embed(photo()), SelectionPrompt(box=(10, 10, 60, 50))).mask
    assert mask.shape == (90, 150)


def test_a_missing_hub_model_says_how_to_get_it(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelUnavailableError) as info:
        resolve_segmenter(DEFAULT_SEGMENTER)
    text = str(info.value)
    assert "not installed" in text and f"inpaint-studio download {DEFAULT_SEGMENTER}" in text and "112 MB" in text


def test_folders_that_are_not_selection_models_are_refused_unread(tmp_path, tiny_sam, tiny_sd_inpaint):
    with pytest.raises(ModelUnavailableError, match="no config.json"):
        resolve_segmenter(str(tiny_sd_inpaint))  # a diffusers pipeline: model_index.json, no config.json
    unet = tiny_sd_inpaint / "unet"
    with pytest.raises(ModelUnavailableError, match="not a Segment Anything model"):
        resolve_segmenter(str(unet))
    pickled = tmp_path / "pickled-sam"
    shutil.copytree(tiny_sam, pickled)
    (pickled / "model.safetensors").unlink()
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04 this would run code if unpickled")
    with pytest.raises(ModelUnavailableError, match=r"only pickled weights \(pytorch_model.bin\)"):
        resolve_segmenter(str(pickled))
    broken = tmp_path / "broken-sam"
    shutil.copytree(tiny_sam, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(ModelUnavailableError, match="could not be loaded"):
        Segmenter(resolve_segmenter(str(broken)))
    with pytest.raises(ModelUnavailableError, match="not a hub id"):
        resolve_segmenter("./no/such/folder")
    assert is_segmenter_folder(tiny_sam) and not is_segmenter_folder(tiny_sd_inpaint)


def test_sam2_without_torchvision_says_what_to_install(tmp_path):
    pytest.importorskip("transformers")
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError):
        pass
    else:
        pytest.skip("torchvision is installed here: SAM 2 works (the vision test below)")
    from tests.tiny_sam import build_tiny_sam2

    folder = build_tiny_sam2(tmp_path / "sam2-model-only", with_processor=False)
    with pytest.raises(ModelUnavailableError, match=r"SAM 2 model, whose image processing needs torchvision.*vision"):
        Segmenter(resolve_segmenter(str(folder)))


@pytest.mark.vision
def test_sam2_through_transformers(tmp_path):
    """SAM 2 (Sam2Model + Sam2Processor; its processor needs torchvision, hence the vision venv)."""
    from tests.tiny_sam import build_tiny_sam2

    folder = build_tiny_sam2(tmp_path / "tiny-sam2")
    segmenter = Segmenter(resolve_segmenter(str(folder)))
    embedding = segmenter.embed(photo())
    assert segmenter.info.model_type == "sam2" and embedding.model_size == (IMAGE_SIZE, IMAGE_SIZE)
    with ForwardSpy(segmenter) as spy:
        result = segmenter.predict(embedding, SelectionPrompt((PromptPoint(75, 45),)))
    assert np.allclose(spy.calls[0]["input_points"].numpy()[0, 0], [[75 * IMAGE_SIZE / 150, 45 * IMAGE_SIZE / 90]])
    assert result.mask.shape == (90, 150) and set(np.unique(result.mask)) <= {0, 255}


@pytest.mark.parametrize(
    ("model_hw", "image_wh"), [((77, 128), (150, 90)), ((683, 1024), (1500, 1000)), ((64, 64), (37, 59))]
)
def test_scaling_the_mask_matches_torchs_bilinear_resize_around_the_object(model_hw, image_wh):
    """The last stage (image size) is computed with OpenCV near the object only; the result is what the
    processor's full-frame torch resize gives (bilinear, half-pixel centres), up to float rounding at the edge."""
    import torch
    import torch.nn.functional as F

    from inpaint_studio.engine.segmentation import upscale_mask

    rng = np.random.default_rng(sum(model_hw))
    coarse = torch.from_numpy(rng.normal(0, 1, (1, 1, model_hw[0] // 8 + 1, model_hw[1] // 8 + 1)).astype(np.float32))
    logits = F.interpolate(coarse, model_hw, mode="bilinear")[0, 0] - 0.6
    logits[:, : model_hw[1] // 3] = -4.0  # a left third with nothing in it: skipped, still exactly 0
    width, height = image_wh
    expected = (
        F.interpolate(logits[None, None], (height, width), mode="bilinear", align_corners=False)[0, 0] > 0
    ).numpy()
    mask = upscale_mask(logits.numpy(), width, height)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    differ = int(((mask > 0) != expected).sum())
    assert differ <= max(2, expected.sum() // 10_000)
    assert not upscale_mask(np.full(model_hw, -1.0, np.float32), width, height).any()
