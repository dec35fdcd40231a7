"""Autosave and crash recovery in the window (core/recovery.py does the files).

Each window has one autosave slot (an `Autosaver`). After a change, the work is autosaved once the user has
paused for `autosave/delay_s` seconds (default 120), and while edits keep coming, at the latest
`autosave/max_wait_s` seconds (default 300) after the first unsaved one; both are settings (ui/settings.py),
and `autosave/enabled` turns it off. The save runs on the shared background runner, like Save, so it never
freezes the window; a stroke in progress or a running save postpones it a little. A clean exit deletes
the slot, and so does a save that leaves nothing unsaved.

At start-up (`offer_recovery`, called once the window is shown) autosaves left by sessions that no longer
run are offered in the message bar, newest first, with Recover / Discard. Recover opens the autosave as
unsaved work titled "Recovered – <title>"; its files are deleted once this session has saved that work
(an explicit save, this session's own autosave, or a clean exit), so a second crash loses nothing.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from inpaint_studio.core.recovery import Autosaver, RecoveryItem, discard_recovery, find_recoverable
from inpaint_studio.ui.context import StudioContext
from inpaint_studio.ui.controllers.projects import ProjectController

RETRY_MS = 3000  # a save or a stroke is in progress: try again shortly


def describe_time(saved_at: float) -> str:
    when = _dt.datetime.fromtimestamp(saved_at)
    if when.date() == _dt.date.today():
        return f"at {when:%H:%M}"
    return f"on {when:%Y-%m-%d} at {when:%H:%M}"


class AutosaveScheduler(QObject):
    """See the module docstring. `projects` is the window's ProjectController."""

    autosaved = Signal(str)  # the autosave file, after each successful autosave

    def __init__(self, ctx: StudioContext, projects: ProjectController, folder: Path | None = None) -> None:
        super().__init__(projects)
        self.ctx, self.projects = ctx, projects
        self.saver = Autosaver(folder)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.autosave_now)
        self._first_change: float | None = None  # monotonic time of the first change not autosaved yet
        self._last_change = 0.0
        self._recovered: list[RecoveryItem] = []  # deleted once this session has saved their work
        projects.saved.connect(self._on_saved)
        projects.recorder.changed.connect(self._on_changed)

    # ---- settings -----------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return self.ctx.settings.autosave_enabled

    @property
    def pending(self) -> bool:
        """True while a change waits to be autosaved."""
        return self._first_change is not None

    # ---- scheduling ---------------------------------------------------------------------------------
    def _on_changed(self) -> None:
        if self.ctx.document.is_empty or not self.enabled:
            return
        now = time.monotonic()
        if self._first_change is None:
            self._first_change = now
        self._last_change = now
        self._schedule(now)

    def _schedule(self, now: float) -> None:
        assert self._first_change is not None
        due = min(
            self._last_change + self.ctx.settings.autosave_delay_s,
            self._first_change + self.ctx.settings.autosave_max_wait_s,
        )
        self._timer.start(max(0, round((due - now) * 1000)))

    def autosave_now(self) -> bool:
        """Autosave now (in the background); False when there is nothing to do or it had to wait."""
        if self._first_change is None or self.ctx.document.is_empty:
            return False
        if not self.projects.is_modified():  # back at what was saved (or opened): its file has it all
            self._first_change = None
            return False
        if self.projects.runner.busy or self.ctx.canvas.gesture_active:
            self._timer.start(RETRY_MS)
            return False
        state = self.projects.take_state()
        budget = self.projects.project_budget_bytes()
        title = self.projects.recovered_title or self.projects.display_name()
        path = self.projects.path or self.ctx.document.metadata.get("path") or None
        source = str(path) if path else None
        self._first_change = None  # edits from now on start the clock again

        def work() -> Path:
            project, _plan = state.to_project(budget)
            return self.saver.save(project, title, source)

        self.projects.runner.submit("autosaving", work, self._on_autosaved, self._on_failed)
        return True

    def _on_autosaved(self, path: Path) -> None:
        self._forget_recovered()
        self.ctx.status.showMessage(f"Autosaved {describe_time(time.time())}", 4000)
        self.autosaved.emit(str(path))

    def _on_failed(self, message: str) -> None:
        self.ctx.messages.show_error(message)
        if self._first_change is None:  # try again later: the work is still not safe
            self._first_change = time.monotonic()
            self._last_change = self._first_change
            self._schedule(self._first_change)

    def _on_saved(self, _path: str) -> None:
        self._forget_recovered()
        if not self.projects.is_modified():
            self._timer.stop()
            self._first_change = None
            self.saver.discard()  # the project file holds everything the autosave did

    def discard(self) -> None:
        """A clean exit: nothing of this session needs recovering."""
        self._timer.stop()
        self._first_change = None
        self.saver.discard()
        self._forget_recovered()

    # ---- recovery -----------------------------------------------------------------------------------
    def offer_recovery(self) -> list[RecoveryItem]:
        """Offer the autosaves of sessions that ended without closing (non-blocking, in the message bar)."""
        items = find_recoverable(self.saver.folder)
        if items:
            self._offer(items)
        return items

    def _offer(self, items: list[RecoveryItem]) -> None:
        item, rest = items[0], items[1:]
        more = f" ({len(items)} autosaves to review)" if rest else ""
        self.ctx.messages.show_info(
            f"Inpaint Studio did not close properly: “{item.title}” was autosaved {describe_time(item.saved_at)} "
            f"and can be recovered{more}.",
            [("Recover", lambda: self.recover(item, rest)), ("Discard", lambda: self._discard_item(item, rest))],
        )

    def recover(self, item: RecoveryItem, rest: list[RecoveryItem] | None = None) -> bool:
        """Open an autosave as unsaved work; the next offer (if any) follows."""
        if not self.projects.host.maybe_save():
            self._offer([item, *(rest or [])])
            return False
        project = self.projects.load_in_background(item.project)
        if project is None:  # damaged: the message says so; keep the files for a manual look
            if rest:
                self._offer(rest)
            return False
        self.projects.show_project(project, None, recovered_title=item.title)
        self._recovered.append(item)
        if rest:
            self._offer(rest)
        else:
            self.ctx.messages.show_info(
                f"Recovered “{item.title}”; save it (Ctrl+S) to keep it, or it stays in the autosave until you do."
            )
        return True

    def _discard_item(self, item: RecoveryItem, rest: list[RecoveryItem]) -> None:
        discard_recovery(item)
        if rest:
            self._offer(rest)

    def _forget_recovered(self) -> None:
        for item in self._recovered:
            discard_recovery(item)
        self._recovered.clear()
