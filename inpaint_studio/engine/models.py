"""Model references: resolve what the user named to local files and detect the family before loading.

A reference is one of:
- "classic" (or "classic:telea" ...): the OpenCV fill, nothing to load;
- "lama", "mat", "migan": a removal network of the catalog (one file of a hub repository), or a removal
  network's own file: a .safetensors / .pth / .pt with LaMa or MAT weights, an MI-GAN .onnx pipeline (told
  apart from SD checkpoints by the names inside, removal_files.py; loaded weights-only by removal.py);
- a local diffusers folder (has model_index.json);
- a single-file .safetensors checkpoint (original Stable Diffusion layout);
- a Hugging Face hub id "owner/name", found in the local cache, or downloaded when the caller allows it.

Detection reads only JSON configs and the safetensors header, never weights, so it is instant and safe.
Legacy pickled checkpoints (.ckpt, .pt, .pth) are refused: unpickling can run arbitrary code. A user who
trusts where such a file came from can allow it explicitly (`allow_unsafe=True`: the command line's
--allow-unsafe-checkpoint, a confirmation in the studio); it is then read with torch's restricted
unpickler (`weights_only=True`, which refuses anything but tensors and plain containers), and the result
records `source: "legacy_checkpoint"`. Nothing is unpickled to refuse a file: the refusal looks at the name.

`ModelResolver` holds one engine's permissions (downloads, allowed pickled checkpoints) and resolves with
them; the families themselves are in families.py, the catalog's download hints in catalog.py.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inpaint_studio.core.errors import ModelUnavailableError
from inpaint_studio.core.jobspec import CLASSIC_MODEL
from inpaint_studio.engine.catalog import CatalogEntry, download_hint, removal_entry
from inpaint_studio.engine.families import PIPELINE_FAMILIES, Family
from inpaint_studio.engine.removal_files import removal_architecture

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
PICKLED_CHECKPOINTS = (".ckpt", ".pt", ".pth")  # single-file SD checkpoints saved with torch.save
PICKLED_SUFFIXES = (*PICKLED_CHECKPOINTS, ".bin")


@dataclass(frozen=True)
class ModelInfo:
    """What a reference resolved to; `to_dict()` is what history records keep."""

    reference: str
    # classic | folder | single_file | legacy_checkpoint (pickled, allowed by the user) | hub | removal_file
    source: str
    family: Family
    path: Path | None = None
    pipeline_class: str | None = None
    in_channels: int | None = None
    revision: str | None = None  # hub commit hash when known
    config_dir: Path | None = None  # single files: a local diffusers config folder, if one lies beside it

    @property
    def name(self) -> str:
        if self.source == "classic":
            return "Classical fill"
        if self.source == "hub":
            return self.reference
        return self.path.name if self.path else self.reference

    @property
    def is_inpainting_unet(self) -> bool:
        return self.in_channels == 9

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["family"] = self.family.value
        data["path"] = str(self.path) if self.path else None
        data["config_dir"] = str(self.config_dir) if self.config_dir else None
        return data


# ---- detection ------------------------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"The model file {path} cannot be read ({exc}); re-download the model.") from exc


def detect_folder(path: Path, reference: str | None = None, source: str = "folder", revision: str | None = None):
    """Family of a diffusers folder from model_index.json `_class_name` and the UNet's in_channels."""
    index = path / "model_index.json"
    if not index.is_file() and _component_class(path) == "ControlNetModel":
        raise ModelUnavailableError(
            f"{path.name} is a ControlNet, which guides a base model; choose an SD model and pass this one "
            "as the ControlNet."
        )
    if not index.is_file():
        raise ModelUnavailableError(
            f"The folder {path} is not a diffusers model (it has no model_index.json); "
            "choose the model's top folder, or a .safetensors checkpoint file."
        )
    class_name = str(_read_json(index).get("_class_name", ""))
    family = PIPELINE_FAMILIES.get(class_name, Family.UNKNOWN)
    in_channels = None
    unet_config = path / "unet" / "config.json"
    if unet_config.is_file():
        in_channels = _read_json(unet_config).get("in_channels")
        if in_channels == 9 and family is Family.SD:
            family = Family.SD_INPAINT
        elif in_channels == 9 and family is Family.SDXL:
            family = Family.SDXL_INPAINT
        elif in_channels == 4 and family is Family.SD_INPAINT:
            family = Family.SD
    index_data = _read_json(index)
    if (
        family.is_sdxl
        and in_channels == 4
        and (index_data.get("requires_aesthetics_score") or not (path / "text_encoder").is_dir())
    ):
        family = Family.SDXL_REFINER  # the refiner has only text_encoder_2 and aesthetic-score conditioning
    if family is Family.UNKNOWN:
        raise ModelUnavailableError(
            f"The model in {path} is a '{class_name or 'unknown'}' pipeline, which cannot inpaint; "
            "choose a Stable Diffusion, SDXL or Kandinsky 2.2 model."
        )
    return ModelInfo(
        reference=reference or str(path),
        source=source,
        family=family,
        path=path,
        pipeline_class=class_name,
        in_channels=in_channels,
        revision=revision,
    )


