"""Add-on references -> local files: LoRAs, textual-inversion embeddings, IP-Adapters and upscalers.

A reference is one of:
- a local file (a LoRA, an embedding or an IP-Adapter: `.safetensors` only; an upscaler: what spandrel reads
  with its restricted loader, engine/spandrel_models.py) or a folder holding one such file;
- a hub id "owner/name" (its one weights file: `pytorch_lora_weights.safetensors`, `learned_embeds.safetensors`,
  or the only .safetensors file at its top), or "owner/name/path/in/repo.safetensors" for one file of a
  repository that holds several (Hyper-SD, SDXL-Lightning, IP-Adapter);
- for IP-Adapters, "h94/IP-Adapter" alone: the model family's default adapter (`IP_ADAPTER_DEFAULTS`).
Hub files come from the local Hugging Face cache; a missing one is downloaded only when the caller allows it
(the catalog's "addons" list, resources/models.json, names what to fetch, its size and licence).

Nothing here reads weights except `read_embedding` (small tensors, safetensors only); the LoRA family check
reads the safetensors header alone. Loading into a pipeline is engine/adapters.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from inpaint_studio.core.errors import BadInputError, ModelUnavailableError
from inpaint_studio.engine.catalog import addon_entry, download_hint
from inpaint_studio.engine.models import read_safetensors_header

Kind = Literal["lora", "embedding", "ip_adapter", "upscaler"]
KIND_WORDS = {"lora": "LoRA", "embedding": "embedding", "ip_adapter": "IP-Adapter", "upscaler": "upscaler"}
HUB_REFERENCE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+(/[\w.+ -]+)*$")
PICKLED = (".pt", ".pth", ".bin", ".ckpt", ".pkl")
UPSCALER_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")  # spandrel_models.read_weights reads these safely
PREFERRED_FILES = {
    "lora": ("pytorch_lora_weights.safetensors",),
    "embedding": ("learned_embeds.safetensors",),
    "ip_adapter": (),
    "upscaler": (),
}
# "h94/IP-Adapter" without a file: the adapter made for the model family (both use the ViT-H image encoder).
IP_ADAPTER_REPO = "h94/IP-Adapter"
IP_ADAPTER_DEFAULTS = {
    "sd": "models/ip-adapter_sd15.safetensors",
    "sdxl": "sdxl_models/ip-adapter_sdxl_vit-h.safetensors",
}
IMAGE_ENCODER = "image_encoder"
# Text width of the cross-attention (the UNet's cross_attention_dim) -> the family a LoRA was made for.
TEXT_WIDTHS = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}


@dataclass(frozen=True)
class AddonFile:
    """A resolved add-on: its weights file (a folder for a diffusers upscaler) and where it came from."""

    reference: str
    kind: str
    path: Path
    revision: str | None = None
    image_encoder: Path | None = None  # IP-Adapters: the CLIP vision encoder folder

    @property
    def name(self) -> str:
        if HUB_REFERENCE.match(self.reference) and not Path(self.reference).exists():
            return self.reference
        return self.path.name

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"reference": self.reference, "path": str(self.path), "revision": self.revision}
        if self.image_encoder is not None:
            data["image_encoder"] = str(self.image_encoder)
        return data


def family_key(is_sdxl: bool) -> str:
    return "sdxl" if is_sdxl else "sd"


def resolve_addon(reference: str, kind: Kind, *, family: str | None = None, allow_download: bool = False) -> AddonFile:
    """Find the add-on's files (see the module docstring); ModelUnavailableError says why not, in one sentence.

    `family` ("sd" / "sdxl") picks the default file of a repository that holds one per family (IP-Adapter).
    """
    reference = reference.strip()
    word = KIND_WORDS[kind]
    path = Path(reference).expanduser()
    if path.exists():
        if path.is_dir():
            return _from_folder(reference, kind, path, None, family)
        _check_file(path, kind)
        return _finish(AddonFile(reference, kind, path), kind)
    looks_like_path = reference.startswith((".", "/", "~")) or "\\" in reference or ":" in reference
    if looks_like_path or not HUB_REFERENCE.match(reference):
        raise ModelUnavailableError(
            f"The {word} '{reference}' was not found: no such file or folder, and it is not a hub id like "
            "'owner/name'; check the path."
        )
    repo_id, _, file = _split(reference)
    if kind == "ip_adapter" and not file:
        file = IP_ADAPTER_DEFAULTS.get(family or "sd", IP_ADAPTER_DEFAULTS["sd"])
    found = _cached(repo_id, file, kind, family)
    if found is None:
        if not allow_download:
            raise ModelUnavailableError(f"The {word} {reference} is not installed; {download_hint(reference)}")
        download_addon(reference, family=family)
        found = _cached(repo_id, file, kind, family)
        if found is None:
            raise ModelUnavailableError(
                f"The {word} {reference} was downloaded but its weights file is missing; check the name of the "
                "file in the repository and try again."
            )
    path, revision = found
    if path.is_dir():
        return _from_folder(reference, kind, path, revision, family)
    _check_file(path, kind)
    return _finish(AddonFile(reference, kind, path, revision), kind)


def is_installed(reference: str, kind: Kind, family: str | None = None) -> bool:
    """True when the add-on's files are on this computer (nothing is downloaded or loaded)."""
    try:
        resolve_addon(reference, kind, family=family)
    except (ModelUnavailableError, BadInputError):
        return False
    return True


