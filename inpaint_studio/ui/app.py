"""Application start-up: QApplication, dark Fusion theme, qasync event loop, the main window.

Nothing here imports torch: the window must appear in well under a second. The engine is loaded later by
its worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import traceback
from types import TracebackType

from PySide6.QtCore import QCoreApplication, QSize, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication

from inpaint_studio import __version__

log = logging.getLogger(__name__)

ORGANISATION = "Inpaint Studio"
APPLICATION = "Inpaint Studio"


def dark_palette() -> QPalette:
    """A neutral dark palette (image editors use dark chrome so the picture's colours read true)."""
    palette = QPalette()
    window, base, text = QColor(50, 50, 53), QColor(36, 36, 38), QColor(222, 222, 226)
    disabled = QColor(125, 125, 130)
    highlight = QColor(62, 118, 196)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: QColor(44, 44, 47),
        QPalette.ColorRole.ToolTipBase: QColor(30, 30, 32),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: disabled,
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: QColor(58, 58, 62),
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Link: QColor(110, 160, 240),
        QPalette.ColorRole.Highlight: highlight,
        QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Light: QColor(75, 75, 80),
        QPalette.ColorRole.Midlight: QColor(64, 64, 68),
        QPalette.ColorRole.Mid: QColor(45, 45, 48),
        QPalette.ColorRole.Dark: QColor(28, 28, 30),
        QPalette.ColorRole.Shadow: QColor(10, 10, 10),
    }
    for role, color in roles.items():
        palette.setColor(role, color)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Highlight, QColor(70, 70, 74))
    return palette


def application_icon() -> QIcon:
    """The app icon from resources/icons (PNG sizes rendered from the SVG); empty if the folder is missing.

    Desktops take the icon from the .desktop file (setDesktopFileName below); this one is for window title
    bars and task bars on Windows, and for a run from source.
    """
    from inpaint_studio.core.resources import resource_path

    icon = QIcon()
    try:
        folder = resource_path("icons")
    except FileNotFoundError:
        return icon
    for size in (16, 24, 32, 48, 64, 128, 256):
        path = folder / f"inpaint-studio-{size}.png"
        if path.is_file():
            icon.addFile(str(path), QSize(size, size))
    return icon


def create_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with names (for QSettings), high-DPI policy, Fusion style and the dark palette."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        app = existing
    else:
        # Exact fractional scaling (125 %, 150 %) instead of rounding, so 100 % zoom is 1:1 device pixels.
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        app = QApplication(argv if argv is not None else sys.argv[:1])
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setOrganizationDomain("inpaint-studio.local")
    QCoreApplication.setApplicationName(APPLICATION)
    QCoreApplication.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName("inpaint-studio")
    app.setWindowIcon(application_icon())
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    return app


def _install_excepthook() -> None:
    """Exceptions escaping Qt callbacks become a message bar error in the active window, not a silent log."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        log.error("uncaught exception:\n%s", "".join(traceback.format_exception(kind, value, tb)))
        from inpaint_studio.ui.window.main_window import MainWindow

        window = QApplication.activeWindow()
        if isinstance(window, MainWindow):
            window.message_bar.show_error(f"Unexpected error: {value}. The details are in the log.")
        else:
            previous(kind, value, tb)

    sys.excepthook = hook


def run_gui(paths: list[str], *, exit_at_once: bool = False) -> int:
    """Show the main window, offer crash recovery, open the first of paths (other images become layers;
    projects and OpenRaster files open as the document), run until it closes.

    `exit_at_once` (the application's own start, see cli/__init__.py): once the window has closed, end the
    process without the interpreter's teardown instead of returning (see `end_process`)."""
    import qasync

    from inpaint_studio.ui.window.main_window import MainWindow

    app = create_application()
    _install_excepthook()
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    window = MainWindow()
    window.show()
    # Autosaves of sessions that crashed: offered in the message bar once the window is up.
    QTimer.singleShot(0, window.autosave.offer_recovery)
    if paths:
        # After the first paint, so the window shows at once even for a 50-megapixel photo.
        QTimer.singleShot(0, lambda: window.files.open_or_insert(list(paths)))
    app.setQuitOnLastWindowClosed(True)
    with loop:
        code = loop.run_forever()
    code = int(code) if isinstance(code, int) else 0
    if exit_at_once:
        end_process(code)
    end_if_threads_are_stuck(code)
    return code


def end_if_threads_are_stuck(code: int) -> None:
    """End the process now when a worker thread is stuck in a call that never returns, or is still importing
    torch.

    Such a thread cannot be joined, and Qt aborts the process when a running thread's object is destroyed
    during the interpreter's exit (an import in progress holds the import system's locks, which the
    interpreter's exit may wait for). By now the window has closed cleanly (work saved or discarded, the
    autosave slot removed, settings written), so nothing is lost by not running the remaining exit handlers.
    """
    from inpaint_studio.ui.engine_thread.worker import imports_in_progress, orphaned_threads

    stuck = orphaned_threads()
    if stuck:
        log.warning("%d engine thread(s) still stuck in a call; ending the process without waiting for them", stuck)
    if stuck or imports_in_progress():
        end_process(code)


def end_process(code: int) -> None:
    """End the process at once, after the window closed cleanly.

    Measured on 2 cores with torch loaded: the window was gone 40 ms after Ctrl+Q, the interpreter's own
    teardown (freeing a million objects, every module, torch's static destructors) then took 1.7-8 s more.
    Everything the studio must keep is written before this point: the close saved or discarded the work,
    waited for a save in flight, removed the autosave slot and wrote the settings to disk (MainWindow.
    closeEvent); what is left is the operating system's job (memory, threads, files).
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed or missing stream (windowed builds)
            stream.flush()
    os._exit(code)
