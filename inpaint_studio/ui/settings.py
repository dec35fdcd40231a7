"""The studio's preferences: one typed attribute per QSettings key, with its default, in one place.

Nothing else reads QSettings by hand. A value of the wrong type in the file (hand-edited, or written by an
older version) reads as the default instead of failing. `AppSettings.store` is the QSettings underneath
(window geometry uses it directly; tests give a private ini file).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QByteArray, QSettings

from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.generation_settings import GenerationSettings
from inpaint_studio.core.jobspec import CLASSIC_MODEL, InpaintJob
from inpaint_studio.core.user_models import UserModels

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_RECENT = 10
ENGINE_LOCAL = "local"
ENGINE_SERVER = "server"


class _Setting(Generic[T]):
    """A descriptor: `settings.name` reads the key (converted, or the default), assignment writes it."""

    def __init__(self, key: str, default: T) -> None:
        self.key, self.default = key, default

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: AppSettings | None, owner: type | None = None) -> Any:
        if obj is None:
            return self
        raw = obj.store.value(self.key)
        if raw is None:
            return self.default
        try:
            return self.convert(raw)
        except (TypeError, ValueError):
            log.warning("ignoring the setting %s=%r (not a %s)", self.key, raw, type(self).__name__)
            return self.default

    def __set__(self, obj: AppSettings, value: T) -> None:
        if value is None:
            obj.store.remove(self.key)
        else:
            obj.store.setValue(self.key, self.to_store(value))

    def convert(self, raw: Any) -> T:
        raise NotImplementedError

    def to_store(self, value: T) -> Any:
        return value


class _Bool(_Setting[bool]):
    def convert(self, raw: Any) -> bool:
        if isinstance(raw, str):  # ini files store booleans as text
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        return bool(raw)


class _Number(_Setting[float]):
    """A non-negative number (seconds, MiB)."""

    def convert(self, raw: Any) -> float:
        return max(0.0, float(raw))


class _Int(_Setting[int]):
    def __init__(self, key: str, default: int, minimum: int = 0) -> None:
        super().__init__(key, default)
        self.minimum = minimum

    def convert(self, raw: Any) -> int:
        return max(self.minimum, int(float(raw)))


class _Text(_Setting[str]):
    def convert(self, raw: Any) -> str:
        return str(raw)


class _TextList(_Setting[list[str]]):
    def convert(self, raw: Any) -> list[str]:
        if isinstance(raw, str):  # QSettings returns a one-item list as a plain string
            return [raw] if raw else []
        return [str(item) for item in raw]

    def to_store(self, value: list[str]) -> Any:
        return list(value)


class _Json(_Setting[Any]):
    def convert(self, raw: Any) -> Any:
        try:
            return json.loads(str(raw))
        except RecursionError as exc:  # a hostile, deeply nested value
            raise ValueError("too deeply nested") from exc

    def to_store(self, value: Any) -> Any:
        return json.dumps(value)


class _Bytes(_Setting[QByteArray | None]):
    def convert(self, raw: Any) -> QByteArray | None:
        if not isinstance(raw, QByteArray):
            raise TypeError(type(raw).__name__)
        return raw


class AppSettings:
    """See the module docstring."""

    # Generate panel: its whole settings model (core/generation_settings.py) as JSON.
    generate = _Json("generate/settings", None)
    # Generation worker's watchdog (ui/engine_thread/watchdog.py); None: the device's default.
    stall_timeout_s = _Number("generation/stall_timeout_s", None)  # type: ignore[arg-type]
    abandon_grace_s = _Number("generation/abandon_grace_s", None)  # type: ignore[arg-type]
    # Memory budgets, MiB.
    history_budget_mb = _Int("memory/history_budget_mb", 2048, minimum=1)
    project_budget_mb = _Int("memory/project_budget_mb", 1024, minimum=1)
    # Autosave (ui/controllers/autosave.py).
    autosave_enabled = _Bool("autosave/enabled", True)
    autosave_delay_s = _Number("autosave/delay_s", 120.0)
    autosave_max_wait_s = _Number("autosave/max_wait_s", 300.0)
    # Folders the file dialogs start in, and Open Recent.
    last_dir = _Text("last_dir", "")
    export_dir = _Text("export_dir", "")
    project_dir = _Text("project_dir", "")
    recent_files = _TextList("recent_files", [])
    # Add-ons: where the user keeps LoRAs, embeddings and upscaling networks; the last upscale's choices.
    lora_folder = _Text("addons/lora_folder", "")
    embeddings_folder = _Text("addons/embeddings_folder", "")
    upscaler_folder = _Text("addons/upscaler_folder", "")
    upscale_model = _Text("upscale/model", "")
    upscale_scale = _Int("upscale/scale", 2, minimum=2)
    # Mask menu dialogs remember their last value.
    mask_grow_px = _Int("mask/grow_px", 8, minimum=1)
    mask_shrink_px = _Int("mask/shrink_px", 8, minimum=1)
    mask_feather_px = _Int("mask/feather_px", 8, minimum=1)
    # Settings > Engine: "local" (this computer, the default) or "server" (an `inpaint-studio serve`).
    # The token is kept here like every other preference: in the user's own settings file.
    engine_kind = _Text("engine/kind", ENGINE_LOCAL)
    engine_url = _Text("engine/url", "")
    engine_token = _Text("engine/token", "")
    # After Apply the mask is cleared in the same undo step, unless the user keeps it to iterate on the area.
    keep_mask_after_apply = _Bool("mask/keep_after_apply", False)
    # The mask overlay's colour ("#rrggbb"; drawn at half opacity): red-pink reads on most photos, not all.
    mask_color = _Text("view/mask_color", "#ff3060")
    # The brush (ui/canvas/tools.py ToolSettings): size in image pixels, hardness 0-1.
    brush_size = _Number("brush/size", 40.0)
    brush_hardness = _Number("brush/hardness", 0.8)
    # The Select tool's model ("": the catalog's default, engine/segmentation.py DEFAULT_SEGMENTER).
    segmenter_model = _Text("select/model", "")
    # Image > Expand Canvas… and the Expand tool: the last choices (ui/controllers/outpaint.py).
    expand_margins = _Json("outpaint/margins", None)  # [left, top, right, bottom] last used in the dialog
    expand_anchor = _Json("outpaint/anchor", None)  # [column, row] of the 3x3 anchor grid
    outpaint_prefill = _Text("outpaint/prefill", "classic")
    outpaint_generate = _Bool("outpaint/generate", True)
    # Window layout.
    window_geometry = _Bytes("window/geometry", None)
    window_state = _Bytes("window/state", None)
    # Before the settings model (read once to migrate): the Generate panel's separate keys.
    legacy_generate_params = _Json("generate/params", None)
    legacy_generate_model = _Text("generate/model", "")
    legacy_seed_locked = _Bool("generate/seed_locked", False)
    legacy_live_preview = _Bool("generate/live_preview", True)
    # Before core/user_models.py: the models added in the studio and the pickled checkpoints allowed.
    legacy_local_models = _TextList("generate/local_models", [])
    legacy_unsafe_allowed = _TextList("models/unsafe_allowed", [])

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store if store is not None else QSettings()

    def folder(self, *names: str) -> Path:
        """The first of the named folder settings that is set (e.g. "project_dir", "last_dir"), else home."""
        for name in names:
            value = getattr(self, name)
            if value:
                return Path(value)
        return Path.home()

    def add_recent(self, path: str) -> None:
        """Put a file first in Open Recent (at most MAX_RECENT are kept)."""
        path = str(Path(path).resolve()) if Path(path).exists() else path
        self.recent_files = ([path] + [p for p in self.recent_files if p != path])[:MAX_RECENT]

    def forget(self, *names: str) -> None:
        """Remove settings (e.g. the legacy keys once migrated)."""
        for name in names:
            setattr(self, name, None)


def load_generation_settings(settings: AppSettings) -> GenerationSettings:
    """The Generate panel's model as saved (or as the older separate keys had it); defaults when unreadable."""
    saved = settings.generate
    try:
        if saved is not None:
            return GenerationSettings.from_dict(saved)
        legacy = settings.legacy_generate_params
        if isinstance(legacy, dict):
            job = {k: v for k, v in legacy.items() if k != "seed_text"}
            job["model"] = settings.legacy_generate_model or job.get("model", CLASSIC_MODEL)
            panel = {
                "seed_text": str(legacy.get("seed_text", "")),
                "seed_locked": settings.legacy_seed_locked,
                "live_preview": settings.legacy_live_preview,
            }
            return GenerationSettings.from_parts(job, panel)
    except InpaintStudioError as error:
        log.warning("the saved Generate settings are not usable (%s); starting from the defaults", error)
    return GenerationSettings(
        InpaintJob(model=settings.legacy_generate_model or CLASSIC_MODEL),
        seed_locked=settings.legacy_seed_locked,
        live_preview=settings.legacy_live_preview,
    )


