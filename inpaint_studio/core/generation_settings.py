"""The Generate panel's state without Qt: the job it describes plus the panel's own switches.

One shape for one fact. The panel's widgets bind to fields of this model (ui/bindings.py);
the studio's settings, projects and "Use these parameters" store and load this model, never the widgets.
So every job field, also those the panel has no widget for (task, ControlNet, refiner, speed, ...),
survives restarting the app, reopening a project and re-using an entry's parameters.

Fields are named by path: "steps", "mask.feather_px", "speed.attention"; the panel-only switches are
"seed_locked", "live_preview" (the latent preview while generating) and "paint_preview" (a few-step preview of
the masked area while the mask is painted). `job` holds the seed the panel shows (the last one used when unlocked);
`job_to_run()` is the job Generate submits (no seed, i.e. a new random one, unless it is locked).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import CLASSIC_MODEL, MAX_SEED, ClassicalMethod, InpaintJob

Listener = Callable[[str], None]  # called with the changed path, or ALL after a whole new job
ALL = "*"
PANEL_FLAGS: dict[str, bool] = {"seed_locked": False, "live_preview": True, "paint_preview": False}


def job_field_paths(cls: type = InpaintJob, prefix: str = "") -> Iterator[str]:
    """Every leaf field of a job as a path ("model", ..., "mask.grow_px", "speed.attention")."""
    for item in dataclasses.fields(cls):
        factory = item.default_factory
        if factory is not dataclasses.MISSING and dataclasses.is_dataclass(factory):
            yield from job_field_paths(factory, f"{prefix}{item.name}.")  # nested options: MaskOptions, ...
        else:
            yield prefix + item.name


def get_path(job: InpaintJob, path: str) -> Any:
    value: Any = job
    for part in path.split("."):
        value = getattr(value, part)
    return value


def replace_path(obj: Any, path: str, value: Any) -> Any:
    """A copy of a frozen dataclass with the field at `path` replaced (nested options are copied too)."""
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: replace_path(getattr(obj, head), rest, value)})


class GenerationSettings:
    """See the module docstring. Listeners run synchronously on the thread that changed the value."""

    def __init__(self, job: InpaintJob | None = None, **flags: bool) -> None:
        unknown = set(flags) - set(PANEL_FLAGS)
        if unknown:
            raise TypeError(f"unknown panel flag(s): {', '.join(sorted(unknown))}")
        self._job = _normalised(job) if job is not None else InpaintJob()
        self._flags = {**PANEL_FLAGS, **{name: bool(value) for name, value in flags.items()}}
        self._listeners: list[Listener] = []

    # ---- observing ----------------------------------------------------------------------------------
    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(path)` after every change; returns the function that unsubscribes it."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def _notify(self, path: str) -> None:
        for listener in list(self._listeners):
            listener(path)

    # ---- values -------------------------------------------------------------------------------------
    @property
    def job(self) -> InpaintJob:
        """The job as the panel shows it (its seed is the one displayed, locked or not)."""
        return self._job

    @property
    def seed_locked(self) -> bool:
        return self._flags["seed_locked"]

    @property
    def live_preview(self) -> bool:
        return self._flags["live_preview"]

    @property
    def paint_preview(self) -> bool:
        return self._flags["paint_preview"]

    def get(self, path: str) -> Any:
        if path in self._flags:
            return self._flags[path]
        return get_path(self._job, path)

    def set(self, path: str, value: Any) -> None:
        """Change one field (a job path or a panel flag); listeners hear of it only if it changed."""
        if path in self._flags:
            if self._flags[path] == bool(value):
                return
            self._flags[path] = bool(value)
        else:
            if get_path(self._job, path) == value:
                return
            job = _normalised(replace_path(self._job, path, value))
            if path == "model" and job.classical_method != self._job.classical_method:
                path = ALL  # "classic:telea" chose the method too
            self._job = job
        self._notify(path)

    def load_job(self, job: InpaintJob, *, lock_seed: bool | None = None) -> None:
        """Show a whole job (restored settings, a history entry's parameters); `lock_seed` sets the lock."""
        job = _normalised(job)
        changed = job != self._job
        self._job = job
        if lock_seed is not None and self._flags["seed_locked"] != lock_seed:
            self._flags["seed_locked"] = lock_seed
            changed = True
        if changed:
            self._notify(ALL)

    def job_to_run(self) -> InpaintJob:
        """What Generate submits: the shown seed only when it is locked (else a fresh random one)."""
        return self._job if self.seed_locked else self._job.replace(seed=None)

    # ---- plain data (settings file, projects) ---------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"job": self._job.to_dict(), "panel": dict(self._flags)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GenerationSettings:
        """Read `to_dict()` (or a project's generate job + panel values); BadInputError when invalid."""
        if not isinstance(data, Mapping) or not isinstance(data.get("job"), Mapping):
            raise BadInputError("The saved Generate settings are not a set of named settings.")
        return cls.from_parts(data["job"], data.get("panel"))

    @classmethod
    def from_parts(cls, job_data: Mapping[str, Any], panel: Any = None) -> GenerationSettings:
        """A job dict plus the panel's values, including the older form that kept the seed as text."""
        panel = dict(panel) if isinstance(panel, Mapping) else {}
        job = _normalised(InpaintJob.from_dict(job_data))
        seed_text = panel.pop("seed_text", None)
        if isinstance(seed_text, str):  # before the model: the seed field's text ("" = none shown)
            job = job.replace(seed=_seed_from_text(seed_text))
        locked = panel.get("seed_locked", job.seed is not None)
        flags = {name: bool(panel.get(name, default)) for name, default in PANEL_FLAGS.items()}
        flags["seed_locked"] = bool(locked)
        return cls(job, **flags)


def _normalised(job: InpaintJob) -> InpaintJob:
    """One way to say each thing: "classic:telea" becomes the classical fill with its method set to Telea."""
    if job.model.startswith(CLASSIC_MODEL + ":"):
        try:
            method = ClassicalMethod(job.model.split(":", 1)[1])
        except ValueError:
            return job  # an unknown method stays visible, so problems() can name it
        return job.replace(model=CLASSIC_MODEL, classical_method=method)
    return job


def _seed_from_text(text: str) -> int | None:
    text = text.strip()
    if not text.isdigit():
        return None
    value = int(text)
    return value if value <= MAX_SEED else None
