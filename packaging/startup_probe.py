"""Time to a shown window: record when the studio's first window is exposed and painted, then close it.

Installed by entry.py when INPAINT_STUDIO_STARTUP_PROBE names a file. It wraps
inpaint_studio.ui.app.create_application so the real start-up path runs unchanged, and watches for the
first Expose event of a top-level window; after that event the window paints synchronously, so a zero-delay
timer fires once the first frame is done. It writes {"exposed": t, "painted": t} (time.time(), the clock
the measuring process also reads before it starts the app) and closes the windows, so the app exits 0.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def install(path: str) -> None:
    from PySide6.QtCore import QEvent, QObject, QTimer
    from PySide6.QtGui import QWindow
    from PySide6.QtWidgets import QApplication

    from inpaint_studio.ui import app as app_module

    original = app_module.create_application
    times: dict[str, float] = {}

    def painted() -> None:
        times["painted"] = time.time()
        Path(path).write_text(json.dumps(times), encoding="utf-8")
        QApplication.closeAllWindows()

    class Probe(QObject):
        def eventFilter(self, watched: QObject, event: Any) -> bool:
            if (
                not times
                and event.type() == QEvent.Type.Expose
                and isinstance(watched, QWindow)
                and watched.isExposed()
            ):
                times["exposed"] = time.time()
                QTimer.singleShot(0, painted)
            return False

    def create_application(argv: list[str] | None = None) -> Any:
        application = original(argv)
        if not hasattr(application, "_startup_probe"):
            application._startup_probe = Probe(application)
            application.installEventFilter(application._startup_probe)
        return application

    app_module.create_application = create_application
