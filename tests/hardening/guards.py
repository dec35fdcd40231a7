"""Hang guards and message checks shared by the hardening tests.

A hang must fail a test, never stall CI: code that may run on a helper thread runs under `within()`
(the test fails when it is still running after the limit); code that must run on the main thread (Qt,
the command line's signal handler) runs under `process_deadline()`, which dumps every thread's stack and
ends the test process if the limit passes.
"""

from __future__ import annotations

import faulthandler
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def within(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) on a daemon thread; its result or exception, or a failed test after `seconds`."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the caller as if fn ran here
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"guarded {getattr(fn, '__name__', fn)}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)}{args!r:.200} still running after {seconds} s: a hang")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


@contextmanager
def process_deadline(seconds: float) -> Iterator[None]:
    """End the process with every thread's traceback if the block runs longer than `seconds`."""
    faulthandler.dump_traceback_later(seconds, exit=True, file=sys.__stderr__)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def assert_one_sentence(text: str, names: Path | str | None = None) -> str:
    """A user-facing error: one line, a full sentence, no traceback, naming the file when given one."""
    assert text, "no message"
    assert "\n" not in text.strip(), f"more than one line: {text!r}"
    assert text.rstrip().endswith((".", ")")), f"not a sentence: {text!r}"
    assert "Traceback" not in text and "Unexpected error" not in text, f"an unhandled error leaked: {text!r}"
    assert len(text) < 600, f"too long to read: {text!r}"
    if names is not None:
        name = Path(names).name
        assert name in text, f"the message does not name {name}: {text!r}"
    return text
