"""Loading removal and upscaling networks through spandrel: every accepted file kind, and every refusal."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from inpaint_studio.core.errors import ModelUnavailableError
from inpaint_studio.engine import spandrel_models

pytestmark = pytest.mark.vision


@pytest.fixture(scope="module")
def lama_weights() -> dict:
    """big-lama's architecture at its real size (51 M parameters), random weights."""
    import torch
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(0)
    return LaMa(in_nc=4, out_nc=3).state_dict()


@pytest.fixture(scope="module")
def esrgan_weights() -> dict:
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    torch.manual_seed(0)
    return ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=4).state_dict()


def test_lama_loads_from_safetensors_pth_and_torchscript(tmp_path: Path, lama_weights: dict) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in lama_weights.items()}, tmp_path / "big-lama.safetensors")
    torch.save(lama_weights, tmp_path / "big-lama.pth")
    for name in ("big-lama.safetensors", "big-lama.pth"):
        descriptor = spandrel_models.load_image_model(tmp_path / name, "removal")
        assert descriptor.architecture.name == "LaMa" and descriptor.purpose == "Inpainting"
        probe = next(iter(descriptor.model.state_dict().values()))
        assert torch.equal(probe, next(iter(lama_weights.values())))  # the file's weights, not random ones


def test_a_torchscript_archive_gives_its_weights_only(tmp_path: Path, esrgan_weights: dict) -> None:
    import torch
    from spandrel.architectures.ESRGAN import ESRGAN

    network = ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=4)
    network.load_state_dict(esrgan_weights)
    torch.jit.save(torch.jit.trace(network.eval(), torch.zeros(1, 3, 16, 16)), tmp_path / "x4.pt")
    assert any("/code/" in n for n in zipfile.ZipFile(tmp_path / "x4.pt").namelist())
    descriptor = spandrel_models.load_image_model(tmp_path / "x4.pt", "upscaler")
    assert descriptor.scale == 4


def test_the_wrong_kind_of_network_is_one_sentence(tmp_path: Path, lama_weights: dict, esrgan_weights: dict) -> None:
    import torch

    torch.save(esrgan_weights, tmp_path / "x4.pth")
    torch.save(lama_weights, tmp_path / "lama.pth")
    with pytest.raises(ModelUnavailableError, match="is an upscaling model, not an object-removal model"):
        spandrel_models.load_image_model(tmp_path / "x4.pth", "removal")
    with pytest.raises(ModelUnavailableError, match="is an object-removal model, not an upscaling model"):
        spandrel_models.load_image_model(tmp_path / "lama.pth", "upscaler")
    torch.save({"some.layer.weight": torch.zeros(2, 2)}, tmp_path / "unknown.pth")
    with pytest.raises(ModelUnavailableError, match="not a network this app knows"):
        spandrel_models.load_image_model(tmp_path / "unknown.pth", "removal")


class _Hostile:
    def __reduce__(self):  # unpickling would run a shell command
        return (os.system, ("echo hostile > hostile-ran.txt",))


def test_a_hostile_pickle_is_refused_and_never_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.chdir(tmp_path)
    torch.save({"model.model.1.bn_l.running_mean": _Hostile()}, tmp_path / "lama.pth")
    with pytest.raises(ModelUnavailableError, match="holds more than weights"):
        spandrel_models.load_image_model(tmp_path / "lama.pth", "removal")
    assert not (tmp_path / "hostile-ran.txt").exists()


def test_other_files_are_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(b"not weights")
    with pytest.raises(ModelUnavailableError, match="not a weights file"):
        spandrel_models.read_weights(tmp_path / "model.onnx")
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(ModelUnavailableError, match="not a readable weights file"):
        spandrel_models.read_weights(tmp_path / "broken.safetensors")