def _split(reference: str) -> tuple[str, str, str]:
    parts = reference.split("/")
    return "/".join(parts[:2]), "/", "/".join(parts[2:])


def _check_file(path: Path, kind: str) -> None:
    suffix = path.suffix.lower()
    allowed = UPSCALER_SUFFIXES if kind == "upscaler" else (".safetensors",)
    if suffix in allowed:
        return
    if suffix in PICKLED:
        raise ModelUnavailableError(
            f"{path.name} is a pickled file, which can run hidden code when loaded; use the .safetensors version "
            f"of this {KIND_WORDS[kind]}."
        )
    word = KIND_WORDS[kind]
    article = "an" if word[0].lower() in "aeiou" else "a"
    raise ModelUnavailableError(
        f"{path.name} is not {article} {word} file this app reads; choose a "
        f"{'.safetensors or .pth' if kind == 'upscaler' else '.safetensors'} file."
    )


def _from_folder(reference: str, kind: str, folder: Path, revision: str | None, family: str | None) -> AddonFile:
    """A folder: a diffusers upscaler pipeline, an IP-Adapter repository copy, or a folder with one weights file."""
    if kind == "upscaler" and (folder / "model_index.json").is_file():
        return AddonFile(reference, kind, folder, revision)
    if kind == "ip_adapter":
        default = folder / IP_ADAPTER_DEFAULTS.get(family or "sd", IP_ADAPTER_DEFAULTS["sd"])
        if default.is_file():
            return _finish(AddonFile(reference, kind, default, revision), kind)
    suffixes = UPSCALER_SUFFIXES if kind == "upscaler" else (".safetensors",)
    for name in PREFERRED_FILES[kind]:
        if (folder / name).is_file():
            return _finish(AddonFile(reference, kind, folder / name, revision), kind)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if len(files) == 1:
        return _finish(AddonFile(reference, kind, files[0], revision), kind)
    word = KIND_WORDS[kind]
    if not files:
        pickled = [p.name for p in folder.iterdir() if p.suffix.lower() in PICKLED]
        why = f" (only pickled files: {', '.join(pickled[:3])})" if pickled else ""
        raise ModelUnavailableError(
            f"{folder.name} holds no {word} weights this app reads{why}; choose a .safetensors file."
        )
    names = ", ".join(p.name for p in files[:4])
    raise ModelUnavailableError(
        f"{folder.name} holds several weights files ({names}); name one, "
        f"e.g. '{reference.rstrip('/')}/{files[0].name}'."
    )


def _finish(found: AddonFile, kind: str) -> AddonFile:
    if kind != "ip_adapter":
        return found
    encoder = image_encoder_for(found.path)
    if encoder is None:
        raise ModelUnavailableError(
            f"The IP-Adapter {found.path.name} needs its image encoder (a folder '{IMAGE_ENCODER}' with config.json "
            "and model.safetensors) beside it or in ../models/; download the adapter from the Generate panel or "
            "with `inpaint-studio download`."
        )
    return AddonFile(found.reference, kind, found.path, found.revision, encoder)


def image_encoder_for(weights: Path) -> Path | None:
    """The CLIP vision encoder of an IP-Adapter file, laid out as in h94/IP-Adapter: `image_encoder/` beside the
    file, or `models/image_encoder` (the ViT-H encoder the "vit-h" SDXL adapters share with SD 1.5's)."""
    candidates = [weights.parent / IMAGE_ENCODER, weights.parent.parent / "models" / IMAGE_ENCODER]
    if "vit-h" in weights.name.lower():
        candidates.reverse()
    for folder in candidates:
        if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
            return folder
    return None


