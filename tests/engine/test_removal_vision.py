"""LaMa and MAT in the engine: their real architectures (spandrel) with random weights, saved as the published
files are (safetensors, a weights-only .pth, IOPaint's TorchScript archive; MAT in fp16 safetensors) and
loaded through the engine's own path. Run in .venv-vision (spandrel needs a matching torchvision)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from inpaint_studio.core.errors import ModelUnavailableError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.catalog import removal_entry
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.models import ModelInfo, ModelResolver, resolve_model
from inpaint_studio.engine.removal import load_network, resolve_removal
from inpaint_studio.engine.removal_files import LAMA, MAT, removal_architecture
from inpaint_studio.engine.runner import Engine
from tests.engine.helpers import Events
from tests.removal_models import (
    OpensAFile,
    assert_only_the_feathered_hole_changed,
    hub_cache,
    lama_state_dict,
    mat_state_dict,
    photo_with_hole,
    use_hub_cache,
)

pytestmark = pytest.mark.vision


@pytest.fixture(scope="module")
def lama_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same random big-lama weights as .safetensors, as a .pth state dict, and as IOPaint ships it: a
    TorchScript archive of a traced module whose weights are called generator.model.*"""
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.LaMa import LaMa

    folder = tmp_path_factory.mktemp("lama")
    weights = lama_state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, folder / "big-lama.safetensors")
    torch.save(weights, folder / "big-lama.pth")
    network = LaMa(in_nc=4, out_nc=3)
    network.load_state_dict(weights)

    class Traced(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.generator = network.model

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            return self.generator(image * (1 - mask), mask)

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated; IOPaint's file is one
        traced = torch.jit.trace(Traced().eval(), (torch.zeros(1, 3, 64, 64), torch.zeros(1, 1, 64, 64)))
        torch.jit.save(traced, folder / "big-lama.pt")
    return {kind: folder / f"big-lama.{kind}" for kind in ("safetensors", "pth", "pt")}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return use_hub_cache(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def engine():
    eng = Engine()
    yield eng
    eng.release()


def test_lama_runs_from_every_published_file_kind_with_the_same_pixels(engine: Engine, lama_files) -> None:
    image, mask = photo_with_hole(720, 540, (300, 200, 420, 330))
    outputs = []
    for kind, path in lama_files.items():
        assert removal_architecture(path) == LAMA, kind  # the TorchScript archive too, from its names only
        info = resolve_model(str(path))
        assert (info.family, info.pipeline_class) == (Family.REMOVAL, LAMA)
        events = Events()
        result = engine.run(InpaintJob(model=str(path), seed=4), image, mask, on_event=events.append)
        assert events.progress_ok() and result.extra["removal_network"] == LAMA and not result.extra["seeded"]
        outputs.append(np.asarray(result.images[0]))
    assert all(np.array_equal(outputs[0], other) for other in outputs[1:])  # the file's weights, not random ones
    assert_only_the_feathered_hole_changed(image, outputs[0], InpaintJob(), mask)


def test_lama_by_catalog_name_from_the_cache(engine: Engine, lama_files, cache: Path) -> None:
    entry = removal_entry("lama")
    hub_cache(cache, entry.repo, {entry.file: lama_files["safetensors"]})
    image, mask = photo_with_hole(200, 150, (80, 60, 130, 100))
    result = engine.run(InpaintJob(model="lama"), image, mask)
    assert result.model["reference"] == "lama" and result.record().model_name == "lama"


@pytest.mark.slow
def test_mat_is_seeded_reproducible_and_loads_its_fp16_safetensors(engine: Engine, cache: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    entry = removal_entry("mat")
    fp16 = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in mat_state_dict().items()}
    save_file(fp16, tmp_path / entry.file)  # as Acly/MAT publishes it
    hub_cache(cache, entry.repo, {entry.file: tmp_path / entry.file})
    assert resolve_model("mat").pipeline_class == MAT
    image, mask = photo_with_hole(400, 300, (150, 100, 260, 200))
    torch.manual_seed(123)
    before = torch.rand(1)
    both = engine.run(InpaintJob(model="mat", seed=40, variants=2), image, mask)
    assert both.extra["seeded"] and both.seeds == [40, 41] and both.record(1).seed_used == 41
    assert not np.array_equal(np.asarray(both.images[0]), np.asarray(both.images[1]))  # the seed matters
    engine.release()
    second = engine.run(InpaintJob(model="mat", seed=41), image, mask)
    assert np.array_equal(np.asarray(second.images[0]), np.asarray(both.images[1]))  # and replays exactly
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)  # torch's global generator was left as it was


def test_a_hostile_pickle_with_lama_names_is_refused_by_the_weights_only_reader(tmp_path: Path, engine) -> None:
    import torch

    marker = tmp_path / "pwned"
    names = ["model.model.1.bn_l.running_mean", "model.model.5.ffc.convl2l.weight", "x.convg2g.y"]
    torch.save({name: OpensAFile(marker) for name in names}, tmp_path / "big-lama.pth")
    image, mask = photo_with_hole(64, 64, (20, 20, 40, 40))
    with pytest.raises(ModelUnavailableError, match="holds more than weights"):
        engine.run(InpaintJob(model=str(tmp_path / "big-lama.pth")), image, mask)
    assert not marker.exists()


def test_an_upscaler_given_as_a_removal_model_is_one_sentence(tmp_path: Path, engine) -> None:
    import torch
    from safetensors.torch import save_file
    from spandrel.architectures.ESRGAN import ESRGAN

    weights = ESRGAN(in_nc=3, out_nc=3, num_filters=16, num_blocks=1, scale=4).state_dict()
    save_file({k: v.contiguous() for k, v in weights.items()}, tmp_path / "x4.safetensors")
    torch.save(weights, tmp_path / "x4.pth")
    for path in (tmp_path / "x4.safetensors", tmp_path / "x4.pth"):  # as a pre-fill
        with pytest.raises(ModelUnavailableError, match=r"x4\.\w+ is not a removal model \(LaMa or MAT"):
            resolve_removal(str(path), ModelResolver())
    image, mask = photo_with_hole(64, 64, (20, 20, 40, 40))
    with pytest.raises(ModelUnavailableError, match="not a Stable Diffusion checkpoint.*or a removal model"):
        engine.run(InpaintJob(model=str(tmp_path / "x4.safetensors")), image, mask)  # as the model
    # Loaded for removal on purpose, spandrel's own check names what it is.
    info = ModelInfo(str(tmp_path / "x4.pth"), "removal_file", Family.REMOVAL, path=tmp_path / "x4.pth")
    with pytest.raises(ModelUnavailableError, match="is an upscaling model, not an object-removal model"):
        load_network(info, "cpu")
