"""Joining or starting Ray for `serve` and `batch`: quiet defaults for a desktop tool's private cluster."""

from __future__ import annotations

import os
from typing import Any

import ray


def quiet_ray_environment() -> None:
    """What a desktop tool's private Ray must not do by default: phone home."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def connect(address: str | None, **init_args: Any) -> bool:
    """Join the cluster at `address`, or start a private one; returns True when this process started it.

    A private cluster has no dashboard (nothing listens but what the command opens) and sends no usage
    statistics; the driver does not echo the workers' logs (the commands print what matters)."""
    quiet_ray_environment()
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, **init_args)
        return False
    ray.init(include_dashboard=False, log_to_driver=False, **init_args)
    return True
