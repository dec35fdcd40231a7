"""Projects in the window: open, save (in the background), OpenRaster, the title and its unsaved mark.

Saving freezes what it needs on the UI thread without copying pixels (core/project_state.py: the history's
head snapshot, whose read-only tiles are the document's pixels, a copy of the history graph and the
Generate panel's job) and encodes and writes the file in a background thread (ui/background.py). The
status bar says what is being saved and shows a busy bar when it takes a while; an error (disk full, no
permission) shows its sentence in the message bar and changes nothing, neither the document nor the
previous file (writes are atomic).

The title is "<project or image name>[*] — Inpaint Studio"; the "*" shows while the work differs from what
was last saved: the undo stack is not at its saved index, or the history gained entries since (an undone
edit still changes the history a project keeps). `undo_stack.setClean()` from anywhere means "saved".

Built by ui/window/composition.py after the generation controller (it saves that controller's history and
Generate settings).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressBar

from inpaint_studio.core.document import Document
from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.generation_settings import GenerationSettings
from inpaint_studio.core.ora import export_ora, import_ora
from inpaint_studio.core.project import SUFFIX, Project, load_project, save_project
from inpaint_studio.core.project_state import ProjectState
from inpaint_studio.ui.context import DocumentHost, StudioContext
from inpaint_studio.ui.controllers.generation import GenerationController

APP_NAME = "Inpaint Studio"
PROJECT_FILTER = "Inpaint Studio projects (*.inpaint)"
ORA_FILTER = "OpenRaster (*.ora)"
PROGRESS_DELAY_MS = 400  # a busy bar for saves that take longer than this


@dataclass(frozen=True)
class SaveResult:
    path: Path
    seconds: float
    pruned: int  # history snapshots left out by the project budget


def project_target(path: str | Path) -> Path:
    """The file a save writes: the name given, ending in .inpaint (added when missing)."""
    target = Path(path)
    return target if target.suffix.lower() == SUFFIX else target.with_name(target.name + SUFFIX)


class ProjectController(QObject):
    """See the module docstring."""

    saved = Signal(str)  # path, after a successful save

    def __init__(self, ctx: StudioContext, host: DocumentHost, generation: GenerationController) -> None:
        super().__init__(ctx.window)
        self.ctx, self.host = ctx, host
        self.document = ctx.document
        self.undo_stack = ctx.undo_stack
        self.runner = ctx.runner
        self.recorder = generation.recorder
        self.settings_model = generation.settings_model
        self.path: Path | None = None
        self.recovered_title: str | None = None  # set while showing recovered, not yet saved work
        self._pending: tuple[Path | None, str | None] = (None, None)  # path, recovered title of the next reset
        self._forced_modified = False
        self._work = 0  # bumped when other work replaces the document: a late save result must not adopt it
        self._progress = QProgressBar(ctx.window)
        self._progress.setRange(0, 0)  # busy: save_project reports no steps
        self._progress.setMaximumWidth(120)
        self._progress.setMaximumHeight(14)
        self._progress.hide()
        ctx.status.insertPermanentWidget(0, self._progress)
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(PROGRESS_DELAY_MS)
        self._progress_timer.timeout.connect(self._show_progress)
        self.runner.busy_changed.connect(self._on_busy_changed)
        self.undo_stack.cleanChanged.connect(self.update_title)
        self.undo_stack.declared_clean.connect(self._on_declared_clean)
        self.document.reset.connect(self._on_document_reset)
        self.recorder.changed.connect(self.update_title)
        self._saved_fingerprint = self._fingerprint()

    # ---- state --------------------------------------------------------------------------------------
    def _fingerprint(self) -> tuple[Any, ...]:
        history = self.recorder.history
        return (id(history), history.head_id, history.next_id)

    def is_modified(self) -> bool:
        if self.document.is_empty:
            return False
        return self._forced_modified or not self.undo_stack.isClean() or self._fingerprint() != self._saved_fingerprint

    def mark_saved(self) -> None:
        """The work as it is now is what the file holds."""
        self._forced_modified = False
        self.undo_stack.setClean()  # declared_clean records the history fingerprint

    def _on_declared_clean(self) -> None:
        self._saved_fingerprint = self._fingerprint()
        self._forced_modified = False
        self.update_title()

    def display_name(self) -> str:
        if self.path is not None:
            return self.path.name
        meta = self.document.metadata
        source = str(meta.get("path") or "")
        return Path(source).name if source else str(meta.get("name") or "Untitled")

    def update_title(self) -> None:
        window = self.ctx.window
        if self.document.is_empty:
            window.setWindowTitle(APP_NAME)
            window.setWindowModified(False)
            return
        name = self.display_name()
        if self.recovered_title is not None:
            name = f"Recovered – {self.recovered_title}"
        window.setWindowTitle(f"{name}[*] — {APP_NAME}")
        window.setWindowModified(self.is_modified())

    def take_state(self) -> ProjectState:
        """Freeze the document, history and Generate settings for a save (UI thread; no pixel copies)."""
        settings = self.settings_model.to_dict()
        return ProjectState.take(
            self.document, self.recorder.history, generate=settings["job"], extra={"generate_panel": settings["panel"]}
        )

    def project_budget_bytes(self) -> int:
        return self.ctx.settings.project_budget_mb * 2**20

    # ---- opening ------------------------------------------------------------------------------------
    def _on_document_reset(self) -> None:
        # Every reset (image, project, OpenRaster, new) starts a new piece of work; its file is the pending one.
        (self.path, self.recovered_title), self._pending = self._pending, (None, None)
        self._work += 1
        self.update_title()

    def show_project(self, project: Project, path: Path | None, recovered_title: str | None = None) -> None:
        """Make a loaded project the window's document: layers, mask, history and Generate settings."""
        self.recorder.adopt_next(project.history)
        self._pending = (path, recovered_title)
        self.host.set_document(project.document)
        self._forced_modified = recovered_title is not None  # recovered work is not saved anywhere yet
        if project.generate:
            try:
                restored = GenerationSettings.from_parts(project.generate, project.extra.get("generate_panel"))
            except InpaintStudioError as error:
                self.ctx.messages.show_error(
                    f"The project's Generate settings could not be restored ({error}); the rest opened normally."
                )
            else:
                self.settings_model.load_job(restored.job, lock_seed=restored.seed_locked)
                self.settings_model.set("live_preview", restored.live_preview)
        if project.notes:
            self.ctx.messages.show_info(" ".join(project.notes))
        self.update_title()

    def open_project(self, path: str | Path, confirm: bool = True) -> bool:
        """Open a project file as the work (asking about unsaved work first); False if it was not opened."""
        if confirm and not self.host.maybe_save():
            return False
        source = Path(path)
        project = self.load_in_background(source)
        if project is None:
            return False
        self.show_project(project, source)
        self._opened(source)
        entries = len(project.history) if project.history is not None else 0
        self.ctx.status.showMessage(f"Opened {source.name}: {entries} history entries", 5000)
        return True

    def load_in_background(self, source: Path) -> Project | None:
        """Read and decode a project off the UI thread; None (with the error in the message bar) on failure.

        The window keeps painting and its timers keep running while the file is decoded, but it takes no
        input until the project is read, and the document is not touched before the whole file has loaded:
        a damaged file leaves the current work exactly as it was.
        """
        outcome: dict[str, Any] = {}

        def work() -> tuple[Project, Any]:
            project = load_project(source)
            # The canvas would composite every layer on the UI thread when the document resets: do it here.
            return project, project.document.composite(premultiplied=True)

        def done(loaded: tuple[Project, Any]) -> None:
            outcome["project"], outcome["composite"] = loaded

        def failed(message: str) -> None:
            outcome["error"] = message

        QGuiApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            self.runner.submit(f"opening {source.name}", work, done, failed)
            self._wait_for(outcome)
        finally:
            QGuiApplication.restoreOverrideCursor()
            self.ctx.status.clearMessage()
        if "error" in outcome:
            self.ctx.messages.show_error(outcome["error"])
        if "composite" in outcome:
            self.ctx.canvas.prime_composite(outcome["composite"])
        return outcome.get("project")

    def open_ora(self, path: str | Path, confirm: bool = True) -> bool:
        """Import an OpenRaster file as the document; what could not be kept is said in the message bar."""
        if confirm and not self.host.maybe_save():
            return False
        source = Path(path)
        imported = self.ctx.guarded(import_ora, source)
        if imported is None:
            return False
        imported.document.metadata = {"path": str(source)}
        self.host.set_document(imported.document)
        self._opened(source)
        if imported.notes:
            self.ctx.messages.show_info(" ".join(imported.notes))
        return True

    def new_project(self) -> bool:
        """Close the work (asking to save it) and start again from an empty window."""
        if not self.host.maybe_save():
            return False
        self.host.set_document(Document())
        self.ctx.messages.show_info("Open an image (Ctrl+O) or paste one (Ctrl+V) to start the new project.")
        return True

    def _opened(self, path: Path) -> None:
        self.host.opened(str(path))

    def open_project_dialog(self) -> None:
        start = str(self.ctx.settings.folder("project_dir", "last_dir"))
        path, _ = QFileDialog.getOpenFileName(self.ctx.window, "Open project", start, PROJECT_FILTER)
        if path:
            self.open_project(path)

    def import_ora_dialog(self) -> None:
        start = str(self.ctx.settings.folder("last_dir"))
        path, _ = QFileDialog.getOpenFileName(self.ctx.window, "Import OpenRaster", start, ORA_FILTER)
        if path:
            self.open_ora(path)

    # ---- saving -------------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask Save / Discard / Cancel when there is unsaved work; True when it is fine to go on."""
        if not self.is_modified():
            return True
        answer = QMessageBox.question(
            self.ctx.window,
            APP_NAME,
            f"“{self.display_name()}” has unsaved changes. Save the project before closing it?",
            QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Save,
        )
        if answer == QMessageBox.StandardButton.Save:
            return self.save(wait=True)
        return answer == QMessageBox.StandardButton.Discard

    def save(self, wait: bool = False) -> bool:
        """Ctrl+S: save to the project's file, or ask for one (Save As) when it has none."""
        if self.path is None:
            return self.save_as_dialog(wait=wait)
        return self.save_to(self.path, wait=wait)

    def save_as_dialog(self, wait: bool = False) -> bool:
        if not self._require_image():
            return False
        folder = self.ctx.settings.folder("project_dir", "last_dir")
        if self.path is not None:
            suggested = self.path
        else:
            stem = Path(self.recovered_title or self.display_name()).stem or "Untitled"
            suggested = folder / f"{stem}{SUFFIX}"
        path, _ = QFileDialog.getSaveFileName(self.ctx.window, "Save project", str(suggested), PROJECT_FILTER)
        return bool(path) and self.save_to(path, wait=wait)

    def save_to(self, path: str | Path, wait: bool = False) -> bool:
        """Save the project in the background. True when it started (with wait: when it was written)."""
        if not self._require_image():
            return False
        self.ctx.canvas.finish_gesture()
        target = project_target(path)
        state = self.take_state()
        token = (self._work, self.undo_stack.index(), self.recorder.revision)
        budget = self.project_budget_bytes()

        def work() -> SaveResult:
            started = time.perf_counter()
            project, plan = state.to_project(budget)
            save_project(project, target)
            return SaveResult(target, time.perf_counter() - started, len(plan.snapshots) if plan else 0)

        outcome: dict[str, bool] = {}

        def done(result: SaveResult) -> None:
            outcome["ok"] = True
            self._on_saved(result, token)

        def failed(message: str) -> None:
            outcome["ok"] = False
            self.ctx.status.clearMessage()
            self.ctx.messages.show_error(message)

        self.runner.submit(f"saving {target.name}", work, done, failed)
        if not wait:
            return True
        return self._wait_for(outcome)

    def _wait_for(self, outcome: dict[str, Any]) -> bool:
        # Closing or opening must not go on before the save (or the load) is done: keep painting, block input.
        self.ctx.window.setEnabled(False)
        try:
            self.runner.wait()
        finally:
            self.ctx.window.setEnabled(True)
        return outcome.get("ok", False)

    def _on_saved(self, result: SaveResult, token: tuple[int, int, int]) -> None:
        note = ""
        if token[0] != self._work:  # other work was opened meanwhile: the file is not its file
            self.ctx.status.showMessage(f"Saved {result.path.name} in {result.seconds:.1f} s", 5000)
            self.ctx.settings.add_recent(str(result.path))
            return
        self.path, self.recovered_title = result.path, None
        if token == (self._work, self.undo_stack.index(), self.recorder.revision):
            self.mark_saved()
        else:
            note = " The edits made while it was saving are not in it yet; save again to include them."
        if result.pruned:
            note += f" {result.pruned} old history states were left out to keep the file within its size budget."
        self.update_title()
        self.ctx.status.showMessage(f"Saved {result.path.name} in {result.seconds:.1f} s", 5000)
        if note:
            self.ctx.messages.show_info(f"Saved {result.path.name}.{note}")
        self.ctx.settings.add_recent(str(result.path))
        self.ctx.settings.project_dir = str(result.path.parent)
        self.saved.emit(str(result.path))

    # ---- OpenRaster export --------------------------------------------------------------------------
    def export_ora_dialog(self) -> None:
        if not self._require_image():
            return
        folder = self.ctx.settings.folder("export_dir", "last_dir")
        stem = Path(self.display_name()).stem or "image"
        path, _ = QFileDialog.getSaveFileName(
            self.ctx.window, "Export OpenRaster", str(folder / f"{stem}.ora"), ORA_FILTER
        )
        if path:
            self.export_ora(path)

    def export_ora(self, path: str | Path, wait: bool = False) -> bool:
        """Write the layers and mask as OpenRaster in the background (the document stays editable)."""
        if not self._require_image():
            return False
        self.ctx.canvas.finish_gesture()
        target = Path(path)
        if target.suffix.lower() != ".ora":
            target = target.with_name(target.name + ".ora")
        state = self.take_state()
        outcome: dict[str, bool] = {}

        def done(_result: object) -> None:
            outcome["ok"] = True
            self.ctx.settings.export_dir = str(target.parent)
            self.ctx.status.clearMessage()
            self.ctx.messages.show_info(f"Exported {target.name} (every layer, and the mask as a hidden layer).")

        def failed(message: str) -> None:
            outcome["ok"] = False
            self.ctx.status.clearMessage()
            self.ctx.messages.show_error(message)

        self.runner.submit(f"exporting {target.name}", lambda: export_ora(state.to_document(), target), done, failed)
        return self._wait_for(outcome) if wait else True

    # ---- status -------------------------------------------------------------------------------------
    def _on_busy_changed(self, busy: bool) -> None:
        if busy:
            task = self.runner.current
            if task is not None and not task.label.startswith("autosaving"):
                self.ctx.status.showMessage(f"{task.label.capitalize()}…")
            self._progress_timer.start()
        else:
            self._progress_timer.stop()
            self._progress.hide()

    def _show_progress(self) -> None:
        task = self.runner.current
        if task is None:
            return
        self._progress.show()
        if not task.label.startswith("autosaving"):
            seconds = time.monotonic() - task.started
            self.ctx.status.showMessage(f"{task.label.capitalize()}… {seconds:.0f} s")

    def _require_image(self) -> bool:
        return self.ctx.require_image()

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Let running saves finish (before the window closes)."""
        return self.runner.wait(timeout_s)
