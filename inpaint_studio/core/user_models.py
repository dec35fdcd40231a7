"""The user's own models: folders and checkpoint files they added, and the pickled checkpoints they allowed.

One small JSON file in the user's config folder (platformdirs), shared by the studio's model picker and
`inpaint-studio models`, so a model added in one is listed by the other. `INPAINT_STUDIO_CONFIG_DIR`
points it elsewhere (tests, portable installs). A missing or damaged file reads as "no models added"
(the damaged one is kept beside as `.bad` for a look), never as an error that stops the app.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from inpaint_studio.core.atomic import atomic_write

log = logging.getLogger(__name__)

ENV_DIR = "INPAINT_STUDIO_CONFIG_DIR"
FILE_NAME = "models.json"
FORMAT = "inpaint-studio/user-models"
VERSION = 1


def config_dir() -> Path:
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override)
    from platformdirs import user_config_dir

    return Path(user_config_dir("InpaintStudio", appauthor=False))


def normalise(reference: str) -> str:
    """The form a path is remembered in: user folder expanded, surrounding spaces removed."""
    return str(Path(reference.strip()).expanduser())


@dataclass
class UserModels:
    """See the module docstring; `save()` writes it back atomically."""

    paths: list[str] = field(default_factory=list)  # model folders and checkpoint files, in the order added
    unsafe_allowed: list[str] = field(default_factory=list)  # pickled checkpoints the user chose to trust
    file: Path | None = None

    @classmethod
    def load(cls, file: Path | None = None) -> UserModels:
        file = file if file is not None else config_dir() / FILE_NAME
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(file=file)
        except (OSError, ValueError, RecursionError) as exc:
            log.warning("the list of your models (%s) is unreadable (%s); starting with an empty one", file, exc)
            _set_aside(file)
            return cls(file=file)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            log.warning("%s is not a list of models; starting with an empty one", file)
            _set_aside(file)
            return cls(file=file)
        return cls(_texts(data.get("paths")), _texts(data.get("unsafe_allowed")), file)

    def save(self) -> None:
        target = self.file if self.file is not None else config_dir() / FILE_NAME
        target.parent.mkdir(parents=True, exist_ok=True)
        data = {"format": FORMAT, "version": VERSION, "paths": self.paths, "unsafe_allowed": self.unsafe_allowed}
        text = json.dumps(data, indent=2) + "\n"
        atomic_write(target, lambda fh: fh.write(text.encode("utf-8")))

    def add(self, reference: str) -> bool:
        """Remember a model path (saved at once); False when it was already there."""
        path = normalise(reference)
        if path in self.paths:
            return False
        self.paths.append(path)
        self.save()
        return True

    def remove(self, reference: str) -> bool:
        path = normalise(reference)
        if path not in self.paths:
            return False
        self.paths.remove(path)
        self.save()
        return True

    def allow_unsafe(self, reference: str) -> None:
        """Record the user's opt-in for one pickled checkpoint (read weights-only even then)."""
        path = normalise(reference)
        if path not in self.unsafe_allowed:
            self.unsafe_allowed.append(path)
            self.save()

    def is_unsafe_allowed(self, reference: str) -> bool:
        return normalise(reference) in self.unsafe_allowed

    def merge(self, paths: list[str], unsafe_allowed: list[str]) -> bool:
        """Take over lists kept elsewhere before (the studio's old settings); True when anything was new."""
        new_paths = [normalise(p) for p in paths if p.strip() and normalise(p) not in self.paths]
        new_unsafe = [normalise(p) for p in unsafe_allowed if p.strip() and normalise(p) not in self.unsafe_allowed]
        if not new_paths and not new_unsafe:
            return False
        self.paths.extend(dict.fromkeys(new_paths))
        self.unsafe_allowed.extend(dict.fromkeys(new_unsafe))
        self.save()
        return True


def _texts(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, str) and item.strip()]


def _set_aside(file: Path) -> None:
    with contextlib.suppress(OSError):
        os.replace(file, file.with_name(file.name + ".bad"))
