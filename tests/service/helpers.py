"""Helpers of the service tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TOKEN = "test-token-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Server:
    url: str
    token: str
    models: tuple[Path, ...]

    def engine(self, token: str | None = TOKEN, **kwargs: Any) -> Any:
        from inpaint_studio.engine.remote import RemoteEngine

        return RemoteEngine(self.url, token, **kwargs)


def wait_until(check: Any, timeout_s: float = 60.0, interval_s: float = 0.2) -> Any:
    """Poll `check()` until it returns something true; fail with its last value after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = check()
            if value:
                return value
        time.sleep(interval_s)
    raise AssertionError(f"not true within {timeout_s} s (last: {value!r})")
