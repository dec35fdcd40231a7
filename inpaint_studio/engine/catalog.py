"""The model catalog (resources/models.json) and the models installed in the Hugging Face cache.

The catalog's "models" are the pickable inpainting models; its "addons" are what the artist loads on top
(LoRAs and fast-mode LoRAs, IP-Adapters, upscalers): each names the files it needs, its size and licence,
so a download is only ever started on request, after both were shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from inpaint_studio.core.resources import resource_path
from inpaint_studio.engine.families import PIPELINE_FAMILIES, Family


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    name: str
    family: Family
    download_gb: float
    licence: str
    note: str
    min_vram_gb: float
    # Removal networks are one file of a hub repository (the id is their short name: "lama", "mat", "migan").
    repo: str = ""
    file: str = ""
    architecture: str = ""

    @property
    def is_removal(self) -> bool:
        return self.family is Family.REMOVAL


@dataclass(frozen=True)
class InstalledModel:
    id: str
    path: Path
    size_gb: float
    family: Family | None  # None when the cached repo is not an inpaint-capable pipeline


@lru_cache(maxsize=1)
def catalog() -> tuple[CatalogEntry, ...]:
    data = json.loads(resource_path("models.json").read_text(encoding="utf-8"))
    return tuple(
        CatalogEntry(
            id=m["id"],
            name=m["name"],
            family=Family(m["family"]),
            download_gb=float(m["download_gb"]),
            licence=m["licence"],
            note=m.get("note", ""),
            min_vram_gb=float(m.get("min_vram_gb", 0)),
            repo=m.get("repo", ""),
            file=m.get("file", ""),
            architecture=m.get("architecture", ""),
        )
        for m in data["models"]
    )


@dataclass(frozen=True)
class AddonEntry:
    id: str  # the reference a job uses: a hub id, or a hub id + "/" + a file in that repository
    name: str
    kind: str  # lora | embedding | ip_adapter | upscaler
    family: str  # sd | sdxl | any: the model family it is made for
    files: tuple[str, ...]  # what to download from the repository (file names or patterns)
    download_gb: float
    licence: str
    note: str

    @property
    def repo_id(self) -> str:
        return "/".join(self.id.split("/")[:2])

    def offer(self) -> str:
        """What the artist reads before downloading it (one sentence)."""
        return f"{self.name}: a {self.download_gb:g} GB download, licence {self.licence}. {self.note}".strip()


@lru_cache(maxsize=1)
def addon_catalog() -> tuple[AddonEntry, ...]:
    data = json.loads(resource_path("models.json").read_text(encoding="utf-8"))
    return tuple(
        AddonEntry(
            id=a["id"],
            name=a["name"],
            kind=a["kind"],
            family=a.get("family", "any"),
            files=tuple(a.get("files", ())),
            download_gb=float(a["download_gb"]),
            licence=a["licence"],
            note=a.get("note", ""),
        )
        for a in data.get("addons", [])
    )


def addon_entry(reference: str) -> AddonEntry | None:
    return next((e for e in addon_catalog() if e.id == reference.strip()), None)


def catalog_entry(model_id: str) -> CatalogEntry | None:
    return next((e for e in catalog() if e.id == model_id), None)


def removal_entry(name: str) -> CatalogEntry | None:
    """The catalog's removal network called `name` ("lama", "mat", "migan"), if there is one."""
    entry = catalog_entry(name.strip())
    return entry if entry is not None and entry.is_removal else None


def removal_entries() -> tuple[CatalogEntry, ...]:
    return tuple(entry for entry in catalog() if entry.is_removal)


def download_hint(model_id: str) -> str:
    """What the user should do to get a model that is not installed (one sentence, ends with a period)."""
    entry = catalog_entry(model_id) or addon_entry(model_id)
    size = f" (about {entry.download_gb:g} GB, licence {entry.licence})" if entry else ""
    return (
        f"download it with `inpaint-studio download {model_id}`{size} or from the Generate panel, "
        "on a computer with an internet connection."
    )


def installed_models(cache_dir: Path | None = None) -> list[InstalledModel]:
    """Diffusers pipelines and removal networks present in the local Hugging Face cache (no network)."""
    from huggingface_hub import scan_cache_dir

    try:
        info = scan_cache_dir(cache_dir) if cache_dir else scan_cache_dir()
    except Exception:  # no cache folder yet, or an unreadable one: nothing is installed
        return []
    out = []
    removal = {entry.repo: entry for entry in removal_entries()}
    for repo in info.repos:
        if repo.repo_type != "model":
            continue
        if repo.repo_id in removal:
            found = _removal_file(repo, removal[repo.repo_id])
            if found is not None:
                out.append(found)
            continue
        for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
            index = Path(revision.snapshot_path) / "model_index.json"
            if not index.is_file():
                continue
            try:
                class_name = json.loads(index.read_text(encoding="utf-8")).get("_class_name", "")
            except (OSError, ValueError):
                continue
            out.append(
                InstalledModel(
                    id=repo.repo_id,
                    path=Path(revision.snapshot_path),
                    size_gb=repo.size_on_disk / 1e9,
                    family=PIPELINE_FAMILIES.get(class_name),
                )
            )
            break
    return out


def _removal_file(repo: object, entry: CatalogEntry) -> InstalledModel | None:
    """The newest cached copy of a removal network's file (its repository may hold other files too)."""
    for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):  # type: ignore[attr-defined]
        path = Path(revision.snapshot_path) / entry.file
        if path.is_file():
            return InstalledModel(id=entry.id, path=path, size_gb=path.stat().st_size / 1e9, family=Family.REMOVAL)
    return None
