"""The one list of models a user can pick: the classical fill, the catalog, other installed pipelines, and
the user's own folders and checkpoint files (core/user_models.py), and the rule for adding one of those.

The studio's model picker and `inpaint-studio models` both show `model_choices()`, so they always agree.
Reads JSON, safetensors headers and the Hugging Face cache index only: no torch, nothing loaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpaint_studio.core.errors import ModelUnavailableError
from inpaint_studio.core.jobspec import CLASSIC_MODEL
from inpaint_studio.core.user_models import UserModels, normalise
from inpaint_studio.engine.catalog import CatalogEntry, InstalledModel, catalog
from inpaint_studio.engine.models import PICKLED_CHECKPOINTS, pickled_checkpoint_refusal, resolve_model
from inpaint_studio.engine.removal_files import removal_architecture

CLASSIC_LABEL = "Classical fill (no download)"


@dataclass(frozen=True)
class ModelChoice:
    """One row of the model list."""

    reference: str  # what goes into InpaintJob.model
    label: str
    source: str  # classic | catalog | cached | local
    installed: bool
    entry: CatalogEntry | None = None
    size_gb: float | None = None
    family: str | None = None  # known for catalog and cached models; a local file's is read when it is used

    def details(self) -> str:
        """What the user should know about this choice (one or two sentences)."""
        if self.source == "classic":
            return "Fills the mask from its surroundings with OpenCV: no download, no prompt, works on any computer."
        if self.source == "local":
            if not self.installed:
                return f"{self.reference} is missing; add the model again or choose another."
            kind = "folder" if Path(self.reference).is_dir() else "checkpoint file"
            if self.family == "removal":
                kind = "removal model (no prompt: removes what is under the mask)"
            return f"Your model {kind} at {self.reference}."
        entry = self.entry
        if self.installed:
            size = f"{self.size_gb:.1f} GB on disk" if self.size_gb else "installed"
            note = f" {entry.note}" if entry and entry.note else ""
            return f"Installed ({size}).{note}"
        assert entry is not None
        vram = f", and about {entry.min_vram_gb:g} GB of GPU memory to run fast" if entry.min_vram_gb else ""
        return (
            f"Not installed: needs a {entry.download_gb:g} GB download (licence {entry.licence}){vram}. {entry.note}"
        ).strip()

    def to_row(self) -> dict[str, Any]:
        """Plain data for `inpaint-studio models --json`."""
        row: dict[str, Any] = {"id": self.reference, "name": self.label, "source": self.source}
        row["family"] = self.family or ("classic" if self.source == "classic" else "unknown")
        row["installed"] = self.installed
        if self.entry is not None:
            row.update(download_gb=self.entry.download_gb, licence=self.entry.licence)
        if self.size_gb is not None:
            row["size_gb"] = round(self.size_gb, 2)
        return row


def local_label(path: str) -> str:
    """A user's model as the list names it: what it is, and whether it is still there."""
    target = Path(path)
    if not target.exists():
        return f"{target.name} (your model, missing)"
    architecture = removal_architecture(target) if target.is_file() else None
    if architecture is not None:
        return f"{target.name} (your {architecture} removal model)"
    return f"{target.name} (your {'folder' if target.is_dir() else 'checkpoint'})"


def model_choices(installed: list[InstalledModel], local_paths: list[str]) -> list[ModelChoice]:
    """The classical fill, the catalog, other cached inpaint-capable pipelines, then the user's models."""
    by_id = {model.id: model for model in installed}
    out = [ModelChoice(CLASSIC_MODEL, CLASSIC_LABEL, "classic", True, family="classic")]
    for entry in catalog():
        model = by_id.get(entry.id)
        state = "installed" if model else f"not installed, {entry.download_gb:g} GB"
        out.append(
            ModelChoice(
                entry.id,
                f"{entry.name} ({state})",
                "catalog",
                model is not None,
                entry,
                model.size_gb if model else None,
                entry.family.value,
            )
        )
    catalog_ids = {entry.id for entry in catalog()}
    for model in installed:
        if model.id not in catalog_ids and model.family is not None:
            out.append(
                ModelChoice(
                    model.id, f"{model.id} (installed)", "cached", True, None, model.size_gb, model.family.value
                )
            )
    for path in local_paths:
        removal = Path(path).is_file() and removal_architecture(Path(path)) is not None
        family = "removal" if removal else None
        out.append(ModelChoice(path, local_label(path), "local", Path(path).exists(), family=family))
    return out


def add_user_model(path: str, user_models: UserModels, *, confirm_unsafe: Callable[[str], bool] | None = None) -> str:
    """Check that a folder or checkpoint file is a usable model (reads configs only) and remember it.

    Returns the reference it is remembered under. A pickled checkpoint (.ckpt/.pt/.pth) is accepted only
    when the user allowed it before, or when `confirm_unsafe(path)` (the studio's "Add checkpoint file…"
    question, default No) says yes now; references that come from data (projects, history, parameters)
    pass no `confirm_unsafe` and are never offered. Raises the InpaintStudioError that says why not.
    """
    reference = normalise(path)
    removal = Path(reference).is_file() and removal_architecture(Path(reference)) is not None
    if Path(reference).suffix.lower() in PICKLED_CHECKPOINTS and not removal:  # removal networks load weights-only
        if not Path(reference).is_file():
            raise ModelUnavailableError(f"The checkpoint {reference} does not exist; check the path.")
        if not user_models.is_unsafe_allowed(reference):
            if confirm_unsafe is None or not confirm_unsafe(reference):
                raise pickled_checkpoint_refusal(Path(reference))
            user_models.allow_unsafe(reference)
    else:
        info = resolve_model(path)
        reference = str(info.path or reference)
    user_models.add(reference)
    return reference
