"""Atomic file writes: a crash, kill or full disk at any moment leaves the previous file intact."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from inpaint_studio.core.errors import BadInputError


def atomic_write(target: Path, write: Callable[[BinaryIO], object], *, shown: Path | None = None) -> None:
    """Run `write(file)` into a temporary file next to `target`, fsync it, then move it over `target`.

    On any failure the temporary file is removed and `target` is untouched; OS errors become one
    BadInputError sentence naming `shown` (the path as the user gave it; defaults to `target`).
    """
    shown = shown or target
    folder = target.parent
    tmp = folder / f".{target.name}.{secrets.token_hex(6)}.tmp"
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
