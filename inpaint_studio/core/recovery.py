"""Autosave and crash recovery.

While the app runs, its work is autosaved as a normal project file into a per-user recovery folder
(platformdirs), one file per running session, plus a small JSON note (which process owns it, what the
document was, when it was saved). A clean exit deletes both. At the next start, any autosave whose owning
process is no longer running was left by a crash (or a kill, or a power cut) and is offered for recovery.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from inpaint_studio.core.atomic import atomic_write
from inpaint_studio.core.project import SUFFIX, Project, save_project

ENV_DIR = "INPAINT_STUDIO_RECOVERY_DIR"  # tests and portable installs point this elsewhere


def recovery_dir() -> Path:
    override = os.environ.get(ENV_DIR)
    if override:
        return Path(override)
    from platformdirs import user_state_dir

    return Path(user_state_dir("InpaintStudio", appauthor=False)) / "recovery"


@dataclass(frozen=True)
class RecoveryItem:
    project: Path
    note: Path
    title: str
    saved_at: float
    source: str | None  # the project or image the autosave was a copy of

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.saved_at)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if os.name != "posix":  # no cheap, reliable check: treat as dead, the note's session id decides
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


class Autosaver:
    """One running session's autosave slot."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or recovery_dir()
        self.session = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self.project_path = self.folder / f"{self.session}{SUFFIX}"
        self.note_path = self.folder / f"{self.session}.json"
        self.last_saved: float | None = None

    def save(self, project: Project, title: str, source: str | None = None) -> Path:
        """Write the autosave (atomically: a crash during it keeps the previous autosave)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        save_project(project, self.project_path)
        note = {"pid": os.getpid(), "session": self.session, "title": title, "source": source, "saved_at": time.time()}
        atomic_write(self.note_path, lambda fh: fh.write(json.dumps(note).encode("utf-8")))
        self.last_saved = note["saved_at"]
        return self.project_path

    def discard(self) -> None:
        """A clean exit: nothing to recover."""
        for path in (self.project_path, self.note_path):
            path.unlink(missing_ok=True)


def find_recoverable(folder: Path | None = None) -> list[RecoveryItem]:
    """Autosaves left by sessions that are no longer running, newest first."""
    folder = folder or recovery_dir()
    if not folder.is_dir():
        return []
    items = []
    for note_path in folder.glob("*.json"):
        project = note_path.with_suffix(SUFFIX)
        # A note is a file on disk like any other: one that is damaged is skipped, never a crash at start-up.
        try:
            note = json.loads(note_path.read_text(encoding="utf-8"))
            pid = int(note["pid"])
            if not project.is_file() or _pid_alive(pid):
                continue
            source = note.get("source")
            item = RecoveryItem(
                project=project,
                note=note_path,
                title=str(note.get("title") or project.stem),
                saved_at=float(note.get("saved_at") or project.stat().st_mtime),
                source=source if isinstance(source, str) else None,
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, OverflowError, RecursionError):
            continue
        items.append(item)
    return sorted(items, key=lambda item: item.saved_at, reverse=True)


def discard_recovery(item: RecoveryItem) -> None:
    item.project.unlink(missing_ok=True)
    item.note.unlink(missing_ok=True)
