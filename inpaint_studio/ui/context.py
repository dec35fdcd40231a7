"""What the parts of one studio window share, typed: the context controllers are built with.

`StudioContext` holds the window's long-lived objects (document, undo stack, canvas, message bar, settings,
background runner, actions); `DocumentHost` is the little the window itself does for its controllers
(replace the work, ask about unsaved work, remember a file). MainWindow builds one context and wires every
controller in one place (ui/window/composition.py); no controller holds the window itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from PIL import Image
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QStatusBar

from inpaint_studio.core.document import Document
from inpaint_studio.core.errors import InpaintStudioError
from inpaint_studio.ui.background import BackgroundRunner
from inpaint_studio.ui.canvas.widget import Canvas
from inpaint_studio.ui.document.commands import UndoStack
from inpaint_studio.ui.panels.message_bar import MessageBar
from inpaint_studio.ui.settings import AppSettings

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class StudioContext:
    """See the module docstring."""

    window: QMainWindow  # the parent of dialogs; its title names the work
    document: Document  # never replaced: opening resets it (Document.reset)
    undo_stack: UndoStack
    canvas: Canvas
    messages: MessageBar
    status: QStatusBar
    settings: AppSettings
    runner: BackgroundRunner  # background work that is not the engine (ui/background.py)
    actions: dict[str, QAction]  # every window action by name

    def guarded(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
        """Run fn; an error becomes one message in the message bar instead of a crash or a dialog."""
        try:
            return fn(*args, **kwargs)
        except InpaintStudioError as error:
            self.messages.show_error(str(error))
        except MemoryError:
            self.messages.show_error(
                "There is not enough memory for this; close other programs or work on a smaller image."
            )
        except Exception as error:  # the one place that turns surprises into a message
            log.exception("unexpected error")
            self.messages.show_error(f"Unexpected error: {error}. The details are in the log.")
        return None

    def require_image(self, quiet: bool = False) -> bool:
        """True when an image is open; otherwise (unless quiet) says how to open one."""
        if self.document.is_empty:
            if not quiet:
                self.messages.show_info("Open an image first (Ctrl+O), or paste one (Ctrl+V).")
            return False
        return True


class DocumentHost(Protocol):
    """What the window does for its controllers (implemented by MainWindow)."""

    def set_document(self, document: Document) -> None:
        """Make `document` the window's work; undo starts empty."""

    def open_image(self, image: Image.Image, name: str) -> None:
        """Make an in-memory image the work (no unsaved-work question: callers ask first)."""

    def maybe_save(self) -> bool:
        """Ask about unsaved work; True when it is fine to replace it."""

    def opened(self, path: str) -> None:
        """A file became the work: remember it (Open Recent, the folder dialogs start in)."""
