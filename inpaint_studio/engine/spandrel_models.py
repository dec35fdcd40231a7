"""Image networks loaded with spandrel: removal (LaMa, MAT) and upscaling (ESRGAN, SwinIR, ...) models.

spandrel recognises a network's architecture from the keys of its weights and builds it; spandrel-extra-arches
adds the architectures with non-commercial licences (MAT). Both are the optional `vision` extra: they need a
torchvision that matches the installed torch (`pip install "inpaint-studio[vision]"`, with torch and
torchvision from the same index). Without them the rest of the app works, and choosing such a model says in
one sentence what to install.

What is read, and how (never code):
- `.safetensors`: tensors only;
- `.pth` / `.ckpt` / a `.pt` state dict: torch's weights-only unpickler, which refuses any pickle that would
  call a function or build an object other than tensors and plain containers (a hostile file fails here);
- a TorchScript `.pt` archive (how IOPaint ships big-lama): only its weights are taken (`state_dict()`), the
  scripted module is never called; spandrel then builds its own network from those weights.
Loading imports torch: call it from the engine's worker thread, never from the UI thread.
"""

from __future__ import annotations

import functools
import logging
import warnings
import zipfile
from pathlib import Path
from typing import Any, Literal

from inpaint_studio.core.errors import ModelUnavailableError
from inpaint_studio.engine.models import load_pickled_weights

log = logging.getLogger(__name__)

Kind = Literal["removal", "upscaler"]
SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")
INSTALL_HINT = (
    'install the optional vision parts with `pip install "inpaint-studio[vision]"` (torch and torchvision must '
    "come from the same place, e.g. https://download.pytorch.org/whl/cpu for a computer without an NVIDIA GPU)"
)
_PURPOSE_WORDS = {
    "SR": "an upscaling model",
    "FaceSR": "a face-restoration model",
    "Restoration": "a restoration model",
}
_KIND_WORDS = {"removal": "an object-removal model (LaMa, MAT)", "upscaler": "an upscaling model (ESRGAN, SwinIR...)"}


@functools.cache
def import_spandrel() -> Any:
    """The spandrel module with the extra architectures registered (once), or one sentence saying what is
    missing (a failed import is not cached: installing the extra and trying again works)."""
    try:
        import spandrel
    except ImportError as exc:
        raise ModelUnavailableError(f"This model needs spandrel, which is not installed; {INSTALL_HINT}.") from exc
    except RuntimeError as exc:  # torchvision built for another torch: its operators fail to register
        raise ModelUnavailableError(
            f"This model needs a torchvision that matches the installed torch ({str(exc)[:80]}); {INSTALL_HINT}."
        ) from exc
    try:
        import spandrel_extra_arches
    except ImportError:
        log.info("spandrel-extra-arches is not installed: MAT and other extra architectures are unavailable")
    else:
        spandrel_extra_arches.install(ignore_duplicates=True)
    return spandrel


def read_weights(path: Path) -> dict[str, Any]:
    """The tensors of a weights file (see the module docstring for what is accepted), on the CPU."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ModelUnavailableError(
            f"{path.name} is not a weights file this app reads; use a .safetensors, .pth or .pt file."
        )
    if suffix == ".pt" and _is_torchscript(path):
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated; IOPaint still ships big-lama as one
                warnings.simplefilter("ignore", FutureWarning)
                return dict(torch.jit.load(str(path), map_location="cpu").state_dict())
        except (RuntimeError, ValueError) as exc:
            raise ModelUnavailableError(
                f"{path.name} is a damaged TorchScript file ({exc!s:.80}); download it again."
            ) from exc
    if suffix == ".safetensors":
        try:
            return dict(load_file(str(path), device="cpu"))
        except (OSError, SafetensorError) as exc:
            raise ModelUnavailableError(
                f"{path.name} is not a readable weights file ({exc!s:.100}); download it again."
            ) from exc
    state = load_pickled_weights(path)
    if not isinstance(state, dict):
        raise ModelUnavailableError(
            f"{path.name} does not hold a set of named weights; choose the model's weights file."
        )
    return state


def _is_torchscript(path: Path) -> bool:
    """A TorchScript archive is a zip with a code/ folder (a plain torch.save zip has data.pkl only)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def load_image_model(path: Path, kind: Kind, device: str = "cpu") -> Any:
    """A spandrel ModelDescriptor for a removal or upscaling network, in eval mode on `device`.

    Raises ModelUnavailableError (one sentence) when spandrel is missing, the file cannot be read, its
    architecture is unknown, or it is a network of the other kind (an upscaler chosen for removal...).
    """
    spandrel = import_spandrel()
    weights = read_weights(path)
    try:
        descriptor = spandrel.ModelLoader("cpu").load_from_state_dict(spandrel.canonicalize_state_dict(weights))
    except spandrel.UnsupportedModelError as exc:
        raise ModelUnavailableError(
            f"{path.name} is not a network this app knows; choose {_KIND_WORDS[kind]}."
        ) from exc
    except (RuntimeError, KeyError, ValueError, IndexError) as exc:  # keys of a known network, wrong shapes
        raise ModelUnavailableError(f"{path.name} looks damaged ({exc!s:.80}); download it again.") from exc
    removal = descriptor.purpose == "Inpainting"
    if (kind == "removal") != removal:
        found = (
            "an object-removal model" if removal else _PURPOSE_WORDS.get(descriptor.purpose, "another kind of model")
        )
        raise ModelUnavailableError(f"{path.name} is {found}, not {_KIND_WORDS[kind]}; choose another file.")
    descriptor.to(device).eval()
    return descriptor
