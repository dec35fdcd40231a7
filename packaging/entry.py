"""Entry point of the frozen application (PyInstaller's script); runs from source as well.

    inpaint-studio [IMAGE...]                 the studio window (inpaint_studio.cli.main, unchanged)
    inpaint-studio inpaint|models|download    the headless commands
    inpaint-studio --smoke-test OUTDIR ...    the packaging smoke test (packaging/smoke.py), for QA only

INPAINT_STUDIO_STARTUP_PROBE=FILE makes the studio write the time its window was first shown and painted to
FILE and close (packaging/startup_probe.py); measure_startup.py uses it to time frozen and source starts the
same way. Neither hook changes anything else: everything else goes to inpaint_studio.cli.main.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

LOG_NAME = "inpaint-studio.log"


def ensure_streams() -> Path | None:
    """Give a windowed executable somewhere to write; returns the log file when one was opened.

    The Windows executable and the macOS .app have no console, so sys.stdout and sys.stderr are None:
    diffusers' tqdm loading bars would raise on the first model load and every log line (the app's error
    messages say "the details are in the log") would vanish. They go to the user's log folder instead.
    """
    if sys.stdout is not None and sys.stderr is not None:
        return None
    log_file: Path | None = None
    try:
        from platformdirs import user_log_dir

        folder = Path(user_log_dir("Inpaint Studio", appauthor=False))
        folder.mkdir(parents=True, exist_ok=True)
        log_file = folder / LOG_NAME
        stream = open(log_file, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 (lives as long as the app)
    except OSError:
        log_file = None
        stream = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stdout is None:
        sys.stdout = stream
    if sys.stderr is None:
        sys.stderr = stream
    return log_file


def main() -> int:
    # A frozen app re-executes itself for multiprocessing children (torch DataLoader, etc.); this must come
    # first so a child never opens a window.
    multiprocessing.freeze_support()
    ensure_streams()
    argv = sys.argv[1:]
    if argv[:1] == ["--smoke-test"]:
        import smoke

        return smoke.main(argv[1:])
    probe = os.environ.get("INPAINT_STUDIO_STARTUP_PROBE")
    if probe:
        import startup_probe

        startup_probe.install(probe)
    from inpaint_studio.cli import main as cli_main

    return cli_main(argv)


if __name__ == "__main__":
    raise SystemExit(main())
