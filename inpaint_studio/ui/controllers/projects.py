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

Install with `install_projects(window)` after `install_generation(window)`.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QMessageBox, QProgressBar

from inpaint_studio.core.document import Document
from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.core.ora import export_ora, import_ora
from inpaint_studio.core.project import SUFFIX, Project, load_project, save_project
from inpaint_studio.core.project_state import ProjectState
from inpaint_studio.ui.background import BackgroundRunner

if TYPE_CHECKING:
    from inpaint_studio.ui.controllers.autosave import AutosaveScheduler
    from inpaint_studio.ui.controllers.memory_budget import MemoryBudget

APP_NAME = "Inpaint Studio"
PROJECT_FILTER = "Inpaint Studio projects (*.inpaint)"
ORA_FILTER = "OpenRaster (*.ora)"
SETTINGS_PROJECT_BUDGET = "memory/project_budget_mb"
DEFAULT_PROJECT_BUDGET_MB = 1024  # history snapshots stored in a project file (uncompressed size)
SETTINGS_PROJECT_DIR = "project_dir"
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
    """See the module docstring. `window` is a MainWindow with its generation controller installed."""

    saved = Signal(str)  # path, after a successful save
    autosave: AutosaveScheduler  # set by install_projects
    memory: MemoryBudget

    def __init__(self, window: Any, runner: BackgroundRunner | None = None) -> None:
        super().__init__(window)
        self.window = window
        self.document = window.document
        self.undo_stack = window.undo_stack
        self.runner = runner if runner is not None else BackgroundRunner(self)
        self.path: Path | None = None
        self.recovered_title: str | None = None  # set while showing recovered, not yet saved work
        self._pending: tuple[Path | None, str | None] = (None, None)  # path, recovered title of the next reset
        self._forced_modified = False
        self._work = 0  # bumped when other work replaces the document: a late save result must not adopt it
        self._generation: Any = None
        self._saved_fingerprint: tuple[Any, ...] = ()
        self._progress = QProgressBar(window)
        self._progress.setRange(0, 0)  # busy: save_project reports no steps
        self._progress.setMaximumWidth(120)
        self._progress.setMaximumHeight(14)
        self._progress.hide()
        window.statusBar().insertPermanentWidget(0, self._progress)
        self._progress_timer = QTimer(self)
        self._progress_timer.setInterval(PROGRESS_DELAY_MS)
        self._progress_timer.timeout.connect(self._show_progress)
        self.runner.busy_changed.connect(self._on_busy_changed)
        self.undo_stack.cleanChanged.connect(self.update_title)
        self.undo_stack.declared_clean.connect(self._on_declared_clean)
        self.document.reset.connect(self._on_document_reset)
        self.attach(window.generation)

    # ---- wiring -------------------------------------------------------------------------------------
    def attach(self, generation: Any) -> None:
        """Follow a (new) generation controller: its history recorder and Generate panel."""
        if self._generation is not None:
            with contextlib.suppress(RuntimeError, TypeError):  # the old recorder may be half torn down
                self._generation.recorder.changed.disconnect(self.update_title)
        self._generation = generation
        generation.recorder.changed.connect(self.update_title)
        self._saved_fingerprint = self._fingerprint()

    @property
    def recorder(self) -> Any:
        return self._generation.recorder

    @property
    def panel(self) -> Any:
        return self._generation.panel

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
        window = self.window
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
        """Freeze the document, history and Generate panel for a save (UI thread; no pixel copies)."""
        job, ui = self.panel.state()
        return ProjectState.take(self.document, self.recorder.history, generate=job, extra={"generate_panel": ui})

    def project_budget_bytes(self) -> int:
        value = self.window.settings.value(SETTINGS_PROJECT_BUDGET, DEFAULT_PROJECT_BUDGET_MB)
        try:
            return max(1, int(float(value))) * 2**20
        except (TypeError, ValueError):
            return DEFAULT_PROJECT_BUDGET_MB * 2**20

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
        self.window.set_document(project.document)
        self._forced_modified = recovered_title is not None  # recovered work is not saved anywhere yet
        if project.generate:
            try:
                self.panel.restore_state(project.generate, project.extra.get("generate_panel"))
            except InpaintStudioError as error:
                self.window.message_bar.show_error(
                    f"The project's Generate settings could not be restored ({error}); the rest opened normally."
                )
        if project.notes:
            self.window.message_bar.show_info(" ".join(project.notes))
        self.update_title()

    def open_project(self, path: str | Path, confirm: bool = True) -> bool:
        """Open a project file as the work (asking about unsaved work first); False if it was not opened."""
        if confirm and not self.window.maybe_save():
            return False
        source = Path(path)
        project = self.load_in_background(source)
        if project is None:
            return False
        self.show_project(project, source)
        self._opened(source)
        entries = len(project.history) if project.history is not None else 0
        self.window.statusBar().showMessage(f"Opened {source.name}: {entries} history entries", 5000)
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
            self.window.statusBar().clearMessage()
        if "error" in outcome:
            self.window.message_bar.show_error(outcome["error"])
        if "composite" in outcome:
            self.window.canvas.prime_composite(outcome["composite"])
        return outcome.get("project")

    def open_ora(self, path: str | Path, confirm: bool = True) -> bool:
        """Import an OpenRaster file as the document; what could not be kept is said in the message bar."""
        if confirm and not self.window.maybe_save():
            return False
        source = Path(path)
        imported = self.window.run_guarded(import_ora, source)
        if imported is None:
            return False
        imported.document.metadata = {"path": str(source)}
        self.window.set_document(imported.document)
        self._opened(source)
        if imported.notes:
            self.window.message_bar.show_info(" ".join(imported.notes))
        return True

    def new_project(self) -> bool:
        """Close the work (asking to save it) and start again from an empty window."""
        if not self.window.maybe_save():
            return False
        self.window.set_document(Document())
        self.window.message_bar.show_info("Open an image (Ctrl+O) or paste one (Ctrl+V) to start the new project.")
        return True

    def _opened(self, path: Path) -> None:
        self.window.add_recent(str(path))
        self.window.settings.setValue("last_dir", str(path.parent))
        self.window.document_opened.emit(str(path))

    def open_project_dialog(self) -> None:
        start = str(self.window.settings.value(SETTINGS_PROJECT_DIR, self.window.settings.value("last_dir", "")))
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", start, PROJECT_FILTER)
        if path:
            self.open_project(path)

    def import_ora_dialog(self) -> None:
        start = str(self.window.settings.value("last_dir", ""))
        path, _ = QFileDialog.getOpenFileName(self.window, "Import OpenRaster", start, ORA_FILTER)
        if path:
            self.open_ora(path)

    # ---- saving -------------------------------------------------------------------------------------
    def maybe_save(self) -> bool:
        """Ask Save / Discard / Cancel when there is unsaved work; True when it is fine to go on."""
        if not self.is_modified():
            return True
        answer = QMessageBox.question(
            self.window,
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
        settings = self.window.settings
        folder = Path(str(settings.value(SETTINGS_PROJECT_DIR, settings.value("last_dir", str(Path.home())))))
        if self.path is not None:
            suggested = self.path
        else:
            stem = Path(self.recovered_title or self.display_name()).stem or "Untitled"
            suggested = folder / f"{stem}{SUFFIX}"
        path, _ = QFileDialog.getSaveFileName(self.window, "Save project", str(suggested), PROJECT_FILTER)
        return bool(path) and self.save_to(path, wait=wait)

    def save_to(self, path: str | Path, wait: bool = False) -> bool:
        """Save the project in the background. True when it started (with wait: when it was written)."""
        if not self._require_image():
            return False
        self.window.canvas.finish_gesture()
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
            self.window.statusBar().clearMessage()
            self.window.message_bar.show_error(message)

        self.runner.submit(f"saving {target.name}", work, done, failed)
        if not wait:
            return True
        return self._wait_for(outcome)

    def _wait_for(self, outcome: dict[str, Any]) -> bool:
        # Closing or opening must not go on before the save (or the load) is done: keep painting, block input.
        self.window.setEnabled(False)
        try:
            self.runner.wait()
        finally:
            self.window.setEnabled(True)
        return outcome.get("ok", False)

    def _on_saved(self, result: SaveResult, token: tuple[int, int, int]) -> None:
        note = ""
        if token[0] != self._work:  # other work was opened meanwhile: the file is not its file
            self.window.statusBar().showMessage(f"Saved {result.path.name} in {result.seconds:.1f} s", 5000)
            self.window.add_recent(str(result.path))
            return
        self.path, self.recovered_title = result.path, None
        if token == (self._work, self.undo_stack.index(), self.recorder.revision):
            self.mark_saved()
        else:
            note = " The edits made while it was saving are not in it yet; save again to include them."
        if result.pruned:
            note += f" {result.pruned} old history states were left out to keep the file within its size budget."
        self.update_title()
        self.window.statusBar().showMessage(f"Saved {result.path.name} in {result.seconds:.1f} s", 5000)
        if note:
            self.window.message_bar.show_info(f"Saved {result.path.name}.{note}")
        self.window.add_recent(str(result.path))
        self.window.settings.setValue(SETTINGS_PROJECT_DIR, str(result.path.parent))
        self.saved.emit(str(result.path))

    # ---- OpenRaster export --------------------------------------------------------------------------
    def export_ora_dialog(self) -> None:
        if not self._require_image():
            return
        settings = self.window.settings
        folder = Path(str(settings.value("export_dir", settings.value("last_dir", str(Path.home())))))
        stem = Path(self.display_name()).stem or "image"
        path, _ = QFileDialog.getSaveFileName(self.window, "Export OpenRaster", str(folder / f"{stem}.ora"), ORA_FILTER)
        if path:
            self.export_ora(path)

    def export_ora(self, path: str | Path, wait: bool = False) -> bool:
        """Write the layers and mask as OpenRaster in the background (the document stays editable)."""
        if not self._require_image():
            return False
        self.window.canvas.finish_gesture()
        target = Path(path)
        if target.suffix.lower() != ".ora":
            target = target.with_name(target.name + ".ora")
        state = self.take_state()
        outcome: dict[str, bool] = {}

        def done(_result: object) -> None:
            outcome["ok"] = True
            self.window.settings.setValue("export_dir", str(target.parent))
            self.window.statusBar().clearMessage()
            self.window.message_bar.show_info(f"Exported {target.name} (every layer, and the mask as a hidden layer).")

        def failed(message: str) -> None:
            outcome["ok"] = False
            self.window.statusBar().clearMessage()
            self.window.message_bar.show_error(message)

        self.runner.submit(f"exporting {target.name}", lambda: export_ora(state.to_document(), target), done, failed)
        return self._wait_for(outcome) if wait else True

    # ---- status -------------------------------------------------------------------------------------
    def _on_busy_changed(self, busy: bool) -> None:
        if busy:
            task = self.runner.current
            if task is not None and not task.label.startswith("autosaving"):
                self.window.statusBar().showMessage(f"{task.label.capitalize()}…")
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
            self.window.statusBar().showMessage(f"{task.label.capitalize()}… {seconds:.0f} s")

    def _require_image(self) -> bool:
        if self.document.is_empty:
            self.window.message_bar.show_info("Open an image first (Ctrl+O), or paste one (Ctrl+V).")
            return False
        return True

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Let running saves finish (before the window closes)."""
        return self.runner.wait(timeout_s)


def install_projects(window: Any, **kwargs: Any) -> ProjectController:
    """Add projects, autosave and the memory budget to a MainWindow (after install_generation)."""
    from inpaint_studio.ui.controllers.autosave import AutosaveScheduler
    from inpaint_studio.ui.controllers.memory_budget import MemoryBudget

    controller = ProjectController(window, **kwargs)
    window.projects = controller
    controller.autosave = AutosaveScheduler(controller)
    controller.memory = MemoryBudget(window)
    controller.memory.attach(window.generation)
    controller.autosave.attach(window.generation)
    return controller


def on_generation_replaced(window: Any, generation: Any) -> None:
    """install_generation calls this: the project side follows the new recorder and panels."""
    projects: ProjectController | None = getattr(window, "projects", None)
    if projects is None:
        return
    projects.attach(generation)
    projects.memory.attach(generation)
    projects.autosave.attach(generation)
