"""Time from launching the studio to its first painted window, for several commands measured the same way.

    python packaging/measure_startup.py --runs 5 --json OUT.json \
        --cmd "source=.venv/bin/python packaging/entry.py" \
        --cmd "frozen=packaging/build/dist/inpaint-studio/inpaint-studio"

Each run starts a command under a private Xvfb display (QT_QPA_PLATFORM=xcb, a real X server, so the xcb
platform plugin and its system libraries are part of what is timed) with a fresh HOME, and
INPAINT_STUDIO_STARTUP_PROBE set: packaging/startup_probe.py (via entry.py) writes the wall-clock time the
first window was exposed and painted, then closes it. Start-up = painted time - the time just before the
process was spawned. Commands are interleaved run by run, so a slow moment of a shared machine hits both.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def start_xvfb(display: str) -> subprocess.Popen[bytes]:
    if shutil.which("Xvfb") is None:
        raise SystemExit("Xvfb not found: apt-get install xvfb")
    server = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    socket = Path("/tmp/.X11-unix") / f"X{display.lstrip(':')}"
    for _ in range(100):
        if socket.exists():
            return server
        time.sleep(0.05)
    server.kill()
    raise SystemExit(f"Xvfb did not start on {display}")


def one_run(command: list[str], display: str, timeout_s: float, env_extra: dict[str, str]) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="inpaint-startup-") as tmp:
        probe = Path(tmp) / "probe.json"
        home = Path(tmp) / "home"
        home.mkdir()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(home),
            "DISPLAY": display,
            "QT_QPA_PLATFORM": "xcb",
            "INPAINT_STUDIO_STARTUP_PROBE": str(probe),
            "HF_HUB_OFFLINE": "1",
            "LANG": "C.UTF-8",
            **env_extra,
        }
        start = time.time()
        result = subprocess.run(command, env=env, cwd=tmp, capture_output=True, timeout=timeout_s, check=False)
        end = time.time()
        if result.returncode != 0 or not probe.is_file():
            tail = result.stderr.decode(errors="replace")[-2000:]
            raise RuntimeError(f"{shlex.join(command)} exited {result.returncode} without a probe:\n{tail}")
        times = json.loads(probe.read_text())
        return {
            "exposed_s": times["exposed"] - start,
            "painted_s": times["painted"] - start,
            "exit_s": end - start,
        }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cmd", action="append", required=True, help="LABEL=COMMAND LINE (repeatable)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--display", default=":87")
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--json", type=Path, help="write the raw and summary figures here")
    args = parser.parse_args(argv)
    commands = {}
    for item in args.cmd:
        label, _, line = item.partition("=")
        commands[label] = shlex.split(line)
    server = start_xvfb(args.display)
    results: dict[str, list[dict[str, float]]] = {label: [] for label in commands}
    try:
        for run in range(args.runs):
            for label, command in commands.items():
                figures = one_run(command, args.display, args.timeout, {})
                results[label].append(figures)
                print(f"run {run + 1}: {label:<10} window painted after {figures['painted_s']:.2f} s", flush=True)
    finally:
        server.terminate()
        server.wait(10)
    summary = {}
    for label, runs in results.items():
        painted = [r["painted_s"] for r in runs]
        summary[label] = {
            "first_s": round(painted[0], 2),
            "median_s": round(statistics.median(painted), 2),
            "min_s": round(min(painted), 2),
            "max_s": round(max(painted), 2),
            "runs": len(painted),
        }
        print(
            f"{label:<10} median {summary[label]['median_s']:.2f} s  (first {painted[0]:.2f}, "
            f"min {min(painted):.2f}, max {max(painted):.2f}, {len(painted)} runs)"
        )
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": results}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
