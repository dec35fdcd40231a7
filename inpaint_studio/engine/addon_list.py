"""The add-ons an artist can pick: the files in their LoRA / embeddings folders, add-ons in the Hugging Face
cache, and the catalog's (installed or offered for download, with size and licence).

The Generate panel's add-on pickers, the Upscale dialog and `inpaint-studio models --addons` read these. Only
safetensors headers, folder listings and the cache index are read: no torch, nothing loaded (call it on the
background runner: it touches the disk).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.parameters import addon_name
from inpaint_studio.engine.addons import (
    UPSCALER_SUFFIXES,
    Kind,
    is_installed,
    lora_text_width,
    width_name,
)
from inpaint_studio.engine.catalog import AddonEntry, addon_catalog
from inpaint_studio.engine.models import read_safetensors_header

MAX_FILES = 500  # a folder with more is listed in part (the list stays usable)


@dataclass(frozen=True)
class AddonChoice:
    """One add-on that can be picked: what goes into the job, and what the artist reads about it."""

    reference: str  # a file path, or a hub reference
    label: str
    kind: str
    installed: bool
    source: str  # folder | cache | catalog
    family: str = ""  # "SD 1.x", "SDXL", ... when the file says
    entry: AddonEntry | None = None

    @property
    def name(self) -> str:
        return addon_name(self.reference)

    def details(self) -> str:
        if self.entry is not None and not self.installed:
            return f"Not installed: {self.entry.offer()}"
        where = {"folder": "your folder", "cache": "the Hugging Face cache", "catalog": "the catalog"}[self.source]
        family = f" for {self.family}" if self.family else ""
        return f"{self.label}{family}, from {where}."


def _safetensors_in(folder: str | Path | None) -> list[Path]:
    if not folder:
        return []
    root = Path(folder).expanduser()
    if not root.is_dir():
        return []
    files = []
    for path in sorted(root.rglob("*.safetensors")):
        files.append(path)
        if len(files) >= MAX_FILES:
            break
    return files


def _lora_family(path: Path) -> str:
    try:
        width = lora_text_width(path)
    except InpaintStudioError:
        return ""
    return width_name(width) if width else ""


def _is_lora(path: Path) -> bool:
    try:
        header = read_safetensors_header(path)
    except InpaintStudioError:
        return False
    return any("lora" in key.lower() for key in header if key != "__metadata__")


def list_loras(folder: str | Path | None, cache_dir: Path | None = None) -> list[AddonChoice]:
    """LoRAs in the user's folder, then the LoRAs in the Hugging Face cache (repositories that are not
    pipelines and hold LoRA weights: a hub id when it holds one, "owner/name/file" for each when several)."""
    out = [
        AddonChoice(str(path), path.stem, "lora", True, "folder", _lora_family(path))
        for path in _safetensors_in(folder)
        if _is_lora(path)
    ]
    return out + cached_loras(cache_dir)


def cached_loras(cache_dir: Path | None = None) -> list[AddonChoice]:
    from huggingface_hub import scan_cache_dir

    try:
        info = scan_cache_dir(cache_dir) if cache_dir else scan_cache_dir()
    except Exception:  # no cache yet, or an unreadable one: nothing cached
        return []
    out = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        snapshot = Path(max(repo.revisions, key=lambda r: r.last_modified).snapshot_path)
        if (snapshot / "model_index.json").is_file():
            continue  # a pipeline, not an add-on
        files = [p for p in sorted(snapshot.glob("*.safetensors")) if _is_lora(p)]
        for path in files:
            reference = repo.repo_id if len(files) == 1 else f"{repo.repo_id}/{path.name}"
            out.append(AddonChoice(reference, reference, "lora", True, "cache", _lora_family(path)))
    return out


def list_embeddings(folder: str | Path | None) -> list[AddonChoice]:
    return [AddonChoice(str(path), path.stem, "embedding", True, "folder") for path in _safetensors_in(folder)]


def catalog_choices(kind: Kind) -> list[AddonChoice]:
    """The catalog's add-ons of one kind, each marked installed or not."""
    out = []
    for entry in addon_catalog():
        if entry.kind != kind:
            continue
        family = None if entry.family == "any" else entry.family
        installed = is_installed(entry.id, kind, family)
        state = "installed" if installed else f"not installed, {entry.download_gb:g} GB"
        out.append(AddonChoice(entry.id, f"{entry.name} ({state})", kind, installed, "catalog", entry=entry))
    return out


def list_upscalers(folder: str | Path | None) -> list[AddonChoice]:
    """Upscaling networks in the user's folder (any weights file spandrel reads), then the catalog's."""
    files: list[Path] = []
    if folder and Path(folder).expanduser().is_dir():
        files = sorted(p for p in Path(folder).expanduser().iterdir() if p.suffix.lower() in UPSCALER_SUFFIXES)
    out = [AddonChoice(str(path), path.name, "upscaler", True, "folder") for path in files[:MAX_FILES]]
    return out + catalog_choices("upscaler")
