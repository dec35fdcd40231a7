"""Atomic writes leave no litter: what killed writers left is removed on the next write to the folder, and
nothing a live writer is writing is ever touched (issue 14.11: ten killed runs left three temporaries)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from inpaint_studio.core import atomic

ROOT = Path(__file__).resolve().parents[2]


def writer_stuck_in_a_write(target: Path) -> subprocess.Popen[str]:
    """A process in the middle of an atomic write (it has written part of the file and waits forever)."""
    code = textwrap.dedent(
        f"""
        import sys, threading
        from pathlib import Path
        from inpaint_studio.core.atomic import atomic_write

        def write(fh):
            fh.write(b"half a file")
            fh.flush()
            print("WRITING", flush=True)
            threading.Event().wait()

        atomic_write(Path({str(target)!r}), write)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT))
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "WRITING"
    return proc


def temporaries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.skipif(sys.platform == "win32", reason="kill -9 as on the issue's machine")
def test_the_next_write_removes_what_killed_runs_left_but_not_a_live_writers_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    killed = []
    for i in range(3):  # three runs killed mid-write
        proc = writer_stuck_in_a_write(out / f"result-{i}.png")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed.append(proc.pid)
    # Each run's own write removed what the run killed before it had left: one leftover, the last one's.
    left = temporaries(out)
    assert len(left) == 1 and f"-{killed[-1]}-" in left[0].name
    live = writer_stuck_in_a_write(out / "busy.png")  # another run writing right now
    legacy_young, legacy_old = out / ".a.png.0123456789ab.tmp", out / ".b.png.ba9876543210.tmp"
    someone_elses = out / ".notes.tmp"
    for path in (legacy_young, legacy_old, someone_elses):
        path.write_bytes(b"x")
    old = time.time() - atomic.STALE_AFTER_S - 60
    os.utime(legacy_old, (old, old))
    try:
        # The next write to that folder: a command-line classical fill, as a user would run it.
        image, mask = tmp_path / "photo.png", tmp_path / "mask.png"
        Image.fromarray(np.full((48, 48, 3), 90, np.uint8)).save(image)
        box = np.zeros((48, 48), np.uint8)
        box[10:30, 10:30] = 255
        Image.fromarray(box).save(mask)
        argv = [sys.executable, "-m", "inpaint_studio", "inpaint", str(image), "--mask", str(mask)]
        argv += ["-o", str(out / "filled.png"), "--model", "classic", "--quiet"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        remaining = temporaries(out)
        assert [p for p in remaining if f"-{live.pid}-" in p.name], "the live writer's file was removed"
        assert legacy_young in remaining and someone_elses in remaining
        assert legacy_old not in remaining
        assert not [p for p in remaining if any(f"-{pid}-" in p.name for pid in killed)]
        assert (out / "filled.png").is_file()
    finally:
        live.kill()
        live.wait()


def test_another_machines_temporary_is_removed_only_when_a_day_old(tmp_path: Path) -> None:
    other_host = "000000" if atomic.HOST != "000000" else "111111"
    young, old = (
        tmp_path / f".x.png.{other_host}-1-0123456789ab.tmp",
        tmp_path / f".y.png.{other_host}-1-0123456789ab.tmp",
    )
    for path in (young, old):
        path.write_bytes(b"x")
    stamp = time.time() - atomic.STALE_AFTER_S - 1
    os.utime(old, (stamp, stamp))
    assert atomic.remove_stale_temporaries(tmp_path) == [old]
    assert young.exists()


def test_a_write_still_leaves_nothing_but_the_target(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    atomic.atomic_write(target, lambda fh: fh.write(b"data"))
    assert target.read_bytes() == b"data" and list(tmp_path.iterdir()) == [target]
    assert atomic.process_alive(os.getpid()) and not atomic.process_alive(2**22 + 12345)
