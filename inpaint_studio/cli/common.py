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

from inpaint_studio.cli.job_options import JOB_OPTIONS, given_job_values
from inpaint_studio.core.errors import BadInputError
from inpaint_studio.core.jobspec import InpaintJob
from inpaint_studio.engine.classical import LARGE_HOLE_PX
from inpaint_studio.engine.events import CancelToken, JobFinished, JobProgress, JobStarted
from inpaint_studio.engine.families import Family
from inpaint_studio.engine.models import ModelInfo
from inpaint_studio.engine.removal import is_seeded

# Settings only a diffusion model uses. A prompt given to a fill is an error (what was asked would not be
# painted, and nothing says so in the output); the numbers only tune a diffusion run, so they are a warning.
_PROMPTS = ("prompt", "negative_prompt")
_DIFFUSION_ONLY = ("steps", "scheduler", "guidance_scale", "strength", "prompt_weighting", "seed")


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

    def show(self, done: int, total: int, suffix: str = "") -> None:
        """Draw the bar for work that is not a job (an upscale's tiles)."""
        self._draw(done, total, suffix)

    def end(self) -> None:
        if self._last:
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
    add_server_access(parser)


def add_server_access(parser: argparse.ArgumentParser) -> None:
    """--server URL and --token-file: run on an `inpaint-studio serve` server instead of this computer."""
    parser.add_argument("--server", metavar="URL", help="run on an inpaint-studio server (e.g. http://gpu-box:8000)")
    parser.add_argument(
        "--token-file", metavar="FILE", help="the server's token (default: the INPAINT_STUDIO_TOKEN variable)"
    )


def make_engine(args: argparse.Namespace) -> Any:
    if getattr(args, "server", None):
        return make_remote_engine(args)
    from inpaint_studio.engine.runner import Engine  # imports the engine's modules (not torch yet)

    return Engine(allow_download=args.download, allow_unsafe_checkpoints=args.allow_unsafe_checkpoint)


def make_remote_engine(args: argparse.Namespace) -> Any:
    """The server's engine (engine/remote.py); what it may load is the server's decision, not an option here."""
    from inpaint_studio.engine.remote import RemoteEngine, token_from

    for flag, given in (
        ("--download", getattr(args, "download", False)),
        ("--allow-unsafe-checkpoint", getattr(args, "allow_unsafe_checkpoint", False)),
    ):
        if given:
            raise BadInputError(
                f"{flag} applies to this computer; with --server the server decides what it loads "
                "(inpaint-studio serve --allow-download; it never loads pickled checkpoints)."
            )
    return RemoteEngine(args.server, token_from(args.token_file))


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


def fill_name(info: ModelInfo) -> str:
    """How the messages name a model that fills without diffusion."""
    if info.family is Family.CLASSIC:
        return "The classical fill"
    return f"{info.pipeline_class or 'The'} removal model"


def check_fill_options(args: argparse.Namespace, job: InpaintJob, info: ModelInfo) -> None:
    """A prompt given to the classical fill or a removal model is an error; diffusion-only numbers a warning.

    Only what was given on the command line counts (a --job file's or recipe's settings are data, recorded
    without what the fill ignores). The seed is used by MAT, so it is not a warning there."""
    if info.family not in (Family.CLASSIC, Family.REMOVAL):
        return
    seeded = is_seeded(info)
    given = given_job_values(args)
    flags = {option.path: option.flag for option in JOB_OPTIONS}
    name = fill_name(info)
    prompts = [flags[key] for key in _PROMPTS if str(given.get(key, "")).strip()]
    if prompts:
        prefill = job.model if info.family is Family.REMOVAL and job.model in ("lama", "mat", "migan") else "lama"
        raise BadInputError(
            f"{name} takes no prompt: it fills the mask from its surroundings; leave out {' and '.join(prompts)}, "
            f"or choose a diffusion model with --model (add --prefill {prefill} to remove first, then paint the "
            "prompt)."
        )
    ignored = [flags[key] for key in _DIFFUSION_ONLY if key in given and not (key == "seed" and seeded)]
    if ignored:
        print(
            f"inpaint-studio: {name} does not use {', '.join(ignored)}; ignored (and not written into the image).",
            file=sys.stderr,
        )


def note_large_hole(extra: dict[str, Any]) -> None:
    """After a classical fill of a hole too thick for it (engine/classical.py LARGE_HOLE_PX): say what to use."""
    if extra.get("hole_too_large"):
        print(
            f"inpaint-studio: the hole is {extra.get('hole_thickness_px', 0):.0f} px thick; the classical fill "
            f"smears holes thicker than {LARGE_HOLE_PX:.0f} px into streaks, so use a removal model: --model migan "
            "(or lama, mat; add --download to fetch it).",
            file=sys.stderr,
        )