def _component_class(path: Path) -> str | None:
    """`_class_name` of a single-component folder (config.json), e.g. 'ControlNetModel'; None otherwise."""
    config = path / "config.json"
    if not config.is_file():
        return None
    return str(_read_json(config).get("_class_name", "")) or None


def component_config(info: ModelInfo, component: str, file: str = "config.json") -> dict[str, Any] | None:
    """The JSON config of one pipeline component (e.g. 'vae') as the loader will read it; None if absent.

    Lets the engine look at components of a model that is not loaded yet (the refiner's VAE and
    scheduler) without loading any weights. Schedulers keep theirs in 'scheduler_config.json'.
    """
    root = info.config_dir if info.source == "single_file" else info.path
    if root is None or not (root / component / file).is_file():
        return None
    return _read_json(root / component / file)


@dataclass(frozen=True)
class ControlNetInfo:
    """A resolved ControlNet reference: a folder with a ControlNetModel config and safetensors weights."""

    reference: str
    path: Path
    revision: str | None = None

    @property
    def name(self) -> str:
        return self.reference if HUB_ID.match(self.reference) else self.path.name

    def to_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "path": str(self.path), "revision": self.revision}


def resolve_controlnet(reference: str, *, allow_download: bool = False) -> ControlNetInfo:
    """A ControlNet folder or hub id (e.g. lllyasviel/control_v11p_sd15_inpaint) -> local files."""
    reference = reference.strip()
    path = Path(reference).expanduser()
    snapshot: Path | None = path if path.is_dir() else None
    revision = None
    if snapshot is None:
        if not HUB_ID.match(reference) or reference.startswith((".", "/", "~")):
            raise ModelUnavailableError(
                f"The ControlNet '{reference}' was not found: no such folder, and it is not a hub id "
                "like 'owner/name'; check the path."
            )
        snapshot = find_in_cache(reference, marker="config.json")
        if snapshot is None:
            if not allow_download:
                raise ModelUnavailableError(f"The ControlNet {reference} is not installed; {download_hint(reference)}")
            snapshot = download(reference)
        revision = _revision_of(snapshot)
    class_name = _component_class(snapshot)
    if class_name is None or not class_name.endswith("ControlNetModel"):
        raise ModelUnavailableError(
            f"{snapshot.name} is not a ControlNet (its config.json names '{class_name or 'nothing'}'); "
            "choose a ControlNet folder such as control_v11p_sd15_inpaint."
        )
    return ControlNetInfo(reference=reference, path=snapshot, revision=revision)


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a .safetensors file (tensor names, dtypes, shapes) without reading weights."""
    try:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > 100_000_000:
                raise ValueError("header too large")
            return json.loads(fh.read(length))
    except (OSError, ValueError, struct.error) as exc:
        raise ModelUnavailableError(
            f"The file {path} is not a valid .safetensors checkpoint ({exc}); re-download it."
        ) from exc


def detect_single_file(path: Path) -> ModelInfo:
    header = read_safetensors_header(path)
    conv_in = header.get("model.diffusion_model.input_blocks.0.0.weight")
    if not isinstance(conv_in, dict) or len(conv_in.get("shape", [])) != 4:
        raise ModelUnavailableError(
            f"The file {path} is not a Stable Diffusion checkpoint this app can load; use an SD 1.x/2.x or SDXL "
            ".safetensors file, a diffusers folder, or a removal model (LaMa, MAT, MI-GAN)."
        )
    in_channels = int(conv_in["shape"][1])
    sdxl = any(key.startswith("conditioner.embedders.") for key in header)
    if sdxl:
        family = Family.SDXL_INPAINT if in_channels == 9 else Family.SDXL
        pipeline_class = "StableDiffusionXLInpaintPipeline"
    else:
        family = Family.SD_INPAINT if in_channels == 9 else Family.SD
        pipeline_class = "StableDiffusionInpaintPipeline"
    return ModelInfo(
        reference=str(path),
        source="single_file",
        family=family,
        path=path,
        pipeline_class=pipeline_class,
        in_channels=in_channels,
        config_dir=single_file_config(path),
    )


def load_pickled_weights(path: Path, *, allowed_by_user: bool = False) -> Any:
    """A pickled weights file (.ckpt/.pt/.pth) read with torch's weights-only unpickler, on the CPU.

    `weights_only=True` refuses any pickle that would call a function or build an object other than tensors
    and plain containers (the way such files run code): a hostile file is refused, never run. mmap avoids
    reading the weights of a zip-format file until they are used. Every failure is one sentence.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as exc:
        even = " even though you allowed it" if allowed_by_user else ""
        raise ModelUnavailableError(
            f"{path.name} holds more than weights (it would run code when loaded), so it was not loaded{even}; "
            "use a .safetensors version of this model."
        ) from exc
    except (OSError, RuntimeError, ValueError, EOFError, AttributeError, KeyError) as exc:
        raise ModelUnavailableError(
            f"{path.name} is not a readable checkpoint ({exc!s:.120}); download it again."
        ) from exc


