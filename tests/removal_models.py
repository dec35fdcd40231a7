"""Removal networks with random weights, built offline and saved the way their published files are.

- MI-GAN: an ONNX "pipeline" with the authors' published interface (Picsart-AI-Research/MI-GAN,
  scripts/create_onnx_pipeline.py): inputs `image` uint8 N x 3 x H x W (RGB) and `mask` uint8 N x 1 x H x W
  (255 = known, 0 = fill), output `result` uint8 N x 3 x H x W; inside, the same pre- and post-processing
  (resize to the model's resolution, [-1, 1] input with the mask channel, blend the known pixels back) around
  a small convolution net with random weights instead of the 512 px generator. Exported with torch.onnx.export
  (the TorchScript exporter, with dynamic height and width like the authors' export).
- LaMa and MAT (vision tests): spandrel's own architectures at their real size, random weights.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from pathlib import Path
from unittest import mock

import numpy as np

from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.region import prepare_input
from tests.engine.helpers import box_mask

MIGAN_RESOLUTION = 64  # the tiny net's own working size (the real pipeline uses 512)


def _tiny_migan_pipeline(resolution: int = MIGAN_RESOLUTION, seed: int = 0):
    import torch
    import torch.nn.functional as F

    class TinyMiGanPipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(seed)
            self.net = torch.nn.Sequential(
                torch.nn.Conv2d(4, 8, 3, padding=1),
                torch.nn.LeakyReLU(0.2),
                torch.nn.Conv2d(8, 3, 3, padding=1),
                torch.nn.Tanh(),
            )
            self.res = resolution

        def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            small = F.interpolate(image.float(), size=(self.res, self.res), mode="bilinear", align_corners=False)
            small_mask = F.interpolate(mask.float(), size=(self.res, self.res), mode="nearest")
            small = small * 2 / 255 - 1
            small_mask = small_mask / 255
            out = self.net(torch.cat([small_mask - 0.5, small * small_mask], dim=1))
            out = ((out * 0.5 + 0.5) * 255).clamp(0, 255)
            out = F.interpolate(out, size=(image.shape[2], image.shape[3]), mode="bilinear", align_corners=False)
            known = mask.float() / 255
            return (image.float() * known + out * (1 - known)).clamp(0, 255).to(torch.uint8)

    return TinyMiGanPipeline().eval()


def export_onnx(module, args: tuple, path: Path, input_names: list[str], output_names: list[str]) -> Path:
    """torch.onnx.export with dynamic batch, height and width (the authors' settings: opset 17, folded)."""
    import torch

    dynamic = {name: {0: "batch_size", 2: "height", 3: "width"} for name in (*input_names, *output_names)}
    buffer = io.BytesIO()
    kwargs = dict(
        input_names=input_names,
        output_names=output_names,
        dynamic_axes=dynamic,
        opset_version=17,
        do_constant_folding=True,
        dynamo=False,
    )
    # The TorchScript exporter (dynamo=False), as the authors' script uses (the torch.export-based one needs
    # onnxscript); its deprecation notices are not ours to act on.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if importlib.util.find_spec("onnx") is not None:
            torch.onnx.export(module, args, buffer, **kwargs)
        else:
            # The exporter writes the graph in C++; the `onnx` package only splices in custom onnxscript
            # functions (there are none here). Without it (this machine's venv), that step is skipped.
            from torch.onnx._internal.torchscript_exporter import onnx_proto_utils

            with mock.patch.object(onnx_proto_utils, "_add_onnxscript_fn", lambda proto, _opsets: proto):
                torch.onnx.export(module, args, buffer, **kwargs)
    path.write_bytes(buffer.getvalue())
    return path


def build_migan_onnx(path: Path, resolution: int = MIGAN_RESOLUTION, seed: int = 0) -> Path:
    """A random-weight MI-GAN pipeline with the published inputs and output, as an .onnx file."""
    import torch

    image = torch.full((1, 3, 96, 80), 200, dtype=torch.uint8)
    mask = torch.full((1, 1, 96, 80), 255, dtype=torch.uint8)
    mask[:, :, 30:60, 20:50] = 0
    return export_onnx(_tiny_migan_pipeline(resolution, seed), (image, mask), path, ["image", "mask"], ["result"])


def build_other_onnx(path: Path) -> Path:
    """An ONNX image model with other inputs than MI-GAN's (a float image in, a float image out)."""
    import torch

    net = torch.nn.Conv2d(3, 3, 3, padding=1).eval()
    return export_onnx(net, (torch.zeros(1, 3, 32, 32),), path, ["input"], ["output"])


def lama_state_dict(seed: int = 0) -> dict:
    """big-lama's architecture at its real size (51 M parameters), random weights (needs spandrel)."""
    import torch
    from spandrel.architectures.LaMa import LaMa

    torch.manual_seed(seed)
    return LaMa(in_nc=4, out_nc=3).state_dict()


def mat_state_dict(seed: int = 0) -> dict:
    """MAT's Places 512 generator at its real size (62 M parameters), random weights (spandrel-extra-arches)."""
    import torch
    from spandrel_extra_arches.architectures.MAT import MAT

    torch.manual_seed(seed)
    return {k: v for k, v in MAT().state_dict().items()}


# ---- shared by the removal tests --------------------------------------------------------------------------


def hub_cache(root: Path, repo_id: str, files: dict[str, Path]) -> Path:
    """Lay out a cached hub repository as huggingface_hub does: models--owner--name/{refs,snapshots/<hash>}."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / ("b" * 40)
    snapshot.mkdir(parents=True)
    for name, source in files.items():
        (snapshot / name).write_bytes(source.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("b" * 40)
    (repo / "blobs").mkdir()
    return snapshot


def use_hub_cache(tmp_path: Path, monkeypatch) -> Path:
    """An empty Hugging Face cache for one test: downloads and look-ups read the folder from the constant,
    the cache scan (scan_cache_dir) from its own copy of it."""
    import huggingface_hub.constants
    from huggingface_hub.utils import _cache_manager

    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(root))
    monkeypatch.setattr(_cache_manager, "HF_HUB_CACHE", str(root))
    return root


def photo_with_hole(width: int, height: int, hole: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return image, box_mask(width, height, hole)


def assert_only_the_feathered_hole_changed(image: np.ndarray, out: np.ndarray, job: InpaintJob, mask) -> None:
    """Every pixel outside the box, and inside it wherever the feather weight is 0, is the input's own;
    the hole itself was filled."""
    prepared = prepare_input(job, image, mask)
    left, top, right, bottom = prepared.box
    changed = np.any(out[..., :3] != image[..., :3], axis=2)
    inside = changed[top:bottom, left:right].copy()
    changed[top:bottom, left:right] = False
    assert not changed.any()  # bit-exact outside the box
    assert not (inside & (prepared.weight <= 0)).any()  # and inside it wherever the feather weight is 0
    assert inside[prepared.mask > 0].mean() > 0.9  # the hole was filled


class OpensAFile:
    """Unpickling this calls open(marker, "w"): the way a hostile pickle runs code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))
