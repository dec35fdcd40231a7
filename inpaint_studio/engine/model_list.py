"""The one list of models a user can pick: the classical fill, the catalog, other installed pipelines, and
the user's own folders and checkpoint files (core/user_models.py), and the rule for adding one of those.

The studio's model picker and `inpaint-studio models` both show `model_choices()`, so they always agree.
Reads JSON, safetensors headers and the Hugging Face cache index only: no torch, nothing loaded.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inpaint_studio.core.errors import ModelUnavailableError
from inpaint_studio.core.jobspec import CLASSIC_MODEL, PREFILL_NONE, REMOVAL_MODELS, ClassicalMethod, InpaintJob
from inpaint_studio.core.user_models import UserModels, normalise
from inpaint_studio.engine.catalog import CatalogEntry, InstalledModel, catalog
from inpaint_studio.engine.models import PICKLED_CHECKPOINTS, pickled_checkpoint_refusal, resolve_model
from inpaint_studio.engine.removal_files import MIGAN, removal_architecture

CLASSIC_LABEL = "Classical fill (no download)"
# Which installed removal network the studio prefers (Remove, and the classical fill's "Automatic"): LaMa is
# the best all-round, MI-GAN the fastest and needs no extra install, MAT is slower and non-commercial.
REMOVAL_PREFERENCE = ("lama", "migan", "mat")


@dataclass(frozen=True)
class ModelChoice:
    """One row of the model list."""

    reference: str  # what goes into InpaintJob.model
    label: str
    source: str  # classic | catalog | cached | local | server (one of the engine server's own models)
    installed: bool
    entry: CatalogEntry | None = None
    size_gb: float | None = None
    family: str | None = None  # known for catalog and cached models; a local file's is read when it is used
    architecture: str | None = None  # a removal network's: LaMa, MAT, MI-GAN

    @property
    def is_removal(self) -> bool:
        return self.family == "removal"

    def details(self) -> str:
        """What the user should know about this choice (one or two sentences)."""
        if self.source == "classic":
            return "Fills the mask from its surroundings with OpenCV: no download, no prompt, works on any computer."
        if self.source == "server":
            return f"A model of the server the studio uses (Settings > Engine): {self.reference}."
        if self.source == "local":
            if not self.installed:
                return f"{self.reference} is missing; add the model again or choose another."
            kind = "folder" if Path(self.reference).is_dir() else "checkpoint file"
            if self.family == "removal":
                kind = "removal model (no prompt: removes what is under the mask)"
            return f"Your model {kind} at {self.reference}."
        entry = self.entry
        if self.installed:
            size = f"{_size(self.size_gb)} on disk" if self.size_gb else "installed"
            licence = f", licence {entry.licence}" if entry and self.is_removal else ""
            note = f" {entry.note}" if entry and entry.note else ""
            return f"Installed ({size}{licence}).{note}"
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
                entry.architecture or None,
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
        architecture = removal_architecture(Path(path)) if Path(path).is_file() else None
        family = "removal" if architecture else None
        out.append(
            ModelChoice(path, local_label(path), "local", Path(path).exists(), family=family, architecture=architecture)
        )
    return out


def _size(gb: float) -> str:
    return f"{gb:.1f} GB" if gb >= 0.1 else f"{gb * 1000:.0f} MB"


# ---- which engine runs --------------------------------------------------------------------------------------


def can_run(choice: ModelChoice) -> bool:
    """Installed, and its runtime is there: MI-GAN needs onnxruntime (a base dependency), LaMa and MAT spandrel
    (the optional vision extra). Looked up without importing anything (the UI thread never loads torch)."""
    if not choice.installed:
        return False
    return _installed("onnxruntime" if choice.architecture == MIGAN else "spandrel")


@functools.cache
def _installed(package: str) -> bool:
    """Whether a package can be imported (looked up once: the panel asks on every change of a setting)."""
    return importlib.util.find_spec(package) is not None


def best_removal(choices: list[ModelChoice]) -> ModelChoice | None:
    """The removal network Remove uses: the first of REMOVAL_PREFERENCE that can run, else the user's own."""
    removal = [c for c in choices if c.is_removal and can_run(c)]
    by_reference = {c.reference: c for c in removal}
    preferred = [by_reference[name] for name in REMOVAL_PREFERENCE if name in by_reference]
    return (preferred or removal or [None])[0]


def suggested_removal(choices: list[ModelChoice]) -> ModelChoice | None:
    """What to offer when the classical fill meets a large hole: the best installed network, else MI-GAN
    (a 30 MB download that runs on any computer)."""
    return best_removal(choices) or next((c for c in choices if c.reference == "migan"), None)


def is_automatic(job: InpaintJob) -> bool:
    """The default choice: the classical fill with its Automatic method (the prompt is not used there)."""
    return job.model.strip() == CLASSIC_MODEL and job.classical_method is ClassicalMethod.AUTO


def model_to_run(job: InpaintJob, choices: list[ModelChoice]) -> str:
    """The model Generate runs. With a removal network installed, the default choice (the classical fill on
    Automatic, which takes no prompt) means removal: that network runs. Any explicit choice runs as chosen."""
    if is_automatic(job):
        best = best_removal(choices)
        if best is not None:
            return best.reference
    return job.model


def removal_label(choice: ModelChoice | None, reference: str) -> str:
    if choice is not None and choice.architecture:
        return choice.architecture
    return Path(reference).name if reference not in REMOVAL_MODELS else reference


def engine_summary(job: InpaintJob, choices: list[ModelChoice]) -> str:
    """One line for the Generate panel: which engine Generate will run, and with what."""
    by_reference = {c.reference: c for c in choices}
    reference = model_to_run(job, choices)
    choice = by_reference.get(reference)
    if reference != job.model:
        name = removal_label(choice, reference)
        return f"Will run: {name} removal (installed; choose a fill method to use the classical fill instead)."
    if job.is_classical:
        method = job.effective_classical_method.value
        hint = "" if best_removal(choices) else "; for objects larger than spots, get a removal model (MI-GAN: 30 MB)"
        return f"Will run: the classical fill ({method}){hint}."
    if choice is not None and choice.is_removal:
        after = "" if choice.installed else ", once downloaded"
        if choice.installed and not can_run(choice):
            after = ', which needs the optional vision parts: pip install "inpaint-studio[vision]"'
        return f"Will run: {removal_label(choice, reference)} removal, no prompt{after}."
    name = choice.label if choice is not None else Path(reference).name or reference
    name = name.split(" (")[0]
    first = ""
    prefill = job.prefill.strip()
    if prefill != PREFILL_NONE:
        filler = (
            "the classical fill"
            if prefill == CLASSIC_MODEL
            else f"{removal_label(by_reference.get(prefill), prefill)} removal"
        )
        first = f"{filler}, then "
    prompt = "" if job.prompt.strip() else " with no prompt (to remove an object: Remove, Shift+Delete)"
    strength = f" at strength {job.strength:g}" if first else ""
    return f"Will run: {first}{name}, {job.steps} steps{strength}{prompt}."


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
