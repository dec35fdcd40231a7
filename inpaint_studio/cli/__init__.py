"""Command line: `inpaint-studio [IMAGE ...]` opens the studio; sub-commands work headless.

One module per sub-command, each with `register(subparsers)`: `inpaint` (one job), `chain` (a recipe),
`replay` (a project's history), `models` / `download`, `select` (click-to-select masks), `outpaint` (expand
the canvas and fill the new area), `upscale` (enlarge an image x2 / x4), `serve` (the engine as a service)
and `batch` (a folder on Ray Data; both need the `cluster` extra and import Ray only when they run). The job
options are one table (job_options.py).

Exit codes: 0 ok; 2 bad input; 3 model unavailable; 4 out of memory; 130 cancelled; 1 anything else.
Every failure prints one line that names the file or parameter and says what to do. A first word that is
neither a sub-command nor an option is an error (exit 2), not a window: `inpaint-studio gui IMAGE` or a path
that exists opens the studio.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from inpaint_studio import __version__
from inpaint_studio.core.errors import BadInputError, CancelledError, InpaintStudioError

SUBCOMMANDS = (
    "inpaint",
    "chain",
    "replay",
    "models",
    "download",
    "select",
    "outpaint",
    "gui",
    "upscale",
    "serve",
    "batch",
)


def build_parser() -> argparse.ArgumentParser:
    # Each sub-command's module imports its engine parts: loaded here, after the window's fast path.
    from inpaint_studio.cli import batch, chain, inpaint, models, outpaint, replay, select, serve, upscale

    parser = argparse.ArgumentParser(
        prog="inpaint-studio",
        description="Inpaint Studio: repaint masked parts of images with diffusion models or a classical fill.",
        epilog="Run without a sub-command (optionally with an image path) to open the studio window.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    gui = sub.add_parser("gui", help="open the studio window (the default)")
    gui.add_argument("images", nargs="*", help="image files to open")
    for module in (inpaint, chain, replay, models, select, outpaint, upscale, serve, batch):
        module.register(sub)
    return parser


def run_gui(paths: Sequence[str]) -> int:
    from inpaint_studio.ui.app import run_gui as start

    return start(list(paths), exit_at_once=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-")):
        missing = next((word for word in argv if not Path(word).exists()), None)
        if missing is not None:  # a mistyped command must not open a window
            print(
                f"inpaint-studio: '{missing}' is neither a command nor an existing file; "
                f"use one of: {', '.join(SUBCOMMANDS)} (see inpaint-studio --help).",
                file=sys.stderr,
            )
            return BadInputError.exit_code
        return run_gui(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "gui":
        return run_gui(args.images)
    try:
        return int(args.func(args))
    except CancelledError as exc:
        print(f"\ninpaint-studio: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("\ninpaint-studio: stopped; nothing was written.", file=sys.stderr)
        return CancelledError.exit_code
    except InpaintStudioError as exc:
        print(f"inpaint-studio: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