def remember_generation_settings(model: GenerationSettings, settings: AppSettings) -> Callable[[], None]:
    """Save the model after every change (QSettings writes to disk lazily); returns the unsubscribe."""

    def save(_path: str) -> None:
        settings.generate = model.to_dict()

    return model.subscribe(save)


def load_user_models(settings: AppSettings) -> UserModels:
    """The user's models (core/user_models.py), taking over the lists older versions kept in QSettings."""
    models = UserModels.load()
    legacy_paths, legacy_unsafe = settings.legacy_local_models, settings.legacy_unsafe_allowed
    if legacy_paths or legacy_unsafe:
        try:
            models.merge(legacy_paths, legacy_unsafe)
        except InpaintStudioError as error:  # e.g. an unwritable config folder: keep the old keys for next time
            log.warning("could not move your model list to %s: %s", models.file, error)
        else:
            settings.forget("legacy_local_models", "legacy_unsafe_allowed")
    return models


def engine_factory(settings: AppSettings) -> Callable[[], Any] | None:
    """What the generation worker builds its engine with: None for this computer's (the worker's default
    Engine), or a client of the server chosen in Settings > Engine (engine/remote.py; no torch needed)."""
    if settings.engine_kind != ENGINE_SERVER or not settings.engine_url.strip():
        return None
    return RemoteEngineFactory(settings.engine_url.strip(), settings.engine_token.strip() or None)


class RemoteEngineFactory:
    """Builds the server's client in the worker thread; `remote` tells the worker not to load torch."""

    remote = True

    def __init__(self, url: str, token: str | None) -> None:
        self.url, self.token = url, token

    def __call__(self) -> Any:
        from inpaint_studio.engine.remote import RemoteEngine  # httpx: loaded when a server is used

        return RemoteEngine(self.url, self.token)
