"""Atomic file writes: a crash, kill or full disk at any moment leaves the previous file intact.

The temporary file is named ``.NAME.HOST-PID-RANDOM.tmp``: a hidden name beside the target, the writing
machine (a short hash of its host name) and process. A process killed while writing (a command-line run
stopped with kill -9, a crash, a power cut) leaves its temporary behind; the next write to that folder
removes such leftovers, and only those that provably belong to no live writer:

* ours from this machine whose process has ended (a live process, even a stranger that reused the PID, is
  left alone, so a temporary that is still being written is never touched);
* ours from another machine (a shared folder), and those named by versions before the PID was in the name
  (``.NAME.RANDOM.tmp``), only once they are older than STALE_AFTER_S: no write takes a day.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import secrets
import socket
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from inpaint_studio.core.errors import BadInputError

STALE_AFTER_S = 24 * 3600
HOST = hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]
_OURS = re.compile(r"^\..+\.(?P<host>[0-9a-f]{6})-(?P<pid>\d{1,10})-[0-9a-f]{12}\.tmp$")
_LEGACY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")


def temporary_name(target: Path) -> Path:
    """Where `atomic_write` writes before the rename (see the module docstring)."""
    return target.parent / f".{target.name}.{HOST}-{os.getpid()}-{secrets.token_hex(6)}.tmp"


def remove_stale_temporaries(folder: Path, now: float | None = None) -> list[Path]:
    """Remove what killed writers left in `folder` (see the module docstring); returns what was removed.

    Never fails: a folder that cannot be listed, or a file that cannot be removed, is left as it is."""
    now = time.time() if now is None else now
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if _is_stale(entry, now):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _is_stale(entry: os.DirEntry[str], now: float) -> bool:
    name = entry.name
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    match = _OURS.match(name)
    try:
        if not entry.is_file(follow_symlinks=False):
            return False
        if match is not None and match["host"] == HOST:
            pid = int(match["pid"])
            return pid != os.getpid() and not process_alive(pid)
        if match is not None or _LEGACY.match(name):
            return now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
    except OSError:
        pass
    return False


def process_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (an ended one not yet reaped counts as ended)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, and belongs to someone else
    except OSError:
        return True  # unknown: assume alive (never remove what may be written)
    with contextlib.suppress(OSError, IndexError):
        # Linux: a killed process its parent has not reaped yet is a zombie, no longer writing anything.
        stat_line = Path(f"/proc/{pid}/stat").read_text()
        return stat_line.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _windows_process_alive(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def atomic_write(target: Path, write: Callable[[BinaryIO], object], *, shown: Path | None = None) -> None:
    """Run `write(file)` into a temporary file next to `target`, fsync it, then move it over `target`.

    On any failure the temporary file is removed and `target` is untouched; OS errors become one
    BadInputError sentence naming `shown` (the path as the user gave it; defaults to `target`).
    """
    shown = shown or target
    folder = target.parent
    remove_stale_temporaries(folder)
    tmp = temporary_name(target)
    try:
        fh = open(tmp, "xb")  # noqa: SIM115 (closed by "with fh" below); "x": never clobber a file
    except OSError as exc:
        raise BadInputError(_write_error_message(shown, folder, exc)) from exc
    try:
        with fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(OSError):
            # Keep the permissions of the file we replace (a new file keeps the umask default).
            os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError | ValueError) and not isinstance(exc, BadInputError):
            raise BadInputError(_write_error_message(shown, folder, exc)) from exc
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX); not possible, nor needed, on Windows."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_error_message(p: Path, folder: Path, exc: BaseException) -> str:
    code = getattr(exc, "errno", None)
    if isinstance(exc, FileNotFoundError) or (code == errno.ENOENT and not folder.exists()):
        return f"Cannot save '{p}' because the folder '{folder}' does not exist; choose an existing folder."
    if isinstance(exc, NotADirectoryError):
        return f"Cannot save '{p}' because '{folder}' is not a folder; choose an existing folder."
    if isinstance(exc, PermissionError) or code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"Cannot save '{p}' because the folder '{folder}' is not writable; "
            "choose another folder or check its permissions."
        )
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return (
            f"Cannot save '{p}' because the disk is full (any previous file is unchanged); "
            "free some space or save to another drive."
        )
    reason = str(exc).strip().split(". ")[0].rstrip(".").strip()[:120] or type(exc).__name__
    return f"Could not save '{p}' ({reason}), so nothing was overwritten; try another file type or folder."
