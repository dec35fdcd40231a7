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


def main() -> int:
    # A frozen app re-executes itself for multiprocessing children (torch DataLoader, etc.); this must come
    # first so a child never opens a window.
    multiprocessing.freeze_support()
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
