"""What the headless commands share: the progress bar, Ctrl+C as cancel, the engine, output checks."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from inpaint_studio.core.errors import BadInputError
from inpaint_studio.engine.events import CancelToken, JobFinished, JobProgress, JobStarted


class ProgressBar:
    """A one-line progress bar on stderr (only redrawn when it changes)."""

    def __init__(self, stream: Any = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.perf_counter()
        self._last = ""

    def __call__(self, event: Any) -> None:
        if isinstance(event, JobStarted):
            self.start = time.perf_counter()
            self._draw(0, event.total_steps, " starting")
        elif isinstance(event, JobProgress):
            self._draw(event.step, event.total, f" {event.label(', ')}")  # e.g. "Variant 2 of 2, step 4 of 61"
        elif isinstance(event, JobFinished):
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, done: int, total: int, suffix: str) -> None:
        total = max(total, 1)
        filled = int(self.width * done / total)
        elapsed = time.perf_counter() - self.start
        eta = f", {elapsed / done * (total - done):.0f}s left" if done else ""
        line = f"\r[{'#' * filled}{'-' * (self.width - filled)}]{suffix}{eta}"
        if line != self._last:
            self.stream.write(line.ljust(len(self._last)))
            self.stream.flush()
            self._last = line


def cancel_on_sigint(cancel: CancelToken) -> Callable[..., Any] | int | None:
    """Ctrl+C cancels after the current step (a second one stops at once); returns the previous handler."""

    def on_sigint(signum: int, frame: Any) -> None:
        if cancel.cancelled:  # a second Ctrl+C stops at once
            raise KeyboardInterrupt
        sys.stderr.write("\nCancelling after the current step... (Ctrl+C again to stop now)\n")
        cancel.cancel()

    return signal.signal(signal.SIGINT, on_sigint)


def add_model_access(parser: argparse.ArgumentParser) -> None:
    """--download and --allow-unsafe-checkpoint: what the engine may fetch or read."""
    parser.add_argument("--download", action="store_true", help="download models that are not installed")
    parser.add_argument(
        "--allow-unsafe-checkpoint",
        action="store_true",
        help="load a legacy pickled .ckpt/.pt/.pth you trust (refused by default: pickles can run code)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def make_engine(args: argparse.Namespace) -> Any:
    from inpaint_studio.engine.runner import Engine  # imports the engine's modules (not torch yet)

    return Engine(allow_download=args.download, allow_unsafe_checkpoints=args.allow_unsafe_checkpoint)


def note_unsafe(model: dict[str, Any]) -> None:
    """Say so whenever the explicit opt-in actually loaded a pickled checkpoint (the record says it too)."""
    if model.get("source") == "legacy_checkpoint":
        print(
            f"inpaint-studio: loaded the pickled checkpoint {model.get('path')} because --allow-unsafe-checkpoint "
            "was given (read weights-only).",
            file=sys.stderr,
        )


def check_output(out: Path) -> None:
    if out.suffix.lower() not in Image.registered_extensions() or out.suffix.lower() in (".gif", ".pdf"):
        raise BadInputError(f"The output {out} has no supported image extension; use .png, .jpg, .webp, .tif or .bmp.")
    if not out.parent.exists():
        raise BadInputError(f"The output folder {out.parent} does not exist; create it or choose another folder.")


def output_paths(out: Path, variants: int) -> list[Path]:
    if variants == 1:
        return [out]
    return [out.with_name(f"{out.stem}-{i + 1}{out.suffix}") for i in range(variants)]


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text).strip("-")[:40] or "step"
