"""Which models a client may ask the server for, and the model list it shows them.

A client names models by reference, and a reference can be a path: without a rule a client could make the
server read any file it can reach. So a job may only name
- the classical fill;
- one of the server's own models: folders and .safetensors files given with `serve --model PATH`, or added
  on the server with `inpaint-studio models --add` (its user's model list);
- a hub id the server has in its cache, or may download (`serve --allow-download`).
Pickled checkpoints are never loaded by a server, whoever allowed them on that computer.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inpaint_studio.core.errors import ModelUnavailableError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.core.user_models import UserModels, normalise
from inpaint_studio.engine.catalog import installed_models
from inpaint_studio.engine.model_list import model_choices
from inpaint_studio.engine.models import HUB_ID, PICKLED_SUFFIXES, find_in_cache


class ModelPolicy:
    """See the module docstring."""

    def __init__(self, models: Iterable[str] = (), *, allow_download: bool = False, user_models: bool = True) -> None:
        self.allow_download = allow_download
        self._given = [normalise(path) for path in models]
        self._user_models = user_models

    def local_models(self) -> list[str]:
        """The server's own model files and folders: the --model ones, then its user's list (read each time,
        so `models --add` on the server applies without a restart)."""
        paths = list(self._given)
        if self._user_models:
            paths += [p for p in UserModels.load().paths if p not in paths]
        return [p for p in paths if Path(p).suffix.lower() not in PICKLED_SUFFIXES]

    def check_job(self, job: InpaintJob) -> None:
        """Raise ModelUnavailableError (one sentence) when the job names a model the server may not run."""
        if not job.is_classical:
            self.check(job.model, "model_index.json")
        if job.refiner:
            self.check(job.refiner, "model_index.json")
        if job.controlnet:
            self.check(job.controlnet, "config.json")

    def check(self, reference: str, marker: str = "model_index.json") -> None:
        text = reference.strip()
        if normalise(text) in self.local_models():
            return
        looks_like_path = (
            text.startswith((".", "/", "~"))
            or "\\" in text
            or Path(text).suffix.lower()
            in (
                ".safetensors",
                *PICKLED_SUFFIXES,
            )
        )
        if looks_like_path or not HUB_ID.match(text) or Path(text).exists():
            raise ModelUnavailableError(
                f"The server only runs the models it lists, and '{text:.80}' is not one of them; choose one from "
                "its list (`inpaint-studio models --server URL`) or a hub id like 'owner/name'."
            )
        if not self.allow_download and find_in_cache(text, marker=marker) is None:
            raise ModelUnavailableError(
                f"The server does not have {text} and may not download models; ask its administrator to run "
                f"`inpaint-studio download {text}` there, or to start it with --allow-download."
            )

    def rows(self) -> list[dict[str, Any]]:
        """The model list as `inpaint-studio models --json` rows, limited to what a job may name here."""
        rows = []
        for choice in model_choices(installed_models(), self.local_models()):
            if not choice.installed and not (choice.source == "catalog" and self.allow_download):
                continue
            row = choice.to_row()
            row["available"] = True
            rows.append(row)
        return rows
