"""The generation worker's watchdog: notices a running job that stopped reporting, and one that ignores cancel.

A running job that reports nothing (no start, no step) for `limit()` seconds is said to be stalled (the
window then offers Cancel). When the user cancels a stalled job and it still reports nothing `grace_s`
seconds later, the watchdog asks its owner to abandon the job's thread (EngineWorker starts a fresh one for
the queue). Runs on the UI thread; a QTimer looks 4 times per limit, at least once a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)

# Generous defaults: the first job loads a model, one step of SDXL on a CPU takes tens of seconds, and
# torch.compile's first run about a minute on a GPU. Settings "generation/stall_timeout_s" override them.
STALL_TIMEOUT_S = {"cpu": 600.0, "gpu": 120.0}
# After a cancel, a job still silent past the stall limit gets this long to stop before its thread is
# abandoned (setting "generation/abandon_grace_s").
ABANDON_GRACE_S = 5.0


class Watchdog(QObject):
    """See the module docstring. `limit` returns the stall limit in seconds (0: no watchdog)."""

    stalled = Signal(int, float)  # job id, seconds without any event
    resumed = Signal(int)  # a stalled job reported again
    abandon = Signal(int, float)  # the stalled job ignored cancel: give up its thread

    def __init__(self, limit: Callable[[], float], grace_s: float = ABANDON_GRACE_S, parent: QObject | None = None):
        super().__init__(parent)
        self.limit, self.grace_s = limit, grace_s
        self._job_id: int | None = None
        self._last_activity = 0.0
        self._stall_reported = False
        self._cancel_asked_at: float | None = None
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.check)

    def watch(self, job_id: int) -> None:
        """A job started running: watch it from now."""
        self._job_id, self._cancel_asked_at, self._stall_reported = job_id, None, False
        self._last_activity = time.monotonic()
        limit = self.limit()
        if limit > 0:
            self._timer.start(int(min(1000.0, max(20.0, limit * 250))))

    def stop(self) -> None:
        """The job left (finished, failed, abandoned) or the worker closes."""
        self._timer.stop()
        self._job_id, self._cancel_asked_at, self._stall_reported = None, None, False

    def activity(self) -> None:
        """The running job reported something."""
        self._last_activity = time.monotonic()
        if self._stall_reported and self._job_id is not None:
            self._stall_reported = False
            self.resumed.emit(self._job_id)

    def cancel_asked(self) -> None:
        """The user asked the running job to stop; the grace period starts at the first ask."""
        if self._cancel_asked_at is None:
            self._cancel_asked_at = time.monotonic()

    def check(self) -> None:
        job_id, limit = self._job_id, self.limit()
        if job_id is None or limit <= 0:
            self._timer.stop()
            return
        now = time.monotonic()
        silent = now - self._last_activity
        if silent < limit:
            return
        if not self._stall_reported:
            self._stall_reported = True
            log.warning("job %s: no progress for %.0f s", job_id, silent)
            self.stalled.emit(job_id, silent)
        asked = self._cancel_asked_at
        if asked is not None and now - asked >= self.grace_s:
            log.error("job %s ignored cancel for %.0f s without progress; abandoning its thread", job_id, silent)
            self.stop()
            self.abandon.emit(job_id, silent)
