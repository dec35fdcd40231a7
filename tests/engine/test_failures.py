"""Failures users hit, each turned into a sentence that says what to do, with the engine still usable."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

from inpaint_studio.core.errors import EngineError, ModelUnavailableError, OutOfMemoryError
from inpaint_studio.engine.events import JobFailed
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import box_mask, job_for, photo, pixels


@pytest.fixture
def engine():
    """A fresh engine per test: these tests patch the loaded modules."""
    eng = Engine()
    yield eng
    eng.release()


def loaded(engine: Engine, model) -> object:
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    engine.run(job_for(model), image, mask)
    return engine.pipelines.pipelines()[0]


def test_out_of_memory_frees_the_step_and_the_next_job_works(engine, tiny_sd_inpaint, monkeypatch):
    import torch

    pipe = loaded(engine, tiny_sd_inpaint)
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    expected = engine.run(job_for(tiny_sd_inpaint), image, mask)
    original_forward = pipe.unet.forward
    activations = []

    def forward_out_of_memory(*args, **kwargs):
        big = torch.zeros(256, 256)  # stands for the activations that filled the memory
        activations.append(weakref.ref(big))
        monkeypatch.setattr(pipe.unet, "forward", original_forward)  # only the first call fails
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(pipe.unet, "forward", forward_out_of_memory)
    events = []
    with pytest.raises(OutOfMemoryError, match="ran out of memory at 64x64; use") as caught:
        engine.run(job_for(tiny_sd_inpaint), image, mask, on_event=events.append)
    assert isinstance(events[-1], JobFailed) and events[-1].message == str(caught.value)
    assert "smaller working resolution" in str(caught.value)
    gc.collect()
    # The error is still held here, yet the failed step's tensors are gone (its frames were cleared).
    assert activations[0]() is None
    after = engine.run(job_for(tiny_sd_inpaint), image, mask)
    assert np.array_equal(pixels(after.images[0]), pixels(expected.images[0]))


def test_nan_from_the_vae_is_decoded_again_in_full_precision(engine, tiny_sd_inpaint, monkeypatch):
    import torch

    pipe = loaded(engine, tiny_sd_inpaint)
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    expected = engine.run(job_for(tiny_sd_inpaint), image, mask)
    assert expected.extra["vae_decoded_in_fp32"] is False
    original_decode = pipe.vae.decode
    calls = []

    def decode_nan_once(latents, *args, **kwargs):
        calls.append(latents.dtype)
        out = original_decode(latents, *args, **kwargs)
        if len(calls) == 1:
            out[0].fill_(float("nan"))  # what an fp16 overflow gives: a black image
        return out

    monkeypatch.setattr(pipe.vae, "decode", decode_nan_once)
    result = engine.run(job_for(tiny_sd_inpaint), image, mask)
    assert len(calls) == 2 and calls[1] == torch.float32
    assert result.extra["vae_decoded_in_fp32"] is True
    diff = np.abs(pixels(result.images[0]).astype(int) - pixels(expected.images[0]).astype(int))
    # Identical where the VAE already ran in float32 (CPU); within rounding of fp16 on a GPU.
    assert diff.max() == 0 if expected.extra["dtype"] == "float32" else diff.max() <= 3


def test_nan_from_the_denoiser_says_what_to_do(engine, tiny_sd_inpaint, monkeypatch):
    pipe = loaded(engine, tiny_sd_inpaint)
    original_forward = pipe.unet.forward

    def forward_nan(*args, **kwargs):
        out = original_forward(*args, **kwargs)
        out[0].fill_(float("nan"))
        return out

    monkeypatch.setattr(pipe.unet, "forward", forward_nan)
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(EngineError, match="invalid \\(NaN\\) result while denoising; run the job on the CPU"):
        engine.run(job_for(tiny_sd_inpaint), image, mask)


def _http_response(status: int):
    """A response object of the HTTP library this huggingface_hub uses (httpx2 from 2.x, httpx before)."""
    try:
        import httpx2 as http
    except ImportError:
        import httpx as http
    return http.Response(status, request=http.Request("GET", "https://huggingface.co/api/models/x"))


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("GatedRepoError", "is gated; accept its licence on huggingface.co and log in"),
        ("RepositoryNotFoundError", "There is no model someone/model on the Hugging Face hub"),
    ],
)
def test_gated_and_missing_hub_models_say_what_to_do(monkeypatch, error, message):
    import huggingface_hub
    from huggingface_hub import errors

    def snapshot_download(repo_id, **kwargs):
        if kwargs.get("local_files_only"):
            raise errors.LocalEntryNotFoundError("not in the cache")
        raise getattr(errors, error)("denied", response=_http_response(401))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    downloading = Engine(allow_download=True)
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(ModelUnavailableError, match=message):
        downloading.run(job_for("someone/model"), image, mask)
    with pytest.raises(ModelUnavailableError, match="not installed; download it"):
        Engine().run(job_for("someone/model"), image, mask)


def test_a_model_that_cannot_inpaint_is_named(engine, tmp_path):
    folder = tmp_path / "flux-like"
    folder.mkdir()
    (folder / "model_index.json").write_text('{"_class_name": "FluxPipeline"}')
    image, mask = photo(64, 64), box_mask(64, 64, (16, 16, 48, 48))
    with pytest.raises(ModelUnavailableError, match="'FluxPipeline' pipeline, which cannot inpaint"):
        engine.run(job_for(folder), image, mask)
