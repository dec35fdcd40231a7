"""Model downloads in the studio: progress and cancel for `engine.models.download`, on the background runner.

Each download is an independent task of the window's BackgroundRunner (ui/background.py): it never holds
up the generation queue or a save, and closing the app mid-download never waits for the network (the
partial files stay in the Hugging Face cache and the next download resumes them).
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from inpaint_studio.engine import models
from inpaint_studio.ui.background import BackgroundRunner, Task, TaskState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownloadProgress:
    repo_id: str
    done_bytes: int
    total_bytes: int  # 0 while unknown (the hub reports sizes as files start)
    files_done: int
    files_total: int


class ModelDownloader(QObject):
    """Starts downloads on a BackgroundRunner and reports them as signals (on the UI thread)."""

    progress = Signal(object)  # DownloadProgress
    finished = Signal(str, str)  # repo id, local path
    failed = Signal(str, str)  # repo id, one-sentence message
    cancelled = Signal(str)  # repo id

    def __init__(
        self,
        runner: BackgroundRunner,
        parent: QObject | None = None,
        download: Callable[..., Path] | None = None,
    ) -> None:
        """`download(repo_id, progress=tqdm_class)` defaults to engine.models.download (tests pass a fake)."""
        super().__init__(parent)
        self.runner = runner
        self.download = download if download is not None else models.download  # replaceable (tests)
        self._active: dict[str, Task] = {}

    def active_ids(self) -> list[str]:
        """The repositories being downloaded now."""
        return list(self._active)

    def is_downloading(self, repo_id: str | None = None) -> bool:
        return bool(self._active) if repo_id is None else repo_id in self._active

    def start(self, repo_id: str) -> bool:
        """Start downloading `repo_id`; False when it is already being downloaded."""
        if repo_id in self._active:
            return False

        def work(state: TaskState) -> Path:
            path = self.download(repo_id, progress=_progress_class(repo_id, state, state.report))
            state.raise_if_cancelled()
            return path

        self._active[repo_id] = self.runner.start(
            f"downloading {repo_id}",
            work,
            lambda path: self._ended(repo_id, self.finished, str(path)),
            lambda message: self._ended(repo_id, self.failed, message),
            on_progress=self.progress.emit,
            on_cancelled=lambda: self._ended(repo_id, self.cancelled),
        )
        return True

    def cancel(self, repo_id: str) -> None:
        task = self._active.get(repo_id)
        if task is not None:
            task.cancel()

    def cancel_all(self) -> None:
        for repo_id in self.active_ids():
            self.cancel(repo_id)

    def _ended(self, repo_id: str, signal: Any, *args: Any) -> None:
        self._active.pop(repo_id, None)
        signal.emit(repo_id, *args)


def _progress_class(repo_id: str, token: TaskState, report: Callable[[DownloadProgress], None]) -> type:
    """A tqdm class for huggingface_hub that reports to `report` and raises CancelledError on cancel."""
    from tqdm.auto import tqdm

    state = {"files_done": 0, "files_total": 0, "done": 0, "total": 0, "last": 0.0}
    lock = threading.Lock()

    class _Progress(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.pop("name", None)
            kwargs["disable"] = False
            kwargs["file"] = io.StringIO()  # never print to the console
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            token.raise_if_cancelled()
            result = super().update(n)
            self._report()
            return result

        def refresh(self, *args: Any, **kwargs: Any) -> None:
            token.raise_if_cancelled()
            super().refresh(*args, **kwargs)

        def _report(self) -> None:
            with lock:
                if self.unit == "B":
                    state["done"] = max(state["done"], int(self.n))
                    state["total"] = max(state["total"], int(self.total or 0))
                else:
                    state["files_done"], state["files_total"] = int(self.n), int(self.total or 0)
                now = time.monotonic()
                finished = state["files_total"] and state["files_done"] >= state["files_total"]
                if now - state["last"] < 0.1 and not finished:
                    return  # at most ~10 updates a second
                state["last"] = now
                snapshot = DownloadProgress(
                    repo_id, state["done"], state["total"], state["files_done"], state["files_total"]
                )
            report(snapshot)

    return _Progress