def detect_legacy_checkpoint(path: Path) -> ModelInfo:
    """Family of a pickled checkpoint the user allowed, read with torch's weights-only unpickler.

    Only called with the user's explicit permission (see load_pickled_weights).
    """
    state = load_pickled_weights(path, allowed_by_user=True)
    while isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    conv_in = state.get("model.diffusion_model.input_blocks.0.0.weight") if isinstance(state, dict) else None
    if conv_in is None or getattr(conv_in, "ndim", 0) != 4:
        raise ModelUnavailableError(
            f"The file {path.name} is not a Stable Diffusion checkpoint this app can load; "
            "use an SD 1.x/2.x or SDXL checkpoint, or a diffusers folder."
        )
    in_channels = int(conv_in.shape[1])
    sdxl = any(str(key).startswith("conditioner.embedders.") for key in state)
    if sdxl:
        family, pipeline_class = (
            Family.SDXL_INPAINT if in_channels == 9 else Family.SDXL,
            "StableDiffusionXLInpaintPipeline",
        )
    else:
        family, pipeline_class = Family.SD_INPAINT if in_channels == 9 else Family.SD, "StableDiffusionInpaintPipeline"
    return ModelInfo(
        reference=str(path),
        source="legacy_checkpoint",
        family=family,
        path=path,
        pipeline_class=pipeline_class,
        in_channels=in_channels,
        config_dir=single_file_config(path),
    )


def pickled_checkpoint_refusal(path: Path) -> ModelUnavailableError:
    """Why a pickled file is not loaded (decided from its name: nothing is read, so nothing can run)."""
    if path.suffix.lower() in PICKLED_CHECKPOINTS:
        return ModelUnavailableError(
            f"{path.name} is a legacy pickled checkpoint, which can run hidden code when loaded; use the "
            ".safetensors version of this model, or, if you trust where this file came from, allow it "
            "explicitly (--allow-unsafe-checkpoint, or confirm when adding it in the studio)."
        )
    return ModelUnavailableError(
        f"{path.name} is a pickled file, which can run hidden code when loaded, and not a model checkpoint "
        "this app can load; use the model's .safetensors files or its diffusers folder."
    )


def single_file_config(path: Path) -> Path | None:
    """A diffusers config folder for a single-file checkpoint: `<name>.config/` or `config/` beside it.

    from_single_file needs diffusers configs; without a local folder it fetches them from the hub (once,
    then they are cached), which an offline machine cannot do.
    """
    for candidate in (path.with_name(path.stem + ".config"), path.parent / "config"):
        if (candidate / "model_index.json").is_file():
            return candidate
    return None


# ---- hub ----------------------------------------------------------------------------------------------

# Weights in safetensors, configs and tokenizers; never pickles, never duplicate formats.
DOWNLOAD_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]
SKIP_PATTERNS = ["*.ckpt", "*.bin", "*.pth", "*.onnx", "*.msgpack", "*.h5", "*.pt", "*non_ema*", "*.fp16.*"]