def _cached(repo_id: str, file: str, kind: str, family: str | None) -> tuple[Path, str | None] | None:
    """(local path, revision) of a hub file or repository snapshot in the cache; None when it is not there."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        if file:
            path = Path(hf_hub_download(repo_id, file, local_files_only=True))
            return path, _revision(path, file)
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        return None
    if not any(folder.iterdir()):
        return None
    return folder, folder.name if folder.parent.name == "snapshots" else None


def _revision(path: Path, file: str) -> str | None:
    root = path
    for _ in file.split("/"):
        root = root.parent
    return root.name if root.parent.name == "snapshots" else None


def download_addon(reference: str, progress: Callable[..., Any] | None = None, *, family: str | None = None) -> Path:
    """Download an add-on's files into the Hugging Face cache (only on the user's request: the caller showed the
    catalog's size and licence first). Returns the repository snapshot folder."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    reference = reference.strip()
    repo_id, _, file = _split(reference)
    if not file and repo_id == IP_ADAPTER_REPO:
        file = IP_ADAPTER_DEFAULTS.get(family or "sd", IP_ADAPTER_DEFAULTS["sd"])
    entry = addon_entry(f"{repo_id}/{file}" if file else repo_id)
    if entry is not None:
        patterns = list(entry.files)
    elif file:
        folder = file.rsplit("/", 1)[0] + "/" if "/" in file else ""
        # An IP-Adapter file brings its image encoder; any other file comes alone.
        patterns = [file, f"{folder}{IMAGE_ENCODER}/*.json", f"{folder}{IMAGE_ENCODER}/*.safetensors"]
    else:
        patterns = ["*.safetensors", "*.json", "*.txt"]
    kwargs: dict[str, Any] = {"allow_patterns": patterns}
    if progress is not None:
        kwargs["tqdm_class"] = progress
    try:
        return Path(snapshot_download(repo_id, **kwargs))
    except GatedRepoError as exc:
        raise ModelUnavailableError(
            f"{repo_id} is gated; accept its licence on huggingface.co and log in with `hf auth login`, then try again."
        ) from exc
    except RepositoryNotFoundError as exc:
        raise ModelUnavailableError(
            f"There is no repository {repo_id} on the Hugging Face hub; check the name."
        ) from exc
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ModelUnavailableError(
            f"{reference} could not be downloaded ({type(exc).__name__}); check the internet connection and try again."
        ) from exc


# ---- what a file is made for (headers and small tensors only) ------------------------------------------------


def lora_text_width(path: Path) -> int | None:
    """The text width a LoRA's cross-attention keys expect (768 SD 1.x, 1024 SD 2.x, 2048 SDXL), from the
    safetensors header alone, in the diffusers, kohya and A1111 key layouts; None when it names none."""
    header = read_safetensors_header(path)
    for key, info in header.items():
        if key == "__metadata__" or not isinstance(info, dict):
            continue
        lowered = key.lower()
        if "attn2" not in lowered or ("to_k" not in lowered and "to_v" not in lowered):
            continue
        if not any(part in lowered for part in ("lora_a", "lora_down", "lora.down", "down.weight")):
            continue
        shape = info.get("shape") or []
        if len(shape) == 2:
            return int(shape[1])
    return None


def is_sdxl_lora(path: Path) -> bool:
    """True when the LoRA has weights for SDXL's second text encoder."""
    header = read_safetensors_header(path)
    return any(k.startswith(("lora_te2_", "text_encoder_2.", "te2.")) for k in header)


def width_name(width: int) -> str:
    return TEXT_WIDTHS.get(width, f"a model with text width {width}")


@dataclass(frozen=True)
class EmbeddingVectors:
    """A textual inversion as read: vectors for the first text encoder (and the second, for SDXL files)."""

    vectors: Any  # torch tensor [n, width]
    vectors_2: Any = None  # SDXL: the second encoder's [n, width_2]
    own_token: str | None = None  # the token the file names itself (diffusers' {token: vector} layout)


def read_embedding(path: Path) -> EmbeddingVectors:
    """Read an embedding file: A1111 ("emb_params", "string_to_param.*"), diffusers ({token: vector}) or SDXL
    ("clip_l" / "clip_g") layouts; safetensors only."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except (OSError, SafetensorError, ValueError) as exc:
        raise ModelUnavailableError(
            f"{path.name} is not a readable embedding ({exc!s:.80}); download it again."
        ) from exc
    if "clip_l" in state or "clip_g" in state:
        if "clip_l" not in state or "clip_g" not in state:
            raise ModelUnavailableError(f"{path.name} is an incomplete SDXL embedding (it needs clip_l and clip_g).")
        return EmbeddingVectors(_rows(state["clip_l"]), _rows(state["clip_g"]))
    if "emb_params" in state:
        return EmbeddingVectors(_rows(state["emb_params"]))
    params = [k for k in state if k.startswith("string_to_param")]
    if len(params) == 1:
        return EmbeddingVectors(_rows(state[params[0]]))
    if len(state) == 1:
        token, vectors = next(iter(state.items()))
        return EmbeddingVectors(_rows(vectors), own_token=token)
    raise BadInputError(
        f"{path.name} is not a textual-inversion embedding this app reads (its tensors: "
        f"{', '.join(list(state)[:4])}); choose an A1111 or diffusers embedding file."
    )


def _rows(tensor: Any) -> Any:
    return tensor.unsqueeze(0) if tensor.ndim == 1 else tensor
