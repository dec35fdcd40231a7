"""Model references: detection without loading, refusal of unsafe or unusable files."""

from __future__ import annotations

import json
import struct

import pytest

from inpaint_studio.core.errors import ModelUnavailableError
from inpaint_studio.engine.catalog import catalog, download_hint, installed_models
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.models import resolve_model


def test_detects_each_tiny_family(tiny_sd_inpaint, tiny_sd, tiny_sdxl_inpaint):
    assert resolve_model(str(tiny_sd_inpaint)).family is Family.SD_INPAINT
    assert resolve_model(str(tiny_sd_inpaint)).in_channels == 9
    assert resolve_model(str(tiny_sd)).family is Family.SD
    assert resolve_model(str(tiny_sd)).in_channels == 4
    assert resolve_model(str(tiny_sdxl_inpaint)).family is Family.SDXL_INPAINT


def test_classic_needs_nothing():
    info = resolve_model("classic")
    assert info.family is Family.CLASSIC and info.path is None
    assert resolve_model("classic:telea").family is Family.CLASSIC


def _write_safetensors(path, tensors: dict[str, list[int]]) -> None:
    header = {name: {"dtype": "F32", "shape": shape, "data_offsets": [0, 0]} for name, shape in tensors.items()}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)


def test_single_file_family_from_header_only(tmp_path):
    sd9 = tmp_path / "inpaint.safetensors"
    _write_safetensors(sd9, {"model.diffusion_model.input_blocks.0.0.weight": [320, 9, 3, 3]})
    assert resolve_model(str(sd9)).family is Family.SD_INPAINT
    xl = tmp_path / "xl.safetensors"
    _write_safetensors(
        xl,
        {
            "model.diffusion_model.input_blocks.0.0.weight": [320, 4, 3, 3],
            "conditioner.embedders.1.model.ln_final.weight": [1280],
        },
    )
    assert resolve_model(str(xl)).family is Family.SDXL


def test_unusable_files_are_refused_with_a_reason(tmp_path):
    ckpt = tmp_path / "old.ckpt"
    ckpt.write_bytes(b"\x80\x04pickle")
    with pytest.raises(ModelUnavailableError, match="pickled checkpoint.*safetensors"):
        resolve_model(str(ckpt))
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelUnavailableError, match="not a valid .safetensors"):
        resolve_model(str(junk))
    vae_only = tmp_path / "vae.safetensors"
    _write_safetensors(vae_only, {"encoder.conv_in.weight": [128, 3, 3, 3]})
    with pytest.raises(ModelUnavailableError, match="not a Stable Diffusion checkpoint"):
        resolve_model(str(vae_only))
    other = tmp_path / "other"
    other.mkdir()
    (other / "model_index.json").write_text(json.dumps({"_class_name": "AudioLDMPipeline"}))
    with pytest.raises(ModelUnavailableError, match="cannot inpaint"):
        resolve_model(str(other))


def test_unknown_hub_id_offline_is_not_installed():
    with pytest.raises(ModelUnavailableError, match="not installed"):
        resolve_model("nobody/nothing-here")
    with pytest.raises(ModelUnavailableError, match="could not be downloaded|no model"):
        resolve_model("nobody/nothing-here", allow_download=True)  # HF_HUB_OFFLINE=1 in tests


def test_catalog_uses_current_hub_ids():
    ids = {entry.id for entry in catalog()}
    assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in ids
    assert "runwayml/stable-diffusion-inpainting" not in ids  # removed from the hub in 2024
    assert {
        "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
        "kandinsky-community/kandinsky-2-2-decoder-inpaint",
    } <= ids
    assert all(entry.download_gb > 0 and entry.licence for entry in catalog())
    assert "2.1 GB" in download_hint("stable-diffusion-v1-5/stable-diffusion-inpainting")


def test_installed_models_reads_a_hub_cache(tmp_path, tiny_sd_inpaint):
    # Lay out a cache entry as huggingface_hub does: models--owner--name/{refs,snapshots/<hash>}.
    import shutil

    repo = tmp_path / "models--tiny--inpaint"
    snapshot = repo / "snapshots" / ("a" * 40)
    shutil.copytree(tiny_sd_inpaint, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("a" * 40)
    (repo / "blobs").mkdir()
    found = installed_models(tmp_path)
    assert [(m.id, m.family) for m in found] == [("tiny/inpaint", Family.SD_INPAINT)]


def test_sdxl_refiner_is_recognised(tiny_sdxl_refiner):
    assert resolve_model(str(tiny_sdxl_refiner)).family is Family.SDXL_REFINER


def test_single_file_finds_its_config_folder(tiny_sd_inpaint_single_file):
    info = resolve_model(str(tiny_sd_inpaint_single_file))
    assert info.source == "single_file" and info.family is Family.SD_INPAINT and info.in_channels == 9
    assert info.config_dir is not None and (info.config_dir / "model_index.json").is_file()