def find_in_cache(repo_id: str, marker: str = "model_index.json") -> Path | None:
    """The local snapshot of a hub model, or None when it was never downloaded.

    `marker` is the file that must be there: model_index.json for pipelines, config.json for a ControlNet.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=[marker]))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None


def download(repo_id: str, progress: Callable[..., Any] | None = None) -> Path:
    """Download a hub model into the standard Hugging Face cache (safetensors only).

    A removal network's catalog name ("lama", ...) downloads its one file (a .safetensors or an .onnx)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    entry = removal_entry(repo_id)
    try:
        kwargs: dict[str, Any] = {"allow_patterns": DOWNLOAD_PATTERNS, "ignore_patterns": SKIP_PATTERNS}
        if entry is not None:
            kwargs = {"allow_patterns": [entry.file]}
            repo_id = entry.repo
        if progress is not None:
            kwargs["tqdm_class"] = progress
        return Path(snapshot_download(repo_id, **kwargs))
    except GatedRepoError as exc:
        raise ModelUnavailableError(
            f"The model {repo_id} is gated; accept its licence on huggingface.co and log in with "
            "`hf auth login`, then try again."
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelUnavailableError(
            f"There is no model {repo_id} on the Hugging Face hub; check the name (the catalog lists current ids)."
        ) from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ModelUnavailableError(
            f"The model {repo_id} could not be downloaded ({type(exc).__name__}); "
            "check the internet connection and try again."
        ) from exc


def _revision_of(snapshot: Path) -> str | None:
    # Snapshots live in .../snapshots/<commit hash>/
    return snapshot.name if snapshot.parent.name == "snapshots" else None


# ---- resolution -----------------------------------------------------------------------------------------


def resolve_model(
    reference: str,
    *,
    allow_download: bool = False,
    progress: Callable[..., Any] | None = None,
    allow_unsafe: bool = False,
) -> ModelInfo:
    """Turn a user's model reference into local files and a detected family (see module docstring).

    `allow_unsafe`: the user explicitly allowed loading this pickled checkpoint (.ckpt/.pt/.pth)."""
    reference = reference.strip()
    if reference == CLASSIC_MODEL or reference.startswith(CLASSIC_MODEL + ":"):
        return ModelInfo(reference=reference, source="classic", family=Family.CLASSIC)
    entry = removal_entry(reference)
    if entry is not None:
        return resolve_catalog_removal(entry, allow_download=allow_download, progress=progress)

    path = Path(reference).expanduser()
    if path.exists():
        if path.is_dir():
            return detect_folder(path, reference=str(path))
        suffix = path.suffix.lower()
        architecture = removal_architecture(path)
        if architecture is not None:  # decided from names only: nothing is unpickled here
            return ModelInfo(str(path), "removal_file", Family.REMOVAL, path=path, pipeline_class=architecture)
        if suffix == ".safetensors":
            return detect_single_file(path)
        if suffix in PICKLED_CHECKPOINTS and allow_unsafe:
            return detect_legacy_checkpoint(path)
        if suffix in PICKLED_SUFFIXES:
            raise pickled_checkpoint_refusal(path)
        raise ModelUnavailableError(
            f"{path} is not a model; choose a diffusers folder, a .safetensors checkpoint or a removal model file."
        )
    looks_like_path = reference.startswith((".", "/", "~")) or "\\" in reference or reference.endswith(".safetensors")
    if looks_like_path or not HUB_ID.match(reference):
        raise ModelUnavailableError(
            f"The model '{reference}' was not found: no such file or folder, and it is not a hub id "
            "like 'owner/name'; check the path."
        )

    snapshot = find_in_cache(reference)
    if snapshot is None:
        if not allow_download:
            raise ModelUnavailableError(f"The model {reference} is not installed; {download_hint(reference)}")
        snapshot = download(reference, progress=progress)
    info = detect_folder(snapshot, reference=reference, source="hub", revision=_revision_of(snapshot))
    return info


def resolve_catalog_removal(
    entry: CatalogEntry, *, allow_download: bool = False, progress: Callable[..., Any] | None = None
) -> ModelInfo:
    """A catalog removal network ("lama", "mat", "migan") -> its file in the Hugging Face cache."""
    snapshot = find_in_cache(entry.repo, marker=entry.file)
    if snapshot is None:
        if not allow_download:
            raise ModelUnavailableError(f"{entry.name} is not installed; {download_hint(entry.id)}")
        snapshot = download(entry.id, progress=progress)
    return ModelInfo(
        reference=entry.id,
        source="hub",
        family=Family.REMOVAL,
        path=snapshot / entry.file,
        pipeline_class=entry.architecture,
        revision=_revision_of(snapshot),
    )


class ModelResolver:
    """Resolves references with one engine's permissions: may it download, which pickled files may it read.

    Downloads and pickled checkpoints are refused unless allowed: `allow_download` and
    `allow_unsafe_checkpoints` (any pickled checkpoint: the command line's --allow-unsafe-checkpoint) are
    set for the engine's life; `allow_unsafe_checkpoint(path)` allows one file (the studio asks the user).
    """

    def __init__(self, *, allow_download: bool = False, allow_unsafe_checkpoints: bool = False) -> None:
        self.allow_download = allow_download
        self.allow_unsafe_checkpoints = allow_unsafe_checkpoints
        self.allowed_unsafe: set[str] = set()  # pickled checkpoints the user allowed one by one (the studio)

    def allow_unsafe_checkpoint(self, path: str) -> None:
        """The user confirmed loading this pickled checkpoint (read weights-only even then)."""
        self.allowed_unsafe.add(str(Path(path).expanduser()))

    def resolve(self, reference: str) -> ModelInfo:
        path = str(Path(reference.strip()).expanduser())
        allowed = self.allow_unsafe_checkpoints or path in self.allowed_unsafe
        return resolve_model(reference, allow_download=self.allow_download, allow_unsafe=allowed)

    def resolve_controlnet(self, reference: str) -> ControlNetInfo:
        return resolve_controlnet(reference, allow_download=self.allow_download)
